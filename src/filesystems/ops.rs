//! The filesystem operations behind [`super::FileSystem`]'s default methods whose
//! semantics need more than a one-line std call: opening for each write mode, STOU's
//! unique names, the CWD check and setting times.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::WriteMode;
use crate::{sys, timefmt};

/// Opens an existing file for RETR (Python's `open(p, "rb")`), refusing directories
/// with `EISDIR` as Python does, and anything else that is not a regular file.
pub(super) fn open_read(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(NO_BLOCK_ON_OPEN)
        .open(path)?;
    regular_only(file).map(|(file, _)| file)
}

/// Opens `path` for STOR (`wb`), APPE (`ab`) or STOR after REST (`r+b` then seek).
/// New files get mode `0666 & ~umask`. Only regular files are written to.
pub(super) fn open_write(path: &Path, mode: WriteMode) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    match mode {
        // emptied below, once it is known to be a regular file
        WriteMode::Truncate => opts.write(true).create(true),
        WriteMode::Append => opts.append(true).create(true),
        WriteMode::At(_) => opts.read(true).write(true),
    };
    let (mut file, size) =
        regular_only(opts.mode(0o666).custom_flags(NO_BLOCK_ON_OPEN).open(path)?)?;
    match mode {
        WriteMode::Truncate if size > 0 => file = emptied(file)?,
        WriteMode::At(offset) => {
            file.seek(SeekFrom::Start(offset))?;
        }
        WriteMode::Truncate | WriteMode::Append => {}
    }
    Ok(file)
}

/// Empties `file`, which holds data, for STOR and returns the open file to write it
/// through.
///
/// Truncating a file that holds data arms ext4's "replace via truncate" safeguard (XFS
/// has the same): when the open file that truncated is closed, everything written
/// through it since is handed to the disk there and then, inside close(2). For a STOR
/// that is the close before the 226, on the loop's thread: half a second for 2.5 GB
/// overwritten, with every other session waiting. So the open file that truncated is
/// closed at once, while there is nothing to hand over, and the upload goes through a
/// second open file of the same inode (`/proc/self/fd/N`, the file itself even if it
/// was renamed meanwhile); its data is written back by the kernel's flusher threads, as
/// a new file's is. Without /proc the first open file is kept.
fn emptied(file: File) -> io::Result<File> {
    file.set_len(0)?;
    let same_inode = format!("/proc/self/fd/{}", file.as_raw_fd());
    Ok(OpenOptions::new()
        .write(true)
        .open(same_inode)
        .unwrap_or(file))
}

/// `file` and its size if it is a regular file; `EISDIR` for a directory,
/// [`not_a_regular_file`] for a FIFO, socket or device (a FIFO would block a transfer
/// forever, a device could stream without end).
fn regular_only(file: File) -> io::Result<(File, u64)> {
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if kind.is_dir() {
        return Err(sys::is_a_directory());
    }
    if !kind.is_file() {
        return Err(not_a_regular_file());
    }
    sys::set_blocking(file.as_raw_fd())?;
    Ok((file, meta.len()))
}

/// A FIFO, socket or device where a transfer needs a regular file (no errno says so).
#[derive(Debug, thiserror::Error)]
#[error("Not a regular file")]
pub(crate) struct NotARegularFile;

/// The error for a FIFO, socket or device where only a regular file will do: replies
/// say `Not a regular file.`
fn not_a_regular_file() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, NotARegularFile)
}

/// Creates a new file `<prefix><8 random chars>` in `dir` with `O_CREAT|O_EXCL` and mode
/// `0600`, retrying up to 50 names (Python's `tempfile.mkstemp` with `TMP_MAX = 50`).
///
/// # Errors
/// `EINVAL` if `prefix` contains `/` or NUL (the file would land elsewhere), `EEXIST`
/// when all 50 names were taken, or the first other error from `open`.
pub(super) fn create_unique(dir: &Path, prefix: &str) -> io::Result<(PathBuf, File)> {
    if prefix.contains(['/', '\0']) {
        return Err(sys::invalid_argument());
    }
    let mut names = NameSource::new();
    for _ in 0..TMP_MAX {
        let path = dir.join(format!("{prefix}{}", names.next_name()));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(sys::file_exists())
}

/// Checks that `path` is an existing directory the effective user may enter: the
/// errors a real `chdir(2)` would give, without changing the process-wide cwd (which
/// the event loop shares between sessions).
pub(super) fn check_enterable(path: &Path) -> io::Result<()> {
    if !std::fs::metadata(path)?.is_dir() {
        return Err(sys::not_a_directory());
    }
    sys::access_exec(path)
}

/// Sets access and modification time of `path` to `t` (MFMT).
pub(super) fn set_mtime(path: &Path, t: SystemTime) -> io::Result<()> {
    let (secs, nanos) = timefmt::unix_parts(t);
    sys::set_times(path, secs, nanos)
}

/// Unpredictable name suffixes, each from 64 fresh bits of the system's random source.
pub(super) struct NameSource {
    counter: u64,
}

impl NameSource {
    pub(super) fn new() -> Self {
        Self { counter: 0 }
    }

    pub(super) fn next_name(&mut self) -> String {
        self.counter += 1;
        let mut x = getrandom::u64().unwrap_or_else(|_| {
            // Only where the kernel offers neither getrandom(2) nor /dev/urandom. The
            // names then become guessable but still differ from one try to the next, and
            // O_EXCL keeps a guessed name from being used twice.
            let clock = SystemTime::now().duration_since(UNIX_EPOCH);
            let nanos = clock.map_or(0, |d| d.as_secs() ^ u64::from(d.subsec_nanos()) << 32);
            nanos.wrapping_add(self.counter)
        });
        let mut name = String::with_capacity(NAME_LEN);
        for _ in 0..NAME_LEN {
            let idx = (x % NAME_CHARS.len() as u64) as usize;
            name.push(char::from(NAME_CHARS[idx]));
            x /= NAME_CHARS.len() as u64;
        }
        name
    }
}

/// Python's `tempfile` alphabet; 37^8 names fit in 64 random bits.
const NAME_CHARS: &[u8; 37] = b"abcdefghijklmnopqrstuvwxyz0123456789_";
const NAME_LEN: usize = 8;
/// pyftpdlib sets `tempfile.TMP_MAX = 50`.
pub(super) const TMP_MAX: usize = 50;

/// `O_NONBLOCK` for `open(2)`: opening a FIFO with no peer would otherwise block the
/// whole loop. Cleared again on the regular files kept open.
const NO_BLOCK_ON_OPEN: i32 = libc::O_NONBLOCK;

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::fs;
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn names_are_eight_chars_from_the_alphabet() {
        let mut src = NameSource::new();
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let n = src.next_name();
            assert_eq!(n.len(), 8);
            assert!(n.bytes().all(|b| NAME_CHARS.contains(&b)), "{n}");
            seen.insert(n);
        }
        assert_eq!(seen.len(), 1000);
    }

    #[test]
    fn create_unique_makes_distinct_private_files() {
        let tmp = tempfile::tempdir().unwrap();
        let mut seen = HashSet::new();
        for _ in 0..20 {
            let (path, mut f) = create_unique(tmp.path(), "ftpd.").unwrap();
            f.write_all(b"x").unwrap();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            assert!(name.starts_with("ftpd."));
            assert_eq!(name.len(), "ftpd.".len() + 8);
            assert_eq!(path.parent(), Some(tmp.path()));
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            assert!(seen.insert(name));
        }
    }

    #[test]
    fn create_unique_refuses_separators_in_prefix() {
        let tmp = tempfile::tempdir().unwrap();
        let err = create_unique(tmp.path(), "../x.").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn create_unique_reports_missing_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let err = create_unique(&tmp.path().join("nope"), "f.").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn write_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        // REST+STOR needs an existing file
        assert!(open_write(&p, WriteMode::At(0)).is_err());
        open_write(&p, WriteMode::Truncate)
            .unwrap()
            .write_all(b"hello")
            .unwrap();
        open_write(&p, WriteMode::Append)
            .unwrap()
            .write_all(b" world")
            .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello world");
        open_write(&p, WriteMode::At(6))
            .unwrap()
            .write_all(b"WORLD")
            .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello WORLD");
        open_write(&p, WriteMode::Truncate)
            .unwrap()
            .write_all(b"x")
            .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"x");
        // APPE creates
        let q = tmp.path().join("g");
        open_write(&q, WriteMode::Append)
            .unwrap()
            .write_all(b"new")
            .unwrap();
        assert_eq!(fs::read(&q).unwrap(), b"new");
    }

    #[test]
    fn stor_over_a_file_with_data_writes_through_the_same_inode() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        let link = tmp.path().join("link");
        fs::write(&p, vec![7u8; 100_000]).unwrap();
        fs::hard_link(&p, &link).unwrap();
        let ino = fs::metadata(&p).unwrap().ino();
        let mut f = open_write(&p, WriteMode::Truncate).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().len(), 0, "emptied on open");
        assert_eq!(f.metadata().unwrap().ino(), ino);
        // renamed while the upload runs: the data still lands in it
        let moved = tmp.path().join("moved");
        fs::rename(&p, &moved).unwrap();
        f.write_all(b"new").unwrap();
        drop(f);
        assert_eq!(fs::read(&moved).unwrap(), b"new");
        assert_eq!(
            fs::read(&link).unwrap(),
            b"new",
            "hard links share the new data"
        );
    }

    #[test]
    fn open_read_refuses_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let err = open_read(tmp.path()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EISDIR));
        let p = tmp.path().join("f");
        fs::write(&p, b"data").unwrap();
        let mut s = String::new();
        open_read(&p).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "data");
    }

    #[test]
    fn files_kept_open_block_and_keep_append() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        fs::write(&p, b"x").unwrap();
        let nonblocking = |f: &File| {
            let fd = f.as_raw_fd();
            (sys::is_nonblocking(fd), sys::is_append_only(fd))
        };
        assert_eq!(nonblocking(&open_read(&p).unwrap()), (false, false));
        for mode in [WriteMode::Truncate, WriteMode::At(0)] {
            assert_eq!(nonblocking(&open_write(&p, mode).unwrap()), (false, false));
        }
        let appending = open_write(&p, WriteMode::Append).unwrap();
        assert_eq!(nonblocking(&appending), (false, true));
    }

    #[test]
    fn fifos_are_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .unwrap()
            .success());
        let err = open_read(&p).unwrap_err();
        assert_eq!(crate::error::strerror(&err), "Not a regular file");
        for mode in [WriteMode::Truncate, WriteMode::Append, WriteMode::At(0)] {
            // No reader: ENXIO from open(2) itself, or refused after it.
            assert!(open_write(&p, mode).is_err());
        }
    }

    #[test]
    fn enterable_checks() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(check_enterable(tmp.path()).is_ok());
        let f = tmp.path().join("f");
        fs::write(&f, b"").unwrap();
        assert_eq!(
            check_enterable(&f).unwrap_err().raw_os_error(),
            Some(libc::ENOTDIR)
        );
        let missing = tmp.path().join("missing");
        assert_eq!(
            check_enterable(&missing).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn set_mtime_round_trips_including_before_epoch() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        fs::write(&p, b"").unwrap();
        for t in [
            timefmt::parse_mfmt("20200102030405"),
            timefmt::parse_mfmt("19600101000000"),
        ] {
            let t = t.unwrap();
            set_mtime(&p, t).unwrap();
            let md = fs::metadata(&p).unwrap();
            assert_eq!(md.modified().unwrap(), t);
            assert_eq!(md.accessed().unwrap(), t);
        }
    }
}

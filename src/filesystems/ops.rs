//! The filesystem operations behind [`super::FileSystem`]'s default methods, each on a
//! [`Place`]: a path beneath the session's root, resolved so that it cannot leave it
//! (see [`super::beneath`]), or a path used as given (no root). Opening for each write
//! mode, STOU's unique names, the CWD check and setting times need more than one call.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::beneath::Place;
use super::{FileKind, FileStat, WriteMode};
use crate::{sys, timefmt};

/// Opens an existing file for RETR (Python's `open(p, "rb")`), refusing directories
/// with `EISDIR` as Python does, and anything else that is not a regular file.
pub(super) fn open_read(place: Place<'_>) -> io::Result<File> {
    let file = File::from(open(place, libc::O_RDONLY | NO_BLOCK_ON_OPEN, 0)?);
    regular_only(file).map(|(file, _)| file)
}

/// Opens the file for STOR (`wb`), APPE (`ab`) or STOR after REST (`r+b` then seek).
/// New files get mode `0666 & ~umask`. Only regular files are written to.
pub(super) fn open_write(place: Place<'_>, mode: WriteMode) -> io::Result<File> {
    let flags = match mode {
        // emptied below, once it is known to be a regular file
        WriteMode::Truncate => libc::O_WRONLY | libc::O_CREAT,
        WriteMode::Append => libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT,
        WriteMode::At(_) => libc::O_RDWR,
    };
    let opened = File::from(open(place, flags | NO_BLOCK_ON_OPEN, 0o666)?);
    let (mut file, size) = regular_only(opened)?;
    match mode {
        WriteMode::Truncate if size > 0 => file = emptied(file)?,
        WriteMode::At(offset) => {
            file.seek(SeekFrom::Start(offset))?;
        }
        WriteMode::Truncate | WriteMode::Append => {}
    }
    Ok(file)
}

/// `open(2)` of a place: beneath the root, or as given.
fn open(place: Place<'_>, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    match place {
        Place::Beneath(root, rel) => root.open_file(rel, flags, mode),
        Place::Anywhere(path) => sys::openat(sys::cwd(), path, flags, mode),
    }
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
    Ok(sys::openat(sys::cwd(), Path::new(&same_inode), libc::O_WRONLY, 0).map_or(file, File::from))
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

/// Creates a new file `<prefix><8 random chars>` in the directory `place` (whose path as
/// the caller spelled it is `dir`) with `O_CREAT|O_EXCL` and mode `0600`, retrying up to
/// 50 names (Python's `tempfile.mkstemp` with `TMP_MAX = 50`).
///
/// # Errors
/// `EINVAL` if `prefix` contains `/` or NUL (the file would land elsewhere), `EEXIST`
/// when all 50 names were taken, or the first other error from `open`.
pub(super) fn create_unique(
    place: Place<'_>,
    dir: &Path,
    prefix: &str,
) -> io::Result<(PathBuf, File)> {
    if prefix.contains(['/', '\0']) {
        return Err(sys::invalid_argument());
    }
    let dir_fd = open(place, libc::O_PATH | libc::O_DIRECTORY, 0)?;
    let mut names = NameSource::new();
    for _ in 0..TMP_MAX {
        let name = format!("{prefix}{}", names.next_name());
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        match sys::openat(dir_fd.as_fd(), Path::new(&name), flags, 0o600) {
            Ok(fd) => return Ok((dir.join(name), File::from(fd))),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(sys::file_exists())
}

/// Checks that the place is an existing directory the effective user may enter: the
/// errors a real `chdir(2)` would give, without changing the process-wide cwd (which
/// the event loop shares between sessions).
pub(super) fn check_enterable(place: Place<'_>) -> io::Result<()> {
    let dir = open(place, libc::O_PATH | libc::O_DIRECTORY, 0)?;
    sys::access_exec_dir(dir.as_fd())
}

/// MKD: `mkdir(2)` with mode `0777 & ~umask`.
pub(super) fn mkdir(place: Place<'_>) -> io::Result<()> {
    match place {
        Place::Beneath(root, rel) => {
            let entry = root.entry(rel, false)?;
            sys::mkdirat(entry.dir(), entry.name(), 0o777)
        }
        Place::Anywhere(path) => sys::mkdirat(sys::cwd(), path, 0o777),
    }
}

/// SITE SYMLINK: `symlinkat(2)` of the last component itself, whose parent is resolved
/// like any path; an existing name is `EEXIST`, never replaced.
pub(super) fn symlink(place: Place<'_>, text: &Path) -> io::Result<()> {
    match place {
        Place::Beneath(root, rel) => {
            let entry = root.entry(rel, false)?;
            sys::symlinkat(text, entry.dir(), entry.name())
        }
        Place::Anywhere(path) => sys::symlinkat(text, sys::cwd(), path),
    }
}

/// The text of a relative symlink in the directory `dir` that names `target`, both
/// canonical paths below `root` (`../docs/a.txt`): it climbs at most to `root`, so the
/// link stays inside wherever the tree is moved. `EACCES` if either lies outside.
pub(super) fn relative_link(root: &Path, dir: &Path, target: &Path) -> io::Result<PathBuf> {
    let (Ok(dir), Ok(target)) = (dir.strip_prefix(root), target.strip_prefix(root)) else {
        return Err(sys::permission_denied());
    };
    let dir: Vec<_> = dir.components().collect();
    let target: Vec<_> = target.components().collect();
    let shared = dir.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut text = PathBuf::new();
    for _ in shared..dir.len() {
        text.push("..");
    }
    for part in &target[shared..] {
        text.push(part);
    }
    if text.as_os_str().is_empty() {
        text.push(".");
    }
    Ok(text)
}

/// RMD (`directory`) or DELE: `rmdir(2)` or `unlink(2)` of the last component itself.
pub(super) fn remove(place: Place<'_>, directory: bool) -> io::Result<()> {
    match place {
        Place::Beneath(root, rel) => {
            let entry = root.entry(rel, false)?;
            sys::unlinkat(entry.dir(), entry.name(), directory)
        }
        Place::Anywhere(path) => sys::unlinkat(sys::cwd(), path, directory),
    }
}

/// RNFR/RNTO: `rename(2)`, both parents resolved first.
pub(super) fn rename(from: Place<'_>, to: Place<'_>) -> io::Result<()> {
    match (from, to) {
        (Place::Beneath(root_a, a), Place::Beneath(root_b, b)) => {
            let a = root_a.entry(a, false)?;
            let b = root_b.entry(b, false)?;
            sys::renameat(a.dir(), a.name(), b.dir(), b.name())
        }
        (Place::Anywhere(a), Place::Anywhere(b)) => sys::renameat(sys::cwd(), a, sys::cwd(), b),
        // `beneath::at_both` never mixes them; refuse rather than guess.
        (Place::Beneath(..), Place::Anywhere(_)) | (Place::Anywhere(_), Place::Beneath(..)) => {
            Err(sys::permission_denied())
        }
    }
}

/// SITE CHMOD: sets the permission bits of what the path names (following links that
/// stay inside).
///
/// Linux has no `chmod` that refuses a final symlink (before `fchmodat2`), so beneath
/// the root the file is opened without following one and changed through its
/// descriptor: read-only for a file or directory (no side effect), else through
/// `/proc/self/fd` of an `O_PATH` descriptor. Only when both fail (a file the user may
/// not read, /proc out of reach: impersonation makes /proc/self root's) is it changed
/// by name, after checking it is not a link.
pub(super) fn chmod(place: Place<'_>, mode: u32) -> io::Result<()> {
    let (root, rel) = match place {
        Place::Beneath(root, rel) => (root, rel),
        Place::Anywhere(path) => return sys::chmodat(sys::cwd(), path, mode),
    };
    let entry = root.entry(rel, true)?;
    let (dir, name) = (entry.dir(), entry.name());
    let st = sys::statat(dir, name, false)?;
    if st.is_symlink() {
        return Err(sys::too_many_links());
    }
    let nofollow = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
    if st.is_file() || st.is_dir() {
        if let Ok(fd) = sys::openat(dir, name, libc::O_RDONLY | nofollow, 0) {
            return sys::fchmod(fd.as_fd(), mode);
        }
    }
    let handle = sys::openat(dir, name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
    if sys::fstat(handle.as_fd())?.is_symlink() {
        return Err(sys::too_many_links());
    }
    let by_proc = format!("/proc/self/fd/{}", handle.as_raw_fd());
    match sys::chmodat(sys::cwd(), Path::new(&by_proc), mode) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EACCES)) => {
            sys::chmodat(dir, name, mode)
        }
        done => done,
    }
}

/// MFMT: sets access and modification time to `t`; beneath the root a final symlink
/// gets its own times set, never its target's.
pub(super) fn set_mtime(place: Place<'_>, t: SystemTime) -> io::Result<()> {
    let (secs, nanos) = timefmt::unix_parts(t);
    match place {
        Place::Beneath(root, rel) => {
            let entry = root.entry(rel, true)?;
            sys::set_times_at(entry.dir(), entry.name(), secs, nanos)
        }
        Place::Anywhere(path) => sys::set_times(path, secs, nanos),
    }
}

/// `stat(2)`: following symlinks (beneath the root, only those that stay inside).
pub(super) fn stat(place: Place<'_>) -> io::Result<FileStat> {
    let raw = match place {
        Place::Beneath(root, rel) => sys::fstat(root.open_file(rel, libc::O_PATH, 0)?.as_fd())?,
        Place::Anywhere(path) => sys::statat(sys::cwd(), path, true)?,
    };
    Ok(file_stat(&raw))
}

/// `lstat(2)`: a final symlink described as itself.
pub(super) fn lstat(place: Place<'_>) -> io::Result<FileStat> {
    let raw = match place {
        Place::Beneath(root, rel) => {
            let entry = root.entry(rel, false)?;
            sys::statat(entry.dir(), entry.name(), false)?
        }
        Place::Anywhere(path) => sys::statat(sys::cwd(), path, false)?,
    };
    Ok(file_stat(&raw))
}

/// `lstat(2)` of `name`, one component, in the directory open as `dir`.
pub(super) fn lstat_in(dir: BorrowedFd<'_>, name: &Path) -> io::Result<FileStat> {
    Ok(file_stat(&sys::statat(dir, name, false)?))
}

/// The names in a directory, without `.` and `..`.
pub(super) fn listdir(place: Place<'_>) -> io::Result<Vec<OsString>> {
    sys::read_dir_names(open(place, libc::O_RDONLY | libc::O_DIRECTORY, 0)?)
}

/// `readlink(2)` of the last component.
pub(super) fn readlink(place: Place<'_>) -> io::Result<PathBuf> {
    match place {
        Place::Beneath(root, rel) => {
            let entry = root.entry(rel, false)?;
            sys::readlinkat(entry.dir(), entry.name())
        }
        Place::Anywhere(path) => sys::readlinkat(sys::cwd(), path),
    }
}

/// A [`FileStat`] from what `stat(2)` reported.
fn file_stat(raw: &sys::RawStat) -> FileStat {
    let time = |(secs, nanos): (i64, u32)| {
        let whole = Duration::from_secs(secs.unsigned_abs());
        let base = if secs >= 0 {
            UNIX_EPOCH.checked_add(whole)
        } else {
            UNIX_EPOCH.checked_sub(whole)
        };
        base.and_then(|t| t.checked_add(Duration::from_nanos(nanos.into())))
            .unwrap_or(UNIX_EPOCH)
    };
    let mut st = FileStat::new(FileKind::from_mode(raw.mode), raw.size);
    st.mode = raw.mode & 0o7777;
    st.nlink = raw.nlink;
    st.uid = raw.uid;
    st.gid = raw.gid;
    st.mtime = time(raw.mtime);
    st.atime = time(raw.atime);
    st.dev = raw.dev;
    st.ino = raw.ino;
    st
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
            let (path, mut f) =
                create_unique(Place::Anywhere(tmp.path()), tmp.path(), "ftpd.").unwrap();
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
        let err = create_unique(Place::Anywhere(tmp.path()), tmp.path(), "../x.").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn create_unique_reports_missing_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let err =
            create_unique(Place::Anywhere(&tmp.path().join("nope")), tmp.path(), "f.").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn write_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        // REST+STOR needs an existing file
        assert!(open_write(Place::Anywhere(&p), WriteMode::At(0)).is_err());
        open_write(Place::Anywhere(&p), WriteMode::Truncate)
            .unwrap()
            .write_all(b"hello")
            .unwrap();
        open_write(Place::Anywhere(&p), WriteMode::Append)
            .unwrap()
            .write_all(b" world")
            .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello world");
        open_write(Place::Anywhere(&p), WriteMode::At(6))
            .unwrap()
            .write_all(b"WORLD")
            .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello WORLD");
        open_write(Place::Anywhere(&p), WriteMode::Truncate)
            .unwrap()
            .write_all(b"x")
            .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"x");
        // APPE creates
        let q = tmp.path().join("g");
        open_write(Place::Anywhere(&q), WriteMode::Append)
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
        let mut f = open_write(Place::Anywhere(&p), WriteMode::Truncate).unwrap();
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
        let err = open_read(Place::Anywhere(tmp.path())).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EISDIR));
        let p = tmp.path().join("f");
        fs::write(&p, b"data").unwrap();
        let mut s = String::new();
        open_read(Place::Anywhere(&p))
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
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
        assert_eq!(
            nonblocking(&open_read(Place::Anywhere(&p)).unwrap()),
            (false, false)
        );
        for mode in [WriteMode::Truncate, WriteMode::At(0)] {
            assert_eq!(
                nonblocking(&open_write(Place::Anywhere(&p), mode).unwrap()),
                (false, false)
            );
        }
        let appending = open_write(Place::Anywhere(&p), WriteMode::Append).unwrap();
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
        let err = open_read(Place::Anywhere(&p)).unwrap_err();
        assert_eq!(crate::error::strerror(&err), "Not a regular file");
        for mode in [WriteMode::Truncate, WriteMode::Append, WriteMode::At(0)] {
            // No reader: ENXIO from open(2) itself, or refused after it.
            assert!(open_write(Place::Anywhere(&p), mode).is_err());
        }
    }

    #[test]
    fn enterable_checks() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(check_enterable(Place::Anywhere(tmp.path())).is_ok());
        let f = tmp.path().join("f");
        fs::write(&f, b"").unwrap();
        assert_eq!(
            check_enterable(Place::Anywhere(&f))
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ENOTDIR)
        );
        let missing = tmp.path().join("missing");
        assert_eq!(
            check_enterable(Place::Anywhere(&missing))
                .unwrap_err()
                .kind(),
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
            set_mtime(Place::Anywhere(&p), t).unwrap();
            let md = fs::metadata(&p).unwrap();
            assert_eq!(md.modified().unwrap(), t);
            assert_eq!(md.accessed().unwrap(), t);
        }
    }
}

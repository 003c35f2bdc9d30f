//! Atomic uploads (`HandlerConfig::atomic_uploads`, proftpd's HiddenStores): STOR and
//! STOU write to a hidden temporary in the target's directory, renamed over the target
//! only once the whole upload arrived. Everything here goes through the
//! [`FileSystem`] trait (create, rename, remove, listdir, stat), so it works for every
//! filesystem, [`MemoryFs`](crate::filesystems::MemoryFs) included.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::filesystems::{FileSystem, FsFile, WriteMode};

/// Creates a fresh temporary for an upload to `target`, next to it (a rename across
/// directories could cross filesystems, and would not be atomic). Before that, removes
/// the temporaries in that directory that a killed process left behind.
///
/// # Errors
/// Creating the temporary failed (the caller replies as for the target itself).
pub(crate) fn create_part(fs: &dyn FileSystem, target: &Path) -> io::Result<(PathBuf, FsFile)> {
    let dir = target
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    sweep_stale(fs, &dir);
    // Several attempts: two uploads drawing the same 64 random bits is not expected,
    // but a name that exists is never reused (its upload may still run).
    for _ in 0..4 {
        let part = dir.join(part_name());
        if fs.lexists(&part) {
            continue;
        }
        let file = fs.open_write(&part, WriteMode::Truncate)?;
        return Ok((part, file));
    }
    Err(io::Error::from(io::ErrorKind::AlreadyExists))
}

/// Whether a name is one of our temporaries: hidden from listings, refused to clients.
pub(crate) fn is_part(name: &[u8]) -> bool {
    name.starts_with(PART_PREFIX.as_bytes())
}

/// Whether the last component of a client's path names a temporary.
pub(crate) fn names_part(path: &Path) -> bool {
    path.file_name().is_some_and(|n| is_part(n.as_bytes()))
}

/// Drops the temporaries from a directory listing.
pub(crate) fn hide_parts(names: &mut Vec<OsString>) {
    names.retain(|n| !is_part(n.as_bytes()));
}

/// Removes the temporaries in `dir` older than [`STALE_AFTER`]: a running upload writes
/// to its temporary all along, so one untouched for that long belongs to a process that
/// was killed. Failures are ignored: the sweep is housekeeping, the upload goes on.
pub(crate) fn sweep_stale(fs: &dyn FileSystem, dir: &Path) {
    let Ok(names) = fs.listdir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for name in names.iter().filter(|n| is_part(n.as_bytes())) {
        let path = dir.join(name);
        let stale = fs.lstat(&path).is_ok_and(|m| {
            m.is_file()
                && now
                    .duration_since(m.mtime)
                    .is_ok_and(|age| age >= STALE_AFTER)
        });
        if stale {
            match fs.remove(&path) {
                Ok(()) => log::info!("removed stale upload temporary {}", path.display()),
                Err(e) => log::debug!("stale temporary {}: {e}", path.display()),
            }
        }
    }
}

/// `.ftpdlib-part.` and 16 random hex digits.
fn part_name() -> String {
    let r = getrandom::u64().unwrap_or_else(|_| {
        // Only where the kernel offers no randomness: the clock still differs between
        // uploads, and `create_part` never reuses a name that exists.
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    format!("{PART_PREFIX}{r:016x}")
}

/// The start of every temporary's name.
pub(crate) const PART_PREFIX: &str = ".ftpdlib-part.";

/// Age after which a temporary is another process's leftover (uploads that stall for
/// longer hit the data timeout first, 300 s by default).
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(3600);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filesystems::MemoryFs;

    #[test]
    fn parts_are_recognised_by_prefix() {
        assert!(is_part(b".ftpdlib-part.0123456789abcdef"));
        assert!(!is_part(b"ftpdlib-part.x"));
        assert!(names_part(Path::new("/a/.ftpdlib-part.x")));
        assert!(!names_part(Path::new("/.ftpdlib-part.x/y")));
        let mut names = vec![OsString::from("a"), OsString::from(".ftpdlib-part.1")];
        hide_parts(&mut names);
        assert_eq!(names, vec![OsString::from("a")]);
    }

    #[test]
    fn a_part_is_created_next_to_its_target_and_fresh_ones_survive_the_sweep() {
        let mem = MemoryFs::new();
        mem.write_file("/d/f", b"old").unwrap();
        let (part, _file) = create_part(&mem, Path::new("/d/f")).unwrap();
        assert_eq!(part.parent(), Some(Path::new("/d")));
        assert!(names_part(&part));
        sweep_stale(&mem, Path::new("/d"));
        assert!(
            mem.lexists(&part),
            "a fresh temporary may belong to a running upload"
        );
        let old = SystemTime::now() - STALE_AFTER - Duration::from_secs(1);
        mem.set_mtime(&part, old).unwrap();
        sweep_stale(&mem, Path::new("/d"));
        assert!(!mem.lexists(&part));
        assert!(mem.lexists(Path::new("/d/f")));
    }
}

//! Uploads that never mix two versions of a file. Their temporaries are named
//! `.ftpdlib-part.<host>.<pid>.<random>`, in the target's directory (a rename across
//! directories could cross filesystems, and would not be atomic):
//!
//! - atomic uploads (`HandlerConfig::atomic_uploads`, proftpd's HiddenStores): STOR and
//!   STOU write to a temporary, renamed over the target only once the whole upload
//!   arrived;
//! - a plain STOR over an existing file: a new file is created beside it and renamed over
//!   the old name at once, before the first byte arrives ([`replace_at_start`]), so that
//!   the upload is seen growing under its name as with pyftpdlib, while a download that
//!   runs keeps reading the old file, whole, from its own descriptor.
//!
//! Either way the new file keeps the old one's permission bits, and the old file is
//! released on a file thread: when the server holds its last reference, closing it frees
//! its blocks, which for a large file must not stall the loop.
//!
//! Everything goes through the [`FileSystem`] trait (create, rename, chmod, remove,
//! listdir, stat), so it works for every filesystem, [`MemoryFs`] included. The
//! start-up sweep ([`sweep_stale_uploads`]) is the exception: it runs before any session,
//! on a thread of its own, over the OS directories served.
//!
//! [`MemoryFs`]: crate::filesystems::MemoryFs

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::filesystems::{FileSystem, FsFile, WriteMode};

/// Creates a fresh temporary for an upload to `target`, next to it. With `sweep`, first
/// removes the temporaries in that directory that are stale by that age (see
/// [`is_stale`]).
///
/// # Errors
/// Creating the temporary failed (the caller replies as for the target itself).
pub(crate) fn create_part(
    fs: &dyn FileSystem,
    target: &Path,
    sweep: Option<Duration>,
) -> io::Result<(PathBuf, FsFile)> {
    let dir = target
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    if let Some(stale_after) = sweep {
        sweep_stale(fs, &dir, stale_after);
    }
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

/// A plain STOR over `target`: when it is a regular file that a new file can replace
/// without changing anything but its content (one link, owned by whom the new file
/// will belong to), creates the new file beside it with its permission bits and renames
/// it over the name. Returns the new file, open for writing, and the old one, open for
/// reading when it could be opened, to be released on a file thread.
///
/// None when `target` is missing, not such a file, or any step failed: the caller then
/// opens `target` for writing in place, as before (a symlink keeps pointing at the file
/// it names, hard links keep sharing it, a file in a directory the user may not write
/// in can still be overwritten). A failed step leaves no temporary.
pub(crate) fn replace_at_start(
    fs: &dyn FileSystem,
    target: &Path,
) -> Option<(FsFile, Option<FsFile>)> {
    let old = fs.lstat(target).ok()?;
    if !old.is_file() || old.nlink > 1 || old.uid != crate::sys::effective_uid() {
        return None;
    }
    let (part, file) = match create_part(fs, target, None) {
        Ok(created) => created,
        Err(e) => {
            log::debug!("writing {} in place: {e}", target.display());
            return None;
        }
    };
    match replace(fs, &part, target) {
        Ok(held) => Some((file, held)),
        Err(e) => {
            log::debug!("writing {} in place: {e}", target.display());
            drop(file);
            let _ = fs.remove(&part);
            None
        }
    }
}

/// Renames the temporary `part` over `target`. When `target` is a regular file, `part`
/// first takes its permission bits (without setuid / setgid: the content is new), and
/// the old file is opened for reading so that the rename does not drop its last
/// reference; that open file is returned, for the caller to release off the loop.
///
/// # Errors
/// The error of the rename; `part` is left for the caller to remove.
pub(crate) fn replace(
    fs: &dyn FileSystem,
    part: &Path,
    target: &Path,
) -> io::Result<Option<FsFile>> {
    let held = match fs.lstat(target) {
        Ok(old) if old.is_file() => {
            if let Err(e) = fs.chmod(part, old.mode & 0o1777) {
                // The content matters more than its mode: the new file keeps the mode
                // a new upload gets.
                log::debug!("mode of {} not kept: {e}", target.display());
            }
            // Unreadable (a write-only file): the rename then frees it on this thread.
            fs.open_read(target).ok()
        }
        Ok(_) | Err(_) => None,
    };
    fs.rename(part, target)?;
    Ok(held)
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

/// How old a temporary must be to belong to no running upload, for a data timeout of
/// `data_timeout`: a running upload writes to its temporary at least that often, or is
/// cut. A minute more for the clocks of hosts that share the storage; an hour without a
/// data timeout.
pub(crate) fn stale_after(data_timeout: Option<Duration>) -> Duration {
    data_timeout.map_or(STALE_WITHOUT_TIMEOUT, |t| t + CLOCK_SLACK)
}

/// Removes the temporaries in `dir` that [`is_stale`] says nobody writes to any more.
/// Failures are ignored: the sweep is housekeeping, the upload goes on.
pub(crate) fn sweep_stale(fs: &dyn FileSystem, dir: &Path, stale_after: Duration) {
    let Ok(names) = fs.listdir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for name in names.iter().filter(|n| is_part(n.as_bytes())) {
        let path = dir.join(name);
        let stale = fs
            .lstat(&path)
            .is_ok_and(|m| m.is_file() && is_stale(name.as_bytes(), m.mtime, now, stale_after));
        if stale {
            match fs.remove(&path) {
                Ok(()) => log::info!("removed stale upload temporary {}", path.display()),
                Err(e) => log::debug!("stale temporary {}: {e}", path.display()),
            }
        }
    }
}

/// Whether the temporary `name`, last modified at `mtime`, belongs to no running upload:
/// it was made on this host by a process that is gone (not this one), or nobody wrote
/// to it for `stale_after`. A temporary of another host sharing the storage, or of a
/// live process here, counts by its age alone.
pub(crate) fn is_stale(
    name: &[u8],
    mtime: SystemTime,
    now: SystemTime,
    stale_after: Duration,
) -> bool {
    let old = now
        .duration_since(mtime)
        .is_ok_and(|age| age >= stale_after);
    let orphan = match part_form(name) {
        Some(PartForm::Owned { host, pid }) => {
            host == host_name().as_bytes()
                && u32::try_from(crate::sys::process_id()).ok() != Some(pid)
                && !crate::sys::task_exists(pid)
        }
        Some(PartForm::Anonymous) | None => false,
    };
    old || orphan
}

/// Starts a thread that removes the stale upload temporaries under `roots`, and returns
/// it; the thread yields how many it removed. Temporaries that a process killed
/// mid-upload left behind go at start-up, while the server already serves.
///
/// A temporary is stale when it was made on this host by a process that no longer exists
/// (its name says `.ftpdlib-part.<host>.<pid>.<random>`), or when nobody wrote to it for
/// `data_timeout` plus a minute (an hour without a data timeout): those of another
/// instance sharing the storage stay while it writes to them. Only names of the forms the
/// server makes are removed (a user's own `.ftpdlib-part.notes` stays where atomic
/// uploads are off and the prefix is not reserved). The walk follows no symlink and
/// stops after 1,000,000 entries.
///
/// With `logging` false nothing is logged: a process that forks while the thread runs
/// must not fork it holding the logger's lock.
///
/// # Errors
/// The thread could not be started.
pub fn sweep_stale_uploads(
    roots: Vec<PathBuf>,
    data_timeout: Option<Duration>,
    logging: bool,
) -> io::Result<JoinHandle<usize>> {
    let stale_after = stale_after(data_timeout);
    std::thread::Builder::new()
        .name("ftp-part-sweep".into())
        .spawn(move || {
            crate::sys::block_exit_signals();
            let mut budget = SWEEP_MAX_ENTRIES;
            let mut removed = 0;
            for root in &roots {
                removed += sweep_tree(root, stale_after, &mut budget, logging);
            }
            if !logging {
                return removed;
            }
            if budget == 0 {
                log::info!(
                    "start-up sweep of upload temporaries stopped after {SWEEP_MAX_ENTRIES} entries"
                );
            }
            if removed > 0 {
                log::info!("removed {removed} stale upload temporaries at start-up");
            }
            removed
        })
}

/// The start-up sweep of one tree, depth first, within `budget` entries.
fn sweep_tree(root: &Path, stale_after: Duration, budget: &mut usize, logging: bool) -> usize {
    let mut removed = 0;
    let mut dirs = vec![root.to_path_buf()];
    let now = SystemTime::now();
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if *budget == 0 {
                return removed;
            }
            *budget -= 1;
            // The entry's own type: a symlink is never followed.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() && part_form(name.as_bytes()).is_some() {
                let stale = entry.metadata().is_ok_and(|m| {
                    m.modified()
                        .is_ok_and(|t| is_stale(name.as_bytes(), t, now, stale_after))
                });
                if stale {
                    let path = entry.path();
                    match std::fs::remove_file(&path) {
                        Ok(()) => {
                            removed += 1;
                            if logging {
                                log::info!("removed stale upload temporary {}", path.display());
                            }
                        }
                        Err(e) if logging => {
                            log::debug!("stale temporary {}: {e}", path.display());
                        }
                        Err(_) => {}
                    }
                }
            }
        }
    }
    removed
}

/// `.ftpdlib-part.<host>.<pid>.<16 random hex digits>`.
fn part_name() -> String {
    let r = getrandom::u64().unwrap_or_else(|_| {
        // Only where the kernel offers no randomness: the clock still differs between
        // uploads, and `create_part` never reuses a name that exists.
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    // The pid of now, not of start-up: a pre-fork worker writes under its own.
    let pid = crate::sys::process_id();
    format!("{PART_PREFIX}{}.{pid}.{r:016x}", host_name())
}

/// The forms of the names the server gives its temporaries.
#[derive(Debug, PartialEq, Eq)]
enum PartForm<'a> {
    /// `.ftpdlib-part.<16 hex digits>`, from versions that did not name the owner.
    Anonymous,
    /// `.ftpdlib-part.<host>.<pid>.<16 hex digits>`.
    Owned { host: &'a [u8], pid: u32 },
}

/// The form of a temporary's name; None for a name the server does not make.
fn part_form(name: &[u8]) -> Option<PartForm<'_>> {
    let rest = name.strip_prefix(PART_PREFIX.as_bytes())?;
    let is_random = |r: &[u8]| r.len() == 16 && r.iter().all(u8::is_ascii_hexdigit);
    if is_random(rest) {
        return Some(PartForm::Anonymous);
    }
    let mut fields = rest.rsplitn(3, |&b| b == b'.');
    let random = fields.next()?;
    let pid = fields.next()?;
    let host = fields.next()?;
    if !is_random(random) || host.is_empty() || !pid.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let pid = std::str::from_utf8(pid).ok()?.parse().ok()?;
    Some(PartForm::Owned { host, pid })
}

/// This host's name (the kernel's, as `hostname` prints it), reduced to letters, digits,
/// `-`, `_` and `.` so that it fits in a file name; `localhost` when unknown.
fn host_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let name: String = raw
            .trim()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if name.is_empty() {
            "localhost".to_owned()
        } else {
            name
        }
    })
}

/// The start of every temporary's name.
pub(crate) const PART_PREFIX: &str = ".ftpdlib-part.";

/// [`stale_after`] without a data timeout: an upload may then stall for ever, so only
/// an hour of silence (or a dead process of this host) makes a temporary stale.
const STALE_WITHOUT_TIMEOUT: Duration = Duration::from_secs(3600);

/// How far the clocks of hosts sharing the storage may disagree.
const CLOCK_SLACK: Duration = Duration::from_secs(60);

/// The most directory entries the start-up sweep looks at.
pub(crate) const SWEEP_MAX_ENTRIES: usize = 1_000_000;

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
    fn a_part_names_its_host_and_process() {
        let name = part_name();
        let Some(PartForm::Owned { host, pid }) = part_form(name.as_bytes()) else {
            panic!("{name} is not of our own form");
        };
        assert_eq!(host, host_name().as_bytes());
        assert_eq!(i64::from(pid), i64::from(crate::sys::process_id()));
        assert_eq!(
            part_form(b".ftpdlib-part.web.example.org.42.0123456789abcdef"),
            Some(PartForm::Owned {
                host: b"web.example.org",
                pid: 42
            })
        );
        assert_eq!(
            part_form(b".ftpdlib-part.0123456789abcdef"),
            Some(PartForm::Anonymous)
        );
        assert_eq!(part_form(b".ftpdlib-part.h.x1.0123456789abcdef"), None);
        assert_eq!(part_form(b".ftpdlib-part.h.1.00ff"), None);
        assert_eq!(part_form(b".ftpdlib-part.notes"), None);
    }

    #[test]
    fn only_dead_processes_of_this_host_or_old_parts_are_stale() {
        let now = SystemTime::now();
        let fresh = now;
        let after = Duration::from_secs(360);
        let old = now - after - Duration::from_secs(1);
        let me = crate::sys::process_id();
        let host = host_name();
        // A process that has ended: a child reaped.
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let dead = child.id();
        child.wait().expect("wait");
        let ours = format!(".ftpdlib-part.{host}.{me}.0123456789abcdef");
        let orphan = format!(".ftpdlib-part.{host}.{dead}.0123456789abcdef");
        let elsewhere = format!(".ftpdlib-part.{host}x.{dead}.0123456789abcdef");
        assert!(!is_stale(ours.as_bytes(), fresh, now, after));
        assert!(is_stale(ours.as_bytes(), old, now, after));
        assert!(is_stale(orphan.as_bytes(), fresh, now, after));
        assert!(!is_stale(elsewhere.as_bytes(), fresh, now, after));
        assert!(is_stale(elsewhere.as_bytes(), old, now, after));
        assert!(!is_stale(
            b".ftpdlib-part.0123456789abcdef",
            fresh,
            now,
            after
        ));
        assert_eq!(stale_after(Some(Duration::from_secs(300))), after);
        assert_eq!(stale_after(None), STALE_WITHOUT_TIMEOUT);
    }

    #[test]
    fn a_part_is_created_next_to_its_target_and_fresh_ones_survive_the_sweep() {
        let mem = MemoryFs::new();
        mem.write_file("/d/f", b"old").unwrap();
        let after = Duration::from_secs(60);
        let (part, _file) = create_part(&mem, Path::new("/d/f"), Some(after)).unwrap();
        assert_eq!(part.parent(), Some(Path::new("/d")));
        assert!(names_part(&part));
        sweep_stale(&mem, Path::new("/d"), after);
        assert!(
            mem.lexists(&part),
            "a fresh temporary may belong to a running upload"
        );
        let old = SystemTime::now() - after - Duration::from_secs(1);
        mem.set_mtime(&part, old).unwrap();
        sweep_stale(&mem, Path::new("/d"), after);
        assert!(!mem.lexists(&part));
        assert!(mem.lexists(Path::new("/d/f")));
    }

    #[test]
    fn a_replaced_file_keeps_its_mode_and_its_readers_keep_the_old_content() {
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = crate::filesystems::AbstractedFs::new(dir.path().to_path_buf()).unwrap();
        let target = fs.root().join("f");
        std::fs::write(&target, b"old content").unwrap();
        fs.chmod(&target, 0o640).unwrap();
        let mut reader = fs.open_read(&target).unwrap();
        let (mut file, held) = replace_at_start(&fs, &target).expect("replaced");
        assert!(held.is_some(), "the old file is held across the rename");
        file.write_all(b"new").unwrap();
        drop(file);
        let mut old = Vec::new();
        reader.read_to_end(&mut old).unwrap();
        assert_eq!(old, b"old content");
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(fs.stat(&target).unwrap().mode & 0o7777, 0o640);
        let names = fs.listdir(fs.root()).unwrap();
        assert_eq!(names, vec![OsString::from("f")], "no temporary left");
        // A file with a second link is written in place: the links keep sharing it.
        std::fs::hard_link(&target, fs.root().join("g")).unwrap();
        assert!(replace_at_start(&fs, &target).is_none());
        assert!(replace_at_start(&fs, &fs.root().join("missing")).is_none());
    }
}

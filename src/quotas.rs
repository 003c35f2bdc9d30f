//! Per-user quotas: a limit on the bytes and on the number of files under a user's home
//! ([`Quota`], given by `Authorizer::quota`), and what the server knows of the usage.
//!
//! The usage of a user's home is walked once, at the first login that needs it, and then
//! kept in a table of this process shared by all that user's sessions (on every loop and
//! thread), updated by the server's own uploads, deletions and renames. It is walked again
//! by `SITE QUOTA SYNC` and, at a login, when the last walk is older than
//! [`RESYNC_AFTER`] (changes made behind the server's back, or by another process of a
//! forking model, are seen then). See `docs/quotas.md`.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::filesystems::FileSystem;

/// A user's limits; `None` is no limit on that count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    /// The most bytes the user's files may hold in total (their sizes, not disk blocks).
    pub bytes: Option<u64>,
    /// The most files (anything but directories) the user's home may hold.
    pub files: Option<u64>,
}

impl Quota {
    /// Whether this quota limits anything.
    pub fn is_limited(&self) -> bool {
        self.bytes.is_some() || self.files.is_some()
    }
}

/// Parses a count of bytes or files: digits with an optional `K`, `M` or `G` suffix
/// (powers of 1024), as `--quota-bytes 500M`.
///
/// # Errors
/// A text that is not such a number, or one too large.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, factor) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("invalid size '{text}': use a number with K, M or G"))
}

/// At a login, a usage walked longer ago than this is walked again.
pub const RESYNC_AFTER: Duration = Duration::from_secs(15 * 60);

/// `SITE QUOTA SYNC` walks a home at most this often: the walk runs on the loop, and a
/// client repeating the command must not hold the other sessions for ever.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(2);

/// The most entries a walk visits; a larger home counts only these (logged).
const WALK_LIMIT: usize = 1_000_000;

/// The usage of one user's home, shared by that user's sessions in this process.
#[derive(Debug)]
pub(crate) struct Usage {
    bytes: AtomicU64,
    files: AtomicU64,
    synced: Mutex<Instant>,
}

impl Usage {
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn files(&self) -> u64 {
        self.files.load(Ordering::Relaxed)
    }

    /// Adds `n` bytes unless that goes over `limit`.
    fn try_add_bytes(&self, n: u64, limit: Option<u64>) -> bool {
        self.bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                let next = used.saturating_add(n);
                limit.is_none_or(|l| next <= l).then_some(next)
            })
            .is_ok()
    }

    /// Adds (or with a negative `delta`, takes away) bytes, never below zero.
    pub(crate) fn adjust_bytes(&self, delta: i128) {
        let _ = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some((i128::from(used) + delta).clamp(0, i128::from(u64::MAX)) as u64)
            });
    }

    /// Counts one more file unless the count is at `limit`.
    pub(crate) fn try_add_file(&self, limit: Option<u64>) -> bool {
        self.files
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                limit.is_none_or(|l| used < l).then_some(used + 1)
            })
            .is_ok()
    }

    /// Counts one file less.
    pub(crate) fn remove_file(&self) {
        let _ = self
            .files
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(1))
            });
    }

    fn store(&self, (bytes, files): (u64, u64)) {
        self.bytes.store(bytes, Ordering::Relaxed);
        self.files.store(files, Ordering::Relaxed);
        if let Ok(mut synced) = self.synced.lock() {
            *synced = Instant::now();
        }
    }

    pub(crate) fn synced_within(&self, age: Duration) -> bool {
        self.synced.lock().is_ok_and(|s| s.elapsed() < age)
    }
}

type Table = Mutex<HashMap<(String, PathBuf), Arc<Usage>>>;

/// The usages of this process, by user name and home directory (two servers of one
/// process may have a user of the same name with different homes).
fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(Table::default)
}

/// The usage of `user`'s home `home`, seen through `fs` (the user's view, rooted at the
/// home). Walks the home when nobody did yet in this process, when `resync` (unless the
/// last walk is younger than [`SYNC_INTERVAL`]), or when the last walk is older than
/// `max_age`; and whether it walked.
///
/// The walk runs on the calling thread (the loop's, or an auth worker's through
/// [`prime`]): it lists every directory of the home once, as `du` would.
pub(crate) fn usage_of(
    user: &str,
    home: &Path,
    fs: &dyn FileSystem,
    resync: bool,
    max_age: Duration,
) -> (Arc<Usage>, bool) {
    let key = (user.to_owned(), home.to_path_buf());
    let existing = table().lock().ok().and_then(|t| t.get(&key).cloned());
    if let Some(usage) = &existing {
        let age = if resync { SYNC_INTERVAL } else { max_age };
        if usage.synced_within(age) {
            return (Arc::clone(usage), false);
        }
    }
    let started = Instant::now();
    let counted = walk(fs);
    log::info!(
        "quota usage of {user:?} walked: {} bytes in {} files, {} ms",
        counted.0,
        counted.1,
        started.elapsed().as_millis()
    );
    match existing {
        Some(usage) => {
            usage.store(counted);
            (usage, true)
        }
        None => {
            let usage = Arc::new(Usage {
                bytes: AtomicU64::new(counted.0),
                files: AtomicU64::new(counted.1),
                synced: Mutex::new(Instant::now()),
            });
            if let Ok(mut t) = table().lock() {
                // Another thread may have walked meanwhile: keep the first entry, so
                // that every session shares one count.
                let kept = t.entry(key).or_insert_with(|| Arc::clone(&usage));
                kept.store(counted);
                return (Arc::clone(kept), true);
            }
            (usage, true)
        }
    }
}

/// On a worker thread, after a password check that let `user` in: walks their `home`
/// now if the login would (a `quota` with a limit, and a home never walked in this
/// process or walked longer than [`RESYNC_AFTER`] ago), so that the loop finds the usage
/// ready. `filesystem` gives a view of the home of its own (the authorizer's).
pub(crate) fn prime(
    user: &str,
    home: &Path,
    quota: Option<Quota>,
    filesystem: impl FnOnce() -> Option<Box<dyn FileSystem>>,
) {
    if !quota.is_some_and(|q| q.is_limited()) {
        return;
    }
    let key = (user.to_owned(), home.to_path_buf());
    let fresh = table()
        .lock()
        .ok()
        .and_then(|t| t.get(&key).map(|u| u.synced_within(RESYNC_AFTER)))
        .unwrap_or(false);
    if fresh {
        return;
    }
    if let Some(fs) = filesystem() {
        usage_of(user, home, fs.as_ref(), false, RESYNC_AFTER);
    }
}

/// Bytes and files under the root of `fs`, not following symbolic links to directories
/// and leaving out the temporaries of atomic uploads (those in progress are counted as
/// they are written).
fn walk(fs: &dyn FileSystem) -> (u64, u64) {
    use std::os::unix::ffi::OsStrExt;
    let mut bytes = 0u64;
    let mut files = 0u64;
    let mut visited = 0usize;
    let mut dirs = vec![fs.root().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(names) = fs.listdir(&dir) else {
            continue;
        };
        for name in names {
            visited += 1;
            if visited > WALK_LIMIT {
                log::warn!("quota walk stopped after {WALK_LIMIT} entries");
                return (bytes, files);
            }
            if crate::handlers::atomic::is_part(name.as_bytes()) {
                continue;
            }
            let path = dir.join(&name);
            match fs.lstat(&path) {
                Ok(m) if m.is_dir() => dirs.push(path),
                Ok(m) => {
                    bytes = bytes.saturating_add(m.size);
                    files += 1;
                }
                Err(_) => {}
            }
        }
    }
    (bytes, files)
}

/// The error a write over the quota fails with: `EDQUOT`, answered `552`.
pub(crate) fn exceeded() -> io::Error {
    io::Error::from_raw_os_error(libc::EDQUOT)
}

/// One upload's account: what it adds to the usage as its blocks are written. The data
/// channel charges each block before writing it and stops the upload at the first one
/// that would go over the limit.
#[derive(Debug)]
pub(crate) struct UploadMeter {
    usage: Arc<Usage>,
    limit: Option<u64>,
    /// The size of the file before the upload (0 for a new file): writing below it
    /// does not grow the usage.
    old_size: u64,
    /// Where the next write lands.
    pos: AtomicU64,
    /// The bytes added to the usage so far.
    charged: AtomicU64,
    exceeded: AtomicBool,
}

impl UploadMeter {
    pub(crate) fn new(usage: Arc<Usage>, limit: Option<u64>, old_size: u64, start: u64) -> Self {
        UploadMeter {
            usage,
            limit,
            old_size,
            pos: AtomicU64::new(start),
            charged: AtomicU64::new(0),
            exceeded: AtomicBool::new(false),
        }
    }

    /// Accounts for `n` bytes about to be written.
    ///
    /// # Errors
    /// `EDQUOT` when they would take the usage over the limit; nothing is charged then.
    pub(crate) fn charge(&self, n: u64) -> io::Result<()> {
        let pos = self.pos.load(Ordering::Relaxed);
        let end = pos.saturating_add(n);
        let growth = end.saturating_sub(pos.max(self.old_size));
        if growth > 0 && !self.usage.try_add_bytes(growth, self.limit) {
            self.exceeded.store(true, Ordering::Relaxed);
            return Err(exceeded());
        }
        self.charged.fetch_add(growth, Ordering::Relaxed);
        self.pos.store(end, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn usage(&self) -> &Usage {
        &self.usage
    }

    pub(crate) fn old_size(&self) -> u64 {
        self.old_size
    }

    pub(crate) fn charged(&self) -> u64 {
        self.charged.load(Ordering::Relaxed)
    }

    /// Whether the upload was stopped by the quota.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }
}

/// The quota side of a running upload (held by the session while it runs).
#[derive(Debug)]
pub(crate) struct UploadQuota {
    pub(crate) meter: Arc<UploadMeter>,
    /// The upload made the file at `path` (a new file, or a STOR that replaced the old
    /// one at its start): a cut by the quota removes it.
    pub(crate) made_file: bool,
    /// A STOR that replaced an existing file: removing the upload removes that file.
    pub(crate) replaced: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(bytes: u64) -> Arc<Usage> {
        Arc::new(Usage {
            bytes: AtomicU64::new(bytes),
            files: AtomicU64::new(0),
            synced: Mutex::new(Instant::now()),
        })
    }

    #[test]
    fn a_meter_charges_only_growth_and_stops_at_the_limit() {
        let u = usage(100);
        // Appending to a 10-byte file under a 120-byte limit.
        let m = UploadMeter::new(Arc::clone(&u), Some(120), 10, 10);
        m.charge(20).unwrap();
        assert_eq!(u.bytes(), 120);
        assert!(m.charge(1).is_err());
        assert!(m.exceeded());
        assert_eq!(m.charged(), 20);
        // Rewriting inside an old file's extent costs nothing.
        let m = UploadMeter::new(Arc::clone(&u), Some(120), 50, 0);
        m.charge(50).unwrap();
        assert_eq!(m.charged(), 0);
        assert!(m.charge(1).is_err());
    }

    #[test]
    fn sizes_take_suffixes() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("2k"), Ok(2048));
        assert_eq!(parse_size("3M"), Ok(3 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("1X").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999G").is_err());
    }

    #[test]
    fn file_counts_stop_at_the_limit() {
        let u = usage(0);
        assert!(u.try_add_file(Some(1)));
        assert!(!u.try_add_file(Some(1)));
        u.remove_file();
        assert_eq!(u.files(), 0);
        u.adjust_bytes(-5);
        assert_eq!(u.bytes(), 0);
    }
}

//! Symlink races (time of check to time of use): while a client works in `root/dir`, a
//! thread swaps `dir` with a prepared symlink to a directory outside the root, as fast
//! as it can. The path check sees one and the operation may meet the other; the server
//! must never read, list, create or change anything outside.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

use rustix::fs::{renameat_with, RenameFlags, CWD};

use crate::util::{Client, TestServer};

/// In every file outside, so that any byte of it in a reply shows.
const MARKER: &[u8] = b"OUTSIDE-SECRET-7f3a";
/// In every name outside, so that a listing of it shows.
const OUTSIDE_NAME: &str = "outside-only";
/// The outside file's size: no SIZE reply may say it.
const OUTSIDE_SIZE: usize = 7_777;
/// The outside files' modification time (2001-02-03 04:05:06 UTC): no MDTM may say it.
const OUTSIDE_MTIME: i64 = 981_173_106;
const OUTSIDE_MDTM: &str = "20010203040506";

const ROUNDS: usize = 120;
const TIME_LIMIT: Duration = Duration::from_secs(60);

#[test]
fn swapping_a_directory_for_a_link_outside_never_leads_outside() {
    let srv = TestServer::with(
        |c| {
            c.site_utime = true;
            c.site_symlink = true;
        },
        |_| {},
    );
    let root = srv.root();
    let outside = srv.outside();
    make_outside(&outside);
    let inside = root.join("dir");
    std::fs::create_dir(&inside).expect("mkdir dir");
    for name in ["f", "g"] {
        std::fs::write(inside.join(name), b"inside\n").expect("write inside");
    }
    std::fs::create_dir(inside.join("emptydir")).expect("mkdir emptydir");
    let swap = root.join(".swap");
    symlink(&outside, &swap).expect("prepared link");
    let before = snapshot(&outside);

    let flipper = Flipper::start(inside.clone(), swap.clone());
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let started = Instant::now();
    let mut served = 0usize;
    for round in 0..ROUNDS {
        if started.elapsed() > TIME_LIMIT {
            break;
        }
        served += one_round(&mut c, round);
    }
    let flips = flipper.stop();
    // Leave `dir` as the real directory.
    if std::fs::symlink_metadata(&inside)
        .expect("lstat dir")
        .file_type()
        .is_symlink()
    {
        renameat_with(CWD, &inside, CWD, &swap, RenameFlags::EXCHANGE).expect("swap back");
    }
    c.expect("QUIT", 221);

    assert!(flips > 1_000, "the link flipped only {flips} times");
    assert!(
        served > 0,
        "no command ever succeeded inside: the test proves nothing"
    );
    let after = snapshot(&outside);
    assert_eq!(before, after, "the tree outside the root changed");
    srv.wait_idle();
}

/// The thread that swaps `dir` and the link, until stopped (also when the test fails
/// first) or after a bounded number of exchanges.
struct Flipper {
    stop: Arc<AtomicBool>,
    flips: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Flipper {
    fn start(a: PathBuf, b: PathBuf) -> Flipper {
        let stop = Arc::new(AtomicBool::new(false));
        let flips = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, flips) = (Arc::clone(&stop), Arc::clone(&flips));
            thread::spawn(move || {
                for _ in 0..50_000_000u64 {
                    if stop.load(Ordering::Relaxed)
                        || renameat_with(CWD, &a, CWD, &b, RenameFlags::EXCHANGE).is_err()
                    {
                        break;
                    }
                    flips.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        Flipper {
            stop,
            flips,
            thread: Some(thread),
        }
    }

    /// Stops the thread; the number of exchanges it made.
    fn stop(mut self) -> u64 {
        self.halt();
        self.flips.load(Ordering::Relaxed)
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Flipper {
    fn drop(&mut self) {
        self.halt();
    }
}

/// One pass over every command that takes a path, each through `dir`. Returns how many
/// of them succeeded (inside the root).
fn one_round(c: &mut Client, round: usize) -> usize {
    let mut ok = 0;
    let mut count = |good: bool| ok += usize::from(good);
    count(upload(c, "STOR dir/f", b"inside\n"));
    if let Some(bytes) = download(c, "RETR dir/f") {
        assert_clean(&bytes, "RETR dir/f");
        count(true);
    }
    if c.cmd("CWD dir").0 == 250 {
        count(upload(c, "STOR g", b"inside\n"));
        count(upload(c, "STOU", b"unique\n"));
        c.expect("CWD /", 250);
    }
    count(upload(c, "STOU dir/u", b"unique\n"));
    count(upload(c, "APPE dir/g", b"more\n"));
    for line in [
        "LIST dir",
        "LIST -a dir",
        "NLST dir",
        "MLSD dir",
        "LIST dir/f",
    ] {
        if let Some(bytes) = download(c, line) {
            assert_clean(&bytes, line);
            count(true);
        }
    }
    for line in ["STAT dir", "MLST dir/f", "MLST dir/sub"] {
        let (code, text) = c.cmd(line);
        assert_clean(text.as_bytes(), line);
        count(code < 300);
    }
    let mkd = c.cmd(&format!("MKD dir/new{round}"));
    assert!(!mkd.1.contains(OUTSIDE_NAME), "{mkd:?}");
    count(mkd.0 == 257);
    count(c.cmd(&format!("RMD dir/new{round}")).0 == 250);
    count(c.cmd("RMD dir/emptydir").0 == 250);
    count(c.cmd("MKD dir/emptydir").0 == 257);
    count(c.cmd("DELE dir/f").0 == 250);
    if c.cmd("RNFR dir/g").0 == 350 {
        count(c.cmd("RNTO dir/g2").0 == 250);
    }
    if c.cmd("RNFR dir/g2").0 == 350 {
        count(c.cmd("RNTO dir/g").0 == 250);
    }
    count(c.cmd("SITE CHMOD 600 dir/g").0 == 200);
    count(c.cmd("MFMT 20200101000000 dir/g").0 == 213);
    count(c.cmd("SITE UTIME 202001010000 dir/g").0 == 200);
    let link = c.cmd(&format!("SITE SYMLINK dir/g dir/link{round}"));
    assert!(!link.1.contains(OUTSIDE_NAME), "{link:?}");
    count(link.0 == 200);
    count(c.cmd(&format!("DELE dir/link{round}")).0 == 250);
    let (code, text) = c.cmd("SIZE dir/g");
    assert_ne!(
        text.trim(),
        OUTSIDE_SIZE.to_string(),
        "SIZE told the outside size"
    );
    count(code == 213);
    let (code, text) = c.cmd("MDTM dir/g");
    assert!(
        !text.contains(OUTSIDE_MDTM),
        "MDTM told the outside time: {text}"
    );
    count(code == 213);
    ok
}

/// A download-like command over EPSV; its bytes when the server sent any (150 or 125),
/// whatever the final reply.
fn download(c: &mut Client, line: &str) -> Option<Vec<u8>> {
    let mut data = c.pasv();
    let (code, _) = c.cmd(line);
    if code != 150 && code != 125 {
        return None;
    }
    let mut bytes = Vec::new();
    let _ = data.read_to_end(&mut bytes);
    let (end, text) = c.reply();
    assert!(end == 226 || end >= 400, "{line}: {end} {text}");
    Some(bytes)
}

/// An upload-like command over EPSV; whether it ended in 226.
fn upload(c: &mut Client, line: &str, bytes: &[u8]) -> bool {
    let mut data = c.pasv();
    let (code, _) = c.cmd(line);
    if code != 150 && code != 125 {
        return false;
    }
    let _ = data.write_all(bytes);
    let _ = data.shutdown(Shutdown::Write);
    let _ = data.read_to_end(&mut Vec::new());
    c.reply().0 == 226
}

fn assert_clean(bytes: &[u8], what: &str) {
    let text = String::from_utf8_lossy(bytes);
    assert!(
        !bytes.windows(MARKER.len()).any(|w| w == MARKER),
        "{what} returned the outside file's content"
    );
    assert!(
        !text.contains(OUTSIDE_NAME),
        "{what} listed the outside directory: {text}"
    );
}

/// The outside tree: the same names as inside (`f`, `g`, `emptydir`, `sub/x`), plus a
/// name of its own, with a distinctive content, size, mode and time.
fn make_outside(outside: &Path) {
    let mut content = Vec::with_capacity(OUTSIDE_SIZE);
    while content.len() < OUTSIDE_SIZE {
        content.extend_from_slice(MARKER);
    }
    content.truncate(OUTSIDE_SIZE);
    std::fs::create_dir(outside.join("sub")).expect("mkdir sub");
    std::fs::create_dir(outside.join("emptydir")).expect("mkdir emptydir");
    let files = ["f", "g", "g2", "sub/x", OUTSIDE_NAME];
    for name in files {
        std::fs::write(outside.join(name), &content).expect("write outside");
    }
    let when = UNIX_EPOCH + Duration::from_secs(OUTSIDE_MTIME as u64);
    for name in files.iter().copied().chain(["sub", "emptydir", ""]) {
        let path = outside.join(name);
        let mode = if path.is_dir() { 0o751 } else { 0o640 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        std::fs::File::options()
            .read(true)
            .open(&path)
            .and_then(|f| f.set_modified(when))
            .expect("set mtime");
    }
}

/// Every entry below `dir` (and `dir` itself): name, mode, size, mtime and content.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u32, u64, i64, i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let md = std::fs::symlink_metadata(&path).expect("lstat outside");
        let content = if md.is_file() {
            std::fs::read(&path).expect("read outside")
        } else {
            Vec::new()
        };
        if md.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read outside dir") {
                pending.push(entry.expect("entry").path());
            }
        }
        let rel = path.strip_prefix(dir).expect("below").to_path_buf();
        out.push((
            rel,
            md.mode(),
            md.size(),
            md.mtime(),
            md.mtime_nsec(),
            content,
        ));
    }
    out.sort();
    out
}

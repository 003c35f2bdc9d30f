//! Faults of the machine: a full disk under the served directory (a small tmpfs the test
//! mounts, as root), and the server killed with SIGKILL in the middle of an upload.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use crate::util::{random_bytes, BinServer, Client, TestServer, IO_TIMEOUT};

/// A tmpfs of `size` mounted on a directory, unmounted on drop (a test that fails
/// included).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts it, or says why not: under `CI` that fails the test, elsewhere it skips.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let mounted = root
            && Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success());
        if !mounted {
            assert!(
                std::env::var_os("CI").is_none(),
                "the disk-full tests need root and mount(8) under CI"
            );
            eprintln!("SKIP: cannot mount a tmpfs (root: {root})");
            return None;
        }
        Some(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a descriptor the server has not closed yet): detach it now,
            // the kernel frees it when the last one goes.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// The names of the upload temporaries in `dir`.
fn parts(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ftpdlib-part."))
        .collect()
}

/// STORs `bytes` to `name` and returns the reply that ends it; the client's writes may
/// fail once the server gave up.
fn stor_until_refused(c: &mut Client, name: &str, bytes: &[u8]) -> (u16, String) {
    c.expect("TYPE I", 200);
    let mut data = c.pasv();
    let (code, text) = c.cmd(&format!("STOR {name}"));
    assert!(code == 125 || code == 150, "STOR {name}: {code} {text}");
    let _ = data.write_all(bytes);
    let _ = data.shutdown(Shutdown::Write);
    let mut rest = Vec::new();
    let _ = data.read_to_end(&mut rest);
    c.reply()
}

/// An upload larger than the disk: `452` (RFC 959's "insufficient storage space"),
/// what arrived stays under its name (as after any cut upload), and the other sessions
/// go on (a listing, a download, and uploads again once space is freed).
#[test]
fn a_full_disk_is_answered_452_and_the_other_sessions_go_on() {
    let srv = TestServer::start();
    let root = srv.root();
    let Some(_tmpfs) = Tmpfs::mount(&root, "4m") else {
        return;
    };
    std::fs::write(root.join("keep.txt"), b"still here").expect("write");
    let mut other = srv.login();
    let mut c = srv.login();
    let (code, text) = stor_until_refused(&mut c, "big.bin", &random_bytes(8 << 20, 0xf0));
    assert_eq!(code, 452, "{text}");
    assert!(text.contains("No space left on device"), "{text}");
    let partial = std::fs::metadata(root.join("big.bin")).expect("the partial file");
    assert!(
        partial.len() > 0 && partial.len() <= 4 << 20,
        "{}",
        partial.len()
    );
    // The disk is full; the other session is answered all the same.
    assert!(other.listing("LIST").contains("keep.txt"));
    assert_eq!(other.retr("keep.txt"), b"still here");
    // The same session too, and uploads work again once the space is freed.
    c.expect("DELE big.bin", 250);
    c.stor("small.bin", b"fits");
    assert_eq!(other.retr("small.bin"), b"fits");
}

/// With atomic uploads a full disk is a cut upload: the old file stays whole and no
/// temporary is left.
#[test]
fn a_full_disk_leaves_the_old_file_and_no_temporary_with_atomic_uploads() {
    let srv = TestServer::with(|h| h.atomic_uploads = true, |_| {});
    let root = srv.root();
    let Some(_tmpfs) = Tmpfs::mount(&root, "4m") else {
        return;
    };
    let old = random_bytes(1 << 20, 0x01d);
    std::fs::write(root.join("f.bin"), &old).expect("write");
    let mut c = srv.login();
    let (code, text) = stor_until_refused(&mut c, "f.bin", &random_bytes(8 << 20, 0xf1));
    assert_eq!(code, 452, "{text}");
    assert!(std::fs::read(root.join("f.bin")).expect("f.bin") == old);
    assert_eq!(parts(&root), Vec::<String>::new());
    let mut other = srv.login();
    assert!(other.retr("f.bin") == old);
    c.stor("f.bin", b"small");
    assert_eq!(other.retr("f.bin"), b"small");
}

/// Waits (bounded) until `ok` holds.
fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + IO_TIMEOUT;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The server killed with SIGKILL mid-upload leaves its temporary; started again on the
/// same directory it greets at once, and removes that temporary in the background (its
/// process is gone), but not the fresh temporary of another host sharing the storage.
#[test]
fn a_server_killed_mid_stor_restarts_at_once_and_sweeps_its_temporary() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_str().expect("a UTF-8 temporary directory");
    let args = ["-w", "--atomic-uploads", "-d", dir];
    let mut srv = BinServer::start(&args);
    let mut c = Client::connect(srv.addr);
    c.login("anonymous", "a@b");
    c.expect("TYPE I", 200);
    let mut data = c.pasv();
    let (code, text) = c.cmd("STOR big.bin");
    assert!(code == 125 || code == 150, "{code} {text}");
    data.write_all(&random_bytes(200_000, 0x5e)).expect("send");
    wait_for("the temporary to fill", || {
        parts(tmp.path())
            .iter()
            .any(|n| std::fs::metadata(tmp.path().join(n)).is_ok_and(|m| m.len() >= 200_000))
    });
    let killed = srv.pid();
    let left = parts(tmp.path());
    // Another host's running upload, on shared storage: fresh, so never swept.
    let elsewhere = format!(".ftpdlib-part.elsewhere-host.{killed}.0123456789abcdef");
    std::fs::write(tmp.path().join(&elsewhere), b"running there").expect("write");
    // A user's own file that only looks like a temporary, old: not of the server's form.
    let lookalike = tmp.path().join(".ftpdlib-part.notes");
    std::fs::write(&lookalike, b"mine").expect("write");
    let day_ago = SystemTime::now() - Duration::from_secs(86_400);
    std::fs::File::options()
        .write(true)
        .open(&lookalike)
        .and_then(|f| f.set_modified(day_ago))
        .expect("age it");

    srv.kill();
    drop(data);
    drop(c);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].contains(&format!(".{killed}.")),
        "{left:?} names its process"
    );
    assert!(
        tmp.path().join(&left[0]).exists(),
        "SIGKILL cleans nothing up"
    );

    let started = Instant::now();
    let srv = BinServer::start(&args);
    let mut c = Client::connect(srv.addr);
    let greeted = started.elapsed();
    assert!(
        greeted < Duration::from_secs(5),
        "greeting after {greeted:?}"
    );
    wait_for("the stale temporary to be swept", || {
        !tmp.path().join(&left[0]).exists()
    });
    assert!(
        tmp.path().join(&elsewhere).exists(),
        "another host's upload swept"
    );
    assert!(lookalike.exists(), "a user's file swept");
    assert!(
        !tmp.path().join("big.bin").exists(),
        "a cut upload under its name"
    );
    c.login("anonymous", "a@b");
    c.stor("after.bin", b"served");
    assert_eq!(
        std::fs::read(tmp.path().join("after.bin")).expect("after.bin"),
        b"served"
    );
    let log = srv.log();
    assert!(log.contains("removed stale upload temporary"), "{log}");
}

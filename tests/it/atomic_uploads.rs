//! Atomic uploads (`HandlerConfig::atomic_uploads`, `--atomic-uploads`): while an upload
//! runs, its target is absent or holds its old content; after the 226 it holds the whole
//! upload; a cut upload (reset, ABOR, the session dying) leaves the old file and no
//! temporary. Temporaries are hidden from listings and refused to clients; APPE and
//! REST + STOR are refused.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use ftpdlib::events::{Events, Session};
use ftpdlib::filesystems::{FileSystem, MemoryFs};

use crate::util::{random_bytes, BinServer, Client, TestServer, IO_TIMEOUT};

fn atomic_server() -> TestServer {
    TestServer::with(|h| h.atomic_uploads = true, |_| {})
}

/// The temporaries in `dir`.
fn parts(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".ftpdlib-part."))
        })
        .collect();
    found.sort();
    found
}

/// Waits (bounded) until `ok` holds; the server works on its own thread.
fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + IO_TIMEOUT;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until the one temporary in `dir` holds `len` bytes, and returns it.
fn part_with(dir: &Path, len: u64) -> PathBuf {
    let mut found = None;
    wait_for("the temporary to fill", || {
        found = parts(dir)
            .into_iter()
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() >= len));
        found.is_some()
    });
    found.expect("found above")
}

/// Sends `line` (STOR, STOU) over a passive data connection and writes `bytes`; the data
/// connection is returned open.
fn start_upload(c: &mut Client, line: &str, bytes: &[u8]) -> (TcpStream, String) {
    c.expect("TYPE I", 200);
    let mut data = c.pasv();
    let (code, text) = c.cmd(line);
    assert!(code == 125 || code == 150, "{line}: {code} {text}");
    data.write_all(bytes).expect("send");
    (data, text)
}

/// Sends the rest, closes cleanly (FIN) and expects the 226.
fn finish_upload(c: &mut Client, mut data: TcpStream, rest: &[u8]) {
    data.write_all(rest).expect("send");
    data.shutdown(Shutdown::Write).expect("shutdown");
    let mut sink = Vec::new();
    let _ = data.read_to_end(&mut sink);
    let (code, text) = c.reply();
    assert_eq!(code, 226, "{text}");
}

/// Closes with a reset instead of a FIN (SO_LINGER 0).
fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
}

#[test]
fn a_new_file_appears_whole_and_only_after_the_upload() {
    let srv = atomic_server();
    let root = srv.root();
    let body = random_bytes(300_000, 0xa70);
    let mut c = srv.login();
    let (data, _) = start_upload(&mut c, "STOR new.bin", &body[..100_000]);
    let part = part_with(&root, 100_000);
    assert!(!root.join("new.bin").exists(), "half an upload is visible");
    // Another session sees neither the temporary nor, yet, the file.
    let mut other = srv.login();
    for line in ["LIST -a", "NLST", "MLSD"] {
        let listing = other.listing(line);
        assert!(!listing.contains(".ftpdlib-part."), "{line}: {listing}");
        assert!(!listing.contains("new.bin"), "{line}: {listing}");
    }
    let (code, text) = other.cmd("STAT -a .");
    assert_eq!(code, 213, "{text}");
    assert!(!text.contains(".ftpdlib-part."), "{text}");
    // ... and cannot name it.
    let name = part
        .file_name()
        .expect("a name")
        .to_string_lossy()
        .into_owned();
    other.expect("TYPE I", 200);
    for line in [
        format!("RETR {name}"),
        format!("DELE {name}"),
        format!("RNFR {name}"),
        format!("SIZE {name}"),
    ] {
        let (code, text) = other.cmd(&line);
        assert_eq!(code, 550, "{line}: {text}");
    }
    finish_upload(&mut c, data, &body[100_000..]);
    // The 226 came after the rename: the file is complete for whoever got it.
    assert_eq!(std::fs::read(root.join("new.bin")).expect("stored"), body);
    assert_eq!(parts(&root), Vec::<PathBuf>::new());
    assert_eq!(other.retr("new.bin"), body);
}

#[test]
fn an_overwritten_file_keeps_its_old_content_until_the_upload_completes() {
    let srv = atomic_server();
    let root = srv.root();
    std::fs::write(root.join("f"), b"old content").expect("write");
    let body = random_bytes(200_000, 0xa71);
    let mut c = srv.login();
    let (data, _) = start_upload(&mut c, "STOR f", &body[..50_000]);
    part_with(&root, 50_000);
    assert_eq!(std::fs::read(root.join("f")).expect("f"), b"old content");
    finish_upload(&mut c, data, &body[50_000..]);
    assert_eq!(std::fs::read(root.join("f")).expect("f"), body);
    assert_eq!(parts(&root), Vec::<PathBuf>::new());
}

#[test]
fn a_reset_an_abor_or_a_dying_session_leave_the_old_file_and_no_temporary() {
    let srv = atomic_server();
    let root = srv.root();
    std::fs::write(root.join("f"), b"old content").expect("write");
    let mut c = srv.login();

    // The data connection is reset: 426, the old file stays.
    let (data, _) = start_upload(&mut c, "STOR f", &[1; 80_000]);
    part_with(&root, 80_000);
    reset(data);
    let (code, text) = c.reply();
    assert_eq!(code, 426, "{text}");
    assert_eq!(std::fs::read(root.join("f")).expect("f"), b"old content");
    assert_eq!(parts(&root), Vec::<PathBuf>::new());

    // ABOR in the middle: 426 then 226, the old file stays.
    let (data, _) = start_upload(&mut c, "STOR f", &[2; 80_000]);
    part_with(&root, 80_000);
    c.send("ABOR");
    let (code, text) = c.reply();
    assert_eq!(code, 426, "{text}");
    let (code, text) = c.reply();
    assert_eq!(code, 226, "{text}");
    drop(data);
    assert_eq!(std::fs::read(root.join("f")).expect("f"), b"old content");
    assert_eq!(parts(&root), Vec::<PathBuf>::new());

    // A new file cut by a reset is not created at all.
    let (data, _) = start_upload(&mut c, "STOR new", &[3; 80_000]);
    part_with(&root, 80_000);
    reset(data);
    let (code, text) = c.reply();
    assert_eq!(code, 426, "{text}");
    assert!(!root.join("new").exists());

    // The session itself goes away mid-upload.
    let (data, _) = start_upload(&mut c, "STOR f", &[4; 80_000]);
    part_with(&root, 80_000);
    reset(c.stream_clone());
    drop(c);
    wait_for("the temporary to go", || parts(&root).is_empty());
    drop(data);
    srv.wait_idle();
    assert_eq!(std::fs::read(root.join("f")).expect("f"), b"old content");
}

#[test]
fn stou_takes_a_unique_name_and_fills_it_only_at_the_end() {
    let srv = atomic_server();
    let root = srv.root();
    let mut c = srv.login();
    let body = random_bytes(120_000, 0xa72);
    let (data, text) = start_upload(&mut c, "STOU", &body[..60_000]);
    let name = text
        .strip_prefix("FILE: ")
        .unwrap_or_else(|| panic!("{text}"))
        .to_owned();
    part_with(&root, 60_000);
    // The name is taken (empty) while the data goes to the temporary.
    assert_eq!(std::fs::read(root.join(&name)).expect("reserved"), b"");
    finish_upload(&mut c, data, &body[60_000..]);
    assert_eq!(std::fs::read(root.join(&name)).expect("stored"), body);
    assert_eq!(parts(&root), Vec::<PathBuf>::new());

    // A cut STOU leaves neither its name nor a temporary.
    let (data, text) = start_upload(&mut c, "STOU", &[5; 60_000]);
    let cut = text
        .strip_prefix("FILE: ")
        .unwrap_or_else(|| panic!("{text}"));
    part_with(&root, 60_000);
    reset(data);
    let (code, text) = c.reply();
    assert_eq!(code, 426, "{text}");
    assert!(!root.join(cut).exists());
    assert_eq!(parts(&root), Vec::<PathBuf>::new());
}

#[test]
fn appe_and_rest_stor_are_refused() {
    let srv = atomic_server();
    let root = srv.root();
    std::fs::write(root.join("f"), b"old content").expect("write");
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let _data = c.pasv();
    let (code, text) = c.cmd("APPE f");
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("atomic uploads"), "{text}");
    c.expect("REST 3", 350);
    let (code, text) = c.cmd("STOR f");
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("atomic uploads"), "{text}");
    // REST still serves downloads.
    c.expect("REST 4", 350);
    let data = c.pasv();
    assert_eq!(c.download("RETR f", data), b"content");
    assert_eq!(std::fs::read(root.join("f")).expect("f"), b"old content");
    assert_eq!(parts(&root), Vec::<PathBuf>::new());
}

#[test]
fn a_stale_temporary_goes_when_an_upload_into_its_directory_starts() {
    let srv = atomic_server();
    let root = srv.root();
    let stale = root.join(".ftpdlib-part.stale");
    let fresh = root.join(".ftpdlib-part.fresh");
    std::fs::write(&stale, b"left by a killed process").expect("write");
    std::fs::write(&fresh, b"maybe another upload").expect("write");
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .and_then(|f| f.set_modified(two_hours_ago))
        .expect("age the stale temporary");
    let mut c = srv.login();
    c.stor("x", b"data");
    assert!(!stale.exists());
    assert!(fresh.exists());
    assert_eq!(std::fs::read(root.join("x")).expect("x"), b"data");
}

#[test]
fn off_by_default_names_are_plain_files() {
    let srv = TestServer::start();
    std::fs::write(srv.root().join(".ftpdlib-part.mine"), b"mine").expect("write");
    let mut c = srv.login();
    assert_eq!(c.retr(".ftpdlib-part.mine"), b"mine");
    // REST + STOR works without the option.
    c.expect("REST 2", 350);
    let data = c.pasv();
    c.upload("STOR .ftpdlib-part.mine", data, b"ne!");
    assert_eq!(
        std::fs::read(srv.root().join(".ftpdlib-part.mine")).expect("read"),
        b"mine!"
    );
}

/// Reports each received file with what the filesystem holds under its name then.
struct Seen(mpsc::Sender<String>, MemoryFs);

impl Events for Seen {
    fn on_file_received(&self, _s: Session<'_>, path: &Path) {
        let held = self.1.read_file(&path.to_string_lossy()).map(|b| b.len());
        let _ = self.0.send(format!("received {} {held:?}", path.display()));
    }
    fn on_incomplete_file_received(&self, _s: Session<'_>, path: &Path) {
        let _ = self.0.send(format!("incomplete {}", path.display()));
    }
}

#[test]
fn memory_fs_uploads_are_atomic_too() {
    let mem = MemoryFs::new();
    mem.write_file("/f", b"old").expect("write");
    let (tx, rx) = mpsc::channel();
    let seen = mem.clone();
    let srv = TestServer::with_memory_config(
        &mem,
        |h| h.atomic_uploads = true,
        move |b| b.events(Seen(tx, seen)),
    );
    let part_in_mem = |len: usize| {
        mem.listdir(Path::new("/")).is_ok_and(|names| {
            names.iter().any(|n| {
                let n = n.to_string_lossy();
                n.starts_with(".ftpdlib-part.")
                    && mem
                        .read_file(&format!("/{n}"))
                        .is_some_and(|b| b.len() >= len)
            })
        })
    };
    let no_part = || {
        mem.listdir(Path::new("/")).is_ok_and(|names| {
            !names
                .iter()
                .any(|n| n.to_string_lossy().starts_with(".ftpdlib-part."))
        })
    };
    let mut c = srv.login();
    let (data, _) = start_upload(&mut c, "STOR f", &[9; 70_000]);
    wait_for("the temporary to fill", || part_in_mem(70_000));
    assert_eq!(mem.read_file("/f").expect("f"), b"old");
    finish_upload(&mut c, data, &[9; 30_000]);
    // The callback gets the final name, and the file is already in place.
    let event = rx.recv_timeout(IO_TIMEOUT).expect("an event");
    assert_eq!(event, "received /f Some(100000)");
    assert_eq!(mem.read_file("/f").expect("f"), vec![9; 100_000]);
    assert!(no_part());

    let (data, _) = start_upload(&mut c, "STOR f", &[8; 70_000]);
    wait_for("the temporary to fill", || part_in_mem(70_000));
    reset(data);
    let (code, text) = c.reply();
    assert_eq!(code, 426, "{text}");
    let event = rx.recv_timeout(IO_TIMEOUT).expect("an event");
    assert_eq!(event, "incomplete /f");
    assert_eq!(mem.read_file("/f").expect("f"), vec![9; 100_000]);
    assert!(no_part());
    assert!(!c.listing("LIST -a").contains(".ftpdlib-part."));
    assert!(crate::util::tree(&srv.root()).is_empty());
}

#[test]
fn the_binary_flag_turns_it_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("f"), b"old").expect("write");
    let dir = tmp.path().to_str().expect("a UTF-8 temporary directory");
    let mut srv = BinServer::start(&["-w", "--atomic-uploads", "-d", dir]);
    let mut c = Client::connect(srv.addr);
    c.login("anonymous", "a@b");
    c.expect("TYPE I", 200);
    let _data = c.pasv();
    let (code, text) = c.cmd("APPE f");
    assert_eq!(code, 550, "{text}");
    let (data, _) = start_upload(&mut c, "STOR f", &[6; 50_000]);
    part_with(tmp.path(), 50_000);
    assert_eq!(std::fs::read(tmp.path().join("f")).expect("f"), b"old");
    finish_upload(&mut c, data, b"");
    assert_eq!(
        std::fs::read(tmp.path().join("f")).expect("f"),
        vec![6; 50_000]
    );
    assert_eq!(parts(tmp.path()), Vec::<PathBuf>::new());
    c.expect("QUIT", 221);
    srv.terminate();
}

//! A `MemoryFs` served to real clients (Python's ftplib, curl, the tests' own client):
//! transfers of 10 MB in binary and ASCII, listings, REST, APPE, renames, removals,
//! STOU, a cut upload, a quota, per-user views, and the same replies as a session on
//! disk. Each test also checks that the server's nominal home on disk stays empty.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

use ftpdlib::authorizers::{DummyAuthorizer, WithFilesystem};
use ftpdlib::events::{Events, Session};
use ftpdlib::filesystems::{FileSystem, MemoryFs};
use ftpdlib::servers::FtpServer;

use crate::util::{
    have_tool, random_bytes, run_python_script, run_tool, tree, Client, TestServer, IO_TIMEOUT,
    TOOL_TIMEOUT,
};

/// Asserts that nothing was written to the disk side of a memory-backed test server.
fn assert_disk_untouched(srv: &TestServer) {
    assert!(tree(&srv.root()).is_empty(), "{:?}", tree(&srv.root()));
    assert!(
        tree(&srv.outside()).is_empty(),
        "{:?}",
        tree(&srv.outside())
    );
}

/// 10 MiB (or a line more) of LF-terminated ASCII lines, no CR.
fn text_data() -> Vec<u8> {
    let noise = random_bytes(1 << 16, 0x7e47);
    let mut out = Vec::with_capacity((10 << 20) + 64);
    let mut i = 0usize;
    while out.len() < 10 << 20 {
        let len = usize::from(noise[i % noise.len()] % 60);
        let _ = write!(out, "line {i:08} ");
        out.extend((0..len).map(|k| b'a' + ((i + k) % 26) as u8));
        out.push(b'\n');
        i += 1;
    }
    out
}

#[test]
fn python_ftplib_session_in_memory() {
    if !have_tool("python3") {
        return;
    }
    let mem = MemoryFs::new();
    let big = random_bytes(10 << 20, 0xb16);
    let text = text_data();
    mem.write_file("/seed/big.bin", &big).expect("seed big.bin");
    mem.write_file("/seed/text.txt", &text)
        .expect("seed text.txt");
    let srv = TestServer::with_memory(&mem, |b| b);
    run_python_script("memory_session.py", srv.addr);
    // What the session left, byte for byte, in the tree and nowhere else.
    let work = mem.listdir(Path::new("/work")).expect("list /work");
    let names: Vec<_> = work.iter().map(|n| n.to_string_lossy()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(&names[..3], ["big_copy.bin", "part.bin", "text_copy.txt"]);
    assert!(names[3].starts_with("uniq."), "{names:?}");
    assert!(mem.read_file("/work/big_copy.bin") == Some(big.clone()));
    assert!(mem.read_file("/work/text_copy.txt") == Some(text));
    let mut part = big[..3_000_000].to_vec();
    part.extend_from_slice(&big[5_000_000..5_100_000]);
    assert!(mem.read_file("/work/part.bin") == Some(part));
    assert_eq!(
        mem.read_file(&format!("/work/{}", names[3])).as_deref(),
        Some(&b"unique data"[..])
    );
    assert_disk_untouched(&srv);
}

fn curl(args: &[&str]) -> Output {
    run_tool(
        Command::new("curl")
            // -q first: no ~/.curlrc
            .args(["-q", "--silent", "--show-error", "--max-time", "60"])
            .args(["-u", "user:12345"])
            .args(args)
            .env_remove("ftp_proxy")
            .env_remove("all_proxy"),
        TOOL_TIMEOUT,
    )
}

fn curl_ok(args: &[&str]) -> Vec<u8> {
    let out = curl(args);
    assert!(
        out.status.success(),
        "curl {args:?} failed with {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn curl_uploads_lists_and_downloads_in_memory() {
    if !have_tool("curl") {
        return;
    }
    let mem = MemoryFs::new();
    let srv = TestServer::with_memory(&mem, |b| b);
    let local = tempfile::tempdir().expect("client tempdir");
    let data = random_bytes(3_000_000, 0xc0ffee);
    let src = local.path().join("up.bin");
    std::fs::write(&src, &data).expect("write the local file");
    let url = |p: &str| format!("ftp://{}/{p}", srv.addr);
    let src_arg = src.to_str().expect("a UTF-8 temp path");
    curl_ok(&["--ftp-create-dirs", "-T", src_arg, &url("a/b/up.bin")]);
    assert!(mem.read_file("/a/b/up.bin") == Some(data.clone()));
    // Downloads, whole and a range (REST).
    assert!(curl_ok(&[&url("a/b/up.bin")]) == data);
    assert!(curl_ok(&["-r", "1000-1999", &url("a/b/up.bin")]) == data[1000..2000]);
    // Resume an upload cut after 1 MB.
    mem.write_file("/a/b/resumed.bin", &data[..1_000_000])
        .expect("partial");
    curl_ok(&["-C", "-", "-T", src_arg, &url("a/b/resumed.bin")]);
    assert!(mem.read_file("/a/b/resumed.bin") == Some(data.clone()));
    // Listings: NLST and LIST.
    // (curl turns the CRLF line ends of these ASCII transfers into LF)
    let names = curl_ok(&["--list-only", &url("a/b/")]);
    assert_eq!(names, b"resumed.bin\nup.bin\n");
    let list = String::from_utf8(curl_ok(&[&url("a/")])).expect("UTF-8 LIST");
    assert!(list.starts_with("drwxr-xr-x   2 "), "{list}");
    assert!(list.trim_end().ends_with(" b"), "{list}");
    assert_eq!(list.lines().count(), 1, "{list}");
    // Quote commands: rename and delete.
    curl_ok(&[
        "-Q",
        "RNFR a/b/up.bin",
        "-Q",
        "RNTO a/moved.bin",
        "-Q",
        "DELE a/b/resumed.bin",
        "-Q",
        "RMD a/b",
        &url(""),
    ]);
    assert_eq!(
        mem.listdir(Path::new("/a")).expect("list /a"),
        ["moved.bin"]
    );
    // A failing quote command is a curl error carrying the server's reply.
    let out = curl(&["-Q", "RMD a", &url("")]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("550"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mem.used_bytes(), data.len() as u64);
    assert_disk_untouched(&srv);
}

/// Runs one fixed session and records every reply and listing, for comparing a disk
/// session with a memory one. Times are pinned with MFMT and modes with SITE CHMOD, so
/// only the storage differs.
fn transcript(srv: &TestServer) -> Vec<String> {
    fn run(c: &mut Client, log: &mut Vec<String>, line: &str) {
        let (code, text) = c.cmd(line);
        log.push(format!("{line} -> {code} {text}"));
    }
    let mut c = srv.login();
    let mut log = Vec::new();
    for line in [
        "MKD d",
        "MKD d",
        "MKD missing/x",
        "SITE CHMOD 755 d",
        "CWD d",
        "PWD",
        "CWD /",
        "TYPE I",
    ] {
        run(&mut c, &mut log, line);
    }
    c.stor("d/f", b"hello world");
    for line in [
        "SIZE d/f",
        "SIZE d",
        "SIZE nope",
        "MFMT 20200102030405 d/f",
        "MDTM d/f",
        "MDTM d",
        "MDTM nope",
        "RMD d",
        "RMD d/f",
        "RMD /",
        "RMD nope",
        "DELE d",
        "DELE d/nope",
        "CWD d/f",
        "CWD nope",
        "RETR d",
        "RETR nope",
        "RNFR nope",
        "RNFR d/f",
        "RNTO d/g",
        "RNFR d/g",
        "RNTO nodir/x",
        "RNFR d",
        "RNTO d/g",
        "SITE CHMOD 600 d/g",
        "SITE CHMOD 600 nope",
        "MFMT 20200102030405 nope",
        "OPTS MLST type;size;perm;unix.mode;",
        "MLST d/g",
        "MLST nope",
        "STAT d/g",
    ] {
        run(&mut c, &mut log, line);
    }
    log.push(c.listing("LIST d/g"));
    log.push(c.listing("NLST d"));
    log.push(c.listing("MLSD d"));
    let data = c.pasv();
    c.upload("APPE d/g", data, b"!!");
    run(&mut c, &mut log, "SIZE d/g");
    // REST beyond the end, for RETR and for STOR
    let _data = c.pasv();
    run(&mut c, &mut log, "REST 100");
    run(&mut c, &mut log, "RETR d/g");
    run(&mut c, &mut log, "REST 100");
    run(&mut c, &mut log, "STOR d/g");
    run(&mut c, &mut log, "ABOR");
    run(&mut c, &mut log, "REST 6");
    let data = c.pasv();
    log.push(String::from_utf8_lossy(&c.download("RETR d/g", data)).into_owned());
    for line in ["DELE d/g", "RMD d", "QUIT"] {
        run(&mut c, &mut log, line);
    }
    log
}

#[test]
fn replies_match_those_of_a_disk_session() {
    let disk = TestServer::start();
    let on_disk = transcript(&disk);
    let mem = MemoryFs::new();
    let srv = TestServer::with_memory(&mem, |b| b);
    let in_memory = transcript(&srv);
    for (d, m) in on_disk.iter().zip(&in_memory) {
        assert_eq!(d, m, "disk vs memory");
    }
    assert_eq!(on_disk.len(), in_memory.len());
    // The transcript checks what it expects, not just sameness.
    assert!(on_disk.contains(&"RMD d -> 550 Directory not empty.".to_owned()));
    assert!(on_disk.contains(&"CWD d/f -> 550 Not a directory.".to_owned()));
    assert!(on_disk.contains(&"DELE d -> 550 Is a directory.".to_owned()));
    assert!(on_disk.contains(&"MKD d -> 550 File exists.".to_owned()));
    assert!(on_disk.iter().any(|l| l.ends_with(" Jan 02  2020 g\r\n")));
    assert_eq!(on_disk[on_disk.len() - 4], "world!!");
    assert_eq!(mem.listdir(Path::new("/")).expect("list /").len(), 0);
    assert_disk_untouched(&srv);
}

/// Reports the end of every upload on a channel, so a test can wait for it.
struct Uploads(mpsc::Sender<String>);

impl Events for Uploads {
    fn on_file_received(&self, _s: Session<'_>, path: &Path) {
        let _ = self.0.send(format!("complete {}", path.display()));
    }
    fn on_incomplete_file_received(&self, _s: Session<'_>, path: &Path) {
        let _ = self.0.send(format!("incomplete {}", path.display()));
    }
}

/// STOR `path` and write `bytes` on the data connection, which is returned open.
fn start_upload(c: &mut Client, path: &str, bytes: &[u8]) -> TcpStream {
    c.expect("TYPE I", 200);
    let mut data = c.pasv();
    let (code, text) = c.cmd(&format!("STOR {path}"));
    assert!(code == 125 || code == 150, "{code} {text}");
    data.write_all(bytes).expect("send");
    data
}

/// Closes with a reset instead of a FIN (SO_LINGER 0).
fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
}

#[test]
fn a_cut_upload_is_kept_partial_and_reported_incomplete() {
    let mem = MemoryFs::new();
    let (tx, rx) = mpsc::channel();
    let srv = TestServer::with_memory(&mem, move |b| b.events(Uploads(tx)));
    let mut c = srv.login();
    // The data connection is reset: 426 on the control connection.
    reset(start_upload(&mut c, "cut.bin", &[7; 200_000]));
    let (code, text) = c.reply();
    assert_eq!(code, 426, "{text}");
    let event = rx.recv_timeout(IO_TIMEOUT).expect("an upload event");
    assert_eq!(event, "incomplete /cut.bin");
    // The partial file is there, holding a prefix of what was sent.
    let got = mem.read_file("/cut.bin").expect("the partial file");
    assert!(got.len() <= 200_000 && got.iter().all(|&b| b == 7));
    // The client itself goes away in the middle of another upload.
    let data = start_upload(&mut c, "gone.bin", &[8; 50_000]);
    reset(c.stream_clone());
    drop(c);
    let event = rx.recv_timeout(IO_TIMEOUT).expect("an upload event");
    assert_eq!(event, "incomplete /gone.bin");
    drop(data);
    let got = mem.read_file("/gone.bin").expect("the partial file");
    assert!(got.len() <= 50_000 && got.iter().all(|&b| b == 8));
    // The server goes on serving.
    let mut c = srv.login();
    c.stor("after.bin", b"fine");
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).as_deref(),
        Ok("complete /after.bin")
    );
    assert_eq!(c.retr("after.bin"), b"fine");
    c.expect("QUIT", 221);
    assert_disk_untouched(&srv);
}

#[test]
fn a_full_quota_ends_the_upload_with_452() {
    let mem = MemoryFs::with_capacity(100_000);
    let srv = TestServer::with_memory(&mem, |b| b);
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let mut data = c.pasv();
    let (code, text) = c.cmd("STOR big.bin");
    assert!(code == 125 || code == 150, "{code} {text}");
    // The server stops reading at the quota and closes: the rest may not go out.
    let _ = data.write_all(&random_bytes(1 << 20, 3));
    let _ = data.shutdown(Shutdown::Write);
    assert_eq!(
        c.reply(),
        (452, "No space left on device; transfer aborted.".to_owned())
    );
    drop(data);
    assert_eq!(mem.used_bytes(), 100_000);
    assert_eq!(mem.read_file("/big.bin").map(|v| v.len()), Some(100_000));
    // Room again after a DELE.
    c.expect("DELE big.bin", 250);
    c.stor("small.bin", &[1; 1000]);
    assert_eq!(mem.used_bytes(), 1000);
    c.expect("QUIT", 221);
    assert_disk_untouched(&srv);
}

#[test]
fn sessions_and_the_program_share_one_tree() {
    let mem = MemoryFs::new();
    let srv = TestServer::with_memory(&mem, |b| b);
    let mut a = srv.login();
    let mut b = srv.login();
    a.expect("MKD shared", 257);
    a.expect("CWD shared", 250);
    a.stor("from_a.txt", b"A");
    // b sees a's upload, and has a cwd of its own
    assert_eq!(b.listing("NLST shared"), "from_a.txt\r\n");
    assert_eq!(b.retr("shared/from_a.txt"), b"A");
    b.expect("PWD", 257);
    // the program sees both, and what it writes, they see
    assert_eq!(
        mem.read_file("/shared/from_a.txt").as_deref(),
        Some(&b"A"[..])
    );
    mem.write_file("/shared/from_test.txt", b"T")
        .expect("write");
    assert_eq!(a.retr("from_test.txt"), b"T");
    assert_eq!(a.listing("NLST"), "from_a.txt\r\nfrom_test.txt\r\n");
    a.expect("QUIT", 221);
    b.expect("QUIT", 221);
    assert_disk_untouched(&srv);
}

#[test]
fn spawn_memory_serves_a_fresh_tree() {
    let (server, mem) = ftpdlib::testing::spawn_memory().expect("spawn");
    mem.write_file("/pub/hello.txt", b"hello").expect("write");
    let mut c = Client::connect(server.local_addr());
    c.login(ftpdlib::testing::USER, ftpdlib::testing::PASSWORD);
    assert_eq!(c.retr("pub/hello.txt"), b"hello");
    c.stor("pub/up.txt", b"up");
    assert_eq!(mem.read_file("/pub/up.txt").as_deref(), Some(&b"up"[..]));
    c.expect("QUIT", 221);
    // anonymous may read, not write
    let mut anon = Client::connect(server.local_addr());
    anon.login("anonymous", "guest@");
    assert_eq!(anon.retr("pub/up.txt"), b"up");
    assert_eq!(anon.cmd("DELE pub/up.txt").0, 550);
    anon.expect("QUIT", 221);
    server.stop(IO_TIMEOUT).expect("stop");
}

#[test]
fn each_user_can_get_a_view_of_their_own() {
    let mem = MemoryFs::new();
    mem.write_file("/home/alice/a.txt", b"alice")
        .expect("write");
    mem.write_file("/home/bob/b.txt", b"bob").expect("write");
    let mut users = DummyAuthorizer::new();
    for name in ["alice", "bob"] {
        users
            .add_user(name, "pw", "/", "elradfmwMT", None, None)
            .expect("add user");
    }
    let tree = mem.clone();
    let auth = WithFilesystem::new(users, move |user, _home| {
        Ok(Box::new(tree.view(&format!("/home/{user}"))?) as Box<dyn FileSystem>)
    });
    let server = FtpServer::builder(auth)
        .spawn("127.0.0.1:0")
        .expect("spawn");
    let mut c = Client::connect(server.local_addr());
    c.login("alice", "pw");
    assert_eq!(c.listing("NLST"), "a.txt\r\n");
    // bob's directory is not even there: `/` is alice's home
    let _data = c.pasv();
    assert_eq!(
        c.cmd("NLST ../../home/bob"),
        (550, "No such file or directory.".to_owned())
    );
    assert_eq!(c.cmd("RETR /home/bob/b.txt").0, 550);
    c.stor("new.txt", b"n");
    c.expect("QUIT", 221);
    assert_eq!(
        mem.read_file("/home/alice/new.txt").as_deref(),
        Some(&b"n"[..])
    );
    assert_eq!(mem.read_file("/home/bob/new.txt"), None);
    server.stop(IO_TIMEOUT).expect("stop");
}

/// REST then STOR in memory: the file ends where the upload ends, as on disk.
#[test]
fn a_resumed_upload_ends_the_file_in_memory() {
    let mem = MemoryFs::new();
    mem.write_file("/f", b"0123456789").expect("seed");
    let srv = TestServer::with_memory(&mem, |b| b);
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    c.expect("REST 4", 350);
    let d = c.pasv();
    c.upload("STOR f", d, b"ab");
    assert_eq!(mem.read_file("/f").expect("read"), b"0123ab");
    assert_eq!(c.cmd("SIZE f"), (213, "6".into()));
    assert_disk_untouched(&srv);
}

//! Per-user quotas: an upload past the byte limit is cut with `552` and leaves nothing of
//! itself, a new file past the file limit is refused before any data, DELE and RNTO keep
//! the count, sessions of one user share it, `SITE QUOTA [SYNC]` reports it; and the
//! binary's `--quota-bytes` / `--quota-files`, config-file keys and users-file words.

use std::io::{Read, Write};
use std::net::Shutdown;

use ftpdlib::authorizers::{hash_password, Quota};

use crate::util::{random_bytes, BinServer, Client, TestServer};

/// A server whose `user` has this quota.
fn server(bytes: Option<u64>, files: Option<u64>, atomic: bool) -> TestServer {
    TestServer::with_authorizer(
        move |mut auth| {
            auth.set_quota("user", Some(Quota { bytes, files }))
                .expect("set the quota");
            Box::new(auth)
        },
        move |h| h.atomic_uploads = atomic,
        |_| {},
        |b| b,
    )
}

/// Runs an upload command, sends `bytes` (the server may cut the data connection early)
/// and returns the final reply; a refusal before any data is returned as is.
fn try_upload(c: &mut Client, line: &str, bytes: &[u8]) -> (u16, String) {
    c.expect("TYPE I", 200);
    let mut data = c.pasv();
    let (code, text) = c.cmd(line);
    if code != 125 && code != 150 {
        return (code, text);
    }
    let _ = data.write_all(bytes);
    let _ = data.shutdown(Shutdown::Write);
    let mut rest = Vec::new();
    let _ = data.read_to_end(&mut rest);
    c.reply()
}

/// `SITE QUOTA`'s bytes and files used.
fn used(c: &mut Client) -> (u64, u64) {
    let text = c.expect("SITE QUOTA", 200);
    // "Quota: B / L bytes, F / L files."
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"Quota:"), "{text}");
    let bytes = words[1].parse().expect("bytes used");
    let files = words[5].parse().expect("files used");
    (bytes, files)
}

#[test]
fn an_upload_over_by_one_byte_is_cut_and_leaves_nothing() {
    let srv = server(Some(1000), None, false);
    std::fs::write(srv.root().join("old.bin"), [7u8; 200]).expect("write");
    let mut c = srv.login();
    assert_eq!(used(&mut c), (200, 1));
    let (code, text) = try_upload(&mut c, "STOR new.bin", &random_bytes(801, 1));
    assert_eq!(code, 552, "{text}");
    assert!(
        !srv.root().join("new.bin").exists(),
        "the cut upload was left"
    );
    assert_eq!(used(&mut c), (200, 1));
    // Exactly at the limit: stored.
    let body = random_bytes(800, 2);
    assert_eq!(try_upload(&mut c, "STOR new.bin", &body).0, 226);
    assert_eq!(
        std::fs::read(srv.root().join("new.bin")).expect("read"),
        body
    );
    assert_eq!(used(&mut c), (1000, 2));
    assert_eq!(
        c.expect("SITE QUOTA", 200),
        "Quota: 1000 / 1000 bytes, 2 / unlimited files."
    );
    // A STOR over a file counts only what it adds: 800 → 801 is one byte too many.
    assert_eq!(
        try_upload(&mut c, "STOR new.bin", &random_bytes(801, 3)).0,
        552
    );
    assert!(
        !srv.root().join("new.bin").exists(),
        "the cut upload was left"
    );
    assert_eq!(used(&mut c), (200, 1));
}

#[test]
fn an_atomic_upload_over_the_quota_keeps_the_old_file() {
    let srv = server(Some(1000), None, true);
    let old = random_bytes(600, 4);
    std::fs::write(srv.root().join("f.bin"), &old).expect("write");
    let mut c = srv.login();
    assert_eq!(
        try_upload(&mut c, "STOR f.bin", &random_bytes(1001, 5)).0,
        552
    );
    assert_eq!(std::fs::read(srv.root().join("f.bin")).expect("read"), old);
    let names: Vec<_> = std::fs::read_dir(srv.root())
        .expect("readdir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["f.bin"], "a temporary was left");
    assert_eq!(used(&mut c), (600, 1));
    assert_eq!(
        try_upload(&mut c, "STOR f.bin", &random_bytes(1000, 6)).0,
        226
    );
    assert_eq!(used(&mut c), (1000, 1));
}

#[test]
fn appe_and_rest_over_the_quota_are_cut_back() {
    let srv = server(Some(1000), None, false);
    let old = random_bytes(600, 7);
    let path = srv.root().join("f.bin");
    std::fs::write(&path, &old).expect("write");
    let mut c = srv.login();
    let (code, text) = try_upload(&mut c, "APPE f.bin", &random_bytes(401, 8));
    assert_eq!(code, 552, "{text}");
    assert_eq!(std::fs::read(&path).expect("read"), old, "APPE not undone");
    assert_eq!(used(&mut c), (600, 1));
    c.expect("TYPE I", 200);
    c.expect("REST 500", 350);
    let (code, _) = try_upload(&mut c, "STOR f.bin", &random_bytes(501, 9));
    assert_eq!(code, 552);
    assert_eq!(std::fs::metadata(&path).expect("stat").len(), 600);
    assert_eq!(used(&mut c), (600, 1));
    // APPE exactly to the limit is stored.
    assert_eq!(
        try_upload(&mut c, "APPE f.bin", &random_bytes(400, 10)).0,
        226
    );
    assert_eq!(used(&mut c), (1000, 1));
}

#[test]
fn the_file_limit_refuses_before_data_and_dele_frees() {
    let srv = server(None, Some(2), false);
    std::fs::create_dir(srv.root().join("sub")).expect("mkdir");
    std::fs::write(srv.root().join("sub/a"), b"aaa").expect("write");
    let mut c = srv.login();
    c.stor("b", b"bb");
    assert_eq!(used(&mut c), (5, 2));
    // A third file: refused before the data connection is used.
    let (code, text) = try_upload(&mut c, "STOR c", b"c");
    assert_eq!(code, 552, "{text}");
    assert!(!srv.root().join("c").exists());
    // Replacing an existing file is no new file.
    c.stor("b", b"bbbb");
    assert_eq!(used(&mut c), (7, 2));
    // A move inside the home changes nothing; DELE frees a file.
    c.expect("RNFR b", 350);
    c.expect("RNTO sub/b2", 250);
    assert_eq!(used(&mut c), (7, 2));
    c.expect("DELE sub/a", 250);
    assert_eq!(used(&mut c), (4, 1));
    c.stor("c", b"c");
    assert_eq!(used(&mut c), (5, 2));
    // RNTO over a file removes that one.
    c.expect("RNFR c", 350);
    c.expect("RNTO sub/b2", 250);
    assert_eq!(used(&mut c), (1, 1));
}

#[test]
fn sessions_of_one_user_share_the_usage_and_sync_sees_outside_changes() {
    let srv = server(Some(1000), Some(100), false);
    let mut a = srv.login();
    let mut b = srv.login();
    a.stor("one", &random_bytes(600, 11));
    assert_eq!(used(&mut b), (600, 1));
    assert_eq!(
        try_upload(&mut b, "STOR two", &random_bytes(401, 12)).0,
        552
    );
    assert_eq!(used(&mut a), (600, 1));
    // Files changed behind the server's back are seen after SITE QUOTA SYNC.
    std::fs::remove_file(srv.root().join("one")).expect("rm");
    std::fs::write(srv.root().join("x"), [1u8; 50]).expect("write");
    assert_eq!(used(&mut a), (600, 1));
    // SYNC walks at most every 2 s (the login walked just before): asked until it did.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = a.expect("SITE QUOTA SYNC", 200);
        if text == "Quota: 50 / 1000 bytes, 1 / 100 files." {
            break;
        }
        assert_eq!(
            text,
            "Quota: 600 / 1000 bytes, 1 / 100 files. (counted in the last 2 s; not counted again)"
        );
        assert!(std::time::Instant::now() < deadline, "SYNC never walked");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(used(&mut b), (50, 1));
    // A second SYNC at once does not walk again.
    std::fs::write(srv.root().join("y"), [1u8; 10]).expect("write");
    assert!(a
        .expect("SITE QUOTA SYNC", 200)
        .ends_with("not counted again)"));
    assert_eq!(used(&mut b), (50, 1));
    assert_eq!(a.cmd("SITE QUOTA nonsense").0, 501);
    let (code, help) = a.cmd("SITE HELP");
    assert_eq!(code, 214);
    assert!(help.contains("\n QUOTA\n"), "{help:?}");
}

#[test]
fn a_user_without_a_quota_is_told_so() {
    let srv = TestServer::start();
    let mut c = srv.login();
    assert_eq!(c.expect("SITE QUOTA", 200), "No quota.");
    c.stor("f", &random_bytes(5000, 13));
}

#[test]
fn the_binary_takes_quotas_from_flags_the_config_file_and_the_users_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir(&home).expect("mkdir");
    let h = home.display().to_string();

    // --quota-bytes / --quota-files for the -u user.
    let srv = BinServer::start(&[
        "-d",
        &h,
        "-u",
        "u",
        "-P",
        "pw",
        "-w",
        "--quota-bytes",
        "1K",
        "--quota-files",
        "2",
    ]);
    let mut c = Client::connect(srv.addr);
    c.login("u", "pw");
    assert_eq!(
        c.expect("SITE QUOTA", 200),
        "Quota: 0 / 1024 bytes, 0 / 2 files."
    );
    assert_eq!(try_upload(&mut c, "STOR a", &random_bytes(1025, 14)).0, 552);
    assert!(!home.join("a").exists());
    srv.wait_log("STOR", 1);
    let log = srv.wait_log("cut at the quota and undone (0 bytes used).", 1);
    assert!(
        log.contains("quota usage of \"u\" walked: 0 bytes in 0 files"),
        "{log}"
    );
    drop(c);
    drop(srv);

    // The config file's [[users]] keys.
    let conf = dir.path().join("ftpdlib.toml");
    std::fs::write(
        &conf,
        format!(
            "[[users]]\nname = \"cu\"\npassword = \"pw\"\nhome = \"{h}\"\nperm = \"elrw\"\n\
             quota-bytes = \"2K\"\nquota-files = 5\n"
        ),
    )
    .expect("write the config");
    let srv = BinServer::start(&["--config", &conf.display().to_string()]);
    let mut c = Client::connect(srv.addr);
    c.login("cu", "pw");
    assert_eq!(
        c.expect("SITE QUOTA", 200),
        "Quota: 0 / 2048 bytes, 0 / 5 files."
    );
    drop(c);
    drop(srv);

    // A users-file line with quota words.
    let users = dir.path().join("users");
    let hash = hash_password("pw").expect("hash");
    std::fs::write(
        &users,
        format!("fu:{hash}:{h}:elradfmw quota-bytes=3K quota-files=9\n"),
    )
    .expect("write the users file");
    let srv = BinServer::start(&["--users-file", &users.display().to_string()]);
    let mut c = Client::connect(srv.addr);
    c.login("fu", "pw");
    assert_eq!(
        c.expect("SITE QUOTA", 200),
        "Quota: 0 / 3072 bytes, 0 / 9 files."
    );
    c.stor("b", &random_bytes(3072, 15));
    assert_eq!(try_upload(&mut c, "APPE b", b"x").0, 552);
    assert_eq!(std::fs::metadata(home.join("b")).expect("stat").len(), 3072);

    // SIGHUP reads the users file again: the new quota applies, the usage is kept.
    std::fs::write(&users, format!("fu:{hash}:{h}:elradfmw quota-bytes=5K\n"))
        .expect("rewrite the users file");
    srv.signal("HUP");
    srv.wait_log("reload done", 1);
    let mut c = Client::connect(srv.addr);
    c.login("fu", "pw");
    assert_eq!(
        c.expect("SITE QUOTA", 200),
        "Quota: 3072 / 5120 bytes, 1 / unlimited files."
    );
}

#[test]
fn quotas_hold_on_a_memory_filesystem_for_stou_and_ascii_uploads() {
    let mem = ftpdlib::filesystems::MemoryFs::new();
    let shared = mem.clone();
    let srv = TestServer::with_users(
        move |mut auth| {
            auth.set_quota_bytes("user", Some(80)).expect("quota");
            Box::new(shared.authorizer(auth))
        },
        |_| {},
        |_| {},
        |b| b,
    );
    let mut c = srv.login();
    // STOU past the quota: cut, and its unique file gone.
    assert_eq!(try_upload(&mut c, "STOU", &random_bytes(81, 16)).0, 552);
    assert_eq!(c.listing("NLST"), "");
    assert_eq!(used(&mut c), (0, 0));
    // ASCII: 100 bytes on the wire are 75 on disk (CRLF to LF), within 80.
    c.expect("TYPE A", 200);
    let mut data = c.pasv();
    let (code, _) = c.cmd("STOR text");
    assert!(code == 125 || code == 150);
    data.write_all(&b"ab\r\n".repeat(25)).expect("send");
    drop(data);
    assert_eq!(c.reply().0, 226);
    assert_eq!(used(&mut c), (75, 1));
    assert_eq!(
        c.expect("SITE QUOTA", 200),
        "Quota: 75 / 80 bytes, 1 / unlimited files."
    );
    // DELE gives it back.
    c.expect("DELE text", 250);
    assert_eq!(used(&mut c), (0, 0));
}

/// A real filesystem (the standard view of a directory) that notes the name of the
/// thread of every directory listing.
struct ListingThreads {
    inner: ftpdlib::filesystems::AbstractedFs,
    threads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ftpdlib::filesystems::FileSystem for ListingThreads {
    fn root(&self) -> &std::path::Path {
        self.inner.root()
    }
    fn cwd(&self) -> &str {
        self.inner.cwd()
    }
    fn set_cwd(&mut self, ftp_path: String) {
        self.inner.set_cwd(ftp_path)
    }
    fn ftp2fs(&self, ftp_path: &str) -> std::path::PathBuf {
        self.inner.ftp2fs(ftp_path)
    }
    fn fs2ftp(&self, fs_path: &std::path::Path) -> String {
        self.inner.fs2ftp(fs_path)
    }
    fn validpath(&self, fs_path: &std::path::Path) -> bool {
        self.inner.validpath(fs_path)
    }
    fn listdir(&self, p: &std::path::Path) -> std::io::Result<Vec<std::ffi::OsString>> {
        let name = std::thread::current().name().unwrap_or("").to_owned();
        self.threads.lock().expect("lock").push(name);
        self.inner.listdir(p)
    }
}

#[test]
fn with_auth_workers_the_first_walk_runs_off_the_loop() {
    let threads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&threads);
    let srv = TestServer::with_users(
        move |mut auth| {
            auth.set_quota_files("user", Some(10)).expect("quota");
            Box::new(ftpdlib::authorizers::WithFilesystem::new(
                auth,
                move |_user: &str, home: std::path::PathBuf| {
                    let fs: Box<dyn ftpdlib::filesystems::FileSystem> = Box::new(ListingThreads {
                        inner: ftpdlib::filesystems::AbstractedFs::new(home)?,
                        threads: std::sync::Arc::clone(&seen),
                    });
                    Ok(fs)
                },
            ))
        },
        |h| h.auth_workers = 1,
        |_| {},
        |b| b,
    );
    std::fs::create_dir(srv.root().join("d")).expect("mkdir");
    std::fs::write(srv.root().join("d/f"), b"12345").expect("write");
    let mut c = srv.login();
    let at_login = threads.lock().expect("lock").clone();
    // The root and d, both listed by the worker.
    assert_eq!(at_login.len(), 2, "{at_login:?}");
    assert!(at_login.iter().all(|t| t != "ftp-loop"), "{at_login:?}");
    assert_eq!(used(&mut c), (5, 1));
    // Later logins find the usage ready: no walk.
    let mut other = srv.login();
    assert_eq!(used(&mut other), (5, 1));
    assert_eq!(threads.lock().expect("lock").len(), 2);
}

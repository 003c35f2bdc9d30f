//! Authorizers and filesystems over FTP: hashed passwords, per-directory rights, a custom
//! filesystem, and the command line's `--perm`, `--users-file` and `--hash-password`.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ftpdlib::authorizers::{
    hash_password, Authorizer, AuthorizerError, DummyAuthorizer, WithFilesystem,
};
use ftpdlib::filesystems::{AbstractedFs, FileSystem, FsFile, WriteMode};
use ftpdlib::servers::{FtpServer, RunningServer};

use crate::util::{run_tool, BinServer, Client, IO_TIMEOUT};

/// `auth` served in this process on 127.0.0.1:0, with a short failed-login delay.
fn serve(auth: impl Authorizer + 'static) -> RunningServer {
    FtpServer::builder(auth)
        .configure(|c| c.auth_failed_timeout = Duration::from_millis(50))
        .spawn("127.0.0.1:0")
        .expect("start the server")
}

fn stop(srv: RunningServer) {
    srv.stop(IO_TIMEOUT).expect("stop the server");
}

/// STOR expecting a refusal before any data moves: the reply.
fn refused_stor(c: &mut Client, path: &str) -> (u16, String) {
    c.expect("TYPE I", 200);
    let _data = c.pasv();
    c.cmd(&format!("STOR {path}"))
}

#[test]
fn hashed_password_login() {
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::write(home.path().join("f"), b"data").expect("write");
    let hash = hash_password("s3cret pass").expect("hash");
    let mut auth = DummyAuthorizer::new();
    auth.add_user_hashed("ann", &hash, home.path(), "elr", None, None)
        .expect("add");
    let srv = serve(auth);
    let mut c = Client::connect(srv.local_addr());
    c.expect("USER ann", 331);
    assert_eq!(c.cmd("PASS s3cret"), (530, "Authentication failed.".into()));
    c.expect("USER ann", 331);
    // the stored hash itself is not a password
    assert_eq!(
        c.cmd(&format!("PASS {hash}")),
        (530, "Authentication failed.".into())
    );
    c.login("ann", "s3cret pass");
    assert_eq!(c.retr("f"), b"data");
    c.expect("QUIT", 221);
    stop(srv);
}

#[test]
fn hash_that_libcrypt_refuses_is_an_error() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut auth = DummyAuthorizer::new();
    for bad in ["12345", "!", "*", "$nope$x"] {
        let e = auth
            .add_user_hashed("ann", bad, home.path(), "elr", None, None)
            .unwrap_err();
        assert!(
            matches!(e, AuthorizerError::BadHash(ref u) if u == "ann"),
            "{bad}"
        );
    }
}

#[test]
fn override_perm_over_ftp() {
    let home = tempfile::tempdir().expect("tempdir");
    let root = home.path();
    for d in ["rec/sub/deeper", "flat/sub", "ro"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    let mut auth = DummyAuthorizer::new();
    auth.add_user("u", "p", root, "elr", None, None)
        .expect("add");
    auth.override_perm("u", root.join("rec"), "elrw", true)
        .expect("recursive");
    auth.override_perm("u", root.join("flat"), "elrw", false)
        .expect("flat");
    // The most specific override wins, whatever the order they were added in.
    auth.override_perm("u", root.join("rec/sub/deeper"), "el", true)
        .expect("deeper");
    let srv = serve(auth);
    let mut c = Client::connect(srv.local_addr());
    c.login("u", "p");
    for ok in ["rec/a", "rec/sub/b", "flat/c"] {
        c.stor(ok, b"x");
        assert!(root.join(ok).is_file(), "{ok}");
    }
    for refused in ["top", "flat/sub/d", "rec/sub/deeper/e", "ro/f"] {
        assert_eq!(
            refused_stor(&mut c, refused),
            (550, "Not enough privileges.".into()),
            "{refused}"
        );
        assert!(!root.join(refused).exists(), "{refused}");
    }
    // reading is governed by the override too: "el" has no "r"
    std::fs::write(root.join("rec/sub/deeper/g"), b"g").expect("write");
    assert_eq!(
        c.cmd("RETR rec/sub/deeper/g"),
        (550, "Not enough privileges.".into())
    );
    c.expect("QUIT", 221);
    stop(srv);
}

/// A filesystem that refuses every change: the wrapper pattern of demo/readonly_fs.rs.
struct ReadOnly(AbstractedFs);

fn read_only() -> io::Error {
    io::Error::from_raw_os_error(30) // EROFS
}

impl FileSystem for ReadOnly {
    fn root(&self) -> &Path {
        self.0.root()
    }
    fn cwd(&self) -> &str {
        self.0.cwd()
    }
    fn set_cwd(&mut self, ftp_path: String) {
        self.0.set_cwd(ftp_path)
    }
    fn ftp2fs(&self, ftp_path: &str) -> PathBuf {
        self.0.ftp2fs(ftp_path)
    }
    fn fs2ftp(&self, fs_path: &Path) -> String {
        self.0.fs2ftp(fs_path)
    }
    fn validpath(&self, fs_path: &Path) -> bool {
        self.0.validpath(fs_path)
    }
    fn open_write(&self, _p: &Path, _mode: WriteMode) -> io::Result<FsFile> {
        Err(read_only())
    }
    fn mkdir(&self, _p: &Path) -> io::Result<()> {
        Err(read_only())
    }
    fn remove(&self, _p: &Path) -> io::Result<()> {
        Err(read_only())
    }
    fn listdir(&self, p: &Path) -> io::Result<Vec<OsString>> {
        // hide dot files, to show a listing hook too
        let mut names = self.0.listdir(p)?;
        names.retain(|n| !n.to_string_lossy().starts_with('.'));
        Ok(names)
    }
}

#[test]
fn custom_filesystem_plugs_in() {
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::write(home.path().join("visible"), b"v").expect("write");
    std::fs::write(home.path().join(".hidden"), b"h").expect("write");
    let mut auth = DummyAuthorizer::new();
    auth.add_user("u", "p", home.path(), "elradfmwMT", None, None)
        .expect("add");
    let srv = serve(WithFilesystem::new(auth, |_user, home| {
        Ok(Box::new(ReadOnly(AbstractedFs::new(home)?)) as Box<dyn FileSystem>)
    }));
    let mut c = Client::connect(srv.local_addr());
    c.login("u", "p");
    assert_eq!(c.retr("visible"), b"v");
    assert_eq!(c.listing("NLST"), "visible\r\n");
    let (code, text) = c.cmd("MKD d");
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("Read-only file system"), "{text}");
    assert_eq!(refused_stor(&mut c, "new").0, 550);
    assert!(!home.path().join("new").exists());
    c.expect("QUIT", 221);
    stop(srv);
}

// ---- the command line --------------------------------------------------------------

fn hash_with_binary(password: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftpdlib"))
        .arg("--hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ftpdlib --hash-password");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write the password");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout).expect("utf-8");
    let hash = hash.trim_end().to_owned();
    assert!(hash.starts_with('$'), "{hash}");
    hash
}

#[test]
fn users_file_login_through_the_binary() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir(&a).expect("mkdir");
    std::fs::create_dir(&b).expect("mkdir");
    std::fs::write(b.join("readme"), b"hi").expect("write");
    let users = tmp.path().join("users");
    let text = format!(
        "# ftpdlib users\nalice:{}:{}:elradfmwMT\n\nbob:{}:{}:elr\n",
        hash_with_binary("alice pw"),
        a.display(),
        hash_password("bob pw").expect("hash"),
        b.display()
    );
    std::fs::write(&users, text).expect("write the users file");
    let srv = BinServer::start(&["--users-file", users.to_str().expect("utf-8")]);
    let mut c = Client::connect(srv.addr);
    c.login("alice", "alice pw");
    c.stor("up", b"payload");
    assert_eq!(std::fs::read(a.join("up")).expect("uploaded"), b"payload");
    c.expect("USER bob", 331);
    assert_eq!(
        c.cmd("PASS alice pw"),
        (530, "Authentication failed.".into())
    );
    c.login("bob", "bob pw");
    assert_eq!(c.retr("readme"), b"hi");
    assert_eq!(c.cmd("DELE readme"), (550, "Not enough privileges.".into()));
    // no anonymous unless the file lists it
    c.expect("USER anonymous", 331);
    assert_eq!(
        c.cmd("PASS x@y"),
        (530, "Anonymous access not allowed.".into())
    );
    c.expect("QUIT", 221);
}

fn ftpdlib(args: &[&str]) -> std::process::Output {
    run_tool(
        Command::new(env!("CARGO_BIN_EXE_ftpdlib")).args(args),
        IO_TIMEOUT,
    )
}

fn fails_with(args: &[&str], needle: &str) {
    let out = ftpdlib(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: {err}");
}

#[test]
fn bad_users_files_name_the_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let users = tmp.path().join("users");
    let d = tmp.path().display();
    let cases = [
        (
            format!("# c\nalice:{d}:elr\n"),
            "users:2: expected name:hash:home:perms",
        ),
        (
            format!("alice:12345:{d}:elr\n"),
            "users:1: user 'alice': the hash",
        ),
        (
            format!("\n\nalice::{d}:elr\n"),
            "users:3: user 'alice' has no password hash",
        ),
        (
            format!(
                "alice:{}:{d}/missing:elr\n",
                hash_password("x").expect("hash")
            ),
            "users:1: no such directory",
        ),
    ];
    for (text, needle) in cases {
        std::fs::write(&users, &text).expect("write");
        fails_with(
            &["-p", "0", "--users-file", users.to_str().expect("utf-8")],
            needle,
        );
    }
    fails_with(
        &["-p", "0", "--users-file", "/nonexistent/ftpdlib-users"],
        "/nonexistent/ftpdlib-users",
    );
}

#[test]
fn perm_gives_exactly_these_rights() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("f"), b"f").expect("write");
    let dir = tmp.path().to_str().expect("utf-8");
    // --perm wins over -w
    let srv = BinServer::start(&["-d", dir, "-u", "u", "-P", "p", "-w", "--perm", "elrw"]);
    let mut c = Client::connect(srv.addr);
    c.login("u", "p");
    c.stor("new", b"n");
    assert_eq!(c.cmd("DELE f"), (550, "Not enough privileges.".into()));
    assert_eq!(c.cmd("MKD d"), (550, "Not enough privileges.".into()));
    c.expect("QUIT", 221);
    drop(srv);
    // and for anonymous
    let srv = BinServer::start(&["-d", dir, "--perm", "el"]);
    let mut c = Client::connect(srv.addr);
    c.login("anonymous", "x@y");
    c.expect("TYPE I", 200);
    assert_eq!(c.cmd("RETR f"), (550, "Not enough privileges.".into()));
    assert!(c.listing("NLST").contains('f'));
    c.expect("QUIT", 221);
    fails_with(
        &["-p", "0", "-d", dir, "--perm", "elrX"],
        "no such permission 'X'",
    );
}

#[test]
fn hash_password_needs_a_password() {
    let out = run_tool(
        Command::new(env!("CARGO_BIN_EXE_ftpdlib")).arg("--hash-password"),
        IO_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no password on stdin"));
}

//! `--config FILE` through the built binary: the file's options and `[[users]]` take
//! effect, flags and `FTPDLIB_*` variables win over it, and a bad file stops the server
//! before it listens, naming the file and the line.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{run_tool, BinServer, Client, IO_TIMEOUT};

/// Writes `text` as `ftpdlib.toml` in `dir`; returns its path as a string.
fn config(dir: &Path, text: &str) -> String {
    let path = dir.join("ftpdlib.toml");
    std::fs::write(&path, text).expect("write the config file");
    path.to_str().expect("a UTF-8 temp path").to_owned()
}

/// TOML's basic string for a path: quoted, backslashes and quotes escaped.
fn quoted(p: &Path) -> String {
    let s = p.to_str().expect("a UTF-8 temp path");
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Runs the binary with `args`, which must make it exit at once with status 2; returns
/// its standard error.
fn refused(args: &[&str]) -> String {
    let out = run_tool(
        Command::new(env!("CARGO_BIN_EXE_ftpdlib")).args(args),
        IO_TIMEOUT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    stderr
}

/// The binary started with `--config` alone, so that the address comes from the file;
/// killed when dropped.
struct FromFile(Child);

impl Drop for FromFile {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `ftpdlib --config FILE` and waits (bounded) until `addr` accepts a connection.
fn start_from_file(file: &str, addr: SocketAddr) -> FromFile {
    let child = Command::new(env!("CARGO_BIN_EXE_ftpdlib"))
        .args(["--config", file])
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the ftpdlib binary");
    let mut server = FromFile(child);
    let deadline = Instant::now() + IO_TIMEOUT;
    while TcpStream::connect_timeout(&addr, IO_TIMEOUT).is_err() {
        let exited = !matches!(server.0.try_wait(), Ok(None));
        assert!(
            !exited && Instant::now() < deadline,
            "not listening on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// The first session of a server with a connection limit: the readiness probe counts
/// until the server has seen it close, so a 421 is retried (bounded).
fn first_client(addr: SocketAddr) -> (Client, String) {
    for _ in 0..100 {
        let mut c = Client::connect_raw(addr);
        match c.reply() {
            (220, greeting) => return (c, greeting),
            (421, _) => {
                c.expect_closed();
            }
            other => panic!("greeting: {other:?}"),
        }
    }
    panic!("the probe connection still counts against the limit");
}

#[test]
fn the_file_describes_the_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let text = format!(
        "# one server\ninterface = \"127.0.0.1\"\nport = {port}\ndirectory = {}\n\
         write = true\nbanner = \"Hello from the file\"\nmax-cons-per-ip = 1\n",
        quoted(&root)
    );
    let file = config(tmp.path(), &text);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let _server = start_from_file(&file, addr);
    // port and interface: it listens there; banner: the greeting.
    let (mut c, greeting) = first_client(addr);
    assert_eq!(greeting, "Hello from the file");
    // max-cons-per-ip = 1: a second session from this address is refused.
    let mut second = Client::connect_raw(addr);
    assert_eq!(
        second.expect_closed(),
        [(
            421,
            "Too many connections from the same IP address.".to_owned()
        )]
    );
    // write and directory: anonymous stores into the directory.
    c.login("anonymous", "a@b");
    c.stor("up.txt", b"from the file");
    assert_eq!(
        std::fs::read(root.join("up.txt")).expect("read"),
        b"from the file"
    );
    c.expect("QUIT", 221);
}

#[test]
fn users_from_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ann, bob) = (tmp.path().join("ann"), tmp.path().join("bob"));
    for dir in [&ann, &bob, &bob.join("incoming")] {
        std::fs::create_dir(dir).expect("mkdir");
    }
    std::fs::write(bob.join("readme"), b"bob's").expect("write");
    let hash = ftpdlib::authorizers::hash_password("s3cret").expect("hash");
    let text = format!(
        "[[users]]\nname = \"ann\"\npassword-hash = \"{hash}\"\nhome = {}\n\
         perm = \"elradfmwMT\"\nmsg-login = \"Hi ann.\"\n\n\
         [[users]]\nname = \"bob\"\npassword = \"plain\"\nhome = {}\n\n\
         [[users.overrides]]\ndirectory = \"incoming\"\nperm = \"elrw\"\n",
        quoted(&ann),
        quoted(&bob)
    );
    let file = config(tmp.path(), &text);
    let srv = BinServer::start(&["--config", &file]);
    // A hashed password, full rights, the file's login message.
    let mut c = Client::connect(srv.addr);
    c.expect("USER ann", 331);
    assert_eq!(c.cmd("PASS s3cret"), (230, "Hi ann.".into()));
    c.stor("mine", b"ann's");
    assert!(ann.join("mine").is_file());
    // A clear-text password; perm elr by default, elrw in the override's directory.
    let mut c = Client::connect(srv.addr);
    c.login("bob", "plain");
    assert_eq!(c.retr("readme"), b"bob's");
    c.expect("TYPE I", 200);
    let data = c.pasv();
    assert_eq!(c.cmd("STOR here"), (550, "Not enough privileges.".into()));
    drop(data);
    c.stor("incoming/there", b"bob's upload");
    assert!(bob.join("incoming/there").is_file() && !bob.join("here").exists());
    // Wrong passwords, and anonymous, who is not listed.
    let mut c = Client::connect(srv.addr);
    c.expect("USER ann", 331);
    assert_eq!(c.cmd("PASS plain").0, 530);
    let mut c = Client::connect(srv.addr);
    c.expect("USER anonymous", 331);
    assert_eq!(c.cmd("PASS a@b").0, 530);
}

#[test]
fn flag_beats_environment_beats_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "directory = {}\nbanner = \"file\"\nmax-login-attempts = 1\n",
        quoted(tmp.path())
    );
    let file = config(tmp.path(), &text);
    let greeting = |args: &[&str], env: &[(&str, Option<&str>)]| {
        let srv = BinServer::start_env(args, env);
        let mut c = Client::connect_raw(srv.addr);
        c.reply().1
    };
    let env = [("FTPDLIB_BANNER", Some("environment"))];
    assert_eq!(greeting(&["--config", &file], &[]), "file");
    assert_eq!(greeting(&["--config", &file], &env), "environment");
    assert_eq!(
        greeting(&["--config", &file, "--banner", "flag"], &env),
        "flag"
    );
    // FTPDLIB_CONFIG names the file too.
    assert_eq!(greeting(&[], &[("FTPDLIB_CONFIG", Some(&file))]), "file");
    // What neither overrides still comes from the file: one failed login ends the session.
    let srv = BinServer::start(&["--config", &file, "-u", "u", "-P", "p"]);
    let mut c = Client::connect(srv.addr);
    c.expect("USER u", 331);
    assert_eq!(
        c.cmd("PASS wrong"),
        (530, "Authentication failed. Disconnecting.".into())
    );
}

#[test]
fn timeouts_from_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "directory = {}\nwrite = true\ntimeout = 300\npassive-timeout = 1\ndata-timeout = 1\n",
        quoted(tmp.path())
    );
    let file = config(tmp.path(), &text);
    let srv = BinServer::start(&["--config", &file]);
    // passive-timeout: a PASV nobody connects to gives up after a second.
    let mut c = Client::connect(srv.addr);
    c.login("anonymous", "a@b");
    let started = Instant::now();
    c.expect("PASV", 227);
    assert_eq!(c.reply(), (421, "Passive data channel timed out.".into()));
    assert!(started.elapsed() >= Duration::from_millis(900));
    // data-timeout: an upload that sends nothing is cut after a second, while the
    // control connection's 300 s would have waited.
    let mut c = Client::connect(srv.addr);
    c.login("anonymous", "a@b");
    let data = c.pasv();
    c.expect("STOR stalled", 125);
    let started = Instant::now();
    assert_eq!(
        c.expect_closed(),
        [(421, "Data connection timed out.".to_owned())]
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    drop(data);
}

#[test]
fn a_bad_file_names_its_line_and_exits_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Held, so that a server that started anyway would fail differently.
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("address").port();
    let path = tmp.path().join("ftpdlib.toml");
    let shown = path.display().to_string();
    let cases = [
        (
            "port = 1\n\nprot = 21\n",
            "3: unknown key 'prot'".to_owned(),
        ),
        (
            "# types\nwrite = \"yes\"\n",
            "2: write: expected true or false, found a string".to_owned(),
        ),
        (
            "port = 70000\n",
            "1: port: invalid int value: '70000'".to_owned(),
        ),
        (
            "max-cons = 3\nrange = \"9000-8000\"\n",
            "2: range: invalid range '9000-8000': need 1 <= FROM < TO <= 65535".to_owned(),
        ),
        (
            "[[users]]\nname = \"bob\"\nhome = \"/\"\n",
            "2: user 'bob': no password-hash or password (make a hash with ftpdlib \
             --hash-password)"
                .to_owned(),
        ),
        (
            "[[users]]\nname = \"bob\"\npassword = \"x\"\nhome = \"/nonexistent/dir\"\n",
            "2: user 'bob': ".to_owned(),
        ),
        ("port = \n", "1: string values must be quoted".to_owned()),
    ];
    for (text, expected) in cases {
        std::fs::write(&path, text).expect("write the config file");
        let stderr = refused(&[
            "--config",
            &shown,
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ]);
        let line = format!("ftpdlib: {shown}:{expected}");
        assert!(stderr.starts_with(&line), "{text:?}:\n{stderr}");
        assert!(!stderr.contains("usage:"), "{stderr}");
    }
    // Unreadable: missing, or a directory.
    let missing = tmp.path().join("missing.toml");
    let stderr = refused(&["--config", missing.to_str().expect("UTF-8")]);
    assert_eq!(
        stderr,
        format!(
            "ftpdlib: {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
    let stderr = refused(&["--config", tmp.path().to_str().expect("UTF-8")]);
    assert!(
        stderr.starts_with(&format!("ftpdlib: {}: ", tmp.path().display())),
        "{stderr}"
    );
    // The flag's own errors are the command line's.
    let stderr = refused(&["--config"]);
    assert!(
        stderr.ends_with("ftpdlib: error: argument --config: expected one argument\n"),
        "{stderr}"
    );
}

#[test]
fn the_timeout_flags() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir: PathBuf = tmp.path().into();
    let srv = BinServer::start(&["-d", dir.to_str().expect("UTF-8"), "--passive-timeout", "1"]);
    let mut c = Client::connect(srv.addr);
    c.login("anonymous", "a@b");
    c.expect("PASV", 227);
    assert_eq!(c.reply(), (421, "Passive data channel timed out.".into()));
    let stderr = refused(&["--passive-timeout", "0"]);
    assert!(
        stderr
            .ends_with("argument --passive-timeout: invalid value: '0' (use 1 or more seconds)\n"),
        "{stderr}"
    );
}

#[test]
fn log_prefix_and_auth_failed_timeout_from_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "directory = {}\nlog-prefix = \"session of %(username)s:\"\n\
         auth-failed-timeout = 0\nauth-workers = 1\nbacklog = 16\n",
        quoted(tmp.path())
    );
    let file = config(tmp.path(), &text);
    let mut srv = BinServer::start(&["--config", &file, "-u", "ann", "-P", "pw"]);
    let mut c = Client::connect(srv.addr);
    c.expect("USER ann", 331);
    // No delay before the 530 (the default is 3 s).
    let started = Instant::now();
    assert_eq!(c.cmd("PASS wrong").0, 530);
    assert!(started.elapsed() < Duration::from_secs(2));
    c.login("ann", "pw");
    c.expect("QUIT", 221);
    srv.terminate();
    let log = srv.log();
    assert!(
        log.contains("] session of ann: USER 'ann' logged in."),
        "{log}"
    );
}

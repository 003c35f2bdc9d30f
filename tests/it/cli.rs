//! The `ftpdlib` command line: flags, errors, and a clean stop on SIGTERM.

use std::process::Command;

use crate::util::{run_tool, BinServer, Client, IO_TIMEOUT};

fn ftpdlib(args: &[&str]) -> std::process::Output {
    run_tool(
        Command::new(env!("CARGO_BIN_EXE_ftpdlib")).args(args),
        IO_TIMEOUT,
    )
}

#[test]
fn version_flag() {
    let out = ftpdlib(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    assert_eq!(text, format!("ftpdlib {}\n", env!("CARGO_PKG_VERSION")));
}

/// Runs the binary with `args` (with an 80-column help); returns its exit code, stdout and
/// stderr.
fn outcome<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (Option<i32>, String, String) {
    let out = run_tool(
        Command::new(env!("CARGO_BIN_EXE_ftpdlib"))
            .args(args)
            .env("COLUMNS", "80"),
        IO_TIMEOUT,
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn command_line_errors_are_argparse_errors() {
    // argparse's form: the usage line, then `prog: error: message`, exit status 2.
    for (args, message) in [
        (
            &["-p", "x"][..],
            "argument -p/--port: invalid int value: 'x'",
        ),
        (&["-p"], "argument -p/--port: expected one argument"),
        (
            &["--nosuch", "-w", "foo"],
            "unrecognized arguments: --nosuch foo",
        ),
        (
            &["--por", "21", "--nosuch"],
            "unrecognized arguments: --nosuch",
        ),
        (
            &["--wri"],
            "ambiguous option: --wri could match --write, --write-limit",
        ),
        (
            &["--concurrency", "x"],
            "argument --concurrency: invalid choice: 'x' (choose from 'async', \
             'multi-thread', 'multi-proc', 'pre-fork', 'multi-loop')",
        ),
        (
            &["-wx"],
            "argument -w/--write: ignored explicit argument 'x'",
        ),
        (&["--", "-w"], "unrecognized arguments: -- -w"),
    ] {
        let (code, stdout, stderr) = outcome(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stdout, "", "{args:?}");
        assert_eq!(
            stderr,
            format!("usage: ftpdlib [options]\nftpdlib: error: {message}\n"),
            "{args:?}"
        );
    }
    // An argument that is not UTF-8.
    use std::os::unix::ffi::OsStrExt;
    let args = [
        std::ffi::OsStr::new("-u"),
        std::ffi::OsStr::from_bytes(b"\xff"),
    ];
    let (code, _, stderr) = outcome(&args);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.ends_with("ftpdlib: error: argument -u/--username: invalid UTF-8 value: '\\xff'\n"),
        "{stderr}"
    );
}

#[test]
fn help_flag() {
    for flag in ["-h", "--help", "--he"] {
        let (code, stdout, stderr) = outcome(&[flag]);
        assert_eq!(code, Some(0), "{flag}: {stderr}");
        assert_eq!(stderr, "", "{flag}");
        assert!(
            stdout.starts_with(
                "usage: ftpdlib [options]\n\
                 \n\
                 Start a stand alone anonymous FTP server.\n\
                 \n\
                 options:\n  \
                 -h, --help            show this help message and exit\n"
            ),
            "{flag}: {stdout}"
        );
        assert!(
            stdout.contains("\n  -p PORT, --port PORT  specify port number to run on"),
            "{stdout}"
        );
        assert!(stdout.lines().all(|l| l.len() <= 78), "{stdout}");
    }
    // $COLUMNS sets the width.
    let out = run_tool(
        Command::new(env!("CARGO_BIN_EXE_ftpdlib"))
            .arg("-h")
            .env("COLUMNS", "50"),
        IO_TIMEOUT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().all(|l| l.len() <= 48), "{stdout}");
}

#[test]
fn bad_flags_exit_2() {
    for args in [
        &["--no-such-flag"][..],
        &["-u", "someone"],
        &["--tls"],
        &["--concurrency", "no-such-model"],
        &["--workers", "many"],
        &["-r", "9000-8000"],
        &["-d", "/nonexistent/ftpdlib/dir"],
    ] {
        let out = ftpdlib(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn binary_serves_anonymous_read_only_by_default() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("hello"), b"world").expect("write");
    let dir = tmp.path().to_str().expect("utf-8 path");
    let srv = BinServer::start(&["-d", dir, "--banner", "custom banner"]);
    let mut c = Client::connect_raw(srv.addr);
    assert_eq!(c.reply(), (220, "custom banner".into()));
    c.login("anonymous", "x@y");
    assert_eq!(c.retr("hello"), b"world");
    assert_eq!(c.cmd("MKD d"), (550, "Not enough privileges.".into()));
    c.expect("QUIT", 221);
}

#[test]
fn sigterm_stops_the_binary_cleanly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_str().expect("utf-8 path");
    let mut srv = BinServer::start(&["-d", dir]);
    let mut c = Client::connect(srv.addr);
    c.login("anonymous", "x@y");
    let status = srv.terminate();
    assert!(status.success(), "exit status {status:?}");
    // A graceful stop: the idle session is told why it ends.
    let last = c.expect_closed();
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!(last[0].0, 421, "{last:?}");
    assert_eq!(last[0].1, "Server shutting down.");
    let log = srv.log();
    assert!(log.contains(">>> starting FTP server on"), "{log}");
    assert!(log.contains(">>> shutting down FTP server"), "{log}");
}

/// Started with descriptors 0-2 closed, the binary takes them (/dev/null) before it opens
/// anything, so no socket, epoll or eventfd descriptor becomes standard error and receives
/// log lines.
#[test]
fn closed_standard_descriptors_are_taken_by_dev_null() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_str().expect("utf-8 path");
    std::fs::write(tmp.path().join("f"), b"data").expect("write");
    let srv = BinServer::start_without_stdio(&["-d", dir, "-D"]);
    for fd in 0..=2 {
        let target = std::fs::read_link(format!("/proc/{}/fd/{fd}", srv.pid()));
        assert_eq!(
            target.expect("the binary's descriptor").to_str(),
            Some("/dev/null"),
            "descriptor {fd}"
        );
    }
    for _ in 0..3 {
        let mut c = Client::connect_raw(srv.addr);
        assert_eq!(c.reply().0, 220);
        c.login("anonymous", "x@y");
        assert_eq!(c.retr("f"), b"data");
        assert_eq!(c.cmd("NOOP"), (200, "I successfully did nothing.".into()));
        c.expect("QUIT", 221);
    }
}

/// A client that vanishes in the middle of a download does not take the binary down: a
/// write to its closed connection is an error for that session (SIGPIPE is ignored).
#[test]
fn a_client_vanishing_mid_download_leaves_the_binary_serving() {
    use std::io::Read;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_str().expect("utf-8 path");
    let big = std::fs::File::create(tmp.path().join("big")).expect("create");
    big.set_len(256 << 20).expect("size the file");
    let mut srv = BinServer::start(&["-d", dir]);
    for _ in 0..2 {
        let mut c = Client::connect_raw(srv.addr);
        assert_eq!(c.reply().0, 220);
        c.login("anonymous", "x@y");
        c.expect("TYPE I", 200);
        let mut data = c.pasv();
        c.expect("RETR big", 125);
        let mut first = [0u8; 4096];
        data.read_exact(&mut first)
            .expect("first bytes of the download");
        // Unread data in the receive queue: closing sends a reset.
        drop(data);
        drop(c);
    }
    let mut c = Client::connect_raw(srv.addr);
    assert_eq!(c.reply().0, 220);
    c.login("anonymous", "x@y");
    c.expect("NOOP", 200);
    c.expect("QUIT", 221);
    let status = srv.terminate();
    assert!(status.success(), "{status:?}: {}", srv.log());
}

/// `-i` takes a host name, as pyftpdlib's does: the server binds what it resolves to.
#[test]
fn interface_may_be_a_host_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_str().expect("utf-8 path");
    let log = tmp.path().join("server.log");
    /// Stops the server however the test ends.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut server = Running(
        Command::new(env!("CARGO_BIN_EXE_ftpdlib"))
            .args(["-i", "localhost", "-p", "0", "-d", dir])
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the log"))
            .spawn()
            .expect("start the ftpdlib binary"),
    );
    // The log names the address bound: ">>> starting FTP server on ADDR, pid=N <<<".
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    let addr: std::net::SocketAddr = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(rest) = text.split("starting FTP server on ").nth(1) {
            let addr = rest.split(',').next().unwrap_or_default();
            break addr.parse().unwrap_or_else(|e| panic!("{addr:?}: {e}"));
        }
        let exited = server.0.try_wait().expect("wait");
        if exited.is_some() || std::time::Instant::now() > deadline {
            panic!("no start line (exit {exited:?}); log:\n{text}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_ne!(addr.port(), 0);
    let mut c = Client::connect_raw(addr);
    assert_eq!(c.reply().0, 220);
    c.login("anonymous", "x@y");
    c.expect("QUIT", 221);
}

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

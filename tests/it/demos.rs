//! Every demo in `demo/` is run: started as the built example on a free port
//! (`FTPDLIB_DEMO_ADDR=127.0.0.1:0`), given a short session that shows what it is for,
//! then stopped with SIGTERM. `cargo test` builds the examples; a missing one is skipped,
//! except under CI.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crate::util::{have_tool, random_bytes, run_tool, Client, IO_TIMEOUT, TOOL_TIMEOUT};

/// The built example `name`, beside this test binary (`target/<profile>/examples`).
fn example(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let path = exe.parent()?.parent()?.join("examples").join(name);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the example {name} is not built at {}",
        path.display()
    );
    eprintln!("SKIP: example {name} not built (cargo test builds the examples)");
    None
}

/// A demo running as a child process; SIGTERM and a bounded wait when dropped.
struct Demo {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Demo {
    fn start(name: &str, args: &[&str]) -> Option<Demo> {
        let path = example(name)?;
        let mut child = Command::new(path)
            .args(args)
            .env("FTPDLIB_DEMO_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the {name} demo: {e}"));
        let (tx, lines) = mpsc::channel();
        for out in [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Some(Demo {
            child,
            lines,
            seen: Vec::new(),
        })
    }

    /// The first line (stdout or stderr) that contains `what`, waiting at most
    /// `IO_TIMEOUT` for it.
    fn wait_line(&mut self, what: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(what)) {
            return line.clone();
        }
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(what) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {what:?}; output so far: {:#?}", self.seen),
            }
        }
    }

    /// Where the demo listens, from pyftpdlib's start-up line (`>>> starting FTP server on
    /// ADDR, pid=…`, or `FTP+SSL` with TLS).
    fn addr(&mut self) -> SocketAddr {
        let line = self.wait_line(">>> starting FTP");
        let after = line
            .split(" server on ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_default();
        after
            .parse()
            .unwrap_or_else(|_| panic!("no address in {line:?}"))
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: signals the child this struct spawned and has not reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + IO_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dir_arg(dir: &Path) -> &str {
    dir.to_str().expect("a UTF-8 temp path")
}

/// Logs in, uploads and downloads a file, and quits.
fn round_trip(addr: SocketAddr, user: &str, pass: &str) {
    let mut c = Client::connect(addr);
    c.login(user, pass);
    let data = random_bytes(100_000, 3);
    c.stor("demo-file", &data);
    assert!(c.retr("demo-file") == data, "the download differs");
    c.expect("QUIT", 221);
}

#[test]
fn the_serving_demos_serve() {
    for name in [
        "basic_ftpd",
        "multi_thread_ftpd",
        "multi_proc_ftpd",
        "pre_fork_ftpd",
        "multi_loop_ftpd",
        "site_rmtree",
        "anti_flood_ftpd",
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let Some(mut demo) = Demo::start(name, &[dir_arg(tmp.path())]) else {
            continue;
        };
        let addr = demo.addr();
        round_trip(addr, "user", "12345");
        assert!(
            tmp.path().join("demo-file").exists(),
            "{name}: not in the served directory"
        );
    }
}

#[test]
fn basic_ftpd_uses_its_passive_range_and_anonymous_reads_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("f"), b"x").expect("write");
    let Some(mut demo) = Demo::start("basic_ftpd", &[dir_arg(tmp.path())]) else {
        return;
    };
    let mut c = Client::connect(demo.addr());
    c.login("anonymous", "a@b");
    let (code, text) = c.cmd("PASV");
    assert_eq!(code, 227, "{text}");
    let nums: Vec<u16> = text
        .rsplit('(')
        .next()
        .unwrap_or_default()
        .trim_end_matches(|ch: char| !ch.is_ascii_digit())
        .split(',')
        .filter_map(|n| n.parse().ok())
        .collect();
    let port = nums[4] * 256 + nums[5];
    assert!(port >= 60000, "passive port {port} outside 60000-65535");
    assert_eq!(c.cmd("DELE f").0, 550);
    c.expect("QUIT", 221);
}

#[test]
fn readonly_and_hashed_and_memory_demos() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("f"), b"read me").expect("write");
    if let Some(mut demo) = Demo::start("readonly_fs", &[dir_arg(tmp.path())]) {
        let mut c = Client::connect(demo.addr());
        c.login("user", "12345");
        assert_eq!(c.retr("f"), b"read me");
        assert_eq!(c.cmd("MKD new").0, 550);
        c.expect("QUIT", 221);
    }
    if let Some(mut demo) = Demo::start("hashed_ftpd", &[dir_arg(tmp.path())]) {
        let line = demo.wait_line("users file line: user:");
        assert!(line.contains(":elradfmwMT"), "{line}");
        let addr = demo.addr();
        round_trip(addr, "user", "12345");
        let mut c = Client::connect(addr);
        c.expect("USER user", 331);
        assert_eq!(c.cmd("PASS 1234").0, 530);
    }
    if let Some(mut demo) = Demo::start("memory_fs", &["0"]) {
        let addr = demo.addr();
        round_trip(addr, "user", "12345");
        let mut c = Client::connect(addr);
        c.login("user", "12345");
        assert!(c
            .retr("README.txt")
            .starts_with(b"Everything here lives in memory."));
        c.expect("QUIT", 221);
        // Nothing of it reached the disk.
        assert!(!Path::new("demo-file").exists());
    }
}

#[test]
fn the_embedded_and_host_loop_demos() {
    if let Some(path) = example("embedded") {
        let out = run_tool(&mut Command::new(path), TOOL_TIMEOUT);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(
            stdout.contains("downloaded: hello from an embedded server"),
            "{stdout}"
        );
        assert!(stdout.contains("stopped"), "{stdout}");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("f"), b"hosted").expect("write");
    if let Some(mut demo) = Demo::start("host_loop", &[dir_arg(tmp.path()), "60"]) {
        let line = demo.wait_line("on ftp://");
        let addr: SocketAddr = line
            .split("ftp://")
            .nth(1)
            .and_then(|rest| rest.strip_suffix('/'))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        let mut c = Client::connect(addr);
        c.login("anonymous", "a@b");
        assert_eq!(c.retr("f"), b"hosted");
        c.expect("QUIT", 221);
        demo.wait_line("host tick:");
    }
}

/// pyftpdlib's anti-flood demo: past 300 commands within a second the session ends with
/// a 550 and the address is refused from then on.
#[test]
fn anti_flood_bans_a_client_that_floods() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(mut demo) = Demo::start("anti_flood_ftpd", &[dir_arg(tmp.path())]) else {
        return;
    };
    let addr = demo.addr();
    let mut c = Client::connect(addr);
    // 400 commands in one write: the server reads them within the same second.
    c.send_raw("NOOP\r\n".repeat(400).as_bytes());
    let mut ok = 0;
    loop {
        let (code, text) = c.reply();
        if code == 200 {
            ok += 1;
            continue;
        }
        assert_eq!(code, 550, "{text}");
        assert!(text.contains("You are banned for 3600 seconds."), "{text}");
        break;
    }
    assert_eq!(ok, 300);
    c.expect_closed();
    let mut again = Client::connect_raw(addr);
    assert_eq!(again.reply(), (550, "You are banned.".to_owned()));
    again.expect_closed();
    demo.wait_line("banned IP 127.0.0.1 for command flooding");
}

#[test]
fn throttled_ftpd_holds_transfers_to_30_kib_per_second() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = random_bytes(45 * 1024, 9);
    std::fs::write(tmp.path().join("f"), &data).expect("write");
    let Some(mut demo) = Demo::start("throttled_ftpd", &[dir_arg(tmp.path())]) else {
        return;
    };
    let mut c = Client::connect(demo.addr());
    c.login("user", "12345");
    let started = Instant::now();
    assert!(c.retr("f") == data, "the download differs");
    // 45 KiB at 30 KiB/s: a throttle can only slow a transfer, so this is a lower bound.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "45 KiB took only {:?}",
        started.elapsed()
    );
    c.expect("QUIT", 221);
}

#[test]
fn tls_ftpd_requires_tls_and_serves_over_it() {
    use crate::tls::client::{have_openssl, Certs};
    if !have_openssl() || !have_tool("curl") {
        return;
    }
    let certs = Certs::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("f"), b"secret").expect("write");
    let (cert, key) = (certs.arg("rsa.crt"), certs.arg("rsa.key"));
    let Some(mut demo) = Demo::start("tls_ftpd", &[&cert, &key, dir_arg(tmp.path())]) else {
        return;
    };
    let addr = demo.addr();
    // USER before AUTH TLS is refused (tls_control_required).
    let mut plain = Client::connect(addr);
    assert_eq!(plain.cmd("USER user").0, 550);
    plain.expect("QUIT", 221);
    let out = run_tool(
        Command::new("curl").args([
            "--silent",
            "--show-error",
            "--ssl-reqd",
            "-k",
            &format!("ftp://user:12345@{addr}/f"),
        ]),
        TOOL_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"secret");
}

#[test]
fn unix_ftpd_needs_root_and_refuses_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: unix_ftpd needs root");
        return;
    }
    let Some(mut demo) = Demo::start("unix_ftpd", &[]) else {
        return;
    };
    let mut c = Client::connect(demo.addr());
    c.expect("USER root", 331);
    assert_eq!(c.cmd("PASS anything").0, 530);
    c.expect("QUIT", 221);
}

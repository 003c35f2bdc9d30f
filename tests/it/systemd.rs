//! systemd's conventions through the binary: socket activation by
//! `systemd-socket-activate` (Debian's `systemd` package, which needs no running systemd)
//! under every concurrency model, the notifications a unix datagram socket of the test
//! receives in `NOTIFY_SOCKET`'s place, and the unit files of `dist/systemd`.

use std::fs::File;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::util::{have_tool, random_bytes, run_tool, Client, IO_TIMEOUT};

const MODELS: [&str; 5] = [
    "async",
    "multi-thread",
    "multi-proc",
    "pre-fork",
    "multi-loop",
];

#[test]
fn socket_activation_serves_every_model() {
    if !have_tool("systemd-socket-activate") {
        return;
    }
    for model in MODELS {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = Activated::start(
            &[
                "-u",
                "user",
                "-P",
                "12345",
                "-w",
                "-d",
                dir_str(dir.path()),
                "--concurrency",
                model,
                "--workers",
                "2",
            ],
            &[],
        );
        let mut c = Client::connect(server.addr);
        c.login("user", "12345");
        let data = random_bytes(300_000, 0x5d_0001);
        c.stor("up.bin", &data);
        assert_eq!(c.retr("up.bin"), data, "{model}: the file read back");
        c.expect("QUIT", 221);
        let log = server.log();
        assert!(
            log.contains(&format!("concurrency model: {model}"))
                && log.contains("socket activation: -i / -p are ignored"),
            "{model}: {log}"
        );
        let status = server.terminate();
        assert!(status.success(), "{model}: {status:?}\n{}", server.log());
    }
}

#[test]
fn notifications_arrive_in_order() {
    if !have_tool("systemd-socket-activate") {
        return;
    }
    for model in MODELS {
        notifications_in_order(model);
    }
}

/// READY=1 once the server serves, the session count as it changes (counted across
/// the loops or processes of `model`), watchdog pings, STOPPING=1 on SIGTERM.
fn notifications_in_order(model: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    notify
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let mut got = Vec::new();
    let mut server = Activated::start(
        &[
            "-d",
            dir_str(dir.path()),
            "--concurrency",
            model,
            "--workers",
            "2",
        ],
        &[
            ("NOTIFY_SOCKET", path_str(&socket_path)),
            // A ping every 100 ms.
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    // Nothing before a client comes: systemd-socket-activate holds the port and starts
    // the server on the first connection, so READY=1 follows a port that accepts.
    let mut buf = [0u8; 64];
    assert!(
        notify.recv(&mut buf).is_err(),
        "a notification before any client"
    );
    let mut c = Client::connect(server.addr);
    receive_until(&notify, &mut got, "STATUS=1 session");
    c.login("anonymous", "x@example.com");
    assert!(c.listing("NLST").contains("notify"));
    c.expect("QUIT", 221);
    receive_until(&notify, &mut got, "STATUS=0 sessions");
    let status = server.terminate();
    assert!(status.success(), "{model}: {status:?}\n{}", server.log());
    receive_until(&notify, &mut got, "STOPPING=1");

    assert_eq!(
        got.first().map(String::as_str),
        Some("READY=1"),
        "{model}: {got:?}"
    );
    assert_eq!(
        got.iter().filter(|m| *m == "READY=1").count(),
        1,
        "{model}: {got:?}"
    );
    let statuses: Vec<&str> = got
        .iter()
        .filter(|m| m.starts_with("STATUS="))
        .map(String::as_str)
        .collect();
    assert_eq!(
        statuses.last(),
        Some(&"STATUS=0 sessions"),
        "{model}: the last count: {got:?}"
    );
    // Each line says something new: a count is sent when it changes.
    assert!(
        statuses.windows(2).all(|w| w[0] != w[1]),
        "{model}: {got:?}"
    );
    let pings = got.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(pings >= 3, "{model}: watchdog pings: {got:?}");
}

#[test]
fn no_watchdog_pings_unless_asked() {
    if !have_tool("systemd-socket-activate") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    notify
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let mut got = Vec::new();
    let mut server = Activated::start(
        &["-d", dir_str(dir.path())],
        &[("NOTIFY_SOCKET", path_str(&socket_path))],
    );
    let mut c = Client::connect(server.addr);
    receive_until(&notify, &mut got, "STATUS=1 session");
    c.expect("QUIT", 221);
    receive_until(&notify, &mut got, "STATUS=0 sessions");
    assert!(server.terminate().success());
    receive_until(&notify, &mut got, "STOPPING=1");
    assert!(!got.iter().any(|m| m == "WATCHDOG=1"), "{got:?}");
}

/// `systemd-analyze verify` on the unit files, with `ExecStart=` pointing at the built
/// binary (verify checks that the program exists): no error, and no warning about them
/// (an unknown key is only a warning).
#[test]
fn unit_files_parse() {
    if !have_tool("systemd-analyze") {
        return;
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/systemd");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut units = Vec::new();
    for name in ["ftpdlib.socket", "ftpdlib.service"] {
        let text = std::fs::read_to_string(source.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .replace("/usr/bin/ftpdlib", env!("CARGO_BIN_EXE_ftpdlib"));
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write the unit");
        units.push(path);
    }
    let service = std::fs::read_to_string(source.join("ftpdlib.service")).expect("service");
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "ReadWritePaths=/srv/ftp",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
    ] {
        assert!(service.lines().any(|l| l.starts_with(line)), "{line}");
    }
    let socket = std::fs::read_to_string(source.join("ftpdlib.socket")).expect("socket");
    assert!(socket.lines().any(|l| l == "ListenStream=21"));
    assert!(socket.lines().any(|l| l == "Accept=no"));
    let out = run_tool(
        Command::new("systemd-analyze")
            .arg("verify")
            .args(&units)
            .env("SYSTEMD_LOG_COLOR", "0"),
        IO_TIMEOUT,
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "systemd-analyze verify:\n{text}");
    assert!(
        !text.lines().any(|l| l.contains("ftpdlib")),
        "systemd-analyze verify:\n{text}"
    );
}

/// `systemd-socket-activate -l 127.0.0.1:<free port> ftpdlib -i 192.0.2.1 -p 1 <args>`:
/// the server is started by the first connection and must serve the inherited socket
/// (it could not bind the address given by -i / -p). Killed on drop.
struct Activated {
    addr: SocketAddr,
    child: Child,
    log: PathBuf,
    _logdir: TempDir,
}

impl Activated {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Activated {
        let logdir = tempfile::tempdir().expect("tempdir for the log");
        let log = logdir.path().join("ftpdlib.log");
        for _attempt in 0..3 {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let mut cmd = Command::new("systemd-socket-activate");
            cmd.arg("-l").arg(addr.to_string());
            // It passes its own environment on, except systemd's variables, which must be
            // given with -E.
            for (name, value) in env {
                cmd.arg("-E").arg(format!("{name}={value}"));
            }
            cmd.args([env!("CARGO_BIN_EXE_ftpdlib"), "-i", "192.0.2.1", "-p", "1"])
                .args(args)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&log).expect("create the log"));
            let mut child = cmd.spawn().expect("start systemd-socket-activate");
            let listening = format!("Listening on {addr}");
            let deadline = Instant::now() + IO_TIMEOUT;
            loop {
                if std::fs::read_to_string(&log).is_ok_and(|l| l.contains(&listening)) {
                    return Activated {
                        addr,
                        child,
                        log,
                        _logdir: logdir,
                    };
                }
                if !matches!(child.try_wait(), Ok(None)) || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // The port was taken in the meantime: another one.
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "systemd-socket-activate did not listen:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM (systemd-socket-activate execs the server in its own process), then the
    /// exit status, bounded.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            match self.child.try_wait().expect("wait for the server") {
                Some(status) => return status,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                None => panic!("the server did not exit within {IO_TIMEOUT:?} of SIGTERM"),
            }
        }
    }
}

impl Drop for Activated {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collects notification lines into `got` until `line` arrives anew (bounded): one
/// received before the call does not count.
pub(crate) fn receive_until(socket: &UnixDatagram, got: &mut Vec<String>, line: &str) {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut buf = [0u8; 4096];
    let from = got.len();
    while !got[from..].iter().any(|m| m == line) {
        assert!(
            Instant::now() < deadline,
            "no {line:?} within {IO_TIMEOUT:?}; got {got:?}"
        );
        match socket.recv(&mut buf) {
            // A datagram may carry several lines.
            Ok(n) => got.extend(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .map(str::to_owned),
            ),
            // The read timeout: nothing this time.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("receiving notifications: {e}"),
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn dir_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

fn path_str(p: &Path) -> &str {
    dir_str(p)
}

#[test]
fn activation_variables_for_another_process_are_ignored() {
    // LISTEN_PID names someone else (a parent that forgot to unset them): bind as usual.
    let mut server = crate::util::BinServer::start_env(
        &[],
        &[("LISTEN_PID", Some("1")), ("LISTEN_FDS", Some("1"))],
    );
    let mut c = Client::connect(server.addr);
    c.expect("QUIT", 221);
    assert!(
        !server.log().contains("socket activation"),
        "{}",
        server.log()
    );
    assert!(server.terminate().success());
}

#[test]
fn a_bad_activation_environment_is_an_error() {
    let run = |script: &str, fds: &str| {
        let out = run_tool(
            Command::new("sh")
                .args(["-c", script, env!("CARGO_BIN_EXE_ftpdlib")])
                .env("LISTEN_FDS", fds)
                .env("RUST_LOG", "info"),
            IO_TIMEOUT,
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Descriptor 3 closed, though the variables say it is ours.
    let (code, err) = run("LISTEN_PID=$$ exec \"$0\" -p 0 3<&-", "1");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("socket activation: descriptor 3"), "{err}");
    // Descriptor 3 open, but a file, not a listener.
    let (code, err) = run("LISTEN_PID=$$ exec \"$0\" -p 0 3</dev/null", "1");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a listening TCP socket"), "{err}");
    // A count that is not one.
    let (code, err) = run("LISTEN_PID=$$ exec \"$0\" -p 0", "many");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("LISTEN_FDS=\"many\""), "{err}");
}

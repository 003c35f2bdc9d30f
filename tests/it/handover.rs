//! Restarts that drop nobody, through the binary: on SIGUSR2 a new copy takes the
//! listening sockets over. Clients logging in and out all along are all served, a
//! download running across it completes in the old process, the old process exits and
//! the new one serves; a new process that cannot start leaves the old one serving; under
//! systemd the service manager learns the new main pid and hears from it afterwards.

use std::io::{BufRead, BufReader, Read, Write};
use std::mem::MaybeUninit;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

use crate::util::{big_data, heavy, is_this_binary, BinServer, Client, IO_TIMEOUT};

/// The log line of a completed hand-over, in the old process.
const HANDED_OVER: &str = "this one stops accepting";

#[test]
fn fifty_clients_across_a_handover_async() {
    clients_across_a_handover("async");
}

#[test]
fn fifty_clients_across_a_handover_multi_thread() {
    clients_across_a_handover("multi-thread");
}

#[test]
fn fifty_clients_across_a_handover_multi_loop() {
    clients_across_a_handover("multi-loop");
}

#[test]
fn fifty_clients_across_a_handover_pre_fork() {
    clients_across_a_handover("pre-fork");
}

#[test]
fn fifty_clients_across_a_handover_multi_proc() {
    clients_across_a_handover("multi-proc");
}

/// 50 clients log in and out in a loop (connect, USER / PASS, NOOP, QUIT) while the
/// server hands over; every session of every client must go through, greeting included,
/// before, during and after, until each client has done a few sessions with the old
/// process gone.
fn clients_across_a_handover(model: &str) {
    let _heavy = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut srv = start(dir.path(), &["--concurrency", model, "--workers", "2"]);
    let old = srv.pid();
    let sessions = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(90);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (sessions, stop, failures) = (
                Arc::clone(&sessions),
                Arc::clone(&stop),
                Arc::clone(&failures),
            );
            let addr = srv.addr;
            std::thread::spawn(move || {
                for _ in 0..MAX_SESSIONS_PER_CLIENT {
                    if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                        return;
                    }
                    match one_session(addr) {
                        Ok(()) => {
                            sessions.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => {
                            failures
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(format!("client {i}: {e}"));
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    let wait_sessions = |n: usize| {
        let until = Instant::now() + IO_TIMEOUT * 3;
        while sessions.load(Ordering::SeqCst) < n && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        sessions.load(Ordering::SeqCst)
    };
    let before = wait_sessions(2 * CLIENTS);
    srv.signal("USR2");
    srv.wait_log(HANDED_OVER, 1);
    let status = srv.wait_exit();
    let at_exit = sessions.load(Ordering::SeqCst);
    // Every client goes on a few times with the new process alone.
    let after = wait_sessions(at_exit + 3 * CLIENTS);
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().expect("a client thread panicked");
    }
    let failures = failures.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let log = srv.log();
    assert!(
        failures.is_empty(),
        "{model}: {} client(s) failed: {failures:#?}\n{log}",
        failures.len()
    );
    assert!(before >= 2 * CLIENTS, "{model}: {before} sessions before");
    assert!(
        after >= at_exit + 3 * CLIENTS,
        "{model}: {at_exit} sessions when the old process exited, {after} at the end"
    );
    assert!(
        status.success(),
        "{model}: the old process: {status:?}\n{log}"
    );
    // A multi-loop server passes one socket per loop (--workers 2).
    let sockets = if model == "multi-loop" { 2 } else { 1 };
    assert!(
        log.contains(&format!("with {sockets} listening socket(s)")),
        "{model}: {log}"
    );
    assert_new_process_serves(&srv, old, model);
}

#[test]
fn a_download_across_the_handover_completes_in_the_old_process() {
    let _heavy = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = big_data();
    std::fs::write(dir.path().join("big.bin"), data).expect("write the file");
    let mut srv = start(dir.path(), &[]);
    let old = srv.pid();
    let mut c = Client::connect(srv.addr);
    c.login("user", "12345");
    c.expect("TYPE I", 200);
    let mut stream = c.pasv();
    c.send("RETR big.bin");
    let start = c.reply();
    assert!(matches!(start.0, 125 | 150), "{start:?}");
    let mut got = vec![0u8; 1 << 20];
    stream.read_exact(&mut got).expect("the first megabyte");
    srv.signal("USR2");
    srv.wait_log(HANDED_OVER, 1);
    // The transfer goes on in the old process, which stays for it, and hands over no
    // more.
    assert!(
        srv.try_status().is_none(),
        "the old process exited with a transfer running"
    );
    srv.signal("USR2");
    srv.wait_log("hand-over refused: already handed over to pid", 1);
    // Meanwhile a new client is served (by the new process: the old one accepts no more).
    let mut other = Client::connect(srv.addr);
    other.login("user", "12345");
    other.expect("QUIT", 221);
    stream.read_to_end(&mut got).expect("the rest of the file");
    drop(stream);
    assert_eq!(c.reply().0, 226);
    assert!(
        got.len() == data.len() && got == data,
        "the download differs ({} of {} bytes)",
        got.len(),
        data.len()
    );
    c.expect("QUIT", 221);
    let status = srv.wait_exit();
    assert!(
        status.success(),
        "the old process: {status:?}\n{}",
        srv.log()
    );
    assert_new_process_serves(&srv, old, "async");
}

#[test]
fn a_new_process_that_fails_leaves_the_old_one_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ftpdlib.toml");
    std::fs::write(&file, "banner = \"before\"\n").expect("write the config file");
    let file_arg = file.to_str().expect("a UTF-8 temp path");
    let mut srv = start(dir.path(), &["--config", file_arg]);
    let old = srv.pid();
    // The new copy reads the same file: broken, it exits with status 2.
    std::fs::write(&file, "banner = [\n").expect("break the config file");
    srv.signal("USR2");
    let log = srv.wait_log("hand-over failed", 1);
    assert!(
        log.contains("exited with status 2 before it was ready; still serving"),
        "{log}"
    );
    assert!(srv.try_status().is_none(), "the old process exited\n{log}");
    let mut c = Client::connect_raw(srv.addr);
    assert_eq!(c.reply(), (220, "before".into()));
    c.login("user", "12345");
    c.expect("QUIT", 221);
    // Repaired, the next SIGUSR2 hands over.
    std::fs::write(&file, "banner = \"after\"\n").expect("repair the config file");
    srv.signal("USR2");
    srv.wait_log(HANDED_OVER, 1);
    let status = srv.wait_exit();
    assert!(status.success(), "{status:?}\n{}", srv.log());
    let mut c = Client::connect_raw(srv.addr);
    assert_eq!(c.reply(), (220, "after".into()));
    c.expect("QUIT", 221);
    assert_new_process_serves(&srv, old, "async");
}

#[test]
fn systemd_learns_the_new_main_pid_and_hears_from_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    rustix::net::sockopt::set_socket_passcred(&notify, true).expect("SO_PASSCRED");
    notify
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let path = socket_path.to_str().expect("a UTF-8 temp path");
    let mut srv = BinServer::start_env(
        &["-u", "user", "-P", "12345", "-d", dir_str(dir.path())],
        &[
            ("NOTIFY_SOCKET", Some(path)),
            ("WATCHDOG_USEC", Some("200000")),
        ],
    );
    let old = srv.pid();
    let mut got: Vec<(u32, String)> = Vec::new();
    receive_until(&notify, &mut got, |_, m| m == "READY=1");
    // A session that keeps the old process alive after the hand-over.
    let mut held = Client::connect(srv.addr);
    held.login("user", "12345");
    srv.signal("USR2");
    srv.wait_log(HANDED_OVER, 1);
    let new = new_pid(&srv, old);
    let main_pid = format!("MAINPID={new}");
    receive_until(&notify, &mut got, |from, m| from == old && m == main_pid);
    // Stopping the old process now must not tell systemd the service stops.
    srv.signal("TERM");
    assert_eq!(held.reply(), (421, "Server shutting down.".into()));
    let status = srv.wait_exit();
    assert!(status.success(), "{status:?}\n{}", srv.log());
    // The new process pings the watchdog, and says when it stops.
    receive_until(&notify, &mut got, |from, m| {
        from == new && m == "WATCHDOG=1"
    });
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &new.to_string()])
        .status()
        .expect("run kill");
    assert!(stopped.success());
    receive_until(&notify, &mut got, |from, m| {
        from == new && m == "STOPPING=1"
    });

    let from_old: Vec<&str> = got
        .iter()
        .filter(|(from, _)| *from == old)
        .map(|(_, m)| m.as_str())
        .collect();
    let from_new: Vec<&str> = got
        .iter()
        .filter(|(from, _)| *from == new)
        .map(|(_, m)| m.as_str())
        .collect();
    // The old process: READY=1 first, then the new main pid, and no STOPPING=1 (the
    // service does not stop).
    assert_eq!(from_old.first(), Some(&"READY=1"), "{got:?}");
    assert!(from_old.contains(&main_pid.as_str()), "{got:?}");
    assert!(!from_old.contains(&"STOPPING=1"), "{got:?}");
    // The new process never says READY=1 to systemd (it said it to the old process's
    // socket); it pings and reports to systemd's.
    assert!(!from_new.contains(&"READY=1"), "{got:?}");
    assert!(from_new.iter().any(|m| m.starts_with("STATUS=")), "{got:?}");
}

/// The ftpdlib binary on `dir` for `user` / `12345` with every right, plus `args`.
fn start(dir: &Path, args: &[&str]) -> BinServer {
    let mut all = vec!["-u", "user", "-P", "12345", "-w", "-d", dir_str(dir)];
    all.extend_from_slice(args);
    BinServer::start(&all)
}

/// After a hand-over from `old`: the old process is gone, the new one is alive, runs the
/// binary, and serves a login.
fn assert_new_process_serves(srv: &BinServer, old: u32, model: &str) {
    let new = new_pid(srv, old);
    assert!(
        is_this_binary(new),
        "{model}: the new process {new} is not running"
    );
    assert!(
        !is_this_binary(old),
        "{model}: the old process {old} still runs"
    );
    let mut c = Client::connect(srv.addr);
    c.login("user", "12345");
    c.expect("NOOP", 200);
    c.expect("QUIT", 221);
}

/// The pid of the process that took the sockets over from `old`.
fn new_pid(srv: &BinServer, old: u32) -> u32 {
    let pids = srv.server_pids();
    assert_eq!(pids.first(), Some(&old), "{pids:?}\n{}", srv.log());
    match pids.get(1) {
        Some(&pid) => pid,
        None => panic!("no new process in the log:\n{}", srv.log()),
    }
}

/// One short session: greeting, login, NOOP, QUIT, and the server's clean close.
fn one_session(addr: SocketAddr) -> Result<(), String> {
    let stream =
        TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    expect_reply(&mut reader, 220, "the greeting")?;
    for (line, code) in [
        ("USER user", 331),
        ("PASS 12345", 230),
        ("NOOP", 200),
        ("QUIT", 221),
    ] {
        writer
            .write_all(format!("{line}\r\n").as_bytes())
            .map_err(|e| format!("sending {line}: {e}"))?;
        expect_reply(&mut reader, code, line)?;
    }
    let mut rest = Vec::new();
    match reader.read_to_end(&mut rest) {
        Ok(_) if rest.is_empty() => Ok(()),
        Ok(_) => Err(format!("after 221: {:?}", String::from_utf8_lossy(&rest))),
        Err(e) => Err(format!("after 221: {e}")),
    }
}

/// Reads one reply (multi-line included) and checks its code.
fn expect_reply(reader: &mut impl BufRead, code: u16, what: &str) -> Result<(), String> {
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Err(format!("{what}: connection closed, no reply")),
            Ok(_) => {}
            Err(e) => return Err(format!("{what}: {e}")),
        }
        let got: Option<u16> = line.get(..3).and_then(|c| c.parse().ok());
        if line.as_bytes().get(3) == Some(&b' ') || line.len() <= 5 {
            return match got {
                Some(c) if c == code => Ok(()),
                _ => Err(format!("{what}: {:?} instead of {code}", line.trim_end())),
            };
        }
    }
}

/// Receives notifications, each with its sender's pid, until `stop` says so.
fn receive_until(
    socket: &UnixDatagram,
    got: &mut Vec<(u32, String)>,
    stop: impl Fn(u32, &str) -> bool,
) {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut buf = [0u8; 256];
    while Instant::now() < deadline {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let Ok(msg) = rustix::net::recvmsg(socket, &mut iov, &mut control, RecvFlags::empty())
        else {
            continue; // the read timeout: look at the deadline
        };
        let mut from = 0;
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmCredentials(cred) = m {
                from = cred.pid.as_raw_nonzero().get().unsigned_abs();
            }
        }
        let text = String::from_utf8_lossy(&buf[..msg.bytes]).into_owned();
        let done = text.lines().any(|l| stop(from, l));
        got.extend(text.lines().map(|l| (from, l.to_owned())));
        if done {
            return;
        }
    }
    panic!("the awaited notification did not arrive: {got:?}");
}

fn dir_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// How many clients log in and out at once.
const CLIENTS: usize = 50;

/// The most sessions one client opens, whatever happens.
const MAX_SESSIONS_PER_CLIENT: usize = 2_000;

/// With `--metrics`, the new process serves the metrics port too: it joins the old
/// process's listener (SO_REUSEPORT) instead of failing on a port in use, and the old one
/// leaves it when it ends.
#[test]
fn the_metrics_port_follows_the_handover() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let metrics = format!("127.0.0.1:{port}");
    let mut srv = start(dir.path(), &["--metrics", &metrics]);
    let old = srv.pid();
    srv.signal("USR2");
    srv.wait_log(HANDED_OVER, 1);
    let status = srv.wait_exit();
    assert!(status.success(), "{status:?}\n{}", srv.log());
    assert_new_process_serves(&srv, old, "async");
    let mut http = std::net::TcpStream::connect(&metrics).expect("the metrics port");
    http.write_all(b"GET /healthz HTTP/1.0\r\n\r\n")
        .expect("send");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut http, &mut answer).expect("read");
    assert!(
        answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"),
        "{answer}"
    );
}

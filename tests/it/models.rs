//! Every `--concurrency` model through the binary: the same round trips with Python's
//! ftplib, curl and a raw client, a client that vanishes mid-upload, exact `max_cons` /
//! `max_cons_per_ip`, graceful stops with a transfer running, and what is particular to
//! each model (processes per session, pre-fork workers replaced after a crash, loop
//! threads).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{
    connect_from, have_tool, heavy, random_bytes, run_python_script, run_tool, BinServer, Client,
    IO_TIMEOUT, TOOL_TIMEOUT,
};

const MODELS: [&str; 5] = [
    "async",
    "multi-thread",
    "multi-proc",
    "pre-fork",
    "multi-loop",
];

fn dir_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

fn start(model: &str, dir: &Path, extra: &[&str]) -> BinServer {
    let mut args = vec![
        "-u",
        "user",
        "-P",
        "12345",
        "-w",
        "-d",
        dir_str(dir),
        "--concurrency",
        model,
    ];
    if !extra.contains(&"--workers") {
        args.extend(["--workers", "2"]);
    }
    args.extend_from_slice(extra);
    BinServer::start(&args)
}

/// Polls `cond` every 20 ms for at most `IO_TIMEOUT` (process exits and restarts are
/// not announced on any socket a test could wait on).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + IO_TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pids whose parent is `pid` (from /proc/*/stat).
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            found.push(child);
        }
    }
    found.sort_unstable();
    found
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

fn login(srv: &BinServer) -> Client {
    let mut c = Client::connect(srv.addr);
    c.login("user", "12345");
    c
}

/// Connects from `source` and returns the first reply (220 or 421).
fn greeting_from(source: Ipv4Addr, srv: &BinServer) -> (Client, u16) {
    let mut c = Client::from_stream(connect_from(IpAddr::V4(source), srv.addr));
    let (code, _) = c.reply();
    (c, code)
}

fn curl(args: &[&str]) -> Vec<u8> {
    let out = run_tool(
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "60"])
            .args(args),
        TOOL_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn round_trips_in_every_model() {
    let _heavy = heavy();
    let data = random_bytes(3 << 20, 7);
    for model in MODELS {
        let tmp = tempfile::tempdir().expect("tempdir");
        let served = tmp.path().join("served");
        std::fs::create_dir(&served).expect("mkdir");
        let local = tmp.path().join("up.bin");
        std::fs::write(&local, &data).expect("write");
        let mut srv = start(model, &served, &[]);

        if have_tool("python3") {
            run_python_script("ftplib_session.py", srv.addr);
        }
        if have_tool("curl") {
            let url = format!("ftp://user:12345@{}/", srv.addr);
            curl(&["-T", dir_str(&local), &format!("{url}curl.bin")]);
            assert_eq!(
                std::fs::read(served.join("curl.bin")).expect("uploaded"),
                data,
                "{model}: curl upload"
            );
            let back = curl(&[&format!("{url}curl.bin")]);
            assert!(back == data, "{model}: curl download differs");
            let list = String::from_utf8(curl(&[&url])).expect("listing");
            assert!(list.contains(" curl.bin"), "{model}: {list:?}");
        }

        // A client that vanishes mid-upload: the server keeps serving everyone.
        let mut gone = login(&srv);
        gone.expect("TYPE I", 200);
        let mut stream = gone.pasv();
        let (code, _) = gone.cmd("STOR partial.bin");
        assert!(code == 125 || code == 150, "{model}: {code}");
        stream.write_all(&data[..256 << 10]).expect("write part");
        drop(stream);
        drop(gone);

        let mut c = login(&srv);
        c.stor("raw.bin", &data[..1000]);
        assert_eq!(c.retr("raw.bin"), &data[..1000], "{model}");
        eventually("the cut upload to be closed", || {
            c.cmd("SIZE partial.bin").1 == (256 << 10).to_string()
        });
        c.expect("QUIT", 221);

        let status = srv.terminate();
        assert!(status.success(), "{model}: exit status {status:?}");
        let log = srv.log();
        assert!(
            log.contains(&format!("] concurrency model: {model}\n")),
            "{model}: {log}"
        );
        assert!(!log.contains("panicked"), "{model}: {log}");
    }
}

/// Connects from `source` until the server admits the session (220): a session that
/// just ended (the start-up probe, a client that quit) counts until the server has seen
/// it go, and refused attempts never count.
fn admit_from(source: Ipv4Addr, srv: &BinServer) -> Client {
    let mut admitted = None;
    eventually("the server to admit a session", || {
        let (c, code) = greeting_from(source, srv);
        if code == 220 {
            admitted = Some(c);
        }
        code == 220
    });
    admitted.expect("admitted")
}

#[test]
fn limits_are_exact_in_every_model() {
    let _heavy = heavy();
    let two = Ipv4Addr::new(127, 0, 0, 2);
    let three = Ipv4Addr::new(127, 0, 0, 3);
    for model in MODELS {
        let tmp = tempfile::tempdir().expect("tempdir");
        let srv = start(
            model,
            tmp.path(),
            &["--max-cons", "3", "--max-cons-per-ip", "2"],
        );
        let mut a = admit_from(three, &srv);
        let _b = admit_from(three, &srv);
        let (_, code) = greeting_from(three, &srv);
        assert_eq!(code, 421, "{model}: a third from one address");
        // Admitted only once nothing else counts: then exactly a, b and c do.
        let _c = admit_from(two, &srv);
        let (_, code) = greeting_from(two, &srv);
        assert_eq!(code, 421, "{model}: a fourth session");
        // One leaves: its place is free again (once the server has seen it go).
        a.expect("QUIT", 221);
        drop(a);
        let _d = admit_from(three, &srv);
        let (_, code) = greeting_from(two, &srv);
        assert_eq!(code, 421, "{model}: full again");
        let (_, code) = greeting_from(three, &srv);
        assert_eq!(code, 421, "{model}: full again");
    }
}

#[test]
fn graceful_stop_finishes_the_running_download() {
    let _heavy = heavy();
    let data = random_bytes(1 << 20, 9);
    for model in MODELS {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join("slow.bin"), &data).expect("write");
        // At 512 KiB/s the download takes about 2 s: the stop lands in the middle.
        let mut srv = start(model, tmp.path(), &["--write-limit", "512K"]);
        let mut idle = login(&srv);
        let mut busy = login(&srv);
        busy.expect("TYPE I", 200);
        let mut stream = busy.pasv();
        let (code, _) = busy.cmd("RETR slow.bin");
        assert!(code == 125 || code == 150, "{model}: {code}");
        let mut got = vec![0u8; 4096];
        stream.read_exact(&mut got).expect("first bytes");
        let pid = srv.pid().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        assert_eq!(
            idle.expect_closed(),
            [(421, "Server shutting down.".to_owned())],
            "{model}"
        );
        assert_no_new_sessions(&srv, model);
        // ... and that answer came while the download was still running, not at exit.
        let so_far = drain_available(&mut stream, &mut got);
        assert!(
            so_far < data.len(),
            "{model}: a new client was answered only once the download had ended"
        );
        stream.read_to_end(&mut got).expect("the rest");
        assert!(got == data, "{model}: the download was cut or changed");
        assert_eq!(busy.reply().0, 226, "{model}");
        let status = srv.wait_exit();
        assert!(status.success(), "{model}: {status:?}");
    }
}

/// During a graceful stop a new client is refused at once, or told `421` and closed:
/// never left waiting, unanswered, until the last session ends.
fn assert_no_new_sessions(srv: &BinServer, model: &str) {
    let Ok(mut late) = TcpStream::connect_timeout(&srv.addr, IO_TIMEOUT) else {
        return; // refused
    };
    late.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut reply = String::new();
    match late.read_to_string(&mut reply) {
        // With several processes or loops, one that has not yet seen the stop may greet
        // the client first; the 421 then follows as that one stops.
        Ok(_) => assert!(
            reply.is_empty()
                || reply
                    .strip_suffix("421 Server shutting down.\r\n")
                    .is_some_and(|before| before.is_empty()
                        || (before.starts_with("220 ")
                            && before.ends_with("\r\n")
                            && before.matches("\r\n").count() == 1)),
            "{model}: {reply:?}"
        ),
        Err(e) => assert!(
            e.kind() == std::io::ErrorKind::ConnectionReset,
            "{model}: a client that connected during the stop got {e}"
        ),
    }
}

/// Appends what `stream` holds now to `got` without waiting; returns `got`'s length.
///
/// # Panics
/// On an error, or at the end of the stream (the download ended).
fn drain_available(stream: &mut TcpStream, got: &mut Vec<u8>) -> usize {
    stream.set_nonblocking(true).expect("nonblocking");
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => panic!("the download ended already"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("data read: {e}"),
        }
    }
    stream.set_nonblocking(false).expect("blocking");
    got.len()
}

#[test]
fn multi_proc_serves_each_session_in_its_own_process() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = start("multi-proc", tmp.path(), &[]);
    let pid = srv.pid();
    let mut a = login(&srv);
    let mut b = login(&srv);
    // The start-up probe's process may still be ending.
    eventually("one process per session", || children(pid).len() == 2);
    a.expect("QUIT", 221);
    b.expect("QUIT", 221);
    eventually("the session processes to end", || children(pid).is_empty());
}

#[test]
fn pre_fork_replaces_killed_workers_and_their_sessions_are_released() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = start("pre-fork", tmp.path(), &["--max-cons", "2"]);
    let pid = srv.pid();
    eventually("two workers", || children(pid).len() == 2);
    let first = children(pid);
    let mut a = admit_from(Ipv4Addr::LOCALHOST, &srv);
    a.login("user", "12345");
    let _b = admit_from(Ipv4Addr::LOCALHOST, &srv);
    let (_, code) = greeting_from(Ipv4Addr::LOCALHOST, &srv);
    assert_eq!(code, 421, "max_cons counts across workers");
    for w in &first {
        let killed = Command::new("kill")
            .args(["-KILL", &w.to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
    }
    assert!(
        a.expect_closed().is_empty(),
        "the session died with its worker"
    );
    eventually("two new workers", || {
        let now = children(pid);
        now.len() == 2 && now.iter().all(|p| !first.contains(p))
    });
    // The dead workers' sessions no longer count: two are admitted at once.
    let (mut c, code) = greeting_from(Ipv4Addr::LOCALHOST, &srv);
    assert_eq!(code, 220);
    let (_d, code) = greeting_from(Ipv4Addr::LOCALHOST, &srv);
    assert_eq!(code, 220);
    let (_, code) = greeting_from(Ipv4Addr::LOCALHOST, &srv);
    assert_eq!(code, 421);
    c.expect("NOOP", 200);
    assert!(srv.log().contains("restarting it"), "{}", srv.log());
}

#[test]
fn multi_loop_runs_one_loop_per_worker_thread() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("f"), b"loops").expect("write");
    let srv = start("multi-loop", tmp.path(), &["--workers", "3"]);
    // The main listener accepts before the other loops' threads exist.
    eventually("three loop threads", || threads(srv.pid()) == 3);
    // A second multi-loop server cannot join the port (and split its clients).
    let port = srv.addr.port().to_string();
    let out = run_tool(
        Command::new(env!("CARGO_BIN_EXE_ftpdlib")).args([
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "--concurrency",
            "multi-loop",
        ]),
        TOOL_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2), "a second server on the port");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Address already in use"));
    // Enough sessions that the kernel hands some to every listener; all are served.
    let mut clients: Vec<Client> = (0..24).map(|_| login(&srv)).collect();
    for c in &mut clients {
        assert_eq!(c.retr("f"), b"loops");
    }
    assert!(srv.log().contains("] workers: 3\n"), "{}", srv.log());
}

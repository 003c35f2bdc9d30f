//! Faults of the machine and of the network: the server binary at its open-files limit
//! (refused clients are told, the loop does not spin, and it serves again once clients
//! leave), and clients that reset their connections (SO_LINGER 0, so the kernel sends a
//! RST) at every state of a session. After each reset the loop is back to its listener
//! alone with no timer, and no descriptor of the server's is left: its sockets (found in
//! /proc/self/fd through /proc/net/tcp, by the server's ports) and its open files (by
//! path under the test root).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::util::{data_connect, heavy, random_bytes, BinServer, Client, TestServer, IO_TIMEOUT};

/// Closes with a reset instead of a FIN (SO_LINGER 0). The reset goes out when the last
/// descriptor of the socket closes.
fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
}

/// Resets the client's control connection (both of its descriptors).
fn reset_client(c: Client) {
    reset(c.stream_clone());
    drop(c);
}

/// The inodes of the TCP sockets whose local port is one of `ports`, from /proc/net/tcp
/// and tcp6 (entries without an inode, such as TIME_WAIT, own no descriptor).
fn socket_inodes(ports: &[u16]) -> HashMap<u64, String> {
    let mut found = HashMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_ascii_whitespace().collect();
            let (Some(local), Some(inode)) = (fields.get(1), fields.get(9)) else {
                continue;
            };
            let port = local
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            let inode: u64 = inode.parse().unwrap_or(0);
            if inode != 0 && port.is_some_and(|p| ports.contains(&p)) {
                found.insert(inode, line.trim().to_owned());
            }
        }
    }
    found
}

/// The descriptors of this process that belong to the server under test: sockets on its
/// control port or on one of the passive ports `ports` (the listener included), and files
/// under `root`. Described one per line, for a failure message.
fn server_descriptors(srv: &TestServer, passive: &[u16]) -> Vec<String> {
    let mut ports = vec![srv.addr.port()];
    ports.extend_from_slice(passive);
    let sockets = socket_inodes(&ports);
    let root = srv.root();
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue; // closed meanwhile
        };
        let text = target.to_string_lossy();
        if let Some(inode) = text
            .strip_prefix("socket:[")
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse::<u64>().ok())
        {
            if let Some(line) = sockets.get(&inode) {
                out.push(format!("fd {:?}: {line}", entry.file_name()));
            }
        } else if target.starts_with(&root) {
            out.push(format!("fd {:?}: {text}", entry.file_name()));
        }
    }
    out
}

/// Waits (bounded) until the loop holds its listener alone and no timer, and the server
/// holds no descriptor but its listener; then checks that it still serves a session.
pub(crate) fn assert_released(srv: &TestServer, passive: &[u16]) {
    srv.wait_idle();
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let held = server_descriptors(srv, passive);
        if held.len() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server still holds {} descriptors besides its listener:\n{}",
            held.len().saturating_sub(1),
            held.join("\n")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut c = srv.login();
    c.expect("NOOP", 200);
    c.expect("QUIT", 221);
    srv.wait_idle();
}

/// The baseline every reset test starts from: the listener alone.
fn assert_baseline(srv: &TestServer) {
    srv.wait_idle();
    let held = server_descriptors(srv, &[]);
    assert_eq!(held.len(), 1, "the listener alone: {held:?}");
}

/// A data connection to the passive port that reads through a small receive buffer: the
/// server's output backs up after a few KiB instead of filling megabytes of buffers.
fn slow_reader(addr: SocketAddr) -> TcpStream {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    s.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    s.connect_timeout(&addr.into(), IO_TIMEOUT)
        .expect("data connect");
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s
}

/// A 64 MiB sparse file `huge` in the server's root.
fn with_huge(srv: &TestServer) {
    std::fs::File::create(srv.root().join("huge"))
        .and_then(|f| f.set_len(64 << 20))
        .expect("huge");
}

/// A directory `many` of 1,500 entries with 200-byte names in the server's root: a
/// listing of about 400 KB, far more than a slow reader's buffers take.
fn with_many(srv: &TestServer) {
    let many = srv.root().join("many");
    std::fs::create_dir(&many).expect("many");
    for i in 0..1500 {
        let name = format!("{i:04}-{}", "n".repeat(195));
        std::fs::File::create(many.join(name)).expect("entry");
    }
}

/// Starts `cmd` (RETR / LIST / STOR) on a passive connection; returns the data stream and
/// the passive port, after the 150 / 125.
fn start_transfer(c: &mut Client, cmd: &str, slow: bool) -> (TcpStream, u16) {
    c.expect("TYPE I", 200);
    let addr = c.pasv_addr();
    let d = if slow {
        slow_reader(addr)
    } else {
        data_connect(addr)
    };
    let (code, text) = c.cmd(cmd);
    assert!(code == 150 || code == 125, "{cmd}: {code} {text}");
    (d, addr.port())
}

#[test]
fn a_reset_before_the_greeting_leaves_nothing() {
    let srv = TestServer::start();
    assert_baseline(&srv);
    for _ in 0..20 {
        reset(TcpStream::connect(srv.addr).expect("connect"));
    }
    assert_released(&srv, &[]);
}

#[test]
fn a_reset_after_the_greeting_leaves_nothing() {
    let srv = TestServer::start();
    assert_baseline(&srv);
    reset_client(srv.client());
    assert_released(&srv, &[]);
}

#[test]
fn a_reset_after_user_leaves_nothing() {
    let srv = TestServer::start();
    assert_baseline(&srv);
    let mut c = srv.client();
    c.expect("USER user", 331);
    reset_client(c);
    // During the failed-login delay too (its timer must go with the session).
    let mut c = srv.client();
    c.expect("USER user", 331);
    c.send("PASS wrong");
    srv.wait_until("the failed-login delay", |_, timers| timers >= 1);
    reset_client(c);
    assert_released(&srv, &[]);
}

#[test]
fn a_reset_mid_list_of_a_large_directory_leaves_nothing() {
    let srv = TestServer::start();
    with_many(&srv);
    assert_baseline(&srv);
    let mut c = srv.login();
    let (mut d, port) = start_transfer(&mut c, "LIST many", true);
    let mut head = [0u8; 1024];
    d.read_exact(&mut head).expect("the listing started");
    reset_client(c);
    reset(d);
    assert_released(&srv, &[port]);
}

#[test]
fn a_reset_mid_retr_leaves_nothing() {
    let srv = TestServer::start();
    with_huge(&srv);
    assert_baseline(&srv);
    let mut c = srv.login();
    let (mut d, port) = start_transfer(&mut c, "RETR huge", true);
    let mut head = [0u8; 64 << 10];
    d.read_exact(&mut head).expect("the download started");
    reset_client(c);
    reset(d);
    assert_released(&srv, &[port]);
}

#[test]
fn a_reset_mid_stor_leaves_nothing() {
    let srv = TestServer::start();
    assert_baseline(&srv);
    let mut c = srv.login();
    let (mut d, port) = start_transfer(&mut c, "STOR cut.bin", false);
    d.write_all(&random_bytes(300_000, 18)).expect("upload");
    reset_client(c);
    reset(d);
    assert_released(&srv, &[port]);
}

#[test]
fn a_reset_with_a_passive_listener_never_connected_leaves_nothing() {
    let srv = TestServer::start();
    assert_baseline(&srv);
    let mut c = srv.login();
    let addr = c.pasv_addr();
    // The passive listener is open now, beside the server's and the control connection.
    assert_eq!(server_descriptors(&srv, &[addr.port()]).len(), 3);
    reset_client(c);
    // Gone with the session (no connect to check it: the port may be reused meanwhile).
    assert_released(&srv, &[addr.port()]);
}

#[test]
fn a_data_reset_mid_retr_gets_426_and_the_session_goes_on() {
    let srv = TestServer::start();
    with_huge(&srv);
    assert_baseline(&srv);
    let mut c = srv.login();
    let (mut d, port) = start_transfer(&mut c, "RETR huge", true);
    let mut head = [0u8; 64 << 10];
    d.read_exact(&mut head).expect("the download started");
    reset(d);
    let (code, text) = c.reply();
    assert_eq!(code, 426, "{text}");
    // The session goes on, and the aborted transfer held nothing.
    let (d, _) = start_transfer(&mut c, "LIST", false);
    let mut listing = String::new();
    BufReader::new(d)
        .read_to_string(&mut listing)
        .expect("listing");
    assert!(listing.contains("huge"), "{listing}");
    let (code, text) = c.reply();
    assert_eq!(code, 226, "{text}");
    reset_client(c);
    assert_released(&srv, &[port]);
}

#[test]
fn a_data_reset_mid_list_gets_426_and_the_session_goes_on() {
    let srv = TestServer::start();
    with_many(&srv);
    assert_baseline(&srv);
    let mut c = srv.login();
    let (d, port) = start_transfer(&mut c, "LIST many", true);
    let mut line = String::new();
    let mut reader = BufReader::new(d.try_clone().expect("clone"));
    reader.read_line(&mut line).expect("the listing started");
    assert!(line.contains("nnnn"), "{line:?}");
    drop(reader);
    reset(d);
    let (code, text) = c.reply();
    assert!(code == 426 || code == 226, "{code} {text}");
    c.expect("NOOP", 200);
    c.expect("QUIT", 221);
    assert_released(&srv, &[port]);
}

/// User and system CPU time of process `pid`, in clock ticks (/proc/PID/stat fields 14
/// and 15).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<u64> = after
        .split_ascii_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    fields[11] + fields[12]
}

/// Reads the first reply line, or how the connection ended: `Ok(line)`, `Err(why)`.
fn first_line(s: &TcpStream) -> Result<String, String> {
    let mut line = String::new();
    match BufReader::new(s).read_line(&mut line) {
        Ok(0) => Err("closed".into()),
        Ok(_) => Ok(line),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            panic!("no reply and no close within {IO_TIMEOUT:?}: a hang")
        }
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn at_the_descriptor_limit_clients_are_refused_at_once_and_served_once_others_leave() {
    let _heavy = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_str().expect("utf-8");
    let srv = BinServer::start(&["-d", root, "-u", "user", "-P", "12345"]);
    let pid = srv.pid();
    // Descriptors that would free themselves during the flood, and serve a late client:
    // BinServer's readiness probe is a session until the server has seen it close.
    let sockets = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|fds| {
                fds.filter_map(Result::ok)
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .filter(|target| target.to_string_lossy().starts_with("socket:"))
                    .count()
            })
            .unwrap_or(0)
    };
    // And the start-up sweep of stale upload temporaries runs on a thread of its own,
    // holding a directory open for a moment: wait until the loop's thread is alone.
    let threads = || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(Iterator::count)
            .unwrap_or(0)
    };
    let deadline = Instant::now() + IO_TIMEOUT;
    while sockets() > 1 || threads() > 1 {
        assert!(
            Instant::now() < deadline,
            "the probe session or the sweep never ended"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The server's open-files limit drops to 64 while it runs (prlimit(2)).
    rustix::process::prlimit(
        rustix::process::Pid::from_raw(i32::try_from(pid).expect("pid")),
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(LIMIT),
            maximum: Some(LIMIT),
        },
    )
    .expect("prlimit");

    let connect = || {
        let s = TcpStream::connect_timeout(&srv.addr, IO_TIMEOUT).expect("connect");
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        s
    };
    let clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect()).collect();
    let (mut served, mut refused) = (Vec::new(), 0);
    for s in clients {
        match first_line(&s) {
            Ok(l) if l.starts_with("220") => served.push(s),
            Ok(l) if l.starts_with("421") => refused += 1,
            Ok(l) => panic!("unexpected first line {l:?}"),
            Err(_) => refused += 1, // closed without a reply: also clean
        }
    }
    assert!(
        !served.is_empty() && served.len() < LIMIT as usize,
        "{} served under a limit of {LIMIT}",
        served.len()
    );
    assert_eq!(served.len() + refused, CLIENTS);

    // At the limit, with the served sessions held and more clients arriving, the server
    // must not spin: its CPU time over two seconds stays well under one second.
    let ticks_per_sec = 100; // USER_HZ: /proc reports times in 1/100 s on Linux
    let before = cpu_ticks(pid);
    let start = Instant::now();
    let mut late = Vec::new();
    while start.elapsed() < Duration::from_secs(2) {
        late.push(connect());
        if late.len() >= 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2).saturating_sub(start.elapsed()));
    let used = cpu_ticks(pid) - before;
    eprintln!(
        "server CPU at its descriptor limit: {used} ticks in {:?}",
        start.elapsed()
    );
    assert!(
        used < ticks_per_sec,
        "the server used {used} ticks of CPU in 2 s at its descriptor limit"
    );
    for s in &late {
        // A reply, if any, is the refusal; a close without one is clean too.
        // Never a hang (`first_line` fails the test on a timeout): the refusal, or a
        // greeting when a session of the flood ended meanwhile and freed a descriptor.
        if let Ok(l) = first_line(s) {
            assert!(
                l.starts_with("421") || l.starts_with("220"),
                "a late client got {l:?}"
            );
        }
    }
    assert!(
        srv.log().contains("accept() failed"),
        "the log says why: {}",
        srv.log()
    );

    // The served clients leave: new ones are served again (once their sessions closed).
    drop(served);
    drop(late);
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut c = loop {
        let s = connect();
        if first_line(&s).is_ok_and(|l| l.starts_with("220")) {
            break Client::from_stream(s);
        }
        assert!(Instant::now() < deadline, "no client served again");
    };
    c.login("user", "12345");
    c.expect("NOOP", 200);
}

const LIMIT: u64 = 64;
const CLIENTS: usize = 100;

//! Limits: the idle timeout, max_cons, max_cons_per_ip, and a thousand sessions served by
//! the one loop thread while a large download runs.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::util::{big_data, heavy, Client, TestServer};

#[test]
fn idle_session_times_out() {
    let srv = TestServer::with(|c| c.timeout = Some(Duration::from_secs(1)), |_| {});
    let mut c = srv.login();
    let started = Instant::now();
    let replies = c.expect_closed();
    assert_eq!(replies, [(421, "Control connection timed out.".to_owned())]);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "timed out after {:?}",
        started.elapsed()
    );
}

#[test]
fn a_client_that_never_reads_its_replies_is_timed_out() {
    let srv = TestServer::with(|c| c.timeout = Some(Duration::from_secs(1)), |_| {});
    // Megabytes of replies that are never read: more than the socket buffers hold, so
    // the server's output stays stuck. One client ends with QUIT, one does not.
    let mut clients = Vec::new();
    for tail in ["", "QUIT\r\n"] {
        let c = srv.login();
        let mut w = c.stream_clone();
        let wire = format!("{}{tail}", "HELP\r\n".repeat(40_000));
        // The server may stop reading; this write may then never finish.
        std::thread::spawn(move || {
            let _ = w.write_all(wire.as_bytes());
        });
        clients.push(c);
    }
    // Both sessions end within the bounded wait (the listener is all that is left).
    srv.wait_until("the sessions that never read closed", |handlers, _| {
        handlers == 1
    });
    drop(clients);
}

#[test]
fn idle_timeout_applies_before_login_too() {
    let srv = TestServer::with(|c| c.timeout = Some(Duration::from_secs(1)), |_| {});
    let mut c = srv.client();
    assert_eq!(
        c.expect_closed(),
        [(421, "Control connection timed out.".to_owned())]
    );
}

#[test]
fn commands_reset_the_idle_timer() {
    let srv = TestServer::with(|c| c.timeout = Some(Duration::from_secs(1)), |_| {});
    let mut c = srv.login();
    // A NOOP every 300 ms keeps the session alive well past the timeout...
    let started = Instant::now();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(300));
        c.expect("NOOP", 200);
    }
    assert!(started.elapsed() >= Duration::from_millis(1500));
    // ...and silence ends it.
    assert_eq!(c.expect_closed()[0].0, 421);
}

#[test]
fn max_cons_refuses_the_extra_session() {
    let srv = TestServer::with(|_| {}, |s| s.max_cons = 2);
    let mut a = srv.client();
    let _b = srv.client();
    let mut extra = Client::connect_raw(srv.addr);
    assert_eq!(
        extra.expect_closed(),
        [(
            421,
            "Too many connections. Service temporarily unavailable.".to_owned()
        )]
    );
    a.expect("QUIT", 221);
    a.expect_closed();
    // The session count drops once the server has closed `a`: the listener and `_b` are
    // left.
    srv.wait_until("2 handlers", |handlers, _| handlers == 2);
    let mut again = srv.client();
    again.login("user", "12345");
}

#[test]
fn max_cons_per_ip_refuses_the_extra_session() {
    let srv = TestServer::with(|_| {}, |s| s.max_cons_per_ip = 2);
    let mut a = srv.login();
    let _b = srv.client();
    let mut extra = Client::connect_raw(srv.addr);
    assert_eq!(
        extra.expect_closed(),
        [(
            421,
            "Too many connections from the same IP address.".to_owned()
        )]
    );
    a.expect("QUIT", 221);
    a.expect_closed();
    srv.wait_until("2 handlers", |handlers, _| handlers == 2);
    let mut again = srv.client();
    again.login("user", "12345");
}

#[test]
fn data_connections_do_not_count_as_sessions() {
    let srv = TestServer::with(|_| {}, |s| s.max_cons = 1);
    std::fs::write(srv.root().join("f"), b"data").expect("write");
    let mut c = srv.login();
    for _ in 0..3 {
        assert_eq!(c.retr("f"), b"data");
    }
    c.expect("NOOP", 200);
}

#[test]
fn a_thousand_sessions_and_a_big_download_on_one_loop() {
    const CLIENTS: usize = 1000;
    let _heavy = heavy();
    if let Err(e) = ftpdlib::servers::raise_open_files_limit() {
        eprintln!("cannot raise the open files limit: {e}");
    }
    let srv = TestServer::with(
        |_| {},
        |s| {
            s.max_cons = 0;
            s.backlog = 1024;
        },
    );
    let big = &big_data()[..50 * 1024 * 1024];
    std::fs::write(srv.root().join("big"), big).expect("write big");

    // The download starts first and runs while the sessions log in.
    let addr = srv.addr;
    let download = std::thread::spawn(move || {
        let mut c = Client::connect(addr);
        c.login("user", "12345");
        let got = c.retr("big");
        c.expect("QUIT", 221);
        got
    });

    let mut clients: Vec<Client> = (0..CLIENTS)
        .map(|_| {
            let mut c = Client::connect_raw(srv.addr);
            // Pipelined with the greeting: the login costs no round trip here.
            c.send_raw(b"USER user\r\nPASS 12345\r\n");
            c
        })
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.reply().0, 220, "client {i}");
        assert_eq!(c.reply().0, 331, "client {i}");
        assert_eq!(c.reply(), (230, "Login successful.".into()), "client {i}");
    }
    // Every session is a handler of the one loop, next to the listener.
    let live = srv.handler_count();
    assert!(live > CLIENTS, "{live} handlers for {CLIENTS} sessions");

    let got = download.join().expect("download thread");
    assert_eq!(got.len(), big.len());
    assert!(got == big, "the 50 MB download came back different");

    // QUIT pipelined to all, then every 221.
    for c in clients.iter_mut() {
        c.stream_clone().write_all(b"QUIT\r\n").expect("QUIT");
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.reply().0, 221, "client {i}");
    }
    srv.wait_idle();
    drop(clients);
    assert_eq!(srv.handler_count(), 1);
}

#[test]
fn a_timed_out_session_frees_its_slot() {
    let srv = TestServer::with(
        |c| c.timeout = Some(Duration::from_secs(1)),
        |s| s.max_cons = 1,
    );
    let mut a = srv.client();
    assert_eq!(a.expect_closed()[0].0, 421);
    srv.wait_idle();
    let mut b = srv.client();
    b.login("user", "12345");
}

#[test]
fn a_session_closed_after_failed_logins_frees_its_slot() {
    let srv = TestServer::with(|c| c.max_login_attempts = 1, |s| s.max_cons_per_ip = 1);
    let mut a = srv.client();
    a.expect("USER user", 331);
    assert_eq!(a.cmd("PASS bad").0, 530);
    a.expect_closed();
    srv.wait_idle();
    let mut b = srv.client();
    b.login("user", "12345");
}

/// Pre-fork workers share the clients: a worker that holds its share of sessions (four
/// fifths of its open-files limit) leaves new clients to a sibling with room, instead of
/// taking them and answering 421 while the sibling idles.
#[test]
fn pre_fork_workers_share_clients_under_their_descriptor_limits() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_str().expect("utf-8 path");
    // 100 descriptors each: a share of 80 sessions per worker, 160 for the two (and 20
    // descriptors for the rest of a worker: its listener, poller, log, pipes).
    let srv = crate::util::BinServer::start_with_nofile(
        &[
            "-d",
            dir,
            "--concurrency",
            "pre-fork",
            "--workers",
            "2",
            "--max-cons",
            "1000",
            "--max-cons-per-ip",
            "0",
        ],
        100,
    );
    // Both workers up (the sessions are counted per worker below).
    let deadline = Instant::now() + Duration::from_secs(10);
    while worker_sessions(srv.pid(), srv.addr.port()).len() < 2 {
        assert!(Instant::now() < deadline, "the two workers did not start");
        std::thread::yield_now();
    }
    let mut held = Vec::new();
    for i in 0..140 {
        let mut c = Client::connect_raw(srv.addr);
        let (code, text) = c.reply();
        assert_eq!(code, 220, "session {i} was refused: {code} {text}");
        held.push(c);
    }
    // Every session is still served.
    for (i, c) in held.iter_mut().enumerate() {
        c.send("NOOP");
        assert_eq!(c.reply().0, 200, "session {i}");
    }
    // No worker took more than its share while the other had room (without the share
    // the first one takes clients until accept(2) fails for want of a descriptor).
    let per_worker = worker_sessions(srv.pid(), srv.addr.port());
    assert_eq!(per_worker.len(), 2, "{per_worker:?}");
    assert_eq!(per_worker.iter().sum::<usize>(), 140, "{per_worker:?}");
    assert!(
        per_worker.iter().all(|&n| n <= 80),
        "a worker went past its share: {per_worker:?}"
    );
}

/// How many established connections to `port` each child process of `pid` holds (its
/// sessions), from its descriptors and /proc/net/tcp.
fn worker_sessions(pid: u32, port: u16) -> Vec<usize> {
    // The inodes of the established sockets whose local port is `port`.
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let sessions: std::collections::HashSet<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit(':').next()?;
            let established = *fields.get(3)? == "01";
            (established && u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| fields.get(9).map(|inode| (*inode).to_owned()))?
        })
        .collect();
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).expect("the workers");
    children
        .split_whitespace()
        .map(|worker| {
            std::fs::read_dir(format!("/proc/{worker}/fd"))
                .expect("a worker's descriptors")
                .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                .filter_map(|target| {
                    let target = target.to_string_lossy().into_owned();
                    let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?;
                    sessions.contains(inode).then_some(())
                })
                .count()
        })
        .collect()
}

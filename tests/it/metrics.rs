//! `--metrics ADDR`: the Prometheus text format scraped with curl before and after a known
//! workload in every concurrency model (the counters summed over threads and processes),
//! `/healthz` while a thousand sessions are open, and HTTP clients that misbehave (slow,
//! garbage, oversized, too many) cut off while FTP sessions go on.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ftpdlib::authorizers::DummyAuthorizer;
use ftpdlib::config::ServerConfig;
use ftpdlib::servers::FtpServer;

use crate::util::{heavy, random_bytes, run_tool, BinServer, Client, IO_TIMEOUT};

/// The samples of one scrape: `name{labels}` → value.
type Samples = HashMap<String, f64>;

/// Where the binary serves its metrics, from its start-up line (bounded wait).
fn metrics_addr(srv: &BinServer) -> SocketAddr {
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let log = srv.log();
        let found = log.lines().find_map(|l| {
            l.split_once("serving metrics on http://")
                .and_then(|(_, rest)| rest.strip_suffix("/metrics"))
                .and_then(|a| a.parse().ok())
        });
        if let Some(addr) = found {
            return addr;
        }
        assert!(Instant::now() < deadline, "no metrics line in:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `curl -sS URL`: the status and the body.
fn curl(url: &str, extra: &[&str]) -> (u16, String) {
    let out = run_tool(
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "10"])
            .args(["--write-out", "\n%{http_code}"])
            .args(extra)
            .arg(url),
        IO_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 from the metrics endpoint");
    let (body, code) = text.rsplit_once('\n').expect("the status line curl writes");
    (code.parse().expect("an HTTP status"), body.to_owned())
}

/// Scrapes `/metrics`, checking the exposition's shape on the way.
fn scrape(addr: SocketAddr) -> Samples {
    let (code, body) = curl(&format!("http://{addr}/metrics"), &[]);
    assert_eq!(code, 200, "{body}");
    let mut samples = Samples::new();
    let mut typed = Vec::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.push(rest.split(' ').next().expect("a name").to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (name, value) = line.rsplit_once(' ').expect("name and value");
        let family = name.split('{').next().expect("a name");
        assert!(
            typed.iter().any(|t| family.starts_with(t.as_str())),
            "{line}: no TYPE line before it"
        );
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("{line}: not a number"));
        samples.insert(name.to_owned(), value);
    }
    samples
}

fn value(s: &Samples, name: &str) -> f64 {
    *s.get(name)
        .unwrap_or_else(|| panic!("no sample {name} in {s:?}"))
}

/// Scrapes until `ok` holds (bounded): sessions end on the server a moment after the
/// client saw its 221.
fn scrape_until(addr: SocketAddr, what: &str, ok: impl Fn(&Samples) -> bool) -> Samples {
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let s = scrape(addr);
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what} never held: {s:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Scrapes once the connection [`BinServer::start`] made to see the port listen has
/// been served and closed: a session of its own.
fn probe_gone(addr: SocketAddr) -> Samples {
    scrape_until(addr, "the start-up probe's session closed", |s| {
        value(s, "ftpdlib_sessions_total") == 1.0 && value(s, "ftpdlib_sessions_open") == 0.0
    })
}

fn dir_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

fn start(model: &str, dir: &Path) -> (BinServer, SocketAddr) {
    let srv = BinServer::start(&[
        "-u",
        "user",
        "-P",
        "12345",
        "-w",
        "-d",
        dir_str(dir),
        "--concurrency",
        model,
        "--workers",
        "2",
        "--auth-failed-timeout",
        "0",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let addr = metrics_addr(&srv);
    (srv, addr)
}

/// Three sessions: logins 3 ok and 2 failed; 2 STOR and 2 RETR of known sizes, a LIST,
/// 3 replies 5xx. Returns the listing's length.
fn workload(ftp: SocketAddr) -> usize {
    let a_bytes = random_bytes(1000, 1);
    let b_bytes = random_bytes(2345, 2);
    let mut a = Client::connect(ftp);
    a.login("user", "12345");
    a.stor("a.bin", &a_bytes);
    a.stor("b.bin", &b_bytes);
    assert_eq!(a.retr("a.bin"), a_bytes);
    assert_eq!(a.retr("b.bin"), b_bytes);
    let listing = a.listing("LIST");
    assert!(listing.contains("b.bin"), "{listing}");
    a.expect("DELE missing.bin", 550);
    a.expect("QUIT", 221);

    let mut b = Client::connect(ftp);
    for _ in 0..2 {
        b.expect("USER user", 331);
        b.expect("PASS wrong", 530);
    }
    b.login("user", "12345");
    b.expect("QUIT", 221);

    let mut c = Client::connect(ftp);
    c.login("user", "12345");
    c.expect("QUIT", 221);
    listing.len()
}

/// Every counter the workload touches moved by exactly the workload.
fn assert_moved_by_the_workload(model: &str, before: &Samples, after: &Samples, listed: usize) {
    let moved = |name: &str| value(after, name) - value(before, name);
    let expected: &[(&str, f64)] = &[
        ("ftpdlib_sessions_total", 3.0),
        ("ftpdlib_sessions_open", 0.0),
        ("ftpdlib_logins_total{result=\"ok\"}", 3.0),
        ("ftpdlib_logins_total{result=\"failed\"}", 2.0),
        ("ftpdlib_bytes_received_total", 3345.0),
        ("ftpdlib_bytes_sent_total", 3345.0),
        ("ftpdlib_listing_bytes_sent_total", listed as f64),
        (
            "ftpdlib_transfers_total{command=\"STOR\",result=\"ok\"}",
            2.0,
        ),
        (
            "ftpdlib_transfers_total{command=\"RETR\",result=\"ok\"}",
            2.0,
        ),
        (
            "ftpdlib_transfers_total{command=\"LIST\",result=\"ok\"}",
            1.0,
        ),
        (
            "ftpdlib_transfers_total{command=\"STOR\",result=\"failed\"}",
            0.0,
        ),
        ("ftpdlib_transfer_seconds_count", 5.0),
        ("ftpdlib_transfer_seconds_bucket{le=\"+Inf\"}", 5.0),
        // 150 per transfer; 220 / 230 / 200 / 229 / 226 / 221; 331 per USER; 530 × 2, 550.
        ("ftpdlib_replies_total{class=\"1xx\"}", 5.0),
        ("ftpdlib_replies_total{class=\"2xx\"}", 23.0),
        ("ftpdlib_replies_total{class=\"3xx\"}", 5.0),
        ("ftpdlib_replies_total{class=\"4xx\"}", 0.0),
        ("ftpdlib_replies_total{class=\"5xx\"}", 3.0),
        ("ftpdlib_refused_total{limit=\"max_cons\"}", 0.0),
        ("ftpdlib_tls_handshakes_total", 0.0),
    ];
    for (name, want) in expected {
        assert_eq!(moved(name), *want, "{model}: {name}");
    }
    assert!(
        value(after, "ftpdlib_loop_pass_seconds_count")
            > value(before, "ftpdlib_loop_pass_seconds_count"),
        "{model}: no loop pass counted"
    );
}

#[test]
fn counters_move_by_exactly_the_workload_in_every_model() {
    if !crate::util::have_tool("curl") {
        return;
    }
    let _heavy = heavy();
    for model in [
        "async",
        "multi-thread",
        "multi-loop",
        "multi-proc",
        "pre-fork",
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut srv, metrics) = start(model, tmp.path());
        let before = probe_gone(metrics);
        let listed = workload(srv.addr);
        let after = scrape_until(metrics, "all three sessions closed", |s| {
            value(s, "ftpdlib_sessions_total") == 4.0 && value(s, "ftpdlib_sessions_open") == 0.0
        });
        assert_moved_by_the_workload(model, &before, &after, listed);
        let (code, body) = curl(&format!("http://{metrics}/healthz"), &[]);
        assert_eq!((code, body.as_str()), (200, "ok\n"), "{model}");
        let status = srv.terminate();
        assert!(status.success(), "{model}: {status:?}\n{}", srv.log());
    }
}

#[test]
fn refusals_are_counted_by_limit() {
    if !crate::util::have_tool("curl") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = BinServer::start(&[
        "-d",
        dir_str(tmp.path()),
        "--max-cons-per-ip",
        "1",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let metrics = metrics_addr(&srv);
    probe_gone(metrics);
    let _first = Client::connect(srv.addr);
    let mut second = Client::connect_raw(srv.addr);
    assert_eq!(second.reply().0, 421);
    let s = scrape(metrics);
    assert_eq!(
        value(&s, "ftpdlib_refused_total{limit=\"max_cons_per_ip\"}"),
        1.0
    );
    assert_eq!(value(&s, "ftpdlib_refused_total{limit=\"max_cons\"}"), 0.0);
    assert_eq!(value(&s, "ftpdlib_sessions_open"), 1.0);
}

#[test]
fn healthz_answers_while_a_thousand_sessions_are_open() {
    const SESSIONS: usize = 1000;
    if !crate::util::have_tool("curl") {
        return;
    }
    let _heavy = heavy();
    if let Err(e) = ftpdlib::servers::raise_open_files_limit() {
        eprintln!("cannot raise the open files limit: {e}");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = BinServer::start(&[
        "-d",
        dir_str(tmp.path()),
        "--max-cons",
        "0",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let metrics = metrics_addr(&srv);
    probe_gone(metrics);
    let mut clients: Vec<Client> = (0..SESSIONS)
        .map(|_| Client::connect_raw(srv.addr))
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.reply().0, 220, "client {i}");
    }
    let (code, body) = curl(&format!("http://{metrics}/healthz"), &[]);
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let s = scrape(metrics);
    assert_eq!(value(&s, "ftpdlib_sessions_open"), SESSIONS as f64);
    // The sessions are still served.
    clients[SESSIONS - 1].expect("NOOP", 200);
}

/// An in-process server with metrics on a free loopback port and a 1 s HTTP deadline;
/// the metrics address. (A port found free may be taken by another test before the
/// server binds it: a few tries.)
fn in_process() -> (ftpdlib::servers::RunningServer, SocketAddr) {
    let root = std::env::temp_dir();
    let mut last = None;
    for _ in 0..5 {
        let metrics = free_addr();
        let mut auth = DummyAuthorizer::new();
        auth.add_user("user", "12345", &root, "elr", None, None)
            .expect("add user");
        let mut server = ServerConfig::default();
        server.metrics_timeout = Duration::from_secs(1);
        match FtpServer::builder(auth)
            .server_config(server)
            .metrics(metrics)
            .spawn("127.0.0.1:0")
        {
            Ok(srv) => return (srv, metrics),
            Err(e) => last = Some(e),
        }
    }
    panic!("start the server: {last:?}")
}

/// A loopback address whose port was free a moment ago.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
}

fn http(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect to the metrics");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s
}

/// Reads until the server closes; the bytes read.
fn read_to_close(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => {}
        // A reset after the response also ends it.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("reading the response: {e}"),
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn a_slowloris_client_does_not_stall_ftp_and_is_cut_off() {
    let (srv, addr) = in_process();
    let mut slow = http(addr);
    let started = Instant::now();
    let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut writer = slow.try_clone().expect("clone");
    let dripping = std::thread::spawn(move || {
        // A byte every 100 ms; the server cuts it off before the head is complete.
        for b in request.iter().cycle().take(100) {
            if writer.write_all(&[*b]).is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    });
    // Meanwhile FTP is served at once.
    let mut c = Client::connect(srv.local_addr());
    c.login("user", "12345");
    let noop = Instant::now();
    c.expect("NOOP", 200);
    assert!(
        noop.elapsed() < Duration::from_millis(500),
        "{:?}",
        noop.elapsed()
    );
    let answer = read_to_close(&mut slow);
    let cut_after = started.elapsed();
    assert_eq!(answer, "", "a cut client gets no response");
    assert!(
        cut_after >= Duration::from_millis(900) && cut_after < Duration::from_secs(5),
        "cut after {cut_after:?}"
    );
    assert!(dripping.join().expect("the slow writer"), "never cut off");
    c.expect("NOOP", 200);
}

#[test]
fn garbage_and_oversized_requests_get_400_and_431_and_a_close() {
    let (_srv, addr) = in_process();
    let mut garbage = http(addr);
    garbage
        .write_all(b"\x16\x03\x01 hello there\r\n\r\n")
        .expect("send");
    let answer = read_to_close(&mut garbage);
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.contains("Connection: close\r\n"), "{answer}");

    let mut big = http(addr);
    let mut head = b"GET /metrics HTTP/1.1\r\n".to_vec();
    while head.len() <= 9 * 1024 {
        head.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    big.write_all(&head).expect("send");
    let answer = read_to_close(&mut big);
    assert!(
        answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{answer}"
    );

    for (request, status) in [
        ("GET / HTTP/1.1\r\n\r\n", "404 Not Found"),
        ("DELETE /metrics HTTP/1.1\r\n\r\n", "405 Method Not Allowed"),
        (
            "GET /metrics HTTP/3.0\r\n\r\n",
            "505 HTTP Version Not Supported",
        ),
        ("GET /healthz HTTP/1.0\r\n\r\n", "200 OK"),
    ] {
        let mut s = http(addr);
        s.write_all(request.as_bytes()).expect("send");
        let answer = read_to_close(&mut s);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{request:?}: {answer}"
        );
    }
    // HEAD: the headers alone.
    let mut s = http(addr);
    s.write_all(b"HEAD /metrics HTTP/1.1\r\n\r\n")
        .expect("send");
    let answer = read_to_close(&mut s);
    assert!(answer.ends_with("\r\n\r\n"), "{answer}");
    assert!(answer.contains("version=0.0.4"), "{answer}");
}

#[test]
fn connections_beyond_the_limit_are_closed_at_once() {
    let (_srv, addr) = in_process();
    // 64 idle connections hold every place.
    let mut held: Vec<TcpStream> = (0..64).map(|_| http(addr)).collect();
    let mut extra = http(addr);
    let closed_at = Instant::now();
    assert_eq!(read_to_close(&mut extra), "");
    assert!(closed_at.elapsed() < Duration::from_millis(900));
    // A held one is still served.
    held[0]
        .write_all(b"GET /healthz HTTP/1.1\r\n\r\n")
        .expect("send");
    let answer = read_to_close(&mut held[0]);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok\n"), "{answer}");
}

/// The inode of the socket listening on `addr` (IPv4), from `/proc/net/tcp`.
fn listening_inode(addr: SocketAddr) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let want = format!(":{:04X}", addr.port());
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let local = cols.get(1)?;
        (local.ends_with(&want) && cols.get(3) == Some(&"0A"))
            .then(|| cols.get(9).map(|s| (*s).to_owned()))?
    })
}

/// Whether process `pid` holds the socket with `inode`.
fn holds_socket(pid: u32, inode: &str) -> bool {
    let target = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == target))
    })
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

#[test]
fn forked_processes_do_not_keep_the_metrics_port() {
    for model in ["multi-proc", "pre-fork"] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (srv, metrics) = start(model, tmp.path());
        let inode = listening_inode(metrics).expect("the metrics listener in /proc/net/tcp");
        let mut c = Client::connect(srv.addr);
        c.login("user", "12345");
        let kids = children(srv.pid());
        assert!(!kids.is_empty(), "{model}: no child process");
        assert!(
            holds_socket(srv.pid(), &inode),
            "{model}: the server lost it"
        );
        for kid in kids {
            assert!(
                !holds_socket(kid, &inode),
                "{model}: process {kid} holds it"
            );
        }
        c.expect("QUIT", 221);
    }
}

#[test]
fn tls_handshakes_and_failures_are_counted() {
    use crate::tls::client::{have_openssl, Certs};
    if !have_openssl() || !crate::util::have_tool("curl") {
        return;
    }
    let certs = Certs::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (certs.arg("rsa.crt"), certs.arg("rsa.key"));
    let srv = BinServer::start(&[
        "-d",
        dir_str(tmp.path()),
        "--tls",
        "--certfile",
        &cert,
        "--keyfile",
        &key,
        "--metrics",
        "127.0.0.1:0",
    ]);
    let metrics = metrics_addr(&srv);
    probe_gone(metrics);
    // A listing over FTPS: one handshake on the control connection, one on the data one.
    let out = run_tool(
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "10", "-k"])
            .args(["--ssl-reqd", &format!("ftp://{}/", srv.addr)]),
        IO_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Garbage where the ClientHello should be.
    let mut c = Client::connect(srv.addr);
    c.expect("AUTH TLS", 234);
    c.send_raw(&random_bytes(3000, 5));
    let mut rest = Vec::new();
    let _ = c.stream_clone().read_to_end(&mut rest);
    let s = scrape_until(metrics, "both sessions closed", |s| {
        value(s, "ftpdlib_sessions_total") == 3.0 && value(s, "ftpdlib_sessions_open") == 0.0
    });
    assert_eq!(value(&s, "ftpdlib_tls_handshakes_total"), 2.0);
    assert_eq!(value(&s, "ftpdlib_tls_handshake_failures_total"), 1.0);
    assert_eq!(
        value(
            &s,
            "ftpdlib_transfers_total{command=\"LIST\",result=\"ok\"}"
        ),
        1.0
    );
}

#[test]
fn bans_are_counted_among_the_refusals() {
    if !crate::util::have_tool("curl") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = BinServer::start(&[
        "-d",
        dir_str(tmp.path()),
        "-u",
        "user",
        "-P",
        "12345",
        "--auth-failed-timeout",
        "0",
        "--ban-after",
        "1",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let metrics = metrics_addr(&srv);
    probe_gone(metrics);
    let mut c = Client::connect(srv.addr);
    c.expect("USER user", 331);
    assert_eq!(c.cmd("PASS wrong").0, 530);
    for _ in 0..2 {
        let mut refused = Client::connect_raw(srv.addr);
        assert_eq!(refused.reply().0, 421);
    }
    let s = scrape_until(metrics, "two bans counted", |s| {
        value(s, "ftpdlib_refused_total{limit=\"ban\"}") == 2.0
    });
    assert_eq!(value(&s, "ftpdlib_refused_total{limit=\"admit\"}"), 0.0);
    assert_eq!(value(&s, "ftpdlib_logins_total{result=\"failed\"}"), 1.0);
}

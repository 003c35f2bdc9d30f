//! PROXY protocol (HAProxy's v1 and v2) on the control and passive data listeners: the
//! client here writes the headers a balancer would, by hand, then speaks FTP.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ftpdlib::config::{HandlerConfig, IpNet, ProxyProtocol};
use ftpdlib::events::{Events, Session};

use crate::util::{connect_from, data_connect, BinServer, Client, TestServer, IO_TIMEOUT};

#[path = "proxy_authorizer.rs"]
mod authorizer;

/// Records the client address of each connect.
#[derive(Clone, Default)]
struct Remotes(Arc<Mutex<Vec<SocketAddr>>>);

impl Events for Remotes {
    fn on_connect(&self, s: Session<'_>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(s.remote);
    }
}

impl Remotes {
    fn seen(&self) -> Vec<SocketAddr> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn trust(from: &[&str], timeout: Duration) -> impl FnOnce(&mut HandlerConfig) {
    let nets: Vec<IpNet> = from.iter().map(|s| s.parse().expect("a network")).collect();
    move |c: &mut HandlerConfig| {
        let mut p = ProxyProtocol::new(nets);
        p.header_timeout = timeout;
        c.proxy_protocol = Some(p);
    }
}

/// A server behind a "balancer" on 127.0.0.1, recording connects.
fn behind_proxy(max_per_ip: usize) -> (TestServer, Remotes) {
    let remotes = Remotes::default();
    let events = remotes.clone();
    let srv = TestServer::with_builder(
        trust(&["127.0.0.1"], Duration::from_secs(5)),
        |s| s.max_cons_per_ip = max_per_ip,
        move |b| b.events(events),
    );
    (srv, remotes)
}

fn v1(src: &str, sport: u16) -> Vec<u8> {
    format!("PROXY TCP4 {src} 127.0.0.1 {sport} 21\r\n").into_bytes()
}

/// A v2 header: `cmd` 0 = LOCAL, 1 = PROXY; `fam` 0x11 or 0x21; `tlvs` appended.
fn v2(cmd: u8, src: SocketAddr, tlvs: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    let fam = match src {
        SocketAddr::V4(a) => {
            body.extend_from_slice(&a.ip().octets());
            body.extend_from_slice(&[127, 0, 0, 1]);
            0x11
        }
        SocketAddr::V6(a) => {
            body.extend_from_slice(&a.ip().octets());
            body.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
            0x21
        }
    };
    body.extend_from_slice(&src.port().to_be_bytes());
    body.extend_from_slice(&21u16.to_be_bytes());
    body.extend_from_slice(tlvs);
    let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    out.push(0x20 | cmd);
    out.push(fam);
    out.extend_from_slice(&u16::try_from(body.len()).expect("short").to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Connects as the balancer, writes `header`, and expects the greeting.
fn proxied(srv: &TestServer, header: &[u8]) -> Client {
    let mut c = Client::connect_raw(srv.addr);
    c.send_raw(header);
    let (code, text) = c.reply();
    assert_eq!(code, 220, "greeting: {text}");
    c
}

/// Connects as the balancer, writes `header`, and expects a close without any reply.
fn refused(srv: &TestServer, header: &[u8]) {
    let mut c = Client::connect_raw(srv.addr);
    c.send_raw(header);
    assert_eq!(c.expect_closed(), vec![], "no greeting, no reply");
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("an address")
}

#[test]
fn v1_header_carries_the_client_address() {
    let (srv, remotes) = behind_proxy(0);
    let mut c = proxied(&srv, &v1("192.0.2.7", 40000));
    // The header never reaches the FTP parser: the first command is served normally.
    c.login("user", "12345");
    assert_eq!(remotes.seen(), vec![sa("192.0.2.7:40000")]);
    c.expect("QUIT", 221);
    drop(c);
    srv.wait_idle();
}

#[test]
fn header_and_first_command_in_one_packet() {
    let (srv, _) = behind_proxy(0);
    let mut c = Client::connect_raw(srv.addr);
    let mut bytes = v1("192.0.2.7", 40000);
    bytes.extend_from_slice(b"NOOP\r\n");
    c.send_raw(&bytes);
    assert_eq!(c.reply().0, 220);
    assert_eq!(c.reply().0, 200);
    drop(c);
    srv.wait_idle();
}

#[test]
fn v2_headers_ipv4_ipv6_and_tlvs() {
    let (srv, remotes) = behind_proxy(0);
    let tlvs = [0x01, 0, 2, b'h', b'2', 0x04, 0, 3, 0, 0, 0];
    let mut a = proxied(&srv, &v2(1, sa("198.51.100.9:5000"), &tlvs));
    let mut b = proxied(&srv, &v2(1, sa("[2001:db8::7]:6000"), &[]));
    a.login("user", "12345");
    b.login("user", "12345");
    assert_eq!(
        remotes.seen(),
        vec![sa("198.51.100.9:5000"), sa("[2001:db8::7]:6000")]
    );
    drop((a, b));
    srv.wait_idle();
}

#[test]
fn v2_local_is_served_as_the_proxy_itself() {
    let (srv, remotes) = behind_proxy(0);
    let mut c = proxied(&srv, &v2(0, sa("203.0.113.1:1"), &[]));
    let me = c.local_addr();
    c.expect("QUIT", 221);
    assert_eq!(remotes.seen(), vec![me]);
    let mut u = proxied(&srv, b"PROXY UNKNOWN\r\n");
    u.expect("NOOP", 200);
    drop((c, u));
    srv.wait_idle();
}

#[test]
fn max_cons_per_ip_counts_the_carried_address() {
    let (srv, _) = behind_proxy(1);
    // Every connection comes from 127.0.0.1, the balancer; the clients differ.
    let a = proxied(&srv, &v1("192.0.2.1", 1000));
    let b = proxied(&srv, &v1("192.0.2.2", 1000));
    let mut again = Client::connect_raw(srv.addr);
    again.send_raw(&v1("192.0.2.1", 1001));
    let replies = again.expect_closed();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].0, 421);
    drop(a);
    srv.wait_until("the first session's end", |handlers, _| handlers == 2);
    let mut c = proxied(&srv, &v1("192.0.2.1", 1002));
    c.expect("NOOP", 200);
    drop((b, c));
    srv.wait_idle();
}

#[test]
fn garbage_overlong_and_missing_headers_close_without_greeting() {
    let (srv, _) = behind_proxy(0);
    let mut good = proxied(&srv, &v1("192.0.2.7", 1));
    refused(&srv, b"USER anonymous\r\n");
    refused(&srv, b"PROXY TCP4 192.0.2.7 127.0.0.1 99999 21\r\n");
    refused(&srv, b"PROXY TCP4 192.0.2.7 127.0.0.1 1 21\n");
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(200, b'x');
    refused(&srv, &long);
    let mut lying = v2(1, sa("192.0.2.7:1"), &[]);
    lying[15] = 4; // shorter than the IPv4 addresses
    refused(&srv, &lying);
    let mut c = Client::connect_raw(srv.addr);
    drop(c.stream_clone().shutdown(std::net::Shutdown::Write));
    assert_eq!(c.expect_closed(), vec![]);
    // Meanwhile the proxied session is unaffected.
    good.expect("NOOP", 200);
    drop(good);
    srv.wait_idle();
}

#[test]
fn a_slow_header_is_closed_after_the_timeout() {
    let remotes = Remotes::default();
    let events = remotes.clone();
    let srv = TestServer::with_builder(
        trust(&["127.0.0.1"], Duration::from_millis(300)),
        |_| {},
        move |b| b.events(events),
    );
    let started = Instant::now();
    let mut slow = Client::connect_raw(srv.addr);
    slow.send_raw(b"PROXY TCP4 192.0.2");
    // Another session, through the balancer, is served while the slow one waits.
    let mut other = proxied(&srv, &v1("192.0.2.8", 2));
    other.login("user", "12345");
    assert_eq!(slow.expect_closed(), vec![]);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < IO_TIMEOUT);
    assert_eq!(remotes.seen(), vec![sa("192.0.2.8:2")]);
    other.expect("NOOP", 200);
    drop(other);
    srv.wait_idle();
}

#[test]
fn a_source_not_listed_is_closed() {
    let srv = TestServer::with(trust(&["127.0.0.2"], Duration::from_secs(5)), |_| {});
    let mut direct = Client::connect_raw(srv.addr);
    direct.send_raw(&v1("192.0.2.7", 1));
    assert_eq!(direct.expect_closed(), vec![]);
    // From the listed proxy, the same header is served.
    let stream = connect_from(IpAddr::from([127, 0, 0, 2]), srv.addr);
    let mut c = Client::from_stream(stream);
    c.send_raw(&v1("192.0.2.7", 1));
    assert_eq!(c.reply().0, 220);
    c.expect("NOOP", 200);
    drop(c);
    srv.wait_idle();
}

/// EPSV, then a data connection through the "balancer" carrying `header`.
fn data_with_header(c: &mut Client, header: &[u8]) -> TcpStream {
    let port = c.epsv_port();
    let mut data = data_connect(SocketAddr::new(c.peer_addr().ip(), port));
    data.write_all(header).expect("write the data header");
    data
}

#[test]
fn passive_data_connection_checks_the_carried_address() {
    let (srv, _) = behind_proxy(0);
    std::fs::write(srv.root().join("f.txt"), b"hello").expect("write a file");
    let mut c = proxied(&srv, &v1("192.0.2.7", 40000));
    c.login("user", "12345");
    c.expect("TYPE I", 200);

    // The right client, through the balancer: served.
    let data = data_with_header(&mut c, &v1("192.0.2.7", 40001));
    assert_eq!(c.download("RETR f.txt", data), b"hello");

    // v2 for the data connection works as well.
    let data = data_with_header(&mut c, &v2(1, sa("192.0.2.7:40002"), &[]));
    assert_eq!(c.download("RETR f.txt", data), b"hello");

    // Another client's address: refused, as a foreign address would be.
    let mut data = data_with_header(&mut c, &v1("192.0.2.99", 40003));
    let (code, text) = c.reply();
    assert_eq!(code, 425, "{text}");
    assert!(text.contains("192.0.2.99"), "{text}");
    let mut rest = Vec::new();
    let _ = data.read_to_end(&mut rest);
    assert!(rest.is_empty());
    c.expect("NOOP", 200);
    drop((c, data));
    srv.wait_idle();
}

#[test]
fn passive_data_connection_with_garbage_header_is_not_served() {
    let (srv, _) = behind_proxy(0);
    let mut c = proxied(&srv, &v1("192.0.2.7", 40000));
    c.login("user", "12345");
    let mut data = data_with_header(&mut c, b"garbage\r\n");
    let mut rest = Vec::new();
    let _ = data.read_to_end(&mut rest);
    assert!(rest.is_empty());
    // The session is still there, and the listener still waits for the real connection.
    c.expect("NOOP", 200);
    drop((c, data));
    srv.wait_idle();
}

#[test]
fn the_binary_logs_the_carried_address() {
    let srv = BinServer::start(&["--proxy-protocol-from", "127.0.0.0/8,::1"]);
    let mut c = Client::connect_raw(srv.addr);
    c.send_raw(&v1("192.0.2.55", 4242));
    assert_eq!(c.reply().0, 220);
    c.expect("QUIT", 221);
    let mut garbage = Client::connect_raw(srv.addr);
    garbage.send_raw(b"HELLO\r\n");
    assert_eq!(garbage.expect_closed(), vec![]);
    let deadline = Instant::now() + IO_TIMEOUT;
    let log = loop {
        let log = srv.log();
        if log.contains("no PROXY protocol signature") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(log.contains("192.0.2.55:4242-[]"), "{log}");
    assert!(log.contains("no PROXY protocol signature"), "{log}");
    assert!(log.contains("[W "), "{log}");
}

#[test]
fn port_is_checked_against_the_carried_address() {
    let (srv, _) = behind_proxy(0);
    std::fs::write(srv.root().join("f.txt"), b"active").expect("write a file");
    // The balancer is on 127.0.0.1, but the client is elsewhere: PORT to 127.0.0.1 is a
    // connection to a foreign address.
    let mut far = proxied(&srv, &v1("192.0.2.7", 40000));
    far.login("user", "12345");
    let (code, text) = far.cmd("PORT 127,0,0,1,4,1");
    assert_eq!(code, 501, "{text}");
    let (code, text) = far.cmd("EPRT |1|127.0.0.1|1025|");
    assert_eq!(code, 501, "{text}");
    // A client whose carried address is 127.0.0.2 may have the server connect there.
    let mut near = proxied(&srv, &v1("127.0.0.2", 40000));
    near.login("user", "12345");
    near.expect("TYPE I", 200);
    let l = std::net::TcpListener::bind("127.0.0.2:0").expect("bind on 127.0.0.2");
    let port = l.local_addr().expect("listener address").port();
    near.expect(&format!("EPRT |1|127.0.0.2|{port}|"), 200);
    let data = crate::util::data_accept(&l);
    assert_eq!(near.download("RETR f.txt", data), b"active");
    drop((far, near));
    srv.wait_idle();
}

/// Connects to the binary as the balancer with a v1 header for `client`; returns the first
/// reply's code, or None when the connection closed without one.
fn bin_proxied(srv: &BinServer, client: &str) -> (Client, Option<u16>) {
    let mut c = Client::connect_raw(srv.addr);
    c.send_raw(&v1(client, 1000));
    let code = c.try_reply().ok().flatten().map(|r| r.0);
    (c, code)
}

#[test]
fn every_model_admits_by_the_carried_address_and_reads_data_headers() {
    let _heavy = crate::util::heavy();
    for model in [
        "async",
        "multi-thread",
        "multi-proc",
        "pre-fork",
        "multi-loop",
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_str().expect("a UTF-8 temp path");
        let srv = BinServer::start(&[
            "-u",
            "user",
            "-P",
            "12345",
            "-w",
            "-d",
            dir,
            "--concurrency",
            model,
            "--workers",
            "2",
            "--max-cons-per-ip",
            "1",
            "--proxy-protocol-from",
            "127.0.0.1",
        ]);
        let (mut a, code) = bin_proxied(&srv, "192.0.2.1");
        assert_eq!(code, Some(220), "{model}: first client");
        a.login("user", "12345");
        a.expect("TYPE I", 200);
        let data = data_with_header(&mut a, &v1("192.0.2.1", 1001));
        a.upload("STOR f", data, b"through the balancer");
        let data = data_with_header(&mut a, &v2(1, sa("192.0.2.1:1002"), &[]));
        assert_eq!(a.download("RETR f", data), b"through the balancer");
        // Same carried client again: over its limit, though the proxy's address is shared.
        let (_, code) = bin_proxied(&srv, "192.0.2.1");
        assert_eq!(code, Some(421), "{model}: second session of one client");
        let (mut b, code) = bin_proxied(&srv, "192.0.2.2");
        assert_eq!(code, Some(220), "{model}: another client");
        b.expect("NOOP", 200);
        let mut garbage = Client::connect_raw(srv.addr);
        garbage.send_raw(b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(garbage.expect_closed(), vec![], "{model}: garbage");
        a.expect("QUIT", 221);
        b.expect("QUIT", 221);
        let log = srv.log();
        assert!(log.contains("192.0.2.1:1000-[user]"), "{model}: {log}");
        assert!(log.contains("192.0.2.2:1000-["), "{model}: {log}");
    }
}

#[test]
fn hostile_headers_cost_only_their_own_connection() {
    let (srv, remotes) = {
        let remotes = Remotes::default();
        let events = remotes.clone();
        let srv = TestServer::with_builder(
            trust(&["127.0.0.1"], Duration::from_millis(300)),
            |_| {},
            move |b| b.events(events),
        );
        (srv, remotes)
    };
    let payload = crate::util::random_bytes(32 << 20, 0x9b_0001);
    std::fs::write(srv.root().join("f.bin"), &payload).expect("write a file");
    // A session through the balancer, with a download under way throughout.
    let mut good = proxied(&srv, &v1("192.0.2.7", 40000));
    good.login("user", "12345");
    good.expect("TYPE I", 200);
    let mut data = data_with_header(&mut good, &v1("192.0.2.7", 40001));
    let (code, text) = good.cmd("RETR f.bin");
    assert!(code == 125 || code == 150, "{code} {text}");
    let mut got = vec![0; 4096];
    data.read_exact(&mut got)
        .expect("the download's first bytes");

    // From an address that is not a listed proxy, even with a well-formed header.
    let stream = connect_from(IpAddr::from([127, 0, 0, 2]), srv.addr);
    let mut unlisted = Client::from_stream(stream);
    unlisted.send_raw(&v1("192.0.2.8", 1));
    assert_eq!(unlisted.expect_closed(), vec![], "unlisted source");
    // Garbage, and a header whose TLV runs past the declared length.
    refused(&srv, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
    refused(&srv, &v2(1, sa("192.0.2.9:1"), &[0x04, 0x00, 0x64, 0, 0]));
    // A slowloris header: a byte at a time, never complete, closed at the timeout.
    let mut slow = Client::connect_raw(srv.addr);
    for byte in b"PROXY TCP4 1" {
        slow.send_raw(&[*byte]);
        good.expect("NOOP", 200);
    }
    assert_eq!(slow.expect_closed(), vec![], "slow header");
    // A v2 header with TLVs of every kind HAProxy sends (ALPN, authority, unique id, SSL
    // with sub-TLVs, NOOP padding): skipped, the address taken.
    let mut tlvs = vec![0x01, 0, 2, b'h', b'2', 0x02, 0, 11];
    tlvs.extend_from_slice(b"example.com");
    tlvs.extend_from_slice(&[0x05, 0, 32]);
    tlvs.extend_from_slice(&[0xab; 32]);
    tlvs.extend_from_slice(&[0x20, 0, 12, 0x07, 0, 0, 0, 0, 0x21, 0, 4]);
    tlvs.extend_from_slice(b"TLS1");
    tlvs.extend_from_slice(&[0x04, 0, 3, 0, 0, 0]);
    let mut with_tlvs = proxied(&srv, &v2(1, sa("198.51.100.3:7000"), &tlvs));
    with_tlvs.login("user", "12345");

    // The first session's download went on through all of it, whole.
    good.expect("NOOP", 200);
    data.read_to_end(&mut got)
        .expect("the rest of the download");
    assert!(got == payload, "the download differs");
    assert_eq!(good.reply().0, 226);
    assert_eq!(
        remotes.seen(),
        vec![sa("192.0.2.7:40000"), sa("198.51.100.3:7000")],
        "only the good headers became sessions"
    );
    drop((good, with_tlvs, data));
    srv.wait_idle();
}

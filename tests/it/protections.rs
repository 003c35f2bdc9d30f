//! RFC 2577 protections: foreign data connections (passive and active), privileged
//! ports, the login-attempt limit, the failed-login delay, no user enumeration, and the
//! per-local-address masquerade map. Each test fails if its protection is missing.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use crate::util::{connect_from, data_accept, TestServer};

const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const FOREIGN: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn port_cmd(addr: SocketAddr) -> String {
    let IpAddr::V4(ip) = addr.ip() else {
        panic!("PORT needs IPv4")
    };
    let o = ip.octets();
    format!(
        "PORT {},{},{},{},{},{}",
        o[0],
        o[1],
        o[2],
        o[3],
        addr.port() >> 8,
        addr.port() & 0xff
    )
}

#[test]
fn passive_connection_from_a_foreign_address_is_dropped() {
    let srv = TestServer::start();
    std::fs::write(srv.root().join("listed-file"), b"x").expect("write");
    let mut c = srv.login();
    let port = c.epsv_port();
    let target = SocketAddr::new(HOME, port);

    let mut intruder = connect_from(FOREIGN, target);
    let intruder_port = intruder.local_addr().expect("intruder address").port();
    // Told without asking: the rejection is announced as soon as it happens.
    assert_eq!(
        c.reply(),
        (
            425,
            format!("Rejected data connection from foreign address 127.0.0.2:{intruder_port}.")
        )
    );
    // The intruder's socket is closed by the server: EOF or a reset, never data.
    let mut buf = [0u8; 16];
    match intruder.read(&mut buf) {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("the foreign connection got {n} bytes"),
    }

    // The listener stays open for the real client.
    let data = crate::util::data_connect(target);
    let listing = String::from_utf8(c.download("LIST", data)).expect("utf-8 listing");
    assert!(listing.contains("listed-file"), "{listing}");
    c.expect("QUIT", 221);
}

#[test]
fn passive_connection_from_a_foreign_address_is_accepted_when_permitted() {
    let srv = TestServer::with(|h| h.permit_foreign_addresses = true, |_| {});
    std::fs::write(srv.root().join("listed-file"), b"x").expect("write");
    let mut c = srv.login();
    // PASV this time: the same check applies to both passive commands.
    let target = c.pasv_addr();
    assert_eq!(target.ip(), HOME);
    let data = connect_from(FOREIGN, target);
    let listing = String::from_utf8(c.download("LIST", data)).expect("utf-8 listing");
    assert!(listing.contains("listed-file"), "{listing}");
    c.expect("QUIT", 221);
}

#[test]
fn port_to_a_foreign_address_is_refused() {
    let srv = TestServer::start();
    let mut c = srv.login();
    let l = TcpListener::bind((FOREIGN, 0)).expect("bind 127.0.0.2:0");
    let addr = l.local_addr().expect("listener address");
    assert_eq!(
        c.cmd(&port_cmd(addr)),
        (
            501,
            format!(
                "Rejected data connection to foreign address 127.0.0.2:{}.",
                addr.port()
            )
        )
    );
    // EPRT goes through the same check.
    assert_eq!(c.cmd(&format!("EPRT |1|127.0.0.2|{}|", addr.port())).0, 501);
    // Nothing connected to the foreign listener.
    l.set_nonblocking(true).expect("non-blocking");
    assert!(l.accept().is_err(), "the server connected anyway");
    // The session goes on.
    c.expect("NOOP", 200);
}

#[test]
fn port_to_a_foreign_address_works_when_permitted() {
    let srv = TestServer::with(|h| h.permit_foreign_addresses = true, |_| {});
    std::fs::write(srv.root().join("f"), b"foreign bytes").expect("write");
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let l = TcpListener::bind((FOREIGN, 0)).expect("bind 127.0.0.2:0");
    c.expect(&port_cmd(l.local_addr().expect("listener address")), 200);
    let data = data_accept(&l);
    assert_eq!(c.download("RETR f", data), b"foreign bytes");
}

#[test]
fn port_to_a_privileged_port_is_refused() {
    let srv = TestServer::start();
    let mut c = srv.login();
    assert_eq!(
        c.cmd("PORT 127,0,0,1,0,21"),
        (
            501,
            "PORT against the privileged port \"21\" refused.".into()
        )
    );
    assert_eq!(
        c.cmd("EPRT |1|127.0.0.1|1023|"),
        (
            501,
            "PORT against the privileged port \"1023\" refused.".into()
        )
    );
    // Port 1024 is not privileged: it passes the check (and then connects or not).
    let code = c.cmd("PORT 127,0,0,1,4,0").0;
    assert!(code == 200 || code == 425, "PORT to 1024 got {code}");
}

#[test]
fn port_to_a_privileged_port_is_tried_when_permitted() {
    let srv = TestServer::with(|h| h.permit_privileged_ports = true, |_| {});
    let mut c = srv.login();
    // The check passes; whether something listens on port 21 decides the rest.
    let (code, text) = c.cmd("PORT 127,0,0,1,0,21");
    assert!(code == 200 || code == 425, "got {code} {text:?}");
}

#[test]
fn max_login_attempts_closes_after_that_many_failures() {
    for limit in 1..=3u32 {
        let srv = TestServer::with(
            |h| {
                h.max_login_attempts = limit;
                h.auth_failed_timeout = Duration::from_millis(20);
            },
            |_| {},
        );
        let mut c = srv.client();
        for attempt in 1..limit {
            c.expect("USER user", 331);
            assert_eq!(
                c.cmd("PASS bad"),
                (530, "Authentication failed.".into()),
                "limit {limit}, attempt {attempt}"
            );
        }
        c.expect("USER user", 331);
        assert_eq!(
            c.cmd("PASS bad"),
            (530, "Authentication failed. Disconnecting.".into()),
            "limit {limit}, last attempt"
        );
        assert!(c.expect_closed().is_empty(), "limit {limit}");
    }
}

#[test]
fn failed_login_is_answered_after_the_delay() {
    const DELAY: Duration = Duration::from_millis(400);
    let srv = TestServer::with(|h| h.auth_failed_timeout = DELAY, |_| {});
    let mut c = srv.client();
    // A known user with a wrong password, then an unknown user: both wait.
    for user in ["user", "nobody"] {
        c.expect(&format!("USER {user}"), 331);
        let asked = Instant::now();
        assert_eq!(c.cmd("PASS wrong").0, 530, "{user}");
        let took = asked.elapsed();
        assert!(
            took >= DELAY,
            "{user}: 530 after {took:?}, before the delay"
        );
    }
    // A good login is not delayed at all (no lower bound to check; it just works).
    c.login("user", "12345");
}

#[test]
fn unknown_user_cannot_be_told_from_a_wrong_password() {
    let srv = TestServer::start();
    let mut known = srv.client();
    let mut unknown = srv.client();
    let known_user = known.cmd("USER user");
    let unknown_user = unknown.cmd("USER nobody-here");
    assert_eq!(known_user, (331, "Username ok, send password.".into()));
    assert_eq!(unknown_user, known_user);
    let known_pass = known.cmd("PASS wrong");
    let unknown_pass = unknown.cmd("PASS wrong");
    assert_eq!(known_pass, (530, "Authentication failed.".into()));
    assert_eq!(unknown_pass, known_pass);
    // Anonymous is a known user with any password; a different name is not.
    unknown.expect("USER anonymous2", 331);
    assert_eq!(unknown.cmd("PASS x@y"), known_pass);
}

#[test]
fn masquerade_map_chooses_by_local_address() {
    let srv = TestServer::with(
        |h| {
            h.masquerade_address = Some(IpAddr::from([10, 0, 0, 1]));
            h.masquerade_address_map
                .insert(HOME, IpAddr::from([10, 1, 2, 3]));
            h.masquerade_address_map
                .insert(FOREIGN, IpAddr::from([10, 9, 9, 9]));
        },
        |_| {},
    );
    let mut c = srv.login();
    // Control on 127.0.0.1: its entry wins over the global address and the other entry.
    let announced = c.pasv_addr();
    assert_eq!(announced.ip(), IpAddr::from([10, 1, 2, 3]));
    // The listener itself is local, on the announced port.
    let data = crate::util::data_connect(SocketAddr::new(HOME, announced.port()));
    c.download("LIST", data);
    // EPSV announces no address: the client uses the control connection's, which works.
    let data = c.pasv();
    c.download("LIST", data);
    c.expect("QUIT", 221);

    // Without an entry for 127.0.0.1, the global masquerade address is used.
    let other = TestServer::with(
        |h| {
            h.masquerade_address = Some(IpAddr::from([10, 0, 0, 1]));
            h.masquerade_address_map
                .insert(FOREIGN, IpAddr::from([10, 9, 9, 9]));
        },
        |_| {},
    );
    let mut c = other.login();
    assert_eq!(c.pasv_addr().ip(), IpAddr::from([10, 0, 0, 1]));
    c.expect("QUIT", 221);
}

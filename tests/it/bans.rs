//! Banning brute-forcers: after N failed logins from one address within the window, the
//! address is refused at connect (421) for the ban time, whichever session, thread or
//! process counted the failures; an allow-listed address is never banned.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ftpdlib::config::BanPolicy;

use crate::util::{connect_from, BinServer, Client, TestServer, IO_TIMEOUT};

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const BYSTANDER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
const ALLOWED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));

fn connect(from: IpAddr, addr: SocketAddr) -> Client {
    Client::from_stream(connect_from(from, addr))
}

/// One session from `from` with one wrong password; the 530's text.
fn fail_once(from: IpAddr, addr: SocketAddr) -> String {
    let mut c = connect(from, addr);
    assert_eq!(c.reply().0, 220);
    c.expect("USER user", 331);
    let (code, text) = c.cmd("PASS wrong");
    assert_eq!(code, 530, "{text}");
    text
}

/// The greeting a new connection from `from` gets (421 from a banned address, which is
/// then closed).
fn greeting(from: IpAddr, addr: SocketAddr) -> u16 {
    let mut c = connect(from, addr);
    let (code, _) = c.reply();
    if code == 421 {
        c.expect_closed();
    }
    code
}

#[test]
fn the_nth_failed_login_bans_the_address_and_no_other() {
    let srv = TestServer::with(
        |c| {
            let mut ban = BanPolicy::new(2);
            ban.allow = vec!["127.0.0.4/32".parse().expect("network")];
            c.ban = Some(ban);
        },
        |_| {},
    );
    assert!(!fail_once(ATTACKER, srv.addr).contains("Disconnecting"));
    // The second failure, in another session, bans: that session is closed too.
    assert!(fail_once(ATTACKER, srv.addr).contains("Disconnecting"));
    assert_eq!(greeting(ATTACKER, srv.addr), 421);
    assert_eq!(greeting(ATTACKER, srv.addr), 421);
    // Everyone else is served.
    let mut c = connect(BYSTANDER, srv.addr);
    assert_eq!(c.reply().0, 220);
    c.login("user", "12345");
    c.expect("QUIT", 221);
    for _ in 0..3 {
        fail_once(ALLOWED, srv.addr);
    }
    assert_eq!(greeting(ALLOWED, srv.addr), 220);
}

/// The binary under the forking models: the failures land in different processes (the
/// multi-proc children, the pre-fork workers) and still add up; the ban ends on time.
#[test]
fn bans_count_across_processes_and_expire() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_str().expect("UTF-8 path");
    for model in ["multi-proc", "pre-fork"] {
        let mut srv = BinServer::start(&[
            "-d",
            dir,
            "-u",
            "user",
            "-P",
            "12345",
            "--auth-failed-timeout",
            "0",
            "--concurrency",
            model,
            "--workers",
            "2",
            "--ban-after",
            "3",
            "--ban-time",
            "2",
        ]);
        for _ in 0..3 {
            fail_once(ATTACKER, srv.addr);
        }
        assert_eq!(greeting(ATTACKER, srv.addr), 421, "{model}");
        assert_eq!(greeting(BYSTANDER, srv.addr), 220, "{model}");
        // The ban lasts 2 s: poll until the address is served again (bounded).
        let banned_at = Instant::now();
        let deadline = banned_at + IO_TIMEOUT;
        while greeting(ATTACKER, srv.addr) == 421 {
            assert!(Instant::now() < deadline, "{model}: the ban never ended");
            std::thread::sleep(Duration::from_millis(100));
        }
        srv.terminate();
        let log = srv.log();
        assert!(
            log.contains("banned 127.0.0.2 for 2 s: 3 failed logins within 600 s."),
            "{model}: {log}"
        );
        assert!(log.contains("refused: banned for"), "{model}: {log}");
    }
}

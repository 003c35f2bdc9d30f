//! Session life cycle: clients that vanish mid-way, data-side timeouts, repeated PASV,
//! passive port ranges and NAT addresses. The loop must end each case with nothing left
//! (the server guard checks handlers and timers on drop).

use std::io::{Read, Write};
use std::net::IpAddr;
use std::time::Duration;

use crate::util::{data_connect, random_bytes, Client, TestServer};

/// A server whose root holds a 64 MB sparse file `huge` (larger than socket buffers).
fn with_huge(srv: &TestServer) {
    let f = std::fs::File::create(srv.root().join("huge")).expect("create");
    f.set_len(64 * 1024 * 1024).expect("set_len");
}

#[test]
fn client_vanishing_mid_download_leaves_nothing() {
    let srv = TestServer::start();
    with_huge(&srv);
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let mut d = c.pasv();
    let (code, _) = c.cmd("RETR huge");
    assert!(code == 150 || code == 125);
    let mut buf = vec![0u8; 64 * 1024];
    d.read_exact(&mut buf).expect("the first bytes");
    drop(c);
    drop(d);
    srv.wait_idle();
}

#[test]
fn client_vanishing_mid_upload_leaves_nothing() {
    let srv = TestServer::start();
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let mut d = c.pasv();
    let (code, _) = c.cmd("STOR partial");
    assert!(code == 150 || code == 125);
    d.write_all(&random_bytes(100_000, 31)).expect("upload");
    drop(c);
    srv.wait_until("the session closed", |h, _| h <= 2);
    drop(d);
    srv.wait_idle();
}

#[test]
fn client_vanishing_during_the_login_delay_leaves_no_timer() {
    let srv = TestServer::with(|c| c.auth_failed_timeout = Duration::from_secs(5), |_| {});
    let mut c = srv.client();
    c.expect("USER user", 331);
    c.send("PASS wrong");
    // The delay timer exists now; the guard checks it is gone once the client is.
    srv.wait_until("the delay timer", |_, timers| timers >= 1);
    drop(c);
    srv.wait_idle();
}

#[test]
fn quit_with_an_idle_data_connection() {
    let srv = TestServer::start();
    let mut c = srv.login();
    let mut d = c.pasv();
    assert_eq!(c.cmd("QUIT"), (221, "Goodbye.".into()));
    assert!(c.expect_closed().is_empty());
    let mut rest = Vec::new();
    let _ = d.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

#[test]
fn repeated_pasv_does_not_pile_up_listeners() {
    let srv = TestServer::start();
    std::fs::write(srv.root().join("f"), b"data").expect("write");
    let mut c = srv.login();
    for _ in 0..100 {
        c.expect("EPSV", 229);
        c.expect("PASV", 227);
    }
    // Listener, session, and at most the latest passive listener.
    srv.wait_until("at most 3 handlers", |h, _| h <= 3);
    for _ in 0..20 {
        assert_eq!(c.retr("f"), b"data");
    }
    // Listener and session: every data channel is gone; only the idle timer is left.
    srv.wait_counts(2, 1);
}

#[test]
fn pipelined_epsv_and_retr() {
    let srv = TestServer::start();
    let data = random_bytes(300_000, 32);
    std::fs::write(srv.root().join("f"), &data).expect("write");
    let mut c = srv.login();
    c.send_raw(b"TYPE I\r\nEPSV\r\nRETR f\r\nNOOP\r\n");
    assert_eq!(c.reply().0, 200);
    let (code, text) = c.reply();
    assert_eq!(code, 229, "{text}");
    let port: u16 = text
        .split("(|||")
        .nth(1)
        .and_then(|r| r.split('|').next())
        .and_then(|p| p.parse().ok())
        .expect("port in 229");
    let (code, _) = c.reply();
    assert_eq!(code, 150);
    let mut d = data_connect(std::net::SocketAddr::new(c.peer_addr().ip(), port));
    let mut got = Vec::new();
    d.read_to_end(&mut got).expect("download");
    assert!(got == data);
    // 200 for the NOOP and 226 for the RETR, in either order.
    let mut codes = [c.reply().0, c.reply().0];
    codes.sort_unstable();
    assert_eq!(codes, [200, 226]);
}

#[test]
fn passive_listener_times_out() {
    let srv = TestServer::with(|c| c.passive_timeout = Duration::from_secs(1), |_| {});
    let mut c = srv.login();
    c.expect("EPSV", 229);
    // Nobody connects: the listener goes, the session stays.
    assert_eq!(c.reply(), (421, "Passive data channel timed out.".into()));
    c.expect("NOOP", 200);
    assert_eq!(c.cmd("LIST").0, 425);
}

#[test]
fn stalled_data_connection_times_out() {
    let srv = TestServer::with(|c| c.data_timeout = Some(Duration::from_secs(1)), |_| {});
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let d = c.pasv();
    let (code, _) = c.cmd("STOR stalled");
    assert!(code == 150 || code == 125);
    // Not a byte is sent.
    assert_eq!(
        c.expect_closed(),
        [(421, "Data connection timed out.".to_owned())]
    );
    drop(d);
}

#[test]
fn idle_timeout_waits_for_a_slow_transfer() {
    let srv = TestServer::with(|c| c.timeout = Some(Duration::from_secs(1)), |_| {});
    with_huge(&srv);
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let mut d = c.pasv();
    let (code, _) = c.cmd("RETR huge");
    assert!(code == 150 || code == 125);
    let mut buf = vec![0u8; 1 << 20];
    d.read_exact(&mut buf[..65536]).expect("the first bytes");
    // Longer than the idle timeout, with the transfer stalled on the client.
    std::thread::sleep(Duration::from_millis(1500));
    let mut total = 65536u64;
    loop {
        match d.read(&mut buf).expect("download") {
            0 => break,
            n => total += n as u64,
        }
    }
    assert_eq!(total, 64 * 1024 * 1024);
    assert_eq!(c.reply(), (226, "Transfer complete.".into()));
    c.expect("NOOP", 200);
}

#[test]
fn pasv_uses_the_configured_port_range() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let srv = TestServer::with(|c| c.passive_ports = Some(port..=port), |_| {});
    let mut a = srv.login();
    let text = a.expect("EPSV", 229);
    assert_eq!(
        text,
        format!("Entering extended passive mode (|||{port}|).")
    );
    // The range is busy: another session still gets a (kernel-chosen) port.
    let mut b = srv.login();
    let text = b.expect("EPSV", 229);
    assert!(!text.contains(&format!("|||{port}|")), "{text}");
    std::fs::write(srv.root().join("f"), b"ranged").expect("write");
    assert_eq!(b.retr("f"), b"ranged");
}

#[test]
fn pasv_announces_the_masquerade_address() {
    let srv = TestServer::with(
        |c| c.masquerade_address = Some(IpAddr::from([10, 1, 2, 3])),
        |_| {},
    );
    let mut c = srv.login();
    let text = c.expect("PASV", 227);
    assert!(
        text.starts_with("Entering passive mode (10,1,2,3,"),
        "{text}"
    );
    // EPSV carries no address; the data connection works through it.
    std::fs::write(srv.root().join("f"), b"nat").expect("write");
    assert_eq!(c.retr("f"), b"nat");
}

#[test]
fn abor_during_an_upload() {
    let srv = TestServer::start();
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let mut d = c.pasv();
    let (code, _) = c.cmd("STOR up");
    assert!(code == 150 || code == 125);
    d.write_all(&random_bytes(200_000, 33)).expect("upload");
    // Make sure the server has received bytes before the ABOR.
    let size = || {
        std::fs::metadata(srv.root().join("up"))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    srv.wait_until("bytes on disk", |_, _| size() > 0);
    c.send("ABOR");
    assert_eq!(c.reply(), (426, "Transfer aborted via ABOR.".into()));
    assert_eq!(c.reply(), (226, "ABOR command successful.".into()));
    c.expect("NOOP", 200);
    drop(d);
}

#[test]
fn a_second_session_is_unaffected_by_a_stuck_one() {
    let srv = TestServer::start();
    with_huge(&srv);
    // A client that asks for a big file and never reads it.
    let mut stuck = srv.login();
    stuck.expect("TYPE I", 200);
    let _d = stuck.pasv();
    let (code, _) = stuck.cmd("RETR huge");
    assert!(code == 150 || code == 125);
    // Another one keeps working.
    let mut other = Client::connect(srv.addr);
    other.login("user", "12345");
    std::fs::write(srv.root().join("f"), b"fine").expect("write");
    for _ in 0..5 {
        assert_eq!(other.retr("f"), b"fine");
    }
}

#[test]
fn a_second_transfer_command_while_one_runs_is_425() {
    let srv = TestServer::start();
    with_huge(&srv);
    std::fs::write(srv.root().join("f"), b"x").expect("write");
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let mut d = c.pasv();
    let (code, _) = c.cmd("RETR huge");
    assert!(code == 150 || code == 125);
    let mut buf = vec![0u8; 65536];
    d.read_exact(&mut buf).expect("the first bytes");
    for cmd in ["RETR f", "LIST", "NLST"] {
        assert_eq!(
            c.cmd(cmd),
            (425, "A transfer is already in progress.".into()),
            "{cmd}"
        );
    }
    c.send("ABOR");
    assert_eq!(c.reply().0, 426);
    assert_eq!(c.reply().0, 226);
    drop(d);
    assert_eq!(c.retr("f"), b"x");
}

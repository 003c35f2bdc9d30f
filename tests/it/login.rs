//! Login: USER/PASS replies, the failed-login delay, the attempt limit, anonymous users.

use std::time::{Duration, Instant};

use crate::util::TestServer;

#[test]
fn user_then_pass_logs_in() {
    let srv = TestServer::start();
    let mut c = srv.client();
    assert_eq!(
        c.cmd("USER user"),
        (331, "Username ok, send password.".into())
    );
    assert_eq!(c.cmd("PASS 12345"), (230, "Login successful.".into()));
    assert_eq!(
        c.cmd("PWD"),
        (257, "\"/\" is the current directory.".into())
    );
    assert_eq!(
        c.cmd("PASS 12345"),
        (503, "User already authenticated.".into())
    );
    assert_eq!(c.cmd("QUIT"), (221, "Goodbye.".into()));
    assert!(c.expect_closed().is_empty());
}

#[test]
fn bad_password_is_refused_after_the_delay() {
    let srv = TestServer::with(
        |c| c.auth_failed_timeout = Duration::from_millis(300),
        |_| {},
    );
    let mut c = srv.client();
    c.expect("USER user", 331);
    let asked = Instant::now();
    assert_eq!(c.cmd("PASS wrong"), (530, "Authentication failed.".into()));
    assert!(
        asked.elapsed() >= Duration::from_millis(300),
        "530 came after {:?}, before the delay",
        asked.elapsed()
    );
    // The session goes on, and the right password still works.
    c.login("user", "12345");
    c.expect("NOOP", 200);
}

#[test]
fn commands_sent_during_the_delay_wait_for_the_530() {
    let srv = TestServer::start();
    let mut c = srv.client();
    c.expect("USER user", 331);
    c.send_raw(b"PASS wrong\r\nNOOP\r\n");
    assert_eq!(c.reply().0, 530);
    assert_eq!(c.reply().0, 200);
}

#[test]
fn too_many_failed_logins_disconnect() {
    let srv = TestServer::start();
    let mut c = srv.client();
    for _ in 0..2 {
        c.expect("USER user", 331);
        assert_eq!(c.cmd("PASS bad"), (530, "Authentication failed.".into()));
    }
    c.expect("USER user", 331);
    assert_eq!(
        c.cmd("PASS bad"),
        (530, "Authentication failed. Disconnecting.".into())
    );
    assert!(c.expect_closed().is_empty());
}

#[test]
fn max_login_attempts_is_configurable() {
    let srv = TestServer::with(|c| c.max_login_attempts = 1, |_| {});
    let mut c = srv.client();
    c.expect("USER user", 331);
    assert_eq!(
        c.cmd("PASS bad"),
        (530, "Authentication failed. Disconnecting.".into())
    );
    assert!(c.expect_closed().is_empty());
}

#[test]
fn unknown_user_is_refused() {
    let srv = TestServer::start();
    let mut c = srv.client();
    c.expect("USER nobody", 331);
    assert_eq!(c.cmd("PASS 12345").0, 530);
}

#[test]
fn pass_without_user_is_503() {
    let srv = TestServer::start();
    let mut c = srv.client();
    assert_eq!(c.cmd("PASS 12345"), (503, "Login with USER first.".into()));
    c.login("user", "12345");
}

#[test]
fn commands_need_login() {
    let srv = TestServer::start();
    let mut c = srv.client();
    for cmd in ["PWD", "CWD /", "LIST", "RETR x", "STOR x", "PASV", "MKD d"] {
        assert_eq!(
            c.cmd(cmd),
            (530, "Log in with USER and PASS first.".into()),
            "{cmd}"
        );
    }
    // These work logged out.
    c.expect("NOOP", 200);
    c.expect("SYST", 215);
    c.expect("FEAT", 211);
    c.expect("HELP", 214);
}

#[test]
fn anonymous_logs_in_read_only() {
    let srv = TestServer::start();
    std::fs::write(srv.root().join("pub.txt"), b"public").expect("write");
    let mut c = srv.client();
    c.login("anonymous", "guest@example.com");
    assert_eq!(c.retr("pub.txt"), b"public");
    assert_eq!(c.cmd("MKD d"), (550, "Not enough privileges.".into()));
    assert_eq!(
        c.cmd("DELE pub.txt"),
        (550, "Not enough privileges.".into())
    );
    let data = c.pasv();
    assert_eq!(c.cmd("STOR new"), (550, "Not enough privileges.".into()));
    drop(data);
    assert!(!srv.root().join("new").exists());
    assert!(!srv.root().join("d").exists());
}

#[test]
fn user_again_flushes_the_account() {
    let srv = TestServer::start();
    let mut c = srv.login();
    assert_eq!(
        c.cmd("USER user"),
        (
            331,
            "Previous account information was flushed, send password.".into()
        )
    );
    assert_eq!(c.cmd("PWD").0, 530);
    c.expect("PASS 12345", 230);
    // RFC 959 §5.4: REIN replies 220 (pyftpdlib: 230, "logged in").
    assert_eq!(c.cmd("REIN"), (220, "Ready for new user.".into()));
    assert_eq!(c.cmd("PWD").0, 530);
}

/// REIN (RFC 959 §4.1.1) ends the login but keeps the connection: 220, then the session
/// is as new (530 until USER / PASS), and a second login works.
#[test]
fn rein_is_220_and_a_new_login_follows() {
    let srv = TestServer::start();
    std::fs::write(srv.root().join("x"), b"12345").expect("write");
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    assert_eq!(c.cmd("REIN"), (220, "Ready for new user.".into()));
    assert_eq!(c.cmd("PWD").0, 530);
    assert_eq!(c.cmd("REIN").0, 530);
    c.login("user", "12345");
    // The representation type went back to ASCII with the account.
    assert_eq!(
        c.cmd("SIZE x"),
        (550, "SIZE not allowed in ASCII mode.".into())
    );
    c.expect("PWD", 257);
    c.expect("QUIT", 221);
    c.expect_closed();
}

//! The client's address reaches the authorizer and every callback: the carried one behind
//! a balancer, the socket's peer without one.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ftpdlib::authorizers::{AuthenticationFailed, Authorizer, DummyAuthorizer};
use ftpdlib::events::{Events, Session};

use super::{data_with_header, proxied, sa, trust, v1};
use crate::util::{connect_from, Client, TestServer};

/// The test users, except that `user` may log in only from 127.0.0.2: the authorizer
/// decides by the client's address, which behind a balancer is the one the header carried.
struct OnlyFrom127_0_0_2(DummyAuthorizer);

impl Authorizer for OnlyFrom127_0_0_2 {
    fn validate_authentication(&self, user: &str, pass: &str) -> Result<(), AuthenticationFailed> {
        self.0.validate_authentication(user, pass)
    }
    fn validate_authentication_from(
        &self,
        user: &str,
        pass: &str,
        remote: SocketAddr,
    ) -> Result<(), AuthenticationFailed> {
        if user == "user" && remote.ip() != IpAddr::from([127, 0, 0, 2]) {
            return Err(AuthenticationFailed(format!(
                "Not allowed from {}.",
                remote.ip()
            )));
        }
        self.0.validate_authentication(user, pass)
    }
    fn home_dir(&self, user: &str) -> Option<PathBuf> {
        self.0.home_dir(user)
    }
    fn has_user(&self, user: &str) -> bool {
        self.0.has_user(user)
    }
    fn has_perm(&self, user: &str, perm: char, path: Option<&Path>) -> bool {
        self.0.has_perm(user, perm, path)
    }
    fn perms(&self, user: &str) -> String {
        self.0.perms(user)
    }
    fn msg_login(&self, user: &str) -> String {
        self.0.msg_login(user)
    }
    fn msg_quit(&self, user: &str) -> String {
        self.0.msg_quit(user)
    }
}

/// Records every callback with the session's address.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<(&'static str, SocketAddr)>>>);

impl Calls {
    fn push(&self, what: &'static str, s: Session<'_>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((what, s.remote));
    }
    fn seen(&self) -> Vec<(&'static str, SocketAddr)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Events for Calls {
    fn on_connect(&self, s: Session<'_>) {
        self.push("connect", s);
    }
    fn on_disconnect(&self, s: Session<'_>) {
        self.push("disconnect", s);
    }
    fn on_login(&self, s: Session<'_>) {
        self.push("login", s);
    }
    fn on_login_failed(&self, s: Session<'_>) {
        self.push("login_failed", s);
    }
    fn on_logout(&self, s: Session<'_>) {
        self.push("logout", s);
    }
    fn on_file_received(&self, s: Session<'_>, _path: &Path) {
        self.push("file_received", s);
    }
}

fn only_from_127_0_0_2(proxy_from: Option<&str>, calls: Calls) -> TestServer {
    let proxy_from = proxy_from.map(str::to_owned);
    TestServer::with_authorizer(
        |users| Box::new(OnlyFrom127_0_0_2(users)),
        move |c| {
            if let Some(from) = proxy_from {
                trust(&[&from], Duration::from_secs(5))(c);
            }
        },
        |_| {},
        move |b| b.events(calls),
    )
}

/// USER and PASS, returning the PASS reply.
fn try_login(c: &mut Client) -> (u16, String) {
    c.expect("USER user", 331);
    c.cmd("PASS 12345")
}

#[test]
fn the_authorizer_and_the_callbacks_get_the_carried_address() {
    let calls = Calls::default();
    let srv = only_from_127_0_0_2(Some("127.0.0.1"), calls.clone());
    // Both clients come through the "balancer" on 127.0.0.1; only their headers differ.
    let mut allowed = proxied(&srv, &v1("127.0.0.2", 5002));
    assert_eq!(try_login(&mut allowed).0, 230);
    allowed.expect("TYPE I", 200);
    let data = data_with_header(&mut allowed, &v1("127.0.0.2", 5012));
    allowed.upload("STOR up.bin", data, b"from .2");
    let mut other = proxied(&srv, &v1("127.0.0.3", 5003));
    let (code, text) = try_login(&mut other);
    assert_eq!(code, 530, "{text}");
    assert!(text.contains("127.0.0.3"), "{text}");
    // Anonymous is not restricted by address: the authorizer refused by address only.
    other.expect("USER anonymous", 331);
    other.expect("PASS guest@", 230);
    allowed.expect("QUIT", 221);
    other.expect("QUIT", 221);
    drop((allowed, other));
    srv.wait_idle();
    let (two, three) = (sa("127.0.0.2:5002"), sa("127.0.0.3:5003"));
    let seen = calls.seen();
    let of = |addr| -> Vec<&str> {
        seen.iter()
            .filter(|(_, a)| *a == addr)
            .map(|(what, _)| *what)
            .collect()
    };
    assert_eq!(
        of(two),
        ["connect", "login", "file_received", "logout", "disconnect"],
        "{seen:?}"
    );
    assert_eq!(
        of(three),
        ["connect", "login_failed", "login", "logout", "disconnect"],
        "{seen:?}"
    );
    assert_eq!(
        seen.len(),
        10,
        "no callback saw the balancer's address: {seen:?}"
    );
}

#[test]
fn the_authorizer_gets_the_peer_address_without_a_balancer() {
    let calls = Calls::default();
    let srv = only_from_127_0_0_2(None, calls.clone());
    let mut from_two = Client::from_stream(connect_from(IpAddr::from([127, 0, 0, 2]), srv.addr));
    assert_eq!(from_two.reply().0, 220);
    assert_eq!(try_login(&mut from_two).0, 230);
    let mut from_one = Client::connect(srv.addr);
    let (code, text) = try_login(&mut from_one);
    assert_eq!(code, 530, "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
    // A header is not read without --proxy-protocol-from: it is an unknown command.
    let mut forged = Client::connect(srv.addr);
    forged.send_raw(&v1("127.0.0.2", 1));
    assert_eq!(forged.reply().0, 500);
    assert_eq!(try_login(&mut forged).0, 530);
    from_two.expect("NOOP", 200);
    drop((from_two, from_one, forged));
    srv.wait_idle();
    let logins: Vec<_> = calls
        .seen()
        .into_iter()
        .filter(|(what, _)| what.starts_with("login"))
        .map(|(what, a)| (what, a.ip()))
        .collect();
    let (one, two) = (IpAddr::from([127, 0, 0, 1]), IpAddr::from([127, 0, 0, 2]));
    assert_eq!(
        logins,
        [("login", two), ("login_failed", one), ("login_failed", one)]
    );
}

//! An authorizer that blocks (a slow database, PAM) runs on the worker pool: the session
//! sleeps, the rest of the loop keeps serving.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ftpdlib::authorizers::{AuthenticationFailed, Authorizer, DummyAuthorizer};
use ftpdlib::servers::FtpServer;

use crate::util::{random_bytes, Client};

/// DummyAuthorizer, except that checking `slow`'s password takes 2 s.
struct SlowAuthorizer(DummyAuthorizer);

impl Authorizer for SlowAuthorizer {
    fn validate_authentication(&self, user: &str, pass: &str) -> Result<(), AuthenticationFailed> {
        if user == "slow" {
            std::thread::sleep(Duration::from_secs(2));
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

#[test]
fn a_blocking_authorizer_does_not_delay_other_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = random_bytes(4 << 20, 3);
    std::fs::write(dir.path().join("f.bin"), &data).expect("write");
    let mut auth = DummyAuthorizer::new();
    for user in ["slow", "fast"] {
        auth.add_user(user, "pw", dir.path(), "elradfmwMT", None, None)
            .expect("user");
    }
    let server = FtpServer::builder(SlowAuthorizer(auth))
        .configure(|c| c.auth_workers = 2)
        .spawn("127.0.0.1:0")
        .expect("spawn");
    let addr = server.local_addr();

    let mut fast = Client::connect(addr);
    fast.login("fast", "pw");
    let (tx, rx) = mpsc::channel();
    let slow = std::thread::spawn(move || {
        let mut c = Client::connect(addr);
        c.expect("USER slow", 331);
        c.send("PASS pw");
        tx.send(()).expect("started");
        let reply = c.reply();
        (reply, Instant::now())
    });
    rx.recv().expect("the slow login started");
    // While `slow` waits for its authorizer, `fast` downloads and lists.
    for _ in 0..3 {
        assert_eq!(fast.retr("f.bin"), data);
        assert!(fast.listing("NLST").contains("f.bin"));
    }
    let fast_done = Instant::now();
    let (reply, slow_done) = slow.join().expect("slow client");
    assert_eq!(reply.0, 230, "{reply:?}");
    assert!(
        fast_done < slow_done,
        "the other session waited for the blocking authorizer"
    );
    // A wrong password through the pool still gets the delayed 530.
    let mut c = Client::connect(addr);
    c.expect("USER fast", 331);
    c.expect("PASS nope", 530);
    drop(server);
}

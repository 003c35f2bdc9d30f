//! The `Events` callbacks fire at pyftpdlib's points, and commands added from user code
//! run through the gate with the session's context.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ftpdlib::error::fs_error_reply;
use ftpdlib::events::{CommandVerdict, Events, Session};
use ftpdlib::proto::{ArgRule, CommandSpec, Reply};

use crate::util::{Client, TestServer, IO_TIMEOUT};

/// Records every callback as one line of text.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn push(&self, what: String) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(what);
    }

    fn seen(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits (bounded) until `what` was recorded; callbacks run on the loop thread.
    fn wait_for(&self, what: &str) -> Vec<String> {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let seen = self.seen();
            if seen.iter().any(|s| s == what) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "{what:?} never fired; saw {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Events for Recorder {
    fn on_connect(&self, s: Session<'_>) {
        self.push(format!("connect {}", s.username));
    }
    fn on_disconnect(&self, s: Session<'_>) {
        self.push(format!("disconnect {}", s.username));
    }
    fn on_login(&self, s: Session<'_>) {
        self.push(format!("login {}", s.username));
    }
    fn on_login_failed(&self, s: Session<'_>) {
        self.push(format!("login_failed {}", s.username));
    }
    fn on_logout(&self, s: Session<'_>) {
        self.push(format!("logout {}", s.username));
    }
    fn on_file_sent(&self, _s: Session<'_>, path: &Path) {
        self.push(format!("sent {}", name(path)));
    }
    fn on_file_received(&self, _s: Session<'_>, path: &Path) {
        self.push(format!("received {}", name(path)));
    }
    fn on_incomplete_file_sent(&self, _s: Session<'_>, path: &Path) {
        self.push(format!("incomplete_sent {}", name(path)));
    }
    fn on_incomplete_file_received(&self, _s: Session<'_>, path: &Path) {
        self.push(format!("incomplete_received {}", name(path)));
    }
}

fn server_with(rec: &Recorder) -> TestServer {
    let events = rec.clone();
    TestServer::with_builder(|_| {}, |_| {}, move |b| b.events(events))
}

#[test]
fn session_callbacks_fire_in_order() {
    let rec = Recorder::default();
    let srv = server_with(&rec);
    std::fs::write(srv.root().join("a.txt"), b"hello").expect("write");
    let mut c = srv.client();
    rec.wait_for("connect ");
    c.expect("USER user", 331);
    c.expect("PASS nope", 530);
    rec.wait_for("login_failed user");
    c.login("user", "12345");
    rec.wait_for("login user");
    assert_eq!(c.retr("a.txt"), b"hello");
    rec.wait_for("sent a.txt");
    c.stor("b.txt", b"world");
    rec.wait_for("received b.txt");
    // Listings fire nothing.
    let before = rec.seen().len();
    c.listing("LIST");
    c.expect("REIN", 220);
    rec.wait_for("logout user");
    c.login("user", "12345");
    c.expect("QUIT", 221);
    c.expect_closed();
    let seen = rec.wait_for("disconnect user");
    assert_eq!(
        seen,
        vec![
            "connect ",
            "login_failed user",
            "login user",
            "sent a.txt",
            "received b.txt",
            "logout user",
            "login user",
            "logout user",
            "disconnect user",
        ],
        "listing added nothing after {before} events"
    );
}

#[test]
fn an_upload_cut_by_a_reset_is_incomplete() {
    let rec = Recorder::default();
    let srv = server_with(&rec);
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let data = c.pasv();
    let (code, _) = c.cmd("STOR cut.bin");
    assert!(code == 125 || code == 150);
    let mut data = data;
    data.write_all(&[7u8; 100_000]).expect("send");
    // SO_LINGER 0: close sends a reset, not a FIN.
    socket2::SockRef::from(&data)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    drop(data);
    let (code, text) = c.reply();
    assert_eq!(code, 426, "a reset upload is not complete: {text:?}");
    let seen = rec.wait_for("incomplete_received cut.bin");
    assert!(!seen.iter().any(|s| s == "received cut.bin"), "{seen:?}");
}

#[test]
fn a_download_closed_early_is_incomplete() {
    let rec = Recorder::default();
    let srv = server_with(&rec);
    std::fs::write(srv.root().join("big.bin"), vec![1u8; 64 << 20]).expect("write");
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let mut data = c.pasv();
    let (code, _) = c.cmd("RETR big.bin");
    assert!(code == 125 || code == 150);
    let mut first = [0u8; 4096];
    data.read_exact(&mut first).expect("first bytes");
    socket2::SockRef::from(&data)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    let _ = data.shutdown(Shutdown::Both);
    drop(data);
    let (code, text) = c.reply();
    assert_eq!(code, 426, "{text:?}");
    rec.wait_for("incomplete_sent big.bin");
    c.expect("NOOP", 200);
}

fn rmtree_server(rec: &Recorder) -> TestServer {
    let events = rec.clone();
    TestServer::with_builder(
        |_| {},
        |_| {},
        move |b| {
            let spec = CommandSpec::new(
                "SITE RMTREE",
                Some('d'),
                true,
                ArgRule::Required,
                "SITE RMTREE <SP> path (remove a directory tree).",
            );
            b.events(events)
                .command(spec, |cx, _arg| {
                    let Some(path) = cx.path else {
                        return Reply::new(550, "No path.");
                    };
                    match std::fs::remove_dir_all(path) {
                        Ok(()) => {
                            Reply::new(250, format!("Removed {}.", cx.ftp_path.unwrap_or("")))
                        }
                        Err(e) => fs_error_reply(&e),
                    }
                })
                .command(
                    CommandSpec::new("WHOAMI", None, false, ArgRule::None, "WHOAMI (who am I)."),
                    |cx, _| Reply::new(200, format!("You are {:?}.", cx.username)),
                )
                .feature("WHOAMI")
        },
    )
}

#[test]
fn custom_commands_go_through_the_gate() {
    let rec = Recorder::default();
    let srv = rmtree_server(&rec);
    std::fs::create_dir_all(srv.root().join("tree/a/b")).expect("mkdir");
    std::fs::write(srv.root().join("tree/a/b/f"), b"x").expect("write");

    let mut anon = srv.client();
    anon.expect("WHOAMI", 200); // no login needed
    anon.expect("SITE RMTREE tree", 530);
    anon.login("anonymous", "guest");
    let text = anon.expect("SITE RMTREE tree", 550);
    assert_eq!(text, "Not enough privileges.");
    assert!(srv.root().join("tree/a/b/f").exists());

    let mut c = srv.login();
    assert_eq!(c.expect("WHOAMI", 200), "You are \"user\".");
    c.expect("WHOAMI now", 501);
    c.expect("SITE RMTREE", 501);
    // `..` cannot climb above the root: this names /outside inside it, which is absent.
    c.expect("SITE RMTREE ../outside", 550);
    std::os::unix::fs::symlink(srv.outside(), srv.root().join("out")).expect("symlink");
    let text = c.expect("SITE RMTREE out", 550);
    assert!(text.contains("outside the user's root"), "{text:?}");
    assert!(srv.outside().exists());
    assert_eq!(c.expect("SITE RMTREE tree", 250), "Removed /tree.");
    assert!(!srv.root().join("tree").exists());

    let help = c.expect("SITE HELP", 214);
    assert!(help.contains(" RMTREE"), "{help:?}");
    assert_eq!(
        c.expect("HELP SITE RMTREE", 214),
        "Syntax: SITE RMTREE <SP> path (remove a directory tree)."
    );
    let feat = c.expect("FEAT", 211);
    assert!(feat.contains("\n WHOAMI"), "{feat:?}");
}

#[test]
fn a_client_vanishing_mid_upload_fires_the_incomplete_callback_once() {
    let rec = Recorder::default();
    let srv = server_with(&rec);
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let mut data = c.pasv();
    let (code, _) = c.cmd("STOR gone.bin");
    assert!(code == 125 || code == 150);
    data.write_all(&[7u8; 100_000]).expect("send");
    let deadline = Instant::now() + IO_TIMEOUT;
    while std::fs::metadata(srv.root().join("gone.bin")).map_or(0, |m| m.len()) < 100_000 {
        assert!(Instant::now() < deadline, "the upload never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(c);
    rec.wait_for("disconnect user");
    drop(data);
    srv.wait_idle();
    let seen = rec.seen();
    let cut: Vec<&String> = seen.iter().filter(|s| s.contains("gone.bin")).collect();
    assert_eq!(cut, ["incomplete_received gone.bin"], "{seen:?}");
}

/// The two gates: `admit` refuses a connection before its greeting, `on_command` refuses
/// a command (it does not run) or closes the session.
struct Gatekeeper;

impl Events for Gatekeeper {
    fn admit(&self, remote: std::net::SocketAddr) -> Option<Reply> {
        (remote.ip() == std::net::Ipv4Addr::new(127, 0, 0, 2))
            .then(|| Reply::new(421, "Not from there."))
    }

    fn on_command(&self, s: Session<'_>, command: &str) -> CommandVerdict {
        match command {
            "DELE" if s.username == "user" => {
                CommandVerdict::Refuse(Reply::new(550, "No deleting today."))
            }
            "SITE CHMOD" => CommandVerdict::Close(Reply::new(421, "Enough.")),
            _ => CommandVerdict::Run,
        }
    }
}

#[test]
fn admit_and_on_command_gate_connections_and_commands() {
    let srv = TestServer::with_builder(|_| {}, |_| {}, |b| b.events(Gatekeeper));
    std::fs::write(srv.root().join("keep"), b"x").expect("write");
    let mut refused = Client::from_stream(crate::util::connect_from(
        std::net::Ipv4Addr::new(127, 0, 0, 2).into(),
        srv.addr,
    ));
    assert_eq!(refused.reply(), (421, "Not from there.".to_owned()));
    refused.expect_closed();

    let mut c = srv.login();
    assert_eq!(c.cmd("DELE keep"), (550, "No deleting today.".to_owned()));
    assert!(srv.root().join("keep").exists(), "the refused DELE ran");
    c.expect("NOOP", 200);
    assert_eq!(c.cmd("SITE CHMOD 644 keep"), (421, "Enough.".to_owned()));
    c.expect_closed();
    srv.wait_idle();
}

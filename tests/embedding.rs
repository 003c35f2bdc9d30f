//! The embedding API in a process of its own, so that its threads and file descriptors
//! can be counted exactly: `testing::spawn`, `RunningServer::stop` / `close_all`, and the
//! multi-thread concurrency model. One #[test] runs the scenarios one after another, so
//! no other test thread comes and goes while they count.

#[allow(dead_code, unused_imports)]
#[path = "util/mod.rs"]
mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ftpdlib::authorizers::DummyAuthorizer;
use ftpdlib::config::{Concurrency, ServerConfig};
use ftpdlib::events::{Events, Session};
use ftpdlib::servers::FtpServer;
use util::{random_bytes, Client, IO_TIMEOUT};

#[test]
fn embedding_api() {
    one_line_test_server_leaves_nothing_behind();
    graceful_stop_lets_a_running_download_finish();
    close_all_cuts_an_upload_and_reports_it_incomplete();
    multi_thread_model_serves_and_counts_sessions_exactly();
}

fn count_dir(path: &str) -> usize {
    std::fs::read_dir(path).map(|d| d.count()).unwrap_or(0)
}

/// Threads and open descriptors of this process.
fn resources() -> (usize, usize) {
    (count_dir("/proc/self/task"), count_dir("/proc/self/fd"))
}

/// Waits (bounded) until the process is back to `before`: a joined thread may still be
/// listed for an instant.
fn wait_resources(before: (usize, usize)) {
    // Generous: session threads of the multi-thread model end on their own schedule.
    let deadline = Instant::now() + 3 * IO_TIMEOUT;
    while resources() != before {
        assert!(
            Instant::now() < deadline,
            "left behind: before {before:?}, now {:?}",
            resources()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn one_line_test_server_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = resources();
    let server = ftpdlib::testing::spawn(dir.path()).expect("spawn");
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    let data = random_bytes(3 << 20, 7);
    {
        let mut c = Client::connect(addr);
        c.login(ftpdlib::testing::USER, ftpdlib::testing::PASSWORD);
        c.stor("f.bin", &data);
        assert_eq!(c.retr("f.bin"), data);
        c.expect("QUIT", 221);
    }
    assert_eq!(
        std::fs::read(dir.path().join("f.bin")).expect("on disk"),
        data
    );
    drop(server);
    wait_resources(before);
}

#[derive(Clone, Default)]
struct Incomplete(Arc<Mutex<Vec<String>>>);

impl Events for Incomplete {
    fn on_incomplete_file_received(&self, _s: Session<'_>, path: &Path) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(path.display().to_string());
    }
}

fn user_server(
    dir: &Path,
    server: ServerConfig,
    events: Incomplete,
) -> ftpdlib::servers::RunningServer {
    let mut auth = DummyAuthorizer::new();
    auth.add_user("user", "12345", dir, "elradfmwMT", None, None)
        .expect("user");
    FtpServer::builder(auth)
        .server_config(server)
        .events(events)
        .spawn("127.0.0.1:0")
        .expect("spawn")
}

fn graceful_stop_lets_a_running_download_finish() {
    let dir = tempfile::tempdir().expect("tempdir");
    let size = 100 << 20;
    std::fs::write(dir.path().join("big"), vec![5u8; size]).expect("write");
    let server = user_server(dir.path(), ServerConfig::default(), Incomplete::default());
    let addr = server.local_addr();
    let mut c = Client::connect(addr);
    c.login("user", "12345");
    let mut idle = Client::connect(addr);
    idle.login("user", "12345");
    c.expect("TYPE I", 200);
    let mut data = c.pasv();
    let (code, _) = c.cmd("RETR big");
    assert!(code == 125 || code == 150);
    let mut buf = vec![0u8; 1 << 20];
    data.read_exact(&mut buf).expect("first MiB");
    let mut got = buf.len();

    let stopper = std::thread::spawn(move || server.stop(Duration::from_secs(60)));
    // The idle session is told at once; the download goes on.
    let last = idle.expect_closed();
    assert_eq!(last, vec![(421, "Server shutting down.".to_owned())]);
    loop {
        match data.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => panic!("the transfer was cut after {got} bytes: {e}"),
        }
    }
    assert_eq!(got, size, "the whole file arrives");
    assert_eq!(c.reply().0, 226);
    assert!(c.expect_closed().is_empty());
    stopper
        .join()
        .expect("stopper thread")
        .expect("graceful stop");
    assert!(
        TcpStream::connect_timeout(&addr, IO_TIMEOUT).is_err(),
        "the listener is closed"
    );
}

fn close_all_cuts_an_upload_and_reports_it_incomplete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = Incomplete::default();
    let server = user_server(dir.path(), ServerConfig::default(), events.clone());
    let mut c = Client::connect(server.local_addr());
    c.login("user", "12345");
    c.expect("TYPE I", 200);
    let mut data = c.pasv();
    let (code, _) = c.cmd("STOR part.bin");
    assert!(code == 125 || code == 150);
    data.write_all(&[1u8; 1 << 20]).expect("first MiB");
    // The server has the first bytes once they appear on disk (bounded wait).
    let deadline = Instant::now() + IO_TIMEOUT;
    while std::fs::metadata(dir.path().join("part.bin")).map_or(0, |m| m.len()) == 0 {
        assert!(Instant::now() < deadline, "no byte of the upload arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    server.close_all().expect("close_all");
    assert!(started.elapsed() < IO_TIMEOUT, "close_all returns at once");
    let seen = events.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].ends_with("part.bin"), "{seen:?}");
    let _ = data.shutdown(Shutdown::Both);
}

fn multi_thread_model_serves_and_counts_sessions_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut limits = ServerConfig::default();
    limits.concurrency = Concurrency::MultiThread;
    limits.max_cons = 2;
    let before = resources();
    let server = user_server(dir.path(), limits, Incomplete::default());
    let addr = server.local_addr();
    let data = random_bytes(5 << 20, 9);
    let mut a = Client::connect(addr);
    a.login("user", "12345");
    a.stor("a.bin", &data);
    assert_eq!(a.retr("a.bin"), data);
    assert!(a.listing("LIST").contains("a.bin"));

    // A client that vanishes mid-download costs only its own session thread.
    let mut b = Client::connect(addr);
    b.login("user", "12345");
    b.expect("TYPE I", 200);
    let mut bd = b.pasv();
    let (code, _) = b.cmd("RETR a.bin");
    assert!(code == 125 || code == 150);
    let mut first = [0u8; 1024];
    bd.read_exact(&mut first).expect("first bytes");

    // Two sessions exist: the third is refused with pyftpdlib's text.
    let mut third = util::Client::connect_raw(addr);
    assert_eq!(
        third.reply(),
        (
            421,
            "Too many connections. Service temporarily unavailable.".to_owned()
        )
    );
    drop(third);
    drop(bd);
    drop(b);
    assert_eq!(a.retr("a.bin"), data, "the other session is unaffected");
    // Once b's session is gone, a new one is accepted (bounded retry: its thread reports
    // the close through the server's loop).
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let mut c = util::Client::connect_raw(addr);
        let (code, _) = c.reply();
        if code == 220 {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never freed");
        std::thread::sleep(Duration::from_millis(10));
    }
    a.expect("QUIT", 221);
    drop(a);
    drop(server);
    wait_resources(before);
}

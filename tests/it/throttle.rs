//! Throttling (pyftpdlib's ThrottledDTPHandler): read_limit / write_limit in bytes per
//! second, by sleeping the data channel on a loop timer. Only lower bounds are strict
//! (a throttle can never make a transfer faster); the upper bounds are generous.

use std::time::{Duration, Instant};

use crate::util::{random_bytes, TestServer};

const RATE: u64 = 1 << 20;
const SIZE: usize = 3 << 20;

fn check_rate(what: &str, elapsed: Duration) {
    // SIZE at RATE takes 3 s; the first burst (RATE / 20) is free.
    let floor = Duration::from_secs_f64(0.9 * SIZE as f64 / RATE as f64);
    assert!(
        elapsed >= floor,
        "{what} took {elapsed:?}: faster than the limit"
    );
    assert!(
        elapsed <= Duration::from_secs(12),
        "{what} took {elapsed:?}: far slower than the limit"
    );
}

#[test]
fn downloads_and_uploads_keep_to_their_limits() {
    let _heavy = crate::util::heavy();
    let srv = TestServer::with(
        |c| {
            c.write_limit = RATE;
            c.read_limit = RATE;
        },
        |_| {},
    );
    let data = random_bytes(SIZE, 11);
    std::fs::write(srv.root().join("down.bin"), &data).expect("write");
    let addr = srv.addr;
    let up = data.clone();
    let uploader = std::thread::spawn(move || {
        let mut c = crate::util::Client::connect(addr);
        c.login("user", "12345");
        let started = Instant::now();
        c.stor("up.bin", &up);
        started.elapsed()
    });
    let mut c = srv.login();
    let started = Instant::now();
    assert_eq!(c.retr("down.bin"), data);
    check_rate("the download", started.elapsed());
    check_rate("the upload", uploader.join().expect("uploader"));
    assert_eq!(
        std::fs::read(srv.root().join("up.bin")).expect("uploaded"),
        data
    );
    // Other commands are not throttled meanwhile.
    c.expect("NOOP", 200);
}

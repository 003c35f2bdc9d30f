//! Throttling (pyftpdlib's ThrottledDTPHandler): read_limit / write_limit in bytes per
//! second, by sleeping the data channel on a loop timer. Only lower bounds are strict
//! (a throttle can never make a transfer faster); the upper bounds are generous.

use std::time::{Duration, Instant};

use crate::util::{random_bytes, TestServer};

/// Checks that moving `size` bytes at `rate` bytes per second took `elapsed`.
fn check_rate(what: &str, elapsed: Duration, size: usize, rate: u64) {
    // The first burst (rate / 20) is free: the floor is 90 % of the nominal time.
    let nominal = size as f64 / rate as f64;
    let floor = Duration::from_secs_f64(0.9 * nominal);
    assert!(
        elapsed >= floor,
        "{what} took {elapsed:?}: faster than the limit"
    );
    assert!(
        elapsed <= Duration::from_secs_f64(4.0 * nominal),
        "{what} took {elapsed:?}: far slower than the limit"
    );
}

/// A download and an upload of `size` bytes at once, each limited to `rate`.
fn transfer_both_ways(rate: u64, size: usize) {
    let _heavy = crate::util::heavy();
    let srv = TestServer::with(
        |c| {
            c.write_limit = rate;
            c.read_limit = rate;
        },
        |_| {},
    );
    let data = random_bytes(size, 11);
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
    check_rate("the download", started.elapsed(), size, rate);
    check_rate("the upload", uploader.join().expect("uploader"), size, rate);
    assert_eq!(
        std::fs::read(srv.root().join("up.bin")).expect("uploaded"),
        data
    );
    // Other commands are not throttled meanwhile.
    c.expect("NOOP", 200);
}

#[test]
fn downloads_and_uploads_keep_to_their_limits() {
    transfer_both_ways(1 << 20, 3 << 20);
}

#[test]
fn ten_mib_a_second_is_kept_too() {
    transfer_both_ways(10 << 20, 30 << 20);
}

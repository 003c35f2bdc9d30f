//! The server driven by a loop that is not its own, with no thread of its own: this
//! test's thread waits with poll(2) on the server's descriptor (`AsRawFd`) and on a
//! socket of its own, sleeping no longer than `next_timeout()`, and calls
//! `poll_once(Duration::ZERO)` when the server's descriptor is readable.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use ftpdlib::authorizers::DummyAuthorizer;
use ftpdlib::servers::FtpServer;

use crate::util::{random_bytes, Client};

/// Longer than any wait the test needs: a host loop that slept this long because it
/// ignored `next_timeout` would make the failed login below far too slow.
const HOST_MAX_SLEEP_MS: i32 = 20_000;

#[test]
fn a_poll_loop_of_the_host_drives_the_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = random_bytes(3 << 20, 7);
    std::fs::write(tmp.path().join("f"), &data).expect("write");
    let mut auth = DummyAuthorizer::new();
    auth.add_user("user", "12345", tmp.path(), "elradfmwMT", None, None)
        .expect("user");
    let mut server = FtpServer::builder(auth)
        .configure(|c| c.auth_failed_timeout = Duration::from_millis(300))
        .bind("127.0.0.1:0")
        .expect("bind");
    let addr = server.local_addr();
    let (mut doorbell, ring) = UnixStream::pair().expect("socketpair");

    // The client: a download, then a failed login, whose 530 waits on the server's
    // timer: only a host loop that honours `next_timeout` answers it in time.
    let client = std::thread::spawn(move || {
        let mut c = Client::connect(addr);
        c.login("user", "12345");
        let got = c.retr("f");
        c.expect("QUIT", 221);
        let mut c = Client::connect(addr);
        c.expect("USER user", 331);
        let asked = Instant::now();
        let (code, _) = c.cmd("PASS wrong");
        let delay = asked.elapsed();
        c.expect("QUIT", 221);
        let mut ring = ring;
        ring.write_all(b"x").expect("ring");
        (got, code, delay)
    });

    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut passes, mut slept_on_timer) = (0u32, 0u32);
    loop {
        assert!(Instant::now() < deadline, "the client never finished");
        let wait = match server.next_timeout() {
            Some(t) => {
                slept_on_timer += 1;
                i32::try_from(t.as_millis()).unwrap_or(HOST_MAX_SLEEP_MS)
            }
            None => HOST_MAX_SLEEP_MS,
        };
        let mut fds = [
            libc::pollfd {
                fd: server.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: doorbell.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfd entries, and their count.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, wait.min(HOST_MAX_SLEEP_MS)) };
        assert!(n >= 0, "poll: {}", std::io::Error::last_os_error());
        if fds[1].revents != 0 {
            let mut byte = [0u8; 1];
            doorbell.read_exact(&mut byte).expect("doorbell");
            break;
        }
        server.poll_once(Duration::ZERO).expect("poll_once");
        passes += 1;
    }
    let (got, code, delay) = client.join().expect("client thread");
    assert!(got == data, "the download differs");
    assert_eq!(code, 530);
    assert!(
        delay >= Duration::from_millis(300),
        "530 before the failed-login delay: {delay:?}"
    );
    assert!(
        delay < Duration::from_millis(u64::try_from(HOST_MAX_SLEEP_MS).unwrap_or(0) / 2),
        "the delay's timer was not honoured: {delay:?}"
    );
    assert!(
        passes > 0 && slept_on_timer > 0,
        "{passes} {slept_on_timer}"
    );
    // Nothing left but the listener once the sessions are gone.
    for _ in 0..100 {
        if server.handler_count() == 1 && server.timer_count() == 0 {
            break;
        }
        server
            .poll_once(Duration::from_millis(20))
            .expect("poll_once");
    }
    assert_eq!(server.handler_count(), 1);
    assert_eq!(server.timer_count(), 0);
}

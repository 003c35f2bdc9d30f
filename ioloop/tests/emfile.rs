//! The acceptor's back-off when the process runs out of file descriptors.
//!
//! A test binary of its own: it lowers this process's RLIMIT_NOFILE, which would break
//! any test running beside it.

#[allow(dead_code)]
mod util;

use std::time::{Duration, Instant};

use ioloop::IoLoop;

use util::{Echo, Server};

#[test]
fn acceptor_pauses_on_emfile_without_spinning_and_resumes() {
    let mut lp = IoLoop::<()>::new().expect("new loop");
    let (server, probe) = Server::new(util::listener(), BACKOFF, Echo::boxed::<()>);
    let addr = server.addr();
    lp.spawn(server).expect("spawn listener");
    // Every client connects now: the kernel completes the handshakes and queues them on
    // the listener, and the test opens no descriptor once the limit is lowered.
    let clients: Vec<_> = (0..CLIENTS).map(|_| util::client(addr)).collect();
    let limit = sys::Limit::leave_free(FREE_FDS);

    util::drive(&mut lp, "accepting pauses", |_| probe.paused.get());
    let accepted = probe.accepted.get();
    assert!(
        (1..=FREE_FDS).contains(&accepted),
        "accepted {accepted} with {FREE_FDS} free descriptors"
    );

    let calls = probe.ready_calls.get();
    let start = Instant::now();
    util::run_for(&mut lp, SPIN_WINDOW);
    let calls = probe.ready_calls.get() - calls;
    assert!(
        calls < 50,
        "the listener was called {calls} times in {:?}",
        start.elapsed()
    );
    assert_eq!(probe.accepted.get(), accepted, "no descriptor came free");
    assert_eq!(lp.len(), 1 + accepted as usize);

    // The clients leave: their sessions close, and the queue drains pause after pause.
    drop(clients);
    util::drive(&mut lp, "every queued connection is accepted", |lp| {
        probe.accepted.get() == CLIENTS as u32 && lp.len() == 1
    });
    assert!(!probe.paused.get());
    assert!(probe.pauses.get() >= 1);
    assert_eq!(lp.timer_count(), 0);
    drop(limit);
}

/// The only `unsafe` and `libc` calls of this test.
mod sys {
    use std::io;

    /// A lowered soft RLIMIT_NOFILE, restored on drop.
    pub struct Limit {
        saved: libc::rlimit,
    }

    impl Limit {
        /// Lowers the soft limit so that exactly `free` more descriptors can be opened:
        /// the kernel hands out the lowest free number, and refuses one at or past the
        /// limit.
        pub fn leave_free(free: u32) -> Limit {
            let saved = getrlimit().expect("getrlimit");
            let mut left = free;
            let mut fd: libc::c_int = 0;
            let soft = loop {
                if !is_open(fd) {
                    left -= 1;
                    if left == 0 {
                        break fd as libc::rlim_t + 1;
                    }
                }
                fd += 1;
            };
            assert!(soft <= saved.rlim_cur, "already too few descriptors");
            setrlimit(&libc::rlimit {
                rlim_cur: soft,
                rlim_max: saved.rlim_max,
            })
            .expect("setrlimit");
            Limit { saved }
        }
    }

    impl Drop for Limit {
        fn drop(&mut self) {
            setrlimit(&self.saved).expect("restore RLIMIT_NOFILE");
        }
    }

    fn is_open(fd: libc::c_int) -> bool {
        // SAFETY: F_GETFD only reads the descriptor's flags; an unused number gives EBADF.
        unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
    }

    fn getrlimit() -> io::Result<libc::rlimit> {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `r` is a valid, writable rlimit.
        match unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } {
            0 => Ok(r),
            _ => Err(io::Error::last_os_error()),
        }
    }

    fn setrlimit(r: &libc::rlimit) -> io::Result<()> {
        // SAFETY: `r` is a valid rlimit; lowering the soft limit needs no privilege.
        match unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, r) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }
}

const BACKOFF: Duration = Duration::from_millis(100);
const CLIENTS: usize = 20;
const FREE_FDS: u32 = 3;
const SPIN_WINDOW: Duration = Duration::from_millis(500);

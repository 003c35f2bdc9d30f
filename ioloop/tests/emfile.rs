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

/// The process limit this test lowers, through rustix: no `unsafe` of its own.
mod sys {
    use std::fs::File;
    use std::os::fd::AsRawFd;

    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

    /// A lowered soft RLIMIT_NOFILE, restored on drop.
    pub struct Limit {
        saved: Rlimit,
    }

    impl Limit {
        /// Lowers the soft limit so that exactly `free` more descriptors can be opened:
        /// the kernel hands out the lowest free number, and refuses one at or past the
        /// limit. Opening `free` files while holding them finds those numbers; they are
        /// closed again before the limit drops.
        pub fn leave_free(free: u32) -> Limit {
            let saved = getrlimit(Resource::Nofile);
            let probes: Vec<File> = (0..free)
                .map(|_| File::open("/dev/null").expect("open /dev/null"))
                .collect();
            let last = probes.last().expect("at least one free descriptor");
            let soft = u64::try_from(last.as_raw_fd()).expect("descriptors are not negative") + 1;
            drop(probes);
            // None is RLIM_INFINITY, the largest number.
            let current = saved.current.unwrap_or(u64::MAX);
            assert!(soft <= current, "already too few descriptors");
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(soft),
                    maximum: saved.maximum,
                },
            )
            .expect("setrlimit");
            Limit { saved }
        }
    }

    impl Drop for Limit {
        fn drop(&mut self) {
            setrlimit(Resource::Nofile, self.saved).expect("restore RLIMIT_NOFILE");
        }
    }
}

const BACKOFF: Duration = Duration::from_millis(100);
const CLIENTS: usize = 20;
const FREE_FDS: u32 = 3;
const SPIN_WINDOW: Duration = Duration::from_millis(500);

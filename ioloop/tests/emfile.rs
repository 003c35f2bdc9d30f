//! The acceptor's back-off when the process runs out of file descriptors, and its refusal
//! of the queued clients on a reserve descriptor.
//!
//! A test binary of its own: it lowers this process's RLIMIT_NOFILE, which would break
//! any test running beside it; its tests take turns (`ONE_AT_A_TIME`).

#[allow(dead_code)]
mod util;

use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ioloop::{Acceptor, IoLoop};

use util::{Echo, Server};

/// The tests lower the process's limit in turn.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn acceptor_pauses_on_emfile_without_spinning_and_resumes() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
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

#[test]
fn with_a_reserve_the_queued_clients_are_refused_at_once_and_later_ones_served() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut lp = IoLoop::<()>::new().expect("new loop");
    // The reserve is taken now, while descriptors are plenty.
    let acceptor = Acceptor::new(util::listener(), BACKOFF).refuse_when_full(b"full\r\n");
    let (server, probe) = Server::with_acceptor(acceptor, Echo::boxed::<()>);
    let addr = server.addr();
    lp.spawn(server).expect("spawn listener");
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| util::client(addr)).collect();
    let limit = sys::Limit::leave_free(FREE_FDS);

    util::drive(&mut lp, "accepting pauses", |_| probe.paused.get());
    let accepted = probe.accepted.get() as usize;
    assert!(
        (1..=FREE_FDS as usize).contains(&accepted),
        "accepted {accepted} with {FREE_FDS} free descriptors"
    );
    // Every other client was told and closed before the pause: "full", then EOF. The
    // accepted ones are the first in the queue, served by their echo handlers.
    for (i, c) in clients.iter_mut().enumerate().skip(accepted) {
        let mut got = Vec::new();
        c.read_to_end(&mut got)
            .unwrap_or_else(|e| panic!("client {i}: {e}"));
        assert_eq!(got, b"full\r\n", "client {i}");
    }
    // Nothing waits in the queue, so the pauses stay quiet.
    let calls = probe.ready_calls.get();
    util::run_for(&mut lp, SPIN_WINDOW);
    let calls = probe.ready_calls.get() - calls;
    assert!(calls < 50, "the listener was called {calls} times");

    // The accepted clients leave; a new one is served once the pause is over.
    drop(clients);
    util::drive(&mut lp, "the sessions close", |lp| lp.len() == 1);
    let mut late = util::client(addr);
    util::drive(&mut lp, "a later client is accepted", |_| {
        probe.accepted.get() as usize == accepted + 1
    });
    std::io::Write::write_all(&mut late, b"hi\r\n").expect("write");
    late.set_nonblocking(true).expect("non-blocking");
    let mut echo = [0u8; 8];
    util::drive(&mut lp, "the echo comes back", |_| {
        late.peek(&mut echo).is_ok_and(|n| n >= 4)
    });
    assert_eq!(&echo[..4], b"hi\r\n");
    drop(late);
    util::drive(&mut lp, "the late session closes", |lp| lp.len() == 1);
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

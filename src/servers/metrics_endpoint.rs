//! The metrics endpoint of a built server: [`ServerBuilder::metrics`], the counters made
//! once before any loop, thread or process, and the HTTP listener added to the loop that
//! [`FtpServer::serve_forever`] runs (the async loop, the acceptor's loop of multi-thread
//! and multi-proc, the first loop of multi-loop, the pre-fork supervisor's loop).

use std::cell::Cell;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use crate::metrics::Metrics;

/// A metrics listener bound and not yet in a loop.
pub(super) struct Bound {
    pub(super) listener: std::net::TcpListener,
    pub(super) addr: SocketAddr,
    pub(super) metrics: Arc<Metrics>,
}

/// The endpoint as the server keeps it.
pub(super) struct Endpoint {
    pub(super) addr: SocketAddr,
    /// The endpoint's handlers in the loop (listener and connections): not sessions.
    pub(super) live: Rc<Cell<usize>>,
    pub(super) fd: RawFd,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // The descriptor number may be reused once the listener is gone.
        let _ = LISTENER_FD.compare_exchange(self.fd, -1, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// The metrics listener's descriptor in this process (-1: none), which a forked session
/// process or pre-fork worker closes: otherwise it would keep the port bound after the
/// server itself closed it (a restart could not bind it again while a session lingers).
/// One per process: the forking models run only in a process that serves nothing else.
pub(super) static LISTENER_FD: AtomicI32 = AtomicI32::new(-1);

/// In a process just forked from the server: closes its copy of the metrics listener.
pub(super) fn close_in_child() {
    let fd = LISTENER_FD.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        crate::sys::close_inherited(fd);
    }
}

/// The metrics listener's queue: scrapers connect one at a time.
pub(super) const METRICS_BACKLOG: i32 = 64;

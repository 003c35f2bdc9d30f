//! The metrics endpoint of a built server: [`ServerBuilder::metrics`], the counters made
//! once before any loop, thread or process, and the HTTP listener added to the loop that
//! [`FtpServer::serve_forever`] runs (the async loop, the acceptor's loop of multi-thread
//! and multi-proc, the first loop of multi-loop, the pre-fork supervisor's loop).

use std::cell::Cell;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use super::builder::ServerBuilder;
use super::server::FtpServer;
use crate::error::Error;
use crate::metrics::http::MetricsListener;
use crate::metrics::Metrics;
use crate::net::{listen_with, ReusePort};

/// A metrics listener bound and not yet in a loop.
pub(super) struct Bound {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    metrics: Arc<Metrics>,
}

/// The endpoint as the server keeps it.
pub(super) struct Endpoint {
    addr: SocketAddr,
    /// The endpoint's handlers in the loop (listener and connections): not sessions.
    live: Rc<Cell<usize>>,
    fd: RawFd,
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
static LISTENER_FD: AtomicI32 = AtomicI32::new(-1);

/// In a process just forked from the server: closes its copy of the metrics listener.
pub(super) fn close_in_child() {
    let fd = LISTENER_FD.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        crate::sys::close_inherited(fd);
    }
}

impl ServerBuilder {
    /// Serves Prometheus metrics on `addr` (`GET /metrics` in the text exposition format,
    /// `GET /healthz`), from the server's own loop: no thread. The counters are summed
    /// over every loop, thread and process of the server. The same as setting
    /// [`ServerConfig::metrics`](crate::config::ServerConfig::metrics); the bound address
    /// is [`FtpServer::metrics_addr`]. The metrics are listed in the guide
    /// ([`crate::guide`], "Metrics").
    pub fn metrics(mut self, addr: SocketAddr) -> Self {
        self.server.metrics = Some(addr);
        self
    }

    /// With metrics on: makes the counters (shared by every session built after) and
    /// binds the listener.
    pub(super) fn bind_metrics(&mut self) -> Result<Option<Bound>, Error> {
        let Some(addr) = self.server.metrics else {
            return Ok(None);
        };
        let metrics = match &self.metrics {
            Some(m) => Arc::clone(m),
            None => {
                let m = Arc::new(
                    Metrics::new().map_err(|e| Error::io("mapping the metrics counters", e))?,
                );
                self.metrics = Some(Arc::clone(&m));
                m
            }
        };
        // SO_REUSEPORT, so that a process started by a hand-over (SIGUSR2) can listen
        // beside the old one, which leaves when it ends; a first start still finds the
        // port in use as a plain bind would.
        let handed_over = std::env::var_os(crate::systemd::SERVICE_NOTIFY_VAR).is_some();
        let reuse = if handed_over {
            ReusePort::Join
        } else {
            ReusePort::First
        };
        let listener = listen_with(addr, METRICS_BACKLOG, reuse)
            .map_err(|e| Error::io("binding the metrics address", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the metrics address", e))?;
        Ok(Some(Bound {
            listener,
            addr,
            metrics,
        }))
    }
}

impl FtpServer {
    /// The address metrics are served on (with the real port when bound to port 0), or
    /// None when they are not.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.addr)
    }

    pub(super) fn serve_metrics(&mut self, bound: Bound) -> Result<(), Error> {
        let live = Rc::new(Cell::new(0));
        let fd = bound.listener.as_raw_fd();
        let handler = MetricsListener::new(
            bound.listener,
            bound.metrics,
            Rc::clone(&live),
            self.server.metrics_timeout,
        );
        self.ioloop
            .spawn(Box::new(handler))
            .map_err(|e| Error::io("registering the metrics listener", e))?;
        log::info!("serving metrics on http://{}/metrics", bound.addr);
        LISTENER_FD.store(fd, Ordering::Relaxed);
        self.metrics = Some(Endpoint {
            addr: bound.addr,
            live,
            fd,
        });
        Ok(())
    }

    /// How many of the loop's handlers belong to the metrics endpoint.
    pub(super) fn metrics_handlers(&self) -> usize {
        self.metrics.as_ref().map_or(0, |m| m.live.get())
    }
}

/// The metrics listener's queue: scrapers connect one at a time.
const METRICS_BACKLOG: i32 = 64;

//! The metrics calls of a built server: binding the endpoint at build time and serving
//! it from the loop (the endpoint itself is in `metrics_endpoint`).

use std::cell::Cell;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::builder::ServerBuilder;
use super::metrics_endpoint::*;
use super::server::FtpServer;
use crate::error::Error;
use crate::metrics::http::MetricsListener;
use crate::metrics::Metrics;
use crate::net::{listen_with, ReusePort};

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

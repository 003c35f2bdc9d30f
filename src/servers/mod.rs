//! The servers (pyftpdlib's servers.py and prefork.py): [`ServerBuilder`] builds an
//! [`FtpServer`], a listening acceptor in an event loop, and runs it under one of the
//! concurrency models: async (one loop, the default), multi-loop, multi-thread, multi-proc
//! or pre-fork.
//!
//! The files layer upwards, so that none imports one that imports it back: `server` (the
//! public types and the signal-watching loop), the session starters `multi_thread` and
//! `forking`, `acceptor`, `builder` (the options and the one loop every model is made
//! of), the models built from it (`multi_loop`, `prefork`), and here the entry points
//! that choose between them.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use crate::bans::Bans;
use crate::config::{Concurrency, ServerConfig};
use crate::error::Error;
use crate::net::{listen_with, ReusePort};

mod acceptor;
mod builder;
mod forking;
mod handover;
mod metrics_endpoint;
mod multi_loop;
mod multi_thread;
mod prefork;
mod reload;
mod server;
mod server_handover;
mod server_metrics;
mod server_reload;

pub use crate::handlers::shared::Reload;
pub use crate::handlers::VirtualHost;
pub use builder::ServerBuilder;
pub use reload::{ReloadError, ReloadRequest};
use server::join;
pub use server::{FtpServer, RunningServer, ServerHandle};

impl ServerBuilder {
    /// Binds to `addr` (the first address it resolves to that binds) and builds the server.
    ///
    /// # Errors
    /// When the address does not resolve or no address binds.
    pub fn bind(self, addr: impl ToSocketAddrs) -> Result<FtpServer, Error> {
        self.install_requested_signals();
        let listener = bind_listener(addr, &self.server)?;
        self.listener(listener)
    }

    /// The handlers of the signals this server was asked to answer
    /// ([`ServerBuilder::hand_over_on_sigusr2`], [`ServerBuilder::on_reload`]), installed
    /// before the port is bound: a client, a script or a service manager may signal the
    /// process as soon as the port accepts, and the signal's default action would end
    /// it. One that arrives before [`FtpServer`] is built is dropped (the settings were
    /// just read; the hand-over can be asked again); from then on, it is acted on once
    /// [`FtpServer::serve_forever`] runs.
    fn install_requested_signals(&self) {
        if self.server.hand_over {
            crate::sys::install_handover_signal();
        }
        if self.reload_hook.is_some() {
            crate::sys::install_reload_signal();
        }
    }

    /// Binds to `addr` and runs the server on a new thread; the returned
    /// [`RunningServer`] stops it (gracefully or not) and stops it when dropped.
    ///
    /// # Errors
    /// When binding fails or the server cannot start, and for the forking models
    /// (multi-proc, pre-fork), which must not fork a process that runs other threads.
    pub fn spawn(self, addr: impl ToSocketAddrs) -> Result<RunningServer, Error> {
        if self.server.concurrency.forks() {
            return Err(Error::Config(format!(
                "the {} model forks the process: run it with serve_forever on the main thread",
                self.server.concurrency.name()
            )));
        }
        let listener = bind_listener(addr, &self.server)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("ftp-server".into())
            .spawn(move || {
                // The loop and its handlers live and die on this thread.
                let mut server = match self.listener(listener) {
                    Ok(s) => s,
                    Err(e) => {
                        let msg = e.to_string();
                        let _ = tx.send(Err(e));
                        return Err(Error::Config(msg));
                    }
                };
                let _ = tx.send(Ok((server.local_addr(), server.handle())));
                server.serve_forever(false)
            })
            .map_err(|e| Error::io("starting the server thread", e))?;
        match rx.recv() {
            Ok(Ok((local_addr, handle))) => Ok(RunningServer {
                local_addr,
                handle,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(join(thread)
                .err()
                .unwrap_or_else(|| Error::Config("the server thread ended".into()))),
        }
    }

    /// Builds the server on a listener the caller already bound. For the multi-loop
    /// model the other loops get listeners of their own on the same address when the
    /// given one has `SO_REUSEPORT` (as [`ServerBuilder::bind`] sets), else they share
    /// it.
    ///
    /// # Errors
    /// When the listener cannot be made non-blocking or registered.
    pub fn listener(self, listener: std::net::TcpListener) -> Result<FtpServer, Error> {
        self.listeners(vec![listener])
    }

    /// Builds the server on listeners the caller already bound, all on one address: as
    /// [`ServerBuilder::listener`] with the first; the multi-loop model gives the others
    /// to its loops after the first (one loop each at least). These are what
    /// [`crate::systemd::activated_listeners`] returns after a hand-over from a
    /// multi-loop server; the other models serve the first alone (the others are
    /// closed, logged).
    ///
    /// # Errors
    /// When `listeners` is empty, or a listener cannot be made non-blocking or
    /// registered.
    pub fn listeners(mut self, listeners: Vec<std::net::TcpListener>) -> Result<FtpServer, Error> {
        self.install_requested_signals();
        for l in &listeners {
            l.set_nonblocking(true)
                .map_err(|e| Error::io("configuring the listener", e))?;
        }
        let mut listeners = listeners.into_iter();
        let Some(listener) = listeners.next() else {
            return Err(Error::Config("no listening socket to serve".into()));
        };
        let others: Vec<std::net::TcpListener> = listeners.collect();
        if let (Some(policy), None) = (&self.handler.ban, &self.bans) {
            let bans =
                Bans::new(policy.clone()).map_err(|e| Error::io("mapping the ban table", e))?;
            self.bans = Some(Arc::new(bans));
        }
        if self.bandwidth.is_none() {
            let bandwidth = crate::handlers::bandwidth::Bandwidth::new()
                .map_err(|e| Error::io("mapping the bandwidth caps", e))?;
            self.bandwidth = Some(Arc::new(bandwidth));
        }
        if !others.is_empty() && self.server.concurrency != Concurrency::MultiLoop {
            log::info!(
                "{} more listening socket(s) closed: the {} model serves one",
                others.len(),
                self.server.concurrency.name()
            );
        }
        let metrics = self.bind_metrics()?;
        let mut server = match self.server.concurrency {
            Concurrency::PreFork => prefork::pre_fork_server(self, listener),
            Concurrency::MultiLoop => self.multi_loop(listener, others),
            Concurrency::Async | Concurrency::MultiThread | Concurrency::MultiProc => {
                self.single_loop(listener)
            }
        }?;
        if let Some(endpoint) = metrics {
            server.serve_metrics(endpoint)?;
        }
        Ok(server)
    }
}

/// Raises this process's soft limit on open files to the hard limit (each session holds
/// one descriptor, two during a transfer). Returns the new limit.
///
/// # Errors
/// When the limit cannot be read or set.
pub fn raise_open_files_limit() -> io::Result<u64> {
    crate::sys::raise_nofile_limit()
}

/// Makes SIGINT and SIGTERM requests for a graceful stop, as
/// [`FtpServer::serve_forever`]`(true)` does, but now: a program that builds its server
/// first calls this at its start, so that a signal arriving before `serve_forever` (a
/// service manager stopping it during start-up) stops it cleanly once it serves, logs
/// written, instead of killing it with the default action.
pub fn install_stop_signals() {
    crate::sys::install_exit_signals();
}

/// Makes SIGUSR1 a request to reopen log files, as logrotate's `postrotate` sends it,
/// instead of the signal's default action (ending the process). The handler only counts
/// the signal: each log writer compares [`log_reopen_requests`] with the count it last
/// saw before it writes, and reopens its file when the count moved; no thread watches
/// for it. Forked processes (the forking concurrency models) inherit the handler and
/// keep a count of their own: each must be signalled.
pub fn install_log_reopen_signal() {
    crate::sys::install_reopen_signal();
}

/// How many SIGUSR1 arrived since [`install_log_reopen_signal`].
pub fn log_reopen_requests() -> usize {
    crate::sys::reopen_signals_received()
}

/// Binds the first address `addr` resolves to that binds.
fn bind_listener(
    addr: impl ToSocketAddrs,
    config: &ServerConfig,
) -> Result<std::net::TcpListener, Error> {
    let reuse = if config.concurrency == Concurrency::MultiLoop {
        ReusePort::First
    } else {
        ReusePort::No
    };
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| Error::io("resolving the listen address", e))?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to bind");
    for a in addrs {
        match listen_with(a, config.backlog, reuse) {
            Ok(l) => return Ok(l),
            Err(e) => last = e,
        }
    }
    Err(Error::io("binding the listen address", last))
}

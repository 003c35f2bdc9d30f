//! The multi-loop model: several loops in one process, each on a thread of its own with
//! its own `SO_REUSEPORT` listener on the same port (the kernel spreads the clients over
//! them), counting sessions in one shared table.

use std::os::fd::AsRawFd;
use std::sync::Arc;

use super::builder::ServerBuilder;
use super::server::{worker_count, FtpServer, Sibling};
use crate::config::Concurrency;
use crate::error::Error;
use crate::limits::SharedLimits;
use crate::net::{listen_with, ReusePort};

impl ServerBuilder {
    /// The multi-loop model: `workers` loops, this one plus one per extra thread, each
    /// accepting on its own `SO_REUSEPORT` listener and counting sessions in one shared
    /// table. The loops after the first take the listeners of `inherited` first (those a
    /// hand-over passed on, one per loop of the old process: their queues are served),
    /// and open the rest.
    pub(super) fn multi_loop(
        mut self,
        listener: std::net::TcpListener,
        inherited: Vec<std::net::TcpListener>,
    ) -> Result<FtpServer, Error> {
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the listen address", e))?;
        let mut loops = worker_count(&self.server);
        if inherited.len() + 1 > loops {
            // Every inherited socket needs a loop: one left unserved would hold its
            // clients in a queue nobody accepts from.
            log::info!(
                "{} listening sockets inherited: {} loops",
                inherited.len() + 1,
                inherited.len() + 1
            );
            loops = inherited.len() + 1;
        }
        let limits = Arc::new(
            SharedLimits::new(loops, self.server.max_cons, self.server.max_cons_per_ip)
                .map_err(|e| Error::io("mapping the session counters", e))?,
        );
        let config = self.server.clone();
        self.server.concurrency = Concurrency::Async;
        let mut siblings = Vec::with_capacity(loops.saturating_sub(1));
        let mut listen_fds = Vec::with_capacity(loops);
        let mut inherited = inherited.into_iter();
        for owner in 1..loops {
            let own = match inherited.next() {
                Some(l) => l,
                None => match listen_with(local_addr, self.server.backlog, ReusePort::Join) {
                    Ok(l) => l,
                    // The caller's listener has no SO_REUSEPORT: share it instead.
                    Err(_) => listener
                        .try_clone()
                        .map_err(|e| Error::io("sharing the listener", e))?,
                },
            };
            listen_fds.push(own.as_raw_fd());
            let mut builder = self.clone();
            builder.limits = Some((Arc::clone(&limits), owner));
            siblings.push(spawn_sibling(builder, own, owner)?);
        }
        self.limits = Some((limits, 0));
        let mut server = self.single_loop(listener)?;
        server.server = config;
        server.siblings = siblings;
        server.listen_fds.extend(listen_fds);
        Ok(server)
    }
}

/// Starts loop `owner` of the multi-loop model on a thread of its own.
fn spawn_sibling(
    builder: ServerBuilder,
    listener: std::net::TcpListener,
    owner: usize,
) -> Result<Sibling, Error> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name(format!("ftp-loop-{owner}"))
        .spawn(move || {
            // Signals go to the thread that runs serve_forever.
            crate::sys::block_exit_signals();
            match builder.single_loop(listener) {
                Ok(mut server) => {
                    let _ = tx.send(Ok((server.ioloop.handle(), server.acceptor)));
                    if let Err(e) = server.run_quietly() {
                        log::error!("loop {owner} failed: {e}");
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })
        .map_err(|e| Error::io("starting a loop thread", e))?;
    match rx.recv() {
        Ok(Ok((handle, acceptor))) => Ok(Sibling {
            handle,
            acceptor,
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(Error::Config(format!("loop {owner} did not start")))
        }
    }
}

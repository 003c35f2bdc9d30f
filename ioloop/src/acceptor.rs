//! `Acceptor`: a listening socket that accepts until `WouldBlock`, and backs off on a timer
//! instead of spinning when the process runs out of file descriptors. Optionally it keeps a
//! spare descriptor to tell the clients queued meanwhile that it is full, and close them.

use std::fs::File;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::Interest;
use rustix::io::Errno;

use crate::{Ctx, TimerId};

/// A listener component: embed it in a handler, forward `on_ready` and `on_timer` to it.
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    paused: Option<TimerId>,
    backoff: Duration,
    /// Accepting failed and has not succeeded since: a server held at its open-files
    /// limit logs the first failure as a warning, not one every back-off period.
    failing: bool,
    /// accept(2) said EINVAL: the socket no longer listens (another process sharing it
    /// shut it down, as a pre-fork supervisor does to stop its workers).
    shut_down: bool,
    /// With [`refuse_when_full`](Self::refuse_when_full): a descriptor held in reserve
    /// (`/dev/null`) and what to write to a client accepted on it.
    full: Option<Full>,
}

/// The reserve descriptor of [`Acceptor::refuse_when_full`] and its reply.
#[derive(Debug)]
struct Full {
    spare: Option<File>,
    reply: Vec<u8>,
}

impl Acceptor {
    /// Wraps a non-blocking listener. `backoff` is how long accepting pauses after EMFILE.
    pub fn new(listener: TcpListener, backoff: Duration) -> Self {
        Acceptor {
            listener,
            paused: None,
            backoff,
            failing: false,
            shut_down: false,
            full: None,
        }
    }

    /// Out of descriptors, the pending connections would wait in the kernel's queue,
    /// unanswered, until a descriptor came free (for as long as the sessions already
    /// served stay). With this, the acceptor holds one descriptor in reserve: when
    /// accept(2) fails for want of descriptors it gives the reserve up, accepts one
    /// client, writes `reply` to it (best effort, never blocking; empty = none), closes
    /// it and takes the reserve again, until the queue is empty; then it backs off as
    /// without. A client is told at once instead of hanging.
    pub fn refuse_when_full(mut self, reply: &[u8]) -> Self {
        self.full = Some(Full {
            spare: open_spare(),
            reply: reply.to_vec(),
        });
        self
    }

    /// The listener (to register it, or to read its local address).
    pub fn listener(&self) -> &TcpListener {
        &self.listener
    }

    /// The listener, mutably (for registration as a mio source).
    pub fn listener_mut(&mut self) -> &mut TcpListener {
        &mut self.listener
    }

    /// Readable while accepting; nothing while paused or once the socket stopped
    /// listening.
    pub fn interest(&self) -> Option<Interest> {
        match self.paused {
            _ if self.shut_down => None,
            Some(_) => None,
            None => Some(Interest::READABLE),
        }
    }

    /// True once accept(2) said the socket no longer listens (EINVAL): it was shut down,
    /// by this process or another that shares it. Nothing more will be accepted.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    /// True while accepting is paused after running out of descriptors.
    pub fn is_paused(&self) -> bool {
        self.paused.is_some()
    }

    /// Accepts every pending connection, handing each to `on_accept`. On EMFILE / ENFILE /
    /// ENOBUFS / ENOMEM it pauses for the back-off delay (the pending connections stay in
    /// the kernel's queue) rather than being woken again and again for nothing.
    pub fn accept_ready<M>(
        &mut self,
        cx: &mut Ctx<'_, M>,
        mut on_accept: impl FnMut(&mut Ctx<'_, M>, TcpStream, SocketAddr),
    ) {
        while let Some((stream, addr)) = self.accept_next(cx) {
            on_accept(cx, stream, addr);
        }
    }

    /// The next pending connection, or `None` when there is none (or accepting has just
    /// paused, as in [`accept_ready`](Self::accept_ready)). Call it until `None` on each
    /// readiness: a handler that sets each connection up before taking the next one
    /// spaces its accept(2) calls out instead of holding the listener in a tight loop.
    pub fn accept_next<M>(&mut self, cx: &mut Ctx<'_, M>) -> Option<(TcpStream, SocketAddr)> {
        if self.paused.is_some() || self.shut_down {
            return None;
        }
        loop {
            match self.listener.accept() {
                Ok(accepted) => {
                    self.failing = false;
                    return Some(accepted);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e)
                    if e.kind() == io::ErrorKind::Interrupted
                        || e.kind() == io::ErrorKind::ConnectionAborted =>
                {
                    continue
                }
                Err(e) if e.raw_os_error() == Some(Errno::INVAL.raw_os_error()) => {
                    // Not listening any more: retrying would fail the same way for ever.
                    log::debug!("accept() failed: {e}: the socket no longer listens");
                    self.shut_down = true;
                    return None;
                }
                Err(e) => {
                    let out_of_resources = e
                        .raw_os_error()
                        .is_some_and(|n| OUT_OF_RESOURCES.contains(&n));
                    if !out_of_resources {
                        log::error!("accept() failed: {e}");
                    } else if std::mem::replace(&mut self.failing, true) {
                        log::debug!("accept() failed again: {e}");
                    } else {
                        log::warn!(
                            "accept() failed: {e}; retrying every {:?} (repeats are logged at debug level)",
                            self.backoff
                        );
                    }
                    if out_of_resources {
                        self.refuse_queued();
                    }
                    // Either way the listener stays open: pyftpdlib closed it here. The
                    // pause also stops the loop from spinning on a listener that stays
                    // readable while every accept(2) fails.
                    self.paused = Some(cx.call_later(self.backoff));
                    return None;
                }
            }
        }
    }

    /// Feeds a timer to the acceptor; returns true if it was the end of a pause (accepting
    /// resumes, and the handler is woken to take the connections queued meanwhile).
    pub fn on_timer<M>(&mut self, cx: &mut Ctx<'_, M>, timer: TimerId) -> bool {
        if self.paused == Some(timer) {
            self.paused = None;
            // A reserve that could not be taken again (another descriptor took its
            // place) is tried again after each pause.
            if let Some(full) = &mut self.full {
                if full.spare.is_none() {
                    full.spare = open_spare();
                }
            }
            cx.wake();
            true
        } else {
            false
        }
    }
}

impl Acceptor {
    /// Out of descriptors: refuses the queued clients one by one on the reserve
    /// descriptor, until the queue is empty or the reserve is gone.
    fn refuse_queued(&mut self) {
        let Some(full) = &mut self.full else {
            return;
        };
        while let Some(spare) = full.spare.take() {
            drop(spare);
            match self.listener.accept() {
                Ok((mut stream, addr)) => {
                    if !full.reply.is_empty() {
                        // A fresh socket's send buffer takes a short reply whole.
                        let _ = stream.write(&full.reply);
                    }
                    drop(stream);
                    log::debug!("{addr}: refused, out of descriptors");
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Empty (WouldBlock), or failing even with the reserve given up.
                Err(_) => {
                    full.spare = open_spare();
                    return;
                }
            }
            full.spare = open_spare();
        }
    }
}

/// The reserve descriptor of [`Acceptor::refuse_when_full`]; `None` when even that cannot
/// be opened now.
fn open_spare() -> Option<File> {
    File::open("/dev/null").ok()
}

/// The accept(2) errors that mean "no descriptor or memory to spare now" (EMFILE, ENFILE,
/// ENOBUFS, ENOMEM), as raw numbers: an error is compared as it comes, without a
/// conversion (`Errno::from_io_error` adds a range check).
const OUT_OF_RESOURCES: [i32; 4] = [
    Errno::MFILE.raw_os_error(),
    Errno::NFILE.raw_os_error(),
    Errno::NOBUFS.raw_os_error(),
    Errno::NOMEM.raw_os_error(),
];

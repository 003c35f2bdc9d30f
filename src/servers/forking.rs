//! The multi-proc model (a process per session, forked by the acceptor), and what both
//! forking models (multi-proc and pre-fork) use to follow their children.
//!
//! A parent learns that a child ended through a pipe: the child holds the write end and
//! never closes it, so its exit makes the read end (registered in the parent's loop)
//! readable with EOF. Children never return into the parent's code: they build their own
//! loop and end with `_exit`, so nothing the parent owns (its epoll registrations above
//! all) is torn down twice.

use std::fs::File;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use ioloop::mio::event::Source;
use ioloop::mio::net::TcpStream;
use ioloop::mio::unix::SourceFd;
use ioloop::mio::{Interest as MioInterest, Registry, Token};
use ioloop::{Ctx, Handle, Handler, Interest, IoLoop, Ready};

use super::server::run_with_signals;
use crate::handlers::pool::WorkerPool;
use crate::handlers::shared::Shared;
use crate::handlers::{FtpHandler, Msg, ServerEvent, ServerLink, SessionCmd};
use crate::sys::{self, Forked};

/// Asks a child to stop gracefully (its session ends after the running transfer).
pub(super) fn stop_gracefully(pid: libc::pid_t) {
    sys::signal_process(pid, libc::SIGTERM);
}

/// Asks a child to close everything now: two exit signals, as from a user who insists.
pub(super) fn stop_now(pid: libc::pid_t) {
    sys::signal_process(pid, libc::SIGTERM);
    sys::signal_process(pid, libc::SIGINT);
}

/// Multi-proc: forks a process for the session just accepted; the child closes its copies
/// of `listener` and of `inherited` (connections still waiting for a PROXY header, which
/// belong to the parent). Returns the child's pid, or None (the client is dropped) when the fork
/// failed.
pub(super) fn start_process(
    listener: RawFd,
    inherited: &[RawFd],
    shared: &Shared,
    cx: &mut Ctx<'_, Msg>,
    stream: TcpStream,
    addr: SocketAddr,
    id: u64,
) -> Option<libc::pid_t> {
    let (exit_pipe, exit_pipe_child) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => {
            log::error!("{addr}: cannot create a pipe for the session process: {e}");
            return None;
        }
    };
    let parent = sys::process_id();
    match sys::fork() {
        Ok(Forked::Child) => {
            drop(exit_pipe);
            sys::close_inherited(listener);
            for &fd in inherited {
                sys::close_inherited(fd);
            }
            super::metrics_endpoint::close_in_child();
            sys::follow_parent(parent);
            let code = match run_session(shared, stream, addr, id) {
                Ok(()) => 0,
                Err(e) => {
                    log::error!("{addr}: session process failed: {e}");
                    1
                }
            };
            drop(exit_pipe_child);
            sys::exit_process(code)
        }
        Ok(Forked::Parent(pid)) => {
            drop(exit_pipe_child);
            drop(stream);
            let watcher = ChildWatcher::new(exit_pipe, cx.me(), id);
            match cx.spawn(Box::new(watcher)) {
                Ok(_) => Some(pid),
                Err(e) => {
                    log::error!("{addr}: cannot watch the session process: {e}");
                    stop_now(pid);
                    let _ = sys::reap(pid, true);
                    None
                }
            }
        }
        Err(e) => {
            log::error!("{addr}: cannot fork a session process: {e}");
            None
        }
    }
}

/// Reaps a multi-proc session's process once its exit pipe said it ended.
pub(super) fn reap_session(pid: libc::pid_t) {
    if let Some(status) = sys::reap(pid, true) {
        if status != 0 {
            log::warn!("session process {pid} ended with status {status}");
        }
    }
}

/// The life of a multi-proc child: the session in a loop of its own; SIGTERM ends it
/// gracefully, a second signal at once.
fn run_session(parent: &Shared, stream: TcpStream, addr: SocketAddr, id: u64) -> io::Result<()> {
    sys::reset_exit_signals();
    sys::install_exit_signals();
    let shared = Arc::new(child_shared(parent)?);
    let mut session_loop = IoLoop::<Msg>::new()?;
    crate::metrics::observe_loop(&mut session_loop, shared.metrics.as_ref());
    let end = session_loop.spawn(Box::new(SessionEnd))?;
    let handler = FtpHandler::new(stream, addr, ServerLink::Local(end), id, shared)?;
    let session = session_loop.spawn(Box::new(handler))?;
    run_with_signals(
        &mut session_loop,
        |lp| lp.send(session, Msg::ToSession(SessionCmd::Shutdown)),
        // A session keeps the settings it started with.
        |_| {},
    )
}

/// A copy of the parent's shared state with worker threads of the child's own (threads
/// do not survive fork).
fn child_shared(parent: &Shared) -> io::Result<Shared> {
    let workers = match parent.config.auth_workers {
        0 => None,
        n => Some(Arc::new(WorkerPool::new(n)?)),
    };
    Ok(Shared {
        config: parent.config.clone(),
        authorizer: Arc::clone(&parent.authorizer),
        events: Arc::clone(&parent.events),
        commands: parent.commands.clone(),
        custom: parent.custom.clone(),
        features: parent.features.clone(),
        workers,
        charset: parent.charset,
        hash_pool: std::sync::OnceLock::new(),
        bans: parent.bans.clone(),
        bandwidth: Arc::clone(&parent.bandwidth),
        hosts: parent.hosts.clone(),
        metrics: parent.metrics.clone(),
        file_pool: std::sync::OnceLock::new(),
        fs_pool: std::sync::OnceLock::new(),
    })
}

/// Stands in for the acceptor in a multi-proc child: when the session reports its end,
/// it closes, which leaves the loop empty and ends the process.
struct SessionEnd;

impl Handler<Msg> for SessionEnd {
    fn source(&mut self) -> Option<&mut dyn Source> {
        None
    }

    fn interest(&self) -> Option<Interest> {
        None
    }

    fn on_ready(&mut self, _cx: &mut Ctx<'_, Msg>, _ready: Ready) {}

    fn on_message(&mut self, cx: &mut Ctx<'_, Msg>, msg: Msg) {
        if let Msg::ToServer(ServerEvent::SessionClosed { .. }) = msg {
            cx.close();
        }
    }
}

/// The read end of a child's exit pipe, as a loop source.
struct ExitPipe(File);

impl Source for ExitPipe {
    fn register(&mut self, r: &Registry, t: Token, i: MioInterest) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).register(r, t, i)
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: MioInterest) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).reregister(r, t, i)
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).deregister(r)
    }
}

/// Tells `notify` that child `id` ended (`ServerEvent::SessionClosed`) when its exit pipe
/// reaches EOF.
pub(super) struct ChildWatcher {
    pipe: ExitPipe,
    notify: Handle,
    id: u64,
}

impl ChildWatcher {
    pub(super) fn new(pipe: OwnedFd, notify: Handle, id: u64) -> ChildWatcher {
        ChildWatcher {
            pipe: ExitPipe(File::from(pipe)),
            notify,
            id,
        }
    }
}

impl Handler<Msg> for ChildWatcher {
    fn source(&mut self) -> Option<&mut dyn Source> {
        Some(&mut self.pipe)
    }

    fn interest(&self) -> Option<Interest> {
        Some(Interest::READABLE)
    }

    fn on_ready(&mut self, cx: &mut Ctx<'_, Msg>, _ready: Ready) {
        let mut buf = [0u8; 16];
        loop {
            match self.pipe.0.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {} // children write nothing; ignore it if one does
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => break,
            }
        }
        cx.send(
            self.notify,
            Msg::ToServer(ServerEvent::SessionClosed { id: self.id }),
        );
        cx.close();
    }
}

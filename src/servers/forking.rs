//! The forking models: multi-proc (a process per session, forked by the acceptor) and
//! pre-fork (a supervisor forks worker processes that each run a loop on the shared
//! listener, and replaces the ones that die).
//!
//! A parent learns that a child ended through a pipe: the child holds the write end and
//! never closes it, so its exit makes the read end (registered in the parent's loop)
//! readable with EOF. Children never return into the parent's code: they build their own
//! loop and end with `_exit`, so nothing the parent owns (its epoll registrations above
//! all) is torn down twice.

use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ioloop::mio::event::Source;
use ioloop::mio::net::TcpStream;
use ioloop::mio::unix::SourceFd;
use ioloop::mio::{Interest as MioInterest, Registry, Token};
use ioloop::{Ctx, Handle, Handler, Interest, IoLoop, Ready, TimerId};

use super::{worker_count, FtpServer, ServerAcceptor, ServerBuilder, SessionAddr, Shared};
use crate::config::Concurrency;
use crate::error::Error;
use crate::handlers::pool::WorkerPool;
use crate::handlers::{FtpHandler, Msg, ServerEvent, ServerLink, SessionCmd};
use crate::limits::SharedLimits;
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

/// Multi-proc: forks a process for the session just accepted. Returns where the session
/// lives, or None (the client is dropped) when the fork failed.
pub(super) fn start_process(
    acceptor: &mut ServerAcceptor,
    cx: &mut Ctx<'_, Msg>,
    stream: TcpStream,
    addr: SocketAddr,
    id: u64,
) -> Option<SessionAddr> {
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
            sys::close_inherited(acceptor.acceptor.listener().as_raw_fd());
            sys::follow_parent(parent);
            let code = match run_session(&acceptor.shared, stream, addr, id) {
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
                Ok(_) => Some(SessionAddr::Process(pid)),
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
    let end = session_loop.spawn(Box::new(SessionEnd))?;
    let handler = FtpHandler::new(stream, addr, ServerLink::Local(end), id, shared)?;
    let session = session_loop.spawn(Box::new(handler))?;
    super::run_with_signals(&mut session_loop, |lp| {
        lp.send(session, Msg::ToSession(SessionCmd::Shutdown));
    })
}

/// A copy of the parent's shared state with worker threads of the child's own (threads
/// do not survive fork).
fn child_shared(parent: &Shared) -> io::Result<Shared> {
    let workers = match parent.config.auth_workers {
        0 => None,
        n => Some(WorkerPool::new(n)?),
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
struct ChildWatcher {
    pipe: ExitPipe,
    notify: Handle,
    id: u64,
}

impl ChildWatcher {
    fn new(pipe: OwnedFd, notify: Handle, id: u64) -> ChildWatcher {
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
            Msg::ToServer(ServerEvent::SessionClosed {
                id: self.id,
                ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            }),
        );
        cx.close();
    }
}

/// Builds the pre-fork server: a loop holding the supervisor, which forks the workers on
/// its first pass (so building the server does not fork).
pub(super) fn pre_fork_server(
    builder: ServerBuilder,
    listener: std::net::TcpListener,
) -> Result<FtpServer, Error> {
    let local_addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listen address", e))?;
    let workers = worker_count(&builder.server);
    let limits = Arc::new(
        SharedLimits::new(
            workers,
            builder.server.max_cons,
            builder.server.max_cons_per_ip,
        )
        .map_err(|e| Error::io("mapping the session counters", e))?,
    );
    // The start-up log reads the options from it; no worker threads before a fork.
    let shared = builder.shared(false)?;
    let server = builder.server.clone();
    let mut ioloop = IoLoop::new().map_err(|e| Error::io("creating the poller", e))?;
    let supervisor = Supervisor {
        builder,
        listener: Some(listener),
        limits,
        workers: (0..workers).map(|_| None).collect(),
        stopping: false,
        parent: sys::process_id(),
    };
    let acceptor = ioloop
        .spawn(Box::new(supervisor))
        .map_err(|e| Error::io("starting the supervisor", e))?;
    Ok(FtpServer {
        ioloop,
        acceptor,
        local_addr,
        shared,
        server,
        siblings: Vec::new(),
    })
}

/// A running pre-fork worker.
struct Worker {
    pid: libc::pid_t,
    started: Instant,
}

/// Keeps `workers.len()` worker processes serving the listener; restarts one that dies
/// abnormally (after a second if it died within a second of starting, so a worker that
/// cannot start does not make the supervisor spin), forwards graceful and immediate
/// stops to them.
struct Supervisor {
    builder: ServerBuilder,
    /// Kept for replacing workers; dropped when stopping, so the port closes once the
    /// workers have closed theirs.
    listener: Option<std::net::TcpListener>,
    limits: Arc<SharedLimits>,
    workers: Vec<Option<Worker>>,
    stopping: bool,
    parent: libc::pid_t,
}

impl Supervisor {
    fn fill(&mut self, cx: &mut Ctx<'_, Msg>) {
        for slot in 0..self.workers.len() {
            if self.workers[slot].is_none() && !self.stopping {
                if let Err(e) = self.fork_worker(cx, slot) {
                    log::error!("cannot start worker {slot}: {e}; retrying in 1 s");
                    cx.call_later(Duration::from_secs(1));
                    return;
                }
            }
        }
    }

    fn fork_worker(&mut self, cx: &mut Ctx<'_, Msg>, slot: usize) -> io::Result<()> {
        let (exit_pipe, exit_pipe_child) = sys::pipe()?;
        let listener = match &self.listener {
            Some(l) => l.try_clone()?,
            None => return Ok(()), // stopping
        };
        let mut builder = self.builder.clone();
        builder.server.concurrency = Concurrency::Async;
        builder.limits = Some((Arc::clone(&self.limits), slot));
        match sys::fork()? {
            Forked::Child => {
                drop(exit_pipe);
                sys::follow_parent(self.parent);
                let code = match run_worker(builder, listener) {
                    Ok(()) => 0,
                    Err(e) => {
                        log::error!("worker {slot} failed: {e}");
                        1
                    }
                };
                drop(exit_pipe_child);
                sys::exit_process(code)
            }
            Forked::Parent(pid) => {
                drop(exit_pipe_child);
                let watcher = ChildWatcher::new(exit_pipe, cx.me(), slot as u64);
                if let Err(e) = cx.spawn(Box::new(watcher)) {
                    stop_now(pid);
                    let _ = sys::reap(pid, true);
                    return Err(e);
                }
                log::debug!("worker {slot} started, pid={pid}");
                self.workers[slot] = Some(Worker {
                    pid,
                    started: Instant::now(),
                });
                Ok(())
            }
        }
    }

    fn worker_ended(&mut self, cx: &mut Ctx<'_, Msg>, slot: usize) {
        let Some(worker) = self.workers.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let status = sys::reap(worker.pid, true).unwrap_or(-1);
        // Whatever it held is gone with it.
        self.limits.release_owner(slot);
        if !self.stopping && status != 0 {
            log::warn!(
                "worker {slot} (pid={}) ended with status {status}; restarting it",
                worker.pid
            );
            if worker.started.elapsed() < Duration::from_secs(1) {
                cx.call_later(Duration::from_secs(1));
            } else {
                self.fill(cx);
            }
            return;
        }
        log::debug!("worker {slot} (pid={}) ended", worker.pid);
        if self.workers.iter().all(Option::is_none) {
            cx.close();
        }
    }
}

/// The life of a pre-fork worker: one loop on the shared listener until stopped.
fn run_worker(builder: ServerBuilder, listener: std::net::TcpListener) -> Result<(), Error> {
    sys::reset_exit_signals();
    sys::install_exit_signals();
    let mut server = builder.single_loop(listener)?;
    let acceptor = server.acceptor;
    super::run_with_signals(&mut server.ioloop, |lp| {
        lp.send(acceptor, Msg::ToServer(ServerEvent::Shutdown));
    })
    .map_err(|e| Error::io("polling", e))
}

impl Handler<Msg> for Supervisor {
    fn source(&mut self) -> Option<&mut dyn Source> {
        None
    }

    fn interest(&self) -> Option<Interest> {
        None
    }

    fn on_start(&mut self, cx: &mut Ctx<'_, Msg>) {
        // Fork on the loop's first pass, not while the server is being built.
        cx.call_later(Duration::ZERO);
    }

    fn on_ready(&mut self, _cx: &mut Ctx<'_, Msg>, _ready: Ready) {}

    fn on_timer(&mut self, cx: &mut Ctx<'_, Msg>, _timer: TimerId) {
        self.fill(cx);
    }

    fn on_message(&mut self, cx: &mut Ctx<'_, Msg>, msg: Msg) {
        match msg {
            Msg::ToServer(ServerEvent::SessionClosed { id, .. }) => {
                self.worker_ended(cx, usize::try_from(id).unwrap_or(usize::MAX));
            }
            Msg::ToServer(ServerEvent::Shutdown) => {
                self.stopping = true;
                self.listener = None;
                for w in self.workers.iter().flatten() {
                    stop_gracefully(w.pid);
                }
                if self.workers.iter().all(Option::is_none) {
                    cx.close();
                }
            }
            _ => {}
        }
    }

    fn on_close(&mut self, _cx: &mut Ctx<'_, Msg>) {
        for w in self.workers.iter().flatten() {
            stop_now(w.pid);
        }
    }
}

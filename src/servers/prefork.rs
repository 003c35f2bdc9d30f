//! The pre-fork model: a supervisor forks worker processes that each run a loop on the
//! shared listener, counting sessions in one shared table, and replaces the ones that die.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ioloop::mio::event::Source;
use ioloop::{Ctx, Handle, Handler, Interest, IoLoop, Ready, TimerId};

use super::builder::ServerBuilder;
use super::forking::{stop_gracefully, stop_now, ChildWatcher};
use super::reload::{order, ReloadHook, ReloadRequest};
use super::server::{sessions_per_process, worker_count, FtpServer, SIGNAL_CHECK};
use crate::config::Concurrency;
use crate::error::Error;
use crate::handlers::shared::ReloadOrder;
use crate::handlers::{Msg, ServerEvent};
use crate::limits::SharedLimits;
use crate::sys::{self, Forked};

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
        .map_err(|e| Error::io("mapping the session counters", e))?
        // Each worker's descriptors, as the worker count was sized.
        .with_share(sessions_per_process(sys::nofile_limit())),
    );
    // The start-up log reads the options from it; no worker threads before a fork.
    let shared = builder.shared(false)?;
    let server = builder.server.clone();
    let reload_hook = builder.reload_hook.clone();
    let mut ioloop = IoLoop::new().map_err(|e| Error::io("creating the poller", e))?;
    let listen_fds = vec![std::os::fd::AsRawFd::as_raw_fd(&listener)];
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
        listen_fds,
        metrics: None,
        reload_hook,
        signals_at_build: super::server::SignalCounts::now(),
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
                super::metrics_endpoint::close_in_child();
                sys::follow_parent(self.parent);
                let code = match run_worker(builder, listener, self.parent, slot) {
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

impl Supervisor {
    /// A reload: the workers forked from now on get the new settings; the running ones
    /// are sent SIGHUP, on which they read the settings again through the reload hook
    /// (their sessions keep theirs). Without a hook, only new workers get them.
    fn reload(&mut self, order: ReloadOrder) {
        let ReloadOrder { reload, done, warn } = order;
        match reload.settle(&self.builder.handler, warn) {
            Ok(reload) => {
                if let Some(handler) = reload.handler {
                    self.builder.handler = handler;
                }
                if let Some(authorizer) = reload.authorizer {
                    self.builder.authorizer = authorizer;
                }
                if self.builder.reload_hook.is_some() {
                    for w in self.workers.iter().flatten() {
                        sys::signal_process(w.pid, libc::SIGHUP);
                    }
                } else {
                    log::warn!(
                        "reload: running pre-fork workers keep their settings (no reload \
                         hook); workers started from now on get the new ones"
                    );
                }
            }
            Err(e) => log::error!("reload failed, keeping the old settings: {e}"),
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
}

/// The life of a pre-fork worker: one loop on the shared listener until stopped. With
/// hand-overs on, a SIGUSR2 from the supervisor (`parent`) means another process serves
/// the listener now: stop accepting without touching it. One from anyone else (`kill`
/// on the whole service) is ignored: only the supervisor starts a hand-over. SIGHUP
/// (forwarded by the supervisor, which has read the settings already) makes it ask the
/// reload hook for them again and hand them to its acceptor.
fn run_worker(
    builder: ServerBuilder,
    listener: std::net::TcpListener,
    parent: libc::pid_t,
    slot: usize,
) -> Result<(), Error> {
    sys::reset_exit_signals();
    sys::install_exit_signals();
    let hand_over = builder.server.hand_over;
    if hand_over {
        sys::reset_handover_signals();
        sys::install_handover_signal();
    }
    let hook = builder.reload_hook.clone();
    if hook.is_some() {
        sys::install_reload_signal();
    }
    let mut server = builder.single_loop(listener)?;
    let acceptor = server.acceptor;
    let mut handover_seen = 0;
    let mut exit_seen = 0;
    // The count is inherited from the supervisor at fork: only later ones are for us.
    let mut reloads_seen = sys::reload_signals_received();
    let lp = &mut server.ioloop;
    while !lp.is_empty() {
        let reloads = sys::reload_signals_received();
        if reloads > reloads_seen {
            reloads_seen = reloads;
            if let Some(hook) = &hook {
                reload_worker(lp, hook, acceptor, slot);
            }
        }
        let exits = sys::exit_signals_received();
        if exits > exit_seen {
            exit_seen = exits;
            if exits == 1 {
                lp.send(acceptor, Msg::ToServer(ServerEvent::Shutdown));
            } else {
                lp.close_all();
                break;
            }
        }
        let (handovers, sender) = sys::handover_signals_received();
        if hand_over && handovers > handover_seen {
            handover_seen = handovers;
            if sender == parent {
                lp.send(acceptor, Msg::ToServer(ServerEvent::HandOver));
            } else {
                log::warn!(
                    "SIGUSR2 from pid {sender} ignored by a pre-fork worker: send it to the \
                     server's main process, pid {parent}"
                );
            }
        }
        lp.run_once(Some(SIGNAL_CHECK))
            .map_err(|e| Error::io("polling", e))?;
    }
    Ok(())
}

/// A worker's reload: the settings read again through `hook`, handed to its acceptor
/// and delivered at once, so that the line logged means it (a client that connects
/// after it gets the new settings).
fn reload_worker(lp: &mut IoLoop<Msg>, hook: &ReloadHook, acceptor: Handle, slot: usize) {
    match hook.call(&ReloadRequest::worker(slot)) {
        Ok(reload) => {
            lp.send(acceptor, order(reload, None, false));
            match lp.run_once(Some(Duration::ZERO)) {
                Ok(()) => log::info!("worker {slot}: reload done"),
                Err(e) => log::error!("worker {slot}: reload: {e}"),
            }
        }
        Err(e) => log::error!("worker {slot}: reload failed, keeping the old settings: {e}"),
    }
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
            Msg::ToServer(ServerEvent::HandOver) if !self.stopping => {
                // The new process serves the listener: closing this descriptor leaves it
                // listening. The workers stop accepting on theirs likewise, on SIGUSR2
                // from this process (see `run_worker`).
                self.stopping = true;
                self.listener = None;
                for w in self.workers.iter().flatten() {
                    sys::signal_process(w.pid, libc::SIGUSR2);
                }
                if self.workers.iter().all(Option::is_none) {
                    cx.close();
                }
            }
            Msg::ToServer(ServerEvent::Reload(order)) => self.reload(*order),
            Msg::ToServer(ServerEvent::CountSessions { reply_to }) => {
                let open = self.limits.total();
                cx.send(reply_to, Msg::ToServer(ServerEvent::SessionCount(open)));
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

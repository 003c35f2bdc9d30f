//! The public face of a built server: [`FtpServer`] (the loop and its acceptor, pyftpdlib's
//! `serve_forever`), [`ServerHandle`] to stop it from another thread, [`RunningServer`]
//! for one running on a thread of its own, and the signal-watching loop the models share.
//! Everything else in `servers` builds on these types, so they depend on nothing there.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ioloop::{Handle, IoLoop, LoopHandle};

use super::handover::Restarts;
use super::reload::ReloadHook;
use crate::config::{Concurrency, ServerConfig};
use crate::error::Error;
use crate::handlers::shared::Shared;
use crate::handlers::{Msg, ServerEvent};
use crate::systemd::{Notifier, NotifyPlan, SystemdNotify};

/// An FTP server: a listener and the event loop that serves its sessions.
pub struct FtpServer {
    pub(super) ioloop: IoLoop<Msg>,
    pub(super) acceptor: Handle,
    pub(super) local_addr: SocketAddr,
    pub(super) shared: Arc<Shared>,
    pub(super) server: ServerConfig,
    /// The other loops of the multi-loop model, each on its own thread.
    pub(super) siblings: Vec<Sibling>,
    /// The listening sockets' descriptors (one per loop of the multi-loop model), held
    /// open by the acceptors (or the pre-fork supervisor) while they accept: what a
    /// hand-over passes on.
    pub(super) listen_fds: Vec<std::os::fd::RawFd>,
    /// The metrics endpoint, when served (see `metrics_endpoint`).
    pub(super) metrics: Option<super::metrics_endpoint::Endpoint>,
    /// What reads the settings again on SIGHUP.
    pub(super) reload_hook: Option<ReloadHook>,
    /// The SIGUSR2 and SIGHUP counted when the server was built: those that come after
    /// are acted on when [`FtpServer::serve_forever`] runs.
    pub(super) signals_at_build: SignalCounts,
}

/// How many hand-over (SIGUSR2) and reload (SIGHUP) signals the process has counted.
#[derive(Debug, Clone, Copy)]
pub(super) struct SignalCounts {
    pub(super) handovers: usize,
    pub(super) reloads: usize,
}

impl SignalCounts {
    pub(super) fn now() -> SignalCounts {
        SignalCounts {
            handovers: crate::sys::handover_signals_received().0,
            reloads: crate::sys::reload_signals_received(),
        }
    }
}

/// A loop of the multi-loop model running on a thread of its own.
pub(super) struct Sibling {
    pub(super) handle: LoopHandle<Msg>,
    pub(super) acceptor: Handle,
    pub(super) thread: Option<std::thread::JoinHandle<()>>,
}

/// Stops a running server from any thread.
#[derive(Clone)]
pub struct ServerHandle {
    handle: LoopHandle<Msg>,
    acceptor: Handle,
    /// The other loops' (multi-loop model) handles and acceptors.
    siblings: Arc<[(LoopHandle<Msg>, Handle)]>,
}

/// A server running on a thread of its own
/// ([`ServerBuilder::spawn`](super::ServerBuilder::spawn)). Dropping it closes every
/// session and joins the thread.
pub struct RunningServer {
    pub(super) local_addr: SocketAddr,
    pub(super) handle: ServerHandle,
    pub(super) thread: Option<std::thread::JoinHandle<Result<(), Error>>>,
}

impl FtpServer {
    /// The address the server listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle to stop the server from another thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            handle: self.ioloop.handle(),
            acceptor: self.acceptor,
            siblings: self
                .siblings
                .iter()
                .map(|s| (s.handle.clone(), s.acceptor))
                .collect(),
        }
    }

    /// Serves until stopped through a [`ServerHandle`] or, with `handle_exit`, by signals:
    /// the first SIGINT / SIGTERM stops gracefully (no new sessions, idle ones end, running
    /// transfers finish), a second one closes everything at once. Logs pyftpdlib's
    /// start-up and shut-down lines. With
    /// [`ServerBuilder::notify_systemd`](super::ServerBuilder::notify_systemd), tells
    /// systemd when it is ready and when it stops.
    ///
    /// # Errors
    /// When polling fails.
    pub fn serve_forever(&mut self, handle_exit: bool) -> Result<(), Error> {
        self.log_startup();
        let reload_on_hup = handle_exit && self.reload_hook.is_some();
        if handle_exit {
            crate::sys::install_exit_signals();
        }
        let seen = self.signals_at_build;
        let mut restarts =
            (handle_exit && self.server.hand_over).then(|| Restarts::install(seen.handovers));
        // The builder installed it before binding (see `install_requested_signals`); a
        // server built from parts without the builder's bind gets it here, before the
        // notifier says READY=1, which systemd may answer with a SIGHUP at once.
        if reload_on_hup {
            crate::sys::install_reload_signal();
        }
        let mut reloads_seen = seen.reloads;
        // Before the first session: start-up's freed memory leaves the resident set.
        crate::sys::release_free_heap();
        let plan = NotifyPlan::from_env();
        let service_address = plan.service_address.clone();
        let (mut service, notify_handler) = self.start_notifier(plan);
        // The notifier's handler lives as long as the loop serves; the server has ended
        // when only it is left.
        let mut own_handlers = usize::from(notify_handler.is_some());
        let mut signals_seen = 0;
        let mut stats = LoopStats::new();
        while self.ioloop.len() > own_handlers + self.metrics_handlers() {
            let reloads = crate::sys::reload_signals_received();
            if reload_on_hup && reloads > reloads_seen {
                reloads_seen = reloads;
                self.reload_on_signal(service.as_ref());
            }
            if handle_exit {
                let signals = crate::sys::exit_signals_received();
                if signals > signals_seen {
                    signals_seen = signals;
                    // pyftpdlib's line for Ctrl-C; a service manager's stop says so.
                    if crate::sys::last_exit_signal_was_term() {
                        log::info!("received SIGTERM");
                    } else {
                        log::info!("received interrupt signal");
                    }
                    if let Some(r) = &mut restarts {
                        r.abort();
                    }
                    if signals == 1 {
                        if let Some(n) = &service {
                            n.send("STOPPING=1");
                        }
                        self.ioloop
                            .send(self.acceptor, Msg::ToServer(ServerEvent::Shutdown));
                        for s in &self.siblings {
                            let _ = s
                                .handle
                                .send(s.acceptor, Msg::ToServer(ServerEvent::Shutdown));
                        }
                    } else {
                        break;
                    }
                }
            }
            if let Some(r) = &mut restarts {
                let handed_over = self.check_restart(
                    r,
                    signals_seen > 0,
                    service.as_ref(),
                    service_address.as_deref(),
                    notify_handler,
                );
                if handed_over {
                    // The notifier handler closes: the new process notifies systemd, and
                    // this one says nothing more (a STOPPING=1 would stop the service).
                    own_handlers = 0;
                    service = None;
                }
            }
            let wait = match restarts.as_ref().and_then(Restarts::poll_interval) {
                Some(poll) => Some(poll),
                None => handle_exit.then_some(SIGNAL_CHECK),
            };
            match self.ioloop.run_once(wait) {
                Ok(()) => {}
                Err(e) => return Err(Error::io("polling", e)),
            }
            stats.tick(&self.ioloop);
        }
        let open = self
            .ioloop
            .len()
            .saturating_sub(own_handlers + self.metrics_handlers());
        let immediate = open > 0;
        self.ioloop.close_all();
        // The sibling loops end with their last session; a second signal closes them.
        let mut closed_siblings = false;
        while self
            .siblings
            .iter()
            .any(|s| s.thread.as_ref().is_some_and(|t| !t.is_finished()))
        {
            let insisted = handle_exit && crate::sys::exit_signals_received() >= 2;
            if (immediate || insisted) && !closed_siblings {
                closed_siblings = true;
                for s in &self.siblings {
                    let _ = s.handle.close_all();
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for s in &mut self.siblings {
            if let Some(t) = s.thread.take() {
                let _ = t.join();
            }
        }
        log::info!(
            ">>> shutting down FTP server, pid={}, {} open socket(s) <<<",
            std::process::id(),
            open
        );
        Ok(())
    }

    /// SIGHUP: the settings read again through the reload hook, between systemd's
    /// `RELOADING=1` (with the `MONOTONIC_USEC=` that `Type=notify-reload` requires) and
    /// `READY=1`, which follows a failed reload too: the server serves either way.
    fn reload_on_signal(&mut self, notifier: Option<&Notifier>) {
        log::info!("received SIGHUP, reloading the settings for new sessions");
        if let Some(n) = notifier {
            n.send(&format!(
                "RELOADING=1\nMONOTONIC_USEC={}",
                crate::sys::monotonic_usec()
            ));
        }
        self.reload_from_hook();
        if let Some(n) = notifier {
            n.send("READY=1");
        }
    }

    /// Starts the systemd notifier when asked for and `NOTIFY_SOCKET` is set (or, in a
    /// process started by a hand-over, to tell the old process it is ready): its handler
    /// joins the loop. Returns systemd's notifier, the one `STOPPING=1` and `MAINPID=`
    /// go through, and the handler.
    fn start_notifier(&mut self, plan: NotifyPlan) -> (Option<Notifier>, Option<Handle>) {
        let NotifyPlan {
            predecessor,
            service,
            ..
        } = plan;
        let service = service.filter(|_| self.server.notify_systemd);
        let predecessor =
            predecessor.filter(|_| self.server.notify_systemd || self.server.hand_over);
        if service.is_none() && predecessor.is_none() {
            return (None, None);
        }
        let for_handler = match service.as_ref().map(Notifier::try_clone).transpose() {
            Ok(n) => n,
            Err(e) => {
                log::warn!("cannot start the systemd notifier: {e}");
                return (None, None);
            }
        };
        let handler = SystemdNotify::new(for_handler, predecessor, self.acceptor);
        match self.ioloop.spawn(Box::new(handler)) {
            Ok(h) => (service, Some(h)),
            Err(e) => {
                log::warn!("cannot start the systemd notifier: {e}");
                (None, None)
            }
        }
    }

    /// Runs the loop until it is empty, with no signal handling and no log lines (but the
    /// loop counts, when asked for): a sibling loop of the multi-loop model, or a pre-fork
    /// worker.
    pub(super) fn run_quietly(&mut self) -> io::Result<()> {
        let mut stats = LoopStats::new();
        while !self.ioloop.is_empty() {
            self.ioloop.run_once(None)?;
            stats.tick(&self.ioloop);
        }
        Ok(())
    }

    /// One pass of the loop, waiting at most `timeout` (pyftpdlib's
    /// `serve_forever(blocking=False)`): lets a host program drive the server.
    ///
    /// # Errors
    /// When polling fails.
    pub fn poll_once(&mut self, timeout: Duration) -> Result<(), Error> {
        self.ioloop
            .run_once(Some(timeout))
            .map_err(|e| Error::io("polling", e))
    }

    /// How long a host loop waiting on this server's descriptor ([`AsFd`](std::os::fd::AsFd)) may sleep
    /// before the next [`poll_once`](Self::poll_once)`(Duration::ZERO)`: zero while work is
    /// queued, the time to the next timer (idle timeouts, the failed-login delay), or None
    /// when no timer runs (wait for the descriptor alone).
    ///
    /// ```no_run
    /// # use std::os::fd::AsRawFd;
    /// # use std::time::Duration;
    /// # fn f(mut server: ftpdlib::servers::FtpServer) -> Result<(), ftpdlib::Error> {
    /// loop {
    ///     let mut fds = [libc::pollfd { fd: server.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
    ///     let wait = server.next_timeout().map_or(-1, |t| t.as_millis().min(60_000) as i32);
    ///     // SAFETY: one valid pollfd.
    ///     unsafe { libc::poll(fds.as_mut_ptr(), 1, wait) };
    ///     server.poll_once(Duration::ZERO)?;
    /// }
    /// # }
    /// ```
    pub fn next_timeout(&mut self) -> Option<Duration> {
        self.ioloop.next_timeout()
    }

    /// Closes the listener and every session now.
    pub fn close_all(&mut self) {
        for s in &self.siblings {
            let _ = s.handle.close_all();
        }
        self.ioloop.close_all();
    }

    /// The number of live handlers in the loop (listener, sessions, data channels).
    pub fn handler_count(&self) -> usize {
        self.ioloop.len()
    }

    /// The number of timers scheduled in the loop.
    pub fn timer_count(&self) -> usize {
        self.ioloop.timer_count()
    }

    fn log_startup(&self) {
        let cfg = &self.shared.config;
        log::info!("concurrency model: {}", self.server.concurrency.name());
        if matches!(
            self.server.concurrency,
            Concurrency::PreFork | Concurrency::MultiLoop
        ) {
            log::info!("workers: {}", worker_count(&self.server));
        }
        log::info!(
            "masquerade (NAT) address: {}",
            cfg.masquerade_address
                .map_or_else(|| "None".to_owned(), |a| a.to_string())
        );
        match &cfg.passive_ports {
            Some(r) => log::info!("passive ports: {}->{}", r.start(), r.end()),
            None => log::info!("passive ports: None"),
        }
        log::debug!("poller: 'mio (epoll)'");
        log::debug!("use sendfile(): {}", cfg.use_sendfile);
        log::debug!("max connections: {}", limit_text(self.server.max_cons));
        log::debug!(
            "max connections per ip: {}",
            limit_text(self.server.max_cons_per_ip)
        );
        log::debug!("timeout: {}", cfg.timeout.map_or(0, |t| t.as_secs()));
        log::debug!("banner: '{}'", cfg.banner);
        log::debug!("max login attempts: {}", cfg.max_login_attempts);
        self.warn_about_caps();
        if let Some(tls) = &cfg.tls {
            log::debug!(
                "TLS: {}, control required: {}, data required: {}, session reuse required: {}",
                if tls.implicit {
                    "implicit"
                } else {
                    "explicit (AUTH TLS)"
                },
                tls.control_required,
                tls.data_required,
                tls.require_session_reuse
            );
        }
        let proto = if cfg.tls.is_some() {
            "FTPS (FTP over SSL)"
        } else {
            "FTP"
        };
        log::info!(
            ">>> starting {proto} server on {}, pid={} <<<",
            self.local_addr,
            std::process::id()
        );
    }
}

impl FtpServer {
    /// Says at start-up when a limit of the process or the kernel will cap the server below
    /// what it was asked for: the open-files limit below `max_cons` sessions (or any,
    /// when `max_cons` is 0), a backlog the kernel cuts down.
    fn warn_about_caps(&self) {
        let cfg = &self.server;
        let nofile = crate::sys::nofile_limit();
        let per_process = sessions_per_process(nofile);
        let processes = match cfg.concurrency {
            Concurrency::PreFork => worker_count(cfg),
            // One process per session: the parent holds nothing per session for long.
            Concurrency::MultiProc => usize::MAX,
            Concurrency::Async | Concurrency::MultiThread | Concurrency::MultiLoop => 1,
        };
        let capacity = per_process.saturating_mul(processes);
        let limit = nofile.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
        if cfg.max_cons == 0 && capacity < usize::MAX / 2 {
            log::warn!(
                "max connections unlimited, but the open-files limit ({limit} per process) \
                 holds about {capacity} sessions; raise it (ulimit -n, LimitNOFILE=) for more"
            );
        } else if cfg.max_cons > capacity {
            log::warn!(
                "max connections {} but the open-files limit ({limit} per process, {processes} \
                 process(es)) holds about {capacity} sessions; raise it (ulimit -n, \
                 LimitNOFILE=){}",
                cfg.max_cons,
                if cfg.concurrency == Concurrency::PreFork {
                    " or add workers"
                } else {
                    ""
                }
            );
        }
        if let Some(max) = crate::sys::somaxconn() {
            if u64::try_from(cfg.backlog).unwrap_or(0) > max {
                log::warn!(
                    "listen backlog {} is cut to {max} by the kernel (net.core.somaxconn)",
                    cfg.backlog
                );
            }
        }
    }
}

impl Drop for FtpServer {
    fn drop(&mut self) {
        for s in &mut self.siblings {
            if let Some(t) = s.thread.take() {
                let _ = s.handle.close_all();
                let _ = t.join();
            }
        }
    }
}

fn limit_text(n: usize) -> String {
    if n == 0 {
        "unlimited".to_owned()
    } else {
        n.to_string()
    }
}

impl ServerHandle {
    /// Every loop's handle and acceptor, this one first.
    pub(super) fn loops(&self) -> Vec<(LoopHandle<Msg>, Handle)> {
        std::iter::once((self.handle.clone(), self.acceptor))
            .chain(self.siblings.iter().cloned())
            .collect()
    }

    /// Closes the listener and every session at once; `serve_forever` then returns.
    /// Transfers in progress are cut (reported as incomplete).
    ///
    /// # Errors
    /// When the loop cannot be woken.
    pub fn stop(&self) -> io::Result<()> {
        for (handle, _) in self.siblings.iter() {
            let _ = handle.close_all();
        }
        self.handle.close_all()
    }

    /// Stops gracefully: the listener closes, idle sessions get `421 Server shutting
    /// down.`, sessions with a transfer end after it; `serve_forever` returns when the
    /// last one is gone.
    ///
    /// # Errors
    /// When the loop cannot be woken.
    pub fn shutdown(&self) -> io::Result<()> {
        for (handle, acceptor) in self.siblings.iter() {
            let _ = handle.send(*acceptor, Msg::ToServer(ServerEvent::Shutdown));
        }
        self.handle
            .send(self.acceptor, Msg::ToServer(ServerEvent::Shutdown))
    }
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle to stop it from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Stops gracefully (see [`ServerHandle::shutdown`]); sessions still alive after
    /// `deadline` are closed. Returns once the server thread has ended.
    ///
    /// # Errors
    /// The server thread's error, if it failed.
    pub fn stop(mut self, deadline: Duration) -> Result<(), Error> {
        let _ = self.handle.shutdown();
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let until = std::time::Instant::now() + deadline;
        while !thread.is_finished() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        if !thread.is_finished() {
            let _ = self.handle.stop();
        }
        join(thread)
    }

    /// Closes every session now and waits for the server thread.
    ///
    /// # Errors
    /// The server thread's error, if it failed.
    pub fn close_all(mut self) -> Result<(), Error> {
        let _ = self.handle.stop();
        match self.thread.take() {
            Some(t) => join(t),
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.handle.stop();
            let _ = join(t);
        }
    }
}

pub(super) fn join(t: std::thread::JoinHandle<Result<(), Error>>) -> Result<(), Error> {
    t.join()
        .unwrap_or_else(|_| Err(Error::Config("the server thread panicked".into())))
}

/// How long a loop that watches for exit signals sleeps at most: a signal that lands
/// between the check and epoll_wait is seen within this time.
pub(super) const SIGNAL_CHECK: Duration = Duration::from_secs(1);

/// Runs `lp` until it is empty, watching SIGINT / SIGTERM: the first calls `on_first`
/// (a graceful stop), a second closes everything; and SIGHUP, which calls `on_reload`
/// (when its handler is installed).
pub(super) fn run_with_signals(
    lp: &mut IoLoop<Msg>,
    mut on_first: impl FnMut(&mut IoLoop<Msg>),
    mut on_reload: impl FnMut(&mut IoLoop<Msg>),
) -> io::Result<()> {
    let mut seen = 0;
    let mut stats = LoopStats::new();
    let mut reloads_seen = 0;
    while !lp.is_empty() {
        let reloads = crate::sys::reload_signals_received();
        if reloads > reloads_seen {
            reloads_seen = reloads;
            on_reload(lp);
        }
        let signals = crate::sys::exit_signals_received();
        if signals > seen {
            seen = signals;
            if signals == 1 {
                on_first(lp);
            } else {
                lp.close_all();
                break;
            }
        }
        lp.run_once(Some(SIGNAL_CHECK))?;
        stats.tick(lp);
    }
    Ok(())
}

/// The log target of the loop's periodic counts: `RUST_LOG=ftpdlib::loop_stats=debug`
/// turns them on without the rest of the debug output (one line per command).
const LOOP_STATS_TARGET: &str = "ftpdlib::loop_stats";

/// How often a loop that watches for signals logs its counts when asked to.
const LOOP_STATS_EVERY: Duration = Duration::from_secs(10);

/// The loop's handler and timer counts, logged at debug level under
/// [`LOOP_STATS_TARGET`] every [`LOOP_STATS_EVERY`] (with the process and thread ids, as
/// the loops of multi-loop share a process): a long run (the soak benchmark) reads
/// from outside whether sessions leave handlers or timers behind. It is read by the code
/// that drives the loop, between passes, so it adds no handler and no timer of its own to
/// the counts it reports; when the target is off it costs one comparison per pass.
struct LoopStats {
    next: Option<Instant>,
}

impl LoopStats {
    fn new() -> LoopStats {
        let on = log::log_enabled!(target: LOOP_STATS_TARGET, log::Level::Debug);
        LoopStats {
            next: on.then(Instant::now),
        }
    }

    fn tick(&mut self, lp: &IoLoop<Msg>) {
        let Some(next) = self.next else {
            return;
        };
        let now = Instant::now();
        if now < next {
            return;
        }
        self.next = Some(now + LOOP_STATS_EVERY);
        log::debug!(
            target: LOOP_STATS_TARGET,
            "loop: pid={} tid={} {} handlers, {} timers",
            std::process::id(),
            rustix::thread::gettid().as_raw_nonzero(),
            lp.len(),
            lp.timer_count()
        );
    }
}

/// The number of pre-fork workers or multi-loop loops: as configured, or one per CPU.
pub(super) fn worker_count(config: &ServerConfig) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    match (config.workers, config.concurrency) {
        // Pre-fork sizes itself: enough processes for max_cons sessions under the
        // open-files limit each process has (each holds its own descriptors).
        (0, Concurrency::PreFork) if config.max_cons > 0 => {
            let per_worker = sessions_per_process(crate::sys::nofile_limit());
            cpus.max(config.max_cons.div_ceil(per_worker))
        }
        (0, _) => cpus,
        (n, _) => n,
    }
}

/// About how many sessions one process holds under an open-files limit of `nofile`: a
/// descriptor each, four fifths of the limit, so that a fifth of them can have a data
/// connection open at once (and the process its few files and listeners).
pub(super) fn sessions_per_process(nofile: Option<u64>) -> usize {
    let nofile = nofile.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    (nofile / 5 * 4).max(1)
}

/// The loop's poller descriptor: readable when the server has work, so a program with a
/// loop of its own (poll(2), another mio `Poll`, tokio's `AsyncFd`, glib) waits on it and
/// calls [`FtpServer::poll_once`]`(Duration::ZERO)`, timers honoured through
/// [`FtpServer::next_timeout`]. Only the first loop's: with the multi-loop model the other
/// loops run on threads of their own.
impl std::os::fd::AsFd for FtpServer {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.ioloop.as_fd()
    }
}

impl std::os::fd::AsRawFd for FtpServer {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.ioloop.as_raw_fd()
    }
}

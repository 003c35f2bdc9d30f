//! The public face of a built server: [`FtpServer`] (the loop and its acceptor, pyftpdlib's
//! `serve_forever`), [`ServerHandle`] to stop it from another thread, [`RunningServer`]
//! for one running on a thread of its own, and the signal-watching loop the models share.
//! Everything else in `servers` builds on these types, so they depend on nothing there.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ioloop::{Handle, IoLoop, LoopHandle};

use super::reload::ReloadHook;
use crate::config::{Concurrency, ServerConfig};
use crate::error::Error;
use crate::handlers::shared::Shared;
use crate::handlers::{Msg, ServerEvent};
use crate::systemd::{Notifier, SystemdNotify};

/// An FTP server: a listener and the event loop that serves its sessions.
pub struct FtpServer {
    pub(super) ioloop: IoLoop<Msg>,
    pub(super) acceptor: Handle,
    pub(super) local_addr: SocketAddr,
    pub(super) shared: Arc<Shared>,
    pub(super) server: ServerConfig,
    /// The other loops of the multi-loop model, each on its own thread.
    pub(super) siblings: Vec<Sibling>,
    /// What reads the settings again on SIGHUP.
    pub(super) reload_hook: Option<ReloadHook>,
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
        if reload_on_hup {
            crate::sys::install_reload_signal();
        }
        let notifier = self.start_notifier();
        // The notifier's handler lives as long as the loop serves; the server has ended
        // when only it is left.
        let own_handlers = usize::from(notifier.is_some());
        let mut signals_seen = 0;
        let mut reloads_seen = crate::sys::reload_signals_received();
        while self.ioloop.len() > own_handlers {
            let reloads = crate::sys::reload_signals_received();
            if reload_on_hup && reloads > reloads_seen {
                reloads_seen = reloads;
                self.reload_on_signal(notifier.as_ref());
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
                    if signals == 1 {
                        if let Some(n) = &notifier {
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
            let wait = handle_exit.then_some(SIGNAL_CHECK);
            match self.ioloop.run_once(wait) {
                Ok(()) => {}
                Err(e) => return Err(Error::io("polling", e)),
            }
        }
        let open = self.ioloop.len().saturating_sub(own_handlers);
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

    /// Starts the systemd notifier when asked for and `NOTIFY_SOCKET` is set: its handler
    /// joins the loop; the returned notifier is the one `STOPPING=1` goes through.
    fn start_notifier(&mut self) -> Option<Notifier> {
        if !self.server.notify_systemd {
            return None;
        }
        let notifier = Notifier::from_env()?;
        let started = notifier.try_clone().and_then(|n| {
            self.ioloop
                .spawn(Box::new(SystemdNotify::new(n, self.acceptor)))
        });
        match started {
            Ok(_) => Some(notifier),
            Err(e) => {
                log::warn!("cannot start the systemd notifier: {e}");
                None
            }
        }
    }

    /// Runs the loop until it is empty, with no signal handling and no log lines: a
    /// sibling loop of the multi-loop model, or a pre-fork worker.
    pub(super) fn run_quietly(&mut self) -> io::Result<()> {
        while !self.ioloop.is_empty() {
            self.ioloop.run_once(None)?;
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
const SIGNAL_CHECK: Duration = Duration::from_secs(1);

/// Runs `lp` until it is empty, watching SIGINT / SIGTERM: the first calls `on_first`
/// (a graceful stop), a second closes everything; and SIGHUP, which calls `on_reload`
/// (when its handler is installed).
pub(super) fn run_with_signals(
    lp: &mut IoLoop<Msg>,
    mut on_first: impl FnMut(&mut IoLoop<Msg>),
    mut on_reload: impl FnMut(&mut IoLoop<Msg>),
) -> io::Result<()> {
    let mut seen = 0;
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
    }
    Ok(())
}

/// The number of pre-fork workers or multi-loop loops: as configured, or one per CPU.
pub(super) fn worker_count(config: &ServerConfig) -> usize {
    match config.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

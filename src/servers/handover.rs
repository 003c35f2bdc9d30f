//! Restarts that drop nobody: on SIGUSR2 the server starts a new copy of its program
//! and hands it the listening sockets; once the new process serves, this one stops
//! accepting and lets its sessions end.
//!
//! The sockets go over as systemd's socket activation passes them (descriptors 3, 4, …
//! with `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES`), so the new process takes them
//! with the code that serves a socket unit, and binds nothing: both processes accept on
//! the same sockets, the same queue, and a client that connects at any moment of the
//! hand-over is accepted by one of them. Readiness is systemd's too: the new process
//! gets a `NOTIFY_SOCKET` of this process's and says `READY=1` there. Until it does the
//! old process serves as before; it polls for that datagram from its loop (a few times a
//! second while a hand-over is under way), never blocking it. The old process then stops
//! accepting *without* shutting the sockets down (which would stop the new process's
//! listening too, as the graceful stop does on purpose): its acceptors only stop polling
//! them. Passive data listeners stay with the sessions that opened them.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::server::FtpServer;
use crate::handlers::{Msg, ServerEvent};
use crate::systemd::{Notifier, ReadySocket, SERVICE_NOTIFY_VAR};

/// Where the hand-overs of a serving server stand.
pub(super) struct Restarts {
    /// SIGUSR2 counted so far.
    seen: usize,
    state: State,
    /// The executable the server was started from, as its path read at start-up: an
    /// upgrade installed over it is what the next process runs.
    exe: Option<PathBuf>,
}

enum State {
    Serving,
    /// A new process was started and is not ready yet.
    Waiting(Pending),
    /// The new process serves; this one ends with its sessions.
    HandedOver(libc::pid_t),
}

struct Pending {
    child: libc::pid_t,
    socket: ReadySocket,
    started: Instant,
    deadline: Instant,
}

impl Restarts {
    /// Installs the SIGUSR2 handler.
    pub(super) fn install() -> Restarts {
        crate::sys::install_handover_signal();
        Restarts {
            seen: crate::sys::handover_signals_received().0,
            state: State::Serving,
            exe: std::env::current_exe().ok(),
        }
    }

    /// How long the loop may sleep at most: briefly while a new process starts, so its
    /// `READY=1` or its exit is seen soon.
    pub(super) fn poll_interval(&self) -> Option<Duration> {
        matches!(self.state, State::Waiting(_)).then_some(READY_POLL)
    }

    /// The server stops (SIGTERM / SIGINT): a new process still starting is killed, so
    /// that it never serves the sockets this stop shuts.
    pub(super) fn abort(&mut self) {
        if let State::Waiting(pending) = std::mem::replace(&mut self.state, State::Serving) {
            log::warn!(
                "hand-over cancelled by the stop: the new process (pid {}) is killed",
                pending.child
            );
            kill(pending.child);
        }
    }
}

impl FtpServer {
    /// One look at the hand-over, each pass of the loop: a new SIGUSR2 starts one (unless
    /// `stopping`), a waiting one completes or fails. `service` is systemd's notifier
    /// (told `MAINPID=` the new process), `service_address` its address (passed on),
    /// `notify_handler` the loop's notifier handler (told to stop notifying). True when
    /// the hand-over completed in this call.
    pub(super) fn check_restart(
        &mut self,
        restarts: &mut Restarts,
        stopping: bool,
        service: Option<&Notifier>,
        service_address: Option<&OsStr>,
        notify_handler: Option<ioloop::Handle>,
    ) -> bool {
        let signals = crate::sys::handover_signals_received().0;
        if signals > restarts.seen {
            restarts.seen = signals;
            log::info!("received SIGUSR2");
            match &restarts.state {
                _ if stopping => log::warn!("hand-over refused: the server is stopping"),
                State::Waiting(p) => log::warn!(
                    "hand-over refused: one is under way (the new process is pid {})",
                    p.child
                ),
                State::HandedOver(pid) => {
                    log::warn!("hand-over refused: already handed over to pid {pid}")
                }
                State::Serving => match self.start_handover(restarts, service_address) {
                    Ok(pending) => restarts.state = State::Waiting(pending),
                    Err(e) => log::error!("hand-over failed: {e}; still serving"),
                },
            }
        }
        let State::Waiting(pending) = &restarts.state else {
            return false;
        };
        let (child, took) = (pending.child, pending.started.elapsed());
        match pending.progress() {
            Progress::Waiting => false,
            Progress::Failed(why) => {
                log::error!("hand-over failed: {why}; still serving");
                restarts.state = State::Serving;
                false
            }
            Progress::Ready => {
                log::info!(
                    "hand-over: the new process (pid {child}) serves (ready in {} ms); this \
                     one stops accepting and ends with its sessions",
                    took.as_millis()
                );
                if let Some(service) = service {
                    service.send(&format!("MAINPID={child}"));
                }
                if let Some(h) = notify_handler {
                    self.ioloop.send(h, Msg::ToServer(ServerEvent::HandOver));
                }
                self.ioloop
                    .send(self.acceptor, Msg::ToServer(ServerEvent::HandOver));
                for s in &self.siblings {
                    let _ = s
                        .handle
                        .send(s.acceptor, Msg::ToServer(ServerEvent::HandOver));
                }
                restarts.state = State::HandedOver(child);
                true
            }
        }
    }

    /// Starts the new process with the listening sockets.
    fn start_handover(
        &self,
        restarts: &Restarts,
        service_address: Option<&OsStr>,
    ) -> io::Result<Pending> {
        let socket = ReadySocket::bind()?;
        let program = match &restarts.exe {
            Some(path) if path.exists() => path.clone(),
            // Removed since: the running image is still there.
            _ => PathBuf::from("/proc/self/exe"),
        };
        let argv: Vec<CString> = std::env::args_os()
            .map(c_string)
            .collect::<io::Result<_>>()?;
        let fds = &self.listen_fds;
        let names = vec!["handover"; fds.len()].join(":");
        let mut env: Vec<CString> = Vec::new();
        let mut watchdog = false;
        for (name, value) in std::env::vars_os() {
            let name_bytes = name.as_bytes();
            watchdog |= name_bytes == b"WATCHDOG_USEC";
            if REPLACED.iter().any(|r| r.as_bytes() == name_bytes) {
                continue;
            }
            env.push(c_string(assignment(&name, &value))?);
        }
        let count = fds.len().to_string();
        let pairs: [(&str, &OsStr); 4] = [
            ("LISTEN_FDS", OsStr::new(&count)),
            ("LISTEN_FDNAMES", OsStr::new(&names)),
            ("NOTIFY_SOCKET", socket.address()),
            (SERVICE_NOTIFY_VAR, service_address.unwrap_or_default()),
        ];
        for (name, value) in pairs {
            env.push(c_string(assignment(OsStr::new(name), value))?);
        }
        // The new process's own pid: known only once it is forked.
        let mut pid_vars = vec!["LISTEN_PID"];
        if watchdog {
            pid_vars.push("WATCHDOG_PID");
        }
        let program_c = c_string(program.clone().into_os_string())?;
        let child = crate::sys::spawn_with_listeners(&program_c, &argv, &env, &pid_vars, fds)?;
        log::info!(
            "hand-over: started {} (pid {child}) with {} listening socket(s); serving until \
             it is ready",
            program.display(),
            fds.len()
        );
        let started = Instant::now();
        Ok(Pending {
            child,
            socket,
            started,
            deadline: started + READY_TIMEOUT,
        })
    }
}

/// How a waiting hand-over stands.
enum Progress {
    Waiting,
    Ready,
    Failed(String),
}

impl Pending {
    fn progress(&self) -> Progress {
        match self.socket.ready_from(self.child) {
            Ok(true) => return Progress::Ready,
            Ok(false) => {}
            Err(e) => {
                kill(self.child);
                return Progress::Failed(format!(
                    "cannot read the new process's notification: {e}; the new process \
                     (pid {}) was killed",
                    self.child
                ));
            }
        }
        if let Some(status) = crate::sys::reap(self.child, false) {
            return Progress::Failed(format!(
                "the new process (pid {}) exited with status {status} before it was ready",
                self.child
            ));
        }
        if Instant::now() >= self.deadline {
            kill(self.child);
            return Progress::Failed(format!(
                "the new process (pid {}) did not say it was ready within {} s; it was killed",
                self.child,
                READY_TIMEOUT.as_secs()
            ));
        }
        Progress::Waiting
    }
}

/// Ends a new process that is not ready, and reaps it. SIGKILL, not SIGTERM: its
/// graceful stop would shut the listening sockets, which this process serves too.
fn kill(child: libc::pid_t) {
    crate::sys::signal_process(child, libc::SIGKILL);
    let _ = crate::sys::reap(child, true);
}

fn assignment(name: &OsStr, value: &OsStr) -> OsString {
    let mut entry = name.to_owned();
    entry.push("=");
    entry.push(value);
    entry
}

fn c_string(s: OsString) -> io::Result<CString> {
    CString::new(s.into_vec()).map_err(|_| crate::sys::invalid_argument())
}

/// The variables this process sets for the new one rather than passing its own on.
const REPLACED: [&str; 6] = [
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
    "WATCHDOG_PID",
    SERVICE_NOTIFY_VAR,
];

/// How long the new process has to say `READY=1`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the loop looks for it meanwhile.
const READY_POLL: Duration = Duration::from_millis(20);

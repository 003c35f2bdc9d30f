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
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::systemd::{ReadySocket, SERVICE_NOTIFY_VAR};

/// Where the hand-overs of a serving server stand.
pub(super) struct Restarts {
    /// SIGUSR2 counted so far.
    pub(super) seen: usize,
    pub(super) state: State,
    /// The executable the server was started from, as its path read at start-up: an
    /// upgrade installed over it is what the next process runs.
    pub(super) exe: Option<PathBuf>,
}

pub(super) enum State {
    Serving,
    /// A new process was started and is not ready yet.
    Waiting(Pending),
    /// The new process serves; this one ends with its sessions.
    HandedOver(libc::pid_t),
}

pub(super) struct Pending {
    pub(super) child: libc::pid_t,
    pub(super) socket: ReadySocket,
    pub(super) started: Instant,
    pub(super) deadline: Instant,
}

impl Restarts {
    /// Installs the SIGUSR2 handler (again: the builder did before binding); signals
    /// counted after `seen` start a hand-over.
    pub(super) fn install(seen: usize) -> Restarts {
        crate::sys::install_handover_signal();
        Restarts {
            seen,
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

/// How a waiting hand-over stands.
pub(super) enum Progress {
    Waiting,
    Ready,
    Failed(String),
}

impl Pending {
    pub(super) fn progress(&self) -> Progress {
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
pub(super) fn kill(child: libc::pid_t) {
    crate::sys::signal_process(child, libc::SIGKILL);
    let _ = crate::sys::reap(child, true);
}

pub(super) fn assignment(name: &OsStr, value: &OsStr) -> OsString {
    let mut entry = name.to_owned();
    entry.push("=");
    entry.push(value);
    entry
}

pub(super) fn c_string(s: OsString) -> io::Result<CString> {
    CString::new(s.into_vec()).map_err(|_| crate::sys::invalid_argument())
}

/// The variables this process sets for the new one rather than passing its own on.
pub(super) const REPLACED: [&str; 6] = [
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
    "WATCHDOG_PID",
    SERVICE_NOTIFY_VAR,
];

/// How long the new process has to say `READY=1`.
pub(super) const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the loop looks for it meanwhile.
pub(super) const READY_POLL: Duration = Duration::from_millis(20);

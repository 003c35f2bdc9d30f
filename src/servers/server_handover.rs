//! The hand-over calls of a built server (SIGUSR2): starting the new process and handing
//! it the listening sockets (the state they keep is in `handover`).

use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Instant;

use super::handover::*;
use super::server::FtpServer;
use crate::handlers::{Msg, ServerEvent};
use crate::systemd::{Notifier, ReadySocket, SERVICE_NOTIFY_VAR};

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

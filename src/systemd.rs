//! systemd's conventions for a service: socket activation (`LISTEN_PID` / `LISTEN_FDS` /
//! `LISTEN_FDNAMES`, the listener inherited on descriptor 3, sd_listen_fds(3)) and the
//! notification protocol (`NOTIFY_SOCKET`, sd_notify(3)): `READY=1`, `STATUS=`,
//! `WATCHDOG=1`, `STOPPING=1`; and what a restart by hand-over (SIGUSR2) adds to them:
//! the old process waits on a socket of its own for the new one's `READY=1`, then tells
//! systemd `MAINPID=` the new one, which speaks to systemd from then on.
//!
//! Both are written here on std's `UnixDatagram` rather than by linking libsystemd: each
//! is a few environment variables and one datagram, and a server that systemd does not
//! start must not need the library. The notifier lives in the library, not the binary,
//! because the watchdog ping has to come from the event loop itself, as a timer of a
//! handler in it: a loop that is stuck then stops pinging and systemd restarts the
//! service, where a thread of its own would keep pinging for a dead loop. It is opt-in
//! ([`ServerBuilder::notify_systemd`]), so that a program embedding the server and
//! started by systemd keeps its own notifications; the `ftpdlib` binary turns it on.
//!
//! [`ServerBuilder::notify_systemd`]: crate::servers::ServerBuilder::notify_systemd

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
use std::time::Duration;

use ioloop::mio::event::Source;
use ioloop::{Ctx, Handle, Handler, Interest, Ready, TimerId};

use crate::error::Error;
use crate::handlers::{Msg, ServerEvent};

/// What the service manager passed, read from `LISTEN_PID`, `LISTEN_FDS` and
/// `LISTEN_FDNAMES` (see [`parse_activation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Activation {
    /// How many descriptors were passed, from [`FIRST_LISTEN_FD`] on (at least 1).
    pub fds: usize,
    /// Their names (`FileDescriptorName=` of the socket unit), in order; may be fewer
    /// than `fds`, or none.
    pub names: Vec<String>,
}

/// A socket activation environment that does not parse: the service manager (or whoever
/// set it) passed something other than what sd_listen_fds(3) describes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActivationError {
    /// `LISTEN_PID` is not a process id.
    #[error("LISTEN_PID={0:?} is not a process id")]
    BadPid(String),
    /// `LISTEN_FDS` is not a count.
    #[error("LISTEN_FDS={0:?} is not a number of descriptors")]
    BadCount(String),
}

/// The first descriptor a service manager passes (`SD_LISTEN_FDS_START`).
pub const FIRST_LISTEN_FD: i32 = 3;

/// Parses the socket activation variables (their values, `None` when unset) for the
/// process `our_pid`. `Ok(None)` means "not activated": a variable is missing, the
/// descriptors are meant for another process (`LISTEN_PID` is not ours, as when a
/// child inherited the environment), or there are none.
///
/// # Errors
/// When `LISTEN_PID` or `LISTEN_FDS` (once the pid is ours) is not a number.
pub fn parse_activation(
    our_pid: u32,
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    fd_names: Option<&str>,
) -> Result<Option<Activation>, ActivationError> {
    let (Some(pid), Some(fds)) = (listen_pid, listen_fds) else {
        return Ok(None);
    };
    let pid: u32 = pid
        .trim()
        .parse()
        .map_err(|_| ActivationError::BadPid(pid.to_owned()))?;
    if pid != our_pid {
        return Ok(None);
    }
    let count: usize = fds
        .trim()
        .parse()
        .map_err(|_| ActivationError::BadCount(fds.to_owned()))?;
    if count == 0 {
        return Ok(None);
    }
    let names = match fd_names {
        Some(n) if !n.is_empty() => n.split(':').map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    Ok(Some(Activation { fds: count, names }))
}

/// The listener systemd passed on descriptor 3 when this process was socket-activated,
/// else `None` (bind as usual). Removes `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`
/// from the environment, so that nothing started later takes them for its own, and sets
/// close-on-exec on the listener. When several descriptors were passed, the first is
/// served and the others are left alone (logged).
///
/// Call it once, early, before the program starts threads (it changes the environment).
///
/// # Errors
/// When the variables do not parse, or descriptor 3 is not a listening TCP socket.
pub fn activated_listener() -> Result<Option<std::net::TcpListener>, Error> {
    Ok(take_activated(false)?.into_iter().next())
}

/// As [`activated_listener`], and also takes the descriptors after the first that are
/// listening sockets on the same address: the listeners of every loop of a multi-loop
/// server that handed its sockets over on SIGUSR2 (see
/// [`ServerBuilder::hand_over_on_sigusr2`]), for [`ServerBuilder::listeners`]. Empty
/// when not activated. Other descriptors are left alone (logged).
///
/// # Errors
/// As [`activated_listener`].
///
/// [`ServerBuilder::hand_over_on_sigusr2`]: crate::servers::ServerBuilder::hand_over_on_sigusr2
/// [`ServerBuilder::listeners`]: crate::servers::ServerBuilder::listeners
pub fn activated_listeners() -> Result<Vec<std::net::TcpListener>, Error> {
    take_activated(true)
}

/// The inherited listeners: the first, and with `same_address` the later ones listening
/// on its address.
fn take_activated(same_address: bool) -> Result<Vec<std::net::TcpListener>, Error> {
    let var = |name: &str| {
        std::env::var_os(name).map(|v: std::ffi::OsString| v.to_string_lossy().into_owned())
    };
    let (pid, fds, names) = (var("LISTEN_PID"), var("LISTEN_FDS"), var("LISTEN_FDNAMES"));
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    let parsed = parse_activation(
        std::process::id(),
        pid.as_deref(),
        fds.as_deref(),
        names.as_deref(),
    );
    let Some(activation) = parsed.map_err(|e| Error::Config(format!("socket activation: {e}")))?
    else {
        return Ok(Vec::new());
    };
    let listener = crate::sys::inherited_listener(FIRST_LISTEN_FD)
        .map_err(|e| Error::io("socket activation: descriptor 3", e))?;
    let name = match activation.names.first() {
        Some(n) => format!(" ({n})"),
        None => String::new(),
    };
    let addr = listener.local_addr().ok();
    match addr {
        Some(addr) => log::info!("socket activation: listening socket {addr} on fd 3{name}"),
        None => log::info!("socket activation: listening socket on fd 3{name}"),
    }
    let mut listeners = vec![listener];
    let mut ignored = activation.fds - 1;
    if same_address {
        for fd in (FIRST_LISTEN_FD + 1..).take(activation.fds - 1) {
            if !crate::sys::is_listener_on(fd, addr) {
                break;
            }
            match crate::sys::inherited_listener(fd) {
                Ok(l) => listeners.push(l),
                Err(_) => break,
            }
            ignored -= 1;
        }
        if listeners.len() > 1 {
            log::info!(
                "socket activation: {} more listening socket(s) on the same address",
                listeners.len() - 1
            );
        }
    }
    if ignored > 0 {
        log::info!(
            "socket activation: {ignored} more descriptor(s) passed are ignored: one \
             listener is served"
        );
    }
    Ok(listeners)
}

/// Where `NOTIFY_SOCKET` points: a socket file, or (a leading `@`) a name in Linux's
/// abstract namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotifyTarget {
    Path(std::path::PathBuf),
    Abstract(Vec<u8>),
}

/// Parses `NOTIFY_SOCKET`; `None` for what this server does not speak (an empty value, a
/// relative path, `vsock:`).
pub(crate) fn notify_target(value: &OsStr) -> Option<NotifyTarget> {
    use std::os::unix::ffi::OsStrExt;
    match value.as_bytes() {
        [b'/', ..] => Some(NotifyTarget::Path(value.into())),
        [b'@', name @ ..] if !name.is_empty() => Some(NotifyTarget::Abstract(name.to_vec())),
        _ => None,
    }
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC` (as sd_watchdog_enabled(3)
/// advises), when it is set, positive, and meant for `our_pid` (`WATCHDOG_PID`, when
/// set, names the process that must ping).
pub(crate) fn watchdog_interval(
    our_pid: u32,
    usec: Option<&str>,
    pid: Option<&str>,
) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != our_pid {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2).max(MIN_WATCHDOG_PING))
}

/// The text of a `STATUS=` line.
pub(crate) fn status_text(sessions: usize) -> String {
    match sessions {
        1 => "STATUS=1 session".to_owned(),
        n => format!("STATUS={n} sessions"),
    }
}

/// The variable in which a process started by a hand-over (SIGUSR2) finds the service
/// manager's notification socket, empty when there is none: its `NOTIFY_SOCKET` is the
/// old process's, which waits for its `READY=1` alone.
pub(crate) const SERVICE_NOTIFY_VAR: &str = "FTPDLIB_SERVICE_NOTIFY_SOCKET";

/// Where this process's notifications go, from the environment.
pub(crate) struct NotifyPlan {
    /// After a hand-over: the old process, told `READY=1` and nothing else.
    pub(crate) predecessor: Option<Notifier>,
    /// The service manager (`NOTIFY_SOCKET`, or after a hand-over [`SERVICE_NOTIFY_VAR`]).
    pub(crate) service: Option<Notifier>,
    /// The service manager's address as the variable gave it, passed on at the next
    /// hand-over.
    pub(crate) service_address: Option<OsString>,
}

impl NotifyPlan {
    /// Reads `NOTIFY_SOCKET` and [`SERVICE_NOTIFY_VAR`].
    pub(crate) fn from_env() -> NotifyPlan {
        let notify = std::env::var_os("NOTIFY_SOCKET");
        match std::env::var_os(SERVICE_NOTIFY_VAR) {
            // Started by a hand-over.
            Some(service) => {
                let service = (!service.is_empty()).then_some(service);
                NotifyPlan {
                    predecessor: notify.and_then(|v| Notifier::from_var("NOTIFY_SOCKET", &v)),
                    service: service
                        .as_deref()
                        .and_then(|v| Notifier::from_var(SERVICE_NOTIFY_VAR, v)),
                    service_address: service,
                }
            }
            None => NotifyPlan {
                predecessor: None,
                service: notify
                    .as_deref()
                    .and_then(|v| Notifier::from_var("NOTIFY_SOCKET", v)),
                service_address: notify,
            },
        }
    }
}

/// The socket on which a process that hands its listeners over waits for the new
/// process's `READY=1`: a datagram socket in Linux's abstract namespace (nothing to
/// clean up, no directory to write), whose datagrams carry their sender's pid, so that
/// only the new process can say it is ready.
pub(crate) struct ReadySocket {
    socket: UnixDatagram,
    address: OsString,
}

impl ReadySocket {
    /// Binds a fresh, unguessable name.
    ///
    /// # Errors
    /// When the socket cannot be made or bound.
    pub(crate) fn bind() -> io::Result<ReadySocket> {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(io::Error::other)?;
        let name = format!(
            "ftpdlib-handover-{}-{:016x}",
            std::process::id(),
            u64::from_le_bytes(random)
        );
        #[cfg(target_os = "linux")]
        let socket = UnixDatagram::bind_addr(
            &<UnixAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(&name)?,
        )?;
        #[cfg(not(target_os = "linux"))]
        let socket: UnixDatagram = return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "abstract sockets are Linux only",
        ));
        socket.set_nonblocking(true)?;
        crate::sys::pass_credentials(&socket)?;
        Ok(ReadySocket {
            socket,
            address: format!("@{name}").into(),
        })
    }

    /// The `NOTIFY_SOCKET` value that names it.
    pub(crate) fn address(&self) -> &OsStr {
        &self.address
    }

    /// Reads the datagrams waiting; true when one from process `child` says `READY=1`.
    /// Datagrams from any other process are dropped (logged).
    ///
    /// # Errors
    /// The socket's errors.
    pub(crate) fn ready_from(&self, child: libc::pid_t) -> io::Result<bool> {
        let mut buf = [0u8; 512];
        let mut ready = false;
        while let Some((len, sender)) = crate::sys::recv_with_sender(&self.socket, &mut buf)? {
            let text = String::from_utf8_lossy(&buf[..len]);
            if sender != child {
                log::warn!(
                    "hand-over: a notification from pid {sender}, not the new process, is ignored"
                );
                continue;
            }
            ready |= text.lines().any(|l| l == "READY=1");
        }
        Ok(ready)
    }
}

/// Sends notifications to the service manager's socket.
pub(crate) struct Notifier {
    socket: UnixDatagram,
    to: UnixAddr,
}

impl Notifier {
    /// The notifier the address `value` of variable `var` names, if usable (otherwise
    /// logged).
    fn from_var(var: &str, value: &OsStr) -> Option<Notifier> {
        let Some(target) = notify_target(value) else {
            log::warn!("{var}={value:?}: not a socket path nor @name; not notifying");
            return None;
        };
        match Notifier::new(&target) {
            Ok(n) => Some(n),
            Err(e) => {
                log::warn!("{var}={value:?}: {e}; not notifying");
                None
            }
        }
    }

    fn new(target: &NotifyTarget) -> io::Result<Notifier> {
        let to = match target {
            NotifyTarget::Path(p) => UnixAddr::from_pathname(p)?,
            #[cfg(target_os = "linux")]
            NotifyTarget::Abstract(name) => {
                <UnixAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(name)?
            }
            #[cfg(not(target_os = "linux"))]
            NotifyTarget::Abstract(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "abstract sockets are Linux only",
                ))
            }
        };
        let socket = UnixDatagram::unbound()?;
        // The loop must never wait on a service manager that does not read: a full queue
        // loses a notification (logged), it does not stall every session.
        socket.set_nonblocking(true)?;
        Ok(Notifier { socket, to })
    }

    /// Sends `state` (one or more `NAME=value` lines). Failures are logged, not fatal: the
    /// server serves whether or not anyone listens.
    pub(crate) fn send(&self, state: &str) {
        match self.socket.send_to_addr(state.as_bytes(), &self.to) {
            Ok(_) => log::debug!("sd_notify: {}", state.replace('\n', ", ")),
            Err(e) => log::debug!("sd_notify {state:?} failed: {e}"),
        }
    }

    pub(crate) fn try_clone(&self) -> io::Result<Notifier> {
        Ok(Notifier {
            socket: self.socket.try_clone()?,
            to: self.to.clone(),
        })
    }
}

/// The handler in the server's loop that tells systemd it is ready, pings the watchdog
/// and reports the session count (asked of the acceptor once a second, sent when it
/// changed). It has no socket of its own, only timers. In a process started by a
/// hand-over, `READY=1` goes to the old process instead, and the rest to systemd.
pub(crate) struct SystemdNotify {
    service: Option<Notifier>,
    predecessor: Option<Notifier>,
    acceptor: Handle,
    watchdog: Option<Duration>,
    watchdog_timer: Option<TimerId>,
    status_timer: Option<TimerId>,
    /// The count last sent in a `STATUS=` line.
    reported: Option<usize>,
}

impl SystemdNotify {
    /// A notifier for the server whose acceptor (or pre-fork supervisor) is `acceptor`;
    /// the watchdog interval comes from `WATCHDOG_USEC` / `WATCHDOG_PID`.
    pub(crate) fn new(
        service: Option<Notifier>,
        predecessor: Option<Notifier>,
        acceptor: Handle,
    ) -> SystemdNotify {
        let var = |name: &str| std::env::var(name).ok();
        let watchdog = watchdog_interval(
            std::process::id(),
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
        );
        SystemdNotify {
            service,
            predecessor,
            acceptor,
            watchdog,
            watchdog_timer: None,
            status_timer: None,
            reported: None,
        }
    }

    fn ask_count(&self, cx: &mut Ctx<'_, Msg>) {
        let reply_to = cx.me();
        cx.send(
            self.acceptor,
            Msg::ToServer(ServerEvent::CountSessions { reply_to }),
        );
    }
}

impl Handler<Msg> for SystemdNotify {
    fn source(&mut self) -> Option<&mut dyn Source> {
        None
    }

    fn interest(&self) -> Option<Interest> {
        None
    }

    fn on_start(&mut self, cx: &mut Ctx<'_, Msg>) {
        // The listener is bound and listening before the loop starts: connections made
        // from now on are queued and served.
        match (self.predecessor.take(), &self.service) {
            // The old process stops accepting when it reads this; systemd learns the new
            // main pid from it.
            (Some(old), _) => old.send("READY=1"),
            (None, Some(service)) => service.send("READY=1"),
            (None, None) => {}
        }
        let Some(service) = &self.service else {
            return;
        };
        if let Some(every) = self.watchdog {
            log::debug!("sd_notify: watchdog ping every {every:?}");
            service.send("WATCHDOG=1");
            self.watchdog_timer = Some(cx.call_every(every));
        }
        self.ask_count(cx);
        self.status_timer = Some(cx.call_every(STATUS_EVERY));
    }

    fn on_ready(&mut self, _cx: &mut Ctx<'_, Msg>, _ready: Ready) {}

    fn on_timer(&mut self, cx: &mut Ctx<'_, Msg>, timer: TimerId) {
        let Some(service) = &self.service else {
            return;
        };
        if Some(timer) == self.watchdog_timer {
            service.send("WATCHDOG=1");
        } else if Some(timer) == self.status_timer {
            self.ask_count(cx);
        }
    }

    fn on_message(&mut self, cx: &mut Ctx<'_, Msg>, msg: Msg) {
        let Msg::ToServer(event) = msg else {
            return;
        };
        if let ServerEvent::SessionCount(n) = event {
            if self.reported != Some(n) {
                self.reported = Some(n);
                if let Some(service) = &self.service {
                    service.send(&status_text(n));
                }
            }
        } else if let ServerEvent::HandOver = event {
            // The new process speaks to systemd from now on.
            cx.close();
        }
    }
}

/// How often the session count is asked for, hence the most often a `STATUS=` line is
/// sent.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// The shortest watchdog ping interval, whatever `WATCHDOG_USEC` says: a tiny value must
/// not make the loop spin on its timer.
const MIN_WATCHDOG_PING: Duration = Duration::from_millis(10);

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        pid: Option<&str>,
        fds: Option<&str>,
        names: Option<&str>,
    ) -> Result<Option<Activation>, ActivationError> {
        parse_activation(42, pid, fds, names)
    }

    #[test]
    fn not_activated_without_the_variables() {
        assert_eq!(parse(None, None, None), Ok(None));
        assert_eq!(parse(Some("42"), None, None), Ok(None));
        assert_eq!(parse(None, Some("1"), None), Ok(None));
    }

    #[test]
    fn one_descriptor_for_us() {
        let a = parse(Some("42"), Some("1"), None).unwrap().unwrap();
        assert_eq!(a.fds, 1);
        assert!(a.names.is_empty());
    }

    #[test]
    fn another_process_descriptors_are_not_ours() {
        // A child that inherited the parent's environment (sd_listen_fds(3)).
        assert_eq!(parse(Some("41"), Some("1"), None), Ok(None));
        // Once the pid is not ours, the count is not even read.
        assert_eq!(parse(Some("41"), Some("x"), None), Ok(None));
    }

    #[test]
    fn zero_descriptors_is_not_activated() {
        assert_eq!(parse(Some("42"), Some("0"), None), Ok(None));
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(
            parse(Some("forty-two"), Some("1"), None),
            Err(ActivationError::BadPid("forty-two".into()))
        );
        assert_eq!(
            parse(Some("42"), Some("-1"), None),
            Err(ActivationError::BadCount("-1".into()))
        );
        assert_eq!(
            parse(Some("42"), Some(""), None),
            Err(ActivationError::BadCount(String::new()))
        );
        assert!(parse(Some(""), Some("1"), None).is_err());
    }

    #[test]
    fn several_descriptors_and_their_names() {
        let a = parse(Some("42"), Some("3"), Some("ftp:ftp-tls:other"))
            .unwrap()
            .unwrap();
        assert_eq!(a.fds, 3);
        assert_eq!(a.names, ["ftp", "ftp-tls", "other"]);
    }

    #[test]
    fn empty_names_are_no_names() {
        let a = parse(Some("42"), Some("1"), Some("")).unwrap().unwrap();
        assert!(a.names.is_empty());
    }

    #[test]
    fn surrounding_blanks_are_tolerated() {
        assert!(parse(Some(" 42\n"), Some(" 1 "), None).unwrap().is_some());
    }

    #[test]
    fn notify_targets() {
        assert_eq!(
            notify_target(OsStr::new("/run/systemd/notify")),
            Some(NotifyTarget::Path("/run/systemd/notify".into()))
        );
        assert_eq!(
            notify_target(OsStr::new("@sd-notify")),
            Some(NotifyTarget::Abstract(b"sd-notify".to_vec()))
        );
        assert_eq!(notify_target(OsStr::new("")), None);
        assert_eq!(notify_target(OsStr::new("@")), None);
        assert_eq!(notify_target(OsStr::new("relative/path")), None);
        assert_eq!(notify_target(OsStr::new("vsock:2:1234")), None);
    }

    #[test]
    fn watchdog_pings_at_half_the_timeout() {
        assert_eq!(
            watchdog_interval(42, Some("30000000"), None),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_interval(42, Some("30000000"), Some("42")),
            Some(Duration::from_secs(15))
        );
    }

    #[test]
    fn watchdog_off_unless_set_positive_and_ours() {
        assert_eq!(watchdog_interval(42, None, None), None);
        assert_eq!(watchdog_interval(42, Some("0"), None), None);
        assert_eq!(watchdog_interval(42, Some("soon"), None), None);
        assert_eq!(watchdog_interval(42, Some("30000000"), Some("41")), None);
        assert_eq!(watchdog_interval(42, Some("30000000"), Some("x")), None);
    }

    #[test]
    fn a_tiny_watchdog_does_not_spin() {
        assert_eq!(
            watchdog_interval(42, Some("2"), None),
            Some(MIN_WATCHDOG_PING)
        );
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_text(0), "STATUS=0 sessions");
        assert_eq!(status_text(1), "STATUS=1 session");
        assert_eq!(status_text(12), "STATUS=12 sessions");
    }

    #[test]
    fn the_ready_socket_hears_only_the_new_process() {
        let ready = ReadySocket::bind().unwrap();
        let target = notify_target(ready.address()).unwrap();
        let n = Notifier::new(&target).unwrap();
        let me = i32::try_from(std::process::id()).unwrap();
        // From a process that is not the awaited one: dropped.
        n.send("READY=1");
        assert!(!ready.ready_from(me + 1).unwrap());
        // Nothing waiting: not ready, no error.
        assert!(!ready.ready_from(me).unwrap());
        n.send("STATUS=starting");
        assert!(!ready.ready_from(me).unwrap());
        n.send("STATUS=1 session\nREADY=1");
        assert!(ready.ready_from(me).unwrap());
    }

    #[test]
    fn notifications_reach_a_socket_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(&NotifyTarget::Path(path)).unwrap();
        n.send("READY=1");
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
    }
}

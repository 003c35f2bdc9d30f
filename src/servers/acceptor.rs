//! The listening acceptor (pyftpdlib's FTPServer minus the loop): accepts until the
//! listener runs dry, enforces `max_cons` / `max_cons_per_ip` and says why it refuses,
//! starts each session where its concurrency model puts it, and stops them on a graceful or
//! immediate shutdown. Behind a balancer (PROXY protocol) it first has each connection's
//! header read, and admits the client the header names.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use ioloop::mio::net::{TcpListener, TcpStream};
use ioloop::{Acceptor, Ctx, Handle, Handler, Interest, LoopHandle, Ready, TimerId};
use slab::Slab;

use super::{forking, multi_thread};
use crate::config::{Concurrency, ProxyProtocol, ServerConfig};
use crate::handlers::proxy::{Proxied, ProxyReader};
use crate::handlers::shared::{ReloadOrder, Shared};
use crate::handlers::{FtpHandler, Msg, ServerEvent, ServerLink, SessionCmd};
use crate::limits::{Refusal, SharedLimits};
use crate::log::log_prefix;
use crate::metrics::Counter;

/// The listening handler: accepts, enforces `max_cons` / `max_cons_per_ip` exactly (it
/// counts sessions, not sockets), and starts a session per client: in this loop (async),
/// on a thread of its own with its own loop (multi-thread), or in a process of its own
/// (multi-proc).
pub(super) struct ServerAcceptor {
    acceptor: Acceptor,
    shared: Arc<Shared>,
    limits: ServerConfig,
    /// The counts shared with the other loops accepting on this port (multi-loop,
    /// pre-fork), used instead of `sessions` / `per_ip` for the limits.
    shared_limits: Option<(Arc<SharedLimits>, usize)>,
    model: Concurrency,
    /// The running sessions; a session's id is its key (a slab entry is smaller than a
    /// hash map's, and ids are only ever reported back once, when the session ends).
    sessions: Slab<SessionEntry>,
    per_ip: HashMap<IpAddr, usize>,
    /// Accepting, or stopping (and how).
    state: Accepting,
    /// PROXY protocol: the readers waiting for a header, with their socket's descriptor,
    /// which a multi-proc session's process closes (it must not hold another client's
    /// connection open).
    readers: Vec<(Handle, RawFd)>,
    /// Pre-fork: the check-again timer while this worker holds its share of the sessions
    /// and leaves the shared listener to its siblings ([`SharedLimits::leave_to_others`]).
    yielded: Option<TimerId>,
}

/// Whether the acceptor accepts, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accepting {
    Yes,
    /// A graceful stop: the listener is shut, the sessions were told to end, the
    /// acceptor waits for them.
    Stopping,
    /// Another process accepts on the shared listener now (a hand-over): this one no
    /// longer polls it, and its sessions may end on their own until the grace timer
    /// (`Some`) fires; then (`None`) they are stopped as in a graceful stop.
    HandedOver(Option<TimerId>),
}

struct SessionEntry {
    ip: IpAddr,
    to: SessionAddr,
}

/// Where a session's handler lives.
enum SessionAddr {
    Local(Handle),
    /// In a session thread's own loop; the handle is filled in when the thread reports.
    Thread(LoopHandle<Msg>, Handle),
    /// In a process of its own (multi-proc), reached by signals.
    Process(libc::pid_t),
}

impl ServerAcceptor {
    pub(super) fn new(
        listener: std::net::TcpListener,
        shared: Arc<Shared>,
        limits: ServerConfig,
        shared_limits: Option<(Arc<SharedLimits>, usize)>,
        model: Concurrency,
    ) -> ServerAcceptor {
        // Out of descriptors, queued clients are told at once rather than left waiting
        // for a session to end; an implicit FTPS client would take a clear-text reply for
        // a broken handshake, so it is only closed (as `refuse` does).
        let full_reply: &[u8] = if shared.config.tls.as_ref().is_some_and(|t| t.implicit) {
            b""
        } else {
            FULL_REPLY.as_bytes()
        };
        let acceptor = Acceptor::new(TcpListener::from_std(listener), Duration::from_millis(100))
            .refuse_when_full(full_reply);
        ServerAcceptor {
            acceptor,
            shared,
            limits,
            shared_limits,
            model,
            sessions: Slab::new(),
            per_ip: HashMap::new(),
            state: Accepting::Yes,
            readers: Vec::new(),
            yielded: None,
        }
    }

    /// Whether this worker holds its share of the sessions while another has room: then it
    /// stops accepting for a while (the siblings, also polling the listener, take the
    /// clients).
    fn holds_share(&self) -> bool {
        self.shared_limits
            .as_ref()
            .is_some_and(|(limits, owner)| limits.leave_to_others(*owner, self.sessions.len()))
    }

    fn accept_one(&mut self, cx: &mut Ctx<'_, Msg>, stream: TcpStream, addr: SocketAddr) {
        let ip = addr.ip().to_canonical();
        if let Some(reply) = self.shared.events.admit(addr) {
            self.shared.count(Counter::RefusedByAdmit, 1);
            let mut bytes = Vec::new();
            reply.write_to(&mut bytes);
            refuse_bytes(&self.shared, stream, &bytes);
            return;
        }
        if let Some(left) = self.shared.bans.as_ref().and_then(|b| b.banned(ip)) {
            self.shared.count(Counter::RefusedBanned, 1);
            let prefix = log_prefix(&self.shared.config.log_prefix, addr, "");
            log::warn!("{prefix} refused: banned for {} more s.", left.as_secs());
            refuse(
                &self.shared,
                stream,
                "421 Too many failed logins from your address; try again later.\r\n",
            );
            return;
        }
        let refusal = match &self.shared_limits {
            Some((limits, owner)) => limits.acquire(*owner, ip).err(),
            None => self.local_refusal(ip),
        };
        let refused = refusal.map(|r| match r {
            Refusal::Total => {
                self.shared.count(Counter::RefusedMaxCons, 1);
                "Too many connections. Service temporarily unavailable."
            }
            Refusal::PerIp => {
                self.shared.count(Counter::RefusedMaxConsPerIp, 1);
                "Too many connections from the same IP address."
            }
        });
        if let Some(text) = refused {
            // pyftpdlib's lines: it opened a session to refuse it.
            let prefix = log_prefix(&self.shared.config.log_prefix, addr, "");
            log::info!("{prefix} FTP session opened (connect)");
            log::warn!("{prefix} {text}");
            refuse(&self.shared, stream, &format!("421 {text}\r\n"));
            log::info!("{prefix} FTP session closed (disconnect).");
            return;
        }
        let id = self.sessions.vacant_key() as u64;
        let started = match self.model {
            Concurrency::MultiThread => {
                multi_thread::start_session(&self.shared, cx, stream, addr, id)
                    .map(|(lp, h)| SessionAddr::Thread(lp, h))
            }
            Concurrency::MultiProc => {
                let listener = self.acceptor.listener().as_raw_fd();
                let inherited: Vec<RawFd> = self.readers.iter().map(|&(_, fd)| fd).collect();
                forking::start_process(listener, &inherited, &self.shared, cx, stream, addr, id)
                    .map(SessionAddr::Process)
            }
            Concurrency::Async | Concurrency::PreFork | Concurrency::MultiLoop => {
                self.start_local(cx, stream, addr, id)
            }
        };
        match started {
            Some(to) => {
                // Nothing was inserted since vacant_key, so this is the key `id`.
                self.sessions.insert(SessionEntry { ip, to });
                self.count_ip(ip, true);
            }
            None => {
                if let Some((limits, owner)) = &self.shared_limits {
                    limits.release(*owner, ip);
                }
            }
        }
    }

    /// One session more (`opened`) or less from `ip` in `per_ip`. Counted only when
    /// `max_cons_per_ip` is set: the count serves the limit alone.
    fn count_ip(&mut self, ip: IpAddr, opened: bool) {
        if self.limits.max_cons_per_ip == 0 {
            return;
        }
        if opened {
            *self.per_ip.entry(ip).or_insert(0) += 1;
        } else if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    /// The limits, counted by this acceptor alone (async, multi-thread, multi-proc).
    fn local_refusal(&self, ip: IpAddr) -> Option<Refusal> {
        if self.limits.max_cons > 0 && self.sessions.len() >= self.limits.max_cons {
            return Some(Refusal::Total);
        }
        if self.limits.max_cons_per_ip > 0
            && self.per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.max_cons_per_ip
        {
            return Some(Refusal::PerIp);
        }
        None
    }

    /// PROXY protocol: a connection from a configured proxy gets a reader that waits for its
    /// header, then returns it to this acceptor (`Msg::Proxied`) with the client's address;
    /// the limits are applied then, to that address. Anyone else is closed at once: when the
    /// option is set, the balancer is the only way in.
    fn read_proxy_header(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        proxy: &ProxyProtocol,
        stream: TcpStream,
        addr: SocketAddr,
    ) {
        if !proxy.trusts(addr.ip()) {
            log::warn!("{addr}: {CLOSED}: not a configured PROXY protocol source.");
            return;
        }
        let fd = stream.as_raw_fd();
        let reader = ProxyReader::new(stream, addr, cx.me(), proxy.header_timeout, CLOSED);
        match cx.spawn(Box::new(reader)) {
            Ok(h) => self.readers.push((h, fd)),
            Err(e) => log::error!("{addr}: cannot register the connection: {e}"),
        }
    }

    /// A reader is done. With the header read, admission and the limits see the client's
    /// address.
    fn proxied(&mut self, cx: &mut Ctx<'_, Msg>, proxied: Proxied) {
        self.readers.retain(|&(h, _)| h != proxied.from);
        match (proxied.stream, self.state) {
            // Its header was read by this process: it is this process's client, served
            // until the grace period ends like the sessions already open.
            (Some(stream), Accepting::Yes | Accepting::HandedOver(Some(_))) => {
                self.accept_one(cx, stream, proxied.client);
            }
            (Some(stream), Accepting::Stopping | Accepting::HandedOver(None)) => {
                refuse(&self.shared, stream, "421 Server shutting down.\r\n");
            }
            (None, _) => {}
        }
    }

    fn start_local(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        stream: TcpStream,
        addr: SocketAddr,
        id: u64,
    ) -> Option<SessionAddr> {
        let link = ServerLink::Local(cx.me());
        let handler = match FtpHandler::new(stream, addr, link, id, Arc::clone(&self.shared)) {
            Ok(h) => h,
            Err(e) => {
                log::debug!("{addr}: session setup failed: {e}");
                return None;
            }
        };
        match cx.spawn(Box::new(handler)) {
            Ok(h) => Some(SessionAddr::Local(h)),
            Err(e) => {
                log::error!("{addr}: cannot register the session: {e}");
                None
            }
        }
    }

    /// A reload: the sessions started from now on get the new settings; running ones
    /// hold their own `Arc` of the old.
    fn reload(&mut self, order: ReloadOrder) {
        let ReloadOrder { reload, done, warn } = order;
        let reloaded = reload
            .settle(&self.shared.config, warn)
            .and_then(|reload| self.shared.reloaded(&reload));
        match reloaded {
            Ok(shared) => self.shared = Arc::new(shared),
            Err(e) => log::error!("reload failed, keeping the old settings: {e}"),
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    fn shut_down(&mut self, cx: &mut Ctx<'_, Msg>) {
        match self.state {
            Accepting::Yes => {}
            Accepting::Stopping | Accepting::HandedOver(None) => return,
            // Stopped during the grace period: the sessions end now; the listener is
            // still the new process's.
            Accepting::HandedOver(Some(grace)) => {
                cx.cancel(grace);
                self.set_state(Accepting::HandedOver(None));
                self.stop_sessions(cx);
                return;
            }
        }
        self.set_state(Accepting::Stopping);
        // As pyftpdlib closes its listener at once, clients stop queueing here for the
        // whole stop: those already queued are told why, later ones are refused.
        let mut queued = Vec::new();
        self.acceptor
            .accept_ready(cx, |_, stream, _| queued.push(stream));
        for stream in queued {
            refuse(&self.shared, stream, "421 Server shutting down.\r\n");
        }
        crate::sys::stop_listening(self.acceptor.listener().as_raw_fd());
        self.stop_sessions(cx);
    }

    /// A hand-over: another process accepts on this listener now. Neither the clients
    /// queued on it nor the socket are touched (a shutdown(2) would stop the other
    /// process's listening too): this acceptor only stops polling it (its interest
    /// goes), and closes its descriptor when it closes.
    fn hand_over(&mut self, cx: &mut Ctx<'_, Msg>) {
        if self.state != Accepting::Yes {
            return;
        }
        if self.sessions.is_empty() && self.readers.is_empty() {
            self.set_state(Accepting::HandedOver(None));
            cx.close();
            return;
        }
        let grace = cx.call_later(HANDOVER_GRACE);
        self.set_state(Accepting::HandedOver(Some(grace)));
    }

    fn set_state(&mut self, state: Accepting) {
        log::trace!("acceptor: {:?} => {state:?}", self.state);
        self.state = state;
    }

    /// Tells every session to end (after its running transfer); closes the acceptor
    /// when there are none.
    fn stop_sessions(&mut self, cx: &mut Ctx<'_, Msg>) {
        for (_, entry) in &self.sessions {
            let msg = Msg::ToSession(SessionCmd::Shutdown);
            match &entry.to {
                SessionAddr::Local(h) => cx.send(*h, msg),
                SessionAddr::Thread(lp, h) => {
                    let _ = lp.send(*h, msg);
                }
                SessionAddr::Process(pid) => forking::stop_gracefully(*pid),
            }
        }
        if self.sessions.is_empty() {
            cx.close();
        }
    }
}

/// Best effort: tell a refused client why, without blocking, then drop it. An implicit
/// FTPS client would take a clear-text reply for a broken handshake: it is just closed.
fn refuse(shared: &Shared, stream: TcpStream, reply: &str) {
    refuse_bytes(shared, stream, reply.as_bytes());
}

fn refuse_bytes(shared: &Shared, mut stream: TcpStream, reply: &[u8]) {
    if shared.config.tls.as_ref().is_some_and(|t| t.implicit) {
        return;
    }
    let _ = stream.write(reply);
}

impl Handler<Msg> for ServerAcceptor {
    fn source(&mut self) -> Option<&mut dyn ioloop::mio::event::Source> {
        Some(self.acceptor.listener_mut())
    }

    fn interest(&self) -> Option<Interest> {
        match self.state {
            Accepting::Yes if self.yielded.is_some() => None,
            Accepting::Yes => self.acceptor.interest(),
            // No more accepts; the listener closes with this handler.
            Accepting::Stopping | Accepting::HandedOver(_) => None,
        }
    }

    fn on_ready(&mut self, cx: &mut Ctx<'_, Msg>, _ready: Ready) {
        if self.state != Accepting::Yes {
            return;
        }
        let proxy = self.shared.config.proxy_protocol.clone();
        let mut accepted = 0;
        loop {
            if self.yielded.is_some() {
                break;
            }
            if self.holds_share() {
                self.yielded = Some(cx.call_later(YIELD_RECHECK));
                break;
            }
            let Some((stream, addr)) = self.acceptor.accept_next(cx) else {
                break;
            };
            match &proxy {
                Some(proxy) => self.read_proxy_header(cx, proxy, stream, addr),
                None => self.accept_one(cx, stream, addr),
            }
            accepted += 1;
            if accepted == ACCEPT_BATCH {
                // Clients that keep coming faster than sessions start (a thread or a
                // process each) would keep this loop here for ever, and the news of
                // the sessions that ended (messages, exit pipes) would never be read:
                // the count would climb to max_cons. The rest waits for the next pass;
                // no new edge comes for them, hence the wake.
                cx.wake();
                break;
            }
        }
        if self.acceptor.is_shut_down() {
            // The socket was shut down under this loop: by the pre-fork supervisor's stop
            // (a worker forked while the stop began never got its signal). Stop too,
            // gracefully, rather than keep a dead listener.
            log::info!("the listening socket was shut down: stopping");
            self.shut_down(cx);
        }
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_, Msg>, timer: TimerId) {
        if self.state == Accepting::HandedOver(Some(timer)) {
            // The grace period is over: the sessions still open end as in a graceful
            // stop.
            self.set_state(Accepting::HandedOver(None));
            self.stop_sessions(cx);
            return;
        }
        if self.yielded == Some(timer) {
            // Accept again if a session ended here or the siblings filled up; no new edge
            // comes for the clients queued meanwhile, hence the wake.
            self.yielded = None;
            cx.wake();
            return;
        }
        self.acceptor.on_timer(cx, timer);
    }

    fn on_message(&mut self, cx: &mut Ctx<'_, Msg>, msg: Msg) {
        match msg {
            Msg::ToServer(ServerEvent::SessionClosed { id, .. }) => {
                let key = usize::try_from(id).unwrap_or(usize::MAX);
                let Some(SessionEntry { ip, to }) = self.sessions.try_remove(key) else {
                    return;
                };
                if let SessionAddr::Process(pid) = to {
                    forking::reap_session(pid);
                }
                if let Some((limits, owner)) = &self.shared_limits {
                    limits.release(*owner, ip);
                }
                self.count_ip(ip, false);
                if self.state != Accepting::Yes && self.sessions.is_empty() {
                    cx.close();
                }
            }
            Msg::ToServer(ServerEvent::Shutdown) => self.shut_down(cx),
            Msg::ToServer(ServerEvent::HandOver) => self.hand_over(cx),
            Msg::Proxied(proxied) => self.proxied(cx, *proxied),
            Msg::ToServer(ServerEvent::CountSessions { reply_to }) => {
                // With loops or processes sharing the port, the shared table holds them all.
                let open = match &self.shared_limits {
                    Some((limits, _)) => limits.total(),
                    None => self.sessions.len(),
                };
                cx.send(reply_to, Msg::ToServer(ServerEvent::SessionCount(open)));
            }
            Msg::ToServer(ServerEvent::Reload(order)) => self.reload(*order),
            Msg::ToServer(ServerEvent::SessionCount(_))
            | Msg::ToControl(..)
            | Msg::ToData(_)
            | Msg::ToSession(_) => {}
        }
    }

    fn on_close(&mut self, _cx: &mut Ctx<'_, Msg>) {
        // close_all: session threads and processes end now too.
        for (_, entry) in &self.sessions {
            match &entry.to {
                SessionAddr::Thread(lp, _) => {
                    let _ = lp.close_all();
                }
                SessionAddr::Process(pid) => forking::stop_now(*pid),
                SessionAddr::Local(_) => {}
            }
        }
    }
}

/// The most connections accepted in one turn of the loop.
const ACCEPT_BATCH: usize = 64;

/// How often a pre-fork worker that holds its share looks again.
const YIELD_RECHECK: Duration = Duration::from_millis(100);

/// How long the sessions of a process that handed its listener over may go on before
/// they are stopped as in a graceful stop: time for a client between a login and its
/// QUIT to finish without a 421; a running transfer always finishes.
const HANDOVER_GRACE: Duration = Duration::from_secs(5);
/// The reply of a client refused because the process is out of descriptors: to the client
/// it is the same condition as `max_cons`.
const FULL_REPLY: &str = "421 Too many connections. Service temporarily unavailable.\r\n";

/// What the PROXY protocol warnings say of a refused control connection.
const CLOSED: &str = "control connection closed without a greeting";

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
    /// Set by a graceful stop: the listener no longer listens, the acceptor waits for
    /// sessions.
    stopping: bool,
    /// PROXY protocol: the readers waiting for a header, with their socket's descriptor,
    /// which a multi-proc session's process closes (it must not hold another client's
    /// connection open).
    readers: Vec<(Handle, RawFd)>,
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
        ServerAcceptor {
            acceptor: Acceptor::new(TcpListener::from_std(listener), Duration::from_millis(100)),
            shared,
            limits,
            shared_limits,
            model,
            sessions: Slab::new(),
            per_ip: HashMap::new(),
            stopping: false,
            readers: Vec::new(),
        }
    }

    fn accept_one(&mut self, cx: &mut Ctx<'_, Msg>, stream: TcpStream, addr: SocketAddr) {
        let ip = addr.ip().to_canonical();
        let refusal = match &self.shared_limits {
            Some((limits, owner)) => limits.acquire(*owner, ip).err(),
            None => self.local_refusal(ip),
        };
        let refused = refusal.map(|r| match r {
            Refusal::Total => "Too many connections. Service temporarily unavailable.",
            Refusal::PerIp => "Too many connections from the same IP address.",
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
        match proxied.stream {
            Some(stream) if self.stopping => {
                refuse(&self.shared, stream, "421 Server shutting down.\r\n");
            }
            Some(stream) => self.accept_one(cx, stream, proxied.client),
            None => {}
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
        if self.stopping {
            return;
        }
        self.stopping = true;
        // As pyftpdlib closes its listener at once, clients stop queueing here for the
        // whole stop: those already queued are told why, later ones are refused.
        let mut queued = Vec::new();
        self.acceptor
            .accept_ready(cx, |_, stream, _| queued.push(stream));
        for stream in queued {
            refuse(&self.shared, stream, "421 Server shutting down.\r\n");
        }
        crate::sys::stop_listening(self.acceptor.listener().as_raw_fd());
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
fn refuse(shared: &Shared, mut stream: TcpStream, reply: &str) {
    if shared.config.tls.as_ref().is_some_and(|t| t.implicit) {
        return;
    }
    let _ = stream.write(reply.as_bytes());
}

impl Handler<Msg> for ServerAcceptor {
    fn source(&mut self) -> Option<&mut dyn ioloop::mio::event::Source> {
        Some(self.acceptor.listener_mut())
    }

    fn interest(&self) -> Option<Interest> {
        if self.stopping {
            return None; // no more accepts; the listener closes with this handler
        }
        self.acceptor.interest()
    }

    fn on_ready(&mut self, cx: &mut Ctx<'_, Msg>, _ready: Ready) {
        if self.stopping {
            return;
        }
        let proxy = self.shared.config.proxy_protocol.clone();
        while let Some((stream, addr)) = self.acceptor.accept_next(cx) {
            match &proxy {
                Some(proxy) => self.read_proxy_header(cx, proxy, stream, addr),
                None => self.accept_one(cx, stream, addr),
            }
        }
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_, Msg>, timer: TimerId) {
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
                if self.stopping && self.sessions.is_empty() {
                    cx.close();
                }
            }
            Msg::ToServer(ServerEvent::Shutdown) => self.shut_down(cx),
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

/// What the PROXY protocol warnings say of a refused control connection.
const CLOSED: &str = "control connection closed without a greeting";

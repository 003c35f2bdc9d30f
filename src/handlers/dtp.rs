//! The data side: the passive listener ([`PassiveDtp`]) and the data channel itself
//! ([`DtpHandler`]), pyftpdlib's PassiveDTP and DTPHandler. pyftpdlib's ActiveDTP is the
//! data channel's first state here ([`DtpHandler::connect`]): the socket stays registered
//! under one handler from the connect to the end of the transfer.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ioloop::mio::net::{TcpListener, TcpStream};
use ioloop::{Acceptor, ConnectState, Ctx, Handle, Handler, Interest, Ready, TimerId};

use super::bandwidth::{CapShare, Caps, Direction};
use super::proxy::ProxyReader;
use super::shared::Shared;
use super::tls::{DataTls, TlsRole, Transport};
use super::transfers::{Progress, Transfer, SEND_NOTSENT_LOWAT};
use super::{CloseReason, Closure, DataCmd, DtpEvent, Job, Msg, TransferLog};
use crate::filesystems::FsFile;
use crate::metrics::Counter;

/// A PASV / EPSV listener: accepts one data connection from the client, then hands it to a
/// new [`DtpHandler`] and goes away.
pub(crate) struct PassiveDtp {
    acceptor: Acceptor,
    control: Handle,
    client_ip: IpAddr,
    shared: Arc<Shared>,
    timer: Option<TimerId>,
    /// PROT P: the data connection is secured with this.
    tls: Option<DataTls>,
    /// Behind a balancer: the reader waiting for the accepted connection's PROXY header.
    reader: Option<Handle>,
}

impl PassiveDtp {
    /// The data connection from `addr` (the client's, carried by a PROXY header when
    /// behind a balancer): checked against the client's address, then handed to a
    /// [`DtpHandler`].
    fn connected(&mut self, cx: &mut Ctx<'_, Msg>, stream: TcpStream, addr: SocketAddr) {
        let client_ip = self.client_ip;
        if !self.shared.config.permit_foreign_addresses && !same_ip(addr.ip(), client_ip) {
            log::warn!("Rejected data connection from foreign address {addr}.");
            let me = cx.me();
            cx.send(
                self.control,
                Msg::ToControl(me, DtpEvent::ForeignRejected(addr)),
            );
            return;
        }
        if !same_ip(addr.ip(), client_ip) {
            log::warn!("Established data connection with foreign address {addr}.");
        }
        let dtp = DtpHandler::new(
            stream,
            self.control,
            Arc::clone(&self.shared),
            self.tls.take(),
        );
        match dtp.and_then(|dtp| cx.spawn(Box::new(dtp))) {
            Ok(h) => cx.send(
                self.control,
                Msg::ToControl(cx.me(), DtpEvent::Connected(h)),
            ),
            Err(e) => cx.send(
                self.control,
                Msg::ToControl(cx.me(), DtpEvent::ActiveFailed(e)),
            ),
        }
        cx.close();
    }

    pub(crate) fn new(
        listener: TcpListener,
        control: Handle,
        client_ip: IpAddr,
        shared: Arc<Shared>,
        tls: Option<DataTls>,
    ) -> Self {
        PassiveDtp {
            acceptor: Acceptor::new(listener, Duration::from_millis(100)),
            control,
            client_ip,
            shared,
            timer: None,
            tls,
            reader: None,
        }
    }
}

impl Handler<Msg> for PassiveDtp {
    fn source(&mut self) -> Option<&mut dyn ioloop::mio::event::Source> {
        Some(self.acceptor.listener_mut())
    }

    fn interest(&self) -> Option<Interest> {
        self.acceptor.interest()
    }

    fn on_start(&mut self, cx: &mut Ctx<'_, Msg>) {
        self.timer = Some(cx.call_later(self.shared.config.passive_timeout));
    }

    fn on_ready(&mut self, cx: &mut Ctx<'_, Msg>, _ready: Ready) {
        let mut accepted = None;
        let control = self.control;
        let proxy = self.shared.config.proxy_protocol.clone();
        let busy = self.reader.is_some();
        self.acceptor.accept_ready(cx, |cx, stream, addr| {
            if accepted.is_some() || busy {
                return; // one connection only; later ones are dropped
            }
            if let Some(proxy) = &proxy {
                // Behind a balancer the socket's peer is the proxy; the client's address
                // comes with the header, and is checked once it arrives.
                if !proxy.trusts(addr.ip()) {
                    log::warn!(
                        "{addr}: data connection closed: not a configured PROXY protocol source."
                    );
                    let me = cx.me();
                    cx.send(control, Msg::ToControl(me, DtpEvent::ForeignRejected(addr)));
                    return;
                }
            }
            accepted = Some((stream, addr));
        });
        let Some((stream, addr)) = accepted else {
            return;
        };
        match proxy {
            Some(proxy) => {
                let reader = ProxyReader::new(
                    stream,
                    addr,
                    cx.me(),
                    proxy.header_timeout,
                    "data connection closed",
                );
                match cx.spawn(Box::new(reader)) {
                    Ok(h) => self.reader = Some(h),
                    Err(e) => log::error!("{addr}: cannot register the data connection: {e}"),
                }
            }
            None => self.connected(cx, stream, addr),
        }
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_, Msg>, timer: TimerId) {
        if self.acceptor.on_timer(cx, timer) {
            return;
        }
        if Some(timer) == self.timer {
            cx.send(
                self.control,
                Msg::ToControl(cx.me(), DtpEvent::PassiveTimeout),
            );
            cx.close();
        }
    }

    fn on_message(&mut self, cx: &mut Ctx<'_, Msg>, msg: Msg) {
        match msg {
            Msg::ToData(DataCmd::Abort) => cx.close(),
            Msg::Proxied(proxied) => {
                self.reader = None;
                // A failed header was logged by the reader; the listener waits for another.
                if let Some(stream) = proxied.stream {
                    self.connected(cx, stream, proxied.client);
                }
            }
            Msg::ToData(_) | Msg::ToControl(..) | Msg::ToServer(_) | Msg::ToSession(_) => {}
        }
    }

    fn on_close(&mut self, cx: &mut Ctx<'_, Msg>) {
        if let Some(reader) = self.reader.take() {
            cx.close_handle(reader);
        }
    }
}

/// The data connection: idle until the control channel starts a transfer, then streams it
/// and reports once, on close.
pub(crate) struct DtpHandler {
    stream: Transport,
    /// PROT P: how to secure the connection (TLS starts at once for a passive connection,
    /// once connected for an active one).
    tls: Option<DataTls>,
    /// The TLS handshake is done and was accepted (or there is no TLS).
    secured: bool,
    handshake_timer: Option<TimerId>,
    control: Handle,
    shared: Arc<Shared>,
    state: DtpState,
    bytes: u64,
    progress_mark: u64,
    timer: Option<TimerId>,
    reason: Option<CloseReason>,
    /// False once a failed connect was reported: no `Closed` follows.
    announced: bool,
    /// Bandwidth limit of this transfer (pyftpdlib's ThrottledDTPHandler), when set.
    throttle: Option<Throttle>,
    /// This transfer's share of the user's and the server's caps, when there are any.
    caps: Option<CapShare>,
    /// The caps were looked up for the running transfer.
    caps_known: bool,
    /// The running transfer's log line, written here if the control channel cannot hear
    /// how it ended.
    log: Option<Box<TransferLog>>,
    /// The control channel abandoned the transfer: report it here, not to it.
    abandoned: bool,
    /// A completed upload's file, for the control channel to sync (`fsync_uploads`).
    completed_file: Option<FsFile>,
}

enum DtpState {
    /// PORT / EPRT: the connect is in progress.
    Connecting,
    Idle,
    Busy(Transfer),
    /// The transfer is done; the TLS close_notify (and records before it) are being sent.
    Closing,
}

impl DtpHandler {
    pub(crate) fn new(
        stream: TcpStream,
        control: Handle,
        shared: Arc<Shared>,
        tls: Option<DataTls>,
    ) -> io::Result<Self> {
        let stream = match &tls {
            Some(t) => Transport::tls(stream, &t.config, &t.token, TlsRole::Data)?,
            None => Transport::plain(stream),
        };
        Ok(DtpHandler {
            stream,
            secured: tls.is_none(),
            tls,
            handshake_timer: None,
            control,
            shared,
            state: DtpState::Idle,
            bytes: 0,
            progress_mark: 0,
            timer: None,
            reason: None,
            announced: true,
            throttle: None,
            caps: None,
            caps_known: false,
            log: None,
            abandoned: false,
            completed_file: None,
        })
    }

    /// Starts an active (PORT / EPRT) data connection to `addr` from `bind_ip`.
    pub(crate) fn connect(
        addr: SocketAddr,
        bind_ip: IpAddr,
        control: Handle,
        shared: Arc<Shared>,
        tls: Option<DataTls>,
    ) -> io::Result<Self> {
        let stream = ioloop::connect(addr, Some(bind_ip))?;
        let mut dtp = DtpHandler::new(stream, control, shared, None)?;
        dtp.secured = tls.is_none();
        dtp.tls = tls;
        dtp.state = DtpState::Connecting;
        Ok(dtp)
    }

    /// Ends the channel. A completed transfer over TLS ends the TLS stream cleanly first
    /// (close_notify), so the client can tell the end of the data from a cut.
    fn finish(&mut self, cx: &mut Ctx<'_, Msg>, reason: CloseReason) {
        let graceful = matches!(reason, CloseReason::Completed) && self.stream.is_tls();
        if self.reason.is_none() {
            self.reason = Some(reason);
        }
        if graceful {
            if !matches!(self.state, DtpState::Closing) {
                self.state = DtpState::Closing;
                self.stream.send_close_notify();
            }
            if self.stream.wants_write() {
                // WRITABLE interest; on_ready finishes the flush, the timer bounds it.
                if let Some(tls) = &self.tls {
                    if self.handshake_timer.is_none() {
                        self.handshake_timer = Some(cx.call_later(tls.handshake_timeout));
                    }
                }
                return;
            }
        }
        cx.close();
    }

    /// Layers TLS on a connection that just connected (PORT / EPRT under PROT P) and
    /// bounds the handshake.
    fn start_tls(&mut self, cx: &mut Ctx<'_, Msg>) -> io::Result<()> {
        let Some(tls) = &self.tls else {
            return Ok(());
        };
        if !self.stream.is_tls() {
            self.stream
                .start_tls(&tls.config, &tls.token, &[], TlsRole::Data)?;
        }
        self.handshake_timer = Some(cx.call_later(tls.handshake_timeout));
        Ok(())
    }

    /// Drives the TLS handshake; true once data may flow. Refuses a connection that did
    /// not resume the control session's TLS session when that is required.
    fn secure(&mut self, cx: &mut Ctx<'_, Msg>) -> bool {
        if self.secured {
            return true;
        }
        let Some(tls) = &self.tls else {
            return true;
        };
        match self.stream.handshake() {
            Ok(false) => false,
            Ok(true) => {
                if let Some(t) = self.handshake_timer.take() {
                    cx.cancel(t);
                }
                log::debug!("TLS on a data connection: {}", self.stream.describe());
                self.shared.count(Counter::TlsHandshakes, 1);
                if tls.require_reuse && !self.stream.resumed_with(&tls.token) {
                    self.finish(cx, CloseReason::TlsReuseRequired);
                    return false;
                }
                self.secured = true;
                true
            }
            Err(e) => {
                self.shared.count(Counter::TlsHandshakeFailures, 1);
                self.finish(cx, CloseReason::TlsHandshake(e));
                false
            }
        }
    }

    /// Asleep on a bandwidth limit: the transfer's own, or its turn in a shared cap.
    fn paused(&self) -> bool {
        self.throttle.as_ref().is_some_and(|t| t.paused.is_some())
            || self.caps.as_ref().is_some_and(|c| c.paused.is_some())
    }

    fn pump(&mut self, cx: &mut Ctx<'_, Msg>) {
        if !self.secure(cx) {
            return;
        }
        if self.paused() {
            return;
        }
        if let DtpState::Busy(t) = &self.state {
            // From here on a download seals its own TLS records, and an upload opens them
            // where they arrive.
            let own_records = if t.is_upload() {
                self.stream.open_receiving()
            } else {
                self.stream.seal_sending()
            };
            if let Err(e) = own_records {
                return self.finish(cx, CloseReason::Network(e));
            }
        }
        let DtpState::Busy(transfer) = &mut self.state else {
            return;
        };
        let cfg = &self.shared.config;
        let upload = transfer.is_upload();
        let limit = if upload {
            cfg.read_limit
        } else {
            cfg.write_limit
        };
        let now = cx.now();
        if limit > 0 && self.throttle.is_none() {
            self.throttle = Some(Throttle::new(limit, now, self.bytes));
        }
        if !self.caps_known {
            self.caps_known = true;
            let username = self.log.as_ref().map_or("", |l| l.username.as_str());
            self.caps = cap_share(&self.shared, username, upload);
        }
        if let Some(caps) = &mut self.caps {
            if caps.granted == 0 {
                // Reserve the next chunk in the shared buckets; sleep until its turn.
                let wait = caps.reserve(now);
                if !wait.is_zero() {
                    caps.waited = true;
                    caps.paused = Some(cx.call_later(wait));
                    return;
                }
            }
        }
        let share = transfer.share();
        let mut budget = match &self.throttle {
            Some(t) => t.allowance(now, self.bytes).min(share),
            None => share,
        };
        if let Some(caps) = &self.caps {
            budget = budget.min(caps.granted);
        }
        let before = self.bytes;
        let progress = transfer.pump(&mut self.stream, &mut self.bytes, budget);
        if let Some(caps) = &mut self.caps {
            caps.spent(self.bytes - before);
        }
        match progress {
            Ok(Progress::Done) => {
                if cfg.fsync_uploads {
                    // The 226 waits for the sync, which the control channel starts.
                    self.completed_file = transfer.take_upload_file();
                }
                self.finish(cx, CloseReason::Completed);
            }
            Ok(Progress::Blocked) => {}
            Ok(Progress::Yielded) => match &mut self.throttle {
                // Over the limit: sleep the channel (no interest) until the rate allows more.
                Some(t) if t.allowance(now, self.bytes) == 0 => {
                    let wait = t.wait(now, self.bytes);
                    t.paused = Some(cx.call_later(wait));
                }
                // Fairness: a fast peer never blocks; let the other sessions run first.
                // (A used-up share of the caps reserves its next chunk on the next pass.)
                _ => cx.wake(),
            },
            Err(reason) => self.finish(cx, reason),
        }
    }
}

impl Handler<Msg> for DtpHandler {
    fn source(&mut self) -> Option<&mut dyn ioloop::mio::event::Source> {
        Some(self.stream.tcp_mut())
    }

    fn deregister_on_close(&self) -> bool {
        false // the data socket is never duplicated and closes with the handler
    }

    fn interest(&self) -> Option<Interest> {
        match &self.state {
            DtpState::Connecting => Some(Interest::WRITABLE),
            // Idle: data the client sends early waits in the kernel until a STOR comes
            // (a TLS handshake still proceeds).
            DtpState::Idle | DtpState::Closing => self.stream.interest(None),
            DtpState::Busy(t) if self.paused() || t.waiting_file() => self.stream.interest(None),
            DtpState::Busy(t) => self.stream.interest(Some(t.interest())),
        }
    }

    fn on_start(&mut self, cx: &mut Ctx<'_, Msg>) {
        if let DtpState::Connecting = self.state {
            self.timer = Some(cx.call_later(self.shared.config.active_timeout));
        } else if let Err(e) = self.start_tls(cx) {
            self.finish(cx, CloseReason::TlsHandshake(e));
        }
    }

    fn on_ready(&mut self, cx: &mut Ctx<'_, Msg>, _ready: Ready) {
        if let DtpState::Connecting = self.state {
            match ioloop::connect_state(self.stream.tcp()) {
                ConnectState::Pending => {}
                ConnectState::Failed(e) => {
                    cx.send(
                        self.control,
                        Msg::ToControl(cx.me(), DtpEvent::ActiveFailed(e)),
                    );
                    self.reason = Some(CloseReason::Aborted);
                    self.announced = false;
                    cx.close();
                }
                ConnectState::Connected => {
                    if let Some(t) = self.timer.take() {
                        cx.cancel(t);
                    }
                    self.state = DtpState::Idle;
                    if let Err(e) = self.start_tls(cx) {
                        self.finish(cx, CloseReason::TlsHandshake(e));
                    }
                    cx.send(
                        self.control,
                        Msg::ToControl(cx.me(), DtpEvent::Connected(cx.me())),
                    );
                }
            }
            return;
        }
        if let DtpState::Closing = self.state {
            if self.stream.flush_tls().is_err() || !self.stream.wants_write() {
                cx.close();
            }
            return;
        }
        // Records rustls queued while no transfer writes (session tickets after the
        // handshake); a send error shows up again in the transfer.
        let _ = self.stream.flush_tls();
        self.pump(cx);
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_, Msg>, timer: TimerId) {
        if let Some(t) = &mut self.throttle {
            if t.paused == Some(timer) {
                // Awake again; no readiness edge comes for data already waiting.
                t.paused = None;
                cx.wake();
                return;
            }
        }
        if let Some(c) = &mut self.caps {
            if c.paused == Some(timer) {
                // The reserved chunk's turn has come. The next data-timeout tick may come
                // before the chunk moves: it still counts as the wait.
                c.paused = None;
                c.waited = true;
                cx.wake();
                return;
            }
        }
        if let DtpState::Closing = self.state {
            // Only the linger timer counts: the periodic data timer may tick any time.
            if Some(timer) == self.handshake_timer {
                // The client stopped reading before the end of the TLS stream.
                let e = io::Error::new(io::ErrorKind::TimedOut, "the TLS stream did not drain");
                self.reason = Some(CloseReason::Network(e));
                return cx.close();
            }
            return;
        }
        if Some(timer) == self.handshake_timer {
            self.handshake_timer = None;
            let e = io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out");
            self.shared.count(Counter::TlsHandshakeFailures, 1);
            return self.finish(cx, CloseReason::TlsHandshake(e));
        }
        if Some(timer) != self.timer {
            return;
        }
        if let DtpState::Connecting = self.state {
            cx.send(
                self.control,
                Msg::ToControl(cx.me(), DtpEvent::ActiveTimeout),
            );
            self.announced = false;
            cx.close();
            return;
        }
        // Waiting for its turn in a shared cap (now or since the last tick) is the
        // server's doing, not a stalled peer.
        let waiting_turn = self
            .caps
            .as_mut()
            .is_some_and(|c| std::mem::take(&mut c.waited) || c.paused.is_some());
        if self.bytes == self.progress_mark && !waiting_turn {
            self.finish(cx, CloseReason::Timeout);
        }
        self.progress_mark = self.bytes;
    }

    fn on_message(&mut self, cx: &mut Ctx<'_, Msg>, msg: Msg) {
        match msg {
            Msg::ToData(DataCmd::Start(job, log)) => {
                // sendfile(2) and splice(2) would bypass the encryption.
                let zero_copy = self.shared.config.use_sendfile && !self.stream.is_tls();
                if !matches!(job, Job::Receive { .. }) {
                    // A download's client reads to the end, session tickets too.
                    self.stream.allow_session_tickets();
                }
                #[cfg(any(target_os = "linux", target_os = "android"))]
                if !matches!(job, Job::Receive { .. }) {
                    let socket = socket2::SockRef::from(self.stream.tcp());
                    if let Err(e) = socket.set_tcp_notsent_lowat(SEND_NOTSENT_LOWAT) {
                        log::debug!("TCP_NOTSENT_LOWAT on a data connection: {e}");
                    }
                }
                let cfg = &self.shared.config;
                let pooled = matches!(
                    job,
                    Job::SendFile { pooled: true, .. } | Job::Receive { pooled: true, .. }
                );
                let pool = pooled.then(|| (Arc::clone(&self.shared), (cx.loop_handle(), cx.me())));
                let transfer = Transfer::new(
                    job,
                    zero_copy,
                    cfg.ac_in_buffer_size,
                    cfg.ac_out_buffer_size,
                    pool,
                );
                log::debug!(
                    "{} {} starts{}",
                    log.prefix,
                    log.cmd,
                    if transfer.zero_copy() {
                        " (zero-copy)"
                    } else {
                        ""
                    }
                );
                self.log = Some(log);
                self.state = DtpState::Busy(transfer);
                if self.timer.is_none() {
                    if let Some(t) = cfg.data_timeout {
                        self.timer = Some(cx.call_every(t));
                    }
                }
                self.pump(cx);
            }
            Msg::ToData(DataCmd::Abort) => self.finish(cx, CloseReason::Aborted),
            Msg::ToData(DataCmd::FileReady) => {
                if let DtpState::Busy(_) = self.state {
                    self.pump(cx);
                }
            }
            Msg::ToData(DataCmd::Abandon) => {
                self.abandoned = true;
                self.finish(cx, CloseReason::Aborted);
            }
            Msg::ToControl(..) | Msg::ToServer(_) | Msg::ToSession(_) | Msg::Proxied(_) => {}
        }
    }

    fn on_close(&mut self, cx: &mut Ctx<'_, Msg>) {
        if !self.announced {
            // A failed connect was already reported; there is no channel to close.
            return;
        }
        let reason = self.reason.take().unwrap_or(CloseReason::Aborted);
        let bytes = self.bytes;
        // This channel alone writes a transfer's log lines and fires its callback: it
        // knows how many bytes moved and why it ended, even when nobody listens.
        let listening = !self.abandoned && cx.is_alive(self.control);
        let reported = match self.log.take() {
            Some(log) => {
                log_close_reason(&log.prefix, &reason);
                if log.deferred && listening {
                    false
                } else {
                    let completed = matches!(reason, CloseReason::Completed);
                    log.ended(&self.shared, completed, bytes);
                    true
                }
            }
            None => false,
        };
        if !listening {
            return; // the session is closing, or the whole loop
        }
        cx.send(
            self.control,
            Msg::ToControl(
                cx.me(),
                DtpEvent::Closed(Closure {
                    bytes,
                    reason,
                    reported,
                    file: self.completed_file.take(),
                }),
            ),
        );
    }
}

/// The line that says why a transfer ended early, before the transfer's own line
/// (pyftpdlib's order).
fn log_close_reason(prefix: &str, reason: &CloseReason) {
    match reason {
        CloseReason::Network(e) => log::warn!("{prefix} data connection error: {e}"),
        CloseReason::File(e) => {
            log::warn!("{prefix} {}; transfer aborted.", crate::error::strerror(e));
        }
        CloseReason::Timeout => log::info!("{prefix} Data connection timed out."),
        CloseReason::TlsHandshake(e) => log::info!("{prefix} SSL handshake failed: {e}"),
        CloseReason::TlsReuseRequired => {
            log::warn!("{prefix} data connection refused: it did not resume the TLS session")
        }
        CloseReason::TlsTruncated => log::warn!("{prefix} Unexpected SSL EOF."),
        CloseReason::Completed | CloseReason::Aborted | CloseReason::PeerClosedEarly => {}
    }
}

/// Compares IP addresses as pyftpdlib does after stripping `::ffff:`: an IPv4 client seen
/// through an IPv6 socket is the same client.
pub(crate) fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// The share of the user's and the server's caps (the authorizer's
/// [`crate::authorizers::Authorizer::bandwidth`] for `username`, else the configured
/// per-user default) for a transfer that starts; None when neither caps it.
fn cap_share(shared: &Arc<Shared>, username: &str, upload: bool) -> Option<CapShare> {
    let cfg = &shared.config;
    let user = shared.authorizer.bandwidth(username);
    let (dir, caps) = if upload {
        let user = user.map_or(cfg.user_read_limit, |b| b.read_limit);
        let caps = Caps {
            server: cfg.server_read_limit,
            user,
        };
        (Direction::Upload, caps)
    } else {
        let user = user.map_or(cfg.user_write_limit, |b| b.write_limit);
        let caps = Caps {
            server: cfg.server_write_limit,
            user,
        };
        (Direction::Download, caps)
    };
    caps.any()
        .then(|| CapShare::new(Arc::clone(&shared.bandwidth), dir, username, caps))
}

/// A bandwidth limit: the transfer may have moved `rate` bytes per second since it
/// started, plus a small burst. Unlike pyftpdlib's one-second windows (which let a whole
/// second's worth through at once, then sleep), the allowance grows continuously.
struct Throttle {
    rate: u64,
    started: std::time::Instant,
    base: u64,
    paused: Option<TimerId>,
}

impl Throttle {
    fn new(rate: u64, now: std::time::Instant, bytes: u64) -> Self {
        Throttle {
            rate,
            started: now,
            base: bytes,
            paused: None,
        }
    }

    /// Bytes that may still move at `now`.
    fn allowance(&self, now: std::time::Instant, bytes: u64) -> u64 {
        let elapsed = now.saturating_duration_since(self.started).as_secs_f64();
        let allowed = (self.rate as f64 * elapsed) as u64 + self.burst();
        allowed.saturating_sub(bytes - self.base)
    }

    /// How long until a burst's worth may move again.
    fn wait(&self, now: std::time::Instant, bytes: u64) -> Duration {
        let due = (bytes - self.base) as f64 / self.rate as f64;
        let elapsed = now.saturating_duration_since(self.started).as_secs_f64();
        Duration::from_secs_f64((due - elapsed).max(0.001))
    }

    /// A twentieth of a second's worth, at least 4 KiB: small enough to keep the rate
    /// even, large enough not to wake up for every packet.
    fn burst(&self) -> u64 {
        (self.rate / 20).max(4096)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A transfer that always has data to move, pumped as `DtpHandler::pump` does: each
    /// pass moves what the throttle allows, or what the socket takes (`link` bytes, after
    /// which the next pass comes `pass` later, when it is writable again); a pass that
    /// used up the allowance sleeps for `wait()`. Returns the bytes moved in `span` and
    /// the number of sleeps; checks on the way that the total never runs ahead of the
    /// rate by more than one burst.
    fn pump_for(rate: u64, link: u64, pass: Duration, span: Duration) -> (u64, u32) {
        let start = Instant::now();
        let throttle = Throttle::new(rate, start, 0);
        let (mut now, mut bytes, mut sleeps) = (start, 0u64, 0u32);
        while now - start < span {
            let budget = throttle.allowance(now, bytes);
            let moved = budget.min(link);
            bytes += moved;
            if moved == budget && throttle.allowance(now, bytes) == 0 {
                now += throttle.wait(now, bytes);
                sleeps += 1;
                continue;
            }
            now += pass;
            let ceiling = rate as f64 * (now - start).as_secs_f64() + throttle.burst() as f64;
            assert!(bytes as f64 <= ceiling, "{bytes} B by {:?}", now - start);
        }
        (bytes, sleeps)
    }

    #[test]
    fn throttled_transfers_keep_within_a_tenth_of_the_limit_over_five_seconds() {
        let span = Duration::from_secs(5);
        for rate in [1_000_000, 1 << 20, 10_000_000, 10 << 20] {
            for (link, pass) in [
                (64 << 10, Duration::from_micros(50)),
                (1 << 30, Duration::from_micros(1)),
                (16 << 10, Duration::from_micros(100)),
            ] {
                let (bytes, sleeps) = pump_for(rate, link, pass, span);
                let achieved = bytes as f64 / span.as_secs_f64();
                let off = (achieved - rate as f64).abs() / rate as f64;
                assert!(
                    off < 0.10,
                    "rate {rate}, link {link}: {achieved:.0} B/s ({:.1} % off)",
                    off * 100.0
                );
                // A burst per wake-up: about 20 a second (10 to 40 pass), not a busy loop.
                assert!(
                    (50..=200).contains(&sleeps),
                    "rate {rate}, link {link}: {sleeps} sleeps in {span:?}"
                );
            }
        }
    }

    #[test]
    fn a_link_slower_than_the_limit_is_never_put_to_sleep() {
        // 4 KiB a millisecond is ~4 MB/s: under a 10 MB/s limit the throttle never bites.
        let (bytes, sleeps) = pump_for(
            10_000_000,
            4 << 10,
            Duration::from_millis(1),
            Duration::from_secs(1),
        );
        assert_eq!(sleeps, 0);
        assert_eq!(bytes, 1000 * (4 << 10));
    }
}

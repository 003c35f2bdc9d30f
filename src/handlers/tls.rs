//! FTPS over rustls (RFC 4217; pyftpdlib's TLS_FTPHandler and TLS_DTPHandler).
//!
//! A channel reads and writes through a [`Transport`]: the mio `TcpStream`, plain or with
//! a rustls server connection layered on it. The socket and its registration stay the same
//! when AUTH TLS switches a control connection to TLS. Handshakes run inside the loop:
//! every read and write drives them without blocking, the owner adds `WRITABLE` to its
//! interest while rustls has records to send and `READABLE` while a handshake runs, and a
//! loop timer bounds them. This module also holds the AUTH / PBSZ / PROT bodies and the
//! TLS-required checks.

use std::io::{self, Read, Write};
use std::sync::Arc;

use ioloop::mio::net::TcpStream;
use ioloop::{Ctx, Interest, TimerId};
use rustls::{HandshakeKind, ServerConfig, ServerConnection};

use super::control::{FtpHandler, Wait};
use super::{CloseReason, Msg};
use crate::config::TlsConfig;
use crate::proto::Reply;

/// A channel's byte stream: plain TCP, or TLS over that same TCP socket.
pub(crate) struct Transport {
    tcp: TcpStream,
    layer: Layer,
}

/// What runs on top of the TCP socket.
enum Layer {
    Plain,
    Tls(Box<TlsLayer>),
}

struct TlsLayer {
    conn: ServerConnection,
    /// The peer closed TCP; rustls was told (it knows whether close_notify came first).
    tcp_eof: bool,
}

/// What the data side needs to secure a data connection (PROT P).
#[derive(Clone)]
pub(crate) struct DataTls {
    pub(crate) config: Arc<ServerConfig>,
    /// Ties resumed sessions to the control session that created them.
    pub(crate) token: [u8; TOKEN_LEN],
    pub(crate) require_reuse: bool,
    pub(crate) handshake_timeout: std::time::Duration,
}

impl Transport {
    /// Plain TCP.
    pub(crate) fn plain(tcp: TcpStream) -> Transport {
        Transport {
            tcp,
            layer: Layer::Plain,
        }
    }

    /// TLS (server side) from the first byte.
    pub(crate) fn tls(
        tcp: TcpStream,
        config: &Arc<ServerConfig>,
        token: &[u8],
    ) -> io::Result<Transport> {
        let mut t = Transport::plain(tcp);
        t.start_tls(config, token, &[])?;
        Ok(t)
    }

    /// Layers a server-side TLS connection on the socket. `early` holds bytes already read
    /// from the socket that belong to the TLS stream (a ClientHello sent right behind AUTH
    /// TLS). `token` is stored in the session tickets this connection issues, and checked
    /// on resumption (see [`resumed_with`](Self::resumed_with)).
    pub(crate) fn start_tls(
        &mut self,
        config: &Arc<ServerConfig>,
        token: &[u8],
        early: &[u8],
    ) -> io::Result<()> {
        let mut conn = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
        conn.set_resumption_data(token);
        let mut layer = TlsLayer {
            conn,
            tcp_eof: false,
        };
        if !early.is_empty() {
            let mut cursor = early;
            while !cursor.is_empty() {
                if layer.conn.read_tls(&mut cursor)? == 0 {
                    break;
                }
                layer.process()?;
            }
        }
        self.layer = Layer::Tls(Box::new(layer));
        Ok(())
    }

    /// The TCP socket (to register, shut down, or set options on).
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// The TCP socket, mutably (for registration).
    pub(crate) fn tcp_mut(&mut self) -> &mut TcpStream {
        &mut self.tcp
    }

    /// Whether TLS is on.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.layer, Layer::Tls(_))
    }

    /// Whether a TLS handshake is still running.
    pub(crate) fn is_handshaking(&self) -> bool {
        match &self.layer {
            Layer::Plain => false,
            Layer::Tls(t) => t.conn.is_handshaking(),
        }
    }

    /// Whether TLS records wait to be written to the socket.
    pub(crate) fn wants_write(&self) -> bool {
        match &self.layer {
            Layer::Plain => false,
            Layer::Tls(t) => t.conn.wants_write(),
        }
    }

    /// `want` (the owner's own interest) plus what TLS needs: `WRITABLE` while records
    /// are queued, `READABLE` while a handshake runs.
    pub(crate) fn interest(&self, want: Option<Interest>) -> Option<Interest> {
        let Layer::Tls(t) = &self.layer else {
            return want;
        };
        let mut extra = None;
        if t.conn.wants_write() {
            extra = Some(Interest::WRITABLE);
        }
        if t.conn.is_handshaking() && !t.tcp_eof {
            extra = Some(extra.map_or(Interest::READABLE, |i| i | Interest::READABLE));
        }
        match (want, extra) {
            (Some(a), Some(b)) => Some(a | b),
            (a, b) => a.or(b),
        }
    }

    /// Drives the handshake as far as the socket allows. `Ok(true)` once it is complete
    /// (always for plain TCP), `Ok(false)` while it waits for the peer.
    ///
    /// # Errors
    /// A TLS error (the alert is sent, best effort), or the peer closed the connection.
    pub(crate) fn handshake(&mut self) -> io::Result<bool> {
        let Layer::Tls(t) = &mut self.layer else {
            return Ok(true);
        };
        loop {
            t.push_out(&mut self.tcp)?;
            if !t.conn.is_handshaking() {
                return Ok(true);
            }
            match t.pull(&mut self.tcp) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => {
                    // Tell the client why, as `read` does: send the alert rustls queued.
                    let _ = t.push_out(&mut self.tcp);
                    return Err(e);
                }
            }
        }
    }

    /// Writes queued TLS records until done or the socket would block.
    ///
    /// # Errors
    /// A send error.
    pub(crate) fn flush_tls(&mut self) -> io::Result<()> {
        match &mut self.layer {
            Layer::Plain => Ok(()),
            Layer::Tls(t) => t.push_out(&mut self.tcp),
        }
    }

    /// Queues a TLS close_notify alert and tries to send it (a clean end of the stream).
    pub(crate) fn send_close_notify(&mut self) {
        if let Layer::Tls(t) = &mut self.layer {
            t.conn.send_close_notify();
            let _ = t.push_out(&mut self.tcp);
        }
    }

    /// Whether the completed handshake resumed a session issued to the holder of `token`
    /// (TLS 1.3 tickets carry it; TLS 1.2 resumption cannot say whose it was and counts).
    pub(crate) fn resumed_with(&self, token: &[u8]) -> bool {
        let Layer::Tls(t) = &self.layer else {
            return false;
        };
        t.conn.handshake_kind() == Some(HandshakeKind::Resumed)
            && t.conn
                .received_resumption_data()
                .map_or(true, |d| d == token)
    }

    /// The negotiated protocol version and cipher suite, for the log.
    pub(crate) fn describe(&self) -> String {
        let Layer::Tls(t) = &self.layer else {
            return "plain".to_owned();
        };
        let version = t
            .conn
            .protocol_version()
            .map_or_else(|| "?".to_owned(), |v| format!("{v:?}"));
        let suite = t
            .conn
            .negotiated_cipher_suite()
            .map_or_else(|| "?".to_owned(), |s| format!("{:?}", s.suite()));
        let kind = match t.conn.handshake_kind() {
            Some(HandshakeKind::Resumed) => "resumed",
            Some(HandshakeKind::Full | HandshakeKind::FullWithHelloRetryRequest) | None => "full",
        };
        format!("{version} {suite} ({kind})")
    }
}

impl TlsLayer {
    /// Writes queued records until none are left or the socket would block.
    fn push_out(&mut self, tcp: &mut TcpStream) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads one batch of records from the socket and processes them. `Ok(false)` when the
    /// socket had nothing (or rustls has plaintext waiting to be read first).
    fn pull(&mut self, tcp: &mut TcpStream) -> io::Result<bool> {
        // During a handshake rustls reads only once its own flight is out.
        self.push_out(tcp)?;
        if self.tcp_eof {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if !self.conn.wants_read() {
            return Ok(false);
        }
        loop {
            match self.conn.read_tls(tcp) {
                Ok(0) => {
                    self.tcp_eof = true;
                    break;
                }
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.process()?;
        // Handshake replies, session tickets, the answer to a close_notify.
        self.push_out(tcp)?;
        if self.tcp_eof && self.conn.is_handshaking() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(true)
    }

    fn process(&mut self) -> io::Result<()> {
        match self.conn.process_new_packets() {
            Ok(_) => Ok(()),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

impl Read for Transport {
    /// Plaintext. `Ok(0)` only after the peer's close_notify; a TCP close without one is
    /// `UnexpectedEof` (a truncation, not an end).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Layer::Tls(t) = &mut self.layer else {
            return self.tcp.read(buf);
        };
        loop {
            match t.conn.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
            match t.pull(&mut self.tcp) {
                Ok(true) => {}
                Ok(false) => return Err(io::ErrorKind::WouldBlock.into()),
                Err(e) => {
                    // A TLS error: send the alert rustls queued, best effort.
                    let _ = t.push_out(&mut self.tcp);
                    return Err(e);
                }
            }
        }
    }
}

impl Write for Transport {
    /// Plaintext; accepted bytes are encrypted and sent as the socket allows (during a
    /// handshake they wait inside rustls). `WouldBlock` while earlier records are unsent.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Layer::Tls(t) = &mut self.layer else {
            return self.tcp.write(buf);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        t.push_out(&mut self.tcp)?;
        if t.conn.wants_write() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if t.conn.is_handshaking() {
            // A write-only channel (a download) must still read the handshake.
            while t.conn.is_handshaking() && t.pull(&mut self.tcp)? {}
        }
        let n = t.conn.writer().write(buf)?;
        t.push_out(&mut self.tcp)?;
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_tls()?;
        if self.wants_write() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(())
    }
}

/// The state of TLS on a control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ControlTls {
    /// Plain text (no AUTH yet).
    Clear,
    /// `234` is queued; the switch happens once it is sent.
    Starting,
    /// The handshake runs; the timer bounds it.
    Handshaking(Option<TimerId>),
    /// Secured.
    Secure,
}

/// The data channel protection level (PBSZ / PROT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DataProt {
    /// No PBSZ yet: PROT is refused.
    NoPbsz,
    /// PBSZ done, PROT C (or no PROT yet): clear data connections.
    Clear,
    /// PROT P: TLS on data connections.
    Private,
}

/// A session's FTPS state. Boxed, and there only once FTPS is in use (AUTH, or implicit
/// FTPS from the start): a plain session carries one null pointer.
pub(super) struct SessionTls(Option<Box<TlsState>>);

struct TlsState {
    control: ControlTls,
    prot: DataProt,
    /// Random; stored in the session tickets issued to this session, so a data connection
    /// can prove it resumed this session and not another client's.
    token: [u8; TOKEN_LEN],
    /// TLS refused the data connection before a transfer command came: its 522.
    refused: Option<Reply>,
}

impl SessionTls {
    /// The state of a new session: TLS from the start in implicit mode.
    pub(super) fn new(tls: Option<&TlsConfig>) -> SessionTls {
        match tls {
            Some(cfg) if cfg.implicit => SessionTls(Some(Box::new(TlsState {
                control: ControlTls::Handshaking(None),
                prot: DataProt::Private,
                token: new_token(cfg),
                refused: None,
            }))),
            Some(_) | None => SessionTls(None),
        }
    }

    /// The resumption token (empty until FTPS is in use).
    pub(super) fn token(&self) -> &[u8] {
        self.0.as_ref().map_or(&[], |s| &s.token)
    }

    fn control(&self) -> ControlTls {
        self.0.as_ref().map_or(ControlTls::Clear, |s| s.control)
    }

    fn prot(&self) -> DataProt {
        self.0.as_ref().map_or(DataProt::NoPbsz, |s| s.prot)
    }

    /// The state, created (with a fresh token) on first use.
    fn state(&mut self, cfg: &TlsConfig) -> &mut TlsState {
        self.0.get_or_insert_with(|| {
            Box::new(TlsState {
                control: ControlTls::Clear,
                prot: DataProt::NoPbsz,
                token: new_token(cfg),
                refused: None,
            })
        })
    }

    /// Remembers why TLS refused an idle data connection.
    pub(super) fn note_refusal(&mut self, reason: &CloseReason) {
        let refusal = match reason {
            CloseReason::TlsHandshake(_) => Reply::new(522, "SSL handshake failed."),
            CloseReason::TlsReuseRequired => {
                Reply::new(522, "SSL connection failed: session reuse required")
            }
            CloseReason::Completed
            | CloseReason::Aborted
            | CloseReason::PeerClosedIdle
            | CloseReason::PeerClosedEarly
            | CloseReason::Network(_)
            | CloseReason::File(_)
            | CloseReason::Timeout
            | CloseReason::TlsTruncated => return,
        };
        // A TLS data connection exists only under PROT P, so the state is there.
        if let Some(s) = self.0.as_mut() {
            s.refused = Some(refusal);
        }
    }

    /// A new data connection is being set up.
    pub(super) fn clear_refusal(&mut self) {
        if let Some(s) = self.0.as_mut() {
            s.refused = None;
        }
    }
}

/// A session's resumption token.
fn new_token(cfg: &TlsConfig) -> [u8; TOKEN_LEN] {
    let mut token = [0u8; TOKEN_LEN];
    // Without randomness the token only loses its binding power, not safety: resumption
    // itself is still checked.
    let _ = cfg
        .server_config
        .crypto_provider()
        .secure_random
        .fill(&mut token);
    token
}

impl FtpHandler {
    fn set_control_tls(&mut self, state: ControlTls) {
        log::trace!(
            "{} control TLS {:?}=>{state:?}",
            self.prefix(),
            self.tls.control()
        );
        if let Some(cfg) = self.shared.config.tls.as_ref() {
            self.tls.state(cfg).control = state;
        }
    }

    fn set_prot(&mut self, prot: DataProt) {
        log::trace!("{} PROT {:?}=>{prot:?}", self.prefix(), self.tls.prot());
        if let Some(cfg) = self.shared.config.tls.as_ref() {
            self.tls.state(cfg).prot = prot;
        }
    }

    /// AUTH TLS / SSL / TLS-C / TLS-P (RFC 4217 §4): 234, then the handshake once the
    /// reply is sent.
    pub(super) fn ftp_auth(&mut self, arg: &str) {
        let arg = arg.to_ascii_uppercase();
        if self.tls.control() != ControlTls::Clear {
            self.respond(Reply::new(503, "Already using TLS."));
        } else if matches!(arg.as_str(), "TLS" | "TLS-C" | "SSL" | "TLS-P") {
            self.respond(Reply::new(234, format!("AUTH {arg} successful.")));
            self.set_control_tls(ControlTls::Starting);
            self.set_wait(Wait::StartTls);
        } else {
            self.respond(Reply::new(
                502,
                "Unrecognized encryption type (use TLS or SSL).",
            ));
        }
    }

    /// PBSZ (RFC 4217 §8): any value is taken as 0.
    pub(super) fn ftp_pbsz(&mut self) {
        if !self.control_secure() {
            return self.respond(Reply::new(
                503,
                "PBSZ not allowed on insecure control connection.",
            ));
        }
        self.respond(Reply::new(200, "PBSZ=0 successful."));
        if self.tls.prot() == DataProt::NoPbsz {
            self.set_prot(DataProt::Clear);
        }
    }

    /// PROT C / P (RFC 4217 §9); S and E are not offered.
    pub(super) fn ftp_prot(&mut self, arg: &str) {
        let arg = arg.to_ascii_uppercase();
        if !self.control_secure() {
            return self.respond(Reply::new(
                503,
                "PROT not allowed on insecure control connection.",
            ));
        }
        if self.tls.prot() == DataProt::NoPbsz {
            return self.respond(Reply::new(
                503,
                "You must issue the PBSZ command prior to PROT.",
            ));
        }
        match arg.as_str() {
            "C" => {
                self.respond(Reply::new(200, "Protection set to Clear"));
                self.set_prot(DataProt::Clear);
            }
            "P" => {
                self.respond(Reply::new(200, "Protection set to Private"));
                self.set_prot(DataProt::Private);
            }
            "S" | "E" => self.respond(Reply::new(
                521,
                format!("PROT {arg} unsupported (use C or P)."),
            )),
            _ => self.respond(Reply::new(502, "Unrecognized PROT type (use C or P).")),
        }
    }

    /// REIN, and USER while logged in: PBSZ / PROT start over; TLS stays on the control
    /// connection (and implicit FTPS keeps its implied PROT P).
    pub(super) fn reset_protection(&mut self) {
        let implicit = self.shared.config.tls.as_ref().is_some_and(|c| c.implicit);
        let initial = if implicit {
            DataProt::Private
        } else {
            DataProt::NoPbsz
        };
        if self.tls.prot() != initial {
            self.set_prot(initial);
        }
    }

    /// The `tls_control_required` / `tls_data_required` refusals, checked after the gate
    /// and before the command runs (pyftpdlib's order).
    pub(super) fn tls_refusal(&self, name: &str) -> Option<Reply> {
        let cfg = self.shared.config.tls.as_ref()?;
        match name {
            "USER" | "PASS" if cfg.control_required && !self.control_secure() => {
                Some(Reply::new(550, "SSL/TLS required on the control channel."))
            }
            "PASV" | "EPSV" | "PORT" | "EPRT"
                if cfg.data_required && self.tls.prot() != DataProt::Private =>
            {
                Some(Reply::new(550, "SSL/TLS required on the data channel."))
            }
            _ => None,
        }
    }

    /// The FEAT lines FTPS adds.
    pub(super) fn tls_features(&self) -> Vec<String> {
        if self.shared.config.tls.is_none() {
            return Vec::new();
        }
        ["AUTH SSL", "AUTH TLS", "PBSZ", "PROT"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    /// What a new data connection needs: Some under PROT P.
    pub(super) fn data_tls(&self) -> Option<DataTls> {
        let cfg = self.shared.config.tls.as_ref()?;
        let state = self.tls.0.as_ref()?;
        (state.prot == DataProt::Private).then(|| DataTls {
            config: cfg.data_server_config(),
            token: state.token,
            require_reuse: cfg.require_session_reuse,
            handshake_timeout: cfg.handshake_timeout,
        })
    }

    /// The 522 for a transfer command whose data connection TLS refused earlier.
    pub(super) fn tls_data_refusal(&self) -> Option<Reply> {
        self.tls.0.as_ref().and_then(|s| s.refused.clone())
    }

    fn control_secure(&self) -> bool {
        self.tls.control() == ControlTls::Secure
    }

    /// Implicit FTPS: the handshake starts with the session; bound it.
    pub(super) fn start_implicit_handshake(&mut self, cx: &mut Ctx<'_, Msg>) {
        if let (ControlTls::Handshaking(None), Some(cfg)) =
            (self.tls.control(), self.shared.config.tls.as_ref())
        {
            let timer = cx.call_later(cfg.handshake_timeout);
            self.set_control_tls(ControlTls::Handshaking(Some(timer)));
        }
    }

    /// After output was flushed: once the 234 is out, layer TLS on the socket.
    pub(super) fn tls_after_flush(&mut self, cx: &mut Ctx<'_, Msg>) {
        if !matches!(self.wait, Wait::StartTls) || self.chat.pending_output() > 0 {
            return;
        }
        let Some(cfg) = self.shared.config.tls.as_ref() else {
            return;
        };
        let config = Arc::clone(&cfg.server_config);
        let timeout = cfg.handshake_timeout;
        // Bytes the client sent behind AUTH belong to the TLS stream, never to the command
        // interpreter (no plaintext command injection).
        let early = self.chat.take_input();
        let token = self.tls.state(cfg).token;
        if let Err(e) = self.chat.stream_mut().start_tls(&config, &token, &early) {
            log::info!("{} SSL handshake failed: {e}", self.prefix());
            return cx.close();
        }
        let timer = cx.call_later(timeout);
        self.set_control_tls(ControlTls::Handshaking(Some(timer)));
        self.end_wait(cx);
    }

    /// After input was read: notes a finished handshake.
    pub(super) fn tls_after_read(&mut self, cx: &mut Ctx<'_, Msg>) {
        if let ControlTls::Handshaking(timer) = self.tls.control() {
            if !self.chat.stream().is_handshaking() {
                if let Some(t) = timer {
                    cx.cancel(t);
                }
                log::debug!(
                    "{} TLS on the control connection: {}",
                    self.prefix(),
                    self.chat.stream().describe()
                );
                self.set_control_tls(ControlTls::Secure);
            }
        }
    }

    /// Whether `timer` is the handshake timer; if so the session ends.
    pub(super) fn tls_timer_fired(&mut self, cx: &mut Ctx<'_, Msg>, timer: TimerId) -> bool {
        if self.tls.control() == ControlTls::Handshaking(Some(timer)) {
            log::info!("{} SSL handshake timeout", self.prefix());
            cx.close();
            return true;
        }
        false
    }

    /// Whether a TLS handshake on the control connection runs (for the failure log line).
    pub(super) fn tls_handshaking(&self) -> bool {
        matches!(self.tls.control(), ControlTls::Handshaking(_))
    }
}

/// Bytes of a session's resumption token.
const TOKEN_LEN: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_session_starts_in_clear() {
        assert_eq!(SessionTls::new(None).control(), ControlTls::Clear);
        assert_eq!(SessionTls::new(None).prot(), DataProt::NoPbsz);
        assert!(SessionTls::new(None).token().is_empty());
    }
}

//! FTPS over rustls (RFC 4217; pyftpdlib's TLS_FTPHandler and TLS_DTPHandler).
//!
//! A channel reads and writes through a [`Transport`]: the mio `TcpStream`, plain or with
//! a rustls server connection layered on it. The socket and its registration stay the same
//! when AUTH TLS switches a control connection to TLS. Handshakes run inside the loop:
//! every read and write drives them without blocking, the owner adds `WRITABLE` to its
//! interest while rustls has records to send and `READABLE` while a handshake runs, and a
//! loop timer bounds them. The session's FTPS state is in `ftps`, the commands in `commands::ftps`, and
//! certificate loading with the configuration.

use std::io::{self, Read, Write};
use std::sync::Arc;

use ioloop::mio::net::TcpStream;
use ioloop::Interest;
use rustls::{HandshakeKind, ServerConfig, ServerConnection};

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

    /// The certificate the client presented and the handshake verified (mutual TLS),
    /// DER-encoded: the first of its chain.
    pub(crate) fn peer_certificate(&self) -> Option<&[u8]> {
        match &self.layer {
            Layer::Tls(t) => t
                .conn
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|c| c.as_ref()),
            Layer::Plain => None,
        }
    }

    /// The name the client asked for in its TLS handshake (SNI), once it arrived.
    pub(crate) fn server_name(&self) -> Option<&str> {
        match &self.layer {
            Layer::Tls(t) => t.conn.server_name(),
            Layer::Plain => None,
        }
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
            && t.conn.received_resumption_data().is_none_or(|d| d == token)
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

/// Bytes of a session's resumption token.
pub(crate) const TOKEN_LEN: usize = 16;

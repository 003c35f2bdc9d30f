//! FTPS over rustls (RFC 4217; pyftpdlib's TLS_FTPHandler and TLS_DTPHandler).
//!
//! A channel reads and writes through a [`Transport`]: the mio `TcpStream`, plain or with
//! a rustls server connection layered on it. The socket and its registration stay the same
//! when AUTH TLS switches a control connection to TLS. Handshakes run inside the loop:
//! every read and write drives them without blocking, the owner adds `WRITABLE` to its
//! interest while records wait to be sent and `READABLE` while a handshake runs, and a
//! loop timer bounds them. The session's FTPS state is in `ftps`, the commands in `commands::ftps`, and
//! certificate loading with the configuration.
//!
//! The connection is rustls's unbuffered one: the channel owns the record buffers
//! (`buffers`). A control connection takes them when records arrive or leave and gives
//! them back once empty, and a TLS 1.3 control connection leaves rustls's record state
//! once its handshake is over (`detached`), so an idle TLS session keeps its raw keys and
//! rustls's key schedule only. A data connection keeps its buffers until it closes; once
//! its handshake is over a download seals its own records (`sealed`) and an upload opens
//! them where they arrived (`detached`), each with one copy of the data fewer than through
//! rustls. What that API cannot do itself (tag tickets with the session's token, note the
//! SNI name) the configuration of each handshake does (`binding`).

mod binding;
mod buffers;
mod detached;
mod sealed;
#[cfg(test)]
mod tests;
mod tls13;

use std::io::{self, Read, Write};
use std::sync::Arc;

use ioloop::mio::net::TcpStream;
use ioloop::Interest;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};
use rustls::{HandshakeKind, ProtocolVersion, ServerConfig};

use binding::HandshakeNotes;
pub(crate) use binding::TlsRole;
use buffers::RecordBuf;
use detached::DetachedTls;
use sealed::SealedLayer;

/// A channel's byte stream: plain TCP, or TLS over that same TCP socket.
pub(crate) struct Transport {
    tcp: TcpStream,
    layer: Layer,
}

/// What runs on top of the TCP socket.
enum Layer {
    Plain,
    Tls(Box<TlsLayer>),
    /// A TLS 1.3 control connection after its handshake, or an upload's data connection
    /// after [`Transport::open_receiving`] (see `detached`).
    Detached(Box<DetachedTls>),
    /// A download's data connection once its handshake is done: its records are sealed
    /// here, not by rustls (see [`Transport::seal_sending`]).
    Sealed(Box<SealedLayer>),
    /// rustls refused to hand over a finished connection: nothing more goes through.
    Failed,
}

struct TlsLayer {
    conn: UnbufferedServerConnection,
    /// Records read from the socket and not yet processed.
    incoming: RecordBuf,
    /// Records waiting to be sent.
    outgoing: RecordBuf,
    /// Decrypted bytes the owner has not read yet (the rest of a record larger than its
    /// read, or records that arrived while it wrote).
    plaintext: RecordBuf,
    /// The control session's token (see [`TlsRole`]).
    token: [u8; TOKEN_LEN],
    /// What the handshake's configuration noted (the SNI name) and is told (tickets).
    notes: Arc<HandshakeNotes>,
    /// What one read(2) of records asks for at least.
    read_chunk: usize,
    /// The peer closed TCP.
    tcp_eof: bool,
    /// The peer's close_notify arrived: the end of its data.
    peer_closed: bool,
    /// A TLS error ended the connection (rustls is not asked again: it would send a
    /// second alert).
    failed: bool,
    role: TlsRole,
    /// rustls's last state was traffic with nothing to send: a control connection can be
    /// detached.
    in_traffic: bool,
}

/// What [`TlsLayer::process`] is asked to do once the records that arrived are processed.
enum Want<'a> {
    /// Only process them (a handshake, or keeping up while the owner waits).
    Drive,
    /// Deliver plaintext into this buffer.
    Read(&'a mut [u8]),
    /// Encrypt this plaintext (a prefix of it).
    Write(&'a [u8]),
    /// Queue a close_notify alert.
    CloseNotify,
}

/// How [`TlsLayer::process`] ended.
enum Outcome {
    /// `Read`: bytes delivered; `Write`: bytes encrypted and queued; `CloseNotify`: queued.
    Done(usize),
    /// Nothing more to do until more records arrive.
    NeedInput,
    /// `Read`: the peer's close_notify, with no plaintext left before it.
    PeerClosed,
    /// Both close_notify alerts went: nothing may be written any more.
    Closed,
}

/// Why [`Transport::write_from`] stopped.
#[derive(Debug)]
pub(crate) enum WriteFromError {
    /// The source's error; nothing was sealed.
    Source(io::Error),
    /// The socket's (`WouldBlock` while earlier records wait), or a TLS error.
    Socket(io::Error),
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
        role: TlsRole,
    ) -> io::Result<Transport> {
        let mut t = Transport::plain(tcp);
        t.start_tls(config, token, &[], role)?;
        Ok(t)
    }

    /// Layers a server-side TLS connection on the socket. `early` holds bytes already read
    /// from the socket that belong to the TLS stream (a ClientHello sent right behind AUTH
    /// TLS). `token` (the control session's, [`TOKEN_LEN`] bytes) tags the sessions a
    /// control connection issues; a data connection resumes only sessions tagged with it
    /// (see [`resumed_with`](Self::resumed_with)).
    pub(crate) fn start_tls(
        &mut self,
        config: &Arc<ServerConfig>,
        token: &[u8],
        early: &[u8],
        role: TlsRole,
    ) -> io::Result<()> {
        let token: [u8; TOKEN_LEN] = token
            .try_into()
            .map_err(|_| io::Error::other("a TLS session token of the wrong length"))?;
        let (config, notes) = binding::handshake_config(config, token, role);
        let conn = UnbufferedServerConnection::new(config).map_err(io::Error::other)?;
        let (incoming, outgoing) = match role {
            TlsRole::Control => (RecordBuf::default(), RecordBuf::default()),
            TlsRole::Data => (RecordBuf::held(), RecordBuf::held()),
        };
        let mut layer = TlsLayer {
            conn,
            incoming,
            outgoing,
            plaintext: RecordBuf::default(),
            token,
            notes,
            read_chunk: match role {
                TlsRole::Control => CONTROL_READ_CHUNK,
                TlsRole::Data => DATA_READ_CHUNK,
            },
            tcp_eof: false,
            peer_closed: false,
            failed: false,
            role,
            in_traffic: false,
        };
        if !early.is_empty() {
            layer.incoming.extend(early);
            if let Err(e) = layer.process(&mut Want::Drive) {
                let _ = layer.outgoing.write_to(&mut self.tcp);
                return Err(e);
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
            Layer::Detached(t) => t.peer_certificate(),
            Layer::Plain | Layer::Sealed(_) | Layer::Failed => None,
        }
    }

    /// The name the client asked for in its TLS handshake (SNI), once it arrived.
    pub(crate) fn server_name(&self) -> Option<&str> {
        match &self.layer {
            Layer::Tls(t) => t.notes.server_name(),
            Layer::Detached(t) => t.notes.server_name(),
            Layer::Plain | Layer::Sealed(_) | Layer::Failed => None,
        }
    }

    /// A data connection carries a download: its handshake may issue TLS 1.3 session
    /// tickets, which its client will read (see `binding`).
    pub(crate) fn allow_session_tickets(&self) {
        if let Layer::Tls(t) = &self.layer {
            t.notes.allow_tickets();
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
        !matches!(self.layer, Layer::Plain)
    }

    /// Whether a TLS handshake is still running.
    pub(crate) fn is_handshaking(&self) -> bool {
        match &self.layer {
            Layer::Tls(t) => t.conn.is_handshaking(),
            Layer::Plain | Layer::Detached(_) | Layer::Sealed(_) | Layer::Failed => false,
        }
    }

    /// Whether TLS records wait to be written to the socket.
    pub(crate) fn wants_write(&self) -> bool {
        match &self.layer {
            Layer::Tls(t) => !t.outgoing.is_empty(),
            Layer::Detached(t) => !t.outgoing.is_empty(),
            Layer::Sealed(s) => !s.outgoing.is_empty(),
            Layer::Plain | Layer::Failed => false,
        }
    }

    /// `want` (the owner's own interest) plus what TLS needs: `WRITABLE` while records
    /// are queued, `READABLE` while a handshake runs.
    pub(crate) fn interest(&self, want: Option<Interest>) -> Option<Interest> {
        let mut extra = None;
        if self.wants_write() {
            extra = Some(Interest::WRITABLE);
        }
        let reading_handshake = match &self.layer {
            Layer::Tls(t) => t.conn.is_handshaking() && !t.tcp_eof,
            Layer::Plain | Layer::Detached(_) | Layer::Sealed(_) | Layer::Failed => false,
        };
        if reading_handshake {
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
        let result = t.handshake(&mut self.tcp);
        if result.is_err() {
            // The alert, best effort.
            let _ = t.outgoing.write_to(&mut self.tcp);
        }
        self.detach_if_settled();
        result
    }

    /// After a TLS read or write: a TLS error's alert goes out (best effort), and a control
    /// connection whose handshake is over leaves rustls.
    fn after_call(&mut self, result: io::Result<usize>) -> io::Result<usize> {
        if matches!(&result, Err(e) if e.kind() == io::ErrorKind::InvalidData) {
            let _ = self.flush_tls();
        }
        self.detach_if_settled();
        result
    }

    /// Moves a TLS 1.3 control connection whose handshake is over off rustls's record
    /// state (see `detached`), once rustls has nothing left to do.
    fn detach_if_settled(&mut self) {
        let Layer::Tls(t) = &self.layer else {
            return;
        };
        let settled = t.role == TlsRole::Control
            && t.in_traffic
            && !t.failed
            && !t.peer_closed
            && !t.conn.is_handshaking()
            && tls13::supported(t.conn.negotiated_cipher_suite());
        if !settled {
            return;
        }
        let Layer::Tls(t) = std::mem::replace(&mut self.layer, Layer::Failed) else {
            return;
        };
        match t.detach(TlsRole::Control) {
            Ok(detached) => self.layer = Layer::Detached(Box::new(detached)),
            // The connection stays `Failed`: its reads and writes are errors.
            Err(e) => log::warn!("TLS: rustls kept the connection's keys: {e}"),
        }
    }

    /// Writes queued TLS records until done or the socket would block.
    ///
    /// # Errors
    /// A send error.
    pub(crate) fn flush_tls(&mut self) -> io::Result<()> {
        match &mut self.layer {
            Layer::Tls(t) => t.outgoing.write_to(&mut self.tcp),
            Layer::Detached(t) => t.outgoing.write_to(&mut self.tcp),
            Layer::Sealed(s) => s.outgoing.write_to(&mut self.tcp),
            Layer::Plain | Layer::Failed => Ok(()),
        }
    }

    /// Queues a TLS close_notify alert and tries to send it (a clean end of the stream).
    pub(crate) fn send_close_notify(&mut self) {
        match &mut self.layer {
            Layer::Tls(t) => {
                let _ = t.process(&mut Want::CloseNotify);
                let _ = t.outgoing.write_to(&mut self.tcp);
            }
            Layer::Detached(t) => {
                t.queue_close_notify();
                let _ = t.outgoing.write_to(&mut self.tcp);
            }
            Layer::Sealed(s) => s.send_close_notify(&mut self.tcp),
            Layer::Plain | Layer::Failed => {}
        }
    }

    /// A download's data connection, its handshake done: from now on its records are
    /// sealed here rather than by rustls (one copy of each byte fewer, and no allocation
    /// per record; see `sealed`), and nothing more is read from it. A no-op while the
    /// handshake runs, and for plain TCP, a control connection, or a suite other than TLS
    /// 1.3's AEADs.
    ///
    /// # Errors
    /// rustls refused to hand over the keys (not expected once the checks passed): the
    /// connection is unusable (its reads and writes fail, the socket is shut down).
    pub(crate) fn seal_sending(&mut self) -> io::Result<()> {
        let Some(t) = self.take_data_layer()? else {
            return Ok(());
        };
        let TlsLayer { conn, outgoing, .. } = *t;
        let sealed = conn
            .dangerous_into_kernel_connection()
            .map_err(io::Error::other)
            .and_then(|(secrets, kernel)| SealedLayer::new(kernel, secrets.tx, outgoing));
        match sealed {
            Ok(layer) => {
                self.layer = Layer::Sealed(Box::new(layer));
                Ok(())
            }
            Err(e) => {
                // The TLS state is gone: nothing may go out in the clear.
                let _ = self.tcp.shutdown(std::net::Shutdown::Both);
                Err(e)
            }
        }
    }

    /// A data connection's rustls layer once its TLS 1.3 handshake is done and rustls
    /// has processed what arrived and queued what it had to send (tickets), taken out:
    /// the layer is `Failed` until the caller puts the next one in. None, nothing changed,
    /// before that, or for a connection whose records stay with rustls.
    fn take_data_layer(&mut self) -> io::Result<Option<Box<TlsLayer>>> {
        let Layer::Tls(t) = &mut self.layer else {
            return Ok(None);
        };
        if !t.can_take_over_records() {
            return Ok(None);
        }
        t.process(&mut Want::Drive)?;
        if !t.in_traffic || t.peer_closed {
            // Not now: rustls is not in its traffic state, or the stream ended already.
            return Ok(None);
        }
        match std::mem::replace(&mut self.layer, Layer::Failed) {
            Layer::Tls(t) => Ok(Some(t)),
            other => {
                self.layer = other;
                Ok(None)
            }
        }
    }

    /// An upload's data connection, its handshake done: from now on its records are
    /// opened here rather than by rustls, where they arrived, and the upload is written
    /// to its file from there ([`read_in_place`](Self::read_in_place); see `detached`).
    /// A no-op while the handshake runs or rustls is not in its traffic state yet, and for
    /// plain TCP, a control connection, or a suite other than TLS 1.3's AEADs.
    ///
    /// # Errors
    /// A TLS error, or rustls refused to hand over the keys (not expected once the checks
    /// passed): the connection is unusable.
    pub(crate) fn open_receiving(&mut self) -> io::Result<()> {
        let Some(t) = self.take_data_layer()? else {
            return Ok(());
        };
        let detached = t.detach(TlsRole::Data).map_err(io::Error::other)?;
        self.layer = Layer::Detached(Box::new(detached));
        Ok(())
    }

    /// Plaintext opened where its records arrived, at least `want` bytes when the socket
    /// has them (it is read until then or until it has nothing more), when this is an
    /// [`open_receiving`](Self::open_receiving) connection (None otherwise: the caller
    /// reads through its own buffer). Read bytes are dropped with
    /// [`consume_in_place`](Self::consume_in_place). Empty at the end of the stream (the
    /// peer's close_notify); errors as [`Read::read`]'s.
    pub(crate) fn read_in_place(&mut self, want: usize) -> Option<io::Result<&[u8]>> {
        let Layer::Detached(t) = &mut self.layer else {
            return None;
        };
        if !t.is_data() {
            return None;
        }
        let result = t.fill_in_place(&mut self.tcp, want);
        if matches!(&result, Err(e) if e.kind() == io::ErrorKind::InvalidData) {
            // The fatal alert, best effort.
            let _ = t.outgoing.write_to(&mut self.tcp);
        }
        Some(result.map(|_| t.in_place()))
    }

    /// Drops `n` bytes read through [`read_in_place`](Self::read_in_place).
    pub(crate) fn consume_in_place(&mut self, n: usize) {
        if let Layer::Detached(t) = &mut self.layer {
            t.consume_in_place(n);
        }
    }

    /// Reads up to `max` bytes of `src` into the next records and sends them as the
    /// socket allows, when this is a [`seal_sending`](Self::seal_sending) connection
    /// (None otherwise: the caller writes through its own buffer). `Ok(0)` at the end of
    /// `src`.
    pub(crate) fn write_from(
        &mut self,
        src: &mut dyn Read,
        max: usize,
    ) -> Option<Result<usize, WriteFromError>> {
        match &mut self.layer {
            Layer::Sealed(s) => Some(s.write_from(&mut self.tcp, src, max)),
            Layer::Plain | Layer::Tls(_) | Layer::Detached(_) | Layer::Failed => None,
        }
    }

    /// Seals a key update every `records` records from now on (see `seal_sending`).
    #[cfg(test)]
    pub(crate) fn rekey_every(&mut self, records: u64) {
        if let Layer::Sealed(s) = &mut self.layer {
            s.rekey_every(records);
        }
    }

    /// Whether the completed handshake resumed a session issued to the holder of `token`.
    /// A data connection resumes no other session (its handshake refuses them), so this
    /// is whether it resumed and belongs to `token`. (A download is sealed only after
    /// this was checked.)
    pub(crate) fn resumed_with(&self, token: &[u8]) -> bool {
        let Layer::Tls(t) = &self.layer else {
            return false;
        };
        t.conn.handshake_kind() == Some(HandshakeKind::Resumed) && t.token[..] == *token
    }

    /// Bytes the record buffers hold allocated (none while idle); one more while a
    /// detached connection holds an expanded key.
    #[cfg(test)]
    pub(crate) fn record_buffer_bytes(&self) -> usize {
        match &self.layer {
            Layer::Plain | Layer::Failed => 0,
            Layer::Tls(t) => {
                t.incoming.allocated() + t.outgoing.allocated() + t.plaintext.allocated()
            }
            Layer::Sealed(s) => s.outgoing.allocated(),
            Layer::Detached(t) => {
                let keys = usize::from(t.holds_expanded_keys());
                t.incoming.allocated() + t.outgoing.allocated() + t.plaintext.allocated() + keys
            }
        }
    }

    /// Whether rustls's record state is gone (see `detached`).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn is_detached(&self) -> bool {
        matches!(self.layer, Layer::Detached(_))
    }

    /// How many times a detached connection moved to its next sending key.
    #[cfg(test)]
    pub(crate) fn send_key_updates(&self) -> u32 {
        match &self.layer {
            Layer::Detached(t) => t.send_updates(),
            Layer::Plain | Layer::Tls(_) | Layer::Sealed(_) | Layer::Failed => 0,
        }
    }

    /// The negotiated protocol version and cipher suite, for the log.
    pub(crate) fn describe(&self) -> String {
        let t = match &self.layer {
            Layer::Tls(t) => t,
            Layer::Detached(t) => return t.describe(),
            Layer::Sealed(s) => return s.describe(),
            Layer::Plain => return "plain".to_owned(),
            Layer::Failed => return "failed".to_owned(),
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
    /// A data connection whose TLS 1.3 handshake is done, with a suite `tls13` protects:
    /// one whose records the channel can seal or open itself.
    fn can_take_over_records(&self) -> bool {
        !self.failed
            && self.role == TlsRole::Data
            && !self.conn.is_handshaking()
            && self.conn.protocol_version() == Some(ProtocolVersion::TLSv1_3)
            && tls13::supported(self.conn.negotiated_cipher_suite())
    }

    /// The connection off rustls's record state (see `detached`), with its buffers.
    fn detach(self: Box<Self>, role: TlsRole) -> Result<DetachedTls, rustls::Error> {
        let TlsLayer {
            conn,
            incoming,
            outgoing,
            plaintext,
            notes,
            ..
        } = *self;
        DetachedTls::new(conn, [incoming, outgoing, plaintext], notes, role)
    }

    /// Processes the records that arrived, queueing what rustls sends (handshake
    /// messages, tickets, alerts), then does `want`.
    ///
    /// # Errors
    /// A TLS error (`InvalidData`), now or earlier; the alert is queued, for the caller to
    /// send.
    fn process(&mut self, want: &mut Want<'_>) -> io::Result<Outcome> {
        if self.failed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the TLS connection failed",
            ));
        }
        let result = self.process_records(want);
        if result.is_err() {
            self.failed = true;
            self.queue_alert();
        }
        result
    }

    fn process_records(&mut self, want: &mut Want<'_>) -> io::Result<Outcome> {
        let mut delivered = 0;
        loop {
            self.in_traffic = false;
            let UnbufferedStatus { mut discard, state } =
                self.conn.process_tls_records(self.incoming.bytes_mut());
            let state = match state {
                Ok(state) => state,
                Err(e) => {
                    self.incoming.consume(discard);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            };
            let outcome = match state {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record =
                            record.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                        discard += record.discard;
                        let payload = record.payload;
                        let taken = match want {
                            Want::Read(buf) => {
                                let n = payload.len().min(buf.len() - delivered);
                                buf[delivered..delivered + n].copy_from_slice(&payload[..n]);
                                delivered += n;
                                n
                            }
                            Want::Drive | Want::Write(_) | Want::CloseNotify => 0,
                        };
                        self.plaintext.extend(&payload[taken..]);
                        if matches!(want, Want::Read(buf) if delivered == buf.len()) {
                            break;
                        }
                    }
                    // Until the buffer is full or no whole record is left: an upload's
                    // block takes every record one read(2) brought.
                    matches!(want, Want::Read(buf) if delivered == buf.len())
                        .then_some(Outcome::Done(delivered))
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    loop {
                        match encode.encode(self.outgoing.spare_mut()) {
                            Ok(n) => break self.outgoing.commit(n),
                            Err(EncodeError::InsufficientSize(InsufficientSizeError {
                                required_size,
                            })) => self.outgoing.reserve(required_size),
                            Err(e) => return Err(io::Error::other(e)),
                        }
                    }
                    None
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    // The records are in `outgoing`, which the owner sends as the socket
                    // allows; rustls need not wait for that.
                    transmit.done();
                    None
                }
                ConnectionState::BlockedHandshake => Some(Outcome::NeedInput),
                ConnectionState::PeerClosed => {
                    self.peer_closed = true;
                    None
                }
                ConnectionState::Closed => {
                    self.peer_closed = true;
                    Some(match want {
                        Want::Read(_) if delivered > 0 => Outcome::Done(delivered),
                        Want::Read(_) => Outcome::PeerClosed,
                        Want::Drive | Want::CloseNotify => Outcome::NeedInput,
                        Want::Write(_) => Outcome::Closed,
                    })
                }
                ConnectionState::WriteTraffic(mut traffic) => Some(match want {
                    Want::Drive | Want::Read(_) if delivered == 0 && !self.peer_closed => {
                        self.in_traffic = true;
                        Outcome::NeedInput
                    }
                    Want::Write(data) => {
                        let take = data.len().min(WRITE_CHUNK);
                        let records = take.div_ceil(MAX_FRAGMENT).max(1);
                        self.outgoing.reserve(take + records * RECORD_OVERHEAD);
                        loop {
                            match traffic.encrypt(&data[..take], self.outgoing.spare_mut()) {
                                Ok(n) => break self.outgoing.commit(n),
                                Err(EncryptError::InsufficientSize(InsufficientSizeError {
                                    required_size,
                                })) => self.outgoing.reserve(required_size),
                                Err(e) => return Err(io::Error::other(e)),
                            }
                        }
                        Outcome::Done(take)
                    }
                    Want::CloseNotify => {
                        self.outgoing.reserve(CLOSE_NOTIFY_ROOM);
                        loop {
                            match traffic.queue_close_notify(self.outgoing.spare_mut()) {
                                Ok(n) => break self.outgoing.commit(n),
                                Err(EncryptError::InsufficientSize(InsufficientSizeError {
                                    required_size,
                                })) => self.outgoing.reserve(required_size),
                                Err(e) => return Err(io::Error::other(e)),
                            }
                        }
                        Outcome::Done(0)
                    }
                    Want::Read(_) if delivered > 0 => Outcome::Done(delivered),
                    Want::Read(_) if self.peer_closed => Outcome::PeerClosed,
                    Want::Read(_) | Want::Drive => Outcome::NeedInput,
                }),
                // Early data is off in the configuration; anything else is a state this
                // version of rustls does not have.
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "unexpected TLS state",
                    ))
                }
            };
            self.incoming.consume(discard);
            if let Some(outcome) = outcome {
                return Ok(outcome);
            }
        }
    }

    /// After a TLS error: queues the alert rustls prepared, to be sent best effort.
    /// rustls hands out what it queued before it looks at more records; it is asked once,
    /// and shown the records it has not consumed, since it keeps positions into them.
    fn queue_alert(&mut self) {
        let UnbufferedStatus { discard, state } =
            self.conn.process_tls_records(self.incoming.bytes_mut());
        if let Ok(ConnectionState::EncodeTlsData(mut encode)) = state {
            self.outgoing.reserve(CLOSE_NOTIFY_ROOM);
            if let Ok(n) = encode.encode(self.outgoing.spare_mut()) {
                self.outgoing.commit(n);
            }
        }
        self.incoming.consume(discard);
    }

    /// Drives the handshake; see [`Transport::handshake`].
    fn handshake(&mut self, tcp: &mut TcpStream) -> io::Result<bool> {
        loop {
            self.outgoing.write_to(tcp)?;
            if !self.conn.is_handshaking() {
                return Ok(true);
            }
            self.process(&mut Want::Drive)?;
            if !self.conn.is_handshaking() {
                continue;
            }
            self.outgoing.write_to(tcp)?;
            if !self.read_socket(tcp)? {
                return Ok(false);
            }
        }
    }

    /// Plaintext; see `Read for Transport`.
    fn read(&mut self, tcp: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.plaintext.is_empty() {
                return Ok(self.plaintext.take_into(buf));
            }
            match self.process(&mut Want::Read(buf))? {
                Outcome::Done(n) => {
                    // A ticket or a key update's answer waits for the reply to what was
                    // read, to go out in its send (`write`); the owner flushes it if none.
                    return Ok(n);
                }
                Outcome::PeerClosed => return Ok(0),
                Outcome::NeedInput | Outcome::Closed => {}
            }
            // Handshake messages go out before waiting for the answer; records after
            // the handshake wait for the next write or flush.
            if self.conn.is_handshaking() {
                self.outgoing.write_to(tcp)?;
            }
            if !self.read_socket(tcp)? {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
    }

    /// Plaintext; see `Write for Transport`.
    fn write(&mut self, tcp: &mut TcpStream, buf: &[u8]) -> io::Result<usize> {
        // A few queued records (session tickets, a key update's answer) go out in one
        // send with a short write (a reply); more, or before a download's block, first,
        // as the data path always did.
        if self.outgoing.bytes_mut().len() > MERGE_QUEUED || buf.len() > MERGE_QUEUED {
            self.outgoing.write_to(tcp)?;
            if !self.outgoing.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        // A write-only channel (a download) must still read the handshake.
        if self.conn.is_handshaking() && !self.handshake(tcp)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = match self.process(&mut Want::Write(buf))? {
            Outcome::Done(n) => n,
            Outcome::NeedInput => return Err(io::ErrorKind::WouldBlock.into()),
            Outcome::PeerClosed | Outcome::Closed => return Err(io::ErrorKind::BrokenPipe.into()),
        };
        self.outgoing.write_to(tcp)?;
        Ok(n)
    }

    /// One read(2) of records; see [`RecordBuf::read_records`].
    fn read_socket(&mut self, tcp: &mut TcpStream) -> io::Result<bool> {
        self.incoming
            .read_records(tcp, self.read_chunk, &mut self.tcp_eof)
    }
}

impl Read for Transport {
    /// Plaintext. `Ok(0)` only after the peer's close_notify; a TCP close without one is
    /// `UnexpectedEof` (a truncation, not an end).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() && self.is_tls() {
            return Ok(0);
        }
        let result = match &mut self.layer {
            Layer::Plain => return self.tcp.read(buf),
            Layer::Tls(t) => t.read(&mut self.tcp, buf),
            Layer::Detached(t) => t.read(&mut self.tcp, buf),
            Layer::Sealed(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a download's data connection reads nothing",
                ))
            }
            Layer::Failed => return Err(failed()),
        };
        self.after_call(result)
    }
}

impl Write for Transport {
    /// Plaintext; accepted bytes are encrypted at once and sent as the socket allows.
    /// `WouldBlock` while earlier records are unsent, or while the handshake waits for
    /// the peer.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() && self.is_tls() {
            return Ok(0);
        }
        let result = match &mut self.layer {
            Layer::Plain => return self.tcp.write(buf),
            Layer::Tls(t) => t.write(&mut self.tcp, buf),
            Layer::Detached(t) => t.write(&mut self.tcp, buf),
            Layer::Sealed(s) => s.write(&mut self.tcp, buf),
            Layer::Failed => return Err(failed()),
        };
        self.after_call(result)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_tls()?;
        if self.wants_write() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(())
    }
}

/// The error of every call on a connection rustls refused to hand over.
fn failed() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "the TLS connection failed")
}

/// Bytes of a session's resumption token.
pub(crate) const TOKEN_LEN: usize = 16;

/// Plaintext encrypted per write: a download's 64 KiB block in one go, four full records
/// and one send(2). See docs/performance.md (FTPS).
const WRITE_CHUNK: usize = 64 * 1024;

/// What one read(2) of a data connection asks for at least: several records of an
/// upload's stream of 16 KiB ones. See docs/performance.md (FTPS).
const DATA_READ_CHUNK: usize = 64 * 1024 + 2048;

/// What one read(2) of a control connection asks for at least: commands are short (a
/// record that is not grows the buffer as it comes, as rustls's own buffer does).
const CONTROL_READ_CHUNK: usize = 4096;

/// The largest plaintext of one record (rustls's default `max_fragment_size`).
const MAX_FRAGMENT: usize = 16 * 1024;

/// A record's header, tag and padding at most (TLS 1.2 GCM: 5 + 8 + 16; TLS 1.3: 5 + 1 +
/// 16), rounded up.
const RECORD_OVERHEAD: usize = 40;

/// Queued record bytes that a write of at most as many sends together with its own (a
/// login's two session tickets and the reply after them in one send instead of two).
const MERGE_QUEUED: usize = 4096;

/// Room for one alert record.
const CLOSE_NOTIFY_ROOM: usize = 64;

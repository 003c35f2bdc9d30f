//! A control connection's TLS 1.3 records after its handshake, without rustls's record
//! state.
//!
//! A logged-in FTPS session spends nearly all its life idle, and rustls's connection keeps
//! about 2.8 KB per session that an idle one does not need: the connection's state machine,
//! the two expanded AEAD keys and the key schedule. Once a TLS 1.3 control handshake is
//! over, rustls hands the traffic keys over (`dangerous_into_kernel_connection`, the API
//! meant for kernel TLS) and keeps only what computes the next keys on a key update. This
//! module then protects the records itself (`tls13`: ring's AEADs, the code rustls calls),
//! holding each direction as its raw key, IV and sequence number and expanding a key only
//! for the call (a read or a write) that protects records.
//!
//! After the handshake a client may send application data, alerts, and KeyUpdate; any
//! other record is a protocol error, answered with a fatal alert and the end of the
//! connection. TLS 1.2 connections stay on rustls.
//!
//! An upload's data connection leaves rustls the same way once its handshake is over
//! (`Transport::open_receiving`), for another reason: its records are opened where they
//! arrived, each one's plaintext moved down against the previous one's as the cipher
//! decrypts it, and the file is written from there (`fill_in_place`). rustls hands each
//! record's plaintext out through a buffer of its own, a copy of every byte of an upload.
//! A data connection keeps its keys expanded and its buffers for the transfer's life.

use std::io;
use std::sync::Arc;

use ioloop::mio::net::TcpStream;
use rustls::kernel::KernelConnection;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::SupportedCipherSuite;

use super::binding::HandshakeNotes;
use super::buffers::RecordBuf;
use super::tls13::{
    TrafficKey, ALERT, APPLICATION_DATA, HANDSHAKE, HEADER_LEN, KEY_UPDATE_NOT_REQUESTED, TAG_LEN,
};
use super::{
    TlsRole, CONTROL_READ_CHUNK, DATA_READ_CHUNK, MAX_FRAGMENT, MERGE_QUEUED, WRITE_CHUNK,
};

/// The TLS 1.3 record layer of a control connection whose handshake is over.
pub(super) struct DetachedTls {
    /// rustls's key schedule, kept to derive the next keys when either side updates them.
    schedule: KernelConnection<ServerConnectionData>,
    send: TrafficKey,
    recv: TrafficKey,
    /// Records sent under one key before the server moves to the next (the suite's
    /// confidentiality limit).
    send_limit: u64,
    /// Records as they arrived; during an in-place read (`fill_in_place`), the plaintext
    /// opened so far at its front, then the rest of the records it was opened from, then
    /// the records not opened yet.
    pub(super) incoming: RecordBuf,
    pub(super) outgoing: RecordBuf,
    pub(super) plaintext: RecordBuf,
    /// Plaintext opened in place at the front of `incoming`, not read yet.
    opened: usize,
    /// The bytes after it that are left of the records it came from (none while `opened`
    /// is 0).
    spent: usize,
    /// A data connection: reads of [`DATA_READ_CHUNK`], keys kept expanded.
    data: bool,
    /// What the handshake noted (the SNI name).
    pub(super) notes: Arc<HandshakeNotes>,
    peer_certificate: Option<Box<[u8]>>,
    resumed: bool,
    /// Times the server moved to its next sending key.
    send_updates: u32,
    /// The client asked for the server's key update, not sent yet.
    update_owed: bool,
    tcp_eof: bool,
    /// The peer's close_notify arrived: the end of its data.
    peer_closed: bool,
    /// Our close_notify is queued: nothing may be written any more.
    closed: bool,
    /// A protocol error ended the connection (its alert is queued).
    failed: bool,
}

/// The KeyUpdate handshake message's type.
const KEY_UPDATE: u8 = KEY_UPDATE_NOT_REQUESTED[0];

/// Alert descriptions sent or understood here.
const CLOSE_NOTIFY: u8 = 0;
const UNEXPECTED_MESSAGE: u8 = 10;
const BAD_RECORD_MAC: u8 = 20;
const RECORD_OVERFLOW: u8 = 22;
const DECODE_ERROR: u8 = 50;
const ILLEGAL_PARAMETER: u8 = 47;
const INTERNAL_ERROR: u8 = 80;
const USER_CANCELED: u8 = 90;

/// The largest encrypted record a peer may send (2^14 + 256).
const MAX_CIPHERTEXT: usize = MAX_FRAGMENT + 256;

impl DetachedTls {
    /// Takes over from `conn`, whose handshake is over and which has nothing left to send.
    /// The record buffers come along: records rustls has not seen yet, and plaintext and
    /// records it produced.
    pub(super) fn new(
        conn: UnbufferedServerConnection,
        buffers: [RecordBuf; 3],
        notes: Arc<HandshakeNotes>,
        role: TlsRole,
    ) -> Result<DetachedTls, rustls::Error> {
        let peer_certificate = conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|c| Box::from(c.as_ref()));
        let resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        let (secrets, schedule) = conn.dangerous_into_kernel_connection()?;
        let SupportedCipherSuite::Tls13(suite) = schedule.negotiated_cipher_suite() else {
            return Err(rustls::Error::General("not a TLS 1.3 connection".into()));
        };
        let [incoming, outgoing, plaintext] = buffers;
        Ok(DetachedTls {
            send: TrafficKey::new(secrets.tx)?,
            recv: TrafficKey::new(secrets.rx)?,
            send_limit: suite.common.confidentiality_limit,
            schedule,
            incoming,
            outgoing,
            plaintext,
            opened: 0,
            spent: 0,
            data: role == TlsRole::Data,
            notes,
            peer_certificate,
            resumed,
            send_updates: 0,
            update_owed: false,
            tcp_eof: false,
            peer_closed: false,
            closed: false,
            failed: false,
        })
    }

    /// A data connection's (an upload's).
    pub(super) fn is_data(&self) -> bool {
        self.data
    }

    #[cfg(test)]
    pub(super) fn send_updates(&self) -> u32 {
        self.send_updates
    }

    #[cfg(test)]
    pub(super) fn holds_expanded_keys(&self) -> bool {
        self.send.is_expanded() || self.recv.is_expanded()
    }

    pub(super) fn peer_certificate(&self) -> Option<&[u8]> {
        self.peer_certificate.as_deref()
    }

    /// The protocol version and cipher suite, for the log.
    pub(super) fn describe(&self) -> String {
        let suite = self.schedule.negotiated_cipher_suite().suite();
        let kind = if self.resumed { "resumed" } else { "full" };
        format!("{:?} {suite:?} ({kind})", self.schedule.protocol_version())
    }

    /// Plaintext; see `Read for Transport`: `Ok(0)` after the peer's close_notify,
    /// `UnexpectedEof` for a TCP close without one, `WouldBlock` while no whole record
    /// waits.
    pub(super) fn read(&mut self, tcp: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.read_records(tcp, buf);
        self.forget_expanded_keys();
        result
    }

    fn read_records(&mut self, tcp: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.plaintext.is_empty() || self.opened > 0 {
                let ready = self.in_place();
                let n = ready.len().min(buf.len());
                buf[..n].copy_from_slice(&ready[..n]);
                self.consume_in_place(n);
                return Ok(n);
            }
            self.check()?;
            let n = self.guard(|t| t.open_records(buf))?;
            // A key update's answer waits for the reply to what was read, to go out in
            // its send (`write`); the owner flushes it if none.
            if n > 0 {
                return Ok(n);
            }
            if self.peer_closed {
                return Ok(0);
            }
            if !self.read_socket(tcp)? {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
    }

    /// Opens the records that arrived where they lie, reading the socket until `want`
    /// bytes of plaintext are ready or it has nothing more; the bytes ready, then in
    /// [`in_place`](Self::in_place) (which may hold more than `want`). `Ok(0)` after the
    /// peer's close_notify; errors as [`read`](Self::read)'s, once the plaintext before
    /// them is read.
    pub(super) fn fill_in_place(&mut self, tcp: &mut TcpStream, want: usize) -> io::Result<usize> {
        let result = self.fill(tcp, want.max(1));
        self.forget_expanded_keys();
        result
    }

    fn fill(&mut self, tcp: &mut TcpStream, want: usize) -> io::Result<usize> {
        if !self.plaintext.is_empty() {
            // rustls's, from before the hand-over.
            return Ok(self.plaintext.bytes_mut().len());
        }
        loop {
            self.check()?;
            if self.guard(|t| t.open_in_place(want))? || self.peer_closed {
                break;
            }
            // Room for what is missing and a whole record more, so that the buffer holds
            // about one block and one record at most.
            let chunk = want - self.opened + HEADER_LEN + MAX_CIPHERTEXT;
            match self.incoming.read_records(tcp, chunk, &mut self.tcp_eof) {
                Ok(true) => {}
                Ok(false) => break,
                // The plaintext before the error first.
                Err(_) if self.opened > 0 => break,
                Err(e) => return Err(e),
            }
        }
        match self.opened {
            0 if self.peer_closed => Ok(0),
            0 => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    /// The plaintext ready to be read (see [`fill_in_place`](Self::fill_in_place)).
    pub(super) fn in_place(&mut self) -> &[u8] {
        if self.plaintext.is_empty() {
            &self.incoming.bytes_mut()[..self.opened]
        } else {
            self.plaintext.bytes_mut()
        }
    }

    /// Drops `n` bytes of the plaintext ready.
    pub(super) fn consume_in_place(&mut self, n: usize) {
        if !self.plaintext.is_empty() {
            return self.plaintext.consume(n);
        }
        let n = n.min(self.opened);
        self.incoming.consume(n);
        self.opened -= n;
        if self.opened == 0 {
            self.incoming.consume(std::mem::take(&mut self.spent));
        }
    }

    /// Plaintext; see `Write for Transport`.
    pub(super) fn write(&mut self, tcp: &mut TcpStream, buf: &[u8]) -> io::Result<usize> {
        let result = self.write_records(tcp, buf);
        self.forget_expanded_keys();
        result
    }

    fn write_records(&mut self, tcp: &mut TcpStream, buf: &[u8]) -> io::Result<usize> {
        // A few queued records (session tickets, a key update's answer) go out in one send
        // with a reply; more wait to leave first.
        if self.outgoing.bytes_mut().len() > MERGE_QUEUED || buf.len() > MERGE_QUEUED {
            self.outgoing.write_to(tcp)?;
            if !self.outgoing.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        self.check()?;
        if self.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let take = buf.len().min(WRITE_CHUNK);
        self.guard(|t| t.seal_records(APPLICATION_DATA, &buf[..take]))?;
        self.outgoing.write_to(tcp)?;
        Ok(take)
    }

    /// Queues a close_notify alert (once).
    pub(super) fn queue_close_notify(&mut self) {
        if self.closed || self.failed {
            return;
        }
        if self.seal_records(ALERT, &[1, CLOSE_NOTIFY]).is_ok() {
            self.closed = true;
        }
        self.forget_expanded_keys();
    }

    fn forget_expanded_keys(&mut self) {
        if self.data {
            // A transfer's records keep coming: expanding the key again for every read
            // would cost more than keeping it for the connection's short life.
            return;
        }
        self.send.forget_expanded();
        self.recv.forget_expanded();
    }

    /// An error for every call once the connection failed.
    fn check(&self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the TLS connection failed",
            ));
        }
        Ok(())
    }

    /// Runs `step`; a protocol error queues its fatal alert and fails the connection.
    fn guard<T>(&mut self, step: impl FnOnce(&mut Self) -> Result<T, Fatal>) -> io::Result<T> {
        step(self).map_err(|Fatal(alert, why)| {
            if let (Some(alert), false) = (alert, self.closed) {
                let _ = self.seal_records(ALERT, &[2, alert]);
            }
            self.failed = true;
            io::Error::new(io::ErrorKind::InvalidData, why)
        })
    }

    /// Decrypts the whole records that arrived, delivering application data into `buf`
    /// (then into `plaintext`) and acting on alerts and key updates. Stops once `buf` is
    /// full or the peer closed; the number of bytes delivered.
    fn open_records(&mut self, buf: &mut [u8]) -> Result<usize, Fatal> {
        let mut delivered = 0;
        while delivered < buf.len() && !self.peer_closed {
            let bytes = self.incoming.bytes_mut();
            let Some(header) = bytes.first_chunk::<HEADER_LEN>() else {
                break;
            };
            let len = record_len(header)?;
            let Some(record) = bytes.get_mut(..HEADER_LEN + len) else {
                break;
            };
            let inner = self.recv.open(record).ok_or(Fatal(
                Some(BAD_RECORD_MAC),
                "a TLS record failed to decrypt",
            ))?;
            let (content_type, content) = inner_content(inner)?;
            match content_type {
                APPLICATION_DATA => {
                    let n = content.len().min(buf.len() - delivered);
                    buf[delivered..delivered + n].copy_from_slice(&content[..n]);
                    delivered += n;
                    self.plaintext.extend(&content[n..]);
                }
                ALERT => self.peer_closed |= alert(content)?,
                HANDSHAKE => {
                    let requested = key_update(content)?;
                    self.incoming.consume(HEADER_LEN + len);
                    self.update_keys(requested)?;
                    continue;
                }
                _ => return Err(Fatal(Some(UNEXPECTED_MESSAGE), "an unexpected TLS record")),
            }
            self.incoming.consume(HEADER_LEN + len);
        }
        Ok(delivered)
    }

    /// Opens whole records after the plaintext already opened in place, each one's
    /// plaintext moved down to follow it, until no whole record is left or the peer
    /// closed (`Ok(false)`), or until `want` bytes are ready or the next record's would go
    /// past them (`Ok(true)`: a block as full as its records make it; plaintext read in
    /// part would be moved with the records after it). Alerts and key updates are acted
    /// on as in [`open_records`](Self::open_records).
    fn open_in_place(&mut self, want: usize) -> Result<bool, Fatal> {
        while !self.peer_closed {
            if self.opened >= want {
                return Ok(true);
            }
            let at = self.opened + self.spent;
            let bytes = self.incoming.bytes_mut();
            let Some(header) = bytes.get(at..).and_then(|b| b.first_chunk::<HEADER_LEN>()) else {
                break;
            };
            let len = record_len(header)?;
            if self.opened > 0 && self.opened + len.saturating_sub(TAG_LEN + 1) > want {
                return Ok(true);
            }
            let record_end = at + HEADER_LEN + len;
            let Some(room) = bytes.get_mut(self.opened..record_end) else {
                break;
            };
            let inner = self.recv.open_within(room, at - self.opened).ok_or(Fatal(
                Some(BAD_RECORD_MAC),
                "a TLS record failed to decrypt",
            ))?;
            let (content_type, content) = inner_content(inner)?;
            match content_type {
                APPLICATION_DATA => self.opened += content.len(),
                ALERT => self.peer_closed |= alert(content)?,
                HANDSHAKE => {
                    let requested = key_update(content)?;
                    self.update_keys(requested)?;
                }
                _ => return Err(Fatal(Some(UNEXPECTED_MESSAGE), "an unexpected TLS record")),
            }
            self.spent = record_end - self.opened;
            if self.opened == 0 {
                self.incoming.consume(std::mem::take(&mut self.spent));
            }
        }
        Ok(false)
    }

    /// The client moved to its next key; if it asked, the server owes it one update of its
    /// own before its next application data (RFC 8446 section 4.6.3: one, however many
    /// requests arrived while it was silent).
    fn update_keys(&mut self, requested: bool) -> Result<(), Fatal> {
        self.recv = next_key(self.schedule.update_rx_secret())?;
        self.update_owed |= requested;
        Ok(())
    }

    /// Announces and takes the server's next sending key.
    fn update_send_key(&mut self) -> Result<(), Fatal> {
        self.seal(HANDSHAKE, &KEY_UPDATE_NOT_REQUESTED)?;
        self.update_owed = false;
        self.send = next_key(self.schedule.update_tx_secret())?;
        self.send_updates = self.send_updates.saturating_add(1);
        Ok(())
    }

    /// Encrypts `data` as records of `content_type` (at least one) into `outgoing`.
    fn seal_records(&mut self, content_type: u8, data: &[u8]) -> Result<(), Fatal> {
        let mut chunks = data.chunks(MAX_FRAGMENT);
        let first = chunks.next().unwrap_or_default();
        for chunk in std::iter::once(first).chain(chunks) {
            let owed = self.update_owed && content_type == APPLICATION_DATA;
            if owed || self.send.seq() >= self.send_limit {
                self.update_send_key()?;
            }
            self.seal(content_type, chunk)?;
        }
        Ok(())
    }

    /// One record.
    fn seal(&mut self, content_type: u8, data: &[u8]) -> Result<(), Fatal> {
        self.send
            .seal_onto(&mut self.outgoing, content_type, data)
            .ok_or(Fatal(
                Some(INTERNAL_ERROR),
                "a TLS record failed to encrypt",
            ))
    }

    /// One read(2) of records; see [`RecordBuf::read_records`].
    fn read_socket(&mut self, tcp: &mut TcpStream) -> io::Result<bool> {
        let chunk = if self.data {
            DATA_READ_CHUNK
        } else {
            CONTROL_READ_CHUNK
        };
        self.incoming.read_records(tcp, chunk, &mut self.tcp_eof)
    }
}

/// The traffic key a key update derived (rustls's key schedule).
fn next_key(
    derived: Result<(u64, rustls::ConnectionTrafficSecrets), rustls::Error>,
) -> Result<TrafficKey, Fatal> {
    derived
        .and_then(TrafficKey::new)
        .map_err(|_| Fatal(Some(INTERNAL_ERROR), "a TLS key update failed"))
}

/// The length of a record's body from its header; only encrypted records of at most
/// 2^14 + 256 bytes may follow the handshake.
fn record_len(header: &[u8; HEADER_LEN]) -> Result<usize, Fatal> {
    if header[0] != APPLICATION_DATA {
        return Err(Fatal(
            Some(UNEXPECTED_MESSAGE),
            "a TLS record not encrypted",
        ));
    }
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    if len > MAX_CIPHERTEXT {
        return Err(Fatal(Some(RECORD_OVERFLOW), "a TLS record too large"));
    }
    Ok(len)
}

/// An opened record's content type and content: the type is the last byte that is not
/// padding (RFC 8446 section 5.4).
fn inner_content(inner: &[u8]) -> Result<(u8, &[u8]), Fatal> {
    let end = inner.iter().rposition(|&b| b != 0).ok_or(Fatal(
        Some(UNEXPECTED_MESSAGE),
        "a TLS record without a type",
    ))?;
    if end > MAX_FRAGMENT {
        return Err(Fatal(Some(RECORD_OVERFLOW), "a TLS record too large"));
    }
    Ok((inner[end], &inner[..end]))
}

/// Whether an alert is the peer's close_notify; any other but user_canceled (always
/// followed by close_notify, RFC 8446 section 6.1) ends the connection.
fn alert(content: &[u8]) -> Result<bool, Fatal> {
    match content {
        [_, CLOSE_NOTIFY] => Ok(true),
        [_, USER_CANCELED] => Ok(false),
        [_, _] => Err(Fatal(None, "the client's TLS alert")),
        _ => Err(Fatal(Some(DECODE_ERROR), "a malformed TLS alert")),
    }
}

/// Whether a handshake record is one KeyUpdate, and whether it asks for the server's.
/// Nothing else may follow the handshake; and a KeyUpdate ends its record (a key change
/// aligns with a record boundary).
fn key_update(content: &[u8]) -> Result<bool, Fatal> {
    match content {
        [KEY_UPDATE, 0, 0, 1, request] => match request {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Fatal(Some(ILLEGAL_PARAMETER), "a malformed TLS key update")),
        },
        [KEY_UPDATE, ..] => Err(Fatal(Some(DECODE_ERROR), "a malformed TLS key update")),
        _ => Err(Fatal(
            Some(UNEXPECTED_MESSAGE),
            "a TLS handshake message after the handshake",
        )),
    }
}

/// A fatal protocol error: the alert to send (none after the peer's own) and what to log.
struct Fatal(Option<u8>, &'static str);

//! A download's TLS 1.3 records, sealed here rather than by rustls (RFC 8446 §5.2).
//!
//! rustls's unbuffered `encrypt` copies each record's plaintext into a new allocation,
//! seals it there and copies the result into the caller's buffer: two copies of every byte
//! and an allocation per 16 KiB record, a quarter of the server's CPU in 200 concurrent
//! FTPS downloads (docs/performance.md, FTPS). Once a download's handshake is done, the
//! data connection takes the traffic keys out of rustls (its secret extraction, made for
//! kernel TLS) and seals records in place in its outgoing buffer: the plaintext is written
//! once, into the record, and sealed where it lies (`tls13`). rustls keeps the key schedule (a
//! `KernelConnection`), which derives the next key when a key update is due.
//!
//! Only sending: a download reads nothing from its data connection, so no record from the
//! client is ever decrypted once the keys are out.

use std::io::{self, Read};

use ioloop::mio::net::TcpStream;
use rustls::kernel::KernelConnection;
use rustls::server::ServerConnectionData;
use rustls::{ConnectionTrafficSecrets, SupportedCipherSuite};

use super::buffers::RecordBuf;
use super::tls13::{
    TrafficKey, ALERT, APPLICATION_DATA, HANDSHAKE, HEADER_LEN, KEY_UPDATE_NOT_REQUESTED,
    RECORD_ROOM, TAG_LEN,
};
use super::{WriteFromError, MAX_FRAGMENT, WRITE_CHUNK};

/// The sending half of a TLS 1.3 connection whose records this side seals.
pub(super) struct SealedLayer {
    /// The key schedule (for key updates) and what the handshake negotiated.
    conn: KernelConnection<ServerConnectionData>,
    key: TrafficKey,
    /// Records sealed under one key before the next key update (the suite's
    /// confidentiality limit).
    rekey_at: u64,
    /// Records waiting to be sent (the handshake's leftovers first).
    pub(super) outgoing: RecordBuf,
    /// The close_notify went out: nothing more may be sealed.
    closed: bool,
}

impl SealedLayer {
    /// The sending side of `conn`, whose next record has sequence number `seq` under
    /// `secrets`; `outgoing` holds records rustls sealed before and not yet sent.
    ///
    /// # Errors
    /// The suite is not one `tls13` protects.
    pub(super) fn new(
        conn: KernelConnection<ServerConnectionData>,
        (seq, secrets): (u64, ConnectionTrafficSecrets),
        outgoing: RecordBuf,
    ) -> io::Result<SealedLayer> {
        let rekey_at = match conn.negotiated_cipher_suite() {
            SupportedCipherSuite::Tls13(s) => s.common.confidentiality_limit.min(SEQ_SOFT_LIMIT),
            SupportedCipherSuite::Tls12(_) => return Err(unsupported()),
        };
        Ok(SealedLayer {
            conn,
            key: TrafficKey::new((seq, secrets)).map_err(|_| unsupported())?,
            rekey_at,
            outgoing,
            closed: false,
        })
    }

    /// The negotiated protocol version and cipher suite, for the log.
    pub(super) fn describe(&self) -> String {
        format!(
            "{:?} {:?} (records sealed by the server)",
            self.conn.protocol_version(),
            self.conn.negotiated_cipher_suite().suite()
        )
    }

    /// Seals up to [`WRITE_CHUNK`] bytes of `data` into records and sends what the socket
    /// takes; see `Write for Transport`.
    pub(super) fn write(&mut self, tcp: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
        let mut data = data;
        self.write_from(tcp, &mut data, WRITE_CHUNK)
            .map_err(|(WriteFromError::Source(e) | WriteFromError::Socket(e))| e)
    }

    /// Reads up to `max` bytes (at most [`WRITE_CHUNK`]) from `src` straight into the
    /// payloads of the next records (one read of several slots), seals them and sends what
    /// the socket takes. `Ok(0)`: `src` is at its end. The socket's `WouldBlock` while
    /// earlier records are unsent.
    pub(super) fn write_from(
        &mut self,
        tcp: &mut TcpStream,
        src: &mut dyn Read,
        max: usize,
    ) -> Result<usize, WriteFromError> {
        self.outgoing
            .write_to(tcp)
            .map_err(WriteFromError::Socket)?;
        if !self.outgoing.is_empty() {
            return Err(WriteFromError::Socket(io::ErrorKind::WouldBlock.into()));
        }
        if self.closed {
            return Err(WriteFromError::Socket(io::ErrorKind::BrokenPipe.into()));
        }
        let take = max.clamp(1, WRITE_CHUNK);
        let records = take.div_ceil(MAX_FRAGMENT);
        // A key update, when one is due, goes first.
        self.rekey_if_due(records).map_err(WriteFromError::Socket)?;
        self.outgoing.reserve(take + records * RECORD_ROOM);
        let planned = |i: usize| (take - i * MAX_FRAGMENT).min(MAX_FRAGMENT);
        let n = {
            // One slot per record, between room for its header and for its trailer.
            let mut payloads: [&mut [u8]; SLOTS] = Default::default();
            let mut rest = self.outgoing.spare_mut();
            for (i, payload) in payloads.iter_mut().enumerate().take(records) {
                let (_, tail) = std::mem::take(&mut rest).split_at_mut(HEADER_LEN);
                let (slot, tail) = tail.split_at_mut(planned(i));
                *payload = slot;
                rest = tail.split_at_mut(TRAILER_LEN).1;
            }
            let mut slots = payloads.map(io::IoSliceMut::new);
            loop {
                match src.read_vectored(&mut slots[..records]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other.map_err(WriteFromError::Source)?,
                }
            }
        };
        // The slots fill in order, so only the last one filled can be short, and the
        // records lie end to end. (A source that claims more than it was given is not
        // believed.)
        let n = n.min(take);
        let mut at = 0;
        let mut left = n;
        for i in 0..records {
            if left == 0 {
                break;
            }
            let len = left.min(planned(i));
            let slot = &mut self.outgoing.spare_mut()[at..at + len + RECORD_ROOM];
            at += self
                .key
                .seal(slot, len, APPLICATION_DATA)
                .ok_or_else(seal_failed)
                .map_err(WriteFromError::Socket)?;
            left -= len;
        }
        self.outgoing.commit(at);
        self.outgoing
            .write_to(tcp)
            .map_err(WriteFromError::Socket)?;
        Ok(n)
    }

    /// Key updates every `records` records from now on.
    #[cfg(test)]
    pub(super) fn rekey_every(&mut self, records: u64) {
        self.rekey_at = self.key.seq() + records;
    }

    /// Seals a close_notify alert and tries to send it.
    pub(super) fn send_close_notify(&mut self, tcp: &mut TcpStream) {
        if self.closed {
            return;
        }
        self.closed = true;
        if self.seal_message(ALERT, &CLOSE_NOTIFY).is_ok() {
            let _ = self.outgoing.write_to(tcp);
        }
    }

    /// Before `records` more records: at the suite's limit, a KeyUpdate under the old key,
    /// then the next key.
    fn rekey_if_due(&mut self, records: usize) -> io::Result<()> {
        let records = u64::try_from(records).unwrap_or(u64::MAX);
        if self.key.seq().saturating_add(records) < self.rekey_at {
            return Ok(());
        }
        self.seal_message(HANDSHAKE, &KEY_UPDATE_NOT_REQUESTED)?;
        let (seq, secrets) = self.conn.update_tx_secret().map_err(io::Error::other)?;
        self.key = TrafficKey::new((seq, secrets)).map_err(|_| unsupported())?;
        Ok(())
    }

    /// Seals one record of `content_type` holding `payload` at the end of `outgoing`.
    fn seal_message(&mut self, content_type: u8, payload: &[u8]) -> io::Result<()> {
        self.key
            .seal_onto(&mut self.outgoing, content_type, payload)
            .ok_or_else(seal_failed)
    }
}

fn unsupported() -> io::Error {
    io::Error::other("a TLS cipher suite whose records the server does not seal")
}

fn seal_failed() -> io::Error {
    io::Error::other("TLS record sealing failed")
}

/// After a record's plaintext: its inner content type, then the tag.
const TRAILER_LEN: usize = 1 + TAG_LEN;

/// The records of one write.
const SLOTS: usize = WRITE_CHUNK / MAX_FRAGMENT;

/// A warning-level close_notify alert.
const CLOSE_NOTIFY: [u8; 2] = [1, 0];

/// rustls's own ceiling on a key's sequence numbers, whatever the suite allows.
const SEQ_SOFT_LIMIT: u64 = 0xffff_ffff_ffff_0000;

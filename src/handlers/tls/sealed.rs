//! A download's TLS 1.3 records, sealed here rather than by rustls (RFC 8446 §5.2).
//!
//! rustls's unbuffered `encrypt` copies each record's plaintext into a new allocation,
//! seals it there and copies the result into the caller's buffer: two copies of every byte
//! and an allocation per 16 KiB record, a quarter of the server's CPU in 200 concurrent
//! FTPS downloads (docs/performance.md, FTPS). Once a download's handshake is done, the
//! data connection takes the traffic keys out of rustls (its secret extraction, made for
//! kernel TLS) and seals records in place in its outgoing buffer: the plaintext is written
//! once, into the record, and sealed where it lies. rustls keeps the key schedule (a
//! `KernelConnection`), which derives the next key when a key update is due.
//!
//! Only sending: a download reads nothing from its data connection, so no record from the
//! client is ever decrypted once the keys are out.

use std::io::{self, Read};

use ioloop::mio::net::TcpStream;
use ring::aead::{
    Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM, CHACHA20_POLY1305,
};
use rustls::kernel::KernelConnection;
use rustls::server::ServerConnectionData;
use rustls::{ConnectionTrafficSecrets, SupportedCipherSuite};

use super::buffers::RecordBuf;
use super::{WriteFromError, MAX_FRAGMENT, WRITE_CHUNK};

/// The sending half of a TLS 1.3 connection whose records this side seals.
pub(super) struct SealedLayer {
    /// The key schedule (for key updates) and what the handshake negotiated.
    conn: KernelConnection<ServerConnectionData>,
    sealer: Sealer,
    /// Records sealed under one key before the next key update (the suite's
    /// confidentiality limit).
    rekey_at: u64,
    /// Records waiting to be sent (the handshake's leftovers first).
    pub(super) outgoing: RecordBuf,
    /// The close_notify went out: nothing more may be sealed.
    closed: bool,
}

/// Whether a connection that negotiated `suite` can have its records sealed here.
pub(super) fn sealable(suite: SupportedCipherSuite) -> bool {
    match suite {
        SupportedCipherSuite::Tls13(s) => {
            s.common.suite == rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
                || s.common.suite == rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
                || s.common.suite == rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
        }
        SupportedCipherSuite::Tls12(_) => false,
    }
}

impl SealedLayer {
    /// The sending side of `conn`, whose next record has sequence number `seq` under
    /// `secrets`; `outgoing` holds records rustls sealed before and not yet sent.
    ///
    /// # Errors
    /// The suite is not one [`sealable`] accepts.
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
            sealer: Sealer::new(secrets, seq)?,
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
                .sealer
                .seal(slot, len, CONTENT_APPLICATION_DATA)
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
        self.rekey_at = self.sealer.seq + records;
    }

    /// Seals a close_notify alert and tries to send it.
    pub(super) fn send_close_notify(&mut self, tcp: &mut TcpStream) {
        if self.closed {
            return;
        }
        self.closed = true;
        if self.seal_message(CONTENT_ALERT, &CLOSE_NOTIFY).is_ok() {
            let _ = self.outgoing.write_to(tcp);
        }
    }

    /// Before `records` more records: at the suite's limit, a KeyUpdate under the old key,
    /// then the next key.
    fn rekey_if_due(&mut self, records: usize) -> io::Result<()> {
        let records = u64::try_from(records).unwrap_or(u64::MAX);
        if self.sealer.seq.saturating_add(records) < self.rekey_at {
            return Ok(());
        }
        self.seal_message(CONTENT_HANDSHAKE, &KEY_UPDATE_NOT_REQUESTED)?;
        let (seq, secrets) = self.conn.update_tx_secret().map_err(io::Error::other)?;
        self.sealer = Sealer::new(secrets, seq)?;
        Ok(())
    }

    /// Seals one record of `content_type` holding `payload` at the end of `outgoing`.
    fn seal_message(&mut self, content_type: u8, payload: &[u8]) -> io::Result<()> {
        self.outgoing.reserve(payload.len() + RECORD_ROOM);
        let slot = self.outgoing.spare_mut();
        slot[HEADER_LEN..HEADER_LEN + payload.len()].copy_from_slice(payload);
        let n = self.sealer.seal(slot, payload.len(), content_type)?;
        self.outgoing.commit(n);
        Ok(())
    }
}

/// One direction's key, IV and sequence number.
struct Sealer {
    key: LessSafeKey,
    iv: [u8; NONCE_LEN],
    /// The sequence number of the next record.
    seq: u64,
}

impl Sealer {
    fn new(secrets: ConnectionTrafficSecrets, seq: u64) -> io::Result<Sealer> {
        let (algorithm, key, iv) = match &secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (&CHACHA20_POLY1305, key, iv),
            _ => return Err(unsupported()),
        };
        let key = UnboundKey::new(algorithm, key.as_ref()).map_err(|_| unsupported())?;
        let iv = iv.as_ref().try_into().map_err(|_| unsupported())?;
        Ok(Sealer {
            key: LessSafeKey::new(key),
            iv,
            seq,
        })
    }

    /// Seals the record whose `len` bytes of plaintext are at `slot[HEADER_LEN..]`: writes
    /// the header, the inner content type and the tag around it. Returns the record's
    /// length.
    fn seal(&mut self, slot: &mut [u8], len: usize, content_type: u8) -> io::Result<usize> {
        if self.seq >= SEQ_SOFT_LIMIT {
            return Err(io::Error::other("TLS sequence numbers exhausted"));
        }
        let inner = len + 1;
        let record_len = inner + TAG_LEN;
        let wire_len =
            u16::try_from(record_len).map_err(|_| io::Error::other("record too long"))?;
        let (header, body) = slot.split_at_mut(HEADER_LEN);
        header.copy_from_slice(&[CONTENT_APPLICATION_DATA, 3, 3, 0, 0]);
        header[3..].copy_from_slice(&wire_len.to_be_bytes());
        body[len] = content_type;
        let mut nonce = self.iv;
        for (n, s) in nonce[NONCE_LEN - 8..]
            .iter_mut()
            .zip(self.seq.to_be_bytes())
        {
            *n ^= s;
        }
        let (plaintext, tail) = body.split_at_mut(inner);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&*header),
                plaintext,
            )
            .map_err(|_| io::Error::other("TLS record sealing failed"))?;
        tail[..TAG_LEN].copy_from_slice(tag.as_ref());
        self.seq += 1;
        Ok(HEADER_LEN + record_len)
    }
}

fn unsupported() -> io::Error {
    io::Error::other("a TLS cipher suite whose records the server does not seal")
}

/// A record's header: type, legacy version, length.
const HEADER_LEN: usize = 5;

/// The AEAD tag of every suite sealed here.
const TAG_LEN: usize = 16;

/// After a record's plaintext: its inner content type, then the tag.
const TRAILER_LEN: usize = 1 + TAG_LEN;

/// What a record adds to its plaintext.
const RECORD_ROOM: usize = HEADER_LEN + TRAILER_LEN;

/// The records of one write.
const SLOTS: usize = WRITE_CHUNK / MAX_FRAGMENT;

const NONCE_LEN: usize = 12;

const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
const CONTENT_APPLICATION_DATA: u8 = 23;

/// A warning-level close_notify alert.
const CLOSE_NOTIFY: [u8; 2] = [1, 0];

/// A KeyUpdate handshake message (type 24, length 1): update_not_requested.
const KEY_UPDATE_NOT_REQUESTED: [u8; 5] = [24, 0, 0, 1, 0];

/// rustls's own ceiling on a key's sequence numbers, whatever the suite allows.
const SEQ_SOFT_LIMIT: u64 = 0xffff_ffff_ffff_0000;

//! TLS 1.3 record protection (RFC 8446 section 5.2) with ring's AEADs, for connections
//! whose traffic keys rustls handed over (`dangerous_into_kernel_connection`, the API it
//! has for kernel TLS): one direction's key, IV and sequence number, and records sealed and
//! opened in place in the channel's buffers.

use ring::aead;
use rustls::{CipherSuite, ConnectionTrafficSecrets, SupportedCipherSuite};

use super::buffers::RecordBuf;

/// A record's header: outer type, legacy version, length.
pub(super) const HEADER_LEN: usize = 5;

/// The AEAD tag of every TLS 1.3 suite ring provides.
pub(super) const TAG_LEN: usize = 16;

/// What a record adds to its plaintext: header, inner content type, tag.
pub(super) const RECORD_ROOM: usize = HEADER_LEN + 1 + TAG_LEN;

/// Record content types (RFC 8446 section 5.1).
pub(super) const ALERT: u8 = 21;
pub(super) const HANDSHAKE: u8 = 22;
pub(super) const APPLICATION_DATA: u8 = 23;

/// A KeyUpdate handshake message that does not ask the peer for one.
pub(super) const KEY_UPDATE_NOT_REQUESTED: [u8; 5] = [24, 0, 0, 1, 0];

/// Whether a connection that negotiated `suite` can be protected here: TLS 1.3 with one of
/// the AEADs ring provides.
pub(super) fn supported(suite: Option<SupportedCipherSuite>) -> bool {
    matches!(suite, Some(SupportedCipherSuite::Tls13(s)) if algorithm(s.common.suite).is_some())
}

/// ring's AEAD for a TLS 1.3 suite.
fn algorithm(suite: CipherSuite) -> Option<&'static aead::Algorithm> {
    match suite {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => Some(&aead::AES_128_GCM),
        CipherSuite::TLS13_AES_256_GCM_SHA384 => Some(&aead::AES_256_GCM),
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => Some(&aead::CHACHA20_POLY1305),
        _ => None,
    }
}

/// One direction's traffic key, raw, with its IV and the next record's sequence number;
/// expanded on first use and kept so until [`forget_expanded`](Self::forget_expanded).
pub(super) struct TrafficKey {
    algorithm: &'static aead::Algorithm,
    key: [u8; 32],
    iv: [u8; aead::NONCE_LEN],
    seq: u64,
    expanded: Option<Box<aead::LessSafeKey>>,
}

impl TrafficKey {
    /// The key rustls handed over, its next record numbered `seq`.
    pub(super) fn new(
        (seq, secrets): (u64, ConnectionTrafficSecrets),
    ) -> Result<TrafficKey, rustls::Error> {
        let (algorithm, key, iv) = match &secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, key, iv)
            }
            _ => return Err(rustls::Error::General("an unexpected cipher".into())),
        };
        let (key, iv) = (key.as_ref(), iv.as_ref());
        if key.len() != algorithm.key_len()
            || iv.len() != aead::NONCE_LEN
            || algorithm.tag_len() != TAG_LEN
        {
            return Err(rustls::Error::General("unexpected key sizes".into()));
        }
        let mut t = TrafficKey {
            algorithm,
            key: [0; 32],
            iv: [0; aead::NONCE_LEN],
            seq,
            expanded: None,
        };
        t.key[..key.len()].copy_from_slice(key);
        t.iv.copy_from_slice(iv);
        Ok(t)
    }

    /// The sequence number of the next record.
    pub(super) fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether the key is held expanded.
    #[cfg(test)]
    pub(super) fn is_expanded(&self) -> bool {
        self.expanded.is_some()
    }

    /// Lets go of the expanded key (the raw one stays).
    pub(super) fn forget_expanded(&mut self) {
        self.expanded = None;
    }

    /// Seals the record whose `len` bytes of plaintext lie at `slot[HEADER_LEN..]`: writes
    /// the header before them, the inner `content_type` and the tag after. The record's
    /// length; `None` when `slot` is too short, `len` too large, or the sequence numbers
    /// are exhausted.
    pub(super) fn seal(&mut self, slot: &mut [u8], len: usize, content_type: u8) -> Option<usize> {
        let inner = len + 1;
        let record_len = HEADER_LEN + inner + TAG_LEN;
        let [len_high, len_low] = u16::try_from(inner + TAG_LEN).ok()?.to_be_bytes();
        let record = slot.get_mut(..record_len)?;
        let (header, body) = record.split_at_mut(HEADER_LEN);
        header.copy_from_slice(&[APPLICATION_DATA, 3, 3, len_high, len_low]);
        body[len] = content_type;
        let (plaintext, tag_room) = body.split_at_mut(inner);
        let nonce = self.next_nonce()?;
        let tag = self
            .expanded()?
            .seal_in_place_separate_tag(nonce, aead::Aad::from(&*header), plaintext)
            .ok()?;
        tag_room.copy_from_slice(tag.as_ref());
        Some(record_len)
    }

    /// Seals `payload` as one record of `content_type` at the end of `out`.
    pub(super) fn seal_onto(
        &mut self,
        out: &mut RecordBuf,
        content_type: u8,
        payload: &[u8],
    ) -> Option<()> {
        out.reserve(payload.len() + RECORD_ROOM);
        let slot = out.spare_mut();
        slot.get_mut(HEADER_LEN..HEADER_LEN + payload.len())?
            .copy_from_slice(payload);
        let n = self.seal(slot, payload.len(), content_type)?;
        out.commit(n);
        Some(())
    }

    /// Opens a whole record (header and body) in place: its inner plaintext (content,
    /// content type, padding), or `None` when it does not authenticate.
    pub(super) fn open<'a>(&mut self, record: &'a mut [u8]) -> Option<&'a mut [u8]> {
        let (header, body) = record.split_at_mut_checked(HEADER_LEN)?;
        let nonce = self.next_nonce()?;
        self.expanded()?
            .open_in_place(nonce, aead::Aad::from(&*header), body)
            .ok()
    }

    /// Opens the whole record that starts at `buf[record_at..]` and ends where `buf`
    /// does, moving its inner plaintext (content, content type, padding) to the front of
    /// `buf` as it decrypts (the cipher writes each block a few bytes lower than it read
    /// it: no copy of its own); `None` when it does not authenticate.
    pub(super) fn open_within<'a>(
        &mut self,
        buf: &'a mut [u8],
        record_at: usize,
    ) -> Option<&'a mut [u8]> {
        let header: [u8; HEADER_LEN] = *buf.get(record_at..)?.first_chunk()?;
        let nonce = self.next_nonce()?;
        self.expanded()?
            .open_within(
                nonce,
                aead::Aad::from(header),
                buf,
                record_at + HEADER_LEN..,
            )
            .ok()
    }

    fn expanded(&mut self) -> Option<&aead::LessSafeKey> {
        if self.expanded.is_none() {
            let key = aead::UnboundKey::new(self.algorithm, &self.key[..self.algorithm.key_len()]);
            self.expanded = Some(Box::new(aead::LessSafeKey::new(key.ok()?)));
        }
        self.expanded.as_deref()
    }

    /// The next record's nonce: the IV with the sequence number XORed into its end.
    fn next_nonce(&mut self) -> Option<aead::Nonce> {
        let mut nonce = self.iv;
        for (n, s) in nonce[aead::NONCE_LEN - 8..]
            .iter_mut()
            .zip(self.seq.to_be_bytes())
        {
            *n ^= s;
        }
        self.seq = self.seq.checked_add(1)?;
        Some(aead::Nonce::assume_unique_for_key(nonce))
    }
}

impl Drop for TrafficKey {
    fn drop(&mut self) {
        // Best effort: the raw key does not outlive the connection in this struct.
        self.key.fill(0);
        std::hint::black_box(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::crypto::cipher::{AeadKey, Iv};

    fn key(seq: u64) -> TrafficKey {
        // AeadKey only comes 32 bytes long from outside rustls: AES-256-GCM.
        let secrets = ConnectionTrafficSecrets::Aes256Gcm {
            key: AeadKey::from([7; 32]),
            iv: Iv::new([9; 12]),
        };
        TrafficKey::new((seq, secrets)).expect("key")
    }

    #[test]
    fn a_sealed_record_opens_once_in_order_and_not_altered() {
        let (mut sender, mut receiver) = (key(5), key(5));
        let mut slot = vec![0u8; 64];
        slot[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(b"NOOP");
        let n = sender.seal(&mut slot, 4, APPLICATION_DATA).expect("seal");
        assert_eq!(n, 4 + RECORD_ROOM);
        assert_eq!(&slot[..5], &[23, 3, 3, 0, 21]);
        assert_eq!(sender.seq(), 6);
        let mut altered = slot[..n].to_vec();
        altered[HEADER_LEN] ^= 1;
        let mut other = key(5);
        assert!(
            other.open(&mut altered).is_none(),
            "an altered record opened"
        );
        let mut skipped = key(6);
        assert!(
            skipped.open(&mut slot[..n].to_vec()).is_none(),
            "opened out of order"
        );
        let inner = receiver.open(&mut slot[..n]).expect("open");
        assert_eq!(inner, b"NOOP\x17");
        assert!(receiver.is_expanded());
        receiver.forget_expanded();
        assert!(!receiver.is_expanded());
    }

    #[test]
    fn records_opened_within_a_buffer_leave_their_plaintext_end_to_end() {
        let mut sender = key(0);
        let mut buf = [0u8; 200];
        let mut at = 0;
        for word in [&b"first"[..], b"second"] {
            let slot = &mut buf[at..];
            slot[HEADER_LEN..HEADER_LEN + word.len()].copy_from_slice(word);
            at += sender
                .seal(slot, word.len(), APPLICATION_DATA)
                .expect("seal");
        }
        let second_at = RECORD_ROOM + 5;
        let mut receiver = key(0);
        let inner = receiver
            .open_within(&mut buf[..second_at], 0)
            .expect("open the first");
        assert_eq!(inner, b"first\x17");
        // The second record's plaintext lands right after the first's content.
        let inner = receiver
            .open_within(&mut buf[5..at], second_at - 5)
            .expect("open the second");
        assert_eq!(inner, b"second\x17");
        assert_eq!(&buf[..11], b"firstsecond");
        let mut altered = key(0);
        let mut other = vec![0u8; 64];
        other[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(b"NOOP");
        let n = altered.seal(&mut other, 4, APPLICATION_DATA).expect("seal");
        other[3] ^= 1; // the header is authenticated too
        assert!(key(0).open_within(&mut other[..n], 0).is_none());
    }

    #[test]
    fn a_slot_too_short_or_a_record_too_long_is_refused() {
        let mut k = key(0);
        assert!(k.seal(&mut [0u8; 10], 4, APPLICATION_DATA).is_none());
        assert!(k
            .seal(&mut vec![0u8; 70_000], 65_600, APPLICATION_DATA)
            .is_none());
        assert_eq!(k.seq(), 0, "a refused record used a sequence number");
        let mut exhausted = key(u64::MAX);
        let mut slot = [0u8; 64];
        assert!(exhausted.seal(&mut slot, 4, APPLICATION_DATA).is_none());
    }
}

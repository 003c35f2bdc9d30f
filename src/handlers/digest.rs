//! Checksums of files for HASH and the X* commands: the algorithms, the job a session
//! waits on, and the digest of a byte range, computed on a worker thread between checks
//! of a cancel flag. The commands themselves are in `commands::checksums`.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::error::fs_error_reply;
use crate::handlers::pool::WorkerPool;
use crate::proto::Reply;

/// A checksum the server computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum HashAlgo {
    /// CRC-32 (XCRC only).
    Crc32,
    Md5,
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

impl HashAlgo {
    /// The name HASH, `OPTS HASH` and FEAT use.
    pub(crate) fn name(self) -> &'static str {
        match self {
            HashAlgo::Crc32 => "CRC32",
            HashAlgo::Md5 => "MD5",
            HashAlgo::Sha1 => "SHA-1",
            HashAlgo::Sha256 => "SHA-256",
            HashAlgo::Sha512 => "SHA-512",
        }
    }

    /// The algorithm `OPTS HASH <name>` selects (case-insensitive); CRC-32 is not one.
    pub(crate) fn from_hash_name(name: &str) -> Option<HashAlgo> {
        HASH_ALGOS
            .iter()
            .copied()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }
}

/// The algorithms HASH offers, in FEAT's order.
pub(crate) const HASH_ALGOS: &[HashAlgo] = &[
    HashAlgo::Sha1,
    HashAlgo::Sha256,
    HashAlgo::Sha512,
    HashAlgo::Md5,
];

/// How the result is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashStyle {
    /// `213 <ALGO> <start>-<end> <hex> <path>`, lower-case hex.
    Hash,
    /// `250 <HEX>`, upper-case hex as proftpd's mod_digest sends it.
    Legacy,
}

/// What a session remembers while a worker hashes.
#[derive(Debug)]
pub(crate) struct HashJob {
    /// Set when the session goes: the worker stops at its next block.
    pub(crate) cancel: Arc<AtomicBool>,
    pub(crate) algo: HashAlgo,
    pub(crate) style: HashStyle,
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) ftp: String,
}

impl HashJob {
    /// The reply once the worker is done.
    pub(crate) fn reply(&self, result: io::Result<Vec<u8>>) -> Reply {
        let digest = match result {
            Ok(d) => d,
            Err(e) => return fs_error_reply(&e),
        };
        match self.style {
            HashStyle::Hash => Reply::new(
                213,
                format!(
                    "{} {}-{} {} {}",
                    self.algo.name(),
                    self.start,
                    self.end,
                    hex(&digest, false),
                    self.ftp
                ),
            ),
            HashStyle::Legacy => Reply::new(250, hex(&digest, true)),
        }
    }
}

impl crate::handlers::shared::Shared {
    /// The thread that hashes files, started by the first HASH (one: checksums queue
    /// behind each other rather than take every core).
    pub(crate) fn hash_workers(&self) -> Option<&WorkerPool> {
        self.hash_pool
            .get_or_init(|| WorkerPool::new(1).ok())
            .as_ref()
    }
}

/// The digest of bytes `[start, end)` of `file`; `Interrupted` if `cancel` was set.
pub(crate) fn digest_range(
    file: &mut impl ReadSeek,
    algo: HashAlgo,
    start: u64,
    end: u64,
    cancel: &AtomicBool,
) -> io::Result<Vec<u8>> {
    let mut state = State::new(algo);
    file.seek(SeekFrom::Start(start))?;
    let mut left = end.saturating_sub(start);
    let mut buf = vec![0u8; BLOCK];
    while left > 0 {
        if cancel.load(Ordering::Relaxed) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let want = usize::try_from(left).map_or(BLOCK, |l| l.min(BLOCK));
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => break, // the file shrank meanwhile: what is there is hashed
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        state.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(state.finish())
}

/// `Read + Seek`, for the file a worker reads.
pub(crate) trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

/// A running digest.
enum State {
    Crc32(crc32fast::Hasher),
    Md5(Md5),
    Sha1(Sha1),
    Sha256(Sha256),
    Sha512(Sha512),
}

impl State {
    fn new(algo: HashAlgo) -> State {
        match algo {
            HashAlgo::Crc32 => State::Crc32(crc32fast::Hasher::new()),
            HashAlgo::Md5 => State::Md5(Md5::new()),
            HashAlgo::Sha1 => State::Sha1(Sha1::new()),
            HashAlgo::Sha256 => State::Sha256(Sha256::new()),
            HashAlgo::Sha512 => State::Sha512(Sha512::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            State::Crc32(h) => h.update(data),
            State::Md5(h) => h.update(data),
            State::Sha1(h) => h.update(data),
            State::Sha256(h) => h.update(data),
            State::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            State::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            State::Md5(h) => h.finalize().to_vec(),
            State::Sha1(h) => h.finalize().to_vec(),
            State::Sha256(h) => h.finalize().to_vec(),
            State::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

fn hex(bytes: &[u8], upper: bool) -> String {
    let digits = if upper { HEX_UPPER } else { HEX_LOWER };
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(digits[usize::from(b >> 4)]));
        s.push(char::from(digits[usize::from(b & 0xf)]));
    }
    s
}

/// Bytes read per step; the cancel flag is checked between steps.
const BLOCK: usize = 256 * 1024;
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn digest(algo: HashAlgo, data: &[u8], start: u64, end: u64) -> String {
        let never = AtomicBool::new(false);
        let d = digest_range(&mut Cursor::new(data), algo, start, end, &never).expect("digest");
        hex(&d, false)
    }

    /// The FIPS 180 / RFC 1321 / CRC-32 check values of "abc" and "123456789".
    #[test]
    fn known_digests() {
        let abc = b"abc";
        assert_eq!(
            digest(HashAlgo::Md5, abc, 0, 3),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            digest(HashAlgo::Sha1, abc, 0, 3),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            digest(HashAlgo::Sha256, abc, 0, 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(digest(HashAlgo::Sha512, abc, 0, 3).starts_with("ddaf35a193617aba"));
        assert_eq!(digest(HashAlgo::Crc32, b"123456789", 0, 9), "cbf43926");
    }

    #[test]
    fn ranges_cover_start_to_end() {
        let data = b"xxabcyy";
        assert_eq!(
            digest(HashAlgo::Md5, data, 2, 5),
            digest(HashAlgo::Md5, b"abc", 0, 3)
        );
        // An empty range is the digest of nothing; an end past the data stops at its end.
        assert_eq!(digest(HashAlgo::Crc32, data, 3, 3), "00000000");
        assert_eq!(
            digest(HashAlgo::Sha1, b"abc", 0, 100),
            digest(HashAlgo::Sha1, b"abc", 0, 3)
        );
    }

    #[test]
    fn a_cancelled_digest_stops() {
        let set = AtomicBool::new(true);
        let r = digest_range(&mut Cursor::new(b"abc"), HashAlgo::Sha256, 0, 3, &set);
        assert_eq!(r.map_err(|e| e.kind()), Err(io::ErrorKind::Interrupted));
    }

    #[test]
    fn names() {
        assert_eq!(HashAlgo::from_hash_name("sha-512"), Some(HashAlgo::Sha512));
        assert_eq!(HashAlgo::from_hash_name("CRC32"), None);
        assert_eq!(HashAlgo::from_hash_name("SHA256"), None);
        assert_eq!(hex(&[0xab, 0x01], true), "AB01");
    }
}

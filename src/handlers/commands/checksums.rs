//! File checksums: HASH and `OPTS HASH` (draft-bryan-ftpext-hash), RANG
//! (draft-bryan-ftp-range, for HASH only), and the older XCRC, XMD5, XSHA1, XSHA256 and
//! XSHA512 that proftpd's mod_digest and FileZilla Server answer.
//!
//! The file is opened on the loop (through the filesystem, as the logged-in user) and
//! read on a worker thread, so a large file does not stall the other sessions; the
//! session waits meanwhile (`Wait::Hashing`) and a disconnect sets the cancel flag the
//! worker checks between blocks.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ioloop::Ctx;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::Resolved;
use crate::error::fs_error_reply;
use crate::handlers::control::{FtpHandler, Wait};
use crate::handlers::pool::WorkerPool;
use crate::handlers::{Msg, SessionCmd};
use crate::proto::{Pending, Reply};

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
    algo: HashAlgo,
    style: HashStyle,
    start: u64,
    end: u64,
    ftp: String,
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

impl FtpHandler {
    /// `HASH <path>`: the selected algorithm over the file, or over the range a RANG set.
    pub(super) fn ftp_hash(&mut self, cx: &mut Ctx<'_, Msg>, t: Resolved) {
        let range = match std::mem::take(&mut self.pending) {
            Pending::Range { start, end } => Some((start, end)),
            other @ (Pending::Nothing | Pending::RestartAt(_) | Pending::RenameFrom(_)) => {
                self.pending = other;
                None
            }
        };
        let algo = self.hash_algo;
        self.start_hash(cx, t, algo, HashStyle::Hash, |size| match range {
            None => Some((0, size)),
            // RANG's end is the last byte hashed; the reply shows the offset after it.
            Some((start, end)) if start < size => Some((start, end.saturating_add(1).min(size))),
            Some(_) => None,
        });
    }

    /// `XCRC`, `XMD5`, `XSHA1`, `XSHA256`, `XSHA512 <path> [<start> [<end>]]`: `end` is the
    /// offset after the last byte (the file's size when left out).
    pub(super) fn ftp_xdigest(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        t: Resolved,
        algo: HashAlgo,
        (from, to): (u64, Option<u64>),
    ) {
        self.start_hash(cx, t, algo, HashStyle::Legacy, |size| {
            let end = to.unwrap_or(size);
            (from <= end && end <= size).then_some((from, end))
        });
    }

    /// `RANG <start> <end>`: the bytes the next HASH covers; `RANG 1 0` forgets the range.
    pub(super) fn ftp_rang(&mut self, arg: &str) {
        let mut words = arg.split(' ');
        let parsed = match (words.next(), words.next(), words.next()) {
            (Some(s), Some(e), None) => s.parse::<u64>().ok().zip(e.parse::<u64>().ok()),
            _ => None,
        };
        match parsed {
            Some((1, 0)) => {
                if let Pending::Range { .. } = self.pending {
                    self.pending = Pending::Nothing;
                }
                self.respond(Reply::new(350, "Restarting at 0. End of file."));
            }
            Some((start, end)) if start <= end => {
                self.pending = Pending::Range { start, end };
                self.respond(Reply::new(
                    350,
                    format!("Restarting at {start}. Ending at {end}."),
                ));
            }
            Some(_) | None => self.respond(Reply::new(501, "Invalid RANG parameters.")),
        }
    }

    /// `OPTS HASH [<ALGO>]`.
    pub(super) fn opts_hash(&mut self, option: &str) {
        if option.is_empty() {
            return self.respond(Reply::new(200, self.hash_algo.name()));
        }
        match HashAlgo::from_hash_name(option) {
            Some(algo) => {
                self.hash_algo = algo;
                self.respond(Reply::new(200, algo.name()));
            }
            None => self.respond(Reply::new(
                501,
                "Unknown algorithm, current selection not changed.",
            )),
        }
    }

    /// The FEAT lines: `HASH` with the session's algorithm starred, and `RANG STREAM`.
    pub(super) fn hash_features(&self) -> [String; 2] {
        let algos: Vec<String> = HASH_ALGOS
            .iter()
            .map(|a| {
                if *a == self.hash_algo {
                    format!("{}*", a.name())
                } else {
                    a.name().to_owned()
                }
            })
            .collect();
        [
            format!("HASH {}", algos.join(";")),
            "RANG STREAM".to_owned(),
        ]
    }

    /// Opens the file, checks the range (`range` maps the size to `[start, end)`, None
    /// for a bad range), and hands the reading to a worker.
    fn start_hash(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        t: Resolved,
        algo: HashAlgo,
        style: HashStyle,
        range: impl FnOnce(u64) -> Option<(u64, u64)>,
    ) {
        let Some(fs) = self.fs() else { return };
        let opened = fs.open_read(&t.fs).and_then(|f| f.size().map(|s| (f, s)));
        let (file, size) = match opened {
            Ok(f) => f,
            Err(e) => return self.respond(fs_error_reply(&e)),
        };
        let Some((start, end)) = range(size) else {
            return self.respond(Reply::new(501, "Invalid byte range."));
        };
        let Some(pool) = self.shared.hash_workers() else {
            return self.respond(Reply::new(451, "Requested action aborted: local error."));
        };
        let cancel = Arc::new(AtomicBool::new(false));
        let (lp, me) = (cx.loop_handle(), cx.me());
        let flag = Arc::clone(&cancel);
        let queued = pool.run(move || {
            let mut file = file;
            let result = digest_range(&mut file, algo, start, end, &flag);
            if !flag.load(Ordering::Relaxed) {
                let _ = lp.send(me, Msg::ToSession(SessionCmd::HashResult(result)));
            }
        });
        if !queued {
            return self.respond(Reply::new(451, "Requested action aborted: local error."));
        }
        self.set_wait(Wait::Hashing(Box::new(HashJob {
            cancel,
            algo,
            style,
            start,
            end,
            ftp: t.ftp,
        })));
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

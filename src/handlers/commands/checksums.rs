//! File checksums: HASH and `OPTS HASH` (draft-bryan-ftpext-hash), RANG
//! (draft-bryan-ftp-range, for HASH only), and the older XCRC, XMD5, XSHA1, XSHA256 and
//! XSHA512 that proftpd's mod_digest and FileZilla Server answer.
//!
//! The file is opened on the loop (through the filesystem, as the logged-in user; on a
//! filesystem thread for a filesystem that blocks) and read on a worker thread, so a large file does not stall the other sessions; the
//! session waits meanwhile (`Wait::Hashing`); a disconnect or an ABOR sets the cancel
//! flag the worker checks between blocks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ioloop::{Ctx, ReadStatus};

use super::Resolved;
use crate::error::fs_error_reply;
use crate::filesystems::{FileSystem, FsFile};
use crate::handlers::control::{FtpHandler, Wait};
use crate::handlers::digest::{digest_range, HashAlgo, HashJob, HashStyle, HASH_ALGOS};
use crate::handlers::{Msg, SessionCmd};
use crate::proto::parse::ParsedLine;
use crate::proto::{Pending, Reply};
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
        self.start_hash(cx, t, algo, HashStyle::Hash, move |size| match range {
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
        self.start_hash(cx, t, algo, HashStyle::Legacy, move |size| {
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
        range: impl FnOnce(u64) -> Option<(u64, u64)> + 'static,
    ) {
        let work = move |fs: &mut dyn FileSystem| {
            let opened = fs.open_read(&t.fs).and_then(|f| f.size().map(|s| (f, s)));
            opened.map(|opened| (t, opened))
        };
        self.on_fs(cx, work, move |s, cx, opened| match opened {
            Ok((t, (file, size))) => s.hash_opened(cx, t, file, size, algo, style, range),
            Err(e) => s.respond(fs_error_reply(&e)),
        });
    }

    /// The file to hash is open: checks the range and hands the reading to a worker.
    #[allow(clippy::too_many_arguments)]
    fn hash_opened(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        t: Resolved,
        file: FsFile,
        size: u64,
        algo: HashAlgo,
        style: HashStyle,
        range: impl FnOnce(u64) -> Option<(u64, u64)>,
    ) {
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
                let _ = lp.send(me, Msg::ToSession(SessionCmd::HashResult(flag, result)));
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

/// How much input a session waiting for a checksum buffers while looking for an ABOR: a
/// few command lines. Beyond it nothing more is read until the checksum's reply is sent.
const INPUT_WHILE_HASHING: usize = 8 * 1024;

impl FtpHandler {
    /// While a file is hashed: reads what the client sends, to notice that it closed or
    /// sent ABOR. ABOR stops the worker at its next block and is answered at once (426
    /// for the checksum, then 226, as for a transfer); any other command waits, buffered,
    /// for the checksum's reply.
    pub(in crate::handlers) fn watch_while_hashing(&mut self, cx: &mut Ctx<'_, Msg>) {
        while self.chat.peek_line().is_none() && self.chat.buffered_input() < INPUT_WHILE_HASHING {
            match self.chat.read_some() {
                Ok(ReadStatus::Data) => {}
                Ok(ReadStatus::WouldBlock) => break,
                Ok(ReadStatus::Closed) | Err(_) => return cx.close(),
            }
        }
        let abor = self.chat.peek_line().is_some_and(|line| {
            let decoded = self.shared.charset.decode(line);
            ParsedLine::parse(&decoded.text, &self.shared.commands).cmd == "ABOR"
        });
        if !abor {
            return;
        }
        let _ = self.chat.next_line();
        log::debug!("{} <- ABOR", self.prefix());
        if let Wait::Hashing(job) = &self.wait {
            job.cancel.store(true, Ordering::Relaxed);
        }
        self.respond(Reply::new(426, "Checksum aborted via ABOR."));
        self.respond(Reply::new(226, "ABOR command successful."));
        self.end_wait(cx);
    }
}

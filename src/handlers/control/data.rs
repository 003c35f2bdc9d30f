//! The control channel's side of the data connection: starting a transfer on it, or
//! queueing one until the client connects, and turning the data channel's news into
//! replies.

use ioloop::{Ctx, Handle};

use super::{DataChan, FtpHandler, Wait, XferInfo};
use crate::filesystems::FileSystem;
use crate::handlers::commands::settle_quota;
use crate::handlers::{atomic, CloseReason, Closure, DataCmd, DtpEvent, Job, Msg, TransferLog};
use crate::proto::{Reply, TransferType};

impl FtpHandler {
    /// Sends `Abort` to whatever data object exists and forgets it (no reply). A running
    /// transfer is abandoned: the data channel logs it with the bytes it moved.
    pub(in crate::handlers) fn drop_data(&mut self, cx: &mut Ctx<'_, Msg>) {
        self.tls.clear_refusal();
        let mut data = std::mem::replace(&mut self.data, DataChan::None);
        self.discard_queued(&mut data);
        match data {
            DataChan::None => {}
            DataChan::Passive { listener: h, .. }
            | DataChan::Active(h)
            | DataChan::Connected(h) => cx.send(h, Msg::ToData(DataCmd::Abort)),
            DataChan::Transferring { channel, info } => {
                // The upload is cut: the target keeps its old content. The data channel
                // may write a little more into the removed temporary; nobody sees it.
                if self.fs_lent() {
                    // The session ends while a filesystem that blocks is on a thread:
                    // the thread settles it.
                    let prefix = self.prefix().to_string();
                    self.with_fs_later(Box::new(move |fs| {
                        settle_quota(fs, &info, false, &prefix);
                        remove_temporaries(fs, &info, &prefix);
                    }));
                } else {
                    self.settle_quota(&info, false);
                    self.discard_part(&info);
                }
                cx.send(channel, Msg::ToData(DataCmd::Abandon));
            }
        }
    }

    /// Removes the temporary of an atomic upload queued on a data object that goes away
    /// before the client connected.
    fn discard_queued(&mut self, data: &mut DataChan) {
        if let DataChan::Passive { queued, .. } = data {
            let Some(queued) = queued.take() else {
                return;
            };
            let (_job, info) = *queued;
            if self.fs_lent() {
                let prefix = self.prefix().to_string();
                self.with_fs_later(Box::new(move |fs| {
                    remove_temporaries(fs, &info, &prefix);
                }));
            } else {
                self.discard_part(&info);
            }
        }
    }

    /// Removes an atomic upload's temporary: the upload was cut or refused.
    pub(in crate::handlers) fn discard_part(&self, info: &XferInfo) {
        if let Some(fs) = self.fs() {
            remove_temporaries(fs, info, &self.prefix());
        }
    }

    /// Renames a completed atomic upload's temporary over its target, which keeps the
    /// old file's permission bits; the old file is released off the loop. On failure the
    /// temporary is removed and the target keeps its old content.
    pub(super) fn commit_part(&self, info: &XferInfo) -> std::io::Result<()> {
        let (Some(part), Some(path), Some(fs)) = (&info.part, &info.path, self.fs()) else {
            return Ok(());
        };
        match atomic::replace(fs, part, path) {
            Ok(held) => {
                if let Some(old) = held {
                    self.shared.release_file(old);
                }
                Ok(())
            }
            Err(e) => {
                log::warn!(
                    "{} could not rename upload temporary {} to {}: {e}",
                    self.prefix(),
                    part.display(),
                    path.display()
                );
                self.discard_part(info);
                Err(e)
            }
        }
    }

    /// Starts `job` on the data channel, which also keeps the transfer's log line.
    pub(super) fn send_start(
        &self,
        cx: &mut Ctx<'_, Msg>,
        channel: Handle,
        job: Job,
        info: &XferInfo,
    ) {
        cx.send(
            channel,
            Msg::ToData(DataCmd::Start(job, Box::new(self.transfer_log(info)))),
        );
    }

    pub(super) fn transfer_log(&self, info: &XferInfo) -> TransferLog {
        TransferLog {
            session: self.tag,
            prefix: self.prefix().to_string(),
            remote: self.remote,
            username: self.username().to_owned(),
            cmd: info.cmd,
            path: info.path.clone(),
            started: info.started,
            deferred: info.part.is_some() || (self.shared.config.fsync_uploads && info.is_upload()),
            ascii: self.transfer_type == TransferType::Ascii,
        }
    }

    /// Starts a transfer on the data channel, or queues it until the client connects.
    /// `preliminary` replaces the usual 125/150 text (STOU).
    pub(in crate::handlers) fn start_transfer(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        job: Job,
        info: XferInfo,
        preliminary: Option<String>,
    ) {
        match std::mem::replace(&mut self.data, DataChan::None) {
            DataChan::Connected(channel) => {
                let text = preliminary
                    .unwrap_or_else(|| "Data connection already open. Transfer starting.".into());
                self.respond(Reply::new(125, text));
                self.send_start(cx, channel, job, &info);
                self.data = DataChan::Transferring {
                    channel,
                    info: Box::new(info),
                };
            }
            DataChan::Passive { listener, .. } => {
                let text = preliminary
                    .unwrap_or_else(|| "File status okay. About to open data connection.".into());
                self.respond(Reply::new(150, text));
                self.data = DataChan::Passive {
                    listener,
                    queued: Some(Box::new((job, info))),
                };
            }
            other @ (DataChan::None | DataChan::Active(_) | DataChan::Transferring { .. }) => {
                // pyftpdlib queues the job and leaves the client hanging; RFC 959 says 425.
                self.data = other;
                self.discard_part(&info); // the job and its file are dropped here
                if let Some(reply) = self.no_data_channel() {
                    self.respond(reply);
                }
            }
        }
    }

    pub(super) fn on_dtp_event(&mut self, cx: &mut Ctx<'_, Msg>, from: Handle, event: DtpEvent) {
        let current = match &self.data {
            DataChan::None => None,
            DataChan::Passive { listener: h, .. }
            | DataChan::Active(h)
            | DataChan::Connected(h) => Some(*h),
            DataChan::Transferring { channel, .. } => Some(*channel),
        };
        if current != Some(from) {
            // News from a data object this session already dropped.
            if let DtpEvent::Connected(h) = event {
                cx.send(h, Msg::ToData(DataCmd::Abort));
            }
            return;
        }
        match event {
            DtpEvent::Connected(channel) => self.data_connected(cx, channel),
            DtpEvent::ForeignRejected(addr) => {
                self.respond(Reply::new(
                    425,
                    format!(
                        "Rejected data connection from foreign address {}:{}.",
                        addr.ip().to_canonical(),
                        addr.port()
                    ),
                ));
            }
            DtpEvent::PassiveTimeout => {
                let mut data = std::mem::replace(&mut self.data, DataChan::None);
                self.discard_queued(&mut data);
                self.respond(Reply::new(421, "Passive data channel timed out."));
            }
            DtpEvent::ActiveFailed(e) => {
                log::debug!("{} active connect failed: {e}", self.prefix());
                self.data = DataChan::None;
                self.respond(Reply::new(425, "Can't connect to specified address."));
                self.end_wait(cx);
            }
            DtpEvent::ActiveTimeout => {
                self.data = DataChan::None;
                self.respond(Reply::new(421, "Active data channel timed out."));
                self.end_wait(cx);
            }
            DtpEvent::Closed(closure) => self.data_closed(cx, closure),
        }
    }

    pub(super) fn data_connected(&mut self, cx: &mut Ctx<'_, Msg>, channel: Handle) {
        match std::mem::replace(&mut self.data, DataChan::None) {
            DataChan::Passive {
                queued: Some(queued),
                ..
            } => {
                let (job, info) = *queued;
                self.send_start(cx, channel, job, &info);
                self.data = DataChan::Transferring {
                    channel,
                    info: Box::new(info),
                };
            }
            DataChan::Active(_) => {
                self.data = DataChan::Connected(channel);
                self.respond(Reply::new(200, "Active data connection established."));
                self.end_wait(cx);
            }
            _ => self.data = DataChan::Connected(channel),
        }
    }

    pub(super) fn data_closed(&mut self, cx: &mut Ctx<'_, Msg>, closure: Closure) {
        let mut data = std::mem::replace(&mut self.data, DataChan::None);
        let aborting = matches!(self.wait, Wait::Abort);
        if let DataChan::Connected(_) = data {
            // TLS refused the connection before a transfer was asked for: the next
            // transfer command gets the 522 instead of a bare 425.
            self.tls.note_refusal(&closure.reason);
        }
        self.discard_queued(&mut data);
        if let DataChan::Transferring { info, .. } = data {
            let Closure {
                bytes,
                reason,
                reported,
                file,
            } = closure;
            let file = match file {
                // `fsync_uploads` on a filesystem that blocks: the account settled on a
                // filesystem thread, then the sync (a completed upload's file).
                Some(file) if self.fs_blocks() && info.quota.is_some() => {
                    let prefix = self.prefix().to_string();
                    let work = move |fs: &mut dyn FileSystem| {
                        settle_quota(fs, &info, true, &prefix);
                        info
                    };
                    return self.on_fs(cx, work, move |s, cx, info| {
                        s.start_sync(cx, info, bytes, file);
                    });
                }
                other => other,
            };
            if self.fs_blocks() && file.is_none() && (info.quota.is_some() || info.part.is_some()) {
                return self.end_upload_off_loop(cx, info, bytes, reason, reported);
            }
            self.settle_quota(&info, matches!(reason, CloseReason::Completed));
            if let (CloseReason::Completed, Some(file)) = (&reason, file) {
                // `fsync_uploads`: the reply (and an atomic upload's rename) waits for
                // the sync.
                return self.start_sync(cx, info, bytes, file);
            }
            let completed = matches!(reason, CloseReason::Completed);
            // An atomic upload: the rename comes before the 226, so that a client that
            // got it finds the file; a cut upload only drops its temporary.
            let stored = match (&info.part, completed) {
                (None, _) => completed,
                (Some(_), true) => self.commit_part(&info).is_ok(),
                (Some(_), false) => {
                    self.discard_part(&info);
                    false
                }
            };
            if !self.transfer_reply(&info, bytes, reason, reported, stored) {
                return;
            }
        } else if aborting {
            self.respond(Reply::new(
                225,
                "ABOR command successful; data channel closed.",
            ));
        }
        self.after_transfer_reply(cx);
    }

    /// The end of an upload to a filesystem that blocks, on a filesystem thread: its
    /// quota account settled, an atomic upload's temporary renamed over the target (or
    /// removed, when cut or when the rename fails); then the transfer's reply.
    fn end_upload_off_loop(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        info: Box<XferInfo>,
        bytes: u64,
        reason: CloseReason,
        reported: bool,
    ) {
        let completed = matches!(reason, CloseReason::Completed);
        let prefix = self.prefix().to_string();
        let work = move |fs: &mut dyn FileSystem| {
            settle_quota(fs, &info, completed, &prefix);
            let renamed = match (&info.part, &info.path) {
                (Some(part), Some(path)) if completed => {
                    let renamed = atomic::replace(fs, part, path);
                    if let Err(e) = &renamed {
                        log::warn!(
                            "{prefix} could not rename upload temporary {} to {}: {e}",
                            part.display(),
                            path.display()
                        );
                        remove_temporaries(fs, &info, &prefix);
                    }
                    renamed
                }
                (Some(_), _) => {
                    remove_temporaries(fs, &info, &prefix);
                    Ok(None)
                }
                (None, _) => Ok(None),
            };
            (info, renamed)
        };
        self.on_fs(cx, work, move |s, cx, (info, renamed)| {
            let stored = match renamed {
                Ok(held) => {
                    if let Some(old) = held {
                        s.shared.release_file(old);
                    }
                    completed
                }
                Err(_) => false,
            };
            if s.transfer_reply(&info, bytes, reason, reported, stored) {
                s.after_transfer_reply(cx);
            }
        });
    }

    /// A finished transfer's reply (and its log line and callback if the data channel
    /// left them here); `stored`: an upload is in place. False when the session closes.
    fn transfer_reply(
        &mut self,
        info: &XferInfo,
        bytes: u64,
        reason: CloseReason,
        reported: bool,
        stored: bool,
    ) -> bool {
        let aborting = matches!(self.wait, Wait::Abort);
        let completed = matches!(reason, CloseReason::Completed);
        if !reported {
            // The data channel closed before the transfer's start reached it, or
            // left the report of an atomic upload to here (after the rename).
            self.transfer_ended(info, stored, bytes);
        }
        let aborted_midway = matches!(reason, CloseReason::Aborted) && bytes > 0;
        match reason {
            CloseReason::Completed if !stored => {
                self.respond(Reply::new(
                    451,
                    "Could not store the file; upload discarded.",
                ));
            }
            CloseReason::Completed => self.respond(Reply::new(226, "Transfer complete.")),
            CloseReason::Aborted => {
                if bytes > 0 {
                    self.respond(Reply::new(426, "Transfer aborted via ABOR."));
                    self.respond(Reply::new(226, "ABOR command successful."));
                } else {
                    self.respond(Reply::new(
                        225,
                        "ABOR command successful; data channel closed.",
                    ));
                }
            }
            CloseReason::PeerClosedEarly => {
                self.respond(Reply::new(
                    426,
                    format!("Transfer aborted; {bytes} bytes transmitted."),
                ));
            }
            CloseReason::Network(_) => {
                self.respond(Reply::new(426, "Connection closed; transfer aborted."));
            }
            CloseReason::File(_) if info.quota.as_ref().is_some_and(|q| q.meter.exceeded()) => {
                self.respond(Reply::new(
                    552,
                    "Exceeded storage allocation (quota); upload discarded.",
                ));
            }
            CloseReason::File(e) => {
                // A full disk or quota: RFC 959's 452 / 552 (pyftpdlib says 426).
                let text = crate::error::strerror(&e);
                let code = storage_code(&e).unwrap_or(426);
                self.respond(Reply::new(code, format!("{text}; transfer aborted.")));
            }
            CloseReason::Timeout => {
                self.respond_and_close(Reply::new(421, "Data connection timed out."));
                return false;
            }
            CloseReason::TlsHandshake(_) => {
                self.respond(Reply::new(522, "SSL handshake failed."));
            }
            CloseReason::TlsReuseRequired => {
                self.respond(Reply::new(
                    522,
                    "SSL connection failed: session reuse required",
                ));
            }
            CloseReason::TlsTruncated => {
                self.respond(Reply::new(
                    426,
                    format!(
                        "Transfer aborted; TLS closed without close_notify after {bytes} bytes."
                    ),
                ));
            }
        }
        if aborted_midway {
            // pyftpdlib logs this 426 at INFO, after the transfer's line.
            log::info!("{} Transfer aborted via ABOR.", self.prefix());
        }
        if aborting && completed {
            self.respond(Reply::new(225, "No transfer to abort."));
        }
        true
    }

    /// What the session does once a transfer's reply is out: read commands again after
    /// an ABOR, or say goodbye after a QUIT that came during the transfer.
    pub(super) fn after_transfer_reply(&mut self, cx: &mut Ctx<'_, Msg>) {
        match &mut self.wait {
            Wait::Abort => self.end_wait(cx),
            Wait::Quit { farewell } => {
                if let Some(text) = farewell.take() {
                    self.respond_banner(221, &text);
                }
                self.chat.close_when_done();
            }
            Wait::Nothing
            | Wait::AuthDelay { .. }
            | Wait::Authenticating
            | Wait::ActiveConnect
            | Wait::StartTls
            | Wait::Hashing(_)
            | Wait::Syncing(_)
            | Wait::Filesystem(_) => {}
        }
    }

    /// Logs a file transfer's line and fires its callback, for a transfer whose data
    /// channel could not (it closed before the start reached it).
    pub(super) fn transfer_ended(&self, info: &XferInfo, completed: bool, bytes: u64) {
        self.transfer_log(info)
            .ended(&self.shared, completed, bytes);
    }
}

/// RFC 959's reply for a write that failed for want of space: `452` (insufficient
/// storage) for a full disk, `552` (exceeded storage allocation) for a quota.
pub(super) fn storage_code(e: &std::io::Error) -> Option<u16> {
    match e.raw_os_error() {
        Some(libc::ENOSPC) => Some(452),
        Some(libc::EDQUOT) => Some(552),
        _ => None,
    }
}

/// Removes an atomic upload's temporary, and for STOU the empty file that held its name.
fn remove_temporaries(fs: &dyn FileSystem, info: &XferInfo, prefix: &dyn std::fmt::Display) {
    let reserved = info.path.as_ref().filter(|_| info.reserved);
    for p in info.part.iter().chain(reserved) {
        if let Err(e) = fs.remove(p) {
            log::warn!(
                "{prefix} could not remove upload temporary {}: {e}",
                p.display()
            );
        }
    }
}

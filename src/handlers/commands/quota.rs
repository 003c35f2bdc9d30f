//! Quotas on the control channel: an upload's account opened before its file, settled
//! when it ends (a cut by the quota leaves nothing of the upload), the usage kept right
//! by DELE and RNTO, and `SITE QUOTA [SYNC]`. See `crate::quotas` and `docs/quotas.md`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ioloop::Ctx;

use crate::filesystems::{FileSystem, WriteMode};
use crate::handlers::control::{FtpHandler, XferInfo};
use crate::handlers::Msg;
use crate::proto::Reply;
use crate::quotas::{self, Quota, UploadMeter, UploadQuota, Usage, RESYNC_AFTER};

/// How an upload meets the target.
pub(super) struct UploadStart {
    /// The target's size before (0 when it does not exist).
    pub(super) old_size: u64,
    /// Where writing starts.
    pub(super) start: u64,
    /// The upload makes a new file (the count grows by one).
    pub(super) new_file: bool,
    /// The upload writes a file of its own at the target's name (STOR, STOU, APPE to
    /// a new name), which a cut by the quota removes.
    pub(super) made_file: bool,
}

impl UploadStart {
    /// What a STOR / APPE in `mode` does to `path`.
    pub(super) fn of(
        fs: &dyn crate::filesystems::FileSystem,
        path: &Path,
        mode: WriteMode,
    ) -> Self {
        let old = fs.stat(path).ok().filter(|m| m.is_file());
        let old_size = old.as_ref().map_or(0, |m| m.size);
        let exists = old.is_some();
        match mode {
            WriteMode::Truncate => UploadStart {
                old_size,
                start: 0,
                new_file: !exists,
                made_file: true,
            },
            WriteMode::Append => UploadStart {
                old_size,
                start: old_size,
                new_file: !exists,
                made_file: !exists,
            },
            WriteMode::At(offset) => UploadStart {
                old_size,
                start: offset,
                new_file: !exists,
                made_file: !exists,
            },
        }
    }
}

impl FtpHandler {
    /// The logged-in user's quota and usage, or `None` without a quota. The first call
    /// for a user in this process (or with `resync`, or when the usage is old) walks the
    /// home.
    pub(super) fn quota_usage(&self, resync: bool) -> Option<(Quota, Arc<Usage>)> {
        self.quota_walk(resync)
            .map(|(quota, usage, _)| (quota, usage))
    }

    /// [`Self::quota_usage`], and whether it walked the home. A filesystem that blocks
    /// is walked on a filesystem thread ([`Self::quota_walk_off_loop`], at login and for
    /// `SITE QUOTA SYNC`), never here.
    fn quota_walk(&self, resync: bool) -> Option<(Quota, Arc<Usage>, bool)> {
        let user = self.username();
        let quota = self.authorizer().quota(user).filter(Quota::is_limited)?;
        let home = self.authorizer().home_dir(user)?;
        let fs = self.fs()?;
        let (resync, max_age) = if fs.blocking() {
            (false, Duration::MAX)
        } else {
            (resync, RESYNC_AFTER)
        };
        let (usage, walked) = quotas::usage_of(user, &home, fs, resync, max_age);
        Some((quota, usage, walked))
    }

    /// For a filesystem that blocks: walks the user's home on a filesystem thread when
    /// [`quotas::usage_of`] would (a limited quota; a home not counted yet, counted long
    /// ago, or `resync`), then `then` with whether it walked.
    pub(super) fn quota_walk_off_loop(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        resync: bool,
        then: impl FnOnce(&mut Self, &mut Ctx<'_, Msg>, bool) + 'static,
    ) {
        let user = self.username().to_owned();
        let limited = self
            .authorizer()
            .quota(&user)
            .is_some_and(|q| q.is_limited());
        let home = self.authorizer().home_dir(&user);
        let (true, Some(home)) = (limited, home) else {
            return then(self, cx, false);
        };
        let work = move |fs: &mut dyn FileSystem| {
            quotas::usage_of(&user, &home, fs, resync, RESYNC_AFTER).1
        };
        self.on_fs(cx, work, then);
    }

    /// Refuses a new file when the count is at the limit, before anything is opened.
    pub(super) fn quota_refuses(&self, start: &UploadStart) -> Option<Reply> {
        let (quota, usage) = self.quota_usage(false)?;
        let full = start.new_file && quota.files.is_some_and(|l| usage.files() >= l);
        if full {
            log::info!(
                "{} new file refused: {} files, the quota.",
                self.prefix(),
                usage.files()
            );
        }
        full.then(|| Reply::new(552, "Quota exceeded: too many files."))
    }

    /// Opens the account of an upload whose file now exists; `None` without a quota.
    pub(super) fn quota_open(&self, start: &UploadStart) -> Option<UploadQuota> {
        let (quota, usage) = self.quota_usage(false)?;
        if start.new_file {
            // Checked by `quota_refuses` before the file was made; two uploads racing
            // for the last file may both get it.
            usage.try_add_file(None);
        }
        let meter = UploadMeter::new(usage, quota.bytes, start.old_size, start.start);
        Some(UploadQuota {
            meter: Arc::new(meter),
            made_file: start.made_file,
            replaced: start.made_file && !start.new_file,
        })
    }

    /// Settles an upload's account once its data channel closed (or the session dropped
    /// it): a completed upload's charge is set to what the file really grew by; one cut
    /// by the quota is undone (its file removed, or cut back to its old size) and
    /// uncharged, as is a cut atomic upload (its temporary goes). A plain upload cut for
    /// another reason keeps what it wrote, and its charge.
    pub(in crate::handlers) fn settle_quota(&self, info: &XferInfo, completed: bool) {
        if let Some(fs) = self.fs() {
            settle_quota(fs, info, completed, &self.prefix());
        }
    }

    /// DELE of `path`: called before the removal with what it removes.
    pub(super) fn quota_removed(&self, size: Option<u64>) {
        let Some(size) = size else { return };
        if let Some((_, usage)) = self.quota_usage(false) {
            usage.adjust_bytes(-i128::from(size));
            usage.remove_file();
        }
    }

    /// `SITE QUOTA [SYNC]`: the usage and the limits, walked again first with `SYNC`.
    pub(super) fn site_quota(&mut self, cx: &mut Ctx<'_, Msg>, arg: &str) {
        let resync = match arg.trim() {
            "" => false,
            a if a.eq_ignore_ascii_case("SYNC") => true,
            _ => return self.respond(Reply::new(501, "Syntax: SITE QUOTA [SYNC].")),
        };
        if self.fs_blocks() {
            return self.quota_walk_off_loop(cx, resync, move |s, _, walked| {
                s.site_quota_reply(resync, Some(walked));
            });
        }
        self.site_quota_reply(resync, None);
    }

    /// SITE QUOTA's reply; `walked_off_loop`: whether a filesystem thread just walked
    /// the home (a filesystem that blocks), else the walk, if any, is made here.
    fn site_quota_reply(&mut self, resync: bool, walked_off_loop: Option<bool>) {
        let Some((quota, usage, walked)) = self.quota_walk(resync) else {
            return self.respond(Reply::new(200, "No quota."));
        };
        let limit = |l: Option<u64>| l.map_or_else(|| "unlimited".to_owned(), |l| l.to_string());
        let walked = walked_off_loop.unwrap_or(walked);
        // A SYNC right after another walk (`quotas::SYNC_INTERVAL`) does not walk again.
        let recent = if resync && !walked {
            " (counted in the last 2 s; not counted again)"
        } else {
            ""
        };
        self.respond(Reply::new(
            200,
            format!(
                "Quota: {} / {} bytes, {} / {} files.{recent}",
                usage.bytes(),
                limit(quota.bytes),
                usage.files(),
                limit(quota.files)
            ),
        ));
    }
}

/// [`FtpHandler::settle_quota`] through `fs`, anywhere (a filesystem thread for a
/// filesystem that blocks); `prefix` is the session's, for the log lines.
pub(in crate::handlers) fn settle_quota(
    fs: &dyn FileSystem,
    info: &XferInfo,
    completed: bool,
    prefix: &dyn std::fmt::Display,
) {
    let Some(q) = &info.quota else {
        return;
    };
    let meter = &q.meter;
    let usage = meter.usage();
    let charged = i128::from(meter.charged());
    let old = i128::from(meter.old_size());
    if info.part.is_some() && !completed {
        // A cut atomic upload: the caller drops the temporary; the target is as it
        // was, whatever cut it.
        usage.adjust_bytes(-charged);
        if q.made_file && !q.replaced {
            usage.remove_file();
        }
        return;
    }
    if meter.exceeded() {
        log::info!(
            "{} {} {} cut at the quota and undone ({} bytes used).",
            prefix,
            info.cmd,
            info.path.as_deref().unwrap_or(Path::new("")).display(),
            usage.bytes()
        );
        usage.adjust_bytes(-charged);
        let Some(path) = &info.path else { return };
        let undone = if q.made_file {
            if q.replaced {
                usage.adjust_bytes(-old);
            }
            usage.remove_file();
            fs.remove(path)
        } else {
            fs.open_write(path, WriteMode::At(0))
                .and_then(|mut f| f.set_len(meter.old_size()))
        };
        if let Err(e) = undone {
            log::warn!(
                "{} could not undo the upload to {} past the quota: {e}",
                prefix,
                path.display()
            );
        }
        return;
    }
    if completed {
        let written = info.part.as_ref().or(info.path.as_ref());
        if let Some(size) = written.and_then(|p| fs.stat(p).ok()).map(|m| m.size) {
            usage.adjust_bytes(i128::from(size) - old - charged);
        }
    }
}

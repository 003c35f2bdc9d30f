//! `fsync_uploads`: a completed upload is answered only once it is on disk. The control
//! channel asks its filesystem for the sync ([`FileSystem::sync_upload`]), a file thread
//! runs it, and the result comes back as [`SessionCmd::Synced`]; commands wait meanwhile.
//! An atomic upload syncs in two steps around its rename: the temporary's data first
//! (so that the name never leads to data not yet on disk), then the directory.
//!
//! [`FileSystem::sync_upload`]: crate::filesystems::FileSystem::sync_upload

use std::path::Path;
use std::time::Instant;

use ioloop::Ctx;

use super::data::storage_code;
use super::{FtpHandler, Wait, XferInfo};
use crate::filesystems::{FileSystem, FsFile, SyncJob};
use crate::handlers::{atomic, Msg, SessionCmd};
use crate::proto::Reply;

/// An upload whose reply waits for its sync.
pub(in crate::handlers) struct Syncing {
    info: Box<XferInfo>,
    bytes: u64,
    /// What the session waited for when the transfer ended (an ABOR or a QUIT that came
    /// during it), resumed after the reply.
    then: Wait,
    step: Step,
    started: Instant,
}

/// Where the sync of an upload stands.
enum Step {
    /// An atomic upload's temporary: its data, before the rename; the file is kept to
    /// sync the directory after it.
    Data(FsFile),
    /// The last sync: the file, and with `dir` its directory (a new name).
    Last { dir: bool },
}

impl Syncing {
    /// A QUIT or a server stop came meanwhile: the session ends after the reply.
    pub(super) fn quit_after(&mut self, farewell: Option<String>) {
        if !matches!(self.then, Wait::Quit { .. }) {
            self.then = Wait::Quit { farewell };
        }
    }

    /// Whether an atomic upload's rename still waits (the temporary is to be dropped if
    /// the session ends first).
    pub(super) fn renames(&self) -> bool {
        matches!(self.step, Step::Data(_))
    }

    /// The upload.
    pub(super) fn info(&self) -> &XferInfo {
        &self.info
    }
}

impl FtpHandler {
    /// A completed upload, with `fsync_uploads`: hands its sync to a file thread.
    pub(super) fn start_sync(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        info: Box<XferInfo>,
        bytes: u64,
        file: FsFile,
    ) {
        let then = std::mem::replace(&mut self.wait, Wait::Nothing);
        let syncing = Syncing {
            info,
            bytes,
            then,
            step: Step::Last { dir: false },
            started: Instant::now(),
        };
        let before_rename = syncing.info.part.is_some();
        self.sync_step(cx, syncing, file, before_rename);
    }

    /// A file thread finished a sync.
    pub(super) fn synced(&mut self, cx: &mut Ctx<'_, Msg>, result: std::io::Result<()>) {
        let Wait::Syncing(syncing) = std::mem::replace(&mut self.wait, Wait::Nothing) else {
            return;
        };
        let mut syncing = *syncing;
        let path = syncing.info.path.clone().unwrap_or_default();
        log::debug!(
            "{} fsync of {} ({}): {:?}, {} µs",
            self.prefix(),
            path.display(),
            match syncing.step {
                Step::Data(_) | Step::Last { dir: false } => "data",
                Step::Last { dir: true } => "data and name",
            },
            result.as_ref().map_err(|e| e.kind()),
            syncing.started.elapsed().as_micros()
        );
        let step = std::mem::replace(&mut syncing.step, Step::Last { dir: false });
        match (step, result) {
            (Step::Data(file), Ok(())) if self.fs_blocks() => {
                self.commit_synced_part_off_loop(cx, syncing, file);
            }
            (Step::Data(file), Ok(())) => {
                if self.commit_part(&syncing.info).is_err() {
                    let reply = Reply::new(451, "Could not store the file; upload discarded.");
                    return self.end_synced(cx, syncing, Err(reply));
                }
                syncing.started = Instant::now();
                self.sync_step(cx, syncing, file, false);
            }
            (Step::Data(_), Err(e)) => {
                self.discard_part(&syncing.info);
                self.end_synced(cx, syncing, Err(sync_failed(&e)));
            }
            (Step::Last { .. }, Ok(())) => self.end_synced(cx, syncing, Ok(())),
            (Step::Last { .. }, Err(e)) => self.end_synced(cx, syncing, Err(sync_failed(&e))),
        }
    }

    /// An atomic upload's synced temporary, on a filesystem that blocks: renamed over
    /// the target on a filesystem thread (removed if that fails), then the last sync.
    fn commit_synced_part_off_loop(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        syncing: Syncing,
        file: FsFile,
    ) {
        let (Some(part), Some(path)) = (syncing.info.part.clone(), syncing.info.path.clone())
        else {
            return self.sync_step(cx, syncing, file, false);
        };
        let reserved = syncing.info.reserved;
        let prefix = self.prefix().to_string();
        let work = move |fs: &mut dyn FileSystem| {
            let renamed = atomic::replace(fs, &part, &path);
            if let Err(e) = &renamed {
                log::warn!(
                    "{prefix} could not rename upload temporary {} to {}: {e}",
                    part.display(),
                    path.display()
                );
                let name = Some(&path).filter(|_| reserved);
                for p in std::iter::once(&part).chain(name) {
                    if let Err(e) = fs.remove(p) {
                        log::warn!(
                            "{prefix} could not remove upload temporary {}: {e}",
                            p.display()
                        );
                    }
                }
            }
            renamed
        };
        self.on_fs(cx, work, move |s, cx, renamed| match renamed {
            Ok(held) => {
                if let Some(old) = held {
                    s.shared.release_file(old);
                }
                let mut syncing = syncing;
                syncing.started = Instant::now();
                s.sync_step(cx, syncing, file, false);
            }
            Err(_) => {
                s.shared.release_file(file);
                let reply = Reply::new(451, "Could not store the file; upload discarded.");
                s.end_synced(cx, syncing, Err(reply));
            }
        });
    }

    /// Prepares the sync of `file` and hands it to a file thread: an atomic upload's
    /// data alone `before_rename`, else the data and, for a new name, the directory. A
    /// filesystem that blocks prepares on a filesystem thread.
    fn sync_step(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        syncing: Syncing,
        mut file: FsFile,
        before_rename: bool,
    ) {
        let parent = syncing
            .info
            .path
            .as_deref()
            .and_then(Path::parent)
            .filter(|_| !before_rename && syncing.info.new_name)
            .map(Path::to_path_buf);
        if self.fs_blocks() {
            let work = move |fs: &mut dyn FileSystem| {
                let prepared = fs.sync_upload(&mut file, parent.as_deref());
                (file, prepared, parent.is_some())
            };
            return self.on_fs(cx, work, move |s, cx, (file, prepared, dir)| {
                s.queue_sync(cx, syncing, file, prepared, before_rename, dir);
            });
        }
        let prepared = match self.fs() {
            Some(fs) => fs.sync_upload(&mut file, parent.as_deref()),
            None => Err(std::io::ErrorKind::NotConnected.into()),
        };
        let dir = parent.is_some();
        self.queue_sync(cx, syncing, file, prepared, before_rename, dir);
    }

    /// Hands a prepared sync to a file thread; the session waits for it.
    fn queue_sync(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        mut syncing: Syncing,
        file: FsFile,
        prepared: std::io::Result<SyncJob>,
        before_rename: bool,
        dir: bool,
    ) {
        let job = match (prepared, self.shared.file_workers()) {
            (Ok(job), Some(pool)) => {
                let (lp, me) = (cx.loop_handle(), cx.me());
                pool.run(move || {
                    let result = job.run();
                    // A session gone meanwhile drops the message.
                    let _ = lp.send(me, Msg::ToSession(SessionCmd::Synced(result)));
                })
                .then_some(())
                .ok_or_else(|| std::io::Error::other("no file thread"))
            }
            (Ok(_), None) => Err(std::io::Error::other("no file thread")),
            (Err(e), _) => Err(e),
        };
        if let Err(e) = job {
            log::warn!("{} cannot sync an upload: {e}", self.prefix());
            self.shared.release_file(file);
            if before_rename {
                self.discard_part(&syncing.info);
            }
            return self.end_synced(cx, syncing, Err(sync_failed(&e)));
        }
        syncing.step = if before_rename {
            Step::Data(file)
        } else {
            // The job syncs through a descriptor of its own; this one closes off the loop.
            self.shared.release_file(file);
            Step::Last { dir }
        };
        self.set_wait(Wait::Syncing(Box::new(syncing)));
    }

    /// The reply of a synced upload: `226`, or `reply` when it could not be made durable;
    /// then the transfer is reported and the wait that the transfer's end found resumes.
    fn end_synced(&mut self, cx: &mut Ctx<'_, Msg>, syncing: Syncing, outcome: Result<(), Reply>) {
        let Syncing {
            info, bytes, then, ..
        } = syncing;
        self.transfer_ended(&info, outcome.is_ok(), bytes);
        match outcome {
            Ok(()) => self.respond(Reply::new(226, "Transfer complete.")),
            Err(reply) => self.respond(reply),
        }
        let aborting = matches!(then, Wait::Abort);
        self.wait = then;
        if aborting {
            self.respond(Reply::new(225, "No transfer to abort."));
        }
        cx.wake();
        self.after_transfer_reply(cx);
    }
}

/// The reply to an upload that could not be synced: `452` / `552` for want of space,
/// else `451`.
fn sync_failed(e: &std::io::Error) -> Reply {
    let text = crate::error::strerror(e);
    match storage_code(e) {
        Some(code) => Reply::new(code, format!("{text}; upload not stored.")),
        None => Reply::new(451, format!("{text}; upload not stored.")),
    }
}

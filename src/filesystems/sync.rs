//! [`SyncJob`]: what makes a completed upload durable (`HandlerConfig::fsync_uploads`),
//! prepared on the loop's thread by [`super::FileSystem::sync_upload`] and run on a
//! worker thread, so that the fdatasync(2) / fsync(2) waits stall no other session.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::FsFile;

/// Work that makes an upload's data (and, when asked, its directory entry) durable; run
/// once, on a worker thread, before the upload's `226`.
///
/// ```
/// use ftpdlib::filesystems::SyncJob;
///
/// let job = SyncJob::new(|| Ok(())); // e.g. flush a remote store
/// assert!(job.run().is_ok());
/// assert!(SyncJob::nothing().run().is_ok());
/// ```
pub struct SyncJob(Box<dyn FnOnce() -> io::Result<()> + Send>);

impl SyncJob {
    /// A job that runs `work`.
    pub fn new(work: impl FnOnce() -> io::Result<()> + Send + 'static) -> SyncJob {
        SyncJob(Box::new(work))
    }

    /// A job with nothing to do (storage that is durable once written, or that has no
    /// disk at all, as [`super::MemoryFs`]).
    pub fn nothing() -> SyncJob {
        SyncJob::new(|| Ok(()))
    }

    /// Runs the job.
    ///
    /// # Errors
    /// The error of the sync (the upload is answered `451`, or `452` / `552` for a full
    /// disk or quota).
    pub fn run(self) -> io::Result<()> {
        (self.0)()
    }
}

impl fmt::Debug for SyncJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SyncJob(..)")
    }
}

/// The default of [`super::FileSystem::sync_upload`]: for an OS file, fdatasync(2) of a
/// second descriptor of it and, with `dir`, fsync(2) of the directory, opened here; a
/// custom file is flushed here and nothing more is done (its storage is not the OS's).
pub(super) fn prepare(file: &mut FsFile, dir: Option<&Path>) -> io::Result<SyncJob> {
    let data = match file {
        FsFile::Os(f) => f.try_clone()?,
        FsFile::Custom(c) => {
            c.flush()?;
            return Ok(SyncJob::nothing());
        }
    };
    // Opening a directory is quick; syncing it is what may wait for the disk.
    let dir = dir.map(File::open).transpose()?;
    Ok(SyncJob::new(move || {
        data.sync_data()?;
        match dir {
            Some(d) => d.sync_all(),
            None => Ok(()),
        }
    }))
}

//! The filesystem steps of commands, and a filesystem that blocks
//! ([`FileSystem::blocking`]). A command body gives [`FtpHandler::on_fs`] its filesystem
//! step (a `Send` closure over the session's filesystem) and what to do with the result
//! on the loop. For an ordinary filesystem both run at once, in line, as before. For one
//! that blocks, the session lends its filesystem to a filesystem thread with the step,
//! and sleeps (`Wait::Filesystem`: no command is read, the data side's news and the
//! server's orders wait) until [`SessionCmd::FsReturned`] brings the filesystem back with
//! the result; then the second half runs, the command is logged, and what waited is
//! delivered in order (pyftpdlib's del_channel / add_channel around a thread, as the
//! password checks of `auth_workers` do).

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};

use ioloop::Ctx;

use super::{FtpHandler, LastReply, Login, Wait};
use crate::filesystems::FileSystem;
use crate::handlers::{Msg, SessionCmd};
use crate::proto::Reply;

/// A session's filesystem on its way back from a filesystem thread, with the result of
/// the call (None if the call panicked).
pub(crate) struct FsReturn {
    fs: Option<Box<dyn FileSystem>>,
    result: Option<Box<dyn Any + Send>>,
    leftovers: Arc<Mutex<Leftovers>>,
}

/// Clean-up that needs the filesystem while it is away: the session ended meanwhile
/// with a transfer whose quota account and temporaries are to be settled.
pub(in crate::handlers) type Cleanup = Box<dyn FnOnce(&mut dyn FileSystem) + Send>;

/// What the session left for its filesystem while a thread had it.
#[derive(Default)]
pub(in crate::handlers) struct Leftovers {
    /// The session ended: the thread runs the clean-up itself and drops the filesystem.
    closed: bool,
    work: Vec<Cleanup>,
}

impl Drop for FsReturn {
    fn drop(&mut self) {
        // Dropped undelivered (the session ended just after the thread looked): the
        // clean-up it left runs here.
        if let Some(mut fs) = self.fs.take() {
            let work = std::mem::take(&mut lock(&self.leftovers).work);
            for cleanup in work {
                cleanup(&mut *fs);
            }
        }
    }
}

fn lock(leftovers: &Mutex<Leftovers>) -> MutexGuard<'_, Leftovers> {
    match leftovers.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl fmt::Debug for FsReturn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsReturn")
            .field("panicked", &self.result.is_none())
            .finish_non_exhaustive()
    }
}

/// The second half of a command whose filesystem step runs on a thread; it gets the
/// step's result (boxed; [`FtpHandler::on_fs`] knows its type).
type Completion = Box<dyn FnOnce(&mut FtpHandler, &mut Ctx<'_, Msg>, Box<dyn Any + Send>)>;

/// A session waiting for its filesystem.
pub(in crate::handlers) struct FsCall {
    then: Completion,
    /// Messages that came meanwhile (the data channel's news, the server's orders),
    /// delivered once the command is done, in the order they came.
    deferred: Vec<Msg>,
    /// The command's log line, written once it has replied.
    log: Option<CommandLog>,
    /// Shared with the thread: clean-up left while the filesystem is away.
    leftovers: Arc<Mutex<Leftovers>>,
    /// What the session waited for before (an ABOR or a QUIT that came during a
    /// transfer whose end needs the filesystem), resumed when it is back.
    resume: Wait,
}

/// What a logged command's line needs (see [`FtpHandler::log_command`]).
pub(in crate::handlers) struct CommandLog {
    pub(in crate::handlers) cmd: String,
    pub(in crate::handlers) what: String,
    pub(in crate::handlers) is_path: bool,
}

impl FtpHandler {
    /// Runs a command's filesystem step `work`, then `then` with its result on the loop:
    /// both at once for an ordinary filesystem, `work` on a filesystem thread for one that
    /// blocks (the session waits meanwhile). Nothing runs without a logged-in user (as
    /// the bodies did before: the gate lets no such command through).
    pub(in crate::handlers) fn on_fs<R: Send + 'static>(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        work: impl FnOnce(&mut dyn FileSystem) -> R + Send + 'static,
        then: impl FnOnce(&mut Self, &mut Ctx<'_, Msg>, R) + 'static,
    ) {
        let Login::LoggedIn { fs, .. } = &mut self.login else {
            return;
        };
        if !fs.blocking() {
            let result = work(&mut **fs);
            return then(self, cx, result);
        }
        let Some(pool) = self.shared.fs_workers() else {
            return self.respond(Reply::new(451, "Requested action aborted: local error."));
        };
        let Login::LoggedIn { user, fs } = std::mem::replace(&mut self.login, Login::AwaitingUser)
        else {
            return; // matched above
        };
        self.login = Login::Lent { user };
        let (lp, me) = (cx.loop_handle(), cx.me());
        let leftovers = Arc::new(Mutex::new(Leftovers::default()));
        let left = Arc::clone(&leftovers);
        let queued = pool.run(move || {
            let mut fs = fs;
            // A panicking filesystem must not take the session's filesystem (and its
            // wait) down with the thread.
            let result = panic::catch_unwind(AssertUnwindSafe(|| work(&mut *fs)))
                .ok()
                .map(|r| Box::new(r) as Box<dyn Any + Send>);
            let ended = {
                let mut left = lock(&left);
                left.closed.then(|| std::mem::take(&mut left.work))
            };
            if let Some(work) = ended {
                // The session is gone: its clean-up runs here, and the filesystem ends
                // here.
                for cleanup in work {
                    cleanup(&mut *fs);
                }
                return;
            }
            let back = Box::new(FsReturn {
                fs: Some(fs),
                result,
                leftovers: left,
            });
            // A session gone meanwhile drops the message, and the filesystem with it.
            let _ = lp.send(me, Msg::ToSession(SessionCmd::FsReturned(back)));
        });
        if !queued {
            // The threads are gone, and the filesystem with the job: the session cannot
            // go on.
            log::error!("{} no filesystem thread", self.prefix());
            return self.respond_and_close(Reply::new(
                421,
                "Service not available, closing control connection.",
            ));
        }
        let then: Completion = Box::new(move |s, cx, result| match result.downcast::<R>() {
            Ok(result) => then(s, cx, *result),
            // Only `on_fs` boxes results, with this very type.
            Err(_) => s.respond(Reply::new(451, "Requested action aborted: local error.")),
        });
        let resume = std::mem::replace(&mut self.wait, Wait::Nothing);
        self.set_wait(Wait::Filesystem(Box::new(FsCall {
            then,
            deferred: Vec::new(),
            log: None,
            leftovers,
            resume,
        })));
    }

    /// The command that just ran is waiting for its filesystem: its log line is written
    /// after its reply. False if it is not waiting.
    pub(in crate::handlers) fn log_when_returned(&mut self, log: CommandLog) -> bool {
        match &mut self.wait {
            Wait::Filesystem(call) => {
                call.log = Some(log);
                true
            }
            Wait::Nothing
            | Wait::AuthDelay { .. }
            | Wait::Authenticating
            | Wait::ActiveConnect
            | Wait::Abort
            | Wait::Quit { .. }
            | Wait::StartTls
            | Wait::Hashing(_)
            | Wait::Syncing(_) => false,
        }
    }

    /// Whether the filesystem is away on a thread.
    pub(in crate::handlers) fn fs_lent(&self) -> bool {
        matches!(self.login, Login::Lent { .. })
    }

    /// Leaves `cleanup` to run on the filesystem when it is back (on its thread if the
    /// session has ended by then). Runs it now if the filesystem is here.
    pub(in crate::handlers) fn with_fs_later(&mut self, cleanup: Cleanup) {
        if let Login::LoggedIn { fs, .. } = &mut self.login {
            return cleanup(&mut **fs);
        }
        if let Wait::Filesystem(call) = &self.wait {
            lock(&call.leftovers).work.push(cleanup);
        }
    }

    /// The session ends with a filesystem that blocks in hand: it takes the filesystem
    /// out, so that the clean-up of the session (`drop_data`, through
    /// [`Self::with_fs_later`]) is collected instead of run on the loop; then
    /// [`Self::clean_up_on_thread`] runs it, and drops the filesystem, on a thread.
    pub(in crate::handlers) fn take_fs_for_close(&mut self) -> Option<Box<dyn FileSystem>> {
        if !matches!(&self.login, Login::LoggedIn { fs, .. } if fs.blocking()) {
            return None;
        }
        let Login::LoggedIn { user, fs } = std::mem::replace(&mut self.login, Login::AwaitingUser)
        else {
            return None;
        };
        self.login = Login::Lent { user };
        // Nothing comes back: the call is only where the clean-up is collected.
        let then: Completion = Box::new(|_, _, _| {});
        self.wait = Wait::Filesystem(Box::new(FsCall {
            then,
            deferred: Vec::new(),
            log: None,
            leftovers: Arc::default(),
            resume: Wait::Nothing,
        }));
        Some(fs)
    }

    /// Runs the clean-up collected since [`Self::take_fs_for_close`] on a filesystem
    /// thread, then drops `fs` there (here if no thread can be had).
    pub(in crate::handlers) fn clean_up_on_thread(&mut self, fs: Box<dyn FileSystem>) {
        let work = if let Wait::Filesystem(call) = &self.wait {
            std::mem::take(&mut lock(&call.leftovers).work)
        } else {
            Vec::new()
        };
        let job = move || {
            let mut fs = fs;
            for cleanup in work {
                cleanup(&mut *fs);
            }
        };
        match self.shared.fs_workers() {
            Some(pool) => {
                // When the threads are gone, `run` drops the job unrun: nothing more can
                // be done then.
                let _ = pool.run(job);
            }
            None => job(),
        }
    }

    /// The session ends while its filesystem is away: the thread keeps it, runs what
    /// was left for it, and drops it.
    pub(in crate::handlers) fn leave_fs_behind(&self) {
        if let Wait::Filesystem(call) = &self.wait {
            lock(&call.leftovers).closed = true;
        }
    }

    /// Keeps a message that came while the filesystem is away; gives it back otherwise.
    pub(super) fn defer_while_lent(&mut self, msg: Msg) -> Option<Msg> {
        match (&mut self.wait, msg) {
            (_, msg @ Msg::ToSession(SessionCmd::FsReturned(_))) => Some(msg),
            (Wait::Filesystem(call), msg) => {
                call.deferred.push(msg);
                None
            }
            (_, msg) => Some(msg),
        }
    }

    /// The filesystem is back: the command's second half, its log line, then what
    /// waited.
    pub(super) fn fs_returned(&mut self, cx: &mut Ctx<'_, Msg>, mut back: FsReturn) {
        let result = back.result.take();
        let Some(mut fs) = back.fs.take() else {
            return;
        };
        // Clean-up left meanwhile (none unless a transfer was dropped): here, now.
        let work = std::mem::take(&mut lock(&back.leftovers).work);
        for cleanup in work {
            cleanup(&mut *fs);
        }
        self.login = match std::mem::replace(&mut self.login, Login::AwaitingUser) {
            Login::Lent { user } => Login::LoggedIn { user, fs },
            // Not lent (cannot happen: only `on_fs` lends it): keep the session's state.
            other @ (Login::AwaitingUser | Login::AwaitingPass { .. } | Login::LoggedIn { .. }) => {
                other
            }
        };
        let Wait::Filesystem(call) = std::mem::replace(&mut self.wait, Wait::Nothing) else {
            return;
        };
        let FsCall {
            then,
            deferred,
            log,
            resume,
            ..
        } = *call;
        self.wait = resume;
        cx.wake(); // commands buffered meanwhile run on this pass
        self.last_reply = LastReply::Awaiting;
        match result {
            Some(result) => then(self, cx, result),
            None => {
                log::error!("{} the filesystem panicked", self.prefix());
                self.respond_and_close(Reply::new(
                    451,
                    "Requested action aborted: local error in processing.",
                ));
            }
        }
        match log {
            // A second step on the filesystem: logged once that one replied.
            Some(log) if matches!(self.wait, Wait::Filesystem(_)) => {
                self.log_when_returned(log);
            }
            Some(CommandLog { cmd, what, is_path }) => {
                let reply = std::mem::replace(&mut self.last_reply, LastReply::Idle);
                self.log_command(&cmd, &what, is_path, &reply);
            }
            None => {}
        }
        if !matches!(self.wait, Wait::Filesystem(_)) {
            self.last_reply = LastReply::Idle;
        }
        for msg in deferred {
            self.on_session_message(cx, msg);
        }
    }
}

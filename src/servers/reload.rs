//! Reloading a running server: new options and a new authorizer for the sessions that
//! start from now on, while every running session keeps the settings it started with (it
//! holds its own `Arc` of them). A reload is handed to the acceptor of each loop as a
//! message ([`FtpServer::reload`], [`ServerHandle::reload`]); the pre-fork supervisor
//! forwards it to its workers as SIGHUP, each of which asks the reload hook again. With a
//! hook set ([`ServerBuilder::on_reload`]), `serve_forever(true)` reloads on SIGHUP.
//!
//! What cannot change in a running server keeps its old value with a warning: the
//! number of authorizer threads (`auth_workers`) and whether FTPS is on at all (its
//! commands are in the command table); the listener, the concurrency model and the
//! limits live in [`ServerConfig`](crate::config::ServerConfig), which a reload does not
//! touch.

use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use super::builder::ServerBuilder;
use super::server::{FtpServer, ServerHandle};
use crate::error::Error;
use crate::handlers::shared::{Reload, ReloadOrder};
use crate::handlers::{Msg, ServerEvent};
use crate::proto::Charset;

/// Why a reload hook could not give new settings (a file that does not parse, a key that
/// cannot be read): the server keeps the old ones and logs this.
pub type ReloadError = Box<dyn std::error::Error + Send + Sync>;

/// Who asks a reload hook for new settings.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ReloadRequest {
    worker: Option<usize>,
}

/// The function that reads the settings again on SIGHUP ([`ServerBuilder::on_reload`]).
#[derive(Clone)]
pub(crate) struct ReloadHook(Arc<ReloadFn>);

/// What [`ReloadHook`] calls.
type ReloadFn = dyn Fn(&ReloadRequest) -> Result<Reload, ReloadError> + Send + Sync;

impl ReloadRequest {
    /// Asked by the process that received SIGHUP (or its owner).
    pub(crate) fn server() -> ReloadRequest {
        ReloadRequest { worker: None }
    }

    /// Asked by pre-fork worker `slot`, after its supervisor read the settings.
    pub(crate) fn worker(slot: usize) -> ReloadRequest {
        ReloadRequest { worker: Some(slot) }
    }

    /// In a pre-fork worker: its slot. The supervisor asked first, and has logged what
    /// changed; a hook may keep quiet here.
    pub fn pre_fork_worker(&self) -> Option<usize> {
        self.worker
    }
}

impl ReloadHook {
    pub(crate) fn call(&self, request: &ReloadRequest) -> Result<Reload, ReloadError> {
        (self.0)(request)
    }
}

impl ServerBuilder {
    /// What reads the settings again when the process receives SIGHUP while
    /// [`FtpServer::serve_forever`] runs with `handle_exit`: the hook returns the new
    /// options and authorizer, which the sessions started from then on get; running ones
    /// keep theirs. A hook that fails leaves every setting as it was (the error is
    /// logged). Without a hook, SIGHUP keeps its default action (it ends the process).
    /// With [`ServerBuilder::notify_systemd`], systemd hears `RELOADING=1` before and
    /// `READY=1` after, as `Type=notify-reload` expects.
    pub fn on_reload(
        mut self,
        hook: impl Fn(&ReloadRequest) -> Result<Reload, ReloadError> + Send + Sync + 'static,
    ) -> Self {
        self.reload_hook = Some(ReloadHook(Arc::new(hook)));
        self
    }
}

impl FtpServer {
    /// Gives the sessions started from now on new settings, in every loop of the server;
    /// running sessions keep theirs. In the pre-fork model, the workers started from now
    /// on get them, and the running ones read them again through the reload hook
    /// ([`ServerBuilder::on_reload`]) if there is one. Returns once the loops have taken
    /// them (for loops on other threads, after at most a second).
    ///
    /// # Errors
    /// When the new encoding is unknown; nothing changes then.
    pub fn reload(&mut self, reload: Reload) -> Result<(), Error> {
        let reload = reload.settle(&self.shared.config, true)?;
        let shared = Arc::new(self.shared.reloaded(&reload)?);
        let (done, taken) = std::sync::mpsc::sync_channel(self.siblings.len());
        for s in &self.siblings {
            let order = order(reload.clone(), Some(done.clone()), false);
            if s.handle.send(s.acceptor, order).is_err() {
                log::warn!("reload: a loop did not take the new settings");
            }
        }
        self.shared = shared;
        // One pass delivers the order now: a client that connects after this returns
        // gets the new settings.
        self.ioloop.send(self.acceptor, order(reload, None, false));
        self.ioloop
            .run_once(Some(Duration::ZERO))
            .map_err(|e| Error::io("polling", e))?;
        wait_for(&taken, self.siblings.len());
        Ok(())
    }

    /// Runs the reload hook, if any, and applies what it returns; logs the outcome.
    /// Returns whether the settings changed.
    pub(super) fn reload_from_hook(&mut self) -> bool {
        let Some(hook) = self.reload_hook.clone() else {
            return false;
        };
        let applied = hook
            .call(&ReloadRequest::server())
            .and_then(|reload| self.reload(reload).map_err(ReloadError::from));
        match applied {
            Ok(()) => {
                log::info!("reload done: new sessions get the new settings");
                true
            }
            Err(e) => {
                log::error!("reload failed, keeping the old settings: {e}");
                false
            }
        }
    }
}

impl ServerHandle {
    /// [`FtpServer::reload`] from another thread: the sessions started from now on get
    /// the new settings. Returns once every loop has taken them (or after at most a
    /// second each).
    ///
    /// # Errors
    /// When the new encoding is unknown (nothing changes then), or a loop cannot be
    /// woken.
    pub fn reload(&self, reload: Reload) -> Result<(), Error> {
        if let Some(config) = &reload.handler {
            Charset::from_name(&config.encoding).map_err(|e| Error::Config(e.to_string()))?;
        }
        let loops = self.loops();
        let (done, taken) = std::sync::mpsc::sync_channel(loops.len());
        for (i, (handle, acceptor)) in loops.iter().enumerate() {
            handle
                .send(*acceptor, order(reload.clone(), Some(done.clone()), i == 0))
                .map_err(|e| Error::io("waking the server loop", e))?;
        }
        wait_for(&taken, loops.len());
        Ok(())
    }
}

pub(super) fn order(reload: Reload, done: Option<SyncSender<()>>, warn: bool) -> Msg {
    Msg::ToServer(ServerEvent::Reload(Box::new(ReloadOrder {
        reload,
        done,
        warn,
    })))
}

/// Waits for `count` loops to say they took a reload, a second at most each.
fn wait_for(taken: &Receiver<()>, count: usize) {
    for _ in 0..count {
        if taken.recv_timeout(Duration::from_secs(1)).is_err() {
            log::warn!("reload: a loop did not confirm the new settings within a second");
            return;
        }
    }
}

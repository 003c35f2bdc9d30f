//! The reload calls of a built server: [`ServerBuilder::on_reload`],
//! [`FtpServer::reload`] and [`ServerHandle::reload`] (the types they take are in
//! `reload`).

use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use super::builder::ServerBuilder;
use super::reload::{order, ReloadError, ReloadHook, ReloadRequest};
use super::server::{FtpServer, ServerHandle};
use crate::error::Error;
use crate::handlers::shared::Reload;
use crate::proto::Charset;

impl ServerBuilder {
    /// What reads the settings again when the process receives SIGHUP while
    /// [`FtpServer::serve_forever`] runs with `handle_exit`: the hook returns the new
    /// options and authorizer, which the sessions started from then on get; running ones
    /// keep theirs. A hook that fails leaves every setting as it was (the error is
    /// logged). Without a hook, SIGHUP keeps its default action (it ends the process);
    /// with one, its handler is installed before the port is bound, as for
    /// [`ServerBuilder::hand_over_on_sigusr2`].
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

/// Waits for `count` loops to say they took a reload, a second at most each.
fn wait_for(taken: &Receiver<()>, count: usize) {
    for _ in 0..count {
        if taken.recv_timeout(Duration::from_secs(1)).is_err() {
            log::warn!("reload: a loop did not confirm the new settings within a second");
            return;
        }
    }
}

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

use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use crate::handlers::shared::{Reload, ReloadOrder};
use crate::handlers::{Msg, ServerEvent};

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
pub(crate) struct ReloadHook(pub(super) Arc<ReloadFn>);

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

pub(super) fn order(reload: Reload, done: Option<SyncSender<()>>, warn: bool) -> Msg {
    Msg::ToServer(ServerEvent::Reload(Box::new(ReloadOrder {
        reload,
        done,
        warn,
    })))
}

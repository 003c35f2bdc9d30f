//! The context every session of a server shares: the options, the authorizer, the
//! callbacks, the command table and the added command bodies, built once by the server and
//! handed to each session behind one `Arc`.

use std::sync::{Arc, OnceLock};

use super::pool::WorkerPool;
use super::{CommandBody, VirtualHosts};
use crate::authorizers::Authorizer;
use crate::bans::Bans;
use crate::config::HandlerConfig;
use crate::events::Events;
use crate::metrics::{Counter, Metrics};
use crate::proto::{Charset, CommandTable};

/// What every session of a server shares, behind one pointer.
pub(crate) struct Shared {
    pub(crate) config: HandlerConfig,
    pub(crate) authorizer: Arc<dyn Authorizer>,
    pub(crate) events: Arc<dyn Events>,
    pub(crate) commands: CommandTable,
    /// Bodies of the commands the embedding program added; a table entry's
    /// `Action::Custom` is an index here.
    pub(crate) custom: Vec<CommandBody>,
    /// Extra FEAT lines.
    pub(crate) features: Vec<String>,
    /// Threads for authorizer calls that may block (`auth_workers`).
    pub(crate) workers: Option<WorkerPool>,
    /// The control channel's character set, from `config.encoding`.
    pub(crate) charset: Charset,
    /// The checksum thread, started by the first HASH (None if it could not start).
    pub(crate) hash_pool: OnceLock<Option<WorkerPool>>,
    /// Failed logins and bans, shared by every loop and process (`config.ban`).
    pub(crate) bans: Option<Arc<Bans>>,
    /// The virtual hosts (RFC 7151), by name; empty without.
    pub(crate) hosts: VirtualHosts,
    /// The server's counters, when it serves metrics (shared by every loop, thread and
    /// forked process of the server).
    pub(crate) metrics: Option<Arc<Metrics>>,
    /// The threads for file work that may wait on the disk (the syncs of
    /// `fsync_uploads`, the release of a file an upload replaced), started on first use.
    pub(crate) file_pool: OnceLock<Option<WorkerPool>>,
}

impl Shared {
    /// Adds `n` to a counter, when metrics are on.
    #[inline]
    pub(crate) fn count(&self, counter: Counter, n: u64) {
        if let Some(m) = &self.metrics {
            m.add(counter, n);
        }
    }
}

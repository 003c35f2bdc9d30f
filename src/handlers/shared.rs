//! The context every session of a server shares: the options, the authorizer, the
//! callbacks, the command table and the added command bodies, built once by the server and
//! handed to each session behind one `Arc`; and a reload, which makes new ones for the
//! sessions that start after it.

use std::sync::mpsc::SyncSender;
use std::sync::{Arc, OnceLock};

use super::bandwidth::Bandwidth;
use super::pool::WorkerPool;
use super::{CommandBody, VirtualHosts};
use crate::authorizers::Authorizer;
use crate::bans::Bans;
use crate::config::HandlerConfig;
use crate::error::Error;
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
    pub(crate) workers: Option<Arc<WorkerPool>>,
    /// The control channel's character set, from `config.encoding`.
    pub(crate) charset: Charset,
    /// The checksum thread, started by the first HASH (None if it could not start).
    pub(crate) hash_pool: OnceLock<Option<WorkerPool>>,
    /// Failed logins and bans, shared by every loop and process (`config.ban`).
    pub(crate) bans: Option<Arc<Bans>>,
    /// The shared bandwidth caps (per user, per server), shared by every loop and process.
    pub(crate) bandwidth: Arc<Bandwidth>,
    /// The virtual hosts (RFC 7151), by name; empty without.
    pub(crate) hosts: VirtualHosts,
    /// The server's counters, when it serves metrics (shared by every loop, thread and
    /// forked process of the server).
    pub(crate) metrics: Option<Arc<Metrics>>,
    /// The threads for file work that may wait on the disk (the syncs of
    /// `fsync_uploads`, the release of a file an upload replaced), started on first use.
    pub(crate) file_pool: OnceLock<Option<WorkerPool>>,
    /// The threads for the calls of a filesystem that blocks, started on first use.
    pub(crate) fs_pool: OnceLock<Option<WorkerPool>>,
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

/// New settings for the sessions a running server starts from now on: the options, the
/// authorizer, or both. What is not set stays as it is.
#[derive(Clone, Default)]
pub struct Reload {
    pub(crate) handler: Option<HandlerConfig>,
    pub(crate) authorizer: Option<Arc<dyn Authorizer>>,
}

/// A reload on its way to an acceptor; `done` hears when it applies; `warn` says whether
/// this acceptor logs what cannot change.
pub(crate) struct ReloadOrder {
    pub(crate) reload: Reload,
    pub(crate) done: Option<SyncSender<()>>,
    pub(crate) warn: bool,
}

impl Reload {
    /// No change yet.
    pub fn new() -> Reload {
        Reload::default()
    }

    /// New handler options (timeouts, banner, passive ports, FTPS certificate, …).
    pub fn handler_config(mut self, config: HandlerConfig) -> Reload {
        self.handler = Some(config);
        self
    }

    /// A new authorizer: who may log in, with which password, home and rights.
    pub fn authorizer(mut self, authorizer: impl Authorizer + 'static) -> Reload {
        self.authorizer = Some(Arc::new(authorizer));
        self
    }

    /// Keeps what cannot change in a running server as it is in `old`, with a warning
    /// when `warn` (once per server, not once per loop or worker); and checks the
    /// encoding.
    pub(crate) fn settle(mut self, old: &HandlerConfig, warn: bool) -> Result<Reload, Error> {
        let Some(new) = &mut self.handler else {
            return Ok(self);
        };
        if new.auth_workers != old.auth_workers {
            if warn {
                log::warn!(
                    "reload: auth-workers {} needs a restart; keeping {}",
                    new.auth_workers,
                    old.auth_workers
                );
            }
            new.auth_workers = old.auth_workers;
        }
        if new.tls.is_some() != old.tls.is_some() {
            if warn {
                log::warn!(
                    "reload: turning FTPS {} needs a restart; keeping it {}",
                    if new.tls.is_some() { "on" } else { "off" },
                    if old.tls.is_some() { "on" } else { "off" },
                );
            }
            new.tls.clone_from(&old.tls);
        }
        Charset::from_name(&new.encoding).map_err(|e| Error::Config(e.to_string()))?;
        Ok(self)
    }
}

impl std::fmt::Debug for Reload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reload")
            .field("handler", &self.handler)
            .field("authorizer", &self.authorizer.as_ref().map(|_| "…"))
            .finish()
    }
}

impl std::fmt::Debug for ReloadOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadOrder")
            .field("reload", &self.reload)
            .finish()
    }
}

impl Shared {
    /// These settings with `reload`'s changes: the same callbacks, commands and
    /// authorizer threads; a checksum thread of its own, started by the first HASH (the
    /// old one ends with the last session that uses the old settings).
    pub(crate) fn reloaded(&self, reload: &Reload) -> Result<Shared, Error> {
        let mut config = reload
            .handler
            .clone()
            .unwrap_or_else(|| self.config.clone());
        if config.ban != self.config.ban {
            // One ban table was made for the server's life, before any fork.
            log::warn!("reload: the ban settings need a restart; keeping the old ones");
            config.ban.clone_from(&self.config.ban);
        }
        if !self.hosts.is_empty() {
            // The virtual hosts' certificates, picked by SNI, over the new certificate.
            config.tls = config.tls.as_ref().map(|tls| self.hosts.tls_config(tls));
        }
        let charset =
            Charset::from_name(&config.encoding).map_err(|e| Error::Config(e.to_string()))?;
        let mut commands = self.commands.clone();
        site_misc_rows(&mut commands, &config);
        Ok(Shared {
            commands,
            config,
            authorizer: reload
                .authorizer
                .clone()
                .unwrap_or_else(|| Arc::clone(&self.authorizer)),
            events: Arc::clone(&self.events),
            custom: self.custom.clone(),
            features: self.features.clone(),
            workers: self.workers.clone(),
            charset,
            hash_pool: OnceLock::new(),
            bans: self.bans.clone(),
            bandwidth: Arc::clone(&self.bandwidth),
            hosts: self.hosts.clone(),
            metrics: self.metrics.clone(),
            file_pool: OnceLock::new(),
            fs_pool: OnceLock::new(),
        })
    }
}

/// Adds the rows of `SITE UTIME` and `SITE SYMLINK` when `config` turns them on, and
/// removes them when it turns them off (a reload may do either). A command of the same
/// name the embedding program registered is left as it is.
pub(crate) fn site_misc_rows(commands: &mut CommandTable, config: &HandlerConfig) {
    for (spec, on) in [
        (&crate::proto::SITE_UTIME_COMMAND, config.site_utime),
        (&crate::proto::SITE_SYMLINK_COMMAND, config.site_symlink),
    ] {
        let ours = commands
            .lookup(&spec.name)
            .map(|row| row.action == spec.action);
        match (on, ours) {
            (true, None) => commands.add(spec.clone()),
            (false, Some(true)) => commands.remove(&spec.name),
            (true, Some(_)) | (false, Some(false) | None) => {}
        }
    }
}

impl Shared {
    /// The file threads ([`Shared::file_pool`]), started by the first
    /// use: a few, so that the syncs of several uploads wait for the disk together.
    pub(crate) fn file_workers(&self) -> Option<&WorkerPool> {
        self.file_pool
            .get_or_init(|| WorkerPool::new(super::pool::FILE_WORKERS).ok())
            .as_ref()
    }

    /// The filesystem threads ([`Shared::fs_pool`]), started by the first call of a
    /// filesystem that blocks.
    pub(crate) fn fs_workers(&self) -> Option<&WorkerPool> {
        self.fs_pool
            .get_or_init(|| WorkerPool::new(super::pool::FS_WORKERS).ok())
            .as_ref()
    }

    /// Drops `file` on a file thread: when it holds the last reference to a file that
    /// an upload replaced, closing it frees the old file's blocks, which for a large file
    /// takes long enough to stall every session of the loop. On the loop's thread only
    /// if no thread can be had.
    pub(crate) fn release_file(&self, file: crate::filesystems::FsFile) {
        match self.file_workers() {
            Some(pool) => {
                // When the workers are gone, `run` drops the job, and the file, here.
                let _ = pool.run(move || drop(file));
            }
            None => drop(file),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_running_server_cannot_change_keeps_its_value() {
        let old = HandlerConfig::default();
        let new = HandlerConfig {
            auth_workers: old.auth_workers + 4,
            banner: "new banner".into(),
            ..HandlerConfig::default()
        };
        let settled = Reload::new()
            .handler_config(new)
            .settle(&old, false)
            .expect("settles");
        let config = settled.handler.expect("a handler config");
        assert_eq!(config.auth_workers, old.auth_workers);
        assert_eq!(config.banner, "new banner");
    }

    #[test]
    fn an_unknown_encoding_is_refused_whole() {
        let new = HandlerConfig {
            encoding: "no-such-encoding".into(),
            ..HandlerConfig::default()
        };
        let settled = Reload::new()
            .handler_config(new)
            .settle(&HandlerConfig::default(), false);
        assert!(matches!(settled, Err(Error::Config(_))));
    }

    #[test]
    fn nothing_to_change_is_no_change() {
        let settled = Reload::new()
            .settle(&HandlerConfig::default(), true)
            .expect("settles");
        assert!(settled.handler.is_none() && settled.authorizer.is_none());
    }
}

//! [`ServerBuilder`]: who may log in, the options, the commands, and the one loop with its
//! acceptor that every concurrency model is made of.

use std::sync::Arc;

use ioloop::IoLoop;

use super::acceptor::ServerAcceptor;
use super::reload::ReloadHook;
use super::server::FtpServer;
use crate::authorizers::Authorizer;
use crate::bans::Bans;
use crate::config::{HandlerConfig, ServerConfig};
use crate::error::Error;
use crate::events::{Events, NoEvents};
use crate::handlers::bandwidth::Bandwidth;
use crate::handlers::pool::WorkerPool;
use crate::handlers::shared::Shared;
use crate::handlers::{CommandBody, CommandContext};
use crate::handlers::{VirtualHost, VirtualHosts};
use crate::limits::SharedLimits;
use crate::metrics::Metrics;
use crate::proto::{Action, Charset, CommandSpec, CommandTable, Reply};

/// Builds an [`FtpServer`]: where to listen, who may log in, and the options.
#[derive(Clone)]
pub struct ServerBuilder {
    pub(super) authorizer: Arc<dyn Authorizer>,
    pub(super) events: Arc<dyn Events>,
    pub(super) handler: HandlerConfig,
    pub(super) server: ServerConfig,
    pub(super) commands: CommandTable,
    pub(super) custom: Vec<CommandBody>,
    pub(super) features: Vec<String>,
    /// Set for one loop of several accepting on the same port: the shared counts and
    /// this loop's owner number in them.
    pub(super) limits: Option<(Arc<SharedLimits>, usize)>,
    /// The ban table, made once by [`ServerBuilder::listener`] before any loop, thread
    /// or process starts, so that all of them share it.
    pub(super) bans: Option<Arc<Bans>>,
    /// The shared bandwidth caps, made once by [`ServerBuilder::listeners`] before any
    /// loop, thread or process starts.
    pub(super) bandwidth: Option<Arc<Bandwidth>>,
    pub(super) virtual_hosts: Vec<VirtualHost>,
    /// The counters, made once when the server is built with metrics on, before any
    /// loop, thread or process exists, so that all of them add to the same ones.
    pub(super) metrics: Option<Arc<Metrics>>,
    /// What reads the settings again on SIGHUP ([`ServerBuilder::on_reload`]).
    pub(super) reload_hook: Option<ReloadHook>,
}

impl FtpServer {
    /// Starts building a server whose users come from `authorizer`.
    pub fn builder(authorizer: impl Authorizer + 'static) -> ServerBuilder {
        ServerBuilder {
            authorizer: Arc::new(authorizer),
            events: Arc::new(NoEvents),
            handler: HandlerConfig::default(),
            server: ServerConfig::default(),
            commands: CommandTable::builtin(),
            custom: Vec::new(),
            features: Vec::new(),
            limits: None,
            bans: None,
            bandwidth: None,
            virtual_hosts: Vec::new(),
            metrics: None,
            reload_hook: None,
        }
    }
}

impl ServerBuilder {
    /// Sets the handler options.
    pub fn handler_config(mut self, config: HandlerConfig) -> Self {
        self.handler = config;
        self
    }

    /// Changes the handler options in place.
    pub fn configure(mut self, f: impl FnOnce(&mut HandlerConfig)) -> Self {
        f(&mut self.handler);
        self
    }

    /// Sets the server options (limits, backlog).
    pub fn server_config(mut self, config: ServerConfig) -> Self {
        self.server = config;
        self
    }

    /// Sets the callbacks.
    pub fn events(mut self, events: impl Events + 'static) -> Self {
        self.events = Arc::new(events);
        self
    }

    /// Replaces the command table (to add or remove commands).
    pub fn commands(mut self, table: CommandTable) -> Self {
        self.commands = table;
        self
    }

    /// Adds a command (or a `SITE` subcommand, named e.g. `"SITE RMTREE"`): its spec goes
    /// into the command table (so the gate checks its login rule, arity and permission
    /// letter, and HELP lists it), its body runs when a client sends it.
    pub fn command(
        mut self,
        spec: CommandSpec,
        body: impl Fn(&mut CommandContext<'_>, &str) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let index = self.custom.len();
        self.custom.push(Arc::new(body));
        self.commands.add(spec.action(Action::Custom(index)));
        self
    }

    /// Turns FTPS on (pyftpdlib's TLS_FTPHandler): AUTH / PBSZ / PROT, TLS on the control
    /// and data connections; implicit TLS if [`TlsConfig::implicit`] is set. The same as
    /// setting [`HandlerConfig::tls`].
    ///
    /// [`TlsConfig::implicit`]: crate::config::TlsConfig::implicit
    pub fn tls(mut self, tls: crate::config::TlsConfig) -> Self {
        self.handler.tls = Some(tls);
        self
    }

    /// Tells systemd how the server is doing when it runs as a `Type=notify` service
    /// (`NOTIFY_SOCKET` set; otherwise this does nothing): `READY=1` once
    /// [`FtpServer::serve_forever`] serves, `STATUS=` with the number of sessions (at most
    /// once a second, when it changes), `WATCHDOG=1` at half `WATCHDOG_USEC` from a timer
    /// of the loop, and `STOPPING=1` when a signal starts the stop. Off by default: a
    /// program that embeds the server may send its own. See [`crate::systemd`].
    pub fn notify_systemd(mut self, on: bool) -> Self {
        self.server.notify_systemd = on;
        self
    }

    /// Restarts that drop nobody: on SIGUSR2, [`FtpServer::serve_forever`] (with
    /// `handle_exit`) starts a new copy of this program (the executable it was started
    /// from, with the same arguments and environment) and hands it the listening sockets
    /// as inherited descriptors, as systemd's socket activation does (`LISTEN_FDS`, see
    /// [`crate::systemd::activated_listeners`]). Once the new process says it serves
    /// (`READY=1` on a socket this process gives it as `NOTIFY_SOCKET`, within 10 s), this
    /// one stops accepting without closing the shared socket, lets its sessions end (a
    /// graceful stop after a grace period of a few seconds; transfers finish) and
    /// returns. If the new process exits or stays silent, it is stopped and this one
    /// goes on serving; the reason is logged. Under systemd, `MAINPID=` tells it the
    /// new main process. Off by default (SIGUSR2 then keeps its default action); the
    /// `ftpdlib` binary turns it on. The handler is installed before the port is bound
    /// ([`ServerBuilder::bind`], [`ServerBuilder::listeners`]), so that a SIGUSR2 sent as
    /// soon as it accepts cannot end the process; one sent after the server is built
    /// starts the hand-over once `serve_forever` runs. The new process must take the inherited sockets
    /// (`activated_listeners` and [`ServerBuilder::listeners`]) and send `READY=1`
    /// ([`ServerBuilder::notify_systemd`], or this option, which implies it for the
    /// old process's socket).
    pub fn hand_over_on_sigusr2(mut self, on: bool) -> Self {
        self.server.hand_over = on;
        self
    }

    /// Adds a line to the FEAT reply (e.g. for a custom command that is an extension).
    pub fn feature(mut self, line: impl Into<String>) -> Self {
        self.features.push(line.into());
        self
    }

    /// What every session shares. Forking models start their worker threads in the
    /// processes that use them, never before a fork.
    /// Adds a virtual host (RFC 7151): its users, banner and certificate serve the
    /// clients that name it with `HOST` before `USER`, or with the name they send in the
    /// TLS handshake (SNI). The server's own users serve everyone else. With a virtual
    /// host, `HOST` is in the command table and FEAT lists it.
    pub fn virtual_host(mut self, host: VirtualHost) -> Self {
        self.virtual_hosts.retain(|h| h.name() != host.name());
        self.virtual_hosts.push(host);
        self
    }

    pub(super) fn shared(&self, with_workers: bool) -> Result<Arc<Shared>, Error> {
        let mut commands = self.commands.clone();
        if self.handler.tls.is_some() {
            // pyftpdlib's TLS_FTPHandler adds AUTH, PBSZ and PROT to its proto_cmds.
            for spec in crate::proto::TLS_COMMANDS {
                if commands.lookup(&spec.name).is_none() {
                    commands.add(spec.clone());
                }
            }
        }
        let workers = match self.handler.auth_workers {
            0 => None,
            _ if !with_workers => None,
            n => Some(Arc::new(
                WorkerPool::new(n).map_err(|e| Error::io("starting worker threads", e))?,
            )),
        };
        let charset =
            Charset::from_name(&self.handler.encoding).map_err(|e| Error::Config(e.to_string()))?;
        let hosts = VirtualHosts::new(&self.virtual_hosts);
        let mut config = self.handler.clone();
        if !hosts.is_empty() {
            if commands.lookup("HOST").is_none() {
                commands.add(crate::proto::HOST_COMMAND.clone());
            }
            config.tls = config.tls.as_ref().map(|tls| hosts.tls_config(tls));
        }
        crate::handlers::shared::site_misc_rows(&mut commands, &config);
        Ok(Arc::new(Shared {
            workers,
            charset,
            hosts,
            config,
            authorizer: Arc::clone(&self.authorizer),
            events: Arc::clone(&self.events),
            commands,
            custom: self.custom.clone(),
            features: self.features.clone(),
            hash_pool: std::sync::OnceLock::new(),
            bans: self.bans.clone(),
            bandwidth: match &self.bandwidth {
                Some(b) => Arc::clone(b),
                None => Arc::new(
                    Bandwidth::new().map_err(|e| Error::io("mapping the bandwidth caps", e))?,
                ),
            },
            metrics: self.metrics.clone(),
            file_pool: std::sync::OnceLock::new(),
            fs_pool: std::sync::OnceLock::new(),
        }))
    }

    /// One loop with the listening acceptor (async, multi-thread and multi-proc, and
    /// each loop of the multi-loop and pre-fork models).
    pub(super) fn single_loop(self, listener: std::net::TcpListener) -> Result<FtpServer, Error> {
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the listen address", e))?;
        // Accepted sockets inherit these from the listener (Linux copies the socket
        // options on accept), which saves two system calls per session: TCP_NODELAY for
        // the control channel's short replies, SO_OOBINLINE so that the urgent byte
        // clients send before ABOR arrives inline instead of blocking the read.
        let sock = socket2::SockRef::from(&listener);
        sock.set_tcp_nodelay(self.handler.tcp_no_delay)
            .and_then(|()| sock.set_out_of_band_inline(true))
            .map_err(|e| Error::io("configuring the listener", e))?;
        let listen_fds = vec![std::os::fd::AsRawFd::as_raw_fd(&listener)];
        let model = self.server.concurrency;
        let shared = self.shared(!model.forks())?;
        let mut ioloop = IoLoop::new().map_err(|e| Error::io("creating the poller", e))?;
        crate::metrics::observe_loop(&mut ioloop, shared.metrics.as_ref());
        let acceptor = ServerAcceptor::new(
            listener,
            Arc::clone(&shared),
            self.server.clone(),
            self.limits,
            model,
        );
        let acceptor = ioloop
            .spawn(Box::new(acceptor))
            .map_err(|e| Error::io("registering the listener", e))?;
        Ok(FtpServer {
            acceptor,
            ioloop,
            local_addr,
            shared,
            server: self.server,
            siblings: Vec::new(),
            listen_fds,
            metrics: None,
            reload_hook: self.reload_hook,
            signals_at_build: super::server::SignalCounts::now(),
        })
    }
}

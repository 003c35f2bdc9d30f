//! The server: the listening acceptor (pyftpdlib's FTPServer), the session limits, and
//! the loop that serves everything on one thread.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use ioloop::mio::net::{TcpListener, TcpStream};
use ioloop::{Acceptor, Ctx, Handler, Interest, IoLoop, LoopHandle, Ready, TimerId};
use socket2::{Domain, Protocol, Socket, Type};

use crate::authorizers::Authorizer;
use crate::config::{HandlerConfig, ServerConfig};
use crate::error::Error;
use crate::events::{Events, NoEvents};
use crate::handlers::{CommandBody, CommandContext, FtpHandler, Msg, ServerEvent};
use crate::proto::{CommandSpec, CommandTable, Reply};

/// What every session of a server shares, behind one pointer.
pub(crate) struct Shared {
    pub(crate) config: HandlerConfig,
    pub(crate) authorizer: Arc<dyn Authorizer>,
    pub(crate) events: Arc<dyn Events>,
    pub(crate) commands: CommandTable,
    /// Bodies of the commands the embedding program added, by name.
    pub(crate) custom: HashMap<String, CommandBody>,
    /// Extra FEAT lines.
    pub(crate) features: Vec<String>,
}

/// Builds an [`FtpServer`]: where to listen, who may log in, and the options.
pub struct ServerBuilder {
    authorizer: Arc<dyn Authorizer>,
    events: Arc<dyn Events>,
    handler: HandlerConfig,
    server: ServerConfig,
    commands: CommandTable,
    custom: HashMap<String, CommandBody>,
    features: Vec<String>,
}

/// An FTP server: a listener and the event loop that serves its sessions.
pub struct FtpServer {
    ioloop: IoLoop<Msg>,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    server: ServerConfig,
}

/// Stops a running server from any thread.
#[derive(Clone)]
pub struct ServerHandle {
    handle: LoopHandle<Msg>,
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
            custom: HashMap::new(),
            features: Vec::new(),
        }
    }

    /// The address the server listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle to stop the server from another thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            handle: self.ioloop.handle(),
        }
    }

    /// Serves until stopped through a [`ServerHandle`] or, with `handle_exit`, until SIGINT
    /// or SIGTERM; then closes every session. Logs pyftpdlib's start-up and shut-down lines.
    ///
    /// # Errors
    /// When polling fails.
    pub fn serve_forever(&mut self, handle_exit: bool) -> Result<(), Error> {
        self.log_startup();
        if handle_exit {
            crate::sys::install_exit_signals();
        }
        while !self.ioloop.is_empty() {
            if handle_exit && crate::sys::exit_signal_received() {
                log::info!("received interrupt signal");
                break;
            }
            match self.ioloop.run_once(None) {
                Ok(()) => {}
                Err(e) => return Err(Error::io("polling", e)),
            }
        }
        log::info!(
            ">>> shutting down FTP server, pid={}, {} open socket(s) <<<",
            std::process::id(),
            self.ioloop.len()
        );
        self.ioloop.close_all();
        Ok(())
    }

    /// One pass of the loop, waiting at most `timeout` (pyftpdlib's
    /// `serve_forever(blocking=False)`): lets a host program drive the server.
    ///
    /// # Errors
    /// When polling fails.
    pub fn poll_once(&mut self, timeout: Duration) -> Result<(), Error> {
        self.ioloop
            .run_once(Some(timeout))
            .map_err(|e| Error::io("polling", e))
    }

    /// Closes the listener and every session now.
    pub fn close_all(&mut self) {
        self.ioloop.close_all();
    }

    /// The number of live handlers in the loop (listener, sessions, data channels).
    pub fn handler_count(&self) -> usize {
        self.ioloop.len()
    }

    /// The number of timers scheduled in the loop.
    pub fn timer_count(&self) -> usize {
        self.ioloop.timer_count()
    }

    fn log_startup(&self) {
        let cfg = &self.shared.config;
        log::info!("concurrency model: async");
        log::info!(
            "masquerade (NAT) address: {}",
            cfg.masquerade_address
                .map_or_else(|| "None".to_owned(), |a| a.to_string())
        );
        match &cfg.passive_ports {
            Some(r) => log::info!("passive ports: {}->{}", r.start(), r.end()),
            None => log::info!("passive ports: None"),
        }
        log::debug!("poller: 'mio (epoll)'");
        log::debug!("use sendfile(): {}", cfg.use_sendfile);
        log::debug!("max connections: {}", limit_text(self.server.max_cons));
        log::debug!(
            "max connections per ip: {}",
            limit_text(self.server.max_cons_per_ip)
        );
        log::debug!("timeout: {}", cfg.timeout.map_or(0, |t| t.as_secs()));
        log::debug!("banner: '{}'", cfg.banner);
        log::debug!("max login attempts: {}", cfg.max_login_attempts);
        log::info!(
            ">>> starting FTP server on {}, pid={} <<<",
            self.local_addr,
            std::process::id()
        );
    }
}

fn limit_text(n: usize) -> String {
    if n == 0 {
        "unlimited".to_owned()
    } else {
        n.to_string()
    }
}

impl ServerHandle {
    /// Closes the listener and every session; `serve_forever` then returns.
    ///
    /// # Errors
    /// When the loop cannot be woken.
    pub fn stop(&self) -> io::Result<()> {
        self.handle.close_all()
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
        self.custom.insert(spec.name.to_string(), Arc::new(body));
        self.commands.add(spec);
        self
    }

    /// Adds a line to the FEAT reply (e.g. for a custom command that is an extension).
    pub fn feature(mut self, line: impl Into<String>) -> Self {
        self.features.push(line.into());
        self
    }

    /// Binds to `addr` (the first address it resolves to that binds) and builds the server.
    ///
    /// # Errors
    /// When the address does not resolve or no address binds.
    pub fn bind(self, addr: impl ToSocketAddrs) -> Result<FtpServer, Error> {
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| Error::io("resolving the listen address", e))?
            .collect();
        let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to bind");
        for a in addrs {
            match listen(a, self.server.backlog) {
                Ok(l) => return self.listener(l),
                Err(e) => last = e,
            }
        }
        Err(Error::io("binding the listen address", last))
    }

    /// Builds the server on a listener the caller already bound.
    ///
    /// # Errors
    /// When the listener cannot be made non-blocking or registered.
    pub fn listener(self, listener: std::net::TcpListener) -> Result<FtpServer, Error> {
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("configuring the listener", e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the listen address", e))?;
        let shared = Arc::new(Shared {
            config: self.handler,
            authorizer: self.authorizer,
            events: self.events,
            commands: self.commands,
            custom: self.custom,
            features: self.features,
        });
        let mut ioloop = IoLoop::new().map_err(|e| Error::io("creating the poller", e))?;
        let acceptor = ServerAcceptor {
            acceptor: Acceptor::new(TcpListener::from_std(listener), Duration::from_millis(100)),
            shared: Arc::clone(&shared),
            limits: self.server.clone(),
            sessions: 0,
            per_ip: HashMap::new(),
        };
        ioloop
            .spawn(Box::new(acceptor))
            .map_err(|e| Error::io("registering the listener", e))?;
        Ok(FtpServer {
            ioloop,
            local_addr,
            shared,
            server: self.server,
        })
    }
}

/// Creates a listening socket with SO_REUSEADDR, as pyftpdlib does.
pub(crate) fn listen(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// The listening handler: accepts, enforces `max_cons` / `max_cons_per_ip` exactly (it
/// counts sessions, not sockets), and spawns a session per client.
struct ServerAcceptor {
    acceptor: Acceptor,
    shared: Arc<Shared>,
    limits: ServerConfig,
    sessions: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl ServerAcceptor {
    fn accept_one(&mut self, cx: &mut Ctx<'_, Msg>, stream: TcpStream, addr: SocketAddr) {
        let ip = addr.ip().to_canonical();
        if self.limits.max_cons > 0 && self.sessions >= self.limits.max_cons {
            refuse(
                stream,
                "421 Too many connections. Service temporarily unavailable.\r\n",
            );
            log::warn!("{addr} refused: too many connections");
            return;
        }
        let from_ip = self.per_ip.get(&ip).copied().unwrap_or(0);
        if self.limits.max_cons_per_ip > 0 && from_ip >= self.limits.max_cons_per_ip {
            refuse(
                stream,
                "421 Too many connections from the same IP address.\r\n",
            );
            log::warn!("{addr} refused: too many connections from the same IP address");
            return;
        }
        let server = cx.me();
        match FtpHandler::new(stream, addr, server, Arc::clone(&self.shared)) {
            Ok(handler) => match cx.spawn(Box::new(handler)) {
                Ok(_) => {
                    self.sessions += 1;
                    *self.per_ip.entry(ip).or_insert(0) += 1;
                }
                Err(e) => log::error!("{addr}: cannot register the session: {e}"),
            },
            Err(e) => log::debug!("{addr}: session setup failed: {e}"),
        }
    }
}

/// Best effort: tell a refused client why, without blocking, then drop it.
fn refuse(mut stream: TcpStream, reply: &str) {
    let _ = stream.write(reply.as_bytes());
}

impl Handler<Msg> for ServerAcceptor {
    fn source(&mut self) -> Option<&mut dyn ioloop::mio::event::Source> {
        Some(self.acceptor.listener_mut())
    }

    fn interest(&self) -> Option<Interest> {
        self.acceptor.interest()
    }

    fn on_ready(&mut self, cx: &mut Ctx<'_, Msg>, _ready: Ready) {
        let mut accepted = Vec::new();
        self.acceptor
            .accept_ready(cx, |_, stream, addr| accepted.push((stream, addr)));
        for (stream, addr) in accepted {
            self.accept_one(cx, stream, addr);
        }
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_, Msg>, timer: TimerId) {
        self.acceptor.on_timer(cx, timer);
    }

    fn on_message(&mut self, _cx: &mut Ctx<'_, Msg>, msg: Msg) {
        if let Msg::ToServer(ServerEvent::SessionClosed(ip)) = msg {
            self.sessions = self.sessions.saturating_sub(1);
            let ip = ip.to_canonical();
            if let Some(n) = self.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_ip.remove(&ip);
                }
            }
        }
    }
}

/// Raises this process's soft limit on open files to the hard limit (each session holds
/// one descriptor, two during a transfer). Returns the new limit.
///
/// # Errors
/// When the limit cannot be read or set.
pub fn raise_open_files_limit() -> io::Result<u64> {
    crate::sys::raise_nofile_limit()
}

//! The server: the listening acceptor (pyftpdlib's FTPServer), the session limits, and
//! the loop that serves everything on one thread.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use ioloop::mio::net::{TcpListener, TcpStream};
use ioloop::{Acceptor, Ctx, Handle, Handler, Interest, IoLoop, LoopHandle, Ready, TimerId};
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};

use crate::authorizers::Authorizer;
use crate::config::{Concurrency, HandlerConfig, ServerConfig};
use crate::error::Error;
use crate::events::{Events, NoEvents};
use crate::handlers::pool::WorkerPool;
use crate::handlers::{
    CommandBody, CommandContext, FtpHandler, Msg, ServerEvent, ServerLink, SessionCmd,
};
use crate::limits::{Refusal, SharedLimits};
use crate::log::log_prefix;

mod forking;
use crate::proto::{Action, Charset, CommandSpec, CommandTable, Reply};

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
}

/// Builds an [`FtpServer`]: where to listen, who may log in, and the options.
#[derive(Clone)]
pub struct ServerBuilder {
    authorizer: Arc<dyn Authorizer>,
    events: Arc<dyn Events>,
    handler: HandlerConfig,
    server: ServerConfig,
    commands: CommandTable,
    custom: Vec<CommandBody>,
    features: Vec<String>,
    /// Set for one loop of several accepting on the same port: the shared counts and
    /// this loop's owner number in them.
    limits: Option<(Arc<SharedLimits>, usize)>,
}

/// An FTP server: a listener and the event loop that serves its sessions.
pub struct FtpServer {
    ioloop: IoLoop<Msg>,
    acceptor: Handle,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    server: ServerConfig,
    /// The other loops of the multi-loop model, each on its own thread.
    siblings: Vec<Sibling>,
}

/// A loop of the multi-loop model running on a thread of its own.
struct Sibling {
    handle: LoopHandle<Msg>,
    acceptor: Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Stops a running server from any thread.
#[derive(Clone)]
pub struct ServerHandle {
    handle: LoopHandle<Msg>,
    acceptor: Handle,
    /// The other loops' (multi-loop model) handles and acceptors.
    siblings: Arc<[(LoopHandle<Msg>, Handle)]>,
}

/// A server running on a thread of its own ([`ServerBuilder::spawn`]). Dropping it closes
/// every session and joins the thread.
pub struct RunningServer {
    local_addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<Result<(), Error>>>,
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
            acceptor: self.acceptor,
            siblings: self
                .siblings
                .iter()
                .map(|s| (s.handle.clone(), s.acceptor))
                .collect(),
        }
    }

    /// Serves until stopped through a [`ServerHandle`] or, with `handle_exit`, by signals:
    /// the first SIGINT / SIGTERM stops gracefully (no new sessions, idle ones end, running
    /// transfers finish), a second one closes everything at once. Logs pyftpdlib's
    /// start-up and shut-down lines.
    ///
    /// # Errors
    /// When polling fails.
    pub fn serve_forever(&mut self, handle_exit: bool) -> Result<(), Error> {
        self.log_startup();
        if handle_exit {
            crate::sys::install_exit_signals();
        }
        let mut signals_seen = 0;
        while !self.ioloop.is_empty() {
            if handle_exit {
                let signals = crate::sys::exit_signals_received();
                if signals > signals_seen {
                    signals_seen = signals;
                    log::info!("received interrupt signal");
                    if signals == 1 {
                        self.ioloop
                            .send(self.acceptor, Msg::ToServer(ServerEvent::Shutdown));
                        for s in &self.siblings {
                            let _ = s
                                .handle
                                .send(s.acceptor, Msg::ToServer(ServerEvent::Shutdown));
                        }
                    } else {
                        break;
                    }
                }
            }
            let wait = handle_exit.then_some(SIGNAL_CHECK);
            match self.ioloop.run_once(wait) {
                Ok(()) => {}
                Err(e) => return Err(Error::io("polling", e)),
            }
        }
        let open = self.ioloop.len();
        let immediate = !self.ioloop.is_empty();
        self.ioloop.close_all();
        // The sibling loops end with their last session; a second signal closes them.
        let mut closed_siblings = false;
        while self
            .siblings
            .iter()
            .any(|s| s.thread.as_ref().is_some_and(|t| !t.is_finished()))
        {
            let insisted = handle_exit && crate::sys::exit_signals_received() >= 2;
            if (immediate || insisted) && !closed_siblings {
                closed_siblings = true;
                for s in &self.siblings {
                    let _ = s.handle.close_all();
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for s in &mut self.siblings {
            if let Some(t) = s.thread.take() {
                let _ = t.join();
            }
        }
        log::info!(
            ">>> shutting down FTP server, pid={}, {} open socket(s) <<<",
            std::process::id(),
            open
        );
        Ok(())
    }

    /// Runs the loop until it is empty, with no signal handling and no log lines: a
    /// sibling loop of the multi-loop model, or a pre-fork worker.
    fn run_quietly(&mut self) -> io::Result<()> {
        while !self.ioloop.is_empty() {
            self.ioloop.run_once(None)?;
        }
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
        for s in &self.siblings {
            let _ = s.handle.close_all();
        }
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
        log::info!("concurrency model: {}", self.server.concurrency.name());
        if matches!(
            self.server.concurrency,
            Concurrency::PreFork | Concurrency::MultiLoop
        ) {
            log::info!("workers: {}", worker_count(&self.server));
        }
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
        if let Some(tls) = &cfg.tls {
            log::debug!(
                "TLS: {}, control required: {}, data required: {}, session reuse required: {}",
                if tls.implicit {
                    "implicit"
                } else {
                    "explicit (AUTH TLS)"
                },
                tls.control_required,
                tls.data_required,
                tls.require_session_reuse
            );
        }
        let proto = if cfg.tls.is_some() {
            "FTPS (FTP over SSL)"
        } else {
            "FTP"
        };
        log::info!(
            ">>> starting {proto} server on {}, pid={} <<<",
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
    /// Closes the listener and every session at once; `serve_forever` then returns.
    /// Transfers in progress are cut (reported as incomplete).
    ///
    /// # Errors
    /// When the loop cannot be woken.
    pub fn stop(&self) -> io::Result<()> {
        for (handle, _) in self.siblings.iter() {
            let _ = handle.close_all();
        }
        self.handle.close_all()
    }

    /// Stops gracefully: the listener closes, idle sessions get `421 Server shutting
    /// down.`, sessions with a transfer end after it; `serve_forever` returns when the
    /// last one is gone.
    ///
    /// # Errors
    /// When the loop cannot be woken.
    pub fn shutdown(&self) -> io::Result<()> {
        for (handle, acceptor) in self.siblings.iter() {
            let _ = handle.send(*acceptor, Msg::ToServer(ServerEvent::Shutdown));
        }
        self.handle
            .send(self.acceptor, Msg::ToServer(ServerEvent::Shutdown))
    }
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle to stop it from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Stops gracefully (see [`ServerHandle::shutdown`]); sessions still alive after
    /// `deadline` are closed. Returns once the server thread has ended.
    ///
    /// # Errors
    /// The server thread's error, if it failed.
    pub fn stop(mut self, deadline: Duration) -> Result<(), Error> {
        let _ = self.handle.shutdown();
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let until = std::time::Instant::now() + deadline;
        while !thread.is_finished() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        if !thread.is_finished() {
            let _ = self.handle.stop();
        }
        join(thread)
    }

    /// Closes every session now and waits for the server thread.
    ///
    /// # Errors
    /// The server thread's error, if it failed.
    pub fn close_all(mut self) -> Result<(), Error> {
        let _ = self.handle.stop();
        match self.thread.take() {
            Some(t) => join(t),
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.handle.stop();
            let _ = join(t);
        }
    }
}

fn join(t: std::thread::JoinHandle<Result<(), Error>>) -> Result<(), Error> {
    t.join()
        .unwrap_or_else(|_| Err(Error::Config("the server thread panicked".into())))
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
        let listener = bind_listener(addr, &self.server)?;
        self.listener(listener)
    }

    /// Binds to `addr` and runs the server on a new thread; the returned
    /// [`RunningServer`] stops it (gracefully or not) and stops it when dropped.
    ///
    /// # Errors
    /// When binding fails or the server cannot start, and for the forking models
    /// (multi-proc, pre-fork), which must not fork a process that runs other threads.
    pub fn spawn(self, addr: impl ToSocketAddrs) -> Result<RunningServer, Error> {
        if self.server.concurrency.forks() {
            return Err(Error::Config(format!(
                "the {} model forks the process: run it with serve_forever on the main thread",
                self.server.concurrency.name()
            )));
        }
        let listener = bind_listener(addr, &self.server)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("ftp-server".into())
            .spawn(move || {
                // The loop and its handlers live and die on this thread.
                let mut server = match self.listener(listener) {
                    Ok(s) => s,
                    Err(e) => {
                        let msg = e.to_string();
                        let _ = tx.send(Err(e));
                        return Err(Error::Config(msg));
                    }
                };
                let _ = tx.send(Ok((server.local_addr(), server.handle())));
                server.serve_forever(false)
            })
            .map_err(|e| Error::io("starting the server thread", e))?;
        match rx.recv() {
            Ok(Ok((local_addr, handle))) => Ok(RunningServer {
                local_addr,
                handle,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(join(thread)
                .err()
                .unwrap_or_else(|| Error::Config("the server thread ended".into()))),
        }
    }

    /// Builds the server on a listener the caller already bound. For the multi-loop
    /// model the other loops get listeners of their own on the same address when the
    /// given one has `SO_REUSEPORT` (as [`ServerBuilder::bind`] sets), else they share
    /// it.
    ///
    /// # Errors
    /// When the listener cannot be made non-blocking or registered.
    pub fn listener(self, listener: std::net::TcpListener) -> Result<FtpServer, Error> {
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("configuring the listener", e))?;
        match self.server.concurrency {
            Concurrency::PreFork => forking::pre_fork_server(self, listener),
            Concurrency::MultiLoop => self.multi_loop(listener),
            Concurrency::Async | Concurrency::MultiThread | Concurrency::MultiProc => {
                self.single_loop(listener)
            }
        }
    }

    /// What every session shares. Forking models start their worker threads in the
    /// processes that use them, never before a fork.
    fn shared(&self, with_workers: bool) -> Result<Arc<Shared>, Error> {
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
            n => Some(WorkerPool::new(n).map_err(|e| Error::io("starting worker threads", e))?),
        };
        let charset = Charset::from_name(&self.handler.encoding).ok_or_else(|| {
            Error::Config(format!(
                "encoding {:?} is not supported (use utf-8 or latin-1)",
                self.handler.encoding
            ))
        })?;
        Ok(Arc::new(Shared {
            workers,
            charset,
            config: self.handler.clone(),
            authorizer: Arc::clone(&self.authorizer),
            events: Arc::clone(&self.events),
            commands,
            custom: self.custom.clone(),
            features: self.features.clone(),
        }))
    }

    /// One loop with the listening acceptor (async, multi-thread and multi-proc, and
    /// each loop of the multi-loop and pre-fork models).
    fn single_loop(self, listener: std::net::TcpListener) -> Result<FtpServer, Error> {
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
        let model = self.server.concurrency;
        let shared = self.shared(!model.forks())?;
        let mut ioloop = IoLoop::new().map_err(|e| Error::io("creating the poller", e))?;
        let acceptor = ServerAcceptor {
            acceptor: Acceptor::new(TcpListener::from_std(listener), Duration::from_millis(100)),
            shared: Arc::clone(&shared),
            limits: self.server.clone(),
            shared_limits: self.limits,
            model,
            sessions: Slab::new(),
            per_ip: HashMap::new(),
            stopping: false,
        };
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
        })
    }

    /// The multi-loop model: `workers` loops, this one plus one per extra thread, each
    /// accepting on its own `SO_REUSEPORT` listener and counting sessions in one shared
    /// table.
    fn multi_loop(mut self, listener: std::net::TcpListener) -> Result<FtpServer, Error> {
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the listen address", e))?;
        let loops = worker_count(&self.server);
        let limits = Arc::new(
            SharedLimits::new(loops, self.server.max_cons, self.server.max_cons_per_ip)
                .map_err(|e| Error::io("mapping the session counters", e))?,
        );
        let config = self.server.clone();
        self.server.concurrency = Concurrency::Async;
        let mut siblings = Vec::with_capacity(loops.saturating_sub(1));
        for owner in 1..loops {
            let own = match listen_with(local_addr, self.server.backlog, ReusePort::Join) {
                Ok(l) => l,
                // The caller's listener has no SO_REUSEPORT: share it instead.
                Err(_) => listener
                    .try_clone()
                    .map_err(|e| Error::io("sharing the listener", e))?,
            };
            let mut builder = self.clone();
            builder.limits = Some((Arc::clone(&limits), owner));
            siblings.push(spawn_sibling(builder, own, owner)?);
        }
        self.limits = Some((limits, 0));
        let mut server = self.single_loop(listener)?;
        server.server = config;
        server.siblings = siblings;
        Ok(server)
    }
}

/// How long a loop that watches for exit signals sleeps at most: a signal that lands
/// between the check and epoll_wait is seen within this time.
const SIGNAL_CHECK: Duration = Duration::from_secs(1);

/// Runs `lp` until it is empty, watching SIGINT / SIGTERM: the first calls `on_first`
/// (a graceful stop), a second closes everything.
fn run_with_signals(
    lp: &mut IoLoop<Msg>,
    mut on_first: impl FnMut(&mut IoLoop<Msg>),
) -> io::Result<()> {
    let mut seen = 0;
    while !lp.is_empty() {
        let signals = crate::sys::exit_signals_received();
        if signals > seen {
            seen = signals;
            if signals == 1 {
                on_first(lp);
            } else {
                lp.close_all();
                break;
            }
        }
        lp.run_once(Some(SIGNAL_CHECK))?;
    }
    Ok(())
}

/// Starts loop `owner` of the multi-loop model on a thread of its own.
fn spawn_sibling(
    builder: ServerBuilder,
    listener: std::net::TcpListener,
    owner: usize,
) -> Result<Sibling, Error> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name(format!("ftp-loop-{owner}"))
        .spawn(move || {
            // Signals go to the thread that runs serve_forever.
            crate::sys::block_exit_signals();
            match builder.single_loop(listener) {
                Ok(mut server) => {
                    let _ = tx.send(Ok((server.ioloop.handle(), server.acceptor)));
                    if let Err(e) = server.run_quietly() {
                        log::error!("loop {owner} failed: {e}");
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })
        .map_err(|e| Error::io("starting a loop thread", e))?;
    match rx.recv() {
        Ok(Ok((handle, acceptor))) => Ok(Sibling {
            handle,
            acceptor,
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(Error::Config(format!("loop {owner} did not start")))
        }
    }
}

/// The number of pre-fork workers or multi-loop loops: as configured, or one per CPU.
pub(crate) fn worker_count(config: &ServerConfig) -> usize {
    match config.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

impl Drop for FtpServer {
    fn drop(&mut self) {
        for s in &mut self.siblings {
            if let Some(t) = s.thread.take() {
                let _ = s.handle.close_all();
                let _ = t.join();
            }
        }
    }
}

/// Binds the first address `addr` resolves to that binds.
fn bind_listener(
    addr: impl ToSocketAddrs,
    config: &ServerConfig,
) -> Result<std::net::TcpListener, Error> {
    let reuse = if config.concurrency == Concurrency::MultiLoop {
        ReusePort::First
    } else {
        ReusePort::No
    };
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| Error::io("resolving the listen address", e))?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to bind");
    for a in addrs {
        match listen_with(a, config.backlog, reuse) {
            Ok(l) => return Ok(l),
            Err(e) => last = e,
        }
    }
    Err(Error::io("binding the listen address", last))
}

/// Creates a listening socket with SO_REUSEADDR, as pyftpdlib does.
pub(crate) fn listen(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    listen_with(addr, backlog, ReusePort::No)
}

/// Whether a listener shares its port with others (SO_REUSEPORT: the kernel spreads
/// connections over them).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReusePort {
    No,
    /// The first listener of a group: the port must be free.
    First,
    /// Another listener joining the group of the first.
    Join,
}

/// [`listen`], with SO_REUSEPORT for the multi-loop model.
fn listen_with(
    addr: SocketAddr,
    backlog: i32,
    reuse: ReusePort,
) -> io::Result<std::net::TcpListener> {
    if reuse == ReusePort::First && addr.port() != 0 {
        // SO_REUSEPORT would let this server join another one of the same user already
        // listening there, each getting a share of the clients: a plain bind first makes
        // a port in use fail as it does for the other models.
        let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        probe.set_reuse_address(true)?;
        probe.bind(&addr.into())?;
    }
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse != ReusePort::No {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// The listening handler: accepts, enforces `max_cons` / `max_cons_per_ip` exactly (it
/// counts sessions, not sockets), and starts a session per client: in this loop (async),
/// or on a thread of its own with its own loop (multi-thread).
struct ServerAcceptor {
    acceptor: Acceptor,
    shared: Arc<Shared>,
    limits: ServerConfig,
    /// The counts shared with the other loops accepting on this port (multi-loop,
    /// pre-fork), used instead of `sessions` / `per_ip` for the limits.
    shared_limits: Option<(Arc<SharedLimits>, usize)>,
    model: Concurrency,
    /// The running sessions; a session's id is its key (a slab entry is smaller than a
    /// hash map's, and ids are only ever reported back once, when the session ends).
    sessions: Slab<SessionEntry>,
    per_ip: HashMap<IpAddr, usize>,
    /// Set by a graceful stop: the listener no longer listens, the acceptor waits for
    /// sessions.
    stopping: bool,
}

struct SessionEntry {
    ip: IpAddr,
    to: SessionAddr,
}

/// Where a session's handler lives.
enum SessionAddr {
    Local(Handle),
    /// In a session thread's own loop; the handle is filled in when the thread reports.
    Thread(LoopHandle<Msg>, Handle),
    /// In a process of its own (multi-proc), reached by signals.
    Process(libc::pid_t),
}

impl ServerAcceptor {
    fn accept_one(&mut self, cx: &mut Ctx<'_, Msg>, stream: TcpStream, addr: SocketAddr) {
        let ip = addr.ip().to_canonical();
        let refusal = match &self.shared_limits {
            Some((limits, owner)) => limits.acquire(*owner, ip).err(),
            None => self.local_refusal(ip),
        };
        let refused = refusal.map(|r| match r {
            Refusal::Total => "Too many connections. Service temporarily unavailable.",
            Refusal::PerIp => "Too many connections from the same IP address.",
        });
        if let Some(text) = refused {
            // pyftpdlib's lines: it opened a session to refuse it.
            let prefix = log_prefix(&self.shared.config.log_prefix, addr, "");
            log::info!("{prefix} FTP session opened (connect)");
            log::warn!("{prefix} {text}");
            refuse(&self.shared, stream, &format!("421 {text}\r\n"));
            log::info!("{prefix} FTP session closed (disconnect).");
            return;
        }
        let id = self.sessions.vacant_key() as u64;
        let started = match self.model {
            Concurrency::MultiThread => self.start_thread(cx, stream, addr, id),
            Concurrency::MultiProc => forking::start_process(self, cx, stream, addr, id),
            Concurrency::Async | Concurrency::PreFork | Concurrency::MultiLoop => {
                self.start_local(cx, stream, addr, id)
            }
        };
        match started {
            Some(to) => {
                // Nothing was inserted since vacant_key, so this is the key `id`.
                self.sessions.insert(SessionEntry { ip, to });
                self.count_ip(ip, true);
            }
            None => {
                if let Some((limits, owner)) = &self.shared_limits {
                    limits.release(*owner, ip);
                }
            }
        }
    }

    /// One session more (`opened`) or less from `ip` in `per_ip`. Counted only when
    /// `max_cons_per_ip` is set: the count serves the limit alone.
    fn count_ip(&mut self, ip: IpAddr, opened: bool) {
        if self.limits.max_cons_per_ip == 0 {
            return;
        }
        if opened {
            *self.per_ip.entry(ip).or_insert(0) += 1;
        } else if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    /// The limits, counted by this acceptor alone (async, multi-thread, multi-proc).
    fn local_refusal(&self, ip: IpAddr) -> Option<Refusal> {
        if self.limits.max_cons > 0 && self.sessions.len() >= self.limits.max_cons {
            return Some(Refusal::Total);
        }
        if self.limits.max_cons_per_ip > 0
            && self.per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.max_cons_per_ip
        {
            return Some(Refusal::PerIp);
        }
        None
    }

    fn start_local(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        stream: TcpStream,
        addr: SocketAddr,
        id: u64,
    ) -> Option<SessionAddr> {
        let link = ServerLink::Local(cx.me());
        let handler = match FtpHandler::new(stream, addr, link, id, Arc::clone(&self.shared)) {
            Ok(h) => h,
            Err(e) => {
                log::debug!("{addr}: session setup failed: {e}");
                return None;
            }
        };
        match cx.spawn(Box::new(handler)) {
            Ok(h) => Some(SessionAddr::Local(h)),
            Err(e) => {
                log::error!("{addr}: cannot register the session: {e}");
                None
            }
        }
    }

    /// The multi-thread model: the session gets a thread and a loop of its own, so a slow
    /// filesystem or authorizer only stalls that session.
    fn start_thread(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        stream: TcpStream,
        addr: SocketAddr,
        id: u64,
    ) -> Option<SessionAddr> {
        let link = ServerLink::Remote(cx.loop_handle(), cx.me());
        let shared = Arc::clone(&self.shared);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name(format!("ftp-session-{id}"))
            .spawn(move || {
                crate::sys::block_exit_signals();
                // The loop is built on the thread that runs it (handlers are not Send).
                let started = IoLoop::<Msg>::new().and_then(|mut session_loop| {
                    let h = FtpHandler::new(stream, addr, link, id, shared)
                        .and_then(|handler| session_loop.spawn(Box::new(handler)))?;
                    Ok((session_loop, h))
                });
                match started {
                    Ok((mut session_loop, h)) => {
                        let _ = tx.send(Ok((session_loop.handle(), h)));
                        if let Err(e) = session_loop.run() {
                            log::error!("{addr}: session loop failed: {e}");
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        if let Err(e) = spawned {
            log::error!("{addr}: cannot start a session thread: {e}");
            return None;
        }
        match rx.recv() {
            Ok(Ok((lp, h))) => Some(SessionAddr::Thread(lp, h)),
            Ok(Err(e)) => {
                log::debug!("{addr}: session setup failed: {e}");
                None
            }
            Err(_) => None,
        }
    }

    fn shut_down(&mut self, cx: &mut Ctx<'_, Msg>) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        // As pyftpdlib closes its listener at once, clients stop queueing here for the
        // whole stop: those already queued are told why, later ones are refused.
        let mut queued = Vec::new();
        self.acceptor
            .accept_ready(cx, |_, stream, _| queued.push(stream));
        for stream in queued {
            refuse(&self.shared, stream, "421 Server shutting down.\r\n");
        }
        crate::sys::stop_listening(self.acceptor.listener().as_raw_fd());
        for (_, entry) in &self.sessions {
            let msg = Msg::ToSession(SessionCmd::Shutdown);
            match &entry.to {
                SessionAddr::Local(h) => cx.send(*h, msg),
                SessionAddr::Thread(lp, h) => {
                    let _ = lp.send(*h, msg);
                }
                SessionAddr::Process(pid) => forking::stop_gracefully(*pid),
            }
        }
        if self.sessions.is_empty() {
            cx.close();
        }
    }
}

/// Best effort: tell a refused client why, without blocking, then drop it. An implicit
/// FTPS client would take a clear-text reply for a broken handshake: it is just closed.
fn refuse(shared: &Shared, mut stream: TcpStream, reply: &str) {
    if shared.config.tls.as_ref().is_some_and(|t| t.implicit) {
        return;
    }
    let _ = stream.write(reply.as_bytes());
}

impl Handler<Msg> for ServerAcceptor {
    fn source(&mut self) -> Option<&mut dyn ioloop::mio::event::Source> {
        Some(self.acceptor.listener_mut())
    }

    fn interest(&self) -> Option<Interest> {
        if self.stopping {
            return None; // no more accepts; the listener closes with this handler
        }
        self.acceptor.interest()
    }

    fn on_ready(&mut self, cx: &mut Ctx<'_, Msg>, _ready: Ready) {
        if self.stopping {
            return;
        }
        while let Some((stream, addr)) = self.acceptor.accept_next(cx) {
            self.accept_one(cx, stream, addr);
        }
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_, Msg>, timer: TimerId) {
        self.acceptor.on_timer(cx, timer);
    }

    fn on_message(&mut self, cx: &mut Ctx<'_, Msg>, msg: Msg) {
        match msg {
            Msg::ToServer(ServerEvent::SessionClosed { id, .. }) => {
                let key = usize::try_from(id).unwrap_or(usize::MAX);
                let Some(SessionEntry { ip, to }) = self.sessions.try_remove(key) else {
                    return;
                };
                if let SessionAddr::Process(pid) = to {
                    forking::reap_session(pid);
                }
                if let Some((limits, owner)) = &self.shared_limits {
                    limits.release(*owner, ip);
                }
                self.count_ip(ip, false);
                if self.stopping && self.sessions.is_empty() {
                    cx.close();
                }
            }
            Msg::ToServer(ServerEvent::Shutdown) => self.shut_down(cx),
            _ => {}
        }
    }

    fn on_close(&mut self, _cx: &mut Ctx<'_, Msg>) {
        // close_all: session threads and processes end now too.
        for (_, entry) in &self.sessions {
            match &entry.to {
                SessionAddr::Thread(lp, _) => {
                    let _ = lp.close_all();
                }
                SessionAddr::Process(pid) => forking::stop_now(*pid),
                SessionAddr::Local(_) => {}
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

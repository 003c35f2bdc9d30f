//! Every option of pyftpdlib's FTPHandler / DTPHandler / FTPServer, with its default.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

mod proxy;
mod tls;

pub use proxy::{IpNet, IpNetError, ProxyProtocol, DEFAULT_HEADER_TIMEOUT};
pub use tls::TlsConfig;

/// The banner pyftpdlib sends by default, with our name and version.
pub fn default_banner() -> String {
    format!("ftpdlib {} ready.", env!("CARGO_PKG_VERSION"))
}

/// pyftpdlib's default session log prefix: `127.0.0.1:54321-[user]`.
pub const DEFAULT_LOG_PREFIX: &str = "%(remote_ip)s:%(remote_port)s-[%(username)s]";

/// Options of the control and data channels (pyftpdlib's handler class attributes).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HandlerConfig {
    /// Idle timeout of the control connection; None = never (pyftpdlib: 300 s).
    pub timeout: Option<Duration>,
    /// The 220 greeting.
    pub banner: String,
    /// Failed logins before the session is closed (3).
    pub max_login_attempts: u32,
    /// Delay before answering a failed login (3 s).
    pub auth_failed_timeout: Duration,
    /// Accept data connections to / from an address other than the client's (false).
    pub permit_foreign_addresses: bool,
    /// Accept PORT / EPRT to ports below 1024 (false).
    pub permit_privileged_ports: bool,
    /// The address announced in the PASV reply instead of the local one (NAT).
    pub masquerade_address: Option<IpAddr>,
    /// Per-local-address masquerade addresses, consulted before `masquerade_address`.
    pub masquerade_address_map: HashMap<IpAddr, IpAddr>,
    /// Masquerade addresses chosen by the client's network, consulted first: the first
    /// network that holds the client's address (the one a PROXY header carried, behind a
    /// balancer) names the address its PASV replies announce. Clients on the LAN get the
    /// server's LAN address, the others the public one of `masquerade_address`.
    pub masquerade_by_network: Vec<(IpNet, IpAddr)>,
    /// Which kinds of data connection clients may ask for: both (the default), passive
    /// only (PORT / EPRT answered 502, for servers whose firewall lets no connection out)
    /// or active only (PASV / EPSV answered 502, for servers that may open no port but 21).
    pub data_connections: DataConnections,
    /// Banning brute-forcers: after `after` failed logins from one address within
    /// `window`, the address is refused at connect (421) for `ban_time`. Counted across
    /// every session of the server, whichever thread or process serves it. None: off.
    pub ban: Option<BanPolicy>,
    /// Ports to listen on for passive connections; None = any the kernel picks.
    pub passive_ports: Option<RangeInclusive<u16>>,
    /// Show times in listings, MDTM and MLSx in UTC (true) or local time.
    pub use_gmt_times: bool,
    /// LIST and STAT of a directory show names starting with a dot without `-a`
    /// (pyftpdlib's listings). Off: they show them only for `LIST -a` / `-la`, as `ls`
    /// and vsftpd do. NLST and MLSD, which are for programs, always list every name.
    pub list_shows_hidden: bool,
    /// Atomic uploads (proftpd's HiddenStores): STOR and STOU write to a hidden
    /// temporary (`.ftpdlib-part.<random>`) in the target's directory, renamed over the
    /// target only once the upload completed, before the `226`. A cut upload leaves the
    /// previous file intact and no temporary. APPE and REST + STOR are refused (`550`).
    /// Temporaries are hidden from listings and cannot be named by clients.
    pub atomic_uploads: bool,
    /// Durable uploads: the `226` of a STOR / APPE / STOU is sent only once the file's
    /// data is on disk (fdatasync(2)) and, for a new name or after the rename of an
    /// atomic upload, its directory entry too (fsync(2) of the directory), both done on
    /// a worker thread ([`crate::filesystems::FileSystem::sync_upload`]). A failed sync
    /// is answered `451` (`452` for a full disk, `552` for a quota), not `226`.
    pub fsync_uploads: bool,
    /// `SITE UTIME` (proftpd's mod_site_misc): sets a file's modification time, for the
    /// `T` right, as MFMT does. Off: the command is unknown and `SITE HELP` omits it.
    pub site_utime: bool,
    /// `SITE SYMLINK target link` (proftpd's mod_site_misc): makes a relative symbolic
    /// link to a path inside the user's root, for the `w` right on the link's path, and
    /// only when the user holds on the target every right they hold at the link (a link
    /// never grants more). Off: the command is unknown and `SITE HELP` omits it.
    pub site_symlink: bool,
    /// Send files with sendfile(2) when possible.
    pub use_sendfile: bool,
    /// Set TCP_NODELAY on the control connection.
    pub tcp_no_delay: bool,
    /// The encoding of the control channel (`utf-8`, the default): a name
    /// [`Charset::from_name`](crate::proto::Charset::from_name) knows. Names on disk stay
    /// UTF-8 whatever it is.
    pub encoding: String,
    /// How long a PASV/EPSV listener waits for the client to connect (30 s).
    pub passive_timeout: Duration,
    /// How long a PORT/EPRT connect may take (30 s).
    pub active_timeout: Duration,
    /// A data connection without progress for this long is closed; None = never (300 s).
    pub data_timeout: Option<Duration>,
    /// The data channel's receive buffer per transfer (65536).
    pub ac_in_buffer_size: usize,
    /// The data channel's send buffer per transfer (65536).
    pub ac_out_buffer_size: usize,
    /// Uploads are limited to this many bytes per second per transfer; 0 = no limit
    /// (pyftpdlib's ThrottledDTPHandler `read_limit`).
    pub read_limit: u64,
    /// Downloads (and listings) are limited to this many bytes per second per transfer;
    /// 0 = no limit (`write_limit`).
    pub write_limit: u64,
    /// All uploads of the server together are limited to this many bytes per second,
    /// shared by every session, thread and process; 0 = no limit.
    pub server_read_limit: u64,
    /// All downloads (and listings) of the server together; 0 = no limit.
    pub server_write_limit: u64,
    /// All uploads of one user together (every session of that user), for users the
    /// authorizer gives no [`crate::authorizers::Authorizer::bandwidth`]; 0 = no limit.
    pub user_read_limit: u64,
    /// All downloads (and listings) of one user together; 0 = no limit.
    pub user_write_limit: u64,
    /// Worker threads that check passwords off the loop, for authorizers that may block
    /// (0 = check on the loop thread, as pyftpdlib does).
    pub auth_workers: usize,
    /// The longest command line accepted (2048 bytes).
    pub max_line_length: usize,
    /// The prefix of a session's log lines, pyftpdlib's template:
    /// `%(remote_ip)s`, `%(remote_port)s` and `%(username)s` are replaced.
    pub log_prefix: String,
    /// FTPS (RFC 4217): None = plain FTP only, and AUTH / PBSZ / PROT are unknown commands
    /// (pyftpdlib's FTPHandler); Some = pyftpdlib's TLS_FTPHandler.
    pub tls: Option<TlsConfig>,
    /// PROXY protocol (v1/v2) from load balancers on the control and passive data
    /// listeners; None = connections are taken as they come (the default).
    pub proxy_protocol: Option<ProxyProtocol>,
}

/// When to ban an address ([`HandlerConfig::ban`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BanPolicy {
    /// Failed logins within `window` that ban the address (0: never).
    pub after: u32,
    /// How far back failures count (10 minutes).
    pub window: Duration,
    /// How long a ban lasts (1 hour).
    pub ban_time: Duration,
    /// Addresses and networks never banned (an office, a monitoring host).
    pub allow: Vec<IpNet>,
}

impl BanPolicy {
    /// Bans after `after` failures within 10 minutes, for an hour, with no allow list.
    pub fn new(after: u32) -> BanPolicy {
        BanPolicy {
            after,
            window: Duration::from_secs(600),
            ban_time: Duration::from_secs(3600),
            allow: Vec::new(),
        }
    }
}

/// Which data connections a server offers ([`HandlerConfig::data_connections`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DataConnections {
    /// Passive (PASV, EPSV) and active (PORT, EPRT).
    #[default]
    Both,
    /// PASV and EPSV only: PORT and EPRT are answered 502.
    PassiveOnly,
    /// PORT and EPRT only: PASV and EPSV are answered 502.
    ActiveOnly,
}

impl DataConnections {
    /// Whether passive connections (PASV, EPSV) are offered.
    pub fn passive(self) -> bool {
        self != DataConnections::ActiveOnly
    }

    /// Whether active connections (PORT, EPRT) are offered.
    pub fn active(self) -> bool {
        self != DataConnections::PassiveOnly
    }
}

impl Default for HandlerConfig {
    fn default() -> Self {
        HandlerConfig {
            timeout: Some(Duration::from_secs(300)),
            banner: default_banner(),
            max_login_attempts: 3,
            auth_failed_timeout: Duration::from_secs(3),
            permit_foreign_addresses: false,
            permit_privileged_ports: false,
            masquerade_address: None,
            masquerade_address_map: HashMap::new(),
            masquerade_by_network: Vec::new(),
            data_connections: DataConnections::Both,
            ban: None,
            passive_ports: None,
            use_gmt_times: true,
            list_shows_hidden: false,
            atomic_uploads: false,
            fsync_uploads: false,
            site_utime: false,
            site_symlink: false,
            use_sendfile: true,
            tcp_no_delay: true,
            encoding: "utf-8".to_owned(),
            passive_timeout: Duration::from_secs(30),
            active_timeout: Duration::from_secs(30),
            data_timeout: Some(Duration::from_secs(300)),
            ac_in_buffer_size: 65536,
            ac_out_buffer_size: 65536,
            read_limit: 0,
            write_limit: 0,
            server_read_limit: 0,
            server_write_limit: 0,
            user_read_limit: 0,
            user_write_limit: 0,
            auth_workers: 0,
            max_line_length: 2048,
            log_prefix: DEFAULT_LOG_PREFIX.to_owned(),
            tls: None,
            proxy_protocol: None,
        }
    }
}

/// Options of the listening server (pyftpdlib's FTPServer class attributes).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Most sessions at once; 0 = unlimited (512).
    pub max_cons: usize,
    /// Most sessions from one IP address; 0 = unlimited (0).
    pub max_cons_per_ip: usize,
    /// The listen backlog (1024; pyftpdlib: 100, which makes a burst of a few hundred
    /// connects wait for the clients' one-second SYN retries).
    pub backlog: i32,
    /// How sessions are served.
    pub concurrency: Concurrency,
    /// Worker processes ([`Concurrency::PreFork`]) or loop threads
    /// ([`Concurrency::MultiLoop`]); 0 = one per CPU (0).
    pub workers: usize,
    /// Speak systemd's notification protocol when `NOTIFY_SOCKET` is set (false): see
    /// [`ServerBuilder::notify_systemd`](crate::servers::ServerBuilder::notify_systemd).
    pub notify_systemd: bool,
    /// On SIGUSR2, hand the listening sockets over to a new copy of the program and
    /// stop once it serves (false): see
    /// [`ServerBuilder::hand_over_on_sigusr2`](crate::servers::ServerBuilder::hand_over_on_sigusr2).
    pub hand_over: bool,
    /// Serve Prometheus metrics over HTTP on this address (`GET /metrics`, `GET
    /// /healthz`) from the server's own loop (None: no metrics, and no cost). See
    /// [`ServerBuilder::metrics`](crate::servers::ServerBuilder::metrics).
    pub metrics: Option<std::net::SocketAddr>,
    /// How long a metrics client has for its whole exchange (request and response)
    /// before it is cut off (10 s).
    pub metrics_timeout: Duration,
}

/// pyftpdlib's concurrency models (`--concurrency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Concurrency {
    /// One loop serves everything (the default).
    #[default]
    Async,
    /// Each session gets a thread running its own loop: a slow filesystem or authorizer
    /// stalls only that session.
    MultiThread,
    /// Each session gets a process of its own (fork): a crash or a leak ends with the
    /// session. The server's process must have no other thread while it runs.
    MultiProc,
    /// [`ServerConfig::workers`] processes, forked at start, each run one loop on the
    /// shared listener; a worker that dies is replaced. Limits are counted exactly across
    /// workers. The server's process must have no other thread while it runs.
    PreFork,
    /// [`ServerConfig::workers`] threads in one process, each running its own loop with
    /// its own `SO_REUSEPORT` listener on the same port: every core serves, each session
    /// stays on one thread. Limits are counted exactly across loops.
    MultiLoop,
}

impl Concurrency {
    /// The name `--concurrency` takes and the start-up log shows.
    pub fn name(self) -> &'static str {
        match self {
            Concurrency::Async => "async",
            Concurrency::MultiThread => "multi-thread",
            Concurrency::MultiProc => "multi-proc",
            Concurrency::PreFork => "pre-fork",
            Concurrency::MultiLoop => "multi-loop",
        }
    }

    /// Whether the model forks processes.
    pub fn forks(self) -> bool {
        matches!(self, Concurrency::MultiProc | Concurrency::PreFork)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_cons: 512,
            max_cons_per_ip: 0,
            backlog: 1024,
            concurrency: Concurrency::Async,
            workers: 0,
            notify_systemd: false,
            hand_over: false,
            metrics: None,
            metrics_timeout: Duration::from_secs(10),
        }
    }
}

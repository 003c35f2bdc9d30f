//! `ftpdlib`'s options: those of `python -m pyftpdlib` 2.2.0 and ours, declared for clap.
//! Each one can also come from an `FTPDLIB_*` environment variable (its long name in
//! capitals, `_` for `-`); the command line wins. [`crate::parse`] reads the command line
//! with argparse's rules and [`crate::help`] shows the help in argparse's layout, both from
//! this declaration.
//!
//! The values are converted by [`Argparse`] parsers, whose errors are argparse's messages
//! (`invalid int value: 'x'`), and which take bytes: a path need not be UTF-8.

use std::ffi::OsStr;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::builder::TypedValueParser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, Parser};
use ftpdlib::config::{Concurrency, IpNet};

use crate::config_file::VirtualHostSpec;
use crate::logger::LogFormat;
use crate::parse::repr;

/// The parsed command line.
#[derive(Debug, Parser)]
#[command(
    name = "ftpdlib",
    version,
    about = "Start a stand alone anonymous FTP server.",
    after_help = "Each option can also be set in the environment, as FTPDLIB_ and its long \
                  name in capitals with _ for - (FTPDLIB_PORT=21, FTPDLIB_WRITE=1); the \
                  command line wins.",
    args_override_self = true,
    disable_help_flag = true,
    disable_version_flag = true
)]
pub struct Cli {
    #[arg(short = 'h', long, action = ArgAction::Help, help = "show this help message and exit")]
    help: Option<bool>,

    #[arg(long, action = ArgAction::Version, help = "print the version and exit")]
    version: Option<bool>,

    /// An IP address or a host name (resolved when binding), as pyftpdlib takes it.
    #[arg(
        short, long, value_name = "ADDRESS", env = "FTPDLIB_INTERFACE", help_heading = MAIN,
        value_parser = Argparse::new(lossy),
        help = "specify the interface to run on (default: all interfaces)"
    )]
    pub interface: Option<String>,

    #[arg(
        short, long, value_name = "PORT", env = "FTPDLIB_PORT", help_heading = MAIN,
        default_value = "2121", value_parser = Argparse::new(int::<u16>),
        help = "specify port number to run on (default: 2121)"
    )]
    pub port: u16,

    #[arg(
        short, long, env = "FTPDLIB_WRITE", help_heading = MAIN, action = ArgAction::SetTrue,
        value_parser = Argparse::new(switch),
        help = "grants write access for logged in user (default: read-only)"
    )]
    pub write: bool,

    #[arg(
        short, long, value_name = "FOLDER", env = "FTPDLIB_DIRECTORY", help_heading = MAIN,
        value_parser = Argparse::new(path),
        help = "specify the directory to share (default: current directory)"
    )]
    pub directory: Option<PathBuf>,

    #[arg(
        short, long, value_name = "ADDRESS", env = "FTPDLIB_NAT_ADDRESS", help_heading = MAIN,
        value_parser = Argparse::new(ip_address),
        help = "the NAT address to use for passive connections"
    )]
    pub nat_address: Option<IpAddr>,

    #[arg(
        short, long, value_name = "FROM-TO", env = "FTPDLIB_RANGE", help_heading = MAIN,
        value_parser = Argparse::new(port_range),
        help = "the range of TCP ports to use for passive connections (e.g. -r 8000-9000)"
    )]
    pub range: Option<(u16, u16)>,

    #[arg(
        short = 'D', long, env = "FTPDLIB_DEBUG", help_heading = MAIN,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "enable DEBUG logging level"
    )]
    pub debug: bool,

    #[arg(
        short, long, value_name = "USERNAME", env = "FTPDLIB_USERNAME", help_heading = MAIN,
        value_parser = Argparse::new(text),
        help = "specify username to login with (anonymous login will be disabled and password \
                required if supplied)"
    )]
    pub username: Option<String>,

    #[arg(
        short = 'P', long, value_name = "PASSWORD", env = "FTPDLIB_PASSWORD",
        help_heading = MAIN, value_parser = Argparse::new(text),
        help = "specify a password to login with (username required to be useful)"
    )]
    pub password: Option<String>,

    #[arg(
        long, value_name = "CONCURRENCY", env = "FTPDLIB_CONCURRENCY", help_heading = MAIN,
        default_value = "async", value_parser = Argparse::new(concurrency),
        help = "the FTP server concurrency model to use, either 'async' (default), \
                'multi-thread', 'multi-proc', 'pre-fork' or 'multi-loop'"
    )]
    pub concurrency: Concurrency,

    #[arg(
        long, value_name = "N", env = "FTPDLIB_WORKERS", help_heading = MAIN,
        default_value = "0", value_parser = Argparse::new(int::<usize>),
        help = "worker processes (pre-fork) or loop threads (multi-loop); 0 = one per CPU"
    )]
    pub workers: usize,

    #[arg(
        long, value_name = "LETTERS", env = "FTPDLIB_PERM", help_heading = MAIN,
        value_parser = Argparse::new(text),
        help = "exactly these permission letters (e.g. elr, elradfmwMT) for the -u user or \
                anonymous, or for every system user with --unix-users; overrides -w"
    )]
    pub perm: Option<String>,

    #[arg(
        long, value_name = "BYTES", env = "FTPDLIB_QUOTA_BYTES", help_heading = MAIN,
        value_parser = Argparse::new(size),
        help = "the most bytes the -u user's files may hold (K, M, G suffixes); an upload \
                past it is refused with 552 and removed"
    )]
    pub quota_bytes: Option<u64>,

    #[arg(
        long, value_name = "N", env = "FTPDLIB_QUOTA_FILES", help_heading = MAIN,
        value_parser = Argparse::new(size),
        help = "the most files the -u user's home may hold (K, M, G suffixes)"
    )]
    pub quota_files: Option<u64>,

    #[arg(
        long, value_name = "PATH", env = "FTPDLIB_USERS_FILE", help_heading = MAIN,
        value_parser = Argparse::new(path),
        help = "serve the virtual users of this file: one name:hash:home:perms per line, the \
                hash made by --hash-password"
    )]
    pub users_file: Option<PathBuf>,

    #[arg(
        long, value_name = "FILE", env = "FTPDLIB_CONFIG", help_heading = MAIN,
        value_parser = Argparse::new(path),
        help = "read the options (long names as keys) and [[users]] from this TOML file; the \
                command line and FTPDLIB_* variables win over it"
    )]
    pub config: Option<PathBuf>,

    #[arg(
        long, env = "FTPDLIB_UNIX_USERS", help_heading = MAIN, action = ArgAction::SetTrue,
        value_parser = Argparse::new(switch),
        help = "serve the system's accounts (needs root): passwords from the shadow database, \
                sessions start in the user's home and act as that user"
    )]
    pub unix_users: bool,

    #[arg(
        long, env = "FTPDLIB_TLS", help_heading = FTPS, action = ArgAction::SetTrue,
        value_parser = Argparse::new(switch),
        help = "whether to enable FTPS (FTP over TLS); requires --certfile"
    )]
    pub tls: bool,

    #[arg(
        long, value_name = "KEYFILE", env = "FTPDLIB_KEYFILE", help_heading = FTPS,
        value_parser = Argparse::new(path),
        help = "the TLS key file (default: the certificate file)"
    )]
    pub keyfile: Option<PathBuf>,

    #[arg(
        long, value_name = "CERTFILE", env = "FTPDLIB_CERTFILE", help_heading = FTPS,
        value_parser = Argparse::new(path),
        help = "the TLS certificate file"
    )]
    pub certfile: Option<PathBuf>,

    #[arg(
        long, env = "FTPDLIB_TLS_CONTROL_REQUIRED", help_heading = FTPS,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "impose TLS for the control connection (before login)"
    )]
    pub tls_control_required: bool,

    #[arg(
        long, env = "FTPDLIB_TLS_DATA_REQUIRED", help_heading = FTPS,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "impose TLS for the data connection"
    )]
    pub tls_data_required: bool,

    #[arg(
        long, env = "FTPDLIB_TLS_IMPLICIT", help_heading = FTPS,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "implicit FTPS: TLS from the first byte (the port-990 convention), PROT P implied"
    )]
    pub tls_implicit: bool,

    #[arg(
        long, env = "FTPDLIB_TLS_REQUIRE_REUSE", help_heading = FTPS,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "refuse TLS data connections that do not resume the control connection's TLS \
                session (vsftpd's require_ssl_reuse)"
    )]
    pub tls_require_reuse: bool,

    #[arg(
        long, value_name = "FILE", env = "FTPDLIB_TLS_CLIENT_CA", help_heading = FTPS,
        value_parser = Argparse::new(path),
        help = "mutual TLS: clients must present a certificate signed by a CA of this PEM \
                file, else the handshake fails"
    )]
    pub tls_client_ca: Option<PathBuf>,

    #[arg(
        long, env = "FTPDLIB_TLS_CLIENT_CERT_LOGIN", help_heading = FTPS,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "with --tls-client-ca: a certificate whose common name (or e-mail / DNS name) \
                is a user's name logs that user in without a password (232)"
    )]
    pub tls_client_cert_login: bool,

    #[arg(
        long, value_name = "SECONDS", env = "FTPDLIB_TIMEOUT", help_heading = OTHER,
        default_value = "300", value_parser = Argparse::new(int::<u64>),
        help = "connection timeout (default: 300 seconds; 0 = none)"
    )]
    pub timeout: u64,

    #[arg(
        long, value_name = "SECONDS", env = "FTPDLIB_DATA_TIMEOUT", help_heading = OTHER,
        value_parser = Argparse::new(int::<u64>),
        help = "idle timeout of data connections (default: --timeout; 0 = none)"
    )]
    pub data_timeout: Option<u64>,

    #[arg(
        long, value_name = "SECONDS", env = "FTPDLIB_PASSIVE_TIMEOUT", help_heading = OTHER,
        default_value = "30", value_parser = Argparse::new(seconds),
        help = "how long a passive listener waits for the client to connect (default: 30)"
    )]
    pub passive_timeout: u64,

    #[arg(
        long, value_name = "SECONDS", env = "FTPDLIB_ACTIVE_TIMEOUT", help_heading = OTHER,
        default_value = "30", value_parser = Argparse::new(seconds),
        help = "how long an active (PORT) connect may take (default: 30)"
    )]
    pub active_timeout: u64,

    #[arg(
        long, value_name = "BANNER", env = "FTPDLIB_BANNER", help_heading = OTHER,
        value_parser = Argparse::new(text),
        help = concat!(
            "the message sent when client connects (default: 'ftpdlib ",
            env!("CARGO_PKG_VERSION"),
            " ready.')"
        )
    )]
    pub banner: Option<String>,

    #[arg(
        long, env = "FTPDLIB_PERMIT_FOREIGN_ADDRESSES", help_heading = OTHER,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "allow data connections from an IP address different than the control connection"
    )]
    pub permit_foreign_addresses: bool,

    #[arg(
        long, env = "FTPDLIB_PERMIT_PRIVILEGED_PORTS", help_heading = OTHER,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "allow data connections (PORT) over privileged TCP ports"
    )]
    pub permit_privileged_ports: bool,

    #[arg(
        long, value_name = "ENCODING", env = "FTPDLIB_ENCODING", help_heading = OTHER,
        default_value = "utf-8", value_parser = Argparse::new(text),
        help = "the encoding used for client / server communication: utf-8 (default), latin-1, \
                or any ASCII-based encoding of the WHATWG Encoding Standard \
                (windows-1251, shift_jis, gbk, euc-kr, koi8-r ...)"
    )]
    pub encoding: String,

    #[arg(
        long, env = "FTPDLIB_USE_LOCALTIME", help_heading = OTHER,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "display directory listings with the time in your local time zone (default: use GMT)"
    )]
    pub use_localtime: bool,

    #[arg(
        long, env = "FTPDLIB_DISABLE_SENDFILE", help_heading = OTHER,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "disable sendfile(2) and splice(2), used for faster file transfers"
    )]
    pub disable_sendfile: bool,

    #[arg(
        long, env = "FTPDLIB_LIST_ALL", help_heading = OTHER,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "LIST shows dot-files without -a, as pyftpdlib does (default: only with -a)"
    )]
    pub list_all: bool,

    #[arg(
        long, env = "FTPDLIB_PASSIVE_ONLY", help_heading = OTHER,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        conflicts_with = "active_only",
        help = "offer passive data connections only: PORT and EPRT are answered 502"
    )]
    pub passive_only: bool,

    #[arg(
        long, env = "FTPDLIB_ACTIVE_ONLY", help_heading = OTHER,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "offer active data connections only: PASV and EPSV are answered 502"
    )]
    pub active_only: bool,

    #[arg(
        long, value_name = "CIDR=ADDRESS[,...]", env = "FTPDLIB_NAT_ADDRESS_FOR",
        help_heading = OTHER, value_parser = Argparse::new(nat_by_network),
        help = "the address announced in PASV replies to clients of a network (the first \
                network that holds the client wins; others get -n), e.g. \
                192.168.0.0/16=192.168.1.10"
    )]
    pub nat_address_for: Option<NatByNetwork>,

    #[arg(
        long, value_name = "NAME=USERS[=CERT[=KEY]][,...]",
        env = "FTPDLIB_VIRTUAL_HOST", help_heading = OTHER,
        value_parser = Argparse::new(virtual_hosts),
        help = "virtual hosts (RFC 7151 HOST, or the TLS SNI name): each NAME's users come \
                from its users file, its certificate from CERTFILE"
    )]
    pub virtual_host: Option<VirtualHosts>,

    #[arg(
        long, env = "FTPDLIB_ATOMIC_UPLOADS", help_heading = OTHER,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "uploads go to a hidden temporary, renamed over the target once complete; \
                APPE and REST+STOR are refused"
    )]
    pub atomic_uploads: bool,

    #[arg(
        long, env = "FTPDLIB_FSYNC_UPLOADS", help_heading = OTHER,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "the 226 of an upload is sent once the file (and a new name) is on disk \
                (fdatasync, fsync of the directory)"
    )]
    pub fsync_uploads: bool,

    #[arg(
        long, env = "FTPDLIB_SITE_UTIME", help_heading = OTHER,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "enable SITE UTIME (set a file's modification time; needs the T permission)"
    )]
    pub site_utime: bool,

    #[arg(
        long, env = "FTPDLIB_SITE_SYMLINK", help_heading = OTHER,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "enable SITE SYMLINK (relative links inside the user's root; needs the w \
                permission)"
    )]
    pub site_symlink: bool,

    #[arg(
        long, value_name = "MAX_CONS", env = "FTPDLIB_MAX_CONS", help_heading = OTHER,
        default_value = "512", value_parser = Argparse::new(int::<usize>),
        help = "max number of simultaneous connections (default: 512)"
    )]
    pub max_cons: usize,

    #[arg(
        long, value_name = "MAX_CONS_PER_IP", env = "FTPDLIB_MAX_CONS_PER_IP",
        help_heading = OTHER, default_value = "0", value_parser = Argparse::new(int::<usize>),
        help = "maximum number of connections from the same IP address (default: unlimited)"
    )]
    pub max_cons_per_ip: usize,

    #[arg(
        long, value_name = "N", env = "FTPDLIB_MAX_LOGIN_ATTEMPTS", help_heading = OTHER,
        default_value = "3", value_parser = Argparse::new(int::<u32>),
        help = "max number of failed authentications before disconnect (default: 3)"
    )]
    pub max_login_attempts: u32,

    #[arg(
        long, value_name = "N", env = "FTPDLIB_BAN_AFTER", help_heading = OTHER,
        default_value = "0", value_parser = Argparse::new(int::<u32>),
        help = "ban an address after N failed logins within --ban-window: refused at \
                connect (421) for --ban-time (default: 0, never)"
    )]
    pub ban_after: u32,

    #[arg(
        long, value_name = "SECONDS", env = "FTPDLIB_BAN_WINDOW", help_heading = OTHER,
        default_value = "600", value_parser = Argparse::new(seconds),
        help = "how far back failed logins count towards a ban (default: 600)"
    )]
    pub ban_window: u64,

    #[arg(
        long, value_name = "SECONDS", env = "FTPDLIB_BAN_TIME", help_heading = OTHER,
        default_value = "3600", value_parser = Argparse::new(seconds),
        help = "how long a ban lasts (default: 3600)"
    )]
    pub ban_time: u64,

    #[arg(
        long, value_name = "ADDR_OR_CIDR[,...]", env = "FTPDLIB_BAN_ALLOW",
        help_heading = OTHER, value_parser = Argparse::new(networks),
        help = "addresses and networks never banned"
    )]
    pub ban_allow: Option<Networks>,

    #[arg(
        long, value_name = "N", env = "FTPDLIB_BACKLOG", help_heading = OTHER,
        default_value = "1024", value_parser = Argparse::new(int::<u16>),
        help = "the listen backlog: connections the kernel queues before they are accepted \
                (default: 1024)"
    )]
    pub backlog: u16,

    #[arg(
        long, value_name = "SECONDS", env = "FTPDLIB_AUTH_FAILED_TIMEOUT", help_heading = OTHER,
        default_value = "3", value_parser = Argparse::new(int::<u64>),
        help = "delay before the reply to a failed login (default: 3)"
    )]
    pub auth_failed_timeout: u64,

    #[arg(
        long, value_name = "N", env = "FTPDLIB_AUTH_WORKERS", help_heading = OTHER,
        default_value = "0", value_parser = Argparse::new(int::<usize>),
        help = "threads that check passwords off the event loop (default: 0, on the loop)"
    )]
    pub auth_workers: usize,

    #[arg(
        long, value_name = "TEMPLATE", env = "FTPDLIB_LOG_PREFIX", help_heading = OTHER,
        value_parser = Argparse::new(text),
        help = "the prefix of a session's log lines, with %(remote_ip)s, %(remote_port)s and \
                %(username)s (default: '%(remote_ip)s:%(remote_port)s-[%(username)s]')"
    )]
    pub log_prefix: Option<String>,

    #[arg(
        long, value_name = "PATH", env = "FTPDLIB_LOG_FILE", help_heading = OTHER,
        value_parser = Argparse::new(path),
        help = "append the log to this file instead of standard error; SIGUSR1 reopens it \
                (logrotate)"
    )]
    pub log_file: Option<PathBuf>,

    #[arg(
        long, value_name = "FORMAT", env = "FTPDLIB_LOG_FORMAT", help_heading = OTHER,
        default_value = "text", value_parser = Argparse::new(log_format),
        help = "the log lines' format: 'text' (pyftpdlib's, default) or 'json' (one object \
                per line with time, level and message)"
    )]
    pub log_format: LogFormat,

    #[arg(
        long, value_name = "PATH", env = "FTPDLIB_XFERLOG", help_heading = OTHER,
        value_parser = Argparse::new(path),
        help = "append a line per file transfer to this file, in wu-ftpd's xferlog format; \
                SIGUSR1 reopens it"
    )]
    pub xferlog: Option<PathBuf>,

    #[arg(
        long, env = "FTPDLIB_SYSLOG", help_heading = OTHER,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "send the log to syslog (/dev/log, facility daemon) instead of standard error"
    )]
    pub syslog: bool,

    #[arg(
        long, value_name = "PATH", env = "FTPDLIB_SYSLOG_SOCKET", help_heading = OTHER,
        value_parser = Argparse::new(path),
        help = "the syslog daemon's datagram socket (default: /dev/log); implies --syslog"
    )]
    pub syslog_socket: Option<PathBuf>,

    #[arg(
        long, value_name = "BYTES", env = "FTPDLIB_READ_LIMIT", help_heading = OTHER,
        default_value = "0", value_parser = Argparse::new(rate),
        help = "limit each upload to this many bytes per second (K, M, G suffixes; 0 = no limit)"
    )]
    pub read_limit: u64,

    #[arg(
        long, value_name = "BYTES", env = "FTPDLIB_WRITE_LIMIT", help_heading = OTHER,
        default_value = "0", value_parser = Argparse::new(rate),
        help = "limit each download to this many bytes per second (K, M, G suffixes; 0 = no \
                limit)"
    )]
    pub write_limit: u64,

    #[arg(
        long, value_name = "BYTES", env = "FTPDLIB_SERVER_READ_LIMIT", help_heading = OTHER,
        default_value = "0", value_parser = Argparse::new(rate),
        help = "limit all uploads of the server together to this many bytes per second, \
                shared by every session and process (K, M, G suffixes; 0 = no limit)"
    )]
    pub server_read_limit: u64,

    #[arg(
        long, value_name = "BYTES", env = "FTPDLIB_SERVER_WRITE_LIMIT", help_heading = OTHER,
        default_value = "0", value_parser = Argparse::new(rate),
        help = "limit all downloads of the server together to this many bytes per second \
                (K, M, G suffixes; 0 = no limit)"
    )]
    pub server_write_limit: u64,

    #[arg(
        long, value_name = "BYTES", env = "FTPDLIB_USER_READ_LIMIT", help_heading = OTHER,
        default_value = "0", value_parser = Argparse::new(rate),
        help = "limit all uploads of each user together (every session of that user) to this \
                many bytes per second (K, M, G suffixes; 0 = no limit)"
    )]
    pub user_read_limit: u64,

    #[arg(
        long, value_name = "BYTES", env = "FTPDLIB_USER_WRITE_LIMIT", help_heading = OTHER,
        default_value = "0", value_parser = Argparse::new(rate),
        help = "limit all downloads of each user together to this many bytes per second \
                (K, M, G suffixes; 0 = no limit)"
    )]
    pub user_write_limit: u64,

    #[arg(
        long, value_name = "ADDR_OR_CIDR[,...]", env = "FTPDLIB_PROXY_PROTOCOL_FROM",
        help_heading = OTHER, value_parser = Argparse::new(networks),
        help = "expect a PROXY protocol header (v1 or v2) on every connection, and accept \
                connections only from these proxies (e.g. 127.0.0.1 or 10.0.0.0/8)"
    )]
    pub proxy_protocol_from: Option<Networks>,

    #[arg(
        long, value_name = "ADDR", env = "FTPDLIB_METRICS", help_heading = OTHER,
        value_parser = Argparse::new(socket_address),
        help = "serve Prometheus metrics on http://ADDR/metrics (and /healthz), e.g. \
                127.0.0.1:9100 or :9100 for every interface"
    )]
    pub metrics: Option<SocketAddr>,

    #[arg(
        long, value_name = "SHELL", env = "FTPDLIB_COMPLETIONS", help_heading = OTHER,
        value_parser = Argparse::new(shell),
        help = "print the completion script for SHELL (bash, zsh, fish, elvish or \
                powershell) and exit"
    )]
    pub completions: Option<clap_complete::Shell>,

    #[arg(
        long, env = "FTPDLIB_MAN", help_heading = OTHER, action = ArgAction::SetTrue,
        value_parser = Argparse::new(switch),
        help = "print the manual page (roff, for man -l -) and exit"
    )]
    pub man: bool,

    #[arg(
        long, env = "FTPDLIB_HASH_PASSWORD", help_heading = OTHER,
        action = ArgAction::SetTrue, value_parser = Argparse::new(switch),
        help = "read a password from stdin, print its crypt(3) hash (for --users-file) and exit"
    )]
    pub hash_password: bool,

    /// The `[[users]]` of the config file.
    #[arg(skip)]
    pub users: Vec<crate::config_file::FileUser>,

    /// The `[[virtual-hosts]]` of the config file.
    #[arg(skip)]
    pub file_virtual_hosts: Vec<VirtualHostSpec>,
}

/// The help's groups, as pyftpdlib's.
const MAIN: &str = "Main options";
const FTPS: &str = "FTPS options";
const OTHER: &str = "Other options";

/// `--concurrency`'s choices.
pub const MODELS: [(&str, Concurrency); 5] = [
    ("async", Concurrency::Async),
    ("multi-thread", Concurrency::MultiThread),
    ("multi-proc", Concurrency::MultiProc),
    ("pre-fork", Concurrency::PreFork),
    ("multi-loop", Concurrency::MultiLoop),
];

/// `--completions`' choices.
pub const SHELLS: [(&str, clap_complete::Shell); 5] = [
    ("bash", clap_complete::Shell::Bash),
    ("zsh", clap_complete::Shell::Zsh),
    ("fish", clap_complete::Shell::Fish),
    ("elvish", clap_complete::Shell::Elvish),
    ("powershell", clap_complete::Shell::PowerShell),
];

/// `--log-format`'s choices.
pub const LOG_FORMATS: [(&str, LogFormat); 2] =
    [("text", LogFormat::Text), ("json", LogFormat::Json)];

/// A clap value parser over a conversion whose error is argparse's message for the value
/// (`invalid int value: 'x'`). The clap error carries the whole line, with the option's
/// name or the environment variable's in front, as [`ContextKind::Custom`].
pub struct Argparse<T> {
    convert: fn(&OsStr) -> Result<T, String>,
    _value: PhantomData<fn() -> T>,
}

impl<T> Argparse<T> {
    fn new(convert: fn(&OsStr) -> Result<T, String>) -> Argparse<T> {
        Argparse {
            convert,
            _value: PhantomData,
        }
    }
}

// Not derived: a derive would want `T: Clone`, which the parser itself does not need.
impl<T> Clone for Argparse<T> {
    fn clone(&self) -> Self {
        Argparse::new(self.convert)
    }
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Argparse<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        self.parse_ref_(cmd, arg, value, ValueSource::CommandLine)
    }

    fn parse_ref_(
        &self,
        cmd: &clap::Command,
        arg: Option<&Arg>,
        value: &OsStr,
        source: ValueSource,
    ) -> Result<T, clap::Error> {
        (self.convert)(value).map_err(|message| {
            let whose = match (arg, source) {
                (Some(arg), ValueSource::EnvVariable) => {
                    let name = arg.get_env().unwrap_or_default().to_string_lossy();
                    format!("environment variable {name}")
                }
                (Some(arg), _) => format!("argument {}", argparse_name(arg)),
                (None, _) => "value".to_owned(),
            };
            let mut error = clap::Error::new(ErrorKind::ValueValidation).with_cmd(cmd);
            error.insert(
                ContextKind::Custom,
                ContextValue::String(format!("{whose}: {message}")),
            );
            error
        })
    }
}

/// argparse's name of an option in its messages: `-p/--port`, `--tls`.
pub fn argparse_name(arg: &Arg) -> String {
    let long = arg.get_long().unwrap_or_default();
    match arg.get_short() {
        Some(short) => format!("-{short}/--{long}"),
        None => format!("--{long}"),
    }
}

/// A switch: `true` on the command line (clap passes "true"), or a yes / no word in the
/// environment.
/// A count of bytes or files with an optional K, M or G suffix (`--quota-bytes 500M`).
fn size(value: &OsStr) -> Result<u64, String> {
    let t = value
        .to_str()
        .ok_or_else(|| format!("invalid size value: {}", repr(value)))?;
    ftpdlib::quotas::parse_size(t)
}

fn switch(value: &OsStr) -> Result<bool, String> {
    match value.to_string_lossy().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "on" => Ok(true),
        "0" | "false" | "no" | "n" | "off" | "" => Ok(false),
        _ => Err(format!(
            "invalid switch value: {} (use 1 or 0, true or false, yes or no, on or off)",
            repr(value)
        )),
    }
}

/// A path, as its bytes.
fn path(value: &OsStr) -> Result<PathBuf, String> {
    Ok(PathBuf::from(value))
}

/// Text, which must be UTF-8.
fn text(value: &OsStr) -> Result<String, String> {
    value
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("invalid UTF-8 value: {}", repr(value)))
}

/// Text, with what is not UTF-8 replaced (a host name that is not UTF-8 fails to resolve).
fn lossy(value: &OsStr) -> Result<String, String> {
    Ok(value.to_string_lossy().into_owned())
}

/// A number, as Python's `int` (the type's range aside).
fn int<T: FromStr>(value: &OsStr) -> Result<T, String> {
    converted(value, "int")
}

/// Seconds, at least 1: a listener or a connect with no time at all would always fail.
fn seconds(value: &OsStr) -> Result<u64, String> {
    match int::<u64>(value)? {
        0 => Err(format!(
            "invalid value: {} (use 1 or more seconds)",
            repr(value)
        )),
        n => Ok(n),
    }
}

/// `HOST:PORT` (a name is resolved, its first address taken), `[V6]:PORT`, or `:PORT`
/// for every IPv4 interface.
fn socket_address(value: &OsStr) -> Result<SocketAddr, String> {
    let invalid = || format!("invalid address value: {} (use HOST:PORT)", repr(value));
    let s = value.to_str().ok_or_else(invalid)?;
    if let Some(port) = s.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| invalid())?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    s.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(invalid)
}

fn ip_address(value: &OsStr) -> Result<IpAddr, String> {
    converted(value, "IP address")
}

fn converted<T: FromStr>(value: &OsStr, what: &str) -> Result<T, String> {
    value
        .to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("invalid {what} value: {}", repr(value)))
}

/// One of [`MODELS`], or argparse's `invalid choice` listing them.
fn concurrency(value: &OsStr) -> Result<Concurrency, String> {
    choice(&MODELS, value)
}

fn shell(value: &OsStr) -> Result<clap_complete::Shell, String> {
    choice(&SHELLS, value)
}

fn log_format(value: &OsStr) -> Result<LogFormat, String> {
    choice(&LOG_FORMATS, value)
}

/// The value of the choice named `value`, or argparse's message listing the names.
fn choice<T: Copy>(choices: &[(&str, T)], value: &OsStr) -> Result<T, String> {
    let found = choices
        .iter()
        .find(|(name, _)| name.as_bytes() == value.as_bytes());
    found.map(|&(_, v)| v).ok_or_else(|| {
        let names: Vec<String> = choices
            .iter()
            .map(|(name, _)| repr(OsStr::new(name)))
            .collect();
        format!(
            "invalid choice: {} (choose from {})",
            repr(value),
            names.join(", ")
        )
    })
}

/// Bytes per second: a number with an optional K, M or G suffix (powers of 1024).
pub(crate) fn rate(value: &OsStr) -> Result<u64, String> {
    let invalid = |why: &str| format!("invalid rate {}: {why}", repr(value));
    let t = value
        .to_str()
        .ok_or_else(|| format!("invalid rate value: {}", repr(value)))?
        .trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, 'B'),
    };
    let factor: u64 = match unit {
        'B' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        _ => return Err(invalid("use a number with K, M or G")),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| invalid("use a number with K, M or G"))?;
    n.checked_mul(factor).ok_or_else(|| invalid("too large"))
}

/// A list of networks (`--proxy-protocol-from`, `--ban-allow`): a type of its own, since
/// clap takes an `Option<Vec<_>>` field for a repeatable option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Networks(pub Vec<IpNet>);

/// `--virtual-host`: the hosts given on the command line.
#[derive(Debug, Clone)]
pub struct VirtualHosts(pub Vec<VirtualHostSpec>);

/// `--virtual-host`: `NAME=USERS_FILE[=CERTFILE[=KEYFILE]]`, separated by commas.
fn virtual_hosts(value: &OsStr) -> Result<VirtualHosts, String> {
    let s = value
        .to_str()
        .ok_or_else(|| format!("invalid virtual host list: {}", repr(value)))?;
    s.split(',')
        .map(|one| {
            let quote = || repr(OsStr::new(one.trim()));
            let mut parts = one.trim().split('=');
            let name = parts.next().unwrap_or_default().trim();
            let users_file = parts.next().map(str::trim).unwrap_or_default();
            if name.is_empty() || users_file.is_empty() {
                return Err(format!(
                    "invalid virtual host {}: expected NAME=USERS_FILE[=CERTFILE[=KEYFILE]]",
                    quote()
                ));
            }
            let certfile = parts.next().map(PathBuf::from);
            let keyfile = parts.next().map(PathBuf::from);
            if parts.next().is_some() {
                return Err(format!("invalid virtual host {}: too many '='", quote()));
            }
            Ok(VirtualHostSpec {
                at: "--virtual-host".to_owned(),
                name: name.to_owned(),
                users_file: users_file.into(),
                banner: None,
                certfile,
                keyfile,
            })
        })
        .collect::<Result<_, _>>()
        .map(VirtualHosts)
}

/// `--nat-address-for`: networks and the address announced to their clients.
#[derive(Debug, Clone)]
pub struct NatByNetwork(pub Vec<(IpNet, IpAddr)>);

/// `--nat-address-for`: `CIDR=ADDRESS` pairs, separated by commas.
fn nat_by_network(value: &OsStr) -> Result<NatByNetwork, String> {
    let s = value
        .to_str()
        .ok_or_else(|| format!("invalid network map: {}", repr(value)))?;
    s.split(',')
        .map(|pair| {
            let quote = || repr(OsStr::new(pair.trim()));
            let (net, addr) = pair
                .split_once('=')
                .ok_or_else(|| format!("invalid network map {}: expected CIDR=ADDRESS", quote()))?;
            let net = net
                .trim()
                .parse::<IpNet>()
                .map_err(|e| format!("invalid network in {}: {e}", quote()))?;
            let addr = addr
                .trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("invalid address in {}", quote()))?;
            Ok((net, addr))
        })
        .collect::<Result<_, _>>()
        .map(NatByNetwork)
}

/// `--proxy-protocol-from`, `--ban-allow`: addresses or CIDR networks, separated by commas.
fn networks(value: &OsStr) -> Result<Networks, String> {
    let s = value
        .to_str()
        .ok_or_else(|| format!("invalid address list: {}", repr(value)))?;
    s.split(',')
        .map(|one| {
            one.trim()
                .parse::<IpNet>()
                .map_err(|e| format!("invalid address or network {}: {e}", repr(OsStr::new(one))))
        })
        .collect::<Result<_, _>>()
        .map(Networks)
}

/// Passive ports: `FROM-TO`, 1 <= FROM < TO <= 65535.
fn port_range(value: &OsStr) -> Result<(u16, u16), String> {
    let s = value
        .to_str()
        .ok_or_else(|| format!("invalid range value: {}", repr(value)))?;
    let quote = |s: &str| repr(OsStr::new(s));
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("invalid range {}: expected FROM-TO", quote(s)))?;
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .map_err(|_| format!("invalid port {}", quote(p)))
    };
    let (from, to) = (port(a)?, port(b)?);
    if from == 0 || from >= to {
        return Err(format!(
            "invalid range {}: need 1 <= FROM < TO <= 65535",
            quote(s)
        ));
    }
    Ok((from, to))
}

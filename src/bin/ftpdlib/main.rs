//! `ftpdlib`: the command line of `python -m pyftpdlib` 2.2.0, flag for flag.
//!
//! Run: `cargo run --release -- -w -d /srv/ftp -p 2121`

mod logger;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use ftpdlib::authorizers::{Authorizer, DummyAuthorizer, READ_PERMS, WRITE_PERMS};
use ftpdlib::config::{default_banner, TlsConfig};
use ftpdlib::servers::{raise_open_files_limit, FtpServer};

/// Start a stand alone anonymous FTP server.
#[derive(Parser, Debug)]
#[command(name = "ftpdlib", version, about, disable_version_flag = true)]
struct Cli {
    /// print the version and exit
    #[arg(long, action = clap::ArgAction::Version)]
    version: Option<bool>,
    /// specify the interface to run on (default all interfaces)
    #[arg(short = 'i', long = "interface", value_name = "ADDRESS")]
    interface: Option<IpAddr>,
    /// specify port number to run on (default 2121)
    #[arg(short = 'p', long, value_name = "PORT", default_value_t = 2121)]
    port: u16,
    /// grants write access for logged in user (default read-only)
    #[arg(short = 'w', long)]
    write: bool,
    /// specify the directory to share (default current directory)
    #[arg(short = 'd', long, value_name = "FOLDER")]
    directory: Option<PathBuf>,
    /// the NAT address to use for passive connections
    #[arg(short = 'n', long = "nat-address", value_name = "ADDRESS")]
    nat_address: Option<IpAddr>,
    /// the range of TCP ports to use for passive connections (e.g. -r 8000-9000)
    #[arg(short = 'r', long, value_name = "FROM-TO", value_parser = parse_range)]
    range: Option<(u16, u16)>,
    /// enable DEBUG logging level
    #[arg(short = 'D', long)]
    debug: bool,
    /// specify username to login with (anonymous login will be disabled and password
    /// required if supplied)
    #[arg(short = 'u', long, value_name = "USERNAME")]
    username: Option<String>,
    /// specify a password to login with (username required to be useful)
    #[arg(short = 'P', long, value_name = "PASSWORD")]
    password: Option<String>,
    /// the concurrency model to use
    #[arg(long, value_enum, default_value_t = Concurrency::Async)]
    concurrency: Concurrency,
    /// worker processes (pre-fork) or loop threads (multi-loop); 0 = one per CPU
    #[arg(long, value_name = "N", default_value_t = 0)]
    workers: usize,
    /// whether to enable FTPS
    #[arg(long)]
    tls: bool,
    /// the TLS key file
    #[arg(long, value_name = "KEYFILE")]
    keyfile: Option<PathBuf>,
    /// the TLS cert file
    #[arg(long, value_name = "CERTFILE")]
    certfile: Option<PathBuf>,
    /// require TLS on the control connection
    #[arg(long = "tls-control-required")]
    tls_control_required: bool,
    /// require TLS on the data connection
    #[arg(long = "tls-data-required")]
    tls_data_required: bool,
    /// implicit FTPS: TLS from the first byte (the port-990 convention), PROT P implied
    #[arg(long = "tls-implicit")]
    tls_implicit: bool,
    /// refuse TLS data connections that do not resume the control connection's TLS session
    /// (vsftpd's require_ssl_reuse)
    #[arg(long = "tls-require-reuse")]
    tls_require_reuse: bool,
    /// connection timeout in seconds (default 300)
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    timeout: u64,
    /// the banner sent when a client connects
    #[arg(long, value_name = "BANNER")]
    banner: Option<String>,
    /// allow data connections to / from addresses other than the client's
    #[arg(long = "permit-foreign-addresses")]
    permit_foreign_addresses: bool,
    /// allow active-mode data connections to ports below 1024
    #[arg(long = "permit-privileged-ports")]
    permit_privileged_ports: bool,
    /// the encoding of the control channel (default utf-8)
    #[arg(long, value_name = "ENCODING", default_value = "utf-8")]
    encoding: String,
    /// show times in local time instead of GMT
    #[arg(long = "use-localtime")]
    use_localtime: bool,
    /// disable sendfile(2) for downloads
    #[arg(long = "disable-sendfile")]
    disable_sendfile: bool,
    /// maximum number of simultaneous connections (default 512)
    #[arg(long = "max-cons", value_name = "MAX_CONS", default_value_t = 512)]
    max_cons: usize,
    /// maximum number of connections from the same IP address (default unlimited)
    #[arg(
        long = "max-cons-per-ip",
        value_name = "MAX_CONS_PER_IP",
        default_value_t = 0
    )]
    max_cons_per_ip: usize,
    /// maximum login attempts before disconnecting (default 3)
    #[arg(long = "max-login-attempts", value_name = "N", default_value_t = 3)]
    max_login_attempts: u32,
    /// limit each upload to this many bytes per second (K, M, G suffixes; 0 = no limit)
    #[arg(long = "read-limit", value_name = "BYTES", value_parser = parse_rate, default_value = "0")]
    read_limit: u64,
    /// limit each download to this many bytes per second (K, M, G suffixes; 0 = no limit)
    #[arg(long = "write-limit", value_name = "BYTES", value_parser = parse_rate, default_value = "0")]
    write_limit: u64,
    /// exactly these permission letters (e.g. elr, elradfmwMT) for the -u user or
    /// anonymous, or for every system user with --unix-users; overrides -w
    #[arg(long, value_name = "LETTERS")]
    perm: Option<String>,
    /// serve the virtual users of this file: one name:hash:home:perms per line, the hash
    /// made by --hash-password
    #[arg(long = "users-file", value_name = "PATH")]
    users_file: Option<PathBuf>,
    /// serve the system's accounts (needs root): passwords from the shadow database,
    /// sessions start in the user's home and act as that user
    #[arg(long = "unix-users")]
    unix_users: bool,
    /// read a password from stdin, print its crypt(3) hash (for --users-file) and exit
    #[arg(long = "hash-password")]
    hash_password: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Concurrency {
    Async,
    #[value(name = "multi-thread")]
    MultiThread,
    #[value(name = "multi-proc")]
    MultiProc,
    #[value(name = "pre-fork")]
    PreFork,
    #[value(name = "multi-loop")]
    MultiLoop,
}

/// Bytes per second: a number with an optional K, M or G suffix (powers of 1024).
fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, 'B'),
    };
    let factor: u64 = match unit {
        'B' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        _ => return Err(format!("invalid rate {s:?}: use a number with K, M or G")),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("invalid rate {s:?}: use a number with K, M or G"))?;
    n.checked_mul(factor)
        .ok_or_else(|| format!("invalid rate {s:?}: too large"))
}

fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("invalid range {s:?}: expected FROM-TO"))?;
    let from: u16 = a
        .trim()
        .parse()
        .map_err(|_| format!("invalid port {a:?}"))?;
    let to: u16 = b
        .trim()
        .parse()
        .map_err(|_| format!("invalid port {b:?}"))?;
    if from == 0 || from >= to {
        return Err(format!("invalid range {s:?}: need 1 <= FROM < TO <= 65535"));
    }
    Ok((from, to))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if cli.debug { "debug" } else { "info" };
    // rustls warns about every client that sends an IP address as SNI (lftp does): keep
    // its records to errors unless RUST_LOG asks for them.
    let filter = format!("{level},rustls=error");
    // -D wins over RUST_LOG (pyftpdlib has only the flag); otherwise RUST_LOG may refine.
    logger::init(&filter, !cli.debug);
    let outcome = run(cli);
    log::logger().flush();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ftpdlib: {e}");
            let mut source = std::error::Error::source(&*e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    if cli.hash_password {
        return print_password_hash();
    }
    let tls = tls_config(&cli)?;
    if ftpdlib::proto::Charset::from_name(&cli.encoding).is_none() {
        return Err(format!(
            "--encoding {}: not supported (use utf-8 or latin-1)",
            cli.encoding
        )
        .into());
    }
    let auth = authorizer(&cli)?;
    if let Err(e) = raise_open_files_limit() {
        log::debug!("cannot raise the open files limit: {e}");
    }
    let timeout = (cli.timeout > 0).then(|| Duration::from_secs(cli.timeout));
    let mut server = FtpServer::builder(auth)
        .configure(|c| {
            c.timeout = timeout;
            c.data_timeout = timeout;
            c.banner = cli.banner.clone().unwrap_or_else(default_banner);
            c.masquerade_address = cli.nat_address;
            c.passive_ports = cli.range.map(|(a, b)| a..=b);
            c.permit_foreign_addresses = cli.permit_foreign_addresses;
            c.permit_privileged_ports = cli.permit_privileged_ports;
            c.use_gmt_times = !cli.use_localtime;
            c.use_sendfile = !cli.disable_sendfile;
            c.max_login_attempts = cli.max_login_attempts;
            c.read_limit = cli.read_limit;
            c.write_limit = cli.write_limit;
            c.encoding = cli.encoding.clone();
            c.tls = tls.clone();
        })
        .server_config({
            let mut s = ftpdlib::config::ServerConfig::default();
            s.max_cons = cli.max_cons;
            s.max_cons_per_ip = cli.max_cons_per_ip;
            s.concurrency = match cli.concurrency {
                Concurrency::Async => ftpdlib::config::Concurrency::Async,
                Concurrency::MultiThread => ftpdlib::config::Concurrency::MultiThread,
                Concurrency::MultiProc => ftpdlib::config::Concurrency::MultiProc,
                Concurrency::PreFork => ftpdlib::config::Concurrency::PreFork,
                Concurrency::MultiLoop => ftpdlib::config::Concurrency::MultiLoop,
            };
            s.workers = cli.workers;
            s
        })
        .bind((
            cli.interface.unwrap_or(IpAddr::from([0, 0, 0, 0])),
            cli.port,
        ))?;
    server.serve_forever(true)?;
    Ok(())
}

/// The users to serve: the -u user or anonymous on -d, plus the users file; or the system
/// accounts (--unix-users).
fn authorizer(cli: &Cli) -> Result<Box<dyn Authorizer>, Box<dyn std::error::Error>> {
    let perms = match &cli.perm {
        Some(letters) => letters.clone(),
        None if cli.write => format!("{READ_PERMS}{WRITE_PERMS}"),
        None => READ_PERMS.to_owned(),
    };
    if cli.unix_users {
        return unix_authorizer(cli, perms);
    }
    let directory = match &cli.directory {
        Some(d) => d.clone(),
        None => std::env::current_dir()?,
    };
    let mut auth = DummyAuthorizer::new();
    if let Some(path) = &cli.users_file {
        auth.add_users_file(path)?;
        if cli.username.is_none() && cli.perm.is_some() {
            return Err(
                "--perm applies to the -u user; the users file gives each user's \
                        permissions"
                    .into(),
            );
        }
    }
    match (&cli.username, &cli.password) {
        (Some(user), Some(pass)) => auth.add_user(user, pass, &directory, &perms, None, None)?,
        (Some(_), None) => {
            return Err("if username (-u) is supplied, password ('-P') is required".into())
        }
        // With a users file, anonymous is there only if the file lists it.
        (None, _) if cli.users_file.is_some() => {}
        (None, _) => auth.add_anonymous(&directory, &perms, None, None)?,
    }
    Ok(Box::new(auth))
}

#[cfg(target_os = "linux")]
fn unix_authorizer(
    cli: &Cli,
    perms: String,
) -> Result<Box<dyn Authorizer>, Box<dyn std::error::Error>> {
    use ftpdlib::authorizers::{AuthorizerError, UnixAuthorizer, UnixOptions};
    let conflicting = [
        (cli.directory.is_some(), "-d"),
        (cli.username.is_some(), "-u"),
        (cli.users_file.is_some(), "--users-file"),
    ];
    if let Some((_, flag)) = conflicting.iter().find(|(set, _)| *set) {
        return Err(format!(
            "--unix-users cannot be combined with {flag} (system users have their own homes)"
        )
        .into());
    }
    let mut opts = UnixOptions::default();
    opts.global_perm = perms;
    match UnixAuthorizer::new(opts) {
        Ok(auth) => Ok(Box::new(auth)),
        Err(AuthorizerError::NotRoot) => Err(
            "--unix-users: super user privileges are required (run as root: the server \
             reads /etc/shadow and acts as each user)"
                .into(),
        ),
        Err(e) => Err(format!("--unix-users: {e}").into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn unix_authorizer(
    _cli: &Cli,
    _perms: String,
) -> Result<Box<dyn Authorizer>, Box<dyn std::error::Error>> {
    Err("--unix-users is only available on Linux".into())
}

/// `--hash-password`: one line from stdin (without its line ending) → its crypt(3) hash.
fn print_password_hash() -> Result<(), Box<dyn std::error::Error>> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    if password.is_empty() {
        return Err("--hash-password: no password on stdin".into());
    }
    println!("{}", ftpdlib::authorizers::hash_password(password)?);
    Ok(())
}

/// The FTPS options from `--tls` and its companions (pyftpdlib's rules: `--tls` needs a
/// certificate, the files need `--tls`).
fn tls_config(cli: &Cli) -> Result<Option<TlsConfig>, Box<dyn std::error::Error>> {
    if !cli.tls {
        if cli.certfile.is_some() || cli.keyfile.is_some() {
            return Err("--keyfile and --certfile args requires --tls arg".into());
        }
        if cli.tls_control_required
            || cli.tls_data_required
            || cli.tls_implicit
            || cli.tls_require_reuse
        {
            return Err(
                "--tls-control-required, --tls-data-required, --tls-implicit and \
                        --tls-require-reuse require --tls"
                    .into(),
            );
        }
        return Ok(None);
    }
    let Some(certfile) = &cli.certfile else {
        return Err(
            "--tls requires --certfile (and --keyfile unless the certificate file \
                    also holds the key)"
                .into(),
        );
    };
    let mut tls = TlsConfig::from_pem_files(certfile, cli.keyfile.as_deref())?;
    tls.control_required = cli.tls_control_required;
    tls.data_required = cli.tls_data_required;
    tls.implicit = cli.tls_implicit;
    tls.require_session_reuse = cli.tls_require_reuse;
    log::debug!("SSL certfile: '{}'", certfile.display());
    log::debug!(
        "SSL keyfile: '{}'",
        cli.keyfile.as_deref().unwrap_or(certfile).display()
    );
    Ok(Some(tls))
}

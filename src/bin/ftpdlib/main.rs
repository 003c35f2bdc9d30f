//! `ftpdlib`: the command line of `python -m pyftpdlib` 2.2.0, flag for flag.
//!
//! Run: `cargo run --release -- -w -d /srv/ftp -p 2121`

// The process starts in `main` below, a C entry point, rather than through Rust's runtime
// start-up: see there why. (Not in the unit tests' build, whose `main` is the harness.)
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code))]

mod cli;
mod config_file;
mod help;
mod logger;
mod packaging;
mod parse;
mod reload;
mod syslog;
mod xferlog;

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use ftpdlib::authorizers::{Authorizer, DummyAuthorizer, READ_PERMS, WRITE_PERMS};
use ftpdlib::config::TlsConfig;
use ftpdlib::servers::{raise_open_files_limit, FtpServer, VirtualHost};

use cli::Cli;

/// The C `main`, called by libc's start-up. Rust's own start-up (what runs before a Rust
/// `fn main`) finds the main thread's stack guard with pthread_getattr_np(3), which reads
/// /proc/self/maps through stdio and sscanf: that alone makes the process map some
/// 200-400 KiB of libc pages nothing else uses, a sixth of the server's start-up memory.
/// The parts of that start-up a server needs are done here; what is left out is the
/// "has overflowed its stack" message (a stack overflow is still stopped by the guard
/// page, with a plain SIGSEGV). Arguments still come from `std::env::args_os`, which glibc
/// hands to the standard library before `main`.
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    runtime_start();
    let code = ftpdlib_main();
    let _ = std::io::Write::flush(&mut std::io::stdout());
    if code == ExitCode::SUCCESS {
        0
    } else {
        2
    }
}

// The unwinder (panics) linked in from GCC's static libgcc_eh instead of the shared
// libgcc_s: one shared library less to load and relocate at every start (some 100 KiB of
// resident pages). Only the binary does this; the library leaves the choice to its user.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[link(name = "gcc_eh", kind = "static", modifiers = "-bundle")]
extern "C" {}

/// What Rust's runtime start-up does that the server relies on.
fn runtime_start() {
    // A write to a socket the peer has closed must fail with EPIPE, not end the process.
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // Descriptors 0-2 must be open: otherwise the first socket accepted could become
    // standard error and receive the log.
    for fd in 0..=2 {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        let closed = unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF);
        if closed {
            // SAFETY: the path is a NUL-terminated literal; open returns the lowest free
            // descriptor, which is `fd`, and it stays open for the life of the process.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}

fn ftpdlib_main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let cli = match parse::parse(&args) {
        Ok(cli) => cli,
        Err(exit) => return parse::exit(exit),
    };
    let level = if cli.debug { "debug" } else { "info" };
    // rustls warns about every client that sends an IP address as SNI (lftp does): keep
    // its records to errors unless RUST_LOG asks for them.
    let filter = format!("{level},rustls=error");
    // -D wins over RUST_LOG (pyftpdlib has only the flag); otherwise RUST_LOG may refine.
    let output = match log_output(&cli) {
        Ok(output) => output,
        Err(e) => {
            eprintln!("ftpdlib: {e}");
            return ExitCode::from(2);
        }
    };
    logger::init(&filter, !cli.debug, output, cli.log_format);
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

/// Where the log goes: `--syslog`, `--log-file` or standard error.
fn log_output(cli: &Cli) -> Result<logger::Output, String> {
    let syslog = cli
        .syslog_socket
        .as_deref()
        .or(cli.syslog.then_some(std::path::Path::new("/dev/log")));
    match (syslog, &cli.log_file) {
        (Some(_), Some(_)) => Err("--syslog and --log-file: choose one".into()),
        (Some(path), None) => syslog::Syslog::connect(path)
            .map(logger::Output::Syslog)
            .map_err(|e| format!("--syslog {}: {e}", path.display())),
        (None, Some(path)) => logger::AppendFile::open(path)
            .map(logger::Output::File)
            .map_err(|e| format!("--log-file {}: {e}", path.display())),
        (None, None) => Ok(logger::Output::Stderr),
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    if cli.hash_password {
        return print_password_hash();
    }
    if let Some(text) = packaging::requested(&cli) {
        return Ok(packaging::print(&text)?);
    }
    // Before anything listens: a SIGTERM during start-up (a service manager's stop, a
    // test's) then stops the server cleanly as soon as it serves, its log written.
    ftpdlib::servers::install_stop_signals();
    // Early, while the process has one thread: it removes the LISTEN_* variables. Several
    // listeners come from a hand-over by a multi-loop server (one per loop).
    let inherited = ftpdlib::systemd::activated_listeners()?;
    let tls = tls_config(&cli)?;
    if let Err(e) = ftpdlib::proto::Charset::from_name(&cli.encoding) {
        return Err(format!("--encoding {}: {e}", cli.encoding).into());
    }
    let auth = authorizer(&cli)?;
    if let Err(e) = raise_open_files_limit() {
        log::debug!("cannot raise the open files limit: {e}");
    }
    let handler = reload::handler_config(&cli, tls);
    let data_timeout = handler.data_timeout;
    let builder = FtpServer::builder(auth)
        .handler_config(handler)
        // SIGHUP: the same arguments read again, with the files they name.
        .on_reload(reload::hook(std::env::args_os().skip(1).collect(), &cli))
        .server_config({
            let mut s = ftpdlib::config::ServerConfig::default();
            s.max_cons = cli.max_cons;
            s.max_cons_per_ip = cli.max_cons_per_ip;
            s.concurrency = cli.concurrency;
            s.workers = cli.workers;
            s.backlog = i32::from(cli.backlog);
            s.metrics = cli.metrics;
            s
        })
        // Only when started by systemd as a Type=notify service (NOTIFY_SOCKET set).
        .notify_systemd(true)
        // SIGUSR2: a new copy of the binary takes the listening sockets over.
        .hand_over_on_sigusr2(true);
    let mut builder = builder;
    for host in virtual_hosts(&cli)? {
        builder = builder.virtual_host(host);
    }
    let builder = match &cli.xferlog {
        Some(path) => builder.events(
            xferlog::XferLog::open(path)
                .map_err(|e| format!("--xferlog {}: {e}", path.display()))?,
        ),
        None => builder,
    };
    let mut server = if inherited.is_empty() {
        builder.bind((
            // pyftpdlib binds every interface for an empty -i, as for none.
            match cli.interface.as_deref() {
                None | Some("") => "0.0.0.0",
                Some(host) => host,
            },
            cli.port,
        ))?
    } else {
        // The service manager (the socket unit's ListenStream=) or the process that
        // handed its sockets over chose the address.
        log::info!("socket activation: -i / -p are ignored");
        builder.listeners(inherited)?
    };
    log_served(&cli);
    sweep_upload_temporaries(&cli, data_timeout);
    server.serve_forever(true)?;
    Ok(())
}

/// Removes, on a thread of its own while the server already serves, the upload
/// temporaries that a killed process left in the served directory and the homes of the
/// config file's users (not the system users' homes of `--unix-users`).
fn sweep_upload_temporaries(cli: &Cli, data_timeout: Option<Duration>) {
    if cli.unix_users {
        return;
    }
    let mut roots: Vec<std::path::PathBuf> = cli.users.iter().map(|u| u.home.clone()).collect();
    if cli.username.is_some() || (cli.users_file.is_none() && cli.users.is_empty()) {
        match &cli.directory {
            Some(d) => roots.push(d.clone()),
            None => roots.extend(std::env::current_dir().ok()),
        }
    }
    roots.sort();
    roots.dedup();
    // The forking models fork while the sweep may run: a child forked while the thread
    // held the logger's lock would never log again, so that sweep stays silent.
    let forking = matches!(
        cli.concurrency,
        ftpdlib::config::Concurrency::MultiProc | ftpdlib::config::Concurrency::PreFork
    );
    if let Err(e) = ftpdlib::handlers::sweep_stale_uploads(roots, data_timeout, !forking) {
        log::warn!("cannot sweep stale upload temporaries: {e}");
    }
}

/// The users to serve: the -u user or anonymous on -d, plus the users file; or the system
/// accounts (--unix-users).
fn authorizer(cli: &Cli) -> Result<Box<dyn Authorizer>, Box<dyn std::error::Error>> {
    let perms = perms(cli);
    if cli.unix_users {
        return unix_authorizer(cli, perms);
    }
    let directory = match &cli.directory {
        Some(d) => d.clone(),
        None => std::env::current_dir()?,
    };
    let mut auth = DummyAuthorizer::new();
    auth.login_by_certificate(cli.tls_client_cert_login);
    if let Some(path) = &cli.users_file {
        auth.add_users_file(path)?;
    }
    for user in &cli.users {
        add_file_user(&mut auth, user)?;
        if user.read_limit.is_some() || user.write_limit.is_some() {
            let caps = ftpdlib::authorizers::UserBandwidth {
                read_limit: user.read_limit.unwrap_or(cli.user_read_limit),
                write_limit: user.write_limit.unwrap_or(cli.user_write_limit),
            };
            auth.set_bandwidth(&user.name, caps);
        }
    }
    let listed = cli.users_file.is_some() || !cli.users.is_empty();
    if listed && cli.username.is_none() && cli.perm.is_some() {
        return Err(
            "--perm applies to the -u user; the users file and the config file's [[users]] \
             give each user's permissions"
                .into(),
        );
    }
    let quota = ftpdlib::quotas::Quota {
        bytes: cli.quota_bytes,
        files: cli.quota_files,
    };
    if quota.is_limited() && cli.username.is_none() {
        return Err(
            "--quota-bytes and --quota-files apply to the -u user; the users file and \
                    the config file's [[users]] give each user's quota"
                .into(),
        );
    }
    match (&cli.username, &cli.password) {
        (Some(user), Some(pass)) => {
            auth.add_user(user, pass, &directory, &perms, None, None)?;
            auth.set_quota(user, Some(quota))?;
        }
        (Some(_), None) => {
            return Err("if username (-u) is supplied, password ('-P') is required".into())
        }
        // With a users file or [[users]], anonymous is there only if listed.
        (None, _) if listed => {}
        (None, _) => auth.add_anonymous(&directory, &perms, None, None)?,
    }
    Ok(Box::new(auth))
}

/// The virtual hosts of `--virtual-host` and the config file's `[[virtual-hosts]]`, each
/// with the users of its users file.
fn virtual_hosts(cli: &Cli) -> Result<Vec<VirtualHost>, Box<dyn std::error::Error>> {
    let flag = cli.virtual_host.iter().flat_map(|h| h.0.iter());
    let mut hosts = Vec::new();
    for spec in flag.chain(&cli.file_virtual_hosts) {
        let mut users = DummyAuthorizer::new();
        users
            .add_users_file(&spec.users_file)
            .map_err(|e| format!("{}: virtual host '{}': {e}", spec.at, spec.name))?;
        let mut host = VirtualHost::new(&spec.name, users);
        if let Some(banner) = &spec.banner {
            host = host.banner(banner.clone());
        }
        if let Some(certfile) = &spec.certfile {
            if !cli.tls {
                return Err(format!(
                    "{}: virtual host '{}': a certificate needs --tls",
                    spec.at, spec.name
                )
                .into());
            }
            host = host
                .certificate(certfile, spec.keyfile.as_deref())
                .map_err(|e| format!("{}: virtual host '{}': {e}", spec.at, spec.name))?;
        }
        log::info!(
            "virtual host {}: the users of {}",
            host.name(),
            spec.users_file.display()
        );
        hosts.push(host);
    }
    Ok(hosts)
}

/// The permission letters of the -u user or anonymous (and of --unix-users).
fn perms(cli: &Cli) -> String {
    match &cli.perm {
        Some(letters) => letters.clone(),
        None if cli.write => format!("{READ_PERMS}{WRITE_PERMS}"),
        None => READ_PERMS.to_owned(),
    }
}

/// Says at start-up what is served, to whom, and with which rights (the listen address
/// and the passive ports have lines of their own).
fn log_served(cli: &Cli) {
    let perms = perms(cli);
    let access = if perms.chars().any(|c| WRITE_PERMS.contains(c)) {
        format!("writable (perm {perms})")
    } else {
        format!("read-only (perm {perms})")
    };
    if cli.unix_users {
        log::info!("serving the system users' homes, {access}");
    } else {
        let directory = match &cli.directory {
            Some(d) => d.display().to_string(),
            None => {
                std::env::current_dir().map_or_else(|_| ".".into(), |d| d.display().to_string())
            }
        };
        if let Some(path) = &cli.users_file {
            log::info!("serving the users of {}", path.display());
        }
        if !cli.users.is_empty() {
            log::info!("serving {} user(s) of the config file", cli.users.len());
        }
        match &cli.username {
            Some(user) => log::info!("serving {directory} to user '{user}', {access}"),
            None if cli.users_file.is_none() && cli.users.is_empty() => {
                log::info!("serving {directory} to anonymous, {access}")
            }
            None => {}
        }
    }
    if cli.tls {
        let mode = if cli.tls_implicit {
            "implicit"
        } else {
            "explicit (AUTH TLS)"
        };
        log::info!(
            "FTPS: {mode}, TLS required for control: {}, for data: {}",
            cli.tls_control_required || cli.tls_implicit,
            cli.tls_data_required || cli.tls_implicit
        );
    }
}

/// Adds a `[[users]]` user of the config file, and its overrides; errors name the line.
fn add_file_user(
    auth: &mut DummyAuthorizer,
    user: &config_file::FileUser,
) -> Result<(), Box<dyn std::error::Error>> {
    use config_file::Password;
    use ftpdlib::authorizers::AuthorizerError;
    let (name, home, perm) = (user.name.as_str(), &user.home, user.perm.as_str());
    let (login, quit) = (user.msg_login.as_deref(), user.msg_quit.as_deref());
    let added = match &user.password {
        Password::Hash(hash) => auth.add_user_hashed(name, hash, home, perm, login, quit),
        Password::Plain(plain) => auth.add_user(name, plain, home, perm, login, quit),
        Password::Anonymous => auth.add_anonymous(home, perm, login, quit),
    };
    let added = added.and_then(|()| auth.set_quota(name, Some(user.quota)));
    added.map_err(|e| match e {
        AuthorizerError::BadHash(_) => format!(
            "{}: user '{name}': the password-hash is not a crypt(3) string this system \
             supports (make one with ftpdlib --hash-password)",
            user.at
        ),
        e => format!("{}: user '{name}': {e}", user.at),
    })?;
    for o in &user.overrides {
        // A relative directory is below the home.
        let dir = home.join(&o.directory);
        auth.override_perm(name, &dir, &o.perm, o.recursive)
            .map_err(|e| format!("{}: user '{name}': override {}: {e}", o.at, dir.display()))?;
    }
    Ok(())
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
        (!cli.users.is_empty(), "[[users]]"),
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
            || cli.tls_client_ca.is_some()
            || cli.tls_client_cert_login
        {
            return Err(
                "--tls-control-required, --tls-data-required, --tls-implicit, \
                        --tls-require-reuse, --tls-client-ca and --tls-client-cert-login \
                        require --tls"
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
    if cli.tls_client_cert_login && cli.tls_client_ca.is_none() {
        return Err("--tls-client-cert-login requires --tls-client-ca".into());
    }
    let mut tls = match &cli.tls_client_ca {
        Some(ca) => TlsConfig::from_pem_files_with_client_ca(certfile, cli.keyfile.as_deref(), ca)?,
        None => TlsConfig::from_pem_files(certfile, cli.keyfile.as_deref())?,
    };
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

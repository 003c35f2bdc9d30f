//! SIGHUP: the command line's settings read again (the environment, the config file with
//! its `[[users]]`, the users file, the FTPS certificate and key), all or nothing. What
//! a running server can take goes to the sessions started from then on; what only a
//! restart can change (the listen address, the concurrency model, the limits, where the
//! log goes) keeps its value, with a line saying so. Also the one place the handler
//! options are made from the command line, at start-up and at a reload alike.

use std::ffi::OsString;
use std::time::Duration;

use ftpdlib::config::{
    default_banner, BanPolicy, DataConnections, HandlerConfig, ProxyProtocol, TlsConfig,
};
use ftpdlib::servers::{Reload, ReloadError, ReloadRequest};

use crate::cli::Cli;
use crate::parse::{self, Exit};

/// The reload hook for `ServerBuilder::on_reload`: parses `args` again as at start-up,
/// where `started` is what they gave then.
pub fn hook(
    args: Vec<OsString>,
    started: &Cli,
) -> impl Fn(&ReloadRequest) -> Result<Reload, ReloadError> + Send + Sync + 'static {
    let restart_only = RestartOnly::of(started);
    move |request| {
        let cli = parse::parse(&args).map_err(|exit| match exit {
            Exit::Error(message) | Exit::Fail(message) | Exit::Print(message) => message,
        })?;
        let tls = crate::tls_config(&cli).map_err(|e| e.to_string())?;
        if let Err(e) = ftpdlib::proto::Charset::from_name(&cli.encoding) {
            return Err(format!("--encoding {}: {e}", cli.encoding).into());
        }
        let authorizer = crate::authorizer(&cli).map_err(|e| e.to_string())?;
        // A pre-fork worker reads after the supervisor, which said it all.
        if request.pre_fork_worker().is_none() {
            for (option, kept) in restart_only.changed_in(&RestartOnly::of(&cli)) {
                log::warn!("reload: {option} needs a restart; keeping {kept}");
            }
        }
        Ok(Reload::new()
            .handler_config(handler_config(&cli, tls))
            .authorizer(authorizer))
    }
}

/// The session options the command line (and the config file) set.
pub fn handler_config(cli: &Cli, tls: Option<TlsConfig>) -> HandlerConfig {
    let mut c = HandlerConfig::default();
    let timeout = (cli.timeout > 0).then(|| Duration::from_secs(cli.timeout));
    c.timeout = timeout;
    // --timeout sets both idle timeouts, as pyftpdlib's does; --data-timeout overrides it
    // for data connections.
    c.data_timeout = match cli.data_timeout {
        Some(0) => None,
        Some(secs) => Some(Duration::from_secs(secs)),
        None => timeout,
    };
    c.passive_timeout = Duration::from_secs(cli.passive_timeout);
    c.active_timeout = Duration::from_secs(cli.active_timeout);
    c.auth_failed_timeout = Duration::from_secs(cli.auth_failed_timeout);
    c.auth_workers = cli.auth_workers;
    if let Some(prefix) = &cli.log_prefix {
        c.log_prefix = prefix.clone();
    }
    c.banner = cli.banner.clone().unwrap_or_else(default_banner);
    c.masquerade_address = cli.nat_address;
    if let Some(map) = &cli.nat_address_for {
        c.masquerade_by_network = map.0.clone();
    }
    c.data_connections = if cli.passive_only {
        DataConnections::PassiveOnly
    } else if cli.active_only {
        DataConnections::ActiveOnly
    } else {
        DataConnections::Both
    };
    c.passive_ports = cli.range.map(|(a, b)| a..=b);
    c.permit_foreign_addresses = cli.permit_foreign_addresses;
    c.permit_privileged_ports = cli.permit_privileged_ports;
    c.use_gmt_times = !cli.use_localtime;
    c.use_sendfile = !cli.disable_sendfile;
    c.list_shows_hidden = cli.list_all;
    c.atomic_uploads = cli.atomic_uploads;
    c.fsync_uploads = cli.fsync_uploads;
    c.site_utime = cli.site_utime;
    c.site_symlink = cli.site_symlink;
    c.max_login_attempts = cli.max_login_attempts;
    if cli.ban_after > 0 {
        let mut ban = BanPolicy::new(cli.ban_after);
        ban.window = Duration::from_secs(cli.ban_window);
        ban.ban_time = Duration::from_secs(cli.ban_time);
        ban.allow = cli.ban_allow.clone().map(|a| a.0).unwrap_or_default();
        c.ban = Some(ban);
    }
    c.read_limit = cli.read_limit;
    c.write_limit = cli.write_limit;
    c.server_read_limit = cli.server_read_limit;
    c.server_write_limit = cli.server_write_limit;
    c.user_read_limit = cli.user_read_limit;
    c.user_write_limit = cli.user_write_limit;
    c.encoding = cli.encoding.clone();
    c.tls = tls;
    c.proxy_protocol = cli
        .proxy_protocol_from
        .clone()
        .map(|p| ProxyProtocol::new(p.0));
    c
}

/// The options a running server cannot change, as text (for the log line).
#[derive(PartialEq, Eq)]
struct RestartOnly {
    values: [(&'static str, String); 14],
}

impl RestartOnly {
    fn of(cli: &Cli) -> RestartOnly {
        let path = |p: &Option<std::path::PathBuf>| {
            p.as_ref()
                .map_or_else(|| "none".to_owned(), |p| p.display().to_string())
        };
        RestartOnly {
            values: [
                (
                    "--interface",
                    cli.interface.clone().unwrap_or_else(|| "all".into()),
                ),
                ("--port", cli.port.to_string()),
                ("--concurrency", cli.concurrency.name().to_owned()),
                ("--workers", cli.workers.to_string()),
                ("--max-cons", cli.max_cons.to_string()),
                ("--max-cons-per-ip", cli.max_cons_per_ip.to_string()),
                ("--backlog", cli.backlog.to_string()),
                ("--log-file", path(&cli.log_file)),
                (
                    "--log-format",
                    format!("{:?}", cli.log_format).to_lowercase(),
                ),
                (
                    "--syslog",
                    match (&cli.syslog_socket, cli.syslog) {
                        (Some(p), _) => p.display().to_string(),
                        (None, true) => "/dev/log".to_owned(),
                        (None, false) => "off".to_owned(),
                    },
                ),
                ("--xferlog", path(&cli.xferlog)),
                ("--debug", cli.debug.to_string()),
                (
                    "--metrics",
                    cli.metrics
                        .map_or_else(|| "none".to_owned(), |a| a.to_string()),
                ),
                // The sites, their users files and certificates are read at start-up.
                ("--virtual-host / [[virtual-hosts]]", {
                    let hosts = cli.virtual_host.iter().flat_map(|h| h.0.iter());
                    let all: Vec<String> = hosts
                        .chain(&cli.file_virtual_hosts)
                        .map(|h| format!("{}={}", h.name, h.users_file.display()))
                        .collect();
                    if all.is_empty() {
                        "none".to_owned()
                    } else {
                        all.join(",")
                    }
                }),
            ],
        }
    }

    /// The options whose value differs in `new`, each with the value kept.
    fn changed_in<'a>(&'a self, new: &'a RestartOnly) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.values
            .iter()
            .zip(&new.values)
            .filter(|(old, new)| old.1 != new.1)
            .map(|(old, _)| (old.0, old.1.as_str()))
    }
}

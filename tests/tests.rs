//! Integration tests of ftpdlib over real sockets: the server runs in this process on
//! `127.0.0.1:0` (or as the built binary on a free ephemeral port) and is driven by a
//! blocking `std::net` client, curl, lftp and Python's ftplib. One binary: the modules
//! live in `tests/it/`.

mod util;

#[path = "it/atomic_uploads.rs"]
mod atomic_uploads;
#[path = "it/authz.rs"]
mod authz;
#[path = "it/bans.rs"]
mod bans;
#[path = "it/checksums.rs"]
mod checksums;
#[path = "it/cli.rs"]
mod cli;
#[path = "it/cli_config.rs"]
mod cli_config;
#[path = "it/cli_flags.rs"]
mod cli_flags;
#[path = "it/client_certs.rs"]
mod client_certs;
#[path = "it/clients.rs"]
mod clients;
#[path = "it/commands.rs"]
mod commands;
#[path = "it/curl.rs"]
mod curl;
#[path = "it/demos.rs"]
mod demos;
#[path = "it/differential.rs"]
mod differential;
#[cfg(feature = "encodings")]
#[path = "it/encodings.rs"]
mod encodings;
#[path = "it/events.rs"]
mod events;
#[path = "it/faults.rs"]
mod faults;
#[path = "it/ftplib.rs"]
mod ftplib;
#[path = "it/handover.rs"]
mod handover;
#[path = "it/haproxy.rs"]
mod haproxy;
#[path = "it/host_loop.rs"]
mod host_loop;
#[path = "it/hostile.rs"]
mod hostile;
#[path = "it/lftp.rs"]
mod lftp;
#[path = "it/limits.rs"]
mod limits;
#[path = "it/log_file.rs"]
mod log_file;
#[path = "it/logging.rs"]
mod logging;
#[path = "it/login.rs"]
mod login;
#[path = "it/memory_fs.rs"]
mod memory_fs;
#[path = "it/metrics.rs"]
mod metrics;
#[path = "it/models.rs"]
mod models;
#[path = "it/packaging.rs"]
mod packaging;
#[path = "it/paths.rs"]
mod paths;
#[path = "it/protections.rs"]
mod protections;
#[path = "it/proxy.rs"]
mod proxy;
#[path = "it/quotas.rs"]
mod quotas;
#[path = "it/reload.rs"]
mod reload;
#[path = "it/resets.rs"]
mod resets;
#[path = "it/sessions.rs"]
mod sessions;
#[path = "it/site_misc.rs"]
mod site_misc;
#[path = "it/slow_fs.rs"]
mod slow_fs;
#[path = "it/symlink_race.rs"]
mod symlink_race;
#[path = "it/systemd.rs"]
mod systemd;
#[path = "it/throttle.rs"]
mod throttle;
#[path = "it/tls.rs"]
mod tls;
#[path = "it/transfers.rs"]
mod transfers;
#[path = "it/unix_users.rs"]
mod unix_users;
#[path = "it/uploads.rs"]
mod uploads;
#[path = "it/virtual_hosts.rs"]
mod virtual_hosts;
#[path = "it/workers.rs"]
mod workers;

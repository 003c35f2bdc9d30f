//! The guide: how to run, embed, configure and measure ftpdlib, one page per subject.
//!
//! These pages are the Markdown files of the repository's `docs/` folder; the README gives
//! the short version.
//!
//! - [`features`]: what works, and for whom it is made.
//! - [`command_line`]: the `ftpdlib` binary's flags, parsing and exit status.
//! - [`embedding`]: the server inside a program: starting, stopping, logging, demos.
//! - [`options`]: every option of the server and its sessions, and the callbacks.
//! - [`limits`]: what bounds sessions, logins, time, input, memory and open files.
//! - [`concurrency`]: the concurrency models and what each costs.
//! - [`authorizers`]: virtual users, hashed passwords, rights, system users.
//! - [`users_file`]: the users file.
//! - [`filesystems`]: a filesystem of your own, and one in memory.
//! - [`ftps`]: FTP over TLS.
//! - [`proxy_protocol`]: behind a load balancer, with the PROXY protocol.
//! - [`quotas`]: per-user limits on bytes and files, `SITE QUOTA`.
//! - [`virtual_hosts`]: several sites on one address (RFC 7151 `HOST`, TLS SNI).
//! - [`deployment`]: several instances behind HAProxy over shared storage.
//! - [`commands`]: the command table, and commands of your own.
//! - [`throttling`]: bandwidth limits per transfer, and caps per user and per server.
//! - [`logging`]: what is logged, at which level, and how.
//! - [`hostile_input`]: what a misbehaving client gets.
//! - [`systemd`]: the units, socket activation, notifications, the watchdog, restarts
//!   that drop nobody (SIGUSR2).
//! - [`metrics`]: the Prometheus metrics endpoint, every metric, its cost.
//! - [`performance`]: measurements against pyftpdlib and other servers, and what is behind
//!   them.
//! - [`differences`]: where ftpdlib differs from pyftpdlib 2.2.0.
//! - [`layout`]: the repository's layout, and the tests.

// Links between pages: each page ends with `[name.md]: name.md` definitions, which work
// where the Markdown files are read as files. Rustdoc takes the first definition of a
// label, so the ones below, placed before each page, make the same links point at the
// modules here.
macro_rules! links {
    () => {
        "[authorizers.md]: crate::guide::authorizers\n\
         [command-line.md]: crate::guide::command_line\n\
         [commands.md]: crate::guide::commands\n\
         [concurrency.md]: crate::guide::concurrency\n\
         [deployment.md]: crate::guide::deployment\n\
         [differences.md]: crate::guide::differences\n\
         [embedding.md]: crate::guide::embedding\n\
         [features.md]: crate::guide::features\n\
         [filesystems.md]: crate::guide::filesystems\n\
         [ftps.md]: crate::guide::ftps\n\
         [hostile-input.md]: crate::guide::hostile_input\n\
         [layout.md]: crate::guide::layout\n\
         [limits.md]: crate::guide::limits\n\
         [logging.md]: crate::guide::logging\n\
         [metrics.md]: crate::guide::metrics\n\
         [options.md]: crate::guide::options\n\
         [performance.md]: crate::guide::performance\n\
         [proxy-protocol.md]: crate::guide::proxy_protocol\n\
         [quotas.md]: crate::guide::quotas\n\
         [systemd.md]: crate::guide::systemd\n\
         [throttling.md]: crate::guide::throttling\n\
         [users-file.md]: crate::guide::users_file\n\
         [virtual-hosts.md]: crate::guide::virtual_hosts\n\n"
    };
}

#[doc = links!()]
#[doc = include_str!("../docs/features.md")]
pub mod features {}

#[doc = links!()]
#[doc = include_str!("../docs/command-line.md")]
pub mod command_line {}

#[doc = links!()]
#[doc = include_str!("../docs/embedding.md")]
pub mod embedding {}

#[doc = links!()]
#[doc = include_str!("../docs/options.md")]
pub mod options {}

#[doc = links!()]
#[doc = include_str!("../docs/limits.md")]
pub mod limits {}

#[doc = links!()]
#[doc = include_str!("../docs/concurrency.md")]
pub mod concurrency {}

#[doc = links!()]
#[doc = include_str!("../docs/authorizers.md")]
pub mod authorizers {}

#[doc = links!()]
#[doc = include_str!("../docs/users-file.md")]
pub mod users_file {}

#[doc = links!()]
#[doc = include_str!("../docs/filesystems.md")]
pub mod filesystems {}

#[doc = links!()]
#[doc = include_str!("../docs/ftps.md")]
pub mod ftps {}

#[doc = links!()]
#[doc = include_str!("../docs/proxy-protocol.md")]
pub mod proxy_protocol {}

#[doc = links!()]
#[doc = include_str!("../docs/quotas.md")]
pub mod quotas {}

#[doc = links!()]
#[doc = include_str!("../docs/virtual-hosts.md")]
pub mod virtual_hosts {}
#[doc = include_str!("../docs/deployment.md")]
pub mod deployment {}

#[doc = links!()]
#[doc = include_str!("../docs/commands.md")]
pub mod commands {}

#[doc = links!()]
#[doc = include_str!("../docs/throttling.md")]
pub mod throttling {}

#[doc = links!()]
#[doc = include_str!("../docs/logging.md")]
pub mod logging {}

#[doc = links!()]
#[doc = include_str!("../docs/hostile-input.md")]
pub mod hostile_input {}

#[doc = links!()]
#[doc = include_str!("../docs/systemd.md")]
pub mod systemd {}

#[doc = links!()]
#[doc = include_str!("../docs/metrics.md")]
pub mod metrics {}

#[doc = links!()]
#[doc = include_str!("../docs/performance.md")]
pub mod performance {}

#[doc = links!()]
#[doc = include_str!("../docs/differences.md")]
pub mod differences {}

#[doc = links!()]
#[doc = include_str!("../docs/layout.md")]
pub mod layout {}

// The README's example is compiled with the doctests, so that it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

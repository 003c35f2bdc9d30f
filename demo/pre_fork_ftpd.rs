//! Run: `cargo run --example pre_fork_ftpd -- [DIR]`
//!
//! The pre-fork concurrency model (`ftpdlib --concurrency pre-fork`) serving DIR
//! (default: the current directory) to user / 12345 on 127.0.0.1:2121.
//!
//! Four worker processes, forked at start, each run one loop on the shared listener; a
//! worker that dies is replaced and its sessions no longer count against the limits,
//! which are exact across workers. Pick it to use every core with process isolation
//! between workers.

use std::path::PathBuf;

use ftpdlib::authorizers::DummyAuthorizer;
use ftpdlib::config::{Concurrency, ServerConfig};
use ftpdlib::servers::FtpServer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let dir = match std::env::args_os().nth(1) {
        Some(d) => PathBuf::from(d),
        None => std::env::current_dir()?,
    };
    let mut authorizer = DummyAuthorizer::new();
    authorizer.add_user("user", "12345", &dir, "elradfmwMT", None, None)?;

    let mut limits = ServerConfig::default();
    limits.concurrency = Concurrency::PreFork;
    limits.workers = 4;
    limits.max_cons = 256;
    limits.max_cons_per_ip = 5;

    // 127.0.0.1:2121, or FTPDLIB_DEMO_ADDR (the tests run every demo on a free port).
    let addr = std::env::var("FTPDLIB_DEMO_ADDR").unwrap_or_else(|_| "127.0.0.1:2121".into());
    let mut server = FtpServer::builder(authorizer)
        .server_config(limits)
        .bind(addr.as_str())?;
    // Ctrl-C stops gracefully (running transfers finish); a second one at once.
    server.serve_forever(true)?;
    Ok(())
}

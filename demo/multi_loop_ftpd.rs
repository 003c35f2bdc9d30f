//! Run: `cargo run --example multi_loop_ftpd -- [DIR]`
//!
//! The multi-loop concurrency model (`ftpdlib --concurrency multi-loop`) serving DIR
//! (default: the current directory) to user / 12345 on 127.0.0.1:2121.
//!
//! One thread per CPU, each running its own loop with its own SO_REUSEPORT listener on
//! the same port: every core serves, each session stays on one thread, limits are exact
//! across loops. Pick it for many busy sessions on a multi-core machine.

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
    limits.concurrency = Concurrency::MultiLoop;
    limits.workers = 0; // one loop per CPU
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

//! Run: `cargo run --example host_loop -- [DIR] [SECONDS]`
//!
//! A host program that drives the server from its own loop with `poll_once` (pyftpdlib's
//! `serve_forever(blocking=False)`): no thread is started; between passes the host does
//! its own work. Serves DIR (default: the current directory) read-only to anonymous on
//! 127.0.0.1:2121 for SECONDS (default 30), then closes everything.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ftpdlib::authorizers::DummyAuthorizer;
use ftpdlib::servers::FtpServer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args = std::env::args_os().skip(1);
    let dir = match args.next() {
        Some(d) => PathBuf::from(d),
        None => std::env::current_dir()?,
    };
    let seconds: u64 = match args.next() {
        Some(s) => s
            .to_str()
            .and_then(|s| s.parse().ok())
            .ok_or("SECONDS: a number")?,
        None => 30,
    };
    let mut authorizer = DummyAuthorizer::new();
    authorizer.add_anonymous(&dir, "elr", None, None)?;
    let mut server = FtpServer::builder(authorizer).bind("127.0.0.1:2121")?;
    println!(
        "serving {} on ftp://{}/",
        dir.display(),
        server.local_addr()
    );

    let until = Instant::now() + Duration::from_secs(seconds);
    let mut next_tick = Instant::now();
    while Instant::now() < until {
        // At most 100 ms in the server, then back to the host's own work.
        server.poll_once(Duration::from_millis(100))?;
        if Instant::now() >= next_tick {
            println!(
                "host tick: {} handler(s) in the server's loop",
                server.handler_count()
            );
            next_tick += Duration::from_secs(5);
        }
    }
    server.close_all();
    Ok(())
}

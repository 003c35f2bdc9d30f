//! Run: `cargo run --example throttled_ftpd -- [DIR]`
//!
//! pyftpdlib's throttled_ftpd.py: transfers limited to 30 KiB/s each way (its
//! ThrottledDTPHandler with `read_limit` and `write_limit` of 30720 bytes per second),
//! for a user with full rights and a read-only anonymous user on DIR (default: the
//! current directory), on 127.0.0.1:2121.

use std::path::PathBuf;

use ftpdlib::authorizers::DummyAuthorizer;
use ftpdlib::servers::FtpServer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let dir = match std::env::args_os().nth(1) {
        Some(d) => PathBuf::from(d),
        None => std::env::current_dir()?,
    };
    let mut authorizer = DummyAuthorizer::new();
    authorizer.add_user("user", "12345", &dir, "elradfmwMT", None, None)?;
    authorizer.add_anonymous(&dir, "elr", None, None)?;

    // 127.0.0.1:2121, or FTPDLIB_DEMO_ADDR (the tests run every demo on a free port).
    let addr = std::env::var("FTPDLIB_DEMO_ADDR").unwrap_or_else(|_| "127.0.0.1:2121".into());
    let mut server = FtpServer::builder(authorizer)
        .configure(|c| {
            c.read_limit = 30 * 1024; // uploads, bytes per second
            c.write_limit = 30 * 1024; // downloads
        })
        .bind(addr.as_str())?;
    server.serve_forever(true)?;
    Ok(())
}

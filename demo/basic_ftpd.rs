//! Run: `cargo run --example basic_ftpd -- [DIR]`
//!
//! pyftpdlib's basic_ftpd.py: a user with full rights and a read-only anonymous user, both
//! on DIR (default: the current directory), on 127.0.0.1:2121, with a custom banner and
//! connection limits.

use std::path::PathBuf;

use ftpdlib::authorizers::DummyAuthorizer;
use ftpdlib::config::ServerConfig;
use ftpdlib::servers::FtpServer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let dir = match std::env::args_os().nth(1) {
        Some(d) => PathBuf::from(d),
        None => std::env::current_dir()?,
    };

    // A user with full r/w permissions, and a read-only anonymous user.
    let mut authorizer = DummyAuthorizer::new();
    authorizer.add_user("user", "12345", &dir, "elradfmwMT", None, None)?;
    authorizer.add_anonymous(&dir, "elr", None, None)?;

    let mut limits = ServerConfig::default();
    limits.max_cons = 256;
    limits.max_cons_per_ip = 5;

    // 127.0.0.1:2121, or FTPDLIB_DEMO_ADDR (the tests run every demo on a free port).
    let addr = std::env::var("FTPDLIB_DEMO_ADDR").unwrap_or_else(|_| "127.0.0.1:2121".into());
    let mut server = FtpServer::builder(authorizer)
        .configure(|c| {
            c.banner = "ftpdlib based FTP server ready.".into();
            // For NAT: c.masquerade_address = Some("151.25.42.11".parse().unwrap());
            c.passive_ports = Some(60000..=65535);
        })
        .server_config(limits)
        .bind(addr.as_str())?;
    server.serve_forever(true)?;
    Ok(())
}

//! Run: `cargo run --example hashed_ftpd -- [DIR]`
//!
//! pyftpdlib's md5_ftpd.py, with a real password hash: the server keeps only a crypt(3)
//! hash (yescrypt, else sha512-crypt) of `user`'s password `12345`, never the password.
//! In practice the hash comes from `ftpdlib --hash-password` and lives in a users file
//! (`ftpdlib --users-file users.txt`); this demo prints the line to put there.

use std::path::PathBuf;

use ftpdlib::authorizers::{hash_password, DummyAuthorizer};
use ftpdlib::servers::FtpServer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let dir = match std::env::args_os().nth(1) {
        Some(d) => PathBuf::from(d),
        None => std::env::current_dir()?,
    };

    // Made once, stored anywhere: only the hash is needed to check a password.
    let hash = hash_password("12345")?;
    println!("users file line: user:{hash}:{}:elradfmwMT", dir.display());

    let mut authorizer = DummyAuthorizer::new();
    authorizer.add_user_hashed("user", &hash, &dir, "elradfmwMT", None, None)?;
    authorizer.add_anonymous(&dir, "elr", None, None)?;

    // 127.0.0.1:2121, or FTPDLIB_DEMO_ADDR (the tests run every demo on a free port).
    let addr = std::env::var("FTPDLIB_DEMO_ADDR").unwrap_or_else(|_| "127.0.0.1:2121".into());
    let mut server = FtpServer::builder(authorizer).bind(addr.as_str())?;
    server.serve_forever(true)?;
    Ok(())
}

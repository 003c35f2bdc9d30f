//! Run: `cargo run --example tls_ftpd -- CERTFILE [KEYFILE] [DIR]`
//!
//! pyftpdlib's tls_ftpd.py: FTPS (explicit, `AUTH TLS`) with a user with full rights and
//! a read-only anonymous user on DIR (default: the current directory), on 127.0.0.1:2121.
//! The control connection must be encrypted before USER, and data connections too
//! (`PROT P`), as with pyftpdlib's `tls_control_required` / `tls_data_required`.
//! A self-signed certificate for trying it:
//! `openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 30 -subj /CN=localhost`.

use std::path::{Path, PathBuf};

use ftpdlib::authorizers::DummyAuthorizer;
use ftpdlib::config::TlsConfig;
use ftpdlib::servers::FtpServer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args = std::env::args_os().skip(1);
    let certfile = PathBuf::from(
        args.next()
            .ok_or("usage: tls_ftpd CERTFILE [KEYFILE] [DIR]")?,
    );
    let keyfile = args.next().map(PathBuf::from);
    let dir = match args.next() {
        Some(d) => PathBuf::from(d),
        None => std::env::current_dir()?,
    };

    let mut authorizer = DummyAuthorizer::new();
    authorizer.add_user("user", "12345", &dir, "elradfmwMT", None, None)?;
    authorizer.add_anonymous(&dir, "elr", None, None)?;

    let mut tls = TlsConfig::from_pem_files(&certfile, keyfile.as_deref().map(Path::new))?;
    tls.control_required = true;
    tls.data_required = true;

    // 127.0.0.1:2121, or FTPDLIB_DEMO_ADDR (the tests run every demo on a free port).
    let addr = std::env::var("FTPDLIB_DEMO_ADDR").unwrap_or_else(|_| "127.0.0.1:2121".into());
    let mut server = FtpServer::builder(authorizer)
        .tls(tls)
        .bind(addr.as_str())?;
    server.serve_forever(true)?;
    Ok(())
}

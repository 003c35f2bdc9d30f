//! Run (as root): `cargo run --example unix_ftpd -- [ANONYMOUS_ACCOUNT]`
//!
//! pyftpdlib's unix_daemon.py: the system's accounts log in with their own passwords,
//! start in their home directory and act as themselves on disk (files they upload are
//! theirs; what the OS refuses them, FTP refuses them). `root` may not log in; with an
//! argument, `anonymous` sessions run as that account, read-only, inside its home.

use ftpdlib::authorizers::{UnixAuthorizer, UnixOptions};
use ftpdlib::servers::FtpServer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    let mut opts = UnixOptions::default();
    opts.rejected_users = vec!["root".into()];
    opts.anonymous_user = std::env::args().nth(1);
    // Fails with "super user privileges are required" unless run as root.
    let authorizer = UnixAuthorizer::new(opts)?;

    // Impersonation switches the identity of the whole process; the authorizer makes
    // the commands of different sessions take turns under the multi-thread model.
    // 127.0.0.1:2121, or FTPDLIB_DEMO_ADDR (the tests run every demo on a free port).
    let addr = std::env::var("FTPDLIB_DEMO_ADDR").unwrap_or_else(|_| "127.0.0.1:2121".into());
    let mut server = FtpServer::builder(authorizer).bind(addr.as_str())?;
    server.serve_forever(true)?;
    Ok(())
}

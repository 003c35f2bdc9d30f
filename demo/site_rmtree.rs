//! Run: `cargo run --example site_rmtree -- [DIR]`
//!
//! pyftpdlib's documented custom command: `SITE RMTREE <path>` removes a directory tree.
//! It needs the `d` right, a login, and an argument; HELP and FEAT show it. Try it:
//! `curl -u user:12345 ftp://127.0.0.1:2121/ -Q "SITE RMTREE somedir"`.

use std::path::PathBuf;

use ftpdlib::authorizers::DummyAuthorizer;
use ftpdlib::error::fs_error_reply;
use ftpdlib::proto::{ArgRule, CommandSpec, Reply};
use ftpdlib::servers::FtpServer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let dir = match std::env::args_os().nth(1) {
        Some(d) => PathBuf::from(d),
        None => std::env::current_dir()?,
    };
    let mut authorizer = DummyAuthorizer::new();
    authorizer.add_user("user", "12345", &dir, "elradfmwMT", None, None)?;

    let rmtree = CommandSpec::new(
        "SITE RMTREE",
        Some('d'),
        true,
        ArgRule::Required,
        "SITE RMTREE <SP> path (remove a directory tree).",
    );
    // 127.0.0.1:2121, or FTPDLIB_DEMO_ADDR (the tests run every demo on a free port).
    let addr = std::env::var("FTPDLIB_DEMO_ADDR").unwrap_or_else(|_| "127.0.0.1:2121".into());
    let mut server = FtpServer::builder(authorizer)
        .command(rmtree, |cx, _arg| {
            // The gate resolved the path, kept it inside the user's root and checked 'd'.
            let (Some(fs), Some(path)) = (cx.fs.as_deref(), cx.path) else {
                return Reply::new(550, "No such directory.");
            };
            if path == fs.root() {
                return Reply::new(550, "Can't remove root directory.");
            }
            match std::fs::remove_dir_all(path) {
                Ok(()) => Reply::new(250, "Directory tree removed."),
                Err(e) => fs_error_reply(&e),
            }
        })
        .bind(addr.as_str())?;
    server.serve_forever(true)?;
    Ok(())
}

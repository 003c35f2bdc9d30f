//! Run: `cargo run --example memory_fs -- [PORT]`
//!
//! An FTP server whose files live in memory only: a [`MemoryFs`] with a welcome file,
//! served to `user`/`12345` (every right) on 127.0.0.1:PORT (default 2121). Uploads,
//! directories and renames last as long as the process; nothing is written to disk.

use ftpdlib::authorizers::DummyAuthorizer;
use ftpdlib::filesystems::MemoryFs;
use ftpdlib::servers::FtpServer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let port: u16 = match std::env::args().nth(1) {
        Some(p) => p.parse().map_err(|e| format!("bad port {p:?}: {e}"))?,
        None => 2121,
    };

    let mem = MemoryFs::new();
    mem.write_file("/README.txt", b"Everything here lives in memory.\n")?;
    mem.mkdir_all("/incoming")?;

    // DummyAuthorizer wants an existing directory as home; the sessions never use it.
    let mut users = DummyAuthorizer::new();
    users.add_user("user", "12345", "/", "elradfmwMT", None, None)?;

    let mut server = FtpServer::builder(mem.authorizer(users)).bind(("127.0.0.1", port))?;
    println!(
        "serving an in-memory tree on ftp://user:12345@{}/",
        server.local_addr()
    );
    server.serve_forever(true)?;
    println!("stopped; the tree held {} bytes", mem.used_bytes());
    Ok(())
}

//! Run: `cargo run --example host_loop -- [DIR] [SECONDS]`
//!
//! A host program that drives the server from its own loop: no thread is started. The
//! host waits with poll(2) on the server's descriptor (`AsRawFd`), never longer than the
//! server's `next_timeout()` nor its own next tick, and calls `poll_once(Duration::ZERO)`
//! when the descriptor is readable or a timer is due (pyftpdlib's
//! `serve_forever(blocking=False)`, without the busy wait). Serves DIR (default: the
//! current directory) read-only to anonymous on 127.0.0.1:2121 for SECONDS (default 30),
//! then closes everything.

use std::os::fd::AsRawFd;
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
    // 127.0.0.1:2121, or FTPDLIB_DEMO_ADDR (the tests run every demo on a free port).
    let addr = std::env::var("FTPDLIB_DEMO_ADDR").unwrap_or_else(|_| "127.0.0.1:2121".into());
    let mut server = FtpServer::builder(authorizer).bind(addr.as_str())?;
    println!(
        "serving {} on ftp://{}/",
        dir.display(),
        server.local_addr()
    );

    let until = Instant::now() + Duration::from_secs(seconds);
    let mut next_tick = Instant::now();
    while Instant::now() < until {
        // The host's own deadline (its tick), and the server's.
        let host_wait = next_tick.saturating_duration_since(Instant::now());
        let wait = server
            .next_timeout()
            .map_or(host_wait, |t| t.min(host_wait));
        let mut fds = [libc::pollfd {
            fd: server.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let millis = i32::try_from(wait.as_millis().saturating_add(1)).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd entry, and its count.
        unsafe { libc::poll(fds.as_mut_ptr(), 1, millis) };
        server.poll_once(Duration::ZERO)?;
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

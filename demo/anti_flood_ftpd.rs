//! Run: `cargo run --example anti_flood_ftpd -- [DIR]`
//!
//! pyftpdlib's anti_flood_ftpd.py: a client that sends more than 300 commands within a
//! second is banned for an hour: its session ends with a 550, and its address is refused
//! with a 550 until the ban ends. Built on the two gates of `Events`: `on_command` counts
//! each address's commands per second, `admit` turns banned addresses away before their
//! greeting. Serves DIR (default: the current directory) to user / 12345 and read-only
//! anonymous on 127.0.0.1:2121.
//!
//! (Failed logins have a ban of their own, built in: `ftpdlib --ban-after N`.)

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ftpdlib::authorizers::DummyAuthorizer;
use ftpdlib::events::{CommandVerdict, Events, Session};
use ftpdlib::proto::Reply;
use ftpdlib::servers::FtpServer;

/// Commands one address may send within a second.
const CMDS_PER_SECOND: u32 = 300;
/// How long a flooder stays banned.
const BAN_FOR: Duration = Duration::from_secs(60 * 60);

#[derive(Default)]
struct AntiFlood {
    /// Per address: when its current second started, and its commands since.
    counts: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    /// Per banned address: when the ban ends.
    banned: Mutex<HashMap<IpAddr, Instant>>,
}

impl AntiFlood {
    fn is_banned(&self, ip: IpAddr) -> bool {
        let mut banned = self.banned.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        banned.retain(|_, until| *until > now);
        banned.contains_key(&ip)
    }
}

impl Events for AntiFlood {
    fn admit(&self, remote: SocketAddr) -> Option<Reply> {
        self.is_banned(remote.ip())
            .then(|| Reply::new(550, "You are banned."))
    }

    fn on_command(&self, s: Session<'_>, _command: &str) -> CommandVerdict {
        let ip = s.remote.ip();
        let now = Instant::now();
        let flooding = {
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            let (started, n) = counts.entry(ip).or_insert((now, 0));
            if now.duration_since(*started) >= Duration::from_secs(1) {
                *started = now;
                *n = 0;
            }
            *n += 1;
            *n > CMDS_PER_SECOND
        };
        if !flooding {
            return CommandVerdict::Run;
        }
        let mut banned = self.banned.lock().unwrap_or_else(|e| e.into_inner());
        if banned.insert(ip, now + BAN_FOR).is_none() {
            log::warn!("banned IP {ip} for command flooding");
        }
        CommandVerdict::Close(Reply::new(
            550,
            format!("You are banned for {} seconds.", BAN_FOR.as_secs()),
        ))
    }
}

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
        .events(AntiFlood::default())
        .bind(addr.as_str())?;
    server.serve_forever(true)?;
    Ok(())
}

//! `--syslog`: the log lines as RFC 3164 messages to the local syslog daemon, one
//! datagram each over the Unix socket `/dev/log` (or `--syslog-socket`), facility
//! daemon, tag `ftpdlib[pid]`.
//!
//! Written here rather than through a crate: it is one datagram format and one socket.
//! The socket does not block: a daemon that falls behind loses lines rather than
//! stalling the event loop.

use std::fmt::Write as _;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use log::Level;

/// The connection to the syslog socket.
pub struct Syslog {
    path: PathBuf,
    socket: Mutex<UnixDatagram>,
}

impl Syslog {
    /// Connects to the datagram socket at `path`.
    ///
    /// # Errors
    /// When nothing listens there.
    pub fn connect(path: &Path) -> io::Result<Syslog> {
        Ok(Syslog {
            path: path.to_owned(),
            socket: Mutex::new(connect(path)?),
        })
    }

    /// Sends `message` at `level`. A daemon restarted since the connect is connected to
    /// again once; a message that still cannot be sent is dropped (logging never stops
    /// the server).
    pub fn send(&self, level: Level, message: &str) {
        let datagram = datagram(level, message, SystemTime::now(), std::process::id());
        // A thread that panicked while sending left a usable socket behind.
        let mut socket = self.socket.lock().unwrap_or_else(|e| e.into_inner());
        match socket.send(datagram.as_bytes()) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => {
                if let Ok(fresh) = connect(&self.path) {
                    *socket = fresh;
                    let _ = socket.send(datagram.as_bytes());
                }
            }
        }
    }
}

fn connect(path: &Path) -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.connect(path)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// `<PRI>Mmm dd hh:mm:ss ftpdlib[pid]: message`, RFC 3164 §4.1 as local daemons take it
/// (no host name: the daemon adds its own). PRI is facility daemon (3) times 8 plus the
/// severity.
fn datagram(level: Level, message: &str, now: SystemTime, pid: u32) -> String {
    let severity = match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    };
    let c = ftpdlib::timefmt::civil(now, false);
    let month = MONTHS[usize::from(c.month.clamp(1, 12) - 1)];
    let mut out = String::with_capacity(40 + message.len());
    let _ = write!(
        out,
        "<{}>{month} {:>2} {:02}:{:02}:{:02} ftpdlib[{pid}]: {message}",
        DAEMON * 8 + severity,
        c.day,
        c.hour,
        c.minute,
        c.second
    );
    out
}

/// Facility `daemon`.
const DAEMON: u8 = 3;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use log::Level;

    use super::datagram;

    #[test]
    fn priority_is_daemon_and_the_severity() {
        let t = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        // RFC 3164 §4.1.1: PRI = facility * 8 + severity; daemon is 3.
        for (level, pri) in [
            (Level::Error, "<27>"),
            (Level::Warn, "<28>"),
            (Level::Info, "<30>"),
            (Level::Debug, "<31>"),
        ] {
            assert!(datagram(level, "m", t, 1).starts_with(pri), "{level}");
        }
    }

    #[test]
    fn shape() {
        let t = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let d = datagram(Level::Info, "USER 'u' logged in.", t, 42);
        // <30> then `Mmm dd hh:mm:ss` (15 characters), a space and the tag.
        assert_eq!(&d[19..], " ftpdlib[42]: USER 'u' logged in.", "{d}");
        assert_eq!(&d[4..5], d[4..5].to_uppercase(), "{d}");
        assert_eq!((&d[7..8], &d[13..14], &d[16..17]), (" ", ":", ":"), "{d}");
    }
}

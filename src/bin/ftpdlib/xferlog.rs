//! `--xferlog PATH`: wu-ftpd's transfer log, one line per file transfer, completed or not:
//!
//! `current-time transfer-time remote-host file-size filename transfer-type
//! special-action-flag direction access-mode username service-name authentication-method
//! authenticated-user-id completion-status`
//!
//! The library reports each transfer through [`Events::on_transfer_ended`]; this writes
//! the line, in one `write(2)` to a file opened for appending (and reopened on SIGUSR1,
//! as the main log is).

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use ftpdlib::events::{Direction, Events, TransferRecord};

use crate::logger::AppendFile;

/// The transfer log's file.
pub struct XferLog {
    file: AppendFile,
}

impl XferLog {
    /// Opens `path` for appending.
    ///
    /// # Errors
    /// When it cannot be opened.
    pub fn open(path: &Path) -> io::Result<XferLog> {
        Ok(XferLog {
            file: AppendFile::open(path)?,
        })
    }
}

impl Events for XferLog {
    fn on_transfer_ended(&self, t: &TransferRecord<'_>) {
        let mut line = String::with_capacity(160);
        push_ctime(&mut line, SystemTime::now());
        // Whole seconds, rounded to the nearest.
        let seconds = t.duration.as_secs() + u64::from(t.duration.subsec_millis() >= 500);
        let _ = write!(line, " {seconds} {} {} ", t.session.remote.ip(), t.bytes);
        push_field(&mut line, &t.path.to_string_lossy());
        let kind = if t.ascii { 'a' } else { 'b' };
        // Direction is non-exhaustive: anything but an upload is written as outgoing.
        let direction = if t.direction == Direction::Incoming {
            'i'
        } else {
            'o'
        };
        // pyftpdlib's anonymous user is the one named "anonymous"; everyone else has an
        // account of the authorizer ("real" to wu-ftpd).
        let access = if t.session.username == "anonymous" {
            'a'
        } else {
            'r'
        };
        // No special action (no compression or tar on the fly).
        let _ = write!(line, " {kind} _ {direction} {access} ");
        push_field(&mut line, t.session.username);
        // Service "ftp"; authentication method 0 (none, no RFC 931 lookup) and so the
        // authenticated user id "*".
        let status = if t.completed { 'c' } else { 'i' };
        let _ = writeln!(line, " ftp 0 * {status}");
        self.file.write(line.as_bytes());
    }
}

/// `Www Mmm dd hh:mm:ss yyyy` in local time (ctime(3) without its line end), the day of
/// the month padded with a space.
fn push_ctime(out: &mut String, now: SystemTime) {
    let c = ftpdlib::timefmt::civil(now, false);
    let local_secs = unix_seconds(now) + i64::from(ftpdlib::timefmt::utc_offset(now));
    // 1970-01-01 was a Thursday.
    let weekday = (local_secs.div_euclid(86_400) + 4).rem_euclid(7);
    let day_name = WEEKDAYS[usize::try_from(weekday).unwrap_or(0)];
    let month = MONTHS[usize::from(c.month.clamp(1, 12) - 1)];
    let _ = write!(
        out,
        "{day_name} {month} {:>2} {:02}:{:02}:{:02} {}",
        c.day, c.hour, c.minute, c.second, c.year
    );
}

/// `text` as one space-free field: blanks and control characters become `_` (wu-ftpd
/// writes spaces in names as `_`), an empty text `*`.
fn push_field(out: &mut String, text: &str) {
    if text.is_empty() {
        out.push('*');
        return;
    }
    out.extend(text.chars().map(|c| {
        if c.is_whitespace() || c.is_control() {
            '_'
        } else {
            c
        }
    }));
}

/// Seconds since the epoch, negative before it.
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::{push_ctime, push_field};

    fn field(text: &str) -> String {
        let mut out = String::new();
        push_field(&mut out, text);
        out
    }

    #[test]
    fn blanks_in_names_become_underscores() {
        assert_eq!(field("/srv/ftp/my file.txt"), "/srv/ftp/my_file.txt");
        assert_eq!(field("a\tb\nc\u{0}d"), "a_b_c_d");
        assert_eq!(field(""), "*");
        assert_eq!(field("caf\u{e9}"), "caf\u{e9}");
    }

    #[test]
    fn ctime_shape() {
        // Whatever the zone, the shape is `Www Mmm dd hh:mm:ss yyyy`.
        let mut out = String::new();
        push_ctime(&mut out, UNIX_EPOCH + Duration::from_secs(1_790_000_000));
        let b = out.as_bytes();
        assert_eq!(out.len(), 24, "{out}");
        assert!(super::WEEKDAYS.contains(&&out[..3]), "{out}");
        assert!(super::MONTHS.contains(&&out[4..7]), "{out}");
        assert_eq!(
            (b[3], b[7], b[10], b[13], b[16], b[19]),
            (b' ', b' ', b' ', b':', b':', b' ')
        );
    }
}

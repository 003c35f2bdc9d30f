//! Log lines: a session's prefix (pyftpdlib's `log_prefix`, by default
//! `ip:port-[user]`), written into each line without allocating, and the tag that names
//! a session in the lines' fields.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::config::DEFAULT_LOG_PREFIX;

/// Fills in a `log_prefix` template (pyftpdlib's `%(name)s` fields) for a client.
/// Formatted where it is written (into the log line), so that logging allocates nothing.
pub(crate) fn log_prefix<'a>(
    template: &'a str,
    remote: SocketAddr,
    username: &'a str,
) -> LogPrefix<'a> {
    LogPrefix {
        template,
        remote,
        username,
    }
}

/// A session's log prefix: a `log_prefix` template with a client's fields.
pub(crate) struct LogPrefix<'a> {
    template: &'a str,
    remote: SocketAddr,
    username: &'a str,
}

impl std::fmt::Display for LogPrefix<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = self.remote.ip().to_canonical();
        let port = self.remote.port();
        if self.template == DEFAULT_LOG_PREFIX {
            write_ip(f, ip)?;
            // ":port-[" composed on the stack and written at once: each write into the
            // log line's String is a call with its own capacity check and copy.
            let mut tail = AsciiText::<8>::new(); // ":65535-["
            tail.push(b":");
            tail.push_decimal(port);
            tail.push(b"-[");
            f.write_str(tail.as_str())?;
            f.write_str(self.username)?;
            return f.write_str("]");
        }
        // One pass, as Python's `%` operator: text put in is never read as a field.
        let mut rest = self.template;
        while let Some(at) = rest.find("%(") {
            f.write_str(&rest[..at])?;
            let field = &rest[at..];
            rest = if let Some(after) = field.strip_prefix("%(remote_ip)s") {
                write_ip(f, ip)?;
                after
            } else if let Some(after) = field.strip_prefix("%(remote_port)s") {
                write_port(f, port)?;
                after
            } else if let Some(after) = field.strip_prefix("%(username)s") {
                f.write_str(self.username)?;
                after
            } else {
                f.write_str("%(")?;
                &field[2..]
            };
        }
        f.write_str(rest)
    }
}

/// Names one session in the log's fields (`session`, in the binary's JSON lines): the
/// process id and a number counted in that process, `PID-N`, unique across the threads
/// and processes of every concurrency model at a time. The process id is read when the
/// tag is shown (a session never changes process): the text lines never show it, so a
/// session costs no getpid(2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionTag {
    serial: u32,
}

impl SessionTag {
    /// A new session's tag.
    pub(crate) fn next() -> SessionTag {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        SessionTag {
            serial: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl std::fmt::Display for SessionTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", std::process::id(), self.serial)
    }
}

/// An IPv4 address digit by digit on the stack; an IPv6 one through core's formatting.
fn write_ip(f: &mut std::fmt::Formatter<'_>, ip: IpAddr) -> std::fmt::Result {
    match ip {
        IpAddr::V4(v4) => {
            let mut text = AsciiText::<15>::new(); // "255.255.255.255"
            text.push_ipv4(v4);
            f.write_str(text.as_str())
        }
        IpAddr::V6(v6) => write!(f, "{v6}"),
    }
}

fn write_port(f: &mut std::fmt::Formatter<'_>, port: u16) -> std::fmt::Result {
    let mut text = AsciiText::<5>::new(); // "65535"
    text.push_decimal(port);
    f.write_str(text.as_str())
}

/// Up to `N` bytes of ASCII text on the stack. Every log line starts with a client's address:
/// core's formatting of it (four `u8`s and a `u16`, each through `Formatter`'s padding
/// logic) took more instructions than the rest of the line.
struct AsciiText<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> AsciiText<N> {
    fn new() -> Self {
        AsciiText {
            bytes: [0; N],
            len: 0,
        }
    }

    /// Appends what fits of `ascii` (callers size `N` for the longest text they write).
    /// Byte by byte: the pieces are a few bytes long, shorter than a memcpy call.
    fn push(&mut self, ascii: &[u8]) {
        for &b in ascii {
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
    }

    fn push_decimal(&mut self, value: u16) {
        let mut digits = [0u8; 5];
        self.push(crate::proto::reply::decimal_digits(value, &mut digits));
    }

    fn push_ipv4(&mut self, ip: Ipv4Addr) {
        for (i, octet) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                self.push(b".");
            }
            self.push_decimal(octet.into());
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever pushed.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_tags_are_the_pid_and_a_new_number_each() {
        let (a, b) = (SessionTag::next(), SessionTag::next());
        assert_ne!(a, b);
        let pid = std::process::id();
        assert!(a.to_string().starts_with(&format!("{pid}-")), "{a}");
        assert_ne!(a.to_string(), b.to_string());
    }

    #[test]
    fn log_prefix_fills_in_the_template_once() {
        let remote = SocketAddr::from(([127, 0, 0, 1], 2121));
        let fill = |template: &str, user: &str| log_prefix(template, remote, user).to_string();
        assert_eq!(fill(DEFAULT_LOG_PREFIX, "bob"), "127.0.0.1:2121-[bob]");
        let widest = SocketAddr::from(([255, 255, 255, 255], 65535));
        assert_eq!(
            log_prefix(DEFAULT_LOG_PREFIX, widest, "").to_string(),
            "255.255.255.255:65535-[]"
        );
        let zeros = SocketAddr::from(([0, 0, 0, 0], 0));
        assert_eq!(
            log_prefix("%(remote_ip)s %(remote_port)s", zeros, "").to_string(),
            "0.0.0.0 0"
        );
        let v6 = SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 990));
        assert_eq!(
            log_prefix(DEFAULT_LOG_PREFIX, v6, "al").to_string(),
            "2001:db8::1:990-[al]"
        );
        assert_eq!(
            log_prefix("%(remote_ip)s|%(remote_port)s", v6, "").to_string(),
            "2001:db8::1|990"
        );
        assert_eq!(
            fill("<%(username)s@%(remote_ip)s port %(remote_port)s>", "al"),
            "<al@127.0.0.1 port 2121>"
        );
        // A user name that looks like a field stays as it is; unknown fields stay too.
        assert_eq!(
            fill("%(username)s %(other)s %(", "%(remote_ip)s"),
            "%(remote_ip)s %(other)s %("
        );
        let mapped = SocketAddr::from(([0, 0, 0, 0, 0, 0xffff, 0x7f00, 1], 21));
        assert_eq!(
            log_prefix(DEFAULT_LOG_PREFIX, mapped, "").to_string(),
            "127.0.0.1:21-[]"
        );
    }
}

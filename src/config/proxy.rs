//! Who may send a PROXY protocol header ([`ProxyProtocol`]), as addresses and CIDR
//! networks ([`IpNet`]).
//!
//! The network type is a prefix comparison over std's addresses; a crate for it would bring
//! more (iteration, aggregation) than one `contains` needs.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

/// PROXY protocol on the control and passive data listeners (HAProxy's `send-proxy` and
/// `send-proxy-v2`): see `docs/proxy-protocol.md`.
///
/// When set, every connection must come from one of [`ProxyProtocol::from`] and start with a
/// header; anyone else is closed without a greeting. The address the header carries stands
/// for the client everywhere (limits, logs, PASV and PORT checks, events, the authorizer).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyProtocol {
    /// The balancers' addresses.
    pub from: Vec<IpNet>,
    /// How long a connection may take to send its whole header (5 s).
    pub header_timeout: Duration,
}

impl ProxyProtocol {
    /// Trusts headers from these networks, with the default header timeout.
    pub fn new(from: Vec<IpNet>) -> ProxyProtocol {
        ProxyProtocol {
            from,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
        }
    }

    /// Whether a connection from `ip` is a configured proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.from.iter().any(|net| net.contains(ip))
    }
}

/// An address or a CIDR network: `127.0.0.1`, `10.0.0.0/8`, `2001:db8::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network of `addr` with `prefix` leading bits.
    ///
    /// # Errors
    ///
    /// [`IpNetError::Prefix`] when `prefix` exceeds the family's width (32 or 128).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<IpNet, IpNetError> {
        if prefix > width(addr) {
            return Err(IpNetError::Prefix);
        }
        Ok(IpNet { addr, prefix })
    }

    /// Whether `ip` is in the network. An IPv4-mapped IPv6 address (from a dual-stack
    /// listener) is compared as the IPv4 address it maps.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr.to_canonical(), ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(ip)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(net.into(), ip.into(), self.prefix),
            (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<IpNet, IpNetError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| IpNetError::Address)?;
        let prefix = match prefix {
            // Digits only: `u8::from_str` would take a sign.
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| IpNetError::Prefix)?
            }
            Some(_) => return Err(IpNetError::Prefix),
            None => width(addr),
        };
        IpNet::new(addr, prefix)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a string is not an [`IpNet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpNetError {
    /// The part before `/` is not an IPv4 or IPv6 address.
    #[error("not an IP address")]
    Address,
    /// The part after `/` is not a number up to 32 (IPv4) or 128 (IPv6).
    #[error("bad network prefix length")]
    Prefix,
}

fn width(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Whether the first `prefix` bits of `a` and `b` agree.
fn prefix_eq(a: u128, b: u128, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    a & mask == b & mask
}

/// The default for [`ProxyProtocol::header_timeout`]: long enough for a balancer under
/// load, short enough that idle connections do not pile up.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("test network")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn a_single_address() {
        let n = net("127.0.0.1");
        assert!(n.contains(ip("127.0.0.1")));
        assert!(!n.contains(ip("127.0.0.2")));
        assert!(n.contains(ip("::ffff:127.0.0.1")));
        assert!(!n.contains(ip("::1")));
        assert_eq!(n.to_string(), "127.0.0.1/32");
    }

    #[test]
    fn networks() {
        assert!(net("10.0.0.0/8").contains(ip("10.255.1.2")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!net("0.0.0.0/0").contains(ip("::2")));
        assert!(net("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!net("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(net("::/0").contains(ip("::1")));
        assert!(net("::1").contains(ip("::1")));
        // Host bits in the network address do not matter.
        assert!(net("192.168.1.77/24").contains(ip("192.168.1.3")));
    }

    #[test]
    fn bad_networks() {
        assert_eq!("10.0.0.0/33".parse::<IpNet>(), Err(IpNetError::Prefix));
        assert_eq!("::/129".parse::<IpNet>(), Err(IpNetError::Prefix));
        assert_eq!("10.0.0.0/".parse::<IpNet>(), Err(IpNetError::Prefix));
        assert_eq!("10.0.0.0/+8".parse::<IpNet>(), Err(IpNetError::Prefix));
        assert_eq!("10.0.0/8".parse::<IpNet>(), Err(IpNetError::Address));
        assert_eq!("localhost".parse::<IpNet>(), Err(IpNetError::Address));
        assert_eq!("".parse::<IpNet>(), Err(IpNetError::Address));
    }

    #[test]
    fn trusts_any_listed() {
        let p = ProxyProtocol::new(vec![net("127.0.0.1"), net("10.0.0.0/8")]);
        assert!(p.trusts(ip("10.1.1.1")));
        assert!(p.trusts(ip("127.0.0.1")));
        assert!(!p.trusts(ip("127.0.0.2")));
        assert_eq!(p.header_timeout, DEFAULT_HEADER_TIMEOUT);
    }
}

//! The PROXY protocol header a load balancer sends before the client's bytes (HAProxy's
//! `proxy-protocol.txt`, versions 1 and 2).
//!
//! [`parse_proxy_header`] looks at the bytes read so far and says whether they hold a whole
//! header, need more, or can never become one. It does no I/O and keeps no state, so the
//! caller may call it again after every read; the caps ([`V1_MAX_LEN`], [`V2_MAX_LEN`])
//! bound how much a caller ever buffers.
//!
//! Decisions where the spec leaves a choice:
//!
//! * v1 `UNKNOWN` and v2 `LOCAL` are [`ProxyAddrs::Local`]: the proxy speaks for itself
//!   (HAProxy's health checks) and the connection's own endpoints stand.
//! * A v2 `PROXY` command with the `AF_UNSPEC` family is also [`ProxyAddrs::Local`]: the spec
//!   lets the receiver accept it with the real endpoints, as for v1 `UNKNOWN`.
//! * v2 UDP and unix-socket families are refused ([`ProxyError::Unsupported`]): FTP runs over
//!   TCP, and a unix path gives no address to check PORT or PASV against.
//! * v2 TLVs are walked only to check that each fits in the declared length, then skipped.
//!   Under `LOCAL` the whole block after the fixed 16 bytes is discarded unread, as the spec says.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// What the bytes read so far amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyParse {
    /// A prefix of a possible header: read more (within the caps).
    Incomplete,
    /// A whole header; the client's bytes start at `header.len`.
    Done(ProxyHeader),
    /// These bytes can never start a valid header: close the connection.
    Invalid(ProxyError),
}

/// A complete PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// How many bytes the header takes, CRLF or TLVs included.
    pub len: usize,
    /// The addresses it carries.
    pub addrs: ProxyAddrs,
}

/// The addresses a header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyAddrs {
    /// A TCP connection the proxy relays: the client's address and the one it connected to.
    Tcp {
        /// The client (the real peer).
        source: SocketAddr,
        /// The address the client connected to, on the proxy.
        destination: SocketAddr,
    },
    /// v2 `LOCAL`, v1 `UNKNOWN` or v2 `AF_UNSPEC`: no client address; use the connection's own.
    Local,
}

/// Why bytes are not a PROXY header. Every one closes the connection without a greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// Neither the v1 `PROXY ` prefix nor the v2 signature.
    #[error("no PROXY protocol signature")]
    BadSignature,
    /// A v1 line longer than 107 bytes, or a v2 length beyond [`V2_MAX_LEN`].
    #[error("PROXY header too long")]
    TooLong,
    /// A v1 line that breaks the grammar (fields, separators, line end).
    #[error("malformed PROXY v1 line")]
    BadLine,
    /// An address that does not parse, or whose family contradicts the protocol field.
    #[error("bad address in PROXY header")]
    BadAddress,
    /// A v1 port that is not a decimal number in 0..=65535.
    #[error("bad port in PROXY header")]
    BadPort,
    /// A v2 version nibble other than 2.
    #[error("unsupported PROXY protocol version")]
    BadVersion,
    /// A v2 command other than LOCAL (0) or PROXY (1).
    #[error("unknown PROXY v2 command")]
    BadCommand,
    /// A v2 family/transport byte the spec does not define.
    #[error("unknown PROXY v2 address family")]
    BadFamily,
    /// A v2 family the spec defines but FTP cannot use (UDP, unix sockets).
    #[error("PROXY v2 family not supported (UDP or unix)")]
    Unsupported,
    /// A v2 length too short for the addresses of its family.
    #[error("PROXY v2 length too short for its addresses")]
    ShortAddresses,
    /// A v2 TLV running past the end of the header.
    #[error("PROXY v2 TLV overruns the header")]
    BadTlv,
}

/// Parses the PROXY header at the start of `buf`, the bytes read so far.
///
/// Returns [`ProxyParse::Incomplete`] while `buf` is a strict prefix of a header that could
/// still be valid; the caller should stop reading at [`V2_MAX_LEN`] bytes, which this function
/// never asks to exceed.
///
/// ```
/// use ftpdlib::proto::proxy::{parse_proxy_header, ProxyAddrs, ProxyParse};
///
/// let line = b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 21\r\nUSER x\r\n";
/// let ProxyParse::Done(header) = parse_proxy_header(line) else { panic!() };
/// assert_eq!(header.len, 44);
/// let ProxyAddrs::Tcp { source, .. } = header.addrs else { panic!() };
/// assert_eq!(source, "192.0.2.7:40000".parse().unwrap());
/// assert_eq!(parse_proxy_header(b"PROXY TCP4 19"), ProxyParse::Incomplete);
/// ```
pub fn parse_proxy_header(buf: &[u8]) -> ProxyParse {
    let v1 = prefix_matches(buf, V1_PREFIX);
    let v2 = prefix_matches(buf, &V2_SIGNATURE);
    match (v1, v2) {
        (Some(true), _) => parse_v1(buf),
        (_, Some(true)) => parse_v2(buf),
        (Some(false), _) | (_, Some(false)) => ProxyParse::Incomplete,
        (None, None) => ProxyParse::Invalid(ProxyError::BadSignature),
    }
}

/// `None`: `buf` diverges from `sig`; `Some(false)`: `buf` is a strict prefix of it;
/// `Some(true)`: `buf` starts with all of it.
fn prefix_matches(buf: &[u8], sig: &[u8]) -> Option<bool> {
    let n = buf.len().min(sig.len());
    if buf[..n] != sig[..n] {
        None
    } else {
        Some(n == sig.len())
    }
}

/// v1: `PROXY TCP4|TCP6 src dst sport dport\r\n` or `PROXY UNKNOWN ...\r\n`.
fn parse_v1(buf: &[u8]) -> ProxyParse {
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() >= V1_MAX_LEN {
            ProxyParse::Invalid(ProxyError::TooLong)
        } else {
            ProxyParse::Incomplete
        };
    };
    // The spec's line ends in CRLF; a bare LF is a client that is not a proxy.
    if lf == 0 || window[lf - 1] != b'\r' {
        return ProxyParse::Invalid(ProxyError::BadLine);
    }
    let Ok(line) = std::str::from_utf8(&window[V1_PREFIX.len()..lf - 1]) else {
        return ProxyParse::Invalid(ProxyError::BadLine);
    };
    match v1_fields(line) {
        Ok(addrs) => ProxyParse::Done(ProxyHeader { len: lf + 1, addrs }),
        Err(e) => ProxyParse::Invalid(e),
    }
}

/// The fields after `PROXY `, without the CRLF.
fn v1_fields(line: &str) -> Result<ProxyAddrs, ProxyError> {
    // The spec lets UNKNOWN be followed by anything, which the receiver ignores.
    if line == "UNKNOWN" || line.starts_with("UNKNOWN ") {
        return Ok(ProxyAddrs::Local);
    }
    let fields: Vec<&str> = line.split(' ').collect();
    let [proto, src, dst, sport, dport] = fields.as_slice() else {
        return Err(ProxyError::BadLine);
    };
    let (src, dst) = match *proto {
        "TCP4" => (
            src.parse::<Ipv4Addr>().map(Into::into),
            dst.parse::<Ipv4Addr>().map(Into::into),
        ),
        "TCP6" => (
            src.parse::<Ipv6Addr>().map(Into::into),
            dst.parse::<Ipv6Addr>().map(Into::into),
        ),
        _ => return Err(ProxyError::BadLine),
    };
    let (Ok(src), Ok(dst)) = (src, dst) else {
        return Err(ProxyError::BadAddress);
    };
    Ok(ProxyAddrs::Tcp {
        source: SocketAddr::new(src, v1_port(sport)?),
        destination: SocketAddr::new(dst, v1_port(dport)?),
    })
}

/// A v1 port: 1 to 5 ASCII digits, no sign, no leading zero, at most 65535.
fn v1_port(s: &str) -> Result<u16, ProxyError> {
    let digits_only = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (s.len() > 1 && s.starts_with('0')) {
        return Err(ProxyError::BadPort);
    }
    s.parse::<u16>().map_err(|_| ProxyError::BadPort)
}

/// v2: signature, version/command, family/transport, length, addresses, TLVs.
fn parse_v2(buf: &[u8]) -> ProxyParse {
    let Some(fixed) = buf.get(..V2_FIXED_LEN) else {
        // Check the version byte as soon as it arrives, so garbage is refused early.
        if let Some(&ver_cmd) = buf.get(V2_SIGNATURE.len()) {
            if let Err(e) = v2_command(ver_cmd) {
                return ProxyParse::Invalid(e);
            }
        }
        return ProxyParse::Incomplete;
    };
    let local = match v2_command(fixed[12]) {
        Ok(local) => local,
        Err(e) => return ProxyParse::Invalid(e),
    };
    let fam = fixed[13];
    let len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    let total = V2_FIXED_LEN + len;
    if total > V2_MAX_LEN {
        return ProxyParse::Invalid(ProxyError::TooLong);
    }
    let Some(body) = buf.get(V2_FIXED_LEN..total) else {
        return ProxyParse::Incomplete;
    };
    match v2_body(local, fam, body) {
        Ok(addrs) => ProxyParse::Done(ProxyHeader { len: total, addrs }),
        Err(e) => ProxyParse::Invalid(e),
    }
}

/// The version/command byte: `Ok(true)` for LOCAL, `Ok(false)` for PROXY.
fn v2_command(ver_cmd: u8) -> Result<bool, ProxyError> {
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::BadVersion);
    }
    match ver_cmd & 0x0f {
        0 => Ok(true),
        1 => Ok(false),
        _ => Err(ProxyError::BadCommand),
    }
}

/// Addresses and TLVs after the 16 fixed bytes.
fn v2_body(local: bool, fam: u8, body: &[u8]) -> Result<ProxyAddrs, ProxyError> {
    let addr_len = match fam {
        0x00 => 0,
        0x11 => 12,
        0x21 => 36,
        0x12 | 0x22 | 0x31 | 0x32 if local => 0,
        0x12 | 0x22 | 0x31 | 0x32 => return Err(ProxyError::Unsupported),
        _ => return Err(ProxyError::BadFamily),
    };
    // LOCAL: "the receiver must discard the protocol block including the family", so
    // nothing after the fixed part is read.
    if local {
        return Ok(ProxyAddrs::Local);
    }
    let Some(addrs) = body.get(..addr_len) else {
        return Err(ProxyError::ShortAddresses);
    };
    skip_tlvs(&body[addr_len..])?;
    let port = |o: usize| u16::from_be_bytes([addrs[o], addrs[o + 1]]);
    let (source, destination) = match fam {
        0x11 => {
            let ip = |o: usize| Ipv4Addr::new(addrs[o], addrs[o + 1], addrs[o + 2], addrs[o + 3]);
            (
                SocketAddr::new(ip(0).into(), port(8)),
                SocketAddr::new(ip(4).into(), port(10)),
            )
        }
        0x21 => {
            let ip = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&addrs[o..o + 16]);
                Ipv6Addr::from(b)
            };
            (
                SocketAddr::new(ip(0).into(), port(32)),
                SocketAddr::new(ip(16).into(), port(34)),
            )
        }
        // AF_UNSPEC under PROXY: the spec lets the receiver use the real endpoints.
        _ => return Ok(ProxyAddrs::Local),
    };
    Ok(ProxyAddrs::Tcp {
        source,
        destination,
    })
}

/// Walks the TLVs (type, 2-byte length, value) so that one claiming more bytes than the header
/// holds is refused rather than trusted.
fn skip_tlvs(mut rest: &[u8]) -> Result<(), ProxyError> {
    while !rest.is_empty() {
        let Some(&[_, hi, lo]) = rest.get(..3) else {
            return Err(ProxyError::BadTlv);
        };
        let end = 3 + usize::from(u16::from_be_bytes([hi, lo]));
        let Some(after) = rest.get(end..) else {
            return Err(ProxyError::BadTlv);
        };
        rest = after;
    }
    Ok(())
}

/// The longest v1 header, CRLF included (the spec's own bound).
pub const V1_MAX_LEN: usize = 107;
/// The longest v2 header accepted, TLVs included. The spec allows 64 KiB; the unix
/// addresses (216 bytes) plus HAProxy's TLVs fit well within this.
pub const V2_MAX_LEN: usize = 2048;
/// The longest header of either version: a reader never needs to buffer more.
pub const MAX_HEADER_LEN: usize = V2_MAX_LEN;
const _: () = assert!(MAX_HEADER_LEN >= V1_MAX_LEN && MAX_HEADER_LEN >= V2_MAX_LEN);

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
const V2_FIXED_LEN: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn done(buf: &[u8]) -> ProxyHeader {
        match parse_proxy_header(buf) {
            ProxyParse::Done(h) => h,
            other => panic!("{other:?} for {buf:?}"),
        }
    }

    fn invalid(buf: &[u8]) -> ProxyError {
        match parse_proxy_header(buf) {
            ProxyParse::Invalid(e) => e,
            other => panic!("{other:?} for {buf:?}"),
        }
    }

    /// Every strict prefix of a valid header is Incomplete (never Invalid, never Done).
    fn assert_prefixes_incomplete(full: &[u8], len: usize) {
        for n in 0..len {
            assert_eq!(
                parse_proxy_header(&full[..n]),
                ProxyParse::Incomplete,
                "prefix of {n} bytes"
            );
        }
    }

    fn v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | cmd);
        out.push(fam);
        out.extend_from_slice(&u16::try_from(body.len()).expect("short").to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn v4_body() -> Vec<u8> {
        let mut b = vec![192, 0, 2, 7, 198, 51, 100, 1];
        b.extend_from_slice(&40000u16.to_be_bytes());
        b.extend_from_slice(&21u16.to_be_bytes());
        b
    }

    fn v6_body() -> Vec<u8> {
        let mut b = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)
            .octets()
            .to_vec();
        b.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets());
        b.extend_from_slice(&40000u16.to_be_bytes());
        b.extend_from_slice(&21u16.to_be_bytes());
        b
    }

    // v1, spec §2.1: "PROXY TCP4 <src> <dst> <sport> <dport>\r\n".
    #[test]
    fn v1_tcp4() {
        let line = b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 21\r\n";
        let h = done(line);
        assert_eq!(h.len, line.len());
        assert_eq!(
            h.addrs,
            ProxyAddrs::Tcp {
                source: sa("192.0.2.7:40000"),
                destination: sa("198.51.100.1:21")
            }
        );
    }

    #[test]
    fn v1_tcp6() {
        let line = b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 21\r\n";
        let h = done(line);
        assert_eq!(h.len, line.len());
        assert_eq!(
            h.addrs,
            ProxyAddrs::Tcp {
                source: sa("[2001:db8::7]:40000"),
                destination: sa("[2001:db8::1]:21")
            }
        );
    }

    #[test]
    fn v1_followed_by_ftp_bytes_reports_only_the_header() {
        let mut buf = b"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n".to_vec();
        let n = buf.len();
        buf.extend_from_slice(b"USER anonymous\r\n");
        assert_eq!(done(&buf).len, n);
    }

    // Spec: "UNKNOWN" may be followed by anything, which the receiver must ignore.
    #[test]
    fn v1_unknown_is_local() {
        assert_eq!(done(b"PROXY UNKNOWN\r\n").addrs, ProxyAddrs::Local);
        let h = done(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n");
        assert_eq!(h.addrs, ProxyAddrs::Local);
        assert_eq!(h.len, 35);
    }

    #[test]
    fn v1_every_prefix_is_incomplete() {
        let line = b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 21\r\n";
        assert_prefixes_incomplete(line, line.len());
    }

    // The spec's worst case, UNKNOWN with two full IPv6 addresses, is exactly 107 bytes.
    #[test]
    fn v1_longest_line_is_accepted() {
        let a = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let line = format!("PROXY UNKNOWN {a} {a} 65535 65535\r\n");
        assert_eq!(line.len(), V1_MAX_LEN);
        assert_eq!(done(line.as_bytes()).len, V1_MAX_LEN);
        let line = format!("PROXY TCP6 {a} {a} 65535 65535\r\n");
        assert_eq!(done(line.as_bytes()).len, 104);
    }

    #[test]
    fn v1_without_line_end_within_107_bytes_is_too_long() {
        let mut line = b"PROXY UNKNOWN ".to_vec();
        line.resize(V1_MAX_LEN, b'x');
        assert_eq!(invalid(&line), ProxyError::TooLong);
        line.truncate(V1_MAX_LEN - 1);
        assert_eq!(parse_proxy_header(&line), ProxyParse::Incomplete);
        line.extend_from_slice(b"\r\n");
        assert_eq!(invalid(&line), ProxyError::TooLong);
    }

    #[test]
    fn v1_bare_lf_is_refused() {
        assert_eq!(
            invalid(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
            ProxyError::BadLine
        );
    }

    #[test]
    fn v1_grammar_errors() {
        for line in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY \r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 \xff\r\n",
        ] {
            assert_eq!(invalid(line), ProxyError::BadLine, "{line:?}");
        }
    }

    #[test]
    fn v1_bad_addresses() {
        for line in [
            &b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"[..],
            b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
            b"PROXY TCP6 ::1 ::g 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 localhost 1 2\r\n",
        ] {
            assert_eq!(invalid(line), ProxyError::BadAddress, "{line:?}");
        }
    }

    #[test]
    fn v1_bad_ports() {
        for line in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 100000 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 021 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 x\r\n",
        ] {
            assert_eq!(invalid(line), ProxyError::BadPort, "{line:?}");
        }
        let h = done(b"PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n");
        assert_eq!(
            h.addrs,
            ProxyAddrs::Tcp {
                source: sa("1.2.3.4:0"),
                destination: sa("5.6.7.8:65535")
            }
        );
    }

    #[test]
    fn bad_signature_is_refused_at_the_first_wrong_byte() {
        assert_eq!(invalid(b"USER anonymous\r\n"), ProxyError::BadSignature);
        assert_eq!(invalid(b"PROXZ"), ProxyError::BadSignature);
        assert_eq!(invalid(b"\r\n\r\n\0\r\nQUIX"), ProxyError::BadSignature);
        assert_eq!(invalid(b"\r\n\r\r"), ProxyError::BadSignature);
        assert_eq!(invalid(b"GET / HTTP/1.0"), ProxyError::BadSignature);
    }

    #[test]
    fn empty_input_is_incomplete() {
        assert_eq!(parse_proxy_header(b""), ProxyParse::Incomplete);
    }

    // v2, spec §2.2: 0x21 = version 2, PROXY; 0x11 = TCP over IPv4.
    #[test]
    fn v2_tcp4() {
        let buf = v2(1, 0x11, &v4_body());
        let h = done(&buf);
        assert_eq!(h.len, 28);
        assert_eq!(
            h.addrs,
            ProxyAddrs::Tcp {
                source: sa("192.0.2.7:40000"),
                destination: sa("198.51.100.1:21")
            }
        );
    }

    #[test]
    fn v2_tcp6() {
        let buf = v2(1, 0x21, &v6_body());
        let h = done(&buf);
        assert_eq!(h.len, 52);
        assert_eq!(
            h.addrs,
            ProxyAddrs::Tcp {
                source: sa("[2001:db8::7]:40000"),
                destination: sa("[2001:db8::1]:21")
            }
        );
    }

    #[test]
    fn v2_every_prefix_is_incomplete() {
        for buf in [v2(1, 0x11, &v4_body()), v2(1, 0x21, &v6_body())] {
            assert_prefixes_incomplete(&buf, buf.len());
        }
    }

    #[test]
    fn v2_followed_by_ftp_bytes_reports_only_the_header() {
        let mut buf = v2(1, 0x11, &v4_body());
        buf.extend_from_slice(b"USER x\r\n");
        assert_eq!(done(&buf).len, 28);
    }

    // "LOCAL: the receiver must accept this connection as valid and must use the real
    // connection endpoints and discard the protocol block including the family."
    #[test]
    fn v2_local_is_local_whatever_it_carries() {
        assert_eq!(done(&v2(0, 0x00, &[])).addrs, ProxyAddrs::Local);
        assert_eq!(done(&v2(0, 0x11, &v4_body())).addrs, ProxyAddrs::Local);
        assert_eq!(done(&v2(0, 0x21, &[])).addrs, ProxyAddrs::Local);
        assert_eq!(done(&v2(0, 0x12, &v4_body())).addrs, ProxyAddrs::Local);
        assert_eq!(done(&v2(0, 0x31, &[0; 216])).addrs, ProxyAddrs::Local);
        assert_eq!(done(&v2(0, 0x32, &[])).addrs, ProxyAddrs::Local);
        assert_prefixes_incomplete(&v2(0, 0x00, &[]), 16);
    }

    #[test]
    fn v2_proxy_with_unspec_family_is_local() {
        assert_eq!(done(&v2(1, 0x00, &[])).addrs, ProxyAddrs::Local);
        assert_eq!(
            done(&v2(1, 0x00, &[0xEE, 0, 1, 7])).addrs,
            ProxyAddrs::Local
        );
    }

    #[test]
    fn v2_udp_and_unix_are_unsupported() {
        assert_eq!(invalid(&v2(1, 0x12, &v4_body())), ProxyError::Unsupported);
        assert_eq!(invalid(&v2(1, 0x22, &v6_body())), ProxyError::Unsupported);
        assert_eq!(invalid(&v2(1, 0x31, &[0; 216])), ProxyError::Unsupported);
        assert_eq!(invalid(&v2(1, 0x32, &[0; 216])), ProxyError::Unsupported);
    }

    #[test]
    fn v2_undefined_families_are_refused() {
        for fam in [0x01, 0x10, 0x13, 0x20, 0x41, 0xff] {
            assert_eq!(invalid(&v2(1, fam, &v6_body())), ProxyError::BadFamily);
        }
    }

    #[test]
    fn v2_bad_version_is_refused_as_soon_as_it_arrives() {
        for ver_cmd in [0x11u8, 0x31, 0x01, 0xf1] {
            let mut buf = V2_SIGNATURE.to_vec();
            buf.push(ver_cmd);
            assert_eq!(invalid(&buf), ProxyError::BadVersion, "{ver_cmd:#x}");
        }
    }

    #[test]
    fn v2_bad_command_is_refused() {
        let mut buf = V2_SIGNATURE.to_vec();
        buf.push(0x22);
        assert_eq!(invalid(&buf), ProxyError::BadCommand);
        buf.extend_from_slice(&[0x11, 0, 12]);
        buf.extend_from_slice(&v4_body());
        assert_eq!(invalid(&buf), ProxyError::BadCommand);
    }

    // A length shorter than the family's addresses: the header lies about its contents.
    #[test]
    fn v2_length_shorter_than_addresses() {
        let body = v4_body();
        assert_eq!(
            invalid(&v2(1, 0x11, &body[..11])),
            ProxyError::ShortAddresses
        );
        assert_eq!(invalid(&v2(1, 0x21, &body)), ProxyError::ShortAddresses);
        assert_eq!(invalid(&v2(1, 0x11, &[])), ProxyError::ShortAddresses);
    }

    // A length longer than what is sent: wait, never read past the buffer.
    #[test]
    fn v2_length_longer_than_sent_waits() {
        let mut buf = v2(1, 0x11, &v4_body());
        buf[15] = 40;
        assert_eq!(parse_proxy_header(&buf), ProxyParse::Incomplete);
    }

    #[test]
    fn v2_length_beyond_cap_is_refused_from_the_fixed_part() {
        let mut buf = V2_SIGNATURE.to_vec();
        buf.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(invalid(&buf), ProxyError::TooLong);
        let max_body = u16::try_from(V2_MAX_LEN - 16).expect("fits");
        buf.truncate(14);
        buf.extend_from_slice(&(max_body + 1).to_be_bytes());
        assert_eq!(invalid(&buf), ProxyError::TooLong);
    }

    #[test]
    fn v2_longest_accepted_header() {
        let mut body = v4_body();
        let pad = V2_MAX_LEN - 16 - body.len() - 3;
        body.extend_from_slice(&[0x04]);
        body.extend_from_slice(&u16::try_from(pad).expect("fits").to_be_bytes());
        body.resize(body.len() + pad, 0);
        assert_eq!(done(&v2(1, 0x11, &body)).len, V2_MAX_LEN);
    }

    #[test]
    fn v2_tlvs_are_skipped() {
        let mut body = v4_body();
        body.extend_from_slice(&[0x01, 0, 2, b'h', b'2']); // ALPN
        body.extend_from_slice(&[0x05, 0, 0]); // UNIQUE_ID, empty
        body.extend_from_slice(&[0x04, 0, 3, 0, 0, 0]); // NOOP padding
        let buf = v2(1, 0x11, &body);
        let h = done(&buf);
        assert_eq!(h.len, buf.len());
        assert_eq!(
            h.addrs,
            ProxyAddrs::Tcp {
                source: sa("192.0.2.7:40000"),
                destination: sa("198.51.100.1:21")
            }
        );
    }

    #[test]
    fn v2_tlv_overrunning_the_header_is_refused() {
        let mut body = v4_body();
        body.extend_from_slice(&[0x01, 0, 9, b'h', b'2']);
        assert_eq!(invalid(&v2(1, 0x11, &body)), ProxyError::BadTlv);
        let mut body = v4_body();
        body.extend_from_slice(&[0x01, 0]);
        assert_eq!(invalid(&v2(1, 0x11, &body)), ProxyError::BadTlv);
        let mut body = v6_body();
        body.push(0x01);
        assert_eq!(invalid(&v2(1, 0x21, &body)), ProxyError::BadTlv);
        let mut body = v4_body();
        body.extend_from_slice(&[0x04, 0xff, 0xff]);
        assert_eq!(invalid(&v2(1, 0x11, &body)), ProxyError::BadTlv);
        // Under LOCAL the block is discarded unread, TLVs included.
        assert_eq!(done(&v2(0, 0x11, &body)).addrs, ProxyAddrs::Local);
    }
}

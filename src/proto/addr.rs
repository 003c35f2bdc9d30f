//! Data-connection address codecs: PORT/PASV (RFC 959 §4.1.2) and EPRT/EPSV (RFC 2428).
//!
//! The parsers follow pyftpdlib 2.2.0's `ftp_PORT`, `ftp_EPRT` and `ftp_EPSV`, including
//! their lenient number parsing (Python `int()`: surrounding whitespace and a sign are
//! accepted). Foreign-address and privileged-port checks are policy and belong to the
//! session; these functions only decode and encode.
//!
//! A network protocol the server does not know, or one the control connection's family
//! cannot serve, gets RFC 2428's `522 Network protocol not supported, use (prt,prt)`
//! (§2, §3) with the protocols that would work; pyftpdlib answered an unknown protocol
//! with 501. [`parse_eprt_on`] and [`parse_epsv_on`] know the control connection's family
//! and name only the protocol it serves when the other family was asked for; an unknown
//! protocol always gets `use (1,2)`, the protocols the server implements.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::args::py_int;
use super::reply::Reply;

/// The argument of `EPSV` (RFC 2428 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EpsvArg {
    /// No argument: use the control connection's family.
    Any,
    /// `EPSV 1`.
    Ipv4,
    /// `EPSV 2`.
    Ipv6,
    /// `EPSV ALL`: from now on refuse PORT, PASV and EPRT.
    All,
}

/// Address family of the control connection's local socket (pyftpdlib's
/// `self.socket.family`). A dual-stack listener gives IPv4 clients an IPv6 socket
/// (`::ffff:a.b.c.d`), so such sessions are [`ControlFamily::Ipv6`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlFamily {
    /// `AF_INET`.
    Ipv4,
    /// `AF_INET6`, including IPv4-mapped addresses.
    Ipv6,
}

impl ControlFamily {
    /// The family of the control connection's local address.
    pub fn of(local: SocketAddr) -> ControlFamily {
        match local {
            SocketAddr::V4(_) => ControlFamily::Ipv4,
            SocketAddr::V6(_) => ControlFamily::Ipv6,
        }
    }
}

/// Decodes the `PORT` argument `h1,h2,h3,h4,p1,p2` (RFC 959 §4.1.2).
///
/// # Errors
///
/// `501 Invalid PORT format.` unless there are exactly six integers, the first four in
/// 0..=255, `p1` and `p2` non-negative and `p1*256+p2` at most 65535.
///
/// ```
/// use ftpdlib::proto::parse_port;
/// assert_eq!(parse_port("127,0,0,1,4,1").unwrap().to_string(), "127.0.0.1:1025");
/// ```
pub fn parse_port(arg: &str) -> Result<SocketAddrV4, Reply> {
    let invalid = || Reply::new(501, "Invalid PORT format.");
    let mut nums = [0i128; 6];
    let mut fields = arg.split(',');
    for slot in &mut nums {
        *slot = fields.next().and_then(py_int).ok_or_else(invalid)?;
    }
    if fields.next().is_some() {
        return Err(invalid());
    }
    let [h1, h2, h3, h4, p1, p2] = nums;
    let octet = |n: i128| u8::try_from(n).map_err(|_| invalid());
    let ip = Ipv4Addr::new(octet(h1)?, octet(h2)?, octet(h3)?, octet(h4)?);
    // pyftpdlib only bounds the sum, so "1,-1" would be port 255; we want each byte of
    // the port to be a byte.
    if p1 < 0 || p2 < 0 {
        return Err(invalid());
    }
    let port = p1
        .checked_mul(256)
        .and_then(|hi| hi.checked_add(p2))
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(invalid)?;
    Ok(SocketAddrV4::new(ip, port))
}

/// Decodes the `EPRT` argument `<d>proto<d>address<d>port<d>` without knowing the
/// control connection's family (RFC 2428 §2). The delimiter is the first character.
///
/// # Errors
///
/// * `501 Invalid EPRT format.`: not four delimited fields, port not in 0..=65535, or a
///   protocol-1 address that is not a dotted quad.
/// * `522 Network protocol not supported, use (1,2)`: the address belongs to the other
///   family (e.g. `|1|::1|21|`), a protocol-2 address that is not IPv6, or a protocol
///   other than `1` or `2`.
pub fn parse_eprt(arg: &str) -> Result<SocketAddr, Reply> {
    eprt(arg, None)
}

/// Like [`parse_eprt`], with pyftpdlib's checks and wording for a control connection
/// of family `local`.
///
/// # Errors
///
/// * `501 Invalid EPRT format.`: bad fields or port, a protocol-1 address that is not a
///   dotted quad, or a protocol-2 address that is not IPv6.
/// * `522 Network protocol not supported, use (1)`: protocol 2 on an IPv4 control
///   connection. (Protocol 1 on IPv6 is accepted, as pyftpdlib does on dual-stack
///   systems.)
/// * `522 Network protocol not supported, use (1,2)`: other protocols.
pub fn parse_eprt_on(arg: &str, local: ControlFamily) -> Result<SocketAddr, Reply> {
    eprt(arg, Some(local))
}

/// Decodes the optional `EPSV` argument without knowing the control connection's
/// family (RFC 2428 §3): none (or empty) → [`EpsvArg::Any`], `1`, `2`, `ALL` (any case).
///
/// # Errors
///
/// `522 Network protocol not supported, use (1,2)` for anything else.
pub fn parse_epsv(arg: Option<&str>) -> Result<EpsvArg, Reply> {
    epsv(arg, None)
}

/// Like [`parse_epsv`], with pyftpdlib's checks and wording for a control connection
/// of family `local`.
///
/// # Errors
///
/// * `522 Network protocol not supported, use (2)` for `EPSV 1` on IPv6, and
///   `…, use (1)` for `EPSV 2` on IPv4.
/// * `522 Network protocol not supported, use (1,2)` for anything unknown.
pub fn parse_epsv_on(arg: Option<&str>, local: ControlFamily) -> Result<EpsvArg, Reply> {
    epsv(arg, Some(local))
}

/// `227 Entering passive mode (h1,h2,h3,h4,p1,p2).`
///
/// ```
/// use std::net::Ipv4Addr;
/// let r = ftpdlib::proto::pasv_reply(Ipv4Addr::new(10, 0, 0, 1), 1025);
/// assert_eq!(r.lines, ["Entering passive mode (10,0,0,1,4,1)."]);
/// ```
pub fn pasv_reply(ip: Ipv4Addr, port: u16) -> Reply {
    let [a, b, c, d] = ip.octets();
    let [hi, lo] = port.to_be_bytes();
    Reply::new(
        227,
        format!("Entering passive mode ({a},{b},{c},{d},{hi},{lo})."),
    )
}

/// `229 Entering extended passive mode (|||<port>|).`
pub fn epsv_reply(port: u16) -> Reply {
    Reply::new(229, format!("Entering extended passive mode (|||{port}|)."))
}

/// RFC 2428's refusal of a network protocol (§2, §3): `522 Network protocol not
/// supported, use (<usable>)`, where `usable` lists the protocol numbers to use instead,
/// comma-separated, so that the client can retry with one of them.
///
/// ```
/// let r = ftpdlib::proto::protocol_not_supported("1,2");
/// assert_eq!((r.code, r.lines[0].as_str()), (522, "Network protocol not supported, use (1,2)"));
/// ```
pub fn protocol_not_supported(usable: &str) -> Reply {
    Reply::new(
        522,
        format!("Network protocol not supported, use ({usable})"),
    )
}

fn eprt(arg: &str, local: Option<ControlFamily>) -> Result<SocketAddr, Reply> {
    let invalid = || Reply::new(501, "Invalid EPRT format.");
    let delim = arg.chars().next().ok_or_else(invalid)?;
    let fields: Vec<&str> = arg.split(delim).collect();
    // pyftpdlib takes `split(d)[1:-1]` and wants three fields, so it ignores whatever
    // follows the last delimiter; so do we.
    let [_, proto, host, port, _] = fields.as_slice() else {
        return Err(invalid());
    };
    // Port 0 parses; the privileged-port check refuses it, as in pyftpdlib.
    let port = py_int(port)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(invalid)?;
    match *proto {
        "1" => {
            if let Some(ip) = dotted_quad(host) {
                Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
            } else if local.is_none() && host.parse::<Ipv6Addr>().is_ok() {
                Err(protocol_not_supported(usable(local)))
            } else {
                Err(invalid())
            }
        }
        "2" => {
            if local == Some(ControlFamily::Ipv4) {
                return Err(protocol_not_supported(usable(local)));
            }
            match host.parse::<Ipv6Addr>() {
                Ok(ip) => Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0))),
                Err(_) if local.is_none() => Err(protocol_not_supported(usable(local))),
                Err(_) => Err(invalid()),
            }
        }
        _ => Err(protocol_not_supported(KNOWN_PROTOCOLS)),
    }
}

fn epsv(arg: Option<&str>, local: Option<ControlFamily>) -> Result<EpsvArg, Reply> {
    match arg.unwrap_or("") {
        "" => Ok(EpsvArg::Any),
        "1" => match local {
            Some(ControlFamily::Ipv6) => Err(protocol_not_supported("2")),
            Some(ControlFamily::Ipv4) | None => Ok(EpsvArg::Ipv4),
        },
        "2" => match local {
            Some(ControlFamily::Ipv4) => Err(protocol_not_supported("1")),
            Some(ControlFamily::Ipv6) | None => Ok(EpsvArg::Ipv6),
        },
        a if a.eq_ignore_ascii_case("all") => Ok(EpsvArg::All),
        _ => Err(protocol_not_supported(KNOWN_PROTOCOLS)),
    }
}

/// The protocol a control socket of family `local` serves, named when the other family was
/// asked for; without the family, both.
fn usable(local: Option<ControlFamily>) -> &'static str {
    match local {
        Some(ControlFamily::Ipv4) => "1",
        Some(ControlFamily::Ipv6) => "2",
        None => KNOWN_PROTOCOLS,
    }
}

/// Four `int()`-style numbers in 0..=255 separated by dots, as pyftpdlib checks
/// protocol-1 EPRT addresses (so `010.0.0.1` is 10.0.0.1, not octal).
fn dotted_quad(host: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = host.split('.');
    for slot in &mut octets {
        *slot = parts
            .next()
            .and_then(py_int)
            .and_then(|n| u8::try_from(n).ok())?;
    }
    match parts.next() {
        Some(_) => None,
        None => Some(Ipv4Addr::from(octets)),
    }
}

/// The network protocols of RFC 2428 the server implements: 1 (IPv4) and 2 (IPv6).
const KNOWN_PROTOCOLS: &str = "1,2";

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: Reply) -> String {
        let mut out = Vec::new();
        r.write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn v4(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const BAD_PORT: &str = "501 Invalid PORT format.\r\n";
    const BAD_EPRT: &str = "501 Invalid EPRT format.\r\n";

    // --- PORT (RFC 959 §4.1.2: h1,h2,h3,h4,p1,p2)

    #[test]
    fn port_ok() {
        assert_eq!(
            parse_port("127,0,0,1,4,1"),
            Ok(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1025))
        );
    }

    #[test]
    fn port_max() {
        assert_eq!(
            parse_port("255,255,255,255,255,255"),
            Ok(SocketAddrV4::new(Ipv4Addr::BROADCAST, 65535))
        );
    }

    #[test]
    fn port_zero_parses() {
        // Port 0 is refused later by the privileged-port policy, as in pyftpdlib.
        assert_eq!(parse_port("1,2,3,4,0,0").unwrap().port(), 0);
    }

    #[test]
    fn port_p1_over_255_but_sum_in_range_is_rejected() {
        // 256*256 + 0 = 65536 > 65535.
        assert_eq!(
            parse_port("1,2,3,4,256,0").map_err(text),
            Err(BAD_PORT.into())
        );
    }

    #[test]
    fn port_p2_may_exceed_255() {
        // pyftpdlib bounds only p1*256+p2.
        assert_eq!(parse_port("1,2,3,4,0,1000").unwrap().port(), 1000);
    }

    #[test]
    fn port_octet_256() {
        assert_eq!(
            parse_port("256,0,0,1,4,1").map_err(text),
            Err(BAD_PORT.into())
        );
    }

    #[test]
    fn port_negative_octet() {
        assert_eq!(
            parse_port("-1,0,0,1,4,1").map_err(text),
            Err(BAD_PORT.into())
        );
    }

    #[test]
    fn port_negative_port_byte() {
        assert_eq!(
            parse_port("1,2,3,4,1,-1").map_err(text),
            Err(BAD_PORT.into())
        );
        assert_eq!(
            parse_port("1,2,3,4,-1,300").map_err(text),
            Err(BAD_PORT.into())
        );
    }

    #[test]
    fn port_seven_fields() {
        assert_eq!(
            parse_port("1,2,3,4,5,6,7").map_err(text),
            Err(BAD_PORT.into())
        );
    }

    #[test]
    fn port_five_fields() {
        assert_eq!(parse_port("1,2,3,4,5").map_err(text), Err(BAD_PORT.into()));
    }

    #[test]
    fn port_empty_and_junk() {
        for arg in ["", ",,,,,", "a,b,c,d,e,f", "1.2.3.4,5,6", "1,2,3,4,5,6,"] {
            assert_eq!(parse_port(arg).map_err(text), Err(BAD_PORT.into()), "{arg}");
        }
    }

    #[test]
    fn port_overflowing_numbers() {
        assert_eq!(
            parse_port("1,2,3,4,99999999999999999999999999999999999999999,1").map_err(text),
            Err(BAD_PORT.into())
        );
    }

    #[test]
    fn port_python_int_leniency() {
        // Python int() strips whitespace and takes a sign.
        assert_eq!(
            parse_port(" 10, 0,0 ,+1,4,1"),
            Ok(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 1025))
        );
        assert_eq!(
            parse_port("010,0,0,1,0,21").unwrap().ip(),
            &Ipv4Addr::new(10, 0, 0, 1)
        );
    }

    // --- EPRT (RFC 2428 §2)

    #[test]
    fn eprt_ipv4() {
        assert_eq!(
            parse_eprt("|1|132.235.1.2|6275|"),
            Ok(v4("132.235.1.2:6275"))
        );
    }

    #[test]
    fn eprt_ipv6() {
        assert_eq!(
            parse_eprt("|2|1080::8:800:200C:417A|5282|"),
            Ok("[1080::8:800:200c:417a]:5282".parse().unwrap())
        );
        assert_eq!(
            parse_eprt("|2|::1|21000|"),
            Ok("[::1]:21000".parse().unwrap())
        );
    }

    #[test]
    fn eprt_other_delimiters() {
        assert_eq!(parse_eprt("!1!10.0.0.1!2121!"), Ok(v4("10.0.0.1:2121")));
        assert_eq!(
            parse_eprt("#2#::1#2121#"),
            Ok("[::1]:2121".parse().unwrap())
        );
        assert_eq!(parse_eprt("é1é10.0.0.1é2121é"), Ok(v4("10.0.0.1:2121")));
    }

    #[test]
    fn eprt_trailing_text_after_last_delimiter_ignored() {
        assert_eq!(parse_eprt("|1|10.0.0.1|2121|x"), Ok(v4("10.0.0.1:2121")));
    }

    #[test]
    fn eprt_bad_field_count() {
        for arg in [
            "",
            "|",
            "|1|10.0.0.1|2121",
            "|1|10.0.0.1|2121||",
            "1|10.0.0.1|2121|",
        ] {
            assert_eq!(
                parse_eprt(arg).map_err(text),
                Err(BAD_EPRT.into()),
                "{arg:?}"
            );
        }
    }

    #[test]
    fn eprt_bad_port() {
        // Port 0 parses: the caller refuses it as a privileged port.
        assert_eq!(parse_eprt("|1|10.0.0.1|0|"), Ok(v4("10.0.0.1:0")));
        for arg in [
            "|1|10.0.0.1|65536|",
            "|1|10.0.0.1|-1|",
            "|1|10.0.0.1||",
            "|1|10.0.0.1|x|",
            "|9|10.0.0.1|x|",
        ] {
            assert_eq!(
                parse_eprt(arg).map_err(text),
                Err(BAD_EPRT.into()),
                "{arg:?}"
            );
        }
        assert_eq!(parse_eprt("|1|10.0.0.1|65535|"), Ok(v4("10.0.0.1:65535")));
        assert_eq!(parse_eprt("|1|10.0.0.1|1|"), Ok(v4("10.0.0.1:1")));
    }

    #[test]
    fn eprt_bad_ipv4() {
        for host in [
            "10.0.0",
            "10.0.0.1.2",
            "256.0.0.1",
            "a.b.c.d",
            "",
            "-1.0.0.1",
        ] {
            let arg = format!("|1|{host}|2121|");
            assert_eq!(
                parse_eprt(&arg).map_err(text),
                Err(BAD_EPRT.into()),
                "{arg}"
            );
        }
    }

    #[test]
    fn eprt_ipv4_lenient_octets() {
        assert_eq!(parse_eprt("|1|010.0.0.01|2121|"), Ok(v4("10.0.0.1:2121")));
    }

    #[test]
    fn eprt_family_mismatch() {
        let want = "522 Network protocol not supported, use (1,2)\r\n";
        assert_eq!(parse_eprt("|1|::1|2121|").map_err(text), Err(want.into()));
        assert_eq!(
            parse_eprt("|2|10.0.0.1|2121|").map_err(text),
            Err(want.into())
        );
        assert_eq!(parse_eprt("|2|zzz|2121|").map_err(text), Err(want.into()));
    }

    // RFC 2428 §2: an unknown network protocol is refused with 522 and the list of the
    // protocols the server supports (pyftpdlib: 501).
    #[test]
    fn eprt_unknown_protocol() {
        let want = "522 Network protocol not supported, use (1,2)\r\n";
        assert_eq!(
            parse_eprt("|3|10.0.0.1|2121|").map_err(text),
            Err(want.into())
        );
        assert_eq!(
            parse_eprt("||10.0.0.1|2121|").map_err(text),
            Err(want.into())
        );
    }

    #[test]
    fn eprt_on_ipv4_control() {
        let fam = ControlFamily::Ipv4;
        assert_eq!(
            parse_eprt_on("|1|10.0.0.1|2121|", fam),
            Ok(v4("10.0.0.1:2121"))
        );
        assert_eq!(
            parse_eprt_on("|2|::1|2121|", fam).map_err(text),
            Err("522 Network protocol not supported, use (1)\r\n".into())
        );
        assert_eq!(
            parse_eprt_on("|3|::1|2121|", fam).map_err(text),
            Err("522 Network protocol not supported, use (1,2)\r\n".into())
        );
        assert_eq!(
            parse_eprt_on("|1|::1|2121|", fam).map_err(text),
            Err(BAD_EPRT.into())
        );
    }

    #[test]
    fn eprt_on_ipv6_control() {
        let fam = ControlFamily::Ipv6;
        assert_eq!(
            parse_eprt_on("|2|::1|2121|", fam),
            Ok("[::1]:2121".parse().unwrap())
        );
        // Dual-stack: protocol 1 is accepted on an IPv6 socket.
        assert_eq!(
            parse_eprt_on("|1|10.0.0.1|2121|", fam),
            Ok(v4("10.0.0.1:2121"))
        );
        assert_eq!(
            parse_eprt_on("|3|::1|2121|", fam).map_err(text),
            Err("522 Network protocol not supported, use (1,2)\r\n".into())
        );
        assert_eq!(
            parse_eprt_on("|2|zzz|2121|", fam).map_err(text),
            Err(BAD_EPRT.into())
        );
        assert_eq!(
            parse_eprt_on("|2|::1|65536|", fam).map_err(text),
            Err(BAD_EPRT.into())
        );
    }

    #[test]
    fn control_family_of() {
        assert_eq!(ControlFamily::of(v4("1.2.3.4:21")), ControlFamily::Ipv4);
        assert_eq!(
            ControlFamily::of("[::ffff:1.2.3.4]:21".parse().unwrap()),
            ControlFamily::Ipv6
        );
    }

    // --- EPSV (RFC 2428 §3)

    #[test]
    fn epsv_args() {
        assert_eq!(parse_epsv(None), Ok(EpsvArg::Any));
        assert_eq!(parse_epsv(Some("")), Ok(EpsvArg::Any));
        assert_eq!(parse_epsv(Some("1")), Ok(EpsvArg::Ipv4));
        assert_eq!(parse_epsv(Some("2")), Ok(EpsvArg::Ipv6));
        assert_eq!(parse_epsv(Some("ALL")), Ok(EpsvArg::All));
        assert_eq!(parse_epsv(Some("all")), Ok(EpsvArg::All));
        assert_eq!(parse_epsv(Some("aLl")), Ok(EpsvArg::All));
    }

    // RFC 2428 §3: as for EPRT, 522 with the supported protocols.
    #[test]
    fn epsv_unknown() {
        let want = "522 Network protocol not supported, use (1,2)\r\n";
        for arg in ["3", " 1", "1 ", "ALL ", "x", "12"] {
            assert_eq!(
                parse_epsv(Some(arg)).map_err(text),
                Err(want.into()),
                "{arg:?}"
            );
        }
    }

    #[test]
    fn epsv_on_ipv4_control() {
        let fam = ControlFamily::Ipv4;
        assert_eq!(parse_epsv_on(None, fam), Ok(EpsvArg::Any));
        assert_eq!(parse_epsv_on(Some("1"), fam), Ok(EpsvArg::Ipv4));
        assert_eq!(parse_epsv_on(Some("all"), fam), Ok(EpsvArg::All));
        assert_eq!(
            parse_epsv_on(Some("2"), fam).map_err(text),
            Err("522 Network protocol not supported, use (1)\r\n".into())
        );
        assert_eq!(
            parse_epsv_on(Some("x"), fam).map_err(text),
            Err("522 Network protocol not supported, use (1,2)\r\n".into())
        );
    }

    #[test]
    fn epsv_on_ipv6_control() {
        let fam = ControlFamily::Ipv6;
        assert_eq!(parse_epsv_on(Some(""), fam), Ok(EpsvArg::Any));
        assert_eq!(parse_epsv_on(Some("2"), fam), Ok(EpsvArg::Ipv6));
        assert_eq!(
            parse_epsv_on(Some("1"), fam).map_err(text),
            Err("522 Network protocol not supported, use (2)\r\n".into())
        );
        assert_eq!(
            parse_epsv_on(Some("3"), fam).map_err(text),
            Err("522 Network protocol not supported, use (1,2)\r\n".into())
        );
    }

    // --- replies

    #[test]
    fn pasv_reply_text() {
        assert_eq!(
            text(pasv_reply(Ipv4Addr::new(127, 0, 0, 1), 1025)),
            "227 Entering passive mode (127,0,0,1,4,1).\r\n"
        );
        assert_eq!(
            text(pasv_reply(Ipv4Addr::new(192, 168, 1, 200), 65535)),
            "227 Entering passive mode (192,168,1,200,255,255).\r\n"
        );
        assert_eq!(
            text(pasv_reply(Ipv4Addr::UNSPECIFIED, 0)),
            "227 Entering passive mode (0,0,0,0,0,0).\r\n"
        );
    }

    #[test]
    fn pasv_reply_round_trips_through_port() {
        let r = pasv_reply(Ipv4Addr::new(10, 1, 2, 3), 50000);
        let inner = r.lines[0]
            .strip_prefix("Entering passive mode (")
            .and_then(|s| s.strip_suffix(")."))
            .unwrap();
        assert_eq!(
            parse_port(inner),
            Ok(SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 50000))
        );
    }

    #[test]
    fn epsv_reply_text() {
        assert_eq!(
            text(epsv_reply(2121)),
            "229 Entering extended passive mode (|||2121|).\r\n"
        );
    }
}

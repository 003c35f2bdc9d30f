//! The entry points of the fuzz targets in `fuzz/` (feature `fuzzing`), each taking the
//! fuzzer's bytes and panicking when an invariant breaks. The same functions replay the
//! committed corpus under `cargo test` (see `docs/hostile-input.md`), so a crash found by
//! the fuzzer stays fixed on the stable toolchain.
//!
//! Nothing here changes how the server behaves: the module only calls the library.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::proto::gate::gate_parts;
use crate::proto::{
    self, parse_auth, parse_eprt, parse_eprt_on, parse_epsv, parse_epsv_on, parse_port, parse_prot,
    parse_rest, parse_type, split_ls_options, split_offsets, Charset, CommandTable, ControlFamily,
    Pending, ProxyParse, Reply, SessionGate,
};

mod files;
mod records;
mod session;

pub use files::{listing, PathsFixture};
pub use records::{tls_records, tls_upload_records};
/// The built-in certificate's configuration, for the TLS transport's own tests.
#[cfg(test)]
pub(crate) use session::tls_config;
pub use session::{session, tls_session};
/// The built-in certificate and key (PEM), for the TLS configuration's own tests.
#[cfg(test)]
pub(crate) use session::{CERT_PEM, KEY_PEM};

/// The command-line parser and the gate: any line, in any session state, parses to an
/// upper-case command, and the gate either admits a command of the table or answers a
/// well-formed refusal. The argument parsers (TYPE, REST, AUTH, PROT, LIST options, RANG
/// offsets, MFMT times, OPTS) see the argument too.
///
/// The first byte chooses the session state and the one-shot state; the rest is the line.
pub fn command_line(data: &[u8]) {
    let Some((&state, line)) = data.split_first() else {
        return;
    };
    TABLE.with(|table| command_line_in(table, state, line));
}

fn command_line_in(table: &CommandTable, state: u8, line: &[u8]) {
    let req = proto::parse_line(line, table);
    assert!(
        !req.cmd.bytes().any(|b| b.is_ascii_lowercase()),
        "command not upper-cased: {:?}",
        req.cmd
    );
    if !line.contains(&b' ') {
        assert!(req.arg.is_none(), "an argument without a space: {req:?}");
    }
    let session = SessionGate {
        logged_in: state & 1 != 0,
        control_tls_missing: state & 2 != 0,
        data_tls_missing: state & 4 != 0,
    };
    let mut pending = match state >> 3 & 3 {
        0 => Pending::Nothing,
        1 => Pending::RestartAt(u64::from(state)),
        2 => Pending::RenameFrom("/x".into()),
        _ => Pending::Range { start: 1, end: 2 },
    };
    match gate_parts(table, &req.cmd, req.arg.as_deref(), session, &mut pending) {
        Ok(spec) => {
            assert!(table.lookup(&spec.name).is_some(), "admitted {spec:?}");
            if !session.logged_in {
                assert!(!spec.auth, "{} admitted before login", spec.name);
            }
        }
        Err(reply) => {
            assert!(
                (400..600).contains(&reply.code),
                "refusal {reply:?} for {req:?}"
            );
            if table.lookup(&req.cmd).is_none() {
                assert_eq!(reply.code, 500, "unknown {req:?}");
            }
            assert_one_reply(&reply);
        }
    }

    let arg = req.arg.as_deref().unwrap_or("");
    for reply in [
        parse_type(arg).err(),
        parse_rest(arg).err(),
        parse_auth(arg).err(),
        parse_prot(arg).err(),
        Some(proto::stru_reply(arg)),
        Some(proto::mode_reply(arg)),
        Some(proto::opts_reply(
            arg,
            Charset::UTF_8,
            &["type", "size", "modify"],
            &mut vec!["type".to_owned()],
        )),
    ]
    .into_iter()
    .flatten()
    {
        assert_one_reply(&reply);
    }
    if let Ok(offset) = parse_rest(arg) {
        // Python's int(): surrounding whitespace, a sign and leading zeros allowed.
        let digits = arg
            .trim()
            .trim_start_matches(['+', '-'])
            .trim_start_matches('0');
        let shown = if offset == 0 {
            String::new()
        } else {
            offset.to_string()
        };
        assert_eq!(digits, shown, "REST {arg:?}");
    }
    let (_, path) = split_ls_options(arg);
    assert!(arg.ends_with(path), "LIST {arg:?} gave the path {path:?}");
    let (rest, start, end) = split_offsets(arg);
    assert!(arg.contains(rest), "{arg:?} split into {rest:?}");
    if end.is_some() {
        assert!(start.is_some(), "{arg:?}: an end offset without a start");
    }
    for name in [
        "utf-8",
        "latin-1",
        "shift_jis",
        "gb18030",
        "iso-2022-jp",
        "utf-16le",
    ] {
        let Ok(charset) = Charset::from_name(name) else {
            continue;
        };
        let decoded = charset.decode(line);
        let mut back = Vec::new();
        let exact = charset.encode_into(decoded.text.as_bytes(), &mut back);
        // The multi-byte encodings decode some bytes (user-defined areas, duplicates)
        // to characters they encode otherwise or not at all; UTF-8 and Latin-1 do not.
        if decoded.clean && (charset.is_utf8() || charset == Charset::LATIN_1) {
            assert!(exact, "{name}: {line:?} decoded but does not encode back");
            assert_eq!(back, line, "{name} round trip");
        }
        let mut wire = Vec::new();
        let _ = charset.encode_listing(line, &mut wire);
    }
    if let Some(t) = crate::timefmt::parse_mfmt(arg) {
        // A time MFMT accepts is one MDTM can show.
        let shown = crate::timefmt::mdtm(t, true);
        assert_eq!(shown.len(), 14, "MDTM of MFMT {arg:?}: {shown:?}");
    }
}

/// The PORT / EPRT / EPSV decoders and the PASV / EPSV replies: any argument decodes to an
/// address or gets a well-formed 501 / 522; what decodes is what the reply would encode.
pub fn addresses(data: &[u8]) {
    let arg = String::from_utf8_lossy(data);
    match parse_port(&arg) {
        Ok(addr) => {
            let reply = proto::pasv_reply(*addr.ip(), addr.port());
            assert_one_reply(&reply);
            let text = &reply.lines[0];
            let inner = text
                .strip_prefix("Entering passive mode (")
                .and_then(|t| t.strip_suffix(")."))
                .expect("the 227 text");
            assert_eq!(parse_port(inner).ok(), Some(addr), "PORT {arg:?}");
        }
        Err(reply) => {
            assert_eq!(reply.code, 501, "PORT {arg:?}: {reply:?}");
            assert_one_reply(&reply);
        }
    }
    for family in [None, Some(ControlFamily::Ipv4), Some(ControlFamily::Ipv6)] {
        let eprt = match family {
            None => parse_eprt(&arg),
            Some(f) => parse_eprt_on(&arg, f),
        };
        match eprt {
            Ok(addr) => {
                let proto = if addr.is_ipv4() { 1 } else { 2 };
                let again = format!("|{proto}|{}|{}|", addr.ip(), addr.port());
                assert_eq!(parse_eprt(&again).ok(), Some(addr), "EPRT {arg:?}");
            }
            Err(reply) => {
                assert!(matches!(reply.code, 501 | 522), "EPRT {arg:?}: {reply:?}");
                assert_one_reply(&reply);
            }
        }
        for epsv_arg in [None, Some(arg.as_ref())] {
            let epsv = match family {
                None => parse_epsv(epsv_arg),
                Some(f) => parse_epsv_on(epsv_arg, f),
            };
            if let Err(reply) = epsv {
                assert_eq!(reply.code, 522, "EPSV {epsv_arg:?}: {reply:?}");
                assert_one_reply(&reply);
            }
        }
    }
    if let [a, b, ..] = data {
        let port = u16::from_be_bytes([*a, *b]);
        assert_one_reply(&proto::epsv_reply(port));
    }
}

/// The PROXY protocol header parser: whatever the bytes, a decision that does not change
/// as more bytes arrive, a header no longer than the bytes, and no request to read beyond
/// the cap.
pub fn proxy_header(data: &[u8]) {
    use crate::proto::proxy::V2_MAX_LEN;

    let whole = proto::parse_proxy_header(data);
    match &whole {
        ProxyParse::Done(header) => {
            assert!(
                header.len > 0 && header.len <= data.len(),
                "header of {} bytes in {}",
                header.len,
                data.len()
            );
            assert_eq!(proto::parse_proxy_header(&data[..header.len]), whole);
        }
        ProxyParse::Incomplete => {
            assert!(
                data.len() < V2_MAX_LEN,
                "more asked after {} bytes",
                data.len()
            );
        }
        ProxyParse::Invalid(_) => {}
    }
    // Every prefix either still waits or already decided the same way.
    for cut in 0..data.len() {
        match proto::parse_proxy_header(&data[..cut]) {
            ProxyParse::Incomplete => {}
            decided => {
                assert_eq!(decided, whole, "prefix of {cut} bytes decided otherwise");
                break;
            }
        }
    }
}

/// Asserts that `reply`'s wire form is one well-formed reply.
fn assert_one_reply(reply: &Reply) {
    let mut out = Vec::new();
    reply.write_to(&mut out);
    match check_replies(&out) {
        Ok(1) => {}
        Ok(n) => panic!("{reply:?} is {n} replies on the wire: {out:?}"),
        Err(e) => panic!("{reply:?}: {e}"),
    }
}

/// Checks that `wire` is a sequence of complete RFC 959 replies (§4.2): each a line
/// `ddd text` or a block from `ddd-text` to the first line starting `ddd ` with the same
/// code; lines end in CRLF, with no CR or LF elsewhere. Returns how many replies.
///
/// # Errors
/// What is wrong, with the offending line.
pub fn check_replies(wire: &[u8]) -> Result<usize, String> {
    let mut count = 0;
    let mut open: Option<&[u8]> = None;
    let mut rest = wire;
    while !rest.is_empty() {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Err(format!("unterminated line {:?}", ascii(rest)));
        };
        let line = &rest[..end];
        rest = &rest[end + 2..];
        if let Some(bad) = line.iter().position(|&b| b == b'\r' || b == b'\n') {
            return Err(format!("CR or LF at {bad} inside {:?}", ascii(line)));
        }
        let code_sep = (line.len() >= 4 && line[..3].iter().all(u8::is_ascii_digit))
            .then(|| (&line[..3], line[3]));
        match (open, code_sep) {
            (Some(code), Some((c, b' '))) if c == code => {
                open = None;
                count += 1;
            }
            (Some(_), _) => {}
            (None, Some((c, sep))) if (b'1'..=b'5').contains(&c[0]) => match sep {
                b' ' => count += 1,
                b'-' => open = Some(c),
                _ => return Err(format!("bad separator in {:?}", ascii(line))),
            },
            (None, _) => return Err(format!("not a reply line: {:?}", ascii(line))),
        }
    }
    match open {
        Some(code) => Err(format!(
            "multi-line reply {} not closed",
            String::from_utf8_lossy(code)
        )),
        None => Ok(count),
    }
}

fn ascii(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
}

/// A [`SystemTime`] from seconds and nanoseconds around the epoch; the epoch itself when
/// the platform cannot hold it.
pub(crate) fn time_from(secs: i64, nanos: u32) -> SystemTime {
    let nanos = Duration::from_nanos(u64::from(nanos % 1_000_000_000));
    let t = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    t.and_then(|t| t.checked_add(nanos)).unwrap_or(UNIX_EPOCH)
}

thread_local! {
    static TABLE: CommandTable = CommandTable::builtin();
}

#[cfg(test)]
mod tests;

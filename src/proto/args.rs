//! Small argument parsers for TYPE, STRU, MODE (RFC 959 §4.1.2), REST (RFC 3659 §5),
//! OPTS (RFC 2389 §4), AUTH and PROT (RFC 2228 §3, RFC 4217 §4 and §9), and the `ls`
//! options clients put before a LIST path, with pyftpdlib 2.2.0's reply texts where its
//! codes agree with the RFCs.

use super::charset::Charset;
use super::reply::Reply;

/// Representation type set by `TYPE` (RFC 959 §3.1.1). Sessions start in ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TransferType {
    /// `TYPE A` / `TYPE L7`: line endings are converted.
    #[default]
    Ascii,
    /// `TYPE I` / `TYPE L8`: bytes are sent as they are.
    Binary,
}

impl TransferType {
    /// The success reply: `200 Type set to: ASCII.` or `200 Type set to: Binary.`.
    pub fn reply(self) -> Reply {
        Reply::new(200, format!("Type set to: {}.", self.name()))
    }

    /// `"ASCII"` or `"Binary"`, as shown in replies and `STAT` output.
    pub fn name(self) -> &'static str {
        match self {
            TransferType::Ascii => "ASCII",
            TransferType::Binary => "Binary",
        }
    }
}

/// Parses the `TYPE` argument. Spaces are removed and the rest upper-cased, then `A`,
/// `AN` and `L7` mean ASCII and `I` and `L8` mean binary.
///
/// `AN` (`TYPE A N`) is our addition: RFC 959 §5.3.2 gives `A` an optional format
/// control and `N` (non-print) is its default, but pyftpdlib rejects it.
///
/// # Errors
///
/// `504 Unsupported type "<arg>".` with the argument as given.
///
/// ```
/// use ftpdlib::proto::{parse_type, TransferType};
/// assert_eq!(parse_type("i"), Ok(TransferType::Binary));
/// assert_eq!(parse_type("L 8"), Ok(TransferType::Binary));
/// ```
pub fn parse_type(arg: &str) -> Result<TransferType, Reply> {
    let norm = arg.replace(' ', "").to_ascii_uppercase();
    match norm.as_str() {
        "A" | "AN" | "L7" => Ok(TransferType::Ascii),
        "I" | "L8" => Ok(TransferType::Binary),
        _ => Err(Reply::new(504, format!("Unsupported type \"{arg}\"."))),
    }
}

/// The reply to `STRU <arg>` (case-insensitive): only file structure is supported,
/// as in proftpd and wu-ftpd (RFC 1123 §4.1.2.13 lets servers refuse `R`).
pub fn stru_reply(arg: &str) -> Reply {
    match arg.to_ascii_uppercase().as_str() {
        "F" => Reply::new(200, "File transfer structure set to: F."),
        "P" | "R" => Reply::new(504, "Unimplemented STRU type."),
        _ => Reply::new(501, "Unrecognized STRU type."),
    }
}

/// The reply to `MODE <arg>` (case-insensitive): only stream mode is supported. The
/// success text has no final dot, like pyftpdlib.
pub fn mode_reply(arg: &str) -> Reply {
    match arg.to_ascii_uppercase().as_str() {
        "S" => Reply::new(200, "Transfer mode set to: S"),
        "B" | "C" => Reply::new(504, "Unimplemented MODE type."),
        _ => Reply::new(501, "Unrecognized MODE type."),
    }
}

/// Parses the `REST` offset. Like Python's `int()`, surrounding whitespace and a sign
/// are accepted (`-0` is 0).
///
/// # Errors
///
/// `501 Invalid parameter.` for anything that is not an integer, for negative values
/// and for values above `u64::MAX` (pyftpdlib accepts those and fails at RETR).
pub fn parse_rest(arg: &str) -> Result<u64, Reply> {
    py_int(arg)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| Reply::new(501, "Invalid parameter."))
}

/// The reply to `OPTS <arg>` (RFC 2389), updating the enabled MLST facts.
///
/// * More than one space in `arg` → `501 Invalid number of arguments.`
/// * `UTF8 …` / `UTF-8 …` (any case) → `200 Always in UTF8 mode.` when `charset` is
///   UTF-8. Under another encoding, `UTF8 OFF` → `200 UTF8 mode is off (server encoding
///   is <name>).` and anything else (`UTF8 ON`) → `501 UTF8 mode not available (server
///   encoding is <name>).`: the server cannot switch, and a client told 200 would send
///   UTF-8 names that decode to other characters (pyftpdlib says 200 regardless).
/// * `MLST f1;f2;…` → keeps the facts (lower-cased, in the order given) that are in
///   `mlst_facts_available`, stores them in `enabled`, and replies
///   `200 MLST OPTS f1;f2;` (an empty list replies `200 MLST OPTS `). An option without
///   `;` → `501 Invalid argument.` and `enabled` is left alone.
/// * Anything else → `501 Unsupported command "<cmd>".` with the command as given.
///
/// Pass an empty `mlst_facts_available` when MLST is not offered (removed from the
/// command table); `OPTS MLST` then gets the "Unsupported command" reply.
pub fn opts_reply(
    arg: &str,
    charset: Charset,
    mlst_facts_available: &[&str],
    enabled: &mut Vec<String>,
) -> Reply {
    // pyftpdlib: `line.count(" ") > 1` on the argument.
    if arg.matches(' ').count() > 1 {
        return Reply::new(501, "Invalid number of arguments.");
    }
    let (cmd, option) = arg.split_once(' ').unwrap_or((arg, ""));
    let upper = cmd.to_ascii_uppercase();
    match upper.as_str() {
        "UTF8" | "UTF-8" if charset.is_utf8() => Reply::new(200, "Always in UTF8 mode."),
        "UTF8" | "UTF-8" if option.eq_ignore_ascii_case("OFF") => Reply::new(
            200,
            format!("UTF8 mode is off (server encoding is {}).", charset.name()),
        ),
        "UTF8" | "UTF-8" => Reply::new(
            501,
            format!(
                "UTF8 mode not available (server encoding is {}).",
                charset.name()
            ),
        ),
        "MLST" if !mlst_facts_available.is_empty() => {
            if !option.is_empty() && !option.contains(';') {
                return Reply::new(501, "Invalid argument.");
            }
            *enabled = option
                .split(';')
                .map(str::to_ascii_lowercase)
                .filter(|f| mlst_facts_available.contains(&f.as_str()))
                .collect();
            let facts: String = enabled.iter().flat_map(|f| [f.as_str(), ";"]).collect();
            Reply::new(200, format!("MLST OPTS {facts}"))
        }
        _ => Reply::new(501, format!("Unsupported command \"{cmd}\".")),
    }
}

/// The `ls` options that change a LIST (or STAT) of a directory; the others (`-l`, `-F`,
/// `-R` …) are read and ignored, as the listing is always `ls -l`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LsOptions {
    /// `-a` or `-A`: names starting with a dot are shown too.
    pub all: bool,
}

/// Splits the option words (`-la`, `-a -l`: a `-` and letters) off the front of a LIST
/// argument, returning them and the path that follows (empty for the current directory).
/// A word with anything but letters after its `-` is a path: `LIST -1.txt` lists the
/// file `-1.txt`.
///
/// ```
/// use ftpdlib::proto::split_ls_options;
/// let (opts, path) = split_ls_options("-la /pub");
/// assert!(opts.all);
/// assert_eq!(path, "/pub");
/// ```
pub fn split_ls_options(arg: &str) -> (LsOptions, &str) {
    let mut opts = LsOptions::default();
    let mut rest = arg;
    while let Some(stripped) = rest.strip_prefix('-') {
        let end = stripped.find(' ').unwrap_or(stripped.len());
        let flags = &stripped[..end];
        if !flags.chars().all(|c| c.is_ascii_alphabetic()) {
            break;
        }
        opts.all |= flags.contains(['a', 'A']);
        rest = stripped[end..].trim_start_matches(' ');
    }
    (opts, rest)
}

/// The data channel protection level asked for by `PROT` (RFC 2228 §3): of its four,
/// TLS gives two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtLevel {
    /// `PROT C`: data connections in clear.
    Clear,
    /// `PROT P`: data connections over TLS.
    Private,
}

/// Parses the `AUTH` argument (case-insensitive) into the upper-cased mechanism name:
/// `TLS`, `TLS-C`, `SSL` and `TLS-P` all mean TLS on the control connection (RFC 4217 §4).
///
/// # Errors
///
/// `504 Unrecognized encryption type (use TLS or SSL).` for any other mechanism: RFC
/// 2228 §3's "command not implemented for that parameter" (pyftpdlib: 502, "command not
/// implemented", for a command it does implement).
///
/// ```
/// assert_eq!(ftpdlib::proto::parse_auth("tls").as_deref(), Ok("TLS"));
/// assert_eq!(ftpdlib::proto::parse_auth("KERBEROS_V4").map_err(|r| r.code), Err(504));
/// ```
pub fn parse_auth(arg: &str) -> Result<String, Reply> {
    let mechanism = arg.to_ascii_uppercase();
    match mechanism.as_str() {
        "TLS" | "TLS-C" | "SSL" | "TLS-P" => Ok(mechanism),
        _ => Err(Reply::new(
            504,
            "Unrecognized encryption type (use TLS or SSL).",
        )),
    }
}

/// Parses the `PROT` argument (case-insensitive).
///
/// # Errors
///
/// * `536 Requested PROT level not supported by mechanism.` for `S` (safe) and `E`
///   (confidential): levels RFC 2228 defines that TLS does not offer (pyftpdlib: 521).
/// * `504 Unrecognized PROT type (use C or P).` for anything else: a parameter the
///   command does not implement (pyftpdlib: 502).
pub fn parse_prot(arg: &str) -> Result<ProtLevel, Reply> {
    match arg.to_ascii_uppercase().as_str() {
        "C" => Ok(ProtLevel::Clear),
        "P" => Ok(ProtLevel::Private),
        "S" | "E" => Err(Reply::new(
            536,
            "Requested PROT level not supported by mechanism.",
        )),
        _ => Err(Reply::new(504, "Unrecognized PROT type (use C or P).")),
    }
}

/// Parses an integer the way Python's `int(str)` does for ASCII input: surrounding
/// whitespace, an optional sign, then at least one decimal digit. Values that do not
/// fit an `i128` give `None`; every caller has a much smaller range anyway. (Python also
/// takes `_` between digits and non-ASCII digits; we do not.)
pub(super) fn py_int(s: &str) -> Option<i128> {
    let s = s.trim();
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.bytes().try_fold(0i128, |acc, b| {
        acc.checked_mul(10)?.checked_add(i128::from(b - b'0'))
    })?;
    Some(if negative { -magnitude } else { magnitude })
}

/// Splits the argument of XCRC, XMD5, XSHA1, XSHA256 and XSHA512 into the path and the
/// start and end offsets that may follow it, as proftpd's mod_digest reads it: the last
/// one or two words count as offsets when they are numbers and a path comes before them
/// (so a file named `a 10` needs its offsets given: `XCRC a 10 0 5`).
///
/// ```
/// use ftpdlib::proto::split_offsets;
/// assert_eq!(split_offsets("my file 5 10"), ("my file", Some(5), Some(10)));
/// assert_eq!(split_offsets("f 5"), ("f", Some(5), None));
/// assert_eq!(split_offsets("f"), ("f", None, None));
/// ```
pub fn split_offsets(arg: &str) -> (&str, Option<u64>, Option<u64>) {
    match trailing_number(arg) {
        None => (arg, None, None),
        Some((head, last)) => match trailing_number(head) {
            Some((path, first)) => (path, Some(first), Some(last)),
            None => (head, Some(last), None),
        },
    }
}

/// The number ending `rest` after a space, and what comes before it (not empty).
fn trailing_number(rest: &str) -> Option<(&str, u64)> {
    let (head, last) = rest.rsplit_once(' ')?;
    let n = last.parse::<u64>().ok()?;
    (!head.is_empty()).then_some((head, n))
}

/// The arguments of `SITE UTIME`, in either of proftpd's forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtimeArgs<'a> {
    /// The path, which may hold spaces.
    pub path: &'a str,
    /// The new modification time as sent (`YYYYMMDDhhmm` or `YYYYMMDDhhmmss`, UTC).
    pub mtime: &'a str,
    /// The access and creation times of the five-argument form, as sent.
    pub atime_ctime: Option<(&'a str, &'a str)>,
}

/// Splits `SITE UTIME`'s argument: `YYYYMMDDhhmm[ss] path`, or (FileZilla and
/// proftpd) `path atime mtime ctime UTC`, recognised by its last word `UTC` after at
/// least four others. The times are not checked here. `None` without a path.
///
/// ```
/// use ftpdlib::proto::split_utime;
/// let one = split_utime("202401021504 my file").unwrap();
/// assert_eq!((one.mtime, one.path), ("202401021504", "my file"));
/// let five = split_utime("f 20240101000000 20240102000000 20240103000000 UTC").unwrap();
/// assert_eq!((five.path, five.mtime), ("f", "20240102000000"));
/// assert!(split_utime("202401021504").is_none());
/// ```
pub fn split_utime(arg: &str) -> Option<UtimeArgs<'_>> {
    let mut words = arg.rsplitn(5, ' ');
    if let (Some(utc), Some(ctime), Some(mtime), Some(atime), Some(path)) = (
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
    ) {
        if utc.eq_ignore_ascii_case("UTC") && !path.is_empty() {
            return Some(UtimeArgs {
                path,
                mtime,
                atime_ctime: Some((atime, ctime)),
            });
        }
    }
    match arg.split_once(' ') {
        Some((mtime, path)) if !mtime.is_empty() && !path.is_empty() => Some(UtimeArgs {
            path,
            mtime,
            atime_ctime: None,
        }),
        Some(_) | None => None,
    }
}

/// Splits `SITE SYMLINK`'s argument into the path the link will name and the link's
/// own path (which may hold spaces; the first may not). `None` without both.
///
/// ```
/// use ftpdlib::proto::split_symlink;
/// assert_eq!(split_symlink("docs/a.txt link to a"), Some(("docs/a.txt", "link to a")));
/// assert_eq!(split_symlink("only-one"), None);
/// ```
pub fn split_symlink(arg: &str) -> Option<(&str, &str)> {
    match arg.split_once(' ') {
        Some((target, link)) if !target.is_empty() && !link.is_empty() => Some((target, link)),
        Some(_) | None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_utime_forms() {
        let one = split_utime("20240102150405 a b").expect("one time");
        assert_eq!(
            (one.mtime, one.path, one.atime_ctime),
            ("20240102150405", "a b", None)
        );
        let five = split_utime("a b 1 2 3 utc").expect("three times");
        assert_eq!(
            (five.path, five.mtime, five.atime_ctime),
            ("a b", "2", Some(("1", "3")))
        );
        // Not `UTC` at the end: the first word is the time, the rest the path.
        let path = split_utime("1 a 2 3 4").expect("one time");
        assert_eq!((path.mtime, path.path), ("1", "a 2 3 4"));
        assert_eq!(split_utime("1 2 3 UTC").map(|u| u.mtime), Some("1"));
        assert!(split_utime("").is_none());
        assert!(split_utime(" f").is_none());
        assert!(split_utime("t ").is_none());
    }

    #[test]
    fn offsets_follow_the_path() {
        assert_eq!(split_offsets("a b"), ("a b", None, None));
        assert_eq!(split_offsets("10"), ("10", None, None));
        assert_eq!(split_offsets("10 20"), ("10", Some(20), None));
        assert_eq!(split_offsets("f 1 2 3"), ("f 1", Some(2), Some(3)));
        assert_eq!(split_offsets("f -1"), ("f -1", None, None));
    }

    fn text(r: Reply) -> String {
        let mut out = Vec::new();
        r.write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    const FACTS: &[&str] = &["type", "perm", "size", "modify", "unique"];

    fn opts(arg: &str, enabled: &mut Vec<String>) -> String {
        text(opts_reply(arg, Charset::UTF_8, FACTS, enabled))
    }

    // --- TYPE (RFC 959 §4.1.2)

    #[test]
    fn type_ascii() {
        for arg in ["A", "a", "L7", "l7", "L 7", " A ", "A N", "a n", "AN"] {
            assert_eq!(parse_type(arg), Ok(TransferType::Ascii), "{arg:?}");
        }
    }

    #[test]
    fn type_binary() {
        for arg in ["I", "i", "L8", "l8", "L 8", "I "] {
            assert_eq!(parse_type(arg), Ok(TransferType::Binary), "{arg:?}");
        }
    }

    #[test]
    fn type_unsupported_echoes_arg_as_given() {
        assert_eq!(
            parse_type("e").map_err(text),
            Err("504 Unsupported type \"e\".\r\n".into())
        );
        assert_eq!(
            parse_type("A T").map_err(text),
            Err("504 Unsupported type \"A T\".\r\n".into())
        );
        assert_eq!(
            parse_type("L 16").map_err(text),
            Err("504 Unsupported type \"L 16\".\r\n".into())
        );
        assert_eq!(parse_type("").map_err(|r| r.code), Err(504));
        assert_eq!(parse_type("A\tN").map_err(|r| r.code), Err(504));
    }

    #[test]
    fn type_replies() {
        assert_eq!(
            text(TransferType::Ascii.reply()),
            "200 Type set to: ASCII.\r\n"
        );
        assert_eq!(
            text(TransferType::Binary.reply()),
            "200 Type set to: Binary.\r\n"
        );
        assert_eq!(TransferType::default(), TransferType::Ascii);
    }

    // --- STRU, MODE (RFC 959 §4.1.2)

    #[test]
    fn stru() {
        assert_eq!(
            text(stru_reply("F")),
            "200 File transfer structure set to: F.\r\n"
        );
        assert_eq!(
            text(stru_reply("f")),
            "200 File transfer structure set to: F.\r\n"
        );
        assert_eq!(text(stru_reply("P")), "504 Unimplemented STRU type.\r\n");
        assert_eq!(text(stru_reply("r")), "504 Unimplemented STRU type.\r\n");
        assert_eq!(text(stru_reply("X")), "501 Unrecognized STRU type.\r\n");
        assert_eq!(text(stru_reply("F ")), "501 Unrecognized STRU type.\r\n");
        assert_eq!(text(stru_reply("")), "501 Unrecognized STRU type.\r\n");
    }

    #[test]
    fn mode() {
        assert_eq!(text(mode_reply("S")), "200 Transfer mode set to: S\r\n");
        assert_eq!(text(mode_reply("s")), "200 Transfer mode set to: S\r\n");
        assert_eq!(text(mode_reply("B")), "504 Unimplemented MODE type.\r\n");
        assert_eq!(text(mode_reply("c")), "504 Unimplemented MODE type.\r\n");
        assert_eq!(text(mode_reply("Z")), "501 Unrecognized MODE type.\r\n");
        assert_eq!(text(mode_reply("SS")), "501 Unrecognized MODE type.\r\n");
    }

    // --- REST (RFC 3659 §5)

    #[test]
    fn rest_ok() {
        assert_eq!(parse_rest("0"), Ok(0));
        assert_eq!(parse_rest("1024"), Ok(1024));
        assert_eq!(parse_rest(" 7 "), Ok(7));
        assert_eq!(parse_rest("+7"), Ok(7));
        assert_eq!(parse_rest("-0"), Ok(0));
        assert_eq!(parse_rest("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn rest_invalid() {
        for arg in [
            "",
            "-1",
            "abc",
            "1.5",
            "1e3",
            "0x10",
            "18446744073709551616",
            "+",
            "1 2",
        ] {
            assert_eq!(
                parse_rest(arg).map_err(text),
                Err("501 Invalid parameter.\r\n".into()),
                "{arg:?}"
            );
        }
    }

    // --- OPTS (RFC 2389 §4)

    #[test]
    fn opts_utf8() {
        let mut enabled = vec!["type".to_owned()];
        for arg in ["UTF8 ON", "utf8 off", "UTF-8 NLST", "UTF8", "Utf-8 "] {
            assert_eq!(
                opts(arg, &mut enabled),
                "200 Always in UTF8 mode.\r\n",
                "{arg:?}"
            );
        }
        assert_eq!(enabled, ["type"]);
    }

    #[test]
    fn opts_utf8_under_another_encoding() {
        // The server cannot switch to UTF-8: ON is refused, OFF is what it already is.
        let mut enabled = Vec::new();
        let mut opts = |arg| text(opts_reply(arg, Charset::LATIN_1, FACTS, &mut enabled));
        for arg in ["UTF8 ON", "UTF8", "utf-8 on"] {
            assert_eq!(
                opts(arg),
                "501 UTF8 mode not available (server encoding is latin-1).\r\n",
                "{arg:?}"
            );
        }
        assert_eq!(
            opts("UTF8 off"),
            "200 UTF8 mode is off (server encoding is latin-1).\r\n"
        );
    }

    #[test]
    fn opts_mlst_keeps_known_facts() {
        let mut enabled = Vec::new();
        assert_eq!(
            opts("MLST type;size;bogus;", &mut enabled),
            "200 MLST OPTS type;size;\r\n"
        );
        assert_eq!(enabled, ["type", "size"]);
    }

    #[test]
    fn opts_mlst_lowercases_and_keeps_order() {
        let mut enabled = Vec::new();
        assert_eq!(
            opts("mlst Modify;TYPE;", &mut enabled),
            "200 MLST OPTS modify;type;\r\n"
        );
        assert_eq!(enabled, ["modify", "type"]);
    }

    #[test]
    fn opts_mlst_without_trailing_semicolon() {
        let mut enabled = Vec::new();
        assert_eq!(
            opts("MLST type;size", &mut enabled),
            "200 MLST OPTS type;size;\r\n"
        );
    }

    #[test]
    fn opts_mlst_empty_disables_all() {
        let mut enabled = vec!["type".to_owned()];
        assert_eq!(opts("MLST", &mut enabled), "200 MLST OPTS \r\n");
        assert!(enabled.is_empty());
        let mut enabled = vec!["type".to_owned()];
        assert_eq!(opts("MLST ", &mut enabled), "200 MLST OPTS \r\n");
        assert!(enabled.is_empty());
        let mut enabled = vec!["type".to_owned()];
        assert_eq!(opts("MLST ;", &mut enabled), "200 MLST OPTS \r\n");
        assert!(enabled.is_empty());
    }

    #[test]
    fn opts_mlst_without_semicolon_is_invalid() {
        let mut enabled = vec!["type".to_owned()];
        assert_eq!(opts("MLST type", &mut enabled), "501 Invalid argument.\r\n");
        assert_eq!(enabled, ["type"]);
    }

    #[test]
    fn opts_too_many_spaces() {
        let mut enabled = vec!["type".to_owned()];
        assert_eq!(
            opts("MLST type; size;", &mut enabled),
            "501 Invalid number of arguments.\r\n"
        );
        assert_eq!(
            opts("UTF8 ON NOW", &mut enabled),
            "501 Invalid number of arguments.\r\n"
        );
        assert_eq!(
            opts("UTF8  ON", &mut enabled),
            "501 Invalid number of arguments.\r\n"
        );
        assert_eq!(enabled, ["type"]);
    }

    #[test]
    fn opts_unsupported_echoes_cmd_as_given() {
        let mut enabled = Vec::new();
        assert_eq!(
            opts("mode z", &mut enabled),
            "501 Unsupported command \"mode\".\r\n"
        );
        assert_eq!(opts("", &mut enabled), "501 Unsupported command \"\".\r\n");
        assert_eq!(
            opts(" UTF8", &mut enabled),
            "501 Unsupported command \"\".\r\n"
        );
    }

    #[test]
    fn opts_mlst_when_not_offered() {
        let mut enabled = vec!["type".to_owned()];
        assert_eq!(
            text(opts_reply("MLST size;", Charset::UTF_8, &[], &mut enabled)),
            "501 Unsupported command \"MLST\".\r\n"
        );
        assert_eq!(enabled, ["type"]);
    }

    // --- py_int

    #[test]
    fn py_int_cases() {
        assert_eq!(py_int("42"), Some(42));
        assert_eq!(py_int(" -42\t"), Some(-42));
        assert_eq!(py_int("+0"), Some(0));
        assert_eq!(py_int("007"), Some(7));
        assert_eq!(py_int(""), None);
        assert_eq!(py_int("-"), None);
        assert_eq!(py_int("--1"), None);
        assert_eq!(py_int("1_0"), None);
        assert_eq!(py_int("４"), None);
        assert_eq!(py_int(&"9".repeat(60)), None);
    }

    // --- AUTH and PROT (RFC 2228 §3, RFC 4217)

    #[test]
    fn auth_mechanisms_of_tls() {
        for (arg, want) in [
            ("TLS", "TLS"),
            ("tls", "TLS"),
            ("Tls-C", "TLS-C"),
            ("ssl", "SSL"),
        ] {
            assert_eq!(parse_auth(arg).as_deref(), Ok(want), "{arg}");
        }
        assert_eq!(parse_auth("tls-p").as_deref(), Ok("TLS-P"));
    }

    // RFC 2228: "504 Command not implemented for that parameter".
    #[test]
    fn auth_unknown_mechanism_is_504() {
        for arg in ["KERBEROS_V4", "GSSAPI", "TLS ", "", "T"] {
            assert_eq!(
                parse_auth(arg).map_err(text),
                Err("504 Unrecognized encryption type (use TLS or SSL).\r\n".into()),
                "{arg:?}"
            );
        }
    }

    #[test]
    fn prot_levels_of_tls() {
        assert_eq!(parse_prot("C"), Ok(ProtLevel::Clear));
        assert_eq!(parse_prot("p"), Ok(ProtLevel::Private));
    }

    // RFC 2228: "536 Requested PROT level not supported by mechanism."
    #[test]
    fn prot_safe_and_confidential_are_536() {
        for arg in ["S", "s", "E", "e"] {
            assert_eq!(
                parse_prot(arg).map_err(text),
                Err("536 Requested PROT level not supported by mechanism.\r\n".into()),
                "{arg}"
            );
        }
    }

    #[test]
    fn prot_unknown_level_is_504() {
        for arg in ["X", "CP", "", "P "] {
            assert_eq!(
                parse_prot(arg).map_err(text),
                Err("504 Unrecognized PROT type (use C or P).\r\n".into()),
                "{arg:?}"
            );
        }
    }

    // --- ls options before a LIST path

    #[test]
    fn ls_options_are_split_off_the_path() {
        let all = LsOptions { all: true };
        let none = LsOptions::default();
        for (arg, want) in [
            ("", (none, "")),
            ("-l", (none, "")),
            ("-a", (all, "")),
            ("-A", (all, "")),
            ("-la", (all, "")),
            ("-al /pub", (all, "/pub")),
            ("-l -a  sub", (all, "sub")),
            ("-lF sub dir", (none, "sub dir")),
            ("sub", (none, "sub")),
            // Not letters after the dash: a name.
            ("-1.txt", (none, "-1.txt")),
            ("-l -1.txt", (none, "-1.txt")),
            // A lone dash is an empty option word.
            ("- sub", (none, "sub")),
        ] {
            assert_eq!(split_ls_options(arg), want, "{arg:?}");
        }
    }
}

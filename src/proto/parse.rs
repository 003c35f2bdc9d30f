//! Splitting one command line into a command and its argument (RFC 959 §4.1, §5.3), the
//! way pyftpdlib's `found_terminator` and `pre_process_command` do.

use std::borrow::Cow;

use super::command::{CommandTable, SITE_PREFIX};

/// One parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Upper-case command, e.g. `"CWD"` or `"SITE CHMOD"`; may be empty or unknown.
    pub cmd: String,
    /// Everything after the first space, verbatim (`None` when there was no space).
    /// `Some("")` counts as "no argument" for the arity checks.
    pub arg: Option<String>,
}

impl Request {
    /// The argument if one was given and it is not empty.
    pub fn arg_nonempty(&self) -> Option<&str> {
        self.arg.as_deref().filter(|a| !a.is_empty())
    }
}

/// Parses one command line, given without its CRLF terminator.
///
/// Bytes that are not UTF-8 become U+FFFD. The command is the text before the first
/// space, ASCII upper-cased; the argument is the rest, untrimmed (RFC 959 §5.3.2 allows
/// exactly one `<SP>`; `CWD  sub` means `" sub"`). `SITE <word> …` becomes the command
/// `SITE <WORD>`. An unknown command ending in `ABOR`, `STAT` or `QUIT` is taken as that
/// command, tolerating clients that prefix Telnet IP/Synch bytes in-band
/// (RFC 959 §4.1.3).
///
/// ```
/// use ftpdlib::proto::{parse_line, CommandTable};
/// let table = CommandTable::builtin();
/// let req = parse_line(b"site chmod 755 f", &table);
/// assert_eq!(req.cmd, "SITE CHMOD");
/// assert_eq!(req.arg.as_deref(), Some("755 f"));
/// ```
pub fn parse_line(line: &[u8], table: &CommandTable) -> Request {
    let text = line_text(line);
    let parsed = ParsedLine::parse(&text, table);
    Request {
        cmd: parsed.cmd.into_owned(),
        arg: parsed.arg.map(str::to_owned),
    }
}

/// A command line as text: bytes that are not UTF-8 become U+FFFD. Valid UTF-8 (nearly
/// every line) is checked on `from_utf8`'s fast path and borrowed.
pub(crate) fn line_text(line: &[u8]) -> Cow<'_, str> {
    std::str::from_utf8(line).map_or_else(|_| String::from_utf8_lossy(line), Cow::Borrowed)
}

/// [`parse_line`]'s result borrowing from the line: the session's parse, which allocates
/// only for a command that was not sent in upper case.
#[derive(Debug)]
pub(crate) struct ParsedLine<'a> {
    pub(crate) cmd: Cow<'a, str>,
    pub(crate) arg: Option<&'a str>,
}

impl<'a> ParsedLine<'a> {
    /// [`parse_line`] of a line already decoded to text.
    pub(crate) fn parse(line: &'a str, table: &CommandTable) -> ParsedLine<'a> {
        let (mut cmd, mut arg) = split_word(line);

        if cmd == "SITE" {
            if let Some(rest) = arg.filter(|a| !a.is_empty()) {
                let (sub, sub_arg) = split_word(rest);
                cmd = Cow::Owned(format!("{SITE_PREFIX}{sub}"));
                arg = sub_arg;
            }
        }

        if table.lookup(&cmd).is_none() {
            // pyftpdlib takes `cmd[-4:]`: the last four characters, not bytes.
            let tail_start = cmd.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
            let tail = &cmd[tail_start..];
            if let Some(special) = TELNET_TOLERANT.iter().find(|s| **s == tail) {
                cmd = Cow::Borrowed(*special);
            }
        }

        ParsedLine { cmd, arg }
    }
}

/// Splits at the first single space: (upper-cased word, rest verbatim).
fn split_word(text: &str) -> (Cow<'_, str>, Option<&str>) {
    // A plain scan: lines are short, shorter than a substring searcher's setup.
    let (word, rest) = match text.bytes().position(|b| b == b' ') {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let word = if word.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(word.to_ascii_uppercase())
    } else {
        Cow::Borrowed(word)
    };
    (word, rest)
}

/// Commands recognised by their last four characters (Telnet IP/Synch prefixes).
const TELNET_TOLERANT: [&str; 3] = ["ABOR", "STAT", "QUIT"];

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Request {
        parse_line(line.as_bytes(), &CommandTable::builtin())
    }

    fn req(cmd: &str, arg: Option<&str>) -> Request {
        Request {
            cmd: cmd.to_owned(),
            arg: arg.map(str::to_owned),
        }
    }

    // --- parse_line (RFC 959 §5.3: <command> [<SP> <argument>])

    #[test]
    fn plain_command_no_arg() {
        assert_eq!(parse("NOOP"), req("NOOP", None));
    }

    #[test]
    fn lowercase_command_upper_cased() {
        assert_eq!(parse("retr file.txt"), req("RETR", Some("file.txt")));
        assert_eq!(parse("Pwd"), req("PWD", None));
    }

    #[test]
    fn session_parse_borrows_an_upper_case_line() {
        let table = CommandTable::builtin();
        let parsed = ParsedLine::parse("USER alice", &table);
        assert!(matches!(parsed.cmd, Cow::Borrowed("USER")));
        assert_eq!(parsed.arg, Some("alice"));
        let parsed = ParsedLine::parse("user alice", &table);
        assert!(matches!(parsed.cmd, Cow::Owned(ref c) if c == "USER"));
        let parsed = ParsedLine::parse("site chmod 755 f", &table);
        assert_eq!(
            (parsed.cmd.as_ref(), parsed.arg),
            ("SITE CHMOD", Some("755 f"))
        );
    }

    #[test]
    fn arg_not_upper_cased() {
        assert_eq!(parse("USER Alice"), req("USER", Some("Alice")));
    }

    #[test]
    fn arg_kept_verbatim_with_extra_spaces() {
        assert_eq!(parse("CWD  sub"), req("CWD", Some(" sub")));
        assert_eq!(parse("STOR a b  "), req("STOR", Some("a b  ")));
    }

    #[test]
    fn trailing_space_gives_empty_arg() {
        assert_eq!(parse("CWD "), req("CWD", Some("")));
        assert_eq!(parse("CWD ").arg_nonempty(), None);
    }

    #[test]
    fn arg_nonempty_returns_text() {
        assert_eq!(parse("CWD x").arg_nonempty(), Some("x"));
        assert_eq!(parse("CWD").arg_nonempty(), None);
    }

    #[test]
    fn tab_is_not_a_separator() {
        assert_eq!(parse("CWD\tsub"), req("CWD\tSUB", None));
    }

    #[test]
    fn empty_line() {
        assert_eq!(parse(""), req("", None));
    }

    #[test]
    fn leading_space_means_empty_command() {
        assert_eq!(parse(" NOOP"), req("", Some("NOOP")));
    }

    #[test]
    fn bare_lf_stays_in_command() {
        assert_eq!(parse("NOOP\n"), req("NOOP\n", None));
    }

    #[test]
    fn invalid_utf8_replaced() {
        let table = CommandTable::builtin();
        let r = parse_line(b"MKD \xe9t\xe9", &table);
        assert_eq!(r, req("MKD", Some("\u{FFFD}t\u{FFFD}")));
    }

    #[test]
    fn non_ascii_command_not_unicode_upper_cased() {
        assert_eq!(parse("é x"), req("é", Some("x")));
    }

    #[test]
    fn site_subcommand() {
        assert_eq!(parse("SITE CHMOD 755 f"), req("SITE CHMOD", Some("755 f")));
    }

    #[test]
    fn site_lowercase() {
        assert_eq!(parse("site chmod 755 f"), req("SITE CHMOD", Some("755 f")));
    }

    #[test]
    fn site_help_no_arg() {
        assert_eq!(parse("SITE help"), req("SITE HELP", None));
    }

    #[test]
    fn site_help_with_arg() {
        assert_eq!(parse("SITE HELP chmod"), req("SITE HELP", Some("chmod")));
    }

    #[test]
    fn site_sub_trailing_space() {
        assert_eq!(parse("SITE HELP "), req("SITE HELP", Some("")));
    }

    #[test]
    fn site_alone() {
        assert_eq!(parse("SITE"), req("SITE", None));
        assert_eq!(parse("SITE "), req("SITE", Some("")));
    }

    #[test]
    fn site_unknown_sub() {
        assert_eq!(parse("SITE foo bar"), req("SITE FOO", Some("bar")));
    }

    #[test]
    fn site_double_space_gives_empty_word() {
        // Like pyftpdlib: "SITE  chmod" is the (unknown) command "SITE ".
        assert_eq!(parse("SITE  chmod"), req("SITE ", Some("chmod")));
    }

    #[test]
    fn site_chmod_arg_verbatim() {
        assert_eq!(
            parse("SITE CHMOD  755 f"),
            req("SITE CHMOD", Some(" 755 f"))
        );
    }

    #[test]
    fn telnet_prefixed_abor() {
        // IAC IP IAC DM sent in-band before ABOR (RFC 959 §4.1.3).
        let table = CommandTable::builtin();
        let r = parse_line(b"\xff\xf4\xff\xf2ABOR", &table);
        assert_eq!(r, req("ABOR", None));
    }

    #[test]
    fn telnet_prefixed_stat_and_quit() {
        assert_eq!(parse("xxSTAT"), req("STAT", None));
        assert_eq!(parse("\u{FFFD}quit"), req("QUIT", None));
        assert_eq!(parse("XXSTAT /tmp"), req("STAT", Some("/tmp")));
    }

    #[test]
    fn telnet_tolerance_counts_chars() {
        // Multi-byte characters right before the tail must not split a char.
        assert_eq!(parse("ééABOR"), req("ABOR", None));
        assert_eq!(parse("éé"), req("éé", None));
        assert_eq!(parse("BOR"), req("BOR", None));
    }

    #[test]
    fn telnet_tolerance_only_for_unknown() {
        assert_eq!(parse("XABORT"), req("XABORT", None));
        assert_eq!(parse("RETR"), req("RETR", None));
    }

    #[test]
    fn site_with_stat_tail_becomes_stat() {
        // pyftpdlib applies the tail rule after the SITE rewrite.
        assert_eq!(parse("SITE xstat"), req("STAT", None));
    }

    #[test]
    fn removed_command_is_not_found() {
        let mut table = CommandTable::builtin();
        table.remove("pasv");
        assert!(table.lookup("PASV").is_none());
        assert_eq!(parse_line(b"PASV", &table), req("PASV", None));
    }
}

//! Control-channel replies and their wire form (RFC 959 §4.2).
//!
//! A [`Reply`] is a code plus one or more text lines. Single-line replies are
//! `"<code> <text>\r\n"`. Multi-line replies follow pyftpdlib: the first line is
//! `"<code>-<text>"`, middle lines are written exactly as given (callers supply their
//! own leading space, e.g. `" EPRT"`), and the last line is `"<code> <text>"`.

/// One reply to send on the control channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit reply code, e.g. `226`.
    pub code: u16,
    /// Text lines without codes or terminators. One entry means a single-line reply.
    pub lines: Vec<String>,
}

/// `value` in decimal, written into `buf`: a reply's code and a log line's port are
/// formatted on the stack, without `Formatter`.
pub(crate) fn decimal(value: u16, buf: &mut [u8; 5]) -> &str {
    // Only ASCII digits are written.
    std::str::from_utf8(decimal_digits(value, buf)).unwrap_or_default()
}

/// [`decimal`]'s digits as bytes, for callers that assemble ASCII text of their own.
pub(crate) fn decimal_digits(value: u16, buf: &mut [u8; 5]) -> &[u8] {
    let mut n = value;
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

impl Reply {
    /// A single-line reply: `"<code> <text>\r\n"`.
    ///
    /// ```
    /// use ftpdlib::proto::Reply;
    /// let mut out = Vec::new();
    /// Reply::new(200, "Type set to: Binary.").write_to(&mut out);
    /// assert_eq!(out, b"200 Type set to: Binary.\r\n");
    /// ```
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply: `"<code>-<first>"`, the middle lines verbatim, then
    /// `"<code> <last>"`. With one line this is the same as [`Reply::new`]; an empty
    /// `lines` is written as `"<code> \r\n"`.
    ///
    /// ```
    /// use ftpdlib::proto::Reply;
    /// let r = Reply::multi(211, vec!["Features supported:".into(), " EPRT".into(), "End FEAT.".into()]);
    /// let mut out = Vec::new();
    /// r.write_to(&mut out);
    /// assert_eq!(out, b"211-Features supported:\r\n EPRT\r\n211 End FEAT.\r\n");
    /// ```
    pub fn multi(code: u16, lines: Vec<String>) -> Reply {
        Reply { code, lines }
    }

    /// The greeting rule pyftpdlib uses for the 220 banner, the 221 quit message and
    /// the 230 login message: text up to 75 characters is one line, longer text is
    /// sent as `"<code>-<text>\r\n<code> \r\n"`.
    pub fn banner(code: u16, text: impl Into<String>) -> Reply {
        let text = text.into();
        if Reply::banner_fits_one_line(&text) {
            Reply::new(code, text)
        } else {
            Reply::multi(code, vec![text, String::new()])
        }
    }

    /// Whether [`Reply::banner`] sends `text` as a single line.
    pub(crate) fn banner_fits_one_line(text: &str) -> bool {
        // pyftpdlib compares `len(str)`, i.e. code points, not bytes.
        text.len() <= BANNER_MAX_CHARS || text.chars().count() <= BANNER_MAX_CHARS
    }

    /// Appends the wire form to `out`; every line ends in `\r\n`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        Reply::write_lines(self.code, &self.lines, out);
    }

    /// The wire form of a reply given as its parts (see [`Reply::multi`]).
    pub(crate) fn write_lines<T: AsRef<str>>(code: u16, lines: &[T], out: &mut Vec<u8>) {
        let mut digits = [0u8; 5];
        let code = decimal(code, &mut digits);
        match lines {
            [] => push_line(out, code, ' ', ""),
            [only] => push_line(out, code, ' ', only.as_ref()),
            [first, middle @ .., last] => {
                push_line(out, code, '-', first.as_ref());
                for line in middle {
                    push_text(out, line.as_ref());
                    out.extend_from_slice(b"\r\n");
                }
                push_line(out, code, ' ', last.as_ref());
            }
        }
    }

    /// The text of the final line (what pyftpdlib logs), without the code.
    pub fn last_line_text(&self) -> &str {
        self.lines.last().map_or("", String::as_str)
    }

    /// Whether this is a transient or permanent negative reply (code 400 or above).
    pub fn is_error(&self) -> bool {
        Reply::is_error_code(self.code)
    }

    /// [`Reply::is_error`] of a bare code.
    pub(crate) fn is_error_code(code: u16) -> bool {
        code >= 400
    }
}

/// Doubles every `"` in `p`, the RFC 959 convention for paths quoted in 257 replies
/// (appendix II, "Directory commands").
///
/// ```
/// assert_eq!(ftpdlib::proto::quote_path(r#"/a"b"#), r#"/a""b"#);
/// ```
pub fn quote_path(p: &str) -> String {
    p.replace('"', "\"\"")
}

fn push_line(out: &mut Vec<u8>, code: &str, sep: char, text: &str) {
    out.extend_from_slice(code.as_bytes());
    out.push(sep as u8);
    push_text(out, text);
    out.extend_from_slice(b"\r\n");
}

/// Appends reply text with any CR or LF in it (an echoed command, a file name) turned
/// into a space: a client must never see a line break the server did not mean, or an
/// echoed argument could pose as a reply of its own (pyftpdlib sent them raw).
fn push_text(out: &mut Vec<u8>, text: &str) {
    let start = out.len();
    out.extend_from_slice(text.as_bytes());
    for b in &mut out[start..] {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
}

/// Longest greeting pyftpdlib sends on one line.
const BANNER_MAX_CHARS: usize = 75;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_written_in_decimal() {
        for (code, text) in [
            (0, "0"),
            (7, "7"),
            (226, "226"),
            (1000, "1000"),
            (65535, "65535"),
        ] {
            let mut digits = [0u8; 5];
            assert_eq!(decimal(code, &mut digits), text);
            let mut out = Vec::new();
            Reply::new(code, "x").write_to(&mut out);
            assert_eq!(out, format!("{text} x\r\n").as_bytes());
        }
    }

    #[test]
    fn line_breaks_inside_text_are_neutralised() {
        let mut out = Vec::new();
        Reply::new(500, "Command \"NOOP\nNOOP\r\n211 fake\" not understood.").write_to(&mut out);
        assert_eq!(
            out,
            b"500 Command \"NOOP NOOP  211 fake\" not understood.\r\n"
        );
        let mut out = Vec::new();
        Reply::multi(211, vec!["a".into(), " b\nc".into(), "d".into()]).write_to(&mut out);
        assert_eq!(out, b"211-a\r\n b c\r\n211 d\r\n");
    }

    fn wire(r: &Reply) -> String {
        let mut out = Vec::new();
        r.write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn single_line() {
        assert_eq!(
            wire(&Reply::new(200, "I successfully did nothing'.")),
            "200 I successfully did nothing'.\r\n"
        );
    }

    #[test]
    fn single_line_empty_text() {
        assert_eq!(wire(&Reply::new(220, "")), "220 \r\n");
    }

    #[test]
    fn write_appends() {
        let mut out = b"x".to_vec();
        Reply::new(221, "Goodbye.").write_to(&mut out);
        Reply::new(226, "Done.").write_to(&mut out);
        assert_eq!(out, b"x221 Goodbye.\r\n226 Done.\r\n");
    }

    #[test]
    fn multi_three_lines() {
        let r = Reply::multi(211, vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(wire(&r), "211-a\r\nb\r\n211 c\r\n");
    }

    #[test]
    fn multi_two_lines() {
        let r = Reply::multi(250, vec!["Listing \"/\":".into(), "End MLST.".into()]);
        assert_eq!(wire(&r), "250-Listing \"/\":\r\n250 End MLST.\r\n");
    }

    #[test]
    fn multi_one_line_is_single() {
        let r = Reply::multi(211, vec!["a".into()]);
        assert_eq!(wire(&r), "211 a\r\n");
        assert_eq!(r, Reply::new(211, "a"));
    }

    #[test]
    fn multi_empty_does_not_panic() {
        let r = Reply::multi(211, Vec::new());
        assert_eq!(wire(&r), "211 \r\n");
        assert_eq!(r.last_line_text(), "");
    }

    #[test]
    fn multi_middle_lines_verbatim() {
        // RFC 2389 FEAT: feature lines start with a space, supplied by the caller.
        let r = Reply::multi(
            211,
            vec![
                "Features supported:".into(),
                " EPRT".into(),
                " EPSV".into(),
                "End FEAT.".into(),
            ],
        );
        assert_eq!(
            wire(&r),
            "211-Features supported:\r\n EPRT\r\n EPSV\r\n211 End FEAT.\r\n"
        );
    }

    #[test]
    fn banner_short() {
        assert_eq!(
            wire(&Reply::banner(220, "pyftpdlib 2.2.0 ready.")),
            "220 pyftpdlib 2.2.0 ready.\r\n"
        );
    }

    #[test]
    fn banner_exactly_75_is_one_line() {
        let text = "x".repeat(75);
        assert_eq!(wire(&Reply::banner(230, &*text)), format!("230 {text}\r\n"));
    }

    #[test]
    fn banner_76_is_two_lines() {
        let text = "x".repeat(76);
        assert_eq!(
            wire(&Reply::banner(221, &*text)),
            format!("221-{text}\r\n221 \r\n")
        );
    }

    #[test]
    fn banner_counts_chars_not_bytes() {
        // 75 two-byte characters: 150 bytes but 75 code points, like Python's len().
        let text = "é".repeat(75);
        assert_eq!(Reply::banner(220, &*text).lines.len(), 1);
    }

    #[test]
    fn banner_long_last_line_is_empty() {
        let r = Reply::banner(220, "y".repeat(100));
        assert_eq!(r.last_line_text(), "");
    }

    #[test]
    fn last_line_text_single_and_multi() {
        assert_eq!(
            Reply::new(226, "Transfer complete.").last_line_text(),
            "Transfer complete."
        );
        let r = Reply::multi(214, vec!["a".into(), "Help command successful.".into()]);
        assert_eq!(r.last_line_text(), "Help command successful.");
    }

    #[test]
    fn is_error_boundaries() {
        assert!(!Reply::new(150, "").is_error());
        assert!(!Reply::new(257, "").is_error());
        assert!(!Reply::new(399, "").is_error());
        assert!(Reply::new(400, "").is_error());
        assert!(Reply::new(421, "").is_error());
        assert!(Reply::new(550, "").is_error());
    }

    #[test]
    fn raw_lf_not_sent() {
        // pyftpdlib echoes a bare LF inside a 500 reply; we send a space instead.
        assert_eq!(
            wire(&Reply::new(500, "Command \"NOOP\n\" not understood.")),
            "500 Command \"NOOP \" not understood.\r\n"
        );
    }

    #[test]
    fn quote_path_doubles_quotes() {
        assert_eq!(quote_path("/plain"), "/plain");
        assert_eq!(quote_path("\""), "\"\"");
        assert_eq!(quote_path("/a\"b\"\"c"), "/a\"\"b\"\"\"\"c");
        assert_eq!(quote_path(""), "");
    }
}

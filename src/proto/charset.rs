//! The control channel's character set (pyftpdlib's `encoding`): UTF-8 (RFC 2640, the
//! default), Latin-1, or any other encoding of the WHATWG Encoding Standard whose bytes
//! are a superset of ASCII (`windows-1251`, `shift_jis`, `gbk`, `euc-kr`, `koi8-r` …),
//! through `encoding_rs`. Paths on disk stay UTF-8 whatever the setting, as in pyftpdlib;
//! only what crosses the wire is converted.
//!
//! A UTF-8 session converts nothing: a line that is valid UTF-8 is borrowed as text and
//! replies are written as they are. The other encodings borrow too while a line or a
//! reply is plain ASCII, which nearly all are.
//!
//! Latin-1 is handled here rather than by `encoding_rs`: the Encoding Standard maps the
//! label `iso-8859-1` to windows-1252, while pyftpdlib's `latin-1` (Python's codec) is
//! ISO-8859-1 proper, every byte the character of the same number. It also keeps UTF-8 and
//! Latin-1 working in a build without the `encodings` feature (no `encoding_rs`, whose
//! tables weigh about 240 KB).

use std::borrow::Cow;

use self::wide::Other;

/// A supported `encoding`: compare with [`Charset::UTF_8`], name it with
/// [`Charset::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charset(Kind);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Utf8,
    Latin1,
    /// An ASCII-compatible encoding other than UTF-8 (checked by `from_name`). Without
    /// the `encodings` feature `Other` has no values, and this variant is never built.
    #[cfg_attr(not(feature = "encodings"), allow(dead_code))]
    Other(Other),
}

/// Why [`Charset::from_name`] refused a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CharsetError {
    /// Neither a Python codec name for UTF-8 or Latin-1 nor a label of the Encoding
    /// Standard.
    #[error(
        "unknown encoding {0:?} (use a name such as utf-8, latin-1, windows-1251, shift_jis, gbk)"
    )]
    Unknown(String),
    /// A known encoding whose bytes are not a superset of ASCII (UTF-16LE, UTF-16BE,
    /// ISO-2022-JP, replacement): the FTP control channel is ASCII commands and CRLF.
    #[error("encoding {0:?} cannot carry FTP commands: its bytes are not a superset of ASCII (use utf-8, or for Japanese shift_jis or euc-jp)")]
    NotAsciiCompatible(String),
    /// Not UTF-8 or Latin-1, in a build without the `encodings` feature.
    #[error(
        "encoding {0:?}: this build knows only utf-8 and latin-1 (the `encodings` feature is off)"
    )]
    NotBuilt(String),
}

/// A command line decoded to text.
#[derive(Debug)]
pub struct Decoded<'a> {
    /// The text; bytes that could not be decoded became U+FFFD.
    pub text: Cow<'a, str>,
    /// False when some bytes could not be decoded.
    pub clean: bool,
}

impl Charset {
    /// UTF-8, the default.
    pub const UTF_8: Charset = Charset(Kind::Utf8);

    /// ISO-8859-1.
    pub const LATIN_1: Charset = Charset(Kind::Latin1);

    /// The charset for a name: pyftpdlib's Python codec names for UTF-8 and Latin-1
    /// (`utf-8`, `utf8`, `latin-1`, `latin1`, `iso-8859-1`, `l1` …), or any label of the
    /// WHATWG Encoding Standard (`cp1251`, `windows-1251`, `shift_jis`, `sjis`, `gbk`,
    /// `gb18030`, `euc-kr`, `big5`, `koi8-r`, `iso-8859-5` …). Case does not matter, and
    /// `_` may stand for `-` (`euc_kr`, `iso_8859_5`), as Python allows. The Standard's
    /// other Latin labels (`ascii`, `us-ascii`, `cp1252`) are windows-1252.
    ///
    /// ```
    /// use ftpdlib::proto::Charset;
    ///
    /// assert_eq!(Charset::from_name("latin_1"), Ok(Charset::LATIN_1));
    /// assert!(Charset::from_name("utf-16le").is_err());
    /// # #[cfg(feature = "encodings")]
    /// assert_eq!(Charset::from_name("cp1251").map(Charset::name), Ok("windows-1251"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`CharsetError::Unknown`] for a name that is neither,
    /// [`CharsetError::NotAsciiCompatible`] for UTF-16 and the other encodings that
    /// cannot carry FTP's ASCII commands, and [`CharsetError::NotBuilt`] for any name but
    /// UTF-8's and Latin-1's in a build without the `encodings` feature.
    pub fn from_name(name: &str) -> Result<Charset, CharsetError> {
        let n = name.trim().to_ascii_lowercase().replace('_', "-");
        match n.as_str() {
            "utf-8" | "utf8" | "u8" => return Ok(Charset::UTF_8),
            "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "l1" | "8859" | "cp819" => {
                return Ok(Charset::LATIN_1)
            }
            _ => {}
        }
        wide::for_label(name, &n)
    }

    /// The encoding's name as replies and logs give it (`utf-8`, `latin-1`,
    /// `windows-1251`, `Shift_JIS`, `GBK` …).
    pub fn name(self) -> &'static str {
        match self.0 {
            Kind::Utf8 => "utf-8",
            Kind::Latin1 => "latin-1",
            Kind::Other(encoding) => wide::name(encoding),
        }
    }

    /// Whether this is UTF-8 (FEAT's `UTF8`, `OPTS UTF8 ON`).
    pub fn is_utf8(self) -> bool {
        matches!(self.0, Kind::Utf8)
    }

    /// A command line as text. Valid UTF-8 in a UTF-8 session, and plain ASCII in any
    /// session, is borrowed; bytes that cannot be decoded become U+FFFD and clear
    /// [`Decoded::clean`] (pyftpdlib's `errors="replace"`).
    pub fn decode(self, bytes: &[u8]) -> Decoded<'_> {
        match self.0 {
            Kind::Utf8 => match std::str::from_utf8(bytes) {
                Ok(text) => Decoded {
                    text: Cow::Borrowed(text),
                    clean: true,
                },
                Err(_) => Decoded {
                    text: String::from_utf8_lossy(bytes),
                    clean: false,
                },
            },
            // Every byte is a Latin-1 character: never unclean.
            Kind::Latin1 => Decoded {
                text: match std::str::from_utf8(bytes) {
                    // Valid UTF-8 that is not ASCII still means other characters here.
                    Ok(ascii) if bytes.is_ascii() => Cow::Borrowed(ascii),
                    Ok(_) | Err(_) => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
                },
                clean: true,
            },
            Kind::Other(encoding) => wide::decode(encoding, bytes),
        }
    }

    /// Server text (UTF-8 bytes, maybe a raw file name that is not UTF-8) as the client's
    /// bytes, appended to `out`. A character the encoding cannot show is written as `?`
    /// (and so is each byte of `utf8` that is not UTF-8 in a session that is not UTF-8).
    /// Returns false when that happened.
    pub fn encode_into(self, utf8: &[u8], out: &mut Vec<u8>) -> bool {
        match self.0 {
            Kind::Utf8 => {
                out.extend_from_slice(utf8);
                true
            }
            // Every supported encoding shows ASCII as itself (`from_name` refuses the
            // others).
            Kind::Latin1 | Kind::Other(_) if utf8.is_ascii() => {
                out.extend_from_slice(utf8);
                true
            }
            Kind::Latin1 | Kind::Other(_) => {
                let text = String::from_utf8_lossy(utf8);
                let valid = matches!(text, Cow::Borrowed(_));
                self.encode_text(&text, out) && valid
            }
        }
    }

    /// Whether `text` can be sent in this encoding without a `?` standing in for a
    /// character.
    pub fn can_encode(self, text: &str) -> bool {
        match self.0 {
            Kind::Utf8 => true,
            Kind::Latin1 => text.chars().all(|c| u32::from(c) <= 0xff),
            Kind::Other(_) if text.is_ascii() => true,
            Kind::Other(encoding) => wide::encode(encoding, text, &mut Vec::new()),
        }
    }

    /// `text` in this encoding, `?` for what it cannot show; false when that happened.
    fn encode_text(self, text: &str, out: &mut Vec<u8>) -> bool {
        match self.0 {
            Kind::Utf8 => {
                out.extend_from_slice(text.as_bytes());
                true
            }
            Kind::Latin1 => {
                let mut exact = true;
                for c in text.chars() {
                    let byte = u8::try_from(u32::from(c)).unwrap_or_else(|_| {
                        exact = false;
                        b'?'
                    });
                    out.push(byte);
                }
                exact
            }
            Kind::Other(encoding) => wide::encode(encoding, text, out),
        }
    }

    /// A listing (lines ending in CRLF, UTF-8 bytes from the filesystem) in the client's
    /// encoding, appended to `out`. A line holding a name the encoding cannot show is
    /// left out rather than sent with a `?` in it: the client could not use that name
    /// to reach the file (it would name a different one). Returns how many lines were
    /// left out.
    pub fn encode_listing(self, utf8: &[u8], out: &mut Vec<u8>) -> usize {
        if self.is_utf8() {
            out.extend_from_slice(utf8);
            return 0;
        }
        let mut skipped = 0;
        for line in utf8.split_inclusive(|&b| b == b'\n') {
            let start = out.len();
            if !self.encode_into(line, out) {
                out.truncate(start);
                skipped += 1;
            }
        }
        skipped
    }
}

/// The encodings of the WHATWG Encoding Standard, through `encoding_rs`.
#[cfg(feature = "encodings")]
mod wide {
    use encoding_rs::{EncoderResult, Encoding};

    use super::{Charset, CharsetError, Decoded, Kind};

    /// An ASCII-compatible encoding other than UTF-8.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) struct Other(&'static Encoding);

    /// `name` as a label of the Standard (`normalized`: lower case, `-` for `_`).
    pub(super) fn for_label(name: &str, normalized: &str) -> Result<Charset, CharsetError> {
        // The label as given first: a few labels hold a `_` (`shift_jis`,
        // `ks_c_5601-1987`) that the normalization breaks.
        let encoding = Encoding::for_label(name.trim().as_bytes())
            .or_else(|| Encoding::for_label(normalized.as_bytes()))
            .ok_or_else(|| CharsetError::Unknown(name.to_owned()))?;
        if encoding == encoding_rs::UTF_8 {
            Ok(Charset::UTF_8)
        } else if encoding.is_ascii_compatible() {
            Ok(Charset(Kind::Other(Other(encoding))))
        } else {
            Err(CharsetError::NotAsciiCompatible(name.to_owned()))
        }
    }

    pub(super) fn name(Other(encoding): Other) -> &'static str {
        encoding.name()
    }

    /// Borrows ASCII input (`encoding_rs` does for an ASCII-compatible encoding).
    pub(super) fn decode(Other(encoding): Other, bytes: &[u8]) -> Decoded<'_> {
        let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
        Decoded {
            text,
            clean: !had_errors,
        }
    }

    /// Encodes `text`, writing `?` for each character the encoding cannot show; returns
    /// false when there was one.
    pub(super) fn encode(Other(encoding): Other, text: &str, out: &mut Vec<u8>) -> bool {
        let mut encoder = encoding.new_encoder();
        let mut src = text;
        let mut exact = true;
        loop {
            // Room for the rest of the input at once; the loop also copes with less.
            let room = encoder
                .max_buffer_length_from_utf8_without_replacement(src.len())
                .unwrap_or(src.len())
                .max(16);
            let start = out.len();
            out.resize(start + room, 0);
            let (result, read, written) =
                encoder.encode_from_utf8_without_replacement(src, &mut out[start..], true);
            out.truncate(start + written);
            src = &src[read..];
            match result {
                EncoderResult::InputEmpty => return exact,
                EncoderResult::OutputFull => {}
                EncoderResult::Unmappable(_) => {
                    exact = false;
                    out.push(b'?');
                }
            }
        }
    }
}

/// A build without the `encodings` feature: UTF-8 and Latin-1 only, so no value of
/// `Kind::Other` can exist.
#[cfg(not(feature = "encodings"))]
mod wide {
    use super::{Charset, CharsetError, Decoded};

    /// Has no values.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Other {}

    pub(super) fn for_label(name: &str, _normalized: &str) -> Result<Charset, CharsetError> {
        Err(CharsetError::NotBuilt(name.to_owned()))
    }

    pub(super) fn name(encoding: Other) -> &'static str {
        match encoding {}
    }

    pub(super) fn decode(encoding: Other, _bytes: &[u8]) -> Decoded<'_> {
        match encoding {}
    }

    pub(super) fn encode(encoding: Other, _text: &str, _out: &mut Vec<u8>) -> bool {
        match encoding {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charset(name: &str) -> Charset {
        Charset::from_name(name).expect(name)
    }

    /// Decodes `wire` cleanly to `text`, and `text` encodes back to `wire`.
    #[cfg(feature = "encodings")]
    fn round_trip(name: &str, wire: &[u8], text: &str) {
        let cs = charset(name);
        let d = cs.decode(wire);
        assert!(d.clean, "{name}");
        assert_eq!(d.text, text, "{name}");
        let mut back = Vec::new();
        assert!(cs.encode_into(text.as_bytes(), &mut back), "{name}");
        assert_eq!(back, wire, "{name}");
        assert!(cs.can_encode(text), "{name}");
    }

    #[test]
    fn latin1_and_utf8_without_the_feature() {
        // What every build has.
        let d = Charset::LATIN_1.decode(b"MKD caf\xe9");
        assert!(d.clean);
        assert_eq!(d.text, "MKD café");
        assert!(matches!(
            Charset::LATIN_1.decode(b"PWD").text,
            Cow::Borrowed(_)
        ));
        let mut back = Vec::new();
        assert!(Charset::LATIN_1.encode_into("café".as_bytes(), &mut back));
        assert_eq!(back, b"caf\xe9");
        let mut out = Vec::new();
        assert!(!Charset::LATIN_1.encode_into("日本".as_bytes(), &mut out));
        assert_eq!(out, b"??");
        let d = Charset::UTF_8.decode(b"\xff");
        assert!(!d.clean);
        assert_eq!(d.text, "\u{FFFD}");
    }

    #[test]
    #[cfg(not(feature = "encodings"))]
    fn other_encodings_need_the_feature() {
        let err = Charset::from_name("cp1251").expect_err("not built");
        assert_eq!(err, CharsetError::NotBuilt("cp1251".into()));
        assert!(err.to_string().contains("`encodings` feature"), "{err}");
    }

    #[test]
    fn python_names() {
        assert_eq!(charset("UTF-8"), Charset::UTF_8);
        assert_eq!(charset("utf_8"), Charset::UTF_8);
        assert_eq!(charset("latin_1"), Charset::LATIN_1);
        assert_eq!(charset("ISO-8859-1"), Charset::LATIN_1);
        assert_eq!(charset("l1").name(), "latin-1");
    }

    #[test]
    #[cfg(feature = "encodings")]
    fn whatwg_labels() {
        assert_eq!(charset("cp1251").name(), "windows-1251");
        assert_eq!(charset("Windows-1251").name(), "windows-1251");
        assert_eq!(charset("shift_jis").name(), "Shift_JIS");
        assert_eq!(charset("sjis").name(), "Shift_JIS");
        assert_eq!(charset("gbk").name(), "GBK");
        assert_eq!(charset("gb18030").name(), "gb18030");
        assert_eq!(charset("euc_kr").name(), "EUC-KR");
        assert_eq!(charset("big5").name(), "Big5");
        assert_eq!(charset("koi8-r").name(), "KOI8-R");
        assert_eq!(charset("iso_8859_5").name(), "ISO-8859-5");
        assert_eq!(charset(" unicode-1-1-utf-8 "), Charset::UTF_8);
        assert!(!charset("cp1251").is_utf8());
    }

    #[test]
    #[cfg(feature = "encodings")]
    fn refused_names() {
        assert_eq!(
            Charset::from_name("klingon"),
            Err(CharsetError::Unknown("klingon".into()))
        );
        assert_eq!(
            Charset::from_name(""),
            Err(CharsetError::Unknown(String::new()))
        );
        for name in [
            "utf-16",
            "utf-16le",
            "UTF-16BE",
            "iso-2022-jp",
            "replacement",
        ] {
            let err = Charset::from_name(name).expect_err(name);
            assert!(
                matches!(err, CharsetError::NotAsciiCompatible(_)),
                "{name}: {err}"
            );
            assert!(err.to_string().contains("ASCII"), "{err}");
        }
        // `replacement` is reached through labels such as `iso-2022-kr`.
        assert!(matches!(
            Charset::from_name("iso-2022-kr"),
            Err(CharsetError::NotAsciiCompatible(_))
        ));
    }

    #[test]
    #[cfg(feature = "encodings")]
    fn round_trips() {
        round_trip("cp1251", b"\xcf\xf0\xe8\xe2\xe5\xf2.txt", "Привет.txt");
        round_trip("koi8-r", b"\xf0\xd2\xc9\xd7\xc5\xd4", "Привет");
        round_trip("shift_jis", b"\x93\xfa\x96\x7b\x8c\xea.txt", "日本語.txt");
        round_trip("gbk", b"\xd6\xd0\xce\xc4", "中文");
        round_trip("gb18030", b"\xd6\xd0\xce\xc4", "中文");
        round_trip("euc-kr", b"\xc7\xd1\xb1\xdb", "한글");
        round_trip("big5", b"\xa4\xa4\xa4\xe5", "中文");
        round_trip("latin-1", b"caf\xe9", "café");
        round_trip("utf-8", "café".as_bytes(), "café");
    }

    #[test]
    #[cfg(feature = "encodings")]
    fn ascii_is_borrowed() {
        for name in ["utf-8", "latin-1", "cp1251", "shift_jis"] {
            let d = charset(name).decode(b"RETR a.txt");
            assert!(matches!(d.text, Cow::Borrowed(_)), "{name}");
        }
        // And so is valid UTF-8 in a UTF-8 session.
        let d = Charset::UTF_8.decode("MKD café".as_bytes());
        assert!(matches!(d.text, Cow::Borrowed(_)));
    }

    #[test]
    #[cfg(feature = "encodings")]
    fn undecodable_input() {
        // Not UTF-8: U+FFFD, and the line is not clean.
        let d = Charset::UTF_8.decode(b"MKD \xe9t\xe9");
        assert!(!d.clean);
        assert_eq!(d.text, "MKD \u{FFFD}t\u{FFFD}");
        // Shift_JIS: a lead byte without its trail byte.
        let d = charset("shift_jis").decode(b"MKD \x93");
        assert!(!d.clean);
        assert!(d.text.contains('\u{FFFD}'));
        // EUC-KR: 0xff is no character.
        assert!(!charset("euc-kr").decode(b"\xff").clean);
        // A real U+FFFD sent as UTF-8 is clean.
        assert!(Charset::UTF_8.decode("\u{FFFD}".as_bytes()).clean);
        // Every byte is a Latin-1 character.
        assert!(Charset::LATIN_1.decode(b"\x80\xff").clean);
    }

    #[test]
    #[cfg(feature = "encodings")]
    fn unrepresentable_output() {
        let mut out = Vec::new();
        assert!(!Charset::LATIN_1.encode_into("日本".as_bytes(), &mut out));
        assert_eq!(out, b"??");
        let mut out = Vec::new();
        assert!(!charset("cp1251").encode_into("a日b".as_bytes(), &mut out));
        assert_eq!(out, b"a?b");
        let mut out = Vec::new();
        assert!(!charset("shift_jis").encode_into("Привет€".as_bytes(), &mut out));
        assert!(out.ends_with(b"?"), "{out:?}");
        assert!(!charset("koi8-r").can_encode("日本"));
        assert!(!Charset::LATIN_1.can_encode("Привет"));
        // A file name that is not UTF-8 cannot be shown in another encoding.
        let mut out = Vec::new();
        assert!(!charset("cp1251").encode_into(b"\xff", &mut out));
        // UTF-8 passes anything through.
        let mut out = Vec::new();
        assert!(Charset::UTF_8.encode_into(b"\xff", &mut out));
        assert_eq!(out, b"\xff");
    }

    #[test]
    #[cfg(feature = "encodings")]
    fn listing_leaves_out_unrepresentable_lines() {
        let listing = "a.txt\r\nПривет.txt\r\n日本.txt\r\nb.txt\r\n";
        let mut out = Vec::new();
        assert_eq!(
            charset("cp1251").encode_listing(listing.as_bytes(), &mut out),
            1
        );
        assert_eq!(out, b"a.txt\r\n\xcf\xf0\xe8\xe2\xe5\xf2.txt\r\nb.txt\r\n");
        let mut out = Vec::new();
        assert_eq!(
            Charset::UTF_8.encode_listing(listing.as_bytes(), &mut out),
            0
        );
        assert_eq!(out, listing.as_bytes());
        // A name that is not UTF-8 on disk.
        let mut out = Vec::new();
        assert_eq!(
            charset("shift_jis").encode_listing(b"\xff\r\nok\r\n", &mut out),
            1
        );
        assert_eq!(out, b"ok\r\n");
    }
}

//! The control channel's character set (pyftpdlib's `encoding`): UTF-8 (RFC 2640, the
//! default) or Latin-1 for old clients. Paths on disk stay UTF-8 either way, as in
//! pyftpdlib; only what crosses the wire is converted.

use std::borrow::Cow;

/// A supported `encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Charset {
    /// UTF-8; bytes that are not UTF-8 become U+FFFD.
    Utf8,
    /// ISO-8859-1: every byte is the character of the same number.
    Latin1,
}

impl Charset {
    /// The charset for a pyftpdlib / Python codec name (`utf-8`, `utf8`, `latin-1`,
    /// `latin1`, `iso-8859-1`, `iso8859-1`, `l1`, any case), or None.
    pub fn from_name(name: &str) -> Option<Charset> {
        let n = name.trim().to_ascii_lowercase().replace('_', "-");
        match n.as_str() {
            "utf-8" | "utf8" | "u8" => Some(Charset::Utf8),
            "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "l1" | "8859" | "cp819" => {
                Some(Charset::Latin1)
            }
            _ => None,
        }
    }

    /// Client bytes as UTF-8 bytes (Latin-1 is widened; UTF-8 passes as is and is
    /// decoded lossily later).
    pub fn decode<'a>(self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        match self {
            Charset::Utf8 => Cow::Borrowed(bytes),
            Charset::Latin1 if bytes.is_ascii() => Cow::Borrowed(bytes),
            Charset::Latin1 => {
                let s: String = bytes.iter().map(|&b| char::from(b)).collect();
                Cow::Owned(s.into_bytes())
            }
        }
    }

    /// Server text (UTF-8 bytes, maybe raw file names) as the client's bytes, appended to
    /// `out`. Characters Latin-1 cannot show become `?`.
    pub fn encode_into(self, utf8: &[u8], out: &mut Vec<u8>) {
        match self {
            Charset::Utf8 => out.extend_from_slice(utf8),
            Charset::Latin1 if utf8.is_ascii() => out.extend_from_slice(utf8),
            Charset::Latin1 => {
                for c in String::from_utf8_lossy(utf8).chars() {
                    out.push(u8::try_from(u32::from(c)).unwrap_or(b'?'));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(Charset::from_name("UTF-8"), Some(Charset::Utf8));
        assert_eq!(Charset::from_name("latin_1"), Some(Charset::Latin1));
        assert_eq!(Charset::from_name("ISO-8859-1"), Some(Charset::Latin1));
        assert_eq!(Charset::from_name("gbk"), None);
    }

    #[test]
    fn latin1_round_trip() {
        let wire = b"MKD caf\xe9";
        let utf8 = Charset::Latin1.decode(wire);
        assert_eq!(&*utf8, "MKD café".as_bytes());
        let mut back = Vec::new();
        Charset::Latin1.encode_into(&utf8, &mut back);
        assert_eq!(back, wire);
        let mut out = Vec::new();
        Charset::Latin1.encode_into("日本".as_bytes(), &mut out);
        assert_eq!(out, b"??");
    }

    #[test]
    fn utf8_passes_through() {
        assert_eq!(&*Charset::Utf8.decode(b"\xff"), b"\xff");
        let mut out = Vec::new();
        Charset::Utf8.encode_into("é".as_bytes(), &mut out);
        assert_eq!(out, "é".as_bytes());
    }
}

//! Control-channel encodings other than UTF-8 (`encoding`, `--encoding`): a raw client
//! sends windows-1251 and Shift_JIS bytes; the names on disk are UTF-8, the names in
//! replies and listings are the client's bytes. Undecodable names are refused before
//! they reach the disk, and a name on disk that the client's encoding cannot show is left
//! out of listings.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ftpdlib::proto::Charset;

use crate::util::{data_connect, BinServer, TestServer, IO_TIMEOUT};

/// `Привет.txt`, `Мир.txt` and `каталог` in windows-1251.
const CP1251_FILE: &[u8] = b"\xcf\xf0\xe8\xe2\xe5\xf2.txt";
const CP1251_RENAMED: &[u8] = b"\xcc\xe8\xf0.txt";
const CP1251_DIR: &[u8] = b"\xea\xe0\xf2\xe0\xeb\xee\xe3";

/// `日本語.txt`, `ソ表.txt` (both trail bytes are 0x5C, the ASCII backslash) and `資料`
/// in Shift_JIS.
const SJIS_FILE: &[u8] = b"\x93\xfa\x96\x7b\x8c\xea.txt";
const SJIS_RENAMED: &[u8] = b"\x83\x5c\x95\x5c.txt";
const SJIS_DIR: &[u8] = b"\x8e\x91\x97\xbf";

#[test]
fn cp1251_names_round_trip() {
    names_round_trip(
        "cp1251",
        [CP1251_FILE, CP1251_RENAMED, CP1251_DIR],
        ["Привет.txt", "Мир.txt", "каталог"],
    );
}

#[test]
fn shift_jis_names_round_trip() {
    names_round_trip(
        "shift_jis",
        [SJIS_FILE, SJIS_RENAMED, SJIS_DIR],
        ["日本語.txt", "ソ表.txt", "資料"],
    );
}

#[test]
fn undecodable_names_are_refused_and_nothing_is_created() {
    let srv = server("shift_jis");
    let mut c = Wire::login(srv.addr);
    // 0xFF is no Shift_JIS byte; 0x93 is a lead byte without its trail byte.
    for line in [&b"MKD \xffbad"[..], b"MKD a\x93", b"DELE \xff", b"CWD \xff"] {
        let (code, text) = c.cmd(line);
        assert_eq!(code, 501, "{line:?}");
        assert_eq!(text, b"can't decode path (server encoding is Shift_JIS)");
    }
    c.expect(b"TYPE I", 200);
    let data = c.pasv();
    assert_eq!(c.cmd(b"STOR \xff.txt").0, 501);
    drop(data);
    c.expect(b"RNFR \xff", 501);
    // A name that does decode is fine, in the same session.
    c.expect(b"MKD ok", 257);
    assert_eq!(names_on_disk(&srv.root()), ["ok"]);
    // A non-path argument is decoded with U+FFFD, as pyftpdlib does.
    c.expect(b"SITE HELP \xff", 501);
    c.expect(b"QUIT", 221);
}

#[test]
fn utf8_session_refuses_bytes_that_are_not_utf8() {
    // pyftpdlib creates a directory named with two U+FFFD; the name is refused instead.
    let srv = TestServer::start();
    let mut c = Wire::login(srv.addr);
    let (code, text) = c.cmd(b"MKD \xe9t\xe9");
    assert_eq!(code, 501);
    assert_eq!(text, b"can't decode path (server encoding is utf-8)");
    // A U+FFFD sent as UTF-8 is a name like any other.
    c.expect("MKD \u{FFFD}".as_bytes(), 257);
    assert_eq!(names_on_disk(&srv.root()), ["\u{FFFD}"]);
    c.expect(b"QUIT", 221);
}

#[test]
fn names_the_encoding_cannot_show_are_left_out_of_listings() {
    let srv = server("cp1251");
    let root = srv.root();
    std::fs::write(root.join("Привет.txt"), b"shown").expect("write");
    std::fs::write(root.join("日本.txt"), b"not shown").expect("write");
    // A name that is not UTF-8 at all.
    std::fs::write(root.join(std::ffi::OsStr::from_bytes(b"raw\xff")), b"x").expect("write");
    let mut c = Wire::login(srv.addr);
    for cmd in [&b"LIST"[..], b"NLST", b"MLSD"] {
        let out = c.listing(cmd);
        assert_eq!(count_lines(&out), 1, "{cmd:?}: {out:?}");
        assert!(contains(&out, CP1251_FILE), "{cmd:?}: {out:?}");
    }
    let (code, status) = c.cmd(b"STAT /");
    assert_eq!(code, 213);
    assert!(contains(&status, CP1251_FILE), "{status:?}");
    assert!(!contains(&status, b"?"), "{status:?}");
    // The client cannot name the hidden file: the `?` a lossy conversion would show
    // names nothing, and the UTF-8 bytes of its name decode to other characters.
    c.expect(b"TYPE I", 200);
    for name in [&b"??.txt"[..], "日本.txt".as_bytes()] {
        let mut line = b"RETR ".to_vec();
        line.extend_from_slice(name);
        let (code, _) = c.cmd(&line);
        assert_eq!(code, 550, "{line:?}");
    }
    c.expect(b"QUIT", 221);
    assert_eq!(
        std::fs::read(root.join("日本.txt")).expect("read"),
        b"not shown"
    );
}

#[test]
fn opts_utf8_and_feat_under_another_encoding() {
    let srv = server("cp1251");
    let mut c = Wire::login(srv.addr);
    let (code, text) = c.cmd(b"OPTS UTF8 ON");
    assert_eq!(code, 501);
    assert_eq!(
        text,
        b"UTF8 mode not available (server encoding is windows-1251)."
    );
    c.expect(b"OPTS UTF8 OFF", 200);
    let feat = c.expect(b"FEAT", 211);
    assert!(!contains(&feat, b"UTF8"), "{feat:?}");
    c.expect(b"QUIT", 221);
}

#[test]
fn encodings_that_are_not_ascii_based_stop_the_start() {
    for name in [
        "utf-16le",
        "UTF-16BE",
        "utf-16",
        "replacement",
        "iso-2022-jp",
    ] {
        let mut cfg = ftpdlib::config::HandlerConfig::default();
        cfg.encoding = name.to_owned();
        let err =
            ftpdlib::servers::FtpServer::builder(ftpdlib::authorizers::DummyAuthorizer::new())
                .handler_config(cfg)
                .bind("127.0.0.1:0")
                .err()
                .unwrap_or_else(|| panic!("{name} accepted"));
        assert!(err.to_string().contains("ASCII"), "{name}: {err}");
    }
    assert!(Charset::from_name("no-such-encoding").is_err());
}

#[test]
fn binary_serves_windows_1251() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_str().expect("a UTF-8 temporary path");
    let srv = BinServer::start(&["-w", "-d", dir, "--encoding", "windows-1251"]);
    let mut c = Wire::connect(srv.addr);
    c.expect(b"USER anonymous", 331);
    c.expect(b"PASS a@b", 230);
    let mut mkd = b"MKD ".to_vec();
    mkd.extend_from_slice(CP1251_DIR);
    let text = c.expect(&mkd, 257);
    assert!(contains(&text, CP1251_DIR), "{text:?}");
    assert_eq!(names_on_disk(tmp.path()), ["каталог"]);
    c.expect(b"QUIT", 221);
}

/// STOR, LIST/NLST/MLSD, RETR, RNFR/RNTO, MKD/CWD/PWD with `wire` names under
/// `encoding`; `disk` are the same names in UTF-8.
fn names_round_trip(encoding: &str, wire: [&[u8]; 3], disk: [&str; 3]) {
    let [file, renamed, dir] = wire;
    let srv = server(encoding);
    let root = srv.root();
    let mut c = Wire::login(srv.addr);
    c.upload(&[b"STOR ", file].concat(), b"contents");
    assert_eq!(names_on_disk(&root), [disk[0]]);
    assert_eq!(
        std::fs::read(root.join(disk[0])).expect("read"),
        b"contents"
    );
    let nlst = c.listing(b"NLST");
    assert_eq!(nlst, [file, b"\r\n"].concat());
    let list = c.listing(b"LIST");
    assert!(list.ends_with(&[b" ", file, b"\r\n"].concat()), "{list:?}");
    let mlsd = c.listing(b"MLSD");
    assert!(mlsd.ends_with(&[b"; ", file, b"\r\n"].concat()), "{mlsd:?}");
    let (code, mlst) = c.cmd(&[b"MLST ", file].concat());
    assert_eq!(code, 250);
    assert!(contains(&mlst, file), "{mlst:?}");
    assert_eq!(c.download(&[b"RETR ", file].concat()), b"contents");
    c.expect(&[b"RNFR ", file].concat(), 350);
    c.expect(&[b"RNTO ", renamed].concat(), 250);
    assert_eq!(names_on_disk(&root), [disk[1]]);
    let text = c.expect(&[b"MKD ", dir].concat(), 257);
    assert_eq!(text, [b"\"/", dir, b"\" directory created."].concat());
    c.expect(&[b"CWD ", dir].concat(), 250);
    let pwd = c.expect(b"PWD", 257);
    assert_eq!(pwd, [b"\"/", dir, b"\" is the current directory."].concat());
    c.expect(b"CDUP", 250);
    c.expect(&[b"SIZE ", renamed].concat(), 213);
    c.expect(&[b"DELE ", renamed].concat(), 250);
    assert_eq!(names_on_disk(&root), [disk[2]]);
    c.expect(b"QUIT", 221);
}

fn server(encoding: &str) -> TestServer {
    let encoding = encoding.to_owned();
    TestServer::with(move |h| h.encoding = encoding, |_| {})
}

/// The names in `dir`, which must all be UTF-8, sorted.
fn names_on_disk(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            let name = e.expect("entry").file_name();
            name.into_string()
                .unwrap_or_else(|n| panic!("not UTF-8 on disk: {n:?}"))
        })
        .collect();
    names.sort();
    names
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn count_lines(listing: &[u8]) -> usize {
    listing
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count()
}

/// A control connection that speaks bytes: commands are sent as given, replies are
/// read as bytes (the util client reads replies as UTF-8 text).
struct Wire {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Wire {
    fn connect(addr: SocketAddr) -> Wire {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        let writer = stream.try_clone().expect("clone");
        let mut w = Wire {
            reader: BufReader::new(stream),
            writer,
        };
        assert_eq!(w.reply().0, 220);
        w
    }

    /// Connects as `user` (every right on the test server's root).
    fn login(addr: SocketAddr) -> Wire {
        let mut w = Wire::connect(addr);
        w.expect(b"USER user", 331);
        w.expect(b"PASS 12345", 230);
        w
    }

    /// Sends `line` and CRLF; the reply's code and its last line's text.
    fn cmd(&mut self, line: &[u8]) -> (u16, Vec<u8>) {
        self.writer
            .write_all(&[line, b"\r\n"].concat())
            .expect("send");
        self.reply()
    }

    fn expect(&mut self, line: &[u8], code: u16) -> Vec<u8> {
        let (got, text) = self.cmd(line);
        assert_eq!(
            got,
            code,
            "{:?} got {got} {:?}",
            String::from_utf8_lossy(line),
            String::from_utf8_lossy(&text)
        );
        text
    }

    /// One reply: its code, and the text of all its lines joined with LF (without the
    /// code of the first and last line).
    fn reply(&mut self) -> (u16, Vec<u8>) {
        let mut text = Vec::new();
        let mut first: Option<Vec<u8>> = None;
        loop {
            let mut line = Vec::new();
            self.reader.read_until(b'\n', &mut line).expect("read");
            assert!(line.ends_with(b"\r\n"), "cut reply line {line:?}");
            line.truncate(line.len() - 2);
            let code = match &first {
                None => {
                    let code = line.get(..3).expect("a reply code").to_vec();
                    first = Some(code.clone());
                    code
                }
                Some(code) => code.clone(),
            };
            let last = line.starts_with(&code) && line.get(3) == Some(&b' ');
            if !text.is_empty() {
                text.push(b'\n');
            }
            let body = if line.starts_with(&code) && line.len() >= 4 {
                &line[4..]
            } else {
                &line[..]
            };
            text.extend_from_slice(body);
            if last {
                let code = std::str::from_utf8(&code).expect("digits");
                return (code.parse().expect("a reply code"), text);
            }
        }
    }

    fn pasv(&mut self) -> TcpStream {
        let text = self.expect(b"EPSV", 229);
        let text = String::from_utf8(text).expect("ASCII");
        let port: u16 = text
            .split("(|||")
            .nth(1)
            .and_then(|rest| rest.split('|').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("bad 229 reply {text:?}"));
        data_connect(SocketAddr::new(
            self.writer.peer_addr().expect("peer").ip(),
            port,
        ))
    }

    /// A listing or RETR: the data connection's bytes.
    fn download(&mut self, line: &[u8]) -> Vec<u8> {
        self.expect(b"TYPE I", 200);
        let mut data = self.pasv();
        let (code, _) = self.cmd(line);
        assert!(code == 125 || code == 150, "{line:?} got {code}");
        let mut out = Vec::new();
        data.read_to_end(&mut out).expect("read data");
        assert_eq!(self.reply().0, 226);
        out
    }

    fn listing(&mut self, line: &[u8]) -> Vec<u8> {
        self.download(line)
    }

    fn upload(&mut self, line: &[u8], bytes: &[u8]) {
        self.expect(b"TYPE I", 200);
        let mut data = self.pasv();
        let (code, _) = self.cmd(line);
        assert!(code == 125 || code == 150, "{line:?} got {code}");
        data.write_all(bytes).expect("write data");
        data.shutdown(Shutdown::Write).expect("shutdown");
        let mut rest = Vec::new();
        let _ = data.read_to_end(&mut rest);
        assert_eq!(self.reply().0, 226);
    }
}

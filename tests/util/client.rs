//! A tiny blocking FTP client over `std::net::TcpStream`: every read has a timeout, so a
//! missing reply fails the test instead of hanging it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};

use super::IO_TIMEOUT;

/// One control connection.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// One parsed reply: the code and its text. A multi-line reply's text is its lines joined
/// with `\n`, the first and last without their `NNN-` / `NNN ` prefix.
pub type Reply = (u16, String);

impl Client {
    /// Connects and reads the 220 greeting.
    ///
    /// # Panics
    /// When the connection fails or the greeting is not a 220.
    pub fn connect(addr: SocketAddr) -> Client {
        let mut c = Client::connect_raw(addr);
        let (code, text) = c.reply();
        assert_eq!(code, 220, "greeting: {text}");
        c
    }

    /// Connects without reading anything.
    pub fn connect_raw(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        set_timeouts(&stream);
        let writer = stream.try_clone().expect("clone the control stream");
        Client {
            reader: BufReader::new(stream),
            writer,
        }
    }

    /// Wraps an already connected control stream, without reading anything.
    pub fn from_stream(stream: TcpStream) -> Client {
        set_timeouts(&stream);
        let writer = stream.try_clone().expect("clone the control stream");
        Client {
            reader: BufReader::new(stream),
            writer,
        }
    }

    /// The client's own address.
    pub fn local_addr(&self) -> SocketAddr {
        self.writer.local_addr().expect("local address")
    }

    /// USER then PASS, expecting 331 and 230.
    pub fn login(&mut self, user: &str, pass: &str) {
        self.expect(&format!("USER {user}"), 331);
        self.expect(&format!("PASS {pass}"), 230);
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.writer.peer_addr().expect("peer address")
    }

    /// Sends one command line (CRLF added) and reads its reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(line);
        self.reply()
    }

    /// Sends `line`, reads the reply and asserts its code; returns the text.
    pub fn expect(&mut self, line: &str, code: u16) -> String {
        let (got, text) = self.cmd(line);
        assert_eq!(got, code, "{line:?} got {got} {text:?}");
        text
    }

    /// Sends one command line, adding CRLF, without reading.
    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    /// Writes bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("writing to the control connection: {e}"));
    }

    /// A clone of the control stream, for writing from another thread.
    pub fn stream_clone(&self) -> TcpStream {
        self.writer.try_clone().expect("clone the control stream")
    }

    /// Reads one reply.
    ///
    /// # Panics
    /// On EOF, a reset, a timeout or a malformed reply.
    pub fn reply(&mut self) -> Reply {
        match self.try_reply() {
            Ok(Some(r)) => r,
            Ok(None) => panic!("the server closed the control connection"),
            Err(e) => panic!("reading a reply: {e}"),
        }
    }

    /// Reads one reply; `Ok(None)` at EOF.
    pub fn try_reply(&mut self) -> io::Result<Option<Reply>> {
        let Some(first) = self.line()? else {
            return Ok(None);
        };
        let code = reply_code(&first);
        match first.as_bytes().get(3) {
            Some(b' ') | None => Ok(Some((code, first.get(4..).unwrap_or("").to_owned()))),
            Some(b'-') => {
                let end = format!("{code} ");
                let mut text = first[4..].to_owned();
                for _ in 0..MAX_REPLY_LINES {
                    let Some(line) = self.line()? else {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("EOF inside a {code} multi-line reply"),
                        ));
                    };
                    text.push('\n');
                    if let Some(last) = line.strip_prefix(&end) {
                        text.push_str(last);
                        return Ok(Some((code, text)));
                    }
                    text.push_str(&line);
                }
                panic!("a {code} reply longer than {MAX_REPLY_LINES} lines");
            }
            Some(_) => panic!("malformed reply line {first:?}"),
        }
    }

    /// Reads until the server closes the connection (EOF or a reset), bounded by the read
    /// timeout; returns whatever replies came first.
    ///
    /// # Panics
    /// When the connection stays open.
    pub fn expect_closed(&mut self) -> Vec<Reply> {
        let mut seen = Vec::new();
        for _ in 0..MAX_REPLY_LINES {
            match self.try_reply() {
                Ok(Some(r)) => seen.push(r),
                Ok(None) => return seen,
                Err(e) if is_timeout(&e) => panic!("still open after {seen:?}"),
                Err(_) => return seen, // a reset also means closed
            }
        }
        panic!("still open after {seen:?}");
    }

    /// EPSV, then connects to the announced port.
    pub fn pasv(&mut self) -> TcpStream {
        let port = self.epsv_port();
        data_connect(SocketAddr::new(self.peer_addr().ip(), port))
    }

    /// PASV, then connects to the announced address.
    pub fn pasv_v4(&mut self) -> TcpStream {
        let addr = self.pasv_addr();
        data_connect(addr)
    }

    /// EPSV, returning the announced port (nothing connects).
    pub fn epsv_port(&mut self) -> u16 {
        let text = self.expect("EPSV", 229);
        text.split("(|||")
            .nth(1)
            .and_then(|rest| rest.split('|').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("bad 229 reply {text:?}"))
    }

    /// PASV, returning the announced address (nothing connects).
    pub fn pasv_addr(&mut self) -> SocketAddr {
        let text = self.expect("PASV", 227);
        let inner = text
            .split('(')
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .unwrap_or_else(|| panic!("bad 227 reply {text:?}"));
        let n: Vec<u8> = inner
            .split(',')
            .map(|x| x.parse().expect("a byte in the 227 reply"))
            .collect();
        assert_eq!(n.len(), 6, "bad 227 reply {text:?}");
        SocketAddr::from((
            [n[0], n[1], n[2], n[3]],
            u16::from(n[4]) * 256 + u16::from(n[5]),
        ))
    }

    /// PORT to a fresh local listener; expects `200` and returns the listener.
    pub fn port(&mut self) -> TcpListener {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind a PORT listener");
        let port = l.local_addr().expect("listener address").port();
        self.expect(
            &format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff),
            200,
        );
        l
    }

    /// Runs a download-like command (RETR, LIST, NLST, MLSD) over `data`: expects
    /// 125/150, reads the data connection to EOF, then expects 226.
    pub fn download(&mut self, line: &str, mut data: TcpStream) -> Vec<u8> {
        let (code, text) = self.cmd(line);
        assert!(code == 125 || code == 150, "{line:?} got {code} {text:?}");
        let mut out = Vec::new();
        data.read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("{line:?}: reading the data connection: {e}"));
        let (code, text) = self.reply();
        assert_eq!(code, 226, "{line:?} ended with {code} {text:?}");
        out
    }

    /// Runs an upload-like command (STOR, APPE, STOU) over `data`: expects 125/150, writes
    /// `bytes` and closes, then expects 226. Returns the preliminary reply's text.
    pub fn upload(&mut self, line: &str, mut data: TcpStream, bytes: &[u8]) -> String {
        let (code, text) = self.cmd(line);
        assert!(code == 125 || code == 150, "{line:?} got {code} {text:?}");
        data.write_all(bytes)
            .unwrap_or_else(|e| panic!("{line:?}: writing the data connection: {e}"));
        data.shutdown(Shutdown::Write).expect("shutdown");
        // Wait for the server's close, so its 226 is about all of the bytes.
        let mut rest = Vec::new();
        let _ = data.read_to_end(&mut rest);
        let (code, end) = self.reply();
        assert_eq!(code, 226, "{line:?} ended with {code} {end:?}");
        text
    }

    /// TYPE I, EPSV, RETR: the file's bytes.
    pub fn retr(&mut self, path: &str) -> Vec<u8> {
        self.expect("TYPE I", 200);
        let data = self.pasv();
        self.download(&format!("RETR {path}"), data)
    }

    /// TYPE I, EPSV, STOR.
    pub fn stor(&mut self, path: &str, bytes: &[u8]) {
        self.expect("TYPE I", 200);
        let data = self.pasv();
        self.upload(&format!("STOR {path}"), data, bytes);
    }

    /// EPSV and a listing command (`LIST`, `NLST x`, `MLSD`...): its output as text.
    pub fn listing(&mut self, line: &str) -> String {
        let data = self.pasv();
        String::from_utf8(self.download(line, data)).expect("a UTF-8 listing")
    }

    /// One CRLF-terminated line without its CRLF; a lone LF stays inside the line, as a
    /// server may echo one back. `None` at EOF before any byte.
    fn line(&mut self) -> io::Result<Option<String>> {
        let mut buf = Vec::new();
        loop {
            let n = self.reader.read_until(b'\n', &mut buf)?;
            if n == 0 {
                if buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("EOF inside the line {:?}", String::from_utf8_lossy(&buf)),
                ));
            }
            if buf.ends_with(b"\r\n") {
                buf.truncate(buf.len() - 2);
                return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
            }
            if buf.len() > MAX_LINE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "reply line too long",
                ));
            }
        }
    }
}

/// Connects a data connection with the usual timeouts.
pub fn data_connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("data connect to {addr}: {e}"));
    set_timeouts(&s);
    s
}

/// Connects to `addr` from the local address `source` (any port), with the usual
/// timeouts: on Linux every 127.x.y.z address is local, so a test can be a "foreign" host.
pub fn connect_from(source: IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .expect("a TCP socket");
    socket
        .bind(&SocketAddr::new(source, 0).into())
        .unwrap_or_else(|e| panic!("bind {source}:0: {e}"));
    socket
        .connect_timeout(&addr.into(), IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect from {source} to {addr}: {e}"));
    let s: TcpStream = socket.into();
    set_timeouts(&s);
    s
}

/// Accepts the server's active-mode data connection. The server connects before it
/// replies 200, so after that reply the connection must already be queued.
pub fn data_accept(l: &TcpListener) -> TcpStream {
    l.set_nonblocking(true).expect("non-blocking listener");
    let (s, _) = l
        .accept()
        .unwrap_or_else(|e| panic!("no active data connection queued after 200: {e}"));
    s.set_nonblocking(false).expect("blocking data stream");
    set_timeouts(&s);
    s
}

fn set_timeouts(s: &TcpStream) {
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(IO_TIMEOUT))
        .expect("write timeout");
}

fn reply_code(line: &str) -> u16 {
    line.get(..3)
        .and_then(|c| c.parse().ok())
        .filter(|c| (100..600).contains(c))
        .unwrap_or_else(|| panic!("no reply code in {line:?}"))
}

/// Whether a read failed because its timeout ran out.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

const MAX_REPLY_LINES: usize = 10_000;
const MAX_LINE: usize = 1 << 20;

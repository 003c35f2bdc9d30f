//! The blocking client, ftplib's subset: setup, and the single-client bulk transfers, where
//! one thread blocked on one socket is the fastest client. With `-S` it speaks FTPS (AUTH
//! TLS, PBSZ 0, PROT P) as pyftpdlib's FTP_TLS does. Also the reply parsing that the
//! non-blocking client shares.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use crate::tls::Tls;

/// What both clients need of the options, resolved.
#[derive(Clone)]
pub struct Cfg {
    pub addr: SocketAddr,
    pub user: String,
    pub pass: String,
    pub timeout: Duration,
    pub login_timeout: Duration,
    pub debug: bool,
    /// Local addresses to spread connections over; empty: the kernel picks.
    pub sources: Vec<IpAddr>,
    /// -S: FTPS (AUTH TLS, PBSZ 0, PROT P).
    pub tls: Option<Tls>,
}

/// One session of the blocking client.
pub struct Ftp {
    sock: Conn,
    rbuf: Vec<u8>,
    peer: IpAddr,
    timeout: Duration,
    debug: bool,
    /// With -S: this session's TLS configuration, whose session store makes the data
    /// connections (PROT P) resume the control connection's session.
    tls: Option<Arc<ClientConfig>>,
}

impl Ftp {
    pub fn connect(o: &Cfg) -> io::Result<Ftp> {
        let sock = TcpStream::connect_timeout(&o.addr, o.timeout)?;
        sock.set_read_timeout(Some(o.timeout))?;
        sock.set_write_timeout(Some(o.timeout))?;
        let mut f = Ftp {
            peer: o.addr.ip(),
            sock: Conn::Plain(sock),
            rbuf: Vec::with_capacity(1024),
            timeout: o.timeout,
            debug: o.debug,
            tls: o.tls.as_ref().map(Tls::session_config),
        };
        let (code, text) = f.resp()?;
        if code / 100 != 2 {
            return Err(io::Error::other(format!("greeting: {text}")));
        }
        if let Some(config) = f.tls.clone() {
            let (code, text) = f.cmd("AUTH TLS")?;
            if code != 234 {
                return Err(io::Error::other(format!("AUTH TLS: {text}")));
            }
            if !f.rbuf.is_empty() {
                return Err(io::Error::other("AUTH TLS: clear-text bytes after the 234"));
            }
            f.sock = f.sock.into_tls(&config)?;
        }
        let (code, text) = f.cmd(&format!("USER {}", o.user))?;
        if code == 331 {
            f.voidcmd(&format!("PASS {}", o.pass))?;
        } else if code / 100 != 2 {
            return Err(io::Error::other(format!("USER: {text}")));
        }
        if f.tls.is_some() {
            f.voidcmd("PBSZ 0")?;
            f.voidcmd("PROT P")?;
        }
        Ok(f)
    }

    pub fn resp(&mut self) -> io::Result<(u16, String)> {
        let mut tmp = [0u8; 4096];
        loop {
            if let Some((used, code)) = parse_reply(&self.rbuf) {
                let text = String::from_utf8_lossy(&self.rbuf[..used])
                    .trim()
                    .to_owned();
                self.rbuf.drain(..used);
                if self.debug {
                    eprintln!("*resp* {text}");
                }
                return Ok((code, text));
            }
            let n = self.sock.read(&mut tmp)?;
            if n == 0 {
                return Err(io::Error::other("control connection closed"));
            }
            self.rbuf.extend_from_slice(&tmp[..n]);
        }
    }

    pub fn cmd(&mut self, line: &str) -> io::Result<(u16, String)> {
        if self.debug {
            eprintln!("*cmd* {line}");
        }
        self.sock.write_all(format!("{line}\r\n").as_bytes())?;
        self.resp()
    }

    pub fn voidcmd(&mut self, line: &str) -> io::Result<()> {
        let (code, text) = self.cmd(line)?;
        if code / 100 != 2 {
            return Err(io::Error::other(format!("{line}: {text}")));
        }
        Ok(())
    }

    pub fn voidresp(&mut self) -> io::Result<()> {
        let (code, text) = self.resp()?;
        if code / 100 != 2 {
            return Err(io::Error::other(text));
        }
        Ok(())
    }

    /// PASV, connect the data channel, send `cmd`, expect a 1xx reply (ftplib's transfercmd).
    /// With -S, the data connection is then wrapped in TLS (handshake done), as ftplib's
    /// FTP_TLS does after the 1xx.
    pub fn transfercmd(&mut self, cmd: &str) -> io::Result<Conn> {
        let (code, text) = self.cmd("PASV")?;
        let port = parse_pasv(text.as_bytes())
            .filter(|_| code == 227)
            .ok_or_else(|| io::Error::other(format!("PASV: {text}")))?;
        let d = TcpStream::connect_timeout(&SocketAddr::new(self.peer, port), self.timeout)?;
        d.set_read_timeout(Some(self.timeout))?;
        d.set_write_timeout(Some(self.timeout))?;
        let (code, text) = self.cmd(cmd)?;
        if code / 100 != 1 {
            return Err(io::Error::other(format!("{cmd}: {text}")));
        }
        let Some(config) = &self.tls else {
            return Ok(Conn::Plain(d));
        };
        let d = Conn::Plain(d).into_tls(config)?;
        if self.debug {
            if let Conn::Tls(s) = &d {
                eprintln!("*tls* data connection: {:?}", s.conn.handshake_kind());
            }
        }
        Ok(d)
    }

    pub fn quit(mut self) {
        let _ = self.cmd("QUIT");
    }
}

/// A control or data connection: plain TCP, or TLS (client side) on it.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    /// Starts TLS on a plain connection and runs the handshake to its end.
    fn into_tls(self, config: &Arc<ClientConfig>) -> io::Result<Conn> {
        let tcp = match self {
            Conn::Plain(tcp) => tcp,
            Conn::Tls(_) => return Err(io::Error::other("TLS is already on")),
        };
        let conn = tls_client(config)?;
        let mut s = Box::new(rustls::StreamOwned::new(conn, tcp));
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock)?;
        }
        Ok(Conn::Tls(s))
    }

    /// Ends the connection cleanly: everything written is sent, then close_notify (TLS)
    /// and FIN. The end of an upload. With TLS, what the server still sends (session
    /// tickets, its close_notify) is then read up to its close: closed with unread bytes,
    /// the socket would reset the connection, and a server that has not read the upload's
    /// tail yet loses it.
    pub fn finish(mut self) -> io::Result<()> {
        if let Conn::Tls(s) = &mut self {
            s.flush()?;
            s.conn.send_close_notify();
            while s.conn.wants_write() {
                s.conn.write_tls(&mut s.sock)?;
            }
        }
        let tcp = match &self {
            Conn::Plain(t) => t,
            Conn::Tls(s) => &s.sock,
        };
        let _ = tcp.shutdown(Shutdown::Write);
        if let Conn::Tls(s) = &mut self {
            let mut sink = [0u8; 4096];
            // Bounded by the socket's read timeout; an error is the end as well.
            while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
        }
        Ok(())
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            // A peer that closes without close_notify: the end of the data all the same.
            Conn::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// A client-side TLS connection, not started yet. The name is what the client sends as
/// SNI and keys its session store; certificates are not checked against it.
pub fn tls_client(config: &Arc<ClientConfig>) -> io::Result<ClientConnection> {
    let name = ServerName::try_from("localhost").map_err(|e| io::Error::other(e.to_string()))?;
    ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)
}

/// Where a reply ends in `buf`: (bytes consumed, code), or None if it is not complete.
fn parse_reply(buf: &[u8]) -> Option<(usize, u16)> {
    let mut pos = 0;
    let mut multi: Option<&[u8]> = None;
    while let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') {
        let line = &buf[pos..pos + nl];
        pos += nl + 1;
        if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
            continue;
        }
        let sep = line.get(3).copied().unwrap_or(b' ');
        match multi {
            None if sep == b'-' => multi = Some(&line[..3]),
            None => return Some((pos, code_of(line))),
            Some(c) if line[..3] == *c && sep != b'-' => return Some((pos, code_of(line))),
            Some(_) => {}
        }
    }
    None
}

/// The number of a reply line that starts with three digits.
pub fn code_of(line: &[u8]) -> u16 {
    line[..3]
        .iter()
        .fold(0u16, |a, d| a * 10 + u16::from(d - b'0'))
}

/// The port of a 227 reply: the first run of six comma-separated numbers.
pub fn parse_pasv(text: &[u8]) -> Option<u16> {
    let text = text.get(3..)?;
    let start = text.iter().position(u8::is_ascii_digit)?;
    let run: Vec<u16> = text[start..]
        .split(|b| !b.is_ascii_digit() && *b != b',')
        .next()?
        .split(|b| *b == b',')
        .map(|n| std::str::from_utf8(n).ok()?.parse().ok())
        .collect::<Option<_>>()?;
    (run.len() == 6 && run[4] < 256 && run[5] < 256).then(|| run[4] * 256 + run[5])
}

/// The file every workload stores and retrieves (pyftpdlib's name), deleted at the end.
pub const TESTFN: &str = "$testfile";

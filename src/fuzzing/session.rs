//! Whole control sessions over loopback TCP, driven in this thread with
//! [`FtpServer::poll_once`]: the fuzzer's bytes as a client's, and as a client's after
//! `AUTH TLS` (the TLS handshake).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::check_replies;
use crate::authorizers::DummyAuthorizer;
use crate::config::{HandlerConfig, TlsConfig};
use crate::filesystems::MemoryFs;
use crate::servers::FtpServer;

/// Runs one control session over a fresh server and [`MemoryFs`]: `data` is sent as the
/// client's bytes after the greeting, then the client closes its side. Asserts that every
/// reply is a well-formed RFC 959 reply, that the session ends, and that no handler or
/// timer is left in the loop. A `227` / `229` reply gets a data connection, which sends
/// nothing (an empty upload) and reads whatever comes.
pub fn session(data: &[u8]) {
    let mut server = Server::start(None);
    let out = server.drive(data, None);
    if let Err(e) = check_replies(&out.replies) {
        panic!("{e}\nin {:?}", String::from_utf8_lossy(&out.replies));
    }
    server.finish();
}

/// Runs a session that sends `AUTH TLS`, waits for `234`, then sends `data` (a TLS
/// ClientHello or anything else) and closes its side: the session ends and leaves nothing
/// in the loop, and what came before the handshake is well-formed.
pub fn tls_session(data: &[u8]) {
    let mut server = Server::start(Some(tls_config()));
    let out = server.drive(data, Some(b"AUTH TLS\r\n"));
    let upto = out.plain_len.unwrap_or(out.replies.len());
    if let Err(e) = check_replies(&out.replies[..upto]) {
        panic!(
            "{e}\nin {:?}",
            String::from_utf8_lossy(&out.replies[..upto])
        );
    }
    server.finish();
}

struct Server {
    ftp: FtpServer,
    addr: SocketAddr,
}

struct Output {
    replies: Vec<u8>,
    /// With `AUTH TLS`: where the plain text ends (after the `234` line).
    plain_len: Option<usize>,
}

impl Server {
    fn start(tls: Option<TlsConfig>) -> Server {
        let mem = MemoryFs::with_capacity(1 << 20);
        for (path, bytes) in [
            ("/readme.txt", &b"hello\r\n"[..]),
            ("/pub/data.bin", &[0u8, 1, 2, 255][..]),
            ("/pub/sub/\u{e9}t\u{e9}.txt", &b"x"[..]),
            ("/.hidden", &b""[..]),
        ] {
            if let Err(e) = mem.write_file(path, bytes) {
                panic!("the memory tree: {e}");
            }
        }
        let mut users = DummyAuthorizer::new();
        let added = users
            .add_user("user", "12345", Path::new("/"), "elradfmwMT", None, None)
            .and_then(|()| users.add_anonymous(Path::new("/"), "elr", None, None));
        if let Err(e) = added {
            panic!("the users: {e}");
        }
        let cfg = HandlerConfig {
            auth_failed_timeout: Duration::from_millis(5),
            tls,
            ..HandlerConfig::default()
        };
        let ftp = match FtpServer::builder(mem.authorizer(users))
            .handler_config(cfg)
            .bind("127.0.0.1:0")
        {
            Ok(ftp) => ftp,
            Err(e) => panic!("the server: {e}"),
        };
        let addr = ftp.local_addr();
        Server { ftp, addr }
    }

    /// Connects, sends `first` (and waits for its reply) then `data`, closes the sending
    /// side, and reads until the server closes the connection and the loop is back to its
    /// listener alone.
    fn drive(&mut self, data: &[u8], first: Option<&[u8]>) -> Output {
        let mut client = match TcpStream::connect(self.addr) {
            Ok(c) => c,
            Err(e) => panic!("connecting: {e}"),
        };
        if let Err(e) = client.set_nonblocking(true) {
            panic!("non-blocking: {e}");
        }
        let deadline = Instant::now() + SESSION_LIMIT;
        let mut replies = Vec::new();
        let mut plain_len = None;
        let mut data_conns: Vec<TcpStream> = Vec::new();
        let mut scanned = 0;
        let mut sent_first = first.is_none();
        let mut to_send: &[u8] = first.unwrap_or(data);
        let mut shut = false;
        let mut eof = false;
        loop {
            self.poll(Duration::from_millis(1));
            if !shut {
                match client.write(to_send) {
                    Ok(n) => to_send = &to_send[n..],
                    Err(e) if is_transient(&e) => {}
                    // The server closed first (e.g. after 500 on an over-long line).
                    Err(_) => to_send = &[],
                }
            }
            eof |= read_available(&mut client, &mut replies);
            // Data connections of PASV / EPSV replies.
            while let Some(end) = find_crlf(&replies[scanned..]) {
                let line = &replies[scanned..scanned + end];
                if let Some(port) = passive_port(line) {
                    if let Some(conn) = connect_data(port) {
                        data_conns.push(conn);
                    }
                }
                if !sent_first && line.starts_with(b"234 ") {
                    plain_len = Some(scanned + end + 2);
                }
                scanned += end + 2;
            }
            for conn in &mut data_conns {
                let mut sink = Vec::new();
                read_available(conn, &mut sink);
            }
            if to_send.is_empty() && !sent_first {
                if plain_len.is_some() || eof {
                    sent_first = true;
                    to_send = data;
                }
            } else if to_send.is_empty() && !shut {
                // The server may have closed first; a failed shutdown is the same end.
                let _ = client.shutdown(Shutdown::Write);
                shut = true;
            }
            if eof && shut && self.ftp.handler_count() == 1 && self.ftp.timer_count() == 0 {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "the session did not end within {SESSION_LIMIT:?}: eof {eof}, sent all {shut}, \
                     {} handlers, {} timers; replies {:?}",
                    self.ftp.handler_count(),
                    self.ftp.timer_count(),
                    String::from_utf8_lossy(&replies)
                );
            }
        }
        Output { replies, plain_len }
    }

    fn poll(&mut self, timeout: Duration) {
        if let Err(e) = self.ftp.poll_once(timeout) {
            panic!("poll_once: {e}");
        }
    }

    /// Closes the listener and checks that the loop is empty.
    fn finish(mut self) {
        self.ftp.close_all();
        for _ in 0..100 {
            if self.ftp.handler_count() == 0 {
                break;
            }
            self.poll(Duration::from_millis(1));
        }
        assert_eq!(self.ftp.handler_count(), 0, "handlers left after close_all");
        assert_eq!(self.ftp.timer_count(), 0, "timers left after close_all");
    }
}

/// Reads what `conn` has now into `out`; true at end of stream (or a reset).
fn read_available(conn: &mut TcpStream, out: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if is_transient(&e) => return false,
            Err(_) => return true,
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

/// The port of a `227 … (h1,h2,h3,h4,p1,p2).` or `229 … (|||port|).` line.
fn passive_port(line: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(line).ok()?;
    let inner = text.get(text.find('(')? + 1..text.rfind(')')?)?;
    if text.starts_with("227 ") {
        let nums: Vec<u16> = inner
            .split(',')
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        match nums[..] {
            [_, _, _, _, hi, lo] => Some(hi.checked_mul(256)?.checked_add(lo)?),
            _ => None,
        }
    } else if text.starts_with("229 ") {
        inner.trim_matches('|').parse().ok()
    } else {
        None
    }
}

/// A data connection that sends nothing: its sending side is closed at once, so an
/// upload over it is empty and ends.
fn connect_data(port: u16) -> Option<TcpStream> {
    let conn = TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_nonblocking(true).ok()?;
    let _ = conn.shutdown(Shutdown::Write);
    Some(conn)
}

/// FTPS with a self-signed certificate made for these sessions.
pub(crate) fn tls_config() -> TlsConfig {
    thread_local! {
        static CONFIG: Arc<rustls::ServerConfig> = {
            let cert = CertificateDer::from_pem_slice(CERT_PEM.as_bytes());
            let key = PrivateKeyDer::from_pem_slice(KEY_PEM.as_bytes());
            let (Ok(cert), Ok(key)) = (cert, key) else {
                panic!("the built-in certificate does not parse");
            };
            match rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
            {
                Ok(config) => Arc::new(config),
                Err(e) => panic!("the built-in certificate: {e}"),
            }
        };
    }
    let mut tls = TlsConfig::new(CONFIG.with(Arc::clone));
    tls.handshake_timeout = Duration::from_secs(2);
    tls
}

/// How long one session may take before it counts as a hang.
const SESSION_LIMIT: Duration = Duration::from_secs(10);

/// A self-signed P-256 certificate for `localhost`, valid until 2126, made with
/// `openssl req -x509 -nodes -days 36500 -subj /CN=localhost -newkey ec -pkeyopt
/// ec_paramgen_curve:prime256v1`. The fuzz sessions and the TLS tests use it.
pub(crate) const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBgDCCASWgAwIBAgIUfW17xnSfExebbKNL0yE4chWFv2QwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwNzAwMTExMVoYDzIxMjYxMTEz
MDAxMTExWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARuh2rDTmg/Bi8TOCGXLNuzaDQ1knhIDcKIWe7eNF9/mDDtfHgMIM6X
01WzfkWS3gb1KJi9tP3nS/xKXmJ7s36Wo1MwUTAdBgNVHQ4EFgQUGYEbf+AM7HKN
CBYQH1HYk4xU7oswHwYDVR0jBBgwFoAUGYEbf+AM7HKNCBYQH1HYk4xU7oswDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEA4pEAtFP0+6WUQqRzE00S
LuAOn5sMRzhQSI8LVD8vXmUCIQC+8GJrnIE8nPGfPYgt+tupCohO1kF9h3Z238nx
gYCS3A==
-----END CERTIFICATE-----
";
pub(crate) const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNRhIRQd7lmZbYIFz
kpdvFQUuY1Mi6MlI03+5V1hLywGhRANCAARuh2rDTmg/Bi8TOCGXLNuzaDQ1knhI
DcKIWe7eNF9/mDDtfHgMIM6X01WzfkWS3gb1KJi9tP3nS/xKXmJ7s36W
-----END PRIVATE KEY-----
";

//! Test helpers for FTPS: certificates made with the `openssl` command line in a tempdir,
//! and a blocking FTPS client on rustls (explicit or implicit TLS, PROT P data
//! connections that resume the control session or deliberately do not).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use ftpdlib::config::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection};
use tempfile::TempDir;

use crate::util::{run_tool, IO_TIMEOUT};

/// Whether `openssl` can run; under `CI` its absence fails the test (as `have_tool`,
/// which cannot be used: `openssl --version` is not a valid invocation).
pub fn have_openssl() -> bool {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl is required under CI but cannot be run"
        );
        eprintln!("SKIP: openssl is not installed");
    }
    found
}

/// Self-signed certificates for `localhost`, in a tempdir: `rsa.crt` / `rsa.key`,
/// `ec.crt` / `ec.key`, and `combined.pem` (the RSA certificate followed by its key).
pub struct Certs {
    dir: TempDir,
}

impl Certs {
    /// Makes the files with `openssl req -x509`.
    ///
    /// # Panics
    /// When openssl fails.
    pub fn new() -> Certs {
        let dir = tempfile::tempdir().expect("tempdir for certificates");
        for (name, key_args) in [
            ("rsa", &["-newkey", "rsa:2048"][..]),
            (
                "ec",
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"][..],
            ),
        ] {
            let out = run_tool(
                Command::new("openssl")
                    .current_dir(dir.path())
                    .args([
                        "req",
                        "-x509",
                        "-nodes",
                        "-days",
                        "2",
                        "-subj",
                        "/CN=localhost",
                    ])
                    .args(key_args)
                    .args(["-keyout", &format!("{name}.key")])
                    .args(["-out", &format!("{name}.crt")]),
                IO_TIMEOUT,
            );
            assert!(
                out.status.success(),
                "openssl req failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // A CA and a client certificate it signed (mutual TLS).
        let ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n\
                   subjectAltName=email:client@example.com,DNS:client.example,IP:192.0.2.7\n";
        std::fs::write(dir.path().join("client.ext"), ext).expect("write client.ext");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let steps: [&[&str]; 3] = [
            &[
                "req",
                "-x509",
                "-days",
                "2",
                "-subj",
                "/CN=Test CA",
                "-keyout",
                "ca.key",
            ],
            &[
                "req",
                "-new",
                "-subj",
                "/CN=client",
                "-keyout",
                "client.key",
            ],
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "client.ext",
                "-out",
                "client.crt",
            ],
        ];
        for (i, step) in steps.iter().enumerate() {
            let mut cmd = Command::new("openssl");
            cmd.current_dir(dir.path()).args(*step);
            match i {
                0 => cmd.args(ec).args(["-out", "ca.crt"]),
                1 => cmd.args(ec).args(["-out", "client.csr"]),
                _ => &mut cmd,
            };
            let out = run_tool(&mut cmd, IO_TIMEOUT);
            assert!(
                out.status.success(),
                "openssl {step:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut combined = std::fs::read(dir.path().join("rsa.crt")).expect("read rsa.crt");
        combined.extend(std::fs::read(dir.path().join("rsa.key")).expect("read rsa.key"));
        std::fs::write(dir.path().join("combined.pem"), combined).expect("write combined.pem");
        Certs { dir }
    }

    /// A file of the set (`ec.crt`, `rsa.key`, `combined.pem`...).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The same, as a `&str` for command lines.
    pub fn arg(&self, name: &str) -> String {
        self.path(name)
            .to_str()
            .expect("a UTF-8 temp path")
            .to_owned()
    }

    /// The server side: the ECDSA certificate, everything else at its default.
    pub fn server_tls(&self) -> TlsConfig {
        TlsConfig::from_pem_files(&self.path("ec.crt"), Some(&self.path("ec.key")))
            .expect("load the test certificate")
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A client configuration that trusts any certificate (the test certificates are
/// self-signed) and keeps sessions for resumption, like a real FTPS client.
pub fn client_config() -> Arc<ClientConfig> {
    client_config_with_cert(None)
}

/// The same, presenting the certificate chain and key of these PEM files (mutual TLS).
pub fn client_config_with_cert(cert: Option<(&Path, &Path)>) -> Arc<ClientConfig> {
    // The process's default crypto provider (ring, from rustls's features).
    let builder = ClientConfig::builder();
    let provider = Arc::clone(builder.crypto_provider());
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(ftpdlib::testing::any_certificate(provider));
    let config = match cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(pem_certs(cert), pem_key(key))
            .expect("client certificate"),
    };
    Arc::new(config)
}

/// The certificates of a PEM file.
pub fn pem_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .expect("open the PEM file")
        .collect::<Result<_, _>>()
        .expect("parse the certificates")
}

/// The private key of a PEM file.
pub fn pem_key(path: &Path) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_file(path).expect("parse the private key")
}

/// A control or data connection, plain or TLS.
pub enum Conn {
    /// Clear text.
    Plain(TcpStream),
    /// TLS on the socket.
    Tls(Box<rustls::StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    /// Starts TLS (client side) on a plain connection; the handshake runs on first use.
    pub fn into_tls(self, config: &Arc<ClientConfig>) -> Conn {
        self.into_tls_named(config, "localhost")
    }

    /// As [`Conn::into_tls`], asking for the server `name` (SNI).
    pub fn into_tls_named(self, config: &Arc<ClientConfig>, name: &str) -> Conn {
        let tcp = match self {
            Conn::Plain(tcp) => tcp,
            Conn::Tls(_) => panic!("TLS is already on"),
        };
        let name = ServerName::try_from(name.to_owned()).expect("server name");
        let conn = ClientConnection::new(Arc::clone(config), name).expect("client connection");
        Conn::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
    }

    /// The TCP socket.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(tcp) => tcp,
            Conn::Tls(s) => &s.sock,
        }
    }

    /// Runs the TLS handshake to its end (nothing for plain).
    pub fn handshake(&mut self) -> io::Result<()> {
        if let Conn::Tls(s) = self {
            while s.conn.is_handshaking() {
                s.conn.complete_io(&mut s.sock)?;
            }
        }
        Ok(())
    }

    /// The certificate the server presented (its chain's first), once TLS is up.
    pub fn peer_certificate(&self) -> Option<CertificateDer<'static>> {
        match self {
            Conn::Plain(_) => None,
            Conn::Tls(s) => s
                .conn
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|c| c.clone().into_owned()),
        }
    }

    /// Whether the TLS handshake resumed a session.
    pub fn resumed(&self) -> bool {
        match self {
            Conn::Plain(_) => false,
            Conn::Tls(s) => s.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        }
    }

    /// The TLS 1.3 session tickets the server sent that the client has read so far.
    pub fn tickets_received(&self) -> u32 {
        match self {
            Conn::Plain(_) => 0,
            Conn::Tls(s) => s.conn.tls13_tickets_received(),
        }
    }

    /// Ends an upload cleanly: close_notify (TLS), then FIN; then waits (bounded) for the
    /// server to close its side. The TLS 1.3 session tickets the connection brought.
    pub fn finish_upload(mut self) -> u32 {
        if let Conn::Tls(s) = &mut self {
            s.conn.send_close_notify();
            let _ = s.conn.complete_io(&mut s.sock);
        }
        let _ = self.tcp().shutdown(Shutdown::Write);
        let mut rest = Vec::new();
        let _ = self.read_to_end(&mut rest);
        self.tickets_received()
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
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

/// A blocking FTPS client.
pub struct FtpsClient {
    conn: Option<Conn>,
    pending: Vec<u8>,
}

impl FtpsClient {
    /// Connects in clear and reads the 220.
    pub fn connect(addr: SocketAddr) -> FtpsClient {
        let mut c = FtpsClient {
            conn: Some(Conn::Plain(tcp_connect(addr))),
            pending: Vec::new(),
        };
        let (code, text) = c.reply();
        assert_eq!(code, 220, "greeting: {text}");
        c
    }

    /// Connects, AUTH TLS with `config`, logs `user` in and asks PROT P: a session whose
    /// data connections are protected.
    pub fn protected(addr: SocketAddr, config: &Arc<ClientConfig>) -> FtpsClient {
        let mut c = FtpsClient::connect(addr);
        c.auth_tls(config);
        c.login();
        c.prot_p();
        c
    }

    /// Connects with TLS from the first byte (implicit FTPS) and reads the 220.
    pub fn connect_implicit(addr: SocketAddr, config: &Arc<ClientConfig>) -> FtpsClient {
        let mut c = FtpsClient {
            conn: Some(Conn::Plain(tcp_connect(addr)).into_tls(config)),
            pending: Vec::new(),
        };
        let (code, text) = c.reply();
        assert_eq!(code, 220, "greeting: {text}");
        c
    }

    /// AUTH TLS (expects 234), then TLS with whatever the handshake gives.
    pub fn auth_tls_unchecked(&mut self, config: &Arc<ClientConfig>) -> io::Result<()> {
        self.expect("AUTH TLS", 234);
        let conn = self.conn.take().expect("connection").into_tls(config);
        self.conn = Some(conn);
        self.conn_mut().handshake()
    }

    /// AUTH TLS (expects 234) and the handshake, asking for the server `name` (SNI).
    pub fn auth_tls_named(&mut self, config: &Arc<ClientConfig>, name: &str) {
        self.expect("AUTH TLS", 234);
        let conn = self
            .conn
            .take()
            .expect("connection")
            .into_tls_named(config, name);
        self.conn = Some(conn);
        self.conn_mut().handshake().expect("control handshake");
    }

    /// AUTH TLS (expects 234) and the handshake.
    pub fn auth_tls(&mut self, config: &Arc<ClientConfig>) {
        self.expect("AUTH TLS", 234);
        assert!(self.pending.is_empty(), "bytes after the 234");
        let conn = self.conn.take().expect("connection").into_tls(config);
        self.conn = Some(conn);
        self.conn_mut().handshake().expect("control handshake");
    }

    /// USER user / PASS 12345.
    pub fn login(&mut self) {
        self.expect("USER user", 331);
        self.expect("PASS 12345", 230);
    }

    /// PBSZ 0, PROT P.
    pub fn prot_p(&mut self) {
        self.expect("PBSZ 0", 200);
        self.expect("PROT P", 200);
    }

    /// The control connection.
    pub fn conn_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("connection")
    }

    /// Sends a line and reads the reply.
    pub fn cmd(&mut self, line: &str) -> (u16, String) {
        self.send_raw(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Sends a line, asserts the reply code, returns the text.
    pub fn expect(&mut self, line: &str, code: u16) -> String {
        let (got, text) = self.cmd(line);
        assert_eq!(got, code, "{line:?} got {got} {text:?}");
        text
    }

    /// Sends a transfer command, expecting 125 (connection already open) or 150 (the
    /// server had not accepted the data connection yet).
    pub fn start(&mut self, line: &str) {
        let (code, text) = self.cmd(line);
        assert!(code == 125 || code == 150, "{line:?} got {code} {text:?}");
    }

    /// Writes bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let conn = self.conn_mut();
        conn.write_all(bytes)
            .expect("write to the control connection");
        conn.flush().expect("flush the control connection");
    }

    /// EPSV, then a data connection to the announced port: TLS (with `tls`) or plain.
    pub fn pasv(&mut self, tls: Option<&Arc<ClientConfig>>) -> Conn {
        let text = self.expect("EPSV", 229);
        let port: u16 = text
            .split("(|||")
            .nth(1)
            .and_then(|rest| rest.split('|').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("bad 229 reply {text:?}"));
        let ip = self.conn_mut().tcp().peer_addr().expect("peer").ip();
        let data = Conn::Plain(tcp_connect(SocketAddr::new(ip, port)));
        match tls {
            Some(config) => data.into_tls(config),
            None => data,
        }
    }

    /// Reads one reply (multi-line replies joined with `\n`).
    pub fn reply(&mut self) -> (u16, String) {
        match self.try_reply() {
            Ok(Some(r)) => r,
            Ok(None) => panic!("the server closed the control connection"),
            Err(e) => panic!("reading a reply: {e}"),
        }
    }

    /// Reads one reply; `Ok(None)` at EOF.
    pub fn try_reply(&mut self) -> io::Result<Option<(u16, String)>> {
        let Some(first) = self.line()? else {
            return Ok(None);
        };
        let code: u16 = first
            .get(..3)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no reply code in {first:?}"));
        let mut text = first.get(4..).unwrap_or("").to_owned();
        if first.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            for _ in 0..1000 {
                let Some(line) = self.line()? else {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                };
                text.push('\n');
                if let Some(last) = line.strip_prefix(&end) {
                    text.push_str(last);
                    return Ok(Some((code, text)));
                }
                text.push_str(&line);
            }
            panic!("a {code} reply longer than 1000 lines");
        }
        Ok(Some((code, text)))
    }

    fn line(&mut self) -> io::Result<Option<String>> {
        loop {
            if let Some(i) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.pending[..i]).into_owned();
                self.pending.drain(..i + 2);
                return Ok(Some(line));
            }
            let mut chunk = [0u8; 4096];
            // Byte-exact reads matter: after AUTH's 234 the next bytes are TLS.
            let n = self.conn_mut().read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }
}

/// A TCP connection with the test timeouts.
pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(IO_TIMEOUT))
        .expect("write timeout");
    s
}

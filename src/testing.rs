//! A throw-away server for test suites of FTP clients (the way Chromium and Bazaar used
//! pyftpdlib): one line starts it on an ephemeral loopback port, dropping it stops it.
//!
//! ```
//! let dir = std::env::temp_dir();
//! let server = ftpdlib::testing::spawn(&dir)?;
//! let addr = server.local_addr(); // 127.0.0.1:<ephemeral port>
//! // ... point the client under test at ftp://user:12345@{addr}/ ...
//! drop(server); // closes every session and joins the server thread
//! # Ok::<(), ftpdlib::Error>(())
//! ```
//!
//! [`spawn_memory`] does the same with a [`MemoryFs`]: no directory at all, and the test
//! puts files in and checks uploads through the returned handle.

use std::path::Path;

use crate::authorizers::{DummyAuthorizer, READ_PERMS, WRITE_PERMS};
use crate::error::Error;
use crate::filesystems::MemoryFs;
use crate::servers::{FtpServer, RunningServer};

/// The user [`spawn`] creates, with every right.
pub const USER: &str = "user";
/// Its password.
pub const PASSWORD: &str = "12345";

/// Serves `dir` on `127.0.0.1:<ephemeral port>` from a background thread: [`USER`] /
/// [`PASSWORD`] may do everything, `anonymous` may read. The server stops when the
/// returned [`RunningServer`] is dropped.
///
/// # Errors
/// When `dir` is not a directory or the server cannot start.
pub fn spawn(dir: impl AsRef<Path>) -> Result<RunningServer, Error> {
    FtpServer::builder(users(dir.as_ref())?).spawn("127.0.0.1:0")
}

/// Serves a new, empty [`MemoryFs`] as [`spawn`] serves a directory, and returns it
/// with the server: what the test writes through it, clients see, and what clients
/// upload, it reads back. Nothing touches the disk.
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
///
/// let (server, mem) = ftpdlib::testing::spawn_memory()?;
/// mem.write_file("/hello.txt", b"hi")?;
/// let mut ctrl = std::net::TcpStream::connect(server.local_addr())?;
/// let mut replies = BufReader::new(ctrl.try_clone()?);
/// let mut line = String::new();
/// replies.read_line(&mut line)?; // 220 greeting
/// ctrl.write_all(b"USER user\r\nPASS 12345\r\nTYPE I\r\nSIZE hello.txt\r\n")?;
/// for _ in 0..4 {
///     line.clear();
///     replies.read_line(&mut line)?;
/// }
/// assert_eq!(line, "213 2\r\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// When the server cannot start.
pub fn spawn_memory() -> Result<(RunningServer, MemoryFs), Error> {
    let mem = MemoryFs::new();
    // The authorizer wants an existing directory as home; the sessions never use it.
    let auth = mem.authorizer(users(Path::new("/"))?);
    let server = FtpServer::builder(auth).spawn("127.0.0.1:0")?;
    Ok((server, mem))
}

/// [`USER`] with every right and read-only anonymous, both at home in `dir`.
fn users(dir: &Path) -> Result<DummyAuthorizer, Error> {
    let mut auth = DummyAuthorizer::new();
    auth.add_user(
        USER,
        PASSWORD,
        dir,
        &format!("{READ_PERMS}{WRITE_PERMS}"),
        None,
        None,
    )?;
    auth.add_anonymous(dir, READ_PERMS, None, None)?;
    Ok(auth)
}

/// A certificate verifier for the client side of tests that talk FTPS to a server with a
/// self-signed certificate (such as one made for the test): it accepts any certificate
/// and any name, and still checks the handshake's signatures with `provider`'s
/// algorithms. Never use it outside tests: it trusts anyone.
///
/// ```
/// use std::sync::Arc;
/// let builder = rustls::ClientConfig::builder();
/// let provider = Arc::clone(builder.crypto_provider());
/// let config = builder
///     .dangerous()
///     .with_custom_certificate_verifier(ftpdlib::testing::any_certificate(provider))
///     .with_no_client_auth();
/// # drop(config);
/// ```
pub fn any_certificate(
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
) -> std::sync::Arc<dyn rustls::client::danger::ServerCertVerifier> {
    std::sync::Arc::new(AnyCertificate(provider))
}

#[derive(Debug)]
struct AnyCertificate(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

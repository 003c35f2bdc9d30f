//! FTPS options (RFC 4217): [`TlsConfig`], and the rustls configuration built from PEM
//! certificate and key files.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ServerSessionMemoryCache;

use crate::error::Error;

/// FTPS options (pyftpdlib's TLS_FTPHandler attributes, plus implicit TLS and vsftpd's
/// `require_ssl_reuse`). RFC 4217.
///
/// The rustls [`ServerConfig`](rustls::ServerConfig) is pyftpdlib's `ssl_context`: build
/// one from PEM files with [`TlsConfig::from_pem_files`], or pass your own to
/// [`TlsConfig::new`], e.g. one made with `with_client_cert_verifier` to ask clients for
/// certificates (mutual TLS). Data connections resume the control connection's TLS session
/// through that config's `session_storage` / `ticketer`. Each handshake runs on a copy of
/// the config whose ticketer and session store tag sessions with the control session's
/// token (a data connection resumes only its own control session) and whose certificate
/// resolver notes the SNI name; 0-RTT data is off (`max_early_data_size` is ignored).
/// Control connections send the config's `send_tls13_tickets` TLS 1.3 tickets (2 from
/// [`TlsConfig::from_pem_files`]); a download's data connection sends 2 (none if the
/// config sends none), an upload's none.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsConfig {
    /// The rustls configuration every TLS connection of the server uses.
    pub server_config: Arc<rustls::ServerConfig>,
    /// USER and PASS are refused before AUTH (`550 SSL/TLS required on the control
    /// channel.`); false.
    pub control_required: bool,
    /// PASV, EPSV, PORT and EPRT are refused before PROT P (`550 SSL/TLS required on the
    /// data channel.`); false.
    pub data_required: bool,
    /// A TLS data connection must resume this session's control-connection TLS session,
    /// else it is refused with `522 SSL connection failed: session reuse required`
    /// (vsftpd's `require_ssl_reuse`); false.
    pub require_session_reuse: bool,
    /// Implicit FTPS: TLS from the first byte (the port-990 convention), PROT P implied;
    /// false (explicit FTPS: AUTH TLS).
    pub implicit: bool,
    /// How long a TLS handshake (control or data) may take (30 s).
    pub handshake_timeout: Duration,
    /// `server_config` with the data connections' number of TLS 1.3 session tickets
    /// (made on first use).
    data_config: OnceLock<Arc<rustls::ServerConfig>>,
}

impl TlsConfig {
    /// FTPS with a rustls configuration of your own (pyftpdlib's `ssl_context`).
    pub fn new(server_config: Arc<rustls::ServerConfig>) -> TlsConfig {
        TlsConfig {
            server_config,
            control_required: false,
            data_required: false,
            require_session_reuse: false,
            implicit: false,
            handshake_timeout: Duration::from_secs(30),
            data_config: OnceLock::new(),
        }
    }

    /// The configuration of data connections: `server_config` (same certificate, session
    /// cache and ticket keys) with [`DATA_TICKETS`] TLS 1.3 session tickets (none if
    /// `server_config` issues none), which only a download's connection sends: tickets
    /// sent on an upload's data connection would sit unread in the client, whose close
    /// then resets the connection and can cut the upload's tail (seen with lftp / GnuTLS).
    /// A client that spends a ticket per resumption (rustls) gets two back from each
    /// download: one for the next data connection, one for an upload after it.
    pub(crate) fn data_server_config(&self) -> Arc<rustls::ServerConfig> {
        let config = self.data_config.get_or_init(|| {
            let mut c = (*self.server_config).clone();
            if c.send_tls13_tickets > 0 {
                c.send_tls13_tickets = DATA_TICKETS;
            }
            Arc::new(c)
        });
        Arc::clone(config)
    }

    /// The same options over another rustls configuration (virtual hosts' certificates).
    pub(crate) fn with_server_config(&self, server_config: Arc<rustls::ServerConfig>) -> TlsConfig {
        TlsConfig {
            server_config,
            data_config: OnceLock::new(),
            ..self.clone()
        }
    }

    /// FTPS with the certificate chain of `certfile` and the private key of `keyfile`
    /// (PEM; RSA, ECDSA or Ed25519 keys in PKCS#8, PKCS#1 or SEC1 form). Without `keyfile`
    /// the key is read from `certfile` (a combined file), as pyftpdlib does. TLS 1.2 and
    /// 1.3, with session resumption (a session cache and tickets) for data connections.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file, when a file is missing or unreadable, holds no
    /// certificate or no key, or the key does not match the certificate.
    pub fn from_pem_files(certfile: &Path, keyfile: Option<&Path>) -> Result<TlsConfig, Error> {
        let config = server_config_from_pem(certfile, keyfile, None)?;
        Ok(TlsConfig::new(config))
    }

    /// As [`TlsConfig::from_pem_files`], with mutual TLS: every client must present a
    /// certificate signed by a CA of `client_ca` (PEM), on the control connection and on
    /// data connections, else the handshake fails. The session hands the verified
    /// certificate to the authorizer at USER
    /// ([`Authorizer::validate_certificate`](crate::authorizers::Authorizer::validate_certificate)).
    ///
    /// # Errors
    /// [`Error::Config`] naming the file, as for the certificate, and when `client_ca`
    /// holds no usable CA certificate.
    pub fn from_pem_files_with_client_ca(
        certfile: &Path,
        keyfile: Option<&Path>,
        client_ca: &Path,
    ) -> Result<TlsConfig, Error> {
        let config = server_config_from_pem(certfile, keyfile, Some(client_ca))?;
        Ok(TlsConfig::new(config))
    }
}

/// Builds a rustls server configuration from PEM files: the certificate chain of
/// `certfile`, the key of `keyfile` (else of `certfile`). TLS 1.2 and 1.3 with the
/// process's default crypto provider (the one the program installed, else ring); a
/// session cache and tickets, so data connections can resume.
///
/// # Errors
/// [`Error::Config`] naming the file and what is wrong with it.
fn server_config_from_pem(
    certfile: &Path,
    keyfile: Option<&Path>,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let keyfile = keyfile.unwrap_or(certfile);
    let pem_error = |what: &str, path: &Path, e: rustls::pki_types::pem::Error| {
        let detail = match e {
            rustls::pki_types::pem::Error::Io(io) => crate::error::strerror(&io),
            rustls::pki_types::pem::Error::NoItemsFound => format!("no PEM {what} found"),
            other => other.to_string(),
        };
        Error::Config(format!("{what} file '{}': {detail}", path.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certfile)
        .map_err(|e| pem_error("certificate", certfile, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error("certificate", certfile, e))?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "certificate file '{}': no PEM certificate found",
            certfile.display()
        )));
    }
    let key =
        PrivateKeyDer::from_pem_file(keyfile).map_err(|e| pem_error("private key", keyfile, e))?;
    let tls_error = |e: rustls::Error| {
        Error::Config(format!(
            "certificate '{}' / key '{}': {e}",
            certfile.display(),
            keyfile.display()
        ))
    };
    // The process's default crypto provider: the one the program installed
    // (`CryptoProvider::install_default`), else the one rustls's enabled feature names (ring).
    let provider = common_kx_first(aes128_first(default_provider()));
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca_file) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_file_iter(ca_file)
                .map_err(|e| pem_error("client CA", ca_file, e))?
            {
                let ca = ca.map_err(|e| pem_error("client CA", ca_file, e))?;
                roots.add(ca).map_err(|e| {
                    Error::Config(format!("client CA file '{}': {e}", ca_file.display()))
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| {
                    Error::Config(format!("client CA file '{}': {e}", ca_file.display()))
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(tls_error)?;
    // The server's order of suites, not the client's: curl's and OpenSSL's clients put
    // AES-256-GCM with SHA-384 first, which costs a login and a GiB more CPU than
    // AES-128-GCM with SHA-256 (SHA-384 has no instructions of its own on x86, and
    // AES-256 runs 14 rounds to AES-128's 10) for no security a file transfer needs.
    config.ignore_client_order = true;
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
    // Each ticket costs a login a sealed ticket, an HKDF, a record and three getrandom(2)
    // calls (8 of them took a tenth of a login's CPU). OpenSSL, GnuTLS and Python clients
    // reuse one session for every data connection; a client that spends a ticket per
    // resumption (rustls) needs one for its next control connection and one for its first
    // data connection, and gets more from each download (`TlsConfig::data_server_config`).
    config.send_tls13_tickets = CONTROL_TICKETS;
    config.ticketer = rustls::crypto::ring::Ticketer::new().map_err(tls_error)?;
    Ok(Arc::new(config))
}

/// A copy of the process's default crypto provider (installing rustls's, as
/// `ServerConfig::builder` does, when the program installed none).
fn default_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::CryptoProvider::clone(rustls::ServerConfig::builder().crypto_provider())
}

/// `provider` with its AES-128-GCM suites (TLS 1.3 and 1.2) first, the others after in
/// their order.
fn aes128_first(mut provider: rustls::crypto::CryptoProvider) -> rustls::crypto::CryptoProvider {
    use rustls::CipherSuite as S;
    const PREFERRED: [S; 3] = [
        S::TLS13_AES_128_GCM_SHA256,
        S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ];
    provider
        .cipher_suites
        .sort_by_key(|suite| !PREFERRED.contains(&suite.suite()));
    provider
}

/// `provider` with its key exchange groups in the order common clients (curl and OpenSSL,
/// GnuTLS, browsers) offer them: X25519, then P-256, then the others (ring lists P-384
/// first, whose arithmetic costs a handshake four times X25519's). rustls takes the first
/// group of the client's list that it supports, and a HelloRetryRequest only when the
/// client sent no key share for it; this order decides should that change.
fn common_kx_first(mut provider: rustls::crypto::CryptoProvider) -> rustls::crypto::CryptoProvider {
    use rustls::NamedGroup as G;
    const PREFERRED: [G; 2] = [G::X25519, G::secp256r1];
    provider.kx_groups.sort_by_key(|group| {
        PREFERRED
            .iter()
            .position(|&name| name == group.name())
            .unwrap_or(PREFERRED.len())
    });
    provider
}

/// TLS 1.3 tickets sent on a control connection.
const CONTROL_TICKETS: usize = 2;
/// TLS 1.3 tickets sent on a download's data connection (none on an upload's).
const DATA_TICKETS: usize = 2;
/// TLS 1.2 sessions remembered by id (data connections of clients without tickets).
const SESSION_CACHE: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    fn config_error(cert: &Path, key: Option<&Path>) -> String {
        match server_config_from_pem(cert, key, None) {
            Ok(_) => panic!("{} was accepted", cert.display()),
            Err(Error::Config(text)) => text,
            Err(other) => panic!("not a configuration error: {other}"),
        }
    }

    #[test]
    fn aes_128_gcm_comes_first_and_nothing_is_lost() {
        let before = default_provider();
        let after = aes128_first(default_provider());
        let names = |p: &rustls::crypto::CryptoProvider| -> Vec<rustls::CipherSuite> {
            p.cipher_suites.iter().map(|s| s.suite()).collect()
        };
        let (mut b, a) = (names(&before), names(&after));
        assert_eq!(a[0], rustls::CipherSuite::TLS13_AES_128_GCM_SHA256, "{a:?}");
        assert_ne!(b[0], a[0], "the default order already had it first: {b:?}");
        let mut sorted = a.clone();
        sorted.sort_by_key(|s| u16::from(*s));
        b.sort_by_key(|s| u16::from(*s));
        assert_eq!(sorted, b, "the same suites");
    }

    /// The server configuration of `from_pem_files`, with the built-in P-256 certificate.
    fn pem_config() -> Arc<rustls::ServerConfig> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, crate::fuzzing::CERT_PEM).expect("write cert");
        std::fs::write(&key, crate::fuzzing::KEY_PEM).expect("write key");
        server_config_from_pem(&cert, Some(&key), None).expect("config")
    }

    /// A full handshake in memory between `server` and a rustls client offering `groups`
    /// in that order (its key share: the first); the two connections after it, with the
    /// tickets the server sent read by the client.
    fn handshake(
        server: &Arc<rustls::ServerConfig>,
        groups: &[rustls::NamedGroup],
    ) -> (rustls::ClientConnection, rustls::ServerConnection) {
        let mut provider = default_provider();
        provider.kx_groups = groups
            .iter()
            .map(|name| {
                *provider
                    .kx_groups
                    .iter()
                    .find(|g| g.name() == *name)
                    .expect("the provider has the group")
            })
            .collect();
        let provider = Arc::new(provider);
        let client_config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(crate::testing::any_certificate(provider))
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut client =
            rustls::ClientConnection::new(Arc::new(client_config), name).expect("client");
        let mut server = rustls::ServerConnection::new(Arc::clone(server)).expect("server");
        for _ in 0..10 {
            let mut wire = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut wire).expect("client write");
            }
            let mut rest = &wire[..];
            while !rest.is_empty() {
                server.read_tls(&mut rest).expect("server read");
                server.process_new_packets().expect("server process");
            }
            let mut wire = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut wire).expect("server write");
            }
            let mut rest = &wire[..];
            while !rest.is_empty() {
                client.read_tls(&mut rest).expect("client read");
                client.process_new_packets().expect("client process");
            }
            if !client.is_handshaking() && !server.is_handshaking() && !server.wants_write() {
                return (client, server);
            }
        }
        panic!("the handshake did not end");
    }

    #[test]
    fn common_clients_get_their_key_share_without_a_hello_retry() {
        use rustls::NamedGroup as G;
        let server = pem_config();
        let names: Vec<G> = server
            .crypto_provider()
            .kx_groups
            .iter()
            .map(|g| g.name())
            .collect();
        assert_eq!(names[..2], [G::X25519, G::secp256r1], "{names:?}");
        // curl / OpenSSL, browsers and ftpbench: X25519 first; GnuTLS's older defaults:
        // P-256 first; rustls's ring provider: P-384 first.
        for groups in [
            &[G::X25519, G::secp256r1, G::secp384r1][..],
            &[G::secp256r1, G::X25519],
            &[G::secp384r1, G::X25519, G::secp256r1],
        ] {
            let (_, conn) = handshake(&server, groups);
            assert_eq!(
                conn.handshake_kind(),
                Some(rustls::HandshakeKind::Full),
                "{groups:?}"
            );
            let got = conn.negotiated_key_exchange_group().map(|g| g.name());
            assert_eq!(got, Some(groups[0]), "{groups:?}");
        }
    }

    #[test]
    fn a_control_connection_sends_two_tickets_and_a_data_connection_its_own_number() {
        let server = pem_config();
        let (client, _) = handshake(&server, &[rustls::NamedGroup::X25519]);
        assert_eq!(client.tls13_tickets_received(), CONTROL_TICKETS as u32);
        let tls = TlsConfig::new(Arc::clone(&server));
        assert_eq!(tls.data_server_config().send_tls13_tickets, DATA_TICKETS);
        // A configuration of the program's own that issues no tickets keeps issuing none.
        let mut silent = rustls::ServerConfig::clone(&server);
        silent.send_tls13_tickets = 0;
        let tls = TlsConfig::new(Arc::new(silent));
        assert_eq!(tls.data_server_config().send_tls13_tickets, 0);
    }

    #[test]
    fn a_missing_certificate_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.pem");
        let text = config_error(&missing, None);
        assert!(text.contains("nope.pem"), "{text}");
        assert!(text.contains("No such file or directory"), "{text}");
    }

    #[test]
    fn a_file_without_pem_blocks_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "hello\n").expect("write");
        let text = config_error(&garbage, None);
        assert!(text.contains("no PEM certificate found"), "{text}");
        // A PEM block of the wrong kind is no certificate either.
        std::fs::write(
            &garbage,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        let text = config_error(&garbage, None);
        assert!(text.contains("garbage.pem"), "{text}");
    }
}

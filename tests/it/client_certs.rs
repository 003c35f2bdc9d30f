//! Client certificates as identity: with a client CA (mutual TLS) a client without a
//! certificate that CA signed fails the handshake; the authorizer gets the verified
//! certificate at USER and logs the user in by it (232), asks for the password as well,
//! or refuses.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ftpdlib::authorizers::{
    AuthenticationFailed, Authorizer, CertificateLogin, ClientCertificate, DummyAuthorizer,
};
use ftpdlib::config::TlsConfig;
use sha2::{Digest, Sha256};

use crate::tls::client::{
    client_config, client_config_with_cert, have_openssl, pem_certs, Certs, FtpsClient,
};
use crate::util::{BinServer, TestServer};

/// The default users, plus what a certificate does: `client` logs in by it, `bad` is
/// refused, the rest need their password too. Keeps the certificates it was shown.
struct ByCertificate {
    users: DummyAuthorizer,
    seen: Arc<Mutex<Vec<ClientCertificate>>>,
}

impl Authorizer for ByCertificate {
    fn validate_authentication(&self, u: &str, p: &str) -> Result<(), AuthenticationFailed> {
        self.users.validate_authentication(u, p)
    }
    fn home_dir(&self, u: &str) -> Option<PathBuf> {
        self.users.home_dir(u)
    }
    fn has_user(&self, u: &str) -> bool {
        self.users.has_user(u)
    }
    fn has_perm(&self, u: &str, perm: char, path: Option<&Path>) -> bool {
        self.users.has_perm(u, perm, path)
    }
    fn perms(&self, u: &str) -> String {
        self.users.perms(u)
    }
    fn msg_login(&self, u: &str) -> String {
        self.users.msg_login(u)
    }
    fn msg_quit(&self, u: &str) -> String {
        self.users.msg_quit(u)
    }
    fn validate_certificate(&self, username: &str, cert: &ClientCertificate) -> CertificateLogin {
        self.seen.lock().expect("lock").push(cert.clone());
        match username {
            "client" if cert.common_name.as_deref() == Some("client") => CertificateLogin::LoggedIn,
            "bad" => CertificateLogin::Refused("Not with this certificate.".to_owned()),
            _ => CertificateLogin::Password,
        }
    }
}

fn mutual_tls(certs: &Certs) -> TlsConfig {
    TlsConfig::from_pem_files_with_client_ca(
        &certs.path("ec.crt"),
        Some(&certs.path("ec.key")),
        &certs.path("ca.crt"),
    )
    .expect("server TLS with a client CA")
}

/// A client without a certificate, or with one the CA did not sign, gets no session.
fn refused(srv_addr: std::net::SocketAddr, config: &Arc<rustls::ClientConfig>) {
    let mut c = FtpsClient::connect(srv_addr);
    if c.auth_tls_unchecked(config).is_ok() {
        // TLS 1.3: the client finishes first; the server's alert comes after.
        let _ = c.conn_mut().write_all(b"USER user\r\n");
        assert!(
            !matches!(c.try_reply(), Ok(Some(_))),
            "a client without a good certificate got a reply"
        );
    }
}

#[test]
fn the_authorizer_decides_what_a_verified_certificate_is_worth() {
    if !have_openssl() {
        return;
    }
    let certs = Certs::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (tls, recorded) = (mutual_tls(&certs), Arc::clone(&seen));
    let srv = TestServer::with_users(
        move |mut users| {
            let home = users.home_dir("user").expect("the test user's home");
            for name in ["client", "bad"] {
                users
                    .add_user(name, "12345", &home, "elr", None, None)
                    .expect("user");
            }
            Box::new(ByCertificate {
                users,
                seen: recorded,
            })
        },
        |c| c.tls = Some(tls),
        |_| {},
        |b| b,
    );
    refused(srv.addr, &client_config());
    refused(
        srv.addr,
        &client_config_with_cert(Some((&certs.path("rsa.crt"), &certs.path("rsa.key")))),
    );

    let with_cert =
        client_config_with_cert(Some((&certs.path("client.crt"), &certs.path("client.key"))));
    let mut c = FtpsClient::connect(srv.addr);
    c.auth_tls(&with_cert);
    let (code, _) = c.cmd("USER client");
    assert_eq!(code, 232, "logged in by the certificate");
    c.expect("PWD", 257);
    c.expect("QUIT", 221);
    let cert = seen
        .lock()
        .expect("lock")
        .first()
        .cloned()
        .expect("a certificate");
    assert_eq!(cert.subject, "CN=client");
    assert_eq!(cert.common_name.as_deref(), Some("client"));
    assert_eq!(
        cert.subject_alt_names,
        ["client@example.com", "client.example", "192.0.2.7"]
    );
    let der = pem_certs(&certs.path("client.crt")).remove(0);
    let expected: String = Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(cert.fingerprint_sha256, expected);
    assert_eq!(cert.der, der.as_ref());

    // Certificate and password.
    let mut c = FtpsClient::connect(srv.addr);
    c.auth_tls(&with_cert);
    c.expect("USER user", 331);
    assert_eq!(c.cmd("PASS wrong").0, 530);
    c.expect("USER user", 331);
    c.expect("PASS 12345", 230);
    c.expect("QUIT", 221);

    // Refused: a failed login.
    let mut c = FtpsClient::connect(srv.addr);
    c.auth_tls(&with_cert);
    assert_eq!(
        c.cmd("USER bad"),
        (530, "Not with this certificate.".to_owned())
    );
}

/// The binary: `--tls-client-ca` requires a certificate; `--tls-client-cert-login` logs
/// in the user a certificate names.
#[test]
fn the_binary_requires_and_accepts_client_certificates() {
    if !have_openssl() {
        return;
    }
    let certs = Certs::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (cert, key, ca) = (
        certs.arg("ec.crt"),
        certs.arg("ec.key"),
        certs.arg("ca.crt"),
    );
    let dir = tmp.path().to_str().expect("UTF-8 path");
    let base = [
        "-d",
        dir,
        "-u",
        "client",
        "-P",
        "secret",
        "--tls",
        "--certfile",
        &cert,
        "--keyfile",
        &key,
        "--tls-client-ca",
        &ca,
    ];
    let with_cert =
        client_config_with_cert(Some((&certs.path("client.crt"), &certs.path("client.key"))));

    let srv = BinServer::start(&base);
    refused(srv.addr, &client_config());
    let mut c = FtpsClient::connect(srv.addr);
    c.auth_tls(&with_cert);
    c.expect("USER client", 331);
    c.expect("PASS secret", 230);
    c.expect("QUIT", 221);
    drop(srv);

    let mut args = base.to_vec();
    args.push("--tls-client-cert-login");
    let srv = BinServer::start(&args);
    let mut c = FtpsClient::connect(srv.addr);
    c.auth_tls(&with_cert);
    assert_eq!(c.cmd("USER client").0, 232);
    c.expect("QUIT", 221);
}

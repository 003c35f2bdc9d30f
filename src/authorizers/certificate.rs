//! Client certificates as identity: with mutual TLS ([`TlsConfig::from_pem_files_with_client_ca`]),
//! the certificate the handshake verified is handed to the authorizer at `USER`
//! ([`Authorizer::validate_certificate`]), which may log the user in by it (`232`, RFC
//! 2228's "authorized by security data exchange"), ask for the password as well, or
//! refuse.
//!
//! [`TlsConfig::from_pem_files_with_client_ca`]: crate::config::TlsConfig::from_pem_files_with_client_ca
//! [`Authorizer::validate_certificate`]: super::Authorizer::validate_certificate

use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use x509_cert::der::asn1::{PrintableStringRef, Utf8StringRef};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

/// The client certificate a session's TLS handshake verified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientCertificate {
    /// The certificate, DER-encoded.
    pub der: Vec<u8>,
    /// The subject, as RFC 4514 text (`CN=alice,O=Example`).
    pub subject: String,
    /// The subject's common name (CN), if it has one.
    pub common_name: Option<String>,
    /// The subject alternative names: DNS names, e-mail addresses (`rfc822Name`), IP
    /// addresses and URIs, as text.
    pub subject_alt_names: Vec<String>,
    /// The SHA-256 of the DER, lower-case hex (what `openssl x509 -fingerprint -sha256`
    /// prints, without the colons).
    pub fingerprint_sha256: String,
}

impl ClientCertificate {
    /// Reads a DER certificate.
    ///
    /// # Errors
    /// The DER decoder's message, for bytes that are not an X.509 certificate.
    pub fn from_der(der: &[u8]) -> Result<ClientCertificate, String> {
        let cert = Certificate::from_der(der).map_err(|e| e.to_string())?;
        let tbs = &cert.tbs_certificate;
        let common_name = tbs
            .subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .find(|atv| atv.oid == x509_cert::der::oid::db::rfc4519::CN)
            .and_then(|atv| {
                let value = &atv.value;
                value
                    .decode_as::<Utf8StringRef<'_>>()
                    .map(|s| s.as_str().to_owned())
                    .or_else(|_| {
                        value
                            .decode_as::<PrintableStringRef<'_>>()
                            .map(|s| s.as_str().to_owned())
                    })
                    .ok()
            });
        let mut subject_alt_names = Vec::new();
        let san_oid = x509_cert::der::oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME;
        for ext in tbs.extensions.iter().flatten() {
            if ext.extn_id != san_oid {
                continue;
            }
            let names =
                SubjectAltName::from_der(ext.extn_value.as_bytes()).map_err(|e| e.to_string())?;
            subject_alt_names.extend(names.0.iter().filter_map(general_name));
        }
        let mut fingerprint_sha256 = String::with_capacity(64);
        for byte in Sha256::digest(der) {
            let _ = write!(fingerprint_sha256, "{byte:02x}");
        }
        Ok(ClientCertificate {
            der: cert.to_der().map_err(|e| e.to_string())?,
            subject: tbs.subject.to_string(),
            common_name,
            subject_alt_names,
            fingerprint_sha256,
        })
    }

    /// Whether the certificate names `username`: as its common name, or as a subject
    /// alternative name (an e-mail address or a DNS name).
    pub fn names(&self, username: &str) -> bool {
        self.common_name.as_deref() == Some(username)
            || self.subject_alt_names.iter().any(|n| n == username)
    }
}

fn general_name(name: &GeneralName) -> Option<String> {
    match name {
        GeneralName::DnsName(s) | GeneralName::Rfc822Name(s) => Some(s.as_str().to_owned()),
        GeneralName::UniformResourceIdentifier(s) => Some(s.as_str().to_owned()),
        GeneralName::IpAddress(bytes) => {
            let b = bytes.as_bytes();
            match b.len() {
                4 => <[u8; 4]>::try_from(b)
                    .ok()
                    .map(|a| std::net::Ipv4Addr::from(a).to_string()),
                16 => <[u8; 16]>::try_from(b)
                    .ok()
                    .map(|a| std::net::Ipv6Addr::from(a).to_string()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// What a verified client certificate does for a login
/// ([`Authorizer::validate_certificate`](super::Authorizer::validate_certificate)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateLogin {
    /// Ask for the password as usual: certificate and password are both needed.
    Password,
    /// The certificate is enough: the user is logged in at USER, with `232`.
    LoggedIn,
    /// The certificate does not do for this user: `530` with this text, after the
    /// failed-login delay, counted as a failed login.
    Refused(String),
}

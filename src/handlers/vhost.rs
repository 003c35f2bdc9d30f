//! Virtual hosts (RFC 7151): several sites on one address and port, each with its own
//! users (an authorizer, so their homes and rights), banner and TLS certificate. A client
//! names its site with `HOST` before `USER`, or, over TLS, with the name it sends in the
//! handshake (SNI), which also picks the certificate: implicit FTPS clients and those
//! that never send `HOST` (curl, lftp) reach their site that way.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::authorizers::Authorizer;
use crate::config::TlsConfig;
use crate::error::Error;

/// One virtual host: its name, users and, optionally, banner and certificate.
#[derive(Clone)]
pub struct VirtualHost {
    name: String,
    pub(crate) authorizer: Arc<dyn Authorizer>,
    pub(crate) banner: Option<String>,
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
}

impl fmt::Debug for VirtualHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualHost")
            .field("name", &self.name)
            .field("banner", &self.banner)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl VirtualHost {
    /// The site `name` (a DNS name, matched without regard to case), whose users come
    /// from `authorizer`.
    pub fn new(name: &str, authorizer: impl Authorizer + 'static) -> VirtualHost {
        VirtualHost::with_authorizer(name, Arc::new(authorizer))
    }

    /// [`VirtualHost::new`] with an authorizer already shared.
    pub fn with_authorizer(name: &str, authorizer: Arc<dyn Authorizer>) -> VirtualHost {
        VirtualHost {
            name: name.trim().trim_end_matches('.').to_ascii_lowercase(),
            authorizer,
            banner: None,
            tls: None,
        }
    }

    /// The text of the `220` that accepts `HOST` (else `Host accepted.`).
    #[must_use]
    pub fn banner(mut self, text: impl Into<String>) -> VirtualHost {
        self.banner = Some(text.into());
        self
    }

    /// The certificate chain and key this site presents (PEM files, as
    /// [`TlsConfig::from_pem_files`] reads them), picked by the name the client sends in
    /// its TLS handshake. Needs FTPS on the server ([`ServerBuilder::tls`]); sites
    /// without one present the server's certificate.
    ///
    /// [`ServerBuilder::tls`]: crate::servers::ServerBuilder::tls
    ///
    /// # Errors
    /// [`Error::Config`] naming the file, as for the server's certificate.
    pub fn certificate(
        mut self,
        certfile: &Path,
        keyfile: Option<&Path>,
    ) -> Result<VirtualHost, Error> {
        self.tls = Some(TlsConfig::from_pem_files(certfile, keyfile)?.server_config);
        Ok(self)
    }

    /// The site's name, in lower case.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The virtual hosts of a server, by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct VirtualHosts {
    by_name: HashMap<String, Arc<VirtualHost>>,
}

impl VirtualHosts {
    pub(crate) fn new(hosts: &[VirtualHost]) -> VirtualHosts {
        VirtualHosts {
            by_name: hosts
                .iter()
                .map(|h| (h.name.clone(), Arc::new(h.clone())))
                .collect(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The host named `name` (any case, a trailing dot ignored).
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<VirtualHost>> {
        let name = name.trim().trim_end_matches('.');
        self.by_name.get(&name.to_ascii_lowercase())
    }

    /// `server`'s rustls configuration, with a certificate chosen by SNI among the
    /// hosts that have one, the server's own otherwise. Unchanged when no host has one.
    pub(crate) fn tls_config(&self, server: &TlsConfig) -> TlsConfig {
        let by_name: HashMap<String, Arc<dyn ResolvesServerCert>> = self
            .by_name
            .iter()
            .filter_map(|(name, h)| {
                h.tls
                    .as_ref()
                    .map(|t| (name.clone(), Arc::clone(&t.cert_resolver)))
            })
            .collect();
        if by_name.is_empty() {
            return server.clone();
        }
        let mut config = (*server.server_config).clone();
        config.cert_resolver = Arc::new(BySni {
            by_name,
            default: Arc::clone(&server.server_config.cert_resolver),
        });
        server.with_server_config(Arc::new(config))
    }
}

/// Picks a host's certificate by the SNI name, else the server's.
#[derive(Debug)]
struct BySni {
    by_name: HashMap<String, Arc<dyn ResolvesServerCert>>,
    default: Arc<dyn ResolvesServerCert>,
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let host = hello
            .server_name()
            .and_then(|name| self.by_name.get(&name.to_ascii_lowercase()));
        match host {
            Some(resolver) => resolver.resolve(hello),
            None => self.default.resolve(hello),
        }
    }
}

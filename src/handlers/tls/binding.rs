//! The configuration of one handshake. rustls's unbuffered server connection (which lets
//! the channel own its record buffers) cannot tag the session tickets it issues nor say
//! which name the client asked for, so each handshake runs on a copy of the server's
//! configuration whose ticketer and session store tag sessions with the control session's
//! token, and whose certificate resolver notes the SNI name. The copy lives as long as
//! the handshake: rustls lets go of it once traffic flows.

use std::sync::{Arc, OnceLock};

use rustls::server::{ClientHello, ProducesTickets, ResolvesServerCert, StoresServerSessions};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use super::TOKEN_LEN;

/// Which connection of a session a handshake secures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsRole {
    /// The control connection: its tickets and cached sessions carry the session's token;
    /// it may resume any earlier control session, and notes the SNI name.
    Control,
    /// A data connection: it resumes only a session carrying its control session's token
    /// (anything else gets a full handshake, which `--tls-require-reuse` then refuses).
    Data,
}

/// The SNI name a control handshake saw, once it saw one.
pub(super) type SniCell = Arc<OnceLock<Box<str>>>;

/// `config` with the ticketer, session store and (for a control connection) certificate
/// resolver of one handshake.
pub(super) fn handshake_config(
    config: &Arc<ServerConfig>,
    token: [u8; TOKEN_LEN],
    role: TlsRole,
) -> (Arc<ServerConfig>, Option<SniCell>) {
    let mut c = ServerConfig::clone(config);
    // FTP has no use for 0-RTT data, and the channel reads none.
    c.max_early_data_size = 0;
    c.ticketer = Arc::new(TaggedTickets {
        inner: Arc::clone(&config.ticketer),
        token,
        role,
    });
    c.session_storage = Arc::new(TaggedSessions {
        inner: Arc::clone(&config.session_storage),
        token,
        role,
    });
    let sni = match role {
        TlsRole::Control => {
            let cell = SniCell::default();
            c.cert_resolver = Arc::new(SniNote {
                inner: Arc::clone(&config.cert_resolver),
                name: Arc::clone(&cell),
            });
            Some(cell)
        }
        TlsRole::Data => {
            // A download takes its traffic keys out of rustls to seal its records itself
            // (`Transport::seal_sending`).
            c.enable_secret_extraction = true;
            None
        }
    };
    (Arc::new(c), sni)
}

/// Whether a tagged session value may be resumed by `role` holding `token`; the untagged
/// value if so.
fn untag<'a>(value: &'a [u8], token: &[u8; TOKEN_LEN], role: TlsRole) -> Option<&'a [u8]> {
    let (tag, rest) = value.split_at_checked(TOKEN_LEN)?;
    match role {
        TlsRole::Control => Some(rest),
        TlsRole::Data => (tag == token).then_some(rest),
    }
}

fn tag(token: &[u8; TOKEN_LEN], value: &[u8]) -> Vec<u8> {
    let mut tagged = Vec::with_capacity(TOKEN_LEN + value.len());
    tagged.extend_from_slice(token);
    tagged.extend_from_slice(value);
    tagged
}

/// Session tickets (TLS 1.2 and 1.3) sealed by the server's ticketer over the token and
/// the session.
#[derive(Debug)]
struct TaggedTickets {
    inner: Arc<dyn ProducesTickets>,
    token: [u8; TOKEN_LEN],
    role: TlsRole,
}

impl ProducesTickets for TaggedTickets {
    fn enabled(&self) -> bool {
        self.inner.enabled()
    }

    fn lifetime(&self) -> u32 {
        self.inner.lifetime()
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.inner.encrypt(&tag(&self.token, plain))
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let plain = self.inner.decrypt(cipher)?;
        untag(&plain, &self.token, self.role).map(<[u8]>::to_vec)
    }
}

/// The server's session cache (TLS 1.2 session ids) with tagged values.
#[derive(Debug)]
struct TaggedSessions {
    inner: Arc<dyn StoresServerSessions>,
    token: [u8; TOKEN_LEN],
    role: TlsRole,
}

impl StoresServerSessions for TaggedSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.inner.put(key, tag(&self.token, &value))
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let value = self.inner.get(key)?;
        untag(&value, &self.token, self.role).map(<[u8]>::to_vec)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        // Only a session this connection may resume is taken out of the cache.
        let value = self.inner.get(key)?;
        untag(&value, &self.token, self.role)?;
        let value = self.inner.take(key)?;
        untag(&value, &self.token, self.role).map(<[u8]>::to_vec)
    }

    fn can_cache(&self) -> bool {
        self.inner.can_cache()
    }
}

/// The server's certificate resolver, noting the SNI name on the way.
#[derive(Debug)]
struct SniNote {
    inner: Arc<dyn ResolvesServerCert>,
    name: SniCell,
}

impl ResolvesServerCert for SniNote {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello.server_name() {
            let _ = self.name.set(name.into());
        }
        self.inner.resolve(hello)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_connection_resumes_only_its_own_session() {
        let mine = [1u8; TOKEN_LEN];
        let other = [2u8; TOKEN_LEN];
        let value = tag(&mine, b"session");
        assert_eq!(untag(&value, &mine, TlsRole::Data), Some(&b"session"[..]));
        assert_eq!(untag(&value, &other, TlsRole::Data), None);
        assert_eq!(
            untag(&value, &other, TlsRole::Control),
            Some(&b"session"[..])
        );
        assert_eq!(untag(b"short", &mine, TlsRole::Control), None);
    }
}

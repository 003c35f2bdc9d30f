//! The configuration of one handshake. rustls's unbuffered server connection (which lets
//! the channel own its record buffers) cannot tag the session tickets it issues nor say
//! which name the client asked for, so each handshake runs on a copy of the server's
//! configuration whose ticketer and session store tag sessions with the control session's
//! token, and whose certificate resolver notes the SNI name. The copy lives as long as
//! the handshake: rustls lets go of it once traffic flows. (The copy and its few boxes
//! cost under 1 µs of a login's ~200: docs/performance.md, FTPS logins.)
//!
//! A data connection's TLS 1.3 tickets wait for its transfer: the ticketer issues them only
//! once the channel knows it carries a download ([`HandshakeNotes::allow_tickets`]), whose
//! client reads to the end and so reads them too. An upload's client never reads; tickets
//! left unread turn its close into a reset that can cut the upload's tail (seen with lftp /
//! GnuTLS).

use std::sync::atomic::{AtomicBool, Ordering};
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

/// What the configuration of one handshake notes for its connection, and what the
/// connection tells it.
#[derive(Debug, Default)]
pub(super) struct HandshakeNotes {
    /// The SNI name a control handshake saw, once it saw one.
    sni: OnceLock<Box<str>>,
    /// A data connection's handshake may issue TLS 1.3 tickets: it carries a download.
    tickets: AtomicBool,
}

impl HandshakeNotes {
    /// The SNI name a control handshake saw, once it saw one.
    pub(super) fn server_name(&self) -> Option<&str> {
        self.sni.get().map(|name| &**name)
    }

    /// Lets a data connection's handshake issue its tickets (see the module's comment).
    /// Tickets already decided (a handshake that finished first) stay unsent.
    pub(super) fn allow_tickets(&self) {
        self.tickets.store(true, Ordering::Relaxed);
    }
}

/// `config` with the ticketer, session store and (for a control connection) certificate
/// resolver of one handshake, and the notes they keep.
pub(super) fn handshake_config(
    config: &Arc<ServerConfig>,
    token: [u8; TOKEN_LEN],
    role: TlsRole,
) -> (Arc<ServerConfig>, Arc<HandshakeNotes>) {
    let notes = Arc::new(HandshakeNotes::default());
    let mut c = ServerConfig::clone(config);
    // FTP has no use for 0-RTT data, and the channel reads none.
    c.max_early_data_size = 0;
    // The traffic keys may leave rustls once the handshake is over: a control connection
    // drops rustls's record state (`detached`), a download seals its own records
    // (`sealed`).
    c.enable_secret_extraction = true;
    c.ticketer = Arc::new(TaggedTickets {
        inner: Arc::clone(&config.ticketer),
        token,
        role,
        notes: Arc::clone(&notes),
    });
    c.session_storage = Arc::new(TaggedSessions {
        inner: Arc::clone(&config.session_storage),
        token,
        role,
    });
    match role {
        TlsRole::Control => {
            c.cert_resolver = Arc::new(SniNote {
                inner: Arc::clone(&config.cert_resolver),
                notes: Arc::clone(&notes),
            });
        }
        TlsRole::Data => {}
    }
    (Arc::new(c), notes)
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

/// Whether a handshake in `role` may issue a ticket now.
fn tickets_allowed(role: TlsRole, notes: &HandshakeNotes) -> bool {
    match role {
        TlsRole::Control => true,
        TlsRole::Data => notes.tickets.load(Ordering::Relaxed),
    }
}

fn tag(token: &[u8; TOKEN_LEN], value: &[u8]) -> Vec<u8> {
    let mut tagged = Vec::with_capacity(TOKEN_LEN + value.len());
    tagged.extend_from_slice(token);
    tagged.extend_from_slice(value);
    tagged
}

/// Session tickets (TLS 1.2 and 1.3) sealed by the server's ticketer over the token and
/// the session; on a data connection, only once it carries a download.
#[derive(Debug)]
struct TaggedTickets {
    inner: Arc<dyn ProducesTickets>,
    token: [u8; TOKEN_LEN],
    role: TlsRole,
    notes: Arc<HandshakeNotes>,
}

impl ProducesTickets for TaggedTickets {
    fn enabled(&self) -> bool {
        self.inner.enabled()
    }

    fn lifetime(&self) -> u32 {
        self.inner.lifetime()
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        // None: rustls sends no TLS 1.3 ticket (an empty TLS 1.2 one, which leaves the
        // client the session it has).
        if !tickets_allowed(self.role, &self.notes) {
            return None;
        }
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
    notes: Arc<HandshakeNotes>,
}

impl ResolvesServerCert for SniNote {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello.server_name() {
            let _ = self.notes.sni.set(name.into());
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

    #[test]
    fn a_data_connection_issues_tickets_only_once_allowed() {
        let notes = HandshakeNotes::default();
        assert!(tickets_allowed(TlsRole::Control, &notes));
        assert!(!tickets_allowed(TlsRole::Data, &notes));
        notes.allow_tickets();
        assert!(tickets_allowed(TlsRole::Data, &notes));
    }
}

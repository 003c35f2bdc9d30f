//! The client side of `-S`, shared by the blocking and the non-blocking client: a rustls
//! configuration per client session whose in-memory session store makes the session's data
//! connections resume its control connection's TLS session, as pyftpdlib's FTP_TLS does
//! (and as vsftpd's `require_ssl_reuse` demands); with `--tls-resume`, also a pool shared
//! by all sessions, from which new control connections resume earlier sessions.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};

use rustls::client::{
    ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, NamedGroup};

/// FTPS for a run: the configuration every session's own is made from, and with
/// `--tls-resume` the pool of sessions shared by all of them.
#[derive(Clone)]
pub struct Tls {
    base: Arc<ClientConfig>,
    pool: Option<Arc<Pool>>,
}

impl Tls {
    /// Trusts any certificate (benchmarks run against self-signed ones; signatures are
    /// still checked). `resume_across`: new control connections resume the sessions of
    /// earlier ones (`--tls-resume`); else each makes a full handshake. `tls12_only`: TLS
    /// 1.2 is all it offers (`--tls12`).
    pub fn new(resume_across: bool, tls12_only: bool) -> io::Result<Tls> {
        // The process's default crypto provider (ring, from rustls's features), with the
        // key exchange that curl, OpenSSL's and GnuTLS's clients and browsers offer first:
        // X25519 (this ring provider lists P-384 first, which costs servers several times
        // as much CPU per handshake, and no common client sends).
        let mut provider = (**ClientConfig::builder().crypto_provider()).clone();
        provider.kx_groups.sort_by_key(|g| {
            KX_ORDER
                .iter()
                .position(|&n| n == g.name())
                .unwrap_or(usize::MAX)
        });
        let provider = Arc::new(provider);
        let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
            &[&rustls::version::TLS12]
        } else {
            rustls::DEFAULT_VERSIONS
        };
        let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(io::Error::other)?
            .dangerous()
            .with_custom_certificate_verifier(ftpdlib::testing::any_certificate(provider))
            .with_no_client_auth();
        Ok(Tls {
            base: Arc::new(config),
            pool: resume_across.then(|| Arc::new(Pool::default())),
        })
    }

    /// Whether control connections resume earlier sessions (`--tls-resume`).
    pub fn resumes_across(&self) -> bool {
        self.pool.is_some()
    }

    /// The configuration of one client session, for its control connection and all its
    /// data connections: a store of its own, so that its data connections resume its
    /// control connection's session (with `--tls-resume`, its control connection takes a
    /// session from the shared pool and gives the pool the first ticket it gets; its data
    /// connections fall back on the pool when the server sent no more).
    pub fn session_config(&self) -> Arc<ClientConfig> {
        let mut config = (*self.base).clone();
        config.resumption = Resumption::store(Arc::new(SessionStore {
            own: Mutex::default(),
            pool: self.pool.clone(),
        }));
        Arc::new(config)
    }
}

/// One client session's TLS sessions. Every client connects to one server name, so the
/// store keeps no map by name.
#[derive(Debug)]
struct SessionStore {
    own: Mutex<Sessions>,
    pool: Option<Arc<Pool>>,
}

/// What rustls remembers of a server, for one client session or for the pool.
#[derive(Debug, Default)]
struct Sessions {
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    /// TLS 1.3 tickets, oldest first (rustls uses each once).
    tls13: VecDeque<Tls13ClientSessionValue>,
    /// With a pool: whether this session gave it its first ticket yet.
    gave_to_pool: bool,
}

/// The sessions shared by all clients with `--tls-resume`.
#[derive(Debug, Default)]
struct Pool(Mutex<Sessions>);

impl ClientSessionStore for SessionStore {
    fn set_kx_hint(&self, _server_name: ServerName<'static>, group: NamedGroup) {
        with(&self.own, |s| s.kx_hint = Some(group));
        if let Some(pool) = &self.pool {
            with(&pool.0, |s| s.kx_hint = Some(group));
        }
    }

    fn kx_hint(&self, _server_name: &ServerName<'_>) -> Option<NamedGroup> {
        with(&self.own, |s| s.kx_hint)
            .or_else(|| self.pool.as_ref().and_then(|p| with(&p.0, |s| s.kx_hint)))
    }

    fn set_tls12_session(&self, _server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        if let Some(pool) = &self.pool {
            let copy = value.clone();
            with(&pool.0, |s| s.tls12 = Some(copy));
        }
        with(&self.own, |s| s.tls12 = Some(value));
    }

    fn tls12_session(&self, _server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        with(&self.own, |s| s.tls12.clone()).or_else(|| {
            self.pool
                .as_ref()
                .and_then(|p| with(&p.0, |s| s.tls12.clone()))
        })
    }

    fn remove_tls12_session(&self, _server_name: &ServerName<'static>) {
        with(&self.own, |s| s.tls12 = None);
    }

    fn insert_tls13_ticket(
        &self,
        _server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        // The first ticket of a session goes to the pool (so that each control connection
        // that took one gives one back, and the pool does not drain), the others to the
        // session's data connections. A ticket is used once: it cannot be in both.
        if let Some(pool) = &self.pool {
            let first = with(&self.own, |s| !std::mem::replace(&mut s.gave_to_pool, true));
            if first {
                with(&pool.0, |s| push_bounded(&mut s.tls13, value, POOL_TICKETS));
                return;
            }
        }
        with(&self.own, |s| {
            push_bounded(&mut s.tls13, value, OWN_TICKETS)
        });
    }

    fn take_tls13_ticket(
        &self,
        _server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        // The newest from the pool: servers with a bounded session cache drop the oldest.
        with(&self.own, |s| s.tls13.pop_front()).or_else(|| {
            self.pool
                .as_ref()
                .and_then(|p| with(&p.0, |s| s.tls13.pop_back()))
        })
    }
}

/// Runs `f` on the sessions behind `lock` (a panic elsewhere while it was held left them
/// whole: every update is one assignment or push).
fn with<T>(lock: &Mutex<Sessions>, f: impl FnOnce(&mut Sessions) -> T) -> T {
    let mut guard = lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut guard)
}

/// Appends `value`, dropping the oldest beyond `cap`.
fn push_bounded<T>(q: &mut VecDeque<T>, value: T, cap: usize) {
    if q.len() >= cap {
        q.pop_front();
    }
    q.push_back(value);
}

/// The key exchange groups in the order common clients offer them; others after these.
const KX_ORDER: [NamedGroup; 3] = [
    NamedGroup::X25519,
    NamedGroup::secp256r1,
    NamedGroup::secp384r1,
];
/// TLS 1.3 tickets one client session keeps (rustls's own cache keeps 8 per server).
const OWN_TICKETS: usize = 8;
/// TLS 1.3 tickets the `--tls-resume` pool keeps: more than the largest burst of logins.
const POOL_TICKETS: usize = 1 << 20;

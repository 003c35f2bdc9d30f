//! A session's FTPS state (RFC 4217): TLS on the control connection and PBSZ / PROT.
//! The control channel's hooks that move it are in `control::tls`.

use ioloop::TimerId;

use super::tls::TOKEN_LEN;
use super::CloseReason;
use crate::config::TlsConfig;
use crate::proto::Reply;

/// The state of TLS on a control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ControlTls {
    /// Plain text (no AUTH yet).
    Clear,
    /// `234` is queued; the switch happens once it is sent.
    Starting,
    /// The handshake runs; the timer bounds it.
    Handshaking(Option<TimerId>),
    /// Secured.
    Secure,
}

/// The data channel protection level (PBSZ / PROT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DataProt {
    /// No PBSZ yet: PROT is refused.
    NoPbsz,
    /// PBSZ done, PROT C (or no PROT yet): clear data connections.
    Clear,
    /// PROT P: TLS on data connections.
    Private,
}

/// A session's FTPS state. Boxed, and there only once FTPS is in use (AUTH, or implicit
/// FTPS from the start): a plain session carries one null pointer.
pub(super) struct SessionTls(pub(super) Option<Box<TlsState>>);

pub(super) struct TlsState {
    pub(super) control: ControlTls,
    pub(super) prot: DataProt,
    /// Random; stored in the session tickets issued to this session, so a data connection
    /// can prove it resumed this session and not another client's.
    pub(super) token: [u8; TOKEN_LEN],
    /// TLS refused the data connection before a transfer command came: its 522.
    pub(super) refused: Option<Reply>,
}

impl SessionTls {
    /// The state of a new session: TLS from the start in implicit mode.
    pub(super) fn new(tls: Option<&TlsConfig>) -> SessionTls {
        match tls {
            Some(cfg) if cfg.implicit => SessionTls(Some(Box::new(TlsState {
                control: ControlTls::Handshaking(None),
                prot: DataProt::Private,
                token: new_token(),
                refused: None,
            }))),
            Some(_) | None => SessionTls(None),
        }
    }

    /// The resumption token (empty until FTPS is in use).
    pub(super) fn token(&self) -> &[u8] {
        self.0.as_ref().map_or(&[], |s| &s.token)
    }

    pub(super) fn control(&self) -> ControlTls {
        self.0.as_ref().map_or(ControlTls::Clear, |s| s.control)
    }

    pub(super) fn prot(&self) -> DataProt {
        self.0.as_ref().map_or(DataProt::NoPbsz, |s| s.prot)
    }

    /// The state, created (with a fresh token) on first use.
    pub(super) fn state(&mut self) -> &mut TlsState {
        self.0.get_or_insert_with(|| {
            Box::new(TlsState {
                control: ControlTls::Clear,
                prot: DataProt::NoPbsz,
                token: new_token(),
                refused: None,
            })
        })
    }

    /// Remembers why TLS refused an idle data connection.
    pub(super) fn note_refusal(&mut self, reason: &CloseReason) {
        let refusal = match reason {
            CloseReason::TlsHandshake(_) => Reply::new(522, "SSL handshake failed."),
            CloseReason::TlsReuseRequired => {
                Reply::new(522, "SSL connection failed: session reuse required")
            }
            CloseReason::Completed
            | CloseReason::Aborted
            | CloseReason::PeerClosedEarly
            | CloseReason::Network(_)
            | CloseReason::File(_)
            | CloseReason::Timeout
            | CloseReason::TlsTruncated => return,
        };
        // A TLS data connection exists only under PROT P, so the state is there.
        if let Some(s) = self.0.as_mut() {
            s.refused = Some(refusal);
        }
    }

    /// A new data connection is being set up.
    pub(super) fn clear_refusal(&mut self) {
        if let Some(s) = self.0.as_mut() {
            s.refused = None;
        }
    }
}

/// A session's resumption token.
fn new_token() -> [u8; TOKEN_LEN] {
    let mut token = [0u8; TOKEN_LEN];
    // Without randomness the token only loses its binding power, not safety: resumption
    // itself is still checked.
    let _ = getrandom::fill(&mut token);
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_session_starts_in_clear() {
        assert_eq!(SessionTls::new(None).control(), ControlTls::Clear);
        assert_eq!(SessionTls::new(None).prot(), DataProt::NoPbsz);
        assert!(SessionTls::new(None).token().is_empty());
    }
}

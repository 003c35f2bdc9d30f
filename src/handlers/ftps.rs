//! A session's FTPS state (RFC 4217): TLS on the control connection, PBSZ / PROT, and
//! the hooks the control channel calls as its connection moves through AUTH, the
//! handshake and the replies.

use std::sync::Arc;

use ioloop::{Ctx, TimerId};

use super::control::{FtpHandler, Wait};
use super::tls::{DataTls, TOKEN_LEN};
use super::{CloseReason, Msg};
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
pub(super) struct SessionTls(Option<Box<TlsState>>);

struct TlsState {
    control: ControlTls,
    prot: DataProt,
    /// Random; stored in the session tickets issued to this session, so a data connection
    /// can prove it resumed this session and not another client's.
    token: [u8; TOKEN_LEN],
    /// TLS refused the data connection before a transfer command came: its 522.
    refused: Option<Reply>,
}

impl SessionTls {
    /// The state of a new session: TLS from the start in implicit mode.
    pub(super) fn new(tls: Option<&TlsConfig>) -> SessionTls {
        match tls {
            Some(cfg) if cfg.implicit => SessionTls(Some(Box::new(TlsState {
                control: ControlTls::Handshaking(None),
                prot: DataProt::Private,
                token: new_token(cfg),
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
    fn state(&mut self, cfg: &TlsConfig) -> &mut TlsState {
        self.0.get_or_insert_with(|| {
            Box::new(TlsState {
                control: ControlTls::Clear,
                prot: DataProt::NoPbsz,
                token: new_token(cfg),
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
            | CloseReason::PeerClosedIdle
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
fn new_token(cfg: &TlsConfig) -> [u8; TOKEN_LEN] {
    let mut token = [0u8; TOKEN_LEN];
    // Without randomness the token only loses its binding power, not safety: resumption
    // itself is still checked.
    let _ = cfg
        .server_config
        .crypto_provider()
        .secure_random
        .fill(&mut token);
    token
}

impl FtpHandler {
    pub(super) fn set_control_tls(&mut self, state: ControlTls) {
        log::trace!(
            "{} control TLS {:?}=>{state:?}",
            self.prefix(),
            self.tls.control()
        );
        if let Some(cfg) = self.shared.config.tls.as_ref() {
            self.tls.state(cfg).control = state;
        }
    }

    pub(super) fn set_prot(&mut self, prot: DataProt) {
        log::trace!("{} PROT {:?}=>{prot:?}", self.prefix(), self.tls.prot());
        if let Some(cfg) = self.shared.config.tls.as_ref() {
            self.tls.state(cfg).prot = prot;
        }
    }

    /// REIN, and USER while logged in: PBSZ / PROT start over; TLS stays on the control
    /// connection (and implicit FTPS keeps its implied PROT P).
    pub(super) fn reset_protection(&mut self) {
        let implicit = self.shared.config.tls.as_ref().is_some_and(|c| c.implicit);
        let initial = if implicit {
            DataProt::Private
        } else {
            DataProt::NoPbsz
        };
        if self.tls.prot() != initial {
            self.set_prot(initial);
        }
    }

    /// What a new data connection needs: Some under PROT P.
    pub(super) fn data_tls(&self) -> Option<DataTls> {
        let cfg = self.shared.config.tls.as_ref()?;
        let state = self.tls.0.as_ref()?;
        (state.prot == DataProt::Private).then(|| DataTls {
            config: cfg.data_server_config(),
            token: state.token,
            require_reuse: cfg.require_session_reuse,
            handshake_timeout: cfg.handshake_timeout,
        })
    }

    /// The 522 for a transfer command whose data connection TLS refused earlier.
    pub(super) fn tls_data_refusal(&self) -> Option<Reply> {
        self.tls.0.as_ref().and_then(|s| s.refused.clone())
    }

    /// Whether the server's FTPS requirements are unmet: (TLS on the control connection,
    /// `PROT P`), for the gate.
    pub(super) fn tls_missing(&self) -> (bool, bool) {
        let Some(cfg) = self.shared.config.tls.as_ref() else {
            return (false, false);
        };
        (
            cfg.control_required && !self.control_secure(),
            cfg.data_required && self.tls.prot() != DataProt::Private,
        )
    }

    pub(super) fn control_secure(&self) -> bool {
        self.tls.control() == ControlTls::Secure
    }

    /// Implicit FTPS: the handshake starts with the session; bound it.
    pub(super) fn start_implicit_handshake(&mut self, cx: &mut Ctx<'_, Msg>) {
        if let (ControlTls::Handshaking(None), Some(cfg)) =
            (self.tls.control(), self.shared.config.tls.as_ref())
        {
            let timer = cx.call_later(cfg.handshake_timeout);
            self.set_control_tls(ControlTls::Handshaking(Some(timer)));
        }
    }

    /// After output was flushed: once the 234 is out, layer TLS on the socket.
    pub(super) fn tls_after_flush(&mut self, cx: &mut Ctx<'_, Msg>) {
        if !matches!(self.wait, Wait::StartTls) || self.chat.pending_output() > 0 {
            return;
        }
        let Some(cfg) = self.shared.config.tls.as_ref() else {
            return;
        };
        let config = Arc::clone(&cfg.server_config);
        let timeout = cfg.handshake_timeout;
        // Bytes the client sent behind AUTH belong to the TLS stream, never to the command
        // interpreter (no plaintext command injection).
        let early = self.chat.take_input();
        let token = self.tls.state(cfg).token;
        if let Err(e) = self.chat.stream_mut().start_tls(&config, &token, &early) {
            log::info!("{} SSL handshake failed: {e}", self.prefix());
            return cx.close();
        }
        let timer = cx.call_later(timeout);
        self.set_control_tls(ControlTls::Handshaking(Some(timer)));
        self.end_wait(cx);
    }

    /// After input was read: notes a finished handshake.
    pub(super) fn tls_after_read(&mut self, cx: &mut Ctx<'_, Msg>) {
        if let ControlTls::Handshaking(timer) = self.tls.control() {
            if !self.chat.stream().is_handshaking() {
                if let Some(t) = timer {
                    cx.cancel(t);
                }
                log::debug!(
                    "{} TLS on the control connection: {}",
                    self.prefix(),
                    self.chat.stream().describe()
                );
                self.set_control_tls(ControlTls::Secure);
            }
        }
    }

    /// Whether `timer` is the handshake timer; if so the session ends.
    pub(super) fn tls_timer_fired(&mut self, cx: &mut Ctx<'_, Msg>, timer: TimerId) -> bool {
        if self.tls.control() == ControlTls::Handshaking(Some(timer)) {
            log::info!("{} SSL handshake timeout", self.prefix());
            cx.close();
            return true;
        }
        false
    }

    /// Whether a TLS handshake on the control connection runs (for the failure log line).
    pub(super) fn tls_handshaking(&self) -> bool {
        matches!(self.tls.control(), ControlTls::Handshaking(_))
    }
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

//! The control channel's FTPS hooks: where AUTH's reply is sent and TLS starts, where a
//! handshake ends or times out, and what a data connection needs under PROT P.

use std::sync::Arc;

use ioloop::{Ctx, TimerId};

use super::{FtpHandler, Wait};
use crate::authorizers::ClientCertificate;
use crate::handlers::ftps::{ControlTls, DataProt};
use crate::handlers::tls::{DataTls, TlsRole};
use crate::handlers::Msg;
use crate::metrics::Counter;
use crate::proto::Reply;

impl FtpHandler {
    pub(in crate::handlers) fn set_control_tls(&mut self, state: ControlTls) {
        log::trace!(
            "{} control TLS {:?}=>{state:?}",
            self.prefix(),
            self.tls.control()
        );
        if self.shared.config.tls.is_some() {
            self.tls.state().control = state;
        }
    }

    pub(in crate::handlers) fn set_prot(&mut self, prot: DataProt) {
        log::trace!("{} PROT {:?}=>{prot:?}", self.prefix(), self.tls.prot());
        if self.shared.config.tls.is_some() {
            self.tls.state().prot = prot;
        }
    }

    /// REIN, and USER while logged in: PBSZ / PROT start over; TLS stays on the control
    /// connection (and implicit FTPS keeps its implied PROT P).
    pub(in crate::handlers) fn reset_protection(&mut self) {
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
    pub(in crate::handlers) fn data_tls(&self) -> Option<DataTls> {
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
    pub(in crate::handlers) fn tls_data_refusal(&self) -> Option<Reply> {
        self.tls.0.as_ref().and_then(|s| s.refused.clone())
    }

    /// Whether the server's FTPS requirements are unmet: (TLS on the control connection,
    /// `PROT P`), for the gate.
    pub(in crate::handlers) fn tls_missing(&self) -> (bool, bool) {
        let Some(cfg) = self.shared.config.tls.as_ref() else {
            return (false, false);
        };
        (
            cfg.control_required && !self.control_secure(),
            cfg.data_required && self.tls.prot() != DataProt::Private,
        )
    }

    pub(in crate::handlers) fn control_secure(&self) -> bool {
        self.tls.control() == ControlTls::Secure
    }

    /// Implicit FTPS: the handshake starts with the session; bound it.
    pub(in crate::handlers) fn start_implicit_handshake(&mut self, cx: &mut Ctx<'_, Msg>) {
        if let (ControlTls::Handshaking(None), Some(cfg)) =
            (self.tls.control(), self.shared.config.tls.as_ref())
        {
            let timer = cx.call_later(cfg.handshake_timeout);
            self.set_control_tls(ControlTls::Handshaking(Some(timer)));
        }
    }

    /// After output was flushed: once the 234 is out, layer TLS on the socket.
    pub(in crate::handlers) fn tls_after_flush(&mut self, cx: &mut Ctx<'_, Msg>) {
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
        let token = self.tls.state().token;
        if let Err(e) = self
            .chat
            .stream_mut()
            .start_tls(&config, &token, &early, TlsRole::Control)
        {
            log::info!("{} SSL handshake failed: {e}", self.prefix());
            self.shared.count(Counter::TlsHandshakeFailures, 1);
            return cx.close();
        }
        let timer = cx.call_later(timeout);
        self.set_control_tls(ControlTls::Handshaking(Some(timer)));
        self.end_wait(cx);
    }

    /// After input was read: notes a finished handshake.
    pub(in crate::handlers) fn tls_after_read(&mut self, cx: &mut Ctx<'_, Msg>) {
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
                self.shared.count(Counter::TlsHandshakes, 1);
                self.set_control_tls(ControlTls::Secure);
                self.host_from_sni();
                self.keep_client_certificate();
            }
        }
    }

    /// Keeps the client certificate the handshake verified (mutual TLS), for the
    /// authorizer at USER.
    fn keep_client_certificate(&mut self) {
        let Some(der) = self.chat.stream().peer_certificate() else {
            return;
        };
        match ClientCertificate::from_der(der) {
            Ok(cert) => {
                log::debug!(
                    "{} client certificate {} (SHA-256 {})",
                    self.prefix(),
                    cert.subject,
                    cert.fingerprint_sha256
                );
                self.client_cert = Some(Box::new(cert));
            }
            Err(e) => log::warn!("{} unreadable client certificate: {e}", self.prefix()),
        }
    }

    /// Whether `timer` is the handshake timer; if so the session ends.
    pub(in crate::handlers) fn tls_timer_fired(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        timer: TimerId,
    ) -> bool {
        if self.tls.control() == ControlTls::Handshaking(Some(timer)) {
            log::info!("{} SSL handshake timeout", self.prefix());
            self.shared.count(Counter::TlsHandshakeFailures, 1);
            cx.close();
            return true;
        }
        false
    }

    /// Whether a TLS handshake on the control connection runs (for the failure log line).
    pub(in crate::handlers) fn tls_handshaking(&self) -> bool {
        matches!(self.tls.control(), ControlTls::Handshaking(_))
    }
}

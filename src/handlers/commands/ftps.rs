//! The FTPS commands (RFC 4217): AUTH, PBSZ, PROT, and the FEAT lines they add.

use crate::handlers::control::{FtpHandler, Wait};
use crate::handlers::ftps::{ControlTls, DataProt};
use crate::proto::{parse_auth, parse_prot, ProtLevel, Reply};

impl FtpHandler {
    /// AUTH TLS / SSL / TLS-C / TLS-P (RFC 4217 §4): 234, then the handshake once the
    /// reply is sent.
    pub(super) fn ftp_auth(&mut self, arg: &str) {
        if self.tls.control() != ControlTls::Clear {
            return self.respond(Reply::new(503, "Already using TLS."));
        }
        match parse_auth(arg) {
            Ok(mechanism) => {
                self.respond(Reply::new(234, format!("AUTH {mechanism} successful.")));
                self.set_control_tls(ControlTls::Starting);
                self.set_wait(Wait::StartTls);
            }
            Err(reply) => self.respond(reply),
        }
    }

    /// PBSZ (RFC 4217 §8): any value is taken as 0.
    pub(super) fn ftp_pbsz(&mut self) {
        if !self.control_secure() {
            return self.respond(Reply::new(
                503,
                "PBSZ not allowed on insecure control connection.",
            ));
        }
        self.respond(Reply::new(200, "PBSZ=0 successful."));
        if self.tls.prot() == DataProt::NoPbsz {
            self.set_prot(DataProt::Clear);
        }
    }

    /// PROT C / P (RFC 4217 §9); S and E are not offered (536, RFC 2228).
    pub(super) fn ftp_prot(&mut self, arg: &str) {
        if !self.control_secure() {
            return self.respond(Reply::new(
                503,
                "PROT not allowed on insecure control connection.",
            ));
        }
        if self.tls.prot() == DataProt::NoPbsz {
            return self.respond(Reply::new(
                503,
                "You must issue the PBSZ command prior to PROT.",
            ));
        }
        match parse_prot(arg) {
            Ok(ProtLevel::Clear) => {
                self.respond(Reply::new(200, "Protection set to Clear"));
                self.set_prot(DataProt::Clear);
            }
            Ok(ProtLevel::Private) => {
                self.respond(Reply::new(200, "Protection set to Private"));
                self.set_prot(DataProt::Private);
            }
            Err(reply) => self.respond(reply),
        }
    }

    /// The FEAT lines FTPS adds.
    pub(super) fn tls_features(&self) -> Vec<String> {
        if self.shared.config.tls.is_none() {
            return Vec::new();
        }
        ["AUTH SSL", "AUTH TLS", "PBSZ", "PROT"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }
}

//! The FTPS commands (RFC 4217): AUTH, PBSZ, PROT, and the FEAT lines they add.

use crate::handlers::control::{FtpHandler, Wait};
use crate::handlers::ftps::{ControlTls, DataProt};
use crate::proto::Reply;

impl FtpHandler {
    /// AUTH TLS / SSL / TLS-C / TLS-P (RFC 4217 §4): 234, then the handshake once the
    /// reply is sent.
    pub(super) fn ftp_auth(&mut self, arg: &str) {
        let arg = arg.to_ascii_uppercase();
        if self.tls.control() != ControlTls::Clear {
            self.respond(Reply::new(503, "Already using TLS."));
        } else if matches!(arg.as_str(), "TLS" | "TLS-C" | "SSL" | "TLS-P") {
            self.respond(Reply::new(234, format!("AUTH {arg} successful.")));
            self.set_control_tls(ControlTls::Starting);
            self.set_wait(Wait::StartTls);
        } else {
            self.respond(Reply::new(
                502,
                "Unrecognized encryption type (use TLS or SSL).",
            ));
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

    /// PROT C / P (RFC 4217 §9); S and E are not offered.
    pub(super) fn ftp_prot(&mut self, arg: &str) {
        let arg = arg.to_ascii_uppercase();
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
        match arg.as_str() {
            "C" => {
                self.respond(Reply::new(200, "Protection set to Clear"));
                self.set_prot(DataProt::Clear);
            }
            "P" => {
                self.respond(Reply::new(200, "Protection set to Private"));
                self.set_prot(DataProt::Private);
            }
            "S" | "E" => self.respond(Reply::new(
                521,
                format!("PROT {arg} unsupported (use C or P)."),
            )),
            _ => self.respond(Reply::new(502, "Unrecognized PROT type (use C or P).")),
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

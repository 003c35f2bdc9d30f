//! What the server tells: FEAT (RFC 2389), HELP, SITE HELP, STAT (RFC 959 §4.1.3), MLST
//! (RFC 3659 §7), OPTS.

use ioloop::Ctx;

use super::transfers::{list_into, split_parent};
use super::Resolved;
use crate::error::fs_error_reply;
use crate::filesystems::{FileSystem, MLSX_FACTS_AVAILABLE, MLSX_FACTS_DEFAULT};
use crate::handlers::control::{DataChan, FtpHandler, Login};
use crate::handlers::Msg;
use crate::proto::{opts_reply, Reply};

impl FtpHandler {
    pub(in crate::handlers) fn enabled_facts(&self) -> Vec<String> {
        match &self.mlst_facts {
            Some(f) => f.clone(),
            None => MLSX_FACTS_DEFAULT.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    pub(super) fn ftp_opts(&mut self, arg: &str) {
        let (cmd, option) = arg.split_once(' ').unwrap_or((arg, ""));
        if cmd.eq_ignore_ascii_case("HASH") && self.shared.commands.lookup("HASH").is_some() {
            return self.opts_hash(option);
        }
        let mut facts = self.enabled_facts();
        let reply = opts_reply(arg, self.shared.charset, MLSX_FACTS_AVAILABLE, &mut facts);
        self.mlst_facts = Some(facts);
        self.respond(reply);
    }

    pub(super) fn ftp_feat(&mut self) {
        let enabled = self.enabled_facts();
        let facts: String = MLSX_FACTS_AVAILABLE
            .iter()
            .map(|f| {
                if enabled.iter().any(|e| e == f) {
                    format!("{f}*;")
                } else {
                    format!("{f};")
                }
            })
            .collect();
        let mut features = vec![
            "EPRT".to_owned(),
            "EPSV".to_owned(),
            "MDTM".to_owned(),
            "MFMT".to_owned(),
            format!("MLST {facts}"),
            "REST STREAM".to_owned(),
            "SIZE".to_owned(),
            "TVFS".to_owned(),
        ];
        if self.shared.charset.is_utf8() {
            features.push("UTF8".to_owned());
        }
        features.extend(self.tls_features());
        if self.shared.commands.lookup("HOST").is_some() {
            features.push("HOST".to_owned());
        }
        if self.shared.commands.lookup("HASH").is_some() {
            features.extend(self.hash_features());
        }
        // As proftpd's mod_site_misc advertises them, when they are on.
        for name in ["SITE SYMLINK", "SITE UTIME"] {
            if self.shared.commands.lookup(name).is_some() {
                features.push(name.to_owned());
            }
        }
        features.extend(self.shared.features.iter().cloned());
        features.sort();
        let mut lines = vec!["Features supported:".to_owned()];
        lines.extend(features.into_iter().map(|f| format!(" {f}")));
        lines.push("End FEAT.".to_owned());
        self.respond(Reply::multi(211, lines));
    }

    pub(super) fn ftp_help(&mut self, arg: &str) {
        let table = &self.shared.commands;
        let reply = if arg.is_empty() {
            table.help_listing()
        } else {
            table
                .help_for(&arg.to_ascii_uppercase())
                .unwrap_or_else(|| Reply::new(501, "Unrecognized command."))
        };
        self.respond(reply);
    }

    pub(super) fn ftp_site_help(&mut self, arg: &str) {
        let table = &self.shared.commands;
        let reply = if arg.is_empty() {
            table.site_help_listing()
        } else {
            // pyftpdlib looks the argument up as it is, so only "SITE HELP SITE CHMOD"
            // found SITE CHMOD; "SITE HELP CHMOD" works here too.
            let upper = arg.to_ascii_uppercase();
            table
                .help_for(&upper)
                .or_else(|| table.help_for(&format!("SITE {upper}")))
                .unwrap_or_else(|| Reply::new(501, "Unrecognized SITE command."))
        };
        self.respond(reply);
    }

    pub(super) fn ftp_stat_status(&mut self) {
        let local = self.local();
        let mut lines = vec![
            "FTP server status:".to_owned(),
            format!(
                " Connected to: {}:{}",
                local.ip().to_canonical(),
                local.port()
            ),
        ];
        lines.push(match &self.login {
            Login::AwaitingUser => " Waiting for username.".to_owned(),
            Login::AwaitingPass { .. } => " Waiting for password.".to_owned(),
            Login::LoggedIn { user, .. } | Login::Lent { user } => format!(" Logged in as: {user}"),
        });
        lines.push(format!(
            " TYPE: {}; STRUcture: File; MODE: Stream",
            self.transfer_type.name()
        ));
        lines.push(match &self.data {
            DataChan::None | DataChan::Active(_) => " Data connection closed.".to_owned(),
            DataChan::Passive { .. } => " Passive data channel waiting for connection.".to_owned(),
            DataChan::Connected(_) => " Data connection open:".to_owned(),
            DataChan::Transferring { info, .. } => format!(
                " Data connection open: {} in progress, for {:.3} secs",
                info.cmd,
                info.started.elapsed().as_secs_f64()
            ),
        });
        if let DataChan::Connected(_) = self.data {
            // Connected and idle: nothing has moved yet.
            lines.push(" Total bytes sent: 0".to_owned());
            lines.push(" Total bytes received: 0".to_owned());
            lines.push(" Transfer elapsed time: 0 secs".to_owned());
        }
        lines.push("End of status.".to_owned());
        self.respond(Reply::multi(211, lines));
    }

    /// STAT <path>: LIST's lines over the control connection (dot-files as for LIST).
    pub(super) fn ftp_stat_path(&mut self, cx: &mut Ctx<'_, Msg>, t: Resolved, dot_files: bool) {
        let gmt = self.shared.config.use_gmt_times;
        let parts = self.shared.config.atomic_uploads;
        let work = move |fs: &mut dyn FileSystem| {
            let mut out = Vec::new();
            list_into(fs, &t.fs, gmt, dot_files, parts, &mut out).map(|()| (t, out))
        };
        self.on_fs(cx, work, |s, _, listed| match listed {
            Ok((t, out)) => s.stat_path_reply(&t, &out),
            Err(e) => s.respond(fs_error_reply(&e)),
        });
    }

    fn stat_path_reply(&mut self, t: &Resolved, out: &[u8]) {
        let mut lines = vec![format!("Status of \"{}\":", t.ftp)];
        // As in LIST, an entry whose name the client's encoding cannot show is left out.
        let charset = self.shared.charset;
        lines.extend(
            String::from_utf8_lossy(out)
                .split("\r\n")
                .filter(|l| !l.is_empty() && charset.can_encode(l))
                .map(str::to_owned),
        );
        lines.push("End of status.".to_owned());
        self.respond(Reply::multi(213, lines));
    }

    pub(super) fn ftp_mlst(&mut self, cx: &mut Ctx<'_, Msg>, t: Resolved) {
        let facts = self.enabled_facts();
        let perms = self.authorizer().perms(self.username());
        let gmt = self.shared.config.use_gmt_times;
        let work = move |fs: &mut dyn FileSystem| {
            let facts: Vec<&str> = facts.iter().map(String::as_str).collect();
            let (dir, base) = split_parent(&t.fs);
            let mut out = Vec::new();
            fs.format_mlsx(&dir, &[base], &perms, &facts, false, gmt, &mut out)
                .map(|()| (t, out))
        };
        self.on_fs(cx, work, |s, _, described| match described {
            Ok((t, out)) => s.mlst_reply(&t, &out),
            Err(e) => s.respond(fs_error_reply(&e)),
        });
    }

    fn mlst_reply(&mut self, t: &Resolved, out: &[u8]) {
        // The entry line carries the full virtual path, not the base name.
        let line = String::from_utf8_lossy(out);
        let facts_part = line.split(' ').next().unwrap_or("");
        self.respond(Reply::multi(
            250,
            vec![
                format!("Listing \"{}\":", t.ftp),
                format!(" {facts_part} {}", t.ftp),
                "End MLST.".to_owned(),
            ],
        ));
    }
}

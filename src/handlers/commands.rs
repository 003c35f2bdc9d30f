//! The `ftp_*` bodies: one per command (RFC 959, RFC 2428, RFC 3659), with pyftpdlib's
//! reply codes and texts. The gate already checked syntax and login; this module resolves
//! and checks paths and permissions, then acts.

use std::ffi::OsString;
use std::io::{Seek, SeekFrom};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use ioloop::Ctx;

use super::control::{DataChan, FtpHandler, Login, Wait, XferInfo};
use super::dtp::{same_ip, DtpHandler, PassiveDtp};
use super::{CommandBody, CommandContext, Job, Msg, SessionCmd};
use crate::error::{fs_error_reply, strerror};
use crate::filesystems::{FileSystem, WriteMode, MLSX_FACTS_AVAILABLE, MLSX_FACTS_DEFAULT};
use crate::proto::{
    epsv_reply, mode_reply, opts_reply, parse_eprt_on, parse_epsv_on, parse_port, parse_rest,
    parse_type, pasv_reply, quote_path, stru_reply, Charset, ControlFamily, EpsvArg, Reply,
    TransferType,
};
use crate::timefmt;

/// A path argument after resolution: the virtual path the client sees and the real one.
pub(super) struct Target {
    ftp: String,
    fs: PathBuf,
}

impl FtpHandler {
    /// Runs one command that passed the gate. Returns the real path it acted on, for the
    /// command log.
    pub(super) fn run_command(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        name: &str,
        perm: Option<char>,
        arg: &str,
    ) -> Option<String> {
        // STOU checks its directory itself; STAT without a path is the status reply.
        let has_target = name != "STOU" && !(name == "STAT" && arg.is_empty());
        let target = match perm {
            Some(letter) if has_target => match self.checked_target(name, letter, arg) {
                Ok(t) => Some(t),
                Err(reply) => {
                    self.respond(reply);
                    return None;
                }
            },
            _ => None,
        };
        let logged = target.as_ref().map(|t| t.fs.display().to_string());
        if let Some(body) = self.shared.custom.get(name).cloned() {
            self.run_custom(&body, arg, target);
            return logged;
        }
        match (name, target) {
            ("USER", _) => self.ftp_user(cx, arg),
            ("PASS", _) => self.ftp_pass(cx, arg),
            ("QUIT", _) => self.ftp_quit(cx),
            ("REIN", _) => {
                self.flush_account(cx);
                self.respond(Reply::new(230, "Ready for new user."));
            }
            ("NOOP", _) => self.respond(Reply::new(200, "I successfully did nothing.")),
            ("SYST", _) => self.respond(Reply::new(215, "UNIX Type: L8")),
            ("ALLO", _) => self.respond(Reply::new(202, "No storage allocation necessary.")),
            ("FEAT", _) => self.ftp_feat(),
            ("HELP", _) => self.ftp_help(arg),
            ("SITE HELP", _) => self.ftp_site_help(arg),
            ("OPTS", _) => {
                let mut facts = self.enabled_facts();
                let reply = opts_reply(arg, MLSX_FACTS_AVAILABLE, &mut facts);
                self.mlst_facts = Some(facts);
                self.respond(reply);
            }
            ("TYPE", _) => match parse_type(arg) {
                Ok(t) => {
                    self.transfer_type = t;
                    self.respond(t.reply());
                }
                Err(reply) => self.respond(reply),
            },
            ("STRU", _) => self.respond(stru_reply(arg)),
            ("MODE", _) => self.respond(mode_reply(arg)),
            ("REST", _) => self.ftp_rest(arg),
            ("PWD" | "XPWD", _) => {
                let cwd = self.fs().map(|fs| fs.cwd().to_owned()).unwrap_or_default();
                self.respond(Reply::new(
                    257,
                    format!("\"{}\" is the current directory.", quote_path(&cwd)),
                ));
            }
            ("ABOR", _) => self.ftp_abor(cx),
            ("AUTH", _) => self.ftp_auth(arg),
            ("PBSZ", _) => self.ftp_pbsz(),
            ("PROT", _) => self.ftp_prot(arg),
            ("PASV", _) => self.ftp_pasv(cx, false),
            ("EPSV", _) => self.ftp_epsv(cx, arg),
            ("PORT", _) => self.ftp_port(cx, arg),
            ("EPRT", _) => self.ftp_eprt(cx, arg),
            ("STAT", None) => self.ftp_stat_status(),
            ("STOU", _) => self.ftp_stou(cx, arg),
            (_, Some(t)) => self.run_path_command(cx, name, arg, t),
            (_, None) => self.respond(Reply::new(
                502,
                format!("Command \"{name}\" not implemented."),
            )),
        }
        logged
    }

    fn run_custom(&mut self, body: &CommandBody, arg: &str, target: Option<Target>) {
        let shared = Arc::clone(&self.shared);
        let remote = self.remote;
        let (username, fs) = match &mut self.login {
            Login::LoggedIn { user, fs } => {
                let fs: &mut dyn FileSystem = &mut **fs;
                (user.as_str(), Some(fs))
            }
            Login::AwaitingPass { user } => (user.as_str(), None),
            Login::AwaitingUser => ("", None),
        };
        let mut ctx = CommandContext {
            username,
            remote,
            fs,
            authorizer: shared.authorizer.as_ref(),
            path: target.as_ref().map(|t| t.fs.as_path()),
            ftp_path: target.as_ref().map(|t| t.ftp.as_str()),
        };
        let reply = body(&mut ctx, arg);
        self.respond(reply);
    }

    fn run_path_command(&mut self, cx: &mut Ctx<'_, Msg>, name: &str, arg: &str, t: Target) {
        match name {
            "CWD" | "XCWD" | "CDUP" | "XCUP" => self.ftp_cwd(t),
            "MKD" | "XMKD" => self.ftp_mkd(t),
            "RMD" | "XRMD" => self.ftp_rmd(t),
            "DELE" => self.fs_op(&t, |fs, p| fs.remove(p), "File removed."),
            "RNFR" => self.ftp_rnfr(t),
            "RNTO" => self.ftp_rnto(t),
            "SIZE" => self.ftp_size(t),
            "MDTM" => self.ftp_mdtm(t),
            "MFMT" => self.ftp_mfmt(arg, t),
            "SITE CHMOD" => self.ftp_chmod(arg, t),
            "RETR" => self.ftp_retr(cx, t),
            "STOR" => self.ftp_stor(cx, t, "STOR"),
            "APPE" => self.ftp_stor(cx, t, "APPE"),
            "LIST" => self.ftp_listing(cx, "LIST", t),
            "NLST" => self.ftp_listing(cx, "NLST", t),
            "MLSD" => self.ftp_listing(cx, "MLSD", t),
            "MLST" => self.ftp_mlst(t),
            "STAT" => self.ftp_stat_path(t),
            _ => self.respond(Reply::new(
                502,
                format!("Command \"{name}\" not implemented."),
            )),
        }
    }

    pub(super) fn fs(&self) -> Option<&dyn FileSystem> {
        match &self.login {
            Login::LoggedIn { fs, .. } => Some(fs.as_ref()),
            Login::AwaitingUser | Login::AwaitingPass { .. } => None,
        }
    }

    fn fs_mut(&mut self) -> Option<&mut Box<dyn FileSystem>> {
        match &mut self.login {
            Login::LoggedIn { fs, .. } => Some(fs),
            Login::AwaitingUser | Login::AwaitingPass { .. } => None,
        }
    }

    /// Maps the argument of a perm-bearing command to a path, refuses paths outside the
    /// user's root, and checks the user's permission letter on it.
    fn checked_target(&self, name: &str, letter: char, arg: &str) -> Result<Target, Reply> {
        let Some(fs) = self.fs() else {
            return Err(Reply::new(530, "Log in with USER and PASS first."));
        };
        let path = match name {
            "CWD" | "XCWD" if arg.is_empty() => "/",
            "CDUP" | "XCUP" => "..",
            "LIST" | "NLST" | "MLSD" | "MLST" | "STAT" => {
                if name == "STAT" && arg.contains(['*', '?', '[']) {
                    return Err(Reply::new(550, "Globbing not supported."));
                }
                listing_path(name, arg)
            }
            "SITE CHMOD" | "MFMT" => match arg.split_once(' ') {
                Some((_, path)) if !path.is_empty() => path,
                _ => {
                    return Err(Reply::new(
                        501,
                        "Syntax error: command needs two arguments.",
                    ))
                }
            },
            _ => arg,
        };
        let ftp = fs.ftpnorm(path);
        let real = fs.ftp2fs(&ftp);
        if !fs.validpath(&real) {
            return Err(Reply::new(
                550,
                format!("'{ftp}' points to a path which is outside the user's root directory."),
            ));
        }
        if !self
            .shared
            .authorizer
            .has_perm(self.username(), letter, Some(&real))
        {
            return Err(Reply::new(550, "Not enough privileges."));
        }
        Ok(Target { ftp, fs: real })
    }

    fn fs_op(
        &mut self,
        t: &Target,
        op: impl FnOnce(&dyn FileSystem, &Path) -> std::io::Result<()>,
        ok: &str,
    ) {
        let Some(fs) = self.fs() else { return };
        let reply = match op(fs, &t.fs) {
            Ok(()) => Reply::new(250, ok),
            Err(e) => fs_error_reply(&e),
        };
        self.respond(reply);
    }

    // ---- login -------------------------------------------------------------------------

    fn ftp_user(&mut self, cx: &mut Ctx<'_, Msg>, arg: &str) {
        let flushed = matches!(self.login, Login::LoggedIn { .. });
        if flushed {
            self.flush_account(cx);
        }
        self.login = Login::AwaitingPass {
            user: arg.to_owned(),
        };
        if flushed {
            log::info!(
                "{} Previous account information was flushed, send password.",
                self.prefix()
            );
            self.respond_line(
                331,
                "Previous account information was flushed, send password.",
            );
        } else {
            self.respond_line(331, "Username ok, send password.");
        }
    }

    fn ftp_pass(&mut self, cx: &mut Ctx<'_, Msg>, password: &str) {
        let user = match &self.login {
            Login::AwaitingUser => return self.respond(Reply::new(503, "Login with USER first.")),
            Login::LoggedIn { .. } => {
                return self.respond(Reply::new(503, "User already authenticated."))
            }
            Login::AwaitingPass { user } => user.clone(),
        };
        let auth = Arc::clone(&self.shared.authorizer);
        if let Some(pool) = &self.shared.workers {
            // The authorizer may block: a worker asks it, the session sleeps meanwhile.
            let (lp, me) = (cx.loop_handle(), cx.me());
            let (who, password) = (user.clone(), password.to_owned());
            let queued = pool.run(move || {
                let verdict = auth
                    .validate_authentication(&who, &password)
                    .map_err(|e| e.0);
                let _ = lp.send(me, Msg::ToSession(SessionCmd::AuthResult(verdict)));
            });
            if queued {
                return self.set_wait(Wait::Authenticating);
            }
            return self.respond(Reply::new(
                421,
                "Service not available, closing control connection.",
            ));
        }
        let verdict = auth
            .validate_authentication(&user, password)
            .map_err(|e| e.0);
        self.finish_login(cx, user, verdict);
    }

    /// The rest of PASS once the password was checked: the home and filesystem, then 230,
    /// or the failed-login delay.
    pub(super) fn finish_login(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        user: String,
        verdict: Result<(), String>,
    ) {
        let auth = Arc::clone(&self.shared.authorizer);
        let verdict = verdict.and_then(|()| {
            let home = auth
                .home_dir(&user)
                .ok_or_else(|| "Authentication failed.".to_owned())?;
            auth.filesystem(&user, home).map_err(|e| {
                log::error!("{} home directory of {user:?}: {e}", self.prefix());
                "Authentication failed.".to_owned()
            })
        });
        match verdict {
            Ok(fs) => {
                let message = auth.msg_login(&user);
                self.login = Login::LoggedIn { user, fs };
                self.attempts = 0;
                self.respond_banner(230, &message);
                log::info!("{} USER '{}' logged in.", self.prefix(), self.username());
                self.shared.events.on_login(self.session());
            }
            Err(message) => {
                // Answer after a delay, on a loop timer: the session reads nothing meanwhile.
                let timer = cx.call_later(self.shared.config.auth_failed_timeout);
                self.set_wait(Wait::AuthDelay { timer, message });
            }
        }
    }

    fn ftp_quit(&mut self, cx: &mut Ctx<'_, Msg>) {
        let msg = match &self.login {
            Login::LoggedIn { user, .. } => self.shared.authorizer.msg_quit(user),
            Login::AwaitingUser | Login::AwaitingPass { .. } => "Goodbye.".to_owned(),
        };
        self.respond_banner(221, &msg);
        if matches!(self.login, Login::LoggedIn { .. }) {
            self.shared.events.on_logout(self.session());
        }
        if matches!(self.data, DataChan::Transferring { .. }) {
            // The 226/426 of the running transfer still follows; then the session ends.
            self.set_wait(Wait::Quit);
        } else {
            self.drop_data(cx);
            self.chat.close_when_done();
        }
    }

    /// USER while logged in, and REIN: back to "no user", letting a transfer finish.
    fn flush_account(&mut self, cx: &mut Ctx<'_, Msg>) {
        if !matches!(self.data, DataChan::Transferring { .. }) {
            self.drop_data(cx);
        }
        if matches!(self.login, Login::LoggedIn { .. }) {
            self.shared.events.on_logout(self.session());
        }
        self.login = Login::AwaitingUser;
        self.attempts = 0;
        self.transfer_type = TransferType::Ascii;
        self.rest = None;
        self.rename_from = None;
        self.reset_protection();
    }

    // ---- information -------------------------------------------------------------------

    fn enabled_facts(&self) -> Vec<String> {
        match &self.mlst_facts {
            Some(f) => f.clone(),
            None => MLSX_FACTS_DEFAULT.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn ftp_feat(&mut self) {
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
        if self.shared.charset == Charset::Utf8 {
            features.push("UTF8".to_owned());
        }
        features.extend(self.tls_features());
        features.extend(self.shared.features.iter().cloned());
        features.sort();
        let mut lines = vec!["Features supported:".to_owned()];
        lines.extend(features.into_iter().map(|f| format!(" {f}")));
        lines.push("End FEAT.".to_owned());
        self.respond(Reply::multi(211, lines));
    }

    fn ftp_help(&mut self, arg: &str) {
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

    fn ftp_site_help(&mut self, arg: &str) {
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

    fn ftp_stat_status(&mut self) {
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
            Login::LoggedIn { user, .. } => format!(" Logged in as: {user}"),
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

    fn ftp_stat_path(&mut self, t: Target) {
        let Some(fs) = self.fs() else { return };
        let mut out = Vec::new();
        if let Err(e) = list_into(fs, &t.fs, self.shared.config.use_gmt_times, &mut out) {
            return self.respond(fs_error_reply(&e));
        }
        let mut lines = vec![format!("Status of \"{}\":", t.ftp)];
        lines.extend(
            String::from_utf8_lossy(&out)
                .split("\r\n")
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
        lines.push("End of status.".to_owned());
        self.respond(Reply::multi(213, lines));
    }

    // ---- directories and files ---------------------------------------------------------

    fn ftp_cwd(&mut self, t: Target) {
        let Some(fs) = self.fs_mut() else { return };
        let reply = match fs.chdir(&t.fs) {
            Ok(()) => Reply::new(250, format!("\"{}\" is the current directory.", fs.cwd())),
            Err(e) => fs_error_reply(&e),
        };
        self.respond(reply);
    }

    fn ftp_mkd(&mut self, t: Target) {
        let Some(fs) = self.fs() else { return };
        let reply = match fs.mkdir(&t.fs) {
            Ok(()) => Reply::new(
                257,
                format!("\"{}\" directory created.", quote_path(&t.ftp)),
            ),
            Err(e) => fs_error_reply(&e),
        };
        self.respond(reply);
    }

    fn ftp_rmd(&mut self, t: Target) {
        let Some(fs) = self.fs() else { return };
        if t.fs == fs.root() {
            return self.respond(Reply::new(550, "Can't remove root directory."));
        }
        self.fs_op(&t, |fs, p| fs.rmdir(p), "Directory removed.");
    }

    fn ftp_rnfr(&mut self, t: Target) {
        let Some(fs) = self.fs() else { return };
        if fs.lstat(&t.fs).is_err() {
            return self.respond(Reply::new(550, "No such file or directory."));
        }
        if t.fs == fs.root() {
            return self.respond(Reply::new(550, "Can't rename home directory."));
        }
        self.rename_from = Some(t.fs);
        self.respond(Reply::new(350, "Ready for destination name."));
    }

    fn ftp_rnto(&mut self, t: Target) {
        let Some(src) = self.rename_from.take() else {
            return self.respond(Reply::new(503, "Bad sequence of commands: use RNFR first."));
        };
        self.fs_op(&t, |fs, dst| fs.rename(&src, dst), "Renaming ok.");
    }

    fn ftp_size(&mut self, t: Target) {
        if self.transfer_type == TransferType::Ascii {
            return self.respond(Reply::new(550, "SIZE not allowed in ASCII mode."));
        }
        let Some(fs) = self.fs() else { return };
        let reply = match fs.stat(&t.fs) {
            Ok(m) if m.is_file() => Reply::new(213, m.size.to_string()),
            Ok(_) | Err(_) => Reply::new(550, format!("{} is not retrievable.", t.ftp)),
        };
        self.respond(reply);
    }

    fn ftp_mdtm(&mut self, t: Target) {
        let Some(fs) = self.fs() else { return };
        let gmt = self.shared.config.use_gmt_times;
        let reply = match fs.stat(&t.fs) {
            Ok(m) if m.is_file() => Reply::new(213, timefmt::mdtm(m.mtime, gmt)),
            Ok(_) | Err(_) => Reply::new(550, format!("{} is not retrievable.", t.ftp)),
        };
        self.respond(reply);
    }

    fn ftp_mfmt(&mut self, arg: &str, t: Target) {
        let timeval = arg.split(' ').next().unwrap_or("");
        let Some(when) = timefmt::parse_mfmt(timeval) else {
            return self.respond(Reply::new(
                550,
                "Invalid time format; expected: YYYYMMDDHHMMSS.",
            ));
        };
        let Some(fs) = self.fs() else { return };
        let gmt = self.shared.config.use_gmt_times;
        let reply = match fs.stat(&t.fs) {
            Ok(m) if m.is_file() => match fs.set_mtime(&t.fs, when) {
                Ok(()) => {
                    // Echo what the filesystem stored (it may clamp), as MDTM will show.
                    let stored = fs.stat(&t.fs).map(|m| m.mtime).unwrap_or(when);
                    Reply::new(
                        213,
                        format!("Modify={}; {}.", timefmt::mdtm(stored, gmt), t.ftp),
                    )
                }
                Err(e) => fs_error_reply(&e),
            },
            Ok(_) | Err(_) => Reply::new(550, format!("{} is not retrievable.", t.ftp)),
        };
        self.respond(reply);
    }

    fn ftp_chmod(&mut self, arg: &str, t: Target) {
        let mode = arg.split(' ').next().unwrap_or("");
        let valid =
            (3..=4).contains(&mode.len()) && mode.bytes().all(|b| (b'0'..=b'7').contains(&b));
        let Some(mode) = u32::from_str_radix(mode, 8).ok().filter(|_| valid) else {
            return self.respond(Reply::new(501, "Invalid SITE CHMOD format."));
        };
        let Some(fs) = self.fs() else { return };
        let reply = match fs.chmod(&t.fs, mode) {
            Ok(()) => Reply::new(200, "SITE CHMOD successful."),
            Err(e) => fs_error_reply(&e),
        };
        self.respond(reply);
    }

    fn ftp_rest(&mut self, arg: &str) {
        if self.transfer_type == TransferType::Ascii {
            return self.respond(Reply::new(
                501,
                "Resuming transfers not allowed in ASCII mode.",
            ));
        }
        match parse_rest(arg) {
            Ok(offset) => {
                self.rest = (offset > 0).then_some(offset);
                self.respond(Reply::new(350, format!("Restarting at position {offset}.")));
            }
            Err(reply) => self.respond(reply),
        }
    }

    // ---- transfers ---------------------------------------------------------------------

    fn ftp_retr(&mut self, cx: &mut Ctx<'_, Msg>, t: Target) {
        let rest = self.rest.take();
        let Some(fs) = self.fs() else { return };
        let mut file = match fs.open_read(&t.fs) {
            Ok(f) => f,
            Err(e) => return self.respond(fs_error_reply(&e)),
        };
        if let Some(offset) = rest {
            let size = file.size().unwrap_or(0);
            if offset > size {
                return self.respond(Reply::new(
                    554,
                    format!("REST position ({offset}) > file size ({size})"),
                ));
            }
            if let Err(e) = file.seek(SeekFrom::Start(offset)) {
                return self.respond(fs_error_reply(&e));
            }
        }
        let ascii = self.transfer_type == TransferType::Ascii;
        let job = Job::SendFile {
            file,
            ascii,
            sendfile: self.shared.config.use_sendfile,
        };
        self.start_transfer(cx, job, xfer("RETR", Some(t.fs)), None);
    }

    fn ftp_stor(&mut self, cx: &mut Ctx<'_, Msg>, t: Target, cmd: &'static str) {
        if cmd == "APPE" && self.rest.is_some() {
            // The REST stays pending, as in pyftpdlib.
            return self.respond(Reply::new(450, "Can't APPE while REST request is pending."));
        }
        let rest = self.rest.take();
        if let Some(reply) = self.no_data_channel() {
            return self.respond(reply); // before the file is opened: nothing is truncated
        }
        let Some(fs) = self.fs() else { return };
        let mode = match (cmd, rest) {
            ("APPE", _) => WriteMode::Append,
            (_, Some(offset)) => {
                match fs.stat(&t.fs) {
                    Ok(m) if offset > m.size => {
                        return self.respond(Reply::new(
                            554,
                            format!("REST position ({offset}) > file size ({})", m.size),
                        ))
                    }
                    Ok(_) => {}
                    Err(e) => return self.respond(fs_error_reply(&e)),
                }
                WriteMode::At(offset)
            }
            _ => WriteMode::Truncate,
        };
        let file = match fs.open_write(&t.fs, mode) {
            Ok(f) => f,
            Err(e) => return self.respond(fs_error_reply(&e)),
        };
        let ascii = self.transfer_type == TransferType::Ascii;
        self.start_transfer(
            cx,
            Job::Receive {
                file,
                ascii,
                splice: self.shared.config.use_sendfile,
            },
            xfer(cmd, Some(t.fs)),
            None,
        );
    }

    fn ftp_stou(&mut self, cx: &mut Ctx<'_, Msg>, arg: &str) {
        if self.rest.is_some() {
            return self.respond(Reply::new(450, "Can't STOU while REST request is pending."));
        }
        let Some(fs) = self.fs() else { return };
        // The directory is checked like any other path (pyftpdlib let STOU escape the root).
        let (dir_ftp, prefix) = if arg.is_empty() {
            (fs.cwd().to_owned(), "ftpd.".to_owned())
        } else {
            let ftp = fs.ftpnorm(arg);
            let (dir, base) = ftp.rsplit_once('/').unwrap_or(("", ftp.as_str()));
            let dir = if dir.is_empty() { "/" } else { dir };
            (dir.to_owned(), format!("{base}."))
        };
        let dir = fs.ftp2fs(&dir_ftp);
        if !fs.validpath(&dir) {
            return self.respond(Reply::new(
                550,
                format!("'{dir_ftp}' points to a path which is outside the user's root directory."),
            ));
        }
        if !self
            .shared
            .authorizer
            .has_perm(self.username(), 'w', Some(&dir))
        {
            return self.respond(Reply::new(550, "Not enough privileges."));
        }
        // After the checks that refuse STOU anyway, before a file is created.
        if let Some(reply) = self.no_data_channel() {
            return self.respond(reply);
        }
        let Some(fs) = self.fs() else { return };
        let (path, file) = match fs.create_unique(&dir, &prefix) {
            Ok(created) => created,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return self.respond(Reply::new(450, "No usable unique file name found."))
            }
            Err(e) => return self.respond(Reply::new(450, format!("{}.", strerror(&e)))),
        };
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ascii = self.transfer_type == TransferType::Ascii;
        self.start_transfer(
            cx,
            Job::Receive {
                file,
                ascii,
                splice: self.shared.config.use_sendfile,
            },
            xfer("STOU", Some(path)),
            Some(format!("FILE: {base}")),
        );
    }

    fn ftp_listing(&mut self, cx: &mut Ctx<'_, Msg>, name: &'static str, t: Target) {
        let Some(fs) = self.fs() else { return };
        let gmt = self.shared.config.use_gmt_times;
        let mut out = Vec::new();
        let result = match name {
            "LIST" => list_into(fs, &t.fs, gmt, &mut out),
            "NLST" => nlst_into(fs, &t.fs, &mut out),
            _ => match fs.stat(&t.fs) {
                Ok(m) if m.is_dir() => {
                    let facts = self.enabled_facts();
                    let facts: Vec<&str> = facts.iter().map(String::as_str).collect();
                    let perms = self.shared.authorizer.perms(self.username());
                    fs.listdir(&t.fs).and_then(|names| {
                        fs.format_mlsx(&t.fs, &names, &perms, &facts, true, gmt, &mut out)
                    })
                }
                Ok(_) | Err(_) => return self.respond(Reply::new(501, "No such directory.")),
            },
        };
        match result {
            Ok(()) => {
                let out = match self.shared.charset {
                    Charset::Utf8 => out,
                    charset => {
                        let mut wire = Vec::with_capacity(out.len());
                        charset.encode_into(&out, &mut wire);
                        wire
                    }
                };
                self.start_transfer(cx, Job::SendBytes(out), xfer(name, None), None)
            }
            Err(e) => self.respond(fs_error_reply(&e)),
        }
    }

    fn ftp_mlst(&mut self, t: Target) {
        let Some(fs) = self.fs() else { return };
        let facts = self.enabled_facts();
        let facts: Vec<&str> = facts.iter().map(String::as_str).collect();
        let perms = self.shared.authorizer.perms(self.username());
        let gmt = self.shared.config.use_gmt_times;
        let (dir, base) = split_parent(&t.fs);
        let mut out = Vec::new();
        if let Err(e) = fs.format_mlsx(&dir, &[base], &perms, &facts, false, gmt, &mut out) {
            return self.respond(fs_error_reply(&e));
        }
        // The entry line carries the full virtual path, not the base name.
        let line = String::from_utf8_lossy(&out);
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

    fn ftp_abor(&mut self, cx: &mut Ctx<'_, Msg>) {
        match &self.data {
            DataChan::None => self.respond(Reply::new(225, "No transfer to abort.")),
            DataChan::Transferring { channel, .. } => {
                let channel = *channel;
                cx.send(channel, Msg::ToData(super::DataCmd::Abort));
                self.set_wait(Wait::Abort);
            }
            DataChan::Passive { .. } | DataChan::Active(_) | DataChan::Connected(_) => {
                self.drop_data(cx);
                self.respond(Reply::new(
                    225,
                    "ABOR command successful; data channel closed.",
                ));
            }
        }
    }

    // ---- data connection set-up --------------------------------------------------------

    fn ftp_pasv(&mut self, cx: &mut Ctx<'_, Msg>, extended: bool) {
        if !extended && self.epsv_all {
            return self.respond(Reply::new(501, "PASV not allowed after EPSV ALL."));
        }
        let announced_ip = if extended {
            None
        } else {
            match self.pasv_ipv4() {
                Some(ip) => Some(ip),
                None => {
                    return self.respond(Reply::new(
                        425,
                        "Can't use PASV on an IPv6 connection; use EPSV.",
                    ))
                }
            }
        };
        self.drop_data(cx);
        let listener = match self.bind_passive() {
            Ok(l) => l,
            Err(e) => {
                log::warn!("{} can't open a passive listener: {e}", self.prefix());
                return self.respond(Reply::new(425, "Can't open data connection."));
            }
        };
        let port = match listener.local_addr() {
            Ok(a) => a.port(),
            Err(e) => return self.respond(fs_error_reply(&e)),
        };
        let dtp = PassiveDtp::new(
            ioloop::mio::net::TcpListener::from_std(listener),
            cx.me(),
            self.remote.ip(),
            Arc::clone(&self.shared),
            self.data_tls(),
        );
        match cx.spawn(Box::new(dtp)) {
            Ok(h) => {
                self.data = DataChan::Passive {
                    listener: h,
                    queued: None,
                }
            }
            Err(e) => {
                log::warn!("{} can't register a passive listener: {e}", self.prefix());
                return self.respond(Reply::new(425, "Can't open data connection."));
            }
        }
        match announced_ip {
            Some(ip) => self.respond(pasv_reply(ip, port)),
            None => self.respond(epsv_reply(port)),
        }
    }

    /// The IPv4 address to announce in a 227 reply: the masquerade address for this local
    /// address, else the global one, else the local address itself.
    fn pasv_ipv4(&self) -> Option<std::net::Ipv4Addr> {
        let local = self.local().ip().to_canonical();
        let cfg = &self.shared.config;
        let ip = cfg
            .masquerade_address_map
            .get(&local)
            .copied()
            .or(cfg.masquerade_address)
            .unwrap_or(local);
        match ip.to_canonical() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        }
    }

    /// Listens on the control connection's local address, on a port of the configured
    /// range when there is one (random order, first that binds), else any port.
    fn bind_passive(&self) -> std::io::Result<std::net::TcpListener> {
        let ip = self.local().ip();
        if let Some(range) = &self.shared.config.passive_ports {
            let ports: Vec<u16> = range.clone().collect();
            let n = ports.len();
            if n > 0 {
                let start = random_index(n);
                for i in 0..n {
                    let port = ports[(start + i) % n];
                    if let Ok(l) = crate::net::listen(SocketAddr::new(ip, port), 1) {
                        return Ok(l);
                    }
                }
            }
            log::warn!(
                "Can't find a valid passive port in the configured range. \
                 A random kernel-assigned port will be used."
            );
        }
        crate::net::listen(SocketAddr::new(ip, 0), 1)
    }

    fn ftp_epsv(&mut self, cx: &mut Ctx<'_, Msg>, arg: &str) {
        let arg = (!arg.is_empty()).then_some(arg);
        match parse_epsv_on(arg, ControlFamily::of(self.local())) {
            Ok(EpsvArg::All) => {
                self.epsv_all = true;
                self.respond(Reply::new(
                    200,
                    "Other commands other than EPSV are now disabled.",
                ));
            }
            Ok(_) => self.ftp_pasv(cx, true),
            Err(reply) => self.respond(reply),
        }
    }

    fn ftp_port(&mut self, cx: &mut Ctx<'_, Msg>, arg: &str) {
        if self.epsv_all {
            return self.respond(Reply::new(501, "PORT not allowed after EPSV ALL."));
        }
        match parse_port(arg) {
            Ok(addr) => self.connect_active(cx, SocketAddr::V4(addr)),
            Err(reply) => self.respond(reply),
        }
    }

    fn ftp_eprt(&mut self, cx: &mut Ctx<'_, Msg>, arg: &str) {
        if self.epsv_all {
            return self.respond(Reply::new(501, "EPRT not allowed after EPSV ALL."));
        }
        match parse_eprt_on(arg, ControlFamily::of(self.local())) {
            Ok(addr) => self.connect_active(cx, addr),
            Err(reply) => self.respond(reply),
        }
    }

    /// PORT / EPRT: RFC 2577 checks, then a connect from the control's local address. The
    /// 200 reply waits for the connect (input is paused meanwhile).
    fn connect_active(&mut self, cx: &mut Ctx<'_, Msg>, addr: SocketAddr) {
        let cfg = &self.shared.config;
        if !cfg.permit_foreign_addresses && !same_ip(addr.ip(), self.remote.ip()) {
            log::warn!(
                "{} Rejected data connection to foreign address {}:{}.",
                self.prefix(),
                addr.ip(),
                addr.port()
            );
            return self.respond(Reply::new(
                501,
                format!(
                    "Rejected data connection to foreign address {}:{}.",
                    addr.ip(),
                    addr.port()
                ),
            ));
        }
        if !cfg.permit_privileged_ports && addr.port() < 1024 {
            log::warn!(
                "{} PORT against the privileged port \"{}\" refused.",
                self.prefix(),
                addr.port()
            );
            return self.respond(Reply::new(
                501,
                format!(
                    "PORT against the privileged port \"{}\" refused.",
                    addr.port()
                ),
            ));
        }
        self.drop_data(cx);
        // Connect from the control connection's local address, in the target's family.
        let local = self.local().ip().to_canonical();
        let target = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        let bind_ip = match (local, target.ip()) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => local,
            _ => return self.respond(Reply::new(522, "Network protocol not supported (use 1|2).")),
        };
        let data_tls = self.data_tls();
        let started =
            DtpHandler::connect(target, bind_ip, cx.me(), Arc::clone(&self.shared), data_tls)
                .and_then(|dtp| cx.spawn(Box::new(dtp)));
        match started {
            Ok(h) => {
                self.data = DataChan::Active(h);
                self.set_wait(Wait::ActiveConnect);
            }
            Err(e) => {
                log::debug!("{} connect to {target} failed: {e}", self.prefix());
                self.respond(Reply::new(425, "Can't connect to specified address."));
            }
        }
    }
}

impl FtpHandler {
    /// The 425 reply when a transfer cannot start now (see
    /// [`start_transfer`](FtpHandler::start_transfer)); checked before an upload opens
    /// its file, so a refused STOR never truncates or creates anything.
    pub(super) fn no_data_channel(&self) -> Option<Reply> {
        match self.data {
            DataChan::Passive { .. } | DataChan::Connected(_) => None,
            DataChan::None | DataChan::Active(_) => Some(
                self.tls_data_refusal()
                    .unwrap_or_else(|| Reply::new(425, "Use PORT or PASV first.")),
            ),
            DataChan::Transferring { .. } => {
                Some(Reply::new(425, "A transfer is already in progress."))
            }
        }
    }
}

fn xfer(cmd: &'static str, path: Option<PathBuf>) -> XferInfo {
    XferInfo {
        cmd,
        path,
        started: Instant::now(),
    }
}

/// The path part of a listing command's argument: LIST flags such as `-la` are skipped
/// (pyftpdlib only ignored a lone flag word; `LIST -a /path` works here). Other commands
/// take the argument as a path, as in pyftpdlib.
fn listing_path<'a>(name: &str, arg: &'a str) -> &'a str {
    if name == "LIST" {
        let mut rest = arg;
        while let Some(stripped) = rest.strip_prefix('-') {
            let flags_end = stripped.find(' ').unwrap_or(stripped.len());
            if !stripped[..flags_end]
                .chars()
                .all(|c| c.is_ascii_alphabetic())
            {
                break;
            }
            rest = stripped[flags_end..].trim_start_matches(' ');
        }
        return rest;
    }
    arg
}

/// LIST output for a directory (its entries, sorted) or a single file.
fn list_into(
    fs: &dyn FileSystem,
    path: &Path,
    gmt: bool,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    let now = SystemTime::now();
    let meta = fs.stat(path).or_else(|_| fs.lstat(path))?;
    if meta.is_dir() {
        let mut names = fs.listdir(path)?;
        names.sort();
        fs.format_list(path, &names, gmt, now, out);
    } else {
        let (dir, base) = split_parent(path);
        fs.format_list(&dir, &[base], gmt, now, out);
    }
    Ok(())
}

/// NLST output: bare names, sorted; a file lists itself.
fn nlst_into(fs: &dyn FileSystem, path: &Path, out: &mut Vec<u8>) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let meta = fs.stat(path)?;
    let names = if meta.is_dir() {
        let mut names = fs.listdir(path)?;
        names.sort();
        names
    } else {
        vec![split_parent(path).1]
    };
    for n in names {
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    Ok(())
}

fn split_parent(path: &Path) -> (PathBuf, OsString) {
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let base = path
        .file_name()
        .map(OsString::from)
        .unwrap_or_else(|| OsString::from("."));
    (dir, base)
}

/// A random index below `n`, from the standard library's per-process random hash keys.
fn random_index(n: usize) -> usize {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() as usize) % n.max(1)
}

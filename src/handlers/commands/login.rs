//! Logging in and out: USER, PASS (the password checked here or by a worker thread),
//! QUIT, REIN (RFC 959 §4.1.1).

use std::sync::Arc;

use ioloop::Ctx;

use crate::authorizers::CertificateLogin;
use crate::handlers::control::{DataChan, FtpHandler, Login, Wait};
use crate::handlers::{Msg, SessionCmd};
use crate::metrics::Counter;
use crate::proto::{Pending, Reply, TransferType};

impl FtpHandler {
    pub(super) fn ftp_user(&mut self, cx: &mut Ctx<'_, Msg>, arg: &str) {
        let flushed = matches!(self.login, Login::LoggedIn { .. });
        if flushed {
            self.flush_account(cx);
        }
        self.login = Login::AwaitingPass {
            user: arg.to_owned(),
        };
        // Mutual TLS: the verified certificate may be enough, or not do at all.
        let by_certificate = self
            .client_cert
            .as_deref()
            .map(|cert| self.authorizer().validate_certificate(arg, cert));
        match by_certificate {
            None | Some(CertificateLogin::Password) => {}
            Some(CertificateLogin::LoggedIn) => {
                log::info!(
                    "{} USER '{arg}' authorized by its certificate.",
                    self.prefix()
                );
                return self.complete_login(cx, arg.to_owned(), Ok(()), 232);
            }
            Some(CertificateLogin::Refused(message)) => {
                return self.complete_login(cx, arg.to_owned(), Err(message), 230);
            }
        }
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

    pub(super) fn ftp_pass(&mut self, cx: &mut Ctx<'_, Msg>, password: &str) {
        let user = match &self.login {
            Login::AwaitingUser => return self.respond(Reply::new(503, "Login with USER first.")),
            Login::LoggedIn { .. } | Login::Lent { .. } => {
                return self.respond(Reply::new(503, "User already authenticated."))
            }
            Login::AwaitingPass { user } => user.clone(),
        };
        let auth = Arc::clone(self.authorizer());
        if let Some(pool) = &self.shared.workers {
            // The authorizer may block: a worker asks it, the session sleeps meanwhile.
            let (lp, me) = (cx.loop_handle(), cx.me());
            let (who, password, remote) = (user.clone(), password.to_owned(), self.remote);
            let queued = pool.run(move || {
                let verdict = auth
                    .validate_authentication_from(&who, &password, remote)
                    .map_err(|e| e.0);
                if verdict.is_ok() {
                    // A home to walk for a quota is walked here, off the loop.
                    if let Some(home) = auth.home_dir(&who) {
                        crate::quotas::prime(&who, &home, auth.quota(&who), || {
                            auth.filesystem(&who, home.clone()).ok()
                        });
                    }
                }
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
        // The client's address: the one the PROXY header carried, when there was one.
        let verdict = auth
            .validate_authentication_from(&user, password, self.remote)
            .map_err(|e| e.0);
        self.finish_login(cx, user, verdict);
    }

    /// The rest of PASS once the password was checked: the home and filesystem, then 230,
    /// or the failed-login delay.
    pub(in crate::handlers) fn finish_login(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        user: String,
        verdict: Result<(), String>,
    ) {
        self.complete_login(cx, user, verdict, 230);
    }

    /// The reply, log line, count and callback of a login.
    fn logged_in(&mut self, code: u16, message: &str) {
        self.respond_banner(code, message);
        log::info!(
            session:% = self.tag, remote:% = self.remote, user = self.username(),
            event = "login";
            "{} USER '{}' logged in.", self.prefix(), self.username()
        );
        self.shared.count(Counter::LoginsOk, 1);
        self.shared.events.on_login(self.session());
    }

    /// [`finish_login`](Self::finish_login) answering `code` on success: 230, or 232
    /// for a login by certificate (RFC 2228).
    fn complete_login(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        user: String,
        verdict: Result<(), String>,
        code: u16,
    ) {
        let auth = Arc::clone(self.authorizer());
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
                // Usage is known from the login on: walked here the first time (on a
                // filesystem thread for a filesystem that blocks, the reply after it).
                if self.fs_blocks() {
                    return self.quota_walk_off_loop(cx, false, move |s, _, _| {
                        s.logged_in(code, &message);
                    });
                }
                let _ = self.quota_usage(false);
                self.logged_in(code, &message);
            }
            Err(message) => {
                // Answer after a delay, on a loop timer: the session reads nothing meanwhile.
                let timer = cx.call_later(self.shared.config.auth_failed_timeout);
                self.set_wait(Wait::AuthDelay { timer, message });
            }
        }
    }

    /// HOST (RFC 7151): picks a virtual host before USER; `220` with its banner, `504`
    /// for a name the server does not serve, `503` once USER was sent.
    pub(super) fn ftp_host(&mut self, arg: &str) {
        if !matches!(self.login, Login::AwaitingUser) {
            return self.respond(Reply::new(
                503,
                "Bad sequence of commands: HOST must come before USER.",
            ));
        }
        let Some(host) = self.shared.hosts.get(arg).cloned() else {
            return self.respond(Reply::new(504, format!("Unknown host {}.", arg.trim())));
        };
        log::info!("{} HOST {} accepted.", self.prefix(), host.name());
        let banner = host.banner.clone();
        self.host = Some(host);
        self.respond_banner(220, banner.as_deref().unwrap_or("Host accepted."));
    }

    /// The virtual host named in the TLS handshake (SNI), taken when the control
    /// connection's handshake ends, unless HOST chose one or a user is given already.
    pub(in crate::handlers) fn host_from_sni(&mut self) {
        if self.host.is_some() || !matches!(self.login, Login::AwaitingUser) {
            return;
        }
        let host = self
            .chat
            .stream()
            .server_name()
            .and_then(|name| self.shared.hosts.get(name))
            .cloned();
        if let Some(host) = host {
            log::debug!("{} virtual host {} (TLS SNI).", self.prefix(), host.name());
            self.host = Some(host);
        }
    }

    /// REIN: 220, the reply RFC 959 §5.4 lists for it ("service ready for new user";
    /// pyftpdlib sends 230, which means "logged in").
    pub(super) fn ftp_rein(&mut self, cx: &mut Ctx<'_, Msg>) {
        self.flush_account(cx);
        // Back to the site the connection was made for: the SNI name's, else none.
        self.host = None;
        self.host_from_sni();
        self.respond(Reply::new(220, "Ready for new user."));
    }

    /// QUIT: 221 and the end of the session. During a transfer, RFC 959 §4.1.1 keeps the
    /// connection open for the transfer's result and closes it afterwards: the 226 / 426
    /// comes first, then the 221 (pyftpdlib sends the 221 at once and the transfer's
    /// reply after it, so a client reading one reply per command takes the 221 as the
    /// transfer's result).
    pub(super) fn ftp_quit(&mut self, cx: &mut Ctx<'_, Msg>) {
        let msg = match &self.login {
            Login::LoggedIn { user, .. } | Login::Lent { user } => self.authorizer().msg_quit(user),
            Login::AwaitingUser | Login::AwaitingPass { .. } => "Goodbye.".to_owned(),
        };
        if matches!(self.login, Login::LoggedIn { .. }) {
            self.shared.events.on_logout(self.session());
        }
        if matches!(self.data, DataChan::Transferring { .. }) {
            // The session reads nothing more; the 221 goes out when the transfer ends.
            self.set_wait(Wait::Quit {
                farewell: Some(msg),
            });
        } else {
            self.respond_banner(221, &msg);
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
        self.pending = Pending::Nothing;
        self.reset_protection();
    }
}

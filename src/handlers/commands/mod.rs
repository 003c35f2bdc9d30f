//! Running a command that came in on the control channel: the gate, the resolver, and
//! the one `match` on [`Verb`] that calls the command's body. The bodies live in files
//! by theme (login, navigation, files, transfers, the data connection, information,
//! FTPS), none of which looks at a command's name.

mod checksums;
mod data_connection;
mod files;
mod ftps;
mod information;
mod login;
mod navigation;
mod quota;

pub(super) use quota::settle_quota;
mod site_misc;
pub(crate) mod transfers;

use std::path::PathBuf;
use std::sync::Arc;

use ioloop::Ctx;

use self::transfers::Listing;
use super::control::{CommandLog, FtpHandler, LastReply, Login};
use super::digest::HashAlgo;
use super::{atomic, CommandContext, Msg};
use crate::events::CommandVerdict;
use crate::filesystems::FileSystem;
use crate::proto::gate::gate_parts;
use crate::proto::parse::ParsedLine;
use crate::proto::{
    split_ls_options, split_offsets, split_symlink, split_utime, Action, ArgRule, CommandSpec,
    Reply, SessionGate, Verb,
};

/// A command's path argument after the resolver: inside the user's root, and the user
/// holds the command's permission letter on it.
pub(super) struct Resolved {
    /// The virtual path, as the client sees it.
    pub(super) ftp: String,
    /// The real path.
    pub(super) fs: PathBuf,
}

/// What a command acts on, as its [`ArgRule`] says.
pub(super) enum Target {
    /// No path (the command has none, or `STAT` without an argument).
    None,
    /// A path.
    Path(Resolved),
    /// `STOU`: the directory that will hold the new file, and the file name's prefix.
    Unique { dir: Resolved, prefix: String },
    /// `SITE SYMLINK`: the path the link will name (inside the root, no right checked
    /// yet) and the link's path (checked for the command's letter).
    Link { target: Resolved, link: Resolved },
}

impl FtpHandler {
    /// Runs one parsed command line: the gate, the resolver, the body, the command log.
    /// `clean` is false when some of the line's bytes could not be decoded.
    pub(super) fn execute(&mut self, cx: &mut Ctx<'_, Msg>, req: &ParsedLine<'_>, clean: bool) {
        let shared = Arc::clone(&self.shared);
        match shared.events.on_command(self.session(), &req.cmd) {
            CommandVerdict::Run => {}
            CommandVerdict::Refuse(reply) => return self.respond(reply),
            CommandVerdict::Close(reply) => return self.respond_and_close(reply),
        }
        let session = self.gate_view();
        let spec = match gate_parts(
            &shared.commands,
            &req.cmd,
            req.arg,
            session,
            &mut self.pending,
        ) {
            Ok(spec) => spec,
            Err(reply) => return self.respond(reply),
        };
        let arg = req.arg.unwrap_or("");
        // Everything the command does to the filesystem happens as the logged-in user
        // (UnixAuthorizer); the guard switches back when this function returns.
        let _as_user = match self.impersonate() {
            Ok(guard) => guard,
            Err(reply) => return self.respond_and_close(reply),
        };
        self.last_reply = LastReply::Awaiting;
        let target = self.resolve(spec, arg, clean);
        // Only the commands that are logged need the path as text: no allocation for the
        // others (RETR, STOR, LIST ...).
        let logged_path = match &target {
            Ok(Target::Path(t) | Target::Unique { dir: t, .. }) if spec.logged => {
                Some(t.fs.display().to_string())
            }
            Ok(Target::Link { target, link }) if spec.logged => {
                Some(format!("{} -> {}", link.fs.display(), target.fs.display()))
            }
            Ok(Target::Path(_) | Target::Unique { .. } | Target::Link { .. } | Target::None)
            | Err(_) => None,
        };
        match target {
            Ok(target) => self.dispatch(cx, spec, arg, target),
            Err(reply) => self.respond(reply),
        }
        let last_reply = std::mem::replace(&mut self.last_reply, LastReply::Idle);
        if !spec.logged {
            return;
        }
        if matches!(last_reply, LastReply::Awaiting) {
            // A filesystem that blocks has the command's step: it replies, and is logged,
            // when the filesystem is back.
            let log = match logged_path {
                Some(what) => CommandLog {
                    cmd: spec.name.to_string(),
                    what,
                    is_path: true,
                },
                None => CommandLog {
                    cmd: spec.name.to_string(),
                    what: arg.to_owned(),
                    is_path: false,
                },
            };
            self.log_when_returned(log);
            return;
        }
        match &logged_path {
            Some(path) => self.log_command(&spec.name, path, true, &last_reply),
            None => self.log_command(&spec.name, arg, false, &last_reply),
        }
    }

    /// What the gate needs to know of this session.
    fn gate_view(&self) -> SessionGate {
        let (control_tls_missing, data_tls_missing) = self.tls_missing();
        SessionGate {
            logged_in: matches!(self.login, Login::LoggedIn { .. }),
            control_tls_missing,
            data_tls_missing,
        }
    }

    /// Calls the command's body.
    fn dispatch(&mut self, cx: &mut Ctx<'_, Msg>, spec: &CommandSpec, arg: &str, t: Target) {
        let verb = match spec.action {
            Action::Builtin(verb) => verb,
            Action::Custom(index) => return self.run_custom(index, arg, t),
            Action::Unimplemented => {
                // The gate answers these; a table changed under it still gets the 502.
                return self.respond(Reply::new(
                    502,
                    format!("Command \"{}\" not implemented.", spec.name),
                ));
            }
        };
        match verb {
            // login
            Verb::User => self.ftp_user(cx, arg),
            Verb::Pass => self.ftp_pass(cx, arg),
            Verb::Quit => self.ftp_quit(cx),
            Verb::Rein => self.ftp_rein(cx),
            // navigation
            Verb::Cwd => self.with_path(t, |s, t| s.ftp_cwd(cx, t)),
            Verb::Pwd => self.ftp_pwd(),
            Verb::Mkd => self.with_path(t, |s, t| s.ftp_mkd(cx, t)),
            Verb::Rmd => self.with_path(t, |s, t| s.ftp_rmd(cx, t)),
            // files
            Verb::Dele => self.with_path(t, |s, t| s.ftp_dele(cx, t)),
            Verb::Rnfr => self.with_path(t, |s, t| s.ftp_rnfr(cx, t)),
            Verb::Rnto => self.with_path(t, |s, t| s.ftp_rnto(cx, t)),
            Verb::Size => self.with_path(t, |s, t| s.ftp_size(cx, t)),
            Verb::Mdtm => self.with_path(t, |s, t| s.ftp_mdtm(cx, t)),
            Verb::Mfmt => self.with_path(t, |s, t| s.ftp_mfmt(cx, arg, t)),
            Verb::SiteChmod => self.with_path(t, |s, t| s.ftp_chmod(cx, arg, t)),
            Verb::SiteQuota => self.site_quota(cx, arg),
            Verb::SiteUtime => self.with_path(t, |s, t| s.ftp_site_utime(cx, arg, t)),
            Verb::SiteSymlink => match t {
                Target::Link { target, link } => self.ftp_site_symlink(cx, target, link),
                Target::None | Target::Path(_) | Target::Unique { .. } => self.respond(no_path()),
            },
            // transfers
            Verb::Retr => self.with_path(t, |s, t| s.ftp_retr(cx, t)),
            Verb::Stor => self.with_path(t, |s, t| s.ftp_stor(cx, t, false)),
            Verb::Appe => self.with_path(t, |s, t| s.ftp_stor(cx, t, true)),
            Verb::Stou => match t {
                Target::Unique { dir, prefix } => self.ftp_stou(cx, dir, prefix),
                Target::None | Target::Path(_) | Target::Link { .. } => self.respond(no_path()),
            },
            Verb::List => {
                let dot_files = self.lists_dot_files(arg);
                self.with_path(t, |s, t| s.ftp_listing(cx, Listing::List { dot_files }, t))
            }
            Verb::Nlst => self.with_path(t, |s, t| s.ftp_listing(cx, Listing::Nlst, t)),
            Verb::Mlsd => self.with_path(t, |s, t| s.ftp_listing(cx, Listing::Mlsd, t)),
            Verb::Rest => self.ftp_rest(arg),
            Verb::Type => self.ftp_type(arg),
            Verb::Stru => self.ftp_stru(arg),
            Verb::Mode => self.ftp_mode(arg),
            Verb::Abor => self.ftp_abor(cx),
            // checksums
            Verb::Hash => self.with_path(t, |s, t| s.ftp_hash(cx, t)),
            Verb::Rang => self.ftp_rang(arg),
            Verb::Xcrc => self.xdigest(cx, arg, t, HashAlgo::Crc32),
            Verb::Xmd5 => self.xdigest(cx, arg, t, HashAlgo::Md5),
            Verb::Xsha1 => self.xdigest(cx, arg, t, HashAlgo::Sha1),
            Verb::Xsha256 => self.xdigest(cx, arg, t, HashAlgo::Sha256),
            Verb::Xsha512 => self.xdigest(cx, arg, t, HashAlgo::Sha512),
            // the data connection
            Verb::Pasv => self.ftp_pasv(cx, false),
            Verb::Epsv => self.ftp_epsv(cx, arg),
            Verb::Port => self.ftp_port(cx, arg),
            Verb::Eprt => self.ftp_eprt(cx, arg),
            // information
            Verb::Feat => self.ftp_feat(),
            Verb::Help => self.ftp_help(arg),
            Verb::Host => self.ftp_host(arg),
            Verb::SiteHelp => self.ftp_site_help(arg),
            Verb::Stat => match t {
                Target::None => self.ftp_stat_status(),
                Target::Path(t) => self.ftp_stat_path(cx, t, self.lists_dot_files(arg)),
                Target::Unique { .. } | Target::Link { .. } => self.respond(no_path()),
            },
            Verb::Mlst => self.with_path(t, |s, t| s.ftp_mlst(cx, t)),
            Verb::Opts => self.ftp_opts(arg),
            Verb::Noop => self.respond(Reply::new(200, "I successfully did nothing.")),
            Verb::Syst => self.respond(Reply::new(215, "UNIX Type: L8")),
            Verb::Allo => self.respond(Reply::new(202, "No storage allocation necessary.")),
            Verb::Site => self.respond(Reply::new(
                502,
                format!("Command \"{}\" not implemented.", spec.name),
            )),
            // FTPS
            Verb::Auth => self.ftp_auth(arg),
            Verb::Pbsz => self.ftp_pbsz(),
            Verb::Prot => self.ftp_prot(arg),
            #[cfg(test)]
            Verb::Xtest => self.with_path(t, |s, t| s.respond(Reply::new(250, t.ftp))),
        }
    }

    /// Runs `body` on the command's path. A table whose entry for a path command was
    /// changed to take no path gets a refusal rather than a body without its target.
    fn with_path(&mut self, t: Target, body: impl FnOnce(&mut Self, Resolved)) {
        match t {
            Target::Path(path) => body(self, path),
            Target::None | Target::Unique { .. } | Target::Link { .. } => self.respond(no_path()),
        }
    }

    /// XCRC and the like: the offsets after the path, then the body.
    fn xdigest(&mut self, cx: &mut Ctx<'_, Msg>, arg: &str, t: Target, algo: HashAlgo) {
        let (_, start, end) = split_offsets(arg);
        self.with_path(t, |s, t| {
            s.ftp_xdigest(cx, t, algo, (start.unwrap_or(0), end));
        });
    }

    /// Maps the argument to the path the command acts on, as its [`ArgRule`] says,
    /// refuses a path outside the user's root, and checks the command's permission
    /// letter on it. Commands of the generic rules (`Required`, `Optional`, `None`) have
    /// a path only when they have a permission letter.
    fn resolve(&self, spec: &CommandSpec, arg: &str, clean: bool) -> Result<Target, Reply> {
        let path = match spec.arg {
            ArgRule::Path | ArgRule::PathOrCwd => arg,
            ArgRule::PathOrRoot if arg.is_empty() => "/",
            ArgRule::PathOrRoot => arg,
            ArgRule::Parent => "..",
            ArgRule::ListPath => split_ls_options(arg).1,
            ArgRule::PathThenOffsets => split_offsets(arg).0,
            ArgRule::WordThenPath => match arg.split_once(' ') {
                Some((_, path)) if !path.is_empty() => path,
                _ => {
                    return Err(Reply::new(
                        501,
                        "Syntax error: command needs two arguments.",
                    ))
                }
            },
            ArgRule::TimesAndPath => match split_utime(arg) {
                Some(utime) => utime.path,
                None => return Err(Reply::new(501, "Invalid SITE UTIME format.")),
            },
            ArgRule::TwoPaths => {
                let Some((target, link)) = split_symlink(arg) else {
                    return Err(Reply::new(
                        501,
                        "Syntax error: command needs two arguments.",
                    ));
                };
                self.decodable(target, clean)?;
                self.decodable(link, clean)?;
                let fs = self.logged_in_fs()?;
                let target = self.checked(None, fs, fs.ftpnorm(target))?;
                let link = self.checked(spec.perm, fs, fs.ftpnorm(link))?;
                return Ok(Target::Link { target, link });
            }
            ArgRule::StatusOrPath if arg.is_empty() => return Ok(Target::None),
            ArgRule::StatusOrPath if arg.contains(['*', '?', '[']) => {
                return Err(Reply::new(550, "Globbing not supported."));
            }
            // `STAT -la dir` is `LIST -la dir` over the control connection.
            ArgRule::StatusOrPath => split_ls_options(arg).1,
            ArgRule::UniqueName => {
                self.decodable(arg, clean)?;
                return self.resolve_unique(spec, arg);
            }
            ArgRule::None | ArgRule::Required | ArgRule::Optional if spec.perm.is_none() => {
                return Ok(Target::None)
            }
            ArgRule::None | ArgRule::Required | ArgRule::Optional => arg,
        };
        self.decodable(path, clean)?;
        let fs = self.logged_in_fs()?;
        let ftp = fs.ftpnorm(path);
        self.checked(spec.perm, fs, ftp).map(Target::Path)
    }

    /// STOU's target: the directory of the name it was given (or the current one), which
    /// is checked like any other path (pyftpdlib let STOU escape the root).
    fn resolve_unique(&self, spec: &CommandSpec, arg: &str) -> Result<Target, Reply> {
        let fs = self.logged_in_fs()?;
        let (dir, prefix) = if arg.is_empty() {
            (fs.cwd().to_owned(), "ftpd.".to_owned())
        } else {
            let ftp = fs.ftpnorm(arg);
            let (dir, base) = ftp.rsplit_once('/').unwrap_or(("", ftp.as_str()));
            let dir = if dir.is_empty() { "/" } else { dir };
            (dir.to_owned(), format!("{base}."))
        };
        let dir = self.checked(spec.perm, fs, dir)?;
        Ok(Target::Unique { dir, prefix })
    }

    /// Refuses a path with bytes the session's encoding could not decode (each became
    /// U+FFFD), or with a character the encoding cannot send back (GBK decodes some
    /// GB18030 sequences it cannot encode): such a name must not reach the disk, where
    /// it would be mangled or invisible to the client's listings. pyftpdlib creates the
    /// name with its U+FFFD. A U+FFFD the client sent as a character is a name like any
    /// other: `clean` tells them apart.
    fn decodable(&self, path: &str, clean: bool) -> Result<(), Reply> {
        let charset = self.shared.charset;
        if (!clean && path.contains('\u{FFFD}')) || !charset.can_encode(path) {
            return Err(Reply::new(
                501,
                format!("can't decode path (server encoding is {})", charset.name()),
            ));
        }
        Ok(())
    }

    fn logged_in_fs(&self) -> Result<&dyn FileSystem, Reply> {
        self.fs()
            .ok_or_else(|| Reply::new(530, "Log in with USER and PASS first."))
    }

    /// Containment, then the permission letter.
    fn checked(
        &self,
        letter: Option<char>,
        fs: &dyn FileSystem,
        ftp: String,
    ) -> Result<Resolved, Reply> {
        let real = fs.ftp2fs(&ftp);
        if !fs.validpath(&real) {
            return Err(Reply::new(
                550,
                format!("'{ftp}' points to a path which is outside the user's root directory."),
            ));
        }
        if self.shared.config.atomic_uploads && atomic::names_part(&real) {
            // Another upload's temporary: reading, renaming or removing it would expose
            // or break that upload.
            return Err(Reply::new(550, "No such file or directory."));
        }
        if let Some(letter) = letter {
            if !self
                .authorizer()
                .has_perm(self.username(), letter, Some(&real))
            {
                return Err(Reply::new(550, "Not enough privileges."));
            }
        }
        Ok(Resolved { ftp, fs: real })
    }

    /// A command the embedding program registered.
    fn run_custom(&mut self, index: usize, arg: &str, target: Target) {
        let shared = Arc::clone(&self.shared);
        let Some(body) = shared.custom.get(index) else {
            return self.respond(Reply::new(502, "Command not implemented."));
        };
        let authorizer = Arc::clone(self.authorizer());
        let remote = self.remote;
        let (username, fs) = match &mut self.login {
            Login::LoggedIn { user, fs } => {
                let fs: &mut dyn FileSystem = &mut **fs;
                (user.as_str(), Some(fs))
            }
            Login::AwaitingPass { user } | Login::Lent { user } => (user.as_str(), None),
            Login::AwaitingUser => ("", None),
        };
        let path = match &target {
            Target::Path(t) | Target::Unique { dir: t, .. } | Target::Link { link: t, .. } => {
                Some(t)
            }
            Target::None => None,
        };
        let mut ctx = CommandContext {
            username,
            remote,
            fs,
            authorizer: authorizer.as_ref(),
            path: path.map(|t| t.fs.as_path()),
            ftp_path: path.map(|t| t.ftp.as_str()),
        };
        let reply = body(&mut ctx, arg);
        self.respond(reply);
    }

    pub(super) fn fs(&self) -> Option<&dyn FileSystem> {
        match &self.login {
            Login::LoggedIn { fs, .. } => Some(fs.as_ref()),
            Login::AwaitingUser | Login::AwaitingPass { .. } | Login::Lent { .. } => None,
        }
    }

    /// Whether the session's filesystem blocks: its calls, and the reads and writes of
    /// its files, run on the filesystem threads.
    pub(super) fn fs_blocks(&self) -> bool {
        self.fs().is_some_and(|fs| fs.blocking())
    }

    /// Whether a LIST or STAT of a directory with this argument shows the names starting
    /// with a dot: with `-a` / `-A` (the `ls` options before the path, which pyftpdlib
    /// ignored), or always when the server is set to (pyftpdlib's listings).
    fn lists_dot_files(&self, arg: &str) -> bool {
        self.shared.config.list_shows_hidden || split_ls_options(arg).0.all
    }
}

fn no_path() -> Reply {
    Reply::new(550, "No such file or directory.")
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use crate::authorizers::DummyAuthorizer;
    use crate::proto::command::TEST_ONLY;
    use crate::proto::CommandTable;
    use crate::servers::FtpServer;

    /// A new built-in command is one row in the table and one arm in `dispatch`: the gate,
    /// the resolver, HELP and the command log come with the row.
    #[test]
    fn a_command_added_to_the_table_is_gated_resolved_and_dispatched() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        let mut auth = DummyAuthorizer::new();
        auth.add_user("u", "p", dir.path(), "elr", None, None)
            .expect("user");
        auth.add_user("w", "p", dir.path(), "e", None, None)
            .expect("user");
        let mut table = CommandTable::builtin();
        for spec in TEST_ONLY {
            table.add(spec.clone());
        }
        let server = FtpServer::builder(auth)
            .commands(table)
            .spawn("127.0.0.1:0")
            .expect("server");
        let stream = TcpStream::connect(server.local_addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut writer = stream;
        let mut send = |line: &str| -> String {
            if !line.is_empty() {
                writer
                    .write_all(format!("{line}\r\n").as_bytes())
                    .expect("send");
            }
            let mut reply = String::new();
            loop {
                let mut l = String::new();
                reader.read_line(&mut l).expect("reply");
                assert!(!l.is_empty(), "closed after {line:?}");
                reply.push_str(&l);
                if l.as_bytes().get(3) == Some(&b' ') {
                    return reply.trim_end().to_owned();
                }
            }
        };
        assert!(send("").starts_with("220 "));
        assert_eq!(send("XTEST sub"), "530 Log in with USER and PASS first.");
        assert_eq!(send("USER u"), "331 Username ok, send password.");
        assert_eq!(send("PASS p"), "230 Login successful.");
        assert_eq!(
            send("XTEST"),
            "501 Syntax error: command needs an argument."
        );
        assert_eq!(send("xtest sub/../sub"), "250 /sub");
        assert_eq!(send("XTEST ../../etc"), "250 /etc");
        assert_eq!(
            send("HELP XTEST"),
            "214 Syntax: XTEST <SP> path (show the path as resolved)."
        );
        assert!(send("HELP").contains(" XTEST "));
        // The row's permission letter is checked by the resolver.
        assert_eq!(
            send("USER w"),
            "331 Previous account information was flushed, send password."
        );
        assert_eq!(send("PASS p"), "230 Login successful.");
        assert_eq!(send("XTEST sub"), "550 Not enough privileges.");
        assert_eq!(send("QUIT"), "221 Goodbye.");
    }
}

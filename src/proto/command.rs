//! The command table (RFC 959 §4.1, §5.3): the one source of command metadata, and what
//! each command does.
//!
//! [`BUILTIN`] holds one [`CommandSpec`] per command pyftpdlib 2.2.0's `FTPHandler`
//! knows (its `proto_cmds`), plus the file checksums (HASH, RANG, XCRC, XMD5, XSHA1,
//! XSHA256, XSHA512): permission letter, whether login is needed, the argument's
//! shape ([`ArgRule`]), whether its outcome is logged, the `HELP` text, and its
//! [`Action`]: a built-in [`Verb`] or a body the embedding program registered. A
//! [`CommandTable`] starts from it and lets the embedding program add or remove entries.
//! Adding a built-in command is one row here and one arm in the session's `match` on
//! [`Verb`], which the compiler checks for exhaustiveness.

use std::borrow::Cow;
use std::collections::HashMap;

use super::reply::Reply;
use crate::fnv::FnvBuildHasher;

/// What a command's argument is, which also says how many it takes and how the session
/// turns it into the path the command acts on.
///
/// The path rules apply when the command has a permission letter; the path is then
/// checked against the user's root and the letter before the command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgRule {
    /// No argument allowed (`501 Syntax error: command does not accept arguments.`).
    None,
    /// An argument is needed (`501 Syntax error: command needs an argument.`). With a
    /// permission letter it is a path (a command the embedding program adds).
    Required,
    /// The argument may be given or left out. With a permission letter it is a path,
    /// the current directory when left out.
    Optional,
    /// A path is needed (`RETR f`).
    Path,
    /// A path, or nothing for the user's root directory (`CWD`).
    PathOrRoot,
    /// A path, or nothing for the current directory (`NLST`, `MLSD`, `MLST`).
    PathOrCwd,
    /// `ls`-style options such as `-la`, then a path or nothing for the current
    /// directory (`LIST`).
    ListPath,
    /// No argument; the command acts on the parent directory (`CDUP`).
    Parent,
    /// A word, a space, then a path (`SITE CHMOD 755 f`, `MFMT 20240101000000 f`);
    /// `501 Syntax error: command needs two arguments.` otherwise.
    WordThenPath,
    /// Nothing (the server's status, open before login) or, as for [`ArgRule::ListPath`],
    /// `ls` options and a path without glob characters (`STAT`; `550 Globbing not
    /// supported.`).
    StatusOrPath,
    /// A file name prefix or nothing; the command acts on the directory that will hold
    /// the new file (`STOU`).
    UniqueName,
    /// A path, then up to two offsets (`XCRC f 0 100`); see
    /// [`split_offsets`](super::split_offsets).
    PathThenOffsets,
    /// `SITE UTIME`'s two forms, a time then a path or a path then three times and
    /// `UTC`; see [`split_utime`](super::split_utime). `501` for anything else.
    TimesAndPath,
    /// `SITE SYMLINK`: the path a new link names, a space, the link's path; see
    /// [`split_symlink`](super::split_symlink). The permission letter is checked on the
    /// link's path. `501` without two arguments.
    TwoPaths,
}

/// How many arguments an [`ArgRule`] takes (pyftpdlib's `arg` key: `False`/`True`/`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arity {
    None,
    Required,
    Optional,
}

impl ArgRule {
    pub(crate) fn arity(self) -> Arity {
        match self {
            ArgRule::None | ArgRule::Parent => Arity::None,
            ArgRule::Required
            | ArgRule::Path
            | ArgRule::WordThenPath
            | ArgRule::PathThenOffsets
            | ArgRule::TimesAndPath
            | ArgRule::TwoPaths => Arity::Required,
            ArgRule::Optional
            | ArgRule::PathOrRoot
            | ArgRule::PathOrCwd
            | ArgRule::ListPath
            | ArgRule::StatusOrPath
            | ArgRule::UniqueName => Arity::Optional,
        }
    }
}

/// What runs when a command passes the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// A built-in command body.
    Builtin(Verb),
    /// A body the embedding program registered (`ServerBuilder::command`), by its index
    /// in the server's list of bodies.
    Custom(usize),
    /// Listed (HELP shows it) but nothing runs: `502 Command "<CMD>" not implemented.`.
    Unimplemented,
}

/// The built-in command bodies. Several names may share one (`CWD`, `XCWD`, `CDUP` and
/// `XCUP` are all [`Verb::Cwd`]; the argument rule tells them apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)] // each is the command of the same name
pub enum Verb {
    Abor,
    Allo,
    Appe,
    Auth,
    Cwd,
    Dele,
    Eprt,
    Epsv,
    Feat,
    Hash,
    Help,
    Host,
    List,
    Mdtm,
    Mfmt,
    Mkd,
    Mlsd,
    Mlst,
    Mode,
    Nlst,
    Noop,
    Opts,
    Pass,
    Pasv,
    Pbsz,
    Port,
    Prot,
    Pwd,
    Quit,
    Rang,
    Rein,
    Rest,
    Retr,
    Rmd,
    Rnfr,
    Rnto,
    /// `SITE` alone never runs (`SITE x` is the command `SITE X`); it is listed by HELP.
    Site,
    SiteChmod,
    SiteHelp,
    SiteQuota,
    SiteSymlink,
    SiteUtime,
    Size,
    Stat,
    Stor,
    Stou,
    Stru,
    Syst,
    Type,
    User,
    Xcrc,
    Xmd5,
    Xsha1,
    Xsha256,
    Xsha512,
    /// A command that exists in the crate's own tests only, added the way a new
    /// built-in is: a row ([`TEST_ONLY`]) and an arm in the session's `match`.
    #[cfg(test)]
    Xtest,
}

/// What FTPS must have set up before a command is served (`tls_control_required`,
/// `tls_data_required`): `550 SSL/TLS required on the control channel.` /
/// `550 SSL/TLS required on the data channel.` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsNeed {
    /// Nothing.
    None,
    /// TLS on the control connection, when the server requires it (USER, PASS).
    Control,
    /// `PROT P`, when the server requires it (PASV, EPSV, PORT, EPRT).
    Data,
}

/// Metadata for one command, built in or registered by the embedding program.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandSpec {
    /// Upper-case name as matched after parsing, e.g. `"RETR"` or `"SITE CHMOD"`.
    pub name: Cow<'static, str>,
    /// Permission letter checked against the authorizer (`elr` read, `adfmwMT` write).
    pub perm: Option<char>,
    /// Whether the command needs a logged-in user (`530 Log in with USER and PASS first.`).
    pub auth: bool,
    /// The argument's shape, which gives its arity.
    pub arg: ArgRule,
    /// Text for `HELP <name>`, without the leading `"Syntax: "`.
    pub help: Cow<'static, str>,
    /// Whether the outcome is logged at INFO level (pyftpdlib's `log_cmds_list`).
    pub logged: bool,
    /// What FTPS must have set up first.
    pub tls: TlsNeed,
    /// What runs.
    pub action: Action,
}

impl CommandSpec {
    /// A spec for a command registered by the embedding program, e.g.
    /// `CommandSpec::new("SITE RMTREE", Some('d'), true, ArgRule::Required,
    /// "SITE RMTREE <SP> path (remove a directory tree).")`.
    ///
    /// A name of the built-in table keeps its built-in body (the new spec changes only
    /// its metadata); another name runs the body given to `ServerBuilder::command`, and
    /// without one replies `502`.
    pub fn new(
        name: impl Into<String>,
        perm: Option<char>,
        auth: bool,
        arg: ArgRule,
        help: impl Into<String>,
    ) -> CommandSpec {
        let name = name.into().to_ascii_uppercase();
        let builtin = BUILTIN.iter().find(|s| s.name == name.as_str());
        CommandSpec {
            perm,
            auth,
            arg,
            help: Cow::Owned(help.into()),
            logged: builtin.is_some_and(|s| s.logged),
            tls: builtin.map_or(TlsNeed::None, |s| s.tls),
            action: builtin.map_or(Action::Unimplemented, |s| s.action),
            name: Cow::Owned(name),
        }
    }

    /// The same spec with its outcome logged at INFO level (or not).
    pub const fn logged(mut self, logged: bool) -> CommandSpec {
        self.logged = logged;
        self
    }

    /// The same spec running `action`.
    pub const fn action(mut self, action: Action) -> CommandSpec {
        self.action = action;
        self
    }

    /// The same spec requiring `tls` first.
    pub const fn tls(mut self, tls: TlsNeed) -> CommandSpec {
        self.tls = tls;
        self
    }
}

/// The built-in commands: pyftpdlib 2.2.0 `proto_cmds`, including `SITE CHMOD` and
/// `SITE HELP` and excluding the TLS commands (see [`TLS_COMMANDS`]), and the file
/// checksums pyftpdlib lacks.
#[rustfmt::skip]
pub static BUILTIN: &[CommandSpec] = &[
    spec("ABOR", Verb::Abor, None, true, ArgRule::None, "ABOR (abort transfer)."),
    spec("ALLO", Verb::Allo, None, true, ArgRule::Required, "ALLO <SP> bytes (noop; allocate storage)."),
    spec("APPE", Verb::Appe, Some('a'), true, ArgRule::Path, "APPE <SP> file-name (append data to file)."),
    spec("CDUP", Verb::Cwd, Some('e'), true, ArgRule::Parent, "CDUP (go to parent directory)."),
    spec("CWD", Verb::Cwd, Some('e'), true, ArgRule::PathOrRoot, "CWD [<SP> dir-name] (change working directory).").logged(true),
    spec("DELE", Verb::Dele, Some('d'), true, ArgRule::Path, "DELE <SP> file-name (delete file).").logged(true),
    spec("EPRT", Verb::Eprt, None, true, ArgRule::Required, "EPRT <SP> |proto|ip|port| (extended active mode).").tls(TlsNeed::Data),
    spec("EPSV", Verb::Epsv, None, true, ArgRule::Optional, "EPSV [<SP> proto/\"ALL\"] (extended passive mode).").tls(TlsNeed::Data),
    spec("FEAT", Verb::Feat, None, false, ArgRule::None, "FEAT (list all new features supported)."),
    spec("HASH", Verb::Hash, Some('r'), true, ArgRule::Path, "HASH <SP> file-name (get the file's checksum)."),
    spec("HELP", Verb::Help, None, false, ArgRule::Optional, "HELP [<SP> cmd] (show help)."),
    spec("LIST", Verb::List, Some('l'), true, ArgRule::ListPath, "LIST [<SP> path] (list files)."),
    spec("MDTM", Verb::Mdtm, Some('l'), true, ArgRule::Path, "MDTM [<SP> path] (file last modification time)."),
    spec("MFMT", Verb::Mfmt, Some('T'), true, ArgRule::WordThenPath, "MFMT <SP> timeval <SP> path (file update last modification time).").logged(true),
    spec("MLSD", Verb::Mlsd, Some('l'), true, ArgRule::PathOrCwd, "MLSD [<SP> path] (list directory)."),
    spec("MLST", Verb::Mlst, Some('l'), true, ArgRule::PathOrCwd, "MLST [<SP> path] (show information about path)."),
    spec("MODE", Verb::Mode, None, true, ArgRule::Required, "MODE <SP> mode (noop; set data transfer mode)."),
    spec("MKD", Verb::Mkd, Some('m'), true, ArgRule::Path, "MKD <SP> path (create directory).").logged(true),
    spec("NLST", Verb::Nlst, Some('l'), true, ArgRule::PathOrCwd, "NLST [<SP> path] (list path in a compact form)."),
    spec("NOOP", Verb::Noop, None, false, ArgRule::None, "NOOP (just do nothing)."),
    spec("OPTS", Verb::Opts, None, true, ArgRule::Required, "OPTS <SP> cmd [<SP> option] (set option for command)."),
    spec("PASS", Verb::Pass, None, false, ArgRule::Optional, "PASS [<SP> password] (set user password).").tls(TlsNeed::Control),
    spec("PASV", Verb::Pasv, None, true, ArgRule::None, "PASV (open passive data connection).").tls(TlsNeed::Data),
    spec("PORT", Verb::Port, None, true, ArgRule::Required, "PORT <sp> h,h,h,h,p,p (open active data connection).").tls(TlsNeed::Data),
    spec("PWD", Verb::Pwd, None, true, ArgRule::None, "PWD (get current working directory)."),
    spec("QUIT", Verb::Quit, None, false, ArgRule::None, "QUIT (quit current session)."),
    spec("RANG", Verb::Rang, None, true, ArgRule::Required, "RANG <SP> start end (set the byte range of the next HASH)."),
    spec("REIN", Verb::Rein, None, true, ArgRule::None, "REIN (flush account).").logged(true),
    spec("REST", Verb::Rest, None, true, ArgRule::Required, "REST <SP> offset (set file offset)."),
    spec("RETR", Verb::Retr, Some('r'), true, ArgRule::Path, "RETR <SP> file-name (retrieve a file)."),
    spec("RMD", Verb::Rmd, Some('d'), true, ArgRule::Path, "RMD <SP> dir-name (remove directory).").logged(true),
    spec("RNFR", Verb::Rnfr, Some('f'), true, ArgRule::Path, "RNFR <SP> file-name (rename (source name)).").logged(true),
    spec("RNTO", Verb::Rnto, Some('f'), true, ArgRule::Path, "RNTO <SP> file-name (rename (destination name)).").logged(true),
    spec("SITE", Verb::Site, None, false, ArgRule::Required, "SITE <SP> site-command (execute SITE command)."),
    spec("SITE HELP", Verb::SiteHelp, None, false, ArgRule::Optional, "SITE HELP [<SP> cmd] (show SITE command help)."),
    spec("SITE QUOTA", Verb::SiteQuota, None, true, ArgRule::Optional, "SITE QUOTA [<SP> SYNC] (show quota usage; SYNC counts again)."),
    spec("SITE CHMOD", Verb::SiteChmod, Some('M'), true, ArgRule::WordThenPath, "SITE CHMOD <SP> mode path (change file mode).").logged(true),
    spec("SIZE", Verb::Size, Some('l'), true, ArgRule::Path, "SIZE <SP> file-name (get file size)."),
    // Open before login without an argument (the status); a path needs a login.
    spec("STAT", Verb::Stat, Some('l'), false, ArgRule::StatusOrPath, "STAT [<SP> path name] (server stats [list files])."),
    spec("STOR", Verb::Stor, Some('w'), true, ArgRule::Path, "STOR <SP> file-name (store a file)."),
    spec("STOU", Verb::Stou, Some('w'), true, ArgRule::UniqueName, "STOU [<SP> name] (store a file with a unique name)."),
    spec("STRU", Verb::Stru, None, true, ArgRule::Required, "STRU <SP> type (noop; set file structure)."),
    spec("SYST", Verb::Syst, None, false, ArgRule::None, "SYST (get operating system type)."),
    spec("TYPE", Verb::Type, None, true, ArgRule::Required, "TYPE <SP> [A | I] (set transfer type)."),
    spec("USER", Verb::User, None, false, ArgRule::Required, "USER <SP> user-name (set username).").tls(TlsNeed::Control),
    spec("XCRC", Verb::Xcrc, Some('r'), true, ArgRule::PathThenOffsets, "XCRC <SP> file-name [start [end]] (get the file's CRC-32)."),
    spec("XCUP", Verb::Cwd, Some('e'), true, ArgRule::Parent, "XCUP (obsolete; go to parent directory)."),
    spec("XCWD", Verb::Cwd, Some('e'), true, ArgRule::PathOrRoot, "XCWD [<SP> dir-name] (obsolete; change directory).").logged(true),
    spec("XMD5", Verb::Xmd5, Some('r'), true, ArgRule::PathThenOffsets, "XMD5 <SP> file-name [start [end]] (get the file's MD5)."),
    spec("XMKD", Verb::Mkd, Some('m'), true, ArgRule::Path, "XMKD <SP> dir-name (obsolete; create directory).").logged(true),
    spec("XPWD", Verb::Pwd, None, true, ArgRule::None, "XPWD (obsolete; get current dir)."),
    spec("XRMD", Verb::Rmd, Some('d'), true, ArgRule::Path, "XRMD <SP> dir-name (obsolete; remove directory).").logged(true),
    spec("XSHA1", Verb::Xsha1, Some('r'), true, ArgRule::PathThenOffsets, "XSHA1 <SP> file-name [start [end]] (get the file's SHA-1)."),
    spec("XSHA256", Verb::Xsha256, Some('r'), true, ArgRule::PathThenOffsets, "XSHA256 <SP> file-name [start [end]] (get the file's SHA-256)."),
    spec("XSHA512", Verb::Xsha512, Some('r'), true, ArgRule::PathThenOffsets, "XSHA512 <SP> file-name [start [end]] (get the file's SHA-512)."),
];

/// The commands pyftpdlib's `TLS_FTPHandler` adds (RFC 4217), for
/// [`CommandTable::add`] when FTPS is enabled.
#[rustfmt::skip]
pub static TLS_COMMANDS: &[CommandSpec] = &[
    spec("AUTH", Verb::Auth, None, false, ArgRule::Required, "AUTH <SP> TLS|SSL (set up secure control channel)."),
    spec("PBSZ", Verb::Pbsz, None, false, ArgRule::Required, "PBSZ <SP> 0 (negotiate TLS buffer)."),
    spec("PROT", Verb::Prot, None, false, ArgRule::Required, "PROT <SP> [C|P] (set up un/secure data channel)."),
];

/// The row of `HOST` (RFC 7151), in the table of a server with virtual hosts.
pub static HOST_COMMAND: CommandSpec = spec(
    "HOST",
    Verb::Host,
    None,
    false,
    ArgRule::Required,
    "HOST <SP> host-name (select a virtual host).",
);

/// The row of `SITE UTIME` (proftpd's mod_site_misc), in the table of a server with
/// [`HandlerConfig::site_utime`](crate::config::HandlerConfig::site_utime). It needs the
/// `T` right, as MFMT does.
pub static SITE_UTIME_COMMAND: CommandSpec = spec(
    "SITE UTIME",
    Verb::SiteUtime,
    Some('T'),
    true,
    ArgRule::TimesAndPath,
    "SITE UTIME <SP> YYYYMMDDhhmm[ss] path (set the modification time).",
)
.logged(true);

/// The row of `SITE SYMLINK` (proftpd's mod_site_misc), in the table of a server with
/// [`HandlerConfig::site_symlink`](crate::config::HandlerConfig::site_symlink). It
/// needs the `w` right on the link's path, as STOR of a new file there would.
pub static SITE_SYMLINK_COMMAND: CommandSpec = spec(
    "SITE SYMLINK",
    Verb::SiteSymlink,
    Some('w'),
    true,
    ArgRule::TwoPaths,
    "SITE SYMLINK <SP> target link (create a symbolic link).",
)
.logged(true);

/// The rows of test-only commands.
#[cfg(test)]
pub(crate) static TEST_ONLY: &[CommandSpec] = &[spec(
    "XTEST",
    Verb::Xtest,
    Some('r'),
    true,
    ArgRule::Path,
    "XTEST <SP> path (show the path as resolved).",
)];

/// The registry of commands a server answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTable {
    // Keyed by upper-case name. Every command line is looked up here, so the hash is a
    // cheap one: the keys are the table's own, a client only chooses what is looked up.
    // The listings (HELP, SITE HELP, `iter`) sort the names, like Python's `sorted()`.
    specs: HashMap<Cow<'static, str>, CommandSpec, FnvBuildHasher>,
}

impl CommandTable {
    /// A table holding the [`BUILTIN`] commands.
    pub fn builtin() -> CommandTable {
        let mut table = CommandTable {
            specs: HashMap::default(),
        };
        for spec in BUILTIN {
            table.add(spec.clone());
        }
        table
    }

    /// Registers `spec`, replacing any command of the same name. The name is
    /// upper-cased (ASCII) first, because [`parse_line`](super::parse_line) upper-cases what clients send.
    pub fn add(&mut self, mut spec: CommandSpec) {
        if spec.name.bytes().any(|b| b.is_ascii_lowercase()) {
            spec.name = Cow::Owned(spec.name.to_ascii_uppercase());
        }
        self.specs.insert(spec.name.clone(), spec);
    }

    /// Removes a command (e.g. `PASV` and `EPSV` to force active mode). Later lines
    /// naming it get `500 Command "<CMD>" not understood.`. The name is matched
    /// case-insensitively; removing an unknown name does nothing.
    pub fn remove(&mut self, name: &str) {
        self.specs.remove(name.to_ascii_uppercase().as_str());
    }

    /// The spec for an upper-case command name such as `"SITE CHMOD"`.
    pub fn lookup(&self, name: &str) -> Option<&CommandSpec> {
        self.specs.get(name)
    }

    /// All specs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &CommandSpec> {
        let mut specs: Vec<&CommandSpec> = self.specs.values().collect();
        specs.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        specs.into_iter()
    }

    /// All names, sorted.
    fn sorted_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.specs.keys().map(AsRef::as_ref).collect();
        names.sort_unstable();
        names
    }

    /// The reply to `HELP` without an argument: every non-`SITE x` command, sorted,
    /// eight per line, each a space plus the name padded to six columns.
    pub fn help_listing(&self) -> Reply {
        let mut names = self.sorted_names();
        names.retain(|k| !k.starts_with(SITE_PREFIX));
        let mut lines = vec!["The following commands are recognized:".to_owned()];
        for chunk in names.chunks(HELP_NAMES_PER_LINE) {
            lines.push(chunk.iter().map(|n| format!(" {n:<6}")).collect());
        }
        lines.push("Help command successful.".to_owned());
        Reply::multi(214, lines)
    }

    /// The reply to `SITE HELP` without an argument: one `" <NAME>"` line per
    /// `SITE <NAME>` command, sorted.
    pub fn site_help_listing(&self) -> Reply {
        let mut lines = vec!["The following SITE commands are recognized:".to_owned()];
        lines.extend(
            self.sorted_names()
                .into_iter()
                .filter_map(|k| k.strip_prefix(SITE_PREFIX))
                .map(|n| format!(" {n}")),
        );
        lines.push("Help SITE command successful.".to_owned());
        Reply::multi(214, lines)
    }

    /// `214 Syntax: <help>` for `cmd` (upper-cased here, so `HELP site chmod` works),
    /// or `None` when the command is unknown. The caller replies
    /// `501 Unrecognized command.` (or `501 Unrecognized SITE command.` for `SITE HELP`).
    pub fn help_for(&self, cmd: &str) -> Option<Reply> {
        self.specs
            .get(cmd.to_ascii_uppercase().as_str())
            .map(|spec| Reply::new(214, format!("Syntax: {}", spec.help)))
    }
}

impl Default for CommandTable {
    fn default() -> CommandTable {
        CommandTable::builtin()
    }
}

#[allow(clippy::too_many_arguments)]
const fn spec(
    name: &'static str,
    verb: Verb,
    perm: Option<char>,
    auth: bool,
    arg: ArgRule,
    help: &'static str,
) -> CommandSpec {
    CommandSpec {
        name: Cow::Borrowed(name),
        perm,
        auth,
        arg,
        help: Cow::Borrowed(help),
        logged: false,
        tls: TlsNeed::None,
        action: Action::Builtin(verb),
    }
}

/// Prefix of the two-word `SITE` commands in the table.
pub(crate) const SITE_PREFIX: &str = "SITE ";

/// Names per line in the `HELP` listing.
const HELP_NAMES_PER_LINE: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(r: &Reply) -> String {
        let mut out = Vec::new();
        r.write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    /// A spec written out in full, as the embedding program might.
    fn literal(name: &str, auth: bool, help: &str) -> CommandSpec {
        CommandSpec {
            name: name.to_owned().into(),
            perm: None,
            auth,
            arg: ArgRule::None,
            help: help.to_owned().into(),
            logged: false,
            tls: TlsNeed::None,
            action: Action::Unimplemented,
        }
    }

    // --- table

    #[test]
    fn builtin_has_all_rows() {
        let table = CommandTable::builtin();
        // pyftpdlib's 47, and the 7 checksum commands, SITE QUOTA.
        assert_eq!(table.iter().count(), 55);
        assert_eq!(BUILTIN.len(), 55);
        for name in ["AUTH", "PBSZ", "PROT"] {
            assert!(table.lookup(name).is_none(), "{name}");
        }
    }

    #[test]
    fn builtin_rows_sample() {
        let table = CommandTable::builtin();
        let chmod = table.lookup("SITE CHMOD").unwrap();
        assert_eq!(chmod.perm, Some('M'));
        assert!(chmod.auth);
        assert_eq!(chmod.arg.arity(), Arity::Required);
        assert_eq!(chmod.arg, ArgRule::WordThenPath);
        let stat = table.lookup("STAT").unwrap();
        assert_eq!(
            (stat.perm, stat.auth, stat.arg.arity()),
            (Some('l'), false, Arity::Optional)
        );
        let opts = table.lookup("OPTS").unwrap();
        assert!(opts.auth);
        let mfmt = table.lookup("MFMT").unwrap();
        assert_eq!(mfmt.perm, Some('T'));
        let stou = table.lookup("STOU").unwrap();
        assert_eq!((stou.perm, stou.arg.arity()), (Some('w'), Arity::Optional));
    }

    #[test]
    fn the_table_says_what_runs_and_what_is_logged() {
        let table = CommandTable::builtin();
        let action = |name: &str| table.lookup(name).map(|s| s.action);
        assert_eq!(action("XCUP"), Some(Action::Builtin(Verb::Cwd)));
        assert_eq!(action("CDUP"), Some(Action::Builtin(Verb::Cwd)));
        assert_eq!(action("XRMD"), Some(Action::Builtin(Verb::Rmd)));
        assert_eq!(table.lookup("CDUP").map(|s| s.arg), Some(ArgRule::Parent));
        // pyftpdlib's log_cmds_list.
        let logged: Vec<&str> = table
            .iter()
            .filter(|s| s.logged)
            .map(|s| s.name.as_ref())
            .collect();
        assert_eq!(
            logged,
            [
                "CWD",
                "DELE",
                "MFMT",
                "MKD",
                "REIN",
                "RMD",
                "RNFR",
                "RNTO",
                "SITE CHMOD",
                "XCWD",
                "XMKD",
                "XRMD"
            ]
        );
        let tls: Vec<(&str, TlsNeed)> = table
            .iter()
            .filter(|s| s.tls != TlsNeed::None)
            .map(|s| (s.name.as_ref(), s.tls))
            .collect();
        assert_eq!(
            tls,
            [
                ("EPRT", TlsNeed::Data),
                ("EPSV", TlsNeed::Data),
                ("PASS", TlsNeed::Control),
                ("PASV", TlsNeed::Data),
                ("PORT", TlsNeed::Data),
                ("USER", TlsNeed::Control)
            ]
        );
    }

    #[test]
    fn a_new_spec_keeps_a_built_in_body_or_has_none() {
        let noop = CommandSpec::new("noop", None, true, ArgRule::None, "NOOP (custom).");
        assert_eq!(noop.action, Action::Builtin(Verb::Noop));
        let user = CommandSpec::new("USER", None, false, ArgRule::Required, "USER x.");
        assert_eq!(user.tls, TlsNeed::Control);
        let new = CommandSpec::new("SITE X", None, true, ArgRule::None, "SITE X.");
        assert_eq!(new.action, Action::Unimplemented);
        assert!(!new.logged);
        assert!(new.clone().logged(true).logged);
    }

    #[test]
    fn pre_login_commands() {
        // vsftpd prelogin.c spirit: only a fixed small set is reachable logged out.
        let table = CommandTable::builtin();
        let open: Vec<&str> = table
            .iter()
            .filter(|s| !s.auth)
            .map(|s| s.name.as_ref())
            .collect();
        assert_eq!(
            open,
            [
                "FEAT",
                "HELP",
                "NOOP",
                "PASS",
                "QUIT",
                "SITE",
                "SITE HELP",
                "STAT",
                "SYST",
                "USER"
            ]
        );
    }

    #[test]
    fn perm_letters_are_known() {
        for s in BUILTIN {
            if let Some(p) = s.perm {
                assert!("elradfmwMT".contains(p), "{}", s.name);
            }
        }
    }

    #[test]
    fn names_are_upper_case_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for s in BUILTIN.iter().chain(TLS_COMMANDS) {
            assert_eq!(s.name.to_ascii_uppercase(), s.name);
            assert!(seen.insert(s.name.clone()), "{}", s.name);
            assert!(!s.help.starts_with("Syntax"), "{}", s.name);
        }
    }

    #[test]
    fn add_replaces_and_upper_cases() {
        let mut table = CommandTable::builtin();
        table.add(literal("site foo", true, "SITE FOO (custom)."));
        assert_eq!(table.lookup("SITE FOO").unwrap().name, "SITE FOO");
        table.add(literal("NOOP", true, "NOOP (custom)."));
        assert!(table.lookup("NOOP").unwrap().auth);
        assert_eq!(table.iter().count(), 56);
    }

    #[test]
    fn add_tls_commands() {
        let mut table = CommandTable::builtin();
        for s in TLS_COMMANDS {
            table.add(s.clone());
        }
        assert_eq!(
            wire(&table.help_for("AUTH").unwrap()),
            "214 Syntax: AUTH <SP> TLS|SSL (set up secure control channel).\r\n"
        );
        assert_eq!(table.iter().count(), 58);
    }

    #[test]
    fn remove_unknown_is_noop() {
        let mut table = CommandTable::builtin();
        table.remove("NOPE");
        assert_eq!(table, CommandTable::builtin());
        assert_eq!(CommandTable::default(), CommandTable::builtin());
    }

    #[test]
    fn lookup_is_exact() {
        let table = CommandTable::builtin();
        assert!(table.lookup("noop").is_none());
        assert!(table.lookup("NOOP").is_some());
    }

    // --- HELP (RFC 959 §4.1.3)

    #[test]
    fn help_for_known() {
        let table = CommandTable::builtin();
        assert_eq!(
            wire(&table.help_for("RETR").unwrap()),
            "214 Syntax: RETR <SP> file-name (retrieve a file).\r\n"
        );
        assert_eq!(
            wire(&table.help_for("epsv").unwrap()),
            "214 Syntax: EPSV [<SP> proto/\"ALL\"] (extended passive mode).\r\n"
        );
    }

    #[test]
    fn help_for_site_chmod() {
        let table = CommandTable::builtin();
        assert_eq!(
            wire(&table.help_for("site chmod").unwrap()),
            "214 Syntax: SITE CHMOD <SP> mode path (change file mode).\r\n"
        );
        // pyftpdlib quirk kept: SITE HELP CHMOD looks up "CHMOD" itself.
        assert!(table.help_for("CHMOD").is_none());
    }

    #[test]
    fn help_for_unknown() {
        assert!(CommandTable::builtin().help_for("XYZ").is_none());
        assert!(CommandTable::builtin().help_for("").is_none());
    }

    #[test]
    fn help_listing_builtin() {
        let expected = "214-The following commands are recognized:\r\n\
            \x20ABOR   ALLO   APPE   CDUP   CWD    DELE   EPRT   EPSV  \r\n\
            \x20FEAT   HASH   HELP   LIST   MDTM   MFMT   MKD    MLSD  \r\n\
            \x20MLST   MODE   NLST   NOOP   OPTS   PASS   PASV   PORT  \r\n\
            \x20PWD    QUIT   RANG   REIN   REST   RETR   RMD    RNFR  \r\n\
            \x20RNTO   SITE   SIZE   STAT   STOR   STOU   STRU   SYST  \r\n\
            \x20TYPE   USER   XCRC   XCUP   XCWD   XMD5   XMKD   XPWD  \r\n\
            \x20XRMD   XSHA1  XSHA256 XSHA512\r\n\
            214 Help command successful.\r\n";
        assert_eq!(wire(&CommandTable::builtin().help_listing()), expected);
    }

    #[test]
    fn help_listing_long_name_not_truncated() {
        let mut table = CommandTable::builtin();
        for name in BUILTIN.iter().map(|s| s.name.clone()) {
            table.remove(&name);
        }
        table.add(literal("LONGNAME", false, "x"));
        assert_eq!(
            wire(&table.help_listing()),
            "214-The following commands are recognized:\r\n LONGNAME\r\n214 Help command successful.\r\n"
        );
    }

    #[test]
    fn help_listing_empty_table() {
        let mut table = CommandTable::builtin();
        for name in BUILTIN.iter().map(|s| s.name.clone()) {
            table.remove(&name);
        }
        assert_eq!(
            wire(&table.help_listing()),
            "214-The following commands are recognized:\r\n214 Help command successful.\r\n"
        );
    }

    #[test]
    fn site_help_listing_builtin() {
        assert_eq!(
            wire(&CommandTable::builtin().site_help_listing()),
            "214-The following SITE commands are recognized:\r\n CHMOD\r\n HELP\r\n QUOTA\r\n214 Help SITE command successful.\r\n"
        );
    }

    #[test]
    fn site_help_listing_includes_user_commands() {
        let mut table = CommandTable::builtin();
        table.add(literal("SITE AAA", true, "SITE AAA (test)."));
        table.remove("SITE CHMOD");
        assert_eq!(
            wire(&table.site_help_listing()),
            "214-The following SITE commands are recognized:\r\n AAA\r\n HELP\r\n QUOTA\r\n214 Help SITE command successful.\r\n"
        );
        assert!(!wire(&table.help_listing()).contains("AAA"));
    }
}

//! The command table and the command-line parser (RFC 959 §4.1, §5.3).
//!
//! [`BUILTIN`] holds one [`CommandSpec`] per command pyftpdlib 2.2.0's `FTPHandler`
//! knows (its `proto_cmds`): permission letter, whether login is needed, arity and the
//! `HELP` text. A [`CommandTable`] starts from it and lets the embedding program add or
//! remove entries; it is the only source of command metadata. [`parse_line`] splits one
//! CRLF-terminated line into a [`Request`] the way pyftpdlib's `found_terminator` and
//! `pre_process_command` do.

use std::borrow::Cow;
use std::collections::HashMap;

use super::reply::Reply;
use crate::fnv::FnvBuildHasher;

/// How many arguments a command takes (pyftpdlib's `arg` key: `False`/`True`/`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgRule {
    /// No argument allowed (`501 Syntax error: command does not accept arguments.`).
    None,
    /// An argument is needed (`501 Syntax error: command needs an argument.`).
    Required,
    /// The argument may be given or left out.
    Optional,
}

/// Metadata for one command, built in or registered by the embedding program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// Upper-case name as matched after parsing, e.g. `"RETR"` or `"SITE CHMOD"`.
    pub name: Cow<'static, str>,
    /// Permission letter checked against the authorizer (`elr` read, `adfmwMT` write).
    pub perm: Option<char>,
    /// Whether the command needs a logged-in user (`530 Log in with USER and PASS first.`).
    pub auth: bool,
    /// Arity.
    pub arg: ArgRule,
    /// Text for `HELP <name>`, without the leading `"Syntax: "`.
    pub help: Cow<'static, str>,
}

impl CommandSpec {
    /// A spec for a command registered by the embedding program, e.g.
    /// `CommandSpec::new("SITE RMTREE", Some('d'), true, ArgRule::Required,
    /// "SITE RMTREE <SP> path (remove a directory tree).")`.
    pub fn new(
        name: impl Into<String>,
        perm: Option<char>,
        auth: bool,
        arg: ArgRule,
        help: impl Into<String>,
    ) -> CommandSpec {
        CommandSpec {
            name: Cow::Owned(name.into().to_ascii_uppercase()),
            perm,
            auth,
            arg,
            help: Cow::Owned(help.into()),
        }
    }
}

/// The built-in commands: pyftpdlib 2.2.0 `proto_cmds`, including `SITE CHMOD` and
/// `SITE HELP` and excluding the TLS commands (see [`TLS_COMMANDS`]).
#[rustfmt::skip]
pub static BUILTIN: &[CommandSpec] = &[
    spec("ABOR", None, true, ArgRule::None, "ABOR (abort transfer)."),
    spec("ALLO", None, true, ArgRule::Required, "ALLO <SP> bytes (noop; allocate storage)."),
    spec("APPE", Some('a'), true, ArgRule::Required, "APPE <SP> file-name (append data to file)."),
    spec("CDUP", Some('e'), true, ArgRule::None, "CDUP (go to parent directory)."),
    spec("CWD", Some('e'), true, ArgRule::Optional, "CWD [<SP> dir-name] (change working directory)."),
    spec("DELE", Some('d'), true, ArgRule::Required, "DELE <SP> file-name (delete file)."),
    spec("EPRT", None, true, ArgRule::Required, "EPRT <SP> |proto|ip|port| (extended active mode)."),
    spec("EPSV", None, true, ArgRule::Optional, "EPSV [<SP> proto/\"ALL\"] (extended passive mode)."),
    spec("FEAT", None, false, ArgRule::None, "FEAT (list all new features supported)."),
    spec("HELP", None, false, ArgRule::Optional, "HELP [<SP> cmd] (show help)."),
    spec("LIST", Some('l'), true, ArgRule::Optional, "LIST [<SP> path] (list files)."),
    spec("MDTM", Some('l'), true, ArgRule::Required, "MDTM [<SP> path] (file last modification time)."),
    spec("MFMT", Some('T'), true, ArgRule::Required, "MFMT <SP> timeval <SP> path (file update last modification time)."),
    spec("MLSD", Some('l'), true, ArgRule::Optional, "MLSD [<SP> path] (list directory)."),
    spec("MLST", Some('l'), true, ArgRule::Optional, "MLST [<SP> path] (show information about path)."),
    spec("MODE", None, true, ArgRule::Required, "MODE <SP> mode (noop; set data transfer mode)."),
    spec("MKD", Some('m'), true, ArgRule::Required, "MKD <SP> path (create directory)."),
    spec("NLST", Some('l'), true, ArgRule::Optional, "NLST [<SP> path] (list path in a compact form)."),
    spec("NOOP", None, false, ArgRule::None, "NOOP (just do nothing)."),
    spec("OPTS", None, true, ArgRule::Required, "OPTS <SP> cmd [<SP> option] (set option for command)."),
    spec("PASS", None, false, ArgRule::Optional, "PASS [<SP> password] (set user password)."),
    spec("PASV", None, true, ArgRule::None, "PASV (open passive data connection)."),
    spec("PORT", None, true, ArgRule::Required, "PORT <sp> h,h,h,h,p,p (open active data connection)."),
    spec("PWD", None, true, ArgRule::None, "PWD (get current working directory)."),
    spec("QUIT", None, false, ArgRule::None, "QUIT (quit current session)."),
    spec("REIN", None, true, ArgRule::None, "REIN (flush account)."),
    spec("REST", None, true, ArgRule::Required, "REST <SP> offset (set file offset)."),
    spec("RETR", Some('r'), true, ArgRule::Required, "RETR <SP> file-name (retrieve a file)."),
    spec("RMD", Some('d'), true, ArgRule::Required, "RMD <SP> dir-name (remove directory)."),
    spec("RNFR", Some('f'), true, ArgRule::Required, "RNFR <SP> file-name (rename (source name))."),
    spec("RNTO", Some('f'), true, ArgRule::Required, "RNTO <SP> file-name (rename (destination name))."),
    spec("SITE", None, false, ArgRule::Required, "SITE <SP> site-command (execute SITE command)."),
    spec("SITE HELP", None, false, ArgRule::Optional, "SITE HELP [<SP> cmd] (show SITE command help)."),
    spec("SITE CHMOD", Some('M'), true, ArgRule::Required, "SITE CHMOD <SP> mode path (change file mode)."),
    spec("SIZE", Some('l'), true, ArgRule::Required, "SIZE <SP> file-name (get file size)."),
    // STAT needs login only with an argument; gate() special-cases that.
    spec("STAT", Some('l'), false, ArgRule::Optional, "STAT [<SP> path name] (server stats [list files])."),
    spec("STOR", Some('w'), true, ArgRule::Required, "STOR <SP> file-name (store a file)."),
    spec("STOU", Some('w'), true, ArgRule::Optional, "STOU [<SP> name] (store a file with a unique name)."),
    spec("STRU", None, true, ArgRule::Required, "STRU <SP> type (noop; set file structure)."),
    spec("SYST", None, false, ArgRule::None, "SYST (get operating system type)."),
    spec("TYPE", None, true, ArgRule::Required, "TYPE <SP> [A | I] (set transfer type)."),
    spec("USER", None, false, ArgRule::Required, "USER <SP> user-name (set username)."),
    spec("XCUP", Some('e'), true, ArgRule::None, "XCUP (obsolete; go to parent directory)."),
    spec("XCWD", Some('e'), true, ArgRule::Optional, "XCWD [<SP> dir-name] (obsolete; change directory)."),
    spec("XMKD", Some('m'), true, ArgRule::Required, "XMKD <SP> dir-name (obsolete; create directory)."),
    spec("XPWD", None, true, ArgRule::None, "XPWD (obsolete; get current dir)."),
    spec("XRMD", Some('d'), true, ArgRule::Required, "XRMD <SP> dir-name (obsolete; remove directory)."),
];

/// The commands pyftpdlib's `TLS_FTPHandler` adds (RFC 4217), for
/// [`CommandTable::add`] when FTPS is enabled.
#[rustfmt::skip]
pub static TLS_COMMANDS: &[CommandSpec] = &[
    spec("AUTH", None, false, ArgRule::Required, "AUTH <SP> TLS|SSL (set up secure control channel)."),
    spec("PBSZ", None, false, ArgRule::Required, "PBSZ <SP> 0 (negotiate TLS buffer)."),
    spec("PROT", None, false, ArgRule::Required, "PROT <SP> [C|P] (set up un/secure data channel)."),
];

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
    /// upper-cased (ASCII) first, because [`parse_line`] upper-cases what clients send.
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

/// One parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Upper-case command, e.g. `"CWD"` or `"SITE CHMOD"`; may be empty or unknown.
    pub cmd: String,
    /// Everything after the first space, verbatim (`None` when there was no space).
    /// `Some("")` counts as "no argument" for the arity checks.
    pub arg: Option<String>,
}

impl Request {
    /// The argument if one was given and it is not empty.
    pub fn arg_nonempty(&self) -> Option<&str> {
        self.arg.as_deref().filter(|a| !a.is_empty())
    }
}

/// Parses one command line, given without its CRLF terminator.
///
/// Bytes that are not UTF-8 become U+FFFD. The command is the text before the first
/// space, ASCII upper-cased; the argument is the rest, untrimmed (RFC 959 §5.3.2 allows
/// exactly one `<SP>`; `CWD  sub` means `" sub"`). `SITE <word> …` becomes the command
/// `SITE <WORD>`. An unknown command ending in `ABOR`, `STAT` or `QUIT` is taken as that
/// command, tolerating clients that prefix Telnet IP/Synch bytes in-band
/// (RFC 959 §4.1.3).
///
/// ```
/// use ftpdlib::proto::{parse_line, CommandTable};
/// let table = CommandTable::builtin();
/// let req = parse_line(b"site chmod 755 f", &table);
/// assert_eq!(req.cmd, "SITE CHMOD");
/// assert_eq!(req.arg.as_deref(), Some("755 f"));
/// ```
pub fn parse_line(line: &[u8], table: &CommandTable) -> Request {
    let text = line_text(line);
    let parsed = ParsedLine::parse(&text, table);
    Request {
        cmd: parsed.cmd.into_owned(),
        arg: parsed.arg.map(str::to_owned),
    }
}

/// A command line as text: bytes that are not UTF-8 become U+FFFD. Valid UTF-8 (nearly
/// every line) is checked on `from_utf8`'s fast path and borrowed.
pub(crate) fn line_text(line: &[u8]) -> Cow<'_, str> {
    std::str::from_utf8(line).map_or_else(|_| String::from_utf8_lossy(line), Cow::Borrowed)
}

/// [`parse_line`]'s result borrowing from the line: the session's parse, which allocates
/// only for a command that was not sent in upper case.
#[derive(Debug)]
pub(crate) struct ParsedLine<'a> {
    pub(crate) cmd: Cow<'a, str>,
    pub(crate) arg: Option<&'a str>,
}

impl<'a> ParsedLine<'a> {
    /// [`parse_line`] of a line already decoded to text.
    pub(crate) fn parse(line: &'a str, table: &CommandTable) -> ParsedLine<'a> {
        let (mut cmd, mut arg) = split_word(line);

        if cmd == "SITE" {
            if let Some(rest) = arg.filter(|a| !a.is_empty()) {
                let (sub, sub_arg) = split_word(rest);
                cmd = Cow::Owned(format!("{SITE_PREFIX}{sub}"));
                arg = sub_arg;
            }
        }

        if table.lookup(&cmd).is_none() {
            // pyftpdlib takes `cmd[-4:]`: the last four characters, not bytes.
            let tail_start = cmd.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
            let tail = &cmd[tail_start..];
            if let Some(special) = TELNET_TOLERANT.iter().find(|s| **s == tail) {
                cmd = Cow::Borrowed(*special);
            }
        }

        ParsedLine { cmd, arg }
    }
}

/// Splits at the first single space: (upper-cased word, rest verbatim).
fn split_word(text: &str) -> (Cow<'_, str>, Option<&str>) {
    // A plain scan: lines are short, shorter than a substring searcher's setup.
    let (word, rest) = match text.bytes().position(|b| b == b' ') {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let word = if word.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(word.to_ascii_uppercase())
    } else {
        Cow::Borrowed(word)
    };
    (word, rest)
}

const fn spec(
    name: &'static str,
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
    }
}

/// Prefix of the two-word `SITE` commands in the table.
const SITE_PREFIX: &str = "SITE ";

/// Commands recognised by their last four characters (Telnet IP/Synch prefixes).
const TELNET_TOLERANT: [&str; 3] = ["ABOR", "STAT", "QUIT"];

/// Names per line in the `HELP` listing.
const HELP_NAMES_PER_LINE: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Request {
        parse_line(line.as_bytes(), &CommandTable::builtin())
    }

    fn req(cmd: &str, arg: Option<&str>) -> Request {
        Request {
            cmd: cmd.to_owned(),
            arg: arg.map(str::to_owned),
        }
    }

    fn wire(r: &Reply) -> String {
        let mut out = Vec::new();
        r.write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    // --- parse_line (RFC 959 §5.3: <command> [<SP> <argument>])

    #[test]
    fn plain_command_no_arg() {
        assert_eq!(parse("NOOP"), req("NOOP", None));
    }

    #[test]
    fn lowercase_command_upper_cased() {
        assert_eq!(parse("retr file.txt"), req("RETR", Some("file.txt")));
        assert_eq!(parse("Pwd"), req("PWD", None));
    }

    #[test]
    fn session_parse_borrows_an_upper_case_line() {
        let table = CommandTable::builtin();
        let parsed = ParsedLine::parse("USER alice", &table);
        assert!(matches!(parsed.cmd, Cow::Borrowed("USER")));
        assert_eq!(parsed.arg, Some("alice"));
        let parsed = ParsedLine::parse("user alice", &table);
        assert!(matches!(parsed.cmd, Cow::Owned(ref c) if c == "USER"));
        let parsed = ParsedLine::parse("site chmod 755 f", &table);
        assert_eq!(
            (parsed.cmd.as_ref(), parsed.arg),
            ("SITE CHMOD", Some("755 f"))
        );
    }

    #[test]
    fn arg_not_upper_cased() {
        assert_eq!(parse("USER Alice"), req("USER", Some("Alice")));
    }

    #[test]
    fn arg_kept_verbatim_with_extra_spaces() {
        assert_eq!(parse("CWD  sub"), req("CWD", Some(" sub")));
        assert_eq!(parse("STOR a b  "), req("STOR", Some("a b  ")));
    }

    #[test]
    fn trailing_space_gives_empty_arg() {
        assert_eq!(parse("CWD "), req("CWD", Some("")));
        assert_eq!(parse("CWD ").arg_nonempty(), None);
    }

    #[test]
    fn arg_nonempty_returns_text() {
        assert_eq!(parse("CWD x").arg_nonempty(), Some("x"));
        assert_eq!(parse("CWD").arg_nonempty(), None);
    }

    #[test]
    fn tab_is_not_a_separator() {
        assert_eq!(parse("CWD\tsub"), req("CWD\tSUB", None));
    }

    #[test]
    fn empty_line() {
        assert_eq!(parse(""), req("", None));
    }

    #[test]
    fn leading_space_means_empty_command() {
        assert_eq!(parse(" NOOP"), req("", Some("NOOP")));
    }

    #[test]
    fn bare_lf_stays_in_command() {
        assert_eq!(parse("NOOP\n"), req("NOOP\n", None));
    }

    #[test]
    fn invalid_utf8_replaced() {
        let table = CommandTable::builtin();
        let r = parse_line(b"MKD \xe9t\xe9", &table);
        assert_eq!(r, req("MKD", Some("\u{FFFD}t\u{FFFD}")));
    }

    #[test]
    fn non_ascii_command_not_unicode_upper_cased() {
        assert_eq!(parse("é x"), req("é", Some("x")));
    }

    #[test]
    fn site_subcommand() {
        assert_eq!(parse("SITE CHMOD 755 f"), req("SITE CHMOD", Some("755 f")));
    }

    #[test]
    fn site_lowercase() {
        assert_eq!(parse("site chmod 755 f"), req("SITE CHMOD", Some("755 f")));
    }

    #[test]
    fn site_help_no_arg() {
        assert_eq!(parse("SITE help"), req("SITE HELP", None));
    }

    #[test]
    fn site_help_with_arg() {
        assert_eq!(parse("SITE HELP chmod"), req("SITE HELP", Some("chmod")));
    }

    #[test]
    fn site_sub_trailing_space() {
        assert_eq!(parse("SITE HELP "), req("SITE HELP", Some("")));
    }

    #[test]
    fn site_alone() {
        assert_eq!(parse("SITE"), req("SITE", None));
        assert_eq!(parse("SITE "), req("SITE", Some("")));
    }

    #[test]
    fn site_unknown_sub() {
        assert_eq!(parse("SITE foo bar"), req("SITE FOO", Some("bar")));
    }

    #[test]
    fn site_double_space_gives_empty_word() {
        // Like pyftpdlib: "SITE  chmod" is the (unknown) command "SITE ".
        assert_eq!(parse("SITE  chmod"), req("SITE ", Some("chmod")));
    }

    #[test]
    fn site_chmod_arg_verbatim() {
        assert_eq!(
            parse("SITE CHMOD  755 f"),
            req("SITE CHMOD", Some(" 755 f"))
        );
    }

    #[test]
    fn telnet_prefixed_abor() {
        // IAC IP IAC DM sent in-band before ABOR (RFC 959 §4.1.3).
        let table = CommandTable::builtin();
        let r = parse_line(b"\xff\xf4\xff\xf2ABOR", &table);
        assert_eq!(r, req("ABOR", None));
    }

    #[test]
    fn telnet_prefixed_stat_and_quit() {
        assert_eq!(parse("xxSTAT"), req("STAT", None));
        assert_eq!(parse("\u{FFFD}quit"), req("QUIT", None));
        assert_eq!(parse("XXSTAT /tmp"), req("STAT", Some("/tmp")));
    }

    #[test]
    fn telnet_tolerance_counts_chars() {
        // Multi-byte characters right before the tail must not split a char.
        assert_eq!(parse("ééABOR"), req("ABOR", None));
        assert_eq!(parse("éé"), req("éé", None));
        assert_eq!(parse("BOR"), req("BOR", None));
    }

    #[test]
    fn telnet_tolerance_only_for_unknown() {
        assert_eq!(parse("XABORT"), req("XABORT", None));
        assert_eq!(parse("RETR"), req("RETR", None));
    }

    #[test]
    fn site_with_stat_tail_becomes_stat() {
        // pyftpdlib applies the tail rule after the SITE rewrite.
        assert_eq!(parse("SITE xstat"), req("STAT", None));
    }

    #[test]
    fn removed_command_is_not_found() {
        let mut table = CommandTable::builtin();
        table.remove("pasv");
        assert!(table.lookup("PASV").is_none());
        assert_eq!(parse_line(b"PASV", &table), req("PASV", None));
    }

    // --- table

    #[test]
    fn builtin_has_all_rows() {
        let table = CommandTable::builtin();
        assert_eq!(table.iter().count(), 47);
        assert_eq!(BUILTIN.len(), 47);
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
        assert_eq!(chmod.arg, ArgRule::Required);
        let stat = table.lookup("STAT").unwrap();
        assert_eq!(
            (stat.perm, stat.auth, stat.arg),
            (Some('l'), false, ArgRule::Optional)
        );
        let opts = table.lookup("OPTS").unwrap();
        assert!(opts.auth);
        let mfmt = table.lookup("MFMT").unwrap();
        assert_eq!(mfmt.perm, Some('T'));
        let stou = table.lookup("STOU").unwrap();
        assert_eq!((stou.perm, stou.arg), (Some('w'), ArgRule::Optional));
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
        table.add(CommandSpec {
            name: "site foo".into(),
            perm: None,
            auth: true,
            arg: ArgRule::None,
            help: "SITE FOO (custom).".into(),
        });
        assert_eq!(table.lookup("SITE FOO").unwrap().name, "SITE FOO");
        table.add(CommandSpec {
            name: "NOOP".into(),
            perm: None,
            auth: true,
            arg: ArgRule::None,
            help: "NOOP (custom).".into(),
        });
        assert!(table.lookup("NOOP").unwrap().auth);
        assert_eq!(table.iter().count(), 48);
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
        assert_eq!(table.iter().count(), 50);
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
            \x20FEAT   HELP   LIST   MDTM   MFMT   MKD    MLSD   MLST  \r\n\
            \x20MODE   NLST   NOOP   OPTS   PASS   PASV   PORT   PWD   \r\n\
            \x20QUIT   REIN   REST   RETR   RMD    RNFR   RNTO   SITE  \r\n\
            \x20SIZE   STAT   STOR   STOU   STRU   SYST   TYPE   USER  \r\n\
            \x20XCUP   XCWD   XMKD   XPWD   XRMD  \r\n\
            214 Help command successful.\r\n";
        assert_eq!(wire(&CommandTable::builtin().help_listing()), expected);
    }

    #[test]
    fn help_listing_long_name_not_truncated() {
        let mut table = CommandTable::builtin();
        for name in BUILTIN.iter().map(|s| s.name.clone()) {
            table.remove(&name);
        }
        table.add(CommandSpec {
            name: "LONGNAME".into(),
            perm: None,
            auth: false,
            arg: ArgRule::None,
            help: "x".into(),
        });
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
            "214-The following SITE commands are recognized:\r\n CHMOD\r\n HELP\r\n214 Help SITE command successful.\r\n"
        );
    }

    #[test]
    fn site_help_listing_includes_user_commands() {
        let mut table = CommandTable::builtin();
        table.add(CommandSpec {
            name: "SITE AAA".into(),
            perm: None,
            auth: true,
            arg: ArgRule::None,
            help: "SITE AAA (test).".into(),
        });
        table.remove("SITE CHMOD");
        assert_eq!(
            wire(&table.site_help_listing()),
            "214-The following SITE commands are recognized:\r\n AAA\r\n HELP\r\n214 Help SITE command successful.\r\n"
        );
        assert!(!wire(&table.help_listing()).contains("AAA"));
    }
}

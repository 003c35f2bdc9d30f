//! The gate every command line passes before it runs (RFC 959 §5.4): the one place that
//! answers the refusals that need no filesystem.
//!
//! In pyftpdlib's order (`pre_process_command`): 500 (unknown command), 501 (wrong
//! arity), 530 (not logged in); then ours: 502 (listed but without a body), the FTPS
//! requirements (550), and the sequence rules of the one-shot state (503 for RNTO not
//! right after RNFR, 450 for APPE / STOU while a REST is pending). Path containment and
//! permission checks (550) come after it, in the session's resolver, which owns the
//! filesystem and the authorizer.

use std::path::PathBuf;

use super::command::{Action, ArgRule, Arity, CommandSpec, CommandTable, TlsNeed, Verb};
use super::parse::Request;
use super::reply::Reply;

/// What the gate knows of a session besides its one-shot state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionGate {
    /// A user is logged in.
    pub logged_in: bool,
    /// The server requires TLS on the control connection and it is not there yet.
    pub control_tls_missing: bool,
    /// The server requires `PROT P` for data connections and it is not set.
    pub data_tls_missing: bool,
}

/// The one-shot state a command leaves for the next one (RFC 959 §4.1.3: REST and RNFR
/// must be followed by the command that uses them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pending {
    /// Nothing pending.
    #[default]
    Nothing,
    /// `REST <offset>`: where the next RETR or STOR starts. The data connection may be
    /// set up in between (PASV, EPSV, PORT, EPRT), as clients do.
    RestartAt(u64),
    /// `RNFR <path>`: the real path the next command, RNTO, renames.
    RenameFrom(PathBuf),
    /// `RANG <start> <end>`: the bytes (`end` included) the next HASH covers. Like a REST
    /// offset it stays until HASH uses it; a REST replaces it and it replaces a REST.
    Range {
        /// The first byte.
        start: u64,
        /// The last byte.
        end: u64,
    },
}

/// Checks `req` against `table` for a session that is logged in or not.
///
/// In order: unknown command → `500 Command "<CMD>" not understood.`; a required
/// argument missing (or empty) → `501 Syntax error: command needs an argument.`; an
/// argument to a command taking none → `501 Syntax error: command does not accept
/// arguments.`; logged out and the command needs login (or is `STAT` with an argument)
/// → `530 Log in with USER and PASS first.`; a command without a body → `502`; RNTO
/// (no RNFR before it here) → `503`.
///
/// # Errors
///
/// Returns the reply to send instead of running the command.
///
/// ```
/// use ftpdlib::proto::{gate, parse_line, CommandTable};
/// let table = CommandTable::builtin();
/// let req = parse_line(b"RETR f", &table);
/// assert_eq!(gate(&table, &req, false).unwrap_err().code, 530);
/// assert_eq!(gate(&table, &req, true).unwrap().name, "RETR");
/// ```
pub fn gate<'t>(
    table: &'t CommandTable,
    req: &Request,
    logged_in: bool,
) -> Result<&'t CommandSpec, Reply> {
    let session = SessionGate {
        logged_in,
        ..SessionGate::default()
    };
    gate_parts(
        table,
        &req.cmd,
        req.arg.as_deref(),
        session,
        &mut Pending::Nothing,
    )
}

/// [`gate`] of a command and argument given as parts, for a session in the state
/// `session` with the one-shot state `pending`. `pending` is cleared unless the command
/// uses it (a REST offset stays until a transfer uses it, see `PendingUse::apply`).
pub(crate) fn gate_parts<'t>(
    table: &'t CommandTable,
    cmd: &str,
    arg: Option<&str>,
    session: SessionGate,
    pending: &mut Pending,
) -> Result<&'t CommandSpec, Reply> {
    let Some(spec) = table.lookup(cmd) else {
        PendingUse::None.apply(pending);
        return Err(Reply::new(
            500,
            format!("Command \"{cmd}\" not understood."),
        ));
    };
    let verb = match spec.action {
        Action::Builtin(verb) => Some(verb),
        Action::Custom(_) | Action::Unimplemented => None,
    };
    let usage = verb.map_or(PendingUse::None, Verb::pending_use);
    usage.apply(pending);
    // pyftpdlib tests truthiness, so an empty argument ("CWD ") counts as none.
    let has_arg = arg.is_some_and(|a| !a.is_empty());
    match spec.arg.arity() {
        Arity::Required if !has_arg => {
            return Err(Reply::new(501, "Syntax error: command needs an argument."));
        }
        Arity::None if has_arg => {
            return Err(Reply::new(
                501,
                "Syntax error: command does not accept arguments.",
            ));
        }
        Arity::Required | Arity::None | Arity::Optional => {}
    }
    // STAT without an argument is server status, open to everyone; with one it lists
    // files, which needs a login.
    let needs_login = spec.auth || (spec.arg == ArgRule::StatusOrPath && has_arg);
    if !session.logged_in && needs_login {
        return Err(Reply::new(530, "Log in with USER and PASS first."));
    }
    if spec.action == Action::Unimplemented {
        return Err(Reply::new(
            502,
            format!("Command \"{}\" not implemented.", spec.name),
        ));
    }
    match spec.tls {
        TlsNeed::Control if session.control_tls_missing => {
            return Err(Reply::new(550, "SSL/TLS required on the control channel."));
        }
        TlsNeed::Data if session.data_tls_missing => {
            return Err(Reply::new(550, "SSL/TLS required on the data channel."));
        }
        TlsNeed::None | TlsNeed::Control | TlsNeed::Data => {}
    }
    match (usage, &*pending) {
        (PendingUse::Rename, Pending::RenameFrom(_)) => {}
        (PendingUse::Rename, Pending::Nothing | Pending::RestartAt(_) | Pending::Range { .. }) => {
            return Err(Reply::new(503, "Bad sequence of commands: use RNFR first."));
        }
        // The REST stays pending, as in pyftpdlib.
        (PendingUse::RefuseRestart, Pending::RestartAt(_)) => {
            return Err(Reply::new(
                450,
                format!("Can't {} while REST request is pending.", spec.name),
            ));
        }
        (
            PendingUse::None | PendingUse::Restart | PendingUse::RefuseRestart,
            Pending::Nothing
            | Pending::RestartAt(_)
            | Pending::RenameFrom(_)
            | Pending::Range { .. },
        ) => {}
    }
    Ok(spec)
}

/// How a command uses the one-shot state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PendingUse {
    /// It does not.
    None,
    /// RNTO: needs an RNFR right before it.
    Rename,
    /// RETR, STOR: start at a pending REST offset.
    Restart,
    /// APPE, STOU: refused while a REST is pending, which stays.
    RefuseRestart,
}

impl PendingUse {
    /// Drops what this command does not use: an RNFR is for the very next command
    /// (RFC 959 §4.1.3: RNTO must follow it, else 503). A REST offset stays until a
    /// transfer uses it, as in pyftpdlib: clients send SIZE, MDTM, TYPE or PASV between
    /// REST and RETR, and a dropped offset would resend a file from its start into the
    /// client's partial copy.
    fn apply(self, pending: &mut Pending) {
        match (self, &*pending) {
            (PendingUse::Rename, Pending::RenameFrom(_))
            | (_, Pending::Nothing | Pending::RestartAt(_) | Pending::Range { .. }) => {}
            (
                PendingUse::None | PendingUse::Restart | PendingUse::RefuseRestart,
                Pending::RenameFrom(_),
            ) => *pending = Pending::Nothing,
        }
    }
}

impl Verb {
    fn pending_use(self) -> PendingUse {
        match self {
            Verb::Rnto => PendingUse::Rename,
            Verb::Retr | Verb::Stor => PendingUse::Restart,
            Verb::Appe | Verb::Stou => PendingUse::RefuseRestart,
            // Every other command leaves a REST offset alone and drops an RNFR, so a new
            // command needs no arm here.
            _ => PendingUse::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::parse::parse_line;

    fn run(line: &str, logged_in: bool) -> Result<String, String> {
        let table = CommandTable::builtin();
        let req = parse_line(line.as_bytes(), &table);
        match gate(&table, &req, logged_in) {
            Ok(spec) => Ok(spec.name.to_string()),
            Err(reply) => {
                let mut out = Vec::new();
                reply.write_to(&mut out);
                Err(String::from_utf8(out).unwrap())
            }
        }
    }

    const NEEDS_ARG: &str = "501 Syntax error: command needs an argument.\r\n";
    const NO_ARGS: &str = "501 Syntax error: command does not accept arguments.\r\n";
    const LOGIN: &str = "530 Log in with USER and PASS first.\r\n";

    #[test]
    fn unknown_command() {
        assert_eq!(
            run("XYZZY", true),
            Err("500 Command \"XYZZY\" not understood.\r\n".into())
        );
    }

    #[test]
    fn unknown_command_upper_cased_in_reply() {
        assert_eq!(
            run("xyzzy arg", false),
            Err("500 Command \"XYZZY\" not understood.\r\n".into())
        );
    }

    #[test]
    fn empty_command() {
        assert_eq!(
            run("", false),
            Err("500 Command \"\" not understood.\r\n".into())
        );
    }

    #[test]
    fn unknown_site_command() {
        assert_eq!(
            run("SITE foo", true),
            Err("500 Command \"SITE FOO\" not understood.\r\n".into())
        );
    }

    #[test]
    fn bare_lf_is_not_echoed_raw() {
        // pyftpdlib echoed the LF raw; on the wire it becomes a space.
        assert_eq!(
            run("NOOP\n", true),
            Err("500 Command \"NOOP \" not understood.\r\n".into())
        );
    }

    #[test]
    fn unknown_beats_login() {
        assert!(run("ACCT x", false).unwrap_err().starts_with("500 "));
    }

    #[test]
    fn missing_arg() {
        assert_eq!(run("RETR", true), Err(NEEDS_ARG.into()));
    }

    #[test]
    fn empty_arg_counts_as_missing() {
        assert_eq!(run("RETR ", true), Err(NEEDS_ARG.into()));
    }

    #[test]
    fn missing_arg_checked_before_login() {
        assert_eq!(run("RETR", false), Err(NEEDS_ARG.into()));
        assert_eq!(run("USER", false), Err(NEEDS_ARG.into()));
    }

    #[test]
    fn site_without_arg() {
        assert_eq!(run("SITE", false), Err(NEEDS_ARG.into()));
    }

    #[test]
    fn unexpected_arg() {
        assert_eq!(run("PWD x", true), Err(NO_ARGS.into()));
        assert_eq!(run("NOOP x", false), Err(NO_ARGS.into()));
    }

    #[test]
    fn unexpected_arg_checked_before_login() {
        assert_eq!(run("PASV x", false), Err(NO_ARGS.into()));
    }

    #[test]
    fn empty_arg_to_no_arg_command_is_fine() {
        assert_eq!(run("NOOP ", false), Ok("NOOP".into()));
        assert_eq!(run("PWD ", true), Ok("PWD".into()));
    }

    #[test]
    fn optional_arg_either_way() {
        assert_eq!(run("CWD", true), Ok("CWD".into()));
        assert_eq!(run("CWD ", true), Ok("CWD".into()));
        assert_eq!(run("CWD /x", true), Ok("CWD".into()));
    }

    #[test]
    fn needs_login() {
        assert_eq!(run("RETR f", false), Err(LOGIN.into()));
        assert_eq!(run("PWD", false), Err(LOGIN.into()));
        assert_eq!(run("OPTS UTF8 ON", false), Err(LOGIN.into()));
        assert_eq!(run("SITE CHMOD 755 f", false), Err(LOGIN.into()));
    }

    #[test]
    fn open_before_login() {
        for line in [
            "USER a",
            "PASS",
            "PASS x",
            "QUIT",
            "NOOP",
            "SYST",
            "FEAT",
            "HELP",
            "HELP RETR",
            "SITE HELP",
            "STAT",
        ] {
            assert_eq!(run(line, false).map(|_| ()), Ok(()), "{line}");
        }
    }

    #[test]
    fn stat_with_arg_needs_login() {
        assert_eq!(run("STAT /", false), Err(LOGIN.into()));
        assert_eq!(run("STAT /", true), Ok("STAT".into()));
    }

    #[test]
    fn stat_with_empty_arg_is_status() {
        assert_eq!(run("STAT ", false), Ok("STAT".into()));
    }

    #[test]
    fn telnet_abor_reaches_login_check() {
        assert_eq!(run("\u{FFFD}\u{FFFD}ABOR", false), Err(LOGIN.into()));
        assert_eq!(run("\u{FFFD}\u{FFFD}ABOR", true), Ok("ABOR".into()));
    }

    #[test]
    fn logged_in_passes() {
        assert_eq!(run("SITE CHMOD 755 f", true), Ok("SITE CHMOD".into()));
        assert_eq!(run("type i", true), Ok("TYPE".into()));
    }

    #[test]
    fn user_command_gated() {
        let mut table = CommandTable::builtin();
        table.add(
            CommandSpec::new("SITE PING", None, false, ArgRule::None, "SITE PING (test).")
                .action(Action::Custom(0)),
        );
        let req = parse_line(b"site ping", &table);
        assert_eq!(
            gate(&table, &req, false).map(|s| s.name.as_ref()),
            Ok("SITE PING")
        );
        let req = parse_line(b"site ping x", &table);
        assert_eq!(gate(&table, &req, false).unwrap_err().code, 501);
    }

    #[test]
    fn removed_command_is_500() {
        let mut table = CommandTable::builtin();
        table.remove("EPSV");
        let req = parse_line(b"EPSV", &table);
        assert_eq!(
            gate(&table, &req, true),
            Err(Reply::new(500, "Command \"EPSV\" not understood."))
        );
    }

    fn run_with(line: &str, session: SessionGate, pending: &mut Pending) -> Result<String, u16> {
        let table = CommandTable::builtin();
        let req = parse_line(line.as_bytes(), &table);
        gate_parts(&table, &req.cmd, req.arg.as_deref(), session, pending)
            .map(|spec| spec.name.to_string())
            .map_err(|reply| reply.code)
    }

    const IN: SessionGate = SessionGate {
        logged_in: true,
        control_tls_missing: false,
        data_tls_missing: false,
    };

    // RFC 959 §4.1.3: RNTO must come right after RNFR.
    #[test]
    fn rnto_needs_an_rnfr_right_before_it() {
        let mut pending = Pending::Nothing;
        assert_eq!(run_with("RNTO x", IN, &mut pending), Err(503));
        pending = Pending::RenameFrom("/a".into());
        assert_eq!(run_with("RNTO x", IN, &mut pending), Ok("RNTO".into()));
        assert_eq!(
            pending,
            Pending::RenameFrom("/a".into()),
            "the body takes it"
        );
        for between in ["PWD", "NOOP", "TYPE I", "XYZZY", "RETR f"] {
            pending = Pending::RenameFrom("/a".into());
            let _ = run_with(between, IN, &mut pending);
            assert_eq!(pending, Pending::Nothing, "{between}");
            assert_eq!(run_with("RNTO x", IN, &mut pending), Err(503), "{between}");
        }
    }

    #[test]
    fn a_rest_offset_waits_for_its_transfer() {
        for between in [
            "SIZE f", "MDTM f", "TYPE I", "PASV", "EPSV", "NOOP", "XYZZY",
        ] {
            let mut pending = Pending::RestartAt(5);
            let _ = run_with(between, IN, &mut pending);
            assert_eq!(pending, Pending::RestartAt(5), "{between}");
        }
        let mut pending = Pending::RestartAt(5);
        assert_eq!(run_with("RETR f", IN, &mut pending), Ok("RETR".into()));
        assert_eq!(run_with("APPE f", IN, &mut pending), Err(450));
        assert_eq!(run_with("STOU", IN, &mut pending), Err(450));
        assert_eq!(pending, Pending::RestartAt(5), "a refused APPE keeps it");
    }

    #[test]
    fn tls_requirements_come_after_the_login_check() {
        let control = SessionGate {
            control_tls_missing: true,
            ..SessionGate::default()
        };
        let mut p = Pending::Nothing;
        assert_eq!(run_with("USER a", control, &mut p), Err(550));
        assert_eq!(run_with("PASS a", control, &mut p), Err(550));
        assert_eq!(run_with("NOOP", control, &mut p), Ok("NOOP".into()));
        let data = SessionGate {
            data_tls_missing: true,
            ..IN
        };
        for line in [
            "PASV",
            "EPSV",
            "PORT 127,0,0,1,4,1",
            "EPRT |1|127.0.0.1|1025|",
        ] {
            assert_eq!(run_with(line, data, &mut p), Err(550), "{line}");
        }
        assert_eq!(
            run_with(
                "PASV",
                SessionGate {
                    logged_in: false,
                    ..data
                },
                &mut p
            ),
            Err(530)
        );
        assert_eq!(run_with("RETR f", data, &mut p), Ok("RETR".into()));
    }

    #[test]
    fn a_listed_command_without_a_body_is_502() {
        let mut table = CommandTable::builtin();
        table.add(CommandSpec::new(
            "SITE NOBODY",
            None,
            true,
            ArgRule::None,
            "x",
        ));
        let req = parse_line(b"SITE NOBODY", &table);
        assert_eq!(gate(&table, &req, false).unwrap_err().code, 530);
        let reply = gate(&table, &req, true).unwrap_err();
        assert_eq!(
            reply,
            Reply::new(502, "Command \"SITE NOBODY\" not implemented.")
        );
    }
}

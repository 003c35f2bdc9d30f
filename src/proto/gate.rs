//! The syntax and login gate every command line passes before it runs (RFC 959 §5.4).
//!
//! This is the one place that answers 500 (unknown command), 501 (wrong arity) and
//! 530 (not logged in), in pyftpdlib's order (`pre_process_command`). Path containment
//! and permission checks (550) come after it, in the session code that owns the
//! filesystem and authorizer.

use super::command::{ArgRule, CommandSpec, CommandTable, Request};
use super::reply::Reply;

/// Checks `req` against `table` and the login state.
///
/// In order: unknown command → `500 Command "<CMD>" not understood.`; a required
/// argument missing (or empty) → `501 Syntax error: command needs an argument.`; an
/// argument to a command taking none → `501 Syntax error: command does not accept
/// arguments.`; logged out and the command needs login (or is `STAT` with an argument)
/// → `530 Log in with USER and PASS first.`.
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
    gate_parts(table, &req.cmd, req.arg.as_deref(), logged_in)
}

/// [`gate`] of a command and argument given as parts.
pub(crate) fn gate_parts<'t>(
    table: &'t CommandTable,
    cmd: &str,
    arg: Option<&str>,
    logged_in: bool,
) -> Result<&'t CommandSpec, Reply> {
    let Some(spec) = table.lookup(cmd) else {
        return Err(Reply::new(
            500,
            format!("Command \"{cmd}\" not understood."),
        ));
    };
    // pyftpdlib tests truthiness, so an empty argument ("CWD ") counts as none.
    let has_arg = arg.is_some_and(|a| !a.is_empty());
    match spec.arg {
        ArgRule::Required if !has_arg => {
            return Err(Reply::new(501, "Syntax error: command needs an argument."));
        }
        ArgRule::None if has_arg => {
            return Err(Reply::new(
                501,
                "Syntax error: command does not accept arguments.",
            ));
        }
        ArgRule::Required | ArgRule::None | ArgRule::Optional => {}
    }
    // STAT without an argument is server status, open to everyone; with one it lists
    // files, which needs a login.
    if !logged_in && (spec.auth || (spec.name == "STAT" && has_arg)) {
        return Err(Reply::new(530, "Log in with USER and PASS first."));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::command::parse_line;

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
        table.add(crate::proto::command::CommandSpec {
            name: "SITE PING".into(),
            perm: None,
            auth: false,
            arg: ArgRule::None,
            help: "SITE PING (test).".into(),
        });
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
}

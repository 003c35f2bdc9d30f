//! Reading the command line with the rules of Python's argparse (as Python 3.11 applies
//! them to `python -m pyftpdlib`), over the options clap knows ([`crate::cli::Cli`]):
//!
//! - `-p 21`, `-p21`, `-p=21`, `--port 21`, `--port=21`;
//! - switches grouped behind one dash (`-wD`), the group may end in an option that takes a
//!   value (`-wp21`, `-wp 21`);
//! - a long option may be shortened to any prefix that names only it (`--por 21`); an
//!   exact name wins over the longer ones it begins (`--write` vs `--write-limit`), and a
//!   prefix of several is an error naming them;
//! - the argument after an option is its value unless it looks like an option: a
//!   leading `-` makes it one, except in a negative number (`-1`, `-.5`) or with a space;
//! - an option given twice: the last one wins;
//! - `--` ends the options; it and what follows are positional, and so refused, as every
//!   positional argument is (`unrecognized arguments: ...`), after every other error.
//!
//! clap's own reading differs in these points (what a value is, `-wx`, `--`, prefixes of
//! several options, one unknown argument at a time), so a first pass sorts the arguments
//! out as argparse does and hands clap each option spelled in full, with its value
//! attached (`--port=21`). clap then converts the values, reads the environment, applies
//! the defaults, and reports errors in command-line order; [`exit`] words them as argparse
//! does: the usage line, then `ftpdlib: error: MESSAGE`, on standard error, exit status 2.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

use crate::cli::{argparse_name, Cli};

/// Why a parse ended without a command line to run.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Text for standard output, then exit status 0 (`--help`, `--version`).
    Print(String),
    /// An error message; shown after the usage line, exit status 2.
    Error(String),
    /// An error that is not the command line's (the config file's): `ftpdlib: MESSAGE`,
    /// without the usage line, exit status 2.
    Fail(String),
}

/// Parses the arguments after the program's name (and the `FTPDLIB_*` environment).
pub fn parse(args: &[OsString]) -> Result<Cli, Exit> {
    let mut cmd = Cli::command();
    let options = Options::new(&cmd);
    let (tokens, extras) = options.sort_out(args)?;
    let argv = std::iter::once(OsString::from(PROG)).chain(tokens.iter().cloned());
    let matches = cmd
        .try_get_matches_from_mut(argv)
        .map_err(|e| clap_exit(&cmd, &e, &tokens))?;
    if !extras.is_empty() {
        return Err(unrecognized(&mut cmd, &extras));
    }
    match matches.get_one::<PathBuf>("config") {
        None => Cli::from_arg_matches(&matches).map_err(|e| clap_exit(&cmd, &e, &tokens)),
        Some(path) => with_config_file(&mut cmd, &matches, path, &tokens),
    }
}

/// The parse again, with the options of the file at `path` before the command line's
/// `tokens`, and only those neither the command line nor the environment sets (in
/// `matches`): clap reads a variable only for an option absent from the arguments.
fn with_config_file(
    cmd: &mut clap::Command,
    matches: &clap::ArgMatches,
    path: &Path,
    tokens: &[OsString],
) -> Result<Cli, Exit> {
    let file = crate::config_file::read(path, cmd).map_err(Exit::Fail)?;
    let given = |id: &str| {
        matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    let from_file = file.options.iter().filter(|(id, _)| !given(id));
    let argv = std::iter::once(OsString::from(PROG))
        .chain(from_file.map(|(_, arg)| arg.clone()))
        .chain(tokens.iter().cloned());
    let matches = cmd
        .try_get_matches_from_mut(argv)
        .map_err(|e| clap_exit(cmd, &e, tokens))?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| clap_exit(cmd, &e, tokens))?;
    cli.users = file.users;
    cli.file_virtual_hosts = file.virtual_hosts;
    Ok(cli)
}

/// Shows `exit` as argparse does and gives the exit status: 0 after `Print`, 2 after an
/// error.
pub fn exit(exit: Exit) -> ExitCode {
    // Write errors (a closed pipe) are ignored: there is nothing left to tell.
    match exit {
        Exit::Print(text) => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Exit::Error(message) => {
            let text = format!("usage: {USAGE}\n{PROG}: error: {message}\n");
            let _ = std::io::stderr().write_all(text.as_bytes());
            ExitCode::from(2)
        }
        Exit::Fail(message) => {
            let _ = std::io::stderr().write_all(format!("{PROG}: {message}\n").as_bytes());
            ExitCode::from(2)
        }
    }
}

/// `s` quoted as Python's `repr()` quotes a string (`'x'`, `"it's"`); a byte that is not
/// UTF-8 shows as `\xNN`.
pub fn repr(s: &OsStr) -> String {
    let bytes = s.as_bytes();
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push(quote);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if c == quote => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_control() || (c.is_whitespace() && c != ' ') => {
                    let _ = match u32::from(c) {
                        n @ 0..=0xff => write!(out, "\\x{n:02x}"),
                        n @ 0..=0xffff => write!(out, "\\u{n:04x}"),
                        n => write!(out, "\\U{n:08x}"),
                    };
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push(quote);
    out
}

/// One option as the first pass needs it.
struct Opt {
    long: String,
    short: Option<u8>,
    takes_value: bool,
}

/// What an argument is, as argparse decides before it takes any of them.
#[derive(Clone, Copy)]
enum Kind<'a> {
    /// A value, or a positional argument.
    Plain,
    /// `--`.
    End,
    /// Looks like an option, but no option has that name.
    Unknown,
    /// Option `index`; `explicit` is what follows its name in the same argument (`21`
    /// after `--port=`, `21` after `-p`, `D` after `-w`); `dash` says the name was the
    /// one-dash one.
    Option {
        index: usize,
        explicit: Option<&'a [u8]>,
        dash: bool,
    },
}

struct Options(Vec<Opt>);

impl Options {
    fn new(cmd: &clap::Command) -> Options {
        let opts = cmd.get_arguments().filter_map(|arg| {
            Some(Opt {
                long: arg.get_long()?.to_owned(),
                short: arg.get_short().and_then(|c| u8::try_from(c).ok()),
                takes_value: arg.get_action().takes_values(),
            })
        });
        Options(opts.collect())
    }

    /// Splits `args` into the options for clap (`--long` or `--long=value`, in order) and
    /// the arguments argparse leaves over. An option whose value is missing goes to clap
    /// without one, and one given a value it does not take goes with it, as the last
    /// option: clap then reports it after any error in the values before it.
    fn sort_out<'a>(&self, args: &'a [OsString]) -> Result<(Vec<OsString>, Vec<&'a OsStr>), Exit> {
        // Every argument is sorted out first (an ambiguous prefix fails here, wherever it
        // is); after `--`, nothing is an option.
        let mut kinds = Vec::with_capacity(args.len());
        let mut ended = false;
        for arg in args {
            let kind = if ended {
                Kind::Plain
            } else {
                self.classify(arg.as_bytes())?
            };
            ended |= matches!(kind, Kind::End);
            kinds.push(kind);
        }
        let mut tokens = Vec::new();
        let mut extras = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let Kind::Option {
                mut index,
                mut explicit,
                dash,
            } = kinds[i]
            else {
                extras.push(args[i].as_os_str());
                i += 1;
                continue;
            };
            i += 1;
            // A one-dash group (`-wDp21`) gives several options; argparse checks them all
            // before it applies the first, so a bad one stands for the whole group.
            let group = tokens.len();
            let error = loop {
                let opt = &self.0[index];
                match explicit {
                    Some(e) if !opt.takes_value && dash && !e.is_empty() => {
                        let Some(next) = self.short(e[0]) else {
                            tokens.truncate(group);
                            tokens.push(spelled(opt, Some(e)));
                            break true;
                        };
                        tokens.push(spelled(opt, None));
                        index = next;
                        explicit = (e.len() > 1).then(|| &e[1..]);
                    }
                    Some(e) => {
                        tokens.push(spelled(opt, Some(e)));
                        break !opt.takes_value;
                    }
                    None if opt.takes_value => {
                        if !matches!(kinds.get(i), Some(Kind::Plain)) {
                            tokens.push(spelled(opt, None));
                            break true;
                        }
                        tokens.push(spelled(opt, Some(args[i].as_bytes())));
                        i += 1;
                        break false;
                    }
                    None => {
                        tokens.push(spelled(opt, None));
                        break false;
                    }
                }
            };
            // argparse stops at an option without its value or with one it does not
            // take; clap, given it last, says so after what it finds in those before.
            if error {
                break;
            }
        }
        Ok((tokens, extras))
    }

    /// What `arg` is, by argparse's rules.
    fn classify<'a>(&self, arg: &'a [u8]) -> Result<Kind<'a>, Exit> {
        if arg.first() != Some(&b'-') {
            return Ok(Kind::Plain);
        }
        if arg == b"--" {
            return Ok(Kind::End);
        }
        let dash = arg.get(1) != Some(&b'-');
        let option = |index, explicit| Kind::Option {
            index,
            explicit,
            dash,
        };
        if let Some(index) = self.exact(arg) {
            return Ok(option(index, None));
        }
        if arg.len() == 1 {
            return Ok(Kind::Plain);
        }
        let eq = arg.iter().position(|&b| b == b'=');
        if let Some(eq) = eq {
            if let Some(index) = self.exact(&arg[..eq]) {
                return Ok(option(index, Some(&arg[eq + 1..])));
            }
        }
        if !dash {
            let (prefix, explicit) = match eq {
                Some(eq) => (&arg[2..eq], Some(&arg[eq + 1..])),
                None => (&arg[2..], None),
            };
            let matches: Vec<usize> = (0..self.0.len())
                .filter(|&i| self.0[i].long.as_bytes().starts_with(prefix))
                .collect();
            match matches[..] {
                [] => {}
                [index] => return Ok(option(index, explicit)),
                _ => {
                    let names: Vec<String> = matches
                        .iter()
                        .map(|&i| format!("--{}", self.0[i].long))
                        .collect();
                    return Err(Exit::Error(format!(
                        "ambiguous option: {} could match {}",
                        String::from_utf8_lossy(arg),
                        names.join(", ")
                    )));
                }
            }
        } else if let Some(index) = self.short(arg[1]) {
            return Ok(option(index, Some(&arg[2..])));
        }
        if is_negative_number(&arg[1..]) || arg.contains(&b' ') {
            return Ok(Kind::Plain);
        }
        Ok(Kind::Unknown)
    }

    /// The option spelled exactly `arg` (`-p`, `--port`).
    fn exact(&self, arg: &[u8]) -> Option<usize> {
        match arg {
            [b'-', b'-', long @ ..] => self.0.iter().position(|o| o.long.as_bytes() == long),
            [b'-', short] => self.short(*short),
            _ => None,
        }
    }

    /// The option whose one-letter name is `letter`.
    fn short(&self, letter: u8) -> Option<usize> {
        self.0.iter().position(|o| o.short == Some(letter))
    }
}

/// `--long`, or `--long=value`: a form clap reads in one way only.
fn spelled(opt: &Opt, value: Option<&[u8]>) -> OsString {
    let mut token = format!("--{}", opt.long).into_bytes();
    if let Some(value) = value {
        token.push(b'=');
        token.extend_from_slice(value);
    }
    OsString::from_vec(token)
}

/// argparse's negative number, after the `-`: `1`, `10`, `.5`, `1.5`.
fn is_negative_number(s: &[u8]) -> bool {
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(dot) => (&s[..dot], Some(&s[dot + 1..])),
        None => (s, None),
    };
    let digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    match frac {
        None => !int.is_empty() && digits(int),
        Some(frac) => digits(int) && !frac.is_empty() && digits(frac),
    }
}

/// clap's error (or its request for the help or the version) in argparse's words;
/// `tokens` are the arguments clap was given.
fn clap_exit(cmd: &clap::Command, error: &clap::Error, tokens: &[OsString]) -> Exit {
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    // clap names the option as its `Display` shows it (`--port <PORT>`).
    let option = || {
        let shown = context(ContextKind::InvalidArg)?;
        cmd.get_arguments().find(|a| a.to_string() == shown)
    };
    let message = match error.kind() {
        ErrorKind::DisplayHelp => return Exit::Print(crate::help::render(cmd, columns())),
        ErrorKind::DisplayVersion => {
            return Exit::Print(format!("{PROG} {}\n", env!("CARGO_PKG_VERSION")))
        }
        ErrorKind::ValueValidation => context(ContextKind::Custom).map(str::to_owned),
        ErrorKind::InvalidValue => option().map(|arg| {
            let name = argparse_name(arg);
            format!("argument {name}: expected one argument")
        }),
        ErrorKind::TooManyValues => option().map(|arg| {
            // clap's copy of the value is lossy text; the first `--long=value` of the
            // option is the one it refused, with the value's bytes.
            let attached = format!("--{}=", arg.get_long().unwrap_or_default());
            let raw = tokens
                .iter()
                .find_map(|t| t.as_bytes().strip_prefix(attached.as_bytes()));
            let lossy = context(ContextKind::InvalidValue).unwrap_or_default();
            let value = raw.map_or(OsStr::new(lossy), OsStr::from_bytes);
            let name = argparse_name(arg);
            format!("argument {name}: ignored explicit argument {}", repr(value))
        }),
        _ => None,
    };
    // Anything else is clap's own message, without its "error: " and its hints.
    Exit::Error(message.unwrap_or_else(|| {
        let text = error.to_string();
        let first = text.lines().next().unwrap_or_default();
        first.strip_prefix("error: ").unwrap_or(first).to_owned()
    }))
}

/// argparse's last error: the arguments nothing took. For an unknown long option clap
/// may know a near name, as clap would suggest it.
fn unrecognized(cmd: &mut clap::Command, extras: &[&OsStr]) -> Exit {
    let shown: Vec<_> = extras.iter().map(|a| a.to_string_lossy()).collect();
    let mut message = format!("unrecognized arguments: {}", shown.join(" "));
    // After `--` nothing is an option, nor a mistyped one.
    let mut options = extras.iter().take_while(|e| e.as_bytes() != b"--");
    let suggestion = options.find_map(|extra| {
        let bytes = extra.as_bytes();
        if !bytes.starts_with(b"--") || bytes.len() < 3 {
            return None;
        }
        let name = bytes.split(|&b| b == b'=').next().unwrap_or(bytes);
        let argv = [OsStr::new(PROG), OsStr::from_bytes(name)];
        let error = cmd.try_get_matches_from_mut(argv).err()?;
        match error.get(ContextKind::SuggestedArg) {
            Some(ContextValue::String(s)) => Some(s.clone()),
            _ => None,
        }
    });
    if let Some(suggestion) = suggestion {
        let _ = write!(message, " (did you mean {suggestion}?)");
    }
    Exit::Error(message)
}

/// The width of the help: `$COLUMNS` if it is a number from 1 to 65535, else 80.
pub fn columns() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|&c| c > 0)
        .map_or(80, usize::from)
}

/// The program's name, before `: error:`.
pub const PROG: &str = "ftpdlib";
/// The usage line, after `usage: `.
pub const USAGE: &str = "ftpdlib [options]";
#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::cli::MODELS;

    /// Held by every parse: the parse reads the `FTPDLIB_*` environment, which one test
    /// sets.
    static ENV: Mutex<()> = Mutex::new(());

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn parsed(list: &[OsString]) -> Result<Cli, Exit> {
        let _env = ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        parse(list)
    }

    /// The options the first pass gives clap for `list`, in order, as `name=value`
    /// (`name` for a switch), or how the parse ended.
    fn seen(list: &[&str]) -> Result<Vec<String>, Exit> {
        let list = args(list);
        let (tokens, extras) = Options::new(&Cli::command()).sort_out(&list)?;
        if !extras.is_empty() {
            return Err(unrecognized(&mut Cli::command(), &extras));
        }
        let names = tokens.iter().map(|t| t.to_string_lossy()[2..].to_owned());
        Ok(names.collect())
    }

    fn error(list: &[&str]) -> String {
        match parsed(&args(list)) {
            Err(Exit::Error(message)) => message,
            other => panic!("{list:?}: {:?}", other.map(|_| ())),
        }
    }

    fn cli(list: &[&str]) -> Cli {
        match parsed(&args(list)) {
            Ok(cli) => cli,
            Err(e) => panic!("{list:?}: {e:?}"),
        }
    }

    #[test]
    fn value_forms() {
        for form in [
            &["-p", "21"][..],
            &["-p21"],
            &["-p=21"],
            &["--port", "21"],
            &["--port=21"],
            &["--por", "21"],
            &["--po=21"],
        ] {
            assert_eq!(seen(form), Ok(vec!["port=21".to_owned()]), "{form:?}");
            assert_eq!(cli(form).port, 21, "{form:?}");
        }
        // An empty value is a value; `=` in a value is kept.
        assert_eq!(seen(&["--banner="]), Ok(vec!["banner=".to_owned()]));
        assert_eq!(seen(&["--banner", ""]), Ok(vec!["banner=".to_owned()]));
        assert_eq!(seen(&["--banner=a=b"]), Ok(vec!["banner=a=b".to_owned()]));
    }

    #[test]
    fn switch_groups() {
        assert_eq!(seen(&["-wD"]), Ok(vec!["write".into(), "debug".into()]));
        let w_p21 = Ok(vec!["write".into(), "port=21".into()]);
        assert_eq!(seen(&["-wp21"]), w_p21);
        assert_eq!(seen(&["-wp", "21"]), w_p21);
        let c = cli(&["-Dwp", "2200"]);
        assert!(c.debug && c.write && c.port == 2200);
        // After a switch, `=` is not a separator: the value is `=21`.
        assert_eq!(
            error(&["-wp=21"]),
            "argument -p/--port: invalid int value: '=21'"
        );
        assert_eq!(error(&["-wp"]), "argument -p/--port: expected one argument");
    }

    #[test]
    fn last_one_wins() {
        assert_eq!(cli(&["-p", "1", "--port=2", "-p3"]).port, 3);
        assert_eq!(
            cli(&["-u", "a", "-u", "b", "-P", "x"]).username.as_deref(),
            Some("b")
        );
    }

    #[test]
    fn values_that_start_with_a_dash() {
        // A negative number is a value (and then not a port).
        assert_eq!(seen(&["-p", "-1"]), Ok(vec!["port=-1".to_owned()]));
        assert_eq!(
            error(&["-p", "-1"]),
            "argument -p/--port: invalid int value: '-1'"
        );
        assert_eq!(
            seen(&["--banner", "-.5"]),
            Ok(vec!["banner=-.5".to_owned()])
        );
        assert_eq!(
            seen(&["--banner", "-1.5"]),
            Ok(vec!["banner=-1.5".to_owned()])
        );
        // So is anything with a space that names no option.
        assert_eq!(
            seen(&["--banner", "--hello world"]),
            Ok(vec!["banner=--hello world".to_owned()])
        );
        // Otherwise it is an option, and the value is missing.
        for value in ["-x", "-1e3", "--hello", "-w", "-w x", "--port=5"] {
            assert_eq!(
                error(&["--banner", value]),
                "argument --banner: expected one argument",
                "{value}"
            );
        }
        // With `=` or glued to a short name, anything is the value.
        assert_eq!(seen(&["--banner=-x"]), Ok(vec!["banner=-x".to_owned()]));
        assert_eq!(seen(&["-u-x"]), Ok(vec!["username=-x".to_owned()]));
        assert_eq!(seen(&["-u=-x"]), Ok(vec!["username=-x".to_owned()]));
    }

    #[test]
    fn abbreviations() {
        // An exact name wins over the longer names it begins.
        assert_eq!(seen(&["--write"]), Ok(vec!["write".to_owned()]));
        assert_eq!(seen(&["--tls"]), Ok(vec!["tls".to_owned()]));
        assert_eq!(
            seen(&["--write-l", "1K"]),
            Ok(vec!["write-limit=1K".to_owned()])
        );
        assert_eq!(
            seen(&["--tls-co"]),
            Ok(vec!["tls-control-required".to_owned()])
        );
        // pyftpdlib's `--tls-c` meets ftpdlib's own `--tls-client-*` flags.
        assert_eq!(
            error(&["--tls-c"]),
            "ambiguous option: --tls-c could match --tls-control-required, --tls-client-ca, \
             --tls-client-cert-login"
        );
        assert_eq!(
            seen(&["--max-cons-p=3"]),
            Ok(vec!["max-cons-per-ip=3".to_owned()])
        );
        assert_eq!(
            error(&["--wri"]),
            "ambiguous option: --wri could match --write, --write-limit"
        );
        assert_eq!(
            error(&["--tls-", "x"]),
            "ambiguous option: --tls- could match --tls-control-required, --tls-data-required, \
             --tls-implicit, --tls-require-reuse, --tls-client-ca, --tls-client-cert-login"
        );
        assert_eq!(
            error(&["--h"]),
            "ambiguous option: --h could match --help, --hash-password"
        );
        assert_eq!(seen(&["--max-cons=3"]), Ok(vec!["max-cons=3".to_owned()]));
        assert_eq!(
            seen(&["--max-cons-=3"]),
            Ok(vec!["max-cons-per-ip=3".to_owned()])
        );
        assert_eq!(seen(&["--ver"]), Ok(vec!["version".to_owned()]));
        // Case matters; one dash is not a long option.
        assert_eq!(
            error(&["--Port", "1"]),
            "unrecognized arguments: --Port 1 (did you mean --port?)"
        );
        assert_eq!(
            error(&["-port"]),
            "argument -p/--port: invalid int value: 'ort'"
        );
    }

    #[test]
    fn double_dash_ends_the_options() {
        assert_eq!(error(&["-w", "--"]), "unrecognized arguments: --");
        assert_eq!(error(&["--", "-w"]), "unrecognized arguments: -- -w");
        assert_eq!(
            error(&["-w", "--", "--wri"]),
            "unrecognized arguments: -- --wri"
        );
        assert_eq!(
            error(&["-p", "--", "21"]),
            "argument -p/--port: expected one argument"
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            error(&["-p", "x"]),
            "argument -p/--port: invalid int value: 'x'"
        );
        assert_eq!(
            error(&["-p", "65536"]),
            "argument -p/--port: invalid int value: '65536'"
        );
        assert_eq!(
            error(&["--port="]),
            "argument -p/--port: invalid int value: ''"
        );
        assert_eq!(error(&["-p"]), "argument -p/--port: expected one argument");
        assert_eq!(
            error(&["--timeout"]),
            "argument --timeout: expected one argument"
        );
        assert_eq!(error(&["--nosuch"]), "unrecognized arguments: --nosuch");
        assert_eq!(
            error(&["foo", "-w", "-x", "--zz=1", "-", "-1", "a b"]),
            "unrecognized arguments: foo -x --zz=1 - -1 a b"
        );
        assert_eq!(
            error(&["--concurrency", "x"]),
            "argument --concurrency: invalid choice: 'x' (choose from 'async', \
             'multi-thread', 'multi-proc', 'pre-fork', 'multi-loop')"
        );
        assert_eq!(
            error(&["--write=1"]),
            "argument -w/--write: ignored explicit argument '1'"
        );
        assert_eq!(
            error(&["-w="]),
            "argument -w/--write: ignored explicit argument ''"
        );
        assert_eq!(
            error(&["-wxyz"]),
            "argument -w/--write: ignored explicit argument 'xyz'"
        );
        assert_eq!(
            error(&["-wD=1"]),
            "argument -D/--debug: ignored explicit argument '=1'"
        );
        assert_eq!(
            error(&["--help=x"]),
            "argument -h/--help: ignored explicit argument 'x'"
        );
        assert_eq!(
            error(&["-n", "1.2.3"]),
            "argument -n/--nat-address: invalid IP address value: '1.2.3'"
        );
        assert_eq!(
            error(&["-r", "9-5"]),
            "argument -r/--range: invalid range '9-5': need 1 <= FROM < TO <= 65535"
        );
        assert_eq!(
            error(&["-r", "9000"]),
            "argument -r/--range: invalid range '9000': expected FROM-TO"
        );
        assert_eq!(
            error(&["-r", "x-9"]),
            "argument -r/--range: invalid port 'x'"
        );
        assert_eq!(
            error(&["--read-limit", "1X"]),
            "argument --read-limit: invalid rate '1X': use a number with K, M or G"
        );
        assert_eq!(
            error(&["--write-limit", "99999999999G"]),
            "argument --write-limit: invalid rate '99999999999G': too large"
        );
        assert_eq!(
            error(&["--workers", "many"]),
            "argument --workers: invalid int value: 'many'"
        );
        // Errors come in command-line order, but an ambiguous prefix anywhere comes first.
        assert_eq!(
            error(&["-p", "x", "-w=1"]),
            "argument -p/--port: invalid int value: 'x'"
        );
        assert_eq!(
            error(&["-w=1", "-p", "x"]),
            "argument -w/--write: ignored explicit argument '1'"
        );
        assert_eq!(
            error(&["--nosuch", "-p", "x"]),
            "argument -p/--port: invalid int value: 'x'"
        );
        assert_eq!(
            error(&["-p", "x", "--wri"]),
            "ambiguous option: --wri could match --write, --write-limit"
        );
    }

    #[test]
    fn arguments_that_are_not_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let bytes = |b: &[u8]| OsString::from_vec(b.to_vec());
        // Paths are taken as they are.
        let list = [OsString::from("-d"), bytes(b"/srv/caf\xe9")];
        let c = parsed(&list).expect("a non-UTF-8 directory");
        assert_eq!(c.directory.expect("-d").as_os_str(), bytes(b"/srv/caf\xe9"));
        let list = [
            bytes(b"--certfile=c\xff"),
            bytes(b"--keyfile"),
            bytes(b"k\xff"),
        ];
        let c = parsed(&list).expect("non-UTF-8 TLS files");
        assert_eq!(c.certfile.expect("certfile").as_os_str(), bytes(b"c\xff"));
        assert_eq!(c.keyfile.expect("keyfile").as_os_str(), bytes(b"k\xff"));
        let list = [bytes(b"--users-file"), bytes(b"\xff")];
        assert!(parsed(&list).expect("users file").users_file.is_some());
        // Text and numbers are not.
        let fails = |list: &[OsString]| match parsed(list) {
            Err(Exit::Error(message)) => message,
            other => panic!("{list:?}: {other:?}"),
        };
        let list = [OsString::from("-u"), bytes(b"caf\xe9")];
        assert_eq!(
            fails(&list),
            "argument -u/--username: invalid UTF-8 value: 'caf\\xe9'"
        );
        let list = [bytes(b"--banner=\xff")];
        assert_eq!(
            fails(&list),
            "argument --banner: invalid UTF-8 value: '\\xff'"
        );
        let list = [OsString::from("-p"), bytes(b"2\xff")];
        assert_eq!(
            fails(&list),
            "argument -p/--port: invalid int value: '2\\xff'"
        );
        let list = [OsString::from("--concurrency"), bytes(b"\xff")];
        assert!(fails(&list).starts_with("argument --concurrency: invalid choice: '\\xff' ("));
        let list = [bytes(b"-w\xff")];
        assert_eq!(
            fails(&list),
            "argument -w/--write: ignored explicit argument '\\xff'"
        );
        let list = [bytes(b"--n\xff")];
        assert_eq!(fails(&list), "unrecognized arguments: --n\u{fffd}");
    }

    #[test]
    fn help_and_version() {
        let help = crate::help::render(&Cli::command(), 80);
        for list in [
            &["-h"][..],
            &["--help"],
            &["--he"],
            &["-wh"],
            &["-h", "--nosuch"],
            &["-h", "-p", "x"],
        ] {
            assert_eq!(
                parsed(&args(list)).err(),
                Some(Exit::Print(crate::help::render(&Cli::command(), columns()))),
                "{list:?}"
            );
        }
        // What comes before -h is applied first.
        assert_eq!(
            error(&["-p", "x", "-h"]),
            "argument -p/--port: invalid int value: 'x'"
        );
        let version = Exit::Print(format!("ftpdlib {}\n", env!("CARGO_PKG_VERSION")));
        assert_eq!(parsed(&args(&["--version"])).err(), Some(version));

        let start = [
            "usage: ftpdlib [options]",
            "",
            "Start a stand alone anonymous FTP server.",
            "",
            "options:",
            "  -h, --help            show this help message and exit",
            "  --version             print the version and exit",
            "",
            "Main options:",
            "  -i ADDRESS, --interface ADDRESS",
            "                        specify the interface to run on (default: all",
            "                        interfaces)",
            "  -p PORT, --port PORT  specify port number to run on (default: 2121)",
            "  -w, --write           grants write access for logged in user (default: read-",
            "                        only)",
            "",
        ];
        assert!(help.starts_with(&start.join("\n")), "{help}");
        let end = [
            "  --hash-password       read a password from stdin, print its crypt(3) hash",
            "                        (for --users-file) and exit",
            "",
            "Each option can also be set in the environment, as FTPDLIB_ and its long name",
            "in capitals with _ for - (FTPDLIB_PORT=21, FTPDLIB_WRITE=1); the command line",
            "wins.",
            "",
        ];
        assert!(help.ends_with(&end.join("\n")), "{help}");
        // Every option, with its whole help.
        let flat = help
            .replace(&format!("\n{:24}", ""), " ")
            .replace("- ", "-");
        let cmd = Cli::command();
        for arg in cmd.get_arguments() {
            let invocation = format!("\n  {}", crate::help::invocation(arg));
            assert!(flat.contains(&invocation), "{invocation}");
            let text = arg.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(flat.contains(&text), "{text}");
        }
        for heading in [
            "\n\nMain options:\n",
            "\n\nFTPS options:\n",
            "\n\nOther options:\n",
        ] {
            assert!(help.contains(heading), "{heading}");
        }
        for line in help.lines() {
            assert!(line.len() <= 78, "{line}");
        }
        // Narrower: the help column moves left, the text wraps sooner.
        let narrow = crate::help::render(&Cli::command(), 30);
        assert!(
            narrow.contains("\n  -h, --help\n        show this help\n        message and exit\n"),
            "{narrow}"
        );
    }

    #[test]
    fn defaults() {
        let c = cli(&[]);
        assert_eq!(c.interface, None);
        assert_eq!(c.port, 2121);
        assert!(!c.write && !c.debug && !c.tls && !c.unix_users && !c.hash_password);
        assert_eq!(c.concurrency, ftpdlib::config::Concurrency::Async);
        assert_eq!(
            (c.workers, c.timeout, c.max_cons, c.max_cons_per_ip),
            (0, 300, 512, 0)
        );
        assert_eq!(c.max_login_attempts, 3);
        assert_eq!((c.read_limit, c.write_limit), (0, 0));
        assert_eq!(c.encoding, "utf-8");
    }

    #[test]
    fn every_option_is_applied() {
        let every = "-i 127.0.0.1 -p 0 -w -d /tmp -n 10.0.0.1 -r 8000-9000 -D -u user -P pass \
                     --concurrency multi-loop --workers 4 --tls --keyfile k.pem --certfile c.pem \
                     --tls-control-required --tls-data-required --tls-implicit \
                     --tls-require-reuse --timeout 0 --banner hi --permit-foreign-addresses \
                     --permit-privileged-ports --encoding latin-1 --use-localtime \
                     --disable-sendfile --max-cons 9 --max-cons-per-ip 2 \
                     --max-login-attempts 5 --read-limit 1k --write-limit 2M --perm elr \
                     --users-file u.txt --unix-users --hash-password \
                     --proxy-protocol-from 127.0.0.1,10.0.0.0/8 --log-file f.log \
                     --log-format json --xferlog x.log --syslog --syslog-socket s.sock \
                     --metrics :9100 --completions fish --man";
        let c = cli(&every.split_whitespace().collect::<Vec<_>>());
        assert_eq!(c.interface.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            cli(&["-i", "localhost"]).interface.as_deref(),
            Some("localhost")
        );
        assert_eq!(c.port, 0);
        assert!(c.write && c.debug && c.tls && c.unix_users && c.hash_password);
        assert_eq!(c.directory, Some("/tmp".into()));
        assert_eq!(c.nat_address, Some([10, 0, 0, 1].into()));
        assert_eq!(c.range, Some((8000, 9000)));
        assert_eq!(c.username.as_deref(), Some("user"));
        assert_eq!(c.password.as_deref(), Some("pass"));
        assert_eq!(c.concurrency, ftpdlib::config::Concurrency::MultiLoop);
        assert_eq!(c.workers, 4);
        assert_eq!(c.keyfile, Some("k.pem".into()));
        assert_eq!(c.certfile, Some("c.pem".into()));
        assert!(c.tls_control_required && c.tls_data_required);
        assert!(c.tls_implicit && c.tls_require_reuse);
        assert_eq!(c.timeout, 0);
        assert_eq!(c.banner.as_deref(), Some("hi"));
        assert!(c.permit_foreign_addresses && c.permit_privileged_ports);
        assert_eq!(c.encoding, "latin-1");
        assert!(c.use_localtime && c.disable_sendfile);
        assert_eq!(
            (c.max_cons, c.max_cons_per_ip, c.max_login_attempts),
            (9, 2, 5)
        );
        assert_eq!((c.read_limit, c.write_limit), (1024, 2 << 20));
        assert_eq!(c.perm.as_deref(), Some("elr"));
        assert_eq!(c.users_file, Some("u.txt".into()));
        assert_eq!(c.log_file, Some("f.log".into()));
        assert_eq!(c.xferlog, Some("x.log".into()));
        assert!(c.syslog && c.man);
        assert_eq!(c.completions, Some(clap_complete::Shell::Fish));
        assert_eq!(c.syslog_socket, Some("s.sock".into()));
        assert_eq!(c.log_format, crate::logger::LogFormat::Json);
        assert_eq!(cli(&[]).log_format, crate::logger::LogFormat::Text);
        assert_eq!(c.metrics, Some(([0, 0, 0, 0], 9100).into()));
        assert_eq!(
            cli(&["--metrics", "[::1]:9"]).metrics,
            Some("[::1]:9".parse().expect("addr"))
        );
        assert!(parsed(&args(&["--metrics", "9100"])).is_err());
        let proxies = c.proxy_protocol_from.expect("--proxy-protocol-from");
        assert_eq!(
            proxies.0,
            vec![
                "127.0.0.1".parse().expect("net"),
                "10.0.0.0/8".parse().expect("net")
            ]
        );
        assert!(parsed(&args(&["--proxy-protocol-from", "10.0.0.0/40"])).is_err());
        assert!(parsed(&args(&["--proxy-protocol-from", "127.0.0.1,"])).is_err());
        // Every option the first pass knows, clap takes (with a value if it wants one).
        let cmd = Cli::command();
        for opt in &Options::new(&cmd).0 {
            let value = match opt.long.as_str() {
                "concurrency" => "async",
                "log-format" => "json",
                "completions" => "zsh",
                "range" => "1-2",
                "metrics" => "127.0.0.1:9100",
                "interface" | "nat-address" | "proxy-protocol-from" | "ban-allow" => "::1",
                "nat-address-for" => "::1/128=::2",
                "virtual-host" => "a.example=u.txt",
                // An empty file: no option.
                "config" => "/dev/null",
                _ => "1",
            };
            let list = [OsString::from(format!("--{}", opt.long)), value.into()];
            let list = &list[..if opt.takes_value { 2 } else { 1 }];
            if !matches!(opt.long.as_str(), "help" | "version") {
                assert!(parsed(list).is_ok(), "--{}", opt.long);
            }
        }
    }

    #[test]
    fn every_concurrency_model() {
        for (name, model) in MODELS {
            assert_eq!(cli(&["--concurrency", name]).concurrency, model);
            assert_eq!(model.name(), name);
        }
    }

    #[test]
    fn environment() {
        let _env = ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let run = |vars: &[(&str, &str)], list: &[&str]| {
            for (name, value) in vars {
                std::env::set_var(name, value);
            }
            let outcome = parse(&args(list));
            for (name, _) in vars {
                std::env::remove_var(name);
            }
            outcome
        };
        let vars = [
            ("FTPDLIB_PORT", "21"),
            ("FTPDLIB_WRITE", "1"),
            ("FTPDLIB_DIRECTORY", "/srv"),
            ("FTPDLIB_READ_LIMIT", "1K"),
        ];
        let c = run(&vars, &[]).expect("the environment's options");
        assert_eq!(c.port, 21);
        assert!(c.write);
        assert_eq!(c.directory, Some("/srv".into()));
        assert_eq!(c.read_limit, 1024);
        // The command line wins.
        let c = run(&vars, &["-p", "22"]).expect("options from both");
        assert_eq!((c.port, c.write), (22, true));
        for (value, on) in [
            ("0", false),
            ("no", false),
            ("", false),
            ("yes", true),
            ("On", true),
        ] {
            let c = run(&[("FTPDLIB_DEBUG", value)], &[]).expect(value);
            assert_eq!(c.debug, on, "{value:?}");
        }
        let error = |vars: &[(&str, &str)]| match run(vars, &[]) {
            Err(Exit::Error(message)) => message,
            other => panic!("{vars:?}: {:?}", other.map(|_| ())),
        };
        assert_eq!(
            error(&[("FTPDLIB_PORT", "x")]),
            "environment variable FTPDLIB_PORT: invalid int value: 'x'"
        );
        assert!(error(&[("FTPDLIB_TLS", "maybe")])
            .starts_with("environment variable FTPDLIB_TLS: invalid switch value: 'maybe'"));
        // Every option but -h and --version has its variable, named after it.
        for arg in Cli::command().get_arguments() {
            let long = arg.get_long().unwrap_or_default();
            let expected = match long {
                "help" | "version" => None,
                _ => Some(format!(
                    "FTPDLIB_{}",
                    long.to_ascii_uppercase().replace('-', "_")
                )),
            };
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            assert_eq!(env, expected, "--{long}");
        }
    }

    #[test]
    fn shared_bandwidth_caps_from_the_command_line_and_the_config_file() {
        let c = parse(&args(&[
            "--server-read-limit",
            "2M",
            "--server-write-limit=1G",
            "--user-read-limit",
            "512K",
            "--user-write-limit",
            "1000",
        ]))
        .expect("the caps");
        assert_eq!(
            (c.server_read_limit, c.server_write_limit),
            (2 << 20, 1 << 30)
        );
        assert_eq!((c.user_read_limit, c.user_write_limit), (512 << 10, 1000));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ftpdlib.toml");
        std::fs::write(
            &path,
            "user-write-limit = \"1M\"\nserver-read-limit = 4096\n",
        )
        .expect("write the file");
        let c = parse(&args(&[
            "--config",
            path.to_str().expect("a UTF-8 temp path"),
        ]))
        .expect("the caps from the file");
        assert_eq!((c.user_write_limit, c.server_read_limit), (1 << 20, 4096));
        assert_eq!((c.user_read_limit, c.server_write_limit), (0, 0));
        assert!(parse(&args(&["--user-write-limit", "fast"])).is_err());
    }

    #[test]
    fn config_file_under_the_environment_and_the_command_line() {
        let _env = ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ftpdlib.toml");
        let text = "port = 2001\nbanner = \"file\"\nmax-cons = 7\nwrite = true\n\
                    timeout = 9\n";
        std::fs::write(&path, text).expect("write the file");
        let config = path.to_str().expect("a UTF-8 temp path");
        std::env::set_var("FTPDLIB_BANNER", "env");
        std::env::set_var("FTPDLIB_MAX_CONS", "8");
        let both = parse(&args(&["--config", config, "--max-cons=9", "-p", "3"]));
        std::env::remove_var("FTPDLIB_BANNER");
        std::env::remove_var("FTPDLIB_MAX_CONS");
        let only_file = parse(&args(&["--config", config]));
        std::env::set_var("FTPDLIB_CONFIG", config);
        let from_env = parse(&args(&["--timeout", "1"]));
        std::env::remove_var("FTPDLIB_CONFIG");
        drop(_env);
        let c = both.expect("file, environment and command line");
        // The flag beats the variable, which beats the file, which beats the default.
        assert_eq!((c.port, c.max_cons), (3, 9));
        assert_eq!(c.banner.as_deref(), Some("env"));
        assert_eq!((c.timeout, c.write, c.max_cons_per_ip), (9, true, 0));
        let c = only_file.expect("the file alone");
        assert_eq!((c.port, c.max_cons, c.timeout), (2001, 7, 9));
        assert_eq!(c.banner.as_deref(), Some("file"));
        let c = from_env.expect("FTPDLIB_CONFIG");
        assert_eq!((c.port, c.timeout), (2001, 1));
        // A file error is not a usage error.
        std::fs::write(&path, "port = 1\nwrite = 1\n").expect("write the file");
        assert_eq!(
            parsed(&args(&["--config", config, "-w"])).err(),
            Some(Exit::Fail(format!(
                "{config}:2: write: expected true or false, found an integer"
            )))
        );
        // The command line's own errors come first.
        assert_eq!(
            error(&["--config", config, "-p", "x"]),
            "argument -p/--port: invalid int value: 'x'"
        );
    }

    #[test]
    fn did_you_mean() {
        assert_eq!(
            error(&["--wirte"]),
            "unrecognized arguments: --wirte (did you mean --write?)"
        );
        assert_eq!(
            error(&["x", "--prot=2"]),
            "unrecognized arguments: x --prot=2 (did you mean --port?)"
        );
        assert_eq!(error(&["--nosuch"]), "unrecognized arguments: --nosuch");
    }
}

//! `ftpdlib`'s command line: the options of `python -m pyftpdlib` 2.2.0 and ours, parsed
//! with argparse's rules ([`crate::argparse`]).

use std::ffi::{OsStr, OsString};
use std::net::IpAddr;
use std::path::PathBuf;

use ftpdlib::config::Concurrency;

use crate::argparse::{self, Command, Exit, Opt, HELP};

/// The command line, with pyftpdlib's usage line.
pub const COMMAND: Command = Command {
    prog: "ftpdlib",
    usage: "ftpdlib [options]",
    description: "Start a stand alone anonymous FTP server.",
    options: OPTIONS,
};

/// The options, in the help's order: `-h` first, as argparse puts it, then pyftpdlib's in
/// its order, ours beside the ones they go with.
pub const OPTIONS: &[Opt] = &[
    HELP,
    Opt {
        short: None,
        long: "version",
        value: None,
        help: "print the version and exit",
    },
    Opt {
        short: Some(b'i'),
        long: "interface",
        value: Some("ADDRESS"),
        help: "specify the interface to run on (default all interfaces)",
    },
    Opt {
        short: Some(b'p'),
        long: "port",
        value: Some("PORT"),
        help: "specify port number to run on (default 2121)",
    },
    Opt {
        short: Some(b'w'),
        long: "write",
        value: None,
        help: "grants write access for logged in user (default read-only)",
    },
    Opt {
        short: Some(b'd'),
        long: "directory",
        value: Some("FOLDER"),
        help: "specify the directory to share (default current directory)",
    },
    Opt {
        short: Some(b'n'),
        long: "nat-address",
        value: Some("ADDRESS"),
        help: "the NAT address to use for passive connections",
    },
    Opt {
        short: Some(b'r'),
        long: "range",
        value: Some("FROM-TO"),
        help: "the range of TCP ports to use for passive connections (e.g. -r 8000-9000)",
    },
    Opt {
        short: Some(b'D'),
        long: "debug",
        value: None,
        help: "enable DEBUG logging level",
    },
    Opt {
        short: Some(b'u'),
        long: "username",
        value: Some("USERNAME"),
        help: "specify username to login with (anonymous login will be disabled and password \
               required if supplied)",
    },
    Opt {
        short: Some(b'P'),
        long: "password",
        value: Some("PASSWORD"),
        help: "specify a password to login with (username required to be useful)",
    },
    Opt {
        short: None,
        long: "concurrency",
        value: Some("CONCURRENCY"),
        help: "the concurrency model to use: async (the default), multi-thread, multi-proc, \
               pre-fork or multi-loop",
    },
    Opt {
        short: None,
        long: "workers",
        value: Some("N"),
        help: "worker processes (pre-fork) or loop threads (multi-loop); 0 = one per CPU",
    },
    Opt {
        short: None,
        long: "tls",
        value: None,
        help: "whether to enable FTPS",
    },
    Opt {
        short: None,
        long: "keyfile",
        value: Some("KEYFILE"),
        help: "the TLS key file",
    },
    Opt {
        short: None,
        long: "certfile",
        value: Some("CERTFILE"),
        help: "the TLS cert file",
    },
    Opt {
        short: None,
        long: "tls-control-required",
        value: None,
        help: "require TLS on the control connection",
    },
    Opt {
        short: None,
        long: "tls-data-required",
        value: None,
        help: "require TLS on the data connection",
    },
    Opt {
        short: None,
        long: "tls-implicit",
        value: None,
        help: "implicit FTPS: TLS from the first byte (the port-990 convention), PROT P implied",
    },
    Opt {
        short: None,
        long: "tls-require-reuse",
        value: None,
        help: "refuse TLS data connections that do not resume the control connection's TLS \
               session (vsftpd's require_ssl_reuse)",
    },
    Opt {
        short: None,
        long: "timeout",
        value: Some("SECONDS"),
        help: "connection timeout in seconds (default 300)",
    },
    Opt {
        short: None,
        long: "banner",
        value: Some("BANNER"),
        help: "the banner sent when a client connects",
    },
    Opt {
        short: None,
        long: "permit-foreign-addresses",
        value: None,
        help: "allow data connections to / from addresses other than the client's",
    },
    Opt {
        short: None,
        long: "permit-privileged-ports",
        value: None,
        help: "allow active-mode data connections to ports below 1024",
    },
    Opt {
        short: None,
        long: "encoding",
        value: Some("ENCODING"),
        help: "the encoding of the control channel (default utf-8)",
    },
    Opt {
        short: None,
        long: "use-localtime",
        value: None,
        help: "show times in local time instead of GMT",
    },
    Opt {
        short: None,
        long: "disable-sendfile",
        value: None,
        help: "disable sendfile(2) for downloads",
    },
    Opt {
        short: None,
        long: "max-cons",
        value: Some("MAX_CONS"),
        help: "maximum number of simultaneous connections (default 512)",
    },
    Opt {
        short: None,
        long: "max-cons-per-ip",
        value: Some("MAX_CONS_PER_IP"),
        help: "maximum number of connections from the same IP address (default unlimited)",
    },
    Opt {
        short: None,
        long: "max-login-attempts",
        value: Some("N"),
        help: "maximum login attempts before disconnecting (default 3)",
    },
    Opt {
        short: None,
        long: "read-limit",
        value: Some("BYTES"),
        help: "limit each upload to this many bytes per second (K, M, G suffixes; 0 = no limit)",
    },
    Opt {
        short: None,
        long: "write-limit",
        value: Some("BYTES"),
        help: "limit each download to this many bytes per second (K, M, G suffixes; 0 = no \
               limit)",
    },
    Opt {
        short: None,
        long: "perm",
        value: Some("LETTERS"),
        help: "exactly these permission letters (e.g. elr, elradfmwMT) for the -u user or \
               anonymous, or for every system user with --unix-users; overrides -w",
    },
    Opt {
        short: None,
        long: "users-file",
        value: Some("PATH"),
        help: "serve the virtual users of this file: one name:hash:home:perms per line, the \
               hash made by --hash-password",
    },
    Opt {
        short: None,
        long: "unix-users",
        value: None,
        help: "serve the system's accounts (needs root): passwords from the shadow database, \
               sessions start in the user's home and act as that user",
    },
    Opt {
        short: None,
        long: "hash-password",
        value: None,
        help: "read a password from stdin, print its crypt(3) hash (for --users-file) and exit",
    },
];

/// `--concurrency`'s choices.
pub const MODELS: [(&str, Concurrency); 5] = [
    ("async", Concurrency::Async),
    ("multi-thread", Concurrency::MultiThread),
    ("multi-proc", Concurrency::MultiProc),
    ("pre-fork", Concurrency::PreFork),
    ("multi-loop", Concurrency::MultiLoop),
];

/// The parsed command line (each field is the option of the same name in [`OPTIONS`]).
#[derive(Debug)]
pub struct Cli {
    /// An IP address or a host name (resolved when binding), as pyftpdlib takes it.
    pub interface: Option<String>,
    pub port: u16,
    pub write: bool,
    pub directory: Option<PathBuf>,
    pub nat_address: Option<IpAddr>,
    pub range: Option<(u16, u16)>,
    pub debug: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    pub concurrency: Concurrency,
    pub workers: usize,
    pub tls: bool,
    pub keyfile: Option<PathBuf>,
    pub certfile: Option<PathBuf>,
    pub tls_control_required: bool,
    pub tls_data_required: bool,
    pub tls_implicit: bool,
    pub tls_require_reuse: bool,
    pub timeout: u64,
    pub banner: Option<String>,
    pub permit_foreign_addresses: bool,
    pub permit_privileged_ports: bool,
    pub encoding: String,
    pub use_localtime: bool,
    pub disable_sendfile: bool,
    pub max_cons: usize,
    pub max_cons_per_ip: usize,
    pub max_login_attempts: u32,
    pub read_limit: u64,
    pub write_limit: u64,
    pub perm: Option<String>,
    pub users_file: Option<PathBuf>,
    pub unix_users: bool,
    pub hash_password: bool,
}

impl Default for Cli {
    fn default() -> Cli {
        Cli {
            interface: None,
            port: 2121,
            write: false,
            directory: None,
            nat_address: None,
            range: None,
            debug: false,
            username: None,
            password: None,
            concurrency: Concurrency::Async,
            workers: 0,
            tls: false,
            keyfile: None,
            certfile: None,
            tls_control_required: false,
            tls_data_required: false,
            tls_implicit: false,
            tls_require_reuse: false,
            timeout: 300,
            banner: None,
            permit_foreign_addresses: false,
            permit_privileged_ports: false,
            encoding: "utf-8".to_owned(),
            use_localtime: false,
            disable_sendfile: false,
            max_cons: 512,
            max_cons_per_ip: 0,
            max_login_attempts: 3,
            read_limit: 0,
            write_limit: 0,
            perm: None,
            users_file: None,
            unix_users: false,
            hash_password: false,
        }
    }
}

impl Cli {
    /// Parses the arguments after the program's name.
    pub fn parse(args: &[OsString]) -> Result<Cli, Exit> {
        let mut cli = Cli::default();
        COMMAND.parse(args, |opt, value| cli.set(opt, value.unwrap_or_default()))?;
        Ok(cli)
    }

    /// Applies one option (`value` is empty for a switch).
    fn set(&mut self, opt: &Opt, value: &OsStr) -> Result<(), Exit> {
        let text = |what| argparse::text(value, what).map(str::to_owned);
        match opt.long {
            "version" => {
                let version = format!("ftpdlib {}\n", env!("CARGO_PKG_VERSION"));
                return Err(Exit::Print(version));
            }
            "interface" => self.interface = Some(value.to_string_lossy().into_owned()),
            "port" => self.port = argparse::parse(value, "int")?,
            "write" => self.write = true,
            "directory" => self.directory = Some(value.into()),
            "nat-address" => self.nat_address = Some(argparse::parse(value, "IP address")?),
            "range" => self.range = Some(parse_range(argparse::text(value, "range")?)?),
            "debug" => self.debug = true,
            "username" => self.username = Some(text("UTF-8")?),
            "password" => self.password = Some(text("UTF-8")?),
            "concurrency" => self.concurrency = argparse::choice(value, &MODELS)?,
            "workers" => self.workers = argparse::parse(value, "int")?,
            "tls" => self.tls = true,
            "keyfile" => self.keyfile = Some(value.into()),
            "certfile" => self.certfile = Some(value.into()),
            "tls-control-required" => self.tls_control_required = true,
            "tls-data-required" => self.tls_data_required = true,
            "tls-implicit" => self.tls_implicit = true,
            "tls-require-reuse" => self.tls_require_reuse = true,
            "timeout" => self.timeout = argparse::parse(value, "int")?,
            "banner" => self.banner = Some(text("UTF-8")?),
            "permit-foreign-addresses" => self.permit_foreign_addresses = true,
            "permit-privileged-ports" => self.permit_privileged_ports = true,
            "encoding" => self.encoding = text("UTF-8")?,
            "use-localtime" => self.use_localtime = true,
            "disable-sendfile" => self.disable_sendfile = true,
            "max-cons" => self.max_cons = argparse::parse(value, "int")?,
            "max-cons-per-ip" => self.max_cons_per_ip = argparse::parse(value, "int")?,
            "max-login-attempts" => self.max_login_attempts = argparse::parse(value, "int")?,
            "read-limit" => self.read_limit = parse_rate(argparse::text(value, "rate")?)?,
            "write-limit" => self.write_limit = parse_rate(argparse::text(value, "rate")?)?,
            "perm" => self.perm = Some(text("UTF-8")?),
            "users-file" => self.users_file = Some(value.into()),
            "unix-users" => self.unix_users = true,
            "hash-password" => self.hash_password = true,
            other => return Err(Exit::Error(format!("not handled: --{other}"))),
        }
        Ok(())
    }
}

/// Bytes per second: a number with an optional K, M or G suffix (powers of 1024).
fn parse_rate(s: &str) -> Result<u64, String> {
    let invalid = |why: &str| format!("invalid rate {}: {why}", argparse::repr(OsStr::new(s)));
    let t = s.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, 'B'),
    };
    let factor: u64 = match unit {
        'B' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        _ => return Err(invalid("use a number with K, M or G")),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| invalid("use a number with K, M or G"))?;
    n.checked_mul(factor).ok_or_else(|| invalid("too large"))
}

/// Passive ports: `FROM-TO`, 1 <= FROM < TO <= 65535.
fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let quote = |s: &str| argparse::repr(OsStr::new(s));
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("invalid range {}: expected FROM-TO", quote(s)))?;
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .map_err(|_| format!("invalid port {}", quote(p)))
    };
    let (from, to) = (port(a)?, port(b)?);
    if from == 0 || from >= to {
        return Err(format!(
            "invalid range {}: need 1 <= FROM < TO <= 65535",
            quote(s)
        ));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::argparse::columns;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    /// The options `ftpdlib`'s table gives for `list`, in order, as `name=value` (`name`
    /// for a switch), or how the parse ended.
    fn seen(list: &[&str]) -> Result<Vec<String>, Exit> {
        let mut seen = Vec::new();
        COMMAND.parse(&args(list), |opt, value| {
            seen.push(match value {
                Some(v) => format!("{}={}", opt.long, v.to_string_lossy()),
                None => opt.long.to_owned(),
            });
            Ok(())
        })?;
        Ok(seen)
    }

    fn error(list: &[&str]) -> String {
        match Cli::parse(&args(list)) {
            Err(Exit::Error(message)) => message,
            other => panic!("{list:?}: {other:?}"),
        }
    }

    fn cli(list: &[&str]) -> Cli {
        match Cli::parse(&args(list)) {
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
            seen(&["--tls-c"]),
            Ok(vec!["tls-control-required".to_owned()])
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
             --tls-implicit, --tls-require-reuse"
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
        assert_eq!(error(&["--Port", "1"]), "unrecognized arguments: --Port 1");
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
        let c = Cli::parse(&list).expect("a non-UTF-8 directory");
        assert_eq!(c.directory.expect("-d").as_os_str(), bytes(b"/srv/caf\xe9"));
        let list = [
            bytes(b"--certfile=c\xff"),
            bytes(b"--keyfile"),
            bytes(b"k\xff"),
        ];
        let c = Cli::parse(&list).expect("non-UTF-8 TLS files");
        assert_eq!(c.certfile.expect("certfile").as_os_str(), bytes(b"c\xff"));
        assert_eq!(c.keyfile.expect("keyfile").as_os_str(), bytes(b"k\xff"));
        let list = [bytes(b"--users-file"), bytes(b"\xff")];
        assert!(Cli::parse(&list).expect("users file").users_file.is_some());
        // Text and numbers are not.
        let fails = |list: &[OsString]| match Cli::parse(list) {
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
        let help = COMMAND.help(80);
        for list in [
            &["-h"][..],
            &["--help"],
            &["--he"],
            &["-wh"],
            &["-h", "--nosuch"],
            &["-h", "-p", "x"],
        ] {
            assert_eq!(
                Cli::parse(&args(list)).err(),
                Some(Exit::Print(COMMAND.help(columns()))),
                "{list:?}"
            );
        }
        // What comes before -h is applied first.
        assert_eq!(
            error(&["-p", "x", "-h"]),
            "argument -p/--port: invalid int value: 'x'"
        );
        let version = Exit::Print(format!("ftpdlib {}\n", env!("CARGO_PKG_VERSION")));
        assert_eq!(Cli::parse(&args(&["--version"])).err(), Some(version));

        let start = [
            "usage: ftpdlib [options]",
            "",
            "Start a stand alone anonymous FTP server.",
            "",
            "options:",
            "  -h, --help            show this help message and exit",
            "  --version             print the version and exit",
            "  -i ADDRESS, --interface ADDRESS",
            "                        specify the interface to run on (default all",
            "                        interfaces)",
            "  -p PORT, --port PORT  specify port number to run on (default 2121)",
            "  -w, --write           grants write access for logged in user (default read-",
            "                        only)",
            "",
        ];
        assert!(help.starts_with(&start.join("\n")), "{help}");
        let end = [
            "  --hash-password       read a password from stdin, print its crypt(3) hash",
            "                        (for --users-file) and exit",
            "",
        ];
        assert!(help.ends_with(&end.join("\n")), "{help}");
        // Every option, with its whole help.
        let flat = help
            .replace(&format!("\n{:24}", ""), " ")
            .replace("- ", "-");
        for opt in OPTIONS {
            let invocation = format!("\n  {}", opt.invocation());
            assert!(flat.contains(&invocation), "{invocation}");
            assert!(flat.contains(opt.help), "{}", opt.help);
        }
        for line in help.lines() {
            assert!(line.len() <= 78, "{line}");
        }
        // Narrower: the help column moves left, the text wraps sooner.
        let narrow = COMMAND.help(30);
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
                     --users-file u.txt --unix-users --hash-password";
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
        // The table and `Cli::set` agree: every option is known to it.
        for opt in OPTIONS
            .iter()
            .filter(|o| !matches!(o.long, "help" | "version"))
        {
            let mut cli = Cli::default();
            let value = OsStr::new(match opt.long {
                "concurrency" => "async",
                "range" => "1-2",
                "interface" | "nat-address" => "::1",
                _ => "1",
            });
            assert_eq!(cli.set(opt, value), Ok(()), "--{}", opt.long);
        }
    }

    #[test]
    fn every_concurrency_model() {
        for (name, model) in MODELS {
            assert_eq!(cli(&["--concurrency", name]).concurrency, model);
            assert_eq!(model.name(), name);
        }
    }
}

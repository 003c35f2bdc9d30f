//! The command line, parsed by the `ftpdlib` binary's parser (argparse's rules), so that the
//! flags keep the spellings of pyftpdlib's `scripts/ftpbench`.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::argparse::{self, Command, Exit, Opt, HELP};

pub const COMMAND: Command = Command {
    prog: "ftpbench",
    usage: "ftpbench [options]",
    description: "FTP server benchmark (pyftpdlib's scripts/ftpbench, in Rust).",
    options: OPTIONS,
};

const OPTIONS: &[Opt] = &[
    HELP,
    Opt {
        short: Some(b'u'),
        long: "user",
        value: Some("USER"),
        help: "username",
    },
    Opt {
        short: Some(b'p'),
        long: "pass",
        value: Some("PASS"),
        help: "password",
    },
    Opt {
        short: Some(b'H'),
        long: "host",
        value: Some("HOST"),
        help: "hostname (default 127.0.0.1)",
    },
    Opt {
        short: Some(b'P'),
        long: "port",
        value: Some("PORT"),
        help: "port (default 21)",
    },
    Opt {
        short: Some(b'b'),
        long: "benchmark",
        value: Some("BENCHMARK"),
        help: "benchmark type: transfer (the default), download, upload, concurrence, all, \
               idle-memory, logins, hold",
    },
    Opt {
        short: Some(b'n'),
        long: "clients",
        value: Some("CLIENTS"),
        help: "number of concurrent clients (default 200); a comma-separated list runs each \
               size in turn",
    },
    Opt {
        short: Some(b's'),
        long: "filesize",
        value: Some("FILESIZE"),
        help: "file size used by the 'concurrence' and 'download' benchmarks (default 10M)",
    },
    Opt {
        short: Some(b'k'),
        long: "pid",
        value: Some("PID"),
        help: "the PID of the FTP server process, to track its memory and CPU time",
    },
    Opt {
        short: Some(b't'),
        long: "timeout",
        value: Some("TIMEOUT"),
        help: "the socket timeout, and the bound on every phase, in seconds (default 60)",
    },
    Opt {
        short: Some(b'd'),
        long: "debug",
        value: None,
        help: "whether to print debugging info",
    },
    Opt {
        short: Some(b'S'),
        long: "ssl",
        value: None,
        help: "whether to use FTPS (AUTH TLS, PROT P; single-client workloads only: \
               transfer, upload, download)",
    },
    Opt {
        short: None,
        long: "max-in-flight",
        value: Some("K"),
        help: "at most this many connects + logins in progress at once (default: all)",
    },
    Opt {
        short: None,
        long: "login-timeout",
        value: Some("SECS"),
        help: "bound on a phase of concurrent connects + logins (default: --timeout); a burst \
               beyond a server's listen queue can leave clients connected but never greeted",
    },
    Opt {
        short: None,
        long: "rounds",
        value: Some("R"),
        help: "logins: run each burst R times and report the medians (default 1); a burst \
               of a few hundred logins takes milliseconds, so one round is mostly noise",
    },
    Opt {
        short: None,
        long: "seconds",
        value: Some("SECONDS"),
        help: "length of the single-client STOR / RETR measurements (default 1)",
    },
    Opt {
        short: None,
        long: "source-ips",
        value: Some("K"),
        help: "spread connections over 127.0.0.1 ..= 127.0.0.K (default: as needed)",
    },
    Opt {
        short: None,
        long: "tsv",
        value: Some("FILE"),
        help: "append each result to this file as `label \\t workload \\t value \\t unit \\t \
               mem \\t cpu \\t note`",
    },
    Opt {
        short: None,
        long: "label",
        value: Some("LABEL"),
        help: "the server's name in --tsv lines (default server)",
    },
    Opt {
        short: None,
        long: "bare-server",
        value: Some("PORT"),
        help: "run a bare mio login server on 127.0.0.1:PORT instead of benchmarking",
    },
    Opt {
        short: None,
        long: "report",
        value: Some("FILE"),
        help: "print a markdown table of the --tsv results in FILE instead of benchmarking",
    },
    Opt {
        short: None,
        long: "svg",
        value: Some("FILE"),
        help: "with --report: also write an SVG bar chart here",
    },
    Opt {
        short: None,
        long: "cgroup",
        value: Some("DIR"),
        help: "with -k: a cgroup v1 cpuacct folder that holds the server alone, for exact CPU \
               time (default: /proc/PID/stat of the process tree, in clock ticks)",
    },
];

/// The options, parsed.
#[derive(Debug)]
pub struct Opts {
    pub user: Option<String>,
    pub pass: Option<String>,
    pub host: String,
    pub port: u16,
    pub benchmark: String,
    pub clients: Vec<usize>,
    pub filesize: String,
    pub pid: Option<i32>,
    pub timeout: f64,
    pub debug: bool,
    pub ssl: bool,
    pub max_in_flight: Option<usize>,
    pub login_timeout: Option<f64>,
    pub seconds: f64,
    pub rounds: usize,
    pub source_ips: Option<u8>,
    pub tsv: Option<PathBuf>,
    pub label: String,
    pub bare_server: Option<u16>,
    pub report: Option<PathBuf>,
    pub svg: Option<PathBuf>,
    pub cgroup: Option<PathBuf>,
}

impl Opts {
    /// Parses the arguments after the program's name; `--bench`, which `cargo bench`
    /// passes, is left out.
    pub fn parse(args: &[OsString]) -> Result<Opts, Exit> {
        let mut o = Opts {
            user: None,
            pass: None,
            host: "127.0.0.1".to_owned(),
            port: 21,
            benchmark: "transfer".to_owned(),
            clients: vec![200],
            filesize: "10M".to_owned(),
            pid: None,
            timeout: 60.0,
            debug: false,
            ssl: false,
            max_in_flight: None,
            login_timeout: None,
            seconds: 1.0,
            rounds: 1,
            source_ips: None,
            tsv: None,
            label: "server".to_owned(),
            bare_server: None,
            report: None,
            svg: None,
            cgroup: None,
        };
        let args: Vec<OsString> = args.iter().filter(|a| *a != "--bench").cloned().collect();
        COMMAND.parse(&args, |opt, value| {
            let v = value.unwrap_or_default();
            let text = |what| argparse::text(v, what).map(str::to_owned);
            match opt.long {
                "user" => o.user = Some(text("UTF-8")?),
                "pass" => o.pass = Some(text("UTF-8")?),
                "host" => o.host = text("UTF-8")?,
                "port" => o.port = argparse::parse(v, "int")?,
                "benchmark" => o.benchmark = text("UTF-8")?,
                "clients" => {
                    let list = argparse::text(v, "int list")?.split(',');
                    o.clients = list
                        .map(|n| argparse::parse(OsStr::new(n), "int"))
                        .collect::<Result<_, _>>()?;
                }
                "filesize" => o.filesize = text("UTF-8")?,
                "pid" => o.pid = Some(argparse::parse(v, "int")?),
                "timeout" => o.timeout = argparse::parse(v, "float")?,
                "debug" => o.debug = true,
                "ssl" => o.ssl = true,
                "max-in-flight" => o.max_in_flight = Some(argparse::parse(v, "int")?),
                "login-timeout" => o.login_timeout = Some(argparse::parse(v, "float")?),
                "seconds" => o.seconds = argparse::parse(v, "float")?,
                "rounds" => o.rounds = argparse::parse::<usize>(v, "int")?.max(1),
                "source-ips" => o.source_ips = Some(argparse::parse(v, "int")?),
                "tsv" => o.tsv = Some(v.into()),
                "label" => o.label = text("UTF-8")?,
                "bare-server" => o.bare_server = Some(argparse::parse(v, "int")?),
                "report" => o.report = Some(v.into()),
                "svg" => o.svg = Some(v.into()),
                "cgroup" => o.cgroup = Some(v.into()),
                other => return Err(Exit::Error(format!("not handled: --{other}"))),
            }
            Ok(())
        })?;
        Ok(o)
    }
}

//! `ftpbench`: pyftpdlib's `scripts/ftpbench` rebuilt in Rust, with more workloads.
//!
//! ```text
//! cargo bench --bench ftpbench -- -u USER -p PASS -P 2121 -b all -k SERVER_PID
//! ```
//!
//! Workloads (`-b`), as in pyftpdlib 2.2.0's script:
//! - `upload`: STOR for `--seconds` (1 s) → MB/sec; `download`: STOR a `--filesize` file, then
//!   RETR it (again at EOF) for 1 s; `transfer`: both;
//! - `concurrence`: N clients connect + log in, STOR and RETR with N idle clients, N concurrent
//!   RETR and STOR of `--filesize`, N concurrent QUIT; `all`: transfer + concurrence;
//!
//! and beyond it:
//! - `idle-memory`: (mem(N) − mem(0)) / N for N logged-in idle sessions (needs `-k`);
//! - `logins`: N concurrent connect + login: wall time, p50 / p99 latency, server CPU per
//!   login (user and system, from /proc/PID/stat, summed over the server's process tree);
//! - `hold`: one client RETRs the whole `--filesize` file alone, then N sessions log in and
//!   stay, and the same RETR runs again while they are held: the rate both times, memory
//!   per held session (with `-k`), and whether all N still answer QUIT afterwards (e.g.
//!   `-b hold -n 19000 -s 1G`: one loop near a 20,000 open-files limit).
//!
//! `-n` takes a list (`-n 300,1000,10000`). Memory is RSS − shared, summed over the server's
//! process and all its descendants, as pyftpdlib's script does with psutil. The client runs on
//! non-blocking sockets (mio, edge-triggered), with one shared 256 KiB buffer for all
//! concurrent transfers and a 1 MiB buffer for single-client transfers: no allocation per
//! block. At most `--max-in-flight` connects + logins are in progress at once. Connections
//! are spread over 127.0.0.x source addresses when one address would run out of ports.
//!
//! `-S` runs the single-client workloads over FTPS, as pyftpdlib's FTP_TLS + PROT P: AUTH
//! TLS on each control connection, then USER / PASS, PBSZ 0, PROT P, and a TLS (rustls)
//! data connection per transfer that resumes the control session (one shared ClientConfig).
//! The server's certificate is not verified (benchmarks run against self-signed ones).
//!
//! Two helper modes serve `benches/compare.sh`: `--bare-server PORT` runs a bare mio loop
//! that only accepts, greets and answers USER / PASS / QUIT (the floor for CPU per login and
//! memory per session), and `--report TSV --svg OUT` turns the `--tsv` lines of several runs
//! into one markdown table (stdout) and an SVG bar chart.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener as MioListener, TcpStream as MioStream};
use mio::{Events, Interest, Poll, Token};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};

const TESTFN: &str = "$testfile";
/// Buffer of a single-client bulk transfer.
const BULK_BUF: usize = 1 << 20;
/// The one buffer shared by all concurrent transfers of the non-blocking client.
const MULTI_BUF: usize = 256 * 1024;
const MIB: f64 = 1024.0 * 1024.0;
/// Above this many connections from one source address, spread over 127.0.0.x.
const CONNS_PER_SOURCE: usize = 25_000;

/// The command line, parsed with argparse's rules by the parser the `ftpdlib` binary used
/// before clap; this program uses only part of it.
#[path = "argparse.rs"]
#[allow(dead_code, unused_imports)]
mod argparse;

use argparse::{Command, Exit, Opt, HELP};

const COMMAND: Command = Command {
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

#[derive(Debug)]
struct Opts {
    user: Option<String>,
    pass: Option<String>,
    host: String,
    port: u16,
    benchmark: String,
    clients: Vec<usize>,
    filesize: String,
    pid: Option<i32>,
    timeout: f64,
    debug: bool,
    ssl: bool,
    max_in_flight: Option<usize>,
    login_timeout: Option<f64>,
    seconds: f64,
    rounds: usize,
    source_ips: Option<u8>,
    tsv: Option<PathBuf>,
    label: String,
    bare_server: Option<u16>,
    report: Option<PathBuf>,
    svg: Option<PathBuf>,
    cgroup: Option<PathBuf>,
}

impl Opts {
    /// Parses the arguments after the program's name; `--bench`, which `cargo bench`
    /// passes, is left out.
    fn parse(args: &[OsString]) -> Result<Opts, Exit> {
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

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let o = match Opts::parse(&args) {
        Ok(o) => o,
        Err(exit) => return COMMAND.exit(exit),
    };
    raise_nofile();
    let res = if let Some(port) = o.bare_server {
        bare_server(port)
    } else if let Some(tsv) = &o.report {
        report(tsv, o.svg.as_deref())
    } else {
        run(&o)
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ftpbench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn other(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// Raises RLIMIT_NOFILE's soft limit to the hard limit.
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit / setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sizes and formatting
// ---------------------------------------------------------------------------------------

/// pyftpdlib's human2bytes: '10M' → 10 MiB (1024-based); a bare number is bytes.
fn human2bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, letter) = match s.chars().last()? {
        c if c.is_ascii_alphabetic() => (&s[..s.len() - 1], c.to_ascii_uppercase()),
        _ => (s, 'B'),
    };
    let pow = "BKMGTPEZY".find(letter)?;
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then(|| (n * 1024f64.powi(pow as i32)) as u64)
}

/// pyftpdlib's bytes2human: 10485760 → "10.0M".
fn bytes2human(n: u64) -> String {
    const SYMBOLS: &[u8] = b"KMGTPEZY";
    for (i, s) in SYMBOLS.iter().enumerate().rev() {
        let prefix = 1u128 << ((i + 1) * 10);
        if u128::from(n) >= prefix {
            return format!("{:.1}{}", n as f64 / prefix as f64, *s as char);
        }
    }
    format!("{:.1}B", n as f64)
}

/// `"; note"`, or nothing for an empty note.
fn sep_note(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!("; {note}")
    }
}

/// Nearest-rank percentile of sorted durations, in milliseconds.
fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------
// The server's process tree, from /proc
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    user: f64,
    sys: f64,
}

impl Cpu {
    fn total(&self) -> f64 {
        self.user + self.sys
    }
    fn since(&self, earlier: Cpu) -> Cpu {
        Cpu {
            user: self.user - earlier.user,
            sys: self.sys - earlier.sys,
        }
    }
}

struct ProcTree {
    root: i32,
    page: u64,
    hz: f64,
    /// A cgroup v1 cpuacct folder holding the server (and nothing else): exact CPU time,
    /// exited children included.
    cgroup: Option<PathBuf>,
}

/// The fields of /proc/PID/stat after the command name: [0] = state (field 3), [1] = ppid.
fn stat_fields(pid: i32) -> Option<Vec<u64>> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(
        rest.split_ascii_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

impl ProcTree {
    fn new(root: i32) -> io::Result<Self> {
        if !PathBuf::from(format!("/proc/{root}")).exists() {
            return Err(other(format!("no process {root}")));
        }
        // SAFETY: sysconf has no preconditions.
        let (page, hz) = unsafe {
            (
                libc::sysconf(libc::_SC_PAGESIZE),
                libc::sysconf(libc::_SC_CLK_TCK),
            )
        };
        Ok(ProcTree {
            root,
            page: page.max(1) as u64,
            hz: hz.max(1) as f64,
            cgroup: None,
        })
    }

    /// The root and all its descendants.
    fn pids(&self) -> Vec<i32> {
        let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
        if let Ok(dir) = fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                    continue;
                };
                if let Some(f) = stat_fields(pid) {
                    children.entry(f[1] as i32).or_default().push(pid);
                }
            }
        }
        let mut out = vec![self.root];
        let mut i = 0;
        while i < out.len() {
            if let Some(c) = children.get(&out[i]) {
                let me = out[i];
                out.extend(c.iter().copied().filter(|p| *p != me));
            }
            i += 1;
        }
        out
    }

    fn statm(&self, pid: i32) -> Option<(u64, u64)> {
        let s = fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
        let mut it = s.split_ascii_whitespace().skip(1);
        let resident: u64 = it.next()?.parse().ok()?;
        let shared: u64 = it.next()?.parse().ok()?;
        Some((resident * self.page, shared * self.page))
    }

    /// RSS − shared, summed over the tree (pyftpdlib's register_memory).
    fn mem(&self) -> u64 {
        self.pids()
            .into_iter()
            .filter_map(|p| self.statm(p))
            .map(|(rss, shared)| rss.saturating_sub(shared))
            .sum()
    }

    fn rss(&self) -> u64 {
        self.statm(self.root).map_or(0, |(rss, _)| rss)
    }

    /// User and system time: from the cgroup when given (nanoseconds), else from the live
    /// tree plus what its members reaped from exited children (cutime / cstime, in ticks).
    fn cpu(&self) -> Cpu {
        if let Some(g) = &self.cgroup {
            let read = |f: &str| -> Option<f64> {
                let s = fs::read_to_string(g.join(f)).ok()?;
                Some(s.trim().parse::<f64>().ok()? / 1e9)
            };
            if let (Some(total), Some(user)) = (read("cpuacct.usage"), read("cpuacct.usage_user")) {
                return Cpu {
                    user: user.min(total),
                    sys: (total - user).max(0.0),
                };
            }
        }
        let mut c = Cpu::default();
        for p in self.pids() {
            if let Some(f) = stat_fields(p) {
                if f.len() > 14 {
                    c.user += (f[11] + f[13]) as f64 / self.hz;
                    c.sys += (f[12] + f[14]) as f64 / self.hz;
                }
            }
        }
        c
    }
}

// ---------------------------------------------------------------------------------------
// Blocking client (ftplib's subset), for setup and single-client bulk transfers
// ---------------------------------------------------------------------------------------

struct Ftp {
    sock: Conn,
    rbuf: Vec<u8>,
    peer: IpAddr,
    timeout: Duration,
    debug: bool,
    /// With -S: TLS for the data connections (PROT P), sharing the control's session cache.
    tls: Option<Arc<ClientConfig>>,
}

/// A control or data connection: plain TCP, or TLS (client side) on it.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    /// Starts TLS on a plain connection and runs the handshake to its end.
    fn into_tls(self, config: &Arc<ClientConfig>) -> io::Result<Conn> {
        let tcp = match self {
            Conn::Plain(tcp) => tcp,
            Conn::Tls(_) => return Err(other("TLS is already on")),
        };
        let name = ServerName::try_from("localhost").map_err(|e| other(e.to_string()))?;
        let conn = ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
        let mut s = Box::new(rustls::StreamOwned::new(conn, tcp));
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock)?;
        }
        Ok(Conn::Tls(s))
    }

    /// Ends the connection cleanly: everything written is sent, then close_notify (TLS)
    /// and FIN. The end of an upload.
    fn finish(mut self) -> io::Result<()> {
        if let Conn::Tls(s) = &mut self {
            s.flush()?;
            s.conn.send_close_notify();
            while s.conn.wants_write() {
                s.conn.write_tls(&mut s.sock)?;
            }
        }
        let tcp = match &self {
            Conn::Plain(t) => t,
            Conn::Tls(s) => &s.sock,
        };
        let _ = tcp.shutdown(Shutdown::Write);
        Ok(())
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            // A peer that closes without close_notify: the end of the data all the same.
            Conn::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// A client configuration for -S: trusts any certificate (benchmarks run against
/// self-signed ones; signatures are still checked) and keeps sessions in memory, so data
/// connections made with it resume the control connection's session.
fn tls_client_config() -> io::Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Trusts every certificate; signatures are still checked.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Where a reply ends in `buf`: (bytes consumed, code), or None if it is not complete.
fn parse_reply(buf: &[u8]) -> Option<(usize, u16)> {
    let mut pos = 0;
    let mut multi: Option<&[u8]> = None;
    while let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') {
        let line = &buf[pos..pos + nl];
        pos += nl + 1;
        if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
            continue;
        }
        let sep = line.get(3).copied().unwrap_or(b' ');
        match multi {
            None if sep == b'-' => multi = Some(&line[..3]),
            None => return Some((pos, code_of(line))),
            Some(c) if line[..3] == *c && sep != b'-' => return Some((pos, code_of(line))),
            Some(_) => {}
        }
    }
    None
}

fn code_of(line: &[u8]) -> u16 {
    line[..3]
        .iter()
        .fold(0u16, |a, d| a * 10 + u16::from(d - b'0'))
}

/// The port of a 227 reply: the first run of six comma-separated numbers.
fn parse_pasv(text: &[u8]) -> Option<u16> {
    let text = text.get(3..)?;
    let start = text.iter().position(u8::is_ascii_digit)?;
    let run: Vec<u16> = text[start..]
        .split(|b| !b.is_ascii_digit() && *b != b',')
        .next()?
        .split(|b| *b == b',')
        .map(|n| std::str::from_utf8(n).ok()?.parse().ok())
        .collect::<Option<_>>()?;
    (run.len() == 6 && run[4] < 256 && run[5] < 256).then(|| run[4] * 256 + run[5])
}

impl Ftp {
    fn connect(o: &Cfg) -> io::Result<Ftp> {
        let sock = TcpStream::connect_timeout(&o.addr, o.timeout)?;
        sock.set_read_timeout(Some(o.timeout))?;
        sock.set_write_timeout(Some(o.timeout))?;
        let mut f = Ftp {
            peer: o.addr.ip(),
            sock: Conn::Plain(sock),
            rbuf: Vec::with_capacity(1024),
            timeout: o.timeout,
            debug: o.debug,
            tls: o.tls.clone(),
        };
        let (code, text) = f.resp()?;
        if code / 100 != 2 {
            return Err(other(format!("greeting: {text}")));
        }
        if let Some(config) = &o.tls {
            let (code, text) = f.cmd("AUTH TLS")?;
            if code != 234 {
                return Err(other(format!("AUTH TLS: {text}")));
            }
            if !f.rbuf.is_empty() {
                return Err(other("AUTH TLS: clear-text bytes after the 234"));
            }
            f.sock = f.sock.into_tls(config)?;
        }
        let (code, text) = f.cmd(&format!("USER {}", o.user))?;
        if code == 331 {
            f.voidcmd(&format!("PASS {}", o.pass))?;
        } else if code / 100 != 2 {
            return Err(other(format!("USER: {text}")));
        }
        if f.tls.is_some() {
            f.voidcmd("PBSZ 0")?;
            f.voidcmd("PROT P")?;
        }
        Ok(f)
    }

    fn resp(&mut self) -> io::Result<(u16, String)> {
        let mut tmp = [0u8; 4096];
        loop {
            if let Some((used, code)) = parse_reply(&self.rbuf) {
                let text = String::from_utf8_lossy(&self.rbuf[..used])
                    .trim()
                    .to_owned();
                self.rbuf.drain(..used);
                if self.debug {
                    eprintln!("*resp* {text}");
                }
                return Ok((code, text));
            }
            let n = self.sock.read(&mut tmp)?;
            if n == 0 {
                return Err(other("control connection closed"));
            }
            self.rbuf.extend_from_slice(&tmp[..n]);
        }
    }

    fn cmd(&mut self, line: &str) -> io::Result<(u16, String)> {
        if self.debug {
            eprintln!("*cmd* {line}");
        }
        self.sock.write_all(format!("{line}\r\n").as_bytes())?;
        self.resp()
    }

    fn voidcmd(&mut self, line: &str) -> io::Result<()> {
        let (code, text) = self.cmd(line)?;
        if code / 100 != 2 {
            return Err(other(format!("{line}: {text}")));
        }
        Ok(())
    }

    fn voidresp(&mut self) -> io::Result<()> {
        let (code, text) = self.resp()?;
        if code / 100 != 2 {
            return Err(other(text));
        }
        Ok(())
    }

    /// PASV, connect the data channel, send `cmd`, expect a 1xx reply (ftplib's transfercmd).
    /// With -S, the data connection is then wrapped in TLS (handshake done), as ftplib's
    /// FTP_TLS does after the 1xx.
    fn transfercmd(&mut self, cmd: &str) -> io::Result<Conn> {
        let (code, text) = self.cmd("PASV")?;
        let port = parse_pasv(text.as_bytes())
            .filter(|_| code == 227)
            .ok_or_else(|| other(format!("PASV: {text}")))?;
        let d = TcpStream::connect_timeout(&SocketAddr::new(self.peer, port), self.timeout)?;
        d.set_read_timeout(Some(self.timeout))?;
        d.set_write_timeout(Some(self.timeout))?;
        let (code, text) = self.cmd(cmd)?;
        if code / 100 != 1 {
            return Err(other(format!("{cmd}: {text}")));
        }
        let Some(config) = &self.tls else {
            return Ok(Conn::Plain(d));
        };
        let d = Conn::Plain(d).into_tls(config)?;
        if self.debug {
            if let Conn::Tls(s) = &d {
                eprintln!("*tls* data connection: {:?}", s.conn.handshake_kind());
            }
        }
        Ok(d)
    }

    fn quit(mut self) {
        let _ = self.cmd("QUIT");
    }
}

// ---------------------------------------------------------------------------------------
// Non-blocking client: many control + data connections on one mio poller
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    Connecting,
    Greeting,
    User,
    Pass,
    Idle,
    Type,
    Pasv,
    DataConnecting,
    Cmd,
    Xfer,
    Quit,
    Closed,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Retr,
    Stor,
}

struct Client {
    ctrl: Option<MioStream>,
    data: Option<MioStream>,
    data_up: bool,
    st: St,
    /// A partial reply line carried over between reads (usually empty: no allocation).
    line: Vec<u8>,
    multi: Option<[u8; 3]>,
    /// Control bytes the socket did not take yet (usually empty).
    out: Vec<u8>,
    src: Option<IpAddr>,
    t0: Instant,
    moved: u64,
    data_done: bool,
    reply_done: bool,
    started: bool,
}

struct Cmds {
    user: Vec<u8>,
    pass: Vec<u8>,
    type_i: Vec<u8>,
    pasv: Vec<u8>,
    retr: Vec<u8>,
    stor: Vec<u8>,
    quit: Vec<u8>,
}

/// What a phase of the non-blocking client achieved.
struct Phase {
    elapsed: Duration,
    done: usize,
    failed: usize,
    timed_out: bool,
    /// At a time-out: how many clients were left in which state.
    stuck: String,
}

impl Phase {
    fn note(&self, n: usize) -> String {
        let mut s = String::new();
        if self.failed > 0 {
            let _ = write!(s, "{} of {n} failed", self.failed);
        }
        if self.timed_out {
            if !s.is_empty() {
                s.push_str("; ");
            }
            let _ = write!(s, "timed out with {} of {n} done", self.done);
            if !self.stuck.is_empty() {
                let _ = write!(s, "; left: {}", self.stuck);
            }
        }
        s
    }
}

struct Multi {
    o: Cfg,
    poll: Poll,
    events: Events,
    ready: Vec<usize>,
    cl: Vec<Client>,
    scratch: Vec<u8>,
    wbuf: Vec<u8>,
    cmds: Cmds,
    op: Op,
    size: u64,
    done: usize,
    failed: usize,
    moved: u64,
    lat: Vec<Duration>,
    errors: Vec<String>,
}

/// A non-blocking socket connecting to `dst`, bound to `src` first when given.
fn open_stream(dst: SocketAddr, src: Option<IpAddr>) -> io::Result<MioStream> {
    let s = Socket::new(Domain::for_address(dst), Type::STREAM, Some(Protocol::TCP))?;
    s.set_nonblocking(true)?;
    if let Some(ip) = src {
        let one: libc::c_int = 1;
        // SAFETY: a valid socket and a pointer to a c_int of the size passed. Lets bind()
        // leave the port to connect(), so each source address gets the whole port range.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&s),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        s.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match s.connect(&dst.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(MioStream::from_std(s.into()))
}

/// Whether a connecting socket is connected now: Ok(false) = not yet.
fn established(s: &MioStream) -> io::Result<bool> {
    if let Some(e) = s.take_error()? {
        return Err(e);
    }
    match s.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` now, or queues what the socket does not take.
fn send(c: &mut Client, bytes: &[u8]) -> io::Result<()> {
    if !c.out.is_empty() {
        c.out.extend_from_slice(bytes);
        return flush(c);
    }
    let Some(s) = c.ctrl.as_mut() else {
        return Ok(());
    };
    let mut off = 0;
    while off < bytes.len() {
        match s.write(&bytes[off..]) {
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    c.out.extend_from_slice(&bytes[off..]);
    Ok(())
}

fn flush(c: &mut Client) -> io::Result<()> {
    let Some(s) = c.ctrl.as_mut() else {
        return Ok(());
    };
    while !c.out.is_empty() {
        match s.write(&c.out) {
            Ok(n) => {
                c.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Multi {
    fn new(o: Cfg) -> io::Result<Self> {
        let line = |s: String| format!("{s}\r\n").into_bytes();
        let cmds = Cmds {
            user: line(format!("USER {}", o.user)),
            pass: line(format!("PASS {}", o.pass)),
            type_i: line("TYPE I".into()),
            pasv: line("PASV".into()),
            retr: line(format!("RETR {TESTFN}")),
            stor: line(format!("STOR {TESTFN}")),
            quit: line("QUIT".into()),
        };
        Ok(Multi {
            o,
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            ready: Vec::with_capacity(4096),
            cl: Vec::new(),
            scratch: vec![0; MULTI_BUF],
            wbuf: vec![b'x'; MULTI_BUF],
            cmds,
            op: Op::Retr,
            size: 0,
            done: 0,
            failed: 0,
            moved: 0,
            lat: Vec::new(),
            errors: Vec::new(),
        })
    }

    /// Counts the clients in `range` that are neither idle nor closed, by state.
    fn stuck(&self, range: std::ops::Range<usize>) -> String {
        let mut counts: Vec<(St, usize)> = Vec::new();
        for c in &self.cl[range] {
            if matches!(c.st, St::Idle | St::Closed) {
                continue;
            }
            match counts.iter_mut().find(|(st, _)| *st == c.st) {
                Some((_, n)) => *n += 1,
                None => counts.push((c.st, 1)),
            }
        }
        let parts: Vec<String> = counts.iter().map(|(st, n)| format!("{n} {st:?}")).collect();
        parts.join(", ")
    }

    fn live(&self) -> usize {
        self.cl.iter().filter(|c| c.st == St::Idle).count()
    }

    fn fail(&mut self, i: usize, why: impl std::fmt::Display) {
        let c = &mut self.cl[i];
        if c.st == St::Closed {
            return;
        }
        let msg = format!("client {i} ({:?}): {why}", c.st);
        for s in [c.ctrl.take(), c.data.take()].into_iter().flatten() {
            let mut s = s;
            let _ = self.poll.registry().deregister(&mut s);
        }
        c.st = St::Closed;
        self.failed += 1;
        if self.o.debug {
            eprintln!("{msg}");
        }
        if self.errors.len() < 5 {
            self.errors.push(msg);
        }
    }

    fn close(&mut self, i: usize) {
        let c = &mut self.cl[i];
        for s in [c.ctrl.take(), c.data.take()].into_iter().flatten() {
            let mut s = s;
            let _ = self.poll.registry().deregister(&mut s);
        }
        c.st = St::Closed;
    }

    fn drop_data(&mut self, i: usize) {
        if let Some(mut d) = self.cl[i].data.take() {
            let _ = self.poll.registry().deregister(&mut d);
        }
    }

    /// Opens one more control connection.
    fn spawn(&mut self) {
        let i = self.cl.len();
        let src = (!self.o.sources.is_empty()).then(|| self.o.sources[i % self.o.sources.len()]);
        let mut c = Client {
            ctrl: None,
            data: None,
            data_up: false,
            st: St::Connecting,
            line: Vec::new(),
            multi: None,
            out: Vec::new(),
            src,
            t0: Instant::now(),
            moved: 0,
            data_done: false,
            reply_done: false,
            started: false,
        };
        let res = open_stream(self.o.addr, src).and_then(|mut s| {
            self.poll.registry().register(
                &mut s,
                Token(i * 2),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(s)
        });
        match res {
            Ok(s) => {
                c.ctrl = Some(s);
                self.cl.push(c);
            }
            Err(e) => {
                self.cl.push(c);
                self.fail(i, format!("connect: {e}"));
            }
        }
    }

    /// Polls once and handles what is ready.
    fn turn(&mut self, deadline: Instant) -> io::Result<()> {
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(50));
        match self.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        ready.extend(self.events.iter().map(|e| e.token().0));
        for &t in &ready {
            if t / 2 >= self.cl.len() {
                continue;
            }
            if t % 2 == 0 {
                self.on_ctrl(t / 2);
            } else {
                self.on_data(t / 2);
            }
        }
        self.ready = ready;
        Ok(())
    }

    fn on_ctrl(&mut self, i: usize) {
        if self.cl[i].ctrl.is_none() {
            return;
        }
        if self.cl[i].st == St::Connecting {
            match established(self.cl[i].ctrl.as_ref().expect("ctrl")) {
                Ok(true) => self.cl[i].st = St::Greeting,
                Ok(false) => return,
                Err(e) => return self.fail(i, format!("connect: {e}")),
            }
        }
        if let Err(e) = flush(&mut self.cl[i]) {
            return self.fail(i, format!("write: {e}"));
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        while let Some(s) = self.cl[i].ctrl.as_mut() {
            match s.read(&mut scratch) {
                Ok(0) => {
                    if self.cl[i].st == St::Quit {
                        self.done += 1;
                        self.close(i);
                    } else {
                        self.fail(i, "control connection closed by the server");
                    }
                    break;
                }
                Ok(n) => self.feed(i, &scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if self.cl[i].st == St::Quit {
                        self.done += 1;
                        self.close(i);
                    } else {
                        self.fail(i, format!("read: {e}"));
                    }
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    /// Splits control bytes into lines and hands each complete reply to `on_reply`.
    fn feed(&mut self, i: usize, mut data: &[u8]) {
        while let Some(nl) = data.iter().position(|&b| b == b'\n') {
            let (head, rest) = data.split_at(nl + 1);
            data = rest;
            let c = &mut self.cl[i];
            let joined;
            let line: &[u8] = if c.line.is_empty() {
                head
            } else {
                c.line.extend_from_slice(head);
                joined = std::mem::take(&mut c.line);
                &joined
            };
            if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
                continue;
            }
            let code3 = [line[0], line[1], line[2]];
            let sep = line.get(3).copied().unwrap_or(b' ');
            let complete = match c.multi {
                None if sep == b'-' => {
                    c.multi = Some(code3);
                    false
                }
                None => true,
                Some(m) if m == code3 && sep != b'-' => {
                    c.multi = None;
                    true
                }
                Some(_) => false,
            };
            if complete {
                let port = if code3 == *b"227" {
                    parse_pasv(line)
                } else {
                    None
                };
                if self.o.debug {
                    eprintln!("client {i}: {}", String::from_utf8_lossy(line).trim_end());
                }
                self.on_reply(i, code_of(line), port);
                if self.cl[i].st == St::Closed {
                    return;
                }
            }
        }
        if !data.is_empty() {
            self.cl[i].line.extend_from_slice(data);
        }
    }

    fn on_reply(&mut self, i: usize, code: u16, port: Option<u16>) {
        let st = self.cl[i].st;
        let class = code / 100;
        let res = match (st, class) {
            (St::Greeting, 1) | (St::Xfer, 1) | (St::Idle, _) => Ok(()),
            (St::Greeting, 2) => {
                self.cl[i].st = St::User;
                send(&mut self.cl[i], &self.cmds.user)
            }
            (St::User, _) if code == 331 => {
                self.cl[i].st = St::Pass;
                send(&mut self.cl[i], &self.cmds.pass)
            }
            (St::User, 2) | (St::Pass, 2) => {
                self.lat.push(self.cl[i].t0.elapsed());
                self.cl[i].st = St::Idle;
                self.done += 1;
                Ok(())
            }
            (St::Type, 2) => {
                self.cl[i].st = St::Pasv;
                send(&mut self.cl[i], &self.cmds.pasv)
            }
            (St::Pasv, 2) if port.is_some() => self.open_data(i, port.unwrap_or(0)),
            (St::Cmd, 1) => {
                self.cl[i].st = St::Xfer;
                if self.op == Op::Stor {
                    self.on_data(i);
                }
                Ok(())
            }
            (St::Xfer, 2) => {
                self.cl[i].reply_done = true;
                self.check_done(i);
                Ok(())
            }
            (St::Quit, _) => {
                self.done += 1;
                self.close(i);
                Ok(())
            }
            _ => Err(other(format!("unexpected reply {code}"))),
        };
        if let Err(e) = res {
            self.fail(i, e);
        }
    }

    fn open_data(&mut self, i: usize, port: u16) -> io::Result<()> {
        let dst = SocketAddr::new(self.o.addr.ip(), port);
        let mut d = open_stream(dst, self.cl[i].src)?;
        self.poll.registry().register(
            &mut d,
            Token(i * 2 + 1),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let c = &mut self.cl[i];
        c.data = Some(d);
        c.data_up = false;
        c.st = St::DataConnecting;
        Ok(())
    }

    fn on_data(&mut self, i: usize) {
        let Some(d) = self.cl[i].data.as_ref() else {
            return;
        };
        if !self.cl[i].data_up {
            match established(d) {
                Ok(true) => {
                    let c = &mut self.cl[i];
                    c.data_up = true;
                    c.st = St::Cmd;
                    let cmd = match self.op {
                        Op::Retr => &self.cmds.retr,
                        Op::Stor => &self.cmds.stor,
                    };
                    if let Err(e) = send(c, cmd) {
                        return self.fail(i, format!("write: {e}"));
                    }
                }
                Ok(false) => return,
                Err(e) => return self.fail(i, format!("data connect: {e}")),
            }
        }
        match self.op {
            Op::Retr => self.pump_retr(i),
            Op::Stor if self.cl[i].st == St::Xfer => self.pump_stor(i),
            Op::Stor => {}
        }
    }

    fn pump_retr(&mut self, i: usize) {
        let mut scratch = std::mem::take(&mut self.scratch);
        while let Some(d) = self.cl[i].data.as_mut() {
            match d.read(&mut scratch) {
                Ok(0) => {
                    self.drop_data(i);
                    self.cl[i].data_done = true;
                    self.check_done(i);
                    break;
                }
                Ok(n) => self.cl[i].moved += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(i, format!("data read: {e}"));
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    fn pump_stor(&mut self, i: usize) {
        let size = self.size;
        loop {
            let c = &mut self.cl[i];
            let Some(d) = c.data.as_mut() else {
                break;
            };
            let left = size - c.moved;
            if left == 0 {
                self.drop_data(i);
                self.cl[i].data_done = true;
                self.check_done(i);
                break;
            }
            let n = left.min(self.wbuf.len() as u64) as usize;
            match d.write(&self.wbuf[..n]) {
                Ok(n) => c.moved += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(i, format!("data write: {e}"));
                    break;
                }
            }
        }
    }

    fn check_done(&mut self, i: usize) {
        let c = &mut self.cl[i];
        if c.data_done && c.reply_done {
            if self.op == Op::Retr && c.moved != self.size && self.errors.len() < 5 {
                self.errors.push(format!(
                    "client {i}: RETR got {} bytes, expected {}",
                    c.moved, self.size
                ));
            }
            self.moved += c.moved;
            c.st = St::Idle;
            self.done += 1;
        }
    }

    fn reset_counts(&mut self) {
        self.done = 0;
        self.failed = 0;
        self.moved = 0;
        self.errors.clear();
    }

    fn report_errors(&self, what: &str) {
        for e in &self.errors {
            eprintln!("ftpbench: {what}: {e}");
        }
    }

    /// Connects and logs in `n` more clients, at most `k` in progress at once.
    fn login(&mut self, n: usize, k: usize) -> io::Result<Phase> {
        self.reset_counts();
        self.lat.clear();
        let start = Instant::now();
        let deadline = start + self.o.login_timeout;
        let first = self.cl.len();
        let mut started = 0;
        let mut timed_out = false;
        while self.done + self.failed < n {
            while started < n && started - (self.done + self.failed) < k {
                self.spawn();
                started += 1;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                break;
            }
            self.turn(deadline)?;
        }
        let elapsed = start.elapsed();
        let stuck = if timed_out {
            self.stuck(first..self.cl.len())
        } else {
            String::new()
        };
        if timed_out {
            for i in first..self.cl.len() {
                if !matches!(self.cl[i].st, St::Idle | St::Closed) {
                    self.close(i);
                }
            }
        }
        self.report_errors("login");
        Ok(Phase {
            elapsed,
            done: self.done,
            failed: self.failed,
            timed_out,
            stuck,
        })
    }

    /// Every idle client RETRs or STORs the test file at once; timed until the last 226.
    fn transfer(&mut self, op: Op, size: u64) -> io::Result<Phase> {
        self.reset_counts();
        self.op = op;
        self.size = size;
        let start = Instant::now();
        let deadline = start + self.o.timeout;
        let mut n = 0;
        for i in 0..self.cl.len() {
            if self.cl[i].st != St::Idle {
                continue;
            }
            n += 1;
            let c = &mut self.cl[i];
            c.moved = 0;
            c.data_done = false;
            c.reply_done = false;
            c.started = true;
            c.st = St::Type;
            if let Err(e) = send(c, &self.cmds.type_i) {
                self.fail(i, format!("write: {e}"));
            }
        }
        let timed_out = self.run_until_done(n, deadline)?;
        let elapsed = start.elapsed();
        let stuck = if timed_out {
            self.stuck(0..self.cl.len())
        } else {
            String::new()
        };
        if timed_out {
            for i in 0..self.cl.len() {
                if self.cl[i].started && !matches!(self.cl[i].st, St::Idle | St::Closed) {
                    self.close(i);
                }
            }
        }
        for c in &mut self.cl {
            c.started = false;
        }
        self.report_errors(match op {
            Op::Retr => "RETR",
            Op::Stor => "STOR",
        });
        Ok(Phase {
            elapsed,
            done: self.done,
            failed: self.failed,
            timed_out,
            stuck,
        })
    }

    /// Polls for `time` without sending anything: an idle client whose connection the
    /// server closed meanwhile fails.
    fn watch(&mut self, time: Duration) -> io::Result<()> {
        self.reset_counts();
        let deadline = Instant::now() + time;
        while Instant::now() < deadline {
            self.turn(deadline)?;
        }
        self.report_errors("idle");
        Ok(())
    }

    /// QUIT on every idle client; timed until each got its reply (or EOF).
    fn quit(&mut self) -> io::Result<Phase> {
        self.reset_counts();
        let start = Instant::now();
        let deadline = start + self.o.timeout;
        let mut n = 0;
        for i in 0..self.cl.len() {
            if self.cl[i].st != St::Idle {
                continue;
            }
            n += 1;
            self.cl[i].st = St::Quit;
            if let Err(e) = send(&mut self.cl[i], &self.cmds.quit) {
                self.fail(i, format!("write: {e}"));
            }
        }
        let timed_out = self.run_until_done(n, deadline)?;
        let elapsed = start.elapsed();
        let stuck = if timed_out {
            self.stuck(0..self.cl.len())
        } else {
            String::new()
        };
        self.report_errors("QUIT");
        self.clear();
        Ok(Phase {
            elapsed,
            done: self.done,
            failed: self.failed,
            timed_out,
            stuck,
        })
    }

    /// Drives the clients until `n` are done or failed; true if `deadline` came first.
    fn run_until_done(&mut self, n: usize, deadline: Instant) -> io::Result<bool> {
        while self.done + self.failed < n {
            if Instant::now() >= deadline {
                return Ok(true);
            }
            self.turn(deadline)?;
        }
        Ok(false)
    }

    /// Closes every connection.
    fn clear(&mut self) {
        for i in 0..self.cl.len() {
            self.close(i);
        }
        self.cl.clear();
    }

    /// Resets every connection (SO_LINGER 0): unlike a QUIT, after which the server closes
    /// first, this leaves no server-side TIME_WAIT whose 4-tuple a later connect could hit
    /// (a SYN that meets a TIME_WAIT stalls for the 1 s SYN retransmission).
    fn abort(&mut self) {
        for c in &self.cl {
            for s in [&c.ctrl, &c.data].into_iter().flatten() {
                let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
            }
        }
        self.clear();
    }
}

// ---------------------------------------------------------------------------------------
// The benchmark
// ---------------------------------------------------------------------------------------

/// Resolved options.
#[derive(Clone)]
struct Cfg {
    addr: SocketAddr,
    user: String,
    pass: String,
    timeout: Duration,
    login_timeout: Duration,
    debug: bool,
    sources: Vec<IpAddr>,
    /// -S: FTPS for the blocking client (AUTH TLS, PROT P).
    tls: Option<Arc<ClientConfig>>,
}

struct Bench<'a> {
    o: &'a Opts,
    cfg: Cfg,
    proc_: Option<ProcTree>,
    file_size: u64,
    secs: Duration,
    bulk: Vec<u8>,
    tsv: Option<fs::File>,
}

impl Bench<'_> {
    fn connect(&self) -> io::Result<Ftp> {
        Ftp::connect(&self.cfg)
    }

    fn mem(&self) -> Option<u64> {
        self.proc_.as_ref().map(ProcTree::mem)
    }

    fn cpu(&self) -> Option<Cpu> {
        self.proc_.as_ref().map(ProcTree::cpu)
    }

    /// One result line, pyftpdlib's `%-50s %8.2f %-8s<memory>`, plus the server's CPU time
    /// over the workload when `-k` is given.
    fn print(
        &mut self,
        what: &str,
        value: f64,
        unit: &str,
        mem: Option<u64>,
        cpu: Option<Cpu>,
        note: &str,
    ) {
        let mut s = format!("{what:<50} {value:>8.2} {unit:<8}");
        if let Some(m) = mem {
            s.push_str(&bytes2human(m));
        }
        if let Some(c) = cpu {
            let _ = write!(s, "  cpu {:.2}s (usr {:.2}s)", c.total(), c.user);
        }
        if !note.is_empty() {
            let _ = write!(s, "  [{note}]");
        }
        println!("{}", s.trim_end());
        if let Some(f) = self.tsv.as_mut() {
            let _ = writeln!(
                f,
                "{}\t{what}\t{value:.6}\t{unit}\t{}\t{}\t{note}",
                self.o.label,
                mem.map_or(String::new(), |m| m.to_string()),
                cpu.map_or(String::new(), |c| format!("{:.3}", c.total())),
            );
        }
    }

    /// Server CPU per GiB moved, as an extra line (with -k).
    fn print_cpu_per_gib(&mut self, title: &str, cpu: Option<Cpu>, bytes: u64) {
        if let Some(c) = cpu {
            if bytes > 0 {
                let per = c.total() / (bytes as f64 / (1u64 << 30) as f64);
                self.print(
                    &format!("{title}: server CPU/GiB"),
                    per,
                    "secs",
                    None,
                    None,
                    "",
                );
            }
        }
    }

    /// Uploads `size` bytes of dummy data as the test file (not timed).
    fn stor_file(&self, size: u64) -> io::Result<()> {
        let mut ftp = self.connect()?;
        ftp.voidcmd("TYPE I")?;
        let mut d = ftp.transfercmd(&format!("STOR {TESTFN}"))?;
        let mut left = size;
        while left > 0 {
            let n = left.min(self.bulk.len() as u64) as usize;
            d.write_all(&self.bulk[..n])?;
            left -= n as u64;
        }
        d.finish()?;
        ftp.voidresp()?;
        ftp.quit();
        Ok(())
    }

    /// STOR for `--seconds`: bytes sent / time until the server's 226.
    fn bench_stor(&mut self, title: &str) -> io::Result<()> {
        let mut ftp = self.connect()?;
        ftp.voidcmd("TYPE I")?;
        let cpu0 = self.cpu();
        let mut d = ftp.transfercmd(&format!("STOR {TESTFN}"))?;
        let start = Instant::now();
        let mut total = 0u64;
        while start.elapsed() < self.secs {
            let n = d.write(&self.bulk)?;
            if n == 0 {
                return Err(other("STOR: data connection closed"));
            }
            total += n as u64;
        }
        let mem = self.mem();
        d.finish()?;
        ftp.voidresp()?;
        let elapsed = start.elapsed().as_secs_f64();
        let cpu = self.cpu().zip(cpu0).map(|(a, b)| a.since(b));
        self.print(title, total as f64 / MIB / elapsed, "MB/sec", mem, cpu, "");
        self.print_cpu_per_gib(title, cpu, total);
        ftp.quit();
        Ok(())
    }

    /// After an upload to a server on this machine: writes the upload back to disk before
    /// the next workload is timed. A few GB of fresh dirty pages start the kernel's
    /// writeback, which otherwise runs during the download that follows, on the same
    /// cores, by chance more or less of it for one server than for another.
    fn flush_upload(&self) {
        if self.cfg.addr.ip().is_loopback() {
            // SAFETY: sync(2) takes no arguments and cannot fail.
            unsafe { libc::sync() };
        }
    }

    /// RETR the whole test file once: the rate, checked against the file's size.
    fn retr_whole(&mut self, title: &str) -> io::Result<()> {
        let mut ftp = self.connect()?;
        ftp.voidcmd("TYPE I")?;
        let cpu0 = self.cpu();
        let start = Instant::now();
        let mut d = ftp.transfercmd(&format!("RETR {TESTFN}"))?;
        let mut bulk = std::mem::take(&mut self.bulk);
        let mut total = 0u64;
        let read = loop {
            match d.read(&mut bulk) {
                Ok(0) => break Ok(()),
                Ok(n) => total += n as u64,
                Err(e) => break Err(e),
            }
        };
        self.bulk = bulk;
        read?;
        drop(d);
        ftp.voidresp()?;
        let elapsed = start.elapsed().as_secs_f64();
        let mem = self.mem();
        let cpu = self.cpu().zip(cpu0).map(|(a, b)| a.since(b));
        if total != self.file_size {
            return Err(other(format!("RETR: {total} bytes of {}", self.file_size)));
        }
        self.print(title, total as f64 / MIB / elapsed, "MB/sec", mem, cpu, "");
        self.print_cpu_per_gib(title, cpu, total);
        ftp.quit();
        Ok(())
    }

    /// RETR the test file for `--seconds`, again at EOF (the re-request time is not counted,
    /// as in pyftpdlib).
    fn bench_retr(&mut self, title: &str) -> io::Result<()> {
        let mut ftp = self.connect()?;
        ftp.voidcmd("TYPE I")?;
        let cpu0 = self.cpu();
        let cmd = format!("RETR {TESTFN}");
        let mut d = ftp.transfercmd(&cmd)?;
        let start = Instant::now();
        let mut stop_at = start + self.secs;
        let mut excluded = Duration::ZERO;
        let mut total = 0u64;
        let mut bulk = std::mem::take(&mut self.bulk);
        while Instant::now() < stop_at {
            let n = d.read(&mut bulk)?;
            if n == 0 {
                let a = Instant::now();
                drop(d);
                ftp.voidresp()?;
                d = ftp.transfercmd(&cmd)?;
                let gap = a.elapsed();
                stop_at += gap;
                excluded += gap;
                if start.elapsed() > self.cfg.timeout {
                    return Err(other("RETR: timed out"));
                }
            }
            total += n as u64;
        }
        self.bulk = bulk;
        let elapsed = (start.elapsed() - excluded).as_secs_f64();
        let mem = self.mem();
        let cpu = self.cpu().zip(cpu0).map(|(a, b)| a.since(b));
        drop(d);
        // The server answers an aborted transfer with 426 (or 226 if it had sent it all).
        let _ = ftp.resp();
        self.print(title, total as f64 / MIB / elapsed, "MB/sec", mem, cpu, "");
        self.print_cpu_per_gib(title, cpu, total);
        ftp.quit();
        Ok(())
    }

    fn max_in_flight(&self, n: usize) -> usize {
        self.o.max_in_flight.unwrap_or(n).max(1)
    }

    /// pyftpdlib's bench_multi, on the non-blocking client.
    fn bench_multi(&mut self, n: usize) -> io::Result<()> {
        if let Some(t) = &self.proc_ {
            self.settle(t.pids().len());
        }
        let mut m = Multi::new(self.cfg.clone())?;
        let cpu0 = self.cpu();
        let k = self.max_in_flight(n);
        let p = m.login(n, k)?;
        let mem = self.mem();
        let cpu = self.cpu().zip(cpu0).map(|(a, b)| a.since(b));
        let title = if k < n {
            format!("{n} concurrent clients (connect, login; {k} in flight)")
        } else {
            format!("{n} concurrent clients (connect, login)")
        };
        self.print(
            &title,
            p.elapsed.as_secs_f64(),
            "secs",
            mem,
            cpu,
            &p.note(n),
        );
        // The single-client workloads use their own connection, as in pyftpdlib.
        let live = m.live();
        self.bench_stor(&format!("STOR (1 file with {live} idle clients)"))?;
        self.flush_upload();
        self.bench_retr(&format!("RETR (1 file with {live} idle clients)"))?;
        self.stor_file(self.file_size)?;
        self.flush_upload();
        for op in [Op::Retr, Op::Stor] {
            let live = m.live();
            let cpu0 = self.cpu();
            let p = m.transfer(op, self.file_size)?;
            let mem = self.mem();
            let cpu = self.cpu().zip(cpu0).map(|(a, b)| a.since(b));
            let name = if op == Op::Retr { "RETR" } else { "STOR" };
            let title = format!(
                "{live} concurrent clients ({name} {} file)",
                bytes2human(self.file_size)
            );
            self.print(
                &title,
                p.elapsed.as_secs_f64(),
                "secs",
                mem,
                cpu,
                &p.note(live),
            );
            self.print_cpu_per_gib(&title, cpu, m.moved);
        }
        let live = m.live();
        let cpu0 = self.cpu();
        let p = m.quit()?;
        let cpu = self.cpu().zip(cpu0).map(|(a, b)| a.since(b));
        self.print(
            &format!("{live} concurrent clients (QUIT)"),
            p.elapsed.as_secs_f64(),
            "secs",
            None,
            cpu,
            &p.note(live),
        );
        Ok(())
    }

    /// Waits (at most 10 s each) until the server's process tree is back to `procs`
    /// processes and the server is idle (under 5 ms of CPU in 250 ms): what it still does
    /// for the sessions just closed is not charged to the next measurement.
    fn settle(&self, procs: usize) {
        let Some(t) = &self.proc_ else {
            return;
        };
        let until = Instant::now() + Duration::from_secs(10);
        while t.pids().len() > procs && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        let until = Instant::now() + Duration::from_secs(10);
        let mut c0 = t.cpu();
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let c1 = t.cpu();
            if c1.since(c0).total() < 0.005 || Instant::now() >= until {
                break;
            }
            c0 = c1;
        }
    }

    /// (mem(N) − mem(0)) / N for N logged-in idle sessions.
    fn bench_idle_memory(&mut self, sizes: &[usize]) -> io::Result<()> {
        let Some(t) = &self.proc_ else {
            return Err(other("-b idle-memory needs -k PID"));
        };
        let procs = t.pids().len();
        self.settle(procs);
        // The main process's whole RSS, file-backed pages included (what `ps -o rss` shows).
        let rss0 = self.proc_.as_ref().map_or(0, ProcTree::rss);
        self.print(
            "start-up RSS of the main process",
            rss0 as f64 / 1024.0,
            "KiB",
            None,
            None,
            "",
        );
        let mem0 = self.mem().unwrap_or(0);
        self.print(
            "memory before any session (RSS - shared)",
            mem0 as f64 / 1024.0,
            "KiB",
            Some(mem0),
            None,
            "",
        );
        let mut sorted = sizes.to_vec();
        sorted.sort_unstable();
        for n in sorted {
            let mut m = Multi::new(self.cfg.clone())?;
            let p = m.login(n, self.max_in_flight(n))?;
            std::thread::sleep(Duration::from_secs(1));
            let mem = self.mem().unwrap_or(0);
            let live = m.live().max(1);
            let per = mem.saturating_sub(mem0) as f64 / live as f64;
            self.print(
                &format!("idle memory per session ({n} logged in)"),
                per,
                "bytes",
                Some(mem),
                None,
                &p.note(n),
            );
            m.abort();
            drop(m);
            self.settle(procs);
        }
        Ok(())
    }

    /// For each N: N sessions log in and stay while one more client RETRs the whole test
    /// file (after a RETR with no session held, for comparison); then all N QUIT.
    fn bench_hold(&mut self, sizes: &[usize]) -> io::Result<()> {
        let procs = self.proc_.as_ref().map_or(0, |t| t.pids().len());
        self.stor_file(self.file_size)?;
        let size = bytes2human(self.file_size);
        self.settle(procs);
        self.retr_whole(&format!("RETR {size}, no session held"))?;
        for &n in sizes {
            self.settle(procs);
            let mem0 = self.mem();
            let mut m = Multi::new(self.cfg.clone())?;
            let k = self.max_in_flight(n);
            let p = m.login(n, k)?;
            std::thread::sleep(Duration::from_secs(1));
            let mem = self.mem();
            let live = m.live();
            self.print(
                &format!("{n} sessions held (connect, login)"),
                p.elapsed.as_secs_f64(),
                "secs",
                mem,
                None,
                &p.note(n),
            );
            if let (Some(m0), Some(m1)) = (mem0, mem) {
                self.print(
                    &format!("idle memory per held session ({live})"),
                    m1.saturating_sub(m0) as f64 / live.max(1) as f64,
                    "bytes",
                    None,
                    None,
                    "",
                );
            }
            self.retr_whole(&format!("RETR {size}, {live} sessions held"))?;
            // A session the server closed meanwhile fails here.
            m.watch(Duration::from_millis(500))?;
            let still = m.live();
            let q = m.quit()?;
            self.print(
                &format!("{live} held sessions: still logged in, then QUIT"),
                q.elapsed.as_secs_f64(),
                "secs",
                None,
                None,
                &format!(
                    "{still} of {live} still logged in{}",
                    sep_note(&q.note(still))
                ),
            );
        }
        Ok(())
    }

    /// N concurrent connect + login: wall time, latency percentiles, server CPU per login.
    fn bench_logins(&mut self, sizes: &[usize]) -> io::Result<()> {
        let Some(t) = &self.proc_ else {
            return Err(other("-b logins needs -k PID"));
        };
        let procs = t.pids().len();
        let rounds = self.o.rounds;
        for &n in sizes {
            let k = self.max_in_flight(n);
            let mut runs = Vec::with_capacity(rounds);
            let mut lat = Vec::new();
            let mut mem = None;
            let mut notes = Vec::new();
            for _ in 0..rounds {
                self.settle(procs);
                let mut m = Multi::new(self.cfg.clone())?;
                let cpu0 = self.cpu();
                let p = m.login(n, k)?;
                let cpu = self.cpu().zip(cpu0).map(|(a, b)| a.since(b));
                mem = self.mem();
                let note = p.note(n);
                if !note.is_empty() {
                    notes.push(note);
                }
                lat.append(&mut m.lat);
                runs.push((p.elapsed.as_secs_f64(), cpu, p.done.max(1) as f64));
                m.abort();
            }
            // The same row names for any number of rounds, so that servers measured with
            // different counts still line up in one report (a note would mark the row as
            // incomplete).
            let tag = if k < n {
                format!("{n} logins, {k} in flight")
            } else {
                format!("{n} logins")
            };
            let walls: Vec<f64> = runs.iter().map(|r| r.0).collect();
            let wall = median(&walls);
            // The CPU column of the wall-time row: the round whose wall time is the median.
            let mid = runs
                .iter()
                .min_by(|a, b| (a.0 - wall).abs().total_cmp(&(b.0 - wall).abs()))
                .and_then(|r| r.1);
            self.print(
                &format!("{tag}: wall time"),
                wall,
                "secs",
                mem,
                mid,
                &notes.join("; "),
            );
            lat.sort_unstable();
            for (name, q) in [("p50", 50.0), ("p99", 99.0)] {
                self.print(
                    &format!("{tag}: {name} latency"),
                    percentile_ms(&lat, q),
                    "ms",
                    None,
                    None,
                    "",
                );
            }
            let per_login: Vec<(f64, f64)> = runs
                .iter()
                .filter_map(|(_, cpu, done)| cpu.map(|c| (c.total() / done, c.user / done)))
                .collect();
            if !per_login.is_empty() {
                self.print(
                    &format!("{tag}: server CPU per login"),
                    median(&per_login.iter().map(|c| c.0).collect::<Vec<_>>()) * 1e6,
                    "usec",
                    None,
                    None,
                    "",
                );
                self.print(
                    &format!("{tag}: server user CPU per login"),
                    median(&per_login.iter().map(|c| c.1).collect::<Vec<_>>()) * 1e6,
                    "usec",
                    None,
                    None,
                    "",
                );
            }
        }
        Ok(())
    }

    fn cleanup(&self) {
        if let Ok(mut ftp) = self.connect() {
            let _ = ftp.cmd(&format!("DELE {TESTFN}"));
            ftp.quit();
        }
    }
}

fn run(o: &Opts) -> io::Result<()> {
    if o.ssl && !matches!(o.benchmark.as_str(), "transfer" | "upload" | "download") {
        return Err(other(format!(
            "-S/--ssl: FTPS is supported by the single-client workloads only (transfer, \
             upload, download), not by {:?}",
            o.benchmark
        )));
    }
    let (Some(user), Some(pass)) = (&o.user, &o.pass) else {
        return Err(other("-u/--user and -p/--pass are required"));
    };
    let file_size = human2bytes(&o.filesize)
        .ok_or_else(|| other(format!("invalid file size {:?}", o.filesize)))?;
    let addr = (o.host.as_str(), o.port)
        .to_socket_addrs()?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| other(format!("cannot resolve {}", o.host)))?;
    if o.timeout.is_nan() || o.timeout <= 0.0 {
        return Err(other("-t/--timeout must be positive"));
    }
    let max_n = o.clients.iter().copied().max().unwrap_or(0);
    // concurrence holds a control and a data connection per client
    let conns = if o.benchmark == "concurrence" || o.benchmark == "all" {
        max_n * 2
    } else {
        max_n
    };
    let k = match o.source_ips {
        Some(k) => usize::from(k.max(1)),
        None => conns.div_ceil(CONNS_PER_SOURCE).max(1),
    };
    let sources = if k > 1 && addr.ip().is_loopback() {
        (1..=k.min(254) as u8)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
            .collect()
    } else {
        Vec::new()
    };
    let tsv = match &o.tsv {
        Some(p) => Some(fs::OpenOptions::new().create(true).append(true).open(p)?),
        None => None,
    };
    let mut b = Bench {
        o,
        cfg: Cfg {
            addr,
            user: user.clone(),
            pass: pass.clone(),
            timeout: Duration::from_secs_f64(o.timeout),
            login_timeout: Duration::from_secs_f64(o.login_timeout.unwrap_or(o.timeout).max(0.01)),
            debug: o.debug,
            sources,
            tls: if o.ssl {
                Some(tls_client_config()?)
            } else {
                None
            },
        },
        proc_: o
            .pid
            .map(|pid| {
                ProcTree::new(pid).map(|mut t| {
                    t.cgroup = o.cgroup.clone();
                    t
                })
            })
            .transpose()?,
        file_size,
        secs: Duration::from_secs_f64(o.seconds.max(0.01)),
        bulk: vec![b'x'; BULK_BUF],
        tsv,
    };

    let needs_files = !matches!(o.benchmark.as_str(), "idle-memory" | "logins");
    if needs_files {
        // before starting make sure we have write permissions
        let mut ftp = b.connect()?;
        let d = ftp.transfercmd(&format!("STOR {TESTFN}"))?;
        d.finish()?;
        ftp.voidresp()?;
        ftp.voidcmd(&format!("DELE {TESTFN}"))?;
        ftp.quit();
    }
    if let Some(t) = &b.proc_ {
        println!(
            "(starting with {} of memory being used)",
            bytes2human(t.rss())
        );
    }
    let res = match o.benchmark.as_str() {
        "download" => b.stor_file(file_size).and_then(|()| {
            b.flush_upload();
            b.bench_retr("RETR (server -> client)")
        }),
        "upload" => b.bench_stor("STOR (client -> server)"),
        "transfer" => b.bench_stor("STOR (client -> server)").and_then(|()| {
            b.flush_upload();
            b.bench_retr("RETR (server -> client)")
        }),
        "concurrence" => o.clients.iter().try_for_each(|&n| b.bench_multi(n)),
        "all" => b
            .bench_stor("STOR (client -> server)")
            .and_then(|()| {
                b.flush_upload();
                b.bench_retr("RETR (server -> client)")
            })
            .and_then(|()| o.clients.iter().try_for_each(|&n| b.bench_multi(n))),
        "idle-memory" => b.bench_idle_memory(&o.clients),
        "logins" => b.bench_logins(&o.clients),
        "hold" => b.bench_hold(&o.clients),
        other_ => Err(other(format!("invalid 'benchmark' parameter {other_:?}"))),
    };
    if needs_files {
        b.cleanup();
    }
    res
}

// ---------------------------------------------------------------------------------------
// The bare mio login server: the floor for CPU per login and memory per session
// ---------------------------------------------------------------------------------------

struct BareSess {
    s: MioStream,
    line: Vec<u8>,
    out: Vec<u8>,
    quit: bool,
}

fn bare_server(port: u16) -> io::Result<()> {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port).into())?;
    sock.listen(4096)?;
    let mut listener = MioListener::from_std(sock.into());
    let mut poll = Poll::new()?;
    const LISTENER: Token = Token(usize::MAX);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut sess: Slab<BareSess> = Slab::new();
    let mut scratch = vec![0u8; 16 * 1024];
    eprintln!("bare login server on 127.0.0.1:{port}");
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for ev in &events {
            if ev.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let e = sess.vacant_entry();
                            let mut b = BareSess {
                                s,
                                line: Vec::new(),
                                out: Vec::new(),
                                quit: false,
                            };
                            poll.registry().register(
                                &mut b.s,
                                Token(e.key()),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            bare_write(&mut b, b"220 bare mio loop ready.\r\n");
                            e.insert(b);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            eprintln!("accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let key = ev.token().0;
            let Some(b) = sess.get_mut(key) else {
                continue;
            };
            let closed = bare_serve(b, &mut scratch);
            if closed {
                let mut b = sess.remove(key);
                let _ = poll.registry().deregister(&mut b.s);
            }
        }
    }
}

fn bare_write(b: &mut BareSess, bytes: &[u8]) {
    let taken = if b.out.is_empty() {
        b.s.write(bytes).unwrap_or(0)
    } else {
        0
    };
    b.out.extend_from_slice(&bytes[taken..]);
}

/// Serves a session's readiness; true when it should be closed.
fn bare_serve(b: &mut BareSess, scratch: &mut [u8]) -> bool {
    while !b.out.is_empty() {
        match b.s.write(&b.out) {
            Ok(n) => {
                b.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
    if b.quit {
        return true;
    }
    loop {
        let n = match b.s.read(scratch) {
            Ok(0) => return true,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        };
        let mut data = &scratch[..n];
        while let Some(nl) = data.iter().position(|&c| c == b'\n') {
            let (head, rest) = data.split_at(nl + 1);
            data = rest;
            let joined;
            let line: &[u8] = if b.line.is_empty() {
                head
            } else {
                b.line.extend_from_slice(head);
                joined = std::mem::take(&mut b.line);
                &joined
            };
            let verb: Vec<u8> = line
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .take(4)
                .map(u8::to_ascii_uppercase)
                .collect();
            let reply: &[u8] = match verb.as_slice() {
                b"USER" => b"331 Username ok, send password.\r\n",
                b"PASS" => b"230 Login successful.\r\n",
                b"NOOP" => b"200 I successfully done nothin'.\r\n",
                b"QUIT" => {
                    b.quit = true;
                    b"221 Goodbye.\r\n"
                }
                _ => b"502 Command not implemented.\r\n",
            };
            bare_write(b, reply);
            if b.quit {
                return b.out.is_empty();
            }
        }
        if !data.is_empty() {
            b.line.extend_from_slice(data);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Report: one markdown table and an SVG chart from the --tsv lines of several servers
// ---------------------------------------------------------------------------------------

struct Row {
    values: Vec<f64>,
    note: String,
}

fn higher_is_better(unit: &str) -> bool {
    unit == "MB/sec"
}

fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Three significant digits or so.
fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        "n/a".into()
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.1 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// ftpdlib's advantage over a peer: > 1 means ftpdlib is ahead.
fn advantage(unit: &str, ours: f64, theirs: f64) -> f64 {
    if !(ours > 0.0 && theirs > 0.0) {
        f64::NAN
    } else if higher_is_better(unit) {
        ours / theirs
    } else {
        theirs / ours
    }
}

fn report(tsv: &std::path::Path, svg: Option<&std::path::Path>) -> io::Result<()> {
    let text = fs::read_to_string(tsv)?;
    let mut servers: Vec<String> = Vec::new();
    let mut metrics: Vec<(String, String)> = Vec::new();
    let mut cells: HashMap<(String, String), Row> = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 4 {
            continue;
        }
        let (label, what, unit) = (f[0].to_owned(), f[1].to_owned(), f[3].to_owned());
        let value: f64 = f[2].parse().unwrap_or(f64::NAN);
        if !servers.contains(&label) {
            servers.push(label.clone());
        }
        if !metrics.iter().any(|(w, _)| *w == what) {
            metrics.push((what.clone(), unit));
        }
        let row = cells.entry((label, what)).or_insert(Row {
            values: Vec::new(),
            note: String::new(),
        });
        row.values.push(value);
        if let Some(n) = f.get(6).filter(|n| !n.is_empty()) {
            row.note = (*n).to_owned();
        }
    }
    let base = servers.first().cloned().unwrap_or_default();
    let get = |s: &str, w: &str| cells.get(&(s.to_owned(), w.to_owned()));

    // markdown
    let mut md = String::new();
    let _ = write!(md, "| workload | unit |");
    for s in &servers {
        let _ = write!(md, " {s} |");
    }
    md.push_str("\n|---|---|");
    for _ in &servers {
        md.push_str("---:|");
    }
    md.push('\n');
    let mut notes = Vec::new();
    for (what, unit) in &metrics {
        let _ = write!(md, "| {} | {unit} |", what.replace('|', "\\|"));
        let ours = get(&base, what).map(|r| median(&r.values));
        for s in &servers {
            let Some(r) = get(s, what) else {
                md.push_str(" – |");
                continue;
            };
            let v = median(&r.values);
            let mut cell = fmt_value(v);
            if *s != base {
                if let Some(o) = ours.filter(|o| o.is_finite() && *o != 0.0) {
                    let a = advantage(unit, o, v);
                    if a.is_finite() {
                        let _ = write!(cell, " (×{})", fmt_value(a));
                    }
                }
            }
            if !r.note.is_empty() {
                notes.push(format!("{s}, {what}: {}", r.note));
                let _ = write!(cell, " [{}]", notes.len());
            }
            let _ = write!(md, " {cell} |");
        }
        md.push('\n');
    }
    if servers.len() > 1 {
        let _ = writeln!(
            md,
            "\n(×r) = how many times better {base} is than that server on the row \
             (> 1: {base} ahead, < 1: behind). MB/sec: higher is better; secs, ms, usec, \
             bytes: lower is better. Values are medians over the runs."
        );
    }
    for (i, n) in notes.iter().enumerate() {
        let _ = writeln!(md, "\n[{}] {n}", i + 1);
    }
    print!("{md}");

    // svg: one panel per workload, two columns, one bar per server
    if let Some(path) = svg {
        const PALETTE: [&str; 8] = [
            "#d9480f", "#4263eb", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#495057", "#c2255c",
        ];
        let (col_w, bar_h, gap) = (560.0, 16.0, 4.0);
        let label_w = 90.0;
        let bar_max = col_w - label_w - 110.0;
        let panel_h = 30.0 + servers.len() as f64 * (bar_h + gap) + 14.0;
        let rows = metrics.len().div_ceil(2);
        let (w, top) = (col_w * 2.0 + 30.0, 60.0);
        let h = top + rows as f64 * panel_h + 20.0;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="15" y="24" font-size="16" font-weight="bold">ftpbench: {} vs peers (same machine, same run; * = incomplete, see the table notes)</text>"#,
            xml_escape(&base)
        );
        let mut x = 15.0;
        for (i, srv) in servers.iter().enumerate() {
            let _ = writeln!(
                s,
                r#"<rect x="{x}" y="36" width="12" height="12" fill="{}"/><text x="{}" y="46">{}</text>"#,
                PALETTE[i % PALETTE.len()],
                x + 16.0,
                xml_escape(srv)
            );
            x += 24.0 + 7.5 * srv.len() as f64;
        }
        for (mi, (what, unit)) in metrics.iter().enumerate() {
            let px = 15.0 + (mi % 2) as f64 * (col_w + 10.0);
            let py = top + (mi / 2) as f64 * panel_h;
            let better = if higher_is_better(unit) {
                "higher is better"
            } else {
                "lower is better"
            };
            let vals: Vec<f64> = servers
                .iter()
                .map(|srv| get(srv, what).map_or(f64::NAN, |r| median(&r.values)))
                .collect();
            let max = vals
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(0.0, f64::max);
            let min = vals
                .iter()
                .copied()
                .filter(|v| v.is_finite() && *v > 0.0)
                .fold(f64::INFINITY, f64::min);
            // values spanning more than two decades: log scale, a decade below the smallest
            let log_lo = (max / min > 100.0).then(|| min.log10() - 1.0);
            let scale = if log_lo.is_some() { ", log scale" } else { "" };
            let _ = writeln!(
                s,
                r##"<text x="{px}" y="{}" font-weight="bold">{} <tspan font-weight="normal" fill="#666">({unit}, {better}{scale})</tspan></text>"##,
                py + 18.0,
                xml_escape(what)
            );
            for (si, srv) in servers.iter().enumerate() {
                let y = py + 26.0 + si as f64 * (bar_h + gap);
                let v = vals[si];
                let _ = writeln!(
                    s,
                    r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                    px + label_w - 6.0,
                    y + 12.0,
                    xml_escape(srv)
                );
                if v.is_finite() && max > 0.0 {
                    let frac = match log_lo {
                        Some(lo) if v > 0.0 => (v.log10() - lo) / (max.log10() - lo),
                        Some(_) => 0.0,
                        None => v / max,
                    };
                    let bw = (frac * bar_max).max(1.0);
                    let mark = if get(srv, what).is_some_and(|r| !r.note.is_empty()) {
                        " *"
                    } else {
                        ""
                    };
                    let _ = writeln!(
                        s,
                        r#"<rect x="{}" y="{y}" width="{bw:.1}" height="{bar_h}" fill="{}"/><text x="{}" y="{}">{}</text>"#,
                        px + label_w,
                        PALETTE[si % PALETTE.len()],
                        px + label_w + bw + 4.0,
                        y + 12.0,
                        fmt_value(v) + mark
                    );
                } else {
                    let _ = writeln!(
                        s,
                        r##"<text x="{}" y="{}" fill="#999">–</text>"##,
                        px + label_w + 4.0,
                        y + 12.0
                    );
                }
            }
        }
        s.push_str("</svg>\n");
        fs::write(path, s)?;
    }
    Ok(())
}

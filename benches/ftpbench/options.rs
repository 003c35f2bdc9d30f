//! The command line. Flags keep the spellings of pyftpdlib's `scripts/ftpbench` (argparse),
//! so long options may be shortened to any unambiguous prefix, a repeated option's last
//! value wins, and a usage error exits with status 2.

use std::path::PathBuf;

use clap::{ArgAction, Parser, ValueEnum};

/// FTP server benchmark (pyftpdlib's scripts/ftpbench, in Rust).
#[derive(Debug, Parser)]
#[command(
    name = "ftpbench",
    bin_name = "ftpbench",
    infer_long_args = true,
    args_override_self = true,
    allow_negative_numbers = true
)]
pub struct Opts {
    /// username
    #[arg(short, long, value_name = "USER")]
    pub user: Option<String>,

    /// password
    #[arg(short, long, value_name = "PASS")]
    pub pass: Option<String>,

    /// hostname
    #[arg(short = 'H', long, value_name = "HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// port
    #[arg(short = 'P', long, value_name = "PORT", default_value_t = 21)]
    pub port: u16,

    /// benchmark type
    #[arg(
        short,
        long,
        value_name = "BENCHMARK",
        value_enum,
        default_value_t = Workload::Transfer
    )]
    pub benchmark: Workload,

    /// number of concurrent clients; a comma-separated list runs each size in turn
    #[arg(
        short = 'n',
        long,
        value_name = "CLIENTS",
        value_delimiter = ',',
        // A repeated -n replaces the list rather than extending it, as argparse does.
        action = ArgAction::Set,
        default_value = "200"
    )]
    pub clients: Vec<usize>,

    /// file size used by the 'concurrence' and 'download' benchmarks
    #[arg(short = 's', long, value_name = "FILESIZE", default_value = "10M")]
    pub filesize: String,

    /// the PID of the FTP server process, to track its memory and CPU time
    #[arg(short = 'k', long, value_name = "PID")]
    pub pid: Option<i32>,

    /// the socket timeout, and the bound on every phase, in seconds
    #[arg(short, long, value_name = "TIMEOUT", default_value_t = 60.0)]
    pub timeout: f64,

    /// whether to print debugging info
    #[arg(short, long)]
    pub debug: bool,

    /// whether to use FTPS (AUTH TLS, PBSZ 0, PROT P)
    #[arg(short = 'S', long)]
    pub ssl: bool,

    /// with -S: new control connections resume the TLS sessions of earlier ones (one pool
    /// shared by all clients; logins first run one unmeasured burst to fill it) [default:
    /// a full handshake on every control connection; data connections always resume their
    /// control connection's session]
    #[arg(long, requires = "ssl")]
    pub tls_resume: bool,

    /// with -S: offer TLS 1.2 only, as a client without TLS 1.3 does (a resumed TLS 1.2
    /// handshake has no key exchange; a resumed TLS 1.3 one has) [default: 1.3 and 1.2]
    #[arg(long, requires = "ssl")]
    pub tls12: bool,

    /// at most this many connects + logins in progress at once [default: all]
    #[arg(long, value_name = "K")]
    pub max_in_flight: Option<usize>,

    /// bound on a phase of concurrent connects + logins [default: --timeout]; a burst beyond a
    /// server's listen queue can leave clients connected but never greeted
    #[arg(long, value_name = "SECS")]
    pub login_timeout: Option<f64>,

    /// logins: run each burst R times and report the medians; a burst of a few hundred logins
    /// takes milliseconds, so one round is mostly noise
    #[arg(long, value_name = "R", default_value_t = 1)]
    pub rounds: usize,

    /// length of the single-client STOR / RETR measurements
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub seconds: f64,

    /// spread connections over 127.0.0.1 ..= 127.0.0.K [default: as needed]
    #[arg(long, value_name = "K")]
    pub source_ips: Option<u8>,

    /// append each result to this file as `label \t workload \t value \t unit \t mem \t cpu \t
    /// note`
    #[arg(long, value_name = "FILE")]
    pub tsv: Option<PathBuf>,

    /// the server's name in --tsv lines
    #[arg(long, value_name = "LABEL", default_value = "server")]
    pub label: String,

    /// run a bare mio login server on 127.0.0.1:PORT instead of benchmarking
    #[arg(long, value_name = "PORT")]
    pub bare_server: Option<u16>,

    /// print a markdown table of the --tsv results in FILE instead of benchmarking
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// with --report: also write an SVG bar chart here
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,

    /// with -k: a cgroup v1 cpuacct folder that holds the server alone, for exact CPU time
    /// [default: /proc/PID/stat of the process tree, in clock ticks]
    #[arg(long, value_name = "DIR")]
    pub cgroup: Option<PathBuf>,

    /// soak: how long to run, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    pub duration: f64,

    /// soak: new sessions per second that connect, log in and QUIT beside the held ones
    #[arg(long, value_name = "RATE", default_value_t = 1000.0)]
    pub churn: f64,

    /// soak: clients that RETR and STOR the --filesize file in a loop, all at once
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub transfers: usize,

    /// soak: each transfer client starts a STOR and a RETR at most once per SECS
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub transfer_every: f64,

    /// soak: seconds between two samples of the server's memory, descriptors and loop
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub sample_every: f64,

    /// soak: seconds of warm-up left out of the flatness check
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub warmup: f64,

    /// soak: the server's log, where `RUST_LOG=ftpdlib::loop_stats=debug` makes each loop
    /// write `loop: pid=P tid=T H handlers, T timers` every 10 s
    #[arg(long, value_name = "FILE")]
    pub server_log: Option<PathBuf>,

    /// soak: write the samples here, one tab-separated line each
    #[arg(long, value_name = "FILE")]
    pub samples: Option<PathBuf>,

    /// hold: hold the sessions from P client processes (this program again, each with its
    /// share and its own 127.0.0.x source addresses), after checking the kernel's limits;
    /// 0 = as many as the open-files limit needs; --max-in-flight is then per process
    #[arg(long, value_name = "P")]
    pub procs: Option<usize>,

    /// hold with --procs: how many held sessions (spread over the processes) answer a NOOP,
    /// timed each, before all of them do
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub noop_sample: usize,

    /// hold with --procs: write the sessions logged in and the server's memory here, one
    /// tab-separated line every --series-every seconds
    #[arg(long, value_name = "FILE")]
    pub series: Option<PathBuf>,

    /// hold with --procs: seconds between two lines of --series (and of the progress)
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub series_every: f64,

    /// hold with --procs, in a client process: `INDEX/PROCS/SESSIONS/FIRST_SOURCE/SOURCES`
    /// (its share, from 127.0.0.FIRST_SOURCE on); talks to the parent on stdin / stdout
    #[arg(long, value_name = "SPEC", hide = true)]
    pub client_proc: Option<String>,

    /// What `cargo bench` passes to every bench target; nothing to do with this program.
    #[arg(long, hide = true)]
    pub bench: bool,
}

/// The workloads of `-b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// upload, then download
    Transfer,
    /// RETR for --seconds
    Download,
    /// STOR for --seconds
    Upload,
    /// N clients log in, transfer alone and all at once, then QUIT
    Concurrence,
    /// transfer, then concurrence
    All,
    /// server memory per logged-in idle session
    IdleMemory,
    /// N concurrent logins: wall time, latency, server CPU per login
    Logins,
    /// one RETR alone, then again while N sessions are held
    Hold,
    /// N sessions held for --duration while --churn sessions a second log in and out and
    /// --transfers clients RETR and STOR; the server sampled every --sample-every seconds
    Soak,
}

impl Workload {
    /// Whether the workload reads and writes the test file (and so needs write permission).
    pub fn needs_files(self) -> bool {
        match self {
            Workload::Transfer
            | Workload::Download
            | Workload::Upload
            | Workload::Concurrence
            | Workload::All
            | Workload::Hold
            | Workload::Soak => true,
            Workload::IdleMemory | Workload::Logins => false,
        }
    }
}

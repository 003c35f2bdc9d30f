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
//!   `-b hold -n 19000 -s 1G`: one loop near a 20,000 open-files limit);
//! - `hold --procs P` (`benches/million.sh`): the N sessions held from P client processes
//!   (0 = as many as the open-files limit needs), each from its own 127.0.0.x source
//!   addresses, after checking the kernel's limits (descriptors, `fs.file-max`, the
//!   ephemeral ports per source address, the accept queue, memory: each short one named
//!   with what to raise it to); the logins per second and the server's memory every
//!   `--series-every` seconds (`--series FILE`), the RETR with them held and with none, a
//!   NOOP from `--noop-sample` of them (each timed), then from all of them;
//! - `soak`: N sessions held (a NOOP a minute each) for `--duration` while `--churn`
//!   sessions a second log in and QUIT and `--transfers` clients STOR and RETR the
//!   `--filesize` file; every `--sample-every` seconds the server's RSS, descriptors and
//!   loop handlers and timers (from `--server-log`, see `benches/soak.sh`); after
//!   `--warmup`, each within 5 % of its median and no error, or it exits with FAIL.
//!
//! `-n` takes a list (`-n 300,1000,10000`). Memory is RSS − shared, summed over the server's
//! process and all its descendants, as pyftpdlib's script does with psutil. The client runs on
//! non-blocking sockets (mio, edge-triggered), with one shared 256 KiB buffer for all
//! concurrent transfers and a 1 MiB buffer for single-client transfers: no allocation per
//! block. At most `--max-in-flight` connects + logins are in progress at once. Connections
//! are spread over 127.0.0.x source addresses when one address would run out of ports.
//!
//! `-S` runs any workload over FTPS, as pyftpdlib's FTP_TLS + PROT P: AUTH TLS on each
//! control connection, then USER / PASS, PBSZ 0, PROT P, and a TLS (rustls) data connection
//! per transfer, started after the 1xx, that resumes its control connection's session (a
//! session store per client session). Each control connection makes a full handshake;
//! with `--tls-resume` it resumes an earlier session from a pool that all clients share
//! (`-b logins` fills it with one unmeasured burst first, and reports how many handshakes
//! the server did resume). The non-blocking client drives its handshakes by readiness like
//! the rest. The server's certificate is not verified (benchmarks run against self-signed
//! ones).
//!
//! Two helper modes serve `benches/compare.sh`: `--bare-server PORT` runs a bare mio loop
//! that only accepts, greets and answers USER / PASS / QUIT (the floor for CPU per login and
//! memory per session), and `--report TSV --svg OUT` turns the `--tsv` lines of several runs
//! into one markdown table (stdout) and an SVG bar chart.
//!
//! The modules, from the top: `options` (the command line), `workloads` (the measurements),
//! `multi` (the non-blocking client), `ftp` (the blocking client), `tls` (the FTPS
//! configuration both clients use), `proctree` (the server's memory and CPU time), `bare` and `report` (the
//! two helper modes), `units` (sizes and statistics), `sys` (the system calls).

#![deny(unsafe_code)]

mod bare;
mod ftp;
mod multi;
mod options;
mod proctree;
mod report;
#[allow(unsafe_code)]
mod sys;
mod tls;
mod units;
mod workloads;

use std::process::ExitCode;

use clap::Parser;

use crate::options::Opts;

fn main() -> ExitCode {
    let o = Opts::parse();
    sys::raise_nofile();
    let res = if let Some(port) = o.bare_server {
        bare::bare_server(port)
    } else if let Some(spec) = &o.client_proc {
        workloads::client_proc(&o, spec)
    } else if let Some(tsv) = &o.report {
        report::report(tsv, o.svg.as_deref())
    } else {
        workloads::run(&o)
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ftpbench: {e}");
            ExitCode::FAILURE
        }
    }
}

//! The workloads of `-b` and the result lines they print (pyftpdlib's format, plus the
//! server's CPU time), also appended to `--tsv` for `--report`. The single-client
//! transfers are in `single`, those with many sessions in `sessions`.

mod limits;
mod million;
mod sessions;
mod single;
mod soak;

pub use million::client_proc;

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::ftp::{Cfg, Ftp, TESTFN};
use crate::options::{Opts, Workload};
use crate::proctree::{Cpu, ProcTree};
use crate::tls::Tls;
use crate::units::{bytes2human, human2bytes};

/// Runs the workload of `-b` against the server of `-H` / `-P`.
pub fn run(o: &Opts) -> io::Result<()> {
    let (Some(user), Some(pass)) = (&o.user, &o.pass) else {
        return Err(io::Error::other("-u/--user and -p/--pass are required"));
    };
    let file_size = human2bytes(&o.filesize)
        .ok_or_else(|| io::Error::other(format!("invalid file size {:?}", o.filesize)))?;
    let addr = (o.host.as_str(), o.port)
        .to_socket_addrs()?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| io::Error::other(format!("cannot resolve {}", o.host)))?;
    if o.timeout.is_nan() || o.timeout <= 0.0 {
        return Err(io::Error::other("-t/--timeout must be positive"));
    }
    if o.procs.is_some() && o.benchmark != Workload::Hold {
        return Err(io::Error::other(format!(
            "--procs: only -b hold spreads its sessions over processes, not -b {}",
            clap::ValueEnum::to_possible_value(&o.benchmark)
                .map_or_else(String::new, |v| v.get_name().to_owned())
        )));
    }
    let max_n = o.clients.iter().copied().max().unwrap_or(0);
    // concurrence holds a control and a data connection per client
    let conns = match o.benchmark {
        Workload::Concurrence | Workload::All => max_n * 2,
        // The churn's QUITs leave a minute of server-side TIME_WAIT each.
        Workload::Soak => max_n + (o.churn.max(0.0) * 60.0) as usize,
        // The client processes bring their own addresses; this one RETRs.
        Workload::Hold if o.procs.is_some() => 1,
        Workload::Transfer
        | Workload::Download
        | Workload::Upload
        | Workload::IdleMemory
        | Workload::Logins
        | Workload::Hold => max_n,
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
                Some(Tls::new(o.tls_resume, o.tls12)?)
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

    let needs_files = o.benchmark.needs_files();
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
    let res = match o.benchmark {
        Workload::Download => b.stor_file(file_size).and_then(|()| {
            b.flush_upload();
            b.bench_retr("RETR (server -> client)")
        }),
        Workload::Upload => b.bench_stor("STOR (client -> server)"),
        Workload::Transfer => b.bench_stor("STOR (client -> server)").and_then(|()| {
            b.flush_upload();
            b.bench_retr("RETR (server -> client)")
        }),
        Workload::Concurrence => o.clients.iter().try_for_each(|&n| b.bench_multi(n)),
        Workload::All => b
            .bench_stor("STOR (client -> server)")
            .and_then(|()| {
                b.flush_upload();
                b.bench_retr("RETR (server -> client)")
            })
            .and_then(|()| o.clients.iter().try_for_each(|&n| b.bench_multi(n))),
        Workload::IdleMemory => b.bench_idle_memory(&o.clients),
        Workload::Logins => b.bench_logins(&o.clients),
        Workload::Hold if o.procs.is_some() => b.bench_hold_procs(&o.clients),
        Workload::Hold => b.bench_hold(&o.clients),
        Workload::Soak => b.bench_soak(max_n),
    };
    if needs_files {
        b.cleanup();
    }
    res
}

/// The state of a run: the resolved options, the server to watch, the output.
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

    fn max_in_flight(&self, n: usize) -> usize {
        self.o.max_in_flight.unwrap_or(n).max(1)
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
    fn cleanup(&self) {
        if let Ok(mut ftp) = self.connect() {
            let _ = ftp.cmd(&format!("DELE {TESTFN}"));
            ftp.quit();
        }
    }
}

/// Buffer of a single-client bulk transfer.
const BULK_BUF: usize = 1 << 20;
/// Above this many connections from one source address, spread over 127.0.0.x.
const CONNS_PER_SOURCE: usize = 25_000;

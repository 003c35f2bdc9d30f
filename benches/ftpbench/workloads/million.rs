//! `-b hold --procs P`: more sessions than one process may hold. The parent checks the
//! kernel's limits (`limits`), then starts P copies of this program (`--client-proc`),
//! each logging in its share from its own 127.0.0.x source addresses on the non-blocking
//! client and reporting over its stdout, one line at a time:
//!
//! ```text
//! login DONE FAILED                     after each batch of logins (running totals)
//! ready LIVE FAILED SECS P50_MS P99_MS  when its share is logged in
//! noop ASKED ANSWERED FAILED SECS P50_MS P99_MS MAX_MS [LAT_US ...]
//! ```
//!
//! and taking orders on its stdin: `noop COUNT` (a NOOP on COUNT of its sessions spread
//! over them, 0 = all; the latencies listed for a sample), `abort` (reset every session and
//! exit; also on EOF, so a parent that dies takes its clients with it).
//!
//! The parent meanwhile samples the sessions logged in and the server's memory every
//! `--series-every` seconds (the login rate per interval shows whether logins slow down as
//! the count grows), then RETRs the test file with the sessions held and with none, and
//! has a sample of the held sessions, then all of them, answer a NOOP.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::limits::{self, Need, CLIENT_FDS_SPARE};
use super::Bench;
use crate::ftp::Cfg;
use crate::multi::Multi;
use crate::options::Opts;
use crate::proctree::ProcTree;
use crate::sys;
use crate::units::{bytes2human, median, percentile_ms};

/// RETRs of the test file with no session held, and again with all held: medians.
const RETR_ROUNDS: usize = 5;
/// Connects + logins in flight over all client processes, unless --max-in-flight says how
/// many per process: about the server's listen backlog, so that no SYN waits for a retry.
const IN_FLIGHT_TOTAL: usize = 2048;
/// A client process reports after each batch of this many in-flight windows.
const BATCH_WINDOWS: usize = 4;
/// NOOPs in flight at once per client process when all its sessions send one: every
/// socket with a command or reply in flight holds at least a page of socket memory, so a
/// million at once took 3.5 GiB, past net.ipv4.tcp_mem's ceiling here (2.2 GiB: "TCP: out of
/// memory", retransmissions, 31 s replies).
const NOOP_WINDOW: usize = 500;
/// The first source address of the client processes (127.0.0.1 stays the parent's).
const FIRST_SOURCE: u8 = 2;

/// One client process's share: its index, the number of processes, its sessions, its
/// source addresses 127.0.0.first ..
struct Share {
    index: usize,
    procs: usize,
    sessions: usize,
    first_source: u8,
    sources: u8,
}

impl Share {
    fn arg(&self) -> String {
        format!(
            "{}/{}/{}/{}/{}",
            self.index, self.procs, self.sessions, self.first_source, self.sources
        )
    }

    fn parse(s: &str) -> io::Result<Share> {
        let bad = || io::Error::other(format!("--client-proc: bad spec {s:?}"));
        let v: Vec<&str> = s.split('/').collect();
        let [index, procs, sessions, first, sources] = v[..] else {
            return Err(bad());
        };
        Ok(Share {
            index: index.parse().map_err(|_| bad())?,
            procs: procs.parse().map_err(|_| bad())?,
            sessions: sessions.parse().map_err(|_| bad())?,
            first_source: first.parse().map_err(|_| bad())?,
            sources: sources.parse().map_err(|_| bad())?,
        })
    }

    fn source_addrs(&self) -> Vec<IpAddr> {
        (0..self.sources)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, self.first_source + i)))
            .collect()
    }
}

/// How `n` sessions are spread: over how many processes and source addresses.
fn plan(o: &Opts, n: usize, nofile: u64) -> io::Result<(Vec<Share>, usize)> {
    let per_proc_max = (nofile as usize).saturating_sub(CLIENT_FDS_SPARE).max(1);
    let procs = match o.procs {
        Some(0) | None => n.div_ceil(per_proc_max).max(1),
        Some(p) => p,
    };
    let ports = limits::ports_per_source().max(1);
    let per_proc = n.div_ceil(procs);
    // Each process its own addresses, enough for its share (and --source-ips in all).
    let want_sources = usize::from(o.source_ips.unwrap_or(0));
    let sources_each = per_proc
        .div_ceil(ports)
        .max(want_sources.div_ceil(procs))
        .max(1);
    let total_sources = sources_each * procs;
    if total_sources + usize::from(FIRST_SOURCE) > 255 {
        return Err(io::Error::other(format!(
            "{procs} client processes x {sources_each} source addresses do not fit in \
             127.0.0.{FIRST_SOURCE}-254: widen net.ipv4.ip_local_port_range or use fewer \
             processes"
        )));
    }
    let shares = (0..procs)
        .map(|i| Share {
            index: i,
            procs,
            // The first n % procs processes take one more.
            sessions: n / procs + usize::from(i < n % procs),
            first_source: FIRST_SOURCE + (i * sources_each) as u8,
            sources: sources_each as u8,
        })
        .collect();
    Ok((shares, ports))
}

fn in_flight_per_proc(o: &Opts, procs: usize) -> usize {
    o.max_in_flight
        .unwrap_or(IN_FLIGHT_TOTAL / procs.max(1))
        .max(1)
}

/// A message of a client process.
enum Report {
    Login {
        done: usize,
        failed: usize,
    },
    Ready {
        live: usize,
        failed: usize,
        p50_ms: f64,
        p99_ms: f64,
    },
    Noop(NoopReport),
}

/// A client process's NOOP round.
struct NoopReport {
    asked: usize,
    answered: usize,
    failed: usize,
    secs: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Each latency, for a sample.
    lat_us: Vec<u64>,
}

fn parse_report(line: &str) -> io::Result<Report> {
    let bad = || io::Error::other(format!("client process: unexpected line {line:?}"));
    let mut it = line.split_ascii_whitespace();
    let word = it.next().ok_or_else(bad)?;
    let nums: Vec<f64> = it
        .map(|v| v.parse::<f64>().map_err(|_| bad()))
        .collect::<io::Result<_>>()?;
    let at = |i: usize| nums.get(i).copied().ok_or_else(bad);
    Ok(match word {
        "login" => Report::Login {
            done: at(0)? as usize,
            failed: at(1)? as usize,
        },
        "ready" => Report::Ready {
            live: at(0)? as usize,
            failed: at(1)? as usize,
            p50_ms: at(3)?,
            p99_ms: at(4)?,
        },
        "noop" => Report::Noop(NoopReport {
            asked: at(0)? as usize,
            answered: at(1)? as usize,
            failed: at(2)? as usize,
            secs: at(3)?,
            p99_ms: at(5)?,
            max_ms: at(6)?,
            lat_us: nums.iter().skip(7).map(|&v| v as u64).collect(),
        }),
        _ => return Err(bad()),
    })
}

/// The client processes: killed on drop if they are still running (an error on the way).
struct Fleet {
    children: Vec<Child>,
    stdins: Vec<Option<ChildStdin>>,
    rx: mpsc::Receiver<(usize, Option<String>)>,
}

impl Fleet {
    fn start(shares: &[Share]) -> io::Result<Fleet> {
        let exe = std::env::current_exe()?;
        // The parent's own arguments, so that the children connect and log in as it does;
        // the last --client-proc wins.
        let args: Vec<_> = std::env::args_os().skip(1).collect();
        let (tx, rx) = mpsc::channel();
        let mut children = Vec::with_capacity(shares.len());
        let mut stdins = Vec::with_capacity(shares.len());
        for s in shares {
            let mut child = Command::new(&exe)
                .args(&args)
                .arg("--client-proc")
                .arg(s.arg())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| io::Error::other(format!("starting a client process: {e}")))?;
            stdins.push(child.stdin.take());
            let out = child.stdout.take();
            children.push(child);
            let tx = tx.clone();
            let i = s.index;
            std::thread::spawn(move || {
                if let Some(out) = out {
                    for line in BufReader::new(out).lines() {
                        let Ok(line) = line else { break };
                        if tx.send((i, Some(line))).is_err() {
                            return;
                        }
                    }
                }
                let _ = tx.send((i, None));
            });
        }
        Ok(Fleet {
            children,
            stdins,
            rx,
        })
    }

    fn tell(&mut self, i: usize, line: &str) -> io::Result<()> {
        match self.stdins[i].as_mut() {
            Some(w) => writeln!(w, "{line}").and_then(|()| w.flush()),
            None => Err(io::Error::other("client process gone")),
        }
    }

    fn tell_all(&mut self, line: impl Fn(usize) -> String) -> io::Result<()> {
        for i in 0..self.stdins.len() {
            self.tell(i, &line(i))?;
        }
        Ok(())
    }

    /// The next report, waiting at most `wait`; Ok(None) on a time-out.
    fn next(&self, wait: Duration) -> io::Result<Option<(usize, Report)>> {
        match self.rx.recv_timeout(wait) {
            Ok((i, Some(line))) => Ok(Some((i, parse_report(&line)?))),
            Ok((i, None)) => Err(io::Error::other(format!(
                "client process {i} exited early (see its messages above)"
            ))),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(io::Error::other("client processes gone"))
            }
        }
    }

    /// Has each process NOOP `counts[i]` of its sessions (0 = all) and collects the reports.
    fn noop_round(&mut self, counts: &[usize], bound: Duration) -> io::Result<Vec<NoopReport>> {
        self.tell_all(|i| format!("noop {}", counts[i]))?;
        let until = Instant::now() + bound;
        let mut got: Vec<Option<NoopReport>> = (0..counts.len()).map(|_| None).collect();
        while got.iter().any(Option::is_none) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::other("NOOP: client processes did not report"));
            }
            if let Some((i, Report::Noop(r))) = self.next(left)? {
                got[i] = Some(r);
            }
        }
        Ok(got.into_iter().flatten().collect())
    }

    /// Resets every session and waits for the processes to exit.
    fn abort(mut self) -> io::Result<()> {
        let _ = self.tell_all(|_| "abort".to_owned());
        self.stdins.iter_mut().for_each(|s| drop(s.take()));
        for c in &mut self.children {
            c.wait()?;
        }
        self.children.clear();
        Ok(())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One line of the series.
struct Sample {
    secs: f64,
    done: usize,
    failed: usize,
    rate: f64,
    mem: Option<u64>,
    procs: usize,
}

impl Bench<'_> {
    /// `-b hold --procs P`, for each N of `sizes`.
    pub(super) fn bench_hold_procs(&mut self, sizes: &[usize]) -> io::Result<()> {
        for &n in sizes {
            self.hold_procs(n)?;
        }
        Ok(())
    }

    fn hold_procs(&mut self, n: usize) -> io::Result<()> {
        let nofile = sys::nofile_limit();
        let (shares, _) = plan(self.o, n, nofile)?;
        let procs = shares.len();
        let k = in_flight_per_proc(self.o, procs);
        let need = Need {
            sessions: n,
            procs,
            per_proc: shares.iter().map(|s| s.sessions).max().unwrap_or(0),
            sources: shares.iter().map(|s| usize::from(s.sources)).sum(),
            per_source: shares
                .iter()
                .map(|s| s.sessions.div_ceil(usize::from(s.sources.max(1))))
                .max()
                .unwrap_or(0),
            in_flight: k * procs,
            noops_in_flight: NOOP_WINDOW.max(self.o.noop_sample.div_ceil(procs)) * procs,
            local_server: self.cfg.addr.ip().is_loopback(),
        };
        let rows = limits::check(&need, nofile, self.proc_.as_ref());
        println!(
            "{n} sessions from {procs} client processes ({} each at most, {k} logins in flight \
             each), source addresses 127.0.0.{FIRST_SOURCE}-{}:",
            need.per_proc,
            usize::from(FIRST_SOURCE) + need.sources - 1
        );
        print!("{}", limits::report(&rows)?);

        // RETR with no session held.
        let server_procs = self.proc_.as_ref().map_or(0, |t| t.pids().len());
        self.stor_file(self.file_size)?;
        self.flush_upload();
        self.settle(server_procs);
        let size = bytes2human(self.file_size);
        let mut alone = Vec::new();
        for r in 1..=RETR_ROUNDS {
            alone.push(self.retr_whole(&format!("RETR {size}, no session held ({r})"))?);
        }

        // Log in, sampling.
        self.settle(server_procs);
        let mem0 = self.mem();
        let mut fleet = Fleet::start(&shares)?;
        let mut series = Vec::new();
        let every = Duration::from_secs_f64(self.o.series_every.max(0.1));
        let start = Instant::now();
        let (mut done, mut failed) = (vec![0usize; procs], vec![0usize; procs]);
        let mut ready: Vec<Option<(usize, f64, f64)>> = vec![None; procs];
        let mut next = start + every;
        let mut last = (0.0, 0usize);
        let mut last_progress = Instant::now();
        let sample = |this: &Self, done: usize, failed: usize, last: &mut (f64, usize)| {
            let secs = start.elapsed().as_secs_f64();
            let rate = (done - last.1.min(done)) as f64 / (secs - last.0).max(1e-3);
            *last = (secs, done);
            let s = Sample {
                secs,
                done,
                failed,
                rate,
                mem: this.mem(),
                procs: this.proc_.as_ref().map_or(0, |t| t.pids().len()),
            };
            eprintln!(
                "[{secs:6.1} s] {done} logged in ({rate:.0}/s), {failed} failed{}",
                s.mem
                    .map_or(String::new(), |m| format!(", server {}", bytes2human(m)))
            );
            s
        };
        while ready.iter().any(Option::is_none) {
            let now = Instant::now();
            if now >= next {
                let s = sample(self, done.iter().sum(), failed.iter().sum(), &mut last);
                series.push(s);
                // A sample can take longer than the interval when the client processes
                // keep both CPUs busy: the reports that came meanwhile are read before the
                // next one (catching up on samples instead would starve them).
                next = (next + every).max(Instant::now() + every / 2);
            }
            if now.duration_since(last_progress) > self.cfg.login_timeout * 2 {
                return Err(io::Error::other(format!(
                    "no login reported for {:?}",
                    self.cfg.login_timeout * 2
                )));
            }
            let wait = next.saturating_duration_since(Instant::now());
            match fleet.next(wait)? {
                Some((i, Report::Login { done: d, failed: f })) => {
                    done[i] = d;
                    failed[i] = f;
                    last_progress = Instant::now();
                }
                Some((
                    i,
                    Report::Ready {
                        live,
                        failed: f,
                        p50_ms,
                        p99_ms,
                    },
                )) => {
                    done[i] = live;
                    failed[i] = f;
                    ready[i] = Some((live, p50_ms, p99_ms));
                }
                Some(_) | None => {}
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        series.push(sample(
            self,
            done.iter().sum(),
            failed.iter().sum(),
            &mut last,
        ));
        let live: usize = ready.iter().flatten().map(|r| r.0).sum();
        let failed_total: usize = failed.iter().sum();
        let p50s: Vec<f64> = ready.iter().flatten().map(|r| r.1).collect();
        let p99_worst = ready.iter().flatten().map(|r| r.2).fold(0.0, f64::max);

        std::thread::sleep(Duration::from_secs(1));
        let mem = self.mem();
        let pss = self.proc_.as_ref().and_then(ProcTree::pss);
        let note = if failed_total > 0 {
            format!("{failed_total} of {n} failed")
        } else {
            String::new()
        };
        self.print(
            &format!("{n} sessions held from {procs} processes (connect, login)"),
            elapsed,
            "secs",
            mem,
            None,
            &note,
        );
        self.print(
            "login rate, whole run",
            live as f64 / elapsed,
            "logins/s",
            None,
            None,
            "",
        );
        for (name, lo, hi) in [
            ("login rate, 10-50 % of the sessions", 0.1, 0.5),
            ("login rate, 50-90 % of the sessions", 0.5, 0.9),
        ] {
            if let Some(r) = rate_between(&series, n, lo, hi) {
                self.print(name, r, "logins/s", None, None, "");
            }
        }
        self.print(
            "login latency p50 (median of the processes')",
            median(&p50s),
            "ms",
            None,
            None,
            "",
        );
        self.print(
            "login latency p99 (worst of the processes')",
            p99_worst,
            "ms",
            None,
            None,
            "",
        );
        if let (Some(m0), Some(m1)) = (mem0, mem) {
            let server_procs_now = self.proc_.as_ref().map_or(0, |t| t.pids().len());
            self.print(
                &format!("server memory, {live} held ({server_procs_now} processes)"),
                m1 as f64 / (1u64 << 20) as f64,
                "MiB",
                None,
                None,
                "RSS - shared, summed",
            );
            if let Some(p) = pss {
                self.print(
                    &format!("server memory, {live} held, PSS"),
                    p as f64 / (1u64 << 20) as f64,
                    "MiB",
                    None,
                    None,
                    "shared pages counted once",
                );
            }
            self.print(
                &format!("idle memory per held session ({live})"),
                m1.saturating_sub(m0) as f64 / live.max(1) as f64,
                "bytes",
                None,
                None,
                "",
            );
        }

        // RETR with all of them held.
        let mut held = Vec::new();
        for r in 1..=RETR_ROUNDS {
            held.push(self.retr_whole(&format!("RETR {size}, {live} sessions held ({r})"))?);
        }
        let (a, h) = (median(&alone), median(&held));
        self.print(
            &format!("RETR {size} with {live} held / with none before them (medians)"),
            100.0 * h / a,
            "%",
            None,
            None,
            &format!("{h:.0} / {a:.0} MB/s"),
        );

        // A sample of the held sessions answers a NOOP, each timed; then all of them.
        let per: Vec<usize> = split(self.o.noop_sample, &shares);
        let bound = self.cfg.timeout + Duration::from_secs(10);
        let got = fleet.noop_round(&per, bound)?;
        let mut lat: Vec<Duration> = got
            .iter()
            .flat_map(|g| g.lat_us.iter().map(|&us| Duration::from_micros(us)))
            .collect();
        lat.sort_unstable();
        let asked: usize = got.iter().map(|g| g.asked).sum();
        let answered: usize = got.iter().map(|g| g.answered).sum();
        let note = format!("{answered} of {asked} sampled sessions answered");
        for (name, q) in [("p50", 50.0), ("p99", 99.0), ("max", 100.0)] {
            self.print(
                &format!("NOOP of {asked} sampled held sessions: {name} latency"),
                percentile_ms(&lat, q),
                "ms",
                None,
                None,
                &note,
            );
        }
        let got = fleet.noop_round(&vec![0; procs], bound)?;
        let asked: usize = got.iter().map(|g| g.asked).sum();
        let answered: usize = got.iter().map(|g| g.answered).sum();
        let failed_noop: usize = got.iter().map(|g| g.failed).sum();
        let secs = got.iter().map(|g| g.secs).fold(0.0, f64::max);
        let p99 = got.iter().map(|g| g.p99_ms).fold(0.0, f64::max);
        let worst = got.iter().map(|g| g.max_ms).fold(0.0, f64::max);
        let mut note = format!(
            "{answered} of {asked} answered; p99 {p99:.0} ms, max {worst:.0} ms (worst process)"
        );
        if failed_noop > 0 {
            let _ = write!(note, "; {failed_noop} failed");
        }
        self.print(
            &format!("all {live} held sessions: NOOP ({NOOP_WINDOW} in flight per process)"),
            secs,
            "secs",
            None,
            None,
            &note,
        );
        fleet.abort()?;

        // RETR with none held again: the machine may have changed meanwhile.
        self.settle(server_procs);
        let mut after = Vec::new();
        for r in 1..=RETR_ROUNDS {
            after.push(self.retr_whole(&format!("RETR {size}, none held again ({r})"))?);
        }
        let b = median(&after);
        self.print(
            &format!("RETR {size} with {live} held / with none after them (medians)"),
            100.0 * h / b,
            "%",
            None,
            None,
            &format!("{h:.0} / {b:.0} MB/s"),
        );
        if let Some(path) = &self.o.series {
            write_series(path, &series)?;
        }
        if answered < n {
            return Err(io::Error::other(format!(
                "{answered} of {n} sessions answered the NOOP"
            )));
        }
        Ok(())
    }
}

/// `total` spread over the processes in proportion to their shares (at least one each
/// while `total` lasts).
fn split(total: usize, shares: &[Share]) -> Vec<usize> {
    let n: usize = shares.iter().map(|s| s.sessions).sum();
    let mut out: Vec<usize> = shares
        .iter()
        .map(|s| (total * s.sessions / n.max(1)).min(s.sessions))
        .collect();
    let mut left = total.saturating_sub(out.iter().sum());
    for (o, s) in out.iter_mut().zip(shares) {
        if left == 0 {
            break;
        }
        if *o < s.sessions {
            *o += 1;
            left -= 1;
        }
    }
    out
}

/// Logins per second between the moments `lo` and `hi` (fractions of `n`) were logged in,
/// interpolated between samples.
fn rate_between(series: &[Sample], n: usize, lo: f64, hi: f64) -> Option<f64> {
    let at = |frac: f64| -> Option<f64> {
        let target = frac * n as f64;
        let mut prev = (0.0, 0.0);
        for s in series {
            let d = s.done as f64;
            if d >= target {
                let span = d - prev.1;
                let t = if span > 0.0 {
                    prev.0 + (s.secs - prev.0) * (target - prev.1) / span
                } else {
                    s.secs
                };
                return Some(t);
            }
            prev = (s.secs, d);
        }
        None
    };
    let (t0, t1) = (at(lo)?, at(hi)?);
    (t1 > t0).then(|| (hi - lo) * n as f64 / (t1 - t0))
}

fn write_series(path: &std::path::Path, series: &[Sample]) -> io::Result<()> {
    let mut s =
        String::from("secs\tlogged_in\tfailed\tlogins_per_sec\tserver_mem_bytes\tserver_procs\n");
    for x in series {
        let _ = writeln!(
            s,
            "{:.1}\t{}\t{}\t{:.1}\t{}\t{}",
            x.secs,
            x.done,
            x.failed,
            x.rate,
            x.mem.map_or(String::new(), |m| m.to_string()),
            x.procs
        );
    }
    fs::write(path, s)
}

/// A client process (`--client-proc SPEC`): logs in its share, reports, takes orders.
pub fn client_proc(o: &Opts, spec: &str) -> io::Result<()> {
    sys::die_with_parent();
    let share = Share::parse(spec)?;
    let (Some(user), Some(pass)) = (&o.user, &o.pass) else {
        return Err(io::Error::other("-u/--user and -p/--pass are required"));
    };
    let addr = (o.host.as_str(), o.port)
        .to_socket_addrs()?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| io::Error::other(format!("cannot resolve {}", o.host)))?;
    let cfg = Cfg {
        addr,
        user: user.clone(),
        pass: pass.clone(),
        timeout: Duration::from_secs_f64(o.timeout),
        login_timeout: Duration::from_secs_f64(o.login_timeout.unwrap_or(o.timeout).max(0.01)),
        debug: o.debug,
        sources: share.source_addrs(),
        tls: None,
    };
    let mut m = Multi::new(cfg)?;
    let k = in_flight_per_proc(o, share.procs);
    let batch = k * BATCH_WINDOWS;
    let mut out = io::stdout().lock();
    let start = Instant::now();
    let (mut done, mut failed) = (0, 0);
    let mut lat = Vec::with_capacity(share.sessions);
    while done + failed < share.sessions {
        let c = batch.min(share.sessions - done - failed);
        let p = m.login(c, k)?;
        done += p.done;
        // Those still connecting at the phase's bound were closed: failed too.
        failed += c - p.done.min(c);
        lat.append(&mut m.lat);
        writeln!(out, "login {done} {failed}")?;
        out.flush()?;
    }
    lat.sort_unstable();
    writeln!(
        out,
        "ready {} {failed} {:.3} {:.3} {:.3}",
        m.live(),
        start.elapsed().as_secs_f64(),
        percentile_ms(&lat, 50.0),
        percentile_ms(&lat, 99.0)
    )?;
    out.flush()?;
    drop(lat);

    let spawned = share.sessions;
    for line in io::stdin().lock().lines() {
        let line = line?;
        let mut it = line.split_ascii_whitespace();
        match (it.next(), it.next().and_then(|v| v.parse::<usize>().ok())) {
            (Some("noop"), Some(count)) => {
                // All of them: in rounds of about NOOP_WINDOW, each every rounds-th
                // session; a sample: one round, spread over the sessions.
                let (rounds, stride) = match spawned.checked_div(count) {
                    Some(stride) => (1, stride.max(1)),
                    None => {
                        let rounds = spawned.div_ceil(NOOP_WINDOW).max(1);
                        (rounds, rounds)
                    }
                };
                let start = Instant::now();
                let (mut asked, mut done, mut failed) = (0, 0, 0);
                let mut lat = Vec::new();
                for round in 0..rounds {
                    let first = if rounds == 1 { stride / 2 } else { round };
                    let (p, n) = m.noop(first, stride)?;
                    asked += n;
                    done += p.done;
                    failed += p.failed();
                    lat.append(&mut m.lat);
                }
                lat.sort_unstable();
                let mut s = format!(
                    "noop {asked} {done} {failed} {:.3} {:.3} {:.3} {:.3}",
                    start.elapsed().as_secs_f64(),
                    percentile_ms(&lat, 50.0),
                    percentile_ms(&lat, 99.0),
                    percentile_ms(&lat, 100.0)
                );
                if count > 0 {
                    for l in &lat {
                        let _ = write!(s, " {}", l.as_micros());
                    }
                }
                writeln!(out, "{s}")?;
                out.flush()?;
            }
            (Some("abort"), _) => break,
            _ => return Err(io::Error::other(format!("unknown order {line:?}"))),
        }
    }
    m.abort();
    Ok(())
}

//! The soak: N sessions held (each sends a NOOP a minute) for `--duration` while
//! `--churn` new sessions a second connect, log in and QUIT and `--transfers` clients RETR
//! and STOR the test file in a loop. Every `--sample-every` seconds the server is sampled:
//! RSS and open descriptors summed over its processes, and its loops' handlers and timers
//! from the lines `RUST_LOG=ftpdlib::loop_stats=debug` makes it log (one per loop). After the warm-up each
//! series must stay within 5 % of its median, with no error anywhere: PASS or FAIL.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::Bench;
use crate::multi::{Multi, Op};
use crate::units::{bytes2human, percentile_ms};

/// How far a series may stray from its median after the warm-up.
const FLAT: f64 = 0.05;

/// The share of `--churn` the client must reach for the run to count.
const RATE_FLOOR: f64 = 0.95;

/// What the client threads report while the run goes on.
#[derive(Default)]
struct Counts {
    logins: AtomicU64,
    churn_errors: AtomicU64,
    hold_errors: AtomicU64,
    transfers: AtomicU64,
    transfer_errors: AtomicU64,
    bytes: AtomicU64,
    /// The worst p99 login latency of a churn round, in microseconds.
    worst_p99_us: AtomicU64,
}

impl Counts {
    fn errors(&self) -> u64 {
        self.churn_errors.load(Ordering::Relaxed)
            + self.hold_errors.load(Ordering::Relaxed)
            + self.transfer_errors.load(Ordering::Relaxed)
    }
}

/// Reads one series out of a sample.
type Metric = fn(&Sample) -> u64;

/// One sample of the server.
struct Sample {
    secs: f64,
    rss: u64,
    fds: u64,
    handlers: u64,
    timers: u64,
    logins: u64,
    errors: u64,
}

impl Bench<'_> {
    pub(super) fn bench_soak(&mut self, held: usize) -> io::Result<()> {
        let Some(tree) = &self.proc_ else {
            return Err(io::Error::other("-b soak needs -k PID"));
        };
        let o = self.o;
        let log_path = o
            .server_log
            .clone()
            .ok_or_else(|| io::Error::other("-b soak needs --server-log FILE"))?;
        let rate = o.churn.max(1.0);
        let k = self.max_in_flight(held);
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));

        let mut hold = Multi::new(self.cfg.clone())?;
        let p = hold.login(held, k)?;
        let note = p.note(held);
        println!(
            "soak: {held} sessions held in {:.1} s{}",
            p.elapsed.as_secs_f64(),
            if note.is_empty() {
                String::new()
            } else {
                format!(" [{note}]")
            }
        );
        if !note.is_empty() {
            return Err(io::Error::other(
                "soak: the held sessions did not all log in",
            ));
        }
        // The transfers need the file there before the first RETR.
        self.stor_file(self.file_size)?;

        let start = Instant::now();
        let mut workers = Vec::new();
        {
            let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
            workers.push(thread::spawn(move || hold_loop(hold, held, &stop, &counts)));
        }
        {
            let (stop, counts, cfg) = (Arc::clone(&stop), Arc::clone(&counts), self.cfg.clone());
            let in_flight = o.max_in_flight.unwrap_or(200).max(1);
            workers.push(thread::spawn(move || -> io::Result<String> {
                // Rounds of a second's worth, each on a client table of its own (so that it
                // does not grow with the run), scheduled from the start without drift.
                let per_round = rate.ceil() as usize;
                let round = Duration::from_secs_f64(per_round as f64 / rate);
                let mut t0 = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let mut m = Multi::new(cfg.clone())?;
                    let p = m.churn(t0, per_round, rate, in_flight)?;
                    t0 += round;
                    counts.logins.fetch_add(p.done as u64, Ordering::Relaxed);
                    let missing = per_round.saturating_sub(p.done) as u64;
                    counts.churn_errors.fetch_add(missing, Ordering::Relaxed);
                    let mut lat = std::mem::take(&mut m.lat);
                    lat.sort_unstable();
                    let p99 = (percentile_ms(&lat, 99.0) * 1000.0) as u64;
                    counts.worst_p99_us.fetch_max(p99, Ordering::Relaxed);
                }
                Ok(String::new())
            }));
        }
        if o.transfers > 0 {
            let (stop, counts, cfg) = (Arc::clone(&stop), Arc::clone(&counts), self.cfg.clone());
            let (n, size) = (o.transfers, self.file_size);
            let every = Duration::from_secs_f64(o.transfer_every.max(0.0));
            workers.push(thread::spawn(move || -> io::Result<String> {
                let mut m = Multi::new(cfg)?;
                let p = m.login(n, n)?;
                counts
                    .transfer_errors
                    .fetch_add(p.failed() as u64, Ordering::Relaxed);
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    // Paced: the transfers are part of the load, not a throughput test
                    // taking the machine's CPUs from the sessions.
                    let now = Instant::now();
                    if next > now {
                        thread::sleep(next - now);
                    }
                    next = Instant::now().max(next) + every;
                    for op in [Op::Stor, Op::Retr] {
                        let live = m.live();
                        let p = m.transfer(op, size)?;
                        let whole = p.done == live && m.moved == live as u64 * size;
                        counts.transfers.fetch_add(p.done as u64, Ordering::Relaxed);
                        counts.bytes.fetch_add(m.moved, Ordering::Relaxed);
                        if !whole || live < n {
                            counts.transfer_errors.fetch_add(1, Ordering::Relaxed);
                            eprintln!(
                                "soak: {op:?}: {} of {live} done, {} bytes, {}",
                                p.done,
                                m.moved,
                                p.note(live)
                            );
                        }
                    }
                }
                let q = m.quit()?;
                counts
                    .transfer_errors
                    .fetch_add(q.failed() as u64, Ordering::Relaxed);
                Ok(String::new())
            }));
        }

        let mut samples_out = match &o.samples {
            Some(p) => {
                let mut f = fs::File::create(p)?;
                writeln!(f, "secs\trss_bytes\tfds\thandlers\ttimers\tlogins\terrors")?;
                Some(f)
            }
            None => None,
        };
        let mut log = LoopLog::new(log_path);
        let every = Duration::from_secs_f64(o.sample_every.max(1.0));
        let duration = Duration::from_secs_f64(o.duration.max(0.0));
        let mut samples = Vec::new();
        println!("     secs        RSS    fds  handlers    timers     logins  errors");
        let mut next = start;
        loop {
            let now = Instant::now();
            if next > now {
                thread::sleep(next - now);
            }
            let pids = tree.pids();
            let (handlers, timers) = log.totals(&pids);
            let s = Sample {
                secs: start.elapsed().as_secs_f64(),
                rss: tree.rss_total(),
                fds: tree.fds(),
                handlers,
                timers,
                logins: counts.logins.load(Ordering::Relaxed),
                errors: counts.errors(),
            };
            println!(
                "{:>9.0} {:>10} {:>6} {:>9} {:>9} {:>10} {:>7}",
                s.secs,
                bytes2human(s.rss),
                s.fds,
                s.handlers,
                s.timers,
                s.logins,
                s.errors
            );
            if let Some(f) = samples_out.as_mut() {
                writeln!(
                    f,
                    "{:.1}\t{}\t{}\t{}\t{}\t{}\t{}",
                    s.secs, s.rss, s.fds, s.handlers, s.timers, s.logins, s.errors
                )?;
            }
            samples.push(s);
            if start.elapsed() >= duration {
                break;
            }
            next += every;
        }
        stop.store(true, Ordering::Relaxed);
        let mut held_note = String::new();
        for w in workers {
            match w.join() {
                Ok(Ok(note)) => {
                    if !note.is_empty() {
                        held_note = note;
                    }
                }
                Ok(Err(e)) => {
                    eprintln!("soak: a client thread failed: {e}");
                    counts.hold_errors.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    eprintln!("soak: a client thread panicked");
                    counts.hold_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        // The rate over the sampled run, before the clients' wind-down.
        let (elapsed, logins) = samples.last().map_or((0.0, 0), |s| (s.secs, s.logins));
        let achieved = logins as f64 / elapsed.max(1.0);
        println!("soak: {held_note}");
        println!(
            "soak: {logins} churn sessions in {elapsed:.0} s ({achieved:.0}/s of {rate:.0}/s asked), \
             worst p99 login latency of a round {:.1} ms",
            counts.worst_p99_us.load(Ordering::Relaxed) as f64 / 1000.0
        );
        println!(
            "soak: {} transfers of {}, {} moved",
            counts.transfers.load(Ordering::Relaxed),
            bytes2human(self.file_size),
            bytes2human(counts.bytes.load(Ordering::Relaxed))
        );
        let errors = [
            ("churn", &counts.churn_errors),
            ("held", &counts.hold_errors),
            ("transfer", &counts.transfer_errors),
        ];
        let errors: Vec<String> = errors
            .iter()
            .map(|(n, c)| format!("{n} {}", c.load(Ordering::Relaxed)))
            .collect();
        println!("soak: errors: {}", errors.join(", "));

        let mut pass = counts.errors() == 0 && achieved >= rate * RATE_FLOOR;
        let after: Vec<&Sample> = samples.iter().filter(|s| s.secs >= o.warmup).collect();
        if after.len() < 2 {
            println!("soak: fewer than 2 samples after the warm-up");
            pass = false;
        }
        let series: [(&str, Metric); 4] = [
            ("RSS", |s| s.rss),
            ("descriptors", |s| s.fds),
            ("handlers", |s| s.handlers),
            ("timers", |s| s.timers),
        ];
        for (name, get) in series {
            let mut v: Vec<u64> = after.iter().map(|s| get(s)).collect();
            v.sort_unstable();
            let (Some(&lo), Some(&hi)) = (v.first(), v.last()) else {
                continue;
            };
            let med = v[v.len() / 2].max(1) as f64;
            let dev = (hi as f64 - med).abs().max((med - lo as f64).abs()) / med;
            let ok = dev <= FLAT && lo > 0;
            pass &= ok;
            println!(
                "soak: {name:<12} after {:.0} s: median {:.0}, min {lo}, max {hi}, off the median by {:.2} % at most: {}",
                o.warmup,
                med,
                dev * 100.0,
                if ok { "flat" } else { "NOT FLAT" }
            );
        }
        println!("soak: {}", if pass { "PASS" } else { "FAIL" });
        if pass {
            Ok(())
        } else {
            Err(io::Error::other("soak: FAIL"))
        }
    }
}

/// Holds the sessions until told to stop, then checks they are all still there and QUITs
/// them; returns a line on how many were left.
fn hold_loop(
    mut hold: Multi,
    held: usize,
    stop: &AtomicBool,
    counts: &Counts,
) -> io::Result<String> {
    while !stop.load(Ordering::Relaxed) {
        hold.hold(Duration::from_secs(1), 60)?;
        counts
            .hold_errors
            .fetch_add(hold.failed() as u64, Ordering::Relaxed);
    }
    // The last NOOPs' replies.
    hold.watch(Duration::from_secs(2))?;
    counts
        .hold_errors
        .fetch_add(hold.failed() as u64, Ordering::Relaxed);
    let live = hold.live();
    let q = hold.quit()?;
    counts.hold_errors.fetch_add(
        (held - live.min(held)) as u64 + q.failed() as u64,
        Ordering::Relaxed,
    );
    Ok(format!(
        "{live} of {held} held sessions still logged in at the end, {} QUIT cleanly",
        q.done
    ))
}

/// The server's log, read as it grows: the latest `loop: pid=P H handlers, T timers` line of
/// each process.
struct LoopLog {
    path: PathBuf,
    offset: u64,
    partial: String,
    /// By process and thread id.
    latest: HashMap<(i32, i32), (u64, u64)>,
}

impl LoopLog {
    fn new(path: PathBuf) -> LoopLog {
        LoopLog {
            path,
            offset: 0,
            partial: String::new(),
            latest: HashMap::new(),
        }
    }

    /// Handlers and timers summed over the processes in `pids`, from their latest lines.
    fn totals(&mut self, pids: &[i32]) -> (u64, u64) {
        if let Err(e) = self.read_new() {
            eprintln!("soak: reading {}: {e}", self.path.display());
        }
        self.latest
            .iter()
            .filter(|((pid, _), _)| pids.contains(pid))
            .fold((0, 0), |(h, t), (_, &(h1, t1))| (h + h1, t + t1))
    }

    fn read_new(&mut self) -> io::Result<()> {
        let mut f = fs::File::open(Path::new(&self.path))?;
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        let Some(end) = self.partial.rfind('\n') else {
            return Ok(());
        };
        let complete: String = self.partial.drain(..=end).collect();
        for line in complete.lines() {
            if let Some((pid, tid, h, t)) = parse_loop_line(line) {
                self.latest.insert((pid, tid), (h, t));
            }
        }
        Ok(())
    }
}

/// `... loop: pid=P tid=T H handlers, T timers` → (P, T, H, T).
fn parse_loop_line(line: &str) -> Option<(i32, i32, u64, u64)> {
    let rest = &line[line.find("loop: pid=")? + "loop: pid=".len()..];
    let mut words = rest.split_ascii_whitespace();
    let pid = words.next()?.parse().ok()?;
    let tid = words.next()?.strip_prefix("tid=")?.parse().ok()?;
    let handlers = words.next()?.parse().ok()?;
    if words.next()? != "handlers," {
        return None;
    }
    let timers = words.next()?.parse().ok()?;
    Some((pid, tid, handlers, timers))
}

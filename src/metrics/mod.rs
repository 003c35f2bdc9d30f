//! Prometheus metrics (`ServerConfig::metrics`, the binary's `--metrics ADDR`): the counters
//! the sessions bump, and their text exposition format (version 0.0.4) served over HTTP by
//! [`http`] from the server's own loop.
//!
//! The counters live in one anonymous `MAP_SHARED` mapping of 64-bit atomics, created
//! before any fork: the threads of the multi-thread and multi-loop models, the session
//! processes of multi-proc and the workers of pre-fork all add to the same cells, so the
//! process that serves `/metrics` reads the sums with no message passing. A bump is one
//! relaxed `fetch_add`, with no allocation; with metrics off the sessions hold `None` and
//! a bump is a branch.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::sys::SharedCounters;

pub(crate) mod http;

/// One counter cell, without labels or with its labels fixed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    SessionsOpened,
    SessionsClosed,
    LoginsOk,
    LoginsFailed,
    RefusedMaxCons,
    RefusedMaxConsPerIp,
    RefusedBanned,
    RefusedByAdmit,
    BytesReceived,
    BytesSent,
    ListingBytesSent,
    TlsHandshakes,
    TlsHandshakeFailures,
    HttpRequests,
}

/// The counters of one server (every loop, thread and process of it).
pub(crate) struct Metrics {
    cells: SharedCounters,
}

impl Metrics {
    /// Maps zeroed counters, shared with the processes forked later.
    ///
    /// # Errors
    /// When the mapping fails.
    pub(crate) fn new() -> io::Result<Metrics> {
        Ok(Metrics {
            cells: SharedCounters::new(CELLS)?,
        })
    }

    /// Adds `n` to `counter`.
    #[inline]
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        self.bump(counter as usize, n);
    }

    /// One reply sent with `code`, counted by class (1xx … 5xx).
    #[inline]
    pub(crate) fn reply(&self, code: u16) {
        let class = usize::from(code / 100);
        if (1..=5).contains(&class) {
            self.bump(REPLIES + class - 1, 1);
        }
    }

    /// A transfer ended: its command, whether it completed, the bytes it moved (file data,
    /// or a listing) and how long it took.
    pub(crate) fn transfer(&self, command: &str, completed: bool, bytes: u64, took: Duration) {
        let Some(index) = TRANSFER_COMMANDS.iter().position(|c| *c == command) else {
            return;
        };
        self.bump(TRANSFERS + 2 * index + usize::from(!completed), 1);
        let counter = match command {
            "RETR" => Counter::BytesSent,
            "LIST" | "NLST" | "MLSD" => Counter::ListingBytesSent,
            _ => Counter::BytesReceived,
        };
        self.add(counter, bytes);
        self.observe(TRANSFER_SECONDS, &TRANSFER_BUCKETS_US, took);
    }

    /// One pass of a loop took `took`.
    pub(crate) fn loop_pass(&self, took: Duration) {
        self.observe(PASS_SECONDS, &PASS_BUCKETS_US, took);
    }

    /// The current value of `counter` (for tests and the start-up of a scrape).
    pub(crate) fn value(&self, counter: Counter) -> u64 {
        self.cell(counter as usize)
    }

    /// Writes every metric in the text exposition format, version 0.0.4.
    pub(crate) fn render(&self, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        let _ = self.render_into(out);
    }

    fn render_into(&self, out: &mut Vec<u8>) -> io::Result<()> {
        use Counter::*;
        let opened = self.value(SessionsOpened);
        let closed = self.value(SessionsClosed);
        family(out, "sessions_open", "gauge", "FTP sessions open now.")?;
        writeln!(
            out,
            "ftpdlib_sessions_open {}",
            opened.saturating_sub(closed)
        )?;
        counter(out, "sessions_total", "FTP sessions opened.", opened)?;
        family(out, "logins_total", "counter", "Logins by result.")?;
        writeln!(
            out,
            "ftpdlib_logins_total{{result=\"ok\"}} {}",
            self.value(LoginsOk)
        )?;
        writeln!(
            out,
            "ftpdlib_logins_total{{result=\"failed\"}} {}",
            self.value(LoginsFailed)
        )?;
        family(
            out,
            "refused_total",
            "counter",
            "Connections refused before a session started: by a limit, a ban, or the \
             program's Events::admit.",
        )?;
        writeln!(
            out,
            "ftpdlib_refused_total{{limit=\"max_cons\"}} {}",
            self.value(RefusedMaxCons)
        )?;
        writeln!(
            out,
            "ftpdlib_refused_total{{limit=\"max_cons_per_ip\"}} {}",
            self.value(RefusedMaxConsPerIp)
        )?;
        writeln!(
            out,
            "ftpdlib_refused_total{{limit=\"ban\"}} {}",
            self.value(RefusedBanned)
        )?;
        writeln!(
            out,
            "ftpdlib_refused_total{{limit=\"admit\"}} {}",
            self.value(RefusedByAdmit)
        )?;
        counter(
            out,
            "bytes_received_total",
            "File data received on data connections (STOR, APPE, STOU).",
            self.value(BytesReceived),
        )?;
        counter(
            out,
            "bytes_sent_total",
            "File data sent on data connections (RETR).",
            self.value(BytesSent),
        )?;
        counter(
            out,
            "listing_bytes_sent_total",
            "Directory listings sent on data connections (LIST, NLST, MLSD).",
            self.value(ListingBytesSent),
        )?;
        family(
            out,
            "transfers_total",
            "counter",
            "Data transfers ended, by command and result.",
        )?;
        for (i, command) in TRANSFER_COMMANDS.iter().enumerate() {
            for (j, result) in ["ok", "failed"].iter().enumerate() {
                writeln!(
                    out,
                    "ftpdlib_transfers_total{{command=\"{command}\",result=\"{result}\"}} {}",
                    self.cell(TRANSFERS + 2 * i + j)
                )?;
            }
        }
        self.histogram(
            out,
            "transfer_seconds",
            "How long data transfers took, from the command to the end.",
            TRANSFER_SECONDS,
            &TRANSFER_BUCKETS_US,
        )?;
        counter(
            out,
            "tls_handshakes_total",
            "TLS handshakes completed (control and data connections).",
            self.value(TlsHandshakes),
        )?;
        counter(
            out,
            "tls_handshake_failures_total",
            "TLS handshakes that failed or timed out.",
            self.value(TlsHandshakeFailures),
        )?;
        family(
            out,
            "replies_total",
            "counter",
            "FTP replies sent, by class.",
        )?;
        for class in 1..=5 {
            writeln!(
                out,
                "ftpdlib_replies_total{{class=\"{class}xx\"}} {}",
                self.cell(REPLIES + class - 1)
            )?;
        }
        self.histogram(
            out,
            "loop_pass_seconds",
            "Work time of one event-loop pass (waiting for events not counted).",
            PASS_SECONDS,
            &PASS_BUCKETS_US,
        )?;
        counter(
            out,
            "metrics_requests_total",
            "HTTP requests answered by the metrics endpoint.",
            self.value(HttpRequests),
        )?;
        Ok(())
    }

    fn histogram(
        &self,
        out: &mut Vec<u8>,
        name: &str,
        help: &str,
        base: usize,
        bounds_us: &[u64],
    ) -> io::Result<()> {
        family(out, name, "histogram", help)?;
        let mut cumulative = 0;
        for (i, bound) in bounds_us.iter().enumerate() {
            cumulative += self.cell(base + i);
            let le = *bound as f64 / 1e6;
            writeln!(out, "ftpdlib_{name}_bucket{{le=\"{le}\"}} {cumulative}")?;
        }
        cumulative += self.cell(base + bounds_us.len());
        writeln!(out, "ftpdlib_{name}_bucket{{le=\"+Inf\"}} {cumulative}")?;
        let sum_us = self.cell(base + bounds_us.len() + 1);
        writeln!(out, "ftpdlib_{name}_sum {}", sum_us as f64 / 1e6)?;
        writeln!(out, "ftpdlib_{name}_count {cumulative}")
    }

    /// Histogram cells: one per bound, one for +Inf, then the sum in microseconds.
    fn observe(&self, base: usize, bounds_us: &[u64], took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = bounds_us
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(bounds_us.len());
        self.bump(base + bucket, 1);
        self.bump(base + bounds_us.len() + 1, us);
    }

    #[inline]
    fn bump(&self, index: usize, n: u64) {
        if let Some(cell) = self.cells.cells().get(index) {
            cell.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn cell(&self, index: usize) -> u64 {
        self.cells
            .cells()
            .get(index)
            .map_or(0, |c: &AtomicU64| c.load(Ordering::Relaxed))
    }
}

/// Records the passes of `ioloop` into the server's pass histogram, when metrics are on.
pub(crate) fn observe_loop<M: 'static>(
    ioloop: &mut ioloop::IoLoop<M>,
    metrics: Option<&std::sync::Arc<Metrics>>,
) {
    if let Some(m) = metrics {
        let m = std::sync::Arc::clone(m);
        ioloop.observe_passes(Box::new(move |took| m.loop_pass(took)));
    }
}

/// `# HELP` and `# TYPE` of a family.
fn family(out: &mut Vec<u8>, name: &str, kind: &str, help: &str) -> io::Result<()> {
    writeln!(out, "# HELP ftpdlib_{name} {help}")?;
    writeln!(out, "# TYPE ftpdlib_{name} {kind}")
}

/// A counter without labels.
fn counter(out: &mut Vec<u8>, name: &str, help: &str, value: u64) -> io::Result<()> {
    family(out, name, "counter", help)?;
    writeln!(out, "ftpdlib_{name} {value}")
}

/// The transfer commands, in the order of their cells.
const TRANSFER_COMMANDS: [&str; 7] = ["RETR", "STOR", "APPE", "STOU", "LIST", "NLST", "MLSD"];
/// Transfer durations' bucket bounds, in microseconds (10 ms … 30 min).
const TRANSFER_BUCKETS_US: [u64; 9] = [
    10_000,
    100_000,
    500_000,
    1_000_000,
    5_000_000,
    10_000_000,
    60_000_000,
    300_000_000,
    1_800_000_000,
];
/// Loop passes' bucket bounds, in microseconds (50 µs … 1 s).
const PASS_BUCKETS_US: [u64; 9] = [
    50, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000, 1_000_000,
];

/// Cell layout: the plain counters, then the labelled families.
const REPLIES: usize = Counter::HttpRequests as usize + 1;
const TRANSFERS: usize = REPLIES + 5;
const TRANSFER_SECONDS: usize = TRANSFERS + 2 * TRANSFER_COMMANDS.len();
const PASS_SECONDS: usize = TRANSFER_SECONDS + TRANSFER_BUCKETS_US.len() + 2;
const CELLS: usize = PASS_SECONDS + PASS_BUCKETS_US.len() + 2;

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &Metrics) -> String {
        let mut out = Vec::new();
        m.render(&mut out);
        String::from_utf8(out).expect("the exposition is UTF-8")
    }

    #[test]
    fn gauge_is_opened_minus_closed() {
        let m = Metrics::new().expect("map");
        m.add(Counter::SessionsOpened, 3);
        m.add(Counter::SessionsClosed, 1);
        let t = text(&m);
        assert!(t.contains("\nftpdlib_sessions_open 2\n"), "{t}");
        assert!(t.contains("\nftpdlib_sessions_total 3\n"), "{t}");
    }

    #[test]
    fn transfers_count_bytes_by_kind_and_fill_the_histogram() {
        let m = Metrics::new().expect("map");
        m.transfer("RETR", true, 100, Duration::from_millis(5));
        m.transfer("STOR", false, 7, Duration::from_secs(2));
        m.transfer("LIST", true, 40, Duration::from_millis(50));
        m.transfer("SITE", true, 1, Duration::ZERO); // not a transfer: ignored
        let t = text(&m);
        assert!(t.contains("ftpdlib_bytes_sent_total 100\n"), "{t}");
        assert!(t.contains("ftpdlib_bytes_received_total 7\n"), "{t}");
        assert!(t.contains("ftpdlib_listing_bytes_sent_total 40\n"), "{t}");
        assert!(t.contains("{command=\"RETR\",result=\"ok\"} 1\n"), "{t}");
        assert!(
            t.contains("{command=\"STOR\",result=\"failed\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("ftpdlib_transfer_seconds_bucket{le=\"0.01\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("ftpdlib_transfer_seconds_bucket{le=\"0.1\"} 2\n"),
            "{t}"
        );
        assert!(
            t.contains("ftpdlib_transfer_seconds_bucket{le=\"1\"} 2\n"),
            "{t}"
        );
        assert!(
            t.contains("ftpdlib_transfer_seconds_bucket{le=\"5\"} 3\n"),
            "{t}"
        );
        assert!(
            t.contains("ftpdlib_transfer_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{t}"
        );
        assert!(t.contains("ftpdlib_transfer_seconds_sum 2.055\n"), "{t}");
        assert!(t.contains("ftpdlib_transfer_seconds_count 3\n"), "{t}");
    }

    #[test]
    fn replies_by_class_ignore_codes_out_of_range() {
        let m = Metrics::new().expect("map");
        for code in [150, 226, 226, 331, 421, 530, 999, 0] {
            m.reply(code);
        }
        let t = text(&m);
        for (class, n) in [(1, 1), (2, 2), (3, 1), (4, 1), (5, 1)] {
            let line = format!("ftpdlib_replies_total{{class=\"{class}xx\"}} {n}\n");
            assert!(t.contains(&line), "{t}");
        }
    }

    #[test]
    fn every_family_has_help_and_type_and_counters_end_in_total() {
        let t = text(&Metrics::new().expect("map"));
        let mut names = Vec::new();
        for line in t.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("name and type");
                assert!(name.starts_with("ftpdlib_"), "{line}");
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "{line}");
                }
                names.push(name.to_owned());
            } else if !line.starts_with("# HELP ") {
                let name = line.split(['{', ' ']).next().expect("a sample");
                assert!(
                    names.iter().any(|n| name.starts_with(n.as_str())),
                    "{line} has no TYPE before it"
                );
            }
        }
        assert!(names.len() >= 14, "{names:?}");
    }

    #[test]
    fn adds_from_several_threads_are_all_counted() {
        let m = Metrics::new().expect("map");
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        m.add(Counter::LoginsOk, 1);
                    }
                });
            }
        });
        assert_eq!(m.value(Counter::LoginsOk), 4000);
    }
}

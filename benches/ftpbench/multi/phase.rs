//! The phases of the non-blocking client: each starts something on every client (connect
//! and log in, a transfer, QUIT), then turns the poller until all are done or the phase's
//! bound is reached, and reports what it achieved.

use std::fmt::Write as _;
use std::io;
use std::time::{Duration, Instant};

use super::{send, Multi, Op, St};

/// What a phase of the non-blocking client achieved.
pub struct Phase {
    pub elapsed: Duration,
    pub done: usize,
    failed: usize,
    timed_out: bool,
    /// At a time-out: how many clients were left in which state.
    stuck: String,
}

impl Phase {
    /// How many clients failed.
    pub fn failed(&self) -> usize {
        self.failed
    }

    /// What went wrong, for the result line: empty when all `n` clients made it.
    pub fn note(&self, n: usize) -> String {
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

impl Multi {
    /// Connects and logs in `n` more clients, at most `k` in progress at once.
    pub fn login(&mut self, n: usize, k: usize) -> io::Result<Phase> {
        self.reset_counts();
        self.lat.clear();
        self.resumed = 0;
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
    pub fn transfer(&mut self, op: Op, size: u64) -> io::Result<Phase> {
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
    pub fn watch(&mut self, time: Duration) -> io::Result<()> {
        self.reset_counts();
        let deadline = Instant::now() + time;
        while Instant::now() < deadline {
            self.turn(deadline)?;
        }
        self.report_errors("idle");
        Ok(())
    }

    /// Churn: `count` new clients, the i-th started at `t0` + i / `rate` (or as soon as
    /// possible after), at most `k` in progress, each connecting, logging in and QUITting
    /// at once; timed until the last one is done. `done` counts the completed QUITs, `lat`
    /// the login latencies. Rounds that chain their `t0`s keep the rate without drift.
    pub fn churn(&mut self, t0: Instant, count: usize, rate: f64, k: usize) -> io::Result<Phase> {
        self.reset_counts();
        self.lat.clear();
        self.quit_on_login = true;
        let start = Instant::now();
        let deadline =
            t0.max(start) + self.o.timeout + Duration::from_secs_f64(count as f64 / rate);
        let first = self.cl.len();
        let mut started = 0;
        let mut timed_out = false;
        while self.done + self.failed < count {
            // Paced: as many started as the rate allows by now, in flight at most k.
            let since = Instant::now().saturating_duration_since(t0);
            let due = ((since.as_secs_f64() * rate) as usize).min(count);
            while started < due && started - (self.done + self.failed) < k {
                self.spawn();
                started += 1;
            }
            let now = Instant::now();
            if now >= deadline {
                timed_out = true;
                break;
            }
            // Wake at least every 10 ms to start the next ones on time.
            self.turn(deadline.min(now + Duration::from_millis(10)))?;
        }
        let elapsed = start.elapsed();
        let stuck = if timed_out {
            self.stuck(first..self.cl.len())
        } else {
            String::new()
        };
        self.quit_on_login = false;
        self.report_errors("churn");
        self.clear();
        Ok(Phase {
            elapsed,
            done: self.done,
            failed: self.failed,
            timed_out,
            stuck,
        })
    }

    /// Holds the logged-in clients for `time`: on entry one in `slices` of them (a
    /// different slice each call) sends a NOOP, so that called every second with
    /// `slices` = 60 each client keeps its session alive with a NOOP a minute, well
    /// within the server's idle timeout. A client the server closes meanwhile fails.
    pub fn hold(&mut self, time: Duration, slices: usize) -> io::Result<()> {
        self.reset_counts();
        self.lat.clear();
        let slices = slices.max(1);
        let slice = self.noop_slice % slices;
        self.noop_slice = self.noop_slice.wrapping_add(1);
        for i in (slice..self.cl.len()).step_by(slices) {
            if self.cl[i].st != St::Idle {
                continue;
            }
            self.cl[i].st = St::Noop;
            if let Err(e) = send(&mut self.cl[i], &self.cmds.noop) {
                self.fail(i, format!("write: {e}"));
            }
        }
        let deadline = Instant::now() + time;
        while Instant::now() < deadline {
            self.turn(deadline)?;
        }
        self.report_errors("hold");
        Ok(())
    }

    /// A NOOP on every `stride`-th logged-in client from `first` (all of them with a
    /// stride of 1), each timed from its send to its reply (`lat`); the phase until the
    /// last reply, and how many were asked. A client the server closed meanwhile fails.
    pub fn noop(&mut self, first: usize, stride: usize) -> io::Result<(Phase, usize)> {
        self.reset_counts();
        self.lat.clear();
        let start = Instant::now();
        let deadline = start + self.o.timeout;
        let mut n = 0;
        for i in (first..self.cl.len()).step_by(stride.max(1)) {
            if self.cl[i].st != St::Idle {
                continue;
            }
            n += 1;
            let c = &mut self.cl[i];
            c.st = St::Noop;
            c.t0 = Instant::now();
            if let Err(e) = send(c, &self.cmds.noop) {
                self.fail(i, format!("write: {e}"));
            }
        }
        let phase = self.end_phase(n, start, deadline, "NOOP")?;
        Ok((phase, n))
    }

    /// QUIT on every idle client; timed until each got its reply (or EOF).
    pub fn quit(&mut self) -> io::Result<Phase> {
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
        let phase = self.end_phase(n, start, deadline, "QUIT")?;
        self.clear();
        Ok(phase)
    }

    /// Waits until the `n` clients of a phase begun at `start` are done or failed (or
    /// `deadline`), reports their errors under `what` and sums the phase up.
    fn end_phase(
        &mut self,
        n: usize,
        start: Instant,
        deadline: Instant,
        what: &str,
    ) -> io::Result<Phase> {
        let timed_out = self.run_until_done(n, deadline)?;
        let elapsed = start.elapsed();
        let stuck = if timed_out {
            self.stuck(0..self.cl.len())
        } else {
            String::new()
        };
        self.report_errors(what);
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
    pub fn abort(&mut self) {
        for c in &self.cl {
            for s in [&c.ctrl, &c.data].into_iter().flatten() {
                let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
            }
        }
        self.clear();
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
}

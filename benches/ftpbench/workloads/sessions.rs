//! The workloads with many sessions at once, on the non-blocking client: pyftpdlib's
//! concurrence, and the idle memory, login and held-session measurements.

use std::io;
use std::time::Duration;

use super::Bench;
use crate::multi::{Multi, Op};
use crate::proctree::ProcTree;
use crate::tls::Tls;
use crate::units::{bytes2human, median, percentile_ms, sep_note};

impl Bench<'_> {
    /// pyftpdlib's bench_multi, on the non-blocking client.
    pub(super) fn bench_multi(&mut self, n: usize) -> io::Result<()> {
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

    /// (mem(N) − mem(0)) / N for N logged-in idle sessions.
    pub(super) fn bench_idle_memory(&mut self, sizes: &[usize]) -> io::Result<()> {
        let Some(t) = &self.proc_ else {
            return Err(io::Error::other("-b idle-memory needs -k PID"));
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
    pub(super) fn bench_hold(&mut self, sizes: &[usize]) -> io::Result<()> {
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
    pub(super) fn bench_logins(&mut self, sizes: &[usize]) -> io::Result<()> {
        let Some(t) = &self.proc_ else {
            return Err(io::Error::other("-b logins needs -k PID"));
        };
        let procs = t.pids().len();
        let rounds = self.o.rounds.max(1);
        let resume = self.cfg.tls.as_ref().is_some_and(Tls::resumes_across);
        for &n in sizes {
            let k = self.max_in_flight(n);
            if resume {
                // An unmeasured burst of as many logins leaves a session for each in the
                // shared pool.
                self.settle(procs);
                let mut m = Multi::new(self.cfg.clone())?;
                m.login(n, k)?;
                m.abort();
            }
            let mut resumed = Vec::with_capacity(rounds);
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
                resumed.push(100.0 * m.resumed as f64 / p.done.max(1) as f64);
                runs.push((p.elapsed.as_secs_f64(), cpu, p.done.max(1) as f64));
                m.abort();
            }
            // The same row names for any number of rounds, so that servers measured with
            // different counts still line up in one report (a note would mark the row as
            // incomplete).
            let mut tag = if k < n {
                format!("{n} logins, {k} in flight")
            } else {
                format!("{n} logins")
            };
            if resume {
                tag.push_str(", TLS resumed");
            }
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
            if self.cfg.tls.is_some() {
                self.print(
                    &format!("{tag}: TLS handshakes resumed"),
                    median(&resumed),
                    "%",
                    None,
                    None,
                    "",
                );
            }
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
}

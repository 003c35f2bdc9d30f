//! The single-client workloads: one session STORs or RETRs alone, on the blocking client
//! with a 1 MiB buffer, the fastest way to move bytes through one connection.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use super::Bench;
use crate::ftp::TESTFN;
use crate::sys;

impl Bench<'_> {
    /// Uploads `size` bytes of dummy data as the test file (not timed).
    pub(super) fn stor_file(&self, size: u64) -> io::Result<()> {
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
    pub(super) fn bench_stor(&mut self, title: &str) -> io::Result<()> {
        let mut ftp = self.connect()?;
        ftp.voidcmd("TYPE I")?;
        let cpu0 = self.cpu();
        let mut d = ftp.transfercmd(&format!("STOR {TESTFN}"))?;
        let start = Instant::now();
        let mut total = 0u64;
        while start.elapsed() < self.secs {
            let n = d.write(&self.bulk)?;
            if n == 0 {
                return Err(io::Error::other("STOR: data connection closed"));
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
    pub(super) fn flush_upload(&self) {
        if self.cfg.addr.ip().is_loopback() {
            sys::sync();
        }
    }

    /// RETR the whole test file once: the rate (MB/s, printed and returned), checked
    /// against the file's size.
    pub(super) fn retr_whole(&mut self, title: &str) -> io::Result<f64> {
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
            return Err(io::Error::other(format!(
                "RETR: {total} bytes of {}",
                self.file_size
            )));
        }
        let rate = total as f64 / MIB / elapsed;
        self.print(title, rate, "MB/sec", mem, cpu, "");
        self.print_cpu_per_gib(title, cpu, total);
        ftp.quit();
        Ok(rate)
    }

    /// RETR the test file for `--seconds`, again at EOF (the re-request time is not counted,
    /// as in pyftpdlib).
    pub(super) fn bench_retr(&mut self, title: &str) -> io::Result<()> {
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
                    return Err(io::Error::other("RETR: timed out"));
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
}

const MIB: f64 = 1024.0 * 1024.0;

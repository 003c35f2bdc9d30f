//! The server's process tree, read from /proc: memory (RSS − shared, as pyftpdlib's script
//! measures it with psutil) and CPU time, summed over the server and all its descendants,
//! so that forking servers are measured as a whole.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::PathBuf;

use crate::sys;

/// CPU time in seconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub user: f64,
    pub sys: f64,
}

impl Cpu {
    pub fn total(&self) -> f64 {
        self.user + self.sys
    }
    pub fn since(&self, earlier: Cpu) -> Cpu {
        Cpu {
            user: self.user - earlier.user,
            sys: self.sys - earlier.sys,
        }
    }
}

/// The server process (the root) and its descendants.
pub struct ProcTree {
    root: i32,
    page: u64,
    hz: f64,
    /// A cgroup v1 cpuacct folder holding the server (and nothing else): exact CPU time,
    /// exited children included.
    pub cgroup: Option<PathBuf>,
}

impl ProcTree {
    pub fn new(root: i32) -> io::Result<Self> {
        if !PathBuf::from(format!("/proc/{root}")).exists() {
            return Err(io::Error::other(format!("no process {root}")));
        }
        let (page, hz) = sys::page_size_and_hz();
        Ok(ProcTree {
            root,
            page,
            hz,
            cgroup: None,
        })
    }

    /// The root and all its descendants.
    pub fn pids(&self) -> Vec<i32> {
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
    pub fn mem(&self) -> u64 {
        self.pids()
            .into_iter()
            .filter_map(|p| self.statm(p))
            .map(|(rss, shared)| rss.saturating_sub(shared))
            .sum()
    }

    /// RSS, shared pages included, summed over the tree.
    pub fn rss_total(&self) -> u64 {
        self.pids()
            .into_iter()
            .filter_map(|p| self.statm(p))
            .map(|(rss, _)| rss)
            .sum()
    }

    /// Open descriptors, summed over the tree (entries of /proc/PID/fd).
    pub fn fds(&self) -> u64 {
        self.pids()
            .into_iter()
            .filter_map(|p| fs::read_dir(format!("/proc/{p}/fd")).ok())
            .map(|d| d.count() as u64)
            .sum()
    }

    /// Proportional set size summed over the tree (/proc/PID/smaps_rollup): each page
    /// shared by k processes counted 1/k in each, so forked workers' common pages count
    /// once; None when the kernel has no smaps_rollup.
    pub fn pss(&self) -> Option<u64> {
        let mut total = None;
        for p in self.pids() {
            let Ok(s) = fs::read_to_string(format!("/proc/{p}/smaps_rollup")) else {
                continue;
            };
            let kib = s
                .lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.split_ascii_whitespace().next()?.parse::<u64>().ok());
            if let Some(kib) = kib {
                total = Some(total.unwrap_or(0) + kib * 1024);
            }
        }
        total
    }

    pub fn rss(&self) -> u64 {
        self.statm(self.root).map_or(0, |(rss, _)| rss)
    }

    /// User and system time: from the cgroup when given (nanoseconds), else from the live
    /// tree plus what its members reaped from exited children (cutime / cstime, in ticks).
    pub fn cpu(&self) -> Cpu {
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

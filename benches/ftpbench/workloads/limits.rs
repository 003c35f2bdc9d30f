//! The kernel settings a million sessions on one machine need, checked before any of them
//! starts: each row names the setting, its value, what the run needs and, when it falls
//! short, what to raise and by how much.

use std::fmt::Write as _;
use std::fs;
use std::io;

use crate::proctree::ProcTree;

/// One checked setting.
pub struct Row {
    pub setting: String,
    pub value: String,
    pub needed: String,
    /// None: enough; Some: what to do about it.
    pub raise: Option<String>,
}

/// What the run will ask of the machine.
pub struct Need {
    /// Sessions to hold.
    pub sessions: usize,
    /// Client processes, and the most sessions one of them holds.
    pub procs: usize,
    pub per_proc: usize,
    /// Source addresses, and the most sessions on one of them.
    pub sources: usize,
    pub per_source: usize,
    /// Connects + logins in progress at once, over all client processes.
    pub in_flight: usize,
    /// NOOPs in flight at once over all client processes.
    pub noops_in_flight: usize,
    /// Whether the server runs on this machine (its sockets count too).
    pub local_server: bool,
}

/// Descriptors a client process keeps beside its sessions (stdio, the poller, the pipes).
pub const CLIENT_FDS_SPARE: usize = 100;
/// Ports of the ephemeral range left free on each source address (TIME_WAITs of earlier
/// runs, other programs).
pub const PORTS_SPARE_PERCENT: usize = 10;
/// Kernel memory per TCP socket of an idle session: the socket (`TCP` slab, about 2.3 KiB),
/// its file, inode and dentry, the epoll item; measured at about 3 KiB, rounded up.
const KERNEL_BYTES_PER_SOCKET: u64 = 4 << 10;
/// Server and client memory per session beside the kernel's (the server's session, about
/// 700 B; the client's state, about 200 B), rounded up.
const USER_BYTES_PER_SESSION: u64 = 2 << 10;

/// `(low, high)` of net.ipv4.ip_local_port_range.
pub fn port_range() -> (usize, usize) {
    let s = read("net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut it = s.split_ascii_whitespace().filter_map(|v| v.parse().ok());
    match (it.next(), it.next()) {
        (Some(lo), Some(hi)) if hi >= lo => (lo, hi),
        _ => (32768, 60999),
    }
}

/// Connections one source address makes to one server address at full speed: connect()
/// takes the even ports of the ephemeral range first (the odd ones are left to bind());
/// once they are gone each connect scans the range under a lock, measured here at 3 ms a
/// connect instead of 80 us past 14,000 connections from one address (28,232 ports),
/// which stalled the logins of every client process for seconds at a time.
pub fn ports_per_source() -> usize {
    let (lo, hi) = port_range();
    let ports = hi - lo + 1;
    let even = ports / 2;
    even - even * PORTS_SPARE_PERCENT / 100
}

fn read(name: &str) -> Option<String> {
    fs::read_to_string(format!("/proc/sys/{name}"))
        .ok()
        .map(|s| s.trim().to_owned())
}

fn read_num(name: &str) -> Option<u64> {
    read(name)?.split_ascii_whitespace().next()?.parse().ok()
}

fn meminfo(key: &str) -> Option<u64> {
    let s = fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find_map(|l| l.strip_prefix(key))?;
    let kib: u64 = line
        .trim_start_matches(':')
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The soft open-files limit of a process, from /proc/PID/limits.
fn nofile_of(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = s.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}

/// Checks every setting against `need`; the server's processes too when `server` is given.
pub fn check(need: &Need, nofile: u64, server: Option<&ProcTree>) -> Vec<Row> {
    let mut rows = Vec::new();
    let n = need.sessions as u64;

    // Descriptors per client process.
    let per_proc_fds = (need.per_proc + CLIENT_FDS_SPARE) as u64;
    rows.push(Row {
        setting: "open files per process (RLIMIT_NOFILE)".into(),
        value: nofile.to_string(),
        needed: format!(
            "{per_proc_fds} ({} client processes of {} sessions)",
            need.procs, need.per_proc
        ),
        raise: (nofile < per_proc_fds).then(|| {
            format!(
                "ulimit -Hn {per_proc_fds} (as root), or more processes (--procs {})",
                need.sessions
                    .div_ceil((nofile as usize).saturating_sub(CLIENT_FDS_SPARE).max(1))
            )
        }),
    });

    // Open files in the whole system: a socket per session on each side.
    let sockets = if need.local_server { 2 * n } else { n };
    let used = fs::read_to_string("/proc/sys/fs/file-nr")
        .ok()
        .and_then(|s| s.split_ascii_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    let want = sockets + used + sockets / 20 + 10_000;
    match read_num("fs/file-max") {
        Some(max) => rows.push(Row {
            setting: "fs.file-max".into(),
            value: max.to_string(),
            needed: format!("{want} ({sockets} sockets, {used} open now, 5 % spare)"),
            raise: (max < want).then(|| format!("sysctl -w fs.file-max={want} (+{})", want - max)),
        }),
        None => rows.push(unreadable("fs.file-max")),
    }
    if let Some(nr_open) = read_num("fs/nr_open") {
        rows.push(Row {
            setting: "fs.nr_open (ceiling of RLIMIT_NOFILE)".into(),
            value: nr_open.to_string(),
            needed: per_proc_fds.to_string(),
            raise: (nr_open < per_proc_fds).then(|| format!("sysctl -w fs.nr_open={per_proc_fds}")),
        });
    }

    // Ports: each source address reaches the server's address through the ephemeral range.
    let (lo, hi) = port_range();
    let ports = hi - lo + 1;
    let usable = ports_per_source();
    rows.push(Row {
        setting: "net.ipv4.ip_local_port_range".into(),
        value: format!("{lo} {hi} ({ports} ports, {usable} fast connects per source address)"),
        needed: format!(
            "{} ({} source addresses 127.0.0.x)",
            need.per_source, need.sources
        ),
        raise: (need.per_source > usable).then(|| {
            format!(
                "more source addresses (--source-ips {}), or widen the range: sysctl -w \
                 net.ipv4.ip_local_port_range=\"1024 65535\"",
                need.sessions.div_ceil(usable.max(1))
            )
        }),
    });

    // The accept queue: a burst of connects beyond it waits for SYN retransmissions (1 s,
    // then 3 s, ...), which shows as logins slowing down.
    for (name, key) in [
        ("net.core.somaxconn", "net/core/somaxconn"),
        (
            "net.ipv4.tcp_max_syn_backlog",
            "net/ipv4/tcp_max_syn_backlog",
        ),
    ] {
        if let Some(v) = read_num(key) {
            let want = need.in_flight as u64;
            rows.push(Row {
                setting: name.into(),
                value: v.to_string(),
                needed: format!("{want} (connects + logins in flight)"),
                raise: (v < want).then(|| {
                    format!(
                        "sysctl -w {name}={want} (+{}; and the server's --backlog), or a \
                         smaller --max-in-flight",
                        want - v
                    )
                }),
            });
        }
    }

    // Connection tracking, when a firewall loaded it: one entry per session.
    if let (Some(max), Some(count)) = (
        read_num("net/netfilter/nf_conntrack_max"),
        read_num("net/netfilter/nf_conntrack_count"),
    ) {
        let want = n + n / 10;
        // An empty table with traffic going on: nothing is tracked.
        let tracking = count > 0;
        rows.push(Row {
            setting: "net.netfilter.nf_conntrack_max".into(),
            value: format!("{max} ({count} tracked now)"),
            needed: if tracking {
                want.to_string()
            } else {
                "- (loopback not tracked)".into()
            },
            raise: (tracking && max < want)
                .then(|| format!("sysctl -w net.netfilter.nf_conntrack_max={want}")),
        });
    }

    // Socket buffers: an idle session's socket holds none once its replies are read, but
    // each one with a command or reply in flight holds at least a page, on each side: the
    // logins and NOOPs in flight must stay below the pressure threshold (tcp_mem's second
    // value), past which the kernel starts dropping.
    if let Some(s) = read("net/ipv4/tcp_mem") {
        let v: Vec<u64> = s
            .split_ascii_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let pressure = v.get(1).copied().unwrap_or(0);
        let want = 2 * 2 * need.in_flight.max(need.noops_in_flight) as u64;
        rows.push(Row {
            setting: "net.ipv4.tcp_mem (pages)".into(),
            value: format!(
                "{} (pressure from {})",
                v.iter().map(u64::to_string).collect::<Vec<_>>().join(" "),
                gib(pressure * 4096)
            ),
            needed: format!(
                "{want} pages at pressure (a page a socket in flight, twice over; idle ones \
                 hold none)"
            ),
            raise: (pressure < want).then(|| {
                format!(
                    "sysctl -w net.ipv4.tcp_mem=\"{} {} {}\"",
                    want,
                    want * 4 / 3,
                    want * 2
                )
            }),
        });
    }

    // Memory: the sockets' kernel memory, the server's and the client's.
    let want = sockets * KERNEL_BYTES_PER_SOCKET + n * USER_BYTES_PER_SESSION;
    match meminfo("MemAvailable") {
        Some(avail) => rows.push(Row {
            setting: "MemAvailable".into(),
            value: gib(avail),
            needed: format!(
                "{} ({} KiB per socket, {} KiB per session beside)",
                gib(want),
                KERNEL_BYTES_PER_SOCKET >> 10,
                USER_BYTES_PER_SESSION >> 10
            ),
            raise: (avail < want).then(|| {
                format!(
                    "free {} of memory, or hold fewer sessions",
                    gib(want - avail)
                )
            }),
        }),
        None => rows.push(unreadable("MemAvailable")),
    }

    // The server's processes: each holds its sessions under its own open-files limit.
    if let Some(t) = server {
        let pids = t.pids();
        let limits: Vec<u64> = pids.iter().filter_map(|&p| nofile_of(p)).collect();
        // The supervisor of a forking server holds no sessions.
        let workers = if pids.len() > 1 { pids.len() - 1 } else { 1 };
        let per = limits.iter().copied().min().unwrap_or(0);
        // A worker keeps a fifth of its descriptors for data connections.
        let cap = workers as u64 * (per / 5 * 4);
        rows.push(Row {
            setting: "server: processes x sessions each".into(),
            value: format!(
                "{workers} x {} = {cap} (open files {per} each)",
                per / 5 * 4
            ),
            needed: format!("{n} sessions + their spare"),
            raise: (cap < n).then(|| {
                format!(
                    "start the server with --concurrency pre-fork --max-cons {n} --workers 0 \
                     (it sizes itself from the open-files limit), or raise its limit to {}",
                    n.div_ceil(workers as u64) * 5 / 4
                )
            }),
        });
    }
    rows
}

fn unreadable(name: &str) -> Row {
    Row {
        setting: name.into(),
        value: "unreadable".into(),
        needed: "-".into(),
        raise: None,
    }
}

/// The rows as a table for the output; Err naming every setting to raise when one falls
/// short.
pub fn report(rows: &[Row]) -> io::Result<String> {
    let mut s = String::new();
    let w = rows.iter().map(|r| r.setting.len()).max().unwrap_or(0);
    for r in rows {
        let verdict = match &r.raise {
            None => "ok".to_owned(),
            Some(what) => format!("RAISE: {what}"),
        };
        let _ = writeln!(
            s,
            "  {:<w$}  {}  (needs {})  {verdict}",
            r.setting, r.value, r.needed
        );
    }
    let short: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            r.raise
                .as_ref()
                .map(|what| format!("{}: {what}", r.setting))
        })
        .collect();
    if short.is_empty() {
        Ok(s)
    } else {
        Err(io::Error::other(format!(
            "the machine's limits fall short of the run:\n{s}\nraise:\n  {}",
            short.join("\n  ")
        )))
    }
}

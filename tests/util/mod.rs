//! Shared pieces of the integration tests: the in-process server ([`TestServer`]), the
//! built binary as a child process ([`BinServer`]), a blocking FTP [`Client`], external
//! clients (curl, lftp, python3) with bounded run times, and test data.

mod client;
mod server;

use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use client::{connect_from, data_accept, data_connect, Client};
pub use server::TestServer;

/// How long any single read, connect or wait may take before the test fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an external client may run.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(90);

/// Serialises the tests that move hundreds of megabytes or open a thousand sockets, so
/// they do not compete for the two cores of a CI runner.
pub fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `len` pseudo-random bytes (xorshift64*, fixed seed per call site).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// 100 MB of random bytes, made once for the whole run.
pub fn big_data() -> &'static [u8] {
    static BIG: OnceLock<Vec<u8>> = OnceLock::new();
    BIG.get_or_init(|| random_bytes(100 * 1024 * 1024, 0x5eed_0100))
}

/// Whether the external client `tool` can run. When it cannot: under `CI` the test fails;
/// elsewhere a skip note is printed and the caller returns.
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is required under CI but cannot be run"
        );
        eprintln!("SKIP: {tool} is not installed");
    }
    found
}

/// Runs a command to completion with captured output, killing it after `limit`.
///
/// # Panics
/// When it cannot start or runs out of time.
pub fn run_tool(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(PROCESS_POLL),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{cmd:?} ran longer than {limit:?}");
            }
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Runs `tests/scripts/<script>` with python3 against the server at `addr` (its
/// arguments: host, port) and asserts it succeeded and printed `OK`.
///
/// # Panics
/// When the script fails or prints anything else.
pub fn run_python_script(script: &str, addr: SocketAddr) {
    let path = format!("{}/tests/scripts/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = run_tool(
        Command::new("python3").args([
            path.as_str(),
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ]),
        TOOL_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "{script} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "OK",
        "{script}"
    );
}

/// How [`BinServer`] starts the binary: directly, or through `sh` for what a shell does.
#[derive(Clone, Copy)]
enum Shell {
    None,
    /// Descriptors 0, 1 and 2 closed.
    CloseStdio,
    /// `ulimit -n`.
    Nofile(u32),
}

/// The number of a signal named as kill(1) names it, for those the tests send.
fn signal_number(name: &str) -> Option<u32> {
    match name.trim_start_matches('-') {
        "HUP" => Some(1),
        "INT" => Some(2),
        "USR1" => Some(10),
        "USR2" => Some(12),
        "TERM" => Some(15),
        _ => None,
    }
}

/// The `ftpdlib` binary serving on `127.0.0.1` at a free ephemeral port; killed on drop.
pub struct BinServer {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    log: PathBuf,
    _logdir: TempDir,
}

impl BinServer {
    /// Starts `ftpdlib -i 127.0.0.1 -p <free port> <args>` and waits (bounded) until the
    /// port accepts connections.
    ///
    /// # Panics
    /// When it exits or does not listen in time (after a few tries with other ports).
    pub fn start(args: &[&str]) -> BinServer {
        BinServer::start_env(args, &[])
    }

    /// As [`BinServer::start`], with environment changes applied after `RUST_LOG=info`:
    /// `(name, Some(value))` sets a variable, `(name, None)` removes it.
    pub fn start_env(args: &[&str], env: &[(&str, Option<&str>)]) -> BinServer {
        BinServer::spawn(args, env, false)
    }

    /// As [`BinServer::start`], with descriptors 0, 1 and 2 closed (a shell closes them and
    /// execs the binary); the log is then empty.
    pub fn start_without_stdio(args: &[&str]) -> BinServer {
        BinServer::spawn(args, &[], true)
    }

    /// As [`BinServer::start`], listening at `addr` (`-i` and `-p`): one try, for a caller
    /// that chose a port free on several addresses.
    pub fn start_at(addr: SocketAddr, args: &[&str]) -> BinServer {
        BinServer::spawn_at(Some(addr), args, &[], Shell::None)
    }

    /// As [`BinServer::start`], under an open-files limit of `nofile` (soft and hard).
    pub fn start_with_nofile(args: &[&str], nofile: u32) -> BinServer {
        BinServer::spawn_at(None, args, &[], Shell::Nofile(nofile))
    }

    fn spawn(args: &[&str], env: &[(&str, Option<&str>)], close_stdio: bool) -> BinServer {
        let shell = if close_stdio {
            Shell::CloseStdio
        } else {
            Shell::None
        };
        BinServer::spawn_at(None, args, env, shell)
    }

    fn spawn_at(
        at: Option<SocketAddr>,
        args: &[&str],
        env: &[(&str, Option<&str>)],
        shell: Shell,
    ) -> BinServer {
        let logdir = tempfile::tempdir().expect("tempdir for the server log");
        let log = logdir.path().join("ftpdlib.log");
        let attempts = if at.is_some() { 1 } else { 3 };
        for _attempt in 0..attempts {
            let addr = at.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], free_port())));
            let script = match shell {
                Shell::None => None,
                Shell::CloseStdio => Some("exec \"$0\" \"$@\" <&- >&- 2>&-".to_owned()),
                Shell::Nofile(n) => Some(format!("ulimit -n {n} && exec \"$0\" \"$@\"")),
            };
            let mut cmd = match script {
                Some(script) => {
                    let mut sh = Command::new("sh");
                    sh.args(["-c", &script, env!("CARGO_BIN_EXE_ftpdlib")]);
                    sh
                }
                None => Command::new(env!("CARGO_BIN_EXE_ftpdlib")),
            };
            cmd.args(["-i", &addr.ip().to_string(), "-p", &addr.port().to_string()])
                .args(args)
                .env("RUST_LOG", "info");
            for (name, value) in env {
                match value {
                    Some(v) => cmd.env(name, v),
                    None => cmd.env_remove(name),
                };
            }
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&log).expect("create the server log"))
                .spawn()
                .expect("start the ftpdlib binary");
            if wait_listening(&mut child, addr) {
                return BinServer {
                    addr,
                    child,
                    log,
                    _logdir: logdir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "ftpdlib did not start listening; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// The URL of this server for curl, with a path.
    pub fn url(&self, path: &str) -> String {
        format!("ftp://{}/{path}", self.addr)
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    ///
    /// # Panics
    /// When the signal cannot be sent or the process does not exit in time.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            match self.child.try_wait().expect("wait for ftpdlib") {
                Some(status) => return status,
                None if Instant::now() < deadline => std::thread::sleep(PROCESS_POLL),
                None => panic!("ftpdlib did not exit within {IO_TIMEOUT:?} of SIGTERM"),
            }
        }
    }

    /// Waits (bounded) for the server to exit on its own.
    ///
    /// # Panics
    /// When it does not exit in time.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            match self.child.try_wait().expect("wait for ftpdlib") {
                Some(status) => return status,
                None if Instant::now() < deadline => std::thread::sleep(PROCESS_POLL),
                None => panic!("ftpdlib did not exit within {IO_TIMEOUT:?}"),
            }
        }
    }

    /// Kills the server with SIGKILL (no clean-up of any kind) and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }

    /// The process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` (a name for kill(1): `USR2`, `TERM`…) to the process started, once
    /// it has a handler for it: the port accepts before the server installs its handlers,
    /// and a signal in between would meet the default action (which ends the process).
    ///
    /// # Panics
    /// When the signal cannot be sent, or a known one is not caught within [`IO_TIMEOUT`].
    pub fn signal(&self, signal: &str) {
        self.wait_caught(signal);
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// Waits (bounded) until the process catches or blocks `signal` (see
    /// [`BinServer::catches`]); a name not listed there is not waited for.
    fn wait_caught(&self, signal: &str) {
        if signal_number(signal).is_none() {
            return;
        }
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            if self.catches(signal) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "SIG{signal} not caught within {IO_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(PROCESS_POLL);
        }
    }

    /// Whether the process now catches or blocks `signal` (`HUP`, `INT`, `USR1`, `USR2`,
    /// `TERM`): its bit in the `SigCgt` or `SigBlk` mask of /proc/PID/status.
    pub fn catches(&self, signal: &str) -> bool {
        let Some(number) = signal_number(signal) else {
            return false;
        };
        let status = format!("/proc/{}/status", self.child.id());
        let text = std::fs::read_to_string(status).unwrap_or_default();
        // Caught by a handler, or blocked (taken by sigwait or a signalfd).
        let has = |field: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
                .is_some_and(|mask| mask & (1 << (number - 1)) != 0)
        };
        has("SigCgt:") || has("SigBlk:")
    }

    /// Waits (bounded) until the log holds `needle` `times` times; returns the log.
    ///
    /// # Panics
    /// When that does not happen within [`IO_TIMEOUT`].
    pub fn wait_log(&self, needle: &str, times: usize) -> String {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let log = self.log();
            if log.matches(needle).count() >= times {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no {times} × {needle:?} in the log within {IO_TIMEOUT:?}:\n{log}"
            );
            std::thread::sleep(PROCESS_POLL);
        }
    }

    /// The exit status of the process started, if it has exited.
    pub fn try_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("wait for ftpdlib")
    }

    /// The pids of the server processes that logged their start, in order: the process
    /// started, then those that took its sockets over (SIGUSR2).
    pub fn server_pids(&self) -> Vec<u32> {
        self.log()
            .lines()
            .filter(|l| l.contains(">>> starting "))
            .filter_map(|l| l.split("pid=").nth(1))
            .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
            .collect()
    }
}

impl Drop for BinServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Processes that took the sockets over are not children of this one: killed by
        // pid, once it is certain the pid is still one of ours.
        for pid in self.server_pids() {
            if pid != self.child.id() && is_this_binary(pid) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// Whether process `pid` runs the `ftpdlib` binary under test.
pub fn is_this_binary(pid: u32) -> bool {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"));
    let ours = std::fs::canonicalize(env!("CARGO_BIN_EXE_ftpdlib"));
    matches!((exe, ours), (Ok(a), Ok(b)) if a == b)
}

/// A port that was free a moment ago: bind `127.0.0.1:0`, note the port, drop it.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Waits until `addr` accepts a connection; false when the child exits or time runs out.
fn wait_listening(child: &mut Child, addr: SocketAddr) -> bool {
    let deadline = Instant::now() + IO_TIMEOUT;
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        if TcpStream::connect_timeout(&addr, IO_TIMEOUT).is_ok() {
            return true;
        }
        // Not listening yet: the process is still starting.
        std::thread::sleep(PROCESS_POLL);
    }
    false
}

/// Asserts two files hold the same bytes, naming the first difference.
pub fn assert_same_file(a: &Path, b: &Path) {
    let (ma, mb) = (
        std::fs::metadata(a).unwrap_or_else(|e| panic!("{}: {e}", a.display())),
        std::fs::metadata(b).unwrap_or_else(|e| panic!("{}: {e}", b.display())),
    );
    assert_eq!(
        ma.len(),
        mb.len(),
        "sizes differ: {} vs {}",
        a.display(),
        b.display()
    );
    let (mut fa, mut fb) = (
        File::open(a).expect("open a"),
        File::open(b).expect("open b"),
    );
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut fa, &mut ba);
        let m = read_full(&mut fb, &mut bb);
        assert_eq!(n, m, "short read at {offset}");
        if n == 0 {
            return;
        }
        if ba[..n] != bb[..n] {
            let i = (0..n).find(|&i| ba[i] != bb[i]).unwrap_or(0);
            panic!(
                "{} and {} differ at byte {}",
                a.display(),
                b.display(),
                offset + i as u64
            );
        }
        offset += n as u64;
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).expect("read") {
            0 => break,
            k => n += k,
        }
    }
    n
}

/// Every file and directory under `dir`, relative, sorted; files with their contents.
pub fn tree(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("dir entry").path();
            let rel = path
                .strip_prefix(dir)
                .expect("below the tree")
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                out.push((rel, None));
                stack.push(path);
            } else {
                out.push((rel, Some(std::fs::read(&path).expect("read file"))));
            }
        }
    }
    out.sort();
    out
}

/// How often a child process's state is checked while it starts or runs.
const PROCESS_POLL: Duration = Duration::from_millis(10);

//! The cluster of the HAProxy tests: HAProxy started with the configuration of
//! docs/deployment.md, three instances of the binary, and the clients' helpers.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tempfile::TempDir;

use crate::tls::client::{have_openssl, Certs};
use crate::util::{connect_from, run_tool, BinServer, Client, IO_TIMEOUT, TOOL_TIMEOUT};

/// The balancer's address, as clients and instances see it.
pub(super) const BALANCER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 10));
/// The two clients of the deployment tests.
pub(super) const CLIENT_A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
pub(super) const CLIENT_B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));
/// The address the readiness probe connects from: no test's client.
const PROBE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 9));

pub(super) fn instance_ip(i: usize) -> IpAddr {
    IpAddr::from([127, 0, 0, 11 + u8::try_from(i).expect("three instances")])
}

/// HAProxy and three instances, stopped on drop.
pub(super) struct Cluster {
    pub(super) control: SocketAddr,
    ranges: [(u16, u16); 3],
    haproxy: Child,
    haproxy_log: PathBuf,
    instances: Vec<BinServer>,
    dir: TempDir,
    _certs: Certs,
    // The clusters share the balancer's address and port blocks: one at a time.
    _serial: MutexGuard<'static, ()>,
}

impl Cluster {
    /// Starts the instances with `extra` flags and HAProxy in front; `None` (after a skip
    /// note) when haproxy, openssl or the other clients are missing outside CI.
    pub(super) fn start(extra: &[&str]) -> Option<Cluster> {
        if !have_haproxy()
            || !have_openssl()
            || !crate::util::have_tool("python3")
            || !crate::util::have_tool("curl")
            || !crate::util::have_tool("lftp")
        {
            return None;
        }
        static SERIAL: Mutex<()> = Mutex::new(());
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let certs = Certs::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let share = dir.path().join("share");
        std::fs::create_dir(&share).expect("mkdir share");
        let port = control_port();
        let ranges = passive_ranges();
        let (cert, key) = (certs.arg("rsa.crt"), certs.arg("rsa.key"));
        let mut instances = Vec::new();
        for (i, (from, to)) in ranges.iter().enumerate() {
            let range = format!("{from}-{to}");
            let mut args = vec![
                "-d",
                path_str(&share),
                "-w",
                "-u",
                "user",
                "-P",
                "12345",
                "-n",
                "127.0.0.10",
                "-r",
                &range,
                "--proxy-protocol-from",
                "127.0.0.10",
                "--atomic-uploads",
                "--tls",
                "--certfile",
                &cert,
                "--keyfile",
                &key,
            ];
            args.extend_from_slice(extra);
            instances.push(BinServer::start_at(
                SocketAddr::new(instance_ip(i), port),
                &args,
            ));
        }
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, haproxy_config(port, &ranges)).expect("write haproxy.cfg");
        let haproxy_log = dir.path().join("haproxy.log");
        let log = std::fs::File::create(&haproxy_log).expect("create the haproxy log");
        let haproxy = Command::new("haproxy")
            .args(["-f", path_str(&cfg), "-db"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file"))
            .stderr(log)
            .spawn()
            .expect("start haproxy");
        let mut cluster = Cluster {
            control: SocketAddr::new(BALANCER, port),
            ranges,
            haproxy,
            haproxy_log,
            instances,
            dir,
            _certs: certs,
            _serial: serial,
        };
        cluster.wait_serving();
        Some(cluster)
    }

    /// Waits (bounded) until a session through the balancer gets its greeting.
    fn wait_serving(&mut self) {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.haproxy.try_wait() {
                panic!("haproxy exited with {status}:\n{}", self.haproxy_log());
            }
            if let Some(mut c) = try_greeting(PROBE, self.control) {
                c.expect("QUIT", 221);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "haproxy does not serve:\n{}",
                self.haproxy_log()
            );
            // Not listening yet: the process is still starting.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(super) fn share(&self) -> PathBuf {
        self.dir.path().join("share")
    }

    /// A control connection from `source` through the balancer, greeting read.
    pub(super) fn client(&self, source: IpAddr) -> Client {
        let mut c = Client::from_stream(connect_from(source, self.control));
        let (code, text) = c.reply();
        assert_eq!(code, 220, "greeting for {source}: {text}");
        c
    }

    /// Which instance owns a passive port.
    pub(super) fn instance_of(&self, port: u16) -> usize {
        self.ranges
            .iter()
            .position(|(from, to)| (*from..=*to).contains(&port))
            .unwrap_or_else(|| panic!("port {port} is in no instance's range"))
    }

    pub(super) fn kill_instance(&self, i: usize) {
        let status = Command::new("kill")
            .args(["-KILL", &self.instances[i].pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -KILL failed");
    }

    /// The three instances' logs, one after the other.
    pub(super) fn logs(&self) -> String {
        self.instances.iter().map(BinServer::log).collect()
    }

    fn haproxy_log(&self) -> String {
        std::fs::read_to_string(&self.haproxy_log).unwrap_or_default()
    }

    /// Waits (bounded) until HAProxy logged `what`.
    pub(super) fn wait_haproxy_log(&self, what: &str) {
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        while !self.haproxy_log().contains(what) {
            assert!(
                Instant::now() < deadline,
                "haproxy did not log {what:?} within {HEALTH_TIMEOUT:?}:\n{}",
                self.haproxy_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs tests/scripts/haproxy_session.py from `source`.
    pub(super) fn python(
        &self,
        source: IpAddr,
        mode: &str,
        name: &str,
        upload: &Path,
        download: &Path,
    ) {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/scripts/haproxy_session.py"
        );
        let out = run_tool(
            Command::new("python3").args([
                script,
                &BALANCER.to_string(),
                &self.control.port().to_string(),
                &source.to_string(),
                mode,
                name,
                path_str(upload),
                path_str(download),
            ]),
            TOOL_TIMEOUT,
        );
        assert_success(&out, &format!("ftplib ({mode}) from {source}"));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    }

    /// curl from `source` on `name` with `args`; its output.
    pub(super) fn curl(&self, source: IpAddr, args: &[&str], name: &str) -> Vec<u8> {
        let url = format!("ftp://{}/{name}", self.control);
        let out = run_tool(
            Command::new("curl")
                .args(["--silent", "--show-error", "--max-time", "60", "-k"])
                .args(["--interface", &source.to_string(), "-u", "user:12345"])
                .args(args)
                .arg(&url),
            TOOL_TIMEOUT,
        );
        assert_success(&out, &format!("curl {args:?} from {source}"));
        out.stdout
    }

    /// lftp from `source` in `cwd`, running `script`.
    pub(super) fn lftp(&self, source: IpAddr, cwd: &Path, script: &str) {
        let script = format!(
            "set net:socket-bind-ipv4 {source}; set ssl:verify-certificate no; \
             set net:max-retries 1; set net:timeout 10; set cmd:fail-exit true; {script}; bye"
        );
        let out = run_tool(
            Command::new("lftp")
                .current_dir(cwd)
                .env("HOME", cwd)
                .args(["-u", "user,12345", "-p", &self.control.port().to_string()])
                .arg(BALANCER.to_string())
                .args(["-e", &script]),
            TOOL_TIMEOUT,
        );
        assert_success(&out, &format!("lftp from {source}"));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.haproxy.kill();
        let _ = self.haproxy.wait();
    }
}

/// TYPE I, EPSV, and RETR over a data connection from `source` through the balancer.
pub(super) fn retr_from(c: &mut Client, source: IpAddr, path: &str) -> Vec<u8> {
    c.expect("TYPE I", 200);
    let port = c.epsv_port();
    let data = connect_from(source, SocketAddr::new(BALANCER, port));
    c.download(&format!("RETR {path}"), data)
}

/// `LIST -a` over a data connection from `source` through the balancer: the names (the
/// listing's last field; the test's names have no spaces).
pub(super) fn list_from(c: &mut Client, source: IpAddr) -> Vec<String> {
    let port = c.epsv_port();
    let data = connect_from(source, SocketAddr::new(BALANCER, port));
    String::from_utf8(c.download("LIST -a", data))
        .expect("a UTF-8 listing")
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .collect()
}

/// The HAProxy configuration of docs/deployment.md with the test's addresses and ports.
fn haproxy_config(port: u16, ranges: &[(u16, u16); 3]) -> String {
    let doc = include_str!("../../docs/deployment.md");
    let block: String = doc
        .lines()
        .skip_while(|l| !l.starts_with("# haproxy.cfg:"))
        .take_while(|l| !l.starts_with("```"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        block.contains("backend ftp_control"),
        "no configuration in the doc"
    );
    let mut cfg = block;
    for (i, (from, to)) in ranges.iter().enumerate() {
        let doc_from = 50_000 + 1_000 * i;
        cfg = cfg.replace(
            &format!("{doc_from}-{}", doc_from + 999),
            &format!("{from}-{to}"),
        );
    }
    cfg = cfg
        .replace(":21\n", &format!(":{port}\n"))
        .replace("10.0.0.1", "127.0.0.1")
        .replace("203.0.113.10", "127.0.0.10");
    assert!(
        !cfg.contains("203.0.113") && !cfg.contains(" 10.0.0.") && !cfg.contains(":21\n"),
        "an address or port of the doc left in:\n{cfg}"
    );
    cfg
}

/// A port free on the balancer's and the three instances' addresses.
fn control_port() -> u16 {
    for _ in 0..50 {
        let port = TcpListener::bind((BALANCER, 0))
            .and_then(|l| l.local_addr())
            .expect("bind the balancer's address")
            .port();
        if (0..3).all(|i| TcpListener::bind((instance_ip(i), port)).is_ok()) {
            return port;
        }
    }
    panic!("no port free on 127.0.0.10-13");
}

/// Three ranges of [`RANGE_LEN`] ports, each free on the balancer's address and on its
/// instance's, below the kernel's ephemeral ports, picked at random so that parallel
/// runs do not meet.
fn passive_ranges() -> [(u16, u16); 3] {
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id();
    for attempt in 0..50u32 {
        let span = 3 * RANGE_LEN;
        let base = 20_000
            + u16::try_from(seed.wrapping_add(attempt.wrapping_mul(7_919)) % 12_000)
                .expect("below 12000");
        let ranges = [0, 1, 2].map(|i| {
            let from = base + i * RANGE_LEN;
            (from, from + RANGE_LEN - 1)
        });
        let free = ranges.iter().enumerate().all(|(i, (from, to))| {
            (*from..=*to).all(|p| {
                TcpListener::bind((BALANCER, p)).is_ok()
                    && TcpListener::bind((instance_ip(i), p)).is_ok()
            })
        });
        if free && base + span < 32_768 {
            return ranges;
        }
    }
    panic!("no free block of passive ports");
}

/// A greeting from `addr` to a connection from `source`, or `None`.
fn try_greeting(source: IpAddr, addr: SocketAddr) -> Option<Client> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    socket.bind(&SocketAddr::new(source, 0).into()).ok()?;
    socket.connect_timeout(&addr.into(), IO_TIMEOUT).ok()?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    let mut c = Client::from_stream(stream);
    match c.try_reply() {
        Ok(Some((220, _))) => Some(c),
        _ => None,
    }
}

/// Whether haproxy runs (it has no `--version`); under CI its absence fails the test.
fn have_haproxy() -> bool {
    let found = Command::new("haproxy")
        .arg("-v")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "haproxy is required under CI but cannot be run"
        );
        eprintln!("SKIP: haproxy is not installed");
    }
    found
}

fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed with {:?}:\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(super) fn assert_same(a: &Path, b: &Path) {
    crate::util::assert_same_file(a, b);
}

pub(super) fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// Ports in each instance's passive range.
const RANGE_LEN: u16 = 40;
/// How long HAProxy may take to mark a dead instance down (`inter 1s fall 2`, and a
/// loaded machine).
const HEALTH_TIMEOUT: Duration = Duration::from_secs(20);

//! Several instances behind HAProxy, as `docs/deployment.md` describes: HAProxy in TCP
//! mode on 127.0.0.10 with the configuration of that page, three `ftpdlib` binaries on
//! 127.0.0.11–13 over one shared directory, each with its passive range, the PROXY
//! protocol v2 on control and data connections, atomic uploads. Clients bind 127.0.0.2,
//! 127.0.0.3 (and more addresses where a test needs many clients), as separate hosts.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tempfile::TempDir;

use crate::tls::client::{have_openssl, Certs};
use crate::util::{
    connect_from, random_bytes, run_tool, tree, BinServer, Client, IO_TIMEOUT, TOOL_TIMEOUT,
};

#[test]
fn ftplib_ftps_curl_and_lftp_through_the_balancer() {
    let Some(cluster) = Cluster::start(&[]) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let upload = tmp.path().join("upload.bin");
    std::fs::write(&upload, random_bytes(3 * 1024 * 1024 + 5, 0x4a_0001)).expect("write");

    // Python's ftplib, passive, from one host; FTP_TLS with PROT P from the other.
    for (client, mode) in [(CLIENT_A, "plain"), (CLIENT_B, "tls")] {
        let name = format!("py-{mode}.bin");
        let download = tmp.path().join(&name);
        cluster.python(client, mode, &name, &upload, &download);
        assert_same(&upload, &download);
        assert_same(&upload, &cluster.share().join(&name));
    }

    // curl: up from one host, down from the other, plain and explicit FTPS.
    cluster.curl(CLIENT_A, &["-T", path_str(&upload)], "curl.bin");
    let got = cluster.curl(CLIENT_B, &[], "curl.bin");
    assert!(
        got == std::fs::read(&upload).expect("read"),
        "curl download"
    );
    let got = cluster.curl(CLIENT_B, &["--ssl-reqd"], "curl.bin");
    assert!(
        got == std::fs::read(&upload).expect("read"),
        "curl FTPS download"
    );

    // lftp: a tree mirrored up over FTPS from one host, and down from the other.
    let local = tmp.path().join("localdir");
    for (name, data) in [
        ("a.txt", b"alpha\n".to_vec()),
        ("empty.txt", Vec::new()),
        ("sub/b.bin", random_bytes(700_000, 0x4a_0002)),
        ("sub/deeper/c.bin", random_bytes(65_537, 0x4a_0003)),
    ] {
        let path = local.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, data).expect("write");
    }
    cluster.lftp(
        CLIENT_A,
        tmp.path(),
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; mirror -R localdir remotedir",
    );
    cluster.lftp(
        CLIENT_B,
        tmp.path(),
        "set ftp:ssl-allow false; mirror remotedir backdir",
    );
    let expected = tree(&local);
    assert_eq!(tree(&cluster.share().join("remotedir")), expected, "up");
    assert_eq!(tree(&tmp.path().join("backdir")), expected, "down");

    // The instances saw the clients, never the balancer, except its health checks.
    let log = cluster.logs();
    for client in [CLIENT_A, CLIENT_B] {
        let prefix = format!("] {client}:");
        assert!(
            log.lines()
                .any(|l| l.contains(&prefix) && l.contains("-[user] STOR")),
            "no upload of {client} in the logs:\n{log}"
        );
    }
    for line in log.lines().filter(|l| l.contains("-[user]")) {
        assert!(
            line.contains(&format!("] {CLIENT_A}:")) || line.contains(&format!("] {CLIENT_B}:")),
            "a session line without a client's address: {line}"
        );
    }
    let balancer = format!("] {BALANCER}:");
    let checks: Vec<&str> = log.lines().filter(|l| l.contains(&balancer)).collect();
    for line in &checks {
        assert!(
            line.contains("-[] FTP session opened") || line.contains("-[] FTP session closed"),
            "the balancer's address outside a health check: {line}"
        );
    }
}

#[test]
fn per_address_limit_foreign_data_and_direct_headers() {
    let Some(cluster) = Cluster::start(&["--max-cons-per-ip", "2"]) else {
        return;
    };
    std::fs::write(cluster.share().join("f.txt"), b"shared").expect("write");
    let mut a1 = cluster.client(CLIENT_A);
    a1.login("user", "12345");
    let mut a2 = cluster.client(CLIENT_A);
    // `balance source` sends all of a client's sessions to one instance, whose
    // per-address limit is then the client's limit: the third session is refused.
    let mut a3 = Client::from_stream(connect_from(CLIENT_A, cluster.control));
    let replies = a3.expect_closed();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].0, 421, "{replies:?}");
    // Meanwhile the other client is served.
    let mut b = cluster.client(CLIENT_B);
    b.login("user", "12345");
    b.expect("NOOP", 200);
    assert_eq!(retr_from(&mut b, CLIENT_B, "f.txt"), b"shared");
    a2.expect("NOOP", 200);

    // A passive data connection from the other client's address, through the balancer:
    // the instance sees the carried address and refuses it.
    a1.expect("TYPE I", 200);
    let port = a1.epsv_port();
    let mut foreign = connect_from(CLIENT_B, SocketAddr::new(BALANCER, port));
    let (code, text) = a1.reply();
    assert_eq!(code, 425, "{text}");
    assert!(text.contains(&CLIENT_B.to_string()), "{text}");
    let mut rest = Vec::new();
    let _ = foreign.read_to_end(&mut rest);
    assert!(rest.is_empty(), "the foreign connection got data");
    // The right client's data connection is served.
    assert_eq!(retr_from(&mut a1, CLIENT_A, "f.txt"), b"shared");

    // A client reaching an instance directly, with a header of its own, is closed
    // without a greeting: only the balancer's headers count.
    let instance = SocketAddr::new(instance_ip(0), cluster.control.port());
    let mut forged = Client::from_stream(connect_from(CLIENT_B, instance));
    forged.send_raw(b"PROXY TCP4 192.0.2.1 127.0.0.11 1 21\r\n");
    assert_eq!(forged.expect_closed(), vec![], "a header from a client");
    b.expect("NOOP", 200);
    a1.expect("QUIT", 221);
    b.expect("QUIT", 221);
}

#[test]
fn an_instance_killed_mid_upload_costs_only_its_own_sessions() {
    let Some(cluster) = Cluster::start(&[]) else {
        return;
    };
    let done = random_bytes(300_000, 0x4a_0004);
    let running = random_bytes(4 * 1024 * 1024, 0x4a_0005);
    let half = running.len() / 2;
    // Sessions from many client addresses until every instance serves two; the EPSV port
    // tells which instance a session is on (each has its own range). Each uploads a file
    // to the end first.
    let mut sessions: Vec<Session> = Vec::new();
    for last in 20..=120u8 {
        if (0..3).all(|i| sessions.iter().filter(|s| s.instance == i).count() >= 2) {
            break;
        }
        let ip = IpAddr::from([127, 0, 0, last]);
        let mut c = cluster.client(ip);
        c.login("user", "12345");
        c.expect("TYPE I", 200);
        let port = c.epsv_port();
        let instance = cluster.instance_of(port);
        if sessions.iter().filter(|s| s.instance == instance).count() >= 2 {
            c.expect("QUIT", 221);
            continue;
        }
        let data = connect_from(ip, SocketAddr::new(BALANCER, port));
        c.upload(&format!("STOR done-{last}"), data, &done);
        sessions.push(Session {
            ip,
            last,
            instance,
            control: c,
            data: None,
        });
    }
    assert_eq!(
        sessions.len(),
        6,
        "clients did not reach all three instances"
    );

    // On every session, an upload half sent.
    for s in &mut sessions {
        s.control.expect("TYPE I", 200);
        let port = s.control.epsv_port();
        let mut data = connect_from(s.ip, SocketAddr::new(BALANCER, port));
        let (code, text) = s.control.cmd(&format!("STOR running-{}", s.last));
        assert!(code == 125 || code == 150, "{code} {text}");
        data.write_all(&running[..half]).expect("first half");
        s.data = Some(data);
    }

    // The second instance dies.
    let victim = 1;
    cluster.kill_instance(victim);

    // The other instances' uploads complete, and their sessions go on.
    for s in sessions.iter_mut().filter(|s| s.instance != victim) {
        let mut data = s.data.take().expect("a running upload");
        data.write_all(&running[half..]).expect("second half");
        data.shutdown(Shutdown::Write).expect("shutdown");
        let mut rest = Vec::new();
        let _ = data.read_to_end(&mut rest);
        let (code, text) = s.control.reply();
        assert_eq!(code, 226, "a survivor's upload: {text}");
        s.control.expect("NOOP", 200);
        let name = format!("running-{}", s.last);
        assert!(retr_from(&mut s.control, s.ip, &name) == running);
    }
    // The victim's sessions end without a 226.
    for s in sessions.iter_mut().filter(|s| s.instance == victim) {
        let mut data = s.data.take().expect("a running upload");
        let _ = data.write_all(&running[half..]);
        drop(data);
        let replies = s.control.expect_closed();
        assert!(
            replies.iter().all(|r| r.0 != 226),
            "a killed instance's session: {replies:?}"
        );
    }

    // The health check takes the instance out (bounded), and new logins land on the
    // others.
    cluster.wait_haproxy_log(&format!("ftp_control/ftp{} is DOWN", victim + 1));
    let first_done = format!("done-{}", sessions[0].last);
    for last in 150..160u8 {
        let ip = IpAddr::from([127, 0, 0, last]);
        let mut c = cluster.client(ip);
        c.login("user", "12345");
        c.expect("TYPE I", 200);
        let port = c.epsv_port();
        assert_ne!(cluster.instance_of(port), victim, "a login from {ip}");
        let data = connect_from(ip, SocketAddr::new(BALANCER, port));
        assert!(c.download(&format!("RETR {first_done}"), data) == done);
        c.expect("QUIT", 221);
    }

    // Every upload that got its 226 is whole on disk; the cut ones are not visible under
    // their names (the temporaries of the killed instance stay hidden).
    let survivor = sessions
        .iter_mut()
        .find(|s| s.instance != victim)
        .expect("a survivor's session");
    let names = list_from(&mut survivor.control, survivor.ip);
    survivor.control.expect("QUIT", 221);
    for s in &sessions {
        let done_path = cluster.share().join(format!("done-{}", s.last));
        assert!(
            std::fs::read(&done_path).expect("read") == done,
            "done-{}",
            s.last
        );
        let running_name = format!("running-{}", s.last);
        let on_disk = std::fs::read(cluster.share().join(&running_name));
        if s.instance == victim {
            assert!(
                on_disk.is_err(),
                "{running_name} is visible after a cut upload"
            );
            assert!(!names.contains(&running_name), "{names:?}");
        } else {
            assert!(on_disk.expect("read") == running, "{running_name}");
            assert!(names.contains(&running_name), "{names:?}");
        }
    }
    assert!(
        names.iter().all(|n| !n.starts_with(".ftpdlib-part")),
        "{names:?}"
    );
}

/// A client session of the kill test.
struct Session {
    ip: IpAddr,
    last: u8,
    instance: usize,
    control: Client,
    data: Option<TcpStream>,
}

/// The balancer's address, as clients and instances see it.
const BALANCER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 10));
/// The two clients of the deployment tests.
const CLIENT_A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
const CLIENT_B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));
/// The address the readiness probe connects from: no test's client.
const PROBE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 9));

fn instance_ip(i: usize) -> IpAddr {
    IpAddr::from([127, 0, 0, 11 + u8::try_from(i).expect("three instances")])
}

/// HAProxy and three instances, stopped on drop.
struct Cluster {
    control: SocketAddr,
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
    fn start(extra: &[&str]) -> Option<Cluster> {
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

    fn share(&self) -> PathBuf {
        self.dir.path().join("share")
    }

    /// A control connection from `source` through the balancer, greeting read.
    fn client(&self, source: IpAddr) -> Client {
        let mut c = Client::from_stream(connect_from(source, self.control));
        let (code, text) = c.reply();
        assert_eq!(code, 220, "greeting for {source}: {text}");
        c
    }

    /// Which instance owns a passive port.
    fn instance_of(&self, port: u16) -> usize {
        self.ranges
            .iter()
            .position(|(from, to)| (*from..=*to).contains(&port))
            .unwrap_or_else(|| panic!("port {port} is in no instance's range"))
    }

    fn kill_instance(&self, i: usize) {
        let status = Command::new("kill")
            .args(["-KILL", &self.instances[i].pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -KILL failed");
    }

    /// The three instances' logs, one after the other.
    fn logs(&self) -> String {
        self.instances.iter().map(BinServer::log).collect()
    }

    fn haproxy_log(&self) -> String {
        std::fs::read_to_string(&self.haproxy_log).unwrap_or_default()
    }

    /// Waits (bounded) until HAProxy logged `what`.
    fn wait_haproxy_log(&self, what: &str) {
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
    fn python(&self, source: IpAddr, mode: &str, name: &str, upload: &Path, download: &Path) {
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
    fn curl(&self, source: IpAddr, args: &[&str], name: &str) -> Vec<u8> {
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
    fn lftp(&self, source: IpAddr, cwd: &Path, script: &str) {
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
fn retr_from(c: &mut Client, source: IpAddr, path: &str) -> Vec<u8> {
    c.expect("TYPE I", 200);
    let port = c.epsv_port();
    let data = connect_from(source, SocketAddr::new(BALANCER, port));
    c.download(&format!("RETR {path}"), data)
}

/// `LIST -a` over a data connection from `source` through the balancer: the names (the
/// listing's last field; the test's names have no spaces).
fn list_from(c: &mut Client, source: IpAddr) -> Vec<String> {
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

fn assert_same(a: &Path, b: &Path) {
    crate::util::assert_same_file(a, b);
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// Ports in each instance's passive range.
const RANGE_LEN: u16 = 40;
/// How long HAProxy may take to mark a dead instance down (`inter 1s fall 2`, and a
/// loaded machine).
const HEALTH_TIMEOUT: Duration = Duration::from_secs(20);

//! Each flag of pyftpdlib's command line has its effect through the built binary.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

use crate::util::{connect_from, random_bytes, run_tool, BinServer, Client, IO_TIMEOUT};

const FOREIGN: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn ftpdlib(args: &[&str]) -> Output {
    run_tool(
        Command::new(env!("CARGO_BIN_EXE_ftpdlib")).args(args),
        IO_TIMEOUT,
    )
}

/// Runs the binary with flags that must make it exit at once; returns its stderr.
fn refused(args: &[&str], code: i32) -> String {
    let out = ftpdlib(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    stderr
}

fn dir_str(p: &std::path::Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

#[test]
fn interface_and_port() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = BinServer::start(&["-d", dir_str(tmp.path())]);
    // -p: the chosen port answers; -i 127.0.0.1: only that address, not 127.0.0.2 (which
    // the default 0.0.0.0 would serve).
    let mut c = Client::connect(srv.addr);
    c.expect("NOOP", 200);
    let other = SocketAddr::new(FOREIGN, srv.addr.port());
    assert!(
        TcpStream::connect_timeout(&other, IO_TIMEOUT).is_err(),
        "-i 127.0.0.1 also listens on 127.0.0.2"
    );
    assert!(
        srv.log()
            .contains(&format!(">>> starting FTP server on {}, pid=", srv.addr)),
        "{}",
        srv.log()
    );
}

#[test]
fn read_only_by_default_and_write_with_w() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("served.txt"), b"from -d").expect("write");
    let ro = BinServer::start(&["-d", dir_str(tmp.path())]);
    let mut c = Client::connect(ro.addr);
    c.login("anonymous", "a@b");
    // -d: this directory is the root.
    assert_eq!(c.retr("served.txt"), b"from -d");
    c.expect("TYPE I", 200);
    let data = c.pasv();
    assert_eq!(c.cmd("STOR new"), (550, "Not enough privileges.".into()));
    drop(data);
    assert!(!tmp.path().join("new").exists());

    let rw = BinServer::start(&["-w", "-d", dir_str(tmp.path())]);
    let mut c = Client::connect(rw.addr);
    c.login("anonymous", "a@b");
    c.stor("new", b"written");
    assert_eq!(
        std::fs::read(tmp.path().join("new")).expect("read"),
        b"written"
    );
}

#[test]
fn nat_address_and_passive_range() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A range of ports that were free a moment ago.
    let (from, to) = free_port_range(8);
    let range = format!("{from}-{to}");
    let srv = BinServer::start(&["-d", dir_str(tmp.path()), "-n", "10.9.8.7", "-r", &range]);
    let mut c = Client::connect(srv.addr);
    c.login("anonymous", "a@b");
    for _ in 0..3 {
        let announced = c.pasv_addr();
        assert_eq!(announced.ip(), IpAddr::from([10, 9, 8, 7]));
        assert!(
            (from..=to).contains(&announced.port()),
            "PASV port {} outside {range}",
            announced.port()
        );
    }
    // EPSV uses the range too.
    let text = c.expect("EPSV", 229);
    let port: u16 = text
        .split("(|||")
        .nth(1)
        .and_then(|r| r.split('|').next())
        .and_then(|p| p.parse().ok())
        .expect("an EPSV port");
    assert!(
        (from..=to).contains(&port),
        "EPSV port {port} outside {range}"
    );
}

/// `n` consecutive ports that could all be bound on 127.0.0.1 just now, below the
/// kernel's ephemeral range (Linux: 32768 and up), where the many client sockets of the
/// other tests do not take them.
fn free_port_range(n: u16) -> (u16, u16) {
    let (range, _held) = hold_port_range(n);
    range
}

/// As [`free_port_range`], and the listeners holding them.
fn hold_port_range(n: u16) -> ((u16, u16), Vec<TcpListener>) {
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id();
    for attempt in 0..50u32 {
        let base = 20_000 + ((seed.wrapping_add(attempt.wrapping_mul(7_919)) % 12_000) as u16);
        let held: Vec<_> = (base..base + n)
            .map_while(|p| TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if held.len() == usize::from(n) {
            return ((base, base + n - 1), held);
        }
    }
    panic!("no {n} free consecutive ports");
}

#[test]
fn passive_range_all_busy_falls_back_to_a_kernel_port() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ((from, to), _held) = hold_port_range(3);
    let range = format!("{from}-{to}");
    let mut srv = BinServer::start(&["-d", dir_str(tmp.path()), "-r", &range]);
    let mut c = Client::connect(srv.addr);
    c.login("anonymous", "a@b");
    // Never a 425: a port outside the busy range, which works.
    let announced = c.pasv_addr();
    assert!(
        !(from..=to).contains(&announced.port()),
        "PASV port {} is a busy one",
        announced.port()
    );
    let data = crate::util::data_connect(announced);
    c.download("LIST", data);
    c.expect("QUIT", 221);
    srv.terminate();
    let log = srv.log();
    assert!(
        log.lines().any(|l| l.starts_with("[W ")
            && l.ends_with(
                "] Can't find a valid passive port in the configured range. \
                 A random kernel-assigned port will be used."
            )),
        "{log}"
    );
}

#[test]
fn named_user_disables_anonymous_and_login_attempts_limit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = BinServer::start(&[
        "-d",
        dir_str(tmp.path()),
        "-u",
        "alice",
        "-P",
        "s3cret",
        "--max-login-attempts",
        "1",
    ]);
    let addr = srv.addr;
    // Anonymous is refused, and one failure is the limit: the 530 disconnects.
    let anonymous = std::thread::spawn(move || {
        let mut c = Client::connect(addr);
        c.expect("USER anonymous", 331);
        let reply = c.cmd("PASS a@b");
        (reply, c.expect_closed())
    });
    let mut c = Client::connect(srv.addr);
    c.login("alice", "s3cret");
    c.expect("PWD", 257);
    let (reply, after) = anonymous.join().expect("anonymous thread");
    assert_eq!(
        reply,
        (530, "Anonymous access not allowed. Disconnecting.".into())
    );
    assert!(after.is_empty(), "{after:?}");
}

#[test]
fn idle_timeout_and_banner() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = BinServer::start(&[
        "-d",
        dir_str(tmp.path()),
        "--timeout",
        "1",
        "--banner",
        "Hello from the flags",
    ]);
    let mut c = Client::connect_raw(srv.addr);
    assert_eq!(c.reply(), (220, "Hello from the flags".into()));
    c.login("anonymous", "a@b");
    let idle = Instant::now();
    assert_eq!(
        c.expect_closed(),
        [(421, "Control connection timed out.".to_owned())]
    );
    assert!(
        idle.elapsed() >= Duration::from_millis(900),
        "closed after {:?}",
        idle.elapsed()
    );
}

#[test]
fn foreign_and_privileged_ports_need_their_flags() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let l = TcpListener::bind((FOREIGN, 0)).expect("bind 127.0.0.2:0");
    let foreign_port = l.local_addr().expect("listener address").port();
    let port_foreign = format!(
        "PORT 127,0,0,2,{},{}",
        foreign_port >> 8,
        foreign_port & 0xff
    );

    let strict = BinServer::start(&["-d", dir_str(tmp.path())]);
    let mut c = Client::connect(strict.addr);
    c.login("anonymous", "a@b");
    assert_eq!(c.cmd(&port_foreign).0, 501);
    assert_eq!(
        c.cmd("PORT 127,0,0,1,0,21"),
        (
            501,
            "PORT against the privileged port \"21\" refused.".into()
        )
    );

    let lax = BinServer::start(&[
        "-d",
        dir_str(tmp.path()),
        "--permit-foreign-addresses",
        "--permit-privileged-ports",
    ]);
    let mut c = Client::connect(lax.addr);
    c.login("anonymous", "a@b");
    c.expect(&port_foreign, 200);
    l.set_nonblocking(true).expect("non-blocking");
    assert!(l.accept().is_ok(), "no connection to the foreign address");
    let (code, text) = c.cmd("PORT 127,0,0,1,0,21");
    assert!(code == 200 || code == 425, "got {code} {text:?}");
}

#[test]
fn use_localtime_shifts_mdtm() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let f = tmp.path().join("dated");
    std::fs::write(&f, b"x").expect("write");
    // 2020-01-02 03:04:05 UTC.
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_934_245);
    std::fs::File::options()
        .write(true)
        .open(&f)
        .and_then(|file| file.set_modified(when))
        .expect("set mtime");
    // A POSIX TZ string needs no zone database: UTC+5.
    let tz = [("TZ", Some("FTP-5"))];
    let gmt = BinServer::start_env(&["-d", dir_str(tmp.path())], &tz);
    let mut c = Client::connect(gmt.addr);
    c.login("anonymous", "a@b");
    assert_eq!(c.cmd("MDTM dated"), (213, "20200102030405".into()));

    let local = BinServer::start_env(&["-d", dir_str(tmp.path()), "--use-localtime"], &tz);
    let mut c = Client::connect(local.addr);
    c.login("anonymous", "a@b");
    assert_eq!(c.cmd("MDTM dated"), (213, "20200102080405".into()));
}

#[test]
fn disable_sendfile_still_sends_the_same_bytes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = random_bytes(1024 * 1024, 0x5e4d);
    std::fs::write(tmp.path().join("big"), &data).expect("write");
    let mut srv = BinServer::start_env(
        &["-D", "-d", dir_str(tmp.path()), "--disable-sendfile"],
        &[("RUST_LOG", None)],
    );
    let mut c = Client::connect(srv.addr);
    c.login("anonymous", "a@b");
    let got = c.retr("big");
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the download differs");
    c.expect("QUIT", 221);
    srv.terminate();
    let log = srv.log();
    assert!(log.contains("] use sendfile(): false"), "{log}");
}

#[test]
fn list_all_shows_dot_files_without_dash_a() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join(".hidden"), b"x").expect("write");
    std::fs::write(tmp.path().join("shown"), b"x").expect("write");
    for (args, hidden_listed) in [(&[][..], false), (&["--list-all"][..], true)] {
        let mut argv = vec!["-d", dir_str(tmp.path())];
        argv.extend_from_slice(args);
        let mut srv = BinServer::start(&argv);
        let mut c = Client::connect(srv.addr);
        c.login("anonymous", "a@b");
        let plain = c.listing("LIST");
        assert!(plain.contains("shown"), "{args:?}: {plain}");
        assert_eq!(
            plain.contains(".hidden"),
            hidden_listed,
            "{args:?}: {plain}"
        );
        let all = c.listing("LIST -a");
        assert!(all.contains(".hidden"), "{args:?}: {all}");
        c.expect("QUIT", 221);
        srv.terminate();
    }
}

/// The first session of a server started with a connection limit. BinServer's own
/// readiness probe is a session too, until the server has seen it close: while the limit
/// still counts it, the connection is refused (421), so try again (bounded).
fn first_client(addr: SocketAddr) -> Client {
    for _ in 0..100 {
        let mut c = Client::connect_raw(addr);
        match c.reply() {
            (220, _) => return c,
            (421, _) => {
                c.expect_closed();
            }
            other => panic!("greeting: {other:?}"),
        }
    }
    panic!("the probe connection still counts against the limit");
}

#[test]
fn max_cons_refuses_a_second_client() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = BinServer::start(&["-d", dir_str(tmp.path()), "--max-cons", "1"]);
    let mut first = first_client(srv.addr);
    first.login("anonymous", "a@b");
    let mut second = Client::connect_raw(srv.addr);
    assert_eq!(
        second.expect_closed(),
        [(
            421,
            "Too many connections. Service temporarily unavailable.".to_owned()
        )]
    );
    first.expect("NOOP", 200);
}

#[test]
fn max_cons_per_ip_refuses_a_second_client_from_that_ip() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = BinServer::start(&["-d", dir_str(tmp.path()), "--max-cons-per-ip", "1"]);
    let mut first = first_client(srv.addr);
    first.login("anonymous", "a@b");
    let mut second = Client::connect_raw(srv.addr);
    assert_eq!(
        second.expect_closed(),
        [(
            421,
            "Too many connections from the same IP address.".to_owned()
        )]
    );
    // Another address is another count.
    let mut other = Client::from_stream(connect_from(FOREIGN, srv.addr));
    assert_eq!(other.reply().0, 220);
    other.login("anonymous", "a@b");
    first.expect("NOOP", 200);
}

#[test]
fn encoding_flag() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = BinServer::start(&["-d", dir_str(tmp.path()), "--encoding", "utf-8"]);
    let mut c = Client::connect(srv.addr);
    c.login("anonymous", "a@b");
    let stderr = refused(&["-p", "0", "--encoding", "klingon"], 2);
    assert!(stderr.contains("--encoding"), "{stderr}");
    assert!(stderr.contains("klingon"), "{stderr}");
    // UTF-16 is a known encoding, but FTP commands are ASCII.
    let stderr = refused(&["-p", "0", "--encoding", "utf-16le"], 2);
    let why = if cfg!(feature = "encodings") {
        "not a superset of ASCII"
    } else {
        "`encodings` feature"
    };
    assert!(
        stderr.contains("utf-16le") && stderr.contains(why),
        "{stderr}"
    );
}

#[test]
fn latin1_encoding_converts_the_wire_not_the_disk() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = BinServer::start(&["-w", "-d", dir_str(tmp.path()), "--encoding", "latin-1"]);
    // A raw socket: the replies are Latin-1 bytes, not UTF-8 text.
    let mut s = TcpStream::connect(srv.addr).expect("connect");
    s.set_read_timeout(Some(crate::util::IO_TIMEOUT))
        .expect("timeout");
    let read_reply = |s: &mut TcpStream| {
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b"\r\n") {
            assert_eq!(s.read(&mut byte).expect("read"), 1, "closed after {got:?}");
            got.push(byte[0]);
        }
        got
    };
    assert!(read_reply(&mut s).starts_with(b"220"));
    for line in [&b"USER anonymous\r\n"[..], b"PASS x\r\n"] {
        s.write_all(line).expect("send");
        read_reply(&mut s);
    }
    s.write_all(b"MKD caf\xe9\r\n").expect("send");
    assert_eq!(
        read_reply(&mut s),
        b"257 \"/caf\xe9\" directory created.\r\n"
    );
    // On disk the name is UTF-8, as pyftpdlib stores it.
    assert!(tmp.path().join("caf\u{e9}").is_dir());
    s.write_all(b"FEAT\r\n").expect("send");
    let mut feat = Vec::new();
    loop {
        let line = read_reply(&mut s);
        feat.extend_from_slice(&line);
        if line.starts_with(b"211 ") {
            break;
        }
    }
    assert!(
        !String::from_utf8_lossy(&feat).contains("UTF8"),
        "no UTF8 feature"
    );
}

#[test]
fn tls_flags_need_their_companions() {
    // pyftpdlib: --tls needs a certificate; the key and certificate files need --tls.
    let stderr = refused(&["-p", "0", "--tls"], 2);
    assert!(
        stderr.contains("--tls") && stderr.contains("--certfile"),
        "{stderr}"
    );
    let stderr = refused(&["-p", "0", "--keyfile", "/nonexistent/key.pem"], 2);
    assert!(stderr.contains("--tls"), "{stderr}");
}

#[test]
fn concurrency_models() {
    // (Every model's round trips: tests/it/models.rs.)
    let stderr = refused(&["-p", "0", "--concurrency", "no-such-model"], 2);
    assert!(stderr.contains("no-such-model"), "{stderr}");
    // multi-thread serves, and says so.
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("f"), b"threaded").expect("write");
    let mut srv = BinServer::start(&["-d", dir_str(tmp.path()), "--concurrency", "multi-thread"]);
    let mut c = Client::connect(srv.addr);
    c.login("anonymous", "a@b");
    assert_eq!(c.retr("f"), b"threaded");
    c.expect("QUIT", 221);
    srv.terminate();
    let log = srv.log();
    assert!(log.contains("] concurrency model: multi-thread\n"), "{log}");
}

#[test]
fn bad_command_lines_exit_2() {
    let stderr = refused(&["--no-such-flag"], 2);
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
    let stderr = refused(&["-u", "someone"], 2);
    assert!(
        stderr.contains("password") && stderr.contains("-P"),
        "{stderr}"
    );
    let stderr = refused(&["-r", "9-5"], 2);
    assert!(stderr.contains("9-5"), "{stderr}");
    for bad in ["0-5", "5-5", "x-9", "9000"] {
        let stderr = refused(&["-r", bad], 2);
        assert!(stderr.contains("--range"), "-r {bad}: {stderr}");
    }
}

#[test]
fn port_in_use_fails_with_a_message() {
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("address").port().to_string();
    let stderr = refused(&["-i", "127.0.0.1", "-p", &port], 2);
    assert!(stderr.contains("Address already in use"), "{stderr}");
}

#[test]
fn passive_only_and_active_only_answer_502_for_the_other_mode() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = dir_str(tmp.path());
    let mut srv = BinServer::start(&["-d", dir, "--passive-only"]);
    let mut c = Client::connect(srv.addr);
    c.login("anonymous", "a@b");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (code, text) = c.cmd(&format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff));
    assert_eq!(code, 502, "{text}");
    assert_eq!(c.cmd(&format!("EPRT |1|127.0.0.1|{port}|")).0, 502);
    assert_eq!(c.cmd("PASV").0, 227);
    assert_eq!(c.cmd("EPSV").0, 229);
    c.expect("QUIT", 221);
    srv.terminate();

    let mut srv = BinServer::start(&["-d", dir, "--active-only"]);
    let mut c = Client::connect(srv.addr);
    c.login("anonymous", "a@b");
    let (code, text) = c.cmd("PASV");
    assert_eq!(code, 502, "{text}");
    assert_eq!(c.cmd("EPSV").0, 502);
    assert_eq!(c.cmd("EPSV ALL").0, 502);
    assert_eq!(
        c.cmd(&format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff))
            .0,
        200
    );
    c.expect("QUIT", 221);
    srv.terminate();

    let err = refused(&["--passive-only", "--active-only"], 2);
    assert!(err.contains("--active-only"), "{err}");
}

#[test]
fn nat_address_for_picks_the_address_by_the_clients_network() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = BinServer::start(&[
        "-d",
        dir_str(tmp.path()),
        "-n",
        "203.0.113.10",
        "--nat-address-for",
        "127.0.0.2/32=10.1.2.3, 192.168.0.0/16=192.168.1.10",
    ]);
    let pasv_host = |source: IpAddr| {
        let mut c = Client::from_stream(connect_from(source, srv.addr));
        assert_eq!(c.reply().0, 220);
        c.login("anonymous", "a@b");
        let (code, text) = c.cmd("PASV");
        assert_eq!(code, 227, "{text}");
        c.expect("QUIT", 221);
        text
    };
    // 127.0.0.2 is in the first network; 127.0.0.1 in none, so it gets -n.
    assert!(pasv_host(FOREIGN).contains("(10,1,2,3,"));
    assert!(pasv_host(IpAddr::V4(Ipv4Addr::LOCALHOST)).contains("(203,0,113,10,"));
    let err = refused(&["--nat-address-for", "10.0.0.0/8"], 2);
    assert!(err.contains("CIDR=ADDRESS"), "{err}");
    let err = refused(&["--nat-address-for", "10.0.0.0/33=1.2.3.4"], 2);
    assert!(err.contains("invalid network"), "{err}");
}

/// The log of a server once its start-up lines are out, after a SIGTERM (bounded wait).
fn started_log(srv: &mut BinServer) -> String {
    let deadline = Instant::now() + IO_TIMEOUT;
    while !srv.log().contains(">>> starting FTP server") {
        assert!(Instant::now() < deadline, "no start-up line: {}", srv.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    srv.terminate();
    srv.log()
}

/// The open-files limit each process may raise its own to (the binary raises the soft
/// limit to the hard one at start-up).
fn hard_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit, which `lim` is.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_max
}

#[test]
fn start_up_says_when_a_limit_caps_the_server_and_pre_fork_sizes_itself() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = dir_str(tmp.path());
    let mut srv = BinServer::start(&["-d", dir, "--max-cons", "100000000", "--backlog", "65535"]);
    let log = started_log(&mut srv);
    assert!(
        log.contains("max connections 100000000 but the open-files limit"),
        "{log}"
    );
    let somaxconn: u64 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u64::MAX);
    if somaxconn < 65535 {
        assert!(
            log.contains(&format!("listen backlog 65535 is cut to {somaxconn}")),
            "{log}"
        );
    }

    // Pre-fork with --workers 0: enough workers for --max-cons under each one's limit.
    let per_worker = (hard_nofile_limit() / 5 * 4).max(1);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let max_cons = 3 * per_worker + 1;
    let expected = cpus.max(max_cons.div_ceil(per_worker));
    let mut srv = BinServer::start(&[
        "-d",
        dir,
        "--concurrency",
        "pre-fork",
        "--max-cons",
        &max_cons.to_string(),
    ]);
    let log = started_log(&mut srv);
    assert!(log.contains(&format!("workers: {expected}")), "{log}");
    assert!(!log.contains("but the open-files limit"), "{log}");
}

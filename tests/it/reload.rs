//! SIGHUP through the built binary: a download running across a reload completes whole;
//! users added to or removed from the users file and the config file's `[[users]]` can or
//! cannot log in afterwards while a session logged in before goes on; a broken file
//! leaves the old settings; a renewed certificate is what new FTPS clients see; systemd
//! hears `RELOADING=1` and `READY=1` around each reload, in order.

use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ftpdlib::authorizers::DummyAuthorizer;
use ftpdlib::config::{Concurrency, HandlerConfig};
use ftpdlib::servers::Reload;

use crate::systemd::receive_until;
use crate::tls::client::{client_config, have_openssl, pem_certs, Conn, FtpsClient};

use crate::util::{heavy, random_bytes, BinServer, Client, TestServer, IO_TIMEOUT};

const MODELS: [&str; 5] = [
    "async",
    "multi-thread",
    "multi-loop",
    "multi-proc",
    "pre-fork",
];

/// A script or a service manager may signal the server as soon as its port accepts: by
/// then every signal the binary answers has its handler (the default action of SIGHUP and
/// SIGUSR2 ends the process), in the one-loop and the pre-fork models, and a SIGHUP sent
/// at that instant is a reload once the server serves.
#[test]
fn the_binary_catches_its_signals_before_its_port_accepts() {
    for model in ["async", "pre-fork"] {
        let srv = BinServer::start(&["--concurrency", model, "--workers", "1"]);
        for signal in ["HUP", "INT", "USR2", "TERM"] {
            assert!(
                srv.catches(signal),
                "{model}: SIG{signal} has its default action once the port accepts"
            );
        }
        let sent = Command::new("kill")
            .args(["-HUP", &srv.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        srv.wait_log("reload done", 1);
        let mut c = Client::connect(srv.addr);
        c.login("anonymous", "x");
        c.expect("NOOP", 200);
    }
}

/// The same through the library: a server built to answer SIGUSR2 (hand-overs) and SIGHUP
/// (reloads) catches them once `bind` returns, before `serve_forever` runs (its port
/// already accepts then).
#[test]
fn a_built_server_catches_sigusr2_and_sighup_before_it_serves() {
    let server = ftpdlib::servers::FtpServer::builder(DummyAuthorizer::new())
        .hand_over_on_sigusr2(true)
        .on_reload(|_| Ok(Reload::new()))
        .bind("127.0.0.1:0")
        .expect("bind");
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let caught = status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .expect("SigCgt");
    assert!(
        caught & (1 << (12 - 1)) != 0,
        "SIGUSR2 not caught: {caught:x}"
    );
    assert!(
        caught & (1 << (1 - 1)) != 0,
        "SIGHUP not caught: {caught:x}"
    );
    drop(server);
}

#[test]
fn a_download_runs_whole_across_a_reload() {
    let _heavy = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let payload = random_bytes(100 * 1024 * 1024, 0x4e10ad);
    std::fs::write(dir.path().join("big"), &payload).expect("write the file");
    let srv = BinServer::start(&["-d", path_str(dir.path())]);
    let mut c = Client::connect(srv.addr);
    c.login("anonymous", "x@example.com");
    c.expect("TYPE I", 200);
    let mut data = c.pasv();
    c.send("RETR big");
    let started = c.reply().0;
    assert!(started == 125 || started == 150, "RETR: {started}");
    let mut got = vec![0u8; 4 * 1024 * 1024];
    data.read_exact(&mut got).expect("the first 4 MiB");
    hang_up(&srv);
    wait_log(&srv, "reload done", 1);
    data.read_to_end(&mut got).expect("the rest");
    assert_eq!(c.reply().0, 226);
    assert_eq!(got.len(), payload.len());
    assert!(got == payload, "the download differs");
    c.expect("NOOP", 200);
}

#[test]
fn users_follow_the_files_in_every_model() {
    for model in MODELS {
        users_follow_the_files(model);
    }
}

/// bob (users file) and ann (`[[users]]`) at first; then carol and dave instead; then a
/// broken users file, which changes nothing.
fn users_follow_the_files(model: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir(&home).expect("mkdir");
    std::fs::write(home.join("readme"), b"hello").expect("write");
    let users = dir.path().join("users");
    let config = dir.path().join("ftpdlib.toml");
    let write_files = |file_users: &[&str], config_users: &[&str], max_cons: usize| {
        let hash = ftpdlib::authorizers::hash_password("pw").expect("hash");
        let lines: String = file_users
            .iter()
            .map(|u| format!("{u}:{hash}:{}:elr\n", home.display()))
            .collect();
        std::fs::write(&users, lines).expect("write the users file");
        let mut text = format!(
            "users-file = {}\nconcurrency = \"{model}\"\nworkers = 2\nmax-cons = {max_cons}\n\
             auth-failed-timeout = 0\n",
            quoted(&users)
        );
        for u in config_users {
            text.push_str(&format!(
                "\n[[users]]\nname = \"{u}\"\npassword = \"pw\"\nhome = {}\n",
                quoted(&home)
            ));
        }
        std::fs::write(&config, text).expect("write the config file");
    };
    write_files(&["bob"], &["ann"], 100);
    let srv = BinServer::start(&["--config", path_str(&config)]);
    // Pre-fork: the supervisor and each of the two workers say when they are done.
    let done_lines = if model == "pre-fork" { 3 } else { 1 };
    let mut before = Client::connect(srv.addr);
    before.login("bob", "pw");
    assert_eq!(logs_in(&srv, "ann"), 230, "{model}");

    write_files(&["carol"], &["dave"], 50);
    hang_up(&srv);
    wait_log(&srv, "reload done", done_lines);
    for (user, code) in [("carol", 230), ("dave", 230), ("bob", 530), ("ann", 530)] {
        assert_eq!(logs_in(&srv, user), code, "{model}: {user}\n{}", srv.log());
    }
    // Logged in before the reload: bob keeps his session, rights and home.
    assert_eq!(before.retr("readme"), b"hello", "{model}");
    before.expect("NOOP", 200);
    let log = srv.log();
    assert!(
        log.contains("reload: --max-cons needs a restart; keeping 100"),
        "{model}: {log}"
    );

    std::fs::write(&users, "carol:not-a-hash\n").expect("break the users file");
    hang_up(&srv);
    wait_log(&srv, "reload failed", 1);
    let log = srv.log();
    let failed = log
        .lines()
        .find(|l| l.contains("reload failed"))
        .unwrap_or_default();
    assert!(
        failed.contains(&users.display().to_string()) && failed.contains(":1:"),
        "{model}: the error names the file and line: {failed}"
    );
    assert!(failed.starts_with("[E "), "{model}: error level: {failed}");
    for (user, code) in [("carol", 230), ("dave", 230), ("bob", 530)] {
        assert_eq!(
            logs_in(&srv, user),
            code,
            "{model}: {user} after a failed reload"
        );
    }
    before.expect("NOOP", 200);
    before.expect("QUIT", 221);
}

#[test]
fn a_renewed_certificate_is_what_new_clients_see() {
    if !have_openssl() {
        return;
    }
    let certs = crate::tls::client::Certs::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let (crt, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    std::fs::copy(certs.path("ec.crt"), &crt).expect("copy");
    std::fs::copy(certs.path("ec.key"), &key).expect("copy");
    let srv = BinServer::start(&[
        "-d",
        path_str(dir.path()),
        "-u",
        "user",
        "-P",
        "12345",
        "--tls",
        "--certfile",
        path_str(&crt),
        "--keyfile",
        path_str(&key),
    ]);
    let old = pem_certs(&certs.path("ec.crt"))[0].to_vec();
    let new = pem_certs(&certs.path("rsa.crt"))[0].to_vec();
    let config = client_config();
    let mut before = FtpsClient::connect(srv.addr);
    before.auth_tls(&config);
    before.login();
    before.prot_p();
    assert_eq!(peer_certificate(before.conn_mut()), old);

    std::fs::copy(certs.path("rsa.crt"), &crt).expect("renew");
    std::fs::copy(certs.path("rsa.key"), &key).expect("renew");
    hang_up(&srv);
    wait_log(&srv, "reload done", 1);
    let mut after = FtpsClient::connect(srv.addr);
    after.auth_tls(&client_config());
    assert_eq!(
        peer_certificate(after.conn_mut()),
        new,
        "the new certificate"
    );
    after.login();
    // The session from before goes on, its data connections on its own certificate.
    let mut data = before.pasv(Some(&config));
    before.start("NLST");
    let mut listing = Vec::new();
    data.read_to_end(&mut listing).expect("listing");
    assert_eq!(
        peer_certificate(&mut data),
        old,
        "the old session's data channel"
    );
    assert_eq!(before.reply().0, 226);
    assert!(String::from_utf8_lossy(&listing).contains("server.crt"));

    // A key that does not parse: the error names it, the renewed certificate stays.
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\ngarbage\n").expect("break the key");
    hang_up(&srv);
    wait_log(&srv, "reload failed", 1);
    let log = srv.log();
    assert!(log.contains(&format!("'{}'", key.display())), "{log}");
    let mut later = FtpsClient::connect(srv.addr);
    later.auth_tls(&client_config());
    assert_eq!(peer_certificate(later.conn_mut()), new);
    before.expect("NOOP", 200);
}

#[test]
fn systemd_hears_reloading_then_ready() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    notify
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let users = dir.path().join("users");
    std::fs::write(&users, format!("anonymous::{}:elr\n", dir.path().display()))
        .expect("write the users file");
    let mut srv = BinServer::start_env(
        &["--users-file", path_str(&users)],
        &[("NOTIFY_SOCKET", Some(path_str(&socket_path)))],
    );
    let mut got = Vec::new();
    receive_until(&notify, &mut got, "READY=1");
    hang_up(&srv);
    receive_until(&notify, &mut got, "READY=1");
    // A failed reload is announced the same way: the server serves on.
    std::fs::write(&users, "anonymous:x\n").expect("break the users file");
    hang_up(&srv);
    receive_until(&notify, &mut got, "READY=1");
    let status = srv.terminate();
    assert!(status.success(), "{status:?}\n{}", srv.log());
    receive_until(&notify, &mut got, "STOPPING=1");

    let states: Vec<&str> = got
        .iter()
        .map(String::as_str)
        .filter(|m| !m.starts_with("STATUS=") && !m.starts_with("MONOTONIC_USEC="))
        .collect();
    assert_eq!(
        states,
        [
            "READY=1",
            "RELOADING=1",
            "READY=1",
            "RELOADING=1",
            "READY=1",
            "STOPPING=1"
        ],
        "{got:?}"
    );
    // Each RELOADING=1 carries the monotonic clock (Type=notify-reload needs it), which
    // moves forward.
    let stamps: Vec<u64> = got
        .windows(2)
        .filter(|w| w[0] == "RELOADING=1")
        .map(|w| {
            w[1].strip_prefix("MONOTONIC_USEC=")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no MONOTONIC_USEC after RELOADING=1: {got:?}"))
        })
        .collect();
    assert_eq!(stamps.len(), 2, "{got:?}");
    assert!(0 < stamps[0] && stamps[0] < stamps[1], "{stamps:?}");
    let log = srv.log();
    assert!(log.contains("received SIGHUP, reloading"), "{log}");
    assert!(log.contains("reload failed"), "{log}");
}

#[test]
fn the_library_reloads_through_a_server_handle() {
    for model in [Concurrency::Async, Concurrency::MultiLoop] {
        let srv = TestServer::with(
            |_| {},
            |s| {
                s.concurrency = model;
                s.workers = 2;
            },
        );
        let mut before = srv.login();
        let mut auth = DummyAuthorizer::new();
        auth.add_user("zed", "pw", srv.root(), "elr", None, None)
            .expect("add zed");
        let mut config = HandlerConfig::default();
        config.banner = "reloaded.".into();
        config.auth_failed_timeout = Duration::from_millis(100);
        srv.handle()
            .reload(Reload::new().handler_config(config).authorizer(auth))
            .expect("reload");
        // Enough connections to meet every loop of the multi-loop model.
        for _ in 0..6 {
            let mut c = Client::connect_raw(srv.addr);
            assert_eq!(c.reply(), (220, "reloaded.".to_owned()), "{model:?}");
            c.expect("USER user", 331);
            assert_eq!(c.cmd("PASS 12345").0, 530, "{model:?}: the old user");
            c.expect("USER zed", 331);
            c.expect("PASS pw", 230);
        }
        before.expect("NOOP", 200);
        before.stor("still-mine", b"written with the old rights");
        before.expect("QUIT", 221);
    }
}

/// Sends SIGHUP to the server.
fn hang_up(srv: &BinServer) {
    let sent = Command::new("kill")
        .args(["-HUP", &srv.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -HUP failed");
}

/// Waits (bounded) until the log holds `count` lines containing `what`.
fn wait_log(srv: &BinServer, what: &str, count: usize) {
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let log = srv.log();
        if log.lines().filter(|l| l.contains(what)).count() >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} x {what:?} not logged within {IO_TIMEOUT:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The reply code to a login as `user` with password `pw` on a new connection.
fn logs_in(srv: &BinServer, user: &str) -> u16 {
    let mut c = Client::connect(srv.addr);
    c.expect(&format!("USER {user}"), 331);
    c.send("PASS pw");
    let code = c.reply().0;
    if code == 230 {
        c.expect("QUIT", 221);
    }
    code
}

/// The certificate the server presented on `conn` (DER).
fn peer_certificate(conn: &mut Conn) -> Vec<u8> {
    conn.handshake().expect("handshake");
    match conn {
        Conn::Tls(s) => s
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .expect("a peer certificate"),
        Conn::Plain(_) => panic!("not TLS"),
    }
}

fn quoted(p: &Path) -> String {
    format!("{:?}", p.to_str().expect("a UTF-8 temp path"))
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

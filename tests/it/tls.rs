//! FTPS (RFC 4217) over rustls: Python's ftplib.FTP_TLS, curl, lftp and a rustls client
//! against the server; AUTH / PBSZ / PROT replies; the TLS-required options; data
//! connections that must resume the control session; implicit FTPS; and hostile clients
//! (garbage after AUTH TLS, stalled handshakes, drops mid-transfer) that cost only their
//! own session. Certificates are made with the `openssl` command line.

#[path = "tls_client.rs"]
pub(crate) mod client;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use client::{
    client_config, client_config_with_cert, have_openssl, pem_certs, pem_key, tcp_connect, Certs,
    Conn, FtpsClient,
};
use ftpdlib::config::TlsConfig;

use crate::util::{
    assert_same_file, have_tool, random_bytes, run_tool, tree, BinServer, Client, TestServer,
    TOOL_TIMEOUT,
};

/// A server with FTPS on, its options adjusted by `f`.
fn tls_server(certs: &Certs, f: impl FnOnce(&mut TlsConfig)) -> TestServer {
    let mut tls = certs.server_tls();
    f(&mut tls);
    TestServer::with(move |c| c.tls = Some(tls), |_| {})
}

fn curl(args: &[&str]) -> Output {
    run_tool(
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "60", "-k"])
            .args(args),
        TOOL_TIMEOUT,
    )
}

fn curl_ok(args: &[&str]) -> Vec<u8> {
    let out = curl(args);
    assert!(
        out.status.success(),
        "curl {args:?} failed with {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

#[test]
fn ftplib_prot_p_and_prot_c_round_trip_10_mb() {
    if !have_openssl() || !have_tool("python3") {
        return;
    }
    let certs = Certs::new();
    let srv = tls_server(&certs, |_| {});
    let tmp = tempfile::tempdir().expect("tempdir");
    let upload = tmp.path().join("upload");
    std::fs::write(&upload, random_bytes(10 * 1024 * 1024, 0xf7f5)).expect("write upload");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/ftps_session.py");
    for prot in ["p", "c"] {
        let download = tmp.path().join(format!("download-{prot}"));
        let out = run_tool(
            Command::new("python3").args([
                script,
                &srv.addr.ip().to_string(),
                &srv.addr.port().to_string(),
                path_str(&upload),
                path_str(&download),
                prot,
            ]),
            TOOL_TIMEOUT,
        );
        assert!(
            out.status.success(),
            "ftplib PROT {prot} session failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
        assert_same_file(&upload, &download);
    }
}

#[test]
fn curl_ftps_upload_download_list() {
    if !have_openssl() || !have_tool("curl") {
        return;
    }
    let certs = Certs::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    std::fs::create_dir(&served).expect("mkdir served");
    let source = tmp.path().join("source");
    std::fs::write(&source, random_bytes(3 * 1024 * 1024 + 7, 0xc0)).expect("write");
    let (cert, key) = (certs.arg("rsa.crt"), certs.arg("rsa.key"));
    let base = ["-w", "-d", path_str(&served), "--tls", "--certfile", &cert];
    for extra in [
        &["--keyfile", &key][..],
        &["--keyfile", &key, "--tls-require-reuse"],
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let srv = BinServer::start(&args);
        for tls_max in ["1.2", "1.3"] {
            let name = format!("f-{}-{tls_max}", extra.len());
            let url = srv.url(&name);
            let tls = ["--ssl-reqd", "--tls-max", tls_max];
            let mut up = tls.to_vec();
            up.extend(["-T", path_str(&source), &url]);
            curl_ok(&up);
            assert_same_file(&source, &served.join(&name));
            let mut down = tls.to_vec();
            down.push(&url);
            let got = curl_ok(&down);
            assert!(
                got == std::fs::read(&source).expect("read"),
                "{name}: download differs"
            );
            let root = srv.url("");
            let mut list = tls.to_vec();
            list.push(&root);
            let listing = String::from_utf8(curl_ok(&list)).expect("UTF-8 listing");
            assert!(
                listing.lines().any(|l| l.ends_with(&name)),
                "{name} not listed:\n{listing}"
            );
        }
        // Two transfers on one control connection, each data connection resuming (TLS 1.2
        // sessions are reusable; OpenSSL spends a TLS 1.3 ticket once, see the README).
        let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
        let url = srv.url(&format!("f-{}-1.2", extra.len()));
        curl_ok(&[
            "--ssl-reqd",
            "--tls-max",
            "1.2",
            &url,
            "-o",
            path_str(&one),
            &url,
            "-o",
            path_str(&two),
        ]);
        assert_same_file(&source, &one);
        assert_same_file(&source, &two);
        let log = srv.log();
        assert!(
            log.contains(">>> starting FTPS (FTP over SSL) server on"),
            "{log}"
        );
    }
}

#[test]
fn curl_implicit_ftps() {
    if !have_openssl() || !have_tool("curl") {
        return;
    }
    let certs = Certs::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    std::fs::create_dir(&served).expect("mkdir served");
    let source = tmp.path().join("source");
    std::fs::write(&source, random_bytes(1024 * 1024, 0x1e)).expect("write");
    let combined = certs.arg("combined.pem");
    let srv = BinServer::start(&[
        "-w",
        "-d",
        path_str(&served),
        "--tls",
        "--certfile",
        &combined,
        "--tls-implicit",
        "--tls-require-reuse",
    ]);
    let url = format!("ftps://{}/implicit", srv.addr);
    curl_ok(&["-T", path_str(&source), &url]);
    assert_same_file(&source, &served.join("implicit"));
    assert!(curl_ok(&[&url]) == std::fs::read(&source).expect("read"));
    let listing = curl_ok(&[&format!("ftps://{}/", srv.addr)]);
    assert!(String::from_utf8_lossy(&listing).contains("implicit"));
    // A clear-text client gets no FTP greeting from an implicit-TLS port.
    let out = curl(&["--max-time", "5", &srv.url("")]);
    assert!(
        !out.status.success(),
        "plain FTP worked on an implicit port"
    );
}

#[test]
fn lftp_mirrors_a_tree_over_ftps_with_reuse_required() {
    if !have_openssl() || !have_tool("lftp") {
        return;
    }
    let certs = Certs::new();
    let srv = tls_server(&certs, |t| {
        t.control_required = true;
        t.data_required = true;
        t.require_session_reuse = true;
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let local = tmp.path().join("localdir");
    let files: [(&str, Vec<u8>); 4] = [
        ("a.txt", b"alpha\n".to_vec()),
        ("empty.txt", Vec::new()),
        ("sub/b.bin", random_bytes(500_000, 31)),
        ("sub/deeper/c.bin", random_bytes(70_000, 32)),
    ];
    for (name, data) in &files {
        let path = local.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, data).expect("write");
    }
    let script = "set ftp:ssl-force true; set ftp:ssl-protect-data true; \
                  set ssl:verify-certificate no; set net:max-retries 1; set net:timeout 10; \
                  set net:reconnect-interval-base 1; set cmd:fail-exit true; \
                  mirror -R localdir remotedir; mirror remotedir backdir; bye";
    let out = run_tool(
        Command::new("lftp")
            .current_dir(tmp.path())
            .env("HOME", tmp.path())
            .args(["-u", "user,12345", "-p", &srv.addr.port().to_string()])
            .arg(srv.addr.ip().to_string())
            .args(["-e", script]),
        TOOL_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "lftp failed with {:?}:\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = tree(&local);
    assert_eq!(tree(&srv.root().join("remotedir")), expected, "uploaded");
    assert_eq!(tree(&tmp.path().join("backdir")), expected, "downloaded");
}

#[test]
fn auth_pbsz_prot_replies() {
    if !have_openssl() {
        return;
    }
    let certs = Certs::new();
    let srv = tls_server(&certs, |_| {});
    let mut c = FtpsClient::connect(srv.addr);
    let feat = c.expect("FEAT", 211);
    for line in [" AUTH SSL", " AUTH TLS", " PBSZ", " PROT"] {
        assert!(
            feat.lines().any(|l| l == line),
            "FEAT lacks {line:?}:\n{feat}"
        );
    }
    c.expect("HELP AUTH", 214);
    let insecure = [
        (
            "PBSZ 0",
            503,
            "PBSZ not allowed on insecure control connection.",
        ),
        (
            "PROT P",
            503,
            "PROT not allowed on insecure control connection.",
        ),
        // RFC 2228: an unknown mechanism is 504 (pyftpdlib: 502).
        (
            "AUTH KERBEROS",
            504,
            "Unrecognized encryption type (use TLS or SSL).",
        ),
        (
            "AUTH GSSAPI",
            504,
            "Unrecognized encryption type (use TLS or SSL).",
        ),
    ];
    for (line, code, text) in insecure {
        assert_eq!(c.cmd(line), (code, text.to_owned()), "{line}");
    }
    c.auth_tls(&client_config());
    let secure = [
        ("AUTH TLS", 503, "Already using TLS."),
        (
            "PROT P",
            503,
            "You must issue the PBSZ command prior to PROT.",
        ),
        ("PBSZ 0", 200, "PBSZ=0 successful."),
        // RFC 2228: levels the mechanism does not offer are 536, unknown ones 504
        // (pyftpdlib: 521 and 502).
        (
            "PROT S",
            536,
            "Requested PROT level not supported by mechanism.",
        ),
        (
            "PROT e",
            536,
            "Requested PROT level not supported by mechanism.",
        ),
        ("PROT X", 504, "Unrecognized PROT type (use C or P)."),
        ("PROT C", 200, "Protection set to Clear"),
        ("PROT p", 200, "Protection set to Private"),
    ];
    for (line, code, text) in secure {
        assert_eq!(c.cmd(line), (code, text.to_owned()), "{line}");
    }
    c.login();
    // No CCC (clearing the control channel), as in pyftpdlib.
    assert_eq!(
        c.cmd("CCC"),
        (500, "Command \"CCC\" not understood.".to_owned())
    );
    // REIN forgets PBSZ / PROT; TLS stays on.
    c.expect("REIN", 220);
    c.expect("PROT P", 503);
    c.expect("PBSZ 0", 200);
    c.expect("PROT P", 200);
    c.expect("QUIT", 221);

    // Without FTPS configured, the commands do not exist.
    let plain = TestServer::start();
    let mut p = Client::connect(plain.addr);
    assert_eq!(
        p.cmd("AUTH TLS"),
        (500, "Command \"AUTH\" not understood.".to_owned())
    );
    let feat = p.expect("FEAT", 211);
    assert!(!feat.contains("AUTH"), "{feat}");
}

#[test]
fn tls_control_required_refuses_user_before_auth() {
    if !have_openssl() {
        return;
    }
    let certs = Certs::new();
    let srv = tls_server(&certs, |t| t.control_required = true);
    let mut c = FtpsClient::connect(srv.addr);
    let refused = (550, "SSL/TLS required on the control channel.".to_owned());
    assert_eq!(c.cmd("USER user"), refused);
    assert_eq!(c.cmd("PASS 12345"), refused);
    c.expect("NOOP", 200);
    c.auth_tls(&client_config());
    c.login();
    c.expect("PWD", 257);
}

#[test]
fn tls_data_required_refuses_transfers_before_prot_p() {
    if !have_openssl() {
        return;
    }
    let certs = Certs::new();
    let srv = tls_server(&certs, |t| t.data_required = true);
    std::fs::write(srv.root().join("f"), b"secret data").expect("write");
    let config = client_config();
    let mut c = FtpsClient::connect(srv.addr);
    c.auth_tls(&config);
    c.login();
    let refused = (550, "SSL/TLS required on the data channel.".to_owned());
    for line in [
        "PASV",
        "EPSV",
        "PORT 127,0,0,1,4,1",
        "EPRT |1|127.0.0.1|1025|",
    ] {
        assert_eq!(c.cmd(line), refused, "{line}");
    }
    c.expect("PBSZ 0", 200);
    c.expect("PROT C", 200);
    assert_eq!(c.cmd("EPSV"), refused);
    c.expect("PROT P", 200);
    let mut data = c.pasv(Some(&config));
    c.start("RETR f");
    let mut got = Vec::new();
    data.read_to_end(&mut got)
        .expect("read the TLS data connection");
    assert_eq!(got, b"secret data");
    assert_eq!(c.reply().0, 226);
}

#[test]
fn data_connections_resume_the_control_session() {
    if !have_openssl() {
        return;
    }
    let certs = Certs::new();
    let srv = tls_server(&certs, |t| t.require_session_reuse = true);
    let config = client_config();
    let mut c = FtpsClient::protected(srv.addr, &config);
    c.expect("TYPE I", 200);
    let payload = random_bytes(2 * 1024 * 1024, 77);
    for round in 0..3 {
        let mut data = c.pasv(Some(&config));
        c.start("STOR up");
        data.write_all(&payload).expect("upload");
        assert!(
            data.resumed(),
            "round {round}: the data connection did not resume"
        );
        data.finish_upload();
        assert_eq!(c.reply().0, 226, "round {round}");
        let mut data = c.pasv(Some(&config));
        c.start("RETR up");
        let mut got = Vec::new();
        data.read_to_end(&mut got)
            .expect("download (clean TLS end)");
        assert!(got == payload, "round {round}: the download differs");
        assert_eq!(c.reply().0, 226);
    }

    // A fresh TLS client (no session to resume) is refused...
    let mut data = c.pasv(Some(&client_config()));
    c.start("RETR up");
    let _ = data.handshake();
    let mut sink = Vec::new();
    let _ = data.read_to_end(&mut sink);
    assert!(sink.is_empty(), "data flowed over a refused connection");
    assert_eq!(
        c.reply(),
        (
            522,
            "SSL connection failed: session reuse required".to_owned()
        )
    );

    // ...and so is a data connection resuming another client's session.
    let thief_config = client_config();
    let mut thief = FtpsClient::protected(srv.addr, &thief_config);
    let mut data = thief.pasv(Some(&config));
    thief.start("RETR up");
    let _ = data.handshake();
    let _ = data.read_to_end(&mut sink);
    assert!(sink.is_empty(), "data flowed to another session's ticket");
    assert_eq!(thief.reply().0, 522);
    c.expect("NOOP", 200);
    thief.expect("NOOP", 200);
}

#[test]
fn a_rustls_client_resumes_every_data_connection_of_a_long_session() {
    // rustls clients spend a TLS 1.3 ticket per resumption: two from the control
    // connection, two more from each download, none from an upload (whose client would
    // leave them unread).
    if !have_openssl() {
        return;
    }
    let certs = Certs::new();
    let srv = tls_server(&certs, |t| t.require_session_reuse = true);
    let payload = random_bytes(200_000, 21);
    std::fs::write(srv.root().join("f"), &payload).expect("write");
    let config = client_config();
    let mut c = FtpsClient::connect(srv.addr);
    c.auth_tls(&config);
    c.login();
    assert_eq!(c.conn_mut().tickets_received(), 2, "tickets on the control");
    c.prot_p();
    c.expect("TYPE I", 200);
    // More downloads than the eight tickets the control connection used to send...
    for round in 0..12 {
        let mut data = c.pasv(Some(&config));
        c.start("RETR f");
        let mut got = Vec::new();
        data.read_to_end(&mut got).expect("download");
        assert!(data.resumed(), "download {round} did not resume");
        assert!(got == payload, "download {round} differs");
        assert_eq!(data.tickets_received(), 2, "download {round}");
        assert_eq!(c.reply().0, 226, "download {round}");
    }
    // ...then uploads in a row, on what the downloads left.
    for round in 0..5 {
        let mut data = c.pasv(Some(&config));
        c.start(&format!("STOR up{round}"));
        data.write_all(&payload).expect("upload");
        assert!(data.resumed(), "upload {round} did not resume");
        assert_eq!(data.finish_upload(), 0, "tickets on upload {round}");
        assert_eq!(c.reply().0, 226, "upload {round}");
        let stored = std::fs::read(srv.root().join(format!("up{round}"))).expect("read");
        assert!(stored == payload, "upload {round} differs");
    }
    c.expect("NOOP", 200);
}

#[test]
fn implicit_tls_with_a_rustls_client() {
    if !have_openssl() {
        return;
    }
    let certs = Certs::new();
    let srv = tls_server(&certs, |t| {
        t.implicit = true;
        t.require_session_reuse = true;
    });
    std::fs::write(srv.root().join("f"), b"implicit").expect("write");
    let config = client_config();
    let mut c = FtpsClient::connect_implicit(srv.addr, &config);
    c.expect("AUTH TLS", 503);
    c.login();
    // PROT P is implied (also after REIN): data connections are TLS without PBSZ / PROT.
    for round in 0..2 {
        let mut data = c.pasv(Some(&config));
        c.start("RETR f");
        let mut got = Vec::new();
        data.read_to_end(&mut got).expect("read");
        assert_eq!(got, b"implicit", "round {round}");
        assert_eq!(c.reply().0, 226);
        c.expect("REIN", 220);
        c.login();
    }
}

#[test]
fn garbage_after_auth_tls_costs_only_that_session() {
    if !have_openssl() {
        return;
    }
    let certs = Certs::new();
    let srv = tls_server(&certs, |_| {});
    let config = client_config();
    let mut other = FtpsClient::connect(srv.addr);
    other.auth_tls(&config);
    other.login();

    // Garbage where the ClientHello should be.
    let mut c = Client::connect(srv.addr);
    c.expect("AUTH TLS", 234);
    c.send_raw(&random_bytes(3000, 5));
    let mut rest = Vec::new();
    let mut raw = c.stream_clone();
    let _ = raw.read_to_end(&mut rest); // an alert, then EOF (or a reset)
    assert!(
        !rest.starts_with(b"2") && !rest.starts_with(b"5"),
        "{rest:?}"
    );

    // A command pipelined behind AUTH TLS is TLS bytes, never a command (no injection).
    let mut c = Client::connect(srv.addr);
    c.send_raw(b"AUTH TLS\r\nUSER user\r\nPASS 12345\r\n");
    assert_eq!(c.reply().0, 234);
    let mut rest = Vec::new();
    let _ = c.stream_clone().read_to_end(&mut rest);
    assert!(
        !String::from_utf8_lossy(&rest).contains("331"),
        "a pipelined command ran: {rest:?}"
    );

    other.expect("NOOP", 200);
    other.expect("PWD", 257);
}

#[test]
fn a_reset_mid_handshake_leaves_nothing() {
    if !have_openssl() {
        return;
    }
    let certs = Certs::new();
    let srv = tls_server(&certs, |_| {});
    srv.wait_idle();
    // Half of a real ClientHello after the 234.
    let mut hello = Vec::new();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    rustls::ClientConnection::new(client_config(), name)
        .expect("client")
        .write_tls(&mut hello)
        .expect("ClientHello");
    assert!(hello.len() > 100, "{} bytes", hello.len());
    let mut c = Client::connect(srv.addr);
    c.expect("AUTH TLS", 234);
    c.send_raw(&hello[..hello.len() / 2]);
    let raw = c.stream_clone();
    socket2::SockRef::from(&raw)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    drop(raw);
    drop(c);
    crate::resets::assert_released(&srv, &[]);
}

#[test]
fn stalled_handshakes_time_out_alone() {
    if !have_openssl() {
        return;
    }
    let certs = Certs::new();
    let srv = tls_server(&certs, |t| t.handshake_timeout = Duration::from_millis(300));
    std::fs::write(srv.root().join("f"), b"data").expect("write");
    let config = client_config();
    // Control: 234, then nothing / half a record header.
    let mut silent = Client::connect(srv.addr);
    silent.expect("AUTH TLS", 234);
    let mut partial = Client::connect(srv.addr);
    partial.expect("AUTH TLS", 234);
    partial.send_raw(b"\x16\x03\x01");
    // Meanwhile another session works.
    let mut other = FtpsClient::protected(srv.addr, &config);
    for c in [&mut silent, &mut partial] {
        let mut rest = Vec::new();
        let _ = c.stream_clone().read_to_end(&mut rest);
        assert!(rest.is_empty(), "{rest:?}");
    }
    // Data: connected, never handshaking: 522 after the timeout, the session goes on.
    let data = other.pasv(None);
    other.start("RETR f");
    assert_eq!(other.reply(), (522, "SSL handshake failed.".to_owned()));
    drop(data);
    let mut data = other.pasv(Some(&config));
    other.start("RETR f");
    let mut got = Vec::new();
    data.read_to_end(&mut got).expect("read");
    assert_eq!(got, b"data");
    assert_eq!(other.reply().0, 226);
}

#[test]
fn a_hard_drop_mid_transfer_costs_only_that_session() {
    if !have_openssl() {
        return;
    }
    let certs = Certs::new();
    let srv = tls_server(&certs, |_| {});
    let big = random_bytes(24 * 1024 * 1024, 99);
    std::fs::write(srv.root().join("big"), &big).expect("write");
    let config = client_config();
    let mut other = FtpsClient::protected(srv.addr, &config);

    let mut c = FtpsClient::protected(srv.addr, &config);
    c.expect("TYPE I", 200);
    // Upload: TCP closes without close_notify; the upload is not acknowledged.
    let mut data = c.pasv(Some(&config));
    c.start("STOR cut");
    data.write_all(&big[..1024 * 1024]).expect("upload");
    data.flush().expect("flush");
    data.tcp().shutdown(Shutdown::Write).expect("shutdown");
    let (code, text) = c.reply();
    assert_eq!(code, 426, "{text}");
    assert!(text.contains("without close_notify"), "{text}");
    drop(data);
    // Download: the client vanishes after a few blocks.
    let mut data = c.pasv(Some(&config));
    c.start("RETR big");
    let mut block = vec![0u8; 64 * 1024];
    data.read_exact(&mut block).expect("first block");
    data.tcp().shutdown(Shutdown::Both).expect("shutdown");
    drop(data);
    let (code, text) = c.reply();
    assert_eq!(code, 426, "{text}");
    c.expect("NOOP", 200);
    // The other session never noticed.
    other.expect("TYPE I", 200);
    let mut data = other.pasv(Some(&config));
    other.start("RETR big");
    let mut got = Vec::new();
    data.read_to_end(&mut got).expect("read");
    assert!(got == big, "the other session's download differs");
    assert_eq!(other.reply().0, 226);
    // A control connection dropped mid-handshake, too.
    let mut raw = tcp_connect(srv.addr);
    let mut greeting = [0u8; 64];
    let _ = raw.read(&mut greeting);
    raw.write_all(b"AUTH TLS\r\n").expect("write");
    let _ = raw.read(&mut greeting);
    drop(raw);
    other.expect("NOOP", 200);
}

#[test]
fn certificates_load_and_bad_files_are_named() {
    if !have_openssl() {
        return;
    }
    let certs = Certs::new();
    for (cert, key) in [
        ("rsa.crt", Some("rsa.key")),
        ("ec.crt", Some("ec.key")),
        ("combined.pem", None),
    ] {
        let key = key.map(|k| certs.path(k));
        TlsConfig::from_pem_files(&certs.path(cert), key.as_deref())
            .unwrap_or_else(|e| panic!("{cert}: {e}"));
    }
    let garbage = certs.dir().join("garbage.pem");
    std::fs::write(&garbage, b"not a certificate\n").expect("write");
    let missing = certs.dir().join("missing.pem");
    for (cert, key, names) in [
        (missing.clone(), None, "missing.pem"),
        (garbage.clone(), None, "garbage.pem"),
        (certs.path("rsa.crt"), Some(garbage.clone()), "garbage.pem"),
        (certs.path("rsa.crt"), None, "rsa.crt"),
        (certs.path("rsa.crt"), Some(certs.path("ec.key")), "ec.key"),
    ] {
        let e = TlsConfig::from_pem_files(&cert, key.as_deref())
            .expect_err("a bad certificate or key was accepted")
            .to_string();
        assert!(e.contains(names), "{e:?} does not name {names}");
    }
    // The command line: --tls needs a certificate, the files need --tls.
    let bin = env!("CARGO_BIN_EXE_ftpdlib");
    let (cert, key) = (certs.arg("ec.crt"), certs.arg("ec.key"));
    let missing = path_str(&missing).to_owned();
    for args in [
        vec!["--tls"],
        vec!["--certfile", &cert, "--keyfile", &key],
        vec!["--tls-control-required"],
        vec!["--tls-implicit"],
        vec!["--tls", "--certfile", &missing],
        vec![
            "--tls",
            "--certfile",
            &cert,
            "--keyfile",
            path_str(&garbage),
        ],
    ] {
        let out = run_tool(
            Command::new(bin).args(["-p", "0"]).args(&args),
            TOOL_TIMEOUT,
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("ftpdlib:"), "{args:?}: {stderr}");
    }
    // Connecting to an FTPS data port with a plain client still works for PROT C.
    let srv = tls_server(&certs, |_| {});
    let mut c = FtpsClient::connect(srv.addr);
    c.auth_tls(&client_config());
    c.login();
    c.expect("PBSZ 0", 200);
    c.expect("PROT C", 200);
    let data: Conn = c.pasv(None);
    c.start("STOR clear");
    let mut data = data;
    data.write_all(b"clear").expect("write");
    data.finish_upload();
    assert_eq!(c.reply().0, 226);
    assert_eq!(
        std::fs::read(srv.root().join("clear")).expect("read"),
        b"clear"
    );
}

#[test]
fn client_certificates_through_a_rustls_config() {
    if !have_openssl() {
        return;
    }
    let certs = Certs::new();
    // The process's default crypto provider (ring, from rustls's features).
    let builder = rustls::ServerConfig::builder();
    let provider = std::sync::Arc::clone(builder.crypto_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in pem_certs(&certs.path("ca.crt")) {
        roots.add(ca).expect("add the CA");
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        std::sync::Arc::clone(&provider),
    )
    .build()
    .expect("client verifier");
    let config = builder
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            pem_certs(&certs.path("ec.crt")),
            pem_key(&certs.path("ec.key")),
        )
        .expect("server config");
    let mut tls = TlsConfig::new(std::sync::Arc::new(config));
    tls.require_session_reuse = true;
    let srv = TestServer::with(move |c| c.tls = Some(tls), |_| {});
    std::fs::write(srv.root().join("f"), b"mutual").expect("write");

    let with_cert =
        client_config_with_cert(Some((&certs.path("client.crt"), &certs.path("client.key"))));
    let mut c = FtpsClient::protected(srv.addr, &with_cert);
    let mut data = c.pasv(Some(&with_cert));
    c.start("RETR f");
    let mut got = Vec::new();
    data.read_to_end(&mut got).expect("read");
    assert_eq!(got, b"mutual");
    assert_eq!(c.reply().0, 226);

    // No certificate: the handshake fails and the session ends without a reply.
    let mut anon = FtpsClient::connect(srv.addr);
    if anon.auth_tls_unchecked(&client_config()).is_ok() {
        // TLS 1.3: the client finishes first; the server's alert comes after.
        // The server may be gone already: a failed write is as good as a refusal.
        let _ = anon.conn_mut().write_all(b"USER user\r\n");
        assert!(
            !matches!(anon.try_reply(), Ok(Some(_))),
            "a client without a certificate got a reply"
        );
    }
    c.expect("NOOP", 200);
}

#[test]
fn a_client_close_notify_on_the_control_connection_is_answered() {
    if !have_openssl() {
        return;
    }
    let certs = Certs::new();
    let srv = tls_server(&certs, |_| {});
    let config = client_config();
    let mut c = FtpsClient::connect(srv.addr);
    c.auth_tls(&config);
    c.login();
    let Conn::Tls(s) = c.conn_mut() else {
        panic!("the control connection is not TLS");
    };
    s.conn.send_close_notify();
    s.conn.complete_io(&mut s.sock).expect("send close_notify");
    // The server's own close_notify ends the stream cleanly: rustls reports a TCP close
    // without it as UnexpectedEof.
    let mut rest = Vec::new();
    let read = s.read_to_end(&mut rest);
    assert!(read.is_ok(), "{read:?} after {rest:?}");
    assert!(rest.is_empty(), "{rest:?}");
    srv.wait_idle();
}

#[test]
fn garbage_on_a_prot_p_data_connection_gets_an_alert_and_522() {
    if !have_openssl() {
        return;
    }
    let certs = Certs::new();
    let srv = tls_server(&certs, |_| {});
    let config = client_config();
    let mut c = FtpsClient::protected(srv.addr, &config);
    let mut data = c.pasv(None);
    c.start("LIST");
    // A handshake record too large to be one: the server refuses it with an alert.
    data.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0xff, 0xff, 0xff])
        .expect("send");
    let mut rest = Vec::new();
    let _ = data.read_to_end(&mut rest);
    assert_eq!(rest.first(), Some(&0x15), "no TLS alert record: {rest:?}");
    assert_eq!(c.reply(), (522, "SSL handshake failed.".to_owned()));
    c.expect("NOOP", 200);
    c.expect("QUIT", 221);
    drop(c);
    srv.wait_idle();
}

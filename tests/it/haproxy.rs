//! Several instances behind HAProxy, as `docs/deployment.md` describes: HAProxy in TCP
//! mode on 127.0.0.10 with the configuration of that page, three `ftpdlib` binaries on
//! 127.0.0.11–13 over one shared directory, each with its passive range, the PROXY
//! protocol v2 on control and data connections, atomic uploads. Clients bind 127.0.0.2,
//! 127.0.0.3 (and more addresses where a test needs many clients), as separate hosts.

#[path = "haproxy_cluster.rs"]
mod cluster;

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};

use crate::util::{connect_from, random_bytes, tree, Client};
use cluster::{
    assert_same, instance_ip, list_from, path_str, retr_from, Cluster, BALANCER, CLIENT_A, CLIENT_B,
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

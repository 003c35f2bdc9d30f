//! Virtual hosts (RFC 7151): `HOST` before `USER` picks a site with its own users,
//! homes and banner; over TLS the SNI name picks it too, and its certificate.

use std::path::Path;

use ftpdlib::authorizers::{hash_password, DummyAuthorizer};
use ftpdlib::servers::VirtualHost;

use crate::tls::client::{client_config, have_openssl, pem_certs, Certs, FtpsClient};
use crate::util::{BinServer, Client, TestServer};

/// A site whose one user `name` (password `pw-<name>`) has every right on `home`.
fn site(name: &str, user: &str, home: &Path) -> VirtualHost {
    std::fs::create_dir_all(home).expect("home");
    std::fs::write(home.join(format!("{user}.txt")), user).expect("marker file");
    let mut auth = DummyAuthorizer::new();
    auth.add_user(user, &format!("pw-{user}"), home, "elradfmwMT", None, None)
        .expect("user");
    VirtualHost::new(name, auth)
}

fn two_sites(outside: &Path) -> TestServer {
    let a = site("a.example", "alice", &outside.join("a"));
    let b = site("b.example", "bob", &outside.join("b"));
    TestServer::with_builder(
        |_| {},
        |_| {},
        move |builder| {
            builder
                .virtual_host(a.banner("Welcome to site A."))
                .virtual_host(b)
        },
    )
}

#[test]
fn host_picks_the_site_its_users_and_banner() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = two_sites(tmp.path());
    let mut c = srv.client();
    let feat = c.expect("FEAT", 211);
    assert!(feat.lines().any(|l| l.trim() == "HOST"), "{feat}");
    assert!(c.expect("HELP HOST", 214).contains("HOST <SP> host-name"));
    assert_eq!(
        c.cmd("HOST a.example"),
        (220, "Welcome to site A.".to_owned())
    );
    c.login("alice", "pw-alice");
    assert!(c.listing("NLST").contains("alice.txt"));
    // Once logged in, HOST is out of sequence.
    assert_eq!(c.cmd("HOST b.example").0, 503);
    c.expect("QUIT", 221);

    // Any case and a trailing dot; the default banner; bob is not alice's.
    let mut c = srv.client();
    assert_eq!(c.cmd("HOST B.Example."), (220, "Host accepted.".to_owned()));
    c.expect("USER alice", 331);
    assert_eq!(c.cmd("PASS pw-alice").0, 530);
    c.login("bob", "pw-bob");
    assert!(c.listing("NLST").contains("bob.txt"));
    c.expect("QUIT", 221);

    // An unknown host, HOST after USER, and the server's own users without HOST.
    let mut c = srv.client();
    assert_eq!(
        c.cmd("HOST c.example"),
        (504, "Unknown host c.example.".to_owned())
    );
    c.expect("USER bob", 331);
    assert_eq!(c.cmd("HOST b.example").0, 503);
    assert_eq!(c.cmd("PASS pw-bob").0, 530);
    c.login("user", "12345");
    c.expect("QUIT", 221);

    // REIN forgets the host.
    let mut c = srv.client();
    c.expect("HOST a.example", 220);
    c.login("alice", "pw-alice");
    c.expect("REIN", 220);
    c.expect("USER alice", 331);
    assert_eq!(c.cmd("PASS pw-alice").0, 530);
}

#[test]
fn without_virtual_hosts_host_is_unknown_as_in_pyftpdlib() {
    let srv = TestServer::start();
    let mut c = srv.client();
    assert_eq!(c.cmd("HOST a.example").0, 500);
    let feat = c.expect("FEAT", 211);
    assert!(!feat.lines().any(|l| l.trim() == "HOST"), "{feat}");
}

/// The SNI name of an `AUTH TLS` handshake picks the site's certificate and its users;
/// other names get the server's certificate and users.
#[test]
fn the_tls_sni_name_picks_the_certificate_and_the_site() {
    if !have_openssl() {
        return;
    }
    let (server_certs, site_certs) = (Certs::new(), Certs::new());
    let tmp = tempfile::tempdir().expect("tempdir");
    let b = site("b.example", "bob", &tmp.path().join("b"))
        .certificate(
            &site_certs.path("rsa.crt"),
            Some(&site_certs.path("rsa.key")),
        )
        .expect("site certificate");
    let tls = server_certs.server_tls();
    let srv = TestServer::with_builder(
        |_| {},
        |_| {},
        move |builder| builder.tls(tls).virtual_host(b),
    );
    let config = client_config();
    let site_cert = pem_certs(&site_certs.path("rsa.crt")).remove(0);
    // `server_tls()` is the ECDSA pair.
    let server_cert = pem_certs(&server_certs.path("ec.crt")).remove(0);

    let mut c = FtpsClient::connect(srv.addr);
    c.auth_tls_named(&config, "b.example");
    assert_eq!(c.conn_mut().peer_certificate(), Some(site_cert));
    c.expect("USER bob", 331);
    c.expect("PASS pw-bob", 230);
    c.expect("QUIT", 221);

    let mut c = FtpsClient::connect(srv.addr);
    c.auth_tls_named(&config, "other.example");
    assert_eq!(c.conn_mut().peer_certificate(), Some(server_cert));
    c.expect("USER bob", 331);
    assert_eq!(c.cmd("PASS pw-bob").0, 530);
}

/// The binary: `--virtual-host NAME=USERS_FILE` and the config file's
/// `[[virtual-hosts]]` (with a banner), each site with the users of its users file.
#[test]
fn the_binary_serves_virtual_hosts_from_flags_and_the_config_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    for (user, site) in [("alice", "a"), ("bob", "b")] {
        let home = dir.join(site);
        std::fs::create_dir_all(&home).expect("home");
        std::fs::write(home.join(format!("{user}.txt")), user).expect("marker");
        let hash = hash_password(&format!("pw-{user}")).expect("hash");
        std::fs::write(
            dir.join(format!("{site}.users")),
            format!("{user}:{hash}:{}:elr\n", home.display()),
        )
        .expect("users file");
    }
    let config = dir.join("ftpdlib.toml");
    std::fs::write(
        &config,
        format!(
            "[[virtual-hosts]]\nname = \"b.example\"\nusers-file = \"{}\"\nbanner = \"Site B.\"\n",
            dir.join("b.users").display()
        ),
    )
    .expect("config file");
    let flag = format!("a.example={}", dir.join("a.users").display());
    let srv = BinServer::start(&[
        "-d",
        dir.to_str().expect("UTF-8 path"),
        "--config",
        config.to_str().expect("UTF-8 path"),
        "--virtual-host",
        &flag,
    ]);
    let mut c = Client::connect(srv.addr);
    c.expect("HOST a.example", 220);
    c.login("alice", "pw-alice");
    assert!(c.listing("NLST").contains("alice.txt"));
    c.expect("QUIT", 221);
    let mut c = Client::connect(srv.addr);
    assert_eq!(c.cmd("HOST b.example"), (220, "Site B.".to_owned()));
    c.login("bob", "pw-bob");
    c.expect("QUIT", 221);
    // Anonymous on -d serves those who name no host.
    let mut c = Client::connect(srv.addr);
    c.login("anonymous", "a@b");
    c.expect("QUIT", 221);
}

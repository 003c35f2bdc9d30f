//! File checksums: HASH, OPTS HASH and RANG (draft-bryan-ftpext-hash), XCRC, XMD5,
//! XSHA1, XSHA256 and XSHA512 (proftpd's mod_digest), against digests computed with
//! Python's hashlib and zlib.

use std::time::{Duration, Instant};

use ftpdlib::authorizers::DummyAuthorizer;
use ftpdlib::servers::FtpServer;

use crate::util::{Client, TestServer};

const FOX: &[u8] = b"The quick brown fox jumps over the lazy dog";
const FOX_SHA1: &str = "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12";
const FOX_SHA256: &str = "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592";
const FOX_SHA512: &str = "07e547d9586f6a73f73fbac0435ed76951218fb7d0c8d788a309d785436bbb64\
                          2e93a252a954f23912547d1e8a3b5ed6e1bfd7097821233fa0538f3db854fee6";
const FOX_MD5: &str = "9e107d9d372bb6826bd81d3542a419d6";

/// A server whose root holds `fox` (FOX), `my file` (FOX) and the directory `d`.
fn setup() -> TestServer {
    let srv = TestServer::start();
    std::fs::write(srv.root().join("fox"), FOX).expect("write");
    std::fs::write(srv.root().join("my file"), FOX).expect("write");
    std::fs::create_dir(srv.root().join("d")).expect("mkdir");
    srv
}

fn reply(code: u16, text: &str) -> (u16, String) {
    (code, text.to_owned())
}

#[test]
fn hash_with_every_algorithm() {
    let srv = setup();
    let mut c = srv.login();
    assert_eq!(c.cmd("OPTS HASH"), reply(200, "SHA-256"));
    assert_eq!(
        c.cmd("HASH fox"),
        reply(213, &format!("SHA-256 0-43 {FOX_SHA256} /fox"))
    );
    for (algo, digest) in [
        ("SHA-1", FOX_SHA1),
        ("SHA-512", FOX_SHA512),
        ("md5", FOX_MD5),
    ] {
        let name = algo.to_ascii_uppercase();
        assert_eq!(c.cmd(&format!("OPTS HASH {algo}")), reply(200, &name));
        assert_eq!(c.cmd("OPTS HASH"), reply(200, &name));
        assert_eq!(
            c.cmd("HASH /my file"),
            reply(213, &format!("{name} 0-43 {digest} /my file"))
        );
    }
    assert_eq!(
        c.cmd("OPTS HASH CRC32"),
        reply(501, "Unknown algorithm, current selection not changed.")
    );
    assert_eq!(c.cmd("OPTS HASH"), reply(200, "MD5"));
    // An empty file.
    std::fs::write(srv.root().join("empty"), b"").expect("write");
    assert_eq!(c.cmd("OPTS HASH SHA-1"), reply(200, "SHA-1"));
    assert_eq!(
        c.cmd("HASH empty"),
        reply(
            213,
            "SHA-1 0-0 da39a3ee5e6b4b0d3255bfef95601890afd80709 /empty"
        )
    );
    c.expect("QUIT", 221);
}

#[test]
fn rang_limits_the_next_hash() {
    let srv = setup();
    let mut c = srv.login();
    assert_eq!(
        c.cmd("RANG 4 8"),
        reply(350, "Restarting at 4. Ending at 8.")
    );
    // Other commands in between leave the range; the HASH uses it up.
    c.expect("NOOP", 200);
    let quick = "22c72aa82ce77c82e2ca65a711c79eaa4b51c57f85f91489ceeacc7b385943ba";
    assert_eq!(
        c.cmd("HASH fox"),
        reply(213, &format!("SHA-256 4-9 {quick} /fox"))
    );
    assert_eq!(
        c.cmd("HASH fox"),
        reply(213, &format!("SHA-256 0-43 {FOX_SHA256} /fox"))
    );
    // An end past the file stops at its end; `RANG 1 0` forgets a range.
    c.expect("RANG 0 1000", 350);
    assert_eq!(
        c.cmd("HASH fox"),
        reply(213, &format!("SHA-256 0-43 {FOX_SHA256} /fox"))
    );
    c.expect("RANG 4 8", 350);
    c.expect("RANG 1 0", 350);
    assert_eq!(
        c.cmd("HASH fox"),
        reply(213, &format!("SHA-256 0-43 {FOX_SHA256} /fox"))
    );
    for bad in ["RANG 5 4", "RANG 1", "RANG a b", "RANG 1 2 3", "RANG -1 5"] {
        assert_eq!(c.cmd(bad), reply(501, "Invalid RANG parameters."), "{bad}");
    }
    // A range starting past the end of the file.
    c.expect("RANG 43 50", 350);
    assert_eq!(c.cmd("HASH fox"), reply(501, "Invalid byte range."));
    c.expect("QUIT", 221);
}

#[test]
fn the_x_commands_answer_upper_case_hex() {
    let srv = setup();
    let mut c = srv.login();
    for (cmd, digest) in [
        ("XCRC", "414FA339"),
        ("XMD5", FOX_MD5),
        ("XSHA1", FOX_SHA1),
        ("XSHA256", FOX_SHA256),
        ("XSHA512", FOX_SHA512),
    ] {
        let upper = digest.to_ascii_uppercase();
        assert_eq!(c.cmd(&format!("{cmd} fox")), reply(250, &upper), "{cmd}");
        assert_eq!(
            c.cmd(&format!("{cmd} my file")),
            reply(250, &upper),
            "{cmd}"
        );
        assert_eq!(
            c.cmd(&format!("{cmd} fox 0 43")),
            reply(250, &upper),
            "{cmd}"
        );
    }
    // Offsets: start, then the end (the byte after the last one).
    assert_eq!(c.cmd("XCRC fox 4 9"), reply(250, "8DC71ED7"));
    assert_eq!(
        c.cmd("XMD5 my file 4"),
        reply(250, "BC65894EE30BFFB0006D084F5A4B3AE3")
    );
    for bad in ["XCRC fox 9 4", "XCRC fox 0 44", "XSHA1 fox 50"] {
        assert_eq!(c.cmd(bad), reply(501, "Invalid byte range."), "{bad}");
    }
    c.expect("QUIT", 221);
}

#[test]
fn errors() {
    let srv = setup();
    let mut c = srv.client();
    assert_eq!(
        c.cmd("HASH fox"),
        reply(530, "Log in with USER and PASS first.")
    );
    c.login("user", "12345");
    for cmd in ["HASH", "XCRC", "XSHA256"] {
        assert_eq!(c.cmd(&format!("{cmd} nothere")).0, 550, "{cmd}");
        assert_eq!(c.cmd(&format!("{cmd} d")).0, 550, "{cmd}");
        assert_eq!(
            c.cmd(&format!("{cmd} ../../etc/passwd")).0,
            550,
            "{cmd} outside"
        );
        assert_eq!(
            c.cmd(cmd),
            reply(501, "Syntax error: command needs an argument.")
        );
    }
    assert_eq!(
        c.cmd("RANG"),
        reply(501, "Syntax error: command needs an argument.")
    );
    c.expect("QUIT", 221);
}

#[test]
fn reading_needs_the_r_permission() {
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::write(home.path().join("fox"), FOX).expect("write");
    let mut auth = DummyAuthorizer::new();
    auth.add_user("u", "p", home.path(), "el", None, None)
        .expect("user");
    let server = FtpServer::builder(auth)
        .spawn("127.0.0.1:0")
        .expect("server");
    let mut c = Client::connect(server.local_addr());
    c.login("u", "p");
    for cmd in ["HASH fox", "XCRC fox", "XMD5 fox", "XSHA1 fox 0 3"] {
        assert_eq!(c.cmd(cmd), reply(550, "Not enough privileges."), "{cmd}");
    }
    c.expect("QUIT", 221);
}

#[test]
fn feat_and_help() {
    let srv = setup();
    let mut c = srv.login();
    let (code, feat) = c.cmd("FEAT");
    assert_eq!(code, 211);
    assert!(
        feat.contains("\n HASH SHA-1;SHA-256*;SHA-512;MD5\n"),
        "{feat}"
    );
    assert!(feat.contains("\n RANG STREAM\n"), "{feat}");
    c.expect("OPTS HASH MD5", 200);
    let (_, feat) = c.cmd("FEAT");
    assert!(
        feat.contains("\n HASH SHA-1;SHA-256;SHA-512;MD5*\n"),
        "{feat}"
    );
    assert_eq!(
        c.cmd("HELP HASH"),
        reply(
            214,
            "Syntax: HASH <SP> file-name (get the file's checksum)."
        )
    );
    assert_eq!(
        c.cmd("HELP xcrc"),
        reply(
            214,
            "Syntax: XCRC <SP> file-name [start [end]] (get the file's CRC-32)."
        )
    );
    let (_, help) = c.cmd("HELP");
    for name in [
        "HASH", "RANG", "XCRC", "XMD5", "XSHA1", "XSHA256", "XSHA512",
    ] {
        assert!(help.split_whitespace().any(|w| w == name), "{name}: {help}");
    }
    c.expect("QUIT", 221);
}

/// A large file is hashed off the loop: another session is served meanwhile, and a
/// client that goes away stops the worker (the next HASH, queued behind it on the one
/// checksum thread, is answered long before a whole 4 GiB would have been read).
#[test]
fn a_large_hash_does_not_block_the_loop_and_stops_with_its_client() {
    let srv = setup();
    let big = std::fs::File::create(srv.root().join("big")).expect("create");
    big.set_len(4 << 30).expect("sparse file");
    drop(big);
    let mut hasher = srv.login();
    hasher.send("HASH big");
    let mut other = srv.login();
    let started = Instant::now();
    other.expect("NOOP", 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "NOOP took {:?}",
        started.elapsed()
    );
    // Gone mid-hash.
    drop(hasher);
    let started = Instant::now();
    assert_eq!(
        other.cmd("XCRC fox"),
        reply(250, "414FA339"),
        "after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the cancelled hash held the worker for {:?}",
        started.elapsed()
    );
    other.expect("QUIT", 221);
}

/// ABOR stops a checksum: the HASH is answered 426 and the ABOR 226 at once, the session
/// goes on, and the stopped job's result never answers a later HASH.
#[test]
fn abor_stops_a_running_hash() {
    let srv = setup();
    let big = std::fs::File::create(srv.root().join("big")).expect("create");
    big.set_len(4 << 30).expect("sparse file");
    drop(big);
    let mut c = srv.login();
    c.send("HASH big");
    let started = Instant::now();
    c.send("ABOR");
    assert_eq!(c.reply().0, 426);
    assert_eq!(c.reply().0, 226);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "ABOR answered after {:?}",
        started.elapsed()
    );
    c.expect("NOOP", 200);
    // The worker is free again (the next job queues behind the stopped one until it
    // notices the flag) and the reply is this file's.
    assert_eq!(c.cmd("XCRC fox"), reply(250, "414FA339"));
    // A command sent during a hash waits for the checksum's reply, then runs.
    c.send("XCRC fox");
    c.send("NOOP");
    assert_eq!(c.reply(), reply(250, "414FA339"));
    assert_eq!(c.reply().0, 200);
    c.expect("QUIT", 221);
}

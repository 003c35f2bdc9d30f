//! Hostile input on the control connection: endless lines, binary garbage, NUL bytes,
//! lone LFs, and many pipelined commands. One bad session never disturbs another.

use std::io::Write;

use crate::util::{random_bytes, TestServer};

#[test]
fn a_megabyte_without_crlf_is_refused_and_only_that_session_closes() {
    let srv = TestServer::start();
    let mut other = srv.login();
    let mut c = srv.client();
    let mut w = c.stream_clone();
    // The server closes while this is still being written: the write may fail.
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&vec![b'A'; 1 << 20]);
    });
    let replies = c.expect_closed();
    assert_eq!(replies, [(500, "Command too long.".to_owned())]);
    writer.join().expect("writer thread");
    other.expect("NOOP", 200);
    other.expect("PWD", 257);
}

#[test]
fn a_line_just_under_the_cap_is_parsed() {
    let srv = TestServer::start();
    let mut c = srv.login();
    let name = "a".repeat(2000);
    assert_eq!(c.cmd(&format!("SIZE {name}")).0, 550);
    c.expect("NOOP", 200);
}

#[test]
fn binary_garbage_gets_500_and_the_session_goes_on() {
    let srv = TestServer::start();
    let mut c = srv.login();
    for seed in 1..=50u64 {
        let mut line: Vec<u8> = random_bytes(200, seed)
            .into_iter()
            .filter(|b| *b != b'\r' && *b != b'\n')
            .collect();
        // A first byte outside ASCII: the word can never name a command.
        line[0] = 0xff;
        line.extend_from_slice(b"\r\n");
        c.send_raw(&line);
        let (code, text) = c.reply();
        assert_eq!(code, 500, "garbage #{seed} got {code} {text:?}");
        assert!(text.ends_with("not understood."), "{text:?}");
    }
    c.expect("NOOP", 200);
    c.expect("PWD", 257);
}

#[test]
fn unknown_commands_get_500() {
    let srv = TestServer::start();
    let mut c = srv.client();
    assert_eq!(
        c.cmd("XYZZY"),
        (500, "Command \"XYZZY\" not understood.".into())
    );
    assert_eq!(
        c.cmd("xyzzy plugh"),
        (500, "Command \"XYZZY\" not understood.".into())
    );
    assert_eq!(c.cmd(""), (500, "Command \"\" not understood.".into()));
    assert_eq!(
        c.cmd("SITE FOO"),
        (500, "Command \"SITE FOO\" not understood.".into())
    );
    c.login("user", "12345");
    c.expect("NOOP", 200);
}

#[test]
fn nul_bytes_get_500() {
    let srv = TestServer::start();
    let mut c = srv.login();
    for line in [
        &b"NO\0OP\r\n"[..],
        b"NOOP\0\r\n",
        b"\0\r\n",
        b"\0\0\0\0\0\0\r\n",
    ] {
        c.send_raw(line);
        let (code, text) = c.reply();
        assert_eq!(code, 500, "{line:?} got {text:?}");
    }
    c.expect("NOOP", 200);
}

#[test]
fn a_lone_lf_does_not_end_a_command() {
    let srv = TestServer::start();
    let mut c = srv.login();
    // Only CRLF ends a line: this is one unknown command, "NOOP<LF>NOOP".
    c.send_raw(b"NOOP\nNOOP\r\n");
    let (code, text) = c.reply();
    assert_eq!(code, 500, "{text:?}");
    // The LF is not echoed raw (it could pose as a line break): it becomes a space.
    assert_eq!(text, "Command \"NOOP NOOP\" not understood.");
    c.expect("NOOP", 200);
}

#[test]
fn telnet_interrupt_before_abor_is_tolerated() {
    let srv = TestServer::start();
    let mut c = srv.login();
    // IAC IP IAC DM, as clients send before ABOR.
    c.send_raw(b"\xff\xf4\xff\xf2ABOR\r\n");
    assert_eq!(c.reply(), (225, "No transfer to abort.".into()));
    c.expect("NOOP", 200);
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let srv = TestServer::start();
    let mut c = srv.login();
    let script: &[(&str, u16)] = &[
        ("NOOP", 200),
        ("SYST", 215),
        ("TYPE I", 200),
        ("PWD", 257),
        ("BOGUS", 500),
        ("MKD pipelined", 257),
        ("CWD pipelined", 250),
        ("CDUP", 250),
        ("RMD pipelined", 250),
        ("TYPE A", 200),
        ("SIZE nothere", 550),
        ("STAT", 211),
        ("HELP NOOP", 214),
        ("MODE S", 200),
        ("ALLO 10", 202),
    ];
    let rounds = 60; // 900 commands in one write
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for _ in 0..rounds {
        for (line, code) in script {
            wire.extend_from_slice(line.as_bytes());
            wire.extend_from_slice(b"\r\n");
            expected.push((*line, *code));
        }
    }
    let mut w = c.stream_clone();
    let writer = std::thread::spawn(move || w.write_all(&wire));
    for (i, (line, code)) in expected.iter().enumerate() {
        let (got, text) = c.reply();
        assert_eq!(got, *code, "reply #{i} to {line:?}: {text:?}");
    }
    writer
        .join()
        .expect("writer thread")
        .expect("one write of all commands");
    c.expect("NOOP", 200);
}

#[test]
fn nul_bytes_and_long_names_in_paths_get_550() {
    let srv = TestServer::start();
    std::fs::write(srv.root().join("a"), b"x").expect("write");
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    for line in [
        &b"SIZE a\0b\r\n"[..],
        b"MKD x\0y\r\n",
        b"CWD \0\r\n",
        b"DELE a\0\r\n",
    ] {
        c.send_raw(line);
        let (code, text) = c.reply();
        assert_eq!(code, 550, "{line:?} got {text:?}");
    }
    assert!(srv.root().join("a").exists(), "DELE a<NUL> removed a");
    let long = "d/".repeat(1000);
    assert_eq!(c.cmd(&format!("MKD {long}")).0, 550);
    let name = "n".repeat(300);
    assert_eq!(c.cmd(&format!("MKD {name}")).0, 550);
    c.expect("NOOP", 200);
}

#[test]

fn many_pipelined_commands_with_large_replies_all_get_answers() {
    let srv = TestServer::start();
    let mut c = srv.client();
    // Megabytes of replies to commands written in one go: the server must stop reading
    // while its output waits, not drop or reorder anything.
    let count = 5000;
    let wire = "HELP\r\nNOOP\r\n".repeat(count);
    let mut w = c.stream_clone();
    let writer = std::thread::spawn(move || w.write_all(wire.as_bytes()));
    for i in 0..2 * count {
        let (code, text) = match c.try_reply() {
            Ok(Some(r)) => r,
            other => panic!("reply #{i} of {}: {other:?}", 2 * count),
        };
        if i % 2 == 0 {
            assert_eq!(code, 214, "reply #{i}");
            assert!(text.ends_with("Help command successful."), "{text:?}");
        } else {
            assert_eq!(code, 200, "reply #{i}");
        }
    }
    writer.join().expect("writer").expect("write all");
    c.expect("NOOP", 200);
}

#[test]

fn a_long_line_with_its_crlf_is_refused() {
    let srv = TestServer::start();
    let mut other = srv.login();
    for len in [2049, 3000, 4000] {
        let mut c = srv.login();
        // One write: the whole line and its CRLF arrive together.
        let line = format!("SIZE {}\r\n", "a".repeat(len - 5));
        c.send_raw(line.as_bytes());
        let replies = c.expect_closed();
        assert_eq!(
            replies,
            [(500, "Command too long.".to_owned())],
            "a {len}-byte line"
        );
    }
    other.expect("NOOP", 200);
}

#[test]
fn a_line_of_2048_bytes_is_accepted() {
    let srv = TestServer::start();
    let mut c = srv.login();
    let line = format!("SIZE {}", "a".repeat(2048 - 5));
    assert_eq!(line.len(), 2048);
    assert_eq!(c.cmd(&line).0, 550);
    c.expect("NOOP", 200);
}

#[test]
fn a_fifo_is_refused_without_blocking_the_loop() {
    let srv = TestServer::start();
    let fifo = srv.root().join("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo failed");
    // Should the server block in open(2), this frees it at the end (O_RDWR on a FIFO
    // never blocks), so a failing test does not hang the suite.
    let _unblock = FifoUnblocker(fifo.clone());
    let mut c = srv.login();
    let mut other = srv.login();
    c.expect("TYPE I", 200);
    let _data = c.pasv();
    assert_eq!(c.cmd("RETR fifo"), (550, "Not a regular file.".to_owned()));
    other.expect("NOOP", 200);
    // With no reader, open(2) itself refuses: "No such device or address."
    for cmd in ["STOR fifo", "APPE fifo"] {
        let _data = c.pasv();
        assert_eq!(c.cmd(cmd).0, 550, "{cmd}");
        other.expect("NOOP", 200);
    }
    c.expect("NOOP", 200);
}

struct FifoUnblocker(std::path::PathBuf);

impl Drop for FifoUnblocker {
    fn drop(&mut self) {
        let _ = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.0);
    }
}

#[test]
fn replies_queued_when_the_client_half_closes_are_all_delivered() {
    // A client that sends all its commands, closes its sending side at once and reads
    // slowly through a small window: the server reads the end of the input while replies
    // are still queued, and must send them all (then close) rather than drop the rest,
    // which would leave the client with a reply cut off mid-line.
    let srv = TestServer::start();
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    sock.connect(&srv.addr.into()).expect("connect");
    let mut s: std::net::TcpStream = sock.into();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("read timeout");
    let helps = 3000; // about 3 MB of replies: far beyond the socket buffers
    let mut wire = b"USER user\r\nPASS 12345\r\n".to_vec();
    for _ in 0..helps {
        wire.extend_from_slice(b"HELP\r\n");
    }
    s.write_all(&wire).expect("send the commands");
    s.shutdown(std::net::Shutdown::Write).expect("half-close");
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match std::io::Read::read(&mut s, &mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("reading the replies: {e} after {} bytes", got.len()),
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.ends_with("\r\n"),
        "the last reply is cut off: {:?}",
        &text[text.len().saturating_sub(80)..]
    );
    let ends = text.lines().filter(|l| l.starts_with("214 ")).count();
    assert_eq!(
        ends,
        helps,
        "HELP replies delivered (of {} bytes)",
        got.len()
    );
    assert!(
        text.contains("\r\n230 "),
        "the login: {:?}",
        &text[..text.len().min(200)]
    );
}

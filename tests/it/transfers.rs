//! Data transfers with the blocking client: passive and active, REST, APPE, STOU, ABOR,
//! ASCII conversion, and the 425 for a transfer without a data connection.

use std::io::{Read, Write};

use crate::util::{data_accept, random_bytes, TestServer};

#[test]
fn stor_then_retr_passive_round_trips() {
    let srv = TestServer::start();
    let data = random_bytes(3 * 1024 * 1024 + 7, 11);
    let mut c = srv.login();
    c.stor("f.bin", &data);
    assert!(std::fs::read(srv.root().join("f.bin")).expect("read") == data);
    assert!(c.retr("f.bin") == data);
    // PASV (not EPSV) too.
    let d = c.pasv_v4();
    assert!(c.download("RETR f.bin", d) == data);
}

#[test]
fn stor_then_retr_active_round_trips() {
    let srv = TestServer::start();
    let data = random_bytes(1024 * 1024 + 3, 12);
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let l = c.port();
    let (code, text) = c.cmd("STOR act.bin");
    assert_eq!(code, 125, "{text}");
    let mut d = data_accept(&l);
    d.write_all(&data).expect("upload");
    drop(d);
    assert_eq!(c.reply().0, 226);
    assert!(std::fs::read(srv.root().join("act.bin")).expect("read") == data);

    let l = c.port();
    let (code, text) = c.cmd("RETR act.bin");
    assert_eq!(code, 125, "{text}");
    let mut d = data_accept(&l);
    let mut got = Vec::new();
    d.read_to_end(&mut got).expect("download");
    assert_eq!(c.reply().0, 226);
    assert!(got == data);

    // EPRT as well.
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    assert_eq!(
        c.cmd(&format!("EPRT |1|127.0.0.1|{port}|")),
        (200, "Active data connection established.".into())
    );
    let d = data_accept(&l);
    let listing = c.download("NLST", d);
    assert_eq!(listing, b"act.bin\r\n");
}

#[test]
fn empty_and_one_byte_files() {
    let srv = TestServer::start();
    let mut c = srv.login();
    c.stor("empty", b"");
    c.stor("one", b"x");
    assert_eq!(
        std::fs::metadata(srv.root().join("empty"))
            .expect("stat")
            .len(),
        0
    );
    assert_eq!(c.retr("empty"), b"");
    assert_eq!(c.retr("one"), b"x");
}

#[test]
fn transfer_without_pasv_or_port_is_425() {
    let srv = TestServer::start();
    std::fs::write(srv.root().join("f"), b"x").expect("write");
    let mut c = srv.login();
    // pyftpdlib answers 150 and waits; RFC 959 (and ftpdlib) says 425.
    for cmd in ["RETR f", "LIST", "NLST", "MLSD", "STOR g", "APPE f", "STOU"] {
        assert_eq!(c.cmd(cmd), (425, "Use PORT or PASV first.".into()), "{cmd}");
    }
    c.expect("NOOP", 200);
}

#[test]
fn stou_without_the_right_is_550_even_without_a_data_connection() {
    let srv = TestServer::start();
    let mut c = srv.client();
    c.login("anonymous", "guest@");
    // As for STOR: the permission is checked before the data connection is asked for.
    assert_eq!(c.cmd("STOR x"), (550, "Not enough privileges.".into()));
    assert_eq!(c.cmd("STOU"), (550, "Not enough privileges.".into()));
    assert_eq!(c.cmd("STOU x"), (550, "Not enough privileges.".into()));
    let names: Vec<_> = std::fs::read_dir(srv.root()).expect("read root").collect();
    assert!(names.is_empty(), "STOU created {names:?}");
}

#[test]

fn refused_uploads_touch_no_file() {
    let srv = TestServer::start();
    std::fs::write(srv.root().join("keep"), b"precious").expect("write");
    let mut c = srv.login();
    for cmd in ["STOR keep", "STOR new", "APPE new2", "STOU"] {
        assert_eq!(c.cmd(cmd).0, 425, "{cmd}");
    }
    assert_eq!(
        std::fs::read(srv.root().join("keep")).expect("read"),
        b"precious",
        "a refused STOR truncated the file"
    );
    let mut names: Vec<_> = std::fs::read_dir(srv.root())
        .expect("read root")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["keep"], "a refused upload created a file");
}

#[test]

fn stor_while_a_transfer_runs_touches_no_file() {
    let srv = TestServer::start();
    let f = std::fs::File::create(srv.root().join("huge")).expect("create");
    f.set_len(512 * 1024 * 1024).expect("set_len");
    std::fs::write(srv.root().join("keep"), b"precious").expect("write");
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let mut d = c.pasv();
    let (code, _) = c.cmd("RETR huge");
    assert!(code == 150 || code == 125);
    let mut buf = vec![0u8; 64 * 1024];
    d.read_exact(&mut buf).expect("the first bytes");
    assert_eq!(
        c.cmd("STOR keep"),
        (425, "A transfer is already in progress.".into())
    );
    let kept = std::fs::read(srv.root().join("keep")).expect("read");
    c.send("ABOR");
    assert_eq!(c.reply().0, 426);
    assert_eq!(c.reply().0, 226);
    drop(d);
    assert_eq!(kept, b"precious", "a refused STOR truncated the file");
}

#[test]
fn rest_then_retr_sends_the_tail() {
    let srv = TestServer::start();
    let data = random_bytes(100_000, 13);
    std::fs::write(srv.root().join("f"), &data).expect("write");
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    assert_eq!(
        c.cmd("REST 12345"),
        (350, "Restarting at position 12345.".into())
    );
    let d = c.pasv();
    assert!(c.download("RETR f", d) == data[12345..]);
    // REST is used once.
    assert!(c.retr("f") == data);
    // Past the end.
    c.expect("REST 200000", 350);
    let d = c.pasv();
    let (code, text) = c.cmd("RETR f");
    assert_eq!(code, 554, "{text}");
    drop(d);
    // Not in ASCII mode.
    c.expect("TYPE A", 200);
    assert_eq!(
        c.cmd("REST 10"),
        (501, "Resuming transfers not allowed in ASCII mode.".into())
    );
    c.expect("TYPE I", 200);
    assert_eq!(c.cmd("REST -1"), (501, "Invalid parameter.".into()));
    assert_eq!(c.cmd("REST abc"), (501, "Invalid parameter.".into()));
}

#[test]
fn rest_then_stor_resumes_an_upload() {
    let srv = TestServer::start();
    std::fs::write(srv.root().join("f"), b"0123456789").expect("write");
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    c.expect("REST 4", 350);
    let d = c.pasv();
    c.upload("STOR f", d, b"abcdefghij");
    assert_eq!(
        std::fs::read(srv.root().join("f")).expect("read"),
        b"0123abcdefghij"
    );
}

/// REST then STOR writes from the offset and the file ends where the upload ends (RFC
/// 959 §3.5 restarts a transfer; ftputil's tests expect this). pyftpdlib kept the old
/// tail, so a shorter upload left bytes the client never sent. Through splice(2) and
/// through the buffer alike.
#[test]
fn rest_then_stor_ends_the_file_where_the_upload_ends() {
    for zero_copy in [true, false] {
        let srv = TestServer::with(|c| c.use_sendfile = zero_copy, |_| {});
        std::fs::write(srv.root().join("f"), b"0123456789").expect("write");
        let mut c = srv.login();
        c.expect("TYPE I", 200);
        c.expect("REST 4", 350);
        let d = c.pasv();
        c.upload("STOR f", d, b"ab");
        assert_eq!(
            std::fs::read(srv.root().join("f")).expect("read"),
            b"0123ab",
            "zero copy: {zero_copy}"
        );
        assert_eq!(c.cmd("SIZE f"), (213, "6".into()));
        // An empty upload at the offset cuts the file there.
        c.expect("REST 2", 350);
        let d = c.pasv();
        c.upload("STOR f", d, b"");
        assert_eq!(std::fs::read(srv.root().join("f")).expect("read"), b"01");
        // A plain STOR still replaces the file, and APPE still appends.
        let d = c.pasv();
        c.upload("APPE f", d, b"23");
        assert_eq!(std::fs::read(srv.root().join("f")).expect("read"), b"0123");
    }
}

/// A REST + STOR cut short keeps the rest of the old file: the client resumes with
/// REST again, and the upload that completes ends the file.
#[test]
fn a_resumed_upload_cut_short_keeps_the_old_tail() {
    let srv = TestServer::start();
    let old = random_bytes(1 << 20, 31);
    std::fs::write(srv.root().join("f"), &old).expect("write");
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    c.expect("REST 100", 350);
    let mut d = c.pasv();
    let (code, _) = c.cmd("STOR f");
    assert!(code == 150 || code == 125);
    d.write_all(b"new").expect("upload");
    // A reset, not a FIN: the upload is incomplete (and what the server had not read
    // yet is lost).
    socket2::SockRef::from(&d)
        .set_linger(Some(std::time::Duration::ZERO))
        .expect("linger");
    drop(d);
    assert_eq!(c.reply().0, 426);
    let stored = std::fs::read(srv.root().join("f")).expect("read");
    assert_eq!(stored.len(), old.len());
    assert!(stored[..100] == old[..100] && stored[103..] == old[103..]);
    c.expect("REST 100", 350);
    let d = c.pasv();
    c.upload("STOR f", d, b"new!");
    let stored = std::fs::read(srv.root().join("f")).expect("read");
    assert_eq!(stored.len(), 104);
    assert!(stored[..100] == old[..100]);
    assert_eq!(&stored[100..], b"new!");
}

#[test]
fn appe_appends_and_creates() {
    let srv = TestServer::start();
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let d = c.pasv();
    c.upload("APPE log", d, b"hello");
    let d = c.pasv();
    c.upload("APPE log", d, b" world");
    assert_eq!(
        std::fs::read(srv.root().join("log")).expect("read"),
        b"hello world"
    );
    c.expect("REST 3", 350);
    let d = c.pasv();
    assert_eq!(
        c.cmd("APPE log"),
        (450, "Can't APPE while REST request is pending.".into())
    );
    drop(d);
}

#[test]
fn stou_reply_names_the_file() {
    let srv = TestServer::start();
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let d = c.pasv();
    let text = c.upload("STOU", d, b"unique");
    let name = text
        .strip_prefix("FILE: ")
        .unwrap_or_else(|| panic!("{text:?}"));
    assert!(name.starts_with("ftpd."), "{name}");
    assert_eq!(name.len(), "ftpd.".len() + 8, "{name}");
    assert_eq!(
        std::fs::read(srv.root().join(name)).expect("read"),
        b"unique"
    );

    let d = c.pasv();
    let text = c.upload("STOU report", d, b"second");
    let name = text
        .strip_prefix("FILE: ")
        .unwrap_or_else(|| panic!("{text:?}"));
    assert!(name.starts_with("report."), "{name}");
    assert_eq!(name.len(), "report.".len() + 8, "{name}");
    assert_eq!(
        std::fs::read(srv.root().join(name)).expect("read"),
        b"second"
    );

    c.expect("REST 1", 350);
    let d = c.pasv();
    assert_eq!(
        c.cmd("STOU"),
        (450, "Can't STOU while REST request is pending.".into())
    );
    drop(d);
}

#[test]
fn abor_during_a_large_retr() {
    let srv = TestServer::start();
    // Sparse: large enough never to fit in the socket buffers.
    let f = std::fs::File::create(srv.root().join("huge")).expect("create");
    f.set_len(512 * 1024 * 1024).expect("set_len");
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let mut d = c.pasv();
    let (code, _) = c.cmd("RETR huge");
    assert!(code == 150 || code == 125);
    let mut buf = vec![0u8; 64 * 1024];
    d.read_exact(&mut buf).expect("the first bytes");
    c.send("ABOR");
    assert_eq!(c.reply(), (426, "Transfer aborted via ABOR.".into()));
    assert_eq!(c.reply(), (226, "ABOR command successful.".into()));
    // The data connection is closed by the server (EOF or a reset after the buffered part).
    let mut sink = vec![0u8; 1 << 20];
    let mut drained = 0u64;
    loop {
        match d.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n as u64,
        }
        assert!(
            drained < 512 * 1024 * 1024,
            "the transfer went on after ABOR"
        );
    }
    c.expect("NOOP", 200);
    std::fs::write(srv.root().join("small"), b"after").expect("write");
    assert_eq!(c.retr("small"), b"after");
}

#[test]
fn abor_without_a_transfer() {
    let srv = TestServer::start();
    let mut c = srv.login();
    assert_eq!(c.cmd("ABOR"), (225, "No transfer to abort.".into()));
    let d = c.pasv();
    assert_eq!(
        c.cmd("ABOR"),
        (225, "ABOR command successful; data channel closed.".into())
    );
    drop(d);
    c.expect("NOOP", 200);
}

#[test]
fn ascii_mode_converts_line_ends() {
    let srv = TestServer::start();
    std::fs::write(srv.root().join("text"), b"a\nb\r\nc\n").expect("write");
    let mut c = srv.login();
    c.expect("TYPE A", 200);
    let d = c.pasv();
    assert_eq!(c.download("RETR text", d), b"a\r\nb\r\nc\r\n");
    let d = c.pasv();
    c.upload("STOR up", d, b"x\r\ny\r\n");
    assert_eq!(
        std::fs::read(srv.root().join("up")).expect("read"),
        b"x\ny\n"
    );
}

/// RFC 959 §4.1.1: QUIT during a transfer keeps the connection for the transfer's
/// reply; the 226 comes first, then the 221, then the close (pyftpdlib sent the 221 at
/// once and the 226 after it).
#[test]
fn quit_during_a_download_lets_it_finish_then_221() {
    let srv = TestServer::start();
    let data = random_bytes(8 * 1024 * 1024, 14);
    std::fs::write(srv.root().join("f"), &data).expect("write");
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let mut d = c.pasv();
    let (code, _) = c.cmd("RETR f");
    assert!(code == 150 || code == 125);
    c.send("QUIT");
    // Commands after QUIT are not read.
    c.send("NOOP");
    let mut got = Vec::new();
    d.read_to_end(&mut got).expect("download");
    assert!(got == data);
    assert_eq!(
        c.expect_closed(),
        [
            (226, "Transfer complete.".to_owned()),
            (221, "Goodbye.".to_owned())
        ]
    );
}

/// QUIT during an upload: the upload completes with 226 when the client ends it, then
/// 221.
#[test]
fn quit_during_an_upload_lets_it_finish_then_221() {
    let srv = TestServer::start();
    let data = random_bytes(1024 * 1024, 15);
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let mut d = c.pasv();
    let (code, _) = c.cmd("STOR up");
    assert!(code == 150 || code == 125);
    d.write_all(&data[..1000]).expect("upload");
    c.send("QUIT");
    d.write_all(&data[1000..]).expect("upload");
    drop(d);
    assert_eq!(
        c.expect_closed(),
        [
            (226, "Transfer complete.".to_owned()),
            (221, "Goodbye.".to_owned())
        ]
    );
    assert!(std::fs::read(srv.root().join("up")).expect("read") == data);
}

/// QUIT during a download the client gives up on: the 426 first, then the 221.
#[test]
fn quit_during_a_transfer_cut_short_is_426_then_221() {
    let srv = TestServer::start();
    std::fs::write(srv.root().join("f"), random_bytes(32 * 1024 * 1024, 16)).expect("write");
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let mut d = c.pasv();
    let (code, _) = c.cmd("RETR f");
    assert!(code == 150 || code == 125);
    let mut some = [0u8; 4096];
    d.read_exact(&mut some).expect("download");
    c.send("QUIT");
    drop(d);
    let replies = c.expect_closed();
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(replies[0].0, 426, "{replies:?}");
    assert_eq!(replies[1], (221, "Goodbye.".to_owned()));
}

/// Text of CR, LF, CRLF and letters, so line ends fall on every buffer boundary.
fn crlf_soup(len: usize, seed: u64) -> Vec<u8> {
    random_bytes(len, seed)
        .into_iter()
        .map(|b| match b % 8 {
            0 => b'\r',
            1 | 2 => b'\n',
            3 => b'a',
            _ => b'b',
        })
        .collect()
}

/// A download in ASCII mode: every LF not after a CR becomes CRLF.
fn to_wire(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 2);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// An upload in ASCII mode: every CRLF becomes LF.
fn from_wire(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') {
            out.push(b'\n');
            i += 2;
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn ascii_conversion_across_buffer_boundaries() {
    for buffer in [7, 4096, 65536] {
        let srv = TestServer::with(
            |c| {
                c.ac_in_buffer_size = buffer;
                c.ac_out_buffer_size = buffer;
            },
            |_| {},
        );
        let text = crlf_soup(300_000, 15 + buffer as u64);
        std::fs::write(srv.root().join("text"), &text).expect("write");
        let mut c = srv.login();
        c.expect("TYPE A", 200);
        let d = c.pasv();
        let got = c.download("RETR text", d);
        assert!(got == to_wire(&text), "ASCII download, buffer {buffer}");
        let d = c.pasv();
        c.upload("STOR up", d, &text);
        let stored = std::fs::read(srv.root().join("up")).expect("read");
        assert!(stored == from_wire(&text), "ASCII upload, buffer {buffer}");
    }
}

#[test]
fn retr_without_sendfile_and_with_small_buffers() {
    let srv = TestServer::with(
        |c| {
            c.use_sendfile = false;
            c.ac_in_buffer_size = 1000;
            c.ac_out_buffer_size = 1000;
        },
        |_| {},
    );
    let data = random_bytes(2 * 1024 * 1024 + 1, 16);
    let mut c = srv.login();
    c.stor("f", &data);
    assert!(std::fs::read(srv.root().join("f")).expect("read") == data);
    assert!(c.retr("f") == data);
    c.expect("REST 1000000", 350);
    let d = c.pasv();
    assert!(c.download("RETR f", d) == data[1_000_000..]);
}

#[test]
fn binary_uploads_are_identical_spliced_or_copied() {
    // use_sendfile also allows splice(2) for binary uploads; both paths store the same.
    let data = random_bytes(5 * 1024 * 1024 + 3, 21);
    for zero_copy in [true, false] {
        let srv = TestServer::with(|c| c.use_sendfile = zero_copy, |_| {});
        let mut c = srv.login();
        c.stor("whole", &data);
        std::fs::write(srv.root().join("resumed"), &data[..1_000_001]).expect("write");
        c.expect("REST 1000001", 350);
        let d = c.pasv();
        c.upload("STOR resumed", d, &data[1_000_001..]);
        let d = c.pasv();
        c.upload("APPE appended", d, &data[..2_000_000]);
        let d = c.pasv();
        c.upload("APPE appended", d, &data[2_000_000..]);
        for name in ["whole", "resumed", "appended"] {
            let stored = std::fs::read(srv.root().join(name)).expect("read");
            assert!(stored == data, "{name} differs (zero copy: {zero_copy})");
        }
    }
}

/// The server's end of a download's data connection bounds the data it keeps queued but
/// unsent (TCP_NOTSENT_LOWAT, 64 KiB): found among this process's descriptors, since the
/// test server runs in it.
#[cfg(target_os = "linux")]
#[test]
fn download_socket_bounds_its_unsent_data() {
    use std::os::fd::RawFd;

    /// (local, peer) IPv4 addresses of socket `fd`, if it is a connected IPv4 socket.
    fn endpoints(fd: RawFd) -> Option<(std::net::SocketAddr, std::net::SocketAddr)> {
        let get = |peer: bool| {
            // SAFETY: sockaddr_in is plain integers, for which all zeroes is a valid value.
            let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let p = (&mut sa as *mut libc::sockaddr_in).cast::<libc::sockaddr>();
            // SAFETY: `sa` is writable for `len` bytes; on a descriptor that is not (or no
            // longer) a socket the call fails and nothing is read.
            let r = unsafe {
                if peer {
                    libc::getpeername(fd, p, &mut len)
                } else {
                    libc::getsockname(fd, p, &mut len)
                }
            };
            (r == 0 && i32::from(sa.sin_family) == libc::AF_INET).then(|| {
                let ip = std::net::Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr));
                std::net::SocketAddr::from((ip, u16::from_be(sa.sin_port)))
            })
        };
        Some((get(false)?, get(true)?))
    }

    let srv = TestServer::start();
    let big = std::fs::File::create(srv.root().join("big")).expect("create");
    big.set_len(64 << 20).expect("size");
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let mut d = c.pasv_v4();
    let (code, text) = c.cmd("RETR big");
    assert!(code == 125 || code == 150, "{code} {text}");
    let mut first = [0u8; 4096];
    d.read_exact(&mut first).expect("the download started");
    let server_end = (d.peer_addr().expect("peer"), d.local_addr().expect("local"));
    let mut lowat = None;
    for entry in std::fs::read_dir("/proc/self/fd").expect("list descriptors") {
        let Ok(fd) = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .parse::<RawFd>()
        else {
            continue;
        };
        if endpoints(fd) == Some(server_end) {
            let mut value: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: `value` is writable for `len` bytes.
            let r = unsafe {
                libc::getsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_NOTSENT_LOWAT,
                    (&mut value as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            assert_eq!(r, 0, "getsockopt");
            lowat = Some(value);
        }
    }
    assert_eq!(lowat, Some(64 << 10), "the server's end of {server_end:?}");
    drop(d);
    c.cmd("ABOR");
}

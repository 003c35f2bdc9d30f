//! The TLS transport against a real rustls client over loopback: the record buffers are
//! given back once a burst is over, a TLS 1.3 control connection leaves rustls after its
//! handshake, and bytes, key updates, ends, truncations and forged records are handled.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream as StdTcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::version::TLS12;
use rustls::{ClientConfig, ClientConnection, StreamOwned, SupportedProtocolVersion};

use super::*;

#[test]
fn an_idle_session_holds_no_record_buffers() {
    let (mut server, client) = pair();
    let mut client = client.join().expect("client thread");
    // A command and its reply, then idle.
    command(&mut server, &mut client, b"NOOP\r\n");
    reply(&mut server, &mut client, b"200 NOOP ok.\r\n");
    assert_eq!(
        server.record_buffer_bytes(),
        0,
        "an idle session keeps record buffers"
    );
    assert!(!server.wants_write());
    assert!(server.is_detached(), "rustls still holds the records");
}

#[test]
fn a_tls12_control_connection_stays_on_rustls() {
    let (mut server, client) = pair_with(TLS12_ONLY, TlsRole::Control);
    let mut client = client.join().expect("client thread");
    assert!(!server.is_detached());
    assert!(
        server.describe().starts_with("TLSv1_2"),
        "{}",
        server.describe()
    );
    command(&mut server, &mut client, b"NOOP\r\n");
    reply(&mut server, &mut client, b"200 NOOP ok.\r\n");
    assert_eq!(server.record_buffer_bytes(), 0);
}

#[test]
fn key_updates_either_way_keep_the_conversation_going() {
    let (mut server, client) = pair();
    let mut client = client.join().expect("client thread");
    assert!(server.is_detached());
    for round in 0..3 {
        // rustls's refresh asks the server to update its key too.
        client.conn.refresh_traffic_keys().expect("key update");
        let line = format!("NOOP {round}\r\n");
        command(&mut server, &mut client, line.as_bytes());
        let answer = format!("200 round {round}.\r\n");
        // Read under the server's new key: the client checks every record.
        reply(&mut server, &mut client, answer.as_bytes());
        assert_eq!(
            server.send_key_updates(),
            round + 1,
            "the server kept its key"
        );
    }
    assert!(
        server.describe().contains("TLSv1_3"),
        "{}",
        server.describe()
    );
}

#[test]
fn requests_for_a_key_update_while_the_server_is_silent_get_one() {
    let (mut server, client) = pair();
    let mut client = client.join().expect("client thread");
    // Three requests, then a command; the server answers with one update before its reply.
    for _ in 0..3 {
        client.conn.refresh_traffic_keys().expect("key update");
    }
    command(&mut server, &mut client, b"NOOP\r\n");
    assert_eq!(server.send_key_updates(), 0, "an update before any reply");
    reply(&mut server, &mut client, b"200 ok.\r\n");
    assert_eq!(server.send_key_updates(), 1);
}

#[test]
fn records_arriving_a_byte_at_a_time_are_read_whole() {
    let (mut server, client) = pair();
    let mut client = client.join().expect("client thread");
    client.sock.set_nodelay(true).expect("nodelay");
    // Two commands with a key update between them, sent one byte per segment.
    let commands = b"USER anonymous\r\nPASS guest\r\n";
    client
        .conn
        .writer()
        .write_all(&commands[..16])
        .expect("encrypt");
    client.conn.refresh_traffic_keys().expect("key update");
    client
        .conn
        .writer()
        .write_all(&commands[16..])
        .expect("encrypt");
    let mut wire = Vec::new();
    while client.conn.wants_write() {
        client.conn.write_tls(&mut wire).expect("records");
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    let mut poll = |got: &mut Vec<u8>| match server.read(&mut buf) {
        Ok(n) => got.extend_from_slice(&buf[..n]),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => panic!("server read: {e}"),
    };
    for byte in &wire {
        client
            .sock
            .write_all(std::slice::from_ref(byte))
            .expect("raw write");
        poll(&mut got);
    }
    let deadline = Instant::now() + LIMIT;
    while got.len() < commands.len() {
        assert!(Instant::now() < deadline, "read {got:?}");
        poll(&mut got);
        std::thread::yield_now();
    }
    assert_eq!(got, commands);
    // The answer comes under the key the server moved to.
    reply(&mut server, &mut client, b"331 ok.\r\n");
    assert_eq!(server.send_key_updates(), 1);
}

#[test]
fn a_forged_record_ends_the_connection_with_an_alert() {
    let (mut server, client) = pair();
    let mut client = client.join().expect("client thread");
    // A well-formed application-data record with a body no key made.
    let mut forged = vec![23, 3, 3, 0, 40];
    forged.extend([0x5a; 40]);
    client.sock.write_all(&forged).expect("raw write");
    let mut buf = [0u8; 16];
    let err = loop_error(|| server.read(&mut buf));
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    // The server said why (bad_record_mac) and takes nothing more.
    let err = client.read(&mut buf).expect_err("the client read data");
    assert!(err.to_string().contains("BadRecordMac"), "{err}");
    assert_eq!(
        server
            .write(b"x")
            .expect_err("wrote after a failure")
            .kind(),
        io::ErrorKind::InvalidData
    );
}

#[test]
fn records_that_may_not_follow_a_handshake_are_refused() {
    // A plaintext handshake record, a plaintext record too large, a change_cipher_spec.
    for forged in [
        vec![22, 3, 3, 0, 4, 1, 0, 0, 0],
        vec![23, 3, 3, 0x41, 0x01],
        vec![20, 3, 3, 0, 1, 1],
    ] {
        let (mut server, client) = pair();
        let mut client = client.join().expect("client thread");
        client.sock.write_all(&forged).expect("raw write");
        let mut buf = [0u8; 16];
        let err = loop_error(|| server.read(&mut buf));
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{forged:?}");
    }
}

#[test]
fn a_large_upload_and_download_arrive_whole_and_end_cleanly() {
    let (mut server, client) = pair();
    let mut client = client.join().expect("client thread");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    // Upload: the client writes in a thread, the server reads in blocks.
    let sent = data.clone();
    let uploader = std::thread::spawn(move || {
        client.write_all(&sent).expect("upload");
        client.conn.send_close_notify();
        client.flush().expect("close_notify");
        client
    });
    let mut got = Vec::new();
    let mut block = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + LIMIT;
    loop {
        assert!(Instant::now() < deadline, "the upload did not end");
        match server.read(&mut block) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&block[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => panic!("server read: {e}"),
        }
    }
    assert!(
        got == data,
        "the upload arrived changed ({} bytes)",
        got.len()
    );
    let mut client = uploader.join().expect("uploader");
    // Download: the server writes, the client reads in a thread.
    let downloader = std::thread::spawn(move || {
        let mut got = vec![0u8; 300_000];
        client.read_exact(&mut got).expect("download");
        got
    });
    let mut at = 0;
    let deadline = Instant::now() + LIMIT;
    while at < data.len() || server.wants_write() {
        assert!(Instant::now() < deadline, "the download did not end");
        let step = if at < data.len() {
            server.write(&data[at..])
        } else {
            server.flush_tls().map(|()| 0)
        };
        match step {
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => panic!("server write: {e}"),
        }
    }
    assert!(downloader.join().expect("downloader") == data);
    assert_eq!(server.record_buffer_bytes(), 0);
}

#[test]
fn a_tcp_close_without_close_notify_is_a_truncation() {
    let (mut server, client) = pair();
    let client = client.join().expect("client thread");
    // FIN without a close_notify (a plain close could be a reset: tickets lie unread).
    client
        .sock
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    let mut buf = [0u8; 16];
    let deadline = Instant::now() + LIMIT;
    let err = loop {
        assert!(Instant::now() < deadline, "the close was not seen");
        match server.read(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Ok(n) => panic!("read {n} bytes after a bare TCP close"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
fn session_tickets_go_out_with_the_first_reply() {
    // A login's client sends its Finished and USER together; the session tickets the
    // Finished brings wait for the 331, to leave in one send with it.
    let tls = crate::fuzzing::tls_config();
    let provider = Arc::clone(tls.server_config.crypto_provider());
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client = std::thread::spawn(move || {
        let mut client = connect_client(addr, provider, rustls::ALL_VERSIONS);
        client.write_all(b"USER a\r\n").expect("client write");
        let mut reply = [0u8; 8];
        client.read_exact(&mut reply).expect("client read");
        (reply, client.conn.tls13_tickets_received())
    });
    let (tcp, _) = listener.accept().expect("accept");
    tcp.set_nonblocking(true).expect("nonblocking");
    let mut server = Transport::tls(
        TcpStream::from_std(tcp),
        &tls.server_config,
        &[9; TOKEN_LEN],
        TlsRole::Control,
    )
    .expect("server TLS");
    let mut line = [0u8; 64];
    let n = until(|| server.read(&mut line));
    assert_eq!(&line[..n], b"USER a\r\n");
    assert!(!server.is_handshaking());
    assert!(
        server.wants_write(),
        "the tickets went out before the reply"
    );
    until(|| server.write(b"331 ok\r\n"));
    until(|| server.flush().map(|()| 0));
    let (reply, tickets) = client.join().expect("client thread");
    assert_eq!(&reply, b"331 ok\r\n");
    assert_eq!(tickets, 2, "the tickets came before the reply");
}

// A download whose records the server seals itself: a rustls client reads every byte, through
// key updates (one every 5 records here, as at the suite's limit), records of every size
// (a source that hands out 10,000 bytes a read), and the close_notify at the end.
#[test]
fn a_download_sealed_by_the_server_arrives_whole_through_key_updates() {
    let (mut server, client) = pair_as(TlsRole::Data);
    let mut client = client.join().expect("client thread");
    server.seal_sending().expect("seal");
    assert!(
        server.describe().contains("sealed by the server"),
        "{}",
        server.describe()
    );
    server.rekey_every(5);
    let data: Vec<u8> = (0..700_000u32).map(|i| (i * 13 % 253) as u8).collect();
    let downloader = std::thread::spawn(move || {
        let mut got = Vec::new();
        client.read_to_end(&mut got).map(|_| got)
    });
    let (whole, trickled) = data.split_at(400_000);
    let mut src = whole;
    let mut at = 0;
    let deadline = Instant::now() + LIMIT;
    while at < data.len() {
        assert!(Instant::now() < deadline, "the download did not end");
        let step = if at < whole.len() {
            server.write_from(&mut src, 100_000).expect("sealed")
        } else {
            let mut short = Trickle(&trickled[at - whole.len()..]);
            server.write_from(&mut short, 1 << 20).expect("sealed")
        };
        match step {
            Ok(0) => panic!("the source ended early"),
            Ok(n) => at += n,
            Err(WriteFromError::Socket(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::yield_now()
            }
            Err(e) => panic!("server write: {e:?}"),
        }
    }
    server.send_close_notify();
    while server.wants_write() {
        assert!(Instant::now() < deadline, "the close_notify was not sent");
        server.flush_tls().expect("flush");
        std::thread::yield_now();
    }
    let got = downloader.join().expect("downloader").expect("a clean end");
    assert!(
        got == data,
        "the download arrived changed ({} bytes)",
        got.len()
    );
    let mut buf = [0u8; 8];
    assert_eq!(
        server.read(&mut buf).expect_err("reads nothing").kind(),
        io::ErrorKind::Unsupported
    );
}

// Only a data connection hands its keys over: a control connection keeps reading commands.
#[test]
fn a_control_connection_is_never_sealed() {
    let (mut server, _client) = pair();
    server.seal_sending().expect("no-op");
    assert!(server.write_from(&mut &b"x"[..], 1).is_none());
}

// The transfer engine fills an upload's block from the socket before writing it: a read
// that ends where the records one read(2) brought end is not a block of its own.
#[test]
fn an_upload_block_is_filled_from_the_socket_before_it_is_written() {
    use crate::handlers::transfers::{Progress, Transfer};
    use crate::handlers::Job;
    let (mut server, client) = pair_as(TlsRole::Data);
    let mut client = client.join().expect("client thread");
    let data: Vec<u8> = (0..120_000u32).map(|i| (i % 239) as u8).collect();
    let (first, second) = data.split_at(60_000);
    // Six records of 10,000 bytes; the server's record buffer takes them all with the
    // first 7,000 bytes read.
    send_records(&mut client, &server, first);
    let mut head = [0u8; 7_000];
    assert_eq!(until(|| server.read(&mut head)), 7_000);
    // Six more wait in the socket, behind the five and a half in the record buffer.
    send_records(&mut client, &server, second);
    let writes = Written::default();
    let file = crate::filesystems::FsFile::custom(Recorder(Arc::clone(&writes)));
    let job = Job::Receive {
        file,
        ascii: false,
        cut_tail: false,
        meter: None,
        pooled: false,
    };
    let mut transfer = Transfer::new(job, false, 65_536, 65_536, None);
    let mut moved = 0;
    let progress = transfer.pump(&mut server, &mut moved, 1 << 30);
    assert!(matches!(progress, Ok(Progress::Blocked)));
    assert_eq!(moved, 113_000);
    let (sizes, written) = writes.lock().expect("writes").clone();
    assert_eq!(sizes, [65_536, 113_000 - 65_536], "the file's writes");
    assert!(written == data[7_000..], "the upload arrived changed");
}

// An upload whose records the server opens where they arrived: a rustls client sends
// records of every size (1 byte to 16 KiB), key updates (each asking for the server's), and
// a close_notify; the server reads blocks in place, none larger than asked, and gets every
// byte, then the end.
#[test]
fn an_upload_opened_in_place_arrives_whole_through_key_updates() {
    let (mut server, client) = pair_as(TlsRole::Data);
    let mut client = client.join().expect("client thread");
    server.open_receiving().expect("hand-over");
    assert!(server.is_detached());
    let data: Vec<u8> = (0..700_000u32).map(|i| (i * 11 % 247) as u8).collect();
    let sent = data.clone();
    let uploader = std::thread::spawn(move || {
        let sizes = [1usize, 16_384, 700, 10_000, 16_000, 3, 9_999];
        let mut at = 0;
        for (i, size) in sizes.iter().cycle().enumerate() {
            if at == sent.len() {
                break;
            }
            let n = (*size).min(sent.len() - at);
            client.write_all(&sent[at..at + n])?;
            at += n;
            if i % 5 == 4 {
                client
                    .conn
                    .refresh_traffic_keys()
                    .map_err(io::Error::other)?;
            }
        }
        client.conn.send_close_notify();
        client.flush()?;
        Ok::<_, io::Error>(client)
    });
    let mut got = Vec::new();
    let deadline = Instant::now() + LIMIT;
    loop {
        assert!(Instant::now() < deadline, "the upload did not end");
        match server
            .read_in_place(65_536)
            .expect("an upload's connection")
        {
            Ok([]) => break,
            Ok(ready) => {
                assert!(ready.len() <= 65_536, "a block of {}", ready.len());
                got.extend_from_slice(ready);
                let n = ready.len();
                server.consume_in_place(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => panic!("server read: {e}"),
        }
    }
    uploader
        .join()
        .expect("uploader")
        .expect("the client's side");
    assert!(
        got == data,
        "the upload arrived changed ({} bytes)",
        got.len()
    );
}

// The transfer engine writes an in-place upload to its file from the records' buffer, a
// block at a time: as many whole records as fit in 64 KiB (six of 10,000 bytes), then the
// end of the stream at the client's close_notify.
#[test]
fn an_upload_opened_in_place_is_written_a_block_at_a_time() {
    use crate::handlers::transfers::Progress;
    let (mut server, client) = pair_as(TlsRole::Data);
    let mut client = client.join().expect("client thread");
    server.open_receiving().expect("hand-over");
    let data: Vec<u8> = (0..120_000u32).map(|i| (i % 241) as u8).collect();
    send_records(&mut client, &server, &data);
    let (writes, mut transfer) = recorded_upload();
    let mut moved = 0;
    let progress = transfer.pump(&mut server, &mut moved, 1 << 30);
    assert!(matches!(progress, Ok(Progress::Blocked)), "{progress:?}");
    assert_eq!(moved, 120_000);
    let (sizes, written) = writes.lock().expect("writes").clone();
    assert_eq!(sizes, [60_000, 60_000], "the file's writes");
    assert!(written == data, "the upload arrived changed");
    client.conn.send_close_notify();
    client.flush().expect("close_notify");
    let deadline = Instant::now() + LIMIT;
    loop {
        assert!(Instant::now() < deadline, "the end was not seen");
        match transfer.pump(&mut server, &mut moved, 1 << 30) {
            Ok(Progress::Done) => break,
            Ok(Progress::Blocked) => std::thread::yield_now(),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(moved, 120_000);
}

// A TCP close without close_notify cuts an in-place upload short: what arrived before it
// is written, then the transfer fails as truncated. A forged record fails it too, with the
// alert that says why.
#[test]
fn an_upload_opened_in_place_ends_badly_on_a_bare_close_or_a_forged_record() {
    use crate::handlers::transfers::Progress;
    use crate::handlers::CloseReason;
    for forge in [false, true] {
        let (mut server, client) = pair_as(TlsRole::Data);
        let mut client = client.join().expect("client thread");
        server.open_receiving().expect("hand-over");
        let data = vec![7u8; 30_000];
        send_records(&mut client, &server, &data);
        if forge {
            let mut forged = vec![23, 3, 3, 0, 40];
            forged.extend([0x5a; 40]);
            client.sock.write_all(&forged).expect("raw write");
        } else {
            client
                .sock
                .shutdown(std::net::Shutdown::Write)
                .expect("shutdown");
        }
        let (writes, mut transfer) = recorded_upload();
        let mut moved = 0;
        let deadline = Instant::now() + LIMIT;
        let reason = loop {
            assert!(Instant::now() < deadline, "the upload did not fail");
            match transfer.pump(&mut server, &mut moved, 1 << 30) {
                Ok(Progress::Blocked) => std::thread::yield_now(),
                Err(reason) => break reason,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(moved, 30_000, "forged: {forge}");
        assert!(writes.lock().expect("writes").1 == data);
        if forge {
            assert!(
                matches!(reason, CloseReason::Network(ref e) if e.kind() == io::ErrorKind::InvalidData),
                "{reason:?}"
            );
            let mut buf = [0u8; 16];
            let err = client.read(&mut buf).expect_err("the client read data");
            assert!(err.to_string().contains("BadRecordMac"), "{err}");
        } else {
            assert!(matches!(reason, CloseReason::TlsTruncated), "{reason:?}");
        }
    }
}

/// A binary upload's transfer into a file that notes its writes.
fn recorded_upload() -> (Written, crate::handlers::transfers::Transfer) {
    let writes = Written::default();
    let file = crate::filesystems::FsFile::custom(Recorder(Arc::clone(&writes)));
    let job = crate::handlers::Job::Receive {
        file,
        ascii: false,
        cut_tail: false,
        meter: None,
        pooled: false,
    };
    let transfer = crate::handlers::transfers::Transfer::new(job, false, 65_536, 65_536, None);
    (writes, transfer)
}

/// Sends `data` in records of 10,000 bytes and waits until they are in the server's socket.
fn send_records(client: &mut Client, server: &Transport, data: &[u8]) {
    for piece in data.chunks(10_000) {
        client.write_all(piece).expect("client write");
    }
    client.flush().expect("client flush");
    let on_wire = data.len() + data.len().div_ceil(10_000) * 22;
    let deadline = Instant::now() + LIMIT;
    let mut peek = vec![0u8; on_wire + 1];
    while server.tcp().peek(&mut peek).unwrap_or(0) < on_wire {
        assert!(Instant::now() < deadline, "the records did not arrive");
        std::thread::yield_now();
    }
}

/// A file that notes the size of each write, and what was written.
type Written = Arc<std::sync::Mutex<(Vec<usize>, Vec<u8>)>>;

struct Recorder(Written);

impl Read for Recorder {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut written = self.0.lock().expect("writes");
        written.0.push(buf.len());
        written.1.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Seek for Recorder {
    fn seek(&mut self, _: io::SeekFrom) -> io::Result<u64> {
        crate::filesystems::FileData::size(self)
    }
}

impl crate::filesystems::FileData for Recorder {
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.lock().expect("writes").1.len() as u64)
    }
}

/// A source that hands out at most 10,000 bytes a read, into one buffer.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(10_000);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

type Client = StreamOwned<ClientConnection, StdTcpStream>;

/// A server transport over loopback and a client thread that finishes the handshake.
fn pair() -> (Transport, std::thread::JoinHandle<Client>) {
    pair_with(rustls::ALL_VERSIONS, TlsRole::Control)
}

/// [`pair`], the server's side in `role`.
fn pair_as(role: TlsRole) -> (Transport, std::thread::JoinHandle<Client>) {
    pair_with(rustls::ALL_VERSIONS, role)
}

/// `pair`, the client offering `versions`, the server's side in `role`.
fn pair_with(
    versions: &'static [&'static SupportedProtocolVersion],
    role: TlsRole,
) -> (Transport, std::thread::JoinHandle<Client>) {
    let tls = crate::fuzzing::tls_config();
    let provider = Arc::clone(tls.server_config.crypto_provider());
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client = std::thread::spawn(move || {
        let mut client = connect_client(addr, provider, versions);
        while client.conn.is_handshaking() {
            client
                .conn
                .complete_io(&mut client.sock)
                .expect("client handshake");
        }
        client
    });
    let (tcp, _) = listener.accept().expect("accept");
    tcp.set_nonblocking(true).expect("nonblocking");
    let mut server = Transport::tls(
        TcpStream::from_std(tcp),
        &tls.server_config,
        &[9; TOKEN_LEN],
        role,
    )
    .expect("server TLS");
    let deadline = Instant::now() + LIMIT;
    while !server.handshake().expect("server handshake") {
        assert!(Instant::now() < deadline, "the handshake did not end");
        std::thread::yield_now();
    }
    // Session tickets go out after the handshake.
    while server.wants_write() {
        assert!(Instant::now() < deadline, "the tickets were not sent");
        server.flush_tls().expect("tickets");
        std::thread::yield_now();
    }
    (server, client)
}

/// A rustls client connected to `addr` (its handshake not started), offering `versions`
/// and accepting any certificate.
fn connect_client(
    addr: std::net::SocketAddr,
    provider: Arc<rustls::crypto::CryptoProvider>,
    versions: &'static [&'static SupportedProtocolVersion],
) -> Client {
    let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(crate::testing::any_certificate(provider))
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("name");
    let conn = ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = StdTcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(LIMIT)).expect("timeout");
    StreamOwned::new(conn, tcp)
}

/// The client sends `line`; the server reads it whole.
fn command(server: &mut Transport, client: &mut Client, line: &[u8]) {
    client.write_all(line).expect("client write");
    let mut got = [0u8; 64];
    let n = until(|| server.read(&mut got));
    assert_eq!(&got[..n], line);
}

/// The server sends `line`; the client reads it whole.
fn reply(server: &mut Transport, client: &mut Client, line: &[u8]) {
    until(|| server.write(line));
    until(|| server.flush().map(|()| 0));
    let mut got = vec![0u8; line.len()];
    client.read_exact(&mut got).expect("client read");
    assert_eq!(got, line);
}

/// Repeats a non-blocking call until it fails with something else than `WouldBlock`.
fn loop_error(mut f: impl FnMut() -> io::Result<usize>) -> io::Error {
    let deadline = Instant::now() + LIMIT;
    loop {
        assert!(Instant::now() < deadline, "no error");
        match f() {
            Ok(n) => panic!("read {n} bytes"),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => return e,
        }
    }
}

/// Repeats a non-blocking call until it stops saying `WouldBlock`.
fn until(mut f: impl FnMut() -> io::Result<usize>) -> usize {
    let deadline = Instant::now() + LIMIT;
    loop {
        assert!(Instant::now() < deadline, "no progress");
        match f() {
            Ok(n) => return n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

static TLS12_ONLY: &[&SupportedProtocolVersion] = &[&TLS12];

const LIMIT: Duration = Duration::from_secs(10);

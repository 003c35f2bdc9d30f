//! A TLS 1.3 connection after its handshake, when the channel protects the records itself:
//! the fuzzer's bytes script a rustls client over loopback TCP (data, key updates, records
//! split anywhere, bytes flipped, bytes of its own, replies from the server), against a
//! control connection (`tls_records`) or an upload's data connection whose records are
//! opened in place (`tls_upload_records`).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use super::session::tls_config;
use crate::handlers::tls::{TlsRole, Transport, TOKEN_LEN};

/// Runs one scripted client against a fresh server-side transport. Asserts that a TLS 1.3
/// control connection leaves rustls after its handshake; that the server reads exactly what
/// the client sent, in order, unless the stream was tampered with (then a prefix of it,
/// and an error or a wait for the rest: never a panic, more bytes, or a hang); that the
/// client reads the server's replies intact; and that a close_notify ends the stream.
pub fn tls_records(data: &[u8]) {
    run_script(data, TlsRole::Control);
}

/// [`tls_records`] against an upload's data connection, read in place
/// (`Transport::read_in_place`) in blocks of varying sizes: the same assertions.
pub fn tls_upload_records(data: &[u8]) {
    run_script(data, TlsRole::Data);
}

fn run_script(data: &[u8], role: TlsRole) {
    let Some(mut pair) = Pair::connect(role) else {
        return;
    };
    assert!(
        pair.server.is_detached(),
        "a TLS 1.3 connection stayed on rustls"
    );
    let mut script = data.iter().copied();
    let mut sent = Vec::new();
    let mut tampered = false;
    while let Some(op) = script.next() {
        let len = usize::from(script.next().unwrap_or(0));
        let bytes: Vec<u8> = script.by_ref().take(len).collect();
        match op % 6 {
            // Application data, in records the client makes.
            0 => {
                pair.client_write(&bytes);
                sent.extend_from_slice(&bytes);
                pair.flush_client(&[]);
            }
            // A key update (rustls asks the server for one too).
            1 => {
                if pair.client.refresh_traffic_keys().is_ok() {
                    pair.flush_client(&[]);
                }
            }
            // The client's records cut into pieces of the given sizes.
            2 => {
                pair.client_write(&bytes);
                sent.extend_from_slice(&bytes);
                pair.flush_client(&bytes);
            }
            // A bit of the client's next records flipped.
            3 => {
                pair.client_write(&bytes);
                sent.extend_from_slice(&bytes);
                let mut wire = pair.client_records();
                let at = len % wire.len().max(1);
                if let Some(b) = wire.get_mut(at) {
                    *b ^= 1 << (len % 8);
                    tampered = true;
                }
                pair.send_raw(&wire);
            }
            // Bytes no key made.
            4 => {
                if !bytes.is_empty() {
                    tampered = true;
                    pair.send_raw(&bytes);
                }
            }
            // A reply from the server, which the client must read intact.
            _ => {
                if !tampered && !pair.server_failed {
                    pair.reply(&bytes);
                }
            }
        }
        pair.server_read();
        assert!(
            sent.starts_with(&pair.received),
            "the server read bytes the client did not send"
        );
        assert!(
            tampered || !pair.server_failed,
            "the server failed on an honest stream: {:?}",
            pair.failure
        );
    }
    // The end: close_notify, then the server must see the end of the stream.
    pair.client.send_close_notify();
    pair.flush_client(&[]);
    let deadline = Instant::now() + LIMIT;
    while !pair.server_ended && !pair.server_failed && Instant::now() < deadline {
        if !pair.server_read() {
            std::thread::yield_now();
        }
        if tampered {
            // A tampered stream may wait for a record that never completes.
            break;
        }
    }
    if !tampered {
        assert!(pair.server_ended, "no end after close_notify");
        assert_eq!(pair.received, sent, "the server read other bytes");
    }
}

struct Pair {
    server: Transport,
    client: ClientConnection,
    sock: TcpStream,
    /// Reads go through `read_in_place` (an upload's connection).
    in_place: bool,
    /// Reads so far (each in-place read asks for a block size of its own).
    reads: usize,
    received: Vec<u8>,
    server_ended: bool,
    server_failed: bool,
    failure: Option<io::Error>,
}

impl Pair {
    /// A TLS 1.3 connection over loopback, its handshake done. `None` when the machine
    /// cannot give a socket (the input is skipped, not failed).
    fn connect(role: TlsRole) -> Option<Pair> {
        let tls = tls_config();
        let provider = Arc::clone(tls.server_config.crypto_provider());
        let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .ok()?
            .dangerous()
            .with_custom_certificate_verifier(crate::testing::any_certificate(provider))
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").ok()?;
        let mut client = ClientConnection::new(Arc::new(config), name).ok()?;
        let listener = TcpListener::bind("127.0.0.1:0").ok()?;
        let mut sock = TcpStream::connect(listener.local_addr().ok()?).ok()?;
        let (accepted, _) = listener.accept().ok()?;
        accepted.set_nonblocking(true).ok()?;
        sock.set_nonblocking(true).ok()?;
        sock.set_nodelay(true).ok()?;
        let mut server = Transport::tls(
            ioloop::mio::net::TcpStream::from_std(accepted),
            &tls.server_config,
            &[7; TOKEN_LEN],
            role,
        )
        .ok()?;
        let deadline = Instant::now() + LIMIT;
        loop {
            assert!(Instant::now() < deadline, "the handshake did not end");
            while client.wants_write() {
                if client.write_tls(&mut sock).is_err() {
                    break;
                }
            }
            let server_done = server.handshake().expect("server handshake");
            let _ = server.flush_tls();
            match client.read_tls(&mut sock) {
                Ok(_) => {
                    client.process_new_packets().expect("client handshake");
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("client read: {e}"),
            }
            if server_done && !client.is_handshaking() && !client.wants_write() {
                break;
            }
            std::thread::yield_now();
        }
        let in_place = role == TlsRole::Data;
        if in_place {
            server.open_receiving().expect("the upload's hand-over");
        }
        Some(Pair {
            server,
            client,
            sock,
            in_place,
            reads: 0,
            received: Vec::new(),
            server_ended: false,
            server_failed: false,
            failure: None,
        })
    }

    fn client_write(&mut self, bytes: &[u8]) {
        self.client
            .writer()
            .write_all(bytes)
            .expect("client plaintext");
    }

    /// The records the client has queued.
    fn client_records(&mut self) -> Vec<u8> {
        let mut wire = Vec::new();
        while self.client.wants_write() {
            self.client.write_tls(&mut wire).expect("client records");
        }
        wire
    }

    /// Sends the client's records, cut into pieces sized by `cuts` (whole when empty).
    fn flush_client(&mut self, cuts: &[u8]) {
        let wire = self.client_records();
        let mut rest = &wire[..];
        for &cut in cuts
            .iter()
            .cycle()
            .take(if cuts.is_empty() { 0 } else { 4096 })
        {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(usize::from(cut).clamp(1, rest.len()));
            self.send_raw(piece);
            self.server_read();
            rest = tail;
        }
        self.send_raw(rest);
    }

    /// Bytes straight onto the socket, the server reading as they come.
    fn send_raw(&mut self, mut bytes: &[u8]) {
        let deadline = Instant::now() + LIMIT;
        while !bytes.is_empty() {
            assert!(Instant::now() < deadline, "the server stopped reading");
            match self.sock.write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.server_read() && self.server_failed {
                        return;
                    }
                }
                // The server closed after a failure.
                Err(_) => return,
            }
        }
    }

    /// One read by the server; whether it made progress.
    fn server_read(&mut self) -> bool {
        if self.server_ended || self.server_failed {
            return false;
        }
        self.reads += 1;
        let mut buf = [0u8; 512];
        let result = if self.in_place {
            let want = IN_PLACE_BLOCKS[self.reads % IN_PLACE_BLOCKS.len()];
            match self.server.read_in_place(want) {
                Some(Ok(ready)) => {
                    let n = ready.len().min(want);
                    self.received.extend_from_slice(&ready[..n]);
                    self.server.consume_in_place(n);
                    Ok(n)
                }
                Some(Err(e)) => Err(e),
                None => panic!("an upload's connection not read in place"),
            }
        } else {
            self.server.read(&mut buf).inspect(|&n| {
                self.received.extend_from_slice(&buf[..n]);
            })
        };
        match result {
            Ok(0) => {
                self.server_ended = true;
                true
            }
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => {
                self.server_failed = true;
                self.failure = Some(e);
                true
            }
        }
    }

    /// The server writes `bytes`; the client reads them back intact.
    fn reply(&mut self, bytes: &[u8]) {
        let deadline = Instant::now() + LIMIT;
        let mut at = 0;
        while at < bytes.len() || self.server.wants_write() {
            assert!(Instant::now() < deadline, "the reply was not sent");
            let step = if at < bytes.len() {
                self.server.write(&bytes[at..])
            } else {
                self.server.flush_tls().map(|()| 0)
            };
            match step {
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.client_read(&mut Vec::new());
                }
                Err(e) => panic!("server write: {e}"),
            }
        }
        let mut got = Vec::new();
        while got.len() < bytes.len() {
            assert!(Instant::now() < deadline, "the reply did not arrive");
            if !self.client_read(&mut got) {
                std::thread::yield_now();
            }
        }
        assert_eq!(got, bytes, "the client read another reply");
    }

    /// Reads what the client can; whether it got anything.
    fn client_read(&mut self, into: &mut Vec<u8>) -> bool {
        match self.client.read_tls(&mut self.sock) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) => panic!("client read: {e}"),
        }
        let state = self.client.process_new_packets().expect("client records");
        let n = state.plaintext_bytes_to_read();
        let mut buf = vec![0u8; n];
        self.client
            .reader()
            .read_exact(&mut buf)
            .expect("client plaintext");
        into.extend_from_slice(&buf);
        // A key update's answer goes out at once.
        let _ = self.client.write_tls(&mut self.sock);
        true
    }
}

/// The block sizes in-place reads ask for, in turn: a byte, less and more than a record,
/// an upload's block.
const IN_PLACE_BLOCKS: [usize; 5] = [65_536, 1, 700, 16_384, 40_000];

/// How long one scripted connection may take before it counts as a hang.
const LIMIT: Duration = Duration::from_secs(10);

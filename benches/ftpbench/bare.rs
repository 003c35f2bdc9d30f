//! `--bare-server PORT`: a mio loop that only accepts, greets and answers USER / PASS /
//! QUIT, with no filesystem, authorizer or timers behind it. It is the floor that
//! `benches/compare.sh` sets the FTP servers against: the CPU per login and the memory per
//! session that no server on this kernel can go below.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use mio::net::{TcpListener as MioListener, TcpStream as MioStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};

/// Serves until killed; the greeting, USER, PASS and QUIT are all it knows.
pub fn bare_server(port: u16) -> io::Result<()> {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port).into())?;
    sock.listen(4096)?;
    let mut listener = MioListener::from_std(sock.into());
    let mut poll = Poll::new()?;
    const LISTENER: Token = Token(usize::MAX);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut sess: Slab<BareSess> = Slab::new();
    let mut scratch = vec![0u8; 16 * 1024];
    eprintln!("bare login server on 127.0.0.1:{port}");
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for ev in &events {
            if ev.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let e = sess.vacant_entry();
                            let mut b = BareSess {
                                s,
                                line: Vec::new(),
                                out: Vec::new(),
                                quit: false,
                            };
                            poll.registry().register(
                                &mut b.s,
                                Token(e.key()),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            bare_write(&mut b, b"220 bare mio loop ready.\r\n");
                            e.insert(b);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            eprintln!("accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let key = ev.token().0;
            let Some(b) = sess.get_mut(key) else {
                continue;
            };
            let closed = bare_serve(b, &mut scratch);
            if closed {
                let mut b = sess.remove(key);
                let _ = poll.registry().deregister(&mut b.s);
            }
        }
    }
}

/// One session: its socket, a partial line, the replies the socket did not take yet.
struct BareSess {
    s: MioStream,
    line: Vec<u8>,
    out: Vec<u8>,
    quit: bool,
}

/// Writes now what the socket takes and queues the rest behind what is already queued.
fn bare_write(b: &mut BareSess, bytes: &[u8]) {
    let taken = if b.out.is_empty() {
        b.s.write(bytes).unwrap_or(0)
    } else {
        0
    };
    b.out.extend_from_slice(&bytes[taken..]);
}

/// Serves a session's readiness; true when it should be closed.
fn bare_serve(b: &mut BareSess, scratch: &mut [u8]) -> bool {
    while !b.out.is_empty() {
        match b.s.write(&b.out) {
            Ok(n) => {
                b.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
    if b.quit {
        return true;
    }
    loop {
        let n = match b.s.read(scratch) {
            Ok(0) => return true,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        };
        let mut data = &scratch[..n];
        while let Some(nl) = data.iter().position(|&c| c == b'\n') {
            let (head, rest) = data.split_at(nl + 1);
            data = rest;
            let joined;
            let line: &[u8] = if b.line.is_empty() {
                head
            } else {
                b.line.extend_from_slice(head);
                joined = std::mem::take(&mut b.line);
                &joined
            };
            let verb: Vec<u8> = line
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .take(4)
                .map(u8::to_ascii_uppercase)
                .collect();
            let reply: &[u8] = match verb.as_slice() {
                b"USER" => b"331 Username ok, send password.\r\n",
                b"PASS" => b"230 Login successful.\r\n",
                b"NOOP" => b"200 I successfully done nothin'.\r\n",
                b"QUIT" => {
                    b.quit = true;
                    b"221 Goodbye.\r\n"
                }
                _ => b"502 Command not implemented.\r\n",
            };
            bare_write(b, reply);
            if b.quit {
                return b.out.is_empty();
            }
        }
        if !data.is_empty() {
            b.line.extend_from_slice(data);
        }
    }
}

//! The non-blocking client: thousands of sessions on one mio poller (edge-triggered, so
//! every socket is drained until `WouldBlock`), with one shared buffer for all concurrent
//! transfers, so that the client costs far less than the server it measures. The phases
//! that drive it (log in, transfer, QUIT) are in `phase`; FTPS (`-S`) on its connections in
//! `secure`.

mod phase;
mod secure;

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};
use rustls::{ClientConfig, ClientConnection, HandshakeKind};
use socket2::{Domain, Protocol, Socket, Type};

use crate::ftp::{code_of, parse_pasv, Cfg, TESTFN};
use crate::sys;
use crate::tls::Tls;

/// What a transfer phase does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    Retr,
    Stor,
}

/// Many control and data connections on one edge-triggered mio poller, driven by one
/// thread; every concurrent workload runs on it.
pub struct Multi {
    o: Cfg,
    poll: Poll,
    events: Events,
    ready: Vec<usize>,
    cl: Vec<Client>,
    scratch: Vec<u8>,
    wbuf: Vec<u8>,
    cmds: Cmds,
    op: Op,
    size: u64,
    done: usize,
    failed: usize,
    /// Bytes moved by the last transfer phase.
    pub moved: u64,
    /// The login latencies of the last login phase, or the NOOP latencies of the last
    /// NOOP phase.
    pub lat: Vec<Duration>,
    /// With -S: the logins of the last login phase whose control connection resumed a TLS
    /// session.
    pub resumed: usize,
    errors: Vec<String>,
    /// Churn: a client QUITs as soon as it is logged in (the login is not counted as done;
    /// the QUIT is).
    quit_on_login: bool,
    /// Keep-alive: the next slice of the held clients to send a NOOP.
    noop_slice: usize,
}

impl Multi {
    pub fn new(o: Cfg) -> io::Result<Self> {
        let line = |s: String| format!("{s}\r\n").into_bytes();
        let cmds = Cmds {
            user: line(format!("USER {}", o.user)),
            pass: line(format!("PASS {}", o.pass)),
            type_i: line("TYPE I".into()),
            pasv: line("PASV".into()),
            retr: line(format!("RETR {TESTFN}")),
            stor: line(format!("STOR {TESTFN}")),
            quit: line("QUIT".into()),
            noop: line("NOOP".into()),
            auth: line("AUTH TLS".into()),
            pbsz: line("PBSZ 0".into()),
            prot: line("PROT P".into()),
        };
        Ok(Multi {
            o,
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            ready: Vec::with_capacity(4096),
            cl: Vec::new(),
            scratch: vec![0; MULTI_BUF],
            wbuf: vec![b'x'; MULTI_BUF],
            cmds,
            op: Op::Retr,
            size: 0,
            done: 0,
            failed: 0,
            moved: 0,
            lat: Vec::new(),
            resumed: 0,
            errors: Vec::new(),
            quit_on_login: false,
            noop_slice: 0,
        })
    }

    /// Counts the clients in `range` that are neither idle nor closed, by state.
    fn stuck(&self, range: std::ops::Range<usize>) -> String {
        let mut counts: Vec<(St, usize)> = Vec::new();
        for c in &self.cl[range] {
            if matches!(c.st, St::Idle | St::Closed) {
                continue;
            }
            match counts.iter_mut().find(|(st, _)| *st == c.st) {
                Some((_, n)) => *n += 1,
                None => counts.push((c.st, 1)),
            }
        }
        let parts: Vec<String> = counts.iter().map(|(st, n)| format!("{n} {st:?}")).collect();
        parts.join(", ")
    }

    /// How many clients are logged in (idle, or waiting for a NOOP's reply).
    pub fn live(&self) -> usize {
        self.cl
            .iter()
            .filter(|c| matches!(c.st, St::Idle | St::Noop))
            .count()
    }

    /// How many clients failed since the last phase started.
    pub fn failed(&self) -> usize {
        self.failed
    }

    fn fail(&mut self, i: usize, why: impl std::fmt::Display) {
        let c = &mut self.cl[i];
        if c.st == St::Closed {
            return;
        }
        let msg = format!("client {i} ({:?}): {why}", c.st);
        c.ctrl_tls = None;
        c.data_tls = None;
        for s in [c.ctrl.take(), c.data.take()].into_iter().flatten() {
            let mut s = s;
            let _ = self.poll.registry().deregister(&mut s);
        }
        c.st = St::Closed;
        self.failed += 1;
        if self.o.debug {
            eprintln!("{msg}");
        }
        if self.errors.len() < 5 {
            self.errors.push(msg);
        }
    }

    fn close(&mut self, i: usize) {
        let c = &mut self.cl[i];
        c.ctrl_tls = None;
        c.data_tls = None;
        for s in [c.ctrl.take(), c.data.take()].into_iter().flatten() {
            let mut s = s;
            let _ = self.poll.registry().deregister(&mut s);
        }
        c.st = St::Closed;
    }

    fn drop_data(&mut self, i: usize) {
        self.cl[i].data_tls = None;
        if let Some(mut d) = self.cl[i].data.take() {
            let _ = self.poll.registry().deregister(&mut d);
        }
    }

    /// Opens one more control connection.
    fn spawn(&mut self) {
        let i = self.cl.len();
        let src = (!self.o.sources.is_empty()).then(|| self.o.sources[i % self.o.sources.len()]);
        let mut c = Client {
            ctrl: None,
            data: None,
            data_up: false,
            st: St::Connecting,
            line: Vec::new(),
            multi: None,
            out: Vec::new(),
            src,
            t0: Instant::now(),
            moved: 0,
            data_done: false,
            reply_done: false,
            started: false,
            tls: self.o.tls.as_ref().map(Tls::session_config),
            ctrl_tls: None,
            data_tls: None,
        };
        let res = open_stream(self.o.addr, src).and_then(|mut s| {
            self.poll.registry().register(
                &mut s,
                Token(i * 2),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(s)
        });
        match res {
            Ok(s) => {
                c.ctrl = Some(s);
                self.cl.push(c);
            }
            Err(e) => {
                self.cl.push(c);
                self.fail(i, format!("connect: {e}"));
            }
        }
    }

    /// Polls once and handles what is ready.
    fn turn(&mut self, deadline: Instant) -> io::Result<()> {
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(50));
        match self.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        ready.extend(self.events.iter().map(|e| e.token().0));
        for &t in &ready {
            if t / 2 >= self.cl.len() {
                continue;
            }
            if t % 2 == 0 {
                self.on_ctrl(t / 2);
            } else {
                self.on_data(t / 2);
            }
        }
        self.ready = ready;
        Ok(())
    }

    fn on_ctrl(&mut self, i: usize) {
        if self.cl[i].ctrl.is_none() {
            return;
        }
        if self.cl[i].st == St::Connecting {
            match established(self.cl[i].ctrl.as_ref().expect("ctrl")) {
                Ok(true) => self.cl[i].st = St::Greeting,
                Ok(false) => return,
                Err(e) => return self.fail(i, format!("connect: {e}")),
            }
        }
        if let Err(e) = flush(&mut self.cl[i]) {
            return self.fail(i, format!("write: {e}"));
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        loop {
            let c = &mut self.cl[i];
            let Some(s) = c.ctrl.as_mut() else {
                break;
            };
            let got = match c.ctrl_tls.as_deref_mut() {
                Some(t) => secure::read(t, s, &mut scratch),
                None => s.read(&mut scratch),
            };
            match got {
                Ok(0) => {
                    if self.cl[i].st == St::Quit {
                        self.done += 1;
                        self.close(i);
                    } else {
                        self.fail(i, "control connection closed by the server");
                    }
                    break;
                }
                Ok(n) => self.feed(i, &scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if self.cl[i].st == St::Quit {
                        self.done += 1;
                        self.close(i);
                    } else {
                        self.fail(i, format!("read: {e}"));
                    }
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    /// Splits control bytes into lines and hands each complete reply to `on_reply`.
    fn feed(&mut self, i: usize, mut data: &[u8]) {
        while let Some(nl) = data.iter().position(|&b| b == b'\n') {
            let (head, rest) = data.split_at(nl + 1);
            data = rest;
            let c = &mut self.cl[i];
            let joined;
            let line: &[u8] = if c.line.is_empty() {
                head
            } else {
                c.line.extend_from_slice(head);
                joined = std::mem::take(&mut c.line);
                &joined
            };
            if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
                continue;
            }
            let code3 = [line[0], line[1], line[2]];
            let sep = line.get(3).copied().unwrap_or(b' ');
            let complete = match c.multi {
                None if sep == b'-' => {
                    c.multi = Some(code3);
                    false
                }
                None => true,
                Some(m) if m == code3 && sep != b'-' => {
                    c.multi = None;
                    true
                }
                Some(_) => false,
            };
            if complete {
                let port = if code3 == *b"227" {
                    parse_pasv(line)
                } else {
                    None
                };
                if self.o.debug {
                    eprintln!("client {i}: {}", String::from_utf8_lossy(line).trim_end());
                }
                let was_plain = self.cl[i].ctrl_tls.is_none();
                self.on_reply(i, code_of(line), port);
                if self.cl[i].st == St::Closed {
                    return;
                }
                if was_plain && self.cl[i].ctrl_tls.is_some() && !data.is_empty() {
                    return self.fail(i, "AUTH TLS: clear-text bytes after the 234");
                }
            }
        }
        if !data.is_empty() {
            self.cl[i].line.extend_from_slice(data);
        }
    }

    fn on_reply(&mut self, i: usize, code: u16, port: Option<u16>) {
        let st = self.cl[i].st;
        let class = code / 100;
        let res = match (st, class) {
            (St::Greeting, 1) | (St::Xfer, 1) | (St::Idle, _) => Ok(()),
            (St::Noop, 2) => {
                self.lat.push(self.cl[i].t0.elapsed());
                self.cl[i].st = St::Idle;
                self.done += 1;
                Ok(())
            }
            (St::Greeting, 2) if self.cl[i].tls.is_some() => {
                self.cl[i].st = St::Auth;
                send(&mut self.cl[i], &self.cmds.auth)
            }
            (St::Auth, 2) if code == 234 => self.start_tls(i),
            (St::Greeting, 2) => {
                self.cl[i].st = St::User;
                send(&mut self.cl[i], &self.cmds.user)
            }
            (St::User, _) if code == 331 => {
                self.cl[i].st = St::Pass;
                send(&mut self.cl[i], &self.cmds.pass)
            }
            (St::User, 2) | (St::Pass, 2) if self.cl[i].tls.is_some() => {
                self.cl[i].st = St::Pbsz;
                send(&mut self.cl[i], &self.cmds.pbsz)
            }
            (St::Pbsz, 2) => {
                self.cl[i].st = St::Prot;
                send(&mut self.cl[i], &self.cmds.prot)
            }
            (St::User, 2) | (St::Pass, 2) | (St::Prot, 2) => {
                self.lat.push(self.cl[i].t0.elapsed());
                if self.cl[i]
                    .ctrl_tls
                    .as_ref()
                    .and_then(|t| t.handshake_kind())
                    == Some(HandshakeKind::Resumed)
                {
                    self.resumed += 1;
                }
                if self.quit_on_login {
                    self.cl[i].st = St::Quit;
                    send(&mut self.cl[i], &self.cmds.quit)
                } else {
                    self.cl[i].st = St::Idle;
                    self.done += 1;
                    Ok(())
                }
            }
            (St::Type, 2) => {
                self.cl[i].st = St::Pasv;
                send(&mut self.cl[i], &self.cmds.pasv)
            }
            (St::Pasv, 2) if port.is_some() => self.open_data(i, port.unwrap_or(0)),
            (St::Cmd, 1) => {
                self.cl[i].st = St::Xfer;
                // PROT P: the data connection's TLS starts after the 1xx, as ftplib's
                // FTP_TLS does.
                let secured = self.start_data_tls(i);
                if secured.is_ok() && self.op == Op::Stor {
                    self.on_data(i);
                }
                secured
            }
            (St::Xfer, 2) => {
                self.cl[i].reply_done = true;
                self.check_done(i);
                Ok(())
            }
            (St::Quit, _) => {
                self.done += 1;
                self.close(i);
                Ok(())
            }
            _ => Err(io::Error::other(format!("unexpected reply {code}"))),
        };
        if let Err(e) = res {
            self.fail(i, e);
        }
    }

    fn open_data(&mut self, i: usize, port: u16) -> io::Result<()> {
        let dst = SocketAddr::new(self.o.addr.ip(), port);
        let mut d = open_stream(dst, self.cl[i].src)?;
        self.poll.registry().register(
            &mut d,
            Token(i * 2 + 1),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let c = &mut self.cl[i];
        c.data = Some(d);
        c.data_up = false;
        c.st = St::DataConnecting;
        Ok(())
    }

    fn on_data(&mut self, i: usize) {
        let Some(d) = self.cl[i].data.as_ref() else {
            return;
        };
        if !self.cl[i].data_up {
            match established(d) {
                Ok(true) => {
                    let c = &mut self.cl[i];
                    c.data_up = true;
                    c.st = St::Cmd;
                    let cmd = match self.op {
                        Op::Retr => &self.cmds.retr,
                        Op::Stor => &self.cmds.stor,
                    };
                    if let Err(e) = send(c, cmd) {
                        return self.fail(i, format!("write: {e}"));
                    }
                }
                Ok(false) => return,
                Err(e) => return self.fail(i, format!("data connect: {e}")),
            }
        }
        let secured = self.cl[i].data_tls.is_some();
        match self.op {
            Op::Retr if secured => self.pump_retr_tls(i),
            Op::Retr => self.pump_retr(i),
            Op::Stor if self.cl[i].st == St::Xfer && secured => self.pump_stor_tls(i),
            Op::Stor if self.cl[i].st == St::Xfer => self.pump_stor(i),
            Op::Stor => {}
        }
    }

    fn pump_retr(&mut self, i: usize) {
        let mut scratch = std::mem::take(&mut self.scratch);
        while let Some(d) = self.cl[i].data.as_mut() {
            match d.read(&mut scratch) {
                Ok(0) => {
                    self.drop_data(i);
                    self.cl[i].data_done = true;
                    self.check_done(i);
                    break;
                }
                Ok(n) => self.cl[i].moved += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(i, format!("data read: {e}"));
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    fn pump_stor(&mut self, i: usize) {
        let size = self.size;
        loop {
            let c = &mut self.cl[i];
            let Some(d) = c.data.as_mut() else {
                break;
            };
            let left = size - c.moved;
            if left == 0 {
                self.drop_data(i);
                self.cl[i].data_done = true;
                self.check_done(i);
                break;
            }
            let n = left.min(self.wbuf.len() as u64) as usize;
            match d.write(&self.wbuf[..n]) {
                Ok(n) => c.moved += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(i, format!("data write: {e}"));
                    break;
                }
            }
        }
    }

    fn check_done(&mut self, i: usize) {
        if self.cl[i].data_done && self.cl[i].reply_done {
            // A TLS upload's connection stays open after its close_notify until now.
            self.drop_data(i);
        }
        let c = &mut self.cl[i];
        if c.data_done && c.reply_done {
            if self.op == Op::Retr && c.moved != self.size && self.errors.len() < 5 {
                self.errors.push(format!(
                    "client {i}: RETR got {} bytes, expected {}",
                    c.moved, self.size
                ));
            }
            self.moved += c.moved;
            c.st = St::Idle;
            self.done += 1;
        }
    }
}

/// Where a client is in its exchange with the server.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    Connecting,
    Greeting,
    /// AUTH TLS sent (-S).
    Auth,
    User,
    Pass,
    /// PBSZ 0 sent after the login (-S).
    Pbsz,
    /// PROT P sent (-S).
    Prot,
    Idle,
    /// Logged in, a keep-alive NOOP sent.
    Noop,
    Type,
    Pasv,
    DataConnecting,
    Cmd,
    Xfer,
    Quit,
    Closed,
}

/// One client: its control connection and, during a transfer, its data connection.
struct Client {
    ctrl: Option<MioStream>,
    data: Option<MioStream>,
    data_up: bool,
    st: St,
    /// A partial reply line carried over between reads (usually empty: no allocation).
    line: Vec<u8>,
    multi: Option<[u8; 3]>,
    /// Control bytes the socket did not take yet (usually empty).
    out: Vec<u8>,
    src: Option<IpAddr>,
    t0: Instant,
    moved: u64,
    data_done: bool,
    reply_done: bool,
    started: bool,
    /// With -S: this session's TLS configuration (its own session store, so that its data
    /// connections resume its control connection's session).
    tls: Option<Arc<ClientConfig>>,
    /// TLS on the control connection, from the 234 on.
    ctrl_tls: Option<Box<ClientConnection>>,
    /// TLS on the data connection, from the transfer's 1xx to its end.
    data_tls: Option<Box<ClientConnection>>,
}

/// The command lines, formatted once.
struct Cmds {
    user: Vec<u8>,
    pass: Vec<u8>,
    type_i: Vec<u8>,
    pasv: Vec<u8>,
    retr: Vec<u8>,
    stor: Vec<u8>,
    quit: Vec<u8>,
    noop: Vec<u8>,
    auth: Vec<u8>,
    pbsz: Vec<u8>,
    prot: Vec<u8>,
}

/// A non-blocking socket connecting to `dst`, bound to `src` first when given.
fn open_stream(dst: SocketAddr, src: Option<IpAddr>) -> io::Result<MioStream> {
    let s = Socket::new(Domain::for_address(dst), Type::STREAM, Some(Protocol::TCP))?;
    s.set_nonblocking(true)?;
    if let Some(ip) = src {
        // Without it, bind() picks the port and caps each source address at the ephemeral
        // range once, whatever the destination; a failure only costs that headroom.
        let _ = sys::bind_address_no_port(&s);
        s.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match s.connect(&dst.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(MioStream::from_std(s.into()))
}

/// Whether a connecting socket is connected now: Ok(false) = not yet.
fn established(s: &MioStream) -> io::Result<bool> {
    if let Some(e) = s.take_error()? {
        return Err(e);
    }
    match s.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` now, or queues what the socket does not take (in rustls with TLS).
fn send(c: &mut Client, bytes: &[u8]) -> io::Result<()> {
    if let (Some(t), Some(s)) = (c.ctrl_tls.as_deref_mut(), c.ctrl.as_mut()) {
        t.writer().write_all(bytes)?;
        return secure::flush(t, s);
    }
    if !c.out.is_empty() {
        c.out.extend_from_slice(bytes);
        return flush(c);
    }
    let Some(s) = c.ctrl.as_mut() else {
        return Ok(());
    };
    let mut off = 0;
    while off < bytes.len() {
        match s.write(&bytes[off..]) {
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    c.out.extend_from_slice(&bytes[off..]);
    Ok(())
}

fn flush(c: &mut Client) -> io::Result<()> {
    let Some(s) = c.ctrl.as_mut() else {
        return Ok(());
    };
    if let Some(t) = c.ctrl_tls.as_deref_mut() {
        return secure::flush(t, s);
    }
    while !c.out.is_empty() {
        match s.write(&c.out) {
            Ok(n) => {
                c.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The one buffer shared by all concurrent transfers of the non-blocking client.
const MULTI_BUF: usize = 256 * 1024;

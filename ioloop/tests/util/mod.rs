//! Shared pieces of the ioloop integration tests: a bounded loop driver, blocking
//! `std::net` clients, and reusable handlers (a listener, a line echo, a napping echo, a
//! connector and a connection that closes itself).
//!
//! Probes shared between a handler and its test use `Rc<Cell<_>>`: the handlers live in
//! the loop, the test only reads counters between passes (never inside a callback).

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, BufReader};
use std::net::{self, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use ioloop::mio::event::Source;
use ioloop::mio::net::{TcpListener, TcpStream};
use ioloop::{
    Acceptor, AsyncChat, ConnectState, Connector, Ctx, Handler, Interest, IoLoop, Line, ReadStatus,
    Ready, TimerId,
};

/// Runs `run_once` with a short timeout until `done` holds.
///
/// # Panics
/// After [`DRIVE_LIMIT`] without `done` holding, naming `what` was awaited.
pub fn drive<M: 'static>(lp: &mut IoLoop<M>, what: &str, mut done: impl FnMut(&IoLoop<M>) -> bool) {
    let deadline = Instant::now() + DRIVE_LIMIT;
    while !done(lp) {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        lp.run_once(Some(TICK)).expect("poll failed");
    }
}

/// Runs the loop for `span` of wall time, whatever happens.
pub fn run_for<M: 'static>(lp: &mut IoLoop<M>, span: Duration) {
    let start = Instant::now();
    while start.elapsed() < span {
        lp.run_once(Some(TICK)).expect("poll failed");
    }
}

/// A non-blocking listener on an ephemeral loopback port.
pub fn listener() -> TcpListener {
    TcpListener::bind(loopback()).expect("bind 127.0.0.1:0")
}

/// A blocking client with read and write timeouts, so a missing reply fails the test.
pub fn client(addr: SocketAddr) -> net::TcpStream {
    let c = net::TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    c.set_write_timeout(Some(IO_TIMEOUT))
        .expect("write timeout");
    c
}

/// A connected pair: a blocking client, and the server side as a non-blocking mio stream
/// ready to be given to a handler.
pub fn pair() -> (net::TcpStream, TcpStream) {
    let l = net::TcpListener::bind(loopback()).expect("bind 127.0.0.1:0");
    let c = client(l.local_addr().expect("local addr"));
    let (s, _) = l.accept().expect("accept");
    s.set_nonblocking(true).expect("non-blocking");
    (c, TcpStream::from_std(s))
}

/// Reads `n` CRLF-terminated lines, without their terminators.
pub fn read_lines(r: &mut impl BufRead, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = String::new();
        match r.read_line(&mut s) {
            Ok(0) => panic!("EOF after {i} of {n} lines"),
            Ok(_) => out.push(s.trim_end_matches("\r\n").to_owned()),
            Err(e) => panic!("reading line {i} of {n}: {e}"),
        }
    }
    out
}

/// Reads until EOF and returns what came; a reset or timeout fails the test.
pub fn read_to_eof(c: &mut net::TcpStream) -> String {
    let mut s = String::new();
    io::Read::read_to_string(&mut BufReader::new(c), &mut s).expect("read until EOF");
    s
}

/// A listening handler: forwards readiness and timers to its [`Acceptor`] and spawns one
/// handler per accepted connection.
pub struct Server<M> {
    acceptor: Acceptor,
    make: Box<dyn FnMut(TcpStream) -> Box<dyn Handler<M>>>,
    probe: Rc<ServerProbe>,
}

/// What a [`Server`] lets its test observe.
#[derive(Debug, Default)]
pub struct ServerProbe {
    /// Calls of `on_ready` (poller events and wake-ups alike).
    pub ready_calls: Cell<u32>,
    /// Connections accepted.
    pub accepted: Cell<u32>,
    /// Whether the acceptor is paused right now.
    pub paused: Cell<bool>,
    /// How many times accepting was paused.
    pub pauses: Cell<u32>,
}

impl<M: 'static> Server<M> {
    /// A server on `listener` spawning `make(stream)` per connection.
    pub fn new(
        listener: TcpListener,
        backoff: Duration,
        make: impl FnMut(TcpStream) -> Box<dyn Handler<M>> + 'static,
    ) -> (Box<Self>, Rc<ServerProbe>) {
        Server::with_acceptor(Acceptor::new(listener, backoff), make)
    }

    /// A server on an acceptor set up by the test.
    pub fn with_acceptor(
        acceptor: Acceptor,
        make: impl FnMut(TcpStream) -> Box<dyn Handler<M>> + 'static,
    ) -> (Box<Self>, Rc<ServerProbe>) {
        let probe = Rc::new(ServerProbe::default());
        let server = Server {
            acceptor,
            make: Box::new(make),
            probe: Rc::clone(&probe),
        };
        (Box::new(server), probe)
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.acceptor.listener().local_addr().expect("local addr")
    }

    fn note_pause(&self) {
        let paused = self.acceptor.is_paused();
        if paused && !self.probe.paused.get() {
            self.probe.pauses.set(self.probe.pauses.get() + 1);
        }
        self.probe.paused.set(paused);
    }
}

impl<M: 'static> Handler<M> for Server<M> {
    fn source(&mut self) -> Option<&mut dyn Source> {
        Some(self.acceptor.listener_mut())
    }

    fn interest(&self) -> Option<Interest> {
        self.acceptor.interest()
    }

    fn on_ready(&mut self, cx: &mut Ctx<'_, M>, _ready: Ready) {
        let probe = &self.probe;
        let make = &mut self.make;
        probe.ready_calls.set(probe.ready_calls.get() + 1);
        self.acceptor.accept_ready(cx, |cx, stream, _peer| {
            probe.accepted.set(probe.accepted.get() + 1);
            cx.spawn(make(stream))
                .expect("register accepted connection");
        });
        self.note_pause();
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_, M>, timer: TimerId) {
        self.acceptor.on_timer(cx, timer);
        self.note_pause();
    }
}

/// A connection echoing every CRLF line back; closes once the peer has closed and the
/// echoes are sent.
pub struct Echo {
    chat: AsyncChat<TcpStream>,
}

impl Echo {
    /// An echo handler on an accepted stream.
    pub fn boxed<M: 'static>(stream: TcpStream) -> Box<dyn Handler<M>> {
        Box::new(Echo {
            chat: AsyncChat::new(stream, b"\r\n", MAX_LINE),
        })
    }

    fn pump(&mut self) -> io::Result<()> {
        loop {
            while let Some(line) = self.chat.next_line() {
                match line {
                    Line::Complete(l) => {
                        self.chat.push(&l);
                        self.chat.push(b"\r\n");
                    }
                    Line::TooLong => self.chat.push(b"too long\r\n"),
                }
            }
            match self.chat.read_some()? {
                ReadStatus::Data => {}
                ReadStatus::WouldBlock | ReadStatus::Closed => break,
            }
        }
        self.chat.flush()
    }
}

impl<M: 'static> Handler<M> for Echo {
    fn source(&mut self) -> Option<&mut dyn Source> {
        Some(self.chat.stream_mut())
    }

    fn interest(&self) -> Option<Interest> {
        self.chat.interest(true)
    }

    fn on_ready(&mut self, cx: &mut Ctx<'_, M>, _ready: Ready) {
        match self.pump() {
            Ok(()) if self.chat.is_eof() && !self.chat.has_output() => cx.close(),
            Ok(()) => {}
            Err(e) if ioloop::is_disconnect(&e) => cx.close(),
            Err(e) => panic!("echo: unexpected I/O error: {e}"),
        }
    }
}

/// How a [`Dial`] ended.
#[derive(Debug)]
pub enum Dialed {
    /// Connected, from this local address.
    Connected(SocketAddr),
    /// The connect failed.
    Failed(io::Error),
}

/// A handler that waits for a connect to finish, records how, and closes.
pub struct Dial {
    conn: Connector,
    outcome: Rc<RefCell<Option<Dialed>>>,
}

impl Dial {
    /// Runs `conn` in a loop of its own until it connects or fails.
    pub fn run(conn: Connector) -> Dialed {
        let mut lp = IoLoop::<()>::new().expect("new loop");
        let outcome = Rc::new(RefCell::new(None));
        let dial = Dial {
            conn,
            outcome: Rc::clone(&outcome),
        };
        lp.spawn(Box::new(dial)).expect("spawn");
        drive(&mut lp, "the connect finishes", |lp| lp.is_empty());
        let dialed = outcome.borrow_mut().take();
        dialed.expect("an outcome before closing")
    }
}

impl<M: 'static> Handler<M> for Dial {
    fn source(&mut self) -> Option<&mut dyn Source> {
        Some(self.conn.stream_mut())
    }

    fn interest(&self) -> Option<Interest> {
        self.conn.interest()
    }

    fn on_ready(&mut self, cx: &mut Ctx<'_, M>, _ready: Ready) {
        let dialed = match self.conn.poll_connect() {
            ConnectState::Pending => return,
            ConnectState::Connected => {
                Dialed::Connected(self.conn.stream_mut().local_addr().expect("local addr"))
            }
            ConnectState::Failed(e) => Dialed::Failed(e),
        };
        *self.outcome.borrow_mut() = Some(dialed);
        cx.close();
    }
}

/// A connection that answers `QUIT` with a goodbye and closes itself from that same
/// callback; counts its `on_close` calls.
pub struct Quitter {
    chat: AsyncChat<TcpStream>,
    closes: Rc<Cell<u32>>,
}

impl Quitter {
    /// A quitter on `stream`, counting into `closes`.
    pub fn boxed(stream: TcpStream, closes: &Rc<Cell<u32>>) -> Box<Self> {
        Box::new(Quitter {
            chat: AsyncChat::new(stream, b"\r\n", MAX_LINE),
            closes: Rc::clone(closes),
        })
    }
}

impl<M: 'static> Handler<M> for Quitter {
    fn source(&mut self) -> Option<&mut dyn Source> {
        Some(self.chat.stream_mut())
    }

    fn interest(&self) -> Option<Interest> {
        self.chat.interest(true)
    }

    fn on_ready(&mut self, cx: &mut Ctx<'_, M>, _ready: Ready) {
        loop {
            if let Some(line) = self.chat.next_line() {
                assert_eq!(line, Line::Complete(b"QUIT".to_vec()));
                self.chat.push(b"221 bye\r\n");
                self.chat.flush().expect("a short reply fits");
                // A timer pending at close must not outlive the handler.
                cx.call_later(Duration::from_secs(3600));
                cx.close();
                cx.close();
                return;
            }
            match self.chat.read_some().expect("read") {
                ReadStatus::Data => {}
                ReadStatus::WouldBlock => return,
                ReadStatus::Closed => panic!("the client waits for the goodbye"),
            }
        }
    }

    fn on_close(&mut self, cx: &mut Ctx<'_, M>) {
        self.closes.set(self.closes.get() + 1);
        // Closing again from on_close changes nothing.
        cx.close();
    }
}

/// A connection echoing lines that naps after some of them: for its nap it wants no
/// readiness at all (pyftpdlib's `del_channel`), then a timer wakes it up.
pub struct Sleepy {
    chat: AsyncChat<TcpStream>,
    nap: Nap,
    nap_for: Duration,
    nap_after: &'static [&'static str],
    seen: Rc<RefCell<Vec<(String, Instant)>>>,
}

/// Whether a [`Sleepy`] connection is napping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nap {
    Awake,
    Asleep,
}

impl Sleepy {
    /// Naps `nap_for` after each line in `nap_after`; records each line and when it was
    /// handled into `seen`.
    pub fn boxed(
        stream: TcpStream,
        nap_for: Duration,
        nap_after: &'static [&'static str],
        seen: &Rc<RefCell<Vec<(String, Instant)>>>,
    ) -> Box<Self> {
        Box::new(Sleepy {
            chat: AsyncChat::new(stream, b"\r\n", MAX_LINE),
            nap: Nap::Awake,
            nap_for,
            nap_after,
            seen: Rc::clone(seen),
        })
    }

    fn set_nap(&mut self, nap: Nap) {
        log::trace!("sleepy: {:?} => {nap:?}", self.nap);
        self.nap = nap;
    }

    fn pump<M>(&mut self, cx: &mut Ctx<'_, M>) -> io::Result<()> {
        loop {
            // Lines already buffered first: after a nap no new edge announces them.
            while let Some(line) = self.chat.next_line() {
                let Line::Complete(l) = line else {
                    panic!("no overlong line is sent");
                };
                self.chat.push(&l);
                self.chat.push(b"\r\n");
                let text = String::from_utf8(l).expect("ASCII lines");
                let naps = self.nap_after.contains(&text.as_str());
                self.seen.borrow_mut().push((text, Instant::now()));
                if naps {
                    self.set_nap(Nap::Asleep);
                    cx.call_later(self.nap_for);
                    return self.chat.flush();
                }
            }
            match self.chat.read_some()? {
                ReadStatus::Data => {}
                ReadStatus::WouldBlock | ReadStatus::Closed => break,
            }
        }
        self.chat.flush()
    }
}

impl<M: 'static> Handler<M> for Sleepy {
    fn source(&mut self) -> Option<&mut dyn Source> {
        Some(self.chat.stream_mut())
    }

    fn interest(&self) -> Option<Interest> {
        match self.nap {
            Nap::Asleep => None,
            Nap::Awake => self.chat.interest(true),
        }
    }

    fn on_ready(&mut self, cx: &mut Ctx<'_, M>, _ready: Ready) {
        assert_eq!(self.nap, Nap::Awake, "readiness while deregistered");
        match self.pump(cx) {
            Ok(()) if self.chat.is_eof() && !self.chat.has_output() => cx.close(),
            Ok(()) => {}
            Err(e) if ioloop::is_disconnect(&e) => cx.close(),
            Err(e) => panic!("sleepy: unexpected I/O error: {e}"),
        }
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_, M>, _timer: TimerId) {
        self.set_nap(Nap::Awake);
        cx.wake();
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// How long a blocking client waits for a reply before the test fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`drive`] waits for its condition (longer than [`IO_TIMEOUT`], so a client
/// thread's own timeout is reported first).
pub const DRIVE_LIMIT: Duration = Duration::from_secs(30);
/// The longest single `run_once` wait while driving.
pub const TICK: Duration = Duration::from_millis(10);
/// The line cap of test connections.
pub const MAX_LINE: usize = 2048;

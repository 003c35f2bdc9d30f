//! Integration tests of the event loop over real loopback sockets: echo sessions, timers,
//! messages, sleeping channels, cross-thread control, connectors and closing.
//!
//! Every wait is bounded: the loop is driven by `util::drive` (a deadline) or runs on its
//! own thread while the test waits on a channel with a timeout; clients are blocking
//! `std::net` sockets with read timeouts. Timing assertions are lower bounds only.

mod util;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hint::black_box;
use std::io::{self, BufReader, Write};
use std::net::{self, SocketAddr};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ioloop::mio::event::Source;
use ioloop::mio::net::TcpListener;
use ioloop::{Connector, Ctx, Handle, Handler, Interest, IoLoop, LoopHandle, Ready, TimerId};
use socket2::{Domain, Socket, Type};

use util::{Dial, Dialed, Echo, Quitter, Server, Sleepy};

/// The message type of every loop in this file.
#[derive(Debug, PartialEq)]
enum Msg {
    Start,
    Text(String),
    Forward { to: Handle, text: String },
    Close,
    Kill(Handle),
    Arm,
    Num(u32),
}

// ---------------------------------------------------------------------------------------
// 1. Echo server

#[test]
fn echo_server_returns_pipelined_lines_in_order_and_frees_sessions() {
    let mut lp = IoLoop::<Msg>::new().expect("new loop");
    let (server, probe) = Server::new(util::listener(), BACKOFF, Echo::boxed::<Msg>);
    let addr = server.addr();
    lp.spawn(server).expect("spawn listener");

    let clients: Vec<_> = (0..ECHO_CLIENTS)
        .map(|i| thread::spawn(move || echo_client(addr, i)))
        .collect();
    util::drive(&mut lp, "every echo client is done", |_| {
        clients.iter().all(|c| c.is_finished())
    });
    for c in clients {
        c.join().expect("an echo client failed");
    }
    util::drive(&mut lp, "every session is closed", |lp| lp.len() == 1);

    assert_eq!(probe.accepted.get(), ECHO_CLIENTS as u32);
    assert_eq!(probe.pauses.get(), 0, "accepting never had to pause");
    assert_eq!(lp.len(), 1, "only the listener is left");
    assert_eq!(lp.timer_count(), 0);
}

/// One write of many lines, then every echo read back in order.
fn echo_client(addr: SocketAddr, i: usize) {
    let mut c = util::client(addr);
    let lines: Vec<String> = (0..ECHO_LINES)
        .map(|j| format!("client {i} line {j}"))
        .collect();
    let payload: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
    c.write_all(payload.as_bytes()).expect("send lines");
    let got = util::read_lines(&mut BufReader::new(&c), ECHO_LINES);
    assert_eq!(got, lines, "client {i}");
}

// ---------------------------------------------------------------------------------------
// 2. Timers

/// A socket-less handler that schedules its timers when it gets `Msg::Start`.
struct Clock {
    start: Instant,
    names: HashMap<TimerId, &'static str>,
    fired: Rc<RefCell<Vec<(&'static str, Duration)>>>,
    every: Option<TimerId>,
    every_count: u32,
    postponed: Option<TimerId>,
}

impl Clock {
    fn later(&mut self, cx: &mut Ctx<'_, Msg>, name: &'static str, ms: u64) -> TimerId {
        let id = cx.call_later(Duration::from_millis(ms));
        self.names.insert(id, name);
        id
    }

    fn is_done(&self) -> bool {
        let fired = self.fired.borrow();
        let has = |n: &str| fired.iter().any(|(f, _)| *f == n);
        self.every_count == EVERY_TIMES && ["10", "20", "30", "postponed"].iter().all(|n| has(n))
    }
}

impl Handler<Msg> for Clock {
    fn source(&mut self) -> Option<&mut dyn Source> {
        None
    }

    fn interest(&self) -> Option<Interest> {
        None
    }

    fn on_ready(&mut self, _cx: &mut Ctx<'_, Msg>, _ready: Ready) {
        panic!("a socket-less handler got readiness");
    }

    fn on_message(&mut self, cx: &mut Ctx<'_, Msg>, msg: Msg) {
        assert_eq!(msg, Msg::Start);
        self.later(cx, "30", 30);
        self.later(cx, "10", 10);
        self.later(cx, "20", 20);
        let doomed = self.later(cx, "cancelled", 15);
        cx.cancel(doomed);
        assert!(!cx.reset(doomed), "a cancelled timer cannot be reset");
        self.postponed = Some(self.later(cx, "postponed", 50));
        self.later(cx, "resetter", 30);
        let every = cx.call_every(Duration::from_millis(EVERY_MS));
        self.names.insert(every, "every");
        self.every = Some(every);
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_, Msg>, timer: TimerId) {
        let name = *self.names.get(&timer).expect("a timer this handler set");
        self.fired.borrow_mut().push((name, self.start.elapsed()));
        match name {
            "every" => {
                self.every_count += 1;
                if self.every_count == EVERY_TIMES {
                    cx.cancel(timer);
                }
            }
            "resetter" => {
                let postponed = self.postponed.expect("set on start");
                assert!(cx.reset(postponed), "the 50 ms timer is still pending");
            }
            _ => {}
        }
        if self.is_done() {
            cx.close();
        }
    }
}

#[test]
fn timers_fire_in_order_repeat_cancel_and_reset() {
    let mut lp = IoLoop::<Msg>::new().expect("new loop");
    let fired = Rc::new(RefCell::new(Vec::new()));
    let clock = Clock {
        start: Instant::now(),
        names: HashMap::new(),
        fired: Rc::clone(&fired),
        every: None,
        every_count: 0,
        postponed: None,
    };
    let h = lp.spawn(Box::new(clock)).expect("spawn");
    lp.send(h, Msg::Start);
    util::drive(&mut lp, "every timer has fired", |lp| lp.is_empty());
    assert_eq!(lp.timer_count(), 0);

    let fired = fired.borrow();
    let one_shots: Vec<&str> = fired
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| ["10", "20", "30"].contains(n))
        .collect();
    assert_eq!(
        one_shots,
        ["10", "20", "30"],
        "call_later fires by deadline"
    );
    assert!(fired.iter().all(|(n, _)| *n != "cancelled"), "{fired:?}");
    let everies: Vec<Duration> = fired
        .iter()
        .filter(|(n, _)| *n == "every")
        .map(|(_, at)| *at)
        .collect();
    assert_eq!(
        everies.len(),
        EVERY_TIMES as usize,
        "no firing after cancel"
    );
    for (k, at) in everies.iter().enumerate() {
        let min = ms(EVERY_MS * (k as u64 + 1));
        assert!(*at >= min, "periodic firing {k} at {at:?}, before {min:?}");
    }
    for (name, at) in fired.iter() {
        let min = match *name {
            "10" => ms(10),
            "20" => ms(20),
            "30" | "resetter" => ms(30),
            // Reset at >= 30 ms to its own 50 ms delay.
            "postponed" => ms(80),
            _ => Duration::ZERO,
        };
        assert!(*at >= min, "{name} fired at {at:?}, before {min:?}");
    }
}

/// Re-arms a zero-delay timer from its own `on_timer`, a fixed number of times.
struct Spinner {
    fired: Rc<Cell<u32>>,
}

impl Handler<Msg> for Spinner {
    fn source(&mut self) -> Option<&mut dyn Source> {
        None
    }

    fn interest(&self) -> Option<Interest> {
        None
    }

    fn on_ready(&mut self, _cx: &mut Ctx<'_, Msg>, _ready: Ready) {}

    fn on_message(&mut self, cx: &mut Ctx<'_, Msg>, _msg: Msg) {
        cx.call_later(Duration::ZERO);
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_, Msg>, _timer: TimerId) {
        self.fired.set(self.fired.get() + 1);
        if self.fired.get() < SPINS {
            cx.call_later(Duration::ZERO);
        }
    }
}

#[test]
fn zero_delay_timer_set_in_on_timer_waits_for_the_next_pass() {
    // `Ctx::call_later` documents "zero = the next pass", and pyftpdlib's
    // `_Scheduler.poll` collects the due calls before running any of them.
    let mut lp = IoLoop::<Msg>::new().expect("new loop");
    let fired = Rc::new(Cell::new(0));
    let h = lp
        .spawn(Box::new(Spinner {
            fired: Rc::clone(&fired),
        }))
        .expect("spawn");
    lp.send(h, Msg::Start);
    lp.run_once(Some(Duration::ZERO)).expect("poll");
    for pass in 0..5 {
        let before = fired.get();
        lp.run_once(Some(Duration::ZERO)).expect("poll");
        let n = fired.get() - before;
        assert!(n <= 1, "pass {pass} fired the timer {n} times");
    }
}

#[test]
fn a_pass_observer_sees_every_pass_and_not_the_wait() {
    let mut lp = IoLoop::<Msg>::new().expect("new loop");
    let passes = Rc::new(RefCell::new(Vec::new()));
    let seen = Rc::clone(&passes);
    lp.observe_passes(Box::new(move |took| seen.borrow_mut().push(took)));
    let fired = Rc::new(Cell::new(0));
    let h = lp
        .spawn(Box::new(Spinner {
            fired: Rc::clone(&fired),
        }))
        .expect("spawn");
    lp.send(h, Msg::Start);
    for _ in 0..3 {
        lp.run_once(Some(Duration::ZERO)).expect("poll");
    }
    // A pass that waits 50 ms for nothing: the wait is not work.
    lp.close_all();
    lp.run_once(Some(Duration::from_millis(50))).expect("poll");
    let passes = passes.borrow();
    assert_eq!(passes.len(), 4, "{passes:?}");
    assert!(passes[3] < Duration::from_millis(40), "{passes:?}");
}

// ---------------------------------------------------------------------------------------
// 3. Messages

/// A socket-less handler that logs what it gets and can forward a message.
struct Node {
    name: &'static str,
    log: Rc<RefCell<Vec<String>>>,
}

impl Node {
    fn spawn(lp: &mut IoLoop<Msg>, name: &'static str, log: &Rc<RefCell<Vec<String>>>) -> Handle {
        let node = Node {
            name,
            log: Rc::clone(log),
        };
        lp.spawn(Box::new(node)).expect("spawn")
    }

    fn note(&self, what: String) {
        self.log.borrow_mut().push(format!("{} {what}", self.name));
    }
}

impl Handler<Msg> for Node {
    fn source(&mut self) -> Option<&mut dyn Source> {
        None
    }

    fn interest(&self) -> Option<Interest> {
        None
    }

    fn on_ready(&mut self, _cx: &mut Ctx<'_, Msg>, _ready: Ready) {}

    fn on_message(&mut self, cx: &mut Ctx<'_, Msg>, msg: Msg) {
        match msg {
            Msg::Forward { to, text } => {
                self.note("start".into());
                cx.send(to, Msg::Text(text));
                self.note("end".into());
            }
            Msg::Text(t) => self.note(format!("got {t}")),
            Msg::Close => cx.close(),
            Msg::Kill(h) => cx.close_handle(h),
            other => self.note(format!("unexpected {other:?}")),
        }
    }

    fn on_close(&mut self, _cx: &mut Ctx<'_, Msg>) {
        self.note("closed".into());
    }
}

#[test]
fn messages_arrive_after_the_callback_and_never_reach_a_reused_key() {
    let mut lp = IoLoop::<Msg>::new().expect("new loop");
    let log = Rc::new(RefCell::new(Vec::new()));
    let a = Node::spawn(&mut lp, "A", &log);
    let b = Node::spawn(&mut lp, "B", &log);
    let taken = |log: &Rc<RefCell<Vec<String>>>| std::mem::take(&mut *log.borrow_mut());

    lp.send(
        a,
        Msg::Forward {
            to: b,
            text: "hi".into(),
        },
    );
    util::drive(&mut lp, "B got A's message", |_| log.borrow().len() == 3);
    assert_eq!(taken(&log), ["A start", "A end", "B got hi"]);

    let c = Node::spawn(&mut lp, "C", &log);
    lp.send(c, Msg::Close);
    util::drive(&mut lp, "C is closed", |lp| lp.len() == 2);
    assert_eq!(taken(&log), ["C closed"]);

    // To the closed handle, from outside and from a handler: dropped, no panic.
    lp.send(c, Msg::Text("lost".into()));
    lp.send(
        a,
        Msg::Forward {
            to: c,
            text: "lost too".into(),
        },
    );
    util::drive(&mut lp, "A forwarded", |_| log.borrow().len() == 2);
    util::run_for(&mut lp, ms(30));
    assert_eq!(taken(&log), ["A start", "A end"]);

    let d = Node::spawn(&mut lp, "D", &log);
    assert_eq!(d.key(), c.key(), "the slab reuses the freed key");
    assert_ne!(d, c);
    lp.send(c, Msg::Text("misdelivered".into()));
    lp.send(d, Msg::Text("for D".into()));
    util::drive(&mut lp, "D got its message", |_| !log.borrow().is_empty());
    util::run_for(&mut lp, ms(30));
    assert_eq!(taken(&log), ["D got for D"]);

    lp.close_all();
    assert!(lp.is_empty());
    let mut closed = taken(&log);
    closed.sort();
    assert_eq!(closed, ["A closed", "B closed", "D closed"]);
}

/// Records how deep in the stack each message is delivered.
struct Depth {
    addrs: Rc<RefCell<Vec<usize>>>,
}

impl Handler<Msg> for Depth {
    fn source(&mut self) -> Option<&mut dyn Source> {
        None
    }

    fn interest(&self) -> Option<Interest> {
        None
    }

    fn on_ready(&mut self, _cx: &mut Ctx<'_, Msg>, _ready: Ready) {}

    fn on_message(&mut self, _cx: &mut Ctx<'_, Msg>, _msg: Msg) {
        let marker = 0u8;
        let addr = black_box(&marker) as *const u8 as usize;
        self.addrs.borrow_mut().push(addr);
    }
}

#[test]
fn queued_messages_are_delivered_without_nesting() {
    let mut lp = IoLoop::<Msg>::new().expect("new loop");
    let addrs = Rc::new(RefCell::new(Vec::new()));
    let h = lp
        .spawn(Box::new(Depth {
            addrs: Rc::clone(&addrs),
        }))
        .expect("spawn");
    for i in 0..DEEP_MESSAGES {
        lp.send(h, Msg::Num(i));
    }
    util::drive(&mut lp, "every message is delivered", |_| {
        addrs.borrow().len() == DEEP_MESSAGES as usize
    });
    let addrs = addrs.borrow();
    let spread = addrs.iter().max().unwrap_or(&0) - addrs.iter().min().unwrap_or(&0);
    assert!(
        spread < 64 * 1024,
        "{DEEP_MESSAGES} queued messages used {spread} bytes of stack"
    );
}

// ---------------------------------------------------------------------------------------
// 4. Sleeping and waking a channel

#[test]
fn a_sleeping_channel_processes_queued_input_once_woken() {
    let mut lp = IoLoop::<Msg>::new().expect("new loop");
    let (mut client, stream) = util::pair();
    let seen = Rc::new(RefCell::new(Vec::new()));
    lp.spawn(Sleepy::boxed(stream, NAP, &NAP_AFTER, &seen))
        .expect("spawn");
    let mut reader = BufReader::new(client.try_clone().expect("clone client"));

    // Three lines in one segment: after "one", two wait in the handler's own buffer,
    // where no poller event will ever announce them; only the wake-up can.
    client.write_all(b"one\r\ntwo\r\nthree\r\n").expect("send");
    util::drive(&mut lp, "the first nap starts", |_| {
        seen.borrow().len() == 1
    });
    assert_eq!(util::read_lines(&mut reader, 1), ["one"]);
    util::drive(&mut lp, "the buffered lines are seen", |_| {
        seen.borrow().len() == 3
    });
    assert_eq!(util::read_lines(&mut reader, 2), ["two", "three"]);

    // The second nap started on "three": these lines wait in the kernel meanwhile.
    client.write_all(b"four\r\nfive\r\n").expect("send");
    util::drive(&mut lp, "every line is seen", |_| seen.borrow().len() == 5);
    assert_eq!(util::read_lines(&mut reader, 2), ["four", "five"]);

    let seen = seen.borrow();
    let texts: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(texts, ["one", "two", "three", "four", "five"]);
    for (nap_on, woke_on) in [(0, 1), (2, 3)] {
        let napped = seen[woke_on].1.duration_since(seen[nap_on].1);
        assert!(
            napped >= NAP,
            "{} came {napped:?} after {}",
            texts[woke_on],
            texts[nap_on]
        );
    }
    drop(seen);

    drop(reader);
    drop(client);
    util::drive(&mut lp, "the session closes", |lp| lp.is_empty());
    assert_eq!(lp.timer_count(), 0);
}

// ---------------------------------------------------------------------------------------
// 5. Control from another thread

/// What a loop thread reports to its test.
enum Event {
    Setup(LoopHandle<Msg>, Vec<Handle>),
    Got(&'static str, Msg),
    Armed(&'static str),
    Closed(&'static str),
    Returned {
        result: io::Result<()>,
        len: usize,
        timers: usize,
    },
}

/// A handler reporting everything to the test thread; optionally owns a listener.
struct Reporter {
    name: &'static str,
    listener: Option<TcpListener>,
    tx: mpsc::Sender<Event>,
}

impl Handler<Msg> for Reporter {
    fn source(&mut self) -> Option<&mut dyn Source> {
        self.listener.as_mut().map(|l| l as &mut dyn Source)
    }

    fn interest(&self) -> Option<Interest> {
        self.listener.as_ref().map(|_| Interest::READABLE)
    }

    fn on_ready(&mut self, _cx: &mut Ctx<'_, Msg>, _ready: Ready) {}

    fn on_message(&mut self, cx: &mut Ctx<'_, Msg>, msg: Msg) {
        if msg == Msg::Arm {
            cx.call_later(Duration::from_secs(3600));
            let _ = self.tx.send(Event::Armed(self.name));
        } else {
            let _ = self.tx.send(Event::Got(self.name, msg));
        }
    }

    fn on_close(&mut self, _cx: &mut Ctx<'_, Msg>) {
        let _ = self.tx.send(Event::Closed(self.name));
    }
}

/// Starts a loop on its own thread with one [`Reporter`] per `(name, has_listener)` and
/// runs it; the thread reports `Returned` when `run` returns, then drops the loop.
fn loop_thread(
    reporters: &'static [(&'static str, bool)],
) -> (thread::JoinHandle<()>, mpsc::Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        let mut lp = IoLoop::<Msg>::new().expect("new loop");
        let handles = reporters
            .iter()
            .map(|&(name, listens)| {
                let r = Reporter {
                    name,
                    listener: listens.then(util::listener),
                    tx: tx.clone(),
                };
                lp.spawn(Box::new(r)).expect("spawn")
            })
            .collect();
        tx.send(Event::Setup(lp.handle(), handles))
            .expect("test alive");
        let result = lp.run();
        let returned = Event::Returned {
            result,
            len: lp.len(),
            timers: lp.timer_count(),
        };
        tx.send(returned).expect("test alive");
    });
    (t, rx)
}

fn next_event(rx: &mpsc::Receiver<Event>) -> Event {
    rx.recv_timeout(util::IO_TIMEOUT)
        .expect("the loop thread reports in time")
}

#[test]
fn loop_handle_sends_and_stops_from_another_thread() {
    let (t, rx) = loop_thread(&[("idle", false)]);
    let Event::Setup(remote, handles) = next_event(&rx) else {
        panic!("setup first");
    };

    remote
        .send(handles[0], Msg::Text("hello".into()))
        .expect("post");
    match next_event(&rx) {
        Event::Got("idle", Msg::Text(t)) => assert_eq!(t, "hello"),
        _ => panic!("expected the message"),
    }

    remote.stop().expect("post stop");
    match next_event(&rx) {
        Event::Returned { result, len, .. } => {
            result.expect("run returned Ok");
            assert_eq!(len, 1, "stop leaves the handlers in place");
        }
        _ => panic!("expected run to return"),
    }
    // Dropping the loop closes what is left.
    assert!(matches!(next_event(&rx), Event::Closed("idle")));
    t.join().expect("loop thread");
    assert!(rx.try_iter().next().is_none(), "nothing after the close");
}

#[test]
fn loop_handle_close_all_closes_each_handler_once_and_ends_run() {
    let (t, rx) = loop_thread(&[("listener", true), ("a", false), ("b", false)]);
    let Event::Setup(remote, handles) = next_event(&rx) else {
        panic!("setup first");
    };
    for h in &handles {
        remote.send(*h, Msg::Arm).expect("post");
    }
    let mut armed: Vec<&str> = (0..3)
        .map(|_| match next_event(&rx) {
            Event::Armed(n) => n,
            _ => panic!("expected Armed"),
        })
        .collect();
    armed.sort();
    assert_eq!(armed, ["a", "b", "listener"]);

    remote.close_all().expect("post close_all");
    let mut closed = Vec::new();
    loop {
        match next_event(&rx) {
            Event::Closed(n) => closed.push(n),
            Event::Returned {
                result,
                len,
                timers,
            } => {
                result.expect("run returned Ok");
                assert_eq!((len, timers), (0, 0), "nothing left");
                break;
            }
            _ => panic!("unexpected event"),
        }
    }
    t.join().expect("loop thread");
    closed.extend(rx.try_iter().filter_map(|e| match e {
        Event::Closed(n) => Some(n),
        _ => None,
    }));
    closed.sort();
    assert_eq!(closed, ["a", "b", "listener"], "on_close exactly once each");
}

// ---------------------------------------------------------------------------------------
// 6. The EMFILE back-off lowers RLIMIT_NOFILE: it runs alone, in tests/emfile.rs.
// 7. Connector

#[test]
fn connector_connects_to_a_listener() {
    let l = net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("non-blocking");
    let conn = Connector::start(l.local_addr().expect("addr"), Some([127, 0, 0, 1].into()))
        .expect("start connect");
    let local = match Dial::run(conn) {
        Dialed::Connected(local) => local,
        Dialed::Failed(e) => panic!("connect failed: {e}"),
    };
    let (_s, peer) = l.accept().expect("the connection is queued");
    assert_eq!(peer, local);
}

#[test]
fn connector_reports_a_refused_connect() {
    // Bound but not listening: the port stays ours, and a SYN to it gets a reset.
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    let addr = s
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("an inet address");
    let conn = Connector::start(addr, None).expect("a non-blocking connect is pending");
    match Dial::run(conn) {
        Dialed::Failed(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}"),
        Dialed::Connected(local) => panic!("connected from {local} to a closed port"),
    }
}

// ---------------------------------------------------------------------------------------
// 8. Closing from a callback

#[test]
fn close_inside_a_callback_closes_once_and_the_client_sees_eof() {
    let mut lp = IoLoop::<Msg>::new().expect("new loop");
    let (mut client, stream) = util::pair();
    let closes = Rc::new(Cell::new(0));
    lp.spawn(Quitter::boxed(stream, &closes)).expect("spawn");

    client.write_all(b"QUIT\r\n").expect("send");
    util::drive(&mut lp, "the handler closes", |lp| lp.is_empty());
    assert_eq!(closes.get(), 1);
    assert_eq!(lp.timer_count(), 0, "its timers went with it");
    assert_eq!(util::read_to_eof(&mut client), "221 bye\r\n");

    util::run_for(&mut lp, ms(30));
    assert_eq!(closes.get(), 1, "on_close is not called again");
}

#[test]
fn close_handle_from_another_handler_closes_its_socket() {
    let mut lp = IoLoop::<Msg>::new().expect("new loop");
    let log = Rc::new(RefCell::new(Vec::new()));
    let (mut client, stream) = util::pair();
    let closes = Rc::new(Cell::new(0));
    let victim = lp.spawn(Quitter::boxed(stream, &closes)).expect("spawn");
    let killer = Node::spawn(&mut lp, "killer", &log);

    lp.send(killer, Msg::Kill(victim));
    util::drive(&mut lp, "the victim closes", |lp| lp.len() == 1);
    assert_eq!(closes.get(), 1);
    assert_eq!(util::read_to_eof(&mut client), "");

    // A stale handle closes nothing, not even whoever takes its key.
    let (_client2, stream2) = util::pair();
    let heir = lp.spawn(Quitter::boxed(stream2, &closes)).expect("spawn");
    assert_eq!(heir.key(), victim.key());
    lp.send(killer, Msg::Kill(victim));
    util::run_for(&mut lp, ms(30));
    assert_eq!(lp.len(), 2);
    assert_eq!(closes.get(), 1);
    assert!(log.borrow().is_empty(), "{:?}", log.borrow());
}

/// Schedules a timer as it starts, and closes at once if told to.
struct Starter {
    close_at_start: bool,
    closes: Rc<Cell<u32>>,
}

impl Handler<Msg> for Starter {
    fn source(&mut self) -> Option<&mut dyn Source> {
        None
    }

    fn interest(&self) -> Option<Interest> {
        None
    }

    fn on_ready(&mut self, _cx: &mut Ctx<'_, Msg>, _ready: Ready) {}

    fn on_start(&mut self, cx: &mut Ctx<'_, Msg>) {
        cx.call_later(Duration::from_secs(3600));
        if self.close_at_start {
            cx.close();
        }
    }

    fn on_close(&mut self, _cx: &mut Ctx<'_, Msg>) {
        self.closes.set(self.closes.get() + 1);
    }
}

#[test]
fn close_from_on_start_keeps_counts_right() {
    let mut lp = IoLoop::<Msg>::new().expect("new loop");
    let closes = Rc::new(Cell::new(0));
    let starter = |close_at_start| {
        Box::new(Starter {
            close_at_start,
            closes: Rc::clone(&closes),
        })
    };

    let gone = lp.spawn(starter(true)).expect("spawn");
    assert_eq!((lp.len(), lp.timer_count(), closes.get()), (0, 0, 1));
    lp.send(gone, Msg::Close);
    lp.run_once(Some(Duration::ZERO)).expect("poll");

    let kept = lp.spawn(starter(false)).expect("spawn");
    assert_eq!(kept.key(), gone.key());
    assert_eq!((lp.len(), lp.timer_count(), closes.get()), (1, 1, 1));
    lp.close_all();
    assert_eq!((lp.len(), lp.timer_count(), closes.get()), (0, 0, 2));
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const BACKOFF: Duration = Duration::from_millis(100);
const ECHO_CLIENTS: usize = 50;
const ECHO_LINES: usize = 20;
const EVERY_MS: u64 = 5;
const EVERY_TIMES: u32 = 5;
const SPINS: u32 = 100;
const DEEP_MESSAGES: u32 = 1000;
const NAP: Duration = Duration::from_millis(100);
const NAP_AFTER: [&str; 2] = ["one", "three"];

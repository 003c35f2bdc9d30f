//! The loop itself: polling, dispatch, message delivery, timers and cross-thread wake-ups.

use std::collections::VecDeque;
use std::io;
use std::num::NonZeroU64;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Registry, Token, Waker};
use slab::Slab;

use crate::timers::{TimerId, Timers};
use crate::{Handle, Handler, Ready};

const WAKER_TOKEN: Token = Token(usize::MAX);
const EVENTS_CAPACITY: usize = 1024;

/// The event loop: pyftpdlib's IOLoop plus its scheduler, for messages of type `M`.
pub struct IoLoop<M> {
    poll: Poll,
    events: Events,
    batch: Vec<(usize, Ready)>,
    due: Vec<TimerId>,
    /// The last poll filled the events buffer: more may be ready already (a host loop
    /// waiting on the poller's descriptor may see no new edge for them).
    more_ready: bool,
    core: Core<M>,
    /// Told how long each pass worked (from the end of the poll to the end of the pass),
    /// when a program watches the loop's load; None costs nothing per pass.
    pass_observer: Option<Box<dyn FnMut(Duration)>>,
}

/// What a handler's callback gets: the loop's services, scoped to that handler.
pub struct Ctx<'a, M> {
    core: &'a mut Core<M>,
    me: Handle,
}

/// A thread-safe handle on a loop: stop it or post messages to its handlers from anywhere.
pub struct LoopHandle<M> {
    remote: Arc<Remote<M>>,
}

struct Core<M> {
    registry: Registry,
    slots: Slab<Slot<M>>,
    next_gen: NonZeroU64,
    timers: Timers<Handle>,
    outbox: VecDeque<(Handle, M)>,
    woken: Vec<Handle>,
    closing: Vec<Handle>,
    to_free: Vec<usize>,
    now: Instant,
    stopped: bool,
    /// Handlers added and not yet closed (kept, not counted, since `run` checks it per pass).
    live: usize,
    /// True while messages are being delivered: delivery is a loop, never a recursion.
    delivering: bool,
    /// True while every handler is being closed: none counts as live any more.
    closing_all: bool,
    remote: Arc<Remote<M>>,
}

struct Slot<M> {
    gen: NonZeroU64,
    handler: Option<Box<dyn Handler<M>>>,
    registered: Option<Interest>,
    closing: bool,
}

struct Remote<M> {
    waker: Waker,
    queue: Mutex<VecDeque<RemoteCmd<M>>>,
}

enum RemoteCmd<M> {
    Stop,
    CloseAll,
    Send(Handle, M),
}

impl<M: 'static> IoLoop<M> {
    /// A new, empty loop.
    ///
    /// # Errors
    /// When the OS poller or the waker cannot be created (e.g. out of file descriptors).
    pub fn new() -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER_TOKEN)?;
        let registry = poll.registry().try_clone()?;
        Ok(IoLoop {
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            batch: Vec::with_capacity(EVENTS_CAPACITY),
            due: Vec::new(),
            more_ready: false,
            core: Core {
                registry,
                slots: Slab::new(),
                next_gen: NonZeroU64::MIN,
                timers: Timers::new(),
                outbox: VecDeque::new(),
                woken: Vec::new(),
                closing: Vec::new(),
                to_free: Vec::new(),
                now: Instant::now(),
                stopped: false,
                live: 0,
                delivering: false,
                closing_all: false,
                remote: Arc::new(Remote {
                    waker,
                    queue: Mutex::new(VecDeque::new()),
                }),
            },
            pass_observer: None,
        })
    }

    /// Adds a handler, registering its socket with the interest it asks for.
    ///
    /// # Errors
    /// When the socket cannot be registered with the poller.
    pub fn spawn(&mut self, handler: Box<dyn Handler<M>>) -> io::Result<Handle> {
        self.core.now = Instant::now();
        self.core.spawn(handler)
    }

    /// Queues a message to a handler, delivered on the next pass of the loop.
    pub fn send(&mut self, to: Handle, msg: M) {
        self.core.outbox.push_back((to, msg));
    }

    /// A thread-safe handle to stop this loop or post messages to it.
    pub fn handle(&self) -> LoopHandle<M> {
        LoopHandle {
            remote: Arc::clone(&self.core.remote),
        }
    }

    /// Runs until [`stop`](Ctx::stop_loop) is called or no handler is left (as pyftpdlib's
    /// loop ends when no file descriptor remains, even with timers pending).
    ///
    /// # Errors
    /// When polling fails for a reason other than a signal.
    pub fn run(&mut self) -> io::Result<()> {
        self.core.stopped = false;
        while !self.core.stopped && !self.is_empty() {
            self.run_once(None)?;
        }
        Ok(())
    }

    /// One pass: waits for readiness (at most `max_wait`, or until the next timer), then
    /// dispatches events, due timers, wake-ups and messages. `Some(Duration::ZERO)` never
    /// blocks: a host program can drive the loop from its own.
    ///
    /// # Errors
    /// When polling fails for a reason other than a signal.
    pub fn run_once(&mut self, max_wait: Option<Duration>) -> io::Result<()> {
        let now = Instant::now();
        let mut timeout = self.core.timers.next_delay(now);
        if let Some(max) = max_wait {
            timeout = Some(timeout.map_or(max, |t| t.min(max)));
        }
        if !self.core.outbox.is_empty() || !self.core.woken.is_empty() {
            timeout = Some(Duration::ZERO);
        }
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.events.clear(),
            Err(e) => return Err(e),
        }
        self.core.now = Instant::now();
        self.more_ready = self.events.iter().count() >= self.events.capacity();

        self.batch.clear();
        let mut remote_pending = false;
        for ev in self.events.iter() {
            if ev.token() == WAKER_TOKEN {
                remote_pending = true;
                continue;
            }
            self.batch.push((
                ev.token().0,
                Ready {
                    readable: ev.is_readable() || ev.is_read_closed(),
                    writable: ev.is_writable() || ev.is_write_closed(),
                    error: ev.is_error(),
                    read_closed: ev.is_read_closed(),
                },
            ));
        }
        for i in 0..self.batch.len() {
            let (key, ready) = self.batch[i];
            // Events for unknown or already closed tokens are ignored.
            if let Some(h) = self.core.live_handle(key) {
                self.core
                    .dispatch(h, |handler, cx| handler.on_ready(cx, ready));
            }
        }
        if remote_pending {
            self.drain_remote();
        }
        self.core.free_closed();

        let now = self.core.now;
        self.due.clear();
        self.core.timers.collect_due(now, &mut self.due);
        for i in 0..self.due.len() {
            let id = self.due[i];
            if let Some(owner) = self.core.timers.fire(id, now) {
                self.core
                    .dispatch(owner, |handler, cx| handler.on_timer(cx, id));
            }
        }
        let woken = std::mem::take(&mut self.core.woken);
        for h in &woken {
            self.core
                .dispatch(*h, |handler, cx| handler.on_ready(cx, Ready::ALL));
        }
        self.core.deliver_messages();
        self.core.free_closed();
        // A logger that batches a thread's lines writes them now, before the loop may
        // sleep; loggers that write each line at once do nothing here.
        log::logger().flush();
        if let Some(observe) = &mut self.pass_observer {
            observe(self.core.now.elapsed());
        }
        Ok(())
    }

    /// How long a host loop that waits on [`as_raw_fd`](std::os::fd::AsRawFd::as_raw_fd)
    /// may sleep before the next [`run_once`](Self::run_once): zero while work is queued
    /// (messages, woken handlers, readiness that did not fit in the last pass), the time
    /// to the next timer, or None when there is no timer (wait for the descriptor only).
    pub fn next_timeout(&mut self) -> Option<Duration> {
        if self.more_ready || !self.core.outbox.is_empty() || !self.core.woken.is_empty() {
            return Some(Duration::ZERO);
        }
        self.core.timers.next_delay(Instant::now())
    }

    /// Calls `observe` after each pass with the time the pass worked: from the end of the
    /// poll (the time spent waiting is not counted) to the end of the pass. For a
    /// histogram of the loop's latency; one clock read per pass while set.
    pub fn observe_passes(&mut self, observe: Box<dyn FnMut(Duration)>) {
        self.pass_observer = Some(observe);
    }

    /// Closes every handler (each gets [`Handler::on_close`]) and cancels every timer.
    pub fn close_all(&mut self) {
        self.core.close_all();
    }

    /// The number of live handlers.
    pub fn len(&self) -> usize {
        self.core.live_count()
    }

    /// True when no handler is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of scheduled timers.
    pub fn timer_count(&self) -> usize {
        self.core.timers.len()
    }

    fn drain_remote(&mut self) {
        let cmds: Vec<RemoteCmd<M>> = match self.core.remote.queue.lock() {
            Ok(mut q) => q.drain(..).collect(),
            Err(poisoned) => poisoned.into_inner().drain(..).collect(),
        };
        for cmd in cmds {
            match cmd {
                RemoteCmd::Stop => self.core.stopped = true,
                RemoteCmd::CloseAll => self.core.close_all(),
                RemoteCmd::Send(h, m) => self.core.outbox.push_back((h, m)),
            }
        }
        self.core.deliver_messages();
    }
}

impl<M> Drop for IoLoop<M> {
    fn drop(&mut self) {
        self.core.close_all();
    }
}

impl<M> Core<M> {
    fn spawn(&mut self, handler: Box<dyn Handler<M>>) -> io::Result<Handle> {
        let gen = self.next_gen;
        self.next_gen = self.next_gen.saturating_add(1);
        let key = self.slots.insert(Slot {
            gen,
            handler: None,
            registered: None,
            closing: false,
        });
        let h = Handle { key, gen };
        let mut handler = handler;
        self.live += 1;
        handler.on_start(&mut Ctx { core: self, me: h });
        if self.slots[key].closing {
            self.finish_close(h, handler);
            return Ok(h);
        }
        if let Err(e) = self.sync_interest(h, &mut *handler) {
            self.timers.cancel_owned_by(h);
            self.slots.remove(key);
            self.live -= 1;
            return Err(e);
        }
        self.slots[key].handler = Some(handler);
        Ok(h)
    }

    fn live_handle(&self, key: usize) -> Option<Handle> {
        self.slots
            .get(key)
            .filter(|s| s.handler.is_some() && !s.closing)
            .map(|s| Handle { key, gen: s.gen })
    }

    fn live_count(&self) -> usize {
        self.live
    }

    /// Takes the handler out of its slot, runs `f` on it, puts it back (or finishes
    /// closing it), then delivers the messages the callback queued.
    fn dispatch(&mut self, h: Handle, f: impl FnOnce(&mut dyn Handler<M>, &mut Ctx<'_, M>)) {
        let Some(mut handler) = self.take_handler(h) else {
            return;
        };
        f(&mut *handler, &mut Ctx { core: self, me: h });
        self.settle(h, handler);
        self.deliver_messages();
    }

    fn take_handler(&mut self, h: Handle) -> Option<Box<dyn Handler<M>>> {
        let slot = self.slots.get_mut(h.key)?;
        if slot.gen != h.gen || slot.closing {
            return None;
        }
        slot.handler.take()
    }

    fn settle(&mut self, h: Handle, mut handler: Box<dyn Handler<M>>) {
        let closing = self.slots.get(h.key).is_some_and(|s| s.closing);
        if closing {
            self.finish_close(h, handler);
        } else {
            if let Err(e) = self.sync_interest(h, &mut *handler) {
                log::warn!("ioloop: cannot register handler {}: {e}", h.key);
                self.finish_close(h, handler);
                return self.close_requested();
            }
            if let Some(slot) = self.slots.get_mut(h.key) {
                slot.handler = Some(handler);
            }
        }
        self.close_requested();
    }

    /// Closes handlers that another handler asked to close.
    fn close_requested(&mut self) {
        while let Some(h) = self.closing.pop() {
            if let Some(handler) = self.take_handler(h) {
                if let Some(slot) = self.slots.get_mut(h.key) {
                    slot.closing = true;
                }
                self.finish_close(h, handler);
            }
        }
    }

    /// Registers, re-registers or deregisters the handler's socket when its interest changed.
    fn sync_interest(&mut self, h: Handle, handler: &mut dyn Handler<M>) -> io::Result<()> {
        let want = handler.interest();
        let Some(slot) = self.slots.get_mut(h.key) else {
            return Ok(());
        };
        if want == slot.registered {
            return Ok(());
        }
        if let Some(src) = handler.source() {
            let token = Token(h.key);
            match (slot.registered, want) {
                (None, Some(i)) => self.registry.register(src, token, i)?,
                (Some(_), Some(i)) => self.registry.reregister(src, token, i)?,
                (Some(_), None) => self.registry.deregister(src)?,
                (None, None) => {}
            }
        }
        slot.registered = want;
        Ok(())
    }

    fn finish_close(&mut self, h: Handle, mut handler: Box<dyn Handler<M>>) {
        let registered = self.slots.get_mut(h.key).and_then(|s| {
            s.closing = true;
            s.registered.take()
        });
        if registered.is_some() && handler.deregister_on_close() {
            if let Some(src) = handler.source() {
                // The socket is dropped right after; a failed deregister changes nothing.
                let _ = self.registry.deregister(src);
            }
        }
        self.live -= 1;
        self.timers.cancel_owned_by(h);
        handler.on_close(&mut Ctx { core: self, me: h });
        // Timers set from on_close would never be served: drop them too.
        self.timers.cancel_owned_by(h);
        drop(handler);
        // The key is freed after the current event batch, so that an event already
        // collected for this token cannot reach a handler that reuses the key.
        self.to_free.push(h.key);
    }

    fn free_closed(&mut self) {
        for key in self.to_free.drain(..) {
            if self.slots.get(key).is_some_and(|s| s.closing) {
                self.slots.remove(key);
            }
        }
    }

    fn deliver_messages(&mut self) {
        if self.delivering {
            return; // the loop below picks up what a nested callback queued
        }
        self.delivering = true;
        while let Some((to, msg)) = self.outbox.pop_front() {
            // A message to a closed handle is dropped.
            self.dispatch(to, |handler, cx| handler.on_message(cx, msg));
        }
        self.delivering = false;
    }

    fn close_all(&mut self) {
        let handles: Vec<Handle> = self
            .slots
            .iter()
            .filter(|(_, s)| s.handler.is_some() && !s.closing)
            .map(|(key, s)| Handle { key, gen: s.gen })
            .collect();
        self.closing.extend(handles);
        // Messages queued now are never delivered: a handler asking `is_alive` about
        // another one from its `on_close` learns that nobody will hear it.
        self.closing_all = true;
        self.close_requested();
        self.closing_all = false;
        self.outbox.clear();
        self.woken.clear();
        self.free_closed();
    }
}

impl<M> Ctx<'_, M> {
    /// The time of the current loop pass.
    pub fn now(&self) -> Instant {
        self.core.now
    }

    /// The handle of the handler being called.
    pub fn me(&self) -> Handle {
        self.me
    }

    /// Adds a new handler to the loop.
    ///
    /// # Errors
    /// When its socket cannot be registered with the poller.
    pub fn spawn(&mut self, handler: Box<dyn Handler<M>>) -> io::Result<Handle> {
        self.core.spawn(handler)
    }

    /// Closes the handler being called once the callback returns.
    pub fn close(&mut self) {
        if let Some(slot) = self.core.slots.get_mut(self.me.key) {
            if slot.gen == self.me.gen {
                slot.closing = true;
            }
        }
    }

    /// Closes another handler after the current callback returns (its `on_close` runs).
    pub fn close_handle(&mut self, h: Handle) {
        if h == self.me {
            self.close();
        } else {
            self.core.closing.push(h);
        }
    }

    /// True while `h` names a live handler (never while the loop closes every handler).
    pub fn is_alive(&self, h: Handle) -> bool {
        !self.core.closing_all
            && self.core.slots.get(h.key).is_some_and(|s| {
                // The handler being called is out of its slot, so only `closing` tells.
                s.gen == h.gen && !s.closing && (h == self.me || s.handler.is_some())
            })
    }

    /// Calls this handler's `on_timer` once after `delay` (zero = the next pass), counted
    /// from the clock now, not from the start of the pass: a callback late in a busy pass
    /// must not get a shorter delay.
    pub fn call_later(&mut self, delay: Duration) -> TimerId {
        self.core
            .timers
            .schedule(self.me, Instant::now(), delay, false)
    }

    /// Calls this handler's `on_timer` every `period` until cancelled.
    pub fn call_every(&mut self, period: Duration) -> TimerId {
        self.core
            .timers
            .schedule(self.me, Instant::now(), period, true)
    }

    /// Cancels a timer (a no-op if it already fired).
    pub fn cancel(&mut self, timer: TimerId) {
        self.core.timers.cancel(timer);
    }

    /// Restarts a timer's delay from now, cheaply. Returns false if it no longer exists.
    pub fn reset(&mut self, timer: TimerId) -> bool {
        self.core.timers.reset(timer, Instant::now())
    }

    /// Queues a message for another handler (or this one), delivered after this callback.
    pub fn send(&mut self, to: Handle, msg: M) {
        self.core.outbox.push_back((to, msg));
    }

    /// Calls this handler's `on_ready` again on this pass, with every readiness bit set:
    /// after a pause no new edge arrives for data that is already queued.
    pub fn wake(&mut self) {
        if !self.core.woken.contains(&self.me) {
            self.core.woken.push(self.me);
        }
    }

    /// Makes [`IoLoop::run`] return after this pass.
    pub fn stop_loop(&mut self) {
        self.core.stopped = true;
    }

    /// A thread-safe handle on this loop.
    pub fn loop_handle(&self) -> LoopHandle<M> {
        LoopHandle {
            remote: Arc::clone(&self.core.remote),
        }
    }

    /// The number of live handlers in the loop.
    pub fn handler_count(&self) -> usize {
        self.core.live_count()
    }
}

impl<M> Clone for LoopHandle<M> {
    fn clone(&self) -> Self {
        LoopHandle {
            remote: Arc::clone(&self.remote),
        }
    }
}

impl<M> LoopHandle<M> {
    /// Makes the loop's `run` return after its current pass.
    ///
    /// # Errors
    /// When the waker cannot be signalled.
    pub fn stop(&self) -> io::Result<()> {
        self.post(RemoteCmd::Stop)
    }

    /// Closes every handler of the loop (which then has nothing left and returns from run).
    ///
    /// # Errors
    /// When the waker cannot be signalled.
    pub fn close_all(&self) -> io::Result<()> {
        self.post(RemoteCmd::CloseAll)
    }

    /// Posts a message to a handler of the loop; dropped if the handler is gone.
    ///
    /// # Errors
    /// When the waker cannot be signalled.
    pub fn send(&self, to: Handle, msg: M) -> io::Result<()> {
        self.post(RemoteCmd::Send(to, msg))
    }

    fn post(&self, cmd: RemoteCmd<M>) -> io::Result<()> {
        match self.remote.queue.lock() {
            Ok(mut q) => q.push_back(cmd),
            Err(poisoned) => poisoned.into_inner().push_back(cmd),
        }
        self.remote.waker.wake()
    }
}

/// The poller's descriptor (epoll on Linux): readable when a handler's socket is ready or
/// another thread posted to the loop, so a host program's own loop (poll(2), another mio
/// `Poll`, tokio's `AsyncFd`, glib) can wait on it and call
/// [`run_once`](IoLoop::run_once)`(Some(Duration::ZERO))`.
impl<M> AsRawFd for IoLoop<M> {
    fn as_raw_fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }
}

impl<M> AsFd for IoLoop<M> {
    // mio's `Poll` offers only the raw descriptor: borrowing it is the one unsafe call.
    #[allow(unsafe_code)]
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor belongs to the `Poll` this loop owns and stays open while
        // the loop lives; the `BorrowedFd` borrows the loop, so it cannot outlive it.
        unsafe { BorrowedFd::borrow_raw(self.poll.as_raw_fd()) }
    }
}

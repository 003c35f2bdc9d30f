//! A readiness-based event loop over mio, in the manner of pyftpdlib's `ioloop.py`.
//!
//! An [`IoLoop`] owns a slab of handlers, each usually owning one socket. When the poller
//! reports readiness for a handler's token, the loop takes the handler out of its slot,
//! calls it with a [`Ctx`], puts it back, and re-registers its socket only if the interest
//! the handler derives from its own state ([`Handler::interest`]) changed. Handlers never
//! hold references to each other: they address one another by [`Handle`] and exchange
//! messages that the loop delivers after the current callback returns.
//!
//! Building blocks that handlers embed mirror pyftpdlib's classes: [`Acceptor`],
//! [`Connector`] and [`AsyncChat`]. The [`Timers`] scheduler serves `call_later` /
//! `call_every`. A [`LoopHandle`] lets another thread stop the loop or post messages.
//!
//! mio is edge-triggered on Linux: every handler drains reads, writes and accepts until
//! `WouldBlock`, and treats readiness as a hint.
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod acceptor;
mod chat;
mod connector;
mod event_loop;
mod timers;

pub use acceptor::Acceptor;
pub use chat::{AsyncChat, Line, Producer, ReadStatus};
pub use connector::{connect, connect_state, ConnectState, Connector};
pub use event_loop::{Ctx, IoLoop, LoopHandle};
pub use mio;
pub use mio::Interest;
pub use timers::{Expired, TimerId, TimerOwner, Timers};

use std::io;
use std::num::NonZeroU64;

use rustix::io::Errno;

/// The address of a handler in its loop: the slab key plus a generation, so a message or
/// timer meant for a closed handler never reaches whoever takes its key next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle {
    key: usize,
    /// Never zero, so that `Option<Handle>` and enums holding a handle need no extra word.
    gen: NonZeroU64,
}

impl Handle {
    /// The slab key (also the mio token) of the handler.
    pub fn key(&self) -> usize {
        self.key
    }
}

impl TimerOwner for Handle {
    fn index(&self) -> usize {
        self.key
    }
}

/// What the poller reported for a handler's socket. A hint: handlers try the operation and
/// stop at `WouldBlock`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ready {
    /// The socket may be readable (or has a pending accept).
    pub readable: bool,
    /// The socket may be writable (or a connect finished).
    pub writable: bool,
    /// An error is pending on the socket.
    pub error: bool,
    /// The peer closed its writing half (or the whole connection).
    pub read_closed: bool,
}

impl Ready {
    /// Readiness to use when a handler is woken without a poller event: try everything.
    pub const ALL: Ready = Ready {
        readable: true,
        writable: true,
        error: false,
        read_closed: false,
    };
}

/// One object living in the loop: a listener, a connection, a connector, or a socket-less
/// handler that only receives timers and messages.
pub trait Handler<M> {
    /// The socket to register, or None for a handler without one.
    fn source(&mut self) -> Option<&mut dyn mio::event::Source>;

    /// The readiness this handler wants now, derived from its state; None = "sleeping"
    /// (pyftpdlib's `del_channel`): the socket is deregistered but stays open.
    fn interest(&self) -> Option<Interest>;

    /// The handler was just added to the loop (its socket is registered right after this
    /// returns): the place to schedule its first timers or queue a greeting.
    fn on_start(&mut self, _cx: &mut Ctx<'_, M>) {}

    /// The socket is (probably) ready.
    fn on_ready(&mut self, cx: &mut Ctx<'_, M>, ready: Ready);

    /// A timer scheduled by this handler fired.
    fn on_timer(&mut self, _cx: &mut Ctx<'_, M>, _timer: TimerId) {}

    /// A message sent to this handler's handle arrived.
    fn on_message(&mut self, _cx: &mut Ctx<'_, M>, _msg: M) {}

    /// The handler was closed (by itself or by [`IoLoop::close_all`]) and is about to be
    /// dropped; its socket is already deregistered (unless
    /// [`Handler::deregister_on_close`] said not to). Called exactly once.
    fn on_close(&mut self, _cx: &mut Ctx<'_, M>) {}

    /// Whether the loop deregisters the source before closing the handler (true). A
    /// handler whose source is dropped with it, and whose descriptor was never
    /// duplicated (no `try_clone`, no `fork` while it is open), may say false: closing
    /// the last descriptor removes it from epoll anyway, and the system call is saved.
    fn deregister_on_close(&self) -> bool {
        true
    }
}

/// True for the errors that mean "the peer went away": a close, not a failure.
pub fn is_disconnect(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionReset | ConnectionAborted | NotConnected | BrokenPipe | UnexpectedEof | TimedOut
    ) || e.raw_os_error() == Some(ESHUTDOWN)
}

/// The peer shut the connection down, as a raw number: compared without converting the
/// error, since every failed read and write of a session asks.
const ESHUTDOWN: i32 = Errno::SHUTDOWN.raw_os_error();

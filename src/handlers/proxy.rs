//! Reads the PROXY protocol header a balancer sends before the client's first byte
//! ([`ProxyReader`]), then hands the connection back to whoever accepted it: the server's
//! acceptor for a control connection, a passive listener for a data connection.
//!
//! The header is peeked, not read, until it is whole, then exactly its bytes are consumed: the
//! client's own bytes stay in the socket for the FTP parser (or the TLS handshake), and the
//! reader never buffers more than [`MAX_HEADER_LEN`].

use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Duration;

use ioloop::mio::net::TcpStream;
use ioloop::{Ctx, Handle, Handler, Interest, Ready, TimerId};

use super::Msg;
use crate::proto::proxy::{parse_proxy_header, ProxyAddrs, ProxyParse, MAX_HEADER_LEN};

/// A connection whose header has been read (or has failed), on its way back to its owner.
#[derive(Debug)]
pub(crate) struct Proxied {
    /// The reader that sends it.
    pub(crate) from: Handle,
    /// The connection, positioned after the header; None when it failed (the reader has
    /// logged why and closed it).
    pub(crate) stream: Option<TcpStream>,
    /// The client's address: carried by the header, or the proxy's for `LOCAL`.
    pub(crate) client: SocketAddr,
}

/// One connection waiting for its header, with a deadline.
pub(crate) struct ProxyReader {
    stream: Option<TcpStream>,
    peer: SocketAddr,
    owner: Handle,
    timeout: Duration,
    timer: Option<TimerId>,
    state: ReadState,
    /// What the warning says happened to a failed connection.
    closed: &'static str,
}

/// Where the reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    Waiting,
    /// The header is consumed; the client's address is known.
    Done(SocketAddr),
    Failed,
}

impl ProxyReader {
    pub(crate) fn new(
        stream: TcpStream,
        peer: SocketAddr,
        owner: Handle,
        timeout: Duration,
        closed: &'static str,
    ) -> ProxyReader {
        ProxyReader {
            stream: Some(stream),
            peer,
            owner,
            timeout,
            timer: None,
            state: ReadState::Waiting,
            closed,
        }
    }

    fn set_state(&mut self, cx: &mut Ctx<'_, Msg>, state: ReadState) {
        log::trace!("{}: PROXY header {:?}=>{:?}", self.peer, self.state, state);
        self.state = state;
        // The loop deregisters the socket before on_close, which hands it over.
        cx.close();
    }

    fn fail(&mut self, cx: &mut Ctx<'_, Msg>, why: &dyn std::fmt::Display) {
        log::warn!("{}: {}: {why}.", self.peer, self.closed);
        self.set_state(cx, ReadState::Failed);
    }

    /// Peeks at what arrived, and consumes the header once it is whole.
    fn try_header(&mut self, cx: &mut Ctx<'_, Msg>) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = loop {
            match stream.peek(&mut buf) {
                Ok(0) => return self.fail(cx, &"closed before its PROXY header"),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return self.fail(cx, &e),
            }
        };
        let header = match parse_proxy_header(&buf[..n]) {
            ProxyParse::Incomplete => return,
            ProxyParse::Invalid(e) => return self.fail(cx, &e),
            ProxyParse::Done(header) => header,
        };
        if let Err(e) = consume(stream, &mut buf[..header.len]) {
            return self.fail(cx, &e);
        }
        let client = match header.addrs {
            ProxyAddrs::Tcp { source, .. } => {
                log::debug!("{}: PROXY header for client {source}.", self.peer);
                source
            }
            ProxyAddrs::Local => {
                // The balancer's health checks: not worth more than a debug line.
                log::debug!("{}: PROXY LOCAL header, the proxy itself.", self.peer);
                self.peer
            }
        };
        self.set_state(cx, ReadState::Done(client));
    }
}

/// Reads exactly `buf.len()` bytes that a peek has shown are queued.
fn consume(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Peeked bytes are queued, so this cannot block; if it does, give up.
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Handler<Msg> for ProxyReader {
    fn source(&mut self) -> Option<&mut dyn ioloop::mio::event::Source> {
        self.stream
            .as_mut()
            .map(|s| s as &mut dyn ioloop::mio::event::Source)
    }

    fn interest(&self) -> Option<Interest> {
        match self.state {
            ReadState::Waiting => Some(Interest::READABLE),
            ReadState::Done(_) | ReadState::Failed => None,
        }
    }

    fn on_start(&mut self, cx: &mut Ctx<'_, Msg>) {
        self.timer = Some(cx.call_later(self.timeout));
    }

    fn on_ready(&mut self, cx: &mut Ctx<'_, Msg>, _ready: Ready) {
        if self.state == ReadState::Waiting {
            self.try_header(cx);
        }
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_, Msg>, timer: TimerId) {
        if Some(timer) == self.timer && self.state == ReadState::Waiting {
            self.fail(cx, &"no complete PROXY header in time");
        }
    }

    fn on_close(&mut self, cx: &mut Ctx<'_, Msg>) {
        let (stream, client) = match self.state {
            ReadState::Done(client) => (self.stream.take(), client),
            // Closed by the loop (shutdown) or failed: the owner only learns it is over.
            ReadState::Waiting | ReadState::Failed => (None, self.peer),
        };
        let proxied = Proxied {
            from: cx.me(),
            stream,
            client,
        };
        cx.send(self.owner, Msg::Proxied(Box::new(proxied)));
    }
}

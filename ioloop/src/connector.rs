//! `Connector`: a non-blocking outgoing TCP connect, completed when the socket turns
//! writable (pyftpdlib's Connector, used for active-mode data connections).

use std::io;
use std::net::{IpAddr, SocketAddr};

use mio::net::TcpStream;
use mio::Interest;
use rustix::io::Errno;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Starts a non-blocking connect to `addr`, first binding the source address to
/// `bind_ip` (port chosen by the kernel) when given.
///
/// # Errors
/// When the socket cannot be created or bound, or the connect fails at once.
pub fn connect(addr: SocketAddr, bind_ip: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    if let Some(ip) = bind_ip {
        socket.bind(&SockAddr::from(SocketAddr::new(ip, 0)))?;
    }
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// Checks whether a connect started by [`connect`] finished: SO_ERROR first, then whether
/// a peer is set. Call it when the socket turns writable; a handler that keeps the same
/// socket registered from connect to transfer uses this instead of a [`Connector`].
pub fn connect_state(stream: &TcpStream) -> ConnectState {
    match stream.take_error() {
        Ok(Some(e)) | Err(e) => return ConnectState::Failed(e),
        Ok(None) => {}
    }
    match stream.peer_addr() {
        Ok(_) => ConnectState::Connected,
        Err(e) if e.kind() == io::ErrorKind::NotConnected => ConnectState::Pending,
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) => ConnectState::Pending,
        Err(e) => ConnectState::Failed(e),
    }
}

/// Where a connect stands.
#[derive(Debug)]
pub enum ConnectState {
    /// Still in progress.
    Pending,
    /// Established.
    Connected,
    /// Failed (refused, unreachable, ...).
    Failed(io::Error),
}

/// A connect in progress: register it for writability, call [`Connector::poll_connect`]
/// on every readiness event.
#[derive(Debug)]
pub struct Connector {
    stream: TcpStream,
}

impl Connector {
    /// Wraps a stream returned by [`connect`].
    pub fn new(stream: TcpStream) -> Self {
        Connector { stream }
    }

    /// Starts a connect (see [`connect`]).
    ///
    /// # Errors
    /// As [`connect`].
    pub fn start(addr: SocketAddr, bind_ip: Option<IpAddr>) -> io::Result<Self> {
        connect(addr, bind_ip).map(Connector::new)
    }

    /// The stream, for registration.
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// A connect completes by turning the socket writable.
    pub fn interest(&self) -> Option<Interest> {
        Some(Interest::WRITABLE)
    }

    /// Checks whether the connect finished (see [`connect_state`]).
    pub fn poll_connect(&mut self) -> ConnectState {
        connect_state(&self.stream)
    }

    /// The connected stream.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }
}

/// A connect still under way, as a raw number: `Errno::from_io_error` would add a range
/// check to each comparison.
const EINPROGRESS: i32 = Errno::INPROGRESS.raw_os_error();

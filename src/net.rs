//! Listening sockets as pyftpdlib makes them (SO_REUSEADDR): the server's, with
//! SO_REUSEPORT for the loops of the multi-loop model that share one port, and the
//! passive data listeners of the sessions.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Creates a listening socket with SO_REUSEADDR, as pyftpdlib does.
pub(crate) fn listen(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    listen_with(addr, backlog, ReusePort::No)
}

/// Whether a listener shares its port with others (SO_REUSEPORT: the kernel spreads
/// connections over them).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReusePort {
    No,
    /// The first listener of a group: the port must be free.
    First,
    /// Another listener joining the group of the first.
    Join,
}

/// [`listen`], with SO_REUSEPORT for the multi-loop model.
pub(crate) fn listen_with(
    addr: SocketAddr,
    backlog: i32,
    reuse: ReusePort,
) -> io::Result<std::net::TcpListener> {
    if reuse == ReusePort::First && addr.port() != 0 {
        // SO_REUSEPORT would let this server join another one of the same user already
        // listening there, each getting a share of the clients: a plain bind first makes
        // a port in use fail as it does for the other models.
        let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        probe.set_reuse_address(true)?;
        probe.bind(&addr.into())?;
    }
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse != ReusePort::No {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

//! Files, descriptors and sockets: the calls std does not offer for them (`utimensat`,
//! `faccessat`, descriptor flags, pipes and their size, sendfile(2), splice(2), shutting a
//! listener), through rustix.
//!
//! The functions take raw descriptors that the callers borrow from objects they keep
//! alive for the call (`as_raw_fd()`), so that the callers need not change; [`borrow`]
//! turns one into the `BorrowedFd` rustix takes.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use rustix::fs::{Access, AtFlags, OFlags, Timespec, Timestamps, CWD};
use rustix::net::Shutdown;
use rustix::pipe::{PipeFlags, SpliceFlags};

/// Sets both the access and modification time of `path` (following symlinks), like
/// Python's `os.utime(path, (t, t))`. Explicit times need ownership, not write access,
/// which is why this does not open the file.
pub(crate) fn set_times(path: &Path, secs: i64, nanos: u32) -> io::Result<()> {
    let at = Timespec {
        tv_sec: secs,
        tv_nsec: nanos.into(),
    };
    let times = Timestamps {
        last_access: at,
        last_modification: at,
    };
    Ok(rustix::fs::utimensat(CWD, path, &times, AtFlags::empty())?)
}

/// Whether the effective user may search (enter) `path`: `faccessat(X_OK, AT_EACCESS)`.
pub(crate) fn access_exec(path: &Path) -> io::Result<()> {
    Ok(rustix::fs::accessat(
        CWD,
        path,
        Access::EXEC_OK,
        AtFlags::EACCESS,
    )?)
}

/// sendfile(2) from the file's current offset (which it advances) to a socket.
/// Returns the bytes sent; 0 at end of file.
pub(crate) fn sendfile(socket: RawFd, file: RawFd, count: usize) -> io::Result<usize> {
    // No offset: the kernel uses and advances the file's own.
    Ok(rustix::fs::sendfile(
        borrow(&socket),
        borrow(&file),
        None,
        count,
    )?)
}

/// Whether `fd` was opened with O_APPEND (splice(2) refuses such a target).
pub(crate) fn is_append_only(fd: RawFd) -> bool {
    rustix::fs::fcntl_getfl(borrow(&fd)).is_ok_and(|flags| flags.contains(OFlags::APPEND))
}

/// Clears O_NONBLOCK on `fd` (a file opened without blocking, so that opening a FIFO
/// could not stall; reads and writes of the regular file kept should block as usual).
pub(crate) fn set_blocking(fd: RawFd) -> io::Result<()> {
    let fd = borrow(&fd);
    let flags = rustix::fs::fcntl_getfl(fd)?;
    if flags.contains(OFlags::NONBLOCK) {
        rustix::fs::fcntl_setfl(fd, flags - OFlags::NONBLOCK)?;
    }
    Ok(())
}

/// Whether `fd` has O_NONBLOCK set.
#[cfg(test)]
pub(crate) fn is_nonblocking(fd: RawFd) -> bool {
    rustix::fs::fcntl_getfl(borrow(&fd)).is_ok_and(|flags| flags.contains(OFlags::NONBLOCK))
}

/// splice(2): moves up to `len` bytes from `from` to `to` (one of them a pipe) without
/// copying them through user space, at the descriptors' own offsets. Returns the bytes
/// moved; 0 at end of input.
pub(crate) fn splice(from: RawFd, to: RawFd, len: usize, nonblock: bool) -> io::Result<usize> {
    let mut flags = SpliceFlags::MOVE;
    if nonblock {
        flags |= SpliceFlags::NONBLOCK;
    }
    Ok(rustix::pipe::splice(
        borrow(&from),
        None,
        borrow(&to),
        None,
        len,
        flags,
    )?)
}

/// A pipe whose two ends are non-blocking and closed on exec: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(
        PipeFlags::CLOEXEC | PipeFlags::NONBLOCK,
    )?)
}

/// Makes a listening socket stop listening while its descriptor stays open (Linux:
/// shutdown(2) of a listener disconnects it): connections still queued are reset, new ones
/// refused. Errors are ignored: the socket closes with its owner anyway.
pub(crate) fn stop_listening(fd: RawFd) {
    let _ = rustix::net::shutdown(borrow(&fd), Shutdown::Both);
}

/// Asks for a pipe buffer of `size` bytes (F_SETPIPE_SZ); the kernel rounds it up to a
/// power-of-two number of pages.
pub(crate) fn set_pipe_size(fd: RawFd, size: usize) -> io::Result<()> {
    rustix::pipe::fcntl_setpipe_size(borrow(&fd), size)?;
    Ok(())
}

/// The size of a pipe's buffer in bytes (F_GETPIPE_SZ).
pub(crate) fn pipe_size(fd: RawFd) -> io::Result<usize> {
    Ok(rustix::pipe::fcntl_getpipe_size(borrow(&fd))?)
}

/// Takes descriptor `fd`, inherited from the process that started this one (systemd's
/// socket activation passes listeners from descriptor 3 on), as a TCP listener: checks
/// that it is open and is a listening IPv4 or IPv6 stream socket, and sets close-on-exec,
/// which the service manager leaves unset so that the descriptor survives its exec.
///
/// The caller takes each descriptor once: the environment that named it is removed
/// before, so nothing else in this process can claim it.
pub(crate) fn inherited_listener(fd: RawFd) -> io::Result<std::net::TcpListener> {
    // Refuse a number that is not an open descriptor before owning it: an OwnedFd of a
    // closed number would close whatever gets that number later. (Not through rustix: a
    // BorrowedFd must name an open descriptor, which is what is being checked.)
    // SAFETY: F_GETFD on any number only reads the descriptor's flags, or fails (EBADF).
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is open (checked just above) and no object of this process owns it:
    // it was inherited across exec, and the caller takes it once (see above). The OwnedFd
    // becomes its only owner.
    let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)?;
    // A file or a pipe fails these calls (ENOTSOCK): the same answer as any other socket.
    let is_listener = || -> io::Result<bool> {
        use rustix::net::{sockopt, AddressFamily, SocketType};
        let domain = sockopt::socket_domain(&owned)?;
        Ok(sockopt::socket_type(&owned)? == SocketType::STREAM
            && (domain == AddressFamily::INET || domain == AddressFamily::INET6)
            && sockopt::socket_acceptconn(&owned)?)
    };
    if !is_listener().unwrap_or(false) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a listening TCP socket",
        ));
    }
    Ok(std::net::TcpListener::from(owned))
}

/// Closes a descriptor that some object still holds, in a forked child that will never
/// drop that object (it ends with [`super::exit_process`]).
pub(crate) fn close_inherited(fd: RawFd) {
    // SAFETY: closing a descriptor number has no memory effects; the object holding it
    // is never used or dropped again in this process (see above).
    unsafe { rustix::io::close(fd) };
}

/// `fd` as the `BorrowedFd` rustix takes, for as long as the caller's `fd` variable.
fn borrow(fd: &RawFd) -> BorrowedFd<'_> {
    // SAFETY: every function of this module is handed a descriptor that its caller
    // borrows from a live object (a socket, file or pipe) for the whole call, and the
    // borrow ends with the call's local `fd`.
    unsafe { BorrowedFd::borrow_raw(*fd) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inherited_listener_is_taken_and_closed_on_exec() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fd = std::os::fd::IntoRawFd::into_raw_fd(listener);
        // As a service manager passes it: inherited across exec.
        rustix::io::fcntl_setfd(borrow(&fd), rustix::io::FdFlags::empty()).unwrap();
        let taken = inherited_listener(fd).unwrap();
        assert_eq!(taken.local_addr().unwrap(), addr);
        let flags = rustix::io::fcntl_getfd(&taken).unwrap();
        assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    }

    #[test]
    fn what_is_not_a_tcp_listener_is_refused() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(inherited_listener(std::os::fd::IntoRawFd::into_raw_fd(udp)).is_err());
        let unix = std::os::unix::net::UnixDatagram::unbound().unwrap();
        assert!(inherited_listener(std::os::fd::IntoRawFd::into_raw_fd(unix)).is_err());
        // Not open at all.
        assert!(inherited_listener(-1).is_err());
    }

    #[test]
    fn a_connected_socket_is_not_a_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(inherited_listener(std::os::fd::IntoRawFd::into_raw_fd(stream)).is_err());
    }

    #[test]
    fn nul_in_path_is_an_error() {
        assert!(set_times(Path::new("a\0b"), 0, 0).is_err());
        assert!(access_exec(Path::new("a\0b")).is_err());
    }
}

//! Files, descriptors and sockets: the calls std does not offer for them (`utimensat`,
//! `faccessat`, descriptor flags, pipes and their size, sendfile(2), splice(2), shutting a
//! listener).

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

/// Sets both the access and modification time of `path` (following symlinks), like
/// Python's `os.utime(path, (t, t))`. Explicit times need ownership, not write access,
/// which is why this does not open the file.
// time_t and c_long are 32 bits on some targets, hence the fallible conversions.
#[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
pub(crate) fn set_times(path: &Path, secs: i64, nanos: u32) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    let tv_sec: libc::time_t = secs
        .try_into()
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: timespec is a plain C struct of integers (plus padding on some
    // targets), so the all-zero bit pattern is a valid value.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    ts.tv_sec = tv_sec;
    ts.tv_nsec = nanos.try_into().unwrap_or(0);
    let times = [ts, ts];
    // SAFETY: `c` is a NUL-terminated path that outlives the call and `times` points
    // to the two timespecs utimensat reads.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Whether the effective user may search (enter) `path`: `faccessat(X_OK, AT_EACCESS)`.
pub(crate) fn access_exec(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call; faccessat only
    // reads it.
    let rc = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::X_OK, libc::AT_EACCESS) };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// sendfile(2) from the file's current offset (which it advances) to a socket.
/// Returns the bytes sent; 0 at end of file.
pub(crate) fn sendfile(socket: RawFd, file: RawFd, count: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are open for the duration of the call (borrowed from live
    // objects by the caller); a null offset pointer tells the kernel to use and update the
    // file's own offset, so no memory of ours is written.
    let n = unsafe { libc::sendfile(socket, file, std::ptr::null_mut(), count) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Whether `fd` was opened with O_APPEND (splice(2) refuses such a target).
pub(crate) fn is_append_only(fd: RawFd) -> bool {
    // SAFETY: F_GETFL on a descriptor the caller borrows from a live object; no pointers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    flags != -1 && flags & libc::O_APPEND != 0
}

/// Clears O_NONBLOCK on `fd` (a file opened without blocking, so that opening a FIFO
/// could not stall; reads and writes of the regular file kept should block as usual).
pub(crate) fn set_blocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL / F_SETFL on a descriptor the caller borrows from a live object;
    // no pointers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags == -1 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK != 0
        // SAFETY: as above.
        && unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } == -1
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `fd` has O_NONBLOCK set.
#[cfg(test)]
pub(crate) fn is_nonblocking(fd: RawFd) -> bool {
    // SAFETY: F_GETFL on a descriptor the caller borrows from a live object; no pointers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    flags != -1 && flags & libc::O_NONBLOCK != 0
}

/// splice(2): moves up to `len` bytes from `from` to `to` (one of them a pipe) without
/// copying them through user space, at the descriptors' own offsets. Returns the bytes
/// moved; 0 at end of input.
pub(crate) fn splice(from: RawFd, to: RawFd, len: usize, nonblock: bool) -> io::Result<usize> {
    let mut flags = libc::SPLICE_F_MOVE;
    if nonblock {
        flags |= libc::SPLICE_F_NONBLOCK;
    }
    // SAFETY: both descriptors are open for the duration of the call (borrowed from live
    // objects by the caller); null offset pointers mean "use the file offsets", so no
    // memory of ours is read or written.
    let n = unsafe { libc::splice(from, ptr::null_mut(), to, ptr::null_mut(), len, flags) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// A pipe whose two ends are non-blocking and closed on exec: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the two-element array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Makes a listening socket stop listening while its descriptor stays open (Linux:
/// shutdown(2) of a listener disconnects it): connections still queued are reset, new ones
/// refused. Errors are ignored: the socket closes with its owner anyway.
pub(crate) fn stop_listening(fd: RawFd) {
    // SAFETY: shutdown on a descriptor the caller borrows from a live object; no pointers.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}

/// Asks for a pipe buffer of `size` bytes (F_SETPIPE_SZ); the kernel rounds it up to a
/// power-of-two number of pages.
pub(crate) fn set_pipe_size(fd: RawFd, size: usize) -> io::Result<()> {
    let size = libc::c_int::try_from(size).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: F_SETPIPE_SZ on a descriptor the caller borrows from a live object; no
    // pointers.
    if unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, size) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The size of a pipe's buffer in bytes (F_GETPIPE_SZ).
pub(crate) fn pipe_size(fd: RawFd) -> io::Result<usize> {
    // SAFETY: F_GETPIPE_SZ on a descriptor the caller borrows from a live object; no
    // pointers.
    let size = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
    usize::try_from(size).map_err(|_| io::Error::last_os_error())
}

/// Closes a descriptor that some object still holds, in a forked child that will never
/// drop that object (it ends with [`exit_process`]).
pub(crate) fn close_inherited(fd: RawFd) {
    // SAFETY: closing a descriptor number has no memory effects; the object holding it
    // is never used or dropped again in this process (see above).
    unsafe { libc::close(fd) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_in_path_is_an_error() {
        assert!(set_times(Path::new("a\0b"), 0, 0).is_err());
        assert!(access_exec(Path::new("a\0b")).is_err());
    }
}

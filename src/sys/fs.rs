//! Files, descriptors and sockets: the calls std does not offer for them (`utimensat`,
//! `faccessat`, descriptor flags, pipes and their size, sendfile(2), splice(2), receiving
//! without a copy, shutting a listener), through rustix.
//!
//! The functions take raw descriptors that the callers borrow from objects they keep
//! alive for the call (`as_raw_fd()`), so that the callers need not change; [`borrow`]
//! turns one into the `BorrowedFd` rustix takes.

use std::ffi::OsString;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Access, AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps, CWD};
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

/// What `stat(2)` reports, in this module's own type (the callers build their metadata
/// from it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawStat {
    pub(crate) mode: u32,
    pub(crate) size: u64,
    pub(crate) nlink: u64,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: (i64, u32),
    pub(crate) atime: (i64, u32),
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl RawStat {
    /// Whether this describes a symbolic link.
    pub(crate) fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }

    /// Whether this describes a directory.
    pub(crate) fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    /// Whether this describes a regular file.
    pub(crate) fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }

    // The field widths of `struct stat` differ between architectures.
    #[allow(clippy::unnecessary_cast, clippy::cast_sign_loss)]
    fn from_rustix(st: &rustix::fs::Stat) -> RawStat {
        RawStat {
            mode: st.st_mode as u32,
            size: st.st_size as u64,
            nlink: st.st_nlink as u64,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as u32),
            atime: (st.st_atime as i64, st.st_atime_nsec as u32),
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
        }
    }
}

/// Opens the directory `path` (an absolute path, followed as given) as a handle to
/// resolve other paths from: `O_PATH`, so neither read nor search permission on the
/// directory itself is needed to hold it.
pub(crate) fn open_dir_handle(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        CWD,
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `openat(2)` of `path` relative to `dir`, with `flags` (libc `O_*` bits; close-on-exec
/// is always added) and `mode` for a file it creates.
pub(crate) fn openat(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        path,
        oflags(flags) | OFlags::CLOEXEC,
        Mode::from_bits_truncate(mode),
    )?)
}

/// `openat2(2)` of `path` relative to `dir` with `RESOLVE_BENEATH |
/// RESOLVE_NO_MAGICLINKS`: the kernel refuses (`EXDEV`) any resolution that would leave
/// `dir`, by `..` or by an absolute or relative symlink, and (`ELOOP`) any `/proc` magic
/// link. `ENOSYS` on kernels before 5.6.
pub(crate) fn openat2_beneath(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    let flags = oflags(flags) | OFlags::CLOEXEC;
    // openat2 refuses a mode unless a file may be created.
    let mode = if flags.intersects(OFlags::CREATE | OFlags::TMPFILE) {
        Mode::from_bits_truncate(mode)
    } else {
        Mode::empty()
    };
    Ok(rustix::fs::openat2(
        dir,
        path,
        flags,
        mode,
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )?)
}

/// `fstatat(2)` of `path` relative to `dir`; a final symlink is followed only with
/// `follow`.
pub(crate) fn statat(dir: BorrowedFd<'_>, path: &Path, follow: bool) -> io::Result<RawStat> {
    let flags = if follow {
        AtFlags::empty()
    } else {
        AtFlags::SYMLINK_NOFOLLOW
    };
    Ok(RawStat::from_rustix(&rustix::fs::statat(dir, path, flags)?))
}

/// `fstat(2)`; also for an `O_PATH` descriptor.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<RawStat> {
    Ok(RawStat::from_rustix(&rustix::fs::fstat(fd)?))
}

/// `readlinkat(2)`: the target of the symlink `path` in `dir`, as stored.
pub(crate) fn readlinkat(dir: BorrowedFd<'_>, path: &Path) -> io::Result<PathBuf> {
    let target = rustix::fs::readlinkat(dir, path, Vec::new())?;
    Ok(PathBuf::from(OsString::from_vec(target.into_bytes())))
}

/// `symlinkat(2)`: makes `path` in `dir` a symbolic link whose text is `target`.
pub(crate) fn symlinkat(target: &Path, dir: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    Ok(rustix::fs::symlinkat(target, dir, path)?)
}

/// `mkdirat(2)`.
pub(crate) fn mkdirat(dir: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::mkdirat(
        dir,
        path,
        Mode::from_bits_truncate(mode),
    )?)
}

/// `unlinkat(2)`: removes a directory (`AT_REMOVEDIR`) or anything else.
pub(crate) fn unlinkat(dir: BorrowedFd<'_>, path: &Path, directory: bool) -> io::Result<()> {
    let flags = if directory {
        AtFlags::REMOVEDIR
    } else {
        AtFlags::empty()
    };
    Ok(rustix::fs::unlinkat(dir, path, flags)?)
}

/// `renameat(2)`.
pub(crate) fn renameat(
    from_dir: BorrowedFd<'_>,
    from: &Path,
    to_dir: BorrowedFd<'_>,
    to: &Path,
) -> io::Result<()> {
    Ok(rustix::fs::renameat(from_dir, from, to_dir, to)?)
}

/// `fchmod(2)` of an open file.
pub(crate) fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::fchmod(fd, Mode::from_bits_truncate(mode))?)
}

/// `fchmodat(2)` of `path` relative to `dir`, following a final symlink (Linux has no
/// `AT_SYMLINK_NOFOLLOW` for it before `fchmodat2`).
pub(crate) fn chmodat(dir: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::chmodat(
        dir,
        path,
        Mode::from_bits_truncate(mode),
        AtFlags::empty(),
    )?)
}

/// Sets the access and modification times of `path` in `dir` to `secs.nanos`, never
/// following a final symlink (a link's own times are set instead).
pub(crate) fn set_times_at(
    dir: BorrowedFd<'_>,
    path: &Path,
    secs: i64,
    nanos: u32,
) -> io::Result<()> {
    let at = Timespec {
        tv_sec: secs,
        tv_nsec: nanos.into(),
    };
    let times = Timestamps {
        last_access: at,
        last_modification: at,
    };
    Ok(rustix::fs::utimensat(
        dir,
        path,
        &times,
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

/// Whether the effective user may search (enter) the directory `dir`.
pub(crate) fn access_exec_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::fs::accessat(
        dir,
        ".",
        Access::EXEC_OK,
        AtFlags::EACCESS,
    )?)
}

/// The names in the directory open as `dir` (read, not `O_PATH`), without `.` and `..`.
pub(crate) fn read_dir_names(dir: OwnedFd) -> io::Result<Vec<OsString>> {
    let mut stream = rustix::fs::Dir::new(dir)?;
    let mut names = Vec::new();
    while let Some(entry) = stream.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsString::from_vec(name.to_vec()));
        }
    }
    Ok(names)
}

/// The process's current directory as a directory handle, for `*at` calls on paths
/// that are not resolved beneath a root.
pub(crate) fn cwd() -> BorrowedFd<'static> {
    CWD
}

fn oflags(flags: i32) -> OFlags {
    #[allow(clippy::cast_sign_loss)]
    OFlags::from_bits_retain(flags as u32)
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

/// recv(2) with `MSG_TRUNC` on a TCP socket: takes up to `room.len()` received bytes off
/// the socket and drops them in the kernel, without copying them (tcp(7)); `room` is
/// never written. Returns the bytes dropped; 0 at the end of the stream.
pub(crate) fn recv_dropping(socket: RawFd, room: &mut [u8]) -> io::Result<usize> {
    let (_, n) = rustix::net::recv(
        borrow(&socket),
        room,
        rustix::net::RecvFlags::TRUNC | rustix::net::RecvFlags::DONTWAIT,
    )?;
    Ok(n)
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
        assert!(statat(cwd(), Path::new("a\0b"), true).is_err());
    }
}

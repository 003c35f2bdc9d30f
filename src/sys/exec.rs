//! Starting a new copy of the server: fork(2) and execve(2) of a program that inherits
//! listening sockets as descriptors 3, 4, … (systemd's `LISTEN_FDS` convention) with
//! environment variables that carry the new process's own pid (`LISTEN_PID`), and the
//! datagram it answers with, received with its sender's credentials (`SCM_CREDENTIALS`),
//! so that only that process can say it is ready.
//!
//! Why not `std::process::Command`: `LISTEN_PID` must be the child's pid, known only
//! after the fork, and std builds the environment before it. Setting a variable in the
//! child (a `pre_exec` closure calling setenv) allocates and takes the environment lock,
//! which another thread of the server may have held at the fork. Here everything is
//! allocated before the fork, and the child only writes digits into bytes set aside for
//! them, moves descriptors and execs: async-signal-safe calls alone.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, RawFd};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};

/// Starts `program` with `argv` and the environment `env` (`NAME=value` entries), plus
/// one `NAME=<the child's pid>` entry per name in `pid_vars`; the descriptors `fds`
/// become the child's 3, 4, … (without close-on-exec). Every other descriptor of this
/// process is close-on-exec (std, mio and this crate open them so). Returns the child's
/// pid; an exec that fails ends the child with status 127.
///
/// # Errors
/// When an argument holds a NUL byte, or fork fails.
pub(crate) fn spawn_with_listeners(
    program: &CStr,
    argv: &[CString],
    env: &[CString],
    pid_vars: &[&str],
    fds: &[RawFd],
) -> io::Result<libc::pid_t> {
    let count = i32::try_from(fds.len()).map_err(|_| super::invalid_argument())?;
    // `NAME=` followed by room for the digits of any pid and a NUL.
    let mut pid_entries: Vec<Vec<u8>> = pid_vars
        .iter()
        .map(|name| {
            let mut entry = format!("{name}=").into_bytes();
            entry.resize(entry.len() + PID_DIGITS + 1, 0);
            entry
        })
        .collect();
    let pid_slots: Vec<(*mut u8, usize)> = pid_vars
        .iter()
        .zip(pid_entries.iter_mut())
        .map(|(name, entry)| {
            // SAFETY: `name.len() + 1` is within the entry (it holds `NAME=` and more);
            // the pointer stays valid while `pid_entries` lives and is not resized.
            (
                unsafe { entry.as_mut_ptr().add(name.len() + 1) },
                PID_DIGITS,
            )
        })
        .collect();
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.extend(
        pid_entries
            .iter()
            .map(|e| e.as_ptr().cast::<libc::c_char>()),
    );
    envp.push(std::ptr::null());
    let mut argvp: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argvp.push(std::ptr::null());
    let mut moved: Vec<RawFd> = vec![-1; fds.len()];
    log::logger().flush();
    // SAFETY: fork takes no pointers. The child runs only async-signal-safe code below
    // (getpid, writes into memory allocated before the fork, fcntl, dup2,
    // sigprocmask, execve, _exit) and never returns into Rust code of the parent, so
    // locks other threads held at the fork do not matter.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // SAFETY: see the fork above; every pointer handed on was built before the
            // fork from buffers that are still alive in this copy of the memory.
            unsafe {
                let pid = libc::getpid();
                for &(slot, room) in &pid_slots {
                    write_decimal(slot, room, pid);
                }
                // First out of the way (above the target range, close-on-exec), so that
                // a listener that already is one of the targets is not overwritten.
                for (i, &fd) in fds.iter().enumerate() {
                    moved[i] = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, FIRST_FD + count);
                    if moved[i] == -1 {
                        libc::_exit(EXEC_FAILED);
                    }
                }
                // dup2 leaves the new descriptor without close-on-exec: it is inherited.
                for (i, &fd) in moved.iter().enumerate() {
                    if libc::dup2(fd, FIRST_FD + i as i32) == -1 {
                        libc::_exit(EXEC_FAILED);
                    }
                }
                // The signal mask survives exec: the new process starts with none
                // blocked, whichever thread forked.
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
                libc::execve(program.as_ptr(), argvp.as_ptr(), envp.as_ptr());
                libc::_exit(EXEC_FAILED)
            }
        }
        pid => Ok(pid),
    }
}

/// Receives one datagram into `buf` from a socket with `SO_PASSCRED` set (see
/// [`pass_credentials`]), with the pid of the process that sent it (0 when the kernel
/// attached none). `Ok(None)` when nothing is waiting (the socket is non-blocking).
///
/// # Errors
/// The socket's errors other than "would block".
pub(crate) fn recv_with_sender(
    socket: &impl AsFd,
    buf: &mut [u8],
) -> io::Result<Option<(usize, libc::pid_t)>> {
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [io::IoSliceMut::new(buf)];
    let received = match rustix::net::recvmsg(socket, &mut iov, &mut control, RecvFlags::empty()) {
        Ok(r) => r,
        Err(rustix::io::Errno::AGAIN) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if received.flags.contains(ReturnFlags::TRUNC) {
        // Longer than any notification this server sends: not one of ours.
        return Ok(Some((0, 0)));
    }
    let mut sender = 0;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmCredentials(cred) = message {
            sender = cred.pid.as_raw_nonzero().get();
        }
    }
    Ok(Some((received.bytes, sender)))
}

/// Sets `SO_PASSCRED`: every datagram then carries its sender's pid, uid and gid.
///
/// # Errors
/// When the socket refuses the option.
pub(crate) fn pass_credentials(socket: &impl AsFd) -> io::Result<()> {
    Ok(rustix::net::sockopt::set_socket_passcred(socket, true)?)
}

/// Whether inherited descriptor `fd` is open and is a listening TCP socket bound to
/// `addr` (to be taken with `inherited_listener`). Takes no ownership.
pub(crate) fn is_listener_on(fd: RawFd, addr: Option<std::net::SocketAddr>) -> bool {
    use rustix::net::{sockopt, SocketType};
    // SAFETY: F_GETFD on any number only reads the descriptor's flags, or fails (EBADF).
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return false;
    }
    // SAFETY: `fd` is open (checked just above) and stays open for this call: nothing
    // else in this process owns it before the caller takes it.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let listening = sockopt::socket_type(borrowed) == Ok(SocketType::STREAM)
        && sockopt::socket_acceptconn(borrowed) == Ok(true);
    let bound = rustix::net::getsockname(borrowed)
        .ok()
        .and_then(|a| std::net::SocketAddr::try_from(a).ok());
    listening && bound.is_some() && bound == addr
}

/// Writes `value` in decimal at `slot` followed by a NUL, within `room` digits (a pid
/// always fits). No allocation: this runs in a forked child.
///
/// # Safety
/// `slot` must point to at least `room + 1` writable bytes.
unsafe fn write_decimal(slot: *mut u8, room: usize, value: libc::pid_t) {
    let mut digits = [0u8; PID_DIGITS];
    let mut n = value.unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 || len == digits.len() {
            break;
        }
    }
    let len = len.min(room);
    for i in 0..len {
        // SAFETY: i < len <= room, within the caller's `room + 1` bytes.
        unsafe { *slot.add(i) = digits[len - 1 - i] };
    }
    // SAFETY: len <= room, so the NUL is within the caller's bytes too.
    unsafe { *slot.add(len) = 0 };
}

/// Descriptors passed to the new process start here (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

/// The exit status of a child whose exec failed (the shell's "command not found").
const EXEC_FAILED: i32 = 127;

/// The most digits a pid has (a 32-bit number).
const PID_DIGITS: usize = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_digits() {
        let mut buf = [0xffu8; PID_DIGITS + 1];
        // SAFETY: the buffer holds PID_DIGITS + 1 bytes.
        unsafe { write_decimal(buf.as_mut_ptr(), PID_DIGITS, 40213) };
        assert_eq!(&buf[..6], b"40213\0");
        // SAFETY: as above.
        unsafe { write_decimal(buf.as_mut_ptr(), PID_DIGITS, 7) };
        assert_eq!(&buf[..2], b"7\0");
        // SAFETY: as above.
        unsafe { write_decimal(buf.as_mut_ptr(), PID_DIGITS, i32::MAX) };
        assert_eq!(&buf[..11], b"2147483647\0");
    }

    #[test]
    fn the_child_gets_its_pid_and_the_descriptors() {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fds = [
            std::os::fd::AsRawFd::as_raw_fd(&b),
            std::os::fd::AsRawFd::as_raw_fd(&a),
        ];
        let program = c"/bin/sh";
        // Exits 0 only when LISTEN_PID and WATCHDOG_PID are its own pid and descriptors 3
        // and 4 are open, 5 not.
        let script = c"[ \"$LISTEN_PID\" = \"$$\" ] && [ \"$WATCHDOG_PID\" = \"$$\" ] \
            && [ \"$OTHER\" = kept ] && : <&3 && : <&4 && ! (: <&5) 2>/dev/null";
        let argv = [c"sh".to_owned(), c"-c".to_owned(), script.to_owned()];
        let env = [c"OTHER=kept".to_owned()];
        let pid_vars = ["LISTEN_PID", "WATCHDOG_PID"];
        let pid = spawn_with_listeners(program, &argv, &env, &pid_vars, &fds).unwrap();
        assert_eq!(super::super::reap(pid, true), Some(0));
        // The same script without the descriptors fails: the check can fail.
        let pid = spawn_with_listeners(program, &argv, &env, &pid_vars, &fds[..1]).unwrap();
        assert_ne!(super::super::reap(pid, true), Some(0));
    }

    #[test]
    fn a_program_that_cannot_run_ends_with_127() {
        let argv = [c"nothing".to_owned()];
        let pid = spawn_with_listeners(c"/nonexistent/program", &argv, &[], &[], &[]).unwrap();
        assert_eq!(super::super::reap(pid, true), Some(EXEC_FAILED));
    }
}

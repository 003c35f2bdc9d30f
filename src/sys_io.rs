//! libc calls for the data path and process signals (part of the crate's audited `sys`
//! layer; every `unsafe` block says why it is sound).

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

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

static EXIT_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_exit_signal(_signal: libc::c_int) {
    if EXIT_REQUESTED.swap(true, Ordering::SeqCst) {
        // A second signal: the user insists. _exit is async-signal-safe.
        // SAFETY: _exit takes no pointers and never returns.
        unsafe { libc::_exit(1) };
    }
}

/// Installs SIGINT and SIGTERM handlers that request a clean stop. Without SA_RESTART the
/// loop's epoll_wait returns EINTR, so the loop notices at once.
pub(crate) fn install_exit_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler
        // is an extern "C" fn that only touches an atomic (and calls _exit).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_exit_signal as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// True once SIGINT or SIGTERM arrived after [`install_exit_signals`].
pub(crate) fn exit_signal_received() -> bool {
    EXIT_REQUESTED.load(Ordering::SeqCst)
}

/// Raises the soft RLIMIT_NOFILE to the hard limit, so one loop can hold as many sessions
/// as the system allows. Returns the new soft limit.
pub(crate) fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads the rlimit we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

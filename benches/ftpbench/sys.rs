//! Every `unsafe` block and `libc` call of ftpbench, so that they can be audited in one place.

use std::io;
use std::os::fd::AsRawFd;

/// Raises RLIMIT_NOFILE's soft limit to the hard limit: tens of thousands of sessions need
/// more descriptors than the usual soft limit of 1,024.
pub fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit / setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// RLIMIT_NOFILE's soft limit: the descriptors this process may hold.
pub fn nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed by pointer.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc == 0 {
        lim.rlim_cur
    } else {
        1024
    }
}

/// The page size in bytes and the clock ticks per second, the units of /proc/PID/statm and
/// /proc/PID/stat.
pub fn page_size_and_hz() -> (u64, f64) {
    // SAFETY: sysconf has no preconditions.
    let (page, hz) = unsafe {
        (
            libc::sysconf(libc::_SC_PAGESIZE),
            libc::sysconf(libc::_SC_CLK_TCK),
        )
    };
    (page.max(1) as u64, hz.max(1) as f64)
}

/// Sets IP_BIND_ADDRESS_NO_PORT: bind() then leaves the port to connect(), so each source
/// address gets the whole port range (the 4-tuple, not the local port, must be unique).
pub fn bind_address_no_port(sock: &impl AsRawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: a valid socket and a pointer to a c_int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// sync(2): writes every dirty page back to disk.
pub fn sync() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// Has the kernel kill this process when its parent dies (a client process of `--procs`
/// whose parent was killed would otherwise go on holding its sessions).
pub fn die_with_parent() {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}

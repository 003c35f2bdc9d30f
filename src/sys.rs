//! The crate's audited `unsafe` layer: thin wrappers over the libc calls std does not
//! offer (user and group names, local time, `utimensat`, `faccessat`, sendfile(2),
//! signal handlers, RLIMIT_NOFILE) and the errno values std cannot build by kind.
//!
//! Every wrapper is safe to call, takes and returns owned Rust values, and turns C
//! failures into `None` or `io::Error`. Each `unsafe` block states why it is sound.

use std::ffi::{CStr, CString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::timefmt::Civil;

/// The login name of `uid`, or `None` when the user database has no entry.
pub(crate) fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; INITIAL_BUF];
    loop {
        let mut pwd = MaybeUninit::<libc::passwd>::uninit();
        let mut result: *mut libc::passwd = ptr::null_mut();
        // SAFETY: every pointer is valid for the duration of the call: `pwd` is
        // writable storage for one `passwd`, `buf` is writable for `buf.len()` bytes and
        // `result` is a writable out-pointer. getpwuid_r is the reentrant variant.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                pwd.as_mut_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        match rc {
            0 if !result.is_null() => {
                // SAFETY: on success `result` points to `pwd`, whose `pw_name` is a
                // NUL-terminated string stored inside `buf`, which is still alive.
                let name = unsafe { CStr::from_ptr((*result).pw_name) };
                return Some(String::from_utf8_lossy(name.to_bytes()).into_owned());
            }
            libc::EINTR => {}
            libc::ERANGE if buf.len() < MAX_BUF => buf.resize(buf.len() * 2, 0),
            _ => return None,
        }
    }
}

/// The name of group `gid`, or `None` when the group database has no entry.
pub(crate) fn group_name(gid: u32) -> Option<String> {
    let mut buf = vec![0u8; INITIAL_BUF];
    loop {
        let mut grp = MaybeUninit::<libc::group>::uninit();
        let mut result: *mut libc::group = ptr::null_mut();
        // SAFETY: as in `user_name`: all pointers reference live, writable storage of
        // the advertised sizes for the duration of the reentrant call.
        let rc = unsafe {
            libc::getgrgid_r(
                gid,
                grp.as_mut_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        match rc {
            0 if !result.is_null() => {
                // SAFETY: on success `result` points to `grp`, whose `gr_name` is a
                // NUL-terminated string stored inside `buf`, which is still alive.
                let name = unsafe { CStr::from_ptr((*result).gr_name) };
                return Some(String::from_utf8_lossy(name.to_bytes()).into_owned());
            }
            libc::EINTR => {}
            libc::ERANGE if buf.len() < MAX_BUF => buf.resize(buf.len() * 2, 0),
            _ => return None,
        }
    }
}

/// `secs` since the epoch broken down in the local time zone, or `None` when the C
/// library cannot represent it. glibc reads `TZ` on first use.
// time_t is i64 on most targets but i32 on some, hence the "useless" conversion.
#[allow(clippy::useless_conversion)]
pub(crate) fn localtime(secs: i64) -> Option<Civil> {
    let t: libc::time_t = secs.try_into().ok()?;
    let mut tm = MaybeUninit::<libc::tm>::uninit();
    // SAFETY: `t` is a valid time_t and `tm` is writable storage for one `tm`;
    // localtime_r is the reentrant variant and writes only to `tm`.
    let r = unsafe { libc::localtime_r(&t, tm.as_mut_ptr()) };
    if r.is_null() {
        return None;
    }
    // SAFETY: localtime_r returned non-null, so it fully initialised `tm`.
    let tm = unsafe { tm.assume_init() };
    Some(Civil {
        year: tm.tm_year.checked_add(1900)?,
        month: u8::try_from(tm.tm_mon.checked_add(1)?).ok()?,
        day: u8::try_from(tm.tm_mday).ok()?,
        hour: u8::try_from(tm.tm_hour).ok()?,
        minute: u8::try_from(tm.tm_min).ok()?,
        second: u8::try_from(tm.tm_sec).ok()?,
    })
}

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

/// Error for "not a directory" (ENOTDIR), which `io::ErrorKind` cannot build on our MSRV.
pub(crate) fn not_a_directory() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOTDIR)
}

/// Error for "file exists" (EEXIST), carrying the errno so replies show strerror text.
pub(crate) fn file_exists() -> io::Error {
    io::Error::from_raw_os_error(libc::EEXIST)
}

/// Error for "too many levels of symbolic links" (ELOOP).
pub(crate) fn too_many_links() -> io::Error {
    io::Error::from_raw_os_error(libc::ELOOP)
}

/// Error for "permission denied" (EACCES).
pub(crate) fn permission_denied() -> io::Error {
    io::Error::from_raw_os_error(libc::EACCES)
}

/// Error for "invalid argument" (EINVAL).
pub(crate) fn invalid_argument() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

/// Error for "is a directory" (EISDIR).
pub(crate) fn is_a_directory() -> io::Error {
    io::Error::from_raw_os_error(libc::EISDIR)
}

const INITIAL_BUF: usize = 1024;
const MAX_BUF: usize = 1 << 20;

// ---- data path and process ----------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_uid_zero() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert!(group_name(0).is_some());
    }

    #[test]
    fn unknown_ids_are_none() {
        assert_eq!(user_name(4_000_000_123), None);
        assert_eq!(group_name(4_000_000_123), None);
    }

    #[test]
    fn localtime_epoch_is_around_1970() {
        let c = localtime(0).expect("epoch is representable");
        assert!(c.year == 1969 || c.year == 1970);
    }

    #[test]
    fn nul_in_path_is_an_error() {
        assert!(set_times(Path::new("a\0b"), 0, 0).is_err());
        assert!(access_exec(Path::new("a\0b")).is_err());
    }
}

//! The crate's audited `unsafe` layer: thin wrappers over the libc calls std does not
//! offer (user and group names, local time, `utimensat`, `faccessat`, sendfile(2),
//! signal handlers, RLIMIT_NOFILE) and the errno values std cannot build by kind.
//!
//! Every wrapper is safe to call, takes and returns owned Rust values, and turns C
//! failures into `None` or `io::Error`. Each `unsafe` block states why it is sound.

use std::ffi::{CStr, CString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

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

/// Error for "no such file or directory" (ENOENT).
pub(crate) fn not_found() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOENT)
}

/// Error for "directory not empty" (ENOTEMPTY).
pub(crate) fn directory_not_empty() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOTEMPTY)
}

/// Error for "device or resource busy" (EBUSY): the root of a tree cannot be removed
/// or renamed.
pub(crate) fn busy() -> io::Error {
    io::Error::from_raw_os_error(libc::EBUSY)
}

/// Error for "no space left on device" (ENOSPC).
pub(crate) fn no_space() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

/// Error for "file name too long" (ENAMETOOLONG).
pub(crate) fn name_too_long() -> io::Error {
    io::Error::from_raw_os_error(libc::ENAMETOOLONG)
}

/// Error for "bad file descriptor" (EBADF): reading a file opened only for writing, or
/// the reverse.
pub(crate) fn bad_descriptor() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADF)
}

/// Error for a FIFO, socket or device where only a regular file will do: replies say
/// `Not a regular file.`
pub(crate) fn not_a_regular_file() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, crate::error::NotARegularFile)
}

/// Error for "file too large" (EFBIG).
pub(crate) fn file_too_large() -> io::Error {
    io::Error::from_raw_os_error(libc::EFBIG)
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

static EXIT_REQUESTS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_exit_signal(_signal: libc::c_int) {
    if EXIT_REQUESTS.fetch_add(1, Ordering::SeqCst) >= 2 {
        // A third signal while the loop is not listening: the user insists.
        // SAFETY: _exit is async-signal-safe, takes no pointers and never returns.
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

/// How many SIGINT / SIGTERM arrived since [`install_exit_signals`].
pub(crate) fn exit_signals_received() -> usize {
    EXIT_REQUESTS.load(Ordering::SeqCst)
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

// ---- processes: fork, pipes, signals, shared memory -----------------------------------

/// Which side of a [`fork`] the caller is on.
pub(crate) enum Forked {
    /// The new process.
    Child,
    /// The original process; the child's pid.
    Parent(libc::pid_t),
}

/// fork(2). The child has only the calling thread: it must not wait on locks that other
/// threads of the parent may have held (the callers fork from a loop thread while no
/// other thread of the server runs, and the child builds everything it uses anew).
pub(crate) fn fork() -> io::Result<Forked> {
    // Log lines a batching logger still holds would otherwise be written by both processes.
    log::logger().flush();
    // SAFETY: fork takes no pointers. The child continues on a copy of this thread's
    // stack and memory; the callers uphold the single-thread precondition documented
    // above and end the child with `exit_process`, so no destructor of the parent's
    // objects runs twice.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Ends this process at once with `code`, without running destructors or atexit
/// handlers (a forked child must not tear down state it shares with its parent, such as
/// the parent's epoll registrations).
pub(crate) fn exit_process(code: i32) -> ! {
    // _exit skips every buffer: write out the log lines first.
    log::logger().flush();
    // SAFETY: _exit takes no pointers and never returns.
    unsafe { libc::_exit(code) }
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

/// Sends `signal` to process `pid`; errors (e.g. it is gone already) are ignored.
pub(crate) fn signal_process(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill takes no pointers.
    unsafe { libc::kill(pid, signal) };
}

/// Reaps child `pid` if it has exited (`block` waits for it). Returns its exit status in
/// the form the shell shows: the exit code, or 128 + the signal that killed it.
pub(crate) fn reap(pid: libc::pid_t, block: bool) -> Option<i32> {
    let mut status: libc::c_int = 0;
    let flags = if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: waitpid writes the status into the integer we own.
        let rc = unsafe { libc::waitpid(pid, &mut status, flags) };
        if rc == pid {
            return Some(if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                libc::WEXITSTATUS(status)
            });
        }
        if rc == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return None;
    }
}

/// In a forked worker: leaves the parent's process group, so a terminal's Ctrl-C reaches
/// only the parent (which forwards a graceful stop), and asks the kernel for a SIGTERM
/// when the parent dies, so no worker outlives its server. Ends the process at once if
/// the parent is already gone.
pub(crate) fn follow_parent(parent: libc::pid_t) {
    // SAFETY: setpgid, prctl with PR_SET_PDEATHSIG and getppid take no pointers.
    unsafe {
        libc::setpgid(0, 0);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong);
        if libc::getppid() != parent {
            libc::_exit(0);
        }
    }
}

/// This process's id.
pub(crate) fn process_id() -> libc::pid_t {
    // SAFETY: getpid takes no arguments and cannot fail.
    unsafe { libc::getpid() }
}

/// Forgets the SIGINT / SIGTERM already counted (a forked child starts afresh).
pub(crate) fn reset_exit_signals() {
    EXIT_REQUESTS.store(0, Ordering::SeqCst);
}

/// Blocks SIGINT and SIGTERM in the calling thread, so they reach the thread that runs
/// the server's main loop (whose epoll_wait they interrupt) and not a helper thread.
pub(crate) fn block_exit_signals() {
    // SAFETY: a zeroed sigset_t is valid storage for sigemptyset, which initializes it;
    // pthread_sigmask reads the set we own and accepts a null old-set pointer.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, ptr::null_mut());
    }
}

/// The kernel's id of the calling thread (unique across processes).
pub(crate) fn thread_id() -> u32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() as u32 }
}

/// Whether a thread or process with this id still exists.
pub(crate) fn task_exists(id: u32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence; it takes no pointers.
    let rc = unsafe { libc::kill(id as libc::pid_t, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Zeroed memory shared with every process later forked from this one (and, like any
/// memory, with this process's threads), seen as 32-bit atomic words.
pub(crate) struct SharedWords {
    ptr: ptr::NonNull<AtomicU32>,
    len: usize,
}

// SAFETY: the mapping is only ever accessed through atomics, so sharing and sending it
// between threads is sound.
unsafe impl Send for SharedWords {}
// SAFETY: as above.
unsafe impl Sync for SharedWords {}

impl SharedWords {
    /// Maps `len` zeroed words, shared across fork.
    pub(crate) fn new(len: usize) -> io::Result<SharedWords> {
        let bytes = len.max(1) * std::mem::size_of::<AtomicU32>();
        // SAFETY: an anonymous mapping at an address the kernel picks touches no
        // existing memory; the result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = ptr::NonNull::new(p.cast::<AtomicU32>()).ok_or_else(invalid_argument)?;
        Ok(SharedWords { ptr, len })
    }

    /// The words.
    pub(crate) fn words(&self) -> &[AtomicU32] {
        // SAFETY: the mapping holds `len` page-aligned, zero-initialized u32 slots (a
        // valid AtomicU32 each), stays mapped until `self` is dropped, and is only
        // accessed through atomics.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        let bytes = self.len.max(1) * std::mem::size_of::<AtomicU32>();
        // SAFETY: unmaps exactly the mapping created in `new`; no reference into it
        // outlives `self` (`words` borrows self).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), bytes) };
    }
}

// ---- passwords, accounts and impersonation -----------------------------------------

// libxcrypt (Debian's libcrypt.so.1), opened with dlopen(3) the first time a password is
// hashed or checked: a server with only plain-text or anonymous users never maps it (one
// shared library less at start-up). `crypt_rn` and `crypt_gensalt_rn` take the size of
// the buffer they write to, so a smaller `struct crypt_data` of another libcrypt can never
// be overrun; both return NULL on failure (never a "*0" failure token).
type CryptRnFn = unsafe extern "C" fn(
    phrase: *const libc::c_char,
    setting: *const libc::c_char,
    data: *mut libc::c_void,
    size: libc::c_int,
) -> *mut libc::c_char;
type CryptGensaltRnFn = unsafe extern "C" fn(
    prefix: *const libc::c_char,
    count: libc::c_ulong,
    rbytes: *const libc::c_char,
    nrbytes: libc::c_int,
    output: *mut libc::c_char,
    output_size: libc::c_int,
) -> *mut libc::c_char;

struct Libcrypt {
    crypt_rn: CryptRnFn,
    crypt_gensalt_rn: CryptGensaltRnFn,
}

/// The library's two entry points, or why they could not be had (kept: every later call
/// reports the same reason).
fn libcrypt() -> Result<&'static Libcrypt, &'static str> {
    static LIBCRYPT: std::sync::OnceLock<Result<Libcrypt, String>> = std::sync::OnceLock::new();
    LIBCRYPT
        .get_or_init(|| {
            let lib = open_libcrypt();
            if let Err(why) = &lib {
                log::error!("cannot use libcrypt.so.1 (crypt(3) passwords): {why}");
            }
            lib
        })
        .as_ref()
        .map_err(String::as_str)
}

fn open_libcrypt() -> Result<Libcrypt, String> {
    fn dlerror() -> String {
        // SAFETY: dlerror returns NULL or a NUL-terminated message owned by libc, read
        // here before any other dl* call on this thread can replace it.
        let e = unsafe { libc::dlerror() };
        if e.is_null() {
            "unknown error".to_owned()
        } else {
            // SAFETY: non-NULL, NUL-terminated (above).
            unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
        }
    }
    // SAFETY: the name is a NUL-terminated literal; the handle is never closed, so the
    // symbols taken from it stay valid for the life of the process.
    let handle =
        unsafe { libc::dlopen(c"libcrypt.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(dlerror());
    }
    let symbol = |name: &CStr| {
        // SAFETY: `handle` is a live dlopen handle and `name` is NUL-terminated.
        let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
        if p.is_null() {
            Err(dlerror())
        } else {
            Ok(p)
        }
    };
    let crypt_rn = symbol(c"crypt_rn")?;
    let crypt_gensalt_rn = symbol(c"crypt_gensalt_rn")?;
    // SAFETY: these are libxcrypt's exported functions, whose C prototypes the two
    // function pointer types copy exactly; a data pointer and a function pointer have the
    // same size on every platform dlsym(3) runs on.
    unsafe {
        Ok(Libcrypt {
            crypt_rn: std::mem::transmute::<*mut libc::c_void, CryptRnFn>(crypt_rn),
            crypt_gensalt_rn: std::mem::transmute::<*mut libc::c_void, CryptGensaltRnFn>(
                crypt_gensalt_rn,
            ),
        })
    }
}

/// crypt(3): hashes `phrase` with the method, cost and salt of `setting` (a full hash
/// works as setting, which is how a password is verified). `None` when libcrypt refuses:
/// an unknown or disabled method, a malformed setting, a NUL byte in the phrase.
pub(crate) fn crypt(phrase: &[u8], setting: &str) -> Option<String> {
    let lib = libcrypt().ok()?;
    let phrase = CString::new(phrase).ok()?;
    let setting = CString::new(setting).ok()?;
    let mut data = vec![0u8; CRYPT_DATA_SIZE];
    let size = libc::c_int::try_from(data.len()).ok()?;
    // SAFETY: `phrase` and `setting` are NUL-terminated and outlive the call; `data` is a
    // zeroed, writable buffer of exactly `size` bytes, as crypt_rn requires. The result
    // points into `data` (or is NULL).
    let out = unsafe {
        (lib.crypt_rn)(
            phrase.as_ptr(),
            setting.as_ptr(),
            data.as_mut_ptr().cast(),
            size,
        )
    };
    let hash = if out.is_null() {
        None
    } else {
        // SAFETY: non-NULL results are NUL-terminated strings inside `data`, still alive.
        let s = unsafe { CStr::from_ptr(out) };
        Some(String::from_utf8_lossy(s.to_bytes()).into_owned())
    };
    // The buffer held the passphrase: wipe it before it goes back to the allocator.
    data.fill(0);
    std::hint::black_box(&data);
    hash
}

/// crypt_gensalt(3): a setting string for method `prefix` (`$y$`, `$6$`, `$2b$`…) at the
/// default cost, salted with `random` (16 bytes from /dev/urandom suit every method).
pub(crate) fn gensalt(prefix: &str, random: &[u8]) -> io::Result<String> {
    let lib = libcrypt().map_err(|why| io::Error::other(format!("libcrypt.so.1: {why}")))?;
    let prefix = CString::new(prefix)?;
    let n = libc::c_int::try_from(random.len()).map_err(|_| invalid_argument())?;
    let mut out = [0u8; CRYPT_GENSALT_OUTPUT_SIZE];
    // SAFETY: `prefix` is NUL-terminated, `random` is readable for `n` bytes and `out` is
    // writable for its full length, which is what we pass as output_size.
    let r = unsafe {
        (lib.crypt_gensalt_rn)(
            prefix.as_ptr(),
            0,
            random.as_ptr().cast(),
            n,
            out.as_mut_ptr().cast(),
            CRYPT_GENSALT_OUTPUT_SIZE as libc::c_int,
        )
    };
    if r.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success `r` points to the NUL-terminated setting written into `out`.
    let s = unsafe { CStr::from_ptr(r) };
    Ok(String::from_utf8_lossy(s.to_bytes()).into_owned())
}

/// One passwd(5) entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Account {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) home: std::path::PathBuf,
    pub(crate) shell: std::path::PathBuf,
}

/// The passwd entry of `name` (getpwnam_r), `None` when there is none.
///
/// # Errors
/// When the user database cannot be read.
pub(crate) fn account(name: &str) -> io::Result<Option<Account>> {
    let c = CString::new(name).map_err(|_| invalid_argument())?;
    let mut buf = vec![0u8; INITIAL_BUF];
    loop {
        let mut pwd = MaybeUninit::<libc::passwd>::uninit();
        let mut result: *mut libc::passwd = ptr::null_mut();
        // SAFETY: `c` is NUL-terminated; `pwd`, `buf` (for `buf.len()` bytes) and `result`
        // are live, writable storage for the duration of this reentrant call.
        let rc = unsafe {
            libc::getpwnam_r(
                c.as_ptr(),
                pwd.as_mut_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        match rc {
            0 if result.is_null() => return Ok(None),
            0 => {
                // SAFETY: on success `result` points to `pwd`, fully initialised, whose
                // strings are NUL-terminated inside `buf`, which is still alive.
                let (pw, home, shell) = unsafe {
                    let pw = &*result;
                    (pw, CStr::from_ptr(pw.pw_dir), CStr::from_ptr(pw.pw_shell))
                };
                return Ok(Some(Account {
                    uid: pw.pw_uid,
                    gid: pw.pw_gid,
                    home: Path::new(std::ffi::OsStr::from_bytes(home.to_bytes())).to_path_buf(),
                    shell: Path::new(std::ffi::OsStr::from_bytes(shell.to_bytes())).to_path_buf(),
                }));
            }
            libc::EINTR => {}
            libc::ERANGE if buf.len() < MAX_BUF => buf.resize(buf.len() * 2, 0),
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// The shadow entry of a user: the password hash, and the day the account expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shadow {
    pub(crate) hash: String,
    /// Days since 1970-01-01 after which the account is disabled (`sp_expire`).
    pub(crate) expires: Option<i64>,
}

/// The shadow entry of `name` (getspnam_r); `None` when the user has none.
///
/// # Errors
/// `EACCES` when the process may not read the shadow database (not root), or another
/// error reading it.
pub(crate) fn shadow_entry(name: &str) -> io::Result<Option<Shadow>> {
    let c = CString::new(name).map_err(|_| invalid_argument())?;
    let mut buf = vec![0u8; INITIAL_BUF];
    loop {
        let mut sp = MaybeUninit::<libc::spwd>::uninit();
        let mut result: *mut libc::spwd = ptr::null_mut();
        // SAFETY: as in `account`: every pointer references live, writable storage of the
        // advertised size for the duration of the reentrant call.
        let rc = unsafe {
            libc::getspnam_r(
                c.as_ptr(),
                sp.as_mut_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        // glibc returns -1 and sets errno rather than returning the error number.
        let rc = if rc == -1 {
            io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO)
        } else {
            rc
        };
        match rc {
            0 if result.is_null() => return Ok(None),
            0 => {
                // SAFETY: on success `result` points to `sp`, fully initialised, whose
                // `sp_pwdp` is a NUL-terminated string inside `buf`, still alive.
                let (hash, expire) = unsafe {
                    let sp = &*result;
                    (CStr::from_ptr(sp.sp_pwdp), sp.sp_expire)
                };
                let hash = String::from_utf8_lossy(hash.to_bytes()).into_owned();
                buf.fill(0);
                #[allow(clippy::useless_conversion)] // c_long is i32 on some targets
                let expires = Some(i64::from(expire)).filter(|&d| d >= 0);
                return Ok(Some(Shadow { hash, expires }));
            }
            libc::EINTR => {}
            libc::ERANGE if buf.len() < MAX_BUF => buf.resize(buf.len() * 2, 0),
            libc::ENOENT => return Ok(None),
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// The groups `name` belongs to (getgrouplist), `gid` included.
///
/// # Errors
/// `EINVAL` for a name with a NUL byte; `E2BIG` for an absurd number of groups.
pub(crate) fn group_list(name: &str, gid: u32) -> io::Result<Vec<u32>> {
    let c = CString::new(name).map_err(|_| invalid_argument())?;
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    for _ in 0..8 {
        let mut n = libc::c_int::try_from(groups.len()).map_err(|_| invalid_argument())?;
        // SAFETY: `c` is NUL-terminated; `groups` is writable for `n` entries, and
        // getgrouplist writes at most `n` of them, storing the real count in `n`.
        let rc = unsafe { libc::getgrouplist(c.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        let n = usize::try_from(n).unwrap_or(0);
        if rc >= 0 {
            groups.truncate(n);
            return Ok(groups);
        }
        groups.resize(n.max(groups.len() * 2), 0);
    }
    Err(io::Error::from_raw_os_error(libc::E2BIG))
}

/// The effective user and group ids and supplementary groups of the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) euid: u32,
    pub(crate) egid: u32,
    pub(crate) groups: Vec<u32>,
}

/// The process's current [`Credentials`].
///
/// # Errors
/// The error of getgroups(2).
pub(crate) fn credentials() -> io::Result<Credentials> {
    // SAFETY: getgroups with size 0 only returns the count and writes nothing.
    let n = unsafe { libc::getgroups(0, ptr::null_mut()) };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    let mut groups: Vec<libc::gid_t> = vec![0; n];
    let size = libc::c_int::try_from(n).map_err(|_| invalid_argument())?;
    // SAFETY: `groups` is writable for `size` entries.
    let got = unsafe { libc::getgroups(size, groups.as_mut_ptr()) };
    let got = usize::try_from(got).map_err(|_| io::Error::last_os_error())?;
    groups.truncate(got);
    // SAFETY: geteuid and getegid take no arguments and cannot fail.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    Ok(Credentials { euid, egid, groups })
}

/// The effective user id of the process.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// The effective group id of the process.
pub(crate) fn effective_gid() -> u32 {
    // SAFETY: getegid takes no arguments and cannot fail.
    unsafe { libc::getegid() }
}

/// Takes on `to` as the effective identity: supplementary groups, then the effective
/// gid, then the effective uid (the order in which a root process still may). The real
/// and saved ids stay, so [`set_credentials`] back to root works. Process-wide: glibc
/// applies set*id calls to every thread.
///
/// # Errors
/// The first failing call; the identity may then be half switched, so the caller must
/// switch back to its saved credentials.
pub(crate) fn set_credentials(to: &Credentials) -> io::Result<()> {
    if effective_uid() != 0 {
        // setgroups and setegid need root: go back to it first (the real uid is root).
        // SAFETY: seteuid takes a plain integer.
        if unsafe { libc::seteuid(0) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: `to.groups` is readable for its length; gid_t is u32 on Linux.
    if unsafe { libc::setgroups(to.groups.len(), to.groups.as_ptr()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: setegid and seteuid take plain integers.
    if unsafe { libc::setegid(to.egid) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::seteuid(to.euid) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

// ---- PAM (cargo feature "pam") -------------------------------------------------------

#[cfg(feature = "pam")]
mod pam {
    use std::ffi::{c_char, c_int, c_void, CStr, CString};
    use std::ptr;

    #[repr(C)]
    pub(super) struct PamMessage {
        msg_style: c_int,
        msg: *const c_char,
    }

    #[repr(C)]
    pub(super) struct PamResponse {
        resp: *mut c_char,
        resp_retcode: c_int,
    }

    type ConvFn = extern "C" fn(
        num_msg: c_int,
        msg: *mut *const PamMessage,
        resp: *mut *mut PamResponse,
        appdata: *mut c_void,
    ) -> c_int;

    #[repr(C)]
    pub(super) struct PamConv {
        conv: ConvFn,
        appdata: *mut c_void,
    }

    // Linked by file name: Debian ships libpam.so.0 without the libpam.so development
    // link unless libpam0g-dev is installed.
    #[link(name = "libpam.so.0", kind = "dylib", modifiers = "+verbatim")]
    extern "C" {
        fn pam_start(
            service: *const c_char,
            user: *const c_char,
            conv: *const PamConv,
            pamh: *mut *mut c_void,
        ) -> c_int;
        fn pam_set_item(pamh: *mut c_void, item: c_int, value: *const c_void) -> c_int;
        fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
        fn pam_acct_mgmt(pamh: *mut c_void, flags: c_int) -> c_int;
        fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
        fn pam_strerror(pamh: *mut c_void, errnum: c_int) -> *const c_char;
    }

    const PAM_SUCCESS: c_int = 0;
    const PAM_BUF_ERR: c_int = 5;
    const PAM_CONV_ERR: c_int = 19;
    const PAM_RHOST: c_int = 4;
    const PAM_FAIL_DELAY: c_int = 10;
    const PAM_PROMPT_ECHO_OFF: c_int = 1;
    const PAM_PROMPT_ECHO_ON: c_int = 2;
    const PAM_SILENT: c_int = 0x8000;
    const PAM_DISALLOW_NULL_AUTHTOK: c_int = 0x0001;

    /// What the conversation answers: the password to hidden prompts, the user name to
    /// visible ones.
    struct Answers {
        user: CString,
        password: CString,
    }

    /// The PAM conversation: answers each prompt from `Answers`. Responses are
    /// allocated with calloc/strdup because PAM frees them with free().
    extern "C" fn converse(
        num_msg: c_int,
        msg: *mut *const PamMessage,
        resp: *mut *mut PamResponse,
        appdata: *mut c_void,
    ) -> c_int {
        let Ok(n) = usize::try_from(num_msg) else {
            return PAM_CONV_ERR;
        };
        if n == 0 || msg.is_null() || resp.is_null() || appdata.is_null() {
            return PAM_CONV_ERR;
        }
        // SAFETY: calloc with a non-zero count; the memory is handed to PAM, which
        // frees it (and each non-NULL `resp` inside) with free().
        let out =
            unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
        if out.is_null() {
            return PAM_BUF_ERR;
        }
        // SAFETY: `appdata` is the `Answers` that `authenticate` passed in `PamConv`,
        // alive for the whole PAM transaction that calls this function.
        let answers = unsafe { &*appdata.cast::<Answers>() };
        for i in 0..n {
            // SAFETY: Linux-PAM passes `msg` as an array of `n` pointers to messages
            // (the layout both Linux-PAM and OpenPAM agree on for this indexing).
            let m = unsafe { &**msg.add(i) };
            let answer = match m.msg_style {
                PAM_PROMPT_ECHO_OFF => Some(&answers.password),
                PAM_PROMPT_ECHO_ON => Some(&answers.user),
                _ => None, // error and info texts need no answer
            };
            if let Some(a) = answer {
                // SAFETY: `a` is NUL-terminated; strdup allocates with malloc, freed by
                // PAM; `out` has room for `n` zeroed responses.
                unsafe {
                    let dup = libc::strdup(a.as_ptr());
                    if dup.is_null() {
                        free_responses(out, i);
                        return PAM_BUF_ERR;
                    }
                    (*out.add(i)).resp = dup;
                }
            }
        }
        // SAFETY: `resp` is PAM's out-pointer for the response array.
        unsafe { *resp = out };
        PAM_SUCCESS
    }

    /// Frees the first `filled` answers and the array (on a failed conversation).
    ///
    /// # Safety
    /// `out` must come from calloc in `converse`, with `filled` entries set by strdup.
    unsafe fn free_responses(out: *mut PamResponse, filled: usize) {
        for j in 0..filled {
            let r = (*out.add(j)).resp;
            if !r.is_null() {
                // Wipe the copy of the password before freeing it.
                libc::memset(r.cast(), 0, libc::strlen(r));
                libc::free(r.cast());
            }
        }
        libc::free(out.cast());
    }

    /// A fail-delay hook that does nothing: the FTP server answers a failed login after
    /// its own non-blocking delay, so PAM must not sleep on the event loop.
    extern "C" fn no_delay(_status: c_int, _usec: libc::c_uint, _appdata: *mut c_void) {}

    /// pam_authenticate then pam_acct_mgmt for `user` with `password` through PAM
    /// service `service`; the error carries pam_strerror's text.
    pub(crate) fn authenticate(
        service: &str,
        user: &str,
        password: &str,
        rhost: Option<&str>,
    ) -> Result<(), String> {
        let service = CString::new(service).map_err(|_| "NUL in the service name")?;
        let c_user = CString::new(user).map_err(|_| "NUL in the user name")?;
        let answers = Answers {
            user: c_user.clone(),
            password: CString::new(password).map_err(|_| "NUL in the password")?,
        };
        let conv = PamConv {
            conv: converse,
            appdata: ptr::from_ref(&answers).cast_mut().cast(),
        };
        let mut pamh: *mut c_void = ptr::null_mut();
        // SAFETY: the strings are NUL-terminated; `conv` and the `answers` it points to
        // outlive the transaction, which ends with pam_end below; `pamh` is written.
        let rc = unsafe { pam_start(service.as_ptr(), c_user.as_ptr(), &conv, &mut pamh) };
        if rc != PAM_SUCCESS || pamh.is_null() {
            return Err(format!("pam_start failed ({rc})"));
        }
        let rhost = rhost.and_then(|h| CString::new(h).ok());
        // SAFETY: `pamh` is a live handle; PAM copies string items; the delay hook is a
        // valid function pointer with the signature PAM_FAIL_DELAY expects.
        let mut rc = unsafe {
            if let Some(h) = &rhost {
                pam_set_item(pamh, PAM_RHOST, h.as_ptr().cast());
            }
            let hook: extern "C" fn(c_int, libc::c_uint, *mut c_void) = no_delay;
            pam_set_item(pamh, PAM_FAIL_DELAY, hook as *const c_void);
            pam_authenticate(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK)
        };
        if rc == PAM_SUCCESS {
            // SAFETY: as above.
            rc = unsafe { pam_acct_mgmt(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK) };
        }
        let verdict = if rc == PAM_SUCCESS {
            Ok(())
        } else {
            // SAFETY: pam_strerror returns a static NUL-terminated string (or NULL).
            let text = unsafe {
                let s = pam_strerror(pamh, rc);
                if s.is_null() {
                    format!("PAM error {rc}")
                } else {
                    CStr::from_ptr(s).to_string_lossy().into_owned()
                }
            };
            Err(text)
        };
        // SAFETY: ends the transaction started above; `pamh` is not used afterwards.
        unsafe { pam_end(pamh, rc) };
        verdict
    }
}

#[cfg(feature = "pam")]
pub(crate) use pam::authenticate as pam_authenticate;

const CRYPT_DATA_SIZE: usize = 32768;
const CRYPT_GENSALT_OUTPUT_SIZE: usize = 192;

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
    fn crypt_verifies_what_gensalt_made() {
        let random = [7u8; 16];
        for prefix in ["$y$", "$6$", "$5$", "$2b$"] {
            let setting = gensalt(prefix, &random).expect(prefix);
            assert!(setting.starts_with(prefix), "{setting}");
            let hash = crypt(b"secret", &setting).expect("hash");
            assert_eq!(crypt(b"secret", &hash).as_deref(), Some(hash.as_str()));
            assert_ne!(crypt(b"secreT", &hash).as_deref(), Some(hash.as_str()));
        }
        assert_eq!(crypt(b"x", "!"), None);
        assert_eq!(crypt(b"x", "*"), None);
        assert_eq!(crypt(b"a\0b", "$6$salt"), None);
        assert!(gensalt("$nope$", &random).is_err());
    }

    #[test]
    fn accounts_and_groups() {
        let root = account("root")
            .expect("passwd readable")
            .expect("root exists");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(account("no-such-user-ftpdlib").expect("lookup"), None);
        assert!(group_list("root", 0).expect("groups").contains(&0));
        let creds = credentials().expect("credentials");
        assert_eq!(creds.euid, effective_uid());
    }

    #[test]
    fn nul_in_path_is_an_error() {
        assert!(set_times(Path::new("a\0b"), 0, 0).is_err());
        assert!(access_exec(Path::new("a\0b")).is_err());
    }
}

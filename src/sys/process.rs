//! Processes and signals: fork and reaping, the exit signals and their handler, the
//! parent-death signal, thread ids, RLIMIT_NOFILE, and memory shared across fork.

use std::io;
use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use super::invalid_argument;

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

//! Processes and signals: fork and reaping, the exit signals and their handler, the
//! hand-over signal (SIGUSR2), the parent-death signal, thread ids, RLIMIT_NOFILE, and memory shared across fork.
//!
//! rustix makes the calls, except four that stay with libc: fork(2), _exit(2),
//! sigaction(2) and pthread_sigmask(3). rustix has them only in its `runtime` module,
//! which is meant for runtimes that replace the C library and must not be used in a
//! process that has one: this program is linked with glibc, whose fork handlers,
//! thread state and signal handling those calls would go around.

use std::io;
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use rustix::mm::{MapFlags, ProtFlags};
use rustix::process::{Pid, Resource, Rlimit, Signal, WaitOptions};

use super::invalid_argument;

static EXIT_REQUESTS: AtomicUsize = AtomicUsize::new(0);
/// The last exit signal that arrived (0 before any).
static LAST_EXIT_SIGNAL: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_exit_signal(signal: libc::c_int) {
    LAST_EXIT_SIGNAL.store(usize::try_from(signal).unwrap_or(0), Ordering::SeqCst);
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

static REOPEN_SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_reopen_signal(_signal: libc::c_int) {
    REOPEN_SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// Installs a SIGUSR1 handler that only counts the signal, for a log writer to reopen its
/// file (logrotate's `postrotate`). SA_RESTART: the signal asks for nothing urgent, so
/// the system calls it interrupts resume (epoll_wait still returns EINTR, which the loop
/// retries).
pub(crate) fn install_reopen_signal() {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler is
    // an extern "C" fn that only stores to an atomic.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_reopen_signal as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut());
    }
}

/// How many SIGUSR1 arrived since [`install_reopen_signal`].
pub(crate) fn reopen_signals_received() -> usize {
    REOPEN_SIGNALS.load(Ordering::SeqCst)
}

static HANDOVER_REQUESTS: AtomicUsize = AtomicUsize::new(0);
/// The process that sent the last SIGUSR2 (0 when the kernel did not say).
static HANDOVER_SENDER: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_handover_signal(
    _signal: libc::c_int,
    info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    let sender = if info.is_null() {
        0
    } else {
        // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t for the handler's
        // duration (not null: checked); si_pid is a plain field read, async-signal-safe.
        unsafe { (*info).si_pid() }
    };
    HANDOVER_SENDER.store(sender, Ordering::SeqCst);
    HANDOVER_REQUESTS.fetch_add(1, Ordering::SeqCst);
}

/// Installs a SIGUSR2 handler that counts the signal and notes who sent it: a request to
/// hand the listening sockets over to a new process (in a pre-fork worker, the
/// supervisor's order to stop accepting). Without SA_RESTART, so the loop's epoll_wait
/// returns at once.
pub(crate) fn install_handover_signal() {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler is
    // an extern "C" fn of the SA_SIGINFO shape that only reads its siginfo and stores to
    // atomics.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_handover_signal as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut());
    }
}

/// How many SIGUSR2 arrived since [`install_handover_signal`] (or the last
/// [`reset_handover_signals`]), and the pid that sent the last one (0 if unknown).
pub(crate) fn handover_signals_received() -> (usize, libc::pid_t) {
    (
        HANDOVER_REQUESTS.load(Ordering::SeqCst),
        HANDOVER_SENDER.load(Ordering::SeqCst),
    )
}

/// Forgets the SIGUSR2 already counted (a forked worker starts afresh).
pub(crate) fn reset_handover_signals() {
    HANDOVER_REQUESTS.store(0, Ordering::SeqCst);
    HANDOVER_SENDER.store(0, Ordering::SeqCst);
}

static RELOAD_SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_reload_signal(_signal: libc::c_int) {
    RELOAD_SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// Installs a SIGHUP handler that only counts the signal, a request to reload the
/// settings. Without SA_RESTART, as for the exit signals: the loop's epoll_wait returns
/// EINTR and the loop notices at once.
pub(crate) fn install_reload_signal() {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler is
    // an extern "C" fn that only adds to an atomic.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_reload_signal as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGHUP, &action, std::ptr::null_mut());
    }
}

/// How many SIGHUP arrived since [`install_reload_signal`] (or [`reset_exit_signals`]).
pub(crate) fn reload_signals_received() -> usize {
    RELOAD_SIGNALS.load(Ordering::SeqCst)
}

/// CLOCK_MONOTONIC in microseconds: the clock systemd's `MONOTONIC_USEC=` is read on.
pub(crate) fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to the pointer, which is to a local we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let micros = u64::try_from(now.tv_nsec).unwrap_or(0) / 1_000;
    secs.saturating_mul(1_000_000).saturating_add(micros)
}

/// Whether the last SIGINT / SIGTERM to arrive was SIGTERM (a service manager's stop,
/// rather than a terminal's Ctrl-C).
pub(crate) fn last_exit_signal_was_term() -> bool {
    LAST_EXIT_SIGNAL.load(Ordering::SeqCst) == usize::try_from(libc::SIGTERM).unwrap_or(0)
}

/// Raises the soft RLIMIT_NOFILE to the hard limit, so one loop can hold as many sessions
/// as the system allows. Returns the new soft limit.
pub(crate) fn raise_nofile_limit() -> io::Result<u64> {
    let lim = rustix::process::getrlimit(Resource::Nofile);
    // The soft limit never exceeds the hard one, so differing means lower. `None` is
    // RLIM_INFINITY.
    if lim.current != lim.maximum {
        let raised = Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        rustix::process::setrlimit(Resource::Nofile, raised)?;
    }
    Ok(lim.maximum.unwrap_or(u64::MAX))
}

/// Gives the heap's free memory back to the system (glibc's `malloc_trim(0)`): what start-up
/// allocated and freed (the command line parser's tables, the configuration's text) would
/// otherwise stay resident for the life of the process. Nothing elsewhere than glibc.
pub(crate) fn release_free_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory of the allocator's arenas to the
    // system; it takes no pointer and leaves every allocation in place.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// This process's soft limit on open files (None: unlimited).
pub(crate) fn nofile_limit() -> Option<u64> {
    rustix::process::getrlimit(Resource::Nofile).current
}

/// The kernel's cap on a listen backlog (`net.core.somaxconn`), if it can be read.
pub(crate) fn somaxconn() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
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
    if let (Some(pid), Some(signal)) = (positive_pid(pid), Signal::from_named_raw(signal)) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Reaps child `pid` if it has exited (`block` waits for it). Returns its exit status in
/// the form the shell shows: the exit code, or 128 + the signal that killed it.
pub(crate) fn reap(pid: libc::pid_t, block: bool) -> Option<i32> {
    let pid = positive_pid(pid)?;
    let options = if block {
        WaitOptions::empty()
    } else {
        WaitOptions::NOHANG
    };
    loop {
        match rustix::process::waitpid(Some(pid), options) {
            Ok(Some((_, status))) => {
                return Some(match status.terminating_signal() {
                    Some(signal) => 128 + signal,
                    None => status.exit_status().unwrap_or(0),
                })
            }
            Err(rustix::io::Errno::INTR) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

/// In a forked worker: leaves the parent's process group, so a terminal's Ctrl-C reaches
/// only the parent (which forwards a graceful stop), and asks the kernel for a SIGTERM
/// when the parent dies, so no worker outlives its server. Ends the process at once if
/// the parent is already gone.
pub(crate) fn follow_parent(parent: libc::pid_t) {
    let _ = rustix::process::setpgid(None, None);
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::TERM));
    if Pid::as_raw(rustix::process::getppid()) != parent {
        exit_process(0);
    }
}

/// This process's id.
pub(crate) fn process_id() -> libc::pid_t {
    rustix::process::getpid().as_raw_pid()
}

/// Forgets the SIGINT / SIGTERM / SIGHUP already counted (a forked child starts afresh).
pub(crate) fn reset_exit_signals() {
    EXIT_REQUESTS.store(0, Ordering::SeqCst);
    RELOAD_SIGNALS.store(0, Ordering::SeqCst);
}

/// Blocks SIGINT, SIGTERM and SIGUSR2 in the calling thread, so they reach the thread
/// that runs the server's main loop (whose epoll_wait they interrupt) and not a helper
/// thread.
/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread, so they reach the thread that runs
/// the server's main loop (whose epoll_wait they interrupt) and not a helper thread.
pub(crate) fn block_exit_signals() {
    // SAFETY: a zeroed sigset_t is valid storage for sigemptyset, which initializes it;
    // pthread_sigmask reads the set we own and accepts a null old-set pointer.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGUSR2);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, ptr::null_mut());
    }
}

/// The kernel's id of the calling thread (unique across processes).
pub(crate) fn thread_id() -> u32 {
    // Thread ids are positive pids, so the sign bit is never set.
    rustix::thread::gettid().as_raw_pid().unsigned_abs()
}

/// Whether a thread or process with this id still exists. An id outside the pid range
/// names none.
pub(crate) fn task_exists(id: u32) -> bool {
    let Some(pid) = i32::try_from(id).ok().and_then(positive_pid) else {
        return false;
    };
    rustix::process::test_kill_process(pid) != Err(rustix::io::Errno::SRCH)
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
        // existing memory; failure comes back as an error, not MAP_FAILED.
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                ptr::null_mut(),
                bytes,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED | MapFlags::NORESERVE,
            )
        }?;
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
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), bytes) };
    }
}

/// Zeroed memory shared with every process later forked from this one, seen as 64-bit
/// atomic counters (the metrics: every worker process adds to the same cells).
pub(crate) struct SharedCounters {
    ptr: ptr::NonNull<AtomicU64>,
    len: usize,
}

// SAFETY: the mapping is only ever accessed through atomics, so sharing and sending it
// between threads is sound.
unsafe impl Send for SharedCounters {}
// SAFETY: as above.
unsafe impl Sync for SharedCounters {}

impl SharedCounters {
    /// Maps `len` zeroed counters, shared across fork.
    pub(crate) fn new(len: usize) -> io::Result<SharedCounters> {
        let bytes = len.max(1) * std::mem::size_of::<AtomicU64>();
        // SAFETY: an anonymous mapping at an address the kernel picks touches no
        // existing memory; failure comes back as an error, not MAP_FAILED.
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                ptr::null_mut(),
                bytes,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
            )
        }?;
        let ptr = ptr::NonNull::new(p.cast::<AtomicU64>()).ok_or_else(invalid_argument)?;
        Ok(SharedCounters { ptr, len })
    }

    /// The counters.
    pub(crate) fn cells(&self) -> &[AtomicU64] {
        // SAFETY: the mapping holds `len` page-aligned (so 8-byte aligned),
        // zero-initialized u64 slots (a valid AtomicU64 each), stays mapped until `self`
        // is dropped, and is only accessed through atomics.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for SharedCounters {
    fn drop(&mut self) {
        let bytes = self.len.max(1) * std::mem::size_of::<AtomicU64>();
        // SAFETY: unmaps exactly the mapping created in `new`; no reference into it
        // outlives `self` (`cells` borrows self).
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), bytes) };
    }
}

/// `raw` as a pid when it names one process (positive); 0 and negative values, which
/// kill(2) and waitpid(2) read as process groups, never come from our callers.
fn positive_pid(raw: libc::pid_t) -> Option<Pid> {
    if raw > 0 {
        Pid::from_raw(raw)
    } else {
        None
    }
}

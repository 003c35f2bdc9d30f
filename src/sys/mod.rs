//! The crate's audited `unsafe` layer: thin wrappers over the system calls std does not
//! offer, one file per subject (files and sockets, processes and signals, starting a new
//! copy of the server, users and credentials, crypt, PAM), and the errno values std
//! cannot build by kind.
//!
//! Every wrapper is safe to call, takes and returns owned Rust values, and turns C
//! failures into `None` or `io::Error`. Each `unsafe` block states why it is sound. This
//! module imports nothing from the rest of the crate: it returns its own small types
//! and the callers map them.

use std::io;

mod crypt;
mod exec;
mod fs;
#[cfg(feature = "pam")]
mod pam;
mod process;
mod users;

pub(crate) use crypt::{crypt, gensalt};
pub(crate) use exec::{is_listener_on, pass_credentials, recv_with_sender, spawn_with_listeners};
#[cfg(test)]
pub(crate) use fs::is_nonblocking;
pub(crate) use fs::{
    access_exec_dir, chmodat, close_inherited, cwd, fchmod, fstat, inherited_listener,
    is_append_only, mkdirat, open_dir_handle, openat, openat2_beneath, pipe, pipe_size,
    read_dir_names, readlinkat, recv_dropping, renameat, sendfile, set_blocking, set_pipe_size,
    set_times, set_times_at, splice, statat, stop_listening, symlinkat, unlinkat, RawStat,
};
#[cfg(feature = "pam")]
pub(crate) use pam::authenticate as pam_authenticate;
pub(crate) use process::{
    block_exit_signals, exit_process, exit_signals_received, follow_parent, fork,
    handover_signals_received, install_exit_signals, install_handover_signal,
    install_reload_signal, install_reopen_signal, last_exit_signal_was_term, monotonic_usec,
    nofile_limit, process_id, raise_nofile_limit, reap, release_free_heap, reload_signals_received,
    reopen_signals_received, reset_exit_signals, reset_handover_signals, signal_process, somaxconn,
    task_exists, thread_id, Forked, SharedCounters, SharedWords,
};
pub(crate) use users::{
    account, credentials, effective_gid, effective_uid, group_list, group_name, set_credentials,
    shadow_entry, user_name, Account, Credentials,
};

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

/// Error for "file too large" (EFBIG).
pub(crate) fn file_too_large() -> io::Error {
    io::Error::from_raw_os_error(libc::EFBIG)
}

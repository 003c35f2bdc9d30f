//! Users, groups and credentials: the user and group databases (getpwuid_r,
//! getgrgid_r, getpwnam_r, getspnam_r, getgrouplist) and the effective identity of the
//! process (getgroups, seteuid and friends).
//!
//! rustix reads the identity; the rest is hand-written FFI to the C library, on purpose.
//! The user and group databases are the C library's: it answers through NSS (files,
//! LDAP, systemd-userdb…), which no system-call crate can stand in for, so rustix has no
//! such lookups. And switching the identity must go through glibc's seteuid and friends,
//! which apply the change to every thread of the process, where rustix's calls change
//! only the calling thread.

use std::ffi::{CStr, CString};
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

use rustix::process::Gid;

use super::invalid_argument;

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
    let groups = rustix::process::getgroups()?;
    Ok(Credentials {
        euid: effective_uid(),
        egid: effective_gid(),
        groups: groups.into_iter().map(Gid::as_raw).collect(),
    })
}

/// The effective user id of the process.
pub(crate) fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The effective group id of the process.
pub(crate) fn effective_gid() -> u32 {
    rustix::process::getegid().as_raw()
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

const INITIAL_BUF: usize = 1024;
const MAX_BUF: usize = 1 << 20;

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
}

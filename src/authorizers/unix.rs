//! pyftpdlib's `UnixAuthorizer`: the system's own accounts (passwd and shadow through
//! the C library, so NSS sources count too), verified with the system's crypt(3), and
//! impersonated around every filesystem operation with setgroups/setegid/seteuid.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::{self, ThreadId};

use super::{
    canonical_dir, check_perms, constant_time_eq, passwords, AuthenticationFailed, Authorizer,
    AuthorizerError, ANONYMOUS, DEFAULT_MSG_LOGIN, DEFAULT_MSG_QUIT, READ_PERMS,
};
use crate::filesystems::{AbstractedFs, FileSystem, UnixFilesystem};
use crate::sys;

/// The options of a [`UnixAuthorizer`], with pyftpdlib's defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UnixOptions {
    /// The permission letters of every system user (default `elradfmwMT`); the OS
    /// permissions of the impersonated user still apply on top.
    pub global_perm: String,
    /// When not empty, only these users may log in. Exclusive with `rejected_users`.
    pub allowed_users: Vec<String>,
    /// These users may not log in. Exclusive with `allowed_users`.
    pub rejected_users: Vec<String>,
    /// Refuse users whose login shell is not listed in /etc/shells (a missing
    /// /etc/shells accepts every shell; anonymous is exempt). Default true.
    pub require_valid_shell: bool,
    /// The system account that `anonymous` sessions run as, in its home, read-only
    /// (`elr`) unless overridden. `None` (the default) refuses anonymous logins.
    pub anonymous_user: Option<String>,
    /// The `230` text (default `Login successful.`).
    pub msg_login: String,
    /// The `221` text (default `Goodbye.`).
    pub msg_quit: String,
    /// Check passwords through this PAM service (e.g. `"login"`, or a file of your own
    /// in /etc/pam.d) instead of the shadow database: pam_authenticate, then
    /// pam_acct_mgmt, so expired and locked accounts are refused too. PAM's own
    /// failure delay is disabled (the server delays failed logins without blocking).
    /// `None` (the default) reads the shadow database. Cargo feature `pam`.
    #[cfg(feature = "pam")]
    pub pam_service: Option<String>,
}

impl Default for UnixOptions {
    fn default() -> Self {
        Self {
            global_perm: "elradfmwMT".to_owned(),
            allowed_users: Vec::new(),
            rejected_users: Vec::new(),
            require_valid_shell: true,
            anonymous_user: None,
            msg_login: DEFAULT_MSG_LOGIN.to_owned(),
            msg_quit: DEFAULT_MSG_QUIT.to_owned(),
            #[cfg(feature = "pam")]
            pam_service: None,
        }
    }
}

/// What [`UnixAuthorizer::override_user`] changes for one user; `None` keeps the
/// system's (or the global) value.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct UserOverride {
    /// A password accepted instead of the shadow one (clear text, as in pyftpdlib).
    pub password: Option<String>,
    /// Another home directory (must exist).
    pub home: Option<PathBuf>,
    /// Other permission letters.
    pub perm: Option<String>,
    /// Another `230` text.
    pub msg_login: Option<String>,
    /// Another `221` text.
    pub msg_quit: Option<String>,
}

/// Serves the system's accounts (Linux; the process must run as root).
///
/// A user logs in with the password of the shadow database; the session's filesystem is
/// a [`UnixFilesystem`] starting in the passwd home, with no virtual root: what the user
/// may touch is what the OS lets that user touch, because every command of the session
/// runs with the process's effective uid, gid and supplementary groups switched to the
/// user's ([`Authorizer::impersonate_user`]) and switched back right after.
///
/// Impersonation is process-wide (glibc applies set*id calls to every thread), so with
/// the multi-thread model the authorizer lets one thread at a time be impersonated, and
/// runs its own root work (reading the shadow database) only when no thread is: the
/// commands of different sessions then never overlap. `anonymous` (when
/// `anonymous_user` is set) runs as that account but inside an [`AbstractedFs`] rooted
/// at its home.
///
/// ```no_run
/// use ftpdlib::authorizers::{UnixAuthorizer, UnixOptions};
///
/// let mut opts = UnixOptions::default();
/// opts.rejected_users = vec!["root".into()];
/// let auth = UnixAuthorizer::new(opts)?;
/// # Ok::<(), ftpdlib::authorizers::AuthorizerError>(())
/// ```
#[derive(Debug)]
pub struct UnixAuthorizer {
    opts: UnixOptions,
    overrides: HashMap<String, Override>,
    /// The identity to return to after each command.
    saved: sys::Credentials,
    /// A setting hashed against for unknown users, so they cost as much as known ones.
    decoy: Option<String>,
    /// Which thread holds the process's identity (see [`Turn`]).
    turn: Turn,
}

/// A process-wide turn: the thread between `impersonate_user` and
/// `terminate_impersonation`, or running root-only work. A lock that outlives one call
/// (impersonation spans two), hence a flag and a condition variable rather than a
/// guard; the identity it protects is shared by every thread of the process.
#[derive(Debug, Default)]
struct Turn {
    owner: Mutex<Option<ThreadId>>,
    freed: Condvar,
}

impl Turn {
    /// Waits until no other thread holds the turn, then takes it. Returns false when
    /// this thread held it already (and must then not give it back early).
    fn take(&self) -> bool {
        let me = thread::current().id();
        let mut owner = self.lock();
        loop {
            match *owner {
                None => {
                    *owner = Some(me);
                    return true;
                }
                Some(t) if t == me => return false,
                Some(_) => {
                    owner = self
                        .freed
                        .wait(owner)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
            }
        }
    }

    /// Gives the turn back if this thread holds it.
    fn give_back(&self) {
        let mut owner = self.lock();
        if *owner == Some(thread::current().id()) {
            *owner = None;
            self.freed.notify_one();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<ThreadId>> {
        // The flag stays meaningful even if a holder panicked.
        self.owner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` holding the turn (as root: nobody is impersonated meanwhile).
    fn as_server<R>(&self, f: impl FnOnce() -> R) -> R {
        let taken = self.take();
        let r = f();
        if taken {
            self.give_back();
        }
        r
    }
}

#[derive(Clone)]
struct Override {
    password: Option<String>,
    home: Option<PathBuf>,
    perm: Option<String>,
    msg_login: Option<String>,
    msg_quit: Option<String>,
}

impl std::fmt::Debug for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Override")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("home", &self.home)
            .field("perm", &self.perm)
            .finish_non_exhaustive()
    }
}

impl UnixAuthorizer {
    /// Checks the options against the system and remembers the process's identity.
    ///
    /// # Errors
    /// [`AuthorizerError::NotRoot`] unless the effective uid is 0 and the shadow
    /// database is readable; [`AuthorizerError::AllowedAndRejected`];
    /// [`AuthorizerError::AnonymousListed`]; [`AuthorizerError::NoSuchUser`] for a
    /// listed user or `anonymous_user` that does not exist;
    /// [`AuthorizerError::NoValidHome`] when `anonymous_user` has no home directory;
    /// [`AuthorizerError::NoSuchPermission`] for a bad letter in `global_perm`.
    pub fn new(opts: UnixOptions) -> Result<Self, AuthorizerError> {
        if sys::effective_uid() != 0 || sys::shadow_entry("root").is_err() {
            return Err(AuthorizerError::NotRoot);
        }
        check_perms("", &opts.global_perm)?;
        if !opts.allowed_users.is_empty() && !opts.rejected_users.is_empty() {
            return Err(AuthorizerError::AllowedAndRejected);
        }
        for user in opts.allowed_users.iter().chain(&opts.rejected_users) {
            if user == ANONYMOUS {
                return Err(AuthorizerError::AnonymousListed);
            }
            if lookup(user)?.is_none() {
                return Err(AuthorizerError::NoSuchUser(user.clone()));
            }
        }
        if let Some(anon) = &opts.anonymous_user {
            let account = lookup(anon)?.ok_or_else(|| AuthorizerError::NoSuchUser(anon.clone()))?;
            if !account.home.is_dir() {
                return Err(AuthorizerError::NoValidHome(anon.clone()));
            }
        }
        let saved = sys::credentials().map_err(AuthorizerError::Database)?;
        let decoy = sys::gensalt("$y$", &[0x5a; 16])
            .or_else(|_| sys::gensalt("$6$", &[0x5a; 16]))
            .ok();
        Ok(Self {
            opts,
            overrides: HashMap::new(),
            saved,
            decoy,
            turn: Turn::default(),
        })
    }

    /// Replaces, for one user, the password, home, permissions or messages
    /// (pyftpdlib's `override_user`). `username` may be `anonymous` (no password).
    ///
    /// # Errors
    /// [`AuthorizerError::EmptyOverride`], [`AuthorizerError::AnonymousPassword`],
    /// [`AuthorizerError::NoSuchUser`] for an unknown system user,
    /// [`AuthorizerError::NoSuchDirectory`] for a missing home,
    /// [`AuthorizerError::NoSuchPermission`].
    pub fn override_user(
        &mut self,
        username: &str,
        o: UserOverride,
    ) -> Result<(), AuthorizerError> {
        let UserOverride {
            password,
            home,
            perm,
            msg_login,
            msg_quit,
        } = o;
        if password.is_none()
            && home.is_none()
            && perm.is_none()
            && msg_login.is_none()
            && msg_quit.is_none()
        {
            return Err(AuthorizerError::EmptyOverride);
        }
        if username == ANONYMOUS {
            if password.is_some() {
                return Err(AuthorizerError::AnonymousPassword);
            }
        } else if lookup(username)?.is_none() {
            return Err(AuthorizerError::NoSuchUser(username.to_owned()));
        }
        let home = home.as_deref().map(canonical_dir).transpose()?;
        if let Some(p) = &perm {
            check_perms(username, p)?;
        }
        self.overrides.insert(
            username.to_owned(),
            Override {
                password,
                home,
                perm,
                msg_login,
                msg_quit,
            },
        );
        Ok(())
    }

    fn is_rejected(&self, username: &str) -> bool {
        let o = &self.opts;
        (!o.allowed_users.is_empty() && !o.allowed_users.iter().any(|u| u == username))
            || o.rejected_users.iter().any(|u| u == username)
    }

    fn check_password(&self, username: &str, password: &str) -> bool {
        if let Some(p) = self
            .overrides
            .get(username)
            .and_then(|o| o.password.as_ref())
        {
            return constant_time_eq(p.as_bytes(), password.as_bytes());
        }
        #[cfg(feature = "pam")]
        if let Some(service) = &self.opts.pam_service {
            return match sys::pam_authenticate(service, username, password, None) {
                Ok(()) => true,
                Err(e) => {
                    log::info!("PAM service {service:?} refused {username:?}: {e}");
                    false
                }
            };
        }
        match sys::shadow_entry(username) {
            Ok(Some(entry)) => {
                let matches = passwords::verify(password, &entry.hash);
                if matches && entry.expires.is_some_and(|day| today() >= day) {
                    log::info!("the account of {username:?} has expired");
                    return false;
                }
                matches
            }
            Ok(None) => {
                self.spend_decoy(password);
                false
            }
            Err(e) => {
                log::error!("reading the shadow entry of {username:?}: {e}");
                false
            }
        }
    }

    fn spend_decoy(&self, password: &str) {
        if let Some(d) = &self.decoy {
            let _ = passwords::verify(password, d);
        }
    }

    /// The system account a session of `username` runs as.
    fn account_of(&self, username: &str) -> Option<(String, sys::Account)> {
        let name = if username == ANONYMOUS {
            self.opts.anonymous_user.clone()?
        } else {
            username.to_owned()
        };
        let account = sys::account(&name).ok().flatten()?;
        Some((name, account))
    }

    fn validate_as_root(&self, username: &str, password: &str) -> Result<(), AuthenticationFailed> {
        let failed = || AuthenticationFailed("Authentication failed.".to_owned());
        if username == ANONYMOUS {
            return match self.opts.anonymous_user {
                Some(_) => Ok(()),
                None => Err(AuthenticationFailed(
                    "Anonymous access not allowed.".to_owned(),
                )),
            };
        }
        let account = match sys::account(username) {
            Ok(Some(a)) => a,
            Ok(None) => {
                self.spend_decoy(password);
                return Err(failed());
            }
            Err(e) => {
                log::error!("looking up user {username:?}: {e}");
                return Err(failed());
            }
        };
        if !self.check_password(username, password) {
            return Err(failed());
        }
        if self.is_rejected(username) {
            return Err(AuthenticationFailed(format!(
                "User {username} is not allowed to login."
            )));
        }
        if self.opts.require_valid_shell && !valid_shell(&account.shell) {
            return Err(AuthenticationFailed(format!(
                "User {username} doesn't have a valid shell."
            )));
        }
        Ok(())
    }

    fn restore(&self) {
        if let Err(e) = sys::set_credentials(&self.saved) {
            // Serving on as the wrong identity is not an option.
            log::error!("can't switch back to the server's identity: {e}; aborting");
            std::process::abort();
        }
    }
}

impl Authorizer for UnixAuthorizer {
    /// pyftpdlib's checks, with one change of order: the password is checked before
    /// `allowed_users`/`rejected_users` and the shell, so that only someone who knows
    /// the password learns why an account is refused.
    fn validate_authentication(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(), AuthenticationFailed> {
        // The shadow database is readable by root only.
        self.turn
            .as_server(|| self.validate_as_root(username, password))
    }

    fn home_dir(&self, username: &str) -> Option<PathBuf> {
        if let Some(home) = self.overrides.get(username).and_then(|o| o.home.clone()) {
            return Some(home);
        }
        self.account_of(username).map(|(_, a)| a.home)
    }

    fn has_user(&self, username: &str) -> bool {
        self.account_of(username).is_some()
    }

    fn has_perm(&self, username: &str, perm: char, _path: Option<&Path>) -> bool {
        self.has_user(username) && self.perms(username).contains(perm)
    }

    /// Override > `elr` for anonymous > `global_perm`.
    fn perms(&self, username: &str) -> String {
        if let Some(p) = self.overrides.get(username).and_then(|o| o.perm.clone()) {
            return p;
        }
        if username == ANONYMOUS {
            return READ_PERMS.to_owned();
        }
        self.opts.global_perm.clone()
    }

    fn msg_login(&self, username: &str) -> String {
        self.overrides
            .get(username)
            .and_then(|o| o.msg_login.clone())
            .unwrap_or_else(|| self.opts.msg_login.clone())
    }

    fn msg_quit(&self, username: &str) -> String {
        self.overrides
            .get(username)
            .and_then(|o| o.msg_quit.clone())
            .unwrap_or_else(|| self.opts.msg_quit.clone())
    }

    /// Switches supplementary groups, effective gid and effective uid to the user's
    /// (`anonymous` → `anonymous_user`), once no other thread is impersonated. On
    /// failure everything is switched back first; the turn is held until
    /// [`Authorizer::terminate_impersonation`] either way.
    fn impersonate_user(&self, username: &str) -> Result<(), AuthorizerError> {
        let fail = |source: io::Error| AuthorizerError::Impersonation {
            user: username.to_owned(),
            source,
        };
        // Held until terminate_impersonation, which the caller always calls.
        self.turn.take();
        let (name, account) = self
            .account_of(username)
            .ok_or_else(|| fail(io::Error::from(io::ErrorKind::NotFound)))?;
        let groups = sys::group_list(&name, account.gid).map_err(fail)?;
        let to = sys::Credentials {
            euid: account.uid,
            egid: account.gid,
            groups,
        };
        if let Err(e) = sys::set_credentials(&to) {
            self.restore();
            return Err(fail(e));
        }
        Ok(())
    }

    /// Switches back to the identity the server had when the authorizer was made
    /// (aborting the process if that is impossible), and lets other threads have their
    /// turn.
    fn terminate_impersonation(&self, _username: &str) {
        self.restore();
        self.turn.give_back();
    }

    fn filesystem(&self, username: &str, home: PathBuf) -> io::Result<Box<dyn FileSystem>> {
        self.turn.as_server(|| -> io::Result<Box<dyn FileSystem>> {
            if username == ANONYMOUS {
                return Ok(Box::new(AbstractedFs::new(home)?));
            }
            Ok(Box::new(UnixFilesystem::new(home)?))
        })
    }
}

/// Days since 1970-01-01 (UTC), the unit of the shadow database's dates.
fn today() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs / 86_400).unwrap_or(i64::MAX)
}

fn lookup(name: &str) -> Result<Option<sys::Account>, AuthorizerError> {
    sys::account(name).map_err(AuthorizerError::Database)
}

/// Whether `shell` is listed in /etc/shells; true when that file does not exist.
fn valid_shell(shell: &Path) -> bool {
    match std::fs::read_to_string(SHELLS) {
        Ok(text) => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .any(|l| Path::new(l) == shell),
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(e) => {
            log::error!("reading {SHELLS}: {e}");
            false
        }
    }
}

const SHELLS: &str = "/etc/shells";

#[cfg(test)]
mod tests {
    //! Run as root (CI is): these never impersonate, which would switch the identity of
    //! the whole test process; the integration tests do that in the server binary.

    use super::*;

    fn root() -> bool {
        if sys::effective_uid() != 0 {
            eprintln!("SKIP: UnixAuthorizer needs root");
            assert!(matches!(
                UnixAuthorizer::new(UnixOptions::default()),
                Err(AuthorizerError::NotRoot)
            ));
            return false;
        }
        true
    }

    /// A system account whose shell is not in /etc/shells (Debian's `nobody`).
    fn shell_less() -> Option<&'static str> {
        let a = sys::account("nobody").ok().flatten()?;
        (!valid_shell(&a.shell)).then_some("nobody")
    }

    fn opts(f: impl FnOnce(&mut UnixOptions)) -> Result<UnixAuthorizer, AuthorizerError> {
        let mut o = UnixOptions::default();
        f(&mut o);
        UnixAuthorizer::new(o)
    }

    fn pw(p: &str) -> UserOverride {
        UserOverride {
            password: Some(p.into()),
            ..UserOverride::default()
        }
    }

    #[test]
    fn one_thread_at_a_time_holds_the_turn() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let turn = Arc::new(Turn::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (turn, inside) = (Arc::clone(&turn), Arc::clone(&inside));
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        assert!(turn.take());
                        // re-entrant: a second take by the holder is a no-op
                        assert!(!turn.take());
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        turn.as_server(|| assert_eq!(inside.load(Ordering::SeqCst), 1));
                        inside.fetch_sub(1, Ordering::SeqCst);
                        turn.give_back();
                        // giving back what one does not hold changes nothing
                        turn.give_back();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*turn.lock(), None);
    }

    #[test]
    fn construction_errors() {
        if !root() {
            return;
        }
        let e = opts(|o| {
            o.allowed_users = vec!["root".into()];
            o.rejected_users = vec!["root".into()];
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "allowed_users and rejected_users options are mutually exclusive"
        );
        let e = opts(|o| o.allowed_users = vec!["anonymous".into()]).unwrap_err();
        assert_eq!(e.to_string(), "invalid username \"anonymous\"");
        let e = opts(|o| o.rejected_users = vec!["no-such-ftpdlib-user".into()]).unwrap_err();
        assert!(matches!(e, AuthorizerError::NoSuchUser(_)));
        let e = opts(|o| o.anonymous_user = Some("no-such-ftpdlib-user".into())).unwrap_err();
        assert!(matches!(e, AuthorizerError::NoSuchUser(_)));
        let e = opts(|o| o.global_perm = "elrX".into()).unwrap_err();
        assert!(matches!(e, AuthorizerError::NoSuchPermission('X')));
        assert!(opts(|o| o.anonymous_user = Some("root".into())).is_ok());
    }

    #[test]
    fn logins() {
        if !root() {
            return;
        }
        let mut auth = opts(|_| {}).unwrap();
        let e = auth.validate_authentication("anonymous", "x").unwrap_err();
        assert_eq!(e.0, "Anonymous access not allowed.");
        let e = auth
            .validate_authentication("no-such-ftpdlib-user", "x")
            .unwrap_err();
        assert_eq!(e.0, "Authentication failed.");
        // root's shadow entry is locked or unknown to us: any guess fails
        assert!(auth.validate_authentication("root", "").is_err());
        auth.override_user("root", pw("pw")).unwrap();
        assert!(auth.validate_authentication("root", "pw").is_ok());
        let e = auth.validate_authentication("root", "px").unwrap_err();
        assert_eq!(e.0, "Authentication failed.");
        if let Some(nobody) = shell_less() {
            auth.override_user(nobody, pw("pw")).unwrap();
            let e = auth.validate_authentication(nobody, "pw").unwrap_err();
            assert_eq!(e.0, format!("User {nobody} doesn't have a valid shell."));
            // a wrong password says nothing about the shell
            let e = auth.validate_authentication(nobody, "px").unwrap_err();
            assert_eq!(e.0, "Authentication failed.");
            let mut lax = opts(|o| o.require_valid_shell = false).unwrap();
            lax.override_user(nobody, pw("pw")).unwrap();
            assert!(lax.validate_authentication(nobody, "pw").is_ok());
        }
    }

    #[test]
    fn allowed_and_rejected_users() {
        if !root() {
            return;
        }
        let Some(nobody) = shell_less() else {
            eprintln!("SKIP: no 'nobody' account");
            return;
        };
        let mut allowed = opts(|o| {
            o.allowed_users = vec!["root".into()];
            o.require_valid_shell = false;
        })
        .unwrap();
        allowed.override_user(nobody, pw("pw")).unwrap();
        allowed.override_user("root", pw("pw")).unwrap();
        assert!(allowed.validate_authentication("root", "pw").is_ok());
        let e = allowed.validate_authentication(nobody, "pw").unwrap_err();
        assert_eq!(e.0, format!("User {nobody} is not allowed to login."));

        let mut rejected = opts(|o| {
            o.rejected_users = vec![nobody.into()];
            o.require_valid_shell = false;
        })
        .unwrap();
        rejected.override_user(nobody, pw("pw")).unwrap();
        rejected.override_user("root", pw("pw")).unwrap();
        assert!(rejected.validate_authentication("root", "pw").is_ok());
        let e = rejected.validate_authentication(nobody, "pw").unwrap_err();
        assert_eq!(e.0, format!("User {nobody} is not allowed to login."));
    }

    #[test]
    fn homes_perms_messages_and_overrides() {
        if !root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let mut auth = opts(|o| {
            o.global_perm = "elrw".into();
            o.anonymous_user = Some("root".into());
            o.msg_login = "hello".into();
        })
        .unwrap();
        let root_home = sys::account("root").unwrap().unwrap().home;
        assert_eq!(auth.home_dir("root"), Some(root_home.clone()));
        assert_eq!(auth.home_dir("anonymous"), Some(root_home));
        assert_eq!(auth.home_dir("no-such-ftpdlib-user"), None);
        assert!(auth.has_user("root") && auth.has_user("anonymous"));
        assert!(!auth.has_user("no-such-ftpdlib-user"));
        assert_eq!(auth.perms("root"), "elrw");
        assert_eq!(auth.perms("anonymous"), "elr");
        assert!(auth.has_perm("root", 'w', Some(Path::new("/anything"))));
        assert!(!auth.has_perm("anonymous", 'w', None));
        assert!(!auth.has_perm("no-such-ftpdlib-user", 'r', None));
        assert_eq!(auth.msg_login("root"), "hello");
        assert_eq!(auth.msg_quit("root"), "Goodbye.");
        assert!(auth.validate_authentication("anonymous", "x").is_ok());

        let e = auth
            .override_user("root", UserOverride::default())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "at least one keyword argument must be specified"
        );
        let e = auth.override_user("anonymous", pw("x")).unwrap_err();
        assert_eq!(e.to_string(), "can't assign password to anonymous user");
        let e = auth
            .override_user("no-such-ftpdlib-user", pw("x"))
            .unwrap_err();
        assert!(matches!(e, AuthorizerError::NoSuchUser(_)));
        let o = UserOverride {
            home: Some(tmp.path().join("missing")),
            ..UserOverride::default()
        };
        assert!(matches!(
            auth.override_user("root", o),
            Err(AuthorizerError::NoSuchDirectory(_))
        ));
        let o = UserOverride {
            home: Some(tmp.path().to_path_buf()),
            perm: Some("el".into()),
            msg_quit: Some("bye".into()),
            ..UserOverride::default()
        };
        auth.override_user("root", o).unwrap();
        assert_eq!(
            auth.home_dir("root"),
            Some(tmp.path().canonicalize().unwrap())
        );
        assert_eq!(auth.perms("root"), "el");
        assert_eq!(auth.msg_quit("root"), "bye");
        let o = UserOverride {
            perm: Some("elrw".into()),
            ..UserOverride::default()
        };
        auth.override_user("anonymous", o).unwrap();
        assert_eq!(auth.perms("anonymous"), "elrw");
        // the session views: the real tree for users, a virtual root for anonymous
        let fs = auth.filesystem("root", tmp.path().into()).unwrap();
        assert_eq!(
            fs.cwd(),
            tmp.path().canonicalize().unwrap().to_str().unwrap()
        );
        let fs = auth.filesystem("anonymous", tmp.path().into()).unwrap();
        assert_eq!(fs.cwd(), "/");
    }
}

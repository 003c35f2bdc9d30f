//! Authorizers: who may log in, where their home is, and what they may do there.
//!
//! [`Authorizer`] is the interface the control channel consults at PASS time and
//! before every filesystem command. [`DummyAuthorizer`] is pyftpdlib's table of
//! virtual users, with plaintext or crypt(3)-hashed passwords and per-directory
//! permission overrides; [`DummyAuthorizer::add_users_file`] fills one from a `name:hash:home:perms`
//! file and [`hash_password`] makes the hashes. [`UnixAuthorizer`] (Linux, root only)
//! serves the system's accounts, switching the process's effective identity to the
//! user around every filesystem operation.
//!
//! Permission letters (pyftpdlib's):
//!
//! | letter | allows |
//! |---|---|
//! | `e` | change directory (CWD, CDUP) |
//! | `l` | list files (LIST, NLST, STAT, MLSD, MLST, SIZE, MDTM) |
//! | `r` | retrieve a file (RETR) |
//! | `a` | append to a file (APPE) |
//! | `d` | delete a file or directory (DELE, RMD) |
//! | `f` | rename (RNFR, RNTO) |
//! | `m` | create a directory (MKD) |
//! | `w` | store a file (STOR, STOU) |
//! | `M` | change file mode (SITE CHMOD) |
//! | `T` | change file modification time (MFMT) |

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use crate::quotas::Quota;
use std::sync::Arc;

use crate::filesystems::{AbstractedFs, FileSystem};
use crate::fnv::FnvBuildHasher;

mod certificate;
mod passwords;
#[cfg(target_os = "linux")]
mod unix;
mod users_file;
mod with_fs;

pub use certificate::{CertificateLogin, ClientCertificate};
pub use passwords::{hash_password, HashError};
#[cfg(target_os = "linux")]
pub use unix::{UnixAuthorizer, UnixOptions, UserOverride};
pub use users_file::UsersFileError;
pub use with_fs::WithFilesystem;

/// A configuration error from [`DummyAuthorizer`]'s user-management methods (pyftpdlib
/// raises `ValueError`/`KeyError` with the same texts). Never sent to a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizerError {
    /// `add_user`/`add_anonymous` for a name that is already in the table.
    #[error("user '{0}' already exists")]
    UserExists(String),
    /// The home or override directory does not exist or is not a directory.
    #[error("no such directory: '{}'", .0.display())]
    NoSuchDirectory(PathBuf),
    /// A permission letter outside [`READ_PERMS`] and [`WRITE_PERMS`].
    #[error("no such permission '{0}'")]
    NoSuchPermission(char),
    /// `remove_user`/`override_perm` for a name that is not in the table.
    #[error("no such user '{0}'")]
    NoSuchUser(String),
    /// `override_perm` on the user's home itself (change the user's perm instead).
    #[error("can't override home directory permissions")]
    OverrideHome,
    /// `override_perm` on a directory outside the user's home.
    #[error("path escapes user home directory")]
    EscapesHome,
    /// `add_user_hashed` with a string the system's crypt(3) does not accept as a hash.
    #[error("unsupported password hash for user '{0}'")]
    BadHash(String),
    /// [`UnixAuthorizer`] needs euid 0 and a readable shadow database.
    #[error("super user privileges are required")]
    NotRoot,
    /// [`UnixOptions`] with both `allowed_users` and `rejected_users`.
    #[error("allowed_users and rejected_users options are mutually exclusive")]
    AllowedAndRejected,
    /// `anonymous` in `allowed_users` / `rejected_users` (it is not a system account).
    #[error("invalid username \"anonymous\"")]
    AnonymousListed,
    /// A user named in the options has no usable home directory.
    #[error("no valid home set for user {0}")]
    NoValidHome(String),
    /// `override_user` with nothing to override.
    #[error("at least one keyword argument must be specified")]
    EmptyOverride,
    /// `override_user` giving `anonymous` a password.
    #[error("can't assign password to anonymous user")]
    AnonymousPassword,
    /// Reading the system's user databases failed.
    #[error("user database: {0}")]
    Database(#[source] io::Error),
    /// Switching the process to a user's identity failed; the command is refused and
    /// the session closed (reply `421`).
    #[error("can't switch to user '{user}': {source}")]
    Impersonation {
        /// The FTP user name.
        user: String,
        /// The failed system call's error.
        #[source]
        source: io::Error,
    },
}

/// A rejected login; the text is sent to the client as the `530` reply, e.g.
/// `Authentication failed.` or `Anonymous access not allowed.`.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct AuthenticationFailed(pub String);

/// Permission letters that only read: change directory, list, retrieve.
pub const READ_PERMS: &str = "elr";
/// Permission letters that modify the filesystem.
pub const WRITE_PERMS: &str = "adfmwMT";

/// What the control channel asks about users. Implementations must be cheap and
/// non-blocking: they run on the event loop thread.
pub trait Authorizer: Send + Sync {
    /// Checks a USER/PASS pair.
    ///
    /// # Errors
    /// [`AuthenticationFailed`] carrying the text of the `530` reply.
    fn validate_authentication(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(), AuthenticationFailed>;

    /// Checks a USER/PASS pair knowing where the client is: `remote` is the client's
    /// address, the one a PROXY protocol header carried when the session came through a
    /// listed balancer (`--proxy-protocol-from`), else the socket's peer. This is what the
    /// session calls; the default ignores `remote` and calls
    /// [`Authorizer::validate_authentication`], so an authorizer that does not care where
    /// its users are implements only that. Override it to allow a user only from some
    /// networks.
    ///
    /// # Errors
    /// [`AuthenticationFailed`] carrying the text of the `530` reply.
    fn validate_authentication_from(
        &self,
        username: &str,
        password: &str,
        _remote: SocketAddr,
    ) -> Result<(), AuthenticationFailed> {
        self.validate_authentication(username, password)
    }

    /// The user's real home directory (the root of their virtual filesystem), or
    /// `None` for an unknown user.
    fn home_dir(&self, username: &str) -> Option<PathBuf>;

    /// Whether `username` is known.
    fn has_user(&self, username: &str) -> bool;

    /// Whether `username` holds permission letter `perm`, globally (`path` is `None`)
    /// or for the real filesystem path `path`. Unknown users hold nothing.
    fn has_perm(&self, username: &str, perm: char, path: Option<&Path>) -> bool;

    /// The user's global permission letters (empty for an unknown user); the MLSx
    /// `perm` fact is derived from them.
    fn perms(&self, username: &str) -> String;

    /// The text of the `230` reply after a successful login.
    fn msg_login(&self, username: &str) -> String;

    /// The text of the `221` reply to QUIT; `Goodbye.` for unknown users.
    fn msg_quit(&self, username: &str) -> String;

    /// Called before every command of a logged-in session, so that what the command
    /// does to the filesystem happens as the user (pyftpdlib's `impersonate_user`; the
    /// password is not passed: sessions do not keep it). The default does nothing.
    ///
    /// # Errors
    /// [`AuthorizerError::Impersonation`]: the command is then not run, the session is
    /// closed with `421`, and [`Authorizer::terminate_impersonation`] is still called.
    fn impersonate_user(&self, _username: &str) -> Result<(), AuthorizerError> {
        Ok(())
    }

    /// Undoes [`Authorizer::impersonate_user`], after every command, even when it or
    /// the impersonation failed. The default does nothing.
    fn terminate_impersonation(&self, _username: &str) {}

    /// The filesystem view of a session that just logged in, rooted at `home` (from
    /// [`Authorizer::home_dir`]). The default is [`AbstractedFs`], a virtual root at the
    /// home; [`UnixAuthorizer`] returns a [`crate::filesystems::UnixFilesystem`].
    /// Override it to serve another storage through your own [`FileSystem`].
    ///
    /// # Errors
    /// When the view cannot be built (e.g. the home is missing); the login fails with
    /// `530 Authentication failed.`.
    fn filesystem(&self, _username: &str, home: PathBuf) -> io::Result<Box<dyn FileSystem>> {
        Ok(Box::new(AbstractedFs::new(home)?))
    }

    /// With mutual TLS: what the client certificate the handshake verified does for
    /// `username`, asked at USER. The default asks for the password as well (the
    /// handshake already required a certificate signed by the configured CA);
    /// [`DummyAuthorizer::login_by_certificate`] logs in the user a certificate names.
    fn validate_certificate(&self, _username: &str, _cert: &ClientCertificate) -> CertificateLogin {
        CertificateLogin::Password
    }

    /// The user's quota: the most bytes and files their home may hold, enforced on
    /// uploads (`552` past it) and reported by `SITE QUOTA`; asked at every upload, so a
    /// changed quota applies to sessions already logged in. The default is no quota.
    /// See [`crate::quotas`].
    fn quota(&self, _username: &str) -> Option<Quota> {
        None
    }

    /// Bandwidth caps shared by all of `username`'s sessions, asked when a transfer
    /// starts; None (the default) leaves the server-wide `user_read_limit` /
    /// `user_write_limit` of [`crate::config::HandlerConfig`].
    fn bandwidth(&self, _username: &str) -> Option<UserBandwidth> {
        None
    }
}

/// Bandwidth caps of one user, in bytes per second, shared by all of the user's sessions
/// and transfers (0 = no cap). See the throttling guide.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserBandwidth {
    /// Uploads, all together.
    pub read_limit: u64,
    /// Downloads and listings, all together.
    pub write_limit: u64,
}

/// Generates the forwarding impls of [`Authorizer`] for smart pointers, so that an
/// authorizer chosen at run time (`Box<dyn Authorizer>`) can be given to the server.
macro_rules! forward_authorizer {
    ($($ptr:ident),*) => {$(
        impl<A: Authorizer + ?Sized> Authorizer for $ptr<A> {
            fn validate_authentication(
                &self,
                username: &str,
                password: &str,
            ) -> Result<(), AuthenticationFailed> {
                (**self).validate_authentication(username, password)
            }
            fn validate_authentication_from(
                &self,
                username: &str,
                password: &str,
                remote: SocketAddr,
            ) -> Result<(), AuthenticationFailed> {
                (**self).validate_authentication_from(username, password, remote)
            }
            fn home_dir(&self, username: &str) -> Option<PathBuf> {
                (**self).home_dir(username)
            }
            fn has_user(&self, username: &str) -> bool {
                (**self).has_user(username)
            }
            fn has_perm(&self, username: &str, perm: char, path: Option<&Path>) -> bool {
                (**self).has_perm(username, perm, path)
            }
            fn perms(&self, username: &str) -> String {
                (**self).perms(username)
            }
            fn msg_login(&self, username: &str) -> String {
                (**self).msg_login(username)
            }
            fn msg_quit(&self, username: &str) -> String {
                (**self).msg_quit(username)
            }
            fn impersonate_user(&self, username: &str) -> Result<(), AuthorizerError> {
                (**self).impersonate_user(username)
            }
            fn terminate_impersonation(&self, username: &str) {
                (**self).terminate_impersonation(username)
            }
            fn filesystem(
                &self,
                username: &str,
                home: PathBuf,
            ) -> io::Result<Box<dyn FileSystem>> {
                (**self).filesystem(username, home)
            }
            fn validate_certificate(
                &self,
                username: &str,
                cert: &ClientCertificate,
            ) -> CertificateLogin {
                (**self).validate_certificate(username, cert)
            }
            fn quota(&self, username: &str) -> Option<Quota> {
                (**self).quota(username)
            }
            fn bandwidth(&self, username: &str) -> Option<UserBandwidth> {
                (**self).bandwidth(username)
            }
        }
    )*};
}

forward_authorizer!(Box, Arc);

/// pyftpdlib's `DummyAuthorizer`: an in-memory table of virtual users with plaintext
/// passwords, a home directory, permission letters and optional per-directory
/// overrides.
///
/// ```
/// use ftpdlib::authorizers::{Authorizer, DummyAuthorizer};
///
/// let dir = std::env::temp_dir();
/// let mut auth = DummyAuthorizer::new();
/// auth.add_user("user", "12345", &dir, "elradfmwMT", None, None)?;
/// auth.add_anonymous(&dir, "elr", None, None)?;
/// assert!(auth.validate_authentication("user", "12345").is_ok());
/// assert!(auth.validate_authentication("anonymous", "guest@").is_ok());
/// assert!(auth.has_perm("user", 'w', None));
/// # Ok::<(), ftpdlib::authorizers::AuthorizerError>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct DummyAuthorizer {
    users: HashMap<String, User, FnvBuildHasher>,
    /// A stored hash, verified against for unknown users so that they cost as much time
    /// as known ones with hashed passwords.
    decoy: Option<String>,
    /// A verified client certificate that names a user logs that user in.
    certificate_login: bool,
    /// Users' bandwidth caps ([`DummyAuthorizer::set_bandwidth`]).
    bandwidth: HashMap<String, UserBandwidth, FnvBuildHasher>,
}

impl DummyAuthorizer {
    /// Caps the bandwidth of all of `username`'s sessions together (see
    /// [`Authorizer::bandwidth`]); it overrides the server's per-user default.
    pub fn set_bandwidth(&mut self, username: &str, caps: UserBandwidth) {
        self.bandwidth.insert(username.to_owned(), caps);
    }

    /// An empty table: nobody can log in, not even anonymously.
    pub fn new() -> Self {
        Self::default()
    }

    /// With mutual TLS: a verified client certificate whose common name, e-mail or DNS
    /// name is a known user's name logs that user in at USER, without a password (`232`).
    /// Off (the default), the password is asked for as well.
    pub fn login_by_certificate(&mut self, on: bool) {
        self.certificate_login = on;
    }

    /// Adds a virtual user. `perm` is a string of permission letters (pyftpdlib's
    /// default is `"elr"`); `msg_login`/`msg_quit` default to `Login successful.` and
    /// `Goodbye.`. The home directory is stored canonicalized (symlinks resolved).
    ///
    /// # Errors
    /// [`AuthorizerError::UserExists`], [`AuthorizerError::NoSuchDirectory`] or
    /// [`AuthorizerError::NoSuchPermission`]; the table is unchanged on error.
    pub fn add_user(
        &mut self,
        username: &str,
        password: &str,
        homedir: impl AsRef<Path>,
        perm: &str,
        msg_login: Option<&str>,
        msg_quit: Option<&str>,
    ) -> Result<(), AuthorizerError> {
        let password = Password::Plain(password.to_owned());
        self.insert(
            username,
            password,
            homedir.as_ref(),
            perm,
            msg_login,
            msg_quit,
        )
    }

    /// Adds a virtual user whose password is stored as a crypt(3) hash (`$y$…`
    /// yescrypt, `$6$…` sha512-crypt, `$5$…`, `$2b$…` bcrypt: whatever the system's
    /// libcrypt verifies), e.g. one made by [`hash_password`] or `ftpdlib
    /// --hash-password`. At login the given password is hashed with the stored
    /// setting and the results are compared in constant time.
    ///
    /// ```
    /// use ftpdlib::authorizers::{hash_password, Authorizer, DummyAuthorizer};
    ///
    /// let hash = hash_password("s3cret")?;
    /// let mut auth = DummyAuthorizer::new();
    /// auth.add_user_hashed("ann", &hash, std::env::temp_dir(), "elr", None, None)?;
    /// assert!(auth.validate_authentication("ann", "s3cret").is_ok());
    /// assert!(auth.validate_authentication("ann", &hash).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`DummyAuthorizer::add_user`], and [`AuthorizerError::BadHash`] when libcrypt
    /// does not accept `hash` (an unknown method, a locked `!`/`*` entry, plain text).
    pub fn add_user_hashed(
        &mut self,
        username: &str,
        hash: &str,
        homedir: impl AsRef<Path>,
        perm: &str,
        msg_login: Option<&str>,
        msg_quit: Option<&str>,
    ) -> Result<(), AuthorizerError> {
        if !passwords::is_usable_hash(hash) {
            return Err(AuthorizerError::BadHash(username.to_owned()));
        }
        let password = Password::Hashed(hash.to_owned());
        self.insert(
            username,
            password,
            homedir.as_ref(),
            perm,
            msg_login,
            msg_quit,
        )?;
        if self.decoy.is_none() {
            self.decoy = Some(hash.to_owned());
        }
        Ok(())
    }

    fn insert(
        &mut self,
        username: &str,
        password: Password,
        homedir: &Path,
        perm: &str,
        msg_login: Option<&str>,
        msg_quit: Option<&str>,
    ) -> Result<(), AuthorizerError> {
        if self.users.contains_key(username) {
            return Err(AuthorizerError::UserExists(username.to_owned()));
        }
        let home = canonical_dir(homedir)?;
        check_perms(username, perm)?;
        self.users.insert(
            username.to_owned(),
            User {
                password,
                home,
                perm: perm.to_owned(),
                overrides: Vec::new(),
                msg_login: msg_login.unwrap_or(DEFAULT_MSG_LOGIN).to_owned(),
                msg_quit: msg_quit.unwrap_or(DEFAULT_MSG_QUIT).to_owned(),
                quota: None,
            },
        );
        Ok(())
    }

    /// Sets `username`'s quota (bytes and files; `None` in a field is no limit), or
    /// with `None` removes it. See [`crate::quotas`].
    ///
    /// # Errors
    /// [`AuthorizerError::NoSuchUser`] for an unknown user.
    pub fn set_quota(
        &mut self,
        username: &str,
        quota: Option<Quota>,
    ) -> Result<(), AuthorizerError> {
        let user = self
            .users
            .get_mut(username)
            .ok_or_else(|| AuthorizerError::NoSuchUser(username.to_owned()))?;
        user.quota = quota.filter(Quota::is_limited);
        Ok(())
    }

    /// Sets the most bytes `username`'s files may hold (`None`: no limit), keeping the
    /// file limit.
    ///
    /// # Errors
    /// [`AuthorizerError::NoSuchUser`] for an unknown user.
    pub fn set_quota_bytes(
        &mut self,
        username: &str,
        bytes: Option<u64>,
    ) -> Result<(), AuthorizerError> {
        let files = self.quota(username).and_then(|q| q.files);
        self.set_quota(username, Some(Quota { bytes, files }))
    }

    /// Sets the most files `username`'s home may hold (`None`: no limit), keeping the
    /// byte limit.
    ///
    /// # Errors
    /// [`AuthorizerError::NoSuchUser`] for an unknown user.
    pub fn set_quota_files(
        &mut self,
        username: &str,
        files: Option<u64>,
    ) -> Result<(), AuthorizerError> {
        let bytes = self.quota(username).and_then(|q| q.bytes);
        self.set_quota(username, Some(Quota { bytes, files }))
    }

    /// Adds the `anonymous` user, who logs in with any password. Write letters in
    /// `perm` are allowed but logged as a warning.
    ///
    /// # Errors
    /// As [`DummyAuthorizer::add_user`].
    pub fn add_anonymous(
        &mut self,
        homedir: impl AsRef<Path>,
        perm: &str,
        msg_login: Option<&str>,
        msg_quit: Option<&str>,
    ) -> Result<(), AuthorizerError> {
        self.add_user(ANONYMOUS, "", homedir, perm, msg_login, msg_quit)
    }

    /// Removes a user from the table.
    ///
    /// # Errors
    /// [`AuthorizerError::NoSuchUser`] if the user is not in the table.
    pub fn remove_user(&mut self, username: &str) -> Result<(), AuthorizerError> {
        self.users
            .remove(username)
            .map(drop)
            .ok_or_else(|| AuthorizerError::NoSuchUser(username.to_owned()))
    }

    /// Gives `username` the permissions `perm` inside `directory`, which must be an
    /// existing directory strictly below the user's home. With `recursive`, the
    /// override covers the directory and everything below it; without, the directory
    /// itself and the non-directory entries directly inside it. Setting an override
    /// for the same directory again replaces it.
    ///
    /// Unlike pyftpdlib (first added override wins), when several overrides match a
    /// path the most specific one (the deepest directory) applies.
    ///
    /// # Errors
    /// [`AuthorizerError::NoSuchUser`], [`AuthorizerError::NoSuchPermission`],
    /// [`AuthorizerError::NoSuchDirectory`], [`AuthorizerError::OverrideHome`] or
    /// [`AuthorizerError::EscapesHome`].
    pub fn override_perm(
        &mut self,
        username: &str,
        directory: impl AsRef<Path>,
        perm: &str,
        recursive: bool,
    ) -> Result<(), AuthorizerError> {
        let user = self
            .users
            .get_mut(username)
            .ok_or_else(|| AuthorizerError::NoSuchUser(username.to_owned()))?;
        check_perms(username, perm)?;
        let dir = canonical_dir(directory.as_ref())?;
        if dir == user.home {
            return Err(AuthorizerError::OverrideHome);
        }
        if !dir.starts_with(&user.home) {
            return Err(AuthorizerError::EscapesHome);
        }
        let entry = Override {
            dir,
            perm: perm.to_owned(),
            recursive,
        };
        match user.overrides.iter_mut().find(|o| o.dir == entry.dir) {
            Some(existing) => *existing = entry,
            None => user.overrides.push(entry),
        }
        Ok(())
    }
}

impl Authorizer for DummyAuthorizer {
    fn bandwidth(&self, username: &str) -> Option<UserBandwidth> {
        self.bandwidth.get(username).copied()
    }

    fn validate_authentication(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(), AuthenticationFailed> {
        let Some(user) = self.users.get(username) else {
            // Spend the same effort as a real comparison before refusing.
            match &self.decoy {
                Some(hash) => {
                    let _ = Password::Hashed(hash.clone()).verify(password);
                }
                None => {
                    let _ = constant_time_eq(password.as_bytes(), password.as_bytes());
                }
            }
            let msg = if username == ANONYMOUS {
                "Anonymous access not allowed."
            } else {
                "Authentication failed."
            };
            return Err(AuthenticationFailed(msg.to_owned()));
        };
        if username == ANONYMOUS || user.password.verify(password) {
            Ok(())
        } else {
            Err(AuthenticationFailed("Authentication failed.".to_owned()))
        }
    }

    fn home_dir(&self, username: &str) -> Option<PathBuf> {
        self.users.get(username).map(|u| u.home.clone())
    }

    fn validate_certificate(&self, username: &str, cert: &ClientCertificate) -> CertificateLogin {
        if self.certificate_login && self.users.contains_key(username) && cert.names(username) {
            CertificateLogin::LoggedIn
        } else {
            CertificateLogin::Password
        }
    }

    fn filesystem(&self, _username: &str, home: PathBuf) -> io::Result<Box<dyn FileSystem>> {
        // Homes were canonicalized by add_user, so a login costs no path resolution
        // (pyftpdlib checks the home only when the user is added, too); a home removed
        // since then makes the session's commands fail with 550.
        Ok(Box::new(AbstractedFs::with_canonical_root(home)))
    }

    fn quota(&self, username: &str) -> Option<Quota> {
        self.users.get(username).and_then(|u| u.quota)
    }

    fn has_user(&self, username: &str) -> bool {
        self.users.contains_key(username)
    }

    fn has_perm(&self, username: &str, perm: char, path: Option<&Path>) -> bool {
        let Some(user) = self.users.get(username) else {
            return false;
        };
        let letters = match path {
            None => &user.perm,
            Some(path) => user
                .overrides
                .iter()
                .filter(|o| o.covers(path))
                .max_by_key(|o| o.dir.components().count())
                .map_or(&user.perm, |o| &o.perm),
        };
        letters.contains(perm)
    }

    fn perms(&self, username: &str) -> String {
        self.users
            .get(username)
            .map(|u| u.perm.clone())
            .unwrap_or_default()
    }

    /// `Login successful.` for unknown users.
    fn msg_login(&self, username: &str) -> String {
        self.users
            .get(username)
            .map_or(DEFAULT_MSG_LOGIN, |u| u.msg_login.as_str())
            .to_owned()
    }

    fn msg_quit(&self, username: &str) -> String {
        self.users
            .get(username)
            .map_or(DEFAULT_MSG_QUIT, |u| u.msg_quit.as_str())
            .to_owned()
    }
}

#[derive(Clone)]
struct User {
    password: Password,
    home: PathBuf,
    perm: String,
    overrides: Vec<Override>,
    msg_login: String,
    msg_quit: String,
    quota: Option<Quota>,
}

// Hand-written so that `{:?}` on an authorizer never prints a password.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("password", &"<redacted>")
            .field("home", &self.home)
            .field("perm", &self.perm)
            .field("overrides", &self.overrides)
            .field("msg_login", &self.msg_login)
            .field("msg_quit", &self.msg_quit)
            .field("quota", &self.quota)
            .finish()
    }
}

#[derive(Debug, Clone)]
struct Override {
    dir: PathBuf,
    perm: String,
    recursive: bool,
}

impl Override {
    /// Whether this override applies to `path` (pyftpdlib's `has_perm` rules).
    fn covers(&self, path: &Path) -> bool {
        if !path.starts_with(&self.dir) {
            return false;
        }
        self.recursive || path == self.dir || (path.parent() == Some(&self.dir) && !path.is_dir())
    }
}

/// `path` canonicalized, provided it is an existing directory.
pub(crate) fn canonical_dir(path: &Path) -> Result<PathBuf, AuthorizerError> {
    if !path.is_dir() {
        return Err(AuthorizerError::NoSuchDirectory(path.to_path_buf()));
    }
    path.canonicalize()
        .map_err(|_| AuthorizerError::NoSuchDirectory(path.to_path_buf()))
}

pub(crate) fn check_perms(username: &str, perm: &str) -> Result<(), AuthorizerError> {
    if let Some(bad) = perm
        .chars()
        .find(|&c| !READ_PERMS.contains(c) && !WRITE_PERMS.contains(c))
    {
        return Err(AuthorizerError::NoSuchPermission(bad));
    }
    if username == ANONYMOUS && perm.chars().any(|c| WRITE_PERMS.contains(c)) {
        log::warn!("write permissions assigned to anonymous user.");
    }
    Ok(())
}

/// A stored password.
#[derive(Clone)]
enum Password {
    /// Clear text (pyftpdlib's only kind).
    Plain(String),
    /// A crypt(3) string: method, cost, salt and hash.
    Hashed(String),
}

impl Password {
    /// Whether `given` is this password; the final comparison takes constant time.
    fn verify(&self, given: &str) -> bool {
        match self {
            Password::Plain(p) => constant_time_eq(p.as_bytes(), given.as_bytes()),
            Password::Hashed(h) => passwords::verify(given, h),
        }
    }
}

/// Compares every byte of both inputs so that the time taken does not reveal the
/// length of the matching prefix.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

pub(crate) const ANONYMOUS: &str = "anonymous";
pub(crate) const DEFAULT_MSG_LOGIN: &str = "Login successful.";
pub(crate) const DEFAULT_MSG_QUIT: &str = "Goodbye.";

#[cfg(test)]
mod tests;

//! Authorizers: who may log in, where their home is, and what they may do there.
//!
//! [`Authorizer`] is the interface the control channel consults at PASS time and
//! before every filesystem command; [`DummyAuthorizer`] is pyftpdlib's table of
//! virtual users with plaintext passwords and per-directory permission overrides.
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
use std::path::{Path, PathBuf};

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

    /// Called before the session touches the filesystem on the user's behalf.
    /// The default does nothing.
    fn impersonate_user(&self, _username: &str, _password: &str) {}

    /// Undoes [`Authorizer::impersonate_user`]. The default does nothing.
    fn terminate_impersonation(&self, _username: &str) {}
}

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
    users: HashMap<String, User>,
}

impl DummyAuthorizer {
    /// An empty table: nobody can log in, not even anonymously.
    pub fn new() -> Self {
        Self::default()
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
        let homedir = homedir.as_ref();
        if self.users.contains_key(username) {
            return Err(AuthorizerError::UserExists(username.to_owned()));
        }
        let home = canonical_dir(homedir)?;
        check_perms(username, perm)?;
        self.users.insert(
            username.to_owned(),
            User {
                password: password.to_owned(),
                home,
                perm: perm.to_owned(),
                overrides: Vec::new(),
                msg_login: msg_login.unwrap_or(DEFAULT_MSG_LOGIN).to_owned(),
                msg_quit: msg_quit.unwrap_or(DEFAULT_MSG_QUIT).to_owned(),
            },
        );
        Ok(())
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
    fn validate_authentication(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(), AuthenticationFailed> {
        let Some(user) = self.users.get(username) else {
            // Spend the same effort as a real comparison before refusing.
            let _ = constant_time_eq(password.as_bytes(), password.as_bytes());
            let msg = if username == ANONYMOUS {
                "Anonymous access not allowed."
            } else {
                "Authentication failed."
            };
            return Err(AuthenticationFailed(msg.to_owned()));
        };
        if username == ANONYMOUS || constant_time_eq(user.password.as_bytes(), password.as_bytes())
        {
            Ok(())
        } else {
            Err(AuthenticationFailed("Authentication failed.".to_owned()))
        }
    }

    fn home_dir(&self, username: &str) -> Option<PathBuf> {
        self.users.get(username).map(|u| u.home.clone())
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
    password: String,
    home: PathBuf,
    perm: String,
    overrides: Vec<Override>,
    msg_login: String,
    msg_quit: String,
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
fn canonical_dir(path: &Path) -> Result<PathBuf, AuthorizerError> {
    if !path.is_dir() {
        return Err(AuthorizerError::NoSuchDirectory(path.to_path_buf()));
    }
    path.canonicalize()
        .map_err(|_| AuthorizerError::NoSuchDirectory(path.to_path_buf()))
}

fn check_perms(username: &str, perm: &str) -> Result<(), AuthorizerError> {
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

/// Compares every byte of both inputs so that the time taken does not reveal the
/// length of the matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

const ANONYMOUS: &str = "anonymous";
const DEFAULT_MSG_LOGIN: &str = "Login successful.";
const DEFAULT_MSG_QUIT: &str = "Goodbye.";

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    const USER: &str = "user";
    const PASSWD: &str = "12345";

    /// home/, home/tdir/, home/tdir/sub/, home/tdir/file, home/tdir/sub/file
    struct Tree {
        _tmp: tempfile::TempDir,
        home: PathBuf,
        tempdir: PathBuf,
        subtempdir: PathBuf,
        tempfile: PathBuf,
        subtempfile: PathBuf,
    }

    fn tree() -> Tree {
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = tmp.path().canonicalize().expect("canonical").join("home");
        let tempdir = home.join("tdir");
        let subtempdir = tempdir.join("sub");
        let tempfile = tempdir.join("file");
        let subtempfile = subtempdir.join("file");
        fs::create_dir_all(&subtempdir).expect("mkdir");
        fs::write(&tempfile, b"").expect("touch");
        fs::write(&subtempfile, b"").expect("touch");
        Tree {
            _tmp: tmp,
            home,
            tempdir,
            subtempdir,
            tempfile,
            subtempfile,
        }
    }

    fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    }

    #[test]
    fn common_methods() {
        let t = tree();
        let mut auth = DummyAuthorizer::new();
        auth.add_user(USER, PASSWD, &t.home, "elr", None, None)
            .unwrap();
        auth.add_anonymous(&t.home, "elr", None, None).unwrap();
        // credentials
        assert!(auth.validate_authentication(USER, PASSWD).is_ok());
        let err = auth.validate_authentication(USER, "wrongpwd").unwrap_err();
        assert_eq!(err.to_string(), "Authentication failed.");
        assert!(auth.validate_authentication("anonymous", "foo").is_ok());
        assert!(auth.validate_authentication("anonymous", "").is_ok());
        // remove them
        auth.remove_user(USER).unwrap();
        auth.remove_user("anonymous").unwrap();
        let err = auth.remove_user(USER).unwrap_err();
        assert!(matches!(err, AuthorizerError::NoSuchUser(ref u) if u == USER));
        // path does not exist
        let missing = t.home.join("missing");
        let err = auth
            .add_user(USER, PASSWD, &missing, "elr", None, None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("no such directory: '{}'", missing.display())
        );
        let err = auth.add_anonymous(&missing, "elr", None, None).unwrap_err();
        assert!(err.to_string().starts_with("no such directory"));
        // a file is not a home
        let err = auth
            .add_user(USER, PASSWD, &t.tempfile, "elr", None, None)
            .unwrap_err();
        assert!(matches!(err, AuthorizerError::NoSuchDirectory(_)));
        // already exists
        auth.add_user(USER, PASSWD, &t.home, "elr", None, None)
            .unwrap();
        auth.add_anonymous(&t.home, "elr", None, None).unwrap();
        let err = auth
            .add_user(USER, PASSWD, &t.home, "elr", None, None)
            .unwrap_err();
        assert_eq!(err.to_string(), "user 'user' already exists");
        let err = auth.add_anonymous(&t.home, "elr", None, None).unwrap_err();
        assert_eq!(err.to_string(), "user 'anonymous' already exists");
        auth.remove_user(USER).unwrap();
        auth.remove_user("anonymous").unwrap();
        // wrong permission
        let err = auth
            .add_user(USER, PASSWD, &t.home, "?", None, None)
            .unwrap_err();
        assert_eq!(err.to_string(), "no such permission '?'");
        assert!(!auth.has_user(USER));
        let err = auth.add_anonymous(&t.home, "?", None, None).unwrap_err();
        assert!(matches!(err, AuthorizerError::NoSuchPermission('?')));
        // write permissions for anonymous are accepted (with a logged warning)
        for p in ["a", "d", "f", "m", "w", "M", "T"] {
            auth.add_anonymous(&t.home, p, None, None).unwrap();
            auth.remove_user("anonymous").unwrap();
        }
    }

    #[test]
    fn unknown_and_unconfigured_anonymous() {
        let t = tree();
        let mut auth = DummyAuthorizer::new();
        let err = auth.validate_authentication("anonymous", "x").unwrap_err();
        assert_eq!(
            err,
            AuthenticationFailed("Anonymous access not allowed.".into())
        );
        let err = auth.validate_authentication("nobody", "x").unwrap_err();
        assert_eq!(err.0, "Authentication failed.");
        auth.add_user(USER, PASSWD, &t.home, "elr", None, None)
            .unwrap();
        // prefixes, extensions and empty passwords all fail
        for bad in ["", "1234", "123456", "12346", "x2345"] {
            assert!(auth.validate_authentication(USER, bad).is_err(), "{bad:?}");
        }
        // a user with an empty password must give it exactly
        auth.add_user("nopass", "", &t.home, "elr", None, None)
            .unwrap();
        assert!(auth.validate_authentication("nopass", "").is_ok());
        assert!(auth.validate_authentication("nopass", "x").is_err());
    }

    #[test]
    fn getters_and_messages() {
        let t = tree();
        let mut auth = DummyAuthorizer::new();
        auth.add_user(USER, PASSWD, &t.home, "elrw", Some("hi"), Some("bye"))
            .unwrap();
        auth.add_user(
            "plain",
            PASSWD,
            t.home.join("tdir/../tdir"),
            "elr",
            None,
            None,
        )
        .unwrap();
        assert_eq!(auth.home_dir(USER), Some(t.home.clone()));
        // home is stored canonicalized
        assert_eq!(auth.home_dir("plain"), Some(t.tempdir.clone()));
        assert_eq!(auth.home_dir("nobody"), None);
        assert_eq!(auth.perms(USER), "elrw");
        assert_eq!(auth.perms("nobody"), "");
        assert_eq!(auth.msg_login(USER), "hi");
        assert_eq!(auth.msg_quit(USER), "bye");
        assert_eq!(auth.msg_login("plain"), "Login successful.");
        assert_eq!(auth.msg_quit("plain"), "Goodbye.");
        assert_eq!(auth.msg_quit("nobody"), "Goodbye.");
        assert!(auth.has_perm(USER, 'w', None));
        assert!(!auth.has_perm(USER, 'd', None));
        assert!(!auth.has_perm("nobody", 'r', None));
        // impersonation is a no-op
        auth.impersonate_user(USER, PASSWD);
        auth.terminate_impersonation(USER);
        // Debug output never shows the password
        assert!(!format!("{auth:?}").contains(PASSWD));
    }

    #[test]
    fn symlinked_home_is_resolved() {
        let t = tree();
        let link = t.home.join("link");
        std::os::unix::fs::symlink(&t.tempdir, &link).unwrap();
        let mut auth = DummyAuthorizer::new();
        auth.add_user(USER, PASSWD, &link, "elr", None, None)
            .unwrap();
        assert_eq!(auth.home_dir(USER), Some(t.tempdir.clone()));
    }

    #[test]
    fn override_perm_interface() {
        let t = tree();
        let mut auth = DummyAuthorizer::new();
        auth.add_user(USER, PASSWD, &t.home, "elr", None, None)
            .unwrap();
        // unknown user
        let err = auth
            .override_perm("userw", &t.home, "elr", false)
            .unwrap_err();
        assert!(matches!(err, AuthorizerError::NoSuchUser(_)));
        // missing path, or not a directory
        let err = auth
            .override_perm(USER, t.home.join("missing"), "elr", false)
            .unwrap_err();
        assert!(err.to_string().starts_with("no such directory"));
        let err = auth
            .override_perm(USER, &t.tempfile, "elr", false)
            .unwrap_err();
        assert!(matches!(err, AuthorizerError::NoSuchDirectory(_)));
        // wrong permission
        let err = auth.override_perm(USER, &t.home, "?", false).unwrap_err();
        assert!(matches!(err, AuthorizerError::NoSuchPermission('?')));
        // write permissions for anonymous are accepted with a warning
        auth.add_anonymous(&t.home, "elr", None, None).unwrap();
        for p in ["a", "d", "f", "m", "w"] {
            auth.override_perm("anonymous", &t.tempdir, p, false)
                .unwrap();
        }
        // home itself
        let err = auth.override_perm(USER, &t.home, "w", false).unwrap_err();
        assert_eq!(err.to_string(), "can't override home directory permissions");
        // also through a non-canonical spelling
        let err = auth
            .override_perm(USER, t.tempdir.join(".."), "w", false)
            .unwrap_err();
        assert!(matches!(err, AuthorizerError::OverrideHome));
        // outside home
        let parent = t.home.parent().unwrap();
        let err = auth.override_perm(USER, parent, "w", false).unwrap_err();
        assert_eq!(err.to_string(), "path escapes user home directory");
        // re-set an overridden permission
        auth.override_perm(USER, &t.tempdir, "w", false).unwrap();
        auth.override_perm(USER, &t.tempdir, "wr", false).unwrap();
        assert!(auth.has_perm(USER, 'r', Some(&t.tempdir)));
        assert!(!auth.has_perm(USER, 'e', Some(&t.tempdir)));
    }

    #[test]
    fn override_perm_recursive_paths() {
        let t = tree();
        let mut auth = DummyAuthorizer::new();
        auth.add_user(USER, PASSWD, &t.home, "elr", None, None)
            .unwrap();
        assert!(!auth.has_perm(USER, 'w', Some(&t.tempdir)));
        auth.override_perm(USER, &t.tempdir, "w", true).unwrap();
        assert!(!auth.has_perm(USER, 'w', Some(&t.home)));
        assert!(auth.has_perm(USER, 'w', Some(&t.tempdir)));
        assert!(auth.has_perm(USER, 'w', Some(&t.tempfile)));
        assert!(auth.has_perm(USER, 'w', Some(&t.subtempdir)));
        assert!(auth.has_perm(USER, 'w', Some(&t.subtempfile)));
        // the override replaces the global perms inside its directory
        assert!(!auth.has_perm(USER, 'r', Some(&t.subtempfile)));
        assert!(auth.has_perm(USER, 'r', Some(&t.home.join("other"))));

        assert!(!auth.has_perm(USER, 'w', Some(&with_suffix(&t.home, "@"))));
        assert!(!auth.has_perm(USER, 'w', Some(&with_suffix(&t.tempdir, "@"))));
        let path = with_suffix(&t.tempdir, "@").join("file");
        assert!(!auth.has_perm(USER, 'w', Some(&path)));
    }

    #[test]
    fn override_perm_not_recursive_paths() {
        let t = tree();
        let mut auth = DummyAuthorizer::new();
        auth.add_user(USER, PASSWD, &t.home, "elr", None, None)
            .unwrap();
        assert!(!auth.has_perm(USER, 'w', Some(&t.tempdir)));
        auth.override_perm(USER, &t.tempdir, "w", false).unwrap();
        assert!(!auth.has_perm(USER, 'w', Some(&t.home)));
        assert!(auth.has_perm(USER, 'w', Some(&t.tempdir)));
        assert!(auth.has_perm(USER, 'w', Some(&t.tempfile)));
        // a file that does not exist yet directly inside (STOR) is covered too
        assert!(auth.has_perm(USER, 'w', Some(&t.tempdir.join("new"))));
        assert!(!auth.has_perm(USER, 'w', Some(&t.subtempdir)));
        assert!(!auth.has_perm(USER, 'w', Some(&t.subtempfile)));

        assert!(!auth.has_perm(USER, 'w', Some(&with_suffix(&t.home, "@"))));
        assert!(!auth.has_perm(USER, 'w', Some(&with_suffix(&t.tempdir, "@"))));
        let path = with_suffix(&t.tempdir, "@").join("file");
        assert!(!auth.has_perm(USER, 'w', Some(&path)));
    }

    #[test]
    fn most_specific_override_wins() {
        let t = tree();
        let mut auth = DummyAuthorizer::new();
        auth.add_user(USER, PASSWD, &t.home, "elr", None, None)
            .unwrap();
        // Added deepest first, then the broader one: pyftpdlib would let the first
        // added decide for tdir/sub only by accident of order; we always pick the
        // deepest match.
        auth.override_perm(USER, &t.tempdir, "elrw", true).unwrap();
        auth.override_perm(USER, &t.subtempdir, "el", true).unwrap();
        assert!(auth.has_perm(USER, 'w', Some(&t.tempfile)));
        assert!(!auth.has_perm(USER, 'w', Some(&t.subtempfile)));
        assert!(!auth.has_perm(USER, 'w', Some(&t.subtempdir)));

        // A non-recursive deeper override does not shadow the recursive parent below
        // its direct children.
        let deep = t.subtempdir.join("deeper");
        fs::create_dir(&deep).unwrap();
        let mut auth = DummyAuthorizer::new();
        auth.add_user(USER, PASSWD, &t.home, "elr", None, None)
            .unwrap();
        auth.override_perm(USER, &t.tempdir, "elrw", true).unwrap();
        auth.override_perm(USER, &t.subtempdir, "el", false)
            .unwrap();
        assert!(!auth.has_perm(USER, 'w', Some(&t.subtempfile)));
        assert!(auth.has_perm(USER, 'w', Some(&deep)));
        assert!(auth.has_perm(USER, 'w', Some(&deep.join("f"))));
    }

    #[test]
    fn constant_time_eq_cases() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"a\0", b"a"));
    }
}

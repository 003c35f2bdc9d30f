//! The users file of the command line (`--users-file`): one virtual user per line,
//! `name:hash:home:perms`, with crypt(3) hashes so no clear-text password is stored.
//!
//! ```text
//! # name : crypt(3) hash (ftpdlib --hash-password) : home : permission letters
//! alice:$y$j9T$ZRf0…$Vr3…:/srv/ftp/alice:elradfmwMT
//! bob:$6$Kc1…$Xq…:/srv/ftp/pub:elr
//! anonymous::/srv/ftp/pub:elr
//! ```
//!
//! Blank lines and lines starting with `#` are skipped. The home is everything between
//! the second colon and the last one, so it may itself contain colons. An empty perms
//! field means `elr`. `anonymous` takes an empty hash (any password is accepted).
//!
//! After the permission letters, separated by spaces, a line may set the user's quota
//! with `quota-bytes=N` (K, M, G suffixes) and `quota-files=N` (see [`crate::quotas`]):
//!
//! ```text
//! carol:$y$j9T$…:/srv/ftp/carol:elradfmw quota-bytes=500M quota-files=10000
//! ```

use std::path::{Path, PathBuf};

use super::{AuthorizerError, DummyAuthorizer, Quota, ANONYMOUS, READ_PERMS};

/// A users file could not be used; the text names the file and the line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsersFileError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `name:hash:home:perms`, or names an impossible user.
    #[error("{}:{line}: {message}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

impl DummyAuthorizer {
    /// Adds every user of the users file at `path` (see the module docs for the format):
    /// all of them, or none when any line is bad.
    ///
    /// # Errors
    /// [`UsersFileError::Read`], or [`UsersFileError::Line`] for the first bad line: a
    /// wrong number of fields, an empty name, a hash libcrypt does not accept, a missing
    /// home, an unknown permission letter, a duplicate user.
    pub fn add_users_file(&mut self, path: impl AsRef<Path>) -> Result<(), UsersFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| UsersFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.add_users_text(&text, path)
    }

    /// As [`DummyAuthorizer::add_users_file`], for the file's contents; `origin` names
    /// the file in errors.
    ///
    /// ```
    /// use ftpdlib::authorizers::{hash_password, Authorizer, DummyAuthorizer};
    ///
    /// let dir = std::env::temp_dir();
    /// let text = format!(
    ///     "# users\nann:{}:{}:elrw\n\nanonymous::{}:\n",
    ///     hash_password("pw")?,
    ///     dir.display(),
    ///     dir.display()
    /// );
    /// let mut auth = DummyAuthorizer::new();
    /// auth.add_users_text(&text, "users.txt".as_ref())?;
    /// assert!(auth.validate_authentication("ann", "pw").is_ok());
    /// assert_eq!(auth.perms("anonymous"), "elr");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`DummyAuthorizer::add_users_file`].
    pub fn add_users_text(&mut self, text: &str, origin: &Path) -> Result<(), UsersFileError> {
        let mut next = self.clone();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let bad = |message: String| UsersFileError::Line {
                path: origin.to_path_buf(),
                line: i + 1,
                message,
            };
            let entry = split_entry(line).ok_or_else(|| {
                bad("expected name:hash:home:perms (4 fields separated by ':')".to_owned())
            })?;
            let Entry {
                name,
                hash,
                home,
                perms,
                words,
            } = entry;
            let quota = quota_words(words).map_err(bad)?;
            if name.is_empty() {
                return Err(bad("empty user name".to_owned()));
            }
            let perms = if perms.is_empty() { READ_PERMS } else { perms };
            let added = if name == ANONYMOUS {
                if !hash.is_empty() {
                    return Err(bad(
                        "anonymous takes no password: leave the hash field empty".to_owned(),
                    ));
                }
                next.add_anonymous(home, perms, None, None)
            } else if hash.is_empty() {
                return Err(bad(format!(
                    "user '{name}' has no password hash (make one with ftpdlib --hash-password)"
                )));
            } else {
                next.add_user_hashed(name, hash, home, perms, None, None)
            };
            added.map_err(|e| match e {
                AuthorizerError::BadHash(_) => bad(format!(
                    "user '{name}': the hash is not a crypt(3) string this system supports \
                     (make one with ftpdlib --hash-password)"
                )),
                e => bad(e.to_string()),
            })?;
            if quota.is_limited() {
                next.set_quota(name, Some(quota))
                    .map_err(|e| bad(e.to_string()))?;
            }
        }
        *self = next;
        Ok(())
    }
}

struct Entry<'a> {
    name: &'a str,
    hash: &'a str,
    home: &'a str,
    perms: &'a str,
    /// The `key=value` words after the permission letters.
    words: Vec<&'a str>,
}

/// The quota of a line's `quota-bytes=N` and `quota-files=N` words.
fn quota_words(words: Vec<&str>) -> Result<Quota, String> {
    let mut quota = Quota::default();
    for word in words {
        let parsed = match word.split_once('=') {
            Some(("quota-bytes", v)) => crate::quotas::parse_size(v).map(|n| quota.bytes = Some(n)),
            Some(("quota-files", v)) => crate::quotas::parse_size(v).map(|n| quota.files = Some(n)),
            _ => Err("expected quota-bytes=N or quota-files=N".to_owned()),
        };
        parsed.map_err(|e| format!("{word:?}: {e}"))?;
    }
    Ok(quota)
}

/// Splits `name:hash:home:perms [key=value...]`; the home may contain colons.
fn split_entry(line: &str) -> Option<Entry<'_>> {
    let (name, rest) = line.split_once(':')?;
    let (hash, rest) = rest.split_once(':')?;
    let (home, last) = rest.rsplit_once(':')?;
    if home.is_empty() {
        return None;
    }
    let mut words: Vec<&str> = last.split_whitespace().collect();
    let perms = match words.first() {
        Some(w) if !w.contains('=') => words.remove(0),
        Some(_) | None => "",
    };
    Some(Entry {
        name: name.trim(),
        hash: hash.trim(),
        home,
        perms,
        words,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{hash_password, Authorizer};
    use super::*;

    fn load(text: &str) -> Result<DummyAuthorizer, UsersFileError> {
        let mut auth = DummyAuthorizer::new();
        auth.add_users_text(text, Path::new("users.txt"))?;
        Ok(auth)
    }

    fn err(text: &str) -> String {
        match load(text) {
            Ok(_) => panic!("accepted: {text:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn quota_words_follow_the_perms() {
        let dir = std::env::temp_dir();
        let d = dir.display();
        let hash = hash_password("pw").unwrap();
        let auth = load(&format!(
            "ann:{hash}:{d}:elrw quota-bytes=2K quota-files=7\nanonymous::{d}: quota-files=3\n"
        ))
        .unwrap();
        let ann = auth.quota("ann").unwrap();
        assert_eq!((ann.bytes, ann.files), (Some(2048), Some(7)));
        assert_eq!(auth.perms("ann"), "elrw");
        assert_eq!(auth.quota("anonymous").unwrap().files, Some(3));
        assert_eq!(auth.perms("anonymous"), "elr");
        let e = err(&format!("ann:{hash}:{d}:elr quota-bytes=lots\n"));
        assert!(
            e.contains("users.txt:1:") && e.contains("quota-bytes=lots"),
            "{e}"
        );
        let e = err(&format!("ann:{hash}:{d}:elr color=red\n"));
        assert!(e.contains("expected quota-bytes=N or quota-files=N"), "{e}");
    }

    #[test]
    fn good_file() {
        let tmp = tempfile::tempdir().unwrap();
        let colon = tmp.path().join("a:b");
        std::fs::create_dir(&colon).unwrap();
        let h = hash_password("pw").unwrap();
        let d = tmp.path().display();
        let text = format!(
            "# comment\n\n  # indented comment\nann:{h}:{d}:elrw\r\nbob:{h}:{}:\nanonymous::{d}:elr\n",
            colon.display()
        );
        let auth = load(&text).unwrap();
        assert!(auth.validate_authentication("ann", "pw").is_ok());
        assert!(auth.validate_authentication("ann", "px").is_err());
        assert!(auth.validate_authentication("bob", "pw").is_ok());
        assert!(auth.validate_authentication("anonymous", "x").is_ok());
        assert_eq!(auth.perms("ann"), "elrw");
        assert_eq!(auth.perms("bob"), "elr");
        assert_eq!(auth.home_dir("bob"), Some(colon.canonicalize().unwrap()));
    }

    #[test]
    fn bad_lines_name_the_line() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().display();
        let h = hash_password("pw").unwrap();
        assert_eq!(
            err("# c\nann\n"),
            "users.txt:2: expected name:hash:home:perms (4 fields separated by ':')"
        );
        assert!(err(&format!("ann:{h}:{d}\n")).starts_with("users.txt:1: expected"));
        assert!(err(&format!("\n\n:{h}:{d}:elr\n")).starts_with("users.txt:3: empty user name"));
        assert!(err(&format!("ann:12345:{d}:elr\n")).contains("not a crypt(3) string"));
        assert!(err(&format!("ann::{d}:elr\n")).contains("has no password hash"));
        assert!(err(&format!("ann:{h}:{d}/missing:elr\n")).contains("no such directory"));
        assert!(err(&format!("ann:{h}:{d}:elrX\n")).ends_with("no such permission 'X'"));
        assert_eq!(
            err(&format!("ann:{h}:{d}:elr\nann:{h}:{d}:elr\n")),
            "users.txt:2: user 'ann' already exists"
        );
        assert!(err(&format!("anonymous:{h}:{d}:elr\n")).contains("anonymous takes no password"));
    }

    #[test]
    fn all_or_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().display();
        let h = hash_password("pw").unwrap();
        let mut auth = DummyAuthorizer::new();
        let text = format!("ann:{h}:{d}:elr\nbob:bad:{d}:elr\n");
        assert!(auth.add_users_text(&text, Path::new("u")).is_err());
        assert!(!auth.has_user("ann"));
        let missing = auth.add_users_file(tmp.path().join("nope")).unwrap_err();
        assert!(matches!(missing, UsersFileError::Read { .. }));
    }
}

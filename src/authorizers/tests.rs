//! DummyAuthorizer cases of pyftpdlib's test_authorizers, rewritten.

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
    auth.impersonate_user(USER).unwrap();
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

/// Allows logins from 192.0.2.0/24 only, through the provided method.
struct FromDocNet(DummyAuthorizer);

impl Authorizer for FromDocNet {
    fn validate_authentication(&self, u: &str, p: &str) -> Result<(), AuthenticationFailed> {
        self.0.validate_authentication(u, p)
    }
    fn validate_authentication_from(
        &self,
        u: &str,
        p: &str,
        remote: SocketAddr,
    ) -> Result<(), AuthenticationFailed> {
        match remote.ip() {
            std::net::IpAddr::V4(ip) if ip.octets()[..3] == [192, 0, 2] => {
                self.0.validate_authentication(u, p)
            }
            _ => Err(AuthenticationFailed("Not from here.".into())),
        }
    }
    fn home_dir(&self, u: &str) -> Option<PathBuf> {
        self.0.home_dir(u)
    }
    fn has_user(&self, u: &str) -> bool {
        self.0.has_user(u)
    }
    fn has_perm(&self, u: &str, perm: char, path: Option<&Path>) -> bool {
        self.0.has_perm(u, perm, path)
    }
    fn perms(&self, u: &str) -> String {
        self.0.perms(u)
    }
    fn msg_login(&self, u: &str) -> String {
        self.0.msg_login(u)
    }
    fn msg_quit(&self, u: &str) -> String {
        self.0.msg_quit(u)
    }
}

#[test]
fn validate_authentication_from_defaults_to_the_address_blind_check() {
    let t = tree();
    let mut auth = DummyAuthorizer::new();
    auth.add_user(USER, PASSWD, &t.home, "elr", None, None)
        .expect("add");
    let far: SocketAddr = "203.0.113.5:4000".parse().expect("addr");
    assert!(auth.validate_authentication_from(USER, PASSWD, far).is_ok());
    assert!(auth
        .validate_authentication_from(USER, "wrong", far)
        .is_err());
}

#[test]
fn validate_authentication_from_is_forwarded_through_box_and_arc() {
    let t = tree();
    let mut users = DummyAuthorizer::new();
    users
        .add_user(USER, PASSWD, &t.home, "elr", None, None)
        .expect("add");
    let near: SocketAddr = "192.0.2.9:1".parse().expect("addr");
    let far: SocketAddr = "198.51.100.9:1".parse().expect("addr");
    let boxed: Box<dyn Authorizer> = Box::new(FromDocNet(users.clone()));
    let shared: Arc<dyn Authorizer> = Arc::new(FromDocNet(users.clone()));
    let wrapped = WithFilesystem::new(FromDocNet(users), |_: &str, home: PathBuf| {
        Ok(Box::new(AbstractedFs::new(home)?) as Box<dyn FileSystem>)
    });
    for auth in [&boxed as &dyn Authorizer, &shared, &wrapped] {
        assert!(auth
            .validate_authentication_from(USER, PASSWD, near)
            .is_ok());
        assert_eq!(
            auth.validate_authentication_from(USER, PASSWD, far),
            Err(AuthenticationFailed("Not from here.".into()))
        );
        // The address-blind check is the wrapped authorizer's own.
        assert!(auth.validate_authentication(USER, PASSWD).is_ok());
    }
}

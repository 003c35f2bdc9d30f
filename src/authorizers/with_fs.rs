//! [`WithFilesystem`]: any authorizer, with the sessions' filesystem made by your code,
//! the way to put FTP in front of your own [`FileSystem`] without touching the handlers.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{AuthenticationFailed, Authorizer, AuthorizerError};
use crate::filesystems::FileSystem;

/// Wraps an authorizer so that [`Authorizer::filesystem`] calls `make(username, home)`;
/// everything else is the wrapped authorizer's (pyftpdlib's `handler.abstracted_fs =
/// MyFS`).
///
/// ```
/// use ftpdlib::authorizers::{DummyAuthorizer, WithFilesystem};
/// use ftpdlib::filesystems::{AbstractedFs, FileSystem};
///
/// let mut users = DummyAuthorizer::new();
/// users.add_user("user", "12345", std::env::temp_dir(), "elr", None, None)?;
/// let auth = WithFilesystem::new(users, |_user, home| {
///     // wrap or replace the standard view here
///     Ok(Box::new(AbstractedFs::new(home)?) as Box<dyn FileSystem>)
/// });
/// let server = ftpdlib::servers::FtpServer::builder(auth);
/// # drop(server);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct WithFilesystem<A, F> {
    inner: A,
    make: F,
}

impl<A, F> WithFilesystem<A, F>
where
    A: Authorizer,
    F: Fn(&str, PathBuf) -> io::Result<Box<dyn FileSystem>> + Send + Sync,
{
    /// `inner`'s users, with sessions' filesystems made by `make`.
    pub fn new(inner: A, make: F) -> Self {
        Self { inner, make }
    }

    /// The wrapped authorizer.
    pub fn inner(&self) -> &A {
        &self.inner
    }
}

impl<A, F> Authorizer for WithFilesystem<A, F>
where
    A: Authorizer,
    F: Fn(&str, PathBuf) -> io::Result<Box<dyn FileSystem>> + Send + Sync,
{
    fn validate_authentication(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(), AuthenticationFailed> {
        self.inner.validate_authentication(username, password)
    }
    fn validate_authentication_from(
        &self,
        username: &str,
        password: &str,
        remote: SocketAddr,
    ) -> Result<(), AuthenticationFailed> {
        self.inner
            .validate_authentication_from(username, password, remote)
    }
    fn home_dir(&self, username: &str) -> Option<PathBuf> {
        self.inner.home_dir(username)
    }
    fn has_user(&self, username: &str) -> bool {
        self.inner.has_user(username)
    }
    fn has_perm(&self, username: &str, perm: char, path: Option<&Path>) -> bool {
        self.inner.has_perm(username, perm, path)
    }
    fn perms(&self, username: &str) -> String {
        self.inner.perms(username)
    }
    fn msg_login(&self, username: &str) -> String {
        self.inner.msg_login(username)
    }
    fn msg_quit(&self, username: &str) -> String {
        self.inner.msg_quit(username)
    }
    fn impersonate_user(&self, username: &str) -> Result<(), AuthorizerError> {
        self.inner.impersonate_user(username)
    }
    fn terminate_impersonation(&self, username: &str) {
        self.inner.terminate_impersonation(username)
    }
    fn bandwidth(&self, username: &str) -> Option<super::UserBandwidth> {
        self.inner.bandwidth(username)
    }
    fn filesystem(&self, username: &str, home: PathBuf) -> io::Result<Box<dyn FileSystem>> {
        (self.make)(username, home)
    }
    fn quota(&self, username: &str) -> Option<crate::quotas::Quota> {
        self.inner.quota(username)
    }
}

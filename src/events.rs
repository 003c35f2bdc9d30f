//! Callbacks fired by the server at the points pyftpdlib calls its `on_*` hooks.
//!
//! They run on the loop thread: a callback that blocks stalls every session.

use std::net::SocketAddr;
use std::path::Path;

/// Who a callback is about.
#[derive(Debug, Clone, Copy)]
pub struct Session<'a> {
    /// The client's address.
    pub remote: SocketAddr,
    /// The user name given with USER ("" before it).
    pub username: &'a str,
}

/// Hooks into a session's life; every method defaults to doing nothing.
pub trait Events: Send + Sync {
    /// A client was accepted within the limits, before the 220 greeting.
    fn on_connect(&self, _s: Session<'_>) {}
    /// A client's control connection closed.
    fn on_disconnect(&self, _s: Session<'_>) {}
    /// A user logged in (after the 230 reply was queued).
    fn on_login(&self, _s: Session<'_>) {}
    /// A login failed (after the delay and the 530 reply). The password is not given.
    fn on_login_failed(&self, _s: Session<'_>) {}
    /// A logged-in user left with QUIT, REIN or a new USER.
    fn on_logout(&self, _s: Session<'_>) {}
    /// A file was sent completely (RETR); `path` is the real path.
    fn on_file_sent(&self, _s: Session<'_>, _path: &Path) {}
    /// A file was received completely (STOR, APPE, STOU).
    fn on_file_received(&self, _s: Session<'_>, _path: &Path) {}
    /// A download ended early (ABOR, an error, a timeout, the client went away).
    fn on_incomplete_file_sent(&self, _s: Session<'_>, _path: &Path) {}
    /// An upload ended early; the partial file is left in place.
    fn on_incomplete_file_received(&self, _s: Session<'_>, _path: &Path) {}
}

/// Events that do nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl Events for NoEvents {}

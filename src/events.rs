//! Callbacks fired by the server at the points pyftpdlib calls its `on_*` hooks.
//!
//! They run on the loop thread: a callback that blocks stalls every session.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::proto::Reply;

/// Who a callback is about.
#[derive(Debug, Clone, Copy)]
pub struct Session<'a> {
    /// The client's address.
    pub remote: SocketAddr,
    /// The user name given with USER ("" before it).
    pub username: &'a str,
}

/// What to do with a command ([`Events::on_command`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CommandVerdict {
    /// Run it as usual.
    Run,
    /// Answer with this reply instead; the command does not run.
    Refuse(Reply),
    /// Answer with this reply and close the session; the command does not run.
    Close(Reply),
}

/// Hooks into a session's life; every method but the two gates defaults to doing nothing,
/// the gates ([`admit`](Events::admit), [`on_command`](Events::on_command)) to letting
/// everything through.
pub trait Events: Send + Sync {
    /// A connection was accepted, before any limit or greeting: `Some(reply)` refuses it
    /// (the reply is sent, usually a 421, then the connection is closed; no session
    /// starts and no other callback fires). Behind a balancer `remote` is the address the
    /// PROXY header carried. pyftpdlib's anti-flood demo refuses banned addresses here.
    fn admit(&self, _remote: SocketAddr) -> Option<Reply> {
        None
    }
    /// A command line arrived, before anything checks it (`command` in upper case, `SITE
    /// CHMOD` as `SITE CHMOD`): counting commands, refusing some for some users. Runs for
    /// every command, so it must be cheap.
    fn on_command(&self, _s: Session<'_>, _command: &str) -> CommandVerdict {
        CommandVerdict::Run
    }
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
    /// A file transfer ended, completed or not, with what a transfer log records (the
    /// `ftpdlib` binary's `--xferlog`). Fired after the matching `on_*file*` callback;
    /// listings fire nothing.
    fn on_transfer_ended(&self, _t: &TransferRecord<'_>) {}
}

/// A file transfer as it ended.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TransferRecord<'a> {
    /// Whose transfer.
    pub session: Session<'a>,
    /// The real path of the file.
    pub path: &'a Path,
    /// Download or upload.
    pub direction: Direction,
    /// TYPE A (line endings converted) rather than TYPE I.
    pub ascii: bool,
    /// Bytes moved over the data connection.
    pub bytes: u64,
    /// From the transfer command to the end.
    pub duration: Duration,
    /// False when it ended early (ABOR, an error, a timeout, the client went away).
    pub completed: bool,
}

/// Which way a file went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Direction {
    /// To the client (RETR).
    Outgoing,
    /// From the client (STOR, APPE, STOU).
    Incoming,
}

/// Events that do nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl Events for NoEvents {}

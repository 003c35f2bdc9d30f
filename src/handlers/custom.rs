//! Commands added by the embedding program (pyftpdlib's `ftp_SITE_X` methods plus a
//! `proto_cmds` entry): a [`CommandSpec`](crate::proto::CommandSpec) in the command table,
//! and a body that runs with the session's context.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::authorizers::Authorizer;
use crate::filesystems::FileSystem;
use crate::proto::Reply;

/// What a custom command's body can see and use.
#[non_exhaustive]
pub struct CommandContext<'a> {
    /// The user name (empty before USER).
    pub username: &'a str,
    /// The client's address.
    pub remote: SocketAddr,
    /// The session's filesystem; None before login.
    pub fs: Option<&'a mut dyn FileSystem>,
    /// The server's authorizer.
    pub authorizer: &'a dyn Authorizer,
    /// For a command with a permission letter: the argument's real path, already checked
    /// against the user's root and the letter (None otherwise).
    pub path: Option<&'a Path>,
    /// The same path as the client sees it.
    pub ftp_path: Option<&'a str>,
}

/// The body of a custom command: gets the context and the raw argument, returns the reply.
pub type CommandBody = Arc<dyn Fn(&mut CommandContext<'_>, &str) -> Reply + Send + Sync>;

//! A throw-away server for test suites of FTP clients (the way Chromium and Bazaar used
//! pyftpdlib): one line starts it on an ephemeral loopback port, dropping it stops it.
//!
//! ```
//! let dir = std::env::temp_dir();
//! let server = ftpdlib::testing::spawn(&dir)?;
//! let addr = server.local_addr(); // 127.0.0.1:<ephemeral port>
//! // ... point the client under test at ftp://user:12345@{addr}/ ...
//! drop(server); // closes every session and joins the server thread
//! # Ok::<(), ftpdlib::Error>(())
//! ```

use std::path::Path;

use crate::authorizers::{DummyAuthorizer, READ_PERMS, WRITE_PERMS};
use crate::error::Error;
use crate::servers::{FtpServer, RunningServer};

/// The user [`spawn`] creates, with every right.
pub const USER: &str = "user";
/// Its password.
pub const PASSWORD: &str = "12345";

/// Serves `dir` on `127.0.0.1:<ephemeral port>` from a background thread: [`USER`] /
/// [`PASSWORD`] may do everything, `anonymous` may read. The server stops when the
/// returned [`RunningServer`] is dropped.
///
/// # Errors
/// When `dir` is not a directory or the server cannot start.
pub fn spawn(dir: impl AsRef<Path>) -> Result<RunningServer, Error> {
    let dir = dir.as_ref();
    let mut auth = DummyAuthorizer::new();
    auth.add_user(
        USER,
        PASSWORD,
        dir,
        &format!("{READ_PERMS}{WRITE_PERMS}"),
        None,
        None,
    )?;
    auth.add_anonymous(dir, READ_PERMS, None, None)?;
    FtpServer::builder(auth).spawn("127.0.0.1:0")
}

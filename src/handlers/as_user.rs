//! Running a session's commands as its user: pyftpdlib's `run_as_current_user`, as a
//! guard. [`FtpHandler::impersonate`] asks the authorizer to switch the process to the
//! logged-in user; dropping the guard switches back, on every path out of the command
//! (early returns and panics included).

use std::sync::Arc;

use super::control::{FtpHandler, Login};
use crate::authorizers::Authorizer;
use crate::proto::Reply;

/// While alive, the process acts as `user`; dropping it calls
/// [`Authorizer::terminate_impersonation`].
pub(super) struct AsUser {
    authorizer: Arc<dyn Authorizer>,
    user: String,
}

impl Drop for AsUser {
    fn drop(&mut self) {
        self.authorizer.terminate_impersonation(&self.user);
    }
}

impl FtpHandler {
    /// Before a command of a logged-in session: switches to its user. `Ok(None)` when
    /// nobody is logged in yet (USER, PASS and the like run as the server).
    ///
    /// # Errors
    /// The `421` reply to send (then close) when the switch failed; the authorizer has
    /// already switched back.
    pub(super) fn impersonate(&self) -> Result<Option<AsUser>, Reply> {
        let Login::LoggedIn { user, .. } = &self.login else {
            return Ok(None);
        };
        let guard = AsUser {
            authorizer: Arc::clone(self.authorizer()),
            user: user.clone(),
        };
        match guard.authorizer.impersonate_user(user) {
            Ok(()) => Ok(Some(guard)),
            Err(e) => {
                log::error!("{} {e}", self.prefix());
                Err(Reply::new(
                    421,
                    "Service not available, can't act as this user.",
                ))
            }
        }
    }
}

//! proftpd's mod_site_misc commands, each off unless the server turns it on:
//! `SITE UTIME` and `SITE SYMLINK`.

use ioloop::Ctx;

use super::Resolved;
use crate::error::fs_error_reply;
use crate::handlers::control::FtpHandler;
use crate::handlers::Msg;
use crate::proto::{split_utime, Reply};
use crate::timefmt;

/// Every right a user may hold. A link grants, through its path, whatever the user
/// holds where it lies; the target must already grant each of them.
const RIGHTS: &str = "elradfmwMT";

impl FtpHandler {
    /// `SITE UTIME YYYYMMDDhhmm[ss] path` or `SITE UTIME path atime mtime ctime UTC`:
    /// sets the modification time, UTC (and the access time to the same value, as MFMT
    /// does). The other two times of the long form are checked, not used: Unix keeps
    /// no creation time.
    pub(super) fn ftp_site_utime(&mut self, cx: &mut Ctx<'_, Msg>, arg: &str, t: Resolved) {
        let Some(utime) = split_utime(arg) else {
            return self.respond(Reply::new(501, "Invalid SITE UTIME format."));
        };
        let others_valid = utime.atime_ctime.is_none_or(|(atime, ctime)| {
            timefmt::parse_site_utime(atime).is_some() && timefmt::parse_site_utime(ctime).is_some()
        });
        let when = timefmt::parse_site_utime(utime.mtime).filter(|_| others_valid);
        let Some(when) = when else {
            return self.respond(Reply::new(
                501,
                "Invalid time format; expected: YYYYMMDDhhmm[ss].",
            ));
        };
        self.fs_reply(cx, move |fs| match fs.stat(&t.fs) {
            Ok(_) => match fs.set_mtime(&t.fs, when) {
                Ok(()) => Reply::new(200, "SITE UTIME successful."),
                Err(e) => fs_error_reply(&e),
            },
            Err(e) => fs_error_reply(&e),
        });
    }

    /// `SITE SYMLINK target link`: a relative symbolic link at `link` to `target`, both
    /// inside the user's root (the resolver checked them), when the user holds on the
    /// target every right they hold at the link's place.
    pub(super) fn ftp_site_symlink(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        target: Resolved,
        link: Resolved,
    ) {
        let authorizer = self.authorizer();
        let user = self.username();
        let grants_more = RIGHTS.chars().any(|right| {
            authorizer.has_perm(user, right, Some(&link.fs))
                && !authorizer.has_perm(user, right, Some(&target.fs))
        });
        if grants_more {
            return self.respond(Reply::new(550, "Not enough privileges."));
        }
        self.fs_reply(cx, move |fs| {
            if fs.lexists(&link.fs) {
                return Reply::new(550, format!("{} already exists.", link.ftp));
            }
            match fs.symlink(&target.fs, &link.fs) {
                Ok(()) => Reply::new(200, "SITE SYMLINK successful."),
                Err(e) => fs_error_reply(&e),
            }
        });
    }
}

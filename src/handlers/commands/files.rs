//! Files: DELE, RNFR / RNTO, SIZE, MDTM (RFC 3659 §3, §4), MFMT, SITE CHMOD.

use ioloop::Ctx;

use super::Resolved;
use crate::error::fs_error_reply;
use crate::filesystems::FileSystem;
use crate::handlers::control::FtpHandler;
use crate::handlers::Msg;
use crate::proto::{Pending, Reply, TransferType};
use crate::timefmt;

impl FtpHandler {
    /// Runs `work` on the filesystem (on a filesystem thread if it blocks) and sends the
    /// reply it makes.
    pub(super) fn fs_reply(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        work: impl FnOnce(&mut dyn FileSystem) -> Reply + Send + 'static,
    ) {
        self.on_fs(cx, work, |s, _, reply| s.respond(reply));
    }

    pub(super) fn ftp_dele(&mut self, cx: &mut Ctx<'_, Msg>, t: Resolved) {
        let work = move |fs: &mut dyn FileSystem| {
            let size = fs.lstat(&t.fs).ok().filter(|m| !m.is_dir()).map(|m| m.size);
            (fs.remove(&t.fs), size)
        };
        self.on_fs(cx, work, |s, _, (removed, size)| {
            if removed.is_ok() {
                s.quota_removed(size);
            }
            s.respond(match removed {
                Ok(()) => Reply::new(250, "File removed."),
                Err(e) => fs_error_reply(&e),
            });
        });
    }

    pub(super) fn ftp_rnfr(&mut self, cx: &mut Ctx<'_, Msg>, t: Resolved) {
        let work = move |fs: &mut dyn FileSystem| {
            if fs.lstat(&t.fs).is_err() {
                return Err(Reply::new(550, "No such file or directory."));
            }
            if t.fs == fs.root() {
                return Err(Reply::new(550, "Can't rename home directory."));
            }
            Ok(t.fs)
        };
        self.on_fs(cx, work, |s, _, checked| match checked {
            Ok(path) => {
                s.pending = Pending::RenameFrom(path);
                s.respond(Reply::new(350, "Ready for destination name."));
            }
            Err(reply) => s.respond(reply),
        });
    }

    pub(super) fn ftp_rnto(&mut self, cx: &mut Ctx<'_, Msg>, t: Resolved) {
        let Pending::RenameFrom(src) = std::mem::take(&mut self.pending) else {
            // The gate lets RNTO through only right after an RNFR.
            return self.respond(Reply::new(503, "Bad sequence of commands: use RNFR first."));
        };
        // A file renamed over another removes that one; a move inside the home
        // changes nothing else.
        let work = move |fs: &mut dyn FileSystem| {
            let replaced = fs
                .lstat(&t.fs)
                .ok()
                .filter(|m| !m.is_dir() && src != t.fs)
                .map(|m| m.size);
            (fs.rename(&src, &t.fs), replaced)
        };
        self.on_fs(cx, work, |s, _, (renamed, replaced)| {
            if renamed.is_ok() {
                s.quota_removed(replaced);
            }
            s.respond(match renamed {
                Ok(()) => Reply::new(250, "Renaming ok."),
                Err(e) => fs_error_reply(&e),
            });
        });
    }

    pub(super) fn ftp_size(&mut self, cx: &mut Ctx<'_, Msg>, t: Resolved) {
        if self.transfer_type == TransferType::Ascii {
            return self.respond(Reply::new(550, "SIZE not allowed in ASCII mode."));
        }
        self.fs_reply(cx, move |fs| match fs.stat(&t.fs) {
            Ok(m) if m.is_file() => Reply::new(213, m.size.to_string()),
            Ok(_) | Err(_) => Reply::new(550, format!("{} is not retrievable.", t.ftp)),
        });
    }

    pub(super) fn ftp_mdtm(&mut self, cx: &mut Ctx<'_, Msg>, t: Resolved) {
        let gmt = self.shared.config.use_gmt_times;
        self.fs_reply(cx, move |fs| match fs.stat(&t.fs) {
            Ok(m) if m.is_file() => match timefmt::mdtm_checked(m.mtime, gmt) {
                Some(modify) => Reply::new(213, modify),
                None => Reply::new(550, "Can't determine file's last modification time."),
            },
            Ok(_) | Err(_) => Reply::new(550, format!("{} is not retrievable.", t.ftp)),
        });
    }

    pub(super) fn ftp_mfmt(&mut self, cx: &mut Ctx<'_, Msg>, arg: &str, t: Resolved) {
        let timeval = arg.split(' ').next().unwrap_or("");
        let Some(when) = timefmt::parse_mfmt(timeval) else {
            return self.respond(Reply::new(
                550,
                "Invalid time format; expected: YYYYMMDDHHMMSS.",
            ));
        };
        let gmt = self.shared.config.use_gmt_times;
        self.fs_reply(cx, move |fs| match fs.stat(&t.fs) {
            Ok(m) if m.is_file() => match fs.set_mtime(&t.fs, when) {
                Ok(()) => {
                    // Echo what the filesystem stored (it may clamp), as MDTM will show.
                    let stored = fs.stat(&t.fs).map(|m| m.mtime).unwrap_or(when);
                    Reply::new(
                        213,
                        format!("Modify={}; {}.", timefmt::mdtm(stored, gmt), t.ftp),
                    )
                }
                Err(e) => fs_error_reply(&e),
            },
            Ok(_) | Err(_) => Reply::new(550, format!("{} is not retrievable.", t.ftp)),
        });
    }

    pub(super) fn ftp_chmod(&mut self, cx: &mut Ctx<'_, Msg>, arg: &str, t: Resolved) {
        let mode = arg.split(' ').next().unwrap_or("");
        let valid =
            (3..=4).contains(&mode.len()) && mode.bytes().all(|b| (b'0'..=b'7').contains(&b));
        let Some(mode) = u32::from_str_radix(mode, 8).ok().filter(|_| valid) else {
            return self.respond(Reply::new(501, "Invalid SITE CHMOD format."));
        };
        self.fs_reply(cx, move |fs| match fs.chmod(&t.fs, mode) {
            Ok(()) => Reply::new(200, "SITE CHMOD successful."),
            Err(e) => fs_error_reply(&e),
        });
    }
}

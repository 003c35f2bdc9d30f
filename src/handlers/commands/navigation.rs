//! Moving around and shaping the tree: CWD / CDUP, PWD, MKD, RMD (RFC 959 §4.1.1,
//! §4.1.3).

use ioloop::Ctx;

use super::Resolved;
use crate::error::fs_error_reply;
use crate::handlers::control::FtpHandler;
use crate::handlers::Msg;
use crate::proto::{quote_path, Reply};

impl FtpHandler {
    pub(super) fn ftp_cwd(&mut self, cx: &mut Ctx<'_, Msg>, t: Resolved) {
        self.fs_reply(cx, move |fs| match fs.chdir(&t.fs) {
            Ok(()) => Reply::new(250, format!("\"{}\" is the current directory.", fs.cwd())),
            Err(e) => fs_error_reply(&e),
        });
    }

    pub(super) fn ftp_pwd(&mut self) {
        let cwd = self.fs().map(|fs| fs.cwd().to_owned()).unwrap_or_default();
        self.respond(Reply::new(
            257,
            format!("\"{}\" is the current directory.", quote_path(&cwd)),
        ));
    }

    pub(super) fn ftp_mkd(&mut self, cx: &mut Ctx<'_, Msg>, t: Resolved) {
        self.fs_reply(cx, move |fs| match fs.mkdir(&t.fs) {
            Ok(()) => Reply::new(
                257,
                format!("\"{}\" directory created.", quote_path(&t.ftp)),
            ),
            Err(e) => fs_error_reply(&e),
        });
    }

    pub(super) fn ftp_rmd(&mut self, cx: &mut Ctx<'_, Msg>, t: Resolved) {
        self.fs_reply(cx, move |fs| {
            if t.fs == fs.root() {
                return Reply::new(550, "Can't remove root directory.");
            }
            match fs.rmdir(&t.fs) {
                Ok(()) => Reply::new(250, "Directory removed."),
                Err(e) => fs_error_reply(&e),
            }
        });
    }
}

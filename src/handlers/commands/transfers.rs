//! Transfers: RETR, STOR, APPE, STOU, the listings LIST / NLST / MLSD, and what shapes
//! them: REST, TYPE, STRU, MODE, ABOR (RFC 959 §4.1.2, §4.1.3; RFC 3659).

use std::ffi::OsString;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use ioloop::Ctx;

use super::quota::UploadStart;
use super::Resolved;
use crate::error::{fs_error_reply, strerror};
use crate::filesystems::{FileSystem, WriteMode};
use crate::handlers::control::{DataChan, FtpHandler, Wait, XferInfo};
use crate::handlers::{atomic, DataCmd, Job, Msg};
use crate::proto::{mode_reply, parse_rest, parse_type, stru_reply, Pending, Reply, TransferType};

/// The listings sent over the data connection.
#[derive(Debug, Clone, Copy)]
pub(super) enum Listing {
    /// `ls -l` lines; names starting with a dot only with `dot_files` (`ls -la`).
    List { dot_files: bool },
    /// Bare names.
    Nlst,
    /// RFC 3659 facts.
    Mlsd,
}

impl FtpHandler {
    pub(super) fn ftp_type(&mut self, arg: &str) {
        match parse_type(arg) {
            Ok(t) => {
                self.transfer_type = t;
                self.respond(t.reply());
            }
            Err(reply) => self.respond(reply),
        }
    }

    pub(super) fn ftp_stru(&mut self, arg: &str) {
        self.respond(stru_reply(arg));
    }

    pub(super) fn ftp_mode(&mut self, arg: &str) {
        self.respond(mode_reply(arg));
    }

    pub(super) fn ftp_rest(&mut self, arg: &str) {
        if self.transfer_type == TransferType::Ascii {
            return self.respond(Reply::new(
                501,
                "Resuming transfers not allowed in ASCII mode.",
            ));
        }
        match parse_rest(arg) {
            Ok(offset) => {
                self.pending = if offset > 0 {
                    Pending::RestartAt(offset)
                } else {
                    Pending::Nothing
                };
                self.respond(Reply::new(350, format!("Restarting at position {offset}.")));
            }
            Err(reply) => self.respond(reply),
        }
    }

    pub(super) fn ftp_retr(&mut self, cx: &mut Ctx<'_, Msg>, t: Resolved) {
        let rest = self.take_restart();
        let work = move |fs: &mut dyn FileSystem| {
            let mut file = fs.open_read(&t.fs).map_err(|e| fs_error_reply(&e))?;
            if let Some(offset) = rest {
                let size = file.size().unwrap_or(0);
                if offset > size {
                    return Err(Reply::new(
                        554,
                        format!("REST position ({offset}) > file size ({size})"),
                    ));
                }
                file.seek(SeekFrom::Start(offset))
                    .map_err(|e| fs_error_reply(&e))?;
            }
            Ok((file, t.fs))
        };
        self.on_fs(cx, work, |s, cx, opened| match opened {
            Ok((file, path)) => {
                let ascii = s.transfer_type == TransferType::Ascii;
                let job = Job::SendFile {
                    file,
                    ascii,
                    pooled: s.fs_blocks(),
                };
                s.start_transfer(cx, job, xfer("RETR", Some(path)), None);
            }
            Err(reply) => s.respond(reply),
        });
    }

    /// STOR, or APPE when `append` (the gate refused APPE while a REST is pending).
    pub(super) fn ftp_stor(&mut self, cx: &mut Ctx<'_, Msg>, t: Resolved, append: bool) {
        let rest = self.take_restart();
        if let Some(reply) = self.no_data_channel() {
            return self.respond(reply); // before the file is opened: nothing is truncated
        }
        if self.shared.config.atomic_uploads {
            return self.stor_atomic(cx, t, append, rest);
        }
        // First what the upload meets (for the quota), then the file, once the quota
        // allows it.
        let work = move |fs: &mut dyn FileSystem| {
            let mode = match (append, rest) {
                (true, _) => WriteMode::Append,
                (false, Some(offset)) => {
                    match fs.stat(&t.fs) {
                        Ok(m) if offset > m.size => {
                            return Err(Reply::new(
                                554,
                                format!("REST position ({offset}) > file size ({})", m.size),
                            ))
                        }
                        Ok(_) => {}
                        Err(e) => return Err(fs_error_reply(&e)),
                    }
                    WriteMode::At(offset)
                }
                (false, None) => WriteMode::Truncate,
            };
            let start = UploadStart::of(fs, &t.fs, mode);
            Ok((t.fs, mode, start))
        };
        self.on_fs(cx, work, move |s, cx, met| match met {
            Ok((path, mode, start)) => match s.quota_refuses(&start) {
                Some(reply) => s.respond(reply),
                None => s.stor_open(cx, path, mode, start, append),
            },
            Err(reply) => s.respond(reply),
        });
    }

    /// STOR / APPE once the quota allows it: opens the file and starts the transfer.
    fn stor_open(
        &mut self,
        cx: &mut Ctx<'_, Msg>,
        path: PathBuf,
        mode: WriteMode,
        start: UploadStart,
        append: bool,
    ) {
        let work = move |fs: &mut dyn FileSystem| {
            // Whether the upload makes a new directory entry, which `fsync_uploads`
            // syncs: a new file, or one that replaces the old.
            let new_name = mode == WriteMode::Truncate || !fs.lexists(&path);
            // A STOR over an existing file writes a new file renamed over it at once: a
            // download that runs keeps the old file whole (see
            // `atomic::replace_at_start`).
            let replaced = match mode {
                WriteMode::Truncate => atomic::replace_at_start(fs, &path),
                WriteMode::Append | WriteMode::At(_) => None,
            };
            let opened = match replaced {
                Some((file, held)) => Ok((file, held)),
                None => match fs.open_write(&path, mode) {
                    Ok(f) => Ok((f, None)),
                    Err(e) => Err(fs_error_reply(&e)),
                },
            };
            opened.map(|(file, held)| (file, held, new_name, path))
        };
        self.on_fs(cx, work, move |s, cx, opened| {
            let (file, held, new_name, path) = match opened {
                Ok(opened) => opened,
                Err(reply) => return s.respond(reply),
            };
            if let Some(old) = held {
                s.shared.release_file(old);
            }
            let ascii = s.transfer_type == TransferType::Ascii;
            // REST + STOR: the file ends where the upload ends (pyftpdlib kept the old
            // tail, so a shorter upload left a file the client never sent).
            let cut_tail = matches!(mode, WriteMode::At(_));
            let mut info = xfer(if append { "APPE" } else { "STOR" }, Some(path));
            info.new_name = new_name;
            info.quota = s.quota_open(&start);
            let meter = info.quota.as_ref().map(|q| Arc::clone(&q.meter));
            let job = Job::Receive {
                file,
                ascii,
                cut_tail,
                meter,
                pooled: s.fs_blocks(),
            };
            s.start_transfer(cx, job, info, None);
        });
    }

    /// STOR with atomic uploads: the data goes to a temporary, renamed over the target
    /// once complete (see `data_closed`). APPE and REST + STOR would need a copy of the
    /// old file first, which can be long for a large file and would block the loop:
    /// they are refused.
    fn stor_atomic(&mut self, cx: &mut Ctx<'_, Msg>, t: Resolved, append: bool, rest: Option<u64>) {
        match (append, rest) {
            (true, _) => {
                return self.respond(Reply::new(550, "APPE not allowed with atomic uploads."))
            }
            (false, Some(_)) => {
                return self.respond(Reply::new(
                    550,
                    "REST with STOR not allowed with atomic uploads.",
                ))
            }
            (false, None) => {}
        }
        let work = move |fs: &mut dyn FileSystem| {
            if fs.stat(&t.fs).is_ok_and(|m| m.is_dir()) {
                // What opening the target would say; the rename would fail only at the
                // end.
                return Err(Reply::new(550, "Is a directory."));
            }
            let start = UploadStart::of(fs, &t.fs, WriteMode::Truncate);
            Ok((t.fs, start))
        };
        self.on_fs(cx, work, |s, cx, met| match met {
            Ok((path, start)) => match s.quota_refuses(&start) {
                Some(reply) => s.respond(reply),
                None => s.stor_atomic_open(cx, path, start),
            },
            Err(reply) => s.respond(reply),
        });
    }

    /// An atomic STOR once the quota allows it: makes the temporary and starts the
    /// transfer.
    fn stor_atomic_open(&mut self, cx: &mut Ctx<'_, Msg>, path: PathBuf, start: UploadStart) {
        let sweep = atomic::stale_after(self.shared.config.data_timeout);
        let work = move |fs: &mut dyn FileSystem| {
            atomic::create_part(fs, &path, Some(sweep))
                .map(|(part, file)| (path, part, file))
                .map_err(|e| fs_error_reply(&e))
        };
        self.on_fs(cx, work, move |s, cx, created| {
            let (path, part, file) = match created {
                Ok(created) => created,
                Err(reply) => return s.respond(reply),
            };
            let ascii = s.transfer_type == TransferType::Ascii;
            let mut info = xfer("STOR", Some(path));
            info.part = Some(part);
            info.new_name = true;
            info.quota = s.quota_open(&start);
            let meter = info.quota.as_ref().map(|q| Arc::clone(&q.meter));
            let job = Job::Receive {
                file,
                ascii,
                cut_tail: false,
                meter,
                pooled: s.fs_blocks(),
            };
            s.start_transfer(cx, job, info, None);
        });
    }

    /// STOU in `dir` (checked by the resolver), with a name starting with `prefix`.
    pub(super) fn ftp_stou(&mut self, cx: &mut Ctx<'_, Msg>, dir: Resolved, prefix: String) {
        // After the checks that refuse STOU anyway, before a file is created.
        if let Some(reply) = self.no_data_channel() {
            return self.respond(reply);
        }
        let start = UploadStart {
            old_size: 0,
            start: 0,
            new_file: true,
            made_file: true,
        };
        if let Some(reply) = self.quota_refuses(&start) {
            return self.respond(reply);
        }
        // With atomic uploads the empty file keeps the unique name taken; the data goes
        // to a temporary renamed over it at the end.
        let sweep = self
            .shared
            .config
            .atomic_uploads
            .then(|| atomic::stale_after(self.shared.config.data_timeout));
        let work = move |fs: &mut dyn FileSystem| {
            let (path, file) = match fs.create_unique(&dir.fs, &prefix) {
                Ok(created) => created,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err((Reply::new(450, "No usable unique file name found."), None))
                }
                Err(e) => return Err((Reply::new(450, format!("{}.", strerror(&e))), None)),
            };
            let Some(sweep) = sweep else {
                return Ok((path, file, None));
            };
            drop(file);
            match atomic::create_part(fs, &path, Some(sweep)) {
                Ok((part, file)) => Ok((path, file, Some(part))),
                Err(e) => {
                    // The name reserved for nothing: removed (a failure is logged below).
                    let kept = fs.remove(&path).err().map(|e| (path, e));
                    Err((Reply::new(450, format!("{}.", strerror(&e))), kept))
                }
            }
        };
        self.on_fs(cx, work, move |s, cx, created| {
            let (path, file, part) = match created {
                Ok(created) => created,
                Err((reply, kept)) => {
                    if let Some((path, e)) = kept {
                        log::warn!(
                            "{} could not remove upload temporary {}: {e}",
                            s.prefix(),
                            path.display()
                        );
                    }
                    return s.respond(reply);
                }
            };
            let base = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let ascii = s.transfer_type == TransferType::Ascii;
            let mut info = xfer("STOU", Some(path));
            info.new_name = true;
            info.reserved = part.is_some();
            info.part = part;
            info.quota = s.quota_open(&start);
            let meter = info.quota.as_ref().map(|q| Arc::clone(&q.meter));
            let job = Job::Receive {
                file,
                ascii,
                cut_tail: false,
                meter,
                pooled: s.fs_blocks(),
            };
            s.start_transfer(cx, job, info, Some(format!("FILE: {base}")));
        });
    }

    /// LIST, NLST or MLSD of a directory or a file.
    pub(super) fn ftp_listing(&mut self, cx: &mut Ctx<'_, Msg>, kind: Listing, t: Resolved) {
        let gmt = self.shared.config.use_gmt_times;
        let parts = self.shared.config.atomic_uploads;
        // MLSD's facts and the user's rights, read here.
        let mlsd = match kind {
            Listing::Mlsd => Some((
                self.enabled_facts(),
                self.authorizer().perms(self.username()),
            )),
            Listing::List { .. } | Listing::Nlst => None,
        };
        let work = move |fs: &mut dyn FileSystem| {
            let mut out = Vec::new();
            let result = match (kind, mlsd) {
                (Listing::List { dot_files }, _) => {
                    list_into(fs, &t.fs, gmt, dot_files, parts, &mut out)
                }
                (Listing::Nlst, _) => nlst_into(fs, &t.fs, parts, &mut out),
                (Listing::Mlsd, Some((facts, perms))) => match fs.stat(&t.fs) {
                    Ok(m) if m.is_dir() => {
                        let facts: Vec<&str> = facts.iter().map(String::as_str).collect();
                        fs.listdir(&t.fs).and_then(|mut names| {
                            if parts {
                                atomic::hide_parts(&mut names);
                            }
                            fs.format_mlsx(&t.fs, &names, &perms, &facts, true, gmt, &mut out)
                        })
                    }
                    Ok(_) | Err(_) => return Err(Reply::new(501, "No such directory.")),
                },
                (Listing::Mlsd, None) => return Err(Reply::new(501, "No such directory.")),
            };
            result.map(|()| out).map_err(|e| fs_error_reply(&e))
        };
        self.on_fs(cx, work, move |s, cx, listed| match listed {
            Ok(out) => s.send_listing(cx, kind, out),
            Err(reply) => s.respond(reply),
        });
    }

    /// Sends a listing, in the session's encoding.
    fn send_listing(&mut self, cx: &mut Ctx<'_, Msg>, kind: Listing, out: Vec<u8>) {
        let name = match kind {
            Listing::List { .. } => "LIST",
            Listing::Nlst => "NLST",
            Listing::Mlsd => "MLSD",
        };
        let charset = self.shared.charset;
        let out = if charset.is_utf8() {
            out
        } else {
            let mut wire = Vec::with_capacity(out.len());
            let skipped = charset.encode_listing(&out, &mut wire);
            if skipped > 0 {
                log::info!(
                    "{} {name}: {skipped} name(s) not representable in {} left out",
                    self.prefix(),
                    charset.name()
                );
            }
            wire
        };
        self.start_transfer(cx, Job::SendBytes(out), xfer(name, None), None)
    }

    /// The pending REST offset, used up.
    fn take_restart(&mut self) -> Option<u64> {
        match std::mem::take(&mut self.pending) {
            Pending::RestartAt(offset) => Some(offset),
            other @ (Pending::Nothing | Pending::RenameFrom(_) | Pending::Range { .. }) => {
                self.pending = other;
                None
            }
        }
    }

    pub(super) fn ftp_abor(&mut self, cx: &mut Ctx<'_, Msg>) {
        match &self.data {
            DataChan::None => self.respond(Reply::new(225, "No transfer to abort.")),
            DataChan::Transferring { channel, .. } => {
                let channel = *channel;
                cx.send(channel, Msg::ToData(DataCmd::Abort));
                self.set_wait(Wait::Abort);
            }
            DataChan::Passive { .. } | DataChan::Active(_) | DataChan::Connected(_) => {
                self.drop_data(cx);
                self.respond(Reply::new(
                    225,
                    "ABOR command successful; data channel closed.",
                ));
            }
        }
    }
}

fn xfer(cmd: &'static str, path: Option<PathBuf>) -> XferInfo {
    XferInfo {
        cmd,
        path,
        started: Instant::now(),
        part: None,
        reserved: false,
        new_name: false,
        quota: None,
    }
}
pub(crate) fn list_into(
    fs: &dyn FileSystem,
    path: &Path,
    gmt: bool,
    dot_files: bool,
    hide_parts: bool,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let now = SystemTime::now();
    let meta = fs.stat(path).or_else(|_| fs.lstat(path))?;
    if meta.is_dir() {
        let mut names = fs.listdir(path)?;
        // As `ls`: a directory's dot-files only with `-a`; a file named on its own is
        // listed whatever its name.
        if !dot_files {
            names.retain(|n| !n.as_bytes().starts_with(b"."));
        }
        if hide_parts {
            atomic::hide_parts(&mut names);
        }
        names.sort();
        fs.format_list(path, &names, gmt, now, out);
    } else {
        let (dir, base) = split_parent(path);
        fs.format_list(&dir, &[base], gmt, now, out);
    }
    Ok(())
}

/// NLST output: bare names, sorted; a file lists itself. `hide_parts`: without the
/// temporaries of atomic uploads.
pub(crate) fn nlst_into(
    fs: &dyn FileSystem,
    path: &Path,
    hide_parts: bool,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let meta = fs.stat(path)?;
    let names = if meta.is_dir() {
        let mut names = fs.listdir(path)?;
        if hide_parts {
            atomic::hide_parts(&mut names);
        }
        names.sort();
        names
    } else {
        vec![split_parent(path).1]
    };
    for n in names {
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    Ok(())
}

pub(super) fn split_parent(path: &Path) -> (PathBuf, OsString) {
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let base = path
        .file_name()
        .map(OsString::from)
        .unwrap_or_else(|| OsString::from("."));
    (dir, base)
}

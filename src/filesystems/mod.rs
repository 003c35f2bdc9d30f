//! Filesystems: the only place virtual FTP paths are mapped to real paths and checked
//! (pyftpdlib's `AbstractedFS`).
//!
//! A session sees a virtual tree whose `/` is the user's home ([`AbstractedFs`]), or
//! the real tree ([`UnixFilesystem`]). Commands turn client paths into real paths with
//! [`FileSystem::ftp2fs`], check them with [`FileSystem::validpath`] (which resolves
//! symlinks, so links leaving the home are refused), then call the I/O methods here.
//! The check decides the reply; the I/O itself does not trust it: the default methods
//! resolve every path beneath a descriptor of the root (`openat2` with
//! `RESOLVE_BENEATH`, or an `O_NOFOLLOW` walk; see `beneath`), so a symlink swapped in
//! between the check and the use cannot lead outside.
//! Listings (LIST, MLSD, MLST) are generated in-house; see [`FileSystem::format_list`]
//! and [`FileSystem::format_mlsx`].
//!
//! The trait speaks in [`FsFile`] (an OS file or any [`FileData`]) and [`FileStat`], so
//! storage other than the OS can implement it: [`MemoryFs`] keeps a whole tree in memory.
//!
//! Nothing here changes the process-wide current directory: the event loop serves all
//! sessions from one thread, so each session's cwd is just a virtual path string.

use std::cell::RefCell;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::sys;
use beneath::Place;

mod beneath;
mod handle;
mod listing;
mod memory;
mod ops;
pub(crate) mod paths;
mod stat;
mod sync;

pub use handle::{FileData, FsFile};
pub use memory::MemoryFs;
pub(crate) use ops::NotARegularFile;
pub use stat::{FileKind, FileStat};
pub use sync::SyncJob;

/// How [`FileSystem::open_write`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteMode {
    /// STOR: create or truncate (`wb`).
    Truncate,
    /// APPE: create if missing, write at the end (`ab`).
    Append,
    /// STOR after REST: the file must exist; open for writing without truncating and
    /// seek to the offset (`r+b`). The caller compares the offset with the file size, and
    /// cuts the file where the upload ends once it completes ([`FsFile::set_len`]).
    At(u64),
}

/// Everything a session does to files, and the mapping between FTP paths (always `/`
/// separated, absolute after [`FileSystem::ftpnorm`]) and real paths.
///
/// Implement the path-mapping methods; the I/O methods have defaults over the OS that a
/// custom filesystem may override (e.g. to add quotas or hide files), or must override
/// when its files are not the OS's. The defaults resolve a path below
/// [`FileSystem::root`] relative to a descriptor of the root, following only symlinks
/// that stay inside it (so a link swapped in after [`FileSystem::validpath`] cannot lead
/// the operation outside: `EACCES`), and use a path outside the root as given. An
/// override over the OS should keep that property (call the wrapped view's method rather
/// than `std::fs` by name). files are [`FsFile`]s (an OS file, or any
/// [`FileData`]) and metadata is a [`FileStat`], so nothing requires a real file. All
/// methods run on the event-loop thread, so they should not block for long, unless the
/// filesystem says it blocks ([`FileSystem::blocking`]): then its I/O runs on worker
/// threads while the session waits.
pub trait FileSystem: Send {
    /// Whether this filesystem's I/O may block (a network mount, an object store, a
    /// database). `true` moves its work off the event loop, onto the server's filesystem
    /// threads, while the session waits (it reads no command meanwhile; later commands,
    /// ABOR too, are answered after, in order) and the loop serves the other sessions:
    ///
    /// - every filesystem step of a command: CWD, SIZE, MDTM, MLST, STAT of a path, the
    ///   LIST / NLST / MLSD listings, the opens of RETR, STOR, APPE, STOU and HASH, DELE,
    ///   MKD, RMD, RNFR / RNTO, SITE CHMOD / UTIME / SYMLINK, MFMT, the end of an upload
    ///   (quota account, atomic rename, [`FileSystem::sync_upload`]), and the quota walks
    ///   (login, `SITE QUOTA SYNC`);
    /// - the reads and writes of the files it opens ([`FsFile`], OS or [`FileData`]):
    ///   downloads read ahead, uploads are written behind, and an upload is answered once
    ///   its last block is written.
    ///
    /// A client that leaves meanwhile ends its session when the call returns; the call is
    /// not interrupted.
    ///
    /// What stays on the loop's thread and must stay quick: the path mapping
    /// ([`FileSystem::root`], [`FileSystem::cwd`], [`FileSystem::ftpnorm`],
    /// [`FileSystem::ftp2fs`], [`FileSystem::fs2ftp`], [`FileSystem::validpath`]: keep them
    /// lexical, as [`MemoryFs`] does), the making of the filesystem at login, and the
    /// clean-up of a transfer that a new PASV / PORT drops (see "A filesystem that
    /// blocks" in the guide's filesystems page). A session that ends settles its
    /// transfer and drops its filesystem on a thread. The calls run as the server's
    /// user: with an authorizer that switches users (`UnixAuthorizer`), keep the default.
    ///
    /// The default, `false`, runs everything on the loop, in line, at no cost.
    fn blocking(&self) -> bool {
        false
    }

    /// The real, canonical root directory of the session (the user's home).
    fn root(&self) -> &Path;

    /// The virtual current working directory; starts as `/` for [`AbstractedFs`].
    fn cwd(&self) -> &str;

    /// Replaces the virtual current working directory (no checks).
    fn set_cwd(&mut self, ftp_path: String);

    /// Normalizes a client path: absolute ones as given, relative ones against the cwd;
    /// `.`/empty segments dropped, `..` never above `/`, leading `//` collapsed. The
    /// result is always absolute, e.g. with cwd `/foo`, `bar/../baz/` → `/foo/baz`.
    fn ftpnorm(&self, ftp_path: &str) -> String {
        paths::ftpnorm(self.cwd(), ftp_path)
    }

    /// The real path for a client path (lexical; symlinks are not resolved, so check
    /// the result with [`FileSystem::validpath`]).
    fn ftp2fs(&self, ftp_path: &str) -> PathBuf;

    /// The client path for a real path; `/` when the path is not under the root.
    fn fs2ftp(&self, fs_path: &Path) -> String;

    /// Whether `fs_path`, with all symlinks resolved, is the root or lies below it. For
    /// a path that does not exist yet, the deepest existing ancestor is resolved, so a
    /// new file under a symlinked directory that leaves the root is refused. A symlink
    /// loop counts as being where the looping link is (as in pyftpdlib, where following
    /// it fails with ELOOP and the link itself can be removed).
    fn validpath(&self, fs_path: &Path) -> bool;

    /// Opens a file for reading (RETR).
    ///
    /// # Errors
    /// The OS error from `open`; `EISDIR` for a directory; for a FIFO, socket or device,
    /// an error whose reply text is `Not a regular file` (opened without blocking, so a
    /// FIFO with no writer cannot stall the loop).
    fn open_read(&self, p: &Path) -> io::Result<FsFile> {
        beneath::at(self.root(), p, ops::open_read).map(FsFile::Os)
    }

    /// Opens a file for writing (STOR, APPE, REST+STOR); new files get mode
    /// `0666 & ~umask`.
    ///
    /// # Errors
    /// The OS error from `open` or `lseek`; `NotFound` for [`WriteMode::At`] on a
    /// missing file; `EISDIR` or `Not a regular file` as for
    /// [`FileSystem::open_read`].
    fn open_write(&self, p: &Path, mode: WriteMode) -> io::Result<FsFile> {
        beneath::at(self.root(), p, |place| ops::open_write(place, mode)).map(FsFile::Os)
    }

    /// STOU: creates a new file `<prefix><8 random chars from [a-z0-9_]>` in `dir`
    /// exclusively with mode `0600`, trying up to 50 names. `dir` itself must pass
    /// [`FileSystem::validpath`] (pyftpdlib forgot this check for `STOU <arg>`).
    ///
    /// # Errors
    /// `EEXIST` when no unused name was found (reply `450 No usable unique file name
    /// found.`), `EACCES` if `dir` is outside the root, `EINVAL` if `prefix` contains
    /// `/` or NUL, else the OS error from `open`.
    fn create_unique(&self, dir: &Path, prefix: &str) -> io::Result<(PathBuf, FsFile)> {
        if !self.validpath(dir) {
            return Err(sys::permission_denied());
        }
        beneath::at(self.root(), dir, |place| {
            ops::create_unique(place, dir, prefix)
        })
        .map(|(path, file)| (path, FsFile::Os(file)))
    }

    /// `HandlerConfig::fsync_uploads`: prepares, on the loop's thread (a filesystem
    /// thread for a filesystem that [blocks](FileSystem::blocking)), what makes a
    /// completed upload durable; the server runs the job on a worker thread and answers
    /// the upload only once it returned. `file` is the upload's open file; `dir`, when
    /// given, is its directory, whose entry for the upload is new (a new name, or a
    /// rename over the old file) and must reach the disk too.
    ///
    /// The default, for an OS file: fdatasync(2) of the file and fsync(2) of `dir`; for
    /// a custom file ([`FsFile::Custom`], as [`MemoryFs`] serves): `flush` here, and
    /// nothing on the worker. Override it to sync storage of your own.
    ///
    /// # Errors
    /// Preparing failed (opening the directory); the upload is answered as if the sync
    /// failed (`451`).
    fn sync_upload(&self, file: &mut FsFile, dir: Option<&Path>) -> io::Result<SyncJob> {
        sync::prepare(file, dir)
    }

    /// CWD: checks that `p` is an existing directory the server may enter, then sets
    /// the cwd to [`FileSystem::fs2ftp`] of it. The process cwd is never changed.
    ///
    /// # Errors
    /// `NotFound`, `ENOTDIR` or `EACCES`, as `chdir(2)` would report.
    fn chdir(&mut self, p: &Path) -> io::Result<()> {
        beneath::at(self.root(), p, ops::check_enterable)?;
        let cwd = self.fs2ftp(p);
        self.set_cwd(cwd);
        Ok(())
    }

    /// MKD: creates a directory (mode `0777 & ~umask`).
    ///
    /// # Errors
    /// The OS error from `mkdir`.
    fn mkdir(&self, p: &Path) -> io::Result<()> {
        beneath::at(self.root(), p, ops::mkdir)
    }

    /// RMD: removes an empty directory.
    ///
    /// # Errors
    /// The OS error from `rmdir`.
    fn rmdir(&self, p: &Path) -> io::Result<()> {
        beneath::at(self.root(), p, |place| ops::remove(place, true))
    }

    /// DELE: removes a file (or symlink).
    ///
    /// # Errors
    /// The OS error from `unlink` (`EISDIR` for a directory).
    fn remove(&self, p: &Path) -> io::Result<()> {
        beneath::at(self.root(), p, |place| ops::remove(place, false))
    }

    /// RNFR/RNTO: renames `src` to `dst`.
    ///
    /// # Errors
    /// The OS error from `rename`.
    fn rename(&self, src: &Path, dst: &Path) -> io::Result<()> {
        beneath::at_both(self.root(), src, dst, ops::rename)
    }

    /// SITE CHMOD: sets the permission bits (follows symlinks that stay in the root).
    ///
    /// # Errors
    /// The OS error from `chmod`.
    fn chmod(&self, p: &Path, mode: u32) -> io::Result<()> {
        beneath::at(self.root(), p, |place| ops::chmod(place, mode))
    }

    /// MFMT: sets the modification time, and the access time to the same value.
    ///
    /// # Errors
    /// The OS error from `utimensat` (`EPERM` unless the server owns the file).
    fn set_mtime(&self, p: &Path, t: SystemTime) -> io::Result<()> {
        beneath::at(self.root(), p, |place| ops::set_mtime(place, t))
    }

    /// SITE SYMLINK: makes `link` a symbolic link to `target` (real paths, as from
    /// [`FileSystem::ftp2fs`]). Both are resolved first (symlinks followed) and must lie
    /// below [`FileSystem::root`]; the target must exist and `link` must not. The link
    /// is stored relative to its directory (`../docs/a.txt`), so it never leads outside
    /// the root and survives the tree being moved. A filesystem whose files are not the
    /// OS's should answer `Unsupported` (as [`MemoryFs`] does).
    ///
    /// # Errors
    /// `EACCES` for a path outside the root, `NotFound` for a missing target, `EEXIST`
    /// for an existing link name, or the OS error from `symlinkat`.
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        let root = self.root();
        // What the target names, checked to exist by following links only inside.
        let target = self.realpath(target)?;
        self.stat(&target)?;
        let dir = link.parent().ok_or_else(sys::permission_denied)?;
        let dir = self.realpath(dir)?;
        let text = ops::relative_link(root, &dir, &target)?;
        beneath::at(root, link, |place| ops::symlink(place, &text))
    }

    /// `stat(2)`: metadata, following symlinks (by default only those that stay in the
    /// root).
    ///
    /// # Errors
    /// The OS error from `stat`.
    fn stat(&self, p: &Path) -> io::Result<FileStat> {
        beneath::at(self.root(), p, ops::stat)
    }

    /// `lstat(2)`: metadata of a symlink itself.
    ///
    /// # Errors
    /// The OS error from `lstat`.
    fn lstat(&self, p: &Path) -> io::Result<FileStat> {
        beneath::at(self.root(), p, ops::lstat)
    }

    /// The names in a directory, without `.` and `..`, in no particular order.
    ///
    /// # Errors
    /// The OS error from `opendir`/`readdir`.
    fn listdir(&self, p: &Path) -> io::Result<Vec<OsString>> {
        beneath::at(self.root(), p, ops::listdir)
    }

    /// The target of a symlink, as stored.
    ///
    /// # Errors
    /// The OS error from `readlink` (`EINVAL` if `p` is not a symlink).
    fn readlink(&self, p: &Path) -> io::Result<PathBuf> {
        beneath::at(self.root(), p, ops::readlink)
    }

    /// Python's non-strict `os.path.realpath`: symlinks resolved in the existing part
    /// of `p`, missing components appended as they are.
    ///
    /// # Errors
    /// `ELOOP` for a symlink loop; the error of `getcwd` for a relative `p`.
    fn realpath(&self, p: &Path) -> io::Result<PathBuf> {
        paths::realpath(p)
    }

    /// Whether `p` exists and is a directory (following symlinks).
    fn is_dir(&self, p: &Path) -> bool {
        self.stat(p).is_ok_and(|m| m.is_dir())
    }

    /// Whether `p` exists and is a regular file (following symlinks).
    fn is_file(&self, p: &Path) -> bool {
        self.stat(p).is_ok_and(|m| m.is_file())
    }

    /// Whether `p` exists, counting broken symlinks (Python's `os.path.lexists`).
    fn lexists(&self, p: &Path) -> bool {
        self.lstat(p).is_ok()
    }

    /// Appends `ls -l` lines for `names` (each relative to `basedir`, in the given
    /// order; the caller sorts) to `out`:
    /// `"{mode} {nlink:>3} {owner:<8} {group:<8} {size:>8} {date} {name}\r\n"`, e.g.
    /// `-rw-r--r--   1 ftp      ftp          1024 Jan 02 15:04 notes.txt`. Uses
    /// `lstat`, so a symlink is listed as itself (`l`, its own size and time); entries
    /// that cannot be stat'ed are skipped. A symlink shows `name -> target` only when
    /// it stays inside the root: as stored when following it never leaves the root,
    /// else as the virtual path of what it names (an absolute target would spell the
    /// real root); a link out of the root shows no target at all. Owner and group are names, or numbers when unknown. The date is
    /// [`crate::timefmt::list_date`] relative to `now`. Names are written as raw bytes.
    fn format_list(
        &self,
        basedir: &Path,
        names: &[OsString],
        use_gmt: bool,
        now: SystemTime,
        out: &mut Vec<u8>,
    ) {
        let mut ids = listing::IdNames::default();
        listing::format_list(self, None, &mut ids, basedir, names, use_gmt, now, out);
    }

    /// Appends MLSx lines for `names` (relative to `basedir`, in the given order) to
    /// `out`: the enabled `facts` sorted by name as `fact=value;`, a space, the name,
    /// CRLF (RFC 3659 §7). Uses `lstat`, and `stat` for a symlink that stays inside the
    /// root (the facts are those of what it points to). Facts: `type` (`file`, `dir`,
    /// or `cdir`/`pdir` for the literal names `.`/`..`), `perm` (derived from the
    /// user's letters `perms`), `size`, `modify` (`YYYYMMDDHHMMSS`),
    /// `unique` (`<dev hex>g<ino hex>`), `unix.mode` (`0o644`, as Python's `oct`),
    /// `unix.uid`, `unix.gid`; other names in `facts` are ignored. A symlink that leads
    /// out of the root is described as itself, its target never stat'ed:
    /// `type=OS.unix=symlink`, an empty `perm`, no `size`, and the link's own `modify`,
    /// `unique` and `unix.*`.
    ///
    /// # Errors
    /// With `ignore_err` false, the first `stat` error; lines for earlier entries have
    /// already been appended to `out`. With `ignore_err`, failing entries are skipped.
    #[allow(clippy::too_many_arguments)]
    fn format_mlsx(
        &self,
        basedir: &Path,
        names: &[OsString],
        perms: &str,
        facts: &[&str],
        ignore_err: bool,
        use_gmt: bool,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        listing::format_mlsx(
            self, None, basedir, names, perms, facts, ignore_err, use_gmt, out,
        )
    }
}

/// pyftpdlib's `AbstractedFS`: a chroot-like view in which the client's `/` is `root`
/// and no path (symlinks included) may lead outside it.
///
/// ```
/// use ftpdlib::filesystems::{AbstractedFs, FileSystem};
///
/// let home = tempfile::tempdir()?;
/// std::fs::create_dir(home.path().join("pub"))?;
/// let mut fs = AbstractedFs::new(home.path().to_path_buf())?;
/// let real = fs.ftp2fs("pub/../pub/");
/// assert_eq!(real, fs.root().join("pub"));
/// assert!(fs.validpath(&real));
/// fs.chdir(&real)?;
/// assert_eq!(fs.cwd(), "/pub");
/// assert_eq!(fs.ftp2fs("../../.."), fs.root());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct AbstractedFs {
    root: PathBuf,
    /// The virtual cwd; empty for `/`, so that a session that never changes directory
    /// holds no allocation for it.
    cwd: String,
    /// uid/gid → name lookups, kept across listings of the session (boxed on the first
    /// listing: most sessions never list).
    ids: RefCell<Option<Box<listing::IdNames>>>,
}

impl AbstractedFs {
    /// A view rooted at `root`, which is canonicalized (symlinks resolved); the cwd
    /// starts at `/`.
    ///
    /// # Errors
    /// The error from canonicalizing `root`, or `ENOTDIR` if it is not a directory.
    pub fn new(root: PathBuf) -> io::Result<Self> {
        let root = fs::canonicalize(root)?;
        if !root.is_dir() {
            return Err(sys::not_a_directory());
        }
        Ok(Self::with_canonical_root(root))
    }

    /// For a root known to be canonical (a `DummyAuthorizer` home, canonicalized when the
    /// user was added): no system call at login.
    pub(crate) fn with_canonical_root(root: PathBuf) -> Self {
        Self {
            root,
            cwd: String::new(),
            ids: RefCell::default(),
        }
    }
}

impl FileSystem for AbstractedFs {
    fn root(&self) -> &Path {
        &self.root
    }

    fn cwd(&self) -> &str {
        if self.cwd.is_empty() {
            "/"
        } else {
            &self.cwd
        }
    }

    fn set_cwd(&mut self, ftp_path: String) {
        self.cwd = if ftp_path == "/" {
            String::new()
        } else {
            ftp_path
        };
    }

    fn ftp2fs(&self, ftp_path: &str) -> PathBuf {
        let norm = self.ftpnorm(ftp_path);
        // `norm` is absolute and free of `.`/`..`, so joining cannot climb out.
        match norm.trim_start_matches('/') {
            "" => self.root.clone(),
            rel => self.root.join(rel),
        }
    }

    fn fs2ftp(&self, fs_path: &Path) -> String {
        let p = paths::normpath(&self.root.join(fs_path));
        if !self.validpath(&p) {
            return "/".to_owned();
        }
        // Lexically under the root: keep the client's spelling (a link inside the
        // root stays a link). Otherwise the path reached the root through a symlink
        // elsewhere; describe where it really is.
        let rel = match p.strip_prefix(&self.root) {
            Ok(rel) => rel.to_path_buf(),
            Err(_) => {
                let (Ok(real), Ok(root)) = (paths::realpath(&p), paths::realpath(&self.root))
                else {
                    return "/".to_owned();
                };
                match real.strip_prefix(&root) {
                    Ok(rel) => rel.to_path_buf(),
                    Err(_) => return "/".to_owned(),
                }
            }
        };
        format!("/{}", rel.to_string_lossy())
    }

    fn validpath(&self, fs_path: &Path) -> bool {
        // Re-resolve the root each time, as pyftpdlib does, in case it was replaced.
        let root = paths::realpath(&self.root).unwrap_or_else(|_| self.root.clone());
        match paths::realpath(fs_path) {
            Ok(real) => paths::is_within(&real, &root),
            // A symlink loop (or a chain longer than the kernel follows): the first link
            // that cannot be resolved is as contained as its directory. As the last
            // component it may be listed, renamed or removed; whatever goes through it
            // gets ELOOP from the kernel, whose limit is the one `realpath` applies.
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                let mut prefixes: Vec<&Path> = fs_path.ancestors().collect();
                prefixes.reverse();
                let Some(link) = prefixes.into_iter().find(|p| {
                    paths::realpath(p).is_err_and(|e| e.raw_os_error() == Some(libc::ELOOP))
                }) else {
                    return false;
                };
                fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink())
                    && link.parent().is_some_and(|dir| {
                        paths::realpath(dir).is_ok_and(|real| paths::is_within(&real, &root))
                    })
            }
            Err(_) => false,
        }
    }

    fn format_list(
        &self,
        basedir: &Path,
        names: &[OsString],
        use_gmt: bool,
        now: SystemTime,
        out: &mut Vec<u8>,
    ) {
        // The entries are described from the directory open once beneath the root.
        let dir = beneath::open_dir(&self.root, basedir);
        let dir = dir.as_ref().map(AsFd::as_fd);
        match self.ids.try_borrow_mut() {
            Ok(mut ids) => {
                let ids = ids.get_or_insert_with(Box::default);
                listing::format_list(self, dir, ids, basedir, names, use_gmt, now, out);
            }
            // Only reachable if a custom `lstat` re-entered listing; use a fresh cache.
            Err(_) => {
                let mut ids = listing::IdNames::default();
                listing::format_list(self, dir, &mut ids, basedir, names, use_gmt, now, out);
            }
        }
    }

    fn format_mlsx(
        &self,
        basedir: &Path,
        names: &[OsString],
        perms: &str,
        facts: &[&str],
        ignore_err: bool,
        use_gmt: bool,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        let dir = beneath::open_dir(&self.root, basedir);
        let dir = dir.as_ref().map(AsFd::as_fd);
        listing::format_mlsx(
            self, dir, basedir, names, perms, facts, ignore_err, use_gmt, out,
        )
    }
}

/// pyftpdlib's `UnixFilesystem`: the real filesystem with no chroot. The cwd starts at
/// the home directory, FTP paths are real paths, and [`FileSystem::validpath`] accepts
/// everything; the OS permissions of the server process are the only limit.
#[derive(Debug)]
pub struct UnixFilesystem {
    root: PathBuf,
    cwd: String,
    ids: RefCell<Option<Box<listing::IdNames>>>,
}

impl UnixFilesystem {
    /// A view of the whole filesystem starting in `home` (canonicalized).
    ///
    /// # Errors
    /// The error from canonicalizing `home`, or `ENOTDIR` if it is not a directory.
    pub fn new(home: PathBuf) -> io::Result<Self> {
        let root = fs::canonicalize(home)?;
        if !root.is_dir() {
            return Err(sys::not_a_directory());
        }
        let cwd = root.to_string_lossy().into_owned();
        Ok(Self {
            root,
            cwd,
            ids: RefCell::default(),
        })
    }
}

impl FileSystem for UnixFilesystem {
    fn root(&self) -> &Path {
        &self.root
    }

    fn cwd(&self) -> &str {
        &self.cwd
    }

    fn set_cwd(&mut self, ftp_path: String) {
        self.cwd = ftp_path;
    }

    fn ftp2fs(&self, ftp_path: &str) -> PathBuf {
        PathBuf::from(self.ftpnorm(ftp_path))
    }

    fn fs2ftp(&self, fs_path: &Path) -> String {
        paths::normpath(&self.root.join(fs_path))
            .to_string_lossy()
            .into_owned()
    }

    fn validpath(&self, _fs_path: &Path) -> bool {
        true
    }

    // No root to stay beneath: every path is used as given (the OS permissions of the
    // process are the only limit), where the defaults resolve beneath `root()`.
    fn open_read(&self, p: &Path) -> io::Result<FsFile> {
        ops::open_read(Place::Anywhere(p)).map(FsFile::Os)
    }

    fn open_write(&self, p: &Path, mode: WriteMode) -> io::Result<FsFile> {
        ops::open_write(Place::Anywhere(p), mode).map(FsFile::Os)
    }

    fn create_unique(&self, dir: &Path, prefix: &str) -> io::Result<(PathBuf, FsFile)> {
        ops::create_unique(Place::Anywhere(dir), dir, prefix)
            .map(|(path, file)| (path, FsFile::Os(file)))
    }

    fn chdir(&mut self, p: &Path) -> io::Result<()> {
        ops::check_enterable(Place::Anywhere(p))?;
        let cwd = self.fs2ftp(p);
        self.set_cwd(cwd);
        Ok(())
    }

    fn mkdir(&self, p: &Path) -> io::Result<()> {
        ops::mkdir(Place::Anywhere(p))
    }

    fn rmdir(&self, p: &Path) -> io::Result<()> {
        ops::remove(Place::Anywhere(p), true)
    }

    fn remove(&self, p: &Path) -> io::Result<()> {
        ops::remove(Place::Anywhere(p), false)
    }

    fn rename(&self, src: &Path, dst: &Path) -> io::Result<()> {
        ops::rename(Place::Anywhere(src), Place::Anywhere(dst))
    }

    fn chmod(&self, p: &Path, mode: u32) -> io::Result<()> {
        ops::chmod(Place::Anywhere(p), mode)
    }

    fn set_mtime(&self, p: &Path, t: SystemTime) -> io::Result<()> {
        ops::set_mtime(Place::Anywhere(p), t)
    }

    fn stat(&self, p: &Path) -> io::Result<FileStat> {
        ops::stat(Place::Anywhere(p))
    }

    fn lstat(&self, p: &Path) -> io::Result<FileStat> {
        ops::lstat(Place::Anywhere(p))
    }

    fn listdir(&self, p: &Path) -> io::Result<Vec<OsString>> {
        ops::listdir(Place::Anywhere(p))
    }

    fn readlink(&self, p: &Path) -> io::Result<PathBuf> {
        ops::readlink(Place::Anywhere(p))
    }

    fn format_list(
        &self,
        basedir: &Path,
        names: &[OsString],
        use_gmt: bool,
        now: SystemTime,
        out: &mut Vec<u8>,
    ) {
        match self.ids.try_borrow_mut() {
            Ok(mut ids) => {
                let ids = ids.get_or_insert_with(Box::default);
                listing::format_list(self, None, ids, basedir, names, use_gmt, now, out);
            }
            Err(_) => {
                let mut ids = listing::IdNames::default();
                listing::format_list(self, None, &mut ids, basedir, names, use_gmt, now, out);
            }
        }
    }
}

/// Every fact [`FileSystem::format_mlsx`] can produce (the FEAT `MLST` line lists them).
pub const MLSX_FACTS_AVAILABLE: &[&str] = &[
    "type",
    "perm",
    "size",
    "modify",
    "unique",
    "unix.mode",
    "unix.uid",
    "unix.gid",
];

/// The facts enabled for a new session (until `OPTS MLST`).
pub const MLSX_FACTS_DEFAULT: &[&str] = &["type", "perm", "size", "modify", "unique"];

#[cfg(test)]
mod tests;

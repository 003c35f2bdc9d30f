//! [`MemoryFs`]: a [`FileSystem`] whose whole tree lives in memory, shared by every
//! session and by the program that serves it. For test suites (no temporary
//! directory), demos, and servers of generated or volatile data.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use super::{ops, paths, FileStat, FileSystem, FsFile, WriteMode};
use crate::authorizers::{Authorizer, WithFilesystem};
use crate::sys;

mod file;
mod tree;

use file::{Access, MemFile};
use tree::{OpenHow, Tree};

/// A filesystem in memory: directories and files, no symlinks, nothing on disk.
///
/// Clones are cheap and share the contents: give one to the server (see
/// [`MemoryFs::authorizer`]) and keep another to put files in and look at what clients
/// uploaded. Each session gets its own working directory.
///
/// It answers as the OS would: the same errors (`ENOENT`, `EEXIST`, `ENOTDIR`, `EISDIR`,
/// `ENOTEMPTY`, ...) and so the same replies; a file removed while being downloaded stays
/// readable for that download, as on Linux. Uploads are visible to other sessions while
/// they are written. Files belong to the server process's effective user and group; permission
/// bits are kept (SITE CHMOD, listings) but not enforced: the authorizer's letters are the
/// access control. With [`MemoryFs::with_capacity`], writes beyond the quota fail with
/// `ENOSPC` (an upload then ends with `452 No space left on device; transfer aborted.`).
///
/// Paths given to the helpers ([`MemoryFs::write_file`], ...) are client paths: `/`
/// separated, relative to this handle's root, `..` never above it.
///
/// ```
/// use ftpdlib::filesystems::{FileSystem, MemoryFs};
///
/// let mem = MemoryFs::new();
/// mem.write_file("/pub/readme.txt", b"hello")?;
/// assert_eq!(mem.read_file("/pub/readme.txt").as_deref(), Some(&b"hello"[..]));
///
/// // The trait methods see the same tree.
/// let mut session = mem.clone();
/// let pub_dir = session.ftp2fs("pub");
/// session.chdir(&pub_dir)?;
/// assert_eq!(session.cwd(), "/pub");
/// assert_eq!(session.stat(&session.ftp2fs("readme.txt"))?.size, 5);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct MemoryFs {
    tree: Arc<Mutex<Tree>>,
    root: PathBuf,
    cwd: String,
}

impl MemoryFs {
    /// An empty tree (just `/`), without a size limit.
    pub fn new() -> MemoryFs {
        MemoryFs::build(None)
    }

    /// An empty tree whose files may hold at most `bytes` bytes in total.
    pub fn with_capacity(bytes: u64) -> MemoryFs {
        MemoryFs::build(Some(bytes))
    }

    fn build(capacity: Option<u64>) -> MemoryFs {
        // A device number of its own per tree, so MLSx `unique` facts of two trees (or
        // of a tree and the disk) never look alike.
        static NEXT_DEV: AtomicU64 = AtomicU64::new(1);
        let dev = NEXT_DEV.fetch_add(1, Ordering::Relaxed);
        let tree = Tree::new(
            capacity,
            dev,
            sys::effective_uid(),
            sys::effective_gid(),
            SystemTime::now(),
        );
        MemoryFs {
            tree: Arc::new(Mutex::new(tree)),
            root: PathBuf::from("/"),
            cwd: "/".to_owned(),
        }
    }

    /// A handle on the same tree whose root is the directory `dir` of this one: what a
    /// user whose home is `dir` sees. The working directory starts at its `/`.
    ///
    /// # Errors
    /// `NotFound` or `ENOTDIR` when `dir` is not an existing directory.
    pub fn view(&self, dir: &str) -> io::Result<MemoryFs> {
        let root = self.resolve(dir);
        if !lock(&self.tree).stat(&root)?.is_dir() {
            return Err(sys::not_a_directory());
        }
        Ok(MemoryFs {
            tree: Arc::clone(&self.tree),
            root,
            cwd: "/".to_owned(),
        })
    }

    /// `users`, with every session served from this tree (rooted at this handle's root,
    /// whatever home the authorizer names): the one line that serves a `MemoryFs`.
    ///
    /// ```
    /// use ftpdlib::authorizers::DummyAuthorizer;
    /// use ftpdlib::filesystems::MemoryFs;
    /// use ftpdlib::servers::FtpServer;
    ///
    /// let mem = MemoryFs::new();
    /// let mut users = DummyAuthorizer::new();
    /// // DummyAuthorizer wants an existing directory as home; the sessions ignore it.
    /// users.add_user("user", "12345", "/", "elradfmwMT", None, None)?;
    /// let server = FtpServer::builder(mem.authorizer(users)).spawn("127.0.0.1:0")?;
    /// # drop(server);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// For a root per user, build the view in [`WithFilesystem::new`] yourself, e.g.
    /// `mem.view(&format!("/home/{user}"))`. [`crate::authorizers::DummyAuthorizer`]'s
    /// per-directory overrides look at real directories, so they do not apply here.
    pub fn authorizer<A: Authorizer>(
        &self,
        users: A,
    ) -> WithFilesystem<A, impl Fn(&str, PathBuf) -> io::Result<Box<dyn FileSystem>> + Send + Sync>
    {
        let mem = self.session();
        WithFilesystem::new(users, move |_user: &str, _home: PathBuf| {
            Ok(Box::new(mem.session()) as Box<dyn FileSystem>)
        })
    }

    /// Creates or replaces the file at `path` with `bytes`, creating missing parent
    /// directories.
    ///
    /// # Errors
    /// `ENOTDIR` when a parent is a file, `EISDIR` when `path` is a directory, `ENOSPC`
    /// beyond the capacity.
    pub fn write_file(&self, path: &str, bytes: &[u8]) -> io::Result<()> {
        let real = self.resolve(path);
        if let Some(parent) = real.parent() {
            self.mkdir_real(parent).map_err(|e| match e.kind() {
                // The parent is a file: the path goes through it.
                io::ErrorKind::AlreadyExists => sys::not_a_directory(),
                _ => e,
            })?;
        }
        let ino = lock(&self.tree).open(&real, OpenHow::Truncate, SystemTime::now())?;
        MemFile::new(Arc::clone(&self.tree), ino, Access::ReadWrite).write_all(bytes)
    }

    /// The contents of the file at `path`; `None` if it is missing or a directory.
    pub fn read_file(&self, path: &str) -> Option<Vec<u8>> {
        let real = self.resolve(path);
        let ino = lock(&self.tree)
            .open(&real, OpenHow::Read, SystemTime::now())
            .ok()?;
        let mut file = MemFile::new(Arc::clone(&self.tree), ino, Access::Read);
        let mut out = Vec::new();
        io::Read::read_to_end(&mut file, &mut out).ok()?;
        Some(out)
    }

    /// Creates the directory `path` and its missing parents (`mkdir -p`).
    ///
    /// # Errors
    /// `EEXIST` when `path` or a parent is a file.
    pub fn mkdir_all(&self, path: &str) -> io::Result<()> {
        self.mkdir_real(&self.resolve(path))
    }

    /// Bytes held by the files of the tree (including removed files still open).
    pub fn used_bytes(&self) -> u64 {
        lock(&self.tree).used()
    }

    /// The byte quota given to [`MemoryFs::with_capacity`].
    pub fn capacity(&self) -> Option<u64> {
        lock(&self.tree).capacity()
    }

    /// A handle on the same tree and root with the working directory at `/`.
    fn session(&self) -> MemoryFs {
        MemoryFs {
            tree: Arc::clone(&self.tree),
            root: self.root.clone(),
            cwd: "/".to_owned(),
        }
    }

    /// A helper's client path as a path of the tree.
    fn resolve(&self, path: &str) -> PathBuf {
        let norm = paths::ftpnorm("/", path);
        match norm.trim_start_matches('/') {
            "" => self.root.clone(),
            rel => self.root.join(rel),
        }
    }

    /// `mkdir -p` on a path of the tree; as Python's `os.makedirs`, `EEXIST` if the
    /// path itself is a file, `ENOTDIR` if a parent is.
    fn mkdir_real(&self, path: &Path) -> io::Result<()> {
        let mut tree = lock(&self.tree);
        let now = SystemTime::now();
        let mut at = PathBuf::from("/");
        let mut parts = path.components().skip(1).peekable();
        while let Some(c) = parts.next() {
            at.push(c);
            match tree.mkdir(&at, now) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !tree.stat(&at)?.is_dir() {
                        return Err(match parts.peek() {
                            Some(_) => sys::not_a_directory(),
                            None => e,
                        });
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn open(&self, p: &Path, how: OpenHow, access: Access) -> io::Result<FsFile> {
        let ino = lock(&self.tree).open(p, how, SystemTime::now())?;
        Ok(FsFile::custom(MemFile::new(
            Arc::clone(&self.tree),
            ino,
            access,
        )))
    }
}

impl Default for MemoryFs {
    fn default() -> MemoryFs {
        MemoryFs::new()
    }
}

impl fmt::Debug for MemoryFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryFs")
            .field("root", &self.root)
            .field("cwd", &self.cwd)
            .field("used_bytes", &self.used_bytes())
            .finish()
    }
}

impl FileSystem for MemoryFs {
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
        let norm = self.ftpnorm(ftp_path);
        // `norm` is absolute and free of `.`/`..`, so joining cannot climb out.
        match norm.trim_start_matches('/') {
            "" => self.root.clone(),
            rel => self.root.join(rel),
        }
    }

    fn fs2ftp(&self, fs_path: &Path) -> String {
        let p = paths::normpath(&self.root.join(fs_path));
        match p.strip_prefix(&self.root) {
            Ok(rel) => format!("/{}", rel.to_string_lossy()),
            Err(_) => "/".to_owned(),
        }
    }

    /// Lexical: without symlinks, a normalized path under the root stays under it.
    fn validpath(&self, fs_path: &Path) -> bool {
        paths::normpath(&self.root.join(fs_path)).starts_with(&self.root)
    }

    fn open_read(&self, p: &Path) -> io::Result<FsFile> {
        self.open(p, OpenHow::Read, Access::Read)
    }

    fn open_write(&self, p: &Path, mode: WriteMode) -> io::Result<FsFile> {
        match mode {
            WriteMode::Truncate => self.open(p, OpenHow::Truncate, Access::ReadWrite),
            WriteMode::Append => self.open(p, OpenHow::Append, Access::Append),
            WriteMode::At(offset) => {
                let mut file = self.open(p, OpenHow::Existing, Access::ReadWrite)?;
                io::Seek::seek(&mut file, io::SeekFrom::Start(offset))?;
                Ok(file)
            }
        }
    }

    fn create_unique(&self, dir: &Path, prefix: &str) -> io::Result<(PathBuf, FsFile)> {
        if !self.validpath(dir) {
            return Err(sys::permission_denied());
        }
        if prefix.contains(['/', '\0']) {
            return Err(sys::invalid_argument());
        }
        let mut names = ops::NameSource::new();
        for _ in 0..ops::TMP_MAX {
            let path = dir.join(format!("{prefix}{}", names.next_name()));
            match self.open(&path, OpenHow::CreateNew(0o600), Access::ReadWrite) {
                Ok(file) => return Ok((path, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Err(sys::file_exists())
    }

    fn chdir(&mut self, p: &Path) -> io::Result<()> {
        if !lock(&self.tree).stat(p)?.is_dir() {
            return Err(sys::not_a_directory());
        }
        let cwd = self.fs2ftp(p);
        self.set_cwd(cwd);
        Ok(())
    }

    fn mkdir(&self, p: &Path) -> io::Result<()> {
        lock(&self.tree).mkdir(p, SystemTime::now())
    }

    fn rmdir(&self, p: &Path) -> io::Result<()> {
        lock(&self.tree).rmdir(p, SystemTime::now())
    }

    fn remove(&self, p: &Path) -> io::Result<()> {
        lock(&self.tree).unlink(p, SystemTime::now())
    }

    fn rename(&self, src: &Path, dst: &Path) -> io::Result<()> {
        lock(&self.tree).rename(src, dst, SystemTime::now())
    }

    fn chmod(&self, p: &Path, mode: u32) -> io::Result<()> {
        lock(&self.tree).chmod(p, mode)
    }

    fn set_mtime(&self, p: &Path, t: SystemTime) -> io::Result<()> {
        lock(&self.tree).set_times(p, t)
    }

    fn stat(&self, p: &Path) -> io::Result<FileStat> {
        lock(&self.tree).stat(p)
    }

    fn lstat(&self, p: &Path) -> io::Result<FileStat> {
        lock(&self.tree).stat(p)
    }

    fn listdir(&self, p: &Path) -> io::Result<Vec<OsString>> {
        lock(&self.tree).listdir(p)
    }

    fn readlink(&self, p: &Path) -> io::Result<PathBuf> {
        lock(&self.tree).readlink(p).map(|()| PathBuf::new())
    }

    /// The tree has no symbolic links.
    fn symlink(&self, _target: &Path, _link: &Path) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    fn realpath(&self, p: &Path) -> io::Result<PathBuf> {
        Ok(paths::normpath(&Path::new("/").join(p)))
    }
}

/// The tree, even if a thread panicked while holding it: every operation leaves it
/// consistent before anything that can panic, so there is nothing to recover.
fn lock(tree: &Mutex<Tree>) -> MutexGuard<'_, Tree> {
    tree.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests;

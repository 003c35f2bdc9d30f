//! Run: `cargo run --example readonly_fs -- [DIR]`
//!
//! A custom filesystem (pyftpdlib: subclass AbstractedFS, set `handler.abstracted_fs`):
//! a wrapper around the standard [`AbstractedFs`] that refuses every change with
//! "Read-only file system" and hides dot files from listings, whatever rights the user
//! has. `user`/`12345` has every right on DIR, yet cannot change anything.
//!
//! Every method of [`FileSystem`] has a default over the OS except the path mapping (the
//! defaults resolve paths beneath a descriptor of the root, so a link swapped in cannot
//! lead outside), so a wrapper forwards the mapping and overrides only what it changes.
//! Another storage (an archive, a database, object storage) plugs in the same way: map
//! paths, return files (`FsFile::custom` of any `FileData`: `Read + Write + Seek` and a
//! size) and metadata (`FileStat`); `demo/memory_fs.rs` serves a tree that lives in
//! memory.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ftpdlib::authorizers::{DummyAuthorizer, WithFilesystem};
use ftpdlib::filesystems::{AbstractedFs, FileSystem, FsFile, WriteMode};
use ftpdlib::servers::FtpServer;

/// The standard chrooted view, minus every write.
struct ReadOnlyFs(AbstractedFs);

fn read_only() -> io::Error {
    io::Error::from_raw_os_error(EROFS)
}

/// errno "Read-only file system": its strerror text becomes the 550 reply.
const EROFS: i32 = 30;

impl FileSystem for ReadOnlyFs {
    // The path mapping: forwarded.
    fn root(&self) -> &Path {
        self.0.root()
    }
    fn cwd(&self) -> &str {
        self.0.cwd()
    }
    fn set_cwd(&mut self, ftp_path: String) {
        self.0.set_cwd(ftp_path)
    }
    fn ftp2fs(&self, ftp_path: &str) -> PathBuf {
        self.0.ftp2fs(ftp_path)
    }
    fn fs2ftp(&self, fs_path: &Path) -> String {
        self.0.fs2ftp(fs_path)
    }
    fn validpath(&self, fs_path: &Path) -> bool {
        self.0.validpath(fs_path)
    }

    // Every change: refused.
    fn open_write(&self, _p: &Path, _mode: WriteMode) -> io::Result<FsFile> {
        Err(read_only())
    }
    fn create_unique(&self, _dir: &Path, _prefix: &str) -> io::Result<(PathBuf, FsFile)> {
        Err(read_only())
    }
    fn mkdir(&self, _p: &Path) -> io::Result<()> {
        Err(read_only())
    }
    fn rmdir(&self, _p: &Path) -> io::Result<()> {
        Err(read_only())
    }
    fn remove(&self, _p: &Path) -> io::Result<()> {
        Err(read_only())
    }
    fn rename(&self, _src: &Path, _dst: &Path) -> io::Result<()> {
        Err(read_only())
    }
    fn chmod(&self, _p: &Path, _mode: u32) -> io::Result<()> {
        Err(read_only())
    }
    fn set_mtime(&self, _p: &Path, _t: SystemTime) -> io::Result<()> {
        Err(read_only())
    }

    // Listings: LIST, NLST and MLSD all start from listdir.
    fn listdir(&self, p: &Path) -> io::Result<Vec<OsString>> {
        let mut names = self.0.listdir(p)?;
        names.retain(|n| !n.to_string_lossy().starts_with('.'));
        Ok(names)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let dir = match std::env::args_os().nth(1) {
        Some(d) => PathBuf::from(d),
        None => std::env::current_dir()?,
    };
    let mut users = DummyAuthorizer::new();
    users.add_user("user", "12345", &dir, "elradfmwMT", None, None)?;
    users.add_anonymous(&dir, "elr", None, None)?;

    let authorizer = WithFilesystem::new(users, |_user, home| {
        Ok(Box::new(ReadOnlyFs(AbstractedFs::new(home)?)) as Box<dyn FileSystem>)
    });
    // 127.0.0.1:2121, or FTPDLIB_DEMO_ADDR (the tests run every demo on a free port).
    let addr = std::env::var("FTPDLIB_DEMO_ADDR").unwrap_or_else(|_| "127.0.0.1:2121".into());
    let mut server = FtpServer::builder(authorizer).bind(addr.as_str())?;
    server.serve_forever(true)?;
    Ok(())
}

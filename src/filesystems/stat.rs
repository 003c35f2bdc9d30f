//! [`FileStat`]: the metadata a [`super::FileSystem`] reports, in a form any storage can
//! build (std's `Metadata` can only come from the OS). Listings, SIZE, MDTM, MFMT and the
//! REST checks read nothing else.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::time::{SystemTime, UNIX_EPOCH};

/// What kind of object a [`FileStat`] describes (the file type bits of `st_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (only [`super::FileSystem::lstat`] reports these).
    Symlink,
    /// A block device.
    BlockDevice,
    /// A character device.
    CharDevice,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
    /// Anything else; listed with `?` as its type letter.
    Other,
}

impl FileKind {
    /// The kind encoded in the file type bits of a `st_mode` value.
    pub fn from_mode(mode: u32) -> FileKind {
        match mode & S_IFMT {
            S_IFREG => FileKind::File,
            S_IFDIR => FileKind::Dir,
            S_IFLNK => FileKind::Symlink,
            S_IFBLK => FileKind::BlockDevice,
            S_IFCHR => FileKind::CharDevice,
            S_IFIFO => FileKind::Fifo,
            S_IFSOCK => FileKind::Socket,
            _ => FileKind::Other,
        }
    }

    /// The file type bits of `st_mode` for this kind (0 for [`FileKind::Other`]).
    pub fn type_bits(self) -> u32 {
        match self {
            FileKind::File => S_IFREG,
            FileKind::Dir => S_IFDIR,
            FileKind::Symlink => S_IFLNK,
            FileKind::BlockDevice => S_IFBLK,
            FileKind::CharDevice => S_IFCHR,
            FileKind::Fifo => S_IFIFO,
            FileKind::Socket => S_IFSOCK,
            FileKind::Other => 0,
        }
    }
}

/// The metadata of one file, directory or link, as `stat(2)` would report it.
///
/// Build one from the OS with `FileStat::from(&metadata)`, or for another storage with
/// [`FileStat::new`] and then set the fields you know:
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use ftpdlib::filesystems::{FileKind, FileStat};
///
/// let mut st = FileStat::new(FileKind::File, 1024);
/// st.mtime = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// st.mode = 0o600;
/// assert!(st.is_file());
/// assert_eq!(st.st_mode(), 0o100_600);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileStat {
    /// File, directory, link, ...
    pub kind: FileKind,
    /// The permission bits, with setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    /// Size in bytes (for a link: the length of its target).
    pub size: u64,
    /// Number of hard links; listed as 1 when 0.
    pub nlink: u64,
    /// Owner; listed by name when the user database knows it, else as the number.
    pub uid: u32,
    /// Group; listed like the owner.
    pub gid: u32,
    /// Last modification (LIST, MLSx `modify`, MDTM); `UNIX_EPOCH` when unknown.
    pub mtime: SystemTime,
    /// Last access; `UNIX_EPOCH` when unknown.
    pub atime: SystemTime,
    /// The device: with `ino`, the MLSx `unique` fact (`<dev hex>g<ino hex>`).
    pub dev: u64,
    /// The inode number, or any number unique for the object within `dev`.
    pub ino: u64,
}

impl FileStat {
    /// Metadata of a `kind` object of `size` bytes, with the usual default mode (`0644`
    /// for files, `0755` for directories, `0777` for links and others), one link (two
    /// for a directory), owner and group 0, times and ids 0.
    pub fn new(kind: FileKind, size: u64) -> FileStat {
        let (mode, nlink) = match kind {
            FileKind::File => (0o644, 1),
            FileKind::Dir => (0o755, 2),
            _ => (0o777, 1),
        };
        FileStat {
            kind,
            mode,
            size,
            nlink,
            uid: 0,
            gid: 0,
            mtime: UNIX_EPOCH,
            atime: UNIX_EPOCH,
            dev: 0,
            ino: 0,
        }
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Dir
    }

    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        self.kind == FileKind::File
    }

    /// Whether this is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.kind == FileKind::Symlink
    }

    /// The whole `st_mode`: file type bits and permission bits.
    pub fn st_mode(&self) -> u32 {
        self.kind.type_bits() | (self.mode & 0o7777)
    }
}

impl From<&Metadata> for FileStat {
    fn from(md: &Metadata) -> FileStat {
        FileStat {
            kind: FileKind::from_mode(md.mode()),
            mode: md.mode() & 0o7777,
            size: md.size(),
            nlink: md.nlink(),
            uid: md.uid(),
            gid: md.gid(),
            mtime: md.modified().unwrap_or(UNIX_EPOCH),
            atime: md.accessed().unwrap_or(UNIX_EPOCH),
            dev: md.dev(),
            ino: md.ino(),
        }
    }
}

impl From<Metadata> for FileStat {
    fn from(md: Metadata) -> FileStat {
        FileStat::from(&md)
    }
}

// POSIX file type bits (identical on Linux, the BSDs and macOS).
pub(crate) const S_IFMT: u32 = 0o170_000;
const S_IFSOCK: u32 = 0o140_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFREG: u32 = 0o100_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFIFO: u32 = 0o010_000;

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn kinds_round_trip_through_mode_bits() {
        for kind in [
            FileKind::File,
            FileKind::Dir,
            FileKind::Symlink,
            FileKind::BlockDevice,
            FileKind::CharDevice,
            FileKind::Fifo,
            FileKind::Socket,
            FileKind::Other,
        ] {
            assert_eq!(FileKind::from_mode(kind.type_bits() | 0o644), kind);
        }
        assert_eq!(FileKind::from_mode(0o644), FileKind::Other);
    }

    #[test]
    fn from_os_metadata_keeps_every_field() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        std::fs::write(&f, b"hello").unwrap();
        symlink("f", tmp.path().join("l")).unwrap();
        let md = std::fs::metadata(&f).unwrap();
        let st = FileStat::from(&md);
        assert_eq!(st.st_mode(), md.mode());
        assert!(st.is_file() && !st.is_dir() && !st.is_symlink());
        assert_eq!(
            (st.size, st.nlink, st.uid, st.gid),
            (5, md.nlink(), md.uid(), md.gid())
        );
        assert_eq!((st.dev, st.ino), (md.dev(), md.ino()));
        assert_eq!(st.mtime, md.modified().unwrap());
        assert_eq!(st.atime, md.accessed().unwrap());
        let dir = FileStat::from(std::fs::metadata(tmp.path()).unwrap());
        assert!(dir.is_dir());
        let link = FileStat::from(std::fs::symlink_metadata(tmp.path().join("l")).unwrap());
        assert!(link.is_symlink());
        assert_eq!(link.size, 1);
    }

    #[test]
    fn new_has_usual_defaults() {
        let d = FileStat::new(FileKind::Dir, 0);
        assert_eq!((d.st_mode(), d.nlink), (0o040_755, 2));
        let f = FileStat::new(FileKind::File, 7);
        assert_eq!((f.st_mode(), f.nlink, f.size), (0o100_644, 1, 7));
    }
}

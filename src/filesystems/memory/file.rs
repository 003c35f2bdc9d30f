//! An open file of a [`super::MemoryFs`]: an inode of the shared tree and a position.
//! Writes land in the tree at once, so other sessions see an upload as it grows, as
//! they would on disk.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::lock;
use super::tree::Tree;
use crate::filesystems::FileData;
use crate::sys;

/// One open of a file; dropping it closes it (a removed file is freed then).
pub(super) struct MemFile {
    tree: Arc<Mutex<Tree>>,
    ino: u64,
    pos: u64,
    access: Access,
}

/// What the file was opened for (`O_RDONLY`, `O_WRONLY|O_APPEND`, `O_RDWR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Read,
    Append,
    ReadWrite,
}

impl MemFile {
    /// Wraps inode `ino`, already counted as open in `tree`.
    pub(super) fn new(tree: Arc<Mutex<Tree>>, ino: u64, access: Access) -> MemFile {
        MemFile {
            tree,
            ino,
            pos: 0,
            access,
        }
    }
}

impl Read for MemFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.access == Access::Append {
            return Err(sys::bad_descriptor());
        }
        let n = lock(&self.tree).read_at(self.ino, self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for MemFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let append = match self.access {
            Access::Read => return Err(sys::bad_descriptor()),
            Access::Append => true,
            Access::ReadWrite => false,
        };
        let now = SystemTime::now();
        let (n, pos) = lock(&self.tree).write_at(self.ino, self.pos, buf, append, now)?;
        self.pos = pos;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for MemFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let (base, delta) = match to {
            SeekFrom::Start(n) => {
                self.pos = n;
                return Ok(n);
            }
            SeekFrom::End(d) => (lock(&self.tree).size(self.ino)?, d),
            SeekFrom::Current(d) => (self.pos, d),
        };
        // lseek(2): a position before the start is EINVAL.
        self.pos = base
            .checked_add_signed(delta)
            .ok_or_else(sys::invalid_argument)?;
        Ok(self.pos)
    }
}

impl FileData for MemFile {
    fn size(&self) -> io::Result<u64> {
        lock(&self.tree).size(self.ino)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        if self.access == Access::Read {
            return Err(sys::bad_descriptor());
        }
        lock(&self.tree).set_len(self.ino, len, SystemTime::now())
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        lock(&self.tree).close(self.ino);
    }
}

//! The in-memory tree behind [`super::MemoryFs`]: inodes in a table, directories as
//! sorted name → inode maps, file contents as byte vectors. Every operation fails the
//! way Linux does for the same situation (errno and all), so replies match those of a
//! disk-backed session.
//!
//! Paths are absolute paths of the tree (relative ones count from its `/`); `.` and `..`
//! are applied while walking, as the kernel does, so `/file/..` is `ENOTDIR`.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::time::SystemTime;

use crate::filesystems::{FileKind, FileStat};
use crate::sys;

/// How [`Tree::open`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpenHow {
    /// `O_RDONLY`: the file must exist.
    Read,
    /// `O_WRONLY|O_CREAT|O_TRUNC`.
    Truncate,
    /// `O_WRONLY|O_CREAT|O_APPEND`.
    Append,
    /// `O_RDWR`: the file must exist.
    Existing,
    /// `O_RDWR|O_CREAT|O_EXCL` with this mode.
    CreateNew(u32),
}

/// The whole tree, shared by every handle and open file of one [`super::MemoryFs`].
#[derive(Debug)]
pub(super) struct Tree {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    /// Bytes held by file contents, including files removed while still open.
    used: u64,
    capacity: Option<u64>,
    dev: u64,
    uid: u32,
    gid: u32,
}

#[derive(Debug)]
struct Node {
    kind: NodeKind,
    /// Permission bits (`st_mode & 0o7777`).
    mode: u32,
    mtime: SystemTime,
    atime: SystemTime,
    /// Whether a directory still names this file; an unnamed file lives on while open.
    linked: bool,
    /// Open handles ([`super::file::MemFile`]s).
    open: u32,
}

#[derive(Debug)]
enum NodeKind {
    File(Vec<u8>),
    Dir(BTreeMap<OsString, u64>),
}

/// Where a path would be named: an entry of a directory, or the root.
enum Slot<'a> {
    Entry {
        dir: u64,
        name: &'a OsStr,
    },
    /// `/`, or a path ending in `..`: an existing directory that has no entry to change.
    Root,
}

impl Tree {
    /// An empty tree: a root directory (mode 0755) owned by `uid`/`gid`.
    pub(super) fn new(
        capacity: Option<u64>,
        dev: u64,
        uid: u32,
        gid: u32,
        now: SystemTime,
    ) -> Tree {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node::dir(0o755, now));
        Tree {
            nodes,
            next_ino: ROOT + 1,
            used: 0,
            capacity,
            dev,
            uid,
            gid,
        }
    }

    /// Bytes held by file contents.
    pub(super) fn used(&self) -> u64 {
        self.used
    }

    /// The byte quota, if any.
    pub(super) fn capacity(&self) -> Option<u64> {
        self.capacity
    }

    /// `stat(2)`; there are no symlinks, so it is also `lstat(2)`.
    pub(super) fn stat(&self, path: &Path) -> io::Result<FileStat> {
        let ino = self.walk(path)?;
        let node = self.node(ino)?;
        let (kind, size, nlink) = match &node.kind {
            NodeKind::File(data) => (FileKind::File, data.len() as u64, u64::from(node.linked)),
            NodeKind::Dir(entries) => {
                // `.` and the parent's entry, plus each subdirectory's `..`.
                let subdirs = entries
                    .values()
                    .filter(|i| self.nodes.get(i).is_some_and(Node::is_dir))
                    .count() as u64;
                (FileKind::Dir, 0, 2 + subdirs)
            }
        };
        let mut st = FileStat::new(kind, size);
        st.mode = node.mode;
        st.nlink = nlink;
        st.uid = self.uid;
        st.gid = self.gid;
        st.mtime = node.mtime;
        st.atime = node.atime;
        st.dev = self.dev;
        st.ino = ino;
        Ok(st)
    }

    /// The names in a directory, sorted.
    pub(super) fn listdir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let ino = self.walk(path)?;
        Ok(self.entries(ino)?.keys().cloned().collect())
    }

    /// `mkdir(2)` with mode `0777 & ~022`.
    pub(super) fn mkdir(&mut self, path: &Path, now: SystemTime) -> io::Result<()> {
        let (dir, name) = match self.slot(path)? {
            Slot::Root => return Err(sys::file_exists()),
            Slot::Entry { dir, name } => (dir, name),
        };
        if self.entries(dir)?.contains_key(name) {
            return Err(sys::file_exists());
        }
        let ino = self.insert(Node::dir(0o755, now));
        self.link(dir, name, ino, now)
    }

    /// `rmdir(2)`.
    pub(super) fn rmdir(&mut self, path: &Path, now: SystemTime) -> io::Result<()> {
        let (dir, name) = match self.slot(path)? {
            Slot::Root => return Err(sys::busy()),
            Slot::Entry { dir, name } => (dir, name),
        };
        let ino = self.child(dir, name)?;
        if !self.entries(ino)?.is_empty() {
            return Err(sys::directory_not_empty());
        }
        self.unlink_entry(dir, name, now);
        self.nodes.remove(&ino);
        Ok(())
    }

    /// `unlink(2)`: `EISDIR` for a directory, as Linux says. The contents stay while
    /// the file is open.
    pub(super) fn unlink(&mut self, path: &Path, now: SystemTime) -> io::Result<()> {
        let (dir, name) = match self.slot(path)? {
            Slot::Root => return Err(sys::is_a_directory()),
            Slot::Entry { dir, name } => (dir, name),
        };
        let ino = self.child(dir, name)?;
        if self.node(ino)?.is_dir() {
            return Err(sys::is_a_directory());
        }
        self.unlink_entry(dir, name, now);
        self.drop_unlinked(ino);
        Ok(())
    }

    /// `rename(2)`: replaces a file with a file, or an empty directory with a directory.
    pub(super) fn rename(&mut self, src: &Path, dst: &Path, now: SystemTime) -> io::Result<()> {
        let (sdir, sname) = match self.slot(src)? {
            Slot::Root => return Err(sys::busy()),
            Slot::Entry { dir, name } => (dir, name),
        };
        let ino = self.child(sdir, sname)?;
        let (ddir, dname) = match self.slot(dst)? {
            Slot::Root => return Err(sys::busy()),
            Slot::Entry { dir, name } => (dir, name),
        };
        let src_is_dir = self.node(ino)?.is_dir();
        if let (true, Some(parent)) = (src_is_dir, dst.parent()) {
            // A directory cannot move below itself.
            if self.walk_stack(parent)?.contains(&ino) {
                return Err(sys::invalid_argument());
            }
        }
        let replaced = self.entries(ddir)?.get(dname).copied();
        if let Some(old) = replaced {
            if old == ino {
                return Ok(());
            }
            match (src_is_dir, self.node(old)?.is_dir()) {
                (true, true) if !self.entries(old)?.is_empty() => {
                    return Err(sys::directory_not_empty())
                }
                (true, false) => return Err(sys::not_a_directory()),
                (false, true) => return Err(sys::is_a_directory()),
                (true, true) | (false, false) => {}
            }
        }
        self.unlink_entry(sdir, sname, now);
        if let Some(old) = replaced {
            self.unlink_entry(ddir, dname, now);
            self.drop_unlinked(old);
        }
        self.link(ddir, dname, ino, now)
    }

    /// `chmod(2)`.
    pub(super) fn chmod(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        let ino = self.walk(path)?;
        self.node_mut(ino)?.mode = mode & 0o7777;
        Ok(())
    }

    /// `utimensat(2)` with both times set to `t`.
    pub(super) fn set_times(&mut self, path: &Path, t: SystemTime) -> io::Result<()> {
        let ino = self.walk(path)?;
        let node = self.node_mut(ino)?;
        node.mtime = t;
        node.atime = t;
        Ok(())
    }

    /// `readlink(2)`: there are no links, so an existing path gives `EINVAL`.
    pub(super) fn readlink(&self, path: &Path) -> io::Result<()> {
        self.walk(path)?;
        Err(sys::invalid_argument())
    }

    /// `open(2)`: the inode of the file, counted as open until [`Tree::close`].
    pub(super) fn open(&mut self, path: &Path, how: OpenHow, now: SystemTime) -> io::Result<u64> {
        let ino = match how {
            OpenHow::Read | OpenHow::Existing => self.walk(path)?,
            OpenHow::Truncate | OpenHow::Append | OpenHow::CreateNew(_) => {
                let (dir, name) = match self.slot(path)? {
                    Slot::Root => return Err(exists_or_is_dir(how)),
                    Slot::Entry { dir, name } => (dir, name),
                };
                match (self.entries(dir)?.get(name).copied(), how) {
                    (Some(_), OpenHow::CreateNew(_)) => return Err(sys::file_exists()),
                    (Some(ino), _) => ino,
                    (None, _) => {
                        let mode = match how {
                            OpenHow::CreateNew(mode) => mode,
                            // 0666 & ~umask 022
                            _ => 0o644,
                        };
                        let ino = self.insert(Node::file(mode, now));
                        self.link(dir, name, ino, now)?;
                        ino
                    }
                }
            }
        };
        let Tree { nodes, used, .. } = self;
        let node = nodes.get_mut(&ino).ok_or_else(sys::not_found)?;
        let NodeKind::File(data) = &mut node.kind else {
            return Err(sys::is_a_directory());
        };
        if how == OpenHow::Truncate {
            *used -= data.len() as u64;
            // Give the memory back rather than keep the old capacity.
            *data = Vec::new();
            node.mtime = now;
        }
        node.open += 1;
        Ok(ino)
    }

    /// Ends one open of `ino`; frees a file that no directory names any more.
    pub(super) fn close(&mut self, ino: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.open = node.open.saturating_sub(1);
        }
        self.drop_unlinked(ino);
    }

    /// The length of an open file.
    pub(super) fn size(&self, ino: u64) -> io::Result<u64> {
        match &self.node(ino)?.kind {
            NodeKind::File(data) => Ok(data.len() as u64),
            NodeKind::Dir(_) => Err(sys::is_a_directory()),
        }
    }

    /// `pread(2)`: copies from `pos` into `buf`; 0 at or past the end.
    pub(super) fn read_at(&self, ino: u64, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        let NodeKind::File(data) = &self.node(ino)?.kind else {
            return Err(sys::is_a_directory());
        };
        let start = usize::try_from(pos).unwrap_or(usize::MAX).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    /// `pwrite(2)` at `pos`, or at the end with `append`; a gap before `pos` reads as
    /// zeros. Writes what fits in the quota (a short write), `ENOSPC` when nothing does.
    /// Returns the bytes written and the position after them.
    pub(super) fn write_at(
        &mut self,
        ino: u64,
        pos: u64,
        buf: &[u8],
        append: bool,
        now: SystemTime,
    ) -> io::Result<(usize, u64)> {
        let Tree {
            nodes,
            used,
            capacity,
            ..
        } = self;
        let node = nodes.get_mut(&ino).ok_or_else(sys::bad_descriptor)?;
        let NodeKind::File(data) = &mut node.kind else {
            return Err(sys::is_a_directory());
        };
        let old_len = data.len();
        let start = if append {
            old_len
        } else {
            usize::try_from(pos).map_err(|_| sys::file_too_large())?
        };
        let mut n = buf.len();
        let end = start.checked_add(n).ok_or_else(sys::file_too_large)?;
        if let Some(cap) = *capacity {
            let room = usize::try_from(cap.saturating_sub(*used)).unwrap_or(usize::MAX);
            let max_end = old_len.saturating_add(room);
            if end > max_end {
                if max_end <= start {
                    return if n == 0 {
                        Ok((0, pos))
                    } else {
                        Err(sys::no_space())
                    };
                }
                n = max_end - start;
            }
        }
        if start > data.len() {
            data.resize(start, 0);
        }
        let overlap = (data.len() - start).min(n);
        data[start..start + overlap].copy_from_slice(&buf[..overlap]);
        data.extend_from_slice(&buf[overlap..n]);
        *used += (data.len() - old_len) as u64;
        node.mtime = now;
        Ok((n, (start + n) as u64))
    }

    /// `ftruncate(2)`: cuts the file to `len` bytes, or extends it with zeros as far as
    /// the quota allows (`ENOSPC` beyond).
    pub(super) fn set_len(&mut self, ino: u64, len: u64, now: SystemTime) -> io::Result<()> {
        let Tree {
            nodes,
            used,
            capacity,
            ..
        } = self;
        let node = nodes.get_mut(&ino).ok_or_else(sys::bad_descriptor)?;
        let NodeKind::File(data) = &mut node.kind else {
            return Err(sys::is_a_directory());
        };
        let len = usize::try_from(len).map_err(|_| sys::file_too_large())?;
        let old_len = data.len();
        if len > old_len {
            let grow = (len - old_len) as u64;
            if capacity.is_some_and(|cap| used.saturating_add(grow) > cap) {
                return Err(sys::no_space());
            }
            data.resize(len, 0);
            *used += grow;
        } else {
            data.truncate(len);
            *used -= (old_len - len) as u64;
        }
        node.mtime = now;
        Ok(())
    }

    /// The inode at `path`, following `.` and `..` as the kernel does.
    fn walk(&self, path: &Path) -> io::Result<u64> {
        self.walk_stack(path)
            .map(|stack| stack.last().copied().unwrap_or(ROOT))
    }

    /// The inodes from the root down to `path`.
    fn walk_stack(&self, path: &Path) -> io::Result<Vec<u64>> {
        let mut stack = vec![ROOT];
        for c in path.components() {
            let here = stack.last().copied().unwrap_or(ROOT);
            match c {
                Component::Prefix(_) | Component::RootDir => stack.truncate(1),
                Component::CurDir => {
                    self.entries(here)?;
                }
                Component::ParentDir => {
                    self.entries(here)?;
                    if stack.len() > 1 {
                        stack.pop();
                    }
                }
                Component::Normal(name) => {
                    check_name(name)?;
                    let ino = self.child(here, name)?;
                    stack.push(ino);
                }
            }
        }
        Ok(stack)
    }

    /// The directory and name that `path` would have, checking that the directory
    /// exists (`ENOENT`) and is one (`ENOTDIR`).
    fn slot<'a>(&self, path: &'a Path) -> io::Result<Slot<'a>> {
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => {
                check_name(name)?;
                let dir = self.walk(parent)?;
                self.entries(dir)?;
                Ok(Slot::Entry { dir, name })
            }
            _ => {
                self.walk(path)?;
                Ok(Slot::Root)
            }
        }
    }

    /// The entry `name` of directory `dir`.
    fn child(&self, dir: u64, name: &OsStr) -> io::Result<u64> {
        self.entries(dir)?
            .get(name)
            .copied()
            .ok_or_else(sys::not_found)
    }

    /// The entries of `ino`; `ENOTDIR` for a file.
    fn entries(&self, ino: u64) -> io::Result<&BTreeMap<OsString, u64>> {
        match &self.node(ino)?.kind {
            NodeKind::Dir(entries) => Ok(entries),
            NodeKind::File(_) => Err(sys::not_a_directory()),
        }
    }

    fn node(&self, ino: u64) -> io::Result<&Node> {
        self.nodes.get(&ino).ok_or_else(sys::not_found)
    }

    fn node_mut(&mut self, ino: u64) -> io::Result<&mut Node> {
        self.nodes.get_mut(&ino).ok_or_else(sys::not_found)
    }

    fn insert(&mut self, node: Node) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, node);
        ino
    }

    /// Names `ino` as `name` in `dir` and touches the directory.
    fn link(&mut self, dir: u64, name: &OsStr, ino: u64, now: SystemTime) -> io::Result<()> {
        let d = self.node_mut(dir)?;
        if let NodeKind::Dir(entries) = &mut d.kind {
            entries.insert(name.to_os_string(), ino);
            d.mtime = now;
        }
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.linked = true;
        }
        Ok(())
    }

    /// Removes the entry `name` from `dir` and touches the directory; the node stays.
    fn unlink_entry(&mut self, dir: u64, name: &OsStr, now: SystemTime) {
        let Some(d) = self.nodes.get_mut(&dir) else {
            return;
        };
        let removed = match &mut d.kind {
            NodeKind::Dir(entries) => entries.remove(name),
            NodeKind::File(_) => None,
        };
        d.mtime = now;
        if let Some(n) = removed.and_then(|ino| self.nodes.get_mut(&ino)) {
            n.linked = false;
        }
    }

    /// Frees `ino` if no directory names it and nothing has it open.
    fn drop_unlinked(&mut self, ino: u64) {
        let free = self
            .nodes
            .get(&ino)
            .is_some_and(|n| !n.linked && n.open == 0);
        if !free {
            return;
        }
        if let Some(Node {
            kind: NodeKind::File(data),
            ..
        }) = self.nodes.remove(&ino)
        {
            self.used -= data.len() as u64;
        }
    }
}

impl Node {
    fn dir(mode: u32, now: SystemTime) -> Node {
        Node {
            kind: NodeKind::Dir(BTreeMap::new()),
            mode,
            mtime: now,
            atime: now,
            linked: true,
            open: 0,
        }
    }

    fn file(mode: u32, now: SystemTime) -> Node {
        Node {
            kind: NodeKind::File(Vec::new()),
            mode,
            mtime: now,
            atime: now,
            linked: false,
            open: 0,
        }
    }

    fn is_dir(&self) -> bool {
        matches!(self.kind, NodeKind::Dir(_))
    }
}

/// What creating at the root (or at a path ending in `..`) gives: it is a directory.
fn exists_or_is_dir(how: OpenHow) -> io::Error {
    match how {
        OpenHow::CreateNew(_) => sys::file_exists(),
        OpenHow::Read | OpenHow::Truncate | OpenHow::Append | OpenHow::Existing => {
            sys::is_a_directory()
        }
    }
}

/// Refuses names the kernel would: NUL bytes (std's own check for OS paths) and
/// components over `NAME_MAX`.
fn check_name(name: &OsStr) -> io::Result<()> {
    if name.as_bytes().contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "file name contained an unexpected NUL byte",
        ));
    }
    if name.len() > NAME_MAX {
        return Err(sys::name_too_long());
    }
    Ok(())
}

/// The root directory's inode.
const ROOT: u64 = 1;
/// Linux's longest file name component.
const NAME_MAX: usize = 255;

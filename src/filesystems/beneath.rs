//! Containment by the kernel: every path below a session's root is resolved relative to
//! a descriptor of the root, never by name from `/`, so that a symlink swapped in between
//! the check of a path ([`super::FileSystem::validpath`]) and its use cannot lead the
//! operation outside the root.
//!
//! Where the kernel has it (Linux 5.6+), `openat2(2)` resolves with `RESOLVE_BENEATH`
//! and `RESOLVE_NO_MAGICLINKS`: it refuses any step that would leave the root (`..`, an
//! absolute symlink, a relative one climbing out, a `/proc` magic link). `RESOLVE_BENEATH`
//! rather than `RESOLVE_IN_ROOT`: the latter would silently reinterpret an absolute link
//! (`/etc/passwd` as `<root>/etc/passwd`), where ftpdlib has always refused links that
//! lead outside and followed those that stay inside. Absolute links, which the kernel
//! refuses outright, and kernels without `openat2` (`ENOSYS`, remembered once) go
//! through the walk below: each directory component opened with `O_NOFOLLOW` from the
//! previous descriptor; a symlink met on the way is read and its target walked under the
//! same rule (an absolute target must name a place inside the root, `..` never climbs
//! above it), at most [`MAX_SYMLINKS`] links per path. The final component is then used
//! with `O_NOFOLLOW` / `AT_SYMLINK_NOFOLLOW`, so a link swapped in at the last moment is
//! refused (`ELOOP`) or acted on as itself, never followed.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::paths;
use crate::sys;

/// Where an operation takes place.
pub(super) enum Place<'a> {
    /// A path relative to the root, resolved beneath its descriptor.
    Beneath(&'a Root<'a>, &'a Path),
    /// A path used as given: a view with no root ([`super::UnixFilesystem`]), or a path
    /// that a custom view's `validpath` let out of its root.
    Anywhere(&'a Path),
}

/// Runs `op` on `path`: beneath `root` when `path` lies below it (the root is opened for
/// the operation), else as given.
pub(super) fn at<T>(
    root: &Path,
    path: &Path,
    op: impl FnOnce(Place<'_>) -> io::Result<T>,
) -> io::Result<T> {
    match path.strip_prefix(root) {
        Ok(rel) => {
            let root = Root::open(root)?;
            op(Place::Beneath(&root, rel))
        }
        Err(_) => op(Place::Anywhere(path)),
    }
}

/// [`at`] for two paths (rename): beneath the root only when both lie below it.
pub(super) fn at_both<T>(
    root: &Path,
    a: &Path,
    b: &Path,
    op: impl FnOnce(Place<'_>, Place<'_>) -> io::Result<T>,
) -> io::Result<T> {
    match (a.strip_prefix(root), b.strip_prefix(root)) {
        (Ok(rel_a), Ok(rel_b)) => {
            let root = Root::open(root)?;
            op(Place::Beneath(&root, rel_a), Place::Beneath(&root, rel_b))
        }
        _ => op(Place::Anywhere(a), Place::Anywhere(b)),
    }
}

/// The directory `dir`, which lies below `root`, open beneath it as a handle for the
/// `*at` calls on its entries (a listing describes each entry with one `fstatat`); `None`
/// when it is outside `root` or cannot be opened (the caller then goes by path).
pub(super) fn open_dir(root: &Path, dir: &Path) -> Option<OwnedFd> {
    let rel = dir.strip_prefix(root).ok()?;
    Root::open(root)
        .and_then(|root| root.open_file(rel, PARENT_FLAGS, 0))
        .ok()
}

/// A session's root, open as a directory handle, and its canonical path (absolute
/// symlink targets are compared with it).
pub(super) struct Root<'a> {
    fd: OwnedFd,
    path: &'a Path,
}

/// The last component of a resolved path and the directory holding it. `name` is `.`
/// when the path names a directory by `..` or is the root itself.
pub(super) struct Entry<'a> {
    dir: Dir<'a>,
    pub(super) name: OsString,
}

enum Dir<'a> {
    Root(BorrowedFd<'a>),
    Opened(OwnedFd),
}

impl Entry<'_> {
    /// The directory holding [`Entry::name`].
    pub(super) fn dir(&self) -> BorrowedFd<'_> {
        match &self.dir {
            Dir::Root(fd) => *fd,
            Dir::Opened(fd) => fd.as_fd(),
        }
    }

    /// [`Entry::name`] as a path for the `*at` calls.
    pub(super) fn name(&self) -> &Path {
        Path::new(&self.name)
    }
}

impl<'a> Root<'a> {
    /// Opens the root directory at `path` (canonical, as the views keep it).
    ///
    /// # Errors
    /// The error of `open(2)`.
    pub(super) fn open(path: &'a Path) -> io::Result<Self> {
        Ok(Self {
            fd: sys::open_dir_handle(path)?,
            path,
        })
    }

    /// Opens `rel` with `flags` (libc `O_*`), following symlinks that stay beneath the
    /// root and refusing (`EACCES`) those that leave it.
    ///
    /// # Errors
    /// `EACCES` for a way out of the root, `ELOOP` for too many links (or a link swapped
    /// in as the last component meanwhile), else the error of `open(2)`.
    pub(super) fn open_file(&self, rel: &Path, flags: i32, mode: u32) -> io::Result<OwnedFd> {
        self.open_file_by(rel, flags, mode, OPENAT2_WORKS.load(Ordering::Relaxed))
    }

    /// [`Root::open_file`], trying `openat2` first only with `kernel`.
    fn open_file_by(&self, rel: &Path, flags: i32, mode: u32, kernel: bool) -> io::Result<OwnedFd> {
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        if kernel {
            match sys::openat2_beneath(self.fd.as_fd(), rel, flags, mode) {
                Ok(fd) => return Ok(fd),
                Err(e) => match e.raw_os_error() {
                    Some(libc::ENOSYS) => OPENAT2_WORKS.store(false, Ordering::Relaxed),
                    // An absolute link, a way out, a magic link, or a rename elsewhere
                    // during `..`: the walk tells which, and follows links that stay in.
                    Some(libc::EXDEV | libc::ELOOP | libc::EAGAIN) => {}
                    _ => return Err(e),
                },
            }
        }
        let entry = self.walk(rel, true)?;
        sys::openat(entry.dir(), entry.name(), flags | libc::O_NOFOLLOW, mode)
    }

    /// Resolves every component of `rel` but the last, and the last too with
    /// `follow_last` when it is a symlink, beneath the root.
    ///
    /// # Errors
    /// As for [`Root::open_file`].
    pub(super) fn entry(&self, rel: &Path, follow_last: bool) -> io::Result<Entry<'_>> {
        self.entry_by(rel, follow_last, OPENAT2_WORKS.load(Ordering::Relaxed))
    }

    /// [`Root::entry`], trying `openat2` first only with `kernel`.
    fn entry_by(&self, rel: &Path, follow_last: bool, kernel: bool) -> io::Result<Entry<'_>> {
        if let (true, Some(parent), Some(name)) =
            (kernel && is_plain(rel), rel.parent(), rel.file_name())
        {
            let dir = if parent.as_os_str().is_empty() {
                Some(Dir::Root(self.fd.as_fd()))
            } else {
                match sys::openat2_beneath(self.fd.as_fd(), parent, PARENT_FLAGS, 0) {
                    Ok(fd) => Some(Dir::Opened(fd)),
                    Err(e) => match e.raw_os_error() {
                        Some(libc::ENOSYS) => {
                            OPENAT2_WORKS.store(false, Ordering::Relaxed);
                            None
                        }
                        Some(libc::EXDEV | libc::ELOOP | libc::EAGAIN) => None,
                        _ => return Err(e),
                    },
                }
            };
            if let Some(dir) = dir {
                let entry = Entry {
                    dir,
                    name: name.to_os_string(),
                };
                let is_link = || {
                    sys::statat(entry.dir(), entry.name(), false).is_ok_and(|st| st.is_symlink())
                };
                if !follow_last || !is_link() {
                    return Ok(entry);
                }
            }
        }
        self.walk(rel, follow_last)
    }

    /// The component-by-component resolution (see the module's comment).
    fn walk(&self, rel: &Path, follow_last: bool) -> io::Result<Entry<'_>> {
        let mut pending: Vec<OsString> = Vec::new();
        push_components(&mut pending, rel);
        // The directories entered below the root, innermost last.
        let mut stack: Vec<OwnedFd> = Vec::new();
        let mut links = 0;
        while let Some(name) = pending.pop() {
            if name == ".." {
                // `..` of the root itself is the root, as in a chroot (and as `..` of
                // the client's `/`); a path that goes on from there must come back
                // inside, as the check by path requires.
                if stack.pop().is_none() && !pending.is_empty() {
                    let outside = self.path.join("..");
                    let inside = self.inside(outside, &mut pending, follow_last)?;
                    push_components(&mut pending, &inside);
                }
                continue;
            }
            let dir = stack.last().map_or(self.fd.as_fd(), AsFd::as_fd);
            let last = pending.is_empty();
            if last {
                let is_link = follow_last
                    && sys::statat(dir, Path::new(&name), false).is_ok_and(|st| st.is_symlink());
                if !is_link {
                    return Ok(self.finish(stack, name));
                }
            } else {
                match sys::openat(dir, Path::new(&name), PARENT_FLAGS | libc::O_NOFOLLOW, 0) {
                    Ok(fd) => {
                        stack.push(fd);
                        continue;
                    }
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) => {
                        if !sys::statat(dir, Path::new(&name), false)?.is_symlink() {
                            return Err(sys::not_a_directory());
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            // `name` is a symlink: its target takes its place.
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(sys::too_many_links());
            }
            let target = sys::readlinkat(dir, Path::new(&name))?;
            if target.is_absolute() {
                let inside = self.inside(target, &mut pending, follow_last)?;
                stack.clear();
                push_components(&mut pending, &inside);
            } else {
                push_components(&mut pending, &target);
            }
        }
        Ok(self.finish(stack, OsString::from(".")))
    }

    fn finish(&self, mut stack: Vec<OwnedFd>, name: OsString) -> Entry<'_> {
        let dir = match stack.pop() {
            Some(fd) => Dir::Opened(fd),
            None => Dir::Root(self.fd.as_fd()),
        };
        Entry { dir, name }
    }

    /// Where the absolute path `abs` followed by what is left of the path (`pending`,
    /// taken) leads, relative to the root: it must lie inside once its symlinks are
    /// resolved (the rule of [`super::FileSystem::validpath`]), the last component left
    /// unresolved unless `follow_last`. The result is walked beneath the root again, so a
    /// link changed meanwhile can only lead to another place inside.
    fn inside(
        &self,
        mut abs: PathBuf,
        pending: &mut Vec<OsString>,
        follow_last: bool,
    ) -> io::Result<PathBuf> {
        abs.extend(pending.drain(..).rev());
        if is_plain(&abs) {
            if let Ok(rel) = abs.strip_prefix(self.path) {
                return Ok(rel.to_path_buf());
            }
        }
        let real = match (follow_last, abs.parent(), abs.file_name()) {
            (false, Some(parent), Some(name)) => paths::realpath(parent)?.join(name),
            _ => paths::realpath(&abs)?,
        };
        real.strip_prefix(self.path)
            .map(Path::to_path_buf)
            .map_err(|_| sys::permission_denied())
    }
}

/// Whether `path` has only plain names (no `.` or `..`), so that its parent is what it
/// looks like.
fn is_plain(path: &Path) -> bool {
    path.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::RootDir))
}

/// Pushes the components of `path` onto `pending` so that the first is popped first.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let start = pending.len();
    for c in path.components() {
        match c {
            Component::Normal(s) => pending.push(s.to_os_string()),
            Component::ParentDir => pending.push(OsStr::new("..").to_os_string()),
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
        }
    }
    pending[start..].reverse();
}

/// Cleared the first time the kernel answers `ENOSYS` (before Linux 5.6, or a sandbox
/// that hides the call): from then on every path goes through the walk.
static OPENAT2_WORKS: AtomicBool = AtomicBool::new(true);

/// How a directory on the way is opened: a handle only, no read permission needed.
const PARENT_FLAGS: i32 = libc::O_PATH | libc::O_DIRECTORY;

/// Linux's limit on symlinks followed while resolving one path.
pub(super) const MAX_SYMLINKS: usize = 40;

#[cfg(test)]
mod tests;

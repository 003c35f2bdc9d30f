//! Pure path arithmetic behind [`super::FileSystem`]: FTP path normalization, lexical
//! normalization of real paths, and a non-strict `realpath` (Python's
//! `os.path.realpath`) that resolves symlinks in whatever prefix of a path exists.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::sys;

/// pyftpdlib's `ftpnorm`: `ftp_path` made absolute against `cwd` and normalized with
/// `/` separators. `.` and empty segments vanish, `..` cannot climb above `/`, leading
/// `//` collapses, and the result always starts with `/` (a relative `cwd` yields `/`).
pub(crate) fn ftpnorm(cwd: &str, ftp_path: &str) -> String {
    let absolute = ftp_path.starts_with('/');
    if !absolute && !cwd.starts_with('/') {
        // Anti path traversal: never trust a cwd that is not absolute.
        return "/".to_owned();
    }
    let mut parts: Vec<&str> = Vec::new();
    let base = if absolute { "" } else { cwd };
    for seg in base.split('/').chain(ftp_path.split('/')) {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut out = String::with_capacity(ftp_path.len() + cwd.len() + 1);
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Lexical normalization of an absolute path (Python's `posixpath.normpath`): drops `.`
/// and repeated separators, and resolves `..` textually, never above `/`.
pub(crate) fn normpath(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Prefix(p) => out.push(p.as_os_str()),
            Component::RootDir => out.push(Component::RootDir.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                if out.parent().is_some() {
                    out.pop();
                } else if !path.has_root() {
                    out.push("..");
                }
            }
            Component::Normal(s) => out.push(s),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Python's non-strict `os.path.realpath`: an absolute path with every symlink in the
/// existing part of `path` resolved and `.`/`..` applied after resolution. Components
/// that do not exist (yet) are appended as they are, so a file about to be created
/// under a symlinked directory resolves to its real destination.
///
/// # Errors
/// `ELOOP` after 40 symlinks (Python would return the unresolved path; refusing is the
/// safe choice for a containment check), or the error of `current_dir` for a relative
/// `path`.
pub(crate) fn realpath(path: &Path) -> io::Result<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    // Fast path: the whole path exists, so libc's realpath gives the same answer.
    if let Ok(real) = fs::canonicalize(&abs) {
        return Ok(real);
    }
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, &abs);
    let mut resolved = PathBuf::from("/");
    let mut links = 0;
    while let Some(comp) = pending.pop() {
        if comp == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&comp);
        let is_link = fs::symlink_metadata(&candidate).is_ok_and(|m| m.file_type().is_symlink());
        // Like Python, a link we cannot read is kept as a plain component.
        match is_link.then(|| fs::read_link(&candidate)) {
            Some(Ok(target)) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(sys::too_many_links());
                }
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                push_components(&mut pending, &target);
            }
            _ => resolved = candidate,
        }
    }
    Ok(resolved)
}

/// Whether `path` is `root` or lies below it, component-wise (so `/home/user2` is not
/// inside `/home/user`). Both paths should already be canonical.
pub(crate) fn is_within(path: &Path, root: &Path) -> bool {
    path.starts_with(root)
}

/// Pushes the components of `path` onto the `pending` stack so that the first one is
/// popped first. Root and `.` components are dropped.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let start = pending.len();
    for c in path.components() {
        match c {
            Component::Normal(s) => pending.push(s.to_os_string()),
            Component::ParentDir => pending.push(OsString::from("..")),
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
        }
    }
    pending[start..].reverse();
}

/// Linux's limit on symlinks followed while resolving one path.
const MAX_SYMLINKS: usize = 40;

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn ftpnorm_at_root() {
        for (input, want) in [
            ("", "/"),
            ("/", "/"),
            (".", "/"),
            ("..", "/"),
            ("a", "/a"),
            ("/a", "/a"),
            ("/a/", "/a"),
            ("a/..", "/"),
            ("a/b", "/a/b"),
            ("a/b/..", "/a"),
            ("a/b/../..", "/"),
            ("/../..", "/"),
            ("a/../../b", "/b"),
            ("//", "/"),
            ("//x", "/x"),
            ("///x//y/", "/x/y"),
            ("./a/./b/.", "/a/b"),
            ("...", "/..."),
            ("a b/ c", "/a b/ c"),
        ] {
            assert_eq!(ftpnorm("/", input), want, "{input:?}");
        }
    }

    #[test]
    fn ftpnorm_in_subdir() {
        for (input, want) in [
            ("", "/sub"),
            ("/", "/"),
            (".", "/sub"),
            ("..", "/"),
            ("a", "/sub/a"),
            ("a/", "/sub/a"),
            ("a/..", "/sub"),
            ("a/b", "/sub/a/b"),
            ("a/b/", "/sub/a/b"),
            ("a/b/..", "/sub/a"),
            ("a/b/../..", "/sub"),
            ("a/b/../../..", "/"),
            ("../../../etc/passwd", "/etc/passwd"),
            ("//", "/"),
        ] {
            assert_eq!(ftpnorm("/sub", input), want, "{input:?}");
        }
    }

    #[test]
    fn ftpnorm_relative_cwd_is_refused() {
        assert_eq!(ftpnorm("sub", "a"), "/");
        assert_eq!(ftpnorm("", "a"), "/");
        assert_eq!(ftpnorm("sub", "/a"), "/a");
    }

    #[test]
    fn normpath_cases() {
        for (input, want) in [
            ("/", "/"),
            ("/a/./b/", "/a/b"),
            ("/a/../..", "/"),
            ("/..", "/"),
            ("//a//b", "/a/b"),
            ("/a/b/../c", "/a/c"),
        ] {
            assert_eq!(normpath(Path::new(input)), Path::new(want), "{input:?}");
        }
    }

    #[test]
    fn realpath_resolves_links_and_missing_tails() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let real = base.join("real");
        fs::create_dir(&real).unwrap();
        symlink(&real, base.join("link")).unwrap();
        symlink("real", base.join("rel")).unwrap();
        assert_eq!(realpath(&base.join("link")).unwrap(), real);
        assert_eq!(realpath(&base.join("rel")).unwrap(), real);
        // missing components are appended
        assert_eq!(
            realpath(&base.join("link/new/file")).unwrap(),
            real.join("new/file")
        );
        // `..` applies after resolution
        assert_eq!(realpath(&base.join("link/../x")).unwrap(), base.join("x"));
        // `..` after a missing component, then an existing link
        assert_eq!(
            realpath(&base.join("nope/../link/y")).unwrap(),
            real.join("y")
        );
    }

    #[test]
    fn realpath_refuses_loops() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        symlink(base.join("b"), base.join("a")).unwrap();
        symlink(base.join("a"), base.join("b")).unwrap();
        assert!(realpath(&base.join("a/x")).is_err());
    }

    #[test]
    fn within_is_component_wise() {
        assert!(is_within(Path::new("/home/user"), Path::new("/home/user")));
        assert!(is_within(
            Path::new("/home/user/a"),
            Path::new("/home/user")
        ));
        assert!(!is_within(
            Path::new("/home/user2"),
            Path::new("/home/user")
        ));
        assert!(!is_within(Path::new("/home"), Path::new("/home/user")));
        assert!(is_within(Path::new("/x"), Path::new("/")));
    }
}

//! The resolver against real trees: links that stay inside are followed, every way out
//! is refused, both by `openat2` and by the walk that replaces it.

use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::time::UNIX_EPOCH;

use super::*;

/// A root with `f` ("inside"), `dir/g` ("deep"), and beside it `outside/secret`.
struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("root");
    let outside = base.join("outside");
    fs::create_dir_all(root.join("dir")).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(root.join("f"), b"inside").unwrap();
    fs::write(root.join("dir/g"), b"deep").unwrap();
    fs::write(outside.join("secret"), b"SECRET").unwrap();
    Tree {
        _tmp: tmp,
        root,
        outside,
    }
}

/// Both strategies: the kernel's `openat2` first, and the walk alone.
const BOTH: [bool; 2] = [true, false];

fn read(root: &Root<'_>, rel: &str, kernel: bool) -> io::Result<String> {
    let fd = root.open_file_by(Path::new(rel), libc::O_RDONLY, 0, kernel)?;
    let mut s = String::new();
    fs::File::from(fd).read_to_string(&mut s)?;
    Ok(s)
}

fn refused(r: io::Result<impl std::fmt::Debug>) -> bool {
    matches!(
        r.as_ref().map_err(io::Error::raw_os_error),
        Err(Some(libc::EACCES | libc::ELOOP))
    )
}

#[test]
fn plain_paths_and_links_that_stay_inside_are_followed() {
    let t = tree();
    symlink("dir/g", t.root.join("rel")).unwrap();
    symlink(t.root.join("dir"), t.root.join("abs")).unwrap();
    symlink("../f", t.root.join("dir/up")).unwrap();
    // out of the root by name and back in: allowed, as the check by path allows it
    symlink("../root/f", t.root.join("roundtrip")).unwrap();
    let root = Root::open(&t.root).unwrap();
    for kernel in BOTH {
        assert_eq!(read(&root, "f", kernel).unwrap(), "inside");
        assert_eq!(read(&root, "dir/g", kernel).unwrap(), "deep");
        assert_eq!(read(&root, "rel", kernel).unwrap(), "deep");
        assert_eq!(read(&root, "abs/g", kernel).unwrap(), "deep");
        assert_eq!(read(&root, "dir/up", kernel).unwrap(), "inside");
        assert_eq!(read(&root, "roundtrip", kernel).unwrap(), "inside");
        assert!(root
            .open_file_by(Path::new(""), libc::O_PATH, 0, kernel)
            .is_ok());
    }
}

#[test]
fn an_absolute_link_out_is_refused() {
    let t = tree();
    symlink(t.outside.join("secret"), t.root.join("out")).unwrap();
    symlink(&t.outside, t.root.join("outdir")).unwrap();
    let root = Root::open(&t.root).unwrap();
    for kernel in BOTH {
        assert!(refused(read(&root, "out", kernel)), "kernel={kernel}");
        assert!(refused(read(&root, "outdir/secret", kernel)));
        // nor created through it
        let created = root.open_file_by(
            Path::new("outdir/new"),
            libc::O_WRONLY | libc::O_CREAT,
            0o600,
            kernel,
        );
        assert!(refused(created));
        assert!(!t.outside.join("new").exists());
        assert!(refused(
            root.entry_by(Path::new("outdir/new"), false, kernel)
                .map(|_| ())
        ));
        assert!(refused(
            root.entry_by(Path::new("out"), true, kernel).map(|_| ())
        ));
    }
}

#[test]
fn a_way_out_by_dotdot_is_refused() {
    let t = tree();
    symlink("../outside/secret", t.root.join("up")).unwrap();
    symlink("../../outside", t.root.join("dir/upup")).unwrap();
    let root = Root::open(&t.root).unwrap();
    for kernel in BOTH {
        assert!(refused(read(&root, "up", kernel)));
        assert!(refused(read(&root, "dir/upup/secret", kernel)));
        assert!(refused(read(&root, "../outside/secret", kernel)));
        assert!(refused(read(&root, "dir/../../outside/secret", kernel)));
    }
}

#[test]
fn a_link_in_the_middle_is_refused() {
    let t = tree();
    fs::create_dir(t.outside.join("sub")).unwrap();
    fs::write(t.outside.join("sub/x"), b"SECRET").unwrap();
    // inside → inside → out
    symlink("hop2", t.root.join("dir/hop1")).unwrap();
    symlink(&t.outside, t.root.join("dir/hop2")).unwrap();
    let root = Root::open(&t.root).unwrap();
    for kernel in BOTH {
        assert!(refused(read(&root, "dir/hop1/sub/x", kernel)));
        assert!(refused(read(&root, "dir/hop2/secret", kernel)));
        assert!(refused(
            root.entry_by(Path::new("dir/hop1/sub/x"), false, kernel)
                .map(|_| ())
        ));
    }
}

#[test]
fn a_link_loop_ends_in_eloop() {
    let t = tree();
    symlink("b", t.root.join("a")).unwrap();
    symlink("a", t.root.join("b")).unwrap();
    symlink("self/x", t.root.join("self")).unwrap();
    let root = Root::open(&t.root).unwrap();
    for kernel in BOTH {
        for rel in ["a", "a/x", "self"] {
            let err = read(&root, rel, kernel).unwrap_err();
            assert_eq!(
                err.raw_os_error(),
                Some(libc::ELOOP),
                "{rel} kernel={kernel}"
            );
        }
        // the looping link itself can still be named (DELE, RNFR, LIST)
        let entry = root.entry_by(Path::new("a"), false, kernel).unwrap();
        assert_eq!(entry.name, "a");
    }
}

#[test]
fn magic_links_are_refused() {
    let t = tree();
    symlink("/proc/self/root", t.root.join("procroot")).unwrap();
    symlink("/proc/self/cwd", t.root.join("proccwd")).unwrap();
    let root = Root::open(&t.root).unwrap();
    for kernel in BOTH {
        assert!(refused(read(&root, "procroot/etc/passwd", kernel)));
        assert!(refused(read(&root, "proccwd/Cargo.toml", kernel)));
    }
    // A root that holds magic links itself: /proc/<pid>'s `root` and `cwd`.
    let proc_self = Path::new("/proc/self").canonicalize().unwrap();
    let root = Root::open(&proc_self).unwrap();
    for kernel in BOTH {
        assert!(
            refused(read(&root, "root/etc/passwd", kernel)),
            "kernel={kernel}"
        );
        assert!(refused(read(&root, "cwd/Cargo.toml", kernel)));
        assert!(refused(
            root.entry_by(Path::new("root/etc"), true, kernel)
                .map(|_| ())
        ));
    }
}

#[test]
fn the_last_component_is_never_followed_out() {
    let t = tree();
    symlink(t.outside.join("secret"), t.root.join("out")).unwrap();
    let root = Root::open(&t.root).unwrap();
    for kernel in BOTH {
        // as itself: named, never followed
        let entry = root.entry_by(Path::new("out"), false, kernel).unwrap();
        let st = sys::statat(entry.dir(), entry.name(), false).unwrap();
        assert!(st.is_symlink());
        // the walk's last step refuses a link where it expects none (a link swapped in
        // after the resolution)
        let entry = root.entry_by(Path::new("out"), false, kernel).unwrap();
        let opened = sys::openat(
            entry.dir(),
            entry.name(),
            libc::O_RDONLY | libc::O_NOFOLLOW,
            0,
        );
        assert_eq!(opened.unwrap_err().raw_os_error(), Some(libc::ELOOP));
    }
}

#[test]
fn through_the_place_api_every_operation_stays_inside() {
    use crate::filesystems::{ops, FileSystem};
    let t = tree();
    symlink(&t.outside, t.root.join("outdir")).unwrap();
    let before = fs::metadata(t.outside.join("secret")).unwrap();
    let view = crate::filesystems::AbstractedFs::new(t.root.clone()).unwrap();
    let root = view.root().to_path_buf();
    let p = |rel: &str| root.join(rel);
    assert!(view.stat(&p("outdir/secret")).is_err());
    assert!(view.lstat(&p("outdir/secret")).is_err());
    assert!(view.listdir(&p("outdir")).is_err());
    assert!(view.mkdir(&p("outdir/new")).is_err());
    assert!(view.remove(&p("outdir/secret")).is_err());
    assert!(view.rmdir(&p("outdir/sub")).is_err());
    assert!(view.rename(&p("outdir/secret"), &p("stolen")).is_err());
    assert!(view.rename(&p("f"), &p("outdir/planted")).is_err());
    assert!(view.chmod(&p("outdir/secret"), 0o777).is_err());
    assert!(view.set_mtime(&p("outdir/secret"), UNIX_EPOCH).is_err());
    assert!(view.readlink(&p("outdir/secret")).is_err());
    assert!(view.create_unique(&p("outdir"), "x").is_err());
    assert!(ops::check_enterable(Place::Beneath(
        &Root::open(&root).unwrap(),
        Path::new("outdir")
    ))
    .is_err());
    let after = fs::metadata(t.outside.join("secret")).unwrap();
    assert_eq!(fs::read(t.outside.join("secret")).unwrap(), b"SECRET");
    assert_eq!(
        (before.permissions(), before.modified().unwrap()),
        (after.permissions(), after.modified().unwrap())
    );
    assert_eq!(fs::read_dir(&t.outside).unwrap().count(), 1);
    // and inside, each works
    view.mkdir(&p("dir/new")).unwrap();
    view.rename(&p("dir/new"), &p("moved")).unwrap();
    view.rmdir(&p("moved")).unwrap();
    view.chmod(&p("f"), 0o600).unwrap();
    assert_eq!(view.stat(&p("f")).unwrap().mode, 0o600);
    view.set_mtime(&p("f"), UNIX_EPOCH).unwrap();
    assert_eq!(view.stat(&p("f")).unwrap().mtime, UNIX_EPOCH);
    assert!(view.lstat(&p("outdir")).unwrap().is_symlink());
    assert_eq!(view.readlink(&p("outdir")).unwrap(), t.outside);
    let mut names = view.listdir(&p("dir")).unwrap();
    names.sort();
    assert_eq!(names, ["g"]);
    view.remove(&p("dir/g")).unwrap();
}

#[test]
fn an_absolute_link_through_another_name_of_the_root_is_followed() {
    let t = tree();
    // `alias` is another name of the root (the root itself is kept canonical); a link
    // spelled through it names a place inside, as the check by path finds.
    let alias = t.root.parent().unwrap().join("alias");
    symlink(&t.root, &alias).unwrap();
    symlink(alias.join("dir/g"), t.root.join("via_alias")).unwrap();
    symlink(
        alias.join("../outside/secret"),
        t.root.join("via_alias_out"),
    )
    .unwrap();
    let root = Root::open(&t.root).unwrap();
    for kernel in BOTH {
        assert_eq!(read(&root, "via_alias", kernel).unwrap(), "deep");
        assert!(refused(read(&root, "via_alias_out", kernel)));
    }
}

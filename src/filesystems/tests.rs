//! Path mapping and containment tests, adapted from pyftpdlib's `test_filesystems.py`.

use std::os::unix::fs::symlink;

use super::*;

fn fake(root: &str, cwd: &str) -> AbstractedFs {
    let mut fs = AbstractedFs::with_canonical_root(PathBuf::from(root));
    fs.set_cwd(cwd.to_owned());
    fs
}

fn join(root: &str, rel: &str) -> PathBuf {
    Path::new(root).join(rel)
}

fn ftp2fs_cases(root: &str) {
    let fs = fake(root, "/");
    let r = PathBuf::from(root);
    for (input, want) in [
        ("", r.clone()),
        ("/", r.clone()),
        (".", r.clone()),
        ("..", r.clone()),
        ("a", join(root, "a")),
        ("/a", join(root, "a")),
        ("/a/", join(root, "a")),
        ("a/..", r.clone()),
        ("a/b", join(root, "a/b")),
        ("/a/b", join(root, "a/b")),
        ("/a/b/..", join(root, "a")),
        ("/a/b/../..", r.clone()),
        ("//a", join(root, "a")),
        ("/../../etc/passwd", join(root, "etc/passwd")),
    ] {
        let got = fs.ftp2fs(input);
        assert_eq!(
            got.as_os_str(),
            want.as_os_str(),
            "root {root:?} input {input:?}"
        );
    }
    let fs = fake(root, "/sub");
    for (input, want) in [
        ("", join(root, "sub")),
        ("/", r.clone()),
        (".", join(root, "sub")),
        ("..", r.clone()),
        ("a", join(root, "sub/a")),
        ("a/", join(root, "sub/a")),
        ("a/..", join(root, "sub")),
        ("a/b", join(root, "sub/a/b")),
        ("a/b/..", join(root, "sub/a")),
        ("a/b/../..", join(root, "sub")),
        ("a/b/../../..", r.clone()),
    ] {
        let got = fs.ftp2fs(input);
        assert_eq!(
            got.as_os_str(),
            want.as_os_str(),
            "root {root:?} input {input:?}"
        );
    }
}

#[test]
fn ftp2fs_under_home() {
    ftp2fs_cases("/home/user");
}

#[test]
fn ftp2fs_under_slash() {
    ftp2fs_cases("/");
}

#[test]
fn ftpnorm_is_the_trait_default() {
    let fs = fake("/home/user", "/sub");
    assert_eq!(fs.ftpnorm("x/../../y/"), "/y");
    assert_eq!(fs.ftpnorm("//x"), "/x");
}

fn fs2ftp_cases(root: &str) {
    let mut fs = fake(root, "/");
    let j = |rel: &str| PathBuf::from(format!("{root}/{rel}"));
    assert_eq!(fs.fs2ftp(Path::new(root)), "/");
    assert_eq!(fs.fs2ftp(&j("")), "/");
    assert_eq!(fs.fs2ftp(&j(".")), "/");
    // can't escape from root
    assert_eq!(fs.fs2ftp(&j("..")), "/");
    assert_eq!(fs.fs2ftp(&j("a")), "/a");
    assert_eq!(fs.fs2ftp(&j("a/")), "/a");
    assert_eq!(fs.fs2ftp(&j("a/..")), "/");
    assert_eq!(fs.fs2ftp(&j("a/b")), "/a/b");
    assert_eq!(fs.fs2ftp(&j("a/b/..")), "/a");
    assert_eq!(fs.fs2ftp(&j("/a/b/../..")), "/");
    // relative real paths are taken relative to the root
    assert_eq!(fs.fs2ftp(Path::new("a/b")), "/a/b");
    fs.set_cwd("/sub".to_owned());
    assert_eq!(fs.fs2ftp(&j("a/")), "/a");
}

#[test]
fn fs2ftp_under_slash() {
    fs2ftp_cases("/");
}

#[test]
fn fs2ftp_under_missing_home() {
    fs2ftp_cases("/__home/user");
    let fs = fake("/__home/user", "/");
    assert_eq!(fs.fs2ftp(Path::new("/__home")), "/");
    assert_eq!(fs.fs2ftp(Path::new("/")), "/");
    assert_eq!(fs.fs2ftp(Path::new("/__home/userx")), "/");
    assert_eq!(fs.fs2ftp(Path::new("/__home/user/../userx/a")), "/");
}

#[test]
fn round_trips() {
    let fs = fake("/home/user", "/sub");
    for p in ["/", "/a", "/a/b c/d", "/sub/x", "/.hidden"] {
        assert_eq!(fs.fs2ftp(&fs.ftp2fs(p)), p);
    }
    let fs = fake("/", "/");
    for p in ["/", "/etc", "/a/b"] {
        assert_eq!(fs.fs2ftp(&fs.ftp2fs(p)), p);
    }
}

/// tmp/outside/secret, tmp/root/{inside/,file}, and the links under test.
struct Jail {
    _tmp: tempfile::TempDir,
    fs: AbstractedFs,
    outside: PathBuf,
}

fn jail() -> Jail {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let outside = base.join("outside");
    let root = base.join("root");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"s").unwrap();
    fs::create_dir_all(root.join("inside")).unwrap();
    fs::write(root.join("file"), b"f").unwrap();
    let afs = AbstractedFs::new(root).unwrap();
    Jail {
        _tmp: tmp,
        fs: afs,
        outside,
    }
}

#[test]
fn new_canonicalizes_and_checks() {
    let j = jail();
    let link = j.outside.join("to_root");
    symlink(j.fs.root(), &link).unwrap();
    let via_link = AbstractedFs::new(link).unwrap();
    assert_eq!(via_link.root(), j.fs.root());
    assert_eq!(via_link.cwd(), "/");
    assert!(AbstractedFs::new(j.fs.root().join("missing")).is_err());
    let err = AbstractedFs::new(j.fs.root().join("file")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));
}

#[test]
fn validpath_plain() {
    let j = jail();
    let root = j.fs.root().to_path_buf();
    assert!(j.fs.validpath(&root));
    assert!(j.fs.validpath(&root.join("")));
    assert!(j.fs.validpath(&root.join("file")));
    assert!(j.fs.validpath(&root.join("not/yet/there")));
    let mut sibling = root.clone().into_os_string();
    sibling.push("bar");
    assert!(!j.fs.validpath(Path::new(&sibling)));
    assert!(!j.fs.validpath(&j.outside));
    assert!(!j.fs.validpath(&root.join("..")));
}

#[test]
fn validpath_link_inside_is_fine() {
    let j = jail();
    let link = j.fs.root().join("link");
    symlink(j.fs.root().join("file"), &link).unwrap();
    assert!(j.fs.validpath(&link));
    let dlink = j.fs.root().join("dlink");
    symlink("inside", &dlink).unwrap();
    assert!(j.fs.validpath(&dlink));
    assert!(j.fs.validpath(&dlink.join("new")));
    // fs2ftp keeps the client's spelling of a link inside the root
    assert_eq!(j.fs.fs2ftp(&dlink), "/dlink");
}

#[test]
fn validpath_link_outside_is_refused() {
    let j = jail();
    let link = j.fs.root().join("evil");
    symlink(j.outside.join("secret"), &link).unwrap();
    assert!(!j.fs.validpath(&link));
    assert_eq!(j.fs.fs2ftp(&link), "/");
}

#[test]
fn new_file_under_outside_dir_link_is_refused() {
    let j = jail();
    let link = j.fs.root().join("evildir");
    symlink(&j.outside, &link).unwrap();
    assert!(!j.fs.validpath(&link));
    assert!(!j.fs.validpath(&link.join("newfile")));
    assert!(!j.fs.validpath(&link.join("a/b/c")));
    assert!(!j.fs.validpath(&j.fs.ftp2fs("/evildir/newfile")));
    // dangling link whose target would be outside
    let dangling = j.fs.root().join("dangling");
    symlink(j.outside.join("not-yet"), &dangling).unwrap();
    assert!(!j.fs.validpath(&dangling));
    // and STOU refuses to create there
    let err = j.fs.create_unique(&link, "ftpd.").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES));
    assert_eq!(fs::read_dir(&j.outside).unwrap().count(), 1);
}

#[test]
fn symlink_loop_is_where_its_link_is() {
    let j = jail();
    let root = j.fs.root().to_path_buf();
    symlink(root.join("b"), root.join("a")).unwrap();
    symlink(root.join("a"), root.join("b")).unwrap();
    // Inside: the link may be removed; going through it fails with ELOOP.
    assert!(j.fs.validpath(&root.join("a")));
    assert!(j.fs.validpath(&root.join("a/x")));
    assert_eq!(
        fs::metadata(root.join("a/x")).unwrap_err().raw_os_error(),
        Some(libc::ELOOP)
    );
    // A loop in a directory outside the root, reached through a link, stays outside.
    symlink(j.outside.join("d"), j.outside.join("c")).unwrap();
    symlink(j.outside.join("c"), j.outside.join("d")).unwrap();
    symlink(&j.outside, root.join("out")).unwrap();
    assert!(!j.fs.validpath(&root.join("out/c")));
    assert!(!j.fs.validpath(&root.join("out/c/x")));
    // A loop whose links point outside the root before coming back.
    symlink(j.outside.join("e"), root.join("e")).unwrap();
    symlink(root.join("e"), j.outside.join("e")).unwrap();
    assert!(j.fs.validpath(&root.join("e")));
}

#[test]
fn chdir_sets_virtual_cwd() {
    let mut j = jail();
    let inside = j.fs.ftp2fs("inside");
    j.fs.chdir(&inside).unwrap();
    assert_eq!(j.fs.cwd(), "/inside");
    assert_eq!(j.fs.ftp2fs("x"), j.fs.root().join("inside/x"));
    let up = j.fs.ftp2fs("..");
    j.fs.chdir(&up).unwrap();
    assert_eq!(j.fs.cwd(), "/");
    // failures leave the cwd alone
    let file = j.fs.ftp2fs("file");
    assert_eq!(
        j.fs.chdir(&file).unwrap_err().raw_os_error(),
        Some(libc::ENOTDIR)
    );
    let missing = j.fs.ftp2fs("missing");
    assert_eq!(
        j.fs.chdir(&missing).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(j.fs.cwd(), "/");
    // the process cwd is untouched
    assert_ne!(std::env::current_dir().unwrap(), inside);
}

#[test]
fn wrappers() {
    let j = jail();
    let root = j.fs.root();
    let d = root.join("d");
    j.fs.mkdir(&d).unwrap();
    assert!(j.fs.is_dir(&d));
    assert!(!j.fs.is_file(&d));
    assert!(j.fs.mkdir(&d).is_err());
    let f = d.join("f");
    fs::write(&f, b"x").unwrap();
    assert!(j.fs.rmdir(&d).is_err());
    j.fs.chmod(&f, 0o600).unwrap();
    assert_eq!(j.fs.stat(&f).unwrap().mode & 0o777, 0o600);
    let g = d.join("g");
    j.fs.rename(&f, &g).unwrap();
    assert!(!j.fs.lexists(&f));
    assert!(j.fs.is_file(&g));
    let mut names = j.fs.listdir(root).unwrap();
    names.sort();
    assert_eq!(names, ["d", "file", "inside"]);
    assert_eq!(
        j.fs.remove(&d).unwrap_err().raw_os_error(),
        Some(libc::EISDIR)
    );
    j.fs.remove(&g).unwrap();
    j.fs.rmdir(&d).unwrap();
    // broken links exist for lexists but not for is_file
    let broken = root.join("broken");
    symlink("nowhere", &broken).unwrap();
    assert!(j.fs.lexists(&broken));
    assert!(!j.fs.is_file(&broken));
    assert_eq!(j.fs.readlink(&broken).unwrap(), Path::new("nowhere"));
    assert_eq!(j.fs.realpath(&broken).unwrap(), root.join("nowhere"));
    assert_eq!(j.fs.realpath(root).unwrap(), root);
}

#[test]
fn unix_filesystem_is_the_real_tree() {
    let j = jail();
    let home = j.fs.root().join("inside");
    let fs = UnixFilesystem::new(home.clone()).unwrap();
    assert_eq!(fs.root(), home);
    assert_eq!(fs.cwd(), home.to_str().unwrap());
    assert_eq!(fs.ftp2fs(".."), j.fs.root());
    assert_eq!(fs.ftp2fs("/etc"), Path::new("/etc"));
    assert_eq!(fs.fs2ftp(&home), home.to_str().unwrap());
    assert!(fs.validpath(Path::new("/")));
}

#[test]
fn trait_is_object_safe() {
    let j = jail();
    let mut boxed: Box<dyn FileSystem> = Box::new(j.fs);
    let inside = boxed.ftp2fs("/inside");
    boxed.chdir(&inside).unwrap();
    assert_eq!(boxed.cwd(), "/inside");
    let mut out = Vec::new();
    boxed.format_list(&inside, &[], true, SystemTime::now(), &mut out);
    assert!(out.is_empty());
}

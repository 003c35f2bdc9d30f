//! Path mapping and containment tests, adapted from pyftpdlib's `test_filesystems.py`.

use std::os::unix::fs::{symlink, MetadataExt};

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

/// A root full of symlinks, and an outside file whose size and inode must never show:
/// root/{file, inside/up -> ../file} plus the links named in each test, and
/// outside/{secret (`SECRET_LEN` bytes), dir/}.
struct Links {
    j: Jail,
    secret: PathBuf,
}

const SECRET_LEN: usize = 12_345;

fn links() -> Links {
    let j = jail();
    let root = j.fs.root().to_path_buf();
    let secret = j.outside.join("big-secret");
    fs::write(&secret, vec![b'x'; SECRET_LEN]).unwrap();
    fs::create_dir(j.outside.join("dir")).unwrap();
    for (name, target) in [
        // out of the root
        ("out_abs", secret.clone()),
        ("out_rel", PathBuf::from("../outside/big-secret")),
        ("out_dir", j.outside.join("dir")),
        ("out_dangling", j.outside.join("missing")),
        // inside
        ("in_rel", PathBuf::from("file")),
        ("in_abs", root.join("file")),
        ("in_abs_dir", root.join("inside")),
        ("in_climb", PathBuf::from("../root/file")),
        ("in_via_out", PathBuf::from("out_dir/../../root/file")),
        ("dangling", PathBuf::from("nowhere")),
        ("dangling_abs", root.join("nowhere")),
        ("loop_a", PathBuf::from("loop_b")),
        ("loop_b", PathBuf::from("loop_a")),
    ] {
        symlink(target, root.join(name)).unwrap();
    }
    symlink("../file", root.join("inside/up")).unwrap();
    Links { j, secret }
}

impl Links {
    fn list(&self, fs: &dyn FileSystem, dir: &Path) -> String {
        let mut names = fs.listdir(dir).unwrap();
        names.sort();
        let mut out = Vec::new();
        fs.format_list(dir, &names, true, SystemTime::now(), &mut out);
        String::from_utf8(out).unwrap()
    }

    fn mlsd(&self, dir: &Path) -> String {
        let mut names = self.j.fs.listdir(dir).unwrap();
        names.sort();
        let mut out = Vec::new();
        self.j
            .fs
            .format_mlsx(
                dir,
                &names,
                "elradfmwMT",
                MLSX_FACTS_AVAILABLE,
                true,
                true,
                &mut out,
            )
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Nothing about the outside or the real root: no real path, no facts of the secret.
    fn assert_hides(&self, text: &str) {
        let base = self
            .j
            .outside
            .parent()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(!text.contains(&base), "real path in {text}");
        assert!(!text.contains("outside"), "outside path in {text}");
        assert!(!text.contains("root/"), "real root in {text}");
        let md = fs::metadata(&self.secret).unwrap();
        assert!(
            !text.contains(&SECRET_LEN.to_string()),
            "secret size in {text}"
        );
        assert!(
            !text.contains(&format!("g{:x};", md.ino())),
            "secret inode in {text}"
        );
    }
}

/// The entry of `name` in a LIST output: what follows the date, `name` or
/// `name -> target` (the names here have no spaces).
fn list_entry(out: &str, name: &str) -> String {
    out.split("\r\n")
        .map(|l| l.split_whitespace().skip(8).collect::<Vec<_>>().join(" "))
        .find(|e| e.split(' ').next() == Some(name))
        .unwrap_or_else(|| panic!("{name} not in {out}"))
}

#[test]
fn list_shows_links_out_of_the_root_without_target() {
    let l = links();
    let root = l.j.fs.root().to_path_buf();
    let out = l.list(&l.j.fs, &root);
    l.assert_hides(&out);
    for name in ["out_abs", "out_rel", "out_dir", "out_dangling"] {
        assert_eq!(list_entry(&out, name), name, "{out}");
    }
    // A link, with the size of what is shown of its target: nothing, so 0, never the
    // length of the outside path.
    let line = out.split("\r\n").find(|l| l.ends_with(" out_abs")).unwrap();
    assert!(line.starts_with("lrwxrwxrwx "), "{line}");
    let own = fs::symlink_metadata(root.join("out_abs")).unwrap().len();
    assert!(!line.contains(&format!(" {own} ")), "{line}");
    assert_eq!(list_size(&out, "out_abs"), 0, "{out}");
}

/// The size column of `name`'s LIST line.
fn list_size(out: &str, name: &str) -> u64 {
    let line = out
        .split("\r\n")
        .find(|l| l.split(' ').any(|w| w == name))
        .unwrap_or_else(|| panic!("{name} missing from {out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    words[4]
        .parse()
        .unwrap_or_else(|_| panic!("no size in {line}"))
}

#[test]
fn a_listed_link_has_the_size_of_the_target_shown() {
    let l = links();
    let root = l.j.fs.root().to_path_buf();
    let out = l.list(&l.j.fs, &root);
    // `in_rel -> file`, `in_abs -> /file` (its virtual path, not the real one).
    assert_eq!(list_size(&out, "in_rel"), 4, "{out}");
    assert_eq!(list_size(&out, "in_abs"), 5, "{out}");
    let real = fs::symlink_metadata(root.join("in_abs")).unwrap().len();
    assert!(real > 5, "the stored target is the real path");
}

#[test]
fn list_shows_links_inside_the_root_by_virtual_path() {
    let l = links();
    let root = l.j.fs.root().to_path_buf();
    let out = l.list(&l.j.fs, &root);
    for (name, want) in [
        // a relative target that stays inside: as stored
        ("in_rel", "in_rel -> file"),
        ("dangling", "dangling -> nowhere"),
        ("loop_a", "loop_a -> loop_b"),
        // an absolute target would spell the real root: its virtual path instead
        ("in_abs", "in_abs -> /file"),
        ("in_abs_dir", "in_abs_dir -> /inside"),
        ("dangling_abs", "dangling_abs -> /nowhere"),
        // relative, but passing above the root (naming it) or through the outside
        ("in_climb", "in_climb -> /file"),
        ("in_via_out", "in_via_out -> /file"),
    ] {
        assert_eq!(list_entry(&out, name), want, "{out}");
    }
    // `..` that stays below the root is kept, also when listed through a link.
    let sub = l.list(&l.j.fs, &root.join("inside"));
    assert_eq!(list_entry(&sub, "up"), "up -> ../file");
    let via = l.list(&l.j.fs, &root.join("in_abs_dir"));
    assert_eq!(list_entry(&via, "up"), "up -> ../file");
    l.assert_hides(&sub);
}

#[test]
fn list_of_a_root_at_slash_or_the_real_tree_keeps_targets() {
    let l = links();
    let root = l.j.fs.root().to_path_buf();
    // The real tree is the client's namespace: targets are shown as stored.
    let unix = UnixFilesystem::new(root.clone()).unwrap();
    let out = l.list(&unix, &root);
    let want = format!("out_abs -> {}", l.secret.display());
    assert_eq!(list_entry(&out, "out_abs"), want);
    assert_eq!(list_entry(&out, "in_climb"), "in_climb -> ../root/file");
    // So is an AbstractedFs whose root is `/`.
    let slash = AbstractedFs::new(PathBuf::from("/")).unwrap();
    let mut o = Vec::new();
    slash.format_list(&root, &["out_abs".into()], true, SystemTime::now(), &mut o);
    assert!(String::from_utf8(o)
        .unwrap()
        .ends_with(&format!("{want}\r\n")));
}

#[test]
fn mlsd_describes_links_out_of_the_root_as_links() {
    let l = links();
    let root = l.j.fs.root().to_path_buf();
    let out = l.mlsd(&root);
    l.assert_hides(&out);
    for name in ["out_abs", "out_rel", "out_dir", "out_dangling"] {
        let own = fs::symlink_metadata(root.join(name)).unwrap();
        let line = out
            .split("\r\n")
            .find(|line| line.ends_with(&format!("; {name}")))
            .unwrap_or_else(|| panic!("{name} missing from {out}"));
        assert_eq!(
            line,
            format!(
                "modify={};perm=;type=OS.unix=symlink;unique={:x}g{:x};unix.gid={};unix.mode=0777;unix.uid={}; {name}",
                crate::timefmt::mdtm(own.modified().unwrap(), true),
                own.dev(),
                own.ino(),
                own.gid(),
                own.uid()
            )
        );
    }
}

#[test]
fn mlsd_follows_links_inside_the_root() {
    let l = links();
    let root = l.j.fs.root().to_path_buf();
    let out = l.mlsd(&root);
    let file = fs::metadata(root.join("file")).unwrap();
    for name in ["in_rel", "in_abs", "in_climb", "in_via_out"] {
        let want = format!("size=1;type=file;unique={:x}g{:x};", file.dev(), file.ino());
        let line = out
            .split("\r\n")
            .find(|line| line.ends_with(&format!("; {name}")))
            .unwrap_or_else(|| panic!("{name} missing from {out}"));
        assert!(line.contains(&want), "{line}");
    }
    assert!(out.contains("type=dir;"), "{out}");
    // Dangling links and loops cannot be followed: left out, as before.
    for name in ["dangling", "dangling_abs", "loop_a", "loop_b"] {
        assert!(!out.contains(&format!("; {name}\r\n")), "{out}");
    }
    // MLST of one link inside: the target's facts.
    let mut one = Vec::new();
    l.j.fs
        .format_mlsx(
            &root,
            &["in_abs".into()],
            "elr",
            &["type", "size"],
            false,
            true,
            &mut one,
        )
        .unwrap();
    assert_eq!(one, b"size=1;type=file; in_abs\r\n");
}

#[test]
fn relative_link_texts_climb_no_higher_than_the_root() {
    let root = Path::new("/srv/home");
    let text = |dir: &str, target: &str| {
        ops::relative_link(root, Path::new(dir), Path::new(target))
            .map(|p| p.to_string_lossy().into_owned())
    };
    assert_eq!(text("/srv/home", "/srv/home/d/f").unwrap(), "d/f");
    assert_eq!(text("/srv/home/a/b", "/srv/home/f").unwrap(), "../../f");
    assert_eq!(text("/srv/home/a/b", "/srv/home/a/c/f").unwrap(), "../c/f");
    assert_eq!(text("/srv/home/a", "/srv/home/a").unwrap(), ".");
    assert_eq!(text("/srv/home/a/b", "/srv/home").unwrap(), "../..");
    for (dir, target) in [("/srv/home", "/srv/other/f"), ("/srv", "/srv/home/f")] {
        let e = text(dir, target).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{dir} {target}");
    }
}

#[test]
fn symlink_beneath_the_root_is_relative_and_refuses_existing_names() {
    let tmp = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(tmp.path()).unwrap().join("home");
    fs::create_dir_all(root.join("a/b")).unwrap();
    fs::write(root.join("f"), b"x").unwrap();
    fs::write(tmp.path().join("outside"), b"secret").unwrap();
    let view = AbstractedFs::new(root.clone()).unwrap();
    view.symlink(&root.join("f"), &root.join("a/b/l")).unwrap();
    assert_eq!(
        fs::read_link(root.join("a/b/l")).unwrap(),
        Path::new("../../f")
    );
    let exists = view
        .symlink(&root.join("f"), &root.join("a/b/l"))
        .unwrap_err();
    assert_eq!(exists.kind(), io::ErrorKind::AlreadyExists);
    let outside = view
        .symlink(&tmp.path().join("outside"), &root.join("l2"))
        .unwrap_err();
    assert_eq!(outside.kind(), io::ErrorKind::PermissionDenied);
    assert!(fs::symlink_metadata(root.join("l2")).is_err());
}

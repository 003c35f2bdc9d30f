//! Path safety: nothing outside the user's root is read or written, whether by `..`,
//! absolute paths, or symlinks inside the root that point outside it.

use std::os::unix::fs::symlink;

use crate::util::{Client, TestServer};

/// A server whose root holds `marker`, and whose sibling `outside` holds `secret`, with
/// `root/out_link -> outside`, `root/secret_link -> outside/secret` and
/// `root/etc_link -> /etc`.
fn setup() -> TestServer {
    let srv = TestServer::start();
    let root = srv.root();
    std::fs::write(root.join("marker"), b"inside").expect("write marker");
    std::fs::write(srv.outside().join("secret"), b"SECRET").expect("write secret");
    symlink(srv.outside(), root.join("out_link")).expect("symlink");
    symlink(srv.outside().join("secret"), root.join("secret_link")).expect("symlink");
    symlink("/etc", root.join("etc_link")).expect("symlink");
    srv
}

/// The listing of the root after the attempt: the session is still inside it.
fn assert_still_inside(c: &mut Client) {
    assert_eq!(
        c.cmd("PWD"),
        (257, "\"/\" is the current directory.".into())
    );
    let names = c.listing("NLST");
    assert!(names.contains("marker"), "NLST of / gave {names:?}");
}

fn outside_untouched(srv: &TestServer) {
    let mut names: Vec<_> = std::fs::read_dir(srv.outside())
        .expect("read outside")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["secret"], "something was created outside the root");
    assert_eq!(
        std::fs::read(srv.outside().join("secret")).expect("read secret"),
        b"SECRET"
    );
}

#[test]
fn cwd_dot_dot_stays_at_the_root() {
    let srv = setup();
    let mut c = srv.login();
    // `..` above the root normalises to the root itself (pyftpdlib): never above it.
    let (code, text) = c.cmd("CWD ../..");
    assert!(
        code == 550 || (code == 250 && text == "\"/\" is the current directory."),
        "CWD ../.. got {code} {text:?}"
    );
    assert_still_inside(&mut c);
    c.expect("CWD /", 250);
    let (code, _) = c.cmd("CDUP");
    assert!(code == 250 || code == 550);
    assert_still_inside(&mut c);
}

#[test]
fn retr_with_dot_dot_does_not_leak() {
    let srv = setup();
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    for path in [
        "../../etc/passwd",
        "/../../../etc/passwd",
        "../outside/secret",
        "../../../../../../../../etc/passwd",
    ] {
        let data = c.pasv();
        let (code, text) = c.cmd(&format!("RETR {path}"));
        assert_eq!(code, 550, "RETR {path} got {code} {text:?}");
        drop(data);
    }
    outside_untouched(&srv);
}

#[test]
fn absolute_real_paths_map_inside_the_root() {
    let srv = setup();
    let mut c = srv.login();
    let secret = srv.outside().join("secret");
    let data = c.pasv();
    let (code, text) = c.cmd(&format!("RETR {}", secret.display()));
    assert_eq!(code, 550, "{text}");
    drop(data);
    assert_eq!(c.cmd(&format!("SIZE {}", secret.display())).0, 550);
    assert_eq!(c.cmd("CWD /etc").0, 550);
    // An absolute real path names a place under the root, whose parents do not exist.
    let target = srv.outside().join("written");
    let data = c.pasv();
    let (code, text) = c.cmd(&format!("STOR {}", target.display()));
    assert_eq!(code, 550, "{text}");
    drop(data);
    assert!(!target.exists(), "STOR wrote outside the root");
    outside_untouched(&srv);
}

#[test]
fn symlink_to_etc_is_refused() {
    let srv = setup();
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let data = c.pasv();
    let (code, text) = c.cmd("RETR etc_link/passwd");
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("outside the user's root directory"), "{text}");
    drop(data);
    let (code, text) = c.cmd("CWD etc_link");
    assert_eq!(code, 550, "{text}");
    assert_still_inside(&mut c);
    for cmd in [
        "SIZE etc_link/passwd",
        "MDTM etc_link/passwd",
        "MLST etc_link/passwd",
        "STAT etc_link",
    ] {
        let (code, text) = c.cmd(cmd);
        assert_eq!(code, 550, "{cmd} got {text:?}");
    }
}

#[test]
fn listing_through_a_symlink_outside_is_refused() {
    let srv = setup();
    let mut c = srv.login();
    for cmd in [
        "LIST out_link",
        "NLST out_link",
        "MLSD out_link",
        "LIST etc_link",
    ] {
        let data = c.pasv();
        let (code, text) = c.cmd(cmd);
        assert_eq!(code, 550, "{cmd} got {text:?}");
        drop(data);
    }
}

#[test]
fn symlink_to_a_file_outside_is_refused() {
    let srv = setup();
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let data = c.pasv();
    assert_eq!(c.cmd("RETR secret_link").0, 550);
    drop(data);
    let data = c.pasv();
    assert_eq!(c.cmd("STOR secret_link").0, 550);
    drop(data);
    let data = c.pasv();
    assert_eq!(c.cmd("APPE secret_link").0, 550);
    drop(data);
    outside_untouched(&srv);
}

#[test]
fn writes_through_a_symlink_outside_are_refused() {
    let srv = setup();
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    for cmd in ["STOR out_link/x", "APPE out_link/x", "STOU out_link/x"] {
        let data = c.pasv();
        let (code, text) = c.cmd(cmd);
        assert_eq!(code, 550, "{cmd} got {text:?}");
        drop(data);
    }
    for cmd in [
        "MKD out_link/d",
        "RMD out_link",
        "DELE out_link/secret",
        "SITE CHMOD 777 out_link/secret",
        "MFMT 20000101000000 out_link/secret",
    ] {
        let (code, text) = c.cmd(cmd);
        assert_eq!(code, 550, "{cmd} got {text:?}");
    }
    // Renaming into or out of the link.
    c.expect("RNFR marker", 350);
    assert_eq!(c.cmd("RNTO out_link/stolen").0, 550);
    assert_eq!(c.cmd("RNFR out_link/secret").0, 550);
    assert!(srv.root().join("marker").exists());
    outside_untouched(&srv);
}

#[test]
fn symlinks_inside_the_root_work() {
    let srv = setup();
    std::fs::create_dir(srv.root().join("sub")).expect("mkdir");
    std::fs::write(srv.root().join("sub/file"), b"linked").expect("write");
    symlink(srv.root().join("sub"), srv.root().join("in_link")).expect("symlink");
    symlink("sub/file", srv.root().join("file_link")).expect("symlink");
    let mut c = srv.login();
    assert_eq!(c.retr("in_link/file"), b"linked");
    assert_eq!(c.retr("file_link"), b"linked");
    c.expect("CWD in_link", 250);
    assert_eq!(c.retr("file"), b"linked");
}

#[test]
fn symlink_loops_are_refused_without_hanging() {
    let srv = setup();
    symlink("loop_a", srv.root().join("loop_b")).expect("symlink");
    symlink("loop_b", srv.root().join("loop_a")).expect("symlink");
    let mut c = srv.login();
    c.expect("TYPE I", 200);
    let data = c.pasv();
    assert_eq!(c.cmd("RETR loop_a").0, 550);
    drop(data);
    assert_eq!(c.cmd("CWD loop_a").0, 550);
    assert_eq!(c.cmd("SIZE loop_b/x").0, 550);
    // LIST shows the links themselves.
    let listing = c.listing("LIST");
    assert!(listing.contains("loop_a -> loop_b"), "{listing}");
}

#[test]
fn rename_of_the_root_is_refused() {
    let srv = setup();
    let mut c = srv.login();
    assert_eq!(c.cmd("RNFR /").0, 550);
    assert_eq!(c.cmd("RMD /"), (550, "Can't remove root directory.".into()));
    assert_eq!(c.cmd("DELE /").0, 550);
    assert!(srv.root().join("marker").exists());
}

#[test]
fn a_symlink_loop_can_be_removed_and_renamed() {
    let srv = setup();
    symlink("self", srv.root().join("self")).expect("symlink");
    symlink("ring_b", srv.root().join("ring_a")).expect("symlink");
    symlink("ring_a", srv.root().join("ring_b")).expect("symlink");
    let mut c = srv.login();
    // Following a loop fails as the kernel says, not as an escape from the root.
    assert_eq!(
        c.cmd("CWD self"),
        (550, "Too many levels of symbolic links.".into())
    );
    assert_eq!(
        c.cmd("MKD self/x"),
        (550, "Too many levels of symbolic links.".into())
    );
    // The links themselves live inside the root: they can be renamed and removed.
    c.expect("RNFR ring_a", 350);
    c.expect("RNTO ring_c", 250);
    assert!(srv.root().join("ring_c").symlink_metadata().is_ok());
    c.expect("DELE ring_c", 250);
    c.expect("DELE ring_b", 250);
    c.expect("DELE self", 250);
    assert!(srv.root().join("self").symlink_metadata().is_err());
    assert!(srv.root().join("ring_b").symlink_metadata().is_err());
}

/// `setup()` plus an outside file of a size found nowhere else, links to it, and links
/// inside the root spelled in every way: what listings show of each.
fn setup_listed_links() -> (TestServer, std::fs::Metadata) {
    let srv = setup();
    let root = srv.root();
    let big = srv.outside().join("big");
    std::fs::write(&big, vec![b'x'; 54_321]).expect("write big");
    symlink(&big, root.join("big_link")).expect("symlink");
    symlink("../outside/big", root.join("big_rel")).expect("symlink");
    symlink(root.join("marker"), root.join("abs_in")).expect("symlink");
    symlink("../root/marker", root.join("climb_in")).expect("symlink");
    symlink("marker", root.join("rel_in")).expect("symlink");
    std::fs::create_dir(root.join("sub")).expect("mkdir");
    symlink("../marker", root.join("sub/up")).expect("symlink");
    let md = std::fs::metadata(&big).expect("stat big");
    (srv, md)
}

/// No real path (of the root or of the outside) and no fact of an outside file.
fn assert_reveals_nothing(srv: &TestServer, big: &std::fs::Metadata, what: &str, text: &str) {
    use std::os::unix::fs::MetadataExt;
    let base = srv.root().parent().expect("a parent").display().to_string();
    assert!(!text.contains(&base), "{what} shows a real path: {text}");
    assert!(
        !text.contains("/outside"),
        "{what} names the outside: {text}"
    );
    assert!(
        !text.contains("/root"),
        "{what} names the real root: {text}"
    );
    assert!(
        !text.contains("54321"),
        "{what} shows the outside size: {text}"
    );
    for md in [
        big,
        &std::fs::metadata(srv.outside()).expect("stat outside"),
    ] {
        let unique = format!("unique={:x}g{:x};", md.dev(), md.ino());
        assert!(
            !text.contains(&unique),
            "{what} shows an outside inode: {text}"
        );
    }
}

#[test]
fn listings_show_links_out_of_the_root_as_links() {
    let (srv, big) = setup_listed_links();
    let mut c = srv.login();
    let list = c.listing("LIST");
    assert_reveals_nothing(&srv, &big, "LIST", &list);
    for name in ["out_link", "secret_link", "etc_link", "big_link", "big_rel"] {
        let line = list
            .lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("LIST has no bare {name}: {list}"));
        assert!(line.starts_with('l'), "{line}");
    }
    let nlst = c.listing("NLST");
    assert_reveals_nothing(&srv, &big, "NLST", &nlst);
    assert!(nlst.lines().any(|l| l == "big_link"), "{nlst}");
    let mlsd = c.listing("MLSD");
    assert_reveals_nothing(&srv, &big, "MLSD", &mlsd);
    for name in ["out_link", "secret_link", "etc_link", "big_link", "big_rel"] {
        let line = mlsd
            .lines()
            .find(|l| l.ends_with(&format!("; {name}")))
            .unwrap_or_else(|| panic!("MLSD has no {name}: {mlsd}"));
        assert!(line.contains("type=OS.unix=symlink;"), "{line}");
        assert!(line.contains("perm=;"), "{line}");
        assert!(!line.contains("size="), "{line}");
    }
    let (code, stat) = c.cmd("STAT /");
    assert_eq!(code, 213, "{stat}");
    assert_reveals_nothing(&srv, &big, "STAT /", &stat);
    assert!(stat.lines().any(|l| l.ends_with(" big_link")), "{stat}");
    // Naming the link itself is refused, as before.
    for cmd in ["MLST big_link", "STAT big_link", "SIZE big_link"] {
        let (code, text) = c.cmd(cmd);
        assert_eq!(code, 550, "{cmd} got {text:?}");
        assert_reveals_nothing(&srv, &big, cmd, &text);
    }
}

#[test]
fn listings_show_links_inside_the_root_by_virtual_path() {
    let (srv, big) = setup_listed_links();
    let mut c = srv.login();
    let list = c.listing("LIST");
    assert_reveals_nothing(&srv, &big, "LIST", &list);
    for want in [
        " abs_in -> /marker",
        " climb_in -> /marker",
        " rel_in -> marker",
    ] {
        assert!(list.lines().any(|l| l.ends_with(want)), "{want}: {list}");
    }
    let sub = c.listing("LIST sub");
    assert!(
        sub.lines().any(|l| l.ends_with(" up -> ../marker")),
        "{sub}"
    );
    for cmd in ["STAT abs_in", "STAT /sub"] {
        let (code, text) = c.cmd(cmd);
        assert_eq!(code, 213, "{cmd} got {text:?}");
        assert_reveals_nothing(&srv, &big, cmd, &text);
    }
    assert!(c.cmd("STAT abs_in").1.contains(" abs_in -> /marker"));
    // MLSD and MLST describe a link inside by what it points to.
    let mlsd = c.listing("MLSD");
    for name in ["abs_in", "climb_in", "rel_in"] {
        let line = mlsd
            .lines()
            .find(|l| l.ends_with(&format!("; {name}")))
            .unwrap_or_else(|| panic!("MLSD has no {name}: {mlsd}"));
        assert!(line.contains("size=6;type=file;"), "{line}");
    }
    let (code, text) = c.cmd("MLST abs_in");
    assert_eq!(code, 250, "{text}");
    assert!(text.contains("size=6;type=file;"), "{text}");
    assert!(text.contains(" /abs_in\n"), "{text}");
    assert_reveals_nothing(&srv, &big, "MLST abs_in", &text);
}

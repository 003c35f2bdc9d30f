//! MemoryFs against the behaviour of the OS filesystem it stands in for: the same
//! errno for each refusal (the replies are built from them), the write modes of
//! STOR / APPE / REST+STOR, open files outliving their names, the quota, and views.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::filesystems::{FileKind, MLSX_FACTS_AVAILABLE};

fn errno(r: io::Result<impl fmt::Debug>) -> i32 {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e
            .raw_os_error()
            .unwrap_or_else(|| panic!("no errno in {e:?}")),
    }
}

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

/// `/a/f` (5 bytes "hello"), `/a/sub/`, `/b/` (empty).
fn fixture() -> MemoryFs {
    let mem = MemoryFs::new();
    mem.write_file("/a/f", b"hello").unwrap();
    mem.mkdir_all("/a/sub").unwrap();
    mem.mkdir_all("/b").unwrap();
    mem
}

fn read_all(f: &mut FsFile) -> Vec<u8> {
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    v
}

#[test]
fn helpers_write_read_and_make_parents() {
    let mem = MemoryFs::new();
    assert_eq!(mem.read_file("/x/y/z.txt"), None);
    mem.write_file("x/y/z.txt", b"abc").unwrap();
    assert_eq!(mem.read_file("/x/y/z.txt").unwrap(), b"abc");
    assert!(mem.is_dir(&p("/x/y")));
    // replaced, not appended
    mem.write_file("/x/y/z.txt", b"d").unwrap();
    assert_eq!(mem.read_file("/x/y/z.txt").unwrap(), b"d");
    // a directory is not a file
    assert_eq!(mem.read_file("/x"), None);
    assert_eq!(errno(mem.write_file("/x", b"")), libc::EISDIR);
    // a file is not a directory
    assert_eq!(errno(mem.write_file("/x/y/z.txt/w", b"")), libc::ENOTDIR);
    assert_eq!(errno(mem.mkdir_all("/x/y/z.txt")), libc::EEXIST);
    mem.mkdir_all("/x/y").unwrap();
    // `..` never climbs above the root
    mem.write_file("/../../top", b"t").unwrap();
    assert_eq!(mem.read_file("/top").unwrap(), b"t");
    assert_eq!(mem.used_bytes(), 2);
}

#[test]
fn clones_share_contents_but_not_the_cwd() {
    let mem = MemoryFs::new();
    mem.mkdir_all("/d").unwrap();
    let mut other = mem.clone();
    other.chdir(&p("/d")).unwrap();
    assert_eq!(other.cwd(), "/d");
    assert_eq!(mem.cwd(), "/");
    other.write_file("/d/f", b"1").unwrap();
    assert_eq!(mem.read_file("/d/f").unwrap(), b"1");
    // a session made for the server starts at `/`
    assert_eq!(other.session().cwd(), "/");
}

#[test]
fn path_mapping_is_that_of_a_chroot_at_slash() {
    let mut mem = fixture();
    assert_eq!(mem.root(), Path::new("/"));
    assert_eq!(mem.ftp2fs("a/../a/f"), p("/a/f"));
    assert_eq!(mem.ftp2fs("../../.."), p("/"));
    mem.chdir(&p("/a")).unwrap();
    assert_eq!(mem.ftp2fs("sub"), p("/a/sub"));
    assert_eq!(mem.fs2ftp(&p("/a/sub/")), "/a/sub");
    assert_eq!(mem.fs2ftp(&p("/a/../..")), "/");
    assert!(mem.validpath(&p("/anything/at/all")));
    assert_eq!(mem.realpath(&p("/a/./sub/..")).unwrap(), p("/a"));
}

#[test]
fn views_are_rooted_below() {
    let mem = fixture();
    let mut v = mem.view("/a").unwrap();
    assert_eq!(v.root(), Path::new("/a"));
    assert_eq!(v.ftp2fs("/f"), p("/a/f"));
    assert_eq!(v.ftp2fs("../../b"), p("/a/b"));
    assert_eq!(v.fs2ftp(&p("/a/sub")), "/sub");
    assert_eq!(v.fs2ftp(&p("/b")), "/");
    assert!(v.validpath(&p("/a/sub/new")));
    assert!(!v.validpath(&p("/b")));
    assert!(!v.validpath(&p("/a/../b")));
    let sub = v.ftp2fs("sub");
    v.chdir(&sub).unwrap();
    assert_eq!(v.cwd(), "/sub");
    // helpers of a view are relative to its root
    v.write_file("/new", b"n").unwrap();
    assert_eq!(mem.read_file("/a/new").unwrap(), b"n");
    assert_eq!(v.read_file("/f").unwrap(), b"hello");
    // STOU outside the view is refused as for AbstractedFs
    assert_eq!(errno(v.create_unique(&p("/b"), "x.")), libc::EACCES);
    assert_eq!(errno(mem.view("/missing")), libc::ENOENT);
    assert_eq!(errno(mem.view("/a/f")), libc::ENOTDIR);
}

#[test]
fn stat_reports_kind_size_mode_links_and_owner() {
    let mem = fixture();
    let f = mem.stat(&p("/a/f")).unwrap();
    assert_eq!(
        (f.kind, f.size, f.st_mode(), f.nlink),
        (FileKind::File, 5, 0o100_644, 1)
    );
    assert_eq!((f.uid, f.gid), (sys::effective_uid(), sys::effective_gid()));
    let a = mem.stat(&p("/a")).unwrap();
    // `.`, the entry in `/`, and `sub`'s `..`
    assert_eq!(
        (a.kind, a.st_mode(), a.nlink),
        (FileKind::Dir, 0o040_755, 3)
    );
    assert_eq!(mem.lstat(&p("/a")).unwrap(), a);
    assert_ne!(f.ino, a.ino);
    assert_eq!(f.dev, a.dev);
    assert_ne!(MemoryFs::new().stat(&p("/")).unwrap().dev, f.dev);
    assert!(mem.is_file(&p("/a/f")) && !mem.is_dir(&p("/a/f")));
    assert!(mem.lexists(&p("/a/sub")) && !mem.lexists(&p("/a/nope")));
    assert_eq!(errno(mem.stat(&p("/a/nope"))), libc::ENOENT);
    // a file in the middle of a path, as the kernel reports it
    assert_eq!(errno(mem.stat(&p("/a/f/x"))), libc::ENOTDIR);
    assert_eq!(errno(mem.stat(&p("/a/f/.."))), libc::ENOTDIR);
    assert_eq!(mem.stat(&p("/a/sub/../f")).unwrap().size, 5);
    assert_eq!(
        errno(mem.stat(&p(&format!("/{}", "n".repeat(256))))),
        libc::ENAMETOOLONG
    );
    let nul = mem.stat(&p("/a\0b")).unwrap_err();
    assert_eq!(nul.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn chmod_and_times() {
    let mem = fixture();
    mem.chmod(&p("/a/f"), 0o4600).unwrap();
    assert_eq!(mem.stat(&p("/a/f")).unwrap().st_mode(), 0o104_600);
    let t = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    mem.set_mtime(&p("/a/f"), t).unwrap();
    let st = mem.stat(&p("/a/f")).unwrap();
    assert_eq!((st.mtime, st.atime), (t, t));
    // before the epoch, as MFMT allows
    let old = UNIX_EPOCH - Duration::from_secs(86_400);
    mem.set_mtime(&p("/a"), old).unwrap();
    assert_eq!(mem.stat(&p("/a")).unwrap().mtime, old);
    assert_eq!(errno(mem.chmod(&p("/nope"), 0o600)), libc::ENOENT);
    assert_eq!(errno(mem.set_mtime(&p("/nope"), t)), libc::ENOENT);
}

#[test]
fn writing_touches_the_file_and_its_directory() {
    let mem = fixture();
    let t = UNIX_EPOCH + Duration::from_secs(1_000);
    mem.set_mtime(&p("/b"), t).unwrap();
    mem.write_file("/b/new", b"x").unwrap();
    assert!(mem.stat(&p("/b")).unwrap().mtime > t);
    mem.set_mtime(&p("/b/new"), t).unwrap();
    mem.open_write(&p("/b/new"), WriteMode::Append)
        .unwrap()
        .write_all(b"y")
        .unwrap();
    assert!(mem.stat(&p("/b/new")).unwrap().mtime > t);
}

#[test]
fn listdir_is_sorted_and_checks_its_argument() {
    let mem = fixture();
    mem.write_file("/a/0", b"").unwrap();
    assert_eq!(mem.listdir(&p("/a")).unwrap(), ["0", "f", "sub"]);
    assert_eq!(mem.listdir(&p("/")).unwrap(), ["a", "b"]);
    assert!(mem.listdir(&p("/b")).unwrap().is_empty());
    assert_eq!(errno(mem.listdir(&p("/a/f"))), libc::ENOTDIR);
    assert_eq!(errno(mem.listdir(&p("/c"))), libc::ENOENT);
}

#[test]
fn directory_errors_match_the_os() {
    let mem = fixture();
    assert_eq!(errno(mem.mkdir(&p("/a"))), libc::EEXIST);
    assert_eq!(errno(mem.mkdir(&p("/a/f"))), libc::EEXIST);
    assert_eq!(errno(mem.mkdir(&p("/"))), libc::EEXIST);
    assert_eq!(errno(mem.mkdir(&p("/c/d"))), libc::ENOENT);
    assert_eq!(errno(mem.mkdir(&p("/a/f/d"))), libc::ENOTDIR);
    assert_eq!(errno(mem.rmdir(&p("/a"))), libc::ENOTEMPTY);
    assert_eq!(errno(mem.rmdir(&p("/a/f"))), libc::ENOTDIR);
    assert_eq!(errno(mem.rmdir(&p("/c"))), libc::ENOENT);
    assert_eq!(errno(mem.rmdir(&p("/"))), libc::EBUSY);
    assert_eq!(errno(mem.remove(&p("/a/sub"))), libc::EISDIR);
    assert_eq!(errno(mem.remove(&p("/a/nope"))), libc::ENOENT);
    assert_eq!(errno(mem.readlink(&p("/a/f"))), libc::EINVAL);
    assert_eq!(errno(mem.readlink(&p("/a/nope"))), libc::ENOENT);
    let mut s = mem.clone();
    assert_eq!(errno(s.chdir(&p("/a/f"))), libc::ENOTDIR);
    assert_eq!(errno(s.chdir(&p("/nope"))), libc::ENOENT);
    assert_eq!(s.cwd(), "/");
    mem.rmdir(&p("/a/sub")).unwrap();
    mem.remove(&p("/a/f")).unwrap();
    mem.rmdir(&p("/a")).unwrap();
    assert_eq!(mem.listdir(&p("/")).unwrap(), ["b"]);
    assert_eq!(mem.used_bytes(), 0);
}

#[test]
fn open_errors_match_the_os() {
    let mem = fixture();
    assert_eq!(errno(mem.open_read(&p("/a"))), libc::EISDIR);
    assert_eq!(errno(mem.open_read(&p("/a/nope"))), libc::ENOENT);
    for mode in [WriteMode::Truncate, WriteMode::Append, WriteMode::At(0)] {
        assert_eq!(errno(mem.open_write(&p("/a"), mode)), libc::EISDIR);
        assert_eq!(errno(mem.open_write(&p("/"), mode)), libc::EISDIR);
        assert_eq!(errno(mem.open_write(&p("/c/x"), mode)), libc::ENOENT);
        assert_eq!(errno(mem.open_write(&p("/a/f/x"), mode)), libc::ENOTDIR);
    }
    // REST+STOR needs an existing file
    assert_eq!(
        errno(mem.open_write(&p("/a/g"), WriteMode::At(0))),
        libc::ENOENT
    );
    assert!(!mem.lexists(&p("/a/g")));
}

#[test]
fn write_modes_of_stor_appe_and_rest() {
    let mem = MemoryFs::new();
    let f = p("/f");
    mem.open_write(&f, WriteMode::Truncate)
        .unwrap()
        .write_all(b"hello")
        .unwrap();
    mem.open_write(&f, WriteMode::Append)
        .unwrap()
        .write_all(b" world")
        .unwrap();
    assert_eq!(mem.read_file("/f").unwrap(), b"hello world");
    mem.open_write(&f, WriteMode::At(6))
        .unwrap()
        .write_all(b"WORLD")
        .unwrap();
    assert_eq!(mem.read_file("/f").unwrap(), b"hello WORLD");
    mem.open_write(&f, WriteMode::Truncate)
        .unwrap()
        .write_all(b"x")
        .unwrap();
    assert_eq!(mem.read_file("/f").unwrap(), b"x");
    // APPE creates, and appends even after a seek
    let mut g = mem.open_write(&p("/g"), WriteMode::Append).unwrap();
    g.write_all(b"ab").unwrap();
    g.seek(SeekFrom::Start(0)).unwrap();
    g.write_all(b"cd").unwrap();
    assert_eq!(mem.read_file("/g").unwrap(), b"abcd");
    // a write-only file cannot be read, a read-only one not written
    assert_eq!(errno(g.read(&mut [0; 4])), libc::EBADF);
    let mut r = mem.open_read(&p("/g")).unwrap();
    assert_eq!(errno(r.write(b"z")), libc::EBADF);
    // a write past the end leaves zeros, as a sparse file reads
    let mut h = mem.open_write(&p("/g"), WriteMode::At(6)).unwrap();
    h.write_all(b"!").unwrap();
    assert_eq!(mem.read_file("/g").unwrap(), b"abcd\0\0!");
    assert_eq!(h.size().unwrap(), 7);
    assert_eq!(mem.used_bytes(), 1 + 7);
}

#[test]
fn read_seek_and_size() {
    let mem = fixture();
    let mut f = mem.open_read(&p("/a/f")).unwrap();
    assert!(f.as_os().is_none(), "memory files take the buffered path");
    assert_eq!(f.size().unwrap(), 5);
    assert_eq!(f.seek(SeekFrom::Start(1)).unwrap(), 1);
    let mut two = [0; 2];
    assert_eq!(f.read(&mut two).unwrap(), 2);
    assert_eq!(&two, b"el");
    assert_eq!(f.seek(SeekFrom::Current(1)).unwrap(), 4);
    assert_eq!(read_all(&mut f), b"o");
    assert_eq!(f.seek(SeekFrom::End(-5)).unwrap(), 0);
    assert_eq!(errno(f.seek(SeekFrom::Current(-1))), libc::EINVAL);
    // past the end: reads nothing
    f.seek(SeekFrom::Start(100)).unwrap();
    assert_eq!(f.read(&mut two).unwrap(), 0);
}

#[test]
fn an_open_file_outlives_its_name() {
    let mem = fixture();
    let mut reading = mem.open_read(&p("/a/f")).unwrap();
    mem.remove(&p("/a/f")).unwrap();
    assert!(!mem.lexists(&p("/a/f")));
    // still counted: a download of a removed file goes on, as on Linux
    assert_eq!(mem.used_bytes(), 5);
    assert_eq!(read_all(&mut reading), b"hello");
    drop(reading);
    assert_eq!(mem.used_bytes(), 0);
    // and an upload goes on into a file renamed meanwhile
    let mut up = mem.open_write(&p("/b/up"), WriteMode::Truncate).unwrap();
    up.write_all(b"12").unwrap();
    // visible to everyone before the upload ends
    assert_eq!(mem.read_file("/b/up").unwrap(), b"12");
    mem.rename(&p("/b/up"), &p("/b/moved")).unwrap();
    up.write_all(b"34").unwrap();
    drop(up);
    assert_eq!(mem.read_file("/b/moved").unwrap(), b"1234");
}

#[test]
fn rename_follows_the_os_rules() {
    let mem = fixture();
    mem.write_file("/b/g", b"gg").unwrap();
    // file over file: replaced, its bytes freed
    mem.rename(&p("/b/g"), &p("/a/f")).unwrap();
    assert_eq!(mem.read_file("/a/f").unwrap(), b"gg");
    assert_eq!(mem.used_bytes(), 2);
    // onto itself: nothing happens
    mem.rename(&p("/a/f"), &p("/a/f")).unwrap();
    assert_eq!(mem.read_file("/a/f").unwrap(), b"gg");
    assert_eq!(errno(mem.rename(&p("/a/f"), &p("/a/sub"))), libc::EISDIR);
    assert_eq!(errno(mem.rename(&p("/a/sub"), &p("/a/f"))), libc::ENOTDIR);
    assert_eq!(errno(mem.rename(&p("/b"), &p("/a"))), libc::ENOTEMPTY);
    assert_eq!(errno(mem.rename(&p("/a"), &p("/a/sub/a"))), libc::EINVAL);
    assert_eq!(errno(mem.rename(&p("/nope"), &p("/x"))), libc::ENOENT);
    assert_eq!(errno(mem.rename(&p("/a/f"), &p("/c/x"))), libc::ENOENT);
    assert_eq!(errno(mem.rename(&p("/"), &p("/x"))), libc::EBUSY);
    // directory over an empty directory: replaced, contents travel
    mem.rename(&p("/a"), &p("/b")).unwrap();
    assert_eq!(mem.listdir(&p("/")).unwrap(), ["b"]);
    assert_eq!(mem.read_file("/b/f").unwrap(), b"gg");
    assert!(mem.is_dir(&p("/b/sub")));
    // and to a new name elsewhere
    mem.rename(&p("/b/sub"), &p("/sub2")).unwrap();
    assert_eq!(mem.stat(&p("/b")).unwrap().nlink, 2);
}

#[test]
fn create_unique_makes_private_distinct_files() {
    let mem = fixture();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let (path, mut f) = mem.create_unique(&p("/b"), "ftpd.").unwrap();
        f.write_all(b"u").unwrap();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name.starts_with("ftpd.") && name.len() == "ftpd.".len() + 8);
        assert_eq!(path.parent(), Some(Path::new("/b")));
        assert_eq!(mem.stat(&path).unwrap().st_mode(), 0o100_600);
        assert!(seen.insert(name));
    }
    assert_eq!(mem.listdir(&p("/b")).unwrap().len(), 20);
    assert_eq!(errno(mem.create_unique(&p("/b"), "../x.")), libc::EINVAL);
    assert_eq!(errno(mem.create_unique(&p("/c"), "x.")), libc::ENOENT);
    assert_eq!(errno(mem.create_unique(&p("/a/f"), "x.")), libc::ENOTDIR);
}

#[test]
fn quota_gives_short_writes_then_enospc() {
    let mem = MemoryFs::with_capacity(10);
    assert_eq!(mem.capacity(), Some(10));
    mem.write_file("/a", b"12345678").unwrap();
    let mut f = mem.open_write(&p("/b"), WriteMode::Truncate).unwrap();
    assert_eq!(f.write(b"abcde").unwrap(), 2);
    assert_eq!(errno(f.write(b"c")), libc::ENOSPC);
    // an empty write is never refused
    assert_eq!(f.write(b"").unwrap(), 0);
    // overwriting in place needs no room
    f.seek(SeekFrom::Start(0)).unwrap();
    assert_eq!(f.write(b"AB").unwrap(), 2);
    drop(f);
    assert_eq!(mem.read_file("/b").unwrap(), b"AB");
    assert_eq!(errno(mem.write_file("/c", b"x")), libc::ENOSPC);
    // removing and truncating give the room back
    mem.remove(&p("/a")).unwrap();
    mem.write_file("/c", b"1234").unwrap();
    mem.write_file("/b", b"").unwrap();
    assert_eq!(mem.used_bytes(), 4);
    mem.write_file("/d", b"123456").unwrap();
    assert_eq!(mem.used_bytes(), 10);
}

#[test]
fn listings_are_built_from_memory_metadata() {
    let mem = fixture();
    let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    mem.set_mtime(&p("/a/f"), t).unwrap();
    mem.set_mtime(&p("/a/sub"), t).unwrap();
    let names: Vec<OsString> = ["f", "sub", "missing"].iter().map(OsString::from).collect();
    let mut out = Vec::new();
    mem.format_list(
        &p("/a"),
        &names,
        true,
        t + Duration::from_secs(60),
        &mut out,
    );
    let uid = sys::effective_uid();
    let gid = sys::effective_gid();
    let user = sys::user_name(uid).unwrap_or_else(|| uid.to_string());
    let group = sys::group_name(gid).unwrap_or_else(|| gid.to_string());
    let want = format!(
        "-rw-r--r--   1 {user:<8} {group:<8}        5 Nov 14 22:13 f\r\n\
         drwxr-xr-x   2 {user:<8} {group:<8}        0 Nov 14 22:13 sub\r\n"
    );
    assert_eq!(String::from_utf8(out).unwrap(), want);
    let mut out = Vec::new();
    mem.format_mlsx(
        &p("/a"),
        &names[..2],
        "elradfmwMT",
        MLSX_FACTS_AVAILABLE,
        false,
        true,
        &mut out,
    )
    .unwrap();
    let (f, sub) = (
        mem.stat(&p("/a/f")).unwrap(),
        mem.stat(&p("/a/sub")).unwrap(),
    );
    let want = format!(
        "modify=20231114221320;perm=radfwMT;size=5;type=file;unique={:x}g{:x};\
         unix.gid={gid};unix.mode=0644;unix.uid={uid}; f\r\n\
         modify=20231114221320;perm=eldfmMTcp;size=0;type=dir;unique={:x}g{:x};\
         unix.gid={gid};unix.mode=0755;unix.uid={uid}; sub\r\n",
        f.dev, f.ino, sub.dev, sub.ino
    );
    assert_eq!(String::from_utf8(out).unwrap(), want);
}

#[test]
fn served_through_the_trait_object() {
    let mem = fixture();
    let mut boxed: Box<dyn FileSystem> = Box::new(mem.session());
    let sub = boxed.ftp2fs("/a/sub");
    boxed.chdir(&sub).unwrap();
    assert_eq!(boxed.cwd(), "/a/sub");
    let target = boxed.ftp2fs("up.bin");
    let mut f = boxed.open_write(&target, WriteMode::Truncate).unwrap();
    f.write_all(&[7; 1000]).unwrap();
    drop(f);
    assert_eq!(mem.read_file("/a/sub/up.bin").unwrap(), vec![7; 1000]);
}

// ftruncate(2) semantics for REST + STOR: the file ends where the upload ends, the cut
// bytes leave the quota, and growing is bounded by it.
#[test]
fn set_len_cuts_and_grows_within_the_quota() {
    let mem = MemoryFs::with_capacity(12);
    mem.write_file("/f", b"0123456789").unwrap();
    let mut f = mem.open_write(&p("/f"), WriteMode::At(4)).unwrap();
    f.write_all(b"ab").unwrap();
    f.set_len(6).unwrap();
    drop(f);
    assert_eq!(mem.read_file("/f").unwrap(), b"0123ab");
    // The 4 bytes cut are free again: 6 + 6 fit in 12.
    mem.write_file("/g", b"123456").unwrap();
    let mut f = mem.open_write(&p("/f"), WriteMode::At(0)).unwrap();
    assert_eq!(errno(f.set_len(7)), libc::ENOSPC);
    f.set_len(2).unwrap();
    f.set_len(6).unwrap();
    drop(f);
    assert_eq!(mem.read_file("/f").unwrap(), b"01\0\0\0\0");
    // A file opened for reading cannot be cut.
    let mut r = mem.open_read(&p("/f")).unwrap();
    assert_eq!(errno(r.set_len(0)), libc::EBADF);
}

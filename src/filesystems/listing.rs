//! Listing output generated in-house (no `ls`, no globbing): the `ls -l` lines of
//! LIST/STAT and the RFC 3659 fact lines of MLSD/MLST, byte for byte as pyftpdlib,
//! except for symlinks: a listing never shows what lies outside the root, nor the real
//! path of the root (see [`listed_link_target`] and [`Described`]).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use super::{ops, FileKind, FileStat, FileSystem};
use crate::{sys, timefmt};

/// Memoized uid/gid → name lookups (the user database can be slow: NSS, LDAP).
#[derive(Debug, Default)]
pub(super) struct IdNames {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl IdNames {
    /// The user name for `uid`, or the number when the user database has none.
    fn user(&mut self, uid: u32) -> &str {
        if self.users.len() >= MAX_CACHED && !self.users.contains_key(&uid) {
            self.users.clear();
        }
        self.users
            .entry(uid)
            .or_insert_with(|| sys::user_name(uid).unwrap_or_else(|| uid.to_string()))
    }

    /// The group name for `gid`, or the number when the group database has none.
    fn group(&mut self, gid: u32) -> &str {
        if self.groups.len() >= MAX_CACHED && !self.groups.contains_key(&gid) {
            self.groups.clear();
        }
        self.groups
            .entry(gid)
            .or_insert_with(|| sys::group_name(gid).unwrap_or_else(|| gid.to_string()))
    }
}

/// Appends one `ls -l` line per entry of `names` (in the given order) to `out`; see
/// [`FileSystem::format_list`]. Entries whose `lstat` fails are skipped; a symlink shows
/// `-> target` as [`listed_link_target`] decides. `dir` is `basedir` open beneath the
/// root, when the view opened it (see [`lstat_entry`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn format_list<F: FileSystem + ?Sized>(
    fs: &F,
    dir: Option<BorrowedFd<'_>>,
    ids: &mut IdNames,
    basedir: &Path,
    names: &[OsString],
    use_gmt: bool,
    now: SystemTime,
    out: &mut Vec<u8>,
) {
    for name in names {
        let path = basedir.join(name);
        let Ok(st) = lstat_entry(fs, dir, &path, name) else {
            continue;
        };
        let nlink = match st.nlink {
            0 => 1,
            n => n,
        };
        let date = timefmt::list_date(st.mtime, now, use_gmt);
        // A symlink's size is the length of its target text: shown as the length of the
        // target that is listed (0 when none is), so that it gives away nothing of a
        // target that is not shown, such as the length of a path outside the root.
        let target = st
            .is_symlink()
            .then(|| listed_link_target(fs, &path))
            .flatten();
        let size = match (&target, st.is_symlink()) {
            (Some(target), true) => target.as_os_str().len() as u64,
            (None, true) => 0,
            (Some(_) | None, false) => st.size,
        };
        // Writing into a Vec cannot fail.
        // pyftpdlib: "%s %3s %-8s %-8s %8s %s %s\r\n"
        let _ = write!(
            out,
            "{} {:>3} {:<8} ",
            filemode(st.st_mode()),
            nlink,
            ids.user(st.uid)
        );
        let _ = write!(out, "{:<8} {:>8} {} ", ids.group(st.gid), size, date);
        out.extend_from_slice(name.as_bytes());
        if let Some(target) = target {
            out.extend_from_slice(b" -> ");
            out.extend_from_slice(target.as_os_str().as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends one MLSx fact line per entry of `names` to `out`; see
/// [`FileSystem::format_mlsx`]; `dir` as for [`format_list`].
#[allow(clippy::too_many_arguments)]
pub(super) fn format_mlsx<F: FileSystem + ?Sized>(
    fs: &F,
    dir: Option<BorrowedFd<'_>>,
    basedir: &Path,
    names: &[OsString],
    perms: &str,
    facts: &[&str],
    ignore_err: bool,
    use_gmt: bool,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let (perm_dir, perm_file) = mlsx_perms(perms);
    let show = |fact: &str| facts.contains(&fact);
    let mut line: Vec<(&str, String)> = Vec::with_capacity(8);
    for name in names {
        let path = basedir.join(name);
        let (st, outward) = match Described::entry(fs, lstat_entry(fs, dir, &path, name), &path) {
            Ok(Described::Object(st)) => (st, false),
            Ok(Described::LinkOut(st)) => (st, true),
            Err(_) if ignore_err => continue,
            Err(e) => return Err(e),
        };
        line.clear();
        let is_dir = st.is_dir();
        if show("type") {
            let kind = match (outward, is_dir, name.as_bytes()) {
                // RFC 3659 §7.5.1 lets a server name an OS-specific type; this spelling
                // follows the fact grammar (the RFC's example adds `:target`, which is
                // exactly what must not be shown).
                (true, _, _) => "OS.unix=symlink",
                (false, true, b".") => "cdir",
                (false, true, b"..") => "pdir",
                (false, true, _) => "dir",
                (false, false, _) => "file",
            };
            line.push(("type", kind.to_owned()));
        }
        if show("perm") {
            let p = match (outward, is_dir) {
                // Every command that names the link is refused as leaving the root.
                (true, _) => "",
                (false, true) => perm_dir.as_str(),
                (false, false) => perm_file.as_str(),
            };
            line.push(("perm", p.to_owned()));
        }
        // A link's own size is the length of its target's path: nothing to download,
        // and a hint about what is hidden.
        if show("size") && !outward {
            line.push(("size", st.size.to_string()));
        }
        if show("modify") {
            // A time beyond year 9999 (or before year 0) has no time-val: no fact.
            if let Some(modify) = timefmt::mdtm_checked(st.mtime, use_gmt) {
                line.push(("modify", modify));
            }
        }
        if show("unix.mode") {
            // C's octal form with a leading 0 (`0755`), as proftpd writes it and
            // clients parse it; Python's `0o755`, which pyftpdlib sends, reads as 0 to
            // `strtol` (lftp mirrors such files as mode 000).
            line.push(("unix.mode", unix_mode(st.mode)));
        }
        if show("unix.uid") {
            line.push(("unix.uid", st.uid.to_string()));
        }
        if show("unix.gid") {
            line.push(("unix.gid", st.gid.to_string()));
        }
        if show("unique") {
            line.push(("unique", format!("{:x}g{:x}", st.dev, st.ino)));
        }
        line.sort_unstable_by_key(|(k, _)| *k);
        for (k, v) in &line {
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
            out.push(b';');
        }
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    Ok(())
}

/// What an MLSx line describes.
enum Described {
    /// The object at the path, with links followed (`stat`): RFC 3659 §7.5.2 wants
    /// `unique` to identify the object itself, and a client can use a link inside the
    /// root as what it points to.
    Object(FileStat),
    /// A symlink that leads out of the root, described as itself (`lstat`): its target
    /// is never stat'ed, so neither the target's facts nor whether it exists show.
    LinkOut(FileStat),
}

impl Described {
    /// `lstat` first, then `stat` only for a link that stays inside the root.
    ///
    /// # Errors
    /// The error of `lstat`, or of `stat` for a link inside the root (dangling, a loop).
    fn entry<F: FileSystem + ?Sized>(
        fs: &F,
        lstat: io::Result<FileStat>,
        path: &Path,
    ) -> io::Result<Described> {
        let st = lstat?;
        if !st.is_symlink() {
            return Ok(Described::Object(st));
        }
        if fs.validpath(path) {
            fs.stat(path).map(Described::Object)
        } else {
            Ok(Described::LinkOut(st))
        }
    }
}

/// The `lstat` of the entry `name` of a listed directory: with `dir` (the directory open
/// beneath the root, which the view opened once for the listing) one `fstatat` of the
/// name in it, which names the entry itself and cannot leave the directory; else the
/// view's own [`FileSystem::lstat`] of `path`, which resolves it from the root each time.
fn lstat_entry<F: FileSystem + ?Sized>(
    fs: &F,
    dir: Option<BorrowedFd<'_>>,
    path: &Path,
    name: &OsStr,
) -> io::Result<FileStat> {
    let mut parts = Path::new(name).components();
    let single = matches!(
        (parts.next(), parts.next()),
        (Some(Component::Normal(_)), None)
    );
    match dir {
        Some(dir) if single => ops::lstat_in(dir, Path::new(name)),
        Some(_) | None => fs.lstat(path),
    }
}

/// What LIST shows after ` -> ` for the symlink at `link`, or `None` to show the link
/// alone:
/// - nothing when the link leads out of the root (or its target cannot be read): the
///   target's path would describe the server's tree outside the user's view;
/// - the target as stored when following it one component at a time never leaves the
///   root (a relative link within the tree; any link when the root is `/`), so that
///   clients mirroring links recreate them as they are;
/// - otherwise (an absolute target, which spells the real path of the root, or a
///   relative one that passes above the root on its way back), the virtual path of
///   what the link names ([`FileSystem::fs2ftp`]).
fn listed_link_target<F: FileSystem + ?Sized>(fs: &F, link: &Path) -> Option<PathBuf> {
    if !fs.validpath(link) {
        return None;
    }
    let target = fs.readlink(link).ok()?;
    let dir = link.parent()?;
    if stays_inside(fs, dir, &target) {
        return Some(target);
    }
    // Where the target is, without following its last component (which may be a link
    // of its own: the listing names the link, as `ls -l` does).
    let joined = dir.join(&target);
    let real = match (joined.parent(), joined.file_name()) {
        (Some(parent), Some(name)) => fs.realpath(parent).ok()?.join(name),
        (None, _) | (_, None) => fs.realpath(&joined).ok()?,
    };
    fs.validpath(&real).then(|| PathBuf::from(fs.fs2ftp(&real)))
}

/// Whether following `target` from `dir` one component at a time stays inside the root.
/// Checked at `/` for an absolute target, after each `..` and at each symlink met on
/// the way; a plain name below a directory inside the root is inside too. A target that
/// needs more than [`MAX_LINK_CHECKS`] checks counts as leaving (its virtual path is
/// shown instead), which bounds the work a crafted link costs a listing.
fn stays_inside<F: FileSystem + ?Sized>(fs: &F, dir: &Path, target: &Path) -> bool {
    let mut checks = 0;
    let mut inside = |p: &Path| {
        checks += 1;
        checks <= MAX_LINK_CHECKS && fs.validpath(p)
    };
    let mut at = if target.is_absolute() {
        PathBuf::from("/")
    } else {
        dir.to_path_buf()
    };
    if target.is_absolute() && !inside(&at) {
        return false;
    }
    for c in target.components() {
        let check = match c {
            Component::Normal(name) => {
                at.push(name);
                fs.lstat(&at).is_ok_and(|st| st.is_symlink())
            }
            Component::ParentDir => {
                at.push("..");
                true
            }
            Component::RootDir | Component::CurDir => false,
            // Not produced by Unix paths.
            Component::Prefix(_) => return false,
        };
        if check && !inside(&at) {
            return false;
        }
    }
    true
}

/// The `perm` fact for directories and for files, derived from the user's letters as
/// pyftpdlib does: directories drop `a`, `r`, `w` and gain `c` (create) if any of
/// `w`/`a`/`f` is held and `p` (purge) if `d` is; files drop `c`, `e`, `l`, `m`, `p`.
pub(crate) fn mlsx_perms(perms: &str) -> (String, String) {
    let mut dir: String = perms.chars().filter(|c| !"arw".contains(*c)).collect();
    let file: String = perms.chars().filter(|c| !"celmp".contains(*c)).collect();
    if perms.contains(['w', 'a', 'f']) {
        dir.push('c');
    }
    if perms.contains('d') {
        dir.push('p');
    }
    (dir, file)
}

/// The `ls -l` mode column, as Python's `stat.filemode` (C implementation): file type
/// letter (`?` if unknown), then rwx triplets with setuid/setgid `s`/`S` and sticky
/// `t`/`T`.
pub(crate) fn filemode(mode: u32) -> String {
    let kind = match FileKind::from_mode(mode) {
        FileKind::File => '-',
        FileKind::Dir => 'd',
        FileKind::Symlink => 'l',
        FileKind::BlockDevice => 'b',
        FileKind::CharDevice => 'c',
        FileKind::Fifo => 'p',
        FileKind::Socket => 's',
        FileKind::Other => '?',
    };
    let bit = |mask: u32, c: char| if mode & mask != 0 { c } else { '-' };
    let exec =
        |x: u32, special: u32, on: char, off: char| match (mode & x != 0, mode & special != 0) {
            (true, true) => on,
            (false, true) => off,
            (true, false) => 'x',
            (false, false) => '-',
        };
    [
        kind,
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        exec(0o100, 0o4000, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        exec(0o010, 0o2000, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        exec(0o001, 0o1000, 't', 'T'),
    ]
    .iter()
    .collect()
}

/// Keep at most this many names per cache; a listing rarely shows more than a few.
const MAX_CACHED: usize = 256;

/// Containment checks spent on one link target in [`stays_inside`]; real targets need a
/// few (one per `..` or link on the way).
const MAX_LINK_CHECKS: usize = 16;

/// The `unix.mode` fact: the permission bits in octal with a leading 0, four digits.
fn unix_mode(mode: u32) -> String {
    format!("{:04o}", mode & 0o777)
}

#[cfg(test)]
mod tests {
    use std::fs::{self, Metadata};
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::filesystems::{AbstractedFs, MLSX_FACTS_AVAILABLE, MLSX_FACTS_DEFAULT};

    const DAY: u64 = 86_400;

    struct Fixture {
        _tmp: tempfile::TempDir,
        fs: AbstractedFs,
        now: SystemTime,
    }

    /// root/ with `file` (5 bytes, 0644), `dir` (0755) and `link -> file`, all with
    /// mtime 2023-11-13 22:13:20 UTC; "now" is one day later.
    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let mtime = UNIX_EPOCH + Duration::from_secs(1_700_000_000 - DAY);
        let file = root.join("file");
        fs::write(&file, b"hello").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        fs::create_dir(root.join("dir")).unwrap();
        fs::set_permissions(root.join("dir"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("file", root.join("link")).unwrap();
        let afs = AbstractedFs::new(root).unwrap();
        afs.set_mtime(&afs.root().join("file"), mtime).unwrap();
        afs.set_mtime(&afs.root().join("dir"), mtime).unwrap();
        Fixture {
            _tmp: tmp,
            fs: afs,
            now: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        }
    }

    fn names(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn owner_group(md: &Metadata) -> (String, String) {
        let u = sys::user_name(md.uid()).unwrap_or_else(|| md.uid().to_string());
        let g = sys::group_name(md.gid()).unwrap_or_else(|| md.gid().to_string());
        (u, g)
    }

    fn list(f: &Fixture, entries: &[&str]) -> String {
        let mut out = Vec::new();
        f.fs.format_list(f.fs.root(), &names(entries), true, f.now, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn list_line_for_file() {
        let f = fixture();
        let md = fs::metadata(f.fs.root().join("file")).unwrap();
        let (u, g) = owner_group(&md);
        let want = format!("-rw-r--r--   1 {u:<8} {g:<8}        5 Nov 13 22:13 file\r\n");
        assert_eq!(list(&f, &["file"]), want);
    }

    #[test]
    fn list_line_for_dir() {
        let f = fixture();
        let md = fs::metadata(f.fs.root().join("dir")).unwrap();
        let (u, g) = owner_group(&md);
        let want = format!(
            "drwxr-xr-x {:>3} {u:<8} {g:<8} {:>8} Nov 13 22:13 dir\r\n",
            md.nlink(),
            md.size()
        );
        assert_eq!(list(&f, &["dir"]), want);
    }

    #[test]
    fn list_line_for_symlink() {
        let f = fixture();
        let out = list(&f, &["link"]);
        assert!(out.starts_with("lrwxrwxrwx   1 "), "{out}");
        assert!(out.ends_with(" link -> file\r\n"), "{out}");
        // the size column is the link's own size (lstat): len("file")
        assert!(out.contains("        4 "), "{out}");
    }

    #[test]
    fn list_keeps_order_and_skips_missing() {
        let f = fixture();
        let out = list(&f, &["link", "missing", "file", "dir"]);
        let lines: Vec<&str> = out.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].ends_with(" link -> file"));
        assert!(lines[1].ends_with(" file"));
        assert!(lines[2].ends_with(" dir"));
    }

    #[test]
    fn list_uses_year_for_old_files() {
        let f = fixture();
        let p = f.fs.root().join("file");
        let old = f.now - Duration::from_secs(181 * DAY);
        f.fs.set_mtime(&p, old).unwrap();
        assert!(list(&f, &["file"]).contains(" May 17  2023 file\r\n"));
        let recent = f.now - Duration::from_secs(179 * DAY);
        f.fs.set_mtime(&p, recent).unwrap();
        assert!(list(&f, &["file"]).contains(" May 19 22:13 file\r\n"));
    }

    #[test]
    fn list_writes_raw_name_bytes() {
        use std::os::unix::ffi::OsStringExt;
        let f = fixture();
        let raw = OsString::from_vec(b"caf\xe9".to_vec());
        fs::write(f.fs.root().join(&raw), b"").unwrap();
        let mut out = Vec::new();
        f.fs.format_list(f.fs.root(), &[raw], true, f.now, &mut out);
        assert!(out.ends_with(b" caf\xe9\r\n"));
    }

    fn mlsx(f: &Fixture, entries: &[&str], perms: &str, facts: &[&str]) -> io::Result<String> {
        let mut out = Vec::new();
        f.fs.format_mlsx(
            f.fs.root(),
            &names(entries),
            perms,
            facts,
            true,
            true,
            &mut out,
        )?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn mlsx_default_facts_for_file_and_dir() {
        let f = fixture();
        let fmd = fs::metadata(f.fs.root().join("file")).unwrap();
        let dmd = fs::metadata(f.fs.root().join("dir")).unwrap();
        let out = mlsx(&f, &["file", "dir"], "elradfmwMT", MLSX_FACTS_DEFAULT).unwrap();
        let want = format!(
            "modify=20231113221320;perm=radfwMT;size=5;type=file;unique={:x}g{:x}; file\r\n\
             modify=20231113221320;perm=eldfmMTcp;size={};type=dir;unique={:x}g{:x}; dir\r\n",
            fmd.dev(),
            fmd.ino(),
            dmd.size(),
            dmd.dev(),
            dmd.ino()
        );
        assert_eq!(out, want);
    }

    #[test]
    fn mlsx_unix_facts_and_links() {
        let f = fixture();
        let md = fs::metadata(f.fs.root().join("file")).unwrap();
        let out = mlsx(&f, &["link"], "elr", MLSX_FACTS_AVAILABLE).unwrap();
        // stat follows the link: the facts are the file's
        let want = format!(
            "modify=20231113221320;perm=r;size=5;type=file;unique={:x}g{:x};unix.gid={};unix.mode=0644;unix.uid={}; link\r\n",
            md.dev(),
            md.ino(),
            md.gid(),
            md.uid()
        );
        assert_eq!(out, want);
    }

    #[test]
    fn mlsx_cdir_pdir_and_subset() {
        let f = fixture();
        let out = mlsx(&f, &[".", "..", "dir"], "elr", &["type"]).unwrap();
        assert_eq!(out, "type=cdir; .\r\ntype=pdir; ..\r\ntype=dir; dir\r\n");
        let out = mlsx(&f, &["file"], "elr", &[]).unwrap();
        assert_eq!(out, " file\r\n");
    }

    #[test]
    fn mlsx_errors() {
        let f = fixture();
        // skipped with ignore_err
        let out = mlsx(&f, &["missing", "file"], "elr", &["type"]).unwrap();
        assert_eq!(out, "type=file; file\r\n");
        // reported without
        let mut out = Vec::new();
        let err =
            f.fs.format_mlsx(
                f.fs.root(),
                &names(&["missing"]),
                "elr",
                &["type"],
                false,
                true,
                &mut out,
            )
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn mlsx_perm_derivation() {
        assert_eq!(
            mlsx_perms("elradfmwMT"),
            ("eldfmMTcp".into(), "radfwMT".into())
        );
        assert_eq!(mlsx_perms("elr"), ("el".into(), "r".into()));
        assert_eq!(mlsx_perms("ela"), ("elc".into(), "a".into()));
        assert_eq!(mlsx_perms("elf"), ("elfc".into(), "f".into()));
        assert_eq!(mlsx_perms(""), (String::new(), String::new()));
    }

    // The unix.mode fact is C's octal (`0755`), not Python's `0o755`: lftp and others
    // read it with strtol(…, 8), for which `0o755` is 0.
    #[test]
    fn unix_mode_is_octal_with_a_leading_zero() {
        assert_eq!(unix_mode(0o100_644), "0644");
        assert_eq!(unix_mode(0o040_755), "0755");
        assert_eq!(unix_mode(0o100_000), "0000");
        assert_eq!(unix_mode(0o100_007), "0007");
        // Only the permission bits, as pyftpdlib gives them.
        assert_eq!(unix_mode(0o104_755), "0755");
    }

    #[test]
    fn filemode_strings() {
        assert_eq!(filemode(0o100_644), "-rw-r--r--");
        assert_eq!(filemode(0o040_755), "drwxr-xr-x");
        assert_eq!(filemode(0o120_777), "lrwxrwxrwx");
        assert_eq!(filemode(0o104_755), "-rwsr-xr-x");
        assert_eq!(filemode(0o104_644), "-rwSr--r--");
        assert_eq!(filemode(0o102_755), "-rwxr-sr-x");
        assert_eq!(filemode(0o102_745), "-rwxr-Sr-x");
        assert_eq!(filemode(0o041_777), "drwxrwxrwt");
        assert_eq!(filemode(0o041_776), "drwxrwxrwT");
        assert_eq!(filemode(0o060_660), "brw-rw----");
        assert_eq!(filemode(0o020_620), "crw--w----");
        assert_eq!(filemode(0o010_600), "prw-------");
        assert_eq!(filemode(0o140_755), "srwxr-xr-x");
        assert_eq!(filemode(0o000_000), "?---------");
    }

    #[test]
    fn id_names_fall_back_to_numbers() {
        let mut ids = IdNames::default();
        assert_eq!(ids.user(4_000_000_123), "4000000123");
        assert_eq!(ids.group(4_000_000_124), "4000000124");
        assert_eq!(ids.user(0), "root");
    }
}

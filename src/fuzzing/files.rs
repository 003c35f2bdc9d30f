//! Fuzz entries for path normalization and resolution against a real root, and for the
//! listing formatters fed names and metadata of the fuzzer's choosing.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use super::time_from;
use crate::filesystems::paths::{ftpnorm, normpath};
use crate::filesystems::{AbstractedFs, FileKind, FileStat, FileSystem, MemoryFs};
use crate::handlers::{list_into, nlst_into};
use crate::sys;

/// A real directory tree for path resolution: `root/` (the user's home) with a
/// subdirectory, a file, and symlinks that stay inside, leave it (absolute and relative),
/// dangle and loop; `outside/` next to it holds what must never be reached.
#[derive(Debug)]
pub struct PathsFixture {
    root: PathBuf,
    outside: PathBuf,
    mem: MemoryFs,
}

impl PathsFixture {
    /// Builds the tree in the empty directory `dir` (a temporary directory the caller
    /// removes).
    ///
    /// # Errors
    /// When a file or link cannot be made.
    pub fn new(dir: &Path) -> io::Result<PathsFixture> {
        let dir = fs::canonicalize(dir)?;
        let root = dir.join("root");
        let outside = dir.join("outside");
        fs::create_dir_all(root.join("sub/deeper"))?;
        fs::create_dir_all(outside.join("secret"))?;
        fs::write(root.join("sub/file"), b"in")?;
        fs::write(outside.join("secret/file"), b"out")?;
        symlink("sub", root.join("in-rel"))?;
        symlink(root.join("sub"), root.join("in-abs"))?;
        symlink("../root/sub", root.join("in-via-parent"))?;
        symlink(&outside, root.join("out-abs"))?;
        symlink("../outside/secret", root.join("out-rel"))?;
        symlink("sub/../../outside", root.join("sub/out-deep"))?;
        symlink("missing", root.join("dangling"))?;
        symlink("loop-b", root.join("loop-a"))?;
        symlink("loop-a", root.join("loop-b"))?;
        symlink("/", root.join("to-slash"))?;
        let mem = MemoryFs::new();
        mem.write_file("/home/u/sub/file", b"in")?;
        mem.write_file("/home/other/file", b"out")?;
        Ok(PathsFixture { root, outside, mem })
    }

    /// Normalizes and resolves the client path in `data` against the cwd it also
    /// carries (the two split at the first NUL), over the OS filesystem's chroot view and
    /// over a [`MemoryFs`] view, and asserts: FTP paths are absolute and normal, and a
    /// second normalization changes nothing; every real path is under the root; what
    /// [`FileSystem::validpath`] accepts resolves (by the kernel's `realpath`) to the
    /// root or below, and what resolves there it accepts; CWD only ever enters the
    /// root.
    pub fn run(&self, data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let (cwd, path) = text.split_once('\0').unwrap_or(("/", &text));
        check_ftpnorm(cwd, path);

        let Ok(mut os) = AbstractedFs::new(self.root.clone()) else {
            panic!("the fixture's root is gone");
        };
        let cwd_norm = ftpnorm("/", cwd);
        os.set_cwd(cwd_norm.clone());
        let real = os.ftp2fs(path);
        assert!(real.starts_with(&self.root), "{path:?} mapped to {real:?}");
        assert!(!has_dot_parts(&real), "{real:?} is not normal");
        let valid = os.validpath(&real);
        if let Some(resolved) = kernel_resolution(&real) {
            let inside = resolved.starts_with(&self.root);
            assert_eq!(
                valid, inside,
                "{path:?} (cwd {cwd:?}): validpath {valid}, resolves to {resolved:?}"
            );
            assert!(!resolved.starts_with(&self.outside) || !valid);
        }
        if valid {
            let back = os.fs2ftp(&real);
            assert!(back.starts_with('/'), "fs2ftp gave {back:?}");
            if os.chdir(&real).is_ok() {
                let entered = os.ftp2fs(os.cwd());
                let resolved = fs::canonicalize(&entered);
                assert!(
                    resolved.as_ref().is_ok_and(|r| r.starts_with(&self.root)),
                    "CWD {path:?} entered {entered:?} ({resolved:?})"
                );
            }
        }

        let Ok(mut mem) = self.mem.view("/home/u") else {
            panic!("the memory view is gone");
        };
        mem.set_cwd(cwd_norm);
        let real = mem.ftp2fs(path);
        assert!(real.starts_with("/home/u"), "{path:?} mapped to {real:?}");
        assert!(mem.validpath(&real), "{real:?} refused");
        if mem.chdir(&real).is_ok() {
            assert!(mem.ftp2fs(mem.cwd()).starts_with("/home/u"));
        }
        assert!(mem.stat(&mem.ftp2fs("../other/file")).is_err());
    }
}

/// FTP normalization: absolute, no empty, `.` or `..` segment, idempotent, and the same
/// whether the path is given relative to `cwd` or already joined to it.
fn check_ftpnorm(cwd: &str, path: &str) {
    let norm = ftpnorm(cwd, path);
    assert!(norm.starts_with('/'), "{cwd:?} + {path:?} → {norm:?}");
    if norm != "/" {
        assert!(
            norm[1..]
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != ".."),
            "{cwd:?} + {path:?} → {norm:?}"
        );
    }
    assert_eq!(ftpnorm("/", &norm), norm, "not idempotent: {norm:?}");
    assert_eq!(ftpnorm(&norm, ""), norm);
    if cwd.starts_with('/') && !path.starts_with('/') {
        assert_eq!(ftpnorm("/", &format!("{cwd}/{path}")), norm);
    }
    let lexical = normpath(Path::new(&format!("/{path}")));
    assert!(
        lexical.is_absolute() && !has_dot_parts(&lexical),
        "{lexical:?}"
    );
}

fn has_dot_parts(p: &Path) -> bool {
    p.components()
        .any(|c| matches!(c, Component::CurDir | Component::ParentDir))
}

/// Where the kernel resolves `p`: `realpath(3)` of `p`, or of its deepest existing
/// ancestor with the rest appended when `p` does not exist (a name about to be created).
/// `None` for a symlink loop or a dangling link on the way, which the resolver judges by
/// the link's own place.
fn kernel_resolution(p: &Path) -> Option<PathBuf> {
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    let mut at = p;
    loop {
        match fs::canonicalize(at) {
            Ok(real) => {
                if !rest.is_empty() && !real.is_dir() {
                    return None;
                }
                return Some(rest.iter().rev().fold(real, |acc, name| acc.join(name)));
            }
            Err(_) if fs::symlink_metadata(at).is_ok() => return None,
            Err(_) => {
                rest.push(at.file_name()?);
                at = at.parent()?;
            }
        }
    }
}

/// The listing formatters (LIST, NLST, MLSD / MLST facts) over a directory whose names
/// and metadata come from `data`: no panic whatever the times, modes or names; one line
/// per entry, each ending in CRLF and ending with its name; and a symlink that leads out
/// of the root never shows its target, in LIST or in the MLSx facts.
pub fn listing(data: &[u8]) {
    let mut input = Bytes(data);
    let flags = input.byte();
    let perms: String = "elradfmwMT"
        .chars()
        .zip(0..)
        .filter(|(_, bit)| input_bit(flags, *bit))
        .map(|(c, _)| c)
        .collect();
    let fact_mask = input.byte();
    let facts: Vec<&str> = [
        "type",
        "perm",
        "size",
        "modify",
        "unique",
        "unix.mode",
        "unix.uid",
        "unix.gid",
    ]
    .into_iter()
    .zip(0..)
    .filter(|(_, bit)| fact_mask & (1 << bit) != 0)
    .map(|(f, _)| f)
    .collect();
    let listed = ScriptedDir::from_input(&mut input);
    let dir = Path::new(SCRIPTED_ROOT);
    let names = listed.names.clone();
    let now = time_from(1_700_000_000, 0);

    let mut out = Vec::new();
    listed.format_list(dir, &names, flags & 1 != 0, now, &mut out);
    let in_list = |name: &OsString| listed.lstat(&dir.join(name)).is_ok();
    check_lines(&listed, &names, &out, in_list, |line, name| {
        let shown = line.strip_suffix(b"\r\n")?;
        let name = name.as_bytes();
        // The name right after the date column (which ends in a digit), and nothing after.
        let plain = shown
            .strip_suffix(name)
            .and_then(|head| head.strip_suffix(b" "))
            .is_some_and(|head| head.last().is_some_and(u8::is_ascii_digit));
        if plain {
            return Some(false);
        }
        // `name -> target`; a name may hold ` -> ` itself, so try each.
        (0..shown.len())
            .filter(|&at| shown[at..].starts_with(b" -> "))
            .any(|at| shown[..at].ends_with(name))
            .then_some(true)
    });

    out.clear();
    let result = listed.format_mlsx(dir, &names, &perms, &facts, true, flags & 2 != 0, &mut out);
    assert!(result.is_ok(), "MLSD with ignore_err failed: {result:?}");
    // MLSx stats what a link inside the root points to, and skips it when that fails.
    let in_mlsx = |name: &OsString| {
        let path = dir.join(name);
        listed.lstat(&path).is_ok_and(|st| {
            !st.is_symlink() || !listed.validpath(&path) || listed.stat(&path).is_ok()
        })
    };
    check_lines(&listed, &names, &out, in_mlsx, |line, name| {
        let shown = line.strip_suffix(b"\r\n")?;
        let facts_end = find(shown, b" ")?;
        let facts = &shown[..facts_end];
        let facts_ok = facts.split(|&b| b == b';').all(|f| {
            f.is_empty()
                || match f.strip_prefix(b"modify=") {
                    // RFC 3659 §2.3: a time-val is 14 digits.
                    Some(t) => t.len() == 14 && t.iter().all(u8::is_ascii_digit),
                    None => f.contains(&b'='),
                }
        });
        (&shown[facts_end + 1..] == name.as_bytes() && facts_ok)
            .then(|| find(facts, b"size=").is_some())
    });

    out.clear();
    let listed_path = if flags & 4 != 0 {
        dir.to_path_buf()
    } else {
        dir.join(&names[0])
    };
    if list_into(
        &listed,
        &listed_path,
        flags & 1 != 0,
        flags & 8 != 0,
        flags & 16 != 0,
        &mut out,
    )
    .is_ok()
    {
        assert!(out.is_empty() || out.ends_with(b"\r\n"));
    }
    out.clear();
    if nlst_into(&listed, &listed_path, flags & 16 != 0, &mut out).is_ok() {
        assert!(out.is_empty() || out.ends_with(b"\r\n"));
    }

    for name in &names {
        if let Some(entry) = listed.entries.get(name) {
            if let Some(t) = crate::timefmt::mdtm_checked(entry.stat.mtime, flags & 1 != 0) {
                assert!(
                    t.len() == 14 && t.bytes().all(|b| b.is_ascii_digit()),
                    "{t:?}"
                );
            }
            let _ = crate::timefmt::list_date(entry.stat.mtime, now, flags & 1 != 0);
        }
    }
}

/// Checks the lines of a listing of `names` in `out`: one per entry that exists, in
/// order, each accepted by `line_ok` (which says whether the line shows what the link
/// points to: a target in LIST, a size in MLSx). Skipped when a name or a link target
/// holds CR or LF, which the listing writes as they are (as pyftpdlib and `ls` do).
fn check_lines(
    listed: &ScriptedDir,
    names: &[OsString],
    out: &[u8],
    is_listed: impl Fn(&OsString) -> bool,
    line_ok: impl Fn(&[u8], &OsString) -> Option<bool>,
) {
    let breaks_line = |bytes: &[u8]| bytes.iter().any(|&b| b == b'\r' || b == b'\n');
    if names.iter().any(|n| breaks_line(n.as_bytes()))
        || listed
            .entries
            .values()
            .filter_map(|e| e.link.as_ref())
            .any(|t| breaks_line(t.as_os_str().as_bytes()))
    {
        return;
    }
    let mut lines = out.split_inclusive(|&b| b == b'\n');
    for name in names {
        let Some(entry) = listed.entries.get(name).filter(|_| is_listed(name)) else {
            continue;
        };
        let Some(line) = lines.next() else {
            panic!("no line for {name:?} in {:?}", String::from_utf8_lossy(out));
        };
        let Some(shows_target) = line_ok(line, name) else {
            panic!("bad line for {name:?}: {:?}", String::from_utf8_lossy(line));
        };
        if entry.link.is_some() && !listed.validpath(&Path::new(SCRIPTED_ROOT).join(name)) {
            assert!(
                !shows_target,
                "a link out of the root shows its target: {:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
    assert_eq!(lines.next(), None, "more lines than entries");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn input_bit(flags: u8, bit: u32) -> bool {
    // The first byte carries the listing flags; the permission letters come from a
    // rotation of it so that both vary.
    flags.rotate_left(bit) & 0x80 != 0
}

/// The fuzzer's bytes, taken from the front.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let head = self.take(8);
        b[..head.len()].copy_from_slice(head);
        u64::from_le_bytes(b)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A directory at [`SCRIPTED_ROOT`] whose entries, their metadata and their link
/// targets are the fuzzer's: the listing code sees them through the [`FileSystem`]
/// trait as it would see a disk.
#[derive(Debug)]
struct ScriptedDir {
    names: Vec<OsString>,
    entries: HashMap<OsString, Entry>,
    root: PathBuf,
}

#[derive(Debug)]
struct Entry {
    stat: FileStat,
    link: Option<PathBuf>,
}

impl ScriptedDir {
    fn from_input(input: &mut Bytes<'_>) -> ScriptedDir {
        let mut names = Vec::new();
        let mut entries = HashMap::new();
        while !input.is_empty() && names.len() < MAX_ENTRIES {
            let len = usize::from(input.byte() % 40);
            let name: Vec<u8> = input
                .take(len)
                .iter()
                .map(|&b| if b == b'/' || b == 0 { b'_' } else { b })
                .collect();
            let name = if name.is_empty() { b"x".to_vec() } else { name };
            let name = OsString::from_vec(name);
            let kind_byte = input.byte();
            let mode = u32::from_le_bytes([input.byte(), input.byte(), input.byte(), 0]);
            let kind = match kind_byte % 8 {
                0 => FileKind::File,
                1 => FileKind::Dir,
                2 => FileKind::Symlink,
                _ => FileKind::from_mode(mode << 9),
            };
            let mut stat = FileStat::new(kind, input.u64());
            stat.mode = mode & 0o7777;
            stat.nlink = u64::from(input.byte()) << (kind_byte >> 4);
            stat.uid = u32::from(input.byte()) * 1000;
            stat.gid = u32::from(input.byte()) * 1000;
            let secs = input.u64() as i64;
            stat.mtime = time_from(secs, input.byte().into());
            stat.dev = input.u64();
            stat.ino = input.u64();
            let link = stat.is_symlink().then(|| {
                let len = usize::from(input.byte() % 64);
                PathBuf::from(OsString::from_vec(
                    input
                        .take(len)
                        .iter()
                        .map(|&b| if b == 0 { b'/' } else { b })
                        .collect(),
                ))
            });
            // A duplicate name keeps its first entry, as a directory holds one of each.
            if let std::collections::hash_map::Entry::Vacant(slot) = entries.entry(name) {
                names.push(slot.key().clone());
                slot.insert(Entry { stat, link });
            }
        }
        if names.is_empty() {
            let name = OsString::from("x");
            let entry = Entry {
                stat: FileStat::new(FileKind::File, 0),
                link: None,
            };
            names.push(name.clone());
            entries.insert(name, entry);
        }
        ScriptedDir {
            names,
            entries,
            root: PathBuf::from(SCRIPTED_ROOT),
        }
    }

    /// The entry for `p`, a name directly in the directory, compared as bytes (so that
    /// entries named `.` and `..`, which a path would normalize away, are found too).
    fn entry(&self, p: &Path) -> Option<&Entry> {
        let name = p
            .as_os_str()
            .as_bytes()
            .strip_prefix(SCRIPTED_ROOT.as_bytes())?
            .strip_prefix(b"/")?;
        self.entries.get(OsStr::from_bytes(name))
    }
}

impl FileSystem for ScriptedDir {
    fn root(&self) -> &Path {
        &self.root
    }

    fn cwd(&self) -> &str {
        "/"
    }

    fn set_cwd(&mut self, _ftp_path: String) {}

    fn ftp2fs(&self, ftp_path: &str) -> PathBuf {
        let norm = self.ftpnorm(ftp_path);
        self.root.join(norm.trim_start_matches('/'))
    }

    fn fs2ftp(&self, fs_path: &Path) -> String {
        match normpath(fs_path).strip_prefix(&self.root) {
            Ok(rel) => format!("/{}", rel.to_string_lossy()),
            Err(_) => "/".to_owned(),
        }
    }

    fn validpath(&self, fs_path: &Path) -> bool {
        self.realpath(fs_path)
            .is_ok_and(|real| real.starts_with(&self.root))
    }

    fn stat(&self, p: &Path) -> io::Result<FileStat> {
        let real = self.realpath(p)?;
        match self.entry(&real) {
            Some(e) if e.link.is_none() => Ok(e.stat.clone()),
            Some(_) => Err(io::ErrorKind::NotFound.into()),
            None if real == self.root => Ok(FileStat::new(FileKind::Dir, 4096)),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn lstat(&self, p: &Path) -> io::Result<FileStat> {
        if let Some(e) = self.entry(p) {
            return Ok(e.stat.clone());
        }
        if normpath(p) == self.root {
            return Ok(FileStat::new(FileKind::Dir, 4096));
        }
        Err(io::ErrorKind::NotFound.into())
    }

    fn listdir(&self, p: &Path) -> io::Result<Vec<OsString>> {
        if normpath(p) == self.root {
            Ok(self.names.clone())
        } else {
            Err(sys::not_a_directory())
        }
    }

    fn readlink(&self, p: &Path) -> io::Result<PathBuf> {
        self.entry(p)
            .and_then(|e| e.link.clone())
            .ok_or_else(|| io::ErrorKind::InvalidInput.into())
    }

    /// Resolves the links of the directory (to at most 8 levels; a deeper chain is a
    /// loop), lexically everywhere else.
    fn realpath(&self, p: &Path) -> io::Result<PathBuf> {
        let mut at = Path::new("/").join(p);
        for _ in 0..8 {
            match self.entry(&at).map(|e| e.link.as_ref()) {
                Some(Some(target)) => at = normpath(&self.root.join(target)),
                // An entry of the directory as it is (`.` and `..` included).
                Some(None) => return Ok(at),
                None => return Ok(normpath(&at)),
            }
        }
        Err(sys::too_many_links())
    }

    fn is_dir(&self, p: &Path) -> bool {
        self.stat(p).is_ok_and(|st| st.is_dir())
    }

    fn is_file(&self, p: &Path) -> bool {
        self.stat(p).is_ok_and(|st| st.is_file())
    }

    fn lexists(&self, p: &Path) -> bool {
        self.lstat(p).is_ok()
    }

    fn set_mtime(&self, _p: &Path, _t: SystemTime) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Where the scripted directory claims to be.
const SCRIPTED_ROOT: &str = "/srv/ftp";
/// Entries per scripted directory.
const MAX_ENTRIES: usize = 24;

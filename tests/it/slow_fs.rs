//! A filesystem that blocks ([`FileSystem::blocking`]): a wrapper over the disk view
//! that sleeps in every call and in every read and write of its files, served to one
//! user while another user, on the standard view, works on the same single-loop server.
//! Marked blocking, its calls and file I/O run on the filesystem threads: the other
//! session's NOOPs and multi-MB transfers go on while a call sleeps, and the slow
//! session's results are right (every path command, listings, transfers with REST and
//! APPE, STOU, checksums, atomic and durable uploads, quotas). Not marked, the same
//! wrapper stalls everyone (the check that the tests can fail). A client that leaves,
//! resets or sends ABOR while its call sleeps, or a session the server closes meanwhile:
//! the session ends (or answers) once the call returns, and nothing is left behind.

use std::ffi::OsString;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ftpdlib::authorizers::{Authorizer, DummyAuthorizer, Quota, WithFilesystem};
use ftpdlib::config::HandlerConfig;
use ftpdlib::filesystems::{AbstractedFs, FileData, FileStat, FileSystem, FsFile, WriteMode};

use crate::util::{random_bytes, Client, TestServer};

/// What the test sees of the slow filesystems it made: calls sleeping now, calls made,
/// filesystems alive, and the sleep of each call.
#[derive(Default)]
struct Probe {
    in_call: AtomicUsize,
    calls: AtomicUsize,
    alive: AtomicUsize,
    delay_ms: AtomicU64,
    /// Reads and writes of open files sleeping now, and the sleep of each.
    in_file_call: AtomicUsize,
    file_delay_ms: AtomicU64,
}

impl Probe {
    /// Waits (bounded) until a call sleeps.
    fn wait_in_call(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.in_call.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "no filesystem call started");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn sleeping(&self) -> bool {
        self.in_call.load(Ordering::SeqCst) > 0
    }

    /// Waits (bounded) until every slow filesystem was dropped (a session's ends on a
    /// filesystem thread, after the session).
    fn wait_dropped(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.alive.load(Ordering::SeqCst) > 0 {
            assert!(Instant::now() < deadline, "a filesystem was never dropped");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits (bounded) until a read or write of a file sleeps.
    fn wait_in_file_call(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.in_file_call.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "no file read or write started");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn sleeping_in_file(&self) -> bool {
        self.in_file_call.load(Ordering::SeqCst) > 0
    }
}

/// An open file of [`SlowFs`]: each read and write sleeps `probe.file_delay_ms`.
struct SlowFile {
    inner: FsFile,
    probe: Arc<Probe>,
}

impl SlowFile {
    fn slow<T>(&mut self, call: impl FnOnce(&mut FsFile) -> T) -> T {
        self.probe.in_file_call.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(
            self.probe.file_delay_ms.load(Ordering::SeqCst),
        ));
        let result = call(&mut self.inner);
        self.probe.in_file_call.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

impl Read for SlowFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.slow(|f| f.read(buf))
    }
}

impl Write for SlowFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.slow(|f| f.write(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Seek for SlowFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl FileData for SlowFile {
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

/// The disk view of the user's home, sleeping `probe.delay_ms` in each call of the
/// filesystem (the path mapping excepted, which must stay quick).
struct SlowFs {
    inner: AbstractedFs,
    blocking: bool,
    probe: Arc<Probe>,
}

impl SlowFs {
    fn new(home: PathBuf, blocking: bool, probe: &Arc<Probe>) -> io::Result<SlowFs> {
        probe.alive.fetch_add(1, Ordering::SeqCst);
        Ok(SlowFs {
            inner: AbstractedFs::new(home)?,
            blocking,
            probe: Arc::clone(probe),
        })
    }

    fn file(&self, inner: FsFile) -> FsFile {
        FsFile::custom(SlowFile {
            inner,
            probe: Arc::clone(&self.probe),
        })
    }

    fn slow<T>(&self, call: impl FnOnce(&AbstractedFs) -> T) -> T {
        self.probe.in_call.fetch_add(1, Ordering::SeqCst);
        self.probe.calls.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(
            self.probe.delay_ms.load(Ordering::SeqCst),
        ));
        let result = call(&self.inner);
        self.probe.in_call.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

impl Drop for SlowFs {
    fn drop(&mut self) {
        self.probe.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FileSystem for SlowFs {
    fn blocking(&self) -> bool {
        self.blocking
    }
    fn root(&self) -> &Path {
        self.inner.root()
    }
    fn cwd(&self) -> &str {
        self.inner.cwd()
    }
    fn set_cwd(&mut self, ftp_path: String) {
        self.inner.set_cwd(ftp_path);
    }
    fn ftp2fs(&self, ftp_path: &str) -> PathBuf {
        self.inner.ftp2fs(ftp_path)
    }
    fn fs2ftp(&self, fs_path: &Path) -> String {
        self.inner.fs2ftp(fs_path)
    }
    fn validpath(&self, fs_path: &Path) -> bool {
        self.inner.validpath(fs_path)
    }
    fn open_read(&self, p: &Path) -> io::Result<FsFile> {
        let inner = self.slow(|fs| fs.open_read(p))?;
        Ok(self.file(inner))
    }
    fn open_write(&self, p: &Path, mode: WriteMode) -> io::Result<FsFile> {
        let inner = self.slow(|fs| fs.open_write(p, mode))?;
        Ok(self.file(inner))
    }
    fn chdir(&mut self, p: &Path) -> io::Result<()> {
        self.probe.in_call.fetch_add(1, Ordering::SeqCst);
        self.probe.calls.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(
            self.probe.delay_ms.load(Ordering::SeqCst),
        ));
        let result = self.inner.chdir(p);
        self.probe.in_call.fetch_sub(1, Ordering::SeqCst);
        result
    }
    fn mkdir(&self, p: &Path) -> io::Result<()> {
        self.slow(|fs| fs.mkdir(p))
    }
    fn rmdir(&self, p: &Path) -> io::Result<()> {
        self.slow(|fs| fs.rmdir(p))
    }
    fn remove(&self, p: &Path) -> io::Result<()> {
        self.slow(|fs| fs.remove(p))
    }
    fn rename(&self, src: &Path, dst: &Path) -> io::Result<()> {
        self.slow(|fs| fs.rename(src, dst))
    }
    fn set_mtime(&self, p: &Path, t: SystemTime) -> io::Result<()> {
        self.slow(|fs| fs.set_mtime(p, t))
    }
    fn stat(&self, p: &Path) -> io::Result<FileStat> {
        self.slow(|fs| fs.stat(p))
    }
    fn lstat(&self, p: &Path) -> io::Result<FileStat> {
        self.slow(|fs| fs.lstat(p))
    }
    fn listdir(&self, p: &Path) -> io::Result<Vec<OsString>> {
        self.slow(|fs| fs.listdir(p))
    }
    fn format_list(
        &self,
        basedir: &Path,
        names: &[OsString],
        use_gmt: bool,
        now: SystemTime,
        out: &mut Vec<u8>,
    ) {
        self.slow(|fs| fs.format_list(basedir, names, use_gmt, now, out));
    }
    fn format_mlsx(
        &self,
        basedir: &Path,
        names: &[OsString],
        perms: &str,
        facts: &[&str],
        ignore_err: bool,
        use_gmt: bool,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        self.slow(|fs| fs.format_mlsx(basedir, names, perms, facts, ignore_err, use_gmt, out))
    }
}

/// A server where `slow` (every right) is served through [`SlowFs`] and `fast` (every
/// right) and the test users through the standard view, all on the same home.
fn server(blocking: bool, probe: &Arc<Probe>) -> TestServer {
    server_with(blocking, probe, |_| {}, |_| {})
}

/// As [`server`], with the handler options adjusted by `handler` and the users by
/// `users`.
fn server_with(
    blocking: bool,
    probe: &Arc<Probe>,
    handler: impl FnOnce(&mut HandlerConfig),
    users: impl FnOnce(&mut DummyAuthorizer),
) -> TestServer {
    let probe = Arc::clone(probe);
    TestServer::with_users(
        move |mut auth: DummyAuthorizer| {
            let home = auth.home_dir("user").expect("the test user's home");
            auth.add_user("slow", "pw", &home, "elradfmwMT", None, None)
                .expect("add slow");
            auth.add_user("fast", "pw", &home, "elradfmwMT", None, None)
                .expect("add fast");
            users(&mut auth);
            Box::new(WithFilesystem::new(auth, move |user, home| {
                if user == "slow" {
                    Ok(Box::new(SlowFs::new(home, blocking, &probe)?) as Box<dyn FileSystem>)
                } else {
                    Ok(Box::new(AbstractedFs::new(home)?) as Box<dyn FileSystem>)
                }
            }))
        },
        handler,
        |_| {},
        |b| b,
    )
}

fn login(srv: &TestServer, user: &str) -> Client {
    let mut c = srv.client();
    c.login(user, "pw");
    c.expect("TYPE I", 200);
    c
}

/// A NOOP's round trip.
fn noop_time(c: &mut Client) -> Duration {
    let t = Instant::now();
    c.expect("NOOP", 200);
    t.elapsed()
}

const SLEEP_MS: u64 = 2000;

#[test]
fn a_blocking_filesystem_sleeps_on_a_thread_while_other_sessions_transfer() {
    let probe = Arc::new(Probe::default());
    let srv = server(true, &probe);
    std::fs::create_dir(srv.root().join("sub")).expect("mkdir");
    let big = random_bytes(8 << 20, 0x510f5);
    std::fs::write(srv.root().join("big.bin"), &big).expect("seed");
    let mut fast = login(&srv, "fast");
    let mut slow = login(&srv, "slow");
    probe.delay_ms.store(SLEEP_MS, Ordering::SeqCst);

    // The slow session's CWD sleeps 2 s on a filesystem thread.
    let started = Instant::now();
    slow.send("CWD sub");
    probe.wait_in_call();
    // Meanwhile the other session is answered at once, and moves 8 MiB each way.
    for _ in 0..3 {
        let t = noop_time(&mut fast);
        assert!(t < Duration::from_millis(500), "NOOP took {t:?}");
        assert!(probe.sleeping(), "the slow call ended before the NOOP");
    }
    let t = Instant::now();
    assert!(fast.retr("big.bin") == big, "RETR not byte-identical");
    fast.stor("copy.bin", &big);
    let transfers = t.elapsed();
    assert!(
        std::fs::read(srv.root().join("copy.bin")).expect("copy") == big,
        "STOR not byte-identical"
    );
    let t = noop_time(&mut fast);
    assert!(t < Duration::from_millis(500), "NOOP took {t:?}");
    assert!(
        probe.sleeping(),
        "the slow call ended before the transfers did ({transfers:?})"
    );
    // The slow session's reply came after its call.
    assert_eq!(
        slow.reply(),
        (250, "\"/sub\" is the current directory.".to_owned())
    );
    assert!(started.elapsed() >= Duration::from_millis(SLEEP_MS));
    assert_eq!(slow.cmd("PWD").0, 257);
    slow.expect("QUIT", 221);
    fast.expect("QUIT", 221);
    drop((slow, fast));
    srv.wait_idle();
    probe.wait_dropped();
}

#[test]
fn the_same_filesystem_not_marked_blocking_stalls_every_session() {
    let probe = Arc::new(Probe::default());
    let srv = server(false, &probe);
    std::fs::create_dir(srv.root().join("sub")).expect("mkdir");
    let mut fast = login(&srv, "fast");
    let mut slow = login(&srv, "slow");
    probe.delay_ms.store(SLEEP_MS, Ordering::SeqCst);
    slow.send("CWD sub");
    probe.wait_in_call();
    // The loop itself sleeps in the call: the NOOP waits for it.
    let t = noop_time(&mut fast);
    assert!(t > Duration::from_millis(SLEEP_MS / 2), "NOOP took {t:?}");
    assert_eq!(slow.reply().0, 250);
    slow.expect("QUIT", 221);
    fast.expect("QUIT", 221);
    drop((slow, fast));
    srv.wait_idle();
}

/// Checks, three times, that the other session's NOOP comes back within `limit` while
/// a read or write of a file sleeps.
fn noops_while_a_file_call_sleeps(fast: &mut Client, probe: &Probe, limit: Duration) {
    probe.wait_in_file_call();
    let mut inside = 0;
    for _ in 0..3 {
        let before = probe.sleeping_in_file();
        let t = noop_time(fast);
        assert!(t < limit, "NOOP took {t:?}");
        inside += usize::from(before && probe.sleeping_in_file());
    }
    assert!(
        inside >= 2,
        "only {inside} NOOPs ran while a file call slept"
    );
}

#[test]
fn the_files_of_a_blocking_filesystem_are_read_and_written_off_the_loop() {
    let probe = Arc::new(Probe::default());
    let srv = server(true, &probe);
    let data = random_bytes((512 << 10) + 1, 0xf11e);
    std::fs::write(srv.root().join("f.bin"), &data).expect("seed");
    let mut fast = login(&srv, "fast");
    let mut slow = login(&srv, "slow");
    probe.file_delay_ms.store(400, Ordering::SeqCst);

    // A download whose every read sleeps 400 ms: the other session is answered at once.
    let mut pasv = slow.pasv();
    let (code, text) = slow.cmd("RETR f.bin");
    assert!(code == 125 || code == 150, "{code} {text}");
    noops_while_a_file_call_sleeps(&mut fast, &probe, Duration::from_millis(200));
    let mut got = Vec::new();
    pasv.read_to_end(&mut got).expect("download");
    assert_eq!(slow.reply().0, 226);
    assert!(got == data, "RETR not byte-identical");

    // An upload whose every write sleeps: the same, and its 226 comes once the last
    // block is in the file.
    let mut pasv = slow.pasv();
    let (code, text) = slow.cmd("STOR up.bin");
    assert!(code == 125 || code == 150, "{code} {text}");
    pasv.write_all(&data).expect("upload");
    pasv.shutdown(std::net::Shutdown::Write).expect("shutdown");
    noops_while_a_file_call_sleeps(&mut fast, &probe, Duration::from_millis(200));
    assert_eq!(slow.reply().0, 226);
    assert!(
        std::fs::read(srv.root().join("up.bin")).expect("up.bin") == data,
        "STOR not byte-identical at its 226"
    );
    // More than the 1 MiB that may wait for the file's thread: the data connection stops
    // reading until the thread catches up, and nothing is lost.
    probe.file_delay_ms.store(100, Ordering::SeqCst);
    let big = random_bytes((3 << 20) + 7, 0xb16f11e);
    let pasv = slow.pasv();
    slow.upload("STOR big.bin", pasv, &big);
    assert!(
        std::fs::read(srv.root().join("big.bin")).expect("big.bin") == big,
        "a backlogged STOR not byte-identical"
    );
    // REST + STOR cuts the old tail on the file's thread.
    probe.file_delay_ms.store(0, Ordering::SeqCst);
    slow.expect("REST 1000", 350);
    let pasv = slow.pasv();
    slow.upload("STOR up.bin", pasv, b"tail");
    let mut want = data[..1000].to_vec();
    want.extend_from_slice(b"tail");
    assert!(std::fs::read(srv.root().join("up.bin")).expect("up.bin") == want);
    drop(got);
    slow.expect("QUIT", 221);
    fast.expect("QUIT", 221);
    drop((slow, fast));
    srv.wait_idle();
    probe.wait_dropped();
}

#[test]
fn every_command_of_a_blocking_filesystem_gets_its_result() {
    let probe = Arc::new(Probe::default());
    let srv = server(true, &probe);
    let mut c = login(&srv, "slow");
    probe.delay_ms.store(5, Ordering::SeqCst);
    let data = random_bytes(3 << 20, 0xda7a);
    let before = probe.calls.load(Ordering::SeqCst);
    assert_eq!(c.cmd("MKD d").0, 257);
    assert_eq!(
        c.cmd("CWD d"),
        (250, "\"/d\" is the current directory.".to_owned())
    );
    c.stor("f.bin", &data);
    assert_eq!(c.cmd("SIZE f.bin"), (213, data.len().to_string()));
    assert_eq!(c.cmd("MDTM f.bin").0, 213);
    assert!(c.retr("f.bin") == data, "RETR not byte-identical");
    // REST + RETR: the seek happens with the open.
    c.expect("REST 3000000", 350);
    let pasv = c.pasv();
    assert!(c.download("RETR f.bin", pasv) == data[3_000_000..]);
    let more = b"appended";
    let pasv = c.pasv();
    c.upload("APPE f.bin", pasv, more);
    assert_eq!(c.cmd("SIZE f.bin"), (213, (data.len() + 8).to_string()));
    let list = c.listing("LIST");
    assert!(list.contains(" f.bin\r\n"), "{list:?}");
    assert_eq!(c.listing("NLST"), "f.bin\r\n");
    let mlsd = c.listing("MLSD");
    assert!(
        mlsd.contains("type=file;") && mlsd.contains(" f.bin\r\n"),
        "{mlsd:?}"
    );
    let (code, text) = c.cmd("MLST f.bin");
    assert_eq!(code, 250, "{text}");
    assert!(text.contains(" /d/f.bin"), "{text}");
    let (code, text) = c.cmd("STAT f.bin");
    assert_eq!(code, 213, "{text}");
    assert!(text.contains(" f.bin"), "{text}");
    assert_eq!(c.cmd("MFMT 20200102030405 f.bin").0, 213);
    assert_eq!(c.cmd("MDTM f.bin"), (213, "20200102030405".to_owned()));
    assert_eq!(c.cmd("SITE CHMOD 600 f.bin").0, 200);
    assert_eq!(c.cmd("RNFR f.bin").0, 350);
    assert_eq!(c.cmd("RNTO g.bin").0, 250);
    let pasv = c.pasv();
    let (code, text) = c.cmd("STOU");
    assert!(code == 150 || code == 125, "{code} {text}");
    drop(pasv);
    let (code, text) = c.reply();
    assert!(code == 226 || code == 426, "STOU ended {code} {text}");
    let (code, text) = c.cmd("XSHA256 g.bin");
    assert_eq!(code, 250, "{text}");
    // Errors come back as from any filesystem.
    assert_eq!(c.cmd("CWD nowhere").0, 550);
    assert_eq!(c.cmd("SIZE nowhere").0, 550);
    assert_eq!(c.cmd("DELE g.bin").0, 250);
    assert_eq!(c.cmd("RETR g.bin").0, 550);
    // Pipelined commands are answered in order, each after its call.
    c.send_raw(b"CWD /\r\nMKD e\r\nRMD e\r\nNOOP\r\n");
    assert_eq!(c.reply().0, 250);
    assert_eq!(c.reply().0, 257);
    assert_eq!(c.reply().0, 250);
    assert_eq!(c.reply().0, 200);
    assert_eq!(c.cmd("DELE d").0, 550); // a directory
    for name in std::fs::read_dir(srv.root().join("d")).expect("d") {
        let path = name.expect("entry").path();
        std::fs::remove_file(&path).expect("rm");
    }
    assert_eq!(c.cmd("RMD d").0, 250);
    assert!(probe.calls.load(Ordering::SeqCst) > before + 20);
    c.expect("QUIT", 221);
    drop(c);
    srv.wait_idle();
    assert!(
        std::fs::read_dir(srv.root())
            .expect("root")
            .next()
            .is_none(),
        "left behind in the home"
    );
    probe.wait_dropped();
}

#[test]
fn a_client_leaving_or_aborting_while_its_call_sleeps_leaves_nothing() {
    let probe = Arc::new(Probe::default());
    let srv = server(true, &probe);
    std::fs::create_dir(srv.root().join("sub")).expect("mkdir");
    std::fs::write(srv.root().join("f.txt"), b"data").expect("seed");

    // ABOR sent during the call waits for its reply, then is answered.
    let mut c = login(&srv, "slow");
    probe.delay_ms.store(300, Ordering::SeqCst);
    c.send_raw(b"CWD sub\r\nABOR\r\n");
    probe.wait_in_call();
    assert_eq!(c.reply().0, 250);
    assert_eq!(c.reply().0, 225);
    c.expect("QUIT", 221);
    drop(c);
    srv.wait_idle();

    // A client that closes while a RETR's open sleeps: the session ends when the call
    // returns, the opened file and the filesystem dropped.
    let mut c = login(&srv, "slow");
    let _pasv = c.pasv();
    c.send("RETR f.txt");
    probe.wait_in_call();
    drop(c);
    drop(_pasv);
    srv.wait_idle();
    assert!(!probe.sleeping());
    probe.wait_dropped();

    // The same with a reset (RST) during a LIST's calls.
    let mut c = login(&srv, "slow");
    let pasv = c.pasv();
    c.send("LIST");
    probe.wait_in_call();
    let stream = c.stream_clone();
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
    drop(c);
    let mut rest = Vec::new();
    let _ = (&pasv).read_to_end(&mut rest);
    srv.wait_idle();
    probe.wait_dropped();
}

#[test]
fn an_atomic_upload_on_a_blocking_filesystem_is_renamed_on_its_thread() {
    let probe = Arc::new(Probe::default());
    let srv = server_with(true, &probe, |h| h.atomic_uploads = true, |_| {});
    std::fs::write(srv.root().join("f.bin"), b"old").expect("seed");
    let mut c = login(&srv, "slow");
    probe.delay_ms.store(50, Ordering::SeqCst);
    let data = random_bytes(1 << 20, 0xa70);
    let mut pasv = c.pasv();
    let (code, text) = c.cmd("STOR f.bin");
    assert!(code == 125 || code == 150, "{code} {text}");
    pasv.write_all(&data).expect("upload");
    // A QUIT during the transfer: answered after the upload's 226.
    c.send("QUIT");
    pasv.shutdown(std::net::Shutdown::Write).expect("shutdown");
    assert_eq!(c.reply(), (226, "Transfer complete.".to_owned()));
    assert_eq!(c.reply().0, 221);
    assert!(c.expect_closed().is_empty());
    assert!(std::fs::read(srv.root().join("f.bin")).expect("f.bin") == data);
    let names: Vec<_> = std::fs::read_dir(srv.root())
        .expect("root")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["f.bin"], "a temporary left behind");
    drop(c);
    srv.wait_idle();
    probe.wait_dropped();
}

#[test]
fn a_quota_walk_of_a_blocking_filesystem_runs_on_its_thread() {
    let probe = Arc::new(Probe::default());
    let quota = Quota {
        bytes: Some(10_000),
        files: Some(3),
    };
    let srv = server_with(
        true,
        &probe,
        |_| {},
        |auth| auth.set_quota("slow", Some(quota)).expect("set the quota"),
    );
    std::fs::write(srv.root().join("a.bin"), vec![1; 4000]).expect("seed");
    let mut fast = login(&srv, "fast");
    probe.delay_ms.store(300, Ordering::SeqCst);
    // The login's walk (a listdir and an lstat, 300 ms each) sleeps on a thread; the
    // 230 comes after it, and the other session is answered meanwhile.
    let mut slow = srv.client();
    slow.expect("USER slow", 331);
    slow.send("PASS pw");
    probe.wait_in_call();
    let t = noop_time(&mut fast);
    assert!(t < Duration::from_millis(200), "NOOP took {t:?}");
    assert!(probe.sleeping(), "the walk ended before the NOOP");
    assert_eq!(slow.reply().0, 230);
    let walked = Instant::now();
    assert_eq!(
        slow.expect("SITE QUOTA", 200),
        "Quota: 4000 / 10000 bytes, 1 / 3 files."
    );
    // A change behind the server's back, counted by SYNC on the thread (a SYNC within
    // 2 s of the last walk does not walk again).
    std::fs::write(srv.root().join("b.bin"), vec![2; 5000]).expect("add");
    while walked.elapsed() < Duration::from_millis(2100) {
        std::thread::sleep(Duration::from_millis(20));
    }
    slow.send("SITE QUOTA SYNC");
    probe.wait_in_call();
    let t = noop_time(&mut fast);
    assert!(t < Duration::from_millis(200), "NOOP took {t:?}");
    assert_eq!(
        slow.reply(),
        (200, "Quota: 9000 / 10000 bytes, 2 / 3 files.".to_owned())
    );
    // The quota holds: an upload past it is cut with 552 and leaves nothing.
    probe.delay_ms.store(0, Ordering::SeqCst);
    slow.expect("TYPE I", 200);
    let pasv = slow.pasv();
    let (code, text) = slow.cmd("STOR c.bin");
    assert!(code == 125 || code == 150, "{code} {text}");
    let mut pasv = pasv;
    let _ = pasv.write_all(&[3; 2000]);
    drop(pasv);
    assert_eq!(slow.reply().0, 552);
    assert!(!srv.root().join("c.bin").exists());
    slow.expect("QUIT", 221);
    fast.expect("QUIT", 221);
    drop((slow, fast));
    srv.wait_idle();
}

#[test]
fn a_session_closed_while_its_filesystem_is_on_a_thread_is_cleaned_up_there() {
    // A loop of the test's own, so that it can close every session (`close_all`) while
    // a call sleeps: the session ends with its filesystem away, and the thread settles
    // the running atomic upload (its temporary removed) and drops the filesystem.
    let probe = Arc::new(Probe::default());
    let home = tempfile::tempdir().expect("tempdir");
    let root = home.path().to_path_buf();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (close_tx, close_rx) = std::sync::mpsc::channel::<()>();
    let loop_probe = Arc::clone(&probe);
    let loop_root = root.clone();
    let server = std::thread::spawn(move || {
        let mut users = DummyAuthorizer::new();
        users
            .add_user("slow", "pw", &loop_root, "elradfmwMT", None, None)
            .expect("add slow");
        let auth = WithFilesystem::new(users, move |_, home| {
            Ok(Box::new(SlowFs::new(home, true, &loop_probe)?) as Box<dyn FileSystem>)
        });
        let mut ftp = ftpdlib::servers::FtpServer::builder(auth)
            .configure(|h| h.atomic_uploads = true)
            .bind("127.0.0.1:0")
            .expect("bind");
        addr_tx.send(ftp.local_addr()).expect("address");
        let deadline = Instant::now() + Duration::from_secs(20);
        while close_rx.try_recv().is_err() && Instant::now() < deadline {
            ftp.poll_once(Duration::from_millis(5)).expect("poll");
        }
        ftp.close_all();
        (ftp.handler_count(), ftp.timer_count())
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the server started");
    let mut c = Client::connect(addr);
    c.login("slow", "pw");
    c.expect("TYPE I", 200);
    let mut pasv = c.pasv();
    let (code, text) = c.cmd("STOR big.bin");
    assert!(code == 125 || code == 150, "{code} {text}");
    pasv.write_all(&[7; 100_000]).expect("upload");
    // The upload runs; a SIZE sends the filesystem to a thread for 500 ms.
    probe.delay_ms.store(500, Ordering::SeqCst);
    c.send("SIZE big.bin");
    probe.wait_in_call();
    close_tx.send(()).expect("close");
    let (handlers, timers) = server.join().expect("the loop thread");
    assert_eq!((handlers, timers), (0, 0));
    // The thread ends the call, settles the upload and drops the filesystem.
    let deadline = Instant::now() + Duration::from_secs(10);
    while probe.alive.load(Ordering::SeqCst) > 0 {
        assert!(
            Instant::now() < deadline,
            "the filesystem was never dropped"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let left: Vec<_> = std::fs::read_dir(&root)
        .expect("root")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    drop((c, pasv));
}

#[test]
fn durable_atomic_uploads_with_a_quota_on_a_blocking_filesystem() {
    // `fsync_uploads` with atomic uploads and a quota: the account settled, the syncs
    // prepared and the rename between them made on the filesystem threads.
    let probe = Arc::new(Probe::default());
    let quota = Quota {
        bytes: Some(1 << 20),
        files: Some(10),
    };
    let srv = server_with(
        true,
        &probe,
        |h| {
            h.fsync_uploads = true;
            h.atomic_uploads = true;
        },
        |auth| auth.set_quota("slow", Some(quota)).expect("set the quota"),
    );
    let mut c = login(&srv, "slow");
    probe.delay_ms.store(20, Ordering::SeqCst);
    let data = random_bytes(100_000, 0xd0ab1e);
    c.stor("f.bin", &data);
    assert!(std::fs::read(srv.root().join("f.bin")).expect("f.bin") == data);
    assert_eq!(
        c.expect("SITE QUOTA", 200),
        "Quota: 100000 / 1048576 bytes, 1 / 10 files."
    );
    // Over the quota: 552, nothing left, the usage as before.
    let pasv = c.pasv();
    let (code, text) = c.cmd("STOR g.bin");
    assert!(code == 125 || code == 150, "{code} {text}");
    let mut pasv = pasv;
    let _ = pasv.write_all(&vec![5; 1 << 20]);
    drop(pasv);
    assert_eq!(c.reply().0, 552);
    assert_eq!(
        c.expect("SITE QUOTA", 200),
        "Quota: 100000 / 1048576 bytes, 1 / 10 files."
    );
    let names: Vec<_> = std::fs::read_dir(srv.root())
        .expect("root")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["f.bin"], "left behind");
    c.expect("QUIT", 221);
    drop(c);
    srv.wait_idle();
    probe.wait_dropped();
}

#[test]
fn a_client_leaving_mid_upload_is_cleaned_up_off_the_loop() {
    // An atomic upload cut by a client that resets both connections: its temporary is
    // removed on a filesystem thread (the removal sleeps 800 ms there) while the other
    // session is answered.
    let probe = Arc::new(Probe::default());
    let srv = server_with(true, &probe, |h| h.atomic_uploads = true, |_| {});
    let mut fast = login(&srv, "fast");
    let mut slow = login(&srv, "slow");
    let mut pasv = slow.pasv();
    let (code, text) = slow.cmd("STOR up.bin");
    assert!(code == 125 || code == 150, "{code} {text}");
    pasv.write_all(&[9; 200_000]).expect("upload");
    probe.delay_ms.store(800, Ordering::SeqCst);
    for s in [slow.stream_clone(), pasv.try_clone().expect("clone")] {
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .expect("linger");
    }
    drop((slow, pasv));
    probe.wait_in_call();
    let t = noop_time(&mut fast);
    assert!(t < Duration::from_millis(300), "NOOP took {t:?}");
    assert!(probe.sleeping(), "the clean-up ended before the NOOP");
    probe.wait_dropped();
    let names: Vec<_> = std::fs::read_dir(srv.root())
        .expect("root")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(names.is_empty(), "left behind: {names:?}");
    fast.expect("QUIT", 221);
    drop(fast);
    srv.wait_idle();
}

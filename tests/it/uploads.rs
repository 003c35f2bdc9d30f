//! Uploads over files that are being read, and durable uploads: a STOR over a file that
//! another session downloads leaves that download the old file, whole (a new file is
//! renamed over the name); `fsync_uploads` (`--fsync-uploads`) answers an upload only
//! once its filesystem synced it, through `FileSystem::sync_upload`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ftpdlib::authorizers::WithFilesystem;
use ftpdlib::filesystems::{AbstractedFs, FileSystem, FsFile, SyncJob};

use crate::util::{heavy, random_bytes, BinServer, Client, TestServer, IO_TIMEOUT};

/// A data connection with a small receive buffer, set before connecting so that the
/// window stays small: the server can send only a little ahead of what the test reads.
fn slow_data_connect(addr: SocketAddr) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(16 << 10).expect("SO_RCVBUF");
    socket
        .connect_timeout(&addr.into(), IO_TIMEOUT)
        .expect("connect the data connection");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream
}

/// A download of a large file is paused after its first bytes while another session
/// STORs other content over it; the download then goes on. The reader must get the old
/// file exactly (a 226 with the old head and the new tail is the bug), and the name must
/// hold the new content, under the old file's mode.
fn download_during_replacement(srv: &TestServer) {
    let root = srv.root();
    let old = random_bytes(16 << 20, 0x01d);
    let new = random_bytes(3 << 20, 0x2e3);
    let target = root.join("big.bin");
    std::fs::write(&target, &old).expect("write the old file");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let old_ino = std::fs::metadata(&target).expect("stat").ino();

    let mut reader = srv.login();
    reader.expect("TYPE I", 200);
    let port = reader.epsv_port();
    let mut data = slow_data_connect(SocketAddr::new(reader.peer_addr().ip(), port));
    let (code, text) = reader.cmd("RETR big.bin");
    assert!(code == 125 || code == 150, "RETR: {code} {text}");
    let mut got = vec![0; 64 << 10];
    data.read_exact(&mut got)
        .expect("the download's first bytes");

    let mut writer = srv.login();
    writer.stor("big.bin", &new);
    // The writer's 226 came: the name holds the whole new file.
    assert!(std::fs::read(&target).expect("read") == new, "new content");

    data.read_to_end(&mut got)
        .expect("the rest of the download");
    drop(data);
    let (code, text) = reader.reply();
    if code == 226 {
        assert_eq!(
            got.len(),
            old.len(),
            "a 226 for a download of the wrong length"
        );
        assert!(got == old, "a 226 for bytes that are not the old file");
    } else {
        assert!((400..500).contains(&code), "RETR ended with {code} {text}");
    }
    // In a new inode, with the old file's permission bits.
    let meta = std::fs::metadata(&target).expect("stat");
    assert_ne!(meta.ino(), old_ino, "written in place");
    assert_eq!(meta.mode() & 0o7777, 0o640);
    // Once the reader is done, nothing is left beside the file.
    let names: Vec<_> = std::fs::read_dir(&root)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("big.bin")]);
}

#[test]
fn a_download_keeps_the_old_file_whole_while_a_stor_replaces_it() {
    let _heavy = heavy();
    let srv = TestServer::start();
    download_during_replacement(&srv);
}

#[test]
fn a_download_keeps_the_old_file_whole_while_an_atomic_stor_replaces_it() {
    let _heavy = heavy();
    let srv = TestServer::with(|h| h.atomic_uploads = true, |_| {});
    download_during_replacement(&srv);
}

/// A server whose `user` may store [`QUOTA`] bytes, over FTPS with `tls`.
fn quota_server(tls: Option<ftpdlib::config::TlsConfig>) -> TestServer {
    TestServer::with_authorizer(
        |mut auth| {
            auth.set_quota_bytes("user", Some(QUOTA)).expect("quota");
            Box::new(auth)
        },
        move |h| h.tls = tls,
        |_| {},
        |b| b,
    )
}

const QUOTA: u64 = 4 << 20;

/// What happens to `x` while an upload to it runs, once it has sent its first bytes.
#[derive(Debug, Clone, Copy)]
enum Meanwhile {
    /// Another session STORs `x` (a new file renamed over the name).
    Stored,
    /// Another session DELEs `x`.
    Deleted,
}

impl Meanwhile {
    /// Does it from a second session, and checks what the name holds after it.
    fn run(self, srv: &TestServer, other: &[u8]) {
        let mut c = srv.login();
        match self {
            Meanwhile::Stored => c.stor("x", other),
            Meanwhile::Deleted => {
                c.expect("DELE x", 250);
            }
        }
    }

    fn check(self, srv: &TestServer, other: &[u8]) {
        let left = std::fs::read(srv.root().join("x"));
        match self {
            Meanwhile::Stored => assert!(left.expect("x") == other, "x is not the later upload"),
            Meanwhile::Deleted => assert!(left.is_err(), "x came back"),
        }
    }
}

/// The bytes used, from a `SITE QUOTA` reply.
fn quota_used(text: &str) -> u64 {
    text.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("SITE QUOTA: {text:?}"))
}

/// An upload of twice the quota loses its name after its first 512 KiB (another session
/// STORs over it or deletes it). Its file can never be read again, so the rest is
/// received to the end and answered 226, but not written: it does not fill the quota
/// (writing it all, the upload was cut with 552), and the name holds what the other
/// session left.
#[test]
fn an_upload_whose_file_loses_its_name_is_received_whole_but_not_written() {
    let payload = random_bytes(2 * QUOTA as usize, 0x5e1);
    let other = random_bytes(100_000, 0x5e2);
    for (meanwhile, ty) in [
        (Meanwhile::Stored, "I"),
        (Meanwhile::Stored, "A"),
        (Meanwhile::Deleted, "I"),
    ] {
        let srv = quota_server(None);
        let mut c = srv.login();
        c.expect(&format!("TYPE {ty}"), 200);
        let mut data = c.pasv();
        let (code, text) = c.cmd("STOR x");
        assert!(code == 125 || code == 150, "STOR: {code} {text}");
        data.write_all(&payload[..512 << 10])
            .expect("the first bytes");
        meanwhile.run(&srv, &other);
        if let Err(e) = data.write_all(&payload[512 << 10..]) {
            panic!("{meanwhile:?} TYPE {ty}: the rest: {e}; {:?}", c.reply());
        }
        data.shutdown(Shutdown::Write).expect("shutdown");
        let mut rest = Vec::new();
        let _ = data.read_to_end(&mut rest);
        let (code, text) = c.reply();
        assert_eq!(code, 226, "{meanwhile:?} TYPE {ty}: {text}");
        meanwhile.check(&srv, &other);
        let used = quota_used(&c.expect("SITE QUOTA", 200));
        assert!(
            used < QUOTA / 2,
            "{meanwhile:?} TYPE {ty}: {used} bytes charged for a file that lost its name"
        );
    }
}

/// The same over FTPS, where the records are still opened (and checked) to the
/// close_notify, and only the writing stops.
#[test]
fn an_ftps_upload_whose_file_loses_its_name_is_received_whole_but_not_written() {
    use crate::tls::client::{client_config, have_openssl, Certs, FtpsClient};
    if !have_openssl() {
        return;
    }
    let certs = Certs::new();
    let srv = quota_server(Some(certs.server_tls()));
    let payload = random_bytes(2 * QUOTA as usize, 0x5e3);
    let other = random_bytes(100_000, 0x5e4);
    for meanwhile in [Meanwhile::Stored, Meanwhile::Deleted] {
        let config = client_config();
        let mut c = FtpsClient::protected(srv.addr, &config);
        c.expect("TYPE I", 200);
        let mut data = c.pasv(Some(&config));
        c.start("STOR x");
        data.write_all(&payload[..512 << 10])
            .expect("the first bytes");
        data.flush().expect("flush");
        meanwhile.run(&srv, &other);
        data.write_all(&payload[512 << 10..]).expect("the rest");
        data.finish_upload();
        let (code, text) = c.reply();
        assert_eq!(code, 226, "{meanwhile:?}: {text}");
        meanwhile.check(&srv, &other);
        let used = quota_used(&c.expect("SITE QUOTA", 200));
        assert!(used < QUOTA / 2, "{meanwhile:?}: {used} bytes charged");
        c.expect(
            "DELE x",
            if matches!(meanwhile, Meanwhile::Stored) {
                250
            } else {
                550
            },
        );
    }
}

#[test]
fn rest_stor_and_appe_still_write_in_place_and_links_are_kept() {
    let srv = TestServer::start();
    let root = srv.root();
    std::fs::write(root.join("f"), b"0123456789").expect("write");
    std::fs::hard_link(root.join("f"), root.join("twin")).expect("link");
    std::fs::write(root.join("g"), b"abc").expect("write");
    let ino = |name: &str| std::fs::metadata(root.join(name)).expect("stat").ino();
    let (f_ino, g_ino) = (ino("f"), ino("g"));
    let mut c = srv.login();
    // A file with two links: written in place, both names see the upload.
    c.stor("f", b"new");
    assert_eq!(ino("f"), f_ino);
    assert_eq!(std::fs::read(root.join("twin")).expect("twin"), b"new");
    c.expect("TYPE I", 200);
    let data = c.pasv();
    c.upload("APPE g", data, b"def");
    assert_eq!(ino("g"), g_ino);
    c.expect("REST 1", 350);
    let data = c.pasv();
    c.upload("STOR g", data, b"X");
    assert_eq!(ino("g"), g_ino);
    assert_eq!(std::fs::read(root.join("g")).expect("g"), b"aX");
}

/// A real filesystem (the standard view of a directory) that counts the syncs the
/// server asks of it and runs, and can make them fail with an errno.
struct Counting {
    inner: AbstractedFs,
    asked: Arc<Mutex<Vec<bool>>>,
    ran: Arc<AtomicUsize>,
    fail: Arc<Mutex<Option<i32>>>,
}

impl FileSystem for Counting {
    fn root(&self) -> &Path {
        self.inner.root()
    }
    fn cwd(&self) -> &str {
        self.inner.cwd()
    }
    fn set_cwd(&mut self, ftp_path: String) {
        self.inner.set_cwd(ftp_path)
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
    fn sync_upload(&self, file: &mut FsFile, dir: Option<&Path>) -> io::Result<SyncJob> {
        self.asked.lock().expect("lock").push(dir.is_some());
        let job = self.inner.sync_upload(file, dir)?;
        let ran = Arc::clone(&self.ran);
        let fail = *self.fail.lock().expect("lock");
        Ok(SyncJob::new(move || {
            let synced = job.run();
            ran.fetch_add(1, Ordering::SeqCst);
            match fail {
                Some(errno) => Err(io::Error::from_raw_os_error(errno)),
                None => synced,
            }
        }))
    }
}

struct Counters {
    asked: Arc<Mutex<Vec<bool>>>,
    ran: Arc<AtomicUsize>,
    fail: Arc<Mutex<Option<i32>>>,
}

impl Counters {
    /// The syncs asked since the last call (true: with the directory) and how many ran.
    fn take(&self) -> (Vec<bool>, usize) {
        let asked = std::mem::take(&mut *self.asked.lock().expect("lock"));
        (asked, self.ran.swap(0, Ordering::SeqCst))
    }
}

fn counting_server(atomic: bool) -> (TestServer, Counters) {
    let counters = Counters {
        asked: Arc::default(),
        ran: Arc::default(),
        fail: Arc::default(),
    };
    let (asked, ran, fail) = (
        Arc::clone(&counters.asked),
        Arc::clone(&counters.ran),
        Arc::clone(&counters.fail),
    );
    let srv = TestServer::with_users(
        move |auth| {
            Box::new(WithFilesystem::new(auth, move |_user, home| {
                Ok(Box::new(Counting {
                    inner: AbstractedFs::new(home)?,
                    asked: Arc::clone(&asked),
                    ran: Arc::clone(&ran),
                    fail: Arc::clone(&fail),
                }) as Box<dyn FileSystem>)
            }))
        },
        |h| {
            h.fsync_uploads = true;
            h.atomic_uploads = atomic;
        },
        |_| {},
        |b| b,
    );
    (srv, counters)
}

#[test]
fn fsync_uploads_syncs_each_upload_and_its_new_name_before_the_226() {
    let (srv, counters) = counting_server(false);
    let root = srv.root();
    let mut c = srv.login();
    // A new name: the file and the directory.
    c.stor("a", b"one");
    assert_eq!(counters.take(), (vec![true], 1));
    // Over an existing file: a new file renamed over it, so the directory too.
    c.stor("a", b"two");
    assert_eq!(counters.take(), (vec![true], 1));
    assert_eq!(std::fs::read(root.join("a")).expect("a"), b"two");
    // APPE to an existing file and REST + STOR: the data only.
    let data = c.pasv();
    c.upload("APPE a", data, b"+");
    assert_eq!(counters.take(), (vec![false], 1));
    c.expect("REST 1", 350);
    let data = c.pasv();
    c.upload("STOR a", data, b"W");
    assert_eq!(counters.take(), (vec![false], 1));
    assert_eq!(std::fs::read(root.join("a")).expect("a"), b"tW");
    // APPE creating a file, and STOU: new names.
    let data = c.pasv();
    c.upload("APPE b", data, b"new");
    assert_eq!(counters.take(), (vec![true], 1));
    let data = c.pasv();
    c.upload("STOU", data, b"unique");
    assert_eq!(counters.take(), (vec![true], 1));
    // Downloads and listings are not synced.
    assert_eq!(c.retr("a"), b"tW");
    c.listing("LIST");
    assert_eq!(counters.take(), (vec![], 0));
}

#[test]
fn an_atomic_upload_syncs_its_data_before_the_rename_and_the_name_after() {
    let (srv, counters) = counting_server(true);
    let mut c = srv.login();
    c.stor("f", b"first");
    assert_eq!(counters.take(), (vec![false, true], 2));
    c.stor("f", b"second");
    assert_eq!(counters.take(), (vec![false, true], 2));
    assert_eq!(std::fs::read(srv.root().join("f")).expect("f"), b"second");
}

#[test]
fn a_failed_sync_is_answered_452_for_a_full_disk_and_451_otherwise() {
    for atomic in [false, true] {
        let (srv, counters) = counting_server(atomic);
        let root = srv.root();
        std::fs::write(root.join("f"), b"old").expect("write");
        let mut c = srv.login();
        for (errno, code) in [(libc::ENOSPC, 452), (libc::EDQUOT, 552), (libc::EIO, 451)] {
            *counters.fail.lock().expect("lock") = Some(errno);
            c.expect("TYPE I", 200);
            let mut data = c.pasv();
            let (first, text) = c.cmd("STOR f");
            assert!(first == 125 || first == 150, "{text}");
            data.write_all(b"new").expect("send");
            data.shutdown(Shutdown::Write).expect("shutdown");
            let mut rest = Vec::new();
            let _ = data.read_to_end(&mut rest);
            let (got, text) = c.reply();
            assert_eq!(got, code, "atomic {atomic}, errno {errno}: {text}");
            let (_, ran) = counters.take();
            assert!(ran >= 1, "the sync ran");
            if atomic {
                // The data never reached the disk: the old file stays, no temporary.
                assert_eq!(std::fs::read(root.join("f")).expect("f"), b"old");
            }
        }
        *counters.fail.lock().expect("lock") = None;
        // The session goes on.
        c.stor("f", b"fine");
        assert_eq!(std::fs::read(root.join("f")).expect("f"), b"fine");
        let leftovers = std::fs::read_dir(&root)
            .expect("read_dir")
            .filter(|e| {
                e.as_ref().is_ok_and(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".ftpdlib-part.")
                })
            })
            .count();
        assert_eq!(leftovers, 0, "atomic {atomic}: temporaries left");
    }
}

#[test]
fn the_binary_takes_fsync_uploads_and_logs_each_sync() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_str().expect("a UTF-8 temporary directory");
    let config = tmp.path().join("ftpdlib.toml");
    std::fs::write(&config, "fsync-uploads = true\n").expect("write the config file");
    let config = config.to_str().expect("a UTF-8 path").to_owned();
    for (args, env) in [
        (vec!["-w", "-d", dir, "--fsync-uploads"], None),
        (vec!["-w", "-d", dir], Some("true")),
        (vec!["-w", "-d", dir, "--config", &config], None),
    ] {
        let mut srv = BinServer::start_env(
            &args,
            &[("RUST_LOG", Some("debug")), ("FTPDLIB_FSYNC_UPLOADS", env)],
        );
        let mut c = Client::connect(srv.addr);
        c.login("anonymous", "a@b");
        c.stor("durable.bin", &[7; 100_000]);
        c.expect("QUIT", 221);
        srv.terminate();
        let log = srv.log();
        assert!(
            log.contains("fsync of") && log.contains("durable.bin"),
            "{args:?}: no sync in the log:\n{log}"
        );
    }
    // Without the option, no sync.
    let mut srv = BinServer::start_env(&["-w", "-d", dir], &[("RUST_LOG", Some("debug"))]);
    let mut c = Client::connect(srv.addr);
    c.login("anonymous", "a@b");
    c.stor("plain.bin", b"x");
    c.expect("QUIT", 221);
    srv.terminate();
    assert!(!srv.log().contains("fsync of"), "{}", srv.log());
}

#[test]
fn memory_fs_uploads_are_answered_with_fsync_uploads_on() {
    for atomic in [false, true] {
        let mem = ftpdlib::filesystems::MemoryFs::new();
        mem.write_file("/f", b"old").expect("write");
        let srv = TestServer::with_memory_config(
            &mem,
            |h| {
                h.fsync_uploads = true;
                h.atomic_uploads = atomic;
            },
            |b| b,
        );
        let mut c = srv.login();
        c.stor("f", b"new content");
        c.stor("g", b"another");
        assert_eq!(mem.read_file("/f").as_deref(), Some(&b"new content"[..]));
        assert_eq!(mem.read_file("/g").as_deref(), Some(&b"another"[..]));
        assert_eq!(c.retr("f"), b"new content");
    }
}

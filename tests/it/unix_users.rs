//! `--unix-users` as root: system accounts made for the test with useradd/chpasswd log in
//! with their password, act as themselves on disk (uid, gid and supplementary groups),
//! and the server process is back to root between commands. The server runs as the
//! binary, in its own process: impersonation switches the identity of a whole process,
//! which must not happen to this test process's other threads.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use crate::util::{run_tool, BinServer, Client, IO_TIMEOUT};

/// Whether the test can run: root, with useradd. Otherwise prints why and returns false.
fn as_root() -> bool {
    let uid = String::from_utf8(run_tool(Command::new("id").arg("-u"), IO_TIMEOUT).stdout)
        .unwrap_or_default();
    if uid.trim() != "0" {
        eprintln!("SKIP: --unix-users tests need root (uid is {})", uid.trim());
        return false;
    }
    if Command::new("useradd").arg("--help").output().is_err() {
        eprintln!("SKIP: useradd is not installed");
        return false;
    }
    true
}

/// useradd and groupadd lock /etc/passwd and /etc/group: one test at a time.
fn accounts_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn run_ok(cmd: &mut Command) -> String {
    let out = run_tool(cmd, IO_TIMEOUT);
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn feed(cmd: &str, args: &[&str], input: &str) {
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A name no other run uses: `ftpd<tag><pid>`.
fn unique(tag: &str) -> String {
    format!("ftpd{tag}{}", std::process::id())
}

/// A system group, deleted on drop.
struct SystemGroup {
    name: String,
    gid: u32,
}

impl SystemGroup {
    fn create(tag: &str) -> SystemGroup {
        let name = unique(tag);
        let _ = Command::new("groupdel").arg(&name).output();
        run_ok(Command::new("groupadd").arg(&name));
        let line = run_ok(Command::new("getent").args(["group", &name]));
        let gid = line
            .split(':')
            .nth(2)
            .and_then(|g| g.parse().ok())
            .expect("a gid");
        SystemGroup { name, gid }
    }
}

impl Drop for SystemGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.name).output();
    }
}

/// A system account with a home, deleted (home included) on drop, even on failure.
struct SystemUser {
    name: String,
    uid: u32,
    gid: u32,
    home: std::path::PathBuf,
}

impl SystemUser {
    /// `useradd -m -s <shell> [-G <group>]`.
    fn create(tag: &str, shell: &str, group: Option<&SystemGroup>) -> SystemUser {
        let name = unique(tag);
        let _ = Command::new("userdel").args(["-r", "-f", &name]).output();
        let mut cmd = Command::new("useradd");
        cmd.args(["-m", "-s", shell]);
        if let Some(g) = group {
            cmd.args(["-G", &g.name]);
        }
        run_ok(cmd.arg(&name));
        let id = |flag: &str| -> u32 {
            run_ok(Command::new("id").args([flag, &name]))
                .trim()
                .parse()
                .expect("a number")
        };
        let (uid, gid) = (id("-u"), id("-g"));
        let line = run_ok(Command::new("getent").args(["passwd", &name]));
        let home = line.trim().split(':').nth(5).expect("a home").into();
        SystemUser {
            name,
            uid,
            gid,
            home,
        }
    }

    /// `chpasswd` with the system's default method.
    fn set_password(&self, password: &str) {
        feed("chpasswd", &[], &format!("{}:{password}\n", self.name));
    }

    /// `chpasswd -e` with a hash made by ftpdlib (yescrypt where available).
    fn set_hash(&self, hash: &str) {
        feed("chpasswd", &["-e"], &format!("{}:{hash}\n", self.name));
    }
}

impl Drop for SystemUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel")
            .args(["-r", "-f", &self.name])
            .output();
    }
}

/// The `Uid:`/`Gid:`/`Groups:` lines of a process's status: real, effective, saved and
/// filesystem ids, and the supplementary groups.
fn identity(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .filter(|l| l.starts_with("Uid:") || l.starts_with("Gid:") || l.starts_with("Groups:"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn system_user_acts_as_itself() {
    if !as_root() {
        return;
    }
    let _lock = accounts_lock();
    let group = SystemGroup::create("g");
    let user = SystemUser::create("u", "/bin/sh", Some(&group));
    user.set_password("Secr3t pw");
    // Root-only, group-only and user files in the user's home.
    let secret = user.home.join("secret");
    std::fs::write(&secret, b"root only").expect("write");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let shared = user.home.join("shared");
    std::fs::write(&shared, b"group readable").expect("write");
    std::os::unix::fs::chown(&shared, Some(0), Some(group.gid)).expect("chown");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).expect("chmod");

    let srv = BinServer::start(&["--unix-users", "--perm", "elradfmwMT"]);
    let before = identity(srv.pid());
    assert!(before.starts_with("Uid: 0 0 0 0; Gid: 0 0 0 0"), "{before}");

    let mut c = Client::connect(srv.addr);
    c.expect("USER nobody-such-ftpdlib", 331);
    assert_eq!(c.cmd("PASS x"), (530, "Authentication failed.".into()));
    c.expect(&format!("USER {}", user.name), 331);
    assert_eq!(c.cmd("PASS wrong"), (530, "Authentication failed.".into()));
    c.login(&user.name, "Secr3t pw");
    // UnixFilesystem: the real tree, starting in the passwd home
    let home = user.home.to_str().expect("utf-8 home");
    assert_eq!(
        c.cmd("PWD"),
        (257, format!("\"{home}\" is the current directory."))
    );
    c.stor("up.txt", b"uploaded");
    let meta = std::fs::metadata(user.home.join("up.txt")).expect("uploaded file");
    assert_eq!((meta.uid(), meta.gid()), (user.uid, user.gid));
    c.expect("MKD made", 257);
    let meta = std::fs::metadata(user.home.join("made")).expect("made dir");
    assert_eq!((meta.uid(), meta.gid()), (user.uid, user.gid));
    // The OS decides: a root-only file is unreadable, a group file is readable through
    // the supplementary group, root's home is closed.
    c.expect("TYPE I", 200);
    let (code, text) = c.cmd("RETR secret");
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("Permission denied"), "{text}");
    assert_eq!(c.retr("shared"), b"group readable");
    assert_eq!(c.cmd("CWD /root").0, 550);
    let outside = format!("/{}", user.name); // in /, which only root may write
    let _data = c.pasv();
    let (code, text) = c.cmd(&format!("STOR {outside}"));
    assert_eq!(code, 550, "{text}");
    assert!(!std::path::Path::new(&outside).exists());
    // Between commands, the process is root again.
    assert_eq!(identity(srv.pid()), before);
    c.expect("QUIT", 221);
    assert!(c.expect_closed().is_empty());
    assert_eq!(identity(srv.pid()), before);
    // A new session switches again.
    let mut c = Client::connect(srv.addr);
    c.login(&user.name, "Secr3t pw");
    c.stor("again.txt", b"again");
    let meta = std::fs::metadata(user.home.join("again.txt")).expect("uploaded file");
    assert_eq!(meta.uid(), user.uid);
    // A file with data is rewritten through a second open file of it, opened as the user.
    c.stor("up.txt", b"rewritten");
    assert_eq!(
        std::fs::read(user.home.join("up.txt")).expect("rewritten file"),
        b"rewritten"
    );
    c.expect("QUIT", 221);
    assert_eq!(identity(srv.pid()), before);
    // An expired account (shadow's expiry date) is refused, right password or not.
    run_ok(Command::new("usermod").args(["-e", "1970-01-02", &user.name]));
    let mut c = Client::connect(srv.addr);
    c.expect(&format!("USER {}", user.name), 331);
    assert_eq!(
        c.cmd("PASS Secr3t pw"),
        (530, "Authentication failed.".into())
    );
    let log = srv.log();
    assert!(
        !log.contains("Secr3t"),
        "the password reached the log: {log}"
    );
}

#[test]
fn user_without_a_valid_shell_is_refused() {
    if !as_root() {
        return;
    }
    let shells = std::fs::read_to_string("/etc/shells").unwrap_or_default();
    let Some(shell) = ["/usr/sbin/nologin", "/bin/false", "/sbin/nologin"]
        .into_iter()
        .find(|s| std::path::Path::new(s).exists() && !shells.lines().any(|l| l.trim() == *s))
    else {
        eprintln!("SKIP: every candidate shell is listed in /etc/shells");
        return;
    };
    let _lock = accounts_lock();
    let user = SystemUser::create("n", shell, None);
    let hash = ftpdlib::authorizers::hash_password("Secr3t pw").expect("hash");
    user.set_hash(&hash);
    let srv = BinServer::start(&["--unix-users"]);
    let mut c = Client::connect(srv.addr);
    c.expect(&format!("USER {}", user.name), 331);
    // a wrong password learns nothing about the shell
    assert_eq!(c.cmd("PASS wrong"), (530, "Authentication failed.".into()));
    c.expect(&format!("USER {}", user.name), 331);
    assert_eq!(
        c.cmd("PASS Secr3t pw"),
        (
            530,
            format!("User {} doesn't have a valid shell.", user.name)
        )
    );
    // anonymous is off with --unix-users
    c.expect("USER anonymous", 331);
    assert_eq!(
        c.cmd("PASS x@y"),
        (530, "Anonymous access not allowed. Disconnecting.".into())
    );
}

#[test]
fn unix_users_flag_errors() {
    let out = run_tool(
        Command::new(env!("CARGO_BIN_EXE_ftpdlib")).args(["-p", "0", "--unix-users", "-d", "/tmp"]),
        IO_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be combined with -d"));
    if !as_root() {
        return;
    }
    // Not root: a clear error (run as nobody through setpriv).
    let out = run_tool(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_ftpdlib"))
            .args(["-p", "0", "--unix-users"]),
        IO_TIMEOUT,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("setpriv:") {
        eprintln!("SKIP: setpriv cannot drop privileges here: {err}");
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("super user privileges are required"), "{err}");
}

#[test]
fn concurrent_sessions_of_two_users_on_threads() {
    if !as_root() {
        return;
    }
    let _lock = accounts_lock();
    let users = [
        SystemUser::create("ta", "/bin/sh", None),
        SystemUser::create("tb", "/bin/sh", None),
    ];
    for u in &users {
        u.set_password("Thr3ad pw");
    }
    // One thread per session: impersonation must still never leak between sessions.
    let srv = BinServer::start(&["--unix-users", "-w", "--concurrency", "multi-thread"]);
    let before = identity(srv.pid());
    std::thread::scope(|scope| {
        for u in &users {
            let addr = srv.addr;
            scope.spawn(move || {
                let mut c = Client::connect(addr);
                c.login(&u.name, "Thr3ad pw");
                for i in 0..FILES {
                    c.stor(&format!("f{i}"), u.name.as_bytes());
                    c.expect(&format!("MKD d{i}"), 257);
                }
                c.expect("QUIT", 221);
            });
        }
    });
    for u in &users {
        for i in 0..FILES {
            for name in [format!("f{i}"), format!("d{i}")] {
                let meta = std::fs::metadata(u.home.join(&name)).expect("created");
                assert_eq!(
                    (meta.uid(), meta.gid()),
                    (u.uid, u.gid),
                    "{} of {}",
                    name,
                    u.name
                );
            }
        }
    }
    assert_eq!(identity(srv.pid()), before);
}

/// Uploads and directories each session makes in the concurrency test.
const FILES: usize = 15;

/// The server of [`options_over_ftp`]: this test binary re-run as
/// `--exact unix_users::unix_server_child --ignored`, with its configuration in
/// [`CHILD_ENV`], so that its impersonation switches that process, not this one.
#[test]
#[ignore = "the server process of options_over_ftp, started by it"]
fn unix_server_child() {
    use ftpdlib::authorizers::{UnixAuthorizer, UnixOptions, UserOverride};
    let Ok(conf) = std::env::var(CHILD_ENV) else {
        return;
    };
    let get = |key: &str| {
        conf.split(';')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let mut opts = UnixOptions::default();
    opts.allowed_users = get("allowed").into_iter().collect();
    opts.rejected_users = get("rejected").into_iter().collect();
    opts.anonymous_user = get("anonymous");
    #[cfg(feature = "pam")]
    {
        opts.pam_service = get("pam");
    }
    let mut auth = UnixAuthorizer::new(opts).expect("a UnixAuthorizer");
    if let Some(user) = get("override") {
        let mut o = UserOverride::default();
        o.password = Some("override pw".into());
        o.perm = Some("elr".into());
        o.msg_login = Some(format!("hi {user}"));
        auth.override_user(&user, o).expect("override");
    }
    let port: u16 = get("port").and_then(|p| p.parse().ok()).expect("a port");
    let mut server = ftpdlib::servers::FtpServer::builder(auth)
        .configure(|c| c.auth_failed_timeout = std::time::Duration::from_millis(50))
        .bind(("127.0.0.1", port))
        .expect("bind");
    server.serve_forever(true).expect("serve");
}

/// The configuration of [`unix_server_child`]: `key=value;...`.
const CHILD_ENV: &str = "FTPDLIB_TEST_UNIX_SERVER";

/// A [`unix_server_child`] process listening on 127.0.0.1; killed on drop.
struct ChildServer {
    addr: std::net::SocketAddr,
    child: std::process::Child,
}

impl ChildServer {
    fn start(conf: &str) -> ChildServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // /proc/self/exe, not current_exe(): it still runs this binary when a rebuild
        // has replaced the file meanwhile.
        let mut child = Command::new("/proc/self/exe")
            .args(["--exact", "unix_users::unix_server_child", "--ignored"])
            .args(["--test-threads", "1", "--nocapture"])
            .env(CHILD_ENV, format!("{conf};port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server process");
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = std::time::Instant::now() + IO_TIMEOUT;
        loop {
            if std::net::TcpStream::connect_timeout(&addr, IO_TIMEOUT).is_ok() {
                return ChildServer { addr, child };
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server process did not listen ({exited:?})");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn options_over_ftp() {
    if !as_root() {
        return;
    }
    let _lock = accounts_lock();
    let [a, b, c] = ["oa", "ob", "oc"].map(|t| SystemUser::create(t, "/bin/sh", None));
    for u in [&a, &b, &c] {
        u.set_password("Sys pw");
    }
    std::fs::write(a.home.join("pub"), b"public").expect("write");
    std::os::unix::fs::chown(a.home.join("pub"), Some(a.uid), Some(a.gid)).expect("chown");
    let secret = a.home.join("secret");
    std::fs::write(&secret, b"root only").expect("write");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    let srv = ChildServer::start(&format!(
        "rejected={};anonymous={};override={}",
        c.name, a.name, b.name
    ));
    let mut cl = Client::connect(srv.addr);
    // rejected_users: refused, but only with the right password
    cl.expect(&format!("USER {}", c.name), 331);
    assert_eq!(cl.cmd("PASS nope"), (530, "Authentication failed.".into()));
    cl.expect(&format!("USER {}", c.name), 331);
    assert_eq!(
        cl.cmd("PASS Sys pw"),
        (530, format!("User {} is not allowed to login.", c.name))
    );
    // override_user: its password replaces the system one; its rights and message apply
    cl.expect(&format!("USER {}", b.name), 331);
    assert_eq!(
        cl.cmd("PASS Sys pw"),
        (530, "Authentication failed. Disconnecting.".into())
    );
    let mut cl = Client::connect(srv.addr);
    cl.expect(&format!("USER {}", b.name), 331);
    assert_eq!(cl.cmd("PASS override pw"), (230, format!("hi {}", b.name)));
    assert_eq!(cl.cmd("MKD x"), (550, "Not enough privileges.".into()));
    // anonymous_user: anonymous runs as that account, read-only, chrooted to its home
    cl.expect("USER anonymous", 331);
    cl.expect("PASS guest@", 230);
    assert_eq!(
        cl.cmd("PWD"),
        (257, "\"/\" is the current directory.".into())
    );
    assert_eq!(cl.retr("pub"), b"public");
    cl.expect("TYPE I", 200);
    let (code, text) = cl.cmd("RETR secret");
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("Permission denied"), "{text}");
    assert_eq!(cl.cmd("DELE pub"), (550, "Not enough privileges.".into()));
    // a plain system user with the global rights
    cl.login(&a.name, "Sys pw");
    cl.stor("mine", b"m");
    let meta = std::fs::metadata(a.home.join("mine")).expect("uploaded");
    assert_eq!(meta.uid(), a.uid);
    cl.expect("QUIT", 221);
    drop(srv);

    // allowed_users: everyone else is refused
    let srv = ChildServer::start(&format!("allowed={}", a.name));
    let mut cl = Client::connect(srv.addr);
    cl.expect(&format!("USER {}", b.name), 331);
    assert_eq!(
        cl.cmd("PASS Sys pw"),
        (530, format!("User {} is not allowed to login.", b.name))
    );
    cl.login(&a.name, "Sys pw");
    cl.expect("USER anonymous", 331);
    assert_eq!(
        cl.cmd("PASS x"),
        (530, "Anonymous access not allowed.".into())
    );
    cl.expect("QUIT", 221);
}

/// A PAM service file in /etc/pam.d, removed on drop.
#[cfg(feature = "pam")]
struct PamService {
    name: String,
}

#[cfg(feature = "pam")]
impl PamService {
    fn create() -> PamService {
        let name = unique("pam");
        std::fs::write(
            format!("/etc/pam.d/{name}"),
            "auth required pam_unix.so\naccount required pam_unix.so\n",
        )
        .expect("write the PAM service");
        PamService { name }
    }
}

#[cfg(feature = "pam")]
impl Drop for PamService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/etc/pam.d/{}", self.name));
    }
}

#[cfg(feature = "pam")]
#[test]
fn pam_checks_password_and_account() {
    if !as_root() {
        return;
    }
    let _lock = accounts_lock();
    let service = PamService::create();
    let ok = SystemUser::create("pa", "/bin/sh", None);
    let expired = SystemUser::create("pe", "/bin/sh", None);
    for u in [&ok, &expired] {
        u.set_password("Pam pw");
    }
    // expired since 1970-01-02: pam_acct_mgmt refuses it, the password is right
    run_ok(Command::new("usermod").args(["-e", "1970-01-02", &expired.name]));
    let srv = ChildServer::start(&format!("pam={}", service.name));
    let mut c = Client::connect(srv.addr);
    c.expect(&format!("USER {}", ok.name), 331);
    assert_eq!(c.cmd("PASS wrong"), (530, "Authentication failed.".into()));
    c.login(&ok.name, "Pam pw");
    c.stor("via-pam", b"p");
    let meta = std::fs::metadata(ok.home.join("via-pam")).expect("uploaded");
    assert_eq!(meta.uid(), ok.uid);
    c.expect(&format!("USER {}", expired.name), 331);
    assert_eq!(c.cmd("PASS Pam pw"), (530, "Authentication failed.".into()));
    c.expect("QUIT", 221);
}

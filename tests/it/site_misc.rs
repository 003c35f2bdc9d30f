//! proftpd's mod_site_misc commands, off by default: `SITE UTIME` (both forms) and
//! `SITE SYMLINK` (relative links that stay inside the root), over raw commands, through
//! a reload, on a filesystem without links, and with curl through the binary.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ftpdlib::authorizers::DummyAuthorizer;
use ftpdlib::config::HandlerConfig;
use ftpdlib::filesystems::MemoryFs;
use ftpdlib::servers::Reload;

use crate::util::{have_tool, run_tool, BinServer, TestServer, TOOL_TIMEOUT};

/// A server with both commands on, whose root holds `f` ("hello"), `d/g` ("in d") and
/// `a b` (a name with a space), and whose `outside` holds `secret`.
fn enabled() -> TestServer {
    let srv = TestServer::with(
        |c| {
            c.site_utime = true;
            c.site_symlink = true;
        },
        |_| {},
    );
    let root = srv.root();
    std::fs::write(root.join("f"), b"hello").expect("write f");
    std::fs::create_dir(root.join("d")).expect("mkdir d");
    std::fs::write(root.join("d/g"), b"in d").expect("write d/g");
    std::fs::write(root.join("a b"), b"spaced").expect("write a b");
    std::fs::write(srv.outside().join("secret"), b"secret").expect("write secret");
    srv
}

fn link_text(p: &Path) -> String {
    std::fs::read_link(p)
        .unwrap_or_else(|e| panic!("{} is not a link: {e}", p.display()))
        .to_string_lossy()
        .into_owned()
}

#[test]
fn the_commands_are_unknown_unless_turned_on() {
    let srv = TestServer::start();
    std::fs::write(srv.root().join("f"), b"hello").expect("write f");
    let mut c = srv.login();
    assert_eq!(
        c.cmd("SITE UTIME 202001020304 f"),
        (500, "Command \"SITE UTIME\" not understood.".into())
    );
    assert_eq!(
        c.cmd("SITE SYMLINK f l"),
        (500, "Command \"SITE SYMLINK\" not understood.".into())
    );
    let (code, help) = c.cmd("SITE HELP");
    assert_eq!(code, 214);
    assert!(
        !help.contains("UTIME") && !help.contains("SYMLINK"),
        "{help:?}"
    );
    assert_eq!(c.cmd("SITE HELP UTIME").0, 501);
    let (_, feat) = c.cmd("FEAT");
    assert!(!feat.contains("SITE"), "{feat:?}");
    assert!(!srv.root().join("l").exists());
}

#[test]
fn site_help_and_feat_list_them_when_on() {
    let srv = enabled();
    let mut c = srv.login();
    let (code, help) = c.cmd("SITE HELP");
    assert_eq!(code, 214);
    assert!(
        help.contains("\n SYMLINK\n") && help.contains("\n UTIME\n"),
        "{help:?}"
    );
    assert_eq!(
        c.cmd("SITE HELP UTIME"),
        (
            214,
            "Syntax: SITE UTIME <SP> YYYYMMDDhhmm[ss] path (set the modification time).".into()
        )
    );
    let (code, feat) = c.cmd("FEAT");
    assert_eq!(code, 211);
    assert!(feat.contains("\n SITE SYMLINK\n SITE UTIME\n"), "{feat:?}");
}

#[test]
fn site_utime_sets_the_modification_time_in_both_forms() {
    let srv = enabled();
    let mut c = srv.login();
    assert_eq!(
        c.cmd("SITE UTIME 202001020304 f"),
        (200, "SITE UTIME successful.".into())
    );
    assert_eq!(c.cmd("MDTM f"), (213, "20200102030400".into()));
    c.expect("SITE UTIME 19991231235958 /d/g", 200);
    assert_eq!(c.cmd("MDTM d/g"), (213, "19991231235958".into()));
    // A path with spaces, in the short form and in the long one (atime mtime ctime UTC).
    c.expect("SITE UTIME 201001010000 a b", 200);
    assert_eq!(c.cmd("MDTM a b"), (213, "20100101000000".into()));
    c.expect(
        "SITE UTIME a b 20110101000000 20120203040506 20100101000000 UTC",
        200,
    );
    assert_eq!(c.cmd("MDTM a b"), (213, "20120203040506".into()));
    // A directory too, as proftpd does.
    c.expect("SITE UTIME 200501010000 d", 200);
    let mtime = std::fs::metadata(srv.root().join("d"))
        .and_then(|m| m.modified())
        .expect("mtime of d");
    let secs = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    assert_eq!(secs, 1_104_537_600, "2005-01-01T00:00:00Z");
}

#[test]
fn site_utime_refusals() {
    let srv = enabled();
    let mut c = srv.login();
    c.expect("SITE UTIME 202001020304 f", 200);
    for bad in [
        "SITE UTIME 202013010000 f",
        "SITE UTIME 2020010203 f",
        "SITE UTIME 20200102030460 f",
        "SITE UTIME 2020x1020304 f",
        "SITE UTIME f 2020 20200101000000 20200101000000 UTC",
    ] {
        assert_eq!(
            c.cmd(bad),
            (
                501,
                "Invalid time format; expected: YYYYMMDDhhmm[ss].".into()
            ),
            "{bad}"
        );
    }
    assert_eq!(
        c.cmd("SITE UTIME 202001020304"),
        (501, "Invalid SITE UTIME format.".into())
    );
    assert_eq!(c.cmd("SITE UTIME").0, 501);
    assert_eq!(c.cmd("MDTM f"), (213, "20200102030400".into()), "unchanged");
    assert_eq!(
        c.cmd("SITE UTIME 202001020304 nothere"),
        (550, "No such file or directory.".into())
    );
    assert_eq!(c.cmd("SITE UTIME 202001020304 ../outside/secret").0, 550);
    // Without the T right (anonymous has elr).
    let mut anon = srv.client();
    anon.login("anonymous", "x@y");
    assert_eq!(
        anon.cmd("SITE UTIME 199001010000 f"),
        (550, "Not enough privileges.".into())
    );
    assert_eq!(c.cmd("MDTM f"), (213, "20200102030400".into()), "unchanged");
}

#[test]
fn site_symlink_makes_relative_links_inside_the_root() {
    let srv = enabled();
    let root = srv.root();
    let mut c = srv.login();
    assert_eq!(
        c.cmd("SITE SYMLINK d/g to g"),
        (200, "SITE SYMLINK successful.".into())
    );
    assert_eq!(link_text(&root.join("to g")), "d/g");
    assert_eq!(c.retr("to g"), b"in d");
    // From a subdirectory up, with absolute virtual paths and a cwd elsewhere.
    c.expect("CWD d", 250);
    c.expect("SITE SYMLINK /f up", 200);
    assert_eq!(link_text(&root.join("d/up")), "../f");
    assert_eq!(c.retr("up"), b"hello");
    c.expect("CWD /", 250);
    // A link to a directory, usable as one.
    c.expect("SITE SYMLINK d dirlink", 200);
    assert_eq!(link_text(&root.join("dirlink")), "d");
    assert_eq!(c.retr("dirlink/g"), b"in d");
    // Through a link, the target is what it names: no link to a link.
    c.expect("SITE SYMLINK dirlink/g via", 200);
    assert_eq!(link_text(&root.join("via")), "d/g");
    // The tree moved elsewhere: the links still work.
    let moved = srv.outside().join("moved");
    std::fs::create_dir(&moved).expect("mkdir moved");
    std::fs::create_dir(moved.join("d")).expect("mkdir moved/d");
    std::fs::write(moved.join("d/g"), b"moved").expect("write moved/d/g");
    for name in ["dirlink", "via"] {
        std::os::unix::fs::symlink(link_text(&root.join(name)), moved.join(name))
            .expect("copy the link");
    }
    assert_eq!(
        std::fs::read(moved.join("via")).expect("read via"),
        b"moved"
    );
    assert_eq!(
        std::fs::read(moved.join("dirlink/g")).expect("read"),
        b"moved"
    );
}

#[test]
fn site_symlink_refusals() {
    let srv = enabled();
    let root = srv.root();
    let outside = srv.outside();
    std::os::unix::fs::symlink(&outside, root.join("out")).expect("link out");
    let mut c = srv.login();
    let outside_root = "points to a path which is outside the user's root directory.";
    // `..` above the root stops at it: these name the root's own `outside/secret`,
    // which does not exist.
    for line in [
        "SITE SYMLINK ../outside/secret l1",
        "SITE SYMLINK /../../outside/secret l1",
        "SITE SYMLINK d/../../outside/secret l1",
    ] {
        assert_eq!(
            c.cmd(line),
            (550, "No such file or directory.".into()),
            "{line}"
        );
    }
    // A target reached through a link that leaves the root.
    let (code, text) = c.cmd("SITE SYMLINK out/secret l2");
    assert_eq!(code, 550, "{text}");
    assert!(text.ends_with(outside_root), "{text}");
    // A link name through a link that leaves the root, or above it.
    let (code, text) = c.cmd("SITE SYMLINK f out/l3");
    assert_eq!(code, 550, "{text}");
    assert!(text.ends_with(outside_root), "{text}");
    assert_eq!(
        c.cmd("SITE SYMLINK f ../../l4").0,
        200,
        "`..` stops at the root"
    );
    assert_eq!(link_text(&root.join("l4")), "f");
    // Existing names, a missing target, syntax.
    assert_eq!(
        c.cmd("SITE SYMLINK d/g f"),
        (550, "/f already exists.".into())
    );
    assert_eq!(c.cmd("SITE SYMLINK d/g d").0, 550);
    assert_eq!(c.cmd("SITE SYMLINK d/g out").0, 550);
    assert_eq!(
        c.cmd("SITE SYMLINK nothere l5"),
        (550, "No such file or directory.".into())
    );
    assert_eq!(
        c.cmd("SITE SYMLINK f"),
        (501, "Syntax error: command needs two arguments.".into())
    );
    assert_eq!(c.cmd("SITE SYMLINK").0, 501);
    assert_eq!(std::fs::read(root.join("f")).expect("f"), b"hello");
    for name in ["l1", "l2", "l5"] {
        assert!(
            std::fs::symlink_metadata(root.join(name)).is_err(),
            "{name}"
        );
    }
    let in_outside: Vec<_> = std::fs::read_dir(&outside)
        .expect("read outside")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(in_outside, ["secret"], "nothing created outside");
    // Without the w right (anonymous has elr).
    let mut anon = srv.client();
    anon.login("anonymous", "x@y");
    assert_eq!(
        anon.cmd("SITE SYMLINK f anon-link"),
        (550, "Not enough privileges.".into())
    );
    assert!(std::fs::symlink_metadata(root.join("anon-link")).is_err());
}

#[test]
fn a_link_never_grants_more_than_its_target() {
    let home = tempfile::tempdir().expect("tempdir");
    let root = home.path().join("root");
    std::fs::create_dir_all(root.join("ro")).expect("mkdir ro");
    std::fs::create_dir_all(root.join("rw")).expect("mkdir rw");
    std::fs::write(root.join("ro/file"), b"read only").expect("write");
    std::fs::write(root.join("rw/file"), b"writable").expect("write");
    let (for_auth, for_override) = (root.clone(), root.clone());
    let srv = TestServer::with_authorizer(
        move |_| {
            let mut auth = DummyAuthorizer::new();
            auth.add_user("u", "p", &for_auth, "elrw", None, None)
                .expect("add u");
            auth.override_perm("u", for_override.join("ro"), "elr", true)
                .expect("override");
            Box::new(auth)
        },
        |c| c.site_symlink = true,
        |_| {},
        |b| b,
    );
    let mut c = srv.client();
    c.login("u", "p");
    // In the root u may write; in ro not: a link there would let u write into ro.
    assert_eq!(
        c.cmd("SITE SYMLINK ro rolink"),
        (550, "Not enough privileges.".into())
    );
    assert!(std::fs::symlink_metadata(root.join("rolink")).is_err());
    // A link inside ro to rw grants nothing more (and u may not write in ro anyway).
    assert_eq!(c.cmd("SITE SYMLINK rw ro/rwlink").0, 550);
    // Same rights on both sides: allowed.
    c.expect("SITE SYMLINK rw/file rwlink", 200);
    assert_eq!(c.retr("rwlink"), b"writable");
}

#[test]
fn a_filesystem_without_links_refuses_site_symlink() {
    let mem = MemoryFs::new();
    mem.write_file("/f", b"hello").expect("write f");
    let srv = TestServer::with_memory_config(
        &mem,
        |c| {
            c.site_symlink = true;
            c.site_utime = true;
        },
        |b| b,
    );
    let mut c = srv.login();
    assert_eq!(
        c.cmd("SITE SYMLINK f l"),
        (550, "Operation not supported.".into())
    );
    c.expect("SITE UTIME 202001020304 f", 200);
    assert_eq!(c.cmd("MDTM f"), (213, "20200102030400".into()));
}

#[test]
fn a_reload_turns_them_on_and_off() {
    let srv = TestServer::start();
    std::fs::write(srv.root().join("f"), b"hello").expect("write f");
    let config = |on: bool| {
        let mut c = HandlerConfig::default();
        c.auth_failed_timeout = Duration::from_millis(100);
        c.site_utime = on;
        c.site_symlink = on;
        c
    };
    srv.handle()
        .reload(Reload::new().handler_config(config(true)))
        .expect("reload on");
    let mut c = srv.login();
    c.expect("SITE UTIME 202001020304 f", 200);
    c.expect("SITE SYMLINK f l", 200);
    srv.handle()
        .reload(Reload::new().handler_config(config(false)))
        .expect("reload off");
    let mut c = srv.login();
    assert_eq!(c.cmd("SITE UTIME 202001020304 f").0, 500);
    assert_eq!(c.cmd("SITE SYMLINK f l2").0, 500);
}

#[test]
fn curl_sends_them_through_the_binary() {
    if !have_tool("curl") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    std::fs::create_dir(&served).expect("mkdir served");
    std::fs::write(served.join("f"), b"through curl").expect("write f");
    let dir = served.to_str().expect("UTF-8 temp path");
    let curl = |srv: &BinServer, quote: &[&str], path: &str| {
        let mut cmd = Command::new("curl");
        cmd.args([
            "--silent",
            "--show-error",
            "--max-time",
            "30",
            "-u",
            "user:12345",
        ]);
        for q in quote {
            cmd.args(["-Q", q]);
        }
        run_tool(cmd.arg(srv.url(path)), TOOL_TIMEOUT)
    };
    let base = ["-w", "-d", dir, "-u", "user", "-P", "12345"];

    let mut off = BinServer::start(&base);
    let out = curl(&off, &["SITE UTIME 202001020304 f"], "f");
    assert!(!out.status.success(), "refused while off");
    off.terminate();

    let mut args = base.to_vec();
    args.extend(["--site-utime", "--site-symlink"]);
    let mut on = BinServer::start(&args);
    let out = curl(
        &on,
        &["SITE UTIME 202001020304 f", "SITE SYMLINK f linked"],
        "linked",
    );
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"through curl");
    assert_eq!(link_text(&served.join("linked")), "f");
    let secs = std::fs::metadata(served.join("f"))
        .and_then(|m| m.modified())
        .expect("mtime")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    assert_eq!(secs, 1_577_934_240, "2020-01-02T03:04:00Z");
    on.terminate();
}

#[test]
fn lftp_sends_them_with_site() {
    if !have_tool("lftp") {
        return;
    }
    let srv = enabled();
    let home = tempfile::tempdir().expect("tempdir");
    let script = "set net:max-retries 1; set net:timeout 10; \
                  set net:reconnect-interval-base 1; set cmd:fail-exit true; \
                  site UTIME 201501020304 f; site SYMLINK d/g lftp-link; \
                  cat lftp-link; bye";
    let out = run_tool(
        Command::new("lftp")
            .env("HOME", home.path())
            .args(["-u", "user,12345", "-p", &srv.addr.port().to_string()])
            .arg(srv.addr.ip().to_string())
            .args(["-e", script]),
        TOOL_TIMEOUT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lftp failed with {:?}:\n{stdout}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        "200 SITE UTIME successful.\n200 SITE SYMLINK successful.\nin d"
    );
    assert_eq!(link_text(&srv.root().join("lftp-link")), "d/g");
    let mut c = srv.login();
    assert_eq!(c.cmd("MDTM f"), (213, "20150102030400".into()));
}

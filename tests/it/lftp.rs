//! lftp mirrors a small tree up to the server and back down again.

use std::process::Command;

use crate::util::{have_tool, random_bytes, run_tool, tree, TestServer, TOOL_TIMEOUT};

#[test]
fn lftp_mirror_round_trips_a_tree() {
    if !have_tool("lftp") {
        return;
    }
    let srv = TestServer::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let local = tmp.path().join("localdir");
    let files: [(&str, Vec<u8>); 5] = [
        ("a.txt", b"alpha\n".to_vec()),
        ("empty.txt", Vec::new()),
        ("sub/b.bin", random_bytes(200_000, 21)),
        ("sub/deeper/c.txt", b"gamma\r\nwith CRLF\r\n".to_vec()),
        ("sub/deeper/d.bin", random_bytes(70_000, 22)),
    ];
    for (name, data) in &files {
        let path = local.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, data).expect("write");
    }
    std::fs::create_dir_all(local.join("emptydir")).expect("mkdir emptydir");

    let script = "set net:max-retries 1; set net:timeout 10; \
                  set net:reconnect-interval-base 1; set cmd:fail-exit true; \
                  set ftp:passive-mode true; \
                  mirror -R localdir remotedir; mirror remotedir backdir; \
                  cls -l remotedir remotedir/sub; bye";
    let out = run_tool(
        Command::new("lftp")
            .current_dir(tmp.path())
            .env("HOME", tmp.path())
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
    let expected = tree(&local);
    assert_eq!(expected.len(), 8, "the local tree itself");
    assert_eq!(
        tree(&srv.root().join("remotedir")),
        expected,
        "uploaded tree"
    );
    assert_eq!(
        tree(&tmp.path().join("backdir")),
        expected,
        "downloaded tree"
    );
    for name in ["a.txt", "sub", "emptydir", "b.bin", "deeper"] {
        assert!(stdout.contains(name), "cls -l lacks {name}:\n{stdout}");
    }
}

/// lftp takes the file modes of a mirror from MLSD's `unix.mode`; written as Python's
/// `0o755` (pyftpdlib) it reads mode 000 and leaves the copies unreadable. `0755` keeps
/// them.
#[test]
fn lftp_mirror_keeps_the_file_modes() {
    use std::os::unix::fs::PermissionsExt;
    if !have_tool("lftp") {
        return;
    }
    let srv = TestServer::start();
    let remote = srv.root().join("remotedir");
    std::fs::create_dir(&remote).expect("mkdir");
    let modes = [("run.sh", 0o750), ("notes.txt", 0o640), ("open.txt", 0o644)];
    for (name, mode) in modes {
        let path = remote.join(name);
        std::fs::write(&path, name).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let script = "set net:max-retries 1; set net:timeout 10; \
                  set net:reconnect-interval-base 1; set cmd:fail-exit true; \
                  set ftp:passive-mode true; mirror remotedir backdir; bye";
    let out = run_tool(
        Command::new("lftp")
            .current_dir(tmp.path())
            .env("HOME", tmp.path())
            .args(["-u", "user,12345", "-p", &srv.addr.port().to_string()])
            .arg(srv.addr.ip().to_string())
            .args(["-e", script]),
        TOOL_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "lftp failed with {:?}:\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, mode) in modes {
        let got = std::fs::metadata(tmp.path().join("backdir").join(name))
            .expect("stat the copy")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(got, mode, "{name}: {got:o}, want {mode:o}");
    }
}

//! Real clients against the in-process server, using the less common paths: curl byte
//! ranges, upload resume, quoted SITE CHMOD and NLST; lftp listings, chmod and an
//! active-mode mirror; Python's ftplib for MLSD facts, REST, ASCII conversions both ways,
//! ABOR mid-download, STAT and HELP.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::util::{have_tool, random_bytes, run_tool, tree, TestServer, TOOL_TIMEOUT};

fn curl(srv: &TestServer, args: &[&str]) -> Output {
    run_tool(
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "60"])
            .args(["-u", "user:12345"])
            .args(args)
            .env_remove("ftp_proxy")
            .env_remove("all_proxy")
            .env("HOME", srv.outside()),
        TOOL_TIMEOUT,
    )
}

fn curl_ok(srv: &TestServer, args: &[&str]) -> Vec<u8> {
    let out = curl(srv, args);
    assert!(
        out.status.success(),
        "curl {args:?} failed with {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn url(srv: &TestServer, path: &str) -> String {
    format!("ftp://{}/{path}", srv.addr)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777
}

#[test]
fn curl_byte_range_uses_rest() {
    if !have_tool("curl") {
        return;
    }
    let srv = TestServer::start();
    let data = random_bytes(10_000, 0xc0de);
    std::fs::write(srv.root().join("data.bin"), &data).expect("write");
    let got = curl_ok(&srv, &["-r", "100-199", &url(&srv, "data.bin")]);
    assert_eq!(got.len(), 100);
    assert!(got == data[100..200], "curl -r 100-199 got other bytes");
    // An open-ended range: the tail.
    let got = curl_ok(&srv, &["-r", "9000-", &url(&srv, "data.bin")]);
    assert!(got == data[9000..], "curl -r 9000- got other bytes");
}

#[test]
fn curl_resumes_a_partial_upload() {
    if !have_tool("curl") {
        return;
    }
    let srv = TestServer::start();
    let data = random_bytes(300_000, 0xfeed);
    let local = srv.outside().join("whole.bin");
    std::fs::write(&local, &data).expect("write local");
    // A broken earlier upload left the first 123457 bytes.
    let remote = srv.root().join("whole.bin");
    std::fs::write(&remote, &data[..123_457]).expect("write partial");
    curl_ok(
        &srv,
        &["-C", "-", "-T", path_str(&local), &url(&srv, "whole.bin")],
    );
    let got = std::fs::read(&remote).expect("read remote");
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the resumed upload differs");
}

#[test]
fn curl_quote_site_chmod_and_list_only() {
    if !have_tool("curl") {
        return;
    }
    let srv = TestServer::start();
    let f = srv.root().join("f");
    std::fs::write(&f, b"x").expect("write");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::write(srv.root().join("b.txt"), b"b").expect("write");
    std::fs::create_dir(srv.root().join("sub")).expect("mkdir");

    let listed = curl_ok(
        &srv,
        &["-Q", "SITE CHMOD 600 f", "--list-only", &url(&srv, "")],
    );
    assert_eq!(mode(&f), 0o600, "SITE CHMOD via curl -Q");
    let listed = String::from_utf8(listed).expect("utf-8 NLST");
    let names: Vec<&str> = listed.lines().map(str::trim_end).collect();
    assert_eq!(names, ["b.txt", "f", "sub"], "{listed:?}");

    // A refused quote command fails the whole curl run.
    let out = curl(&srv, &["-Q", "SITE CHMOD 600 nonexistent", &url(&srv, "")]);
    assert!(!out.status.success(), "a 550 quote did not fail curl");
}

/// Runs an lftp script against `srv` as `user`, in `cwd`; returns its stdout.
fn lftp(srv: &TestServer, cwd: &Path, script: &str) -> String {
    let script = format!(
        "set net:max-retries 1; set net:timeout 10; set net:reconnect-interval-base 1; \
         set cmd:fail-exit true; {script}; bye"
    );
    let out = run_tool(
        Command::new("lftp")
            .current_dir(cwd)
            .env("HOME", cwd)
            .args(["-u", "user,12345", "-p", &srv.addr.port().to_string()])
            .arg(srv.addr.ip().to_string())
            .args(["-e", &script]),
        TOOL_TIMEOUT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "lftp {script:?} failed with {:?}:\n{stdout}{stderr}",
        out.status.code()
    );
    stdout
}

#[test]
fn lftp_listings_and_chmod() {
    if !have_tool("lftp") {
        return;
    }
    let srv = TestServer::start();
    let f = srv.root().join("f");
    std::fs::write(&f, b"12345").expect("write");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::create_dir(srv.root().join("sub")).expect("mkdir");
    std::fs::write(srv.root().join("sub/inner.txt"), b"inner").expect("write");
    let cwd = tempfile::tempdir().expect("tempdir");

    let out = lftp(
        &srv,
        cwd.path(),
        "echo ==rels==; rels; echo ==cls==; cls -l sub; chmod 640 f",
    );
    let (rels, cls) = out.split_once("==cls==").unwrap_or_else(|| panic!("{out}"));
    // `rels`: the LIST output, one line per entry, name last.
    let names: Vec<&str> = rels
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|n| !n.starts_with("=="))
        .collect();
    assert_eq!(names, ["f", "sub"], "{out}");
    let f_line = rels
        .lines()
        .find(|l| l.ends_with(" f"))
        .expect("a line for f");
    assert!(f_line.starts_with("-rw-------"), "{f_line}");
    assert!(f_line.split_whitespace().any(|w| w == "5"), "{f_line}");
    assert!(
        cls.lines()
            .any(|l| l.starts_with('-') && l.ends_with("inner.txt")),
        "{out}"
    );
    assert_eq!(mode(&f), 0o640, "chmod via lftp");
}

#[test]
fn lftp_mirror_in_active_mode() {
    if !have_tool("lftp") {
        return;
    }
    let srv = TestServer::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let local = tmp.path().join("up");
    for (name, data) in [
        ("a.txt", b"alpha\n".to_vec()),
        ("empty", Vec::new()),
        ("sub/b.bin", random_bytes(150_000, 31)),
    ] {
        let path = local.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, data).expect("write");
    }
    let trace_file = tmp.path().join("trace");
    lftp(
        &srv,
        tmp.path(),
        &format!(
            "set ftp:passive-mode false; debug -o {} 9; mirror -R up remote; \
             mirror remote down",
            path_str(&trace_file)
        ),
    );
    let trace = std::fs::read_to_string(&trace_file).expect("the lftp trace");
    let expected = tree(&local);
    assert_eq!(expected.len(), 4);
    assert_eq!(tree(&srv.root().join("remote")), expected, "uploaded tree");
    assert_eq!(tree(&tmp.path().join("down")), expected, "downloaded tree");
    // Really active: lftp sent PORT or EPRT and never asked for a passive port.
    assert!(
        trace.contains("---> PORT ") || trace.contains("---> EPRT "),
        "{trace}"
    );
    assert!(
        !trace.contains("---> PASV") && !trace.contains("---> EPSV"),
        "{trace}"
    );
}

const FTPLIB_SESSION: &str = r#"
import ftplib, io, sys

host, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ftp = ftplib.FTP()
ftp.connect(host, port, timeout=10)
ftp.login("user", "12345")

# MLSD with only the facts asked for (ftplib sends OPTS MLST first).
entries = dict(ftp.mlsd(facts=["type", "size"]))
assert entries["data.bin"] == {"type": "file", "size": "1000"}, entries
assert set(entries["sub"]) == {"type", "size"}, entries
assert entries["sub"]["type"] == "dir", entries

assert ftp.nlst() == ["big", "data.bin", "lf.txt", "sub"], ftp.nlst()

data = open(root + "/data.bin", "rb").read()
got = []
ftp.retrbinary("RETR data.bin", got.append, rest=600)
assert b"".join(got) == data[600:], len(b"".join(got))

# ASCII upload: CRLF on the wire, LF on disk.
ftp.storlines("STOR up.txt", io.BytesIO(b"one\ntwo\r\nthree\n"))
assert open(root + "/up.txt", "rb").read() == b"one\ntwo\nthree\n"

# ASCII download: LF on disk, CRLF on the wire.
lines = []
ftp.retrlines("RETR lf.txt", lines.append)
assert lines == ["a", "b", "", "c"], lines
ftp.voidcmd("TYPE A")
conn = ftp.transfercmd("RETR lf.txt")
raw = b""
while True:
    chunk = conn.recv(8192)
    if not chunk:
        break
    raw += chunk
conn.close()
ftp.voidresp()
assert raw == b"a\r\nb\r\n\r\nc\r\n", raw

# ABOR in the middle of a big download: 426 for the transfer, then 226 for ABOR.
ftp.voidcmd("TYPE I")
conn = ftp.transfercmd("RETR big")
first = conn.recv(65536)
assert first, "no data before ABOR"
resp = ftp.abort()
codes = [resp[:3]]
if resp.startswith("426"):
    codes.append(ftp.getmultiline()[:3])
conn.close()
assert codes == ["426", "226"], codes
assert ftp.sendcmd("NOOP").startswith("200")

stat = ftp.sendcmd("STAT")
assert stat.startswith("211-") and stat.splitlines()[-1].startswith("211 "), stat
helped = ftp.sendcmd("HELP")
assert helped.startswith("214-") and " RETR " in helped, helped
assert ftp.sendcmd("HELP RETR").startswith("214 Syntax: RETR"), ftp.sendcmd("HELP RETR")
ftp.quit()
print("OK")
"#;

#[test]
fn python_ftplib_less_common_calls() {
    if !have_tool("python3") {
        return;
    }
    let srv = TestServer::start();
    let root = srv.root();
    std::fs::write(root.join("data.bin"), random_bytes(1000, 0xd47a)).expect("write");
    std::fs::write(root.join("lf.txt"), b"a\nb\n\nc\n").expect("write");
    std::fs::create_dir(root.join("sub")).expect("mkdir");
    // 64 MB that costs no disk: far more than the socket buffers hold.
    std::fs::File::create(root.join("big"))
        .and_then(|f| f.set_len(64 << 20))
        .expect("sparse file");
    let out = run_tool(
        Command::new("python3").args([
            "-c",
            FTPLIB_SESSION,
            &srv.addr.ip().to_string(),
            &srv.addr.port().to_string(),
            path_str(&root),
        ]),
        TOOL_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "ftplib session failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
}

//! `--log-file`: the binary's lines appended to a file instead of standard error, and the
//! file reopened by name on SIGUSR1, as logrotate's `postrotate` asks; `--log-format json`
//! lines, read back with Python's `json`; `--xferlog`; `--syslog` datagrams on a socket
//! the test binds.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::util::{BinServer, Client, IO_TIMEOUT};

const PASSWORD: &str = "L0g-f1le-pa55";

/// Waits (bounded) until the file at `path` holds a line ending with `message`, and
/// returns the file's text.
///
/// # Panics
/// When none appears within the I/O timeout.
fn wait_in_file(path: &Path, message: &str) -> String {
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().any(|l| l.ends_with(message)) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no line {message:?} in {}:\n{text}",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// One login and logout; returns the client's `ip:port` prefix.
fn session(srv: &BinServer) -> String {
    let mut c = Client::connect(srv.addr);
    let me = format!("127.0.0.1:{}", c.local_addr().port());
    c.login("user", PASSWORD);
    c.expect("QUIT", 221);
    c.expect_closed();
    me
}

fn signal(srv: &BinServer, name: &str) {
    srv.signal(name.trim_start_matches('-'));
}

#[test]
fn lines_go_to_the_file_and_follow_a_rotation() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    let log = tmp.path().join("ftpd.log");
    let rotated = tmp.path().join("ftpd.log.1");
    let mut srv = BinServer::start(&[
        "-d",
        root.to_str().expect("a UTF-8 temp path"),
        "-u",
        "user",
        "-P",
        PASSWORD,
        "--log-file",
        log.to_str().expect("a UTF-8 temp path"),
    ]);

    let first = session(&srv);
    let closed = "FTP session closed (disconnect).";
    wait_in_file(&log, &format!("{first}-[user] {closed}"));

    // logrotate: rename, then SIGUSR1; the next line must start the new file.
    std::fs::rename(&log, &rotated).expect("rename the log");
    signal(&srv, "-USR1");
    let second = session(&srv);
    wait_in_file(&log, &format!("{second}-[user] {closed}"));

    let status = srv.terminate();
    assert!(status.success(), "exit status {status:?}");
    let old = std::fs::read_to_string(&rotated).expect("read the rotated log");
    let new = std::fs::read_to_string(&log).expect("read the new log");

    // Every line has pyftpdlib's shape, and each session lies wholly in one file.
    for line in old.lines().chain(new.lines()) {
        assert!(
            line.starts_with("[I ") || line.starts_with("[W "),
            "{line:?}"
        );
    }
    assert!(old.contains(">>> starting FTP server on "), "{old}");
    for (user, msg) in [
        ("", "FTP session opened (connect)"),
        ("user", "USER 'user' logged in."),
        ("user", closed),
    ] {
        assert!(
            old.contains(&format!("{first}-[{user}] {msg}")),
            "{msg}: {old}"
        );
        assert!(
            new.contains(&format!("{second}-[{user}] {msg}")),
            "{msg}: {new}"
        );
    }
    assert!(!new.contains(&first), "{new}");
    assert!(!old.contains(&second), "{old}");
    assert!(new.contains(">>> shutting down FTP server, pid="), "{new}");
    // The log went to the file, not to standard error.
    assert!(!srv.log().contains("FTP session opened"), "{}", srv.log());

    // Readable by owner and group only: the log names clients and users.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&log)
            .expect("stat the new log")
            .permissions(),
    );
    assert_eq!(mode & 0o007, 0, "mode {mode:o}");
}

#[test]
fn a_log_file_that_cannot_be_opened_stops_the_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("no-such-dir").join("ftpd.log");
    let out = Command::new(env!("CARGO_BIN_EXE_ftpdlib"))
        .args(["-p", "0", "--log-file"])
        .arg(&missing)
        .output()
        .expect("run ftpdlib");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("ftpdlib: --log-file {}: ", missing.display())),
        "{stderr}"
    );
}

#[test]
fn json_lines_parse_and_keep_the_message() {
    if !crate::util::have_tool("python3") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = std::fs::canonicalize(tmp.path()).expect("canonicalize");
    let log = root.join("ftpd.log");
    let served = root.join("root");
    std::fs::create_dir(&served).expect("mkdir");
    // A zone of a fixed offset east of UTC (POSIX TZ counts west), so the line's offset
    // is known.
    let mut srv = BinServer::start_env(
        &[
            "-w",
            "-d",
            served.to_str().expect("a UTF-8 temp path"),
            "-u",
            "user",
            "-P",
            PASSWORD,
            "--log-file",
            log.to_str().expect("a UTF-8 temp path"),
            "--log-format",
            "json",
        ],
        &[("TZ", Some("XYZ-05:30"))],
    );
    let mut c = Client::connect(srv.addr);
    let me = format!("127.0.0.1:{}", c.local_addr().port());
    c.login("user", PASSWORD);
    // A name that JSON must escape: a quote, a backslash and a tab.
    c.expect("MKD q\"b\\s\tt", 257);
    c.expect("DELE missing.txt", 550);
    c.stor("up.bin", b"uploaded bytes");
    c.expect("QUIT", 221);
    c.expect_closed();
    let status = srv.terminate();
    assert!(status.success(), "exit status {status:?}");

    let script = format!("{}/tests/scripts/json_log.py", env!("CARGO_MANIFEST_DIR"));
    let out = crate::util::run_tool(Command::new("python3").arg(&script).arg(&log), IO_TIMEOUT);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<(&str, &str, &str, &str)> = printed
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(4, '\t');
            Some((parts.next()?, parts.next()?, parts.next()?, parts.next()?))
        })
        .collect();
    assert!(
        lines.iter().all(|(_, offset, _, _)| *offset == "+05:30"),
        "{printed}"
    );
    // The transfer line carries its figures as fields too.
    let up = served.join("up.bin");
    let fields = format!(
        "{{\"bytes\": 14, \"command\": \"STOR\", \"completed\": true, \"event\": \"transfer\", \
         \"path\": \"{}\", \"remote\": \"{me}\", \"seconds\": \"float\", \
         \"session\": \"PID-N\", \"user\": \"user\"}}",
        up.display()
    );
    let stor = format!("{me}-[user] STOR {} completed=1 bytes=14 ", up.display());
    assert!(
        lines
            .iter()
            .any(|(level, _, f, m)| *level == "INFO" && *f == fields && m.starts_with(&stor)),
        "no STOR line with {fields} in:\n{printed}"
    );
    // The session's other lines carry their fields; the text stays pyftpdlib's line.
    let mkd_path = served.join("q\"b\\s\tt").display().to_string();
    let mkd_json = mkd_path
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\t', "\\t");
    let missing = served.join("missing.txt").display().to_string();
    let session = |user: &str, event: &str| {
        format!(
            "{{\"event\": \"{event}\", \"remote\": \"{me}\", \"session\": \"PID-N\", \
             \"user\": \"{user}\"}}"
        )
    };
    let command = |cmd: &str, code: u16, path: &str| {
        format!(
            "{{\"code\": {code}, \"command\": \"{cmd}\", \"event\": \"command\", \
             \"path\": \"{path}\", \"remote\": \"{me}\", \"session\": \"PID-N\", \
             \"user\": \"user\"}}"
        )
    };
    for (msg, fields) in [
        (
            format!("{me}-[] FTP session opened (connect)"),
            session("", "connect"),
        ),
        (
            format!("{me}-[user] USER 'user' logged in."),
            session("user", "login"),
        ),
        (
            format!("{me}-[user] MKD {mkd_path} 257"),
            command("MKD", 257, &mkd_json),
        ),
        (
            format!("{me}-[user] DELE {missing} 550 'No such file or directory.'"),
            command("DELE", 550, &missing),
        ),
        (
            format!("{me}-[user] FTP session closed (disconnect)."),
            session("user", "disconnect"),
        ),
        ("received SIGTERM".to_owned(), "-".to_owned()),
    ] {
        assert!(
            lines
                .iter()
                .any(|(level, _, f, m)| *level == "INFO" && *f == fields && *m == msg),
            "no INFO {msg:?} with {fields} in:\n{printed}"
        );
    }
}

#[test]
fn xferlog_has_a_wu_ftpd_line_per_transfer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = std::fs::canonicalize(tmp.path()).expect("canonicalize");
    let xferlog = root.join("xferlog");
    let served = root.join("root");
    std::fs::create_dir(&served).expect("mkdir");
    let mut srv = BinServer::start(&[
        "-w",
        "-d",
        served.to_str().expect("a UTF-8 temp path"),
        "-u",
        "user",
        "-P",
        PASSWORD,
        "--xferlog",
        xferlog.to_str().expect("a UTF-8 temp path"),
    ]);
    let mut c = Client::connect(srv.addr);
    c.login("user", PASSWORD);
    // stor sends TYPE I itself.
    c.stor("my file.txt", b"uploaded bytes");
    c.expect("TYPE A", 200);
    let data = c.pasv();
    assert_eq!(c.download("RETR my file.txt", data), b"uploaded bytes");
    c.expect("QUIT", 221);
    c.expect_closed();
    let status = srv.terminate();
    assert!(status.success(), "exit status {status:?}");

    let text = std::fs::read_to_string(&xferlog).expect("read the xferlog");
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    let name = served.join("my_file.txt");
    let name = name.to_str().expect("a UTF-8 temp path");
    for (fields, kind, direction) in [(&lines[0], "b", "i"), (&lines[1], "a", "o")] {
        // The date is ctime(3)'s five words; thirteen fields follow.
        assert_eq!(fields.len(), 18, "{text}");
        assert!(
            ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].contains(&fields[0]),
            "{text}"
        );
        assert_eq!(fields[3].len(), 8, "{text}");
        assert_eq!(fields[4].len(), 4, "{text}");
        assert!(fields[5].bytes().all(|b| b.is_ascii_digit()), "{text}");
        let expected = [
            "127.0.0.1",
            "14",
            name,
            kind,
            "_",
            direction,
            "r",
            "user",
            "ftp",
            "0",
            "*",
            "c",
        ];
        assert_eq!(&fields[6..], &expected, "{text}");
    }
}

#[test]
fn syslog_datagrams_are_rfc_3164_daemon_messages() {
    use std::os::unix::net::UnixDatagram;

    let tmp = tempfile::tempdir().expect("tempdir");
    let socket_path = tmp.path().join("log.sock");
    let daemon = UnixDatagram::bind(&socket_path).expect("bind the syslog socket");
    daemon
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("set a read timeout");
    let mut srv = BinServer::start(&[
        "-u",
        "user",
        "-P",
        PASSWORD,
        "--syslog-socket",
        socket_path.to_str().expect("a UTF-8 temp path"),
    ]);
    let me = session(&srv);
    let tag = format!(" ftpdlib[{}]: ", srv.pid());
    let wanted = format!("{me}-[user] USER 'user' logged in.");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.iter().any(|d: &String| d.ends_with(&wanted)) {
        let n = daemon
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {wanted:?} datagram ({e}); seen: {seen:#?}"));
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    for d in &seen {
        // <PRI>, `Mmm dd hh:mm:ss` (15 characters), the tag, the message; one line each.
        assert!(d.starts_with("<30>") || d.starts_with("<28>"), "{d:?}");
        assert_eq!(&d[4 + 15..4 + 15 + tag.len()], tag, "{d:?}");
        assert!(!d.contains('\n'), "{d:?}");
    }
    assert!(
        seen.iter()
            .any(|d| d.starts_with("<30>") && d.contains(">>> starting FTP server on ")),
        "{seen:#?}"
    );
    let status = srv.terminate();
    assert!(status.success(), "exit status {status:?}");
    // The log went to syslog, not to standard error.
    assert!(!srv.log().contains("logged in"), "{}", srv.log());
}

#[test]
fn syslog_and_a_log_file_are_one_or_the_other() {
    let out = Command::new(env!("CARGO_BIN_EXE_ftpdlib"))
        .args(["-p", "0", "--syslog", "--log-file", "/dev/null"])
        .output()
        .expect("run ftpdlib");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--syslog and --log-file"), "{stderr}");
}

#[test]
fn sigint_is_logged_as_pyftpdlib_does() {
    let mut srv = BinServer::start(&["-u", "user", "-P", PASSWORD]);
    signal(&srv, "-INT");
    let status = srv.wait_exit();
    assert!(status.success(), "exit status {status:?}");
    let log = srv.log();
    assert!(log.contains("] received interrupt signal\n"), "{log}");
    assert!(!log.contains("SIGTERM"), "{log}");
}

#[test]
fn start_up_says_what_is_served() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_str().expect("a UTF-8 temp path");
    // The port may accept before the line is written: wait for the line, bounded.
    let srv = BinServer::start(&["-d", dir]);
    let log = srv.wait_log("] serving ", 1);
    assert!(
        log.contains(&format!(
            "] serving {dir} to anonymous, read-only (perm elr)\n"
        )),
        "{log}"
    );
    drop(srv);
    let srv = BinServer::start(&["-w", "-d", dir, "-u", "user", "-P", PASSWORD]);
    let log = srv.wait_log("] serving ", 1);
    assert!(
        log.contains(&format!(
            "] serving {dir} to user 'user', writable (perm elradfmwMT)\n"
        )),
        "{log}"
    );
}

//! Command replies (pyftpdlib parity §2.4/§2.5): listings, SIZE/MDTM, TYPE/MODE/STRU,
//! FEAT, HELP, STAT, directory commands, PORT/EPRT/EPSV checks.

use std::collections::HashMap;

use crate::util::{Client, TestServer};

/// A server whose root holds the file `f` (5 bytes) and the directory `d`.
fn setup() -> TestServer {
    let srv = TestServer::start();
    std::fs::write(srv.root().join("f"), b"hello").expect("write f");
    std::fs::create_dir(srv.root().join("d")).expect("mkdir d");
    srv
}

/// The facts of one MLSx entry line (`k=v;k=v; name`) and its name.
fn parse_facts(line: &str) -> (HashMap<String, String>, String) {
    let (facts, name) = line
        .split_once(' ')
        .unwrap_or_else(|| panic!("no space in the entry {line:?}"));
    let map = facts
        .split(';')
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (k, v) = f
                .split_once('=')
                .unwrap_or_else(|| panic!("bad fact {f:?}"));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    (map, name.to_owned())
}

#[test]
fn list_output_shape() {
    let srv = setup();
    let mut c = srv.login();
    let out = c.listing("LIST");
    assert!(out.ends_with("\r\n"), "{out:?}");
    let lines: Vec<&str> = out.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    for (line, (kind, size, name)) in lines.iter().zip([('d', None, "d"), ('-', Some("5"), "f")]) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 9, "{line:?}");
        assert_eq!(fields[0].len(), 10, "{line:?}");
        assert!(fields[0].starts_with(kind), "{line:?}");
        assert!(fields[1].parse::<u32>().is_ok(), "nlink in {line:?}");
        if let Some(size) = size {
            assert_eq!(fields[4], size, "{line:?}");
        }
        assert!(
            ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
                .contains(&fields[5]),
            "{line:?}"
        );
        assert_eq!(fields[8], name, "{line:?}");
    }
    // Flags are ignored, and a file lists itself.
    assert_eq!(c.listing("LIST -la"), out);
    let one = c.listing("LIST f");
    assert_eq!(one.lines().count(), 1, "{one:?}");
    assert!(one.trim_end().ends_with(" f"), "{one:?}");
}

/// The names a LIST (or STAT) output ends its lines with.
fn listed_names(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.split_whitespace().nth(8))
        .map(str::to_owned)
        .collect()
}

/// A root holding dot-files next to `f` and `d` (and one inside `d`).
fn setup_with_dot_files(handler: impl FnOnce(&mut ftpdlib::config::HandlerConfig)) -> TestServer {
    let srv = TestServer::with(handler, |_| {});
    std::fs::write(srv.root().join("f"), b"hello").expect("write f");
    std::fs::write(srv.root().join(".hidden"), b"h").expect("write .hidden");
    std::fs::create_dir(srv.root().join("d")).expect("mkdir d");
    std::fs::create_dir(srv.root().join(".dotdir")).expect("mkdir .dotdir");
    std::fs::write(srv.root().join("d/.inner"), b"i").expect("write d/.inner");
    std::fs::write(srv.root().join("d/g"), b"g").expect("write d/g");
    srv
}

/// LIST hides names starting with a dot, as `ls` and vsftpd do, and shows them with
/// `-a` / `-A` among its `ls` options (pyftpdlib ignored the options and showed all).
/// A dot-file named on its own is listed. STAT <path> is LIST over the control
/// connection and does the same.
#[test]
fn list_hides_dot_files_unless_asked_with_a() {
    let srv = setup_with_dot_files(|_| {});
    let mut c = srv.login();
    assert_eq!(listed_names(&c.listing("LIST")), ["d", "f"]);
    assert_eq!(listed_names(&c.listing("LIST -l")), ["d", "f"]);
    assert_eq!(listed_names(&c.listing("LIST d")), ["g"]);
    for line in ["LIST -a", "LIST -la", "LIST -al", "LIST -l -a", "LIST -A"] {
        assert_eq!(
            listed_names(&c.listing(line)),
            [".dotdir", ".hidden", "d", "f"],
            "{line}"
        );
    }
    assert_eq!(listed_names(&c.listing("LIST -la d")), [".inner", "g"]);
    assert_eq!(listed_names(&c.listing("LIST .hidden")), [".hidden"]);
    assert_eq!(
        listed_names(&c.listing("LIST -l .dotdir")),
        Vec::<String>::new()
    );
    // STAT <path>: the same rule, the same options.
    let text = c.expect("STAT /", 213);
    assert_eq!(listed_names(&text), ["d", "f"], "{text}");
    let text = c.expect("STAT -la /", 213);
    assert_eq!(
        listed_names(&text),
        [".dotdir", ".hidden", "d", "f"],
        "{text}"
    );
    let text = c.expect("STAT -a", 213);
    assert_eq!(
        listed_names(&text),
        [".dotdir", ".hidden", "d", "f"],
        "{text}"
    );
}

/// NLST and MLSD are for programs (RFC 959 §4.1.3: NLST's list is to be processed
/// automatically, e.g. by a multiple get; RFC 3659 for MLSD): they list every name,
/// dot-files included, as pyftpdlib does.
#[test]
fn nlst_and_mlsd_list_dot_files() {
    let srv = setup_with_dot_files(|_| {});
    let mut c = srv.login();
    assert_eq!(c.listing("NLST"), ".dotdir\r\n.hidden\r\nd\r\nf\r\n");
    assert_eq!(c.listing("NLST d"), ".inner\r\ng\r\n");
    let mut names: Vec<String> = c
        .listing("MLSD")
        .lines()
        .map(|l| parse_facts(l).1)
        .collect();
    names.sort();
    assert_eq!(names, [".dotdir", ".hidden", "d", "f"]);
}

/// `list_shows_hidden` keeps pyftpdlib's listings: every name, with or without `-a`.
#[test]
fn list_shows_dot_files_when_configured() {
    let srv = setup_with_dot_files(|h| h.list_shows_hidden = true);
    let mut c = srv.login();
    for line in ["LIST", "LIST -l", "LIST -la"] {
        assert_eq!(
            listed_names(&c.listing(line)),
            [".dotdir", ".hidden", "d", "f"],
            "{line}"
        );
    }
    let text = c.expect("STAT /", 213);
    assert_eq!(
        listed_names(&text),
        [".dotdir", ".hidden", "d", "f"],
        "{text}"
    );
}

#[test]
fn nlst_output_shape() {
    let srv = setup();
    let mut c = srv.login();
    assert_eq!(c.listing("NLST"), "d\r\nf\r\n");
    assert_eq!(c.listing("NLST d"), "");
    let data = c.pasv();
    assert_eq!(c.cmd("NLST nothere").0, 550);
    drop(data);
}

#[test]
fn mlsd_output_shape() {
    let srv = setup();
    let mut c = srv.login();
    let out = c.listing("MLSD");
    let mut entries: Vec<_> = out
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(parse_facts)
        .collect();
    entries.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(entries.len(), 2, "{out:?}");
    let (d, f) = (&entries[0].0, &entries[1].0);
    assert_eq!(entries[0].1, "d");
    assert_eq!(entries[1].1, "f");
    assert_eq!(d["type"], "dir");
    assert_eq!(f["type"], "file");
    assert_eq!(f["size"], "5");
    for facts in [d, f] {
        assert_eq!(facts["modify"].len(), 14, "{facts:?}");
        assert!(facts["modify"].bytes().all(|b| b.is_ascii_digit()));
        assert!(facts.contains_key("unique"), "{facts:?}");
        assert!(facts.contains_key("perm"), "{facts:?}");
    }
    assert!(f["perm"].contains('r') && f["perm"].contains('w'), "{f:?}");
    assert!(d["perm"].contains('e') && d["perm"].contains('l'), "{d:?}");
    // MLSD of a file is refused.
    let data = c.pasv();
    assert_eq!(c.cmd("MLSD f"), (501, "No such directory.".into()));
    drop(data);
}

/// `unix.mode` is `0755`, not Python's `0o755` (which lftp reads as mode 000), in MLST
/// and MLSD alike.
fn mlsx_unix_mode_is_c_octal(srv: &TestServer, c: &mut Client) {
    use std::os::unix::fs::PermissionsExt;
    let perms = |mode| std::fs::Permissions::from_mode(mode);
    std::fs::set_permissions(srv.root().join("f"), perms(0o640)).expect("chmod f");
    std::fs::set_permissions(srv.root().join("d"), perms(0o755)).expect("chmod d");
    c.expect("OPTS MLST type;unix.mode;", 200);
    let text = c.expect("MLST f", 250);
    let entry = text.split('\n').nth(1).expect("entry line");
    assert_eq!(entry, " type=file;unix.mode=0640; /f");
    let out = c.listing("MLSD");
    let mut lines: Vec<&str> = out.split("\r\n").filter(|l| !l.is_empty()).collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        ["type=dir;unix.mode=0755; d", "type=file;unix.mode=0640; f"]
    );
}

#[test]
fn mlst_output_shape() {
    let srv = setup();
    let mut c = srv.login();
    let text = c.expect("MLST f", 250);
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines.len(), 3, "{text:?}");
    assert_eq!(lines[0], "Listing \"/f\":");
    assert_eq!(lines[2], "End MLST.");
    let entry = lines[1]
        .strip_prefix(' ')
        .expect("entry starts with a space");
    let (facts, name) = parse_facts(entry);
    assert_eq!(name, "/f");
    assert_eq!(facts["type"], "file");
    assert_eq!(facts["size"], "5");
    // OPTS MLST narrows the facts.
    mlsx_unix_mode_is_c_octal(&srv, &mut c);
    assert_eq!(
        c.cmd("OPTS MLST type;size;"),
        (200, "MLST OPTS type;size;".into())
    );
    let text = c.expect("MLST d", 250);
    let entry = text.split('\n').nth(1).expect("entry line");
    let dir_size = std::fs::metadata(srv.root().join("d"))
        .expect("stat d")
        .len();
    let (facts, name) = parse_facts(entry.strip_prefix(' ').expect("leading space"));
    assert_eq!(name, "/d");
    let mut keys: Vec<&str> = facts.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["size", "type"], "{entry:?}");
    assert_eq!(facts["size"], dir_size.to_string());
}

#[test]
fn size_and_mdtm() {
    let srv = setup();
    let mut c = srv.login();
    assert_eq!(
        c.cmd("SIZE f"),
        (550, "SIZE not allowed in ASCII mode.".into())
    );
    c.expect("TYPE I", 200);
    assert_eq!(c.cmd("SIZE f"), (213, "5".into()));
    assert_eq!(c.cmd("SIZE d").0, 550);
    assert_eq!(c.cmd("SIZE nothere").0, 550);
    let mdtm = c.expect("MDTM f", 213);
    assert_eq!(mdtm.len(), 14, "{mdtm:?}");
    assert!(mdtm.bytes().all(|b| b.is_ascii_digit()), "{mdtm:?}");
    assert_eq!(
        c.cmd("MFMT 20200102030405 f"),
        (213, "Modify=20200102030405; /f.".into())
    );
    assert_eq!(c.cmd("MDTM f"), (213, "20200102030405".into()));
    assert_eq!(c.cmd("MFMT 2020 f").0, 550);
}

#[test]
fn type_mode_stru_replies() {
    let srv = setup();
    let mut c = srv.login();
    let cases: &[(&str, u16, &str)] = &[
        ("TYPE A", 200, "Type set to: ASCII."),
        ("TYPE I", 200, "Type set to: Binary."),
        ("TYPE L8", 200, "Type set to: Binary."),
        ("TYPE a", 200, "Type set to: ASCII."),
        ("TYPE X", 504, "Unsupported type \"X\"."),
        ("STRU F", 200, "File transfer structure set to: F."),
        ("STRU P", 504, "Unimplemented STRU type."),
        ("STRU R", 504, "Unimplemented STRU type."),
        ("STRU X", 501, "Unrecognized STRU type."),
        ("MODE S", 200, "Transfer mode set to: S"),
        ("MODE B", 504, "Unimplemented MODE type."),
        ("MODE C", 504, "Unimplemented MODE type."),
        ("MODE X", 501, "Unrecognized MODE type."),
        ("SYST", 215, "UNIX Type: L8"),
        ("NOOP", 200, "I successfully did nothing."),
        ("ALLO 100", 202, "No storage allocation necessary."),
        ("OPTS UTF8 ON", 200, "Always in UTF8 mode."),
        ("TYPE", 501, "Syntax error: command needs an argument."),
        (
            "PWD x",
            501,
            "Syntax error: command does not accept arguments.",
        ),
    ];
    for (line, code, text) in cases {
        assert_eq!(c.cmd(line), (*code, (*text).to_owned()), "{line}");
    }
}

#[test]
fn feat_lists_the_features() {
    let srv = setup();
    let mut c = srv.client();
    let (code, text) = c.cmd("FEAT");
    assert_eq!(code, 211);
    assert_eq!(
        text,
        "Features supported:\n EPRT\n EPSV\n HASH SHA-1;SHA-256*;SHA-512;MD5\n MDTM\n MFMT\n \
         MLST type*;perm*;size*;modify*;unique*;unix.mode;unix.uid;unix.gid;\n \
         RANG STREAM\n REST STREAM\n SIZE\n TVFS\n UTF8\nEnd FEAT."
    );
}

#[test]
fn help_replies() {
    let srv = setup();
    let mut c = srv.client();
    let (code, text) = c.cmd("HELP");
    assert_eq!(code, 214);
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines[0], "The following commands are recognized:");
    assert_eq!(
        lines[1],
        " ABOR   ALLO   APPE   CDUP   CWD    DELE   EPRT   EPSV  "
    );
    assert_eq!(
        *lines.last().expect("last line"),
        "Help command successful."
    );
    assert!(text.contains(" RETR "), "{text}");
    assert_eq!(
        c.cmd("HELP RETR"),
        (214, "Syntax: RETR <SP> file-name (retrieve a file).".into())
    );
    assert_eq!(
        c.cmd("help noop"),
        (214, "Syntax: NOOP (just do nothing).".into())
    );
    assert_eq!(c.cmd("HELP NOPE"), (501, "Unrecognized command.".into()));
    let (code, text) = c.cmd("SITE HELP");
    assert_eq!(code, 214);
    assert!(text.contains("\n CHMOD\n"), "{text:?}");
}

#[test]
fn stat_replies() {
    let srv = setup();
    let mut c = srv.client();
    let text = c.expect("STAT", 211);
    assert!(text.starts_with("FTP server status:\n"), "{text:?}");
    assert!(text.contains("\n Waiting for username.\n"), "{text:?}");
    assert!(text.ends_with("\nEnd of status."), "{text:?}");
    c.login("user", "12345");
    let text = c.expect("STAT", 211);
    assert!(text.contains("\n Logged in as: user\n"), "{text:?}");
    let text = c.expect("STAT f", 213);
    assert!(text.starts_with("Status of \"/f\":\n"), "{text:?}");
    assert!(text.ends_with("\nEnd of status."), "{text:?}");
    assert_eq!(c.cmd("STAT *"), (550, "Globbing not supported.".into()));
}

#[test]
fn directory_commands() {
    let srv = setup();
    let mut c = srv.login();
    assert_eq!(
        c.cmd("MKD sub"),
        (257, "\"/sub\" directory created.".into())
    );
    assert!(srv.root().join("sub").is_dir());
    assert_eq!(
        c.cmd("CWD sub"),
        (250, "\"/sub\" is the current directory.".into())
    );
    assert_eq!(
        c.cmd("PWD"),
        (257, "\"/sub\" is the current directory.".into())
    );
    assert_eq!(
        c.cmd("CDUP"),
        (250, "\"/\" is the current directory.".into())
    );
    assert_eq!(
        c.cmd("MKD a\"b"),
        (257, "\"/a\"\"b\" directory created.".into())
    );
    assert_eq!(c.cmd("MKD sub").0, 550);
    assert_eq!(c.cmd("CWD nothere").0, 550);
    assert_eq!(
        c.cmd("RNTO x"),
        (503, "Bad sequence of commands: use RNFR first.".into())
    );
    assert_eq!(
        c.cmd("RNFR sub"),
        (350, "Ready for destination name.".into())
    );
    assert_eq!(c.cmd("RNTO renamed"), (250, "Renaming ok.".into()));
    assert!(srv.root().join("renamed").is_dir());
    assert_eq!(c.cmd("RNFR nothere").0, 550);
    assert_eq!(c.cmd("RMD renamed"), (250, "Directory removed.".into()));
    assert_eq!(c.cmd("RMD /"), (550, "Can't remove root directory.".into()));
    assert_eq!(c.cmd("DELE f"), (250, "File removed.".into()));
    assert!(!srv.root().join("f").exists());
    assert_eq!(c.cmd("DELE f").0, 550);
    assert_eq!(c.cmd("XMKD x"), (257, "\"/x\" directory created.".into()));
    assert_eq!(c.cmd("XRMD x"), (250, "Directory removed.".into()));
}

#[test]
fn site_chmod() {
    use std::os::unix::fs::PermissionsExt;
    let srv = setup();
    let mut c = srv.login();
    assert_eq!(
        c.cmd("SITE CHMOD 600 f"),
        (200, "SITE CHMOD successful.".into())
    );
    let mode = std::fs::metadata(srv.root().join("f"))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        c.cmd("SITE CHMOD 9 f"),
        (501, "Invalid SITE CHMOD format.".into())
    );
}

#[test]
fn port_checks() {
    let srv = setup();
    let mut c = srv.login();
    assert_eq!(
        c.cmd("PORT 10,0,0,1,200,10"),
        (
            501,
            "Rejected data connection to foreign address 10.0.0.1:51210.".into()
        )
    );
    assert_eq!(
        c.cmd("PORT 127,0,0,1,0,21"),
        (
            501,
            "PORT against the privileged port \"21\" refused.".into()
        )
    );
    assert_eq!(c.cmd("PORT 1,2,3"), (501, "Invalid PORT format.".into()));
    assert_eq!(
        c.cmd("PORT 127,0,0,256,1,1"),
        (501, "Invalid PORT format.".into())
    );
    assert_eq!(
        c.cmd("EPRT |1|10.0.0.1|5000|"),
        (
            501,
            "Rejected data connection to foreign address 10.0.0.1:5000.".into()
        )
    );
    assert_eq!(
        c.cmd("EPRT |1|127.0.0.1|21|"),
        (
            501,
            "PORT against the privileged port \"21\" refused.".into()
        )
    );
    assert_eq!(c.cmd("EPRT garbage"), (501, "Invalid EPRT format.".into()));
    assert_eq!(
        c.cmd("EPRT |2|::1|5000|"),
        (522, "Network protocol not supported, use (1)".into())
    );
    // RFC 2428 §2: an unknown protocol is 522 with the supported list (pyftpdlib: 501).
    for bad in ["|3|127.0.0.1|5000|", "||127.0.0.1|5000|"] {
        assert_eq!(
            c.cmd(&format!("EPRT {bad}")),
            (522, "Network protocol not supported, use (1,2)".into()),
            "{bad}"
        );
    }
    assert_eq!(c.cmd("EPRT |1|127.0.0.1|0|").0, 501);
    for bad in [
        "127,0,0,1,300,1",
        "127,0,0,1,-1,5",
        "127,0,0,1,4,x",
        "127,0,0,1,4",
    ] {
        assert_eq!(
            c.cmd(&format!("PORT {bad}")),
            (501, "Invalid PORT format.".into()),
            "{bad}"
        );
    }
    // A closed local port: the connect fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    assert_eq!(
        c.cmd(&format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff)),
        (425, "Can't connect to specified address.".into())
    );
    c.expect("NOOP", 200);
}

#[test]
fn epsv_variants() {
    let srv = setup();
    let mut c = srv.login();
    assert_eq!(
        c.cmd("EPSV 2"),
        (522, "Network protocol not supported, use (1)".into())
    );
    // RFC 2428 §3: an unknown protocol is 522 with the supported list (pyftpdlib: 501).
    for arg in ["3", "x", "12"] {
        assert_eq!(
            c.cmd(&format!("EPSV {arg}")),
            (522, "Network protocol not supported, use (1,2)".into()),
            "{arg}"
        );
    }
    let text = c.expect("EPSV 1", 229);
    assert!(
        text.starts_with("Entering extended passive mode (|||"),
        "{text}"
    );
    assert_eq!(c.cmd("EPSV ALL").0, 200);
    assert_eq!(
        c.cmd("PASV"),
        (501, "PASV not allowed after EPSV ALL.".into())
    );
    assert_eq!(
        c.cmd("PORT 127,0,0,1,100,100"),
        (501, "PORT not allowed after EPSV ALL.".into())
    );
    // EPSV itself still works.
    std::fs::write(srv.root().join("g"), b"still").expect("write");
    assert_eq!(c.retr("g"), b"still");
}

#[test]
fn pasv_reply_names_the_control_address() {
    let srv = setup();
    let mut c = srv.login();
    let text = c.expect("PASV", 227);
    assert!(
        text.starts_with("Entering passive mode (127,0,0,1,"),
        "{text}"
    );
    assert!(text.ends_with(")."), "{text}");
}

//! The TOML mapping: options to arguments, `[[users]]`, errors with their lines, and the
//! example file.

use clap::CommandFactory;

use super::*;
use crate::cli::Cli;

fn parsed(text: &str) -> Result<ConfigFile, String> {
    parse(text, Path::new("f.toml"), &Cli::command())
}

fn options(text: &str) -> Vec<String> {
    match parsed(text) {
        Ok(file) => file
            .options
            .iter()
            .map(|(_, arg)| arg.to_string_lossy().into_owned())
            .collect(),
        Err(e) => panic!("{text:?}: {e}"),
    }
}

fn error(text: &str) -> String {
    match parsed(text) {
        Ok(file) => panic!("{text:?} accepted: {file:?}"),
        Err(e) => e,
    }
}

/// The options the file may set.
fn settable() -> Vec<Arg> {
    let cmd = Cli::command();
    let args = cmd.get_arguments().filter(|a| {
        let long = a.get_long().unwrap_or_default();
        !NOT_IN_FILE.contains(&long)
    });
    args.cloned().collect()
}

#[test]
fn options_become_arguments() {
    let text = "# a server\nport = 21\nwrite = true\ndebug = false\n\
                directory = \"/srv/ftp\"\nmax-cons-per-ip = 10\nread-limit = \"1M\"\n\
                write-limit = 2048\nrange = \"8000-8010\"\nbanner = \"\"\n";
    assert_eq!(
        options(text),
        [
            "--port=21",
            "--write",
            "--directory=/srv/ftp",
            "--max-cons-per-ip=10",
            "--read-limit=1M",
            "--write-limit=2048",
            "--range=8000-8010",
            "--banner=",
        ]
    );
    assert!(options("").is_empty());
    assert!(parsed("").map(|f| f.users.is_empty()).unwrap_or(false));
}

#[test]
fn every_option_has_a_key() {
    for arg in settable() {
        let long = arg.get_long().unwrap_or_default();
        let value = match (long, Kind::of(&arg)) {
            (_, Kind::Switch) => "true".to_owned(),
            (_, Kind::Number | Kind::Rate) => "7".to_owned(),
            ("concurrency", _) => "\"pre-fork\"".to_owned(),
            ("log-format", _) => "\"json\"".to_owned(),
            ("range", _) => "\"1-2\"".to_owned(),
            ("metrics", _) => "\"127.0.0.1:9100\"".to_owned(),
            ("nat-address" | "interface" | "proxy-protocol-from" | "ban-allow", _) => {
                "\"::1\"".to_owned()
            }
            ("nat-address-for", _) => "\"::1/128=::2\"".to_owned(),
            ("virtual-host", _) => "\"a.example=u.txt\"".to_owned(),
            (_, Kind::Text) => "\"x\"".to_owned(),
        };
        let expected = match Kind::of(&arg) {
            Kind::Switch => format!("--{long}"),
            _ => format!("--{long}={}", value.trim_matches('"')),
        };
        assert_eq!(options(&format!("{long} = {value}")), [expected], "{long}");
    }
    for action in NOT_IN_FILE {
        assert_eq!(
            error(&format!("{action} = true")),
            format!("f.toml:1: unknown key '{action}'")
        );
    }
}

#[test]
fn errors_name_the_line_and_the_key() {
    assert_eq!(
        error("port = 1\n\nprot = 2\n"),
        "f.toml:3: unknown key 'prot'"
    );
    assert_eq!(
        error("port = \"2121\""),
        "f.toml:1: port: expected an integer, found a string"
    );
    assert_eq!(
        error("\nwrite = \"yes\""),
        "f.toml:2: write: expected true or false, found a string"
    );
    assert_eq!(
        error("banner = 3"),
        "f.toml:1: banner: expected a string, found an integer"
    );
    assert_eq!(
        error("read-limit = 1.5"),
        "f.toml:1: read-limit: expected an integer or a string such as \"10M\", found a float"
    );
    assert_eq!(
        error("timeout = [1]"),
        "f.toml:1: timeout: expected an integer, found an array"
    );
    assert_eq!(
        error("port = 70000"),
        "f.toml:1: port: invalid int value: '70000'"
    );
    assert_eq!(
        error("port = -1"),
        "f.toml:1: port: invalid int value: '-1'"
    );
    assert_eq!(
        error("concurrency = \"fork\""),
        "f.toml:1: concurrency: invalid choice: 'fork' (choose from 'async', \
         'multi-thread', 'multi-proc', 'pre-fork', 'multi-loop')"
    );
    assert_eq!(
        error("nat-address = \"1.2.3\""),
        "f.toml:1: nat-address: invalid IP address value: '1.2.3'"
    );
    assert_eq!(
        error("passive-timeout = 0"),
        "f.toml:1: passive-timeout: invalid value: '0' (use 1 or more seconds)"
    );
    assert_eq!(
        error("banner = 2026-01-01"),
        "f.toml:1: a date or a time is not a value any key takes"
    );
    // Not TOML: the parser's message, at its line.
    assert_eq!(
        error("a = 1\nport = "),
        "f.toml:2: string values must be quoted, expected literal string"
    );
    assert_eq!(error("port = 1\nport = 2"), "f.toml:2: duplicate key");
    assert_eq!(
        read(Path::new("/nonexistent/f.toml"), &Cli::command()).err(),
        Some("/nonexistent/f.toml: No such file or directory (os error 2)".to_owned())
    );
}

#[test]
fn users() {
    let text = "port = 1\n\n[[users]]\nname = \"ann\"\npassword-hash = \"$6$x$y\"\n\
                home = \"/srv/ann\"\nperm = \"elrw\"\nmsg-login = \"hi\"\n\n\
                [[users.overrides]]\ndirectory = \"in\"\nperm = \"elrwm\"\n\
                recursive = true\n\n[[users]]\nname = \"bob\"\npassword = \"pw\"\n\
                home = \"/srv/bob\"\noverrides = [{ directory = \"/srv/bob/x\", perm = \"e\" }]\n\
                \n[[users]]\nname = \"anonymous\"\nhome = \"/srv/pub\"\n";
    let file = parsed(text).expect("users");
    assert_eq!(
        file.users,
        [
            FileUser {
                at: "f.toml:4".into(),
                name: "ann".into(),
                password: Password::Hash("$6$x$y".into()),
                home: "/srv/ann".into(),
                perm: "elrw".into(),
                msg_login: Some("hi".into()),
                msg_quit: None,
                overrides: vec![Override {
                    at: "f.toml:11".into(),
                    directory: "in".into(),
                    perm: "elrwm".into(),
                    recursive: true,
                }],
                quota: Default::default(),
                read_limit: None,
                write_limit: None,
            },
            FileUser {
                at: "f.toml:16".into(),
                name: "bob".into(),
                password: Password::Plain("pw".into()),
                home: "/srv/bob".into(),
                perm: "elr".into(),
                msg_login: None,
                msg_quit: None,
                overrides: vec![Override {
                    at: "f.toml:19".into(),
                    directory: "/srv/bob/x".into(),
                    perm: "e".into(),
                    recursive: false,
                }],
                quota: Default::default(),
                read_limit: None,
                write_limit: None,
            },
            FileUser {
                at: "f.toml:22".into(),
                name: "anonymous".into(),
                password: Password::Anonymous,
                home: "/srv/pub".into(),
                perm: "elr".into(),
                msg_login: None,
                msg_quit: None,
                overrides: Vec::new(),
                quota: Default::default(),
                read_limit: None,
                write_limit: None,
            },
        ]
    );
}

#[test]
fn bad_users() {
    let user = |body: &str| error(&format!("port = 1\n[[users]]\n{body}"));
    assert_eq!(
        user("name = \"bob\"\npassword = \"a\"\nhome = \"/h\"\nquota-bytes = \"lots\""),
        "f.toml:6: users.quota-bytes: invalid size 'lots': use a number with K, M or G"
    );
    assert_eq!(
        user("name = \"bob\"\npassword = \"a\"\nhome = \"/h\"\nquota-files = -1"),
        "f.toml:6: users.quota-files: a count cannot be negative"
    );
    assert_eq!(
        user("name = \"bob\"\nhome = \"/h\""),
        "f.toml:3: user 'bob': no password-hash or password (make a hash with \
         ftpdlib --hash-password)"
    );
    assert_eq!(
        user("name = \"bob\"\npassword = \"a\"\npassword-hash = \"b\"\nhome = \"/h\""),
        "f.toml:5: user 'bob': password-hash and password: give one of them"
    );
    assert_eq!(
        user("name = \"anonymous\"\npassword = \"a\"\nhome = \"/h\""),
        "f.toml:3: user 'anonymous' takes no password (any is accepted)"
    );
    // A table's place is its header's.
    assert_eq!(user("home = \"/h\"\n"), "f.toml:2: users: no name");
    assert_eq!(
        user("name = \"bob\"\npassword = \"a\""),
        "f.toml:3: user 'bob': no home"
    );
    assert_eq!(
        user("name = \"bob\"\npasword = \"a\""),
        "f.toml:4: users: unknown key 'pasword' (known: name, password-hash, password, \
         home, perm, msg-login, msg-quit, overrides, quota-bytes, quota-files, read-limit, write-limit)"
    );
    assert_eq!(
        user("name = 5"),
        "f.toml:3: users.name: expected a string, found an integer"
    );
    assert_eq!(
        user("name = \"b\"\npassword = \"a\"\nhome = \"/h\"\n[[users.overrides]]\nperm = \"e\""),
        "f.toml:6: overrides: no directory"
    );
    assert_eq!(
        user(
            "name = \"b\"\npassword = \"a\"\nhome = \"/h\"\n[[users.overrides]]\n\
             directory = \"d\"\nperm = \"e\"\nrecursive = 1"
        ),
        "f.toml:9: overrides.recursive: expected true or false, found an integer"
    );
    assert_eq!(
        error("users = 3"),
        "f.toml:1: users: expected [[users]] tables, found an integer"
    );
}

/// dist/ftpdlib.toml parses as it is, and with every `#key = value` line (an option
/// left at its default) set; between them, every key is there.
#[test]
fn the_example_file() {
    let text = include_str!("../../../../dist/ftpdlib.toml");
    let as_is = parsed(text).expect("dist/ftpdlib.toml");
    assert_eq!(as_is.users.len(), 1);
    let set: String = text
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '[') => rest,
            _ => line,
        })
        .flat_map(|line| [line, "\n"])
        .collect();
    let all = parsed(&set).expect("dist/ftpdlib.toml with every option set");
    for arg in settable() {
        let long = arg.get_long().unwrap_or_default();
        let key = format!("\n{long} = ");
        assert!(set.contains(&key), "{long} is not in dist/ftpdlib.toml");
        let switch = matches!(Kind::of(&arg), Kind::Switch);
        let id = arg.get_id().as_str();
        assert!(switch || all.options.iter().any(|(i, _)| i == id), "{long}");
    }
    assert_eq!(all.users.len(), 2);
    for key in USER_KEYS.iter().chain(OVERRIDE_KEYS) {
        let table = format!("[[users.{key}]]");
        assert!(
            set.contains(&format!("\n{key} = ")) || set.contains(&table),
            "{key}"
        );
    }
}

#[test]
fn virtual_hosts() {
    let file = parsed(
        "[[virtual-hosts]]\nname = \"a.example\"\nusers-file = \"a.users\"\nbanner = \"A\"\n\
         certfile = \"a.pem\"\n",
    )
    .expect("a virtual host");
    assert_eq!(
        file.virtual_hosts,
        [VirtualHostSpec {
            at: "f.toml:2".to_owned(),
            name: "a.example".to_owned(),
            users_file: "a.users".into(),
            banner: Some("A".to_owned()),
            certfile: Some("a.pem".into()),
            keyfile: None,
        }]
    );
    assert_eq!(
        error("[[virtual-hosts]]\nname = \"a\"\n"),
        "f.toml:2: virtual host 'a': no users-file"
    );
    assert!(error("[[virtual-hosts]]\nname = \"a\"\nuser = \"x\"\n")
        .starts_with("f.toml:3: virtual-hosts: unknown key 'user'"));
    assert_eq!(
        error("[[virtual-hosts]]\nname = \"a\"\nusers-file = \"u\"\nkeyfile = \"k\"\n"),
        "f.toml:4: virtual host 'a': keyfile without certfile"
    );
}

#[test]
fn a_users_bandwidth_caps() {
    let text = "[[users]]\nname = \"ann\"\npassword = \"pw\"\nhome = \"/srv/ann\"\n\
                read-limit = \"512K\"\nwrite-limit = 1000\n\n[[users]]\nname = \"bob\"\n\
                password = \"pw\"\nhome = \"/srv/bob\"\n";
    let file = parsed(text).expect("users");
    let caps: Vec<_> = file
        .users
        .iter()
        .map(|u| (u.read_limit, u.write_limit))
        .collect();
    assert_eq!(caps, [(Some(512 << 10), Some(1000)), (None, None)]);
    let bad =
        "[[users]]\nname = \"ann\"\npassword = \"pw\"\nhome = \"/a\"\nwrite-limit = \"fast\"\n";
    let err = parsed(bad).expect_err("a rate that is not one");
    assert!(
        err.starts_with("f.toml:5: users.write-limit: invalid rate"),
        "{err}"
    );
    let bad = "[[users]]\nname = \"ann\"\npassword = \"pw\"\nhome = \"/a\"\nread-limit = -1\n";
    assert!(parsed(bad).is_err());
}

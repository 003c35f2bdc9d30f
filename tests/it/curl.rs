//! curl against the built binary: uploads and downloads of 1 byte, 0 bytes and 100 MB in
//! passive and active mode, and a named user with anonymous access off.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::{
    assert_same_file, big_data, have_tool, heavy, run_tool, BinServer, TOOL_TIMEOUT,
};

fn curl(args: &[&str]) -> Output {
    run_tool(
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "80"])
            .args(args),
        TOOL_TIMEOUT,
    )
}

fn curl_ok(args: &[&str]) -> Vec<u8> {
    let out = curl(args);
    assert!(
        out.status.success(),
        "curl {args:?} failed with {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

#[test]
fn curl_round_trips_passive_and_active() {
    if !have_tool("curl") {
        return;
    }
    let _heavy = heavy();
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    let local = tmp.path().join("local");
    std::fs::create_dir(&served).expect("mkdir served");
    std::fs::create_dir(&local).expect("mkdir local");
    let files: [(&str, &[u8]); 3] = [("one", b"x"), ("empty", b""), ("big", big_data())];
    for (name, data) in files {
        std::fs::write(local.join(name), data).expect("write a local file");
    }
    let srv = BinServer::start(&["-w", "-d", path_str(&served)]);

    for (mode, extra) in [("passive", &[][..]), ("active", &["-P", "127.0.0.1"][..])] {
        for (name, data) in files {
            let remote = format!("{mode}-{name}");
            let source = local.join(name);
            let mut up = extra.to_vec();
            let url = srv.url(&remote);
            up.extend(["-T", path_str(&source), &url]);
            curl_ok(&up);
            assert_same_file(&source, &served.join(&remote));

            let mut down = extra.to_vec();
            down.push(&url);
            let got = curl_ok(&down);
            assert_eq!(got.len(), data.len(), "{mode} {name}: size");
            assert!(got == data, "{mode} {name}: the download differs");
        }
    }
    let log = srv.log();
    assert!(log.contains("STOR"), "no STOR in the server log:\n{log}");
}

#[test]
fn curl_with_a_named_user() {
    if !have_tool("curl") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    std::fs::create_dir(&served).expect("mkdir served");
    let source = tmp.path().join("f");
    std::fs::write(&source, b"named user upload").expect("write");
    let srv = BinServer::start(&["-w", "-d", path_str(&served), "-u", "user", "-P", "12345"]);
    let root_url = srv.url("");

    // Anonymous and a wrong password are refused (each after the 3 s delay), side by side.
    let refused: Vec<_> = [
        vec![root_url.clone()],
        vec!["-u".to_owned(), "user:wrong".to_owned(), root_url.clone()],
    ]
    .into_iter()
    .map(|args| {
        std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            curl(&args)
        })
    })
    .collect();

    let f_url = srv.url("f");
    curl_ok(&["-u", "user:12345", "-T", path_str(&source), &f_url]);
    assert_same_file(&source, &served.join("f"));
    assert_eq!(curl_ok(&["-u", "user:12345", &f_url]), b"named user upload");
    let listing = curl_ok(&["-u", "user:12345", "-Q", "MKD newdir", &root_url]);
    assert!(
        served.join("newdir").is_dir(),
        "MKD did not create the directory"
    );
    let listing = String::from_utf8_lossy(&listing);
    assert!(
        listing.lines().any(|l| l.trim_end().ends_with(" f")),
        "{listing}"
    );
    curl_ok(&["-u", "user:12345", "-Q", "DELE f", &root_url]);
    assert!(!served.join("f").exists(), "DELE did not remove the file");
    curl_ok(&["-u", "user:12345", "-Q", "RMD newdir", &root_url]);
    assert!(
        !served.join("newdir").exists(),
        "RMD did not remove the directory"
    );

    for r in refused {
        let out = r.join().expect("curl thread");
        // 67: CURLE_LOGIN_DENIED, the server replied 530.
        assert_eq!(
            out.status.code(),
            Some(67),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("530"));
    }
}

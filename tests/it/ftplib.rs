//! Python's ftplib against the in-process server (the session is in
//! `tests/scripts/ftplib_session.py`).

use std::process::Command;

use crate::util::{have_tool, run_tool, TestServer, TOOL_TIMEOUT};

#[test]
fn python_ftplib_session() {
    if !have_tool("python3") {
        return;
    }
    let srv = TestServer::start();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scripts/ftplib_session.py"
    );
    let out = run_tool(
        Command::new("python3").args([
            script,
            &srv.addr.ip().to_string(),
            &srv.addr.port().to_string(),
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
    // Everything the session made, it removed.
    let left: Vec<_> = std::fs::read_dir(srv.root())
        .expect("read root")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "left in the root: {left:?}");
}

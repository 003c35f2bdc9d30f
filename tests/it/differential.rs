//! The differential test: the same command scripts against pyftpdlib 2.2.0 and ftpdlib,
//! replies compared line for line (tests/differential/run.py; the listed deliberate
//! differences are in tests/differential/expected_differences.txt).

use std::process::Command;
use std::time::Duration;

use crate::util::{have_tool, run_tool};

#[test]
fn replies_match_pyftpdlib() {
    if !have_tool("python3") {
        return;
    }
    let probe = Command::new("python3")
        .args([
            "-c",
            "import pyftpdlib, sys; sys.exit(pyftpdlib.__ver__ != '2.2.0')",
        ])
        .status();
    if !matches!(probe, Ok(s) if s.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "pyftpdlib 2.2.0 is not installed (pip install pyftpdlib==2.2.0)"
        );
        eprintln!("skipped: pyftpdlib 2.2.0 is not installed");
        return;
    }
    let _heavy = crate::util::heavy();
    let out = run_tool(
        Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/differential/run.py"
            ))
            .args(["--ftpdlib", env!("CARGO_BIN_EXE_ftpdlib")]),
        Duration::from_secs(300),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        out.status.success() && last.split(", ").nth(1) == Some("0 failed"),
        "differences from pyftpdlib:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

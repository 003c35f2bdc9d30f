//! Python's ftplib against the in-process server (the session is in
//! `tests/scripts/ftplib_session.py`).

use crate::util::{have_tool, run_python_script, TestServer};

#[test]
fn python_ftplib_session() {
    if !have_tool("python3") {
        return;
    }
    let srv = TestServer::start();
    run_python_script("ftplib_session.py", srv.addr);
    // Everything the session made, it removed.
    let left: Vec<_> = std::fs::read_dir(srv.root())
        .expect("read root")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "left in the root: {left:?}");
}

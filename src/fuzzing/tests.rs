//! The committed fuzz corpus replayed through the fuzz entry points, and the inputs the
//! fuzzer found, kept as regression tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;

/// Runs `entry` on every file of `fuzz/corpus/<target>`; returns how many.
fn replay(target: &str, mut entry: impl FnMut(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let Ok(listing) = fs::read_dir(&dir) else {
        // A packaged crate leaves fuzz/ out.
        eprintln!("skipping: no corpus at {}", dir.display());
        return 0;
    };
    let mut files: Vec<PathBuf> = listing
        .map(|e| e.expect("reading the corpus directory").path())
        .collect();
    files.sort();
    let started = Instant::now();
    for file in &files {
        let data = fs::read(file).expect("reading a corpus file");
        entry(&data);
        assert!(
            started.elapsed() < REPLAY_LIMIT,
            "replaying {target} took over {REPLAY_LIMIT:?} (at {})",
            file.display()
        );
    }
    assert!(!files.is_empty(), "empty corpus at {}", dir.display());
    files.len()
}

#[test]
fn corpus_command_line() {
    replay("command_line", command_line);
}

#[test]
fn corpus_addresses() {
    replay("addresses", addresses);
}

#[test]
fn corpus_proxy_header() {
    replay("proxy_header", proxy_header);
}

#[test]
fn corpus_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = PathsFixture::new(dir.path()).expect("the paths fixture");
    replay("paths", |data| fixture.run(data));
}

#[test]
fn corpus_listing() {
    replay("listing", listing);
}

#[test]
fn corpus_session() {
    replay("session", session);
}

#[test]
fn corpus_tls_session() {
    replay("tls_session", tls_session);
}

#[test]
fn corpus_tls_records() {
    replay("tls_records", tls_records);
}

#[test]
fn corpus_tls_upload_records() {
    replay("tls_upload_records", tls_upload_records);
}

#[test]
fn reply_checker_accepts_replies_and_refuses_the_rest() {
    assert_eq!(check_replies(b""), Ok(0));
    assert_eq!(
        check_replies(b"220 hi\r\n211-a\r\n 211 b\r\n211 c\r\n"),
        Ok(2)
    );
    for bad in [
        &b"220 hi"[..],
        b"hi\r\n",
        b"220-open\r\n",
        b"220 a\rb\r\n",
        b"220 a\nb\r\n",
        b"22 short\r\n",
        b"220x\r\n",
        b"620 no\r\n",
    ] {
        assert!(check_replies(bad).is_err(), "{bad:?}");
    }
}

/// How long one target's corpus may take to replay.
const REPLAY_LIMIT: Duration = Duration::from_secs(120);

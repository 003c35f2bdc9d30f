//! `cargo +nightly fuzz run paths`: see docs/hostile-input.md.
#![no_main]

use std::sync::OnceLock;

use ftpdlib::fuzzing::PathsFixture;

/// The tree every input is resolved in, with the temporary directory that holds it.
static FIXTURE: OnceLock<(tempfile::TempDir, PathsFixture)> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (_dir, fixture) = FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let fixture = PathsFixture::new(dir.path()).expect("the paths fixture");
        (dir, fixture)
    });
    fixture.run(data);
});

//! `cargo +nightly fuzz run session`: see docs/hostile-input.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ftpdlib::fuzzing::session(data));

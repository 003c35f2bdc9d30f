//! `cargo +nightly fuzz run addresses`: see docs/hostile-input.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ftpdlib::fuzzing::addresses(data));

//! `cargo +nightly fuzz run listing`: see docs/hostile-input.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ftpdlib::fuzzing::listing(data));

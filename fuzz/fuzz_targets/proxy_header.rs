//! `cargo +nightly fuzz run proxy_header`: see docs/hostile-input.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ftpdlib::fuzzing::proxy_header(data));

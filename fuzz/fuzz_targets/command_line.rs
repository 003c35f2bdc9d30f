//! `cargo +nightly fuzz run command_line`: see docs/hostile-input.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ftpdlib::fuzzing::command_line(data));

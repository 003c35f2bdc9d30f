//! `cargo +nightly fuzz run tls_upload_records`: see docs/hostile-input.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ftpdlib::fuzzing::tls_upload_records(data));

//! The crate's only libc calls.

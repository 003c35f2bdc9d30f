//! ftpdlib: pyftpdlib rebuilt in Rust on a readiness-based event loop over mio.
//!
//! One thread runs an [`ioloop::IoLoop`] that serves every FTP session: the control
//! connections, their passive listeners, active connectors and data channels, plus the
//! timers for idle timeouts and the delay after a failed login. No async runtime.
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod authorizers;
pub mod filesystems;
pub mod proto;
#[allow(unsafe_code)]
mod sys;
pub mod timefmt;

//! ftpdlib: pyftpdlib rebuilt in Rust on a readiness-based event loop over mio.
//!
//! One thread runs an [`ioloop::IoLoop`] that serves every FTP session: the control
//! connections, their passive listeners, active connectors and data channels, plus the
//! timers for idle timeouts and the delay after a failed login. No async runtime.
//!
//! ```no_run
//! use ftpdlib::authorizers::DummyAuthorizer;
//! use ftpdlib::servers::FtpServer;
//!
//! let mut auth = DummyAuthorizer::new();
//! auth.add_user("user", "12345", "/srv/ftp", "elradfmwMT", None, None)?;
//! auth.add_anonymous("/srv/ftp", "elr", None, None)?;
//! let mut server = FtpServer::builder(auth).bind("127.0.0.1:2121")?;
//! server.serve_forever(true)?;
//! # Ok::<(), ftpdlib::Error>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod authorizers;
mod bans;
pub mod config;
pub mod error;
pub mod events;
pub mod filesystems;
mod fnv;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod guide;
pub mod handlers;
mod limits;
mod log;
mod metrics;
mod net;
pub mod proto;
pub mod quotas;
pub mod servers;
#[allow(unsafe_code)]
mod sys;
pub mod systemd;

pub mod testing;
pub mod timefmt;

pub use error::Error;

//! Errors: the one public error type, and the one mapping from I/O errors to FTP replies.

use std::io;

use crate::filesystems::NotARegularFile;
use crate::proto::Reply;

/// What can go wrong when setting up or running a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket, poller or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: io::Error,
    },
    /// The configuration is inconsistent or names something that does not exist.
    #[error("{0}")]
    Config(String),
    /// An authorizer could not be set up.
    #[error(transparent)]
    Authorizer(#[from] crate::authorizers::AuthorizerError),
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// The OS's text for an error, without Rust's " (os error N)" suffix; what pyftpdlib puts
/// in its 550 replies. Never includes a path.
pub fn strerror(e: &io::Error) -> String {
    use io::ErrorKind::*;
    if let Some(code) = e.raw_os_error() {
        let text = io::Error::from_raw_os_error(code).to_string();
        return match text.rfind(" (os error") {
            Some(i) => text[..i].to_owned(),
            None => text,
        };
    }
    if e.get_ref()
        .is_some_and(|inner| inner.is::<NotARegularFile>())
    {
        return NotARegularFile.to_string();
    }
    match e.kind() {
        NotFound => "No such file or directory".into(),
        PermissionDenied => "Permission denied".into(),
        AlreadyExists => "File exists".into(),
        Unsupported => "Operation not supported".into(),
        _ => "Input/output error".into(),
    }
}

/// `550 <strerror>.`: the reply for a failed filesystem operation.
pub fn fs_error_reply(e: &io::Error) -> Reply {
    Reply::new(550, format!("{}.", strerror(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strerror_has_no_rust_suffix() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(strerror(&e), "No such file or directory");
        assert_eq!(
            fs_error_reply(&e),
            Reply::new(550, "No such file or directory.")
        );
        let e = io::Error::from_raw_os_error(libc::ENOTEMPTY);
        assert_eq!(strerror(&e), "Directory not empty");
    }
}

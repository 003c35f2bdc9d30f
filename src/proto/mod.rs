//! FTP protocol pieces that do no I/O (RFC 959, RFC 2428, RFC 3659).

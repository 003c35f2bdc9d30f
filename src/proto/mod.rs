//! FTP protocol pieces that do no I/O (RFC 959, RFC 2428, RFC 3659).
//!
//! * [`reply`]: [`Reply`] and its wire form, single- and multi-line.
//! * [`command`]: the command table ([`BUILTIN`], [`CommandTable`]): each command's
//!   metadata and what runs ([`Verb`] or a registered body).
//! * [`parse`]: [`parse_line`], a command line into a [`Request`].
//! * [`gate`](mod@gate): [`gate()`], the one place answering the refusals that need no
//!   filesystem before a command runs, and the one-shot state ([`Pending`]).
//! * [`addr`]: PORT/EPRT/EPSV decoding and the 227/229 replies.
//! * [`args`]: TYPE, STRU, MODE, REST and OPTS arguments.
//! * [`proxy`]: the PROXY protocol header a load balancer sends first ([`parse_proxy_header`]).
//!
//! Reply texts follow pyftpdlib 2.2.0 letter for letter unless a function's docs say
//! otherwise.
//!
//! ```
//! use ftpdlib::proto::{gate, parse_line, CommandTable};
//!
//! let table = CommandTable::builtin();
//! let req = parse_line(b"retr", &table);
//! let mut out = Vec::new();
//! if let Err(reply) = gate(&table, &req, true) {
//!     reply.write_to(&mut out);
//! }
//! assert_eq!(out, b"501 Syntax error: command needs an argument.\r\n");
//! ```

pub mod addr;
pub mod args;
mod charset;
pub mod command;
pub mod gate;
pub mod parse;
pub mod proxy;
pub mod reply;

pub use addr::{
    epsv_reply, parse_eprt, parse_eprt_on, parse_epsv, parse_epsv_on, parse_port, pasv_reply,
    protocol_not_supported, ControlFamily, EpsvArg,
};
pub use args::{
    mode_reply, opts_reply, parse_auth, parse_prot, parse_rest, parse_type, split_ls_options,
    split_offsets, split_symlink, split_utime, stru_reply, LsOptions, ProtLevel, TransferType,
    UtimeArgs,
};
pub use charset::{Charset, CharsetError, Decoded};
pub use command::{
    Action, ArgRule, CommandSpec, CommandTable, TlsNeed, Verb, BUILTIN, HOST_COMMAND,
    SITE_SYMLINK_COMMAND, SITE_UTIME_COMMAND, TLS_COMMANDS,
};
pub use gate::{gate, Pending, SessionGate};
pub use parse::{parse_line, Request};
pub use proxy::{parse_proxy_header, ProxyAddrs, ProxyError, ProxyHeader, ProxyParse};
pub use reply::{quote_path, Reply};

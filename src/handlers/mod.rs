//! The loop's handlers for FTP: the control channel (`control`) with its command bodies
//! (`commands`), and the data channel with its passive listener and active connector
//! (`dtp`), both reading and writing through a plain or TLS transport (`tls`, FTPS). They
//! talk by messages only, one enum per direction (control to data, data to control,
//! session to server, server to session); the data side closes its socket first, logs the
//! transfer, then reports, and only the control side replies to the client.
//!
//! Public here: what a command added by the embedding program sees ([`CommandContext`],
//! [`CommandBody`]).

mod as_user;
pub(crate) mod atomic;
pub(crate) mod bandwidth;
mod commands;
pub(crate) mod control;
pub mod custom;
pub(crate) mod digest;
pub(crate) mod dtp;
mod ftps;
pub(crate) mod pool;
pub(crate) mod pooled_file;
pub(crate) mod proxy;
pub(crate) mod shared;
pub(crate) mod tls;
pub(crate) mod transfers;
mod vhost;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use ioloop::Handle;

use crate::events::{Direction, Session, TransferRecord};
use crate::filesystems::FsFile;
use crate::log::SessionTag;
use shared::Shared;

pub use atomic::sweep_stale_uploads;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use commands::transfers::{list_into, nlst_into};
pub(crate) use control::FtpHandler;
pub use custom::{CommandBody, CommandContext};
pub use vhost::VirtualHost;
pub(crate) use vhost::VirtualHosts;

/// Everything sent between handlers of an FTP server's loop.
#[derive(Debug)]
#[non_exhaustive]
#[allow(clippy::enum_variant_names)] // each variant is named for where it goes
pub(crate) enum Msg {
    /// From a data-side handler (the first field) to its control channel.
    ToControl(Handle, DtpEvent),
    /// From a control channel to its data-side handler.
    ToData(DataCmd),
    /// From a session to the server (its acceptor), from the server's owner, or between
    /// the server's own handlers (the systemd notifier and the acceptor).
    ToServer(ServerEvent),
    /// From the server to a session.
    ToSession(SessionCmd),
    /// From a PROXY header reader to the listener that accepted the connection.
    Proxied(Box<proxy::Proxied>),
}

/// Orders for a session from its server.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum SessionCmd {
    /// The server is stopping: end the session, after the running transfer if any.
    Shutdown,
    /// A worker checked the password: Ok, or the 530 text.
    AuthResult(Result<(), String>),
    /// A worker hashed a file (HASH, XCRC …): the job's cancel flag (which job this is
    /// the result of), and the digest or why not.
    HashResult(Arc<AtomicBool>, std::io::Result<Vec<u8>>),
    /// A worker synced a completed upload (`fsync_uploads`): done, or why not.
    Synced(std::io::Result<()>),
    /// A filesystem thread ran a call of a filesystem that blocks: the filesystem back,
    /// with the call's result.
    FsReturned(Box<control::FsReturn>),
}

/// News from the data side.
#[derive(Debug)]
pub(crate) enum DtpEvent {
    /// The data connection is up; the data channel is this handle.
    Connected(Handle),
    /// A passive connection from an address other than the client's was refused; the
    /// listener keeps waiting.
    ForeignRejected(SocketAddr),
    /// Nobody connected to the passive listener in time.
    PassiveTimeout,
    /// The active connect failed.
    ActiveFailed(io::Error),
    /// The active connect took too long.
    ActiveTimeout,
    /// The data channel closed; sent exactly once by each data channel.
    Closed(Closure),
}

/// How a data channel ended, and how many bytes it moved.
#[derive(Debug)]
pub(crate) struct Closure {
    /// Bytes sent or received on the data connection.
    pub(crate) bytes: u64,
    /// Why it closed.
    pub(crate) reason: CloseReason,
    /// The data channel logged the transfer's line and fired its callback (it does
    /// whenever the transfer's start reached it).
    pub(crate) reported: bool,
    /// A completed upload's file, handed over for `fsync_uploads`.
    pub(crate) file: Option<FsFile>,
}

/// Why a data channel closed.
#[derive(Debug)]
pub(crate) enum CloseReason {
    /// The transfer finished: everything sent, or the upload ended with a clean EOF.
    Completed,
    /// The control channel asked (ABOR, a new PASV/PORT, the session ending).
    Aborted,
    /// The client closed the connection in the middle of a download.
    PeerClosedEarly,
    /// A network error (a reset) cut the transfer.
    Network(io::Error),
    /// Reading or writing the file failed.
    File(io::Error),
    /// No byte moved for the data timeout.
    Timeout,
    /// The TLS handshake on the data connection failed or timed out (`522`).
    TlsHandshake(io::Error),
    /// The data connection did not resume the control connection's TLS session while
    /// that is required (`522`, vsftpd's `require_ssl_reuse`).
    TlsReuseRequired,
    /// An upload's TLS stream ended without close_notify: it may be truncated (`426`).
    TlsTruncated,
}

/// Orders for the data side.
#[derive(Debug)]
pub(crate) enum DataCmd {
    /// Start a transfer on the connected data channel.
    Start(Job, Box<TransferLog>),
    /// Close without a reply (ABOR, a new PASV/PORT, the session ending).
    Abort,
    /// A filesystem thread finished a read or write of the transfer's file (a
    /// filesystem that blocks): go on.
    FileReady,
    /// Close without a reply, and log the running transfer (and fire its callback) here:
    /// the control channel no longer listens (a new PASV/PORT, the session ending), and
    /// only the data channel knows how many bytes moved.
    Abandon,
}

/// A transfer's log line and callback, kept by the data channel for when it must report
/// the transfer itself: after [`DataCmd::Abandon`], or when its control channel is gone.
#[derive(Debug)]
pub(crate) struct TransferLog {
    /// The session's name in the log's fields.
    pub(crate) session: SessionTag,
    /// The session's log prefix.
    pub(crate) prefix: String,
    /// The client's address.
    pub(crate) remote: SocketAddr,
    /// The user name of the session.
    pub(crate) username: String,
    /// RETR, STOR, APPE, STOU, LIST, NLST, MLSD.
    pub(crate) cmd: &'static str,
    /// The real path of the file (None for listings, which log and fire nothing).
    pub(crate) path: Option<PathBuf>,
    /// When the transfer command came.
    pub(crate) started: Instant,
    /// An atomic upload, or any upload with `fsync_uploads`: while the control channel
    /// listens, it reports the transfer itself, after renaming the temporary and the
    /// sync, so that the callback finds the file in place and on disk.
    pub(crate) deferred: bool,
    /// TYPE A.
    pub(crate) ascii: bool,
}

impl TransferLog {
    /// Logs pyftpdlib's transfer line and fires the matching callback (files only).
    /// Listings fire nothing and log no line; every transfer is counted in the metrics.
    pub(crate) fn ended(&self, shared: &Shared, completed: bool, bytes: u64) {
        let duration = self.started.elapsed();
        if let Some(m) = &shared.metrics {
            m.transfer(self.cmd, completed, bytes, duration);
        }
        let Some(path) = &self.path else {
            return;
        };
        let events = &*shared.events;
        // The figures as fields as well, for a logger that writes them apart (the
        // binary's JSON lines); the message stays pyftpdlib's line.
        log::info!(
            session:% = self.session,
            remote:% = self.remote,
            user = self.username.as_str(),
            event = "transfer",
            command = self.cmd,
            path:% = path.display(),
            completed = completed,
            bytes = bytes,
            seconds = duration.as_secs_f64();
            "{} {} {} completed={} bytes={} seconds={:.3}",
            self.prefix,
            self.cmd,
            path.display(),
            u8::from(completed),
            bytes,
            duration.as_secs_f64()
        );
        let session = Session {
            remote: self.remote,
            username: &self.username,
        };
        let incoming = self.cmd != "RETR";
        match (incoming, completed) {
            (false, true) => events.on_file_sent(session, path),
            (false, false) => events.on_incomplete_file_sent(session, path),
            (true, true) => events.on_file_received(session, path),
            (true, false) => events.on_incomplete_file_received(session, path),
        }
        events.on_transfer_ended(&TransferRecord {
            session,
            path,
            direction: if incoming {
                Direction::Incoming
            } else {
                Direction::Outgoing
            },
            ascii: self.ascii,
            bytes,
            duration,
            completed,
        });
    }
}

/// What a data channel transfers.
#[derive(Debug)]
pub(crate) enum Job {
    /// Send a file (RETR); `ascii` converts lone LF to CRLF. The data channel decides
    /// whether sendfile(2) moves it.
    SendFile {
        /// The file, positioned at the REST offset.
        file: FsFile,
        /// TYPE A conversion.
        ascii: bool,
        /// The file of a filesystem that blocks: read on the filesystem threads.
        pooled: bool,
    },
    /// Send bytes (a listing).
    SendBytes(Vec<u8>),
    /// Receive into a file (STOR, APPE, STOU); `ascii` converts CRLF to LF. The data
    /// channel decides whether splice(2) moves it (socket → pipe → file).
    Receive {
        /// The file, positioned where writing starts.
        file: FsFile,
        /// TYPE A conversion.
        ascii: bool,
        /// STOR after REST: once the upload completes, the file ends where it ends (the
        /// old file's tail beyond is cut).
        cut_tail: bool,
        /// A user with a quota: each block is charged before it is written, and the
        /// upload stops (`EDQUOT`, `552`) at the first that would go over.
        meter: Option<std::sync::Arc<crate::quotas::UploadMeter>>,
        /// The file of a filesystem that blocks: written on the filesystem threads.
        pooled: bool,
    },
}

/// News for the server's acceptor.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum ServerEvent {
    /// Session `id` ended (the acceptor knows its address).
    SessionClosed {
        /// The id the acceptor gave the session.
        id: u64,
    },
    /// Stop gracefully: stop accepting, end idle sessions now and busy ones after their
    /// transfer.
    Shutdown,
    /// Another process serves the listening socket now (a hand-over on SIGUSR2): stop
    /// accepting without touching the socket, which that process shares, and let the
    /// sessions end (a graceful stop after a grace period). To the systemd notifier:
    /// stop notifying.
    HandOver,
    /// How many sessions are open? Asked of the acceptor (or the pre-fork supervisor) by
    /// the systemd notifier, answered with [`ServerEvent::SessionCount`] to `reply_to`.
    CountSessions {
        /// Who asked.
        reply_to: Handle,
    },
    /// The answer to [`ServerEvent::CountSessions`]: the sessions open now, in every
    /// loop or process of the server.
    SessionCount(usize),
    /// New settings for the sessions started from now on (a reload).
    Reload(Box<shared::ReloadOrder>),
}

/// How a session reaches its server: in the same loop, or in another thread's loop
/// (the multi-thread model).
#[derive(Clone)]
pub(crate) enum ServerLink {
    Local(Handle),
    Remote(ioloop::LoopHandle<Msg>, Handle),
}

impl ServerLink {
    pub(crate) fn send(&self, cx: &mut ioloop::Ctx<'_, Msg>, msg: Msg) {
        match self {
            ServerLink::Local(h) => cx.send(*h, msg),
            ServerLink::Remote(lp, h) => {
                // The server's loop is gone only when it is shutting down anyway.
                let _ = lp.send(*h, msg);
            }
        }
    }
}

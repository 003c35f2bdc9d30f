//! The control channel (pyftpdlib's FTPHandler): reads command lines, runs them through
//! the command table's gate, dispatches to the `ftp_*` bodies in [`super::commands`], and
//! turns data-channel news into replies (`data`); its FTPS hooks are in `tls`. RFC 959.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

mod data;
mod fs_call;
mod sync;
mod tls;

pub(in crate::handlers) use fs_call::CommandLog;
pub(crate) use fs_call::FsReturn;

use ioloop::mio::net::TcpStream;
use ioloop::{AsyncChat, Ctx, Handle, Handler, Interest, Line, ReadStatus, Ready, TimerId};

use super::digest::{HashAlgo, HashJob};
use super::ftps::SessionTls;
use super::shared::Shared;
use super::tls::{TlsRole, Transport};
use super::{Job, Msg, ServerEvent, ServerLink, SessionCmd, VirtualHost};
use crate::authorizers::{Authorizer, ClientCertificate};
use crate::bans::Failure;
use crate::events::Session;
use crate::filesystems::FileSystem;
use crate::log::{log_prefix, LogPrefix, SessionTag};
use crate::metrics::Counter;
use crate::proto::parse::ParsedLine;
use crate::proto::{Pending, Reply, TransferType};

/// Stop reading commands while this much output waits for a client that does not read.
const OUTPUT_HIGH_WATER: usize = 64 * 1024;
/// Read chunks handled per readiness event before letting other sessions run.
const READS_PER_EVENT: usize = 16;
/// How long a closing session waits for the client to close after the last reply.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// One FTP session's control connection.
pub(crate) struct FtpHandler {
    pub(super) chat: AsyncChat<Transport>,
    pub(super) shared: Arc<Shared>,
    server: ServerLink,
    /// The id the acceptor gave this session.
    id: u64,
    /// The session's name in the log lines' fields.
    pub(super) tag: SessionTag,
    pub(super) remote: SocketAddr,
    /// The virtual host the client chose (HOST, or the TLS handshake's SNI name); None:
    /// the server's own users.
    pub(super) host: Option<Arc<VirtualHost>>,
    /// The client certificate the control connection's TLS handshake verified.
    pub(super) client_cert: Option<Box<ClientCertificate>>,
    pub(super) login: Login,
    pub(super) attempts: u32,
    pub(super) transfer_type: TransferType,
    /// What REST or RNFR left for the next command.
    pub(super) pending: Pending,
    pub(super) epsv_all: bool,
    pub(super) data: DataChan,
    pub(super) wait: Wait,
    pub(super) mlst_facts: Option<Vec<String>>,
    /// The algorithm HASH uses (`OPTS HASH`).
    pub(super) hash_algo: HashAlgo,
    /// FTPS state: control channel TLS, PBSZ / PROT.
    pub(super) tls: SessionTls,
    idle_timer: Option<TimerId>,
    /// The session is closing and discarding input until the client closes (this timer
    /// ends the wait).
    draining: Option<TimerId>,
    /// Input processing stopped because the client was not reading its replies.
    stalled_on_output: bool,
    /// The reply of the command being run, for the command log.
    pub(super) last_reply: LastReply,
}

/// pyftpdlib's command line: `PREFIX CMD WHAT CODE`, and the reply's text in quotes
/// after an error.
struct CommandLine<'a> {
    prefix: LogPrefix<'a>,
    cmd: &'a str,
    what: &'a str,
    code: u16,
    error: Option<&'a str>,
}

impl std::fmt::Display for CommandLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let CommandLine {
            prefix,
            cmd,
            what,
            code,
            error,
        } = self;
        write!(f, "{prefix} {cmd} {what} {code}")?;
        match error {
            Some(text) => write!(f, " '{text}'"),
            None => Ok(()),
        }
    }
}

/// What the command being run replied, for its log line.
pub(super) enum LastReply {
    /// No command runs: replies are not noted.
    Idle,
    /// A command runs and has not replied yet.
    Awaiting,
    /// It replied with a success code.
    Ok(u16),
    /// It replied with an error, whose text is logged too (boxed: this enum stays at two
    /// words).
    Error(Box<Reply>),
}

/// Where the login stands.
pub(super) enum Login {
    AwaitingUser,
    AwaitingPass {
        user: String,
    },
    LoggedIn {
        user: String,
        fs: Box<dyn FileSystem>,
    },
    /// Logged in, the filesystem away on a filesystem thread (it blocks: see
    /// `fs_call`); the session waits for it (`Wait::Filesystem`).
    Lent {
        user: String,
    },
}

/// The data side as the control channel sees it.
pub(super) enum DataChan {
    None,
    /// PASV/EPSV listener waiting; maybe with a transfer queued until the client connects.
    Passive {
        listener: Handle,
        queued: Option<Box<(Job, XferInfo)>>,
    },
    /// PORT/EPRT connect in progress (input is paused meanwhile).
    Active(Handle),
    /// Connected, no transfer.
    Connected(Handle),
    /// A transfer runs.
    Transferring {
        channel: Handle,
        /// Boxed: an idle session keeps the enum small.
        info: Box<XferInfo>,
    },
}

/// What the control channel remembers about a running transfer.
#[derive(Debug)]
pub(super) struct XferInfo {
    /// RETR, STOR, APPE, STOU, LIST, NLST, MLSD.
    pub(super) cmd: &'static str,
    /// The real path of the file (None for listings).
    pub(super) path: Option<PathBuf>,
    pub(super) started: Instant,
    /// Atomic uploads: the temporary the data goes to, renamed to `path` once complete.
    pub(super) part: Option<PathBuf>,
    /// STOU with atomic uploads: `path` is an empty file that holds the unique name, to
    /// be removed with the temporary if the upload is cut.
    pub(super) reserved: bool,
    /// An upload that makes a new directory entry (a new file, or a new one renamed over
    /// the old), which `fsync_uploads` syncs with the file.
    pub(super) new_name: bool,
    /// An upload by a user with a quota: its account.
    pub(in crate::handlers) quota: Option<crate::quotas::UploadQuota>,
}

impl XferInfo {
    /// STOR, APPE or STOU.
    pub(super) fn is_upload(&self) -> bool {
        matches!(self.cmd, "STOR" | "APPE" | "STOU")
    }
}

/// Why the session is not reading commands right now: a reply is pending that must come
/// before the reply to any later command.
pub(super) enum Wait {
    Nothing,
    /// A failed login, answered when the timer fires.
    AuthDelay {
        timer: TimerId,
        message: String,
    },
    /// PASS: a worker is checking the password.
    Authenticating,
    /// PORT/EPRT: "200" only once the connect completes.
    ActiveConnect,
    /// ABOR of a running transfer: the reply depends on how it ends.
    Abort,
    /// QUIT during a transfer, or the server stopping: the session ends when the
    /// transfer does. A QUIT's 221 (its text in `farewell`) follows the transfer's
    /// 226 / 426, as RFC 959 §4.1.1 orders them; a stopping server says nothing more.
    Quit {
        farewell: Option<String>,
    },
    /// AUTH TLS: the 234 must reach the client in clear before TLS starts.
    StartTls,
    /// HASH, XCRC …: a worker reads the file. Commands sent meanwhile (ABOR too) are
    /// answered after the checksum; a client that closes cancels it.
    Hashing(Box<HashJob>),
    /// `fsync_uploads`: a worker syncs a completed upload; its reply waits for it, and
    /// commands sent meanwhile are answered after it.
    Syncing(Box<sync::Syncing>),
    /// A filesystem that blocks runs a command's step on a filesystem thread: the
    /// command replies when it is back, and commands sent meanwhile are answered after.
    Filesystem(Box<fs_call::FsCall>),
}

impl FtpHandler {
    pub(crate) fn new(
        stream: TcpStream,
        remote: SocketAddr,
        server: ServerLink,
        id: u64,
        shared: Arc<Shared>,
    ) -> std::io::Result<Self> {
        // TCP_NODELAY and SO_OOBINLINE come from the listener (see `single_loop`).
        let max_line = shared.config.max_line_length;
        let tls = SessionTls::new(shared.config.tls.as_ref());
        let transport = match &shared.config.tls {
            Some(cfg) if cfg.implicit => {
                Transport::tls(stream, &cfg.server_config, tls.token(), TlsRole::Control)?
            }
            Some(_) | None => Transport::plain(stream),
        };
        Ok(FtpHandler {
            chat: AsyncChat::new(transport, b"\r\n", max_line),
            shared,
            server,
            id,
            tag: SessionTag::next(),
            remote,
            host: None,
            client_cert: None,
            login: Login::AwaitingUser,
            attempts: 0,
            transfer_type: TransferType::Ascii,
            pending: Pending::Nothing,
            epsv_all: false,
            data: DataChan::None,
            wait: Wait::Nothing,
            mlst_facts: None,
            hash_algo: HashAlgo::Sha256,
            tls,
            idle_timer: None,
            draining: None,
            stalled_on_output: false,
            last_reply: LastReply::Idle,
        })
    }

    /// Who logs the session's users in: its virtual host's authorizer, else the server's.
    pub(super) fn authorizer(&self) -> &Arc<dyn Authorizer> {
        self.host
            .as_ref()
            .map_or(&self.shared.authorizer, |h| &h.authorizer)
    }

    /// The user name given with USER, if any.
    pub(super) fn username(&self) -> &str {
        match &self.login {
            Login::AwaitingUser => "",
            Login::AwaitingPass { user } | Login::LoggedIn { user, .. } | Login::Lent { user } => {
                user
            }
        }
    }

    pub(super) fn session(&self) -> Session<'_> {
        Session {
            remote: self.remote,
            username: self.username(),
        }
    }

    /// The session's log prefix (`log_prefix`, by default `ip:port-[user]`).
    pub(super) fn prefix(&self) -> LogPrefix<'_> {
        log_prefix(&self.shared.config.log_prefix, self.remote, self.username())
    }

    /// Queues a reply (and logs it at debug level).
    pub(super) fn respond(&mut self, reply: Reply) {
        self.queue_reply(reply.code, &reply.lines);
        self.note_reply(reply.code, || reply);
    }

    /// Queues a one-line reply, the same as `respond(Reply::new(code, text))` without
    /// building a `Reply`: the replies every login sends cost no allocation.
    pub(super) fn respond_line(&mut self, code: u16, text: &str) {
        self.queue_reply(code, &[text]);
        self.note_reply(code, || Reply::new(code, text));
    }

    /// `respond(Reply::banner(code, text))` without building a `Reply`.
    pub(super) fn respond_banner(&mut self, code: u16, text: &str) {
        if Reply::banner_fits_one_line(text) {
            self.respond_line(code, text);
        } else {
            self.respond(Reply::banner(code, text));
        }
    }

    fn queue_reply<T: AsRef<str>>(&mut self, code: u16, lines: &[T]) {
        log::debug!(
            "{} -> {} {}",
            self.prefix(),
            code,
            lines.last().map_or("", AsRef::as_ref)
        );
        if let Some(m) = &self.shared.metrics {
            m.reply(code);
        }
        let charset = self.shared.charset;
        if charset.is_utf8() {
            Reply::write_lines(code, lines, self.chat.out_buffer());
        } else {
            // A character the encoding cannot show is sent as `?`. Replies echo paths the
            // client sent (which the resolver checked can be shown), so this is for text
            // such as a user name.
            let mut utf8 = Vec::new();
            Reply::write_lines(code, lines, &mut utf8);
            charset.encode_into(&utf8, self.chat.out_buffer());
        }
    }

    /// Notes a running command's reply for its log line.
    fn note_reply(&mut self, code: u16, reply: impl FnOnce() -> Reply) {
        if !matches!(self.last_reply, LastReply::Idle) {
            // Only error texts are logged: of the other replies keep the code.
            self.last_reply = if Reply::is_error_code(code) {
                LastReply::Error(Box::new(reply()))
            } else {
                LastReply::Ok(code)
            };
        }
    }

    /// Replies, then closes the session once the reply is sent.
    pub(super) fn respond_and_close(&mut self, reply: Reply) {
        self.respond(reply);
        self.chat.close_when_done();
    }

    fn accepting_input(&self) -> bool {
        matches!(self.wait, Wait::Nothing) && !self.chat.is_closing()
    }

    /// The server's end of the control connection (asked of the socket when a command
    /// needs it, rather than stored in every session).
    pub(super) fn local(&self) -> SocketAddr {
        self.chat
            .stream()
            .tcp()
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    pub(super) fn set_wait(&mut self, wait: Wait) {
        self.wait = wait;
    }

    /// Ends a wait: commands buffered meanwhile run on this pass.
    pub(super) fn end_wait(&mut self, cx: &mut Ctx<'_, Msg>) {
        self.wait = Wait::Nothing;
        cx.wake();
    }

    fn greet(&mut self, cx: &mut Ctx<'_, Msg>) {
        log::info!(
            session:% = self.tag, remote:% = self.remote, user = self.username(),
            event = "connect";
            "{} FTP session opened (connect)", self.prefix()
        );
        self.shared.count(Counter::SessionsOpened, 1);
        self.shared.events.on_connect(self.session());
        if let Some(t) = self.shared.config.timeout {
            self.idle_timer = Some(cx.call_later(t));
        }
        self.start_implicit_handshake(cx);
        let shared = Arc::clone(&self.shared);
        self.respond_banner(220, &shared.config.banner);
        if !self.chat.stream().is_tls() {
            // A new socket has room: sending now spares a writable round trip through
            // the poller (and an epoll_ctl to drop the interest again).
            let _ = self.chat.flush();
        }
    }

    fn process_input(&mut self, cx: &mut Ctx<'_, Msg>) {
        for _ in 0..READS_PER_EVENT {
            while self.accepting_input() {
                match self.chat.next_line() {
                    Some(line) => self.handle_line(cx, line),
                    None => break,
                }
            }
            if !self.accepting_input() {
                return;
            }
            if self.chat.pending_output() > OUTPUT_HIGH_WATER {
                // Lines may be buffered already: no readiness edge will come for them, so
                // resume explicitly once the client has read its replies.
                self.stalled_on_output = true;
                return;
            }
            match self.chat.read_some() {
                Ok(ReadStatus::Data) => {}
                Ok(ReadStatus::WouldBlock) => return,
                Ok(ReadStatus::Closed) => {
                    // Over TLS this was the client's close_notify: answer it with ours, so
                    // the client sees a clean end (RFC 8446 6.1).
                    self.chat.stream_mut().send_close_notify();
                    cx.close();
                    return;
                }
                Err(e) => {
                    if self.tls_handshaking() {
                        log::info!("{} SSL handshake failed: {e}", self.prefix());
                        self.shared.count(Counter::TlsHandshakeFailures, 1);
                    } else {
                        log::debug!("{} control connection error: {e}", self.prefix());
                    }
                    cx.close();
                    return;
                }
            }
        }
        // A client that keeps sending: finish its lines on a later pass.
        cx.wake();
    }

    fn handle_line(&mut self, cx: &mut Ctx<'_, Msg>, line: Line) {
        // A line read through TLS means the handshake is over: note it before the command
        // runs (USER may come in the same read as the handshake's last flight).
        self.tls_after_read(cx);
        if let Some(t) = self.idle_timer {
            cx.reset(t);
        }
        let bytes = match line {
            Line::Complete(bytes) => bytes,
            Line::TooLong => {
                log::warn!("{} Command too long.", self.prefix());
                self.respond_and_close(Reply::new(500, "Command too long."));
                return;
            }
        };
        let shared = Arc::clone(&self.shared);
        let decoded = shared.charset.decode(&bytes);
        let text = &decoded.text;
        let req = ParsedLine::parse(text, &shared.commands);
        if req.cmd == "PASS" {
            log::debug!("{} <- PASS ******", self.prefix());
        } else {
            log::debug!("{} <- {text}", self.prefix());
        }
        self.execute(cx, &req, decoded.clean);
    }

    /// The line of a logged command: `what` is its path when `is_path`, else its
    /// argument (a field `path` only for a path).
    pub(super) fn log_command(&self, cmd: &str, what: &str, is_path: bool, reply: &LastReply) {
        if log::log_enabled!(log::Level::Debug) {
            return; // the debug "->" line already says it
        }
        let (code, error) = match reply {
            LastReply::Error(reply) => (reply.code, Some(reply.last_line_text())),
            LastReply::Ok(code) => (*code, None),
            LastReply::Idle | LastReply::Awaiting => return,
        };
        let line = CommandLine {
            prefix: self.prefix(),
            cmd,
            what,
            code,
            error,
        };
        if is_path {
            log::info!(
                session:% = self.tag, remote:% = self.remote, user = self.username(),
                event = "command", command = cmd, code = code, path = what;
                "{line}"
            );
        } else {
            log::info!(
                session:% = self.tag, remote:% = self.remote, user = self.username(),
                event = "command", command = cmd, code = code;
                "{line}"
            );
        }
    }

    /// The server is stopping: a running transfer finishes (its 226 is sent), then the
    /// session ends; an idle session ends now.
    fn shut_down(&mut self, cx: &mut Ctx<'_, Msg>) {
        if self.chat.is_closing() || self.draining.is_some() {
            return;
        }
        if matches!(self.wait, Wait::Quit { .. }) {
            // A QUIT already waits for the transfer; its 221 still comes.
        } else if let Wait::Syncing(syncing) = &mut self.wait {
            // The upload's reply comes once it is on disk, then the session ends.
            syncing.quit_after(None);
        } else if matches!(self.data, DataChan::Transferring { .. }) {
            self.wait = Wait::Quit { farewell: None };
        } else {
            self.drop_data(cx);
            self.respond_and_close(Reply::new(421, "Server shutting down."));
        }
    }

    /// Sends queued output; once a requested close has nothing left to send, starts the
    /// lingering close. Returns false when the session is ending.
    fn flush_or_finish(&mut self, cx: &mut Ctx<'_, Msg>) -> bool {
        if self.chat.flush().is_err() || self.chat.stream_mut().flush_tls().is_err() {
            cx.close();
            return false;
        }
        self.tls_after_flush(cx);
        if self.chat.is_done() && !self.chat.stream().wants_write() {
            self.begin_drain(cx);
            return false;
        }
        true
    }

    /// A lingering close: send FIN after the last reply, then read and discard what the
    /// client still sends until it closes (or for at most LINGER). Closing with unread
    /// input would send a reset, which can make the client lose that last reply (e.g. the
    /// `500 Command too long.` sent while the long line is still arriving).
    fn begin_drain(&mut self, cx: &mut Ctx<'_, Msg>) {
        // TLS: close_notify first (small: it fits in the socket buffer just emptied).
        self.chat.stream_mut().send_close_notify();
        if self.chat.is_eof()
            || self
                .chat
                .stream()
                .tcp()
                .shutdown(std::net::Shutdown::Write)
                .is_err()
        {
            return cx.close();
        }
        self.draining = Some(cx.call_later(LINGER));
        self.drain_input(cx);
    }

    fn drain_input(&mut self, cx: &mut Ctx<'_, Msg>) {
        for _ in 0..READS_PER_EVENT {
            match self.chat.read_some() {
                Ok(ReadStatus::Data) => self.chat.clear_input(),
                Ok(ReadStatus::WouldBlock) => return,
                Ok(ReadStatus::Closed) | Err(_) => return cx.close(),
            }
        }
        cx.wake();
    }

    fn auth_delay_over(&mut self, cx: &mut Ctx<'_, Msg>, message: String) {
        self.attempts += 1;
        // pyftpdlib forgets the name as soon as the login fails, so the prefix of this
        // line is `[]`; the callback still learns who it was.
        let user = match std::mem::replace(&mut self.login, Login::AwaitingUser) {
            Login::AwaitingPass { user } | Login::LoggedIn { user, .. } | Login::Lent { user } => {
                user
            }
            Login::AwaitingUser => String::new(),
        };
        log::info!(
            session:% = self.tag, remote:% = self.remote, user = user.as_str(),
            event = "login_failed";
            "{} USER '{user}' failed login.", self.prefix()
        );
        self.shared.count(Counter::LoginsFailed, 1);
        self.shared.events.on_login_failed(Session {
            remote: self.remote,
            username: &user,
        });
        let banned = self.shared.bans.as_ref().is_some_and(|bans| {
            let banned = bans.failed_login(self.remote.ip()) == Failure::Banned;
            if banned {
                let policy = bans.policy();
                log::warn!(
                    "{} banned {} for {} s: {} failed logins within {} s.",
                    self.prefix(),
                    self.remote.ip().to_canonical(),
                    policy.ban_time.as_secs(),
                    policy.after,
                    policy.window.as_secs()
                );
            }
            banned
        });
        if banned || self.attempts >= self.shared.config.max_login_attempts {
            self.respond_and_close(Reply::new(530, format!("{message} Disconnecting.")));
        } else {
            self.respond(Reply::new(530, message));
        }
        self.end_wait(cx);
    }
}

impl Handler<Msg> for FtpHandler {
    fn source(&mut self) -> Option<&mut dyn ioloop::mio::event::Source> {
        Some(self.chat.stream_mut().tcp_mut())
    }

    fn deregister_on_close(&self) -> bool {
        false // the control socket is never duplicated and closes with the handler
    }

    fn interest(&self) -> Option<Interest> {
        if self.draining.is_some() {
            return Some(Interest::READABLE);
        }
        // While a file is hashed the socket is watched to notice a client that closes or
        // sends ABOR (`watch_while_hashing`); other commands wait.
        let watching = self.accepting_input() || matches!(self.wait, Wait::Hashing(_));
        let reading = watching && self.chat.pending_output() <= OUTPUT_HIGH_WATER;
        self.chat.stream().interest(self.chat.interest(reading))
    }

    fn on_start(&mut self, cx: &mut Ctx<'_, Msg>) {
        self.greet(cx);
    }

    fn on_ready(&mut self, cx: &mut Ctx<'_, Msg>, _ready: Ready) {
        if self.draining.is_some() {
            return self.drain_input(cx);
        }
        if self.chat.flush().is_err() {
            return cx.close();
        }
        if matches!(self.wait, Wait::Hashing(_)) {
            self.watch_while_hashing(cx);
            if matches!(self.wait, Wait::Hashing(_)) {
                return;
            }
        }
        self.process_input(cx);
        self.tls_after_read(cx);
        if !self.flush_or_finish(cx) {
            return;
        }
        if self.stalled_on_output && self.chat.pending_output() <= OUTPUT_HIGH_WATER {
            self.stalled_on_output = false;
            cx.wake();
        }
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_, Msg>, timer: TimerId) {
        if self.draining == Some(timer) || self.tls_timer_fired(cx, timer) {
            return cx.close();
        }
        if Some(timer) == self.idle_timer {
            if matches!(self.data, DataChan::Transferring { .. })
                || matches!(self.wait, Wait::Syncing(_) | Wait::Filesystem(_))
            {
                // pyftpdlib stops the idle clock while a transfer runs (here until its
                // reply); a client waiting for a reply from a slow filesystem is not idle
                // either.
                self.idle_timer = self.shared.config.timeout.map(|t| cx.call_later(t));
                return;
            }
            if self.chat.is_closing() {
                // A whole timeout spent waiting for the client to read its last replies
                // (after QUIT, or the 421 below): it never will.
                return cx.close();
            }
            log::info!(
                session:% = self.tag, remote:% = self.remote, user = self.username(),
                event = "timeout";
                "{} Control connection timed out.", self.prefix()
            );
            self.respond_and_close(Reply::new(421, "Control connection timed out."));
            // Armed again: should the 421 never be read, the next expiry closes.
            self.idle_timer = self.shared.config.timeout.map(|t| cx.call_later(t));
        } else if let Wait::AuthDelay { timer: t, .. } = &self.wait {
            if *t == timer {
                let Wait::AuthDelay { message, .. } =
                    std::mem::replace(&mut self.wait, Wait::Nothing)
                else {
                    return;
                };
                self.auth_delay_over(cx, message);
            }
        }
        self.flush_or_finish(cx);
    }

    fn on_message(&mut self, cx: &mut Ctx<'_, Msg>, msg: Msg) {
        if let Some(msg) = self.defer_while_lent(msg) {
            self.on_session_message(cx, msg);
        }
        if self.draining.is_none() {
            self.flush_or_finish(cx);
        }
    }

    fn on_close(&mut self, cx: &mut Ctx<'_, Msg>) {
        if let Wait::Hashing(job) = &self.wait {
            // The worker stops at its next block instead of reading the rest of the file.
            job.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if let Wait::Syncing(syncing) = &self.wait {
            // An atomic upload whose rename waited for the sync: the old file stays.
            if syncing.renames() {
                self.discard_part(syncing.info());
            }
        }
        // A filesystem that blocks settles what the session leaves on a thread: the
        // one it is on, or one it goes to now.
        let in_hand = self.take_fs_for_close();
        self.drop_data(cx);
        match in_hand {
            Some(fs) => self.clean_up_on_thread(fs),
            None => self.leave_fs_behind(),
        }
        log::info!(
            session:% = self.tag, remote:% = self.remote, user = self.username(),
            event = "disconnect";
            "{} FTP session closed (disconnect).", self.prefix()
        );
        self.shared.count(Counter::SessionsClosed, 1);
        self.shared.events.on_disconnect(self.session());
        let closed = ServerEvent::SessionClosed { id: self.id };
        self.server.send(cx, Msg::ToServer(closed));
    }
}

impl FtpHandler {
    /// A message from the data side, the server or a worker thread.
    fn on_session_message(&mut self, cx: &mut Ctx<'_, Msg>, msg: Msg) {
        match msg {
            Msg::ToControl(from, event) => self.on_dtp_event(cx, from, event),
            Msg::ToSession(SessionCmd::Shutdown) => self.shut_down(cx),
            Msg::ToSession(SessionCmd::AuthResult(verdict)) => {
                if let (Wait::Authenticating, Login::AwaitingPass { user }) =
                    (&self.wait, &self.login)
                {
                    let user = user.clone();
                    self.wait = Wait::Nothing;
                    cx.wake();
                    self.finish_login(cx, user, verdict);
                }
            }
            Msg::ToSession(SessionCmd::Synced(result)) => self.synced(cx, result),
            Msg::ToSession(SessionCmd::HashResult(flag, result)) => {
                // A job stopped by ABOR may have finished just before: its result must not
                // answer the next HASH.
                if let Wait::Hashing(job) = &self.wait {
                    if !Arc::ptr_eq(&job.cancel, &flag) {
                        return;
                    }
                    let reply = job.reply(result);
                    self.respond(reply);
                    self.end_wait(cx);
                }
            }
            Msg::ToSession(SessionCmd::FsReturned(back)) => self.fs_returned(cx, *back),
            Msg::ToData(_) | Msg::ToServer(_) | Msg::Proxied(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every logged-in idle session holds one `FtpHandler` (the README's idle memory per
    /// session, below 1 KiB): rarely used state belongs behind a box. 400 bytes in a debug
    /// build, where mio's socket carries 8 more bytes than in release.
    #[test]
    fn the_session_stays_small() {
        assert!(std::mem::size_of::<FtpHandler>() <= 400);
        assert_eq!(std::mem::size_of::<LastReply>(), 16);
        assert_eq!(std::mem::size_of::<DataChan>(), 32);
    }
}

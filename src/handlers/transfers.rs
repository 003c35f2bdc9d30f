//! The transfer engine of a data channel: file to socket (sendfile(2) for OS files, else
//! buffered, with TYPE A conversion), bytes to socket (listings), socket to file. Buffers
//! are taken when a transfer starts and dropped with it, and no block of a transfer
//! allocates.

use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};

use ioloop::{Handle, Interest, LoopHandle};

use super::pooled_file::{is_not_ready, PooledFile, TransferFile};
use super::shared::Shared;
use super::tls::{Transport, WriteFromError};
use super::{CloseReason, Job, Msg};
use crate::filesystems::FsFile;

/// How far a call to [`Transfer::pump`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Everything was moved.
    Done,
    /// The socket would block; readiness will call again.
    Blocked,
    /// It moved a fair share and stopped so other sessions can run; call again soon.
    Yielded,
}

/// What a transfer moves at most in one turn before it yields to the other sessions.
const TURN_SHARE: u64 = 4 << 20;

/// The least a download sends in one turn, however many run.
const MIN_SEND_SHARE: u64 = 64 << 10;

/// TCP_NOTSENT_LOWAT of a download's socket: the kernel queues at most this much data not
/// yet sent, and reports the socket writable again when less is left. Without it a socket
/// takes up to its whole send buffer (4 MiB by default) of unsent data per write, and 300
/// downloads at once held enough of it to push the kernel into TCP memory pressure. The
/// smaller the queue, the more of the sending the sender's own CPU does: what is still
/// queued when the reader's acknowledgements arrive is transmitted from the reader's
/// system calls, on the reader's CPU. On loopback, with curl reading, one download ran at
/// a median 2.4 GB/s with 128 KiB and 3.5 with 64 KiB (curl's system time per GiB 0.30
/// against 0.23 s); 16 and 32 KiB were no faster with curl. It bounds only data not yet
/// sent, never data in flight, so a long fat link keeps its full window; 64 KiB is 50 µs
/// of slack at 10 Gbit/s.
pub(crate) const SEND_NOTSENT_LOWAT: u32 = 64 << 10;

/// Downloads in progress in this process, over all loops and servers: the kernel's TCP
/// memory they fill is the machine's.
static ACTIVE_SENDS: AtomicUsize = AtomicUsize::new(0);

/// Counts one download in [`ACTIVE_SENDS`] while it lives.
struct SendSlot;

impl SendSlot {
    fn take() -> Self {
        ACTIVE_SENDS.fetch_add(1, Ordering::Relaxed);
        SendSlot
    }
}

impl Drop for SendSlot {
    fn drop(&mut self) {
        ACTIVE_SENDS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One transfer in progress.
pub(crate) struct Transfer {
    kind: Kind,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
    /// ASCII mode: the last byte seen was a CR (a CRLF may straddle two blocks).
    prev_cr: bool,
    /// The file's thread has not finished (a filesystem that blocks): nothing to do
    /// until it wakes the channel.
    waiting_file: bool,
    /// Set for downloads.
    _send_slot: Option<SendSlot>,
}

/// Where a pooled file's threads come from and whom they wake: the server's shared
/// state and the data channel.
pub(crate) type FilePool = (std::sync::Arc<Shared>, (LoopHandle<Msg>, Handle));

enum Kind {
    SendFile {
        file: TransferFile,
        ascii: bool,
        sendfile: bool,
        raw: Vec<u8>,
    },
    SendBytes,
    Receive {
        file: TransferFile,
        ascii: bool,
        /// Binary uploads to an OS file over plain TCP: socket → pipe → file.
        splice: Option<SplicePipe>,
        /// See [`Job::Receive`].
        cut_tail: bool,
        /// See [`Job::Receive`].
        meter: Option<std::sync::Arc<crate::quotas::UploadMeter>>,
        /// The size of the blocks written to the file.
        block: usize,
        /// See [`NameWatch`].
        name: NameWatch,
    },
}

/// Whether an upload's file can still be read by anyone. An OS file that had a name (a
/// link) when the upload started and has none left (a later STOR of the same name was
/// renamed over it, or a DELE removed it) can never get one back, since linkat(2) refuses
/// such a file, so what would still be written to it could never be read. The rest of
/// such an upload is received to its end and answered as before, but no longer written,
/// charged to the quota or cached: 200 clients that STOR one name at once no longer write
/// 200 files for the one that is kept, nor fill a disk with files nobody can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameWatch {
    /// Look again once this many bytes were received.
    CheckAt(u64),
    /// Written to the end: not an OS file, or one without a name from the start (an
    /// `O_TMPFILE` a custom filesystem links later).
    Off,
    /// The file lost its name: what arrives is dropped.
    Lost,
}

/// How often a running upload looks whether its file still has a name: one fstat(2) per
/// MiB received, so a file replaced at its start receives a MiB or two.
const NAME_CHECK_EVERY: u64 = 1 << 20;

impl NameWatch {
    fn start(file: &TransferFile) -> NameWatch {
        match link_count(file) {
            Some(links) if links > 0 => NameWatch::CheckAt(NAME_CHECK_EVERY),
            _ => NameWatch::Off,
        }
    }
}

/// How many names an upload's OS file has (st_nlink); None for other files or when
/// fstat(2) fails.
fn link_count(file: &TransferFile) -> Option<u64> {
    let st = crate::sys::fstat(file.as_os()?.as_fd()).ok()?;
    Some(st.nlink)
}

/// The pipe an upload is spliced through, and how much of it is not in the file yet.
struct SplicePipe {
    read: OwnedFd,
    write: OwnedFd,
    /// What one splice(2) call asks of the socket: the pipe's capacity.
    chunk: usize,
    pending: usize,
}

impl SplicePipe {
    /// A pipe of [`SPLICE_PIPE_SIZE`] where the system allows it. None when no pipe can be
    /// had, or only one smaller than a default pipe: a user over its pipe allowance
    /// (`/proc/sys/fs/pipe-user-pages-soft`) gets two-page pipes, slower than recv(2).
    fn open() -> Option<Self> {
        let (read, write) = crate::sys::pipe().ok()?;
        // Refused (EPERM) over the allowance: the pipe keeps the size it has.
        let _ = crate::sys::set_pipe_size(write.as_raw_fd(), SPLICE_PIPE_SIZE);
        let chunk = crate::sys::pipe_size(write.as_raw_fd()).ok()?;
        (chunk >= MIN_SPLICE_PIPE_SIZE).then_some(SplicePipe {
            read,
            write,
            chunk,
            pending: 0,
        })
    }
}

/// The pipe size asked for spliced uploads. A pipe's size bounds one splice(2) call:
/// 512 KiB moves a fast upload in an eighth of the calls of a default 64 KiB pipe, and
/// measured faster than both 64 KiB and 1 MiB pipes. The pipe holds references to the
/// socket's pages, not copies, so a larger one costs no memory of its own.
const SPLICE_PIPE_SIZE: usize = 512 << 10;

/// A pipe smaller than a default one is not worth splicing through.
const MIN_SPLICE_PIPE_SIZE: usize = 64 << 10;

impl Transfer {
    /// A transfer of `job` with buffers of these sizes. `zero_copy` allows sendfile(2) and
    /// splice(2) (not over TLS, not when the server disables it); they are used where the
    /// file allows (see [`Transfer::zero_copy`]). A job's file of a filesystem that
    /// blocks is moved on the threads of `pool`.
    pub(crate) fn new(
        job: Job,
        zero_copy: bool,
        in_size: usize,
        out_size: usize,
        pool: Option<FilePool>,
    ) -> Self {
        let in_size = in_size.max(512);
        let out_size = out_size.max(512);
        let wrap = |file: FsFile, pooled: bool| match (pooled, pool) {
            (true, Some((shared, wake))) => {
                TransferFile::Pooled(PooledFile::new(file, shared, wake))
            }
            (true, None) | (false, _) => TransferFile::Direct(file),
        };
        let (kind, buf, len) = match job {
            Job::SendFile {
                file,
                ascii,
                pooled,
            } => {
                let file = wrap(file, pooled);
                // Only an OS file has a descriptor for sendfile(2).
                let sendfile = zero_copy && !ascii && file.as_os().is_some();
                let raw = if ascii {
                    vec![0; out_size / 2]
                } else {
                    Vec::new()
                };
                let buf = if sendfile {
                    Vec::new()
                } else {
                    vec![0; out_size]
                };
                let kind = Kind::SendFile {
                    file,
                    ascii,
                    sendfile,
                    raw,
                };
                (kind, buf, 0)
            }
            Job::SendBytes(bytes) => {
                let len = bytes.len();
                (Kind::SendBytes, bytes, len)
            }
            Job::Receive {
                file,
                ascii,
                cut_tail,
                meter,
                pooled,
            } => {
                let file = wrap(file, pooled);
                // splice(2) needs an OS file not opened for appending (APPE).
                let spliceable = file
                    .as_os()
                    .is_some_and(|f| !crate::sys::is_append_only(f.as_raw_fd()));
                let pipe = (zero_copy && !ascii && spliceable)
                    .then(SplicePipe::open)
                    .flatten();
                // Taken on first use: a spliced upload never touches a buffer, nor one
                // whose TLS records are opened in place.
                let name = NameWatch::start(&file);
                let kind = Kind::Receive {
                    file,
                    ascii,
                    splice: pipe,
                    cut_tail,
                    meter,
                    block: in_size,
                    name,
                };
                (kind, Vec::new(), 0)
            }
        };
        let eof = matches!(kind, Kind::SendBytes);
        let send_slot = (!matches!(kind, Kind::Receive { .. })).then(SendSlot::take);
        Transfer {
            kind,
            buf,
            pos: 0,
            len,
            eof,
            prev_cr: false,
            waiting_file: false,
            _send_slot: send_slot,
        }
    }

    /// The file of an upload, taken out of the finished transfer; None for a download.
    pub(crate) fn take_upload_file(&mut self) -> Option<FsFile> {
        match std::mem::replace(&mut self.kind, Kind::SendBytes) {
            Kind::Receive { file, .. } => file.into_file(),
            other @ (Kind::SendFile { .. } | Kind::SendBytes) => {
                self.kind = other;
                None
            }
        }
    }

    /// What this transfer may move in its turn. An upload drains its socket in large
    /// reads. Downloads share [`TURN_SHARE`] (at least [`MIN_SEND_SHARE`] each): on
    /// loopback, 300 concurrent downloads that each sent 4 MiB bursts grew the client's
    /// receive queues until the kernel ran short of TCP memory, dropped segments and
    /// stalled on retransmission timers, taking twice as long as 64 KiB turns.
    pub(crate) fn share(&self) -> u64 {
        if self.is_upload() {
            return TURN_SHARE;
        }
        send_share(ACTIVE_SENDS.load(Ordering::Relaxed))
    }

    /// Waiting for the file's thread (a filesystem that blocks): the socket can wait.
    pub(crate) fn waiting_file(&self) -> bool {
        self.waiting_file
    }

    /// Uploads wait for input, downloads for room to write.
    pub(crate) fn interest(&self) -> Interest {
        match self.kind {
            Kind::Receive { .. } => Interest::READABLE,
            Kind::SendFile { .. } | Kind::SendBytes => Interest::WRITABLE,
        }
    }

    /// Moves data until done, blocked, or `budget` bytes were moved (a fair share, or
    /// what the throttle allows): then [`Progress::Yielded`].
    pub(crate) fn pump(
        &mut self,
        stream: &mut Transport,
        bytes: &mut u64,
        budget: u64,
    ) -> Result<Progress, CloseReason> {
        let budget = budget.max(1);
        self.waiting_file = false;
        let start = *bytes;
        loop {
            let left = budget - (*bytes - start);
            // An upload stops at its next look at its file's name, then goes on.
            let step = self
                .watch_name(*bytes)
                .map_or(left, |until| left.min(until));
            match self.pump_step(stream, bytes, step)? {
                Progress::Yielded if *bytes - start < budget => {}
                progress => return Ok(progress),
            }
        }
    }

    /// One stretch of [`Transfer::pump`], of at most `budget` bytes.
    fn pump_step(
        &mut self,
        stream: &mut Transport,
        bytes: &mut u64,
        budget: u64,
    ) -> Result<Progress, CloseReason> {
        match self.kind {
            Kind::Receive {
                name: NameWatch::Lost,
                ..
            } if !stream.is_tls() => self.receive_dropped(stream, bytes, budget),
            Kind::Receive {
                splice: Some(_), ..
            } => self.receive_spliced(stream, bytes, budget),
            Kind::Receive { .. } => self.receive(stream, bytes, budget),
            Kind::SendFile { sendfile: true, .. } => self.send_with_sendfile(stream, bytes, budget),
            Kind::SendFile { .. } | Kind::SendBytes => self.send_buffered(stream, bytes, budget),
        }
    }

    /// True for uploads (the read limit applies), false for downloads (the write limit).
    /// Whether the kernel moves the data (sendfile(2) or splice(2)), for the log.
    pub(crate) fn zero_copy(&self) -> bool {
        match &self.kind {
            Kind::SendFile { sendfile, .. } => *sendfile,
            Kind::Receive { splice, .. } => splice.is_some(),
            Kind::SendBytes => false,
        }
    }

    pub(crate) fn is_upload(&self) -> bool {
        matches!(self.kind, Kind::Receive { .. })
    }

    fn send_buffered(
        &mut self,
        stream: &mut Transport,
        bytes: &mut u64,
        budget: u64,
    ) -> Result<Progress, CloseReason> {
        let start = *bytes;
        loop {
            if self.pos == self.len {
                if self.eof {
                    return Ok(Progress::Done);
                }
                if let Some(progress) = self.send_sealed(stream, bytes, start, budget) {
                    match progress {
                        Ok(None) => continue,
                        Ok(Some(progress)) => return Ok(progress),
                        Err(reason) => return Err(reason),
                    }
                }
                match self.fill() {
                    Ok(()) => {}
                    Err(CloseReason::File(e)) if is_not_ready(&e) => {
                        self.waiting_file = true;
                        return Ok(Progress::Blocked);
                    }
                    Err(reason) => return Err(reason),
                }
                continue;
            }
            let left = budget.saturating_sub(*bytes - start);
            if left == 0 {
                return Ok(Progress::Yielded);
            }
            let end = self.len.min(self.pos.saturating_add(clamp(left)));
            match stream.write(&self.buf[self.pos..end]) {
                Ok(0) => return Err(CloseReason::PeerClosedEarly),
                Ok(n) => {
                    self.pos += n;
                    *bytes += n as u64;
                }
                Err(e) => match classify(e) {
                    Some(reason) => return Err(reason),
                    None => return Ok(Progress::Blocked),
                },
            }
        }
    }

    /// A binary download over a connection that seals its own TLS records: the file's
    /// next block is read straight into the records (no copy through the transfer's
    /// buffer). None when the connection does not (the buffered path then runs);
    /// `Ok(None)` after a block went, to go on.
    fn send_sealed(
        &mut self,
        stream: &mut Transport,
        bytes: &mut u64,
        start: u64,
        budget: u64,
    ) -> Option<Result<Option<Progress>, CloseReason>> {
        let Kind::SendFile {
            file, ascii: false, ..
        } = &mut self.kind
        else {
            return None;
        };
        let left = budget.saturating_sub(*bytes - start);
        if left == 0 {
            return Some(Ok(Some(Progress::Yielded)));
        }
        Some(match stream.write_from(file, clamp(left))? {
            Ok(0) => {
                self.eof = true;
                Ok(Some(Progress::Done))
            }
            Ok(n) => {
                *bytes += n as u64;
                Ok(None)
            }
            Err(WriteFromError::Source(e)) if is_not_ready(&e) => {
                self.waiting_file = true;
                Ok(Some(Progress::Blocked))
            }
            Err(WriteFromError::Source(e)) => Err(CloseReason::File(e)),
            Err(WriteFromError::Socket(e)) => match classify(e) {
                Some(reason) => Err(reason),
                None => Ok(Some(Progress::Blocked)),
            },
        })
    }

    /// Reads the next block of the file into the buffer, converting LF to CRLF in ASCII mode.
    fn fill(&mut self) -> Result<(), CloseReason> {
        let Kind::SendFile {
            file, ascii, raw, ..
        } = &mut self.kind
        else {
            self.eof = true;
            return Ok(());
        };
        self.pos = 0;
        self.len = 0;
        if !*ascii {
            let n = read_retrying(file, &mut self.buf).map_err(CloseReason::File)?;
            self.len = n;
            self.eof = n == 0;
            return Ok(());
        }
        let n = read_retrying(file, raw).map_err(CloseReason::File)?;
        self.eof = n == 0;
        // raw is half the size of buf, so the converted block always fits.
        let mut o = 0;
        for &b in &raw[..n] {
            if b == b'\n' && !self.prev_cr {
                self.buf[o] = b'\r';
                o += 1;
            }
            self.buf[o] = b;
            o += 1;
            self.prev_cr = b == b'\r';
        }
        self.len = o;
        Ok(())
    }

    fn send_with_sendfile(
        &mut self,
        stream: &mut Transport,
        bytes: &mut u64,
        budget: u64,
    ) -> Result<Progress, CloseReason> {
        let Kind::SendFile {
            file: TransferFile::Direct(FsFile::Os(file)),
            ..
        } = &mut self.kind
        else {
            // Transfer::new allows sendfile for OS files only; anything else is buffered.
            self.stop_sendfile();
            return self.send_buffered(stream, bytes, budget);
        };
        let start = *bytes;
        loop {
            let left = budget.saturating_sub(*bytes - start);
            if left == 0 {
                return Ok(Progress::Yielded);
            }
            let count = clamp(left).min(1 << 20);
            match crate::sys::sendfile(stream.tcp().as_raw_fd(), file.as_raw_fd(), count) {
                Ok(0) => return Ok(Progress::Done),
                Ok(n) => *bytes += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if *bytes == 0 && is_sendfile_unsupported(&e) => {
                    log::warn!("sendfile() failed; falling back on using plain send");
                    self.stop_sendfile();
                    return self.send_buffered(stream, bytes, budget);
                }
                Err(e) => match classify(e) {
                    Some(reason) => return Err(reason),
                    None => return Ok(Progress::Blocked),
                },
            }
        }
    }

    /// Switches a download to the buffered path for good.
    fn stop_sendfile(&mut self) {
        if let Kind::SendFile { sendfile, .. } = &mut self.kind {
            *sendfile = false;
        }
        if self.buf.is_empty() {
            self.buf = vec![0; 65536];
        }
    }

    /// An upload whose file was checked [`NAME_CHECK_EVERY`] bytes ago looks whether it
    /// still has a name (see [`NameWatch`]). Returns how many bytes it may receive before
    /// it looks again; None when it no longer looks (not an upload, or nothing to watch).
    fn watch_name(&mut self, received: u64) -> Option<u64> {
        let Kind::Receive {
            file, name, splice, ..
        } = &mut self.kind
        else {
            return None;
        };
        let NameWatch::CheckAt(at) = *name else {
            return None;
        };
        if received < at {
            return Some(at - received);
        }
        if link_count(file) == Some(0) {
            *name = NameWatch::Lost;
            // What a pipe still holds was bound for the file that is gone.
            *splice = None;
            return None;
        }
        *name = NameWatch::CheckAt(received.saturating_add(NAME_CHECK_EVERY));
        Some(NAME_CHECK_EVERY)
    }

    /// The rest of a plain upload whose file lost its name: taken off the socket and
    /// dropped by the kernel (recv(2) with `MSG_TRUNC`), never copied.
    fn receive_dropped(
        &mut self,
        stream: &mut Transport,
        bytes: &mut u64,
        budget: u64,
    ) -> Result<Progress, CloseReason> {
        let Kind::Receive { block, .. } = self.kind else {
            return Ok(Progress::Done);
        };
        if self.buf.is_empty() {
            // Only its length is used: the kernel writes nothing into it.
            self.buf = vec![0; block];
        }
        let socket = stream.tcp().as_raw_fd();
        let start = *bytes;
        loop {
            let left = budget.saturating_sub(*bytes - start);
            if left == 0 {
                return Ok(Progress::Yielded);
            }
            let want = self.buf.len().min(clamp(left));
            match crate::sys::recv_dropping(socket, &mut self.buf[..want]) {
                Ok(0) => return self.upload_ended(),
                Ok(n) => *bytes += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return receive_failed(e),
            }
        }
    }

    /// An upload through the buffer: each block is filled from the socket as far as it
    /// has data before it is written to the file, so a TLS upload (whose reads end where
    /// the records one read(2) brought end) writes whole blocks, not a block and a piece.
    fn receive(
        &mut self,
        stream: &mut Transport,
        bytes: &mut u64,
        budget: u64,
    ) -> Result<Progress, CloseReason> {
        let Kind::Receive { ascii, block, .. } = self.kind else {
            return Ok(Progress::Done);
        };
        if !ascii {
            if let Some(progress) = self.receive_in_place(stream, bytes, budget, block) {
                return progress;
            }
        }
        if self.buf.is_empty() {
            self.buf = vec![0; block];
        }
        let start = *bytes;
        let mut filled = 0;
        loop {
            let left = budget.saturating_sub(*bytes - start);
            if left == 0 {
                self.write_filled(&mut filled)?;
                return Ok(Progress::Yielded);
            }
            if filled == 0 && matches!(&self.kind, Kind::Receive { file, .. } if file.backlogged())
            {
                // The file's thread is behind: the socket waits until it catches up.
                self.waiting_file = true;
                return Ok(Progress::Blocked);
            }
            let want = self.buf.len().min(filled.saturating_add(clamp(left)));
            let result = stream.read(&mut self.buf[filled..want]);
            if !matches!(result, Ok(n) if n > 0) {
                // Everything received so far goes to the file first, whatever comes next.
                self.write_filled(&mut filled)?;
            }
            match result {
                Ok(0) => {
                    self.flush_pending_cr()?;
                    return self.upload_ended();
                }
                Ok(n) => {
                    *bytes += n as u64;
                    filled += n;
                    if filled == self.buf.len() {
                        self.write_filled(&mut filled)?;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return receive_failed(e),
            }
        }
    }

    /// A binary upload over a TLS connection whose records are opened where they arrive
    /// (`Transport::read_in_place`): each block goes to the file from there, with no copy
    /// into the transfer's buffer. None when the connection is not one.
    fn receive_in_place(
        &mut self,
        stream: &mut Transport,
        bytes: &mut u64,
        budget: u64,
        block: usize,
    ) -> Option<Result<Progress, CloseReason>> {
        let start = *bytes;
        loop {
            let left = budget.saturating_sub(*bytes - start);
            if left == 0 {
                return Some(Ok(Progress::Yielded));
            }
            if matches!(&self.kind, Kind::Receive { file, .. } if file.backlogged()) {
                self.waiting_file = true;
                return Some(Ok(Progress::Blocked));
            }
            let want = block.min(clamp(left));
            let ready = match stream.read_in_place(want)? {
                Ok([]) => return Some(self.upload_ended()),
                Ok(ready) => &ready[..ready.len().min(want)],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Some(receive_failed(e)),
            };
            let n = ready.len();
            if let Err(reason) = write_binary(&mut self.kind, ready) {
                return Some(Err(reason));
            }
            stream.consume_in_place(n);
            *bytes += n as u64;
        }
    }

    /// The client ended the upload: what the file still needs, then done.
    fn upload_ended(&mut self) -> Result<Progress, CloseReason> {
        match self.end_upload() {
            Ok(()) => Ok(Progress::Done),
            // Read again once the thread is done: the end of the stream stays.
            Err(CloseReason::File(e)) if is_not_ready(&e) => {
                self.waiting_file = true;
                Ok(Progress::Blocked)
            }
            Err(reason) => Err(reason),
        }
    }

    /// Writes the `filled` bytes of the buffer to the file, if any.
    fn write_filled(&mut self, filled: &mut usize) -> Result<(), CloseReason> {
        let n = std::mem::take(filled);
        if n == 0 {
            return Ok(());
        }
        self.write_block(n)
    }

    /// A binary upload by splice(2): the socket's bytes go to a pipe and on to the file
    /// without a copy through user space. Falls back on [`Transfer::receive`] if the
    /// system refuses the first splice.
    fn receive_spliced(
        &mut self,
        stream: &mut Transport,
        bytes: &mut u64,
        budget: u64,
    ) -> Result<Progress, CloseReason> {
        let Kind::Receive {
            file: TransferFile::Direct(FsFile::Os(file)),
            splice: Some(pipe),
            meter,
            ..
        } = &mut self.kind
        else {
            return self.receive(stream, bytes, budget);
        };
        let socket = stream.tcp().as_raw_fd();
        let start = *bytes;
        loop {
            while pipe.pending > 0 {
                match crate::sys::splice(
                    pipe.read.as_raw_fd(),
                    file.as_raw_fd(),
                    pipe.pending,
                    false,
                ) {
                    Ok(0) => return Err(CloseReason::File(io::ErrorKind::WriteZero.into())),
                    Ok(n) => pipe.pending -= n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(CloseReason::File(e)),
                }
            }
            let left = budget.saturating_sub(*bytes - start);
            if left == 0 {
                return Ok(Progress::Yielded);
            }
            let want = clamp(left).min(pipe.chunk);
            match crate::sys::splice(socket, pipe.write.as_raw_fd(), want, true) {
                // The pipe is empty here: everything received is in the file.
                Ok(0) => {
                    self.end_upload()?;
                    return Ok(Progress::Done);
                }
                Ok(n) => {
                    if let Some(meter) = meter {
                        meter.charge(n as u64).map_err(CloseReason::File)?;
                    }
                    pipe.pending = n;
                    *bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if *bytes == 0 && is_sendfile_unsupported(&e) => {
                    log::warn!("splice() failed; falling back on using plain recv");
                    if let Kind::Receive { splice, .. } = &mut self.kind {
                        *splice = None;
                    }
                    return self.receive(stream, bytes, budget);
                }
                Err(e) => match classify(e) {
                    Some(CloseReason::PeerClosedEarly) => {
                        return Err(CloseReason::Network(io::ErrorKind::ConnectionReset.into()))
                    }
                    Some(reason) => return Err(reason),
                    None => return Ok(Progress::Blocked),
                },
            }
        }
    }

    /// Writes `buf[..n]` to the file, converting CRLF to LF in ASCII mode.
    fn write_block(&mut self, n: usize) -> Result<(), CloseReason> {
        if matches!(self.kind, Kind::Receive { ascii: false, .. }) {
            return write_binary(&mut self.kind, &self.buf[..n]);
        }
        let Kind::Receive {
            file,
            meter,
            name: NameWatch::CheckAt(_) | NameWatch::Off,
            ..
        } = &mut self.kind
        else {
            return Ok(());
        };
        let mut o = 0;
        let mut i = 0;
        if self.prev_cr {
            // A CR ended the previous block: it was a line end only if LF follows.
            self.prev_cr = false;
            if self.buf[0] != b'\n' {
                if let Some(meter) = meter {
                    meter.charge(1).map_err(CloseReason::File)?;
                }
                file.write_all(b"\r").map_err(CloseReason::File)?;
            }
        }
        while i < n {
            let b = self.buf[i];
            if b == b'\r' {
                if i + 1 == n {
                    self.prev_cr = true;
                    i += 1;
                    continue;
                }
                if self.buf[i + 1] == b'\n' {
                    i += 1;
                    continue;
                }
            }
            self.buf[o] = b;
            o += 1;
            i += 1;
        }
        if let Some(meter) = meter {
            meter.charge(o as u64).map_err(CloseReason::File)?;
        }
        file.write_all(&self.buf[..o]).map_err(CloseReason::File)
    }

    /// A completed upload after REST ends the file where the upload ends; a pooled
    /// file has everything written first.
    fn end_upload(&mut self) -> Result<(), CloseReason> {
        match &mut self.kind {
            Kind::Receive {
                name: NameWatch::Lost,
                ..
            } => Ok(()),
            Kind::Receive { file, cut_tail, .. } => file
                .finish_upload(cut_at_position, *cut_tail)
                .map_err(CloseReason::File),
            Kind::SendFile { .. } | Kind::SendBytes => Ok(()),
        }
    }

    fn flush_pending_cr(&mut self) -> Result<(), CloseReason> {
        if let Kind::Receive {
            file,
            meter,
            name: NameWatch::CheckAt(_) | NameWatch::Off,
            ..
        } = &mut self.kind
        {
            if std::mem::take(&mut self.prev_cr) {
                if let Some(meter) = meter {
                    meter.charge(1).map_err(CloseReason::File)?;
                }
                file.write_all(b"\r").map_err(CloseReason::File)?;
            }
        }
        Ok(())
    }
}

/// Cuts `file` where writing stopped (its position: the REST offset plus what was
/// written, since writes and splice(2) advance it), dropping the tail of the file the
/// upload wrote over.
///
/// One ftruncate(2) on the loop's thread, and cheap: it frees the tail's blocks, work
/// that grows with the extents freed, not with the bytes (a tail of a few extents goes in
/// microseconds, however large). It does not arm ext4's flush-on-close that emptying a
/// file does (see `emptied` in `filesystems::ops`): ext4 arms that only when a file is
/// truncated to length 0, and this length is at least the REST offset, which is never 0.
fn cut_at_position(file: &mut FsFile) -> io::Result<()> {
    let end = file.stream_position()?;
    file.set_len(end)
}

/// A download's turn when `sends` downloads run.
fn send_share(sends: usize) -> u64 {
    let sends = u64::try_from(sends.max(1)).unwrap_or(u64::MAX);
    (TURN_SHARE / sends).max(MIN_SEND_SHARE)
}

/// Writes an upload's bytes to its file as they came (binary), charged to its quota;
/// nothing once the file lost its name (see [`NameWatch`]).
fn write_binary(kind: &mut Kind, data: &[u8]) -> Result<(), CloseReason> {
    let Kind::Receive {
        file,
        meter,
        name: NameWatch::CheckAt(_) | NameWatch::Off,
        ..
    } = kind
    else {
        return Ok(());
    };
    if let Some(meter) = meter {
        meter.charge(data.len() as u64).map_err(CloseReason::File)?;
    }
    file.write_all(data).map_err(CloseReason::File)
}

/// How an upload's read error ends it, if it does.
fn receive_failed(e: io::Error) -> Result<Progress, CloseReason> {
    match e.kind() {
        // TLS only: TCP closed without close_notify, so the upload may be cut short.
        io::ErrorKind::UnexpectedEof => Err(CloseReason::TlsTruncated),
        _ => match classify(e) {
            Some(CloseReason::PeerClosedEarly) => {
                Err(CloseReason::Network(io::ErrorKind::ConnectionReset.into()))
            }
            Some(reason) => Err(reason),
            None => Ok(Progress::Blocked),
        },
    }
}

/// A byte budget as a buffer length.
fn clamp(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn read_retrying(file: &mut TransferFile, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// None for "would block"; else why the transfer ends.
fn classify(e: io::Error) -> Option<CloseReason> {
    if e.kind() == io::ErrorKind::WouldBlock {
        None
    } else if ioloop::is_disconnect(&e) {
        Some(CloseReason::PeerClosedEarly)
    } else {
        Some(CloseReason::Network(e))
    }
}

fn is_sendfile_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_download_takes_the_whole_turn() {
        assert_eq!(send_share(0), TURN_SHARE);
        assert_eq!(send_share(1), TURN_SHARE);
    }

    #[test]
    fn concurrent_downloads_split_the_turn_down_to_the_floor() {
        assert_eq!(send_share(4), TURN_SHARE / 4);
        assert_eq!(send_share(64), MIN_SEND_SHARE);
        assert_eq!(send_share(300), MIN_SEND_SHARE);
        assert_eq!(send_share(usize::MAX), MIN_SEND_SHARE);
    }

    #[test]
    fn a_download_counts_while_it_lives() {
        let before = ACTIVE_SENDS.load(Ordering::Relaxed);
        let t = Transfer::new(Job::SendBytes(b"listing".to_vec()), true, 512, 512, None);
        assert!(ACTIVE_SENDS.load(Ordering::Relaxed) > before);
        assert!(t.share() <= TURN_SHARE);
        drop(t);
        assert_eq!(ACTIVE_SENDS.load(Ordering::Relaxed), before);
    }

    /// An upload looks at its file's name only when the file is an OS file that has one:
    /// an `O_TMPFILE` (which a custom filesystem may link once it is complete) and a
    /// memory file are written to the end.
    #[test]
    fn only_a_named_os_file_is_watched_for_its_name() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let named = std::fs::File::create(dir.path().join("f")).expect("create");
        let watch = |f: FsFile| NameWatch::start(&TransferFile::Direct(f));
        assert_eq!(
            watch(FsFile::Os(named)),
            NameWatch::CheckAt(NAME_CHECK_EVERY)
        );
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .open(dir.path())
        {
            Ok(unnamed) => assert_eq!(watch(FsFile::Os(unnamed)), NameWatch::Off),
            // A filesystem without O_TMPFILE.
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP)),
        }
        let mem = crate::filesystems::MemoryFs::new();
        let file = crate::filesystems::FileSystem::open_write(
            &mem,
            std::path::Path::new("/f"),
            crate::filesystems::WriteMode::Truncate,
        )
        .expect("open");
        assert_eq!(watch(file), NameWatch::Off);
    }

    // REST + STOR: the file ends where writing stopped, on disk and in memory.
    #[test]
    fn a_resumed_upload_cuts_the_old_tail() {
        use std::io::{Seek, SeekFrom};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").expect("write");
        let mut file = FsFile::Os(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .expect("open"),
        );
        file.seek(SeekFrom::Start(4)).expect("seek");
        file.write_all(b"ab").expect("write");
        cut_at_position(&mut file).expect("cut");
        assert_eq!(std::fs::read(&path).expect("read"), b"0123ab");

        let mem = crate::filesystems::MemoryFs::new();
        mem.write_file("/f", b"0123456789").expect("seed");
        let mut file = crate::filesystems::FileSystem::open_write(
            &mem,
            std::path::Path::new("/f"),
            crate::filesystems::WriteMode::At(8),
        )
        .expect("open");
        file.write_all(b"XYZ").expect("write");
        cut_at_position(&mut file).expect("cut");
        assert_eq!(mem.read_file("/f").expect("read"), b"01234567XYZ");
    }

    /// A custom file that cannot shorten itself refuses the cut, so the upload ends in
    /// 426, not in a 226 for a file the client did not send; a cut to where it already
    /// ends is no change.
    #[test]
    fn a_custom_file_without_set_len_refuses_to_shrink() {
        struct Bytes(io::Cursor<Vec<u8>>);
        impl Read for Bytes {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0.read(buf)
            }
        }
        impl Write for Bytes {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl io::Seek for Bytes {
            fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
                self.0.seek(pos)
            }
        }
        impl crate::filesystems::FileData for Bytes {
            fn size(&self) -> io::Result<u64> {
                Ok(self.0.get_ref().len() as u64)
            }
        }
        let mut file = FsFile::custom(Bytes(io::Cursor::new(b"0123456789".to_vec())));
        file.seek(io::SeekFrom::Start(4)).expect("seek");
        file.write_all(b"ab").expect("write");
        let err = cut_at_position(&mut file).expect_err("cannot shrink");
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        file.seek(io::SeekFrom::End(0)).expect("seek");
        cut_at_position(&mut file).expect("nothing to cut");
    }
}

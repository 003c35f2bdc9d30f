//! The open file of a transfer, as the transfer engine moves it: the file itself, or,
//! for a filesystem that blocks ([`crate::filesystems::FileSystem::blocking`]), a file
//! whose reads and writes run on the server's filesystem threads. A download reads
//! ahead one [`CHUNK`] at a time on a thread; an upload's blocks are written behind
//! on a thread (at most [`BEHIND_LIMIT`] waiting). When the data is not there yet, or
//! too much waits to be written, the engine gets [`not_ready`] and stops; the thread
//! that finishes wakes the data channel with [`DataCmd::FileReady`]. An upload ends
//! (its 226) only once every block, and the cut of a REST + STOR, is in the file.

use std::io::{self, Read, Seek, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use ioloop::{Handle, LoopHandle};

use super::shared::Shared;
use super::{DataCmd, Msg};
use crate::filesystems::FsFile;

/// What a download reads ahead in one call on a thread.
const CHUNK: usize = 256 << 10;

/// What an upload may have waiting for its thread before the data channel stops
/// reading the socket.
const BEHIND_LIMIT: usize = 1 << 20;

/// How an upload after REST cuts the old tail of its file.
pub(crate) type Cut = fn(&mut FsFile) -> io::Result<()>;

/// A transfer's file.
pub(crate) enum TransferFile {
    /// Read and written on the loop's thread.
    Direct(FsFile),
    /// Read and written on the filesystem threads.
    Pooled(PooledFile),
}

impl TransferFile {
    /// The OS file, for sendfile(2) and splice(2); never for a pooled file, whose system
    /// calls must stay off the loop.
    pub(crate) fn as_os(&self) -> Option<&std::fs::File> {
        match self {
            TransferFile::Direct(f) => f.as_os(),
            TransferFile::Pooled(_) => None,
        }
    }

    /// The file back, for the sync of `fsync_uploads`: None while a thread still holds
    /// a pooled one (an upload that did not complete).
    pub(crate) fn into_file(self) -> Option<FsFile> {
        match self {
            TransferFile::Direct(f) => Some(f),
            TransferFile::Pooled(p) => p.into_file(),
        }
    }

    /// A pooled upload with more waiting to be written than it may hold: read no more
    /// from the socket until its thread catches up.
    pub(crate) fn backlogged(&self) -> bool {
        match self {
            TransferFile::Direct(_) => false,
            TransferFile::Pooled(p) => p.lock().behind.len() >= BEHIND_LIMIT,
        }
    }

    /// The end of an upload: everything written, and with `cut_tail` the file cut where
    /// writing stopped (see `cut_at_position`). [`not_ready`] while a thread works on it.
    pub(crate) fn finish_upload(&mut self, cut: Cut, cut_tail: bool) -> io::Result<()> {
        match self {
            TransferFile::Direct(f) if cut_tail => cut(f),
            TransferFile::Direct(_) => Ok(()),
            TransferFile::Pooled(p) => p.finish(cut_tail.then_some(cut)),
        }
    }
}

impl Read for TransferFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            TransferFile::Direct(f) => f.read(buf),
            TransferFile::Pooled(p) => p.read(buf),
        }
    }

    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        match self {
            TransferFile::Direct(f) => f.read_vectored(bufs),
            // The file's thread fills one buffer at a time.
            TransferFile::Pooled(p) => match bufs.iter_mut().find(|b| !b.is_empty()) {
                Some(buf) => p.read(buf),
                None => Ok(0),
            },
        }
    }
}

impl Write for TransferFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            TransferFile::Direct(f) => f.write(buf),
            TransferFile::Pooled(p) => p.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            TransferFile::Direct(f) => f.flush(),
            // Written behind; `finish_upload` waits for it.
            TransferFile::Pooled(_) => Ok(()),
        }
    }
}

/// The error a pooled file gives while its thread works: the transfer waits for
/// [`DataCmd::FileReady`].
pub(crate) fn not_ready() -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, NotReady)
}

/// Whether `e` is [`not_ready`] (a custom file's own `WouldBlock` stays an error).
pub(crate) fn is_not_ready(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<NotReady>())
}

#[derive(Debug)]
struct NotReady;

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the file's thread has not finished")
    }
}

impl std::error::Error for NotReady {}

/// A file read and written on the filesystem threads.
pub(crate) struct PooledFile {
    state: Arc<Mutex<State>>,
    shared: Arc<Shared>,
}

/// What the loop and the file's thread share.
struct State {
    /// The file; None while a thread holds it.
    file: Option<FsFile>,
    /// A download's chunk read ahead, and how much of it was sent.
    ahead: Vec<u8>,
    /// The buffer of the chunk before, for the next read.
    spare: Vec<u8>,
    taken: usize,
    /// The download read the end of the file.
    eof: bool,
    /// An upload's bytes not yet in the file.
    behind: Vec<u8>,
    /// An upload's end is done: written, cut (REST + STOR).
    finished: bool,
    /// A failure of the thread, for the next call.
    error: Option<io::Error>,
    /// Whom to wake when a thread is done: the data channel.
    wake: (LoopHandle<Msg>, Handle),
}

impl PooledFile {
    /// `file`, moved by the filesystem threads; `wake` is the data channel.
    pub(crate) fn new(file: FsFile, shared: Arc<Shared>, wake: (LoopHandle<Msg>, Handle)) -> Self {
        PooledFile {
            state: Arc::new(Mutex::new(State {
                file: Some(file),
                ahead: Vec::new(),
                spare: Vec::new(),
                taken: 0,
                eof: false,
                behind: Vec::new(),
                finished: false,
                error: None,
                wake,
            })),
            shared,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut st = self.lock();
        if st.taken < st.ahead.len() {
            let n = buf.len().min(st.ahead.len() - st.taken);
            let from = st.taken;
            buf[..n].copy_from_slice(&st.ahead[from..from + n]);
            st.taken += n;
            if st.taken == st.ahead.len() && !st.eof {
                // The next chunk is read while this one is sent.
                drop(st);
                self.read_ahead();
            }
            return Ok(n);
        }
        if let Some(e) = st.error.take() {
            return Err(e);
        }
        if st.eof {
            return Ok(0);
        }
        drop(st);
        self.read_ahead();
        Err(not_ready())
    }

    /// Hands the file to a thread to read the next chunk, unless a thread has it.
    fn read_ahead(&self) {
        let (mut file, mut chunk) = {
            let mut st = self.lock();
            let Some(file) = st.file.take() else {
                return;
            };
            // The chunk before last, sent: its buffer is reused.
            (file, std::mem::take(&mut st.spare))
        };
        let state = Arc::clone(&self.state);
        self.run(move || {
            chunk.resize(CHUNK, 0);
            let read = read_full(&mut file, &mut chunk);
            let mut st = lock(&state);
            match read {
                Ok(n) => {
                    chunk.truncate(n);
                    st.eof = n == 0;
                    st.spare = std::mem::replace(&mut st.ahead, chunk);
                    st.taken = 0;
                }
                Err(e) => st.error = Some(e),
            }
            st.file = Some(file);
            wake(&st);
        });
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut st = self.lock();
        if let Some(e) = st.error.take() {
            return Err(e);
        }
        st.behind.extend_from_slice(buf);
        drop(st);
        self.write_behind(None);
        Ok(buf.len())
    }

    /// Hands the file to a thread to write what waits, unless a thread has it. With
    /// `ending`, the upload's end: then, with a cut, the file is cut where writing
    /// stopped, and flushed.
    fn write_behind(&self, ending: Option<Option<Cut>>) {
        let Some(mut file) = self.lock().file.take() else {
            return;
        };
        let state = Arc::clone(&self.state);
        self.run(move || {
            let finishing = ending.is_some();
            let mut ending = ending;
            let mut block = Vec::new();
            loop {
                // What waits is swapped for the emptied block: two buffers take turns.
                block.clear();
                std::mem::swap(&mut block, &mut lock(&state).behind);
                let mut done = file.write_all(&block);
                if done.is_ok() && block.is_empty() {
                    done = match ending.take() {
                        Some(Some(cut)) => cut(&mut file).and_then(|()| file.flush()),
                        Some(None) => file.flush(),
                        None => Ok(()),
                    };
                    let mut st = lock(&state);
                    // Blocks written meanwhile are this thread's too: the file goes back
                    // only with nothing waiting, so no block is left without a writer.
                    if done.is_ok() && !st.behind.is_empty() {
                        continue;
                    }
                    match done {
                        Ok(()) => st.finished |= finishing,
                        Err(e) => st.error = Some(e),
                    }
                    st.file = Some(file);
                    return wake(&st);
                }
                if let Err(e) = done {
                    let mut st = lock(&state);
                    st.error = Some(e);
                    st.behind.clear();
                    st.file = Some(file);
                    return wake(&st);
                }
            }
        });
    }

    fn finish(&mut self, cut: Option<Cut>) -> io::Result<()> {
        let mut st = self.lock();
        if let Some(e) = st.error.take() {
            return Err(e);
        }
        if st.file.is_none() {
            return Err(not_ready()); // a thread writes; it wakes the channel when done
        }
        if st.behind.is_empty() && st.finished {
            return Ok(());
        }
        drop(st);
        self.write_behind(Some(cut));
        Err(not_ready())
    }

    fn into_file(self) -> Option<FsFile> {
        self.lock().file.take()
    }

    fn run(&self, job: impl FnOnce() + Send + 'static) {
        let queued = self.shared.fs_workers().is_some_and(|pool| pool.run(job));
        if !queued {
            // No thread: the transfer fails rather than wait for ever.
            let mut st = self.lock();
            st.error = Some(io::Error::other("no filesystem thread"));
            wake(&st);
        }
    }
}

impl Drop for PooledFile {
    fn drop(&mut self) {
        // Closing may wait on the storage too: on a thread. A file a thread holds is
        // dropped there, with the last reference to the state.
        if let Some(file) = self.lock().file.take() {
            if let Some(pool) = self.shared.fs_workers() {
                let _ = pool.run(move || drop(file));
            }
        }
    }
}

/// Reads until `buf` is full or the file ends: a chunk per call on a thread.
fn read_full(file: &mut FsFile, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn wake(st: &State) {
    let (lp, channel) = &st.wake;
    // A data channel gone meanwhile drops the message.
    let _ = lp.send(*channel, Msg::ToData(DataCmd::FileReady));
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    match state.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Seek for TransferFile {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        match self {
            TransferFile::Direct(f) => f.seek(pos),
            // The engine never seeks a pooled file (its cut runs on the thread).
            TransferFile::Pooled(_) => Err(io::ErrorKind::Unsupported.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine waits only for its own threads: a custom file's `WouldBlock` is an
    /// error like any other, not a wait for a wake that never comes.
    #[test]
    fn only_the_pooled_files_not_ready_means_wait() {
        assert!(is_not_ready(&not_ready()));
        assert!(!is_not_ready(&io::ErrorKind::WouldBlock.into()));
        assert!(!is_not_ready(&io::Error::other("x")));
    }

    /// A file on the loop: read and written as is, cut only after REST.
    #[test]
    fn a_direct_file_ends_its_upload_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").expect("seed");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open");
        let mut file = TransferFile::Direct(FsFile::Os(file));
        assert!(file.as_os().is_some());
        assert!(!file.backlogged());
        file.write_all(b"ab").expect("write");
        let cut: Cut = |f| {
            let end = f.stream_position()?;
            f.set_len(end)
        };
        file.finish_upload(cut, false).expect("no cut");
        assert_eq!(std::fs::read(&path).expect("read"), b"ab23456789");
        file.finish_upload(cut, true).expect("cut");
        assert_eq!(std::fs::read(&path).expect("read"), b"ab");
        assert!(file.into_file().is_some());
    }
}

//! The server under test, started in this process on `127.0.0.1:0` and driven on its own
//! thread with `poll_once`, so the test thread can watch the loop's handler and timer
//! counts. Dropping the guard checks that the loop went idle (only the listener left, no
//! timers), then stops it, joins its thread and checks that nothing is left at all.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ftpdlib::authorizers::{Authorizer, DummyAuthorizer};
use ftpdlib::config::{HandlerConfig, ServerConfig};
use ftpdlib::filesystems::MemoryFs;
use ftpdlib::servers::{FtpServer, ServerBuilder, ServerHandle};
use tempfile::TempDir;

use super::{Client, IO_TIMEOUT};

/// A running in-process server. `user`/`12345` has every right (`elradfmwMT`) on
/// [`TestServer::root`]; `anonymous` may read it (`elr`).
pub struct TestServer {
    /// Where the server listens.
    pub addr: SocketAddr,
    dir: TempDir,
    handle: ServerHandle,
    counts: Arc<Counts>,
    thread: Option<(JoinHandle<()>, mpsc::Receiver<()>)>,
}

/// What the loop thread publishes after every pass.
#[derive(Default)]
struct Counts {
    snap: Mutex<Snapshot>,
    changed: Condvar,
}

#[derive(Default, Clone, Copy, Debug)]
struct Snapshot {
    handlers: usize,
    timers: usize,
    /// Passes done, so a reader can wait for a pass that started after its own actions.
    passes: u64,
    /// The loop thread ended (stopped or failed).
    ended: bool,
}

impl TestServer {
    /// A server with the test defaults (failed-login delay 100 ms).
    pub fn start() -> TestServer {
        TestServer::with(|_| {}, |_| {})
    }

    /// A server whose handler and server options are adjusted by `handler` and `server`
    /// after the test defaults are applied.
    pub fn with(
        handler: impl FnOnce(&mut HandlerConfig),
        server: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        TestServer::with_builder(handler, server, |b| b)
    }

    /// As [`TestServer::with`], and `extra` may add events, commands or features to the
    /// builder.
    pub fn with_builder(
        handler: impl FnOnce(&mut HandlerConfig),
        server: impl FnOnce(&mut ServerConfig),
        extra: impl FnOnce(ServerBuilder) -> ServerBuilder + Send + 'static,
    ) -> TestServer {
        TestServer::with_users(|auth| Box::new(auth), handler, server, extra)
    }

    /// A server whose sessions are served from `mem` (rooted at its `/`) instead of
    /// [`TestServer::root`], which stays as the users' nominal home; `extra` as in
    /// [`TestServer::with_builder`].
    pub fn with_memory(
        mem: &MemoryFs,
        extra: impl FnOnce(ServerBuilder) -> ServerBuilder + Send + 'static,
    ) -> TestServer {
        TestServer::with_memory_config(mem, |_| {}, extra)
    }

    /// As [`TestServer::with_memory`], with the handler options adjusted by `handler`.
    pub fn with_memory_config(
        mem: &MemoryFs,
        handler: impl FnOnce(&mut HandlerConfig),
        extra: impl FnOnce(ServerBuilder) -> ServerBuilder + Send + 'static,
    ) -> TestServer {
        let mem = mem.clone();
        TestServer::with_users(
            move |auth| Box::new(mem.authorizer(auth)),
            handler,
            |_| {},
            extra,
        )
    }

    /// As [`TestServer::with_builder`], with the test users (a [`DummyAuthorizer`]) turned
    /// into the server's authorizer by `wrap`: a test's own authorizer around them.
    pub fn with_authorizer(
        wrap: impl FnOnce(DummyAuthorizer) -> Box<dyn Authorizer>,
        handler: impl FnOnce(&mut HandlerConfig),
        server: impl FnOnce(&mut ServerConfig),
        extra: impl FnOnce(ServerBuilder) -> ServerBuilder + Send + 'static,
    ) -> TestServer {
        TestServer::with_users(wrap, handler, server, extra)
    }

    /// The common start: the test users, turned into the server's authorizer by `wrap`
    /// (e.g. `WithFilesystem` for a filesystem of the test's own).
    pub fn with_users(
        wrap: impl FnOnce(DummyAuthorizer) -> Box<dyn Authorizer>,
        handler: impl FnOnce(&mut HandlerConfig),
        server: impl FnOnce(&mut ServerConfig),
        extra: impl FnOnce(ServerBuilder) -> ServerBuilder + Send + 'static,
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir(&root).expect("create root");
        std::fs::create_dir(dir.path().join("outside")).expect("create outside");
        let mut auth = DummyAuthorizer::new();
        auth.add_user("user", "12345", &root, "elradfmwMT", None, None)
            .expect("add user");
        auth.add_anonymous(&root, "elr", None, None)
            .expect("add anonymous");
        let auth = wrap(auth);
        let mut handler_cfg = HandlerConfig::default();
        handler_cfg.auth_failed_timeout = Duration::from_millis(100);
        handler(&mut handler_cfg);
        let mut server_cfg = ServerConfig::default();
        server(&mut server_cfg);
        let counts = Arc::new(Counts::default());
        let published = Arc::clone(&counts);
        let (started_tx, started_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        // The server is not Send: it is built on the thread that drives it.
        let thread = std::thread::Builder::new()
            .name("ftp-loop".into())
            .spawn(move || {
                let built = extra(
                    FtpServer::builder(auth)
                        .handler_config(handler_cfg)
                        .server_config(server_cfg),
                )
                .bind("127.0.0.1:0");
                let mut ftp = match built {
                    Ok(ftp) => ftp,
                    Err(e) => {
                        let _ = started_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                lock(&published.snap).handlers = ftp.handler_count();
                let _ = started_tx.send(Ok((ftp.local_addr(), ftp.handle())));
                drive(&mut ftp, &published);
                let _ = done_tx.send(());
            })
            .expect("spawn the loop thread");
        let (addr, handle) = match started_rx.recv_timeout(IO_TIMEOUT) {
            Ok(Ok(started)) => started,
            Ok(Err(e)) => panic!("the server did not start: {e}"),
            Err(e) => panic!("the loop thread did not report: {e}"),
        };
        TestServer {
            addr,
            dir,
            handle,
            counts,
            thread: Some((thread, done_rx)),
        }
    }

    /// A handle to the running server (to stop or reload it).
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// The users' home directory.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A directory next to the root, outside it: what no session may touch.
    pub fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    /// A connected client that has read the 220 greeting.
    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// A client logged in as `user`.
    pub fn login(&self) -> Client {
        let mut c = self.client();
        c.login("user", "12345");
        c
    }

    /// The loop's live handler count, as of a pass that started after this call.
    pub fn handler_count(&self) -> usize {
        match self.fresh_snapshot(Instant::now() + IO_TIMEOUT) {
            Ok(snap) => snap.handlers,
            Err(e) => panic!("{e}"),
        }
    }

    /// Waits (bounded) until the loop has `handlers` handlers and `timers` timers.
    ///
    /// # Panics
    /// When that does not happen within [`IO_TIMEOUT`].
    pub fn wait_counts(&self, handlers: usize, timers: usize) {
        self.wait_until(
            &format!("{handlers} handlers and {timers} timers"),
            |h, t| h == handlers && t == timers,
        );
    }

    /// Waits (bounded) until `ok(handlers, timers)` holds after a pass.
    ///
    /// # Panics
    /// When that does not happen within [`IO_TIMEOUT`], naming `what`.
    pub fn wait_until(&self, what: &str, ok: impl FnMut(usize, usize) -> bool) {
        if let Err(e) = self.try_wait_until(what, ok) {
            panic!("{e}");
        }
    }

    fn try_wait_until(
        &self,
        what: &str,
        mut ok: impl FnMut(usize, usize) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut snap = self.fresh_snapshot(deadline)?;
        while !ok(snap.handlers, snap.timers) {
            if snap.passes == 0 {
                return Err("the loop thread made no pass".into());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the loop did not reach {what}: it has {} handlers and {} timers",
                    snap.handlers, snap.timers
                ));
            }
            snap = self.next_snapshot(snap.passes + 1, deadline)?;
        }
        Ok(())
    }

    /// Waits until the loop has only its listener and no timers: every session is gone.
    pub fn wait_idle(&self) {
        self.wait_counts(1, 0);
    }

    /// A snapshot from a pass that began after this call.
    fn fresh_snapshot(&self, deadline: Instant) -> Result<Snapshot, String> {
        let now = lock(&self.counts.snap).passes;
        // Pass `now + 1` may have started before this call; `now + 2` did not.
        self.next_snapshot(now + 2, deadline)
    }

    /// The snapshot of pass `pass` or later, or the latest one once `deadline` passes
    /// (the caller judges it).
    fn next_snapshot(&self, pass: u64, deadline: Instant) -> Result<Snapshot, String> {
        let mut snap = lock(&self.counts.snap);
        while snap.passes < pass {
            if snap.ended {
                return Err("the loop thread ended early".into());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            snap = match self.counts.changed.wait_timeout(snap, left) {
                Ok((g, _)) => g,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        Ok(*snap)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let check = !std::thread::panicking();
        // STYLE rule 11: a finished test leaves nothing behind in the loop. Checked before
        // stopping, reported after, so a failure still stops the loop thread.
        let idle = if check {
            self.try_wait_until("idle (1 handler, 0 timers)", |h, t| h == 1 && t == 0)
        } else {
            Ok(())
        };
        let _ = self.handle.stop();
        let Some((thread, done)) = self.thread.take() else {
            return;
        };
        let stopped = match done.recv_timeout(IO_TIMEOUT) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let joined = thread.join();
                let snap = *lock(&self.counts.snap);
                match joined {
                    Err(_) => Err("the loop thread panicked".to_owned()),
                    Ok(()) if snap.handlers != 0 || snap.timers != 0 => Err(format!(
                        "after stop: {} handlers and {} timers left",
                        snap.handlers, snap.timers
                    )),
                    Ok(()) => Ok(()),
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
                "the loop thread did not stop within {IO_TIMEOUT:?}"
            )),
        };
        if check {
            if let Err(e) = idle.and(stopped) {
                panic!("{e}");
            }
        }
    }
}

/// The loop thread: passes until stop() leaves no handler, publishing the counts.
fn drive(ftp: &mut FtpServer, counts: &Counts) {
    loop {
        let polled = ftp.poll_once(TICK);
        {
            let mut snap = lock(&counts.snap);
            snap.handlers = ftp.handler_count();
            snap.timers = ftp.timer_count();
            snap.passes += 1;
            snap.ended = polled.is_err() || snap.handlers == 0;
        }
        counts.changed.notify_all();
        if let Err(e) = polled {
            panic!("poll_once failed: {e}");
        }
        if ftp.handler_count() == 0 {
            return;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The longest one idle pass of the loop thread lasts.
const TICK: Duration = Duration::from_millis(20);

//! A small pool of worker threads for calls that may block (an authorizer that asks a
//! database or a slow PAM module, the fsync of an upload, the close that frees a replaced
//! file's blocks): the session sleeps while a worker runs the call, and
//! the result comes back to the loop as a message through its waker, so the other
//! sessions of the loop never wait (pyftpdlib's del_channel / add_channel, done with a
//! thread pool instead of a thread per call).

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// Worker threads taking jobs from one queue; they end when the pool is dropped.
pub(crate) struct WorkerPool {
    jobs: Mutex<Sender<Job>>,
}

impl WorkerPool {
    /// Starts `workers` threads (at least one).
    pub(crate) fn new(workers: usize) -> std::io::Result<WorkerPool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("ftp-worker-{i}"))
                .spawn(move || work(&rx))?;
        }
        Ok(WorkerPool {
            jobs: Mutex::new(tx),
        })
    }

    /// Queues a job; false if the workers are gone.
    pub(crate) fn run(&self, job: impl FnOnce() + Send + 'static) -> bool {
        let jobs = match self.jobs.lock() {
            Ok(j) => j,
            Err(poisoned) => poisoned.into_inner(),
        };
        jobs.send(Box::new(job)).is_ok()
    }
}

/// The file threads of a server.
pub(super) const FILE_WORKERS: usize = 4;

/// The threads of a server that run the calls of filesystems that block
/// ([`crate::filesystems::FileSystem::blocking`]): as many sessions wait on their
/// storage at once, the others' calls queue.
pub(super) const FS_WORKERS: usize = 8;

fn work(rx: &Mutex<Receiver<Job>>) {
    // Signals go to the thread that runs the server's loop.
    crate::sys::block_exit_signals();
    loop {
        let job = {
            let rx = match rx.lock() {
                Ok(r) => r,
                Err(poisoned) => poisoned.into_inner(),
            };
            rx.recv()
        };
        match job {
            Ok(job) => job(),
            Err(_) => return, // the pool was dropped
        }
    }
}

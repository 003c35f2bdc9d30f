//! The multi-thread model: each session gets a thread and a loop of its own, so a slow
//! filesystem or authorizer only stalls that session (pyftpdlib's ThreadedFTPServer).

use std::net::SocketAddr;
use std::sync::Arc;

use ioloop::mio::net::TcpStream;
use ioloop::{Ctx, Handle, IoLoop, LoopHandle};

use crate::handlers::shared::Shared;
use crate::handlers::{FtpHandler, Msg, ServerLink};

/// Starts the session just accepted on a new thread. Returns the session loop's handle and
/// the session's handle in it, or None (the client is dropped) when it could not start.
pub(super) fn start_session(
    shared: &Arc<Shared>,
    cx: &mut Ctx<'_, Msg>,
    stream: TcpStream,
    addr: SocketAddr,
    id: u64,
) -> Option<(LoopHandle<Msg>, Handle)> {
    let link = ServerLink::Remote(cx.loop_handle(), cx.me());
    let shared = Arc::clone(shared);
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name(format!("ftp-session-{id}"))
        .spawn(move || {
            crate::sys::block_exit_signals();
            // The loop is built on the thread that runs it (handlers are not Send).
            let started = IoLoop::<Msg>::new().and_then(|mut session_loop| {
                crate::metrics::observe_loop(&mut session_loop, shared.metrics.as_ref());
                let h = FtpHandler::new(stream, addr, link, id, shared)
                    .and_then(|handler| session_loop.spawn(Box::new(handler)))?;
                Ok((session_loop, h))
            });
            match started {
                Ok((mut session_loop, h)) => {
                    let _ = tx.send(Ok((session_loop.handle(), h)));
                    if let Err(e) = session_loop.run() {
                        log::error!("{addr}: session loop failed: {e}");
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("{addr}: cannot start a session thread: {e}");
        return None;
    }
    match rx.recv() {
        Ok(Ok((lp, h))) => Some((lp, h)),
        Ok(Err(e)) => {
            log::debug!("{addr}: session setup failed: {e}");
            None
        }
        Err(_) => None,
    }
}

//! FTPS (`-S`) on the non-blocking client, as pyftpdlib's FTP_TLS speaks it: AUTH TLS after
//! the greeting, the login and PBSZ 0 / PROT P over TLS, and a TLS data connection per
//! transfer, started after the transfer command's 1xx. Handshakes are driven by the
//! sockets' readiness like everything else: rustls is fed what the socket has and writes
//! what it wants until the socket would block.

use std::io::{self, Read, Write};

use mio::net::TcpStream as MioStream;
use rustls::ClientConnection;

use super::{Multi, St};
use crate::ftp::tls_client;

impl Multi {
    /// The 234 to AUTH TLS: TLS on the control connection, with USER queued in rustls
    /// until the handshake is done.
    pub(super) fn start_tls(&mut self, i: usize) -> io::Result<()> {
        let c = &mut self.cl[i];
        let Some(config) = c.tls.as_ref() else {
            return Err(io::Error::other("234 to an AUTH TLS not sent"));
        };
        let mut t = Box::new(tls_client(config)?);
        t.writer().write_all(&self.cmds.user)?;
        if let Some(s) = c.ctrl.as_mut() {
            flush(&mut t, s)?;
        }
        c.ctrl_tls = Some(t);
        c.st = St::User;
        Ok(())
    }

    /// With -S, TLS on the data connection of the transfer whose 1xx just came: its
    /// ClientHello goes out now.
    pub(super) fn start_data_tls(&mut self, i: usize) -> io::Result<()> {
        let c = &mut self.cl[i];
        if let (Some(config), Some(d)) = (c.tls.as_ref(), c.data.as_mut()) {
            let mut t = Box::new(tls_client(config)?);
            flush(&mut t, d)?;
            c.data_tls = Some(t);
        }
        Ok(())
    }

    /// RETR over TLS: decrypts into the shared buffer until the socket would block, or
    /// to the end of the data (close_notify, or the server's FIN without it).
    pub(super) fn pump_retr_tls(&mut self, i: usize) {
        let mut scratch = std::mem::take(&mut self.scratch);
        loop {
            let c = &mut self.cl[i];
            let (Some(t), Some(d)) = (c.data_tls.as_deref_mut(), c.data.as_mut()) else {
                break;
            };
            match flush(t, d).and_then(|()| read(t, d, &mut scratch)) {
                Ok(0) => {
                    self.drop_data(i);
                    self.cl[i].data_done = true;
                    self.check_done(i);
                    break;
                }
                Ok(n) => c.moved += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(i, format!("data read: {e}"));
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    /// STOR over TLS: once the handshake is done, encrypts from the shared buffer until
    /// the socket would block; at the end, close_notify and FIN. The connection stays open
    /// (what the server still sends is read and dropped) until the 226, so that no unread
    /// byte (a session ticket) turns the close into a reset that cuts the upload's tail.
    pub(super) fn pump_stor_tls(&mut self, i: usize) {
        // Not the shared buffer: this runs from a control reply too, while that is in use.
        let mut scratch = [0u8; 4096];
        loop {
            let c = &mut self.cl[i];
            let (Some(t), Some(d)) = (c.data_tls.as_deref_mut(), c.data.as_mut()) else {
                break;
            };
            match read(t, d, &mut scratch) {
                Ok(0) if c.data_done => {
                    self.drop_data(i);
                    break;
                }
                Ok(0) => {
                    self.fail(i, "data connection closed by the server");
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) if c.data_done => {
                    self.drop_data(i);
                    break;
                }
                Err(e) => {
                    self.fail(i, format!("data read: {e}"));
                    break;
                }
            }
        }
        let size = self.size;
        loop {
            let c = &mut self.cl[i];
            let (Some(t), Some(d)) = (c.data_tls.as_deref_mut(), c.data.as_mut()) else {
                break;
            };
            if let Err(e) = flush(t, d) {
                self.fail(i, format!("data write: {e}"));
                break;
            }
            if t.wants_write() || t.is_handshaking() || c.data_done {
                // The socket is full (its next writable edge resumes), or the handshake
                // waits for the server (its readable edge), or all is sent.
                break;
            }
            let left = size - c.moved;
            if left == 0 {
                t.send_close_notify();
                if let Err(e) = flush(t, d) {
                    self.fail(i, format!("data write: {e}"));
                    break;
                }
                if t.wants_write() {
                    break;
                }
                let _ = d.shutdown(std::net::Shutdown::Write);
                c.data_done = true;
                self.check_done(i);
                break;
            }
            let n = left.min(self.wbuf.len() as u64) as usize;
            match t.writer().write(&self.wbuf[..n]) {
                Ok(0) => break,
                Ok(n) => c.moved += n as u64,
                Err(e) => {
                    self.fail(i, format!("data write: {e}"));
                    break;
                }
            }
        }
    }
}

/// Writes what rustls has to send (handshake messages, records) until the socket would
/// block or nothing is left.
pub(super) fn flush(t: &mut ClientConnection, s: &mut MioStream) -> io::Result<()> {
    while t.wants_write() {
        match t.write_tls(s) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads plaintext, feeding rustls from the socket as needed (the handshake included):
/// `Ok(0)` at the end of the stream (close_notify, or the peer's FIN without it),
/// `WouldBlock` when the socket has nothing more for now.
pub(super) fn read(
    t: &mut ClientConnection,
    s: &mut MioStream,
    buf: &mut [u8],
) -> io::Result<usize> {
    loop {
        match t.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // A peer that closes without close_notify: the end of the data all the same.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
            Err(e) => return Err(e),
        }
        // Nothing decrypted is waiting: one more read from the socket (WouldBlock ends it).
        t.read_tls(s)?;
        t.process_new_packets().map_err(io::Error::other)?;
        flush(t, s)?;
    }
}

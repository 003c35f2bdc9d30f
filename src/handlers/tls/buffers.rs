//! The record buffers of a TLS channel. A control connection's are taken when records
//! arrive or leave and given back to a per-thread list of small spares once emptied, so
//! that an idle TLS session holds none (as plain sessions hold no line buffers while idle)
//! and a command costs no allocation. A data connection exists for one transfer and keeps
//! its (larger) buffers until it closes, so no block of a transfer allocates.

use std::cell::RefCell;
use std::io::{self, Read, Write};

/// A byte queue `data[start..end]`. `data` keeps its length (all of it initialized once,
/// when it is first taken) so that filling it costs no zeroing; an empty queue owns no
/// allocation.
#[derive(Default)]
pub(super) struct RecordBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
    /// Keeps the allocation while empty (a data connection's, until it closes).
    hold: bool,
}

impl RecordBuf {
    /// A queue that takes its allocation on first use and keeps it until dropped.
    pub(super) fn held() -> RecordBuf {
        RecordBuf {
            data: Vec::new(),
            start: 0,
            end: 0,
            hold: true,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The bytes allocated.
    #[cfg(test)]
    pub(super) fn allocated(&self) -> usize {
        self.data.capacity()
    }

    /// The queued bytes.
    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.start..self.end]
    }

    /// Drops `n` bytes from the front; the allocation goes back to the spares once empty.
    pub(super) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.is_empty() {
            self.emptied();
        }
    }

    /// Room for at least `n` more bytes at the end, to be filled through
    /// [`spare_mut`](Self::spare_mut) and committed with [`commit`](Self::commit).
    pub(super) fn reserve(&mut self, n: usize) {
        if self.data.is_empty() {
            self.data = take_spare(n);
            self.start = 0;
            self.end = 0;
        }
        if self.data.len() - self.end >= n {
            return;
        }
        if self.start > 0 {
            // What is left is a partial record at most: a short move.
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.data.len() - self.end < n {
            self.data.resize(self.end + n, 0);
        }
    }

    /// The free room at the end.
    pub(super) fn spare_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.end..]
    }

    /// Counts `n` bytes written into [`spare_mut`](Self::spare_mut) as queued.
    /// A queue still empty afterwards (nothing was written) gives its allocation back.
    pub(super) fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.data.len());
        if self.is_empty() {
            self.emptied();
        }
    }

    /// Appends `bytes`.
    pub(super) fn extend(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.reserve(bytes.len());
        self.spare_mut()[..bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len());
    }

    /// One read(2) from `from` into the free room (at least `chunk` bytes of it). `Ok(0)`
    /// is the end of the stream.
    pub(super) fn read_from(&mut self, from: &mut impl Read, chunk: usize) -> io::Result<usize> {
        self.reserve(chunk);
        let result = from.read(self.spare_mut());
        self.commit(*result.as_ref().unwrap_or(&0));
        result
    }

    /// Moves the front of the queue into `buf`; how many bytes.
    pub(super) fn take_into(&mut self, buf: &mut [u8]) -> usize {
        let queued = self.bytes_mut();
        let n = queued.len().min(buf.len());
        buf[..n].copy_from_slice(&queued[..n]);
        self.consume(n);
        n
    }

    /// One read(2) of records, at least `chunk` bytes asked. `Ok(false)` when the socket
    /// has nothing; the end of the stream is an error (`UnexpectedEof`, noted in `eof`),
    /// since TLS still waits for records then (a close_notify would have ended the wait).
    pub(super) fn read_records(
        &mut self,
        from: &mut impl Read,
        chunk: usize,
        eof: &mut bool,
    ) -> io::Result<bool> {
        if *eof {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        loop {
            match self.read_from(from, chunk) {
                Ok(0) => {
                    *eof = true;
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                Ok(_) => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes the queued bytes to `to` until none are left (`Ok(())`) or `to` would block.
    pub(super) fn write_to(&mut self, to: &mut impl Write) -> io::Result<()> {
        while !self.is_empty() {
            match to.write(&self.data[self.start..self.end]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.consume(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The queue is empty: rewinds it, and gives the allocation back unless held.
    fn emptied(&mut self) {
        if self.hold {
            self.start = 0;
            self.end = 0;
        } else {
            self.release();
        }
    }

    /// Gives the allocation back to the spares (the queue must be empty).
    fn release(&mut self) {
        let data = std::mem::take(&mut self.data);
        self.start = 0;
        self.end = 0;
        give_spare(data);
    }
}

impl Drop for RecordBuf {
    fn drop(&mut self) {
        self.release();
    }
}

/// A buffer of at least `n` bytes: the smallest spare that is large enough, else a new
/// one.
fn take_spare(n: usize) -> Vec<u8> {
    let spare = SPARES
        .try_with(|s| {
            let mut spares = s.try_borrow_mut().ok()?;
            let (i, _) = spares
                .iter()
                .enumerate()
                .filter(|(_, b)| b.len() >= n)
                .min_by_key(|(_, b)| b.len())?;
            Some(spares.swap_remove(i))
        })
        .ok()
        .flatten();
    spare.unwrap_or_else(|| vec![0; n.next_multiple_of(ALLOCATION_UNIT)])
}

/// Keeps `data` for the next channel. With the list full, the smallest spare makes room
/// for a larger one.
fn give_spare(data: Vec<u8>) {
    if data.is_empty() || data.len() > SPARE_MAX_SIZE {
        return;
    }
    let _ = SPARES.try_with(|s| {
        let Ok(mut spares) = s.try_borrow_mut() else {
            return;
        };
        if spares.len() < SPARE_COUNT {
            spares.push(data);
        } else if let Some(smallest) = spares.iter_mut().min_by_key(|b| b.len()) {
            if smallest.len() < data.len() {
                *smallest = data;
            }
        }
    });
}

thread_local! {
    static SPARES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Buffers are made in multiples of this.
const ALLOCATION_UNIT: usize = 1024;

/// Spare buffers a thread keeps for the next channel that needs one.
const SPARE_COUNT: usize = 8;

/// Larger buffers (a data connection's, a control connection's that took a large record)
/// are freed instead of kept: the spares hold at most 8 × 32 KiB, and a thread that
/// serves one session (`multi-thread`) keeps little for it.
const SPARE_MAX_SIZE: usize = 32 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_buffer_holds_no_allocation() {
        let mut b = RecordBuf::default();
        b.extend(b"hello");
        assert_eq!(b.bytes_mut(), b"hello");
        b.consume(2);
        assert_eq!(b.bytes_mut(), b"llo");
        b.consume(3);
        assert!(b.is_empty());
        assert_eq!(b.data.capacity(), 0);
    }

    #[test]
    fn reserve_moves_a_tail_to_the_front_before_growing() {
        let mut b = RecordBuf::default();
        b.reserve(10);
        let size = b.data.len();
        b.commit(size);
        b.consume(size - 3);
        b.reserve(size - 3);
        assert_eq!(b.data.len(), size);
        assert_eq!(b.bytes_mut().len(), 3);
        b.reserve(size);
        assert!(b.data.len() >= size + 3);
    }

    #[test]
    fn a_held_buffer_keeps_its_allocation_until_dropped() {
        let mut b = RecordBuf::held();
        b.extend(b"record");
        let size = b.allocated();
        b.consume(6);
        assert!(b.is_empty());
        assert_eq!(b.allocated(), size);
        b.extend(b"next");
        assert_eq!(b.bytes_mut(), b"next");
        assert_eq!(b.allocated(), size);
    }

    #[test]
    fn reads_and_writes_move_the_queue() {
        let mut b = RecordBuf::default();
        let mut src: &[u8] = b"abcdef";
        assert_eq!(b.read_from(&mut src, 4).expect("read"), 6);
        let mut out = Vec::new();
        b.write_to(&mut out).expect("write");
        assert_eq!(out, b"abcdef");
        assert!(b.is_empty());
        let mut empty: &[u8] = b"";
        assert_eq!(b.read_from(&mut empty, 4).expect("read"), 0);
        assert_eq!(b.data.capacity(), 0);
    }
}

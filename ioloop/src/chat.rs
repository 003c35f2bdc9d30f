//! `AsyncChat`: line input with a terminator and a hard length cap, and an output queue
//! fed by bytes and producers (pyftpdlib's asynchat-based channel).
//!
//! Buffers are taken only while there is something in them: an idle channel keeps no
//! big allocation, which is what lets one loop hold many thousand quiet sessions.

use std::cell::RefCell;
use std::io::{self, Read, Write};

use mio::Interest;

/// A lazy source of output, pulled when the output buffer has been sent (pyftpdlib's
/// producers: a file, a listing).
pub trait Producer {
    /// Appends the next piece of output to `out`. Returns `Ok(false)` once exhausted (it
    /// may have appended a last piece in that same call).
    ///
    /// # Errors
    /// An I/O error of the underlying source; the transfer fails with it.
    fn more(&mut self, out: &mut Vec<u8>) -> io::Result<bool>;
}

/// What a read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStatus {
    /// Bytes were read (and buffered).
    Data,
    /// Nothing to read right now.
    WouldBlock,
    /// The peer closed the connection.
    Closed,
}

/// One input line, without its terminator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A complete line.
    Complete(Vec<u8>),
    /// More than the cap arrived without a terminator; those bytes were dropped.
    TooLong,
}

/// A line-oriented channel over a non-blocking stream.
#[derive(Debug)]
pub struct AsyncChat<S> {
    stream: S,
    terminator: &'static [u8],
    /// A u32 (lines are short) so that the flags below share its word.
    max_line: u32,
    /// The buffers, boxed and present only while one of them holds something: an idle
    /// channel costs the few words above.
    bufs: Option<Box<Buffers>>,
    discarding: bool,
    closing: bool,
    eof: bool,
}

#[derive(Debug, Default)]
struct Buffers {
    inbuf: Vec<u8>,
    scan_from: usize,
    outbuf: Vec<u8>,
    sent: usize,
    producer: Option<ProducerSlot>,
}

impl Buffers {
    fn is_empty(&self) -> bool {
        self.inbuf.is_empty() && self.outbuf.is_empty() && self.producer.is_none()
    }
}

struct ProducerSlot(Box<dyn Producer>);

impl std::fmt::Debug for ProducerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Producer")
    }
}

const READ_CHUNK: usize = 4096;

/// What an empty buffer takes when something is first written to it.
const FIRST_CAPACITY: usize = 128;

/// Emptied buffers a thread keeps for the next channel that needs some. An idle channel
/// holds no buffers, and each command wakes it: without spares every command cost an
/// allocation for the buffers and more for the input and output as they grew (a third of
/// the allocations of a login).
const SPARE_COUNT: usize = 16;

/// Buffers that grew past this (either of them) are freed instead of kept as spares, so
/// that the spares hold at most 16 × 2 × 4 KiB.
const SPARE_MAX_CAPACITY: usize = 4096;

thread_local! {
    // Boxed: the box a channel holds is what is reused, allocation and all.
    #[allow(clippy::vec_box)]
    static SPARE_BUFFERS: RefCell<Vec<Box<Buffers>>> = const { RefCell::new(Vec::new()) };
    // What each read lands in before the input buffer takes it: one per thread, zeroed
    // once, rather than a 4 KiB array zeroed on the stack for every read(2).
    static READ_SCRATCH: RefCell<[u8; READ_CHUNK]> = const { RefCell::new([0; READ_CHUNK]) };
}

impl<S: Read + Write> AsyncChat<S> {
    /// A channel splitting input on `terminator` (e.g. `b"\r\n"`); a line longer than
    /// `max_line` bytes is reported as [`Line::TooLong`] instead of being buffered.
    pub fn new(stream: S, terminator: &'static [u8], max_line: usize) -> Self {
        AsyncChat {
            stream,
            terminator,
            max_line: u32::try_from(max_line).unwrap_or(u32::MAX),
            bufs: None,
            discarding: false,
            closing: false,
            eof: false,
        }
    }

    /// The underlying stream.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// The underlying stream, mutably.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Gives the stream back.
    pub fn into_stream(self) -> S {
        self.stream
    }

    /// Reads one chunk into the input buffer. Call [`next_line`](Self::next_line) until it
    /// returns None between reads, so the buffer never holds more than one chunk plus a
    /// partial line.
    ///
    /// # Errors
    /// Any read error other than `WouldBlock` / `Interrupted`; a reset is reported as
    /// [`ReadStatus::Closed`].
    pub fn read_some(&mut self) -> io::Result<ReadStatus> {
        if self.eof {
            return Ok(ReadStatus::Closed);
        }
        let scratch = READ_SCRATCH.try_with(|scratch| {
            scratch
                .try_borrow_mut()
                .ok()
                .map(|mut chunk| self.read_into(&mut chunk[..]))
        });
        match scratch {
            Ok(Some(status)) => status,
            // The thread is exiting, or a stream's read reads another channel.
            _ => self.read_into(&mut [0u8; READ_CHUNK]),
        }
    }

    fn read_into(&mut self, chunk: &mut [u8]) -> io::Result<ReadStatus> {
        loop {
            return match self.stream.read(chunk) {
                Ok(0) => {
                    self.eof = true;
                    Ok(ReadStatus::Closed)
                }
                Ok(n) => {
                    let inbuf = &mut self.bufs().inbuf;
                    if inbuf.capacity() == 0 {
                        // Room for a typical command line and the next one.
                        inbuf.reserve(n.max(FIRST_CAPACITY));
                    }
                    inbuf.extend_from_slice(&chunk[..n]);
                    Ok(ReadStatus::Data)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadStatus::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if crate::is_disconnect(&e) => {
                    self.eof = true;
                    Ok(ReadStatus::Closed)
                }
                Err(e) => Err(e),
            };
        }
    }

    /// The next complete line in the input buffer, if any.
    pub fn next_line(&mut self) -> Option<Line> {
        let t = self.terminator;
        let max_line = self.max_line as usize;
        let b = self.bufs.as_mut()?;
        match find(&b.inbuf[b.scan_from..], t) {
            Some(i) => {
                let end = b.scan_from + i;
                let too_long = end > max_line;
                let line = if too_long {
                    Vec::new()
                } else {
                    b.inbuf[..end].to_vec()
                };
                b.inbuf.drain(..end + t.len());
                b.scan_from = 0;
                if b.inbuf.is_empty() {
                    // The buffers go to the spares (capacity and all) or back to the
                    // allocator: an idle channel holds none.
                    b.inbuf.shrink_if_large();
                }
                self.release();
                if std::mem::take(&mut self.discarding) {
                    // The tail of a line already reported as too long.
                    return self.next_line();
                }
                if too_long {
                    return Some(Line::TooLong);
                }
                Some(Line::Complete(line))
            }
            None => {
                // Resume the search where a terminator could still start.
                b.scan_from = b.inbuf.len().saturating_sub(t.len().saturating_sub(1));
                if b.inbuf.len() > max_line {
                    b.inbuf = Vec::new();
                    b.scan_from = 0;
                    self.release();
                    if self.discarding {
                        return None;
                    }
                    self.discarding = true;
                    return Some(Line::TooLong);
                }
                None
            }
        }
    }

    /// The next complete line, without taking it: None when no whole line is buffered or
    /// the buffered one is the tail of a line already reported as too long.
    pub fn peek_line(&self) -> Option<&[u8]> {
        if self.discarding {
            return None;
        }
        let b = self.bufs.as_ref()?;
        let end = find(&b.inbuf, self.terminator)?;
        (end <= self.max_line as usize).then(|| &b.inbuf[..end])
    }

    /// Drops all buffered input.
    pub fn clear_input(&mut self) {
        if let Some(b) = self.bufs.as_mut() {
            b.inbuf = Vec::new();
            b.scan_from = 0;
        }
        self.release();
    }

    /// Takes all buffered input, e.g. to hand bytes that followed a protocol switch (AUTH
    /// TLS) to the new layer instead of parsing them as lines.
    pub fn take_input(&mut self) -> Vec<u8> {
        self.discarding = false;
        let input = match self.bufs.as_mut() {
            Some(b) => {
                b.scan_from = 0;
                std::mem::take(&mut b.inbuf)
            }
            None => Vec::new(),
        };
        self.release();
        input
    }

    /// Bytes buffered as input and not yet returned as lines.
    pub fn buffered_input(&self) -> usize {
        self.bufs.as_ref().map_or(0, |b| b.inbuf.len())
    }

    /// Queues bytes for sending; call [`flush`](Self::flush) to send.
    pub fn push(&mut self, bytes: &[u8]) {
        self.out_buffer().extend_from_slice(bytes);
    }

    /// The output buffer itself, to format into without an intermediate allocation.
    pub fn out_buffer(&mut self) -> &mut Vec<u8> {
        let out = &mut self.bufs().outbuf;
        if out.capacity() == 0 {
            // One allocation for a typical reply, rather than a few as it grows.
            out.reserve(FIRST_CAPACITY);
        }
        out
    }

    /// Queues a producer after the bytes already queued.
    pub fn push_producer(&mut self, producer: Box<dyn Producer>) {
        self.bufs().producer = Some(ProducerSlot(producer));
    }

    /// Bytes queued and not yet sent (not counting a producer's future output).
    pub fn pending_output(&self) -> usize {
        self.bufs.as_ref().map_or(0, |b| b.outbuf.len() - b.sent)
    }

    /// True while anything (bytes or a producer) waits to be sent.
    pub fn has_output(&self) -> bool {
        self.bufs
            .as_ref()
            .is_some_and(|b| b.outbuf.len() > b.sent || b.producer.is_some())
    }

    /// Sends queued output until it is all sent or the socket would block, pulling from
    /// the producer as the buffer empties.
    ///
    /// # Errors
    /// A send error (a disconnect included) or a producer's error.
    pub fn flush(&mut self) -> io::Result<()> {
        let Some(b) = self.bufs.as_mut() else {
            return Ok(());
        };
        loop {
            if b.sent == b.outbuf.len() {
                b.outbuf.clear();
                b.sent = 0;
                let Some(ProducerSlot(p)) = b.producer.as_mut() else {
                    break;
                };
                let more = p.more(&mut b.outbuf)?;
                if !more {
                    b.producer = None;
                }
                continue;
            }
            match self.stream.write(&b.outbuf[b.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => b.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if b.sent == b.outbuf.len() {
            // All sent: the buffers go to the spares with a reply's capacity (the next
            // reply, of this channel or another, writes without allocating) or back to the
            // allocator. Either way an idle channel holds no buffer.
            b.outbuf.clear();
            b.outbuf.shrink_if_large();
            b.sent = 0;
        }
        self.release();
        Ok(())
    }

    /// Asks for the channel to be closed once all queued output is sent; input is ignored
    /// from now on.
    pub fn close_when_done(&mut self) {
        self.closing = true;
    }

    /// True once [`close_when_done`](Self::close_when_done) was called.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// True when the channel should be closed now: closing was asked and output is sent.
    pub fn is_done(&self) -> bool {
        self.closing && !self.has_output()
    }

    /// True once the peer closed its side.
    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// Readable unless closing or at EOF; writable only while output is pending.
    /// `accept_input` lets the owner stop reading (back-pressure, paused sessions).
    pub fn interest(&self, accept_input: bool) -> Option<Interest> {
        let read = accept_input && !self.closing && !self.eof;
        let write = self.has_output();
        match (read, write) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        }
    }

    /// The buffers, allocated on first use.
    fn bufs(&mut self) -> &mut Buffers {
        self.bufs.get_or_insert_with(|| {
            SPARE_BUFFERS
                .try_with(|spare| spare.try_borrow_mut().ok()?.pop())
                .ok()
                .flatten()
                .unwrap_or_default()
        })
    }

    /// Gives the buffers up once nothing is left in them: to this thread's spares if they
    /// stayed small and there is room, else to the allocator.
    fn release(&mut self) {
        let Some(mut bufs) = self.bufs.take_if(|b| b.is_empty()) else {
            return;
        };
        if bufs.inbuf.capacity() > SPARE_MAX_CAPACITY || bufs.outbuf.capacity() > SPARE_MAX_CAPACITY
        {
            return;
        }
        bufs.scan_from = 0;
        bufs.sent = 0;
        let _ = SPARE_BUFFERS.try_with(|spare| {
            if let Ok(mut spare) = spare.try_borrow_mut() {
                if spare.len() < SPARE_COUNT {
                    spare.push(bufs);
                }
            }
        });
    }
}

/// An emptied buffer's capacity: kept while small enough to be worth reusing with its
/// `Buffers`, freed when a burst grew it.
trait ShrinkIfLarge {
    fn shrink_if_large(&mut self);
}

impl ShrinkIfLarge for Vec<u8> {
    fn shrink_if_large(&mut self) {
        if self.capacity() > SPARE_MAX_CAPACITY {
            *self = Vec::new();
        }
    }
}

/// Where `needle` first starts in `hay`. Scans for its first byte and checks the rest
/// there: comparing a window at every position cost a memcmp call per byte of input.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    loop {
        let at = from + hay.get(from..)?.iter().position(|&b| b == first)?;
        let tail = hay.get(at + 1..at + needle.len())?;
        if tail.iter().eq(rest) {
            return Some(at);
        }
        from = at + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// An in-memory stream: reads from `input`, writes into `output` at most `cap` bytes per call.
    struct Mem {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
        cap: usize,
    }

    impl Read for Mem {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.input.position() as usize == self.input.get_ref().len() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.input.read(buf)
        }
    }
    impl Write for Mem {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.cap == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.cap);
            self.output.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn chat(input: &[u8], cap: usize) -> AsyncChat<Mem> {
        AsyncChat::new(
            Mem {
                input: Cursor::new(input.to_vec()),
                output: Vec::new(),
                cap,
            },
            b"\r\n",
            2048,
        )
    }

    #[test]
    fn find_locates_the_first_whole_terminator() {
        assert_eq!(find(b"USER a\r\n", b"\r\n"), Some(6));
        assert_eq!(find(b"a\r\r\nb\r\n", b"\r\n"), Some(2));
        assert_eq!(find(b"\r\r\r", b"\r\n"), None);
        assert_eq!(find(b"abc\r", b"\r\n"), None);
        assert_eq!(find(b"", b"\r\n"), None);
        assert_eq!(find(b"\r\n", b"\r\n"), Some(0));
        assert_eq!(find(b"ab\ncd\n", b"\n"), Some(2));
        assert_eq!(find(b"abc", b""), None);
        assert_eq!(find(b"xxEOFxEOF", b"EOF"), Some(2));
        assert_eq!(find(b"xxEOxEO", b"EOF"), None);
    }

    #[test]
    fn splits_pipelined_lines() {
        let mut c = chat(b"USER a\r\nPASS b\r\nNOOP", 10);
        assert_eq!(c.read_some().unwrap(), ReadStatus::Data);
        assert_eq!(c.next_line(), Some(Line::Complete(b"USER a".to_vec())));
        assert_eq!(c.next_line(), Some(Line::Complete(b"PASS b".to_vec())));
        assert_eq!(c.next_line(), None);
        assert_eq!(c.buffered_input(), 4);
        assert_eq!(c.read_some().unwrap(), ReadStatus::WouldBlock);
    }

    #[test]
    fn an_idle_channel_holds_no_buffers() {
        let mut c = chat(b"NOOP\r\n", 100);
        assert_eq!(c.read_some().unwrap(), ReadStatus::Data);
        assert_eq!(c.next_line(), Some(Line::Complete(b"NOOP".to_vec())));
        c.push(b"200 ok\r\n");
        assert!(c.bufs.is_some());
        c.flush().unwrap();
        assert!(c.bufs.is_none(), "freed once everything is sent");
        assert!(!c.has_output());
    }

    #[test]
    fn emptied_buffers_are_reused_with_their_capacity_unless_large() {
        let taken = || SPARE_BUFFERS.with(|s| s.borrow_mut().pop());
        while taken().is_some() {}
        let mut c = chat(b"NOOP\r\n", 100);
        c.read_some().unwrap();
        assert_eq!(c.next_line(), Some(Line::Complete(b"NOOP".to_vec())));
        c.push(b"200 ok\r\n");
        c.flush().unwrap();
        let spare = taken().expect("the emptied buffers became a spare");
        assert!(spare.inbuf.is_empty() && spare.outbuf.is_empty());
        assert!(spare.outbuf.capacity() >= FIRST_CAPACITY);
        assert!(spare.inbuf.capacity() >= FIRST_CAPACITY);

        let mut c = chat(b"", 1 << 20);
        c.push(&[b'x'; SPARE_MAX_CAPACITY + 1]);
        c.flush().unwrap();
        assert!(c.bufs.is_none());
        let spare = taken().expect("the box is kept");
        assert_eq!(
            spare.outbuf.capacity(),
            0,
            "a grown buffer goes back to the allocator"
        );
    }

    #[test]
    fn bare_lf_is_not_a_terminator() {
        let mut c = chat(b"NOOP\n\r\n", 10);
        c.read_some().unwrap();
        assert_eq!(c.next_line(), Some(Line::Complete(b"NOOP\n".to_vec())));
    }

    #[test]
    fn complete_line_over_the_cap_is_too_long() {
        let mut input = b"SIZE ".to_vec();
        input.extend(vec![b'a'; 2044]);
        input.extend_from_slice(b"\r\nNOOP\r\n");
        let mut c = chat(&input, 10);
        c.read_some().unwrap();
        assert_eq!(c.next_line(), Some(Line::TooLong));
        assert_eq!(c.next_line(), Some(Line::Complete(b"NOOP".to_vec())));
        let mut exact = vec![b'a'; 2048];
        exact.extend_from_slice(b"\r\n");
        let mut c = chat(&exact, 10);
        c.read_some().unwrap();
        assert_eq!(c.next_line(), Some(Line::Complete(vec![b'a'; 2048])));
    }

    #[test]
    fn terminator_split_across_reads() {
        let mut c = chat(b"", 10);
        c.bufs().inbuf.extend_from_slice(b"NOOP\r");
        assert_eq!(c.next_line(), None);
        c.bufs().inbuf.extend_from_slice(b"\n");
        assert_eq!(c.next_line(), Some(Line::Complete(b"NOOP".to_vec())));
    }

    #[test]
    fn overlong_line_is_reported_once_and_its_tail_dropped() {
        let mut input = vec![b'x'; 5000];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        let mut c = chat(&input, 10);
        let mut lines = Vec::new();
        for _ in 0..10 {
            if c.read_some().unwrap() != ReadStatus::Data {
                break;
            }
            while let Some(l) = c.next_line() {
                lines.push(l);
            }
            assert!(c.buffered_input() <= 2048 + READ_CHUNK);
        }
        assert_eq!(lines, vec![Line::TooLong, Line::Complete(b"NOOP".to_vec())]);
    }

    struct Count(u32);
    impl Producer for Count {
        fn more(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
            self.0 -= 1;
            out.extend_from_slice(format!("{}\n", self.0).as_bytes());
            Ok(self.0 > 0)
        }
    }

    #[test]
    fn flush_sends_bytes_then_producer_output() {
        let mut c = chat(b"", 3);
        c.push(b"hello ");
        c.push_producer(Box::new(Count(3)));
        assert!(c.has_output());
        assert_eq!(
            c.interest(true),
            Some(Interest::READABLE | Interest::WRITABLE)
        );
        c.flush().unwrap();
        assert_eq!(c.stream().output, b"hello 2\n1\n0\n");
        assert!(!c.has_output());
        assert_eq!(c.interest(true), Some(Interest::READABLE));
    }

    #[test]
    fn partial_sends_keep_the_rest() {
        let mut c = chat(b"", 0);
        c.push(b"abc");
        c.flush().unwrap();
        assert_eq!(c.pending_output(), 3);
        c.stream_mut().cap = 2;
        c.flush().unwrap();
        assert_eq!(c.stream().output, b"abc");
    }

    #[test]
    fn close_when_done_waits_for_output() {
        let mut c = chat(b"", 0);
        c.push(b"221 Goodbye.\r\n");
        c.close_when_done();
        assert!(!c.is_done());
        assert_eq!(c.interest(true), Some(Interest::WRITABLE));
        c.stream_mut().cap = 100;
        c.flush().unwrap();
        assert!(c.is_done());
        assert_eq!(c.interest(true), None);
    }
}

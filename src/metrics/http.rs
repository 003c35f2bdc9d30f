//! The metrics endpoint: a listener and its connections as handlers of the server's own
//! loop, answering `GET /metrics` (the text exposition format) and `GET /healthz` with
//! HTTP/1.0 or 1.1 and `Connection: close`. RFC 9112 (message syntax), RFC 9110 (status
//! codes).
//!
//! A hand-written subset rather than an HTTP crate: two fixed routes, a request head read
//! whole and answered once, no bodies, no keep-alive; an HTTP library would bring its own
//! runtime or thread. Bad clients are cut off as bad FTP clients are: a request head over
//! [`MAX_HEAD`] gets 431, garbage gets 400, and every connection has one deadline for the
//! whole exchange (a client sending a byte at a time, or never reading the answer, is
//! closed when it passes); at most [`MAX_CONNECTIONS`] are served at once, more are closed
//! on accept.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use ioloop::mio::net::{TcpListener, TcpStream};
use ioloop::{Acceptor, Ctx, Handler, Interest, Ready, TimerId};

use super::{Counter, Metrics};

/// The largest request head accepted (request line and headers).
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// Metrics connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 64;

/// The metrics listener. It and its connections count themselves in `live`, so that the
/// server knows which of its loop's handlers are not sessions.
pub(crate) struct MetricsListener {
    acceptor: Acceptor,
    metrics: Arc<Metrics>,
    live: Rc<Cell<usize>>,
    timeout: Duration,
}

impl MetricsListener {
    /// Serves `listener` (non-blocking); `timeout` bounds each connection's whole exchange.
    pub(crate) fn new(
        listener: std::net::TcpListener,
        metrics: Arc<Metrics>,
        live: Rc<Cell<usize>>,
        timeout: Duration,
    ) -> MetricsListener {
        MetricsListener {
            acceptor: Acceptor::new(TcpListener::from_std(listener), Duration::from_millis(100)),
            metrics,
            live,
            timeout,
        }
    }
}

impl<M> Handler<M> for MetricsListener {
    fn source(&mut self) -> Option<&mut dyn ioloop::mio::event::Source> {
        Some(self.acceptor.listener_mut())
    }

    fn interest(&self) -> Option<Interest> {
        self.acceptor.interest()
    }

    fn on_start(&mut self, _cx: &mut Ctx<'_, M>) {
        self.live.set(self.live.get() + 1);
    }

    fn on_ready(&mut self, cx: &mut Ctx<'_, M>, _ready: Ready) {
        while let Some((stream, addr)) = self.acceptor.accept_next(cx) {
            // The listener itself is one of `live`.
            if self.live.get() > MAX_CONNECTIONS {
                log::debug!("{addr}: metrics connection refused: {MAX_CONNECTIONS} open");
                continue; // dropping the stream closes it
            }
            let metrics = Arc::clone(&self.metrics);
            let conn = MetricsConn::new(stream, addr, metrics, &self.live, self.timeout);
            if let Err(e) = cx.spawn(Box::new(conn)) {
                log::warn!("{addr}: cannot register a metrics connection: {e}");
            }
        }
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_, M>, timer: TimerId) {
        self.acceptor.on_timer(cx, timer);
    }

    fn on_close(&mut self, _cx: &mut Ctx<'_, M>) {
        self.live.set(self.live.get().saturating_sub(1));
    }
}

/// One HTTP client.
struct MetricsConn {
    stream: TcpStream,
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    live: Rc<Cell<usize>>,
    timeout: Duration,
    state: ConnState,
    deadline: Option<TimerId>,
}

enum ConnState {
    /// Reading the request head.
    Reading { head: Vec<u8> },
    /// Sending the response; `sent` bytes of it are out.
    Writing { response: Vec<u8>, sent: usize },
    /// The response is out and the write side shut: reading what the client still
    /// sends until it closes, so that closing does not reset the connection under the
    /// response.
    Draining,
}

impl MetricsConn {
    fn new(
        stream: TcpStream,
        addr: SocketAddr,
        metrics: Arc<Metrics>,
        live: &Rc<Cell<usize>>,
        timeout: Duration,
    ) -> MetricsConn {
        MetricsConn {
            stream,
            addr,
            metrics,
            live: Rc::clone(live),
            timeout,
            state: ConnState::Reading { head: Vec::new() },
            deadline: None,
        }
    }

    /// Reads until the head is complete (then answers), the client closes, or the socket
    /// runs dry. Returns false when the connection is to close.
    fn read_head(&mut self) -> bool {
        let ConnState::Reading { head } = &mut self.state else {
            return true;
        };
        let mut buf = [0u8; 2048];
        let answer = loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    let before = head.len();
                    head.extend_from_slice(&buf[..n]);
                    // Search from just before the new bytes: the blank line may straddle.
                    if let Some(end) = head_end(head, before.saturating_sub(3)) {
                        break answer(&head[..end], &self.metrics);
                    }
                    if head.len() > MAX_HEAD {
                        break Response::error(431, "Request Header Fields Too Large");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        };
        self.metrics.add(Counter::HttpRequests, 1);
        log::debug!("{}: metrics request answered {}", self.addr, answer.status);
        self.state = ConnState::Writing {
            response: answer.bytes,
            sent: 0,
        };
        true
    }

    /// Sends what is left of the response; once it is all out, shuts the write side.
    /// Returns false when the connection is to close.
    fn write_response(&mut self) -> bool {
        let ConnState::Writing { response, sent } = &mut self.state else {
            return true;
        };
        while *sent < response.len() {
            match self.stream.write(&response[*sent..]) {
                Ok(0) => return false,
                Ok(n) => *sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        if self.stream.shutdown(std::net::Shutdown::Write).is_err() {
            return false;
        }
        self.state = ConnState::Draining;
        true
    }

    /// Discards input until the client closes. Returns false when it has.
    fn drain(&mut self) -> bool {
        let mut buf = [0u8; 2048];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
    }
}

impl<M> Handler<M> for MetricsConn {
    fn source(&mut self) -> Option<&mut dyn ioloop::mio::event::Source> {
        Some(&mut self.stream)
    }

    fn interest(&self) -> Option<Interest> {
        match self.state {
            ConnState::Reading { .. } | ConnState::Draining => Some(Interest::READABLE),
            ConnState::Writing { .. } => Some(Interest::WRITABLE),
        }
    }

    fn on_start(&mut self, cx: &mut Ctx<'_, M>) {
        self.live.set(self.live.get() + 1);
        self.deadline = Some(cx.call_later(self.timeout));
    }

    fn on_ready(&mut self, cx: &mut Ctx<'_, M>, _ready: Ready) {
        // Each step falls through to the next at once: a response usually fits in the
        // socket buffer, which spares a round trip through the poller.
        let open = self.read_head() && self.write_response();
        let open = open && (!matches!(self.state, ConnState::Draining) || self.drain());
        if !open {
            cx.close();
        }
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_, M>, timer: TimerId) {
        if self.deadline == Some(timer) {
            if matches!(self.state, ConnState::Reading { .. }) {
                log::debug!("{}: metrics request timed out", self.addr);
            }
            cx.close();
        }
    }

    fn on_close(&mut self, cx: &mut Ctx<'_, M>) {
        if let Some(t) = self.deadline.take() {
            cx.cancel(t);
        }
        // A process forked meanwhile (a multi-proc session, a new pre-fork worker) holds a
        // copy of the descriptor: shutting the socket down ends the connection for the
        // client even so.
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        self.live.set(self.live.get().saturating_sub(1));
    }
}

/// A response, whole.
struct Response {
    status: u16,
    bytes: Vec<u8>,
}

impl Response {
    fn new(status: u16, reason: &str, content_type: &str, body: &[u8], head_only: bool) -> Self {
        let mut bytes = Vec::with_capacity(160 + body.len());
        // Writing into a Vec cannot fail.
        let _ = write!(
            bytes,
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        if status == 405 {
            bytes.extend_from_slice(b"Allow: GET, HEAD\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        if !head_only {
            bytes.extend_from_slice(body);
        }
        Response { status, bytes }
    }

    fn error(status: u16, reason: &str) -> Self {
        let body = format!("{reason}\n");
        Response::new(status, reason, TEXT, body.as_bytes(), false)
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where the head ends (the index just past its blank line), searching from `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        if buf[i] == b'\n' {
            // "\n\n" or "\n\r\n": the line before was the last header (RFC 9112 2.2
            // allows a bare LF as the line end).
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

/// The answer to a complete request head.
fn answer(head: &[u8], metrics: &Metrics) -> Response {
    let request = match parse_head(head) {
        Ok(r) => r,
        Err(status) => return Response::error(status.0, status.1),
    };
    let head_only = match request.method {
        "GET" => false,
        "HEAD" => true,
        _ => return Response::error(405, "Method Not Allowed"),
    };
    let path = request.target.split('?').next().unwrap_or("");
    match path {
        "/metrics" => {
            let mut body = Vec::with_capacity(4096);
            metrics.render(&mut body);
            Response::new(200, "OK", EXPOSITION, &body, head_only)
        }
        "/healthz" => Response::new(200, "OK", TEXT, b"ok\n", head_only),
        _ => Response::error(404, "Not Found"),
    }
}

struct Request<'a> {
    method: &'a str,
    target: &'a str,
}

/// Checks the request line and the header lines' syntax (RFC 9112 3, 5).
fn parse_head(head: &[u8]) -> Result<Request<'_>, (u16, &'static str)> {
    const BAD: (u16, &str) = (400, "Bad Request");
    let text = std::str::from_utf8(head).map_err(|_| BAD)?;
    // RFC 9112 2.2: empty lines before the request line are ignored.
    let text = text.trim_start_matches(['\r', '\n']);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().ok_or(BAD)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BAD);
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(BAD);
    }
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(BAD);
    }
    match version {
        "HTTP/1.0" | "HTTP/1.1" => {}
        v if v.starts_with("HTTP/") && v.len() == 8 => {
            return Err((505, "HTTP Version Not Supported"))
        }
        _ => return Err(BAD),
    }
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, _value) = line.split_once(':').ok_or(BAD)?;
        // No whitespace before the colon, no obsolete line folding (RFC 9112 5.1, 5.2).
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(BAD);
        }
    }
    Ok(Request { method, target })
}

/// RFC 9110 5.6.2 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(head: &str) -> u16 {
        let m = Metrics::new().expect("map");
        answer(head.as_bytes(), &m).status
    }

    #[test]
    fn the_two_routes_answer_200_with_http_1_0_and_1_1() {
        assert_eq!(status("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
        assert_eq!(status("GET /healthz HTTP/1.0\r\n\r\n"), 200);
        assert_eq!(status("HEAD /metrics?x=1 HTTP/1.1\r\n\r\n"), 200);
        assert_eq!(status("\r\nGET /healthz HTTP/1.1\n\n"), 200);
    }

    #[test]
    fn other_paths_methods_and_versions_are_refused() {
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), 404);
        assert_eq!(status("GET /metricsx HTTP/1.1\r\n\r\n"), 404);
        assert_eq!(status("POST /metrics HTTP/1.1\r\n\r\n"), 405);
        assert_eq!(status("GET /metrics HTTP/2.0\r\n\r\n"), 505);
    }

    #[test]
    fn garbage_is_a_bad_request() {
        for head in [
            "\r\n\r\n",
            "GET /metrics\r\n\r\n",
            "GET  /metrics HTTP/1.1\r\n\r\n",
            "GET metrics HTTP/1.1\r\n\r\n",
            "GET /metrics HTTP/1.1 x\r\n\r\n",
            "GET /metrics FTP/1.1\r\n\r\n",
            "G(T /metrics HTTP/1.1\r\n\r\n",
            "GET /metrics HTTP/1.1\r\nNo colon here\r\n\r\n",
            "GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n",
            "GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            "GET /m\u{e9}trics HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(status(head), 400, "{head:?}");
        }
        let m = Metrics::new().expect("map");
        assert_eq!(answer(b"\xff\xfe\r\n\r\n", &m).status, 400);
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line_however_lines_end() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest", 0), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\nrest", 0), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n", 0), None);
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r", 0), None);
    }

    #[test]
    fn a_response_closes_and_head_has_no_body() {
        let r = Response::new(200, "OK", TEXT, b"ok\n", true);
        let text = String::from_utf8(r.bytes).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(text.contains("Content-Length: 3\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "{text}");
        let r = Response::error(405, "Method Not Allowed");
        assert!(String::from_utf8(r.bytes)
            .expect("ascii")
            .contains("Allow: GET, HEAD\r\n"));
    }
}

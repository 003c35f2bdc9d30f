//! The command line's logger: pyftpdlib's line format (`[I 2026-01-02 15:04:05] message`)
//! on standard error, or appended to `--log-file` (reopened on SIGUSR1 for logrotate),
//! or to syslog (`--syslog`, one datagram per line), with env_logger's filter (`-D`,
//! `RUST_LOG`); `--log-format json` writes one JSON object per line instead.
//!
//! A loop thread writes its lines once per pass instead of once per line: a login logs
//! three lines, and three `write(2)` calls were a fifth of the system calls of a session.
//! A thread opts in by calling `log::logger().flush()`, which the event loop does at the
//! end of every pass (before it waits for events again); from then on its lines wait in a
//! buffer of its own until the next flush. Threads that never flush (the authorizer
//! workers, the main thread before the server runs) write each line at once.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use log::kv::{self, Key, Value, VisitSource};
use log::{Log, Metadata, Record};

/// The shape of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// pyftpdlib's `[I 2026-01-02 15:04:05] message`.
    Text,
    /// `{"time":"2026-01-02T15:04:05+01:00","level":"INFO","message":"..."}`.
    Json,
}

/// Where the lines go.
pub enum Output {
    /// Standard error.
    Stderr,
    /// `--log-file`.
    File(AppendFile),
    /// `--syslog`: one datagram per line, not batched.
    Syslog(crate::syslog::Syslog),
}

/// Installs the logger. `filter` is an env_logger filter (`info`, `debug,rustls=error`);
/// with `from_env`, `RUST_LOG` refines it. With `file`, lines are appended to it instead
/// of standard error, and a SIGUSR1 makes the next write reopen it by name.
pub fn init(filter: &str, from_env: bool, output: Output, format: LogFormat) {
    let syslog = match output {
        Output::Stderr => None,
        Output::File(file) => {
            let _ = LOG_FILE.set(file);
            None
        }
        Output::Syslog(syslog) => Some(syslog),
    };
    let mut builder = if from_env {
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(filter))
    } else {
        let mut b = env_logger::Builder::new();
        b.parse_filters(filter);
        b
    };
    let filter = builder.build();
    let max_level = filter.filter();
    if log::set_boxed_logger(Box::new(LineLogger {
        filter,
        format,
        syslog,
    }))
    .is_ok()
    {
        log::set_max_level(max_level);
    }
}

struct LineLogger {
    filter: env_logger::Logger,
    format: LogFormat,
    syslog: Option<crate::syslog::Syslog>,
}

impl Log for LineLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.filter.matches(record) {
            return;
        }
        if let Some(syslog) = &self.syslog {
            // The daemon stamps and stores each message: one datagram per record.
            match record.args().as_str() {
                Some(text) => syslog.send(record.level(), text),
                None => syslog.send(record.level(), &record.args().to_string()),
            }
            return;
        }
        // try_with: a record logged while the thread's locals are being torn down is
        // written on its own.
        let written = PENDING.try_with(|pending| {
            let Ok(mut pending) = pending.0.try_borrow_mut() else {
                return false; // a record logged from inside formatting: write it alone
            };
            append_line(&mut pending, record, self.format);
            if !BATCHING.with(Cell::get) || pending.len() >= FLUSH_AT {
                write_out(&mut pending);
            }
            true
        });
        if written != Ok(true) {
            let mut line = String::new();
            append_line(&mut line, record, self.format);
            write_out(&mut line);
        }
    }

    fn flush(&self) {
        let _ = BATCHING.try_with(|b| b.set(true));
        let _ = PENDING.try_with(|pending| {
            if let Ok(mut pending) = pending.0.try_borrow_mut() {
                write_out(&mut pending);
            }
        });
    }
}

/// One line for `record`, in `format`.
fn append_line(out: &mut String, record: &Record<'_>, format: LogFormat) {
    match format {
        LogFormat::Text => append_text(out, record),
        LogFormat::Json => append_json(out, record),
    }
}

/// `{"time":"...","level":"INFO","message":"..."}\n`: RFC 3339 local time with its UTC
/// offset, the `log` crate's level name, and the message as the text line has it.
fn append_json(out: &mut String, record: &Record<'_>) {
    out.push_str("{\"time\":\"");
    STAMP.with(|stamp| {
        let mut stamp = stamp.borrow_mut();
        stamp.refresh();
        out.push_str(&stamp.rfc3339);
    });
    out.push_str("\",\"level\":\"");
    out.push_str(record.level().as_str());
    out.push_str("\",\"message\":\"");
    match record.args().as_str() {
        Some(text) => push_json_escaped(out, text),
        None => push_json_escaped(out, &record.args().to_string()),
    }
    out.push('"');
    // Fields the library attached to the record (a transfer's user, path, bytes...).
    let _ = record.key_values().visit(&mut JsonFields(out));
    out.push_str("}\n");
}

/// Appends each field as `,"key":value`: numbers and booleans as JSON's, anything else
/// as a string of its `Display` text.
struct JsonFields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for JsonFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), kv::Error> {
        let out = &mut *self.0;
        out.push_str(",\"");
        push_json_escaped(out, key.as_str());
        out.push_str("\":");
        if let Some(n) = value.to_u64() {
            let _ = write!(out, "{n}");
        } else if let Some(b) = value.to_bool() {
            let _ = write!(out, "{b}");
        } else if let Some(x) = value.to_f64().filter(|x| x.is_finite()) {
            // Seconds: milliseconds are what the text line shows.
            let _ = write!(out, "{x:.3}");
        } else {
            out.push('"');
            match value.to_borrowed_str() {
                Some(text) => push_json_escaped(out, text),
                None => push_json_escaped(out, &value.to_string()),
            }
            out.push('"');
        }
        Ok(())
    }
}

/// Appends `text` as the inside of a JSON string (RFC 8259 §7): the quote, the backslash
/// and the control characters escaped, everything else as it is (the line is UTF-8).
/// Written here rather than through serde_json, which nothing else in the binary needs.
fn push_json_escaped(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// `[L YYYY-MM-DD HH:MM:SS] message\n`, as pyftpdlib's default formatter without colours.
fn append_text(out: &mut String, record: &Record<'_>) {
    let initial = record.level().as_str().as_bytes()[0] as char;
    out.push('[');
    out.push(initial);
    out.push(' ');
    STAMP.with(|stamp| {
        let mut stamp = stamp.borrow_mut();
        stamp.refresh();
        out.push_str(&stamp.text);
    });
    out.push_str("] ");
    // The message straight into the line (a constant one without formatting at all),
    // not through a `"] {}"` format of its own.
    match record.args().as_str() {
        Some(text) => out.push_str(text),
        None => {
            let _ = out.write_fmt(*record.args());
        }
    }
    out.push('\n');
}

/// Writes `pending` to the log file or standard error in one call and empties it. A
/// failing write (a full disk, a closed pipe) drops the lines: logging never stops the
/// server.
fn write_out(pending: &mut String) {
    if pending.is_empty() {
        return;
    }
    match LOG_FILE.get() {
        Some(log) => log.write(pending.as_bytes()),
        None => {
            let _ = std::io::stderr().lock().write_all(pending.as_bytes());
        }
    }
    pending.clear();
    if pending.capacity() > KEEP_CAPACITY {
        pending.shrink_to(KEEP_CAPACITY);
    }
}

/// A file appended to and opened again by name after a SIGUSR1 (`--log-file`,
/// `--xferlog`).
///
/// A mutex, not a loop-owned handle: lines come from every thread (loops, authorizer
/// workers, the main thread), each write is one short critical section, and the forking
/// models fork only while no other thread runs, so no child inherits it locked.
pub struct AppendFile {
    path: PathBuf,
    opened: Mutex<Opened>,
}

/// The file opened last, and the SIGUSR1 count it was opened after.
struct Opened {
    file: File,
    signals: usize,
}

impl AppendFile {
    /// Opens `path` for appending, and makes SIGUSR1 reopen it.
    ///
    /// # Errors
    /// When it cannot be opened.
    pub fn open(path: &Path) -> io::Result<AppendFile> {
        ftpdlib::servers::install_log_reopen_signal();
        let signals = ftpdlib::servers::log_reopen_requests();
        let file = open_log(path)?;
        Ok(AppendFile {
            path: path.to_owned(),
            opened: Mutex::new(Opened { file, signals }),
        })
    }

    /// Appends `bytes` in one write, after reopening the path if a SIGUSR1 came since it
    /// was opened. The check comes before each write, so every line written after the
    /// signal goes to the new file and every line before it to the renamed one: none is
    /// lost. A failing write (a full disk) drops the bytes: logging never stops the server.
    pub fn write(&self, bytes: &[u8]) {
        // A thread that panicked while writing left a usable file behind.
        let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        let signals = ftpdlib::servers::log_reopen_requests();
        if signals != opened.signals {
            opened.signals = signals;
            match open_log(&self.path) {
                Ok(new) => opened.file = new,
                // Keep writing to the old file rather than nowhere, and say why on
                // standard error (the log itself may be what cannot be written).
                Err(e) => {
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "ftpdlib: cannot reopen {}: {e}",
                        self.path.display()
                    );
                }
            }
        }
        let _ = opened.file.write_all(bytes);
    }
}

/// Opens `path` for appending, creating it readable by owner and group only: the log
/// names clients' addresses, users and paths. O_APPEND keeps lines of forked processes
/// writing to the same file whole and in order of writing.
fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

/// A thread's waiting lines; a thread that ends after its last flush writes them as its
/// locals are dropped.
struct Pending(RefCell<String>);

impl Drop for Pending {
    fn drop(&mut self) {
        write_out(self.0.get_mut());
    }
}

/// The local time of day, formatted once per second rather than once per line.
struct Stamp {
    second: u64,
    /// `YYYY-MM-DD HH:MM:SS`.
    text: String,
    /// `YYYY-MM-DDTHH:MM:SS+hh:mm`.
    rfc3339: String,
}

impl Stamp {
    fn refresh(&mut self) {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second == self.second && !self.text.is_empty() {
            return;
        }
        let c = ftpdlib::timefmt::civil(now, false);
        self.second = second;
        self.text.clear();
        let _ = write!(
            self.text,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        );
        let offset = ftpdlib::timefmt::utc_offset(now);
        let sign = if offset < 0 { '-' } else { '+' };
        let minutes = offset.unsigned_abs() / 60;
        self.rfc3339.clear();
        let _ = write!(
            self.rfc3339,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
            c.year,
            c.month,
            c.day,
            c.hour,
            c.minute,
            c.second,
            minutes / 60,
            minutes % 60
        );
    }
}

/// Set once by [`init`] with `--log-file`; standard error without it.
static LOG_FILE: OnceLock<AppendFile> = OnceLock::new();

thread_local! {
    /// True once this thread has called `flush`: it flushes every pass of its loop.
    static BATCHING: Cell<bool> = const { Cell::new(false) };
    /// Lines logged by this thread since its last flush.
    static PENDING: Pending = const { Pending(RefCell::new(String::new())) };
    static STAMP: RefCell<Stamp> = const {
        RefCell::new(Stamp {
            second: 0,
            text: String::new(),
            rfc3339: String::new(),
        })
    };
}

/// A pass that logs this much writes it out without waiting for the flush.
const FLUSH_AT: usize = 64 << 10;

/// Buffer kept between passes; a burst's larger buffer is given back.
const KEEP_CAPACITY: usize = 8 << 10;

#[cfg(test)]
mod tests {
    use super::push_json_escaped;

    fn escaped(text: &str) -> String {
        let mut out = String::new();
        push_json_escaped(&mut out, text);
        out
    }

    #[test]
    fn plain_text_is_kept() {
        assert_eq!(escaped("USER 'anna' logged in."), "USER 'anna' logged in.");
        assert_eq!(
            escaped("/srv/ftp/caf\u{e9} \u{2603}"),
            "/srv/ftp/caf\u{e9} \u{2603}"
        );
    }

    #[test]
    fn quote_and_backslash_are_escaped() {
        // RFC 8259 §7: '"' and '\\' must be escaped.
        assert_eq!(escaped(r#"a "b" c\d"#), r#"a \"b\" c\\d"#);
    }

    #[test]
    fn control_characters_are_escaped() {
        // RFC 8259 §7: U+0000 through U+001F must be escaped.
        assert_eq!(escaped("a\nb\rc\td"), r"a\nb\rc\td");
        assert_eq!(escaped("\u{0}\u{1b}\u{1f}"), r"\u0000\u001b\u001f");
        // DEL is not a control character to JSON.
        assert_eq!(escaped("\u{7f}"), "\u{7f}");
    }
}

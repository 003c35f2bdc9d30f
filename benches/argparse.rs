//! A command line parser over a table of options, with the rules of Python's argparse (as
//! Python 3.11 applies them to `python -m pyftpdlib`):
//!
//! - `-p 21`, `-p21`, `-p=21`, `--port 21`, `--port=21`;
//! - switches grouped behind one dash (`-wD`), the group may end in an option that takes a
//!   value (`-wp21`, `-wp 21`);
//! - a long option may be shortened to any prefix that names only it (`--por 21`); an
//!   exact name wins over the longer ones it begins (`--write` vs `--write-limit`), and a
//!   prefix of several is an error naming them;
//! - the argument after an option is its value unless it looks like an option: a
//!   leading `-` makes it one, except in a negative number (`-1`, `-.5`) or with a space;
//! - an option given twice: the last one wins;
//! - `--` ends the options; what follows it is positional, and so refused, as every
//!   positional argument is (`unrecognized arguments: ...`).
//!
//! An error stops the parse and is shown as argparse shows it: the usage line, then
//! `PROG: error: MESSAGE`, on standard error, exit status 2. The option named `help`
//! prints the help (argparse's layout, wrapped to `$COLUMNS` or 80 columns) on standard
//! output, exit status 0.
//!
//! Arguments are bytes (`OsString`): a value that need not be text (a path) is passed on
//! as it came.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::str::FromStr;

/// One option: `-s VALUE, --long VALUE`, or a switch when it takes no value.
pub struct Opt {
    /// The one-letter name (ASCII), if any.
    pub short: Option<u8>,
    /// The long name, without its `--`.
    pub long: &'static str,
    /// The value's name in the help (`PORT`); `None` for a switch.
    pub value: Option<&'static str>,
    /// What it does (one sentence, wrapped when shown).
    pub help: &'static str,
}

/// argparse's `-h/--help`, the first entry of every option table.
pub const HELP: Opt = Opt {
    short: Some(b'h'),
    long: "help",
    value: None,
    help: "show this help message and exit",
};

impl Opt {
    /// argparse's name of the option in messages: `-p/--port`, `--tls`.
    fn name(&self) -> String {
        match self.short {
            Some(s) => format!("-{}/--{}", char::from(s), self.long),
            None => format!("--{}", self.long),
        }
    }

    /// The option as the help shows it: `-p PORT, --port PORT`, `-w, --write`.
    pub fn invocation(&self) -> String {
        let value = self.value.map(|v| format!(" {v}")).unwrap_or_default();
        match self.short {
            Some(s) => format!("-{}{value}, --{}{value}", char::from(s), self.long),
            None => format!("--{}{value}", self.long),
        }
    }
}

/// A program's command line.
pub struct Command {
    /// The program's name, before `: error:`.
    pub prog: &'static str,
    /// The usage line, after `usage: `.
    pub usage: &'static str,
    /// The paragraph after the usage line in the help.
    pub description: &'static str,
    /// The options, in the help's order. The one named `help` shows the help and exits.
    pub options: &'static [Opt],
}

/// Why a parse ended without a command line to run.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Text for standard output, then exit status 0 (`--help`, `--version`).
    Print(String),
    /// An error message; shown after the usage line, exit status 2.
    Error(String),
}

impl From<String> for Exit {
    fn from(message: String) -> Exit {
        Exit::Error(message)
    }
}

/// What an argument is, as argparse decides before it takes any of them.
#[derive(Clone, Copy)]
enum Arg<'a> {
    /// A value, or a positional argument.
    Plain,
    /// `--`.
    End,
    /// Looks like an option, but no option has that name.
    Unknown,
    /// Option `index`; `explicit` is what follows its name in the same argument (`=21` after
    /// `--port`, `21` after `-p`, `D` after `-w`); `dash` says the name was the one-dash
    /// one.
    Option {
        index: usize,
        explicit: Option<&'a [u8]>,
        dash: bool,
    },
}

impl Command {
    /// Parses `args` (without the program's name), handing each option and its value to
    /// `apply` in command-line order. An error of `apply` is about that option: it comes out
    /// as `argument -p/--port: <error>`.
    pub fn parse(
        &self,
        args: &[OsString],
        mut apply: impl FnMut(&Opt, Option<&OsStr>) -> Result<(), Exit>,
    ) -> Result<(), Exit> {
        // Every argument is sorted out first (an ambiguous prefix fails here, wherever it
        // is); after `--`, nothing is an option.
        let mut kinds = Vec::with_capacity(args.len());
        let mut ended = false;
        for arg in args {
            let kind = if ended {
                Arg::Plain
            } else {
                self.classify(arg.as_bytes())?
            };
            ended |= matches!(kind, Arg::End);
            kinds.push(kind);
        }
        let mut extras: Vec<&OsStr> = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let Arg::Option {
                mut index,
                mut explicit,
                dash,
            } = kinds[i]
            else {
                extras.push(&args[i]);
                i += 1;
                continue;
            };
            i += 1;
            // A one-dash group (`-wDp21`) gives several options; all are checked before the
            // first is applied.
            let mut taken: Vec<(usize, Option<&OsStr>)> = Vec::new();
            loop {
                let opt = &self.options[index];
                match explicit {
                    Some(e) if opt.value.is_some() => {
                        taken.push((index, Some(OsStr::from_bytes(e))));
                        break;
                    }
                    Some(e) if dash && !e.is_empty() => {
                        taken.push((index, None));
                        let Some(next) = self.short(e[0]) else {
                            return Err(self.ignored(opt, e));
                        };
                        index = next;
                        explicit = (e.len() > 1).then(|| &e[1..]);
                    }
                    Some(e) => return Err(self.ignored(opt, e)),
                    None if opt.value.is_some() => {
                        if !matches!(kinds.get(i), Some(Arg::Plain)) {
                            let msg = format!("argument {}: expected one argument", opt.name());
                            return Err(Exit::Error(msg));
                        }
                        taken.push((index, Some(&args[i])));
                        i += 1;
                        break;
                    }
                    None => {
                        taken.push((index, None));
                        break;
                    }
                }
            }
            for (index, value) in taken {
                let opt = &self.options[index];
                if opt.long == "help" {
                    return Err(Exit::Print(self.help(columns())));
                }
                apply(opt, value).map_err(|e| match e {
                    Exit::Error(msg) => Exit::Error(format!("argument {}: {msg}", opt.name())),
                    print => print,
                })?;
            }
        }
        if extras.is_empty() {
            return Ok(());
        }
        let extras: Vec<_> = extras.iter().map(|a| a.to_string_lossy()).collect();
        Err(Exit::Error(format!(
            "unrecognized arguments: {}",
            extras.join(" ")
        )))
    }

    /// argparse's `_parse_optional`: whether `arg` is an option, which one, and what
    /// follows its name.
    fn classify<'a>(&self, arg: &'a [u8]) -> Result<Arg<'a>, Exit> {
        if arg.first() != Some(&b'-') {
            return Ok(Arg::Plain);
        }
        if arg == b"--" {
            return Ok(Arg::End);
        }
        let dash = arg.get(1) != Some(&b'-');
        if let Some(index) = self.exact(arg) {
            let explicit = None;
            return Ok(Arg::Option {
                index,
                explicit,
                dash,
            });
        }
        if arg.len() == 1 {
            return Ok(Arg::Plain);
        }
        let eq = arg.iter().position(|&b| b == b'=');
        if let Some(eq) = eq {
            if let Some(index) = self.exact(&arg[..eq]) {
                let explicit = Some(&arg[eq + 1..]);
                return Ok(Arg::Option {
                    index,
                    explicit,
                    dash,
                });
            }
        }
        if !dash {
            let (prefix, explicit) = match eq {
                Some(eq) => (&arg[2..eq], Some(&arg[eq + 1..])),
                None => (&arg[2..], None),
            };
            let matches: Vec<usize> = (0..self.options.len())
                .filter(|&i| self.options[i].long.as_bytes().starts_with(prefix))
                .collect();
            match matches[..] {
                [] => {}
                [index] => {
                    return Ok(Arg::Option {
                        index,
                        explicit,
                        dash,
                    })
                }
                _ => {
                    let names: Vec<String> = matches
                        .iter()
                        .map(|&i| format!("--{}", self.options[i].long))
                        .collect();
                    return Err(Exit::Error(format!(
                        "ambiguous option: {} could match {}",
                        String::from_utf8_lossy(arg),
                        names.join(", ")
                    )));
                }
            }
        } else if let Some(index) = self.short(arg[1]) {
            let explicit = Some(&arg[2..]);
            return Ok(Arg::Option {
                index,
                explicit,
                dash,
            });
        }
        if is_negative_number(&arg[1..]) || arg.contains(&b' ') {
            return Ok(Arg::Plain);
        }
        Ok(Arg::Unknown)
    }

    /// The option spelled exactly `arg` (`-p`, `--port`).
    fn exact(&self, arg: &[u8]) -> Option<usize> {
        match arg {
            [b'-', b'-', long @ ..] => self.options.iter().position(|o| o.long.as_bytes() == long),
            [b'-', short] => self.short(*short),
            _ => None,
        }
    }

    /// The option whose one-letter name is `letter`.
    fn short(&self, letter: u8) -> Option<usize> {
        self.options.iter().position(|o| o.short == Some(letter))
    }

    fn ignored(&self, opt: &Opt, explicit: &[u8]) -> Exit {
        Exit::Error(format!(
            "argument {}: ignored explicit argument {}",
            opt.name(),
            repr(OsStr::from_bytes(explicit))
        ))
    }

    /// The help, wrapped to `columns` as argparse's HelpFormatter does.
    pub fn help(&self, columns: usize) -> String {
        let width = columns as isize - 2;
        let max_help_position = 24.min((width - 20).max(4));
        let invocations: Vec<String> = self.options.iter().map(Opt::invocation).collect();
        let longest = invocations.iter().map(|i| i.len() + 2).max().unwrap_or(0);
        let help_position = (longest as isize + 2).min(max_help_position);
        let help_width = (width - help_position).max(11) as usize;
        let action_width = help_position - 4;
        let help_position = help_position as usize;

        let mut out = format!("usage: {}\n\n", self.usage);
        if !self.description.is_empty() {
            for line in wrap(self.description, width.max(11) as usize) {
                out.push_str(&line);
                out.push('\n');
            }
            out.push('\n');
        }
        out.push_str("options:\n");
        for (opt, invocation) in self.options.iter().zip(&invocations) {
            let lines = wrap(opt.help, help_width);
            let mut lines = lines.iter();
            match lines.next() {
                None => {
                    let _ = writeln!(out, "  {invocation}");
                }
                Some(first) if invocation.len() as isize <= action_width => {
                    let pad = action_width as usize;
                    let _ = writeln!(out, "  {invocation:<pad$}  {first}");
                }
                Some(first) => {
                    let _ = writeln!(out, "  {invocation}\n{:help_position$}{first}", "");
                }
            }
            for line in lines {
                let _ = writeln!(out, "{:help_position$}{line}", "");
            }
        }
        out
    }

    /// Shows `exit` as argparse does and gives the exit status: 0 after `Print`, 2 after an
    /// error.
    pub fn exit(&self, exit: Exit) -> ExitCode {
        // Write errors (a closed pipe) are ignored: there is nothing left to tell.
        match exit {
            Exit::Print(text) => {
                let _ = std::io::stdout().write_all(text.as_bytes());
                ExitCode::SUCCESS
            }
            Exit::Error(message) => {
                let text = format!("usage: {}\n{}: error: {message}\n", self.usage, self.prog);
                let _ = std::io::stderr().write_all(text.as_bytes());
                ExitCode::from(2)
            }
        }
    }
}

/// The width of the help: `$COLUMNS` if it is a number from 1 to 65535, else 80.
pub fn columns() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|&c| c > 0)
        .map_or(80, usize::from)
}

/// argparse's negative number, after the `-`: `1`, `10`, `.5`, `1.5`.
fn is_negative_number(s: &[u8]) -> bool {
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(dot) => (&s[..dot], Some(&s[dot + 1..])),
        None => (s, None),
    };
    let digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    match frac {
        None => !int.is_empty() && digits(int),
        Some(frac) => digits(int) && !frac.is_empty() && digits(frac),
    }
}

/// `s` quoted as Python's `repr()` quotes a string (`'x'`, `"it's"`); a byte that is not
/// UTF-8 shows as `\xNN`.
pub fn repr(s: &OsStr) -> String {
    let bytes = s.as_bytes();
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push(quote);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if c == quote => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_control() || (c.is_whitespace() && c != ' ') => {
                    let _ = match u32::from(c) {
                        n @ 0..=0xff => write!(out, "\\x{n:02x}"),
                        n @ 0..=0xffff => write!(out, "\\u{n:04x}"),
                        n => write!(out, "\\U{n:08x}"),
                    };
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push(quote);
    out
}

/// `value` as UTF-8 text, or argparse's error for a value of type `what`.
pub fn text<'a>(value: &'a OsStr, what: &str) -> Result<&'a str, String> {
    value
        .to_str()
        .ok_or_else(|| format!("invalid {what} value: {}", repr(value)))
}

/// `value` converted with `FromStr`, or argparse's error for a value of type `what`
/// (`invalid int value: 'x'`).
pub fn parse<T: FromStr>(value: &OsStr, what: &str) -> Result<T, String> {
    text(value, what)?
        .parse()
        .map_err(|_| format!("invalid {what} value: {}", repr(value)))
}

/// The one of `choices` named `value`, or argparse's error listing them.
pub fn choice<T: Copy>(value: &OsStr, choices: &[(&str, T)]) -> Result<T, String> {
    let found = choices
        .iter()
        .find(|(name, _)| name.as_bytes() == value.as_bytes());
    found.map(|&(_, v)| v).ok_or_else(|| {
        let names: Vec<String> = choices
            .iter()
            .map(|(name, _)| repr(OsStr::new(name)))
            .collect();
        format!(
            "invalid choice: {} (choose from {})",
            repr(value),
            names.join(", ")
        )
    })
}

/// Python's `textwrap.wrap(text, width)` as argparse calls it: whitespace runs become one
/// space, lines break between words or after the hyphen of a hyphenated word
/// (`read-` / `only`), and a word longer than a line is cut.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    // The chunks, in reverse so that the next one is popped from the end; " " between
    // words.
    let mut chunks: Vec<Vec<char>> = Vec::new();
    let words = text.split([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    for word in words.filter(|w| !w.is_empty()) {
        if !chunks.is_empty() {
            chunks.push(vec![' ']);
        }
        chunks.extend(word_chunks(word));
    }
    chunks.reverse();
    let mut lines = Vec::new();
    while !chunks.is_empty() {
        if !lines.is_empty() && chunks.last().is_some_and(|c| c == &[' ']) {
            chunks.pop();
        }
        let mut line: Vec<char> = Vec::new();
        while let Some(chunk) = chunks.last() {
            if line.len() + chunk.len() > width {
                break;
            }
            line.extend(chunk);
            chunks.pop();
        }
        let mut cut = false;
        if let Some(chunk) = chunks.last_mut() {
            if chunk.len() > width {
                // A word longer than a line: as much as fits, after its last hyphen if
                // that hyphen has something other than hyphens before it.
                let space = width - line.len();
                let mut end = space;
                if let Some(h) = chunk[..space].iter().rposition(|&c| c == '-') {
                    if h > 0 && chunk[..h].iter().any(|&c| c != '-') {
                        end = h + 1;
                    }
                }
                line.extend(chunk.drain(..end));
                cut = true;
            }
        }
        // textwrap drops the line's last chunk if it is a space; after a cut, that chunk
        // is the cut piece (empty when the line was full), so a space stays.
        if !cut && line.last() == Some(&' ') {
            line.pop();
        }
        if !line.is_empty() {
            lines.push(line.into_iter().collect());
        }
    }
    lines
}

/// textwrap's pieces of one word (its `wordsep_re`): a piece ends after a hyphen with two
/// letters before it (or a letter, a hyphen and a letter) and a letter, maybe a hyphen,
/// and a letter after it (`read-` / `only`); a run of hyphens between word characters
/// (`a--b`) is a piece of its own. A letter is a word character that is not a digit.
fn word_chunks(word: &str) -> Vec<Vec<char>> {
    let c: Vec<char> = word.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or(' ');
    let w = |i: usize| at(i).is_alphanumeric() || at(i) == '_';
    let letter = |i: usize| w(i) && !at(i).is_numeric();
    let punct = |i: usize| w(i) || "!\"'&.,?".contains(at(i));
    let hyphen = |i: usize| at(i) == '-';
    // The hyphens from `i` on, if there are two or more and a word character follows.
    let dashes = |i: usize| {
        let n = c[i.min(c.len())..]
            .iter()
            .take_while(|&&c| c == '-')
            .count();
        (n >= 2 && w(i + n)).then_some(n)
    };
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < c.len() {
        if start > 0 && punct(start - 1) {
            if let Some(n) = dashes(start) {
                chunks.push(c[start..start + n].to_vec());
                start += n;
                continue;
            }
        }
        let mut end = start + 1;
        while end < c.len() {
            let before = letter(end - 1)
                && (letter(end.wrapping_sub(2))
                    || (end >= 3 && hyphen(end - 2) && letter(end - 3)));
            let after =
                letter(end + 1) && (letter(end + 2) || (hyphen(end + 2) && letter(end + 3)));
            if hyphen(end) && end >= 2 && before && after {
                end += 1;
                break;
            }
            if punct(end - 1) && dashes(end).is_some() {
                break;
            }
            end += 1;
        }
        chunks.push(c[start..end].to_vec());
        start = end;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_follows_textwrap() {
        assert_eq!(wrap("  a  b\tc\n", 10), ["a b c"]);
        assert_eq!(wrap("", 10), Vec::<String>::new());
        // Hyphenated words break after a hyphen between letters, not between digits.
        assert_eq!(
            wrap("access (default read-only)", 22),
            ["access (default read-", "only)"]
        );
        assert_eq!(wrap("range 8000-9000", 12), ["range", "8000-9000"]);
        assert_eq!(wrap("see --hash-password", 12), ["see --hash-", "password"]);
        // A word longer than the line is cut, after a hyphen if one fits.
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("1-abcdefgh", 5), ["1-", "abcde", "fgh"]);
        assert_eq!(wrap("ab-cdefghij", 5), ["ab-cd", "efghi", "j"]);
        // A run of hyphens between words is a piece of its own.
        assert_eq!(word_chunks("a--b"), [vec!['a'], vec!['-', '-'], vec!['b']]);
        // textwrap keeps a space at the end of a full line before a cut word.
        assert_eq!(
            wrap("xx('.ba- -a--(--1x_", 3),
            ["xx(", "'.b", "a- ", "-a-", "-(-", "-1x", "_"]
        );
    }

    #[test]
    fn python_repr() {
        let r = |s: &str| repr(OsStr::new(s));
        assert_eq!(r("x"), "'x'");
        assert_eq!(r(""), "''");
        assert_eq!(r("it's"), "\"it's\"");
        assert_eq!(r("'\""), "'\\'\"'");
        assert_eq!(r("a\\b\tc\nd\u{1}"), "'a\\\\b\\tc\\nd\\x01'");
        assert_eq!(r("caf\u{e9}"), "'caf\u{e9}'");
        assert_eq!(repr(OsStr::from_bytes(b"a\xffb")), "'a\\xffb'");
    }

    #[test]
    fn negative_numbers() {
        for yes in ["1", "10", ".5", "1.5", "0.0"] {
            assert!(is_negative_number(yes.as_bytes()), "{yes}");
        }
        for no in ["", ".", "1.", "1e3", "x", "1.2.3", "+1", "1 "] {
            assert!(!is_negative_number(no.as_bytes()), "{no}");
        }
    }
}

//! The help in the layout of Python's argparse (`python -m pyftpdlib -h`): the usage line,
//! the description, then the options in pyftpdlib's groups (main, FTPS, other), each as
//! `-p PORT, --port PORT` with its text in a column, wrapped to `$COLUMNS` as argparse's
//! HelpFormatter does. clap's own help has another layout (`-p, --port <PORT>`), so it is
//! drawn here from clap's declaration of the options; the wrapping is Python's `textwrap`,
//! for which no crate breaks lines at the same places.

use std::fmt::Write as _;

use clap::{Arg, Command};

use crate::parse::USAGE;

/// The help for `cmd`, `columns` wide.
pub fn render(cmd: &Command, columns: usize) -> String {
    let width = columns as isize - 2;
    let max_help_position = 24.min((width - 20).max(4));
    let args: Vec<&Arg> = cmd.get_arguments().filter(|a| !a.is_hide_set()).collect();
    let invocations: Vec<String> = args.iter().map(|a| invocation(a)).collect();
    let longest = invocations.iter().map(|i| i.len() + 2).max().unwrap_or(0);
    let help_position = (longest as isize + 2).min(max_help_position);
    let help_width = (width - help_position).max(11) as usize;
    let action_width = help_position - 4;
    let help_position = help_position as usize;
    let text_width = width.max(11) as usize;

    let mut out = format!("usage: {USAGE}\n");
    let paragraph = |out: &mut String, text: &str| {
        out.push('\n');
        for line in wrap(text, text_width) {
            let _ = writeln!(out, "{line}");
        }
    };
    if let Some(about) = cmd.get_about() {
        paragraph(&mut out, &about.to_string());
    }
    // The groups in the order their first option comes; argparse's own ("options") holds
    // the options of none.
    let mut headings: Vec<Option<&str>> = Vec::new();
    for arg in &args {
        if !headings.contains(&arg.get_help_heading()) {
            headings.push(arg.get_help_heading());
        }
    }
    for heading in headings {
        let _ = writeln!(out, "\n{}:", heading.unwrap_or("options"));
        let members = args.iter().zip(&invocations);
        for (arg, invocation) in members.filter(|(a, _)| a.get_help_heading() == heading) {
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let lines = wrap(&help, help_width);
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
    }
    if let Some(after) = cmd.get_after_help() {
        paragraph(&mut out, &after.to_string());
    }
    out
}

/// The option as the help shows it: `-p PORT, --port PORT`, `-w, --write`.
pub fn invocation(arg: &Arg) -> String {
    let value = match arg.get_value_names() {
        Some([name, ..]) if arg.get_action().takes_values() => format!(" {name}"),
        _ => String::new(),
    };
    let long = arg.get_long().unwrap_or_default();
    match arg.get_short() {
        Some(s) => format!("-{s}{value}, --{long}{value}"),
        None => format!("--{long}{value}"),
    }
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
}

//! What a package ships beside the binary, generated from the same option definitions as
//! the command line ([`Cli`]): `--completions SHELL` prints a shell's completion script
//! (clap_complete), `--man` the manual page in roff (clap_mangen). The copies in `dist/`
//! (`dist/ftpdlib.1`, `dist/completions/`) are these outputs, and a test keeps them so.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// `--completions` / `--man`: what to print instead of serving, if either was given.
pub fn requested(cli: &Cli) -> Option<Vec<u8>> {
    if let Some(shell) = cli.completions {
        return Some(completions(shell));
    }
    cli.man.then(man_page)
}

/// Prints what [`requested`] made.
///
/// # Errors
/// When standard output cannot be written.
pub fn print(text: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text)?;
    out.flush()
}

/// The completion script for `shell`.
fn completions(shell: Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, PROG, &mut script);
    script
}

/// The manual page, section 1, in roff: the options as clap knows them, the help's
/// closing note as ENVIRONMENT (clap_mangen would call it EXTRA), then what the options
/// do not say (signals, files, exit status).
fn man_page() -> Vec<u8> {
    let man = clap_mangen::Man::new(Cli::command())
        .section("1")
        .manual("ftpdlib manual");
    let mut page = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = man
        .render_title(&mut page)
        .and_then(|()| man.render_name_section(&mut page))
        .and_then(|()| man.render_synopsis_section(&mut page))
        .and_then(|()| man.render_description_section(&mut page))
        .and_then(|()| man.render_options_section(&mut page));
    let mut environment = Vec::new();
    let _ = man.render_extra_section(&mut environment);
    let environment =
        String::from_utf8_lossy(&environment).replacen(".SH EXTRA", ".SH ENVIRONMENT", 1);
    page.extend_from_slice(environment.as_bytes());
    page.extend_from_slice(MAN_SIGNALS_AND_FILES.as_bytes());
    let _ = man.render_version_section(&mut page);
    page
}

/// The page's sections after the options, in roff.
const MAN_SIGNALS_AND_FILES: &str = r#".SH SIGNALS
.TP
\fBSIGTERM\fR, \fBSIGINT\fR
The first stops gracefully: no new sessions, idle ones end, running transfers finish. A second one closes everything at once.
.TP
\fBSIGHUP\fR
Reloads: the command line's options, the \fB\-\-config\fR file, the \fB\-\-users\-file\fR and the FTPS certificate and key are read again for new sessions; running sessions keep their settings. A reload that fails is logged and changes nothing. The listen address, the concurrency model, the limits and the log destinations need a restart.
.TP
\fBSIGUSR1\fR
Reopens \fB\-\-log\-file\fR and \fB\-\-xferlog\fR (after logrotate renamed them).
.SH FILES
.TP
\fI/etc/ftpdlib.toml\fR
A config file, when given with \fB\-\-config\fR (an example: dist/ftpdlib.toml).
.TP
\fIftpdlib.service\fR, \fIftpdlib.socket\fR
The systemd units (dist/systemd/): socket activation, sd_notify, \fBsystemctl reload\fR.
.SH EXIT STATUS
0 after a stop; 2 for a mistake on the command line or in the config file, or when the server cannot start.
"#;

/// The program's name in the scripts and the page.
const PROG: &str = "ftpdlib";

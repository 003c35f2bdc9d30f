//! `--report TSV --svg OUT`: the `--tsv` lines of several servers' runs as one markdown
//! table (on standard output) and an SVG bar chart, the first server being the one the
//! others are compared with. Several runs of a row give their median.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

use crate::units::median;

/// Reads the `--tsv` lines in `tsv`, prints the table and writes the chart to `svg`.
pub fn report(tsv: &Path, svg: Option<&Path>) -> io::Result<()> {
    let text = fs::read_to_string(tsv)?;
    let mut servers: Vec<String> = Vec::new();
    let mut metrics: Vec<(String, String)> = Vec::new();
    let mut cells: HashMap<(String, String), Row> = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 4 {
            continue;
        }
        let (label, what, unit) = (f[0].to_owned(), f[1].to_owned(), f[3].to_owned());
        let value: f64 = f[2].parse().unwrap_or(f64::NAN);
        if !servers.contains(&label) {
            servers.push(label.clone());
        }
        if !metrics.iter().any(|(w, _)| *w == what) {
            metrics.push((what.clone(), unit));
        }
        let row = cells.entry((label, what)).or_insert(Row {
            values: Vec::new(),
            note: String::new(),
        });
        row.values.push(value);
        if let Some(n) = f.get(6).filter(|n| !n.is_empty()) {
            row.note = (*n).to_owned();
        }
    }
    let base = servers.first().cloned().unwrap_or_default();
    let get = |s: &str, w: &str| cells.get(&(s.to_owned(), w.to_owned()));

    // markdown
    let mut md = String::new();
    let _ = write!(md, "| workload | unit |");
    for s in &servers {
        let _ = write!(md, " {s} |");
    }
    md.push_str("\n|---|---|");
    for _ in &servers {
        md.push_str("---:|");
    }
    md.push('\n');
    let mut notes = Vec::new();
    for (what, unit) in &metrics {
        let _ = write!(md, "| {} | {unit} |", what.replace('|', "\\|"));
        let ours = get(&base, what).map(|r| median(&r.values));
        for s in &servers {
            let Some(r) = get(s, what) else {
                md.push_str(" – |");
                continue;
            };
            let v = median(&r.values);
            let mut cell = fmt_value(v);
            if *s != base {
                if let Some(o) = ours.filter(|o| o.is_finite() && *o != 0.0) {
                    let a = advantage(unit, o, v);
                    if a.is_finite() {
                        let _ = write!(cell, " (×{})", fmt_value(a));
                    }
                }
            }
            if !r.note.is_empty() {
                notes.push(format!("{s}, {what}: {}", r.note));
                let _ = write!(cell, " [{}]", notes.len());
            }
            let _ = write!(md, " {cell} |");
        }
        md.push('\n');
    }
    if servers.len() > 1 {
        let _ = writeln!(
            md,
            "\n(×r) = how many times better {base} is than that server on the row \
             (> 1: {base} ahead, < 1: behind). MB/sec: higher is better; secs, ms, usec, \
             bytes: lower is better. Values are medians over the runs."
        );
    }
    for (i, n) in notes.iter().enumerate() {
        let _ = writeln!(md, "\n[{}] {n}", i + 1);
    }
    print!("{md}");

    // svg: one panel per workload, two columns, one bar per server
    if let Some(path) = svg {
        const PALETTE: [&str; 8] = [
            "#d9480f", "#4263eb", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#495057", "#c2255c",
        ];
        let (col_w, bar_h, gap) = (560.0, 16.0, 4.0);
        let label_w = 90.0;
        let bar_max = col_w - label_w - 110.0;
        let panel_h = 30.0 + servers.len() as f64 * (bar_h + gap) + 14.0;
        let rows = metrics.len().div_ceil(2);
        let (w, top) = (col_w * 2.0 + 30.0, 60.0);
        let h = top + rows as f64 * panel_h + 20.0;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="15" y="24" font-size="16" font-weight="bold">ftpbench: {} vs peers (same machine, same run; * = incomplete, see the table notes)</text>"#,
            xml_escape(&base)
        );
        let mut x = 15.0;
        for (i, srv) in servers.iter().enumerate() {
            let _ = writeln!(
                s,
                r#"<rect x="{x}" y="36" width="12" height="12" fill="{}"/><text x="{}" y="46">{}</text>"#,
                PALETTE[i % PALETTE.len()],
                x + 16.0,
                xml_escape(srv)
            );
            x += 24.0 + 7.5 * srv.len() as f64;
        }
        for (mi, (what, unit)) in metrics.iter().enumerate() {
            let px = 15.0 + (mi % 2) as f64 * (col_w + 10.0);
            let py = top + (mi / 2) as f64 * panel_h;
            let better = if unit == "%" {
                "what happened"
            } else if higher_is_better(unit) {
                "higher is better"
            } else {
                "lower is better"
            };
            let vals: Vec<f64> = servers
                .iter()
                .map(|srv| get(srv, what).map_or(f64::NAN, |r| median(&r.values)))
                .collect();
            let max = vals
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(0.0, f64::max);
            let min = vals
                .iter()
                .copied()
                .filter(|v| v.is_finite() && *v > 0.0)
                .fold(f64::INFINITY, f64::min);
            // values spanning more than two decades: log scale, a decade below the smallest
            let log_lo = (max / min > 100.0).then(|| min.log10() - 1.0);
            let scale = if log_lo.is_some() { ", log scale" } else { "" };
            let _ = writeln!(
                s,
                r##"<text x="{px}" y="{}" font-weight="bold">{} <tspan font-weight="normal" fill="#666">({unit}, {better}{scale})</tspan></text>"##,
                py + 18.0,
                xml_escape(what)
            );
            for (si, srv) in servers.iter().enumerate() {
                let y = py + 26.0 + si as f64 * (bar_h + gap);
                let v = vals[si];
                let _ = writeln!(
                    s,
                    r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                    px + label_w - 6.0,
                    y + 12.0,
                    xml_escape(srv)
                );
                if v.is_finite() && max > 0.0 {
                    let frac = match log_lo {
                        Some(lo) if v > 0.0 => (v.log10() - lo) / (max.log10() - lo),
                        Some(_) => 0.0,
                        None => v / max,
                    };
                    let bw = (frac * bar_max).max(1.0);
                    let mark = if get(srv, what).is_some_and(|r| !r.note.is_empty()) {
                        " *"
                    } else {
                        ""
                    };
                    let _ = writeln!(
                        s,
                        r#"<rect x="{}" y="{y}" width="{bw:.1}" height="{bar_h}" fill="{}"/><text x="{}" y="{}">{}</text>"#,
                        px + label_w,
                        PALETTE[si % PALETTE.len()],
                        px + label_w + bw + 4.0,
                        y + 12.0,
                        fmt_value(v) + mark
                    );
                } else {
                    let _ = writeln!(
                        s,
                        r##"<text x="{}" y="{}" fill="#999">–</text>"##,
                        px + label_w + 4.0,
                        y + 12.0
                    );
                }
            }
        }
        s.push_str("</svg>\n");
        fs::write(path, s)?;
    }
    Ok(())
}

/// The runs of one workload on one server.
struct Row {
    values: Vec<f64>,
    note: String,
}

fn higher_is_better(unit: &str) -> bool {
    unit == "MB/sec"
}

/// Three significant digits or so.
fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        "n/a".into()
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.1 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// ftpdlib's advantage over a peer: > 1 means ftpdlib is ahead.
fn advantage(unit: &str, ours: f64, theirs: f64) -> f64 {
    // A share (of TLS handshakes resumed) says what happened, not who did better.
    if !(ours > 0.0 && theirs > 0.0) || unit == "%" {
        f64::NAN
    } else if higher_is_better(unit) {
        ours / theirs
    } else {
        theirs / ours
    }
}

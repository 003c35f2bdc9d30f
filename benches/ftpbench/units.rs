//! Sizes as pyftpdlib writes them, and the statistics of the results.

use std::time::Duration;

/// pyftpdlib's human2bytes: '10M' → 10 MiB (1024-based); a bare number is bytes.
pub fn human2bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, letter) = match s.chars().last()? {
        c if c.is_ascii_alphabetic() => (&s[..s.len() - 1], c.to_ascii_uppercase()),
        _ => (s, 'B'),
    };
    let pow = "BKMGTPEZY".find(letter)?;
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then(|| (n * 1024f64.powi(pow as i32)) as u64)
}

/// pyftpdlib's bytes2human: 10485760 → "10.0M".
pub fn bytes2human(n: u64) -> String {
    const SYMBOLS: &[u8] = b"KMGTPEZY";
    for (i, s) in SYMBOLS.iter().enumerate().rev() {
        let prefix = 1u128 << ((i + 1) * 10);
        if u128::from(n) >= prefix {
            return format!("{:.1}{}", n as f64 / prefix as f64, *s as char);
        }
    }
    format!("{:.1}B", n as f64)
}

/// `"; note"`, or nothing for an empty note.
pub fn sep_note(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!("; {note}")
    }
}

/// Nearest-rank percentile of sorted durations, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

/// The median of the finite values; NaN when there is none.
pub fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

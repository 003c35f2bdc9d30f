//! Time formatting for FTP replies and listings: the `YYYYMMDDHHMMSS` timestamps of
//! RFC 3659 (MDTM, MFMT, the MLSx `modify` fact) and the `ls -l` date column of LIST.
//!
//! UTC conversion is pure arithmetic (days-from-civil); local time goes through
//! `localtime_r` in the crate's `sys` module, except in a zone with one fixed offset (UTC,
//! as on most servers, or `Etc/GMT-5`), which is read from /etc/localtime once and then
//! applied by arithmetic: glibc reads the zone file through stdio, which alone maps some
//! 200 KiB of the C library into a process that has no other use for it. Times before 1970
//! are supported and never panic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::sys;

/// A broken-down calendar time (proleptic Gregorian), either UTC or local.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Civil {
    /// Full year, e.g. 2024 (may be negative for absurd times).
    pub year: i32,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of the month, 1..=31.
    pub day: u8,
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute, 0..=59.
    pub minute: u8,
    /// Second, 0..=60 (60 only for a leap second reported by the local time zone).
    pub second: u8,
}

/// Breaks `t` down into calendar fields, in UTC when `use_gmt` is true and in the
/// process's local time zone otherwise (falling back to UTC if the C library cannot
/// convert the time).
pub fn civil(t: SystemTime, use_gmt: bool) -> Civil {
    let secs = unix_seconds(t);
    if !use_gmt {
        if let Some(offset) = fixed_local_offset() {
            return utc_civil(secs.saturating_add(i64::from(offset)));
        }
        if let Some(t) = sys::localtime(secs) {
            return Civil {
                year: t.year,
                month: t.month,
                day: t.day,
                hour: t.hour,
                minute: t.minute,
                second: t.second,
            };
        }
    }
    utc_civil(secs)
}

/// The local zone's offset from UTC in seconds when it never changes: `TZ` unset (glibc
/// then uses /etc/localtime) and /etc/localtime a zone with a single offset, no
/// transitions, no leap seconds and no daylight-saving rule. `None` sends every
/// conversion to the C library.
fn fixed_local_offset() -> Option<i32> {
    static OFFSET: std::sync::OnceLock<Option<i32>> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        if std::env::var_os("TZ").is_some() {
            return None;
        }
        // Zone files are a few KiB; the cap keeps an odd /etc/localtime from costing more.
        let mut data = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::fs::File::open("/etc/localtime").ok()?, 1 << 20),
            &mut data,
        )
        .ok()?;
        tzif_fixed_offset(&data)
    })
}

/// The offset of a TZif zone file (RFC 8536) that has exactly one local time type and no
/// transitions or leap seconds, and whose footer rule (version 2 and later) is that same
/// offset with no daylight-saving part; `None` for any other zone or a malformed file.
pub(crate) fn tzif_fixed_offset(data: &[u8]) -> Option<i32> {
    const HEADER: usize = 44;
    let be32 = |at: usize| -> Option<u32> {
        let b = data.get(at..at.checked_add(4)?)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    // (isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt) of the header at `at`.
    let counts = |at: usize| -> Option<[usize; 6]> {
        if data.get(at..at + 4)? != b"TZif" {
            return None;
        }
        let mut c = [0usize; 6];
        for (i, n) in c.iter_mut().enumerate() {
            *n = usize::try_from(be32(at + 20 + 4 * i)?).ok()?;
        }
        Some(c)
    };
    let block_len = |c: &[usize; 6], time_size: usize| -> Option<usize> {
        let [isut, isstd, leap, time, types, chars] = *c;
        time.checked_mul(time_size + 1)?
            .checked_add(types.checked_mul(6)?)?
            .checked_add(chars)?
            .checked_add(leap.checked_mul(time_size + 4)?)?
            .checked_add(isstd)?
            .checked_add(isut)
    };
    let version = *data.get(4)?;
    let v1 = counts(0)?;
    let (c, block, footer) = if version == 0 {
        (v1, HEADER, None)
    } else {
        // Version 2+: a second header and data block with 64-bit times, then the footer.
        let second = HEADER.checked_add(block_len(&v1, 4)?)?;
        let c = counts(second)?;
        let block = second + HEADER;
        let end = block.checked_add(block_len(&c, 8)?)?;
        (c, block, Some(data.get(end..)?))
    };
    let [_, _, leap, time, types, _] = c;
    if leap != 0 || time != 0 || types != 1 {
        return None;
    }
    let offset = i32::from_be_bytes(be32(block)?.to_be_bytes());
    let isdst = *data.get(block + 4)?;
    if isdst != 0 {
        return None;
    }
    if let Some(footer) = footer {
        // "\n<rule>\n"; an empty rule says nothing. A rule must be a plain standard time
        // (`UTC0`, `<+05>-5`) whose offset is the one above.
        let rule = footer.strip_prefix(b"\n")?;
        let rule = &rule[..rule.iter().position(|&b| b == b'\n')?];
        if !rule.is_empty() && posix_fixed_offset(rule)? != offset {
            return None;
        }
    }
    Some(offset)
}

/// The UTC offset of a POSIX TZ rule that is only a standard time (`EST5`, `<-03>3`,
/// `UTC0`); `None` when it has a daylight-saving part or is malformed.
fn posix_fixed_offset(rule: &[u8]) -> Option<i32> {
    let rest = if let Some(quoted) = rule.strip_prefix(b"<") {
        let close = quoted.iter().position(|&b| b == b'>')?;
        &quoted[close + 1..]
    } else {
        let letters = rule.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        if letters < 3 {
            return None;
        }
        &rule[letters..]
    };
    // [+-]hh[:mm[:ss]], west of Greenwich positive: the negation of the offset.
    let (sign, digits) = match rest.first()? {
        b'-' => (1, &rest[1..]),
        b'+' => (-1, &rest[1..]),
        _ => (-1, rest),
    };
    let mut seconds = 0i32;
    for (i, part) in digits.split(|&b| b == b':').enumerate() {
        if i == 3 || part.is_empty() || part.len() > 3 || !part.iter().all(u8::is_ascii_digit) {
            return None; // anything after the offset (a DST name, a rule) lands here too
        }
        let n = part
            .iter()
            .fold(0i32, |acc, d| acc * 10 + i32::from(d - b'0'));
        seconds += n * [3600, 60, 1][i];
    }
    Some(sign * seconds)
}

/// Formats `t` as `YYYYMMDDHHMMSS`, the form used by the MDTM reply and the MLSx
/// `modify` fact (RFC 3659 §2.3).
pub fn mdtm(t: SystemTime, use_gmt: bool) -> String {
    let c = civil(t, use_gmt);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Parses an MFMT timestamp: exactly 14 ASCII digits `YYYYMMDDHHMMSS`, always read as
/// UTC. Returns `None` for anything else, including impossible dates such as month 13,
/// February 30th or second 60 (pyftpdlib rejects these through `datetime.strptime`).
pub fn parse_mfmt(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 14 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> u32 {
        b[r].iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let (year, month, day) = (num(0..4), num(4..6), num(6..8));
    let (hour, minute, second) = (num(8..10), num(10..12), num(12..14));
    if year == 0
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(i64::from(year), month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs =
        days * SECS_PER_DAY + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    Some(from_unix_seconds(secs))
}

/// The date column of an `ls -l` style LIST line: `"Jan 02 15:04"`, or
/// `"Jan 02  2020"` when `mtime` is more than 180 days before `now` (future times show
/// the clock time). As in pyftpdlib, a modification time before the year 1900 is
/// replaced by `now`.
pub fn list_date(mtime: SystemTime, now: SystemTime, use_gmt: bool) -> String {
    let c = civil(mtime, use_gmt);
    if c.year < 1900 {
        let n = civil(now, use_gmt);
        return format!(
            "{} {:02} {:02}:{:02}",
            month_name(n.month),
            n.day,
            n.hour,
            n.minute
        );
    }
    let age = signed_nanos(now) - signed_nanos(mtime);
    if age > SIX_MONTHS_NANOS {
        format!("{} {:02}  {}", month_name(c.month), c.day, c.year)
    } else {
        format!(
            "{} {:02} {:02}:{:02}",
            month_name(c.month),
            c.day,
            c.hour,
            c.minute
        )
    }
}

/// Seconds since the Unix epoch, rounded towards negative infinity (as Python's
/// `time.gmtime` does), saturating at the `i64` range.
pub(crate) fn unix_seconds(t: SystemTime) -> i64 {
    unix_parts(t).0
}

/// `t` as (floored seconds, nanoseconds 0..1e9) relative to the epoch.
pub(crate) fn unix_parts(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            let s = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (-s, 0),
                n => ((-s).saturating_sub(1), NANOS_PER_SEC - n),
            }
        }
    }
}

fn from_unix_seconds(secs: i64) -> SystemTime {
    let d = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

fn signed_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => i128::try_from(e.duration().as_nanos()).map_or(i128::MIN, |n| -n),
    }
}

fn utc_civil(secs: i64) -> Civil {
    let days = secs.div_euclid(SECS_PER_DAY);
    let rem = secs.rem_euclid(SECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let year = i32::try_from(y).unwrap_or(if y < 0 { i32::MIN } else { i32::MAX });
    // rem is in 0..86400, so each field fits in a u8.
    Civil {
        year,
        month: m,
        day: d,
        hour: (rem / 3600) as u8,
        minute: (rem % 3600 / 60) as u8,
        second: (rem % 60) as u8,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: (year, month 1..=12, day 1..=31).
fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // d is in 1..=31 and m in 1..=12 by construction.
    (y, m as u8, d as u8)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

fn month_name(month: u8) -> &'static str {
    MONTHS
        .get(usize::from(month).wrapping_sub(1))
        .copied()
        .unwrap_or("???")
}

const SECS_PER_DAY: i64 = 86_400;
const NANOS_PER_SEC: u32 = 1_000_000_000;
const SIX_MONTHS_NANOS: i128 = 180 * 86_400 * 1_000_000_000;
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> SystemTime {
        from_unix_seconds(secs)
    }

    /// A TZif file: `types` as (utoff, isdst), `transitions` transition times (each to
    /// type 0), `leaps` leap-second records; version 2 with `footer` when it is `Some`.
    fn tzif(
        types: &[(i32, u8)],
        transitions: &[i64],
        leaps: usize,
        footer: Option<&str>,
    ) -> Vec<u8> {
        let block = |wide: bool| {
            let mut b = Vec::new();
            for t in transitions {
                if wide {
                    b.extend_from_slice(&t.to_be_bytes());
                } else {
                    b.extend_from_slice(&(*t as i32).to_be_bytes());
                }
            }
            b.extend(std::iter::repeat(0u8).take(transitions.len()));
            for (off, dst) in types {
                b.extend_from_slice(&off.to_be_bytes());
                b.extend_from_slice(&[*dst, 0]);
            }
            b.extend_from_slice(b"UTC\0");
            for _ in 0..leaps {
                b.extend(std::iter::repeat(0u8).take(if wide { 12 } else { 8 }));
            }
            b
        };
        let header = |version: u8| {
            let mut h = b"TZif".to_vec();
            h.push(version);
            h.extend_from_slice(&[0; 15]);
            for n in [0, 0, leaps, transitions.len(), types.len(), 4] {
                h.extend_from_slice(&(n as u32).to_be_bytes());
            }
            h
        };
        let version = if footer.is_some() { b'2' } else { 0 };
        let mut f = header(version);
        f.extend(block(false));
        if let Some(rule) = footer {
            f.extend(header(version));
            f.extend(block(true));
            f.extend_from_slice(format!("\n{rule}\n").as_bytes());
        }
        f
    }

    #[test]
    fn fixed_offset_zones_are_recognised() {
        assert_eq!(
            tzif_fixed_offset(&tzif(&[(0, 0)], &[], 0, Some("UTC0"))),
            Some(0)
        );
        assert_eq!(tzif_fixed_offset(&tzif(&[(0, 0)], &[], 0, None)), Some(0));
        assert_eq!(
            tzif_fixed_offset(&tzif(&[(0, 0)], &[], 0, Some(""))),
            Some(0)
        );
        assert_eq!(
            tzif_fixed_offset(&tzif(&[(18000, 0)], &[], 0, Some("<+05>-5"))),
            Some(18000)
        );
        assert_eq!(
            tzif_fixed_offset(&tzif(&[(-16200, 0)], &[], 0, Some("<-0430>4:30"))),
            Some(-16200)
        );
        assert_eq!(
            tzif_fixed_offset(&tzif(&[(-18000, 0)], &[], 0, Some("EST5"))),
            Some(-18000)
        );
    }

    #[test]
    fn zones_that_change_are_left_to_the_c_library() {
        // a transition, two types, a daylight-saving type, leap seconds
        assert_eq!(
            tzif_fixed_offset(&tzif(&[(0, 0)], &[1000], 0, Some("UTC0"))),
            None
        );
        assert_eq!(
            tzif_fixed_offset(&tzif(&[(0, 0), (3600, 1)], &[], 0, Some("UTC0"))),
            None
        );
        assert_eq!(tzif_fixed_offset(&tzif(&[(3600, 1)], &[], 0, None)), None);
        assert_eq!(
            tzif_fixed_offset(&tzif(&[(0, 0)], &[], 1, Some("UTC0"))),
            None
        );
        // a footer with a daylight-saving rule, or another offset than the type's
        let dst = "EST5EDT,M3.2.0,M11.1.0";
        assert_eq!(
            tzif_fixed_offset(&tzif(&[(-18000, 0)], &[], 0, Some(dst))),
            None
        );
        assert_eq!(
            tzif_fixed_offset(&tzif(&[(-18000, 0)], &[], 0, Some("EST5EDT"))),
            None
        );
        assert_eq!(
            tzif_fixed_offset(&tzif(&[(0, 0)], &[], 0, Some("EST5"))),
            None
        );
        assert_eq!(
            tzif_fixed_offset(&tzif(&[(0, 0)], &[], 0, Some("U0"))),
            None
        );
    }

    #[test]
    fn malformed_zone_files_are_refused_without_panicking() {
        let good = tzif(&[(3600, 0)], &[], 0, Some("<+01>-1"));
        assert_eq!(tzif_fixed_offset(&good), Some(3600));
        for len in 0..good.len() {
            assert_eq!(tzif_fixed_offset(&good[..len]), None, "cut at {len}");
        }
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        assert_eq!(tzif_fixed_offset(&bad_magic), None);
        let mut huge_count = good.clone();
        huge_count[32..36].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(tzif_fixed_offset(&huge_count), None);
        assert_eq!(tzif_fixed_offset(b"not a zone file at all"), None);
    }

    /// Every zone of the system's database that is taken as fixed agrees with the C
    /// library (`date`, run with that zone) at several instants, and zones with daylight
    /// saving are not taken as fixed.
    #[test]
    fn fixed_zones_of_the_system_agree_with_the_c_library() {
        let root = std::path::Path::new("/usr/share/zoneinfo");
        if !root.join("Etc/UTC").is_file() {
            eprintln!("skipped: no zoneinfo database");
            return;
        }
        let mut fixed = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        let mut files = 0;
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("read zoneinfo") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if let Ok(data) = std::fs::read(&path) {
                    files += 1;
                    if let Some(off) = tzif_fixed_offset(&data) {
                        fixed.push((path, off));
                    }
                }
            }
            assert!(files < 20_000, "zoneinfo walk bounded");
        }
        assert!(fixed
            .iter()
            .any(|(p, off)| p.ends_with("Etc/UTC") && *off == 0));
        for zone in [
            "Europe/Paris",
            "America/New_York",
            "EST5EDT",
            "Australia/Sydney",
        ] {
            let p = root.join(zone);
            if p.is_file() {
                let data = std::fs::read(&p).expect("read zone");
                assert_eq!(tzif_fixed_offset(&data), None, "{zone} changes offset");
            }
        }
        // One shell for all: `date +%z` of each fixed zone at four instants.
        let mut script = String::new();
        for (path, _) in &fixed {
            for t in [0, 1_000_000_000, 1_700_000_000, 2_100_000_000] {
                script.push_str(&format!("TZ=:{} date -d @{t} +%z\n", path.display()));
            }
        }
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("run date");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len(),
            fixed.len() * 4,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (i, (path, off)) in fixed.iter().enumerate() {
            let sign = if *off < 0 { '-' } else { '+' };
            let a = off.unsigned_abs();
            let want = format!("{sign}{:02}{:02}", a / 3600, a % 3600 / 60);
            for line in &lines[i * 4..i * 4 + 4] {
                // `-0000`: a zone whose local time is unspecified (Factory), offset 0.
                let line = if *line == "-0000" { "+0000" } else { *line };
                assert_eq!(line, want, "{}", path.display());
            }
        }
    }

    #[test]
    fn epoch_is_1970() {
        assert_eq!(mdtm(UNIX_EPOCH, true), "19700101000000");
    }

    #[test]
    fn known_utc_instant() {
        // 2009-02-13T23:31:30Z
        assert_eq!(mdtm(at(1_234_567_890), true), "20090213233130");
    }

    #[test]
    fn leap_day() {
        // 2024-02-29T12:00:00Z
        let t = parse_mfmt("20240229120000");
        assert_eq!(t, Some(at(1_709_208_000)));
        assert_eq!(mdtm(at(1_709_208_000), true), "20240229120000");
    }

    #[test]
    fn before_epoch_does_not_panic() {
        // 1969-12-31T23:59:59Z
        assert_eq!(mdtm(at(-1), true), "19691231235959");
        // Half a second before the epoch floors to 23:59:59 like time.gmtime.
        let t = UNIX_EPOCH - Duration::from_millis(500);
        assert_eq!(mdtm(t, true), "19691231235959");
        assert_eq!(unix_parts(t), (-1, 500_000_000));
        // 1900-01-01T00:00:00Z
        assert_eq!(mdtm(at(-2_208_988_800), true), "19000101000000");
    }

    #[test]
    fn local_time_does_not_panic() {
        let s = mdtm(SystemTime::now(), false);
        assert_eq!(s.len(), 14);
        let _ = mdtm(at(-5_000_000_000), false);
    }

    #[test]
    fn mfmt_round_trip() {
        for s in [
            "19700101000000",
            "20201231235959",
            "19000228000000",
            "00010101000000",
        ] {
            let t = parse_mfmt(s).expect(s);
            assert_eq!(mdtm(t, true), s);
        }
    }

    #[test]
    fn mfmt_rejects_bad_input() {
        for s in [
            "",
            "2020123123595",   // 13 digits
            "202012312359590", // 15 digits
            "2020123123595a",
            "2020-1231235959",
            "+0201231235959",
            "20201331235959", // month 13
            "20200031235959", // month 0
            "20200100235959", // day 0
            "20210229000000", // not a leap year
            "21000229000000", // century, not a leap year
            "20200101240000",
            "20200101236000",
            "20200101235960",
            "00000101000000", // year 0
            "２０２０0101000000",
        ] {
            assert_eq!(parse_mfmt(s), None, "{s:?}");
        }
        assert!(parse_mfmt("20000229000000").is_some());
    }

    #[test]
    fn list_date_recent_shows_time() {
        let now = at(1_700_000_000); // 2023-11-14T22:13:20Z
        let mtime = at(1_700_000_000 - 86_400); // a day earlier
        assert_eq!(list_date(mtime, now, true), "Nov 13 22:13");
    }

    #[test]
    fn list_date_180_day_rule() {
        let now = at(1_700_000_000);
        let six_months = 180 * 86_400;
        // Exactly 180 days old: still the time form (pyftpdlib uses `>`).
        assert_eq!(
            list_date(at(1_700_000_000 - six_months), now, true),
            "May 18 22:13"
        );
        // One second older: the year form, with two spaces.
        assert_eq!(
            list_date(at(1_700_000_000 - six_months - 1), now, true),
            "May 18  2023"
        );
        // Future times use the time form.
        assert_eq!(list_date(at(1_800_000_000), now, true), "Jan 15 08:00");
    }

    #[test]
    fn list_date_day_is_zero_padded() {
        let now = at(1_700_000_000);
        assert_eq!(list_date(at(1_262_304_000), now, true), "Jan 01  2010");
    }

    #[test]
    fn list_date_before_1900_uses_now() {
        let now = at(1_700_000_000);
        assert_eq!(list_date(at(-2_208_988_801), now, true), "Nov 14 22:13");
        assert_eq!(list_date(at(-2_208_988_800), now, true), "Jan 01  1900");
    }

    #[test]
    fn civil_days_round_trip() {
        for days in [-800_000, -719_468, -1, 0, 1, 59, 11_016, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, u32::from(m), u32::from(d)), days);
        }
    }

    #[test]
    fn extreme_times_do_not_panic() {
        let far = UNIX_EPOCH + Duration::from_secs(u64::MAX / 4);
        let _ = mdtm(far, true);
        let _ = mdtm(far, false);
        let _ = list_date(far, UNIX_EPOCH, true);
    }
}

//! Time formatting for FTP replies and listings: the `YYYYMMDDHHMMSS` timestamps of
//! RFC 3659 (MDTM, MFMT, the MLSx `modify` fact) and the `ls -l` date column of LIST.
//!
//! UTC conversion is pure arithmetic (days-from-civil). Local time adds the offset that
//! `jiff` finds for the instant in the process's zone, chosen as the C library chooses it
//! (`TZ` as a POSIX rule, a zone name or a file, else /etc/localtime), read once and kept.
//! jiff rather than `localtime_r`: glibc reads zone files through stdio, which alone maps
//! some 200 KiB of the C library into a process that has no other use for it, and rather
//! than a reader of our own: TZif files and POSIX rules are jiff's job, kept well and
//! tested against the tz database. Times before 1970 are supported and never panic.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::tz::TimeZone;
use jiff::Timestamp;

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
    /// Second, 0..=59 (leap seconds are not counted, in UTC or local time).
    pub second: u8,
}

/// Breaks `t` down into calendar fields, in UTC when `use_gmt` is true and in the
/// process's local time zone otherwise (for a time beyond the zone data's reach, with the
/// offset of the nearest time it covers).
pub fn civil(t: SystemTime, use_gmt: bool) -> Civil {
    let secs = unix_seconds(t);
    if use_gmt {
        return utc_civil(secs);
    }
    utc_civil(secs.saturating_add(i64::from(local_offset(secs))))
}

/// The offset from UTC, in seconds east, of the process's local time zone at `t` (the
/// zone [`civil`] uses for local time).
pub fn utc_offset(t: SystemTime) -> i32 {
    local_offset(unix_seconds(t))
}

/// Formats `t` as `YYYYMMDDHHMMSS`, the form used by the MDTM reply and the MLSx
/// `modify` fact (RFC 3659 §2.3). A year outside 0..=9999 is written as it is (more
/// digits, or a sign), which is not an RFC 3659 time-val: see [`mdtm_checked`].
pub fn mdtm(t: SystemTime, use_gmt: bool) -> String {
    format_time_val(civil(t, use_gmt))
}

/// [`mdtm`] when the year of `t` has four digits (0 to 9999), as RFC 3659's time-val
/// requires, else `None`: a file dated beyond that (a local user can set any 64-bit
/// time) has no modification time a client can read. MDTM then answers 550 and MLSx
/// leaves the `modify` fact out, as pyftpdlib does when `strftime` fails.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use ftpdlib::timefmt::mdtm_checked;
/// assert_eq!(mdtm_checked(UNIX_EPOCH, true).as_deref(), Some("19700101000000"));
/// let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
/// assert_eq!(mdtm_checked(far, true), None);
/// ```
pub fn mdtm_checked(t: SystemTime, use_gmt: bool) -> Option<String> {
    let c = civil(t, use_gmt);
    (0..=9999).contains(&c.year).then(|| format_time_val(c))
}

fn format_time_val(c: Civil) -> String {
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

/// Parses a `SITE UTIME` timestamp (proftpd's mod_site_misc): `YYYYMMDDhhmm` or
/// `YYYYMMDDhhmmss`, UTC, checked as [`parse_mfmt`] checks its own.
pub fn parse_site_utime(s: &str) -> Option<SystemTime> {
    match s.len() {
        12 => parse_mfmt(&format!("{s}00")),
        14 => parse_mfmt(s),
        _ => None,
    }
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

/// The local zone's offset from UTC at `secs`, in seconds. The zone is looked up on first
/// use only, as glibc's `localtime_r` does: a server's zone does not change under it, and
/// a listing asks for it once per entry.
fn local_offset(secs: i64) -> i32 {
    static ZONE: OnceLock<TimeZone> = OnceLock::new();
    zone_offset(ZONE.get_or_init(local_zone), secs)
}

/// The process's zone. With `TZ` unset the C library reads /etc/localtime, and so does
/// this, straight: asking jiff for the system zone would first resolve the file's name,
/// which lists the whole zoneinfo directory (a millisecond or two, and memory kept).
fn local_zone() -> TimeZone {
    if std::env::var_os("TZ").is_none() {
        let zone = std::fs::read("/etc/localtime").map(|data| TimeZone::tzif("localtime", &data));
        if let Ok(Ok(zone)) = zone {
            return zone;
        }
    }
    TimeZone::system()
}

/// The offset of `zone` at `secs`, clamped to the instants jiff covers (years -9999 to
/// 9999).
fn zone_offset(zone: &TimeZone, secs: i64) -> i32 {
    let secs = secs.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    let at = Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH);
    zone.to_offset(at).seconds()
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

    /// Found by the `listing` fuzz target: times beyond year 9999 or before year 0 gave
    /// `modify=-21474836481111204939` and the like, no RFC 3659 time-val.
    #[test]
    fn mdtm_checked_keeps_to_four_digit_years() {
        assert_eq!(
            mdtm_checked(at(253_402_300_799), true).as_deref(),
            Some("99991231235959")
        );
        assert_eq!(mdtm_checked(at(253_402_300_800), true), None);
        assert_eq!(
            mdtm_checked(at(-62_167_219_200), true).as_deref(),
            Some("00000101000000")
        );
        assert_eq!(mdtm_checked(at(-62_167_219_201), true), None);
        for secs in [
            i64::MIN,
            i64::MIN / 2,
            -1_000_000_000_000,
            1_000_000_000_000,
            i64::MAX,
        ] {
            assert_eq!(mdtm_checked(at(secs), true), None, "{secs}");
            assert_eq!(mdtm_checked(at(secs), false), None, "{secs}");
        }
    }

    /// The offset jiff gives agrees with the C library (`date`, run with the same zone)
    /// for fixed zones and zones with daylight saving, at instants on both sides of the
    /// epoch and of the zone data's last transition, and for POSIX rules since 1970 (glibc
    /// applies no rule's daylight saving before then).
    #[test]
    fn zone_offsets_agree_with_the_c_library() {
        let root = std::path::Path::new("/usr/share/zoneinfo");
        if !root.join("Europe/Paris").is_file() {
            eprintln!("skipped: no zoneinfo database");
            return;
        }
        let zones = [
            "UTC",
            "Etc/GMT-5",
            "Europe/Paris",
            "America/New_York",
            "Australia/Sydney",
            "Asia/Kolkata",
            "America/St_Johns",
        ];
        let rules = ["EST5EDT,M3.2.0,M11.1.0", "<-03>3", "UTC0"];
        let instants = [
            -1_000_000_000i64,
            0,
            1_000_000_000,
            1_700_000_000,
            2_100_000_000,
        ];
        let mut cases = Vec::new();
        for name in zones {
            let zone = TimeZone::get(name).expect(name);
            cases.push((format!(":{name}"), zone, &instants[..]));
        }
        for rule in rules {
            let zone = TimeZone::posix(rule).expect(rule);
            cases.push((rule.to_owned(), zone, &instants[1..]));
        }
        let mut script = String::new();
        for (tz, _, instants) in &cases {
            for t in *instants {
                script.push_str(&format!("TZ='{tz}' date -d @{t} +%z\n"));
            }
        }
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("run date");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        let want_lines: usize = cases.iter().map(|(_, _, i)| i.len()).sum();
        assert_eq!(lines.len(), want_lines, "{text}");
        let mut lines = lines.into_iter();
        for (tz, zone, instants) in &cases {
            for &t in *instants {
                let off = zone_offset(zone, t);
                let sign = if off < 0 { '-' } else { '+' };
                let a = off.unsigned_abs();
                let want = format!("{sign}{:02}{:02}", a / 3600, a % 3600 / 60);
                assert_eq!(lines.next(), Some(want.as_str()), "TZ={tz} at {t}");
            }
        }
    }

    /// With `TZ` unset, the zone read from /etc/localtime gives the offsets `date` gives.
    #[test]
    fn local_zone_agrees_with_the_c_library() {
        if std::env::var_os("TZ").is_some() || !std::path::Path::new("/etc/localtime").exists() {
            eprintln!("skipped: TZ set, or no /etc/localtime");
            return;
        }
        let zone = local_zone();
        for t in [-1_000_000_000i64, 0, 1_700_000_000, 2_100_000_000] {
            let out = std::process::Command::new("date")
                .env_remove("TZ")
                .arg("-d")
                .arg(format!("@{t}"))
                .arg("+%z")
                .output()
                .expect("run date");
            let off = zone_offset(&zone, t);
            let sign = if off < 0 { '-' } else { '+' };
            let a = off.unsigned_abs();
            let want = format!("{sign}{:02}{:02}", a / 3600, a % 3600 / 60);
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want, "at {t}");
        }
    }

    #[test]
    fn local_epoch_is_around_1970() {
        let c = civil(UNIX_EPOCH, false);
        assert!(c.year == 1969 || c.year == 1970);
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

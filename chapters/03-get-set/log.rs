//! Log lines on stderr in Redis's format, so that anyone who has read a
//! Redis log can read ours:
//!
//! ```text
//! 4711:M 28 Nov 2026 06:04:00.123 * Ready to accept connections
//! ```
//!
//! The process id, the role (`M` for a master), the time in UTC with
//! milliseconds, the level (`*` notice, `#` warning), then the message.

use std::fmt::Display;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An ordinary event worth one line.
pub fn notice(msg: impl Display) {
    write_line('*', msg);
}

/// Something went wrong, but the server carries on.
pub fn warning(msg: impl Display) {
    write_line('#', msg);
}

fn write_line(level: char, msg: impl Display) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let line = format_line(std::process::id(), now, level, msg);
    // One write_all of the whole line, so lines from threads never interleave.
    // Nowhere to report a failed log write: ignore it.
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// One log line, `now` being the time since the Unix epoch.
fn format_line(pid: u32, now: Duration, level: char, msg: impl Display) -> String {
    let (secs, millis) = (now.as_secs(), now.subsec_millis());
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS[month as usize - 1];
    format!("{pid}:M {day:02} {month} {year} {h:02}:{m:02}:{s:02}.{millis:03} {level} {msg}\n")
}

/// Converts days since 1970-01-01 into (year, month 1-12, day 1-31).
/// Howard Hinnant's `civil_from_days`: the calendar without a crate.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year, from March 1
    let mp = (5 * doy + 2) / 153; // month, counted from March
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::{civil_from_days, format_line};
    use std::time::Duration;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_785), (2026, 11, 28));
    }

    #[test]
    fn lines_look_like_redis_lines() {
        // 2 Dec 2026, 06:04:00.123 UTC: the day in two digits, as `%d`.
        let now = Duration::from_millis((20_789 * 86_400 + 6 * 3600 + 4 * 60) * 1000 + 123);
        assert_eq!(
            format_line(4711, now, '*', "Ready to accept connections"),
            "4711:M 02 Dec 2026 06:04:00.123 * Ready to accept connections\n"
        );
    }
}

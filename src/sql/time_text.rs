//! Times as SQLite keeps them: text in Sequelize's form (`2026-11-27 00:00:32.446 +00:00`),
//! which sorts in time order. Every SQLite call binds one and every load reads one, so the form
//! this store writes is formatted and parsed by hand; anything else goes through chrono.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};

/// The form's length: `YYYY-MM-DD HH:MM:SS.mmm +00:00`.
const LEN: usize = 30;

/// Formats `t` as Sequelize writes times into SQLite: `2026-11-27 00:00:32.446 +00:00`.
/// Text in this form sorts in time order.
pub fn sqlite_time_text(t: DateTime<Utc>) -> String {
    let year = t.year();
    let nanos = t.nanosecond();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        // Outside four-digit years, or a leap second: chrono's own formatting.
        return t.format("%Y-%m-%d %H:%M:%S%.3f +00:00").to_string();
    }
    let mut text = *b"0000-00-00 00:00:00.000 +00:00";
    let fields = [
        (0, 4, year as u32),
        (5, 2, t.month()),
        (8, 2, t.day()),
        (11, 2, t.hour()),
        (14, 2, t.minute()),
        (17, 2, t.second()),
        (20, 3, nanos / 1_000_000),
    ];
    for (at, width, mut value) in fields {
        for digit in text[at..at + width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    text.iter().map(|&b| char::from(b)).collect()
}

/// Reads text in exactly the form [`sqlite_time_text`] writes, or `None` for any other text.
pub(crate) fn parse_sequelize_utc(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() != LEN || &b[23..] != b" +00:00" {
        return None;
    }
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b' '),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ];
    if separators.iter().any(|&(at, c)| b[at] != c) {
        return None;
    }
    let number = |from: usize, to: usize| {
        b[from..to].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(number(0, 4)?).ok()?,
        number(5, 7)?,
        number(8, 10)?,
    )?;
    let time = NaiveTime::from_hms_milli_opt(
        number(11, 13)?,
        number(14, 16)?,
        number(17, 19)?,
        number(20, 23)?,
    )?;
    Some(date.and_time(time).and_utc())
}

/// Parses a time stored as text: the Sequelize form above, RFC 3339 (`T`, `Z` or an offset),
/// or a plain `YYYY-MM-DD HH:MM:SS[.fff]` taken as UTC.
pub fn parse_time_text(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Some(t) = parse_sequelize_utc(s) {
        return Ok(t);
    }
    DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f %:z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").map(|n| n.and_utc()))
        .map_err(|_| format!("{s:?} is not a time this store can read"))
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn by_chrono(t: DateTime<Utc>) -> String {
        t.format("%Y-%m-%d %H:%M:%S%.3f +00:00").to_string()
    }

    fn by_chrono_parse(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f %:z")
            .expect("chrono reads the form")
            .with_timezone(&Utc)
    }

    /// Times across the range a store writes, each field's edges among them.
    fn times() -> Vec<DateTime<Utc>> {
        let mut out = vec![
            DateTime::UNIX_EPOCH,
            crate::MAX_EXPIRY,
            DateTime::parse_from_rfc3339("0000-01-01T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            DateTime::parse_from_rfc3339("2024-02-29T23:59:59.999Z")
                .unwrap()
                .with_timezone(&Utc),
        ];
        let mut t = DateTime::parse_from_rfc3339("1999-12-31T23:59:58.001Z")
            .unwrap()
            .with_timezone(&Utc);
        for i in 0..5_000i64 {
            if t > crate::MAX_EXPIRY {
                break;
            }
            out.push(t);
            t += TimeDelta::milliseconds(7_919 * i * i + 999);
        }
        assert!(out.len() > 1_000, "{} times", out.len());
        out
    }

    #[test]
    fn the_hand_written_form_is_chronos_form() {
        for t in times() {
            let text = sqlite_time_text(t);
            assert_eq!(text, by_chrono(t), "{t:?}");
            assert_eq!(
                parse_sequelize_utc(&text),
                Some(by_chrono_parse(&text)),
                "{text}"
            );
            assert_eq!(parse_time_text(&text), Ok(by_chrono_parse(&text)), "{text}");
        }
    }

    #[test]
    fn years_outside_four_digits_and_leap_seconds_go_through_chrono() {
        let far = NaiveDate::from_ymd_opt(10_000, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        assert_eq!(sqlite_time_text(far), by_chrono(far));
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        assert_eq!(sqlite_time_text(leap), by_chrono(leap));
    }

    #[test]
    fn other_text_is_not_taken_by_the_fast_path() {
        for text in [
            "2026-11-27 00:00:32.446 +05:30",
            "2026-11-27T00:00:32.446 +00:00",
            "2026-11-27 00:00:32.446Z",
            "2026-11-27 00:00:32 +00:00",
            "2026-13-27 00:00:32.446 +00:00",
            "2026-02-30 00:00:32.446 +00:00",
            "2026-11-27 24:00:32.446 +00:00",
            "2026-11-27 00:00:60.446 +00:00",
            "2026-11-27 0a:00:32.446 +00:00",
            "2026-11-27 00:00:32.446 +00:00 ",
            "2026/11/27 00:00:32.446 +00:00",
            "",
        ] {
            assert_eq!(parse_sequelize_utc(text), None, "{text:?}");
        }
        assert!(parse_time_text("2026-11-27 00:00:32.446Z").is_ok());
    }
}

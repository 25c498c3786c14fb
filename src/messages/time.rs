//! Date and date-time text forms used on the wire.
//!
//! Parsing follows the lenient ISO 8601 grammar of the reference's marshmallow fields
//! (docs/messages.md#field-parsing-rules): `T` or a space between date and time, 1–2 digit
//! month/day/hour/minute, optional seconds, 1–12 fraction digits (the first 6 are kept), and
//! an optional `Z`, `±hh`, `±hhmm` or `±hh:mm` offset. A value without an offset is read as UTC:
//! the reference keeps such values naive and later either crashes or stores them as DB-session
//! local time (UTC in practice), see docs/messages.md#field-parsing-rules.
//!
//! Formatting follows Python's `isoformat()`, as the reference emits it
//! (docs/messages.md#message-format).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc};

use super::validate::strip_final_newline;

/// Parses a date-time the way the reference accepts it; see the module docs.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let mut c = Cursor(strip_final_newline(s).as_bytes());
    let date = c.date()?;
    if !(c.eat(b'T') || c.eat(b' ')) {
        return None;
    }
    let hour = c.digits(1, 2)?;
    c.expect(b':')?;
    let minute = c.digits(1, 2)?;
    let (mut second, mut micro) = (0, 0);
    if c.eat(b':') {
        second = c.digits(1, 2)?;
        if c.eat(b'.') {
            micro = c.fraction()?;
        }
    }
    let offset_minutes = c.offset()?;
    if !c.0.is_empty() {
        return None;
    }
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micro)?;
    let naive = NaiveDateTime::new(date, time);
    let offset = FixedOffset::east_opt(offset_minutes.checked_mul(60)?)?;
    let local = offset.from_local_datetime(&naive).single()?;
    Some(local.with_timezone(&Utc))
}

/// Parses a `YYYY-M-D` date (1–2 digit month and day, no time part).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let mut c = Cursor(strip_final_newline(s).as_bytes());
    let date = c.date()?;
    c.0.is_empty().then_some(date)
}

/// Formats a date-time like Python's `isoformat()` on a UTC value:
/// `2024-05-01T12:00:00+00:00`, or with `.ffffff` when the microseconds are not zero.
pub fn format_datetime(ts: &DateTime<Utc>) -> String {
    let micro = (ts.nanosecond() % 1_000_000_000) / 1000;
    let base = ts.format("%Y-%m-%dT%H:%M:%S");
    if micro == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{micro:06}+00:00")
    }
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_date(d: &NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A tiny byte cursor over ASCII text.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn eat(&mut self, b: u8) -> bool {
        let hit = self.0.first() == Some(&b);
        if hit {
            self.0 = &self.0[1..];
        }
        hit
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        self.eat(b).then_some(())
    }

    /// Takes between `min` and `max` ASCII digits (greedy) and returns them.
    fn digit_run(&mut self, min: usize, max: usize) -> Option<&[u8]> {
        let n = self
            .0
            .iter()
            .take(max)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if n < min {
            return None;
        }
        let (run, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(run)
    }

    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let run = self.digit_run(min, max)?;
        Some(run.iter().fold(0, |acc, b| acc * 10 + u32::from(b - b'0')))
    }

    /// `YYYY-M-D` with 1–2 digit month and day; year 0 is invalid, as in Python.
    fn date(&mut self) -> Option<NaiveDate> {
        let year = self.digits(4, 4)?;
        self.expect(b'-')?;
        let month = self.digits(1, 2)?;
        self.expect(b'-')?;
        let day = self.digits(1, 2)?;
        if year == 0 {
            return None;
        }
        NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)
    }

    /// 1–12 fraction digits; the first 6 give the microseconds, the rest are ignored.
    fn fraction(&mut self) -> Option<u32> {
        let run = self.digit_run(1, 12)?;
        let kept = &run[..run.len().min(6)];
        let value = kept.iter().fold(0, |acc, b| acc * 10 + u32::from(b - b'0'));
        Some(value * 10u32.pow(6 - kept.len() as u32))
    }

    /// An optional offset, in minutes east of UTC. Python only requires the total to be
    /// under 24 hours, so `+00:99` is accepted as 99 minutes.
    fn offset(&mut self) -> Option<i32> {
        if self.eat(b'Z') || self.0.is_empty() {
            return Some(0);
        }
        let negative = match self.0.first() {
            Some(b'+') => false,
            Some(b'-') => true,
            _ => return None,
        };
        self.0 = &self.0[1..];
        let hours = self.digits(2, 2)?;
        let minutes = if self.0.is_empty() {
            0
        } else {
            self.eat(b':');
            self.digits(2, 2)?
        };
        let total = i32::try_from(hours * 60 + minutes).ok()?;
        if total >= 24 * 60 {
            return None;
        }
        Some(if negative { -total } else { total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn accepts_reference_forms() {
        let base = utc("2022-01-01T00:00:00Z");
        assert_eq!(parse_datetime("2022-01-01T00:00:00Z"), Some(base));
        assert_eq!(parse_datetime("2022-01-01T00:00:00+00:00"), Some(base));
        assert_eq!(parse_datetime("2022-01-01 02:00:00+02:00"), Some(base));
        assert_eq!(parse_datetime("2022-01-01T02:00+0200"), Some(base));
        assert_eq!(parse_datetime("2022-01-01T02:00+02"), Some(base));
        assert_eq!(parse_datetime("2022-1-1T0:0:0"), Some(base));
        assert_eq!(parse_datetime("2022-01-01T00:00:00Z\n"), Some(base));
        assert_eq!(parse_datetime("2021-12-31T22:21:00-00:99"), Some(base));
        assert_eq!(
            parse_datetime("2022-01-01T00:00:00.1234567891Z"),
            Some(utc("2022-01-01T00:00:00.123456Z"))
        );
        assert_eq!(
            parse_datetime("2022-01-01T00:00:00.5Z"),
            Some(utc("2022-01-01T00:00:00.5Z"))
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2022-01-01",
            "2022-01-01T00:00:00.1234567890123Z",
            "2022-01-01T00:00:00+053",
            "2022-01-01T00:00:00+24:00",
            "2022-13-01T00:00:00Z",
            "2022-01-01T24:00:00Z",
            "2022-01-01T00:00:60Z",
            "0000-01-01T00:00:00Z",
            "22-01-01T00:00:00Z",
            "2022-01-01T00:00:00Z ",
            "2022-01-01T00:00:00.Z",
            "2022-01-01t00:00:00Z",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_dates() {
        assert_eq!(parse_date("2024-1-5"), NaiveDate::from_ymd_opt(2024, 1, 5));
        assert_eq!(
            parse_date("2024-01-05"),
            NaiveDate::from_ymd_opt(2024, 1, 5)
        );
        assert_eq!(parse_date("2024-01-05T00:00:00Z"), None);
        assert_eq!(parse_date("2024-02-30"), None);
        assert_eq!(parse_date("0000-01-01"), None);
    }

    #[test]
    fn formats_like_python_isoformat() {
        assert_eq!(
            format_datetime(&utc("9999-12-31T23:59:59Z")),
            "9999-12-31T23:59:59+00:00"
        );
        assert_eq!(
            format_datetime(&utc("2024-05-01T12:00:00.123456789Z")),
            "2024-05-01T12:00:00.123456+00:00"
        );
        assert_eq!(
            format_datetime(&utc("2024-05-01T12:00:00.5Z")),
            "2024-05-01T12:00:00.500000+00:00"
        );
        assert_eq!(
            format_date(&NaiveDate::from_ymd_opt(970, 1, 2).unwrap()),
            "0970-01-02"
        );
    }
}

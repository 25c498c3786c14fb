//! Parsers for environment variable values, following the reference's conversion rules
//! (docs/configuration.md#value-formats). Each returns a short reason on failure; the caller
//! adds the variable's name and value.

use std::time::Duration;

use super::pyliteral;

/// Parses a boolean: false iff the lower-cased value is `false`, `off`, `no` or empty;
/// anything else, including `0`, is true (the reference's rule).
pub fn parse_bool(s: &str) -> bool {
    !matches!(s.to_lowercase().as_str(), "false" | "off" | "no" | "")
}

/// Parses a decimal integer like Python's `int()`: surrounding whitespace, an optional sign
/// and `_` between digits are allowed; hex and fractions are not.
pub fn parse_int(s: &str) -> Result<i64, String> {
    let v = pyliteral::parse_int(s).map_err(|e| e.to_string())?;
    i64::try_from(v).map_err(|_| "integer out of range".into())
}

/// Parses a non-negative integer (a count, a size, a port…).
pub fn parse_count<T: TryFrom<i64>>(s: &str) -> Result<T, String> {
    let v = parse_int(s)?;
    if v < 0 {
        return Err("must not be negative".into());
    }
    T::try_from(v).map_err(|_| "integer out of range".into())
}

/// Parses an integer in `min..=max` (a count that sizes tasks, connections, pools or
/// batches); `min` is 0 or 1.
pub fn parse_count_in<T: TryFrom<i64>>(s: &str, min: i64, max: u64) -> Result<T, String> {
    let v = parse_int(s)?;
    if v < min {
        return Err(if min > 0 {
            "must be a positive integer".into()
        } else {
            "must not be negative".into()
        });
    }
    if u64::try_from(v).is_ok_and(|v| v > max) {
        return Err(format!("too large: must be at most {max}"));
    }
    T::try_from(v).map_err(|_| "integer out of range".into())
}

/// Parses a float like Python's `float()`: surrounding whitespace, exponents, `inf` and `nan`
/// are accepted, and `_` between digits.
pub fn parse_float(s: &str) -> Result<f64, String> {
    pyliteral::parse_float(s).map_err(|e| e.to_string())
}

/// Parses a finite float that is at least `min`.
pub fn parse_float_min(s: &str, min: f64) -> Result<f64, String> {
    let v = parse_float(s)?;
    if !v.is_finite() || v < min {
        return Err(format!("must be a finite number not less than {min}"));
    }
    Ok(v)
}

/// Parses a number of seconds (`FLUSH_PERIOD`, `HTTP_FETCH_TIMEOUT`…): a plain float, not a
/// duration string, which must be finite and not negative.
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let v = parse_float_min(s, 0.0)?;
    Duration::try_from_secs_f64(v).map_err(|_| "number of seconds out of range".into())
}

/// Parses a number of seconds in `min..=max`.
pub fn parse_seconds_in(s: &str, min: f64, max: f64) -> Result<Duration, String> {
    let d = parse_seconds(s)?;
    let v = d.as_secs_f64();
    if v < min {
        return Err(format!("too small: must be at least {min}"));
    }
    if v > max {
        return Err(format!("too large: must be at most {max}"));
    }
    Ok(d)
}

/// Parses a non-negative number of days (a plain float) that is at most `max_days`.
pub fn parse_days(s: &str, max_days: f64) -> Result<f64, String> {
    let v = parse_float_min(s, 0.0)?;
    if v > max_days {
        return Err(format!("too large: must be at most {max_days} days"));
    }
    Ok(v)
}

/// Parses a duration string (see [`parse_duration`]) that is at most `max_days` long.
pub fn parse_duration_days(s: &str, max_days: f64) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.as_secs_f64() > max_days * 86_400.0 {
        return Err(format!("too large: must be at most {max_days} days"));
    }
    Ok(d)
}

/// The longest duration accepted: Python's `timedelta.max` is just under 1e9 days.
const MAX_DURATION_SECS: f64 = 999_999_999.0 * 86_400.0;

/// Parses a duration string (docs/configuration.md#durations): a number (digits, `.`, `e`, `E`,
/// `+`, `-`) followed by an optional unit `s`, `m`, `h`, `d` or `w` (seconds when omitted),
/// optional trailing whitespace, non-negative. Resolution is one microsecond.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid time interval: {s}");
    let number_len = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')))
        .unwrap_or(s.len());
    if number_len == 0 {
        return Err(invalid());
    }
    let (number, rest) = s.split_at(number_len);
    let (factor, rest) = match rest.chars().next() {
        Some('s') => (1.0, &rest[1..]),
        Some('m') => (60.0, &rest[1..]),
        Some('h') => (3600.0, &rest[1..]),
        Some('d') => (86_400.0, &rest[1..]),
        Some('w') => (604_800.0, &rest[1..]),
        _ => (1.0, rest),
    };
    if !rest.chars().all(char::is_whitespace) {
        return Err(invalid());
    }
    let n: f64 = number
        .parse()
        .map_err(|_| format!("could not convert string to float: '{number}'"))?;
    if n.is_nan() || n < 0.0 {
        return Err(invalid());
    }
    let secs = n * factor;
    if secs > MAX_DURATION_SECS {
        return Err(format!("time interval too large: {s}"));
    }
    let micros = (secs * 1e6).round();
    Ok(Duration::from_micros(micros as u64))
}

/// Parses a creditor or debtor ID (docs/configuration.md#creditor-and-debtor-ids): a Python
/// integer literal (decimal, `0x`/`0o`/`0b` with `_` separators, optional sign,
/// `True`/`False`) in `[-2^63, 2^64)`. Values of 2^63 and above become their two's-complement
/// negative i64.
pub fn parse_id(s: &str) -> Result<i64, String> {
    let invalid = || format!("Invalid creditor/debtor ID: {s}");
    let t = s.trim();
    let v: i128 = match t {
        "True" => 1,
        "False" => 0,
        _ => pyliteral::parse_int_literal(t).ok_or_else(invalid)?,
    };
    if !(-(1i128 << 63)..(1i128 << 64)).contains(&v) {
        return Err(invalid());
    }
    Ok(if v < 0 { v as i64 } else { (v as u64) as i64 })
}

/// The database URL schemes we accept, with the SQLAlchemy driver suffixes of the reference.
const DB_URL_SCHEMES: &[&str] = &[
    "postgresql+psycopg://",
    "postgresql+psycopg2://",
    "postgresql://",
    "postgres://",
];

/// Parses a PostgreSQL URL in the reference's SQLAlchemy form
/// (`postgresql+psycopg://user:pass@host:port/db`) or as a plain `postgres://` or
/// `postgresql://` URL, and returns the equivalent `postgresql://` URL.
pub fn parse_db_url(s: &str) -> Result<String, String> {
    let rest = DB_URL_SCHEMES
        .iter()
        .find_map(|scheme| s.strip_prefix(scheme))
        .ok_or("expected a postgresql:// (or postgresql+psycopg://) URL")?;
    let normalized = format!("postgresql://{rest}");
    url::Url::parse(&normalized).map_err(|e| format!("malformed URL: {e}"))?;
    Ok(normalized)
}

/// Parses an AMQP URL (`amqp://` or `amqps://`).
pub fn parse_amqp_url(s: &str) -> Result<String, String> {
    let u = url::Url::parse(s).map_err(|e| format!("malformed URL: {e}"))?;
    match u.scheme() {
        "amqp" | "amqps" => Ok(s.to_string()),
        other => Err(format!(
            "unsupported URL scheme \"{other}\" (expected amqp or amqps)"
        )),
    }
}

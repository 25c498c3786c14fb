//! Parsers for environment variable values, following the reference's conversion rules
//! (operations.md §4.1–§4.4). Each returns a short reason on failure; the caller adds the
//! variable's name and value.

use std::time::Duration;

/// Parses a boolean: false iff the lower-cased value is `false`, `off`, `no` or empty;
/// anything else, including `0`, is true (the reference's rule).
pub fn parse_bool(s: &str) -> bool {
    !matches!(s.to_lowercase().as_str(), "false" | "off" | "no" | "")
}

/// Removes `_` separators that stand between two digits, rejecting any other `_`.
fn strip_digit_separators(s: &str, is_digit: impl Fn(char) -> bool) -> Result<String, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            let before = i > 0 && is_digit(chars[i - 1]);
            let after = chars.get(i + 1).is_some_and(|&n| is_digit(n));
            if !(before && after) {
                return Err("misplaced digit separator".into());
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Parses a decimal integer like Python's `int()`: surrounding whitespace, an optional sign
/// and `_` between digits are allowed; hex and fractions are not.
pub fn parse_int(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let (sign, digits) = split_sign(t);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return Err("not an integer".into());
    }
    let digits = strip_digit_separators(digits, |c| c.is_ascii_digit())?;
    let v: i128 = digits
        .parse()
        .map_err(|_| "integer out of range".to_string())?;
    i64::try_from(sign * v).map_err(|_| "integer out of range".into())
}

/// Parses a non-negative integer (a count, a size, a port…).
pub fn parse_count<T: TryFrom<i64>>(s: &str) -> Result<T, String> {
    let v = parse_int(s)?;
    if v < 0 {
        return Err("must not be negative".into());
    }
    T::try_from(v).map_err(|_| "integer out of range".into())
}

fn split_sign(t: &str) -> (i128, &str) {
    match t.as_bytes().first() {
        Some(b'-') => (-1, &t[1..]),
        Some(b'+') => (1, &t[1..]),
        _ => (1, t),
    }
}

/// Parses a float like Python's `float()`: surrounding whitespace, exponents, `inf` and `nan`
/// are accepted, and `_` between digits.
pub fn parse_float(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let t = strip_digit_separators(t, |c| c.is_ascii_digit())?;
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    let is_special = matches!(body, "inf" | "infinity" | "nan");
    let is_numeric = !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'));
    if !(is_special || is_numeric) {
        return Err("not a number".into());
    }
    lower.parse::<f64>().map_err(|_| "not a number".into())
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

/// The longest duration accepted: Python's `timedelta.max` is just under 1e9 days.
const MAX_DURATION_SECS: f64 = 999_999_999.0 * 86_400.0;

/// Parses a duration string (operations.md §4.2): a number (digits, `.`, `e`, `E`, `+`, `-`)
/// followed by an optional unit `s`, `m`, `h`, `d` or `w` (seconds when omitted), optional
/// trailing whitespace, non-negative. Resolution is one microsecond.
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

/// Parses a creditor or debtor ID (operations.md §4.3): a Python integer literal (decimal,
/// `0x`/`0o`/`0b` with `_` separators, optional sign, `True`/`False`) in `[-2^63, 2^64)`.
/// Values of 2^63 and above become their two's-complement negative i64.
pub fn parse_id(s: &str) -> Result<i64, String> {
    let invalid = || format!("Invalid creditor/debtor ID: {s}");
    let t = s.trim();
    let v: i128 = match t {
        "True" => 1,
        "False" => 0,
        _ => parse_int_literal(t).ok_or_else(invalid)?,
    };
    if !(-(1i128 << 63)..(1i128 << 64)).contains(&v) {
        return Err(invalid());
    }
    Ok(if v < 0 { v as i64 } else { (v as u64) as i64 })
}

/// Evaluates a Python integer literal with an optional leading sign.
fn parse_int_literal(t: &str) -> Option<i128> {
    let (sign, body) = split_sign(t);
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = match lower.get(..2) {
        Some("0x") => (16, &lower[2..]),
        Some("0o") => (8, &lower[2..]),
        Some("0b") => (2, &lower[2..]),
        _ => (10, lower.as_str()),
    };
    let is_digit = |c: char| c.is_digit(radix);
    // After a radix prefix Python allows one `_` before the first digit (`0x_ff`).
    let digits = if radix != 10 {
        digits.strip_prefix('_').unwrap_or(digits)
    } else {
        digits
    };
    if digits.is_empty() || !digits.chars().all(|c| is_digit(c) || c == '_') {
        return None;
    }
    let clean = strip_digit_separators(digits, is_digit).ok()?;
    // Python 3 rejects decimal literals with leading zeros, except zero itself.
    if radix == 10 && clean.len() > 1 && clean.starts_with('0') && clean.chars().any(|c| c != '0') {
        return None;
    }
    let v = i128::from_str_radix(&clean, radix).ok()?;
    Some(sign * v)
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

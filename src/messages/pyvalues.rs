//! Conversions of JSON scalars that mimic the reference's marshmallow field types.
//!
//! marshmallow runs Python's `int()`/`float()` on whatever JSON value it gets, and looks
//! booleans up in a fixed word list (worker.md §2.4, §12.1). These functions reproduce that
//! for ASCII input.

use serde_json::{Number, Value};

/// Converts a JSON value to an integer the way marshmallow's non-strict `Integer` does:
/// booleans are rejected, floats are truncated toward zero, strings go through Python `int()`.
pub(crate) fn integer_of(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => integer_of_number(n),
        Value::String(s) => parse_python_int(s),
        _ => None,
    }
}

fn integer_of_number(n: &Number) -> Option<i128> {
    if let Some(i) = n.as_i64() {
        return Some(i.into());
    }
    if let Some(u) = n.as_u64() {
        return Some(u.into());
    }
    // Integral f64 values below 2^127 convert to i128 exactly; anything larger is out of
    // every range we check, so clamping keeps it out of range.
    let f = n.as_f64()?.trunc();
    if !f.is_finite() {
        return None;
    }
    Some(if f.abs() < 1e38 {
        f as i128
    } else if f > 0.0 {
        i128::MAX
    } else {
        i128::MIN
    })
}

/// Python `int(str)`: surrounding whitespace, an optional sign, ASCII digits, and single
/// underscores between digits.
fn parse_python_int(s: &str) -> Option<i128> {
    let t = s.trim();
    let (negative, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let cleaned = remove_digit_underscores(digits)?;
    if cleaned.is_empty() || !cleaned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let trimmed = cleaned.trim_start_matches('0');
    if trimmed.len() > 38 {
        return Some(if negative { i128::MIN } else { i128::MAX });
    }
    let magnitude: i128 = if trimmed.is_empty() {
        0
    } else {
        trimmed.parse().ok()?
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// Removes underscores that sit between two ASCII digits; any other underscore is invalid.
fn remove_digit_underscores(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            let prev_ok = i > 0 && bytes[i - 1].is_ascii_digit();
            let next_ok = bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !(prev_ok && next_ok) {
                return None;
            }
        } else {
            out.push(b as char);
        }
    }
    // Only ASCII bytes were pushed one by one; a non-ASCII input is rejected by the callers'
    // digit checks, so reject it here already.
    s.is_ascii().then_some(out)
}

/// Converts a JSON value to a float the way marshmallow's `Float` does (Python `float()`).
pub(crate) fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_python_float(s),
        _ => None,
    }
}

fn parse_python_float(s: &str) -> Option<f64> {
    // Rust's `f64` grammar matches Python's `float()` (including `inf`, `infinity` and
    // `nan` in any case, with a sign) once whitespace and digit underscores are removed.
    remove_digit_underscores(s.trim())?.parse().ok()
}

/// marshmallow's `Boolean` accepts these exact spellings, plus the numbers 1 and 0.
const TRUTHY: [&str; 14] = [
    "t", "T", "true", "True", "TRUE", "on", "On", "ON", "y", "Y", "yes", "Yes", "YES", "1",
];
const FALSY: [&str; 14] = [
    "f", "F", "false", "False", "FALSE", "off", "Off", "OFF", "n", "N", "no", "No", "NO", "0",
];

pub(crate) fn boolean_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        // Python's set lookup treats 1.0 like 1, and 0.0 / -0.0 like 0.
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false), // also matches -0.0
            _ => None,
        },
        Value::String(s) if TRUTHY.contains(&s.as_str()) => Some(true),
        Value::String(s) if FALSY.contains(&s.as_str()) => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn int_of(v: Value) -> Option<i128> {
        integer_of(&v)
    }

    #[test]
    fn integers_follow_python_int() {
        assert_eq!(int_of(json!(12)), Some(12));
        assert_eq!(int_of(json!(1.5)), Some(1));
        assert_eq!(int_of(json!(-1.5)), Some(-1));
        assert_eq!(int_of(json!("123")), Some(123));
        assert_eq!(int_of(json!(" -1_000 ")), Some(-1000));
        assert_eq!(int_of(json!(u64::MAX)), Some(u64::MAX.into()));
        assert_eq!(int_of(json!("1.5")), None);
        assert_eq!(int_of(json!("1__0")), None);
        assert_eq!(int_of(json!("_1")), None);
        assert_eq!(int_of(json!(true)), None);
        assert_eq!(int_of(json!("")), None);
        assert_eq!(int_of(json!([1])), None);
    }

    #[test]
    fn floats_follow_python_float() {
        assert_eq!(float_of(&json!("1.5")), Some(1.5));
        assert_eq!(float_of(&json!(" 1e3 ")), Some(1000.0));
        assert_eq!(float_of(&json!(3)), Some(3.0));
        assert!(float_of(&json!("nan")).unwrap().is_nan());
        assert_eq!(float_of(&json!("-Infinity")), Some(f64::NEG_INFINITY));
        assert_eq!(float_of(&json!("1_0.5")), Some(10.5));
        assert_eq!(float_of(&json!("1,5")), None);
        assert_eq!(float_of(&json!("--1")), None);
        assert_eq!(float_of(&json!(false)), None);
    }

    #[test]
    fn booleans_follow_marshmallow() {
        assert_eq!(boolean_of(&json!(true)), Some(true));
        assert_eq!(boolean_of(&json!("Yes")), Some(true));
        assert_eq!(boolean_of(&json!(1)), Some(true));
        assert_eq!(boolean_of(&json!(0.0)), Some(false));
        assert_eq!(boolean_of(&json!("off")), Some(false));
        assert_eq!(boolean_of(&json!("yEs")), None);
        assert_eq!(boolean_of(&json!(2)), None);
        assert_eq!(boolean_of(&json!(null)), None);
    }
}

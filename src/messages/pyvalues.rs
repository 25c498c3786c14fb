//! Conversions of JSON scalars that mimic the reference's marshmallow field types.
//!
//! marshmallow runs Python's `int()`/`float()` on whatever JSON value it gets, and looks
//! booleans up in a fixed word list (docs/messages.md#field-parsing-rules). These functions
//! reproduce that for ASCII input.

use serde_json::{Number, Value};

use crate::config::pyliteral;

/// Converts a JSON value to an integer the way marshmallow's non-strict `Integer` does:
/// booleans are rejected, floats are truncated toward zero, strings go through Python `int()`.
pub(crate) fn integer_of(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => integer_of_number(n),
        Value::String(s) => pyliteral::parse_int(s).ok(),
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

/// Converts a JSON value to a float the way marshmallow's `Float` does (Python `float()`).
pub(crate) fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => pyliteral::parse_float(s).ok(),
        _ => None,
    }
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
        // Beyond i128 a string saturates, which is out of every range checked.
        assert_eq!(int_of(json!("9".repeat(50))), Some(i128::MAX));
        assert_eq!(
            int_of(json!(format!("-{}", "9".repeat(50)))),
            Some(i128::MIN)
        );
        assert_eq!(int_of(json!("０")), None);
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

//! A compact JSON object writer that reproduces the reference's output byte for byte.
//!
//! The reference serializes with Python's `json.dumps(..., separators=(",", ":"),
//! ensure_ascii=False, allow_nan=False)` (docs/messages.md#message-format): keys in declaration
//! order, no spaces, non-ASCII text left unescaped, and floats in Python `repr` form (`2.0`,
//! `1e+30`, `1e-05`). serde_json agrees on strings and integers but prints floats differently
//! (`1e30`), so floats are formatted here.

use chrono::{DateTime, NaiveDate, Utc};

use super::time::{format_date, format_datetime};

/// Builds one JSON object, field by field, in insertion order.
#[derive(Debug)]
pub(crate) struct ObjectWriter {
    out: String,
}

impl ObjectWriter {
    /// Starts an object whose first property is `"type": message_type`.
    pub fn new(message_type: &str) -> Self {
        let mut w = ObjectWriter {
            out: String::from("{"),
        };
        w.str("type", message_type);
        w
    }

    fn key(&mut self, name: &str) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        push_json_string(&mut self.out, name);
        self.out.push(':');
    }

    /// Adds an integer property.
    pub fn int(&mut self, name: &str, value: i64) -> &mut Self {
        self.key(name);
        self.out.push_str(&value.to_string());
        self
    }

    /// Adds a float property in Python `repr` form.
    ///
    /// # Panics
    ///
    /// On NaN or infinity, which the reference refuses to serialize too (`allow_nan=False`).
    pub fn float(&mut self, name: &str, value: f64) -> &mut Self {
        self.key(name);
        self.out.push_str(&python_float_repr(value));
        self
    }

    /// Adds a boolean property.
    pub fn bool(&mut self, name: &str, value: bool) -> &mut Self {
        self.key(name);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    /// Adds a string property.
    pub fn str(&mut self, name: &str, value: &str) -> &mut Self {
        self.key(name);
        push_json_string(&mut self.out, value);
        self
    }

    /// Adds a date-time property (Python `isoformat()`).
    pub fn datetime(&mut self, name: &str, value: &DateTime<Utc>) -> &mut Self {
        let text = format_datetime(value);
        self.str(name, &text)
    }

    /// Adds a date property (`YYYY-MM-DD`).
    pub fn date(&mut self, name: &str, value: &NaiveDate) -> &mut Self {
        let text = format_date(value);
        self.str(name, &text)
    }

    /// Adds `null`: optional properties are always present (docs/messages.md#message-format).
    pub fn null(&mut self, name: &str) -> &mut Self {
        self.key(name);
        self.out.push_str("null");
        self
    }

    /// Adds an optional string, `null` when absent.
    pub fn opt_str(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.str(name, v),
            None => self.null(name),
        }
    }

    /// Adds an optional integer, `null` when absent.
    pub fn opt_int(&mut self, name: &str, value: Option<i64>) -> &mut Self {
        match value {
            Some(v) => self.int(name, v),
            None => self.null(name),
        }
    }

    /// Adds an optional float, `null` when absent.
    pub fn opt_float(&mut self, name: &str, value: Option<f64>) -> &mut Self {
        match value {
            Some(v) => self.float(name, v),
            None => self.null(name),
        }
    }

    /// Adds an optional date-time, `null` when absent.
    pub fn opt_datetime(&mut self, name: &str, value: Option<&DateTime<Utc>>) -> &mut Self {
        match value {
            Some(v) => self.datetime(name, v),
            None => self.null(name),
        }
    }

    /// Closes the object and returns its UTF-8 bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.push('}');
        self.out.into_bytes()
    }
}

/// Python's `json.dumps` with `ensure_ascii=False` escapes exactly what serde_json escapes:
/// `"`, `\` and control characters below U+0020.
fn push_json_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::Value::from(s).to_string());
}

/// Formats a finite float as Python's `repr` does: the shortest round-tripping digits, in
/// positional form when the decimal exponent is in `-4..16`, otherwise as `d.ddde±XX`.
pub(crate) fn python_float_repr(value: f64) -> String {
    assert!(
        value.is_finite(),
        "NaN and infinity can not be serialized to JSON"
    );
    // Rust's `{:e}` gives the same shortest digits, e.g. `1.5e-7`, `-2e30`, `0e0`.
    let sci = format!("{value:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (int_part, frac) = digits.split_at(point as usize);
            format!("{int_part}.{frac}")
        };
        format!("{sign}{text}")
    } else {
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_match_python_repr() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (2.0, "2.0"),
            (3.25, "3.25"),
            (-49.5, "-49.5"),
            (1e30, "1e+30"),
            (1.0000000150474662e30, "1.0000000150474662e+30"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123.456, "123.456"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (100.0, "100.0"),
        ];
        for (value, expected) in cases {
            assert_eq!(python_float_repr(value), expected, "{value:e}");
        }
    }

    #[test]
    fn writes_compact_objects_in_order() {
        let mut w = ObjectWriter::new("X");
        w.int("a", -1)
            .str("b", "é\"\n\u{1}")
            .bool("c", true)
            .null("d")
            .float("e", 1e30);
        let text = String::from_utf8(w.finish()).unwrap();
        assert_eq!(
            text,
            "{\"type\":\"X\",\"a\":-1,\"b\":\"é\\\"\\n\\u0001\",\"c\":true,\"d\":null,\"e\":1e+30}"
        );
    }
}

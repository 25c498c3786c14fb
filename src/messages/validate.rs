//! Field-level validation of incoming JSON message bodies.
//!
//! The reference validates bodies with marshmallow schemas (`swpt_pythonlib/protocol_schemas.py`
//! and `swpt_trade/schemas.py`). [`Reader`] reproduces the leniency of those field types
//! (docs/messages.md#field-parsing-rules): integral strings and truncated floats for integers,
//! numeric strings for floats, a fixed word list for booleans, and the lenient ISO 8601 grammar
//! of [`super::time`].
//! Unknown properties are ignored. Errors are collected per field, like marshmallow does, so a
//! rejected message names every bad field at once.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use super::pyvalues::{boolean_of, float_of, integer_of};
use super::time::{parse_date, parse_datetime};

/// Smallest `i64`, as `i128` for range checks.
pub(crate) const MIN_I64: i128 = i64::MIN as i128;
/// Largest `i64`, as `i128` for range checks.
pub(crate) const MAX_I64: i128 = i64::MAX as i128;
/// Smallest `i32`, as `i128` for range checks.
pub(crate) const MIN_I32: i128 = i32::MIN as i128;
/// Largest `i32`, as `i128` for range checks.
pub(crate) const MAX_I32: i128 = i32::MAX as i128;

/// One rejected field (or `_schema` for a cross-field rule) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The JSON property name, or `_schema` for a rule spanning several fields.
    pub field: String,
    /// A human-readable reason.
    pub reason: String,
}

/// Every validation failure found in one message body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// Whether a given field (or `_schema`) has an error.
    pub fn has_field(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.reason)?;
        }
        Ok(())
    }
}

/// Length limits and character rules for a string field.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StrRules {
    /// Minimum number of Unicode code points.
    pub min_chars: usize,
    /// Maximum number of Unicode code points (`None` = unlimited).
    pub max_chars: Option<usize>,
    /// Maximum number of UTF-8 bytes (`None` = unlimited).
    pub max_bytes: Option<usize>,
    /// All code points must be below 128.
    pub ascii: bool,
}

impl StrRules {
    /// No restriction at all.
    pub const ANY: StrRules = StrRules {
        min_chars: 0,
        max_chars: None,
        max_bytes: None,
        ascii: false,
    };

    /// At most `n` code points.
    pub const fn chars(n: usize) -> StrRules {
        StrRules {
            max_chars: Some(n),
            ..Self::ANY
        }
    }

    /// At most `n` code points, all ASCII.
    pub const fn ascii(n: usize) -> StrRules {
        StrRules {
            max_chars: Some(n),
            ascii: true,
            ..Self::ANY
        }
    }

    /// At most `n` code points and at most `n` UTF-8 bytes.
    pub const fn chars_and_bytes(n: usize) -> StrRules {
        StrRules {
            max_chars: Some(n),
            max_bytes: Some(n),
            ..Self::ANY
        }
    }
}

/// Reads typed fields out of a JSON object, recording every failure.
///
/// Getters return a placeholder value on failure; callers must call [`Reader::finish`] before
/// using the result.
pub(crate) struct Reader<'a> {
    obj: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Reader<'a> {
    /// Starts reading `obj` and checks its `type` property against `message_type`.
    pub fn new(obj: &'a Map<String, Value>, message_type: &str) -> Self {
        let mut r = Reader {
            obj,
            errors: Vec::new(),
        };
        if let Some(t) = r.required("type").and_then(|v| r.as_str("type", v))
            && t != message_type
        {
            r.fail("type", "Invalid type.");
        }
        r
    }

    /// Records an error for `field`.
    pub fn fail(&mut self, field: &str, reason: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            reason: reason.into(),
        });
    }

    /// Whether `field` already failed.
    pub fn failed(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field == field)
    }

    /// Returns every recorded error, if any.
    pub fn finish(self) -> Result<(), ValidationErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.errors))
        }
    }

    fn required(&mut self, field: &str) -> Option<&'a Value> {
        match self.obj.get(field) {
            None => {
                self.fail(field, "Missing data for required field.");
                None
            }
            Some(Value::Null) => {
                self.fail(field, "Field may not be null.");
                None
            }
            Some(v) => Some(v),
        }
    }

    /// Optional fields default to `null` and accept an explicit `null`
    /// (docs/messages.md#field-parsing-rules).
    fn optional(&self, field: &str) -> Option<&'a Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    fn as_str(&mut self, field: &str, v: &'a Value) -> Option<&'a str> {
        let s = v.as_str();
        if s.is_none() {
            self.fail(field, "Not a valid string.");
        }
        s
    }

    /// A required integer within `min..=max`.
    pub fn int(&mut self, field: &str, min: i128, max: i128) -> i64 {
        self.required(field)
            .and_then(|v| self.int_value(field, v, min, max))
            .unwrap_or(0)
    }

    /// An optional integer within `min..=max`.
    pub fn opt_int(&mut self, field: &str, min: i128, max: i128) -> Option<i64> {
        self.optional(field)
            .and_then(|v| self.int_value(field, v, min, max))
    }

    fn int_value(&mut self, field: &str, v: &Value, min: i128, max: i128) -> Option<i64> {
        let Some(n) = integer_of(v) else {
            self.fail(field, "Not a valid integer.");
            return None;
        };
        if n < min || n > max {
            self.fail(
                field,
                format!("Must be greater than or equal to {min} and less than or equal to {max}."),
            );
            return None;
        }
        i64::try_from(n).ok()
    }

    /// A required ID (full `i64` range).
    pub fn id(&mut self, field: &str) -> i64 {
        self.int(field, MIN_I64, MAX_I64)
    }

    /// A required ID that must not be zero (the internal schemas' "Invalid debtor ID." rule).
    pub fn nonzero_id(&mut self, field: &str) -> i64 {
        let id = self.id(field);
        if id == 0 && !self.failed(field) {
            self.fail(field, "Invalid debtor ID.");
        }
        id
    }

    /// A required integer in `0..=i64::MAX` (amounts, transfer numbers).
    pub fn non_negative(&mut self, field: &str) -> i64 {
        self.int(field, 0, MAX_I64)
    }

    /// A required integer in the full `i32` range.
    pub fn i32(&mut self, field: &str) -> i32 {
        self.i32_in(field, MIN_I32, MAX_I32)
    }

    /// A required integer in `min..=max`, which must lie within `i32`.
    pub fn i32_in(&mut self, field: &str, min: i128, max: i128) -> i32 {
        debug_assert!(MIN_I32 <= min && max <= MAX_I32);
        // In range after validation; the placeholder 0 also fits.
        self.int(field, min, max) as i32
    }

    /// A required finite float, at least `min` and at most `max` when given.
    pub fn float(&mut self, field: &str, min: Option<f64>, max: Option<f64>) -> f64 {
        self.required(field)
            .and_then(|v| self.float_value(field, v, min, max))
            .unwrap_or(0.0)
    }

    /// An optional finite float, at least `min` when given.
    pub fn opt_float(&mut self, field: &str, min: Option<f64>) -> Option<f64> {
        self.optional(field)
            .and_then(|v| self.float_value(field, v, min, None))
    }

    fn float_value(
        &mut self,
        field: &str,
        v: &Value,
        min: Option<f64>,
        max: Option<f64>,
    ) -> Option<f64> {
        let Some(x) = float_of(v) else {
            self.fail(field, "Not a valid number.");
            return None;
        };
        if !x.is_finite() {
            self.fail(
                field,
                "Special numeric values (nan or infinity) are not permitted.",
            );
            return None;
        }
        let reason = match (min, max) {
            (Some(lo), Some(hi)) if x < lo || x > hi => Some(format!(
                "Must be greater than or equal to {lo:?} and less than or equal to {hi:?}."
            )),
            (Some(lo), None) if x < lo => Some(format!("Must be greater than or equal to {lo:?}.")),
            _ => None,
        };
        match reason {
            Some(r) => {
                self.fail(field, r);
                None
            }
            None => Some(x),
        }
    }

    /// A required boolean.
    pub fn boolean(&mut self, field: &str) -> bool {
        let v = self.required(field);
        match v.map(boolean_of) {
            Some(Some(b)) => b,
            Some(None) => {
                self.fail(field, "Not a valid boolean.");
                false
            }
            None => false,
        }
    }

    /// A required string obeying `rules`.
    pub fn string(&mut self, field: &str, rules: StrRules) -> String {
        self.required(field)
            .and_then(|v| self.as_str(field, v))
            .filter(|s| self.check_str(field, s, rules))
            .map(str::to_owned)
            .unwrap_or_default()
    }

    /// An optional string obeying `rules`.
    pub fn opt_string(&mut self, field: &str, rules: StrRules) -> Option<String> {
        self.optional(field)
            .and_then(|v| self.as_str(field, v))
            .filter(|s| self.check_str(field, s, rules))
            .map(str::to_owned)
    }

    /// A required string that must match `pattern` (a check standing in for a regex).
    pub fn pattern(&mut self, field: &str, pattern: fn(&str) -> bool) -> String {
        let s = self.string(field, StrRules::ANY);
        if !self.failed(field) && !pattern(strip_final_newline(&s)) {
            self.fail(field, "String does not match expected pattern.");
        }
        s
    }

    fn check_str(&mut self, field: &str, s: &str, rules: StrRules) -> bool {
        let chars = s.chars().count();
        let too_long = rules.max_chars.is_some_and(|m| chars > m);
        if chars < rules.min_chars || too_long {
            let reason = match rules.max_chars {
                Some(max) if rules.min_chars > 0 => {
                    format!("Length must be between {} and {max}.", rules.min_chars)
                }
                Some(max) => format!("Longer than maximum length {max}."),
                None => format!("Shorter than minimum length {}.", rules.min_chars),
            };
            self.fail(field, reason);
            return false;
        }
        if let Some(max) = rules.max_bytes
            && s.len() > max
        {
            self.fail(field, format!("The length of {field} exceeds {max} bytes."));
            return false;
        }
        if rules.ascii && !s.is_ascii() {
            self.fail(
                field,
                format!("The {field} field contains non-ASCII characters."),
            );
            return false;
        }
        // PostgreSQL text cannot hold U+0000: such a value would be refused by the database
        // on every retry, so it is refused here (a rule of ours; the reference has none).
        if s.contains('\0') {
            self.fail(field, "Null characters are not allowed.");
            return false;
        }
        true
    }

    /// A required date-time (docs/messages.md#field-parsing-rules).
    pub fn datetime(&mut self, field: &str) -> DateTime<Utc> {
        self.required(field)
            .and_then(|v| self.datetime_value(field, v))
            .unwrap_or_default()
    }

    /// An optional date-time.
    pub fn opt_datetime(&mut self, field: &str) -> Option<DateTime<Utc>> {
        self.optional(field)
            .and_then(|v| self.datetime_value(field, v))
    }

    fn datetime_value(&mut self, field: &str, v: &Value) -> Option<DateTime<Utc>> {
        let parsed = v.as_str().and_then(parse_datetime);
        if parsed.is_none() {
            self.fail(field, "Not a valid datetime.");
        }
        parsed
    }

    /// A required date (docs/messages.md#field-parsing-rules).
    pub fn date(&mut self, field: &str) -> NaiveDate {
        let parsed = self
            .required(field)
            .map(|v| v.as_str().and_then(parse_date));
        match parsed {
            Some(Some(d)) => d,
            Some(None) => {
                self.fail(field, "Not a valid date.");
                NaiveDate::default()
            }
            None => NaiveDate::default(),
        }
    }
}

/// Python's `re.match` with a pattern ending in `$` also accepts one trailing newline.
pub(crate) fn strip_final_newline(s: &str) -> &str {
    s.strip_suffix('\n').unwrap_or(s)
}

//! Reading request bodies and path parameters exactly as the reference does
//! (docs/operations.md#admin-api): lenient integers, the same messages, the same statuses.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::ApiError;

/// The message of a field that holds `null`.
const NULL: &str = "Field may not be null.";
/// The message of a field that holds no integer.
const NOT_AN_INTEGER: &str = "Not a valid integer.";

/// Parses a path ID the way the reference's `i64` URL converter does: `0` or up to 20 decimal
/// digits without a leading zero, at most `2^64 − 1`, taken modulo `2^64` as a signed number
/// (`18446744073709551615` is −1). Anything else matches no route: `None` (→ 404).
pub fn parse_u64_path_id(s: &str) -> Option<i64> {
    let digits_only = !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse::<u64>().ok().map(|n| n as i64)
}

/// Parses a turn ID in a path: `0` or decimal digits without a leading zero, at most
/// `2^31 − 1`; `None` (→ 404) otherwise.
pub fn parse_i32_path_id(s: &str) -> Option<i32> {
    let digits_only = !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse::<i32>().ok()
}

/// Whether a `Content-Type` announces JSON as Flask understands it: `application/json`, or
/// `application/…+json`.
pub fn is_json_content_type(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// The JSON object of a request body: `{}` when the body is empty or not announced as JSON
/// (the reference ignores such bodies), 400 when it is not JSON, 422 when it is JSON but no
/// object.
pub fn json_object(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<serde_json::Map<String, Value>, ApiError> {
    if !is_json_content_type(content_type) || body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::unprocessable(
            serde_json::json!({"json": {"_schema": ["Invalid input type."]}}),
        )),
        Err(_) => Err(ApiError::invalid_json()),
    }
}

/// Field errors of one request body, by field name (sorted, as the reference's JSON).
#[derive(Debug, Default)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    /// Adds `message` to `field`'s errors.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    /// `Ok` when there is no error, else 422 with the errors under `location`.
    pub fn into_result(self, location: &str) -> Result<(), ApiError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let fields: serde_json::Map<String, Value> = self
            .0
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect();
        let mut errors = serde_json::Map::new();
        errors.insert(location.to_owned(), Value::Object(fields));
        Err(ApiError::unprocessable(Value::Object(errors)))
    }
}

/// An integer as marshmallow's lenient `Integer` field reads it: a JSON integer, a float
/// (truncated), or a string that Python's `int()` accepts. `Err` holds the message.
pub fn lenient_integer(value: &Value) -> Result<i128, &'static str> {
    match value {
        Value::Null => Err(NULL),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i.into())
            } else if let Some(u) = n.as_u64() {
                Ok(u.into())
            } else {
                let f = n.as_f64().ok_or(NOT_AN_INTEGER)?;
                if !f.is_finite() {
                    return Err(NOT_AN_INTEGER);
                }
                // Values beyond i128 are out of every range this API accepts.
                Ok(f.trunc().clamp(i128::MIN as f64, i128::MAX as f64) as i128)
            }
        }
        Value::String(s) => python_int(s).ok_or(NOT_AN_INTEGER),
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => Err(NOT_AN_INTEGER),
    }
}

/// Python's `int(s)` for decimal strings: surrounding whitespace, an optional sign, digits
/// with single underscores between them. Huge values saturate (they fail any range check).
fn python_int(s: &str) -> Option<i128> {
    let s = s.trim();
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let mut n: i128 = 0;
    for b in digits.bytes().filter(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i128::from(b - b'0'));
    }
    Some(if negative { -n } else { n })
}

/// The body of `POST /trade/collectors/{debtorId}/activate`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivateCollectorsRequest {
    /// The type of this object. Will always be present in the responses from the server.
    #[schema(
        example = "ActivateCollectorsRequest",
        default = "ActivateCollectorsRequest"
    )]
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// The number of needed collector accounts.
    #[schema(format = Int64, example = 3, default = 1, minimum = 1, maximum = 9223372036854775807_i64)]
    pub number_of_accounts: Option<i64>,
}

/// Reads an `ActivateCollectorsRequest` (every field optional); returns the number of
/// accounts, or the reference's 400/422.
pub fn activate_collectors_request(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<i64, ApiError> {
    let object = json_object(content_type, body)?;
    let mut errors = FieldErrors::default();
    let mut number = 1;
    for (key, value) in &object {
        match key.as_str() {
            "type" => match value {
                Value::String(s) if s == "ActivateCollectorsRequest" => {}
                Value::String(_) => errors.add(key, "Invalid type."),
                Value::Null => errors.add(key, NULL),
                _ => errors.add(key, "Not a valid string."),
            },
            "numberOfAccounts" => match lenient_integer(value) {
                Ok(n) if (1..=i128::from(i64::MAX)).contains(&n) => number = n as i64,
                Ok(_) => errors.add(
                    key,
                    "Must be greater than or equal to 1 and less than or equal to \
                     9223372036854775807.",
                ),
                Err(message) => errors.add(key, message),
            },
            _ => errors.add(key, "Unknown field."),
        }
    }
    errors.into_result("json")?;
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json");

    fn errors_of(body: &str) -> Value {
        let e = activate_collectors_request(JSON, body.as_bytes()).unwrap_err();
        assert_eq!(e.code, 422, "{body}");
        e.errors.unwrap()
    }

    #[test]
    fn path_ids_follow_the_references_converter() {
        assert_eq!(parse_u64_path_id("0"), Some(0));
        assert_eq!(parse_u64_path_id("123"), Some(123));
        assert_eq!(parse_u64_path_id("18446744073709551615"), Some(-1));
        assert_eq!(parse_u64_path_id("9223372036854775808"), Some(i64::MIN));
        for bad in [
            "",
            "01",
            "-1",
            "+1",
            "1a",
            "18446744073709551616",
            " 1",
            "1.0",
        ] {
            assert_eq!(parse_u64_path_id(bad), None, "{bad:?}");
        }
        assert_eq!(parse_i32_path_id("2147483647"), Some(i32::MAX));
        assert_eq!(parse_i32_path_id("2147483648"), None);
        assert_eq!(parse_i32_path_id("007"), None);
    }

    #[test]
    fn bodies_are_read_leniently() {
        let n = |ct: Option<&str>, b: &str| activate_collectors_request(ct, b.as_bytes());
        assert_eq!(n(JSON, "").unwrap(), 1);
        assert_eq!(n(JSON, "{}").unwrap(), 1);
        assert_eq!(n(None, "garbage").unwrap(), 1);
        assert_eq!(
            n(Some("text/plain"), "{\"numberOfAccounts\": 5}").unwrap(),
            1
        );
        assert_eq!(
            n(Some("application/vnd.x+json"), "{\"numberOfAccounts\": 5}").unwrap(),
            5
        );
        assert_eq!(n(JSON, r#"{"numberOfAccounts": "7"}"#).unwrap(), 7);
        assert_eq!(n(JSON, r#"{"numberOfAccounts": " +1_0 "}"#).unwrap(), 10);
        assert_eq!(n(JSON, r#"{"numberOfAccounts": 5.5}"#).unwrap(), 5);
        assert_eq!(
            n(
                JSON,
                r#"{"type": "ActivateCollectorsRequest", "numberOfAccounts": 9223372036854775807}"#
            )
            .unwrap(),
            i64::MAX
        );
        assert_eq!(n(JSON, "{bad").unwrap_err(), ApiError::invalid_json());
    }

    #[test]
    fn bad_fields_get_the_references_messages() {
        assert_eq!(
            errors_of(r#"{"debtorId": 1, "type": "X"}"#),
            serde_json::json!({"json": {"debtorId": ["Unknown field."], "type": ["Invalid type."]}})
        );
        let range =
            "Must be greater than or equal to 1 and less than or equal to 9223372036854775807.";
        for bad in ["0", "-1", "9223372036854775808", "1e30", "\"0\""] {
            assert_eq!(
                errors_of(&format!(r#"{{"numberOfAccounts": {bad}}}"#)),
                serde_json::json!({"json": {"numberOfAccounts": [range]}}),
                "{bad}"
            );
        }
        for (bad, message) in [
            ("true", "Not a valid integer."),
            ("null", "Field may not be null."),
            ("\"5.5\"", "Not a valid integer."),
            ("[1]", "Not a valid integer."),
        ] {
            assert_eq!(
                errors_of(&format!(r#"{{"numberOfAccounts": {bad}}}"#)),
                serde_json::json!({"json": {"numberOfAccounts": [message]}}),
                "{bad}"
            );
        }
        assert_eq!(
            errors_of(r#"{"type": null}"#),
            serde_json::json!({"json": {"type": ["Field may not be null."]}})
        );
        assert_eq!(
            errors_of("[1, 2]"),
            serde_json::json!({"json": {"_schema": ["Invalid input type."]}})
        );
    }
}

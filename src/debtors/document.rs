//! Parsing a fetched debtor info document (see `docs/messages.md#debtor-info`).
//!
//! The only format accepted is the Swaptacular "CoinInfo" JSON document, served with the media
//! type `application/vnd.swaptacular.coin-info+json`. Only the properties the service uses are
//! validated, with the reference's rules; every other property is ignored. Documents come
//! from servers anybody may run: every violation is an [`InvalidDocument`], never a panic, and
//! a body longer than [`MAX_DOCUMENT_BYTES`] is refused before it is parsed.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::config::pyliteral;
use crate::messages::parse_datetime;

/// The media type of a "CoinInfo" document (parameters such as `charset` are ignored).
pub const COIN_INFO_MEDIA_TYPE: &str = "application/vnd.swaptacular.coin-info+json";

/// The longest body that is parsed, in bytes; a longer document is invalid. (Real documents
/// are a few kilobytes; later versions of the reference use the same limit.)
pub const MAX_DOCUMENT_BYTES: usize = 50_000;

/// The longest `uri` of a `latestDebtorInfo` object, in Unicode code points.
const LOCATOR_MAX_CHARS: usize = 200;

/// The longest `uri` of a `debtorIdentity` object, in Unicode code points.
const DEBTOR_URI_MAX_CHARS: usize = 100;

/// What the service keeps of a debtor info document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// `latestDebtorInfo.uri`: where the latest version of the document is.
    pub debtor_info_locator: String,
    /// The debtor of `debtorIdentity.uri` (`swpt:<u64>`, read as two's complement).
    pub debtor_id: i64,
    /// The currency this one is pegged to, if any.
    pub peg: Option<Peg>,
    /// `willNotChangeUntil`: the document stays valid at least until then.
    pub will_not_change_until: Option<DateTime<Utc>>,
}

/// The `peg` of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Peg {
    /// `peg.latestDebtorInfo.uri`.
    pub debtor_info_locator: String,
    /// The debtor of `peg.debtorIdentity.uri`.
    pub debtor_id: i64,
    /// `peg.exchangeRate`: finite and non-negative.
    pub exchange_rate: f64,
}

/// Why a fetched document cannot be used; the fetch is retried later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidDocument {
    /// The response's media type is not [`COIN_INFO_MEDIA_TYPE`].
    #[error("Unknown debtor info document type: {0}")]
    UnknownType(String),
    /// The body is longer than [`MAX_DOCUMENT_BYTES`].
    #[error("Too long CoinInfo document")]
    TooLong,
    /// The body is not UTF-8 JSON, or breaks a rule of the "CoinInfo" format.
    #[error("Invalid CoinInfo document: {0}")]
    Invalid(String),
    /// `debtorIdentity.uri` is not a `swpt:` debtor URI.
    #[error("Invalid debtor URI")]
    DebtorUri,
    /// `peg.debtorIdentity.uri` is not a `swpt:` debtor URI.
    #[error("Invalid peg debtor URI")]
    PegDebtorUri,
}

/// The media type of a `Content-Type` header value: what comes before the first `;`, without
/// surrounding whitespace, in lower case. A missing header counts as
/// `application/octet-stream`, as HTTP says.
pub fn media_type(content_type: Option<&str>) -> String {
    match content_type {
        Some(v) => v
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
        None => "application/octet-stream".to_owned(),
    }
}

/// Parses a document whose response had the `Content-Type` header `content_type`.
///
/// # Errors
///
/// Any rule of the format that the document breaks (see the module docs).
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Document, InvalidDocument> {
    let media = media_type(content_type);
    if media != COIN_INFO_MEDIA_TYPE {
        return Err(InvalidDocument::UnknownType(media));
    }
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(InvalidDocument::TooLong);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| InvalidDocument::Invalid(e.to_string()))?;
    let root = object(&value, "document")?;
    check_type(root, "type", "CoinInfo")?;
    let debtor_info_locator = short_link(root, "latestDebtorInfo")?;
    let debtor_uri = debtor_identity(root, "debtorIdentity")?;
    let will_not_change_until = match root.get("willNotChangeUntil") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(parse_datetime)
                .ok_or_else(|| invalid("willNotChangeUntil: Not a valid datetime."))?,
        ),
    };
    let peg = match root.get("peg") {
        None => None,
        Some(v) => {
            let peg = object(v, "peg")?;
            check_type(peg, "type", "Peg")?;
            let locator = short_link(peg, "latestDebtorInfo")?;
            let uri = debtor_identity(peg, "debtorIdentity")?;
            let exchange_rate = exchange_rate(peg)?;
            Some((locator, uri, exchange_rate))
        }
    };
    // Like the reference, the debtor URIs are checked after the whole schema.
    let debtor_id = parse_debtor_uri(&debtor_uri).ok_or(InvalidDocument::DebtorUri)?;
    let peg = match peg {
        None => None,
        Some((debtor_info_locator, uri, exchange_rate)) => Some(Peg {
            debtor_info_locator,
            debtor_id: parse_debtor_uri(&uri).ok_or(InvalidDocument::PegDebtorUri)?,
            exchange_rate,
        }),
    };
    Ok(Document {
        debtor_info_locator,
        debtor_id,
        peg,
        will_not_change_until,
    })
}

/// The debtor ID of a `swpt:<digits>` URI: 1 to 20 ASCII digits whose value fits in 64
/// unsigned bits, read as two's complement (`swpt:18446744073709551615` is −1).
pub fn parse_debtor_uri(uri: &str) -> Option<i64> {
    let digits = strip_final_newline(uri).strip_prefix("swpt:")?;
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    Some(value as i64)
}

fn invalid(reason: impl Into<String>) -> InvalidDocument {
    InvalidDocument::Invalid(reason.into())
}

/// Python's `re.match` with a pattern ending in `$` also accepts one trailing newline.
fn strip_final_newline(s: &str) -> &str {
    s.strip_suffix('\n').unwrap_or(s)
}

/// A JSON object; `null` and other values are invalid.
fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, InvalidDocument> {
    v.as_object()
        .ok_or_else(|| invalid(format!("{what}: Not a valid object.")))
}

/// A required member of `obj`; `null` is invalid.
fn required<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a Value, InvalidDocument> {
    match obj.get(field) {
        None => Err(invalid(format!(
            "{field}: Missing data for required field."
        ))),
        Some(Value::Null) => Err(invalid(format!("{field}: Field may not be null."))),
        Some(v) => Ok(v),
    }
}

/// A required string member of at most `max_chars` code points (if given). PostgreSQL text
/// cannot hold U+0000, so a string that contains it is invalid (a rule of ours).
fn string(
    obj: &Map<String, Value>,
    field: &str,
    max_chars: Option<usize>,
) -> Result<String, InvalidDocument> {
    let s = required(obj, field)?
        .as_str()
        .ok_or_else(|| invalid(format!("{field}: Not a valid string.")))?;
    if max_chars.is_some_and(|max| s.chars().count() > max) {
        return Err(invalid(format!("{field}: Too long.")));
    }
    if s.contains('\0') {
        return Err(invalid(format!(
            "{field}: Null characters are not allowed."
        )));
    }
    Ok(s.to_owned())
}

/// `field` must match `^<name>(-v[1-9][0-9]{0,5})?$` (e.g. `CoinInfo`, `CoinInfo-v2`).
fn check_type(obj: &Map<String, Value>, field: &str, name: &str) -> Result<(), InvalidDocument> {
    let s = string(obj, field, None)?;
    let matches = match strip_final_newline(&s).strip_prefix(name) {
        Some("") => true,
        Some(rest) => rest.strip_prefix("-v").is_some_and(|version| {
            let b = version.as_bytes();
            (1..=6).contains(&b.len())
                && (b'1'..=b'9').contains(&b[0])
                && b.iter().all(u8::is_ascii_digit)
        }),
        None => false,
    };
    if matches {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field}: String does not match expected pattern."
        )))
    }
}

/// A `{"uri": …}` object with no other member; returns the URI (at most 200 code points).
fn short_link(obj: &Map<String, Value>, field: &str) -> Result<String, InvalidDocument> {
    let link = object(required(obj, field)?, field)?;
    if let Some(unknown) = link.keys().find(|k| k.as_str() != "uri") {
        return Err(invalid(format!("{field}.{unknown}: Unknown field.")));
    }
    string(link, "uri", Some(LOCATOR_MAX_CHARS))
}

/// A `DebtorIdentity` object (other members ignored); returns its URI (at most 100 code
/// points), not yet parsed.
fn debtor_identity(obj: &Map<String, Value>, field: &str) -> Result<String, InvalidDocument> {
    let identity = object(required(obj, field)?, field)?;
    check_type(identity, "type", "DebtorIdentity")?;
    string(identity, "uri", Some(DEBTOR_URI_MAX_CHARS))
}

/// `peg.exchangeRate`: a number or a numeric string, finite and non-negative.
fn exchange_rate(peg: &Map<String, Value>) -> Result<f64, InvalidDocument> {
    let rate = match required(peg, "exchangeRate")? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => pyliteral::parse_float(s).ok(),
        _ => None,
    }
    .ok_or_else(|| invalid("exchangeRate: Not a valid number."))?;
    if !rate.is_finite() {
        return Err(invalid(
            "exchangeRate: Special numeric values (nan or infinity) are not permitted.",
        ));
    }
    if rate < 0.0 {
        return Err(invalid(
            "exchangeRate: Must be greater than or equal to 0.0.",
        ));
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: Option<&str> = Some(COIN_INFO_MEDIA_TYPE);

    fn with_peg() -> serde_json::Value {
        serde_json::json!({
            "peg": {
                "type": "Peg",
                "exchangeRate": 2.5,
                "debtorIdentity": {"type": "DebtorIdentity", "uri": "swpt:4640381880"},
                "latestDebtorInfo": {"uri": "https://demo.swaptacular.org/debtors/4640381880"}
            },
            "debtorIdentity": {"type": "DebtorIdentity", "uri": "swpt:6199429176"},
            "latestDebtorInfo": {"uri": "https://demo.swaptacular.org/debtors/6199429176"},
            "type": "CoinInfo",
            "willNotChangeUntil": "2030-10-22T07:10:11Z"
        })
    }

    fn parse_value(v: &serde_json::Value) -> Result<Document, InvalidDocument> {
        parse(CT, v.to_string().as_bytes())
    }

    fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> Result<Document, InvalidDocument> {
        let mut v = with_peg();
        edit(&mut v);
        parse_value(&v)
    }

    #[test]
    fn a_pegged_document_is_parsed() {
        let d = parse_value(&with_peg()).unwrap();
        assert_eq!(d.debtor_id, 6199429176);
        assert_eq!(
            d.debtor_info_locator,
            "https://demo.swaptacular.org/debtors/6199429176"
        );
        assert_eq!(
            d.will_not_change_until,
            Some("2030-10-22T07:10:11Z".parse().unwrap())
        );
        assert_eq!(
            d.peg,
            Some(Peg {
                debtor_info_locator: "https://demo.swaptacular.org/debtors/4640381880".into(),
                debtor_id: 4640381880,
                exchange_rate: 2.5,
            })
        );
    }

    #[test]
    fn a_document_without_peg_and_date_is_parsed() {
        let d = edited(|v| {
            let o = v.as_object_mut().unwrap();
            o.remove("peg");
            o.remove("willNotChangeUntil");
            o.insert("unknown".into(), serde_json::json!({"anything": [1, 2]}));
        })
        .unwrap();
        assert_eq!(d.debtor_id, 6199429176);
        assert_eq!(d.peg, None);
        assert_eq!(d.will_not_change_until, None);
    }

    #[test]
    fn the_media_type_must_be_coin_info() {
        assert_eq!(
            parse(Some("text/html"), b"test"),
            Err(InvalidDocument::UnknownType("text/html".into()))
        );
        assert!(matches!(
            parse(None, b"{}"),
            Err(InvalidDocument::UnknownType(_))
        ));
        let body = with_peg().to_string();
        let ct = "Application/Vnd.Swaptacular.Coin-Info+JSON ; charset=utf-8";
        assert!(parse(Some(ct), body.as_bytes()).is_ok());
    }

    #[test]
    fn bodies_that_are_not_coin_info_json_are_invalid() {
        assert!(matches!(
            parse(CT, b"test"),
            Err(InvalidDocument::Invalid(_))
        ));
        assert!(matches!(parse(CT, b"{}"), Err(InvalidDocument::Invalid(_))));
        assert!(matches!(parse(CT, b"[]"), Err(InvalidDocument::Invalid(_))));
        assert!(matches!(
            parse(CT, b"\xff\xfe{}"),
            Err(InvalidDocument::Invalid(_))
        ));
        let deep = "[".repeat(10_000);
        assert!(matches!(
            parse(CT, deep.as_bytes()),
            Err(InvalidDocument::Invalid(_))
        ));
    }

    #[test]
    fn long_bodies_are_refused() {
        let mut v = with_peg();
        v["padding"] = "x".repeat(MAX_DOCUMENT_BYTES).into();
        assert_eq!(parse_value(&v), Err(InvalidDocument::TooLong));
    }

    #[test]
    fn debtor_uris_are_swpt_u64s() {
        assert_eq!(parse_debtor_uri("swpt:0"), Some(0));
        assert_eq!(parse_debtor_uri("swpt:18446744073709551615"), Some(-1));
        assert_eq!(parse_debtor_uri("swpt:9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_debtor_uri("swpt:123\n"), Some(123));
        assert_eq!(parse_debtor_uri("swpt:18446744073709551616"), None);
        assert_eq!(parse_debtor_uri("swpt:000000000000000000001"), None);
        assert_eq!(parse_debtor_uri("swpt:"), None);
        assert_eq!(parse_debtor_uri("swpt:-1"), None);
        assert_eq!(parse_debtor_uri("swpt:1/2"), None);
        assert_eq!(parse_debtor_uri("SWPT:1"), None);
        assert_eq!(parse_debtor_uri("INVALID_DEBTOR_URI"), None);
        assert_eq!(
            edited(|v| v["debtorIdentity"]["uri"] = "INVALID_DEBTOR_URI".into()),
            Err(InvalidDocument::DebtorUri)
        );
        assert_eq!(
            edited(|v| v["peg"]["debtorIdentity"]["uri"] = "INVALID_DEBTOR_URI".into()),
            Err(InvalidDocument::PegDebtorUri)
        );
    }

    #[test]
    fn type_names_may_carry_a_version() {
        for ok in ["CoinInfo", "CoinInfo-v1", "CoinInfo-v999999", "CoinInfo\n"] {
            assert!(edited(|v| v["type"] = ok.into()).is_ok(), "{ok}");
        }
        for bad in [
            "CoinInfo-v0",
            "CoinInfo-v1000000",
            "CoinInfo-v",
            "coininfo",
            "Coin",
        ] {
            assert!(edited(|v| v["type"] = bad.into()).is_err(), "{bad}");
        }
        assert!(edited(|v| v["peg"]["type"] = "Peg-v2".into()).is_ok());
        assert!(edited(|v| v["peg"]["type"] = "CoinInfo".into()).is_err());
        assert!(edited(|v| v["debtorIdentity"]["type"] = "DebtorIdentity-v3".into()).is_ok());
        assert!(edited(|v| v["debtorIdentity"]["type"] = "Identity".into()).is_err());
        assert!(edited(|v| v["type"] = 1.into()).is_err());
    }

    #[test]
    fn links_take_no_other_members_and_at_most_200_characters() {
        assert!(edited(|v| v["latestDebtorInfo"]["x"] = 1.into()).is_err());
        assert!(edited(|v| v["peg"]["latestDebtorInfo"]["x"] = 1.into()).is_err());
        // An identity's other members are ignored.
        assert!(edited(|v| v["debtorIdentity"]["x"] = 1.into()).is_ok());
        let long = format!("https://example.com/{}", "é".repeat(180));
        assert_eq!(long.chars().count(), 200);
        let d = edited(|v| v["latestDebtorInfo"]["uri"] = long.clone().into()).unwrap();
        assert_eq!(d.debtor_info_locator, long);
        assert!(edited(|v| v["latestDebtorInfo"]["uri"] = format!("{long}x").into()).is_err());
        assert!(edited(|v| v["debtorIdentity"]["uri"] = "x".repeat(101).into()).is_err());
        assert!(edited(|v| v["latestDebtorInfo"]["uri"] = "a\u{0}b".into()).is_err());
        assert!(edited(|v| v["latestDebtorInfo"] = "https://x".into()).is_err());
    }

    #[test]
    fn required_members_may_not_be_missing_or_null() {
        for field in ["type", "latestDebtorInfo", "debtorIdentity"] {
            assert!(edited(|v| v[field] = Value::Null).is_err(), "{field}");
            assert!(
                edited(|v| {
                    v.as_object_mut().unwrap().remove(field);
                })
                .is_err(),
                "{field}"
            );
        }
        for field in ["type", "latestDebtorInfo", "debtorIdentity", "exchangeRate"] {
            assert!(
                edited(|v| {
                    v["peg"].as_object_mut().unwrap().remove(field);
                })
                .is_err(),
                "peg.{field}"
            );
        }
        // Optional members may be missing, but not null.
        assert!(edited(|v| v["peg"] = Value::Null).is_err());
        assert!(edited(|v| v["willNotChangeUntil"] = Value::Null).is_err());
    }

    #[test]
    fn the_exchange_rate_is_a_finite_non_negative_number() {
        let rate = |r: Value| edited(|v| v["peg"]["exchangeRate"] = r).map(|d| d.peg.unwrap());
        assert_eq!(rate(0.into()).unwrap().exchange_rate, 0.0);
        assert_eq!(rate(2.into()).unwrap().exchange_rate, 2.0);
        assert_eq!(rate(" 1.5 ".into()).unwrap().exchange_rate, 1.5);
        assert!(rate((-0.1).into()).is_err());
        assert!(rate("nan".into()).is_err());
        assert!(rate("inf".into()).is_err());
        assert!(rate("x".into()).is_err());
        assert!(rate(true.into()).is_err());
        assert!(
            parse(
                CT,
                with_peg().to_string().replace("2.5", "1e400").as_bytes()
            )
            .is_err()
        );
    }

    #[test]
    fn will_not_change_until_is_a_date_time() {
        let at = |s: &str| edited(|v| v["willNotChangeUntil"] = s.into());
        assert_eq!(
            at("2030-01-02T03:04:05+02:00")
                .unwrap()
                .will_not_change_until,
            Some("2030-01-02T01:04:05Z".parse().unwrap())
        );
        // Without an offset: UTC (docs/messages.md#field-parsing-rules).
        assert_eq!(
            at("2030-01-02 03:04").unwrap().will_not_change_until,
            Some("2030-01-02T03:04:00Z".parse().unwrap())
        );
        assert!(at("2030-01-02").is_err());
        assert!(at("tomorrow").is_err());
        assert!(edited(|v| v["willNotChangeUntil"] = 5.into()).is_err());
    }
}

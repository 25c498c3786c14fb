//! Field-level rejections: what makes the consumer dead-letter a delivery
//! (docs/messages.md#rejected-deliveries).

use serde_json::{Value, json};

use super::edits::{accepts, edited, errors, rejects};
use crate::messages::*;

#[test]
fn delivery_level_rejections() {
    // The reference's consumer test (docs/messages.md#rejected-deliveries).
    let purge = edited("AccountPurge", &[]);
    let e = decode_delivery(Some("xxx"), Some("AccountPurge"), &purge).unwrap_err();
    assert_eq!(e.to_string(), "Unknown message content type: \"xxx\"");
    let e = decode_delivery(None, Some("AccountPurge"), &purge).unwrap_err();
    assert_eq!(e, DecodeError::UnknownContentType(None));
    let e = decode_delivery(Some("application/json"), Some("xxx"), &purge).unwrap_err();
    assert_eq!(e.to_string(), "Unknown message type: \"xxx\"");
    let e = decode_delivery(Some("application/json"), None, &purge).unwrap_err();
    assert_eq!(e, DecodeError::UnknownType(None));
    // Outgoing-only SMP types are not consumed.
    assert!(matches!(
        decode("PrepareTransfer", &purge),
        Err(DecodeError::UnknownType(_))
    ));
    assert!(matches!(
        decode("AccountPurge", b"body"),
        Err(DecodeError::InvalidJson(_))
    ));
    assert!(matches!(
        decode("AccountPurge", b"\xff{}"),
        Err(DecodeError::InvalidJson(_))
    ));
    let e = decode("AccountPurge", b"{}").unwrap_err();
    let DecodeError::Invalid {
        message_type,
        errors,
    } = e
    else {
        panic!("{e:?}")
    };
    assert_eq!(message_type, "AccountPurge");
    for field in ["type", "debtor_id", "creditor_id", "creation_date", "ts"] {
        assert!(errors.has_field(field), "{field}: {errors}");
    }
    let e = decode("AccountPurge", b"[1]").unwrap_err();
    assert!(matches!(e, DecodeError::Invalid { ref errors, .. } if errors.has_field("_schema")));
}

#[test]
fn body_type_must_match_the_property() {
    rejects(
        "AccountPurge",
        &[("type", Some(json!("AccountUpdate")))],
        "type",
        "Invalid type.",
    );
    rejects(
        "AccountPurge",
        &[("type", Some(json!(1)))],
        "type",
        "Not a valid string.",
    );
    let body = edited("AccountPurge", &[]);
    assert!(decode("AccountUpdate", &body).is_err());
}

#[test]
fn missing_null_and_wrongly_typed_fields() {
    rejects("AccountUpdate", &[("ttl", None)], "ttl", "Missing data");
    rejects(
        "AccountUpdate",
        &[("account_id", Some(Value::Null))],
        "account_id",
        "may not be null",
    );
    rejects(
        "AccountUpdate",
        &[("account_id", Some(json!(5)))],
        "account_id",
        "Not a valid string.",
    );
    rejects(
        "AccountUpdate",
        &[("principal", Some(json!(true)))],
        "principal",
        "Not a valid integer.",
    );
    rejects(
        "AccountUpdate",
        &[("principal", Some(json!("1.5")))],
        "principal",
        "Not a valid integer.",
    );
    rejects(
        "AccountUpdate",
        &[("interest", Some(json!("abc")))],
        "interest",
        "Not a valid number.",
    );
    rejects(
        "AccountUpdate",
        &[("interest", Some(json!(false)))],
        "interest",
        "Not a valid number.",
    );
    rejects(
        "TriggerTransfer",
        &[("is_dispatching", Some(json!("maybe")))],
        "is_dispatching",
        "boolean",
    );
    rejects(
        "TriggerTransfer",
        &[("is_dispatching", Some(json!(2)))],
        "is_dispatching",
        "boolean",
    );
    // Every bad field is reported at once.
    let errs = errors(
        "AccountUpdate",
        &[("ttl", None), ("ts", Some(json!("now")))],
    );
    assert!(errs.has_field("ttl") && errs.has_field("ts"), "{errs}");
}

#[test]
fn integer_ranges() {
    // The reference's schema edge values (docs/messages.md#field-parsing-rules).
    rejects(
        "CandidateOffer",
        &[("amount", Some(json!(i64::MIN)))],
        "amount",
        "Must be greater than or equal to",
    );
    rejects(
        "CandidateOffer",
        &[("amount", Some(json!(0)))],
        "amount",
        "Amount can not be zero.",
    );
    rejects(
        "NeededCollector",
        &[("debtor_id", Some(json!(0)))],
        "debtor_id",
        "Invalid debtor ID.",
    );
    rejects(
        "StartSending",
        &[("debtor_id", Some(json!(0)))],
        "debtor_id",
        "Invalid debtor ID.",
    );
    rejects(
        "CandidateOffer",
        &[("turn_id", Some(json!(2147483648_i64)))],
        "turn_id",
        "less than or equal to",
    );
    rejects(
        "AccountUpdate",
        &[("creditor_id", Some(json!(9223372036854775808_u64)))],
        "creditor_id",
        "Must be",
    );
    rejects(
        "AccountUpdate",
        &[("ttl", Some(json!(-1)))],
        "ttl",
        "Must be",
    );
    rejects(
        "AccountUpdate",
        &[("transfer_note_max_bytes", Some(json!(501)))],
        "transfer_note_max_bytes",
        "Must",
    );
    rejects(
        "FetchDebtorInfo",
        &[("recursion_level", Some(json!(32768)))],
        "recursion_level",
        "Must",
    );
    rejects(
        "UpdatedLedger",
        &[("update_id", Some(json!(0)))],
        "update_id",
        "Must",
    );
    rejects(
        "AccountTransfer",
        &[("acquired_amount", Some(json!(0)))],
        "acquired_amount",
        "zero",
    );
    rejects(
        "AccountTransfer",
        &[("transfer_number", Some(json!(0)))],
        "transfer_number",
        "Must",
    );
    rejects(
        "PreparedTransfer",
        &[("locked_amount", Some(json!(-1)))],
        "locked_amount",
        "Must",
    );
    rejects(
        "PreparedTransfer",
        &[("transfer_id", Some(json!(1e19)))],
        "transfer_id",
        "Must",
    );
}

#[test]
fn float_ranges() {
    rejects(
        "AccountUpdate",
        &[("negligible_amount", Some(json!(-1.0)))],
        "negligible_amount",
        "Must",
    );
    rejects(
        "AccountUpdate",
        &[("interest_rate", Some(json!(-100.5)))],
        "interest_rate",
        "Must",
    );
    rejects(
        "AccountUpdate",
        &[("demurrage_rate", Some(json!(0.5)))],
        "demurrage_rate",
        "Must",
    );
    rejects(
        "AccountUpdate",
        &[("interest", Some(json!("NaN")))],
        "interest",
        "Special numeric values",
    );
    rejects(
        "AccountUpdate",
        &[("interest", Some(json!("-inf")))],
        "interest",
        "Special numeric values",
    );
    rejects(
        "StoreDocument",
        &[("peg_exchange_rate", Some(json!(-0.1)))],
        "peg_exchange_rate",
        "Must",
    );
}

#[test]
fn string_limits() {
    let long = "a".repeat(101);
    rejects(
        "AccountUpdate",
        &[("account_id", Some(json!(long)))],
        "account_id",
        "Longer than maximum length 100.",
    );
    rejects(
        "AccountUpdate",
        &[("account_id", Some(json!("Аccount")))],
        "account_id",
        "non-ASCII",
    );
    rejects(
        "PreparedTransfer",
        &[("recipient", Some(json!("ü")))],
        "recipient",
        "non-ASCII",
    );
    rejects(
        "RejectedConfig",
        &[("rejection_code", Some(json!("É")))],
        "rejection_code",
        "non-ASCII",
    );
    rejects(
        "AccountUpdate",
        &[("debtor_info_iri", Some(json!("é".repeat(201))))],
        "debtor_info_iri",
        "Longer",
    );
    accepts(
        "AccountUpdate",
        &[("debtor_info_iri", Some(json!("é".repeat(200))))],
    );
    // 2000 code points but 4000 bytes.
    rejects(
        "AccountUpdate",
        &[("config_data", Some(json!("ж".repeat(2000))))],
        "config_data",
        "2000 bytes",
    );
    accepts(
        "AccountUpdate",
        &[("config_data", Some(json!("ж".repeat(1000))))],
    );
    rejects(
        "AccountTransfer",
        &[("transfer_note", Some(json!("ж".repeat(251))))],
        "transfer_note",
        "bytes",
    );
    rejects(
        "AccountTransfer",
        &[("coordinator_type", Some(json!("")))],
        "coordinator_type",
        "between 1 and 30",
    );
    rejects(
        "ActivateCollector",
        &[("account_id", Some(json!("")))],
        "account_id",
        "between 1 and 100",
    );
    rejects(
        "RejectedTransfer",
        &[("status_code", Some(json!("OK")))],
        "status_code",
        "OK",
    );
    rejects(
        "AccountTransfer",
        &[("transfer_note_format", Some(json!("a b")))],
        "transfer_note_format",
        "pattern",
    );
    rejects(
        "AccountTransfer",
        &[("transfer_note_format", Some(json!("123456789")))],
        "transfer_note_format",
        "pattern",
    );
    let mixed = format!("A{}", "b".repeat(63));
    rejects(
        "AccountUpdate",
        &[("debtor_info_sha256", Some(json!(mixed)))],
        "debtor_info_sha256",
        "pattern",
    );
    accepts(
        "AccountUpdate",
        &[("debtor_info_sha256", Some(json!("AB".repeat(32))))],
    );
    accepts("AccountUpdate", &[("debtor_info_sha256", Some(json!("")))]);
}

#[test]
fn a_null_character_in_any_string_field_is_rejected() {
    // PostgreSQL text cannot hold U+0000, so a message carrying one would be refused by the
    // database forever: every string field of every incoming type refuses it up front.
    let mut checked = 0;
    for sample in super::samples::incoming() {
        let message_type = sample.message_type();
        let body: Value = serde_json::from_slice(&sample.to_json()).unwrap();
        let Value::Object(fields) = &body else {
            panic!("{message_type}: not an object")
        };
        for (name, value) in fields {
            let Value::String(text) = value else { continue };
            if name == "type" || super::super::time::parse_datetime(text).is_some() {
                continue; // the type tag and date-times are checked by their own rules
            }
            if super::super::time::parse_date(text).is_some() {
                continue;
            }
            let mut edited = fields.clone();
            edited.insert(name.clone(), Value::String(format!("{text}\u{0}")));
            let raw = serde_json::to_vec(&Value::Object(edited)).unwrap();
            let e = decode(message_type, &raw).expect_err(&format!("{message_type}.{name}"));
            let DecodeError::Invalid { errors, .. } = e else {
                panic!("{message_type}.{name}: {e:?}")
            };
            assert!(errors.has_field(name), "{message_type}.{name}: {errors}");
            checked += 1;
        }
    }
    // Every type with a free-text field contributes (account IDs, IRIs, notes, names, …).
    assert!(checked >= 20, "only {checked} string fields checked");
}

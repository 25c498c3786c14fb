//! Date-time forms, cross-field rules and the reference leniencies the consumer must keep.

use serde_json::{Value, json};

use super::edits::{accepts, errors, rejects};
use super::samples;
use crate::messages::*;

#[test]
fn dates_and_times() {
    rejects(
        "AccountPurge",
        &[("ts", Some(json!("2024-13-01T00:00:00Z")))],
        "ts",
        "Not a valid datetime.",
    );
    rejects(
        "AccountPurge",
        &[("ts", Some(json!(1714564800)))],
        "ts",
        "Not a valid datetime.",
    );
    rejects(
        "AccountPurge",
        &[("ts", Some(json!("")))],
        "ts",
        "Not a valid datetime.",
    );
    rejects(
        "AccountPurge",
        &[("creation_date", Some(json!("2024-01-01T00:00:00Z")))],
        "creation_date",
        "date",
    );
    rejects(
        "AccountPurge",
        &[("creation_date", Some(json!("24-01-01")))],
        "creation_date",
        "Not a valid date.",
    );
    let IncomingMessage::AccountPurge(m) = accepts(
        "AccountPurge",
        &[
            ("ts", Some(json!("2024-05-01 14:00+0200"))),
            ("creation_date", Some(json!("2024-1-5"))),
        ],
    ) else {
        unreachable!()
    };
    assert_eq!(m.ts, samples::ts("2024-05-01T12:00:00Z"));
    assert_eq!(m.creation_date, samples::date("2024-01-05"));
    // No offset: read as UTC (docs/messages.md#field-parsing-rules, our documented choice).
    let IncomingMessage::AccountPurge(m) = accepts(
        "AccountPurge",
        &[("ts", Some(json!("2024-05-01T12:00:00")))],
    ) else {
        unreachable!()
    };
    assert_eq!(m.ts, samples::ts("2024-05-01T12:00:00Z"));
}

#[test]
fn cross_field_rules() {
    // The reference's schema edge values (docs/messages.md#field-parsing-rules).
    rejects(
        "UpdatedPolicy",
        &[("peg_debtor_id", Some(Value::Null))],
        "_schema",
        "peg_exchange_rate",
    );
    rejects(
        "UpdatedPolicy",
        &[("peg_exchange_rate", None)],
        "_schema",
        "peg_exchange_rate",
    );
    rejects(
        "UpdatedPolicy",
        &[
            ("min_principal", Some(json!(i64::MAX))),
            ("max_principal", Some(json!(0))),
        ],
        "_schema",
        "max_principal",
    );
    rejects(
        "StoreDocument",
        &[("peg_debtor_id", None), ("peg_exchange_rate", None)],
        "_schema",
        "all be present",
    );
    rejects(
        "AccountTransfer",
        &[("previous_transfer_number", Some(json!(5)))],
        "_schema",
        "transfer_number",
    );
    rejects(
        "FinalizedTransfer",
        &[("status_code", Some(json!("TIMEOUT")))],
        "_schema",
        "committed_amount",
    );
    // Schema rules are skipped while a field is invalid, as in marshmallow.
    let errs = errors(
        "UpdatedPolicy",
        &[("peg_debtor_id", Some(Value::Null)), ("ts", None)],
    );
    assert!(!errs.has_field("_schema"), "{errs}");
}

#[test]
fn reference_leniencies_are_kept() {
    // Unknown properties are ignored; optional properties may be missing or null.
    accepts("StoreDocument", &[("extra", Some(json!({"x": [1, 2]})))]);
    let edits: Vec<_> = [
        "peg_debtor_info_locator",
        "peg_debtor_id",
        "peg_exchange_rate",
        "will_not_change_until",
    ]
    .into_iter()
    .map(|f| (f, None))
    .collect();
    accepts("StoreDocument", &edits);
    accepts("FetchDebtorInfo", &[("forced_iri", Some(Value::Null))]);
    // Integers from integral strings and truncated floats; floats from strings; boolean words.
    let IncomingMessage::TriggerTransfer(m) = accepts(
        "TriggerTransfer",
        &[
            ("collector_id", Some(json!(" 1_000 "))),
            ("turn_id", Some(json!(2.9))),
            ("is_dispatching", Some(json!("no"))),
        ],
    ) else {
        unreachable!()
    };
    assert_eq!(
        (m.collector_id, m.turn_id, m.is_dispatching),
        (1000, 2, false)
    );
    let IncomingMessage::AccountUpdate(m) =
        accepts("AccountUpdate", &[("interest", Some(json!("1e3")))])
    else {
        unreachable!()
    };
    assert_eq!(m.interest, 1000.0);
    // Python's `$` lets a regex-checked value end with one newline.
    accepts(
        "AccountTransfer",
        &[("transfer_note_format", Some(json!("-cXchge\n")))],
    );
}

//! Helpers that decode a sample message after editing some of its JSON properties.

use serde_json::Value;

use super::samples;
use crate::messages::*;

/// The sample of `message_type`, as JSON, with some properties replaced (`Some`) or removed
/// (`None`).
pub fn edited(message_type: &str, edits: &[(&str, Option<Value>)]) -> Vec<u8> {
    let sample = samples::incoming()
        .into_iter()
        .find(|m| m.message_type() == message_type)
        .unwrap();
    let mut value: Value = serde_json::from_slice(&sample.to_json()).unwrap();
    let obj = value.as_object_mut().unwrap();
    for (name, edit) in edits {
        match edit {
            Some(v) => obj.insert((*name).to_owned(), v.clone()),
            None => obj.remove(*name),
        };
    }
    serde_json::to_vec(&value).unwrap()
}

/// Decodes an edited sample and returns the validation errors.
pub fn errors(message_type: &str, edits: &[(&str, Option<Value>)]) -> ValidationErrors {
    match decode(message_type, &edited(message_type, edits)) {
        Err(DecodeError::Invalid { errors, .. }) => errors,
        other => panic!("{message_type} {edits:?}: expected a validation error, got {other:?}"),
    }
}

/// Asserts that the edit makes `field` fail, with a reason containing `reason`.
pub fn rejects(message_type: &str, edits: &[(&str, Option<Value>)], field: &str, reason: &str) {
    let errs = errors(message_type, edits);
    let hit = errs.0.iter().find(|e| e.field == field);
    assert!(
        hit.is_some_and(|e| e.reason.contains(reason)),
        "{message_type} {edits:?}: wanted {field}: {reason:?}, got {errs}"
    );
}

pub fn accepts(message_type: &str, edits: &[(&str, Option<Value>)]) -> IncomingMessage {
    decode(message_type, &edited(message_type, edits)).unwrap_or_else(|e| panic!("{edits:?}: {e}"))
}

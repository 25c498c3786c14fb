//! Every message the worker consumes or publishes, without any I/O.
//!
//! * [`IncomingMessage`] and [`decode_delivery`]/[`decode`] turn a delivery into a validated
//!   value, rejecting exactly what the reference rejects (docs/messages.md#incoming-messages).
//! * [`OutgoingMessage`] and [`MessageEnvelope`] give the body, exchange, routing key,
//!   properties and `mandatory` flag of the 16 signal types
//!   (docs/messages.md#outgoing-message-types); the broker layer only has to translate the
//!   envelope.
//! * [`ShardingRealm`] and the routing-key functions implement
//!   docs/messages.md#sharding-and-routing-keys.
//!
//! The wire format is the Swaptacular Messaging Protocol's JSON serialization plus the
//! reference's internal message types (`swpt_trade/schemas.py`, `swpt_trade/models/signals.py`).

mod agent;
mod incoming;
mod internal_debtors;
mod internal_turns;
mod json;
mod outgoing;
mod pyvalues;
mod smp_in;
mod smp_out;
mod smp_transfers;
mod time;
mod validate;

#[cfg(test)]
mod tests;

pub use crate::sharding::{
    InvalidRoutingKey, ShardingKey, ShardingRealm, bin_routing_key, bin_routing_key_of_ids,
    hex_routing_key, i16_hash, ids_digest, str_routing_key,
};
pub use agent::{UpdatedFlags, UpdatedLedger, UpdatedPolicy};
pub use incoming::{CONTENT_TYPE_JSON, DecodeError, IncomingMessage, decode, decode_delivery};
pub use internal_debtors::{
    ActivateCollector, ConfirmDebtor, DiscoverDebtor, FetchDebtorInfo, NeededCollector,
    StoreDocument,
};
pub use internal_turns::{
    AccountIdRequest, AccountIdResponse, CandidateOffer, ReviseAccountLock, StartDispatching,
    StartSending, TriggerTransfer,
};
pub use outgoing::{
    APP_ID, HeaderValue, MessageEnvelope, OutgoingMessage, ShardGuard, validate_outgoing,
};
pub use smp_in::{AccountPurge, AccountTransfer, AccountUpdate, RejectedConfig};
pub use smp_out::{AGENT_COORDINATOR_TYPE, ConfigureAccount, FinalizeTransfer, PrepareTransfer};
pub use smp_transfers::{FinalizedTransfer, PreparedTransfer, RejectedTransfer};
pub use time::{format_date, format_datetime, parse_date, parse_datetime};
pub use validate::{FieldError, ValidationErrors};

use json::ObjectWriter;
use validate::Reader;

/// A message type with a fixed `type` name, readable from a JSON body.
pub(crate) trait Decode: Sized {
    /// The message type name (the AMQP `type` property and the body's `type` field).
    const TYPE: &'static str;

    /// Reads every field, recording failures in `r` (field-level rules included).
    fn read(r: &mut Reader<'_>) -> Self;

    /// Cross-field rules; like marshmallow's schema validators they run only when every field
    /// is valid. Returns the reason of the first broken rule.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }

    /// Validates a parsed JSON value as this message type.
    fn from_json(value: &serde_json::Value) -> Result<Self, ValidationErrors> {
        let Some(obj) = value.as_object() else {
            return Err(schema_error("Invalid input type."));
        };
        let mut r = Reader::new(obj, Self::TYPE);
        let msg = Self::read(&mut r);
        r.finish()?;
        msg.check().map_err(schema_error)?;
        Ok(msg)
    }
}

/// A message type that serializes to the reference's exact JSON body.
pub(crate) trait Encode: Decode {
    /// Writes every field after `type`, in the reference's order.
    fn write(&self, w: &mut ObjectWriter);

    /// The compact UTF-8 JSON body (docs/messages.md#message-format).
    fn to_json(&self) -> Vec<u8> {
        let mut w = ObjectWriter::new(Self::TYPE);
        self.write(&mut w);
        w.finish()
    }
}

fn schema_error(reason: impl Into<String>) -> ValidationErrors {
    ValidationErrors(vec![FieldError {
        field: "_schema".to_owned(),
        reason: reason.into(),
    }])
}

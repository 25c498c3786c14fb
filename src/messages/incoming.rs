//! The 23 message types the worker consumes, and the decoding steps 1–4 of the consumer
//! algorithm (docs/messages.md#decoding-and-validation).

use super::agent::{UpdatedFlags, UpdatedLedger, UpdatedPolicy};
use super::internal_debtors::{
    ActivateCollector, ConfirmDebtor, DiscoverDebtor, FetchDebtorInfo, NeededCollector,
    StoreDocument,
};
use super::internal_turns::{
    AccountIdRequest, AccountIdResponse, CandidateOffer, ReviseAccountLock, StartDispatching,
    StartSending, TriggerTransfer,
};
use super::smp_in::{AccountPurge, AccountTransfer, AccountUpdate, RejectedConfig};
use super::smp_out::{ConfigureAccount, FinalizeTransfer, PrepareTransfer};
use super::smp_transfers::{FinalizedTransfer, PreparedTransfer, RejectedTransfer};
use super::validate::ValidationErrors;
use super::{Decode, Encode};
use crate::sharding::{ShardingKey, ShardingRealm};

/// The only content type the consumer accepts, and the one every outgoing message carries.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// Why a delivery was rejected before reaching a handler; each case means
/// `basic.reject(requeue=false)` (docs/messages.md#rejected-deliveries).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The `content_type` property is not `application/json`.
    #[error("Unknown message content type: \"{}\"", .0.as_deref().unwrap_or("None"))]
    UnknownContentType(Option<String>),
    /// The `type` property is not one of the accepted message types.
    #[error("Unknown message type: \"{}\"", .0.as_deref().unwrap_or("None"))]
    UnknownType(Option<String>),
    /// The body is not UTF-8 or not JSON.
    #[error("The message does not contain a valid JSON document: {0}")]
    InvalidJson(String),
    /// The body does not satisfy the message type's schema.
    #[error("Message validation error ({message_type}): {errors}")]
    Invalid {
        /// The message type the body was validated as.
        message_type: &'static str,
        /// Every failing field.
        errors: ValidationErrors,
    },
}

/// Adds `sharding_key()` to message structs sharded by an ID field
/// (docs/messages.md#sharding-keys).
macro_rules! sharded_by_id {
    ($field:ident: $($t:ty),* $(,)?) => {
        $(
            impl $t {
                /// The value this message is sharded and routed by
                /// (docs/messages.md#sharding-keys).
                pub fn sharding_key(&self) -> ShardingKey<'_> {
                    ShardingKey::Id(self.$field)
                }
            }
        )*
    };
}

sharded_by_id!(creditor_id:
    RejectedConfig, AccountUpdate, AccountPurge, AccountTransfer, RejectedTransfer, PreparedTransfer,
    FinalizedTransfer, ConfigureAccount, PrepareTransfer, FinalizeTransfer, UpdatedLedger, UpdatedPolicy,
    UpdatedFlags, ActivateCollector, CandidateOffer, ReviseAccountLock, AccountIdRequest,
);
sharded_by_id!(debtor_id: DiscoverDebtor, ConfirmDebtor, NeededCollector);
sharded_by_id!(collector_id: TriggerTransfer, AccountIdResponse, StartSending, StartDispatching);

impl FetchDebtorInfo {
    /// The value this message is sharded and routed by: the IRI (docs/messages.md#sharding-keys).
    pub fn sharding_key(&self) -> ShardingKey<'_> {
        ShardingKey::Str(&self.iri)
    }
}

impl StoreDocument {
    /// The value this message is sharded and routed by: the locator
    /// (docs/messages.md#sharding-keys).
    pub fn sharding_key(&self) -> ShardingKey<'_> {
        ShardingKey::Str(&self.debtor_info_locator)
    }
}

macro_rules! incoming_messages {
    ($($name:ident),* $(,)?) => {
        /// A validated message of one of the 23 types the worker consumes
        /// (docs/messages.md#incoming-message-types).
        #[derive(Debug, Clone, PartialEq)]
        pub enum IncomingMessage {
            $(
                #[doc = concat!("A `", stringify!($name), "` message.")]
                $name($name),
            )*
        }

        $(
            impl From<$name> for IncomingMessage {
                fn from(m: $name) -> Self {
                    Self::$name(m)
                }
            }
        )*

        impl IncomingMessage {
            /// Every accepted message type, in the reference's order.
            pub const TYPES: &'static [&'static str] = &[$($name::TYPE),*];

            /// The message type name.
            pub fn message_type(&self) -> &'static str {
                match self {
                    $(Self::$name(_) => $name::TYPE,)*
                }
            }

            /// The value this message is sharded by (docs/messages.md#sharding-keys).
            pub fn sharding_key(&self) -> ShardingKey<'_> {
                match self {
                    $(Self::$name(m) => m.sharding_key(),)*
                }
            }

            /// The message as a JSON body, in the reference's field order (handy for tests
            /// and for re-publishing).
            pub fn to_json(&self) -> Vec<u8> {
                match self {
                    $(Self::$name(m) => m.to_json(),)*
                }
            }

            /// Validates `value` as `message_type`; `None` for an unknown type.
            fn from_value(
                message_type: &str,
                value: &serde_json::Value,
            ) -> Option<Result<Self, (&'static str, ValidationErrors)>> {
                $(
                    if message_type == $name::TYPE {
                        return Some($name::from_json(value).map(Self::$name).map_err(|e| ($name::TYPE, e)));
                    }
                )*
                None
            }
        }
    };
}

incoming_messages!(
    RejectedConfig,
    AccountUpdate,
    AccountPurge,
    AccountTransfer,
    RejectedTransfer,
    PreparedTransfer,
    FinalizedTransfer,
    FetchDebtorInfo,
    StoreDocument,
    DiscoverDebtor,
    ConfirmDebtor,
    ActivateCollector,
    CandidateOffer,
    NeededCollector,
    ReviseAccountLock,
    TriggerTransfer,
    AccountIdRequest,
    AccountIdResponse,
    StartSending,
    StartDispatching,
    UpdatedLedger,
    UpdatedPolicy,
    UpdatedFlags,
);

impl IncomingMessage {
    /// Whether this worker's realm owns the message (docs/messages.md#shard-check).
    ///
    /// Only the realm itself counts: `DELETE_PARENT_SHARD_RECORDS` does not widen it. A
    /// `false` here is fatal for the consumer ("The server is not responsible for this
    /// shard."), not a rejection.
    pub fn belongs_to(&self, realm: &ShardingRealm) -> bool {
        realm.contains(self.sharding_key())
    }
}

/// Decodes a delivery: checks the `content_type` and `type` properties, then the body
/// (docs/messages.md#decoding-and-validation).
pub fn decode_delivery(
    content_type: Option<&str>,
    message_type: Option<&str>,
    body: &[u8],
) -> Result<IncomingMessage, DecodeError> {
    if content_type != Some(CONTENT_TYPE_JSON) {
        return Err(DecodeError::UnknownContentType(
            content_type.map(str::to_owned),
        ));
    }
    decode(message_type.unwrap_or_default(), body).map_err(|e| match e {
        DecodeError::UnknownType(_) => DecodeError::UnknownType(message_type.map(str::to_owned)),
        other => other,
    })
}

/// Decodes and validates a body as `message_type` (the AMQP `type` property).
///
/// The body must be UTF-8 JSON whose `type` field equals `message_type`; unknown properties
/// are ignored (docs/messages.md#field-parsing-rules).
pub fn decode(message_type: &str, body: &[u8]) -> Result<IncomingMessage, DecodeError> {
    if !IncomingMessage::TYPES.contains(&message_type) {
        return Err(DecodeError::UnknownType(Some(message_type.to_owned())));
    }
    let value = parse_json(body)?;
    match IncomingMessage::from_value(message_type, &value) {
        Some(result) => result.map_err(|(message_type, errors)| DecodeError::Invalid {
            message_type,
            errors,
        }),
        None => Err(DecodeError::UnknownType(Some(message_type.to_owned()))),
    }
}

/// Parses a UTF-8 JSON document.
///
/// Python's `json.loads` also accepts the literals `NaN`, `Infinity` and `-Infinity`; the
/// schemas reject them in every known field, so only a body carrying them in an ignored
/// property is treated differently (rejected here, accepted by the reference).
pub(crate) fn parse_json(body: &[u8]) -> Result<serde_json::Value, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
    serde_json::from_str(text).map_err(|e| DecodeError::InvalidJson(e.to_string()))
}

//! The 16 signal types the worker publishes, and how each becomes an AMQP message
//! (docs/messages.md#outgoing-message-types, docs/messages.md#message-format).

use super::incoming::{CONTENT_TYPE_JSON, DecodeError, parse_json};
use super::internal_debtors::{
    ActivateCollector, ConfirmDebtor, DiscoverDebtor, FetchDebtorInfo, NeededCollector,
    StoreDocument,
};
use super::internal_turns::{
    AccountIdRequest, AccountIdResponse, CandidateOffer, ReviseAccountLock, StartDispatching,
    StartSending, TriggerTransfer,
};
use super::smp_out::{AGENT_COORDINATOR_TYPE, ConfigureAccount, FinalizeTransfer, PrepareTransfer};
use super::{Decode, Encode};
use crate::broker::{CREDITORS_OUT, TO_TRADE};
use crate::sharding::{ShardingKey, ShardingRealm, hex_routing_key};

/// The AMQP `app_id` property of every published message.
pub const APP_ID: &str = "swpt_trade";

/// An AMQP header value.
///
/// The reference (pika) encodes integers that fit in `i32` as field type `I` and larger ones
/// as 64-bit; receivers accept any integer type (docs/messages.md#message-format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// A long string.
    Str(String),
    /// A signed integer.
    Int(i64),
}

/// A broker-agnostic message ready to publish; the broker layer maps it onto AMQP.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageEnvelope {
    /// Exchange to publish to.
    pub exchange: &'static str,
    /// Routing key.
    pub routing_key: String,
    /// The `type` property (the message type name).
    pub message_type: &'static str,
    /// The `app_id` property, always [`APP_ID`].
    pub app_id: &'static str,
    /// The `content_type` property, always [`CONTENT_TYPE_JSON`].
    pub content_type: &'static str,
    /// `delivery_mode = 2`; always true.
    pub persistent: bool,
    /// Publish as mandatory: an unroutable message then fails the flush.
    pub mandatory: bool,
    /// Headers, in the reference's order (`message-type` first).
    pub headers: Vec<(&'static str, HeaderValue)>,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// What the flusher must do with an outbox row, per the SMP shard guard
/// (docs/messages.md#the-smp-shard-guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardGuard {
    /// Publish it.
    Publish,
    /// Delete the row without publishing: a left-over of the sibling shard after a split.
    Skip,
    /// Fail the flush: "The server is not responsible for this creditor."
    NotResponsible,
}

macro_rules! outgoing_messages {
    ($($name:ident),* $(,)?) => {
        /// A message of one of the 16 signal types the worker publishes
        /// (docs/messages.md#outgoing-message-types).
        #[derive(Debug, Clone, PartialEq)]
        pub enum OutgoingMessage {
            $(
                #[doc = concat!("A `", stringify!($name), "` message.")]
                $name($name),
            )*
        }

        impl OutgoingMessage {
            /// Every signal type, in the flushers' fixed order (docs/messages.md#flushing).
            pub const TYPES: &'static [&'static str] = &[$($name::TYPE),*];

            /// The message type name.
            pub fn message_type(&self) -> &'static str {
                match self {
                    $(Self::$name(_) => $name::TYPE,)*
                }
            }

            /// The value the message is sharded by (docs/messages.md#sharding-keys).
            pub fn sharding_key(&self) -> ShardingKey<'_> {
                match self {
                    $(Self::$name(m) => m.sharding_key(),)*
                }
            }

            /// The compact JSON body (docs/messages.md#message-format).
            pub fn to_json(&self) -> Vec<u8> {
                match self {
                    $(Self::$name(m) => m.to_json(),)*
                }
            }

            fn from_value(
                message_type: &str,
                value: &serde_json::Value,
            ) -> Option<Result<Self, DecodeError>> {
                $(
                    if message_type == $name::TYPE {
                        return Some($name::from_json(value).map(Self::$name).map_err(|errors| {
                            DecodeError::Invalid { message_type: $name::TYPE, errors }
                        }));
                    }
                )*
                None
            }
        }

        $(
            impl From<$name> for OutgoingMessage {
                fn from(m: $name) -> Self {
                    Self::$name(m)
                }
            }
        )*
    };
}

outgoing_messages!(
    ConfigureAccount,
    PrepareTransfer,
    FinalizeTransfer,
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
);

impl OutgoingMessage {
    /// The `(creditor_id, debtor_id, coordinator_id)` of the three SMP requests; `None` for
    /// internal messages. `coordinator_id` is `None` for `ConfigureAccount`.
    fn smp_ids(&self) -> Option<(i64, i64, Option<i64>)> {
        match self {
            Self::ConfigureAccount(m) => Some((m.creditor_id, m.debtor_id, None)),
            Self::PrepareTransfer(m) => Some((m.creditor_id, m.debtor_id, Some(m.creditor_id))),
            Self::FinalizeTransfer(m) => Some((m.creditor_id, m.debtor_id, Some(m.coordinator_id))),
            _ => None,
        }
    }

    /// Whether this is an SMP request to an accounting authority (published on
    /// `creditors_out`).
    pub fn is_smp(&self) -> bool {
        self.smp_ids().is_some()
    }

    /// The exchange the message is published to.
    pub fn exchange(&self) -> &'static str {
        if self.is_smp() {
            CREDITORS_OUT
        } else {
            TO_TRADE
        }
    }

    /// The routing key: hex debtor ID on `creditors_out`, otherwise the binary key of the
    /// sharding key (docs/messages.md#routing-keys).
    pub fn routing_key(&self) -> String {
        match self.smp_ids() {
            Some((_, debtor_id, _)) => hex_routing_key(debtor_id),
            None => self.sharding_key().routing_key(),
        }
    }

    /// `mandatory` is false only for `ConfigureAccount` and `PrepareTransfer`, whose
    /// unroutable copies go to the alternate exchange instead (docs/messages.md#message-format).
    pub fn mandatory(&self) -> bool {
        !matches!(self, Self::ConfigureAccount(_) | Self::PrepareTransfer(_))
    }

    /// Headers: `message-type` always; `creditor-id` and `debtor-id` for SMP requests, plus
    /// `coordinator-id` and `coordinator-type` for `PrepareTransfer`/`FinalizeTransfer`.
    pub fn headers(&self) -> Vec<(&'static str, HeaderValue)> {
        let mut headers = vec![(
            "message-type",
            HeaderValue::Str(self.message_type().to_owned()),
        )];
        if let Some((creditor_id, debtor_id, coordinator_id)) = self.smp_ids() {
            headers.push(("creditor-id", HeaderValue::Int(creditor_id)));
            headers.push(("debtor-id", HeaderValue::Int(debtor_id)));
            if let Some(coordinator_id) = coordinator_id {
                headers.push(("coordinator-id", HeaderValue::Int(coordinator_id)));
                headers.push((
                    "coordinator-type",
                    HeaderValue::Str(AGENT_COORDINATOR_TYPE.to_owned()),
                ));
            }
        }
        headers
    }

    /// The complete message to publish.
    pub fn envelope(&self) -> MessageEnvelope {
        MessageEnvelope {
            exchange: self.exchange(),
            routing_key: self.routing_key(),
            message_type: self.message_type(),
            app_id: APP_ID,
            content_type: CONTENT_TYPE_JSON,
            persistent: true,
            mandatory: self.mandatory(),
            headers: self.headers(),
            body: self.to_json(),
        }
    }

    /// The SMP shard guard applied before publishing (docs/messages.md#the-smp-shard-guard): an
    /// SMP request must belong to this realm; if it does not but belongs to the parent realm and
    /// `DELETE_PARENT_SHARD_RECORDS` is on, it is skipped. Internal messages always publish.
    pub fn shard_guard(
        &self,
        realm: &ShardingRealm,
        delete_parent_shard_records: bool,
    ) -> ShardGuard {
        let Some((creditor_id, _, _)) = self.smp_ids() else {
            return ShardGuard::Publish;
        };
        let key = ShardingKey::Id(creditor_id);
        if realm.contains(key) {
            ShardGuard::Publish
        } else if delete_parent_shard_records && realm.parent_contains(key) {
            ShardGuard::Skip
        } else {
            ShardGuard::NotResponsible
        }
    }
}

/// Validates a body as one of the 16 outgoing types, applying the schema its receiver uses
/// (the SMP schema for the three SMP requests, `swpt_trade/schemas.py` for the rest).
///
/// Meant for tests and diagnostics of the outbox; the consumer uses [`super::decode`].
pub fn validate_outgoing(message_type: &str, body: &[u8]) -> Result<OutgoingMessage, DecodeError> {
    if !OutgoingMessage::TYPES.contains(&message_type) {
        return Err(DecodeError::UnknownType(Some(message_type.to_owned())));
    }
    let value = parse_json(body)?;
    OutgoingMessage::from_value(message_type, &value)
        .unwrap_or_else(|| Err(DecodeError::UnknownType(Some(message_type.to_owned()))))
}

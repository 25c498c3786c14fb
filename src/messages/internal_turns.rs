//! Internal worker-to-worker messages that drive a trading turn's transfers
//! (docs/messages.md#internal-messages, docs/turns.md#transfers).
//!
//! Field rules follow `swpt_trade/schemas.py`; JSON field order follows
//! `swpt_trade/models/signals.py`. For outgoing messages `ts` is the outbox row's
//! `inserted_at`.

use chrono::{DateTime, NaiveDate, Utc};

use super::json::ObjectWriter;
use super::smp_in::ACCOUNT_ID_MAX;
use super::validate::{MAX_I64, Reader, StrRules};
use super::{Decode, Encode};

/// A customer's buy (positive) or sell (negative) offer for a turn (sharded by
/// `creditor_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateOffer {
    pub turn_id: i32,
    pub debtor_id: i64,
    pub creditor_id: i64,
    /// `-i64::MAX..=i64::MAX`, never zero.
    pub amount: i64,
    pub account_creation_date: NaiveDate,
    /// `0..=i64::MAX`.
    pub last_transfer_number: i64,
    pub ts: DateTime<Utc>,
}

impl Decode for CandidateOffer {
    const TYPE: &'static str = "CandidateOffer";

    fn read(r: &mut Reader<'_>) -> Self {
        let msg = CandidateOffer {
            turn_id: r.i32("turn_id"),
            debtor_id: r.id("debtor_id"),
            creditor_id: r.id("creditor_id"),
            amount: r.int("amount", -MAX_I64, MAX_I64),
            account_creation_date: r.date("account_creation_date"),
            last_transfer_number: r.non_negative("last_transfer_number"),
            ts: r.datetime("ts"),
        };
        if msg.amount == 0 && !r.failed("amount") {
            r.fail("amount", "Amount can not be zero.");
        }
        msg
    }
}

impl Encode for CandidateOffer {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("turn_id", self.turn_id.into())
            .int("debtor_id", self.debtor_id)
            .int("creditor_id", self.creditor_id)
            .int("amount", self.amount)
            .date("account_creation_date", &self.account_creation_date)
            .int("last_transfer_number", self.last_transfer_number)
            .datetime("ts", &self.ts);
    }
}

/// Resolve a customer's account lock after the turn was solved (sharded by `creditor_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReviseAccountLock {
    pub creditor_id: i64,
    /// Never zero.
    pub debtor_id: i64,
    pub turn_id: i32,
    pub ts: DateTime<Utc>,
}

impl Decode for ReviseAccountLock {
    const TYPE: &'static str = "ReviseAccountLock";

    fn read(r: &mut Reader<'_>) -> Self {
        ReviseAccountLock {
            creditor_id: r.id("creditor_id"),
            debtor_id: r.nonzero_id("debtor_id"),
            turn_id: r.i32("turn_id"),
            ts: r.datetime("ts"),
        }
    }
}

impl Encode for ReviseAccountLock {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("creditor_id", self.creditor_id)
            .int("debtor_id", self.debtor_id)
            .int("turn_id", self.turn_id.into())
            .datetime("ts", &self.ts);
    }
}

/// Declares a struct naming one transfer attempt of a collector, plus its codec.
macro_rules! transfer_attempt_message {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            pub collector_id: i64,
            pub turn_id: i32,
            /// Never zero.
            pub debtor_id: i64,
            pub creditor_id: i64,
            pub is_dispatching: bool,
            pub ts: DateTime<Utc>,
        }

        impl Decode for $name {
            const TYPE: &'static str = stringify!($name);

            fn read(r: &mut Reader<'_>) -> Self {
                $name {
                    collector_id: r.id("collector_id"),
                    turn_id: r.i32("turn_id"),
                    debtor_id: r.nonzero_id("debtor_id"),
                    creditor_id: r.id("creditor_id"),
                    is_dispatching: r.boolean("is_dispatching"),
                    ts: r.datetime("ts"),
                }
            }
        }

        impl Encode for $name {
            fn write(&self, w: &mut ObjectWriter) {
                w.int("collector_id", self.collector_id)
                    .int("turn_id", self.turn_id.into())
                    .int("debtor_id", self.debtor_id)
                    .int("creditor_id", self.creditor_id)
                    .bool("is_dispatching", self.is_dispatching)
                    .datetime("ts", &self.ts);
            }
        }
    };
}

transfer_attempt_message!(
    /// Retry a due transfer attempt (sharded by `collector_id`).
    TriggerTransfer
);

transfer_attempt_message!(
    /// Ask the recipient's shard for its current account ID (sharded by `creditor_id`).
    AccountIdRequest
);

/// The answer to an [`AccountIdRequest`] (sharded by `collector_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountIdResponse {
    pub collector_id: i64,
    pub turn_id: i32,
    /// Never zero.
    pub debtor_id: i64,
    pub creditor_id: i64,
    pub is_dispatching: bool,
    /// At most 100 code points; empty when unknown.
    pub account_id: String,
    /// Later answers carry greater versions.
    pub account_id_version: i64,
    pub ts: DateTime<Utc>,
}

impl Decode for AccountIdResponse {
    const TYPE: &'static str = "AccountIdResponse";

    fn read(r: &mut Reader<'_>) -> Self {
        AccountIdResponse {
            collector_id: r.id("collector_id"),
            turn_id: r.i32("turn_id"),
            debtor_id: r.nonzero_id("debtor_id"),
            creditor_id: r.id("creditor_id"),
            is_dispatching: r.boolean("is_dispatching"),
            account_id: r.string("account_id", StrRules::chars(ACCOUNT_ID_MAX)),
            account_id_version: r.id("account_id_version"),
            ts: r.datetime("ts"),
        }
    }
}

impl Encode for AccountIdResponse {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("collector_id", self.collector_id)
            .int("turn_id", self.turn_id.into())
            .int("debtor_id", self.debtor_id)
            .int("creditor_id", self.creditor_id)
            .bool("is_dispatching", self.is_dispatching)
            .str("account_id", &self.account_id)
            .int("account_id_version", self.account_id_version)
            .datetime("ts", &self.ts);
    }
}

/// Declares a struct naming one dispatching status of a collector, plus its codec.
macro_rules! dispatching_status_message {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            pub collector_id: i64,
            pub turn_id: i32,
            /// Never zero.
            pub debtor_id: i64,
            pub ts: DateTime<Utc>,
        }

        impl Decode for $name {
            const TYPE: &'static str = stringify!($name);

            fn read(r: &mut Reader<'_>) -> Self {
                $name {
                    collector_id: r.id("collector_id"),
                    turn_id: r.i32("turn_id"),
                    debtor_id: r.nonzero_id("debtor_id"),
                    ts: r.datetime("ts"),
                }
            }
        }

        impl Encode for $name {
            fn write(&self, w: &mut ObjectWriter) {
                w.int("collector_id", self.collector_id)
                    .int("turn_id", self.turn_id.into())
                    .int("debtor_id", self.debtor_id)
                    .datetime("ts", &self.ts);
            }
        }
    };
}

dispatching_status_message!(
    /// Start sending the collected amount to other collectors (sharded by `collector_id`).
    StartSending
);

dispatching_status_message!(
    /// Start dispatching the received amount to buyers (sharded by `collector_id`).
    StartDispatching
);

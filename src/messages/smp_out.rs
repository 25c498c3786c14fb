//! SMP messages the worker sends to accounting authorities, as the Swaptacular Messaging
//! Protocol specification defines them (docs/messages.md#outgoing-message-types, first 3 rows).
//!
//! The structs mirror the outbox rows. Their [`Decode`] impls apply the receiver's SMP schema
//! (`protocol_schemas.py`), restricted to what this service can send: the coordinator is
//! always `agent`, and a `PrepareTransfer`'s coordinator ID is its creditor ID.

use chrono::{DateTime, Utc};

use super::json::ObjectWriter;
use super::smp_in::{
    ACCOUNT_ID_MAX, CONFIG_DATA_MAX, COORDINATOR_TYPE, TRANSFER_NOTE_MAX, is_transfer_note_format,
};
use super::validate::{MAX_I32, Reader, StrRules};
use super::{Decode, Encode};

/// The coordinator type of every transfer this service initiates.
pub const AGENT_COORDINATOR_TYPE: &str = "agent";

/// Reads `coordinator_type` and insists on `agent`.
fn read_agent_coordinator(r: &mut Reader<'_>) {
    let ct = r.string("coordinator_type", COORDINATOR_TYPE);
    if ct != AGENT_COORDINATOR_TYPE && !r.failed("coordinator_type") {
        r.fail(
            "coordinator_type",
            "This service only sends \"agent\" transfers.",
        );
    }
}

/// Creates, configures or schedules for deletion an account.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigureAccount {
    pub debtor_id: i64,
    pub creditor_id: i64,
    /// The configuration's timestamp (the row's `ts` column, not its `inserted_at`).
    pub ts: DateTime<Utc>,
    pub seqnum: i32,
    /// Non-negative. The reference stores it as `REAL`, so it arrives here already rounded to
    /// `f32` precision (1e30 becomes 1.0000000150474662e30).
    pub negligible_amount: f64,
    /// At most 2000 code points and 2000 UTF-8 bytes.
    pub config_data: String,
    pub config_flags: i32,
}

impl Decode for ConfigureAccount {
    const TYPE: &'static str = "ConfigureAccount";

    fn read(r: &mut Reader<'_>) -> Self {
        ConfigureAccount {
            debtor_id: r.id("debtor_id"),
            creditor_id: r.id("creditor_id"),
            ts: r.datetime("ts"),
            seqnum: r.i32("seqnum"),
            negligible_amount: r.float("negligible_amount", Some(0.0), None),
            config_data: r.string("config_data", StrRules::chars_and_bytes(CONFIG_DATA_MAX)),
            config_flags: r.i32("config_flags"),
        }
    }
}

impl Encode for ConfigureAccount {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("debtor_id", self.debtor_id)
            .int("creditor_id", self.creditor_id)
            .datetime("ts", &self.ts)
            .int("seqnum", self.seqnum.into())
            .float("negligible_amount", self.negligible_amount)
            .str("config_data", &self.config_data)
            .int("config_flags", self.config_flags.into());
    }
}

/// Asks the accounting authority to lock an amount for a transfer.
///
/// On the wire `coordinator_type` is `agent` and `coordinator_id` equals `creditor_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepareTransfer {
    pub creditor_id: i64,
    pub debtor_id: i64,
    pub coordinator_request_id: i64,
    /// `0..=max_locked_amount`.
    pub min_locked_amount: i64,
    /// `0..=i64::MAX`.
    pub max_locked_amount: i64,
    /// At most 100 ASCII characters.
    pub recipient: String,
    pub final_interest_rate_ts: DateTime<Utc>,
    /// Seconds, `0..=i32::MAX`.
    pub max_commit_delay: i32,
    /// The row's `inserted_at`.
    pub ts: DateTime<Utc>,
}

impl Decode for PrepareTransfer {
    const TYPE: &'static str = "PrepareTransfer";

    fn read(r: &mut Reader<'_>) -> Self {
        read_agent_coordinator(r);
        let msg = PrepareTransfer {
            creditor_id: r.id("creditor_id"),
            debtor_id: r.id("debtor_id"),
            coordinator_request_id: r.id("coordinator_request_id"),
            min_locked_amount: r.non_negative("min_locked_amount"),
            max_locked_amount: r.non_negative("max_locked_amount"),
            recipient: r.string("recipient", StrRules::ascii(ACCOUNT_ID_MAX)),
            final_interest_rate_ts: r.datetime("final_interest_rate_ts"),
            max_commit_delay: r.i32_in("max_commit_delay", 0, MAX_I32),
            ts: r.datetime("ts"),
        };
        let coordinator_id = r.id("coordinator_id");
        if coordinator_id != msg.creditor_id && !r.failed("coordinator_id") {
            r.fail(
                "coordinator_id",
                "For agent transfers coordinator_id must equal creditor_id.",
            );
        }
        msg
    }

    fn check(&self) -> Result<(), String> {
        if self.min_locked_amount > self.max_locked_amount {
            return Err(
                "max_locked_amount must be equal or greater than min_locked_amount.".to_owned(),
            );
        }
        Ok(())
    }
}

impl Encode for PrepareTransfer {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("creditor_id", self.creditor_id)
            .int("debtor_id", self.debtor_id)
            .str("coordinator_type", AGENT_COORDINATOR_TYPE)
            .int("coordinator_id", self.creditor_id)
            .int("coordinator_request_id", self.coordinator_request_id)
            .int("min_locked_amount", self.min_locked_amount)
            .int("max_locked_amount", self.max_locked_amount)
            .str("recipient", &self.recipient)
            .datetime("final_interest_rate_ts", &self.final_interest_rate_ts)
            .int("max_commit_delay", self.max_commit_delay.into())
            .datetime("ts", &self.ts);
    }
}

/// Commits (a positive amount) or dismisses (zero) a prepared transfer.
///
/// On the wire `coordinator_type` is `agent`.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalizeTransfer {
    pub creditor_id: i64,
    pub debtor_id: i64,
    pub transfer_id: i64,
    pub coordinator_id: i64,
    pub coordinator_request_id: i64,
    /// `0..=i64::MAX`.
    pub committed_amount: i64,
    /// Matches `^[0-9A-Za-z.-]{0,8}$` (`-cXchge` or empty).
    pub transfer_note_format: String,
    /// At most 500 code points and 500 UTF-8 bytes.
    pub transfer_note: String,
    /// The row's `inserted_at`.
    pub ts: DateTime<Utc>,
}

impl Decode for FinalizeTransfer {
    const TYPE: &'static str = "FinalizeTransfer";

    fn read(r: &mut Reader<'_>) -> Self {
        read_agent_coordinator(r);
        FinalizeTransfer {
            creditor_id: r.id("creditor_id"),
            debtor_id: r.id("debtor_id"),
            transfer_id: r.id("transfer_id"),
            coordinator_id: r.id("coordinator_id"),
            coordinator_request_id: r.id("coordinator_request_id"),
            committed_amount: r.non_negative("committed_amount"),
            transfer_note_format: r.pattern("transfer_note_format", is_transfer_note_format),
            transfer_note: r.string(
                "transfer_note",
                StrRules::chars_and_bytes(TRANSFER_NOTE_MAX),
            ),
            ts: r.datetime("ts"),
        }
    }
}

impl Encode for FinalizeTransfer {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("creditor_id", self.creditor_id)
            .int("debtor_id", self.debtor_id)
            .int("transfer_id", self.transfer_id)
            .str("coordinator_type", AGENT_COORDINATOR_TYPE)
            .int("coordinator_id", self.coordinator_id)
            .int("coordinator_request_id", self.coordinator_request_id)
            .int("committed_amount", self.committed_amount)
            .str("transfer_note_format", &self.transfer_note_format)
            .str("transfer_note", &self.transfer_note)
            .datetime("ts", &self.ts);
    }
}

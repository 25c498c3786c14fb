//! SMP replies to this service's transfer requests, as the Swaptacular Messaging Protocol
//! specification defines them (docs/messages.md#smp-messages-from-accounting-authorities).
//!
//! Field rules follow `swpt_pythonlib/protocol_schemas.py` (v0.10.6). All three are sharded by
//! `creditor_id`; the handlers only accept the `agent` coordinator type.

use chrono::{DateTime, Utc};

use super::json::ObjectWriter;
use super::smp_in::{ACCOUNT_ID_MAX, CODE_MAX, COORDINATOR_TYPE};
use super::validate::{Reader, StrRules};
use super::{Decode, Encode};

/// A status code: at most 30 ASCII characters.
fn read_status_code(r: &mut Reader<'_>, forbid_ok: bool) -> String {
    let code = r.string("status_code", StrRules::ascii(CODE_MAX));
    if forbid_ok && code == "OK" && !r.failed("status_code") {
        r.fail("status_code", "The status_code field must not be \"OK\".");
    }
    code
}

/// A `PrepareTransfer` request was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedTransfer {
    pub debtor_id: i64,
    pub creditor_id: i64,
    /// 1–30 ASCII characters; the worker only handles `agent`.
    pub coordinator_type: String,
    pub coordinator_id: i64,
    pub coordinator_request_id: i64,
    /// At most 30 ASCII characters, never `OK`.
    pub status_code: String,
    /// `0..=i64::MAX`.
    pub total_locked_amount: i64,
    pub ts: DateTime<Utc>,
}

impl Decode for RejectedTransfer {
    const TYPE: &'static str = "RejectedTransfer";

    fn read(r: &mut Reader<'_>) -> Self {
        RejectedTransfer {
            debtor_id: r.id("debtor_id"),
            creditor_id: r.id("creditor_id"),
            coordinator_type: r.string("coordinator_type", COORDINATOR_TYPE),
            coordinator_id: r.id("coordinator_id"),
            coordinator_request_id: r.id("coordinator_request_id"),
            status_code: read_status_code(r, true),
            total_locked_amount: r.non_negative("total_locked_amount"),
            ts: r.datetime("ts"),
        }
    }
}

impl Encode for RejectedTransfer {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("debtor_id", self.debtor_id)
            .int("creditor_id", self.creditor_id)
            .str("coordinator_type", &self.coordinator_type)
            .int("coordinator_id", self.coordinator_id)
            .int("coordinator_request_id", self.coordinator_request_id)
            .str("status_code", &self.status_code)
            .int("total_locked_amount", self.total_locked_amount)
            .datetime("ts", &self.ts);
    }
}

/// A transfer has been prepared (amount locked) and awaits finalization.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedTransfer {
    pub debtor_id: i64,
    pub creditor_id: i64,
    /// 1–30 ASCII characters; the worker only handles `agent`.
    pub coordinator_type: String,
    pub coordinator_id: i64,
    pub coordinator_request_id: i64,
    pub transfer_id: i64,
    /// `0..=i64::MAX`.
    pub locked_amount: i64,
    /// At most 100 ASCII characters.
    pub recipient: String,
    pub prepared_at: DateTime<Utc>,
    /// In `-100.0..=0.0`.
    pub demurrage_rate: f64,
    pub deadline: DateTime<Utc>,
    pub final_interest_rate_ts: DateTime<Utc>,
    pub ts: DateTime<Utc>,
}

impl Decode for PreparedTransfer {
    const TYPE: &'static str = "PreparedTransfer";

    fn read(r: &mut Reader<'_>) -> Self {
        PreparedTransfer {
            debtor_id: r.id("debtor_id"),
            creditor_id: r.id("creditor_id"),
            coordinator_type: r.string("coordinator_type", COORDINATOR_TYPE),
            coordinator_id: r.id("coordinator_id"),
            coordinator_request_id: r.id("coordinator_request_id"),
            transfer_id: r.id("transfer_id"),
            locked_amount: r.non_negative("locked_amount"),
            recipient: r.string("recipient", StrRules::ascii(ACCOUNT_ID_MAX)),
            prepared_at: r.datetime("prepared_at"),
            demurrage_rate: r.float("demurrage_rate", Some(-100.0), Some(0.0)),
            deadline: r.datetime("deadline"),
            final_interest_rate_ts: r.datetime("final_interest_rate_ts"),
            ts: r.datetime("ts"),
        }
    }
}

impl Encode for PreparedTransfer {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("debtor_id", self.debtor_id)
            .int("creditor_id", self.creditor_id)
            .str("coordinator_type", &self.coordinator_type)
            .int("coordinator_id", self.coordinator_id)
            .int("coordinator_request_id", self.coordinator_request_id)
            .int("transfer_id", self.transfer_id)
            .int("locked_amount", self.locked_amount)
            .str("recipient", &self.recipient)
            .datetime("prepared_at", &self.prepared_at)
            .float("demurrage_rate", self.demurrage_rate)
            .datetime("deadline", &self.deadline)
            .datetime("final_interest_rate_ts", &self.final_interest_rate_ts)
            .datetime("ts", &self.ts);
    }
}

/// A prepared transfer has been committed or dismissed.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalizedTransfer {
    pub debtor_id: i64,
    pub creditor_id: i64,
    /// 1–30 ASCII characters; the worker only handles `agent`.
    pub coordinator_type: String,
    pub coordinator_id: i64,
    pub coordinator_request_id: i64,
    pub transfer_id: i64,
    /// `0..=i64::MAX`; zero unless `status_code` is `OK`.
    pub committed_amount: i64,
    /// At most 30 ASCII characters.
    pub status_code: String,
    /// `0..=i64::MAX`.
    pub total_locked_amount: i64,
    pub prepared_at: DateTime<Utc>,
    pub ts: DateTime<Utc>,
}

impl Decode for FinalizedTransfer {
    const TYPE: &'static str = "FinalizedTransfer";

    fn read(r: &mut Reader<'_>) -> Self {
        FinalizedTransfer {
            debtor_id: r.id("debtor_id"),
            creditor_id: r.id("creditor_id"),
            coordinator_type: r.string("coordinator_type", COORDINATOR_TYPE),
            coordinator_id: r.id("coordinator_id"),
            coordinator_request_id: r.id("coordinator_request_id"),
            transfer_id: r.id("transfer_id"),
            committed_amount: r.non_negative("committed_amount"),
            status_code: read_status_code(r, false),
            total_locked_amount: r.non_negative("total_locked_amount"),
            prepared_at: r.datetime("prepared_at"),
            ts: r.datetime("ts"),
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.status_code != "OK" && self.committed_amount != 0 {
            return Err(
                "The committed_amount must be zero when status_code is not \"OK\".".to_owned(),
            );
        }
        Ok(())
    }
}

impl Encode for FinalizedTransfer {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("debtor_id", self.debtor_id)
            .int("creditor_id", self.creditor_id)
            .str("coordinator_type", &self.coordinator_type)
            .int("coordinator_id", self.coordinator_id)
            .int("coordinator_request_id", self.coordinator_request_id)
            .int("transfer_id", self.transfer_id)
            .int("committed_amount", self.committed_amount)
            .str("status_code", &self.status_code)
            .int("total_locked_amount", self.total_locked_amount)
            .datetime("prepared_at", &self.prepared_at)
            .datetime("ts", &self.ts);
    }
}

//! Messages from the Creditors Agent about its customers' accounts
//! (docs/messages.md#messages-from-the-creditors-agent).
//!
//! Field rules follow `swpt_trade/schemas.py`. All three are sharded by `creditor_id`, and
//! each carries its family's strictly increasing `update_id`.

use chrono::{DateTime, NaiveDate, Utc};

use super::json::ObjectWriter;
use super::smp_in::ACCOUNT_ID_MAX;
use super::validate::{MAX_I64, MIN_I64, Reader, StrRules};
use super::{Decode, Encode};

/// A new ledger state of a customer account.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdatedLedger {
    pub debtor_id: i64,
    pub creditor_id: i64,
    /// `1..=i64::MAX`.
    pub update_id: i64,
    /// At most 100 code points (not restricted to ASCII); may be empty.
    pub account_id: String,
    pub creation_date: NaiveDate,
    pub principal: i64,
    /// `0..=i64::MAX`.
    pub last_transfer_number: i64,
    pub ts: DateTime<Utc>,
}

impl Decode for UpdatedLedger {
    const TYPE: &'static str = "UpdatedLedger";

    fn read(r: &mut Reader<'_>) -> Self {
        UpdatedLedger {
            debtor_id: r.id("debtor_id"),
            creditor_id: r.id("creditor_id"),
            update_id: r.int("update_id", 1, MAX_I64),
            account_id: r.string("account_id", StrRules::chars(ACCOUNT_ID_MAX)),
            creation_date: r.date("creation_date"),
            principal: r.id("principal"),
            last_transfer_number: r.non_negative("last_transfer_number"),
            ts: r.datetime("ts"),
        }
    }
}

impl Encode for UpdatedLedger {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("debtor_id", self.debtor_id)
            .int("creditor_id", self.creditor_id)
            .int("update_id", self.update_id)
            .str("account_id", &self.account_id)
            .date("creation_date", &self.creation_date)
            .int("principal", self.principal)
            .int("last_transfer_number", self.last_transfer_number)
            .datetime("ts", &self.ts);
    }
}

/// A new trading policy of a customer account.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdatedPolicy {
    pub debtor_id: i64,
    pub creditor_id: i64,
    /// `1..=i64::MAX`.
    pub update_id: i64,
    /// Any string, or absent.
    pub policy_name: Option<String>,
    /// Not greater than `max_principal`.
    pub min_principal: i64,
    pub max_principal: i64,
    /// Non-negative; present exactly when `peg_debtor_id` is.
    pub peg_exchange_rate: Option<f64>,
    pub peg_debtor_id: Option<i64>,
    pub ts: DateTime<Utc>,
}

impl Decode for UpdatedPolicy {
    const TYPE: &'static str = "UpdatedPolicy";

    fn read(r: &mut Reader<'_>) -> Self {
        UpdatedPolicy {
            debtor_id: r.id("debtor_id"),
            creditor_id: r.id("creditor_id"),
            update_id: r.int("update_id", 1, MAX_I64),
            policy_name: r.opt_string("policy_name", StrRules::ANY),
            min_principal: r.id("min_principal"),
            max_principal: r.id("max_principal"),
            peg_exchange_rate: r.opt_float("peg_exchange_rate", Some(0.0)),
            peg_debtor_id: r.opt_int("peg_debtor_id", MIN_I64, MAX_I64),
            ts: r.datetime("ts"),
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.min_principal > self.max_principal {
            return Err("max_principal must be equal or greater than min_principal.".to_owned());
        }
        if self.peg_exchange_rate.is_some() != self.peg_debtor_id.is_some() {
            return Err(
                "peg_exchange_rate and peg_debtor_id must both be present or both be absent."
                    .to_owned(),
            );
        }
        Ok(())
    }
}

impl Encode for UpdatedPolicy {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("debtor_id", self.debtor_id)
            .int("creditor_id", self.creditor_id)
            .int("update_id", self.update_id)
            .opt_str("policy_name", self.policy_name.as_deref())
            .int("min_principal", self.min_principal)
            .int("max_principal", self.max_principal)
            .opt_float("peg_exchange_rate", self.peg_exchange_rate)
            .opt_int("peg_debtor_id", self.peg_debtor_id)
            .datetime("ts", &self.ts);
    }
}

/// New configuration flags of a customer account.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdatedFlags {
    pub debtor_id: i64,
    pub creditor_id: i64,
    /// `1..=i64::MAX`.
    pub update_id: i64,
    pub config_flags: i32,
    pub ts: DateTime<Utc>,
}

impl Decode for UpdatedFlags {
    const TYPE: &'static str = "UpdatedFlags";

    fn read(r: &mut Reader<'_>) -> Self {
        UpdatedFlags {
            debtor_id: r.id("debtor_id"),
            creditor_id: r.id("creditor_id"),
            update_id: r.int("update_id", 1, MAX_I64),
            config_flags: r.i32("config_flags"),
            ts: r.datetime("ts"),
        }
    }
}

impl Encode for UpdatedFlags {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("debtor_id", self.debtor_id)
            .int("creditor_id", self.creditor_id)
            .int("update_id", self.update_id)
            .int("config_flags", self.config_flags.into())
            .datetime("ts", &self.ts);
    }
}

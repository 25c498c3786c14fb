//! Internal worker-to-worker messages about debtors and collector accounts
//! (docs/messages.md#internal-messages, docs/turns.md#collector-accounts).
//!
//! Field rules follow `swpt_trade/schemas.py`; JSON field order follows
//! `swpt_trade/models/signals.py`. For outgoing messages `ts` is the outbox row's
//! `inserted_at`.

use chrono::{DateTime, Utc};

use super::json::ObjectWriter;
use super::smp_in::ACCOUNT_ID_MAX;
use super::validate::{MAX_I64, MIN_I64, Reader, StrRules};
use super::{Decode, Encode};

/// Schedules the fetch of a debtor info document (sharded by `iri`).
#[derive(Debug, Clone, PartialEq)]
pub struct FetchDebtorInfo {
    /// The document to fetch; no length limit.
    pub iri: String,
    pub debtor_id: i64,
    pub is_locator_fetch: bool,
    pub is_discovery_fetch: bool,
    pub forced_iri: Option<String>,
    /// `0..=32767`.
    pub recursion_level: i16,
    pub ts: DateTime<Utc>,
}

impl Decode for FetchDebtorInfo {
    const TYPE: &'static str = "FetchDebtorInfo";

    fn read(r: &mut Reader<'_>) -> Self {
        FetchDebtorInfo {
            iri: r.string("iri", StrRules::ANY),
            debtor_id: r.id("debtor_id"),
            is_locator_fetch: r.boolean("is_locator_fetch"),
            is_discovery_fetch: r.boolean("is_discovery_fetch"),
            forced_iri: r.opt_string("forced_iri", StrRules::ANY),
            // In range after validation; the placeholder 0 also fits.
            recursion_level: r.int("recursion_level", 0, i16::MAX.into()) as i16,
            ts: r.datetime("ts"),
        }
    }
}

impl Encode for FetchDebtorInfo {
    fn write(&self, w: &mut ObjectWriter) {
        w.str("iri", &self.iri)
            .int("debtor_id", self.debtor_id)
            .bool("is_locator_fetch", self.is_locator_fetch)
            .bool("is_discovery_fetch", self.is_discovery_fetch)
            .opt_str("forced_iri", self.forced_iri.as_deref())
            .int("recursion_level", self.recursion_level.into())
            .datetime("ts", &self.ts);
    }
}

/// Stores a fetched debtor info document (sharded by `debtor_info_locator`).
///
/// `ts` is the fetch time; a newer `ts` wins.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreDocument {
    pub debtor_info_locator: String,
    pub debtor_id: i64,
    /// The three `peg_*` fields are all present or all absent.
    pub peg_debtor_info_locator: Option<String>,
    pub peg_debtor_id: Option<i64>,
    /// Non-negative.
    pub peg_exchange_rate: Option<f64>,
    pub will_not_change_until: Option<DateTime<Utc>>,
    pub ts: DateTime<Utc>,
}

impl Decode for StoreDocument {
    const TYPE: &'static str = "StoreDocument";

    fn read(r: &mut Reader<'_>) -> Self {
        StoreDocument {
            debtor_info_locator: r.string("debtor_info_locator", StrRules::ANY),
            debtor_id: r.id("debtor_id"),
            peg_debtor_info_locator: r.opt_string("peg_debtor_info_locator", StrRules::ANY),
            peg_debtor_id: r.opt_int("peg_debtor_id", MIN_I64, MAX_I64),
            peg_exchange_rate: r.opt_float("peg_exchange_rate", Some(0.0)),
            will_not_change_until: r.opt_datetime("will_not_change_until"),
            ts: r.datetime("ts"),
        }
    }

    fn check(&self) -> Result<(), String> {
        let present = [
            self.peg_debtor_info_locator.is_some(),
            self.peg_debtor_id.is_some(),
            self.peg_exchange_rate.is_some(),
        ];
        if present.iter().any(|p| *p != present[0]) {
            return Err("peg_debtor_info_locator, peg_debtor_id and peg_exchange_rate must all be present or all \
                        be absent."
                .to_owned());
        }
        Ok(())
    }
}

impl Encode for StoreDocument {
    fn write(&self, w: &mut ObjectWriter) {
        w.str("debtor_info_locator", &self.debtor_info_locator)
            .int("debtor_id", self.debtor_id)
            .opt_str(
                "peg_debtor_info_locator",
                self.peg_debtor_info_locator.as_deref(),
            )
            .opt_int("peg_debtor_id", self.peg_debtor_id)
            .opt_float("peg_exchange_rate", self.peg_exchange_rate)
            .opt_datetime("will_not_change_until", self.will_not_change_until.as_ref())
            .datetime("ts", &self.ts);
    }
}

/// Starts confirming a debtor from an IRI found in an account (sharded by `debtor_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoverDebtor {
    pub debtor_id: i64,
    pub iri: String,
    /// Re-fetch the locator even when a cached document has not expired.
    pub force_locator_refetch: bool,
    pub ts: DateTime<Utc>,
}

impl Decode for DiscoverDebtor {
    const TYPE: &'static str = "DiscoverDebtor";

    fn read(r: &mut Reader<'_>) -> Self {
        DiscoverDebtor {
            debtor_id: r.id("debtor_id"),
            iri: r.string("iri", StrRules::ANY),
            force_locator_refetch: r.boolean("force_locator_refetch"),
            ts: r.datetime("ts"),
        }
    }
}

impl Encode for DiscoverDebtor {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("debtor_id", self.debtor_id)
            .str("iri", &self.iri)
            .bool("force_locator_refetch", self.force_locator_refetch)
            .datetime("ts", &self.ts);
    }
}

/// The debtor has successfully claimed a debtor info locator (sharded by `debtor_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfirmDebtor {
    pub debtor_id: i64,
    pub debtor_info_locator: String,
    pub ts: DateTime<Utc>,
}

impl Decode for ConfirmDebtor {
    const TYPE: &'static str = "ConfirmDebtor";

    fn read(r: &mut Reader<'_>) -> Self {
        ConfirmDebtor {
            debtor_id: r.id("debtor_id"),
            debtor_info_locator: r.string("debtor_info_locator", StrRules::ANY),
            ts: r.datetime("ts"),
        }
    }
}

impl Encode for ConfirmDebtor {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("debtor_id", self.debtor_id)
            .str("debtor_info_locator", &self.debtor_info_locator)
            .datetime("ts", &self.ts);
    }
}

/// A collector account has been created and got an account ID (sharded by `creditor_id`,
/// the collector's ID).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivateCollector {
    pub debtor_id: i64,
    pub creditor_id: i64,
    /// 1–100 code points.
    pub account_id: String,
    pub ts: DateTime<Utc>,
}

impl Decode for ActivateCollector {
    const TYPE: &'static str = "ActivateCollector";

    fn read(r: &mut Reader<'_>) -> Self {
        let account_id_rules = StrRules {
            min_chars: 1,
            ..StrRules::chars(ACCOUNT_ID_MAX)
        };
        ActivateCollector {
            debtor_id: r.id("debtor_id"),
            creditor_id: r.id("creditor_id"),
            account_id: r.string("account_id", account_id_rules),
            ts: r.datetime("ts"),
        }
    }
}

impl Encode for ActivateCollector {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("debtor_id", self.debtor_id)
            .int("creditor_id", self.creditor_id)
            .str("account_id", &self.account_id)
            .datetime("ts", &self.ts);
    }
}

/// Collector accounts are needed for a currency (sharded by `debtor_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct NeededCollector {
    /// Never zero.
    pub debtor_id: i64,
    pub ts: DateTime<Utc>,
}

impl Decode for NeededCollector {
    const TYPE: &'static str = "NeededCollector";

    fn read(r: &mut Reader<'_>) -> Self {
        NeededCollector {
            debtor_id: r.nonzero_id("debtor_id"),
            ts: r.datetime("ts"),
        }
    }
}

impl Encode for NeededCollector {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("debtor_id", self.debtor_id).datetime("ts", &self.ts);
    }
}

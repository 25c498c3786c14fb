//! SMP messages about account state sent by accounting authorities, as the Swaptacular
//! Messaging Protocol specification defines them
//! (docs/messages.md#smp-messages-from-accounting-authorities), and the field limits shared by
//! every SMP message.
//!
//! Field rules follow `swpt_pythonlib/protocol_schemas.py` (v0.10.6, the version the
//! reference pins). All of them are sharded by `creditor_id`.

use chrono::{DateTime, NaiveDate, Utc};

use super::json::ObjectWriter;
use super::validate::{MAX_I32, Reader, StrRules};
use super::{Decode, Encode};

/// Longest `config_data`, in code points and in UTF-8 bytes.
pub(crate) const CONFIG_DATA_MAX: usize = 2000;
/// Longest account ID / recipient / sender.
pub(crate) const ACCOUNT_ID_MAX: usize = 100;
/// Longest `coordinator_type`, `status_code` and `rejection_code`.
pub(crate) const CODE_MAX: usize = 30;
/// Longest transfer note, in code points and in UTF-8 bytes.
pub(crate) const TRANSFER_NOTE_MAX: usize = 500;

/// `coordinator_type`: 1–30 ASCII characters.
pub(crate) const COORDINATOR_TYPE: StrRules = StrRules {
    min_chars: 1,
    ..StrRules::ascii(CODE_MAX)
};

/// `^[0-9A-Za-z.-]{0,8}$`.
pub(crate) fn is_transfer_note_format(s: &str) -> bool {
    s.chars().count() <= 8
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// `^([0-9A-F]{64}|[0-9a-f]{64})?$`.
fn is_sha256_or_empty(s: &str) -> bool {
    let upper = s
        .chars()
        .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c));
    let lower = s
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    s.is_empty() || (s.len() == 64 && (upper || lower))
}

/// The accounting authority refused an account configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedConfig {
    pub debtor_id: i64,
    pub creditor_id: i64,
    pub config_ts: DateTime<Utc>,
    pub config_seqnum: i32,
    pub config_flags: i32,
    /// At most 2000 code points and 2000 UTF-8 bytes.
    pub config_data: String,
    /// Non-negative.
    pub negligible_amount: f64,
    /// At most 30 ASCII characters.
    pub rejection_code: String,
    pub ts: DateTime<Utc>,
}

impl Decode for RejectedConfig {
    const TYPE: &'static str = "RejectedConfig";

    fn read(r: &mut Reader<'_>) -> Self {
        RejectedConfig {
            debtor_id: r.id("debtor_id"),
            creditor_id: r.id("creditor_id"),
            config_ts: r.datetime("config_ts"),
            config_seqnum: r.i32("config_seqnum"),
            config_flags: r.i32("config_flags"),
            config_data: r.string("config_data", StrRules::chars_and_bytes(CONFIG_DATA_MAX)),
            negligible_amount: r.float("negligible_amount", Some(0.0), None),
            rejection_code: r.string("rejection_code", StrRules::ascii(CODE_MAX)),
            ts: r.datetime("ts"),
        }
    }
}

impl Encode for RejectedConfig {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("debtor_id", self.debtor_id)
            .int("creditor_id", self.creditor_id)
            .datetime("config_ts", &self.config_ts)
            .int("config_seqnum", self.config_seqnum.into())
            .int("config_flags", self.config_flags.into())
            .str("config_data", &self.config_data)
            .float("negligible_amount", self.negligible_amount)
            .str("rejection_code", &self.rejection_code)
            .datetime("ts", &self.ts);
    }
}

/// The state of an account, sent on every change and periodically as a heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountUpdate {
    pub debtor_id: i64,
    pub creditor_id: i64,
    pub creation_date: NaiveDate,
    pub last_change_ts: DateTime<Utc>,
    pub last_change_seqnum: i32,
    pub principal: i64,
    /// Any finite value.
    pub interest: f64,
    /// At least -100.
    pub interest_rate: f64,
    pub last_interest_rate_change_ts: DateTime<Utc>,
    pub last_config_ts: DateTime<Utc>,
    pub last_config_seqnum: i32,
    /// Non-negative.
    pub negligible_amount: f64,
    pub config_flags: i32,
    /// At most 2000 code points and 2000 UTF-8 bytes.
    pub config_data: String,
    /// At most 100 ASCII characters; empty until the account has an ID.
    pub account_id: String,
    /// At most 200 code points; empty means "no debtor info".
    pub debtor_info_iri: String,
    /// At most 100 ASCII characters.
    pub debtor_info_content_type: String,
    /// Empty, or 64 hex digits of one case.
    pub debtor_info_sha256: String,
    /// `0..=i64::MAX`.
    pub last_transfer_number: i64,
    pub last_transfer_committed_at: DateTime<Utc>,
    /// In `-100.0..=0.0`.
    pub demurrage_rate: f64,
    /// Seconds, `0..=i32::MAX`.
    pub commit_period: i32,
    /// `0..=500`.
    pub transfer_note_max_bytes: i32,
    pub ts: DateTime<Utc>,
    /// Seconds, `0..=i32::MAX`.
    pub ttl: i32,
}

impl Decode for AccountUpdate {
    const TYPE: &'static str = "AccountUpdate";

    fn read(r: &mut Reader<'_>) -> Self {
        AccountUpdate {
            debtor_id: r.id("debtor_id"),
            creditor_id: r.id("creditor_id"),
            creation_date: r.date("creation_date"),
            last_change_ts: r.datetime("last_change_ts"),
            last_change_seqnum: r.i32("last_change_seqnum"),
            principal: r.id("principal"),
            interest: r.float("interest", None, None),
            interest_rate: r.float("interest_rate", Some(-100.0), None),
            last_interest_rate_change_ts: r.datetime("last_interest_rate_change_ts"),
            last_config_ts: r.datetime("last_config_ts"),
            last_config_seqnum: r.i32("last_config_seqnum"),
            negligible_amount: r.float("negligible_amount", Some(0.0), None),
            config_flags: r.i32("config_flags"),
            config_data: r.string("config_data", StrRules::chars_and_bytes(CONFIG_DATA_MAX)),
            account_id: r.string("account_id", StrRules::ascii(ACCOUNT_ID_MAX)),
            debtor_info_iri: r.string("debtor_info_iri", StrRules::chars(200)),
            debtor_info_content_type: r.string("debtor_info_content_type", StrRules::ascii(100)),
            debtor_info_sha256: r.pattern("debtor_info_sha256", is_sha256_or_empty),
            last_transfer_number: r.non_negative("last_transfer_number"),
            last_transfer_committed_at: r.datetime("last_transfer_committed_at"),
            demurrage_rate: r.float("demurrage_rate", Some(-100.0), Some(0.0)),
            commit_period: r.i32_in("commit_period", 0, MAX_I32),
            transfer_note_max_bytes: r.i32_in(
                "transfer_note_max_bytes",
                0,
                TRANSFER_NOTE_MAX as i128,
            ),
            ts: r.datetime("ts"),
            ttl: r.i32_in("ttl", 0, MAX_I32),
        }
    }
}

impl Encode for AccountUpdate {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("debtor_id", self.debtor_id)
            .int("creditor_id", self.creditor_id)
            .date("creation_date", &self.creation_date)
            .datetime("last_change_ts", &self.last_change_ts)
            .int("last_change_seqnum", self.last_change_seqnum.into())
            .int("principal", self.principal)
            .float("interest", self.interest)
            .float("interest_rate", self.interest_rate)
            .datetime(
                "last_interest_rate_change_ts",
                &self.last_interest_rate_change_ts,
            )
            .datetime("last_config_ts", &self.last_config_ts)
            .int("last_config_seqnum", self.last_config_seqnum.into())
            .float("negligible_amount", self.negligible_amount)
            .int("config_flags", self.config_flags.into())
            .str("config_data", &self.config_data)
            .str("account_id", &self.account_id)
            .str("debtor_info_iri", &self.debtor_info_iri)
            .str("debtor_info_content_type", &self.debtor_info_content_type)
            .str("debtor_info_sha256", &self.debtor_info_sha256)
            .int("last_transfer_number", self.last_transfer_number)
            .datetime(
                "last_transfer_committed_at",
                &self.last_transfer_committed_at,
            )
            .float("demurrage_rate", self.demurrage_rate)
            .int("commit_period", self.commit_period.into())
            .int(
                "transfer_note_max_bytes",
                self.transfer_note_max_bytes.into(),
            )
            .datetime("ts", &self.ts)
            .int("ttl", self.ttl.into());
    }
}

/// The account has been removed by the accounting authority.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountPurge {
    pub debtor_id: i64,
    pub creditor_id: i64,
    pub creation_date: NaiveDate,
    pub ts: DateTime<Utc>,
}

impl Decode for AccountPurge {
    const TYPE: &'static str = "AccountPurge";

    fn read(r: &mut Reader<'_>) -> Self {
        AccountPurge {
            debtor_id: r.id("debtor_id"),
            creditor_id: r.id("creditor_id"),
            creation_date: r.date("creation_date"),
            ts: r.datetime("ts"),
        }
    }
}

impl Encode for AccountPurge {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("debtor_id", self.debtor_id)
            .int("creditor_id", self.creditor_id)
            .date("creation_date", &self.creation_date)
            .datetime("ts", &self.ts);
    }
}

/// A committed transfer that changed the account's principal.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountTransfer {
    pub debtor_id: i64,
    pub creditor_id: i64,
    pub creation_date: NaiveDate,
    /// `1..=i64::MAX`.
    pub transfer_number: i64,
    /// 1–30 ASCII characters.
    pub coordinator_type: String,
    /// At most 100 ASCII characters.
    pub sender: String,
    /// At most 100 ASCII characters.
    pub recipient: String,
    /// Never zero.
    pub acquired_amount: i64,
    /// Matches `^[0-9A-Za-z.-]{0,8}$`.
    pub transfer_note_format: String,
    /// At most 500 code points and 500 UTF-8 bytes.
    pub transfer_note: String,
    pub committed_at: DateTime<Utc>,
    pub principal: i64,
    pub ts: DateTime<Utc>,
    /// `0..=i64::MAX`, less than `transfer_number`.
    pub previous_transfer_number: i64,
}

impl Decode for AccountTransfer {
    const TYPE: &'static str = "AccountTransfer";

    fn read(r: &mut Reader<'_>) -> Self {
        let msg = AccountTransfer {
            debtor_id: r.id("debtor_id"),
            creditor_id: r.id("creditor_id"),
            creation_date: r.date("creation_date"),
            transfer_number: r.int("transfer_number", 1, super::validate::MAX_I64),
            coordinator_type: r.string("coordinator_type", COORDINATOR_TYPE),
            sender: r.string("sender", StrRules::ascii(ACCOUNT_ID_MAX)),
            recipient: r.string("recipient", StrRules::ascii(ACCOUNT_ID_MAX)),
            acquired_amount: r.id("acquired_amount"),
            transfer_note_format: r.pattern("transfer_note_format", is_transfer_note_format),
            transfer_note: r.string(
                "transfer_note",
                StrRules::chars_and_bytes(TRANSFER_NOTE_MAX),
            ),
            committed_at: r.datetime("committed_at"),
            principal: r.id("principal"),
            ts: r.datetime("ts"),
            previous_transfer_number: r.non_negative("previous_transfer_number"),
        };
        if msg.acquired_amount == 0 && !r.failed("acquired_amount") {
            r.fail(
                "acquired_amount",
                "The acquired_amount field is zero, which is not allowed.",
            );
        }
        msg
    }

    fn check(&self) -> Result<(), String> {
        if self.previous_transfer_number >= self.transfer_number {
            return Err(
                "transfer_number must be greater than previous_transfer_number.".to_owned(),
            );
        }
        Ok(())
    }
}

impl Encode for AccountTransfer {
    fn write(&self, w: &mut ObjectWriter) {
        w.int("debtor_id", self.debtor_id)
            .int("creditor_id", self.creditor_id)
            .date("creation_date", &self.creation_date)
            .int("transfer_number", self.transfer_number)
            .str("coordinator_type", &self.coordinator_type)
            .str("sender", &self.sender)
            .str("recipient", &self.recipient)
            .int("acquired_amount", self.acquired_amount)
            .str("transfer_note_format", &self.transfer_note_format)
            .str("transfer_note", &self.transfer_note)
            .datetime("committed_at", &self.committed_at)
            .int("principal", self.principal)
            .datetime("ts", &self.ts)
            .int("previous_transfer_number", self.previous_transfer_number);
    }
}

//! Reading outbox rows back as messages: the inverse of [`super::emit`].
//!
//! Each table has a row struct; `ts` comes from `inserted_at`, except for `ConfigureAccount`
//! whose `ts` is a column of its own (docs/messages.md#the-outbox).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::{Queryable, Selectable};

use crate::db::worker::schema;
use crate::messages::{
    AccountIdRequest, AccountIdResponse, ActivateCollector, CandidateOffer, ConfigureAccount,
    ConfirmDebtor, DiscoverDebtor, FetchDebtorInfo, FinalizeTransfer, NeededCollector,
    OutgoingMessage, PrepareTransfer, ReviseAccountLock, StartDispatching, StartSending,
    StoreDocument, TriggerTransfer,
};

/// The `double` a `real` column holds as PostgreSQL prints it (shortest round-trip
/// decimal), which is what the reference reads: `1e30` stays `1e30` rather than becoming
/// `1.0000000150474662e30`.
pub(super) fn real_as_double(value: f32) -> f64 {
    if value.is_finite() {
        value.to_string().parse().unwrap_or(f64::from(value))
    } else {
        f64::from(value)
    }
}

/// Declares a row struct selecting the listed columns of `$table`, and its conversion into
/// the message (`|$row| $body`).
macro_rules! signal_row {
    (
        $row_name:ident, $table:ident, { $($field:ident: $ty:ty),* $(,)? },
        |$row:ident| $body:expr
    ) => {
        #[derive(Queryable, Selectable)]
        #[diesel(table_name = schema::$table, check_for_backend(diesel::pg::Pg))]
        pub(super) struct $row_name {
            $($field: $ty,)*
        }

        impl From<$row_name> for OutgoingMessage {
            fn from($row: $row_name) -> Self {
                $body.into()
            }
        }
    };
}

signal_row!(ConfigureAccountRow, configure_account_signal, {
    creditor_id: i64, debtor_id: i64, ts: DateTime<Utc>, seqnum: i32,
    negligible_amount: f32, config_data: String, config_flags: i32,
}, |r| ConfigureAccount {
    debtor_id: r.debtor_id,
    creditor_id: r.creditor_id,
    ts: r.ts,
    seqnum: r.seqnum,
    negligible_amount: real_as_double(r.negligible_amount),
    config_data: r.config_data,
    config_flags: r.config_flags,
});

signal_row!(PrepareTransferRow, prepare_transfer_signal, {
    creditor_id: i64, coordinator_request_id: i64, debtor_id: i64, recipient: String,
    min_locked_amount: i64, max_locked_amount: i64, final_interest_rate_ts: DateTime<Utc>,
    max_commit_delay: i32, inserted_at: DateTime<Utc>,
}, |r| PrepareTransfer {
    creditor_id: r.creditor_id,
    debtor_id: r.debtor_id,
    coordinator_request_id: r.coordinator_request_id,
    min_locked_amount: r.min_locked_amount,
    max_locked_amount: r.max_locked_amount,
    recipient: r.recipient,
    final_interest_rate_ts: r.final_interest_rate_ts,
    max_commit_delay: r.max_commit_delay,
    ts: r.inserted_at,
});

signal_row!(FinalizeTransferRow, finalize_transfer_signal, {
    creditor_id: i64, debtor_id: i64, transfer_id: i64, coordinator_id: i64,
    coordinator_request_id: i64, committed_amount: i64, transfer_note_format: String,
    transfer_note: String, inserted_at: DateTime<Utc>,
}, |r| FinalizeTransfer {
    creditor_id: r.creditor_id,
    debtor_id: r.debtor_id,
    transfer_id: r.transfer_id,
    coordinator_id: r.coordinator_id,
    coordinator_request_id: r.coordinator_request_id,
    committed_amount: r.committed_amount,
    transfer_note_format: r.transfer_note_format,
    transfer_note: r.transfer_note,
    ts: r.inserted_at,
});

signal_row!(FetchDebtorInfoRow, fetch_debtor_info_signal, {
    iri: String, debtor_id: i64, is_locator_fetch: bool, is_discovery_fetch: bool,
    forced_iri: Option<String>, recursion_level: i16, inserted_at: DateTime<Utc>,
}, |r| FetchDebtorInfo {
    iri: r.iri,
    debtor_id: r.debtor_id,
    is_locator_fetch: r.is_locator_fetch,
    is_discovery_fetch: r.is_discovery_fetch,
    forced_iri: r.forced_iri,
    recursion_level: r.recursion_level,
    ts: r.inserted_at,
});

signal_row!(StoreDocumentRow, store_document_signal, {
    debtor_info_locator: String, debtor_id: i64, peg_debtor_info_locator: Option<String>,
    peg_debtor_id: Option<i64>, peg_exchange_rate: Option<f64>,
    will_not_change_until: Option<DateTime<Utc>>, inserted_at: DateTime<Utc>,
}, |r| StoreDocument {
    debtor_info_locator: r.debtor_info_locator,
    debtor_id: r.debtor_id,
    peg_debtor_info_locator: r.peg_debtor_info_locator,
    peg_debtor_id: r.peg_debtor_id,
    peg_exchange_rate: r.peg_exchange_rate,
    will_not_change_until: r.will_not_change_until,
    ts: r.inserted_at,
});

signal_row!(DiscoverDebtorRow, discover_debtor_signal, {
    debtor_id: i64, force_locator_refetch: bool, iri: String, inserted_at: DateTime<Utc>,
}, |r| DiscoverDebtor {
    debtor_id: r.debtor_id,
    iri: r.iri,
    force_locator_refetch: r.force_locator_refetch,
    ts: r.inserted_at,
});

signal_row!(ConfirmDebtorRow, confirm_debtor_signal, {
    debtor_id: i64, debtor_info_locator: String, inserted_at: DateTime<Utc>,
}, |r| ConfirmDebtor {
    debtor_id: r.debtor_id,
    debtor_info_locator: r.debtor_info_locator,
    ts: r.inserted_at,
});

signal_row!(ActivateCollectorRow, activate_collector_signal, {
    debtor_id: i64, account_id: String, creditor_id: i64, inserted_at: DateTime<Utc>,
}, |r| ActivateCollector {
    debtor_id: r.debtor_id,
    creditor_id: r.creditor_id,
    account_id: r.account_id,
    ts: r.inserted_at,
});

signal_row!(CandidateOfferRow, candidate_offer_signal, {
    turn_id: i16, debtor_id: i64, creditor_id: i64, amount: i64,
    account_creation_date: NaiveDate, last_transfer_number: i64, inserted_at: DateTime<Utc>,
}, |r| CandidateOffer {
    turn_id: r.turn_id.into(),
    debtor_id: r.debtor_id,
    creditor_id: r.creditor_id,
    amount: r.amount,
    account_creation_date: r.account_creation_date,
    last_transfer_number: r.last_transfer_number,
    ts: r.inserted_at,
});

signal_row!(NeededCollectorRow, needed_collector_signal, {
    debtor_id: i64, inserted_at: DateTime<Utc>,
}, |r| NeededCollector {
    debtor_id: r.debtor_id,
    ts: r.inserted_at,
});

signal_row!(ReviseAccountLockRow, revise_account_lock_signal, {
    creditor_id: i64, debtor_id: i64, turn_id: i32, inserted_at: DateTime<Utc>,
}, |r| ReviseAccountLock {
    creditor_id: r.creditor_id,
    debtor_id: r.debtor_id,
    turn_id: r.turn_id,
    ts: r.inserted_at,
});

signal_row!(TriggerTransferRow, trigger_transfer_signal, {
    collector_id: i64, turn_id: i32, debtor_id: i64, creditor_id: i64, is_dispatching: bool,
    inserted_at: DateTime<Utc>,
}, |r| TriggerTransfer {
    collector_id: r.collector_id,
    turn_id: r.turn_id,
    debtor_id: r.debtor_id,
    creditor_id: r.creditor_id,
    is_dispatching: r.is_dispatching,
    ts: r.inserted_at,
});

signal_row!(AccountIdRequestRow, account_id_request_signal, {
    collector_id: i64, turn_id: i32, debtor_id: i64, creditor_id: i64, is_dispatching: bool,
    inserted_at: DateTime<Utc>,
}, |r| AccountIdRequest {
    collector_id: r.collector_id,
    turn_id: r.turn_id,
    debtor_id: r.debtor_id,
    creditor_id: r.creditor_id,
    is_dispatching: r.is_dispatching,
    ts: r.inserted_at,
});

signal_row!(AccountIdResponseRow, account_id_response_signal, {
    collector_id: i64, turn_id: i32, debtor_id: i64, creditor_id: i64, is_dispatching: bool,
    account_id: String, account_id_version: i64, inserted_at: DateTime<Utc>,
}, |r| AccountIdResponse {
    collector_id: r.collector_id,
    turn_id: r.turn_id,
    debtor_id: r.debtor_id,
    creditor_id: r.creditor_id,
    is_dispatching: r.is_dispatching,
    account_id: r.account_id,
    account_id_version: r.account_id_version,
    ts: r.inserted_at,
});

signal_row!(StartSendingRow, start_sending_signal, {
    collector_id: i64, turn_id: i32, debtor_id: i64, inserted_at: DateTime<Utc>,
}, |r| StartSending {
    collector_id: r.collector_id,
    turn_id: r.turn_id,
    debtor_id: r.debtor_id,
    ts: r.inserted_at,
});

signal_row!(StartDispatchingRow, start_dispatching_signal, {
    collector_id: i64, turn_id: i32, debtor_id: i64, inserted_at: DateTime<Utc>,
}, |r| StartDispatching {
    collector_id: r.collector_id,
    turn_id: r.turn_id,
    debtor_id: r.debtor_id,
    ts: r.inserted_at,
});

#[cfg(test)]
mod tests {
    use super::real_as_double;

    #[test]
    fn reals_read_back_as_postgres_prints_them() {
        assert_eq!(real_as_double(1e30), 1e30);
        assert_eq!(real_as_double(0.1), 0.1);
        assert_eq!(real_as_double(0.0), 0.0);
        assert_eq!(real_as_double(f32::MAX), 3.4028235e38);
        assert!(real_as_double(f32::INFINITY).is_infinite());
    }
}

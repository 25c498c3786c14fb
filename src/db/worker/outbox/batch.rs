//! Locking a batch of outbox rows and deleting exactly those rows afterwards.
//!
//! Rows are addressed by their `ctid`: it is the same for every table (several have
//! composite primary keys), and it cannot change while this transaction holds the rows'
//! `FOR UPDATE` locks.

use diesel::dsl::sql;
use diesel::sql_types::{Array, Text};
use diesel::{QueryDsl as _, QueryResult, SelectableHelper as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use super::rows::*;
use crate::db::worker::schema;
use crate::messages::OutgoingMessage;
use crate::outbox::SignalKind;

/// An outbox row locked by the current transaction.
#[derive(Debug, Clone)]
pub struct LockedSignal {
    /// The row's physical address (`ctid`) as text.
    ctid: String,
    /// The message the row holds.
    pub message: OutgoingMessage,
}

/// Locks up to `limit` rows of `kind`'s table, skipping rows other flushers hold
/// (`SELECT … LIMIT n FOR UPDATE SKIP LOCKED`, in no particular order), and reads them as
/// messages.
///
/// Call it inside a transaction: the locks last until the transaction ends.
pub async fn lock_batch(
    conn: &mut AsyncPgConnection,
    kind: SignalKind,
    limit: i64,
) -> QueryResult<Vec<LockedSignal>> {
    macro_rules! lock {
        ($table:ident, $row:ty) => {{
            let rows: Vec<(String, $row)> = schema::$table::table
                .select((sql::<Text>("ctid::text"), <$row>::as_select()))
                .limit(limit)
                .for_update()
                .skip_locked()
                .load(conn)
                .await?;
            rows.into_iter()
                .map(|(ctid, row)| LockedSignal {
                    ctid,
                    message: row.into(),
                })
                .collect()
        }};
    }
    use SignalKind as K;
    Ok(match kind {
        K::ConfigureAccount => lock!(configure_account_signal, ConfigureAccountRow),
        K::PrepareTransfer => lock!(prepare_transfer_signal, PrepareTransferRow),
        K::FinalizeTransfer => lock!(finalize_transfer_signal, FinalizeTransferRow),
        K::FetchDebtorInfo => lock!(fetch_debtor_info_signal, FetchDebtorInfoRow),
        K::StoreDocument => lock!(store_document_signal, StoreDocumentRow),
        K::DiscoverDebtor => lock!(discover_debtor_signal, DiscoverDebtorRow),
        K::ConfirmDebtor => lock!(confirm_debtor_signal, ConfirmDebtorRow),
        K::ActivateCollector => lock!(activate_collector_signal, ActivateCollectorRow),
        K::CandidateOffer => lock!(candidate_offer_signal, CandidateOfferRow),
        K::NeededCollector => lock!(needed_collector_signal, NeededCollectorRow),
        K::ReviseAccountLock => lock!(revise_account_lock_signal, ReviseAccountLockRow),
        K::TriggerTransfer => lock!(trigger_transfer_signal, TriggerTransferRow),
        K::AccountIdRequest => lock!(account_id_request_signal, AccountIdRequestRow),
        K::AccountIdResponse => lock!(account_id_response_signal, AccountIdResponseRow),
        K::StartSending => lock!(start_sending_signal, StartSendingRow),
        K::StartDispatching => lock!(start_dispatching_signal, StartDispatchingRow),
    })
}

/// Deletes exactly `rows` (locked by [`lock_batch`] in this transaction) from `kind`'s table
/// and returns how many rows were deleted.
pub async fn delete_locked(
    conn: &mut AsyncPgConnection,
    kind: SignalKind,
    rows: &[LockedSignal],
) -> QueryResult<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    let ctids: Vec<&str> = rows.iter().map(|r| r.ctid.as_str()).collect();
    // The table name is one of 16 fixed identifiers, never input.
    let statement = format!(
        "DELETE FROM {} WHERE ctid = ANY($1::text[]::tid[])",
        kind.table_name()
    );
    diesel::sql_query(statement)
        .bind::<Array<Text>, _>(ctids)
        .execute(conn)
        .await
}

//! Account locks (`account_lock`): a customer account's participation in a turn, from the
//! `CandidateOffer` that initiates it to its revision after the turn was solved, and the
//! solver's decisions about it (`creditor_participation`). See `docs/turns.md#account-locks`.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::sql_types::BigInt;
use diesel::{
    BoolExpressionMethods as _, ExpressionMethods as _, JoinOnDsl as _, OptionalExtension as _,
    QueryDsl as _, QueryResult, SelectableHelper as _,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use super::schema::{account_lock, active_collector, creditor_participation, worker_turn};

/// An `account_lock` row.
#[derive(Debug, Clone, PartialEq, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = account_lock, check_for_backend(Pg))]
pub struct AccountLock {
    pub creditor_id: i64,
    pub debtor_id: i64,
    pub turn_id: i32,
    pub collector_id: i64,
    /// When the `PrepareTransfer` was sent.
    pub initiated_at: DateTime<Utc>,
    pub coordinator_request_id: i64,
    /// Positive to buy, zero or negative to sell.
    pub amount: i64,
    /// Set when prepared (`0` for a self-lock).
    pub transfer_id: Option<i64>,
    /// When the `FinalizeTransfer` was sent.
    pub finalized_at: Option<DateTime<Utc>>,
    pub released_at: Option<DateTime<Utc>>,
    pub account_creation_date: Option<NaiveDate>,
    pub account_last_transfer_number: Option<i64>,
    pub has_been_revised: bool,
}

impl AccountLock {
    /// A `PrepareTransfer` was sent and no answer has come yet.
    pub fn is_initiated(&self) -> bool {
        self.released_at.is_none() && self.transfer_id.is_none()
    }

    /// The transfer is prepared, and neither finalized nor released.
    pub fn is_prepared(&self) -> bool {
        self.released_at.is_none() && self.finalized_at.is_none() && self.transfer_id.is_some()
    }

    /// The account is also the collector (a collector trading its own surplus).
    pub fn is_self_lock(&self) -> bool {
        self.creditor_id == self.collector_id
    }

    /// Whether the lock still blocks a new offer made from a ledger snapshot at
    /// (`account_creation_date`, `last_transfer_number`): it does unless it was released and
    /// the snapshot already includes the releasing transfer.
    pub fn is_in_force(&self, account_creation_date: NaiveDate, last_transfer_number: i64) -> bool {
        match (
            self.released_at,
            self.account_creation_date,
            self.account_last_transfer_number,
        ) {
            (Some(_), Some(date), Some(number)) => {
                !(date < account_creation_date
                    || (date == account_creation_date && number <= last_transfer_number))
            }
            // A released lock always has its date and number (a CHECK of the table).
            _ => true,
        }
    }
}

/// The turn's `(min_trade_amount, collection_deadline)` if the worker is at phase 2,
/// sub-phase 5 of it — the only time candidate offers create locks. The row is share-locked,
/// and skipped (`None`) while another transaction locks it for an update.
pub async fn share_offer_turn(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
) -> QueryResult<Option<(i64, Option<DateTime<Utc>>)>> {
    use worker_turn::dsl as w;
    worker_turn::table
        .filter(
            w::turn_id
                .eq(turn_id)
                .and(w::phase.eq(2))
                .and(w::worker_turn_subphase.eq(5)),
        )
        .select((w::min_trade_amount, w::collection_deadline))
        .for_share()
        .skip_locked()
        .first(conn)
        .await
        .optional()
}

/// The account's lock, locked for an update.
pub async fn lock_account_lock(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
) -> QueryResult<Option<AccountLock>> {
    account_lock::table
        .find((creditor_id, debtor_id))
        .select(AccountLock::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// The active collectors of the currency: `(collector_id, account_id)`.
pub async fn active_collectors(
    conn: &mut AsyncPgConnection,
    debtor_id: i64,
) -> QueryResult<Vec<(i64, String)>> {
    use active_collector::dsl as a;
    active_collector::table
        .filter(a::debtor_id.eq(debtor_id))
        .select((a::collector_id, a::account_id))
        .order(a::collector_id)
        .load(conn)
        .await
}

/// A new value of `coordinator_request_id_seq`.
pub async fn next_coordinator_request_id(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    diesel::select(diesel::dsl::sql::<BigInt>(
        "nextval('coordinator_request_id_seq')",
    ))
    .get_result(conn)
    .await
}

/// A lock initiated by a candidate offer.
#[derive(Debug, Clone, PartialEq)]
pub struct InitiatedLock {
    pub creditor_id: i64,
    pub debtor_id: i64,
    pub turn_id: i32,
    pub collector_id: i64,
    pub initiated_at: DateTime<Utc>,
    pub coordinator_request_id: i64,
    pub amount: i64,
    /// `Some(0)` for a self-lock (nothing to prepare), otherwise `None`.
    pub transfer_id: Option<i64>,
}

/// Inserts the initiated lock (a concurrent insert of the same account is a unique
/// violation, which the caller's retry resolves).
pub async fn insert_lock(conn: &mut AsyncPgConnection, lock: &InitiatedLock) -> QueryResult<()> {
    use account_lock::dsl as l;
    diesel::insert_into(account_lock::table)
        .values((
            l::creditor_id.eq(lock.creditor_id),
            l::debtor_id.eq(lock.debtor_id),
            l::turn_id.eq(lock.turn_id),
            l::collector_id.eq(lock.collector_id),
            l::initiated_at.eq(lock.initiated_at),
            l::coordinator_request_id.eq(lock.coordinator_request_id),
            l::amount.eq(lock.amount),
            l::transfer_id.eq(lock.transfer_id),
            l::has_been_revised.eq(false),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces the account's existing lock with the initiated one: everything that a previous
/// turn left (transfer, finalization, release, revision) is cleared.
pub async fn reinitiate_lock(
    conn: &mut AsyncPgConnection,
    lock: &InitiatedLock,
) -> QueryResult<()> {
    use account_lock::dsl as l;
    diesel::update(account_lock::table.find((lock.creditor_id, lock.debtor_id)))
        .set((
            l::turn_id.eq(lock.turn_id),
            l::coordinator_request_id.eq(lock.coordinator_request_id),
            l::collector_id.eq(lock.collector_id),
            l::initiated_at.eq(lock.initiated_at),
            l::amount.eq(lock.amount),
            l::transfer_id.eq(lock.transfer_id),
            l::finalized_at.eq(None::<DateTime<Utc>>),
            l::released_at.eq(None::<DateTime<Utc>>),
            l::account_creation_date.eq(None::<NaiveDate>),
            l::account_last_transfer_number.eq(None::<i64>),
            l::has_been_revised.eq(false),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The lock that sent the `PrepareTransfer` with this coordinator (the account) and request
/// ID.
pub async fn lock_of_request(
    conn: &mut AsyncPgConnection,
    coordinator_id: i64,
    coordinator_request_id: i64,
) -> QueryResult<Option<AccountLock>> {
    use account_lock::dsl as l;
    account_lock::table
        .filter(
            l::creditor_id
                .eq(coordinator_id)
                .and(l::coordinator_request_id.eq(coordinator_request_id)),
        )
        .select(AccountLock::as_select())
        .first(conn)
        .await
        .optional()
}

/// Like [`lock_of_request`], for a lock whose turn the worker knows, with the turn's
/// collection deadline.
pub async fn lock_of_request_with_deadline(
    conn: &mut AsyncPgConnection,
    coordinator_id: i64,
    coordinator_request_id: i64,
) -> QueryResult<Option<(AccountLock, Option<DateTime<Utc>>)>> {
    use account_lock::dsl as l;
    account_lock::table
        .inner_join(worker_turn::table.on(worker_turn::turn_id.eq(l::turn_id)))
        .filter(
            l::creditor_id
                .eq(coordinator_id)
                .and(l::coordinator_request_id.eq(coordinator_request_id)),
        )
        .select((AccountLock::as_select(), worker_turn::collection_deadline))
        .first(conn)
        .await
        .optional()
}

/// Records the prepared transfer of the lock, and the amount it can trade.
pub async fn set_prepared(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
    transfer_id: i64,
    amount: i64,
) -> QueryResult<()> {
    use account_lock::dsl as l;
    diesel::update(account_lock::table.find((creditor_id, debtor_id)))
        .set((l::transfer_id.eq(transfer_id), l::amount.eq(amount)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes the account's lock.
pub async fn delete_lock(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
) -> QueryResult<()> {
    diesel::delete(account_lock::table.find((creditor_id, debtor_id)))
        .execute(conn)
        .await?;
    Ok(())
}

/// The solver's decision for the account in the turn, locked for an update:
/// `(amount, collector_id)`.
pub async fn lock_participation(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
    turn_id: i32,
) -> QueryResult<Option<(i64, i64)>> {
    use creditor_participation::dsl as p;
    creditor_participation::table
        .find((creditor_id, debtor_id, turn_id))
        .select((p::amount, p::collector_id))
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Deletes the solver's decision for the account in the turn.
pub async fn delete_participation(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
    turn_id: i32,
) -> QueryResult<()> {
    diesel::delete(creditor_participation::table.find((creditor_id, debtor_id, turn_id)))
        .execute(conn)
        .await?;
    Ok(())
}

/// The account's lock of the turn if it has not been revised nor finalized yet, locked for
/// an update.
pub async fn lock_unrevised_lock(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
    turn_id: i32,
) -> QueryResult<Option<AccountLock>> {
    use account_lock::dsl as l;
    account_lock::table
        .find((creditor_id, debtor_id))
        .filter(
            l::turn_id
                .eq(turn_id)
                .and(l::finalized_at.is_null())
                .and(l::has_been_revised.eq(false)),
        )
        .select(AccountLock::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// How a revision settles the lock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Settlement {
    /// Nothing settled yet (a buyer waits for its money).
    None,
    /// The seller's commit was sent at this time.
    Finalized(DateTime<Utc>),
    /// Released at this time without a transfer (a collector trading with itself), with the
    /// made-up ledger position `(account_creation_date, account_last_transfer_number)`.
    Released(DateTime<Utc>, NaiveDate, i64),
}

/// Records the revision of the lock after the turn was solved: the amount the account
/// trades, and how the lock is settled.
pub async fn set_revised(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
    amount: i64,
    settlement: Settlement,
) -> QueryResult<()> {
    use account_lock::dsl as l;
    let (finalized_at, released_at, date, number) = match settlement {
        Settlement::None => (None, None, None, None),
        Settlement::Finalized(at) => (Some(at), None, None, None),
        Settlement::Released(at, date, number) => (Some(at), Some(at), Some(date), Some(number)),
    };
    diesel::update(account_lock::table.find((creditor_id, debtor_id)))
        .set((
            l::amount.eq(amount),
            l::has_been_revised.eq(true),
            l::finalized_at.eq(finalized_at),
            l::released_at.eq(released_at),
            l::account_creation_date.eq(date),
            l::account_last_transfer_number.eq(number),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Releases the seller's lock of the turn when its collecting transfer has been committed:
/// the lock must be finalized, not released, and its amount exactly `acquired_amount` (the
/// negative amount the account paid). Records the account's ledger `position` (creation
/// date, transfer number) after the transfer; `false` when no such lock exists.
pub async fn release_seller_lock(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
    turn_id: i32,
    acquired_amount: i64,
    position: (NaiveDate, i64),
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    use account_lock::dsl as l;
    let released = diesel::update(
        account_lock::table.find((creditor_id, debtor_id)).filter(
            l::turn_id
                .eq(turn_id)
                .and(l::amount.eq(acquired_amount))
                .and(l::finalized_at.is_not_null())
                .and(l::released_at.is_null()),
        ),
    )
    .set((
        l::released_at.eq(now),
        l::account_creation_date.eq(position.0),
        l::account_last_transfer_number.eq(position.1),
    ))
    .execute(conn)
    .await?;
    Ok(released > 0)
}

/// Releases the buyer's prepared lock of the turn when it has been paid (whatever the
/// amount): released and finalized now, with the account's ledger `position` after the
/// transfer. Returns the released lock, whose prepared transfer the caller dismisses unless
/// it is a self-lock; `None` when no such lock exists.
pub async fn release_buyer_lock(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
    turn_id: i32,
    position: (NaiveDate, i64),
    now: DateTime<Utc>,
) -> QueryResult<Option<AccountLock>> {
    use account_lock::dsl as l;
    diesel::update(
        account_lock::table.find((creditor_id, debtor_id)).filter(
            l::turn_id
                .eq(turn_id)
                .and(l::amount.gt(0))
                .and(l::transfer_id.is_not_null())
                .and(l::finalized_at.is_null())
                .and(l::released_at.is_null()),
        ),
    )
    .set((
        l::released_at.eq(now),
        l::finalized_at.eq(now),
        l::account_creation_date.eq(position.0),
        l::account_last_transfer_number.eq(position.1),
    ))
    .returning(AccountLock::as_returning())
    .get_result(conn)
    .await
    .optional()
}

//! Collector accounts as the accounting authorities report them: `needed_worker_account`,
//! `worker_account` and `interest_rate_change` (see `docs/messages.md#account-updates`).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::{
    BoolExpressionMethods as _, ExpressionMethods as _, OptionalExtension as _, QueryDsl as _,
    QueryResult, Queryable,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use super::schema::{interest_rate_change, needed_worker_account, worker_account};
use crate::messages::AccountUpdate;

/// Whether this worker asked for the account; the `needed_worker_account` row, if any, is
/// share-locked until the transaction ends.
pub async fn is_needed(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
) -> QueryResult<bool> {
    let found: Option<i64> = needed_worker_account::table
        .find((creditor_id, debtor_id))
        .select(needed_worker_account::creditor_id)
        .for_share()
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}

/// The stored state of a collector account, as far as `AccountUpdate` compares it.
#[derive(Debug, Queryable)]
pub struct StoredAccount {
    /// `creation_date`.
    pub creation_date: NaiveDate,
    /// `last_change_ts`.
    pub last_change_ts: DateTime<Utc>,
    /// `last_change_seqnum`.
    pub last_change_seqnum: i32,
    /// `account_id` (empty until the authority has given one).
    pub account_id: String,
    /// `debtor_info_iri`.
    pub debtor_info_iri: Option<String>,
    /// `last_heartbeat_ts`.
    pub last_heartbeat_ts: DateTime<Utc>,
}

/// The account's row, locked for update until the transaction ends.
pub async fn lock_account(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
) -> QueryResult<Option<StoredAccount>> {
    worker_account::table
        .find((creditor_id, debtor_id))
        .select((
            worker_account::creation_date,
            worker_account::last_change_ts,
            worker_account::last_change_seqnum,
            worker_account::account_id,
            worker_account::debtor_info_iri,
            worker_account::last_heartbeat_ts,
        ))
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Sets the account's `last_heartbeat_ts`.
pub async fn set_heartbeat(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
    heartbeat: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(worker_account::table.find((creditor_id, debtor_id)))
        .set(worker_account::last_heartbeat_ts.eq(heartbeat))
        .execute(conn)
        .await?;
    Ok(())
}

/// The `worker_account` columns an `AccountUpdate` sets, both on insert and on update.
#[derive(diesel::Insertable, diesel::AsChangeset)]
#[diesel(table_name = worker_account, treat_none_as_null = true)]
struct AccountState<'a> {
    account_id: &'a str,
    creation_date: NaiveDate,
    last_change_ts: DateTime<Utc>,
    last_change_seqnum: i32,
    principal: i64,
    interest: f64,
    interest_rate: f32,
    last_interest_rate_change_ts: DateTime<Utc>,
    config_flags: i32,
    debtor_info_iri: Option<&'a str>,
    last_transfer_number: i64,
    last_transfer_committed_at: DateTime<Utc>,
    demurrage_rate: f64,
    commit_period: i32,
    transfer_note_max_bytes: i32,
}

impl<'a> AccountState<'a> {
    fn of(m: &'a AccountUpdate, iri: Option<&'a str>, account_id: &'a str) -> Self {
        Self {
            account_id,
            creation_date: m.creation_date,
            last_change_ts: m.last_change_ts,
            last_change_seqnum: m.last_change_seqnum,
            principal: m.principal,
            interest: m.interest,
            interest_rate: m.interest_rate as f32,
            last_interest_rate_change_ts: m.last_interest_rate_change_ts,
            config_flags: m.config_flags,
            debtor_info_iri: iri,
            last_transfer_number: m.last_transfer_number,
            last_transfer_committed_at: m.last_transfer_committed_at,
            demurrage_rate: m.demurrage_rate,
            commit_period: m.commit_period,
            transfer_note_max_bytes: m.transfer_note_max_bytes,
        }
    }
}

/// Inserts the account described by `m`, with the debtor info IRI `iri`.
pub async fn insert_account(
    conn: &mut AsyncPgConnection,
    m: &AccountUpdate,
    iri: Option<&str>,
    heartbeat: DateTime<Utc>,
) -> QueryResult<()> {
    use worker_account::dsl as w;
    diesel::insert_into(worker_account::table)
        .values((
            w::creditor_id.eq(m.creditor_id),
            w::debtor_id.eq(m.debtor_id),
            AccountState::of(m, iri, &m.account_id),
            w::last_heartbeat_ts.eq(heartbeat),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Overwrites the account's state with `m`'s, except `account_id` (given).
pub async fn update_account(
    conn: &mut AsyncPgConnection,
    m: &AccountUpdate,
    iri: Option<&str>,
    account_id: &str,
) -> QueryResult<()> {
    diesel::update(worker_account::table.find((m.creditor_id, m.debtor_id)))
        .set(AccountState::of(m, iri, account_id))
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes the account's row unless it describes an incarnation created after
/// `creation_date`; returns the number of rows deleted.
pub async fn delete_account_created_until(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
    creation_date: NaiveDate,
) -> QueryResult<usize> {
    diesel::delete(
        worker_account::table
            .find((creditor_id, debtor_id))
            .filter(worker_account::creation_date.le(creation_date)),
    )
    .execute(conn)
    .await
}

/// Records an interest rate change unless it is known; `true` when it was new.
pub async fn insert_interest_rate_change(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
    change_ts: DateTime<Utc>,
    interest_rate: f32,
) -> QueryResult<bool> {
    use interest_rate_change::dsl as r;
    let inserted = diesel::insert_into(interest_rate_change::table)
        .values((
            r::creditor_id.eq(creditor_id),
            r::debtor_id.eq(debtor_id),
            r::change_ts.eq(change_ts),
            r::interest_rate.eq(interest_rate),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted > 0)
}

/// The account's interest rate changes, newest first, locked for update.
pub async fn lock_interest_rate_changes(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
) -> QueryResult<Vec<(DateTime<Utc>, f32)>> {
    use interest_rate_change::dsl as r;
    interest_rate_change::table
        .filter(
            r::creditor_id
                .eq(creditor_id)
                .and(r::debtor_id.eq(debtor_id)),
        )
        .order(r::change_ts.desc())
        .select((r::change_ts, r::interest_rate))
        .for_update()
        .load(conn)
        .await
}

/// Deletes the account's interest rate changes made at `change_times`.
pub async fn delete_interest_rate_changes(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
    change_times: Vec<DateTime<Utc>>,
) -> QueryResult<usize> {
    use interest_rate_change::dsl as r;
    if change_times.is_empty() {
        return Ok(0);
    }
    diesel::delete(
        interest_rate_change::table.filter(
            r::creditor_id
                .eq(creditor_id)
                .and(r::debtor_id.eq(debtor_id))
                .and(r::change_ts.eq_any(change_times)),
        ),
    )
    .execute(conn)
    .await
}

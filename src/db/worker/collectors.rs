//! The worker's side of collector accounts: `recently_needed_collector` (de-duplicates
//! `NeededCollector` messages) and `needed_worker_account` (the accounts this worker asked an
//! accounting authority to create). See `docs/turns.md#collector-accounts`.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, QueryResult};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use super::schema::{needed_worker_account, recently_needed_collector, worker_account};

/// Whether collectors of `debtor_id` were recently ensured.
pub async fn is_recently_needed(conn: &mut AsyncPgConnection, debtor_id: i64) -> QueryResult<bool> {
    let found: Option<i64> = recently_needed_collector::table
        .find(debtor_id)
        .select(recently_needed_collector::debtor_id)
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}

/// Records that collectors of `debtor_id` were ensured at `needed_at` (unless recorded).
pub async fn insert_recently_needed(
    conn: &mut AsyncPgConnection,
    debtor_id: i64,
    needed_at: DateTime<Utc>,
) -> QueryResult<()> {
    use recently_needed_collector::dsl as r;
    diesel::insert_into(recently_needed_collector::table)
        .values((r::debtor_id.eq(debtor_id), r::needed_at.eq(needed_at)))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// When the account was last configured, if this worker needs it (the row is locked).
pub async fn lock_needed_account(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
) -> QueryResult<Option<DateTime<Utc>>> {
    needed_worker_account::table
        .find((creditor_id, debtor_id))
        .select(needed_worker_account::configured_at)
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Records that this worker needs the account, configured at `now`.
pub async fn insert_needed_account(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    use needed_worker_account::dsl as n;
    diesel::insert_into(needed_worker_account::table)
        .values((
            n::creditor_id.eq(creditor_id),
            n::debtor_id.eq(debtor_id),
            n::configured_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets when the needed account was last configured.
pub async fn set_configured_at(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(needed_worker_account::table.find((creditor_id, debtor_id)))
        .set(needed_worker_account::configured_at.eq(now))
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the accounting authority has reported the account (a `worker_account` row).
pub async fn account_exists(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
) -> QueryResult<bool> {
    let found: Option<i64> = worker_account::table
        .find((creditor_id, debtor_id))
        .select(worker_account::creditor_id)
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}

//! Collector accounts in the solver database (`collector_account`), written by the workers:
//! planned (status 0), creation requested (1), created with an account ID (2), disabled (3).
//! See `docs/turns.md#collector-accounts`.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Bool, SmallInt};
use diesel::{BoolExpressionMethods as _, ExpressionMethods as _, QueryDsl as _, QueryResult};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use super::schema::collector_account;
use crate::sharding::{ShardingRealm, i16_hash};

/// `status`: planned, the account not requested yet.
pub const STATUS_PRISTINE: i16 = 0;
/// `status`: the account's creation was requested.
pub const STATUS_REQUESTED: i16 = 1;
/// `status`: the account exists and has its account ID.
pub const STATUS_ACTIVE: i16 = 2;
/// `status`: disabled (nothing sets it yet).
pub const STATUS_DISABLED: i16 = 3;

/// The debtor's collector IDs, each with whether it is alive (not disabled).
pub async fn collectors_of(
    conn: &mut AsyncPgConnection,
    debtor_id: i64,
) -> QueryResult<Vec<(i64, i16)>> {
    collector_account::table
        .filter(collector_account::debtor_id.eq(debtor_id))
        .select((collector_account::collector_id, collector_account::status))
        .load(conn)
        .await
}

/// Inserts planned (pristine) collector accounts of `debtor_id`.
pub async fn insert_pristine(
    conn: &mut AsyncPgConnection,
    debtor_id: i64,
    collector_ids: &[i64],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    use collector_account::dsl as c;
    let rows: Vec<_> = collector_ids
        .iter()
        .map(|&id| {
            (
                c::debtor_id.eq(debtor_id),
                c::collector_id.eq(id),
                c::collector_hash.eq(i16_hash(id)),
                c::account_id.eq(""),
                c::status.eq(STATUS_PRISTINE),
                c::latest_status_change_at.eq(now),
            )
        })
        .collect();
    diesel::insert_into(collector_account::table)
        .values(rows)
        .execute(conn)
        .await?;
    Ok(())
}

/// Up to `limit` pristine collectors `(debtor_id, collector_id)` of the shard `realm`.
pub async fn pristine_of_shard(
    conn: &mut AsyncPgConnection,
    realm: &ShardingRealm,
    limit: i64,
) -> QueryResult<Vec<(i64, i64)>> {
    use collector_account::dsl as c;
    let (mask, prefix) = realm.i16_hash_filter();
    let of_shard = diesel::dsl::sql::<Bool>("collector_hash & ")
        .bind::<SmallInt, _>(mask)
        .sql(" = ")
        .bind::<SmallInt, _>(prefix);
    collector_account::table
        .filter(c::status.eq(STATUS_PRISTINE))
        .filter(of_shard)
        .select((c::debtor_id, c::collector_id))
        .limit(limit)
        .load(conn)
        .await
}

/// Marks a pristine collector as requested; `true` when it was pristine.
pub async fn mark_requested(
    conn: &mut AsyncPgConnection,
    debtor_id: i64,
    collector_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    use collector_account::dsl as c;
    let updated = diesel::update(
        collector_account::table.filter(
            c::debtor_id
                .eq(debtor_id)
                .and(c::collector_id.eq(collector_id))
                .and(c::status.eq(STATUS_PRISTINE)),
        ),
    )
    .set((
        c::status.eq(STATUS_REQUESTED),
        c::latest_status_change_at.eq(now),
    ))
    .execute(conn)
    .await?;
    Ok(updated > 0)
}

/// Activates a collector (pristine or requested) with its account ID; `true` when it did.
pub async fn activate(
    conn: &mut AsyncPgConnection,
    debtor_id: i64,
    collector_id: i64,
    account_id: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    use collector_account::dsl as c;
    let updated = diesel::update(
        collector_account::table.filter(
            c::debtor_id
                .eq(debtor_id)
                .and(c::collector_id.eq(collector_id))
                .and(c::status.le(STATUS_REQUESTED)),
        ),
    )
    .set((
        c::account_id.eq(account_id),
        c::status.eq(STATUS_ACTIVE),
        c::latest_status_change_at.eq(now),
    ))
    .execute(conn)
    .await?;
    Ok(updated > 0)
}

//! Which rows of the worker database belong to which shard (see
//! `docs/operations.md#sharding`): the sharded tables with their sharding column, and a paced
//! scan for the first row that is not this shard's.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use crate::sharding::{ShardingKey, ShardingRealm};

/// The sharded tables, with the column each is sharded by.
pub const SHARDED_COLUMNS: [(&str, &str); 19] = [
    ("account_lock", "creditor_id"),
    ("creditor_participation", "creditor_id"),
    ("interest_rate_change", "creditor_id"),
    ("needed_worker_account", "creditor_id"),
    ("trading_policy", "creditor_id"),
    ("debtor_locator_claim", "debtor_id"),
    ("recently_needed_collector", "debtor_id"),
    ("dispatching_status", "collector_id"),
    ("transfer_attempt", "collector_id"),
    ("worker_account", "creditor_id"),
    ("worker_collecting", "collector_id"),
    ("worker_dispatching", "collector_id"),
    ("worker_receiving", "to_collector_id"),
    ("worker_sending", "from_collector_id"),
    ("early_turn_transfer", "collector_id"),
    ("debtor_info_document", "debtor_info_locator"),
    ("configure_account_signal", "creditor_id"),
    ("prepare_transfer_signal", "creditor_id"),
    ("finalize_transfer_signal", "creditor_id"),
];

/// The column that holds text sharding keys (debtor info locators); the others hold IDs.
const TEXT_KEY_COLUMN: &str = "debtor_info_locator";

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = Text)]
    key: String,
}

/// How a table is read: `chunk` rows per `FETCH`, with a `pause` before each.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Rows per `FETCH` (`APP_VERIFY_SHARD_YIELD_PER`).
    pub chunk: u32,
    /// The pause before each chunk (`APP_VERIFY_SHARD_SLEEP_SECONDS`).
    pub pause: Duration,
}

/// The first sharding key of `table` (one of [`SHARDED_COLUMNS`]) that is not in `realm`, if
/// any, read through a cursor in a read-only REPEATABLE READ transaction.
pub async fn first_foreign_key(
    conn: &mut AsyncPgConnection,
    realm: ShardingRealm,
    (table, column): (&str, &str),
    pacing: Pacing,
) -> diesel::QueryResult<Option<String>> {
    let is_text = column == TEXT_KEY_COLUMN;
    // Table and column names come from SHARDED_COLUMNS, never from input.
    let select = if is_text {
        format!("SELECT {column} AS key FROM {table}")
    } else {
        format!("SELECT {column} AS id FROM {table}")
    };
    let chunk = pacing.chunk.max(1);
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(async |conn| {
            diesel::sql_query(format!(
                "DECLARE shard_cursor NO SCROLL CURSOR FOR {select}"
            ))
            .execute(conn)
            .await?;
            loop {
                if !pacing.pause.is_zero() {
                    tokio::time::sleep(pacing.pause).await;
                }
                let fetch = format!("FETCH {chunk} FROM shard_cursor");
                let (n, foreign) = if is_text {
                    let rows: Vec<TextRow> = diesel::sql_query(fetch).load(conn).await?;
                    let foreign = rows
                        .iter()
                        .find(|r| !realm.contains(ShardingKey::Str(&r.key)))
                        .map(|r| r.key.clone());
                    (rows.len(), foreign)
                } else {
                    let rows: Vec<IdRow> = diesel::sql_query(fetch).load(conn).await?;
                    let foreign = rows
                        .iter()
                        .find(|r| !realm.contains(ShardingKey::Id(r.id)))
                        .map(|r| r.id.to_string());
                    (rows.len(), foreign)
                };
                if foreign.is_some() || n < chunk as usize {
                    return Ok(foreign);
                }
            }
        })
        .await
}

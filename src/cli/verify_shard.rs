//! `verify_shard_content`: checks that every sharded row of the worker database belongs to
//! this worker's shard (operations.md §3.12), reading each table through a cursor in chunks of
//! `APP_VERIFY_SHARD_YIELD_PER` rows with a pause of `APP_VERIFY_SHARD_SLEEP_SECONDS` before
//! each chunk, so that a large database is not loaded all at once.

use std::process::ExitCode;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};

use crate::config::Config;
use crate::sharding::ShardingKey;

/// The sharded tables, with the column each is sharded by.
pub const SHARDED_COLUMNS: [(&str, &str); 18] = [
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
    ("debtor_info_document", "debtor_info_locator"),
    ("configure_account_signal", "creditor_id"),
    ("prepare_transfer_signal", "creditor_id"),
    ("finalize_transfer_signal", "creditor_id"),
];

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

/// Runs `verify_shard_content`: exit 0 when every row belongs to the shard, 1 otherwise.
pub async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let mut conn = AsyncPgConnection::establish(&config.db.worker_url).await?;
    for (table, column) in SHARDED_COLUMNS {
        if let Some(key) = first_foreign_key(&mut conn, config, table, column).await? {
            tracing::error!(
                table,
                column,
                key = key.as_str(),
                "At least one record has been found that does not belong to the shard."
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    tracing::info!("All records belong to the shard.");
    Ok(ExitCode::SUCCESS)
}

/// The first sharding key of `table` that is not in the realm, if any.
async fn first_foreign_key(
    conn: &mut AsyncPgConnection,
    config: &Config,
    table: &str,
    column: &str,
) -> anyhow::Result<Option<String>> {
    let realm = config.sharding_realm;
    let chunk = config.processes.verify_shard_yield_per;
    let pause = config.processes.verify_shard_sleep;
    let is_text = column == "debtor_info_locator";
    let select = if is_text {
        format!("SELECT {column} AS key FROM {table}")
    } else {
        format!("SELECT {column} AS id FROM {table}")
    };
    let found = conn
        .build_transaction()
        .read_only()
        .repeatable_read()
        .run(async |conn| {
            diesel::sql_query(format!(
                "DECLARE shard_cursor NO SCROLL CURSOR FOR {select}"
            ))
            .execute(conn)
            .await?;
            loop {
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                let fetch = format!("FETCH {chunk} FROM shard_cursor");
                let (n, foreign) = if is_text {
                    let rows: Vec<TextRow> = diesel::sql_query(fetch).load(conn).await?;
                    (
                        rows.len(),
                        rows.into_iter()
                            .find(|r| !realm.contains(ShardingKey::Str(&r.key)))
                            .map(|r| r.key),
                    )
                } else {
                    let rows: Vec<IdRow> = diesel::sql_query(fetch).load(conn).await?;
                    (
                        rows.len(),
                        rows.iter()
                            .find(|r| !realm.contains(ShardingKey::Id(r.id)))
                            .map(|r| r.id.to_string()),
                    )
                };
                if foreign.is_some() || n < chunk as usize {
                    return Ok::<_, diesel::result::Error>(foreign);
                }
            }
        })
        .await?;
    Ok(found)
}

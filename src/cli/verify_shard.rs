//! `verify_shard_content`: checks that every sharded row of the worker database belongs to
//! this worker's shard (see `docs/operations.md#sharding`), reading each table through a
//! cursor in paced chunks so that a large database is not loaded all at once.

use std::process::ExitCode;

use diesel_async::{AsyncConnection as _, AsyncPgConnection};

use crate::config::Config;
use crate::db::worker::shard::{self, Pacing, SHARDED_COLUMNS};

/// Runs `verify_shard_content`: exit 0 when every row belongs to the shard, 1 otherwise.
pub async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let mut conn = AsyncPgConnection::establish(&config.db.worker_url).await?;
    let pacing = Pacing {
        chunk: config.processes.verify_shard_yield_per,
        pause: config.processes.verify_shard_sleep,
    };
    for (table, column) in SHARDED_COLUMNS {
        let found =
            shard::first_foreign_key(&mut conn, config.sharding_realm, (table, column), pacing)
                .await?;
        if let Some(key) = found {
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

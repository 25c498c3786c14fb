//! `await_migrations`: waits until both databases carry every migration this binary knows
//! (docs/operations.md#migrations). It never gives up; an unreachable database is waited for
//! too.

use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;
use crate::db::{Database, migrate};

/// How often the databases are checked.
pub const POLL_INTERVAL: Duration = Duration::from_secs(10);

/// Runs `await_migrations`.
pub async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    println!("Awaiting database migrations to be applied...");
    let targets = [
        (Database::Worker, config.db.worker_url.clone()),
        (Database::Solver, config.solver_url()?.to_owned()),
    ];
    wait_until_migrated(&targets, POLL_INTERVAL).await;
    Ok(ExitCode::SUCCESS)
}

/// Polls every `interval` until no database of `targets` has a pending migration.
pub async fn wait_until_migrated(targets: &[(Database, String)], interval: Duration) {
    loop {
        let mut waiting = Vec::new();
        for (db, url) in targets {
            match migrate::pending_migrations(*db, url).await {
                Ok(pending) if pending.is_empty() => {}
                Ok(pending) => {
                    waiting.push(format!("{}: pending {}", db.name(), pending.join(", ")))
                }
                Err(e) => waiting.push(format!("{}: {e:#}", db.name())),
            }
        }
        if waiting.is_empty() {
            tracing::info!("All database migrations have been applied.");
            return;
        }
        tracing::info!("Waiting for database migrations ({}).", waiting.join("; "));
        tokio::time::sleep(interval).await;
    }
}

//! `configure [solver|worker]`: applies the schema migrations, retrying an unreachable
//! database with the reference's back-off (see `docs/operations.md#migrations`).

use std::process::ExitCode;
use std::time::Duration;

use super::ConfigureArgs;
use crate::config::Config;
use crate::db::{Database, migrate};

/// The pauses between attempts: the reference's 1, 2, 4, 8, 16 seconds.
pub const RETRY_BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

/// Runs `configure`.
pub async fn run(args: ConfigureArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let targets = match args.database {
        Some(db) => vec![db],
        None => vec![Database::Worker, Database::Solver],
    };
    for db in targets {
        let url = match db {
            Database::Solver => config.solver_url()?.to_owned(),
            Database::Worker => config.db.worker_url.clone(),
        };
        println!("Running {} database schema upgrade ...", db.name());
        let applied = migrate_with_retries(db, &url, &RETRY_BACKOFF).await?;
        println!(
            "Applied {} migration(s) to the {} database.",
            applied.len(),
            db.name()
        );
    }
    if config.setup_rabbitmq_bindings {
        println!("Setting up message broker objects ...");
        setup_bindings_with_retries(config, &RETRY_BACKOFF).await?;
        println!("Message broker objects are set up.");
    }
    Ok(ExitCode::SUCCESS)
}

/// Migrates `db`, trying again after each pause of `backoff` when an attempt fails.
pub async fn migrate_with_retries(
    db: Database,
    url: &str,
    backoff: &[Duration],
) -> anyhow::Result<Vec<String>> {
    let what = format!("{} database schema upgrade", db.name());
    let applied = with_pauses(&what, backoff, || migrate::migrate(db, url))
        .await
        .map_err(|e| e.context(format!("cannot upgrade the {} database", db.name())))?;
    tracing::info!(
        database = db.name(),
        applied = applied.len(),
        "Schema is up to date."
    );
    Ok(applied)
}

/// Declares the RabbitMQ objects (as `subscribe` does), with the same retries.
pub async fn setup_bindings_with_retries(
    config: &Config,
    backoff: &[Duration],
) -> anyhow::Result<()> {
    let b = &config.broker;
    let attempt = || async {
        let conn = crate::broker::connect(&b.url).await?;
        crate::broker::topology::subscribe(&conn, &b.queue, &b.queue_routing_key).await?;
        let _ = conn.close(200, "done".into()).await;
        anyhow::Ok(())
    };
    with_pauses("message broker setup", backoff, attempt)
        .await
        .map_err(|e| e.context("cannot set up the message broker objects"))
}

/// Runs `attempt`, and again after each pause of `pauses` while it fails.
async fn with_pauses<T, F, Fut>(
    what: &str,
    pauses: &[Duration],
    mut attempt: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut pauses = pauses.iter();
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) => match pauses.next() {
                Some(pause) => {
                    tracing::warn!("The {what} failed, retrying in {pause:?}: {e:#}");
                    tokio::time::sleep(*pause).await;
                }
                None => return Err(e),
            },
        }
    }
}

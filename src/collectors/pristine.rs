//! `handle_pristine_collectors`: the worker of a collector's shard asks the accounting
//! authority to create the collector accounts planned in the solver database, and marks them
//! as requested (see `docs/turns.md#collector-accounts`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use futures::StreamExt as _;

use crate::db::retry::{RetryPolicy, with_retries};
use crate::db::solver::collectors as solver_db;
use crate::db::worker::collectors as worker_db;
use crate::db::{SolverPool, WorkerPool};
use crate::handlers::HandlerError;
use crate::jobs::Job;
use crate::messages::ConfigureAccount;
use crate::outbox;
use crate::sharding::ShardingRealm;

/// `negligible_amount` of a collector account's configuration.
const NEGLIGIBLE_AMOUNT: f64 = 1e30;

/// Makes sure the accounting authority is asked to create the collector account
/// `(collector_id, debtor_id)`: the first time, and again when it has not reported the account
/// within `max_postponement` of the last request (a lost message). Run it in a transaction.
pub async fn configure_worker_account(
    conn: &mut AsyncPgConnection,
    collector_id: i64,
    debtor_id: i64,
    now: DateTime<Utc>,
    max_postponement: Duration,
) -> diesel::QueryResult<()> {
    let configure = match worker_db::lock_needed_account(conn, collector_id, debtor_id).await? {
        None => {
            worker_db::insert_needed_account(conn, collector_id, debtor_id, now).await?;
            true
        }
        Some(configured_at) => {
            let postponed_until = chrono::Duration::from_std(max_postponement)
                .ok()
                .and_then(|d| configured_at.checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            let overdue = postponed_until < now
                && !worker_db::account_exists(conn, collector_id, debtor_id).await?;
            if overdue {
                worker_db::set_configured_at(conn, collector_id, debtor_id, now).await?;
            }
            overdue
        }
    };
    if configure {
        let message = ConfigureAccount {
            debtor_id,
            creditor_id: collector_id,
            ts: now,
            seqnum: 0,
            negligible_amount: NEGLIGIBLE_AMOUNT,
            config_data: String::new(),
            config_flags: 0,
        };
        outbox::emit(conn, message).await?;
    }
    Ok(())
}

/// One pass of `handle_pristine_collectors` over this shard's pristine collectors.
pub struct PristineCollectors {
    /// The solver database (where collectors are planned).
    pub solver: SolverPool,
    /// This worker's database.
    pub worker: WorkerPool,
    /// This worker's shard.
    pub realm: ShardingRealm,
    /// Collectors per query (`APP_HANDLE_PRISTINE_COLLECTORS_MAX_COUNT`).
    pub max_count: u32,
    /// Collectors handled at the same time (`HANDLE_PRISTINE_COLLECTORS_THREADS`).
    pub threads: u32,
    /// How long an unanswered request waits before it is sent again
    /// (`APP_EXTREME_MESSAGE_DELAY_DAYS`).
    pub max_postponement: Duration,
}

impl PristineCollectors {
    /// Handles pristine collectors until a query returns fewer than `max_count`; returns how
    /// many were handled.
    ///
    /// # Errors
    ///
    /// The first failure, after the other collectors of its batch were handled.
    pub async fn run_pass(&self) -> anyhow::Result<usize> {
        let mut handled = 0;
        loop {
            let batch = {
                let mut conn = self.solver.get().await?;
                let limit = i64::from(self.max_count.max(1));
                solver_db::pristine_of_shard(&mut conn, &self.realm, limit).await?
            };
            let n = batch.len();
            let results: Vec<anyhow::Result<()>> = futures::stream::iter(batch)
                .map(|(debtor_id, collector_id)| self.handle(debtor_id, collector_id))
                .buffer_unordered(self.threads.max(1) as usize)
                .collect()
                .await;
            let mut first_error = None;
            for result in results {
                match result {
                    Ok(()) => handled += 1,
                    Err(e) => {
                        tracing::error!("Caught error while processing objects: {e:#}");
                        first_error.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = first_error {
                return Err(e);
            }
            if n < self.max_count.max(1) as usize {
                return Ok(handled);
            }
        }
    }

    async fn handle(&self, debtor_id: i64, collector_id: i64) -> anyhow::Result<()> {
        let now = Utc::now();
        let postponement = self.max_postponement;
        with_retries(RetryPolicy::HANDLER, || async {
            let mut conn = self.worker.get().await?;
            conn.build_transaction()
                .repeatable_read()
                .run(async |conn| {
                    configure_worker_account(conn, collector_id, debtor_id, now, postponement).await
                })
                .await
                .map_err(HandlerError::from)
        })
        .await?;
        let mut conn = self.solver.get().await?;
        solver_db::mark_requested(&mut conn, debtor_id, collector_id, now).await?;
        Ok(())
    }
}

impl Job for PristineCollectors {
    fn name(&self) -> String {
        "handle_pristine_collectors".into()
    }

    async fn run_once(&mut self) -> anyhow::Result<()> {
        let n = self.run_pass().await?;
        if n > 0 {
            tracing::info!("Requested the creation of {n} collector accounts.");
        }
        Ok(())
    }
}

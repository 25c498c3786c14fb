//! `trigger_transfers`: transfer attempts whose back-off pause is over are tried again, by a
//! `TriggerTransfer` message to the collector's shard (see `docs/turns.md#transfer-attempts`).

use chrono::Utc;

use crate::db::WorkerPool;
use crate::db::retry::{RetryPolicy, with_retries};
use crate::db::worker::transfers as db;
use crate::handlers::HandlerError;
use crate::jobs::Job;
use crate::messages::TriggerTransfer;
use crate::outbox;

/// One pass of `trigger_transfers`.
#[derive(Clone)]
pub struct TriggerTransfers {
    /// This worker's database.
    pub pool: WorkerPool,
    /// Attempts per transaction (`APP_RESCHEDULED_TRANSFERS_BURST_COUNT`).
    pub burst_count: u32,
}

impl TriggerTransfers {
    /// Triggers every due attempt, in batches of `burst_count`; returns how many.
    ///
    /// # Errors
    ///
    /// A database failure (after retries).
    pub async fn run_pass(&self) -> anyhow::Result<usize> {
        let limit = i64::from(self.burst_count.max(1));
        let mut triggered = 0;
        loop {
            let n = with_retries(RetryPolicy::HANDLER, || async {
                let mut conn = self.pool.get().await?;
                conn.build_transaction()
                    .run(async |conn| {
                        let now = Utc::now();
                        let keys = db::take_due_attempts(conn, now, limit).await?;
                        for k in &keys {
                            let m = TriggerTransfer {
                                collector_id: k.collector_id,
                                turn_id: k.turn_id,
                                debtor_id: k.debtor_id,
                                creditor_id: k.creditor_id,
                                is_dispatching: k.is_dispatching,
                                ts: now,
                            };
                            outbox::emit(conn, m).await?;
                        }
                        Ok::<_, diesel::result::Error>(keys.len())
                    })
                    .await
                    .map_err(HandlerError::from)
            })
            .await?;
            triggered += n;
            if (n as i64) < limit {
                return Ok(triggered);
            }
        }
    }
}

impl Job for TriggerTransfers {
    fn name(&self) -> String {
        "trigger_transfers".into()
    }

    async fn run_once(&mut self) -> anyhow::Result<()> {
        let n = self.run_pass().await?;
        if n > 0 {
            tracing::info!("{n} transfer attempts have been triggered.");
        }
        Ok(())
    }
}

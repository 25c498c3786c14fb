//! `roll_transfers`: moves every collector's part of a turn (`dispatching_status`) through
//! collecting → sending → dispatching → done (see `docs/turns.md#transfers`).

use chrono::Utc;

use crate::db::WorkerPool;
use crate::db::retry::{RetryPolicy, with_retries};
use crate::db::worker::transfers::{self as db, RollStep, StatusKey};
use crate::handlers::HandlerError;
use crate::jobs::Job;
use crate::messages::{StartDispatching, StartSending};
use crate::outbox;
use crate::sharding::ShardingRealm;

/// Statuses read and changed per transaction.
const BATCH_SIZE: i64 = 6000;

/// One pass of `roll_transfers` over this shard's collectors.
#[derive(Clone)]
pub struct RollTransfers {
    /// This worker's database.
    pub pool: WorkerPool,
    /// This worker's shard: statuses of other shards' collectors (left-overs of a split) are
    /// left alone.
    pub realm: ShardingRealm,
}

impl RollTransfers {
    /// Runs the four steps once over every status ready for them.
    ///
    /// # Errors
    ///
    /// A database failure (after retries).
    pub async fn run_pass(&self) -> anyhow::Result<()> {
        for step in RollStep::ALL {
            let n = self.run_step(step).await?;
            if n > 0 {
                tracing::debug!("roll_transfers: {step:?} for {n} collector statuses.");
            }
        }
        Ok(())
    }

    async fn run_step(&self, step: RollStep) -> anyhow::Result<usize> {
        let mut after = None;
        let mut changed = 0;
        loop {
            let keys = {
                let mut conn = self.pool.get().await?;
                db::ready_statuses(&mut conn, step, after, BATCH_SIZE).await?
            };
            let Some(&last) = keys.last() else {
                return Ok(changed);
            };
            after = Some(last);
            let full = keys.len() as i64 == BATCH_SIZE;
            let ours: Vec<StatusKey> = keys
                .into_iter()
                .filter(|k| self.realm.contains_id(k.collector_id))
                .collect();
            changed += self.apply(step, &ours).await?;
            if !full {
                return Ok(changed);
            }
        }
    }

    async fn apply(&self, step: RollStep, keys: &[StatusKey]) -> anyhow::Result<usize> {
        if keys.is_empty() {
            return Ok(0);
        }
        let n = with_retries(RetryPolicy::HANDLER, || async {
            let mut conn = self.pool.get().await?;
            conn.build_transaction()
                .run(async |conn| {
                    let now = Utc::now();
                    let changed = db::apply_step(conn, step, keys).await?;
                    for k in &changed {
                        match step {
                            RollStep::ReadyToSend => {
                                let m = StartSending {
                                    collector_id: k.collector_id,
                                    turn_id: k.turn_id,
                                    debtor_id: k.debtor_id,
                                    ts: now,
                                };
                                outbox::emit(conn, m).await?;
                            }
                            RollStep::ReadyToDispatch => {
                                let m = StartDispatching {
                                    collector_id: k.collector_id,
                                    turn_id: k.turn_id,
                                    debtor_id: k.debtor_id,
                                    ts: now,
                                };
                                outbox::emit(conn, m).await?;
                            }
                            RollStep::AllSent | RollStep::Done => {}
                        }
                    }
                    Ok::<_, diesel::result::Error>(changed.len())
                })
                .await
                .map_err(HandlerError::from)
        })
        .await?;
        Ok(n)
    }
}

impl Job for RollTransfers {
    fn name(&self) -> String {
        "roll_transfers".into()
    }

    async fn run_once(&mut self) -> anyhow::Result<()> {
        tracing::info!("Looking for collector accounts ready to initiate transfers.");
        self.run_pass().await
    }
}

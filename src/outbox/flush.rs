//! Publishing outbox rows (see `docs/messages.md#outgoing-messages`).
//!
//! A batch is one transaction: lock up to *burst count* rows with `FOR UPDATE SKIP LOCKED`,
//! publish their messages with publisher confirms, delete the rows, commit. A publishing
//! failure rolls the transaction back, so the rows stay and are sent again later: delivery is
//! at-least-once, in no particular order, and several flushers may share one database.

use std::sync::Arc;

use tokio::sync::Mutex;

use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection as _, AsyncPgConnection};

use super::SignalKind;
use crate::broker::publisher::{PublishError, Publisher};
use crate::config::{BurstCounts, Config};
use crate::db::retry::{self, RetryPolicy, Retryable};
use crate::db::worker::outbox::{delete_locked, lock_batch};
use crate::db::{Unavailable, WorkerPool};
use crate::jobs::Job;
use crate::messages::{ShardGuard, ShardingRealm};

/// Why a flush failed. The batch in hand was rolled back; its rows are still in the outbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlushError {
    /// A database error.
    #[error("database error: {0}")]
    Db(#[from] DieselError),
    /// No database connection could be had.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The broker did not confirm the whole batch.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// An SMP request of a creditor that belongs to neither this shard nor (with
    /// `DELETE_PARENT_SHARD_RECORDS`) its parent.
    #[error("The server is not responsible for this creditor.")]
    NotResponsible {
        /// The creditor's ID.
        creditor_id: i64,
    },
    /// Deleting the locked rows removed another number of rows than were locked.
    #[error("deleted {deleted} of the {locked} locked rows of {kind}")]
    DeleteMismatch {
        /// The signal kind.
        kind: SignalKind,
        /// Rows locked and published.
        locked: usize,
        /// Rows deleted.
        deleted: usize,
    },
}

impl Retryable for FlushError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Db(e) if retry::is_concurrency_failure(e))
    }
}

/// What a flusher needs besides the database and the broker.
#[derive(Debug, Clone)]
pub struct FlushSettings {
    /// This worker's shard, for the SMP shard guard.
    pub realm: ShardingRealm,
    /// `DELETE_PARENT_SHARD_RECORDS`: drop the parent shard's left-over SMP requests.
    pub delete_parent_shard_records: bool,
    /// Rows per batch, by kind (`APP_FLUSH_*_BURST_COUNT`…).
    pub burst_counts: BurstCounts,
}

impl FlushSettings {
    /// The settings in `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            realm: config.sharding_realm,
            delete_parent_shard_records: config.worker.delete_parent_shard_records,
            burst_counts: config.processes.flush_burst_counts,
        }
    }

    /// Rows per batch for `kind`.
    pub fn burst_count(&self, kind: SignalKind) -> u32 {
        self.burst_counts.get(kind).max(1)
    }
}

/// One flusher: a database pool, its own broker connection, and the settings.
pub struct Flusher {
    pool: WorkerPool,
    /// Locked by one batch at a time (a flusher runs one batch at a time anyway).
    publisher: Mutex<Publisher>,
    settings: FlushSettings,
}

impl Flusher {
    /// A flusher publishing to the broker at `broker_url`; nothing is opened yet.
    pub fn new(pool: WorkerPool, broker_url: &str, settings: FlushSettings) -> Self {
        Self {
            pool,
            publisher: Mutex::new(Publisher::new(broker_url)),
            settings,
        }
    }

    /// One pass: flushes every row of each kind in `kinds`, in that order, and returns how
    /// many rows were processed (published, or skipped by the shard guard). A kind that fails
    /// is logged and does not stop the others.
    ///
    /// # Errors
    ///
    /// The first kind's failure, once every kind has had its turn.
    pub async fn flush(&mut self, kinds: &[SignalKind]) -> Result<usize, FlushError> {
        let mut count = 0;
        let mut first_error = None;
        for &kind in kinds {
            match self.flush_kind(kind).await {
                Ok(n) => count += n,
                Err(e) => {
                    tracing::error!(
                        signal.kind = %kind,
                        error = %e,
                        "Caught error while sending pending signals."
                    );
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if count > 0 {
            tracing::info!(
                signals.count = count,
                "{count} signals have been successfully processed."
            );
        } else {
            tracing::debug!(
                signals.count = count,
                "{count} signals have been successfully processed."
            );
        }
        Ok(count)
    }

    /// Flushes batches of `kind` until one is not full.
    async fn flush_kind(&mut self, kind: SignalKind) -> Result<usize, FlushError> {
        tracing::debug!(signal.kind = %kind, "Flushing {kind}.");
        let burst = self.settings.burst_count(kind) as usize;
        let mut count = 0;
        loop {
            let n = self.flush_batch_with_retries(kind, burst).await?;
            metrics::counter!("swpt_trade_outbox_flushed_total", "kind" => kind.class_name())
                .increment(n as u64);
            count += n;
            if n < burst {
                return Ok(count);
            }
        }
    }

    async fn flush_batch_with_retries(
        &self,
        kind: SignalKind,
        burst: usize,
    ) -> Result<usize, FlushError> {
        retry::with_retries(RetryPolicy::FLUSH, || {
            flush_batch(&self.pool, &self.publisher, &self.settings, kind, burst)
        })
        .await
    }
}

/// One transaction: lock, publish, delete, commit. Returns the number of locked rows.
async fn flush_batch(
    pool: &WorkerPool,
    publisher: &Mutex<Publisher>,
    settings: &FlushSettings,
    kind: SignalKind,
    burst: usize,
) -> Result<usize, FlushError> {
    let mut pooled = pool.get().await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let limit = i64::try_from(burst).unwrap_or(i64::MAX);
    conn.transaction::<_, FlushError, _>(async |conn| {
        let rows = lock_batch(conn, kind, limit).await?;
        let mut envelopes = Vec::with_capacity(rows.len());
        for row in &rows {
            let guard = row
                .message
                .shard_guard(&settings.realm, settings.delete_parent_shard_records);
            match guard {
                ShardGuard::Publish => envelopes.push(row.message.envelope()),
                ShardGuard::Skip => {}
                ShardGuard::NotResponsible => {
                    let creditor_id = smp_creditor_id(&row.message);
                    return Err(FlushError::NotResponsible { creditor_id });
                }
            }
        }
        publisher.lock().await.publish_batch(&envelopes).await?;
        let deleted = delete_locked(conn, kind, &rows).await?;
        if deleted != rows.len() {
            let locked = rows.len();
            return Err(FlushError::DeleteMismatch {
                kind,
                locked,
                deleted,
            });
        }
        Ok(rows.len())
    })
    .await
}

fn smp_creditor_id(message: &crate::messages::OutgoingMessage) -> i64 {
    use crate::messages::OutgoingMessage as M;
    match message {
        M::ConfigureAccount(m) => m.creditor_id,
        M::PrepareTransfer(m) => m.creditor_id,
        M::FinalizeTransfer(m) => m.creditor_id,
        _ => 0,
    }
}

/// How the flushers of a command run.
#[derive(Debug, Clone)]
pub struct FlushOptions {
    /// How many flushers run at the same time (`FLUSH_PROCESSES`).
    pub processes: u32,
    /// The time from the start of one pass to the start of the next (`FLUSH_PERIOD`).
    pub period: std::time::Duration,
    /// Run one pass, then stop (`--quit-early`); a failed pass then makes the command fail.
    pub quit_early: bool,
}

/// Spawns `options.processes` flushers of `kinds` on `runner`, each with its own broker
/// connection.
pub fn spawn_flushers(
    runner: &crate::jobs::Runner,
    kinds: &[SignalKind],
    options: &FlushOptions,
    pool: &WorkerPool,
    config: &Config,
) {
    let names: Vec<&str> = kinds.iter().map(|k| k.class_name()).collect();
    tracing::info!("Started flushing {}.", names.join(", "));
    let kinds: Arc<[SignalKind]> = kinds.into();
    let settings = FlushSettings::from_config(config);
    for number in 0..options.processes {
        let job = FlushJob {
            flusher: Flusher::new(pool.clone(), &config.broker.url, settings.clone()),
            kinds: kinds.clone(),
            number,
        };
        let schedule = crate::jobs::Schedule::every(options.period, options.quit_early);
        runner.spawn_job(job, schedule);
    }
}

/// Runs `options.processes` flushers of `kinds` until `stop` is cancelled (a flusher in a
/// pass finishes it first, within `APP_SHUTDOWN_TIMEOUT`), or one pass each with
/// `quit_early`.
///
/// # Errors
///
/// With `quit_early`, a failed pass; otherwise only a drain that timed out.
pub async fn run_flushers(
    kinds: &[SignalKind],
    options: &FlushOptions,
    pool: WorkerPool,
    config: &Config,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let runner = crate::jobs::Runner::new(&stop, config.processes.shutdown_timeout);
    spawn_flushers(&runner, kinds, options, &pool, config);
    runner.wait().await
}

/// A flusher as a periodic job: each pass flushes `kinds`.
pub struct FlushJob {
    /// The flusher.
    pub flusher: Flusher,
    /// The kinds each pass flushes, in this order.
    pub kinds: Arc<[SignalKind]>,
    /// The flusher's number, for log lines.
    pub number: u32,
}

impl Job for FlushJob {
    fn name(&self) -> String {
        format!("Flusher {}", self.number)
    }

    async fn run_once(&mut self) -> anyhow::Result<()> {
        self.flusher.flush(&self.kinds).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_pauses_follow_the_reference() {
        let policy = RetryPolicy::FLUSH;
        assert_eq!(
            retry::retry_pause(1, policy.max_pause),
            std::time::Duration::ZERO
        );
        for n in 2..=policy.max_retries {
            let pause = retry::retry_pause(n, policy.max_pause).as_secs_f64();
            let base = (0.1 * 2f64.powi(n as i32 - 2)).min(1.0);
            assert!(pause >= base * 0.5 && pause < base, "{n}: {pause}");
        }
    }

    #[test]
    fn burst_counts_default_to_the_reference() {
        let settings = FlushSettings {
            realm: "#".parse().unwrap(),
            delete_parent_shard_records: false,
            burst_counts: {
                let mut counts = BurstCounts::uniform(BurstCounts::DEFAULT);
                counts.set(SignalKind::PrepareTransfer, 7);
                counts
            },
        };
        assert_eq!(settings.burst_count(SignalKind::PrepareTransfer), 7);
        assert_eq!(settings.burst_count(SignalKind::StartSending), 10_000);
    }
}

//! Publishing outbox rows (worker.md §4.6, operations.md §3.5).
//!
//! A batch is one transaction: lock up to *burst count* rows with `FOR UPDATE SKIP LOCKED`,
//! publish their messages with publisher confirms, delete the rows, commit. A publishing
//! failure rolls the transaction back, so the rows stay and are sent again later: delivery is
//! at-least-once, in no particular order, and several flushers may share one database.

use std::collections::BTreeMap;
use std::time::Duration;

use diesel::result::Error as DieselError;
use diesel_async::pooled_connection::deadpool::PoolError;
use diesel_async::{AsyncConnection as _, AsyncPgConnection};

use super::{SignalKind, delete_locked, lock_batch};
use crate::broker::publisher::{PublishError, Publisher};
use crate::config::Config;
use crate::db::{DbPool, retry};
use crate::messages::{ShardGuard, ShardingRealm};

/// Rows per batch when a kind has no configured burst count (the reference's default).
pub const DEFAULT_BURST_COUNT: u32 = 10_000;

/// How many times a batch aborted by a serialization failure or a deadlock is run again.
pub const MAX_RETRIES: u32 = 11;

/// Why a flush failed. The batch in hand was rolled back; its rows are still in the outbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlushError {
    /// A database error.
    #[error("database error: {0}")]
    Db(#[from] DieselError),
    /// No database connection could be had.
    #[error("cannot get a database connection: {0}")]
    Pool(#[from] PoolError),
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

/// What a flusher needs besides the database and the broker.
#[derive(Debug, Clone)]
pub struct FlushSettings {
    /// This worker's shard, for the SMP shard guard.
    pub realm: ShardingRealm,
    /// `DELETE_PARENT_SHARD_RECORDS`: drop the parent shard's left-over SMP requests.
    pub delete_parent_shard_records: bool,
    /// Rows per batch, by signal class name (`ConfigureAccountSignal`, …).
    pub burst_counts: BTreeMap<&'static str, u32>,
}

impl FlushSettings {
    /// The settings in `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            realm: config.sharding_realm,
            delete_parent_shard_records: config.worker.delete_parent_shard_records,
            burst_counts: config.processes.flush_burst_counts.clone(),
        }
    }

    /// Rows per batch for `kind`.
    pub fn burst_count(&self, kind: SignalKind) -> u32 {
        self.burst_counts
            .get(kind.class_name())
            .copied()
            .unwrap_or(DEFAULT_BURST_COUNT)
            .max(1)
    }
}

/// One flusher: a database pool, its own broker connection, and the settings.
pub struct Flusher {
    pool: DbPool,
    publisher: Publisher,
    settings: FlushSettings,
}

impl Flusher {
    /// A flusher publishing to the broker at `broker_url`; nothing is opened yet.
    pub fn new(pool: DbPool, broker_url: &str, settings: FlushSettings) -> Self {
        Self {
            pool,
            publisher: Publisher::new(broker_url),
            settings,
        }
    }

    /// One pass: flushes every row of each kind in `kinds`, in that order, and returns how
    /// many rows were processed (published, or skipped by the shard guard).
    pub async fn flush(&mut self, kinds: &[SignalKind]) -> Result<usize, FlushError> {
        let mut count = 0;
        for &kind in kinds {
            count += self.flush_kind(kind).await?;
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
            count += n;
            if n < burst {
                return Ok(count);
            }
        }
    }

    async fn flush_batch_with_retries(
        &mut self,
        kind: SignalKind,
        burst: usize,
    ) -> Result<usize, FlushError> {
        let mut failures = 0;
        loop {
            match self.flush_batch(kind, burst).await {
                Err(FlushError::Db(e))
                    if retry::is_concurrency_failure(&e) && failures < MAX_RETRIES =>
                {
                    failures += 1;
                    tracing::debug!(signal.kind = %kind, "Retrying a flush after: {e}");
                    tokio::time::sleep(retry::retry_pause(failures, MAX_RETRY_PAUSE)).await;
                }
                result => return result,
            }
        }
    }

    /// One transaction: lock, publish, delete, commit. Returns the number of locked rows.
    async fn flush_batch(&mut self, kind: SignalKind, burst: usize) -> Result<usize, FlushError> {
        let mut pooled = self.pool.get().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let publisher = &mut self.publisher;
        let settings = &self.settings;
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
            publisher.publish_batch(&envelopes).await?;
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

/// The longest pause between two retries of a flush (the reference's `max_wait = 1.0`).
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_pauses_follow_the_reference() {
        assert_eq!(retry::retry_pause(1, MAX_RETRY_PAUSE), Duration::ZERO);
        for n in 2..=MAX_RETRIES {
            let pause = retry::retry_pause(n, MAX_RETRY_PAUSE).as_secs_f64();
            let base = (0.1 * 2f64.powi(n as i32 - 2)).min(1.0);
            assert!(pause >= base * 0.5 && pause < base, "{n}: {pause}");
        }
    }

    #[test]
    fn burst_counts_default_to_the_reference() {
        let settings = FlushSettings {
            realm: "#".parse().unwrap(),
            delete_parent_shard_records: false,
            burst_counts: BTreeMap::from([("PrepareTransferSignal", 7)]),
        };
        assert_eq!(settings.burst_count(SignalKind::PrepareTransfer), 7);
        assert_eq!(settings.burst_count(SignalKind::StartSending), 10_000);
    }
}

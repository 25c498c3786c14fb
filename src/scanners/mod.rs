//! The worker's 15 table scanners (docs/operations.md#table-scanners): each one reads its
//! table slowly and continuously, in physical order, and deletes the rows that are no longer
//! needed — and, with `DELETE_PARENT_SHARD_RECORDS`, the rows of a split shard's sibling.
//!
//! Every scanner is the same paced loop ([`Scanner::run`]), run as a service of the job
//! runner; they differ only in their table and its deletion rule ([`Scan`], with the SQL in
//! `db::worker::scans`). The pacing arithmetic is in [`pace`].
//!
//! One pass over a table: the planner's row estimate gives the rows per beat and the number of
//! beats ([`pace::rows_and_beats`]); each beat reads its rows (ranges of `BLOCKS_PER_QUERY`
//! pages, from a random page, wrapping around), deletes the split shard's left-overs among
//! them in one transaction and the stale ones in another, then sleeps to keep the rhythm. The
//! sleep ends at once when the stop token is cancelled.

pub mod pace;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, ScanSettings};
use crate::db::retry::{self, RetryPolicy, Retryable, with_retries};
use crate::db::worker::scans::{self, Cutoffs, Deletion, ScannedRow, ScannedTable};
use crate::db::{Unavailable, WorkerPool};
use crate::jobs::{OnFailure, Runner};
use crate::sharding::{ShardingKey, ShardingRealm};
use pace::{PageCursor, Rhythm};

/// The passes a scanner makes with `--quit-early` before it returns (as the reference).
pub const QUIT_EARLY_PASSES: u32 = 11;
/// The most page-range queries of one beat (a beat normally needs one or a few).
pub const MAX_QUERIES_PER_BEAT: u32 = 10_000;
/// Connections for the scanners of one process: one each for `scan_all` (and `worker`).
pub const POOL_SIZE: usize = Scan::ALL.len();

/// One of the worker's table scanners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scan {
    /// `debtor_info_document`: documents fetched more than `APP_LOCATOR_CLAIM_EXPIRY_DAYS`
    /// ago.
    DebtorInfoDocuments,
    /// `debtor_locator_claim`: claims whose locator was fetched more than
    /// `APP_LOCATOR_CLAIM_EXPIRY_DAYS` ago, or that have none and were discovered more than
    /// `APP_DEBTOR_INFO_EXPIRY_DAYS` ago.
    DebtorLocatorClaims,
    /// `trading_policy`: useless policies with no update for `APP_TURN_MAX_COMMIT_PERIOD` +
    /// `APP_WORKER_DISPATCHING_SLACK_DAYS` + `APP_EXTREME_MESSAGE_DELAY_DAYS`.
    TradingPolicies,
    /// `worker_account`: no heartbeat for `APP_MAX_HEARTBEAT_DELAY_DAYS`.
    WorkerAccounts,
    /// `interest_rate_change`: only a split shard's left-overs.
    InterestRateChanges,
    /// `needed_worker_account`: only a split shard's left-overs.
    NeededWorkerAccounts,
    /// `recently_needed_collector`: older than `APP_LOCATOR_CLAIM_EXPIRY_DAYS`.
    RecentlyNeededCollectors,
    /// `account_lock`: initiated more than `APP_ACCOUNT_LOCK_MAX_DAYS` ago, or released more
    /// than `APP_RELEASED_ACCOUNT_LOCK_MAX_DAYS` ago.
    AccountLocks,
    /// `creditor_participation`: only a split shard's left-overs.
    CreditorParticipations,
    /// `dispatching_status`: only a split shard's left-overs.
    DispatchingStatuses,
    /// `worker_collecting`: past `purge_after` and not collected.
    WorkerCollectings,
    /// `worker_sending`: past `purge_after`.
    WorkerSendings,
    /// `worker_receiving`: past `purge_after` and nothing received.
    WorkerReceivings,
    /// `worker_dispatching`: past `purge_after`.
    WorkerDispatchings,
    /// `transfer_attempt`: collection started more than `APP_TURN_MAX_COMMIT_PERIOD` + the
    /// larger of the sending and dispatching slacks ago.
    TransferAttempts,
}

impl Scan {
    /// Every scanner, in the reference's order.
    pub const ALL: [Scan; 15] = [
        Scan::DebtorInfoDocuments,
        Scan::DebtorLocatorClaims,
        Scan::TradingPolicies,
        Scan::WorkerAccounts,
        Scan::InterestRateChanges,
        Scan::NeededWorkerAccounts,
        Scan::RecentlyNeededCollectors,
        Scan::AccountLocks,
        Scan::CreditorParticipations,
        Scan::DispatchingStatuses,
        Scan::WorkerCollectings,
        Scan::WorkerSendings,
        Scan::WorkerReceivings,
        Scan::WorkerDispatchings,
        Scan::TransferAttempts,
    ];

    /// The scanned table.
    pub fn table(self) -> &'static ScannedTable {
        match self {
            Scan::DebtorInfoDocuments => &scans::DEBTOR_INFO_DOCUMENT,
            Scan::DebtorLocatorClaims => &scans::DEBTOR_LOCATOR_CLAIM,
            Scan::TradingPolicies => &scans::TRADING_POLICY,
            Scan::WorkerAccounts => &scans::WORKER_ACCOUNT,
            Scan::InterestRateChanges => &scans::INTEREST_RATE_CHANGE,
            Scan::NeededWorkerAccounts => &scans::NEEDED_WORKER_ACCOUNT,
            Scan::RecentlyNeededCollectors => &scans::RECENTLY_NEEDED_COLLECTOR,
            Scan::AccountLocks => &scans::ACCOUNT_LOCK,
            Scan::CreditorParticipations => &scans::CREDITOR_PARTICIPATION,
            Scan::DispatchingStatuses => &scans::DISPATCHING_STATUS,
            Scan::WorkerCollectings => &scans::WORKER_COLLECTING,
            Scan::WorkerSendings => &scans::WORKER_SENDING,
            Scan::WorkerReceivings => &scans::WORKER_RECEIVING,
            Scan::WorkerDispatchings => &scans::WORKER_DISPATCHING,
            Scan::TransferAttempts => &scans::TRANSFER_ATTEMPT,
        }
    }

    /// The table group of its settings: `APP_<group>_SCAN_DAYS` and so on.
    pub fn settings_group(self) -> &'static str {
        match self {
            Scan::DebtorInfoDocuments => "DEBTOR_INFO_DOCUMENTS",
            Scan::DebtorLocatorClaims => "DEBTOR_LOCATOR_CLAIMS",
            Scan::TradingPolicies => "TRADING_POLICIES",
            Scan::WorkerAccounts => "WORKER_ACCOUNTS",
            Scan::InterestRateChanges => "INTEREST_RATE_CHANGES",
            Scan::NeededWorkerAccounts => "NEEDED_WORKER_ACCOUNTS",
            Scan::RecentlyNeededCollectors => "RECENTLY_NEEDED_COLLECTORS",
            Scan::AccountLocks => "ACCOUNT_LOCKS",
            Scan::CreditorParticipations => "CREDITOR_PARTICIPATIONS",
            Scan::DispatchingStatuses => "DISPATCHING_STATUSES",
            Scan::WorkerCollectings => "WORKER_COLLECTINGS",
            Scan::WorkerSendings => "WORKER_SENDINGS",
            Scan::WorkerReceivings => "WORKER_RECEIVINGS",
            Scan::WorkerDispatchings => "WORKER_DISPATCHINGS",
            Scan::TransferAttempts => "TRANSFER_ATTEMPTS",
        }
    }

    /// What the log lines call it: `Started <description> scanner.`
    pub fn description(self) -> &'static str {
        match self {
            Scan::DebtorInfoDocuments => "debtor info documents",
            Scan::DebtorLocatorClaims => "debtor locator claims",
            Scan::TradingPolicies => "trading policies",
            Scan::WorkerAccounts => "worker accounts",
            Scan::InterestRateChanges => "interest rate changes",
            Scan::NeededWorkerAccounts => "needed worker accounts",
            Scan::RecentlyNeededCollectors => "recently needed collector records",
            Scan::AccountLocks => "account lock records",
            Scan::CreditorParticipations => "creditor participation records",
            Scan::DispatchingStatuses => "dispatching status records",
            Scan::WorkerCollectings => "worker collecting records",
            Scan::WorkerSendings => "worker sending records",
            Scan::WorkerReceivings => "worker receiving records",
            Scan::WorkerDispatchings => "worker dispatching records",
            Scan::TransferAttempts => "worker transfer attempts",
        }
    }

    /// Whether the scanner only deletes a split shard's left-overs (and so idles when
    /// `DELETE_PARENT_SHARD_RECORDS` is off).
    pub fn is_parent_only(self) -> bool {
        self.table().stale.is_none()
    }

    /// How far before "now" each cutoff of the table's stale condition lies.
    fn retention(self, config: &Config) -> anyhow::Result<[Option<TimeDelta>; 2]> {
        let w = &config.worker;
        let zero = Some(TimeDelta::zero());
        let max_commit_period = TimeDelta::from_std(config.turn.max_commit_period)
            .context("APP_TURN_MAX_COMMIT_PERIOD is too long")?;
        Ok(match self {
            Scan::DebtorInfoDocuments | Scan::RecentlyNeededCollectors => {
                [Some(days(w.locator_claim_expiry_days)?), None]
            }
            Scan::DebtorLocatorClaims => [
                Some(days(w.locator_claim_expiry_days)?),
                Some(days(w.debtor_info_expiry_days)?),
            ],
            Scan::TradingPolicies => [
                Some(
                    max_commit_period
                        + days(w.dispatching_slack_days)?
                        + days(w.extreme_message_delay_days)?,
                ),
                None,
            ],
            Scan::WorkerAccounts => [Some(days(w.max_heartbeat_delay_days)?), None],
            Scan::AccountLocks => [
                Some(days(w.account_lock_max_days)?),
                Some(days(w.released_account_lock_max_days)?),
            ],
            Scan::WorkerCollectings
            | Scan::WorkerSendings
            | Scan::WorkerReceivings
            | Scan::WorkerDispatchings => [zero, None],
            Scan::TransferAttempts => [
                Some(max_commit_period + days(w.sending_slack_days.max(w.dispatching_slack_days))?),
                None,
            ],
            Scan::InterestRateChanges
            | Scan::NeededWorkerAccounts
            | Scan::CreditorParticipations
            | Scan::DispatchingStatuses => [None, None],
        })
    }
}

/// A number of days from a setting, as a time delta.
fn days(days: f64) -> anyhow::Result<TimeDelta> {
    let duration = Duration::try_from_secs_f64(days * 86_400.0)
        .with_context(|| format!("invalid number of days: {days}"))?;
    TimeDelta::from_std(duration).with_context(|| format!("too many days: {days}"))
}

/// A scanner, ready to run.
#[derive(Debug, Clone)]
pub struct Scanner {
    scan: Scan,
    pool: WorkerPool,
    realm: ShardingRealm,
    delete_parent: bool,
    pass: Duration,
    pages_per_query: u32,
    target_beat: Duration,
    retention: [Option<TimeDelta>; 2],
    quit_early: bool,
}

impl Scanner {
    /// The scanner `scan` of `config`'s worker database. `days` (the `--days` option; absent
    /// or 0 means "the setting") is the length of one pass; `quit_early` makes it return after
    /// [`QUIT_EARLY_PASSES`] passes.
    ///
    /// # Errors
    ///
    /// A number of days that is not positive or too large, or settings that make a cutoff
    /// impossible to compute.
    pub fn new(
        scan: Scan,
        config: &Config,
        pool: WorkerPool,
        days: Option<f64>,
        quit_early: bool,
    ) -> anyhow::Result<Self> {
        let group = scan.settings_group();
        let settings: ScanSettings = *config
            .scans
            .get(group)
            .with_context(|| format!("no settings for the {group} scanner"))?;
        let days = days.filter(|d| *d != 0.0).unwrap_or(settings.days);
        if !(days > 0.0 && days <= config::MAX_DATE_OFFSET_DAYS) {
            anyhow::bail!(
                "invalid number of days for the {} scanner: {days} (must be positive, at most {})",
                scan.description(),
                config::MAX_DATE_OFFSET_DAYS
            );
        }
        Ok(Self {
            scan,
            pool,
            realm: config.sharding_realm,
            delete_parent: config.worker.delete_parent_shard_records,
            pass: Duration::try_from_secs_f64(days * 86_400.0)
                .with_context(|| format!("invalid number of days: {days}"))?,
            pages_per_query: settings.blocks_per_query,
            target_beat: Duration::from_millis(u64::from(settings.beat_millisecs.max(1))),
            retention: scan.retention(config)?,
            quit_early,
        })
    }

    /// Which scanner this is.
    pub fn scan(&self) -> Scan {
        self.scan
    }

    /// Scans the table until `stop` is cancelled (or, with `--quit-early`, for
    /// [`QUIT_EARLY_PASSES`] passes). A parent-only scanner idles while
    /// `DELETE_PARENT_SHARD_RECORDS` is off.
    ///
    /// # Errors
    ///
    /// A database error: the runner starts the scanner again after a back-off.
    pub async fn run(&self, stop: CancellationToken) -> anyhow::Result<()> {
        tracing::info!("Started {} scanner.", self.scan.description());
        if self.scan.is_parent_only() && !self.delete_parent {
            if !self.quit_early {
                stop.cancelled().await;
            }
            return Ok(());
        }
        let table = self.scan.table();
        let mut cursor = PageCursor::new(self.pages_per_query);
        let mut queue = VecDeque::new();
        let mut passes: u32 = 0;
        loop {
            passes = passes.saturating_add(1);
            let rows = self.row_estimate().await?;
            let mut rhythm = Rhythm::new(rows, self.pass, self.target_beat, Instant::now());
            tracing::debug!(
                "Scanning {} ({rows} rows): {} rows per beat, {} beats of {:?}.",
                table.table,
                rhythm.rows_per_beat(),
                rhythm.beats(),
                rhythm.beat()
            );
            loop {
                if rhythm.time_is_up()
                    || (rhythm.size_check_due() && rhythm.size_changed(self.row_estimate().await?))
                {
                    break;
                }
                let cutoffs = self.cutoffs(Utc::now())?;
                let rows = self
                    .read_rows(&mut cursor, &mut queue, rhythm.rows_per_beat(), cutoffs)
                    .await?;
                if !rows.is_empty() {
                    self.process_rows(&rows, cutoffs).await?;
                }
                let pause = rhythm.register_beat(Instant::now());
                if !pause.is_zero() {
                    tokio::select! {
                        () = stop.cancelled() => return Ok(()),
                        () = tokio::time::sleep(pause) => {}
                    }
                    rhythm.slept(Instant::now());
                }
                if stop.is_cancelled() {
                    return Ok(());
                }
            }
            if self.quit_early && passes >= QUIT_EARLY_PASSES {
                return Ok(());
            }
        }
    }

    /// The cutoffs of the stale condition at `now`.
    fn cutoffs(&self, now: DateTime<Utc>) -> anyhow::Result<Cutoffs> {
        let cutoff = |retention: Option<TimeDelta>| -> anyhow::Result<Option<DateTime<Utc>>> {
            retention
                .map(|r| {
                    now.checked_sub_signed(r)
                        .context("a scanner's cutoff is out of range")
                })
                .transpose()
        };
        Ok([cutoff(self.retention[0])?, cutoff(self.retention[1])?])
    }

    async fn row_estimate(&self) -> anyhow::Result<u64> {
        let mut conn = self.pool.get().await?;
        Ok(scans::row_estimate(&mut conn, self.scan.table()).await?)
    }

    /// The next `count` rows (fewer at the end of the table), reading ranges of pages until
    /// there are enough.
    async fn read_rows(
        &self,
        cursor: &mut PageCursor,
        queue: &mut VecDeque<ScannedRow>,
        count: u64,
        cutoffs: Cutoffs,
    ) -> anyhow::Result<Vec<ScannedRow>> {
        let table = self.scan.table();
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if queue.len() < count {
            let mut conn = self.pool.get().await?;
            let mut queries = 0;
            while queue.len() < count && queries < MAX_QUERIES_PER_BEAT {
                queries += 1;
                if cursor.needs_start() {
                    let pages = scans::page_count(&mut conn, table).await?;
                    cursor.start_at(PageCursor::random_start(pages, rand::random()));
                }
                let range = cursor.next_range();
                let rows =
                    scans::rows_in_pages(&mut conn, table, (range.start, range.end), cutoffs)
                        .await?;
                if rows.is_empty() {
                    let pages = scans::page_count(&mut conn, table).await?;
                    if cursor.found_none(pages) {
                        tracing::info!(
                            "The {} scanner reached the end of the table.",
                            self.scan.description()
                        );
                        break;
                    }
                } else {
                    cursor.found_rows();
                    queue.extend(rows);
                }
            }
        }
        let n = count.min(queue.len());
        Ok(queue.drain(..n).collect())
    }

    /// Whether a row belongs to the parent shard but not to this one.
    fn is_left_over(&self, row: &ScannedRow) -> bool {
        let key = match (&row.key_id, &row.key_text) {
            (Some(id), _) => ShardingKey::Id(*id),
            (None, Some(s)) => ShardingKey::Str(s),
            (None, None) => return false,
        };
        !self.realm.contains(key) && self.realm.parent_contains(key)
    }

    /// Deletes the sibling shard's rows among `rows` (with `DELETE_PARENT_SHARD_RECORDS`),
    /// then the stale ones, each in a transaction of its own.
    async fn process_rows(&self, rows: &[ScannedRow], cutoffs: Cutoffs) -> anyhow::Result<()> {
        let mut left_overs = Vec::new();
        let mut stale = Vec::new();
        for row in rows {
            if self.delete_parent && self.is_left_over(row) {
                left_overs.push(row.pk.as_str());
            } else if row.stale {
                stale.push(row.pk.as_str());
            }
        }
        let table = self.scan.table().table;
        if !left_overs.is_empty() {
            let n = self.delete(&left_overs, Deletion::Any, cutoffs).await?;
            tracing::debug!("Deleted {n} rows of the parent shard from {table}.");
        }
        if !stale.is_empty() && !self.scan.is_parent_only() {
            let n = self.delete(&stale, Deletion::Stale, cutoffs).await?;
            tracing::debug!("Deleted {n} stale rows from {table}.");
        }
        Ok(())
    }

    async fn delete(
        &self,
        pks: &[&str],
        deletion: Deletion,
        cutoffs: Cutoffs,
    ) -> Result<usize, ScanError> {
        let table = self.scan.table();
        with_retries(RetryPolicy::HANDLER, || async {
            let mut conn = self.pool.get().await?;
            conn.build_transaction()
                .repeatable_read()
                .run(async |conn| scans::delete_rows(conn, table, pks, deletion, cutoffs).await)
                .await
                .map_err(ScanError::from)
        })
        .await
    }
}

/// A failed deletion.
#[derive(Debug, thiserror::Error)]
enum ScanError {
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

impl Retryable for ScanError {
    fn is_retryable(&self) -> bool {
        matches!(self, ScanError::Db(e) if retry::is_concurrency_failure(e))
    }
}

/// Spawns `scanner` on `runner` as a service named `<description> scanner`.
pub fn spawn(runner: &Runner, scanner: Scanner, on_failure: OnFailure) {
    let name = format!("{} scanner", scanner.scan.description());
    let scanner = Arc::new(scanner);
    runner.spawn_service(name, on_failure, move |token| {
        let scanner = scanner.clone();
        async move { scanner.run(token).await }
    });
}

/// Spawns all 15 scanners on `runner`, each with its days setting, restarted after a back-off
/// when it fails. `pool` should have [`POOL_SIZE`] connections.
///
/// # Errors
///
/// Invalid scanner settings (a pass of 0 days…); nothing is spawned then.
pub fn spawn_all(runner: &Runner, config: &Config, pool: &WorkerPool) -> anyhow::Result<()> {
    let scanners = Scan::ALL
        .iter()
        .map(|&scan| Scanner::new(scan, config, pool.clone(), None, false))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for scanner in scanners {
        spawn(runner, scanner, OnFailure::Restart);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scanner_has_settings_and_a_distinct_table() {
        let groups: Vec<&str> = crate::config::SCAN_TABLES.iter().map(|t| t.0).collect();
        let mut tables = std::collections::HashSet::new();
        for scan in Scan::ALL {
            assert!(groups.contains(&scan.settings_group()), "{scan:?}");
            assert!(tables.insert(scan.table().table), "{scan:?}");
        }
        let parent_only: Vec<Scan> = Scan::ALL
            .into_iter()
            .filter(|s| s.is_parent_only())
            .collect();
        // The parent cleanup shards each table by the column `verify_shard_content` checks.
        for scan in Scan::ALL {
            let table = scan.table();
            let column = crate::db::worker::shard::SHARDED_COLUMNS
                .iter()
                .find(|(t, _)| *t == table.table)
                .map(|(_, c)| *c);
            assert_eq!(column, Some(table.key[0].0), "{scan:?}");
        }
        assert_eq!(
            parent_only,
            [
                Scan::InterestRateChanges,
                Scan::NeededWorkerAccounts,
                Scan::CreditorParticipations,
                Scan::DispatchingStatuses
            ]
        );
    }
}

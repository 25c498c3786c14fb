//! What the simulator reads from the service's databases: the solver's turns, offers and
//! collector accounts, and each shard's worker turns, account locks and unfinished
//! transfers. The simulator never writes to a database.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Integer, Nullable, SmallInt, Text, Timestamptz};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};

use super::audit::Decision;

/// A turn of the solver database.
#[derive(Debug, Clone, PartialEq, diesel::QueryableByName)]
pub struct TurnRow {
    #[diesel(sql_type = Integer)]
    pub turn_id: i32,
    #[diesel(sql_type = Timestamptz)]
    pub started_at: DateTime<Utc>,
    #[diesel(sql_type = SmallInt)]
    pub phase: i16,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub collection_started_at: Option<DateTime<Utc>>,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A collector account of the solver database.
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct CollectorRow {
    #[diesel(sql_type = BigInt)]
    pub debtor_id: i64,
    #[diesel(sql_type = BigInt)]
    pub collector_id: i64,
    #[diesel(sql_type = Text)]
    pub account_id: String,
}

/// A trading policy with a name (a live policy).
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct PolicyRow {
    #[diesel(sql_type = BigInt)]
    pub creditor_id: i64,
    #[diesel(sql_type = BigInt)]
    pub debtor_id: i64,
}

/// Connections to the solver database and to every shard's, opened when first needed and
/// again after a failure.
pub struct Databases {
    solver_url: String,
    worker_urls: Vec<String>,
    solver: Option<AsyncPgConnection>,
    workers: Vec<Option<AsyncPgConnection>>,
}

async fn connect(slot: &mut Option<AsyncPgConnection>, url: &str) -> anyhow::Result<()> {
    if slot.is_none() {
        let conn = AsyncPgConnection::establish(url).await.with_context(|| {
            format!(
                "cannot connect to {}",
                crate::config::mask_urls_in_text(url)
            )
        })?;
        *slot = Some(conn);
    }
    Ok(())
}

async fn count(conn: &mut AsyncPgConnection, sql: &str, turn_id: i32) -> diesel::QueryResult<i64> {
    let row: Count = diesel::sql_query(sql)
        .bind::<Integer, _>(turn_id)
        .get_result(conn)
        .await?;
    Ok(row.n)
}

impl Databases {
    /// Nothing is opened yet.
    pub fn new(solver_url: String, worker_urls: Vec<String>) -> Self {
        let workers = worker_urls.iter().map(|_| None).collect();
        Self {
            solver_url,
            worker_urls,
            solver: None,
            workers,
        }
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.worker_urls.len()
    }

    /// Runs `f` on the solver database; a failure closes the connection.
    async fn on_solver<T>(
        &mut self,
        f: impl AsyncFnOnce(&mut AsyncPgConnection) -> diesel::QueryResult<T>,
    ) -> anyhow::Result<T> {
        connect(&mut self.solver, &self.solver_url).await?;
        let result = f(self.solver.as_mut().expect("connected")).await;
        if result.is_err() {
            self.solver = None;
        }
        result.context("a query of the solver database failed")
    }

    /// Runs `f` on shard `i`'s database; a failure closes the connection.
    async fn on_worker<T>(
        &mut self,
        i: usize,
        f: impl AsyncFnOnce(&mut AsyncPgConnection) -> diesel::QueryResult<T>,
    ) -> anyhow::Result<T> {
        connect(&mut self.workers[i], &self.worker_urls[i]).await?;
        let result = f(self.workers[i].as_mut().expect("connected")).await;
        if result.is_err() {
            self.workers[i] = None;
        }
        result.with_context(|| format!("a query of the database of shard {i} failed"))
    }

    /// The turns after `after`, oldest first.
    pub async fn turns_after(&mut self, after: i32) -> anyhow::Result<Vec<TurnRow>> {
        self.on_solver(async |conn| {
            diesel::sql_query(
                "SELECT turn_id, started_at, phase, collection_started_at FROM turn \
                 WHERE turn_id > $1 ORDER BY turn_id",
            )
            .bind::<Integer, _>(after)
            .load(conn)
            .await
        })
        .await
    }

    /// The latest turn's ID (0 without turns).
    pub async fn latest_turn(&mut self) -> anyhow::Result<i32> {
        self.on_solver(async |conn| {
            let row: Count =
                diesel::sql_query("SELECT coalesce(max(turn_id), 0)::int8 AS n FROM turn")
                    .get_result(conn)
                    .await?;
            Ok(row.n as i32)
        })
        .await
    }

    /// Whether a turn after `turn_id` has reached `phase`.
    pub async fn later_turn_reached(&mut self, turn_id: i32, phase: i16) -> anyhow::Result<bool> {
        let n = self
            .on_solver(async |conn| {
                let row: Count = diesel::sql_query(
                    "SELECT count(*) AS n FROM turn WHERE turn_id > $1 AND phase >= $2",
                )
                .bind::<Integer, _>(turn_id)
                .bind::<SmallInt, _>(phase)
                .get_result(conn)
                .await?;
                Ok(row.n)
            })
            .await?;
        Ok(n > 0)
    }

    /// The sell and buy offers of a turn in the solver database (there only during the end
    /// of phase 2).
    pub async fn offers(&mut self, turn_id: i32) -> anyhow::Result<(i64, i64)> {
        self.on_solver(async |conn| {
            let sell = count(
                conn,
                "SELECT count(*) AS n FROM sell_offer WHERE turn_id = $1",
                turn_id,
            )
            .await?;
            let buy = count(
                conn,
                "SELECT count(*) AS n FROM buy_offer WHERE turn_id = $1",
                turn_id,
            )
            .await?;
            Ok((sell, buy))
        })
        .await
    }

    /// The collector accounts whose creation was requested or done.
    pub async fn collectors(&mut self) -> anyhow::Result<Vec<CollectorRow>> {
        self.on_solver(async |conn| {
            diesel::sql_query(
                "SELECT debtor_id, collector_id, account_id::text AS account_id \
                 FROM collector_account WHERE status IN (1, 2)",
            )
            .load(conn)
            .await
        })
        .await
    }

    /// How many of `debtor_ids` have an active collector account.
    pub async fn currencies_with_active_collectors(
        &mut self,
        debtor_ids: &[i64],
    ) -> anyhow::Result<i64> {
        let ids = debtor_ids.to_vec();
        self.on_solver(async |conn| {
            let row: Count = diesel::sql_query(
                "SELECT count(DISTINCT debtor_id) AS n FROM collector_account \
                 WHERE status = 2 AND debtor_id = ANY($1)",
            )
            .bind::<diesel::sql_types::Array<BigInt>, _>(ids)
            .get_result(conn)
            .await?;
            Ok(row.n)
        })
        .await
    }

    /// Summed over the shards: the stored documents at `prefix…` locators, and the debtors
    /// whose locator claim is confirmed at one.
    pub async fn documents(&mut self, prefix: &str) -> anyhow::Result<(i64, i64)> {
        let pattern = format!("{prefix}%");
        let mut totals = (0, 0);
        for i in 0..self.shards() {
            let pattern = pattern.clone();
            let (docs, claims) = self
                .on_worker(i, async |conn| {
                    let docs: Count = diesel::sql_query(
                        "SELECT count(*) AS n FROM debtor_info_document \
                         WHERE debtor_info_locator LIKE $1",
                    )
                    .bind::<Text, _>(&pattern)
                    .get_result(conn)
                    .await?;
                    let claims: Count = diesel::sql_query(
                        "SELECT count(*) AS n FROM debtor_locator_claim \
                         WHERE debtor_info_locator LIKE $1",
                    )
                    .bind::<Text, _>(&pattern)
                    .get_result(conn)
                    .await?;
                    Ok((docs.n, claims.n))
                })
                .await?;
            totals.0 += docs;
            totals.1 += claims;
        }
        Ok(totals)
    }

    /// Every live trading policy of every shard.
    pub async fn live_policies(&mut self) -> anyhow::Result<Vec<PolicyRow>> {
        let mut all = Vec::new();
        for i in 0..self.shards() {
            let rows: Vec<PolicyRow> = self
                .on_worker(i, async |conn| {
                    diesel::sql_query(
                        "SELECT creditor_id, debtor_id FROM trading_policy \
                         WHERE policy_name IS NOT NULL",
                    )
                    .load(conn)
                    .await
                })
                .await?;
            all.extend(rows);
        }
        Ok(all)
    }

    /// The turn's decisions, once every shard has copied its results and revised every
    /// account lock of the turn; `None` until then.
    pub async fn decisions(&mut self, turn_id: i32) -> anyhow::Result<Option<Vec<Decision>>> {
        for i in 0..self.shards() {
            let ready = self
                .on_worker(i, async |conn| {
                    let copied = count(
                        conn,
                        "SELECT count(*) AS n FROM worker_turn \
                         WHERE turn_id = $1 AND phase = 3 AND worker_turn_subphase >= 5",
                        turn_id,
                    )
                    .await?;
                    let unrevised = count(
                        conn,
                        "SELECT count(*) AS n FROM account_lock \
                         WHERE turn_id = $1 AND NOT has_been_revised",
                        turn_id,
                    )
                    .await?;
                    Ok(copied == 1 && unrevised == 0)
                })
                .await?;
            if !ready {
                return Ok(None);
            }
        }
        let mut decisions = Vec::new();
        for i in 0..self.shards() {
            let rows: Vec<Decision> = self
                .on_worker(i, async |conn| {
                    diesel::sql_query(
                        "SELECT creditor_id, debtor_id, amount, collector_id, \
                         coordinator_request_id FROM account_lock \
                         WHERE turn_id = $1 AND has_been_revised ORDER BY creditor_id, debtor_id",
                    )
                    .bind::<Integer, _>(turn_id)
                    .load(conn)
                    .await
                })
                .await?;
            decisions.extend(rows);
        }
        Ok(Some(decisions))
    }

    /// The turn's dispatching statuses, transfer attempts and unreleased account locks left
    /// on every shard.
    pub async fn unfinished_transfers(&mut self, turn_id: i32) -> anyhow::Result<i64> {
        let mut total = 0;
        for i in 0..self.shards() {
            total += self
                .on_worker(i, async |conn| {
                    let statuses = count(
                        conn,
                        "SELECT count(*) AS n FROM dispatching_status WHERE turn_id = $1",
                        turn_id,
                    )
                    .await?;
                    let attempts = count(
                        conn,
                        "SELECT count(*) AS n FROM transfer_attempt WHERE turn_id = $1",
                        turn_id,
                    )
                    .await?;
                    let locks = count(
                        conn,
                        "SELECT count(*) AS n FROM account_lock \
                         WHERE turn_id = $1 AND released_at IS NULL",
                        turn_id,
                    )
                    .await?;
                    Ok(statuses + attempts + locks)
                })
                .await?;
        }
        Ok(total)
    }
}

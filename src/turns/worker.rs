//! `roll_worker_turns`: a worker's part of each trading turn (see
//! `docs/turns.md#worker-sub-phases`). The worker mirrors the solver's turns into
//! `worker_turn` and moves a sub-phase counter through each phase:
//!
//! | phase/sub | work | next |
//! |---|---|---|
//! | 1/0 | this shard's debtor infos and confirmed locators → solver (`debtor_info`, `confirmed_debtor`) | 10 |
//! | 2/0 | trading policies → bids → `CandidateOffer`s; `active_collector` refresh; `NeededCollector`s | 5 |
//! | 2/5 | near the phase-2 deadline: prepared account locks → solver offers | 10 |
//! | 3/0 | this shard's results → transfer plans, dispatching statuses, `ReviseAccountLock`s | 5 |
//! | 3/5 | this shard's result rows deleted from the solver | 10 |
//!
//! Solver-database writes commit before the worker transaction that records the next
//! sub-phase; a sub-phase interrupted between the two is run again, and an insert that finds
//! its rows already there (a unique violation) counts as done.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};

use super::after;
use crate::config::Config;
use crate::db::solver::turns::{self as solver_db, RESULT_TABLES_BY_HASH, ShardRow};
use crate::db::worker::transfers as transfers_db;
use crate::db::worker::turns::{
    self as worker_db, CandidateOfferRow, DispatchingAmounts, PolicyRow, SUBPHASE_DONE, WorkerTurn,
};
use crate::db::{SolverPool, WorkerPool};
use crate::jobs::Job;
use crate::sharding::ShardingRealm;
use crate::solver::pricing::{BaseCurrency, BidAux, BidProcessor};
use crate::solver::{BuyOffer, SellOffer};

/// Bids registered before they are analysed (after the current creditor's last one).
pub const BID_COUNTER_THRESHOLD: usize = 100_000;
/// Trading policies read per query.
const POLICIES_PER_QUERY: i64 = 10_000;

/// The settings of worker turn rolling.
#[derive(Debug, Clone)]
pub struct WorkerTurnSettings {
    /// `APP_TURN_PHASE_CUSHION_PERIOD`: how long before the phase-2 deadline the offers go.
    pub phase_cushion_period: Duration,
    /// `APP_WORKER_COLLECTING_SLACK_DAYS`.
    pub collecting_slack: Duration,
    /// `APP_WORKER_SENDING_SLACK_DAYS` (sendings and receivings).
    pub sending_slack: Duration,
    /// `APP_WORKER_DISPATCHING_SLACK_DAYS`.
    pub dispatching_slack: Duration,
}

impl WorkerTurnSettings {
    /// The settings of `config`.
    ///
    /// # Errors
    ///
    /// A slack that is not a valid duration (settings are bounded, so this does not happen).
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let days = |d: f64, var: &str| {
            Duration::try_from_secs_f64(d * 86_400.0).with_context(|| format!("invalid {var}"))
        };
        let w = &config.worker;
        Ok(Self {
            phase_cushion_period: config.turn.phase_cushion_period,
            collecting_slack: days(w.collecting_slack_days, "APP_WORKER_COLLECTING_SLACK_DAYS")?,
            sending_slack: days(w.sending_slack_days, "APP_WORKER_SENDING_SLACK_DAYS")?,
            dispatching_slack: days(
                w.dispatching_slack_days,
                "APP_WORKER_DISPATCHING_SLACK_DAYS",
            )?,
        })
    }
}

/// Clamps into `[−(2^63 − 1), 2^63 − 1]` (the reference's `contain_principal_overflow`).
fn contain(value: i128) -> i64 {
    value.clamp(-i128::from(i64::MAX), i128::from(i64::MAX)) as i64
}

/// The bid of a trading policy: 0 unless the creditor trades this currency with an account;
/// positive to buy up to `min_principal`, negative to sell down to `max_principal`.
pub fn bid_amount(p: &PolicyRow) -> i64 {
    let has_account = !p.account_id.is_empty() && !p.account_id_is_obsolete;
    let scheduled_for_deletion = p.config_flags & 1 != 0;
    if scheduled_for_deletion
        || !has_account
        || p.policy_name.is_none()
        || p.max_principal < p.min_principal
        || (p.min_principal..=p.max_principal).contains(&p.principal)
    {
        return 0;
    }
    if p.principal < p.min_principal {
        contain(i128::from(p.min_principal) - i128::from(p.principal))
    } else {
        contain(i128::from(p.max_principal) - i128::from(p.principal))
    }
}

/// Runs a solver transaction that inserts rows: `true` when they were inserted, `false` when
/// they were there already (a previous, interrupted run inserted them) and nothing changed.
macro_rules! insert_once {
    ($conn:expr, |$c:ident| $insert:expr) => {
        match $conn.transaction(async |$c| $insert.await).await {
            Ok(_) => Ok::<bool, DieselError>(true),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
            Err(e) => Err(e),
        }
    };
}

/// A worker's turn rolling: one [`Job::run_once`] is one iteration.
pub struct RollWorkerTurns {
    /// The solver database.
    pub solver: SolverPool,
    /// This worker's database.
    pub worker: WorkerPool,
    /// This worker's shard.
    pub realm: ShardingRealm,
    /// The settings.
    pub settings: WorkerTurnSettings,
}

impl RollWorkerTurns {
    /// One iteration: mirror the solver's turns (and the overlooked ones), then run the
    /// pending sub-phase of each worker turn.
    ///
    /// # Errors
    ///
    /// A database failure; the sub-phase is tried again in the next iteration.
    pub async fn iteration(&self) -> anyhow::Result<()> {
        self.mirror_turns().await?;
        let pending = {
            let mut conn = self.worker.get().await?;
            worker_db::pending_turns(&mut conn).await?
        };
        for turn in pending {
            let now = Utc::now();
            match (turn.phase, turn.worker_turn_subphase) {
                (1, 0) => self.phase1_subphase0(&turn).await?,
                (2, 0) => self.phase2_subphase0(&turn).await?,
                (2, 5) => {
                    let deadline = turn.phase_deadline.unwrap_or(now);
                    let length = (deadline - turn.started_at).to_std().unwrap_or_default();
                    let cushion = self.settings.phase_cushion_period.min(length / 10);
                    let cushion = chrono::Duration::from_std(cushion).unwrap_or_default();
                    if now > deadline - cushion {
                        self.phase2_subphase5(&turn).await?;
                    }
                }
                (3, 0) => self.phase3_subphase0(&turn).await?,
                (3, 5) => self.phase3_subphase5(&turn).await?,
                (phase, sub) => anyhow::bail!(
                    "worker turn {} has an unknown sub-phase {phase}/{sub}",
                    turn.turn_id
                ),
            }
        }
        Ok(())
    }

    /// Mirrors every unfinished solver turn, and the worker's unfinished turns that the
    /// solver finished meanwhile.
    async fn mirror_turns(&self) -> anyhow::Result<()> {
        let mut solver = self.solver.get().await?;
        let mut turns = solver_db::unfinished_turns(&mut solver).await?;
        let mut worker = self.worker.get().await?;
        let unfinished = worker_db::unfinished_turn_ids(&mut worker).await?;
        let overlooked: Vec<i32> = unfinished
            .into_iter()
            .filter(|id| !turns.iter().any(|t| t.turn_id == *id))
            .collect();
        if !overlooked.is_empty() {
            turns.extend(solver_db::turns_by_id(&mut solver, &overlooked).await?);
        }
        drop(solver);
        for turn in &turns {
            crate::db::retry::with_retries(crate::db::retry::RetryPolicy::HANDLER, || async {
                let mut conn = self.worker.get().await?;
                conn.build_transaction()
                    .repeatable_read()
                    .run(async |conn| worker_db::mirror_turn(conn, turn).await)
                    .await
                    .map_err(crate::handlers::HandlerError::from)
            })
            .await?;
        }
        Ok(())
    }

    /// Records the next sub-phase, if the turn is still at `(phase, sub)`.
    async fn advance(&self, turn: &WorkerTurn, next: i16) -> anyhow::Result<()> {
        let mut conn = self.worker.get().await?;
        let (id, phase, sub) = (turn.turn_id, turn.phase, turn.worker_turn_subphase);
        conn.build_transaction()
            .run(async |conn| {
                if worker_db::lock_turn_at(conn, id, phase, sub).await? {
                    worker_db::set_subphase(conn, id, next).await?;
                }
                Ok::<_, DieselError>(())
            })
            .await?;
        Ok(())
    }

    /// 1/0: this shard's debtor infos and confirmed locators go to the solver.
    async fn phase1_subphase0(&self, turn: &WorkerTurn) -> anyhow::Result<()> {
        let turn_id = turn.turn_id;
        if turn.phase_deadline.is_some_and(|d| d > Utc::now()) {
            let (infos, confirmed) = {
                let mut conn = self.worker.get().await?;
                let mut infos = worker_db::debtor_info_documents(&mut conn).await?;
                infos.retain(|d| self.realm.contains_str(&d.debtor_info_locator));
                let mut confirmed = worker_db::confirmed_locators(&mut conn).await?;
                confirmed.retain(|(debtor_id, _)| self.realm.contains_id(*debtor_id));
                (infos, confirmed)
            };
            let mut solver = self.solver.get().await?;
            let fresh = insert_once!(solver, |c| solver_db::insert_debtor_infos(
                c, turn_id, &infos
            ))?;
            if !fresh {
                tracing::warn!("Debtor infos of turn {turn_id} had been inserted already.");
            }
            let fresh = insert_once!(solver, |c| solver_db::insert_confirmed_debtors(
                c, turn_id, &confirmed
            ))?;
            if !fresh {
                tracing::warn!("Confirmed debtors of turn {turn_id} had been inserted already.");
            }
        }
        self.advance(turn, SUBPHASE_DONE).await
    }

    /// 2/0: candidate offers from the trading policies, the active collectors, and the
    /// currencies that need collectors — in one worker transaction with the sub-phase.
    async fn phase2_subphase0(&self, turn: &WorkerTurn) -> anyhow::Result<()> {
        let turn_id = turn.turn_id;
        let now = Utc::now();
        let mut solver = self.solver.get().await?;
        let mut conn = self.worker.get().await?;
        let realm = self.realm;
        conn.build_transaction()
            .repeatable_read()
            .run(async |conn| {
                if !worker_db::lock_turn_at(conn, turn_id, 2, 0).await? {
                    return anyhow::Ok(());
                }
                if turn.phase_deadline.is_some_and(|d| d > now) {
                    let mut bids = BidProcessor::new(
                        BaseCurrency {
                            locator: turn.base_debtor_info_locator.clone(),
                            debtor_id: turn.base_debtor_id,
                            max_distance_to_base: u16::try_from(turn.max_distance_to_base)
                                .unwrap_or(1),
                        },
                        turn.min_trade_amount,
                    );
                    for currency in solver_db::currencies(&mut solver, turn_id).await? {
                        bids.register_currency(&currency)?;
                    }
                    let offers = register_policies(conn, &realm, &mut bids, turn_id, now).await?;
                    let collectors = solver_db::live_collectors(&mut solver).await?;
                    let mut active = Vec::new();
                    for (debtor_id, collector_id, account_id, status) in collectors {
                        bids.remove_currency_to_be_confirmed(debtor_id);
                        if status == crate::db::solver::collectors::STATUS_ACTIVE
                            && !account_id.is_empty()
                        {
                            active.push((debtor_id, collector_id, account_id));
                        }
                    }
                    worker_db::replace_active_collectors(conn, &active).await?;
                    let needed: Vec<i64> = bids.currencies_to_be_confirmed().collect();
                    worker_db::insert_needed_collectors(conn, &needed, now).await?;
                    tracing::info!(
                        "Turn {turn_id}: {offers} candidate offers, {} active collectors, \
                         {} currencies need collectors.",
                        active.len(),
                        needed.len()
                    );
                }
                worker_db::set_subphase(conn, turn_id, 5).await?;
                Ok(())
            })
            .await
    }

    /// 2/5: the prepared account locks of this shard's creditors become the solver's offers.
    async fn phase2_subphase5(&self, turn: &WorkerTurn) -> anyhow::Result<()> {
        let turn_id = turn.turn_id;
        if turn.phase_deadline.is_some_and(|d| d > Utc::now()) {
            let locks = {
                let mut conn = self.worker.get().await?;
                worker_db::prepared_locks(&mut conn, turn_id).await?
            };
            let mut sells = Vec::new();
            let mut buys = Vec::new();
            for (creditor_id, debtor_id, amount, collector_id) in locks {
                if !self.realm.contains_id(creditor_id) {
                    continue;
                }
                if amount < 0 {
                    sells.push(SellOffer {
                        creditor_id,
                        debtor_id,
                        amount: amount.saturating_neg(),
                        collector_id,
                    });
                } else if amount > 0 {
                    buys.push(BuyOffer {
                        creditor_id,
                        debtor_id,
                        amount,
                    });
                }
            }
            let mut solver = self.solver.get().await?;
            if !insert_once!(solver, |c| solver_db::insert_sell_offers(
                c, turn_id, &sells
            ))? {
                tracing::warn!("Sell offers of turn {turn_id} had been inserted already.");
            }
            if !insert_once!(solver, |c| solver_db::insert_buy_offers(c, turn_id, &buys))? {
                tracing::warn!("Buy offers of turn {turn_id} had been inserted already.");
            }
        }
        self.advance(turn, SUBPHASE_DONE).await
    }

    /// 3/0: this shard's results become its transfer plans and dispatching statuses, and
    /// every account lock of the turn is revised — in one worker transaction.
    async fn phase3_subphase0(&self, turn: &WorkerTurn) -> anyhow::Result<()> {
        let turn_id = turn.turn_id;
        let filter = self.realm.i16_hash_filter();
        let mut results: HashMap<&str, Vec<ShardRow>> = HashMap::new();
        {
            let mut solver = self.solver.get().await?;
            for (table, _) in RESULT_TABLES_BY_HASH {
                let rows = solver_db::shard_results(&mut solver, turn_id, table, filter).await?;
                results.insert(table, rows);
            }
        }
        let deadline = turn
            .collection_deadline
            .with_context(|| format!("turn {turn_id} in phase 3 has no collection deadline"))?;
        let s = &self.settings;
        let purge_collecting = after(deadline, s.collecting_slack)?;
        let purge_sending = after(deadline, s.sending_slack)?;
        let purge_dispatching = after(deadline, s.dispatching_slack)?;
        let plan = TransferPlan::of(&results);
        let realm = self.realm;
        let now = Utc::now();
        let mut conn = self.worker.get().await?;
        // READ COMMITTED: once the turn's row is locked, the statements below see every
        // early receipt that a handler committed while it held the row (docs/turns.md#early-transfers).
        conn.build_transaction()
            .read_committed()
            .run(async |conn| {
                if !worker_db::lock_turn_at(conn, turn_id, 3, 0).await? {
                    return anyhow::Ok(());
                }
                worker_db::insert_participations(conn, turn_id, &plan.participations).await?;
                worker_db::insert_plan(
                    conn,
                    "worker_collecting",
                    turn_id,
                    purge_collecting,
                    &plan.collectings,
                )
                .await?;
                worker_db::insert_plan(
                    conn,
                    "worker_sending",
                    turn_id,
                    purge_sending,
                    &plan.sendings,
                )
                .await?;
                worker_db::insert_plan(
                    conn,
                    "worker_receiving",
                    turn_id,
                    purge_sending,
                    &plan.receivings,
                )
                .await?;
                worker_db::insert_plan(
                    conn,
                    "worker_dispatching",
                    turn_id,
                    purge_dispatching,
                    &plan.dispatchings,
                )
                .await?;
                transfers_db::apply_early_transfers(conn, turn_id).await?;
                worker_db::insert_dispatching_statuses(conn, turn_id, now, &plan.statuses).await?;
                let mut locks = worker_db::locks_of_turn(conn, turn_id).await?;
                locks.retain(|(creditor_id, _)| realm.contains_id(*creditor_id));
                worker_db::insert_lock_revisions(conn, turn_id, now, &locks).await?;
                worker_db::set_subphase(conn, turn_id, 5).await?;
                Ok(())
            })
            .await
    }

    /// 3/5: this shard's result rows are deleted from the solver database.
    async fn phase3_subphase5(&self, turn: &WorkerTurn) -> anyhow::Result<()> {
        let filter = self.realm.i16_hash_filter();
        {
            let mut solver = self.solver.get().await?;
            solver
                .transaction(async |c| {
                    solver_db::delete_shard_results(c, turn.turn_id, filter).await
                })
                .await?;
        }
        self.advance(turn, SUBPHASE_DONE).await
    }
}

/// Registers this shard's trading policies as bids, analysing them every
/// [`BID_COUNTER_THRESHOLD`] bids (between creditors), and inserts the candidate offers.
/// Returns how many offers were inserted.
async fn register_policies(
    conn: &mut AsyncPgConnection,
    realm: &ShardingRealm,
    bids: &mut BidProcessor,
    turn_id: i32,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let mut after = None;
    let mut registered = 0;
    let mut offers = 0;
    let mut last_creditor = None;
    loop {
        let page = worker_db::policies_after(conn, after, POLICIES_PER_QUERY).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.creditor_id, last.debtor_id));
        let full = page.len() as i64 == POLICIES_PER_QUERY;
        for policy in &page {
            if last_creditor != Some(policy.creditor_id) && registered >= BID_COUNTER_THRESHOLD {
                offers += analyze(conn, bids, turn_id, now).await?;
                registered = 0;
            }
            last_creditor = Some(policy.creditor_id);
            if !realm.contains_id(policy.creditor_id) {
                continue;
            }
            let aux = BidAux {
                creation_date: policy.creation_date,
                last_transfer_number: policy.last_transfer_number,
            };
            let peg = policy.peg_debtor_id.zip(policy.peg_exchange_rate);
            bids.register_bid(
                policy.creditor_id,
                policy.debtor_id,
                bid_amount(policy),
                peg,
                aux,
            )?;
            registered += 1;
        }
        if !full {
            break;
        }
    }
    offers += analyze(conn, bids, turn_id, now).await?;
    Ok(offers)
}

/// Analyses the registered bids and inserts the candidate offers.
async fn analyze(
    conn: &mut AsyncPgConnection,
    bids: &mut BidProcessor,
    turn_id: i32,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let rows: Vec<CandidateOfferRow> = bids
        .analyze_bids()?
        .into_iter()
        .map(|o| CandidateOfferRow {
            creditor_id: o.creditor_id,
            debtor_id: o.debtor_id,
            amount: o.amount,
            account_creation_date: o.aux.creation_date,
            last_transfer_number: o.aux.last_transfer_number,
        })
        .collect();
    Ok(worker_db::insert_candidate_offers(conn, turn_id, now, &rows).await?)
}

/// A shard's share of a turn's results, as the worker stores it.
#[derive(Debug, Default, PartialEq)]
pub struct TransferPlan {
    /// `creditor_participation`: `(creditor_id, debtor_id, amount, collector_id)`, negative
    /// for takings.
    pub participations: Vec<(i64, i64, i64, i64)>,
    /// `worker_collecting`: `(collector_id, debtor_id, creditor_id, amount)`.
    pub collectings: Vec<worker_db::PlanRow>,
    /// `worker_sending`: `(from_collector_id, debtor_id, to_collector_id, amount)`.
    pub sendings: Vec<worker_db::PlanRow>,
    /// `worker_receiving`: `(to_collector_id, debtor_id, from_collector_id, amount)`.
    pub receivings: Vec<worker_db::PlanRow>,
    /// `worker_dispatching`: `(collector_id, debtor_id, creditor_id, amount)`.
    pub dispatchings: Vec<worker_db::PlanRow>,
    /// `dispatching_status`, by `(collector_id, debtor_id)`, sorted.
    pub statuses: Vec<((i64, i64), DispatchingAmounts)>,
}

impl TransferPlan {
    /// The plan of the shard's result rows, by table (see [`RESULT_TABLES_BY_HASH`]).
    pub fn of(results: &HashMap<&str, Vec<ShardRow>>) -> Self {
        let rows = |table: &str| results.get(table).map(Vec::as_slice).unwrap_or_default();
        let mut plan = Self::default();
        let mut statuses: HashMap<(i64, i64), [i128; 5]> = HashMap::new();
        let mut count_receivings: HashMap<(i64, i64), i32> = HashMap::new();
        for r in rows("creditor_taking") {
            plan.participations.push((
                r.other_id,
                r.debtor_id,
                r.amount.saturating_neg(),
                r.collector_id,
            ));
        }
        for r in rows("creditor_giving").iter().filter(|r| r.amount > 1) {
            plan.participations
                .push((r.other_id, r.debtor_id, r.amount, r.collector_id));
        }
        let mut register = |r: &ShardRow, slot: usize, to: &mut Vec<worker_db::PlanRow>| {
            to.push((r.collector_id, r.debtor_id, r.other_id, r.amount));
            statuses.entry((r.collector_id, r.debtor_id)).or_default()[slot] +=
                i128::from(r.amount);
        };
        for r in rows("collector_collecting")
            .iter()
            .filter(|r| r.other_id != r.collector_id)
        {
            register(r, 0, &mut plan.collectings);
        }
        for r in rows("collector_sending").iter().filter(|r| r.amount > 1) {
            register(r, 1, &mut plan.sendings);
        }
        for r in rows("collector_receiving").iter().filter(|r| r.amount > 1) {
            register(r, 2, &mut plan.receivings);
            *count_receivings
                .entry((r.collector_id, r.debtor_id))
                .or_default() += 1;
        }
        for r in rows("collector_dispatching")
            .iter()
            .filter(|r| r.amount > 1 && r.other_id != r.collector_id)
        {
            register(r, 4, &mut plan.dispatchings);
        }
        let mut statuses: Vec<_> = statuses
            .into_iter()
            .map(|(key, sums)| {
                let amounts = DispatchingAmounts {
                    amount_to_collect: contain(sums[0]),
                    amount_to_send: contain(sums[1]),
                    amount_to_receive: contain(sums[2]),
                    number_to_receive: count_receivings.get(&key).copied().unwrap_or(0),
                    amount_to_dispatch: contain(sums[4]),
                };
                (key, amounts)
            })
            .collect();
        statuses.sort_by_key(|(key, _)| *key);
        plan.statuses = statuses;
        plan
    }
}

impl Job for RollWorkerTurns {
    fn name(&self) -> String {
        "roll_worker_turns".into()
    }

    async fn run_once(&mut self) -> anyhow::Result<()> {
        self.iteration().await
    }
}

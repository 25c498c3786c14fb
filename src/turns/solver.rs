//! The solver's turn loop (`solver`, `roll_turns`): starts turns on schedule and moves each
//! through its phases (see `docs/turns.md#phases`):
//!
//! 1 → 2 when the phase-1 deadline has passed: `currency_info` from the workers'
//! `debtor_info` and `confirmed_debtor` rows;
//! 2 → 3 when the phase-2 deadline has passed: the turn's currencies, the active collectors
//! and the offers go through the solver engine, and the six result tables and the new phase
//! are committed in one transaction;
//! 3 → 4 once every worker has taken (deleted) its shard's result rows.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use diesel_async::AsyncPgConnection;

use super::after;
use super::schedule::can_start_new_turn;
use crate::config::Config;
use crate::db::SolverPool;
use crate::db::solver::turns::{self as db, NewTurn, Turn};
use crate::jobs::Job;
use crate::solver::{TurnInput, TurnParams};

/// The settings of the turn loop (`TURN_*`, `BASE_*`, …, with the command's overrides).
#[derive(Debug, Clone)]
pub struct TurnSettings {
    /// `TURN_PERIOD` (`-p`): the distance between turn starting points; zero starts none.
    pub period: Duration,
    /// `TURN_PERIOD_OFFSET` (`-o`).
    pub period_offset: Duration,
    /// `TURN_PHASE1_DURATION`.
    pub phase1_duration: Duration,
    /// `TURN_PHASE2_DURATION`.
    pub phase2_duration: Duration,
    /// `APP_TURN_MAX_COMMIT_PERIOD`: the turn's collection deadline after phase 2 starts.
    pub max_commit_period: Duration,
    /// `BASE_DEBTOR_INFO_LOCATOR`.
    pub base_debtor_info_locator: String,
    /// `BASE_DEBTOR_ID`.
    pub base_debtor_id: i64,
    /// `MAX_DISTANCE_TO_BASE`.
    pub max_distance_to_base: i16,
    /// `MIN_TRADE_AMOUNT`.
    pub min_trade_amount: i64,
    /// `APP_SOLVER_MATCHER`: which matcher solves the turns.
    pub matcher: crate::solver::MatcherKind,
}

impl TurnSettings {
    /// The settings of `config`.
    ///
    /// # Errors
    ///
    /// When `BASE_DEBTOR_INFO_LOCATOR` or `BASE_DEBTOR_ID` is not set: no turn could start.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let t = &config.turn;
        Ok(Self {
            period: t.period,
            period_offset: t.period_offset,
            phase1_duration: t.phase1_duration,
            phase2_duration: t.phase2_duration,
            max_commit_period: t.max_commit_period,
            base_debtor_info_locator: t
                .base_debtor_info_locator
                .clone()
                .context("BASE_DEBTOR_INFO_LOCATOR is not set")?,
            base_debtor_id: t
                .base_debtor_id
                .filter(|&id| id != 0)
                .context("BASE_DEBTOR_ID is not set (or is 0)")?,
            max_distance_to_base: t.max_distance_to_base,
            min_trade_amount: t.min_trade_amount,
            matcher: t.matcher,
        })
    }
}

/// The solver's turn loop: one [`Job::run_once`] is one iteration.
pub struct RollTurns {
    /// The solver database.
    pub pool: SolverPool,
    /// The settings.
    pub settings: TurnSettings,
}

impl RollTurns {
    /// One iteration: start a turn if one is due, then advance each unfinished turn by at
    /// most one phase.
    ///
    /// # Errors
    ///
    /// A database failure or a turn that cannot be solved (it stays in its phase and is tried
    /// again next time).
    pub async fn iteration(&self) -> anyhow::Result<()> {
        let check_began_at = Utc::now();
        for turn in self.start_new_turn_if_possible().await? {
            let due = turn.phase_deadline.is_some_and(|d| d < check_began_at);
            match turn.phase {
                1 if due => self.advance_to_phase2(turn.turn_id).await?,
                2 if due && self.advance_to_phase3(&turn).await? => {
                    self.delete_phase2_inputs().await?;
                }
                3 => self.try_to_advance_to_phase4(turn.turn_id).await?,
                _ => {}
            }
        }
        Ok(())
    }

    /// The unfinished turns, or a new turn when none is unfinished and one is due.
    pub async fn start_new_turn_if_possible(&self) -> anyhow::Result<Vec<Turn>> {
        let mut conn = self.pool.get().await?;
        let s = &self.settings;
        let turns = conn
            .build_transaction()
            .run(async |conn: &mut AsyncPgConnection| {
                db::lock_turn_table(conn).await?;
                let unfinished = db::unfinished_turns(conn).await?;
                if !unfinished.is_empty() {
                    return anyhow::Ok(unfinished);
                }
                let latest = db::latest_started_at(conn).await?;
                let now = Utc::now();
                if !can_start_new_turn(s.period, s.period_offset, latest, now) {
                    return Ok(Vec::new());
                }
                let new = NewTurn {
                    started_at: now,
                    base_debtor_info_locator: &s.base_debtor_info_locator,
                    base_debtor_id: s.base_debtor_id,
                    max_distance_to_base: s.max_distance_to_base,
                    min_trade_amount: s.min_trade_amount,
                    phase: 1,
                    phase_deadline: Some(after(now, s.phase1_duration)?),
                };
                let turn = db::insert_turn(conn, &new).await?;
                tracing::info!(turn.id = turn.turn_id, "Turn {} started.", turn.turn_id);
                Ok(vec![turn])
            })
            .await?;
        Ok(turns)
    }

    /// Phase 1 → 2: the turn's currencies from the workers' debtor infos.
    pub async fn advance_to_phase2(&self, turn_id: i32) -> anyhow::Result<()> {
        let mut conn = self.pool.get().await?;
        let s = &self.settings;
        conn.build_transaction()
            .run(async |conn: &mut AsyncPgConnection| {
                let Some(turn) = db::lock_turn(conn, turn_id).await? else {
                    return anyhow::Ok(());
                };
                if turn.phase != 1 {
                    return Ok(());
                }
                let currencies = db::build_currency_info(conn, turn_id).await?;
                let now = Utc::now();
                let phase_deadline = after(now, s.phase2_duration)?;
                let collection_deadline = after(now, s.max_commit_period)?;
                db::enter_phase2(conn, turn_id, phase_deadline, collection_deadline).await?;
                db::delete_phase1_inputs(conn).await?;
                tracing::info!(
                    turn.id = turn_id,
                    "Turn {turn_id} entered phase 2 with {currencies} currencies."
                );
                Ok(())
            })
            .await
    }

    /// Phase 2 → 3: solves the turn and commits the six result tables with the new phase;
    /// `true` when done. If another solver advanced the turn meanwhile, the result is
    /// discarded (`false`).
    pub async fn advance_to_phase3(&self, turn: &Turn) -> anyhow::Result<bool> {
        let clock = Instant::now();
        let input = self.load_input(turn).await?;
        let loaded_ms = clock.elapsed().as_secs_f64() * 1000.0;
        let turn_id = turn.turn_id;
        let matcher = self.settings.matcher;
        let output = tokio::task::spawn_blocking(move || {
            crate::solver::solve_without_bound(&input, matcher.matcher().as_mut())
        })
        .await
        .context("the solver task failed")?
        .with_context(|| format!("cannot solve turn {turn_id}"))?;
        let solved_ms = clock.elapsed().as_secs_f64() * 1000.0 - loaded_ms;
        let mut client = self.pool.raw_client().await?;
        let committed = db::commit_phase3(&mut client, turn_id, &output.rows, Utc::now())
            .await
            .with_context(|| format!("cannot commit the solution of turn {turn_id}"))?;
        drop(client);
        let stats = &output.stats;
        if committed {
            let committed_ms = clock.elapsed().as_secs_f64() * 1000.0 - loaded_ms - solved_ms;
            let bound = if stats.lp_bound.is_finite() && stats.lp_bound > 0.0 {
                format!(
                    " of at most {:.0} ({:.1} %)",
                    stats.lp_bound,
                    stats.traded_volume / stats.lp_bound * 100.0
                )
            } else {
                String::new()
            };
            tracing::info!(
                turn.id = turn_id,
                offers = stats.offers,
                currencies = stats.currencies,
                traded_volume = stats.traded_volume,
                "Turn {turn_id} solved: {} offers, {} currencies, traded {:.0}{bound} base \
                 units; loaded in {loaded_ms:.0} ms, solved in {solved_ms:.0} ms, committed in \
                 {committed_ms:.0} ms.",
                stats.offers,
                stats.currencies,
                stats.traded_volume,
            );
            // The turn's report, right after the phase change (its inputs are deleted only
            // after it): a report that cannot be written is logged, the turn goes on.
            let mut conn = self.pool.get().await?;
            let recorded = conn
                .build_transaction()
                .run(async |conn: &mut AsyncPgConnection| {
                    super::report::record(conn, turn, stats, matcher).await
                })
                .await;
            if let Err(e) = recorded {
                tracing::warn!(turn.id = turn_id, "Turn {turn_id} has no report: {e:#}");
            }
        } else {
            tracing::info!(turn.id = turn_id, "Turn {turn_id} was solved elsewhere.");
        }
        Ok(committed)
    }

    /// Deletes the phase-2 inputs (currencies and offers) of the turns past phase 2: after the
    /// phase change rather than in its transaction, so that the change does not wait for it
    /// (what a failure leaves is deleted after the next turn's phase change).
    pub async fn delete_phase2_inputs(&self) -> anyhow::Result<()> {
        let mut conn = self.pool.get().await?;
        conn.build_transaction()
            .run(async |conn: &mut AsyncPgConnection| db::delete_phase2_inputs(conn).await)
            .await?;
        Ok(())
    }

    /// Reads the turn's input, each part on its own connection and at the same time.
    async fn load_input(&self, turn: &Turn) -> anyhow::Result<TurnInput> {
        let turn_id = turn.turn_id;
        let (mut c1, mut c2, mut c3) =
            tokio::try_join!(self.pool.get(), self.pool.get(), self.pool.get())?;
        let (currencies, collectors, sell_offers) = tokio::try_join!(
            db::currencies(&mut c1, turn_id),
            db::active_collectors(&mut c2),
            db::sell_offers(&mut c3, turn_id),
        )?;
        let buy_offers = db::buy_offers(&mut c1, turn_id).await?;
        Ok(TurnInput {
            params: TurnParams {
                turn_id,
                base_debtor_info_locator: turn.base_debtor_info_locator.clone(),
                base_debtor_id: turn.base_debtor_id,
                max_distance_to_base: turn.max_distance_to_base,
                min_trade_amount: turn.min_trade_amount,
            },
            currencies,
            collectors,
            sell_offers,
            buy_offers,
        })
    }

    /// Phase 3 → 4, once no result row of the turn is left.
    pub async fn try_to_advance_to_phase4(&self, turn_id: i32) -> anyhow::Result<()> {
        let mut conn = self.pool.get().await?;
        conn.build_transaction()
            .run(async |conn: &mut AsyncPgConnection| {
                let Some(turn) = db::lock_turn(conn, turn_id).await? else {
                    return anyhow::Ok(());
                };
                if turn.phase == 3 && !db::has_result_rows(conn, turn_id).await? {
                    db::set_phase(conn, turn_id, 4, None).await?;
                    tracing::info!(turn.id = turn_id, "Turn {turn_id} is done.");
                }
                Ok(())
            })
            .await
    }
}

impl Job for RollTurns {
    fn name(&self) -> String {
        "roll_turns".into()
    }

    async fn run_once(&mut self) -> anyhow::Result<()> {
        self.iteration().await
    }
}

//! `solve_offline`: solves one turn from CSV files and writes the six result tables as CSV.
//!
//! For operators who want to replay a turn, and for benchmarks. The input directory holds
//! `turn.csv` (one row: `base_debtor_info_locator`, `base_debtor_id`, `max_distance_to_base`,
//! `min_trade_amount`, and optionally `turn_id`, which is copied into the result rows),
//! `currency_info.csv`, `collector_account.csv` (only rows with `status` 2 are used),
//! `sell_offer.csv` and `buy_offer.csv`, each with a header row of the solver database's column
//! names; other columns are ignored. The output directory receives `<table>.csv` for each result
//! table, and one JSON line with counts, traded volume, its LP upper bound, the matcher's
//! figures, timings and peak memory goes to stdout (and nothing else does). The matcher is
//! chosen by `APP_SOLVER_MATCHER` (docs/configuration.md#turns).

pub mod memory;
pub mod read;
pub mod write;

pub use write::write_input;

use crate::config::parse_matcher;
use crate::solver::aggregation::AggregationError;
use crate::solver::market::OfferError;
use crate::solver::matching::MatchReport;
use crate::solver::pricing::PricingError;
#[cfg(test)] // the tests compare with a direct solve
use crate::solver::solve;
use crate::solver::{MatcherKind, SolveError, TurnInput, TurnOutput, solve_with};
use anyhow::anyhow;
use read::{CURRENCY_INFO, find_line};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of the `solve_offline` command.
#[derive(Clone, Debug, clap::Args)]
pub struct SolveOfflineArgs {
    /// Directory with turn.csv, currency_info.csv, collector_account.csv, sell_offer.csv and
    /// buy_offer.csv.
    #[arg(long, value_name = "DIR")]
    pub input: PathBuf,
    /// Directory to write the six result tables to (created if missing).
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
}

/// Runs `solve_offline` with the matcher of `APP_SOLVER_MATCHER`; any error names the file and
/// line that caused it.
pub fn run(args: &SolveOfflineArgs) -> anyhow::Result<()> {
    let kind = match std::env::var("APP_SOLVER_MATCHER") {
        Ok(value) => parse_matcher(&value)
            .map_err(|reason| anyhow!("APP_SOLVER_MATCHER={value:?}: {reason}"))?,
        Err(_) => MatcherKind::default(),
    };
    run_with(args, kind)
}

/// Runs `solve_offline` with the given matcher.
pub fn run_with(args: &SolveOfflineArgs, kind: MatcherKind) -> anyhow::Result<()> {
    let clock = Instant::now();
    let input = read::load(&args.input)?;
    let load_ms = ms(clock);
    let out =
        solve_with(&input, kind.matcher().as_mut()).map_err(|e| locate(&args.input, &input, e))?;
    let clock = Instant::now();
    let counts = write::write_results(&args.output, &out.rows)?;
    let write_ms = ms(clock);
    println!("{}", summary(&input, &out, &counts, load_ms, write_ms));
    Ok(())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn summary(
    input: &TurnInput,
    out: &TurnOutput,
    counts: &[(&'static str, usize)],
    load_ms: f64,
    write_ms: f64,
) -> serde_json::Value {
    let s = &out.stats;
    let rows: serde_json::Map<String, serde_json::Value> = counts
        .iter()
        .map(|&(table, n)| (table.to_owned(), n.into()))
        .collect();
    serde_json::json!({
        "offers": s.offers,
        "sell_offers": input.sell_offers.len(),
        "buy_offers": input.buy_offers.len(),
        "currencies": s.currencies,
        "tradable_currencies": s.tradable_currencies,
        "orders": s.orders,
        "cycles": s.cycles,
        "rows": rows,
        "traded_volume": s.traded_volume,
        "lp_bound": s.lp_bound,
        "volume_to_bound": if s.lp_bound > 0.0 { s.traded_volume / s.lp_bound } else { 1.0 },
        "matcher": matcher(&s.matching),
        "ms": {
            "load": round(load_ms),
            "price": round(s.price_ms),
            "match": round(s.match_ms),
            "aggregate": round(s.aggregate_ms),
            "write": round(write_ms),
        },
        "peak_memory_bytes": memory::peak_bytes(),
    })
}

/// The matcher's figures (docs/turns.md#the-flow-matcher).
fn matcher(m: &MatchReport) -> serde_json::Value {
    if m.matcher.is_empty() {
        return serde_json::json!({ "took": "greedy" });
    }
    serde_json::json!({
        "took": m.matcher,
        "arcs": m.arcs,
        "arcs_on_no_cycle": m.arcs_on_no_cycle,
        "components": m.components,
        "largest_component_arcs": m.largest_component_arcs,
        "repair_rounds": m.repair_rounds,
        "dust_arcs": m.dust_arcs,
        "flow_volume": m.flow_volume,
        "greedy_volume": m.greedy_volume,
        "ms": {
            "scc": round(m.scc_ms),
            "flow": round(m.flow_ms),
            "greedy": round(m.greedy_ms),
        },
    })
}

fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// Turns a solver error into one that names the offending file and line.
fn locate(dir: &Path, input: &TurnInput, error: SolveError) -> anyhow::Error {
    let (file, line) = match &error {
        SolveError::Offer(OfferError::DuplicatedSellOffer {
            creditor_id,
            debtor_id,
        }) => offer_line(dir, read::SELL_OFFER, *creditor_id, *debtor_id, 1),
        SolveError::Offer(OfferError::DuplicatedBuyOffer {
            creditor_id,
            debtor_id,
        }) => offer_line(dir, read::BUY_OFFER, *creditor_id, *debtor_id, 1),
        SolveError::Pricing(e) => (CURRENCY_INFO, pricing_line(dir, input, e)),
        SolveError::Aggregation(AggregationError::BalanceOverflow { debtor_id }) => {
            // Too many tokens of one currency change hands: its offers add up beyond 2^63.
            let line = find_line(dir, CURRENCY_INFO, &["debtor_id", "is_confirmed"], 0, |t| {
                t.get::<i64>(0).ok() == Some(*debtor_id) && t.boolean(1).unwrap_or(false)
            });
            (CURRENCY_INFO, line)
        }
        // The turn's parameters are its only row.
        SolveError::InvalidParams(_) => (read::TURN, Some(2)),
        // Offers the reader let through but the solver refuses (the reader checks the same).
        SolveError::Offer(OfferError::InvalidOffer {
            creditor_id,
            debtor_id,
        }) => match offer_line(dir, read::SELL_OFFER, *creditor_id, *debtor_id, 0) {
            (_, None) => offer_line(dir, read::BUY_OFFER, *creditor_id, *debtor_id, 0),
            found => found,
        },
    };
    let path = dir.join(file);
    match line {
        Some(line) => anyhow!("{} line {line}: {error}", path.display()),
        None => anyhow!("{}: {error}", path.display()),
    }
}

/// The line of the `nth` (0-based) offer for (creditor, debtor).
fn offer_line(
    dir: &Path,
    file: &'static str,
    creditor: i64,
    debtor: i64,
    nth: usize,
) -> (&'static str, Option<u64>) {
    let line = find_line(dir, file, &["creditor_id", "debtor_id"], nth, |t| {
        t.get::<i64>(0).ok() == Some(creditor) && t.get::<i64>(1).ok() == Some(debtor)
    });
    (file, line)
}

/// The `currency_info.csv` line that a pricing error is about.
fn pricing_line(dir: &Path, input: &TurnInput, error: &PricingError) -> Option<u64> {
    let columns = ["debtor_info_locator", "debtor_id", "is_confirmed"];
    let base = input.params.base_debtor_info_locator.clone();
    let confirmed = |t: &read::Table| t.boolean(2).unwrap_or(false);
    match error {
        PricingError::DuplicatedTradableDebtorId { debtor_id } => {
            find_line(dir, CURRENCY_INFO, &columns, 1, |t| {
                confirmed(t) && t.get::<i64>(1).ok() == Some(*debtor_id)
            })
        }
        PricingError::InconsistentBase => find_line(dir, CURRENCY_INFO, &columns, 0, |t| {
            t.optional::<String>(0).ok().flatten().unwrap_or_default() == base
        }),
        PricingError::BaseClaimed => {
            let id = input.params.base_debtor_id;
            find_line(dir, CURRENCY_INFO, &columns, 0, |t| {
                let locator = t.optional::<String>(0).ok().flatten().unwrap_or_default();
                confirmed(t) && t.get::<i64>(1).ok() == Some(id) && locator != base
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod matcher_tests;
#[cfg(test)]
mod tests;

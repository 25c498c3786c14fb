//! The solver: decides who gives what to whom in one trading turn.
//!
//! Pure code: no I/O, no async, no database. [`solve`] takes a [`TurnInput`] (the turn's
//! currencies, active collector accounts and offers) and returns a [`TurnOutput`] (the rows of
//! the six result tables). The stages are separate modules so they can be tested and replaced
//! on their own: [`pricing`] (the peg tree), [`market`] (net orders), matching — the
//! maximum circulation of [`flow`], or the greedy cycle search of [`matching`] over the
//! [`graph`] — and [`aggregation`] (rows, collectors and their transfers).
//!
//! Guarantees beyond the reference (docs/turns.md#guarantees-and-differences-from-the-reference):
//! no account gives or receives more than its offer; every taking, giving and leg is at least
//! `min_trade_amount` tokens; per currency, takings equal givings; and the output depends only
//! on the input's content, not its order.

pub mod aggregation;
#[doc(hidden)] // benchmark and test support: counts rule violations of a result
pub mod audit;
pub mod flow;
pub mod graph;
pub mod input;
pub mod market;
pub mod matching;
pub mod numeric;
pub mod pricing;
#[doc(hidden)] // benchmark support: the reference's arithmetic, to compare traded volumes
pub mod reference;
pub mod rows;
#[doc(hidden)] // benchmark and test support: seeded random turns
pub mod testgen;
pub mod traversal;

#[cfg(test)]
mod invariants;
#[cfg(test)]
mod reference_cases;

pub use input::{BuyOffer, CollectorAccount, CurrencyInfo, SellOffer, TurnInput, TurnParams};
pub use rows::ResultRows;

use aggregation::{Aggregation, AggregationError, CollectorPools};
pub use flow::MatcherKind;
use market::{Market, OfferError, Side};
use matching::Matcher;
use numeric::mix64;
use pricing::{BaseCurrency, CurrencyRegistry, PricingError};
use std::time::Instant;
use thiserror::Error;

/// Why a turn could not be solved; the turn stays in phase 2 until its input changes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SolveError {
    /// The turn parameters are out of range.
    #[error("invalid turn parameters: {0}")]
    InvalidParams(&'static str),
    /// The currencies cannot be priced.
    #[error(transparent)]
    Pricing(#[from] PricingError),
    /// An offer is invalid or duplicated.
    #[error(transparent)]
    Offer(#[from] OfferError),
    /// The result does not fit the result tables.
    #[error(transparent)]
    Aggregation(#[from] AggregationError),
}

/// Figures about one solve.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SolveStats {
    /// Currencies in the input.
    pub currencies: usize,
    /// Tradable currencies with a usable price.
    pub tradable_currencies: usize,
    /// Sell plus buy offers in the input.
    pub offers: usize,
    /// Net orders that entered matching.
    pub orders: usize,
    /// Cycles that moved tokens.
    pub cycles: u64,
    /// The value of everything bought, in base units.
    pub traded_volume: f64,
    /// The LP upper bound of the traded volume, in base units: the maximum circulation of the
    /// same offers without the minimum-trade rule and without whole tokens. NaN when it was
    /// not computed ([`solve_without_bound`] with a matcher that does not compute it).
    pub lp_bound: f64,
    /// How the matcher went about it.
    pub matching: matching::MatchReport,
    /// Milliseconds spent pricing currencies.
    pub price_ms: f64,
    /// Milliseconds spent building the market and matching it.
    pub match_ms: f64,
    /// Milliseconds spent producing the result rows.
    pub aggregate_ms: f64,
}

/// The result of solving a turn.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TurnOutput {
    /// The six result tables.
    pub rows: ResultRows,
    /// Figures about the solve.
    pub stats: SolveStats,
}

/// Solves a turn with the default matcher ([`MatcherKind::default`]).
pub fn solve(input: &TurnInput) -> Result<TurnOutput, SolveError> {
    solve_with(input, MatcherKind::default().matcher().as_mut())
}

/// Solves a turn with the given matcher, and computes the LP bound of the traded volume if
/// the matcher does not.
pub fn solve_with(input: &TurnInput, matcher: &mut dyn Matcher) -> Result<TurnOutput, SolveError> {
    solve_inner(input, matcher, true)
}

/// Solves a turn with the given matcher, without computing an LP bound that the matcher does
/// not give (the greedy matcher's would take as long again as the matching): what the
/// solver's turn loop runs, where every second of the phase change counts.
pub fn solve_without_bound(
    input: &TurnInput,
    matcher: &mut dyn Matcher,
) -> Result<TurnOutput, SolveError> {
    solve_inner(input, matcher, false)
}

fn solve_inner(
    input: &TurnInput,
    matcher: &mut dyn Matcher,
    with_bound: bool,
) -> Result<TurnOutput, SolveError> {
    let mut stats = SolveStats {
        currencies: input.currencies.len(),
        offers: input.sell_offers.len() + input.buy_offers.len(),
        ..SolveStats::default()
    };
    let clock = Instant::now();
    let prices = price(input)?;
    stats.price_ms = elapsed_ms(clock);

    let clock = Instant::now();
    let market = Market::build(input, &prices)?;
    drop(prices);
    // The creditors' hashes do not depend on the matching: the second core computes them while
    // the (single-threaded) matcher runs.
    let (matching, creditor_hashes) = std::thread::scope(|scope| {
        let hashes = scope.spawn(|| aggregation::creditor_hashes(&market));
        let matching = matcher.run(&market);
        (matching, hashes.join().expect("hashing does not panic"))
    });
    stats.match_ms = elapsed_ms(clock);
    stats.tradable_currencies = market.currencies.len();
    stats.orders = market.orders.len();
    stats.cycles = matching.cycles;
    stats.traded_volume = traded_volume(&market, &matching.filled);
    stats.lp_bound = match matching.lp_bound {
        Some(bound) => bound,
        None if with_bound => flow::lp_bound(&market),
        None => f64::NAN,
    };
    stats.matching = matching.report.clone();

    let clock = Instant::now();
    let pools = CollectorPools::new(&input.collectors);
    let aggregation = Aggregation {
        turn_id: input.params.turn_id,
        seed: seed(&input.params),
        pools: &pools,
        creditor_hashes: &creditor_hashes,
    };
    let rows = aggregation.run(&market, &matching)?;
    stats.aggregate_ms = elapsed_ms(clock);
    Ok(TurnOutput { rows, stats })
}

/// Prices the turn's currencies.
fn price(input: &TurnInput) -> Result<pricing::CurrencyPrices, SolveError> {
    let params = &input.params;
    if params.base_debtor_id == 0 {
        return Err(SolveError::InvalidParams("base_debtor_id must not be 0"));
    }
    if params.max_distance_to_base <= 0 || params.min_trade_amount <= 0 {
        return Err(SolveError::InvalidParams(
            "max_distance_to_base and min_trade_amount must be positive",
        ));
    }
    let mut registry = CurrencyRegistry::new(BaseCurrency {
        locator: params.base_debtor_info_locator.clone(),
        debtor_id: params.base_debtor_id,
        max_distance_to_base: params.max_distance_to_base as u16,
    });
    for currency in &input.currencies {
        registry.add_currency(currency)?;
    }
    Ok(registry.prepare()?)
}

/// The value of all filled buy orders, in base units.
pub fn traded_volume(market: &Market, filled: &[i64]) -> f64 {
    market
        .orders
        .iter()
        .zip(filled)
        .filter(|(o, _)| o.side == Side::Buy)
        .map(|(o, &f)| f as f64 * market.price(o))
        .sum()
}

/// The seed of the collector choice: a hash of the turn's parameters.
fn seed(params: &TurnParams) -> u64 {
    let locator = params
        .base_debtor_info_locator
        .bytes()
        .fold(0u64, |h, b| mix64(h ^ u64::from(b)));
    mix64(locator ^ mix64(params.base_debtor_id as u64 ^ mix64(params.turn_id as u64)))
}

fn elapsed_ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

//! Turn reports: right after the solver commits a turn's results, the figures of the turn go
//! to the `turn_report` table (docs/turns.md#turn-reports). The admin API
//! shows them (`GET /trade/turns`).

use chrono::Utc;
use diesel_async::AsyncPgConnection;

use crate::db::solver::reports::{self as db, OfferTotal, Side, TurnReport};
use crate::db::solver::turns::{self as turns_db, Turn};
use crate::solver::pricing::{BaseCurrency, CurrencyPrices, CurrencyRegistry};
use crate::solver::{MatcherKind, SolveStats};

/// Records the report of `turn`, solved with `matcher` into `stats`. Run it after the
/// results are committed and before the turn's offers are deleted.
///
/// # Errors
///
/// A database error.
pub async fn record(
    conn: &mut AsyncPgConnection,
    turn: &Turn,
    stats: &SolveStats,
    matcher: MatcherKind,
) -> anyhow::Result<()> {
    let currencies = turns_db::currencies(conn, turn.turn_id).await?;
    let confirmed = currencies.iter().filter(|c| c.is_confirmed).count();
    let prices = prices(turn, &currencies);
    let sells = db::offer_totals(conn, turn.turn_id, Side::Sell).await?;
    let buys = db::offer_totals(conn, turn.turn_id, Side::Buy).await?;
    let (sell_offers, sell_volume) = totals(&sells, prices.as_ref());
    let (buy_offers, buy_volume) = totals(&buys, prices.as_ref());
    let report = TurnReport {
        turn_id: turn.turn_id,
        solved_at: Utc::now(),
        matcher: matcher.name().to_owned(),
        currencies: count(currencies.len()),
        confirmed_currencies: count(confirmed),
        priced_currencies: count(stats.tradable_currencies),
        sell_offers,
        sell_volume,
        buy_offers,
        buy_volume,
        traded_volume: stats.traded_volume,
        lp_bound: stats.lp_bound,
        participants: db::participants(conn, turn.turn_id).await?,
        cycles: i64::try_from(stats.cycles).ok(),
        solve_ms: stats.price_ms + stats.match_ms + stats.aggregate_ms,
    };
    db::insert_report(conn, &report).await?;
    metrics::histogram!("swpt_trade_turn_solve_seconds").record(report.solve_ms / 1000.0);
    Ok(())
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The turn's prices, as the solver computed them (`None` when the currencies cannot be
/// priced at all, e.g. without the base currency).
fn prices(turn: &Turn, currencies: &[crate::solver::CurrencyInfo]) -> Option<CurrencyPrices> {
    let mut registry = CurrencyRegistry::new(BaseCurrency {
        locator: turn.base_debtor_info_locator.clone(),
        debtor_id: turn.base_debtor_id,
        max_distance_to_base: u16::try_from(turn.max_distance_to_base).unwrap_or(0),
    });
    for currency in currencies {
        registry.add_currency(currency).ok()?;
    }
    registry.prepare().ok()
}

/// The number of offers and their value in base units (offers in currencies without a price
/// add nothing to the value).
fn totals(offers: &[OfferTotal], prices: Option<&CurrencyPrices>) -> (i64, f64) {
    let count = offers.iter().map(|o| o.offers).sum();
    let volume = offers
        .iter()
        .map(|o| {
            let price = prices.map_or(f32::NAN, |p| p.currency_price(o.debtor_id));
            if price.is_finite() {
                o.amount * f64::from(price)
            } else {
                0.0
            }
        })
        .sum();
    (count, volume)
}

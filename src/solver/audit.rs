//! Counts the rule violations of a solved turn, for benchmarks and tests.
//!
//! The rules (docs/turns.md#guarantees-and-differences-from-the-reference): every taking and
//! giving is at least the minimum trade amount and at most its offer; per currency, takings
//! equal givings; and each trader receives the value it gives, up to rounding to whole tokens
//! (here: less than two tokens of each of its currencies).

use super::input::TurnInput;
use super::market::Market;
use super::numeric::FxHashMap;
use super::rows::ResultRows;

/// Violations of the rules in one result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Violations {
    /// Takings and givings below the minimum trade amount.
    pub below_minimum: usize,
    /// Takings and givings above their offer (or with no offer).
    pub above_offer: usize,
    /// Currencies whose takings differ from their givings.
    pub unbalanced_currencies: usize,
    /// Traders whose given and received values differ by two tokens of a leg or more.
    pub unbalanced_traders: usize,
}

impl Violations {
    /// All violations together.
    pub fn total(&self) -> usize {
        self.below_minimum + self.above_offer + self.unbalanced_currencies + self.unbalanced_traders
    }
}

/// Counts the violations of `rows`, the result of solving `input` on `market`.
pub fn violations(input: &TurnInput, market: &Market, rows: &ResultRows) -> Violations {
    let min = input.params.min_trade_amount;
    let sells: FxHashMap<(i64, i64), i64> = input
        .sell_offers
        .iter()
        .map(|o| ((o.creditor_id, o.debtor_id), o.amount))
        .collect();
    let buys: FxHashMap<(i64, i64), i64> = input
        .buy_offers
        .iter()
        .map(|o| ((o.creditor_id, o.debtor_id), o.amount))
        .collect();
    let price = |debtor_id: i64| -> f64 {
        market
            .currencies
            .binary_search_by_key(&debtor_id, |c| c.debtor_id)
            .map_or(f64::NAN, |i| f64::from(market.currencies[i].price))
    };
    let mut v = Violations::default();
    let mut currencies: FxHashMap<i64, i128> = FxHashMap::default();
    // Per trader: value given minus value received, and the tolerance.
    let mut traders: FxHashMap<i64, (f64, f64)> = FxHashMap::default();
    let legs = rows
        .creditor_taking
        .iter()
        .map(|t| (t.creditor_id, t.debtor_id, t.amount, 1i64, &sells))
        .chain(
            rows.creditor_giving
                .iter()
                .map(|g| (g.creditor_id, g.debtor_id, g.amount, -1i64, &buys)),
        );
    for (creditor, debtor, amount, sign, offers) in legs {
        if amount < min {
            v.below_minimum += 1;
        }
        if offers.get(&(creditor, debtor)).is_none_or(|&o| amount > o) {
            v.above_offer += 1;
        }
        *currencies.entry(debtor).or_default() += i128::from(sign * amount);
        let p = price(debtor);
        let t = traders.entry(creditor).or_default();
        t.0 += sign as f64 * amount as f64 * p;
        t.1 += 2.0 * p;
    }
    v.unbalanced_currencies = currencies.values().filter(|&&b| b != 0).count();
    v.unbalanced_traders = traders
        .values()
        .filter(|(d, tol)| d.is_nan() || d.abs() >= *tol)
        .count();
    v
}

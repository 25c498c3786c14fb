//! Reference cases T07–T11 (`Digraph` tests), on our graph and search.
//!
//! The reference's digraph takes amounts in base units and a `min_amount` per currency; here a
//! currency's `min_amount` is `min_trade_amount × price`, and orders are in tokens. T07 inspects
//! the raw, unsorted search's status words, which are internal; its observable result (the
//! cycle) is the same as T08's and is checked there.

use super::*;
use crate::solver::market::{MarketCurrency, Order, Side};
use crate::solver::reference::reference_cycles;

/// (creditor, debtor, side, tokens)
type Spec = (i64, i64, Side, i64);

fn market(currencies: &[(i64, f32)], min: i64, orders: &[Spec]) -> Market {
    let currencies: Vec<MarketCurrency> = currencies
        .iter()
        .map(|&(debtor_id, price)| MarketCurrency { debtor_id, price })
        .collect();
    let index = |d: i64| currencies.iter().position(|c| c.debtor_id == d).unwrap() as u32;
    let orders = orders
        .iter()
        .map(|&(creditor_id, debtor, side, amount)| Order {
            creditor_id,
            currency: index(debtor),
            side,
            amount,
            collector_id: 1,
        })
        .collect();
    Market {
        currencies,
        orders,
        min_trade_amount: min,
    }
}

fn cycles(m: &Market) -> Vec<(f64, Vec<i64>)> {
    let graph = OfferGraph::build(m);
    let mut found = Vec::new();
    reference_cycles(m, &graph, |amount, ids| found.push((amount, ids.to_vec())));
    found
}

use Side::{Buy, Sell};

/// T07/T08: currencies 666 (min 100) and 999 (min 50).
fn simple() -> Market {
    let spec = [
        (1, 666, Buy, 500),
        (3, 999, Buy, 2000),
        (2, 666, Sell, 250),
        (1, 666, Sell, 5),
        (3, 666, Sell, 125),
        (1, 999, Sell, 5000),
    ];
    market(&[(666, 2.0), (999, 1.0)], 50, &spec)
}

#[test]
fn simple_cycle() {
    let found = cycles(&simple());
    assert_eq!(found.len(), 1);
    let (amount, ids) = &found[0];
    assert_eq!(*amount, 250.0);
    assert!(
        ids == &[666, 1, 999, 3] || ids == &[999, 3, 666, 1],
        "{ids:?}"
    );
    let m = simple();
    let matching = CycleMatcher.run(&m);
    assert_eq!(matching.filled, [125, 250, 0, 0, 125, 250]);
    assert_eq!(matching.cycles, 1);
}

#[test]
fn self_cycle() {
    let m = market(
        &[(666, 1.0)],
        100,
        &[(1, 666, Buy, 1000), (1, 666, Sell, 2000)],
    );
    assert_eq!(cycles(&m), [(1000.0, vec![666, 1])]);
    assert_eq!(CycleMatcher.run(&m).filled, [1000, 1000]);
}

fn overlapping() -> Market {
    let spec = [
        (1, 103, Buy, 150),
        (2, 103, Buy, 1000),
        (2, 104, Buy, 1000),
        (3, 101, Buy, 1000),
        (4, 102, Buy, 300),
        (1, 101, Sell, 1000),
        (2, 102, Sell, 50),
        (3, 102, Sell, 1000),
        (4, 101, Sell, 100),
        (4, 103, Sell, 200),
    ];
    let currencies = [(101, 1.0), (102, 1.0), (103, 1.0), (104, 1.0)];
    market(&currencies, 50, &spec)
}

#[test]
fn overlapping_cycles() {
    let m = overlapping();
    let mut found: Vec<(f64, usize)> = cycles(&m).iter().map(|(a, ids)| (*a, ids.len())).collect();
    found.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(found, [(50.0, 4), (100.0, 4), (150.0, 6)]);
    let matching = CycleMatcher.run(&m);
    assert_eq!(matching.cycles, 3);
    let traded: i64 = m
        .orders
        .iter()
        .zip(&matching.filled)
        .filter(|(o, _)| o.side == Buy)
        .map(|(_, f)| f)
        .sum();
    assert_eq!(traded, 50 * 2 + 100 * 2 + 150 * 3);
}

#[test]
fn ranks_and_arc_order() {
    let m = overlapping();
    let g = OfferGraph::build(&m);
    let node = |kind: NodeKind| {
        (0..g.node_count() as u32)
            .find(|&u| g.kind(u) == kind)
            .unwrap()
    };
    let trader = |id: i64| {
        node(NodeKind::Trader(
            g.trader_ids().iter().position(|&t| t == id).unwrap() as u32,
        ))
    };
    let currency = |id: i64| {
        node(NodeKind::Currency(
            m.currencies.iter().position(|c| c.debtor_id == id).unwrap() as u32,
        ))
    };
    assert_eq!(g.rank(g.root()), 5);
    let trader_ranks: Vec<u64> = [1, 2, 3, 4].map(|t| g.rank(trader(t))).to_vec();
    assert_eq!(trader_ranks, [1, 1, 2, 2]);
    let currency_ranks: Vec<u64> = [101, 102, 103, 104].map(|c| g.rank(currency(c))).to_vec();
    assert_eq!(currency_ranks, [2, 2, 1, 0]);
    let targets = |u: u32| g.arcs(u).1.to_vec();
    let cs = [101, 102, 103, 104].map(currency).to_vec();
    assert_eq!(targets(g.root()), cs);
    assert_eq!(targets(trader(2)), [currency(103), currency(104)]);
    assert_eq!(targets(currency(101)), [trader(4), trader(1)]);
    assert_eq!(targets(currency(102)), [trader(3), trader(2)]);
}

#[test]
fn no_cycles() {
    let spec = [
        (1, 666, Sell, 500),
        (3, 999, Sell, 2000),
        (2, 666, Buy, 250),
        (1, 666, Buy, 5),
        (3, 666, Buy, 125),
    ];
    let m = market(&[(666, 2.0), (999, 1.0)], 50, &spec);
    assert!(cycles(&m).is_empty());
    assert!(CycleMatcher.run(&m).filled.iter().all(|&f| f == 0));
}

/// The "min-amount bottleneck" (docs/turns.md#matching): the reference makes a 60-unit leg in a
/// currency whose minimum is 100; we refuse that cycle.
#[test]
fn bottleneck_in_a_cheaper_currency() {
    let spec = [
        (1, 2, Buy, 60),
        (1, 1, Sell, 200),
        (2, 1, Buy, 150),
        (2, 2, Sell, 60),
    ];
    let m = market(&[(1, 2.0), (2, 1.0)], 50, &spec);
    let found = cycles(&m);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, 60.0);
    // The same cycle as the reference's (1, 2, 2, 1), entered at another currency.
    assert!(found[0].1 == [1, 2, 2, 1] || found[0].1 == [2, 1, 1, 2]);
    let matching = CycleMatcher.run(&m);
    assert!(matching.filled.iter().all(|&f| f == 0));
    assert_eq!(matching.cycles, 0);
}

#[test]
fn legs_are_rounded_and_clipped() {
    // 2.5 base units per token of 102: 10 001 base units buy 4 000.4 tokens.
    let spec = [
        (1, 101, Sell, 10_001),
        (1, 102, Buy, 100_000),
        (2, 102, Sell, 2_001),
        (2, 101, Buy, 100_000),
        (3, 102, Sell, 100_000),
        (3, 101, Buy, 100_000),
    ];
    let m = market(&[(101, 1.0), (102, 2.5)], 1000, &spec);
    let matching = CycleMatcher.run(&m);
    // First cycle 101 -> 1 -> 102 -> 2 -> 101: its smallest arc is trader 2's 2 001 tokens of
    // 102 (5 002.5 base units), so 101 moves round(5 002.5) = 5 003 tokens (half away from
    // zero). Second cycle 101 -> 1 -> 102 -> 3 -> 101: trader 1 has 4 998 tokens of 101 left,
    // the smallest arc, so 102 moves round(4 998 / 2.5 = 1 999.2) = 1 999 tokens.
    assert_eq!(matching.filled, [10_001, 4_000, 2_001, 5_003, 1_999, 4_998]);
    assert_eq!(matching.cycles, 2);
}

/// The packed search fills exactly what the first, generic implementation filled.
#[test]
fn packed_search_matches_the_oracle() {
    use crate::solver::pricing::{BaseCurrency, CurrencyRegistry};
    use crate::solver::testgen::{GenParams, random_turn};
    for (seed, offers, spread, min) in [
        (1, 2_000, 2.0, 1000),
        (2, 20_000, 2.0, 1000),
        (3, 20_000, 30.0, 1000),
        (4, 5_000, 1.0, 1),
        (5, 50_000, 5.0, 100_000),
    ] {
        let p = GenParams {
            seed,
            price_spread: spread,
            min_trade_amount: min,
            ..GenParams::bench(offers)
        };
        let input = random_turn(&p);
        let mut registry = CurrencyRegistry::new(BaseCurrency {
            locator: input.params.base_debtor_info_locator.clone(),
            debtor_id: input.params.base_debtor_id,
            max_distance_to_base: input.params.max_distance_to_base as u16,
        });
        for c in &input.currencies {
            registry.add_currency(c).unwrap();
        }
        let prices = registry.prepare().unwrap();
        let m = Market::build(&input, &prices).unwrap();
        let g = OfferGraph::build(&m);
        let expected = oracle::cancel_cycles(&m, &g);
        assert!(expected.cycles > 0);
        assert_eq!(cancel_cycles(&m, &g), expected, "seed {seed}");
    }
}

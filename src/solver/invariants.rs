//! Property tests: the reference's invariants and ours
//! (docs/turns.md#guarantees-and-differences-from-the-reference) hold on random turns.

use super::audit::violations;
use super::market::Market;
use super::numeric::{FxHashMap, FxHashSet, calc_hash};
use super::pricing::{BaseCurrency, CurrencyRegistry};
use super::testgen::{GenParams, Rng, ShapeParams, random_turn, shaped_turn, shuffle};
use super::{MatcherKind, TurnInput, TurnOutput, solve, solve_with};
use proptest::prelude::*;

/// Asserts every invariant of a solved turn against its input.
pub fn check(input: &TurnInput, out: &TurnOutput) {
    let r = &out.rows;
    let min = input.params.min_trade_amount;
    check_pairing(out);
    let sells: FxHashMap<(i64, i64), (i64, i64)> = input
        .sell_offers
        .iter()
        .map(|o| ((o.creditor_id, o.debtor_id), (o.amount, o.collector_id)))
        .collect();
    let buys: FxHashMap<(i64, i64), i64> = input
        .buy_offers
        .iter()
        .map(|o| ((o.creditor_id, o.debtor_id), o.amount))
        .collect();
    let mut accounts = FxHashSet::default();
    let mut per_currency: FxHashMap<i64, i128> = FxHashMap::default();
    for t in &r.creditor_taking {
        let (offered, collector) = sells[&(t.creditor_id, t.debtor_id)];
        assert!(
            t.amount >= min && t.amount <= offered,
            "taking {t:?} vs {offered}"
        );
        assert_eq!(
            t.collector_id, collector,
            "a taking uses the sell offer's collector"
        );
        assert_eq!(t.creditor_hash, calc_hash(t.creditor_id));
        assert!(
            accounts.insert((t.creditor_id, t.debtor_id)),
            "one row per account"
        );
        *per_currency.entry(t.debtor_id).or_default() += i128::from(t.amount);
    }
    for g in &r.creditor_giving {
        let offered = buys[&(g.creditor_id, g.debtor_id)];
        assert!(
            g.amount >= min && g.amount <= offered,
            "giving {g:?} vs {offered}"
        );
        assert_eq!(g.creditor_hash, calc_hash(g.creditor_id));
        assert!(
            accounts.insert((g.creditor_id, g.debtor_id)),
            "one row per account"
        );
        *per_currency.entry(g.debtor_id).or_default() -= i128::from(g.amount);
    }
    assert!(
        per_currency.values().all(|&v| v == 0),
        "takings equal givings per currency"
    );
    check_collectors(out);
}

/// Collecting ↔ taking, dispatching ↔ giving and receiving ↔ sending are 1:1.
fn check_pairing(out: &TurnOutput) {
    let r = &out.rows;
    assert_eq!(r.creditor_taking.len(), r.collector_collecting.len());
    for (t, c) in r.creditor_taking.iter().zip(&r.collector_collecting) {
        let same = (t.creditor_id, t.debtor_id, t.amount, t.collector_id);
        assert_eq!(same, (c.creditor_id, c.debtor_id, c.amount, c.collector_id));
        assert_eq!(c.collector_hash, calc_hash(c.collector_id));
    }
    assert_eq!(r.creditor_giving.len(), r.collector_dispatching.len());
    for (g, d) in r.creditor_giving.iter().zip(&r.collector_dispatching) {
        let same = (g.creditor_id, g.debtor_id, g.amount, g.collector_id);
        assert_eq!(same, (d.creditor_id, d.debtor_id, d.amount, d.collector_id));
        assert_eq!(d.collector_hash, calc_hash(d.collector_id));
    }
    assert_eq!(r.collector_sending.len(), r.collector_receiving.len());
    for (s, v) in r.collector_sending.iter().zip(&r.collector_receiving) {
        let same = (
            s.debtor_id,
            s.from_collector_id,
            s.to_collector_id,
            s.amount,
        );
        assert_eq!(
            same,
            (
                v.debtor_id,
                v.from_collector_id,
                v.to_collector_id,
                v.amount
            )
        );
        assert_eq!(s.from_collector_hash, calc_hash(s.from_collector_id));
        assert_eq!(v.to_collector_hash, calc_hash(v.to_collector_id));
        assert!(s.amount > 0 && s.from_collector_id != s.to_collector_id);
    }
}

/// Every collector ends a currency with what it collected plus received equal to what it
/// dispatched plus sent; a (debtor, from, to) transfer occurs at most once.
fn check_collectors(out: &TurnOutput) {
    let r = &out.rows;
    let mut balance: FxHashMap<(i64, i64), i128> = FxHashMap::default();
    for c in &r.collector_collecting {
        *balance.entry((c.debtor_id, c.collector_id)).or_default() += i128::from(c.amount);
    }
    for d in &r.collector_dispatching {
        *balance.entry((d.debtor_id, d.collector_id)).or_default() -= i128::from(d.amount);
    }
    let mut seen = FxHashSet::default();
    for s in &r.collector_sending {
        assert!(seen.insert((s.debtor_id, s.from_collector_id, s.to_collector_id)));
        *balance
            .entry((s.debtor_id, s.from_collector_id))
            .or_default() -= i128::from(s.amount);
        *balance.entry((s.debtor_id, s.to_collector_id)).or_default() += i128::from(s.amount);
    }
    assert!(
        balance.values().all(|&b| b == 0),
        "collector balances are settled"
    );
}

/// The same turn with every table in another order.
fn shuffled(input: &TurnInput, seed: u64) -> TurnInput {
    let mut rng = Rng::new(seed);
    let mut other = input.clone();
    shuffle(&mut other.currencies, &mut rng);
    shuffle(&mut other.collectors, &mut rng);
    shuffle(&mut other.sell_offers, &mut rng);
    shuffle(&mut other.buy_offers, &mut rng);
    other
}

fn params() -> impl Strategy<Value = GenParams> {
    let spread = prop::sample::select(vec![1.0, 1.5, 10.0, 1000.0]);
    let min = prop::sample::select(vec![1_i64, 7, 1000]);
    (
        any::<u64>(),
        10usize..600,
        spread,
        0usize..4,
        min,
        0usize..12,
    )
        .prop_map(
            |(
                seed,
                offers,
                price_spread,
                collectors_per_currency,
                min_trade_amount,
                currencies,
            )| {
                GenParams {
                    offers,
                    seed,
                    price_spread,
                    collectors_per_currency,
                    min_trade_amount,
                    currencies,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn invariants_hold_on_random_turns(p in params()) {
        let input = random_turn(&p);
        let out = solve(&input).unwrap();
        check(&input, &out);
    }

    #[test]
    fn output_does_not_depend_on_row_order(p in params(), seed in any::<u64>()) {
        let input = random_turn(&p);
        let a = solve(&input).unwrap();
        let b = solve(&shuffled(&input, seed)).unwrap();
        prop_assert_eq!(a.rows, b.rows);
    }
}

/// The market of a turn, as the solver builds it.
fn market(input: &TurnInput) -> Market {
    let mut registry = CurrencyRegistry::new(BaseCurrency {
        locator: input.params.base_debtor_info_locator.clone(),
        debtor_id: input.params.base_debtor_id,
        max_distance_to_base: input.params.max_distance_to_base as u16,
    });
    for c in &input.currencies {
        registry.add_currency(c).unwrap();
    }
    Market::build(input, &registry.prepare().unwrap()).unwrap()
}

/// The flow matcher's own guarantees, beyond [`check`]: when it takes the circulation's
/// result, each trader receives the value it gives up to less than two tokens per leg; the
/// volume is at most the LP bound (up to a token per order) and no less than the greedy's.
fn check_flow(input: &TurnInput, out: &TurnOutput) {
    let m = market(input);
    let s = &out.stats;
    let v = violations(input, &m, &out.rows);
    if s.matching.matcher == "flow" {
        assert_eq!(v.total(), 0, "{v:?}");
    }
    let slack: f64 = m.orders.iter().map(|o| m.price(o)).sum();
    assert!(
        s.traded_volume <= s.lp_bound + slack,
        "{} > {}",
        s.traded_volume,
        s.lp_bound
    );
    assert!(s.traded_volume >= s.matching.greedy_volume);
}

fn shape() -> impl Strategy<Value = ShapeParams> {
    (
        any::<u64>(),
        20usize..1500,
        prop::sample::select(vec![1_i64, 10, 1000]),
    )
        .prop_map(|(seed, offers, min)| ShapeParams {
            min_trade_amount: min,
            ..ShapeParams::new(offers, seed)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn each_matcher_keeps_the_invariants(p in params()) {
        let input = random_turn(&p);
        for kind in [MatcherKind::Flow, MatcherKind::Greedy] {
            let out = solve_with(&input, kind.matcher().as_mut()).unwrap();
            check(&input, &out);
            if kind == MatcherKind::Flow {
                check_flow(&input, &out);
            }
        }
    }

    #[test]
    fn the_flow_matcher_keeps_the_invariants_on_shaped_turns(p in shape()) {
        let input = shaped_turn(&p);
        let out = solve_with(&input, MatcherKind::Flow.matcher().as_mut()).unwrap();
        check(&input, &out);
        check_flow(&input, &out);
    }

    #[test]
    fn each_matcher_ignores_row_order(p in shape(), seed in any::<u64>()) {
        let input = shaped_turn(&p);
        let other = shuffled(&input, seed);
        for kind in [MatcherKind::Flow, MatcherKind::Greedy] {
            let a = solve_with(&input, kind.matcher().as_mut()).unwrap();
            let b = solve_with(&other, kind.matcher().as_mut()).unwrap();
            prop_assert_eq!(a.rows, b.rows);
        }
    }
}

#[test]
fn a_bigger_turn_trades_and_keeps_the_invariants() {
    let input = random_turn(&GenParams::bench(20_000));
    let out = solve(&input).unwrap();
    check(&input, &out);
    check_flow(&input, &out);
    assert!(out.stats.cycles > 100);
    assert!(!out.rows.collector_sending.is_empty());
}

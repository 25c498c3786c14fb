//! The reference's own arithmetic for the cycle search, kept for measurement and testing.
//!
//! Same graph and search order as [`CycleMatcher`](super::matching::CycleMatcher), but with the
//! reference's floating-point amounts (docs/turns.md#matching): an arc is worth
//! `f32(f32(tokens) × price)` base units, it is valid while worth at least
//! `min_trade_amount × price`, and a cycle subtracts its smallest arc from every arc. Legs are not
//! rounded to tokens and may be below the minimum. The traded volume this finds is the yardstick
//! for ours.

use super::graph::{NodeKind, OfferGraph, ROOT_ARC};
use super::market::Market;
use super::traversal::{SearchArc, Traversal};

/// What the reference's search found on a market.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReferenceResult {
    /// The sum over cycles of amount × number of legs, in base units.
    pub volume: f64,
    /// The number of cycles.
    pub cycles: u64,
}

/// Runs the reference's search and calls `each(amount, ids)` for every cycle.
///
/// `ids` alternates currency debtor IDs and trader creditor IDs, starting with a currency; each
/// element is entered by an arc from the next one (cyclically), as in the reference.
pub fn reference_cycles(market: &Market, graph: &OfferGraph, mut each: impl FnMut(f64, &[i64])) {
    let mut arcs = arc_amounts(market, graph);
    let mut traversal = Traversal::new(graph);
    let mut ids: Vec<i64> = Vec::new();
    while let Some(cycle) = traversal.find_cycle(&arcs) {
        let value = cycle
            .arcs
            .iter()
            .map(|&a| arcs[a as usize].amount)
            .fold(f64::INFINITY, f64::min);
        for &a in cycle.arcs {
            arcs[a as usize].amount -= value;
        }
        ids.clear();
        ids.extend(cycle.nodes.iter().rev().map(|&n| node_id(market, graph, n)));
        let closing = *cycle.nodes.last().expect("non-empty");
        if !matches!(graph.kind(closing), NodeKind::Currency(_)) {
            ids.rotate_left(1);
        }
        let len = cycle.nodes.len();
        each(value, &ids);
        traversal.resume(len, &arcs);
    }
}

/// The volume and number of cycles the reference's search finds on a market.
pub fn reference_volume(market: &Market) -> ReferenceResult {
    let graph = OfferGraph::build(market);
    let mut result = ReferenceResult::default();
    reference_cycles(market, &graph, |amount, ids| {
        result.volume += amount * (ids.len() / 2) as f64;
        result.cycles += 1;
    });
    result
}

/// An arc as the reference sees it: worth `amount` base units, valid while at least `min`.
struct RefArc {
    target: u32,
    amount: f64,
    min: f64,
}

impl SearchArc for RefArc {
    #[inline]
    fn target(&self) -> u32 {
        self.target
    }

    /// Valid while worth at least the currency's minimum (NaN never is).
    #[inline]
    fn is_valid(&self) -> bool {
        self.amount >= self.min
    }
}

/// Each arc's amount and minimum in base units, as the reference computes them.
fn arc_amounts(market: &Market, graph: &OfferGraph) -> Vec<RefArc> {
    graph.arc_table(|target, k| {
        if k == ROOT_ARC {
            return RefArc {
                target,
                amount: f64::INFINITY,
                min: 0.0,
            };
        }
        let order = &market.orders[k as usize];
        let price = market.currencies[order.currency as usize].price;
        RefArc {
            target,
            amount: f64::from(order.amount as f32 * price),
            min: market.min_trade_amount as f64 * f64::from(price),
        }
    })
}

fn node_id(market: &Market, graph: &OfferGraph, node: u32) -> i64 {
    match graph.kind(node) {
        NodeKind::Currency(c) => market.currencies[c as usize].debtor_id,
        NodeKind::Trader(t) => graph.trader_ids()[t as usize],
        NodeKind::Root => 0,
    }
}

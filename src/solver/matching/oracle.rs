//! The first implementation of the integer cycle search, over the generic [`Traversal`], kept as
//! a test oracle: the packed search of [`super::cancel_cycles`] must fill exactly the same amounts.

use super::Matching;
use crate::solver::graph::{NodeKind, OfferGraph, ROOT_ARC};
use crate::solver::market::Market;
use crate::solver::numeric::calc_amt;
use crate::solver::traversal::{Cycle, SearchArc, Traversal};

/// A currency leg of a cycle: the supply arc out of the currency and the demand arc into it.
#[derive(Clone, Copy, Debug)]
struct Leg {
    price: f32,
    supply: usize,
    demand: usize,
    tokens: i64,
}

/// Marks a dead arc in [`LedgerArc::order`].
const DEAD: u32 = 1 << 31;

/// An arc as the integer search sees it: its target, its order (with the [`DEAD`] flag once it
/// may no longer be followed) and the tokens it has left.
#[derive(Clone, Copy, Debug)]
struct LedgerArc {
    target: u32,
    order: u32,
    remaining: i64,
}

impl SearchArc for LedgerArc {
    #[inline]
    fn target(&self) -> u32 {
        self.target
    }

    #[inline]
    fn is_valid(&self) -> bool {
        self.order & DEAD == 0
    }
}

/// The cycle search's bookkeeping: every arc's state, and the legs of the current cycle.
struct Ledger {
    arcs: Vec<LedgerArc>,
    min: i64,
    legs: Vec<Leg>,
    cycles: u64,
}

/// Runs the search to exhaustion, filling orders cycle by cycle.
pub fn cancel_cycles(market: &Market, graph: &OfferGraph) -> Matching {
    let min = market.min_trade_amount;
    let arcs = graph.arc_table(|target, order| {
        let remaining = match order {
            ROOT_ARC => i64::MAX,
            k => market.orders[k as usize].amount,
        };
        // Root arcs keep `ROOT_ARC` without the dead flag: it names no order.
        let order = if order == ROOT_ARC { !DEAD } else { order };
        let dead = if remaining < min { DEAD } else { 0 };
        LedgerArc {
            target,
            order: order | dead,
            remaining,
        }
    });
    let mut ledger = Ledger {
        arcs,
        min,
        legs: Vec::new(),
        cycles: 0,
    };
    let mut traversal = Traversal::new(graph);
    while let Some(cycle) = traversal.find_cycle(&ledger.arcs) {
        let len = cycle.nodes.len();
        ledger.cancel(market, graph, &cycle);
        traversal.resume(len, &ledger.arcs);
    }
    Matching {
        filled: ledger.filled(market),
        cycles: ledger.cycles,
        ..Matching::default()
    }
}

impl Ledger {
    /// Moves tokens along a cycle, or drops its bottleneck arc when a leg would be too small.
    fn cancel(&mut self, market: &Market, graph: &OfferGraph, cycle: &Cycle<'_>) {
        self.collect_legs(market, graph, cycle);
        if size_legs(&mut self.legs, self.min) {
            for leg in &self.legs {
                for pos in [leg.supply, leg.demand] {
                    let arc = &mut self.arcs[pos];
                    arc.remaining -= leg.tokens;
                    if arc.remaining < self.min {
                        arc.order |= DEAD;
                    }
                }
            }
            self.cycles += 1;
        } else {
            let b = bottleneck(&self.legs, &self.arcs);
            self.arcs[b].order |= DEAD;
        }
    }

    /// Groups a cycle's arcs into currency legs, each with its capacity in `tokens`.
    fn collect_legs(&mut self, market: &Market, graph: &OfferGraph, cycle: &Cycle<'_>) {
        self.legs.clear();
        let len = cycle.nodes.len();
        let first = usize::from(!matches!(graph.kind(cycle.nodes[0]), NodeKind::Currency(_)));
        for k in (first..len).step_by(2) {
            let NodeKind::Currency(c) = graph.kind(cycle.nodes[k]) else {
                unreachable!("the graph is bipartite");
            };
            let supply = cycle.arcs[k] as usize;
            let demand = cycle.arcs[(k + len - 1) % len] as usize;
            self.legs.push(Leg {
                price: market.currencies[c as usize].price,
                supply,
                demand,
                tokens: self.arcs[supply].remaining.min(self.arcs[demand].remaining),
            });
        }
    }

    /// Tokens filled per order: what its arc moved.
    fn filled(&self, market: &Market) -> Vec<i64> {
        let mut filled = vec![0i64; market.orders.len()];
        for arc in &self.arcs {
            let order = (arc.order & !DEAD) as usize;
            if let Some(o) = market.orders.get(order) {
                filled[order] = o.amount - arc.remaining;
            }
        }
        filled
    }
}

/// Sizes every leg in whole tokens; false when some leg would fall below `min`.
///
/// On entry each leg's `tokens` holds its capacity (the smaller remaining amount of its arcs).
fn size_legs(legs: &mut [Leg], min: i64) -> bool {
    let (b, value) = legs
        .iter()
        .enumerate()
        .map(|(i, l)| (i, l.tokens as f64 * f64::from(l.price)))
        .fold(
            (0, f64::INFINITY),
            |acc, x| if x.1 < acc.1 { x } else { acc },
        );
    for (i, leg) in legs.iter_mut().enumerate() {
        if i != b {
            leg.tokens = leg.tokens.min(calc_amt(value, leg.price));
        }
        if leg.tokens < min {
            return false;
        }
    }
    true
}

/// The position of the cycle's smallest arc by value.
fn bottleneck(legs: &[Leg], arcs: &[LedgerArc]) -> usize {
    let mut best = (f64::INFINITY, 0);
    for leg in legs {
        for pos in [leg.supply, leg.demand] {
            let value = arcs[pos].remaining as f64 * f64::from(leg.price);
            if value < best.0 {
                best = (value, pos);
            }
        }
    }
    best.1
}

//! Matching: decides how much of each order is filled.
//!
//! [`Matcher`] is the interface (orders in, filled amount per order out), so the algorithm can
//! be replaced. [`CycleMatcher`] is the reference's depth-first cycle search (solver.md §3.5)
//! with exact integer legs: every leg of a cycle moves a whole number of tokens, at least the
//! minimum trade amount, and never more than either order has left.

use super::graph::{NodeKind, OfferGraph, ROOT_ARC};
use super::market::Market;
use super::numeric::calc_amt;

/// The result of matching a market.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matching {
    /// Tokens filled for each order of [`Market::orders`], by index.
    pub filled: Vec<i64>,
    /// The number of cycles that moved tokens.
    pub cycles: u64,
}

/// A matching algorithm.
///
/// Implementations must keep, for every currency, the sum of filled sell orders equal to the
/// sum of filled buy orders; never fill an order beyond its amount; and make every leg at least
/// [`Market::min_trade_amount`] tokens.
pub trait Matcher {
    /// Fills the market's orders.
    fn run(&mut self, market: &Market) -> Matching;
}

/// The on-path flag of a node's status word; the arc index is stored above it.
const ON_PATH: u32 = 1;

/// One arc of a found cycle.
#[derive(Clone, Copy, Debug)]
pub struct CycleArc {
    /// The node the arc leaves.
    pub node: u32,
    /// The arc's position in the flat arc arrays.
    pub pos: usize,
    /// The arc's order index ([`ROOT_ARC`] never occurs in a cycle).
    pub order: u32,
}

/// The depth-first search state: a path from the root and a status word per node.
///
/// A node's status is `(arc index << 1) | on-path flag`. The search only moves arc indices
/// forward, except that after a cycle it re-examines the arc that closed it. Nodes whose arcs
/// are exhausted are never expanded again, which is sound because arcs only lose amount.
pub struct Traversal {
    status: Vec<u32>,
    path: Vec<u32>,
}

impl Traversal {
    /// Starts a search at the graph's root.
    pub fn new(graph: &OfferGraph) -> Self {
        Traversal {
            status: vec![0; graph.node_count()],
            path: vec![graph.root()],
        }
    }

    /// Advances to the next cycle of valid arcs; returns false once the search is exhausted.
    pub fn find_cycle(&mut self, graph: &OfferGraph, valid: impl Fn(usize) -> bool) -> bool {
        while let Some(&u) = self.path.last() {
            let st = self.status[u as usize];
            let mut i = ((st >> 1) + (st & ON_PATH)) as usize;
            let (first, targets) = graph.arcs(u);
            while i < targets.len() && !valid(first + i) {
                i += 1;
            }
            let Some(&v) = targets.get(i) else {
                self.status[u as usize] = (i as u32) << 1;
                self.path.pop();
                continue;
            };
            if self.status[v as usize] & ON_PATH == 0 {
                self.status[u as usize] = ((i as u32) << 1) | ON_PATH;
                self.path.push(v);
            } else {
                self.status[u as usize] = (i as u32) << 1;
                return true;
            }
        }
        false
    }

    /// Collects the found cycle's arcs and shortens the path to the node that closes it.
    ///
    /// `out[m]` is the arc leaving node `m`, which enters node `m - 1`; `out[0]` leaves the top
    /// of the path and enters the last element (cyclically). So the arc entering `out[m].node`
    /// is `out[(m + 1) % len]`.
    pub fn take_cycle(&mut self, graph: &OfferGraph, out: &mut Vec<CycleArc>) {
        out.clear();
        let top = *self.path.last().expect("a cycle was found");
        let last = graph.arcs(top).1[(self.status[top as usize] >> 1) as usize];
        while let Some(&u) = self.path.last() {
            let index = self.status[u as usize] >> 1;
            self.status[u as usize] = index << 1;
            let (first, _) = graph.arcs(u);
            let order = graph.arc_orders(u)[index as usize];
            out.push(CycleArc {
                node: u,
                pos: first + index as usize,
                order,
            });
            if u == last {
                break;
            }
            self.path.pop();
        }
    }

    /// Whether the search has ended.
    pub fn is_exhausted(&self) -> bool {
        self.path.is_empty()
    }
}

/// The reference's cycle search with exact integer legs.
///
/// For a cycle whose smallest arc is worth `A` base units, every currency leg moves
/// `round(A / price)` tokens, clipped to what both of its orders have left; the bottleneck leg
/// moves exactly what its smaller order has left, so that order drops out. When some leg would
/// move less than the minimum trade amount (the bottleneck lies in a much cheaper currency), the
/// cycle moves nothing and the bottleneck arc is dropped instead; the reference would have made a
/// dust trade there.
#[derive(Clone, Copy, Debug, Default)]
pub struct CycleMatcher;

impl Matcher for CycleMatcher {
    fn run(&mut self, market: &Market) -> Matching {
        let graph = OfferGraph::build(market);
        cancel_cycles(market, &graph)
    }
}

/// A currency leg of a cycle: the supply arc out of the currency and the demand arc into it.
#[derive(Clone, Copy, Debug)]
struct Leg {
    price: f32,
    supply: CycleArc,
    demand: CycleArc,
    tokens: i64,
}

/// Runs the search to exhaustion, filling orders cycle by cycle.
pub fn cancel_cycles(market: &Market, graph: &OfferGraph) -> Matching {
    let mut remaining = initial_remaining(market, graph);
    let mut filled = vec![0i64; market.orders.len()];
    let mut cycles = 0;
    let min = market.min_trade_amount;
    let mut traversal = Traversal::new(graph);
    let (mut arcs, mut legs) = (Vec::new(), Vec::new());
    while traversal.find_cycle(graph, |pos| remaining[pos] >= min) {
        traversal.take_cycle(graph, &mut arcs);
        collect_legs(market, graph, &arcs, &remaining, &mut legs);
        if size_legs(&mut legs, min) {
            for leg in &legs {
                remaining[leg.supply.pos] -= leg.tokens;
                remaining[leg.demand.pos] -= leg.tokens;
                filled[leg.supply.order as usize] += leg.tokens;
                filled[leg.demand.order as usize] += leg.tokens;
            }
            cycles += 1;
        } else {
            let b = bottleneck(&legs, &remaining);
            remaining[b] = 0;
        }
    }
    Matching { filled, cycles }
}

/// The tokens each arc has left: its order's amount, unlimited for root arcs.
fn initial_remaining(market: &Market, graph: &OfferGraph) -> Vec<i64> {
    let mut remaining = vec![0i64; graph.arc_count()];
    for u in 0..graph.node_count() as u32 {
        let (first, _) = graph.arcs(u);
        for (i, &order) in graph.arc_orders(u).iter().enumerate() {
            remaining[first + i] = match order {
                ROOT_ARC => i64::MAX,
                k => market.orders[k as usize].amount,
            };
        }
    }
    remaining
}

/// Groups a cycle's arcs into currency legs.
fn collect_legs(
    market: &Market,
    graph: &OfferGraph,
    arcs: &[CycleArc],
    remaining: &[i64],
    legs: &mut Vec<Leg>,
) {
    legs.clear();
    for (m, arc) in arcs.iter().enumerate() {
        if let NodeKind::Currency(c) = graph.kind(arc.node) {
            let demand = arcs[(m + 1) % arcs.len()];
            let supply = *arc;
            let tokens = remaining[supply.pos].min(remaining[demand.pos]);
            legs.push(Leg {
                price: market.currencies[c as usize].price,
                supply,
                demand,
                tokens,
            });
        }
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
fn bottleneck(legs: &[Leg], remaining: &[i64]) -> usize {
    let mut best = (f64::INFINITY, 0);
    for leg in legs {
        for arc in [leg.supply, leg.demand] {
            let value = remaining[arc.pos] as f64 * f64::from(leg.price);
            if value < best.0 {
                best = (value, arc.pos);
            }
        }
    }
    best.1
}

#[cfg(test)]
mod tests;

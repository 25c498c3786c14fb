//! Matching: decides how much of each order is filled.
//!
//! [`Matcher`] is the interface (orders in, filled amount per order out), so the algorithm can
//! be replaced. [`CycleMatcher`] is the reference's depth-first cycle search
//! (docs/turns.md#matching) with exact integer legs: every leg of a cycle moves a whole number of
//! tokens, at least the minimum trade amount, and never more than either order has left.

use super::graph::{NodeKind, OfferGraph, ROOT_ARC};
use super::market::Market;
use super::numeric::calc_amt;
use super::traversal::BitSet;

/// The result of matching a market.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matching {
    /// Tokens filled for each order of [`Market::orders`], by index.
    pub filled: Vec<i64>,
    /// The number of cycles that moved tokens (for the flow matcher: the independent cycles of
    /// the flow's support).
    pub cycles: u64,
    /// The LP upper bound of the volume, in base units, when the matcher computed it.
    pub lp_bound: Option<f64>,
    /// How the matcher went about it.
    pub report: MatchReport,
}

/// Figures of the flow matcher ([`FlowMatcher`](super::flow::FlowMatcher)); zeros for others.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MatchReport {
    /// Whose result was taken: `"flow"` or `"greedy"` (empty for a plain [`CycleMatcher`]).
    pub matcher: &'static str,
    /// Orders (arcs of the offer graph).
    pub arcs: usize,
    /// Arcs between two strongly connected components: on no cycle, dropped before solving.
    pub arcs_on_no_cycle: usize,
    /// Strongly connected components with at least one arc, solved independently.
    pub components: usize,
    /// Arcs of the largest component.
    pub largest_component_arcs: usize,
    /// Milliseconds spent finding the components.
    pub scc_ms: f64,
    /// Milliseconds spent on the circulation and its repair.
    pub flow_ms: f64,
    /// Shortest-path searches of the circulation solver, over all components.
    pub phases: u32,
    /// Most rounds of the minimum-trade repair in a component.
    pub repair_rounds: u32,
    /// Arcs removed by the repair because their flow was below the minimum trade.
    pub dust_arcs: usize,
    /// The volume of the flow matcher's valid result (0 if it had none).
    pub flow_volume: f64,
    /// The volume of the greedy's result, run alongside.
    pub greedy_volume: f64,
    /// Milliseconds the greedy took.
    pub greedy_ms: f64,
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
    /// Searches the market, then searches what is left again while that still fills orders.
    ///
    /// A cycle that is infeasible only because one of its legs would be below the minimum
    /// drops its bottleneck arc for the rest of the search, even when that arc is a large
    /// order that other cycles could still use (docs/turns.md#matching). The next pass runs
    /// on the orders' remaining amounts, with every such arc back.
    fn run(&mut self, market: &Market) -> Matching {
        let graph = OfferGraph::build(market);
        let mut matching = cancel_cycles(market, &graph);
        drop(graph);
        for _ in 1..MAX_PASSES {
            let Some((rest, index)) = remaining(market, &matching.filled) else {
                break;
            };
            let graph = OfferGraph::build(&rest);
            let more = cancel_cycles(&rest, &graph);
            if more.cycles == 0 {
                break;
            }
            matching.cycles += more.cycles;
            for (&k, &f) in index.iter().zip(&more.filled) {
                matching.filled[k] += f;
            }
        }
        matching
    }
}

/// The most searches [`CycleMatcher`] makes of one market.
const MAX_PASSES: usize = 4;

/// The market of what is left of each order (if some order has at least the minimum left and
/// anything was filled), with the index of each of its orders in `market`.
fn remaining(market: &Market, filled: &[i64]) -> Option<(Market, Vec<usize>)> {
    if filled.iter().all(|&f| f == 0) {
        return None;
    }
    let min = market.min_trade_amount;
    let mut index = Vec::new();
    let mut orders = Vec::new();
    for (k, (o, &f)) in market.orders.iter().zip(filled).enumerate() {
        if o.amount - f >= min {
            index.push(k);
            orders.push(super::market::Order {
                amount: o.amount - f,
                ..*o
            });
        }
    }
    let rest = Market {
        currencies: market.currencies.clone(),
        orders,
        min_trade_amount: min,
    };
    (!index.is_empty()).then_some((rest, index))
}

/// A currency leg of a cycle: the supply arc out of the currency and the demand arc into it
/// (their positions in [`Packed::words`]), its price and its size in tokens.
#[derive(Clone, Copy, Debug)]
struct Leg {
    currency: u32,
    price: f32,
    supply: usize,
    demand: usize,
    tokens: i64,
}

/// Marks a dead arc in its target word, and a node on the path in its status word.
const FLAG: u32 = 1 << 31;

/// A currency's cached target when its current arc is unknown or dead.
const NONE: u32 = u32::MAX;

/// Words per 64-byte cache line.
const LINE_WORDS: usize = 16;

/// Words per arc: the target (with the dead flag) and the remaining tokens (low, high half).
const ARC_WORDS: usize = 3;

/// Words per currency header: `[price, status, end, next, trader_arc, trader_next, pad, pad]`.
const HEADER_WORDS: usize = 8;

/// Words of a trader's (or the root's) header: `[status, end, home]`.
const TRADER_HEADER: usize = 3;

/// The least distance between two traders' status words, so that `status / TRADER_SPACING`
/// indexes the traders' on-path bitset.
const TRADER_SPACING: usize = TRADER_HEADER + ARC_WORDS;

/// Offsets from a currency's status word: its cached target, and that trader's cached current
/// arc and the arc's target (both [`NONE`] when unknown).
const NEXT: usize = 2;
const TRADER_ARC: usize = 3;
const TRADER_NEXT: usize = 4;

/// Offset from a trader's status word of its *home*: the status word of the one currency whose
/// header may cache the trader's cursor ([`NONE`] for the root). It starts as the trader's first
/// seller currency and moves to whichever currency last led to the trader through a slow step.
/// Every change of a trader's cursor reads the trader's block, so it can update or forget the
/// copy in its home.
const HOME: usize = 2;

/// The whole state of the search, packed into one array of words.
///
/// A node has a header that starts `[status, end]`, where `status` is the position of the
/// node's current arc and `end` the position after its last arc. A trader's (or the root's)
/// header is `[status, end, home]` (see [`HOME`]) and its arcs follow it; whether a trader is on
/// the path is kept in [`Search::traders`]. A currency's header is `[price, status, end, next,
/// trader_arc, trader_next, pad, pad]`: its status has [`FLAG`] while it is on the path, `next`
/// caches the target of its current arc and the next two that trader's current arc and its
/// target, when the currency is the trader's home ([`NONE`] when unknown); its arcs live
/// elsewhere. Each arc is [`ARC_WORDS`] words: the target node (with [`FLAG`] once the arc is
/// dead) and the tokens it has left. A node is named by the position of its status word. See
/// [`Layout`] for the order of the blocks.
///
/// The search is bound by memory latency: 99% of its steps re-walk nodes whose current arc has
/// not changed since they were last popped, one scattered node per step. Here most steps read
/// only currency headers and the traders' on-path bitset, which stay in the cache; a trader's
/// block is read when its cursor moves or when it is reached from a currency other than its
/// home. The legs of a found cycle are read from the traders' blocks.
struct Packed {
    words: Vec<u32>,
    /// The position of each graph node's first arc, by graph index.
    arcs: Vec<u32>,
    /// The root's status word.
    root: u32,
}

/// Where each node's words go in [`Packed::words`].
///
/// First the headers of all currencies, which every chain of the search passes through, so they
/// stay in the cache; then the root's block; then the currencies' arcs; then the traders' blocks
/// (`[status, end, home, arcs…]`) in the order in which the currencies' arcs
/// name them (each trader where its first seller arc points). A currency's cursor moves along its
/// sellers, so the traders it leads to next are the neighbours of the last one, already in the
/// cache; sorting traders by rank instead would scatter them over the whole array. A trader's
/// header and first arc never straddle a cache line, and a trader's block is at least
/// [`TRADER_SPACING`] words.
struct Layout {
    /// The status word of each graph node, by graph index.
    nodes: Vec<u32>,
    /// The position of each graph node's first arc, by graph index.
    arcs: Vec<u32>,
    /// The home currency of each trader (see [`HOME`]), by graph index; `u32::MAX` if none.
    home: Vec<u32>,
    len: usize,
}

impl Layout {
    fn new(graph: &OfferGraph) -> Layout {
        let n = graph.node_count();
        let is_currency = |u: u32| matches!(graph.kind(u), NodeKind::Currency(_));
        let degree = |u: u32| graph.arcs(u).1.len();
        let unset = u32::MAX as usize;
        let mut nodes = vec![unset; n];
        let mut arcs = vec![0usize; n];
        let mut len = 0;
        let currencies: Vec<u32> = (0..n as u32).filter(|&u| is_currency(u)).collect();
        for &c in &currencies {
            nodes[c as usize] = len + 1;
            len += HEADER_WORDS;
        }
        let block = |u: u32, nodes: &mut [usize], arcs: &mut [usize], len: &mut usize| {
            if *len % LINE_WORDS + TRADER_HEADER + ARC_WORDS > LINE_WORDS {
                *len = len.next_multiple_of(LINE_WORDS);
            }
            nodes[u as usize] = *len;
            arcs[u as usize] = *len + TRADER_HEADER;
            // At least `TRADER_SPACING` words, so that `status / TRADER_SPACING` names one trader.
            *len += (TRADER_HEADER + ARC_WORDS * degree(u)).max(TRADER_SPACING);
        };
        block(graph.root(), &mut nodes, &mut arcs, &mut len);
        for &c in &currencies {
            arcs[c as usize] = len;
            len += ARC_WORDS * degree(c);
        }
        let mut home = vec![u32::MAX; n];
        for &c in &currencies {
            for &t in graph.arcs(c).1 {
                if nodes[t as usize] == unset {
                    block(t, &mut nodes, &mut arcs, &mut len);
                    home[t as usize] = c;
                }
            }
        }
        for u in 0..n as u32 {
            if nodes[u as usize] == unset {
                block(u, &mut nodes, &mut arcs, &mut len);
            }
        }
        assert!(
            len < FLAG as usize,
            "the search supports at most 2^31 words ({len} needed)"
        );
        Layout {
            nodes: nodes.into_iter().map(|x| x as u32).collect(),
            arcs: arcs.into_iter().map(|x| x as u32).collect(),
            home,
            len,
        }
    }
}

impl Packed {
    fn new(market: &Market, graph: &OfferGraph) -> Packed {
        let mut layout = Layout::new(graph);
        let n = graph.node_count();
        // Shift the layout so that its cache lines are the machine's.
        let mut words = vec![0u32; layout.len + LINE_WORDS - 1];
        let misalignment = words.as_ptr() as usize % (4 * LINE_WORDS) / 4;
        let shift = ((LINE_WORDS - misalignment) % LINE_WORDS) as u32;
        layout.nodes.iter_mut().for_each(|x| *x += shift);
        layout.arcs.iter_mut().for_each(|x| *x += shift);
        let min = market.min_trade_amount;
        for u in 0..n as u32 {
            let node = layout.nodes[u as usize] as usize;
            if let NodeKind::Currency(c) = graph.kind(u) {
                words[node - 1] = market.currencies[c as usize].price.to_bits();
            }
            let first = layout.arcs[u as usize];
            let targets = graph.arcs(u).1;
            words[node] = first;
            words[node + 1] = first + (ARC_WORDS * targets.len()) as u32;
            match graph.kind(u) {
                NodeKind::Currency(_) => {
                    words[node + NEXT] = NONE;
                    words[node + TRADER_ARC] = NONE;
                    words[node + TRADER_NEXT] = NONE;
                }
                _ => {
                    words[node + HOME] = match layout.home[u as usize] {
                        u32::MAX => NONE,
                        c => layout.nodes[c as usize],
                    };
                }
            }
            let mut pos = first as usize;
            for (&v, &k) in targets.iter().zip(graph.arc_orders(u)) {
                let remaining = match k {
                    ROOT_ARC => i64::MAX,
                    k => market.orders[k as usize].amount,
                };
                let dead = if remaining < min { FLAG } else { 0 };
                words[pos] = layout.nodes[v as usize] | dead;
                words[pos + 1] = remaining as u32;
                words[pos + 2] = (remaining as u64 >> 32) as u32;
                pos += ARC_WORDS;
            }
        }
        Packed {
            words,
            arcs: layout.arcs,
            root: layout.nodes[graph.root() as usize],
        }
    }

    #[inline]
    fn remaining(&self, arc: usize) -> i64 {
        (u64::from(self.words[arc + 1]) | u64::from(self.words[arc + 2]) << 32) as i64
    }

    #[inline]
    fn set_remaining(&mut self, arc: usize, tokens: i64) {
        self.words[arc + 1] = tokens as u32;
        self.words[arc + 2] = (tokens as u64 >> 32) as u32;
    }

    #[inline]
    fn is_dead(&self, arc: usize) -> bool {
        self.words[arc] & FLAG != 0
    }

    /// The price of the currency whose block is at `node`.
    #[inline]
    fn price(&self, node: u32) -> f32 {
        f32::from_bits(self.words[node as usize - 1])
    }

    /// Tokens filled per order: what its arc moved.
    fn filled(&self, market: &Market, graph: &OfferGraph) -> Vec<i64> {
        let mut filled = vec![0i64; market.orders.len()];
        for (u, &first) in self.arcs.iter().enumerate() {
            let orders = graph.arc_orders(u as u32);
            for (j, &k) in orders.iter().enumerate() {
                if let Some(o) = market.orders.get(k as usize) {
                    let arc = first as usize + ARC_WORDS * j;
                    filled[k as usize] = o.amount - self.remaining(arc);
                }
            }
        }
        filled
    }
}

/// The depth-first cycle search (see [`Traversal`](super::traversal::Traversal), whose
/// semantics this follows step for step) over a [`Packed`] graph, and the cycles' bookkeeping.
struct Search {
    packed: Packed,
    path: Vec<u32>,
    /// For each path element, the position of the arc it follows.
    path_arcs: Vec<u32>,
    min: i64,
    legs: Vec<Leg>,
    cycles: u64,
    /// The traders on the path, by `status / TRADER_SPACING`.
    traders: BitSet,
}

/// Runs the search to exhaustion, filling orders cycle by cycle.
pub fn cancel_cycles(market: &Market, graph: &OfferGraph) -> Matching {
    let packed = Packed::new(market, graph);
    let root = packed.root;
    let words = packed.words.len();
    let mut search = Search {
        packed,
        path: vec![root],
        path_arcs: vec![0],
        min: market.min_trade_amount,
        legs: Vec::new(),
        cycles: 0,
        traders: BitSet::from_fn(words / TRADER_SPACING + 1, |_| false),
    };
    while let Some(start) = search.find_cycle() {
        search.cancel(start);
        search.resume(start);
    }
    Matching {
        filled: search.packed.filled(market, graph),
        cycles: search.cycles,
        ..Matching::default()
    }
}

impl Search {
    /// Advances to the next cycle; returns the path position where it starts, `None` once the
    /// search is exhausted. The cycle is `path[start..]`, closed by the top node's arc.
    ///
    /// Odd path positions hold currencies, even ones the root (at 0) and traders. A currency's
    /// header caches the target of its current arc and, when it is that trader's [`HOME`], the
    /// trader's current arc and its target, so re-walking an unchanged chain mostly reads
    /// currency headers and the traders' on-path bitset, which stay in the cache.
    fn find_cycle(&mut self) -> Option<usize> {
        let words = &mut self.packed.words;
        let traders = &mut self.traders;
        while let Some(&u) = self.path.last() {
            let u = u as usize;
            let depth = self.path.len();
            let currency = depth.is_multiple_of(2);
            let parent = if depth > 1 {
                self.path[depth - 2] as usize
            } else {
                0
            };
            if currency && words[u + NEXT] != NONE {
                // The common case, in a tight loop: follow cached arcs from currency to currency.
                let mut u = u;
                loop {
                    let v = words[u + NEXT];
                    *self.path_arcs.last_mut().expect("non-empty path") = words[u] & !FLAG;
                    if traders.contains(v as usize / TRADER_SPACING) {
                        return Some(self.path.iter().rposition(|&n| n == v).expect("on path"));
                    }
                    traders.insert(v as usize / TRADER_SPACING);
                    self.path.push(v);
                    let w = words[u + TRADER_NEXT];
                    if w == NONE {
                        self.path_arcs.push(0);
                        break;
                    }
                    self.path_arcs.push(words[u + TRADER_ARC]);
                    if words[w as usize] & FLAG != 0 {
                        return Some(self.path.iter().rposition(|&n| n == w).expect("on path"));
                    }
                    words[w as usize] |= FLAG;
                    self.path.push(w);
                    self.path_arcs.push(0);
                    u = w as usize;
                    if words[u + NEXT] == NONE {
                        break;
                    }
                }
                continue;
            }
            let (pos, v);
            if !currency && depth > 1 && words[parent + TRADER_NEXT] != NONE {
                pos = words[parent + TRADER_ARC] as usize;
                v = words[parent + TRADER_NEXT];
            } else {
                let end = words[u + 1] as usize;
                let mut p = (words[u] & !FLAG) as usize;
                while p < end && words[p] & FLAG != 0 {
                    p += ARC_WORDS;
                }
                if p == end {
                    self.path.pop();
                    self.path_arcs.pop();
                    words[u] = end as u32;
                    if !currency {
                        traders.remove(u / TRADER_SPACING);
                        forget(words, u);
                    }
                    if depth > 1 {
                        words[parent] += ARC_WORDS as u32;
                        if !currency {
                            words[parent + NEXT] = NONE;
                            words[parent + TRADER_NEXT] = NONE;
                        } else {
                            forget(words, parent);
                        }
                    }
                    continue;
                }
                pos = p;
                v = words[p];
                if currency {
                    words[u] = pos as u32 | FLAG;
                    words[u + NEXT] = v;
                    words[u + TRADER_NEXT] = NONE;
                } else {
                    words[u] = pos as u32;
                    if depth > 1 {
                        // The parent becomes the trader's home: it will likely lead here again.
                        if words[u + HOME] as usize != parent {
                            forget(words, u);
                            words[u + HOME] = parent as u32;
                        }
                        words[parent + TRADER_ARC] = pos as u32;
                        words[parent + TRADER_NEXT] = v;
                    }
                }
            }
            *self.path_arcs.last_mut().expect("non-empty path") = pos as u32;
            let v_usize = v as usize;
            let on_path = if currency {
                traders.contains(v_usize / TRADER_SPACING)
            } else {
                words[v_usize] & FLAG != 0
            };
            if !on_path {
                if currency {
                    traders.insert(v_usize / TRADER_SPACING);
                } else {
                    words[v_usize] |= FLAG;
                }
                self.path.push(v);
                self.path_arcs.push(0);
            } else {
                let start = self.path.iter().rposition(|&n| n == v);
                return Some(start.expect("v is on the path"));
            }
        }
        None
    }

    /// Continues after the cycle at `path[start..]`: pops every node above the lowest cycle
    /// node whose arc is dead; that node, now the top, looks for its next valid arc.
    fn resume(&mut self, start: usize) {
        let dead = (start..self.path.len())
            .find(|&k| self.packed.is_dead(self.path_arcs[k] as usize))
            .unwrap_or(start);
        for (k, &n) in self.path.iter().enumerate().skip(dead + 1) {
            if k % 2 == 1 {
                self.packed.words[n as usize] &= !FLAG;
            } else {
                self.traders.remove(n as usize / TRADER_SPACING);
            }
        }
        self.path.truncate(dead + 1);
        self.path_arcs.truncate(dead + 1);
    }

    /// Moves tokens along the cycle at `path[start..]`, or drops its bottleneck arc when a leg
    /// would be too small.
    fn cancel(&mut self, start: usize) {
        self.collect_legs(start);
        if size_legs(&mut self.legs, self.min) {
            for leg in &self.legs {
                for pos in [leg.supply, leg.demand] {
                    let remaining = self.packed.remaining(pos) - leg.tokens;
                    self.packed.set_remaining(pos, remaining);
                    if remaining < self.min {
                        self.packed.words[pos] |= FLAG;
                    }
                }
            }
            self.cycles += 1;
        } else {
            let b = bottleneck(&self.legs, &self.packed);
            self.packed.words[b] |= FLAG;
        }
        for leg in &self.legs {
            if self.packed.is_dead(leg.supply) {
                self.packed.words[leg.currency as usize + NEXT] = NONE;
                self.packed.words[leg.currency as usize + TRADER_NEXT] = NONE;
            }
        }
        // A trader whose arc died moves its cursor: forget the copy in its home's header.
        for k in (start..self.path.len()).filter(|k| k % 2 == 0) {
            if self.packed.is_dead(self.path_arcs[k] as usize) {
                forget(&mut self.packed.words, self.path[k] as usize);
            }
        }
    }

    /// Groups the cycle's arcs into currency legs, each with its capacity in `tokens`.
    ///
    /// The path alternates root or trader (even positions) and currency (odd positions).
    fn collect_legs(&mut self, start: usize) {
        self.legs.clear();
        let len = self.path.len() - start;
        let first = start + (start + 1) % 2;
        for k in (first..self.path.len()).step_by(2) {
            let supply = self.path_arcs[k] as usize;
            let demand = self.path_arcs[start + (k - start + len - 1) % len] as usize;
            self.legs.push(Leg {
                currency: self.path[k],
                price: self.packed.price(self.path[k]),
                supply,
                demand,
                tokens: self
                    .packed
                    .remaining(supply)
                    .min(self.packed.remaining(demand)),
            });
        }
    }
}

/// Forgets the copy of a trader's (or the root's) cursor in its home currency's header.
#[inline]
fn forget(words: &mut [u32], trader: usize) {
    let home = words[trader + HOME];
    if home != NONE {
        words[home as usize + TRADER_NEXT] = NONE;
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
fn bottleneck(legs: &[Leg], packed: &Packed) -> usize {
    let mut best = (f64::INFINITY, 0);
    for leg in legs {
        for pos in [leg.supply, leg.demand] {
            let value = packed.remaining(pos) as f64 * f64::from(leg.price);
            if value < best.0 {
                best = (value, pos);
            }
        }
    }
    best.1
}

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;

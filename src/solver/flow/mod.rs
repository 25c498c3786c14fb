//! The volume-maximising matcher (docs/turns.md#the-flow-matcher).
//!
//! The market is a circulation problem: the currency–trader digraph of [`OfferGraph`]
//! (currency → trader for a sell order, trader → currency for a buy order), each arc's capacity
//! the value of its order in base units. Every circulation is a set of circular trades in which
//! each trader receives as much value as it gives and each currency is sold as much as bought;
//! the volume is the flow of the buy arcs. The steps:
//!
//! 1. The strongly connected components of the digraph (petgraph's Tarjan): an arc between two
//!    components lies on no cycle and is dropped; each component is solved on its own.
//! 2. The maximum circulation of each component ([`network`]), in integer units of `1 / scale`
//!    base unit. Its volume is the LP upper bound: no rule-keeping matching trades more.
//! 3. The repair, so that every arc's flow is 0 or worth at least `min_trade_amount` tokens:
//!    first one or two rounds of re-optimisation (the arcs with too little flow are removed and
//!    the circulation re-solved, which re-routes their flow at the least loss), then the fast
//!    repair of `short_cycles.rs`: each arc with too little flow is emptied by taking its flow
//!    off the shortest cycles through it (found over the currency-level graph of the flow), so
//!    that the other arcs lose little, until no such arc is left. Cycles it cannot see are
//!    left to `decompose.rs`, which decomposes the whole circulation into cycles.
//! 4. Tokens: each arc's flow becomes whole tokens (rounded down), then per currency one token
//!    is added to (or taken from) the legs that lost the most to rounding until the currency
//!    is sold as much as bought. Every leg is within two tokens of its flow.
//!
//! [`FlowMatcher`] also runs the greedy [`CycleMatcher`] on the other core and keeps whichever
//! result trades more.
//!
//! [`OfferGraph`]: super::graph::OfferGraph

mod decompose;
pub mod network;
mod short_cycles;

use super::graph::index_traders;
use super::market::{Market, Side};
use super::matching::{CycleMatcher, MatchReport, Matcher, Matching};
use network::Network;
use petgraph::csr::Csr;
use std::time::Instant;

/// Which matcher solves a turn (`APP_SOLVER_MATCHER`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatcherKind {
    /// [`FlowMatcher`]: the maximum circulation, repaired, or the greedy's result if better.
    #[default]
    Flow,
    /// [`CycleMatcher`]: the greedy cycle search alone.
    Greedy,
}

impl MatcherKind {
    /// Parses `flow` or `greedy`.
    pub fn parse(value: &str) -> Option<MatcherKind> {
        match value {
            "flow" => Some(MatcherKind::Flow),
            "greedy" => Some(MatcherKind::Greedy),
            _ => None,
        }
    }

    /// The setting's value for this kind.
    pub fn name(self) -> &'static str {
        match self {
            MatcherKind::Flow => "flow",
            MatcherKind::Greedy => "greedy",
        }
    }

    /// A matcher of this kind.
    pub fn matcher(self) -> Box<dyn Matcher + Send> {
        match self {
            MatcherKind::Flow => Box::new(FlowMatcher),
            MatcherKind::Greedy => Box::new(CycleMatcher),
        }
    }
}

/// The maximum-circulation matcher, with the greedy as a fallback.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowMatcher;

impl Matcher for FlowMatcher {
    fn run(&mut self, market: &Market) -> Matching {
        let (greedy, flow) = std::thread::scope(|scope| {
            let greedy = scope.spawn(|| {
                let clock = Instant::now();
                let m = CycleMatcher.run(market);
                (m, ms(clock))
            });
            let flow = solve_flow(market, true);
            (greedy.join().expect("the greedy does not panic"), flow)
        });
        let (greedy, greedy_ms) = greedy;
        let greedy_volume = super::traded_volume(market, &greedy.filled);
        let mut report = flow.report;
        report.greedy_volume = greedy_volume;
        report.greedy_ms = greedy_ms;
        match flow.filled {
            Some(filled) if report.flow_volume >= greedy_volume => {
                report.matcher = "flow";
                Matching {
                    filled,
                    cycles: flow.cycles,
                    lp_bound: Some(flow.lp_bound),
                    report,
                }
            }
            _ => {
                report.matcher = "greedy";
                Matching {
                    lp_bound: Some(flow.lp_bound),
                    report,
                    ..greedy
                }
            }
        }
    }
}

/// The LP upper bound of a market's traded volume, in base units: the maximum circulation
/// without the minimum-trade rule and without whole tokens.
pub fn lp_bound(market: &Market) -> f64 {
    solve_flow(market, false).lp_bound
}

/// What the flow matcher found.
struct FlowResult {
    /// Tokens per order, or `None` if no valid matching came out (never expected).
    filled: Option<Vec<i64>>,
    lp_bound: f64,
    cycles: u64,
    report: MatchReport,
}

/// One strongly connected component: its nodes (global numbering) and its arcs (orders).
struct Component {
    nodes: Vec<u32>,
    orders: Vec<u32>,
}

/// Solves a market's maximum circulation; with `repair`, also makes it a valid matching.
fn solve_flow(market: &Market, repair: bool) -> FlowResult {
    let clock = Instant::now();
    let ncur = market.currencies.len();
    let (trader_ids, order_traders) = index_traders(market);
    let n = ncur + trader_ids.len();
    let ends = |k: usize| -> (u32, u32) {
        let o = &market.orders[k];
        let t = (ncur + order_traders[k] as usize) as u32;
        match o.side {
            Side::Sell => (o.currency, t),
            Side::Buy => (t, o.currency),
        }
    };
    // Traders are numbered by their most popular currency, so that a currency's traders lie
    // close together in memory.
    let mut degree = vec![0u32; ncur];
    for o in &market.orders {
        degree[o.currency as usize] += 1;
    }
    let mut primary = vec![(0u32, u32::MAX); trader_ids.len()];
    for (o, &t) in market.orders.iter().zip(&order_traders) {
        let best = &mut primary[t as usize];
        let candidate = (degree[o.currency as usize], u32::MAX - o.currency);
        *best = (*best).max(candidate);
    }
    let key = |v: u32| -> u64 {
        match (v as usize).checked_sub(ncur) {
            None => u64::from(v),
            Some(t) => 1 << 62 | u64::from(u32::MAX - primary[t].1) << 32 | t as u64,
        }
    };
    let components = components(n, market.orders.len(), ends, key);
    let mut position = vec![0u32; n];
    for c in &components {
        for (i, &v) in c.nodes.iter().enumerate() {
            position[v as usize] = i as u32;
        }
    }
    let mut report = MatchReport {
        arcs: market.orders.len(),
        components: components.len(),
        largest_component_arcs: components.first().map_or(0, |c| c.orders.len()),
        ..MatchReport::default()
    };
    report.arcs_on_no_cycle =
        report.arcs - components.iter().map(|c| c.orders.len()).sum::<usize>();
    report.scc_ms = ms(clock);

    let clock = Instant::now();
    let scale = scale(market, &components);
    let work = |c: &Component| solve_component(market, c, &ends, &position, scale, repair);
    let results = parallel_map(&components, work);
    let mut flows = vec![0i64; market.orders.len()];
    let mut lp = 0i64;
    let mut cycles = 0u64;
    let mut solved = true;
    for (c, r) in components.iter().zip(results) {
        solved &= r.solved;
        for (&k, &x) in c.orders.iter().zip(&r.flows) {
            flows[k as usize] = x;
        }
        lp += r.lp;
        report.repair_rounds = report.repair_rounds.max(r.rounds);
        report.dust_arcs += r.dust;
        report.phases += r.phases;
        cycles += r.cycles;
    }
    let lp_bound = lp as f64 / scale;
    report.flow_ms = ms(clock);
    if !repair {
        return FlowResult {
            filled: None,
            lp_bound,
            cycles,
            report,
        };
    }
    let filled = tokens(market, &flows, scale).filter(|f| solved && is_valid(market, f));

    report.flow_volume = filled
        .as_ref()
        .map_or(0.0, |f| super::traded_volume(market, f));
    FlowResult {
        filled,
        lp_bound,
        cycles,
        report,
    }
}

/// The strongly connected components with at least one arc, largest first (ties by their
/// first node, so the order is reproducible), each one's nodes ordered by `key`.
fn components(
    n: usize,
    arcs: usize,
    ends: impl Fn(usize) -> (u32, u32),
    key: impl Fn(u32) -> u64,
) -> Vec<Component> {
    let mut edges: Vec<(u32, u32)> = (0..arcs).map(&ends).collect();
    edges.sort_unstable();
    let mut csr: Csr<(), (), petgraph::Directed, u32> =
        Csr::from_sorted_edges(&edges).expect("edges are sorted");
    drop(edges);
    while csr.node_count() < n {
        csr.add_node(());
    }
    let sccs = petgraph::algo::tarjan_scc(&csr);
    drop(csr);
    let mut id = vec![u32::MAX; n];
    let mut comps: Vec<Component> = Vec::new();
    for scc in sccs.into_iter().filter(|s| s.len() > 1) {
        for &v in &scc {
            id[v as usize] = comps.len() as u32;
        }
        let mut nodes = scc;
        nodes.sort_unstable_by_key(|&v| key(v));
        comps.push(Component {
            nodes,
            orders: Vec::new(),
        });
    }
    for k in 0..arcs {
        let (t, h) = ends(k);
        let c = id[t as usize];
        if c != u32::MAX && c == id[h as usize] {
            comps[c as usize].orders.push(k as u32);
        }
    }
    comps.sort_by_key(|c| (std::cmp::Reverse(c.orders.len()), c.nodes[0]));
    comps
}

/// Units per base unit: a power of two that makes a token of the cheapest traded currency at
/// least 64 units, unless the sums of capacities would then come near 2^62.
fn scale(market: &Market, components: &[Component]) -> f64 {
    let (mut cheapest, mut largest) = (f64::INFINITY, 0.0f64);
    let mut arcs = 0usize;
    for c in components {
        for &k in &c.orders {
            let o = &market.orders[k as usize];
            let p = market.price(o);
            cheapest = cheapest.min(p);
            largest = largest.max(o.amount as f64 * p);
        }
        arcs += c.orders.len();
    }
    if arcs == 0 {
        return 1.0;
    }
    let fine = (64.0 / cheapest).log2().ceil();
    let safe = ((2f64.powi(62) / (arcs as f64 + 1.0)) / largest)
        .log2()
        .floor();
    2f64.powf(fine.min(safe))
}

/// The largest component (in arcs) repaired by two rounds of re-optimisation before the fast
/// repair; larger ones get one (each round costs about as much as the first solve).
const REOPTIMIZE_ARCS: usize = 250_000;

/// Relative rounding slack: a flow worth `min × (1 − 1e-9)` tokens counts as `min` tokens.
const SLACK: f64 = 1.0 - 1e-9;

/// The figures of one solved component.
struct ComponentResult {
    /// Flow per arc (in the component's order), in units.
    flows: Vec<i64>,
    /// The volume of the maximum circulation, before the repair, in units.
    lp: i64,
    rounds: u32,
    dust: usize,
    phases: u32,
    cycles: u64,
    /// False if the solver left an imbalance (never expected): the result is not used.
    solved: bool,
}

fn solve_component(
    market: &Market,
    c: &Component,
    ends: &impl Fn(usize) -> (u32, u32),
    position: &[u32],
    scale: f64,
    repair: bool,
) -> ComponentResult {
    let min = market.min_trade_amount;
    let local = |v: u32| position[v as usize];
    let limit = 2f64.powi(62) / (c.orders.len() as f64 + 1.0);
    let arcs: Vec<(u32, u32, i64)> = c
        .orders
        .iter()
        .map(|&k| {
            let (t, h) = ends(k as usize);
            let o = &market.orders[k as usize];
            let cap = (o.amount as f64 * market.price(o) * scale)
                .min(limit)
                .floor();
            (local(t), local(h), cap as i64)
        })
        .collect();
    let mut net = Network::new(c.nodes.len(), &arcs);
    let mut solved = net.solve();
    debug_assert!(solved, "a circulation can always be balanced");
    let is_buy = |j: usize| market.orders[c.orders[j] as usize].side == Side::Buy;
    let lp = (0..arcs.len())
        .filter(|&j| is_buy(j))
        .map(|j| net.flow(j))
        .sum();
    let (mut rounds, mut dust) = (0u32, 0usize);
    let mut flows: Vec<i64> = (0..arcs.len()).map(|j| net.flow(j)).collect();
    if repair {
        let threshold: Vec<f64> = c
            .orders
            .iter()
            .map(|&k| min as f64 * market.price(&market.orders[k as usize]) * scale * SLACK)
            .collect();
        let dusty = |j: usize, x: i64| x > 0 && (x as f64) < threshold[j];
        // The exact repair on components small enough: arcs with too little flow are removed
        // and the circulation re-optimised. That can leave other arcs with a little flow, so
        // it goes in rounds.
        let budget = if arcs.len() <= REOPTIMIZE_ARCS { 2 } else { 1 };
        while rounds < budget {
            let small: Vec<usize> = (0..arcs.len()).filter(|&j| dusty(j, flows[j])).collect();
            if small.is_empty() {
                break;
            }
            for &j in &small {
                net.remove(j);
            }
            rounds += 1;
            dust += small.len();
            solved &= net.solve();
            flows = (0..arcs.len()).map(|j| net.flow(j)).collect();
        }
        // The rest by the fast repair. The component's currencies come first (see `key`).
        let ncur = market.currencies.len();
        let hubs = c.nodes.partition_point(|&v| (v as usize) < ncur);
        dust += short_cycles::drop_dust_short_cycles(c.nodes.len(), hubs, &arcs, &mut flows, dusty);
    }
    // Independent cycles of the flow's support: arcs − nodes + 1 per connected piece; counted
    // here as arcs − touched nodes + 1 (an estimate when the support falls apart).
    let used = flows.iter().filter(|&&x| x > 0).count() as u64;
    let mut touched = vec![false; c.nodes.len()];
    for (j, &(t, h, _)) in arcs.iter().enumerate() {
        if flows[j] > 0 {
            touched[t as usize] = true;
            touched[h as usize] = true;
        }
    }
    let nodes = touched.iter().filter(|&&b| b).count() as u64;
    ComponentResult {
        flows,
        lp,
        rounds,
        dust,
        phases: net.phases,
        cycles: (used + 1).saturating_sub(nodes),
        solved,
    }
}

/// Maps `f` over `items` on up to the available cores, largest items first.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(item)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a component solve does not panic"))
            .collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// Turns flows (in units) into whole tokens per order, balanced per currency; `None` if some
/// currency cannot be balanced (never expected).
fn tokens(market: &Market, flows: &[i64], scale: f64) -> Option<Vec<i64>> {
    let min = market.min_trade_amount;
    let orders = &market.orders;
    let mut filled = vec![0i64; orders.len()];
    let mut frac = vec![0f64; orders.len()];
    for (k, o) in orders.iter().enumerate() {
        if flows[k] > 0 {
            let t = flows[k] as f64 / (market.price(o) * scale);
            let whole = (t * (2.0 - SLACK)).floor().min(o.amount as f64);
            filled[k] = whole as i64;
            frac[k] = (t - whole).max(0.0);
        }
    }
    let mut start = 0;
    while start < orders.len() {
        let c = orders[start].currency;
        let end = start + orders[start..].partition_point(|o| o.currency == c);
        balance(
            &orders[start..end],
            &mut filled[start..end],
            &frac[start..end],
            min,
        )?;
        start = end;
    }
    Some(filled)
}

/// Makes one currency's filled sells equal its filled buys, moving each leg by at most one
/// token: first up on the short side, the legs that lost the most to rounding first; then
/// down on the long side, those that lost the least.
fn balance(
    orders: &[super::market::Order],
    filled: &mut [i64],
    frac: &[f64],
    min: i64,
) -> Option<()> {
    let sum = |side: Side, filled: &[i64]| -> i128 {
        orders
            .iter()
            .zip(filled.iter())
            .filter(|(o, _)| o.side == side)
            .map(|(_, &f)| i128::from(f))
            .sum()
    };
    let diff = sum(Side::Sell, filled) - sum(Side::Buy, filled);
    if diff == 0 {
        return Some(());
    }
    let (short, long) = if diff > 0 {
        (Side::Buy, Side::Sell)
    } else {
        (Side::Sell, Side::Buy)
    };
    let mut need = diff.unsigned_abs();
    let mut up: Vec<usize> = (0..orders.len())
        .filter(|&j| orders[j].side == short && filled[j] > 0 && filled[j] < orders[j].amount)
        .collect();
    up.sort_by(|&a, &b| frac[b].total_cmp(&frac[a]).then(a.cmp(&b)));
    for j in up {
        if need == 0 {
            break;
        }
        filled[j] += 1;
        need -= 1;
    }
    let mut down: Vec<usize> = (0..orders.len())
        .filter(|&j| orders[j].side == long && filled[j] > min)
        .collect();
    down.sort_by(|&a, &b| frac[a].total_cmp(&frac[b]).then(a.cmp(&b)));
    for j in down {
        if need == 0 {
            break;
        }
        filled[j] -= 1;
        need -= 1;
    }
    (need == 0).then_some(())
}

/// Every filled amount is 0 or between the minimum and its order; every currency balances.
pub fn is_valid(market: &Market, filled: &[i64]) -> bool {
    let min = market.min_trade_amount;
    let mut balance = vec![0i128; market.currencies.len()];
    for (o, &f) in market.orders.iter().zip(filled) {
        if f != 0 && (f < min || f > o.amount) {
            return false;
        }
        let b = &mut balance[o.currency as usize];
        match o.side {
            Side::Sell => *b += i128::from(f),
            Side::Buy => *b -= i128::from(f),
        }
    }
    balance.iter().all(|&b| b == 0)
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests;

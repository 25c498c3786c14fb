//! The bipartite currency/trader digraph of a market (docs/turns.md#matching), stored as a
//! `petgraph` compressed-sparse-row graph.
//!
//! Nodes are the root trader, one node per currency and one per trader. Arcs are:
//! currency → trader for a sell order (*supply*), trader → currency for a buy order (*demand*),
//! and root → every currency. The weight of an arc is the index of its order in
//! [`Market::orders`] ([`ROOT_ARC`] for root arcs).
//!
//! Each node's arcs are ordered by descending *rank* of their targets: a currency's rank is its
//! number of sellers, a trader's the sum of the ranks of the currencies it buys. Node indices
//! are assigned root first, then currencies, then traders, each group by descending rank (ties
//! by ID). Currencies only point at traders and traders only at currencies, so the CSR's natural
//! "sorted by target index" order is exactly the rank order, stable and deterministic. Keeping
//! the few currency nodes together also keeps their data in the CPU cache during the search.

use super::market::{Market, Side};
use super::numeric::FxHashMap;
use petgraph::csr::Csr;

/// The weight of root → currency arcs, which belong to no order.
pub const ROOT_ARC: u32 = u32::MAX;

/// Marks currency nodes in [`NodeKind`] encoding.
const CURRENCY_BIT: u32 = 1 << 31;

/// What a graph node stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// The root trader, which "buys" every currency in unlimited amounts.
    Root,
    /// A currency: index into [`Market::currencies`].
    Currency(u32),
    /// A trader: index into [`OfferGraph::trader_ids`].
    Trader(u32),
}

/// The digraph of a market, ready for the cycle search.
pub struct OfferGraph {
    csr: Csr<(), u32, petgraph::Directed, u32>,
    /// Position of each node's first arc in the flat arc arrays.
    first_arc: Vec<u32>,
    kinds: Vec<u32>,
    ranks: Vec<u64>,
    trader_ids: Vec<i64>,
    root: u32,
}

impl OfferGraph {
    /// Builds the graph of a market.
    pub fn build(market: &Market) -> OfferGraph {
        let (trader_ids, order_traders) = index_traders(market);
        let ncur = market.currencies.len();
        let kinds = node_kinds(ncur, trader_ids.len());
        let ranks = node_ranks(market, &order_traders, ncur, trader_ids.len());
        let position = number_nodes(&kinds, &ranks, &trader_ids, market);
        let edges = sorted_edges(market, &order_traders, &position, ncur);
        let node_count = kinds.len();
        let mut csr = Csr::from_sorted_edges(&edges).expect("edges are sorted and unique");
        while csr.node_count() < node_count {
            csr.add_node(());
        }
        let mut first_arc = Vec::with_capacity(node_count + 1);
        let mut sum = 0u32;
        for u in 0..node_count as u32 {
            first_arc.push(sum);
            sum += csr.out_degree(u) as u32;
        }
        first_arc.push(sum);
        let mut by_index = vec![0u32; node_count];
        let mut rank_by_index = vec![0u64; node_count];
        for (old, &new) in position.iter().enumerate() {
            by_index[new as usize] = kinds[old];
            rank_by_index[new as usize] = ranks[old];
        }
        OfferGraph {
            csr,
            first_arc,
            kinds: by_index,
            ranks: rank_by_index,
            trader_ids,
            root: position[0],
        }
    }

    /// The root trader's node index.
    pub fn root(&self) -> u32 {
        self.root
    }

    /// The number of nodes.
    pub fn node_count(&self) -> usize {
        self.kinds.len()
    }

    /// The number of arcs.
    pub fn arc_count(&self) -> usize {
        self.csr.edge_count()
    }

    /// The position of a node's first arc and the targets of its arcs, in search order.
    #[inline]
    pub fn arcs(&self, node: u32) -> (usize, &[u32]) {
        (
            self.first_arc[node as usize] as usize,
            self.csr.neighbors_slice(node),
        )
    }

    /// The order indices of a node's arcs ([`ROOT_ARC`] for root arcs), in search order.
    #[inline]
    pub fn arc_orders(&self, node: u32) -> &[u32] {
        self.csr.edges_slice(node)
    }

    /// What a node stands for.
    #[inline]
    pub fn kind(&self, node: u32) -> NodeKind {
        match self.kinds[node as usize] {
            u32::MAX => NodeKind::Root,
            k if k & CURRENCY_BIT != 0 => NodeKind::Currency(k & !CURRENCY_BIT),
            k => NodeKind::Trader(k),
        }
    }

    /// Builds a flat table with one entry per arc, in arc-position order, from
    /// `make(target, order)`; the search keeps its per-arc state there, next to the target.
    pub fn arc_table<A>(&self, mut make: impl FnMut(u32, u32) -> A) -> Vec<A> {
        let mut table = Vec::with_capacity(self.arc_count());
        for u in 0..self.node_count() as u32 {
            let targets = self.csr.neighbors_slice(u);
            let orders = self.csr.edges_slice(u);
            table.extend(targets.iter().zip(orders).map(|(&t, &k)| make(t, k)));
        }
        table
    }

    /// The rank a node was sorted by.
    pub fn rank(&self, node: u32) -> u64 {
        self.ranks[node as usize]
    }

    /// The creditor ID of each trader node, by trader index.
    pub fn trader_ids(&self) -> &[i64] {
        &self.trader_ids
    }
}

/// Assigns trader indices in order of first appearance and returns each order's trader.
pub(crate) fn index_traders(market: &Market) -> (Vec<i64>, Vec<u32>) {
    let mut ids = Vec::new();
    let mut map: FxHashMap<i64, u32> = FxHashMap::default();
    let order_traders = market
        .orders
        .iter()
        .map(|o| {
            *map.entry(o.creditor_id).or_insert_with(|| {
                ids.push(o.creditor_id);
                ids.len() as u32 - 1
            })
        })
        .collect();
    (ids, order_traders)
}

/// Node kinds in "old" numbering: root, then currencies, then traders.
fn node_kinds(ncur: usize, ntraders: usize) -> Vec<u32> {
    let mut kinds = Vec::with_capacity(1 + ncur + ntraders);
    kinds.push(u32::MAX);
    kinds.extend((0..ncur as u32).map(|c| c | CURRENCY_BIT));
    kinds.extend(0..ntraders as u32);
    kinds
}

/// Ranks in "old" numbering: supply counts for currencies, their sums for buyers.
fn node_ranks(market: &Market, traders: &[u32], ncur: usize, ntraders: usize) -> Vec<u64> {
    let mut ranks = vec![0u64; 1 + ncur + ntraders];
    for o in market.orders.iter().filter(|o| o.side == Side::Sell) {
        ranks[1 + o.currency as usize] += 1;
        ranks[0] += 1;
    }
    for (o, &t) in market.orders.iter().zip(traders) {
        if o.side == Side::Buy {
            ranks[1 + ncur + t as usize] += ranks[1 + o.currency as usize];
        }
    }
    ranks
}

/// Maps "old" node numbers to indices sorted by (kind, rank desc, id).
fn number_nodes(kinds: &[u32], ranks: &[u64], trader_ids: &[i64], market: &Market) -> Vec<u32> {
    let id = |old: usize| -> (u8, i64) {
        match kinds[old] {
            u32::MAX => (0, 0),
            k if k & CURRENCY_BIT != 0 => {
                (1, market.currencies[(k & !CURRENCY_BIT) as usize].debtor_id)
            }
            k => (2, trader_ids[k as usize]),
        }
    };
    // The keys are computed once, not at every comparison: each computation reads scattered
    // tables, and a million nodes take some twenty million comparisons.
    type Key = (u8, std::cmp::Reverse<u64>, i64);
    let mut keyed: Vec<(Key, u32)> = (0..kinds.len())
        .map(|old| {
            let (kind, id) = id(old);
            ((kind, std::cmp::Reverse(ranks[old]), id), old as u32)
        })
        .collect();
    keyed.sort_unstable();
    let order: Vec<u32> = keyed.into_iter().map(|(_, old)| old).collect();
    let mut position = vec![0u32; kinds.len()];
    for (new, &old) in order.iter().enumerate() {
        position[old as usize] = new as u32;
    }
    position
}

/// All arcs as (source, target, order) sorted by (source, target), using a counting sort on the
/// source and a small sort within each source.
fn sorted_edges(
    market: &Market,
    traders: &[u32],
    position: &[u32],
    ncur: usize,
) -> Vec<(u32, u32, u32)> {
    let root = position[0];
    let arc = |i: usize| -> (u32, u32, u32) {
        if i < ncur {
            return (root, position[1 + i], ROOT_ARC);
        }
        let k = i - ncur;
        let o = &market.orders[k];
        let c = position[1 + o.currency as usize];
        let t = position[1 + ncur + traders[k] as usize];
        match o.side {
            Side::Sell => (c, t, k as u32),
            Side::Buy => (t, c, k as u32),
        }
    };
    let total = ncur + market.orders.len();
    let mut start = vec![0u32; position.len() + 1];
    for i in 0..total {
        start[arc(i).0 as usize + 1] += 1;
    }
    for u in 0..position.len() {
        start[u + 1] += start[u];
    }
    let mut edges = vec![(0u32, 0u32, 0u32); total];
    let mut next = start.clone();
    for i in 0..total {
        let e = arc(i);
        edges[next[e.0 as usize] as usize] = e;
        next[e.0 as usize] += 1;
    }
    for u in 0..position.len() {
        edges[start[u] as usize..start[u + 1] as usize].sort_unstable_by_key(|e| e.1);
    }
    edges
}

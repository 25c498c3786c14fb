//! The targeted repair: each arc whose flow is below the minimum trade is emptied by taking
//! its flow off short cycles through it, found one at a time.
//!
//! The graph is bipartite: currencies (the first `hubs` nodes) and traders. A trader that
//! receives flow from currency `x` and passes flow on to currency `y` links `x` to `y`; the
//! *pairs* `(x → trader, trader → y)` are indexed by `(x, y)`, so the currency-level graph
//! of the flow can be searched without reading the traders' arcs. To empty an arc, a
//! breadth-first search over that graph finds the cycle through the arc with the fewest
//! currencies, whose other arcs then lose as little as possible; the cycle's flow, up to the
//! arc's, is taken off. An arc that falls below its minimum in turn is emptied the same way.
//!
//! A cycle through a trader whose pairs are not indexed (one with very many arcs) may be
//! missed; the arcs the search cannot empty are left to the decomposition of `decompose.rs`.

use std::collections::HashMap;

/// At most this many pairs are indexed per trader.
const PAIRS_PER_TRADER: usize = 256;

/// The dense `(x, y)` table is used up to this many currencies (16 Mi entries).
const DENSE_HUBS: usize = 4096;

const NONE: u32 = u32::MAX;

/// The pairs of the flow's traders, grouped by their two currencies.
struct Pairs {
    hubs: usize,
    /// The group of `(x, y)`: a dense table, or a map for very many currencies.
    dense: Vec<u32>,
    sparse: HashMap<u64, u32>,
    /// Group `g`'s pairs are `arcs[start[g]..start[g + 1]]`, each `(x → trader, trader → y)`.
    start: Vec<u32>,
    arcs: Vec<(u32, u32)>,
    /// Group `g`'s first pair that may still carry flow.
    cursor: Vec<u32>,
    /// The groups leaving currency `x` are `out[out_start[x]..out_start[x + 1]]`: `(y, g)`.
    out_start: Vec<u32>,
    out: Vec<(u32, u32)>,
}

impl Pairs {
    fn build(hubs: usize, arcs: &[(u32, u32, i64)], flows: &[i64], traders: &Adjacency) -> Pairs {
        let n = traders.ins.start.len() - 1;
        let key = |x: u32, y: u32| x as u64 * hubs as u64 + y as u64;
        let mut pairs: Vec<(u64, u32, u32)> = Vec::new();
        for w in hubs..n {
            let mut taken = 0;
            'trader: for &i in traders.ins.of(w) {
                for &o in traders.outs.of(w) {
                    if taken == PAIRS_PER_TRADER {
                        break 'trader;
                    }
                    let (x, y) = (arcs[i as usize].0, arcs[o as usize].1);
                    if x != y && flows[i as usize] > 0 && flows[o as usize] > 0 {
                        pairs.push((key(x, y), i, o));
                        taken += 1;
                    }
                }
            }
        }
        pairs.sort_unstable();
        let dense_ok = hubs <= DENSE_HUBS;
        let mut dense = if dense_ok {
            vec![NONE; hubs * hubs]
        } else {
            Vec::new()
        };
        let mut sparse = HashMap::new();
        let (mut start, mut groups) = (Vec::new(), Vec::<(u32, u32)>::new());
        let mut last = u64::MAX;
        for (p, &(k, _, _)) in pairs.iter().enumerate() {
            if k != last {
                let g = start.len() as u32;
                start.push(p as u32);
                let (x, y) = ((k / hubs as u64) as u32, (k % hubs as u64) as u32);
                groups.push((x, y));
                if dense_ok {
                    dense[k as usize] = g;
                } else {
                    sparse.insert(k, g);
                }
                last = k;
            }
        }
        start.push(pairs.len() as u32);
        let cursor = start[..start.len() - 1].to_vec();
        // Groups are sorted by `x`, then `y`.
        let mut out_start = vec![0u32; hubs + 1];
        for &(x, _) in &groups {
            out_start[x as usize + 1] += 1;
        }
        for x in 0..hubs {
            out_start[x + 1] += out_start[x];
        }
        let out = groups
            .iter()
            .enumerate()
            .map(|(g, &(_, y))| (y, g as u32))
            .collect();
        Pairs {
            hubs,
            dense,
            sparse,
            start,
            arcs: pairs.into_iter().map(|(_, i, o)| (i, o)).collect(),
            cursor,
            out_start,
            out,
        }
    }

    fn group(&self, x: u32, y: u32) -> u32 {
        let k = x as u64 * self.hubs as u64 + y as u64;
        if self.dense.is_empty() {
            self.sparse.get(&k).copied().unwrap_or(NONE)
        } else {
            self.dense[k as usize]
        }
    }

    /// Group `g`'s first pair with flow on both arcs, if any.
    fn live(&mut self, g: u32, flows: &[i64]) -> Option<(u32, u32)> {
        if g == NONE {
            return None;
        }
        let end = self.start[g as usize + 1];
        let c = &mut self.cursor[g as usize];
        while *c < end {
            let (i, o) = self.arcs[*c as usize];
            if flows[i as usize] > 0 && flows[o as usize] > 0 {
                return Some((i, o));
            }
            *c += 1;
        }
        None
    }
}

/// Arcs by node, in compressed rows.
struct Rows {
    start: Vec<u32>,
    items: Vec<u32>,
}

impl Rows {
    fn new(n: usize, arcs: impl Iterator<Item = (u32, u32)> + Clone) -> Rows {
        let mut start = vec![0u32; n + 1];
        for (v, _) in arcs.clone() {
            start[v as usize + 1] += 1;
        }
        for v in 0..n {
            start[v + 1] += start[v];
        }
        let mut next = start.clone();
        let mut items = vec![0u32; start[n] as usize];
        for (v, j) in arcs {
            items[next[v as usize] as usize] = j;
            next[v as usize] += 1;
        }
        Rows { start, items }
    }

    fn of(&self, v: usize) -> &[u32] {
        &self.items[self.start[v] as usize..self.start[v + 1] as usize]
    }
}

/// Each node's arcs with flow: arriving and leaving.
struct Adjacency {
    ins: Rows,
    outs: Rows,
}

/// Empties every arc whose flow is `dusty` by taking flow off short cycles through it, until
/// no arc is dusty; returns how many arcs it emptied. Nodes `0..hubs` are the currencies,
/// every arc joins a currency and a trader, and `flows` is a circulation.
pub fn drop_dust_short_cycles(
    n: usize,
    hubs: usize,
    arcs: &[(u32, u32, i64)],
    flows: &mut [i64],
    dusty: impl Fn(usize, i64) -> bool,
) -> usize {
    let mut queue: Vec<usize> = (0..arcs.len()).filter(|&j| dusty(j, flows[j])).collect();
    if queue.is_empty() {
        return 0;
    }
    let support = (0..arcs.len() as u32).filter(|&j| flows[j as usize] > 0);
    let adjacency = Adjacency {
        ins: Rows::new(n, support.clone().map(|j| (arcs[j as usize].1, j))),
        outs: Rows::new(n, support.map(|j| (arcs[j as usize].0, j))),
    };
    let mut pairs = Pairs::build(hubs, arcs, flows, &adjacency);
    let mut search = Search::new(hubs);
    let mut cycle = Vec::new();
    let mut emptied = 0;
    let mut missed = false;
    while let Some(j) = queue.pop() {
        if !dusty(j, flows[j]) {
            continue;
        }
        emptied += 1;
        while flows[j] > 0 {
            if !search.cycle_through(j, arcs, flows, &adjacency, &mut pairs, &mut cycle) {
                missed = true;
                break;
            }
            let amount = cycle.iter().map(|&b| flows[b as usize]).min().unwrap_or(0);
            debug_assert!(amount > 0, "a found cycle carries flow");
            for &b in &cycle {
                let b = b as usize;
                flows[b] -= amount;
                if b != j && dusty(b, flows[b]) {
                    queue.push(b);
                }
            }
        }
    }
    if missed {
        // What the search missed (never seen on generated turns): the full decomposition.
        super::decompose::drop_dust_cycles(n, arcs, flows, dusty);
    }
    emptied
}

/// A breadth-first search over the currencies, reused between arcs.
struct Search {
    /// The search that last reached each currency.
    mark: Vec<u32>,
    /// The currency it was reached from and the group used (`NONE` for a start).
    parent: Vec<(u32, u32)>,
    round: u32,
    queue: Vec<u32>,
    /// The current search's target currencies, with the arc that closes the cycle.
    targets: Vec<(u32, u32)>,
}

impl Search {
    fn new(hubs: usize) -> Search {
        Search {
            mark: vec![0; hubs],
            parent: vec![(NONE, NONE); hubs],
            round: 0,
            queue: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// Puts into `cycle` the arcs of a cycle through arc `j` with the fewest currencies among
    /// those the pairs show; false if there is none.
    fn cycle_through(
        &mut self,
        j: usize,
        arcs: &[(u32, u32, i64)],
        flows: &[i64],
        adjacency: &Adjacency,
        pairs: &mut Pairs,
        cycle: &mut Vec<u32>,
    ) -> bool {
        let hubs = pairs.hubs as u32;
        let (tail, head, _) = arcs[j];
        // A sell arc (currency → trader) closes through the trader's buys: from each currency
        // the trader pays into, back to the arc's currency. A buy arc (trader → currency)
        // closes from its currency back to one the trader receives from.
        let (trader, sell) = if tail < hubs {
            (head as usize, true)
        } else {
            (tail as usize, false)
        };
        self.round += 1;
        let round = self.round;
        self.queue.clear();
        let start = |s: &mut Search, x: u32| {
            if s.mark[x as usize] != round {
                s.mark[x as usize] = round;
                s.parent[x as usize] = (NONE, NONE);
                s.queue.push(x);
            }
        };
        // The arcs that close the cycle at the trader: `first` leaves it (sell), `last`
        // enters it (buy).
        let live = |b: u32| flows[b as usize] > 0;
        if sell {
            for &o in adjacency.outs.of(trader) {
                if live(o) && o as usize != j {
                    start(self, arcs[o as usize].1);
                }
            }
        } else {
            start(self, head);
        }
        // The currencies that close the cycle, each with its arc into the trader (buy).
        self.targets.clear();
        if sell {
            self.targets.push((tail, NONE));
        } else {
            for &i in adjacency.ins.of(trader) {
                if live(i) && i as usize != j {
                    self.targets.push((arcs[i as usize].0, i));
                }
            }
        }
        let target = |s: &Search, x: u32| s.targets.iter().find(|t| t.0 == x).map(|t| t.1);
        let mut found = None;
        for &x in &self.queue {
            if let Some(closing) = target(self, x) {
                found = Some((x, closing));
                break;
            }
        }
        let mut head_of_queue = 0;
        'search: while found.is_none() && head_of_queue < self.queue.len() {
            let x = self.queue[head_of_queue];
            head_of_queue += 1;
            // A direct step to a target first, then the breadth-first step.
            for t in 0..self.targets.len() {
                let (y, closing) = self.targets[t];
                let g = pairs.group(x, y);
                if self.mark[y as usize] != round && pairs.live(g, flows).is_some() {
                    self.mark[y as usize] = round;
                    self.parent[y as usize] = (x, g);
                    found = Some((y, closing));
                    break 'search;
                }
            }
            for k in pairs.out_start[x as usize]..pairs.out_start[x as usize + 1] {
                let (y, g) = pairs.out[k as usize];
                if self.mark[y as usize] == round || pairs.live(g, flows).is_none() {
                    continue;
                }
                self.mark[y as usize] = round;
                self.parent[y as usize] = (x, g);
                self.queue.push(y);
            }
        }
        let Some((mut x, closing)) = found else {
            return false;
        };
        cycle.clear();
        cycle.push(j as u32);
        if closing != NONE {
            cycle.push(closing);
        }
        loop {
            let (p, g) = self.parent[x as usize];
            if p == NONE {
                break;
            }
            let (i, o) = pairs
                .live(g, flows)
                .expect("a group on the path has a live pair");
            cycle.push(i);
            cycle.push(o);
            x = p;
        }
        if sell {
            // `x` is the start: the currency the trader pays into.
            let first = adjacency
                .outs
                .of(trader)
                .iter()
                .copied()
                .find(|&o| live(o) && o as usize != j && arcs[o as usize].1 == x)
                .expect("a start currency has its arc from the trader");
            cycle.push(first);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_circulations_are_left_balanced_and_without_dust() {
        use crate::solver::flow::network::Network;
        let mut rng = crate::solver::testgen::Rng::new(5);
        for round in 0..300 {
            let hubs = 2 + rng.below(8);
            let n = hubs + 2 + rng.below(60);
            let arcs: Vec<(u32, u32, i64)> = (0..3 * n)
                .map(|_| {
                    let (c, t) = (rng.below(hubs) as u32, (hubs + rng.below(n - hubs)) as u32);
                    let cap = 1 + rng.below(100) as i64;
                    if rng.unit() < 0.5 {
                        (c, t, cap)
                    } else {
                        (t, c, cap)
                    }
                })
                .collect();
            let mut net = Network::new(n, &arcs);
            assert!(net.solve());
            let before: Vec<i64> = (0..arcs.len()).map(|a| net.flow(a)).collect();
            let mut flows = before.clone();
            let min = 1 + rng.below(40) as i64;
            let dusty = |_: usize, x: i64| x > 0 && x < min;
            drop_dust_short_cycles(n, hubs, &arcs, &mut flows, dusty);
            let mut balance = vec![0i64; n];
            for (a, &(t, h, _)) in arcs.iter().enumerate() {
                assert!((0..=before[a]).contains(&flows[a]), "round {round}");
                assert!(
                    !dusty(a, flows[a]),
                    "round {round}: arc {a} keeps {}",
                    flows[a]
                );
                balance[t as usize] -= flows[a];
                balance[h as usize] += flows[a];
            }
            assert!(balance.iter().all(|&b| b == 0), "round {round}");
        }
    }

    #[test]
    fn the_shortest_cycle_through_a_dusty_arc_goes() {
        // Currencies 0, 1, 2; traders 3 (sells 0, buys 1), 4 (sells 1, buys 0),
        // 5 (sells 1, buys 2), 6 (sells 2, buys 0). Flows: 0 → 3 → 1 → 4 → 0 carries 2,
        // 0 → 3 → 1 → 5 → 2 → 6 → 0 carries 10.
        let arcs = [
            (0, 3, 20),
            (3, 1, 20),
            (1, 4, 20),
            (4, 0, 20),
            (1, 5, 20),
            (5, 2, 20),
            (2, 6, 20),
            (6, 0, 20),
        ];
        let mut flows = [12, 12, 2, 2, 10, 10, 10, 10];
        // Arc 2 (1 → 4) has too little: the short cycle through it loses 2, not the long one.
        let emptied = drop_dust_short_cycles(7, 3, &arcs, &mut flows, |_, x| x > 0 && x < 5);
        assert_eq!(emptied, 1);
        assert_eq!(flows, [10, 10, 0, 0, 10, 10, 10, 10]);
    }

    #[test]
    fn a_cascade_empties_what_falls_below() {
        // As above, with a minimum of 11: arc 2 goes with 2 of arcs 0 and 1, which leaves
        // them with 10, below the minimum too: everything goes.
        let arcs = [
            (0, 3, 20),
            (3, 1, 20),
            (1, 4, 20),
            (4, 0, 20),
            (1, 5, 20),
            (5, 2, 20),
            (2, 6, 20),
            (6, 0, 20),
        ];
        let mut flows = [12, 12, 2, 2, 10, 10, 10, 10];
        drop_dust_short_cycles(7, 3, &arcs, &mut flows, |_, x| x > 0 && x < 11);
        assert_eq!(flows, [0; 8]);
    }
}

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
//! The search meets in the middle: the currencies one step before the cycle's end are marked
//! first, so most cycles are found among the first currencies the search reaches.
//!
//! A cycle through a trader whose pairs are not indexed (one with very many arcs) may be
//! missed; the arcs the search cannot empty are left to the decomposition of `decompose.rs`.

/// At most this many pairs are indexed per trader.
const PAIRS_PER_TRADER: usize = 256;

const NONE: u32 = u32::MAX;

/// The most steps into a search's targets that are marked before it starts.
const NEAR_STEPS: usize = 512;

/// The pairs of the flow's traders, grouped by their two currencies.
struct Pairs {
    /// Group `g`'s pairs are `arcs[start[g]..start[g + 1]]`, each `(x → trader, trader → y)`.
    start: Vec<u32>,
    arcs: Vec<(u32, u32)>,
    /// Group `g`'s first pair that may still carry flow.
    cursor: Vec<u32>,
    /// The groups leaving each currency `x`, as `(y, g)`.
    out: Rows<(u32, u32)>,
    /// The groups entering each currency `y`, as `(x, g)`.
    ins: Rows<(u32, u32)>,
}

impl Pairs {
    fn build(hubs: usize, arcs: &[(u32, u32, i64)], flows: &[i64], traders: &Adjacency) -> Pairs {
        let n = traders.ins.start.len() - 1;
        let mut pairs: Vec<(u32, u32, u32, u32)> = Vec::new();
        for w in hubs..n {
            let mut taken = 0;
            'trader: for &i in traders.ins.of(w) {
                for &o in traders.outs.of(w) {
                    if taken == PAIRS_PER_TRADER {
                        break 'trader;
                    }
                    let (x, y) = (arcs[i as usize].0, arcs[o as usize].1);
                    if x != y && flows[i as usize] > 0 && flows[o as usize] > 0 {
                        pairs.push((x, y, i, o));
                        taken += 1;
                    }
                }
            }
        }
        pairs.sort_unstable();
        let mut start = Vec::new();
        let mut groups: Vec<(u32, u32)> = Vec::new();
        for (p, &(x, y, _, _)) in pairs.iter().enumerate() {
            if groups.last() != Some(&(x, y)) {
                start.push(p as u32);
                groups.push((x, y));
            }
        }
        start.push(pairs.len() as u32);
        let cursor = start[..start.len() - 1].to_vec();
        let numbered = || {
            groups
                .iter()
                .enumerate()
                .map(|(g, &(x, y))| (x, y, g as u32))
        };
        Pairs {
            start,
            arcs: pairs.iter().map(|&(_, _, i, o)| (i, o)).collect(),
            cursor,
            out: Rows::new(hubs, numbered().map(|(x, y, g)| (x, (y, g)))),
            ins: Rows::new(hubs, numbered().map(|(x, y, g)| (y, (x, g)))),
        }
    }

    /// Group `g`'s first pair with flow on both arcs, if any.
    fn live(&mut self, g: u32, flows: &[i64]) -> Option<(u32, u32)> {
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

/// Items by node, in compressed rows.
struct Rows<T = u32> {
    start: Vec<u32>,
    items: Vec<T>,
}

impl<T: Copy + Default> Rows<T> {
    fn new(n: usize, items: impl Iterator<Item = (u32, T)> + Clone) -> Rows<T> {
        let mut start = vec![0u32; n + 1];
        for (v, _) in items.clone() {
            start[v as usize + 1] += 1;
        }
        for v in 0..n {
            start[v + 1] += start[v];
        }
        let mut next = start.clone();
        let mut out = vec![T::default(); start[n] as usize];
        for (v, item) in items {
            out[next[v as usize] as usize] = item;
            next[v as usize] += 1;
        }
        Rows { start, items: out }
    }

    fn range(&self, v: usize) -> std::ops::Range<usize> {
        self.start[v] as usize..self.start[v + 1] as usize
    }

    fn of(&self, v: usize) -> &[T] {
        &self.items[self.range(v)]
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
        while flows[j] > 0 {
            if !search.cycle_through(j, arcs, flows, &adjacency, &mut pairs, &mut cycle) {
                missed = true;
                break;
            }
            let amount = cycle.iter().map(|&b| flows[b as usize]).min().unwrap_or(0);
            debug_assert!(amount > 0, "a found cycle carries flow");
            if amount <= 0 {
                // Never expected; left to the decomposition rather than looping.
                missed = true;
                break;
            }
            for &b in &cycle {
                let b = b as usize;
                flows[b] -= amount;
                if b != j && dusty(b, flows[b]) {
                    queue.push(b);
                }
            }
        }
        if flows[j] == 0 {
            emptied += 1;
        }
    }
    if missed {
        // What the search missed (never seen on generated turns): the full decomposition.
        emptied += super::decompose::drop_dust_cycles(n, arcs, flows, dusty);
    }
    emptied
}

/// A breadth-first search over the currencies, reused between arcs.
struct Search {
    /// The search that last reached each currency.
    mark: Vec<u32>,
    /// The currency it was reached from and the group used (`NONE` for a start).
    parent: Vec<(u32, u32)>,
    /// The search for which each currency is a target, or one step from a target.
    near: Vec<u32>,
    /// For those: the group of that step (`NONE` for a target) and the target's index.
    near_via: Vec<(u32, u32)>,
    round: u32,
    queue: Vec<u32>,
    /// The current search's target currencies, with the arc that closes the cycle (`NONE`
    /// when the cycle closes through the dusty arc itself).
    targets: Vec<(u32, u32)>,
}

impl Search {
    fn new(hubs: usize) -> Search {
        Search {
            mark: vec![0; hubs],
            parent: vec![(NONE, NONE); hubs],
            near: vec![0; hubs],
            near_via: vec![(NONE, NONE); hubs],
            round: 0,
            queue: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// Puts into `cycle` the arcs of a cycle through arc `j` with the fewest currencies among
    /// those the pairs show; false if there is none.
    ///
    /// The search meets in the middle: the currencies one step before a target are marked
    /// first, and the forward search stops at the first currency it reaches that is marked.
    fn cycle_through(
        &mut self,
        j: usize,
        arcs: &[(u32, u32, i64)],
        flows: &[i64],
        adjacency: &Adjacency,
        pairs: &mut Pairs,
        cycle: &mut Vec<u32>,
    ) -> bool {
        let hubs = self.mark.len() as u32;
        let (tail, head, _) = arcs[j];
        // A sell arc (currency → trader) closes through the trader's buys: from each currency
        // the trader pays into, back to the arc's currency. A buy arc (trader → currency)
        // closes from its currency back to one the trader receives from.
        let (trader, sell) = if tail < hubs {
            (head as usize, true)
        } else {
            (tail as usize, false)
        };
        let live = |b: u32| flows[b as usize] > 0 && b as usize != j;
        self.round += 1;
        let round = self.round;
        self.targets.clear();
        if sell {
            self.targets.push((tail, NONE));
        } else {
            for &i in adjacency.ins.of(trader) {
                if live(i) {
                    self.targets.push((arcs[i as usize].0, i));
                }
            }
        }
        for (t, &(y, _)) in self.targets.iter().enumerate() {
            self.near[y as usize] = round;
            self.near_via[y as usize] = (NONE, t as u32);
        }
        // The steps into the targets, unless they are so many that the forward search will
        // reach a target sooner.
        let steps: usize = self
            .targets
            .iter()
            .map(|&(y, _)| pairs.ins.range(y as usize).len())
            .sum();
        for t in 0..self.targets.len() {
            if steps > NEAR_STEPS {
                break;
            }
            let y = self.targets[t].0;
            for k in pairs.ins.range(y as usize) {
                let (x, g) = pairs.ins.items[k];
                if self.near[x as usize] != round && pairs.live(g, flows).is_some() {
                    self.near[x as usize] = round;
                    self.near_via[x as usize] = (g, t as u32);
                }
            }
        }
        self.queue.clear();
        let mut found = None;
        let starts: &[u32] = if sell {
            adjacency.outs.of(trader)
        } else {
            std::slice::from_ref(&head)
        };
        for &b in starts {
            // For a sell arc, each of the trader's buys starts at its currency.
            let x = if sell {
                if !live(b) {
                    continue;
                }
                arcs[b as usize].1
            } else {
                b
            };
            if self.mark[x as usize] == round {
                continue;
            }
            self.mark[x as usize] = round;
            self.parent[x as usize] = (NONE, NONE);
            self.queue.push(x);
            if self.near[x as usize] == round {
                found = Some(x);
                break;
            }
        }
        let mut next = 0;
        'search: while found.is_none() && next < self.queue.len() {
            let x = self.queue[next];
            next += 1;
            for k in pairs.out.range(x as usize) {
                let (y, g) = pairs.out.items[k];
                if self.mark[y as usize] == round || pairs.live(g, flows).is_none() {
                    continue;
                }
                self.mark[y as usize] = round;
                self.parent[y as usize] = (x, g);
                self.queue.push(y);
                if self.near[y as usize] == round {
                    found = Some(y);
                    break 'search;
                }
            }
        }
        let Some(meet) = found else {
            return false;
        };
        cycle.clear();
        cycle.push(j as u32);
        let (step, t) = self.near_via[meet as usize];
        if step != NONE {
            let (i, o) = pairs
                .live(step, flows)
                .expect("the last step has a live pair");
            cycle.extend([i, o]);
        }
        let closing = self.targets[t as usize].1;
        if closing != NONE {
            cycle.push(closing);
        }
        let mut x = meet;
        loop {
            let (p, g) = self.parent[x as usize];
            if p == NONE {
                break;
            }
            let (i, o) = pairs
                .live(g, flows)
                .expect("a group on the path has a live pair");
            cycle.extend([i, o]);
            x = p;
        }
        if sell {
            // `x` is the start: the currency the trader pays into.
            let first = adjacency
                .outs
                .of(trader)
                .iter()
                .copied()
                .find(|&o| live(o) && arcs[o as usize].1 == x)
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

    /// Currencies 0, 1, 2; traders 3 (sells 0, buys 1), 4 (sells 1, buys 0), 5 (sells 1, buys
    /// 2), 6 (sells 2, buys 0). Flows: 0 → 3 → 1 → 4 → 0 carries 2, 0 → 3 → 1 → 5 → 2 → 6 → 0
    /// carries 10.
    const TWO_CYCLES: [(u32, u32, i64); 8] = [
        (0, 3, 20),
        (3, 1, 20),
        (1, 4, 20),
        (4, 0, 20),
        (1, 5, 20),
        (5, 2, 20),
        (2, 6, 20),
        (6, 0, 20),
    ];
    const TWO_CYCLES_FLOWS: [i64; 8] = [12, 12, 2, 2, 10, 10, 10, 10];

    #[test]
    fn a_cycle_the_index_misses_goes_to_the_decomposition() {
        // Trader 34 receives currencies 0..17 and pays currencies 17..34: 289 pairs, of which
        // the last ones (from currency 16) are not indexed. Trader 35 + i closes each cycle
        // i → 34 → 17 + i → 35 + i → i, each with 10. Arc 67 (51 → 16) needs 15: the only
        // cycle through it needs the pair (16, 33) of trader 34.
        let (hub, k) = (34u32, 17u32);
        let mut arcs = Vec::new();
        let mut flows = Vec::new();
        for i in 0..k {
            arcs.extend([
                (i, hub, 20),
                (hub, k + i, 20),
                (k + i, hub + 1 + i, 20),
                (hub + 1 + i, i, 20),
            ]);
            flows.extend([10; 4]);
        }
        let before = flows.clone();
        let n = (hub + 1 + k) as usize;
        let dusty = |a: usize, x: i64| x > 0 && x < if a == 67 { 15 } else { 5 };
        let emptied = drop_dust_short_cycles(n, hub as usize, &arcs, &mut flows, dusty);
        assert_eq!(emptied, 1);
        for (a, (&x, &y)) in flows.iter().zip(&before).enumerate() {
            assert_eq!(x, if a >= 64 { 0 } else { y }, "arc {a}");
        }
    }

    #[test]
    fn the_shortest_cycle_through_a_dusty_arc_goes() {
        let (arcs, mut flows) = (TWO_CYCLES, TWO_CYCLES_FLOWS);
        // Arc 2 (1 → 4) has too little: the short cycle through it loses 2, not the long one.
        let emptied = drop_dust_short_cycles(7, 3, &arcs, &mut flows, |_, x| x > 0 && x < 5);
        assert_eq!(emptied, 1);
        assert_eq!(flows, [10, 10, 0, 0, 10, 10, 10, 10]);
    }

    #[test]
    fn a_cascade_empties_what_falls_below() {
        // As above, with a minimum of 11: arc 2 goes with 2 of arcs 0 and 1, which leaves
        // them with 10, below the minimum too: everything goes.
        let (arcs, mut flows) = (TWO_CYCLES, TWO_CYCLES_FLOWS);
        drop_dust_short_cycles(7, 3, &arcs, &mut flows, |_, x| x > 0 && x < 11);
        assert_eq!(flows, [0; 8]);
    }
}

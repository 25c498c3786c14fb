//! A maximum circulation solver: the most flow around cycles of a digraph with arc capacities.
//!
//! Every arc is worth the same (cost −1 per unit of flow), so the optimum maximises the sum of
//! the flows of all arcs. The solver first *saturates* every arc, which leaves each node with
//! an imbalance, and then takes flow back at the least cost: a minimum-cost flow on the
//! reversed arcs (each unit taken back from an arc costs 1) from the nodes with too much inflow
//! to those with too much outflow. That flow is found by the primal–dual method: a Dijkstra
//! search over the residual network with reduced costs (node potentials keep them
//! non-negative) finds the length of the shortest paths; then Dinic's blocking flows push
//! along every shortest path at once, until none is left and the next Dijkstra search starts.
//! Each blocking flow's level graph comes from a bidirectional breadth-first search, pruned to
//! the nodes on some shortest path (see [`Network::levels`]).
//!
//! Arcs may be removed between solves ([`Network::remove`]): the removed flow becomes an
//! imbalance at the arc's ends, the potentials stay valid (removing an arc removes residual
//! arcs only), and [`Network::solve`] re-routes the least possible flow. Amounts are integers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Marks an entry that gives flow back to its arc (cost −1) in [`Network::to`].
const GIVE: u32 = 1 << 31;

/// A circulation network.
///
/// Each arc has two residual *entries*, stored by node (CSR) so that a search reads them in
/// order: at the arc's head, one that takes flow back (to the tail, cost +1, residual = the
/// arc's flow); at its tail, one that gives it back (to the head, cost −1, residual = what was
/// taken back).
pub struct Network {
    /// The first entry of each node, and one past the last node's.
    start: Vec<u32>,
    /// Each entry's other end, with [`GIVE`] for the entries that give flow back.
    to: Vec<u32>,
    /// Each entry's residual capacity.
    res: Vec<i64>,
    /// The other entry of the same arc.
    mate: Vec<u32>,
    /// Each arc's take-back entry, whose residual is the arc's flow.
    arc_entry: Vec<u32>,
    /// What each node still has to route: inflow minus outflow of the current flow.
    excess: Vec<i64>,
    /// Nodes that may have a positive excess.
    sources: Vec<u32>,
    /// What the searches read of each node, in one cache line.
    node: Vec<Node>,
    /// The current Dijkstra search's mark of its ball (see [`Node::ball`]).
    epoch: u32,
    /// The current round's mark (see [`Node::seen`]).
    stamp: u32,
    /// The buckets of the Dijkstra search's queue, by distance.
    buckets: Vec<Vec<u32>>,
    /// The nodes of the current round, in level order; then its alive sources.
    queue: Vec<u32>,
    /// Work lists of [`levels`](Self::levels).
    back: Vec<u32>,
    next: Vec<u32>,
    /// Nodes that may have a deficit.
    sinks: Vec<u32>,
    /// The number of Dijkstra searches so far.
    pub phases: u32,
    /// The number of blocking flows so far.
    pub rounds: u32,
}

const UNSEEN: u32 = u32::MAX;

/// Distances below this are queued in buckets, the others in a heap.
const BUCKETS: usize = 1024;

/// A node's potential and the searches' scratch space, together so that a search reads one
/// cache line per node it looks at.
#[derive(Clone, Copy, Debug)]
struct Node {
    /// The potential (reduced costs only see differences of potentials).
    pot: i64,
    /// The tentative distance of the current Dijkstra search (`i64::MAX` when not reached).
    dist: i64,
    /// `epoch` when the node is in the ball of the last Dijkstra search: at distance at most
    /// that of the nearest deficit, where every shortest path lies.
    ball: u32,
    /// `stamp` when the node is alive in the current round (on a shortest path from a source
    /// to a deficit, and no dead end yet); `stamp − 2` when the forward search reached it.
    seen: u32,
    /// The node's Dinic level in the current round.
    level: u32,
    /// The Dinic cursor: the next entry to try in the current round.
    cursor: u32,
    /// `stamp − 1` when the backward search of the current round reached the node.
    back_seen: u32,
    /// The node's distance to the nearest deficit, when the backward search reached it.
    back_level: u32,
}

impl Network {
    /// A network of `n` nodes and the given arcs `(tail, head, capacity)`, every arc saturated.
    pub fn new(n: usize, arcs: &[(u32, u32, i64)]) -> Network {
        let mut start = vec![0u32; n + 1];
        let mut excess = vec![0i64; n];
        for &(t, h, c) in arcs {
            start[t as usize + 1] += 1;
            start[h as usize + 1] += 1;
            excess[h as usize] += c;
            excess[t as usize] -= c;
        }
        for v in 0..n {
            start[v + 1] += start[v];
        }
        let mut next = start.clone();
        let len = 2 * arcs.len();
        let (mut to, mut res, mut mate) = (vec![0u32; len], vec![0i64; len], vec![0u32; len]);
        let mut arc_entry = vec![0u32; arcs.len()];
        for (a, &(t, h, c)) in arcs.iter().enumerate() {
            let take = next[h as usize];
            next[h as usize] += 1;
            let give = next[t as usize];
            next[t as usize] += 1;
            (to[take as usize], res[take as usize], mate[take as usize]) = (t, c, give);
            (to[give as usize], res[give as usize], mate[give as usize]) = (h | GIVE, 0, take);
            arc_entry[a] = take;
        }
        // Each node's entries by target, so that a search walks memory in one direction.
        let mut order: Vec<u32> = (0..len as u32).collect();
        for v in 0..n {
            let range = start[v] as usize..start[v + 1] as usize;
            order[range].sort_unstable_by_key(|&e| to[e as usize] & !GIVE);
        }
        let mut moved = vec![0u32; len];
        for (new, &old) in order.iter().enumerate() {
            moved[old as usize] = new as u32;
        }
        let to: Vec<u32> = order.iter().map(|&e| to[e as usize]).collect();
        let res: Vec<i64> = order.iter().map(|&e| res[e as usize]).collect();
        let mate: Vec<u32> = order
            .iter()
            .map(|&e| moved[mate[e as usize] as usize])
            .collect();
        for e in &mut arc_entry {
            *e = moved[*e as usize];
        }
        drop((order, moved));
        let sources = (0..n as u32).filter(|&v| excess[v as usize] > 0).collect();
        let sinks = (0..n as u32).filter(|&v| excess[v as usize] < 0).collect();
        Network {
            start,
            to,
            res,
            mate,
            arc_entry,
            excess,
            sources,
            node: vec![
                Node {
                    pot: 0,
                    dist: i64::MAX,
                    ball: 0,
                    seen: 0,
                    level: UNSEEN,
                    cursor: 0,
                    back_seen: 0,
                    back_level: 0,
                };
                n
            ],
            epoch: 0,
            stamp: 1,
            buckets: vec![Vec::new(); BUCKETS],
            queue: Vec::new(),
            back: Vec::new(),
            next: Vec::new(),
            sinks,
            phases: 0,
            rounds: 0,
        }
    }

    /// The flow of arc `a`.
    #[inline]
    pub fn flow(&self, a: usize) -> i64 {
        self.res[self.arc_entry[a] as usize]
    }

    /// The number of arcs.
    pub fn arc_count(&self) -> usize {
        self.arc_entry.len()
    }

    /// Removes arc `a` (its capacity becomes 0); its flow must be re-routed by [`solve`](Self::solve).
    pub fn remove(&mut self, a: usize) {
        let take = self.arc_entry[a] as usize;
        let give = self.mate[take] as usize;
        let x = self.res[take];
        let (tail, head) = (self.to[take] as usize, (self.to[give] & !GIVE) as usize);
        self.excess[tail] += x;
        self.excess[head] -= x;
        if x > 0 {
            self.sources.push(tail as u32);
            self.sinks.push(head as u32);
        }
        self.res[take] = 0;
        self.res[give] = 0;
    }

    /// The reduced cost of entry `e` from `v` to `w`.
    #[inline]
    fn reduced(&self, v: usize, e: usize, w: usize) -> i64 {
        let cost = if self.to[e] & GIVE == 0 { 1 } else { -1 };
        cost + self.node[v].pot - self.node[w].pot
    }

    /// Makes the flow a maximum circulation; false if some imbalance cannot be routed (which
    /// does not happen: taking back every arc's flow always balances every node).
    pub fn solve(&mut self) -> bool {
        loop {
            self.sources.retain(|&v| self.excess[v as usize] > 0);
            self.sources.sort_unstable();
            self.sources.dedup();
            if self.sources.is_empty() {
                return true;
            }
            if !self.dijkstra() {
                return false;
            }
            self.phases += 1;
            while self.levels() {
                self.blocking_flow();
            }
        }
    }

    /// Shortest reduced-cost distances from the nodes with excess to the nearest node with a
    /// deficit, at distance `D`; raises the potentials so that every shortest path has reduced
    /// cost 0, and marks the nodes at distance at most `D` (the *ball*, where every such path
    /// lies). False if no deficit is reachable.
    #[inline(never)]
    fn dijkstra(&mut self) -> bool {
        self.epoch += 1;
        let mut queue = std::mem::take(&mut self.buckets);
        let mut far = BinaryHeap::new();
        let mut touched = Vec::new();
        for &v in &self.sources {
            self.node[v as usize].dist = 0;
            touched.push(v);
            queue[0].push(v);
        }
        let mut limit = i64::MAX;
        let mut settled = Vec::new();
        let mut d = 0i64;
        loop {
            // The next node by distance: from the buckets, then from the far heap.
            let v = if (d as usize) < BUCKETS {
                match queue[d as usize].pop() {
                    Some(v) => v as usize,
                    None => {
                        d += 1;
                        continue;
                    }
                }
            } else {
                match far.pop() {
                    Some(Reverse((dv, v))) => {
                        d = dv;
                        v as usize
                    }
                    None => break,
                }
            };
            if d > self.node[v].dist || self.node[v].ball == self.epoch {
                continue;
            }
            if d > limit {
                break;
            }
            settled.push(v as u32);
            self.node[v].ball = self.epoch;
            if self.excess[v] < 0 {
                limit = limit.min(d);
                continue;
            }
            for e in self.start[v] as usize..self.start[v + 1] as usize {
                if self.res[e] <= 0 {
                    continue;
                }
                let w = (self.to[e] & !GIVE) as usize;
                let nd = d + self.reduced(v, e, w);
                debug_assert!(nd >= d, "reduced costs are non-negative");
                if nd < self.node[w].dist && nd <= limit {
                    if self.node[w].dist == i64::MAX {
                        touched.push(w as u32);
                    }
                    self.node[w].dist = nd;
                    if (nd as usize) < BUCKETS {
                        queue[nd as usize].push(w as u32);
                    } else {
                        far.push(Reverse((nd, w as u32)));
                    }
                }
            }
        }
        for bucket in &mut queue {
            bucket.clear();
        }
        self.buckets = queue;
        if limit == i64::MAX {
            for &v in &touched {
                self.node[v as usize].dist = i64::MAX;
            }
            return false;
        }
        // p(v) += min(d(v), D) for every node: the nodes beyond D all get D, which is
        // subtracted from the settled ones instead.
        for &v in &settled {
            self.node[v as usize].pot += self.node[v as usize].dist - limit;
        }
        for &v in &touched {
            self.node[v as usize].dist = i64::MAX;
        }
        true
    }

    /// Dinic levels of the shortest admissible paths (entries of reduced cost 0 with residual
    /// capacity) from the nodes with excess to those with a deficit; true if there is one.
    ///
    /// The search is bidirectional: layer by layer forwards from the sources and backwards
    /// from the deficits, always the side whose next layer has fewer entries to read, until
    /// the two meet. Late in a solve a few sources and deficits are left, and the admissible
    /// network is a small world in which a one-sided search reaches almost every node first.
    /// Then the nodes on some shortest path are marked *alive* (`seen == stamp`): walking back
    /// from the meeting layer over the forward side, and on from it over the backward side. A
    /// node's level is its distance from the sources.
    #[inline(never)]
    fn levels(&mut self) -> bool {
        self.stamp += 3;
        self.rounds += 1;
        let (fwd, bwd, alive) = (self.stamp - 2, self.stamp - 1, self.stamp);
        let epoch = self.epoch;
        let mut front = std::mem::take(&mut self.queue);
        let mut back = std::mem::take(&mut self.back);
        let mut next = std::mem::take(&mut self.next);
        front.clear();
        back.clear();
        self.sinks.retain(|&v| self.excess[v as usize] < 0);
        self.sinks.sort_unstable();
        self.sinks.dedup();
        for &v in &self.sources {
            let node = &mut self.node[v as usize];
            if self.excess[v as usize] > 0 && node.ball == epoch {
                (node.seen, node.level) = (fwd, 0);
                front.push(v);
            }
        }
        for &v in &self.sinks {
            let node = &mut self.node[v as usize];
            if node.ball == epoch {
                (node.back_seen, node.back_level) = (bwd, 0);
                back.push(v);
            }
        }
        let width = |net: &Network, layer: &[u32]| -> usize {
            layer
                .iter()
                .map(|&v| (net.start[v as usize + 1] - net.start[v as usize]) as usize)
                .sum()
        };
        // `front` holds the last forward layer, `back` the last backward one.
        let mut meet: Vec<u32> = Vec::new();
        let mut depth = (0u32, 0u32);
        while meet.is_empty() && !front.is_empty() && !back.is_empty() {
            next.clear();
            if width(self, &front) <= width(self, &back) {
                let level = depth.0 + 1;
                for &v in &front {
                    let v = v as usize;
                    for e in self.start[v] as usize..self.start[v + 1] as usize {
                        if self.res[e] <= 0 {
                            continue;
                        }
                        let w = (self.to[e] & !GIVE) as usize;
                        let node = self.node[w];
                        if node.seen != fwd && node.ball == epoch && self.reduced(v, e, w) == 0 {
                            self.node[w].seen = fwd;
                            self.node[w].level = level;
                            next.push(w as u32);
                            if node.back_seen == bwd {
                                meet.push(w as u32);
                            }
                        }
                    }
                }
                depth.0 = level;
                std::mem::swap(&mut front, &mut next);
            } else {
                let level = depth.1 + 1;
                for &w in &back {
                    let w = w as usize;
                    for f in self.start[w] as usize..self.start[w + 1] as usize {
                        let v = (self.to[f] & !GIVE) as usize;
                        let node = self.node[v];
                        if node.back_seen == bwd || node.ball != epoch {
                            continue;
                        }
                        let e = self.mate[f] as usize;
                        if self.res[e] > 0 && self.reduced(v, e, w) == 0 {
                            self.node[v].back_seen = bwd;
                            self.node[v].back_level = level;
                            next.push(v as u32);
                            if node.seen == fwd {
                                meet.push(v as u32);
                            }
                        }
                    }
                }
                depth.1 = level;
                std::mem::swap(&mut back, &mut next);
            }
        }
        let found = !meet.is_empty();
        if found {
            let total = depth.0 + depth.1;
            // The meeting layer, then back over the forward side: `front` is the work list.
            front.clear();
            for &m in &meet {
                let node = &mut self.node[m as usize];
                node.level = depth.0;
                node.seen = alive;
                node.cursor = self.start[m as usize];
                front.push(m);
            }
            let mut head = 0;
            while head < front.len() {
                let w = front[head] as usize;
                head += 1;
                let Some(prev) = self.node[w].level.checked_sub(1) else {
                    continue;
                };
                for f in self.start[w] as usize..self.start[w + 1] as usize {
                    let v = (self.to[f] & !GIVE) as usize;
                    if self.node[v].seen != fwd || self.node[v].level != prev {
                        continue;
                    }
                    let e = self.mate[f] as usize;
                    if self.res[e] > 0 && self.reduced(v, e, w) == 0 {
                        self.node[v].seen = alive;
                        self.node[v].cursor = self.start[v];
                        front.push(v as u32);
                    }
                }
            }
            // The alive sources, for the blocking flow.
            let mut sources: Vec<u32> = front
                .iter()
                .copied()
                .filter(|&v| self.node[v as usize].level == 0)
                .collect();
            // On from the meeting layer over the backward side.
            back.clear();
            back.extend_from_slice(&meet);
            let mut head = 0;
            while head < back.len() {
                let v = back[head] as usize;
                head += 1;
                let Some(down) = self.node[v].back_level.checked_sub(1) else {
                    continue;
                };
                for e in self.start[v] as usize..self.start[v + 1] as usize {
                    if self.res[e] <= 0 {
                        continue;
                    }
                    let w = (self.to[e] & !GIVE) as usize;
                    let node = self.node[w];
                    if node.back_seen != bwd || node.back_level != down || node.seen == alive {
                        continue;
                    }
                    if self.reduced(v, e, w) == 0 {
                        let node = &mut self.node[w];
                        node.seen = alive;
                        node.level = total - down;
                        node.cursor = self.start[w];
                        back.push(w as u32);
                    }
                }
            }
            sources.sort_unstable();
            front.clear();
            front.extend_from_slice(&sources);
        } else {
            front.clear();
        }
        self.queue = front;
        self.back = back;
        self.next = next;
        found
    }

    /// Pushes excess along admissible entries of increasing level until no node with a deficit
    /// can be reached that way (a blocking flow).
    #[inline(never)]
    fn blocking_flow(&mut self) {
        let stamp = self.stamp;
        let mut path: Vec<(usize, usize)> = Vec::new();
        for i in 0..self.queue.len() {
            let s = self.queue[i] as usize;
            if self.node[s].level != 0 {
                break;
            }
            while self.excess[s] > 0 && self.node[s].seen == stamp {
                path.clear();
                let mut v = s;
                let sink = loop {
                    if v != s && self.excess[v] < 0 {
                        break Some(v);
                    }
                    let end = self.start[v + 1];
                    let next_level = self.node[v].level + 1;
                    let mut next = None;
                    while self.node[v].cursor < end {
                        let e = self.node[v].cursor as usize;
                        let w = (self.to[e] & !GIVE) as usize;
                        if self.res[e] > 0
                            && self.node[w].seen == stamp
                            && self.node[w].level == next_level
                            && self.reduced(v, e, w) == 0
                        {
                            next = Some((w, e));
                            break;
                        }
                        self.node[v].cursor += 1;
                    }
                    match next {
                        Some((w, e)) => {
                            path.push((v, e));
                            v = w;
                        }
                        None => {
                            // A dead end for the rest of this round.
                            self.node[v].seen = stamp - 1;
                            match path.pop() {
                                Some((u, _)) => {
                                    self.node[u].cursor += 1;
                                    v = u;
                                }
                                None => break None,
                            }
                        }
                    }
                };
                let Some(t) = sink else { break };
                let mut amount = self.excess[s].min(-self.excess[t]);
                for &(_, e) in &path {
                    amount = amount.min(self.res[e]);
                }
                for &(_, e) in &path {
                    self.res[e] -= amount;
                    self.res[self.mate[e] as usize] += amount;
                }
                self.excess[s] -= amount;
                self.excess[t] += amount;
                if self.excess[t] == 0 {
                    // No longer a sink, and nothing beyond it has a level.
                    self.node[t].seen = stamp - 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(net: &Network) -> i64 {
        (0..net.arc_count()).map(|a| net.flow(a)).sum()
    }

    fn balanced(net: &Network, arcs: &[(u32, u32, i64)], n: usize) -> bool {
        let mut b = vec![0i64; n];
        for (a, &(t, h, _)) in arcs.iter().enumerate() {
            b[t as usize] -= net.flow(a);
            b[h as usize] += net.flow(a);
        }
        b.iter().all(|&x| x == 0)
    }

    /// True if the residual network of the flow has no cycle of negative cost (Bellman–Ford
    /// from a virtual node joined to every node): the circulation is then a maximum one.
    fn optimal(net: &Network, arcs: &[(u32, u32, i64)], removed: &[bool], n: usize) -> bool {
        let mut residual: Vec<(usize, usize, i64)> = Vec::new();
        for (a, &(t, h, c)) in arcs.iter().enumerate() {
            let x = net.flow(a);
            let cap = if removed[a] { 0 } else { c };
            if x < cap {
                residual.push((t as usize, h as usize, -1));
            }
            if x > 0 {
                residual.push((h as usize, t as usize, 1));
            }
        }
        let mut dist = vec![0i64; n];
        for _ in 0..n {
            let mut changed = false;
            for &(u, v, w) in &residual {
                if dist[u] + w < dist[v] {
                    dist[v] = dist[u] + w;
                    changed = true;
                }
            }
            if !changed {
                return true;
            }
        }
        false
    }

    #[test]
    fn random_networks_get_a_maximum_circulation_also_after_removals() {
        let mut rng = crate::solver::testgen::Rng::new(11);
        for round in 0..300 {
            // Bipartite like a market (hubs and traders), or any digraph.
            let n = 4 + rng.below(40);
            let m = n + rng.below(4 * n);
            let hubs = 1 + rng.below(n / 2);
            let arcs: Vec<(u32, u32, i64)> = (0..m)
                .filter_map(|_| {
                    let (mut t, mut h) = (rng.below(n), rng.below(n));
                    if round % 2 == 0 {
                        t = rng.below(hubs);
                        h = hubs + rng.below(n - hubs);
                        if rng.unit() < 0.5 {
                            (t, h) = (h, t);
                        }
                    }
                    (t != h).then(|| (t as u32, h as u32, 1 + rng.below(1000) as i64))
                })
                .collect();
            let mut net = Network::new(n, &arcs);
            let mut removed = vec![false; arcs.len()];
            assert!(net.solve());
            assert!(balanced(&net, &arcs, n), "round {round}");
            assert!(optimal(&net, &arcs, &removed, n), "round {round}");
            for _ in 0..3 {
                for (a, gone) in removed.iter_mut().enumerate() {
                    if !*gone && net.flow(a) > 0 && rng.unit() < 0.2 {
                        net.remove(a);
                        *gone = true;
                    }
                }
                assert!(net.solve());
                assert!(balanced(&net, &arcs, n), "round {round}");
                assert!(optimal(&net, &arcs, &removed, n), "round {round}");
                for (a, &(_, _, c)) in arcs.iter().enumerate() {
                    let cap = if removed[a] { 0 } else { c };
                    assert!((0..=cap).contains(&net.flow(a)), "round {round}");
                }
            }
        }
    }

    #[test]
    fn a_triangle_and_a_bridge() {
        // 0 -> 1 -> 2 -> 0 with capacities 5, 3, 4, plus 2 -> 3 (on no cycle).
        let arcs = [(0, 1, 5), (1, 2, 3), (2, 0, 4), (2, 3, 7)];
        let mut net = Network::new(4, &arcs);
        assert!(net.solve());
        assert!(balanced(&net, &arcs, 4));
        assert_eq!(total(&net), 9);
        assert_eq!(net.flow(3), 0);
    }

    #[test]
    fn longer_cycles_win() {
        // Two 2-cycles through node 0 share arc 0 -> 1 (capacity 4) with a 3-cycle.
        let arcs = [(0, 1, 4), (1, 0, 4), (1, 2, 4), (2, 0, 4)];
        let mut net = Network::new(3, &arcs);
        assert!(net.solve());
        assert!(balanced(&net, &arcs, 3));
        // Through 0 -> 1 -> 2 -> 0: 3 arcs per unit beats 2.
        assert_eq!(total(&net), 12);
        net.remove(2);
        assert!(net.solve());
        assert!(balanced(&net, &arcs, 3));
        assert_eq!(total(&net), 8);
    }
}

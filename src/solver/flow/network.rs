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
    /// The nodes of the current round, in level order.
    queue: Vec<u32>,
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
    /// `stamp` when the node has a level in the current round (and is no dead end).
    seen: u32,
    /// The node's Dinic level in the current round.
    level: u32,
    /// The Dinic cursor: the next entry to try in the current round.
    cursor: u32,
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
                };
                n
            ],
            epoch: 0,
            stamp: 1,
            buckets: vec![Vec::new(); BUCKETS],
            queue: Vec::new(),
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

    /// Dinic levels over the admissible entries (reduced cost 0, residual capacity) inside the
    /// ball, from every node with excess, up to the level of the nearest deficit; true if a
    /// deficit is reached.
    #[inline(never)]
    fn levels(&mut self) -> bool {
        self.stamp += 1;
        self.rounds += 1;
        let stamp = self.stamp;
        self.queue.clear();
        for &v in &self.sources {
            if self.excess[v as usize] > 0 {
                self.node[v as usize].seen = stamp;
                self.node[v as usize].level = 0;
                self.queue.push(v);
            }
        }
        let mut limit = UNSEEN;
        let mut head = 0;
        while head < self.queue.len() {
            let v = self.queue[head] as usize;
            head += 1;
            self.node[v].cursor = self.start[v];
            if self.excess[v] < 0 {
                limit = limit.min(self.node[v].level);
                continue;
            }
            if self.node[v].level >= limit {
                continue;
            }
            let next = self.node[v].level + 1;
            for e in self.start[v] as usize..self.start[v + 1] as usize {
                let w = (self.to[e] & !GIVE) as usize;
                if self.res[e] > 0
                    && self.node[w].seen != stamp
                    && self.node[w].ball == self.epoch
                    && self.reduced(v, e, w) == 0
                {
                    self.node[w].seen = stamp;
                    self.node[w].level = next;
                    self.queue.push(w as u32);
                }
            }
        }
        limit != UNSEEN
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

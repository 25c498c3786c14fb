//! The depth-first cycle search over an [`OfferGraph`] (solver.md §3.5).
//!
//! The search keeps a path from the root trader and, for every node, a status word
//! `(arc index << 1) | on-path flag`. At the top of the path it follows the first valid arc
//! whose target is not on the path; when the target is on the path, a cycle is found. Arc
//! indices only move forward, and a node whose arcs are exhausted is never expanded again, which
//! is sound because arcs only lose amount. After a cycle has been cancelled, the search resumes
//! at the lowest node of the cycle whose arc died: the nodes below it would be walked again
//! unchanged, so keeping them on the path gives the same search as the reference's, which
//! resumes at the node that closed the cycle.

use super::graph::OfferGraph;

/// The on-path flag of a node's status word; the arc index is stored above it.
const ON_PATH: u32 = 1;

/// The search state.
pub struct Traversal {
    status: Vec<u32>,
    path: Vec<u32>,
    /// For each path element, the position of the arc it follows (its arc in the cycle).
    path_arcs: Vec<u32>,
}

/// A found cycle: `nodes[k]` leaves by arc `arcs[k]` towards `nodes[k + 1]`, and the last arc
/// returns to `nodes[0]`.
pub struct Cycle<'a> {
    /// The cycle's nodes, in arc direction.
    pub nodes: &'a [u32],
    /// The positions of the arcs leaving each node, in the flat arc arrays.
    pub arcs: &'a [u32],
}

impl Traversal {
    /// Starts a search at the graph's root.
    pub fn new(graph: &OfferGraph) -> Self {
        Traversal {
            status: vec![0; graph.node_count()],
            path: vec![graph.root()],
            path_arcs: vec![0],
        }
    }

    /// Advances to the next cycle of valid arcs and returns it; `None` once exhausted.
    ///
    /// `valid(position)` tells whether an arc may be followed. After processing the cycle, call
    /// [`Traversal::resume`] before searching again.
    pub fn find_cycle(
        &mut self,
        graph: &OfferGraph,
        valid: impl Fn(usize) -> bool,
    ) -> Option<Cycle<'_>> {
        while let Some(&u) = self.path.last() {
            let st = self.status[u as usize];
            let mut i = ((st >> 1) + (st & ON_PATH)) as usize;
            let (first, targets) = graph.arcs(u);
            while i < targets.len() && !valid(first + i) {
                i += 1;
            }
            let top = self.path.len() - 1;
            let Some(&v) = targets.get(i) else {
                self.status[u as usize] = (i as u32) << 1;
                self.path.pop();
                self.path_arcs.pop();
                continue;
            };
            self.path_arcs[top] = (first + i) as u32;
            if self.status[v as usize] & ON_PATH == 0 {
                self.status[u as usize] = ((i as u32) << 1) | ON_PATH;
                self.path.push(v);
                self.path_arcs.push(0);
            } else {
                self.status[u as usize] = ((i as u32) << 1) | ON_PATH;
                let start = self
                    .path
                    .iter()
                    .rposition(|&n| n == v)
                    .expect("v is on the path");
                return Some(Cycle {
                    nodes: &self.path[start..],
                    arcs: &self.path_arcs[start..],
                });
            }
        }
        None
    }

    /// Continues after the current cycle: pops every node above the lowest cycle node whose arc
    /// is no longer valid, which then re-examines its arc as the new top.
    pub fn resume(&mut self, cycle_len: usize, valid: impl Fn(usize) -> bool) {
        let start = self.path.len() - cycle_len;
        let dead = (start..self.path.len())
            .find(|&k| !valid(self.path_arcs[k] as usize))
            .unwrap_or(start);
        for &n in &self.path[dead + 1..] {
            self.status[n as usize] &= !ON_PATH;
        }
        self.path.truncate(dead + 1);
        self.path_arcs.truncate(dead + 1);
        // The new top is still on the path, but its flag must be clear so that its current
        // arc is examined again rather than skipped.
        let top = self.path[dead] as usize;
        self.status[top] &= !ON_PATH;
    }
}

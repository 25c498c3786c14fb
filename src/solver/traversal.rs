//! The depth-first cycle search over an [`OfferGraph`] (docs/turns.md#matching).
//!
//! The search keeps a path from the root trader and, for every node, the index of its current
//! arc. At the top of the path it follows the first valid arc whose target is not on the path;
//! when the target is on the path, a cycle is found. When a node's arcs are exhausted it is
//! popped and its parent moves past the arc that led to it. Arc indices only move forward, and an
//! exhausted node is never expanded again, which is sound because arcs only lose amount. After a
//! cycle has been cancelled, the search resumes at the lowest node of the cycle whose arc died:
//! the nodes below it would be walked again unchanged, so keeping them on the path gives the same
//! search as the reference's, which resumes at the node that closed the cycle.

use super::graph::OfferGraph;

/// A fixed-size set of small integers, one bit each.
///
/// The search's on-path test reads this bitset, which is 32 times smaller than a word per node
/// and so mostly hits the CPU cache.
#[derive(Clone, Debug)]
pub struct BitSet(Vec<u64>);

impl BitSet {
    /// A set of the integers below `len` for which `member` holds.
    pub fn from_fn(len: usize, member: impl Fn(usize) -> bool) -> Self {
        let mut words = vec![0u64; len.div_ceil(64)];
        for n in (0..len).filter(|&n| member(n)) {
            words[n / 64] |= 1 << (n % 64);
        }
        BitSet(words)
    }

    /// Whether `n` is in the set.
    #[inline]
    pub fn contains(&self, n: usize) -> bool {
        self.0[n / 64] & (1 << (n % 64)) != 0
    }

    /// Adds `n`.
    #[inline]
    pub fn insert(&mut self, n: usize) {
        self.0[n / 64] |= 1 << (n % 64);
    }

    /// Removes `n`.
    #[inline]
    pub fn remove(&mut self, n: usize) {
        self.0[n / 64] &= !(1 << (n % 64));
    }
}

/// An entry of a search's arc table: the arc's target node and whether it may be followed.
///
/// Both live in one table entry, so the search's step touches one cache line per arc. An arc
/// that stops being valid must never become valid again.
pub trait SearchArc {
    /// The node the arc enters.
    fn target(&self) -> u32;
    /// Whether the arc may be followed.
    fn is_valid(&self) -> bool;
}

/// A node's current arc and the end of its arcs, kept together so a visit touches one cache
/// line.
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    next: u32,
    end: u32,
}

/// The search state.
pub struct Traversal {
    cursors: Vec<Cursor>,
    on_path: BitSet,
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
        let root = graph.root();
        let mut on_path = BitSet::from_fn(graph.node_count(), |_| false);
        on_path.insert(root as usize);
        let cursors = (0..graph.node_count() as u32)
            .map(|u| {
                let (first, targets) = graph.arcs(u);
                let end = (first + targets.len()) as u32;
                Cursor {
                    next: first as u32,
                    end,
                }
            })
            .collect();
        Traversal {
            cursors,
            on_path,
            path: vec![root],
            path_arcs: vec![0],
        }
    }

    /// Advances to the next cycle of valid arcs and returns it; `None` once exhausted.
    ///
    /// `arcs` is the graph's arc table (see [`OfferGraph::arc_table`]); only valid arcs are
    /// followed. After processing the cycle (which must make at least one of its arcs invalid),
    /// call [`Traversal::resume`] before searching again.
    pub fn find_cycle<A: SearchArc>(&mut self, arcs: &[A]) -> Option<Cycle<'_>> {
        while let Some(&u) = self.path.last() {
            let cursor = &mut self.cursors[u as usize];
            let mut pos = cursor.next;
            while pos < cursor.end && !arcs[pos as usize].is_valid() {
                pos += 1;
            }
            cursor.next = pos;
            if pos == cursor.end {
                self.on_path.remove(u as usize);
                self.path.pop();
                self.path_arcs.pop();
                if let Some(&parent) = self.path.last() {
                    self.cursors[parent as usize].next += 1;
                }
                continue;
            }
            let v = arcs[pos as usize].target();
            *self.path_arcs.last_mut().expect("non-empty path") = pos;
            if !self.on_path.contains(v as usize) {
                self.on_path.insert(v as usize);
                self.path.push(v);
                self.path_arcs.push(0);
            } else {
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
    /// is no longer valid; that node, now the top, looks for its next valid arc.
    pub fn resume<A: SearchArc>(&mut self, cycle_len: usize, arcs: &[A]) {
        let start = self.path.len() - cycle_len;
        let dead = (start..self.path.len())
            .find(|&k| !arcs[self.path_arcs[k] as usize].is_valid())
            .unwrap_or(start);
        for &n in &self.path[dead + 1..] {
            self.on_path.remove(n as usize);
        }
        self.path.truncate(dead + 1);
        self.path_arcs.truncate(dead + 1);
    }
}

//! The fast repair: a decomposition of the circulation into cycles, and the removal of every
//! cycle through an arc whose flow is below the minimum trade.
//!
//! An arc with a little flow can only be emptied together with all the flow that runs through
//! it, and in a circulation that flow goes around cycles: removing the cycles of a
//! decomposition that pass through the arc empties it and keeps every node balanced. Each
//! removed cycle carries less than the arc's flow, so the other arcs of the cycle lose little;
//! one that falls below its minimum in turn is emptied the same way.

/// Nodes with at most this many arcs left look for one that closes a cycle.
const SHORTCUT_DEGREE: u32 = 16;

/// A decomposition of a circulation into cycles.
struct Cycles {
    /// The flow of each cycle.
    amount: Vec<i64>,
    /// The arcs of cycle `i` are `arcs[start[i]..start[i + 1]]`.
    start: Vec<u32>,
    arcs: Vec<u32>,
}

/// Decomposes the circulation `flows` over `arcs` (`(tail, head, _)`) of a graph of `n` nodes
/// into cycles: from each node, follow arcs with flow left until the walk closes a cycle, take
/// the cycle's smallest flow off all its arcs, and go on from where the cycle started.
fn decompose(n: usize, arcs: &[(u32, u32, i64)], flows: &[i64]) -> Cycles {
    let mut first = vec![0u32; n + 1];
    for (j, &(t, _, _)) in arcs.iter().enumerate() {
        if flows[j] > 0 {
            first[t as usize + 1] += 1;
        }
    }
    for v in 0..n {
        first[v + 1] += first[v];
    }
    let mut cursor = first.clone();
    let mut out = vec![0u32; first[n] as usize];
    for (j, &(t, _, _)) in arcs.iter().enumerate() {
        if flows[j] > 0 {
            out[cursor[t as usize] as usize] = j as u32;
            cursor[t as usize] += 1;
        }
    }
    cursor.copy_from_slice(&first);
    let mut left = flows.to_vec();
    let mut cycles = Cycles {
        amount: Vec::new(),
        start: vec![0],
        arcs: Vec::new(),
    };
    const OFF: u32 = u32::MAX;
    let mut pos = vec![OFF; n];
    let (mut nodes, mut path) = (Vec::<u32>::new(), Vec::<u32>::new());
    for s in 0..n {
        nodes.clear();
        path.clear();
        nodes.push(s as u32);
        pos[s] = 0;
        while let Some(&v) = nodes.last() {
            let v = v as usize;
            let end = first[v + 1];
            while cursor[v] < end && left[out[cursor[v] as usize] as usize] == 0 {
                cursor[v] += 1;
            }
            if cursor[v] == end {
                // Nothing leaves `v`: the start once it is done (or, were the flow not
                // balanced, a node to step back from).
                pos[v] = OFF;
                nodes.pop();
                path.pop();
                continue;
            }
            // From a node with few arcs (a trader), close a cycle if one of them leads back
            // to the path, the latest such node first: short cycles disturb fewer arcs.
            let mut j = out[cursor[v] as usize];
            if end - cursor[v] <= SHORTCUT_DEGREE {
                let mut best = None;
                for &k in &out[cursor[v] as usize..end as usize] {
                    let p = pos[arcs[k as usize].1 as usize];
                    if left[k as usize] > 0 && p != OFF && best.is_none_or(|(q, _)| p > q) {
                        best = Some((p, k));
                    }
                }
                if let Some((_, k)) = best {
                    j = k;
                }
            }
            let w = arcs[j as usize].1 as usize;
            path.push(j);
            if pos[w] == OFF {
                pos[w] = nodes.len() as u32;
                nodes.push(w as u32);
                continue;
            }
            let k = pos[w] as usize;
            let cycle = &path[k..];
            let amount = cycle.iter().map(|&j| left[j as usize]).min().unwrap_or(0);
            for &j in cycle {
                left[j as usize] -= amount;
            }
            cycles.amount.push(amount);
            cycles.arcs.extend_from_slice(cycle);
            cycles.start.push(cycles.arcs.len() as u32);
            for &u in &nodes[k + 1..] {
                pos[u as usize] = OFF;
            }
            nodes.truncate(k + 1);
            path.truncate(k);
        }
    }
    cycles
}

/// Empties every arc whose flow is `dusty` by removing, from `flows`, the cycles of a
/// decomposition that pass through it, until no arc is dusty; returns how many arcs it emptied.
pub fn drop_dust_cycles(
    n: usize,
    arcs: &[(u32, u32, i64)],
    flows: &mut [i64],
    dusty: impl Fn(usize, i64) -> bool,
) -> usize {
    let mut queue: Vec<usize> = (0..arcs.len()).filter(|&j| dusty(j, flows[j])).collect();
    if queue.is_empty() {
        return 0;
    }
    let cycles = decompose(n, arcs, flows);
    // The cycles through each arc.
    let mut first = vec![0u32; arcs.len() + 1];
    for &j in &cycles.arcs {
        first[j as usize + 1] += 1;
    }
    for j in 0..arcs.len() {
        first[j + 1] += first[j];
    }
    let mut next = first.clone();
    let mut through = vec![0u32; cycles.arcs.len()];
    for i in 0..cycles.amount.len() {
        for &j in &cycles.arcs[cycles.start[i] as usize..cycles.start[i + 1] as usize] {
            through[next[j as usize] as usize] = i as u32;
            next[j as usize] += 1;
        }
    }
    let mut alive = vec![true; cycles.amount.len()];
    let mut emptied = 0;
    while let Some(j) = queue.pop() {
        if !dusty(j, flows[j]) {
            continue;
        }
        emptied += 1;
        for &i in &through[first[j] as usize..first[j + 1] as usize] {
            let i = i as usize;
            if !alive[i] {
                continue;
            }
            alive[i] = false;
            for &b in &cycles.arcs[cycles.start[i] as usize..cycles.start[i + 1] as usize] {
                let b = b as usize;
                flows[b] -= cycles.amount[i];
                if dusty(b, flows[b]) {
                    queue.push(b);
                }
            }
        }
    }
    emptied
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dusty_arc_takes_its_cycles_along() {
        // Two cycles share 0 -> 1: 0 -> 1 -> 0 (flow 10) and 0 -> 1 -> 2 -> 0 (flow 3).
        let arcs = [(0, 1, 13), (1, 0, 10), (1, 2, 3), (2, 0, 3)];
        let mut flows = [13, 10, 3, 3];
        let emptied = drop_dust_cycles(3, &arcs, &mut flows, |_, x| x > 0 && x < 5);
        assert_eq!(emptied, 1);
        assert_eq!(flows, [10, 10, 0, 0]);
    }

    #[test]
    fn the_cascade_goes_on() {
        // 0 -> 1 -> 0 (flow 6) and 0 -> 1 -> 2 -> 0 (flow 3): with a minimum of 5, arc 1 -> 2
        // goes, which leaves 0 -> 1 with 6; a minimum of 7 empties everything.
        let arcs = [(0, 1, 9), (1, 0, 6), (1, 2, 3), (2, 0, 3)];
        let mut flows = [9, 6, 3, 3];
        drop_dust_cycles(3, &arcs, &mut flows, |_, x| x > 0 && x < 5);
        assert_eq!(flows, [6, 6, 0, 0]);
        let mut flows = [9, 6, 3, 3];
        drop_dust_cycles(3, &arcs, &mut flows, |_, x| x > 0 && x < 7);
        assert_eq!(flows, [0, 0, 0, 0]);
    }
}

//! Fusion: chains and trees of Elemwise nodes become one `Op::Composite` node, and a
//! reduction of an element-wise result becomes `Op::FusedReduce`, which reads the inputs
//! once.
//!
//! A reduction of a (fused) Elemwise result becomes `Op::FusedReduce`; when the result is
//! used elsewhere too, the fused node also outputs it, computed in the same pass.
//!
//! A group grows from a consumer towards its producers. A producer joins when its result
//! has the group's broadcast pattern (fusing a value computed on a broadcast dimension
//! would recompute it per element) and joining keeps the group convex (no path leaves the
//! group and comes back, which would be a cycle). Results also used outside the group
//! become extra outputs of the composite, so nothing is ever computed twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tensorlift_ir::ops::{Composite, ScalarRef};
use tensorlift_ir::{Client, FunctionGraph, GraphError, NodeId, Op, Origin, VarId};

use super::pattern::{producer, single_client};
use super::{Rule, RuleKind};

pub const RULES: [Rule; 2] = [
    Rule {
        name: "elemwise_fusion",
        tag: "fusion",
        kind: RuleKind::Global(fuse_elemwise),
    },
    Rule {
        name: "reduction_fusion",
        tag: "fusion",
        kind: RuleKind::Global(fuse_reductions),
    },
];

/// Most scalar nodes in one composite (keeps kernels and their compile time small).
const MAX_GROUP: usize = 64;

fn is_elemwise(fg: &FunctionGraph, node: NodeId) -> bool {
    matches!(fg.node(node).map(|e| &e.op), Some(Op::Elemwise(_)))
}

fn broadcast_pattern(fg: &FunctionGraph, var: VarId) -> Vec<bool> {
    fg.var(var).ty.broadcastable()
}

/// Client nodes of every output of `node`.
fn client_nodes(fg: &FunctionGraph, node: NodeId) -> Vec<NodeId> {
    let Some(e) = fg.node(node) else {
        return Vec::new();
    };
    e.outputs
        .iter()
        .flat_map(|o| fg.clients(*o))
        .filter_map(|c| match c {
            Client::Node { node, .. } => Some(*node),
            Client::Output(_) => None,
        })
        .collect()
}

fn producer_nodes(fg: &FunctionGraph, node: NodeId) -> Vec<NodeId> {
    let Some(e) = fg.node(node) else {
        return Vec::new();
    };
    e.inputs
        .iter()
        .filter_map(|x| fg.owner(*x).map(|(n, _)| n))
        .collect()
}

/// True when a walk from `start` (outside the group), following `next` and staying within
/// topological positions `range`, reaches the group.
fn reaches(
    start: Vec<NodeId>,
    group: &HashSet<NodeId>,
    position: &HashMap<NodeId, usize>,
    range: (usize, usize),
    next: impl Fn(NodeId) -> Vec<NodeId>,
) -> bool {
    let mut stack = start;
    let mut seen = HashSet::new();
    while let Some(n) = stack.pop() {
        if group.contains(&n) {
            return true;
        }
        let p = position.get(&n).copied().unwrap_or(0);
        if p < range.0 || p > range.1 || !seen.insert(n) {
            continue;
        }
        stack.extend(next(n));
    }
    false
}

/// Adding `candidate` keeps the group convex: no outside path from the candidate into the
/// group, nor from the group into the candidate.
fn stays_convex(
    fg: &FunctionGraph,
    candidate: NodeId,
    group: &HashSet<NodeId>,
    position: &HashMap<NodeId, usize>,
) -> bool {
    // Paths between the candidate and the group run through positions between them.
    let positions: Vec<usize> = group
        .iter()
        .chain([&candidate])
        .map(|n| position[n])
        .collect();
    let range = (
        positions.iter().copied().min().unwrap_or(0),
        positions.iter().copied().max().unwrap_or(0),
    );
    let outside_clients: Vec<NodeId> = client_nodes(fg, candidate)
        .into_iter()
        .filter(|c| !group.contains(c))
        .collect();
    let outside_producers: Vec<NodeId> = producer_nodes(fg, candidate)
        .into_iter()
        .filter(|p| !group.contains(p))
        .collect();
    !reaches(outside_clients, group, position, range, |n| {
        client_nodes(fg, n)
    }) && !reaches(outside_producers, group, position, range, |n| {
        producer_nodes(fg, n)
    })
}

/// Fuses Elemwise groups into Composite nodes; returns the number of composites made.
pub fn fuse_elemwise(fg: &mut FunctionGraph) -> Result<usize, GraphError> {
    let order = fg.toposort();
    let position: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut assigned: HashSet<NodeId> = HashSet::new();
    let mut groups: Vec<Vec<NodeId>> = Vec::new();
    for &root in order.iter().rev() {
        if !is_elemwise(fg, root) || assigned.contains(&root) {
            continue;
        }
        let Some(root_out) = fg.node(root).map(|e| e.outputs[0]) else {
            continue;
        };
        let pattern = broadcast_pattern(fg, root_out);
        let mut group: HashSet<NodeId> = HashSet::from([root]);
        let mut work = vec![root];
        while let Some(n) = work.pop() {
            for p in producer_nodes(fg, n) {
                if group.len() >= MAX_GROUP
                    || group.contains(&p)
                    || assigned.contains(&p)
                    || !is_elemwise(fg, p)
                {
                    continue;
                }
                let p_out = fg.node(p).map(|e| e.outputs[0]);
                if p_out.map(|o| broadcast_pattern(fg, o)) != Some(pattern.clone())
                    || !stays_convex(fg, p, &group, &position)
                {
                    continue;
                }
                group.insert(p);
                work.push(p);
            }
        }
        assigned.extend(group.iter().copied());
        if group.len() > 1 {
            let mut members: Vec<NodeId> = group.into_iter().collect();
            members.sort_by_key(|n| position[n]);
            groups.push(members);
        }
    }
    dissolve_cyclic_groups(fg, &order, &mut groups);
    for members in &groups {
        fuse_group(fg, members)?;
    }
    Ok(groups.len())
}

/// Drops groups until contracting each remaining group into one node leaves the graph
/// acyclic. Each group is convex on its own, but two groups can still depend on each
/// other through outside nodes (A feeds a softmax that feeds B, and B one that feeds A).
/// The group formed last among those left on a cycle is dissolved (its nodes stay
/// unfused), and the check repeats.
fn dissolve_cyclic_groups(fg: &FunctionGraph, order: &[NodeId], groups: &mut Vec<Vec<NodeId>>) {
    loop {
        // One unit per group, and one per node outside every group.
        let mut unit: HashMap<NodeId, usize> = order
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, groups.len() + i))
            .collect();
        for (g, members) in groups.iter().enumerate() {
            unit.extend(members.iter().map(|m| (*m, g)));
        }
        let units = groups.len() + order.len();
        let mut edges: Vec<HashSet<usize>> = vec![HashSet::new(); units];
        for n in order {
            for p in producer_nodes(fg, *n) {
                let (from, to) = (unit[&p], unit[n]);
                if from != to {
                    edges[from].insert(to);
                }
            }
        }
        let on_cycles = units_on_cycles(&edges);
        match (0..groups.len()).rev().find(|g| on_cycles[*g]) {
            Some(g) => {
                groups.remove(g);
            }
            None => return,
        }
    }
}

/// Units that lie on a cycle or between two cycles of the graph `edges` (what remains
/// after repeatedly removing units without predecessors, then units without successors).
fn units_on_cycles(edges: &[HashSet<usize>]) -> Vec<bool> {
    let n = edges.len();
    let mut indegree = vec![0usize; n];
    for targets in edges {
        for t in targets {
            indegree[*t] += 1;
        }
    }
    let mut left = vec![true; n];
    let mut ready: Vec<usize> = (0..n).filter(|u| indegree[*u] == 0).collect();
    while let Some(u) = ready.pop() {
        left[u] = false;
        for t in &edges[u] {
            indegree[*t] -= 1;
            if indegree[*t] == 0 {
                ready.push(*t);
            }
        }
    }
    let mut outdegree: Vec<usize> = (0..n)
        .map(|u| edges[u].iter().filter(|t| left[**t]).count())
        .collect();
    let mut sources: Vec<Vec<usize>> = vec![Vec::new(); n];
    for u in (0..n).filter(|u| left[*u]) {
        for t in edges[u].iter().filter(|t| left[**t]) {
            sources[*t].push(u);
        }
    }
    let mut done: Vec<usize> = (0..n).filter(|u| left[*u] && outdegree[*u] == 0).collect();
    while let Some(u) = done.pop() {
        left[u] = false;
        for s in &sources[u] {
            outdegree[*s] -= 1;
            if outdegree[*s] == 0 && left[*s] {
                done.push(*s);
            }
        }
    }
    left
}

/// A constant of one element used inside a composite becomes a literal.
fn literal_of(fg: &FunctionGraph, var: VarId) -> Option<ScalarRef> {
    match &fg.var(var).origin {
        Origin::Constant(d) if d.len() == 1 => d.item().map(|l| ScalarRef::Const(l, d.dtype())),
        _ => None,
    }
}

fn fuse_group(fg: &mut FunctionGraph, members: &[NodeId]) -> Result<(), GraphError> {
    let member_set: HashSet<NodeId> = members.iter().copied().collect();
    let mut node_index: HashMap<VarId, usize> = HashMap::new();
    let mut inputs: Vec<VarId> = Vec::new();
    let mut scalar_nodes = Vec::with_capacity(members.len());
    let mut exported: Vec<(VarId, usize)> = Vec::new();
    for (k, m) in members.iter().enumerate() {
        let e = fg
            .node(*m)
            .ok_or_else(|| GraphError::Internal("fusing a removed node".into()))?;
        let Op::Elemwise(op) = e.op else {
            return Err(GraphError::Internal("fusing a non-Elemwise node".into()));
        };
        let args = e
            .inputs
            .iter()
            .map(|x| {
                if let Some(j) = node_index.get(x) {
                    ScalarRef::Node(*j)
                } else if let Some(lit) = literal_of(fg, *x) {
                    lit
                } else {
                    let i = inputs.iter().position(|v| v == x).unwrap_or_else(|| {
                        inputs.push(*x);
                        inputs.len() - 1
                    });
                    ScalarRef::Input(i)
                }
            })
            .collect();
        scalar_nodes.push((op, args));
        let out = e.outputs[0];
        node_index.insert(out, k);
        let used_outside = fg.clients(out).any(|c| match c {
            Client::Node { node, .. } => !member_set.contains(node),
            Client::Output(_) => true,
        });
        if used_outside {
            exported.push((out, k));
        }
    }
    let input_dtypes = inputs.iter().map(|v| fg.var(*v).ty.dtype).collect();
    let outputs = exported.iter().map(|(_, k)| ScalarRef::Node(*k)).collect();
    let composite = Composite::new(input_dtypes, scalar_nodes, outputs)?;
    let new_outputs = fg.add_node(Op::Composite(Arc::new(composite)), inputs)?;
    for ((old, _), new) in exported.iter().zip(new_outputs) {
        fg.replace(*old, new)?;
    }
    Ok(())
}

/// A one-output composite computing the Elemwise or Composite node `node`.
fn body_of(fg: &FunctionGraph, node: NodeId) -> Option<Arc<Composite>> {
    let e = fg.node(node)?;
    match &e.op {
        Op::Composite(c) if c.outputs.len() == 1 => Some(c.clone()),
        Op::Elemwise(op) => {
            let dtypes = e.inputs.iter().map(|x| fg.var(*x).ty.dtype).collect();
            let args = (0..e.inputs.len()).map(ScalarRef::Input).collect();
            Composite::new(dtypes, vec![(*op, args)], vec![ScalarRef::Node(0)])
                .ok()
                .map(Arc::new)
        }
        _ => None,
    }
}

/// reduce(elementwise(inputs)) → FusedReduce(inputs); when the element-wise result has other
/// uses, the fused node keeps it as a second output (computed in the same pass); returns
/// the number of fused reductions.
pub fn fuse_reductions(fg: &mut FunctionGraph) -> Result<usize, GraphError> {
    let mut fused = 0;
    for node in fg.toposort() {
        let Some(e) = fg.node(node) else { continue };
        let Op::Reduce { kind, axes } = &e.op else {
            continue;
        };
        let (kind, axes, x, out) = (*kind, axes.clone(), e.inputs[0], e.outputs[0]);
        // Values used elsewhere too are kept as a second output: one pass computes both.
        let keep = !single_client(fg, x);
        let Some((p, 0)) = producer(fg, x) else {
            continue;
        };
        let Some((p_node, _)) = fg.owner(x) else {
            continue;
        };
        let p_inputs = p.inputs.clone();
        let Some(body) = body_of(fg, p_node) else {
            continue;
        };
        let op = Op::FusedReduce {
            kind,
            axes,
            body,
            keep,
        };
        let new = fg.add_node(op, p_inputs)?;
        fg.replace(out, new[0])?;
        if keep {
            fg.replace(x, new[1])?;
        }
        fused += 1;
    }
    Ok(fused)
}

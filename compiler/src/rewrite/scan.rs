//! Rewrites of Scan (DESIGN §8, issue 18): traces nobody reads are not stored
//! (`scan_drop_unused_traces`: O(1) memory in the number of steps); body computations that
//! read only non-sequences and constants move before the loop (`scan_hoist_invariants`);
//! element-wise body computations that read only a sequence's current element (and
//! constants) run before the loop as one pass over the whole sequence
//! (`scan_push_out_sequences`, PyTensor's push-out; a sequence the body no longer reads is
//! then dropped), which the other rewrites then fold or vectorize. The body itself is
//! rewritten and fused by the pipeline afterwards.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tensorlift_ir::ops::{DimShuffle, InnerGraph, Scan};
use tensorlift_ir::{FunctionGraph, GraphError, NodeId, Op, Origin, TensorType, Var, VarId};

use super::{Rule, RuleKind};

pub const RULES: [Rule; 3] = [
    Rule {
        name: "scan_drop_unused_traces",
        tag: "canonicalize",
        kind: RuleKind::Global(drop_unused_traces),
    },
    Rule {
        name: "scan_hoist_invariants",
        tag: "canonicalize",
        kind: RuleKind::Global(hoist_invariants),
    },
    Rule {
        name: "scan_push_out_sequences",
        tag: "canonicalize",
        kind: RuleKind::Global(push_out_sequences),
    },
];

/// The scan nodes of `fg`, in order.
fn scans(fg: &FunctionGraph) -> Vec<(NodeId, Arc<Scan>)> {
    fg.toposort()
        .into_iter()
        .filter_map(|n| match &fg.node(n)?.op {
            Op::Scan(s) => Some((n, s.clone())),
            _ => None,
        })
        .collect()
}

/// Replaces scan node `node` by `op` applied to `inputs`, output for output.
fn replace_scan(
    fg: &mut FunctionGraph,
    node: NodeId,
    op: Scan,
    inputs: Vec<VarId>,
) -> Result<(), GraphError> {
    let outputs = fg
        .node(node)
        .ok_or_else(|| GraphError::Internal("a scan vanished".into()))?
        .outputs
        .clone();
    let new = fg.add_node(Op::Scan(Arc::new(op)), inputs)?;
    for (old, new) in outputs.into_iter().zip(new) {
        fg.replace(old, new)?;
    }
    Ok(())
}

/// The scan with the traces nobody reads (among the node's `outputs`) turned off, if any.
fn without_unused_traces(fg: &FunctionGraph, scan: &Scan, outputs: &[VarId]) -> Option<Scan> {
    let mut op = scan.clone();
    let mut changed = false;
    for k in 0..scan.n_states() {
        if op.keep_trace[k] && fg.clients(outputs[2 * k + 1]).len() == 0 {
            op.keep_trace[k] = false;
            changed = true;
        }
    }
    changed.then_some(op)
}

/// Stops storing every trace no one reads.
pub fn drop_unused_traces(fg: &mut FunctionGraph) -> Result<usize, GraphError> {
    let mut count = 0;
    for (node, scan) in scans(fg) {
        let Some(e) = fg.node(node) else { continue };
        if let Some(op) = without_unused_traces(fg, &scan, &e.outputs) {
            let inputs = e.inputs.clone();
            replace_scan(fg, node, op, inputs)?;
            count += 1;
        }
    }
    // The same in a Blockwise of a scan (vectorize's form of a while-scan whose stop
    // depends on the batch): an unused trace of run-time length per element would also
    // make the batch's core shapes disagree.
    for node in fg.toposort() {
        let Some(e) = fg.node(node) else { continue };
        let Op::Blockwise(bw) = &e.op else { continue };
        let Op::Scan(scan) = &bw.core else { continue };
        if let Some(op) = without_unused_traces(fg, scan, &e.outputs) {
            let (inputs, outputs) = (e.inputs.clone(), e.outputs.clone());
            let mut new = (**bw).clone();
            new.core = Op::Scan(std::sync::Arc::new(op));
            let new_outputs = fg.add_node(Op::Blockwise(std::sync::Arc::new(new)), inputs)?;
            for (old, new) in outputs.into_iter().zip(new_outputs) {
                if fg.clients(old).len() > 0 {
                    fg.replace(old, new)?;
                }
            }
            count += 1;
        }
    }
    Ok(count)
}

/// A body rebuilt: its inputs but those at `drop` (which nothing may read any longer),
/// with new ones standing for the values of `moved` (body variables computed outside from
/// now on) inserted before input `insert_at`; its nodes but those no output needs any
/// longer.
fn rebuild_body(
    body: &FunctionGraph,
    moved: &[VarId],
    insert_at: usize,
    drop: &[usize],
) -> Result<(FunctionGraph, Vec<VarId>), GraphError> {
    let mut vars: HashMap<VarId, Var> = HashMap::new();
    let mut inputs = Vec::new();
    for (k, x) in body.inputs().iter().enumerate() {
        let v = Var::input(&format!("*{k}"), body.var(*x).ty.clone());
        vars.insert(*x, v.clone());
        inputs.push(v);
    }
    let mut new_inputs = Vec::new();
    for (j, x) in moved.iter().enumerate() {
        let v = Var::input(&format!("*moved{j}"), body.var(*x).ty.clone());
        vars.insert(*x, v.clone());
        new_inputs.push(v);
    }
    inputs.splice(insert_at..insert_at, new_inputs);
    // The nodes the outputs still need, given the inputs and moved values.
    let order = body.toposort();
    let mut needed: HashSet<VarId> = body.outputs().iter().copied().collect();
    let mut keep = HashSet::new();
    for n in order.iter().rev() {
        let Some(e) = body.node(*n) else { continue };
        if e.outputs
            .iter()
            .any(|o| needed.contains(o) && !vars.contains_key(o))
        {
            keep.insert(*n);
            needed.extend(e.inputs.iter().copied());
        }
    }
    for n in order {
        let Some(e) = body.node(n) else { continue };
        if !keep.contains(&n) {
            continue;
        }
        let mut args = Vec::with_capacity(e.inputs.len());
        for x in &e.inputs {
            let v = match (vars.get(x), &body.var(*x).origin) {
                (Some(v), _) => v.clone(),
                (None, Origin::Constant(d)) => tensorlift_ir::constant(d.clone()),
                (None, _) => return Err(GraphError::Internal("a body value is missing".into())),
            };
            args.push(v);
        }
        let outs = Var::apply(e.op.clone(), args)?;
        for (o, v) in e.outputs.iter().zip(outs) {
            vars.insert(*o, v);
        }
    }
    let outputs = body
        .outputs()
        .iter()
        .map(|o| match (vars.get(o), &body.var(*o).origin) {
            (Some(v), _) => Ok(v.clone()),
            (None, Origin::Constant(d)) => Ok(tensorlift_ir::constant(d.clone())),
            (None, _) => Err(GraphError::Internal("a body output is missing".into())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Dropped inputs come before the insertion point: their positions are unchanged.
    let kept: Vec<Var> = inputs
        .into_iter()
        .enumerate()
        .filter(|(k, _)| !(drop.contains(k) && *k < insert_at))
        .map(|(_, v)| v)
        .collect();
    let rebuilt = FunctionGraph::new(&kept, &outputs)?;
    Ok((rebuilt, moved.to_vec()))
}

/// The body input positions of the slices of sequences `which` (each read at one tap).
fn slice_positions(scan: &Scan, which: &[usize]) -> Vec<usize> {
    let mut at = 0;
    let mut positions = Vec::new();
    for (s, taps) in scan.sequence_taps.iter().enumerate() {
        if which.contains(&s) {
            positions.push(at);
        }
        at += taps.len();
    }
    positions
}

/// The body variables a moved computation must hand to the loop: values of `moved_nodes`
/// read by a node staying in the body or by the body's outputs.
fn handed_over(body: &FunctionGraph, moved_nodes: &HashSet<NodeId>) -> Vec<VarId> {
    let mut out = Vec::new();
    for n in moved_nodes.iter().copied().collect::<Vec<_>>().iter() {
        let Some(e) = body.node(*n) else { continue };
        for o in &e.outputs {
            let read = body.clients(*o).any(|c| match c {
                tensorlift_ir::Client::Node { node, .. } => !moved_nodes.contains(node),
                tensorlift_ir::Client::Output(_) => true,
            });
            if read && !out.contains(o) {
                out.push(*o);
            }
        }
    }
    out.sort_by_key(|v| v.0);
    out
}

/// Copies the body nodes `moved` (in order) into `fg`, their body inputs read from
/// `outer` (body input → outer variable); returns each body variable's outer one.
fn copy_out(
    fg: &mut FunctionGraph,
    body: &FunctionGraph,
    order: &[NodeId],
    mut outer: HashMap<VarId, VarId>,
    wrap: impl Fn(&mut FunctionGraph, &Op, Vec<VarId>) -> Result<Vec<VarId>, GraphError>,
) -> Result<HashMap<VarId, VarId>, GraphError> {
    for n in order {
        let Some(e) = body.node(*n) else { continue };
        let mut args = Vec::with_capacity(e.inputs.len());
        for x in &e.inputs {
            let v = match (outer.get(x), &body.var(*x).origin) {
                (Some(v), _) => *v,
                (None, Origin::Constant(d)) => fg.add_constant(d.clone()),
                (None, _) => return Err(GraphError::Internal("a moved value is missing".into())),
            };
            args.push(v);
        }
        let outs = wrap(fg, &e.op, args)?;
        for (o, v) in e.outputs.iter().zip(outs) {
            outer.insert(*o, v);
        }
    }
    Ok(outer)
}

/// Body variables computed from constants alone (a constant broadcast by a DimShuffle,
/// say), and the nodes computing them.
fn constant_like(body: &FunctionGraph) -> (HashSet<VarId>, HashSet<NodeId>) {
    let (mut vars, mut nodes) = (HashSet::new(), HashSet::new());
    for n in body.toposort() {
        let Some(e) = body.node(n) else { continue };
        let constant = e
            .inputs
            .iter()
            .all(|x| vars.contains(x) || matches!(body.var(*x).origin, Origin::Constant(_)));
        if constant && e.op.inner_graphs().is_empty() {
            vars.extend(e.outputs.iter().copied());
            nodes.insert(n);
        }
    }
    (vars, nodes)
}

/// `moved` nodes with the constant-like nodes they read, in body order.
fn with_constant_feeders(
    body: &FunctionGraph,
    moved: &HashSet<NodeId>,
    constant_nodes: &HashSet<NodeId>,
) -> Vec<NodeId> {
    let mut wanted: HashSet<NodeId> = moved.clone();
    let order = body.toposort();
    for n in order.iter().rev() {
        if !wanted.contains(n) {
            continue;
        }
        let Some(e) = body.node(*n) else { continue };
        for x in &e.inputs {
            if let Origin::Node { node, .. } = body.var(*x).origin {
                if constant_nodes.contains(&node) {
                    wanted.insert(node);
                }
            }
        }
    }
    order.into_iter().filter(|n| wanted.contains(n)).collect()
}

/// Moves body computations that read only non-sequences and constants before the loop:
/// computed once, passed in as new non-sequences.
pub fn hoist_invariants(fg: &mut FunctionGraph) -> Result<usize, GraphError> {
    let mut count = 0;
    for (node, scan) in scans(fg) {
        let Some(e) = fg.node(node).cloned() else {
            continue;
        };
        let body = scan.body.graph();
        let n_taps = body.inputs().len() - scan.n_non_sequences;
        let (constants, constant_nodes) = constant_like(body);
        let mut invariant: HashSet<VarId> = body.inputs()[n_taps..].iter().copied().collect();
        let mut moved: HashSet<NodeId> = HashSet::new();
        for n in body.toposort() {
            let Some(be) = body.node(n) else { continue };
            let reads_only_invariants = be.inputs.iter().all(|x| {
                invariant.contains(x)
                    || constants.contains(x)
                    || matches!(body.var(*x).origin, Origin::Constant(_))
            });
            // Constant-only nodes are folded by the pipeline; a node is hoisted when it
            // reads at least one invariant.
            let reads_invariant = be.inputs.iter().any(|x| invariant.contains(x));
            if reads_only_invariants && reads_invariant && be.op.inner_graphs().is_empty() {
                invariant.extend(be.outputs.iter().copied());
                moved.insert(n);
            }
        }
        if moved.is_empty() {
            continue;
        }
        let order = with_constant_feeders(body, &moved, &constant_nodes);
        let outer: HashMap<VarId, VarId> = body.inputs()[n_taps..]
            .iter()
            .zip(&e.inputs[scan.first_non_sequence()..])
            .map(|(b, o)| (*b, *o))
            .collect();
        let outer = copy_out(fg, body, &order, outer, |fg, op, args| {
            fg.add_node(op.clone(), args)
        })?;
        let handed = handed_over(body, &moved);
        let (new_body, handed) = rebuild_body(body, &handed, body.inputs().len(), &[])?;
        let mut op = (*scan).clone();
        op.body = InnerGraph::new(new_body);
        op.n_non_sequences += handed.len();
        let mut inputs = e.inputs.clone();
        for v in &handed {
            inputs.push(
                *outer
                    .get(v)
                    .ok_or_else(|| GraphError::Internal("a hoisted value is missing".into()))?,
            );
        }
        replace_scan(fg, node, op, inputs)?;
        count += 1;
    }
    Ok(count)
}

/// Runs element-wise body computations of one sequence's current element (and constants)
/// before the loop, as one pass over the whole sequence: their results become new
/// sequences. Not for while-scans (the loop may stop long before the sequence ends).
pub fn push_out_sequences(fg: &mut FunctionGraph) -> Result<usize, GraphError> {
    let mut count = 0;
    for (node, scan) in scans(fg) {
        if scan.until {
            continue;
        }
        let Some(e) = fg.node(node).cloned() else {
            continue;
        };
        let body = scan.body.graph();
        // Body inputs that are the whole current element of a sequence read at one tap.
        let mut slices: HashMap<VarId, usize> = HashMap::new();
        let mut at = 0;
        for (s, taps) in scan.sequence_taps.iter().enumerate() {
            if taps == &[0] {
                slices.insert(body.inputs()[at], s);
            }
            at += taps.len();
        }
        // Per moved variable: the sequence whose rows it follows.
        let (constants, constant_nodes) = constant_like(body);
        let mut per_row: HashMap<VarId, usize> = slices.clone();
        let mut moved: HashSet<NodeId> = HashSet::new();
        for n in body.toposort() {
            let Some(be) = body.node(n) else { continue };
            if !matches!(be.op, Op::Elemwise(_) | Op::Composite(_)) {
                continue;
            }
            let rows: HashSet<usize> = be
                .inputs
                .iter()
                .filter_map(|x| per_row.get(x))
                .copied()
                .collect();
            let others_constant = be.inputs.iter().all(|x| {
                per_row.contains_key(x)
                    || constants.contains(x)
                    || matches!(body.var(*x).origin, Origin::Constant(_))
            });
            if let (1, true) = (rows.len(), others_constant) {
                let s = rows.into_iter().next().unwrap_or(0);
                for o in &be.outputs {
                    per_row.insert(*o, s);
                }
                moved.insert(n);
            }
        }
        if moved.is_empty() {
            continue;
        }
        let order = with_constant_feeders(body, &moved, &constant_nodes);
        // Outside: each slice is its whole sequence; constants gain a leading broadcast
        // dimension so the element-wise op spans the rows.
        let outer: HashMap<VarId, VarId> = slices
            .iter()
            .map(|(b, s)| (*b, e.inputs[scan.first_sequence() + s]))
            .collect();
        let outer = copy_out(fg, body, &order, outer, |fg, op, args| {
            let rank = args.iter().map(|a| fg.var(*a).ty.ndim()).max().unwrap_or(0);
            let mut lifted = Vec::with_capacity(args.len());
            for a in args {
                let ty: &TensorType = &fg.var(a).ty;
                if ty.ndim() == rank {
                    lifted.push(a);
                } else {
                    let ds = DimShuffle {
                        input_ndim: ty.ndim(),
                        new_order: std::iter::once(None)
                            .chain((0..ty.ndim()).map(Some))
                            .collect(),
                    };
                    lifted.push(fg.add_node(Op::DimShuffle(ds), vec![a])?[0]);
                }
            }
            fg.add_node(op.clone(), lifted)
        })?;
        let handed = handed_over(body, &moved);
        // The new sequences' slices follow the old ones among the body's inputs.
        let n_slices: usize = scan.sequence_taps.iter().map(Vec::len).sum();
        let (new_body, handed) = rebuild_body(body, &handed, n_slices, &[])?;
        // A sequence whose element nothing in the body reads any longer is dropped when a
        // pushed-out sequence follows its rows (the same length: the step count stands).
        let mut dead: Vec<usize> = Vec::new();
        let mut slice_at = 0;
        for (s, taps) in scan.sequence_taps.iter().enumerate() {
            let unread = new_body.clients(new_body.inputs()[slice_at]).len() == 0;
            let followed = handed.iter().any(|v| per_row.get(v) == Some(&s));
            if taps == &[0] && unread && followed {
                dead.push(s);
            }
            slice_at += taps.len();
        }
        let (new_body, handed) = if dead.is_empty() {
            (new_body, handed)
        } else {
            // Sequences read at one tap: their slice index is their position.
            let moved = handed_over(body, &moved);
            rebuild_body(body, &moved, n_slices, &slice_positions(&scan, &dead))?
        };
        let mut op = (*scan).clone();
        op.sequence_taps = op
            .sequence_taps
            .iter()
            .enumerate()
            .filter(|(s, _)| !dead.contains(s))
            .map(|(_, t)| t.clone())
            .collect();
        op.sequence_taps
            .extend(std::iter::repeat_n(vec![0], handed.len()));
        let mut inputs: Vec<VarId> = e.inputs[..scan.first_sequence()].to_vec();
        inputs.extend(
            (0..scan.n_sequences())
                .filter(|s| !dead.contains(s))
                .map(|s| e.inputs[scan.first_sequence() + s]),
        );
        for v in &handed {
            inputs.push(
                *outer
                    .get(v)
                    .ok_or_else(|| GraphError::Internal("a pushed-out value is missing".into()))?,
            );
        }
        inputs.extend(&e.inputs[scan.first_state()..]);
        op.body = InnerGraph::new(new_body);
        replace_scan(fg, node, op, inputs)?;
        count += 1;
    }
    Ok(count)
}

//! `vectorize_graph`: a graph rebuilt for inputs with extra leading batch dimensions, one
//! rule per op family: element-wise ops (unbatched operands get broadcastable batch
//! dimensions), reductions, arg-reductions and running sums along shifted axes,
//! DimShuffle, softmax, checks, basic indexing and region writes with unbatched indices,
//! Split, products (vector forms directly, matrices as a Blockwise matmul), Alloc and
//! Reshape with unbatched sizes, Join (shared pieces spread over the batch), OpFromGraph
//! (its inner graph vectorized), IfElse (branches vectorized; a batched condition turns
//! it into a `switch`, which runs both branches), Scan (one scan of a batched body; a
//! batched step count or stop condition falls back), linear-algebra ops (Blockwise).
//! Every other op becomes a Blockwise with all its dimensions core. Batch dimensions
//! broadcast only where statically 1 (DESIGN §3).

use std::collections::HashMap;

use crate::error::{GraphError, Result};
use crate::ops::{Blockwise, DimShuffle, IndexSlot, Op, Signature};
use crate::var::{postorder, Var, VarKind};

/// `outputs` rebuilt with each `replace` pair's first variable replaced by the second,
/// which has the same core shape with extra leading (batch) dimensions; every node that
/// reads a batched value is rebuilt batched. Unbatched parts are left as they are.
///
/// ```
/// use tensorlift_ir::{matrix, vector, vectorize_graph, DType};
/// let (x, xs) = (vector("x", DType::Float64), matrix("xs", DType::Float64));
/// let y = (x.exp() * 2.0).sum(None);
/// let batched = vectorize_graph(&[&y], &[(&x, &xs)]).unwrap();
/// assert_eq!(batched[0].ndim(), 1);
/// ```
pub fn vectorize_graph(outputs: &[&Var], replace: &[(&Var, &Var)]) -> Result<Vec<Var>> {
    // Per original value: its rebuilt version and how many batch dimensions it has (0:
    // rebuilt on batched values, but the same for every element, as a core shape).
    let mut batched: HashMap<(usize, usize), (Var, usize)> = HashMap::new();
    for (old, new) in replace {
        old.check()?;
        new.check()?;
        let extra = new.ndim().checked_sub(old.ndim()).ok_or_else(|| {
            GraphError::op(
                "vectorize_graph",
                format!(
                    "{} ({}) replaces {} ({}): it must have the same core dimensions plus \
                     leading batch ones",
                    new.label(),
                    new.ty(),
                    old.label(),
                    old.ty()
                ),
            )
        })?;
        if new.dtype() != old.dtype() {
            return Err(GraphError::op(
                "vectorize_graph",
                format!(
                    "{} is {}, but it replaces {} of dtype {}",
                    new.label(),
                    new.ty(),
                    old.label(),
                    old.dtype()
                ),
            ));
        }
        batched.insert(old.value_key(), ((*new).clone(), extra));
    }
    let roots: Vec<Var> = outputs.iter().map(|v| (*v).clone()).collect();
    for v in postorder(&roots) {
        if batched.contains_key(&v.value_key()) {
            continue;
        }
        let VarKind::Output { node, .. } = v.kind() else {
            continue;
        };
        let ins: Vec<Option<(Var, usize)>> = node
            .inputs
            .iter()
            .map(|i| batched.get(&i.value_key()).cloned())
            .collect();
        let b = ins.iter().flatten().map(|(_, n)| *n).max().unwrap_or(0);
        if b == 0 {
            // Inputs rebuilt but unbatched (a core shape): the node on them as it was.
            if ins.iter().any(Option::is_some) {
                let args: Vec<Var> = node
                    .inputs
                    .iter()
                    .zip(&ins)
                    .map(|(x, bx)| bx.as_ref().map_or_else(|| x.clone(), |(v, _)| v.clone()))
                    .collect();
                for (k, out) in Var::apply(node.op.clone(), args)?.into_iter().enumerate() {
                    let key = Var::from_node_output(node.clone(), k).value_key();
                    batched.insert(key, (out, 0));
                }
            }
            continue;
        }
        if let Op::Shape = node.op {
            // The core shape: the batched shape without its batch sizes (the same for
            // every element), itself unbatched.
            let x = with_batch(&node.inputs[0], &ins[0], b);
            let core = x.shape().get(vec![crate::api::index::Idx::slice(
                Some((b as i64).into()),
                None,
                None,
            )]);
            batched.insert(v.value_key(), (core, 0));
            continue;
        }
        let outs = batch_node(&node.op, &node.inputs, &ins, b)?;
        for (k, out) in outs.into_iter().enumerate() {
            let original = Var::from_node_output(node.clone(), k);
            // Core sizes the original knows and a rule lost (a shape computed from the
            // batch sizes, say) are asserted back.
            let core = original.static_shape();
            let lost = out.ndim() == b + core.len()
                && core
                    .iter()
                    .zip(&out.static_shape()[b..])
                    .any(|(c, o)| c.is_some() && o.is_none());
            let out = if lost {
                let mut spec = out.static_shape()[..b].to_vec();
                spec.extend(core.iter().copied());
                out.specify_shape(&spec)
            } else {
                out
            };
            batched.insert(original.value_key(), (out, b));
        }
    }
    Ok(outputs
        .iter()
        .map(|v| match batched.get(&v.value_key()) {
            Some((b, _)) => b.clone(),
            None => (*v).clone(),
        })
        .collect())
}

/// `x` with `b` leading batch dimensions: its batched version padded on the left with
/// broadcastable ones, or (unbatched) `b` broadcastable dimensions in front.
fn with_batch(x: &Var, batched: &Option<(Var, usize)>, b: usize) -> Var {
    let (v, have) = match batched {
        Some((v, n)) => (v.clone(), *n),
        None => (x.clone(), 0),
    };
    if have == b {
        return v;
    }
    let mut order: Vec<Option<usize>> = vec![None; b - have];
    order.extend((0..v.ndim()).map(Some));
    v.dimshuffle(&order)
}

/// The node `op(inputs)` rebuilt on batched inputs (`b` batch dimensions).
fn batch_node(op: &Op, inputs: &[Var], ins: &[Option<(Var, usize)>], b: usize) -> Result<Vec<Var>> {
    let unsupported = |why: &str| {
        Err(GraphError::op(
            "vectorize_graph",
            format!("{op} cannot be vectorized yet: {why}"),
        ))
    };
    let all: Vec<Var> = inputs
        .iter()
        .zip(ins)
        .map(|(x, bx)| with_batch(x, bx, b))
        .collect();
    let only_first_batched = ins[1..]
        .iter()
        .all(|i| i.as_ref().is_none_or(|(_, n)| *n == 0));
    // The other inputs as they are (rebuilt when they were, e.g. from a core shape).
    let rest: Vec<Var> = inputs[1..]
        .iter()
        .zip(&ins[1..])
        .map(|(x, bx)| bx.as_ref().map_or_else(|| x.clone(), |(v, _)| v.clone()))
        .collect();
    let first = || all[0].clone();
    let apply = |op: Op, args: Vec<Var>| Var::apply(op, args);
    // For region writes: the indices (inputs after x and y) are unbatched.
    let indices_unbatched = ins
        .get(2..)
        .unwrap_or(&[])
        .iter()
        .all(|i| i.as_ref().is_none_or(|(_, n)| *n == 0));
    match op {
        Op::Elemwise(_) | Op::Composite(_) => apply(op.clone(), all),
        Op::FusedReduce {
            kind,
            axes,
            body,
            keep,
        } => apply(
            Op::FusedReduce {
                kind: *kind,
                axes: axes.iter().map(|a| a + b).collect(),
                body: body.clone(),
                keep: *keep,
            },
            all,
        ),
        Op::DimShuffle(ds) => {
            let mut new_order: Vec<Option<usize>> = (0..b).map(Some).collect();
            new_order.extend(ds.new_order.iter().map(|o| o.map(|d| d + b)));
            let shifted = DimShuffle {
                input_ndim: ds.input_ndim + b,
                new_order,
            };
            apply(Op::DimShuffle(shifted), vec![first()])
        }
        Op::Reduce { kind, axes } => apply(
            Op::Reduce {
                kind: *kind,
                axes: axes.iter().map(|a| a + b).collect(),
            },
            vec![first()],
        ),
        Op::ArgReduce {
            kind,
            axis: Some(a),
        } => apply(
            Op::ArgReduce {
                kind: *kind,
                axis: Some(a + b),
            },
            vec![first()],
        ),
        Op::Cumulative {
            kind,
            axis: Some(a),
        } => apply(
            Op::Cumulative {
                kind: *kind,
                axis: Some(a + b),
            },
            vec![first()],
        ),
        Op::ArgReduce { axis: None, .. } | Op::Cumulative { axis: None, .. } => {
            all_core_blockwise(op, inputs, all)
        }
        Op::Softmax { axis } => apply(Op::Softmax { axis: axis + b }, vec![first()]),
        Op::SpecifyShape(shape) => {
            let mut s = vec![None; b];
            s.extend(shape.iter().copied());
            apply(Op::SpecifyShape(s), vec![first()])
        }
        Op::CheckAndRaise { .. } if only_first_batched => {
            let mut args = vec![first()];
            args.extend(rest);
            apply(op.clone(), args)
        }
        Op::Subtensor(slots) if only_first_batched => {
            let mut shifted = vec![IndexSlot::FULL; b];
            shifted.extend(slots.iter().copied());
            let mut args = vec![first()];
            args.extend(rest);
            apply(Op::Subtensor(shifted), args)
        }
        Op::CheckAndRaise { .. } | Op::Subtensor(_) => all_core_blockwise(op, inputs, all),
        // Handled by the caller (the core shape is unbatched).
        Op::Shape => unsupported("internal: Shape reached the batching rules"),
        Op::Dot if b == 1 => {
            // Matrix-vector forms whose batched operand is a (core) vector: one product
            // of the stacked vectors.
            let batched_one = |k: usize| match &ins[k] {
                Some((v, 1)) => Some(v),
                _ => None,
            };
            // The unbatched operands as rebuilt (or as they were).
            let (a, c) = (
                ins[0].as_ref().map_or(&inputs[0], |(v, _)| v),
                ins[1].as_ref().map_or(&inputs[1], |(v, _)| v),
            );
            match (
                inputs[0].ndim(),
                inputs[1].ndim(),
                batched_one(0),
                batched_one(1),
            ) {
                (1, 2, Some(av), None) | (1, 1, Some(av), None) => Ok(vec![av.dot(c)]),
                (2, 1, None, Some(cv)) => Ok(vec![cv.dot(&a.t())]),
                (1, 1, None, Some(cv)) => Ok(vec![cv.dot(a)]),
                (1, 1, Some(av), Some(cv)) => Ok(vec![(av * cv).sum(-1)]),
                _ => dot_blockwise(inputs, all),
            }
        }
        // The value spread over the batch sizes, then the core sizes (between the two,
        // the dimensions the value lacks).
        Op::Alloc if only_first_batched => {
            let (value, out_ndim) = (first(), rest.len());
            let core = inputs[0].ndim();
            let mut order: Vec<Option<usize>> = (0..b).map(Some).collect();
            order.extend(std::iter::repeat_n(None, out_ndim - core));
            order.extend((b..b + core).map(Some));
            let mut sizes: Vec<crate::api::Operand> =
                (0..b as isize).map(|d| value.shape_i(d).into()).collect();
            sizes.extend(rest.iter().map(|v| v.into()));
            Ok(vec![crate::api::shape::alloc(
                value.dimshuffle(&order),
                &sizes,
            )])
        }
        // The batch sizes in front of the target shape.
        Op::Reshape { .. } if only_first_batched => {
            let x = first();
            let mut parts: Vec<crate::api::Operand> =
                (0..b as isize).map(|d| x.shape_i(d).into()).collect();
            let batch_sizes = crate::api::shape::make_vector(&std::mem::take(&mut parts));
            let shape = crate::api::shape::concatenate(&[batch_sizes, rest[0].clone()], 0);
            Ok(vec![x.reshape_to(&shape)])
        }
        // Unbatched pieces are spread over the batch first (a join does not broadcast).
        Op::Join { axis } => {
            let Some((reference, _)) = ins.iter().flatten().find(|(_, n)| *n == b) else {
                return all_core_blockwise(op, inputs, all);
            };
            let batch_sizes: Vec<crate::api::Operand> = (0..b as isize)
                .map(|d| reference.shape_i(d).into())
                .collect();
            let pieces: Vec<Var> = all
                .iter()
                .map(|p| {
                    let spread = (0..b).any(|d| p.static_shape()[d] == Some(1));
                    if spread {
                        let mut sizes = batch_sizes.clone();
                        sizes.extend((b..p.ndim()).map(|d| p.shape_i(d as isize).into()));
                        crate::api::shape::alloc(p, &sizes)
                    } else {
                        p.clone()
                    }
                })
                .collect();
            Ok(vec![crate::api::shape::concatenate(
                &pieces,
                (axis + b) as isize,
            )])
        }
        Op::Linalg(l) => blockwise(op.clone(), l.signature(), all),
        // A Blockwise would give every element the same stream.
        Op::Random(_) => unsupported(
            "a random draw with batched parameters: draw once with the batch in `size` and \
             batched parameters instead",
        ),
        Op::Sparse(_) => unsupported(
            "a sparse matrix op with batched inputs: sparse matrices have no batch dimensions",
        ),
        Op::Blockwise(bw) => blockwise(bw.core.clone(), bw.signature.clone(), all),
        Op::Dot => dot_blockwise(inputs, all),
        Op::OpFromGraph(g) => {
            // The inner graph vectorized on placeholders of the batched types, as a new
            // op of the same kind (inlined or kept).
            let core: Vec<Var> = inputs
                .iter()
                .enumerate()
                .map(|(k, x)| Var::input(&format!("core{k}"), x.ty().clone()))
                .collect();
            let batched_in: Vec<Var> = inputs
                .iter()
                .zip(ins)
                .enumerate()
                .map(|(k, (x, bx))| {
                    let v = bx.as_ref().map_or(x, |(v, _)| v);
                    Var::input(&format!("batched{k}"), v.ty().clone())
                })
                .collect();
            let inner = crate::grad::pullback::inline(&g.graph, &core)?;
            let pairs: Vec<(&Var, &Var)> = core.iter().zip(&batched_in).collect();
            let outs = vectorize_graph(&inner.iter().collect::<Vec<_>>(), &pairs)?;
            let graph = crate::fgraph::FunctionGraph::new(&batched_in, &outs)?;
            let op = crate::ops::OpFromGraph {
                name: g.name.clone(),
                graph: crate::ops::InnerGraph::new(graph),
                inline: g.inline,
            };
            let args: Vec<Var> = inputs
                .iter()
                .zip(ins)
                .map(|(x, bx)| bx.as_ref().map_or_else(|| x.clone(), |(v, _)| v.clone()))
                .collect();
            Var::apply(Op::OpFromGraph(std::sync::Arc::new(op)), args)
        }
        // Pieces along the shifted axis, sizes unbatched.
        Op::Split { axis, n } if only_first_batched => {
            let mut args = vec![first()];
            args.extend(rest);
            apply(
                Op::Split {
                    axis: axis + b,
                    n: *n,
                },
                args,
            )
        }
        // A region of every element, indices unbatched; the written value spread over
        // the batch when it is not batched itself.
        Op::IncSubtensor { slots, mode } if indices_unbatched => {
            let mut shifted = vec![IndexSlot::FULL; b];
            shifted.extend(slots.iter().copied());
            let args = region_write_args(Op::Subtensor(slots.clone()), inputs, ins, &all, b)?;
            apply(
                Op::IncSubtensor {
                    slots: shifted,
                    mode: *mode,
                },
                args,
            )
        }
        Op::AdvancedIncSubtensor { slots, mode } if indices_unbatched && adjacent_arrays(slots) => {
            let mut shifted = vec![crate::ops::AdvancedSlot::Basic(IndexSlot::FULL); b];
            shifted.extend(slots.iter().copied());
            let region = Op::AdvancedSubtensor(slots.clone());
            let args = region_write_args(region, inputs, ins, &all, b)?;
            apply(
                Op::AdvancedIncSubtensor {
                    slots: shifted,
                    mode: *mode,
                },
                args,
            )
        }
        // Unbatched index arrays next to each other (their result dimensions stay where
        // they are, behind the batch) and slices: the batch indexed by full slices.
        Op::AdvancedSubtensor(slots) if only_first_batched && adjacent_arrays(slots) => {
            let mut shifted = vec![crate::ops::AdvancedSlot::Basic(IndexSlot::FULL); b];
            shifted.extend(slots.iter().copied());
            let mut args = vec![first()];
            args.extend(rest);
            apply(Op::AdvancedSubtensor(shifted), args)
        }
        Op::IfElse(ifelse) => batch_ifelse(ifelse, inputs, ins, b),
        Op::Scan(scan) => match batch_scan(scan, inputs, ins, b)? {
            Some(outs) => Ok(outs),
            None => all_core_blockwise(op, inputs, all),
        },
        // Every other op: Blockwise of the op with all its dimensions core.
        Op::Alloc
        | Op::Reshape { .. }
        | Op::MakeVector(_)
        | Op::Arange(_)
        | Op::Split { .. }
        | Op::IncSubtensor { .. }
        | Op::AdvancedSubtensor(_)
        | Op::AdvancedIncSubtensor { .. }
        | Op::Custom(_)
        | Op::Grad(_) => all_core_blockwise(op, inputs, all),
    }
}

/// A scan on batched values as one scan of a batched body: every state carries the batch
/// (an unbatched initial state is spread over it), batched sequences and initial blocks
/// have the batch moved behind their step axis, traces have it moved back in front.
/// `None` (the caller falls back to Blockwise) when the step count is batched or the
/// stop condition depends on the batch (each element would stop at its own step).
fn batch_scan(
    scan: &crate::ops::Scan,
    inputs: &[Var],
    ins: &[Option<(Var, usize)>],
    b: usize,
) -> Result<Option<Vec<Var>>> {
    if scan.bounded && ins[0].as_ref().is_some_and(|(_, n)| *n > 0) {
        return Ok(None);
    }
    let reference = batch_carrier(ins, b)?;
    let batch_sizes: Vec<crate::api::Operand> = (0..b as isize)
        .map(|d| reference.shape_i(d).into())
        .collect();
    // Moves the batch (leading b dims) behind the first core dimension, and back.
    let behind = |v: &Var| {
        let mut order = vec![Some(b)];
        order.extend((0..b).map(Some));
        order.extend((b + 1..v.ndim()).map(Some));
        v.dimshuffle(&order)
    };
    let in_front = |v: &Var| {
        let mut order: Vec<Option<usize>> = (1..=b).map(Some).collect();
        order.push(Some(0));
        order.extend((b + 1..v.ndim()).map(Some));
        v.dimshuffle(&order)
    };
    let value = |k: usize| ins[k].as_ref().map_or(&inputs[k], |(v, _)| v).clone();
    let batched_in = |k: usize| ins[k].as_ref().is_some_and(|(_, n)| *n > 0);
    let body_types = scan.body.input_types();
    let mut body_in_old: Vec<Var> = Vec::new();
    let mut body_in_new: Vec<Var> = Vec::new();
    let mut outer: Vec<Var> = Vec::new();
    if scan.bounded {
        outer.push(value(0));
    }
    let mut slot = 0;
    let mut placeholder = |batched: bool, outer_core: Option<&Var>| {
        let old = Var::input(&format!("step{slot}"), body_types[slot].clone());
        let new = if batched {
            let mut shape: Vec<Option<usize>> = vec![None; b];
            if let Some(v) = outer_core {
                shape = v.static_shape()[..b].to_vec();
            }
            shape.extend(body_types[slot].shape.iter().copied());
            Var::input(
                &format!("batched{slot}"),
                crate::types::TensorType::new(body_types[slot].dtype, shape),
            )
        } else {
            old.clone()
        };
        slot += 1;
        (old, new)
    };
    for (s, taps) in scan.sequence_taps.iter().enumerate() {
        let k = scan.first_sequence() + s;
        let batched = batched_in(k);
        let seq = if batched {
            behind(&with_batch(&inputs[k], &ins[k], b))
        } else {
            value(k)
        };
        for _ in taps {
            let (old, new) = placeholder(batched, Some(&with_batch(&inputs[k], &ins[k], b)));
            body_in_old.push(old);
            body_in_new.push(new);
        }
        outer.push(seq);
    }
    for (st, taps) in scan.state_taps.iter().enumerate() {
        let k = scan.first_state() + st;
        let init = with_batch(&inputs[k], &ins[k], b);
        let mut sizes = batch_sizes.clone();
        sizes.extend((b..init.ndim()).map(|d| init.shape_i(d as isize).into()));
        let spread = init.broadcast_to(&sizes);
        let block = crate::ops::scan::has_initial_block(taps);
        outer.push(if block {
            behind(&spread)
        } else {
            spread.clone()
        });
        for _ in taps {
            let (old, new) = placeholder(true, Some(&spread));
            body_in_old.push(old);
            body_in_new.push(new);
        }
    }
    for j in 0..scan.n_non_sequences {
        let k = scan.first_non_sequence() + j;
        let batched = batched_in(k);
        let (old, new) = placeholder(batched, Some(&with_batch(&inputs[k], &ins[k], b)));
        body_in_old.push(old);
        body_in_new.push(new);
        outer.push(if batched {
            with_batch(&inputs[k], &ins[k], b)
        } else {
            value(k)
        });
    }
    let body_out = crate::grad::pullback::inline(&scan.body, &body_in_old)?;
    let pairs: Vec<(&Var, &Var)> = body_in_old
        .iter()
        .zip(&body_in_new)
        .filter(|(o, n)| o.ndim() != n.ndim())
        .collect();
    let mut new_out = vectorize_graph(&body_out.iter().collect::<Vec<_>>(), &pairs)?;
    if scan.until {
        let cond = new_out.last().map(Var::ndim);
        if cond != Some(0) {
            return Ok(None);
        }
    }
    // New states that do not read the batch are spread over it (the states carry it).
    let first_state_slot: usize = scan.sequence_taps.iter().map(Vec::len).sum();
    let state_ref = body_in_new.get(first_state_slot).cloned();
    for k in 0..scan.n_states() {
        let core = body_out[k].ndim();
        if new_out[k].ndim() < b + core {
            let Some(r) = &state_ref else {
                return Ok(None);
            };
            let padded = with_batch(&new_out[k], &None, b);
            let mut sizes: Vec<crate::api::Operand> =
                (0..b as isize).map(|d| r.shape_i(d).into()).collect();
            sizes.extend((b..b + core).map(|d| padded.shape_i(d as isize).into()));
            new_out[k] = padded.broadcast_to(&sizes);
        }
    }
    let body = crate::fgraph::FunctionGraph::new(&body_in_new, &new_out)?;
    let mut batched_scan = scan.clone();
    batched_scan.body = crate::ops::InnerGraph::new(body);
    let outs = Var::apply(Op::Scan(std::sync::Arc::new(batched_scan)), outer)?;
    Ok(Some(
        outs.iter()
            .enumerate()
            .map(|(i, v)| if i % 2 == 1 { in_front(v) } else { v.clone() })
            .collect(),
    ))
}

/// An IfElse on batched values: both branches vectorized; with an unbatched condition
/// still a lazy IfElse (a branch whose result is unbatched is spread over the batch),
/// with a batched one a `switch` per element (both branches then run).
fn batch_ifelse(
    ifelse: &crate::ops::IfElse,
    inputs: &[Var],
    ins: &[Option<(Var, usize)>],
    b: usize,
) -> Result<Vec<Var>> {
    let pairs: Vec<(&Var, &Var)> = inputs[1..]
        .iter()
        .zip(&ins[1..])
        .filter_map(|(x, bx)| bx.as_ref().map(|(v, _)| (x, v)))
        .collect();
    let branch = |g: &crate::ops::InnerGraph| -> Result<Vec<Var>> {
        let outs = crate::grad::pullback::inline(g, &inputs[1..])?;
        vectorize_graph(&outs.iter().collect::<Vec<_>>(), &pairs)
    };
    let (then_outs, else_outs) = (branch(&ifelse.then_branch)?, branch(&ifelse.else_branch)?);
    // The batch sizes, from an input carrying all of them.
    let reference = batch_carrier(ins, b)?;
    let core_ranks: Vec<usize> = ifelse
        .then_branch
        .output_types()
        .iter()
        .map(|t| t.ndim())
        .collect();
    let spread = |v: &Var, core: usize| -> Var {
        if v.ndim() == b + core {
            return v.clone();
        }
        let padded = with_batch(v, &Some((v.clone(), v.ndim() - core)), b);
        let mut sizes: Vec<crate::api::Operand> = (0..b as isize)
            .map(|d| reference.shape_i(d).into())
            .collect();
        sizes.extend((b..b + core).map(|d| padded.shape_i(d as isize).into()));
        padded.broadcast_to(&sizes)
    };
    let then_b: Vec<Var> = then_outs
        .iter()
        .zip(&core_ranks)
        .map(|(v, c)| spread(v, *c))
        .collect();
    let else_b: Vec<Var> = else_outs
        .iter()
        .zip(&core_ranks)
        .map(|(v, c)| spread(v, *c))
        .collect();
    match &ins[0] {
        Some((cond, n)) if *n > 0 => Ok(then_b
            .iter()
            .zip(&else_b)
            .zip(&core_ranks)
            .map(|((t, e), core)| {
                let c = with_batch(&inputs[0], &Some((cond.clone(), *n)), b);
                let mut order: Vec<Option<usize>> = (0..b).map(Some).collect();
                order.extend(std::iter::repeat_n(None, *core));
                crate::api::elemwise::switch(c.dimshuffle(&order), t, e)
            })
            .collect()),
        other => {
            let cond = other.as_ref().map_or(&inputs[0], |(v, _)| v);
            let t: Vec<&Var> = then_b.iter().collect();
            let e: Vec<&Var> = else_b.iter().collect();
            Ok(crate::api::ifelse::ifelse(cond, &t, &e))
        }
    }
}

/// The inputs of a batched region write `x[index] (+)= y` whose region is `read` (the
/// op reading it): x spread over the batch when only y carries it (x's copy is
/// written), y aligned with the region (its batch dimensions, broadcastable ones for the
/// region dimensions it lacks, then its own), the unbatched indices.
fn region_write_args(
    read: Op,
    inputs: &[Var],
    ins: &[Option<(Var, usize)>],
    all: &[Var],
    b: usize,
) -> Result<Vec<Var>> {
    let mut region_args = vec![inputs[0].clone()];
    region_args.extend(inputs[2..].iter().cloned());
    let region = Var::apply(read, region_args)?[0].ndim();
    let (y, ny) = ins[1]
        .as_ref()
        .map_or((inputs[1].clone(), 0), |(v, n)| (v.clone(), *n));
    let core_y = y.ndim() - ny;
    let mut order: Vec<Option<usize>> = vec![None; b - ny];
    order.extend((0..ny).map(Some));
    order.extend(std::iter::repeat_n(None, region.saturating_sub(core_y)));
    order.extend((ny..y.ndim()).map(Some));
    let x = match &ins[0] {
        Some((_, n)) if *n == b => all[0].clone(),
        _ => {
            let mut sizes: Vec<crate::api::Operand> =
                (0..ny as isize).map(|d| y.shape_i(d).into()).collect();
            sizes.extend((b..all[0].ndim()).map(|d| all[0].shape_i(d as isize).into()));
            all[0].broadcast_to(&sizes)
        }
    };
    let mut args = vec![x, y.dimshuffle(&order)];
    args.extend(
        inputs[2..]
            .iter()
            .zip(&ins[2..])
            .map(|(x, bx)| bx.as_ref().map_or_else(|| x.clone(), |(v, _)| v.clone())),
    );
    Ok(args)
}

/// An input carrying all `b` batch dimensions (for the batch sizes).
fn batch_carrier(ins: &[Option<(Var, usize)>], b: usize) -> Result<Var> {
    ins.iter()
        .flatten()
        .find(|(_, n)| *n == b)
        .map(|(v, _)| v.clone())
        .ok_or_else(|| GraphError::Internal("vectorize: no input has the batch".into()))
}

/// Whether the index arrays of `slots` are consecutive and the other slots slices (so
/// NumPy keeps the indexed dimensions in place rather than moving them first).
fn adjacent_arrays(slots: &[crate::ops::AdvancedSlot]) -> bool {
    use crate::ops::AdvancedSlot;
    let arrays: Vec<usize> = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, AdvancedSlot::Array))
        .map(|(i, _)| i)
        .collect();
    let no_integers = slots
        .iter()
        .all(|s| !matches!(s, AdvancedSlot::Basic(IndexSlot::Index)));
    no_integers && arrays.windows(2).all(|w| w[1] == w[0] + 1)
}

/// The product as a Blockwise `Dot` (e.g. matmul `(m,k),(k,n)->(m,n)`).
fn dot_blockwise(inputs: &[Var], all: Vec<Var>) -> Result<Vec<Var>> {
    let (ra, rb) = (inputs[0].ndim(), inputs[1].ndim());
    let a: &[&str] = if ra == 2 { &["m", "k"] } else { &["k"] };
    let c: &[&str] = if rb == 2 { &["k", "n"] } else { &["k"] };
    let out: Vec<&str> = a[..ra - 1].iter().chain(&c[1..]).copied().collect();
    let sig = format!("({}),({})->({})", a.join(","), c.join(","), out.join(","));
    blockwise(Op::Dot, Signature::parse(&sig)?, all)
}

/// `op` as a Blockwise with every dimension core (the fallback for ops without a rule:
/// its outputs' core shapes must agree between batch elements, checked when it runs).
fn all_core_blockwise(op: &Op, inputs: &[Var], all: Vec<Var>) -> Result<Vec<Var>> {
    let in_ranks: Vec<usize> = inputs.iter().map(Var::ndim).collect();
    let out_ranks: Vec<usize> = Var::apply(op.clone(), inputs.to_vec())?
        .iter()
        .map(Var::ndim)
        .collect();
    blockwise(op.clone(), Signature::all_core(&in_ranks, &out_ranks), all)
}

/// `core` applied blockwise to `inputs` (which carry the batch dimensions).
fn blockwise(core: Op, signature: Signature, inputs: Vec<Var>) -> Result<Vec<Var>> {
    Var::apply(
        Op::Blockwise(std::sync::Arc::new(Blockwise { core, signature })),
        inputs,
    )
}

/// JAX's `vmap` on symbolic values: `f` applied to each slice of the batched `inputs`
/// along `in_axes` (`None`: the input is shared, not batched), its outputs stacked along
/// `out_axes` (one per output). `f` sees the core values (the batch axis removed) and is
/// vectorized with `vectorize_graph`; vmaps nest.
///
/// ```
/// use tensorlift_ir::{matrix, vector, vmap, DType};
/// let (xs, w) = (matrix("xs", DType::Float64), vector("w", DType::Float64));
/// // Rows of xs along axis 1 (xs holds one example per column), w shared.
/// let out = vmap(|v| vec![(&v[0] * &v[1]).sum(None)], &[&xs, &w], &[Some(1), None], &[0]).unwrap();
/// assert_eq!(out[0].ndim(), 1);
/// ```
pub fn vmap(
    f: impl FnOnce(&[Var]) -> Vec<Var>,
    inputs: &[&Var],
    in_axes: &[Option<usize>],
    out_axes: &[usize],
) -> Result<Vec<Var>> {
    if inputs.len() != in_axes.len() {
        return Err(GraphError::op(
            "vmap",
            format!("{} inputs but {} in_axes", inputs.len(), in_axes.len()),
        ));
    }
    // Per input: the core value f sees and, when batched, the input with its batch axis
    // moved to the front.
    let mut cores = Vec::with_capacity(inputs.len());
    let mut replace: Vec<(Var, Var)> = Vec::new();
    for (k, (x, axis)) in inputs.iter().zip(in_axes).enumerate() {
        x.check()?;
        let Some(axis) = *axis else {
            cores.push((*x).clone());
            continue;
        };
        if axis >= x.ndim() {
            return Err(GraphError::op(
                "vmap",
                format!(
                    "in_axes[{k}] is {axis}, but input {k} ({}) has {} dimensions",
                    x.label(),
                    x.ndim()
                ),
            ));
        }
        let mut order: Vec<Option<usize>> = vec![Some(axis)];
        order.extend((0..x.ndim()).filter(|d| *d != axis).map(Some));
        let front = x.dimshuffle(&order);
        let core_shape: Vec<Option<usize>> = front.static_shape()[1..].to_vec();
        let core = crate::api::tensor(&format!("core{k}"), x.dtype(), core_shape);
        cores.push(core.clone());
        replace.push((core, front));
    }
    let outputs = f(&cores);
    if outputs.len() != out_axes.len() {
        return Err(GraphError::op(
            "vmap",
            format!(
                "f gave {} outputs but {} out_axes",
                outputs.len(),
                out_axes.len()
            ),
        ));
    }
    let refs: Vec<&Var> = outputs.iter().collect();
    let pairs: Vec<(&Var, &Var)> = replace.iter().map(|(a, b)| (a, b)).collect();
    let batched = vectorize_graph(&refs, &pairs)?;
    batched
        .into_iter()
        .zip(&outputs)
        .zip(out_axes)
        .enumerate()
        .map(|(k, ((b, core), axis))| {
            if b.ndim() == core.ndim() {
                return Err(GraphError::op(
                    "vmap",
                    format!("output {k} does not depend on a batched input"),
                ));
            }
            if *axis > core.ndim() {
                return Err(GraphError::op(
                    "vmap",
                    format!(
                        "out_axes[{k}] is {axis}, but output {k} has {} dimensions",
                        core.ndim()
                    ),
                ));
            }
            // The batch axis (first) moved to `axis`.
            let mut order: Vec<Option<usize>> = (1..=core.ndim()).map(Some).collect();
            order.insert(*axis, Some(0));
            Ok(if *axis == 0 { b } else { b.dimshuffle(&order) })
        })
        .collect()
}

/// The Blockwise `bw` on inputs of `input_types` written with the native batching rules
/// (e.g. a Blockwise of an Elemwise as an Elemwise, one without batch dimensions as its
/// core op), as a graph from those inputs; `None` when the rules give a Blockwise of the
/// same core op again (no native form) or other output types.
pub fn native_blockwise(
    bw: &Blockwise,
    input_types: &[&crate::types::TensorType],
) -> Result<Option<crate::fgraph::FunctionGraph>> {
    let core_in: Vec<Var> = bw
        .core_types(input_types)
        .into_iter()
        .enumerate()
        .map(|(k, t)| Var::input(&format!("core{k}"), t))
        .collect();
    let batched_in: Vec<Var> = input_types
        .iter()
        .enumerate()
        .map(|(k, t)| Var::input(&format!("x{k}"), (*t).clone()))
        .collect();
    let core_out = Var::apply(bw.core.clone(), core_in.clone())?;
    let pairs: Vec<(&Var, &Var)> = core_in.iter().zip(&batched_in).collect();
    let outs = vectorize_graph(&core_out.iter().collect::<Vec<_>>(), &pairs)?;
    let again = postorder(&outs).iter().any(|v| {
        matches!(v.kind(), VarKind::Output { node, .. }
            if matches!(&node.op, Op::Blockwise(b) if b.core == bw.core))
    });
    if again {
        return Ok(None);
    }
    let expected = bw.infer_types(input_types)?;
    if outs.iter().zip(&expected).any(|(o, t)| o.ty() != t) {
        return Ok(None);
    }
    Ok(Some(crate::fgraph::FunctionGraph::new(&batched_in, &outs)?))
}

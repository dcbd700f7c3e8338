//! One pullback per op: from the gradients of a node's outputs to those of its inputs
//! (`InputGrad` per input). The match over `Op` is exhaustive, so a new op does not
//! compile until it says how it differentiates. Fused ops (Composite, FusedReduce) only
//! appear after the rewrites, and gradients are taken on the user's graph before them.

use super::scalar::elemwise_pullback;
use super::InputGrad;
use super::{grad_with, is_discrete, shape_of, zeros_like, Disconnected, GradOptions};
use crate::api::elemwise::switch;
use crate::api::index::Idx;
use crate::api::shape::{alloc, concatenate};
use crate::api::Operand;
use crate::error::{GraphError, Result};
use crate::ops::{CumKind, DimShuffle, IfElse, IncMode, InnerGraph, Op, ReduceKind};
use crate::var::Var;

/// The gradients of `inputs` of a node applying `op` (its `outputs`), given the
/// gradients of the outputs (`None`: the cost does not depend on that output).
pub fn pullback(
    op: &Op,
    inputs: &[Var],
    outputs: &[Var],
    output_grads: &[Option<Var>],
) -> Result<Vec<InputGrad>> {
    let g = || -> Result<Var> {
        output_grads.first().cloned().flatten().ok_or_else(|| {
            GraphError::Internal(format!("{op}: pullback without an output gradient"))
        })
    };
    let Some(x) = inputs.first() else {
        return Ok(Vec::new());
    };
    let grad = InputGrad::Grad;
    let rest_disconnected = |first: InputGrad| {
        let mut v = vec![first];
        v.extend((1..inputs.len()).map(|_| InputGrad::Disconnected));
        v
    };
    Ok(match op {
        Op::Elemwise(scalar) => elemwise_pullback(*scalar, inputs, &outputs[0], &g()?),
        Op::Composite(_) | Op::FusedReduce { .. } => {
            vec![
                InputGrad::Undefined(
                    "fused ops are made by the rewrites; take gradients of the graph before \
                     compiling it"
                        .into()
                );
                inputs.len()
            ]
        }
        Op::DimShuffle(ds) => vec![grad(dimshuffle_pullback(ds, &g()?))],
        Op::Reduce { kind, axes } => vec![reduce_pullback(*kind, axes, x, &outputs[0], &g()?)],
        Op::ArgReduce { .. } => vec![InputGrad::Disconnected],
        Op::Cumulative { kind, axis } => {
            vec![grad(cumulative_pullback(
                *kind,
                *axis,
                x,
                &outputs[0],
                &g()?,
            ))]
        }
        Op::Softmax { axis } => {
            let (s, g) = (&outputs[0], g()?);
            let dot = (&g * s).sum_keepdims(*axis as isize);
            vec![grad(s * (&g - &dot))]
        }
        Op::Alloc => rest_disconnected(grad(g()?)),
        Op::Reshape { .. } => rest_disconnected(grad(g()?.reshape_to(&x.shape()))),
        Op::SpecifyShape(_) => vec![grad(g()?)],
        Op::CheckAndRaise { .. } => rest_disconnected(grad(g()?)),
        Op::Shape | Op::Arange(_) => vec![InputGrad::Disconnected; inputs.len()],
        Op::MakeVector(_) => {
            let g = g()?;
            (0..inputs.len())
                .map(|k| grad(g.get(vec![Idx::At((k as i64).into())])))
                .collect()
        }
        Op::Join { axis } => join_pullback(*axis, inputs, &g()?),
        Op::Split { axis, .. } => {
            let parts: Vec<Var> = outputs
                .iter()
                .zip(output_grads)
                .map(|(o, g)| g.clone().unwrap_or_else(|| zeros_like(o)))
                .collect();
            rest_disconnected(grad(concatenate(&parts, *axis as isize)))
        }
        Op::Subtensor(slots) => {
            let inc = Op::IncSubtensor {
                slots: slots.clone(),
                mode: IncMode::Inc,
            };
            rest_disconnected(grad(scatter_into_zeros(inc, x, g()?, &inputs[1..])))
        }
        Op::AdvancedSubtensor(slots) => {
            let inc = Op::AdvancedIncSubtensor {
                slots: slots.clone(),
                mode: IncMode::Inc,
            };
            rest_disconnected(grad(scatter_into_zeros(inc, x, g()?, &inputs[1..])))
        }
        Op::IncSubtensor { slots, mode } => {
            let read = Op::Subtensor(slots.clone());
            let set = Op::IncSubtensor {
                slots: slots.clone(),
                mode: IncMode::Set,
            };
            write_pullback(*mode, read, set, x, g()?, &inputs[2..])
        }
        Op::AdvancedIncSubtensor { slots, mode } => {
            let read = Op::AdvancedSubtensor(slots.clone());
            let set = Op::AdvancedIncSubtensor {
                slots: slots.clone(),
                mode: IncMode::Set,
            };
            write_pullback(*mode, read, set, x, g()?, &inputs[2..])
        }
        Op::Dot => dot_pullback(x, &inputs[1], &g()?),
        Op::Linalg(l) => super::linalg::linalg_pullback(*l, inputs, outputs, output_grads),
        Op::Custom(c) => match c.0.pullback(inputs, outputs, output_grads) {
            Some(grads) if grads.len() != inputs.len() => vec![
                InputGrad::Undefined(format!(
                    "{op}: its pullback gave {} gradients for {} inputs",
                    grads.len(),
                    inputs.len()
                ));
                inputs.len()
            ],
            Some(grads) => grads
                .into_iter()
                .map(|g| g.map_or(InputGrad::Disconnected, InputGrad::Grad))
                .collect(),
            None => vec![
                InputGrad::Undefined(format!("{}: the custom op has no pullback", op));
                inputs.len()
            ],
        },
        // The RNG state and the size are not differentiable; the draws' dependence on
        // the parameters is not taken (no reparameterization).
        Op::Random(r) => {
            let mut grads = vec![InputGrad::Disconnected, InputGrad::Disconnected];
            grads.extend((2..inputs.len()).map(|_| {
                InputGrad::Undefined(format!(
                    "{r}: draws are not differentiable with respect to their parameters \
                     (write the reparameterization explicitly, e.g. mean + std * normal(0, 1))"
                ))
            }));
            grads
        }
        Op::Sparse(s) => sparse_pullback(*s, inputs, output_grads)?,
        Op::Blockwise(bw) => super::linalg::blockwise_pullback(bw, inputs, outputs, output_grads)?,
        Op::OpFromGraph(ofg) if ofg.inline => inner_pullback(&ofg.graph, inputs, output_grads)?,
        Op::OpFromGraph(ofg) => kept_pullback(ofg, inputs, outputs, output_grads)?,
        Op::IfElse(ifelse) => ifelse_pullback(ifelse, inputs, output_grads)?,
        Op::Grad(lazy) => {
            // Second derivatives: the pullback of the gradient graph itself.
            let expanded = super::lazy::expand(lazy, inputs)?;
            let known: Vec<(Var, Var)> = expanded
                .into_iter()
                .zip(output_grads)
                .filter_map(|(o, g)| g.clone().map(|g| (o, g)))
                .collect();
            let wrt: Vec<&Var> = inputs.iter().filter(|x| x.dtype().is_float()).collect();
            let options = GradOptions {
                known_grads: known,
                disconnected: Disconnected::Disconnected,
                lazy: false,
            };
            let mut grads = grad_with(None, &wrt, &options)?.into_iter();
            inputs
                .iter()
                .map(|x| match x.dtype().is_float() {
                    true => grads
                        .next()
                        .flatten()
                        .map_or(InputGrad::Disconnected, InputGrad::Grad),
                    false => InputGrad::Disconnected,
                })
                .collect()
        }
        Op::Scan(scan) => super::scan::scan_pullback(scan, inputs, outputs, output_grads)?,
    })
}

/// The gradient of a read `x[index]`: `g` added into zeros of x's shape at the index
/// (`inc`, an increment by the read's own index; repeated indices accumulate).
fn scatter_into_zeros(inc: Op, x: &Var, g: Var, index: &[Var]) -> Var {
    let mut inputs = vec![zeros_like(x), g];
    inputs.extend(index.iter().cloned());
    Var::apply1(inc, inputs)
}

/// The gradients of a write of y into `x[index]`: y gets g read at the index (`read`), x
/// gets g, with the region zeroed (`set`) when the write replaced it.
fn write_pullback(
    mode: IncMode,
    read: Op,
    set: Op,
    x: &Var,
    g: Var,
    index: &[Var],
) -> Vec<InputGrad> {
    let mut read_inputs = vec![g.clone()];
    read_inputs.extend(index.iter().cloned());
    let gy = Var::apply1(read, read_inputs);
    let gx = match mode {
        IncMode::Inc => g,
        IncMode::Set => {
            let mut inputs = vec![g, Var::literal(0.0, x.dtype())];
            inputs.extend(index.iter().cloned());
            Var::apply1(set, inputs)
        }
    };
    let mut grads = vec![InputGrad::Grad(gx), InputGrad::Grad(gy)];
    grads.extend(index.iter().map(|_| InputGrad::Disconnected));
    grads
}

/// Undoes a DimShuffle: the inserted dimensions are summed away (they have one element),
/// the kept ones put back in the input's order, the dropped (size-1) ones re-inserted.
fn dimshuffle_pullback(ds: &DimShuffle, g: &Var) -> Var {
    let inserted: Vec<isize> = ds
        .new_order
        .iter()
        .enumerate()
        .filter(|(_, o)| o.is_none())
        .map(|(i, _)| i as isize)
        .collect();
    let g = if inserted.is_empty() {
        g.clone()
    } else {
        g.sum(inserted)
    };
    let kept: Vec<usize> = ds.new_order.iter().flatten().copied().collect();
    let order: Vec<Option<usize>> = (0..ds.input_ndim)
        .map(|j| kept.iter().position(|k| *k == j))
        .collect();
    if order.iter().enumerate().all(|(i, o)| *o == Some(i)) {
        g
    } else {
        g.dimshuffle(&order)
    }
}

/// `g` (the reduced shape) with the reduced axes back as size-1 dimensions.
fn keep_reduced(g: &Var, axes: &[usize], ndim: usize) -> Var {
    g.dimshuffle(&DimShuffle::keep_dims(axes, ndim).new_order)
}

fn reduce_pullback(kind: ReduceKind, axes: &[usize], x: &Var, out: &Var, g: &Var) -> InputGrad {
    if is_discrete(out) {
        return InputGrad::Disconnected;
    }
    let ndim = x.ndim();
    let g_keep = keep_reduced(g, axes, ndim);
    let out_keep = keep_reduced(out, axes, ndim);
    let spread = |v: Var| alloc(&v, &shape_of(x));
    let ax: Vec<isize> = axes.iter().map(|a| *a as isize).collect();
    InputGrad::Grad(match kind {
        ReduceKind::Sum => spread(g_keep),
        // Every tied extremum gets the whole gradient (PyTensor's convention).
        ReduceKind::Max | ReduceKind::Min => switch(x.equal(&out_keep), &g_keep, 0.0),
        ReduceKind::LogSumExp => &g_keep * (x - &out_keep).exp(),
        ReduceKind::Prod => {
            // The product of the other factors, exact when some factors are zero: with
            // no zero it is prod / x, with one zero only that factor's is non-zero (the
            // product of the rest), with more all are zero.
            let is_zero = x.equal(0.0);
            let nonzero = switch(&is_zero, 1.0, x);
            let prod_nonzero = nonzero.prod_keepdims(ax.clone());
            let zeros = is_zero.cast(crate::dtype::DType::Int64).sum_keepdims(ax);
            let others = switch(
                zeros.equal(0i64),
                &prod_nonzero / &nonzero,
                switch(zeros.equal(1i64).logical_and(&is_zero), &prod_nonzero, 0.0),
            );
            &g_keep * others
        }
        ReduceKind::All | ReduceKind::Any => return InputGrad::Disconnected,
    })
}

/// Reverses `v` along `axis`.
fn reversed(v: &Var, axis: usize) -> Var {
    let index: Vec<Idx> = (0..v.ndim())
        .map(|d| {
            if d == axis {
                Idx::full().with_step(-1i64)
            } else {
                Idx::full()
            }
        })
        .collect();
    v.get(index)
}

/// The gradient of a running sum is the running sum of the gradient from the end; of a
/// running product, that of g·out from the end divided by x (PyTensor's formula).
fn cumulative_pullback(kind: CumKind, axis: Option<usize>, x: &Var, out: &Var, g: &Var) -> Var {
    let seed = match kind {
        CumKind::CumSum => g.clone(),
        CumKind::CumProd => g * out,
    };
    let axis_in_out = axis.unwrap_or(0);
    let from_end = reversed(
        &reversed(&seed, axis_in_out).cumsum(axis_in_out as isize),
        axis_in_out,
    );
    let shaped = match axis {
        Some(_) => from_end,
        None => from_end.reshape_to(&x.shape()),
    };
    match kind {
        CumKind::CumSum => shaped,
        CumKind::CumProd => shaped / x,
    }
}

/// Each input's gradient is its part of g along the axis.
fn join_pullback(axis: usize, inputs: &[Var], g: &Var) -> Vec<InputGrad> {
    let mut start = Var::literal(0i64, crate::dtype::DType::Int64);
    inputs
        .iter()
        .map(|x| {
            let stop = &start + x.shape_i(axis as isize);
            let index: Vec<Idx> = (0..g.ndim())
                .map(|d| {
                    if d == axis {
                        Idx::slice(
                            Some(Operand::from(&start)),
                            Some(Operand::from(&stop)),
                            None,
                        )
                    } else {
                        Idx::full()
                    }
                })
                .collect();
            start = stop;
            InputGrad::Grad(g.get(index))
        })
        .collect()
}

/// NumPy dot of 1-d and 2-d operands.
/// Sparse ops: the product's dense operand gets `transpose(s) · g`; gradients with respect
/// to a sparse matrix (which would be sparse themselves) are not implemented.
fn sparse_pullback(
    op: crate::ops::SparseOp,
    inputs: &[Var],
    output_grads: &[Option<Var>],
) -> Result<Vec<InputGrad>> {
    use crate::api::sparse::{dot, transpose};
    let sparse_input = || {
        InputGrad::Undefined(format!(
            "{op}: gradients with respect to sparse matrices are not implemented (convert \
             with dense_from_sparse before the differentiated part)"
        ))
    };
    Ok(
        match (op, inputs, output_grads.first().cloned().flatten()) {
            (crate::ops::SparseOp::Dot, [s, _], Some(g)) => {
                vec![sparse_input(), InputGrad::Grad(dot(&transpose(s), &g))]
            }
            (crate::ops::SparseOp::Mul, [_, _], _) => vec![
                sparse_input(),
                InputGrad::Undefined(format!(
                    "{op}: its result is sparse; gradients through sparse results are not \
                 implemented"
                )),
            ],
            _ => vec![sparse_input(); inputs.len()],
        },
    )
}

fn dot_pullback(a: &Var, b: &Var, g: &Var) -> Vec<InputGrad> {
    let (ga, gb) = match (a.ndim(), b.ndim()) {
        (2, 2) => (g.dot(&b.t()), a.t().dot(g)),
        (1, 1) => (g * b, g * a),
        (2, 1) => (g.expand_dims(1) * b.expand_dims(0), a.t().dot(g)),
        (1, 2) => (b.dot(g), a.expand_dims(1) * g.expand_dims(0)),
        (ra, rb) => {
            let reason = format!("dot of ranks {ra} and {rb}");
            return vec![
                InputGrad::Undefined(reason.clone()),
                InputGrad::Undefined(reason),
            ];
        }
    };
    vec![InputGrad::Grad(ga), InputGrad::Grad(gb)]
}

/// The inner graph applied to `inputs` as ordinary nodes of the user graph.
pub(crate) fn inline(graph: &InnerGraph, inputs: &[Var]) -> Result<Vec<Var>> {
    use crate::fgraph::Origin;
    use std::collections::HashMap;
    let fg = graph.graph();
    let mut values: HashMap<crate::fgraph::VarId, Var> = HashMap::new();
    for (id, v) in fg.inputs().iter().zip(inputs) {
        values.insert(*id, v.clone());
    }
    let value = |id: crate::fgraph::VarId, values: &HashMap<crate::fgraph::VarId, Var>| match &fg
        .var(id)
        .origin
    {
        Origin::Constant(d) => Ok(Var::constant(d.clone())),
        _ => values
            .get(&id)
            .cloned()
            .ok_or_else(|| GraphError::Internal("an inner value is missing".into())),
    };
    for node in fg.toposort() {
        let e = fg
            .node(node)
            .ok_or_else(|| GraphError::Internal("a scheduled inner node is missing".into()))?;
        let ins = e
            .inputs
            .iter()
            .map(|i| value(*i, &values))
            .collect::<Result<Vec<_>>>()?;
        let outs = Var::apply(e.op.clone(), ins)?;
        for (id, v) in e.outputs.iter().zip(outs) {
            values.insert(*id, v);
        }
    }
    fg.outputs().iter().map(|o| value(*o, &values)).collect()
}

/// The gradients of `inputs` through an inner graph applied to them, given its output
/// gradients.
fn inner_grads(
    graph: &InnerGraph,
    inputs: &[Var],
    output_grads: &[Option<Var>],
) -> Result<Vec<Option<Var>>> {
    let outs = inline(graph, inputs)?;
    let known: Vec<(Var, Var)> = outs
        .iter()
        .zip(output_grads)
        .filter_map(|(o, g)| g.clone().map(|g| (o.clone(), g)))
        .filter(|(o, _)| o.dtype().is_float())
        .collect();
    let wrt: Vec<&Var> = inputs.iter().filter(|x| x.dtype().is_float()).collect();
    if known.is_empty() || wrt.is_empty() {
        return Ok(vec![None; inputs.len()]);
    }
    let options = GradOptions {
        known_grads: known,
        disconnected: Disconnected::Disconnected,
        lazy: false,
    };
    let mut grads = grad_with(None, &wrt, &options)?.into_iter();
    Ok(inputs
        .iter()
        .map(|x| {
            if x.dtype().is_float() {
                grads.next().flatten()
            } else {
                None
            }
        })
        .collect())
}

/// An OpFromGraph differentiates as its inner graph applied to the node's inputs.
fn inner_pullback(
    graph: &InnerGraph,
    inputs: &[Var],
    output_grads: &[Option<Var>],
) -> Result<Vec<InputGrad>> {
    Ok(inner_grads(graph, inputs, output_grads)?
        .into_iter()
        .map(|g| g.map_or(InputGrad::Disconnected, InputGrad::Grad))
        .collect())
}

/// A kept OpFromGraph's gradient is itself a kept OpFromGraph (named `grad of …`): its
/// inner graph takes the op's inputs and its outputs' gradients (zeros for outputs the
/// cost does not read) and gives the float inputs' gradients.
fn kept_pullback(
    ofg: &crate::ops::OpFromGraph,
    inputs: &[Var],
    outputs: &[Var],
    output_grads: &[Option<Var>],
) -> Result<Vec<InputGrad>> {
    let inner_inputs: Vec<Var> = ofg
        .graph
        .input_types()
        .iter()
        .enumerate()
        .map(|(k, t)| crate::api::tensor(&format!("x{k}"), t.dtype, t.shape.clone()))
        .collect();
    let inner_grads_in: Vec<Var> = outputs
        .iter()
        .enumerate()
        .map(|(k, o)| crate::api::tensor(&format!("g{k}"), o.dtype(), o.static_shape().to_vec()))
        .collect();
    let grads = inner_grads(
        &ofg.graph,
        &inner_inputs,
        &inner_grads_in.iter().cloned().map(Some).collect::<Vec<_>>(),
    )?;
    let connected: Vec<usize> = (0..inputs.len()).filter(|k| grads[*k].is_some()).collect();
    if connected.is_empty() {
        return Ok(vec![InputGrad::Disconnected; inputs.len()]);
    }
    let mut all_inputs: Vec<&Var> = inner_inputs.iter().collect();
    all_inputs.extend(inner_grads_in.iter());
    let grad_outputs: Vec<&Var> = connected
        .iter()
        .filter_map(|k| grads[*k].as_ref())
        .collect();
    let op = crate::api::graph::op_from_graph(&all_inputs, &grad_outputs)?
        .named(&format!("grad of {}", ofg.name))
        .inline(false);
    let given: Vec<Var> = outputs
        .iter()
        .zip(output_grads)
        .map(|(o, g)| g.clone().unwrap_or_else(|| zeros_like(o)))
        .collect();
    let mut args: Vec<&Var> = inputs.iter().collect();
    args.extend(given.iter());
    let applied = op.apply(&args)?;
    let mut result = vec![InputGrad::Disconnected; inputs.len()];
    for (k, g) in connected.into_iter().zip(applied) {
        result[k] = InputGrad::Grad(g);
    }
    Ok(result)
}

/// The gradient of an IfElse is an IfElse of the branches' gradients (a branch that does
/// not depend on a value gives it zeros), so only the taken branch's gradient runs.
fn ifelse_pullback(
    ifelse: &IfElse,
    inputs: &[Var],
    output_grads: &[Option<Var>],
) -> Result<Vec<InputGrad>> {
    let (cond, values) = (&inputs[0], &inputs[1..]);
    let then = inner_grads(&ifelse.then_branch, values, output_grads)?;
    let otherwise = inner_grads(&ifelse.else_branch, values, output_grads)?;
    let mut connected = Vec::new();
    let (mut then_grads, mut else_grads) = (Vec::new(), Vec::new());
    for (k, (t, e)) in then.into_iter().zip(otherwise).enumerate() {
        if t.is_none() && e.is_none() {
            continue;
        }
        let x = &values[k];
        then_grads.push(t.unwrap_or_else(|| zeros_like(x)));
        else_grads.push(e.unwrap_or_else(|| zeros_like(x)));
        connected.push(k);
    }
    let mut result = vec![InputGrad::Disconnected; inputs.len()];
    if connected.is_empty() {
        return Ok(result);
    }
    let then_refs: Vec<&Var> = then_grads.iter().collect();
    let else_refs: Vec<&Var> = else_grads.iter().collect();
    let chosen = crate::api::ifelse::ifelse(cond, &then_refs, &else_refs);
    for (k, g) in connected.into_iter().zip(chosen) {
        result[k + 1] = InputGrad::Grad(g);
    }
    Ok(result)
}

//! Forward mode (R_op, JVP): tangents pushed through the graph node by node, by a rule of
//! the op where it is simple (element-wise ops from their derivatives, linear ops applied
//! to the tangents, dot by the product rule), and otherwise by the double-pullback trick:
//! the pullback of outputs `y` at a placeholder gradient `u` is linear in `u` (Jᵀu), and
//! pulling `⟨Jᵀu, v⟩` back to `u` gives `J v`. Every op with a pullback thus has a
//! pushforward. Hessian-vector products are pushforwards of a gradient.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{grad_with, zeros_like, Disconnected, GradOptions, InputGrad};
use crate::api::shape::concatenate;
use crate::api::tensor;
use crate::error::{GraphError, Result};
use crate::ops::Op;
use crate::var::{postorder, Node, Var};
use crate::All;

/// `J v`: the directional derivative of each of `outputs` (float variables) when each of
/// `wrt` moves along its `tangents` entry (of its type), node by node (see the module).
/// An output that does not depend on `wrt` gets zeros.
///
/// ```
/// use tensorlift_ir::{pushforward, vector, DType};
/// let (x, v) = (vector("x", DType::Float64), vector("v", DType::Float64));
/// let jv = pushforward(&[&x.sin()], &[&x], &[&v]).unwrap();
/// assert_eq!(jv[0].ty(), x.ty());
/// ```
pub fn pushforward(outputs: &[&Var], wrt: &[&Var], tangents: &[&Var]) -> Result<Vec<Var>> {
    check_tangents(wrt, tangents)?;
    let mut tangent: HashMap<(usize, usize), Var> = HashMap::new();
    for (x, v) in wrt.iter().zip(tangents) {
        tangent.insert(x.value_key(), v.cast(x.dtype()));
    }
    let seeded: HashSet<(usize, usize)> = tangent.keys().copied().collect();
    let roots: Vec<Var> = outputs.iter().map(|v| (*v).clone()).collect();
    let mut done: HashSet<*const Node> = HashSet::new();
    for v in postorder(&roots) {
        let Some((node, _)) = v.owner() else { continue };
        if !done.insert(Arc::as_ptr(node)) {
            continue;
        }
        let ins: Vec<Option<Var>> = node
            .inputs
            .iter()
            .map(|i| tangent.get(&i.value_key()).cloned())
            .collect();
        if ins.iter().all(Option::is_none) {
            continue;
        }
        let outs: Vec<Var> = (0..node.output_types.len())
            .map(|k| Var::from_node_output(node.clone(), k))
            .collect();
        let pushed = match direct(&node.op, &node.inputs, &outs, &ins) {
            Some(pushed) => pushed,
            None => {
                // The double pullback, on this node alone.
                let with: Vec<usize> = (0..ins.len()).filter(|k| ins[*k].is_some()).collect();
                let xs: Vec<&Var> = with.iter().map(|k| &node.inputs[*k]).collect();
                let vs: Vec<Var> = with.iter().filter_map(|k| ins[*k].clone()).collect();
                let vs: Vec<&Var> = vs.iter().collect();
                let float_outs: Vec<&Var> = outs.iter().filter(|o| o.dtype().is_float()).collect();
                let mut jv = pushforward_by_pullback(&float_outs, &xs, &vs)?.into_iter();
                outs.iter()
                    .map(|o| o.dtype().is_float().then(|| jv.next()).flatten())
                    .collect()
            }
        };
        for (o, t) in outs.iter().zip(pushed) {
            if let Some(t) = t {
                if !seeded.contains(&o.value_key()) {
                    tangent.insert(o.value_key(), super::match_type(t, o));
                }
            }
        }
    }
    Ok(outputs
        .iter()
        .map(|y| {
            tangent
                .get(&y.value_key())
                .cloned()
                .unwrap_or_else(|| zeros_like(y))
        })
        .collect())
}

/// The tangents of a node's outputs by a rule of its op, from its inputs' tangents
/// (`None`: zero); `None` when the op has no direct rule.
fn direct(
    op: &Op,
    inputs: &[Var],
    outputs: &[Var],
    tangents: &[Option<Var>],
) -> Option<Vec<Option<Var>>> {
    let one = |v: Var| Some(vec![Some(v)]);
    let first = tangents.first().cloned().flatten();
    let x = inputs.first()?;
    // A unary linear op applied to the tangent of its first input (the rest are indices,
    // shapes or sizes, which carry none).
    let same_op_on_first = |t: Var| {
        let mut ins = vec![t];
        ins.extend(inputs[1..].iter().cloned());
        Var::apply(op.clone(), ins)
            .ok()
            .map(|outs| outs.into_iter().map(Some).collect())
    };
    let others_untouched = tangents[1..].iter().all(Option::is_none);
    match op {
        Op::Elemwise(scalar) => {
            let out = &outputs[0];
            if !out.dtype().is_float() {
                return Some(vec![None]);
            }
            let mut total: Option<Var> = None;
            for (k, t) in tangents.iter().enumerate() {
                let Some(t) = t else { continue };
                let grads = super::scalar::elemwise_pullback(*scalar, inputs, out, t);
                match grads.into_iter().nth(k)? {
                    InputGrad::Grad(d) => {
                        total = Some(match total {
                            Some(acc) => acc + d,
                            None => d,
                        })
                    }
                    InputGrad::Disconnected => {}
                    InputGrad::Undefined(_) => return None,
                }
            }
            // A tangent of an operand that broadcasts covers the output's shape.
            let total = total.map(|t| {
                let narrower = t.ndim() < out.ndim()
                    || t.static_shape()
                        .iter()
                        .zip(out.static_shape())
                        .any(|(a, b)| *a == Some(1) && *b != Some(1));
                if narrower {
                    crate::api::shape::alloc(&t, &super::shape_of(out))
                } else {
                    t
                }
            });
            Some(vec![total])
        }
        Op::DimShuffle(_)
        | Op::Reshape { .. }
        | Op::SpecifyShape(_)
        | Op::Subtensor(_)
        | Op::AdvancedSubtensor(_)
        | Op::Cumulative {
            kind: crate::ops::CumKind::CumSum,
            ..
        }
        | Op::Reduce {
            kind: crate::ops::ReduceKind::Sum,
            ..
        } if others_untouched && x.dtype().is_float() => same_op_on_first(first?),
        Op::Join { .. } => {
            let parts: Vec<Var> = inputs
                .iter()
                .zip(tangents)
                .map(|(x, t)| t.clone().unwrap_or_else(|| zeros_like(x)))
                .collect();
            let Op::Join { axis } = op else { return None };
            one(concatenate(&parts, *axis as isize))
        }
        Op::Dot => {
            let (a, b) = (&inputs[0], &inputs[1]);
            let left = tangents[0].as_ref().map(|va| va.dot(b));
            let right = tangents[1].as_ref().map(|vb| a.dot(vb));
            match (left, right) {
                (Some(l), Some(r)) => one(l + r),
                (Some(t), None) | (None, Some(t)) => one(t),
                (None, None) => Some(vec![None]),
            }
        }
        _ => None,
    }
}

fn check_tangents(wrt: &[&Var], tangents: &[&Var]) -> Result<()> {
    if wrt.len() != tangents.len() {
        return Err(GraphError::op(
            "pushforward",
            format!(
                "{} variables but {} tangents: give one tangent per variable",
                wrt.len(),
                tangents.len()
            ),
        ));
    }
    for (x, v) in wrt.iter().zip(tangents) {
        v.check()?;
        if v.ndim() != x.ndim() {
            return Err(GraphError::op(
                "pushforward",
                format!(
                    "the tangent of {} is {}, not of its type {}",
                    x.label(),
                    v.ty(),
                    x.ty()
                ),
            ));
        }
    }
    Ok(())
}

/// `J v` by the double pullback alone (what `pushforward` falls back to for ops without a
/// rule of their own; tests compare the two).
///
/// ```
/// use tensorlift_ir::{pushforward_by_pullback, vector, DType};
/// let (x, v) = (vector("x", DType::Float64), vector("v", DType::Float64));
/// let jv = pushforward_by_pullback(&[&x.sin()], &[&x], &[&v])?;
/// assert_eq!(jv[0].ty(), x.ty()); // cos(x) · v
/// # Ok::<(), tensorlift_ir::GraphError>(())
/// ```
pub fn pushforward_by_pullback(
    outputs: &[&Var],
    wrt: &[&Var],
    tangents: &[&Var],
) -> Result<Vec<Var>> {
    check_tangents(wrt, tangents)?;
    // Placeholders for the output gradients; J v does not depend on them.
    let placeholders: Vec<Var> = outputs
        .iter()
        .enumerate()
        .map(|(k, y)| {
            tensor(
                &format!("pushforward_u{k}"),
                y.dtype(),
                y.static_shape().to_vec(),
            )
        })
        .collect();
    let pulled = grad_with(
        None,
        wrt,
        &GradOptions {
            known_grads: outputs
                .iter()
                .zip(&placeholders)
                .map(|(y, u)| ((*y).clone(), u.clone()))
                .collect(),
            disconnected: Disconnected::Disconnected,
            lazy: false,
        },
    )?;
    let mut inner: Option<Var> = None;
    for (g, v) in pulled.iter().zip(tangents) {
        if let Some(g) = g {
            let term = (g * &v.cast(g.dtype())).sum(All);
            inner = Some(match inner {
                Some(acc) => acc + term,
                None => term,
            });
        }
    }
    let Some(inner) = inner else {
        return Ok(outputs.iter().map(|y| zeros_like(y)).collect());
    };
    let refs: Vec<&Var> = placeholders.iter().collect();
    let jv = grad_with(
        Some(&inner),
        &refs,
        &GradOptions {
            disconnected: Disconnected::Zero,
            ..GradOptions::default()
        },
    )?;
    // J v does not depend on the placeholders' values, but it may read their shapes (a
    // sum's pullback spreads to its input's shape): they become zeros of y's shape.
    let filled: Vec<Var> = jv
        .into_iter()
        .zip(outputs)
        .map(|(g, y)| g.unwrap_or_else(|| zeros_like(y)))
        .collect();
    let zeros: Vec<Var> = outputs.iter().map(|y| zeros_like(y)).collect();
    let replace: Vec<(&Var, &Var)> = placeholders.iter().zip(&zeros).collect();
    let filled_refs: Vec<&Var> = filled.iter().collect();
    crate::clone::clone_replace(&filled_refs, &replace, false)
}

/// The Hessian of the scalar `cost` applied to `tangents` (one per variable of `wrt`):
/// the pushforward of the gradient.
///
/// ```
/// use tensorlift_ir::{hessian_vector_product, vector, DType};
/// let (x, v) = (vector("x", DType::Float64), vector("v", DType::Float64));
/// let cost = (&x * &x * &x).sum(None); // H = diag(6x)
/// let hv = hessian_vector_product(&cost, &[&x], &[&v])?;
/// assert_eq!(hv[0].ty(), x.ty());
/// # Ok::<(), tensorlift_ir::GraphError>(())
/// ```
pub fn hessian_vector_product(cost: &Var, wrt: &[&Var], tangents: &[&Var]) -> Result<Vec<Var>> {
    let g = super::grad(cost, wrt)?;
    let g_refs: Vec<&Var> = g.iter().collect();
    // H v for each variable: the sum over gradients of their pushforwards, taken at once
    // as the pushforward of all gradient components along all tangents.
    let jv = pushforward(&g_refs, wrt, tangents)?;
    Ok(jv)
}

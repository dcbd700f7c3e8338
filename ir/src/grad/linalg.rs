//! Pullbacks of the dense linear-algebra ops and of `Blockwise`.
//!
//! Owns: the matrix-calculus rules (det, slogdet, inv, solve, solve_triangular,
//! cholesky, eigh, diagonal) on core matrices, with the convention that an op reading one
//! triangle of its input gives a gradient on that triangle only; and the Blockwise rule:
//! the core op's pullback built on core placeholders, then vectorized over the batch
//! (summed over batch dimensions an input was broadcast along).

use super::pullback::pullback;
use super::{match_type, zeros_like, InputGrad};
use crate::api::index::Idx;
use crate::api::linalg::{eye, inv, solve, solve_triangular, tril, triu};
use crate::error::Result;
use crate::ops::{Blockwise, LinalgOp};
use crate::var::Var;

/// The gradients of a linalg op's inputs, given those of its outputs (`None`: unused).
pub(super) fn linalg_pullback(
    op: LinalgOp,
    inputs: &[Var],
    outputs: &[Var],
    grads: &[Option<Var>],
) -> Vec<InputGrad> {
    let a = &inputs[0];
    let grad = InputGrad::Grad;
    let g0 = grads.first().cloned().flatten();
    match op {
        LinalgOp::Det => match g0 {
            Some(g) => vec![grad(inv(a).t() * (g * &outputs[0]))],
            None => vec![InputGrad::Disconnected],
        },
        LinalgOp::SlogDet => match grads.get(1).cloned().flatten() {
            Some(g) => vec![grad(inv(a).t() * g)],
            None => vec![InputGrad::Disconnected],
        },
        LinalgOp::Inv => match g0 {
            Some(g) => {
                let xt = outputs[0].t();
                vec![grad(-(xt.dot(&g).dot(&xt)))]
            }
            None => vec![InputGrad::Disconnected],
        },
        LinalgOp::Solve { b_ndim } => match g0 {
            Some(g) => {
                let gb = solve(&a.t(), &g);
                let ga = -outer(&gb, &outputs[0], b_ndim);
                vec![grad(ga), grad(gb)]
            }
            None => vec![InputGrad::Disconnected, InputGrad::Disconnected],
        },
        LinalgOp::SolveTriangular { lower, b_ndim } => match g0 {
            Some(g) => {
                let gb = solve_triangular(&a.t(), &g, !lower);
                let full = -outer(&gb, &outputs[0], b_ndim);
                let ga = if lower {
                    tril(&full, 0)
                } else {
                    triu(&full, 0)
                };
                vec![grad(ga), grad(gb)]
            }
            None => vec![InputGrad::Disconnected, InputGrad::Disconnected],
        },
        LinalgOp::Cholesky { lower } => match g0 {
            // Upper: U = chol_lower(aᵀ)ᵀ, so the lower rule on the transposes.
            Some(g) if lower => vec![grad(cholesky_lower_pullback(&outputs[0], &g))],
            Some(g) => vec![grad(cholesky_lower_pullback(&outputs[0].t(), &g.t()).t())],
            None => vec![InputGrad::Disconnected],
        },
        LinalgOp::Eigh => {
            let (w, v) = (&outputs[0], &outputs[1]);
            // The gradient for a symmetric perturbation: V (diag(w̄) + F∘(Vᵀ V̄)) Vᵀ with
            // F_ij = 1/(w_j − w_i) off the diagonal.
            let mut inner: Option<Var> = g0.map(|gw| {
                let n = w.shape_i(0);
                eye(n, w.dtype()) * gw.dimshuffle(&[None, Some(0)])
            });
            if let Some(gv) = grads.get(1).cloned().flatten() {
                let n = w.shape_i(0);
                let diff = w.dimshuffle(&[None, Some(0)]) - w.dimshuffle(&[Some(0), None]);
                let off = eye(n, w.dtype()).equal(0);
                let f = crate::api::elemwise::switch(&off, 1.0 / &diff, 0.0);
                let term = f * v.t().dot(&gv);
                inner = Some(match inner {
                    Some(i) => i + term,
                    None => term,
                });
            }
            match inner {
                Some(i) => {
                    let m = v.dot(&i).dot(&v.t());
                    // Only the lower triangle is read: fold the upper part onto it.
                    vec![grad(lower_fold(&m))]
                }
                None => vec![InputGrad::Disconnected],
            }
        }
        LinalgOp::ExtractDiag { offset } => match g0 {
            Some(g) => {
                // The gradient written onto the diagonal of zeros.
                let k = crate::api::shape::arange(g.shape_i(0));
                let (r0, c0) = (0i64.max(-offset), 0i64.max(offset));
                let rows = Idx::Array(&k + r0);
                let cols = Idx::Array(&k + c0);
                vec![grad(zeros_like(a).inc(vec![rows, cols], &g))]
            }
            None => vec![InputGrad::Disconnected],
        },
    }
}

/// `g xᵀ` for solutions `x` that are vectors (`b_ndim` 1: an outer product) or matrices.
fn outer(g: &Var, x: &Var, b_ndim: usize) -> Var {
    if b_ndim == 1 {
        g.dimshuffle(&[Some(0), None]) * x.dimshuffle(&[None, Some(0)])
    } else {
        g.dot(&x.t())
    }
}

/// `tril(m + mᵀ) − diag(m)`: the gradient of a function that reads a symmetric matrix
/// from its lower triangle, from the gradient `m` for symmetric perturbations.
fn lower_fold(m: &Var) -> Var {
    let n = m.shape_i(0);
    tril(&(m + &m.t()), 0) - m * eye(n, m.dtype())
}

/// The gradient of `L = cholesky(a)` (lower, read from a's lower triangle):
/// S = L⁻ᵀ Φ(Lᵀ L̄) L⁻¹ with Φ the lower triangle with its diagonal halved, folded onto
/// the lower triangle.
fn cholesky_lower_pullback(l: &Var, gl: &Var) -> Var {
    let n = l.shape_i(0);
    let p = l.t().dot(gl);
    let phi = tril(&p, 0) - &p * eye(n, l.dtype()) * 0.5;
    let lt = l.t();
    let half = solve_triangular(&lt, &phi.t(), false).t();
    let s = solve_triangular(&lt, &half, false);
    tril(&(&s + &s.t()), 0) - &s * eye(l.shape_i(0), l.dtype())
}

/// The pullback of a Blockwise node: the core op's pullback on core placeholders,
/// vectorized over the node's batch dimensions, each gradient summed back to its input's
/// type.
pub(super) fn blockwise_pullback(
    bw: &Blockwise,
    inputs: &[Var],
    outputs: &[Var],
    grads: &[Option<Var>],
) -> Result<Vec<InputGrad>> {
    let types: Vec<&crate::types::TensorType> = inputs.iter().map(|x| x.ty()).collect();
    let core_types = bw.core_types(&types);
    let core_in: Vec<Var> = core_types
        .iter()
        .enumerate()
        .map(|(k, t)| Var::input(&format!("core{k}"), t.clone()))
        .collect();
    let core_out = Var::apply(bw.core.clone(), core_in.clone())?;
    let full_grads: Vec<Var> = outputs
        .iter()
        .zip(grads)
        .map(|(o, g)| g.clone().unwrap_or_else(|| zeros_like(o)))
        .collect();
    let core_g: Vec<Var> = core_out
        .iter()
        .enumerate()
        .map(|(k, o)| Var::input(&format!("core_grad{k}"), o.ty().clone()))
        .collect();
    let connected: Vec<Option<Var>> = core_g
        .iter()
        .zip(grads)
        .map(|(c, g)| g.as_ref().map(|_| c.clone()))
        .collect();
    let core_grads = pullback(&bw.core, &core_in, &core_out, &connected)?;
    let mut pairs: Vec<(&Var, &Var)> = core_in.iter().zip(inputs).collect();
    pairs.extend(core_g.iter().zip(&full_grads));
    core_grads
        .into_iter()
        .zip(inputs)
        .map(|(g, x)| match g {
            InputGrad::Grad(core) => {
                let batched = crate::vectorize::vectorize_graph(&[&core], &pairs)?.remove(0);
                Ok(InputGrad::Grad(match_type(batched, x)))
            }
            other => Ok(other),
        })
        .collect()
}

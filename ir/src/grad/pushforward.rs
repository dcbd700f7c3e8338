//! Forward mode (R_op, JVP) by the double-pullback trick: the pullback of outputs `y`
//! at a placeholder gradient `u` is linear in `u` (Jᵀu); pulling `⟨Jᵀu, v⟩` back to `u`
//! gives `J v`. Every op with a pullback thus has a pushforward, and Hessian-vector
//! products are pushforwards of a gradient.

use super::{grad_with, zeros_like, Disconnected, GradOptions};
use crate::api::tensor;
use crate::error::{GraphError, Result};
use crate::var::Var;
use crate::All;

/// `J v`: the directional derivative of each of `outputs` (float variables) when each of
/// `wrt` moves along its `tangents` entry (of its type). An output that does not depend
/// on `wrt` gets zeros.
///
/// ```
/// use tensorlift_ir::{pushforward, vector, DType};
/// let (x, v) = (vector("x", DType::Float64), vector("v", DType::Float64));
/// let jv = pushforward(&[&x.sin()], &[&x], &[&v]).unwrap();
/// assert_eq!(jv[0].ty(), x.ty());
/// ```
pub fn pushforward(outputs: &[&Var], wrt: &[&Var], tangents: &[&Var]) -> Result<Vec<Var>> {
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
pub fn hessian_vector_product(cost: &Var, wrt: &[&Var], tangents: &[&Var]) -> Result<Vec<Var>> {
    let g = super::grad(cost, wrt)?;
    let g_refs: Vec<&Var> = g.iter().collect();
    // H v for each variable: the sum over gradients of their pushforwards, taken at once
    // as the pushforward of all gradient components along all tangents.
    let jv = pushforward(&g_refs, wrt, tangents)?;
    Ok(jv)
}

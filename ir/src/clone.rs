//! `clone_replace`: rebuild a graph with some variables substituted (DESIGN §3).
//!
//! Owns: the substitution rules. With `strict`, a replacement must have exactly the
//! replaced type. Otherwise a more specific replacement is used as is and every downstream
//! type is recomputed; a less specific one is wrapped in `SpecifyShape` (checked at run
//! time) so downstream types stay valid; an incompatible one (other dtype, ndim, or
//! conflicting static sizes) is an error naming the variable and both types.

use std::collections::HashMap;

use crate::error::{GraphError, Result};
use crate::ops::Op;
use crate::var::{postorder, Var};

/// Returns `outputs` rebuilt with each `(old, new)` pair of `replace` substituted.
///
/// ```
/// use tensorlift_ir::{clone_replace, tensor, vector, DType};
/// let x = vector("x", DType::Float64);
/// let y = &x + 5.0;
/// // A more specific replacement: the output's type follows (DESIGN §3).
/// let one = tensor("one", DType::Float64, [Some(1)]);
/// let out = clone_replace(&[&y], &[(&x, &one)], false)?;
/// assert_eq!(out[0].ty().to_string(), "Vector(float64, shape=(1,))");
/// # Ok::<(), tensorlift_ir::GraphError>(())
/// ```
pub fn clone_replace(outputs: &[&Var], replace: &[(&Var, &Var)], strict: bool) -> Result<Vec<Var>> {
    let outputs: Vec<Var> = outputs.iter().map(|v| (*v).clone()).collect();
    let mut memo: HashMap<usize, Var> = HashMap::new();
    for (old, new) in replace {
        old.check()?;
        new.check()?;
        memo.insert(old.key(), substitute(old, new, strict)?);
    }
    // Rebuilt nodes, keyed by the original node, so sibling outputs stay siblings.
    let mut rebuilt: HashMap<usize, Vec<Var>> = HashMap::new();
    for var in postorder(&outputs) {
        if memo.contains_key(&var.key()) {
            continue;
        }
        let Some((node, index)) = var.owner() else {
            continue;
        };
        let node_key = std::sync::Arc::as_ptr(node) as usize;
        let outs = match rebuilt.get(&node_key) {
            Some(outs) => outs.clone(),
            None => {
                let inputs: Vec<Var> = node
                    .inputs
                    .iter()
                    .map(|x| memo.get(&x.key()).cloned().unwrap_or_else(|| x.clone()))
                    .collect();
                let changed = inputs.iter().zip(&node.inputs).any(|(a, b)| a != b);
                let outs = if changed {
                    Var::apply(node.op.clone(), inputs)?
                } else {
                    Vec::new()
                };
                rebuilt.insert(node_key, outs.clone());
                outs
            }
        };
        if let Some(new) = outs.get(index) {
            let new = match var.name() {
                Some(n) => new.clone().named(&n),
                None => new.clone(),
            };
            memo.insert(var.key(), new);
        }
    }
    Ok(outputs
        .iter()
        .map(|o| memo.get(&o.key()).cloned().unwrap_or_else(|| o.clone()))
        .collect())
}

fn substitute(old: &Var, new: &Var, strict: bool) -> Result<Var> {
    let error = |reason: String| GraphError::Replace {
        var: old.label(),
        old: old.ty().to_string(),
        new: new.ty().to_string(),
        reason,
    };
    if strict {
        return if old.ty() == new.ty() {
            Ok(new.clone())
        } else {
            Err(error(
                "strict replacement needs exactly the same type".into(),
            ))
        };
    }
    if let Some(reason) = new.ty().incompatibility(old.ty()) {
        return Err(error(reason));
    }
    if new.ty().is_subtype_of(old.ty()) {
        return Ok(new.clone());
    }
    Var::apply(
        Op::SpecifyShape(old.static_shape().to_vec()),
        vec![new.clone()],
    )
    .map(|mut v| v.remove(0))
}

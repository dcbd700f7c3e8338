//! IfElse (DESIGN §8): a lazy choice between two branches, each an inner graph, so only
//! the taken branch's own computations run.
//!
//! Owns: `IfElse` (the two branch graphs, over the same inputs) and its type rule. The
//! node's inputs are the condition, then the values the branches read from outside (those
//! both need, or the condition needs, computed once before); its outputs are the taken
//! branch's, each typed as the least specific of the two branches' types.

use super::{InnerGraph, InputInfo};
use crate::error::{GraphError, Result};
use crate::types::TensorType;

/// A lazy two-way choice.
#[derive(Clone, Debug, PartialEq)]
pub struct IfElse {
    pub then_branch: InnerGraph,
    pub else_branch: InnerGraph,
}

/// The least specific of two types of the same dtype and rank (a size the two disagree
/// on, or one does not know, is unknown); `None` when dtypes or ranks differ.
pub fn least_specific(a: &TensorType, b: &TensorType) -> Option<TensorType> {
    if a.dtype != b.dtype || a.ndim() != b.ndim() {
        return None;
    }
    let shape: Vec<Option<usize>> = a
        .shape
        .iter()
        .zip(&b.shape)
        .map(|(x, y)| if x == y { *x } else { None })
        .collect();
    Some(TensorType::new(a.dtype, shape))
}

impl IfElse {
    /// The output types: the condition a scalar; the inputs the branches' inputs; each
    /// output the least specific of the branches' types, which must agree in dtype and
    /// rank.
    pub(crate) fn infer(&self, name: &str, inputs: &[InputInfo]) -> Result<Vec<TensorType>> {
        let fail = |m: String| Err(GraphError::op(name, m));
        let Some((cond, values)) = inputs.split_first() else {
            return fail("takes a condition".into());
        };
        if cond.ty.ndim() != 0 {
            return fail(format!("the condition must be a scalar, got {}", cond.ty));
        }
        for branch in [&self.then_branch, &self.else_branch] {
            let expected = branch.input_types();
            if expected.len() != values.len() {
                return fail(format!(
                    "its branches take {} values, got {}",
                    expected.len(),
                    values.len()
                ));
            }
            for (k, (x, want)) in values.iter().zip(&expected).enumerate() {
                if !x.ty.is_subtype_of(want) {
                    return fail(format!("value {k} is {}, but a branch takes {want}", x.ty));
                }
            }
        }
        let (then_types, else_types) = (
            self.then_branch.output_types(),
            self.else_branch.output_types(),
        );
        if then_types.len() != else_types.len() {
            return fail(format!(
                "the then branch has {} outputs, the else branch {}",
                then_types.len(),
                else_types.len()
            ));
        }
        then_types
            .iter()
            .zip(&else_types)
            .enumerate()
            .map(|(k, (a, b))| match least_specific(a, b) {
                Some(t) => Ok(t),
                None => Err(GraphError::op(
                    name,
                    format!(
                        "output {k} is {a} in the then branch but {b} in the else branch; \
                         branches must agree in dtype and rank"
                    ),
                )),
            })
            .collect()
    }
}

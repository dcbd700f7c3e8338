//! Type inference of `Dot` (NumPy `dot` for 1-d and 2-d operands).
//!
//! Owns: the shapes `dot` accepts (vector·vector, matrix·vector, vector·matrix,
//! matrix·matrix) and the static check of the contracted dimension.

use crate::dtype::promote;
use crate::error::{GraphError, Result};
use crate::ops::InputInfo;
use crate::types::TensorType;

pub(crate) fn infer_dot(name: &str, inputs: &[InputInfo]) -> Result<TensorType> {
    let [a, b] = inputs else {
        return Err(GraphError::op(name, "takes exactly two inputs"));
    };
    for (i, x) in [a, b].iter().enumerate() {
        if !(1..=2).contains(&x.ty.ndim()) {
            return Err(GraphError::op(
                name,
                format!(
                    "input {i} must be a vector or a matrix, got {} (batched products come \
                     with Blockwise; use multiplication for scalars)",
                    x.ty
                ),
            ));
        }
    }
    let k_a = *a.ty.shape.last().unwrap_or(&None);
    let k_b = b.ty.shape[0];
    if let (Some(m), Some(n)) = (k_a, k_b) {
        if m != n {
            return Err(GraphError::op(
                name,
                format!(
                    "the contracted dimensions differ: input 0 ({}) has {m}, input 1 ({}) has {n}",
                    a.ty, b.ty
                ),
            ));
        }
    }
    let mut shape = a.ty.shape[..a.ty.ndim() - 1].to_vec();
    if b.ty.ndim() == 2 {
        shape.push(b.ty.shape[1]);
    }
    Ok(TensorType::new(promote(a.ty.dtype, b.ty.dtype), shape))
}

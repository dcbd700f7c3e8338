//! Ops on compressed-sparse-row matrices (`Format::Csr`, issue 21): `SparseOp` and its type
//! rules.
//!
//! Owns: which sparse ops exist, which inputs each reads sparse or dense, and the types of
//! their outputs. Sparse inputs reach only these ops (and custom ops that accept them):
//! `Op::infer` refuses a sparse input anywhere else, naming the conversion to use.

use std::fmt;

use super::InputInfo;
use crate::dtype::{promote, DType};
use crate::error::{GraphError, Result};
use crate::types::TensorType;

/// An op reading or producing a sparse matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SparseOp {
    /// Dense matrix → CSR matrix of its non-zero entries.
    FromDense,
    /// CSR matrix → dense matrix.
    ToDense,
    /// The transposed CSR matrix.
    Transpose,
    /// CSR matrix (m, k) · dense (k,) or (k, n) → dense (m,) or (m, n).
    Dot,
    /// Sum of the stored values: all of them (`None`, a scalar), down the rows (`Some(0)`, a
    /// vector per column) or along the columns (`Some(1)`, a vector per row). Dense result;
    /// integer sums in int64, as NumPy.
    Sum { axis: Option<usize> },
    /// Element-wise product with a dense scalar or matrix (broadcast where its static size is
    /// 1): a CSR matrix of the same structure.
    Mul,
}

impl SparseOp {
    /// How many inputs the op takes.
    pub fn arity(&self) -> usize {
        match self {
            SparseOp::Dot | SparseOp::Mul => 2,
            SparseOp::FromDense
            | SparseOp::ToDense
            | SparseOp::Transpose
            | SparseOp::Sum { .. } => 1,
        }
    }

    pub(crate) fn infer(&self, name: &str, inputs: &[InputInfo]) -> Result<Vec<TensorType>> {
        let arity = self.arity();
        if inputs.len() != arity {
            return Err(GraphError::op(
                name,
                format!("takes {arity} inputs, got {}", inputs.len()),
            ));
        }
        let x = inputs[0].ty;
        let want_sparse = !matches!(self, SparseOp::FromDense);
        if x.is_sparse() != want_sparse || x.ndim() != 2 {
            let want = if want_sparse {
                "a sparse CSR matrix (make one with csr_from_dense or a csr_matrix input)"
            } else {
                "a dense matrix"
            };
            return Err(GraphError::op(
                name,
                format!("input 0 must be {want}, got {x}"),
            ));
        }
        if x.dtype == DType::Bool
            && !matches!(
                self,
                SparseOp::FromDense | SparseOp::ToDense | SparseOp::Transpose
            )
        {
            return Err(GraphError::op(
                name,
                format!("input 0 must be numeric, got {x}"),
            ));
        }
        let shape2 = [x.shape[0], x.shape[1]];
        Ok(vec![match self {
            SparseOp::FromDense => TensorType::csr(x.dtype, shape2),
            SparseOp::ToDense => TensorType::new(x.dtype, shape2.to_vec()),
            SparseOp::Transpose => TensorType::csr(x.dtype, [x.shape[1], x.shape[0]]),
            SparseOp::Sum { axis } => {
                let dtype = if x.dtype.is_float() {
                    x.dtype
                } else {
                    DType::Int64
                };
                match axis {
                    None => TensorType::scalar(dtype),
                    Some(0) => TensorType::new(dtype, vec![x.shape[1]]),
                    Some(1) => TensorType::new(dtype, vec![x.shape[0]]),
                    Some(a) => {
                        return Err(GraphError::op(
                            name,
                            format!("axis {a} is out of range for a matrix"),
                        ))
                    }
                }
            }
            SparseOp::Dot => {
                let b = dense_operand(name, inputs[1].ty)?;
                if !(1..=2).contains(&b.ndim()) {
                    return Err(GraphError::op(
                        name,
                        format!("input 1 must be a dense vector or matrix, got {b}"),
                    ));
                }
                if let (Some(k), Some(kb)) = (x.shape[1], b.shape[0]) {
                    if k != kb {
                        return Err(GraphError::op(
                            name,
                            format!(
                                "the contracted dimensions differ: input 0 ({x}) has {k} \
                                 columns, input 1 ({b}) has {kb} rows"
                            ),
                        ));
                    }
                }
                let mut shape = vec![x.shape[0]];
                if b.ndim() == 2 {
                    shape.push(b.shape[1]);
                }
                TensorType::new(promote(x.dtype, b.dtype), shape)
            }
            SparseOp::Mul => {
                let b = dense_operand(name, inputs[1].ty)?;
                match b.ndim() {
                    0 => {}
                    2 => {
                        for axis in 0..2 {
                            match (x.shape[axis], b.shape[axis]) {
                                (_, Some(1)) => {}
                                (Some(n), Some(m)) if n != m => {
                                    return Err(GraphError::op(
                                        name,
                                        format!(
                                            "dimension {axis} has static size {n} in input 0 \
                                             and {m} in input 1; they cannot broadcast"
                                        ),
                                    ))
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {
                        return Err(GraphError::op(
                            name,
                            format!("input 1 must be a dense scalar or matrix, got {b}"),
                        ))
                    }
                }
                TensorType::csr(promote(x.dtype, b.dtype), shape2)
            }
        }])
    }
}

fn dense_operand<'t>(name: &str, b: &'t TensorType) -> Result<&'t TensorType> {
    if b.is_sparse() || b.dtype == DType::Bool {
        return Err(GraphError::op(
            name,
            format!("input 1 must be a dense numeric tensor, got {b}"),
        ));
    }
    Ok(b)
}

impl fmt::Display for SparseOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SparseOp::FromDense => f.write_str("CsrFromDense"),
            SparseOp::ToDense => f.write_str("DenseFromCsr"),
            SparseOp::Transpose => f.write_str("CsrTranspose"),
            SparseOp::Dot => f.write_str("CsrDot"),
            SparseOp::Sum { axis: None } => f.write_str("CsrSum{axis=None}"),
            SparseOp::Sum { axis: Some(a) } => write!(f, "CsrSum{{axis={a}}}"),
            SparseOp::Mul => f.write_str("CsrMul"),
        }
    }
}

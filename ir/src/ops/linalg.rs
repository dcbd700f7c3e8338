//! Linear-algebra ops: type inference of `Dot` (NumPy `dot` for 1-d and 2-d operands)
//! and the dense core ops (`LinalgOp`: det, slogdet, inv, cholesky, solve,
//! solve_triangular, eigh, diagonal) with their gufunc signatures.
//!
//! Owns: the shapes each accepts (square matrices, right-hand sides with matching rows,
//! the contracted dimension of `dot`) and their static checks.

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

/// A dense linear-algebra core op on one matrix (and a right-hand side): computed by the
/// runtime through the `faer` crate in both backends. Inputs are float matrices (the
/// builders cast integers to float64); leading batch dimensions come with `Blockwise`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinalgOp {
    /// Determinant, `(m,m)->()`.
    Det,
    /// Sign and natural log of the absolute determinant, `(m,m)->(),()`.
    SlogDet,
    /// Inverse, `(m,m)->(m,m)`; a singular matrix is an error.
    Inv,
    /// Cholesky factor of a symmetric positive-definite matrix (read from its lower
    /// triangle), lower `L` or upper `Lᵀ`, `(m,m)->(m,m)`; otherwise an error.
    Cholesky { lower: bool },
    /// `a x = b` by LU with partial pivoting; `b` a vector (`b_ndim` 1, `(m,m),(m)->(m)`)
    /// or a matrix (`(m,m),(m,n)->(m,n)`); a singular `a` is an error.
    Solve { b_ndim: usize },
    /// `a x = b` for triangular `a` (only its lower or upper triangle is read).
    SolveTriangular { lower: bool, b_ndim: usize },
    /// Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix read from
    /// its lower triangle, `(m,m)->(m),(m,m)`.
    Eigh,
    /// The diagonal `a[i, i + offset]`, `(m,n)->(k)`.
    ExtractDiag { offset: i64 },
}

impl LinalgOp {
    /// The gufunc signature of the op (its core dimensions).
    pub fn signature(&self) -> super::blockwise::Signature {
        let s = match self {
            LinalgOp::Det => "(m,m)->()",
            LinalgOp::SlogDet => "(m,m)->(),()",
            LinalgOp::Inv | LinalgOp::Cholesky { .. } => "(m,m)->(m,m)",
            LinalgOp::Solve { b_ndim: 1 } | LinalgOp::SolveTriangular { b_ndim: 1, .. } => {
                "(m,m),(m)->(m)"
            }
            LinalgOp::Solve { .. } | LinalgOp::SolveTriangular { .. } => "(m,m),(m,n)->(m,n)",
            LinalgOp::Eigh => "(m,m)->(m),(m,m)",
            LinalgOp::ExtractDiag { .. } => "(m,n)->(k)",
        };
        super::blockwise::Signature::parse(s).expect("the built-in signatures parse")
    }

    /// The output types for core inputs of the given types.
    pub(crate) fn infer(&self, name: &str, inputs: &[InputInfo]) -> Result<Vec<TensorType>> {
        let n_in = match self {
            LinalgOp::Solve { .. } | LinalgOp::SolveTriangular { .. } => 2,
            _ => 1,
        };
        if inputs.len() != n_in {
            return Err(GraphError::op(
                name,
                format!("takes {n_in} input(s), got {}", inputs.len()),
            ));
        }
        let a = inputs[0].ty;
        let dtype = a.dtype;
        for (k, x) in inputs.iter().enumerate() {
            if !x.ty.dtype.is_float() || x.ty.dtype != dtype {
                return Err(GraphError::op(
                    name,
                    format!(
                        "input {k} must be a float matrix of input 0's dtype ({dtype}), got {}",
                        x.ty
                    ),
                ));
            }
        }
        if a.ndim() != 2 {
            return Err(GraphError::op(
                name,
                format!(
                    "input 0 must be a matrix, got {} (batches of matrices go through \
                     Blockwise: the linalg builders add it)",
                    a
                ),
            ));
        }
        let (r, c) = (a.shape[0], a.shape[1]);
        let square = || -> Result<Option<usize>> {
            match (r, c) {
                (Some(r), Some(c)) if r != c => Err(GraphError::op(
                    name,
                    format!("input 0 must be a square matrix, got {a}"),
                )),
                _ => Ok(r.or(c)),
            }
        };
        let t = |shape: Vec<Option<usize>>| TensorType::new(dtype, shape);
        Ok(match self {
            LinalgOp::Det => {
                square()?;
                vec![t(vec![])]
            }
            LinalgOp::SlogDet => {
                square()?;
                vec![t(vec![]), t(vec![])]
            }
            LinalgOp::Inv | LinalgOp::Cholesky { .. } => {
                let m = square()?;
                vec![t(vec![m, m])]
            }
            LinalgOp::Eigh => {
                let m = square()?;
                vec![t(vec![m]), t(vec![m, m])]
            }
            LinalgOp::Solve { b_ndim } | LinalgOp::SolveTriangular { b_ndim, .. } => {
                let m = square()?;
                let b = inputs[1].ty;
                if b.ndim() != *b_ndim {
                    return Err(GraphError::op(
                        name,
                        format!("input 1 must have {b_ndim} dimension(s), got {b}"),
                    ));
                }
                let rows = match (m, b.shape[0]) {
                    (Some(m), Some(n)) if m != n => {
                        return Err(GraphError::op(
                            name,
                            format!(
                                "input 1 ({b}) must have as many rows as input 0 ({a}) \
                                 has: {n} against {m}"
                            ),
                        ))
                    }
                    (m, n) => m.or(n),
                };
                let mut shape = vec![rows];
                shape.extend(b.shape.iter().skip(1).copied());
                vec![t(shape)]
            }
            LinalgOp::ExtractDiag { offset } => {
                let len = match (r, c) {
                    (Some(r), Some(c)) => Some(diagonal_len(r, c, *offset)),
                    _ => None,
                };
                vec![t(vec![len])]
            }
        })
    }
}

/// The length of the diagonal at `offset` of an `r × c` matrix (NumPy's `diagonal`).
pub fn diagonal_len(r: usize, c: usize, offset: i64) -> usize {
    let k = offset.unsigned_abs() as usize;
    if offset >= 0 {
        r.min(c.saturating_sub(k))
    } else {
        r.saturating_sub(k).min(c)
    }
}

impl std::fmt::Display for LinalgOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinalgOp::Det => f.write_str("Det"),
            LinalgOp::SlogDet => f.write_str("SlogDet"),
            LinalgOp::Inv => f.write_str("MatrixInverse"),
            LinalgOp::Cholesky { lower } => {
                write!(f, "Cholesky{{{}}}", if *lower { "lower" } else { "upper" })
            }
            LinalgOp::Solve { b_ndim } => write!(f, "Solve{{b_ndim={b_ndim}}}"),
            LinalgOp::SolveTriangular { lower, b_ndim } => write!(
                f,
                "SolveTriangular{{{}, b_ndim={b_ndim}}}",
                if *lower { "lower" } else { "upper" }
            ),
            LinalgOp::Eigh => f.write_str("Eigh"),
            LinalgOp::ExtractDiag { offset } => write!(f, "ExtractDiag{{offset={offset}}}"),
        }
    }
}

//! The sparse-matrix API (PyTensor's `pytensor.sparse` names): CSR inputs, conversions,
//! products, sums and scaling.
//!
//! Owns: the builders of `SparseOp` nodes. A sparse matrix is a `Var` of a `Format::Csr`
//! type; every other op refuses it with a hint to convert it (`dense_from_sparse`).

use crate::api::{normalize_axis, Operand};
use crate::dtype::DType;
use crate::error::Result;
use crate::ops::{Op, SparseOp};
use crate::types::TensorType;
use crate::var::Var;

/// A sparse CSR matrix input of unknown shape (`pytensor.sparse.csr_matrix(name, dtype)`).
///
/// ```
/// use tensorlift_ir::{api::sparse::csr_matrix, DType};
/// let s = csr_matrix("s", DType::Float64);
/// assert_eq!(s.ty().to_string(), "Csr(float64, shape=(?, ?))");
/// ```
pub fn csr_matrix(name: &str, dtype: DType) -> Var {
    Var::input(name, TensorType::csr(dtype, [None, None]))
}

/// The CSR matrix of a dense matrix's non-zero entries.
///
/// ```
/// use tensorlift_ir::api::sparse::csr_from_dense;
/// use tensorlift_ir::{matrix, DType};
/// let s = csr_from_dense(&matrix("d", DType::Float64));
/// assert_eq!(s.ty().to_string(), "Csr(float64, shape=(?, ?))");
/// ```
pub fn csr_from_dense(x: &Var) -> Var {
    Var::apply1(Op::Sparse(SparseOp::FromDense), vec![x.clone()])
}

/// The dense matrix of a sparse one (`pytensor.sparse.dense_from_sparse`, `.toarray()`).
///
/// ```
/// use tensorlift_ir::api::sparse::{csr_matrix, dense_from_sparse};
/// use tensorlift_ir::DType;
/// let d = dense_from_sparse(&csr_matrix("s", DType::Float64));
/// assert_eq!(d.ty().to_string(), "Matrix(float64, shape=(?, ?))");
/// ```
pub fn dense_from_sparse(s: &Var) -> Var {
    Var::apply1(Op::Sparse(SparseOp::ToDense), vec![s.clone()])
}

/// The transposed sparse matrix (`pytensor.sparse.transpose`, `x.T`).
///
/// ```
/// use tensorlift_ir::api::sparse::{csr_matrix, transpose};
/// use tensorlift_ir::DType;
/// let s = csr_matrix("s", DType::Float32);
/// assert_eq!(transpose(&s).ty(), s.ty());
/// ```
pub fn transpose(s: &Var) -> Var {
    Var::apply1(Op::Sparse(SparseOp::Transpose), vec![s.clone()])
}

/// PyTensor's name for `dot` with a sparse left operand.
///
/// ```
/// use tensorlift_ir::api::sparse::{csr_matrix, structured_dot};
/// use tensorlift_ir::DType;
/// let y = structured_dot(&csr_matrix("s", DType::Float64), &tensorlift_ir::vector("v", DType::Float64));
/// assert_eq!(y.ndim(), 1);
/// ```
pub fn structured_dot(s: &Var, dense: &Var) -> Var {
    dot(s, dense)
}

impl Var {
    /// The dense matrix of a sparse one (PyTensor's `x.toarray()`).
    ///
    /// ```
    /// use tensorlift_ir::api::sparse::{csr_matrix};
    /// use tensorlift_ir::DType;
    /// assert_eq!(csr_matrix("s", DType::Float64).toarray().ty().to_string(), "Matrix(float64, shape=(?, ?))");
    /// ```
    pub fn toarray(&self) -> Var {
        dense_from_sparse(self)
    }
}

/// The product of a sparse matrix (m, k) and a dense vector (k,) or matrix (k, n): a dense
/// result (`pytensor.sparse.dot` / `structured_dot`). Differentiable with respect to the
/// dense operand (`transpose(s) · g`).
///
/// ```
/// use tensorlift_ir::api::sparse::{csr_matrix, dot};
/// use tensorlift_ir::{matrix, DType};
/// let y = dot(&csr_matrix("s", DType::Float64), &matrix("d", DType::Float32));
/// assert_eq!(y.ty().to_string(), "Matrix(float64, shape=(?, ?))");
/// ```
pub fn dot(s: &Var, dense: &Var) -> Var {
    Var::apply1(Op::Sparse(SparseOp::Dot), vec![s.clone(), dense.clone()])
}

/// The sum of a sparse matrix's entries: all of them (`None`), or along `axis` (0: one sum
/// per column, 1: one per row; negative counts from the end). Dense result
/// (`pytensor.sparse.sp_sum`).
///
/// ```
/// use tensorlift_ir::api::sparse::{csr_matrix, sp_sum};
/// use tensorlift_ir::DType;
/// let s = csr_matrix("s", DType::Float64);
/// assert_eq!(sp_sum(&s, None).ndim(), 0);
/// assert_eq!(sp_sum(&s, Some(1)).ndim(), 1); // one sum per row
/// ```
pub fn sp_sum(s: &Var, axis: Option<isize>) -> Var {
    let build = || -> Result<Var> {
        s.check()?;
        let axis = axis
            .map(|a| normalize_axis("CsrSum", a, s.ndim()))
            .transpose()?;
        Ok(Var::apply1(
            Op::Sparse(SparseOp::Sum { axis }),
            vec![s.clone()],
        ))
    };
    build().unwrap_or_else(Var::invalid)
}

/// The element-wise product of a sparse matrix and a dense scalar or matrix (broadcast
/// where its static size is 1): a sparse matrix with the same stored positions
/// (`pytensor.sparse.mul`). Literals are weak, as elsewhere (`mul(&s, 2.0)` keeps float32).
///
/// ```
/// use tensorlift_ir::api::sparse::{csr_matrix, mul};
/// use tensorlift_ir::DType;
/// let s = csr_matrix("s", DType::Float32);
/// assert_eq!(mul(&s, 2.0).ty(), s.ty()); // a weak literal keeps float32
/// ```
pub fn mul(s: &Var, factor: impl Into<Operand>) -> Var {
    match Operand::resolve_all(vec![Operand::Var(s.clone()), factor.into()]) {
        Ok(v) => Var::apply1(Op::Sparse(SparseOp::Mul), v),
        Err(e) => Var::invalid(e),
    }
}

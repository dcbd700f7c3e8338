//! Linear-algebra builders: `dot` / `matmul` (NumPy `dot` for 1-d and 2-d operands,
//! batched matmul beyond), and the dense ops of `numpy.linalg` / `pytensor.tensor.linalg`
//! (`det`, `slogdet`, `inv`, `cholesky`, `solve`, `solve_triangular`, `eigh`, `eigvalsh`,
//! `diagonal`, `tril`/`triu`, `eye`) on matrices or batches of them (through `Blockwise`),
//! and `blockwise` for any core op.
//!
//! Integer and bool matrices are cast to float64 first (as NumPy and PyTensor do).

use std::sync::Arc;

use super::var_or_invalid;
use crate::dtype::{promote, DType};
use crate::error::{GraphError, Result};
use crate::ops::{Blockwise, LinalgOp, Op, Signature};
use crate::var::Var;

impl Var {
    /// NumPy's `dot` for vectors and matrices; for a sparse `self`, the sparse product
    /// (`sparse::dot`).
    ///
    /// ```
    /// use tensorlift_ir::{matrix, vector, DType};
    /// let (a, v) = (matrix("a", DType::Float64), vector("v", DType::Float64));
    /// assert_eq!(a.dot(&v).ndim(), 1); // matrix · vector
    /// assert_eq!(v.dot(&v).ndim(), 0); // inner product
    /// ```
    pub fn dot(&self, other: &Var) -> Var {
        if self.ty().is_sparse() {
            return crate::api::sparse::dot(self, other);
        }
        var_or_invalid((|| {
            self.check()?;
            other.check()?;
            let dtype = promote(self.dtype(), other.dtype());
            Ok(Var::apply1(
                Op::Dot,
                vec![self.cast(dtype), other.cast(dtype)],
            ))
        })())
    }

    /// NumPy's `matmul`: `dot` for 1-d and 2-d operands; with more dimensions, a batch
    /// of matrix products over the leading dimensions (which broadcast where statically 1).
    ///
    /// ```
    /// use tensorlift_ir::{tensor, DType};
    /// let a = tensor("a", DType::Float64, [Some(5), Some(2), Some(3)]);
    /// let b = tensor("b", DType::Float64, [Some(3), Some(4)]);
    /// assert_eq!(a.matmul(&b).static_shape(), &[Some(5), Some(2), Some(4)]);
    /// ```
    pub fn matmul(&self, other: &Var) -> Var {
        if self.ndim() <= 2 && other.ndim() <= 2 {
            return self.dot(other);
        }
        var_or_invalid((|| {
            self.check()?;
            other.check()?;
            if self.ndim() == 0 || other.ndim() == 0 {
                return Err(GraphError::op("matmul", "operands must not be scalars"));
            }
            let dtype = promote(self.dtype(), other.dtype());
            let a: &[&str] = if self.ndim() >= 2 {
                &["m", "k"]
            } else {
                &["k"]
            };
            let b: &[&str] = if other.ndim() >= 2 {
                &["k", "n"]
            } else {
                &["k"]
            };
            let out: Vec<&str> = a[..a.len() - 1].iter().chain(&b[1..]).copied().collect();
            let sig = format!("({}),({})->({})", a.join(","), b.join(","), out.join(","));
            let outs = blockwise(
                Op::Dot,
                Signature::parse(&sig)?,
                &[&self.cast(dtype), &other.cast(dtype)],
            )?;
            Ok(outs[0].clone())
        })())
    }

    /// NumPy's `diagonal(offset, axis1, axis2)`: the diagonal of the matrices spanned by
    /// `axis1` and `axis2`, as a new last dimension.
    ///
    /// ```
    /// use tensorlift_ir::{tensor, DType};
    /// let x = tensor("x", DType::Float64, [Some(7), Some(3), Some(4)]);
    /// assert_eq!(x.diagonal(1, -2, -1).static_shape(), &[Some(7), Some(3)]);
    /// ```
    pub fn diagonal(&self, offset: i64, axis1: isize, axis2: isize) -> Var {
        var_or_invalid((|| {
            self.check()?;
            let n = self.ndim();
            let norm = |a: isize| super::normalize_axis("diagonal", a, n);
            let (a1, a2) = (norm(axis1)?, norm(axis2)?);
            if a1 == a2 {
                return Err(GraphError::op(
                    "diagonal",
                    format!("axis1 and axis2 are the same axis ({a1}) of {}", self.ty()),
                ));
            }
            let mut order: Vec<isize> = (0..n)
                .filter(|d| *d != a1 && *d != a2)
                .map(|d| d as isize)
                .collect();
            order.extend([a1 as isize, a2 as isize]);
            let moved = if order.iter().enumerate().all(|(i, d)| i as isize == *d) {
                self.clone()
            } else {
                self.transpose(&order)
            };
            Ok(apply_core(LinalgOp::ExtractDiag { offset }, &[&moved])?.remove(0))
        })())
    }
}

/// `core` applied over the leading batch dimensions of `inputs` as the gufunc
/// `signature` says (e.g. `"(m,k),(k,n)->(m,n)"`); inputs without batch dimensions give
/// the core op itself. Batch dimensions broadcast only where statically 1.
///
/// ```
/// use tensorlift_ir::{api::linalg::blockwise, ops::{LinalgOp, Op, Signature}, tensor, DType};
/// let x = tensor("x", DType::Float64, [None, Some(3), Some(3)]);
/// let det = blockwise(Op::Linalg(LinalgOp::Det), Signature::parse("(m,m)->()")?, &[&x])?;
/// assert_eq!(det[0].static_shape(), &[None]);
/// # Ok::<(), tensorlift_ir::GraphError>(())
/// ```
pub fn blockwise(core: Op, signature: Signature, inputs: &[&Var]) -> Result<Vec<Var>> {
    for x in inputs {
        x.check()?;
    }
    let args: Vec<Var> = inputs.iter().map(|v| (*v).clone()).collect();
    let unbatched = args
        .iter()
        .zip(&signature.inputs)
        .all(|(x, core)| x.ndim() == core.len());
    if unbatched && args.len() == signature.inputs.len() {
        return Var::apply(core, args);
    }
    Var::apply(Op::Blockwise(Arc::new(Blockwise { core, signature })), args)
}

/// A linalg core op on float versions of `inputs` (of one promoted float dtype).
fn apply_core(op: LinalgOp, inputs: &[&Var]) -> Result<Vec<Var>> {
    for x in inputs {
        x.check()?;
    }
    let dtype = inputs
        .iter()
        .map(|x| x.dtype())
        .reduce(promote)
        .unwrap_or(DType::Float64);
    let dtype = if dtype.is_float() {
        dtype
    } else {
        DType::Float64
    };
    let cast: Vec<Var> = inputs.iter().map(|x| x.cast(dtype)).collect();
    blockwise(
        Op::Linalg(op),
        op.signature(),
        &cast.iter().collect::<Vec<_>>(),
    )
}

fn one(op: LinalgOp, inputs: &[&Var]) -> Var {
    var_or_invalid(apply_core(op, inputs).map(|mut v| v.remove(0)))
}

fn two(op: LinalgOp, x: &Var) -> (Var, Var) {
    match apply_core(op, &[x]) {
        Ok(v) if v.len() == 2 => (v[0].clone(), v[1].clone()),
        Ok(_) => {
            let e = GraphError::Internal(format!("{op} must have two outputs"));
            (Var::invalid(e.clone()), Var::invalid(e))
        }
        Err(e) => (Var::invalid(e.clone()), Var::invalid(e)),
    }
}

/// The determinant of a square matrix (or of each one of a batch).
///
/// ```
/// use tensorlift_ir::api::linalg::det;
/// use tensorlift_ir::{tensor, DType};
/// let batch = tensor("x", DType::Float64, [Some(4), Some(3), Some(3)]);
/// assert_eq!(det(&batch).static_shape(), &[Some(4)]); // one per matrix
/// ```
pub fn det(x: &Var) -> Var {
    one(LinalgOp::Det, &[x])
}

/// NumPy's `slogdet`: the sign of the determinant and the log of its absolute value
/// (sign 0 and log −inf for a singular matrix).
///
/// ```
/// use tensorlift_ir::api::linalg::{slogdet};
/// use tensorlift_ir::{tensor, DType};
/// let a = tensor("a", DType::Float64, [Some(3), Some(3)]);
/// let (sign, log_abs) = slogdet(&a);
/// assert_eq!((sign.ndim(), log_abs.ndim()), (0, 0));
/// ```
pub fn slogdet(x: &Var) -> (Var, Var) {
    two(LinalgOp::SlogDet, x)
}

/// The inverse of a square matrix; a singular one is an error when the function runs.
///
/// ```
/// use tensorlift_ir::api::linalg::{inv};
/// use tensorlift_ir::{tensor, DType};
/// let a = tensor("a", DType::Float64, [Some(3), Some(3)]);
/// assert_eq!(inv(&a).static_shape(), a.static_shape());
/// ```
pub fn inv(x: &Var) -> Var {
    one(LinalgOp::Inv, &[x])
}

/// The Cholesky factor of a symmetric positive-definite matrix: lower `L` with
/// `x = L Lᵀ` read from x's lower triangle, or upper `U = Lᵀ` read from its upper
/// triangle (SciPy's `cholesky(lower=False)`). A matrix that is not positive definite is
/// an error when the function runs.
///
/// ```
/// use tensorlift_ir::api::linalg::{cholesky};
/// use tensorlift_ir::{tensor, DType};
/// let a = tensor("a", DType::Float64, [Some(3), Some(3)]);
/// let (lower, upper) = (cholesky(&a, true), cholesky(&a, false));
/// assert_eq!(lower.static_shape(), upper.static_shape());
/// ```
pub fn cholesky(x: &Var, lower: bool) -> Var {
    one(LinalgOp::Cholesky { lower }, &[x])
}

/// The solution `x` of `a x = b` (NumPy's `solve`): `b` a vector when it has one
/// dimension, otherwise (batches of) matrices of right-hand sides, as NumPy 2 and
/// PyTensor read it; `solve_with` says which. A singular `a` is an error when the
/// function runs.
///
/// ```
/// use tensorlift_ir::api::linalg::{solve};
/// use tensorlift_ir::{tensor, DType};
/// let a = tensor("a", DType::Float64, [Some(3), Some(3)]);
/// let b = tensor("b", DType::Float64, [Some(3)]);
/// assert_eq!(solve(&a, &b).static_shape(), &[Some(3)]);
/// let rhs = tensor("rhs", DType::Float64, [Some(3), Some(5)]);
/// assert_eq!(solve(&a, &rhs).static_shape(), &[Some(3), Some(5)]);
/// ```
pub fn solve(a: &Var, b: &Var) -> Var {
    solve_with(a, b, default_b_ndim(b))
}

/// `solve` with the core of `b` given: `b_ndim` 1 for (batches of) vectors, 2 for
/// matrices (PyTensor's `b_ndim`).
///
/// ```
/// use tensorlift_ir::{api::linalg::solve_with, tensor, DType};
/// let a = tensor("a", DType::Float64, [Some(10), Some(3), Some(3)]);
/// let b = tensor("b", DType::Float64, [Some(10), Some(3)]);
/// assert_eq!(solve_with(&a, &b, 1).static_shape(), &[Some(10), Some(3)]);
/// ```
pub fn solve_with(a: &Var, b: &Var, b_ndim: usize) -> Var {
    match b_ndim {
        1 | 2 => one(LinalgOp::Solve { b_ndim }, &[a, b]),
        _ => Var::invalid(GraphError::op("solve", "b_ndim must be 1 or 2")),
    }
}

/// The solution of `a x = b` for a triangular `a` (only its `lower` or upper triangle is
/// read; SciPy's `solve_triangular`); `b` as in `solve`.
///
/// ```
/// use tensorlift_ir::api::linalg::{solve_triangular};
/// use tensorlift_ir::{tensor, DType};
/// let a = tensor("a", DType::Float64, [Some(3), Some(3)]);
/// let b = tensor("b", DType::Float64, [Some(3)]);
/// assert_eq!(solve_triangular(&a, &b, true).static_shape(), &[Some(3)]);
/// ```
pub fn solve_triangular(a: &Var, b: &Var, lower: bool) -> Var {
    solve_triangular_with(a, b, lower, default_b_ndim(b))
}

/// `solve_triangular` with the core of `b` given (as `solve_with`).
///
/// ```
/// use tensorlift_ir::api::linalg::solve_triangular_with;
/// use tensorlift_ir::{tensor, DType};
/// let a = tensor("a", DType::Float64, [Some(10), Some(3), Some(3)]);
/// let b = tensor("b", DType::Float64, [Some(10), Some(3)]);
/// // b is a batch of 10 vectors (core of 1 dimension), not one 10 × 3 matrix.
/// assert_eq!(solve_triangular_with(&a, &b, false, 1).static_shape(), &[Some(10), Some(3)]);
/// ```
pub fn solve_triangular_with(a: &Var, b: &Var, lower: bool, b_ndim: usize) -> Var {
    match b_ndim {
        1 | 2 => one(LinalgOp::SolveTriangular { lower, b_ndim }, &[a, b]),
        _ => Var::invalid(GraphError::op("solve_triangular", "b_ndim must be 1 or 2")),
    }
}

fn default_b_ndim(b: &Var) -> usize {
    if b.ndim() == 1 {
        1
    } else {
        2
    }
}

/// Eigenvalues (ascending) and eigenvectors (the columns) of a symmetric matrix read
/// from its lower triangle (NumPy's `eigh`).
///
/// ```
/// use tensorlift_ir::api::linalg::{eigh};
/// use tensorlift_ir::{tensor, DType};
/// let a = tensor("a", DType::Float64, [Some(3), Some(3)]);
/// let (values, vectors) = eigh(&a);
/// assert_eq!(values.static_shape(), &[Some(3)]);
/// assert_eq!(vectors.static_shape(), &[Some(3), Some(3)]);
/// ```
pub fn eigh(x: &Var) -> (Var, Var) {
    two(LinalgOp::Eigh, x)
}

/// The eigenvalues (ascending) of a symmetric matrix read from its lower triangle.
///
/// ```
/// use tensorlift_ir::api::linalg::{eigvalsh};
/// use tensorlift_ir::{tensor, DType};
/// let a = tensor("a", DType::Float64, [Some(3), Some(3)]);
/// assert_eq!(eigvalsh(&a).static_shape(), &[Some(3)]);
/// ```
pub fn eigvalsh(x: &Var) -> Var {
    eigh(x).0
}

/// `n × n` identity matrix of `dtype` (`n` symbolic or a literal).
///
/// ```
/// use tensorlift_ir::api::linalg::eye;
/// use tensorlift_ir::{scalar, DType};
/// assert_eq!(eye(3, DType::Float64).static_shape(), &[Some(3), Some(3)]);
/// let n = scalar("n", DType::Int64);
/// assert_eq!(eye(&n, DType::Int32).ty().to_string(), "Matrix(int32, shape=(?, ?))");
/// ```
pub fn eye(n: impl Into<super::Operand>, dtype: DType) -> Var {
    let n: super::Operand = n.into();
    let i = super::shape::arange(n.clone());
    let j = super::shape::arange(n);
    i.dimshuffle(&[Some(0), None])
        .equal(j.dimshuffle(&[None, Some(0)]))
        .cast(dtype)
}

/// Whether each position of x's last two dimensions is on or below the `k`-th diagonal
/// (`below`), or on or above it.
fn triangle_mask(x: &Var, k: i64, below: bool) -> Var {
    let n = x.ndim() as isize;
    let i = super::shape::arange(x.shape_i(n - 2)).dimshuffle(&[Some(0), None]);
    let j = super::shape::arange(x.shape_i(n - 1)).dimshuffle(&[None, Some(0)]);
    let d = &j - &i;
    if below {
        d.le(k)
    } else {
        d.ge(k)
    }
}

/// The lower triangle of (each matrix of) x: elements above the `k`-th diagonal zeroed.
///
/// ```
/// use tensorlift_ir::api::linalg::{tril};
/// use tensorlift_ir::{tensor, DType};
/// let a = tensor("a", DType::Float64, [Some(3), Some(3)]);
/// assert_eq!(tril(&a, 0).static_shape(), a.static_shape());
/// assert_eq!(tril(&a, -1).ty(), a.ty()); // the diagonal zeroed too
/// ```
pub fn tril(x: &Var, k: i64) -> Var {
    if x.ndim() < 2 {
        return Var::invalid(GraphError::op(
            "tril",
            format!("needs a matrix, got {}", x.ty()),
        ));
    }
    super::elemwise::switch(triangle_mask(x, k, true), x, 0)
}

/// The upper triangle of (each matrix of) x: elements below the `k`-th diagonal zeroed.
///
/// ```
/// use tensorlift_ir::api::linalg::{triu};
/// use tensorlift_ir::{tensor, DType};
/// let a = tensor("a", DType::Float64, [Some(3), Some(3)]);
/// assert_eq!(triu(&a, 1).ty(), a.ty());
/// ```
pub fn triu(x: &Var, k: i64) -> Var {
    if x.ndim() < 2 {
        return Var::invalid(GraphError::op(
            "triu",
            format!("needs a matrix, got {}", x.ty()),
        ));
    }
    super::elemwise::switch(triangle_mask(x, k, false), x, 0)
}

/// NumPy's `outer`: `out[i, j] = a[i] · b[j]` over the flattened operands (promoted as
/// any product).
///
/// ```
/// use tensorlift_ir::api::linalg::outer;
/// use tensorlift_ir::{tensor, DType};
/// let a = tensor("a", DType::Float64, [Some(3)]);
/// let b = tensor("b", DType::Int32, [Some(2), Some(2)]);
/// let o = outer(&a, &b);
/// assert_eq!(o.static_shape(), &[Some(3), Some(4)]);
/// assert_eq!(o.dtype(), DType::Float64);
/// ```
pub fn outer(a: &Var, b: &Var) -> Var {
    let column = a.flatten().dimshuffle(&[Some(0), None]);
    let row = b.flatten().dimshuffle(&[None, Some(0)]);
    column * row
}

/// The 2-norm over `axes` (NumPy's `norm` with its default order): the square root of
/// the sum of squares — a vector's Euclidean norm, a matrix's Frobenius norm
/// over `All`. Integers give float64.
///
/// ```
/// use tensorlift_ir::api::linalg::norm;
/// use tensorlift_ir::{matrix, All, DType};
/// let x = matrix("x", DType::Float64);
/// assert_eq!(norm(&x, All).ndim(), 0); // Frobenius
/// assert_eq!(norm(&x, 1).ndim(), 1); // one per row
/// ```
pub fn norm(x: &Var, axes: impl super::axes::Axes) -> Var {
    let x = if x.dtype().is_float() {
        x.clone()
    } else {
        x.cast(DType::Float64)
    };
    x.sqr().sum(axes).sqrt()
}

//! Evaluation of the sparse CSR ops (`SparseOp`, issue 21), for every backend.
//!
//! Owns: conversions between dense and CSR values, CSR · dense products, sums of stored
//! values and structured element-wise products. Operands are cast to the output dtype
//! first; integer arithmetic wraps, as NumPy's. Every size is checked against the other
//! operand before anything is read.

use ndarray::{Array1, Array2, ArrayD, Ix1, Ix2, IxDyn};
use tensorlift_ir::ops::SparseOp;
use tensorlift_ir::{CsrMatrix, DType, TensorData};

use crate::error::{Result, RuntimeError};
use crate::scalar::{cast, Scalar};
use crate::with_scalar_type;

/// An element type the sparse kernels multiply and add (integers wrap).
trait Ring: Scalar {
    fn mul(self, other: Self) -> Self;
}

macro_rules! ring {
    (wrapping $($t:ty),*) => {$(
        impl Ring for $t {
            fn mul(self, other: Self) -> Self { self.wrapping_mul(other) }
        }
    )*};
    (float $($t:ty),*) => {$(
        impl Ring for $t {
            fn mul(self, other: Self) -> Self { self * other }
        }
    )*};
}
ring!(wrapping i8, i16, i32, i64, u8);
ring!(float f32, f64);

/// Bool never reaches the kernels (the type rules refuse it); `and` keeps the trait total.
impl Ring for bool {
    fn mul(self, other: Self) -> Self {
        self && other
    }
}

/// Evaluates `op` on `args`; `out_dtype` is the node's output dtype and `b_static` the static
/// shape of input 1 (where `Mul` may broadcast).
pub fn eval_sparse(
    name: &str,
    op: SparseOp,
    out_dtype: DType,
    b_static: &[Option<usize>],
    args: &[TensorData],
) -> Result<TensorData> {
    let arity = op.arity();
    if args.len() != arity {
        return Err(RuntimeError::op(
            name,
            format!("takes {arity} inputs, got {}", args.len()),
        ));
    }
    let csr = || {
        args[0].as_csr().ok_or_else(|| {
            RuntimeError::op(
                name,
                format!(
                    "input 0 must be a sparse CSR matrix, got a dense array of shape {:?}",
                    args[0].shape()
                ),
            )
        })
    };
    match op {
        SparseOp::FromDense => CsrMatrix::from_dense(&args[0])
            .map(TensorData::from)
            .map_err(|e| RuntimeError::op(name, e.to_string())),
        SparseOp::ToDense => Ok(csr()?.to_dense()),
        SparseOp::Transpose => transpose(name, csr()?),
        SparseOp::Sum { axis } => {
            let m = csr()?;
            with_scalar_type!(out_dtype, T => sum::<T>(name, m, axis))
        }
        SparseOp::Dot => {
            let (m, b) = (csr()?, dense_operand(name, &args[1])?);
            with_scalar_type!(out_dtype, T => dot::<T>(name, m, b))
        }
        SparseOp::Mul => {
            let (m, b) = (csr()?, dense_operand(name, &args[1])?);
            with_scalar_type!(out_dtype, T => mul::<T>(name, m, b, b_static))
        }
    }
}

fn dense_operand<'a>(name: &str, b: &'a TensorData) -> Result<&'a TensorData> {
    if b.is_sparse() {
        return Err(RuntimeError::op(
            name,
            "input 1 must be a dense array, got a sparse matrix",
        ));
    }
    Ok(b)
}

/// The transposed matrix: entries counted per column, then placed row by row (so each
/// new row's columns come out increasing).
fn transpose(name: &str, m: &CsrMatrix) -> Result<TensorData> {
    let (rows, cols) = (m.rows(), m.cols());
    let mut indptr = vec![0usize; cols + 1];
    for &c in m.indices() {
        indptr[c + 1] += 1;
    }
    for c in 0..cols {
        indptr[c + 1] += indptr[c];
    }
    let mut next = indptr.clone();
    let mut indices = vec![0usize; m.nnz()];
    let mut order = vec![0usize; m.nnz()];
    for r in 0..rows {
        for k in m.row_range(r) {
            let c = m.indices()[k];
            indices[next[c]] = r;
            order[next[c]] = k;
            next[c] += 1;
        }
    }
    let values = tensorlift_ir::with_tensor_data!(m.values(), a => {
        let picked: Vec<_> = order.iter().map(|&k| a[[k]]).collect();
        tensorlift_ir::Element::wrap(ndarray::ArcArray::from_vec(picked).into_dyn())
    });
    CsrMatrix::from_parts([cols, rows], indptr, indices, values)
        .map(TensorData::from)
        .map_err(|e| RuntimeError::Internal(format!("{name}: {e}")))
}

/// The stored values of `m` in `T`.
fn values_as<T: Ring>(m: &CsrMatrix) -> Vec<T> {
    let v = cast(m.values(), T::DTYPE);
    v.as_array::<T>()
        .map(|a| a.iter().copied().collect())
        .unwrap_or_default()
}

fn sum<T: Ring>(name: &str, m: &CsrMatrix, axis: Option<usize>) -> Result<TensorData> {
    let values = values_as::<T>(m);
    let zero = T::from_i64(0);
    Ok(match axis {
        None => TensorData::scalar(values.iter().fold(zero, |acc, v| acc.add(*v))),
        Some(0) => {
            let mut out = vec![zero; m.cols()];
            for (k, &c) in m.indices().iter().enumerate() {
                out[c] = out[c].add(values[k]);
            }
            TensorData::from(Array1::from(out))
        }
        Some(1) => {
            let out: Vec<T> = (0..m.rows())
                .map(|r| m.row_range(r).fold(zero, |acc, k| acc.add(values[k])))
                .collect();
            TensorData::from(Array1::from(out))
        }
        Some(a) => {
            return Err(RuntimeError::op(
                name,
                format!("axis {a} is out of range for a matrix"),
            ))
        }
    })
}

fn dot<T: Ring>(name: &str, m: &CsrMatrix, b: &TensorData) -> Result<TensorData> {
    if !(1..=2).contains(&b.ndim()) || b.shape()[0] != m.cols() {
        return Err(RuntimeError::op(
            name,
            format!(
                "input 1 must have {} rows (the columns of the {:?} sparse matrix), got shape \
                 {:?}",
                m.cols(),
                m.shape(),
                b.shape()
            ),
        ));
    }
    let values = values_as::<T>(m);
    let b = cast(b, T::DTYPE);
    let b = b
        .as_array::<T>()
        .ok_or_else(|| RuntimeError::Internal(format!("{name}: cast to {}", T::DTYPE)))?;
    let zero = T::from_i64(0);
    if let Ok(v) = b.view().into_dimensionality::<Ix1>() {
        let out: Vec<T> = (0..m.rows())
            .map(|r| {
                m.row_range(r)
                    .fold(zero, |acc, k| acc.add(values[k].mul(v[m.indices()[k]])))
            })
            .collect();
        return Ok(TensorData::from(Array1::from(out)));
    }
    let b = b
        .into_dimensionality::<Ix2>()
        .map_err(|e| RuntimeError::Internal(format!("{name}: {e}")))?;
    let n = b.ncols();
    let mut out = Array2::from_elem((m.rows(), n), zero);
    for (r, mut row) in out.outer_iter_mut().enumerate() {
        for k in m.row_range(r) {
            let a = values[k];
            for (o, x) in row.iter_mut().zip(b.row(m.indices()[k])) {
                *o = o.add(a.mul(*x));
            }
        }
    }
    Ok(TensorData::from(out))
}

fn mul<T: Ring>(
    name: &str,
    m: &CsrMatrix,
    b: &TensorData,
    b_static: &[Option<usize>],
) -> Result<TensorData> {
    let values = values_as::<T>(m);
    let b = cast(b, T::DTYPE);
    let b = b
        .as_array::<T>()
        .ok_or_else(|| RuntimeError::Internal(format!("{name}: cast to {}", T::DTYPE)))?;
    let scaled: Vec<T> = match b.ndim() {
        0 => {
            let s = b.iter().next().copied().unwrap_or(T::from_i64(0));
            values.iter().map(|v| v.mul(s)).collect()
        }
        2 => {
            // Per axis: the size must be the matrix's, or a static 1 that broadcasts.
            let mut step = [1usize; 2];
            for (axis, step) in step.iter_mut().enumerate() {
                let size = b.shape()[axis];
                if b_static.get(axis) == Some(&Some(1)) && size == 1 {
                    *step = 0;
                } else if size != m.shape()[axis] {
                    return Err(RuntimeError::op(
                        name,
                        format!(
                            "input 1 has shape {:?} but the sparse matrix has {:?}; dimension \
                             {axis} must match (only a dimension of static size 1 broadcasts)",
                            b.shape(),
                            m.shape()
                        ),
                    ));
                }
            }
            let mut out = Vec::with_capacity(values.len());
            for r in 0..m.rows() {
                for k in m.row_range(r) {
                    let c = m.indices()[k];
                    out.push(values[k].mul(b[[r * step[0], c * step[1]]]));
                }
            }
            out
        }
        n => {
            return Err(RuntimeError::op(
                name,
                format!("input 1 must be a scalar or a matrix, got {n} dimensions"),
            ))
        }
    };
    let scaled = TensorData::from(
        ArrayD::from_shape_vec(IxDyn(&[scaled.len()]), scaled)
            .map_err(|e| RuntimeError::Internal(format!("{name}: {e}")))?,
    );
    m.with_values(scaled)
        .map(TensorData::from)
        .map_err(|e| RuntimeError::op(name, e.to_string()))
}

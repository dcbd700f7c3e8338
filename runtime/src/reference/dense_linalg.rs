//! The dense linear-algebra core ops (`LinalgOp`) through the `faer` crate: on one
//! matrix (the interpreter's `eval_linalg`) and over a whole batch written straight into
//! the outputs (`run_batched_linalg`, the JIT's Blockwise of a linalg op). Both run the
//! same per-matrix function on contiguous row-major slices.
//!
//! Owns: NumPy/SciPy's conventions — which triangle is read (cholesky and eigh the lower
//! one, upper cholesky and `solve_triangular` the one they are asked for), eigenvalues
//! ascending, errors for a singular matrix (solve, inv: an exactly zero pivot, as
//! LAPACK's `getrf`) and a matrix that is not positive definite (cholesky); `det` of a
//! singular matrix is 0 and `slogdet` gives sign 0 and log −inf, as NumPy.

use std::borrow::Cow;

use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::linalg::solvers::{DenseSolveCore, Solve};
use faer::{MatMut, MatRef, Par, Side};
use tensorlift_ir::ops::{Blockwise, LinalgOp};
use tensorlift_ir::{DType, Element, TensorData};

use crate::blockwise::{batch_layout, fill_batch};
use crate::error::{Result, RuntimeError};

/// Memory for a batched result, from a caller that keeps buffers between calls.
pub enum FloatVec {
    F64(Vec<f64>),
    F32(Vec<f32>),
}

/// Where `run_batched_linalg` gets its output memory: a buffer of exactly that many
/// elements of that dtype (with any values), or `None` for a fresh one.
pub type Reuse<'a> = &'a (dyn Fn(DType, usize) -> Option<FloatVec> + Sync);

/// The float element types the linalg ops run in.
trait Real: Element + faer::traits::RealField + Copy + Into<f64> {
    fn of(v: f64) -> Self;
    fn from_float_vec(v: FloatVec) -> Option<Vec<Self>>;
}

impl Real for f64 {
    fn of(v: f64) -> f64 {
        v
    }
    fn from_float_vec(v: FloatVec) -> Option<Vec<f64>> {
        match v {
            FloatVec::F64(v) => Some(v),
            FloatVec::F32(_) => None,
        }
    }
}

impl Real for f32 {
    fn of(v: f64) -> f32 {
        v as f32
    }
    fn from_float_vec(v: FloatVec) -> Option<Vec<f32>> {
        match v {
            FloatVec::F32(v) => Some(v),
            FloatVec::F64(_) => None,
        }
    }
}

/// Evaluates `op` on core (2-d, and a right-hand side) float inputs.
pub fn eval_linalg(name: &str, op: LinalgOp, args: &[&TensorData]) -> Result<Vec<TensorData>> {
    let Some(first) = args.first() else {
        return Err(RuntimeError::Internal(format!("{name}: no input")));
    };
    match first.dtype() {
        DType::Float64 => eval_typed::<f64>(name, op, args),
        DType::Float32 => eval_typed::<f32>(name, op, args),
        other => Err(RuntimeError::op(
            name,
            format!("input 0 must be float32 or float64, got {other}"),
        )),
    }
}

/// Runs the Blockwise `bw` of the linalg op `op` over the whole batch of `args`,
/// writing each result into its place in the outputs (memory from `reuse` when it has
/// some); with `parallel`, parts of the batch run on the rayon pool (each with its own
/// scratch memory).
pub fn run_batched_linalg(
    name: &str,
    op: LinalgOp,
    bw: &Blockwise,
    static_shapes: &[&[Option<usize>]],
    args: &[TensorData],
    parallel: bool,
    reuse: Reuse,
) -> Result<Vec<TensorData>> {
    let call = (name, op, bw, static_shapes, args, parallel, reuse);
    match args.first().map(TensorData::dtype) {
        Some(DType::Float64) => batched::<f64>(call),
        Some(DType::Float32) => batched::<f32>(call),
        other => Err(RuntimeError::op(
            name,
            format!("input 0 must be float32 or float64, got {other:?}"),
        )),
    }
}

/// The elements of `x` in row-major order, borrowed when already contiguous.
fn contiguous<'a, T: Real>(name: &str, k: usize, x: &'a TensorData) -> Result<Cow<'a, [T]>> {
    let view = x.as_array::<T>().ok_or_else(|| {
        RuntimeError::op(
            name,
            format!("input {k} must be {}, got {}", T::DTYPE, x.dtype()),
        )
    })?;
    Ok(match view.to_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(view.iter().copied().collect()),
    })
}

fn eval_typed<T: Real>(name: &str, op: LinalgOp, args: &[&TensorData]) -> Result<Vec<TensorData>> {
    let data: Vec<Cow<[T]>> = args
        .iter()
        .enumerate()
        .map(|(k, x)| contiguous::<T>(name, k, x))
        .collect::<Result<_>>()?;
    let shapes: Vec<&[usize]> = args.iter().map(|x| x.shape()).collect();
    let out_shapes = output_shapes(name, op, &shapes)?;
    let mut outs: Vec<Vec<T>> = out_shapes
        .iter()
        .map(|s| vec![T::of(0.0); s.iter().product()])
        .collect();
    let ins: Vec<&[T]> = data.iter().map(|d| d.as_ref()).collect();
    let mut scratch = MemBuffer::new(scratch_for::<T>(op, &shapes));
    let mut slices: Vec<&mut [T]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
    compute(op, &ins, &shapes, &mut slices, MemStack::new(&mut scratch))
        .map_err(|m| RuntimeError::op(name, m))?;
    outs.into_iter()
        .zip(&out_shapes)
        .map(|(v, s)| TensorData::from_vec(s, v).map_err(RuntimeError::from))
        .collect()
}

/// The arguments of `run_batched_linalg`.
type BatchedCall<'a> = (
    &'a str,
    LinalgOp,
    &'a Blockwise,
    &'a [&'a [Option<usize>]],
    &'a [TensorData],
    bool,
    Reuse<'a>,
);

fn batched<T: Real>(call: BatchedCall) -> Result<Vec<TensorData>> {
    let (name, op, bw, static_shapes, args, parallel, reuse) = call;
    let layout = batch_layout(name, bw, static_shapes, args)?;
    let data: Vec<Cow<[T]>> = args
        .iter()
        .enumerate()
        .map(|(k, x)| contiguous::<T>(name, k, x))
        .collect::<Result<_>>()?;
    let core_shapes: Vec<&[usize]> = args
        .iter()
        .zip(&layout.own_batch)
        .map(|(x, own)| &x.shape()[*own..])
        .collect();
    let out_cores = output_shapes(name, op, &core_shapes)?;
    let n: usize = layout.batch.iter().product();
    let mut out_shapes = Vec::new();
    for core in &out_cores {
        let mut shape = layout.batch.to_vec();
        shape.extend_from_slice(core);
        crate::memory::check_output(name, T::DTYPE, &shape)?;
        out_shapes.push(shape);
    }
    let core_lens: Vec<usize> = out_cores.iter().map(|c| c.iter().product()).collect();
    let in_lens: Vec<usize> = core_shapes.iter().map(|c| c.iter().product()).collect();
    // Every element of every output is written (`compute` fills its core blocks).
    let mut outs: Vec<Vec<T>> = core_lens
        .iter()
        .map(|l| {
            reuse(T::DTYPE, l * n)
                .and_then(T::from_float_vec)
                .filter(|v| v.len() == l * n)
                .unwrap_or_else(|| vec![T::of(0.0); l * n])
        })
        .collect();
    let req = scratch_for::<T>(op, &core_shapes);
    fill_batch(
        n,
        parallel,
        &mut outs,
        &core_lens,
        || MemBuffer::new(req),
        |scratch, i, element| {
            let ins: smallvec::SmallVec<[&[T]; 2]> = data
                .iter()
                .enumerate()
                .map(|(k, d)| {
                    let at = layout.offset(k, args[k].shape(), i);
                    &d[at..at + in_lens[k]]
                })
                .collect();
            compute(op, &ins, &core_shapes, element, MemStack::new(scratch))
                .map_err(|m| RuntimeError::op(name, format!("batch element {i}: {m}")))
        },
    )?;
    outs.into_iter()
        .zip(&out_shapes)
        .map(|(v, s)| TensorData::from_vec(s, v).map_err(RuntimeError::from))
        .collect()
}

/// The core output shapes of `op` for core inputs of the given shapes, or the error.
fn output_shapes(name: &str, op: LinalgOp, shapes: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
    let n_inputs = match op {
        LinalgOp::Solve { .. } | LinalgOp::SolveTriangular { .. } => 2,
        _ => 1,
    };
    if shapes.len() != n_inputs || shapes[0].len() != 2 {
        return Err(RuntimeError::Internal(format!(
            "{name}: core inputs of shapes {shapes:?}"
        )));
    }
    let (r, c) = (shapes[0][0], shapes[0][1]);
    let square = || {
        if r == c {
            Ok(r)
        } else {
            Err(RuntimeError::op(
                name,
                format!("input 0 must be a square matrix, got shape ({r}, {c})"),
            ))
        }
    };
    Ok(match op {
        LinalgOp::ExtractDiag { offset } => {
            vec![vec![tensorlift_ir::ops::linalg::diagonal_len(r, c, offset)]]
        }
        LinalgOp::Det => {
            square()?;
            vec![vec![]]
        }
        LinalgOp::SlogDet => {
            square()?;
            vec![vec![], vec![]]
        }
        LinalgOp::Inv | LinalgOp::Cholesky { .. } => {
            let m = square()?;
            vec![vec![m, m]]
        }
        LinalgOp::Eigh => {
            let m = square()?;
            vec![vec![m], vec![m, m]]
        }
        LinalgOp::Solve { .. } | LinalgOp::SolveTriangular { .. } => {
            let m = square()?;
            let b = shapes[1];
            if b.is_empty() || b.len() > 2 || b[0] != m {
                return Err(RuntimeError::op(
                    name,
                    format!("input 1 has shape {b:?} but input 0 is {m}×{m}: its rows must agree"),
                ));
            }
            vec![b.to_vec()]
        }
    })
}

/// The scratch memory `compute` needs for inputs of these core shapes.
fn scratch_for<T: Real>(op: LinalgOp, shapes: &[&[usize]]) -> StackReq {
    match op {
        LinalgOp::Cholesky { .. } => {
            faer::linalg::cholesky::llt::factor::cholesky_in_place_scratch::<T>(
                shapes[0][0],
                Par::Seq,
                Default::default(),
            )
        }
        LinalgOp::Det
        | LinalgOp::SlogDet
        | LinalgOp::Inv
        | LinalgOp::Solve { .. }
        | LinalgOp::SolveTriangular { .. }
        | LinalgOp::Eigh
        | LinalgOp::ExtractDiag { .. } => StackReq::EMPTY,
    }
}

/// `op` on one set of core inputs (contiguous row-major slices of the given shapes),
/// writing every element of each output (of its core shape) in place.
fn compute<T: Real>(
    op: LinalgOp,
    ins: &[&[T]],
    shapes: &[&[usize]],
    outs: &mut [&mut [T]],
    stack: &mut MemStack,
) -> std::result::Result<(), String> {
    let (r, c) = (shapes[0][0], shapes[0][1]);
    let a = MatRef::from_row_major_slice(ins[0], r, c);
    let zero = T::of(0.0);
    match op {
        LinalgOp::ExtractDiag { offset } => {
            let (r0, c0) = ((-offset).max(0) as usize, offset.max(0) as usize);
            for (i, o) in outs[0].iter_mut().enumerate() {
                *o = a[(r0 + i, c0 + i)];
            }
        }
        LinalgOp::Det => outs[0][0] = a.determinant(),
        LinalgOp::SlogDet => {
            let lu = a.partial_piv_lu();
            let u = lu.U();
            let mut sign = permutation_sign(lu.P().arrays().0);
            let mut log = 0.0f64;
            for i in 0..r {
                let d: f64 = u[(i, i)].into();
                if d == 0.0 {
                    (sign, log) = (0.0, f64::NEG_INFINITY);
                    break;
                }
                if d < 0.0 {
                    sign = -sign;
                }
                log += d.abs().ln();
            }
            outs[0][0] = T::of(sign);
            outs[1][0] = T::of(log);
        }
        LinalgOp::Inv => {
            let lu = lu_nonsingular(a)?;
            let inv = lu.inverse();
            let mut out = MatMut::from_row_major_slice_mut(&mut *outs[0], r, r);
            out.copy_from(inv.as_ref());
        }
        LinalgOp::Solve { b_ndim } => {
            let lu = lu_nonsingular(a)?;
            outs[0].copy_from_slice(ins[1]);
            lu.solve_in_place(rhs_mut(outs[0], r, b_ndim));
        }
        LinalgOp::SolveTriangular { lower, b_ndim } => {
            // faer reads only the triangle it solves with.
            outs[0].copy_from_slice(ins[1]);
            let rhs = rhs_mut(outs[0], r, b_ndim);
            if lower {
                faer::linalg::triangular_solve::solve_lower_triangular_in_place(a, rhs, Par::Seq);
            } else {
                faer::linalg::triangular_solve::solve_upper_triangular_in_place(a, rhs, Par::Seq);
            }
        }
        LinalgOp::Cholesky { lower } => {
            // faer factors column-major storage fastest. The triangle read is laid out
            // as the lower triangle of a column-major matrix (a's lower triangle
            // transposed into place; a's upper one as it is, since row-major aᵀ is
            // column-major a), factored in place; the factor L read back row-major is
            // U = Lᵀ, and is transposed for the lower result.
            let out = &mut *outs[0];
            for i in 0..r {
                for j in 0..r {
                    out[i * r + j] = match (lower, j <= i, j >= i) {
                        (true, _, true) => ins[0][j * r + i],
                        (false, _, true) => ins[0][i * r + j],
                        _ => zero,
                    };
                }
            }
            faer::linalg::cholesky::llt::factor::cholesky_in_place(
                MatMut::from_column_major_slice_mut(&mut *out, r, r),
                Default::default(),
                Par::Seq,
                stack,
                Default::default(),
            )
            .map_err(|e| {
                let faer::linalg::cholesky::llt::factor::LltError::NonPositivePivot { index } = e;
                format!(
                    "the matrix is not positive definite (the leading minor of order {} is \
                     not positive)",
                    index + 1
                )
            })?;
            // Row-major, the factor is in the upper triangle (the factoring may leave
            // values in the lower one).
            for i in 0..r {
                for j in 0..i {
                    out[i * r + j] = if lower { out[j * r + i] } else { zero };
                    if lower {
                        out[j * r + i] = zero;
                    }
                }
            }
        }
        LinalgOp::Eigh => {
            let evd = a
                .self_adjoint_eigen(Side::Lower)
                .map_err(|_| "the eigenvalue iteration did not converge".to_string())?;
            let s = evd.S();
            for (i, w) in outs[0].iter_mut().enumerate() {
                *w = s[i];
            }
            let mut v = MatMut::from_row_major_slice_mut(&mut *outs[1], r, r);
            v.copy_from(evd.U());
        }
    }
    Ok(())
}

/// A right-hand side held row-major in `data`: `m` rows, one column for a vector.
fn rhs_mut<T: Real>(data: &mut [T], m: usize, b_ndim: usize) -> MatMut<'_, T> {
    let k = if b_ndim == 1 || m == 0 {
        1
    } else {
        data.len() / m
    };
    if b_ndim == 1 {
        MatMut::from_column_major_slice_mut(data, m, 1)
    } else {
        MatMut::from_row_major_slice_mut(data, m, k)
    }
}

/// The LU factors of a square matrix, or the singular-matrix error.
fn lu_nonsingular<T: Real>(
    a: MatRef<'_, T>,
) -> std::result::Result<faer::linalg::solvers::PartialPivLu<T>, String> {
    let lu = a.partial_piv_lu();
    let u = lu.U();
    if (0..a.nrows()).any(|i| u[(i, i)] == T::of(0.0)) {
        return Err("the matrix is singular".into());
    }
    Ok(lu)
}

/// +1 or −1: the parity of the permutation `p` (as the image of each index).
fn permutation_sign(p: &[usize]) -> f64 {
    let mut seen = vec![false; p.len()];
    let mut sign = 1.0;
    for start in 0..p.len() {
        let mut len = 0;
        let mut i = start;
        while !seen[i] {
            seen[i] = true;
            i = p[i];
            len += 1;
        }
        if len > 0 && len % 2 == 0 {
            sign = -sign;
        }
    }
    sign
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_parity() {
        assert_eq!(permutation_sign(&[0, 1, 2]), 1.0);
        assert_eq!(permutation_sign(&[1, 0, 2]), -1.0);
        assert_eq!(permutation_sign(&[1, 2, 0]), 1.0);
    }
}

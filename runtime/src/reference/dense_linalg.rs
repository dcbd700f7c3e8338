//! The dense linear-algebra core ops (`LinalgOp`) on one matrix, through the `faer`
//! crate: the single implementation both backends call.
//!
//! Owns: conversion between ndarray views and faer matrices, and NumPy/SciPy's conventions:
//! which triangle is read (cholesky and eigh the lower one, upper cholesky and
//! `solve_triangular` the one they are asked for), eigenvalues ascending, and errors for a
//! singular matrix (solve, inv: an exactly zero pivot, as LAPACK's `getrf`) and a matrix
//! that is not positive definite (cholesky). `det` of a singular matrix is 0 and `slogdet`
//! gives sign 0 and log −inf, as NumPy.

use faer::linalg::solvers::{DenseSolveCore, Solve};
use faer::{Mat, MatRef, Side};
use ndarray::{Array1, Array2, ArrayView2, Ix2};
use tensorlift_ir::ops::LinalgOp;
use tensorlift_ir::{DType, Element, TensorData};

use crate::error::{Result, RuntimeError};

/// The float element types the linalg ops run in.
trait Real: Element + faer::traits::RealField + Copy + Into<f64> {
    fn of(v: f64) -> Self;
}

impl Real for f64 {
    fn of(v: f64) -> f64 {
        v
    }
}

impl Real for f32 {
    fn of(v: f64) -> f32 {
        v as f32
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

fn matrix<'a, T: Real>(name: &str, k: usize, x: &'a TensorData) -> Result<ArrayView2<'a, T>> {
    x.as_array::<T>()
        .and_then(|a| a.into_dimensionality::<Ix2>().ok())
        .ok_or_else(|| {
            RuntimeError::op(
                name,
                format!(
                    "input {k} must be a {} matrix, got shape {:?}",
                    T::DTYPE,
                    x.shape()
                ),
            )
        })
}

/// A faer copy of `a` (or of its transpose).
fn to_faer<T: Real>(a: &ArrayView2<T>, transpose: bool) -> Mat<T> {
    let (r, c) = a.dim();
    if transpose {
        Mat::from_fn(c, r, |i, j| a[[j, i]])
    } else {
        Mat::from_fn(r, c, |i, j| a[[i, j]])
    }
}

fn from_faer<T: Real>(m: MatRef<'_, T>) -> TensorData {
    TensorData::from_array(Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| {
        m[(i, j)]
    }))
}

/// The right-hand side as a matrix (a vector is one column) and whether it was a vector.
fn rhs<T: Real>(name: &str, b: &TensorData) -> Result<(Mat<T>, bool)> {
    let view = b.as_array::<T>().ok_or_else(|| {
        RuntimeError::op(
            name,
            format!("input 1 must be {}, got {}", T::DTYPE, b.dtype()),
        )
    })?;
    match view.ndim() {
        1 => Ok((Mat::from_fn(view.len(), 1, |i, _| view[[i]]), true)),
        2 => Ok((
            Mat::from_fn(view.shape()[0], view.shape()[1], |i, j| view[[i, j]]),
            false,
        )),
        n => Err(RuntimeError::op(
            name,
            format!("input 1 must be a vector or a matrix, got {n} dimensions"),
        )),
    }
}

fn rhs_out<T: Real>(x: Mat<T>, vector: bool) -> TensorData {
    if vector {
        TensorData::from_array(Array1::from_shape_fn(x.nrows(), |i| x[(i, 0)]))
    } else {
        from_faer(x.as_ref())
    }
}

fn square<T: Real>(name: &str, a: &ArrayView2<T>) -> Result<usize> {
    let (r, c) = a.dim();
    if r != c {
        return Err(RuntimeError::op(
            name,
            format!("input 0 must be a square matrix, got shape ({r}, {c})"),
        ));
    }
    Ok(r)
}

fn rows_match<T: Real>(name: &str, n: usize, b: &Mat<T>) -> Result<()> {
    if b.nrows() != n {
        return Err(RuntimeError::op(
            name,
            format!(
                "input 1 has {} rows but input 0 is {n}×{n}: the sizes must agree",
                b.nrows()
            ),
        ));
    }
    Ok(())
}

/// The LU factors of a square matrix, or the singular-matrix error.
fn lu_nonsingular<T: Real>(
    name: &str,
    a: &Mat<T>,
) -> Result<faer::linalg::solvers::PartialPivLu<T>> {
    let lu = a.partial_piv_lu();
    let u = lu.U();
    if (0..a.nrows()).any(|i| u[(i, i)] == T::of(0.0)) {
        return Err(RuntimeError::op(name, "the matrix is singular"));
    }
    Ok(lu)
}

/// The matrix with the triangle that is not read zeroed (`lower`: keep i ≥ j).
fn triangle<T: Real>(a: &ArrayView2<T>, lower: bool) -> Mat<T> {
    let (r, c) = a.dim();
    Mat::from_fn(r, c, |i, j| {
        if (lower && i >= j) || (!lower && i <= j) {
            a[[i, j]]
        } else {
            T::of(0.0)
        }
    })
}

fn eval_typed<T: Real>(name: &str, op: LinalgOp, args: &[&TensorData]) -> Result<Vec<TensorData>> {
    let a = matrix::<T>(name, 0, args[0])?;
    let n_inputs = match op {
        LinalgOp::Solve { .. } | LinalgOp::SolveTriangular { .. } => 2,
        _ => 1,
    };
    if args.len() != n_inputs {
        return Err(RuntimeError::Internal(format!(
            "{name}: {} inputs, expected {n_inputs}",
            args.len()
        )));
    }
    let scalar = |v: T| TensorData::from_array(ndarray::arr0(v));
    Ok(match op {
        LinalgOp::ExtractDiag { offset } => {
            let (r, c) = a.dim();
            let len = tensorlift_ir::ops::linalg::diagonal_len(r, c, offset);
            let (r0, c0) = ((-offset).max(0) as usize, offset.max(0) as usize);
            vec![TensorData::from_array(Array1::from_shape_fn(len, |i| {
                a[[r0 + i, c0 + i]]
            }))]
        }
        LinalgOp::Det => {
            square(name, &a)?;
            vec![scalar(to_faer(&a, false).determinant())]
        }
        LinalgOp::SlogDet => {
            let n = square(name, &a)?;
            let lu = to_faer(&a, false).partial_piv_lu();
            let u = lu.U();
            let mut sign = permutation_sign(lu.P().arrays().0);
            let mut log = 0.0f64;
            for i in 0..n {
                let d: f64 = u[(i, i)].into();
                if d == 0.0 {
                    return Ok(vec![scalar(T::of(0.0)), scalar(T::of(f64::NEG_INFINITY))]);
                }
                if d < 0.0 {
                    sign = -sign;
                }
                log += d.abs().ln();
            }
            vec![scalar(T::of(sign)), scalar(T::of(log))]
        }
        LinalgOp::Inv => {
            square(name, &a)?;
            let lu = lu_nonsingular(name, &to_faer(&a, false))?;
            vec![from_faer(lu.inverse().as_ref())]
        }
        LinalgOp::Cholesky { lower } => {
            square(name, &a)?;
            // Upper: the lower factor of aᵀ (a's upper triangle), transposed.
            let m = to_faer(&a, !lower);
            let llt = m.llt(Side::Lower).map_err(|e| {
                let faer::linalg::cholesky::llt::factor::LltError::NonPositivePivot { index } = e;
                RuntimeError::op(
                    name,
                    format!(
                        "the matrix is not positive definite (the leading minor of order {} \
                         is not positive)",
                        index + 1
                    ),
                )
            })?;
            let l = llt.L();
            let n = l.nrows();
            let factor = Mat::from_fn(n, n, |i, j| match (lower, i >= j, i <= j) {
                (true, true, _) => l[(i, j)],
                (false, _, true) => l[(j, i)],
                _ => T::of(0.0),
            });
            vec![from_faer(factor.as_ref())]
        }
        LinalgOp::Solve { .. } => {
            let n = square(name, &a)?;
            let (mut b, vector) = rhs::<T>(name, args[1])?;
            rows_match(name, n, &b)?;
            let lu = lu_nonsingular(name, &to_faer(&a, false))?;
            lu.solve_in_place(b.as_mut());
            vec![rhs_out(b, vector)]
        }
        LinalgOp::SolveTriangular { lower, .. } => {
            let n = square(name, &a)?;
            let (mut b, vector) = rhs::<T>(name, args[1])?;
            rows_match(name, n, &b)?;
            let t = triangle(&a, lower);
            if lower {
                t.solve_lower_triangular_in_place(b.as_mut());
            } else {
                t.solve_upper_triangular_in_place(b.as_mut());
            }
            vec![rhs_out(b, vector)]
        }
        LinalgOp::Eigh => {
            square(name, &a)?;
            let m = to_faer(&a, false);
            let evd = m
                .self_adjoint_eigen(Side::Lower)
                .map_err(|_| RuntimeError::op(name, "the eigenvalue iteration did not converge"))?;
            let s = evd.S();
            let w = Array1::from_shape_fn(s.dim(), |i| s[i]);
            vec![TensorData::from_array(w), from_faer(evd.U())]
        }
    })
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

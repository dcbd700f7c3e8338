//! The Dot kernel of the reference interpreter: NumPy `dot` of vectors and matrices.
//!
//! Owns: the run-time check of the contracted dimension. Floats use ndarray's `dot`
//! (backed by the `matrixmultiply` gemm); integers use a wrapping int64 loop (NumPy wraps
//! on overflow); bool is "any of and".

use ndarray::{ArrayViewD, Ix1, Ix2};
use tensorlift_ir::{DType, Element, TensorData};

use crate::error::{Result, RuntimeError};
use crate::scalar::cast;

/// Checks that `dot`'s contracted sizes agree (a's last, b's first); the JIT runs the same
/// check before its kernels.
pub fn eval_dot(name: &str, a: &TensorData, b: &TensorData) -> Result<TensorData> {
    let out_shape = crate::output_shape::dot(name, a.shape(), b.shape())?;
    let dtype = tensorlift_ir::promote(a.dtype(), b.dtype());
    crate::memory::check_output(name, dtype, &out_shape)?;
    match dtype {
        DType::Float64 => float_dot::<f64>(name, &cast(a, dtype), &cast(b, dtype)),
        DType::Float32 => float_dot::<f32>(name, &cast(a, dtype), &cast(b, dtype)),
        _ => {
            let out = int_dot(name, &cast(a, DType::Int64), &cast(b, DType::Int64))?;
            Ok(cast(&out, dtype))
        }
    }
}

fn view<'a, T: Element>(name: &str, x: &'a TensorData) -> Result<ArrayViewD<'a, T>> {
    x.as_array::<T>()
        .ok_or_else(|| RuntimeError::Internal(format!("{name}: expected {}", T::DTYPE)))
}

fn dims_error(name: &str) -> RuntimeError {
    RuntimeError::Internal(format!("{name}: operands must be 1-d or 2-d"))
}

fn float_dot<T: Element + ndarray::LinalgScalar>(
    name: &str,
    a: &TensorData,
    b: &TensorData,
) -> Result<TensorData> {
    let (a, b) = (view::<T>(name, a)?, view::<T>(name, b)?);
    let out = match (a.ndim(), b.ndim()) {
        (1, 1) => {
            let (a, b) = (
                a.into_dimensionality::<Ix1>(),
                b.into_dimensionality::<Ix1>(),
            );
            let (a, b) = (
                a.map_err(|_| dims_error(name))?,
                b.map_err(|_| dims_error(name))?,
            );
            TensorData::scalar(a.dot(&b))
        }
        (2, 1) => {
            let a = a
                .into_dimensionality::<Ix2>()
                .map_err(|_| dims_error(name))?;
            let b = b
                .into_dimensionality::<Ix1>()
                .map_err(|_| dims_error(name))?;
            TensorData::from_array(a.dot(&b))
        }
        (1, 2) => {
            let a = a
                .into_dimensionality::<Ix1>()
                .map_err(|_| dims_error(name))?;
            let b = b
                .into_dimensionality::<Ix2>()
                .map_err(|_| dims_error(name))?;
            TensorData::from_array(a.dot(&b))
        }
        (2, 2) => {
            let a = a
                .into_dimensionality::<Ix2>()
                .map_err(|_| dims_error(name))?;
            let b = b
                .into_dimensionality::<Ix2>()
                .map_err(|_| dims_error(name))?;
            TensorData::from_array(a.dot(&b))
        }
        _ => return Err(dims_error(name)),
    };
    Ok(out)
}

fn int_dot(name: &str, a: &TensorData, b: &TensorData) -> Result<TensorData> {
    let (a, b) = (view::<i64>(name, a)?, view::<i64>(name, b)?);
    // Treat vectors as 1×k and k×1 matrices, then drop those dimensions.
    let a2 = if a.ndim() == 1 {
        a.clone().insert_axis(ndarray::Axis(0))
    } else {
        a.clone()
    };
    let b2 = if b.ndim() == 1 {
        b.clone().insert_axis(ndarray::Axis(1))
    } else {
        b.clone()
    };
    let a2 = a2
        .into_dimensionality::<Ix2>()
        .map_err(|_| dims_error(name))?;
    let b2 = b2
        .into_dimensionality::<Ix2>()
        .map_err(|_| dims_error(name))?;
    let (m, k, n) = (a2.nrows(), a2.ncols(), b2.ncols());
    let out = ndarray::Array2::from_shape_fn((m, n), |(i, j)| {
        (0..k).fold(0i64, |acc, p| {
            acc.wrapping_add(a2[(i, p)].wrapping_mul(b2[(p, j)]))
        })
    });
    let mut shape = Vec::new();
    if a.ndim() == 2 {
        shape.push(m);
    }
    if b.ndim() == 2 {
        shape.push(n);
    }
    let flat = out.into_raw_vec_and_offset().0;
    TensorData::from_vec(&shape, flat).map_err(|e| RuntimeError::Internal(format!("{name}: {e}")))
}

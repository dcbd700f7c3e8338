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
        (1, 1) => TensorData::scalar(fixed::<T, Ix1>(name, a)?.dot(&fixed::<T, Ix1>(name, b)?)),
        (2, 1) => TensorData::from_array(fixed::<T, Ix2>(name, a)?.dot(&fixed::<T, Ix1>(name, b)?)),
        (1, 2) => TensorData::from_array(fixed::<T, Ix1>(name, a)?.dot(&fixed::<T, Ix2>(name, b)?)),
        (2, 2) => TensorData::from_array(fixed::<T, Ix2>(name, a)?.dot(&fixed::<T, Ix2>(name, b)?)),
        _ => return Err(dims_error(name)),
    };
    Ok(out)
}

/// A dynamic-rank view as a view of rank `D` (the caller has checked the rank).
fn fixed<'a, T, D: ndarray::Dimension>(
    name: &str,
    v: ndarray::ArrayViewD<'a, T>,
) -> Result<ndarray::ArrayView<'a, T, D>> {
    v.into_dimensionality::<D>().map_err(|_| dims_error(name))
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

/// The JIT's batched matmul: a Blockwise of a float `Dot` run over the whole batch with
/// one gemm call per element (matrixmultiply), results written straight into the output
/// (memory from `reuse` when it has some), parts of the batch on the rayon pool with
/// `parallel`. `None` when the operands are not float32/float64 of one dtype (the caller
/// runs the generic driver).
pub fn run_batched_dot(
    name: &str,
    bw: &tensorlift_ir::ops::Blockwise,
    static_shapes: &[&[Option<usize>]],
    args: &[TensorData],
    parallel: bool,
    reuse: crate::dense_linalg::Reuse,
) -> Option<Result<Vec<TensorData>>> {
    let dtype = args.first()?.dtype();
    if args.len() != 2 || args[1].dtype() != dtype {
        return None;
    }
    match dtype {
        DType::Float64 => Some(batched_gemm::<f64>(
            name,
            bw,
            static_shapes,
            args,
            parallel,
            reuse,
        )),
        DType::Float32 => Some(batched_gemm::<f32>(
            name,
            bw,
            static_shapes,
            args,
            parallel,
            reuse,
        )),
        _ => None,
    }
}

/// The element types with a gemm.
trait Gemm: Element + Default {
    /// `c = a · b` for row-major `a` (m×k), `b` (k×n) and `c` (m×n).
    fn gemm(m: usize, k: usize, n: usize, a: &[Self], b: &[Self], c: &mut [Self]);
    fn from_float_vec(v: crate::dense_linalg::FloatVec) -> Option<Vec<Self>>;
}

macro_rules! gemm_impl {
    ($t:ty, $f:path, $variant:ident) => {
        impl Gemm for $t {
            fn gemm(m: usize, k: usize, n: usize, a: &[$t], b: &[$t], c: &mut [$t]) {
                assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
                // SAFETY: the slices hold at least m·k, k·n and m·n elements (checked
                // above), read and written row-major with the strides given: a's row
                // stride k, b's n, c's n, column strides 1; c does not overlap a or b (a
                // distinct &mut borrow).
                unsafe {
                    $f(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        k as isize,
                        1,
                        b.as_ptr(),
                        n as isize,
                        1,
                        0.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                }
            }
            fn from_float_vec(v: crate::dense_linalg::FloatVec) -> Option<Vec<$t>> {
                match v {
                    crate::dense_linalg::FloatVec::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
gemm_impl!(f64, matrixmultiply::dgemm, F64);
gemm_impl!(f32, matrixmultiply::sgemm, F32);

fn batched_gemm<T: Gemm>(
    name: &str,
    bw: &tensorlift_ir::ops::Blockwise,
    static_shapes: &[&[Option<usize>]],
    args: &[TensorData],
    parallel: bool,
    reuse: crate::dense_linalg::Reuse,
) -> Result<Vec<TensorData>> {
    let layout = crate::blockwise::batch_layout(name, bw, static_shapes, args)?;
    let core = |k: usize| &args[k].shape()[layout.own_batch[k]..];
    let (ca, cb) = (core(0), core(1));
    // Vectors as 1×k and k×1 matrices.
    let (m, ka) = match ca {
        [k] => (1, *k),
        [m, k] => (*m, *k),
        _ => return Err(dims_error(name)),
    };
    let (kb, n) = match cb {
        [k] => (*k, 1),
        [k, n] => (*k, *n),
        _ => return Err(dims_error(name)),
    };
    if ka != kb {
        return Err(RuntimeError::op(
            name,
            format!(
                "the contracted dimensions differ: input 0's core {ca:?} against input 1's \
                 core {cb:?}"
            ),
        ));
    }
    let mut out_core: Vec<usize> = Vec::new();
    if ca.len() == 2 {
        out_core.push(m);
    }
    if cb.len() == 2 {
        out_core.push(n);
    }
    let mut shape = layout.batch.to_vec();
    shape.extend_from_slice(&out_core);
    crate::memory::check_output(name, T::DTYPE, &shape)?;
    let count: usize = layout.batch.iter().product();
    let views: Vec<std::borrow::Cow<[T]>> = args
        .iter()
        .map(|x| match x.as_shared::<T>().and_then(|a| a.as_slice()) {
            Some(s) => std::borrow::Cow::Borrowed(s),
            None => std::borrow::Cow::Owned(
                x.as_array::<T>()
                    .map(|a| a.iter().copied().collect())
                    .unwrap_or_default(),
            ),
        })
        .collect();
    let len = m * n;
    let mut outs = vec![reuse(T::DTYPE, len * count)
        .and_then(T::from_float_vec)
        .filter(|v| v.len() == len * count)
        .unwrap_or_else(|| vec![T::default(); len * count])];
    let (la, lb) = (m * ka, kb * n);
    crate::blockwise::fill_batch(
        count,
        parallel,
        &mut outs,
        &[len],
        || (),
        |_, i, element| {
            let (oa, ob) = (
                layout.offset(0, args[0].shape(), i),
                layout.offset(1, args[1].shape(), i),
            );
            T::gemm(
                m,
                ka,
                n,
                &views[0][oa..oa + la],
                &views[1][ob..ob + lb],
                element[0],
            );
            Ok(())
        },
    )?;
    let data = outs.pop().unwrap_or_default();
    Ok(vec![
        TensorData::from_vec(&shape, data).map_err(RuntimeError::from)?
    ])
}

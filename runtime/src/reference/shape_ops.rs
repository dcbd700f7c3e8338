//! Shape kernels of the reference interpreter: DimShuffle, Reshape, Alloc, SpecifyShape,
//! Shape, MakeVector, Arange, Join and Split.
//!
//! Owns: their run-time checks (sizes that must match, a -1 that must divide, split sizes
//! that must add up, Alloc's no-runtime-broadcasting rule). DimShuffle, Split and Reshape
//! of contiguous data are views of the shared input, not copies.

use ndarray::{ArcArray, ArrayD, Axis, IxDyn, Slice};
use tensorlift_ir::ops::shape::{arange_len, arange_len_int};
use tensorlift_ir::ops::DimShuffle;
use tensorlift_ir::{with_tensor_data, DType, Element, Literal, TensorData};

use crate::error::{Result, RuntimeError};
use crate::scalar::cast;
use crate::with_scalar_type;

/// The integer value of a 0-d index or size input.
pub fn scalar_int(name: &str, what: &str, x: &TensorData) -> Result<i64> {
    match (x.ndim(), x.item()) {
        (0, Some(Literal::Int(i))) => Ok(i),
        (0, Some(Literal::Bool(b))) => Ok(b as i64),
        _ => Err(RuntimeError::Internal(format!(
            "{name}: {what} must be an integer scalar, got {:?} of shape {:?}",
            x.dtype(),
            x.shape()
        ))),
    }
}

fn dimshuffle_array<T: Element>(
    name: &str,
    mut a: ArcArray<T, IxDyn>,
    ds: &DimShuffle,
) -> Result<TensorData> {
    let dropped = ds.dropped();
    for d in dropped.iter().rev() {
        if a.shape()[*d] != 1 {
            return Err(RuntimeError::Internal(format!(
                "{name}: dropped dimension {d} has run-time size {}",
                a.shape()[*d]
            )));
        }
        a = a.index_axis_move(Axis(*d), 0);
    }
    let renumber = |d: usize| d - dropped.iter().filter(|x| **x < d).count();
    let perm: Vec<usize> = ds.kept().into_iter().map(renumber).collect();
    let mut a = a.permuted_axes(IxDyn(&perm));
    for (pos, o) in ds.new_order.iter().enumerate() {
        if o.is_none() {
            a = a.insert_axis(Axis(pos));
        }
    }
    Ok(T::wrap(a))
}

pub fn eval_dimshuffle(name: &str, ds: &DimShuffle, x: &TensorData) -> Result<TensorData> {
    if x.ndim() != ds.input_ndim {
        return Err(RuntimeError::Internal(format!(
            "{name}: input has {} dimensions",
            x.ndim()
        )));
    }
    with_tensor_data!(x, a => dimshuffle_array(name, a.clone(), ds))
}

fn reshape_array<T: Element>(
    name: &str,
    a: &ArcArray<T, IxDyn>,
    target: &[usize],
) -> Result<TensorData> {
    if a.is_standard_layout() {
        if let Ok(r) = a.clone().into_shape_with_order(IxDyn(target)) {
            return Ok(T::wrap(r));
        }
    }
    let flat: Vec<T> = a.iter().copied().collect();
    ArrayD::from_shape_vec(IxDyn(target), flat)
        .map(|r| T::wrap(r.into_shared()))
        .map_err(|e| RuntimeError::Internal(format!("{name}: {e}")))
}

pub fn eval_reshape(name: &str, x: &TensorData, shape: &TensorData) -> Result<TensorData> {
    let values = shape
        .to_i64_vec()
        .ok_or_else(|| RuntimeError::Internal(format!("{name}: shape is not integer")))?;
    let mut target = Vec::with_capacity(values.len());
    let mut unknown = None;
    for (i, v) in values.iter().enumerate() {
        match *v {
            -1 if unknown.is_none() => {
                unknown = Some(i);
                target.push(1);
            }
            v if v >= 0 => target.push(v as usize),
            v => {
                return Err(RuntimeError::op(
                    name,
                    format!(
                        "shape entry {i} is {v}; sizes must be non-negative, with at most one -1"
                    ),
                ))
            }
        }
    }
    let total = x.len();
    let known = target.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d));
    let fits = match (unknown, known) {
        (_, None) => false,
        (u, Some(known)) => match u {
            Some(i) if known > 0 && total.is_multiple_of(known) => {
                target[i] = total / known;
                true
            }
            Some(_) => false,
            None => known == total,
        },
    };
    if !fits {
        return Err(RuntimeError::op(
            name,
            format!(
                "cannot reshape input 0 of shape {:?} ({total} elements) into {values:?}",
                x.shape()
            ),
        ));
    }
    with_tensor_data!(x, a => reshape_array(name, a, &target))
}

pub fn eval_alloc(
    name: &str,
    value: &TensorData,
    value_static: &[Option<usize>],
    dims: &[&TensorData],
) -> Result<TensorData> {
    let target = crate::output_shape::alloc(name, value.shape(), value_static, dims)?;
    crate::memory::check_output(name, value.dtype(), &target)?;
    with_tensor_data!(value, a => {
        let b = a.broadcast(IxDyn(&target)).ok_or_else(|| {
            RuntimeError::Internal(format!("{name}: cannot broadcast {:?} to {target:?}", a.shape()))
        })?;
        Ok(Element::wrap(b.to_owned().into_shared()))
    })
}

pub fn eval_specify_shape(
    name: &str,
    spec: &[Option<usize>],
    x: &TensorData,
) -> Result<TensorData> {
    if x.ndim() != spec.len() {
        return Err(RuntimeError::op(
            name,
            format!(
                "input 0 has {} dimensions, expected {}",
                x.ndim(),
                spec.len()
            ),
        ));
    }
    for (d, (s, actual)) in spec.iter().zip(x.shape()).enumerate() {
        if let Some(s) = s {
            if s != actual {
                return Err(RuntimeError::op(
                    name,
                    format!(
                        "dimension {d} of input 0 has size {actual}, but the graph requires {s}"
                    ),
                ));
            }
        }
    }
    Ok(x.clone())
}

pub fn eval_shape(x: &TensorData) -> TensorData {
    TensorData::from_array(ndarray::Array1::from_iter(
        x.shape().iter().map(|s| *s as i64),
    ))
}

pub fn eval_make_vector(name: &str, dtype: DType, items: &[&TensorData]) -> Result<TensorData> {
    with_scalar_type!(dtype, T => {
        let values = items
            .iter()
            .map(|x| {
                let c = cast(x, dtype);
                c.as_array::<T>()
                    .and_then(|a| a.iter().next().copied())
                    .ok_or_else(|| RuntimeError::Internal(format!("{name}: item is not a scalar")))
            })
            .collect::<Result<Vec<T>>>()?;
        Ok(TensorData::from_array(ndarray::Array1::from_vec(values)))
    })
}

/// The length of `Arange(start, stop, step)` of `dtype`, after the reference's checks
/// (a zero, non-finite or NaN step, a non-finite start, non-scalar bounds are errors).
/// The JIT sizes its output with it.
pub fn arange_length(
    name: &str,
    dtype: DType,
    start: &TensorData,
    stop: &TensorData,
    step: &TensorData,
) -> Result<usize> {
    if dtype.is_float() {
        let get = |x: &TensorData| {
            cast(x, DType::Float64)
                .as_array::<f64>()
                .and_then(|a| a.iter().next().copied())
        };
        let (Some(a), Some(b), Some(s)) = (get(start), get(stop), get(step)) else {
            return Err(RuntimeError::Internal(format!(
                "{name}: bounds are not scalars"
            )));
        };
        if s == 0.0 || !s.is_finite() || !a.is_finite() {
            return Err(RuntimeError::op(
                name,
                format!("step must be finite and non-zero (start {a}, step {s})"),
            ));
        }
        let n = arange_len(a, b, s).ok_or_else(|| {
            RuntimeError::op(
                name,
                format!(
                    "the range from {a} to {b} by {s} has more elements than any array can hold"
                ),
            )
        })?;
        crate::memory::output_bytes(name, dtype, &[n])?;
        return Ok(n);
    }
    let (a, b, s) = (
        scalar_int(name, "start", start)?,
        scalar_int(name, "stop", stop)?,
        scalar_int(name, "step", step)?,
    );
    let n = arange_len_int(a, b, s)
        .ok_or_else(|| RuntimeError::op(name, "step (input 2) must not be zero"))?;
    crate::memory::output_bytes(name, dtype, &[n])?;
    Ok(n)
}

pub fn eval_arange(
    name: &str,
    dtype: DType,
    start: &TensorData,
    stop: &TensorData,
    step: &TensorData,
) -> Result<TensorData> {
    let n = arange_length(name, dtype, start, stop, step)?;
    crate::memory::check_output(name, dtype, &[n])?;
    if dtype.is_float() {
        let get = |x: &TensorData| {
            cast(x, DType::Float64)
                .as_array::<f64>()
                .and_then(|a| a.iter().next().copied())
                .unwrap_or(f64::NAN)
        };
        let (a, s) = (get(start), get(step));
        let v = ndarray::Array1::from_iter((0..n).map(|i| a + i as f64 * s));
        return Ok(cast(&TensorData::from_array(v), dtype));
    }
    let (a, s) = (
        scalar_int(name, "start", start)?,
        scalar_int(name, "step", step)?,
    );
    let v = ndarray::Array1::from_iter((0..n).map(|i| a.wrapping_add((i as i64).wrapping_mul(s))));
    Ok(cast(&TensorData::from_array(v), dtype))
}

pub fn eval_join(name: &str, axis: usize, items: &[&TensorData]) -> Result<TensorData> {
    let shapes: Vec<&[usize]> = items.iter().map(|x| x.shape()).collect();
    crate::output_shape::join(name, axis, &shapes)?;
    let Some(first) = items.first() else {
        return Err(RuntimeError::Internal(format!("{name}: no inputs")));
    };
    with_scalar_type!(first.dtype(), T => {
        let views = items
            .iter()
            .map(|x| x.as_array::<T>().ok_or_else(|| RuntimeError::Internal(format!("{name}: mixed dtypes"))))
            .collect::<Result<Vec<_>>>()?;
        let joined = ndarray::concatenate(Axis(axis), &views)
            .map_err(|e| RuntimeError::Internal(format!("{name}: {e}")))?;
        Ok(TensorData::from_array(joined))
    })
}

pub fn eval_split(
    name: &str,
    axis: usize,
    x: &TensorData,
    sizes: &TensorData,
) -> Result<Vec<TensorData>> {
    let sizes = sizes
        .to_i64_vec()
        .ok_or_else(|| RuntimeError::Internal(format!("{name}: sizes are not integers")))?;
    let dim = x.shape()[axis];
    let sum: i128 = sizes.iter().map(|s| *s as i128).sum();
    if sizes.iter().any(|s| *s < 0) || sum != dim as i128 {
        return Err(RuntimeError::op(
            name,
            format!("the sizes {sizes:?} must be non-negative and add up to {dim}, the size of axis {axis} of input 0"),
        ));
    }
    let mut start = 0usize;
    let mut out = Vec::with_capacity(sizes.len());
    for s in sizes {
        let end = start + s as usize;
        out.push(with_tensor_data!(x, a => {
            let mut piece = a.clone();
            piece.slice_axis_inplace(Axis(axis), Slice::from(start..end));
            Element::wrap(piece)
        }));
        start = end;
    }
    Ok(out)
}

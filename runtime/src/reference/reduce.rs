//! Reduction kernels of the reference interpreter: CAReduce (sum, prod, max, min, all,
//! any, logsumexp over any axes), Argmax/Argmin, CumSum/CumProd and Softmax.
//!
//! Owns: NumPy's conventions (§3b): max/min/argmax propagate NaN, arg-reductions return
//! the first index of ties, max/min/argmax of an empty axis is an error, sum/prod of an
//! empty axis is 0/1. Integers accumulate in wrapping int64; floats in f64, rounded once
//! to the output dtype.

use ndarray::{ArrayD, ArrayViewD, Axis};
use tensorlift_ir::ops::{ArgKind, CumKind, ReduceKind};
use tensorlift_ir::{DType, TensorData};

use crate::error::{Result, RuntimeError};
use crate::logsumexp::log_add_exp;
use crate::scalar::cast;

fn typed<'a, T: tensorlift_ir::Element>(
    name: &str,
    x: &'a TensorData,
) -> Result<ArrayViewD<'a, T>> {
    x.as_array::<T>().ok_or_else(|| {
        RuntimeError::Internal(format!("{name}: expected {}, got {}", T::DTYPE, x.dtype()))
    })
}

/// Folds `a` over `axes` (removing them), starting every lane from `init`. An empty `a`
/// costs the size of the result, however large its dimensions.
fn fold_axes<T: tensorlift_ir::Element>(
    name: &str,
    a: ArrayViewD<T>,
    axes: &[usize],
    init: T,
    f: impl Fn(T, T) -> T,
) -> Result<ArrayD<T>> {
    let out_shape: Vec<usize> = (0..a.ndim())
        .filter(|d| !axes.contains(d))
        .map(|d| a.shape()[d])
        .collect();
    crate::memory::check_output(name, T::DTYPE, &out_shape)?;
    if a.is_empty() {
        return Ok(ArrayD::from_elem(ndarray::IxDyn(&out_shape), init));
    }
    let mut out = a.to_owned();
    for axis in axes.iter().rev() {
        out = out.fold_axis(Axis(*axis), init, |acc, x| f(*acc, *x));
    }
    Ok(out)
}

fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || a > b {
        a
    } else {
        b
    }
}

fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || a < b {
        a
    } else {
        b
    }
}

/// The product of `xs` with an unbounded exponent: NaN when an element is NaN or the
/// elements hold both a zero and an infinity; else ±0 or ±inf when an element is; else the
/// exact product's magnitude decides overflow to ±inf and underflow to ±0, whatever the
/// order of the factors. Products whose computed value is NaN, infinite or zero are
/// recomputed with it (`repair_products`), so every backend and grouping agrees on them.
pub fn product_unbounded(xs: impl Iterator<Item = f64>) -> f64 {
    let (mut mantissa, mut exponent) = (1.0f64, 0i64);
    let (mut zero, mut inf, mut negative) = (false, false, false);
    for x in xs {
        if x.is_nan() {
            return f64::NAN;
        }
        negative ^= x.is_sign_negative();
        if x == 0.0 {
            zero = true;
        } else if x.is_infinite() {
            inf = true;
        } else {
            let (xm, xe) = libm::frexp(x.abs());
            let (m, e) = libm::frexp(mantissa * xm);
            mantissa = m;
            exponent += e as i64 + xe as i64;
        }
    }
    let magnitude = match (zero, inf) {
        (true, true) => return f64::NAN,
        (true, false) => 0.0,
        (false, true) => f64::INFINITY,
        (false, false) => libm::ldexp(mantissa, exponent.clamp(-1 << 20, 1 << 20) as i32),
    };
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

/// Replaces each element of `out` (the product of `v` over `axes`) that is NaN, infinite
/// or zero by `product_unbounded` of its lane: its value no longer depends on where
/// partial products overflowed or underflowed.
fn repair_products(v: &ArrayViewD<f64>, axes: &[usize], out: &mut ArrayD<f64>) {
    let kept: Vec<usize> = (0..v.ndim()).filter(|d| !axes.contains(d)).collect();
    for (index, o) in out.indexed_iter_mut() {
        if o.is_finite() && *o != 0.0 {
            continue;
        }
        let mut lane = v.view();
        for (k, d) in kept.iter().enumerate().rev() {
            lane = lane.index_axis_move(Axis(*d), index[k]);
        }
        *o = product_unbounded(lane.iter().copied());
    }
}

/// `out`, the product of `x` over `axes` computed elsewhere (a jitted kernel, whose lanes
/// and threads group the factors their own way), with every element that is NaN, infinite
/// or zero recomputed as the reference does (`repair_products`); `out`'s dtype is kept.
pub fn repair_product_output(
    name: &str,
    x: &TensorData,
    axes: &[usize],
    out: &TensorData,
) -> Result<TensorData> {
    let values = cast(x, DType::Float64);
    let v = typed::<f64>(name, &values)?;
    let wide = cast(out, DType::Float64);
    let mut o = typed::<f64>(name, &wide)?.to_owned();
    if o.ndim() + axes.len() != v.ndim() {
        return Err(RuntimeError::Internal(format!(
            "{name}: a product of shape {:?} over axes {axes:?} of shape {:?}",
            o.shape(),
            v.shape()
        )));
    }
    repair_products(&v, axes, &mut o);
    Ok(cast(&TensorData::from_array(o), out.dtype()))
}

/// logsumexp of `v` over `axes`: m = max (NaN-propagating), shift = m (0 where m is
/// infinite), then log(Σ exp(v − shift)) + shift: never overflows, all −inf (or empty)
/// gives −inf, any +inf gives +inf.
fn log_sum_exp(name: &str, v: ArrayViewD<f64>, axes: &[usize]) -> Result<ArrayD<f64>> {
    if v.is_empty() {
        return fold_axes(name, v, axes, f64::NEG_INFINITY, nan_max);
    }
    let shift = fold_axes(name, v.view(), axes, f64::NEG_INFINITY, nan_max)?.mapv(|m| {
        if m.is_infinite() {
            0.0
        } else {
            m
        }
    });
    let mut kept = shift.view();
    for a in axes {
        kept.insert_axis_inplace(Axis(*a));
    }
    let shifted = &v - &kept;
    let summed = fold_axes(name, shifted.mapv(f64::exp).view(), axes, 0.0, |a, b| a + b)?;
    Ok(summed.mapv(f64::ln) + &shift)
}

/// Finishes a reduction computed in parts (as the JIT splits one over threads): folds
/// `part` into `acc` element by element with `eval_reduce`'s rules — NaN-propagating
/// max/min, wrapping integer sums and products, and/or of bools. Both hold the same
/// dtype and shape.
pub fn combine_partials(kind: ReduceKind, acc: &mut TensorData, part: &TensorData) -> Result<()> {
    fn fold<T: Copy>(
        acc: &mut ndarray::ArcArray<T, ndarray::IxDyn>,
        part: &ndarray::ArcArray<T, ndarray::IxDyn>,
        f: impl Fn(T, T) -> T,
    ) -> Result<()> {
        if acc.shape() != part.shape() {
            return Err(RuntimeError::Internal(format!(
                "partial reductions of shapes {:?} and {:?}",
                acc.shape(),
                part.shape()
            )));
        }
        acc.zip_mut_with(part, |a, b| *a = f(*a, *b));
        Ok(())
    }
    macro_rules! float {
        ($t:ty) => {
            move |a: $t, b: $t| -> $t {
                let (x, y) = (a as f64, b as f64);
                match kind {
                    ReduceKind::Sum | ReduceKind::Any => a + b,
                    ReduceKind::Prod | ReduceKind::All => a * b,
                    ReduceKind::Max => nan_max(x, y) as $t,
                    ReduceKind::Min => nan_min(x, y) as $t,
                    ReduceKind::LogSumExp => log_add_exp(x, y) as $t,
                }
            }
        };
    }
    macro_rules! int {
        ($t:ty) => {
            move |a: $t, b: $t| match kind {
                ReduceKind::Sum | ReduceKind::Any => a.wrapping_add(b),
                ReduceKind::Prod | ReduceKind::All => a.wrapping_mul(b),
                ReduceKind::Max => a.max(b),
                ReduceKind::Min => a.min(b),
                // Never integer (logsumexp gives floats).
                ReduceKind::LogSumExp => a,
            }
        };
    }
    match (acc, part) {
        (TensorData::Float64(a), TensorData::Float64(b)) => fold(a, b, float!(f64)),
        (TensorData::Float32(a), TensorData::Float32(b)) => fold(a, b, float!(f32)),
        (TensorData::Int64(a), TensorData::Int64(b)) => fold(a, b, int!(i64)),
        (TensorData::Int32(a), TensorData::Int32(b)) => fold(a, b, int!(i32)),
        (TensorData::Int16(a), TensorData::Int16(b)) => fold(a, b, int!(i16)),
        (TensorData::Int8(a), TensorData::Int8(b)) => fold(a, b, int!(i8)),
        (TensorData::UInt8(a), TensorData::UInt8(b)) => fold(a, b, int!(u8)),
        (TensorData::Bool(a), TensorData::Bool(b)) => fold(a, b, move |x, y| match kind {
            ReduceKind::All | ReduceKind::Prod | ReduceKind::Min => x & y,
            _ => x | y,
        }),
        (a, b) => Err(RuntimeError::Internal(format!(
            "partial reductions of dtypes {} and {}",
            a.dtype(),
            b.dtype()
        ))),
    }
}

/// CAReduce of `x` over the sorted, distinct `axes`.
pub fn eval_reduce(
    name: &str,
    kind: ReduceKind,
    axes: &[usize],
    x: &TensorData,
) -> Result<TensorData> {
    crate::output_shape::reduce(name, kind, x.shape(), axes)?;
    let out_dtype = kind.output_dtype(x.dtype());
    let float = x.dtype().is_float();
    let result = match kind {
        ReduceKind::LogSumExp => {
            let f = cast(x, DType::Float64);
            TensorData::from_array(log_sum_exp(name, typed::<f64>(name, &f)?, axes)?)
        }
        ReduceKind::All | ReduceKind::Any => {
            let b = cast(x, DType::Bool);
            let v = typed::<bool>(name, &b)?;
            let out = if kind == ReduceKind::All {
                fold_axes(name, v, axes, true, |a, b| a & b)?
            } else {
                fold_axes(name, v, axes, false, |a, b| a | b)?
            };
            TensorData::from_array(out)
        }
        _ if float => {
            let f = cast(x, DType::Float64);
            let v = typed::<f64>(name, &f)?;
            TensorData::from_array(match kind {
                ReduceKind::Sum => fold_axes(name, v, axes, 0.0, |a, b| a + b)?,
                ReduceKind::Prod => {
                    let mut out = fold_axes(name, v.view(), axes, 1.0, |a, b| a * b)?;
                    repair_products(&v, axes, &mut out);
                    out
                }
                ReduceKind::Max => fold_axes(name, v, axes, f64::NEG_INFINITY, nan_max)?,
                _ => fold_axes(name, v, axes, f64::INFINITY, nan_min)?,
            })
        }
        _ => {
            let i = cast(x, DType::Int64);
            let v = typed::<i64>(name, &i)?;
            TensorData::from_array(match kind {
                ReduceKind::Sum => fold_axes(name, v, axes, 0, i64::wrapping_add)?,
                ReduceKind::Prod => fold_axes(name, v, axes, 1, i64::wrapping_mul)?,
                ReduceKind::Max => fold_axes(name, v, axes, i64::MIN, i64::max)?,
                _ => fold_axes(name, v, axes, i64::MAX, i64::min)?,
            })
        }
    };
    Ok(cast(&result, out_dtype))
}

/// Softmax of `x` along `axis`: exp(x − m) / Σ exp(x − m) with m the maximum along the
/// axis (NaN-propagating), in f64, rounded once to the float dtype `exp` would give.
pub fn eval_softmax(name: &str, axis: usize, x: &TensorData) -> Result<TensorData> {
    if axis >= x.ndim() {
        return Err(RuntimeError::Internal(format!(
            "{name}: axis {axis} for shape {:?}",
            x.shape()
        )));
    }
    if x.is_empty() {
        return Ok(cast(x, x.dtype().upgrade_to_float()));
    }
    let f = cast(x, DType::Float64);
    let v = typed::<f64>(name, &f)?;
    let m = fold_axes(name, v.view(), &[axis], f64::NEG_INFINITY, nan_max)?.insert_axis(Axis(axis));
    let e = (&v - &m).mapv(f64::exp);
    let s = fold_axes(name, e.view(), &[axis], 0.0, |a, b| a + b)?.insert_axis(Axis(axis));
    let out = TensorData::from_array(&e / &s);
    Ok(cast(&out, x.dtype().upgrade_to_float()))
}

/// Index of the first extreme of a lane; NaN counts as the extreme (first NaN wins).
fn arg_extreme(lane: impl Iterator<Item = f64>, better: fn(f64, f64) -> bool) -> i64 {
    let mut best_index = 0i64;
    let mut best = f64::NAN;
    for (i, v) in lane.enumerate() {
        if i == 0 || v.is_nan() || better(v, best) {
            best = v;
            best_index = i as i64;
            if v.is_nan() {
                break;
            }
        }
    }
    best_index
}

/// Argmax/Argmin along `axis`, or over the flattened input.
pub fn eval_arg_reduce(
    name: &str,
    kind: ArgKind,
    axis: Option<usize>,
    x: &TensorData,
) -> Result<TensorData> {
    crate::output_shape::arg_reduce(name, x.shape(), axis)?;
    let better: fn(f64, f64) -> bool = match kind {
        ArgKind::Argmax => |v, best| v > best,
        ArgKind::Argmin => |v, best| v < best,
    };
    // int64 beyond 2^53 would lose order in f64: compare integers as integers.
    if x.dtype().is_int() || x.dtype().is_bool() {
        let i = cast(x, DType::Int64);
        let v = typed::<i64>(name, &i)?;
        let int_better: fn(i64, i64) -> bool = match kind {
            ArgKind::Argmax => |v, best| v > best,
            ArgKind::Argmin => |v, best| v < best,
        };
        let pick = |lane: &mut dyn Iterator<Item = i64>| {
            let mut best: Option<(usize, i64)> = None;
            for (k, v) in lane.enumerate() {
                if best.is_none_or(|(_, b)| int_better(v, b)) {
                    best = Some((k, v));
                }
            }
            best.map_or(0, |(k, _)| k as i64)
        };
        return arg_lanes(name, axis, x.shape(), v, |lane| {
            pick(&mut lane.iter().copied())
        });
    }
    let f = cast(x, DType::Float64);
    let v = typed::<f64>(name, &f)?;
    arg_lanes(name, axis, x.shape(), v, |lane| {
        arg_extreme(lane.iter().copied(), better)
    })
}

fn arg_lanes<T: Copy>(
    name: &str,
    axis: Option<usize>,
    shape: &[usize],
    v: ArrayViewD<T>,
    pick: impl Fn(ndarray::ArrayView1<T>) -> i64,
) -> Result<TensorData> {
    // (Empty inputs and axes are refused by `output_shape::arg_reduce` first.)
    match axis {
        None => {
            let flat: Vec<T> = v.iter().copied().collect();
            Ok(TensorData::scalar(pick(ndarray::ArrayView1::from(&flat))))
        }
        Some(a) => {
            if a >= shape.len() {
                return Err(RuntimeError::Internal(format!(
                    "{name}: axis {a} for shape {shape:?}"
                )));
            }
            Ok(TensorData::from_array(v.map_axis(Axis(a), pick)))
        }
    }
}

/// CumSum/CumProd along `axis`, or over the flattened input.
pub fn eval_cumulative(
    name: &str,
    kind: CumKind,
    axis: Option<usize>,
    x: &TensorData,
) -> Result<TensorData> {
    crate::output_shape::cumulative(name, x.shape(), axis)?;
    let out_dtype = kind.output_dtype(x.dtype());
    let (flat, axis) = (axis.is_none(), axis.unwrap_or(0));
    let result = if out_dtype.is_float() {
        let f = cast(x, DType::Float64);
        let mut a = flatten_if(typed::<f64>(name, &f)?, flat);
        match kind {
            CumKind::CumSum => a.accumulate_axis_inplace(Axis(axis), |p, c| *c += *p),
            CumKind::CumProd => a.accumulate_axis_inplace(Axis(axis), |p, c| *c *= *p),
        }
        TensorData::from_array(a)
    } else {
        let i = cast(x, DType::Int64);
        let mut a = flatten_if(typed::<i64>(name, &i)?, flat);
        match kind {
            CumKind::CumSum => {
                a.accumulate_axis_inplace(Axis(axis), |p, c| *c = c.wrapping_add(*p))
            }
            CumKind::CumProd => {
                a.accumulate_axis_inplace(Axis(axis), |p, c| *c = c.wrapping_mul(*p))
            }
        }
        TensorData::from_array(a)
    };
    Ok(cast(&result, out_dtype))
}

fn flatten_if<T: Copy>(v: ArrayViewD<T>, flatten: bool) -> ArrayD<T> {
    if flatten {
        ndarray::Array1::from_iter(v.iter().copied()).into_dyn()
    } else {
        v.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<T: tensorlift_ir::Element>(v: Vec<T>) -> TensorData {
        TensorData::from_array(ndarray::Array1::from(v).into_dyn())
    }

    #[test]
    fn combining_parts_follows_the_reductions_rules() {
        let mut acc = values(vec![1.0f64, f64::NAN, 3.0]);
        combine_partials(ReduceKind::Max, &mut acc, &values(vec![f64::NAN, 2.0, 4.0])).unwrap();
        let got = acc
            .as_array::<f64>()
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>();
        assert!(
            got[0].is_nan() && got[1].is_nan() && got[2] == 4.0,
            "{got:?}"
        );

        let mut acc = values(vec![100i8, -128]);
        combine_partials(ReduceKind::Sum, &mut acc, &values(vec![100i8, -1])).unwrap();
        assert_eq!(
            acc.as_array::<i8>()
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec![-56, 127]
        );

        let mut acc = values(vec![true, false]);
        combine_partials(ReduceKind::All, &mut acc, &values(vec![false, false])).unwrap();
        assert_eq!(
            acc.as_array::<bool>()
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec![false, false]
        );

        let mut acc = values(vec![1.0f32]);
        assert!(combine_partials(ReduceKind::Sum, &mut acc, &values(vec![1.0f64])).is_err());
        assert!(combine_partials(ReduceKind::Sum, &mut acc, &values(vec![1.0f32, 2.0])).is_err());
    }
}

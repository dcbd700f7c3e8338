//! Type inference of the shape-manipulating ops: DimShuffle, Alloc, Reshape, SpecifyShape,
//! Shape, MakeVector, Arange, Join and Split.
//!
//! Owns: each op's static-shape rule and the errors for impossible requests, which name the
//! op, the input and what was expected.

use std::fmt;

use crate::dtype::DType;
use crate::error::{GraphError, Result};
use crate::ops::InputInfo;
use crate::types::TensorType;

/// Reorders dimensions (`Some(i)` takes input dimension i) and inserts broadcastable ones
/// (`None`). Input dimensions not mentioned are dropped; only static-size-1 ones may be.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DimShuffle {
    pub input_ndim: usize,
    pub new_order: Vec<Option<usize>>,
}

impl DimShuffle {
    /// Re-inserts the reduced `axes` of an `ndim`-dimensional value as size-1 dimensions
    /// (the result of a reduction with keepdims).
    pub fn keep_dims(axes: &[usize], ndim: usize) -> DimShuffle {
        let mut next = 0;
        let new_order = (0..ndim)
            .map(|d| {
                if axes.contains(&d) {
                    None
                } else {
                    next += 1;
                    Some(next - 1)
                }
            })
            .collect();
        DimShuffle {
            input_ndim: ndim - axes.len(),
            new_order,
        }
    }

    /// The input dimensions that are dropped.
    pub fn dropped(&self) -> Vec<usize> {
        (0..self.input_ndim)
            .filter(|d| !self.new_order.contains(&Some(*d)))
            .collect()
    }

    /// The kept input dimensions in output order.
    pub fn kept(&self) -> Vec<usize> {
        self.new_order.iter().flatten().copied().collect()
    }

    /// True when the shuffle only inserts new axes (no transpose, no drop).
    pub fn is_expand_dims(&self) -> bool {
        self.dropped().is_empty() && self.kept().windows(2).all(|w| w[0] < w[1])
    }

    pub(crate) fn infer(&self, name: &str, inputs: &[InputInfo]) -> Result<TensorType> {
        let [x] = inputs else {
            return Err(GraphError::op(name, "takes exactly one input"));
        };
        if x.ty.ndim() != self.input_ndim {
            return Err(GraphError::op(
                name,
                format!(
                    "input 0 must have {} dimensions, got {}",
                    self.input_ndim, x.ty
                ),
            ));
        }
        let kept = self.kept();
        for (i, d) in kept.iter().enumerate() {
            if *d >= self.input_ndim || kept[..i].contains(d) {
                return Err(GraphError::op(
                    name,
                    format!("dimension {d} is out of range or repeated in the new order"),
                ));
            }
        }
        for d in self.dropped() {
            if x.ty.shape[d] != Some(1) {
                return Err(GraphError::op(
                    name,
                    format!(
                        "cannot drop dimension {d} of input 0 ({}): only dimensions of static \
                         size 1 can be dropped",
                        x.ty
                    ),
                ));
            }
        }
        let shape = self
            .new_order
            .iter()
            .map(|o| o.map_or(Some(1), |d| x.ty.shape[d]))
            .collect::<Vec<_>>();
        Ok(TensorType::new(x.ty.dtype, shape))
    }
}

fn list(v: &[usize]) -> String {
    match v {
        [one] => format!("axis={one}"),
        many => format!(
            "axes=[{}]",
            many.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl fmt::Display for DimShuffle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kept = self.kept();
        let dropped = self.dropped();
        let new_axes: Vec<usize> = (0..self.new_order.len())
            .filter(|i| self.new_order[*i].is_none())
            .collect();
        let sorted = kept.windows(2).all(|w| w[0] < w[1]);
        if dropped.is_empty() && sorted && !new_axes.is_empty() {
            write!(f, "ExpandDims{{{}}}", list(&new_axes))
        } else if dropped.is_empty() && new_axes.is_empty() && !sorted {
            let axes: Vec<String> = kept.iter().map(|a| a.to_string()).collect();
            write!(f, "Transpose{{axes=[{}]}}", axes.join(", "))
        } else if new_axes.is_empty() && sorted && !dropped.is_empty() {
            write!(f, "DropDims{{{}}}", list(&dropped))
        } else {
            let order: Vec<String> = self
                .new_order
                .iter()
                .map(|o| o.map_or("x".to_string(), |d| d.to_string()))
                .collect();
            write!(f, "DimShuffle{{order=[{}]}}", order.join(","))
        }
    }
}

fn require_int_scalar(name: &str, i: usize, input: &InputInfo, what: &str) -> Result<()> {
    if input.ty.ndim() != 0 || !input.ty.dtype.is_int() {
        return Err(GraphError::op(
            name,
            format!(
                "{what} (input {i}) must be an integer scalar, got {}",
                input.ty
            ),
        ));
    }
    Ok(())
}

fn require_int_vector(name: &str, i: usize, input: &InputInfo, what: &str) -> Result<usize> {
    match (input.ty.ndim(), input.ty.shape.first()) {
        (1, Some(Some(n))) if input.ty.dtype.is_int() => Ok(*n),
        _ => Err(GraphError::op(
            name,
            format!(
                "{what} (input {i}) must be an integer vector of static length, got {}",
                input.ty
            ),
        )),
    }
}

/// `shape` (static sizes, `None` unknown) if an array of `dtype` could have it: the
/// known sizes' byte count fits in `isize::MAX`. Types no array can have are not built.
pub(crate) fn possible(name: &str, dtype: DType, shape: Vec<Option<usize>>) -> Result<TensorType> {
    let bytes = if shape.contains(&Some(0)) {
        Some(0)
    } else {
        shape
            .iter()
            .flatten()
            .try_fold(dtype.size_bytes(), |acc, d| acc.checked_mul(*d))
    };
    match bytes {
        Some(b) if b <= isize::MAX as usize => Ok(TensorType::new(dtype, shape)),
        _ => Err(GraphError::op(
            name,
            format!(
                "the static shape {} of {dtype} needs more than 2^63 bytes: no array can be \
                 that large",
                crate::types::format_shape(&shape)
            ),
        )),
    }
}

fn nonnegative(name: &str, what: &str, v: i64) -> Result<usize> {
    usize::try_from(v)
        .map_err(|_| GraphError::op(name, format!("{what} must be non-negative, got {v}")))
}

pub(crate) fn infer_alloc(name: &str, inputs: &[InputInfo]) -> Result<TensorType> {
    let Some((value, dims)) = inputs.split_first() else {
        return Err(GraphError::op(
            name,
            "needs a value and one scalar per dimension",
        ));
    };
    if dims.len() < value.ty.ndim() {
        return Err(GraphError::op(
            name,
            format!(
                "value (input 0) has {} dimensions, more than the {} requested",
                value.ty.ndim(),
                dims.len()
            ),
        ));
    }
    let offset = dims.len() - value.ty.ndim();
    let mut shape = Vec::with_capacity(dims.len());
    for (axis, dim) in dims.iter().enumerate() {
        require_int_scalar(name, axis + 1, dim, "a size")?;
        let target = dim
            .const_int()
            .map(|v| nonnegative(name, &format!("size {axis}"), v))
            .transpose()?;
        let from_value = axis
            .checked_sub(offset)
            .and_then(|a| value.ty.shape[a])
            .filter(|n| *n != 1);
        shape.push(match (target, from_value) {
            (Some(t), Some(v)) if t != v => {
                return Err(GraphError::op(
                    name,
                    format!(
                        "value (input 0) has static size {v} in dimension {} but the target \
                         size is {t}; only dimensions of static size 1 broadcast",
                        axis - offset
                    ),
                ))
            }
            (Some(t), _) => Some(t),
            (None, v) => v,
        });
    }
    possible(name, value.ty.dtype, shape)
}

pub(crate) fn infer_reshape(name: &str, ndim: usize, inputs: &[InputInfo]) -> Result<TensorType> {
    let [x, shape] = inputs else {
        return Err(GraphError::op(name, "takes x and a shape vector"));
    };
    let len = require_int_vector(name, 1, shape, "the shape")?;
    if len != ndim {
        return Err(GraphError::op(
            name,
            format!("the shape (input 1) has {len} entries but the op makes {ndim} dimensions"),
        ));
    }
    let Some(values) = shape.const_ints() else {
        return Ok(TensorType::new(x.ty.dtype, vec![None; ndim]));
    };
    let mut out: Vec<Option<usize>> = Vec::with_capacity(ndim);
    let mut unknown_at = None;
    for (i, v) in values.iter().enumerate() {
        match *v {
            -1 if unknown_at.is_none() => {
                unknown_at = Some(i);
                out.push(None);
            }
            -1 => return Err(GraphError::op(name, "the shape may contain at most one -1")),
            v => out.push(Some(nonnegative(name, &format!("shape entry {i}"), v)?)),
        }
    }
    let Some(known) = out
        .iter()
        .flatten()
        .try_fold(1usize, |acc, d| acc.checked_mul(*d))
    else {
        return Err(GraphError::op(
            name,
            format!("the element count of shape {values:?} overflows"),
        ));
    };
    if let Some(total) = x.ty.static_size() {
        match unknown_at {
            Some(i) if known > 0 && total % known == 0 => out[i] = Some(total / known),
            None if known == total => {}
            _ => {
                return Err(GraphError::op(
                    name,
                    format!(
                        "cannot reshape input 0 ({}, {total} elements) into shape {values:?}",
                        x.ty
                    ),
                ))
            }
        }
    }
    possible(name, x.ty.dtype, out)
}

pub(crate) fn infer_specify_shape(
    name: &str,
    spec: &[Option<usize>],
    inputs: &[InputInfo],
) -> Result<TensorType> {
    let [x] = inputs else {
        return Err(GraphError::op(name, "takes exactly one input"));
    };
    if spec.len() != x.ty.ndim() {
        return Err(GraphError::op(
            name,
            format!(
                "specifies {} dimensions but input 0 is {}",
                spec.len(),
                x.ty
            ),
        ));
    }
    let mut shape = Vec::with_capacity(spec.len());
    for (axis, (s, t)) in spec.iter().zip(&x.ty.shape).enumerate() {
        shape.push(match (s, t) {
            (Some(s), Some(t)) if s != t => {
                return Err(GraphError::op(
                    name,
                    format!(
                        "dimension {axis} of input 0 ({}) has static size {t}, not {s}",
                        x.ty
                    ),
                ))
            }
            (Some(s), _) => Some(*s),
            (None, t) => *t,
        });
    }
    Ok(TensorType::new(x.ty.dtype, shape))
}

pub(crate) fn infer_shape(name: &str, inputs: &[InputInfo]) -> Result<TensorType> {
    let [x] = inputs else {
        return Err(GraphError::op(name, "takes exactly one input"));
    };
    Ok(TensorType::new(DType::Int64, vec![Some(x.ty.ndim())]))
}

pub(crate) fn infer_make_vector(
    name: &str,
    dtype: DType,
    inputs: &[InputInfo],
) -> Result<TensorType> {
    for (i, x) in inputs.iter().enumerate() {
        if x.ty.ndim() != 0 || x.ty.dtype != dtype {
            return Err(GraphError::op(
                name,
                format!("input {i} must be a {dtype} scalar, got {}", x.ty),
            ));
        }
    }
    Ok(TensorType::new(dtype, vec![Some(inputs.len())]))
}

pub(crate) fn infer_arange(name: &str, dtype: DType, inputs: &[InputInfo]) -> Result<TensorType> {
    let [start, stop, step] = inputs else {
        return Err(GraphError::op(name, "takes start, stop and step"));
    };
    for (i, x) in inputs.iter().enumerate() {
        if x.ty.ndim() != 0 || x.ty.dtype != dtype {
            return Err(GraphError::op(
                name,
                format!("input {i} must be a {dtype} scalar, got {}", x.ty),
            ));
        }
    }
    let lit = |x: &InputInfo| x.constant.and_then(|c| c.item());
    let len = match (lit(start), lit(stop), lit(step)) {
        (_, _, Some(s)) if literal_f64(s) == 0.0 => {
            return Err(GraphError::op(name, "step (input 2) must not be zero"))
        }
        (Some(a), Some(b), Some(s)) if dtype.is_float() => {
            arange_len(literal_f64(a), literal_f64(b), literal_f64(s))
        }
        (Some(a), Some(b), Some(s)) => {
            let int = |l| match l {
                crate::dtype::Literal::Int(i) => Some(i),
                crate::dtype::Literal::Bool(b) => Some(b as i64),
                crate::dtype::Literal::Float(_) => None,
            };
            match (int(a), int(b), int(s)) {
                (Some(a), Some(b), Some(s)) => arange_len_int(a, b, s),
                _ => None,
            }
        }
        _ => None,
    };
    possible(name, dtype, vec![len])
}

fn literal_f64(l: crate::dtype::Literal) -> f64 {
    match l {
        crate::dtype::Literal::Bool(b) => b as u8 as f64,
        crate::dtype::Literal::Int(i) => i as f64,
        crate::dtype::Literal::Float(f) => f,
    }
}

/// NumPy's arange length of floats: `max(0, ceil((stop - start) / step))`; `None` when
/// it is not finite or not below 2^64 (no array is that long).
pub fn arange_len(start: f64, stop: f64, step: f64) -> Option<usize> {
    let n = ((stop - start) / step).ceil();
    if !n.is_finite() || n >= 18446744073709551616.0 {
        None
    } else if n > 0.0 {
        Some(n as usize)
    } else {
        Some(0)
    }
}

/// NumPy's arange length of integers, measured in integers: `max(0, ceil((stop - start) /
/// step))` for a non-zero step (`None` for a zero step).
pub fn arange_len_int(start: i64, stop: i64, step: i64) -> Option<usize> {
    if step == 0 {
        return None;
    }
    let (span, s) = (stop as i128 - start as i128, step as i128);
    let n = (span + s - s.signum()) / s;
    Some(n.max(0) as usize)
}

pub(crate) fn infer_join(name: &str, axis: usize, inputs: &[InputInfo]) -> Result<TensorType> {
    let Some(first) = inputs.first() else {
        return Err(GraphError::op(name, "needs at least one input"));
    };
    let ndim = first.ty.ndim();
    if axis >= ndim {
        return Err(GraphError::op(
            name,
            format!("axis {axis} is out of range for input 0 ({})", first.ty),
        ));
    }
    let mut shape = first.ty.shape.clone();
    for (i, x) in inputs.iter().enumerate().skip(1) {
        if x.ty.ndim() != ndim || x.ty.dtype != first.ty.dtype {
            return Err(GraphError::op(
                name,
                format!(
                    "input {i} ({}) must have the dtype and ndim of input 0 ({})",
                    x.ty, first.ty
                ),
            ));
        }
        for (d, size) in x.ty.shape.iter().enumerate() {
            if d == axis {
                shape[d] = shape[d].zip(*size).map(|(a, b)| a + b);
            } else {
                shape[d] = match (shape[d], size) {
                    (Some(a), Some(b)) if a != *b => {
                        return Err(GraphError::op(
                            name,
                            format!(
                                "input {i} has size {b} in dimension {d}, other inputs {a}; \
                                 only the joined axis may differ"
                            ),
                        ))
                    }
                    (a, b) => a.or(*b),
                };
            }
        }
    }
    Ok(TensorType::new(first.ty.dtype, shape))
}

pub(crate) fn infer_split(
    name: &str,
    axis: usize,
    n: usize,
    inputs: &[InputInfo],
) -> Result<Vec<TensorType>> {
    let [x, sizes] = inputs else {
        return Err(GraphError::op(name, "takes x and a vector of sizes"));
    };
    if axis >= x.ty.ndim() {
        return Err(GraphError::op(
            name,
            format!("axis {axis} is out of range for input 0 ({})", x.ty),
        ));
    }
    let len = require_int_vector(name, 1, sizes, "the sizes")?;
    if len != n {
        return Err(GraphError::op(
            name,
            format!("the sizes (input 1) have {len} entries, expected {n}"),
        ));
    }
    let consts = sizes.const_ints();
    if let Some(values) = &consts {
        let mut total = 0usize;
        for v in values {
            total += nonnegative(name, "every size", *v)?;
        }
        if let Some(dim) = x.ty.shape[axis] {
            if dim != total {
                return Err(GraphError::op(
                    name,
                    format!("the sizes {values:?} add up to {total}, but axis {axis} of input 0 has size {dim}"),
                ));
            }
        }
    }
    Ok((0..n)
        .map(|k| {
            let mut shape = x.ty.shape.clone();
            shape[axis] = consts.as_ref().map(|v| v[k] as usize);
            TensorType::new(x.ty.dtype, shape)
        })
        .collect())
}

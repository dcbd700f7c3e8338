//! The output-shape rule of every op with a computed result, from its inputs' shapes (and
//! the values that fix sizes), with the reference's errors: one rule per op, which the
//! interpreter shapes and checks its results by and the JIT allocates its outputs by, so
//! the two backends cannot disagree on a shape or on which input is wrong. Element-wise
//! shapes are `broadcast::broadcast_shape`'s (DESIGN §3).

use tensorlift_ir::ops::ReduceKind;
use tensorlift_ir::{DType, TensorData};

use crate::broadcast::{broadcast_shape, Operand, Shape};
use crate::error::{Result, RuntimeError};
use crate::shape_ops::{arange_length, scalar_int};

/// A reduction of `shape` over `axes` (in range, distinct); max and min of an empty axis
/// are errors.
pub fn reduce(name: &str, kind: ReduceKind, shape: &[usize], axes: &[usize]) -> Result<Shape> {
    if let Some(a) = axes.iter().find(|a| **a >= shape.len()) {
        return Err(RuntimeError::Internal(format!(
            "{name}: axis {a} for shape {shape:?}"
        )));
    }
    if matches!(kind, ReduceKind::Max | ReduceKind::Min) {
        if let Some(a) = axes.iter().find(|a| shape[**a] == 0) {
            return Err(RuntimeError::op(
                name,
                format!(
                    "axis {a} of input 0 (shape {shape:?}) is empty; an empty axis has no \
                     maximum, minimum or arg-index"
                ),
            ));
        }
    }
    Ok((0..shape.len())
        .filter(|d| !axes.contains(d))
        .map(|d| shape[d])
        .collect())
}

/// An arg-reduction along `axis` (the shape without it) or of the flattened input (a
/// scalar); an empty axis or input has no arg-index.
pub fn arg_reduce(name: &str, shape: &[usize], axis: Option<usize>) -> Result<Vec<usize>> {
    match axis {
        None if shape.contains(&0) => Err(RuntimeError::op(
            name,
            format!("input 0 (shape {shape:?}) is empty; it has no arg-index"),
        )),
        None => Ok(Vec::new()),
        Some(a) if a >= shape.len() => Err(RuntimeError::Internal(format!(
            "{name}: axis {a} for shape {shape:?}"
        ))),
        Some(a) if shape[a] == 0 => Err(RuntimeError::op(
            name,
            format!("axis {a} of input 0 (shape {shape:?}) is empty; it has no arg-index"),
        )),
        Some(a) => Ok((0..shape.len())
            .filter(|d| *d != a)
            .map(|d| shape[d])
            .collect()),
    }
}

/// A running sum or product along `axis` (the input's shape) or of the flattened input
/// (its element count).
pub fn cumulative(name: &str, shape: &[usize], axis: Option<usize>) -> Result<Vec<usize>> {
    match axis {
        None => Ok(vec![shape.iter().product()]),
        Some(a) if a < shape.len() => Ok(shape.to_vec()),
        Some(a) => Err(RuntimeError::Internal(format!(
            "{name}: axis {a} for shape {shape:?}"
        ))),
    }
}

/// A concatenation along `axis`: the inputs agree on every other dimension; their sizes
/// along the axis add up.
pub fn join(name: &str, axis: usize, shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let Some(first) = shapes.first() else {
        return Err(RuntimeError::Internal(format!("{name}: no inputs")));
    };
    if axis >= first.len() {
        return Err(RuntimeError::Internal(format!(
            "{name}: axis {axis} for shape {first:?}"
        )));
    }
    for (i, x) in shapes.iter().enumerate().skip(1) {
        if x.len() != first.len() {
            return Err(RuntimeError::op(
                name,
                format!(
                    "input {i} has rank {} where input 0 has rank {}",
                    x.len(),
                    first.len()
                ),
            ));
        }
        for (d, (a, b)) in first.iter().zip(x.iter()).enumerate() {
            if d != axis && a != b {
                return Err(RuntimeError::op(
                    name,
                    format!(
                        "input {i} has size {b} in dimension {d} where input 0 has {a}; only \
                         axis {axis} may differ"
                    ),
                ));
            }
        }
    }
    let mut out = first.to_vec();
    out[axis] = shapes
        .iter()
        .try_fold(0usize, |acc, s| acc.checked_add(s[axis]))
        .ok_or_else(|| RuntimeError::op(name, "the joined size overflows".to_string()))?;
    Ok(out)
}

/// NumPy `dot` of 1-d/2-d operands: the contracted dimensions agree; the result has a's
/// outer dimension and b's.
pub fn dot(name: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    if a.last().unwrap_or(&0) != b.first().unwrap_or(&0) {
        return Err(RuntimeError::op(
            name,
            format!(
                "the contracted dimensions differ: input 0 has shape {a:?}, input 1 has shape {b:?}"
            ),
        ));
    }
    Ok(a[..a.len().saturating_sub(1)]
        .iter()
        .chain(b.get(1..).unwrap_or(&[]))
        .copied()
        .collect())
}

/// `Alloc(value, sizes…)`: the sizes' values (non-negative), which the value broadcasts to
/// (only along its statically broadcastable dimensions).
pub fn alloc(
    name: &str,
    value_shape: &[usize],
    value_static: &[Option<usize>],
    sizes: &[&TensorData],
) -> Result<Vec<usize>> {
    let mut target = Vec::with_capacity(sizes.len());
    for (i, d) in sizes.iter().enumerate() {
        let v = scalar_int(name, "a size", d)?;
        if v < 0 {
            return Err(RuntimeError::op(
                name,
                format!(
                    "size {i} (input {}) is {v}; sizes must be non-negative",
                    i + 1
                ),
            ));
        }
        target.push(v as usize);
    }
    let operand = Operand {
        label: "the value (input 0)",
        static_shape: value_static,
        shape: value_shape,
    };
    broadcast_shape(
        name,
        target.len(),
        &[operand],
        Some(("the requested shape", &target)),
    )?;
    Ok(target)
}

/// `Arange(start, stop, step)` of `dtype`: a vector of NumPy's length.
pub fn arange(
    name: &str,
    dtype: DType,
    start: &TensorData,
    stop: &TensorData,
    step: &TensorData,
) -> Result<Vec<usize>> {
    Ok(vec![arange_length(name, dtype, start, stop, step)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_gives_numpys_shape_or_names_the_wrong_input() {
        assert_eq!(
            reduce("Sum", ReduceKind::Sum, &[2, 0, 3], &[1])
                .unwrap()
                .as_slice(),
            &[2, 3]
        );
        let err = reduce("Max", ReduceKind::Max, &[2, 0, 3], &[1]).unwrap_err();
        assert!(err
            .to_string()
            .contains("axis 1 of input 0 (shape [2, 0, 3]) is empty"));
        assert_eq!(arg_reduce("Argmax", &[4, 5], Some(0)).unwrap(), vec![5]);
        assert_eq!(
            arg_reduce("Argmax", &[4, 5], None).unwrap(),
            Vec::<usize>::new()
        );
        assert!(arg_reduce("Argmax", &[4, 0], None).is_err());
        assert_eq!(cumulative("CumSum", &[2, 3], None).unwrap(), vec![6]);
        assert_eq!(join("Join", 1, &[&[2, 3], &[2, 4]]).unwrap(), vec![2, 7]);
        let err = join("Join", 1, &[&[2, 3], &[5, 4]])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("input 1 has size 5 in dimension 0 where input 0 has 2"),
            "{err}"
        );
        assert_eq!(dot("Dot", &[2, 3], &[3, 4]).unwrap(), vec![2, 4]);
        assert_eq!(dot("Dot", &[3], &[3]).unwrap(), Vec::<usize>::new());
        assert!(dot("Dot", &[2, 3], &[4]).is_err());
        let sizes = [TensorData::scalar(2i64), TensorData::scalar(3i64)];
        let refs: Vec<&TensorData> = sizes.iter().collect();
        assert_eq!(alloc("Alloc", &[3], &[Some(3)], &refs).unwrap(), vec![2, 3]);
        assert!(alloc("Alloc", &[4], &[Some(4)], &refs).is_err());
    }
}

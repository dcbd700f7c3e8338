//! Indexing ops: basic (`Subtensor`, `IncSubtensor`) and advanced (`AdvancedSubtensor`,
//! `AdvancedIncSubtensor`) — their index slots, NumPy's slice arithmetic and type inference.
//!
//! Owns: how an index list maps input dimensions to output dimensions (NumPy semantics:
//! negative indices count from the end, slices may step backwards, advanced indices
//! broadcast together and land where NumPy puts them). Index *values* are graph inputs, so
//! they may be symbolic; constants give static sizes. Out-of-range constant indices on
//! known sizes are rejected here; everything else is checked at run time by backends.

use crate::dtype::DType;
use crate::error::{GraphError, Result};
use crate::ops::InputInfo;
use crate::types::{elemwise_shape, TensorType};

/// One entry of a basic index. The values are scalar inputs of the node, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexSlot {
    /// An integer index: removes the dimension.
    Index,
    /// A slice; each flag says whether that part is given (as an input).
    Slice { start: bool, stop: bool, step: bool },
}

impl IndexSlot {
    /// The full slice `:`.
    pub const FULL: IndexSlot = IndexSlot::Slice {
        start: false,
        stop: false,
        step: false,
    };

    /// How many scalar inputs the slot takes.
    pub fn n_inputs(self) -> usize {
        match self {
            IndexSlot::Index => 1,
            IndexSlot::Slice { start, stop, step } => {
                start as usize + stop as usize + step as usize
            }
        }
    }
}

/// One entry of an advanced index: a basic slot, or an integer array / boolean mask input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdvancedSlot {
    Basic(IndexSlot),
    Array,
}

impl AdvancedSlot {
    pub fn n_inputs(self) -> usize {
        match self {
            AdvancedSlot::Basic(s) => s.n_inputs(),
            AdvancedSlot::Array => 1,
        }
    }
}

/// Set the indexed region to `y`, or add `y` to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IncMode {
    Set,
    Inc,
}

/// A slice resolved against a dimension: the first index, the step and the element count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedSlice {
    pub start: i64,
    pub step: i64,
    pub len: usize,
}

/// NumPy's (Python's) slice resolution for a dimension of size `dim`; `step` must not be 0.
pub fn resolve_slice(
    start: Option<i64>,
    stop: Option<i64>,
    step: i64,
    dim: usize,
) -> ResolvedSlice {
    let n = dim as i64;
    let (lower, upper) = if step > 0 { (0, n) } else { (-1, n - 1) };
    let clamp = |v: Option<i64>, default: i64| match v {
        None => default,
        Some(v) if v < 0 => (v + n).max(lower),
        Some(v) => v.min(upper),
    };
    let start = clamp(start, if step > 0 { lower } else { upper });
    let stop = clamp(stop, if step > 0 { upper } else { lower });
    let len = if step > 0 && start < stop {
        (stop - start - 1) / step + 1
    } else if step < 0 && stop < start {
        ((start - stop - 1) as u64 / step.unsigned_abs()) as i64 + 1
    } else {
        0
    };
    ResolvedSlice {
        start,
        step,
        len: len as usize,
    }
}

/// Resolves a (possibly negative) integer index against a dimension; `None` when out of
/// range.
pub fn resolve_index(index: i64, dim: usize) -> Option<usize> {
    let n = dim as i64;
    let i = if index < 0 { index + n } else { index };
    (0..n).contains(&i).then_some(i as usize)
}

/// True when NumPy keeps the broadcast advanced-index dimensions in place (all advanced
/// entries adjacent) rather than moving them to the front. `is_advanced[k]` tells whether
/// slot k takes part in advanced indexing (arrays, and integer indices next to arrays).
pub fn advanced_entries_adjacent(is_advanced: &[bool]) -> bool {
    let positions: Vec<usize> = (0..is_advanced.len()).filter(|k| is_advanced[*k]).collect();
    positions.windows(2).all(|w| w[1] == w[0] + 1)
}

fn check_index_input(name: &str, i: usize, input: &InputInfo) -> Result<()> {
    if input.ty.ndim() != 0 || !input.ty.dtype.is_int() {
        return Err(GraphError::op(
            name,
            format!(
                "index (input {i}) must be an integer scalar, got {}",
                input.ty
            ),
        ));
    }
    Ok(())
}

/// Static output size of one basic slot over a dimension of static size `dim`; `None`
/// when the slot removes the dimension (`Ok(None)`), else `Ok(Some(size))`.
fn slot_static_size(
    name: &str,
    slot: IndexSlot,
    values: &[InputInfo],
    first_input: usize,
    axis: usize,
    dim: Option<usize>,
) -> Result<Option<Option<usize>>> {
    for (k, v) in values.iter().enumerate() {
        check_index_input(name, first_input + k, v)?;
    }
    match slot {
        IndexSlot::Index => {
            if let (Some(i), Some(d)) = (values[0].const_int(), dim) {
                if resolve_index(i, d).is_none() {
                    return Err(GraphError::op(
                        name,
                        format!("index {i} is out of range for axis {axis} of size {d}"),
                    ));
                }
            }
            Ok(None)
        }
        IndexSlot::Slice { start, stop, step } => {
            let mut it = values.iter();
            let mut part = |given: bool| -> Option<Option<i64>> {
                if given {
                    it.next().and_then(|v| v.const_int()).map(Some)
                } else {
                    Some(None)
                }
            };
            let (start_v, stop_v, step_v) = (part(start), part(stop), part(step));
            if step_v == Some(Some(0)) {
                return Err(GraphError::op(
                    name,
                    format!("slice step of axis {axis} is zero"),
                ));
            }
            let full_range = !start && !stop;
            let size = match (start_v, stop_v, step_v, dim) {
                (Some(a), Some(b), Some(s), Some(d)) => {
                    Some(resolve_slice(a, b, s.unwrap_or(1), d).len)
                }
                (_, _, Some(None | Some(1 | -1)), d) if full_range => d,
                _ => None,
            };
            Ok(Some(size))
        }
    }
}

pub(crate) fn infer_subtensor(
    name: &str,
    slots: &[IndexSlot],
    inputs: &[InputInfo],
) -> Result<TensorType> {
    let Some((x, values)) = inputs.split_first() else {
        return Err(GraphError::op(name, "needs the indexed tensor as input 0"));
    };
    Ok(TensorType::new(
        x.ty.dtype,
        basic_index_shape(name, slots, x, values, 1)?,
    ))
}

fn basic_index_shape(
    name: &str,
    slots: &[IndexSlot],
    x: &InputInfo,
    values: &[InputInfo],
    first_input: usize,
) -> Result<Vec<Option<usize>>> {
    if slots.len() > x.ty.ndim() {
        return Err(GraphError::op(
            name,
            format!(
                "{} indices for input 0 ({}) with {} dimensions",
                slots.len(),
                x.ty,
                x.ty.ndim()
            ),
        ));
    }
    let needed: usize = slots.iter().map(|s| s.n_inputs()).sum();
    if values.len() != needed {
        return Err(GraphError::op(
            name,
            format!(
                "the index needs {needed} scalar inputs, got {}",
                values.len()
            ),
        ));
    }
    let mut shape = Vec::new();
    let mut next = 0;
    for (axis, slot) in slots.iter().enumerate() {
        let k = slot.n_inputs();
        let size = slot_static_size(
            name,
            *slot,
            &values[next..next + k],
            first_input + next,
            axis,
            x.ty.shape[axis],
        )?;
        next += k;
        if let Some(s) = size {
            shape.push(s);
        }
    }
    shape.extend_from_slice(&x.ty.shape[slots.len()..]);
    Ok(shape)
}

/// Checks that `y` can be written into a region of type `region` (DESIGN §3: aligned on
/// the right, broadcasting only along static-size-1 dimensions of `y`).
fn check_fits_region(name: &str, y: &TensorType, region: &TensorType) -> Result<()> {
    if y.ndim() > region.ndim() {
        return Err(GraphError::op(
            name,
            format!(
                "the value (input 1, {y}) has more dimensions than the indexed region ({region})"
            ),
        ));
    }
    let offset = region.ndim() - y.ndim();
    for (d, size) in y.shape.iter().enumerate() {
        if let (Some(a), Some(b)) = (size, region.shape[offset + d]) {
            if *a != 1 && *a != b {
                return Err(GraphError::op(
                    name,
                    format!(
                        "the value (input 1, {y}) has static size {a} in dimension {d} but the \
                         indexed region ({region}) has {b}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_value_dtype(name: &str, x: &TensorType, y: &TensorType) -> Result<()> {
    if x.dtype != y.dtype {
        return Err(GraphError::op(
            name,
            format!("the value (input 1, {y}) must have the dtype of input 0 ({x}); cast it first"),
        ));
    }
    Ok(())
}

pub(crate) fn infer_inc_subtensor(
    name: &str,
    slots: &[IndexSlot],
    inputs: &[InputInfo],
) -> Result<TensorType> {
    infer_write(name, inputs, |x, values| {
        basic_index_shape(name, slots, x, values, 2)
    })
}

/// Type of a write `x[index] = y`: x's type, once y's dtype and shape fit the region.
fn infer_write(
    name: &str,
    inputs: &[InputInfo],
    region_shape: impl Fn(&InputInfo, &[InputInfo]) -> Result<Vec<Option<usize>>>,
) -> Result<TensorType> {
    let [x, y, values @ ..] = inputs else {
        return Err(GraphError::op(name, "needs x, the value and the indices"));
    };
    check_value_dtype(name, x.ty, y.ty)?;
    let region = TensorType::new(x.ty.dtype, region_shape(x, values)?);
    check_fits_region(name, y.ty, &region)?;
    Ok(x.ty.clone())
}

pub(crate) fn infer_advanced_subtensor(
    name: &str,
    slots: &[AdvancedSlot],
    inputs: &[InputInfo],
) -> Result<TensorType> {
    let Some((x, values)) = inputs.split_first() else {
        return Err(GraphError::op(name, "needs the indexed tensor as input 0"));
    };
    Ok(TensorType::new(
        x.ty.dtype,
        advanced_index_shape(name, slots, x, values, 1)?,
    ))
}

pub(crate) fn infer_advanced_inc_subtensor(
    name: &str,
    slots: &[AdvancedSlot],
    inputs: &[InputInfo],
) -> Result<TensorType> {
    infer_write(name, inputs, |x, values| {
        advanced_index_shape(name, slots, x, values, 2)
    })
}

/// How many dimensions of the indexed tensor an advanced slot consumes.
pub fn advanced_slot_ndim(slot: AdvancedSlot, index_type: Option<&TensorType>) -> usize {
    match (slot, index_type) {
        (AdvancedSlot::Array, Some(t)) if t.dtype == DType::Bool => t.ndim(),
        _ => 1,
    }
}

fn advanced_index_shape(
    name: &str,
    slots: &[AdvancedSlot],
    x: &InputInfo,
    values: &[InputInfo],
    first_input: usize,
) -> Result<Vec<Option<usize>>> {
    let needed: usize = slots.iter().map(|s| s.n_inputs()).sum();
    if values.len() != needed {
        return Err(GraphError::op(
            name,
            format!("the index needs {needed} inputs, got {}", values.len()),
        ));
    }
    let has_array = slots.contains(&AdvancedSlot::Array);
    let mut axis = 0;
    let mut next = 0;
    let mut basic_dims = Vec::new(); // (slot position, size)
    let mut broadcast_shapes: Vec<Vec<Option<usize>>> = Vec::new();
    let mut is_advanced = Vec::with_capacity(slots.len());
    for slot in slots {
        let k = slot.n_inputs();
        let vals = &values[next..next + k];
        let consumed = advanced_slot_ndim(*slot, vals.first().map(|v| v.ty));
        if axis + consumed > x.ty.ndim() {
            return Err(GraphError::op(
                name,
                format!("too many indices for input 0 ({})", x.ty),
            ));
        }
        match slot {
            AdvancedSlot::Array => {
                let t = vals[0].ty;
                if t.dtype.is_float() {
                    return Err(GraphError::op(
                        name,
                        format!(
                            "index array (input {}) must be integer or bool, got {t}",
                            first_input + next
                        ),
                    ));
                }
                if t.dtype == DType::Bool {
                    if t.ndim() == 0 {
                        return Err(GraphError::op(
                            name,
                            "a boolean mask must have at least one dimension",
                        ));
                    }
                    for d in 0..t.ndim() {
                        if let (Some(m), Some(s)) = (t.shape[d], x.ty.shape[axis + d]) {
                            if m != s {
                                return Err(GraphError::op(
                                    name,
                                    format!(
                                        "boolean mask (input {}) has size {m} in dimension {d} \
                                         but the indexed axis {} has size {s}",
                                        first_input + next,
                                        axis + d
                                    ),
                                ));
                            }
                        }
                    }
                    broadcast_shapes.push(vec![None]);
                } else {
                    broadcast_shapes.push(t.shape.clone());
                }
                is_advanced.push(true);
            }
            AdvancedSlot::Basic(IndexSlot::Index) if has_array => {
                slot_static_size(
                    name,
                    IndexSlot::Index,
                    vals,
                    first_input + next,
                    axis,
                    x.ty.shape[axis],
                )?;
                broadcast_shapes.push(vec![]);
                is_advanced.push(true);
            }
            AdvancedSlot::Basic(b) => {
                let size =
                    slot_static_size(name, *b, vals, first_input + next, axis, x.ty.shape[axis])?;
                if let Some(s) = size {
                    basic_dims.push((is_advanced.len(), s));
                }
                is_advanced.push(false);
            }
        }
        axis += consumed;
        next += k;
    }
    let ndim = broadcast_shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let padded: Vec<Vec<Option<usize>>> = broadcast_shapes
        .iter()
        .map(|s| {
            let mut p = vec![Some(1); ndim - s.len()];
            p.extend_from_slice(s);
            p
        })
        .collect();
    let refs: Vec<&[Option<usize>]> = padded.iter().map(|p| p.as_slice()).collect();
    let index_shape = elemwise_shape(name, &refs)?;
    let mut shape = Vec::new();
    if advanced_entries_adjacent(&is_advanced) {
        let first = is_advanced.iter().position(|a| *a).unwrap_or(0);
        shape.extend(
            basic_dims
                .iter()
                .filter(|(p, _)| *p < first)
                .map(|(_, s)| *s),
        );
        shape.extend(index_shape);
        shape.extend(
            basic_dims
                .iter()
                .filter(|(p, _)| *p > first)
                .map(|(_, s)| *s),
        );
    } else {
        shape.extend(index_shape);
        shape.extend(basic_dims.iter().map(|(_, s)| *s));
    }
    shape.extend_from_slice(&x.ty.shape[axis..]);
    Ok(shape)
}

fn format_slot(slot: IndexSlot) -> String {
    match slot {
        IndexSlot::Index => "i".into(),
        IndexSlot::Slice { start, stop, step } => {
            let part = |given: bool, name: &str| {
                if given {
                    name.to_string()
                } else {
                    String::new()
                }
            };
            let mut s = format!("{}:{}", part(start, "start"), part(stop, "stop"));
            if step {
                s.push_str(":step");
            }
            s
        }
    }
}

pub(crate) fn format_slots(slots: &[IndexSlot]) -> String {
    slots
        .iter()
        .map(|s| format_slot(*s))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn format_advanced_slots(slots: &[AdvancedSlot]) -> String {
    slots
        .iter()
        .map(|s| match s {
            AdvancedSlot::Basic(b) => format_slot(*b),
            AdvancedSlot::Array => "array".into(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python_slice(start: Option<i64>, stop: Option<i64>, step: i64, n: usize) -> Vec<i64> {
        let r = resolve_slice(start, stop, step, n);
        (0..r.len as i64).map(|k| r.start + k * r.step).collect()
    }

    #[test]
    fn slices_follow_python() {
        // Expected lists are Python's list(range(n))[start:stop:step].
        assert_eq!(python_slice(None, None, -1, 4), vec![3, 2, 1, 0]);
        assert_eq!(python_slice(Some(5), Some(1), -1, 8), vec![5, 4, 3, 2]);
        assert_eq!(python_slice(Some(-2), None, 1, 5), vec![3, 4]);
        assert_eq!(python_slice(None, Some(-10), 1, 5), Vec::<i64>::new());
        assert_eq!(python_slice(Some(10), None, -2, 5), vec![4, 2, 0]);
        assert_eq!(python_slice(Some(1), Some(100), 3, 8), vec![1, 4, 7]);
        assert_eq!(python_slice(Some(0), None, -1, 4), vec![0]);
        assert_eq!(python_slice(None, None, 1, 0), Vec::<i64>::new());
    }

    #[test]
    fn indices_resolve() {
        assert_eq!(resolve_index(-1, 3), Some(2));
        assert_eq!(resolve_index(3, 3), None);
        assert_eq!(resolve_index(-4, 3), None);
    }

    #[test]
    fn adjacency() {
        assert!(advanced_entries_adjacent(&[false, true, true, false]));
        assert!(!advanced_entries_adjacent(&[true, false, true]));
    }
}

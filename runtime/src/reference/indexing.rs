//! Indexing kernels of the reference interpreter: Subtensor, IncSubtensor/SetSubtensor,
//! AdvancedSubtensor and AdvancedIncSubtensor.
//!
//! Owns: resolving index values at run time with NumPy semantics and checking every one:
//! an index out of range is an error, never a read or write out of bounds. Basic indexing
//! is a view of the shared input; writes copy `x` first. Advanced writes visit positions in
//! row-major order, so repeated indices accumulate (`inc`) or keep the last write (`set`).
//! The written value obeys DESIGN §3 (no runtime broadcasting into the region).

use ndarray::{ArrayBase, ArrayD, ArrayViewD, ArrayViewMutD, Axis, Dimension, IxDyn, Slice};
use tensorlift_ir::ops::indexing::{
    advanced_entries_adjacent, resolve_index, resolve_slice, ResolvedSlice,
};
use tensorlift_ir::ops::{AdvancedSlot, IncMode, IndexSlot};
use tensorlift_ir::{with_tensor_data, DType, Element, TensorData};

use crate::broadcast::{broadcast_shape, Operand};
use crate::error::{Result, RuntimeError};
use crate::scalar::{cast, Scalar};
use crate::shape_ops::scalar_int;
use crate::with_scalar_type;

/// A basic index entry resolved against a run-time dimension.
#[derive(Clone, Copy, Debug)]
enum BasicStep {
    Index(usize),
    Slice(ResolvedSlice),
}

fn out_of_range(name: &str, index: i64, axis: usize, dim: usize) -> RuntimeError {
    RuntimeError::op(
        name,
        format!("index {index} is out of range for axis {axis} of size {dim}"),
    )
}

fn resolve_slot(
    name: &str,
    slot: IndexSlot,
    values: &[&TensorData],
    axis: usize,
    dim: usize,
) -> Result<BasicStep> {
    match slot {
        IndexSlot::Index => {
            let i = scalar_int(name, "an index", values[0])?;
            resolve_index(i, dim)
                .map(BasicStep::Index)
                .ok_or_else(|| out_of_range(name, i, axis, dim))
        }
        IndexSlot::Slice { start, stop, step } => {
            let mut it = values.iter();
            let mut part = |given: bool| -> Result<Option<i64>> {
                if !given {
                    return Ok(None);
                }
                let v = it.next().ok_or_else(|| {
                    RuntimeError::Internal(format!("{name}: missing slice input"))
                })?;
                scalar_int(name, "a slice bound", v).map(Some)
            };
            let (a, b, s) = (part(start)?, part(stop)?, part(step)?);
            let s = s.unwrap_or(1);
            if s == 0 {
                return Err(RuntimeError::op(
                    name,
                    format!("the slice step of axis {axis} is zero"),
                ));
            }
            Ok(BasicStep::Slice(resolve_slice(a, b, s, dim)))
        }
    }
}

fn resolve_basic(
    name: &str,
    slots: &[IndexSlot],
    values: &[&TensorData],
    shape: &[usize],
) -> Result<Vec<BasicStep>> {
    if slots.len() > shape.len() {
        return Err(RuntimeError::Internal(format!("{name}: too many indices")));
    }
    let mut steps = Vec::with_capacity(slots.len());
    let mut next = 0;
    for (axis, slot) in slots.iter().enumerate() {
        let k = slot.n_inputs();
        let vals = values
            .get(next..next + k)
            .ok_or_else(|| RuntimeError::Internal(format!("{name}: missing index inputs")))?;
        steps.push(resolve_slot(name, *slot, vals, axis, shape[axis])?);
        next += k;
    }
    Ok(steps)
}

/// ndarray's slice for a resolved NumPy slice (ndarray steps backwards from the range end).
fn ndarray_slice(r: ResolvedSlice) -> Slice {
    let (start, step, len) = (r.start as isize, r.step as isize, r.len as isize);
    if len == 0 {
        Slice::new(0, Some(0), 1)
    } else if step > 0 {
        Slice::new(start, Some(start + (len - 1) * step + 1), step)
    } else {
        Slice::new(start + (len - 1) * step, Some(start + 1), step)
    }
}

/// Applies resolved basic steps to an array or view of any storage (shared, mutable).
fn apply_steps<S: ndarray::RawData>(
    mut a: ArrayBase<S, IxDyn>,
    steps: &[BasicStep],
) -> ArrayBase<S, IxDyn> {
    let mut axis = 0;
    for step in steps {
        match step {
            BasicStep::Index(i) => a = a.index_axis_move(Axis(axis), *i),
            BasicStep::Slice(r) => {
                a.slice_axis_inplace(Axis(axis), ndarray_slice(*r));
                axis += 1;
            }
        }
    }
    a
}

/// `x[index]` with basic indices: a view of `x`.
pub fn eval_subtensor(
    name: &str,
    slots: &[IndexSlot],
    x: &TensorData,
    values: &[&TensorData],
) -> Result<TensorData> {
    let steps = resolve_basic(name, slots, values, x.shape())?;
    Ok(with_tensor_data!(x, a => Element::wrap(apply_steps(a.clone(), &steps))))
}

/// Writes `y` into `region` (checked against DESIGN §3), setting or adding.
fn write_region<T: Scalar>(
    name: &str,
    mut region: ArrayViewMutD<T>,
    y: ArrayViewD<T>,
    y_static: &[Option<usize>],
    mode: IncMode,
) -> Result<()> {
    let target = region.shape().to_vec();
    check_value_fits(name, &y, y_static, &target)?;
    let y = y
        .broadcast(IxDyn(&target))
        .ok_or_else(|| RuntimeError::Internal(format!("{name}: cannot broadcast the value")))?;
    match mode {
        IncMode::Set => region.assign(&y),
        IncMode::Inc => region.zip_mut_with(&y, |r, v| *r = r.add(*v)),
    }
    Ok(())
}

fn check_value_fits<T>(
    name: &str,
    y: &ArrayViewD<T>,
    y_static: &[Option<usize>],
    target: &[usize],
) -> Result<()> {
    check_value_shape(name, y.shape(), y_static, target)
}

/// Checks that a written value (input 1, of `shape` and static shape `y_static`) fits
/// the indexed region `target`: no more dimensions, and sizes equal except where its
/// static size is 1 (no runtime broadcasting). The JIT runs the same check.
pub fn check_value_shape(
    name: &str,
    shape: &[usize],
    y_static: &[Option<usize>],
    target: &[usize],
) -> Result<()> {
    if shape.len() > target.len() {
        return Err(RuntimeError::op(
            name,
            format!("the value (input 1) of shape {shape:?} has more dimensions than the indexed region {target:?}"),
        ));
    }
    let operand = Operand {
        label: "the value (input 1)",
        static_shape: y_static,
        shape,
    };
    broadcast_shape(
        name,
        target.len(),
        &[operand],
        Some(("the indexed region", target)),
    )?;
    Ok(())
}

fn typed<'a, T: Element>(name: &str, x: &'a TensorData) -> Result<ArrayViewD<'a, T>> {
    x.as_array::<T>().ok_or_else(|| {
        RuntimeError::Internal(format!(
            "{name}: expected {} data, got {}",
            T::DTYPE,
            x.dtype()
        ))
    })
}

/// The elements `x[index]` selects with basic indices, in an array of `shape` laid out
/// row-major: where the first one is (in elements from the start), and the region's
/// shape and strides (in elements). The view `eval_inc_subtensor` writes through, with
/// the same resolution and errors; every element it addresses is inside the array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub offset: isize,
    pub shape: Vec<usize>,
    pub strides: Vec<isize>,
}

/// The `Region` of `x[index]` for basic index `slots` (with their `values`) in a
/// row-major array of `shape`.
pub fn basic_region(
    name: &str,
    slots: &[IndexSlot],
    values: &[&TensorData],
    shape: &[usize],
) -> Result<Region> {
    let steps = resolve_basic(name, slots, values, shape)?;
    let row_major: Vec<isize> = (0..shape.len())
        .map(|d| shape[d + 1..].iter().product::<usize>() as isize)
        .collect();
    let mut region = Region {
        offset: 0,
        shape: Vec::new(),
        strides: Vec::new(),
    };
    for (axis, stride) in row_major.iter().enumerate() {
        match steps.get(axis) {
            Some(BasicStep::Index(i)) => region.offset += *i as isize * stride,
            Some(BasicStep::Slice(r)) => {
                if r.len > 0 {
                    region.offset += r.start as isize * stride;
                }
                region.shape.push(r.len);
                region.strides.push(r.step as isize * stride);
            }
            None => {
                region.shape.push(shape[axis]);
                region.strides.push(*stride);
            }
        }
    }
    Ok(region)
}

/// `x` with `x[index]` set to / incremented by `y` (basic indices).
pub fn eval_inc_subtensor(
    name: &str,
    slots: &[IndexSlot],
    mode: IncMode,
    x: &TensorData,
    y: &TensorData,
    y_static: &[Option<usize>],
    values: &[&TensorData],
) -> Result<TensorData> {
    let steps = resolve_basic(name, slots, values, x.shape())?;
    let y = cast(y, x.dtype());
    with_scalar_type!(x.dtype(), T => {
        let mut out: ArrayD<T> = typed::<T>(name, x)?.to_owned();
        let region = apply_steps(out.view_mut(), &steps);
        write_region(name, region, typed::<T>(name, &y)?, y_static, mode)?;
        Ok(TensorData::from_array(out))
    })
}

/// One entry of a resolved advanced index; each consumes one axis of `x`.
enum AdvancedEntry {
    Slice(ResolvedSlice),
    /// Non-negative, bounds-checked integer positions, with the static shape that decides
    /// how they broadcast.
    Array {
        positions: ArrayD<usize>,
        static_shape: Vec<Option<usize>>,
    },
}

/// Where every output element of an advanced index reads from.
struct AdvancedPlan {
    entries: Vec<AdvancedEntry>,
    index_shape: Vec<usize>,
    /// First output dimension of the broadcast index dimensions.
    index_at: usize,
    out_shape: Vec<usize>,
}

fn mask_positions(
    name: &str,
    mask: &TensorData,
    x_shape: &[usize],
    axis: usize,
    input: usize,
) -> Result<Vec<ArrayD<usize>>> {
    let m = typed::<bool>(name, mask)?;
    let covered = &x_shape[axis..axis + m.ndim()];
    if m.shape() != covered {
        return Err(RuntimeError::op(
            name,
            format!(
                "boolean mask (input {input}) has shape {:?} but indexes dimensions of sizes {covered:?}",
                m.shape()
            ),
        ));
    }
    let hits: Vec<Vec<usize>> = m
        .indexed_iter()
        .filter(|(_, v)| **v)
        .map(|(i, _)| i.slice().to_vec())
        .collect();
    Ok((0..m.ndim())
        .map(|d| ndarray::Array1::from_iter(hits.iter().map(|h| h[d])).into_dyn())
        .collect())
}

/// The positions a boolean `mask` (input `input`) selects in x's axes from `axis` — one
/// int64 vector per mask axis, in row-major order of the hits — with the reference's
/// check that the mask's shape is the shape of the axes it covers (its error).
pub fn mask_to_positions(
    name: &str,
    mask: &TensorData,
    x_shape: &[usize],
    axis: usize,
    input: usize,
) -> Result<Vec<TensorData>> {
    if axis + mask.ndim() > x_shape.len() {
        return Err(RuntimeError::op(
            name,
            format!("too many indices for an input of shape {x_shape:?}"),
        ));
    }
    let positions = mask_positions(name, mask, x_shape, axis, input)?;
    Ok(positions
        .into_iter()
        .map(|p| TensorData::from_array(p.mapv(|v| v as i64)))
        .collect())
}

fn int_positions(
    name: &str,
    index: &TensorData,
    axis: usize,
    dim: usize,
    input: usize,
) -> Result<ArrayD<usize>> {
    let as_i64 = cast(index, DType::Int64);
    let values = typed::<i64>(name, &as_i64)?;
    let mut out = ArrayD::<usize>::zeros(IxDyn(values.shape()));
    for (o, v) in out.iter_mut().zip(values.iter()) {
        *o = resolve_index(*v, dim).ok_or_else(|| {
            RuntimeError::op(
                name,
                format!("index {v} (in index array input {input}) is out of range for axis {axis} of size {dim}"),
            )
        })?;
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn plan_advanced(
    name: &str,
    slots: &[AdvancedSlot],
    x_shape: &[usize],
    values: &[&TensorData],
    value_static: &[&[Option<usize>]],
    first_input: usize,
) -> Result<AdvancedPlan> {
    let mut entries = Vec::new();
    let mut is_advanced = Vec::with_capacity(slots.len());
    let mut slice_slot = Vec::new(); // slot position of each slice entry
    let (mut axis, mut next) = (0usize, 0usize);
    for (pos, slot) in slots.iter().enumerate() {
        let k = slot.n_inputs();
        let vals = values
            .get(next..next + k)
            .ok_or_else(|| RuntimeError::Internal(format!("{name}: missing index inputs")))?;
        let input = first_input + next;
        let dim = |a: usize| {
            x_shape.get(a).copied().ok_or_else(|| {
                RuntimeError::op(
                    name,
                    format!("too many indices for an input of shape {x_shape:?}"),
                )
            })
        };
        match slot {
            AdvancedSlot::Basic(IndexSlot::Index) => {
                let i = scalar_int(name, "an index", vals[0])?;
                let d = dim(axis)?;
                let p = resolve_index(i, d).ok_or_else(|| out_of_range(name, i, axis, d))?;
                entries.push(AdvancedEntry::Array {
                    positions: ArrayD::from_elem(IxDyn(&[]), p),
                    static_shape: vec![],
                });
                is_advanced.push(true);
                axis += 1;
            }
            AdvancedSlot::Basic(basic) => {
                let BasicStep::Slice(r) = resolve_slot(name, *basic, vals, axis, dim(axis)?)?
                else {
                    return Err(RuntimeError::Internal(format!(
                        "{name}: slice slot resolved to an index"
                    )));
                };
                entries.push(AdvancedEntry::Slice(r));
                slice_slot.push(pos);
                is_advanced.push(false);
                axis += 1;
            }
            AdvancedSlot::Array if vals[0].dtype() == DType::Bool => {
                if axis + vals[0].ndim() > x_shape.len() {
                    return Err(RuntimeError::op(
                        name,
                        format!("too many indices for an input of shape {x_shape:?}"),
                    ));
                }
                for positions in mask_positions(name, vals[0], x_shape, axis, input)? {
                    entries.push(AdvancedEntry::Array {
                        positions,
                        static_shape: vec![None],
                    });
                }
                is_advanced.push(true);
                axis += vals[0].ndim();
            }
            AdvancedSlot::Array => {
                let positions = int_positions(name, vals[0], axis, dim(axis)?, input)?;
                entries.push(AdvancedEntry::Array {
                    positions,
                    static_shape: value_static[next].to_vec(),
                });
                is_advanced.push(true);
                axis += 1;
            }
        }
        next += k;
    }
    let labels: Vec<String> = (0..entries.len())
        .map(|k| format!("index entry {k}"))
        .collect();
    let operands: Vec<Operand> = entries
        .iter()
        .zip(&labels)
        .filter_map(|(e, label)| match e {
            AdvancedEntry::Array {
                positions,
                static_shape,
            } => Some(Operand {
                label,
                static_shape,
                shape: positions.shape(),
            }),
            AdvancedEntry::Slice(_) => None,
        })
        .collect();
    let index_ndim = operands.iter().map(|o| o.shape.len()).max().unwrap_or(0);
    let index_shape = broadcast_shape(name, index_ndim, &operands, None)?.to_vec();
    let slice_lens: Vec<usize> = entries
        .iter()
        .filter_map(|e| match e {
            AdvancedEntry::Slice(r) => Some(r.len),
            AdvancedEntry::Array { .. } => None,
        })
        .collect();
    let index_at = if advanced_entries_adjacent(&is_advanced) {
        let first = is_advanced.iter().position(|a| *a).unwrap_or(0);
        slice_slot.iter().filter(|p| **p < first).count()
    } else {
        0
    };
    let mut out_shape = slice_lens[..index_at].to_vec();
    out_shape.extend_from_slice(&index_shape);
    out_shape.extend_from_slice(&slice_lens[index_at..]);
    out_shape.extend_from_slice(&x_shape[axis..]);
    Ok(AdvancedPlan {
        entries,
        index_shape,
        index_at,
        out_shape,
    })
}

impl AdvancedPlan {
    /// The position in `x` that output position `out` reads, written into `src`.
    fn source(&self, out: &[usize], src: &mut Vec<usize>) {
        src.clear();
        let nb = self.index_shape.len();
        let index_part = &out[self.index_at..self.index_at + nb];
        let mut basic = (0..self.index_at).chain(self.index_at + nb..out.len());
        for entry in &self.entries {
            match entry {
                AdvancedEntry::Slice(r) => {
                    let j = basic.next().map_or(0, |d| out[d]);
                    src.push((r.start + j as i64 * r.step) as usize);
                }
                AdvancedEntry::Array { positions, .. } => {
                    let r = positions.ndim();
                    let coords: Vec<usize> = (0..r)
                        .map(|d| {
                            if positions.shape()[d] == 1 {
                                0
                            } else {
                                index_part[nb - r + d]
                            }
                        })
                        .collect();
                    src.push(positions[coords.as_slice()]);
                }
            }
        }
        src.extend(basic.map(|d| out[d]));
    }
}

/// `x[index]` with advanced indices: a new array.
pub fn eval_advanced_subtensor(
    name: &str,
    slots: &[AdvancedSlot],
    x: &TensorData,
    values: &[&TensorData],
    value_static: &[&[Option<usize>]],
) -> Result<TensorData> {
    let plan = plan_advanced(name, slots, x.shape(), values, value_static, 1)?;
    crate::memory::check_output(name, x.dtype(), &plan.out_shape)?;
    with_scalar_type!(x.dtype(), T => {
        let xv = typed::<T>(name, x)?;
        let mut src = Vec::with_capacity(x.ndim());
        let mut data = Vec::with_capacity(plan.out_shape.iter().product());
        for out in ndarray::indices(IxDyn(&plan.out_shape)) {
            plan.source(out.slice(), &mut src);
            data.push(xv[src.as_slice()]);
        }
        TensorData::from_vec(&plan.out_shape, data).map_err(|e| RuntimeError::Internal(format!("{name}: {e}")))
    })
}

/// `x` with `x[index]` set to / incremented by `y` (advanced indices).
#[allow(clippy::too_many_arguments)]
pub fn eval_advanced_inc_subtensor(
    name: &str,
    slots: &[AdvancedSlot],
    mode: IncMode,
    x: &TensorData,
    y: &TensorData,
    y_static: &[Option<usize>],
    values: &[&TensorData],
    value_static: &[&[Option<usize>]],
) -> Result<TensorData> {
    let plan = plan_advanced(name, slots, x.shape(), values, value_static, 2)?;
    let y = cast(y, x.dtype());
    with_scalar_type!(x.dtype(), T => {
        let mut out: ArrayD<T> = typed::<T>(name, x)?.to_owned();
        let yv = typed::<T>(name, &y)?;
        check_value_fits(name, &yv, y_static, &plan.out_shape)?;
        let yb = yv
            .broadcast(IxDyn(&plan.out_shape))
            .ok_or_else(|| RuntimeError::Internal(format!("{name}: cannot broadcast the value")))?;
        let mut src = Vec::with_capacity(x.ndim());
        for (pos, v) in yb.indexed_iter() {
            plan.source(pos.slice(), &mut src);
            let cell = &mut out[src.as_slice()];
            *cell = match mode {
                IncMode::Set => *v,
                IncMode::Inc => cell.add(*v),
            };
        }
        Ok(TensorData::from_array(out))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_of_slices_and_indices() {
        let int = |v: i64| TensorData::from_vec(&[], vec![v]).unwrap();
        let (one, five, two, minus_one) = (int(1), int(5), int(2), int(-1));
        // x[1:5:2, -1] of a 6 × 4 array: elements 7 and 15.
        let slots = [
            IndexSlot::Slice {
                start: true,
                stop: true,
                step: true,
            },
            IndexSlot::Index,
        ];
        let r = basic_region("t", &slots, &[&one, &five, &two, &minus_one], &[6, 4]).unwrap();
        assert_eq!(
            r,
            Region {
                offset: 7,
                shape: vec![2],
                strides: vec![8]
            }
        );
        // x[::-1] of a 3 × 2 array: starts at the last row, steps back, keeps the columns.
        let back = [IndexSlot::Slice {
            start: false,
            stop: false,
            step: true,
        }];
        let r = basic_region("t", &back, &[&minus_one], &[3, 2]).unwrap();
        assert_eq!(
            r,
            Region {
                offset: 4,
                shape: vec![3, 2],
                strides: vec![-2, 1]
            }
        );
        // An index out of range is the reference's error.
        let err = basic_region("t", &[IndexSlot::Index], &[&five], &[3]).unwrap_err();
        assert!(
            err.to_string().contains("out of range") || err.to_string().contains("5"),
            "{err}"
        );
    }
}

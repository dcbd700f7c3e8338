//! The executor's paths for indexing ops whose index values the reference's rules resolve
//! first (with its errors): writes `x[basic index] = / += y` (IncSubtensor: the region
//! resolved by `runtime::indexing::basic_region`, the value checked likewise, x copied to
//! a fresh row-major array — or taken over when the call owns it and it is row-major
//! already — and the kernel run on y and a view of the region of that array); gathers
//! `x[advanced index]` (the index's slices applied as a view, masks turned into positions
//! by `runtime::indexing::mask_to_positions`, the output shape by the reference's
//! broadcasting rule, then the gather kernel); and scatters `x[advanced index] = / += y`
//! likewise into the region of a copy of x (or x taken over).

use super::*;
use crate::lower::ArraySource;
use tensorlift_ir::ops::IndexSlot;
use tensorlift_runtime::indexing::{basic_region, eval_subtensor, mask_to_positions};

/// A row-major copy of `x`.
fn row_major_copy(x: &TensorData) -> TensorData {
    tensorlift_ir::with_tensor_data!(x, a => TensorData::from_array(a.as_standard_layout().into_owned()))
}

pub(super) fn run_region_write(
    k: &KernelNode,
    slots: &[IndexSlot],
    args: &mut [TensorData],
) -> Result<Values, RuntimeError> {
    let internal = |m: &str| RuntimeError::Internal(format!("JIT kernel {}: {m}", k.kernel.name));
    let [x, y, indices @ ..] = args else {
        return Err(internal("expects x, the value and the index values"));
    };
    let values: Vec<&TensorData> = indices.iter().collect();
    let region = basic_region(&k.name, slots, &values, x.shape())?;
    let y_static = k.static_shapes.get(1).map_or(&[][..], |s| s.as_slice());
    check_value_shape(&k.name, y.shape(), y_static, &region.shape)?;
    let [value_buf, region_buf] = k.kernel.buffers.as_slice() else {
        return Err(internal("takes the value and the region"));
    };
    let fits = y.dtype() == value_buf.dtype
        && y.ndim() == value_buf.rank
        && x.dtype() == region_buf.dtype
        && region.shape.len() == region_buf.rank;
    if !fits {
        return Err(internal(
            "the value or the region does not match the kernel",
        ));
    }
    let mut out = owned_row_major(k, x);
    let base = unique_mut_ptr(&mut out, true)
        .ok_or_else(|| internal("the output is not an array of its own"))?;
    let elem = out.dtype().size_bytes() as isize;
    let first = base.wrapping_offset(region.offset * elem);
    let mut packed = Vec::new();
    let (y_ptr, y_shape, y_strides) = data_ptr(y);
    push_view(&mut packed, y_ptr, y_shape, y_strides);
    push_view(&mut packed, first, &region.shape, &region.strides);
    // SAFETY: the value's words describe y (its dtype and rank checked above, any
    // strides); the region's words describe elements of `out`, a row-major array of x's
    // shape that this call owns alone (a fresh copy, or x itself when unique: y cannot
    // share its memory), and `basic_region` addresses only elements inside such an array;
    // the kernel checks y's sizes against the region's before writing.
    unsafe { call_with_words(k, packed)? };
    Ok(smallvec::smallvec![out])
}

/// `x[index]` for an advanced index: x's view through the index's slices, the index
/// arrays (a mask's positions from `mask_to_positions`), the output shape, each with the
/// reference's rules and errors; then the gather kernel, which checks every index.
pub(super) fn run_take(
    k: &KernelNode,
    args: &[TensorData],
    pool: &BufferPool,
) -> Result<Values, RuntimeError> {
    let (Some(layout), [x, values @ ..]) = (&k.advanced, args) else {
        return Err(internal(k, "expects x and the index values"));
    };
    check_buffer(k, 0, x)?;
    let view;
    let x = if layout.slice_values.is_empty() {
        x
    } else {
        let bounds: Vec<&TensorData> = layout.slice_values.iter().map(|v| &values[*v]).collect();
        view = eval_subtensor(&k.name, &layout.slices, x, &bounds)?;
        &view
    };
    let arrays = index_arrays(k, layout, x.shape(), values, 1)?;
    let out_shape = advanced_shape(k, layout, x.shape(), &arrays)?;
    check_unvisited(k, layout, x.shape(), &arrays, &out_shape, 1)?;
    let mut out = Output::new(&k.name, x.dtype(), &out_shape, pool)?;
    let mut packed = Vec::new();
    for a in std::iter::once(x).chain(&arrays) {
        let (ptr, shape, strides) = data_ptr(a);
        push_view(&mut packed, ptr, shape, strides);
    }
    push_row_major(&mut packed, out.ptr(), &out_shape);
    // SAFETY: x's words describe x or a view of it (dtype and rank checked above; slices
    // keep the rank), the arrays' theirs (checked by `index_arrays`); the output is fresh
    // memory of `out_shape`; the kernel checks every buffer's sizes against its loops and
    // every index against x's axis before using it.
    unsafe { call_with_words(k, packed)? };
    // SAFETY: the kernel ran to completion and wrote every output element.
    Ok(smallvec::smallvec![unsafe { out.assume_init(&[]) }])
}

/// `x[index] = / += y` for an advanced index: the region of the index's slices in a
/// row-major array of x's shape (`basic_region`), the index arrays, the shape they select
/// and y against it, each with the reference's rules and errors; x copied into a fresh
/// row-major output (or taken over when the call owns it), then the scatter kernel on y,
/// the arrays and the view of the region, checking every index.
pub(super) fn run_scatter(k: &KernelNode, args: &mut [TensorData]) -> Result<Values, RuntimeError> {
    let (Some(layout), [x, y, values @ ..]) = (&k.advanced, args) else {
        return Err(internal(k, "expects x, the value and the index values"));
    };
    let bounds: Vec<&TensorData> = layout.slice_values.iter().map(|v| &values[*v]).collect();
    let region = basic_region(&k.name, &layout.slices, &bounds, x.shape())?;
    let arrays = index_arrays(k, layout, &region.shape, values, 2)?;
    let selected = advanced_shape(k, layout, &region.shape, &arrays)?;
    check_unvisited(k, layout, &region.shape, &arrays, &selected, 2)?;
    let y_static = k.static_shapes.get(1).map_or(&[][..], |s| s.as_slice());
    check_value_shape(&k.name, y.shape(), y_static, &selected)?;
    check_buffer(k, 0, y)?;
    let target = k.kernel.buffers.len() - 1;
    let fits = x.dtype() == k.kernel.buffers[target].dtype
        && region.shape.len() == k.kernel.buffers[target].rank;
    if !fits {
        return Err(internal(k, "x does not match the kernel's target"));
    }
    let mut out = owned_row_major(k, x);
    let base = unique_mut_ptr(&mut out, true)
        .ok_or_else(|| internal(k, "the output is not an array of its own"))?;
    let elem = out.dtype().size_bytes() as isize;
    let first = base.wrapping_offset(region.offset * elem);
    let mut packed = Vec::new();
    for a in std::iter::once(&*y).chain(&arrays) {
        let (ptr, shape, strides) = data_ptr(a);
        push_view(&mut packed, ptr, shape, strides);
    }
    push_view(&mut packed, first, &region.shape, &region.strides);
    // SAFETY: y's and the arrays' words describe them (dtypes and ranks checked above and
    // by `index_arrays`); the target's describe elements of `out`, a row-major array of
    // x's shape this call owns alone (a fresh copy, or x itself when unique: y and the
    // arrays cannot share its memory), and `basic_region` addresses only elements inside
    // such an array; the kernel checks the sizes it walks and every index against the
    // target's axis before writing.
    unsafe { call_with_words(k, packed)? };
    Ok(smallvec::smallvec![out])
}

fn internal(k: &KernelNode, m: &str) -> RuntimeError {
    RuntimeError::Internal(format!("JIT kernel {}: {m}", k.kernel.name))
}

/// Checks that `a` has the dtype and rank of the kernel's buffer `b`.
fn check_buffer(k: &KernelNode, b: usize, a: &TensorData) -> Result<(), RuntimeError> {
    match k.kernel.buffers.get(b) {
        Some(buf) if buf.dtype == a.dtype() && buf.rank == a.ndim() => Ok(()),
        _ => Err(internal(
            k,
            &format!("buffer {b} does not match the kernel"),
        )),
    }
}

/// x as an array this call owns, row-major: x itself when the call owns it and may write
/// over it, else a row-major copy.
fn owned_row_major(k: &KernelNode, x: &mut TensorData) -> TensorData {
    match unique_mut_ptr(x, true) {
        Some(_) if k.in_place => {
            let empty = TensorData::from_array(ArrayD::<f64>::zeros(IxDyn(&[0])));
            std::mem::replace(x, empty)
        }
        _ => row_major_copy(x),
    }
}

/// The kernel's index arrays for index `values` (node inputs from `first_input`) on an x
/// of `x_shape`: integer arrays and scalar indices as given, each boolean mask as the
/// positions of its hits along each of its axes (its shape checked against the axes it
/// covers by the reference's rule); each checked against the kernel's buffer.
fn index_arrays(
    k: &KernelNode,
    layout: &AdvancedLayout,
    x_shape: &[usize],
    values: &[TensorData],
    first_input: usize,
) -> Result<Values, RuntimeError> {
    let mut arrays = Vec::with_capacity(layout.arrays.len());
    for a in &layout.arrays {
        let value = values
            .get(a.value)
            .ok_or_else(|| internal(k, "an index value is missing"))?;
        match a.source {
            ArraySource::Array | ArraySource::Scalar => arrays.push(value.clone()),
            ArraySource::Mask { part: 0 } => arrays.extend(mask_to_positions(
                &k.name,
                value,
                x_shape,
                a.axis,
                first_input + a.value,
            )?),
            ArraySource::Mask { .. } => {}
        }
    }
    let first_buffer = k.kernel.buffers.len() - 1 - layout.arrays.len();
    if arrays.len() != layout.arrays.len() {
        return Err(internal(k, "the index arrays do not match the kernel"));
    }
    for (j, a) in arrays.iter().enumerate() {
        check_buffer(k, first_buffer + j, a)?;
    }
    Ok(Values::from_vec(arrays))
}

/// Checks every index when the selection is empty (`selected` has no element), with the
/// reference's messages: the kernel checks each index where it uses it, and an empty
/// selection uses none, but the reference rejects an out-of-range index all the same.
fn check_unvisited(
    k: &KernelNode,
    layout: &AdvancedLayout,
    x_shape: &[usize],
    arrays: &[TensorData],
    selected: &[usize],
    first_input: usize,
) -> Result<(), RuntimeError> {
    if selected.iter().product::<usize>() > 0 {
        return Ok(());
    }
    for (a, l) in arrays.iter().zip(&layout.arrays) {
        let (axis, size) = (l.axis, x_shape[l.axis] as i64);
        let input = first_input + l.value;
        let positions = a
            .to_i64_vec()
            .ok_or_else(|| internal(k, "an index array is not integer"))?;
        if let Some(v) = positions.iter().find(|v| **v < -size || **v >= size) {
            let message = match l.source {
                ArraySource::Scalar => {
                    format!("index {v} is out of range for axis {axis} of size {size}")
                }
                _ => format!(
                    "index {v} (in index array input {input}) is out of range for axis {axis} of size {size}"
                ),
            };
            return Err(RuntimeError::op(&k.name, message));
        }
    }
    Ok(())
}

/// The shape an advanced index selects in an x of `x_shape` (after its slices): x's walked
/// axes with the index arrays' common shape (the reference's broadcasting rule and
/// error) at the layout's `index_at`.
fn advanced_shape(
    k: &KernelNode,
    layout: &AdvancedLayout,
    x_shape: &[usize],
    arrays: &[TensorData],
) -> Result<Vec<usize>, RuntimeError> {
    let operands: Vec<Operand> = arrays
        .iter()
        .zip(&layout.arrays)
        .map(|(a, l)| Operand {
            label: &l.label,
            static_shape: &l.ty.shape,
            shape: a.shape(),
        })
        .collect();
    let common = broadcast_shape(&k.name, layout.index_ndim(), &operands, None)?;
    let mut shape: Vec<usize> = (0..x_shape.len())
        .filter(|a| layout.axes[*a].is_none())
        .map(|a| x_shape[a])
        .collect();
    let at = layout.index_at.min(shape.len());
    shape.splice(at..at, common);
    Ok(shape)
}

/// Calls `k`'s kernel with the buffers' argument words `packed`, adding scratch memory
/// and an error slot (both live past the call); the kernel's failure as an error.
///
/// # Safety
/// `packed` must hold, for each of the kernel's buffers in order, words describing live
/// memory of its dtype and rank that the kernel may read (and, for outputs, write) at
/// every position its own checks let through.
pub(super) unsafe fn call_with_words(
    k: &KernelNode,
    mut packed: Vec<i64>,
) -> Result<(), RuntimeError> {
    let mut scratch = vec![0f64; k.compiled.scratch_words];
    let mut slot = ErrorSlot::default();
    push_trailer(&mut packed, scratch.as_mut_ptr(), &mut slot);
    // SAFETY: the buffers' words as the caller guarantees; the scratch memory has the
    // kernel's `scratch_words` and, like the error slot, outlives the call.
    let status = unsafe { k.compiled.call(&packed) };
    if status != 0 {
        return Err(kernel_failure(k, status, &slot));
    }
    Ok(())
}

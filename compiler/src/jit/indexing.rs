//! The executor's paths for indexing ops whose index values the reference's rules resolve
//! first (with its errors): writes `x[basic index] = / += y` (IncSubtensor: the region
//! resolved by `runtime::indexing::basic_region`, the value checked likewise, x copied to
//! a fresh row-major array — or taken over when the call owns it and it is row-major
//! already — and the kernel run on y and a view of the region of that array), and
//! gathers `x[mask]` (the mask's positions from `runtime::indexing::mask_to_positions`,
//! then the gather kernel by those positions), and writes `x[mask] = / += y` likewise.

use super::*;
use tensorlift_ir::ops::IndexSlot;
use tensorlift_runtime::indexing::{basic_region, mask_to_positions};

/// A row-major copy of `x`.
fn row_major_copy(x: &TensorData) -> TensorData {
    tensorlift_ir::with_tensor_data!(x, a => TensorData::from_array(a.as_standard_layout().into_owned()))
}

pub(super) fn run_region_write(
    k: &KernelNode,
    slots: &[IndexSlot],
    args: &mut [TensorData],
) -> Result<Vec<TensorData>, RuntimeError> {
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
    let mut out = match unique_mut_ptr(x, true) {
        Some(_) if k.in_place => {
            let empty = TensorData::from_array(ArrayD::<f64>::zeros(IxDyn(&[0])));
            std::mem::replace(x, empty)
        }
        _ => row_major_copy(x),
    };
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
    Ok(vec![out])
}

/// `x[:, …, mask]` (the mask covering x's axes from `axis`): the mask's positions, then
/// the gather kernel compiled for one int64 position vector per mask axis.
pub(super) fn run_masked_take(
    k: &KernelNode,
    axis: usize,
    args: &[TensorData],
    pool: &BufferPool,
) -> Result<Vec<TensorData>, RuntimeError> {
    let [x, mask] = args else {
        return Err(internal(k, "expects x and a mask"));
    };
    let positions = mask_to_positions(&k.name, mask, x.shape(), axis, 1)?;
    let out_shape = masked_shape(x.shape(), axis, &positions);
    run_masked(k, &[x], &positions, out_shape, pool)
}

/// `x[:, …, mask] = y` (or `+= y`): the mask's positions, the value checked against the
/// region they select with the reference's rule, then the scatter kernel by them.
pub(super) fn run_masked_scatter(
    k: &KernelNode,
    axis: usize,
    args: &[TensorData],
    pool: &BufferPool,
) -> Result<Vec<TensorData>, RuntimeError> {
    let [x, y, mask] = args else {
        return Err(internal(k, "expects x, the value and a mask"));
    };
    let positions = mask_to_positions(&k.name, mask, x.shape(), axis, 2)?;
    let region = masked_shape(x.shape(), axis, &positions);
    let y_static = k.static_shapes.get(1).map_or(&[][..], |s| s.as_slice());
    check_value_shape(&k.name, y.shape(), y_static, &region)?;
    run_masked(k, &[x, y], &positions, x.shape().to_vec(), pool)
}

fn internal(k: &KernelNode, m: &str) -> RuntimeError {
    RuntimeError::Internal(format!("JIT kernel {}: {m}", k.kernel.name))
}

/// x's shape with the axes a mask covers (from `axis`) replaced by the hit count.
fn masked_shape(shape: &[usize], axis: usize, positions: &[TensorData]) -> Vec<usize> {
    let count = positions.first().map_or(0, |p| p.len());
    shape[..axis]
        .iter()
        .copied()
        .chain(std::iter::once(count))
        .chain(shape[axis + positions.len()..].iter().copied())
        .collect()
}

/// Runs a gather or scatter kernel on `inputs`, the position vectors and a fresh output of
/// `out_shape` (which the kernel writes whole: a gather's loops cover it, a scatter first
/// copies x into it).
fn run_masked(
    k: &KernelNode,
    inputs: &[&TensorData],
    positions: &[TensorData],
    out_shape: Vec<usize>,
    pool: &BufferPool,
) -> Result<Vec<TensorData>, RuntimeError> {
    let buffers = &k.kernel.buffers;
    let fits = buffers.len() == inputs.len() + positions.len() + 1
        && inputs
            .iter()
            .zip(buffers)
            .all(|(a, b)| a.dtype() == b.dtype && a.ndim() == b.rank);
    if !fits {
        return Err(internal(k, "the mask's call does not match the kernel"));
    }
    let dtype = inputs[0].dtype();
    let mut out = Output::new(dtype, &out_shape, pool)?;
    let mut packed = Vec::new();
    for a in inputs.iter().copied().chain(positions) {
        let (ptr, shape, strides) = data_ptr(a);
        push_view(&mut packed, ptr, shape, strides);
    }
    push_row_major(&mut packed, out.ptr(), &out_shape);
    // SAFETY: the inputs' words describe them (dtypes and ranks checked above); the
    // position vectors are fresh int64 arrays of the kernel's rank 1; the output is fresh
    // memory of `out_shape`; the kernel checks every buffer's sizes against its loops and
    // every position against x's axis before using it.
    unsafe { call_with_words(k, packed)? };
    // SAFETY: the kernel ran to completion and wrote every output element.
    Ok(vec![unsafe { out.assume_init(&[]) }])
}

/// Calls `k`'s kernel with the buffers' argument words `packed`, adding scratch memory
/// and an error slot (both live past the call); the kernel's failure as an error.
///
/// # Safety
/// `packed` must hold, for each of the kernel's buffers in order, words describing live
/// memory of its dtype and rank that the kernel may read (and, for outputs, write) at
/// every position its own checks let through.
unsafe fn call_with_words(k: &KernelNode, mut packed: Vec<i64>) -> Result<(), RuntimeError> {
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

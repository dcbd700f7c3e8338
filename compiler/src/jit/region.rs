//! The executor's path for `x[basic index] = / += y` (IncSubtensor): the region resolved
//! with the reference's rules and errors (`runtime::indexing::basic_region`), the value
//! checked against it likewise, x copied to a fresh row-major array (or taken over when
//! the call owns it and it is row-major already), and the kernel run on y and a view of
//! the region of that array.

use super::*;
use tensorlift_ir::ops::IndexSlot;
use tensorlift_runtime::indexing::basic_region;

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
    push_words(
        &mut packed,
        y_ptr as i64,
        y_shape.iter().map(|v| *v as i64),
        y_strides.iter().map(|v| *v as i64),
        0,
        None,
    );
    push_words(
        &mut packed,
        first as i64,
        region.shape.iter().map(|v| *v as i64),
        region.strides.iter().map(|v| *v as i64),
        0,
        None,
    );
    let mut scratch = vec![0f64; k.compiled.scratch_words];
    let mut slot = ErrorSlot::default();
    push_trailer(&mut packed, scratch.as_mut_ptr(), &mut slot);
    // SAFETY: the value's words describe y (its dtype and rank checked above, any
    // strides); the region's words describe elements of `out`, a row-major array of x's
    // shape that this call owns alone (a fresh copy, or x itself when unique: y cannot
    // share its memory), and `basic_region` addresses only elements inside such an array;
    // the kernel checks y's sizes against the region's before writing; the scratch memory
    // has the kernel's `scratch_words` and lives past the call, as does the error slot.
    let status = unsafe { k.compiled.call(&packed) };
    if status != 0 {
        return Err(kernel_failure(k, status, &slot));
    }
    Ok(vec![out])
}

//! Memory of kernel outputs: fresh outputs left uninitialised (the kernel writes every
//! element) and backed by transparent huge pages when large, and the pool that keeps
//! large intermediates of one call for the next call's outputs (so their pages are not
//! faulted in again).

use super::*;
use ndarray::Dimension;
use tensorlift_runtime::memory::{output_bytes, try_uninit};

/// Memory of large intermediate values, kept for the next call's kernel outputs: fresh
/// large allocations are new pages, and faulting them in costs as much as a pass over
/// the data. Only uniquely owned, contiguous values enter (never a caller's array).
#[derive(Default)]
pub(super) struct BufferPool {
    free: Mutex<Vec<Recycled>>,
}

enum Recycled {
    F64(Vec<f64>),
    F32(Vec<f32>),
}

/// Values smaller than this (in bytes) are left to the allocator.
pub(super) const POOL_MIN_BYTES: usize = 1 << 18;
/// Buffers the pool keeps at most.
const POOL_MAX_BUFFERS: usize = 8;

impl BufferPool {
    pub(super) fn recycle(&self, value: TensorData) {
        fn take<T: Clone>(a: ndarray::ArcArray<T, IxDyn>) -> Option<Vec<T>> {
            if !a.is_unique() || !a.is_standard_layout() {
                return None;
            }
            let (v, offset) = a.try_into_owned_nocopy().ok()?.into_raw_vec_and_offset();
            (offset.unwrap_or(0) == 0).then_some(v)
        }
        if value.len() * 4 < POOL_MIN_BYTES {
            return;
        }
        let item = match value {
            TensorData::Float64(a) => take(a).map(Recycled::F64),
            TensorData::Float32(a) => take(a).map(Recycled::F32),
            _ => None,
        };
        if let Some(item) = item {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            if free.len() < POOL_MAX_BUFFERS {
                free.push(item);
            }
        }
    }

    /// A buffer of exactly `len` elements of `dtype`, if one is free.
    /// How many buffers the pool holds.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.free.lock().map_or(0, |f| f.len())
    }

    /// A kept buffer of exactly `len` elements of `dtype` for the runtime's batched
    /// library calls.
    pub(super) fn take_float(
        &self,
        dtype: DType,
        len: usize,
    ) -> Option<tensorlift_runtime::dense_linalg::FloatVec> {
        use tensorlift_runtime::dense_linalg::FloatVec;
        if len * 4 < POOL_MIN_BYTES {
            return None;
        }
        Some(match self.take(dtype, len)? {
            Recycled::F64(v) => FloatVec::F64(v),
            Recycled::F32(v) => FloatVec::F32(v),
        })
    }

    fn take(&self, dtype: DType, len: usize) -> Option<Recycled> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let at = free.iter().position(|r| match (r, dtype) {
            (Recycled::F64(v), DType::Float64) => v.len() == len,
            (Recycled::F32(v), DType::Float32) => v.len() == len,
            _ => false,
        })?;
        Some(free.swap_remove(at))
    }
}

/// A freshly allocated, not yet written, contiguous kernel output.
pub(super) enum Output {
    F64(ArrayD<MaybeUninit<f64>>),
    F32(ArrayD<MaybeUninit<f32>>),
    Bool(ArrayD<MaybeUninit<bool>>),
    I8(ArrayD<MaybeUninit<i8>>),
    I16(ArrayD<MaybeUninit<i16>>),
    I32(ArrayD<MaybeUninit<i32>>),
    I64(ArrayD<MaybeUninit<i64>>),
    U8(ArrayD<MaybeUninit<u8>>),
    /// Recycled memory (initialised, with stale values the kernel overwrites).
    ReusedF64(ArrayD<f64>),
    ReusedF32(ArrayD<f32>),
    /// The memory of input `index` (uniquely owned), written in place through `ptr`.
    Alias {
        ptr: *const u8,
        index: usize,
    },
}

impl Output {
    /// Memory for output `shape` of `dtype` of node `name`: recycled when the pool has a
    /// buffer of that size, else fresh; an error (not an abort) when it cannot be had.
    pub(super) fn new(
        name: &str,
        dtype: DType,
        shape: &[usize],
        pool: &BufferPool,
    ) -> Result<Output, RuntimeError> {
        let bytes = output_bytes(name, dtype, shape)?;
        let len = bytes / dtype.size_bytes();
        if len * 4 >= POOL_MIN_BYTES {
            let reused = match pool.take(dtype, len) {
                Some(Recycled::F64(v)) => ArrayD::from_shape_vec(IxDyn(shape), v)
                    .ok()
                    .map(Output::ReusedF64),
                Some(Recycled::F32(v)) => ArrayD::from_shape_vec(IxDyn(shape), v)
                    .ok()
                    .map(Output::ReusedF32),
                None => None,
            };
            if let Some(out) = reused {
                return Ok(out);
            }
        }
        Output::fresh(name, dtype, shape)
    }

    /// Fresh memory for output `shape` of `dtype` of node `name` (never the pool's); an
    /// error (not an abort) when it cannot be had.
    pub(super) fn fresh(name: &str, dtype: DType, shape: &[usize]) -> Result<Output, RuntimeError> {
        let dim = &IxDyn(shape);
        fn fresh<T>(
            name: &str,
            dtype: DType,
            dim: &IxDyn,
        ) -> Result<ArrayD<MaybeUninit<T>>, RuntimeError> {
            let memory = try_uninit::<T>(name, dtype, dim.slice())?;
            // SAFETY: `try_uninit` returns exactly the product of the sizes' elements, the
            // length a row-major array of that shape needs.
            Ok(unsafe { ArrayD::from_shape_vec_unchecked(dim.clone(), memory) })
        }
        let mut out = match dtype {
            DType::Float64 => Output::F64(fresh(name, dtype, dim)?),
            DType::Float32 => Output::F32(fresh(name, dtype, dim)?),
            DType::Bool => Output::Bool(fresh(name, dtype, dim)?),
            DType::Int8 => Output::I8(fresh(name, dtype, dim)?),
            DType::Int16 => Output::I16(fresh(name, dtype, dim)?),
            DType::Int32 => Output::I32(fresh(name, dtype, dim)?),
            DType::Int64 => Output::I64(fresh(name, dtype, dim)?),
            DType::UInt8 => Output::U8(fresh(name, dtype, dim)?),
        };
        // The size was checked by the allocation: the product does not overflow.
        advise_huge_pages(
            out.ptr(),
            shape.iter().product::<usize>() * dtype.size_bytes(),
        );
        Ok(out)
    }

    pub(super) fn ptr(&mut self) -> *const u8 {
        match self {
            Output::F64(a) => a.as_mut_ptr() as *const u8,
            Output::F32(a) => a.as_mut_ptr() as *const u8,
            Output::Bool(a) => a.as_mut_ptr() as *const u8,
            Output::I8(a) => a.as_mut_ptr() as *const u8,
            Output::I16(a) => a.as_mut_ptr() as *const u8,
            Output::I32(a) => a.as_mut_ptr() as *const u8,
            Output::I64(a) => a.as_mut_ptr() as *const u8,
            Output::U8(a) => a.as_mut_ptr() as *const u8,
            Output::ReusedF64(a) => a.as_mut_ptr() as *const u8,
            Output::ReusedF32(a) => a.as_mut_ptr() as *const u8,
            Output::Alias { ptr, .. } => *ptr,
        }
    }

    /// The value, once a kernel has written every element (`args` are the call's inputs).
    ///
    /// # Safety
    /// Every element must have been initialised (element-wise kernels store every output
    /// element; reductions `fill` theirs first), with 0/1 bytes for bools.
    pub(super) unsafe fn assume_init(self, args: &[TensorData]) -> TensorData {
        // SAFETY: upheld by the caller as documented.
        unsafe {
            match self {
                Output::Alias { index, .. } => args[index].clone(),
                Output::F64(a) => TensorData::from_array(a.assume_init()),
                Output::F32(a) => TensorData::from_array(a.assume_init()),
                Output::Bool(a) => TensorData::from_array(a.assume_init()),
                Output::I8(a) => TensorData::from_array(a.assume_init()),
                Output::I16(a) => TensorData::from_array(a.assume_init()),
                Output::I32(a) => TensorData::from_array(a.assume_init()),
                Output::I64(a) => TensorData::from_array(a.assume_init()),
                Output::U8(a) => TensorData::from_array(a.assume_init()),
                Output::ReusedF64(a) => TensorData::from_array(a),
                Output::ReusedF32(a) => TensorData::from_array(a),
            }
        }
    }
}

/// Memory of one replayed small output: allocated before its kernel runs, made a value
/// of the recorded shape once the kernel has written it (no array built in between).
pub(super) enum FreshMemory {
    F64(Vec<MaybeUninit<f64>>),
    F32(Vec<MaybeUninit<f32>>),
    Bool(Vec<MaybeUninit<bool>>),
    I8(Vec<MaybeUninit<i8>>),
    I16(Vec<MaybeUninit<i16>>),
    I32(Vec<MaybeUninit<i32>>),
    I64(Vec<MaybeUninit<i64>>),
    U8(Vec<MaybeUninit<u8>>),
}

impl FreshMemory {
    /// Memory for `len` elements of `dtype`. Only for small outputs (a replayed call's,
    /// below the memo limit): allocated as any small Rust value is, without the checked
    /// path large outputs take.
    pub(super) fn small(dtype: DType, len: usize) -> Self {
        fn uninit<T>(len: usize) -> Vec<MaybeUninit<T>> {
            let mut v = Vec::with_capacity(len);
            // SAFETY: the capacity is `len`, and `MaybeUninit<T>` needs no initialisation.
            unsafe { v.set_len(len) };
            v
        }
        match dtype {
            DType::Float64 => FreshMemory::F64(uninit(len)),
            DType::Float32 => FreshMemory::F32(uninit(len)),
            DType::Bool => FreshMemory::Bool(uninit(len)),
            DType::Int8 => FreshMemory::I8(uninit(len)),
            DType::Int16 => FreshMemory::I16(uninit(len)),
            DType::Int32 => FreshMemory::I32(uninit(len)),
            DType::Int64 => FreshMemory::I64(uninit(len)),
            DType::UInt8 => FreshMemory::U8(uninit(len)),
        }
    }

    pub(super) fn ptr(&mut self) -> *mut u8 {
        match self {
            FreshMemory::F64(v) => v.as_mut_ptr() as *mut u8,
            FreshMemory::F32(v) => v.as_mut_ptr() as *mut u8,
            FreshMemory::Bool(v) => v.as_mut_ptr() as *mut u8,
            FreshMemory::I8(v) => v.as_mut_ptr() as *mut u8,
            FreshMemory::I16(v) => v.as_mut_ptr() as *mut u8,
            FreshMemory::I32(v) => v.as_mut_ptr() as *mut u8,
            FreshMemory::I64(v) => v.as_mut_ptr() as *mut u8,
            FreshMemory::U8(v) => v.as_mut_ptr() as *mut u8,
        }
    }

    /// The value of shape `dim`, once a kernel has written every element.
    ///
    /// # Safety
    /// Every element must have been initialised (0/1 bytes for bools), `dim` must be the
    /// shape the memory was allocated for and `strides` its row-major strides.
    pub(super) unsafe fn into_value(self, dim: &IxDyn, strides: &IxDyn) -> TensorData {
        /// # Safety
        /// As `into_value`.
        unsafe fn value<T: tensorlift_ir::Element>(
            v: Vec<MaybeUninit<T>>,
            dim: &IxDyn,
            strides: &IxDyn,
        ) -> TensorData {
            let mut v = std::mem::ManuallyDrop::new(v);
            let (ptr, len, capacity) = (v.as_mut_ptr(), v.len(), v.capacity());
            // SAFETY: `MaybeUninit<T>` has `T`'s layout and every element is initialised
            // (caller); the allocation is handed over whole, never freed twice (the old
            // vector is not dropped); `dim` has `len` elements laid out by `strides`
            // (caller).
            unsafe {
                let v = Vec::from_raw_parts(ptr as *mut T, len, capacity);
                let shape = ndarray::ShapeBuilder::strides(dim.clone(), strides.clone());
                T::wrap(ndarray::ArcArray::from_shape_vec_unchecked(shape, v))
            }
        }
        // SAFETY: upheld by the caller as documented.
        unsafe {
            match self {
                FreshMemory::F64(v) => value(v, dim, strides),
                FreshMemory::F32(v) => value(v, dim, strides),
                FreshMemory::Bool(v) => value(v, dim, strides),
                FreshMemory::I8(v) => value(v, dim, strides),
                FreshMemory::I16(v) => value(v, dim, strides),
                FreshMemory::I32(v) => value(v, dim, strides),
                FreshMemory::I64(v) => value(v, dim, strides),
                FreshMemory::U8(v) => value(v, dim, strides),
            }
        }
    }
}

/// Memory of one output of a prepared call: bare when small (`FreshMemory`), else through
/// the pool and its huge pages (`Output`).
pub(super) enum CallOutput {
    Small(FreshMemory),
    /// Boxed: an array's bookkeeping would make every small output as large to move.
    Large(Box<Output>),
}

impl CallOutput {
    /// Memory for output `dim` of `dtype` of node `name`, whose size was checked when the
    /// call was prepared.
    pub(super) fn new(
        name: &str,
        dtype: DType,
        dim: &IxDyn,
        pool: &BufferPool,
    ) -> Result<CallOutput, RuntimeError> {
        let len = dim.size();
        if len.saturating_mul(dtype.size_bytes()) < POOL_MIN_BYTES {
            return Ok(CallOutput::Small(FreshMemory::small(dtype, len)));
        }
        Output::new(name, dtype, dim.slice(), pool).map(|o| CallOutput::Large(Box::new(o)))
    }

    pub(super) fn ptr(&mut self) -> *mut u8 {
        match self {
            CallOutput::Small(m) => m.ptr(),
            CallOutput::Large(o) => o.ptr().cast_mut(),
        }
    }

    /// The value, once a kernel has written every element.
    ///
    /// # Safety
    /// As `FreshMemory::into_value`: every element written, `dim` the shape the memory
    /// was allocated for and `strides` its row-major strides.
    pub(super) unsafe fn into_value(self, dim: &IxDyn, strides: &IxDyn) -> TensorData {
        // SAFETY: upheld by the caller as documented; a large output is never an alias.
        unsafe {
            match self {
                CallOutput::Small(m) => m.into_value(dim, strides),
                CallOutput::Large(o) => (*o).assume_init(&[]),
            }
        }
    }
}

/// Outputs at least this large (bytes) are backed by transparent huge pages where the
/// system allows it: a fresh 80 MB output otherwise costs 20 000 page faults.
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// Asks the kernel to back `[ptr, ptr + bytes)` with transparent huge pages (as NumPy does
/// for large arrays). Advice only: contents and validity of the memory do not change.
fn advise_huge_pages(ptr: *const u8, bytes: usize) {
    #[cfg(target_os = "linux")]
    if bytes >= HUGE_PAGE_MIN_BYTES {
        const PAGE: usize = 4096;
        let start = (ptr as usize).div_ceil(PAGE) * PAGE;
        let end = (ptr as usize + bytes) / PAGE * PAGE;
        if end > start {
            // SAFETY: the range lies inside one live allocation of `bytes` bytes owned by
            // the caller, page-aligned inward; MADV_HUGEPAGE is advisory and changes neither
            // the contents nor the mapping's validity. The result is ignored (advice).
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, bytes);
}

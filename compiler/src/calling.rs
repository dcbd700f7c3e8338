//! The kernel calling convention, in one place for everything that calls jitted code
//! (the JIT's executor, `KernelCall`) and for code generation, which reads the words in
//! this order. A kernel is `extern "C" fn(args: *const i64) -> i32`; `args` holds, for each
//! buffer in the kernel's order, its data pointer, its `rank` sizes and its `rank` strides
//! (in elements), then a pointer to the kernel's scratch memory and a pointer to an
//! `ErrorSlot`. The status is 0, or `e + 1` for the kernel's error `e` (its values in the
//! slot). Local buffers (`Role::Local`) come last among the buffers; whoever calls a
//! kernel from Rust allocates them (`LocalBuffers`), zeroed, once per call.

use tensorlift_runtime::buffer_support::ErrorSlot;
use tensorlift_runtime::RuntimeError;

use crate::loopir::{Extent, Kernel};

/// The argument words of one buffer of `rank` dimensions.
pub fn buffer_words(rank: usize) -> usize {
    1 + 2 * rank
}

/// The argument words of a call of `kernel`: its buffers, then scratch and error slot.
pub fn call_words(kernel: &Kernel) -> usize {
    kernel
        .buffers
        .iter()
        .map(|b| buffer_words(b.rank))
        .sum::<usize>()
        + TRAILER_WORDS
}

/// Words after the buffers: the scratch pointer, then the error slot pointer.
pub const TRAILER_WORDS: usize = 2;

/// Row-major strides (in elements) of a freshly allocated output of `shape`.
pub fn standard_strides(shape: &[usize]) -> impl Iterator<Item = i64> + '_ {
    (0..shape.len()).map(move |d| shape[d + 1..].iter().product::<usize>() as i64)
}

/// Appends one buffer's argument words (the `codegen` ABI): data pointer, sizes,
/// strides; with `cut = Some((d, lo, hi))` only elements `lo..hi` of its dimension d.
pub fn push_words(
    packed: &mut Vec<i64>,
    ptr: i64,
    shape: impl Iterator<Item = i64>,
    strides: impl Iterator<Item = i64>,
    elem: i64,
    cut: Option<(usize, usize, usize)>,
) {
    let at = packed.len();
    packed.push(ptr);
    packed.extend(shape.enumerate().map(|(k, size)| match cut {
        Some((d, lo, hi)) if k == d => (hi - lo) as i64,
        _ => size,
    }));
    let first_stride = packed.len();
    packed.extend(strides);
    if let Some((d, lo, _)) = cut {
        packed[at] += lo as i64 * packed[first_stride + d] * elem;
    }
}

/// Appends the argument words of a whole buffer at `ptr` with `shape` and `strides` (in
/// elements).
pub fn push_view(packed: &mut Vec<i64>, ptr: *const u8, shape: &[usize], strides: &[isize]) {
    let sizes = shape.iter().map(|v| *v as i64);
    push_words(
        packed,
        ptr as i64,
        sizes,
        strides.iter().map(|v| *v as i64),
        0,
        None,
    );
}

/// Appends the argument words of a fresh row-major buffer at `ptr` of `shape`.
pub fn push_row_major(packed: &mut Vec<i64>, ptr: *const u8, shape: &[usize]) {
    let sizes = shape.iter().map(|v| *v as i64);
    push_words(packed, ptr as i64, sizes, standard_strides(shape), 0, None);
}

/// Appends the scratch and error slot pointers that end a call's argument words.
pub fn push_trailer(packed: &mut Vec<i64>, scratch: *mut f64, slot: *mut ErrorSlot) {
    packed.push(scratch as i64);
    packed.push(slot as i64);
}

/// The zeroed memory of a kernel's local buffers for one call, in buffer order: one
/// allocation for all of them.
pub struct LocalBuffers {
    /// 8-byte words, so every dtype is aligned.
    memory: Vec<u64>,
    /// Per local buffer: where it starts in `memory` (in words) and its shape.
    buffers: smallvec::SmallVec<[(usize, smallvec::SmallVec<[usize; 4]>); 4]>,
}

impl LocalBuffers {
    /// The locals of `kernel`, their extents read from `input_shape(buf)` (the shape of
    /// input buffer `buf`); sizes the memory limit or the allocator refuse are errors
    /// naming the kernel.
    pub fn new<'s>(
        kernel: &Kernel,
        input_shape: impl Fn(usize) -> Option<&'s [usize]>,
    ) -> Result<LocalBuffers, RuntimeError> {
        let mut locals = LocalBuffers {
            memory: Vec::new(),
            buffers: smallvec::SmallVec::new(),
        };
        locals.refill(kernel, input_shape)?;
        Ok(locals)
    }

    /// Makes these the locals of another call of `kernel` (as `new` does), zeroed again,
    /// in the memory they hold when it is large enough.
    pub fn refill<'s>(
        &mut self,
        kernel: &Kernel,
        input_shape: impl Fn(usize) -> Option<&'s [usize]>,
    ) -> Result<(), RuntimeError> {
        let buffers = &mut self.buffers;
        buffers.clear();
        let mut words = 0usize;
        for (k, extents) in kernel.locals() {
            let shape = extents
                .iter()
                .map(|e| match e {
                    Extent::Fixed(n) => Some(*n),
                    Extent::Of { buf, dim } => input_shape(*buf).and_then(|s| s.get(*dim)).copied(),
                })
                .collect::<Option<smallvec::SmallVec<[usize; 4]>>>()
                .ok_or_else(|| {
                    RuntimeError::Internal(format!(
                        "{}: the extents of {} name a missing input dimension",
                        kernel.name,
                        kernel.label(k)
                    ))
                })?;
            let dtype = kernel.buffers[k].dtype;
            let bytes = tensorlift_runtime::memory::output_bytes(&kernel.name, dtype, &shape)?;
            buffers.push((words, shape));
            words = words.checked_add(bytes.div_ceil(8)).ok_or_else(|| {
                RuntimeError::op(&kernel.name, "its working memory overflows".to_string())
            })?;
        }
        let memory = &mut self.memory;
        memory.clear();
        memory.try_reserve_exact(words).map_err(|_| {
            RuntimeError::op(
                &kernel.name,
                format!(
                    "the allocator refused {} bytes for its working memory",
                    words.saturating_mul(8)
                ),
            )
        })?;
        memory.resize(words, 0);
        Ok(())
    }

    /// Zeroes the locals again for another call of the same extents.
    pub fn zero(&mut self) {
        if !self.memory.is_empty() {
            self.memory.fill(0);
        }
    }

    /// Appends the argument words of every local buffer (row-major).
    pub fn push_words(&mut self, packed: &mut Vec<i64>) {
        let base = self.memory.as_mut_ptr();
        for (at, shape) in &self.buffers {
            // A buffer of zero bytes at the end points one past the memory (never read).
            let ptr = base.wrapping_add(*at);
            push_row_major(packed, ptr.cast::<u8>().cast_const(), shape);
        }
    }
}

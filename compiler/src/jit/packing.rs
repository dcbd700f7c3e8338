//! The executor's argument words (in the calling convention of `crate::calling`): buffers
//! cut to a range of one dimension for split calls, and the per-thread argument and
//! scratch memory of single calls.

use super::*;

/// One buffer argument of a kernel call, and which iteration dimension walks which of
/// its dimensions (for splitting the call across threads).
pub(super) struct BufArg {
    pub(super) ptr: i64,
    pub(super) shape: Vec<i64>,
    pub(super) strides: Vec<i64>,
    pub(super) elem: i64,
    /// `walk[d]`: the buffer dimension iteration dimension d walks, if any.
    pub(super) walk: Vec<Option<usize>>,
}

/// The packed arguments for iterations `lo..hi` of dimension `dim` (all of them if `None`).
pub(super) fn pack(
    bufs: &[BufArg],
    range: Option<(usize, usize, usize)>,
    scratch: *mut f64,
    slot: *mut ErrorSlot,
) -> Vec<i64> {
    let mut packed = Vec::with_capacity(bufs.len() * 8);
    for b in bufs {
        let cut = range.and_then(|(dim, lo, hi)| b.walk[dim].map(|bd| (bd, lo, hi)));
        let (shape, strides) = (b.shape.iter().copied(), b.strides.iter().copied());
        push_words(&mut packed, b.ptr, shape, strides, b.elem, cut);
    }
    push_trailer(&mut packed, scratch, slot);
    packed
}

/// Argument words and scratch memory of single-thread calls, kept per thread between
/// calls (a fresh zeroed scratch area cost a memset of kilobytes per call). Kernels write
/// their scratch memory before they read it.
pub(super) struct CallMemory {
    pub(super) packed: Vec<i64>,
    pub(super) scratch: Vec<f64>,
}

thread_local! {
    static CALL_MEMORY: std::cell::RefCell<CallMemory> = const {
        std::cell::RefCell::new(CallMemory {
            packed: Vec::new(),
            scratch: Vec::new(),
        })
    };
}

/// Runs `f` with an empty argument word buffer and `scratch_words` of scratch memory:
/// this thread's (or fresh ones when a call on this thread already holds them).
pub(super) fn with_call_memory<T>(
    scratch_words: usize,
    f: impl FnOnce(&mut Vec<i64>, *mut f64) -> Result<T, RuntimeError>,
) -> Result<T, RuntimeError> {
    let mut f = Some(f);
    let reused = CALL_MEMORY.with(|cell| {
        let mut memory = cell.try_borrow_mut().ok()?;
        let CallMemory { packed, scratch } = &mut *memory;
        if scratch.len() < scratch_words {
            scratch.resize(scratch_words, 0.0);
        }
        packed.clear();
        let f = f.take()?;
        Some(f(packed, scratch.as_mut_ptr()))
    });
    match (reused, f) {
        (Some(result), _) => result,
        (None, Some(f)) => {
            let mut scratch = vec![0f64; scratch_words];
            f(&mut Vec::new(), scratch.as_mut_ptr())
        }
        (None, None) => Err(RuntimeError::Internal("call memory was lost".into())),
    }
}

//! Output allocation that fails with an error instead of aborting the process.
//!
//! Owns: the byte count of an output computed with checked arithmetic, the process-wide
//! output limit (`set_output_limit`, initially `TL_MAX_OUTPUT_BYTES` or no limit beyond
//! what an allocation can be), and fallible allocation of output memory. Every backend
//! asks here before it allocates an output whose size comes from user values (Alloc,
//! Arange, broadcasts, products, gathers, kernel outputs), so an impossible or refused
//! size is a `RuntimeError` naming the node, its shape and the bytes asked for.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use tensorlift_ir::DType;

use crate::error::{Result, RuntimeError};

/// The largest allocation Rust allows (`isize::MAX` bytes).
const ADDRESSABLE: usize = isize::MAX as usize;

/// 0 until set by `set_output_limit`; then the limit in bytes.
static LIMIT_SET: AtomicUsize = AtomicUsize::new(0);
static LIMIT_FROM_ENV: OnceLock<usize> = OnceLock::new();

/// Outputs at least this large are first reserved and released again to learn whether
/// the allocator would refuse them (allocating an output in ndarray aborts on refusal).
const PROBE_MIN_BYTES: usize = 1 << 30;

/// The largest output, in bytes, that any backend will allocate.
pub fn output_limit() -> usize {
    match LIMIT_SET.load(Ordering::Relaxed) {
        0 => *LIMIT_FROM_ENV.get_or_init(|| {
            std::env::var("TL_MAX_OUTPUT_BYTES")
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .map_or(ADDRESSABLE, |v| v.clamp(1, ADDRESSABLE))
        }),
        n => n,
    }
}

/// Sets the largest output, in bytes, that any backend of this process allocates (`None`:
/// as large as the allocator gives). Larger outputs are an error of the node computing
/// them; a function stays usable after such an error.
pub fn set_output_limit(bytes: Option<usize>) {
    let v = bytes.map_or(ADDRESSABLE, |b| b.clamp(1, ADDRESSABLE));
    LIMIT_SET.store(v, Ordering::Relaxed);
}

/// The bytes an output of `dtype` and `shape` needs, if its size can be allocated at all
/// and is within the limit; otherwise the error of `node`.
pub fn output_bytes(node: &str, dtype: DType, shape: &[usize]) -> Result<usize> {
    let bytes = if shape.contains(&0) {
        Some(0)
    } else {
        shape
            .iter()
            .try_fold(dtype.size_bytes(), |acc, d| acc.checked_mul(*d))
    };
    let fail = |why: String| {
        Err(RuntimeError::op(
            node,
            format!("cannot allocate an output of shape {shape:?} and dtype {dtype}: {why}"),
        ))
    };
    let limit = output_limit();
    match bytes {
        None => fail("its size overflows 2^64 bytes".into()),
        Some(b) if b > limit => fail(format!("{b} bytes, over the limit of {limit} bytes")),
        Some(b) => Ok(b),
    }
}

/// Checks that an output of `dtype` and `shape` can be allocated: within the limit, and
/// (when large) granted by the allocator right now. Callers allocate it afterwards.
pub fn check_output(node: &str, dtype: DType, shape: &[usize]) -> Result<()> {
    let bytes = output_bytes(node, dtype, shape)?;
    if bytes >= PROBE_MIN_BYTES {
        let mut probe: Vec<u8> = Vec::new();
        if probe.try_reserve_exact(bytes).is_err() {
            return Err(refused(node, dtype, shape, bytes));
        }
    }
    Ok(())
}

fn refused(node: &str, dtype: DType, shape: &[usize], bytes: usize) -> RuntimeError {
    RuntimeError::op(
        node,
        format!(
            "cannot allocate an output of shape {shape:?} and dtype {dtype}: the allocator \
             refused {bytes} bytes"
        ),
    )
}

/// Uninitialised memory for an output of `T` (`dtype`) and `shape`, or the error of `node`.
pub fn try_uninit<T>(node: &str, dtype: DType, shape: &[usize]) -> Result<Vec<MaybeUninit<T>>> {
    let bytes = output_bytes(node, dtype, shape)?;
    let len: usize = shape.iter().product();
    let mut v: Vec<MaybeUninit<T>> = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| refused(node, dtype, shape, bytes))?;
    // SAFETY: the capacity is at least `len`, and `MaybeUninit<T>` needs no initialisation.
    unsafe { v.set_len(len) };
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_that_overflow_or_exceed_memory_are_errors() {
        let e = output_bytes("Alloc", DType::Float64, &[1 << 40, 1 << 40]).unwrap_err();
        assert!(e.to_string().contains("overflows"), "{e}");
        let e = check_output("Alloc", DType::Float64, &[1 << 20, 1 << 20]).unwrap_err();
        assert!(e.to_string().contains("bytes"), "{e}");
        assert_eq!(
            output_bytes("Alloc", DType::Int32, &[3, 0, 1 << 62]).unwrap(),
            0
        );
        assert_eq!(
            try_uninit::<f64>("Alloc", DType::Float64, &[4, 5])
                .unwrap()
                .len(),
            20
        );
    }
}

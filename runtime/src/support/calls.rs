//! Support functions that jitted code calls (DESIGN §11): `extern "C"` entry points with a
//! stable ABI, registered by name with the JIT.
//!
//! Owns: the scalar math jitted kernels do not emit as instructions, each calling exactly
//! the function the reference interpreter uses for the same `ScalarOp` (one list for both:
//! `elemwise::float_library!`), so a jitted kernel and the reference agree bit for bit; and the
//! array versions jitted strips call: `vector_math`'s polynomials for exp, exp2, expm1,
//! log, log2, log1p, sin, cos, tanh, sigmoid and softplus (as the JIT's inline IR computes
//! them, within a few ulp of the reference). None of them can panic (no unwinding may
//! cross a jitted frame). Also the one-pass logsumexp's begin/add/value over a state in
//! the kernel's scratch memory, and the whole-row reductions (`row_reduce`) over rows a
//! kernel hands over.

use tensorlift_ir::ScalarOp;

use crate::logsumexp::{log_add_exp, LogSumExpState};
use crate::row_reduce::{self, ROW_LEVEL};

macro_rules! support_fns {
    (unary { $($u:ident $us:ident $uf:path;)* } binary { $($b:ident $bs:ident $bf:path;)* }) => {
        $(
            #[doc = concat!("`", stringify!($uf), "` for jitted code.")]
            pub extern "C" fn $us(x: f64) -> f64 {
                $uf(x)
            }
        )*
        $(
            #[doc = concat!("`", stringify!($bf), "` for jitted code.")]
            pub extern "C" fn $bs(x: f64, y: f64) -> f64 {
                $bf(x, y)
            }
        )*

        /// The support function computing the float `op`, if jitted code calls one for
        /// it: the interpreter's own function for it (`elemwise::float_library!`).
        pub fn float_support(op: ScalarOp) -> Option<SupportFn> {
            match op {
                $(ScalarOp::$u => Some(SupportFn {
                    symbol: stringify!($us),
                    address: $us as *const u8,
                    arity: 1,
                }),)*
                $(ScalarOp::$b => Some(SupportFn {
                    symbol: stringify!($bs),
                    address: $bs as *const u8,
                    arity: 2,
                }),)*
                _ => None,
            }
        }
    };
}
crate::reference::elemwise::float_library!(support_fns);

macro_rules! array_support {
    ($($name:ident = $f:expr;)*) => {
        $(
            #[doc = concat!("`", stringify!($f), "` over `n` contiguous f64s, for jitted code.")]
            ///
            /// # Safety
            /// `src` and `dst` must be valid for `n` reads and writes of f64 (they may be
            /// the same buffer), `n` ≥ 0.
            pub unsafe extern "C" fn $name(src: *const f64, dst: *mut f64, n: i64) {
                let n = n.max(0) as usize;
                if n == 0 || src.is_null() || dst.is_null() {
                    return;
                }
                if !std::ptr::eq(src, dst) {
                    // SAFETY: the caller passes distinct buffers valid for `n` elements.
                    let (src, dst) = unsafe {
                        (std::slice::from_raw_parts(src, n), std::slice::from_raw_parts_mut(dst, n))
                    };
                    $f(src, dst);
                    return;
                }
                // In place: through a copy on the stack, a chunk at a time (no allocation,
                // which could abort, and no `&` and `&mut` to the same memory).
                let mut copy = [0f64; 256];
                for start in (0..n).step_by(copy.len()) {
                    let len = copy.len().min(n - start);
                    // SAFETY: `start + len <= n` elements of the caller's buffer.
                    let chunk = unsafe { std::slice::from_raw_parts_mut(dst.add(start), len) };
                    copy[..len].copy_from_slice(chunk);
                    $f(&copy[..len], chunk);
                }
            }
        )*
    };
}

array_support! {
    tl_exp_array = crate::vector_math::exp_array;
    tl_sin_array = crate::vector_math::sin_array;
    tl_cos_array = crate::vector_math::cos_array;
    tl_log_array = crate::vector_math::log_array;
    tl_sigmoid_array = crate::vector_math::sigmoid_array;
    tl_log1p_array = crate::vector_math::log1p_array;
    tl_softplus_array = crate::vector_math::softplus_array;
    tl_log2_array = crate::vector_math::log2_array;
    tl_expm1_array = crate::vector_math::expm1_array;
    tl_exp2_array = crate::vector_math::exp2_array;
    tl_tanh_array = crate::vector_math::tanh_array;
}

/// The array support function (`src`, `dst`, `n`) for the float `op`, if there is one.
/// `n` contiguous f64s at `src` rounded to float32 precision into `dst` (kept as f64),
/// for jitted code: the float32 results of array functions, rounded in the strip.
///
/// # Safety
/// `src` and `dst` must be valid for `n` reads and writes of f64; they are either the
/// same buffer or do not overlap.
pub unsafe extern "C" fn tl_round_f32_array(src: *const f64, dst: *mut f64, n: i64) {
    if n <= 0 || src.is_null() || dst.is_null() {
        return;
    }
    let n = n as usize;
    // SAFETY: as the caller guarantees; when the buffers differ, `dst` is first made a
    // copy of `src` (no `&` and `&mut` to the same memory at once).
    let xs = unsafe {
        if !std::ptr::eq(src, dst) {
            std::ptr::copy_nonoverlapping(src, dst, n);
        }
        std::slice::from_raw_parts_mut(dst, n)
    };
    crate::vector_math::round_f32_in_place(xs);
}

pub fn float_array_support(op: ScalarOp) -> Option<(&'static str, *const u8)> {
    type ArrayFn = unsafe extern "C" fn(*const f64, *mut f64, i64);
    let f = |symbol, f: ArrayFn| Some((symbol, f as *const u8));
    match op {
        ScalarOp::Exp => f("tl_exp_array", tl_exp_array),
        ScalarOp::Sin => f("tl_sin_array", tl_sin_array),
        ScalarOp::Cos => f("tl_cos_array", tl_cos_array),
        ScalarOp::Log => f("tl_log_array", tl_log_array),
        ScalarOp::Log2 => f("tl_log2_array", tl_log2_array),
        ScalarOp::Log1p => f("tl_log1p_array", tl_log1p_array),
        ScalarOp::Expm1 => f("tl_expm1_array", tl_expm1_array),
        ScalarOp::Exp2 => f("tl_exp2_array", tl_exp2_array),
        ScalarOp::Tanh => f("tl_tanh_array", tl_tanh_array),
        ScalarOp::Sigmoid => f("tl_sigmoid_array", tl_sigmoid_array),
        ScalarOp::Softplus => f("tl_softplus_array", tl_softplus_array),
        _ => None,
    }
}

/// Starts a logsumexp at `state` (scratch memory of a jitted kernel).
///
/// # Safety
/// `state` must be valid for writing a `LogSumExpState`.
pub unsafe extern "C" fn tl_lse_begin(state: *mut LogSumExpState) {
    // SAFETY: the caller passes a valid, exclusive state.
    unsafe { state.write(LogSumExpState::EMPTY) };
}

/// Adds `n` contiguous f64s to the logsumexp at `state`.
///
/// # Safety
/// `src` must be valid for `n` reads of f64 (`n` ≥ 0) and `state` must point to a state
/// begun by `tl_lse_begin`, not overlapping `src`.
pub unsafe extern "C" fn tl_lse_add(src: *const f64, n: i64, state: *mut LogSumExpState) {
    // SAFETY: as the caller guarantees.
    unsafe {
        let xs = std::slice::from_raw_parts(src, n.max(0) as usize);
        (*state).add(xs);
    }
}

/// Adds the `n` float32 values at `src` to the logsumexp at `state` (each widened
/// exactly).
///
/// # Safety
/// `src` must be valid for `n` reads of f32 (`n` ≥ 0) and `state` must point to a state
/// begun by `tl_lse_begin`, not overlapping `src`.
pub unsafe extern "C" fn tl_lse_add_f32(src: *const f32, n: i64, state: *mut LogSumExpState) {
    if n <= 0 || src.is_null() {
        return;
    }
    // SAFETY: as the caller guarantees.
    unsafe {
        let xs = std::slice::from_raw_parts(src, n as usize);
        (*state).add_f32(xs);
    }
}

/// The value of the logsumexp at `state`.
///
/// # Safety
/// `state` must point to a state begun by `tl_lse_begin`.
pub unsafe extern "C" fn tl_lse_value(state: *const LogSumExpState) -> f64 {
    // SAFETY: as the caller guarantees.
    unsafe { (*state).value() }
}

/// `log_add_exp` for jitted code (a logsumexp folded into its output element).
pub extern "C" fn tl_log_add_exp(a: f64, b: f64) -> f64 {
    log_add_exp(a, b)
}

/// `extern "C" fn $name(row, n) -> f64`: `$reduce` of the `n` values of type `$t` at
/// `row` (a contiguous row a jitted reduction hands over whole), `$identity` when there
/// are none.
macro_rules! row_reduction {
    ($name:ident, $t:ty, $reduce:path, $identity:expr) => {
        #[doc = concat!("`", stringify!($reduce), "` of a row (see `row_reduce`).")]
        ///
        /// # Safety
        /// `row` must be valid for `n` reads.
        pub unsafe extern "C" fn $name(row: *const $t, n: i64) -> f64 {
            if n <= 0 || row.is_null() {
                return $identity;
            }
            // SAFETY: as the caller guarantees (non-null, `n` > 0 elements).
            let xs = unsafe { std::slice::from_raw_parts(row, n as usize) };
            $reduce(ROW_LEVEL, xs)
        }
    };
}

row_reduction!(tl_row_sum, f64, row_reduce::sum_at, 0.0);
row_reduction!(tl_row_prod, f64, row_reduce::prod_at, 1.0);
row_reduction!(tl_row_max, f64, row_reduce::max_at, f64::NEG_INFINITY);
row_reduction!(tl_row_min, f64, row_reduce::min_at, f64::INFINITY);
row_reduction!(tl_row_sum_f32, f32, row_reduce::sum_f32_at, 0.0);
row_reduction!(tl_row_prod_f32, f32, row_reduce::prod_f32_at, 1.0);
row_reduction!(
    tl_row_max_f32,
    f32,
    row_reduce::max_f32_at,
    f64::NEG_INFINITY
);
row_reduction!(tl_row_min_f32, f32, row_reduce::min_f32_at, f64::INFINITY);

/// `extern "C" fn $name(a, b, n) -> f64`: the dot product of the `n` values of type `$t`
/// at `a` and at `b` (contiguous rows a jitted sum of products hands over whole), 0 when
/// there are none.
macro_rules! row_dot {
    ($name:ident, $t:ty, $reduce:path) => {
        #[doc = concat!("`", stringify!($reduce), "` of two rows (see `row_reduce`).")]
        ///
        /// # Safety
        /// `a` and `b` must each be valid for `n` reads.
        pub unsafe extern "C" fn $name(a: *const $t, b: *const $t, n: i64) -> f64 {
            if n <= 0 || a.is_null() || b.is_null() {
                return 0.0;
            }
            // SAFETY: as the caller guarantees (non-null, `n` > 0 elements each).
            let (xs, ys) = unsafe {
                (
                    std::slice::from_raw_parts(a, n as usize),
                    std::slice::from_raw_parts(b, n as usize),
                )
            };
            $reduce(ROW_LEVEL, xs, ys)
        }
    };
}

row_dot!(tl_row_dot, f64, row_reduce::dot_at);

/// `extern "C" fn $name(out, row, n)`: `$accumulate` of the `n` float64 values at `row`
/// into the `n` at `out`, element by element (a reduction over an outer axis, one
/// contiguous row at a time).
macro_rules! row_accumulation {
    ($name:ident, $accumulate:path) => {
        #[doc = concat!("`", stringify!($accumulate), "` of a row into another (see `row_reduce`).")]
        ///
        /// # Safety
        /// `out` must be valid for `n` reads and writes of f64 and `row` for `n` reads, not
        /// overlapping `out`.
        pub unsafe extern "C" fn $name(out: *mut f64, row: *const f64, n: i64) {
            if n <= 0 || out.is_null() || row.is_null() {
                return;
            }
            // SAFETY: as the caller guarantees (non-null, `n` > 0 elements each, no
            // overlap).
            let (out, row) = unsafe {
                (
                    std::slice::from_raw_parts_mut(out, n as usize),
                    std::slice::from_raw_parts(row, n as usize),
                )
            };
            $accumulate(ROW_LEVEL, out, row)
        }
    };
}

row_accumulation!(tl_add_into, row_reduce::add_into_at);
row_accumulation!(tl_mul_into, row_reduce::mul_into_at);
row_accumulation!(tl_max_into, row_reduce::max_into_at);
row_accumulation!(tl_min_into, row_reduce::min_into_at);
row_dot!(tl_row_dot_f32, f32, row_reduce::dot_f32_at);

/// Integer power by squaring in wrapping int64, for jitted code (which checks first that
/// the exponent is not negative; a negative one gives 1 here).
pub extern "C" fn tl_int_pow(base: i64, exponent: i64) -> i64 {
    crate::elemwise::int_pow(base, exponent)
}

/// The support function (symbol, address) computing the integer `op`, if jitted code
/// calls one for it; it takes and returns i64.
pub fn int_support(op: ScalarOp) -> Option<(&'static str, *const u8)> {
    let f = |symbol, f: extern "C" fn(i64, i64) -> i64| Some((symbol, f as *const u8));
    match op {
        ScalarOp::Pow => f("tl_int_pow", tl_int_pow),
        _ => None,
    }
}

/// A support function: its symbol, address and arity.
#[derive(Clone, Copy, Debug)]
pub struct SupportFn {
    pub symbol: &'static str,
    pub address: *const u8,
    pub arity: usize,
}

//! Buffer-level support functions that jitted kernels call (DESIGN §11), and the error
//! slot through which a kernel reports a failure.
//!
//! Owns: the layout of a buffer in a kernel's argument words as support functions read it
//! (data pointer, then `rank` sizes, then `rank` strides in elements), the `ErrorSlot`
//! (the values a failing kernel reports; its status code says which error), and the gemm
//! entry points (`tl_dot_f64`, `tl_dot_f32`: NumPy `dot` of 1-d/2-d operands through the
//! `matrixmultiply` crate, any strides). Every entry point checks the shapes it is given
//! before touching memory and returns a non-zero status instead of panicking (no unwinding
//! may cross a jitted frame).

use std::panic::{catch_unwind, AssertUnwindSafe};

/// How many values a failing kernel reports.
pub const ERROR_VALUES: usize = 4;

/// Where a failing kernel writes the values its error message refers to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorSlot {
    pub values: [i64; ERROR_VALUES],
}

/// A 1-d or 2-d buffer seen as a matrix: sizes and strides (elements) of its rows and
/// columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Matrix {
    ptr: i64,
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
}

/// Reads a buffer's argument words. A 1-d buffer is a row (`as_row`) or a column.
///
/// # Safety
/// `words` must point to `1 + 2 * rank` readable i64 words.
unsafe fn matrix(words: *const i64, rank: i64, as_row: bool) -> Option<Matrix> {
    let word = |k: usize| {
        // SAFETY: k < 1 + 2 * rank, which the caller guarantees readable.
        unsafe { *words.add(k) }
    };
    let size = |k: usize| usize::try_from(word(k)).ok();
    match rank {
        0 => Some(Matrix {
            ptr: word(0),
            rows: 1,
            cols: 1,
            row_stride: 0,
            col_stride: 0,
        }),
        1 if as_row => Some(Matrix {
            ptr: word(0),
            rows: 1,
            cols: size(1)?,
            row_stride: 0,
            col_stride: word(2) as isize,
        }),
        1 => Some(Matrix {
            ptr: word(0),
            rows: size(1)?,
            cols: 1,
            row_stride: word(2) as isize,
            col_stride: 0,
        }),
        2 => Some(Matrix {
            ptr: word(0),
            rows: size(1)?,
            cols: size(2)?,
            row_stride: word(3) as isize,
            col_stride: word(4) as isize,
        }),
        _ => None,
    }
}

/// The operands of `out = a · b` as matrices, after checking that their shapes agree.
///
/// # Safety
/// Each pointer must point to `1 + 2 * rank` readable words of its rank.
unsafe fn dot_operands(
    a: *const i64,
    a_rank: i64,
    b: *const i64,
    b_rank: i64,
    out: *const i64,
    out_rank: i64,
) -> Option<(Matrix, Matrix, Matrix)> {
    // SAFETY: forwarded from the caller.
    let (ma, mb) = unsafe { (matrix(a, a_rank, true)?, matrix(b, b_rank, false)?) };
    // A 1-d result is a row when `a` is 1-d (a vector times a matrix), else a column.
    // SAFETY: forwarded from the caller.
    let mo = unsafe { matrix(out, out_rank, a_rank == 1)? };
    let ranks_ok = out_rank == (a_rank == 2) as i64 + (b_rank == 2) as i64;
    let shapes_ok = ma.cols == mb.rows && mo.rows == ma.rows && mo.cols == mb.cols;
    (ranks_ok && shapes_ok).then_some((ma, mb, mo))
}

macro_rules! dot_support {
    ($name:ident, $t:ty, $gemm:path) => {
        #[doc = concat!(
            "`out = a · b` for ", stringify!($t), " buffers given by their argument words ",
            "(1-d or 2-d, any strides, `out` not overlapping `a` or `b`). Returns 0, or 1 when ",
            "the shapes do not agree (nothing is written), or 2 if gemm failed."
        )]
        ///
        /// # Safety
        /// Each word pointer must point to `1 + 2 * rank` readable words describing a live
        /// buffer of its dtype whose every element addressed by its sizes and strides lies
        /// inside its allocation; `out` must be writable.
        pub unsafe extern "C" fn $name(
            a: *const i64,
            a_rank: i64,
            b: *const i64,
            b_rank: i64,
            out: *const i64,
            out_rank: i64,
        ) -> i32 {
            // SAFETY: forwarded from the caller.
            let Some((ma, mb, mo)) = (unsafe { dot_operands(a, a_rank, b, b_rank, out, out_rank) })
            else {
                return 1;
            };
            let run = AssertUnwindSafe(|| {
                // SAFETY: the shapes agree (checked above): gemm reads `rows × cols`
                // elements of `a` and `b` and writes those of `out` at the given strides,
                // all inside the buffers by the caller's guarantee.
                unsafe {
                    $gemm(
                        ma.rows,
                        ma.cols,
                        mb.cols,
                        1.0,
                        ma.ptr as *const $t,
                        ma.row_stride,
                        ma.col_stride,
                        mb.ptr as *const $t,
                        mb.row_stride,
                        mb.col_stride,
                        0.0,
                        mo.ptr as *mut $t,
                        mo.row_stride,
                        mo.col_stride,
                    )
                }
            });
            match catch_unwind(run) {
                Ok(()) => 0,
                Err(_) => 2,
            }
        }
    };
}

dot_support!(tl_dot_f64, f64, matrixmultiply::dgemm);
dot_support!(tl_dot_f32, f32, matrixmultiply::sgemm);

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ptr: *const f64, shape: &[usize], strides: &[isize]) -> Vec<i64> {
        let mut w = vec![ptr as i64];
        w.extend(shape.iter().map(|s| *s as i64));
        w.extend(strides.iter().map(|s| *s as i64));
        w
    }

    #[test]
    fn matrix_times_vector_matches_the_closed_form() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2×3
        let x = [1.0, -1.0, 2.0];
        let mut y = [0.0; 2];
        let (wa, wx, wy) = (
            words(a.as_ptr(), &[2, 3], &[3, 1]),
            words(x.as_ptr(), &[3], &[1]),
            words(y.as_mut_ptr(), &[2], &[1]),
        );
        // SAFETY: the words describe the live arrays above with their true shapes.
        let status = unsafe { tl_dot_f64(wa.as_ptr(), 2, wx.as_ptr(), 1, wy.as_ptr(), 1) };
        assert_eq!(status, 0);
        assert_eq!(y, [1.0 - 2.0 + 6.0, 4.0 - 5.0 + 12.0]);
    }

    #[test]
    fn disagreeing_shapes_write_nothing() {
        let a = [1.0; 6];
        let x = [1.0; 2];
        let mut y = [7.0; 2];
        let (wa, wx, wy) = (
            words(a.as_ptr(), &[2, 3], &[3, 1]),
            words(x.as_ptr(), &[2], &[1]),
            words(y.as_mut_ptr(), &[2], &[1]),
        );
        // SAFETY: as above; the function must refuse before reading past `x`.
        let status = unsafe { tl_dot_f64(wa.as_ptr(), 2, wx.as_ptr(), 1, wy.as_ptr(), 1) };
        assert_eq!(status, 1);
        assert_eq!(y, [7.0; 2]);
    }
}

//! Softmax rows for jitted code: `tl_softmax_f64` / `tl_softmax_f32` take an input and an
//! output buffer (argument words, any rank ≥ 1, any strides) and normalise every row along
//! the last axis — the row's maximum, exp(x − max) into the output (`vector_math`'s
//! polynomial exp at the CPU's widest vectors), the sum, then a scale by its reciprocal —
//! while the row is in cache, so the input is read from memory once and the output
//! written once. Rows that are not contiguous in both buffers go through a contiguous
//! f64 copy, and contiguous float32 rows are computed in f64 from the float32s (maximum,
//! exps into an f64 row, sum, scale and round), so every layout gives the same values.
//!
//! Owns: the special values, as the reference's max-shifted form gives them — a row with
//! a NaN, all −inf, or a +inf is all NaN.

use crate::logsumexp::{lane_sum, strip_max};
use crate::vector_math::{exp, exp_in_range, simd_versions, SimdLevel, EXP_FAST_LIMIT, EXP_POLY};

/// The softmax of `row` into `out` (the same length), in f64.
pub fn softmax_row(row: &[f64], out: &mut [f64]) {
    softmax_row_at(SimdLevel::Avx512, row, out)
}

simd_versions!(
    /// `softmax_row` with the version for `level` (or the widest this CPU has if
    /// narrower).
    pub fn softmax_row_at(row: &[f64], out: &mut [f64]) {
        softmax_row_body(row, out)
    }
);

#[inline(always)]
fn softmax_row_body(row: &[f64], out: &mut [f64]) {
    let n = row.len().min(out.len());
    let (row, out) = (&row[..n], &mut out[..n]);
    let (max, nan) = strip_max(row);
    let m = if nan { f64::NAN } else { max };
    let scale = exps_and_scale(row, m, out);
    for o in out.iter_mut() {
        *o *= scale;
    }
}

simd_versions!(
    /// The softmax of a float32 `row` into `out` (the same length) computed in f64 through
    /// `wide` (at least as long): the same values as widening the row first, in fewer
    /// passes (maximum of the float32s, exps from them, sum, scale and round).
    fn softmax_row_f32_at(row: &[f32], out: &mut [f32], wide: &mut [f64]) {
        let n = row.len().min(out.len()).min(wide.len());
        let (row, out, wide) = (&row[..n], &mut out[..n], &mut wide[..n]);
        let m = crate::row_reduce::max_f32_at(SimdLevel::Avx512, row);
        let scale = exps_and_scale(row, m, wide);
        for (o, w) in out.iter_mut().zip(wide.iter()) {
            *o = (w * scale) as f32;
        }
    }
);

/// exp(x − m) of every element of `row` into `out`, and the reciprocal of their sum.
#[inline(always)]
fn exps_and_scale<T: RowElement>(row: &[T], m: f64, out: &mut [f64]) -> f64 {
    let c = EXP_POLY;
    let mut far = false;
    for (o, x) in out.iter_mut().zip(row) {
        let t = x.to_f64() - m;
        *o = exp_in_range(t, &c);
        far |= t < -EXP_FAST_LIMIT;
    }
    if far {
        // Some x − m underflows (or is −inf): the full exp there.
        for (o, x) in out.iter_mut().zip(row) {
            *o = exp(x.to_f64() - m, &c);
        }
    }
    1.0 / lane_sum(out)
}

/// An element type of softmax buffers.
trait RowElement: Copy {
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    /// Softmax of a contiguous row of this type, through f64 scratch rows of the row's
    /// length where it needs them.
    fn softmax_through_f64(
        row: &[Self],
        out: &mut [Self],
        wide_in: &mut [f64],
        wide_out: &mut [f64],
    );
}

impl RowElement for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    fn softmax_through_f64(row: &[f64], out: &mut [f64], _: &mut [f64], _: &mut [f64]) {
        softmax_row(row, out)
    }
}

impl RowElement for f32 {
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn softmax_through_f64(row: &[f32], out: &mut [f32], wide: &mut [f64], _: &mut [f64]) {
        softmax_row_f32_at(SimdLevel::Avx512, row, out, wide)
    }
}

/// A buffer described by argument words: data pointer, sizes, strides (in elements).
struct Words {
    ptr: usize,
    shape: Vec<usize>,
    strides: Vec<isize>,
}

/// # Safety
/// `words` must point to `1 + 2 * rank` readable words.
unsafe fn read_words(words: *const i64, rank: i64) -> Option<Words> {
    let rank = usize::try_from(rank).ok()?;
    // SAFETY: the caller guarantees `1 + 2 * rank` readable words.
    let w = unsafe { std::slice::from_raw_parts(words, 1 + 2 * rank) };
    let shape = w[1..=rank]
        .iter()
        .map(|s| usize::try_from(*s).ok())
        .collect::<Option<Vec<_>>>()?;
    Some(Words {
        ptr: w[0] as usize,
        shape,
        strides: w[1 + rank..].iter().map(|s| *s as isize).collect(),
    })
}

/// Softmax of every row of `x` into `out` (same shape, checked: 1 when they differ or the
/// rank is 0, nothing written).
///
/// # Safety
/// The words must describe live buffers of `T` whose every element addressed by their
/// sizes and strides lies inside their allocations; `out` must be writable and must not
/// overlap `x` unless it is exactly `x`.
unsafe fn softmax_rows<T: RowElement>(
    x: *const i64,
    x_rank: i64,
    out: *const i64,
    out_rank: i64,
) -> i32 {
    // SAFETY: forwarded from the caller.
    let (Some(x), Some(out)) = (unsafe { read_words(x, x_rank) }, unsafe {
        read_words(out, out_rank)
    }) else {
        return 1;
    };
    let Some(&n) = x.shape.last() else {
        return 1;
    };
    if x.shape != out.shape {
        return 1;
    }
    let r = x.shape.len();
    let rows: usize = x.shape[..r - 1].iter().product();
    if rows == 0 || n == 0 {
        return 0;
    }
    let (sx, so) = (x.strides[r - 1], out.strides[r - 1]);
    let direct = sx == 1 && so == 1 && x.ptr != out.ptr;
    let copies = !(direct && std::mem::size_of::<T>() == 8);
    let (mut row_in, mut row_out) = (Vec::new(), Vec::new());
    if copies {
        // Fallible: a refused allocation is a status, never an abort in jitted code.
        if row_in.try_reserve_exact(n).is_err() || row_out.try_reserve_exact(n).is_err() {
            return 2;
        }
        row_in.resize(n, 0.0);
        row_out.resize(n, 0.0);
    }
    let mut index = vec![0usize; r - 1];
    for _ in 0..rows {
        let offset = |strides: &[isize]| -> isize {
            index
                .iter()
                .zip(strides)
                .map(|(i, s)| *i as isize * s)
                .sum()
        };
        let (ox, oo) = (offset(&x.strides), offset(&out.strides));
        let xp = (x.ptr as *const T).wrapping_offset(ox);
        let op = (out.ptr as *mut T).wrapping_offset(oo);
        if direct {
            // SAFETY: the row's `n` elements of T at stride 1 lie inside each buffer (the
            // caller's guarantee), and the buffers are distinct and do not overlap.
            unsafe {
                let src = std::slice::from_raw_parts(xp, n);
                let dst = std::slice::from_raw_parts_mut(op, n);
                T::softmax_through_f64(src, dst, &mut row_in, &mut row_out);
            }
        } else {
            for (k, v) in row_in.iter_mut().enumerate() {
                // SAFETY: element k of the row lies inside `x` (the caller's guarantee).
                *v = unsafe { *xp.wrapping_offset(k as isize * sx) }.to_f64();
            }
            softmax_row(&row_in, &mut row_out);
            for (k, v) in row_out.iter().enumerate() {
                // SAFETY: element k of the row lies inside `out`, which is writable.
                unsafe { *op.wrapping_offset(k as isize * so) = T::from_f64(*v) };
            }
        }
        // The next row (row-major over every axis but the last).
        for d in (0..r - 1).rev() {
            index[d] += 1;
            if index[d] < x.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    0
}

macro_rules! softmax_support {
    ($name:ident, $t:ty) => {
        #[doc = concat!(
                    "Softmax along the last axis of a ", stringify!($t), " buffer into another of ",
                    "the same shape, given by their argument words (any rank ≥ 1, any strides). ",
                    "Returns 0, or 1 when the shapes differ (nothing is written), or 2 when memory ",
                    "for a row copy is refused."
                )]
        ///
        /// # Safety
        /// Each word pointer must point to `1 + 2 * rank` readable words describing a live
        /// buffer whose every element addressed by its sizes and strides lies inside its
        /// allocation; `out` must be writable and not overlap `x` (or be exactly `x`).
        pub unsafe extern "C" fn $name(
            x: *const i64,
            x_rank: i64,
            out: *const i64,
            out_rank: i64,
        ) -> i32 {
            // SAFETY: forwarded from the caller.
            unsafe { softmax_rows::<$t>(x, x_rank, out, out_rank) }
        }
    };
}

softmax_support!(tl_softmax_f64, f64);
softmax_support!(tl_softmax_f32, f32);

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(row: &[f64]) -> Vec<f64> {
        let m = row.iter().copied().fold(f64::NEG_INFINITY, |a, b| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        });
        let e: Vec<f64> = row.iter().map(|x| (x - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    #[test]
    fn rows_agree_with_the_max_shifted_form_at_every_width() {
        let inf = f64::INFINITY;
        let mut rows: Vec<Vec<f64>> = vec![
            vec![],
            vec![3.0],
            vec![1000.0, 999.0, -1000.0],
            vec![-inf, 0.0, -inf],
            vec![-inf; 3],
            vec![1.0, inf, 2.0],
            vec![1.0, f64::NAN, 2.0],
            vec![0.0, -800.0, 1.0],
        ];
        rows.push(
            (0..2001)
                .map(|i| ((i * 37) % 101) as f64 * 0.3 - 15.0)
                .collect(),
        );
        for row in &rows {
            let want = reference(row);
            for level in [SimdLevel::Baseline, SimdLevel::Avx2, SimdLevel::Avx512] {
                let mut got = vec![0.0; row.len()];
                softmax_row_at(level, row, &mut got);
                for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-14 * w.abs(),
                        "{level:?}, row of {} starting {:?}: element {k} is {g}, expected {w}",
                        row.len(),
                        &row[..row.len().min(4)]
                    );
                }
            }
        }
    }

    /// Argument words of a buffer.
    fn words(ptr: *const u8, shape: &[usize], strides: &[isize]) -> Vec<i64> {
        let mut w = vec![ptr as i64];
        w.extend(shape.iter().map(|s| *s as i64));
        w.extend(strides.iter().map(|s| *s as i64));
        w
    }

    #[test]
    fn strided_and_float32_rows_give_the_contiguous_values() {
        // x: 3 × 4 stored transposed (strides 1, 3); out contiguous.
        let storage: Vec<f64> = (0..12).map(|i| (i as f64 * 0.7).sin() * 5.0).collect();
        let x_words = words(storage.as_ptr().cast(), &[3, 4], &[1, 3]);
        let mut out = vec![0.0f64; 12];
        let out_words = words(out.as_mut_ptr().cast(), &[3, 4], &[4, 1]);
        // SAFETY: the words describe the live vectors above, every element inside.
        let status = unsafe { tl_softmax_f64(x_words.as_ptr(), 2, out_words.as_ptr(), 2) };
        assert_eq!(status, 0);
        for i in 0..3 {
            let row: Vec<f64> = (0..4).map(|j| storage[i + 3 * j]).collect();
            let mut want = vec![0.0; 4];
            softmax_row(&row, &mut want);
            assert_eq!(&out[4 * i..4 * i + 4], &want[..], "row {i}");
        }
        // float32: computed in f64, rounded once.
        let x32: Vec<f32> = storage.iter().map(|v| *v as f32).collect();
        let mut out32 = vec![0.0f32; 12];
        let (xw, ow) = (
            words(x32.as_ptr().cast(), &[3, 4], &[4, 1]),
            words(out32.as_mut_ptr().cast(), &[3, 4], &[4, 1]),
        );
        // SAFETY: as above.
        assert_eq!(unsafe { tl_softmax_f32(xw.as_ptr(), 2, ow.as_ptr(), 2) }, 0);
        let row: Vec<f64> = x32[..4].iter().map(|v| *v as f64).collect();
        let mut want = vec![0.0; 4];
        softmax_row(&row, &mut want);
        let want32: Vec<f32> = want.iter().map(|v| *v as f32).collect();
        assert_eq!(&out32[..4], &want32[..]);
        // Shapes that differ, and rank 0: refused, nothing written.
        let bad = words(out.as_mut_ptr().cast(), &[4, 3], &[3, 1]);
        let before = out.clone();
        // SAFETY: as above.
        assert_eq!(
            unsafe { tl_softmax_f64(x_words.as_ptr(), 2, bad.as_ptr(), 2) },
            1
        );
        let scalar = words(out.as_mut_ptr().cast(), &[], &[]);
        // SAFETY: as above.
        assert_eq!(
            unsafe { tl_softmax_f64(scalar.as_ptr(), 0, scalar.as_ptr(), 0) },
            1
        );
        assert_eq!(out, before);
    }
}

//! Sums, products, maxima, minima and dot products of contiguous float64 rows at wide
//! vectors, which jitted reductions along a contiguous innermost axis call instead of
//! their own loop: Cranelift emits 128-bit vectors, and streaming a row with 256-bit
//! loads is faster (the figures are in the W4 benchmarks and their commit messages).
//!
//! Owns: the lane arrangement (16 running values, element k into lane k mod 16, then the
//! lanes combined pairwise and the tail in order), which is the same at every vector
//! width, so every width gives the same bits; maxima and minima are NaN when the row holds
//! one, as in the reference.

use crate::vector_math::{simd_versions, SimdLevel};

/// Running values per row.
const LANES: usize = 16;

/// An element type of rows: read as f64 (float32 exactly widened).
pub trait RowElement: Copy + PartialOrd {
    fn wide(self) -> f64;
    fn nan(self) -> bool;
    /// The product in the element's own arithmetic (float32: rounded to float32, as the
    /// reference rounds float32 results), widened.
    fn product(self, other: Self) -> f64;
    /// `probe + self · 0` in the element's arithmetic: NaN from the first NaN or
    /// infinite element on.
    fn probe(self, probe: Self) -> Self;
    const ZERO: Self;
}

impl RowElement for f64 {
    #[inline(always)]
    fn wide(self) -> f64 {
        self
    }
    #[inline(always)]
    fn nan(self) -> bool {
        self.is_nan()
    }
    #[inline(always)]
    fn product(self, other: f64) -> f64 {
        self * other
    }
    #[inline(always)]
    fn probe(self, probe: f64) -> f64 {
        probe + self * 0.0
    }
    const ZERO: f64 = 0.0;
}

impl RowElement for f32 {
    #[inline(always)]
    fn wide(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn nan(self) -> bool {
        self.is_nan()
    }
    #[inline(always)]
    fn product(self, other: f32) -> f64 {
        (self * other) as f64
    }
    #[inline(always)]
    fn probe(self, probe: f32) -> f32 {
        probe + self * 0.0
    }
    const ZERO: f32 = 0.0;
}

/// The values `value(a[k], b[k])` folded by `step` into `LANES` running f64 values from
/// `init` (element k into lane k mod `LANES`), then the lanes combined pairwise and the
/// tail folded in order.
#[inline(always)]
fn fold_pairs<T: RowElement>(
    a: &[T],
    b: &[T],
    init: f64,
    value: impl Fn(T, T) -> f64,
    step: impl Fn(f64, f64) -> f64,
) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [init; LANES];
    let (mut ca, mut cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    for (x, y) in (&mut ca).zip(&mut cb) {
        if let (Ok(xs), Ok(ys)) = (<&[T; LANES]>::try_from(x), <&[T; LANES]>::try_from(y)) {
            for k in 0..LANES {
                acc[k] = step(acc[k], value(xs[k], ys[k]));
            }
        }
    }
    let total = combine_lanes(acc, &step);
    let tail = ca.remainder().iter().zip(cb.remainder());
    tail.fold(total, |t, (x, y)| step(t, value(*x, *y)))
}

/// `row` folded by `step` (`fold_pairs` of the row with itself, the second read unused).
#[inline(always)]
fn fold_row<T: RowElement>(row: &[T], init: f64, step: impl Fn(f64, f64) -> f64) -> f64 {
    fold_pairs(row, row, init, |x, _| x.wide(), step)
}

/// The lanes combined pairwise (lane k with lane k + width/2, halving the width). Not
/// inlined: written next to the lane loop, it leads the vectoriser to 128-bit lanes there
/// (measured: a third slower).
#[inline(never)]
fn combine_lanes<T: Copy>(mut acc: [T; LANES], step: &impl Fn(T, T) -> T) -> T {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for k in 0..width {
            acc[k] = step(acc[k], acc[k + width]);
        }
    }
    acc[0]
}

/// `row` folded by `pick` (which ignores NaN) into `LANES` running values of its own
/// type (exact for maxima and minima) from `init`, with a probe per lane beside them (the
/// sum of x · 0, NaN exactly when some x is NaN or infinite; only then are the elements
/// looked at one by one): NaN if the row holds one, else the lanes combined pairwise and
/// the tail folded in. (A NaN-propagating step in the lanes would chain a compare, an or
/// and a blend per element, and a NaN flag per lane costs a conversion: measured slower.)
#[inline(always)]
fn fold_row_or_nan<T: RowElement>(row: &[T], init: T, pick: impl Fn(T, T) -> T) -> f64 {
    let mut acc = [init; LANES];
    let mut probe = [T::ZERO; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        if let Ok(xs) = <&[T; LANES]>::try_from(chunk) {
            for k in 0..LANES {
                acc[k] = pick(acc[k], xs[k]);
                probe[k] = xs[k].probe(probe[k]);
            }
        }
    }
    let tail = chunks.remainder();
    let special = probe.iter().any(|p| p.nan()) || tail.iter().any(|x| x.nan());
    if special && row.iter().any(|x| x.nan()) {
        return f64::NAN;
    }
    let total = combine_lanes(acc, &pick);
    tail.iter().fold(total, |a, x| pick(a, *x)).wide()
}

#[inline(always)]
fn larger<T: PartialOrd>(a: T, x: T) -> T {
    if x > a {
        x
    } else {
        a
    }
}

#[inline(always)]
fn smaller<T: PartialOrd>(a: T, x: T) -> T {
    if x < a {
        x
    } else {
        a
    }
}

/// The sum, dot product, product, maximum (NaN if the row holds one; −inf when empty) and
/// minimum of rows of `$t`, each `fn(level, …)` at `level`'s vectors.
macro_rules! row_reductions {
    ($t:ty, $sum:ident, $dot:ident, $prod:ident, $max:ident, $min:ident) => {
        simd_versions!(
            pub fn $sum(row: &[$t]) -> f64 {
                fold_row(row, 0.0, |a, x| a + x)
            }
        );
        simd_versions!(
            pub fn $dot(a: &[$t], b: &[$t]) -> f64 {
                fold_pairs(a, b, 0.0, |x, y| x.product(y), |t, v| t + v)
            }
        );
        simd_versions!(
            pub fn $prod(row: &[$t]) -> f64 {
                fold_row(row, 1.0, |a, x| a * x)
            }
        );
        simd_versions!(
            pub fn $max(row: &[$t]) -> f64 {
                fold_row_or_nan(row, <$t>::NEG_INFINITY, larger)
            }
        );
        simd_versions!(
            pub fn $min(row: &[$t]) -> f64 {
                fold_row_or_nan(row, <$t>::INFINITY, smaller)
            }
        );
    };
}

row_reductions!(f64, sum_at, dot_at, prod_at, max_at, min_at);
row_reductions!(
    f32,
    sum_f32_at,
    dot_f32_at,
    prod_f32_at,
    max_f32_at,
    min_f32_at
);

/// `out[k] = step(out[k], row[k])` over the shorter length: element by element in order,
/// the same operations as a kernel's own loop.
#[inline(always)]
fn accumulate_into(out: &mut [f64], row: &[f64], step: impl Fn(f64, f64) -> f64) {
    for (o, x) in out.iter_mut().zip(row) {
        *o = step(*o, *x);
    }
}

/// The kernels' rule for maxima: x is taken when beyond the running value or NaN (a NaN
/// running value stays).
#[inline(always)]
fn max_or_nan(a: f64, x: f64) -> f64 {
    if (x > a) | x.is_nan() {
        x
    } else {
        a
    }
}

#[inline(always)]
fn min_or_nan(a: f64, x: f64) -> f64 {
    if (x < a) | x.is_nan() {
        x
    } else {
        a
    }
}

simd_versions!(
    /// `out[k] += row[k]` (a reduction over an outer axis, row by row).
    pub fn add_into_at(out: &mut [f64], row: &[f64]) {
        accumulate_into(out, row, |a, x| a + x)
    }
);

simd_versions!(
    /// `out[k] += s · row[k]` (a vector times a matrix, row by row).
    pub fn axpy_at(out: &mut [f64], s: f64, row: &[f64]) {
        accumulate_into(out, row, |a, x| a + s * x)
    }
);

simd_versions!(
    /// `out[j] += Σ_k s[k]·m[k·stride + j]`, rows added one after the other as `axpy_at`
    /// adds them (the same bits), four rows per pass over `out`, one dispatch in all.
    pub fn axpys_at(out: &mut [f64], m: &[f64], stride: usize, s: &[f64]) {
        let n = out.len();
        let row = |k: usize| &m[k * stride..k * stride + n];
        let mut k = 0;
        while k + 4 <= s.len() {
            let (r0, r1, r2, r3) = (row(k), row(k + 1), row(k + 2), row(k + 3));
            let (s0, s1, s2, s3) = (s[k], s[k + 1], s[k + 2], s[k + 3]);
            for (j, o) in out.iter_mut().enumerate() {
                *o = (((*o + s0 * r0[j]) + s1 * r1[j]) + s2 * r2[j]) + s3 * r3[j];
            }
            k += 4;
        }
        for (j, scale) in s.iter().enumerate().skip(k) {
            accumulate_into(out, row(j), |a, x| a + scale * x);
        }
    }
);

simd_versions!(
    /// `out[i] = dot(m[i·stride ..][..v.len()], v)` for each i: `dot_at` of each row (the
    /// same bits), with one dispatch for all rows.
    pub fn dots_at(out: &mut [f64], m: &[f64], stride: usize, v: &[f64]) {
        let n = v.len();
        for (i, o) in out.iter_mut().enumerate() {
            let row = &m[i * stride..i * stride + n];
            *o = fold_pairs(row, v, 0.0, |x, y| x.product(y), |t, p| t + p);
        }
    }
);

simd_versions!(
    /// `out[k] *= row[k]`.
    pub fn mul_into_at(out: &mut [f64], row: &[f64]) {
        accumulate_into(out, row, |a, x| a * x)
    }
);

simd_versions!(
    /// `out[k] = max(out[k], row[k])`, NaN propagating.
    pub fn max_into_at(out: &mut [f64], row: &[f64]) {
        accumulate_into(out, row, max_or_nan)
    }
);

simd_versions!(
    /// `out[k] = min(out[k], row[k])`, NaN propagating.
    pub fn min_into_at(out: &mut [f64], row: &[f64]) {
        accumulate_into(out, row, min_or_nan)
    }
);

/// The vector width row reductions run at: AVX2's 256-bit loads streamed rows faster than
/// AVX-512's when measured (W4b).
pub const ROW_LEVEL: SimdLevel = SimdLevel::Avx2;

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Vec<f64>> {
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0
        };
        let mut rows: Vec<Vec<f64>> = [0, 1, 15, 16, 17, 33, 100, 1001]
            .iter()
            .map(|n| (0..*n).map(|_| next()).collect())
            .collect();
        rows.push(vec![1.0, f64::NAN, 3.0]);
        rows.push(
            (0..40)
                .map(|k| if k == 37 { f64::NAN } else { k as f64 })
                .collect(),
        );
        rows.push(vec![f64::INFINITY, 1.0, f64::NEG_INFINITY]);
        rows
    }

    #[test]
    fn dots_of_many_rows_are_each_rows_dot() {
        let rows = rows();
        let v = rows.iter().find(|r| r.len() == 33).unwrap();
        let m: Vec<f64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        let (stride, count) = (40, (m.len() - 33) / 40 + 1);
        for level in [SimdLevel::Baseline, SimdLevel::Avx2, SimdLevel::Avx512] {
            let mut out = vec![0.0; count];
            dots_at(level, &mut out, &m, stride, v);
            for (i, o) in out.iter().enumerate() {
                let one = dot_at(level, &m[i * stride..i * stride + 33], v);
                assert!(
                    *o == one || (o.is_nan() && one.is_nan()),
                    "{level:?} row {i}"
                );
            }
        }
    }

    #[test]
    fn scaled_rows_add_up_as_one_after_the_other() {
        let rows = rows();
        let m: Vec<f64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        let (stride, width) = (37, 30);
        let scales: Vec<f64> = (0..7).map(|k| 0.5 - k as f64 * 0.3).collect();
        for level in [SimdLevel::Baseline, SimdLevel::Avx2, SimdLevel::Avx512] {
            let mut one_by_one = vec![0.25; width];
            for (k, s) in scales.iter().enumerate() {
                axpy_at(
                    level,
                    &mut one_by_one,
                    *s,
                    &m[k * stride..k * stride + width],
                );
            }
            let mut all = vec![0.25; width];
            axpys_at(level, &mut all, &m, stride, &scales);
            let same = all
                .iter()
                .zip(&one_by_one)
                .all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
            assert!(same, "{level:?}");
        }
    }

    #[test]
    fn every_width_gives_the_same_bits() {
        for row in rows() {
            let dot = |l, r: &[f64]| dot_at(l, r, &r.iter().rev().copied().collect::<Vec<_>>());
            for f in [sum_at, prod_at, max_at, min_at, dot] {
                let widths = [SimdLevel::Avx512, SimdLevel::Avx2, SimdLevel::Baseline];
                let bits: Vec<u64> = widths.iter().map(|l| f(*l, &row).to_bits()).collect();
                assert!(bits.iter().all(|b| *b == bits[0]), "{row:?}: {bits:?}");
            }
        }
    }

    type IntoFn = fn(SimdLevel, &mut [f64], &[f64]);
    type StepFn = fn(f64, f64) -> f64;

    #[test]
    fn accumulations_into_rows_are_element_by_element() {
        for row in rows() {
            let start: Vec<f64> = row.iter().rev().map(|x| x * 0.5 - 1.0).collect();
            let fns: [(IntoFn, StepFn); 4] = [
                (add_into_at, |a, x| a + x),
                (mul_into_at, |a, x| a * x),
                (max_into_at, max_or_nan),
                (min_into_at, min_or_nan),
            ];
            for (f, step) in fns {
                let want: Vec<u64> = start
                    .iter()
                    .zip(&row)
                    .map(|(a, x)| step(*a, *x).to_bits())
                    .collect();
                for l in [SimdLevel::Avx512, SimdLevel::Avx2, SimdLevel::Baseline] {
                    let mut out = start.clone();
                    f(l, &mut out, &row);
                    let got: Vec<u64> = out.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(got, want, "{row:?}");
                }
            }
        }
    }

    #[test]
    fn float32_rows_reduce_in_float64() {
        for row in rows() {
            let narrow: Vec<f32> = row.iter().map(|x| *x as f32).collect();
            let wide: Vec<f64> = narrow.iter().map(|x| *x as f64).collect();
            let levels = [SimdLevel::Avx512, SimdLevel::Avx2, SimdLevel::Baseline];
            for l in levels {
                let same =
                    |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
                assert!(same(sum_f32_at(l, &narrow), sum_at(l, &wide)), "{row:?}");
                assert!(same(prod_f32_at(l, &narrow), prod_at(l, &wide)), "{row:?}");
                assert!(same(max_f32_at(l, &narrow), max_at(l, &wide)), "{row:?}");
                assert!(same(min_f32_at(l, &narrow), min_at(l, &wide)), "{row:?}");
                // Products rounded to float32 first.
                let rounded: Vec<f64> = narrow.iter().map(|x| (x * x) as f64).collect();
                assert!(
                    same(dot_f32_at(l, &narrow, &narrow), sum_at(l, &rounded)),
                    "{row:?}"
                );
            }
        }
    }

    #[test]
    fn reductions_agree_with_sequential_folds() {
        for row in rows() {
            let sum: f64 = row.iter().sum();
            let prod: f64 = row.iter().product();
            let nan = row.iter().any(|x| x.is_nan());
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let min = row.iter().copied().fold(f64::INFINITY, f64::min);
            let close = |a: f64, b: f64| {
                (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-12 * b.abs().max(1.0)
            };
            assert!(close(sum_at(ROW_LEVEL, &row), sum), "sum {row:?}");
            let squares: f64 = row.iter().map(|x| x * x).sum();
            assert!(close(dot_at(ROW_LEVEL, &row, &row), squares), "dot {row:?}");
            assert!(close(prod_at(ROW_LEVEL, &row), prod), "prod {row:?}");
            let (m, n) = (max_at(ROW_LEVEL, &row), min_at(ROW_LEVEL, &row));
            assert!(if nan { m.is_nan() } else { m == max }, "max {row:?}");
            assert!(if nan { n.is_nan() } else { n == min }, "min {row:?}");
        }
    }
}

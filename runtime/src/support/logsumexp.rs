//! logsumexp in one pass over the data, strip by strip, as jitted reductions run it: each
//! strip's maximum, the sum of exp(x − maximum) over the strip (`vector_math`'s
//! polynomial exp at the CPU's widest vectors), and a running (shift, sum) pair rescaled
//! when a larger maximum arrives. Plus `log_add_exp`, the rule that combines two
//! logsumexps (partial results of threads, or a row's result with its output element).
//!
//! Owns: the special values — any NaN gives NaN, any +inf (without NaN) gives +inf, all
//! −inf or nothing gives −inf — matching the reference's max-shifted form.

use crate::vector_math::{exp, exp_in_range, simd_versions, SimdLevel, EXP_FAST_LIMIT, EXP_POLY};

/// log(e^a + e^b) without overflow or underflow: NaN if either is, ±inf where the larger
/// is, and otherwise max + log1p(e^−|a−b|).
pub fn log_add_exp(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    let m = a.max(b);
    if m.is_infinite() {
        return m;
    }
    m + (-(a - b).abs()).exp().ln_1p()
}

/// A logsumexp in progress: Σ exp(x) = `sum` · e^`shift` over the strips seen so far
/// whose maximum was finite (`shift` is the largest of those maxima, −inf before the
/// first); `nan` and `pos_inf` (0 or 1) note whether a NaN or a +inf was seen.
/// `repr(C)`: jitted code keeps one in scratch memory and passes its address.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogSumExpState {
    pub shift: f64,
    pub sum: f64,
    pub nan: f64,
    pub pos_inf: f64,
}

/// Elements per strip (the JIT's strips are this long; longer slices go by strips).
const STRIP: usize = 512;
/// Independent accumulators per loop (one vector's worth at the widest width).
const LANES: usize = 8;

impl Default for LogSumExpState {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl LogSumExpState {
    /// Nothing seen: the value is −inf.
    pub const EMPTY: LogSumExpState = LogSumExpState {
        shift: f64::NEG_INFINITY,
        sum: 0.0,
        nan: 0.0,
        pos_inf: 0.0,
    };

    /// Adds the elements of `xs`, compiled for the CPU's widest vectors (`simd_level`).
    pub fn add(&mut self, xs: &[f64]) {
        self.add_at(SimdLevel::Avx512, xs)
    }

    /// `add` with the version for `level` (or the widest this CPU has if narrower).
    pub fn add_at(&mut self, level: SimdLevel, xs: &[f64]) {
        add_strips_at(level, self, xs)
    }

    /// Adds the elements of float32 `xs` (each widened exactly: the same as adding the
    /// widened values).
    pub fn add_f32(&mut self, xs: &[f32]) {
        add_f32_strips_at(SimdLevel::Avx512, self, xs)
    }

    /// log(Σ exp(x)) of everything added.
    pub fn value(&self) -> f64 {
        if self.nan != 0.0 {
            f64::NAN
        } else if self.pos_inf != 0.0 {
            f64::INFINITY
        } else if self.sum == 0.0 {
            f64::NEG_INFINITY
        } else {
            self.shift + self.sum.ln()
        }
    }

    /// Strip by strip; the exp-sum of each asks for the next strip's cache lines as it
    /// goes, so the next strip's trip from memory overlaps this one's arithmetic.
    #[inline(always)]
    fn add_strips<T: StripElement>(&mut self, xs: &[T]) {
        for (k, strip) in xs.chunks(STRIP).enumerate() {
            let next = xs.get((k + 1) * STRIP..).unwrap_or(&[]);
            self.add_strip(strip, &next[..next.len().min(STRIP)]);
        }
    }

    #[inline(always)]
    fn add_strip<T: StripElement>(&mut self, xs: &[T], next: &[T]) {
        let (m, nan) = T::strip_max(xs);
        if nan {
            self.nan = 1.0;
            return;
        }
        if m == f64::INFINITY {
            self.pos_inf = 1.0;
            return;
        }
        if m == f64::NEG_INFINITY {
            return; // all −inf (or empty): adds nothing
        }
        let s = strip_exp_sum(xs, m, next);
        if self.shift == f64::NEG_INFINITY {
            (self.shift, self.sum) = (m, s);
        } else if m > self.shift {
            self.sum = self.sum * (self.shift - m).exp() + s;
            self.shift = m;
        } else {
            self.sum += s * (m - self.shift).exp();
        }
    }
}

/// An element type of logsumexp strips: float64, or float32 (widened exactly, so a
/// float32 strip adds what its widened copy would).
trait StripElement: Copy {
    fn wide(self) -> f64;
    /// The strip's maximum (−inf if empty) and whether it holds a NaN.
    fn strip_max(xs: &[Self]) -> (f64, bool);
}

impl StripElement for f64 {
    #[inline(always)]
    fn wide(self) -> f64 {
        self
    }
    #[inline(always)]
    fn strip_max(xs: &[f64]) -> (f64, bool) {
        strip_max(xs)
    }
}

impl StripElement for f32 {
    #[inline(always)]
    fn wide(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn strip_max(xs: &[f32]) -> (f64, bool) {
        let m = crate::row_reduce::max_f32_at(SimdLevel::Avx512, xs);
        (m, m.is_nan())
    }
}

/// Asks for the cache lines of `xs` (a hint: no effect on results).
#[inline(always)]
fn prefetch<T>(xs: &[T]) {
    #[cfg(target_arch = "x86_64")]
    for line in xs.chunks((64 / std::mem::size_of::<T>().max(1)).max(1)) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch never faults and reads nothing; the address is in `xs`.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
    }
}

simd_versions!(
    fn add_strips_at(state: &mut LogSumExpState, xs: &[f64]) {
        state.add_strips(xs)
    }
);

simd_versions!(
    fn add_f32_strips_at(state: &mut LogSumExpState, xs: &[f32]) {
        state.add_strips(xs)
    }
);

/// The maximum of `xs` (−inf if empty) and whether any element is NaN, in `LANES`
/// independent lanes: `x > m ? x : m` (one `maxpd`, which passes NaNs by), and x · 0
/// summed as a probe that is NaN exactly when some x is NaN or infinite; only then are
/// the elements looked at one by one.
#[inline(always)]
pub(crate) fn strip_max(xs: &[f64]) -> (f64, bool) {
    let mut m = [f64::NEG_INFINITY; LANES];
    let mut probe = [0.0f64; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            m[k] = if c[k] > m[k] { c[k] } else { m[k] };
            probe[k] += c[k] * 0.0;
        }
    }
    for (k, v) in rest.iter().enumerate() {
        m[k] = if *v > m[k] { *v } else { m[k] };
        probe[k] += v * 0.0;
    }
    let max = m.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let special = probe.iter().any(|p| p.is_nan());
    (max, special && xs.iter().any(|x| x.is_nan()))
}

/// Σ exp(x − m) over `xs` (at most `STRIP` elements, every x ≤ m, m finite): the
/// polynomial exp without range handling into a buffer, block by block (each block
/// first asking for its share of `next`'s cache lines), redone with the full exp if some
/// x − m is below −EXP_FAST_LIMIT (where the result underflows); then summed in `LANES`
/// independent sums.
#[inline(always)]
fn strip_exp_sum<T: StripElement>(xs: &[T], m: f64, next: &[T]) -> f64 {
    const BLOCK: usize = 64;
    let c = EXP_POLY;
    let mut e = [0.0f64; STRIP];
    let e = &mut e[..xs.len().min(STRIP)];
    let mut far = false;
    for (k, (eb, xb)) in e.chunks_mut(BLOCK).zip(xs.chunks(BLOCK)).enumerate() {
        if let Some(ahead) = next.get(k * BLOCK..) {
            prefetch(&ahead[..ahead.len().min(BLOCK)]);
        }
        for (d, x) in eb.iter_mut().zip(xb) {
            let t = x.wide() - m;
            *d = exp_in_range(t, &c);
            far |= t < -EXP_FAST_LIMIT;
        }
    }
    if far {
        for (d, x) in e.iter_mut().zip(xs) {
            *d = exp(x.wide() - m, &c);
        }
    }
    lane_sum(e)
}

/// Σ xs in `LANES` independent sums (a vector's worth of adds per step).
#[inline(always)]
pub(crate) fn lane_sum(xs: &[f64]) -> f64 {
    let mut acc = [0.0f64; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for ch in chunks {
        for k in 0..LANES {
            acc[k] += ch[k];
        }
    }
    for (k, v) in rest.iter().enumerate() {
        acc[k] += v;
    }
    acc.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's max-shifted form, in plain f64 arithmetic.
    fn two_pass(xs: &[f64]) -> f64 {
        let m = xs.iter().copied().fold(f64::NEG_INFINITY, |a, b| {
            if a.is_nan() || b > a || b.is_nan() {
                b
            } else {
                a
            }
        });
        let shift = if m.is_infinite() { 0.0 } else { m };
        xs.iter().map(|x| (x - shift).exp()).sum::<f64>().ln() + shift
    }

    fn close(a: f64, b: f64) -> bool {
        a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-14 * a.abs().max(1.0)
    }

    fn one_pass(xs: &[f64], level: SimdLevel) -> f64 {
        let mut s = LogSumExpState::EMPTY;
        s.add_at(level, xs);
        s.value()
    }

    #[test]
    fn float32_rows_widen_exactly() {
        // Lengths around the strip, special values: the same as adding the widened row
        // strip by strip.
        for n in [0usize, 1, 511, 512, 513, 1500] {
            let mut xs: Vec<f32> = (0..n)
                .map(|k| ((k * 37) % 101) as f32 * 0.25 - 12.0)
                .collect();
            if n > 3 {
                xs[n / 2] = f32::NEG_INFINITY;
            }
            let wide: Vec<f64> = xs.iter().map(|x| *x as f64).collect();
            let mut a = LogSumExpState::EMPTY;
            a.add_f32(&xs);
            let mut b = LogSumExpState::EMPTY;
            for strip in wide.chunks(STRIP) {
                b.add(strip);
            }
            assert_eq!(a.value().to_bits(), b.value().to_bits(), "{n}");
            assert!(close(a.value(), two_pass(&wide)), "{n}");
        }
        let mut with_nan = LogSumExpState::EMPTY;
        with_nan.add_f32(&[1.0, f32::NAN, 2.0]);
        assert!(with_nan.value().is_nan());
    }

    #[test]
    fn one_pass_agrees_with_two_passes_at_every_width() {
        let mut cases: Vec<Vec<f64>> = vec![
            vec![],
            vec![0.0],
            vec![1000.0, 1000.0],
            vec![-1000.0, -1001.0],
            vec![f64::NEG_INFINITY; 3],
            vec![f64::NEG_INFINITY, 2.0, f64::NEG_INFINITY],
            vec![1.0, f64::INFINITY, 2.0],
            vec![1.0, f64::INFINITY, f64::NAN],
            vec![f64::NAN, 1.0],
            vec![0.0, -800.0, 3.0],
        ];
        // Rising, falling and mixed magnitudes across many strips (rescaling both ways).
        cases.push((0..5000).map(|i| i as f64 * 0.37).collect());
        cases.push((0..5000).map(|i| -(i as f64) * 0.37).collect());
        cases.push(
            (0..3001)
                .map(|i| ((i * 7919) % 1000) as f64 * 0.9 - 450.0)
                .collect(),
        );
        let mut late_nan: Vec<f64> = (0..2000).map(|i| i as f64).collect();
        late_nan[1999] = f64::NAN;
        cases.push(late_nan);
        let mut late_inf: Vec<f64> = (0..2000).map(|i| -(i as f64)).collect();
        late_inf[1500] = f64::INFINITY;
        cases.push(late_inf);
        for xs in &cases {
            let want = two_pass(xs);
            for level in [SimdLevel::Baseline, SimdLevel::Avx2, SimdLevel::Avx512] {
                let got = one_pass(xs, level);
                assert!(
                    close(got, want),
                    "{level:?} {:?}…: {got} vs {want}",
                    &xs[..xs.len().min(4)]
                );
            }
        }
    }

    #[test]
    fn strips_added_separately_give_the_whole() {
        let xs: Vec<f64> = (0..2000).map(|i| ((i * 31) % 97) as f64 - 40.0).collect();
        let mut s = LogSumExpState::EMPTY;
        for part in xs.chunks(123) {
            s.add(part);
        }
        assert!(close(s.value(), two_pass(&xs)));
    }

    #[test]
    fn log_add_exp_special_values() {
        let inf = f64::INFINITY;
        assert_eq!(log_add_exp(f64::NEG_INFINITY, 2.5), 2.5);
        assert_eq!(log_add_exp(-inf, -inf), -inf);
        assert_eq!(log_add_exp(inf, inf), inf);
        assert_eq!(log_add_exp(inf, -inf), inf);
        assert!(log_add_exp(f64::NAN, 1.0).is_nan());
        assert!(close(log_add_exp(0.0, 0.0), std::f64::consts::LN_2));
        assert!(close(
            log_add_exp(1000.0, 999.0),
            two_pass(&[1000.0, 999.0])
        ));
    }
}

//! Polynomial exp, sin and cos: the one definition of the algorithms and constants the JIT
//! uses, both as Cranelift IR (`tensorlift_compiler::vmath`, same operations in the same
//! order) and as array functions compiled here for AVX-512 (eight doubles per instruction),
//! AVX2 + FMA (four) and the baseline, chosen once per process by what the CPU has
//! (`simd_level`), which jitted loops call on strips of contiguous data (Cranelift cannot
//! emit vectors wider than 128 bits). All give bit-for-bit the same results; accuracy
//! against libm is at most 2 ulp (`tests/vmath_accuracy.rs`).
//!
//! - exp: x clamped to [-750, 710] (NaN stays); n = round(x / ln 2) by the 1.5·2^52
//!   shifter trick; r = x − n·ln2 in two fma steps (ln 2 split hi/lo); e^r by a
//!   degree-11 polynomial on |r| ≤ ln2/2 (Chebyshev economization of the Taylor series,
//!   computed at compile time: within ~1e-17 relative, constant and linear terms exactly
//!   1), evaluated by second-order Horner; scaled by 2^⌊n/2⌋ · 2^(n−⌊n/2⌋) (exact,
//!   overflows to inf, underflows gradually). The array version runs at the FMA ports'
//!   limit (about 20 floating-point operations per vector).
//! - log (x normal and finite; libm's otherwise): x = 2^e · m with m in [√½, √2) from the
//!   bits (e as a float by the 2^52 trick), f = m − 1 (exact), s = f/(2+f), and
//!   log(1+f) = f − (f²/2 − s·(f²/2 + R(s²))) with R the atanh series (coefficients
//!   2/(2k+1), k = 1..10: truncation below 1e-18 relative), plus e·ln2 in two parts
//!   (fdlibm's arrangement: the large terms exact, the small ones corrections).
//! - log1p (x > −1 and finite; libm's otherwise): c = 1 + x, then log(c) + (x − (c − 1))/c
//!   (the rounding of 1 + x corrected to first order; exact for tiny x).
//! - softplus: max(x, 0) + log1p(exp(−|x|)) — the reference's two branches in one.
//! - sigmoid: e = exp(−|x|) (the exp above: never overflows), then 1/(1+e) for x ≥ 0
//!   and e/(1+e) below — the reference's two branches with one exp.
//! - expm1 (|x| ≤ 40; libm's beyond): k = round(x / ln 2), r = x − k·ln2 with its
//!   rounding kept, e^r − 1 = r + r²·Q(r) (Q: exp's coefficients from degree 2), then
//!   2^k·(e^r − 1) + (2^k − 1) summed exactly (two-sum) and rounded once: ≤ 1 ulp.
//! - tanh: fdlibm's arrangement on one expm1 kept as a double-double: −t/(t + 2) with
//!   t = expm1(−2|x|) below 1, 1 − 2/(t + 2) with t = expm1(2|x|) above, the quotient
//!   corrected for every rounding; ≤ 2 ulp from libm.
//! - exp2 (|x| ≤ 1022; libm's beyond): k = round(x), r = x − k, e^(r·ln 2) with the
//!   rounding of r·ln 2 kept as a correction, scaled by 2^k. log2: log's pieces, then
//!   e + ln(m)/ln 2 with 1/ln 2 in two parts (fdlibm's arrangement). exp2 ≤ 2 ulp, log2
//!   ≤ 1 ulp from libm.
//! - sin, cos: q = round(x · 2/π); r = x − q·π/2 in three fma steps; sine and cosine
//!   polynomials on |r| ≤ π/4 (Taylor to degree 17/16); the quadrant selects and negates.
//!   Where |x| > 8192 the value is libm's (the reduction would lose accuracy).

/// log's R(z) coefficients 2/(2k+1), k = 1..10, lowest first (R(z) = z·Σ c_k z^(k−1)).
pub const LOG_POLY: [f64; 10] = {
    let mut c = [0.0; 10];
    let mut k = 0;
    while k < 10 {
        c[k] = 2.0 / (2 * k + 3) as f64;
        k += 1;
    }
    c
};
/// The bits of 2^52: OR-ing a small integer into its mantissa gives 2^52 + that integer.
pub const TWO52_BITS: u64 = 0x4330_0000_0000_0000;
/// A double's mantissa bits.
pub const MANTISSA_BITS: u64 = (1 << 52) - 1;

/// 1.5 · 2^52: adding it rounds a float to an integer held in the low mantissa bits.
pub const SHIFTER: f64 = 6755399441055744.0;
/// ln 2 split so that n · LN2_HI is exact for the n exp needs.
pub const LN2_HI: f64 = 0.693_147_180_369_123_8;
pub const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
/// π/2 in three parts.
pub const PIO2_1: f64 = std::f64::consts::FRAC_PI_2;
pub const PIO2_2: f64 = 6.123_233_995_736_766e-17;
pub const PIO2_3: f64 = -1.497_384_904_859_169_6e-33;
/// Beyond this |x|, sin and cos are libm's.
pub const TRIG_FAST_LIMIT: f64 = 8192.0;
/// exp's clamp bounds.
pub const EXP_LOW: f64 = -750.0;
pub const EXP_HIGH: f64 = 710.0;

/// Coefficients of exp's polynomial.
pub const EXP_COEFFICIENTS: usize = 12;

/// Coefficients (constant term first) of exp's degree-11 polynomial on |r| ≤ ln2/2: the
/// Taylor series of e^r to degree 21 re-expressed in Chebyshev polynomials of r/(ln2/2),
/// cut after T_11 and converted back to powers of r (Chebyshev economization: within
/// ~1e-17 relative of e^r on the interval; the constant and linear terms come out as
/// exactly 1, so e^0 is exactly 1).
pub const fn exp_coefficients() -> [f64; EXP_COEFFICIENTS] {
    const TERMS: usize = 22;
    let half = std::f64::consts::LN_2 / 2.0;
    // Chebyshev polynomials T_0..T_21 in powers of t (integers, exact in f64).
    let mut cheb = [[0.0f64; TERMS]; TERMS];
    cheb[0][0] = 1.0;
    cheb[1][1] = 1.0;
    let mut j = 2;
    while j < TERMS {
        let mut k = 0;
        while k < TERMS {
            let up = if k > 0 { 2.0 * cheb[j - 1][k - 1] } else { 0.0 };
            cheb[j][k] = up - cheb[j - 2][k];
            k += 1;
        }
        j += 1;
    }
    // e^(half·t) = Σ half^k/k! · t^k, then in Chebyshev terms (top down: T_j alone
    // holds t^j).
    let mut rest = [0.0f64; TERMS];
    let (mut power, mut factorial) = (1.0f64, 1.0f64);
    let mut k = 0;
    while k < TERMS {
        if k > 0 {
            power *= half;
            factorial *= k as f64;
        }
        rest[k] = power / factorial;
        k += 1;
    }
    let mut in_cheb = [0.0f64; TERMS];
    let mut j = TERMS;
    while j > 0 {
        j -= 1;
        in_cheb[j] = rest[j] / cheb[j][j];
        let mut k = 0;
        while k <= j {
            rest[k] -= in_cheb[j] * cheb[j][k];
            k += 1;
        }
    }
    // Keep T_0..T_11, back to powers of t, then of r = half·t.
    let mut coeffs = [0.0f64; EXP_COEFFICIENTS];
    let mut j = 0;
    while j < EXP_COEFFICIENTS {
        let mut k = 0;
        while k < EXP_COEFFICIENTS {
            coeffs[k] += in_cheb[j] * cheb[j][k];
            k += 1;
        }
        j += 1;
    }
    let mut scale = 1.0;
    let mut k = 0;
    while k < EXP_COEFFICIENTS {
        coeffs[k] /= scale;
        scale *= half;
        k += 1;
    }
    coeffs
}

/// `exp_coefficients()`, computed at compile time.
pub const EXP_POLY: [f64; EXP_COEFFICIENTS] = exp_coefficients();

/// Exp's polynomial by second-order Horner: p(r) = E(r²) + r·O(r²), E and O (the even
/// and odd coefficients) each by Horner's rule in r². Nearly Horner's operation count with
/// two independent chains of half the length: loops over many elements are bound by how
/// many elements' dependency chains fit in flight (measured here: faster than plain
/// Horner and than Estrin's scheme). `vmath` emits the same operations in the same order.
#[inline(always)]
pub fn exp_polynomial(r: f64, c: &[f64; EXP_COEFFICIENTS]) -> f64 {
    let s = r * r;
    let mut even = c[EXP_COEFFICIENTS - 2];
    let mut odd = c[EXP_COEFFICIENTS - 1];
    let mut k = EXP_COEFFICIENTS - 2;
    while k > 0 {
        k -= 2;
        even = even.mul_add(s, c[k]);
        odd = odd.mul_add(s, c[k + 1]);
    }
    odd.mul_add(r, even)
}

/// Coefficients of S and C in sin r = r + r³·S(r²), cos r = 1 − r²/2 + r⁴·C(r²).
pub fn sin_cos_coefficients() -> ([f64; 8], [f64; 7]) {
    let (mut s, mut c) = ([0.0; 8], [0.0; 7]);
    let mut fact = 1.0f64;
    for k in 1..=17usize {
        fact *= k as f64;
        let sign = if (k / 2) % 2 == 1 { -1.0 } else { 1.0 };
        if k >= 3 && k % 2 == 1 {
            s[(k - 3) / 2] = sign / fact;
        }
        if k >= 4 && k % 2 == 0 {
            c[(k - 4) / 2] = sign / fact;
        }
    }
    (s, c)
}

/// Σ coeffs[k]·x^k by Estrin's scheme: pairs `c[2k] + c[2k+1]·x`, then pairs of those
/// combined with x², x⁴, … (an odd term out passes through a level unchanged). Written
/// over fixed-size arrays so the compiler unrolls it completely (and vectorises loops
/// calling it); `vmath` emits exactly these operations.
#[inline(always)]
pub fn estrin<const N: usize>(x: f64, coeffs: &[f64; N]) -> f64 {
    let mut terms = [0.0f64; N];
    let mut len = 0;
    let mut i = 0;
    while i < N {
        terms[len] = if i + 1 < N {
            coeffs[i + 1].mul_add(x, coeffs[i])
        } else {
            coeffs[i]
        };
        len += 1;
        i += 2;
    }
    let mut power = x * x;
    while len > 1 {
        let mut next = 0;
        let mut i = 0;
        while i < len {
            terms[next] = if i + 1 < len {
                terms[i + 1].mul_add(power, terms[i])
            } else {
                terms[i]
            };
            next += 1;
            i += 2;
        }
        len = next;
        if len > 1 {
            power *= power;
        }
    }
    terms[0]
}

/// 2^k for an integral float k in [-1022, 1023].
#[inline(always)]
fn pow2(k: f64) -> f64 {
    let n = (k + SHIFTER).to_bits().wrapping_sub(SHIFTER.to_bits());
    f64::from_bits(n.wrapping_add(1023) << 52)
}

/// e^x.
#[inline(always)]
pub fn exp(x: f64, coeffs: &[f64; EXP_COEFFICIENTS]) -> f64 {
    let x = if x < EXP_LOW { EXP_LOW } else { x };
    let x = if x > EXP_HIGH { EXP_HIGH } else { x };
    let t = x.mul_add(std::f64::consts::LOG2_E, SHIFTER);
    let n = t - SHIFTER;
    let r = n.mul_add(-LN2_HI, x);
    let r = n.mul_add(-LN2_LO, r);
    let p = exp_polynomial(r, coeffs);
    let n1 = (n * 0.5).floor();
    let n2 = n - n1;
    p * pow2(n1) * pow2(n2)
}

/// Largest |x| for which `exp_in_range` is exact (no overflow, no subnormal result).
pub const EXP_FAST_LIMIT: f64 = 708.0;

/// e^x for |x| ≤ EXP_FAST_LIMIT: `exp` without the clamp and with one power-of-two scale,
/// which for these x gives exactly `exp`'s result (both scalings are exact).
#[inline(always)]
pub fn exp_in_range(x: f64, coeffs: &[f64; EXP_COEFFICIENTS]) -> f64 {
    let t = x.mul_add(std::f64::consts::LOG2_E, SHIFTER);
    let n = t - SHIFTER;
    let r = n.mul_add(-LN2_HI, x);
    let r = n.mul_add(-LN2_LO, r);
    let p = exp_polynomial(r, coeffs);
    let scale = t
        .to_bits()
        .wrapping_add(1023u64.wrapping_sub(SHIFTER.to_bits()))
        << 52;
    p * f64::from_bits(scale)
}

/// Beyond this |x|, expm1 and tanh's expm1 leave the fast path (the scale 2^k and
/// 2^k − 1 stay exact within it).
pub const EXPM1_FAST_LIMIT: f64 = 40.0;

/// Coefficients of Q in e^r − 1 − r = r²·Q(r): exp's polynomial from degree 2.
pub const EXPM1_POLY: [f64; EXP_COEFFICIENTS - 2] = {
    let mut q = [0.0; EXP_COEFFICIENTS - 2];
    let mut k = 0;
    while k < q.len() {
        q[k] = EXP_POLY[k + 2];
        k += 1;
    }
    q
};

/// e^x − 1 for |x| ≤ EXPM1_FAST_LIMIT as an unevaluated sum head + tail (`vmath` emits
/// the same operations): k = round(x / ln 2); hi = x − k·ln2_hi, lo = k·ln2_lo, r = hi −
/// lo and c = (hi − r) − lo (the rounding of r, kept as a correction); e^r − 1 = r + s
/// with s = r²·Q(r) + c; then 2^k·(e^r − 1) + (2^k − 1): head = 2^k·r + (2^k − 1) (two
/// exact terms, summed by Knuth's two-sum) and tail = 2^k·s plus head's rounding error,
/// returned normalised (the first part is the rounded sum). The cancellation when k is
/// small thus costs nothing. For |x| < ln2/2, k = 0: r = x.
#[inline(always)]
pub fn expm1_parts(x: f64) -> (f64, f64) {
    let t = x.mul_add(std::f64::consts::LOG2_E, SHIFTER);
    let k = t - SHIFTER;
    let hi = k.mul_add(-LN2_HI, x);
    let lo = k * LN2_LO;
    let r = hi - lo;
    let c = (hi - r) - lo;
    let q = estrin(r, &EXPM1_POLY);
    let small = (r * r).mul_add(q, c);
    let scale = pow2(k);
    let (a, b) = (scale * r, scale - 1.0);
    let head = a + b;
    let b_part = head - a;
    let err = (a - (head - b_part)) + (b - b_part);
    let tail = scale.mul_add(small, err);
    // Normalised (|head| ≥ |tail|, so a fast two-sum): the sum, and what it lost.
    let sum = head + tail;
    (sum, tail - (sum - head))
}

/// e^x − 1 for |x| ≤ EXPM1_FAST_LIMIT: the rounded sum of `expm1_parts` (within 1 ulp).
#[inline(always)]
pub fn expm1_in_range(x: f64) -> f64 {
    expm1_parts(x).0
}

/// Whether `expm1_in_range` applies (false for NaN).
#[inline(always)]
pub fn expm1_in_range_ok(x: f64) -> bool {
    x.abs() <= EXPM1_FAST_LIMIT
}

/// tanh(x) for x not NaN (`vmath` emits the same operations), fdlibm's arrangement on
/// one expm1, kept as head + tail (t): for |x| < 1, t = expm1(−2|x|) and tanh|x| =
/// −t/(t + 2); above, t = expm1(2|x|) (2|x| capped at EXPM1_FAST_LIMIT, where tanh is 1
/// in f64) and tanh|x| = 1 − 2/(t + 2). The quotient is corrected for the roundings of
/// t, of t + 2 (a two-sum: |2| ≥ |t| below the split, |t| ≥ 2 above it) and of the
/// division. The sign is copied from x (so −0 stays −0).
#[inline(always)]
pub fn tanh_in_range(x: f64) -> f64 {
    let a = x.abs();
    let small = a < TANH_SPLIT;
    let two_a = 2.0 * a;
    let two_a = if two_a > EXPM1_FAST_LIMIT {
        EXPM1_FAST_LIMIT
    } else {
        two_a
    };
    let u = if small { -two_a } else { two_a };
    let (t, t_lo) = expm1_parts(u);
    let den = t + 2.0;
    let den_err = if small {
        (2.0 - den) + t
    } else {
        (t - den) + 2.0
    };
    let den_lo = den_err + t_lo;
    // n/den for n = −t (below) or 2 (above): q = n·(1/den), then corrected by (n − q·den
    // exactly, n's and den's tails)·(1/den) — one division.
    let (n, n_lo) = if small { (-t, -t_lo) } else { (2.0, 0.0) };
    let inv = 1.0 / den;
    let q = n * inv;
    let rem = (-q).mul_add(den, n);
    let q = (-q).mul_add(den_lo, rem + n_lo).mul_add(inv, q);
    let z = if small { q } else { 1.0 - q };
    z.copysign(x)
}

/// Where tanh switches from −t/(t + 2) to 1 − 2/(t + 2).
pub const TANH_SPLIT: f64 = 1.0;

/// Whether `tanh_in_range` applies: x is not NaN.
#[inline(always)]
pub fn tanh_in_range_ok(x: f64) -> bool {
    !x.is_nan()
}

/// Whether `log_in_range` applies: x normal, positive and finite (false for NaN).
#[inline(always)]
pub fn log_in_range_ok(x: f64) -> bool {
    (f64::MIN_POSITIVE..f64::INFINITY).contains(&x)
}

/// The pieces of ln x for x normal, positive and finite (`vmath` emits the same
/// operations): x = 2^e·m with m in [√½, √2), f = m − 1, hfsq = f²/2 and t = s·(hfsq +
/// R(s²)) with s = f/(2 + f), so that ln m = f − hfsq + t.
#[inline(always)]
fn log_parts(x: f64) -> (f64, f64, f64, f64) {
    let bits = x.to_bits();
    let m = f64::from_bits((bits & MANTISSA_BITS) | 1f64.to_bits());
    let biased = f64::from_bits((bits >> 52) | TWO52_BITS) - f64::from_bits(TWO52_BITS);
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { m * 0.5 } else { m };
    let e = biased - if big { 1022.0 } else { 1023.0 };
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let mut acc = LOG_POLY[LOG_POLY.len() - 1];
    let mut k = LOG_POLY.len() - 1;
    while k > 0 {
        k -= 1;
        acc = acc.mul_add(z, LOG_POLY[k]);
    }
    let r = z * acc;
    let hfsq = 0.5 * f * f;
    (e, f, hfsq, s * (hfsq + r))
}

/// ln(x) for x normal, positive and finite (`vmath` emits the same operations).
#[inline(always)]
pub fn log_in_range(x: f64) -> f64 {
    let (e, f, hfsq, t) = log_parts(x);
    e * LN2_HI - ((hfsq - (t + e * LN2_LO)) - f)
}

/// 1/ln 2 in two parts: the first 32 bits, and the rest.
pub const INV_LN2_HI: f64 = f64::from_bits(0x3ff7_1547_6520_0000);
pub const INV_LN2_LO: f64 = f64::from_bits(0x3de7_05fc_2eef_a200);

/// log2(x) for x normal, positive and finite (`vmath` emits the same operations): e +
/// ln(m)/ln 2 with ln m = f − hfsq + t split as hi (f − hfsq to 32 bits, so hi·INV_LN2_HI
/// is exact) + lo, and e added last with its rounding error kept.
#[inline(always)]
pub fn log2_in_range(x: f64) -> f64 {
    let (e, f, hfsq, t) = log_parts(x);
    let hi = f64::from_bits((f - hfsq).to_bits() & 0xffff_ffff_0000_0000);
    let lo = ((f - hi) - hfsq) + t;
    let val_hi = hi * INV_LN2_HI;
    let val_lo = (lo + hi) * INV_LN2_LO + lo * INV_LN2_HI;
    let w = e + val_hi;
    let val_lo = val_lo + ((e - w) + val_hi);
    val_lo + w
}

/// ln 2 minus its f64 rounding (`std::f64::consts::LN_2`).
pub const LN2_TAIL: f64 = 2.319_046_813_846_299_6e-17;
/// Beyond this |x|, exp2 is libm's (2^k stays a normal number within it).
pub const EXP2_FAST_LIMIT: f64 = 1022.0;

/// 2^x for |x| ≤ EXP2_FAST_LIMIT (`vmath` emits the same operations): k = round(x), r =
/// x − k (exact, |r| ≤ 1/2), y = r·ln 2 with its rounding error (and ln 2's) kept as y_lo;
/// e^y by exp's polynomial, corrected by e^y·y_lo; then scaled by 2^k.
#[inline(always)]
pub fn exp2_in_range(x: f64) -> f64 {
    let t = x + SHIFTER;
    let k = t - SHIFTER;
    let r = x - k;
    let y = r * std::f64::consts::LN_2;
    let y_lo = r.mul_add(std::f64::consts::LN_2, -y) + r * LN2_TAIL;
    let p = exp_polynomial(y, &EXP_POLY);
    p.mul_add(y_lo, p) * pow2(k)
}

/// Whether `exp2_in_range` applies (false for NaN).
#[inline(always)]
pub fn exp2_in_range_ok(x: f64) -> bool {
    x.abs() <= EXP2_FAST_LIMIT
}

/// sin(x) (`cos = false`) or cos(x) for |x| ≤ TRIG_FAST_LIMIT (no libm fallback here).
#[inline(always)]
pub fn sin_cos_reduced(x: f64, cos: bool, s: &[f64; 8], c: &[f64; 7]) -> f64 {
    let t = x.mul_add(std::f64::consts::FRAC_2_PI, SHIFTER);
    let qf = t - SHIFTER;
    let q = t
        .to_bits()
        .wrapping_sub(SHIFTER.to_bits())
        .wrapping_add(cos as u64);
    let neg_q = -qf;
    let r = neg_q.mul_add(PIO2_1, x);
    let r = neg_q.mul_add(PIO2_2, r);
    let r = neg_q.mul_add(PIO2_3, r);
    let r2 = r * r;
    let sin_r = (r2 * r).mul_add(estrin(r2, s), r);
    let head = r2.mul_add(-0.5, 1.0);
    let cos_r = (r2 * r2).mul_add(estrin(r2, c), head);
    let v = if q & 1 != 0 { cos_r } else { sin_r };
    f64::from_bits(v.to_bits() ^ ((q & 2) << 62))
}

/// |x| ≤ EXP_FAST_LIMIT (false for NaN).
#[inline(always)]
fn in_fast_range(x: f64) -> bool {
    x.abs() <= EXP_FAST_LIMIT
}

/// Whether `log1p_in_range` applies: x > −1 and finite (false for NaN).
#[inline(always)]
pub fn log1p_in_range_ok(x: f64) -> bool {
    x > -1.0 && x < f64::INFINITY
}

/// ln(1 + x) for x > −1 and finite (`vmath` emits the same operations).
#[inline(always)]
pub fn log1p_in_range(x: f64) -> f64 {
    let c = 1.0 + x;
    let correction = (x - (c - 1.0)) / c;
    log_in_range(c) + correction
}

/// The sigmoid of `x` given e = exp(−|x|): the reference's two branches
/// (`vmath` emits the same operations).
#[inline(always)]
pub fn sigmoid_from(x: f64, e: f64) -> f64 {
    let den = 1.0 + e;
    if x >= 0.0 {
        1.0 / den
    } else {
        e / den
    }
}

/// softplus(x) given l = log1p(exp(−|x|)) (`vmath` emits the same operations).
#[inline(always)]
pub fn softplus_from(x: f64, l: f64) -> f64 {
    let positive = if x > 0.0 { x } else { 0.0 };
    positive + l
}

/// `fast` for every element (a branch-free pass the compiler vectorises, which also notes
/// whether any element fails `ok`), then `slow` for the elements that do, if any.
#[inline(always)]
fn map_with_fallback(
    src: &[f64],
    dst: &mut [f64],
    fast: impl Fn(f64) -> f64,
    ok: impl Fn(f64) -> bool,
    slow: impl Fn(f64) -> f64,
) {
    let mut outside = false;
    for (d, x) in dst.iter_mut().zip(src) {
        *d = fast(*x);
        outside |= !ok(*x);
    }
    if outside {
        for (d, x) in dst.iter_mut().zip(src) {
            if !ok(*x) {
                *d = slow(*x);
            }
        }
    }
}

/// The strip length the composite array functions work in (the JIT's strips are this
/// long).
const CHUNK: usize = 512;

/// For each chunk of `src`: e = exp(−|x|), then `finish(x, e, out)`.
#[inline(always)]
fn with_exp_of_minus_abs(
    src: &[f64],
    dst: &mut [f64],
    finish: impl Fn(&[f64], &mut [f64], &mut [f64]),
) {
    let mut neg = [0.0f64; CHUNK];
    let mut e = [0.0f64; CHUNK];
    for (s, d) in src.chunks(CHUNK).zip(dst.chunks_mut(CHUNK)) {
        let n = s.len().min(d.len());
        for (a, x) in neg[..n].iter_mut().zip(s) {
            *a = -x.abs();
        }
        exp_array(&neg[..n], &mut e[..n]);
        finish(s, &mut e[..n], &mut d[..n]);
    }
}

/// The widest vector instructions the array functions use on this CPU.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum SimdLevel {
    /// Plain Rust (whatever the target's baseline is).
    Baseline,
    /// AVX2 + FMA: four doubles per instruction.
    Avx2,
    /// AVX-512 F/VL/DQ: eight doubles per instruction.
    Avx512,
}

/// What this CPU supports (detected once). Setting `TL_NO_AVX512` in the environment
/// before the first call stops at AVX2 (for comparing the two on one machine).
pub fn simd_level() -> SimdLevel {
    static LEVEL: std::sync::OnceLock<SimdLevel> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if std::env::var_os("TL_NO_AVX512").is_none()
                && has!("avx512f")
                && has!("avx512vl")
                && has!("avx512dq")
                && has!("fma")
            {
                return SimdLevel::Avx512;
            }
            if has!("avx2") && has!("fma") {
                return SimdLevel::Avx2;
            }
        }
        SimdLevel::Baseline
    })
}

/// `$vis fn $name(level: SimdLevel, args…)` running `$body` compiled for `level`'s vectors
/// (AVX-512, AVX2 + FMA, or the baseline), or for the widest this CPU has if that is
/// narrower (`simd_level`). The body is the same operations at every width, so every
/// width gives the same results. Items the body uses come from the module of the call.
macro_rules! simd_versions {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        $vis fn $name(level: $crate::vector_math::SimdLevel, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
            fn avx512($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) $(-> $ret)? $body
            fn baseline($($arg: $ty),*) $(-> $ret)? $body
            use $crate::vector_math::{simd_level, SimdLevel};
            match level.min(simd_level()) {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU supports AVX-512 F/VL/DQ and FMA (`simd_level`).
                SimdLevel::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU supports AVX2 and FMA (`simd_level`).
                SimdLevel::Avx2 => unsafe { avx2($($arg),*) },
                _ => baseline($($arg),*),
            }
        }
    };
}
pub(crate) use simd_versions;

/// An array function `$name(src, dst)` running `$body` at the CPU's widest vectors;
/// `$name::at(level, src, dst)` runs a given width (tests compare them).
macro_rules! array_function {
    ($(#[$doc:meta])* $name:ident, |$src:ident, $dst:ident| $body:expr) => {
        /// `$name` compiled for each vector width.
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            simd_versions!(
                /// The version for `level`, or the widest this CPU has if narrower.
                pub(super) fn at($src: &[f64], $dst: &mut [f64]) { $body }
            );
        }

        $(#[$doc])*
        pub fn $name($src: &[f64], $dst: &mut [f64]) {
            $name::at(SimdLevel::Avx512, $src, $dst)
        }
    };
}

simd_versions!(
    /// Every element of `xs` rounded to float32 precision (kept as f64), in place.
    fn round_f32_at(xs: &mut [f64]) {
        for x in xs.iter_mut() {
            *x = *x as f32 as f64;
        }
    }
);

/// Every element of `xs` rounded to float32 precision (kept as f64), in place, at the
/// CPU's widest vectors: float32 results of the array functions, as the reference rounds
/// them.
pub fn round_f32_in_place(xs: &mut [f64]) {
    round_f32_at(SimdLevel::Avx512, xs)
}

array_function!(
    /// e^x of every element of `src` into `dst` (the same length).
    exp_array,
    |src, dst| {
        let c = EXP_POLY;
        map_with_fallback(src, dst, |x| exp_in_range(x, &c), in_fast_range, |x| exp(x, &c))
    }
);

array_function!(
    /// ln of every element of `src` into `dst` (the same length); libm's where x is not
    /// normal, positive and finite.
    log_array,
    |src, dst| map_with_fallback(src, dst, log_in_range, log_in_range_ok, f64::ln)
);

array_function!(
    /// ln(1 + x) of every element of `src` into `dst` (the same length); libm's where x
    /// is not above −1 and finite.
    log1p_array,
    |src, dst| map_with_fallback(src, dst, log1p_in_range, log1p_in_range_ok, f64::ln_1p)
);

array_function!(
    /// sin of every element of `src` into `dst` (the same length); libm's beyond
    /// TRIG_FAST_LIMIT.
    sin_array,
    |src, dst| {
        let (s, c) = sin_cos_coefficients();
        let ok = |x: f64| x.abs() <= TRIG_FAST_LIMIT;
        map_with_fallback(src, dst, |x| sin_cos_reduced(x, false, &s, &c), ok, f64::sin)
    }
);

array_function!(
    /// cos of every element of `src` into `dst` (the same length); libm's beyond
    /// TRIG_FAST_LIMIT.
    cos_array,
    |src, dst| {
        let (s, c) = sin_cos_coefficients();
        let ok = |x: f64| x.abs() <= TRIG_FAST_LIMIT;
        map_with_fallback(src, dst, |x| sin_cos_reduced(x, true, &s, &c), ok, f64::cos)
    }
);

array_function!(
    /// e^x − 1 of every element of `src` into `dst` (the same length); libm's beyond
    /// EXPM1_FAST_LIMIT.
    expm1_array,
    |src, dst| map_with_fallback(src, dst, expm1_in_range, expm1_in_range_ok, f64::exp_m1)
);

array_function!(
    /// tanh of every element of `src` into `dst` (the same length).
    tanh_array,
    |src, dst| map_with_fallback(src, dst, tanh_in_range, tanh_in_range_ok, f64::tanh)
);

array_function!(
    /// 2^x of every element of `src` into `dst` (the same length); libm's beyond
    /// EXP2_FAST_LIMIT.
    exp2_array,
    |src, dst| map_with_fallback(src, dst, exp2_in_range, exp2_in_range_ok, f64::exp2)
);

array_function!(
    /// log2 of every element of `src` into `dst` (the same length); libm's where x is not
    /// normal, positive and finite.
    log2_array,
    |src, dst| map_with_fallback(src, dst, log2_in_range, log_in_range_ok, f64::log2)
);

array_function!(
    /// The logistic sigmoid of every element of `src` into `dst` (the same length).
    sigmoid_array,
    |src, dst| with_exp_of_minus_abs(src, dst, |x, e, out| {
        for ((o, x), e) in out.iter_mut().zip(x).zip(e.iter()) {
            *o = sigmoid_from(*x, *e);
        }
    })
);

array_function!(
    /// softplus, log(1 + exp(x)), of every element of `src` into `dst` (the same length).
    softplus_array,
    |src, dst| with_exp_of_minus_abs(src, dst, |x, e, out| {
        log1p_array(e, out);
        for (o, x) in out.iter_mut().zip(x) {
            *o = softplus_from(*x, *o);
        }
    })
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_polynomial_is_within_an_ulp_of_libm_on_its_interval() {
        let c = exp_coefficients();
        assert_eq!(c, EXP_POLY, "compile-time and run-time evaluation agree");
        let half = std::f64::consts::LN_2 / 2.0;
        for i in 0..=10_000 {
            let r = -half + 2.0 * half * i as f64 / 10_000.0;
            let (got, want) = (exp_polynomial(r, &c), r.exp());
            assert!(
                (got - want).abs() <= 1.5 * f64::EPSILON * want,
                "e^{r}: {got} vs {want}"
            );
        }
        assert_eq!(exp_polynomial(0.0, &c), 1.0);
    }

    #[test]
    fn log_is_within_two_ulp_of_libm_and_its_array_version_equal() {
        let mut xs: Vec<f64> = (1..20_000).map(|i| i as f64 * 0.000_731).collect();
        xs.extend((-60..60).map(|e| 1.37f64 * 2f64.powi(e)));
        xs.extend([
            1.0,
            std::f64::consts::SQRT_2,
            0.999_999_999,
            1.000_000_001,
            f64::MAX,
        ]);
        let mut out = vec![0.0; xs.len()];
        log_array(&xs, &mut out);
        for (x, o) in xs.iter().zip(&out) {
            assert_eq!(
                o.to_bits(),
                log_in_range(*x).to_bits(),
                "array vs scalar at {x}"
            );
            let want = x.ln();
            let ulps = (o.to_bits() as i64 - want.to_bits() as i64).unsigned_abs();
            assert!(
                ulps <= 2 || (o - want).abs() <= f64::EPSILON * 1e-3,
                "ln({x}): {o} vs {want}"
            );
        }
        let special = [
            0.0,
            -0.0,
            -1.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1e-310,
        ];
        let mut out = vec![0.0; special.len()];
        log_array(&special, &mut out);
        for (x, o) in special.iter().zip(&out) {
            let want = x.ln();
            assert!(
                o.to_bits() == want.to_bits() || (o.is_nan() && want.is_nan()),
                "ln({x})"
            );
        }
    }

    #[test]
    fn every_vector_width_gives_the_same_bits() {
        let mut xs: Vec<f64> = (0..3000).map(|i| (i as f64 - 1500.0) * 0.4871).collect();
        xs.extend((0..200).map(|i| 1e-300 * 3f64.powi(i)));
        xs.extend([
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-310,
            -1.0,
        ]);
        type AtLevel = fn(SimdLevel, &[f64], &mut [f64]);
        let functions: [(&str, AtLevel); 11] = [
            ("exp", exp_array::at),
            ("log", log_array::at),
            ("log1p", log1p_array::at),
            ("sin", sin_array::at),
            ("cos", cos_array::at),
            ("sigmoid", sigmoid_array::at),
            ("softplus", softplus_array::at),
            ("expm1", expm1_array::at),
            ("tanh", tanh_array::at),
            ("exp2", exp2_array::at),
            ("log2", log2_array::at),
        ];
        for (name, at) in functions {
            let mut want = vec![0.0; xs.len()];
            at(SimdLevel::Baseline, &xs, &mut want);
            for level in [SimdLevel::Avx2, SimdLevel::Avx512] {
                let mut got = vec![0.0; xs.len()];
                at(level, &xs, &mut got);
                for ((x, g), w) in xs.iter().zip(&got).zip(&want) {
                    assert!(
                        g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                        "{name}({x}) at {level:?}: {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn expm1_tanh_exp2_and_log2_are_within_two_ulp_of_libm() {
        fn ulps(a: f64, b: f64) -> u64 {
            if a == b || (a.is_nan() && b.is_nan()) {
                return 0;
            }
            (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
        }
        let mut xs: Vec<f64> = (-400_000..=400_000).map(|i| i as f64 * 1e-4).collect();
        xs.extend(
            (-1074..1024)
                .map(|e| 1.37f64 * 2f64.powi(e))
                .filter(|v| v.is_finite()),
        );
        xs.extend(
            (-1074..1024)
                .map(|e| -1.37f64 * 2f64.powi(e))
                .filter(|v| v.is_finite()),
        );
        xs.extend([
            0.0, -0.0, 40.0, -40.0, 39.99, 0.3465, 0.3466, 0.5, 1.0, -1.0, 710.0,
        ]);
        xs.extend([f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e-310, -1e-310]);
        let (mut got_e, mut got_t) = (vec![0.0; xs.len()], vec![0.0; xs.len()]);
        expm1_array(&xs, &mut got_e);
        tanh_array(&xs, &mut got_t);
        let (mut worst_e, mut worst_t) = ((0, 0.0), (0, 0.0));
        for (k, x) in xs.iter().enumerate() {
            let (e, t) = (ulps(got_e[k], x.exp_m1()), ulps(got_t[k], x.tanh()));
            if e > worst_e.0 {
                worst_e = (e, *x);
            }
            if t > worst_t.0 {
                worst_t = (t, *x);
            }
        }
        eprintln!(
            "expm1: {} ulp at {}; tanh: {} ulp at {}",
            worst_e.0, worst_e.1, worst_t.0, worst_t.1
        );
        assert!(worst_e.0 <= 2, "expm1: {} ulp at {}", worst_e.0, worst_e.1);
        assert!(worst_t.0 <= 2, "tanh: {} ulp at {}", worst_t.0, worst_t.1);
        let (mut got_2, mut got_l) = (vec![0.0; xs.len()], vec![0.0; xs.len()]);
        exp2_array(&xs, &mut got_2);
        log2_array(&xs, &mut got_l);
        let (mut worst_2, mut worst_l) = ((0, 0.0), (0, 0.0));
        for (k, x) in xs.iter().enumerate() {
            let (a, b) = (ulps(got_2[k], x.exp2()), ulps(got_l[k], x.log2()));
            if a > worst_2.0 {
                worst_2 = (a, *x);
            }
            if b > worst_l.0 {
                worst_l = (b, *x);
            }
        }
        assert!(worst_2.0 <= 2, "exp2: {} ulp at {}", worst_2.0, worst_2.1);
        assert!(worst_l.0 <= 2, "log2: {} ulp at {}", worst_l.0, worst_l.1);
        assert_eq!(
            got_t[xs
                .iter()
                .position(|v| v.to_bits() == (-0.0f64).to_bits())
                .unwrap()]
            .to_bits(),
            (-0.0f64).to_bits()
        );
    }

    #[test]
    fn estrin_matches_the_polynomial() {
        let coeffs = [1.0, 2.0, 3.0, 4.0, 5.0];
        let x = 0.5f64;
        let want = 1.0 + 2.0 * x + 3.0 * x * x + 4.0 * x.powi(3) + 5.0 * x.powi(4);
        assert!((estrin(x, &coeffs) - want).abs() < 1e-15);
    }

    #[test]
    fn array_versions_equal_the_scalar_definitions() {
        let mut xs: Vec<f64> = (0..1000).map(|i| (i as f64 - 500.0) * 0.731).collect();
        xs.extend([
            709.5,
            -740.0,
            -708.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
        ]);
        let mut out = vec![0.0; xs.len()];
        exp_array(&xs, &mut out);
        let coeffs = exp_coefficients();
        for (x, o) in xs.iter().zip(&out) {
            assert_eq!(o.to_bits(), exp(*x, &coeffs).to_bits(), "exp({x})");
            if x.abs() <= EXP_FAST_LIMIT {
                assert_eq!(
                    exp_in_range(*x, &coeffs).to_bits(),
                    o.to_bits(),
                    "in range {x}"
                );
            }
        }
        let mut nan = [0.0];
        exp_array(&[f64::NAN], &mut nan);
        assert!(nan[0].is_nan());
        let (s, c) = sin_cos_coefficients();
        sin_array(&xs, &mut out);
        for (x, o) in xs.iter().zip(&out) {
            let want = if x.abs() > TRIG_FAST_LIMIT {
                x.sin()
            } else {
                sin_cos_reduced(*x, false, &s, &c)
            };
            assert!(
                o.to_bits() == want.to_bits() || o.is_nan() && want.is_nan(),
                "sin({x})"
            );
        }
    }
}

//! Polynomial math emitted as Cranelift IR (DESIGN §11): exp, exp2, expm1, log, log2,
//! log1p, sigmoid, softplus, sin, cos and tanh on f64 or f64x2
//! values, so a kernel's vector body computes two elements per instruction instead of
//! calling libm per element, and its scalar tail computes exactly the same function.
//!
//! Owns: emitting the algorithms of `tensorlift_runtime::vector_math` (which holds their
//! definition and constants) operation for operation, so IR and array versions agree bit
//! for bit. Accuracy against libm is measured by
//! `tests/vmath_accuracy.rs` (at most 2 ulp over the whole domain, special values exact).
//! - exp: n = round(x / ln 2) by the 1.5·2^52 shifter trick; r = x − n·ln2 in two fma
//!   steps (ln 2 split hi/lo); e^r by a degree-11 polynomial (Chebyshev economization on
//!   |r| ≤ ln2/2, ~1e-17 relative) by second-order Horner. When every lane has |x| ≤ 708
//!   the result is scaled by 2^n built from the shifter sum's bits; otherwise x is clamped to [-750, 710] and scaled by
//!   2^⌊n/2⌋ · 2^(n−⌊n/2⌋), which gives correct overflow to inf and gradual underflow.
//! - sin, cos: q = round(x · 2/π); r = x − q·π/2 in three fma steps (π/2 split in three
//!   53-bit parts); sine and cosine polynomials on |r| ≤ π/4 (Taylor to degree 17/16), the
//!   quadrant selecting and negating them. Where |x| > 8192 the reduction would lose
//!   accuracy, so those values take libm per element (a branch per vector).

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, FuncRef, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

use tensorlift_runtime::vector_math::{
    sin_cos_coefficients, EXP2_FAST_LIMIT, EXPM1_FAST_LIMIT, EXPM1_POLY, EXP_HIGH, EXP_LOW,
    EXP_POLY, INV_LN2_HI, INV_LN2_LO, LN2_HI, LN2_LO, LN2_TAIL, LOG_POLY, MANTISSA_BITS, PIO2_1,
    PIO2_2, PIO2_3, SHIFTER, TANH_SPLIT, TRIG_FAST_LIMIT, TWO52_BITS,
};

/// Emits math on values of type `ty` (F64 or F64X2).
pub struct VMath<'a, 'b> {
    pub b: &'a mut FunctionBuilder<'b>,
    pub ty: Type,
}

impl VMath<'_, '_> {
    fn int_ty(&self) -> Type {
        if self.ty == types::F64X2 {
            types::I64X2
        } else {
            types::I64
        }
    }

    fn konst(&mut self, x: f64) -> Value {
        let c = self.b.ins().f64const(x);
        if self.ty == types::F64X2 {
            self.b.ins().splat(types::F64X2, c)
        } else {
            c
        }
    }

    fn int_konst(&mut self, x: i64) -> Value {
        let c = self.b.ins().iconst(types::I64, x);
        if self.ty == types::F64X2 {
            self.b.ins().splat(types::I64X2, c)
        } else {
            c
        }
    }

    fn bits_of(&mut self, v: Value) -> Value {
        let t = self.int_ty();
        self.b.ins().bitcast(t, MemFlagsData::new(), v)
    }

    fn float_of_bits(&mut self, v: Value) -> Value {
        self.b.ins().bitcast(self.ty, MemFlagsData::new(), v)
    }

    /// Exp's polynomial by second-order Horner (even and odd coefficients in r², then
    /// combined), the operations of `vector_math::exp_polynomial` in the same order.
    fn exp_polynomial(&mut self, r: Value, coeffs: &[f64]) -> Value {
        let n = coeffs.len();
        let s = self.b.ins().fmul(r, r);
        let mut even = self.konst(coeffs[n - 2]);
        let mut odd = self.konst(coeffs[n - 1]);
        let mut k = n - 2;
        while k > 0 {
            k -= 2;
            let (ce, co) = (self.konst(coeffs[k]), self.konst(coeffs[k + 1]));
            even = self.b.ins().fma(even, s, ce);
            odd = self.b.ins().fma(odd, s, co);
        }
        self.b.ins().fma(odd, r, even)
    }

    /// Σ coeffs[k] · x^k (coeffs from the constant term up) by Estrin's scheme: pairs
    /// `c[2k] + c[2k+1]·x` combined with x², x⁴, …, the operations of
    /// `vector_math::estrin`.
    fn estrin(&mut self, x: Value, coeffs: &[f64]) -> Value {
        let mut terms: Vec<Value> = coeffs
            .chunks(2)
            .map(|pair| {
                let c0 = self.konst(pair[0]);
                match pair.get(1) {
                    Some(c1) => {
                        let c1 = self.konst(*c1);
                        self.b.ins().fma(c1, x, c0)
                    }
                    None => c0,
                }
            })
            .collect();
        let mut power = self.b.ins().fmul(x, x);
        while terms.len() > 1 {
            terms = terms
                .chunks(2)
                .map(|pair| match pair {
                    [lo, hi] => self.b.ins().fma(*hi, power, *lo),
                    _ => pair[0],
                })
                .collect();
            if terms.len() > 1 {
                power = self.b.ins().fmul(power, power);
            }
        }
        terms[0]
    }

    fn select(&mut self, cond: Value, a: Value, b: Value) -> Value {
        if self.ty == types::F64X2 {
            let mask = self
                .b
                .ins()
                .bitcast(types::F64X2, MemFlagsData::new(), cond);
            self.b.ins().bitselect(mask, a, b)
        } else {
            self.b.ins().select(cond, a, b)
        }
    }

    /// For `t = v + SHIFTER` (v integral, |v| < 2^51): v as an integer.
    fn shifted_int(&mut self, t: Value) -> Value {
        let bits = self.bits_of(t);
        let base = self.int_konst(SHIFTER.to_bits() as i64);
        self.b.ins().isub(bits, base)
    }

    /// 2^k for an integral float k in [-1022, 1023].
    fn pow2(&mut self, k: Value) -> Value {
        let shifter = self.konst(SHIFTER);
        let t = self.b.ins().fadd(k, shifter);
        let n = self.shifted_int(t);
        let bias = self.int_konst(1023);
        let e = self.b.ins().iadd(n, bias);
        let bits = self.b.ins().ishl_imm_u(e, 52);
        self.float_of_bits(bits)
    }

    /// e^x: a short path when every lane has |x| ≤ 708 (no overflow, no subnormal
    /// result: one power-of-two scale), the general clamped path otherwise (also for NaN).
    pub fn exp(&mut self, x: Value) -> Value {
        let ax = self.b.ins().fabs(x);
        let limit = self.konst(708.0);
        let ok = self.b.ins().fcmp(FloatCC::LessThanOrEqual, ax, limit);
        self.fast_or_slow(
            ok,
            |g| {
                let (t, p) = g.exp_reduced(x);
                // 2^n from the shifter sum's low bits: (n + 1023) << 52.
                let bits = g.bits_of(t);
                let bias = g.int_konst(1023 - SHIFTER.to_bits() as i64);
                let e = g.b.ins().iadd(bits, bias);
                let e = g.b.ins().ishl_imm_u(e, 52);
                let scale = g.float_of_bits(e);
                g.b.ins().fmul(p, scale)
            },
            |g| {
                let (lo, hi) = (g.konst(EXP_LOW), g.konst(EXP_HIGH));
                // Clamp with compare-and-select (NaN compares false and stays).
                let below = g.b.ins().fcmp(FloatCC::LessThan, x, lo);
                let xc = g.select(below, lo, x);
                let above = g.b.ins().fcmp(FloatCC::GreaterThan, xc, hi);
                let xc = g.select(above, hi, xc);
                let (t, p) = g.exp_reduced(xc);
                let shifter = g.konst(SHIFTER);
                let n = g.b.ins().fsub(t, shifter);
                let half = g.konst(0.5);
                let n_half = g.b.ins().fmul(n, half);
                let n1 = g.b.ins().floor(n_half);
                let n2 = g.b.ins().fsub(n, n1);
                let s1 = g.pow2(n1);
                let s2 = g.pow2(n2);
                let p = g.b.ins().fmul(p, s1);
                g.b.ins().fmul(p, s2)
            },
        )
    }

    /// `fast(self)` when every lane of `ok` (a lane mask, or a bool) holds, else
    /// `slow(self)`, each emitted in its own block; the value of the one that ran.
    fn fast_or_slow(
        &mut self,
        ok: Value,
        fast: impl FnOnce(&mut Self) -> Value,
        slow: impl FnOnce(&mut Self) -> Value,
    ) -> Value {
        let all_ok = if self.ty == types::F64X2 {
            self.b.ins().vall_true(ok)
        } else {
            ok
        };
        let (fast_block, slow_block, done) = (
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
        );
        self.b.append_block_param(done, self.ty);
        self.b.ins().brif(all_ok, fast_block, &[], slow_block, &[]);
        self.b.switch_to_block(fast_block);
        self.b.seal_block(fast_block);
        let v = fast(self);
        self.b.ins().jump(done, &[v.into()]);
        self.b.switch_to_block(slow_block);
        self.b.seal_block(slow_block);
        let v = slow(self);
        self.b.ins().jump(done, &[v.into()]);
        self.b.switch_to_block(done);
        self.b.seal_block(done);
        self.b.block_params(done)[0]
    }

    /// For e^x: `t = x·log2(e) + SHIFTER` (n = round(x / ln 2) in its low bits) and
    /// `e^r` for r = x − n·ln 2.
    fn exp_reduced(&mut self, x: Value) -> (Value, Value) {
        let log2e = self.konst(std::f64::consts::LOG2_E);
        let shifter = self.konst(SHIFTER);
        let t = self.b.ins().fma(x, log2e, shifter);
        let n = self.b.ins().fsub(t, shifter);
        let (ln2_hi, ln2_lo) = (self.konst(-LN2_HI), self.konst(-LN2_LO));
        let r = self.b.ins().fma(n, ln2_hi, x);
        let r = self.b.ins().fma(n, ln2_lo, r);
        (t, self.exp_polynomial(r, &EXP_POLY))
    }

    /// The logistic sigmoid: e = exp(−|x|), then 1/(1+e) for x ≥ 0 and e/(1+e) below
    /// (`vector_math::sigmoid_from`).
    pub fn sigmoid(&mut self, x: Value) -> Value {
        let ax = self.b.ins().fabs(x);
        let neg = self.b.ins().fneg(ax);
        let e = self.exp(neg);
        let one = self.konst(1.0);
        let den = self.b.ins().fadd(one, e);
        let pos = self.b.ins().fdiv(one, den);
        let below = self.b.ins().fdiv(e, den);
        let zero = self.konst(0.0);
        let ge = self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, x, zero);
        self.select(ge, pos, below)
    }

    /// ln(x): the polynomial where x is normal, positive and finite, `libm` (one lane at a
    /// time) elsewhere — zero, negative, subnormal, infinite, NaN.
    pub fn log(&mut self, x: Value, libm: FuncRef) -> Value {
        let ok = self.normal_positive(x);
        self.poly_or_libm(ok, x, libm, Self::log_in_range)
    }

    /// ln(1 + x): `log_in_range(1 + x)` plus the first-order correction of the rounding of
    /// 1 + x where x > −1 and finite, `libm` (lane by lane) elsewhere
    /// (`vector_math::log1p_in_range`).
    pub fn log1p(&mut self, x: Value, libm: FuncRef) -> Value {
        let (minus_one, inf) = (self.konst(-1.0), self.konst(f64::INFINITY));
        let above = self.b.ins().fcmp(FloatCC::GreaterThan, x, minus_one);
        let below = self.b.ins().fcmp(FloatCC::LessThan, x, inf);
        let ok = self.b.ins().band(above, below);
        self.poly_or_libm(ok, x, libm, Self::log1p_in_range)
    }

    fn log1p_in_range(&mut self, x: Value) -> Value {
        let one = self.konst(1.0);
        let c = self.b.ins().fadd(one, x);
        let c_minus_one = self.b.ins().fsub(c, one);
        let lost = self.b.ins().fsub(x, c_minus_one);
        let correction = self.b.ins().fdiv(lost, c);
        let l = self.log_in_range(c);
        self.b.ins().fadd(l, correction)
    }

    /// softplus: max(x, 0) + log1p(exp(−|x|)) (`vector_math::softplus_from`); `libm` is
    /// log1p's fallback.
    pub fn softplus(&mut self, x: Value, libm: FuncRef) -> Value {
        let ax = self.b.ins().fabs(x);
        let neg = self.b.ins().fneg(ax);
        let e = self.exp(neg);
        let l = self.log1p(e, libm);
        let zero = self.konst(0.0);
        let positive = self.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
        let part = self.select(positive, x, zero);
        self.b.ins().fadd(part, l)
    }

    /// e^x − 1: `vector_math::expm1_parts` where every lane has |x| ≤ EXPM1_FAST_LIMIT,
    /// `libm` (lane by lane) where not — beyond it, and NaN.
    pub fn expm1(&mut self, x: Value, libm: FuncRef) -> Value {
        let ax = self.b.ins().fabs(x);
        let limit = self.konst(EXPM1_FAST_LIMIT);
        let ok = self.b.ins().fcmp(FloatCC::LessThanOrEqual, ax, limit);
        self.fast_or_slow(
            ok,
            |g| g.expm1_parts(x).0,
            |g| {
                let poly = g.expm1_parts(x).0;
                let lib = g.per_lane(libm, x);
                g.select(ok, poly, lib)
            },
        )
    }

    /// `vector_math::expm1_parts`, operation for operation: e^x − 1 as (rounded sum,
    /// what the rounding lost).
    fn expm1_parts(&mut self, x: Value) -> (Value, Value) {
        let log2e = self.konst(std::f64::consts::LOG2_E);
        let shifter = self.konst(SHIFTER);
        let t = self.b.ins().fma(x, log2e, shifter);
        let k = self.b.ins().fsub(t, shifter);
        let neg_ln2_hi = self.konst(-LN2_HI);
        let hi = self.b.ins().fma(k, neg_ln2_hi, x);
        let ln2_lo = self.konst(LN2_LO);
        let lo = self.b.ins().fmul(k, ln2_lo);
        let r = self.b.ins().fsub(hi, lo);
        let hi_minus_r = self.b.ins().fsub(hi, r);
        let c = self.b.ins().fsub(hi_minus_r, lo);
        let q = self.estrin(r, &EXPM1_POLY);
        let r2 = self.b.ins().fmul(r, r);
        let small = self.b.ins().fma(r2, q, c);
        let scale = self.pow2(k);
        let one = self.konst(1.0);
        let a = self.b.ins().fmul(scale, r);
        let b = self.b.ins().fsub(scale, one);
        let head = self.b.ins().fadd(a, b);
        let b_part = self.b.ins().fsub(head, a);
        let a_part = self.b.ins().fsub(head, b_part);
        let a_err = self.b.ins().fsub(a, a_part);
        let b_err = self.b.ins().fsub(b, b_part);
        let err = self.b.ins().fadd(a_err, b_err);
        let tail = self.b.ins().fma(scale, small, err);
        let sum = self.b.ins().fadd(head, tail);
        let kept = self.b.ins().fsub(sum, head);
        let lost = self.b.ins().fsub(tail, kept);
        (sum, lost)
    }

    /// tanh: `vector_math::tanh_in_range` where every lane is a number, `libm` (lane by
    /// lane) for NaN lanes.
    pub fn tanh(&mut self, x: Value, libm: FuncRef) -> Value {
        let ok = self.b.ins().fcmp(FloatCC::Equal, x, x);
        self.poly_or_libm(ok, x, libm, Self::tanh_in_range)
    }

    /// `vector_math::tanh_in_range`, operation for operation.
    fn tanh_in_range(&mut self, x: Value) -> Value {
        let a = self.b.ins().fabs(x);
        let split = self.konst(TANH_SPLIT);
        let small = self.b.ins().fcmp(FloatCC::LessThan, a, split);
        let two = self.konst(2.0);
        let two_a = self.b.ins().fmul(two, a);
        let limit = self.konst(EXPM1_FAST_LIMIT);
        let over = self.b.ins().fcmp(FloatCC::GreaterThan, two_a, limit);
        let two_a = self.select(over, limit, two_a);
        let neg = self.b.ins().fneg(two_a);
        let u = self.select(small, neg, two_a);
        let (t, t_lo) = self.expm1_parts(u);
        let den = self.b.ins().fadd(t, two);
        let two_minus_den = self.b.ins().fsub(two, den);
        let err_small = self.b.ins().fadd(two_minus_den, t);
        let t_minus_den = self.b.ins().fsub(t, den);
        let err_big = self.b.ins().fadd(t_minus_den, two);
        let den_err = self.select(small, err_small, err_big);
        let den_lo = self.b.ins().fadd(den_err, t_lo);
        let neg_t = self.b.ins().fneg(t);
        let n = self.select(small, neg_t, two);
        let neg_t_lo = self.b.ins().fneg(t_lo);
        let zero = self.konst(0.0);
        let n_lo = self.select(small, neg_t_lo, zero);
        let one = self.konst(1.0);
        let inv = self.b.ins().fdiv(one, den);
        let q = self.b.ins().fmul(n, inv);
        let neg_q = self.b.ins().fneg(q);
        let rem = self.b.ins().fma(neg_q, den, n);
        let rem = self.b.ins().fadd(rem, n_lo);
        let corr = self.b.ins().fma(neg_q, den_lo, rem);
        let q = self.b.ins().fma(corr, inv, q);
        let one_minus_q = self.b.ins().fsub(one, q);
        let z = self.select(small, q, one_minus_q);
        // copysign(z, x) in bits (x64 has no vector fcopysign).
        let (zb, xb) = (self.bits_of(z), self.bits_of(x));
        let magnitude = self.int_konst(i64::MAX);
        let sign = self.int_konst(i64::MIN);
        let zb = self.b.ins().band(zb, magnitude);
        let xb = self.b.ins().band(xb, sign);
        let bits = self.b.ins().bor(zb, xb);
        self.float_of_bits(bits)
    }

    /// Lanes where x is normal, positive and finite (`vector_math::log_in_range_ok`).
    fn normal_positive(&mut self, x: Value) -> Value {
        let (lo, inf) = (self.konst(f64::MIN_POSITIVE), self.konst(f64::INFINITY));
        let above = self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, x, lo);
        let below = self.b.ins().fcmp(FloatCC::LessThan, x, inf);
        self.b.ins().band(above, below)
    }

    /// `poly(x)` when every lane of `ok` holds; otherwise, lane by lane, `poly` where `ok`
    /// holds and `libm` where it does not (so a value never depends on its neighbour).
    fn poly_or_libm(
        &mut self,
        ok: Value,
        x: Value,
        libm: FuncRef,
        poly: fn(&mut Self, Value) -> Value,
    ) -> Value {
        self.fast_or_slow(
            ok,
            |g| poly(g, x),
            |g| {
                let p = poly(g, x);
                let lib = g.per_lane(libm, x);
                g.select(ok, p, lib)
            },
        )
    }

    /// `libm` applied to each lane of `x`.
    fn per_lane(&mut self, libm: FuncRef, x: Value) -> Value {
        if self.ty != types::F64X2 {
            let call = self.b.ins().call(libm, &[x]);
            return self.b.inst_results(call)[0];
        }
        let mut out = self.konst(0.0);
        for lane in 0..2u8 {
            let xl = self.b.ins().extractlane(x, lane);
            let call = self.b.ins().call(libm, &[xl]);
            let r = self.b.inst_results(call)[0];
            out = self.b.ins().insertlane(out, r, lane);
        }
        out
    }

    /// `vector_math::log_in_range`, operation for operation.
    fn log_in_range(&mut self, x: Value) -> Value {
        let (e, f, hfsq, t) = self.log_parts(x);
        let ln2_lo = self.konst(LN2_LO);
        let elo = self.b.ins().fmul(e, ln2_lo);
        let t = self.b.ins().fadd(t, elo);
        let t = self.b.ins().fsub(hfsq, t);
        let t = self.b.ins().fsub(t, f);
        let ln2_hi = self.konst(LN2_HI);
        let ehi = self.b.ins().fmul(e, ln2_hi);
        self.b.ins().fsub(ehi, t)
    }

    /// log2(x): `vector_math::log2_in_range` where x is normal, positive and finite,
    /// `libm` (lane by lane) elsewhere.
    pub fn log2(&mut self, x: Value, libm: FuncRef) -> Value {
        let ok = self.normal_positive(x);
        self.poly_or_libm(ok, x, libm, Self::log2_in_range)
    }

    /// `vector_math::log2_in_range`, operation for operation.
    fn log2_in_range(&mut self, x: Value) -> Value {
        let (e, f, hfsq, t) = self.log_parts(x);
        let d = self.b.ins().fsub(f, hfsq);
        let bits = self.bits_of(d);
        let mask = self.int_konst(0xffff_ffff_0000_0000_u64 as i64);
        let hi_bits = self.b.ins().band(bits, mask);
        let hi = self.float_of_bits(hi_bits);
        let f_minus_hi = self.b.ins().fsub(f, hi);
        let lo = self.b.ins().fsub(f_minus_hi, hfsq);
        let lo = self.b.ins().fadd(lo, t);
        let (inv_hi, inv_lo) = (self.konst(INV_LN2_HI), self.konst(INV_LN2_LO));
        let val_hi = self.b.ins().fmul(hi, inv_hi);
        let lo_plus_hi = self.b.ins().fadd(lo, hi);
        let a = self.b.ins().fmul(lo_plus_hi, inv_lo);
        let b = self.b.ins().fmul(lo, inv_hi);
        let val_lo = self.b.ins().fadd(a, b);
        let w = self.b.ins().fadd(e, val_hi);
        let e_minus_w = self.b.ins().fsub(e, w);
        let lost = self.b.ins().fadd(e_minus_w, val_hi);
        let val_lo = self.b.ins().fadd(val_lo, lost);
        self.b.ins().fadd(val_lo, w)
    }

    /// 2^x: `vector_math::exp2_in_range` where every lane has |x| ≤ EXP2_FAST_LIMIT,
    /// `libm` (lane by lane) where not — beyond it, and NaN.
    pub fn exp2(&mut self, x: Value, libm: FuncRef) -> Value {
        let ax = self.b.ins().fabs(x);
        let limit = self.konst(EXP2_FAST_LIMIT);
        let ok = self.b.ins().fcmp(FloatCC::LessThanOrEqual, ax, limit);
        self.poly_or_libm(ok, x, libm, Self::exp2_in_range)
    }

    /// `vector_math::exp2_in_range`, operation for operation.
    fn exp2_in_range(&mut self, x: Value) -> Value {
        let shifter = self.konst(SHIFTER);
        let t = self.b.ins().fadd(x, shifter);
        let k = self.b.ins().fsub(t, shifter);
        let r = self.b.ins().fsub(x, k);
        let ln2 = self.konst(std::f64::consts::LN_2);
        let y = self.b.ins().fmul(r, ln2);
        let neg_y = self.b.ins().fneg(y);
        let err = self.b.ins().fma(r, ln2, neg_y);
        let tail = self.konst(LN2_TAIL);
        let tail = self.b.ins().fmul(r, tail);
        let y_lo = self.b.ins().fadd(err, tail);
        let p = self.exp_polynomial(y, &EXP_POLY);
        let p = self.b.ins().fma(p, y_lo, p);
        let scale = self.pow2(k);
        self.b.ins().fmul(p, scale)
    }

    /// `vector_math::log_parts`, operation for operation: (e, f, hfsq, t).
    fn log_parts(&mut self, x: Value) -> (Value, Value, Value, Value) {
        let bits = self.bits_of(x);
        let mantissa = self.int_konst(MANTISSA_BITS as i64);
        let one = self.int_konst(1f64.to_bits() as i64);
        let m = self.b.ins().band(bits, mantissa);
        let m = self.b.ins().bor(m, one);
        let m = self.float_of_bits(m);
        let exponent = self.b.ins().ushr_imm_u(bits, 52);
        let two52 = self.int_konst(TWO52_BITS as i64);
        let biased = self.b.ins().bor(exponent, two52);
        let biased = self.float_of_bits(biased);
        let two52 = self.konst(f64::from_bits(TWO52_BITS));
        let biased = self.b.ins().fsub(biased, two52);
        let sqrt2 = self.konst(std::f64::consts::SQRT_2);
        let big = self.b.ins().fcmp(FloatCC::GreaterThan, m, sqrt2);
        let half = self.konst(0.5);
        let halved = self.b.ins().fmul(m, half);
        let m = self.select(big, halved, m);
        let (b1022, b1023) = (self.konst(1022.0), self.konst(1023.0));
        let bias = self.select(big, b1022, b1023);
        let e = self.b.ins().fsub(biased, bias);
        let one = self.konst(1.0);
        let f = self.b.ins().fsub(m, one);
        let two = self.konst(2.0);
        let den = self.b.ins().fadd(two, f);
        let s = self.b.ins().fdiv(f, den);
        let z = self.b.ins().fmul(s, s);
        let mut acc = self.konst(LOG_POLY[LOG_POLY.len() - 1]);
        for c in LOG_POLY[..LOG_POLY.len() - 1].iter().rev() {
            let c = self.konst(*c);
            acc = self.b.ins().fma(acc, z, c);
        }
        let r = self.b.ins().fmul(z, acc);
        let half_f = self.b.ins().fmul(half, f);
        let hfsq = self.b.ins().fmul(half_f, f);
        let t = self.b.ins().fadd(hfsq, r);
        let t = self.b.ins().fmul(s, t);
        (e, f, hfsq, t)
    }

    /// sin(x) (`cos = false`) or cos(x) (`cos = true`); `libm` computes one lane.
    pub fn sin_cos(&mut self, x: Value, cos: bool, libm: FuncRef) -> Value {
        let ax = self.b.ins().fabs(x);
        let limit = self.konst(TRIG_FAST_LIMIT);
        let ok = self.b.ins().fcmp(FloatCC::LessThanOrEqual, ax, limit);
        self.fast_or_slow(
            ok,
            |g| g.sin_cos_reduced(x, cos),
            |g| {
                // Lane by lane: libm where |x| is large (or NaN), the polynomial elsewhere
                // (so a value does not depend on its neighbour, and equals the array
                // version's). A single lane on this path is libm's alone.
                if g.ty != types::F64X2 {
                    return g.per_lane(libm, x);
                }
                let poly = g.sin_cos_reduced(x, cos);
                let lib = g.per_lane(libm, x);
                g.select(ok, poly, lib)
            },
        )
    }

    fn sin_cos_reduced(&mut self, x: Value, cos: bool) -> Value {
        let two_over_pi = self.konst(std::f64::consts::FRAC_2_PI);
        let shifter = self.konst(SHIFTER);
        let t = self.b.ins().fma(x, two_over_pi, shifter);
        let qf = self.b.ins().fsub(t, shifter);
        let mut q = self.shifted_int(t);
        if cos {
            let one = self.int_konst(1);
            q = self.b.ins().iadd(q, one);
        }
        let neg_q = self.b.ins().fneg(qf);
        let (p1, p2, p3) = (self.konst(PIO2_1), self.konst(PIO2_2), self.konst(PIO2_3));
        let r = self.b.ins().fma(neg_q, p1, x);
        let r = self.b.ins().fma(neg_q, p2, r);
        let r = self.b.ins().fma(neg_q, p3, r);
        let r2 = self.b.ins().fmul(r, r);
        // sin r = r + r^3 · S(r^2), cos r = 1 - r^2/2 + r^4 · C(r^2).
        let (s_coeffs, c_coeffs) = sin_cos_coefficients();
        let s = self.estrin(r2, &s_coeffs);
        let r3 = self.b.ins().fmul(r2, r);
        let sin_r = self.b.ins().fma(r3, s, r);
        let c = self.estrin(r2, &c_coeffs);
        let r4 = self.b.ins().fmul(r2, r2);
        let minus_half = self.konst(-0.5);
        let one = self.konst(1.0);
        let head = self.b.ins().fma(r2, minus_half, one);
        let cos_r = self.b.ins().fma(r4, c, head);
        // Odd quadrants take the cosine; quadrants 2 and 3 are negated.
        let one_i = self.int_konst(1);
        let odd = self.b.ins().band(q, one_i);
        let zero_i = self.int_konst(0);
        let use_cos = self.b.ins().icmp(IntCC::NotEqual, odd, zero_i);
        let v = if self.ty == types::F64X2 {
            let mask = self
                .b
                .ins()
                .bitcast(types::F64X2, MemFlagsData::new(), use_cos);
            self.b.ins().bitselect(mask, cos_r, sin_r)
        } else {
            self.b.ins().select(use_cos, cos_r, sin_r)
        };
        let two_i = self.int_konst(2);
        let neg = self.b.ins().band(q, two_i);
        let sign = self.b.ins().ishl_imm_u(neg, 62);
        let bits = self.bits_of(v);
        let flipped = self.b.ins().bxor(bits, sign);
        self.float_of_bits(flipped)
    }
}

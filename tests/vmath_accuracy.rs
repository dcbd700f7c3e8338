//! Accuracy of the JIT's polynomial exp, exp2, expm1, log, log2, log1p, sin, cos and tanh (and sigmoid and
//! softplus, against the reference's formulas) (`compiler/src/vmath.rs`) against
//! libm (Rust's `f64::exp`/`sin`/`cos`): at most 2 ulp over their whole domain — dense
//! random points, every binade, the overflow and underflow edges, the subnormal range —
//! and exact special values. Each array is long enough that the vector body and the
//! scalar tail both run.

mod common;

use ndarray::Array1;
use tensorlift::ir::{elemwise, ScalarOp};
use tensorlift::prelude::*;
use tensorlift::testing::TestRng;

/// Distance in units in the last place between two finite floats (or 0 when equal,
/// both NaN, or the same infinity; `u64::MAX` when one is NaN or infinite and the other
/// is not).
fn ulps(a: f64, b: f64) -> u64 {
    if a == b || (a.is_nan() && b.is_nan()) {
        return 0;
    }
    if !a.is_finite() || !b.is_finite() {
        return u64::MAX;
    }
    let key = |x: f64| {
        let bits = x.to_bits() as i64;
        if bits < 0 {
            i64::MIN - bits
        } else {
            bits
        }
    };
    key(a).abs_diff(key(b))
}

fn run(op: ScalarOp, points: Vec<f64>) -> Vec<f64> {
    let x = vector("x", Float64);
    let f = function(&[&x], &[&elemwise(op, vec![(&x).into()])])
        .mode(Mode::Jit)
        .compile()
        .unwrap();
    let out = f.call(&[Array1::from(points).into()]).unwrap();
    out[0].as_array::<f64>().unwrap().iter().copied().collect()
}

fn check(op: ScalarOp, libm: fn(f64) -> f64, points: Vec<f64>) {
    check_within(op, libm, points, 2);
}

/// `op` within `max_ulp` of `reference` (libm, or the reference backend's formula) at
/// every point.
fn check_within(op: ScalarOp, reference: fn(f64) -> f64, points: Vec<f64>, max_ulp: u64) {
    let got = run(op, points.clone());
    let mut worst = (0u64, 0.0f64);
    for (x, g) in points.iter().zip(&got) {
        let d = ulps(*g, reference(*x));
        if d > worst.0 {
            worst = (d, *x);
        }
    }
    assert!(
        worst.0 <= max_ulp,
        "{op:?}: {} ulp at x = {:e} (got {:e}, expected {:e})",
        worst.0,
        worst.1,
        run(op, vec![worst.1])[0],
        reference(worst.1)
    );
}

fn uniform(rng: &mut TestRng, lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..n).map(|_| lo + (hi - lo) * rng.next_f64()).collect()
}

/// Points spread over every binade of [2^lo, 2^hi), both signs.
fn binades(rng: &mut TestRng, lo: i32, hi: i32, per: usize) -> Vec<f64> {
    let mut v = Vec::new();
    for e in lo..hi {
        for _ in 0..per {
            let m = 1.0 + rng.next_f64();
            let x = m * 2f64.powi(e);
            v.push(x);
            v.push(-x);
        }
    }
    v
}

#[test]
fn exp_within_two_ulp() {
    let mut rng = TestRng::new(1);
    let mut points = uniform(&mut rng, -745.0, 709.7, 200_001);
    points.extend(uniform(&mut rng, -1.0, 1.0, 100_001));
    points.extend(uniform(&mut rng, -745.2, -708.0, 20_001)); // subnormal results
    points.extend(uniform(&mut rng, 709.0, 709.78, 2_001)); // near overflow
    points.extend(binades(&mut rng, -60, 10, 50));
    check(ScalarOp::Exp, f64::exp, points);
}

#[test]
fn exp_special_values() {
    let special = vec![
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        709.79,
        710.0,
        1e300,
        -746.0,
        -1e300,
        f64::MIN_POSITIVE,
    ];
    check_exact(ScalarOp::Exp, f64::exp, &special);
}

#[test]
fn sin_and_cos_within_two_ulp() {
    let mut rng = TestRng::new(2);
    let mut points = uniform(&mut rng, -10.0, 10.0, 200_001);
    points.extend(uniform(&mut rng, -8192.0, 8192.0, 200_001));
    points.extend(uniform(&mut rng, -1e6, 1e6, 20_001)); // the libm path
    points.extend(binades(&mut rng, -60, 13, 50));
    check(ScalarOp::Sin, f64::sin, points.clone());
    check(ScalarOp::Cos, f64::cos, points);
}

#[test]
fn sin_and_cos_special_values() {
    let special = vec![
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        1e-310,
        1e300,
    ];
    for (op, libm) in [
        (ScalarOp::Sin, f64::sin as fn(f64) -> f64),
        (ScalarOp::Cos, f64::cos),
    ] {
        check_exact(op, libm, &special);
    }
}

#[test]
fn log_within_two_ulp() {
    let mut rng = TestRng::new(4);
    let mut points = uniform(&mut rng, 1e-300, 10.0, 100_001);
    points.extend(uniform(&mut rng, 0.5, 2.0, 200_001));
    points.extend(uniform(&mut rng, 1.0 - 1e-6, 1.0 + 1e-6, 50_001)); // near 1: log → 0
    points.extend(uniform(&mut rng, 1.0, 1e300, 50_001));
    points.extend(binades(&mut rng, -1074, 1024, 20).into_iter().map(f64::abs));
    check(ScalarOp::Log, f64::ln, points);
}

#[test]
fn log_special_values() {
    let special = vec![
        0.0,
        -0.0,
        -1.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        1.0,
        f64::MIN_POSITIVE,
        5e-324,
        1e-310,
        f64::MAX,
        std::f64::consts::E,
    ];
    let got = run(ScalarOp::Log, special.clone());
    for (x, g) in special.iter().zip(got) {
        assert!(ulps(g, x.ln()) <= 1, "log({x}) = {g}, libm {}", x.ln());
    }
    assert_eq!(run(ScalarOp::Log, vec![1.0])[0].to_bits(), 0.0f64.to_bits());
}

/// `op` equal to `reference` (NaN to NaN) at each of `special`.
fn check_exact(op: ScalarOp, reference: fn(f64) -> f64, special: &[f64]) {
    let got = run(op, special.to_vec());
    for (x, g) in special.iter().zip(got) {
        assert_eq!(
            ulps(g, reference(*x)),
            0,
            "{op:?}({x}) = {g}, expected {}",
            reference(*x)
        );
    }
}

/// Values where the composite functions switch branch or saturate.
const COMPOSITE_SPECIALS: [f64; 7] = [
    0.0,
    -0.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    800.0,
    -800.0,
];

/// Sigmoid follows the reference's formula (two branches around libm's exp; the JIT's
/// uses the polynomial exp).
#[test]
fn sigmoid_within_four_ulp_of_the_reference() {
    let reference = tensorlift_runtime::elemwise::sigmoid;
    let mut rng = TestRng::new(5);
    let mut points = uniform(&mut rng, -40.0, 40.0, 200_001);
    points.extend(uniform(&mut rng, -1.0, 1.0, 50_001));
    points.extend(uniform(&mut rng, -745.0, -700.0, 5_001)); // tiny results
    points.extend(binades(&mut rng, -60, 10, 50));
    check_within(ScalarOp::Sigmoid, reference, points, 4);
    check_exact(ScalarOp::Sigmoid, reference, &COMPOSITE_SPECIALS);
}

#[test]
fn log1p_within_two_ulp() {
    let mut rng = TestRng::new(6);
    let mut points = uniform(&mut rng, -0.999_999, 10.0, 200_001);
    points.extend(uniform(&mut rng, -1e-6, 1e-6, 50_001)); // log1p(x) ≈ x
    points.extend(uniform(&mut rng, -1.0 + 1e-12, -0.9, 20_001)); // near −1
    points.extend(uniform(&mut rng, 10.0, 1e300, 20_001));
    points.extend(binades(&mut rng, -1074, -1, 20)); // tiny, both signs
    check(ScalarOp::Log1p, f64::ln_1p, points);
    let special = [
        0.0,
        -0.0,
        -1.0,
        -2.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        5e-324,
    ];
    check_exact(ScalarOp::Log1p, f64::ln_1p, &special);
}

#[test]
fn softplus_within_four_ulp_of_the_reference() {
    let reference = tensorlift_runtime::elemwise::softplus;
    let mut rng = TestRng::new(7);
    let mut points = uniform(&mut rng, -40.0, 40.0, 200_001);
    points.extend(uniform(&mut rng, -745.0, -700.0, 5_001));
    points.extend(binades(&mut rng, -60, 10, 50));
    check_within(ScalarOp::Softplus, reference, points, 4);
    check_exact(ScalarOp::Softplus, reference, &COMPOSITE_SPECIALS);
}

#[test]
fn expm1_within_two_ulp() {
    let mut rng = TestRng::new(8);
    let mut points = uniform(&mut rng, -40.0, 40.0, 200_001);
    points.extend(uniform(&mut rng, -1.0, 1.0, 100_001));
    points.extend(uniform(&mut rng, -745.0, 709.7, 20_001)); // libm's beyond ±40
    points.extend(binades(&mut rng, -1074, 6, 20)); // tiny to large, both signs
    check(ScalarOp::Expm1, f64::exp_m1, points);
    let special = [
        0.0,
        -0.0,
        -40.0,
        710.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        5e-324,
    ];
    check_exact(ScalarOp::Expm1, f64::exp_m1, &special);
}

#[test]
fn tanh_within_two_ulp() {
    let mut rng = TestRng::new(9);
    let mut points = uniform(&mut rng, -25.0, 25.0, 200_001);
    points.extend(uniform(&mut rng, -1.1, 1.1, 100_001)); // around the split at 1
    points.extend(binades(&mut rng, -1074, 10, 20));
    check(ScalarOp::Tanh, f64::tanh, points);
    let special = [
        0.0,
        -0.0,
        20.0,
        -20.0,
        1e300,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        5e-324,
    ];
    check_exact(ScalarOp::Tanh, f64::tanh, &special);
}

#[test]
fn exp2_and_log2_within_two_ulp() {
    let mut rng = TestRng::new(10);
    let mut points = uniform(&mut rng, -1022.0, 1022.0, 200_001);
    points.extend(uniform(&mut rng, -2.0, 2.0, 100_001));
    points.extend(uniform(&mut rng, -1080.0, 1030.0, 20_001)); // libm's beyond ±1022
    points.extend(binades(&mut rng, -1074, 10, 20));
    check(ScalarOp::Exp2, f64::exp2, points);
    let mut points = uniform(&mut rng, 1e-300, 1e300, 100_001);
    points.extend(uniform(&mut rng, 0.5, 2.0, 100_001)); // around 1
    points.extend(binades(&mut rng, -1074, 1023, 20).into_iter().map(f64::abs));
    check(ScalarOp::Log2, f64::log2, points);
    let special = [
        0.0,
        -0.0,
        1.0,
        2.0,
        1024.0,
        -1.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        5e-324,
    ];
    check_exact(ScalarOp::Exp2, f64::exp2, &special);
    check_exact(ScalarOp::Log2, f64::log2, &special);
}

#[test]
fn contiguous_and_strided_inputs_give_identical_bits() {
    // Contiguous data runs through the array functions (AVX-512 or AVX2), a reversed view
    // through the same algorithm emitted as IR: both must agree bit for bit, so a value
    // never depends on the memory layout of its input — float64, and float32 (computed in
    // f64 and rounded, on either path).
    let mut rng = TestRng::new(3);
    let mut points = uniform(&mut rng, -720.0, 720.0, 3_001);
    points.extend(uniform(&mut rng, -9000.0, 9000.0, 3_001));
    points.extend(uniform(&mut rng, 1e-300, 1e300, 3_001));
    points.extend(uniform(&mut rng, -3.0, 3.0, 3_001));
    points.extend([
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        1e-310,
    ]);
    let n = points.len();
    for dtype in [Float64, Float32] {
        let data: TensorData = Array1::from(points.clone()).into();
        let data = tensorlift_runtime::scalar::cast(&data, dtype);
        for op in [
            ScalarOp::Exp,
            ScalarOp::Sin,
            ScalarOp::Cos,
            ScalarOp::Log,
            ScalarOp::Sigmoid,
            ScalarOp::Log1p,
            ScalarOp::Softplus,
            ScalarOp::Expm1,
            ScalarOp::Tanh,
            ScalarOp::Exp2,
            ScalarOp::Log2,
        ] {
            let x = vector("x", dtype);
            // Used in further arithmetic, so a value rounded differently would show.
            let forward = elemwise(op, vec![(&x).into()]) * 3.0 - 1.0;
            let backward = elemwise(op, vec![x.get(tensorlift::idx![..;-1]).into()]) * 3.0 - 1.0;
            let f = function(&[&x], &[&forward, &backward])
                .mode(Mode::Jit)
                .compile()
                .unwrap();
            let out = f.call(std::slice::from_ref(&data)).unwrap();
            let as_f64 = |d: &TensorData| -> Vec<f64> {
                let d = tensorlift_runtime::scalar::cast(d, Float64);
                d.as_array::<f64>().unwrap().iter().copied().collect()
            };
            let (a, b) = (as_f64(&out[0]), as_f64(&out[1]));
            for i in 0..n {
                let (u, v) = (a[i], b[n - 1 - i]);
                assert!(
                    u.to_bits() == v.to_bits() || (u.is_nan() && v.is_nan()),
                    "{dtype} {op:?}({}): {u:e} contiguous, {v:e} strided",
                    points[i]
                );
            }
        }
    }
}

/// A random element-wise expression over `x` and `y` from `steps` (op code, operands).
fn random_expression(steps: &[(u8, usize, usize)], x: &Var, y: &Var) -> Var {
    let mut pool = vec![x.clone(), y.clone()];
    for &(code, a, b) in steps {
        let (a, b) = (&pool[a % pool.len()], &pool[b % pool.len()]);
        let v = match code % 11 {
            0 => a + b,
            1 => a * b,
            2 => a - b * 0.5,
            3 => (a * 0.5).exp(),
            4 => a.sin(),
            5 => a.tanh(),
            6 => a.sigmoid() * b,
            7 => a.abs().log1p(),
            8 => a.abs().sqrt() + 1.0,
            9 => a.maximum(b),
            _ => a / (b.abs() + 1.0),
        };
        pool.push(v);
    }
    pool.pop().unwrap_or_else(|| x.clone())
}

proptest::proptest! {
    #![proptest_config(common::proptest_config(96, 0xf32_1a70))]
    /// Random float32 and float64 expressions of arithmetic and math functions give the
    /// same bits whether their inputs are contiguous (strips through the array functions,
    /// float32 results rounded in the strip) or read backwards (the IR path, rounded where
    /// computed), and the reference's values within tolerance.
    #[test]
    fn random_expressions_do_not_depend_on_layout(
        steps in proptest::collection::vec((proptest::prelude::any::<u8>(), 0usize..16, 0usize..16), 1..8),
        f32_dtype in proptest::prelude::any::<bool>(),
        n in 1usize..1300,
        seed in proptest::prelude::any::<u64>(),
    ) {
        let dtype = if f32_dtype { Float32 } else { Float64 };
        let (x, y) = (vector("x", dtype), vector("y", dtype));
        let back = |v: &Var| v.get(tensorlift::idx![..;-1]);
        let forward = random_expression(&steps, &x, &y);
        let backward = random_expression(&steps, &back(&x), &back(&y));
        let mut rng = TestRng::new(seed);
        let vals: Vec<TensorData> = (0..2)
            .map(|_| {
                let v = tensorlift::testing::random_of_shape(Float64, &[n], (-3.0, 3.0), &mut rng);
                tensorlift_runtime::scalar::cast(&v, dtype)
            })
            .collect();
        let f = function(&[&x, &y], &[&forward, &backward]).mode(Mode::Jit).compile().unwrap();
        let out = f.call(&vals).unwrap();
        let as_f64 = |d: &TensorData| -> Vec<f64> {
            let d = tensorlift_runtime::scalar::cast(d, Float64);
            d.as_array::<f64>().unwrap().iter().copied().collect()
        };
        let (a, b) = (as_f64(&out[0]), as_f64(&out[1]));
        proptest::prop_assert_eq!(a.len(), n);
        for i in 0..n {
            let (u, v) = (a[i], b[n - 1 - i]);
            proptest::prop_assert!(
                u.to_bits() == v.to_bits() || (u.is_nan() && v.is_nan()),
                "{} element {}: {:e} contiguous, {:e} read backwards", dtype, i, u, v
            );
        }
        let compared = tensorlift::testing::compare_backends(&[&x, &y], &[&forward], &vals, Mode::Jit);
        proptest::prop_assert!(compared.is_ok(), "{:?}", compared.err());
    }
}

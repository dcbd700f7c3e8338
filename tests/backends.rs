//! Backend comparison (DESIGN §12): every kernel-lowered op, for every float dtype and
//! broadcasting pattern, in `Mode::Jit` against the reference backend on random inputs
//! from fixed seeds; non-contiguous and reversed inputs, empty arrays, special values, bad
//! inputs (both backends must fail), and random graphs (proptest). The NumPy cases
//! (`numpy_cases.rs`) also run every op of the foundation in `Mode::Jit`.

mod common;

use ndarray::{array, ArrayD, IxDyn};
use proptest::prelude::*;
use tensorlift::ir::{constant, elemwise, Idx, ScalarOp};
use tensorlift::prelude::*;
use tensorlift::testing::{compare_backends, random_of_shape, TestRng};
use tensorlift_compiler::jit::kernels_of;

fn check(inputs: &[&Var], outputs: &[&Var], values: &[TensorData]) {
    if let Err(e) = compare_backends(inputs, outputs, values, Mode::Jit) {
        panic!("{e}");
    }
}

/// How many of `f`'s kernels satisfy `pred` (to check that nodes are jitted).
fn jitted(f: &Function, pred: impl Fn(&tensorlift_compiler::loopir::Kernel) -> bool) -> usize {
    kernels_of(f.fgraph())
        .iter()
        .filter(|(_, k)| pred(k))
        .count()
}

/// Random values for the inputs, with `shapes` and values in `range`.
fn values(dtype: DType, shapes: &[&[usize]], range: (f64, f64), seed: u64) -> Vec<TensorData> {
    let mut rng = TestRng::new(seed);
    shapes
        .iter()
        .map(|s| random_of_shape(dtype, s, range, &mut rng))
        .collect()
}

const UNARY: [(ScalarOp, (f64, f64)); 27] = [
    (ScalarOp::Neg, (-3.0, 3.0)),
    (ScalarOp::Abs, (-3.0, 3.0)),
    (ScalarOp::Sign, (-3.0, 3.0)),
    (ScalarOp::Sqr, (-3.0, 3.0)),
    (ScalarOp::Floor, (-3.0, 3.0)),
    (ScalarOp::Ceil, (-3.0, 3.0)),
    (ScalarOp::Round, (-3.0, 3.0)),
    (ScalarOp::Reciprocal, (0.5, 3.0)),
    (ScalarOp::Exp, (-5.0, 5.0)),
    (ScalarOp::Exp2, (-5.0, 5.0)),
    (ScalarOp::Expm1, (-1.0, 1.0)),
    (ScalarOp::Log, (0.01, 5.0)),
    (ScalarOp::Log2, (0.01, 5.0)),
    (ScalarOp::Log1p, (-0.5, 5.0)),
    (ScalarOp::Log1mexp, (-5.0, -0.01)),
    (ScalarOp::Sqrt, (0.0, 9.0)),
    (ScalarOp::Sin, (-7.0, 7.0)),
    (ScalarOp::Cos, (-7.0, 7.0)),
    (ScalarOp::Tan, (-1.5, 1.5)),
    (ScalarOp::Tanh, (-4.0, 4.0)),
    (ScalarOp::Sigmoid, (-30.0, 30.0)),
    (ScalarOp::Softplus, (-30.0, 30.0)),
    (ScalarOp::Erf, (-3.0, 3.0)),
    (ScalarOp::Erfc, (-3.0, 3.0)),
    (ScalarOp::Gammaln, (0.1, 10.0)),
    (ScalarOp::Digamma, (-3.5, 10.0)),
    (ScalarOp::Identity, (-3.0, 3.0)),
];

const BINARY: [(ScalarOp, (f64, f64)); 9] = [
    (ScalarOp::Add, (-3.0, 3.0)),
    (ScalarOp::Sub, (-3.0, 3.0)),
    (ScalarOp::Mul, (-3.0, 3.0)),
    (ScalarOp::TrueDiv, (0.5, 3.0)),
    (ScalarOp::IntDiv, (0.5, 3.0)),
    (ScalarOp::Mod, (0.5, 3.0)),
    (ScalarOp::Pow, (0.5, 2.0)),
    (ScalarOp::Maximum, (-3.0, 3.0)),
    (ScalarOp::Minimum, (-3.0, 3.0)),
];

const COMPARISONS: [ScalarOp; 6] = [
    ScalarOp::Eq,
    ScalarOp::Neq,
    ScalarOp::Lt,
    ScalarOp::Le,
    ScalarOp::Gt,
    ScalarOp::Ge,
];

#[test]
fn unary_ops_in_every_float_dtype_and_length() {
    for dtype in [Float64, Float32] {
        let x = vector("x", dtype);
        for (op, range) in UNARY {
            let y = elemwise(op, vec![(&x).into()]);
            // Lengths around the vector width exercise the vector body and the scalar tail.
            for (seed, n) in [0usize, 1, 2, 3, 4, 5, 7, 8, 33].into_iter().enumerate() {
                check(&[&x], &[&y], &values(dtype, &[&[n]], range, seed as u64));
            }
        }
    }
}

#[test]
fn binary_ops_with_every_broadcast_pattern() {
    for dtype in [Float64, Float32] {
        let m = matrix("m", dtype);
        let row = tensor("row", dtype, [Some(1), None]);
        let col = tensor("col", dtype, [None, Some(1)]);
        let one = tensor("one", dtype, [Some(1), Some(1)]);
        for (op, range) in BINARY {
            for (k, (b, shape)) in [(&m, [3, 5]), (&row, [1, 5]), (&col, [3, 1]), (&one, [1, 1])]
                .into_iter()
                .enumerate()
            {
                let y = elemwise(op, vec![(&m).into(), b.into()]);
                let z = elemwise(op, vec![b.into(), (&m).into()]);
                let mut vals = values(dtype, &[&[3, 5], &shape], range, k as u64);
                if k == 0 {
                    vals.pop();
                    check(&[&m], &[&y, &z], &vals);
                } else {
                    check(&[&m, b], &[&y, &z], &vals);
                }
            }
        }
    }
}

#[test]
fn comparisons_switch_and_special_values() {
    let x = vector("x", Float64);
    let y = vector("y", Float64);
    let special: TensorData = array![
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        1.5,
        -2.0,
        3.0,
        1e308
    ]
    .into();
    let other: TensorData = array![
        1.0,
        f64::INFINITY,
        0.0,
        -0.0,
        0.0,
        1.5,
        f64::NAN,
        2.0,
        -1e308
    ]
    .into();
    for op in COMPARISONS {
        let c = elemwise(op, vec![(&x).into(), (&y).into()]);
        check(&[&x, &y], &[&c], &[special.clone(), other.clone()]);
        // A comparison inside a fused kernel, selecting between values.
        let s = switch(&c, x.exp(), &y * 2.0);
        check(&[&x, &y], &[&s], &[special.clone(), other.clone()]);
    }
    let tests = [
        x.isnan(),
        x.isinf(),
        x.sign(),
        x.maximum(&y),
        x.minimum(&y),
        x.clip(-1.0, 1.0),
    ];
    let refs: Vec<&Var> = tests.iter().collect();
    check(&[&x, &y], &refs, &[special.clone(), other.clone()]);
    for op in [
        ScalarOp::Exp,
        ScalarOp::Log,
        ScalarOp::Sigmoid,
        ScalarOp::Softplus,
        ScalarOp::Sqrt,
    ] {
        check(
            &[&x],
            &[&elemwise(op, vec![(&x).into()])],
            std::slice::from_ref(&special),
        );
    }
}

#[test]
fn casts_between_floats_and_bools() {
    let x = vector("x", Float64);
    let f = vector("f", Float32);
    let b = vector("b", Bool);
    let outs = [
        x.cast(Float32),
        f.cast(Float64),
        x.cast(Bool),
        b.cast(Float64),
        &b * &x,
        &f + &x,
        (&x * 1e-3).cast(Float32).exp(),
    ];
    let refs: Vec<&Var> = outs.iter().collect();
    let mut rng = TestRng::new(7);
    let vals = vec![
        array![0.0, -1.5, f64::NAN, 1e40, 2.5].into(),
        random_of_shape(Float32, &[5], (-3.0, 3.0), &mut rng),
        array![true, false, true, true, false].into(),
    ];
    check(&[&x, &f, &b], &refs, &vals);
}

#[test]
fn integer_kernels_wrap_and_divide_like_the_reference() {
    for dtype in [Int8, Int16, Int32, Int64, UInt8] {
        let (a, b) = (vector("a", dtype), vector("b", dtype));
        let outs = [
            &a + &b,
            &a - &b,
            &a * &b,
            a.floor_div(&b),
            &a % &b,
            -&a,
            a.abs(),
            a.sign(),
            a.sqr(),
            a.maximum(&b),
            a.minimum(&b),
            a.clip(3i64, 7i64),
            a.lt(&b),
            a.equal(&b),
            switch(a.gt(&b), &a, &b),
            a.cast(Float64) * 0.5,
            a.cast(Int8),
            a.cast(UInt8),
            a.cast(Bool),
            a.exp(),
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        let (lo, hi) = match dtype {
            UInt8 => (0.0, 256.0),
            Int8 => (-128.0, 128.0),
            _ => (-1e4, 1e4),
        };
        // Extremes, zeros (division by zero gives 0) and random values.
        let mut vals = values(dtype, &[&[64], &[64]], (lo, hi), 5);
        let edge: Vec<i64> = vec![0, 0, -1, 1, 127, -128, 255, 7];
        let edge_b: Vec<i64> = vec![0, 3, 0, -1, -1, -1, 2, -3];
        let lit = |v: &[i64]| {
            v.iter()
                .map(|x| tensorlift::Literal::Int(*x))
                .collect::<Vec<_>>()
        };
        vals.push(TensorData::from_literals(&[8], &lit(&edge), dtype).unwrap());
        vals.push(TensorData::from_literals(&[8], &lit(&edge_b), dtype).unwrap());
        check(&[&a, &b], &refs, &vals[..2]);
        check(&[&a, &b], &refs, &vals[2..]);
    }
    // Float → integer casts saturate, NaN gives 0.
    let x = vector("x", Float64);
    let casts = [x.cast(Int8), x.cast(Int32), x.cast(Int64), x.cast(UInt8)];
    let refs: Vec<&Var> = casts.iter().collect();
    let special: TensorData = array![
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e20,
        -1e20,
        300.7,
        -300.7,
        -0.9,
        2.5
    ]
    .into();
    check(&[&x], &refs, &[special]);
}

#[test]
fn reductions_over_every_axis_subset() {
    let subsets: [&[isize]; 8] = [&[], &[0], &[1], &[2], &[0, 1], &[0, 2], &[1, 2], &[0, 1, 2]];
    for dtype in [Float64, Float32] {
        let x = tensor("x", dtype, [None, None, None]);
        for axes in subsets {
            let outs = [
                x.sum(Some(axes)),
                x.prod(Some(axes)),
                x.max(Some(axes)),
                x.min(Some(axes)),
                x.exp().sum(Some(axes)),
                (&x * &x).max(Some(axes)),
            ];
            let refs: Vec<&Var> = outs.iter().collect();
            for (seed, shape) in [[2usize, 3, 5], [1, 7, 4], [3, 1, 9]].iter().enumerate() {
                check(
                    &[&x],
                    &refs,
                    &values(dtype, &[shape], (-2.0, 2.0), seed as u64),
                );
            }
        }
    }
}

#[test]
fn integer_powers_wrap_and_refuse_negative_exponents() {
    for dtype in [Int8, Int16, Int32, Int64, UInt8] {
        let (a, b) = (vector("a", dtype), vector("b", dtype));
        // Alone, fused with other arithmetic, and inside a fused reduction.
        let outs = [a.pow(&b), (a.pow(&b) + &a) * 3i64, a.pow(&b).sum(None)];
        let refs: Vec<&Var> = outs.iter().collect();
        let (lo, hi) = if dtype == UInt8 {
            (0.0, 9.0)
        } else {
            (-9.0, 9.0)
        };
        let mut vals = values(dtype, &[&[64]], (lo, hi), 7);
        vals.extend(values(dtype, &[&[64]], (0.0, 40.0), 8));
        check(&[&a, &b], &refs, &vals);
        // Powers that wrap (2^70, 3^40 in int64; past the dtype's range for the others).
        let lit = |v: &[i64]| {
            v.iter()
                .map(|x| tensorlift::Literal::Int(*x))
                .collect::<Vec<_>>()
        };
        let bases = TensorData::from_literals(&[5], &lit(&[2, 3, 0, 1, 7]), dtype).unwrap();
        let exps = TensorData::from_literals(&[5], &lit(&[70, 40, 0, 99, 2]), dtype).unwrap();
        check(&[&a, &b], &refs, &[bases, exps]);
    }
    // A negative exponent: both backends fail with the same message, and the JIT runs
    // the power in a kernel (not in the runtime).
    let (a, b) = (vector("a", Int64), vector("b", Int64));
    let out = (a.pow(&b) + 1i64) * 2i64;
    let args: Vec<TensorData> = vec![array![2i64, 3, 4].into(), array![1i64, -2, 3].into()];
    let errors: Vec<String> = [Mode::Reference, Mode::Jit]
        .into_iter()
        .map(|mode| {
            let f = function(&[&a, &b], &[&out]).mode(mode).compile().unwrap();
            f.call(&args).unwrap_err().to_string()
        })
        .collect();
    // The same message and node; the reference names the inner op (Pow), the kernel the
    // fused node it computes.
    let message = |e: &str| e.split_once(": ").map(|(_, m)| m.to_string());
    assert_eq!(message(&errors[0]), message(&errors[1]), "{errors:?}");
    assert!(
        errors[0].contains("negative integer powers"),
        "{}",
        errors[0]
    );
    let f = function(&[&a, &b], &[&out]).compile().unwrap();
    assert!(
        jitted(&f, |k| k.to_string().contains("pow(")) > 0,
        "a jitted integer power"
    );
}

#[test]
fn logic_on_bools_is_jitted_as_bit_operations() {
    let (p, q, r) = (vector("p", Bool), vector("q", Bool), vector("r", Bool));
    let bin = |op| elemwise(op, vec![(&p).into(), (&q).into()]);
    let mut outs: Vec<Var> = [
        ScalarOp::And,
        ScalarOp::Or,
        ScalarOp::Xor,
        ScalarOp::Add,
        ScalarOp::Mul,
        ScalarOp::Maximum,
        ScalarOp::Minimum,
        ScalarOp::Eq,
        ScalarOp::Neq,
        ScalarOp::Lt,
        ScalarOp::Le,
        ScalarOp::Gt,
        ScalarOp::Ge,
    ]
    .into_iter()
    .map(bin)
    .collect();
    outs.push(!&p);
    outs.push(switch(&p, &q, &r));
    outs.push((&p & &q) | (!&r ^ &q));
    let refs: Vec<&Var> = outs.iter().collect();
    let f = function(&[&p, &q, &r], &refs)
        .mode(Mode::Jit)
        .compile()
        .unwrap();
    assert!(
        f.fgraph().toposort().len() <= kernels_of(f.fgraph()).len(),
        "every node is a kernel"
    );
    for n in [1usize, 7, 64, 1000] {
        check(
            &[&p, &q, &r],
            &refs,
            &values(Bool, &[&[n], &[n], &[n]], (0.0, 1.0), n as u64),
        );
    }
    // Bools from float comparisons, combined in vector lanes (f64x2 and float32 x4).
    for dtype in [Float64, Float32] {
        let (x, y) = (vector("x", dtype), vector("y", dtype));
        let m = (x.gt(0.0) & y.lt(0.5)) | (x.ge(&y) ^ y.le(-0.5));
        let outs = [
            switch(&m, &x, &y),
            switch(&!&x.equal(&y), x.abs(), y.sqr()),
            switch(x.lt(&y).ge(y.gt(0.0)), &x * 2.0, &y),
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        for n in [3usize, 64, 1001] {
            check(
                &[&x, &y],
                &refs,
                &values(dtype, &[&[n], &[n]], (-1.0, 1.0), n as u64),
            );
        }
    }
}

#[test]
fn running_sums_and_products_along_every_axis() {
    for (dtype, range) in [
        (Float64, (-1.5, 1.5)),
        (Float32, (-1.5, 1.5)),
        (Int64, (-50.0, 50.0)),
        (Int8, (-100.0, 100.0)),
        (UInt8, (0.0, 255.0)),
        (Bool, (0.0, 1.0)),
    ] {
        let x = tensor("x", dtype, [None, None, None]);
        let outs = [
            x.cumsum(Some(0)),
            x.cumsum(Some(1)),
            x.cumprod(Some(2)),
            x.cumsum(Some(-1)),
            x.cumsum(None),
            x.cumprod(None),
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        let f = function(&[&x], &refs).mode(Mode::Jit).compile().unwrap();
        let scans = jitted(&f, |k| k.name.ends_with("_cumulative"));
        assert_eq!(scans, outs.len(), "{dtype}: every scan is jitted");
        for shape in [[2usize, 3, 4], [1, 1, 1], [3, 0, 2], [5, 7, 33]] {
            check(&[&x], &refs, &values(dtype, &[&shape], range, 7));
        }
    }
    // A transposed (strided) input.
    let m = matrix("m", Float64);
    let outs = [m.t().cumsum(Some(0)), m.t().cumprod(None)];
    let refs: Vec<&Var> = outs.iter().collect();
    check(&[&m], &refs, &values(Float64, &[&[4, 6]], (-1.0, 1.0), 8));
}

#[test]
fn arg_reductions_keep_the_first_extreme_and_the_first_nan() {
    for (dtype, range) in [
        (Float64, (-3.0, 3.0)),
        (Float32, (-3.0, 3.0)),
        (Int64, (-5.0, 5.0)),
        (UInt8, (0.0, 4.0)),
        (Bool, (0.0, 1.0)),
    ] {
        let x = tensor("x", dtype, [None, None, None]);
        let v = vector("v", dtype);
        let outs = [
            x.argmax(Some(0)),
            x.argmax(Some(1)),
            x.argmin(Some(2)),
            x.argmin(Some(0)),
            v.argmax(None),
            v.argmin(None),
            x.argmax(None),
            x.argmin(None),
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        let f = function(&[&x, &v], &refs)
            .mode(Mode::Jit)
            .compile()
            .unwrap();
        let jitted = jitted(&f, |k| k.name.ends_with("_along"));
        assert_eq!(jitted, outs.len(), "{dtype}: every arg-reduction is jitted");
        // Small ranges make ties; NaNs go in below.
        for (shape, n) in [([2usize, 3, 4], 5usize), ([1, 1, 1], 1), ([4, 5, 33], 70)] {
            let mut vals = values(dtype, &[&shape, &[n]], range, n as u64);
            if dtype.is_float() && n > 4 {
                let mut a = vals[0].as_array::<f64>().map(|a| a.to_owned());
                if let Some(a) = a.as_mut() {
                    a[[0, 1, 2]] = f64::NAN;
                    a[[1, 1, 0]] = f64::NAN;
                    a[[1, 2, 3]] = f64::NAN;
                    vals[0] = a.clone().into();
                }
                let mut b = vals[1].as_array::<f64>().map(|a| a.to_owned());
                if let Some(b) = b.as_mut() {
                    b[3] = f64::NAN;
                    b[n - 1] = f64::NAN;
                    vals[1] = b.clone().into();
                }
            }
            check(&[&x, &v], &refs, &vals);
        }
        // An empty axis: both backends refuse.
        check(
            &[&x, &v],
            &refs,
            &values(dtype, &[&[2, 0, 3], &[0]], range, 1),
        );
    }
}

#[test]
fn concatenations_copy_each_piece_to_its_offset() {
    use tensorlift::ir::concatenate;
    for dtype in [Float64, Float32, Int32, Bool] {
        let (a, b, c) = (matrix("a", dtype), matrix("b", dtype), matrix("c", dtype));
        let pieces = [a.clone(), b.clone(), c.clone()];
        let outs = [
            concatenate(&pieces, 0),
            concatenate(&pieces, 1),
            concatenate(&pieces[..2], -1),
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        let f = function(&[&a, &b, &c], &refs)
            .mode(Mode::Jit)
            .compile()
            .unwrap();
        let joins = jitted(&f, |k| k.name == "join");
        assert_eq!(joins, outs.len(), "{dtype}: every concatenation is jitted");
        // Square pieces (both axes join), with an empty one.
        check(
            &[&a, &b, &c],
            &refs,
            &values(dtype, &[&[3, 3], &[3, 3], &[3, 3]], (-2.0, 2.0), 1),
        );
        check(
            &[&a, &b, &c],
            &refs,
            &values(dtype, &[&[0, 0], &[0, 0], &[0, 0]], (-2.0, 2.0), 2),
        );
        // Pieces that disagree off the joined axis: both backends refuse.
        check(
            &[&a, &b, &c],
            &refs,
            &values(dtype, &[&[3, 3], &[2, 3], &[3, 3]], (-2.0, 2.0), 3),
        );
        // Differently sized along the joined axis.
        let along0 = [concatenate(&pieces, 0)];
        let refs0: Vec<&Var> = along0.iter().collect();
        check(
            &[&a, &b, &c],
            &refs0,
            &values(dtype, &[&[1, 4], &[5, 4], &[0, 4]], (-2.0, 2.0), 4),
        );
    }
    // A transposed (strided) piece.
    let (m, n) = (matrix("m", Float64), matrix("n", Float64));
    let out = concatenate(&[m.t(), n.clone()], 1);
    check(
        &[&m, &n],
        &[&out],
        &values(Float64, &[&[5, 3], &[3, 2]], (-1.0, 1.0), 5),
    );
}

#[test]
fn allocations_broadcast_their_value_into_the_requested_shape() {
    use tensorlift::ir::{alloc, full};
    for dtype in [Float64, Int32, Bool] {
        let row = tensor("row", dtype, [Some(1), None]);
        let (n, m) = (tensor("n", Int64, []), tensor("m", Int64, []));
        let outs = [
            alloc(&row, &[(&n).into(), (&m).into()]),
            alloc(&row, &[(&n).into(), (&n).into(), (&m).into()]),
            full(&[(&n).into(), 3i64.into()], 2i64, dtype),
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        let f = function(&[&row, &n, &m], &refs)
            .mode(Mode::Jit)
            .compile()
            .unwrap();
        let allocs = jitted(&f, |k| k.name == "alloc");
        assert!(allocs >= 2, "{dtype}: {allocs} allocations jitted");
        let size = |v: i64| -> TensorData { ndarray::arr0(v).into_dyn().into() };
        for (rows, cols) in [(3i64, 4usize), (0, 4), (2, 1)] {
            let mut vals = values(dtype, &[&[1, cols]], (-3.0, 3.0), rows as u64);
            vals.push(size(rows));
            vals.push(size(cols as i64));
            check(&[&row, &n, &m], &refs, &vals);
        }
        // A negative size, and a value that does not fit: both backends refuse.
        let mut bad = values(dtype, &[&[1, 4]], (-3.0, 3.0), 9);
        bad.extend([size(-2), size(4)]);
        check(&[&row, &n, &m], &refs, &bad);
        let mut misfit = values(dtype, &[&[1, 4]], (-3.0, 3.0), 9);
        misfit.extend([size(2), size(5)]);
        check(&[&row, &n, &m], &refs, &misfit);
    }
}

#[test]
fn ranges_compute_start_plus_i_times_step() {
    use tensorlift::ir::arange_dtype;
    for dtype in [Float64, Float32, Int64, Int16] {
        let (a, b, c) = (
            tensor("a", Float64, []),
            tensor("b", Float64, []),
            tensor("c", Float64, []),
        );
        let r = arange_dtype(&a, &b, &c, dtype);
        let f = function(&[&a, &b, &c], &[&r])
            .mode(Mode::Jit)
            .compile()
            .unwrap();
        assert!(
            jitted(&f, |k| k.name == "arange") > 0,
            "{dtype}: arange is jitted"
        );
        let s = |v: f64| -> TensorData { ndarray::arr0(v).into_dyn().into() };
        let cases = [
            (0.0, 10.0, 1.0),
            (-3.0, 4.0, 0.7),
            (10.0, 0.0, -2.5),
            (5.0, 5.0, 1.0),
            (0.0, 1e5, 3.0),
            (1.0, 2.0, 0.0), // refused by both
        ];
        for (start, stop, step) in cases {
            check(&[&a, &b, &c], &[&r], &[s(start), s(stop), s(step)]);
        }
    }
}

#[test]
fn integer_and_bool_reductions() {
    let subsets: [&[isize]; 5] = [&[], &[0], &[1], &[0, 1], &[1, 0]];
    for dtype in [Int8, Int32, Int64, UInt8] {
        let x = matrix("x", dtype);
        let (lo, hi) = if dtype == UInt8 {
            (0.0, 256.0)
        } else {
            (-100.0, 100.0)
        };
        for axes in subsets {
            let outs = [
                x.sum(Some(axes)),
                x.prod(Some(axes)),
                x.max(Some(axes)),
                x.min(Some(axes)),
            ];
            let refs: Vec<&Var> = outs.iter().collect();
            // Small, and large enough to be split across threads (partial results).
            check(&[&x], &refs, &values(dtype, &[&[5, 7]], (lo, hi), 1));
            check(&[&x], &refs, &values(dtype, &[&[300, 301]], (lo, hi), 2));
        }
    }
    let b = matrix("b", Bool);
    for axes in subsets {
        let outs = [b.all(Some(axes)), b.any(Some(axes)), b.sum(Some(axes))];
        let refs: Vec<&Var> = outs.iter().collect();
        check(&[&b], &refs, &values(Bool, &[&[6, 9]], (0.0, 1.0), 3));
        check(&[&b], &refs, &values(Bool, &[&[400, 300]], (0.0, 1.0), 4));
    }
}

#[test]
fn all_and_any_of_numbers_reduce_their_truth_values() {
    // Zeros (and -0.0) are false, everything else — NaN and infinities included — true.
    let floats = [0.0, -0.0, 1.5, f64::NAN, f64::INFINITY, -2.0];
    for dtype in [Float64, Float32, Int64, Int8, UInt8] {
        let x = matrix("x", dtype);
        let outs = [x.all([1]), x.any([1]), x.all([0]), x.any(None)];
        let refs: Vec<&Var> = outs.iter().collect();
        let f = function(&[&x], &refs).mode(Mode::Jit).compile().unwrap();
        assert_eq!(
            jitted(&f, |_| true),
            outs.len(),
            "{dtype}: every all/any is jitted"
        );
        // Rows: all zero, all non-zero, mixed; each special value alone in a row.
        let mut rows: Vec<[f64; 3]> = vec![[0.0; 3], [1.5, -2.0, 3.0], [0.0, 0.0, 7.0]];
        rows.extend(floats.iter().map(|v| [*v, 0.0, 0.0]));
        let cells: Vec<f64> = rows.iter().flatten().copied().collect();
        let data = TensorData::from_vec(&[rows.len(), 3], cells).unwrap();
        let data = tensorlift_runtime::scalar::cast(&data, dtype);
        check(&[&x], &refs, &[data]);
        // Large enough to be split across threads.
        check(&[&x], &refs, &values(dtype, &[&[400, 300]], (-1.0, 1.0), 5));
    }
}

#[test]
fn bools_in_every_kernel_op() {
    use tensorlift::ir::Idx;
    let (p, q) = (matrix("p", Bool), matrix("q", Bool));
    let (v, i) = (vector("v", Bool), vector("i", Int64));
    let outs = [
        p.dot(&q),
        p.dot(&v),
        p.max([0]),
        p.min([1]),
        p.abs() ^ p.floor() ^ q.ceil() ^ q.round(),
        p.inc(
            vec![Idx::Array(i.clone())],
            q.get(vec![Idx::Array(i.clone())]),
        ),
        v.inc(
            vec![Idx::Array(i.clone())],
            &!v.get(vec![Idx::Array(i.clone())]),
        ),
        p.inc(idx![1.., 0], v.get(idx![..-1])),
    ];
    let refs: Vec<&Var> = outs.iter().collect();
    let inputs = [&p, &q, &v, &i];
    let f = function(&inputs, &refs).mode(Mode::Jit).compile().unwrap();
    let kernels = kernels_of(f.fgraph()).len();
    let views = f
        .fgraph()
        .toposort()
        .into_iter()
        .filter(|n| {
            let op = &f.fgraph().node(*n).unwrap().op;
            matches!(
                op,
                tensorlift::ir::Op::Subtensor(_) | tensorlift::ir::Op::DimShuffle(_)
            )
        })
        .count();
    assert_eq!(
        kernels + views,
        f.fgraph().toposort().len(),
        "every node but views is jitted"
    );
    let reference = function(&inputs, &refs)
        .mode(Mode::Reference)
        .compile()
        .unwrap();
    for (n, seed) in [(4usize, 1u64), (1, 2), (0, 3)] {
        let mut vals = values(Bool, &[&[4, 4], &[4, 4], &[4]], (0.0, 1.0), seed);
        let idx: Vec<i64> = [1i64, -1, 1, 0][..n].to_vec();
        vals.push(ndarray::Array1::from(idx).into());
        // With four rows no axis is empty; the maximum of an empty axis fails in both.
        assert!(reference.call(&vals).is_ok());
        check(&inputs, &refs, &vals);
    }
    let empty = values(Bool, &[&[0, 4]], (0.0, 1.0), 4);
    check(&[&p], &[&p.max([0])], &empty);
    assert!(function(&[&p], &[&p.max([0])])
        .compile()
        .unwrap()
        .call(&empty)
        .is_err());
}

#[test]
fn every_node_but_views_is_jitted_in_every_dtype() {
    use tensorlift::ir::{concatenate, split, Idx, Op};
    for dtype in [Float64, Float32, Int64, Int32, Int8, UInt8, Bool] {
        let (x, y) = (matrix("x", dtype), matrix("y", dtype));
        let (b, i) = (matrix("b", Bool), vector("i", Int64));
        let picked = || y.get(vec![Idx::Array(i.clone())]);
        let mut outs = vec![
            &x + &y,
            x.sum([1]),
            x.prod(None),
            x.max([0]),
            x.argmax(Some(1)),
            x.cumsum(Some(0)),
            x.cumprod(None),
            x.t().reshape(&[-1]),
            x.get(vec![Idx::Array(i.clone())]),
            x.set(vec![Idx::Array(i.clone())], picked()),
            x.inc(vec![Idx::Array(i.clone())], picked()),
            x.get(vec![Idx::Array(b.clone())]),
            x.set(vec![Idx::Array(b.clone())], 1i64),
            x.set(idx![1.., 0], 0i64),
            x.inc(idx![1.., 0], 1i64),
            concatenate(&[x.clone(), y.clone()], 0),
            x.dot(&y),
            x.shape(),
            x.abs(),
            x.minimum(&y),
            x.equal(&y),
            switch(b.clone(), &x, &y),
            x.exp(),
            x.floor(),
            x.any(None),
            x.all([0]),
            x.specify_shape(&[Some(3), None])
                .check_that(&[x.shape().sum(None).ge(0i64)], "never"),
        ];
        outs.extend(split(&x, &[1, 2], 0).unwrap());
        let refs: Vec<&Var> = outs.iter().collect();
        let inputs = [&x, &y, &b, &i];
        let f = function(&inputs, &refs).mode(Mode::Jit).compile().unwrap();
        let fg = f.fgraph();
        let jitted: Vec<_> = kernels_of(fg).into_iter().map(|(n, _)| n).collect();
        for n in fg.toposort() {
            let op = &fg.node(n).unwrap().op;
            let view = matches!(op, Op::DimShuffle(_) | Op::Subtensor(_) | Op::Split { .. });
            assert!(jitted.contains(&n) || view, "{dtype}: {op} has no kernel");
        }
        let mut vals = values(dtype, &[&[3, 3], &[3, 3]], (-3.0, 3.0), 71);
        vals.extend(values(Bool, &[&[3, 3]], (0.0, 1.0), 72));
        vals.push(ndarray::array![2i64, -3, 2].into());
        let reference = function(&inputs, &refs).mode(Mode::Reference).compile();
        if let Err(e) = reference.unwrap().call(&vals) {
            panic!("{dtype}: {e}");
        }
        check(&inputs, &refs, &vals);
    }
}

#[test]
fn whole_row_reductions_agree_on_contiguous_and_strided_rows() {
    // Sums, products, maxima, minima of a row and sums of products of two rows, along
    // contiguous rows (one runtime call each), transposed ones (the kernel's own loop) and
    // with a broadcast operand; lengths around the 16 lanes, special values in lanes and
    // tails; float64 and float32 rows (float32 summed in float64, products rounded).
    for dtype in [Float64, Float32] {
        let (x, y) = (matrix("x", dtype), matrix("y", dtype));
        let col = tensor("col", dtype, [None, Some(1)]);
        let outs = [
            x.sum([1]),
            (&x * 0.5).exp().prod([1]),
            x.prod([1]),
            x.max([1]),
            x.min([1]),
            (&x * &y).sum([1]),
            (&x * &x).sum(None),
            (&x * &col).sum([1]),
            x.t().sum([1]),
            (x.t() * y.t()).sum([1]),
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        for n in [0usize, 1, 15, 16, 17, 40, 257] {
            let mut vals = values(dtype, &[&[3, n], &[3, n], &[3, 1]], (-1.5, 1.5), n as u64);
            if n > 2 {
                let mut a = tensorlift_runtime::scalar::cast(&vals[0], Float64)
                    .as_array::<f64>()
                    .unwrap()
                    .to_owned();
                a[[0, n - 1]] = f64::NAN;
                a[[1, n / 2]] = f64::INFINITY;
                a[[2, 1]] = -0.0;
                vals[0] = tensorlift_runtime::scalar::cast(&a.into(), dtype);
            }
            if n > 0 {
                let r = function(&[&x, &y, &col], &refs)
                    .mode(Mode::Reference)
                    .compile();
                assert!(r.unwrap().call(&vals).is_ok(), "{dtype} {n}");
            }
            check(&[&x, &y, &col], &refs, &vals);
        }
    }
}

#[test]
fn reductions_over_outer_axes_give_the_same_bits_contiguous_or_strided() {
    // A reduction over an outer axis accumulates each contiguous row into the output with
    // one runtime call and a strided row with the kernel's own loop: element by element in
    // order both ways, so the bits agree (and the reference's values), NaN and inf included.
    let x = matrix("x", Float64);
    let outs = [x.sum([0]), x.prod([0]), x.max([0]), x.min([0])];
    let refs: Vec<&Var> = outs.iter().collect();
    let f = function(&[&x], &refs).compile().unwrap();
    for (rows, n) in [(1usize, 1usize), (3, 15), (5, 16), (4, 33), (7, 257)] {
        let mut a = values(Float64, &[&[rows, n]], (-1.5, 1.5), (rows * n) as u64)
            .remove(0)
            .as_array::<f64>()
            .unwrap()
            .to_owned()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        if n > 3 {
            a[[0, n - 1]] = f64::NAN;
            a[[rows - 1, 1]] = f64::INFINITY;
            a[[rows / 2, n / 2]] = f64::NEG_INFINITY;
        }
        let contiguous: TensorData = a.clone().into();
        let strided: TensorData = a
            .t()
            .as_standard_layout()
            .into_owned()
            .reversed_axes()
            .into();
        let standard = strided.as_array::<f64>().unwrap().is_standard_layout();
        assert!(!standard || rows == 1 || n == 1, "{rows}x{n}");
        check(&[&x], &refs, std::slice::from_ref(&contiguous));
        let bits = |v: &[TensorData]| -> Vec<Vec<u64>> {
            v.iter()
                .map(|t| {
                    t.as_array::<f64>()
                        .unwrap()
                        .iter()
                        .map(|e| e.to_bits())
                        .collect()
                })
                .collect()
        };
        let by_rows = bits(&f.call(&[contiguous]).unwrap());
        let by_loop = bits(&f.call(&[strided]).unwrap());
        assert_eq!(by_rows, by_loop, "{rows}x{n}");
    }
}

#[test]
fn empty_arrays_and_empty_reductions() {
    let x = matrix("x", Float64);
    let outs = [x.exp(), x.sum([0]), x.sum([1]), x.prod(None)];
    let refs: Vec<&Var> = outs.iter().collect();
    for shape in [[0usize, 3], [3, 0], [0, 0]] {
        check(&[&x], &refs, &values(Float64, &[&shape], (-1.0, 1.0), 1));
        // Max of an empty axis has no identity: both backends must fail.
        check(
            &[&x],
            &[&x.max([0])],
            &values(Float64, &[&shape], (-1.0, 1.0), 1),
        );
    }
}

#[test]
fn fused_reductions_read_their_inputs_once() {
    let x = matrix("x", Float64);
    let y = matrix("y", Float64);
    let outs = [
        x.logsumexp([1]),
        x.logsumexp(None),
        (x.exp() * &y).sum([0]),
        x.softmax(1),
        x.log_softmax(0),
        x.mean([1]),
        x.var([0]),
    ];
    let refs: Vec<&Var> = outs.iter().collect();
    let vals = values(Float64, &[&[6, 9], &[6, 9]], (-3.0, 3.0), 11);
    check(&[&x, &y], &refs, &vals);
    let f = function(&[&x, &y], &[&outs[2]])
        .mode(Mode::Jit)
        .compile()
        .unwrap();
    assert!(
        f.dprint().contains("Sum{axes=[0]} of Composite{"),
        "{}",
        f.dprint()
    );
}

#[test]
fn logsumexp_in_one_pass_over_every_axis_subset_and_dtype() {
    let subsets: [&[isize]; 8] = [&[], &[0], &[1], &[2], &[0, 1], &[0, 2], &[1, 2], &[0, 1, 2]];
    for dtype in [Float64, Float32] {
        let x = tensor("x", dtype, [None, None, None]);
        let y = tensor("y", dtype, [None, None, None]);
        for axes in subsets {
            // Plain, fused with arithmetic before it, and of a transposed view.
            let outs = [
                x.logsumexp(Some(axes)),
                (&x * 3.0 - &y).logsumexp(Some(axes)),
                x.dimshuffle(&[Some(2), Some(0), Some(1)])
                    .logsumexp(Some(axes)),
            ];
            let refs: Vec<&Var> = outs.iter().collect();
            // Rows shorter and longer than a strip (512), odd lengths, size-1 axes.
            for (seed, shape) in [[2usize, 3, 5], [1, 7, 4], [3, 1, 9], [2, 2, 1500]]
                .iter()
                .enumerate()
            {
                let vals = values(dtype, &[shape, shape], (-30.0, 30.0), seed as u64);
                check(&[&x, &y], &refs, &vals);
            }
        }
    }
    let m = matrix("m", Float64);
    let f = function(&[&m], &[&(&m * 2.0).logsumexp([1])])
        .mode(Mode::Jit)
        .compile()
        .unwrap();
    assert!(
        f.dprint().contains("LogSumExp{axes=[1]} of Composite{"),
        "{}",
        f.dprint()
    );
    assert!(
        jitted(&f, |k| k.to_string().contains(" logsumexp= ")) > 0,
        "a jitted one-pass logsumexp"
    );
}

#[test]
fn logsumexp_special_values_empty_rows_and_strides() {
    let (inf, nan) = (f64::INFINITY, f64::NAN);
    let x = matrix("x", Float64);
    let outs = [x.logsumexp([1]), x.logsumexp(None)];
    let refs: Vec<&Var> = outs.iter().collect();
    // Each special value alone in a row, at the start, middle and end of a long row
    // (other strips ordinary), and with magnitudes the naive form over/underflows.
    for special in [-inf, inf, nan, 800.0, -800.0] {
        for at in [0usize, 700, 1299] {
            let mut rows = ArrayD::from_shape_fn(IxDyn(&[4, 1300]), |i| {
                ((i[0] * 1300 + i[1]) % 97) as f64 * 0.3 - 10.0
            });
            rows[[0, at]] = special;
            rows.index_axis_mut(ndarray::Axis(0), 1).fill(special);
            rows[[2, at]] = special;
            rows[[2, (at + 1) % 1300]] = -inf;
            check(&[&x], &refs, &[rows.into()]);
        }
    }
    // A large row first and then smaller ones (rescaling down) and the reverse.
    let rising = ArrayD::from_shape_fn(IxDyn(&[2, 3000]), |i| {
        let v = i[1] as f64 * 0.5;
        if i[0] == 0 {
            v
        } else {
            -v
        }
    });
    check(&[&x], &refs, &[rising.into()]);
    // Empty rows give -inf, no rows give an empty result.
    for shape in [[3usize, 0], [0, 4], [0, 0]] {
        check(&[&x], &refs, &values(Float64, &[&shape], (-1.0, 1.0), 2));
    }
    // The reference against the closed form: log(1 + 2 + 3) = ln 6; all -inf is -inf.
    let f = function(&[&x], &[&outs[0]])
        .mode(Mode::Reference)
        .compile()
        .unwrap();
    let ln = |v: f64| v.ln();
    let got = f
        .call(&[array![[0.0, ln(2.0), ln(3.0)], [-inf, -inf, -inf]].into()])
        .unwrap();
    let got = got[0].as_array::<f64>().unwrap();
    assert!(
        (got[[0]] - 6f64.ln()).abs() < 1e-15 && got[[1]] == -inf,
        "{got}"
    );
    // A caller's non-contiguous (transposed) array goes by strips, not whole rows.
    let base = ArrayD::from_shape_fn(IxDyn(&[900, 3]), |i| (i[0] * 3 + i[1]) as f64 * 0.01);
    check(&[&x], &refs, &[base.reversed_axes().into()]);
    // Integer inputs give float64 (as exp would), through the reference.
    let k = tensor("k", Int64, [None, None]);
    check(
        &[&k],
        &[&k.logsumexp([1])],
        &values(Int64, &[&[3, 5]], (-20.0, 20.0), 4),
    );
}

#[test]
fn softmax_along_every_axis_and_layout() {
    for dtype in [Float64, Float32] {
        let x = tensor("x", dtype, [None, None, None]);
        let y = tensor("y", dtype, [None, None, None]);
        // Along the last axis (the runtime's rows), along the others (written out by the
        // rewrites), of arithmetic, and of a transposed view (rows not contiguous).
        let outs = [
            x.softmax(2),
            x.softmax(1),
            x.softmax(0),
            (&x * 2.0 - &y).softmax(-1),
            x.dimshuffle(&[Some(2), Some(0), Some(1)]).softmax(-1),
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        for (seed, shape) in [
            [2usize, 3, 5],
            [1, 7, 4],
            [3, 1, 9],
            [2, 2, 1500],
            [2, 0, 3],
        ]
        .iter()
        .enumerate()
        {
            let vals = values(dtype, &[shape, shape], (-30.0, 30.0), seed as u64);
            check(&[&x, &y], &refs, &vals);
        }
    }
    let m = matrix("m", Float64);
    let f = function(&[&m], &[&m.softmax(1)])
        .mode(Mode::Jit)
        .compile()
        .unwrap();
    assert!(
        jitted(&f, |k| k.to_string().contains("call softmax(")) > 0,
        "a jitted softmax"
    );
}

#[test]
fn softmax_special_values_and_splits_across_threads() {
    let (inf, nan) = (f64::INFINITY, f64::NAN);
    let x = matrix("x", Float64);
    let outs = [x.softmax(1), x.softmax(0)];
    let refs: Vec<&Var> = outs.iter().collect();
    for special in [-inf, inf, nan, 800.0, -800.0] {
        let mut rows = ArrayD::from_shape_fn(IxDyn(&[4, 900]), |i| {
            ((i[0] * 900 + i[1]) % 89) as f64 * 0.4 - 12.0
        });
        rows[[0, 3]] = special;
        rows.index_axis_mut(ndarray::Axis(0), 1).fill(special);
        rows[[2, 899]] = special;
        rows[[2, 0]] = -inf;
        check(&[&x], &refs, &[rows.into()]);
    }
    // Above the parallel threshold: split across rows (never along them), or not at all
    // when there are too few rows; the caller's transposed array goes row by row.
    for (seed, (r, c)) in [(7usize, 20_000usize), (3, 30_000), (20_000, 5)]
        .into_iter()
        .enumerate()
    {
        let vals = values(Float64, &[&[r, c]], (-5.0, 5.0), seed as u64);
        check(&[&x], &[&x.softmax(1)], &vals);
    }
    let base = ArrayD::from_shape_fn(IxDyn(&[700, 3]), |i| (i[0] * 3 + i[1]) as f64 * 0.01);
    check(&[&x], &refs, &[base.reversed_axes().into()]);
    // Integer inputs give float64, through the reference.
    let k = tensor("k", Int64, [None, None]);
    check(
        &[&k],
        &[&k.softmax(1)],
        &values(Int64, &[&[3, 5]], (-20.0, 20.0), 4),
    );
    // The reference against the closed form: softmax([0, ln 2, ln 3]) = [1, 2, 3] / 6.
    let f = function(&[&x], &[&outs[0]])
        .mode(Mode::Reference)
        .compile()
        .unwrap();
    let got = f
        .call(&[array![[0.0, 2f64.ln(), 3f64.ln()]].into()])
        .unwrap();
    let got = got[0].as_array::<f64>().unwrap();
    for (g, w) in got.iter().zip([1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0]) {
        assert!((g - w).abs() < 1e-15, "{got}");
    }
}

#[test]
fn contiguous_nests_run_as_one_loop_and_other_layouts_as_nests() {
    // Element-wise kernels over contiguous arrays run one loop over every element (the
    // nest collapsed at run time); narrow rows (3 or 1 wide), 3-d, and the layouts that
    // must keep the nest: a transposed input, a reversed one, a broadcast row.
    for dtype in [Float64, Float32] {
        let (x, y) = (matrix("x", dtype), matrix("y", dtype));
        let row = tensor("row", dtype, [Some(1), None]);
        let outs = [
            x.exp() * &y + 1.0,
            (&x * &y).sin(),
            &x * 2.0 - &y,
            (x.t() + y.t()).exp(),
            x.get(tensorlift::idx![..;-1, ..]).exp() + &y,
            x.exp() * &row,
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        for (seed, shape) in [[1000usize, 3], [7, 1], [1, 1100], [33, 17], [0, 4]]
            .iter()
            .enumerate()
        {
            let vals = values(
                dtype,
                &[shape, shape, &[1, shape[1]]],
                (-2.0, 2.0),
                seed as u64,
            );
            check(&[&x, &y, &row], &refs, &vals);
        }
        let t = tensor("t", dtype, [None, None, None]);
        let outs = [
            t.exp() * 0.5,
            t.dimshuffle(&[Some(2), Some(0), Some(1)]).sin(),
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        check(&[&t], &refs, &values(dtype, &[&[5, 3, 7]], (-2.0, 2.0), 9));
    }
}

#[test]
fn strided_transposed_and_reversed_inputs() {
    let x = matrix("x", Float64);
    let y = matrix("y", Float64);
    // Views made by the runtime (transpose, reversed and stepped slices) reach kernels with
    // non-unit and negative strides.
    let outs = [
        (x.t().exp() + y.t()).sum([1]),
        x.get(idx![..;-1, 1..;2]).sin(),
        (x.get(idx![.., ..;-1]) * 2.0 + &y).max([0]),
    ];
    let refs: Vec<&Var> = outs.iter().collect();
    check(
        &[&x, &y],
        &refs,
        &values(Float64, &[&[4, 6], &[4, 6]], (-2.0, 2.0), 3),
    );
    // A non-contiguous array passed by the caller.
    let base = ArrayD::from_shape_fn(IxDyn(&[6, 4]), |i| (i[0] * 4 + i[1]) as f64 * 0.1);
    let transposed: TensorData = base.reversed_axes().into();
    check(
        &[&x, &y],
        &refs,
        &[
            transposed,
            values(Float64, &[&[4, 6]], (-2.0, 2.0), 4).remove(0),
        ],
    );
}

#[test]
fn dot_of_every_rank_pair_calls_gemm() {
    // Floats through gemm; integers as loops of wrapping int64 sums of products, wrapped
    // to the dtype (large values: products and sums wrap).
    for dtype in [Float64, Float32, Int64, Int32, Int8, UInt8] {
        let (kernel, range) = if dtype.is_float() {
            ("dot", (-1.0, 1.0))
        } else {
            ("int_dot", (-120.0, 120.0))
        };
        let (m, v) = (|n: &str| matrix(n, dtype), |n: &str| vector(n, dtype));
        let cases: [(Var, Var, &[usize], &[usize]); 4] = [
            (m("a"), m("b"), &[5, 7], &[7, 3]),
            (m("a"), v("b"), &[5, 7], &[7]),
            (v("a"), m("b"), &[7], &[7, 3]),
            (v("a"), v("b"), &[7], &[7]),
        ];
        for (seed, (a, b, sa, sb)) in cases.into_iter().enumerate() {
            let out = a.dot(&b);
            let f = function(&[&a, &b], &[&out])
                .mode(Mode::Jit)
                .compile()
                .unwrap();
            assert!(
                jitted(&f, |k| k.name == kernel) > 0,
                "{dtype} dot is jitted"
            );
            check(
                &[&a, &b],
                &[&out],
                &values(dtype, &[sa, sb], range, seed as u64),
            );
            // Empty operands: a zero-sized contraction gives zeros.
            let empty = |s: &[usize]| {
                s.iter()
                    .map(|d| if *d == 7 { 0 } else { *d })
                    .collect::<Vec<_>>()
            };
            check(
                &[&a, &b],
                &[&out],
                &values(dtype, &[&empty(sa), &empty(sb)], range, 9),
            );
            // Contracted sizes that disagree: both backends fail, with the same message.
            let short: Vec<usize> = sb
                .iter()
                .enumerate()
                .map(|(k, d)| if k == 0 { d - 1 } else { *d })
                .collect();
            let bad = values(dtype, &[sa, &short], range, 10);
            check(&[&a, &b], &[&out], &bad);
            let err = f.call(&bad).unwrap_err().to_string();
            assert!(err.contains("the contracted dimensions differ"), "{err}");
        }
    }
    // Transposed and reversed operands reach gemm with general strides.
    let (a, b) = (matrix("a", Float64), matrix("b", Float64));
    let out = a.t().dot(&b.get(idx![..;-1, ..]));
    check(
        &[&a, &b],
        &[&out],
        &values(Float64, &[&[6, 4], &[6, 5]], (-1.0, 1.0), 11),
    );
}

#[test]
fn matrix_vector_products_in_every_layout_agree() {
    // A matrix times a vector and a vector times a matrix take row loops instead of gemm
    // when the matrix is contiguous along the product or along the result; large ones
    // are split across threads. Every layout (transposed, reversed, strided vector) and
    // both sizes give the reference's values.
    for dtype in [Float64, Float32] {
        for (rows, cols) in [(9, 5), (700, 300)] {
            let (a, v, w) = (matrix("a", dtype), vector("v", dtype), vector("w", dtype));
            let outs = [
                a.dot(&v),
                a.t().dot(&w),
                w.dot(&a),
                v.dot(&a.t()),
                a.get(idx![..;-1, ..]).dot(&v.get(idx![..;-1])),
                a.get(idx![.., ..;2]).dot(&v.get(idx![..;2])),
            ];
            let refs: Vec<&Var> = outs.iter().collect();
            let vals = values(
                dtype,
                &[&[rows, cols], &[cols], &[rows]],
                (-1.0, 1.0),
                rows as u64,
            );
            check(&[&a, &v, &w], &refs, &vals);
        }
    }
}

#[test]
fn gathers_check_every_index_in_jitted_code() {
    use tensorlift::ir::Idx;
    for (dtype, idx_dtype) in [
        (Float64, Int64),
        (Float32, Int32),
        (Int64, Int64),
        (Float64, UInt8),
    ] {
        let x = matrix("x", dtype);
        let v = vector("v", dtype);
        let i = vector("i", idx_dtype);
        let m = matrix("m", idx_dtype);
        let outs = [
            x.get(vec![Idx::Array(i.clone())]),
            v.get(vec![Idx::Array(m.clone())]),
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        let f = function(&[&x, &v, &i, &m], &refs)
            .mode(Mode::Jit)
            .compile()
            .unwrap();
        let takes = jitted(&f, |k| k.name == "take");
        assert_eq!(takes, 2, "both gathers are jitted ({dtype}, {idx_dtype})");
        let signed = idx_dtype != UInt8;
        let ints = |v: &[i64], shape: &[usize]| -> TensorData {
            let d: TensorData = ArrayD::from_shape_vec(IxDyn(shape), v.to_vec())
                .unwrap()
                .into();
            tensorlift_runtime::cast(&d, idx_dtype)
        };
        let data = values(dtype, &[&[5, 3], &[6]], (-9.0, 9.0), 21);
        let good_rows: &[i64] = if signed {
            &[4, 0, -1, -5, 2, 2]
        } else {
            &[4, 0, 1, 2, 2, 3]
        };
        let good_grid: &[i64] = if signed {
            &[0, -6, 5, 1]
        } else {
            &[0, 5, 5, 1]
        };
        let inputs = |rows: &[i64], grid: &[i64]| {
            vec![
                data[0].clone(),
                data[1].clone(),
                ints(rows, &[rows.len()]),
                ints(grid, &[2, 2]),
            ]
        };
        check(&[&x, &v, &i, &m], &refs, &inputs(good_rows, good_grid));
        // Empty index arrays.
        check(
            &[&x, &v, &i, &m],
            &refs,
            &[
                data[0].clone(),
                data[1].clone(),
                ints(&[], &[0]),
                ints(&[], &[0, 2]),
            ],
        );
        // Out of range, either way: both backends fail, naming the index.
        let bad: &[i64] = if signed { &[5, -6] } else { &[5, 200] };
        for b in bad {
            check(&[&x, &v, &i, &m], &refs, &inputs(&[0, *b], good_grid));
            let err = f
                .call(&inputs(&[0, *b], good_grid))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("index {b}")) && err.contains("out of range"),
                "{err}"
            );
        }
    }
}

/// Python's slice length of `start:stop:step` over `n` elements (step ≠ 0).
fn slice_len(start: i64, stop: i64, step: i64, n: i64) -> usize {
    let clamp = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
    let norm = |v: i64| if v < 0 { v + n } else { v };
    let (lo, hi) = if step > 0 { (0, n) } else { (-1, n - 1) };
    let (a, b) = (clamp(norm(start), lo, hi), clamp(norm(stop), lo, hi));
    let span = if step > 0 { b - a } else { a - b };
    if span <= 0 {
        0
    } else {
        ((span + step.abs() - 1) / step.abs()) as usize
    }
}

#[test]
fn writes_into_basic_regions_in_every_dtype_and_layout() {
    use tensorlift::ir::Idx;
    let int = |v: i64| -> TensorData { TensorData::from_vec(&[], vec![v]).unwrap() };
    for dtype in [Float64, Float32, Int32, Int8, Bool] {
        let x = tensor("x", dtype, [None, None, None]);
        let y = tensor("y", dtype, [None, None]);
        let row = tensor("row", dtype, [Some(1), None]);
        let (a, b, s) = (scalar("a", Int64), scalar("b", Int64), scalar("s", Int64));
        let slice = || Idx::Slice {
            start: Some((&a).into()),
            stop: Some((&b).into()),
            step: Some((&s).into()),
        };
        let full = || Idx::Slice {
            start: None,
            stop: None,
            step: None,
        };
        // x computed in the graph: the call owns it, so it is written in place.
        let x2 = x.exp().cast(dtype);
        // (the write, y's shape for x of shape 4 × 5 × 6 given the slice's lengths along
        // 5 and along 4): slices with run-time bounds and steps, an integer index that
        // removes an axis, trailing axes untouched, values broadcast along static 1s, a
        // bool value added (cast).
        type Case = (Var, fn(usize, usize) -> Vec<usize>);
        let mut cases: Vec<Case> = vec![
            (x.set(vec![full(), slice()], &y), |l5, _| vec![l5, 6]),
            (x.set(vec![Idx::At((&a).into()), slice()], &row), |_, _| {
                vec![1, 6]
            }),
            (
                x.set(vec![full(), full(), Idx::At((&b).into())], &y),
                |_, _| vec![4, 5],
            ),
            (x2.set(vec![slice()], &row), |_, _| vec![1, 6]),
        ];
        if dtype != Bool {
            cases.push((x.inc(vec![full(), slice()], &y), |l5, _| vec![l5, 6]));
            cases.push((x2.inc(vec![Idx::At((&a).into())], &row), |_, _| vec![1, 6]));
            cases.push((x.inc(vec![full(), slice()], y.cast(Bool)), |l5, _| {
                vec![l5, 6]
            }));
        }
        for (out, y_shape) in &cases {
            let inputs = [&x, &y, &row, &a, &b, &s];
            let f = function(&inputs, &[out]).mode(Mode::Jit).compile().unwrap();
            let regions = jitted(&f, |k| k.name.ends_with("_region"));
            assert!(regions > 0, "{dtype}: a jitted region write");
            let reference = function(&inputs, &[out])
                .mode(Mode::Reference)
                .compile()
                .unwrap();
            for (seed, (a_v, b_v, s_v)) in
                [(0, 4, 1), (1, 4, 2), (3, 0, -1), (-1, -5, -2), (2, 2, 1)]
                    .into_iter()
                    .enumerate()
            {
                let (l5, l4) = (slice_len(a_v, b_v, s_v, 5), slice_len(a_v, b_v, s_v, 4));
                let shapes: [&[usize]; 3] = [&[4, 5, 6], &y_shape(l5, l4), &[1, 6]];
                let mut vals = values(dtype, &shapes, (-5.0, 5.0), seed as u64);
                vals.extend([int(a_v), int(b_v), int(s_v)]);
                // Every one of these writes is valid: the reference computes it.
                if let Err(e) = reference.call(&vals) {
                    panic!("{dtype} {a_v}:{b_v}:{s_v}: {e}");
                }
                check(&inputs, &[out], &vals);
            }
            // An index out of range, a zero step, a value of the wrong shape: both fail.
            for (a_v, s_v, y_shape) in [(7, 1, vec![4, 6]), (0, 0, vec![4, 6]), (0, 1, vec![3, 3])]
            {
                let shapes: [&[usize]; 3] = [&[4, 5, 6], &y_shape, &[1, 6]];
                let mut vals = values(dtype, &shapes, (-5.0, 5.0), 9);
                vals.extend([int(a_v), int(4), int(s_v)]);
                check(&inputs, &[out], &vals);
            }
        }
    }
    // The caller's array is never written (its copy is), even when nothing else uses it.
    let x = matrix("x", Float64);
    let f = function(&[&x], &[&x.set(tensorlift::idx![1..], 7.0)])
        .compile()
        .unwrap();
    let shared: TensorData = ndarray::Array2::<f64>::zeros((3, 2)).into();
    let out = f.call(std::slice::from_ref(&shared)).unwrap();
    assert_eq!(shared.as_array::<f64>().unwrap().sum(), 0.0);
    assert_eq!(out[0].as_array::<f64>().unwrap().sum(), 7.0 * 4.0);
}

#[test]
fn gathers_and_scatters_on_any_axis() {
    use tensorlift::ir::Idx;
    let full = || Idx::Slice {
        start: None,
        stop: None,
        step: None,
    };
    for dtype in [Float64, Float32, Int32] {
        let t = tensor("t", dtype, [None, None, None]);
        let i = vector("i", Int64);
        let m = matrix("m", Int64);
        let y = tensor("y", dtype, [None, None, None]);
        let row = tensor("row", dtype, [Some(1), Some(1), None]);
        let at = |axis: usize, idx: &Var| -> Vec<Idx> {
            let mut v: Vec<Idx> = (0..axis).map(|_| full()).collect();
            v.push(Idx::Array(idx.clone()));
            v
        };
        // Gathers on axes 1 and 2 (with a trailing full slice too), with a 1-d and a 2-d
        // index array; scatters on axis 1 (set / inc, a value broadcast along static 1s).
        let mut with_tail = at(1, &i);
        with_tail.push(full());
        let outs = [
            t.get(at(1, &i)),
            t.get(at(2, &i)),
            t.get(with_tail),
            t.get(at(1, &m)),
            t.set(at(1, &i), &y),
            t.inc(at(1, &i), &y),
            t.inc(at(1, &i), &row),
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        let inputs = [&t, &i, &m, &y, &row];
        let f = function(&inputs, &refs).mode(Mode::Jit).compile().unwrap();
        let jitted = jitted(&f, |k| k.name == "take" || k.name.ends_with("_scatter"));
        assert_eq!(
            jitted,
            outs.len(),
            "{dtype}: every gather and scatter is jitted"
        );
        let ints = |v: &[i64], shape: &[usize]| -> TensorData {
            ArrayD::from_shape_vec(IxDyn(shape), v.to_vec())
                .unwrap()
                .into()
        };
        // t is 3 × 4 × 4 (axes 1 and 2 both of size 4); indices repeat and wrap.
        let vals = |rows: &[i64]| {
            let mut v = vec![values(dtype, &[&[3, 4, 4]], (-9.0, 9.0), 41).remove(0)];
            v.push(ints(rows, &[rows.len()]));
            v.push(ints(&[0, -1, 3, 2], &[2, 2]));
            v.extend(values(
                dtype,
                &[&[3, rows.len(), 4], &[1, 1, 4]],
                (-9.0, 9.0),
                42,
            ));
            v
        };
        let reference = function(&inputs, &refs)
            .mode(Mode::Reference)
            .compile()
            .unwrap();
        for rows in [&[1, -4, 3, 1][..], &[]] {
            if let Err(e) = reference.call(&vals(rows)) {
                panic!("{dtype} {rows:?}: {e}");
            }
            check(&inputs, &refs, &vals(rows));
        }
        // Out of range on axis 1 (and 2): both fail, the JIT naming the axis.
        for bad in [4, -5] {
            check(&inputs, &refs, &vals(&[0, bad]));
            let g = function(&[&t, &i], &[&t.get(at(2, &i))]).compile().unwrap();
            let err = g.call(&vals(&[0, bad])[..2]).unwrap_err().to_string();
            assert!(
                err.contains(&format!("index {bad}")) && err.contains("axis 2"),
                "{err}"
            );
        }
    }
}

#[test]
fn gathers_with_several_index_arrays() {
    use tensorlift::ir::Idx;
    let full = || Idx::Slice {
        start: None,
        stop: None,
        step: None,
    };
    for dtype in [Float64, Float32, Int64] {
        let x = matrix("x", dtype);
        let t = tensor("t", dtype, [None, None, None]);
        let (i, j) = (vector("i", Int64), vector("j", Int32));
        let col = tensor("col", Int64, [None, Some(1)]);
        let row = tensor("row", Int64, [Some(1), None]);
        let grid = matrix("grid", Int64);
        // Pairs x[i, j] (cross-entropy's logp[arange_dtype(n), labels]), an outer product of
        // indices broadcast along static 1s, arrays of different ranks (j aligned with
        // grid's last axis), and adjacent arrays after a full slice.
        let outs = [
            x.get(vec![Idx::Array(i.clone()), Idx::Array(j.clone())]),
            x.get(vec![Idx::Array(col.clone()), Idx::Array(row.clone())]),
            x.get(vec![Idx::Array(grid.clone()), Idx::Array(j.clone())]),
            t.get(vec![full(), Idx::Array(i.clone()), Idx::Array(j.clone())]),
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        let inputs = [&x, &t, &i, &j, &col, &row, &grid];
        let f = function(&inputs, &refs).mode(Mode::Jit).compile().unwrap();
        let takes = jitted(&f, |k| k.name == "take");
        assert_eq!(takes, outs.len(), "{dtype}: every gather is jitted");
        let reference = function(&inputs, &refs)
            .mode(Mode::Reference)
            .compile()
            .unwrap();
        let vals = |iv: &[i64], jv: &[i64]| -> Vec<TensorData> {
            let mut v = values(dtype, &[&[4, 5], &[2, 4, 5]], (-9.0, 9.0), 51);
            v.push(ndarray::Array1::from(iv.to_vec()).into());
            let j32: Vec<i32> = jv.iter().map(|v| *v as i32).collect();
            v.push(ndarray::Array1::from(j32).into());
            v.push(ndarray::array![[0i64], [3], [-1]].into());
            v.push(ndarray::array![[4i64, 0, -5, 2]].into());
            let n = iv.len() as i64;
            v.push(
                ndarray::Array2::from_shape_fn((2, iv.len()), |(a, b)| {
                    (a as i64 + b as i64) % 4 - n % 2
                })
                .into(),
            );
            v
        };
        for (iv, jv) in [(&[0, 3, -1, 2][..], &[4, 0, -5, 1][..]), (&[], &[])] {
            if let Err(e) = reference.call(&vals(iv, jv)) {
                panic!("{dtype}: {e}");
            }
            check(&inputs, &refs, &vals(iv, jv));
        }
        // Arrays of different lengths, and an index out of range in the second array.
        check(&inputs, &refs, &vals(&[0, 1], &[0, 1, 2]));
        check(&inputs, &refs, &vals(&[0, 1], &[0, 5]));
        let g = function(&[&x, &i, &j], &[&outs[0]]).compile().unwrap();
        let v = vals(&[0, 1], &[0, 5]);
        let err = g
            .call(&[v[0].clone(), v[2].clone(), v[3].clone()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("index 5") && err.contains("axis 1"), "{err}");
    }
}

#[test]
fn scatters_with_several_index_arrays() {
    use tensorlift::ir::Idx;
    for dtype in [Float64, Float32, Int32] {
        let x = matrix("x", dtype);
        let (i, j) = (vector("i", Int64), vector("j", Int64));
        let col = tensor("col", Int64, [None, Some(1)]);
        let row = tensor("row", Int64, [Some(1), None]);
        let y = vector("y", dtype);
        let g = matrix("g", dtype);
        let pairs = || vec![Idx::Array(i.clone()), Idx::Array(j.clone())];
        let outer = || vec![Idx::Array(col.clone()), Idx::Array(row.clone())];
        // x[i, j] += y (cross-entropy's gradient: repeated pairs accumulate), x[i, j] = y
        // (the last write wins), a scalar added, and an outer product of indices.
        let outs = [
            x.inc(pairs(), &y),
            x.set(pairs(), &y),
            x.inc(pairs(), 1.5),
            x.inc(outer(), &g),
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        let inputs = [&x, &i, &j, &col, &row, &y, &g];
        let f = function(&inputs, &refs).mode(Mode::Jit).compile().unwrap();
        let scatters = jitted(&f, |k| k.name.ends_with("_scatter"));
        assert_eq!(scatters, outs.len(), "{dtype}: every scatter is jitted");
        let reference = function(&inputs, &refs)
            .mode(Mode::Reference)
            .compile()
            .unwrap();
        let vals = |iv: &[i64], jv: &[i64], n_y: usize| -> Vec<TensorData> {
            let mut v = values(dtype, &[&[4, 5]], (-9.0, 9.0), 61);
            v.push(ndarray::Array1::from(iv.to_vec()).into());
            v.push(ndarray::Array1::from(jv.to_vec()).into());
            v.push(ndarray::array![[0i64], [3], [-1]].into());
            v.push(ndarray::array![[4i64, 0, -5, 4]].into());
            v.extend(values(dtype, &[&[n_y], &[3, 4]], (-9.0, 9.0), 62));
            v
        };
        for (iv, jv) in [(&[0, 3, -1, 0, 0][..], &[4, 0, -5, 4, 4][..]), (&[], &[])] {
            if let Err(e) = reference.call(&vals(iv, jv, iv.len())) {
                panic!("{dtype}: {e}");
            }
            check(&inputs, &refs, &vals(iv, jv, iv.len()));
        }
        // Arrays of different lengths, a value of the wrong length, an index out of range.
        check(&inputs, &refs, &vals(&[0, 1], &[0, 1, 2], 2));
        check(&inputs, &refs, &vals(&[0, 1], &[0, 1], 3));
        check(&inputs, &refs, &vals(&[0, 4], &[0, 1], 2));
    }
}

#[test]
fn gathers_by_boolean_masks() {
    use tensorlift::ir::Idx;
    let full = || Idx::Slice {
        start: None,
        stop: None,
        step: None,
    };
    for dtype in [Float64, Float32, Int64] {
        let x = matrix("x", dtype);
        let t = tensor("t", dtype, [None, None, None]);
        let rows = vector("rows", Bool);
        let cells = matrix("cells", Bool);
        // Rows by a 1-d mask, elements by a mask of x's shape, columns after a full slice,
        // and the last two axes of a 3-d input.
        let outs = [
            x.get(vec![Idx::Array(rows.clone())]),
            x.get(vec![Idx::Array(cells.clone())]),
            t.get(vec![full(), Idx::Array(cells.clone())]),
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        let inputs = [&x, &t, &rows, &cells];
        let f = function(&inputs, &refs).mode(Mode::Jit).compile().unwrap();
        let takes = jitted(&f, |k| k.name == "take");
        assert_eq!(takes, outs.len(), "{dtype}: every masked gather is jitted");
        let reference = function(&inputs, &refs)
            .mode(Mode::Reference)
            .compile()
            .unwrap();
        let vals = |rows_v: &[bool], every: usize, cells_shape: (usize, usize)| {
            let mut v = values(dtype, &[&[4, 5], &[2, 4, 5]], (-9.0, 9.0), 71);
            v.push(ndarray::Array1::from(rows_v.to_vec()).into());
            let cells_v =
                ndarray::Array2::from_shape_fn(cells_shape, |(a, b)| (a * 5 + b) % every == 0);
            v.push(cells_v.into());
            v
        };
        for (rows_v, every) in [
            (&[true, false, true, true][..], 3),
            (&[false; 4][..], 100),
            (&[true; 4][..], 1),
        ] {
            let v = vals(rows_v, every, (4, 5));
            if let Err(e) = reference.call(&v) {
                panic!("{dtype}: {e}");
            }
            check(&inputs, &refs, &v);
        }
        // Masks whose shapes differ from the axes they cover: both fail.
        check(&inputs, &refs, &vals(&[true, false], 2, (4, 5)));
        check(&inputs, &refs, &vals(&[true; 4], 2, (5, 4)));
    }
}

#[test]
fn scatters_by_boolean_masks() {
    use tensorlift::ir::Idx;
    for dtype in [Float64, Float32, Int32] {
        let x = matrix("x", dtype);
        let cells = matrix("cells", Bool);
        let rows = vector("rows", Bool);
        let y = vector("y", dtype);
        let r = matrix("r", dtype);
        let row = tensor("row", dtype, [Some(1), None]);
        // x[mask] = 0 (clipping by a mask), x[mask] += y (one value per hit), whole rows
        // set from a matrix, and a row broadcast into every selected row.
        let outs = [
            x.set(vec![Idx::Array(cells.clone())], 0.0),
            x.inc(vec![Idx::Array(cells.clone())], &y),
            x.set(vec![Idx::Array(rows.clone())], &r),
            x.inc(vec![Idx::Array(rows.clone())], &row),
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        let inputs = [&x, &cells, &rows, &y, &r, &row];
        let f = function(&inputs, &refs).mode(Mode::Jit).compile().unwrap();
        let scatters = jitted(&f, |k| k.name.ends_with("_scatter"));
        assert_eq!(
            scatters,
            outs.len(),
            "{dtype}: every masked scatter is jitted"
        );
        let reference = function(&inputs, &refs)
            .mode(Mode::Reference)
            .compile()
            .unwrap();
        let vals = |every: usize, rows_v: &[bool], hits: usize, picked: usize| {
            let mut v = values(dtype, &[&[4, 5]], (-9.0, 9.0), 81);
            let cells_v = ndarray::Array2::from_shape_fn((4, 5), |(a, b)| (a * 5 + b) % every == 0);
            v.push(cells_v.into());
            v.push(ndarray::Array1::from(rows_v.to_vec()).into());
            v.extend(values(
                dtype,
                &[&[hits], &[picked, 5], &[1, 5]],
                (-9.0, 9.0),
                82,
            ));
            v
        };
        for (every, rows_v) in [(3, &[true, false, true, false][..]), (100, &[false; 4][..])] {
            let hits = (0..20).filter(|n| n % every == 0).count();
            let picked = rows_v.iter().filter(|b| **b).count();
            let v = vals(every, rows_v, hits, picked);
            if let Err(e) = reference.call(&v) {
                panic!("{dtype}: {e}");
            }
            check(&inputs, &refs, &v);
        }
        // One value too many, and a mask of the wrong shape: both fail.
        check(&inputs, &refs, &vals(3, &[true, false, true, false], 8, 2));
        check(&inputs, &refs, &vals(3, &[true, false], 7, 2));
    }
}

#[test]
fn advanced_indices_in_any_arrangement() {
    use tensorlift::ir::Idx;
    let full = Idx::full;
    for dtype in [Float64, Float32, Int64] {
        let t = tensor("t", dtype, [None, None, None]);
        let (i, j) = (vector("i", Int64), vector("j", Int32));
        let ij = matrix("ij", Int64);
        let n = scalar("n", Int64);
        let (lo, hi) = (scalar("lo", Int64), scalar("hi", Int64));
        let rows = vector("rows", Bool);
        let cells = matrix("cells", Bool);
        let part = || Idx::slice(Some((&lo).into()), Some((&hi).into()), None);
        let back = || Idx::slice(None, None, Some((-1i64).into()));
        let arr = |v: &Var| Idx::Array(v.clone());
        // NumPy's rules: arrays apart from each other (their common shape first), slices
        // next to arrays, scalar indices among arrays, masks mixed with arrays and slices.
        let gathers = [
            t.get(vec![arr(&i), full(), arr(&j)]),
            t.get(vec![part(), arr(&i)]),
            t.get(vec![back(), arr(&i), part()]),
            t.get(vec![arr(&i), part(), arr(&j)]),
            t.get(vec![Idx::At((&n).into()), full(), arr(&i)]),
            t.get(vec![full(), Idx::At((&n).into()), arr(&i)]),
            t.get(vec![arr(&rows), full(), arr(&j)]),
            t.get(vec![arr(&rows), part()]),
            t.get(vec![arr(&cells), Idx::At((&n).into())]),
            t.get(vec![arr(&ij), back(), arr(&j)]),
        ];
        let (y2, y3) = (matrix("y2", dtype), tensor("y3", dtype, [None, None, None]));
        let (r, v) = (tensor("r", dtype, [Some(1), None]), vector("v", dtype));
        let scatters = [
            t.set(vec![arr(&i), full(), arr(&j)], &y2),
            t.inc(vec![part(), arr(&i)], &y3),
            t.inc(vec![back(), arr(&i), part()], 1.5),
            t.set(vec![Idx::At((&n).into()), full(), arr(&i)], 0.5),
            t.inc(vec![arr(&rows), full(), arr(&j)], &r),
            t.inc(vec![arr(&cells), Idx::At((&n).into())], &v),
        ];
        let outs: Vec<Var> = gathers.iter().chain(&scatters).cloned().collect();
        let refs: Vec<&Var> = outs.iter().collect();
        let inputs = [
            &t, &i, &j, &ij, &n, &lo, &hi, &rows, &cells, &y2, &y3, &r, &v,
        ];
        let f = function(&inputs, &refs).mode(Mode::Jit).compile().unwrap();
        let kernels = jitted(&f, |k| k.name == "take" || k.name.ends_with("_scatter"));
        assert_eq!(kernels, outs.len(), "{dtype}: every index is jitted");
        let ints = |v: &[i64], shape: &[usize]| -> TensorData {
            ArrayD::from_shape_vec(IxDyn(shape), v.to_vec())
                .unwrap()
                .into()
        };
        // t is 4 × 5 × 6; i and j pick 3 positions (repeated, negative), `rows` 3 rows.
        let vals = |iv: &[i64], jv: &[i32], nv: i64, (lo_v, hi_v): (i64, i64), hits: usize| {
            let mut v = values(dtype, &[&[4, 5, 6]], (-9.0, 9.0), 51);
            v.push(ints(iv, &[iv.len()]));
            v.push(ndarray::Array1::from(jv.to_vec()).into());
            v.push(ints(&[0, -1, 2, 3, 1, 0], &[2, 3]));
            v.extend([ints(&[nv], &[]), ints(&[lo_v], &[]), ints(&[hi_v], &[])]);
            v.push(ndarray::Array1::from(vec![true, false, true, true]).into());
            let cells_v = ndarray::Array2::from_shape_fn((4, 5), |(a, b)| (a * 5 + b) % 7 == 0);
            v.push(cells_v.into());
            let width = (hi_v - lo_v).clamp(0, 5) as usize;
            v.extend(values(
                dtype,
                &[&[iv.len(), 5], &[width, iv.len(), 6], &[1, 5], &[hits]],
                (-9.0, 9.0),
                52,
            ));
            v
        };
        let reference = |out: &Var, v: &[TensorData]| {
            let g = function(&inputs, &[out]).mode(Mode::Reference).compile();
            g.unwrap().call(v)
        };
        let good = vals(&[1, -2, 1], &[0, 5, -6], -1, (1, 3), 3);
        for out in &outs {
            if let Err(e) = reference(out, &good) {
                panic!("{dtype}: {e}");
            }
            check(&inputs, &[out], &good);
        }
        // An index out of range in each kind of entry, arrays that do not broadcast, a
        // scalar index out of range next to an empty slice, a value of the wrong length:
        // each output as the reference has it (and the reference fails somewhere).
        for bad in [
            vals(&[1, 4, 0], &[0, 1, 2], 0, (1, 3), 3),
            vals(&[1, 2, 0], &[0, 6, 2], 0, (1, 3), 3),
            vals(&[1, 2], &[0, 1, 2], 0, (1, 3), 3),
            vals(&[1, 2, 0], &[0, 1, 2], 4, (1, 3), 3),
            vals(&[1, 2, 0], &[0, 1, 2], -5, (3, 1), 3),
            vals(&[1, 2, 0], &[0, 1, 2], 0, (1, 3), 4),
        ] {
            let fails = outs.iter().filter(|o| reference(o, &bad).is_err()).count();
            assert!(fails > 0, "{dtype}: a bad case the reference accepts");
            for out in &outs {
                check(&inputs, &[out], &bad);
            }
        }
    }
}

#[test]
fn scatters_check_every_index_and_keep_the_reference_order() {
    use tensorlift::ir::Idx;
    for dtype in [Float64, Float32, Int32] {
        let x = matrix("x", dtype);
        let i = vector("i", Int64);
        let rows = matrix("rows", dtype);
        let row = tensor("row", dtype, [Some(1), None]);
        let one = vector("one", dtype);
        let at = || vec![Idx::Array(i.clone())];
        let outs = [
            x.inc(at(), &rows),
            x.set(at(), &rows),
            x.inc(at(), &row),
            x.set(at(), &one),
            x.inc(at(), 2.0),
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        let f = function(&[&x, &i, &rows, &row, &one], &refs)
            .mode(Mode::Jit)
            .compile()
            .unwrap();
        let scatters = jitted(&f, |k| k.name.ends_with("_scatter"));
        assert!(scatters >= 4, "{dtype}: {scatters} scatters jitted");
        let data = values(dtype, &[&[5, 3], &[4, 3], &[1, 3], &[3]], (-9.0, 9.0), 31);
        let index = |v: &[i64]| -> TensorData { ndarray::Array1::from(v.to_vec()).into() };
        let inputs = |idx: &[i64], n: usize| {
            let mut v = vec![data[0].clone(), index(idx)];
            v.push(values(dtype, &[&[n, 3]], (-9.0, 9.0), 32).remove(0));
            v.extend(data[2..].iter().cloned());
            v
        };
        // Repeated indices (accumulate / last wins), negative ones.
        check(
            &[&x, &i, &rows, &row, &one],
            &refs,
            &inputs(&[1, -4, 4, 1], 4),
        );
        check(&[&x, &i, &rows, &row, &one], &refs, &inputs(&[], 0));
        for bad in [5, -6] {
            check(&[&x, &i, &rows, &row, &one], &refs, &inputs(&[0, bad], 2));
            let err = f.call(&inputs(&[0, bad], 2)).unwrap_err().to_string();
            assert!(err.contains(&format!("index {bad}")), "{err}");
        }
        // Values whose rows disagree with the indices: both fail.
        check(&[&x, &i, &rows, &row, &one], &refs, &inputs(&[0, 1, 2], 2));
    }
}

#[test]
fn shape_bookkeeping_is_jitted() {
    use tensorlift::ir::make_vector;
    for dtype in [Float64, Int32] {
        let x = tensor("x", dtype, [None, None, None]);
        let (n, w) = (scalar("n", Int32), scalar("w", Float64));
        let cut = scalar("cut", dtype);
        let outs = [
            x.shape(),
            make_vector(&[(&n).into(), (&w).into(), 3i64.into()]),
            x.specify_shape(&[None, Some(3), None]) * 2i64,
            x.check_that(&[x.gt(&cut), n.ge(0i64)], "x must exceed the cut") * 2i64,
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        let inputs = [&x, &n, &w, &cut];
        let f = function(&inputs, &refs).mode(Mode::Jit).compile().unwrap();
        for name in ["shape", "make_vector", "specify_shape", "check"] {
            assert_eq!(
                jitted(&f, |k| k.name == name),
                1,
                "{dtype}: {name} is jitted"
            );
        }
        let vals = |shape: &[usize], nv: i32, cut_v: f64| {
            let mut v = values(dtype, &[shape], (1.0, 9.0), 91);
            v.push(ndarray::arr0(nv).into_dyn().into());
            v.push(ndarray::arr0(2.5f64).into_dyn().into());
            v.extend(values(dtype, &[&[]], (cut_v, cut_v), 92));
            v
        };
        let reference = function(&inputs, &refs)
            .mode(Mode::Reference)
            .compile()
            .unwrap();
        let good = vals(&[2, 3, 4], 7, -20.0);
        if let Err(e) = reference.call(&good) {
            panic!("{dtype}: {e}");
        }
        check(&inputs, &refs, &good);
        // Empty x: no element to fail.
        let empty = vals(&[0, 3, 1], 7, 20.0);
        assert!(reference.call(&empty).is_ok(), "{dtype}");
        check(&inputs, &refs, &empty);
        // A size the graph fixes, a failed condition (the reference's message each).
        for (bad, what) in [
            (
                vals(&[2, 4, 4], 7, -20.0),
                "dimension 1 of input 0 has size 4",
            ),
            (vals(&[2, 3, 4], 7, 20.0), "x must exceed the cut"),
            (vals(&[2, 3, 4], -1, -20.0), "x must exceed the cut"),
        ] {
            let err = reference.call(&bad).unwrap_err().to_string();
            assert!(err.contains(what), "{dtype}: {err}");
            let jit_err = f.call(&bad).unwrap_err().to_string();
            assert_eq!(jit_err, err, "{dtype}");
        }
    }
}

#[test]
fn views_share_memory_and_only_strided_data_is_copied_to_reshape() {
    use tensorlift::ir::idx;
    for dtype in [Float64, Int32] {
        let x = matrix("x", dtype);
        let outs = [
            x.t(),
            x.get(idx![1..3]),
            x.reshape(&[3, -1]),
            x.t().reshape(&[-1]),
            x.get(idx![.., 1..;2]).reshape(&[2, -1]),
        ];
        let refs: Vec<&Var> = outs.iter().collect();
        let f = function(&[&x], &refs).mode(Mode::Jit).compile().unwrap();
        let data = values(dtype, &[&[4, 6]], (-9.0, 9.0), 61).remove(0);
        let got = f.call(std::slice::from_ref(&data)).unwrap();
        // The transpose, the rows and the contiguous reshape address x's own memory.
        let addr = |t: &TensorData| match dtype {
            Float64 => t.as_array::<f64>().unwrap().as_ptr() as usize,
            _ => t.as_array::<i32>().unwrap().as_ptr() as usize,
        };
        let (base, size) = (addr(&data), dtype.size_bytes());
        assert_eq!(addr(&got[0]), base, "{dtype}: x.T is a view");
        assert_eq!(addr(&got[1]), base + 6 * size, "{dtype}: x[1:3] is a view");
        assert_eq!(
            addr(&got[2]),
            base,
            "{dtype}: a contiguous reshape is a view"
        );
        let inside = |t: &TensorData| (base..base + 24 * size).contains(&addr(t));
        assert!(
            !inside(&got[3]) && !inside(&got[4]),
            "{dtype}: strided data is copied"
        );
        check(&[&x], &refs, &[data]);
        // A strided input, and a shape that does not fit: as the reference.
        let strided = values(dtype, &[&[6, 4]], (-9.0, 9.0), 62).remove(0);
        let strided: TensorData = match dtype {
            Float64 => strided.as_array::<f64>().unwrap().t().to_owned().into(),
            _ => strided.as_array::<i32>().unwrap().t().to_owned().into(),
        };
        let standard = match dtype {
            Float64 => strided.as_array::<f64>().unwrap().is_standard_layout(),
            _ => strided.as_array::<i32>().unwrap().is_standard_layout(),
        };
        assert!(!standard, "{dtype}: the input is strided");
        check(&[&x], &refs, &[strided]);
        check(&[&x], &refs, &values(dtype, &[&[5, 6]], (-9.0, 9.0), 63));
    }
}

#[test]
fn bad_inputs_fail_in_both_backends() {
    let x = vector("x", Float64);
    let y = vector("y", Float64);
    let out = x.exp() + &y;
    // Sizes 3 and 4: no runtime broadcasting.
    let vals = vec![
        array![1.0, 2.0, 3.0].into(),
        array![1.0, 2.0, 3.0, 4.0].into(),
    ];
    check(&[&x, &y], &[&out], &vals);
    let f = function(&[&x, &y], &[&out])
        .mode(Mode::Jit)
        .compile()
        .unwrap();
    let err = f.call(&vals).unwrap_err().to_string();
    assert!(err.contains("size 4") && err.contains("size 3"), "{err}");
    // A size-1 value where the static type says "any size" does not broadcast either.
    let vals = vec![array![1.0, 2.0, 3.0].into(), array![1.0].into()];
    assert!(f.call(&vals).is_err());
}

#[test]
fn kernels_are_shared_by_threads() {
    let x = vector("x", Float64);
    let f = function(&[&x], &[&(x.exp() * 2.0).sum(None)])
        .mode(Mode::Jit)
        .compile()
        .unwrap();
    let f = std::sync::Arc::new(f);
    let handles: Vec<_> = (0..4)
        .map(|k| {
            let f = f.clone();
            std::thread::spawn(move || {
                let v: Vec<f64> = (0..1000).map(|i| (i + k) as f64 * 1e-3).collect();
                let want: f64 = v.iter().map(|x| x.exp() * 2.0).sum();
                let got = f.call(&[ndarray::Array1::from(v).into()]).unwrap()[0]
                    .item_f64()
                    .unwrap();
                assert!((got - want).abs() <= 1e-9 * want.abs());
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn large_calls_split_across_threads_agree() {
    // Above the parallel threshold the executor splits kernels along a kept dimension
    // (shared outputs) or, for full reductions, a reduced one (partial results combined).
    let x = matrix("x", Float64);
    let y = tensor("y", Float64, [Some(1), None]);
    let outs = [
        (x.exp() * &y).sin(),
        x.sum([0]),
        x.sum([1]),
        x.max(None),
        x.min([0]),
        x.logsumexp(None),
        x.prod([1]),
        x.t().exp(),
    ];
    let refs: Vec<&Var> = outs.iter().collect();
    for (seed, (m, n)) in [(300usize, 301usize), (7, 20_000), (20_000, 5)]
        .into_iter()
        .enumerate()
    {
        let vals = values(Float64, &[&[m, n], &[1, n]], (-1.0, 1.0), seed as u64);
        check(&[&x, &y], &refs, &vals);
    }
    let v = vector("v", Float32);
    let outs = [v.sum(None), v.max(None), (v.exp() + 1.0).log()];
    let refs: Vec<&Var> = outs.iter().collect();
    check(
        &[&v],
        &refs,
        &values(Float32, &[&[100_003]], (-2.0, 2.0), 9),
    );
    // NaN in one thread's half still propagates through the combined max.
    let mut big = vec![0.5; 200_000];
    big[150_000] = f64::NAN;
    let z = vector("z", Float64);
    check(
        &[&z],
        &[&z.max(None), &z.min(None)],
        &[ndarray::Array1::from(big).into()],
    );
}

/// Float32 arithmetic runs four lanes in float32 (`codegen`'s f32x4 bodies): the
/// results must equal the reference's (each op in f64, rounded to float32) bit for bit,
/// for every length (vector body and tails), broadcast operands and special values.
#[test]
fn float32_arithmetic_in_float32_lanes_is_exact() {
    let (x, y) = (vector("x", Float32), vector("y", Float32));
    let row = tensor("row", Float32, [Some(1)]);
    let outs = [
        ((&x * &y + 1.5) / (x.abs() + 1.0))
            .maximum(&(&y * 0.25))
            .sqr(),
        (&x - &row).minimum(&y).clip(-2.0, 2.0).sign() + x.sqrt(),
        switch(x.lt(&y), x.floor() * &row, y.ceil().reciprocal()),
        (&x * 3.0).round() - (&x / &y),
    ];
    let refs: Vec<&Var> = outs.iter().collect();
    let jit = function(&[&x, &y, &row], &refs)
        .mode(Mode::Jit)
        .compile()
        .unwrap();
    let reference = function(&[&x, &y, &row], &refs)
        .mode(Mode::Reference)
        .compile()
        .unwrap();
    let special = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        1e-40,
        3e38,
    ];
    for n in (1..=40).chain([1000, 4099]) {
        let mut vals = values(Float32, &[&[n], &[n], &[1]], (-3.0, 3.0), n as u64);
        if n > 7 {
            let mut v = vals[0].as_array::<f32>().unwrap().to_owned();
            for (k, s) in special.iter().enumerate() {
                v[3 * k % n] = *s;
            }
            vals[0] = v.into();
        }
        let (a, b) = (jit.call(&vals).unwrap(), reference.call(&vals).unwrap());
        for (k, (p, q)) in a.iter().zip(&b).enumerate() {
            let (p, q) = (p.as_array::<f32>().unwrap(), q.as_array::<f32>().unwrap());
            for (i, (u, w)) in p.iter().zip(q.iter()).enumerate() {
                let same = u.to_bits() == w.to_bits() || (u.is_nan() && w.is_nan());
                assert!(
                    same,
                    "output {k}, n = {n}, element {i}: jit {u:e}, reference {w:e}"
                );
            }
        }
    }
}

#[test]
fn max_and_min_propagate_nan_from_every_position() {
    let (x, m) = (vector("x", Float64), matrix("m", Float64));
    let outs = [
        x.max(None),
        x.min(None),
        x.exp().max(None),
        (&x * 2.0).min(None),
    ];
    let refs: Vec<&Var> = outs.iter().collect();
    let rows = [m.max([1]), m.min([0])];
    let row_refs: Vec<&Var> = rows.iter().collect();
    for n in [1usize, 2, 3, 7, 8, 9, 17, 31, 600, 1100] {
        // The NaN in every unrolled step, lane and tail position (and none).
        let positions: Vec<Option<usize>> = if n <= 40 {
            std::iter::once(None).chain((0..n).map(Some)).collect()
        } else {
            vec![None, Some(0), Some(1), Some(n / 2), Some(n - 1)]
        };
        for at in positions {
            let mut v: Vec<f64> = (0..n).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
            if n > 2 {
                v[n / 3] = f64::NEG_INFINITY;
                v[n - 2] = -0.0;
            }
            if let Some(p) = at {
                v[p] = f64::NAN;
            }
            check(&[&x], &refs, &[ndarray::Array1::from(v.clone()).into()]);
            let rows = ArrayD::from_shape_vec(IxDyn(&[1, n]), v).unwrap();
            let both = ndarray::concatenate(ndarray::Axis(0), &[rows.view(), rows.view()]).unwrap();
            check(&[&m], &row_refs, &[both.into()]);
        }
    }
}

#[test]
fn compiled_code_is_cached_while_used_and_freed_after() {
    use tensorlift_compiler::jit::is_cached;
    let x = vector("x", Float64);
    // A constant no other test uses, so this kernel is ours alone.
    let y = (x.exp() * 1.234_567_89).sin();
    let f1 = function(&[&x], &[&y]).compile().unwrap();
    assert!(is_cached(f1.fgraph()));
    let f2 = function(&[&x], &[&y]).compile().unwrap();
    let input: TensorData = array![0.5, 1.5, -2.0].into();
    let (a, b) = (
        f1.call(std::slice::from_ref(&input)).unwrap(),
        f2.call(std::slice::from_ref(&input)).unwrap(),
    );
    assert!(a[0].same_as(&b[0]));
    let fg = f1.fgraph().clone();
    drop(f1);
    assert!(is_cached(&fg), "f2 still uses the code");
    drop(f2);
    assert!(!is_cached(&fg), "the code is freed with its last user");
    let f3 = function(&[&x], &[&y]).compile().unwrap();
    assert!(is_cached(f3.fgraph()));
    assert_eq!(f3.call(&[input]).unwrap().len(), 1);
}

#[test]
fn recycled_intermediates_never_leak_into_results_or_callers_arrays() {
    // Large intermediates are recycled for the next call's kernel outputs: results of
    // earlier calls, and the caller's inputs, must not change, and stale values must not
    // show through.
    let x = matrix("x", Float64);
    let y = x.softmax(1);
    let z = (x.exp() * 2.0).sum([0]);
    let f = function(&[&x], &[&y, &z]).compile().unwrap();
    let r = function(&[&x], &[&y, &z])
        .mode(Mode::Reference)
        .compile()
        .unwrap();
    let a = values(Float64, &[&[300, 400]], (-3.0, 3.0), 21).remove(0);
    let b = values(Float64, &[&[300, 400]], (-1.0, 1.0), 22).remove(0);
    let a_copy = a.as_array::<f64>().unwrap().to_owned();
    let first = f.call(std::slice::from_ref(&a)).unwrap();
    let first_copy: Vec<Vec<f64>> = first
        .iter()
        .map(|o| o.as_array::<f64>().unwrap().iter().copied().collect())
        .collect();
    for input in [&b, &a, &b] {
        let got = f.call(std::slice::from_ref(input)).unwrap();
        let want = r.call(std::slice::from_ref(input)).unwrap();
        for (g, w) in got.iter().zip(&want) {
            tensorlift::testing::assert_allclose("recycled", g, w).unwrap();
        }
    }
    assert_eq!(
        a.as_array::<f64>().unwrap(),
        a_copy.view(),
        "the caller's input changed"
    );
    for (o, copy) in first.iter().zip(&first_copy) {
        let now: Vec<f64> = o.as_array::<f64>().unwrap().iter().copied().collect();
        assert_eq!(&now, copy, "an earlier result changed");
    }
}

/// Builds an advanced index on a tensor of `shape` from slot `kinds` (0 full slice, 1
/// slice with bounds and step, 2 scalar index, 3 and 4 1-d and 2-d integer arrays, 5 a
/// boolean mask over one axis), with index values drawn from `rng` (out of range ones
/// when `bad`): the index, its graph inputs with their values, and whether the reference
/// must accept it.
fn random_advanced_index(
    shape: &[usize],
    kinds: &[u8],
    bad: bool,
    rng: &mut TestRng,
) -> (Vec<tensorlift::ir::Idx>, Vec<Var>, Vec<TensorData>) {
    use tensorlift::ir::Idx;
    fn draw(rng: &mut TestRng, n: usize) -> usize {
        (rng.next_f64() * n as f64) as usize % n.max(1)
    }
    // A position along an axis of `size` (negative half the time), or one past the end.
    fn position(rng: &mut TestRng, size: usize, bad: bool) -> i64 {
        let p = draw(rng, size) as i64 - if draw(rng, 2) == 1 { size as i64 } else { 0 };
        if bad {
            size as i64 + draw(rng, 2) as i64
        } else {
            p
        }
    }
    // A mask fixes how many positions the arrays select (its hits).
    let mask_axis = kinds.iter().take(shape.len()).position(|k| k % 6 == 5);
    let hits_mask: Option<Vec<bool>> =
        mask_axis.map(|a| (0..shape[a]).map(|_| draw(rng, 2) == 1).collect());
    let len = match &hits_mask {
        Some(m) => m.iter().filter(|b| **b).count(),
        None => 1 + draw(rng, 3),
    };
    let (mut idx, mut vars, mut vals) = (Vec::new(), Vec::new(), Vec::new());
    for (axis, kind) in kinds.iter().take(shape.len()).enumerate() {
        let size = shape[axis] as i64;
        let name = format!("s{axis}");
        match kind % 6 {
            0 => idx.push(Idx::full()),
            1 => {
                let (lo, hi) = (
                    scalar(&format!("{name}lo"), Int64),
                    scalar(&format!("{name}hi"), Int64),
                );
                let step = [1i64, 2, -1, -2][draw(rng, 4)];
                idx.push(Idx::slice(
                    Some((&lo).into()),
                    Some((&hi).into()),
                    Some(step.into()),
                ));
                vals.push(
                    ndarray::arr0(draw(rng, 2 * shape[axis] + 1) as i64 - size)
                        .into_dyn()
                        .into(),
                );
                vals.push(
                    ndarray::arr0(draw(rng, 2 * shape[axis] + 1) as i64 - size)
                        .into_dyn()
                        .into(),
                );
                vars.extend([lo, hi]);
            }
            2 => {
                let n = scalar(&name, Int64);
                idx.push(Idx::At((&n).into()));
                let bad_here = bad && draw(rng, 2) == 1;
                vals.push(
                    ndarray::arr0(position(rng, shape[axis], bad_here))
                        .into_dyn()
                        .into(),
                );
                vars.push(n);
            }
            5 if Some(axis) == mask_axis => {
                let m = vector(&name, Bool);
                idx.push(Idx::Array(m.clone()));
                vals.push(ndarray::Array1::from(hits_mask.clone().unwrap_or_default()).into());
                vars.push(m);
            }
            k => {
                let rows = if k == 4 { 2 } else { 1 };
                let a = if k == 4 {
                    matrix(&name, Int64)
                } else {
                    vector(&name, Int64)
                };
                let cells: Vec<i64> = (0..rows * len)
                    .map(|c| position(rng, shape[axis], bad && c == 0))
                    .collect();
                let shape = if k == 4 { vec![rows, len] } else { vec![len] };
                vals.push(TensorData::from_vec(&shape, cells).unwrap());
                idx.push(Idx::Array(a.clone()));
                vars.push(a);
            }
        }
    }
    (idx, vars, vals)
}

proptest! {
    #![proptest_config(common::proptest_config(256, 0x1d_e7e5))]
    /// Random advanced indices — every arrangement of full and partial slices, scalar
    /// indices, integer arrays and a mask on float64, float32, int32 and bool tensors of
    /// rank 1 to 4 — read, set and incremented: the JIT gives the reference's results, and
    /// fails where it fails.
    #[test]
    fn random_advanced_indices_agree(
        shape in prop::collection::vec(1usize..5, 1..5),
        kinds in prop::collection::vec(any::<u8>(), 1..5),
        bad in prop::bool::weighted(0.15),
        dtype_code in 0u8..4,
        seed in any::<u64>(),
    ) {
        let dtype = [Float64, Float32, Int32, Bool][dtype_code as usize];
        let mut rng = TestRng::new(seed);
        let x = tensor("x", dtype, vec![None; shape.len()]);
        let (idx, vars, mut vals) = random_advanced_index(&shape, &kinds, bad, &mut rng);
        let read = x.get(idx.clone());
        prop_assume!(read.check().is_ok());
        let mut inputs = vec![&x];
        inputs.extend(vars.iter());
        let mut all = vec![random_of_shape(dtype, &shape, (-9.0, 9.0), &mut rng)];
        all.append(&mut vals);
        let reference = function(&inputs, &[&read]).mode(Mode::Reference).compile().unwrap();
        let selected = reference.call(&all);
        let valid = selected.is_ok();
        prop_assert!(valid || bad, "a valid index the reference rejects: {:?}", selected.err());
        if let Err(e) = compare_backends(&inputs, &[&read], &all, Mode::Jit) {
            prop_assert!(false, "read: {}", e);
        }
        // Writes of a value of the selected shape (from the reference's read), or a scalar.
        let value_shape = selected.map(|s| s[0].shape().to_vec()).unwrap_or_default();
        let y = tensor("y", dtype, vec![None; value_shape.len()]);
        let mut with_y = inputs.clone();
        with_y.push(&y);
        let mut vals_y = all.clone();
        vals_y.push(random_of_shape(dtype, &value_shape, (-9.0, 9.0), &mut rng));
        let mut writes = vec![x.set(idx.clone(), &y), x.inc(idx.clone(), &y)];
        if dtype.is_float() {
            writes.push(x.inc(idx.clone(), 0.5));
        }
        for write in writes {
            if let Err(e) = compare_backends(&with_y, &[&write], &vals_y, Mode::Jit) {
                prop_assert!(false, "write: {}", e);
            }
        }
    }
}

/// `data` (rank ≥ 1) in memory layout `layout`: 0 as it is (row-major), 1 stored with its
/// axes reversed, 2 read backwards along the last axis — the same logical values.
fn arranged(data: ArrayD<f64>, layout: u8) -> ArrayD<f64> {
    let last = ndarray::Axis(data.ndim() - 1);
    match layout {
        0 => data,
        1 => data.t().as_standard_layout().into_owned().reversed_axes(),
        _ => {
            let mut flipped = data;
            flipped.invert_axis(last);
            let mut view = flipped.into_shared();
            view.invert_axis(last);
            view.into_owned()
        }
    }
}

proptest! {
    #![proptest_config(common::proptest_config(256, 0x0e_d0c5))]
    /// Random reductions (sum, product, maximum, minimum, sum of squares) over random axes
    /// of float64 and float32 tensors of rank 1 to 4, contiguous, with reversed axes or
    /// read backwards, with NaN and infinities now and then: whole-row calls, row
    /// accumulations and the kernels' own loops all give the reference's values.
    #[test]
    fn random_reductions_agree_in_every_layout(
        outer in prop::collection::vec(1usize..7, 0..4),
        last in 1usize..70,
        axes_bits in any::<u8>(),
        kind in 0u8..5,
        f32_dtype in any::<bool>(),
        layout in 0u8..3,
        special in prop::option::weighted(0.3, (any::<prop::sample::Index>(), 0u8..3)),
        seed in any::<u64>(),
    ) {
        let dtype = if f32_dtype { Float32 } else { Float64 };
        // Rows long enough for the runtime's 16 lanes and their tails.
        let shape: Vec<usize> = outer.iter().copied().chain([last]).collect();
        let r = shape.len();
        let axes: Vec<isize> = (0..r as isize).filter(|a| axes_bits & (1 << a) != 0).collect();
        let x = tensor("x", dtype, vec![None; r]);
        let on = Some(axes.as_slice());
        let out = match kind {
            0 => x.sum(on),
            1 => (&x * 0.25).exp().prod(on) + x.prod(on),
            2 => x.max(on),
            3 => x.min(on),
            _ => (&x * &x).sum(on),
        };
        let mut rng = TestRng::new(seed);
        let mut data = random_of_shape(Float64, &shape, (-2.0, 2.0), &mut rng)
            .as_array::<f64>()
            .unwrap()
            .to_owned();
        if let Some((at, which)) = special {
            let flat = at.index(data.len());
            let v = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][which as usize];
            if let Some(e) = data.iter_mut().nth(flat) {
                *e = v;
            }
        }
        let arranged = arranged(data, layout);
        let value = tensorlift_runtime::scalar::cast(&arranged.into(), dtype);
        if let Err(e) = compare_backends(&[&x], &[&out], &[value], Mode::Jit) {
            prop_assert!(false, "{}", e);
        }
    }
}

proptest! {
    #![proptest_config(common::proptest_config(128, 0x5ca_2a55))]
    /// Random running sums/products and arg-reductions along a random axis (or of the
    /// flattened tensor) of float64, float32 and int32 tensors of rank 1 to 3, contiguous,
    /// with reversed axes or read backwards, NaN now and then: the reference's values.
    #[test]
    fn random_scans_and_arg_reductions_agree_in_every_layout(
        shape in prop::collection::vec(1usize..9, 1..4),
        axis_code in 0u8..4,
        kind in 0u8..4,
        dtype_code in 0u8..3,
        layout in 0u8..3,
        nan_at in prop::option::weighted(0.2, any::<prop::sample::Index>()),
        seed in any::<u64>(),
    ) {
        let dtype = [Float64, Float32, Int32][dtype_code as usize];
        let r = shape.len();
        let axis = (axis_code as usize) < r;
        let axis = axis.then_some(axis_code as isize);
        let x = tensor("x", dtype, vec![None; r]);
        let out = match kind {
            0 => x.cumsum(axis),
            1 => (&x * 0.5).cumprod(axis),
            2 => x.argmax(axis),
            _ => x.argmin(axis),
        };
        prop_assume!(out.check().is_ok());
        let mut rng = TestRng::new(seed);
        let mut data = random_of_shape(Float64, &shape, (-3.0, 3.0), &mut rng)
            .as_array::<f64>()
            .unwrap()
            .to_owned();
        if let (Some(at), true) = (nan_at, dtype.is_float()) {
            let flat = at.index(data.len());
            if let Some(e) = data.iter_mut().nth(flat) {
                *e = f64::NAN;
            }
        }
        let arranged = arranged(data, layout);
        let value = tensorlift_runtime::scalar::cast(&arranged.into(), dtype);
        if let Err(e) = compare_backends(&[&x], &[&out], &[value], Mode::Jit) {
            prop_assert!(false, "{}", e);
        }
    }
}

// ---------------------------------------------------------------- random graphs

/// A random graph (`tensorlift::testing::random_graph`) of kernel ops, views and
/// reductions.
fn random_graph(steps: &[(u8, usize, usize)]) -> (Vec<Var>, Vec<Var>) {
    tensorlift::testing::random_graph(steps, |code, a, b| {
        let (a, b) = (a.clone(), b.clone());
        let picks = || Idx::Array(constant(array![2i64, 0, -1]));
        // Indexing by constant positions needs both sizes unknown (3 at run time).
        let open = |v: &Var| v.ty().shape.iter().all(|s| s.is_none());
        let code = if (25..30).contains(&(code % 31)) && !(open(&a) && open(&b)) {
            4
        } else {
            code
        };
        match code % 31 {
            0 => &a + &b,
            1 => &a * &b,
            2 => &a - &b,
            3 => a.maximum(&b),
            4 => a.exp(),
            5 => (a.abs() + 1.0).log(),
            6 => a.sigmoid(),
            7 => a.tanh() * 3.0,
            8 => a.t(),
            9 => a.sum([1]).expand_dims(1),
            10 => a.max([0]).expand_dims(0),
            // sin and cos of bounded arguments: of a huge one (say exp(26), or sin(exp(x))
            // after an integer detour, found at 100k cases) the last-ulp differences of the
            // polynomial exp become visible ones (ill-conditioned, not wrong).
            11 => (a.tanh() * 3.0).sin() / (b.tanh().cos().abs() + 1.0),
            12 => switch(a.gt(&b), &a, &b),
            13 => a.logsumexp([0]).expand_dims(0),
            14 => (&a * 0.5).sum([0]).expand_dims(0),
            // An integer detour (exact in both backends; float32 detours would round
            // differently within float32 tolerance, which float64 outputs cannot show).
            15 => ((&a * 100.0).cast(Int32) % 7i64 + (&b * 10.0).cast(Int16)).cast(Float64),
            16 => a.cumsum(Some(1)) - b.cumprod(Some(0)),
            17 => a.argmax(Some(0)).cast(Float64).expand_dims(0) + &b,
            18 => (a.gt(0.0) & b.lt(&a)).cast(Float64) * &a,
            19 => a.get(idx![..;-1, ..]),
            20 => a.softmax(1) + &b,
            21 => a.log_softmax(0) * &b,
            22 => a.logsumexp([1]).expand_dims(1) - &b,
            23 => a.set(idx![1.., ..;2], a.get(idx![..1, ..;2])) + &b,
            24 => a.inc(idx![.., 0], 2.0) * &b,
            // Advanced indices: arrays (with a reversed slice), masks computed in the
            // graph, scatters by two arrays; a reshape of transposed (strided) data.
            25 => a.get(vec![picks(), Idx::full()]) * &b,
            26 => a.get(vec![Idx::slice(None, None, Some((-1i64).into())), picks()]) - &b,
            27 => a.set(vec![Idx::Array(a.gt(&b))], 0.0) + &b,
            28 => a.inc(
                vec![picks(), picks()],
                b.get(vec![Idx::full(), Idx::At(0i64.into())]),
            ),
            29 => a.t().reshape(&[-1]).reshape(&[3, 3]) * &b,
            _ => a.expm1() + (&b * 0.3).tanh(),
        }
    })
}

proptest! {
    // A fixed seed: float comparisons with tolerances must not flake in CI; change the
    // seed (or set PROPTEST_RNG_SEED) to explore other graphs.
    #![proptest_config(common::proptest_config(64, 0x7e57_11f7))]
    #[test]
    fn random_graphs_agree(steps in prop::collection::vec((any::<u8>(), 0usize..64, 0usize..64), 1..12), seed in any::<u64>()) {
        let (inputs, outputs) = random_graph(&steps);
        let ins: Vec<&Var> = inputs.iter().collect();
        let outs: Vec<&Var> = outputs.iter().collect();
        let vals = values(Float64, &[&[3, 3], &[3, 3], &[1, 3], &[3, 1]], (-2.0, 2.0), seed);
        if let Err(e) = compare_backends(&ins, &outs, &vals, Mode::Jit) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// A random graph of kernel ops that keep their operands' shapes (element-wise math,
/// reductions kept as broadcast dimensions, softmax, logsumexp, scans, transposes of
/// squares), for arrays large enough for strips, whole-row calls and vector bodies.
fn random_shape_keeping_graph(steps: &[(u8, usize, usize)]) -> (Vec<Var>, Vec<Var>) {
    tensorlift::testing::random_graph(steps, |code, a, b| {
        let (a, b) = (a.clone(), b.clone());
        match code % 16 {
            0 => &a + &b,
            1 => &a * &b,
            2 => a.exp() - &b,
            // sin of a bounded argument (as in `random_graph`): sin(exp(exp(x))) is
            // ill-conditioned.
            3 => (a.tanh() * 3.0).sin() * b.tanh(),
            4 => (a.abs() + 1.0).log() + &b,
            5 => a.sum([1]).expand_dims(1) * 0.01 + &b,
            6 => a.max([0]).expand_dims(0) - &b,
            7 => (&a * &b).sum([1]).expand_dims(1) * 0.01 + &a,
            8 => a.softmax(1) + &b,
            9 => a.logsumexp([1]).expand_dims(1) - &b,
            10 => (a.cumsum(Some(1)) * 0.01).sigmoid() + &b,
            11 => a.min([1]).expand_dims(1) + (&a * &a).sum([0]).expand_dims(0) * 0.01,
            12 => switch(a.gt(&b), &a, &b),
            13 => a.prod([0]).expand_dims(0).tanh() + &b,
            14 => (a.expm1() * 0.5).softplus() - &b,
            _ => a.log_softmax(1) * 0.1 + &b,
        }
    })
}

proptest! {
    #![proptest_config(common::proptest_config(24, 0x1a_46e5))]
    /// Random graphs on 37 × 70 arrays (rows longer than a vector body, strips of math,
    /// whole-row reductions and accumulations), every value checked against the
    /// reference.
    #[test]
    fn random_graphs_agree_on_larger_arrays(steps in prop::collection::vec((any::<u8>(), 0usize..64, 0usize..64), 1..10), seed in any::<u64>()) {
        let (inputs, outputs) = random_shape_keeping_graph(&steps);
        let ins: Vec<&Var> = inputs.iter().collect();
        let outs: Vec<&Var> = outputs.iter().collect();
        let vals = values(Float64, &[&[37, 70], &[37, 70], &[1, 70], &[37, 1]], (-2.0, 2.0), seed);
        let reference = function(&ins, &outs).mode(Mode::Reference).compile().unwrap();
        prop_assert!(reference.call(&vals).is_ok(), "the reference rejects the graph");
        if let Err(e) = compare_backends(&ins, &outs, &vals, Mode::Jit) {
            prop_assert!(false, "{}", e);
        }
    }
}

//! Bad input never crashes, hangs or aborts (issue 16): a corpus of inputs a new user may
//! give at graph build, compile and call, each run on both backends with and without
//! rewrites, under a watchdog thread that turns a hang into a failure and with panics
//! caught and reported. Each case expects an `Err` naming the op, or the value NumPy
//! defines (closed forms written here, never the output of the code under test).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

use ndarray::{ArrayD, IxDyn};
use tensorlift::prelude::*;
use tensorlift::Error;

/// A hang is anything still running after this long (debug builds, two busy cores;
/// `TL_WATCHDOG_SECS` overrides it); every case here finishes in milliseconds when right.
fn watchdog() -> Duration {
    let secs = std::env::var("TL_WATCHDOG_SECS")
        .ok()
        .and_then(|s| s.parse().ok());
    Duration::from_secs(secs.unwrap_or(60))
}

/// The modes every case runs in.
fn modes() -> Vec<(&'static str, Mode)> {
    vec![
        ("reference", Mode::Reference),
        ("jit", Mode::Jit),
        (
            "reference without rewrites",
            Mode::Reference.without_rewrites(),
        ),
        ("jit without rewrites", Mode::Jit.without_rewrites()),
    ]
}

/// Runs `f` on its own thread; a panic or a run longer than `WATCHDOG` fails the test.
fn guarded<T: Send + 'static>(label: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = catch_unwind(AssertUnwindSafe(f));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(watchdog()) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{label}: panicked: {text}")
        }
        Err(_) => panic!("{label}: still running after {:?}: a hang", watchdog()),
    }
}

type Graph = (Vec<Var>, Vec<Var>);

/// Builds the graph, compiles it in `mode` and calls it once.
fn run(
    build: &(dyn Fn() -> Graph + Sync),
    inputs: &[TensorData],
    mode: Mode,
) -> Result<Vec<TensorData>, Error> {
    let (ins, outs) = build();
    let ins: Vec<&Var> = ins.iter().collect();
    let outs: Vec<&Var> = outs.iter().collect();
    function(&ins, &outs).mode(mode).compile()?.call(inputs)
}

/// Every mode must fail with an error whose text contains each of `needles`.
fn expect_err(
    label: &str,
    build: impl Fn() -> Graph + Send + Sync + 'static,
    inputs: Vec<TensorData>,
    needles: &[&str],
) {
    let build = std::sync::Arc::new(build);
    for (name, mode) in modes() {
        let (b, i) = (build.clone(), inputs.clone());
        let case = format!("{label} [{name}]");
        let result = guarded(&case, move || run(&*b, &i, mode));
        match result {
            Ok(v) => panic!("{case}: expected an error, got {v:?}"),
            Err(e) => {
                let text = e.to_string();
                assert!(
                    !text.contains("internal"),
                    "{case}: an internal error for bad input: {text}"
                );
                for needle in needles {
                    assert!(
                        text.contains(needle),
                        "{case}: `{text}` does not name `{needle}`"
                    );
                }
            }
        }
    }
}

/// Every mode must return outputs equal to `want` (NaN equal to NaN; floats within 1e-14
/// relative, the JIT's polynomial math being within a few ulp).
fn expect_values(
    label: &str,
    build: impl Fn() -> Graph + Send + Sync + 'static,
    inputs: Vec<TensorData>,
    want: Vec<TensorData>,
) {
    let build = std::sync::Arc::new(build);
    for (name, mode) in modes() {
        let (b, i) = (build.clone(), inputs.clone());
        let case = format!("{label} [{name}]");
        let got = guarded(&case, move || run(&*b, &i, mode))
            .unwrap_or_else(|e| panic!("{case}: unexpected error: {e}"));
        assert_eq!(got.len(), want.len(), "{case}: output count");
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                (g.dtype(), g.shape()),
                (w.dtype(), w.shape()),
                "{case}: output {k}"
            );
            let (gs, ws) = (
                tensorlift::testing::as_f64s(g),
                tensorlift::testing::as_f64s(w),
            );
            for (j, (a, b)) in gs.iter().zip(&ws).enumerate() {
                assert!(
                    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-14 * b.abs(),
                    "{case}: output {k} element {j} is {a}, expected {b}"
                );
            }
        }
    }
}

fn i64s(values: &[i64]) -> TensorData {
    ArrayD::from_shape_vec(IxDyn(&[values.len()]), values.to_vec())
        .unwrap()
        .into()
}

fn i32s(values: &[i32]) -> TensorData {
    ArrayD::from_shape_vec(IxDyn(&[values.len()]), values.to_vec())
        .unwrap()
        .into()
}

fn f64s(shape: &[usize], values: &[f64]) -> TensorData {
    ArrayD::from_shape_vec(IxDyn(shape), values.to_vec())
        .unwrap()
        .into()
}

fn i64_scalar(v: i64) -> TensorData {
    ArrayD::from_elem(IxDyn(&[]), v).into()
}

// --- 1. integer overflow in division -------------------------------------------------

#[test]
fn floor_division_and_remainder_of_the_minimum_by_minus_one_wrap_as_numpy() {
    let min = i64::MIN;
    let inputs = vec![i64s(&[min, 7, -7, min, 5]), i64s(&[-1, -2, 2, 1, 0])];
    expect_values(
        "int64 // and % by arrays",
        || {
            let (x, y) = (vector("x", Int64), vector("y", Int64));
            (vec![x.clone(), y.clone()], vec![x.floor_div(&y), &x % &y])
        },
        inputs.clone(),
        vec![i64s(&[min, -4, -4, min, 0]), i64s(&[0, -1, 1, 0, 0])],
    );
    expect_values(
        "int64 // and % by a literal -1",
        || {
            let x = vector("x", Int64);
            // `x % -1` on a graph variable: the remainder is computed at run time.
            #[allow(clippy::modulo_one)]
            let rem = &x % -1;
            (vec![x.clone()], vec![x.floor_div(-1), rem])
        },
        vec![i64s(&[min, 7, -7])],
        vec![i64s(&[min, -7, 7]), i64s(&[0, 0, 0])],
    );
    expect_values(
        "int64 // and % inside a fused composite",
        || {
            let (x, y) = (vector("x", Int64), vector("y", Int64));
            let q = (x.floor_div(&y) + 1) * 2 + (&x % &y);
            (vec![x.clone(), y.clone()], vec![q])
        },
        inputs,
        // (MIN + 1) * 2 wraps to -2^64 + 2 = 2; (-4 + 1) * 2 - 1; (-4 + 1) * 2 + 1; ...
        vec![i64s(&[2, -7, -5, 2, 2])],
    );
    let m32 = i32::MIN;
    expect_values(
        "int32 // and % of the minimum by -1",
        || {
            let (x, y) = (vector("x", Int32), vector("y", Int32));
            (vec![x.clone(), y.clone()], vec![x.floor_div(&y), &x % &y])
        },
        vec![i32s(&[m32, m32]), i32s(&[-1, 1])],
        vec![i32s(&[m32, m32]), i32s(&[0, 0])],
    );
}

// --- 2 and 3. allocation failures, constant folding -----------------------------------

#[test]
fn outputs_too_large_to_allocate_are_errors_naming_the_node() {
    let huge: [(&str, i64, i64); 3] = [
        ("8 TiB", 1 << 20, 1 << 20),
        ("2^62 elements", 1 << 31, 1 << 31),
        ("an element count past 2^64", 1 << 40, 1 << 40),
    ];
    for (label, a, b) in huge {
        expect_err(
            &format!("Alloc of {label} from run-time sizes"),
            || {
                let (n, m) = (scalar("n", Int64), scalar("m", Int64));
                let out = alloc(0.0, &[(&n).into(), (&m).into()]);
                (vec![n, m], vec![out])
            },
            vec![i64_scalar(a), i64_scalar(b)],
            &["Alloc", "bytes"],
        );
        expect_err(
            &format!("Alloc of {label} from constant sizes"),
            move || {
                let x = scalar("x", Float64);
                let out = alloc(&x, &[a.into(), b.into()]);
                (vec![x], vec![out])
            },
            vec![f64s(&[], &[1.0])],
            &["Alloc", "bytes"],
        );
    }
    expect_err(
        "arange_dtype(0, i64::MAX) from a run-time stop",
        || {
            let n = scalar("n", Int64);
            let out = arange_dtype(0, &n, 1, Int64);
            (vec![n], vec![out])
        },
        vec![i64_scalar(i64::MAX)],
        &["ARange", "bytes"],
    );
    expect_err(
        "arange_dtype(0, 1e30, 1.0) from a run-time stop",
        || {
            let n = scalar("n", Float64);
            let out = arange_dtype(0.0, &n, 1.0, Float64);
            (vec![n], vec![out])
        },
        vec![f64s(&[], &[1e30])],
        &["ARange"],
    );
}

#[test]
fn constant_folding_does_not_evaluate_huge_results() {
    expect_err(
        "arange_dtype(0, 2^40) of constants",
        || {
            let x = scalar("x", Int64);
            let out = arange_dtype(0, 1i64 << 40, 1, Int64) + &x;
            (vec![x], vec![out])
        },
        vec![i64_scalar(1)],
        &["ARange", "bytes"],
    );
    // Large but possible: compiles without folding the range into a constant.
    let x = scalar("x", Int64);
    let out = arange_dtype(0, 1i64 << 27, 1, Int64).sum(None) + &x;
    for (name, mode) in modes() {
        let (x, out) = (x.clone(), out.clone());
        let f = guarded(name, move || function(&[&x], &[&out]).mode(mode).compile())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            f.dprint().contains("ARange"),
            "{name}: a 2^27-element range was folded at compile time:\n{}",
            f.dprint()
        );
    }
}

// --- 4. empty arrays with a huge dimension ---------------------------------------------

/// An empty float64 array of `shape` (one dimension is 0; others may be huge).
fn empty(shape: &[usize]) -> TensorData {
    ArrayD::<f64>::zeros(IxDyn(shape)).into()
}

#[test]
fn empty_arrays_with_a_huge_dimension_cost_nothing() {
    let shapes: [[usize; 2]; 3] = [[1 << 62, 0], [0, 1 << 62], [1 << 40, 0]];
    for shape in shapes {
        let label = format!("{shape:?}");
        expect_values(
            &format!("exp and transpose of {label}"),
            || {
                let x = matrix("x", Float64);
                (
                    vec![x.clone()],
                    vec![x.exp(), x.t() * 2.0, x.softmax(-1), x.softmax(0)],
                )
            },
            vec![empty(&shape)],
            vec![
                empty(&shape),
                empty(&[shape[1], shape[0]]),
                empty(&shape),
                empty(&shape),
            ],
        );
        expect_values(
            &format!("sum of all of {label}"),
            || {
                let x = matrix("x", Float64);
                (
                    vec![x.clone()],
                    vec![x.sum(None), x.exp().sum(None), x.prod(None)],
                )
            },
            vec![empty(&shape)],
            vec![f64s(&[], &[0.0]), f64s(&[], &[0.0]), f64s(&[], &[1.0])],
        );
        // Reducing the empty axis away leaves an empty result; reducing the other gives
        // one value per element of a huge axis: too large to allocate.
        let (zero_axis, other) = if shape[0] == 0 { (0, 1) } else { (1, 0) };
        expect_values(
            &format!("sum over the non-empty axis of {label}"),
            move || {
                let x = matrix("x", Float64);
                (vec![x.clone()], vec![x.sum([other]), x.max([other])])
            },
            vec![empty(&shape)],
            vec![empty(&[0]), empty(&[0])],
        );
        expect_err(
            &format!("sum over the empty axis of {label}"),
            move || {
                let x = matrix("x", Float64);
                (vec![x.clone()], vec![x.sum([zero_axis])])
            },
            vec![empty(&shape)],
            &["bytes"],
        );
    }
}

// --- 5. fusion must not create cycles --------------------------------------------------

#[test]
fn fusion_keeps_groups_convex() {
    let x_values = f64s(&[2, 3], &[0.5, -1.0, 2.0, 0.0, 1.5, -0.25]);
    // Expected values from the reference backend without rewrites (no fusion).
    let want = |build: &(dyn Fn() -> Graph + Sync)| {
        run(
            build,
            std::slice::from_ref(&x_values),
            Mode::Reference.without_rewrites(),
        )
        .unwrap()
    };
    let softmaxes = || {
        let x = matrix("x", Float64);
        let s = &x + &x;
        let e = x.exp();
        (vec![x.clone()], vec![s.softmax(1) + &e, e.softmax(1) + &s])
    };
    let rows = || {
        let x = matrix("x", Float64);
        let rs = |v: &Var| v.sum([1]).expand_dims(1);
        let a = &x + &x;
        let b = rs(&x) + &x;
        (vec![x.clone()], vec![rs(&(&a + &b)) + rs(&(rs(&a) + &b))])
    };
    for (label, build) in [
        (
            "softmaxes of shared sums",
            &softmaxes as &(dyn Fn() -> Graph + Sync),
        ),
        ("nested row sums", &rows),
    ] {
        let expected = want(build);
        for (name, mode) in modes() {
            let got = run(build, std::slice::from_ref(&x_values), mode)
                .unwrap_or_else(|e| panic!("{label} [{name}]: {e}"));
            for (g, w) in got.iter().zip(&expected) {
                // Polynomial exp and reassociated sums differ from the reference by rounding.
                tensorlift::testing::assert_allclose(label, g, w).unwrap();
            }
        }
    }
}

// --- 7. size arithmetic that overflows -------------------------------------------------

#[test]
fn size_arithmetic_on_user_values_is_checked() {
    expect_err(
        "split_by with sizes whose sum wraps",
        || {
            let x = vector("x", Float64);
            let sizes = vector("sizes", Int64);
            let parts = split_by_parts(&x, &sizes, 4);
            (vec![x, sizes], parts)
        },
        vec![
            f64s(&[3], &[1.0, 2.0, 3.0]),
            i64s(&[1 << 62, 1 << 62, 1 << 62, (1 << 62) + 3]),
        ],
        &["Split"],
    );
    expect_err(
        "reshape to a run-time shape whose element count overflows",
        || {
            let x = vector("x", Float64);
            let shape = vector("shape", Int64);
            let out = x.reshape_to(&shape.specify_shape(&[Some(2)]));
            (vec![x, shape], vec![out])
        },
        vec![f64s(&[4], &[1.0, 2.0, 3.0, 4.0]), i64s(&[4, (1 << 62) + 1])],
        &["Reshape"],
    );
    expect_err(
        "reshape of 4 elements to [4, 2^62 + 1]",
        || {
            let x = tensor("x", Float64, [Some(4)]);
            let out = x.reshape(&[4, (1 << 62) + 1]);
            (vec![x.clone()], vec![out])
        },
        vec![f64s(&[4], &[1.0, 2.0, 3.0, 4.0])],
        &["Reshape"],
    );
    // NumPy: np.array([1., 2., 3.])[::-2**63] is [3.].
    expect_values(
        "a slice step of i64::MIN",
        || {
            let x = vector("x", Float64);
            let out = x.get(idx![..;i64::MIN]);
            (vec![x.clone()], vec![out])
        },
        vec![f64s(&[3], &[1.0, 2.0, 3.0])],
        vec![f64s(&[1], &[3.0])],
    );
}

fn split_by_parts(x: &Var, sizes: &Var, n: usize) -> Vec<Var> {
    match tensorlift::split_by(x, &sizes.specify_shape(&[Some(n)]), 0) {
        Ok(parts) => parts,
        Err(e) => panic!("split_by: {e}"),
    }
}

// --- 8. integer ranges are measured in integers ----------------------------------------

#[test]
fn int64_ranges_near_two_to_the_sixty_have_their_exact_length() {
    let start = (1i64 << 60) + 1;
    expect_values(
        "arange_dtype(2^60 + 1, 2^60 + 3) of constants",
        move || {
            let x = scalar("x", Int64);
            let r = arange_dtype(start, start + 2, 1, Int64);
            assert_eq!(r.ty().shape, vec![Some(2)], "static length");
            (vec![x.clone()], vec![r + &x])
        },
        vec![i64_scalar(0)],
        vec![i64s(&[start, start + 1])],
    );
    expect_values(
        "arange_dtype(2^60 + 1, 2^60 + 3) of run-time bounds",
        || {
            let (a, b) = (scalar("a", Int64), scalar("b", Int64));
            (
                vec![a.clone(), b.clone()],
                vec![arange_dtype(&a, &b, 1, Int64)],
            )
        },
        vec![i64_scalar(start), i64_scalar(start + 2)],
        vec![i64s(&[start, start + 1])],
    );
}

// --- 9. variance with ddof >= n --------------------------------------------------------

#[test]
fn variance_with_ddof_at_least_n_follows_numpy() {
    // NumPy: var([1, 2], ddof=3) = sum of squares / max(n - ddof, 0) = 0.5 / 0 = inf;
    // var of a constant row with ddof = n is 0 / 0 = nan.
    expect_values(
        "var and std with ddof >= n",
        || {
            let x = matrix("x", Float64);
            (
                vec![x.clone()],
                vec![x.var_ddof([1], 3), x.var_ddof([1], 2), x.std_ddof([1], 5)],
            )
        },
        vec![f64s(&[2, 2], &[1.0, 2.0, 4.0, 4.0])],
        vec![
            f64s(&[2], &[f64::INFINITY, f64::NAN]),
            f64s(&[2], &[f64::INFINITY, f64::NAN]),
            f64s(&[2], &[f64::INFINITY, f64::NAN]),
        ],
    );
}

// --- the rest of the corpus: calls that do not fit, indices, joins, special values -----

#[test]
fn calls_that_do_not_fit_the_signature_are_errors() {
    let add = || {
        let (x, y) = (vector("x", Float64), tensor("y", Float64, [Some(3)]));
        (vec![x.clone(), y.clone()], vec![&x + &y])
    };
    let three = f64s(&[3], &[1.0, 2.0, 3.0]);
    expect_err("too few inputs", add, vec![three.clone()], &["input"]);
    expect_err(
        "too many inputs",
        add,
        vec![three.clone(), three.clone(), three.clone()],
        &["input"],
    );
    expect_err(
        "a wrong dtype",
        add,
        vec![three.clone(), i64s(&[1, 2, 3])],
        &["input 1", "int64"],
    );
    expect_err(
        "a wrong rank",
        add,
        vec![f64s(&[], &[1.0]), three.clone()],
        &["input 0"],
    );
    expect_err(
        "a wrong static size",
        add,
        vec![three.clone(), f64s(&[2], &[1.0, 2.0])],
        &["input 1"],
    );
    expect_err(
        "unknown sizes that differ at run time",
        || {
            let (x, y) = (vector("x", Float64), vector("y", Float64));
            (vec![x.clone(), y.clone()], vec![&x * &y])
        },
        vec![three.clone(), f64s(&[2], &[1.0, 2.0])],
        &["Mul", "runtime broadcasting"],
    );
}

#[test]
fn indices_out_of_range_are_errors_in_every_indexing_form() {
    let v = f64s(&[4], &[1.0, 2.0, 3.0, 4.0]);
    type Case = (
        &'static str,
        Box<dyn Fn() -> Graph + Send + Sync>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "a scalar index past the end",
            Box::new(|| {
                let x = vector("x", Float64);
                (vec![x.clone()], vec![x.get(idx![4])])
            }),
            "Subtensor",
        ),
        (
            "a negative scalar index before the start",
            Box::new(|| {
                let x = vector("x", Float64);
                (vec![x.clone()], vec![x.get(idx![-5])])
            }),
            "Subtensor",
        ),
        (
            "a run-time scalar index past the end",
            Box::new(|| {
                let (x, i) = (vector("x", Float64), scalar("i", Int64));
                (vec![x.clone(), i.clone()], vec![x.get(vec![Idx::from(&i)])])
            }),
            "Subtensor",
        ),
        (
            "an integer array with an index past the end",
            Box::new(|| {
                let (x, i) = (vector("x", Float64), vector("i", Int64));
                (vec![x.clone(), i.clone()], vec![x.get(vec![Idx::from(&i)])])
            }),
            "AdvancedSubtensor",
        ),
        (
            "a set through an index past the end",
            Box::new(|| {
                let (x, i) = (vector("x", Float64), vector("i", Int64));
                (
                    vec![x.clone(), i.clone()],
                    vec![x.set(vec![Idx::from(&i)], 1.0)],
                )
            }),
            "AdvancedSetSubtensor",
        ),
        (
            "an increment through an index past the end",
            Box::new(|| {
                let (x, i) = (vector("x", Float64), vector("i", Int64));
                (
                    vec![x.clone(), i.clone()],
                    vec![x.inc(vec![Idx::from(&i)], 1.0)],
                )
            }),
            "AdvancedIncSubtensor",
        ),
        (
            "a boolean mask of the wrong length",
            Box::new(|| {
                let (x, m) = (vector("x", Float64), vector("m", Bool));
                (vec![x.clone(), m.clone()], vec![x.get(vec![Idx::from(&m)])])
            }),
            "AdvancedSubtensor",
        ),
    ];
    let index_inputs = |label: &str| -> Vec<TensorData> {
        if label.contains("run-time scalar") {
            vec![v.clone(), i64_scalar(-9)]
        } else if label.contains("mask") {
            let mask = ArrayD::from_shape_vec(IxDyn(&[3]), vec![true, false, true]).unwrap();
            vec![v.clone(), mask.into()]
        } else if label.contains("array") || label.contains("through") {
            vec![v.clone(), i64s(&[0, -1, 4])]
        } else {
            vec![v.clone()]
        }
    };
    for (label, build, op) in cases {
        let inputs = index_inputs(label);
        expect_err(label, build, inputs, &[op]);
    }
}

#[test]
fn shapes_that_cannot_be_joined_multiplied_or_ranged_are_errors() {
    expect_err(
        "concatenating rows of different lengths",
        || {
            let (a, b) = (matrix("a", Float64), matrix("b", Float64));
            (vec![a.clone(), b.clone()], vec![concatenate(&[a, b], 0)])
        },
        vec![f64s(&[1, 2], &[1.0, 2.0]), f64s(&[1, 3], &[1.0, 2.0, 3.0])],
        &["Join"],
    );
    expect_err(
        "a product of mismatched inner sizes",
        || {
            let (a, b) = (matrix("a", Float64), matrix("b", Float64));
            (vec![a.clone(), b.clone()], vec![a.dot(&b)])
        },
        vec![f64s(&[1, 2], &[1.0, 2.0]), f64s(&[3, 1], &[1.0, 2.0, 3.0])],
        &["Dot"],
    );
    expect_err(
        "a range with a run-time step of zero",
        || {
            let s = scalar("s", Int64);
            (vec![s.clone()], vec![arange_dtype(0, 5, &s, Int64)])
        },
        vec![i64_scalar(0)],
        &["ARange", "step"],
    );
    expect_err(
        "a reshape to a negative size",
        || {
            let (x, shape) = (vector("x", Float64), vector("shape", Int64));
            (
                vec![x.clone(), shape.clone()],
                vec![x.reshape_to(&shape.specify_shape(&[Some(2)]))],
            )
        },
        vec![f64s(&[4], &[1.0, 2.0, 3.0, 4.0]), i64s(&[-2, -2])],
        &["Reshape"],
    );
    expect_err(
        "the maximum of an empty axis",
        || {
            let x = matrix("x", Float64);
            (vec![x.clone()], vec![x.max([0])])
        },
        vec![empty(&[0, 3])],
        &["Max", "empty"],
    );
}

#[test]
fn special_values_and_strided_inputs_follow_the_closed_forms() {
    let inf = f64::INFINITY;
    let x = f64s(&[6], &[f64::NAN, inf, -inf, 0.0, -0.0, 1.0]);
    expect_values(
        "NaN and infinities through arithmetic, max and logsumexp",
        || {
            let x = vector("x", Float64);
            (
                vec![x.clone()],
                vec![
                    &x * 0.0,
                    x.max(None),
                    x.get(idx![1..]).max(None),
                    x.get(idx![2..]).logsumexp(None),
                ],
            )
        },
        vec![x],
        vec![
            f64s(&[6], &[f64::NAN, f64::NAN, f64::NAN, 0.0, -0.0, 0.0]),
            f64s(&[], &[f64::NAN]),
            f64s(&[], &[inf]),
            // log(0 + 1 + 1 + e) over [-inf, 0, -0, 1].
            f64s(&[], &[(2.0 + 1f64.exp()).ln()]),
        ],
    );
    // A transposed, reversed view: x[::-1, ::-2].T of a 3x4 matrix.
    let data: Vec<f64> = (0..12).map(|v| v as f64).collect();
    let a = ArrayD::from_shape_vec(IxDyn(&[3, 4]), data).unwrap();
    let view = a.slice(ndarray::s![..;-1, ..;-2]).t().to_owned();
    let strided: TensorData = a
        .slice_move(ndarray::s![..;-1, ..;-2])
        .reversed_axes()
        .into_dyn()
        .into();
    let doubled: Vec<f64> = view.iter().map(|v| 2.0 * v + 1.0).collect();
    expect_values(
        "a negative-stride transposed input",
        || {
            let x = matrix("x", Float64);
            (vec![x.clone()], vec![&x * 2.0 + 1.0, x.sum([1])])
        },
        vec![strided],
        vec![
            f64s(&[2, 3], &doubled),
            // Rows of the view: columns 3 and 1 of the matrix read bottom up.
            f64s(&[2], &[11.0 + 7.0 + 3.0, 9.0 + 5.0 + 1.0]),
        ],
    );
}

// --- 6. products whose partial products leave the float range --------------------------

#[test]
fn products_have_the_class_of_the_exact_product() {
    // Interleaved factors: lanes that each take every other element overflow in one and
    // underflow in the other, where the exact product (a power of two) is finite, or
    // overflows or underflows as a whole. Expected: that exact product.
    let big = 2f64.powi(900);
    let interleave = |a: f64, b: f64, n: usize| -> Vec<f64> {
        (0..n).map(|i| if i % 2 == 0 { a } else { b }).collect()
    };
    let cases = [
        ("pairs that cancel", interleave(big, 1.0 / big, 64), 1.0),
        (
            "an exact product past the range",
            interleave(big, 2f64.powi(-100), 64),
            f64::INFINITY,
        ),
        (
            "an exact product below the range",
            interleave(1.0 / big, 2f64.powi(100), 64),
            0.0,
        ),
        (
            "negative pairs that cancel",
            interleave(-big, 1.0 / big, 64),
            1.0,
        ),
        (
            "a zero and an infinity",
            vec![0.0, 3.0, f64::INFINITY],
            f64::NAN,
        ),
        ("a zero among huge factors", vec![big, big, 0.0, big], 0.0),
        (
            "an infinity among tiny factors",
            vec![1.0 / big, f64::INFINITY, 1.0 / big],
            f64::INFINITY,
        ),
    ];
    for (label, values, want) in cases {
        let n = values.len();
        // As a row, as a column of a matrix (the reduction over the outer axis), and as
        // the flattened product of a matrix.
        let as_matrix = f64s(&[n / 2, 2], &values[..n / 2 * 2]);
        let matrix_want = product_unbounded_closed_form(&values[..n / 2 * 2]);
        expect_values(
            label,
            || {
                let x = vector("x", Float64);
                (vec![x.clone()], vec![x.prod(None)])
            },
            vec![f64s(&[n], &values)],
            vec![f64s(&[], &[want])],
        );
        expect_values(
            &format!("{label}, of a matrix"),
            || {
                let m = matrix("m", Float64);
                (vec![m.clone()], vec![m.prod(None)])
            },
            vec![as_matrix],
            vec![f64s(&[], &[matrix_want])],
        );
    }
    // The case, fused: prod(exp(0.25 x)) with exponents that cancel in pairs.
    let x: Vec<f64> = interleave(2800.0, -2800.0, 64);
    let build = || {
        let x = vector("x", Float64);
        (vec![x.clone()], vec![(x * 0.25).exp().prod(None)])
    };
    for (name, mode) in modes() {
        let got = run(&build, &[f64s(&[64], &x)], mode).unwrap();
        let v = tensorlift::testing::as_f64s(&got[0])[0];
        assert!(
            (v - 1.0).abs() < 1e-9,
            "fused product [{name}]: {v}, expected 1"
        );
    }
}

/// The exact product of factors that are powers of two, zeros, infinities (closed form:
/// the sum of exponents decides).
fn product_unbounded_closed_form(values: &[f64]) -> f64 {
    let zero = values.contains(&0.0);
    let inf = values.iter().any(|v| v.is_infinite());
    let negative = values.iter().filter(|v| v.is_sign_negative()).count() % 2 == 1;
    let magnitude = match (zero, inf) {
        (true, true) => return f64::NAN,
        (true, false) => 0.0,
        (false, true) => f64::INFINITY,
        (false, false) => {
            let exponent: i64 = values.iter().map(|v| v.abs().log2().round() as i64).sum();
            if exponent > 1023 {
                f64::INFINITY
            } else if exponent < -1074 {
                0.0
            } else {
                2f64.powi(exponent as i32)
            }
        }
    };
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

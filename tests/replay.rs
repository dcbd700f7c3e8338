//! Replayed calls: the JIT records a call of a plan (small kernels, views, and other
//! steps such as scans and IfElse that read no kernel's value) and replays it for inputs
//! of the same dtypes, shapes and strides. Every call gives the
//! reference's values whatever the order of layouts (strided and reversed views,
//! transposes, sizes above the small-call limit, more layouts than it records), with
//! views of inputs and constants as kernel arguments and outputs returned twice, inputs
//! and constants returned; errors are those of the general path; calls from several
//! threads at once each get their own values.

use ndarray::{s, Array1, Array2};
use tensorlift::ir::op_from_graph;
use tensorlift::prelude::*;
use tensorlift::testing::{assert_allclose, TestRng};

/// Compiles `inputs → outputs` with the JIT and the reference, calls both on each
/// argument list in turn (twice, so the second call replays) and checks they agree
/// (values, or both an error).
fn calls_agree(inputs: &[&Var], outputs: &[&Var], calls: &[Vec<TensorData>]) -> Function {
    let jit = function(inputs, outputs).mode(Mode::Jit).compile().unwrap();
    let reference = function(inputs, outputs)
        .mode(Mode::Reference)
        .compile()
        .unwrap();
    for (n, args) in calls.iter().enumerate() {
        for round in 0..2 {
            let label = format!("call {n}, round {round}");
            match (jit.call(args), reference.call(args)) {
                (Ok(got), Ok(want)) => {
                    assert_eq!(got.len(), want.len(), "{label}");
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert_allclose(&format!("{label}, output {i}"), g, w)
                            .unwrap_or_else(|e| panic!("{e}"));
                    }
                }
                (Err(_), Err(_)) => {}
                (got, want) => panic!("{label}: JIT {got:?}, reference {want:?}"),
            }
        }
    }
    jit
}

/// Whether `f`'s own plan (not an inner one) replays small calls.
fn replayed(f: &Function) -> bool {
    f.plan()
        .lines()
        .nth(1)
        .is_some_and(|l| l.contains("replayed"))
}

fn matrix_of(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = TestRng::new(seed);
    Array2::from_shape_fn((rows, cols), |_| rng.next_f64() * 4.0 - 2.0)
}

fn vector_of(n: usize, seed: u64) -> Array1<f64> {
    let mut rng = TestRng::new(seed);
    Array1::from_shape_fn(n, |_| rng.next_f64() * 4.0 - 2.0)
}

#[test]
fn layouts_changing_between_calls_give_the_reference_values() {
    let (x, y) = (matrix("x", Float64), vector("y", Float64));
    let out = ((x.exp() * &y) + 1.0).sum(1);
    let total = x.max(All) + y.sum(All);
    let contiguous = |seed| vec![matrix_of(3, 4, seed).into(), vector_of(4, seed).into()];
    let transposed = |seed| {
        vec![
            matrix_of(4, 3, seed).reversed_axes().into(),
            vector_of(4, seed).into(),
        ]
    };
    // Views sharing their arrays' memory: rows reversed (negative strides), every other
    // element.
    let reversed = |seed| {
        let m = matrix_of(3, 4, seed).into_shared().into_dyn();
        let v = vector_of(8, seed).into_shared().into_dyn();
        vec![
            TensorData::Float64(m.slice_move(s![..;-1, ..]).into_dyn()),
            TensorData::Float64(v.slice_move(s![..;2]).into_dyn()),
        ]
    };
    let calls = vec![
        contiguous(1),
        contiguous(2),
        transposed(3),
        contiguous(4),
        reversed(5),
        transposed(6),
        // Above the small-call limit, then small again.
        vec![matrix_of(300, 400, 7).into(), vector_of(400, 7).into()],
        contiguous(8),
        vec![matrix_of(0, 4, 9).into(), vector_of(4, 9).into()],
        contiguous(10),
    ];
    let f = calls_agree(&[&x, &y], &[&out, &total], &calls);
    assert!(replayed(&f), "{}", f.plan());
}

#[test]
fn views_constants_and_repeated_outputs() {
    let x = vector("x", Float64);
    let c = constant(Array1::from(vec![0.5, -1.0, 2.0, 3.0]));
    let head = x.get(idx![1..5]);
    let tail = x.get(idx![..4;-1]);
    let a = (&head + &c) * tail.exp();
    let b = a.cumsum(All).softmax(0);
    let calls: Vec<Vec<TensorData>> = (0..4)
        .map(|seed| vec![vector_of(6 + seed as usize, seed).into()])
        .collect();
    calls_agree(&[&x], &[&a, &b, &a, &x, &c], &calls);
}

#[test]
fn kernels_of_every_memoized_kind() {
    let (x, y) = (matrix("x", Float64), vector("y", Float64));
    let z = x.dot(&y);
    let joined = concatenate(&[&z, &x.softmax(1).sum(0), &y.cumsum(All)], 0);
    let arg = x.argmax(1).cast(Float64);
    let shape = x.shape().cast(Float64);
    let picked = switch(y.gt(0.0).logical_and(y.lt(1.5)), &y, 0.0);
    let calls: Vec<Vec<TensorData>> = [(3, 3), (2, 3), (3, 3), (5, 3)]
        .iter()
        .enumerate()
        .map(|(n, (r, c))| {
            vec![
                matrix_of(*r, *c, n as u64).into(),
                vector_of(*c, n as u64 + 10).into(),
            ]
        })
        .collect();
    calls_agree(&[&x, &y], &[&joined, &arg, &shape, &picked], &calls);
}

#[test]
fn narrow_dtypes_replay_too() {
    let (i, f) = (vector("i", Int32), vector("f", Float32));
    let out = (i.clone() * 3 + 1).cast(Float32) * &f;
    let flags = i.gt(2);
    let calls: Vec<Vec<TensorData>> = (0..3)
        .map(|n| {
            let ints: Array1<i32> = (0..5).map(|k| k * (n + 1) - 3).collect();
            let floats: Array1<f32> = (0..5).map(|k| k as f32 * 0.25 - n as f32).collect();
            vec![ints.into(), floats.into()]
        })
        .collect();
    calls_agree(&[&i, &f], &[&out, &flags], &calls);
}

#[test]
fn errors_are_those_of_the_general_path() {
    let (x, y) = (vector("x", Float64), vector("y", Float64));
    let out = &x + &y;
    let f = function(&[&x, &y], &[&out]).compile().unwrap();
    let good = vec![vector_of(3, 1).into(), vector_of(3, 2).into()];
    let bad = vec![vector_of(3, 1).into(), vector_of(4, 2).into()];
    let first = f.call(&bad).unwrap_err().to_string();
    for _ in 0..3 {
        let got = f.call(&good).unwrap();
        let want = vector_of(3, 1) + vector_of(3, 2);
        assert_allclose("good", &got[0], &want.into()).unwrap();
        let again = f.call(&bad).unwrap_err().to_string();
        assert_eq!(again, first);
    }
    assert!(first.contains("Add"), "{first}");
}

#[test]
fn inputs_off_the_signature_are_refused_after_replays_too() {
    // A replay keyed by every input skips the separate signature check; inputs off the
    // signature must still get its errors, word for word.
    let x = vector("x", Float64);
    let y = tensor("y", Float64, [Some(3)]);
    let out = &x * &y;
    let f = function(&[&x, &y], &[&out]).compile().unwrap();
    let good: Vec<TensorData> = vec![vector_of(3, 1).into(), vector_of(3, 2).into()];
    let wrong: Vec<Vec<TensorData>> = vec![
        vec![vector_of(3, 1).into()],
        vec![
            vector_of(3, 1).mapv(|v| v as f32).into(),
            vector_of(3, 2).into(),
        ],
        vec![matrix_of(1, 3, 1).into(), vector_of(3, 2).into()],
        vec![vector_of(4, 1).into(), vector_of(4, 2).into()],
    ];
    let before: Vec<String> = wrong
        .iter()
        .map(|args| f.call(args).unwrap_err().to_string())
        .collect();
    for _ in 0..3 {
        let got = f.call(&good).unwrap();
        assert_allclose("good", &got[0], &(vector_of(3, 1) * vector_of(3, 2)).into()).unwrap();
    }
    assert!(replayed(&f), "{}", f.plan());
    for (args, first) in wrong.iter().zip(&before) {
        assert_eq!(&f.call(args).unwrap_err().to_string(), first);
    }
    assert!(before[3].contains('y'), "{}", before[3]);

    // An input only an IfElse reads is not in the replay's key: it is checked as ever.
    let (c, v) = (scalar("c", Int8), vector("v", Float64));
    let chosen = ifelse(&c, &[&(&v * 2.0)], &[&(&v - 1.0)]);
    let g = function(&[&c, &v], &[&chosen[0], &(&v * 3.0)])
        .compile()
        .unwrap();
    let off = vec![TensorData::scalar(1.0f64), vector_of(3, 1).into()];
    let first = g.call(&off).unwrap_err().to_string();
    for n in 0..3 {
        g.call(&[TensorData::scalar(n as i8 % 2), vector_of(3, 1).into()])
            .unwrap();
    }
    assert!(replayed(&g), "{}", g.plan());
    assert_eq!(g.call(&off).unwrap_err().to_string(), first);
    assert!(first.contains('c'), "{first}");
}

#[test]
fn lone_ifelse_and_kept_graphs_refuse_inputs_off_the_signature_after_replays() {
    // A function that is one IfElse (or one kept OpFromGraph) skips the separate check
    // when the taken branch replays; inputs off the signature still get its errors.
    let (c, v) = (scalar("c", Int8), tensor("v", Float64, [None, Some(2)]));
    let chosen = ifelse(&c, &[&(&v * 2.0).sum(0)], &[&(&v - 1.0).exp().sum(1)]);
    let lazy = function(&[&c, &v], &[&chosen[0]]).compile().unwrap();
    let (a, b) = (vector("a", Float64), vector("b", Float64));
    let inner = op_from_graph(&[&a, &b], &[&(&a * 2.0 + &b).sin()])
        .unwrap()
        .inline(false);
    let kept = function(
        &[&a, &b],
        &inner.apply(&[&a, &b]).unwrap().iter().collect::<Vec<_>>(),
    )
    .compile()
    .unwrap();
    let m = |rows, seed| -> TensorData { matrix_of(rows, 2, seed).into() };
    let lazy_off: Vec<Vec<TensorData>> = vec![
        vec![TensorData::scalar(1.0f64), m(2, 1)],
        vec![TensorData::scalar(1i64), m(2, 1)],
        vec![TensorData::scalar(0i8), matrix_of(2, 3, 1).into()],
        vec![TensorData::scalar(0i8), vector_of(2, 1).into()],
        vec![TensorData::scalar(0i8)],
    ];
    let kept_off: Vec<Vec<TensorData>> = vec![
        vec![
            vector_of(3, 1).into(),
            vector_of(3, 2).mapv(|x| x as f32).into(),
        ],
        vec![vector_of(3, 1).into()],
        vec![m(1, 1), vector_of(3, 2).into()],
    ];
    let errors = |f: &Function, calls: &[Vec<TensorData>]| -> Vec<String> {
        calls
            .iter()
            .map(|args| f.call(args).unwrap_err().to_string())
            .collect()
    };
    let (lazy_before, kept_before) = (errors(&lazy, &lazy_off), errors(&kept, &kept_off));
    for n in 0..4 {
        let args = vec![TensorData::scalar(n as i8 % 2), m(2, n)];
        let got = lazy.call(&args).unwrap();
        let want = if n % 2 == 1 {
            (matrix_of(2, 2, n) * 2.0).sum_axis(ndarray::Axis(0))
        } else {
            (matrix_of(2, 2, n) - 1.0).exp().sum_axis(ndarray::Axis(1))
        };
        assert_allclose("lazy", &got[0], &want.into()).unwrap();
        let got = kept.call(&[vector_of(3, n).into(), vector_of(3, n + 9).into()]);
        let want = (vector_of(3, n) * 2.0 + vector_of(3, n + 9)).mapv(f64::sin);
        assert_allclose("kept", &got.unwrap()[0], &want.into()).unwrap();
    }
    assert_eq!(errors(&lazy, &lazy_off), lazy_before);
    assert_eq!(errors(&kept, &kept_off), kept_before);
}

#[test]
fn outputs_returned_in_another_order_than_written() {
    // The sum is written first, the logarithm (which reads it) second.
    let x = vector("x", Float64);
    let early = x.exp().sum(All);
    let late = (&x + &early).log();
    let calls: Vec<Vec<TensorData>> = (0..3).map(|seed| vec![vector_of(4, seed).into()]).collect();
    calls_agree(&[&x], &[&late, &early], &calls);
    calls_agree(&[&x], &[&early, &late], &calls);
}

#[test]
fn more_layouts_than_recordings_stay_right() {
    let x = vector("x", Float64);
    let out = (x.sin() * 2.0).sum(All);
    let calls: Vec<Vec<TensorData>> = (1..40)
        .map(|n| vec![vector_of(n, n as u64).into()])
        .collect();
    let mut twice = calls.clone();
    twice.extend(calls);
    calls_agree(&[&x], &[&out], &twice);
}

#[test]
fn calls_from_several_threads_get_their_own_values() {
    // Kernels and a native scan (its prepared call made again as lengths change).
    let (x, y) = (vector("x", Float64), vector("y", Float64));
    let out = (x.exp() - &y).cumsum(All);
    let walk = scan(|s| vec![s.state(0) * 0.5 + s.sequence(0)])
        .sequences(&[&x])
        .states(&[&y.sum(All)])
        .build();
    let outputs = [&out, &walk.last(0), &walk.trace(0)];
    let f = function(&[&x, &y], &outputs).compile().unwrap();
    let reference = function(&[&x, &y], &outputs)
        .mode(Mode::Reference)
        .compile()
        .unwrap();
    let cases: Vec<(Vec<TensorData>, Vec<TensorData>)> = (0..8)
        .map(|n| {
            let len = 5 + 2 * (n as usize % 2);
            let args: Vec<TensorData> =
                vec![vector_of(len, n).into(), vector_of(len, n + 100).into()];
            let want = reference.call(&args).unwrap();
            (args, want)
        })
        .collect();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (f, cases) = (&f, &cases);
            scope.spawn(move || {
                for k in 0..400 {
                    let (args, want) = &cases[(t + k) % cases.len()];
                    let got = f.call(args).unwrap();
                    for (i, (g, w)) in got.iter().zip(want).enumerate() {
                        assert_allclose(&format!("thread {t}, call {k}, output {i}"), g, w)
                            .unwrap();
                    }
                }
            });
        }
    });
}

#[test]
fn scans_and_ifelse_run_inside_replays() {
    let (c, x, s0) = (
        scalar("c", Int8),
        vector("x", Float64),
        scalar("s0", Float64),
    );
    let newton = scan(|s| {
        let v = s.state(0);
        let next = &v / 2.0 + 1.0 / &v;
        s.until(&(&next - &v).abs().lt(1e-12));
        vec![next]
    })
    .states(&[&s0])
    .n_steps(1000)
    .build();
    let chosen = ifelse(&c, &[&x.sin().sum(All)], &[&(x.get(idx![0]) + 1.0)]);
    let running = (&x * 2.0).cumsum(All);
    let outputs = [
        &newton.last(0),
        &chosen[0],
        &running,
        &chosen[0],
        &newton.trace(0),
    ];
    let calls: Vec<Vec<TensorData>> = (0..6)
        .map(|n| {
            vec![
                TensorData::scalar((n % 2) as i8),
                vector_of(3 + n % 3, n as u64).into(),
                TensorData::scalar(1.0 + 1000.0 * n as f64),
            ]
        })
        .collect();
    let f = calls_agree(&[&c, &x, &s0], &outputs, &calls);
    assert!(replayed(&f), "{}", f.plan());
}

#[test]
fn native_scans_called_with_changing_lengths() {
    // Vector states whose body intermediates (the driver's local buffers, kept between
    // calls) take the states' length.
    let (xs, h0, w) = (
        matrix("xs", Float64),
        vector("h0", Float64),
        vector("w", Float64),
    );
    let rnn = scan(|s| vec![(s.state(0) * s.non_sequence(0) + s.sequence(0)).tanh() * 0.5])
        .sequences(&[&xs])
        .states(&[&h0])
        .non_sequences(&[&w])
        .build();
    let calls: Vec<Vec<TensorData>> = [(4, 3), (2, 5), (4, 3), (6, 8), (1, 2), (6, 8)]
        .iter()
        .enumerate()
        .map(|(n, (steps, len))| {
            vec![
                matrix_of(*steps, *len, n as u64).into(),
                vector_of(*len, n as u64 + 20).into(),
                vector_of(*len, n as u64 + 40).into(),
            ]
        })
        .collect();
    let f = calls_agree(&[&xs, &h0, &w], &[&rnn.last(0), &rnn.trace(0)], &calls);
    assert!(f.plan().contains("native call"), "{}", f.plan());
}

#[test]
fn native_scans_follow_step_counts_and_strides() {
    // A fixed-length trace takes the step count into its shape: calls change counts
    // (zero among them; two in a row per layout) and give a non-sequence contiguous,
    // reversed and strided; the outputs come in another order than the scan gives them.
    let (n, h0, w) = (
        scalar("n", Int64),
        vector("h0", Float64),
        vector("w", Float64),
    );
    let walk = scan(|s| vec![(s.state(0) * s.non_sequence(0)).sin() + 0.25])
        .states(&[&h0])
        .non_sequences(&[&w])
        .n_steps(&n)
        .build();
    let w_as = |k: usize, seed: u64| -> TensorData {
        let v = vector_of(8, seed).into_shared().into_dyn();
        match k % 3 {
            0 => TensorData::Float64(v.slice_move(s![..4]).into_dyn()),
            1 => TensorData::Float64(v.slice_move(s![..4;-1]).into_dyn()),
            _ => TensorData::Float64(v.slice_move(s![..;2]).into_dyn()),
        }
    };
    let calls: Vec<Vec<TensorData>> = [3i64, 5, 3, 0, 5, 1, 3]
        .iter()
        .enumerate()
        .map(|(k, steps)| {
            vec![
                TensorData::scalar(*steps),
                vector_of(4, k as u64).into(),
                w_as(k / 2, k as u64 + 7),
            ]
        })
        .collect();
    let f = calls_agree(&[&n, &h0, &w], &[&walk.trace(0), &walk.last(0)], &calls);
    assert!(f.plan().contains("native call"), "{}", f.plan());
    let negative = vec![
        TensorData::scalar(-1i64),
        vector_of(4, 1).into(),
        w_as(0, 1),
    ];
    let message = f.call(&negative).unwrap_err().to_string();
    assert!(message.contains("non-negative"), "{message}");
}

#[test]
fn other_steps_reading_kernels_values_replay() {
    let x = vector("x", Float64);
    let taken = ifelse(&x.sum(All).gt(0.0), &[&(&x * 2.0)], &[&(&x - 1.0)]);
    let calls: Vec<Vec<TensorData>> = (0..6)
        .map(|n| vec![vector_of(4 + n % 2, n as u64).into()])
        .collect();
    let f = calls_agree(&[&x], &[&taken[0]], &calls);
    assert!(replayed(&f), "{}", f.plan());
}

#[test]
fn plans_where_kernels_read_other_steps_are_not_replayed() {
    let (c, x) = (scalar("c", Int8), vector("x", Float64));
    let taken = ifelse(&c, &[&(&x * 2.0)], &[&(&x - 1.0)]);
    let out = &taken[0] * 3.0;
    let f = function(&[&c, &x], &[&out]).compile().unwrap();
    assert!(!replayed(&f), "{}", f.plan());
    let calls: Vec<Vec<TensorData>> = (0..4)
        .map(|n| vec![TensorData::scalar((n % 2) as i8), vector_of(4, n).into()])
        .collect();
    calls_agree(&[&c, &x], &[&out], &calls);
}

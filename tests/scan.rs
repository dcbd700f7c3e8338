//! Scan (issue 18, DESIGN §8): loops built from a closure, with sequences (and taps),
//! states of any dtype and rank (and taps into earlier steps), non-sequences (declared or
//! read directly), a symbolic step count, reverse order, while-loops whose traces have a
//! length known only at run time; in both backends, against closed forms and plain Rust
//! loops, and against each other; errors name the scan and what disagrees.

mod common;

use ndarray::{array, Array1, ArrayD, IxDyn};
use proptest::prelude::*;
use tensorlift::prelude::*;
use tensorlift::testing::compare_backends;

const MODES: [Mode; 2] = [Mode::Reference, Mode::Jit];

fn data(v: ArrayD<f64>) -> TensorData {
    TensorData::from_array(v)
}

fn vec1(v: Vec<f64>) -> TensorData {
    data(Array1::from(v).into_dyn())
}

fn f64_scalar(v: f64) -> TensorData {
    TensorData::scalar(v)
}

fn i64_scalar(v: i64) -> TensorData {
    TensorData::scalar(v)
}

#[test]
fn a_recurrence_over_a_sequence_gives_its_last_state_and_trace() {
    // s ← 0.99·s + sin(t): the plain Rust loop is the expected value.
    let (ts, s0) = (vector("ts", Float64), scalar("s0", Float64));
    let out = scan(|s| vec![s.state(0) * 0.99 + s.sequence(0).sin()])
        .sequences(&[&ts])
        .states(&[&s0])
        .build();
    let t: Vec<f64> = (0..1000).map(|i| i as f64 * 0.01).collect();
    let mut expected = Vec::new();
    let mut s = 0.5;
    for x in &t {
        s = 0.99 * s + x.sin();
        expected.push(s);
    }
    for mode in MODES {
        let f = function(&[&ts, &s0], &[&out.last(0), &out.trace(0)])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let r = f.call(&[vec1(t.clone()), f64_scalar(0.5)]).unwrap();
        let last = r[0].to_f64_vec()[0];
        assert!(
            (last - s).abs() <= 1e-12 * s.abs().max(1.0),
            "{mode:?}: {last} vs {s}"
        );
        let trace = r[1].to_f64_vec();
        assert_eq!(trace.len(), t.len());
        for (k, (g, w)) in trace.iter().zip(&expected).enumerate() {
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                "{mode:?} step {k}: {g} vs {w}"
            );
        }
    }
}

#[test]
fn states_of_several_ranks_and_dtypes_with_non_sequences() {
    // x ← tanh(W·x + b) (b read directly from outside), k ← k + 1, m ← m·x[0] (a matrix
    // state scaled by a scalar of another state).
    let (w, b) = (matrix("w", Float64), vector("b", Float64));
    let (x0, k0, m0) = (
        vector("x0", Float64),
        scalar("k0", Int64),
        matrix("m0", Float64),
    );
    let n = scalar("n", Int64);
    let out = scan(|s| {
        let x = s.state(0);
        let w = s.non_sequence(0);
        let new_x = (w.dot(&x) + &b).tanh();
        vec![
            new_x.clone(),
            s.state(1) + 1,
            s.state(2) * new_x.get(idx![0]),
        ]
    })
    .states(&[&x0, &k0, &m0])
    .non_sequences(&[&w])
    .n_steps(&n)
    .build();
    assert_eq!(out.last(1).ty().dtype, Int64);
    assert_eq!(out.trace(2).ty().ndim(), 3);
    let outputs: Vec<Var> = (0..3).flat_map(|k| [out.last(k), out.trace(k)]).collect();
    let refs: Vec<&Var> = outputs.iter().collect();
    let values = vec![
        data(array![[0.5, -0.2, 0.1], [0.3, 0.8, -0.4], [-0.6, 0.2, 0.9]].into_dyn()),
        vec1(vec![0.1, -0.1, 0.2]),
        vec1(vec![1.0, 0.5, -0.5]),
        i64_scalar(3),
        data(array![[1.0, 2.0], [3.0, 4.0]].into_dyn()),
        i64_scalar(7),
    ];
    compare_backends(&[&w, &b, &x0, &k0, &m0, &n], &refs, &values, Mode::Jit).unwrap();
    let f = function(&[&w, &b, &x0, &k0, &m0, &n], &refs)
        .compile()
        .unwrap();
    let r = f.call(&values).unwrap();
    assert_eq!(r[2].to_f64_vec(), vec![10.0], "k counts the steps");
    assert_eq!(
        r[3].to_f64_vec(),
        (4..=10).map(f64::from).collect::<Vec<_>>()
    );
    assert_eq!(r[5].shape(), &[7, 2, 2]);
}

#[test]
fn sequence_taps_read_neighbouring_elements() {
    // d[t] = x[t+1] − x[t]: one step fewer than x has elements.
    let (x, d0) = (vector("x", Float64), scalar("d0", Float64));
    let out = scan(|s| vec![s.sequence_at(0, 1) - s.sequence_at(0, 0)])
        .sequence_taps(&x, &[0, 1])
        .states(&[&d0])
        .build();
    let xs = vec![1.0, 4.0, 9.0, 16.0, 25.0];
    for mode in MODES {
        let f = function(&[&x, &d0], &[&out.trace(0)])
            .mode(mode)
            .compile()
            .unwrap();
        let r = f.call(&[vec1(xs.clone()), f64_scalar(0.0)]).unwrap();
        assert_eq!(r[0].to_f64_vec(), vec![3.0, 5.0, 7.0, 9.0]);
    }
}

#[test]
fn state_taps_read_earlier_steps_from_an_initial_block() {
    // Fibonacci: f[t] = f[t-1] + f[t-2], from the block [0, 1].
    let (f0, n) = (vector("f0", Int64), scalar("n", Int64));
    let out = scan(|s| vec![s.state_at(0, -1) + s.state_at(0, -2)])
        .state_taps(&f0, &[-2, -1])
        .n_steps(&n)
        .build();
    assert_eq!(out.last(0).ty().ndim(), 0);
    for mode in MODES {
        let f = function(&[&f0, &n], &[&out.last(0), &out.trace(0)])
            .mode(mode)
            .compile()
            .unwrap();
        let init = TensorData::from_array(Array1::from(vec![0i64, 1]).into_dyn());
        let r = f.call(&[init.clone(), i64_scalar(10)]).unwrap();
        assert_eq!(
            r[1].to_array::<i64>().iter().copied().collect::<Vec<_>>(),
            vec![1, 2, 3, 5, 8, 13, 21, 34, 55, 89]
        );
        assert_eq!(r[0].to_f64_vec(), vec![89.0]);
        // Zero steps: an empty trace, the last state is the block's last row.
        let r = f.call(&[init.clone(), i64_scalar(0)]).unwrap();
        assert_eq!(r[1].shape(), &[0]);
        assert_eq!(r[0].to_f64_vec(), vec![1.0]);
        // A block of the wrong depth is an error naming the state.
        let short = TensorData::from_array(Array1::from(vec![1i64]).into_dyn());
        let err = f.call(&[short, i64_scalar(3)]).unwrap_err().to_string();
        assert!(
            err.contains("state 0's initial block has shape [1]"),
            "{err}"
        );
    }
}

#[test]
fn zero_steps_give_an_empty_trace_and_the_initial_state() {
    let (x0, n) = (vector("x0", Float64), scalar("n", Int64));
    let out = scan(|s| vec![s.state(0) * 2.0])
        .states(&[&x0])
        .n_steps(&n)
        .build();
    for mode in MODES {
        let f = function(&[&x0, &n], &[&out.last(0), &out.trace(0)])
            .mode(mode)
            .compile()
            .unwrap();
        let r = f.call(&[vec1(vec![1.0, 2.0, 3.0]), i64_scalar(0)]).unwrap();
        assert_eq!(r[0].to_f64_vec(), vec![1.0, 2.0, 3.0]);
        assert_eq!(r[1].shape(), &[0, 3]);
        let r = f.call(&[vec1(vec![1.0, 2.0, 3.0]), i64_scalar(2)]).unwrap();
        assert_eq!(r[0].to_f64_vec(), vec![4.0, 8.0, 12.0]);
        let err = f
            .call(&[vec1(vec![1.0]), i64_scalar(-1)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("the step count is -1"), "{err}");
    }
}

#[test]
fn reverse_walks_the_sequences_from_their_end() {
    // Running sums from the end: the trace is in the order the steps ran.
    let (x, s0) = (vector("x", Float64), scalar("s0", Float64));
    let out = scan(|s| vec![s.state(0) + s.sequence(0)])
        .sequences(&[&x])
        .states(&[&s0])
        .reverse()
        .build();
    for mode in MODES {
        let f = function(&[&x, &s0], &[&out.trace(0)])
            .mode(mode)
            .compile()
            .unwrap();
        let r = f
            .call(&[vec1(vec![1.0, 2.0, 3.0, 4.0]), f64_scalar(0.0)])
            .unwrap();
        assert_eq!(r[0].to_f64_vec(), vec![4.0, 7.0, 9.0, 10.0]);
    }
}

#[test]
fn a_while_scan_stops_after_the_step_whose_condition_holds() {
    // Newton's iteration for √2 until |Δ| < 1e-12, with no step bound.
    let x0 = scalar("x0", Float64);
    let out = scan(|s| {
        let x = s.state(0);
        let next = (&x + 2.0 / &x) * 0.5;
        s.until(&(&next - &x).abs().lt(1e-12));
        vec![next]
    })
    .states(&[&x0])
    .build();
    assert_eq!(
        out.trace(0).ty().shape,
        vec![None],
        "a while-scan's length is unknown"
    );
    // The plain loop: the same steps.
    let mut x = 1e6f64;
    let mut steps = 0;
    loop {
        let next = (x + 2.0 / x) * 0.5;
        steps += 1;
        let done = (next - x).abs() < 1e-12;
        x = next;
        if done {
            break;
        }
    }
    for mode in MODES {
        let f = function(&[&x0], &[&out.last(0), &out.trace(0)])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let r = f.call(&[f64_scalar(1e6)]).unwrap();
        assert_eq!(r[0].to_f64_vec(), vec![x], "{mode:?}");
        assert_eq!(r[1].shape(), &[steps], "{mode:?}: exactly sized");
        assert!((x - 2f64.sqrt()).abs() < 1e-15);
    }
}

#[test]
fn a_while_scan_with_a_bound_stops_at_the_bound() {
    // Partial harmonic sums until s > limit, at most n steps.
    let (s0, limit, n) = (
        scalar("s0", Float64),
        scalar("limit", Float64),
        scalar("n", Int64),
    );
    let k0 = scalar("k0", Int64);
    let out = scan(|s| {
        let (sum, k) = (s.state(0), s.state(1));
        let next = &sum + 1.0 / (k.cast(Float64) + 1.0);
        s.until(&next.gt(&limit));
        vec![next, k + 1]
    })
    .states(&[&s0, &k0])
    .n_steps(&n)
    .build();
    let harmonic_steps = |limit: f64| {
        let (mut s, mut k) = (0.0f64, 0);
        loop {
            s += 1.0 / (k as f64 + 1.0);
            k += 1;
            if s > limit {
                return k;
            }
        }
    };
    for mode in MODES {
        let f = function(&[&s0, &k0, &limit, &n], &[&out.trace(0), &out.last(1)])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let r = f
            .call(&[
                f64_scalar(0.0),
                i64_scalar(0),
                f64_scalar(5.0),
                i64_scalar(1_000_000),
            ])
            .unwrap();
        assert_eq!(r[0].shape(), &[harmonic_steps(5.0)], "{mode:?}");
        let r = f
            .call(&[
                f64_scalar(0.0),
                i64_scalar(0),
                f64_scalar(5.0),
                i64_scalar(10),
            ])
            .unwrap();
        assert_eq!(r[0].shape(), &[10], "{mode:?}: the bound");
        assert_eq!(r[1].to_f64_vec(), vec![10.0]);
    }
}

#[test]
fn static_types_are_exact() {
    let ts = tensor("ts", Float64, [Some(100), Some(3)]);
    let x0 = tensor("x0", Float64, [Some(3)]);
    let out = scan(|s| vec![s.state(0) + s.sequence(0)])
        .sequences(&[&ts])
        .states(&[&x0])
        .build();
    assert_eq!(out.trace(0).ty().shape, vec![Some(100), Some(3)]);
    let taps = scan(|s| vec![s.state(0) + s.sequence_at(0, 2)])
        .sequence_taps(&ts, &[0, 2])
        .states(&[&x0])
        .build();
    assert_eq!(taps.trace(0).ty().shape, vec![Some(98), Some(3)]);
    let n = constant(TensorData::scalar(5i64));
    let bounded = scan(|s| vec![s.state(0) * 2.0])
        .states(&[&x0])
        .n_steps(&n)
        .build();
    assert_eq!(bounded.trace(0).ty().shape, vec![Some(5), Some(3)]);
}

#[test]
fn errors_name_the_scan_and_what_disagrees() {
    // A step count that disagrees with a sequence's length.
    let (ts, s0, n) = (
        vector("ts", Float64),
        scalar("s0", Float64),
        scalar("n", Int64),
    );
    let out = scan(|s| vec![s.state(0) + s.sequence(0)])
        .sequences(&[&ts])
        .states(&[&s0])
        .n_steps(&n)
        .build();
    for mode in MODES {
        let f = function(&[&ts, &s0, &n], &[&out.last(0)])
            .mode(mode)
            .compile()
            .unwrap();
        let err = f
            .call(&[vec1(vec![1.0, 2.0, 3.0]), f64_scalar(0.0), i64_scalar(5)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Scan")
                && err.contains("the step count gives 5 steps, but sequence 0 (3 elements"),
            "{err}"
        );
    }
    // Statically: the step changes a state's type.
    let x0 = vector("x0", Float64);
    let bad = scan(|s| vec![s.state(0).sum(All)])
        .states(&[&x0])
        .n_steps(&n)
        .build();
    let err = bad.check().unwrap_err().to_string();
    assert!(
        err.contains("state 0 is") && err.contains("a state keeps its type"),
        "{err}"
    );
    // At run time: a step that changes a state's shape.
    let grows = scan(|s| vec![concatenate(&[&s.state(0), &s.state(0)], 0)])
        .states(&[&x0])
        .n_steps(&n)
        .build();
    for mode in MODES {
        let f = function(&[&x0, &n], &[&grows.last(0)])
            .mode(mode)
            .compile()
            .unwrap();
        let err = f
            .call(&[vec1(vec![1.0]), i64_scalar(2)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("step 0 computes state 0 as float64 of shape [2]"),
            "{err}"
        );
    }
    // No step count, no sequence, no condition.
    let endless = scan(|s| vec![s.state(0) + 1.0]).states(&[&x0]).build();
    let err = endless.check().unwrap_err().to_string();
    assert!(
        err.contains("no step count, no sequence and no stop condition"),
        "{err}"
    );
    // The closure reads what the scan does not have.
    let wrong = scan(|s| vec![s.state(0) + s.sequence(0)])
        .states(&[&x0])
        .n_steps(&n)
        .build();
    let err = wrong.check().unwrap_err().to_string();
    assert!(err.contains("sequence 0, which it does not have"), "{err}");
}

#[test]
fn a_scan_prints_its_body_below_and_runs_as_one_native_call() {
    let (ts, s0) = (vector("ts", Float64), scalar("s0", Float64));
    let out = scan(|s| vec![s.state(0) * 0.5 + s.sequence(0)])
        .sequences(&[&ts])
        .states(&[&s0])
        .build();
    let text = dprint(&[&out.last(0)]).unwrap();
    assert!(
        text.contains("Scan{sequences=[[0]], states=[[-1]], non_sequences=0}"),
        "{text}"
    );
    assert!(text.contains("Inner graphs:"), "{text}");
    // to_dot draws the body as a cluster below the scan's node.
    let dot = to_dot(&[&out.last(0)]).unwrap();
    assert!(
        dot.contains("subgraph cluster_") && dot.contains("style=dotted") && dot.contains("Scan"),
        "{dot}"
    );
    let f = function(&[&ts, &s0], &[&out.last(0)])
        .mode(Mode::Jit.strict())
        .compile()
        .unwrap();
    let plan = f.plan();
    assert!(
        plan.contains(
            "runs as one native call: a driver loop invoking its body's kernels on views"
        ),
        "{plan}"
    );
    assert!(f.interpreted_nodes().is_empty());
    // A body with a node the driver cannot run (a gather by an index array) loops in
    // Rust over its compiled body; a transpose (a view elsewhere) is a copy in the native
    // driver.
    let (m0, k) = (matrix("m0", Float64), matrix("k", Float64));
    let out = scan(|s| vec![s.state(0).transpose(&[1, 0]).get(idx![[1, 0]]) + s.non_sequence(0)])
        .states(&[&m0])
        .non_sequences(&[&k])
        .n_steps(3)
        .build();
    let f = function(&[&m0, &k], &[&out.last(0)])
        .mode(Mode::Jit.strict())
        .compile()
        .unwrap();
    let plan = f.plan();
    assert!(
        plan.contains("a loop calling its body's compiled function"),
        "{plan}"
    );
    let values = [
        data(array![[1.0, 2.0], [3.0, 4.0]].into_dyn()),
        data(array![[0.0, 1.0], [0.0, 0.0]].into_dyn()),
    ];
    compare_backends(
        &[&m0, &k],
        &[&out.last(0), &out.trace(0)],
        &values,
        Mode::Jit,
    )
    .unwrap();
    let out = scan(|s| vec![s.state(0).transpose(&[1, 0]) + s.non_sequence(0)])
        .states(&[&m0])
        .non_sequences(&[&k])
        .n_steps(3)
        .build();
    let f = function(&[&m0, &k], &[&out.last(0)])
        .mode(Mode::Jit.strict())
        .compile()
        .unwrap();
    assert!(f.plan().contains("one native call"), "{}", f.plan());
    compare_backends(
        &[&m0, &k],
        &[&out.last(0), &out.trace(0)],
        &values,
        Mode::Jit,
    )
    .unwrap();
}

#[test]
fn the_driver_of_a_scalar_while_scan_runs_its_body_inline_and_grows_its_trace() {
    let (ts, s0) = (vector("ts", Float64), scalar("s0", Float64));
    let out = scan(|s| {
        let next = s.state(0) * 0.99 + s.sequence(0).sin();
        s.until(&next.gt(10.0));
        vec![next]
    })
    .sequences(&[&ts])
    .states(&[&s0])
    .build();
    let f = function(&[&ts, &s0], &[&out.trace(0)]).compile().unwrap();
    let driver = driver_text(&f);
    expect_test::expect![[r#"
        kernel scan_driver(in steps: int64[0d], in seq0: float64[1d], in init0: float64[0d], out last0: float64[0d], growing trace0: float64[1d]):
          reg r0: int64 = 0:int64
          reg r1: bool = false:bool
          reg r2: float64 = init0[]
          while and(lt(r0, steps[]), not(r1)):
            t0: int64 = add(r0, 0:int64)
            if or(lt(t0, 0:int64), ge(t0, seq0.shape[0])):
              fail "scan: an index {0} is out of range for a dimension of size {1}", t0, seq0.shape[0]
            t1: float64 = seq0[t0]
            t2: float64 = r2
            t4: float64 = mul(t2, 0.99:float64)
            t3: float64 = t1
            t5: float64 = sin(t3)
            t6: float64 = add(t4, t5)
            t7: bool = gt(t6, 10.0:float64)
            t8: float64 = t6
            t9: bool = t7
            t10: float64 = t8
            grow trace0 to add(r0, 1:int64) rows or fail "no memory for a trace"
            t11: int64 = r0
            if or(lt(t11, 0:int64), ge(t11, trace0.shape[0])):
              fail "scan: an index {0} is out of range for a dimension of size {1}", t11, trace0.shape[0]
            trace0[t11] = t10
            r1 := neq(t9, 0:bool)
            r2 := t10
            r0 := add(r0, 1:int64)
          last0[] = r2
    "#]]
    .assert_eq(&driver);
    // End to end: the trace stops after the first value above 10, exactly sized.
    let t: Vec<f64> = (0..5000).map(|i| i as f64 * 0.01).collect();
    let mut expected = Vec::new();
    let mut s = 0.0f64;
    for x in &t {
        s = 0.99 * s + x.sin();
        expected.push(s);
        if s > 10.0 {
            break;
        }
    }
    for mode in MODES {
        let g = function(&[&ts, &s0], &[&out.trace(0)])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let r = g.call(&[vec1(t.clone()), f64_scalar(0.0)]).unwrap();
        let got = r[0].to_f64_vec();
        assert_eq!(got.len(), expected.len(), "{mode:?}");
        for (g, w) in got.iter().zip(&expected) {
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                "{mode:?}: {g} vs {w}"
            );
        }
    }
}

#[test]
fn a_scan_inside_a_scan() {
    // Outer: for each row r of m, the inner scan's running sum of r, added to the state.
    let (m, acc0) = (matrix("m", Float64), scalar("acc0", Float64));
    let out = scan(|s| {
        let row = s.sequence(0);
        let inner = scan(|u| vec![u.state(0) + u.sequence(0)])
            .sequences(&[&row])
            .states(&[&constant(TensorData::scalar(0.0))])
            .build();
        vec![s.state(0) + inner.last(0)]
    })
    .sequences(&[&m])
    .states(&[&acc0])
    .build();
    let values = [
        data(array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]].into_dyn()),
        f64_scalar(0.5),
    ];
    for mode in MODES {
        let f = function(&[&m, &acc0], &[&out.last(0), &out.trace(0)])
            .mode(mode)
            .compile()
            .unwrap();
        let r = f.call(&values).unwrap();
        assert_eq!(r[0].to_f64_vec(), vec![21.5]);
        assert_eq!(r[1].to_f64_vec(), vec![3.5, 10.5, 21.5]);
    }
}

#[test]
fn random_recurrences_agree_between_the_backends() {
    let mut rng = tensorlift::testing::TestRng::new(7);
    for case in 0..20 {
        let len = (rng.next_f64() * 6.0) as usize;
        let width = 1 + (rng.next_f64() * 4.0) as usize;
        let (xs, h0, w) = (
            matrix("xs", Float64),
            vector("h0", Float64),
            matrix("w", Float64),
        );
        let out = scan(|s| {
            let h = s.state(0);
            vec![(s.non_sequence(0).dot(&h) + s.sequence(0)).tanh() * 0.9 + h.exp().sum(All) * 0.01]
        })
        .sequences(&[&xs])
        .states(&[&h0])
        .non_sequences(&[&w])
        .build();
        let random = |shape: &[usize], rng: &mut tensorlift::testing::TestRng| {
            let n: usize = shape.iter().product();
            data(
                ArrayD::from_shape_vec(
                    IxDyn(shape),
                    (0..n).map(|_| rng.next_f64() * 2.0 - 1.0).collect(),
                )
                .unwrap(),
            )
        };
        let values = [
            random(&[len, width], &mut rng),
            random(&[width], &mut rng),
            random(&[width, width], &mut rng),
        ];
        compare_backends(
            &[&xs, &h0, &w],
            &[&out.last(0), &out.trace(0)],
            &values,
            Mode::Jit,
        )
        .unwrap_or_else(|e| panic!("case {case}: {e}"));
    }
}

/// The loop IR of the driver of a compiled function's (first) scan.
fn driver_text(f: &Function) -> String {
    native_driver(f).expect("a natively lowered scan")
}

/// The loop IR of the driver of a compiled function's first scan, if it lowers natively.
fn native_driver(f: &Function) -> Option<String> {
    let fg = f.fgraph();
    fg.toposort().into_iter().find_map(|n| {
        let e = fg.node(n)?;
        let tensorlift::ir::Op::Scan(op) = &e.op else {
            return None;
        };
        let types: Vec<&TensorType> = e.inputs.iter().map(|x| &fg.var(*x).ty).collect();
        let lowered = tensorlift_compiler::lower::scan::lower_scan(op, &types)?;
        Some(lowered.kernels.last()?.to_string())
    })
}

/// The body of a compiled function's scan, printed.
fn body_text(f: &Function) -> String {
    let fg = f.fgraph();
    fg.toposort()
        .into_iter()
        .find_map(|n| match &fg.node(n)?.op {
            tensorlift::ir::Op::Scan(scan) => {
                Some(tensorlift::ir::print::dprint_fgraph(scan.body.graph()))
            }
            _ => None,
        })
        .expect("a scan")
}

#[test]
fn a_trace_nobody_reads_is_not_stored() {
    let (ts, s0) = (vector("ts", Float64), scalar("s0", Float64));
    let out = scan(|s| vec![s.state(0) * 0.5 + s.sequence(0)])
        .sequences(&[&ts])
        .states(&[&s0])
        .build();
    let last_only = function(&[&ts, &s0], &[&out.last(0)]).compile().unwrap();
    assert_eq!(
        last_only.rewrite_report().fired("scan_drop_unused_traces"),
        1
    );
    assert!(
        last_only.dprint().contains("no trace 0"),
        "{}",
        last_only.dprint()
    );
    // The driver has no trace buffer: O(1) memory in the number of steps.
    assert!(!last_only.plan().contains("grown"), "{}", last_only.plan());
    let both = function(&[&ts, &s0], &[&out.last(0), &out.trace(0)])
        .compile()
        .unwrap();
    assert_eq!(both.rewrite_report().fired("scan_drop_unused_traces"), 0);
    let values = [vec1(vec![1.0, 2.0, 3.0]), f64_scalar(0.0)];
    let r = last_only.call(&values).unwrap();
    assert_eq!(r[0].to_f64_vec(), vec![4.25]);
    assert_eq!(
        both.call(&values).unwrap()[1].to_f64_vec(),
        vec![1.0, 2.5, 4.25]
    );
}

#[test]
fn invariant_computations_leave_the_loop() {
    // exp(w) · 2 reads only a non-sequence: computed once, before the loop.
    let (x0, w, n) = (
        vector("x0", Float64),
        vector("w", Float64),
        scalar("n", Int64),
    );
    let out = scan(|s| vec![s.state(0) * (s.non_sequence(0).exp() * 2.0)])
        .states(&[&x0])
        .non_sequences(&[&w])
        .n_steps(&n)
        .build();
    let f = function(&[&x0, &w, &n], &[&out.last(0)]).compile().unwrap();
    assert_eq!(f.rewrite_report().fired("scan_hoist_invariants"), 1);
    let body = body_text(&f);
    assert!(!body.contains("Exp") && !body.contains("exp("), "{body}");
    assert!(f.dprint().contains("exp"), "{}", f.dprint());
    let values = [vec1(vec![1.0, -1.0]), vec1(vec![0.0, 1.0]), i64_scalar(3)];
    compare_backends(&[&x0, &w, &n], &[&out.last(0)], &values, Mode::Jit).unwrap();
    let r = f.call(&values).unwrap().remove(0).to_f64_vec();
    let e = 1f64.exp() * 2.0;
    assert!(
        (r[0] - 8.0).abs() < 1e-12 && (r[1] + e * e * e).abs() < 1e-9,
        "{r:?}"
    );
    // Also read directly from outside (an implicit non-sequence).
    let direct = scan(|s| vec![s.state(0) * (w.exp() * 2.0)])
        .states(&[&x0])
        .n_steps(&n)
        .build();
    let g = function(&[&x0, &w, &n], &[&direct.last(0)])
        .compile()
        .unwrap();
    assert_eq!(g.call(&values).unwrap()[0].to_f64_vec(), r);
}

#[test]
fn element_wise_work_on_a_sequence_runs_before_the_loop_as_one_pass() {
    // sin(t) reads only the sequence: one vectorised pass over ts, then a loop of
    // multiply-adds; over a constant sequence it is folded at compile time.
    let (ts, s0) = (vector("ts", Float64), scalar("s0", Float64));
    let out = scan(|s| vec![s.state(0) * 0.99 + s.sequence(0).sin()])
        .sequences(&[&ts])
        .states(&[&s0])
        .build();
    let f = function(&[&ts, &s0], &[&out.last(0)]).compile().unwrap();
    assert_eq!(f.rewrite_report().fired("scan_push_out_sequences"), 1);
    let body = body_text(&f);
    assert!(!body.to_lowercase().contains("sin"), "{body}");
    let t: Vec<f64> = (0..50).map(|i| i as f64 * 0.3).collect();
    compare_backends(
        &[&ts, &s0],
        &[&out.last(0), &out.trace(0)],
        &[vec1(t), f64_scalar(1.0)],
        Mode::Jit,
    )
    .unwrap();
    // Over arange, sin(arange) becomes a constant.
    let ts = arange_dtype(0, 1000, 1, Float64);
    let folded = scan(|s| vec![s.state(0) * 0.99 + s.sequence(0).sin()])
        .sequences(&[&ts])
        .states(&[&s0])
        .build();
    let g = function(&[&s0], &[&folded.last(0)]).compile().unwrap();
    assert!(!g.dprint().to_lowercase().contains("sin"), "{}", g.dprint());
    let mut s = 0.25f64;
    for t in 0..1000 {
        s = 0.99 * s + (t as f64).sin();
    }
    let got = g.call(&[f64_scalar(0.25)]).unwrap()[0].to_f64_vec()[0];
    assert!((got - s).abs() < 1e-12, "{got} vs {s}");
    // A while-scan keeps its work in the loop (it may stop long before the end).
    let w = scan(|s| {
        let next = s.state(0) + s.sequence(0).sin();
        s.until(&next.gt(3.0));
        vec![next]
    })
    .sequences(&[&ts])
    .states(&[&s0])
    .build();
    let h = function(&[&s0], &[&w.last(0)]).compile().unwrap();
    assert_eq!(h.rewrite_report().fired("scan_push_out_sequences"), 0);
}

#[test]
fn scans_agree_with_rewrites_off() {
    let (ts, s0, w) = (
        vector("ts", Float64),
        scalar("s0", Float64),
        scalar("w", Float64),
    );
    let out = scan(|s| vec![s.state(0) * w.exp() + s.sequence(0).cos() * 0.5])
        .sequences(&[&ts])
        .states(&[&s0])
        .build();
    let values = [
        vec1(vec![0.1, 0.2, 0.3, 0.4]),
        f64_scalar(1.0),
        f64_scalar(-0.5),
    ];
    for mode in [
        Mode::Jit.without_rewrites(),
        Mode::Reference.without_rewrites(),
        Mode::Jit,
    ] {
        compare_backends(
            &[&ts, &s0, &w],
            &[&out.last(0), &out.trace(0)],
            &values,
            mode,
        )
        .unwrap();
    }
}

#[test]
fn while_scans_stop_at_the_first_step_or_after_a_hundred_thousand() {
    // The condition holds after the first step.
    let x0 = scalar("x0", Float64);
    let once = scan(|s| {
        let next = s.state(0) + 1.0;
        s.until(&next.gt(0.0));
        vec![next]
    })
    .states(&[&x0])
    .build();
    // Counting to 100,001: the trace grows in place to a length only the run knows.
    let k0 = scalar("k0", Int64);
    let many = scan(|s| {
        let next = s.state(0) + 1;
        s.until(&next.ge(100_001));
        vec![next]
    })
    .states(&[&k0])
    .build();
    for mode in MODES {
        let f = function(&[&x0], &[&once.last(0), &once.trace(0)])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let r = f.call(&[f64_scalar(5.0)]).unwrap();
        assert_eq!(
            (r[0].to_f64_vec(), r[1].to_f64_vec()),
            (vec![6.0], vec![6.0]),
            "{mode:?}"
        );
        let g = function(&[&k0], &[&many.last(0), &many.trace(0)])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let r = g.call(&[i64_scalar(0)]).unwrap();
        assert_eq!(r[0].to_f64_vec(), vec![100_001.0], "{mode:?}");
        let trace = r[1].to_array::<i64>();
        assert_eq!(trace.shape(), &[100_001], "{mode:?}");
        assert!(
            trace.iter().enumerate().all(|(i, v)| *v == i as i64 + 1),
            "{mode:?}"
        );
    }
}

#[test]
fn the_driver_invokes_a_body_of_arrays_on_views() {
    // x ← 0.5·x + xs[t] over rows: the body kernel is invoked on a row of the sequence and
    // slots of the state's ring (views), the trace row copied by an invoked kernel.
    let (xs, x0) = (matrix("xs", Float64), vector("x0", Float64));
    let out = scan(|s| vec![s.state(0) * 0.5 + s.sequence(0)])
        .sequences(&[&xs])
        .states(&[&x0])
        .build();
    let f = function(&[&xs, &x0], &[&out.trace(0)]).compile().unwrap();
    let driver = driver_text(&f);
    expect_test::expect![[r#"
        kernel scan_driver(in steps: int64[0d], in seq0: float64[2d], in init0: float64[1d], in nonseq0: float64[1d], out last0: float64[1d], out trace0: float64[2d], local t: int64[0d] = [], local ring0: float64[2d] = [2, init0.shape[0]], local phase0: int64[0d] = []):
          if neq(ring0.shape[0], 2:int64):
            fail "local 1 has {0} elements along axis 0, expected {1}", ring0.shape[0], 2:int64
          if neq(ring0.shape[1], init0.shape[0]):
            fail "local 1 has {0} elements along axis 1, expected {1} (the size of input 2's axis 0)", ring0.shape[1], init0.shape[0]
          t[] = 0:int64
          phase0[] = 0:int64
          invoke copy(init0, ring0[0:int64])
          while lt(t[], steps[]):
            invoke elemwise(ring0[phase0[]], nonseq0, seq0[t[]], ring0[switch(ge(add(phase0[], 1:int64), 2:int64), add(add(phase0[], 1:int64), -2:int64), add(phase0[], 1:int64))])
            invoke copy(ring0[switch(ge(add(phase0[], 1:int64), 2:int64), add(add(phase0[], 1:int64), -2:int64), add(phase0[], 1:int64))], trace0[t[]])
            phase0[] = switch(eq(add(phase0[], 1:int64), 2:int64), 0:int64, add(phase0[], 1:int64))
            t[] = add(t[], 1:int64)
          invoke copy(ring0[phase0[]], last0)
    "#]].assert_eq(&driver);
    let values = [
        data(ndarray::array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]].into_dyn()),
        vec1(vec![0.0, 8.0]),
    ];
    let r = f.call(&values).unwrap();
    assert_eq!(r[0].to_f64_vec(), vec![1.0, 6.0, 3.5, 7.0, 6.75, 9.5]);
}

/// Sequence taps the random scans choose from.
const SEQUENCE_TAPS: [&[i64]; 5] = [&[0], &[0, 1], &[-1, 0], &[0, 2], &[-2, 0, 1]];
/// State taps the random scans choose from.
const STATE_TAPS: [&[i64]; 4] = [&[-1], &[-2, -1], &[-3, -1], &[-2]];

proptest! {
    #![proptest_config(common::proptest_config(48, 0x5ca_11ed))]
    /// Random scans — scalar or vector states and sequences, several taps of each, forward
    /// or reversed, fixed length or stopped by a condition under a bound, with reductions
    /// broadcast back now and then, a choice, a nested scan or an indexed element in the
    /// step — give the reference's last values and traces in the
    /// JIT (native driver or loop over the body's plan), with and without rewrites.
    #[test]
    fn random_scans_agree_between_the_backends(
        width in 0usize..4,
        seq_taps in prop::collection::vec(0usize..SEQUENCE_TAPS.len(), 0..3),
        state_taps in prop::collection::vec(0usize..STATE_TAPS.len(), 1..3),
        steps in 0usize..7,
        reverse in any::<bool>(),
        until in any::<bool>(),
        reduce in any::<bool>(),
        extra in 0usize..4,
        seed in any::<u64>(),
    ) {
        let mut rng = tensorlift::testing::TestRng::new(seed);
        let shape: Vec<usize> = if width == 0 { vec![] } else { vec![width] };
        let static_shape: Vec<Option<usize>> = shape.iter().map(|_| None).collect();
        let random = |dims: &[usize], rng: &mut tensorlift::testing::TestRng| {
            let n: usize = dims.iter().product();
            data(ArrayD::from_shape_vec(IxDyn(dims), (0..n).map(|_| rng.next_f64() * 2.0 - 1.0).collect()).unwrap())
        };
        let mut inputs = Vec::new();
        let mut values = Vec::new();
        let mut builder_seqs = Vec::new();
        for (j, t) in seq_taps.iter().enumerate() {
            let taps = SEQUENCE_TAPS[*t];
            let span = (taps[taps.len() - 1] - taps[0]) as usize;
            let mut st = vec![None];
            st.extend(static_shape.iter().copied());
            let x = tensor(&format!("xs{j}"), Float64, st);
            let mut dims = vec![steps + span];
            dims.extend(&shape);
            values.push(random(&dims, &mut rng));
            inputs.push(x.clone());
            builder_seqs.push((x, taps));
        }
        let mut builder_states = Vec::new();
        for (k, t) in state_taps.iter().enumerate() {
            let taps = STATE_TAPS[*t];
            let block = taps != [-1];
            let mut st: Vec<Option<usize>> = if block { vec![None] } else { vec![] };
            st.extend(static_shape.iter().copied());
            let x0 = tensor(&format!("x0_{k}"), Float64, st);
            let mut dims: Vec<usize> = if block { vec![taps[0].unsigned_abs() as usize] } else { vec![] };
            dims.extend(&shape);
            values.push(random(&dims, &mut rng));
            inputs.push(x0.clone());
            builder_states.push((x0, taps));
        }
        let n = scalar("n", Int64);
        inputs.push(n.clone());
        values.push(TensorData::scalar(steps as i64));
        let coefficients: Vec<f64> = (0..16).map(|_| rng.next_f64() * 1.6 - 0.8).collect();
        let (seqs_for_body, states_for_body) = (builder_seqs.clone(), builder_states.clone());
        let mut b = scan(move |s| {
            let mut outs = Vec::new();
            for (k, (_, taps)) in states_for_body.iter().enumerate() {
                let mut acc = s.state_at(k, taps[0]) * coefficients[k];
                for (i, tap) in taps.iter().enumerate().skip(1) {
                    acc = acc + s.state_at(k, *tap) * coefficients[4 + i];
                }
                for (j, (_, taps)) in seqs_for_body.iter().enumerate() {
                    for tap in taps.iter() {
                        acc = acc + s.sequence_at(j, *tap) * coefficients[8 + j];
                    }
                }
                let o = (k + 1) % states_for_body.len();
                let other = s.state_at(o, states_for_body[o].1[0]);
                acc = acc + other.sin() * coefficients[12];
                if reduce {
                    acc = acc + other.sum(All) * 0.1;
                }
                // A choice, a nested scan or an indexed element in the step.
                match extra {
                    1 => {
                        let c = other.sum(All).gt(coefficients[14]);
                        acc = ifelse(&c, &[&acc], &[&(&acc * 0.5 - &other)])[0].clone();
                    }
                    2 => {
                        let inner = scan(|u| vec![u.state(0) * 0.7 + 0.1])
                            .states(&[&acc])
                            .n_steps(2)
                            .build();
                        acc = inner.last(0);
                    }
                    3 if width > 0 => acc = &acc + acc.get(idx![-1]),
                    _ => {}
                }
                outs.push(acc.tanh());
            }
            if until {
                s.until(&outs[0].sum(All).gt(coefficients[13]));
            }
            outs
        });
        for (x, taps) in &builder_seqs {
            b = b.sequence_taps(x, taps);
        }
        for (x0, taps) in &builder_states {
            b = b.state_taps(x0, taps);
        }
        b = b.n_steps(&n);
        if reverse {
            b = b.reverse();
        }
        let out = b.build();
        out.check().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let outputs: Vec<Var> = (0..builder_states.len()).flat_map(|k| [out.last(k), out.trace(k)]).collect();
        let refs: Vec<&Var> = outputs.iter().collect();
        let ins: Vec<&Var> = inputs.iter().collect();
        for mode in [Mode::Jit, Mode::Jit.without_rewrites()] {
            compare_backends(&ins, &refs, &values, mode).map_err(TestCaseError::fail)?;
        }
        // Every node of these bodies has a native form: the scan is one native call.
        let f = function(&ins, &refs).compile().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(native_driver(&f).is_some(), "not native: {}", f.plan());
    }
}

/// A scan without states maps its step over the sequences (PyTensor's `scan` without
/// `outputs_info`): per returned value its trace and last value, as a plain loop gives
/// them; element-wise steps compile to one Elemwise (no Scan left).
#[test]
fn a_scan_without_states_maps_over_its_sequences() {
    let xs = vector("xs", Float64);
    let ys = vector("ys", Float64);
    let w = scalar("w", Float64);
    let x_vals = vec![0.5, -1.0, 2.0, 3.5, 0.25];
    let y_vals = vec![1.0, 2.0, 3.0, 4.0];
    // xs[t+1] - xs[t] (taps 0 and 1) plus ys[t] * w, and a value the same at each step.
    let out = scan(|s| {
        vec![
            s.sequence_at(0, 1) - s.sequence_at(0, 0) + s.sequence(1) * s.non_sequence(0),
            s.non_sequence(0) * 2.0,
        ]
    })
    .sequence_taps(&xs, &[0, 1])
    .sequences(&[&ys])
    .non_sequences(&[&w])
    .build();
    out.check().unwrap();
    let diffs: Vec<f64> = (0..4)
        .map(|t| x_vals[t + 1] - x_vals[t] + y_vals[t] * 1.5)
        .collect();
    let inputs = [vec1(x_vals.clone()), vec1(y_vals.clone()), f64_scalar(1.5)];
    for mode in MODES {
        let f = function(
            &[&xs, &ys, &w],
            &[&out.trace(0), &out.last(0), &out.trace(1)],
        )
        .mode(mode.clone())
        .compile()
        .unwrap();
        assert!(!f.dprint().contains("Scan{"), "{}", f.dprint());
        let got = f.call(&inputs).unwrap();
        assert_eq!(got[0].to_f64_vec(), diffs, "{mode:?}");
        assert_eq!(got[1].to_f64_vec(), vec![diffs[3]], "{mode:?}");
        assert_eq!(got[2].to_f64_vec(), vec![3.0; 4], "{mode:?}");
        // Lengths that disagree (5 - 1 steps against 3): an error naming the rule.
        let e = f
            .call(&[
                vec1(x_vals.clone()),
                vec1(vec![1.0, 2.0, 3.0]),
                f64_scalar(1.5),
            ])
            .unwrap_err()
            .to_string();
        assert!(e.contains("step count"), "{mode:?}: {e}");
    }
    compare_backends(
        &[&xs, &ys, &w],
        &[&out.trace(0), &out.trace(1)],
        &inputs,
        Mode::Jit,
    )
    .unwrap();
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-12 * w.abs().max(1.0),
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn a_stateless_scan_with_a_step_count_in_reverse() {
    let xs = vector("xs", Float64);
    let n = scalar("n", Int64);
    let out = scan(|s| vec![s.sequence(0).exp()])
        .sequences(&[&xs])
        .n_steps(&n)
        .reverse()
        .build();
    let x_vals = vec![0.0, 1.0, 2.0];
    let want: Vec<f64> = x_vals.iter().rev().map(|v: &f64| v.exp()).collect();
    for mode in MODES {
        let f = function(&[&xs, &n], &[&out.trace(0)])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let got = f.call(&[vec1(x_vals.clone()), i64_scalar(3)]).unwrap();
        assert_close(&got[0].to_f64_vec(), &want);
        assert!(f.call(&[vec1(x_vals.clone()), i64_scalar(2)]).is_err());
    }
    // The same loop with a state that it ignores gives the same trace.
    let with_state = scan(|s| vec![s.sequence(0).exp() + s.state(0) * 0.0])
        .sequences(&[&xs])
        .states(&[&constant(TensorData::scalar(0.0f64))])
        .reverse()
        .build();
    let f = function(&[&xs], &[&with_state.trace(0)]).compile().unwrap();
    let got = f.call(&[vec1(x_vals)]).unwrap();
    assert_close(&got[0].to_f64_vec(), &want);
    // Nothing to map over.
    let none = scan(|s| vec![s.non_sequence(0) * 2.0])
        .non_sequences(&[&n])
        .build();
    assert!(none
        .check()
        .unwrap_err()
        .to_string()
        .contains("neither states nor sequences"));
}

#[test]
fn a_choice_in_a_body_of_arrays_is_the_drivers_own_if() {
    // x ← sum(x) > 0 ? x·w : sin(x) − 1: the driver tests the condition each step and
    // runs only the taken branch's kernels, each writing a local that is copied to where
    // the choice's result lives.
    let (x0, w) = (vector("x0", Float64), vector("w", Float64));
    let out = scan(|s| {
        let x = s.state(0);
        let w = s.non_sequence(0);
        ifelse(&x.sum(All).gt(0.0), &[&(&x * &w)], &[&(x.sin() - 1.0)])
    })
    .states(&[&x0])
    .non_sequences(&[&w])
    .n_steps(6)
    .build();
    let f = function(&[&x0, &w], &[&out.trace(0), &out.last(0)])
        .compile()
        .unwrap();
    assert!(f.plan().contains("one native call"), "{}", f.plan());
    let driver = driver_text(&f);
    expect_test::expect![[r#"
        kernel scan_driver(in steps: int64[0d], in init0: float64[1d], in nonseq0: float64[1d], in c0: float64[0d], out last0: float64[1d], out trace0: float64[2d], local t: int64[0d] = [], local ring0: float64[2d] = [2, init0.shape[0]], local phase0: int64[0d] = [], local v2: float64[0d] = [], local v4: bool[0d] = [], local v11t2: float64[1d] = [init0.shape[0]], local v12e7: float64[1d] = [init0.shape[0]]):
          if neq(ring0.shape[0], 2:int64):
            fail "local 1 has {0} elements along axis 0, expected {1}", ring0.shape[0], 2:int64
          if neq(ring0.shape[1], init0.shape[0]):
            fail "local 1 has {0} elements along axis 1, expected {1} (the size of input 1's axis 0)", ring0.shape[1], init0.shape[0]
          if neq(v11t2.shape[0], init0.shape[0]):
            fail "local 5 has {0} elements along axis 0, expected {1} (the size of input 1's axis 0)", v11t2.shape[0], init0.shape[0]
          if neq(v12e7.shape[0], init0.shape[0]):
            fail "local 6 has {0} elements along axis 0, expected {1} (the size of input 1's axis 0)", v12e7.shape[0], init0.shape[0]
          t[] = 0:int64
          phase0[] = 0:int64
          invoke copy(init0, ring0[0:int64])
          while lt(t[], steps[]):
            invoke sum_reduce(ring0[phase0[]], v2)
            t0: float64 = v2[]
            t1: float64 = c0[]
            t2: bool = gt(t0, t1)
            v4[] = t2
            if neq(v4[], 0:bool):
              invoke elemwise(ring0[phase0[]], nonseq0, v11t2)
              invoke copy(v11t2, ring0[switch(ge(add(phase0[], 1:int64), 2:int64), add(add(phase0[], 1:int64), -2:int64), add(phase0[], 1:int64))])
            else:
              invoke elemwise(ring0[phase0[]], v12e7)
              invoke copy(v12e7, ring0[switch(ge(add(phase0[], 1:int64), 2:int64), add(add(phase0[], 1:int64), -2:int64), add(phase0[], 1:int64))])
            invoke copy(ring0[switch(ge(add(phase0[], 1:int64), 2:int64), add(add(phase0[], 1:int64), -2:int64), add(phase0[], 1:int64))], trace0[t[]])
            phase0[] = switch(eq(add(phase0[], 1:int64), 2:int64), 0:int64, add(phase0[], 1:int64))
            t[] = add(t[], 1:int64)
          invoke copy(ring0[phase0[]], last0)
    "#]].assert_eq(&driver);
    let mut rng = tensorlift::testing::TestRng::new(5);
    for case in 0..12 {
        let n = 1 + case % 5;
        let mut v = |scale: f64| vec1((0..n).map(|_| (rng.next_f64() - 0.5) * scale).collect());
        let values = [v(4.0), v(3.0)];
        compare_backends(
            &[&x0, &w],
            &[&out.trace(0), &out.last(0)],
            &values,
            Mode::Jit,
        )
        .unwrap_or_else(|e| panic!("case {case}: {e}"));
    }
    // Against a loop in Rust.
    let (x, wv) = (vec![0.5, -0.25, 2.0], vec![-1.5, 0.5, 1.0]);
    let mut want = Vec::new();
    let mut s = x.clone();
    for _ in 0..6 {
        s = if s.iter().sum::<f64>() > 0.0 {
            s.iter().zip(&wv).map(|(a, b)| a * b).collect()
        } else {
            s.iter().map(|a| a.sin() - 1.0).collect()
        };
        want.extend(s.iter().copied());
    }
    let r = f.call(&[vec1(x), vec1(wv)]).unwrap();
    assert_close(&r[0].to_f64_vec(), &want);
}

#[test]
fn a_scan_inside_a_scan_is_one_native_call() {
    // Outer over the rows of m, states a vector h and a scalar count; the inner scan walks
    // the row (taps 0 and 1) with a vector state and a scalar one, its trace kept (the
    // step count is in its type) and read by the outer body.
    let (m, h0, w) = (
        tensor("m", Float64, vec![None, Some(5)]),
        vector("h0", Float64),
        vector("w", Float64),
    );
    let out = scan(|s| {
        let row = s.sequence(0);
        let h = s.state(0);
        let w = s.non_sequence(0);
        let inner = scan(|u| {
            let (x, x1) = (u.sequence_at(0, 0), u.sequence_at(0, 1));
            let (v, c) = (u.state(0), u.state(1));
            vec![&v * 0.5 + &w * &x1 - x, c + x1.sin()]
        })
        .sequence_taps(&row, &[0, 1])
        .states(&[&h, &constant(TensorData::scalar(0.0))])
        .build();
        let summary = inner.trace(1).sum(All);
        vec![inner.last(0) + summary, inner.trace(0).sum(All)]
    })
    .sequences(&[&m])
    .states(&[&h0, &constant(TensorData::scalar(0.0))])
    .non_sequences(&[&w])
    .build();
    let outputs = [&out.trace(0), &out.last(1)];
    let f = function(&[&m, &h0, &w], &outputs).compile().unwrap();
    let driver = driver_text(&f);
    assert!(driver.contains("invoke inner_scan_driver("), "{driver}");
    let mut rng = tensorlift::testing::TestRng::new(17);
    for case in 0..12 {
        let (rows, width) = (case % 4, 1 + case % 3);
        let mut v = |n: usize| {
            (0..n)
                .map(|_| rng.next_f64() * 2.0 - 1.0)
                .collect::<Vec<_>>()
        };
        let values = [
            data(ArrayD::from_shape_vec(IxDyn(&[rows, 5]), v(rows * 5)).unwrap()),
            vec1(v(width)),
            vec1(v(width)),
        ];
        compare_backends(&[&m, &h0, &w], &outputs, &values, Mode::Jit)
            .unwrap_or_else(|e| panic!("case {case}: {e}"));
    }
}

#[test]
fn nested_native_scans_with_bounds_stops_taps_and_errors() {
    // Outer over xs (reversed), a vector state with taps −2, −1 (an initial block); inner
    // scans: a while-loop bounded by k (only its last value read), and a scan of scalars
    // over a sequence whose length must agree with k.
    let (xs, block, k, ys) = (
        vector("xs", Float64),
        matrix("block", Float64),
        scalar("k", Int64),
        vector("ys", Float64),
    );
    let out = scan(|s| {
        let x = s.sequence(0);
        let (older, prev) = (s.state_at(0, -2), s.state_at(0, -1));
        let (k, ys) = (s.non_sequence(0), s.non_sequence(1));
        let halving = scan(|u| {
            let v = u.state(0);
            let next = &v * 0.5 + &x;
            u.until(&next.abs().sum(All).lt(1.0));
            vec![next]
        })
        .states(&[&(&prev - &older)])
        .n_steps(&k)
        .build();
        let running = scan(|u| vec![u.state(0) * 0.9 + u.sequence(0)])
            .sequences(&[&ys])
            .states(&[&x])
            .n_steps(&k)
            .build();
        vec![halving.last(0) + running.last(0)]
    })
    .sequences(&[&xs])
    .state_taps(&block, &[-2, -1])
    .non_sequences(&[&k, &ys])
    .reverse()
    .build();
    let inputs = [&xs, &block, &k, &ys];
    let outputs = [&out.trace(0), &out.last(0)];
    let f = function(&inputs, &outputs).compile().unwrap();
    let driver = driver_text(&f);
    assert!(driver.contains("invoke inner_scan_driver("), "{driver}");
    let mut rng = tensorlift::testing::TestRng::new(23);
    for case in 0..16 {
        let (steps, width, inner) = (case % 5, 1 + case % 3, case % 4);
        let mut v = |n: usize| {
            (0..n)
                .map(|_| rng.next_f64() * 8.0 - 4.0)
                .collect::<Vec<_>>()
        };
        let values = [
            vec1(v(steps)),
            data(ArrayD::from_shape_vec(IxDyn(&[2, width]), v(2 * width)).unwrap()),
            i64_scalar(inner as i64),
            vec1(v(inner)),
        ];
        compare_backends(&inputs, &outputs, &values, Mode::Jit)
            .unwrap_or_else(|e| panic!("case {case}: {e}"));
    }
    // Errors from inside the inner drivers, in both backends: a step count that
    // disagrees with the sequence, a negative one, an initial block of the wrong rows.
    let good = || {
        vec![
            vec1(vec![1.0, 2.0]),
            data(ArrayD::zeros(IxDyn(&[2, 3]))),
            i64_scalar(2),
            vec1(vec![0.5, 0.25]),
        ]
    };
    let mut disagree = good();
    disagree[2] = i64_scalar(3);
    let mut negative = good();
    negative[2] = i64_scalar(-1);
    negative[3] = vec1(vec![]);
    for mode in MODES {
        let f = function(&inputs, &outputs)
            .mode(mode.clone())
            .compile()
            .unwrap();
        assert!(f.call(&good()).is_ok(), "{mode:?}");
        let err = f.call(&disagree).unwrap_err().to_string();
        assert!(
            err.contains("the step count gives 3 steps, but sequence 0 (2 elements"),
            "{mode:?}: {err}"
        );
        let err = f.call(&negative).unwrap_err().to_string();
        assert!(
            err.contains("the step count is -1; it must be non-negative"),
            "{mode:?}: {err}"
        );
    }
}

#[test]
fn a_nested_scan_checks_its_initial_block() {
    // The inner scan's initial block is the outer state, whose row count is known only at
    // run time: the inner driver checks it before its loop.
    let m0 = matrix("m0", Float64);
    let out = scan(|s| {
        let m = s.state(0);
        let inner = scan(|u| vec![u.state_at(0, -2) * 0.5 + u.state_at(0, -1)])
            .state_taps(&m, &[-2, -1])
            .n_steps(3)
            .build();
        vec![&m + inner.last(0).sum(All)]
    })
    .states(&[&m0])
    .n_steps(2)
    .build();
    let rows = |n: usize| {
        let v = (0..2 * n).map(|i| i as f64 * 0.5 - 1.0).collect();
        data(ArrayD::from_shape_vec(IxDyn(&[n, 2]), v).unwrap())
    };
    let f = function(&[&m0], &[&out.last(0)]).compile().unwrap();
    let driver = driver_text(&f);
    assert!(driver.contains("invoke inner_scan_driver("), "{driver}");
    compare_backends(&[&m0], &[&out.last(0)], &[rows(2)], Mode::Jit).unwrap();
    for mode in MODES {
        let f = function(&[&m0], &[&out.last(0)])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let err = f.call(&[rows(3)]).unwrap_err().to_string();
        assert!(
            err.contains("initial block has") && err.contains("need 2"),
            "{mode:?}: {err}"
        );
    }
}

#[test]
fn basic_indexing_in_a_body_runs_natively() {
    // A step counter i picks row i of W (and element −1 − i of v); the state's row i is
    // set and its last column incremented: integer indices and full slices, read and
    // written, copies inside the driver.
    let (w, v, b0, i0) = (
        matrix("W", Float64),
        vector("v", Float64),
        matrix("B0", Float64),
        scalar("i0", Int64),
    );
    let out = scan(|s| {
        let (i, b) = (s.state(0), s.state(1));
        let (w, v) = (s.non_sequence(0), s.non_sequence(1));
        let row = w.get(idx![&i]) * v.get(idx![&(-1 - &i)]);
        let written = b.set(idx![&i, ..], &row).inc(idx![.., -1], 1.0);
        vec![&i + 1, written]
    })
    .states(&[&i0, &b0])
    .non_sequences(&[&w, &v])
    .n_steps(3)
    .build();
    let inputs = [&w, &v, &b0, &i0];
    let outputs = [&out.last(1), &out.trace(0)];
    let f = function(&inputs, &outputs).compile().unwrap();
    let driver = driver_text(&f);
    assert!(
        driver.contains("invoke take(") && driver.contains("invoke set_at("),
        "{driver}"
    );
    let mut rng = tensorlift::testing::TestRng::new(29);
    for case in 0..12 {
        let (rows, cols) = (3 + case % 3, 1 + case % 4);
        let mut v = |n: usize| {
            (0..n)
                .map(|_| rng.next_f64() * 2.0 - 1.0)
                .collect::<Vec<_>>()
        };
        let values = [
            data(ArrayD::from_shape_vec(IxDyn(&[rows, cols]), v(rows * cols)).unwrap()),
            vec1(v(4)),
            data(ArrayD::from_shape_vec(IxDyn(&[rows, cols]), v(rows * cols)).unwrap()),
            i64_scalar(case as i64 % 3 - 1),
        ];
        compare_backends(&inputs, &outputs, &values, Mode::Jit)
            .unwrap_or_else(|e| panic!("case {case}: {e}"));
    }
    // An index out of range at step 2 is an error naming the index and the axis, in
    // both backends.
    for mode in MODES {
        let f = function(&inputs, &outputs)
            .mode(mode.clone())
            .compile()
            .unwrap();
        let values = [
            data(ArrayD::zeros(IxDyn(&[3, 2]))),
            vec1(vec![1.0; 4]),
            data(ArrayD::zeros(IxDyn(&[3, 2]))),
            i64_scalar(1),
        ];
        let err = f.call(&values).unwrap_err().to_string();
        assert!(
            err.contains("index 3 is out of range for axis 0 of size 3"),
            "{mode:?}: {err}"
        );
    }
}

#[test]
fn only_the_taken_branch_runs_inside_a_native_body() {
    // x ← sum(x) < limit ? x + v[0] : (a check that fails, or v[100], out of range): the
    // driver's `if` runs only the taken branch, so the failing one is harmless until the
    // sum reaches the limit.
    let (x0, v, limit) = (
        vector("x0", Float64),
        vector("v", Float64),
        scalar("limit", Float64),
    );
    let raising = |x: &Var| x.check_that(&[x.sum(All).lt(-1e300)], "the untaken branch ran");
    let build = |bad: &dyn Fn(&Var, &Var) -> Var| {
        scan(|s| {
            let (x, v, limit) = (s.state(0), s.non_sequence(0), s.non_sequence(1));
            ifelse(
                &x.sum(All).lt(&limit),
                &[&(&x + v.get(idx![0]))],
                &[&bad(&x, &v)],
            )
        })
        .states(&[&x0])
        .non_sequences(&[&v, &limit])
        .n_steps(4)
        .build()
    };
    let checked = build(&|x, _| raising(x));
    let indexed = build(&|x, v| x * v.get(idx![100]));
    for (out, message) in [
        (&checked, "the untaken branch ran"),
        (&indexed, "index 100 is out of range"),
    ] {
        let inputs = [&x0, &v, &limit];
        let f = function(&inputs, &[&out.trace(0)]).compile().unwrap();
        let driver = driver_text(&f);
        assert!(driver.contains("  if neq("), "{driver}");
        for mode in MODES {
            let f = function(&inputs, &[&out.trace(0)])
                .mode(mode.clone())
                .compile()
                .unwrap();
            let (x, v) = (vec1(vec![0.0, 1.0]), vec1(vec![0.5, 2.0, 3.0]));
            // Sums 1, 2, 3, 4: below 10 at every step.
            let r = f.call(&[x.clone(), v.clone(), f64_scalar(10.0)]).unwrap();
            assert_eq!(
                r[0].to_f64_vec(),
                vec![0.5, 1.5, 1.0, 2.0, 1.5, 2.5, 2.0, 3.0],
                "{mode:?}"
            );
            // The sum reaches 2.5 after step 2: step 3 takes the failing branch.
            let err = f.call(&[x, v, f64_scalar(2.5)]).unwrap_err().to_string();
            assert!(err.contains(message), "{mode:?}: {err}");
        }
    }
}

#[test]
fn running_ops_arg_reductions_and_softmax_in_a_native_body() {
    // h ← softmax(cumsum(h, axis 1) · 0.3) + argmax(h[0]) · 0.01 + cumprod(w) · 0.001:
    // rows of 3 (an arg-reduction needs an axis known not to be empty); cumprod(w) leaves
    // the loop (it reads only a non-sequence).
    let (h0, w) = (
        tensor("h0", Float64, vec![None, Some(3)]),
        vector("w", Float64),
    );
    let out = scan(|s| {
        let (h, w) = (s.state(0), s.non_sequence(0));
        let best = h.get(idx![0]).argmax(0).cast(Float64);
        let soft = (h.cumsum(1) * 0.3).softmax(1);
        vec![soft + best * 0.01 + w.cumprod(0) * 0.001]
    })
    .states(&[&h0])
    .non_sequences(&[&w])
    .n_steps(4)
    .build();
    let inputs = [&h0, &w];
    let outputs = [&out.trace(0), &out.last(0)];
    let f = function(&inputs, &outputs).compile().unwrap();
    let driver = driver_text(&f);
    for kernel in ["softmax", "cumsum", "argmax"] {
        assert!(
            driver.contains(&format!("invoke {kernel}")),
            "{kernel}: {driver}"
        );
    }
    let mut rng = tensorlift::testing::TestRng::new(31);
    for case in 0..10 {
        let rows = case % 4;
        let mut v = |n: usize| {
            (0..n)
                .map(|_| rng.next_f64() * 4.0 - 2.0)
                .collect::<Vec<_>>()
        };
        let values = [
            data(ArrayD::from_shape_vec(IxDyn(&[rows.max(1), 3]), v(rows.max(1) * 3)).unwrap()),
            vec1(v(3)),
        ];
        compare_backends(&inputs, &outputs, &values, Mode::Jit)
            .unwrap_or_else(|e| panic!("case {case}: {e}"));
    }
}

#[test]
fn a_scan_inside_a_choice_inside_a_native_body() {
    // x ← sum(x) > 0 ? (three halvings of x by an inner scan) : x + 1.
    let x0 = vector("x0", Float64);
    let out = scan(|s| {
        let x = s.state(0);
        let halved = scan(|u| vec![u.state(0) * 0.5])
            .states(&[&x])
            .n_steps(3)
            .build();
        ifelse(&x.sum(All).gt(0.0), &[&halved.last(0)], &[&(&x + 1.0)])
    })
    .states(&[&x0])
    .n_steps(5)
    .build();
    let f = function(&[&x0], &[&out.trace(0)]).compile().unwrap();
    let driver = driver_text(&f);
    assert!(
        driver.contains("  if neq(") && driver.contains("invoke inner_scan_driver("),
        "{driver}"
    );
    let r = f.call(&[vec1(vec![-2.0, 0.5])]).unwrap();
    // Sums −1.5, 0.5, 0.0625, …: else, then halvings.
    let mut x = vec![-2.0f64, 0.5];
    let mut want = Vec::new();
    for _ in 0..5 {
        x = if x.iter().sum::<f64>() > 0.0 {
            x.iter().map(|v| v * 0.125).collect()
        } else {
            x.iter().map(|v| v + 1.0).collect()
        };
        want.extend(x.iter().copied());
    }
    assert_eq!(r[0].to_f64_vec(), want);
    compare_backends(
        &[&x0],
        &[&out.trace(0)],
        &[vec1(vec![1.0, -3.0, 0.25])],
        Mode::Jit,
    )
    .unwrap();
}

//! The compile-then-call API (DESIGN §5): input checking before anything runs, errors that
//! name the op and the input, `Send + Sync` functions called from many threads.

use ndarray::array;
use tensorlift::prelude::*;
use tensorlift::{Error, GraphError, RuntimeError};

fn w1() -> (Var, Var, Var, Var) {
    let x = tensor("x", Float64, [None]);
    let y = tensor("y", Float64, [None]);
    let z = tensor("z", Float64, [None]);
    let out = x.exp() * &y + z.sin() * 0.5;
    (x, y, z, out)
}

#[test]
fn the_w1_kernel_matches_closed_form() {
    let (x, y, z, out) = w1();
    let f = function(&[&x, &y, &z], &[&out]).compile().unwrap();
    let xs = array![0.0f64, 1.0, -2.0];
    let ys = array![1.0f64, 2.0, 3.0];
    let zs = array![0.5f64, 0.0, 3.0];
    let got = f
        .call(&[xs.clone().into(), ys.clone().into(), zs.clone().into()])
        .unwrap();
    let got = got[0].as_array::<f64>().unwrap();
    for k in 0..3 {
        let want = xs[k].exp() * ys[k] + zs[k].sin() * 0.5;
        assert!((got[[k]] - want).abs() <= 1e-15 * want.abs().max(1.0));
    }
}

#[test]
fn inputs_are_checked_before_running() {
    let (x, y, z, out) = w1();
    let f = function(&[&x, &y, &z], &[&out]).compile().unwrap();
    let a = || -> TensorData { array![1.0, 2.0].into() };
    let err = f.call(&[a(), a()]).unwrap_err().to_string();
    assert!(err.contains("takes 3 inputs (x, y, z), got 2"), "{err}");
    let err = f.call(&[a(), array![1.0f32, 2.0].into(), a()]).unwrap_err();
    match &err {
        Error::Runtime(RuntimeError::Input {
            index: 1,
            name,
            message,
        }) => {
            assert_eq!(name, "y");
            assert!(
                message.contains("expected dtype float64, got float32"),
                "{message}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let err = f
        .call(&[a(), a(), array![[1.0, 2.0]].into()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("input 2 ('z'): expected 1 dimensions"),
        "{err}"
    );
    let s = tensor("s", Float64, [Some(3)]);
    let g = function(&[&s], &[&s.sum(None)]).compile().unwrap();
    let err = g.call(&[a()]).unwrap_err().to_string();
    assert!(err.contains("dimension 0 must have size 3"), "{err}");
}

#[test]
fn graphs_with_undeclared_inputs_do_not_compile() {
    let (x, y, _z, out) = w1();
    let err = function(&[&x, &y], &[&out]).compile().unwrap_err();
    assert!(
        matches!(err, Error::Graph(GraphError::MissingInput { ref var }) if var == "z"),
        "{err}"
    );
    let err = function(&[&x, &x], &[&x])
        .compile()
        .unwrap_err()
        .to_string();
    assert!(err.contains("declared twice"), "{err}");
    let c = tensorlift::constant(array![1.0]);
    let err = function(&[&c], &[&c]).compile().unwrap_err().to_string();
    assert!(err.contains("not a graph input"), "{err}");
}

#[test]
fn runtime_errors_name_the_op_the_input_and_the_node() {
    let v = tensor("v", Float64, [None]);
    let i = scalar("i", Int64);
    let f = function(&[&v, &i], &[&v.get(vec![(&i).into()])])
        .compile()
        .unwrap();
    let err = f
        .call(&[array![1.0, 2.0].into(), TensorData::scalar(5i64)])
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("Subtensor{i}: index 5 is out of range for axis 0 of size 2"),
        "{msg}"
    );
    assert!(
        msg.contains("in node: Subtensor{i}(v, i) -> Scalar(float64, shape=())"),
        "{msg}"
    );
    let ok = f
        .call(&[array![1.0, 2.0].into(), TensorData::scalar(-2i64)])
        .unwrap();
    assert_eq!(ok[0].as_array::<f64>().unwrap().sum(), 1.0);
}

#[test]
fn check_and_raise_stops_the_call() {
    let x = tensor("x", Float64, [None]);
    let checked = x.check_that(&[x.ge(0.0).all(None)], "x must be non-negative");
    let f = function(&[&x], &[&checked.sqrt()]).compile().unwrap();
    assert!(f.call(&[array![4.0, 9.0].into()]).is_ok());
    let err = f.call(&[array![4.0, -1.0].into()]).unwrap_err();
    assert!(
        matches!(&err, Error::Runtime(e) if e.root() == &RuntimeError::Assert("x must be non-negative".into())),
        "{err}"
    );
}

#[test]
fn data_dependent_errors_are_errors_not_panics() {
    let a = tensor("a", Int64, [None]);
    let b = tensor("b", Int64, [None]);
    let f = function(&[&a, &b], &[&a.pow(&b)]).compile().unwrap();
    let err = f
        .call(&[array![2i64].into(), array![-1i64].into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("negative integer powers"), "{err}");
    let m = tensor("m", Float64, [None, None]);
    let g = function(&[&m], &[&m.max([0])]).compile().unwrap();
    let err = g
        .call(&[ndarray::Array2::<f64>::zeros((0, 2)).into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("is empty"), "{err}");
    let n = scalar("n", Int64);
    let h = function(
        &[&m, &n],
        &[&m.reshape_to(&make_vector(&[(&n).into(), (-1i64).into()]))],
    )
    .compile()
    .unwrap();
    let err = h
        .call(&[
            ndarray::Array2::<f64>::zeros((2, 3)).into(),
            TensorData::scalar(4i64),
        ])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot reshape input 0 of shape [2, 3]"),
        "{err}"
    );
}

#[test]
fn functions_are_send_sync_and_callable_from_many_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Function>();
    assert_send_sync::<Var>();
    let (x, y, z, out) = w1();
    let f = std::sync::Arc::new(
        function(&[&x, &y, &z], &[&out.sum(None)])
            .compile()
            .unwrap(),
    );
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let f = f.clone();
            std::thread::spawn(move || {
                let v = ndarray::Array1::from_elem(100, t as f64);
                let r = f
                    .call(&[v.clone().into(), v.clone().into(), v.into()])
                    .unwrap();
                r[0].as_array::<f64>().unwrap().sum()
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        let t = t as f64;
        let want = 100.0 * (t.exp() * t + t.sin() * 0.5);
        assert!((h.join().unwrap() - want).abs() < 1e-9 * want.abs().max(1.0));
    }
}

#[test]
fn outputs_may_be_inputs_or_constants() {
    let x = tensor("x", Int32, [None]);
    let c = tensorlift::constant(array![1u8, 2]);
    let f = function(&[&x], &[&x, &c, &x.shape()]).compile().unwrap();
    let out = f.call(&[array![5i32, 6, 7].into()]).unwrap();
    assert_eq!(out[0].as_array::<i32>().unwrap().len(), 3);
    assert_eq!(out[1].dtype(), UInt8);
    assert_eq!(out[2].to_i64_vec(), Some(vec![3]));
}

#[test]
fn deep_graphs_do_not_overflow_the_stack() {
    let x = tensor("x", Float64, [None]);
    let mut y = x.clone();
    for _ in 0..20_000 {
        y = &y + 1.0;
    }
    let f = function(&[&x], &[&y]).compile().unwrap();
    let out = f.call(&[array![0.0].into()]).unwrap();
    assert_eq!(out[0].as_array::<f64>().unwrap()[[0]], 20_000.0);
    // Dropping a deep graph must not overflow either.
    drop(f);
    drop(y);
}

#[test]
fn a_strict_jit_refuses_nodes_it_would_interpret() {
    let x = matrix("x", Float64);
    let y = x.softmax(0) + 1.0;
    // As built, a softmax along the first axis has no kernel (the rewrites move or write
    // it out along rows); the JIT names the node it runs in the interpreter.
    let loose = function(&[&x], &[&y])
        .mode(Mode::Jit.without_rewrites())
        .compile()
        .unwrap();
    assert_eq!(
        loose.interpreted_nodes().len(),
        1,
        "{:?}",
        loose.interpreted_nodes()
    );
    assert!(loose.interpreted_nodes()[0].contains("Softmax{axis=0}"));
    let err = function(&[&x], &[&y])
        .mode(Mode::Jit.without_rewrites().strict())
        .compile()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Softmax{axis=0}") && err.contains("jit"),
        "{err}"
    );
    // With the rewrites every node has a kernel or is a view.
    let whole = function(&[&x], &[&y])
        .mode(Mode::Jit.strict())
        .compile()
        .unwrap();
    assert!(
        whole.interpreted_nodes().is_empty(),
        "{:?}",
        whole.interpreted_nodes()
    );
    let reference = function(&[&x], &[&y])
        .mode(Mode::Reference.strict())
        .compile()
        .unwrap();
    assert!(reference.interpreted_nodes().is_empty());
}

#[test]
fn a_function_prints_its_plan() {
    let x = matrix("x", Float64);
    let y = x.t().exp() + 1.0;
    let z = y.sum([1]);
    let f = function(&[&x], &[&y, &z]).compile().unwrap();
    expect_test::expect![[r#"
        plan: 2 steps, 4 value slots
        calls recorded once per input layout, then replayed: kernels under 65536 elements as their recorded calls alone, views as offsets, other steps run
          0. Transpose{axes=[1, 0]}(x) -> Matrix(float64, shape=(?, ?))
             runs as view (stride arithmetic, no copy); last use of input 0
          1. Sum{axes=[1]} of Composite{add(exp(i0), 1.0)} keeping values(Transpose{axes=[1, 0]}) -> Vector(float64, shape=(?,)), Matrix(float64, shape=(?, ?))
             runs as kernel sum_reduce; last use of input 0
    "#]]
    .assert_eq(&f.plan());
}

#[test]
fn element_wise_plans_name_the_inputs_they_may_write_over() {
    let x = vector("x", Float64);
    let y = (x.exp() * 2.0).sin() + x.get(idx![..;-1]);
    let f = function(&[&x], &[&y]).compile().unwrap();
    expect_test::expect![[r#"
        plan: 2 steps, 3 value slots
        calls recorded once per input layout, then replayed: kernels under 65536 elements as their recorded calls alone, views as offsets, other steps run
          0. Subtensor{::step}(x, constant -1) -> Vector(float64, shape=(?,))
             runs as view (stride arithmetic, no copy)
          1. Composite{add(sin(mul(exp(i0), 2.0)), i1)}(x, Subtensor{::step}) -> Vector(float64, shape=(?,))
             runs as kernel elemwise; may write its output over input 0, input 1 (last use)
    "#]]
    .assert_eq(&f.plan());
    let strict = function(&[&x], &[&y])
        .mode(Mode::Jit.strict())
        .compile()
        .unwrap();
    assert_eq!(strict.plan(), f.plan());
}

#[test]
fn axes_keepdims_ranges_and_literal_indices_read_like_numpy() {
    let x = matrix("x", Float64);
    let data: TensorData = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into();
    // Every axis style names the same reduction; keepdims keeps size-1 axes.
    let outs = [
        x.sum(1),
        x.sum([1]),
        x.sum(-1),
        x.sum(Some(&[1isize][..])),
        x.sum_keepdims(1),
        x.mean(All),
        x.var(1),
        x.var_ddof(1, 1),
        x.std_keepdims(0, 0),
        x.max_keepdims(All),
        x.argmax(1).cast(Float64),
        x.cumsum(All),
        x.get(idx![[1, 0, -1], 0]),
        concatenate(&[&x, &x], 0).sum(All),
        stack(&[x.clone(), x.clone()], 0).sum(All),
        arange(3).cast(Float64),
    ];
    let refs: Vec<&Var> = outs.iter().collect();
    let f = function(&[&x], &refs).compile().unwrap();
    let got = f.call(&[data]).unwrap();
    let row_sums = vec![6.0, 15.0];
    for (k, sums) in got[..4].iter().enumerate() {
        assert_eq!(sums.to_f64_vec(), row_sums, "axis style {k}");
    }
    assert_eq!(got[4].shape(), &[2, 1]);
    assert_eq!(got[5].item_f64().unwrap(), 3.5);
    assert_eq!(got[6].to_f64_vec(), vec![2.0 / 3.0, 2.0 / 3.0]);
    assert_eq!(got[7].to_f64_vec(), vec![1.0, 1.0]);
    assert_eq!(
        (got[8].shape(), got[8].to_f64_vec()),
        (&[1usize, 3][..], vec![1.5; 3])
    );
    assert_eq!(
        (got[9].shape(), got[9].to_f64_vec()),
        (&[1usize, 1][..], vec![6.0])
    );
    assert_eq!(got[10].to_f64_vec(), vec![2.0, 2.0]);
    assert_eq!(got[11].to_f64_vec(), vec![1.0, 3.0, 6.0, 10.0, 15.0, 21.0]);
    assert_eq!(got[12].to_f64_vec(), vec![4.0, 1.0, 4.0]);
    assert_eq!(got[13].item_f64().unwrap(), 42.0);
    assert_eq!(got[14].item_f64().unwrap(), 42.0);
    assert_eq!(
        got[15].to_array::<i64>().into_raw_vec_and_offset().0,
        vec![0, 1, 2]
    );
    // arange infers NumPy's dtype and a static length from literal bounds.
    assert_eq!(
        arange((1, 10, 3)).ty().to_string(),
        "Vector(int64, shape=(3,))"
    );
    assert_eq!(
        arange((0, 1.0, 0.25)).ty().to_string(),
        "Vector(float64, shape=(4,))"
    );
    // Integer outputs read as f64 or any other element type.
    let i = vector("i", Int32);
    let g = function(&[&i], &[&(&i * 2)]).compile().unwrap();
    let out = g.call(&[array![1i32, -3].into()]).unwrap();
    assert_eq!(out[0].to_f64_vec(), vec![2.0, -6.0]);
    assert_eq!(
        out[0].to_array::<f32>().into_raw_vec_and_offset().0,
        vec![2.0f32, -6.0]
    );
}

#[test]
fn like_builders_take_the_shape_and_dtype_of_their_argument() {
    // zeros_like / ones_like / full_like of a value whose size is known only at run time,
    // in both backends: the values are closed-form.
    let x = tensor("x", Int32, [None, Some(2)]);
    let outs = [zeros_like(&x), ones_like(&x), full_like(&x, -3)];
    for mode in [Mode::Reference, Mode::Jit] {
        let refs: Vec<&Var> = outs.iter().collect();
        let f = function(&[&x], &refs).mode(mode.clone()).compile().unwrap();
        let r = f.call(&[array![[1i32, 2], [3, 4], [5, 6]].into()]).unwrap();
        for (out, want) in r.iter().zip([0.0, 1.0, -3.0]) {
            assert_eq!(out.shape(), &[3, 2], "{mode:?}");
            assert_eq!(out.dtype(), Int32, "{mode:?}");
            assert_eq!(out.to_f64_vec(), vec![want; 6], "{mode:?}");
        }
    }
    // A constant from a Rust number, and usize axes.
    let m = matrix("m", Float64);
    let axis: usize = 1;
    let y = m.sum(axis) + constant(0.5);
    let f = function(&[&m], &[&y]).compile().unwrap();
    let r = f.call(&[array![[1.0, 2.0], [3.0, 4.0]].into()]).unwrap();
    assert_eq!(r[0].to_f64_vec(), vec![3.5, 7.5]);
}

#[test]
fn linspace_and_norm_give_numpys_values() {
    let hi = scalar("hi", Float64);
    let outs = [
        linspace(0.0, 1.0, 5),
        linspace(-1, &hi, 4),
        linspace(3.0, 7.0, 1),
        linspace(0.0, 1.0, 0),
    ];
    let (v, m) = (vector("v", Int64), matrix("m", Float64));
    let norms = [
        tensorlift::linalg::norm(&v, All),
        tensorlift::linalg::norm(&m, All),
        tensorlift::linalg::norm(&m, 1),
    ];
    for mode in [Mode::Reference, Mode::Jit] {
        let refs: Vec<&Var> = outs.iter().chain(&norms).collect();
        let f = function(&[&hi, &v, &m], &refs)
            .mode(mode.clone())
            .compile()
            .unwrap();
        let r = f
            .call(&[
                2.0.into(),
                array![3i64, -4].into(),
                array![[1.0, 2.0], [2.0, -4.0]].into(),
            ])
            .unwrap();
        assert_eq!(
            r[0].to_f64_vec(),
            vec![0.0, 0.25, 0.5, 0.75, 1.0],
            "{mode:?}"
        );
        assert_eq!(r[1].to_f64_vec(), vec![-1.0, 0.0, 1.0, 2.0], "{mode:?}");
        assert_eq!(r[2].to_f64_vec(), vec![3.0], "{mode:?}");
        assert_eq!(r[3].shape(), &[0], "{mode:?}");
        assert_eq!(r[4].to_f64_vec(), vec![5.0], "{mode:?}");
        assert_eq!(r[5].to_f64_vec(), vec![5.0], "{mode:?}");
        let rows = r[6].to_f64_vec();
        assert!((rows[0] - 5f64.sqrt()).abs() < 1e-15 && (rows[1] - 20f64.sqrt()).abs() < 1e-15);
    }
}

#[test]
fn repeat_and_tile_follow_numpy() {
    // Expected values written from NumPy's definitions for x = [[1, 2, 3], [4, 5, 6]].
    let x = matrix("x", Int64);
    let outs = [
        x.repeat(2, 1),
        x.repeat(2, 0),
        x.repeat(2, All),
        tile(&x, &[2, 1]),
        tile(&x, &[2]),
        tile(&x, &[1, 2, 1]),
    ];
    let want: [(&[usize], Vec<f64>); 6] = [
        (
            &[2, 6],
            vec![1., 1., 2., 2., 3., 3., 4., 4., 5., 5., 6., 6.],
        ),
        (
            &[4, 3],
            vec![1., 2., 3., 1., 2., 3., 4., 5., 6., 4., 5., 6.],
        ),
        (&[12], vec![1., 1., 2., 2., 3., 3., 4., 4., 5., 5., 6., 6.]),
        (
            &[4, 3],
            vec![1., 2., 3., 4., 5., 6., 1., 2., 3., 4., 5., 6.],
        ),
        (
            &[2, 6],
            vec![1., 2., 3., 1., 2., 3., 4., 5., 6., 4., 5., 6.],
        ),
        (
            &[1, 4, 3],
            vec![1., 2., 3., 4., 5., 6., 1., 2., 3., 4., 5., 6.],
        ),
    ];
    for mode in [Mode::Reference, Mode::Jit] {
        let refs: Vec<&Var> = outs.iter().collect();
        let f = function(&[&x], &refs).mode(mode.clone()).compile().unwrap();
        let r = f.call(&[array![[1i64, 2, 3], [4, 5, 6]].into()]).unwrap();
        for (k, (got, (shape, values))) in r.iter().zip(&want).enumerate() {
            assert_eq!(got.shape(), *shape, "{mode:?} output {k}");
            assert_eq!(got.dtype(), Int64, "{mode:?} output {k}");
            assert_eq!(&got.to_f64_vec(), values, "{mode:?} output {k}");
        }
    }
}

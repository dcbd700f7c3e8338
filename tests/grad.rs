//! Gradients (DESIGN §7): `verify_grad` (finite differences along random directions) on
//! every differentiable op in both backends, in float64 and float32, with broadcasting;
//! composite models; PyTensor's conventions at kinks and ties (closed-form values); the
//! errors of undefined and disconnected gradients.

use ndarray::array;
use tensorlift::gradcheck::{verify_grad, VerifyGrad};
use tensorlift::prelude::*;
use tensorlift::testing::spread;
use tensorlift::{dprint, Disconnected, GradOptions};

fn f32_of(d: &TensorData) -> TensorData {
    d.to_array::<f32>().into()
}

/// verify_grad in the reference backend and the JIT.
fn check(f: impl Fn(&[Var]) -> Var + Copy, points: &[TensorData]) {
    for mode in [Mode::Reference, Mode::Jit] {
        let name = format!("{mode:?}");
        verify_grad(f, points, &VerifyGrad::in_mode(mode))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// `check` in float64 and again with every point in float32.
fn check_both_dtypes(f: impl Fn(&[Var]) -> Var + Copy, points: &[TensorData]) {
    check(f, points);
    let narrow: Vec<TensorData> = points.iter().map(f32_of).collect();
    check(f, &narrow);
}

#[test]
fn unary_ops_match_finite_differences() {
    type Unary = fn(&Var) -> Var;
    let cases: Vec<(&str, Unary, f64, f64)> = vec![
        ("neg", |x| -x, -2.0, 2.0),
        ("abs", |x| x.abs(), 0.2, 2.0),
        ("sqr", |x| x.sqr(), -2.0, 2.0),
        ("reciprocal", |x| x.reciprocal(), 0.5, 2.0),
        ("exp", |x| x.exp(), -2.0, 2.0),
        ("exp2", |x| x.exp2(), -2.0, 2.0),
        ("expm1", |x| x.expm1(), -2.0, 2.0),
        ("log", |x| x.log(), 0.5, 3.0),
        ("log2", |x| x.log2(), 0.5, 3.0),
        ("log1p", |x| x.log1p(), -0.5, 3.0),
        ("log1mexp", |x| x.log1mexp(), -3.0, -0.2),
        ("sqrt", |x| x.sqrt(), 0.5, 3.0),
        ("sin", |x| x.sin(), -3.0, 3.0),
        ("cos", |x| x.cos(), -3.0, 3.0),
        ("tan", |x| x.tan(), -1.2, 1.2),
        ("tanh", |x| x.tanh(), -3.0, 3.0),
        ("sigmoid", |x| x.sigmoid(), -5.0, 5.0),
        ("softplus", |x| x.softplus(), -5.0, 5.0),
        ("erf", |x| x.erf(), -2.0, 2.0),
        ("erfc", |x| x.erfc(), -2.0, 2.0),
        ("gammaln", |x| x.gammaln(), 0.3, 4.0),
        ("widening cast", |x| x.cast(Float64).sin(), -2.0, 2.0),
    ];
    for (name, f, lo, hi) in cases {
        let point = spread(&[2, 3], lo, hi);
        let run = |f32: bool| {
            let p = if f32 { f32_of(&point) } else { point.clone() };
            for mode in [Mode::Reference, Mode::Jit] {
                let label = format!("{name} ({}, {mode:?})", p.dtype());
                verify_grad(
                    |v| f(&v[0]),
                    std::slice::from_ref(&p),
                    &VerifyGrad::in_mode(mode),
                )
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            }
        };
        run(false);
        run(true);
    }
}

#[test]
fn binary_and_ternary_ops_match_finite_differences() {
    let (a, b) = (spread(&[3, 4], 0.5, 2.0), spread(&[3, 4], -1.5, 1.5));
    check_both_dtypes(|v| &v[0] + &v[1], &[a.clone(), b.clone()]);
    check_both_dtypes(|v| &v[0] - &v[1], &[a.clone(), b.clone()]);
    check_both_dtypes(|v| &v[0] * &v[1] * &v[0], &[a.clone(), b.clone()]);
    check_both_dtypes(|v| &v[1] / &v[0], &[a.clone(), b.clone()]);
    check_both_dtypes(|v| v[0].pow(&v[1]), &[a.clone(), b.clone()]);
    check_both_dtypes(|v| &v[1] % &v[0], &[a.clone(), b.clone()]);
    check_both_dtypes(|v| v[0].maximum(&v[1]), &[a.clone(), b.clone()]);
    check_both_dtypes(|v| v[0].minimum(&v[1]), &[a.clone(), b.clone()]);
    check_both_dtypes(
        |v| switch(v[1].gt(0.0), v[0].exp(), &v[1] * 3.0),
        &[a.clone(), b.clone()],
    );
    check_both_dtypes(|v| v[1].clip(-0.5, &v[0]), &[a.clone(), b.clone()]);
    // Literals on either side, and an integer operand that takes no gradient.
    check(
        |v| (2.0 - &v[0]) / 3.0 + v[0].pow(3.0),
        std::slice::from_ref(&a),
    );
    let n: TensorData = array![[1i64, 2, 3, 4]].into();
    check(|v| &v[0] * &v[1], &[a.clone(), n]);
}

#[test]
fn gradients_of_broadcast_operands_are_summed_back() {
    // b has static size 1 in dimension 0 (its point has one row), c is 0-d.
    let (a, b, c) = (
        spread(&[3, 4], -1.0, 1.0),
        spread(&[1, 4], -1.0, 1.0),
        TensorData::scalar(0.7),
    );
    check_both_dtypes(
        |v| (&v[0] * &v[1]).exp() + &v[2],
        &[a.clone(), b.clone(), c],
    );
    // A vector against a matrix: padded on the left.
    let row = spread(&[4], -1.0, 1.0);
    check(|v| (&v[0] * &v[1]).sin(), &[a, row]);
    // Closed form: d/db sum(a + b) = the number of rows.
    let (x, y) = (matrix("x", Float64), tensor("y", Float64, [Some(1), None]));
    let g = grad(&(&x + &y).sum(All), &[&y]).unwrap();
    assert_eq!(g[0].ty(), y.ty());
    let f = function(&[&x, &y], &[&g[0]]).compile().unwrap();
    let out = f
        .call(&[spread(&[5, 2], 0.0, 1.0), spread(&[1, 2], 0.0, 1.0)])
        .unwrap();
    assert_eq!(out[0].to_f64_vec(), vec![5.0, 5.0]);
}

#[test]
fn reductions_match_finite_differences() {
    let x = spread(&[3, 4], 0.3, 2.0);
    check_both_dtypes(|v| v[0].sum(1), std::slice::from_ref(&x));
    check_both_dtypes(|v| v[0].sum(All), std::slice::from_ref(&x));
    check_both_dtypes(|v| v[0].prod(0), std::slice::from_ref(&x));
    check_both_dtypes(|v| v[0].max(1), std::slice::from_ref(&x));
    check_both_dtypes(|v| v[0].min(All), std::slice::from_ref(&x));
    check_both_dtypes(|v| v[0].logsumexp(1), std::slice::from_ref(&x));
    check_both_dtypes(|v| v[0].mean(0), std::slice::from_ref(&x));
    check_both_dtypes(|v| v[0].var(1), std::slice::from_ref(&x));
    check_both_dtypes(|v| v[0].std(All), std::slice::from_ref(&x));
    check_both_dtypes(|v| v[0].softmax(1), std::slice::from_ref(&x));
    check_both_dtypes(|v| v[0].log_softmax(0), std::slice::from_ref(&x));
    check_both_dtypes(|v| v[0].cumsum(1), std::slice::from_ref(&x));
    check_both_dtypes(|v| v[0].cumsum(None), std::slice::from_ref(&x));
    check_both_dtypes(|v| v[0].cumprod(0), std::slice::from_ref(&x));
    check_both_dtypes(|v| v[0].cumprod(None), std::slice::from_ref(&x));
    check_both_dtypes(|v| v[0].sum_keepdims(0) * &v[0], std::slice::from_ref(&x));
}

#[test]
fn products_with_zero_factors_have_exact_gradients() {
    // d/dx_i prod(x) = product of the others, also where x has one or two zeros.
    let x = vector("x", Float64);
    let g = grad(&x.prod(All), &[&x]).unwrap();
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&[&x], &[&g[0]]).mode(mode).compile().unwrap();
        let one_zero = f.call(&[array![2.0, 0.0, 3.0].into()]).unwrap();
        assert_eq!(one_zero[0].to_f64_vec(), vec![0.0, 6.0, 0.0]);
        let two_zeros = f.call(&[array![0.0, 0.0, 3.0].into()]).unwrap();
        assert_eq!(two_zeros[0].to_f64_vec(), vec![0.0, 0.0, 0.0]);
        let none = f.call(&[array![2.0, 5.0, 3.0].into()]).unwrap();
        assert_eq!(none[0].to_f64_vec(), vec![15.0, 6.0, 10.0]);
    }
}

#[test]
fn shape_ops_match_finite_differences() {
    let x = spread(&[2, 3], -1.0, 1.0);
    check_both_dtypes(|v| v[0].t().exp(), std::slice::from_ref(&x));
    check(|v| v[0].expand_dims(1).sin(), std::slice::from_ref(&x));
    check(
        |v| v[0].reshape(&[3, 2]).sin() * 2.0,
        std::slice::from_ref(&x),
    );
    check(|v| v[0].flatten().cumsum(0), std::slice::from_ref(&x));
    check(
        |v| v[0].specify_shape(&[Some(2), Some(3)]).exp(),
        std::slice::from_ref(&x),
    );
    let row = spread(&[1, 3], -1.0, 1.0);
    check(|v| v[0].squeeze(None).sin(), std::slice::from_ref(&row));
    check(
        |v| v[0].broadcast_to(&[4.into(), 3.into()]).sin(),
        std::slice::from_ref(&row),
    );
    let y = spread(&[4, 3], -1.0, 1.0);
    check(
        |v| concatenate(&[v[0].sin(), v[1].clone()], 0),
        &[x.clone(), y.clone()],
    );
    check(
        |v| stack(&[&v[0], &v[0].exp()], 1),
        std::slice::from_ref(&x),
    );
    check(
        |v| {
            let parts = split(&v[0], &[1, 3], 0).unwrap();
            &parts[0] * 2.0 + parts[1].sum_keepdims(0)
        },
        std::slice::from_ref(&y),
    );
    // Only one part of a split used: the other gets zeros.
    check(
        |v| split(&v[0], &[2, 2], 0).unwrap()[1].exp(),
        std::slice::from_ref(&y),
    );
    let s = spread(&[3], -1.0, 1.0);
    check(
        |v| make_vector(&[v[0].sum(All).into(), v[0].max(All).into()]),
        std::slice::from_ref(&s),
    );
}

#[test]
fn indexing_matches_finite_differences() {
    let x = spread(&[4, 3], -1.0, 1.0);
    check(
        |v| v[0].get(idx![1..3, ..;-1]).exp(),
        std::slice::from_ref(&x),
    );
    check(|v| v[0].get(idx![2]).sin(), std::slice::from_ref(&x));
    let y = spread(&[2, 3], -1.0, 1.0);
    check(
        |v| v[0].set(idx![1..3], v[1].exp()),
        &[x.clone(), y.clone()],
    );
    check(
        |v| v[0].inc(idx![..2], &v[1] * &v[1]),
        &[x.clone(), y.clone()],
    );
    // A row broadcast into the region: its gradient is summed over the region's rows.
    let r = spread(&[1, 3], -1.0, 1.0);
    check(|v| v[0].inc(idx![1..3], &v[1]).sin(), &[x.clone(), r]);
    let index = constant(TensorData::from(array![0i64, 2, 2, 3]));
    check(
        |v| v[0].get(vec![Idx::Array(index.clone())]).sin(),
        std::slice::from_ref(&x),
    );
    let z = spread(&[4, 3], -1.0, 1.0);
    check(
        |v| v[0].inc(vec![Idx::Array(index.clone())], v[1].exp()),
        &[x.clone(), z],
    );
    // With repeated indices a set keeps the last write, and (as in PyTensor) every
    // written value still gets its position's gradient: checked with distinct indices.
    let distinct = constant(TensorData::from(array![3i64, 0, 2]));
    check(
        |v| v[0].set(vec![Idx::Array(distinct.clone())], v[1].exp()),
        &[x.clone(), spread(&[3, 3], -1.0, 1.0)],
    );
}

#[test]
fn increments_at_repeated_indices_pass_each_value_its_gradient() {
    // x[[0, 2, 2]] += y: every y element reaches the output, each gets g at its position.
    let (x, y) = (vector("x", Float64), vector("y", Float64));
    let index = constant(TensorData::from(array![0i64, 2, 2]));
    let out = x.inc(vec![Idx::Array(index)], &y);
    let weights = constant(TensorData::from(array![1.0, 10.0, 100.0, 1000.0]));
    let g = grad(&(out * weights).sum(All), &[&x, &y]).unwrap();
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&[&x, &y], &[&g[0], &g[1]])
            .mode(mode)
            .compile()
            .unwrap();
        let out = f
            .call(&[
                array![0.0, 0.0, 0.0, 0.0].into(),
                array![1.0, 2.0, 3.0].into(),
            ])
            .unwrap();
        assert_eq!(out[0].to_f64_vec(), vec![1.0, 10.0, 100.0, 1000.0]);
        assert_eq!(out[1].to_f64_vec(), vec![1.0, 100.0, 100.0]);
    }
}

#[test]
fn checks_pass_the_gradient_through() {
    let x = spread(&[4], 0.5, 2.0);
    check(
        |v| {
            v[0].check_that(&[v[0].gt(0.0).all(All)], "x must be positive")
                .log()
        },
        std::slice::from_ref(&x),
    );
}

#[test]
fn repeated_advanced_indices_accumulate_their_gradients() {
    // PyTensor: the gradient of x[[0, 2, 2]] adds up at 2.
    let x = vector("x", Float64);
    let index = constant(TensorData::from(array![0i64, 2, 2]));
    let y = x.get(vec![Idx::Array(index)]).sum(All);
    let g = grad(&y, &[&x]).unwrap();
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&[&x], &[&g[0]]).mode(mode).compile().unwrap();
        let out = f.call(&[array![1.0, 1.0, 1.0, 1.0].into()]).unwrap();
        assert_eq!(out[0].to_f64_vec(), vec![1.0, 0.0, 2.0, 0.0]);
    }
}

#[test]
fn dot_of_every_rank_pair_matches_finite_differences() {
    let (m, v3, n) = (
        spread(&[2, 3], -1.0, 1.0),
        spread(&[3], -1.0, 1.0),
        spread(&[3, 4], -1.0, 1.0),
    );
    check_both_dtypes(|v| v[0].dot(&v[1]), &[m.clone(), n.clone()]);
    check_both_dtypes(|v| v[0].dot(&v[1]), &[m.clone(), v3.clone()]);
    check_both_dtypes(|v| v[0].dot(&v[1]), &[v3.clone(), n.clone()]);
    check_both_dtypes(|v| v[0].dot(&v[1]), &[v3.clone(), v3.clone()]);
    check(|v| v[0].matmul(&v[1]).tanh(), &[m, n]);
}

#[test]
fn composite_models_match_finite_differences() {
    // Logistic regression: mean binary cross-entropy of sigmoid(X w + b).
    let (xs, w, b) = (
        spread(&[6, 3], -1.0, 1.0),
        spread(&[3], -0.5, 0.5),
        TensorData::scalar(0.1),
    );
    let labels = constant(TensorData::from(array![1.0, 0.0, 1.0, 1.0, 0.0, 0.0]));
    check(
        |v| {
            let p = (v[0].dot(&v[1]) + &v[2]).sigmoid();
            -(&labels * p.log() + (1.0 - &labels) * (1.0 - &p).log()).mean(All)
        },
        &[xs.clone(), w, b],
    );
    // Softmax cross-entropy with one-hot targets.
    let onehot = constant(TensorData::from(array![
        [1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.0, 1.0, 0.0],
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0]
    ]));
    let w2 = spread(&[3, 3], -0.5, 0.5);
    check(
        |v| -(&onehot * v[0].dot(&v[1]).log_softmax(1)).sum(1).mean(All),
        &[xs.clone(), w2],
    );
    // A two-layer perceptron with tanh, squared error.
    let (w1, b1, w3) = (
        spread(&[3, 5], -0.5, 0.5),
        spread(&[5], -0.1, 0.1),
        spread(&[5], -0.5, 0.5),
    );
    let target = constant(spread(&[6], -1.0, 1.0));
    check(
        |v| {
            let hidden = (v[0].dot(&v[1]) + &v[2]).tanh();
            (hidden.dot(&v[3]) - &target).sqr().mean(All)
        },
        &[xs, w1, b1, w3],
    );
}

#[test]
fn ifelse_and_op_from_graph_differentiate_through_their_inner_graphs() {
    let (x, y) = (spread(&[3], 0.5, 2.0), spread(&[3], -1.0, 1.0));
    for cond in [true, false] {
        check(
            |v| {
                let c = constant(TensorData::scalar(cond));
                let out = ifelse(&c, &[&(v[0].exp() * &v[1])], &[&v[1].sin()]);
                out[0].clone()
            },
            &[x.clone(), y.clone()],
        );
    }
    let (a, b) = (vector("a", Float64), vector("b", Float64));
    let inner = tensorlift::ir::op_from_graph(&[&a, &b], &[&(a.exp() * &b)]).unwrap();
    // A kept op's gradient is a kept op of its own, compiled as its own function.
    let kept = inner.named("axpy").inline(false);
    let (x1, y1) = (vector("x", Float64), vector("y", Float64));
    let cost = kept.apply(&[&x1, &y1]).unwrap()[0].sum(All);
    let g = grad_with(Some(&cost), &[&x1, &y1], &GradOptions::default()).unwrap();
    let gx = g[0].as_ref().unwrap();
    let text = dprint(&[gx]).unwrap();
    assert!(text.contains("OpFromGraph{grad of axpy, kept}"), "{text}");
    let f = function(&[&x1, &y1], &[gx]).compile().unwrap();
    assert!(
        f.plan().contains("its own compiled function"),
        "{}",
        f.plan()
    );
    for keep in [true, false] {
        let op = inner.inline(!keep);
        check(
            |v| op.apply(&[&v[0], &v[1]]).unwrap()[0].sin(),
            &[x.clone(), y.clone()],
        );
    }
}

#[test]
fn kinks_and_ties_follow_pytensor() {
    let x = vector("x", Float64);
    let cases: Vec<(Var, Vec<f64>, Vec<f64>)> = vec![
        // |x|' at 0 is 0.
        (x.abs().sum(All), vec![0.0, -2.0, 3.0], vec![0.0, -1.0, 1.0]),
        // sqrt'(0) is inf.
        (x.sqrt().sum(All), vec![0.0, 4.0], vec![f64::INFINITY, 0.25]),
        // Every tied maximum gets the whole gradient.
        (x.max(All), vec![1.0, 3.0, 3.0], vec![0.0, 1.0, 1.0]),
        // maximum(x, 1): a tie gives both sides the gradient.
        (
            x.maximum(1.0).sum(All),
            vec![1.0, 2.0, 0.0],
            vec![1.0, 1.0, 0.0],
        ),
        // Rounding is flat.
        (x.round().sum(All), vec![0.4, 1.6], vec![0.0, 0.0]),
    ];
    for (cost, at, expected) in cases {
        let g = grad(&cost, &[&x]).unwrap();
        for mode in [Mode::Reference, Mode::Jit] {
            let f = function(&[&x], &[&g[0]]).mode(mode).compile().unwrap();
            let point: TensorData = ndarray::Array1::from(at.clone()).into();
            let out = f.call(&[point]).unwrap();
            assert_eq!(out[0].to_f64_vec(), expected, "{}", cost.label());
        }
    }
}

#[test]
fn gradient_types_follow_the_variables() {
    let x = tensor("x", Float32, [Some(3), None]);
    let w = vector("w", Float64);
    let cost = (x.cast(Float64).sum(0) * &w).sum(All);
    let g = grad(&cost, &[&x, &w]).unwrap();
    assert_eq!(g[0].ty(), x.ty());
    assert_eq!(g[1].ty(), w.ty());
    // A reshape loses static sizes; the gradient has them back.
    let y = tensor("y", Float64, [Some(2), Some(3)]);
    let g = grad(&y.reshape(&[-1]).sin().sum(All), &[&y]).unwrap();
    assert_eq!(g[0].ty(), y.ty());
}

#[test]
fn undefined_and_disconnected_gradients_are_errors_or_asked_for() {
    let (x, n) = (vector("x", Float64), vector("n", Int64));
    let e = grad(&(&x * &n).sum(All), &[&n]).unwrap_err();
    assert!(e.to_string().contains("only float variables"), "{e}");
    let e = grad(&x.exp(), &[&x]).unwrap_err();
    assert!(e.to_string().contains("must be a scalar"), "{e}");
    let e = grad(&x.digamma().sum(All), &[&x]).unwrap_err();
    assert!(
        e.to_string().contains("Digamma") || e.to_string().contains("trigamma"),
        "{e}"
    );
    assert!(e.to_string().contains("input 0"), "{e}");
    // The cost does not depend on y.
    let y = vector("y", Float64);
    let cost = x.sum(All);
    let e = grad(&cost, &[&x, &y]).unwrap_err();
    assert!(e.to_string().contains("does not depend on y"), "{e}");
    let zero = GradOptions {
        disconnected: Disconnected::Zero,
        ..GradOptions::default()
    };
    let g = tensorlift::grad_with(Some(&cost), &[&y], &zero).unwrap();
    let f = function(&[&y], &[g[0].as_ref().unwrap()])
        .compile()
        .unwrap();
    assert_eq!(
        f.call(&[array![1.0, 2.0].into()]).unwrap()[0].to_f64_vec(),
        vec![0.0, 0.0]
    );
    let none = GradOptions {
        disconnected: Disconnected::Disconnected,
        ..GradOptions::default()
    };
    assert!(tensorlift::grad_with(Some(&cost), &[&y], &none).unwrap()[0].is_none());
    // Through an integer-valued path (argmax) nothing flows: disconnected.
    let e = grad(&x.argmax(None).cast(Float64), &[&x]).unwrap_err();
    assert!(e.to_string().contains("does not depend on x"), "{e}");
}

#[test]
fn known_grads_replace_the_cost() {
    // Given d cost / d y = [1, 2] for y = exp(x), d cost / dx = [1, 2] * exp(x).
    let x = vector("x", Float64);
    let y = x.exp();
    let gy = constant(TensorData::from(array![1.0, 2.0]));
    let options = GradOptions {
        known_grads: vec![(y.clone(), gy)],
        ..GradOptions::default()
    };
    let g = tensorlift::grad_with(None, &[&x], &options).unwrap();
    let f = function(&[&x], &[g[0].as_ref().unwrap()])
        .compile()
        .unwrap();
    let out = f.call(&[array![0.0, 1.0].into()]).unwrap()[0].to_f64_vec();
    assert_eq!(out[0], 1.0);
    assert!((out[1] - 2.0 * 1.0f64.exp()).abs() < 1e-15, "{out:?}");
}

#[test]
fn pushforward_matches_finite_differences() {
    // J v of y = (sin(x) * w, sum(x * w)) along (vx, vw), against central differences.
    let (x, w) = (vector("x", Float64), vector("w", Float64));
    let (vx, vw) = (vector("vx", Float64), vector("vw", Float64));
    let y1 = x.sin() * &w;
    let y2 = (&x * &w).sum(All).exp();
    let jv = pushforward(&[&y1, &y2], &[&x, &w], &[&vx, &vw]).unwrap();
    assert_eq!(jv[0].ty(), y1.ty());
    assert_eq!(jv[1].ty(), y2.ty());
    let point = [
        array![0.3, -0.7, 1.1],
        array![0.5, 0.2, -0.4],
        array![1.0, -0.5, 0.25],
        array![-0.3, 0.8, 0.6],
    ];
    let args: Vec<TensorData> = point.iter().map(|a| a.clone().into()).collect();
    let eps = 1e-6;
    let at = |s: f64| -> Vec<f64> {
        let xs = &point[0] + &(&point[2] * s);
        let ws = &point[1] + &(&point[3] * s);
        let mut v: Vec<f64> = (xs.mapv(f64::sin) * &ws).to_vec();
        v.push((&xs * &ws).sum().exp());
        v
    };
    let (plus, minus) = (at(eps), at(-eps));
    let numeric: Vec<f64> = plus
        .iter()
        .zip(&minus)
        .map(|(p, m)| (p - m) / (2.0 * eps))
        .collect();
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&[&x, &w, &vx, &vw], &[&jv[0], &jv[1]])
            .mode(mode)
            .compile()
            .unwrap();
        let out = f.call(&args).unwrap();
        let mut got = out[0].to_f64_vec();
        got.extend(out[1].to_f64_vec());
        for (g, n) in got.iter().zip(&numeric) {
            assert!(
                (g - n).abs() < 1e-7 * n.abs().max(1.0),
                "{got:?} vs {numeric:?}"
            );
        }
    }
}

#[test]
fn hessian_vector_products_have_the_closed_form() {
    // cost = sum(x^3) + sum(x) * sum(x): H = diag(6x) + all-twos, H v = 6 x v + 2 sum(v).
    let (x, v) = (vector("x", Float64), vector("v", Float64));
    let cost = x.pow(3.0).sum(All) + x.sum(All) * x.sum(All);
    let hv = hessian_vector_product(&cost, &[&x], &[&v]).unwrap();
    let f = function(&[&x, &v], &[&hv[0]]).compile().unwrap();
    let (xs, vs) = (array![1.0, -2.0, 0.5], array![0.5, 1.0, -1.0]);
    let out = f.call(&[xs.clone().into(), vs.clone().into()]).unwrap();
    let expected: Vec<f64> = (0..3)
        .map(|i| 6.0 * xs[i] * vs[i] + 2.0 * vs.sum())
        .collect();
    let got = out[0].to_f64_vec();
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() < 1e-12, "{got:?} vs {expected:?}");
    }
}

#[test]
fn value_and_grad_runs_the_forward_computation_once() {
    let (a, w) = (matrix("a", Float64), vector("w", Float64));
    let cost = a.dot(&w).exp().log1p().sum(All);
    let outputs = value_and_grad(&cost, &[&w]).unwrap();
    let refs: Vec<&Var> = outputs.iter().collect();
    let f = function(&[&a, &w], &refs)
        .mode(Mode::Jit.excluding("fusion"))
        .compile()
        .unwrap();
    let fg = f.fgraph();
    let count = |wanted: &dyn Fn(&tensorlift::ir::Op) -> bool| {
        fg.toposort()
            .into_iter()
            .filter(|n| fg.node(*n).is_some_and(|e| wanted(&e.op)))
            .count()
    };
    use tensorlift::ir::{Op, ScalarOp};
    // The JIT runs it all in compiled code (a strict JIT refuses interpreter steps).
    function(&[&a, &w], &refs)
        .mode(Mode::Jit.strict())
        .compile()
        .unwrap();
    // a·w once for both outputs, and the gradient's own aᵀ·g.
    assert_eq!(count(&|op| matches!(op, Op::Dot)), 2, "{}", f.dprint());
    // log1p(exp(r)) is stabilized to softplus(r), computed once; its gradient is sigmoid.
    assert_eq!(
        count(&|op| matches!(op, Op::Elemwise(ScalarOp::Softplus))),
        1,
        "{}",
        f.dprint()
    );
    assert_eq!(
        count(&|op| matches!(op, Op::Elemwise(ScalarOp::Sigmoid))),
        1,
        "{}",
        f.dprint()
    );
    // And the values: cost and gradient against the separately compiled gradient.
    let g_only = grad(&cost, &[&w]).unwrap();
    let h = function(&[&a, &w], &[&g_only[0]]).compile().unwrap();
    let args: Vec<TensorData> = vec![
        array![[0.1, 0.2], [0.3, -0.4], [0.5, 0.6]].into(),
        array![0.7, -0.8].into(),
    ];
    let both = f.call(&args).unwrap();
    assert_eq!(both[1].to_f64_vec(), h.call(&args).unwrap()[0].to_f64_vec());
}

#[test]
fn lazy_gradients_are_taken_of_the_stabilized_cost() {
    // log(sigmoid(x)) is stabilized to -softplus(-x) before it is differentiated: the
    // gradient at -800 is sigmoid(800) = 1 exactly. Eagerly, the naive graph's gradient
    // sigmoid(x) sigmoid(-x) / sigmoid(x) is 0/0 there.
    let x = scalar("x", Float64);
    let cost = x.sigmoid().log();
    let lazy = grad(&cost, &[&x]).unwrap();
    assert!(
        lazy[0].label().contains("Grad"),
        "grad gives a lazy Grad node: {}",
        lazy[0].label()
    );
    let eager = tensorlift::grad_with(Some(&cost), &[&x], &GradOptions::default()).unwrap();
    let at = [TensorData::scalar(-800.0)];
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&[&x], &[&lazy[0]])
            .mode(mode.clone())
            .compile()
            .unwrap();
        assert_eq!(f.call(&at).unwrap()[0].item_f64().unwrap(), 1.0, "{mode:?}");
        let e = function(&[&x], &[eager[0].as_ref().unwrap()])
            .mode(mode.clone())
            .compile()
            .unwrap();
        assert!(
            e.call(&at).unwrap()[0].item_f64().unwrap().is_nan(),
            "{mode:?}"
        );
        // Without rewrites the lazy gradient is still built (of the naive graph).
        let plain = function(&[&x], &[&lazy[0]])
            .mode(mode.without_rewrites())
            .compile()
            .unwrap();
        let value = plain.call(&[TensorData::scalar(0.5)]).unwrap()[0]
            .item_f64()
            .unwrap();
        let expected = 1.0 - 1.0 / (1.0 + (-0.5f64).exp());
        assert!((value - expected).abs() < 1e-15, "{value} vs {expected}");
    }
    // Second derivatives through a lazy gradient: d²/dx² of x⁴ at 2 is 48.
    let g = grad(&x.pow(4.0), &[&x]).unwrap();
    let h = grad(&g[0], &[&x]).unwrap();
    let f = function(&[&x], &[&h[0]]).compile().unwrap();
    let value = f.call(&[TensorData::scalar(2.0)]).unwrap()[0]
        .item_f64()
        .unwrap();
    assert!((value - 48.0).abs() < 1e-12, "{value}");
}

#[test]
fn the_w9_gradient_is_stable_where_exp_overflows() {
    // d/dw sum(log1p(exp(A w))) = Aᵀ sigmoid(A w): with A w = ±800 the stabilized cost
    // (softplus) differentiates to sigmoid, exactly 1 and 0, where exp overflows.
    let (a, w) = (matrix("a", Float64), vector("w", Float64));
    let cost = a.dot(&w).exp().log1p().sum(All);
    let outputs = value_and_grad(&cost, &[&w]).unwrap();
    let args: Vec<TensorData> = vec![
        array![[800.0, 0.0], [-800.0, 1.0]].into(),
        array![1.0, 0.0].into(),
    ];
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&[&a, &w], &[&outputs[0], &outputs[1]])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let out = f.call(&args).unwrap();
        assert_eq!(out[0].item_f64().unwrap(), 800.0, "{mode:?}");
        // Aᵀ [1, 0] = the first row of A.
        assert_eq!(out[1].to_f64_vec(), vec![800.0, 0.0], "{mode:?}");
    }
}

#[test]
fn scan_recurrences_backpropagate_through_time() {
    // x_t = 0.9 x_{t-1} + sin(u_t) w: the last state and the whole trace, with respect to
    // the initial state, the sequence and the non-sequence.
    let (x0, u, w) = (
        TensorData::scalar(0.3),
        spread(&[6], -1.0, 1.0),
        TensorData::scalar(0.7),
    );
    let recurrence = |v: &[Var], take_trace: bool| {
        let out = scan(|s| vec![s.state(0) * 0.9 + s.sequence(0).sin() * &v[2]])
            .sequences(&[&v[1]])
            .states(&[&v[0]])
            .build();
        if take_trace {
            out.trace(0).sqr()
        } else {
            out.last(0)
        }
    };
    check(
        |v| recurrence(v, false),
        &[x0.clone(), u.clone(), w.clone()],
    );
    check(|v| recurrence(v, true), &[x0, u, w]);
    // A vector state through a matrix (an RNN): h_t = tanh(W h_{t-1} + x_t).
    let (h0, xs, wm) = (
        spread(&[3], -0.5, 0.5),
        spread(&[5, 3], -1.0, 1.0),
        spread(&[3, 3], -0.6, 0.6),
    );
    check(
        |v| {
            let out = scan(|s| vec![(v[2].dot(&s.state(0)) + s.sequence(0)).tanh()])
                .sequences(&[&v[1]])
                .states(&[&v[0]])
                .build();
            out.trace(0).sum(1) + out.last(0).sum(All)
        },
        &[h0, xs, wm],
    );
    // Two states, one of them a float counter, a step count and no sequence (W5c).
    check(
        |v| {
            let out = scan(|s| {
                vec![
                    s.state(0) * 0.99 + s.state(1).sin() * &v[1],
                    s.state(1) + 1.0,
                ]
            })
            .states(&[&v[0], &v[2]])
            .n_steps(7)
            .build();
            out.last(0) * out.last(1)
        },
        &[
            TensorData::scalar(0.1),
            TensorData::scalar(1.3),
            TensorData::scalar(0.2),
        ],
    );
}

#[test]
fn scan_gradients_of_edge_cases() {
    // No step: the last state is the initial one, whose gradient is the output's.
    let x0 = scalar("x0", Float64);
    let out = scan(|s| vec![s.state(0).sin()])
        .states(&[&x0])
        .n_steps(0)
        .build();
    let g = grad(&(out.last(0) * 3.0), &[&x0]).unwrap();
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&[&x0], &[&g[0]]).mode(mode).compile().unwrap();
        assert_eq!(
            f.call(&[TensorData::scalar(0.5)]).unwrap()[0]
                .item_f64()
                .unwrap(),
            3.0
        );
    }
    // An integer state carries no gradient but drives the float one: sin(t) x.
    let (y0, t0) = (scalar("y0", Float64), scalar("t0", Int64));
    let out = scan(|s| {
        vec![
            s.state(0) * s.state(1).cast(Float64).sin(),
            s.state(1) + 1i64,
        ]
    })
    .states(&[&y0, &t0])
    .n_steps(3)
    .build();
    let g = grad(&out.last(0), &[&y0]).unwrap();
    let f = function(&[&y0, &t0], &[&g[0]]).compile().unwrap();
    let got = f
        .call(&[TensorData::scalar(2.0), TensorData::scalar(1i64)])
        .unwrap()[0]
        .item_f64()
        .unwrap();
    let expected = 1f64.sin() * 2f64.sin() * 3f64.sin();
    assert!((got - expected).abs() < 1e-15, "{got} vs {expected}");
    // A while-scan's gradient is undefined: its step count is known only at run time.
    let z0 = scalar("z0", Float64);
    let w = scan(|s| {
        let next = s.state(0) * 0.5;
        s.until(&next.lt(1e-3));
        vec![next]
    })
    .states(&[&z0])
    .build();
    let e = grad(&w.last(0), &[&z0]).unwrap_err();
    assert!(e.to_string().contains("fixed step count"), "{e}");
}

#[test]
fn jacobians_have_the_closed_form() {
    // y = sin(x) * sum(x): J[i][j] = cos(x_i) sum(x) [i == j] + sin(x_i).
    let x = vector("x", Float64);
    let y = x.sin() * x.sum(All);
    let j = jacobian(&y, &[&x]).unwrap();
    assert_eq!(j[0].ndim(), 2);
    let xs = [0.3, -1.1, 2.0];
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&[&x], &[&j[0]])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let out = f
            .call(&[ndarray::Array1::from(xs.to_vec()).into()])
            .unwrap();
        assert_eq!(out[0].shape(), &[3, 3]);
        let got = out[0].to_f64_vec();
        let total: f64 = xs.iter().sum();
        for i in 0..3 {
            for k in 0..3 {
                let diagonal = if i == k { xs[i].cos() * total } else { 0.0 };
                let want = diagonal + xs[i].sin();
                assert!(
                    (got[i * 3 + k] - want).abs() < 1e-12,
                    "{mode:?} J[{i}][{k}]"
                );
            }
        }
    }
    // A matrix variable gives rows of its shape; a scalar y is its gradient.
    let m = matrix("m", Float64);
    let rows = jacobian(&m.sum(1), &[&m]).unwrap();
    let f = function(&[&m], &[&rows[0]]).compile().unwrap();
    let out = f.call(&[spread(&[2, 3], -1.0, 1.0)]).unwrap();
    assert_eq!(out[0].shape(), &[2, 2, 3]);
    assert_eq!(
        out[0].to_f64_vec(),
        vec![1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    );
    let scalar_j = jacobian(&m.sqr().sum(All), &[&m]).unwrap();
    assert_eq!(scalar_j[0].ty(), m.ty());
}

#[test]
fn pushforward_rules_agree_with_the_double_pullback() {
    // Element-wise ops with broadcasting, a transpose, a slice, a sum, a running sum, a
    // join, a dot (rules of their own) and softmax (the double pullback on its node).
    let (x, b, w) = (
        matrix("x", Float64),
        tensor("b", Float64, [Some(1), None]),
        matrix("w", Float64),
    );
    let (vx, vb, vw) = (
        matrix("vx", Float64),
        tensor("vb", Float64, [Some(1), None]),
        matrix("vw", Float64),
    );
    let h = (&x * &b).exp() + &b;
    let y1 = h.t().dot(&w).get(idx![1.., ..]).cumsum(0);
    let y2 = concatenate(&[h.sum(0), b.sum(0)], 0).softmax(0);
    let outs = [&y1, &y2];
    let direct = pushforward(&outs, &[&x, &b, &w], &[&vx, &vb, &vw]).unwrap();
    let generic =
        tensorlift::ir::pushforward_by_pullback(&outs, &[&x, &b, &w], &[&vx, &vb, &vw]).unwrap();
    for (d, g) in direct.iter().zip(&generic) {
        assert_eq!(d.ty(), g.ty());
    }
    // Only b moves: its tangent broadcasts over x's rows.
    let only_b = pushforward(&[&h], &[&b], &[&vb]).unwrap();
    let values = [
        spread(&[3, 4], -1.0, 1.0),
        spread(&[1, 4], -1.0, 1.0),
        spread(&[3, 2], -1.0, 1.0),
        spread(&[3, 4], -0.5, 0.5),
        spread(&[1, 4], -0.5, 0.5),
        spread(&[3, 2], -0.5, 0.5),
    ];
    let inputs = [&x, &b, &w, &vx, &vb, &vw];
    for mode in [Mode::Reference, Mode::Jit] {
        let all: Vec<&Var> = direct.iter().chain(&generic).chain(&only_b).collect();
        let f = function(&inputs, &all)
            .mode(mode.clone())
            .compile()
            .unwrap();
        let out = f.call(&values).unwrap();
        for k in 0..2 {
            let (d, g) = (out[k].to_f64_vec(), out[k + 2].to_f64_vec());
            assert_eq!(out[k].shape(), out[k + 2].shape());
            for (a, c) in d.iter().zip(&g) {
                assert!(
                    (a - c).abs() < 1e-12 * (1.0 + c.abs()),
                    "{mode:?} output {k}: {d:?} vs {g:?}"
                );
            }
        }
        assert_eq!(out[4].shape(), &[3, 4], "{mode:?}");
    }
}

#[test]
fn verify_grad_reports_a_gradient_that_disagrees() {
    // floor is flat except at integers, where its finite difference is a jump: at 1 and 2
    // the zero gradient disagrees with the differences, and verify_grad says so.
    let at: TensorData = array![1.0, 2.0].into();
    let e = verify_grad(|v| v[0].floor(), &[at], &VerifyGrad::default()).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("verify_grad") && text.contains("finite differences"),
        "{text}"
    );
    // Between the integers it agrees.
    let between: TensorData = array![1.5, 2.5].into();
    verify_grad(|v| v[0].floor(), &[between], &VerifyGrad::default()).unwrap();
}

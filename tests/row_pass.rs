//! The JIT's fused row pass (`A·w`, an element-wise map of it, `Aᵀ·` the map, in one pass
//! over A): the same values as the reference for every form it takes (transposed product
//! or vector first, intermediates used elsewhere, small and parallel sizes), the unfused
//! fallback for layouts it does not take, and errors naming the failing node.

use ndarray::{Array1, Array2, ShapeBuilder};
use tensorlift::prelude::*;
use tensorlift::testing::{compare_backends, TestRng};

fn data(rows: usize, cols: usize, seed: u64) -> (TensorData, TensorData) {
    let mut rng = TestRng::new(seed);
    let a = Array2::from_shape_fn((rows, cols), |_| rng.next_f64() * 2.0 - 1.0);
    let w = Array1::from_shape_fn(cols, |_| rng.next_f64() * 0.2 - 0.1);
    (a.into(), w.into())
}

fn fused(f: &Function) -> bool {
    f.plan().contains("fused row pass")
}

#[test]
fn value_and_gradient_of_a_glm_match_the_reference() {
    for (rows, cols) in [(1, 1), (7, 3), (300, 40), (2000, 500), (5000, 13)] {
        let (a, w) = data(rows, cols, rows as u64);
        let (am, wv) = (matrix("A", Float64), vector("w", Float64));
        let cost = am.dot(&wv).exp().log1p().sum(All);
        let outs = value_and_grad(&cost, &[&wv]).unwrap();
        let refs: Vec<&Var> = outs.iter().collect();
        let f = function(&[&am, &wv], &refs).compile().unwrap();
        assert!(fused(&f), "{}", f.plan());
        compare_backends(&[&am, &wv], &refs, &[a, w], Mode::Jit)
            .unwrap_or_else(|e| panic!("{rows}x{cols}: {e}"));
    }
}

#[test]
fn both_forms_and_intermediates_used_elsewhere() {
    let (a, w) = data(600, 70, 1);
    let (am, wv) = (matrix("A", Float64), vector("w", Float64));
    let z = am.dot(&wv);
    let s = z.tanh();
    // Vector first, with z and s also outputs.
    let g1 = s.dot(&am);
    // The transposed form, with the transpose read elsewhere too.
    let t = am.t();
    let g2 = t.dot(&s);
    let extra = t.sum(All);
    for outs in [vec![&g1, &z, &s], vec![&g2, &extra]] {
        let f = function(&[&am, &wv], &outs).compile().unwrap();
        assert!(fused(&f), "{}", f.plan());
        compare_backends(&[&am, &wv], &outs, &[a.clone(), w.clone()], Mode::Jit).unwrap();
    }
}

#[test]
fn maps_reading_labels_and_scalars_are_fused_too() {
    // Logistic regression: cost Σ softplus(z) − y·z, gradient Aᵀ(sigmoid(z) − y).
    let (a, w) = data(900, 31, 7);
    let mut rng = TestRng::new(8);
    let labels: TensorData =
        Array1::from_shape_fn(900, |_| (rng.next_f64() > 0.5) as u8 as f64).into();
    let (am, wv, y, c) = (
        matrix("A", Float64),
        vector("w", Float64),
        vector("y", Float64),
        scalar("c", Float64),
    );
    let z = am.dot(&wv);
    let cost = (z.exp().log1p() - &y * &z).sum(All);
    let outs = value_and_grad(&cost, &[&wv]).unwrap();
    let refs: Vec<&Var> = outs.iter().collect();
    let f = function(&[&am, &wv, &y], &refs).compile().unwrap();
    assert!(fused(&f), "{}", f.plan());
    let inputs = [a.clone(), w.clone(), labels.clone()];
    compare_backends(&[&am, &wv, &y], &refs, &inputs, Mode::Jit).unwrap();
    // A scalar and a strided vector next to z.
    let g = am.t().dot(&((&z * &c).tanh() * &y));
    let f = function(&[&am, &wv, &y, &c], &[&g]).compile().unwrap();
    assert!(fused(&f), "{}", f.plan());
    let long: TensorData = Array1::from_shape_fn(1800, |i| (i % 7) as f64 - 3.0)
        .slice_move(ndarray::s![..;2])
        .into();
    let inputs = [a.clone(), w.clone(), long, TensorData::scalar(0.7f64)];
    compare_backends(&[&am, &wv, &y, &c], &[&g], &inputs, Mode::Jit).unwrap();
    // Labels of another length: the map's error, as unfused.
    let short: TensorData = Array1::from_elem(899, 1.0).into();
    let e = f
        .call(&[a, w, short, TensorData::scalar(0.7f64)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("size") || e.contains("shape"), "{e}");
}

#[test]
fn other_layouts_run_unfused_and_errors_name_the_node() {
    let (am, wv) = (matrix("A", Float64), vector("w", Float64));
    let g = am.t().dot(&am.dot(&wv).sigmoid());
    let f = function(&[&am, &wv], &[&g]).compile().unwrap();
    assert!(fused(&f), "{}", f.plan());
    let mut rng = TestRng::new(2);
    let column_major: TensorData =
        Array2::from_shape_fn((50, 9).f(), |_| rng.next_f64() - 0.5).into();
    let strided_w: TensorData = Array1::from_shape_fn(18, |i| i as f64 * 0.01)
        .slice_move(ndarray::s![..;2])
        .into();
    let (a, w) = data(50, 9, 3);
    for inputs in [
        [column_major.clone(), w.clone()],
        [a.clone(), strided_w.clone()],
    ] {
        compare_backends(&[&am, &wv], &[&g], &inputs, Mode::Jit).unwrap();
    }
    let (_, short) = data(50, 8, 4);
    let e = f.call(&[a, short]).unwrap_err().to_string();
    assert!(e.contains("Dot(A, w)"), "{e}");
    // A map reading a value made from z after the product is not a row pass (it runs as
    // three kernels), and still matches the reference.
    let z = am.dot(&wv);
    let g = am.t().dot(&(z.sigmoid() * z.cumsum(None)));
    let f = function(&[&am, &wv], &[&g]).compile().unwrap();
    assert!(!fused(&f), "{}", f.plan());
    let (a, w) = data(50, 9, 5);
    compare_backends(&[&am, &wv], &[&g], &[a, w], Mode::Jit).unwrap();
}

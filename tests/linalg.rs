//! Dense linear algebra and Blockwise (issue 20): gradients of every linalg op checked
//! with `verify_grad` on single matrices and on batches (the Blockwise pullback), in both
//! backends; a batched model (the MvNormal log-density of W12) built with
//! `vectorize_graph` against the per-element function and against closed forms; the
//! compiled plan of a Blockwise; errors of bad batches. Values against NumPy are in
//! `numpy_cases.rs`.

use ndarray::{Array2, Array3};
use tensorlift::gradcheck::{verify_grad, VerifyGrad};
use tensorlift::linalg;
use tensorlift::prelude::*;
use tensorlift::testing::spread;

fn check(f: impl Fn(&[Var]) -> Var + Copy, points: &[TensorData]) {
    for mode in [Mode::Reference, Mode::Jit] {
        let name = format!("{mode:?}");
        verify_grad(f, points, &VerifyGrad::in_mode(mode))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// A well-conditioned n×n matrix (not symmetric).
fn general(n: usize, seed: f64) -> Array2<f64> {
    let s = spread(&[n, n], -1.0, 1.0 + seed).to_array::<f64>();
    let s = s.into_dimensionality::<ndarray::Ix2>().unwrap();
    s + Array2::<f64>::eye(n) * 3.0
}

/// A symmetric positive-definite n×n matrix with distinct eigenvalues.
fn spd(n: usize, seed: f64) -> Array2<f64> {
    let m = general(n, seed);
    m.dot(&m.t()) / n as f64 + Array2::<f64>::from_diag(&ndarray::Array1::linspace(1.0, 2.0, n))
}

fn batch(mats: &[Array2<f64>]) -> TensorData {
    let views: Vec<_> = mats.iter().map(|m| m.view()).collect();
    let b: Array3<f64> = ndarray::stack(ndarray::Axis(0), &views).unwrap();
    b.into()
}

/// A random-looking weight of x's shape so the cost uses every output element.
fn weighted(x: &Var) -> Var {
    let w = (x.shape().cast(Float64).sum(All) * 0.37 + 1.0).sin();
    (x * &w + x.sqr() * 0.1).sum(All)
}

#[test]
fn determinant_inverse_and_solves_match_finite_differences() {
    let a: TensorData = general(4, 0.0).into();
    let b: TensorData = spread(&[4], -1.0, 1.0);
    let bm: TensorData = spread(&[4, 2], -1.0, 1.0);
    check(|x| linalg::det(&x[0]), std::slice::from_ref(&a));
    check(|x| linalg::slogdet(&x[0]).1, std::slice::from_ref(&a));
    check(|x| weighted(&linalg::inv(&x[0])), std::slice::from_ref(&a));
    check(
        |x| weighted(&linalg::solve(&x[0], &x[1])),
        &[a.clone(), b.clone()],
    );
    check(
        |x| weighted(&linalg::solve(&x[0], &x[1])),
        &[a.clone(), bm.clone()],
    );
    for lower in [true, false] {
        check(
            move |x| weighted(&linalg::solve_triangular(&x[0], &x[1], lower)),
            &[a.clone(), b.clone()],
        );
        check(
            move |x| weighted(&linalg::solve_triangular(&x[0], &x[1], lower)),
            &[a.clone(), bm.clone()],
        );
    }
    check(
        |x| weighted(&x[0].diagonal(1, 0, 1)),
        std::slice::from_ref(&a),
    );
    check(
        |x| weighted(&x[0].diagonal(-2, 0, 1)),
        std::slice::from_ref(&a),
    );
}

#[test]
fn cholesky_and_eigh_match_finite_differences() {
    let s: TensorData = spd(4, 0.3).into();
    check(
        |x| weighted(&linalg::cholesky(&x[0], true)),
        std::slice::from_ref(&s),
    );
    check(
        |x| weighted(&linalg::cholesky(&x[0], false)),
        std::slice::from_ref(&s),
    );
    check(
        |x| weighted(&linalg::eigvalsh(&x[0])),
        std::slice::from_ref(&s),
    );
    // Eigenvectors have arbitrary signs: a cost of their squares does not see them.
    check(
        |x| {
            let (w, v) = linalg::eigh(&x[0]);
            weighted(&v.sqr()) + w.sum(All)
        },
        std::slice::from_ref(&s),
    );
}

#[test]
fn blockwise_gradients_match_finite_differences() {
    let mats = batch(&[general(3, 0.0), general(3, 0.5), general(3, 0.9)]);
    let spds = batch(&[spd(3, 0.0), spd(3, 0.4)]);
    let rhs = spread(&[3, 3], -1.0, 1.0);
    check(
        |x| weighted(&linalg::det(&x[0])),
        std::slice::from_ref(&mats),
    );
    check(
        |x| weighted(&linalg::inv(&x[0])),
        std::slice::from_ref(&mats),
    );
    check(
        |x| weighted(&linalg::solve(&x[0], &x[1])),
        &[mats.clone(), rhs.clone()],
    );
    // An unbatched right-hand side shared by the batch: its gradient sums over it.
    check(
        |x| weighted(&linalg::solve(&x[0], &x[1])),
        &[mats.clone(), spread(&[3], -1.0, 1.0)],
    );
    // Batched right-hand-side vectors.
    check(
        |x| weighted(&linalg::solve_with(&x[0], &x[1], 1)),
        &[mats.clone(), spread(&[3, 3], -0.5, 1.0)],
    );
    check(
        |x| weighted(&linalg::cholesky(&x[0], true)),
        std::slice::from_ref(&spds),
    );
    check(
        |x| weighted(&x[0].matmul(&x[1])),
        &[mats, spread(&[3, 2], -1.0, 1.0)],
    );
}

/// W12's model: the MvNormal log-density of one x under each of a batch of (cov, mu),
/// written for one element and vectorized, against the per-element function and
/// against the closed form through NumPy-free arithmetic (log det = 2 Σ log diag L).
#[test]
fn vectorized_mvnormal_log_density_matches_per_element() {
    let d = 4;
    let (cov, mu, x) = (
        matrix("cov", Float64),
        vector("mu", Float64),
        vector("x", Float64),
    );
    let l = linalg::cholesky(&cov, true);
    let z = linalg::solve_triangular(&l, &(&x - &mu), true);
    let logp = (z.sqr().sum(All) * -0.5)
        - l.diagonal(0, 0, 1).log().sum(All)
        - 0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln();
    let (covs, mus) = (
        tensor("covs", Float64, [None, None, None]),
        matrix("mus", Float64),
    );
    let batched = vectorize_graph(&[&logp], &[(&cov, &covs), (&mu, &mus)]).unwrap();
    let n = 5;
    let cov_values: Vec<Array2<f64>> = (0..n).map(|i| spd(d, i as f64 * 0.2)).collect();
    let covs_v = batch(&cov_values);
    let mus_v = spread(&[n, d], -1.0, 1.0);
    let x_v = spread(&[d], -0.5, 0.7);
    let single = function(&[&cov, &mu, &x], &[&logp]).compile().unwrap();
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&[&covs, &mus, &x], &[&batched[0]])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let got = f
            .call(&[covs_v.clone(), mus_v.clone(), x_v.clone()])
            .unwrap()
            .remove(0)
            .to_f64_vec();
        assert_eq!(got.len(), n);
        let mus_a = mus_v.to_array::<f64>();
        for (i, g) in got.iter().enumerate() {
            let mu_i: TensorData = mus_a.index_axis(ndarray::Axis(0), i).to_owned().into();
            let want = single
                .call(&[cov_values[i].clone().into(), mu_i, x_v.clone()])
                .unwrap()[0]
                .item_f64()
                .unwrap();
            assert!(
                (g - want).abs() < 1e-12 * (1.0 + want.abs()),
                "{mode:?} {i}: {g} vs {want}"
            );
            // Closed form: −½ (x−μ)ᵀ Σ⁻¹ (x−μ) − ½ log det Σ − d/2 log 2π, by hand.
            let diff = x_v.to_array::<f64>() - mus_a.index_axis(ndarray::Axis(0), i);
            let sol = solve_by_gauss(&cov_values[i], diff.as_slice().unwrap());
            let quad: f64 = diff.iter().zip(&sol).map(|(a, b)| a * b).sum();
            let logdet = det_by_gauss(&cov_values[i]).ln();
            let closed =
                -0.5 * quad - 0.5 * logdet - 0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln();
            assert!((g - closed).abs() < 1e-9, "{mode:?} {i}: {g} vs {closed}");
        }
    }
}

/// Gaussian elimination with partial pivoting (the test's own closed-form arithmetic).
fn gauss(a: &Array2<f64>, b: &[f64]) -> (Vec<f64>, f64) {
    let n = b.len();
    let mut m = a.clone();
    let mut x = b.to_vec();
    let mut det = 1.0;
    for c in 0..n {
        let p = (c..n)
            .max_by(|i, j| m[[*i, c]].abs().total_cmp(&m[[*j, c]].abs()))
            .unwrap();
        if p != c {
            for k in 0..n {
                m.swap([c, k], [p, k]);
            }
            x.swap(c, p);
            det = -det;
        }
        det *= m[[c, c]];
        for r in c + 1..n {
            let f = m[[r, c]] / m[[c, c]];
            for k in c..n {
                m[[r, k]] -= f * m[[c, k]];
            }
            x[r] -= f * x[c];
        }
    }
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| m[[r, k]] * x[k]).sum();
        x[r] = (x[r] - s) / m[[r, r]];
    }
    (x, det)
}

fn solve_by_gauss(a: &Array2<f64>, b: &[f64]) -> Vec<f64> {
    gauss(a, b).0
}

fn det_by_gauss(a: &Array2<f64>) -> f64 {
    gauss(a, &vec![0.0; a.nrows()]).1
}

#[test]
fn blockwise_runs_as_a_batch_loop_over_a_compiled_core() {
    let xs = tensor("xs", Float64, [None, Some(3), Some(3)]);
    let y = linalg::inv(&xs).sum(All);
    let f = function(&[&xs], &[&y])
        .mode(Mode::Jit.strict())
        .compile()
        .unwrap();
    let plan = f.plan();
    assert!(
        plan.contains("linear-algebra library over the batch"),
        "{plan}"
    );
    // Any other core: its compiled function called per element.
    let ys = tensor("ys", Float64, [None, None]);
    let y = vector("y", Float64);
    let batched = vectorize_graph(&[&y.cumsum(None)], &[(&y, &ys)]).unwrap();
    let g = function(&[&ys], &[&batched[0]])
        .mode(Mode::Jit.strict())
        .compile()
        .unwrap();
    assert!(
        g.plan().contains("calling its core's compiled function"),
        "{}",
        g.plan()
    );
    // A batch mixing an invertible and a singular matrix fails, naming the op.
    let mut bad = Array3::<f64>::zeros((2, 3, 3));
    bad.index_axis_mut(ndarray::Axis(0), 0)
        .assign(&Array2::eye(3));
    let e = f.call(&[bad.into()]).unwrap_err().to_string();
    assert!(e.contains("MatrixInverse") && e.contains("singular"), "{e}");
}

#[test]
fn batch_dimensions_broadcast_only_where_static_one() {
    let a = tensor("a", Float64, [None, Some(2), Some(2)]);
    let b = tensor("b", Float64, [None, Some(2)]);
    let x = linalg::solve_with(&a, &b, 1);
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&[&a, &b], &[&x]).mode(mode).compile().unwrap();
        let eye = batch(&[Array2::eye(2), Array2::eye(2), Array2::eye(2)]);
        let e = f
            .call(&[eye, spread(&[1, 2], -1.0, 1.0)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("runtime broadcasting is not supported"), "{e}");
    }
    // A static 1 broadcasts.
    let one = tensor("one", Float64, [Some(1), Some(2)]);
    let y = linalg::solve_with(&a, &one, 1);
    assert_eq!(y.static_shape(), &[None, Some(2)]);
    let f = function(&[&a, &one], &[&y]).compile().unwrap();
    let eye = batch(&[Array2::eye(2), Array2::eye(2) * 2.0]);
    let out = f.call(&[eye, ndarray::array![[1.0, 4.0]].into()]).unwrap();
    assert_eq!(out[0].to_f64_vec(), vec![1.0, 4.0, 0.5, 2.0]);
    // Static batch sizes that differ are a type error.
    let (p, q) = (
        tensor("p", Float64, [Some(3), Some(2), Some(2)]),
        tensor("q", Float64, [Some(4), Some(2)]),
    );
    let e = linalg::solve_with(&p, &q, 1)
        .check()
        .unwrap_err()
        .to_string();
    assert!(e.contains("batch dimension 0 is 3"), "{e}");
}

#[test]
fn outer_products_of_flattened_operands() {
    use tensorlift::linalg::outer;
    let (a, b) = (vector("a", Float64), matrix("b", Float64));
    let out = outer(&a, &b);
    let (av, bv) = (vec![1.0, -2.0, 0.5], vec![3.0, 4.0, 5.0, 6.0]);
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&[&a, &b], &[&out])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let r = f
            .call(&[
                ndarray::Array1::from(av.clone()).into(),
                ndarray::Array2::from_shape_vec((2, 2), bv.clone())
                    .unwrap()
                    .into(),
            ])
            .unwrap();
        assert_eq!(r[0].shape(), &[3, 4], "{mode:?}");
        let want: Vec<f64> = av
            .iter()
            .flat_map(|x| bv.iter().map(move |y| x * y))
            .collect();
        assert_eq!(r[0].to_f64_vec(), want, "{mode:?}");
    }
}

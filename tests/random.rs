//! Random variables (issue 21): the same draws bit for bit in both backends and however
//! the work is split over threads, reproducible by seed, fresh with a shared RNG that the
//! function updates, an RNG as an ordinary scan state; statistical tests at a fixed seed
//! for every distribution (moments, Kolmogorov–Smirnov against closed-form CDFs,
//! chi-square for discrete ones); parameter errors naming the op.

use tensorlift::prelude::*;
use tensorlift::random::{
    bernoulli, beta, binomial, categorical, gamma, multivariate_normal, normal, poisson, rng,
    uniform,
};

fn draw_in(mode: Mode, value: &Var) -> TensorData {
    function(&[], &[value])
        .mode(mode)
        .compile()
        .unwrap()
        .call(&[])
        .unwrap()
        .remove(0)
}

/// The draws in the reference backend, checked equal (bit for bit) to the JIT's and to
/// the JIT's on a one-thread pool.
fn draws(value: &Var) -> Vec<f64> {
    let reference = draw_in(Mode::Reference, value);
    let jit = draw_in(Mode::Jit, value);
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| draw_in(Mode::Jit, value));
    assert!(
        reference.same_as(&jit),
        "{}: backends differ",
        value.label()
    );
    assert!(
        reference.same_as(&one_thread),
        "{}: thread split differs",
        value.label()
    );
    reference.to_f64_vec()
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0),
    )
}

/// Kolmogorov–Smirnov distance between the sample and `cdf`, checked below the 0.1%
/// critical value.
fn ks(name: &str, v: &[f64], cdf: impl Fn(f64) -> f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len() as f64;
    let d = s
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let f = cdf(*x);
            (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
        })
        .fold(0.0, f64::max);
    assert!(d < 1.95 / n.sqrt(), "{name}: KS distance {d}");
}

/// Pearson's chi-square of integer draws against probabilities `p` (categories with
/// expected count ≥ 5), below the 0.1% critical value for up to 10 degrees of freedom.
fn chi_square(name: &str, v: &[f64], p: &[f64]) {
    let n = v.len() as f64;
    let mut counts = vec![0.0; p.len()];
    for x in v {
        counts[*x as usize] += 1.0;
    }
    let stat: f64 = counts
        .iter()
        .zip(p)
        .filter(|(_, q)| **q * n >= 5.0)
        .map(|(c, q)| (c - q * n).powi(2) / (q * n))
        .sum();
    assert!(stat < 29.6, "{name}: chi-square {stat}");
}

fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

const N: usize = 20_000;

#[test]
fn continuous_draws_match_their_distributions() {
    let size = [N.into()];
    let v = draws(&normal(&rng(1), 2.0, 3.0, &size).value);
    let (m, var) = mean_var(&v);
    assert!(
        (m - 2.0).abs() < 0.1 && (var - 9.0).abs() < 0.4,
        "{m} {var}"
    );
    ks("normal", &v, |x| normal_cdf((x - 2.0) / 3.0));
    let v = draws(&uniform(&rng(2), -1.0, 3.0, &size).value);
    assert!(v.iter().all(|x| (-1.0..3.0).contains(x)));
    ks("uniform", &v, |x| ((x + 1.0) / 4.0).clamp(0.0, 1.0));
    // gamma(1, θ) is exponential; beta(1, 1) is uniform: closed-form CDFs.
    let v = draws(&gamma(&rng(3), 1.0, 2.0, &size).value);
    ks("gamma(1, 2)", &v, |x| 1.0 - (-x / 2.0).exp());
    let v = draws(&beta(&rng(4), 1.0, 1.0, &size).value);
    ks("beta(1, 1)", &v, |x| x.clamp(0.0, 1.0));
    // General parameters: moments (gamma: kθ, kθ²; beta: a/(a+b), ab/((a+b)²(a+b+1))).
    let (m, var) = mean_var(&draws(&gamma(&rng(5), 2.5, 0.5, &size).value));
    assert!(
        (m - 1.25).abs() < 0.03 && (var - 0.625).abs() < 0.04,
        "{m} {var}"
    );
    let (m, var) = mean_var(&draws(&beta(&rng(6), 2.0, 5.0, &size).value));
    assert!(
        (m - 2.0 / 7.0).abs() < 0.005 && (var - 10.0 / 392.0).abs() < 0.002,
        "{m} {var}"
    );
}

#[test]
fn discrete_draws_match_their_distributions() {
    let size = [N.into()];
    let v = draws(&bernoulli(&rng(7), 0.3, &size).value);
    chi_square("bernoulli", &v, &[0.7, 0.3]);
    let lam: f64 = 3.5;
    let v = draws(&poisson(&rng(8), lam, &size).value);
    let pmf: Vec<f64> = (0..20)
        .map(|k| (-lam).exp() * lam.powi(k) / (1..=k).map(f64::from).product::<f64>())
        .collect();
    chi_square("poisson", &v, &pmf);
    let v = draws(&binomial(&rng(9), 10, 0.25, &size).value);
    let choose = |n: u64, k: u64| {
        (1..=k)
            .map(|i| (n - k + i) as f64 / i as f64)
            .product::<f64>()
    };
    let pmf: Vec<f64> = (0..=10)
        .map(|k| choose(10, k) * 0.25f64.powi(k as i32) * 0.75f64.powi(10 - k as i32))
        .collect();
    chi_square("binomial", &v, &pmf);
    let p = constant(TensorData::from(ndarray::array![1.0, 2.0, 3.0, 4.0]));
    let v = draws(&categorical(&rng(10), &p, &size).value);
    chi_square("categorical", &v, &[0.1, 0.2, 0.3, 0.4]);
}

#[test]
fn multivariate_normal_draws_have_their_covariance() {
    let mean = constant(TensorData::from(ndarray::array![1.0, -1.0]));
    let cov = constant(TensorData::from(ndarray::array![[2.0, 0.6], [0.6, 1.0]]));
    let v = draws(&multivariate_normal(&rng(11), &mean, &cov, &[N.into()]).value);
    let (x, y): (Vec<f64>, Vec<f64>) = v.chunks(2).map(|c| (c[0], c[1])).unzip();
    let ((mx, vx), (my, vy)) = (mean_var(&x), mean_var(&y));
    let cxy = x
        .iter()
        .zip(&y)
        .map(|(a, b)| (a - mx) * (b - my))
        .sum::<f64>()
        / N as f64;
    assert!(
        (mx - 1.0).abs() < 0.05 && (my + 1.0).abs() < 0.05,
        "{mx} {my}"
    );
    assert!((vx - 2.0).abs() < 0.1 && (vy - 1.0).abs() < 0.05 && (cxy - 0.6).abs() < 0.05);
    ks("mvnormal x", &x, |t| normal_cdf((t - 1.0) / 2f64.sqrt()));
}

#[test]
fn draws_are_reproducible_and_states_advance() {
    let size = [1000.into()];
    let a = draws(&normal(&rng(42), 0.0, 1.0, &size).value);
    let b = draws(&normal(&rng(42), 0.0, 1.0, &size).value);
    let c = draws(&normal(&rng(43), 0.0, 1.0, &size).value);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // The next state gives other draws; drawing twice from it gives the same ones.
    let first = normal(&rng(42), 0.0, 1.0, &size);
    let second = normal(&first.rng, 0.0, 1.0, &size);
    let d = draws(&second.value);
    assert_ne!(a, d);
    assert_eq!(d, draws(&normal(&first.rng, 0.0, 1.0, &size).value));
    // Parameters broadcast into the size: per-row means.
    let means = constant(TensorData::from(ndarray::array![[0.0], [100.0]]));
    let rows = draws(&normal(&rng(1), &means, 1.0, &[2.into(), 500.into()]).value);
    assert!(rows[..500].iter().all(|x| x.abs() < 10.0));
    assert!(rows[500..].iter().all(|x| (x - 100.0).abs() < 10.0));
    // Without a size: the parameters' shape.
    let stds = constant(TensorData::from(ndarray::array![1.0, 2.0, 3.0]));
    assert_eq!(
        normal(&rng(1), 0.0, &stds, &[]).value.static_shape(),
        &[Some(3)]
    );
}

#[test]
fn a_shared_rng_gives_fresh_draws_each_call() {
    for mode in [Mode::Reference, Mode::Jit] {
        let state = shared_rng("rng", 5);
        let draw = normal(&state, 0.0, 1.0, &[4.into()]);
        let f = function(&[], &[&draw.value])
            .updates(&[(&state, &draw.rng)])
            .mode(mode)
            .compile()
            .unwrap();
        let (a, b) = (f.call(&[]).unwrap(), f.call(&[]).unwrap());
        assert_ne!(a[0].to_f64_vec(), b[0].to_f64_vec());
        // The same seed: the same first draw as a constant state.
        assert_eq!(
            a[0].to_f64_vec(),
            draws(&normal(&rng(5), 0.0, 1.0, &[4.into()]).value)
        );
        assert_eq!(state.get_value().unwrap().to_f64_vec(), vec![5.0, 2.0]);
    }
}

#[test]
fn an_rng_is_an_ordinary_scan_state() {
    // Five steps, each drawing with the state the previous step left.
    let (r0, x0) = (rng(9), scalar("x0", Float64));
    let walk = scan(|s| {
        let d = normal(&s.state(0), 0.0, 1.0, &[]);
        vec![d.rng, s.state(1) + d.value]
    })
    .states(&[&r0, &x0])
    .n_steps(5)
    .build();
    let mut state = rng(9);
    let mut x = x0.clone();
    for _ in 0..5 {
        let d = normal(&state, 0.0, 1.0, &[]);
        x = x + d.value;
        state = d.rng;
    }
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&[&x0], &[&walk.last(1), &x])
            .mode(mode)
            .compile()
            .unwrap();
        let out = f.call(&[TensorData::scalar(1.0)]).unwrap();
        assert_eq!(out[0].item_f64().unwrap(), out[1].item_f64().unwrap());
    }
}

#[test]
fn parameters_outside_their_domain_are_errors() {
    let cases: Vec<(Var, &str)> = vec![
        (normal(&rng(1), 0.0, -1.0, &[3.into()]).value, "std"),
        (
            bernoulli(&rng(1), 1.5, &[3.into()]).value,
            "p (parameter 0)",
        ),
        (gamma(&rng(1), 0.0, 1.0, &[3.into()]).value, "shape"),
        (poisson(&rng(1), -2.0, &[3.into()]).value, "lam"),
        (
            binomial(&rng(1), 3, 2.0, &[3.into()]).value,
            "p (parameter 1)",
        ),
    ];
    for (value, what) in cases {
        for mode in [Mode::Reference, Mode::Jit] {
            let e = function(&[], &[&value])
                .mode(mode)
                .compile()
                .unwrap()
                .call(&[])
                .unwrap_err()
                .to_string();
            assert!(e.contains("Random{") && e.contains(what), "{e}");
        }
    }
    // A draw cannot be vectorized (a Blockwise would repeat one stream): refused by name.
    let (m, ms) = (scalar("m", Float64), vector("ms", Float64));
    let e = vectorize_graph(&[&normal(&rng(1), &m, 1.0, &[]).value], &[(&m, &ms)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Random{Normal") && e.contains("cannot be vectorized"),
        "{e}"
    );
    // A parameter that does not broadcast into the size.
    let means = vector("means", Float64);
    let f = function(
        &[&means],
        &[&normal(&rng(1), &means, 1.0, &[4.into()]).value],
    )
    .compile()
    .unwrap();
    let e = f
        .call(&[ndarray::array![1.0, 2.0].into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("runtime broadcasting"), "{e}");
}

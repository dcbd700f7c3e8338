//! The scoreboard: `cargo bench --bench compare [-- --json FILE] [--peers] [--only W1,W2]`.
//!
//! Runs the benchmark workloads on the JIT backend, the reference backend and a plain
//! hand-written Rust loop ("native"), prints a table (median of at least 5 runs, elements/s
//! and GB/s for memory-bound workloads) and optionally writes JSON records
//! `{"workload", "size", "backend", "median_s", "runs"}`. With `--peers` it also runs the
//! same workloads in NumPy, PyTensor (C and NUMBA) and JAX through `benches/peers.py` in
//! the venv made by `scripts/setup_peers.sh`, in the same run, so ratios are side by side.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use ndarray::{Array1, Array2};
use tensorlift::prelude::*;
use tensorlift::testing::{random_of_shape, TestRng};

struct Record {
    workload: String,
    size: String,
    backend: String,
    median_s: f64,
    runs: usize,
    /// Elements processed and bytes moved per call (for rates).
    elements: f64,
    bytes: f64,
}

/// Median of `runs` timed calls after a warm-up (at least 3 calls and 0.3 s, so every
/// backend is measured in its steady state: caches, allocator and the kernel's page
/// pools warm); more runs for fast calls, each run averaging `inner` calls.
fn median(mut f: impl FnMut()) -> (f64, usize) {
    let warm = Instant::now();
    let mut calls = 0;
    while calls < 3 || warm.elapsed() < Duration::from_millis(300) {
        f();
        calls += 1;
    }
    let t = Instant::now();
    f();
    let once = t.elapsed();
    let inner = if once < Duration::from_micros(100) {
        (Duration::from_millis(2).as_nanos() / once.as_nanos().max(1)).max(1) as usize
    } else {
        1
    };
    let runs = if once > Duration::from_millis(500) {
        5
    } else {
        9
    };
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..inner {
                f();
            }
            t.elapsed().as_secs_f64() / inner as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[runs / 2], runs)
}

struct Bench {
    records: Vec<Record>,
    only: Option<Vec<String>>,
}

impl Bench {
    fn wants(&self, workload: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|w| w == workload))
    }

    fn run(
        &mut self,
        workload: &str,
        size: &str,
        backend: &str,
        work: (f64, f64),
        f: impl FnMut(),
    ) {
        let (median_s, runs) = median(f);
        self.records.push(Record {
            workload: workload.into(),
            size: size.into(),
            backend: backend.into(),
            median_s,
            runs,
            elements: work.0,
            bytes: work.1,
        });
        eprintln!(
            "  {workload:4} {size:>10} {backend:16} {:>12}",
            fmt_time(median_s)
        );
    }

    /// The same graph in the JIT and reference backends.
    fn graph(
        &mut self,
        workload: &str,
        size: &str,
        work: (f64, f64),
        inputs: &[&Var],
        outputs: &[&Var],
        values: &[TensorData],
    ) {
        for (name, mode) in [("jit", Mode::Jit), ("reference", Mode::Reference)] {
            let f = function(inputs, outputs)
                .mode(mode)
                .compile()
                .expect("compile");
            self.run(workload, size, name, work, || {
                black_box(f.call(values).expect("call"));
            });
        }
    }
}

fn fmt_time(s: f64) -> String {
    if s < 1e-6 {
        format!("{:.1} ns", s * 1e9)
    } else if s < 1e-3 {
        format!("{:.2} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

fn vec_f64(n: usize, seed: u64) -> Array1<f64> {
    let mut rng = TestRng::new(seed);
    let d = random_of_shape(Float64, &[n], (-3.0, 3.0), &mut rng);
    d.into_array::<f64>()
        .and_then(|a| a.into_dimensionality().ok())
        .expect("vector")
}

fn mat_f64(m: usize, n: usize, seed: u64) -> Array2<f64> {
    let mut rng = TestRng::new(seed);
    let d = random_of_shape(Float64, &[m, n], (-3.0, 3.0), &mut rng);
    d.into_array::<f64>()
        .and_then(|a| a.into_dimensionality().ok())
        .expect("matrix")
}

fn w1(b: &mut Bench, n: usize, size: &str) {
    let (x, y, z) = (
        vector("x", Float64),
        vector("y", Float64),
        vector("z", Float64),
    );
    let out = x.exp() * &y + z.sin() * 0.5;
    let (xv, yv, zv) = (vec_f64(n, 1), vec_f64(n, 2), vec_f64(n, 3));
    let work = (n as f64, 32.0 * n as f64);
    let (xs, ys, zs) = (
        xv.as_slice().unwrap(),
        yv.as_slice().unwrap(),
        zv.as_slice().unwrap(),
    );
    b.run("W1", size, "native", work, || {
        let out: Vec<f64> = (0..n)
            .map(|i| xs[i].exp() * ys[i] + zs[i].sin() * 0.5)
            .collect();
        black_box(out);
    });
    let values = [xv.clone().into(), yv.clone().into(), zv.clone().into()];
    b.graph("W1", size, work, &[&x, &y, &z], &[&out], &values);
}

fn w2(b: &mut Bench) {
    let n = 10_000_000;
    let x = vector("x", Float64);
    let xv = vec_f64(n, 4);
    let xs = xv.as_slice().unwrap();
    let work = (n as f64, 8.0 * n as f64);
    b.run("W2", "1e7", "native", work, || {
        let m = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = xs.iter().map(|v| (v - m).exp()).sum();
        black_box(m + s.ln());
    });
    b.graph(
        "W2",
        "1e7",
        work,
        &[&x],
        &[&x.logsumexp(None)],
        &[xv.clone().into()],
    );
}

fn w3(b: &mut Bench) {
    let (m, n) = (2000, 2000);
    let x = matrix("x", Float64);
    let xv = mat_f64(m, n, 5);
    let xs = xv.as_slice().unwrap();
    let work = ((m * n) as f64, 16.0 * (m * n) as f64);
    b.run("W3", "2000x2000", "native", work, || {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            let row = &xs[i * n..(i + 1) * n];
            let mx = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let o = &mut out[i * n..(i + 1) * n];
            let mut s = 0.0;
            for (o, v) in o.iter_mut().zip(row) {
                *o = (v - mx).exp();
                s += *o;
            }
            o.iter_mut().for_each(|v| *v /= s);
        }
        black_box(out);
    });
    b.graph(
        "W3",
        "2000x2000",
        work,
        &[&x],
        &[&x.softmax(1)],
        &[xv.clone().into()],
    );
}

fn w4(b: &mut Bench) {
    let (m, n) = (4000, 2500);
    let x = matrix("x", Float64);
    let xv = mat_f64(m, n, 6);
    let xs = xv.as_slice().unwrap();
    let work = ((m * n) as f64, 8.0 * (m * n) as f64);
    b.run("W4a", "4000x2500", "native", work, || {
        let mut out = vec![0.0; n];
        for row in xs.chunks_exact(n) {
            for (o, v) in out.iter_mut().zip(row) {
                *o += v;
            }
        }
        black_box(out);
    });
    b.graph(
        "W4a",
        "4000x2500",
        work,
        &[&x],
        &[&x.sum([0])],
        &[xv.clone().into()],
    );
    b.run("W4b", "4000x2500", "native", work, || {
        let out: Vec<f64> = xs.chunks_exact(n).map(|r| r.iter().sum()).collect();
        black_box(out);
    });
    b.graph(
        "W4b",
        "4000x2500",
        work,
        &[&x],
        &[&x.sum([1])],
        &[xv.clone().into()],
    );
}

fn w7(b: &mut Bench) {
    let x = vector("x", Float64);
    let one = Array1::from(vec![1.0]);
    let s = one.as_slice().unwrap().to_vec();
    b.run("W7", "1", "native", (1.0, 16.0), || {
        let out: Vec<f64> = s.iter().map(|v| v + 1.0).collect();
        black_box(out);
    });
    b.graph(
        "W7",
        "1",
        (1.0, 16.0),
        &[&x],
        &[&(&x + 1.0)],
        &[one.clone().into()],
    );
    // W7b: ten operations on one-element vectors (per-call overhead of several steps).
    let (p, q) = (vector("p", Float64), vector("q", Float64));
    let n5 = (&p * (&p + &q).exp().sum(All)).max(All);
    let ten = ((q.get(idx![..;-1]) + &n5).cumsum(All).sin()) * 2.0;
    b.graph(
        "W7b",
        "1",
        (10.0, 160.0),
        &[&p, &q],
        &[&ten],
        &[one.clone().into(), one.into()],
    );
}

/// W5/W5t/W5c: `s ← 0.99·s + sin(t)` over t = 0..1e5 (last state, whole trace, t carried
/// in the state); W6: Newton's iteration for √2 from 1e6 until |Δ| < 1e-12 (a while-scan,
/// about 25 steps: the cost of a whole call); W10: harmonic sums `s += 1/(t+1)` until
/// `s > L` (L = 12: 91,380 steps), the trace, whose length only the run knows.
fn w5_w6_w10(b: &mut Bench) {
    const N: usize = 100_000;
    let s0 = scalar("s0", Float64);
    let zero: TensorData = TensorData::scalar(0.0f64);
    let ts = arange_dtype(0, N as i64, 1, Float64);
    let w5 = scan(|s| vec![s.state(0) * 0.99 + s.sequence(0).sin()])
        .sequences(&[&ts])
        .states(&[&s0])
        .build();
    let plain = |trace: bool| {
        let mut out = Vec::with_capacity(if trace { N } else { 0 });
        let mut s = 0.0f64;
        for t in 0..N {
            s = 0.99 * s + (t as f64).sin();
            if trace {
                out.push(s);
            }
        }
        (s, out)
    };
    if b.wants("W5") {
        b.run("W5", "1e5", "native", (N as f64, 0.0), || {
            black_box(plain(false));
        });
        b.graph(
            "W5",
            "1e5",
            (N as f64, 0.0),
            &[&s0],
            &[&w5.last(0)],
            std::slice::from_ref(&zero),
        );
    }
    if b.wants("W5t") {
        b.run("W5t", "1e5", "native", (N as f64, 8.0 * N as f64), || {
            black_box(plain(true));
        });
        let work = (N as f64, 8.0 * N as f64);
        b.graph(
            "W5t",
            "1e5",
            work,
            &[&s0],
            &[&w5.trace(0)],
            std::slice::from_ref(&zero),
        );
    }
    if b.wants("W5c") {
        // t carried in the state: nothing to move out of the loop.
        let t0 = scalar("t0", Float64);
        let w5c = scan(|s| vec![s.state(0) * 0.99 + s.state(1).sin(), s.state(1) + 1.0])
            .states(&[&s0, &t0])
            .n_steps(N)
            .build();
        b.run("W5c", "1e5", "native", (N as f64, 0.0), || {
            black_box(plain(false));
        });
        let values = [zero.clone(), zero.clone()];
        b.graph(
            "W5c",
            "1e5",
            (N as f64, 0.0),
            &[&s0, &t0],
            &[&w5c.last(0)],
            &values,
        );
    }
    if b.wants("W6") {
        let x0 = scalar("x0", Float64);
        let w6 = scan(|s| {
            let x = s.state(0);
            let next = &x / 2.0 + 1.0 / &x;
            s.until(&(&next - &x).abs().lt(1e-12));
            vec![next]
        })
        .states(&[&x0])
        .n_steps(10_000)
        .build();
        b.run("W6", "while", "native", (1.0, 0.0), || {
            let mut x = black_box(1e6f64);
            loop {
                let next = x / 2.0 + 1.0 / x;
                let done = (next - x).abs() < 1e-12;
                x = next;
                if done {
                    break;
                }
            }
            black_box(x);
        });
        let start: TensorData = TensorData::scalar(1e6f64);
        b.graph("W6", "while", (1.0, 0.0), &[&x0], &[&w6.last(0)], &[start]);
    }
    if b.wants("W10") {
        let (limit, t0) = (scalar("limit", Float64), scalar("t0", Float64));
        let w10 = scan(|s| {
            let (sum, t) = (s.state(0), s.state(1));
            let next = &sum + 1.0 / (&t + 1.0);
            s.until(&next.gt(&limit));
            vec![next, t + 1.0]
        })
        .states(&[&s0, &t0])
        .build();
        b.run("W10", "L=12", "native", (91_380.0, 8.0 * 91_380.0), || {
            let (mut out, mut s, mut t) = (Vec::new(), 0.0f64, 0.0f64);
            loop {
                s += 1.0 / (t + 1.0);
                t += 1.0;
                out.push(s);
                if s > black_box(12.0) {
                    break;
                }
            }
            black_box(out);
        });
        let values = [zero.clone(), TensorData::scalar(12.0f64), zero.clone()];
        b.graph(
            "W10",
            "L=12",
            (91_380.0, 8.0 * 91_380.0),
            &[&s0, &limit, &t0],
            &[&w10.trace(0)],
            &values,
        );
    }
}

/// W11: `ifelse(c, Σ exp(sin x)·cos²x, x[0] + 1)` with c false over 1e6 elements: a lazy
/// choice costs the cheap branch; `switch` (both computed) and the cheap branch alone are
/// measured beside it.
fn w11(b: &mut Bench) {
    const N: usize = 1_000_000;
    let (c, x) = (scalar("c", Int8), vector("x", Float64));
    let expensive = ((x.sin().exp()) * x.cos().sqr()).sum(All);
    let cheap = x.get(idx![0]) + 1.0;
    let lazy = ifelse(&c, &[&expensive], &[&cheap]);
    let both = switch(c.cast(Bool), &expensive, &cheap);
    let xv: TensorData = vec_f64(N, 11).into();
    let no: TensorData = TensorData::scalar(0i8);
    let first = xv.to_f64_vec()[0];
    b.run("W11", "1e6", "native", (1.0, 8.0), || {
        black_box(black_box(first) + 1.0);
    });
    let values = [no.clone(), xv.clone()];
    b.graph("W11", "1e6", (1.0, 8.0), &[&c, &x], &[&lazy[0]], &values);
    let f = function(&[&c, &x], &[&both]).compile().expect("compile");
    b.run("W11", "1e6", "jit_switch", (1.0, 8.0), || {
        black_box(f.call(&values).expect("call"));
    });
    let g = function(&[&x], &[&cheap]).compile().expect("compile");
    let only = [xv];
    b.run("W11", "1e6", "jit_cheap_alone", (1.0, 8.0), || {
        black_box(g.call(&only).expect("call"));
    });
}

fn w8(b: &mut Bench) {
    for (workload, backend, mode) in [
        ("W8a", "jit", Mode::Jit),
        ("W8a", "reference", Mode::Reference),
        ("W8b", "jit", Mode::Jit),
        ("W8b", "reference", Mode::Reference),
        ("W8c", "jit", Mode::Jit),
        ("W8c", "reference", Mode::Reference),
    ] {
        b.run(workload, "compile", backend, (1.0, 0.0), || {
            // Graph construction, rewrites, lowering and code generation, nothing cached.
            let f = if workload == "W8c" {
                // W5c's scan: t carried in the state, 1e5 steps.
                let (s0, t0) = (scalar("s0", Float64), scalar("t0", Float64));
                let w5c = scan(|s| vec![s.state(0) * 0.99 + s.state(1).sin(), s.state(1) + 1.0])
                    .states(&[&s0, &t0])
                    .n_steps(100_000)
                    .build();
                function(&[&s0, &t0], &[&w5c.last(0)])
                    .mode(mode.clone())
                    .compile()
            } else if workload == "W8a" {
                let (x, y, z) = (
                    vector("x", Float64),
                    vector("y", Float64),
                    vector("z", Float64),
                );
                let out = x.exp() * &y + z.sin() * 0.5;
                function(&[&x, &y, &z], &[&out])
                    .mode(mode.clone())
                    .compile()
            } else {
                let x = matrix("x", Float64);
                function(&[&x], &[&x.softmax(1)])
                    .mode(mode.clone())
                    .compile()
            };
            black_box(f.expect("compile"));
        });
    }
}

/// W13: 1e7 standard normal draws into a float64 array, from a shared RNG the function
/// updates (as the peers draw); W13b: `sum(exp(normal(size=1e7)))` in one graph. Native:
/// one thread of xoshiro256++ and rand_distr's normal, the generator and algorithm the
/// runtime uses.
fn w13(b: &mut Bench) {
    use rand_core::SeedableRng;
    use rand_distr::Distribution as _;
    const N: usize = 10_000_000;
    let work = (N as f64, 8.0 * N as f64);
    let native = |sum: bool| {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        if sum {
            let total: f64 = (0..N)
                .map(|_| {
                    let z: f64 = rand_distr::StandardNormal.sample(&mut rng);
                    z.exp()
                })
                .sum();
            black_box(total);
        } else {
            let v: Vec<f64> = (0..N)
                .map(|_| rand_distr::StandardNormal.sample(&mut rng))
                .collect();
            black_box(v);
        }
    };
    for (workload, sum) in [("W13", false), ("W13b", true)] {
        if !b.wants(workload) {
            continue;
        }
        b.run(workload, "1e7", "native", work, || native(sum));
        for (name, mode) in [("jit", Mode::Jit), ("reference", Mode::Reference)] {
            let state = tensorlift::shared_rng("rng", 3);
            let draw = tensorlift::random::normal(&state, 0.0, 1.0, &[N.into()]);
            let out = if sum {
                draw.value.exp().sum(All)
            } else {
                draw.value.clone()
            };
            let f = function(&[], &[&out])
                .updates(&[(&state, &draw.rng)])
                .mode(mode)
                .compile()
                .expect("compile");
            b.run(workload, "1e7", name, work, || {
                black_box(f.call(&[]).expect("call"));
            });
        }
    }
}

/// W12: the MvNormal log-density of one x under each of 10,000 (cov, mu) pairs of size
/// 16 (Cholesky, triangular solve, log-determinant), written for one pair and vectorized
/// with `vectorize_graph`, as the peers do (`vmap` for JAX).
fn w12(b: &mut Bench) {
    const B: usize = 10_000;
    const D: usize = 16;
    let a = mat_f64(B * D, D, 12);
    let mut covs = ndarray::Array3::<f64>::zeros((B, D, D));
    for (i, mut c) in covs.outer_iter_mut().enumerate() {
        let block = a.slice(ndarray::s![i * D..(i + 1) * D, ..]);
        c.assign(&(block.dot(&block.t()) / (3.0 * D as f64) + Array2::<f64>::eye(D)));
    }
    let mus = mat_f64(B, D, 13);
    let x = vec_f64(D, 14);
    let (cov, mu, xv) = (
        matrix("cov", Float64),
        vector("mu", Float64),
        vector("x", Float64),
    );
    let l = tensorlift::linalg::cholesky(&cov, true);
    let z = tensorlift::linalg::solve_triangular(&l, &(&xv - &mu), true);
    let logp = z.sqr().sum(All) * -0.5
        - l.diagonal(0, 0, 1).log().sum(All)
        - 0.5 * D as f64 * (2.0 * std::f64::consts::PI).ln();
    let (bc, bm) = (
        tensor("covs", Float64, [None, None, None]),
        matrix("mus", Float64),
    );
    let batched = vectorize_graph(&[&logp], &[(&cov, &bc), (&mu, &bm)]).expect("vectorize");
    let work = ((B * D * D * D) as f64 / 3.0, (8 * B * D * D) as f64);
    // Native: one thread, faer's in-place Cholesky and triangular solve per pair on
    // column-major storage (faer's fastest; the covariances are symmetric), no allocation
    // per pair.
    let covs_flat = covs.as_slice().expect("contiguous").to_vec();
    let mus_flat = mus.as_slice().expect("contiguous").to_vec();
    b.run("W12", "1e4x16", "native", work, || {
        use faer::dyn_stack::{MemBuffer, MemStack};
        use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
        use faer::{MatMut, MatRef, Par};
        let mut scratch = MemBuffer::new(cholesky_in_place_scratch::<f64>(
            D,
            Par::Seq,
            Default::default(),
        ));
        let (mut l, mut z) = (vec![0.0f64; D * D], vec![0.0f64; D]);
        let half_log_2pi = 0.5 * D as f64 * (2.0 * std::f64::consts::PI).ln();
        let out: Vec<f64> = (0..B)
            .map(|i| {
                l.copy_from_slice(&covs_flat[i * D * D..(i + 1) * D * D]);
                cholesky_in_place(
                    MatMut::from_column_major_slice_mut(&mut l, D, D),
                    Default::default(),
                    Par::Seq,
                    MemStack::new(&mut scratch),
                    Default::default(),
                )
                .expect("positive definite");
                for (k, zk) in z.iter_mut().enumerate() {
                    *zk = x[k] - mus_flat[i * D + k];
                }
                faer::linalg::triangular_solve::solve_lower_triangular_in_place(
                    MatRef::from_column_major_slice(&l, D, D),
                    MatMut::from_column_major_slice_mut(&mut z, D, 1),
                    Par::Seq,
                );
                let quad: f64 = z.iter().map(|v| v * v).sum();
                let logdet: f64 = (0..D).map(|k| l[k * D + k].ln()).sum();
                -0.5 * quad - logdet - half_log_2pi
            })
            .collect();
        black_box(out);
    });
    let values: [TensorData; 3] = [covs.into(), mus.into(), x.into()];
    b.graph(
        "W12",
        "1e4x16",
        work,
        &[&bc, &bm, &xv],
        &[&batched[0]],
        &values,
    );
}

/// W9: the value and gradient of `sum(log1p(exp(A @ w)))`, A 2000×500 (a log-density and
/// its gradient, as a sampler calls them), against the same computation by hand
/// (matrixmultiply for both products); W8d: building and compiling it.
fn w9(b: &mut Bench) {
    const M: usize = 2000;
    const K: usize = 500;
    let a = mat_f64(M, K, 9);
    let w = vec_f64(K, 10).mapv(|v| v * 0.003);
    let work = (2.0 * (M * K) as f64, 16.0 * (M * K) as f64);
    if b.wants("W9") {
        b.run("W9", "2000x500", "native", work, || {
            let (mut r, mut g) = (vec![0.0f64; M], vec![0.0f64; K]);
            // SAFETY: A is a standard-layout M×K array (row stride K, column stride 1), w
            // has K contiguous elements and r M: every pointer covers the elements the
            // strides address. The second product reads A transposed (strides swapped) into
            // g of K elements from s of M.
            unsafe {
                matrixmultiply::dgemm(
                    M,
                    K,
                    1,
                    1.0,
                    a.as_ptr(),
                    K as isize,
                    1,
                    w.as_ptr(),
                    1,
                    1,
                    0.0,
                    r.as_mut_ptr(),
                    1,
                    1,
                );
            }
            let cost: f64 = r.iter().map(|v| v.exp().ln_1p()).sum();
            let s: Vec<f64> = r.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
            // SAFETY: as above.
            unsafe {
                matrixmultiply::dgemm(
                    K,
                    M,
                    1,
                    1.0,
                    a.as_ptr(),
                    1,
                    K as isize,
                    s.as_ptr(),
                    1,
                    1,
                    0.0,
                    g.as_mut_ptr(),
                    1,
                    1,
                );
            }
            black_box((cost, g));
        });
        let (am, wv) = (matrix("A", Float64), vector("w", Float64));
        let cost = am.dot(&wv).exp().log1p().sum(All);
        let outputs = value_and_grad(&cost, &[&wv]).expect("grad");
        let refs: Vec<&Var> = outputs.iter().collect();
        let values: [TensorData; 2] = [a.clone().into(), w.clone().into()];
        b.graph("W9", "2000x500", work, &[&am, &wv], &refs, &values);
    }
    if b.wants("W8d") {
        b.run("W8d", "compile", "jit", (1.0, 0.0), || {
            let (am, wv) = (matrix("A", Float64), vector("w", Float64));
            let cost = am.dot(&wv).exp().log1p().sum(All);
            let outputs = value_and_grad(&cost, &[&wv]).expect("grad");
            let refs: Vec<&Var> = outputs.iter().collect();
            black_box(function(&[&am, &wv], &refs).compile().expect("compile"));
        });
    }
}

fn peers(b: &mut Bench) {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = format!("{root}/.venv-peers/bin/python");
    if !std::path::Path::new(&python).exists() {
        eprintln!("peers skipped: no {python}; run scripts/setup_peers.sh first");
        return;
    }
    let out = std::env::temp_dir().join(format!("tensorlift-peers-{}.json", std::process::id()));
    let mut command = Command::new(&python);
    command
        .arg(format!("{root}/benches/peers.py"))
        .env("PEERS_JSON", &out);
    if let Some(only) = &b.only {
        command.env("PEERS_ONLY", only.join(","));
    }
    let status = command.status();
    match status {
        Ok(s) if s.success() => {}
        other => {
            eprintln!("peers failed: {other:?}");
            return;
        }
    }
    let Ok(text) = std::fs::read_to_string(&out) else {
        eprintln!("peers wrote no results");
        return;
    };
    let _ = std::fs::remove_file(&out);
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str(&text) else {
        eprintln!("peers wrote invalid JSON");
        return;
    };
    for item in items {
        let text = |k: &str| item[k].as_str().map(str::to_string);
        let (Some(w), Some(s), Some(backend), Some(t), Some(runs)) = (
            text("workload"),
            text("size"),
            text("backend"),
            item["median_s"].as_f64(),
            item["runs"].as_u64(),
        ) else {
            continue;
        };
        let native = b
            .records
            .iter()
            .find(|r| r.workload == w && r.size == s && r.backend == "native")
            .map(|r| (r.elements, r.bytes))
            .unwrap_or((1.0, 0.0));
        b.records.push(Record {
            workload: w,
            size: s,
            backend,
            median_s: t,
            runs: runs as usize,
            elements: native.0,
            bytes: native.1,
        });
    }
}

fn print_table(records: &[Record]) {
    println!(
        "{:5} {:>10} {:16} {:>12} {:>7} {:>12} {:>9}  × native",
        "work", "size", "backend", "median", "runs", "elements/s", "GB/s"
    );
    for r in records {
        let native = records
            .iter()
            .find(|n| n.workload == r.workload && n.size == r.size && n.backend == "native")
            .map(|n| format!("{:.2}", r.median_s / n.median_s))
            .unwrap_or_default();
        let rate = r.elements / r.median_s;
        let gbs = if r.bytes > 0.0 {
            format!("{:.1}", r.bytes / r.median_s / 1e9)
        } else {
            String::new()
        };
        println!(
            "{:5} {:>10} {:16} {:>12} {:>7} {:>12.3e} {:>9}  {}",
            r.workload,
            r.size,
            r.backend,
            fmt_time(r.median_s),
            r.runs,
            rate,
            gbs,
            native
        );
    }
}

fn write_json(path: &str, records: &[Record]) -> std::io::Result<()> {
    let items: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            serde_json::json!({
                "workload": r.workload,
                "size": r.size,
                "backend": r.backend,
                "median_s": r.median_s,
                "runs": r.runs,
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&items).map_err(std::io::Error::other)?;
    std::fs::write(path, text + "\n")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value_of = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let json = value_of("--json");
    let only = value_of("--only").map(|s| s.split(',').map(str::to_string).collect());
    let mut b = Bench {
        records: Vec::new(),
        only,
    };
    eprintln!("tensorlift benchmark (medians; compare ratios within one run)");
    if b.wants("W1") {
        w1(&mut b, 1_000, "1e3");
        w1(&mut b, 10_000_000, "1e7");
    }
    if b.wants("W2") {
        w2(&mut b);
    }
    if b.wants("W3") {
        w3(&mut b);
    }
    if b.wants("W4a") || b.wants("W4b") {
        w4(&mut b);
    }
    if b.wants("W7") || b.wants("W7b") {
        w7(&mut b);
    }
    if b.wants("W8a") || b.wants("W8b") || b.wants("W8c") {
        w8(&mut b);
    }
    if ["W5", "W5t", "W5c", "W6", "W10"].iter().any(|w| b.wants(w)) {
        w5_w6_w10(&mut b);
    }
    if b.wants("W11") {
        w11(&mut b);
    }
    if b.wants("W9") || b.wants("W8d") {
        w9(&mut b);
    }
    if b.wants("W12") {
        w12(&mut b);
    }
    if b.wants("W13") || b.wants("W13b") {
        w13(&mut b);
    }
    if args.iter().any(|a| a == "--peers") {
        peers(&mut b);
    }
    print_table(&b.records);
    if let Some(path) = json {
        if let Err(e) = write_json(&path, &b.records) {
            eprintln!("could not write {path}: {e}");
            std::process::exit(1);
        }
    }
}

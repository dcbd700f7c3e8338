//! Criterion micro-benchmarks: compile time (rewrites + lowering + code generation, no
//! cached code), call overhead of compiled functions on tiny inputs, the vectorised math
//! (`vector_math`'s array functions against the libm / reference scalar loops they
//! replace), float32 arithmetic in float32 lanes against the same graph widened to f64,
//! and max against sum reductions (both memory-bound when max uses `maxpd`). The
//! scoreboard against peers is `benches/compare.rs`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use tensorlift::prelude::*;

fn compile_time(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    for (name, mode) in [("w1_jit", Mode::Jit), ("w1_reference", Mode::Reference)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let (x, y, z) = (
                    vector("x", Float64),
                    vector("y", Float64),
                    vector("z", Float64),
                );
                let out = x.exp() * &y + z.sin() * 0.5;
                // Dropped at the end of the iteration: the next compile finds no live code.
                black_box(
                    function(&[&x, &y, &z], &[&out])
                        .mode(mode.clone())
                        .compile()
                        .unwrap(),
                );
            })
        });
    }
    group.bench_function("w3_softmax_jit", |b| {
        b.iter(|| {
            let x = matrix("x", Float64);
            black_box(
                function(&[&x], &[&x.softmax(1)])
                    .mode(Mode::Jit)
                    .compile()
                    .unwrap(),
            );
        })
    });
    group.finish();
}

fn call_overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("call");
    let x = vector("x", Float64);
    let y = &x + 1.0;
    let args: Vec<TensorData> = vec![ndarray::array![1.0].into()];
    for (name, mode) in [
        ("x_plus_1_jit", Mode::Jit),
        ("x_plus_1_reference", Mode::Reference),
    ] {
        let f = function(&[&x], &[&y]).mode(mode).compile().unwrap();
        group.bench_function(name, |b| b.iter(|| black_box(f.call(&args).unwrap())));
    }
    // A 10-node graph of one-element inputs: per-call overhead of several steps
    // (kernels, reductions, a view, a running sum).
    let (p, q) = (vector("p", Float64), vector("q", Float64));
    let n3 = (&p + &q).exp().sum(None);
    let n5 = (&p * &n3).max(None);
    let n10 = ((q.get(idx![..;-1]) + &n5).cumsum(None).sin()) * 2.0;
    let ten = function(&[&p, &q], &[&n10]).compile().unwrap();
    let one: TensorData = ndarray::array![0.5].into();
    let pair = vec![one.clone(), one];
    group.bench_function("ten_nodes_jit", |b| {
        b.iter(|| black_box(ten.call(&pair).unwrap()))
    });
    let (a, b2, c2) = (
        vector("a", Float64),
        vector("b", Float64),
        vector("c", Float64),
    );
    let w1 = a.exp() * &b2 + c2.sin() * 0.5;
    let f = function(&[&a, &b2, &c2], &[&w1]).compile().unwrap();
    let v: TensorData = ndarray::Array1::linspace(-1.0, 1.0, 1000).into();
    let args = vec![v.clone(), v.clone(), v];
    group.bench_function("w1_1e3_jit", |b| {
        b.iter(|| black_box(f.call(&args).unwrap()))
    });
    group.finish();
}

/// A strip of 512 values (the JIT's strip length) through each array function, and
/// through the scalar loop the JIT used before (libm, or the reference's formula).
fn vector_math(c: &mut Criterion) {
    use tensorlift_runtime::elemwise::{sigmoid, softplus};
    use tensorlift_runtime::vector_math as vm;
    let mut group = c.benchmark_group("math_512");
    let x: Vec<f64> = (0..512).map(|i| (i as f64 - 256.0) * 0.03).collect();
    let positive: Vec<f64> = x.iter().map(|v| v.abs() + 0.01).collect();
    let mut y = vec![0.0; 512];
    type ArrayFn = fn(&[f64], &mut [f64]);
    type Case<'a> = (&'a str, ArrayFn, fn(f64) -> f64, &'a [f64]);
    let cases: [Case; 10] = [
        ("exp", vm::exp_array, f64::exp, &x),
        ("expm1", vm::expm1_array, f64::exp_m1, &x),
        ("exp2", vm::exp2_array, f64::exp2, &x),
        ("log2", vm::log2_array, f64::log2, &positive),
        ("tanh", vm::tanh_array, f64::tanh, &x),
        ("log", vm::log_array, f64::ln, &positive),
        ("log1p", vm::log1p_array, f64::ln_1p, &positive),
        ("sin", vm::sin_array, f64::sin, &x),
        ("sigmoid", vm::sigmoid_array, sigmoid, &x),
        ("softplus", vm::softplus_array, softplus, &x),
    ];
    for (name, array, scalar, input) in cases {
        group.bench_function(format!("{name}_array"), |b| {
            b.iter(|| array(black_box(input), &mut y))
        });
        group.bench_function(format!("{name}_scalar_loop"), |b| {
            b.iter(|| {
                for (o, v) in y.iter_mut().zip(black_box(input)) {
                    *o = scalar(*v);
                }
            })
        });
    }
    group.finish();
}

/// A float32 arithmetic graph in float32 lanes (f32x4) against the same graph on float64
/// data (f64x2 lanes), and max against sum over 1e6 elements.
fn kernels(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernels_1e6");
    let n = 1_000_000;
    for dtype in [Float32, Float64] {
        let (x, y) = (vector("x", dtype), vector("y", dtype));
        let out = ((&x * &y + 1.5) / (x.abs() + 1.0))
            .maximum(&(&y * 0.25))
            .sqr();
        let f = function(&[&x, &y], &[&out]).compile().unwrap();
        let v: TensorData = ndarray::Array1::linspace(-3.0f64, 3.0, n).into();
        let v = tensorlift_runtime::cast(&v, dtype);
        let args = vec![v.clone(), v];
        group.bench_function(format!("arith_{dtype}"), |b| {
            b.iter(|| black_box(f.call(&args).unwrap()))
        });
        // Math functions: float32 strips widen into the f64 array functions.
        let math = function(&[&x], &[&(x.exp() * 2.0 + x.tanh())])
            .compile()
            .unwrap();
        group.bench_function(format!("exp_tanh_{dtype}"), |b| {
            b.iter(|| black_box(math.call(&args[..1]).unwrap()))
        });
    }
    // A contiguous matrix with narrow rows: one loop over all its elements.
    let m = matrix("m", Float64);
    let narrow = function(&[&m], &[&(m.exp() * 2.0 + 1.0)])
        .compile()
        .unwrap();
    let rows: Vec<TensorData> =
        vec![ndarray::Array2::from_shape_fn((n / 4, 4), |(i, j)| (i + j) as f64 * 1e-6).into()];
    group.bench_function("exp_rows_of_4", |b| {
        b.iter(|| black_box(narrow.call(&rows).unwrap()))
    });
    let x = vector("x", Float64);
    let v: Vec<TensorData> = vec![ndarray::Array1::linspace(-3.0, 3.0, n).into()];
    // Whole-row reductions (one runtime call per contiguous row), and the same sums
    // along strided rows (the kernel's own 128-bit loop) for comparison.
    let reductions = [
        ("max", x.max(None)),
        ("sum", x.sum(None)),
        ("sum_of_squares", (&x * &x).sum(None)),
    ];
    for (name, out) in reductions {
        let f = function(&[&x], &[&out]).compile().unwrap();
        group.bench_function(name, |b| b.iter(|| black_box(f.call(&v).unwrap())));
    }
    let y = vector("y", Float64);
    let dot = function(&[&x, &y], &[&(&x * &y).sum(None)])
        .compile()
        .unwrap();
    let pair = vec![v[0].clone(), v[0].clone()];
    group.bench_function("dot", |b| b.iter(|| black_box(dot.call(&pair).unwrap())));
    let rows = function(&[&m], &[&m.sum([1])]).compile().unwrap();
    let square: ndarray::Array2<f64> =
        ndarray::Array2::from_shape_fn((1000, 1000), |(i, j)| (i * j) as f64);
    for (name, data) in [
        ("row_sums", square.clone()),
        ("row_sums_strided", square.reversed_axes()),
    ] {
        let arg: Vec<TensorData> = vec![data.into()];
        group.bench_function(name, |b| b.iter(|| black_box(rows.call(&arg).unwrap())));
    }
    // Float32 rows (whole-row calls, the one-pass logsumexp and softmax from float32
    // rows) and sums over the outer axis (row accumulations), 1000 rows of 1000.
    let square32 = tensorlift_runtime::cast(&square_data(), Float32);
    let m32 = matrix("m32", Float32);
    let float32_rows = [
        ("row_sums_f32", m32.sum([1])),
        ("row_max_f32", m32.max([1])),
        ("logsumexp_rows_f32", m32.logsumexp([1])),
        ("softmax_rows_f32", m32.softmax(1)),
    ];
    let arg32 = vec![square32];
    for (name, out) in float32_rows {
        let f = function(&[&m32], &[&out]).compile().unwrap();
        group.bench_function(name, |b| b.iter(|| black_box(f.call(&arg32).unwrap())));
    }
    let columns = function(&[&m], &[&m.sum([0])]).compile().unwrap();
    let arg64: Vec<TensorData> = vec![square_data()];
    group.bench_function("column_sums", |b| {
        b.iter(|| black_box(columns.call(&arg64).unwrap()))
    });
    group.finish();
}

/// A 1000 × 1000 float64 matrix of small values.
fn square_data() -> TensorData {
    ndarray::Array2::from_shape_fn((1000, 1000), |(i, j)| ((i * 7 + j) % 13) as f64 * 0.1).into()
}

/// Matrix products through the runtime's gemm (matrixmultiply, threaded for large ones).
fn gemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    group.sample_size(20);
    for dtype in [Float32, Float64] {
        let (a, b) = (matrix("a", dtype), matrix("b", dtype));
        let f = function(&[&a, &b], &[&a.dot(&b)]).compile().unwrap();
        for n in [256usize, 1000] {
            let m: TensorData =
                ndarray::Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j) % 13) as f64 * 0.1)
                    .into();
            let m = tensorlift_runtime::cast(&m, dtype);
            let args = vec![m.clone(), m];
            group.bench_function(format!("{dtype}_{n}"), |bench| {
                bench.iter(|| black_box(f.call(&args).unwrap()))
            });
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    compile_time,
    call_overhead,
    vector_math,
    kernels,
    gemm
);
criterion_main!(benches);

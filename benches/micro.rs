//! Criterion micro-benchmarks: compile time (rewrites + lowering + code generation, no
//! cached code) and call overhead of compiled functions on tiny inputs. The scoreboard
//! against peers is `benches/compare.rs`.

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

criterion_group!(benches, compile_time, call_overhead);
criterion_main!(benches);

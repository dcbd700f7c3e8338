//! Concurrency and resources (issue 16): one compiled function called from 8 threads on
//! different inputs gives the single-threaded results; functions compile concurrently;
//! compile/call/drop cycles do not grow resident memory (the code cache releases machine
//! code with its last function). CI runs a short soak; `TL_SOAK_CYCLES=20000` runs the
//! issue's (see `scripts/fuzz.sh`).

use std::sync::Arc;

use ndarray::Array1;
use tensorlift::prelude::*;

fn soak_cycles(default: usize) -> usize {
    std::env::var("TL_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn graph() -> (Var, Var) {
    let x = vector("x", Float64);
    let y = ((x.exp() * 0.5 + x.sin()).softmax(0) * &x).sum(None);
    (x, y)
}

fn input(seed: usize, n: usize) -> TensorData {
    Array1::from_iter((0..n).map(|i| ((i * 7 + seed * 13) % 101) as f64 * 0.03 - 1.5)).into()
}

#[test]
fn one_function_called_from_eight_threads_gives_single_threaded_results() {
    let calls = soak_cycles(100).min(1000);
    let (x, y) = graph();
    for mode in [Mode::Jit, Mode::Reference] {
        let f = Arc::new(function(&[&x], &[&y]).mode(mode).compile().unwrap());
        let expected: Vec<Vec<f64>> = (0..8)
            .map(|t| {
                (0..calls)
                    .map(|c| {
                        f.call(&[input(t * calls + c, 17 + c % 40)]).unwrap()[0]
                            .item_f64()
                            .unwrap()
                    })
                    .collect()
            })
            .collect();
        let expected = Arc::new(expected);
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let (f, expected) = (f.clone(), expected.clone());
                std::thread::spawn(move || {
                    for c in 0..calls {
                        let got = f.call(&[input(t * calls + c, 17 + c % 40)]).unwrap();
                        assert_eq!(
                            got[0].item_f64().unwrap(),
                            expected[t][c],
                            "thread {t} call {c}"
                        );
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}

#[test]
fn functions_compile_concurrently() {
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for k in 0..5 {
                    let x = vector("x", Float64);
                    let y = (x.exp() + (t * 5 + k) as f64).sum(None);
                    let f = function(&[&x], &[&y]).compile().unwrap();
                    let got = f.call(&[Array1::from_elem(3, 0.0).into()]).unwrap();
                    let want = 3.0 * (1.0 + (t * 5 + k) as f64);
                    assert_eq!(got[0].item_f64().unwrap(), want);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Resident memory in bytes (Linux), if it can be read.
fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn compile_call_drop_cycles_do_not_grow_memory() {
    let small = soak_cycles(400);
    let fused = small / 10;
    let cycle = |fuse: bool| {
        let x = vector("x", Float64);
        let y = if fuse {
            (x.exp() * 2.0 + x.sin()).sum(None)
        } else {
            &x + 1.0
        };
        let f = function(&[&x], &[&y]).compile().unwrap();
        f.call(&[Array1::from_elem(8, 0.5).into()]).unwrap();
    };
    // A while-scan: a native driver growing its trace.
    let scanned = || {
        let a = scalar("a", Float64);
        let w = scan(|s| {
            let next = s.state(0) + 1.0 / (s.state(0) + 2.0);
            s.until(&next.gt(30.0));
            vec![next]
        })
        .states(&[&a])
        .build();
        let f = function(&[&a], &[&w.trace(0)]).compile().unwrap();
        f.call(&[TensorData::scalar(0.0f64)]).unwrap();
    };
    // Warm up allocator pools and one-time tables before measuring.
    for _ in 0..20 {
        cycle(false);
        cycle(true);
        scanned();
    }
    let Some(before) = resident_bytes() else {
        return;
    };
    for _ in 0..small {
        cycle(false);
    }
    for _ in 0..fused {
        cycle(true);
        scanned();
    }
    let after = resident_bytes().unwrap_or(before);
    let grown = after.saturating_sub(before);
    assert!(
        grown < 5 << 20,
        "{small} small and {fused} fused and scan compile/call/drop cycles grew resident memory by {grown} bytes"
    );
}

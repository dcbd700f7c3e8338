//! Shared variables, updates and contexts (issue 21, DESIGN §10): values read and written
//! in the default context and in separate ones, updates applied after the call all at
//! once with sequential semantics (every update reads the values from before the call),
//! a failing call changing nothing, type errors, and the same function called from many
//! threads with separate contexts (equal to sequential calls) and with one shared context
//! (calls serialised: no update lost). Both backends.

use std::sync::Arc;

use ndarray::array;
use tensorlift::prelude::*;

const MODES: [Mode; 2] = [Mode::Reference, Mode::Jit];

#[test]
fn functions_read_shared_values_and_updates_follow_sequential_semantics() {
    for mode in MODES {
        let w = shared("w", array![1.0, 2.0].into());
        let (a, b) = (
            shared("a", TensorData::scalar(1.0f64)),
            shared("b", TensorData::scalar(10.0f64)),
        );
        let x = vector("x", Float64);
        // w ← w + x; a and b swap (each update reads the values from before the call).
        let f = function(&[&x], &[&(&w * &x).sum(All)])
            .updates(&[(&w, &(&w + &x)), (&a, &b), (&b, &a)])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let out = f.call(&[array![1.0, 1.0].into()]).unwrap();
        assert_eq!(out.len(), 1, "updates are not outputs");
        assert_eq!(out[0].item_f64().unwrap(), 3.0);
        assert_eq!(w.get_value().unwrap().to_f64_vec(), vec![2.0, 3.0]);
        assert_eq!(a.get_value().unwrap().item_f64().unwrap(), 10.0);
        assert_eq!(b.get_value().unwrap().item_f64().unwrap(), 1.0);
        let out = f.call(&[array![0.5, 0.5].into()]).unwrap();
        assert_eq!(out[0].item_f64().unwrap(), 2.5);
        assert_eq!(w.get_value().unwrap().to_f64_vec(), vec![2.5, 3.5]);
        assert_eq!(a.get_value().unwrap().item_f64().unwrap(), 1.0);
        // set_value between calls; a value of another shape fits a shape-free type.
        w.set_value(array![1.0, 1.0, 1.0].into()).unwrap();
        let e = f.call(&[array![1.0, 1.0].into()]).unwrap_err().to_string();
        assert!(
            e.contains("runtime broadcasting") || e.contains("size"),
            "{e}"
        );
        assert_eq!(
            w.get_value().unwrap().len(),
            3,
            "a failed call changes nothing"
        );
        let out = f.call(&[array![1.0, 2.0, 3.0].into()]).unwrap();
        assert_eq!(out[0].item_f64().unwrap(), 6.0);
    }
}

#[test]
fn a_failing_call_writes_no_update() {
    for mode in MODES {
        let (w, count) = (
            shared("w", TensorData::scalar(1.0f64)),
            shared("count", TensorData::scalar(0i64)),
        );
        let x = scalar("x", Float64);
        // The update is computed, then a check on the output fails.
        let checked = (&w + &x).check_that(&[x.ge(0.0)], "x must be non-negative");
        let f = function(&[&x], &[&checked])
            .updates(&[(&w, &(&w * 2.0)), (&count, &(&count + 1))])
            .mode(mode.clone())
            .compile()
            .unwrap();
        f.call(&[TensorData::scalar(1.0)]).unwrap();
        assert_eq!(w.get_value().unwrap().item_f64().unwrap(), 2.0);
        let e = f.call(&[TensorData::scalar(-1.0)]).unwrap_err().to_string();
        assert!(e.contains("x must be non-negative"), "{e}");
        assert_eq!(w.get_value().unwrap().item_f64().unwrap(), 2.0);
        assert_eq!(count.get_value().unwrap().item_f64().unwrap(), 1.0);
    }
}

#[test]
fn bad_updates_and_values_are_errors() {
    let w = shared("w", array![1.0, 2.0].into());
    let x = vector("x", Float64);
    let e = function(&[&x], &[&x])
        .updates(&[(&x, &(&x + 1.0))])
        .compile()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'x'") && e.contains("not a shared variable"),
        "{e}"
    );
    let e = function(&[], &[&w])
        .updates(&[(&w, &w.cast(Float32))])
        .compile()
        .unwrap_err()
        .to_string();
    assert!(e.contains("update of 'w'") && e.contains("float32"), "{e}");
    let e = function(&[], &[&w])
        .updates(&[(&w, &(&w + 1.0)), (&w, &(&w + 2.0))])
        .compile()
        .unwrap_err()
        .to_string();
    assert!(e.contains("updated twice"), "{e}");
    let e = w
        .set_value(TensorData::scalar(1.0f64))
        .unwrap_err()
        .to_string();
    assert!(e.contains("'w'") && e.contains("does not fit"), "{e}");
    assert!(x.get_value().is_err());
    // A static size is checked on every write.
    let fixed = shared_with_type(
        "fixed",
        array![1.0, 2.0].into(),
        TensorType::new(Float64, vec![Some(2)]),
    );
    assert!(fixed.set_value(array![1.0].into()).is_err());
}

#[test]
fn contexts_hold_their_own_values() {
    let w = shared("w", TensorData::scalar(5.0f64));
    let f = function(&[], &[&w])
        .updates(&[(&w, &(&w + 1.0))])
        .compile()
        .unwrap();
    let ctx = SharedContext::new();
    // Not set in ctx: the default value, copied on the first write.
    assert_eq!(w.get_value_in(&ctx).unwrap().item_f64().unwrap(), 5.0);
    assert_eq!(f.call_in(&ctx, &[]).unwrap()[0].item_f64().unwrap(), 5.0);
    assert_eq!(f.call_in(&ctx, &[]).unwrap()[0].item_f64().unwrap(), 6.0);
    assert_eq!(w.get_value_in(&ctx).unwrap().item_f64().unwrap(), 7.0);
    assert_eq!(
        w.get_value().unwrap().item_f64().unwrap(),
        5.0,
        "default untouched"
    );
    w.set_value_in(&ctx, TensorData::scalar(100.0f64)).unwrap();
    assert_eq!(f.call_in(&ctx, &[]).unwrap()[0].item_f64().unwrap(), 100.0);
    assert_eq!(f.call(&[]).unwrap()[0].item_f64().unwrap(), 5.0);
    assert_eq!(w.get_value().unwrap().item_f64().unwrap(), 6.0);
}

/// The recurrence every thread runs: s ← 0.5·s + x, returning s·x.
fn recurrence(mode: Mode) -> (Var, Function) {
    let s = shared("s", TensorData::scalar(0.0f64));
    let x = scalar("x", Float64);
    let f = function(&[&x], &[&(&s * &x)])
        .updates(&[(&s, &(&s * 0.5 + &x))])
        .mode(mode)
        .compile()
        .unwrap();
    (s, f)
}

#[test]
fn threads_with_separate_contexts_match_sequential_calls() {
    for mode in MODES {
        let (s, f) = recurrence(mode);
        let f = Arc::new(f);
        let inputs = |t: usize, i: usize| TensorData::scalar(((t * 7 + i) % 13) as f64 - 6.0);
        // Sequential: one context per thread's sequence, run one after another.
        let sequential: Vec<(Vec<f64>, f64)> = (0..8)
            .map(|t| {
                let ctx = SharedContext::new();
                let outs = (0..1000)
                    .map(|i| {
                        f.call_in(&ctx, &[inputs(t, i)]).unwrap()[0]
                            .item_f64()
                            .unwrap()
                    })
                    .collect();
                (outs, s.get_value_in(&ctx).unwrap().item_f64().unwrap())
            })
            .collect();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (f, s) = (f.clone(), s.clone());
                std::thread::spawn(move || {
                    let ctx = SharedContext::new();
                    let outs: Vec<f64> = (0..1000)
                        .map(|i| {
                            f.call_in(&ctx, &[inputs(t, i)]).unwrap()[0]
                                .item_f64()
                                .unwrap()
                        })
                        .collect();
                    (outs, s.get_value_in(&ctx).unwrap().item_f64().unwrap())
                })
            })
            .collect();
        for (t, handle) in threads.into_iter().enumerate() {
            assert_eq!(handle.join().unwrap(), sequential[t], "thread {t}");
        }
        assert_eq!(
            s.get_value().unwrap().item_f64().unwrap(),
            0.0,
            "default untouched"
        );
    }
}

#[test]
fn calls_in_one_context_are_serialised() {
    for mode in MODES {
        let count = shared("count", TensorData::scalar(0i64));
        let f = Arc::new(
            function(&[], &[&count])
                .updates(&[(&count, &(&count + 1))])
                .mode(mode)
                .compile()
                .unwrap(),
        );
        let ctx = Arc::new(SharedContext::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (f, ctx) = (f.clone(), ctx.clone());
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        f.call_in(&ctx, &[]).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            count.get_value_in(&ctx).unwrap().item_f64().unwrap(),
            8000.0
        );
    }
}

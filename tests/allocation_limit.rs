//! Fault injection for output allocation (issue 16): with the process's output limit set
//! low (`tensorlift::set_output_limit`; `TL_MAX_OUTPUT_BYTES` sets it for a whole run),
//! a call whose outputs exceed it fails with an error naming the node and the bytes, on
//! both backends, and the same compiled function works again once the limit allows it.
//! Its own test binary: the limit is process-wide.

use ndarray::Array1;
use tensorlift::prelude::*;
use tensorlift::set_output_limit;

#[test]
fn a_refused_output_is_an_error_and_the_function_stays_usable() {
    let x = vector("x", Float64);
    let y = x.exp() * 2.0 + 1.0;
    let z = y.sum(None);
    let modes = [
        Mode::Reference,
        Mode::Jit,
        Mode::Reference.without_rewrites(),
        Mode::Jit.without_rewrites(),
    ];
    for mode in modes {
        let f = function(&[&x], &[&y, &z])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let small = Array1::from_iter((0..50).map(|i| i as f64 * 0.01));
        let large = Array1::from_iter((0..500).map(|i| i as f64 * 0.01));
        set_output_limit(Some(1000));
        let err = f.call(&[large.clone().into()]).unwrap_err().to_string();
        assert!(
            err.contains("bytes") && err.contains("limit"),
            "{mode:?}: {err}"
        );
        // Under the limit, the same function still computes.
        let out = f.call(&[small.clone().into()]).unwrap();
        let want: f64 = small.iter().map(|v| v.exp() * 2.0 + 1.0).sum();
        assert!((out[1].item_f64().unwrap() - want).abs() <= 1e-12 * want);
        set_output_limit(None);
        let out = f.call(&[large.clone().into()]).unwrap();
        let want: f64 = large.iter().map(|v| v.exp() * 2.0 + 1.0).sum();
        assert!((out[1].item_f64().unwrap() - want).abs() <= 1e-12 * want);
    }
}

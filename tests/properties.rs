//! Property tests of the reference backend against independent oracles (plain loops and
//! ndarray), over random shapes, axes and indices.

use ndarray::{Array1, ArrayD, Axis, IxDyn};
use proptest::prelude::*;
use tensorlift::prelude::*;

fn run1(
    inputs: &[&Var],
    out: &Var,
    values: &[TensorData],
) -> Result<TensorData, tensorlift::Error> {
    let f = function(inputs, &[out]).mode(Mode::Reference).compile()?;
    Ok(f.call(values)?.remove(0))
}

/// Python's `list(range(n))[start:stop:step]`, written as the language reference states it.
fn python_slice(n: i64, start: Option<i64>, stop: Option<i64>, step: i64) -> Vec<i64> {
    let norm = |v: i64| if v < 0 { v + n } else { v };
    if step > 0 {
        let s = start.map_or(0, |v| norm(v).clamp(0, n));
        let e = stop.map_or(n, |v| norm(v).clamp(0, n));
        (s..e).step_by(step as usize).collect()
    } else {
        let s = start.map_or(n - 1, |v| norm(v).clamp(-1, n - 1));
        let e = stop.map_or(-1, |v| norm(v).clamp(-1, n - 1));
        let mut out = Vec::new();
        let mut i = s;
        while i > e {
            out.push(i);
            i += step;
        }
        out
    }
}

fn shape3() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..4, 3)
}

proptest! {
    #[test]
    fn basic_slices_follow_python(
        n in 0i64..12,
        start in prop::option::of(-15i64..15),
        stop in prop::option::of(-15i64..15),
        step in prop_oneof![-4i64..0, 1i64..5],
    ) {
        let x = tensor("x", Int64, [None]);
        let s = Idx::slice(start.map(Into::into), stop.map(Into::into), Some(step.into()));
        let values = Array1::from_iter(0..n);
        let out = run1(&[&x], &x.get(vec![s]), &[values.into()]).unwrap();
        prop_assert_eq!(out.to_i64_vec().unwrap(), python_slice(n, start, stop, step));
    }

    #[test]
    fn sums_over_any_axes_match_ndarray(shape in shape3(), mask in prop::collection::vec(any::<bool>(), 3)) {
        let n: usize = shape.iter().product();
        let data = ArrayD::from_shape_vec(IxDyn(&shape), (0..n).map(|v| (v as f64).sin()).collect()).unwrap();
        let axes: Vec<isize> = (0..3).filter(|a| mask[*a]).map(|a| a as isize).collect();
        let x = tensor("x", Float64, [None, None, None]);
        let out = run1(&[&x], &x.sum(Some(&axes[..])), &[data.clone().into()]).unwrap();
        let mut want = data;
        for a in axes.iter().rev() {
            want = want.sum_axis(Axis(*a as usize));
        }
        let got = out.into_array::<f64>().unwrap();
        prop_assert_eq!(got.shape(), want.shape());
        for (g, w) in got.iter().zip(want.iter()) {
            prop_assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0));
        }
    }

    #[test]
    fn transpose_then_inverse_is_identity(shape in shape3(), perm in Just(vec![0isize, 1, 2]).prop_shuffle()) {
        let n: usize = shape.iter().product();
        let data = ArrayD::from_shape_vec(IxDyn(&shape), (0..n as i32).collect()).unwrap();
        let mut inverse = vec![0isize; 3];
        for (i, p) in perm.iter().enumerate() {
            inverse[*p as usize] = i as isize;
        }
        let x = tensor("x", Int32, [None, None, None]);
        let t = x.transpose(&perm);
        let out = run1(&[&x], &t.transpose(&inverse), &[data.clone().into()]).unwrap();
        prop_assert_eq!(out.into_array::<i32>().unwrap(), data.clone());
        let moved = run1(&[&x], &t, &[data.clone().into()]).unwrap().into_array::<i32>().unwrap();
        let perm_usize: Vec<usize> = perm.iter().map(|p| *p as usize).collect();
        prop_assert_eq!(moved, data.permuted_axes(IxDyn(&perm_usize)));
    }

    #[test]
    fn set_then_get_returns_the_value(
        n in 1i64..10,
        start in prop::option::of(-12i64..12),
        step in prop_oneof![-3i64..0, 1i64..4],
        fill in -100.0f64..100.0,
    ) {
        let x = tensor("x", Float64, [None]);
        let idx = || vec![Idx::slice(start.map(Into::into), None, Some(step.into()))];
        let written = x.set(idx(), fill);
        let values: TensorData = Array1::<f64>::zeros(n as usize).into();
        let region = run1(&[&x], &written.get(idx()), std::slice::from_ref(&values)).unwrap();
        prop_assert!(region.into_array::<f64>().unwrap().iter().all(|v| *v == fill));
        let whole = run1(&[&x], &written, &[values]).unwrap().into_array::<f64>().unwrap();
        let touched = python_slice(n, start, None, step);
        for (i, v) in whole.iter().enumerate() {
            prop_assert_eq!(*v, if touched.contains(&(i as i64)) { fill } else { 0.0 });
        }
    }

    #[test]
    fn integer_array_gathers_and_accumulates(
        n in 1usize..8,
        raw in prop::collection::vec(-20i64..20, 0..10),
    ) {
        let x = tensor("x", Float64, [None]);
        let i = tensor("i", Int64, [None]);
        let values = Array1::from_iter((0..n).map(|v| v as f64 * 1.5));
        let index = Array1::from_vec(raw.clone());
        let in_range = raw.iter().all(|v| *v >= -(n as i64) && *v < n as i64);
        let gathered = run1(&[&x, &i], &x.get(vec![(&i).into()]), &[values.clone().into(), index.clone().into()]);
        let acc = run1(&[&x, &i], &x.inc(vec![(&i).into()], 1.0), &[values.clone().into(), index.into()]);
        prop_assert_eq!(gathered.is_ok(), in_range);
        prop_assert_eq!(acc.is_ok(), in_range);
        if in_range {
            let pos = |v: i64| if v < 0 { (v + n as i64) as usize } else { v as usize };
            let want: Vec<f64> = raw.iter().map(|v| values[pos(*v)]).collect();
            prop_assert_eq!(gathered.unwrap().into_array::<f64>().unwrap().into_raw_vec_and_offset().0, want);
            let mut counts = values.clone();
            for v in &raw {
                counts[pos(*v)] += 1.0;
            }
            prop_assert_eq!(acc.unwrap().into_array::<f64>().unwrap(), counts.into_dyn());
        }
    }

    #[test]
    fn reshape_round_trips(a in 1usize..5, b in 1usize..5, c in 1usize..5) {
        let data = ArrayD::from_shape_vec(IxDyn(&[a, b, c]), (0..(a * b * c) as i64).collect()).unwrap();
        let x = tensor("x", Int64, [None, None, None]);
        let y = x.reshape(&[(c * a) as i64, -1]).reshape(&[a as i64, b as i64, c as i64]);
        let out = run1(&[&x], &y, &[data.clone().into()]).unwrap();
        prop_assert_eq!(out.into_array::<i64>().unwrap(), data);
    }
}

//! DESIGN §3: no runtime broadcasting. A dimension broadcasts only when its static size is
//! 1; otherwise sizes must match at run time and the error names the op, the input, the
//! dimension and both sizes, and suggests a static shape of 1 or `broadcast_to`.

use ndarray::array;
use tensorlift::prelude::*;

fn assert_refused(err: tensorlift::Error, op: &str, input: &str, sizes: (usize, usize)) {
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{op}:")), "{msg}");
    assert!(msg.contains(input), "{msg}");
    assert!(
        msg.contains(&format!("size {}", sizes.0)) && msg.contains(&format!("size {}", sizes.1)),
        "{msg}"
    );
    assert!(
        msg.contains("runtime broadcasting is not supported"),
        "{msg}"
    );
    assert!(
        msg.contains("static size of 1") && msg.contains("broadcast_to"),
        "{msg}"
    );
}

#[test]
fn elemwise_refuses_runtime_broadcasting() {
    let x = tensor("x", Float64, [None]);
    let y = tensor("y", Float64, [None]);
    let f = function(&[&x, &y], &[&(&x + &y)]).compile().unwrap();
    let err = f
        .call(&[array![1.0, 2.0, 3.0].into(), array![10.0].into()])
        .unwrap_err();
    assert_refused(err, "Add", "input 1 has size 1 in dimension 0", (1, 3));
    // Equal sizes are fine.
    let ok = f
        .call(&[array![1.0, 2.0].into(), array![10.0, 20.0].into()])
        .unwrap();
    assert_eq!(
        ok[0].as_array::<f64>().unwrap().as_slice().unwrap(),
        &[11.0, 22.0]
    );
}

#[test]
fn elemwise_broadcasts_static_size_one() {
    let x = tensor("x", Float64, [None, None]);
    let y = tensor("y", Float64, [Some(1), None]);
    let f = function(&[&x, &y], &[&(&x * &y)]).compile().unwrap();
    let out = f
        .call(&[
            array![[1.0, 2.0], [3.0, 4.0]].into(),
            array![[10.0, 100.0]].into(),
        ])
        .unwrap();
    assert_eq!(
        out[0].as_array::<f64>().unwrap(),
        array![[10.0, 200.0], [30.0, 400.0]].into_dyn()
    );
}

#[test]
fn alloc_refuses_runtime_broadcasting() {
    let v = tensor("v", Float64, [None]);
    let n = scalar("n", Int64);
    let out = v.broadcast_to(&[(&n).into(), 3.into()]);
    let f = function(&[&v, &n], &[&out]).compile().unwrap();
    let good = f
        .call(&[array![1.0, 2.0, 3.0].into(), TensorData::scalar(2i64)])
        .unwrap();
    assert_eq!(good[0].shape(), &[2, 3]);
    let err = f
        .call(&[array![1.0].into(), TensorData::scalar(2i64)])
        .unwrap_err();
    assert_refused(
        err,
        "Alloc",
        "the value (input 0) has size 1 in dimension 0",
        (1, 3),
    );
}

#[test]
fn set_and_inc_subtensor_refuse_runtime_broadcasting() {
    let x = tensor("x", Float64, [None]);
    let y = tensor("y", Float64, [None]);
    for out in [x.set(idx![1..4], &y), x.inc(idx![1..4], &y)] {
        let f = function(&[&x, &y], &[&out]).compile().unwrap();
        let err = f
            .call(&[array![0.0, 0.0, 0.0, 0.0, 0.0].into(), array![7.0].into()])
            .unwrap_err();
        let op = out.owner().unwrap().0.op.to_string();
        assert_refused(
            err,
            &op,
            "the value (input 1) has size 1 in dimension 0",
            (1, 3),
        );
    }
    // A static size of 1 broadcasts into the region.
    let y1 = tensor("y1", Float64, [Some(1)]);
    let f = function(&[&x, &y1], &[&x.set(idx![1..4], &y1)])
        .compile()
        .unwrap();
    let out = f
        .call(&[array![0.0, 0.0, 0.0, 0.0, 0.0].into(), array![7.0].into()])
        .unwrap();
    assert_eq!(
        out[0].as_array::<f64>().unwrap().as_slice().unwrap(),
        &[0.0, 7.0, 7.0, 7.0, 0.0]
    );
}

#[test]
fn advanced_writes_and_index_arrays_refuse_runtime_broadcasting() {
    let x = tensor("x", Float64, [None]);
    let i = tensor("i", Int64, [None]);
    let y = tensor("y", Float64, [None]);
    let f = function(&[&x, &i, &y], &[&x.inc(vec![(&i).into()], &y)])
        .compile()
        .unwrap();
    let err = f
        .call(&[
            array![0.0, 0.0, 0.0].into(),
            array![0i64, 2].into(),
            array![1.0].into(),
        ])
        .unwrap_err();
    assert_refused(
        err,
        "AdvancedIncSubtensor{array}",
        "the value (input 1)",
        (1, 2),
    );
    let m = tensor("m", Float64, [None, None]);
    let r = tensor("r", Int64, [None]);
    let c = tensor("c", Int64, [None]);
    let g = function(&[&m, &r, &c], &[&m.get(vec![(&r).into(), (&c).into()])])
        .compile()
        .unwrap();
    let err = g
        .call(&[
            array![[1.0, 2.0], [3.0, 4.0]].into(),
            array![0i64, 1].into(),
            array![1i64].into(),
        ])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("runtime broadcasting is not supported"),
        "{err}"
    );
}

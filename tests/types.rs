//! Types, static shapes and broadcasting at graph-build time (DESIGN §3), the seed's cases,
//! and `clone_replace` with golden dprint output.

use expect_test::expect;
use tensorlift::prelude::*;
use tensorlift::GraphError;

fn printed(v: &Var) -> String {
    dprint(&[v]).expect("printable graph")
}

#[test]
fn contradictory_tensor_type_is_rejected_with_the_reason() {
    let err = TensorType::with_broadcastable(Float64, &[Some(1)], &[false]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("dimension 0 has static size 1 but broadcastable=false"),
        "{msg}"
    );
    assert!(
        msg.contains("broadcastable exactly when its static size is 1"),
        "{msg}"
    );
}

#[test]
fn broadcastable_is_derived_from_static_size_one() {
    let t = TensorType::with_broadcastable(Float64, &[None, None], &[true, false]).unwrap();
    assert_eq!(t.shape, vec![Some(1), None]);
    let x = tensor("x", Float64, [Some(1), None, Some(3)]);
    assert_eq!(x.ty().broadcastable(), vec![true, false, false]);
}

#[test]
fn x_plus_x_keeps_static_size_one() {
    let x = tensor("x", Float64, [Some(1)]);
    let y = &x + &x;
    assert_eq!(y.ty().to_string(), "Vector(float64, shape=(1,))");
    assert_eq!(y.ty().broadcastable(), vec![true]);
}

#[test]
fn elemwise_output_shape_follows_the_static_rule() {
    let a = tensor("a", Float64, [None, Some(1), Some(4)]);
    let b = tensor("b", Float64, [Some(3), Some(1), None]);
    assert_eq!((&a * &b).static_shape(), &[Some(3), Some(1), Some(4)]);
    let c = tensor("c", Float64, [Some(5)]);
    let d = tensor("d", Float64, [Some(6)]);
    let err = (&c + &d).check().unwrap_err().to_string();
    assert!(err.starts_with("Add:"), "{err}");
    assert!(
        err.contains("static size 5 in input 0 and 6 in input 1"),
        "{err}"
    );
}

#[test]
fn type_errors_propagate_through_later_ops_and_fail_compile() {
    let c = tensor("c", Float64, [Some(5)]);
    let d = tensor("d", Float64, [Some(6)]);
    let bad = (&c + &d).exp().sum(None) * 2.0;
    let err = bad.check().unwrap_err();
    assert!(err.to_string().contains("Add:"), "{err}");
    let compiled = function(&[&c, &d], &[&bad]).compile();
    assert!(matches!(
        compiled,
        Err(tensorlift::Error::Graph(GraphError::Op { .. }))
    ));
}

#[test]
fn weak_literals_keep_the_tensor_dtype() {
    let x = tensor("x", Float32, [None]);
    assert_eq!((&x * 2.0).dtype(), Float32);
    assert_eq!((2.0 - &x.sin()).dtype(), Float32);
    assert_eq!((2 - &x).dtype(), Float32);
    let i = tensor("i", Int8, [None]);
    assert_eq!((&i + 3).dtype(), Int8);
    assert_eq!((&i + 0.5).dtype(), Float64);
    assert_eq!((&i / 2).dtype(), Float64);
    let err = (&i + 300).check().unwrap_err().to_string();
    assert!(err.contains("300") && err.contains("int8"), "{err}");
}

#[test]
fn array_array_promotion_follows_numpy() {
    let a = tensor("a", Int8, [None]);
    let b = tensor("b", UInt8, [None]);
    assert_eq!((&a + &b).dtype(), Int16);
    let f = tensor("f", Float32, [None]);
    let i32v = tensor("i", Int32, [None]);
    assert_eq!((&f * &i32v).dtype(), Float64);
    assert_eq!(f.exp().dtype(), Float32);
    assert_eq!(a.exp().dtype(), Float32);
    assert_eq!(i32v.exp().dtype(), Float64);
    assert_eq!(a.lt(&b).dtype(), Bool);
}

#[test]
fn x_plus_5_prints_in_the_seed_format() {
    let x = tensor("x", Float64, [None]);
    let y = &x + 5.0;
    expect![[r#"
        Add [id A] <Vector(float64, shape=(?,))>
         ├─ x [id B] <Vector(float64, shape=(?,))>
         └─ ExpandDims{axis=0} [id C] <Vector(float64, shape=(1,))>
            └─ 5.0 [id D] <Scalar(float64, shape=())>
    "#]]
    .assert_eq(&printed(&y));
}

#[test]
fn clone_replace_with_a_more_specific_type_recomputes_downstream_types() {
    let x = tensor("x", Float64, [None]);
    let y = &x + 5.0;
    let x1 = tensor("x1", Float64, [Some(1)]);
    let out = clone_replace(&[&y], &[(&x, &x1)], false).unwrap();
    expect![[r#"
        Add [id A] <Vector(float64, shape=(1,))>
         ├─ x1 [id B] <Vector(float64, shape=(1,))>
         └─ ExpandDims{axis=0} [id C] <Vector(float64, shape=(1,))>
            └─ 5.0 [id D] <Scalar(float64, shape=())>
    "#]]
    .assert_eq(&printed(&out[0]));
    assert!(!printed(&out[0]).contains("Unbroadcast"));
    // The original graph is untouched.
    assert_eq!(y.ty().shape, vec![None]);
}

#[test]
fn clone_replace_with_a_less_specific_type_inserts_specify_shape() {
    let x = tensor("x", Float64, [Some(1)]);
    let y = &x * 2.0;
    let loose = tensor("loose", Float64, [None]);
    let out = clone_replace(&[&y], &[(&x, &loose)], false).unwrap();
    expect![[r#"
        Mul [id A] <Vector(float64, shape=(1,))>
         ├─ SpecifyShape{(1,)} [id B] <Vector(float64, shape=(1,))>
         │  └─ loose [id C] <Vector(float64, shape=(?,))>
         └─ ExpandDims{axis=0} [id D] <Vector(float64, shape=(1,))>
            └─ 2.0 [id E] <Scalar(float64, shape=())>
    "#]]
    .assert_eq(&printed(&out[0]));
    // The inserted check runs: a value of the wrong size is refused at call time.
    let f = function(&[&loose], &[&out[0]]).compile().unwrap();
    let ok = f.call(&[ndarray::array![3.0].into()]).unwrap();
    assert_eq!(ok[0].as_array::<f64>().unwrap()[[0]], 6.0);
    let err = f
        .call(&[ndarray::array![1.0, 2.0].into()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SpecifyShape") && err.contains("size 2"),
        "{err}"
    );
}

#[test]
fn clone_replace_with_an_incompatible_type_is_an_error_naming_both_types() {
    let x = tensor("x", Float64, [Some(3)]);
    let y = x.exp();
    for (bad, reason) in [
        (tensor("f32", Float32, [Some(3)]), "dtypes differ"),
        (
            tensor("m", Float64, [Some(3), None]),
            "numbers of dimensions differ",
        ),
        (tensor("four", Float64, [Some(4)]), "static size 4 vs 3"),
    ] {
        let err = clone_replace(&[&y], &[(&x, &bad)], false).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("cannot replace x of type Vector(float64, shape=(3,))"),
            "{msg}"
        );
        assert!(msg.contains(reason), "{msg}");
    }
}

#[test]
fn strict_clone_replace_needs_the_exact_type() {
    let x = tensor("x", Float64, [None]);
    let y = x.exp();
    let exact = tensor("e", Float64, [None]);
    assert!(clone_replace(&[&y], &[(&x, &exact)], true).is_ok());
    let specific = tensor("s", Float64, [Some(1)]);
    let err = clone_replace(&[&y], &[(&x, &specific)], true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("strict"), "{err}");
}

#[test]
fn clone_replace_keeps_multi_output_nodes_together() {
    let x = tensor("x", Float64, [None]);
    let parts = split(&x, &[2, 3], 0).unwrap();
    let total = parts[0].sum(None) + parts[1].sum(None);
    let x5 = tensor("x5", Float64, [Some(5)]);
    let out = clone_replace(&[&total], &[(&x, &x5)], false).unwrap();
    let text = printed(&out[0]);
    assert_eq!(text.matches("Split{axis=0, n=2}.0").count(), 1, "{text}");
    assert_eq!(text.matches("Split{axis=0, n=2}.1").count(), 1, "{text}");
    let f = function(&[&x5], &out.iter().collect::<Vec<_>>())
        .compile()
        .unwrap();
    let r = f
        .call(&[ndarray::array![1.0, 2.0, 3.0, 4.0, 5.0].into()])
        .unwrap();
    assert_eq!(r[0].as_array::<f64>().unwrap().sum(), 15.0);
}

#[test]
fn static_shapes_of_shape_ops() {
    let x = tensor("x", Float64, [Some(2), Some(3), Some(4)]);
    assert_eq!(x.reshape(&[4, -1]).static_shape(), &[Some(4), Some(6)]);
    assert!(x.reshape(&[5, -1]).check().is_err());
    assert!(x.reshape(&[-1, -1]).check().is_err());
    assert_eq!(
        x.transpose(&[2, 0, 1]).static_shape(),
        &[Some(4), Some(2), Some(3)]
    );
    assert_eq!(
        x.get(idx![1.., ..;-1, 0]).static_shape(),
        &[Some(1), Some(3)]
    );
    assert_eq!(
        x.get(idx![5..1;-2]).static_shape(),
        &[Some(0), Some(3), Some(4)]
    );
    assert!(
        x.get(idx![2]).check().is_err(),
        "constant index out of range"
    );
    assert_eq!(x.sum([0, -1]).static_shape(), &[Some(3)]);
    assert_eq!(x.argmax(None).static_shape(), &[] as &[Option<usize>]);
    assert_eq!(x.cumsum(None).static_shape(), &[Some(24)]);
    let v = tensor("v", Float64, [None]);
    assert_eq!(
        concatenate(&[x.reshape(&[-1]), v.clone()], 0).static_shape(),
        &[None]
    );
    assert_eq!(
        arange_dtype(0i64, 10i64, 3i64, Int64).static_shape(),
        &[Some(4)]
    );
    let b = tensor("b", Float64, [Some(1), Some(3)]).broadcast_to(&[5.into(), 3.into()]);
    assert_eq!(b.static_shape(), &[Some(5), Some(3)]);
    let bad = tensor("c", Float64, [Some(2)]).broadcast_to(&[3.into()]);
    assert!(bad
        .check()
        .unwrap_err()
        .to_string()
        .contains("only dimensions of static size 1 broadcast"));
}

#[test]
fn dimshuffle_only_drops_static_size_one_dimensions() {
    let x = tensor("x", Float64, [None, Some(1)]);
    assert_eq!(x.squeeze(None).static_shape(), &[None]);
    let err = x.dimshuffle(&[Some(1)]).check().unwrap_err().to_string();
    assert!(err.contains("cannot drop dimension 0"), "{err}");
    assert_eq!(
        x.dimshuffle(&[Some(1), None, Some(0)]).to_string_op(),
        "DimShuffle{order=[1,x,0]}"
    );
}

trait OpName {
    fn to_string_op(&self) -> String;
}

impl OpName for Var {
    fn to_string_op(&self) -> String {
        self.owner()
            .map(|(n, _)| n.op.to_string())
            .unwrap_or_default()
    }
}

#[test]
fn invalid_axes_and_indices_are_graph_errors_naming_the_op() {
    let x = tensor("x", Float64, [None, None]);
    let err = x.sum([2]).check().unwrap_err().to_string();
    assert!(err.starts_with("Sum: axis 2 is out of range"), "{err}");
    let err = x.sum([0, -2]).check().unwrap_err().to_string();
    assert!(err.contains("repeated axis"), "{err}");
    let f = tensor("f", Float64, [None]);
    let err = x.get(vec![Idx::from(&f)]).check().unwrap_err().to_string();
    assert!(err.contains("must be integer or bool"), "{err}");
    let err = x
        .dot(&tensor("t", Float64, [None, None, None]))
        .check()
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("Dot: input 1 must be a vector or a matrix"),
        "{err}"
    );
    let i = tensor("i", Int8, [None]);
    let err = i.inc(idx![..], &f).check().unwrap_err().to_string();
    assert!(
        err.contains("cannot add a float64 value into a int8 tensor"),
        "{err}"
    );
}

#[test]
fn to_dot_draws_every_node() {
    let x = tensor("x", Float64, [None]);
    let y = (&x.exp() + 1.0).sum(None);
    let dot = to_dot(&[&y]).unwrap();
    assert!(dot.starts_with("digraph tensorlift {"));
    for op in ["Exp", "Add", "Sum{axes=[0]}", "ExpandDims{axis=0}"] {
        assert!(
            dot.contains(&format!("label=\"{op}\"")),
            "{op} missing in\n{dot}"
        );
    }
    assert!(dot.contains("fillcolor=palegreen"));
}

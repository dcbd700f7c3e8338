//! `FunctionGraph`: the mutable arena form that rewrites and backends work on (DESIGN §2).

use tensorlift::ir::{Client, FunctionGraph, Op, ScalarOp};
use tensorlift::prelude::*;
use tensorlift::GraphError;

fn graph() -> (Var, FunctionGraph) {
    let x = tensor("x", Float64, [None]);
    let y = (x.exp() + x.sin()).named("y");
    let fg = FunctionGraph::new(std::slice::from_ref(&x), &[y]).unwrap();
    (x, fg)
}

#[test]
fn import_builds_clients_and_a_valid_graph() {
    let (_, fg) = graph();
    fg.check_integrity().unwrap();
    assert_eq!(fg.n_nodes(), 3);
    let x = fg.inputs()[0];
    assert_eq!(fg.clients(x).len(), 2, "x feeds Exp and Sin");
    let out = fg.outputs()[0];
    assert_eq!(
        fg.clients(out).copied().collect::<Vec<_>>(),
        [Client::Output(0)]
    );
    assert_eq!(fg.describe(out), "y");
    let order = fg.toposort();
    assert_eq!(order.len(), 3);
    let last = fg.node(*order.last().unwrap()).unwrap();
    assert_eq!(last.op, Op::Elemwise(ScalarOp::Add));
}

#[test]
fn replace_redirects_clients_and_prunes_dead_nodes() {
    let (_, mut fg) = graph();
    let x = fg.inputs()[0];
    let add = fg.owner(fg.outputs()[0]).unwrap().0;
    let sin_out = fg.node(add).unwrap().inputs[1];
    let cos = fg.add_node(Op::Elemwise(ScalarOp::Cos), vec![x]).unwrap()[0];
    fg.replace(sin_out, cos).unwrap();
    fg.check_integrity().unwrap();
    assert_eq!(fg.n_nodes(), 3, "Sin was pruned, Cos added");
    assert!(fg.to_string().contains("Cos") && !fg.to_string().contains("Sin"));
}

#[test]
fn replace_checks_types_and_refuses_cycles() {
    let (_, mut fg) = graph();
    let x = fg.inputs()[0];
    let out = fg.outputs()[0];
    let as_f32 = fg
        .add_node(Op::Elemwise(ScalarOp::Cast(Float32)), vec![x])
        .unwrap()[0];
    let err = fg.replace(out, as_f32).unwrap_err();
    assert!(matches!(err, GraphError::Replace { .. }), "{err}");
    assert!(err.to_string().contains("dtypes differ"), "{err}");
    let exp_of_out = fg.add_node(Op::Elemwise(ScalarOp::Exp), vec![out]).unwrap()[0];
    let err = fg.replace(out, exp_of_out).unwrap_err().to_string();
    assert!(err.contains("cycle"), "{err}");
    // A less specific replacement would invalidate downstream types.
    let vague = tensor("v", Float64, [None]);
    let fixed = tensor("f", Float64, [Some(3)]);
    let mut fg2 = FunctionGraph::new(&[vague, fixed.clone()], &[fixed.exp()]).unwrap();
    let (v_id, f_id) = (fg2.inputs()[0], fg2.inputs()[1]);
    let err = fg2.replace(f_id, v_id).unwrap_err().to_string();
    assert!(err.contains("fewer static sizes"), "{err}");
}

#[test]
fn replacing_an_output_updates_the_outputs() {
    let (_, mut fg) = graph();
    let x = fg.inputs()[0];
    let out = fg.outputs()[0];
    let neg = fg.add_node(Op::Elemwise(ScalarOp::Neg), vec![x]).unwrap()[0];
    fg.replace(out, neg).unwrap();
    assert_eq!(fg.outputs(), &[neg]);
    assert_eq!(fg.n_nodes(), 1);
    fg.check_integrity().unwrap();
}

#[test]
fn add_node_runs_type_inference() {
    let (_, mut fg) = graph();
    let x = fg.inputs()[0];
    let c = fg.add_constant(TensorData::from(ndarray::array![1.0, 2.0, 3.0]));
    let sum = fg
        .add_node(Op::Elemwise(ScalarOp::Add), vec![x, c])
        .unwrap()[0];
    assert_eq!(fg.var(sum).ty.shape, vec![Some(3)]);
    let err = fg.add_node(Op::Dot, vec![x]).unwrap_err();
    assert!(err.to_string().starts_with("Dot:"), "{err}");
}

#[test]
fn from_outputs_collects_free_inputs_in_order() {
    let a = tensor("a", Int64, [None]);
    let b = tensor("b", Int64, [None]);
    let fg = FunctionGraph::from_outputs(&[&b * 2 + &a]).unwrap();
    let names: Vec<String> = fg.inputs().iter().map(|i| fg.describe(*i)).collect();
    assert_eq!(names, vec!["b", "a"]);
}

//! Inner graphs (issue 17 §1): OpFromGraph applied like a function, printed with its
//! inner graph below, merged only with an equal graph, checked for integrity, inlined by
//! default and kept as its own compiled function when asked, in both backends.

use ndarray::array;
use tensorlift::ir::{op_from_graph, FunctionGraph, GraphOp};
use tensorlift::prelude::*;
use tensorlift::testing::compare_backends;

/// `2x + y` over float64 vectors, as an op.
fn axpy() -> GraphOp {
    let (x, y) = (vector("x", Float64), vector("y", Float64));
    op_from_graph(&[&x, &y], &[&(&x * 2.0 + &y)])
        .unwrap()
        .named("axpy")
}

#[test]
fn an_applied_graph_prints_its_inner_graph_below() {
    let (a, b) = (vector("a", Float64), vector("b", Float64));
    let out = axpy().inline(false).apply(&[&a, &b]).unwrap();
    expect_test::expect![[r#"
        OpFromGraph{axpy, kept} [id A] <Vector(float64, shape=(?,))>
         ├─ a [id B] <Vector(float64, shape=(?,))>
         └─ b [id C] <Vector(float64, shape=(?,))>

        Inner graphs:

        OpFromGraph{axpy, kept} [id A]
         ← Add [id D] <Vector(float64, shape=(?,))>
            ├─ Mul [id E] <Vector(float64, shape=(?,))>
            │  ├─ *0-<Vector(float64, shape=(?,))> [id F]
            │  └─ ExpandDims{axis=0} [id G] <Vector(float64, shape=(1,))>
            │     └─ 2.0 [id H] <Scalar(float64, shape=())>
            └─ *1-<Vector(float64, shape=(?,))> [id I]
    "#]]
    .assert_eq(&dprint(&[&out[0]]).unwrap());
    let dot = to_dot(&[&out[0]]).unwrap();
    assert!(
        dot.contains("subgraph cluster_") && dot.contains("style=dotted"),
        "{dot}"
    );
}

#[test]
fn applications_are_type_checked_against_the_graph_inputs() {
    let f = axpy();
    let v = vector("v", Float64);
    let err = f.apply(&[&v, &vector("i", Int64)]).unwrap_err().to_string();
    assert!(
        err.contains("OpFromGraph{axpy}") && err.contains("input 1"),
        "{err}"
    );
    assert!(f.apply(&[&v]).is_err());
    // A more specific input is accepted.
    let three = tensor("t", Float64, [Some(3)]);
    assert!(f.apply(&[&three, &v]).is_ok());
    // The inner graph must be closed: every input it reads is declared.
    let (x, y) = (vector("x", Float64), vector("y", Float64));
    assert!(op_from_graph(&[&x], &[&(&x + &y)]).is_err());
}

#[test]
fn merge_joins_equal_inner_graphs_and_keeps_different_ones_apart() {
    let a = vector("a", Float64);
    let b = vector("b", Float64);
    // Two graphs built separately but equal, and one that differs (3x + y).
    let first = axpy().inline(false).apply(&[&a, &b]).unwrap();
    let equal = axpy().inline(false).apply(&[&a, &b]).unwrap();
    let (x, y) = (vector("x", Float64), vector("y", Float64));
    let other = op_from_graph(&[&x, &y], &[&(&x * 3.0 + &y)])
        .unwrap()
        .named("axpy")
        .inline(false)
        .apply(&[&a, &b])
        .unwrap();
    let f = function(&[&a, &b], &[&first[0], &equal[0], &other[0]])
        .mode(Mode::Reference)
        .compile()
        .unwrap();
    // Two distinct nodes: the equal applications merged, the different one apart.
    let text = f.dprint();
    let nodes: std::collections::HashSet<&str> = text
        .lines()
        .filter(|l| l.contains("OpFromGraph{axpy, kept} [id"))
        .filter_map(|l| l.split("[id ").nth(1)?.split(']').next())
        .collect();
    assert_eq!(nodes.len(), 2, "{text}");
    let out = f
        .call(&[array![1.0, 2.0].into(), array![10.0, 20.0].into()])
        .unwrap();
    assert_eq!(out[0].to_f64_vec(), vec![12.0, 24.0]);
    assert_eq!(out[1].to_f64_vec(), vec![12.0, 24.0]);
    assert_eq!(out[2].to_f64_vec(), vec![13.0, 26.0]);
}

#[test]
fn clone_replace_and_integrity_see_through_applications() {
    let (a, b) = (vector("a", Float64), vector("b", Float64));
    let out = axpy().inline(false).apply(&[&a, &b]).unwrap();
    let c = tensor("c", Float64, [Some(2)]);
    let replaced = clone_replace(&[&out[0]], &[(&a, &c)], false).unwrap();
    // The application now reads c (inner graphs are closed: nothing inside changes).
    let text = dprint(&[&replaced[0]]).unwrap();
    assert!(
        text.contains(" c [id") && !text.contains(" a [id"),
        "{text}"
    );
    let fg = FunctionGraph::new(&[c.clone(), b.clone()], &replaced).unwrap();
    fg.check_integrity().unwrap();
}

#[test]
fn graphs_are_inlined_by_default_and_kept_when_asked_in_both_backends() {
    let (a, b) = (vector("a", Float64), vector("b", Float64));
    let inlined = axpy().apply(&[&a, &b]).unwrap()[0].exp();
    let kept = axpy().inline(false).apply(&[&a, &b]).unwrap()[0].exp();
    let values = [
        array![0.5, -1.0, 2.0].into(),
        array![1.0, 0.25, -3.0].into(),
    ];
    let want: Vec<f64> = [(0.5, 1.0), (-1.0, 0.25), (2.0, -3.0)]
        .iter()
        .map(|(x, y): &(f64, f64)| (2.0 * x + y).exp())
        .collect();
    for mode in [Mode::Jit, Mode::Reference, Mode::Jit.without_rewrites()] {
        for (label, out) in [("inlined", &inlined), ("kept", &kept)] {
            let f = function(&[&a, &b], &[out])
                .mode(mode.clone())
                .compile()
                .unwrap();
            let got = f.call(&values).unwrap()[0].to_f64_vec();
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-14 * w.abs(),
                    "{label} {mode:?}: {g} vs {w}"
                );
            }
            let graph_left = f.dprint().contains("OpFromGraph");
            let expect_left = label == "kept" || !mode.rewrites;
            assert_eq!(graph_left, expect_left, "{label} {mode:?}:\n{}", f.dprint());
        }
        compare_backends(&[&a, &b], &[&kept], &values, mode.clone()).unwrap();
    }
    // The JIT runs a kept graph as its own compiled function (a sub-plan), and its inner
    // graph was rewritten (fused into one kernel).
    let f = function(&[&a, &b], &[&kept])
        .mode(Mode::Jit.strict())
        .compile()
        .unwrap();
    let plan = f.plan();
    assert!(plan.contains("its own compiled function"), "{plan}");
    assert!(plan.contains("| plan: 1 steps"), "{plan}");
    assert!(
        f.interpreted_nodes().is_empty(),
        "{:?}",
        f.interpreted_nodes()
    );
}

#[test]
fn nested_graphs_are_inlined_and_kept_alike() {
    let x = vector("x", Float64);
    let twice = op_from_graph(&[&x], &[&(&x * 2.0)]).unwrap().named("twice");
    let y = vector("y", Float64);
    let inner = twice.inline(false).apply(&[&y]).unwrap();
    let outer = op_from_graph(&[&y], &[&(&inner[0] + 1.0)])
        .unwrap()
        .named("outer");
    let a = vector("a", Float64);
    for graph in [outer.clone(), outer.inline(false)] {
        let out = graph.apply(&[&a]).unwrap();
        for mode in [Mode::Jit, Mode::Reference] {
            let f = function(&[&a], &[&out[0]])
                .mode(mode.clone())
                .compile()
                .unwrap();
            let got = f.call(&[array![1.0, -2.0].into()]).unwrap();
            assert_eq!(got[0].to_f64_vec(), vec![3.0, -3.0], "{mode:?}");
        }
    }
    // Errors inside a kept graph name the inner node.
    let f = function(&[&a], &[&outer.inline(false).apply(&[&a]).unwrap()[0]])
        .compile()
        .unwrap();
    assert!(f.call(&[array![[1.0]].into()]).is_err());
}

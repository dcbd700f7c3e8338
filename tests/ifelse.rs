//! IfElse (issue 18, DESIGN §8): lazy in both backends — the untaken branch holds a check
//! or an index that would fail if it ran, and calls with either condition return the other
//! branch's value; values both branches need are computed once before; several outputs
//! typed as the least specific of the branches; nested and inside a scan; rewrites for a
//! constant condition and equal branches.

use ndarray::Array1;
use tensorlift::ir::Op;
use tensorlift::prelude::*;
use tensorlift::testing::{assert_allclose, compare_backends};

fn modes() -> [Mode; 4] {
    [
        Mode::Reference,
        Mode::Jit,
        Mode::Reference.without_rewrites(),
        Mode::Jit.without_rewrites(),
    ]
}

fn vec1(v: Vec<f64>) -> TensorData {
    TensorData::from_array(Array1::from(v).into_dyn())
}

fn flag(b: bool) -> TensorData {
    TensorData::scalar(b)
}

/// A branch value that fails if computed: a check that never holds.
fn raises(x: &Var) -> Var {
    x.check_that(&[x.sum(All).lt(-1e300)], "the untaken branch ran")
        .sum(All)
}

#[test]
fn only_the_taken_branch_runs() {
    let (c, x) = (scalar("c", Bool), vector("x", Float64));
    // then: would fail its check; else: x[0] + 1.
    let out = ifelse(&c, &[&raises(&x)], &[&(x.get(idx![0]) + 1.0)]);
    // then: x[0] + 1; else: reads x[100] (out of bounds for 3 elements).
    let other = ifelse(&c, &[&(x.get(idx![0]) + 1.0)], &[&x.get(idx![100])]);
    let values = vec1(vec![2.0, 3.0, 4.0]);
    for mode in modes() {
        let f = function(&[&c, &x], &[&out[0]])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let r = f.call(&[flag(false), values.clone()]).unwrap();
        assert_eq!(r[0].to_f64_vec(), vec![3.0], "{mode:?}");
        let err = f
            .call(&[flag(true), values.clone()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("the untaken branch ran"), "{mode:?}: {err}");
        let g = function(&[&c, &x], &[&other[0]])
            .mode(mode.clone())
            .compile()
            .unwrap();
        assert_eq!(
            g.call(&[flag(true), values.clone()]).unwrap()[0].to_f64_vec(),
            vec![3.0]
        );
        let err = g
            .call(&[flag(false), values.clone()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("100"), "{mode:?}: {err}");
    }
}

#[test]
fn values_both_branches_need_are_computed_once_before() {
    let (c, x) = (scalar("c", Bool), vector("x", Float64));
    let shared = x.exp();
    let out = ifelse(&c, &[&shared.sum(All)], &[&shared.max(All)]);
    let f = function(&[&c, &x], &[&out[0]])
        .mode(Mode::Jit.strict())
        .compile()
        .unwrap();
    let fg = f.fgraph();
    let node = fg
        .toposort()
        .into_iter()
        .find(|n| matches!(fg.node(*n).map(|e| &e.op), Some(Op::IfElse(_))))
        .unwrap();
    let e = fg.node(node).unwrap();
    let Op::IfElse(op) = &e.op else {
        unreachable!()
    };
    // The exponential is an input of the node, in neither branch.
    assert_eq!(e.inputs.len(), 2);
    for branch in [&op.then_branch, &op.else_branch] {
        let g = branch.graph();
        let exps = g
            .toposort()
            .into_iter()
            .filter(|n| {
                matches!(
                    g.node(*n).map(|e| &e.op),
                    Some(Op::Elemwise(tensorlift::ir::ScalarOp::Exp))
                )
            })
            .count();
        assert_eq!(exps, 0, "{}", tensorlift::ir::print::dprint_fgraph(g));
    }
    let plan = f.plan();
    assert!(
        plan.contains("only the taken branch's compiled function runs"),
        "{plan}"
    );
    assert!(f.interpreted_nodes().is_empty());
    let v = vec1(vec![0.0, 1.0, 2.0]);
    let r = f.call(&[flag(true), v.clone()]).unwrap()[0].to_f64_vec()[0];
    let want: f64 = [0f64, 1.0, 2.0].iter().map(|v| v.exp()).sum();
    assert!((r - want).abs() < 1e-12);
    // The JIT's polynomial exp is within an ulp or two of libm's.
    let max = f.call(&[flag(false), v]).unwrap()[0].to_f64_vec()[0];
    assert!((max - 2f64.exp()).abs() < 1e-14, "{max}");
}

#[test]
fn several_outputs_take_the_least_specific_type() {
    let c = scalar("c", Bool);
    let (a, b) = (
        tensor("a", Float64, [Some(3)]),
        tensor("b", Float64, [None]),
    );
    let out = ifelse(&c, &[&a, &(&a * 2.0)], &[&b, &b.exp()]);
    assert_eq!(out[0].ty().shape, vec![None]);
    assert_eq!(out[1].ty().dtype, Float64);
    let values = [flag(false), vec1(vec![1.0, 2.0, 3.0]), vec1(vec![0.0, 1.0])];
    for mode in [Mode::Jit, Mode::Jit.without_rewrites()] {
        compare_backends(&[&c, &a, &b], &[&out[0], &out[1]], &values, mode).unwrap();
    }
    let f = function(&[&c, &a, &b], &[&out[0], &out[1]])
        .compile()
        .unwrap();
    let r = f.call(&values).unwrap();
    assert_eq!(r[0].to_f64_vec(), vec![0.0, 1.0]);
    let r = f
        .call(&[flag(true), vec1(vec![1.0, 2.0, 3.0]), vec1(vec![0.0])])
        .unwrap();
    assert_eq!(r[1].to_f64_vec(), vec![2.0, 4.0, 6.0]);
    // An integer condition: non-zero is true.
    let k = scalar("k", Int8);
    let pick = ifelse(&k, &[&a.sum(All)], &[&b.sum(All)]);
    let g = function(&[&k, &a, &b], &[&pick[0]]).compile().unwrap();
    let int8 = |v: i8| TensorData::scalar(v);
    let (va, vb) = (vec1(vec![1.0, 2.0, 3.0]), vec1(vec![10.0]));
    assert_eq!(
        g.call(&[int8(-3), va.clone(), vb.clone()]).unwrap()[0].to_f64_vec(),
        vec![6.0]
    );
    assert_eq!(
        g.call(&[int8(0), va, vb]).unwrap()[0].to_f64_vec(),
        vec![10.0]
    );
}

#[test]
fn branches_that_disagree_and_conditions_that_are_not_scalars_are_errors() {
    let c = scalar("c", Bool);
    let (x, i) = (vector("x", Float64), vector("i", Int64));
    let wrong = ifelse(&c, &[&x], &[&i]);
    let err = wrong[0].check().unwrap_err().to_string();
    assert!(
        err.contains("output 0 is") && err.contains("branches must agree in dtype and rank"),
        "{err}"
    );
    let rank = ifelse(&c, &[&x], &[&x.sum(All)]);
    assert!(rank[0].check().is_err());
    let count = ifelse(&c, &[&x, &x], &[&x]);
    assert!(count[0]
        .check()
        .unwrap_err()
        .to_string()
        .contains("the then branch has 2 outputs"));
    let not_scalar = ifelse(&x.gt(0.0), &[&x], &[&x]);
    let err = not_scalar[0].check().unwrap_err().to_string();
    assert!(err.contains("the condition must be a scalar"), "{err}");
}

#[test]
fn nested_choices_and_a_choice_inside_a_scan() {
    let (c, d, x) = (scalar("c", Bool), scalar("d", Bool), vector("x", Float64));
    let inner = ifelse(&d, &[&x.sum(All)], &[&raises(&x)]);
    let outer = ifelse(&c, &[&inner[0]], &[&x.max(All)]);
    let v = vec1(vec![1.0, 5.0, 2.0]);
    for mode in modes() {
        let f = function(&[&c, &d, &x], &[&outer[0]])
            .mode(mode.clone())
            .compile()
            .unwrap();
        assert_eq!(
            f.call(&[flag(true), flag(true), v.clone()]).unwrap()[0].to_f64_vec(),
            vec![8.0]
        );
        // d false would fail, but c false never asks.
        assert_eq!(
            f.call(&[flag(false), flag(false), v.clone()]).unwrap()[0].to_f64_vec(),
            vec![5.0]
        );
        assert!(f.call(&[flag(true), flag(false), v.clone()]).is_err());
    }
    // In a scan: s ← s > 0 ? s − 1 : (would fail); every step takes the first branch.
    let s0 = scalar("s0", Float64);
    let out = scan(|st| {
        let s = st.state(0);
        let checked = s.check_that(&[s.lt(-1e300)], "the untaken branch ran");
        ifelse(&s.gt(0.0), &[&(&s - 1.0)], &[&checked])
    })
    .states(&[&s0])
    .n_steps(5)
    .build();
    for mode in modes() {
        let f = function(&[&s0], &[&out.trace(0)])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let r = f.call(&[TensorData::scalar(10.0f64)]).unwrap();
        assert_eq!(r[0].to_f64_vec(), vec![9.0, 8.0, 7.0, 6.0, 5.0], "{mode:?}");
        assert!(
            f.call(&[TensorData::scalar(2.0f64)]).is_err(),
            "{mode:?}: step 3 takes the failing branch"
        );
    }
}

#[test]
fn a_constant_condition_or_equal_branches_leave_no_choice() {
    let x = vector("x", Float64);
    let yes = constant(TensorData::scalar(true));
    let out = ifelse(&yes, &[&x.exp().sum(All)], &[&raises(&x)]);
    let f = function(&[&x], &[&out[0]]).compile().unwrap();
    assert_eq!(f.rewrite_report().fired("ifelse_constant_condition"), 1);
    assert!(!f.dprint().contains("IfElse"), "{}", f.dprint());
    assert_eq!(
        f.call(&[vec1(vec![0.0])]).unwrap()[0].to_f64_vec(),
        vec![1.0]
    );
    let c = scalar("c", Bool);
    let same = ifelse(&c, &[&(&x * 2.0)], &[&(&x * 2.0)]);
    let g = function(&[&c, &x], &[&same[0]]).compile().unwrap();
    assert_eq!(g.rewrite_report().fired("ifelse_same_branches"), 1);
    assert!(!g.dprint().contains("IfElse"), "{}", g.dprint());
}

#[test]
fn a_scalar_switch_over_array_work_computes_only_the_chosen_value() {
    let (c, x) = (scalar("c", Bool), vector("x", Float64));
    let chosen = switch(&c, x.exp().sum(All), &(x.get(idx![0]) + 1.0));
    let lazy = switch(&c, raises(&x), &(x.get(idx![0]) + 1.0));
    let eager = Mode::Reference.without_rewrites();
    let reference = function(&[&c, &x], &[&chosen])
        .mode(eager.clone())
        .compile();
    let reference = reference.unwrap();
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&[&c, &x], &[&chosen])
            .mode(mode.clone())
            .compile()
            .unwrap();
        assert_eq!(f.rewrite_report().fired("switch_to_ifelse"), 1, "{mode:?}");
        assert!(f.dprint().contains("IfElse"), "{}", f.dprint());
        for (k, cond) in [true, false, true].into_iter().enumerate() {
            let args = [flag(cond), vec1(vec![0.5 * k as f64, -1.0, 2.0])];
            let (got, want) = (f.call(&args).unwrap(), reference.call(&args).unwrap());
            assert_allclose(&format!("{mode:?}, c = {cond}"), &got[0], &want[0]).unwrap();
        }
        // The switch's other value would fail its check: with c false it is not computed.
        let g = function(&[&c, &x], &[&lazy])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let args = [flag(false), vec1(vec![3.0, 1.0])];
        assert_eq!(
            g.call(&args).unwrap()[0].to_f64_vec(),
            vec![4.0],
            "{mode:?}"
        );
        let taken = g.call(&[flag(true), vec1(vec![3.0, 1.0])]).unwrap_err();
        assert!(taken.to_string().contains("untaken branch ran"), "{taken}");
    }
    // Without the rewrite both values are computed, as the switch says.
    let g = function(&[&c, &x], &[&lazy]).mode(eager).compile().unwrap();
    assert!(g.call(&[flag(false), vec1(vec![3.0, 1.0])]).is_err());
}

#[test]
fn a_choice_prints_its_branches_below() {
    let (c, x) = (scalar("c", Bool), vector("x", Float64));
    let out = ifelse(&c, &[&x.exp().sum(All)], &[&(x.get(idx![0]) + 1.0)]);
    let text = dprint(&[&out[0]]).unwrap();
    assert!(text.starts_with("IfElse [id A]"), "{text}");
    assert_eq!(
        text.matches("IfElse [id A]").count(),
        3,
        "the node and its two branches: {text}"
    );
    assert!(text.contains("Inner graphs:"), "{text}");
}

#[test]
fn random_choices_agree_between_the_backends() {
    let mut rng = tensorlift::testing::TestRng::new(11);
    let (c, x, y) = (
        scalar("c", Bool),
        vector("x", Float64),
        vector("y", Float64),
    );
    let shared = &x * &y;
    let out = ifelse(
        &c,
        &[&(shared.exp() + &y).sum(All), &shared],
        &[&(shared.sin() * 3.0).max(All), &(&y - &x)],
    );
    for case in 0..20 {
        let n = 1 + (rng.next_f64() * 8.0) as usize;
        let mut v = || vec1((0..n).map(|_| rng.next_f64() * 4.0 - 2.0).collect());
        let values = [flag(case % 2 == 0), v(), v()];
        compare_backends(&[&c, &x, &y], &[&out[0], &out[1]], &values, Mode::Jit)
            .unwrap_or_else(|e| panic!("case {case}: {e}"));
    }
}

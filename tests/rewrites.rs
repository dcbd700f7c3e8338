//! The rewrite pipeline (DESIGN §6): one golden test per rule (the graph printed before and
//! after running that rule alone), each also checked for values — the reference backend
//! gives the same results on the graph before and after — and for integrity. Cases where a
//! rule must not fire are checked too.

use expect_test::{expect, Expect};
use tensorlift::ir::fgraph::FunctionGraph;
use tensorlift::ir::print::dprint_fgraph;
use tensorlift::ir::ScalarOp;
use tensorlift::prelude::*;
use tensorlift::Literal;
use tensorlift_compiler::rewrite::run_rules;
use tensorlift_runtime::interpreter::Program;

/// Deterministic test values: positive floats in [0.25, 1.75) (valid for log and sqrt),
/// small positive integers, alternating booleans.
fn sample(ty: &TensorType, seed: u64) -> TensorData {
    let shape: Vec<usize> = ty.shape.iter().map(|s| s.unwrap_or(3)).collect();
    let n: usize = shape.iter().product();
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let values: Vec<Literal> = (0..n)
        .map(|i| {
            let u = next();
            if ty.dtype.is_float() {
                Literal::Float(0.25 + 1.5 * u)
            } else if ty.dtype.is_bool() {
                Literal::Bool(i % 2 == 0)
            } else {
                Literal::Int(1 + (u * 5.0) as i64)
            }
        })
        .collect();
    TensorData::from_literals(&shape, &values, ty.dtype).expect("sample data")
}

fn run(fg: &FunctionGraph, inputs: &[TensorData]) -> Vec<TensorData> {
    Program::new(fg.clone())
        .expect("program")
        .run(inputs)
        .expect("run")
}

fn assert_close(before: &[TensorData], after: &[TensorData]) {
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(after) {
        assert_eq!(b.dtype(), a.dtype(), "dtype changed");
        assert_eq!(b.shape(), a.shape(), "shape changed");
        let tol = if b.dtype() == DType::Float32 {
            1e-5
        } else {
            1e-12
        };
        for (x, y) in b.literals().iter().zip(a.literals()) {
            let (x, y) = (lit_f64(*x), lit_f64(y));
            let same =
                (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= tol * (1.0 + x.abs());
            assert!(same, "value changed: {x} before, {y} after");
        }
    }
}

fn lit_f64(l: Literal) -> f64 {
    match l {
        Literal::Bool(b) => b as u8 as f64,
        Literal::Int(i) => i as f64,
        Literal::Float(f) => f,
    }
}

/// Runs `rules` alone on the graph of `outputs`; checks integrity, values (before vs after
/// on sample inputs) and whether the first rule fired; returns the golden text.
fn rewrite(outputs: &[&Var], rules: &[&str], should_fire: bool) -> String {
    let outs: Vec<Var> = outputs.iter().map(|v| (*v).clone()).collect();
    let before_fg = FunctionGraph::from_outputs(&outs).expect("graph");
    let mut fg = before_fg.clone();
    let report = run_rules(&mut fg, rules).expect("rewrite");
    fg.check_integrity().expect("integrity after rewriting");
    assert_eq!(
        report.fired(rules[0]) > 0,
        should_fire,
        "rule {} fired {} times\n{report}",
        rules[0],
        report.fired(rules[0])
    );
    let inputs: Vec<TensorData> = before_fg
        .inputs()
        .iter()
        .enumerate()
        .map(|(k, v)| sample(&before_fg.var(*v).ty, k as u64 + 1))
        .collect();
    assert_close(&run(&before_fg, &inputs), &run(&fg, &inputs));
    format!("{}=>\n{}", dprint_fgraph(&before_fg), dprint_fgraph(&fg))
}

fn check(outputs: &[&Var], rules: &[&str], golden: Expect) {
    golden.assert_eq(&rewrite(outputs, rules, true));
}

fn check_unchanged(outputs: &[&Var], rules: &[&str]) {
    rewrite(outputs, rules, false);
}

fn fvec(name: &str) -> Var {
    vector(name, Float64)
}

// ---------------------------------------------------------------- merge

#[test]
fn merge_shares_equal_subexpressions_and_constants() {
    let x = fvec("x");
    let a = x.exp() + 1.0;
    let b = x.exp() + 1.0;
    check(
        &[&(&a * &b)],
        &["merge"],
        expect![[r#"
            Mul [id A] <Vector(float64, shape=(?,))>
             ├─ Add [id B] <Vector(float64, shape=(?,))>
             │  ├─ Exp [id C] <Vector(float64, shape=(?,))>
             │  │  └─ x [id D] <Vector(float64, shape=(?,))>
             │  └─ ExpandDims{axis=0} [id E] <Vector(float64, shape=(1,))>
             │     └─ 1.0 [id F] <Scalar(float64, shape=())>
             └─ Add [id G] <Vector(float64, shape=(?,))>
                ├─ Exp [id H] <Vector(float64, shape=(?,))>
                │  └─ x [id D] <Vector(float64, shape=(?,))>
                └─ ExpandDims{axis=0} [id I] <Vector(float64, shape=(1,))>
                   └─ 1.0 [id J] <Scalar(float64, shape=())>
            =>
            Mul [id A] <Vector(float64, shape=(?,))>
             ├─ Add [id B] <Vector(float64, shape=(?,))>
             │  ├─ Exp [id C] <Vector(float64, shape=(?,))>
             │  │  └─ x [id D] <Vector(float64, shape=(?,))>
             │  └─ ExpandDims{axis=0} [id E] <Vector(float64, shape=(1,))>
             │     └─ 1.0 [id F] <Scalar(float64, shape=())>
             └─ Add [id B] <Vector(float64, shape=(?,))>
        "#]],
    );
}

// ---------------------------------------------------------------- canonicalize

#[test]
fn constant_folding() {
    let x = fvec("x");
    let c = constant(ndarray::array![1.0, 2.0, 3.0]).exp() * 2.0;
    check(
        &[&(&x + &c)],
        &["constant_folding"],
        expect![[r#"
        Add [id A] <Vector(float64, shape=(3,))>
         ├─ x [id B] <Vector(float64, shape=(?,))>
         └─ Mul [id C] <Vector(float64, shape=(3,))>
            ├─ Exp [id D] <Vector(float64, shape=(3,))>
            │  └─ [1.0, 2.0, 3.0] [id E] <Vector(float64, shape=(3,))>
            └─ ExpandDims{axis=0} [id F] <Vector(float64, shape=(1,))>
               └─ 2.0 [id G] <Scalar(float64, shape=())>
        =>
        Add [id A] <Vector(float64, shape=(3,))>
         ├─ x [id B] <Vector(float64, shape=(?,))>
         └─ [5.43656365691809, 14.7781121978613, 40.171073846375336] [id C] <Vector(float64, shape=(3,))>
    "#]],
    );
}

#[test]
fn constant_folding_keeps_runtime_checks() {
    let c = constant(ndarray::array![1.0]);
    let checked = c.check_that(&[constant(ndarray::array![false])], "never");
    let mut fg = FunctionGraph::from_outputs(&[checked]).unwrap();
    run_rules(&mut fg, &["constant_folding"]).unwrap();
    assert!(dprint_fgraph(&fg).contains("CheckAndRaise"));
}

#[test]
fn useless_dimshuffle() {
    let x = matrix("x", Float64);
    let y = x.dimshuffle(&[Some(0), Some(1)]).exp();
    check(
        &[&y],
        &["useless_dimshuffle"],
        expect![[r#"
        Exp [id A] <Matrix(float64, shape=(?, ?))>
         └─ DimShuffle{order=[0,1]} [id B] <Matrix(float64, shape=(?, ?))>
            └─ x [id C] <Matrix(float64, shape=(?, ?))>
        =>
        Exp [id A] <Matrix(float64, shape=(?, ?))>
         └─ x [id B] <Matrix(float64, shape=(?, ?))>
    "#]],
    );
}

#[test]
fn merge_dimshuffles() {
    let x = matrix("x", Float64);
    let y = x.t().expand_dims(0).exp();
    check(
        &[&y],
        &["merge_dimshuffles"],
        expect![[r#"
        Exp [id A] <Tensor3(float64, shape=(1, ?, ?))>
         └─ ExpandDims{axis=0} [id B] <Tensor3(float64, shape=(1, ?, ?))>
            └─ Transpose{axes=[1, 0]} [id C] <Matrix(float64, shape=(?, ?))>
               └─ x [id D] <Matrix(float64, shape=(?, ?))>
        =>
        Exp [id A] <Tensor3(float64, shape=(1, ?, ?))>
         └─ DimShuffle{order=[x,1,0]} [id B] <Tensor3(float64, shape=(1, ?, ?))>
            └─ x [id C] <Matrix(float64, shape=(?, ?))>
    "#]],
    );
}

#[test]
fn useless_specify_shape() {
    let x = tensor("x", Float64, [Some(3)]);
    let y = x.specify_shape(&[Some(3)]).exp();
    check(
        &[&y],
        &["useless_specify_shape"],
        expect![[r#"
        Exp [id A] <Vector(float64, shape=(3,))>
         └─ SpecifyShape{(3,)} [id B] <Vector(float64, shape=(3,))>
            └─ x [id C] <Vector(float64, shape=(3,))>
        =>
        Exp [id A] <Vector(float64, shape=(3,))>
         └─ x [id B] <Vector(float64, shape=(3,))>
    "#]],
    );
    let z = fvec("z");
    check_unchanged(&[&z.specify_shape(&[Some(3)])], &["useless_specify_shape"]);
}

#[test]
fn useless_reshape() {
    let x = matrix("x", Float64);
    let y = x.reshape_to(&x.shape()).exp();
    check(
        &[&y],
        &["useless_reshape"],
        expect![[r#"
        Exp [id A] <Matrix(float64, shape=(?, ?))>
         └─ Reshape{2} [id B] <Matrix(float64, shape=(?, ?))>
            ├─ x [id C] <Matrix(float64, shape=(?, ?))>
            └─ Shape [id D] <Vector(int64, shape=(2,))>
               └─ x [id C] <Matrix(float64, shape=(?, ?))>
        =>
        Exp [id A] <Matrix(float64, shape=(?, ?))>
         └─ x [id B] <Matrix(float64, shape=(?, ?))>
    "#]],
    );
    check_unchanged(&[&x.reshape(&[-1])], &["useless_reshape"]);
}

#[test]
fn useless_alloc() {
    let x = tensor("x", Float64, [Some(2), Some(3)]);
    let y = x.broadcast_to(&[2i64.into(), 3i64.into()]).exp();
    check(
        &[&y],
        &["useless_alloc"],
        expect![[r#"
        Exp [id A] <Matrix(float64, shape=(2, 3))>
         └─ Alloc [id B] <Matrix(float64, shape=(2, 3))>
            ├─ x [id C] <Matrix(float64, shape=(2, 3))>
            ├─ 2 [id D] <Scalar(int64, shape=())>
            └─ 3 [id E] <Scalar(int64, shape=())>
        =>
        Exp [id A] <Matrix(float64, shape=(2, 3))>
         └─ x [id B] <Matrix(float64, shape=(2, 3))>
    "#]],
    );
}

#[test]
fn useless_subtensor() {
    let x = matrix("x", Float64);
    let y = x.get(idx![.., ..]).exp();
    check(
        &[&y],
        &["useless_subtensor"],
        expect![[r#"
        Exp [id A] <Matrix(float64, shape=(?, ?))>
         └─ Subtensor{:, :} [id B] <Matrix(float64, shape=(?, ?))>
            └─ x [id C] <Matrix(float64, shape=(?, ?))>
        =>
        Exp [id A] <Matrix(float64, shape=(?, ?))>
         └─ x [id B] <Matrix(float64, shape=(?, ?))>
    "#]],
    );
    check_unchanged(&[&x.get(idx![.., 1..])], &["useless_subtensor"]);
}

#[test]
fn useless_elemwise() {
    let x = fvec("x");
    let cast = tensorlift::ir::elemwise(ScalarOp::Cast(Float64), vec![(&x).into()]);
    check(
        &[&cast.exp()],
        &["useless_elemwise"],
        expect![[r#"
        Exp [id A] <Vector(float64, shape=(?,))>
         └─ Cast{float64} [id B] <Vector(float64, shape=(?,))>
            └─ x [id C] <Vector(float64, shape=(?,))>
        =>
        Exp [id A] <Vector(float64, shape=(?,))>
         └─ x [id B] <Vector(float64, shape=(?,))>
    "#]],
    );
    check_unchanged(&[&x.cast(Float32)], &["useless_elemwise"]);
}

#[test]
fn useless_switch() {
    let (x, y) = (fvec("x"), fvec("y"));
    let s = switch(constant(ndarray::array![true]), &x, &y);
    check(
        &[&s],
        &["useless_switch"],
        expect![[r#"
        Switch [id A] <Vector(float64, shape=(?,))>
         ├─ [true] [id B] <Vector(bool, shape=(1,))>
         ├─ x [id C] <Vector(float64, shape=(?,))>
         └─ y [id D] <Vector(float64, shape=(?,))>
        =>
        x [id A] <Vector(float64, shape=(?,))>
    "#]],
    );
}

#[test]
fn neg_neg() {
    let x = fvec("x");
    check(
        &[&(-(-&x)).exp()],
        &["neg_neg"],
        expect![[r#"
        Exp [id A] <Vector(float64, shape=(?,))>
         └─ Neg [id B] <Vector(float64, shape=(?,))>
            └─ Neg [id C] <Vector(float64, shape=(?,))>
               └─ x [id D] <Vector(float64, shape=(?,))>
        =>
        Exp [id A] <Vector(float64, shape=(?,))>
         └─ x [id B] <Vector(float64, shape=(?,))>
    "#]],
    );
}

#[test]
fn mul_one() {
    let x = fvec("x");
    check(
        &[&(&x * 1.0).exp()],
        &["mul_one"],
        expect![[r#"
        Exp [id A] <Vector(float64, shape=(?,))>
         └─ Mul [id B] <Vector(float64, shape=(?,))>
            ├─ x [id C] <Vector(float64, shape=(?,))>
            └─ ExpandDims{axis=0} [id D] <Vector(float64, shape=(1,))>
               └─ 1.0 [id E] <Scalar(float64, shape=())>
        =>
        Exp [id A] <Vector(float64, shape=(?,))>
         └─ x [id B] <Vector(float64, shape=(?,))>
    "#]],
    );
    // x is int32: x * 1.0 is float64, so the multiplication (a cast) must stay.
    let i = vector("i", Int32);
    check_unchanged(&[&(&i * 1.0)], &["mul_one"]);
}

#[test]
fn mul_ones_like() {
    // The ones a sum's gradient fills, sized from z, times a value made from z.
    let z = fvec("z");
    let y = z.sin();
    let ones = alloc(1.0, &[z.shape_i(0).into()]);
    check(
        &[&(&ones * &y).exp()],
        &["mul_ones_like"],
        expect![[r#"
            Exp [id A] <Vector(float64, shape=(?,))>
             └─ Mul [id B] <Vector(float64, shape=(?,))>
                ├─ Alloc [id C] <Vector(float64, shape=(?,))>
                │  ├─ 1.0 [id D] <Scalar(float64, shape=())>
                │  └─ Subtensor{i} [id E] <Scalar(int64, shape=())>
                │     ├─ Shape [id F] <Vector(int64, shape=(1,))>
                │     │  └─ z [id G] <Vector(float64, shape=(?,))>
                │     └─ 0 [id H] <Scalar(int64, shape=())>
                └─ Sin [id I] <Vector(float64, shape=(?,))>
                   └─ z [id G] <Vector(float64, shape=(?,))>
            =>
            Exp [id A] <Vector(float64, shape=(?,))>
             └─ Sin [id B] <Vector(float64, shape=(?,))>
                └─ z [id C] <Vector(float64, shape=(?,))>
        "#]],
    );
    // Sizes from another vector: it may differ (and the product then fails): keep it.
    let other = fvec("other");
    let ones = alloc(1.0, &[other.shape_i(0).into()]);
    check_unchanged(&[&(&ones * &y)], &["mul_ones_like"]);
    // Sizes from an operand that broadcasts (static size 1) into y: keep it.
    let one = tensor("one", Float64, [Some(1)]);
    let w = &one + &z;
    let ones = alloc(1.0, &[one.shape_i(0).into()]);
    check_unchanged(&[&(&ones * &w)], &["mul_ones_like"]);
}

#[test]
fn add_zero() {
    let x = fvec("x");
    check(
        &[&(&x + 0.0).exp(), &(&x - 0.0).sin()],
        &["add_zero"],
        expect![[r#"
        Exp [id A] <Vector(float64, shape=(?,))>
         └─ Add [id B] <Vector(float64, shape=(?,))>
            ├─ x [id C] <Vector(float64, shape=(?,))>
            └─ ExpandDims{axis=0} [id D] <Vector(float64, shape=(1,))>
               └─ 0.0 [id E] <Scalar(float64, shape=())>
        Sin [id F] <Vector(float64, shape=(?,))>
         └─ Sub [id G] <Vector(float64, shape=(?,))>
            ├─ x [id C] <Vector(float64, shape=(?,))>
            └─ ExpandDims{axis=0} [id H] <Vector(float64, shape=(1,))>
               └─ 0.0 [id I] <Scalar(float64, shape=())>
        =>
        Exp [id A] <Vector(float64, shape=(?,))>
         └─ x [id B] <Vector(float64, shape=(?,))>
        Sin [id C] <Vector(float64, shape=(?,))>
         └─ x [id B] <Vector(float64, shape=(?,))>
    "#]],
    );
    // Broadcasting a (1,) vector against a (3,) zero changes the shape: keep it.
    let one = tensor("one", Float64, [Some(1)]);
    check_unchanged(
        &[&(&one + constant(ndarray::array![0.0, 0.0, 0.0]))],
        &["add_zero"],
    );
}

#[test]
fn sub_self_only_for_integers() {
    let i = vector("i", Int64);
    check(
        &[&(&i - &i)],
        &["sub_self"],
        expect![[r#"
        Sub [id A] <Vector(int64, shape=(?,))>
         ├─ i [id B] <Vector(int64, shape=(?,))>
         └─ i [id B] <Vector(int64, shape=(?,))>
        =>
        Alloc [id A] <Vector(int64, shape=(?,))>
         ├─ 0 [id B] <Scalar(int64, shape=())>
         └─ Subtensor{i} [id C] <Scalar(int64, shape=())>
            ├─ Shape [id D] <Vector(int64, shape=(1,))>
            │  └─ i [id E] <Vector(int64, shape=(?,))>
            └─ 0 [id F] <Scalar(int64, shape=())>
    "#]],
    );
    // inf - inf is NaN: floats keep x - x.
    let x = fvec("x");
    check_unchanged(&[&(&x - &x)], &["sub_self"]);
}

#[test]
fn div_self_only_for_exp() {
    let x = fvec("x");
    let e = x.exp();
    check(
        &[&(&e / &e)],
        &["div_self"],
        expect![[r#"
        TrueDiv [id A] <Vector(float64, shape=(?,))>
         ├─ Exp [id B] <Vector(float64, shape=(?,))>
         │  └─ x [id C] <Vector(float64, shape=(?,))>
         └─ Exp [id B] <Vector(float64, shape=(?,))>
        =>
        Add [id A] <Vector(float64, shape=(?,))>
         ├─ Sub [id B] <Vector(float64, shape=(?,))>
         │  ├─ x [id C] <Vector(float64, shape=(?,))>
         │  └─ x [id C] <Vector(float64, shape=(?,))>
         └─ [1.0] [id D] <Vector(float64, shape=(1,))>
    "#]],
    );
    // x may be 0: 0 / 0 is NaN, so x / x stays.
    check_unchanged(&[&(&x / &x)], &["div_self"]);
}

#[test]
fn div_self_is_right_where_exp_overflows_and_keeps_nan() {
    let x = fvec("x");
    let e = x.exp();
    let f = function(&[&x], &[&(&e / &e)]).compile().unwrap();
    let out = f
        .call(&[ndarray::array![1000.0, -1000.0, 0.5, f64::NAN].into()])
        .unwrap();
    let v = out[0].as_array::<f64>().unwrap();
    assert_eq!(&v.as_slice().unwrap()[..3], &[1.0, 1.0, 1.0]);
    assert!(v[3].is_nan());
}

#[test]
fn log_exp() {
    let x = fvec("x");
    check(
        &[&x.exp().log()],
        &["log_exp"],
        expect![[r#"
        Log [id A] <Vector(float64, shape=(?,))>
         └─ Exp [id B] <Vector(float64, shape=(?,))>
            └─ x [id C] <Vector(float64, shape=(?,))>
        =>
        x [id A] <Vector(float64, shape=(?,))>
    "#]],
    );
}

#[test]
fn exp_log() {
    let x = fvec("x");
    check(
        &[&x.log().exp()],
        &["exp_log"],
        expect![[r#"
        Exp [id A] <Vector(float64, shape=(?,))>
         └─ Log [id B] <Vector(float64, shape=(?,))>
            └─ x [id C] <Vector(float64, shape=(?,))>
        =>
        Switch [id A] <Vector(float64, shape=(?,))>
         ├─ Ge [id B] <Vector(bool, shape=(?,))>
         │  ├─ x [id C] <Vector(float64, shape=(?,))>
         │  └─ [0.0] [id D] <Vector(float64, shape=(1,))>
         ├─ x [id C] <Vector(float64, shape=(?,))>
         └─ [NaN] [id E] <Vector(float64, shape=(1,))>
    "#]],
    );
}

#[test]
fn flatten_add_mul() {
    let (x, y, z) = (fvec("x"), fvec("y"), fvec("z"));
    check(
        &[&((&x + &y) + &z), &((&x * &y) * (&z * &x))],
        &["flatten_add_mul"],
        expect![[r#"
            Add [id A] <Vector(float64, shape=(?,))>
             ├─ Add [id B] <Vector(float64, shape=(?,))>
             │  ├─ x [id C] <Vector(float64, shape=(?,))>
             │  └─ y [id D] <Vector(float64, shape=(?,))>
             └─ z [id E] <Vector(float64, shape=(?,))>
            Mul [id F] <Vector(float64, shape=(?,))>
             ├─ Mul [id G] <Vector(float64, shape=(?,))>
             │  ├─ x [id C] <Vector(float64, shape=(?,))>
             │  └─ y [id D] <Vector(float64, shape=(?,))>
             └─ Mul [id H] <Vector(float64, shape=(?,))>
                ├─ z [id E] <Vector(float64, shape=(?,))>
                └─ x [id C] <Vector(float64, shape=(?,))>
            =>
            Add [id A] <Vector(float64, shape=(?,))>
             ├─ x [id B] <Vector(float64, shape=(?,))>
             ├─ y [id C] <Vector(float64, shape=(?,))>
             └─ z [id D] <Vector(float64, shape=(?,))>
            Mul [id E] <Vector(float64, shape=(?,))>
             ├─ x [id B] <Vector(float64, shape=(?,))>
             ├─ y [id C] <Vector(float64, shape=(?,))>
             ├─ z [id D] <Vector(float64, shape=(?,))>
             └─ x [id B] <Vector(float64, shape=(?,))>
        "#]],
    );
    // An inner sum used twice is not flattened (it would be computed twice).
    let s = &x + &y;
    check_unchanged(&[&((&s + &z) * &s)], &["flatten_add_mul"]);
}

#[test]
fn combine_constants() {
    let x = fvec("x");
    check(
        &[&((&x + 1.0) + 2.0), &((&x * 2.0) * 3.0)],
        &["flatten_add_mul", "combine_constants"],
        expect![[r#"
            Add [id A] <Vector(float64, shape=(?,))>
             ├─ Add [id B] <Vector(float64, shape=(?,))>
             │  ├─ x [id C] <Vector(float64, shape=(?,))>
             │  └─ ExpandDims{axis=0} [id D] <Vector(float64, shape=(1,))>
             │     └─ 1.0 [id E] <Scalar(float64, shape=())>
             └─ ExpandDims{axis=0} [id F] <Vector(float64, shape=(1,))>
                └─ 2.0 [id G] <Scalar(float64, shape=())>
            Mul [id H] <Vector(float64, shape=(?,))>
             ├─ Mul [id I] <Vector(float64, shape=(?,))>
             │  ├─ x [id C] <Vector(float64, shape=(?,))>
             │  └─ ExpandDims{axis=0} [id J] <Vector(float64, shape=(1,))>
             │     └─ 2.0 [id K] <Scalar(float64, shape=())>
             └─ ExpandDims{axis=0} [id L] <Vector(float64, shape=(1,))>
                └─ 3.0 [id M] <Scalar(float64, shape=())>
            =>
            Add [id A] <Vector(float64, shape=(?,))>
             ├─ x [id B] <Vector(float64, shape=(?,))>
             └─ [3.0] [id C] <Vector(float64, shape=(1,))>
            Mul [id D] <Vector(float64, shape=(?,))>
             ├─ x [id B] <Vector(float64, shape=(?,))>
             └─ [6.0] [id E] <Vector(float64, shape=(1,))>
        "#]],
    );
}

#[test]
fn shape_constant() {
    let x = tensor("x", Float64, [Some(2), Some(5)]);
    check(
        &[&x.shape()],
        &["shape_constant"],
        expect![[r#"
        Shape [id A] <Vector(int64, shape=(2,))>
         └─ x [id B] <Matrix(float64, shape=(2, 5))>
        =>
        [2, 5] [id A] <Vector(int64, shape=(2,))>
    "#]],
    );
}

#[test]
fn shape_of_elemwise() {
    let (x, y) = (matrix("x", Float64), tensor("y", Float64, [None, Some(1)]));
    check(
        &[&(x.exp() + &y).shape()],
        &["shape_of_elemwise", "subtensor_of_make_vector"],
        expect![[r#"
        Shape [id A] <Vector(int64, shape=(2,))>
         └─ Add [id B] <Matrix(float64, shape=(?, ?))>
            ├─ Exp [id C] <Matrix(float64, shape=(?, ?))>
            │  └─ x [id D] <Matrix(float64, shape=(?, ?))>
            └─ y [id E] <Matrix(float64, shape=(?, 1))>
        =>
        MakeVector{int64} [id A] <Vector(int64, shape=(2,))>
         ├─ Subtensor{i} [id B] <Scalar(int64, shape=())>
         │  ├─ Shape [id C] <Vector(int64, shape=(2,))>
         │  │  └─ x [id D] <Matrix(float64, shape=(?, ?))>
         │  └─ 0 [id E] <Scalar(int64, shape=())>
         └─ Subtensor{i} [id F] <Scalar(int64, shape=())>
            ├─ Shape [id G] <Vector(int64, shape=(2,))>
            │  └─ x [id D] <Matrix(float64, shape=(?, ?))>
            └─ 1 [id H] <Scalar(int64, shape=())>
    "#]],
    );
}

#[test]
fn shape_of_dot() {
    let (a, b, v) = (
        matrix("a", Float64),
        tensor("b", Float64, [None, Some(3)]),
        vector("v", Float64),
    );
    check(
        &[&a.dot(&b).shape(), &a.dot(&v).shape()],
        &["shape_of_dot"],
        expect![[r#"
            Shape [id A] <Vector(int64, shape=(2,))>
             └─ Dot [id B] <Matrix(float64, shape=(?, 3))>
                ├─ a [id C] <Matrix(float64, shape=(?, ?))>
                └─ b [id D] <Matrix(float64, shape=(?, 3))>
            Shape [id E] <Vector(int64, shape=(1,))>
             └─ Dot [id F] <Vector(float64, shape=(?,))>
                ├─ a [id C] <Matrix(float64, shape=(?, ?))>
                └─ v [id G] <Vector(float64, shape=(?,))>
            =>
            MakeVector{int64} [id A] <Vector(int64, shape=(2,))>
             ├─ Subtensor{i} [id B] <Scalar(int64, shape=())>
             │  ├─ Shape [id C] <Vector(int64, shape=(2,))>
             │  │  └─ a [id D] <Matrix(float64, shape=(?, ?))>
             │  └─ 0 [id E] <Scalar(int64, shape=())>
             └─ 3 [id F] <Scalar(int64, shape=())>
            MakeVector{int64} [id G] <Vector(int64, shape=(1,))>
             └─ Subtensor{i} [id H] <Scalar(int64, shape=())>
                ├─ Shape [id I] <Vector(int64, shape=(2,))>
                │  └─ a [id D] <Matrix(float64, shape=(?, ?))>
                └─ 0 [id J] <Scalar(int64, shape=())>
        "#]],
    );
    check_unchanged(&[&v.dot(&v).shape()], &["shape_of_dot"]);
}

#[test]
fn subtensor_of_make_vector() {
    let (a, b) = (scalar("a", Int64), scalar("b", Int64));
    let v = make_vector(&[(&a).into(), (&b).into()]);
    check(
        &[&(v.get(idx![1]) + 1i64)],
        &["subtensor_of_make_vector"],
        expect![[r#"
        Add [id A] <Scalar(int64, shape=())>
         ├─ Subtensor{i} [id B] <Scalar(int64, shape=())>
         │  ├─ MakeVector{int64} [id C] <Vector(int64, shape=(2,))>
         │  │  ├─ a [id D] <Scalar(int64, shape=())>
         │  │  └─ b [id E] <Scalar(int64, shape=())>
         │  └─ 1 [id F] <Scalar(int64, shape=())>
         └─ 1 [id G] <Scalar(int64, shape=())>
        =>
        Add [id A] <Scalar(int64, shape=())>
         ├─ b [id B] <Scalar(int64, shape=())>
         └─ 1 [id C] <Scalar(int64, shape=())>
    "#]],
    );
}

#[test]
fn lift_dimshuffle() {
    let (x, y) = (matrix("x", Float64), matrix("y", Float64));
    check(
        &[&(x.exp() + &y).t()],
        &["lift_dimshuffle"],
        expect![[r#"
        Transpose{axes=[1, 0]} [id A] <Matrix(float64, shape=(?, ?))>
         └─ Add [id B] <Matrix(float64, shape=(?, ?))>
            ├─ Exp [id C] <Matrix(float64, shape=(?, ?))>
            │  └─ x [id D] <Matrix(float64, shape=(?, ?))>
            └─ y [id E] <Matrix(float64, shape=(?, ?))>
        =>
        Add [id A] <Matrix(float64, shape=(?, ?))>
         ├─ Exp [id B] <Matrix(float64, shape=(?, ?))>
         │  └─ Transpose{axes=[1, 0]} [id C] <Matrix(float64, shape=(?, ?))>
         │     └─ x [id D] <Matrix(float64, shape=(?, ?))>
         └─ Transpose{axes=[1, 0]} [id E] <Matrix(float64, shape=(?, ?))>
            └─ y [id F] <Matrix(float64, shape=(?, ?))>
    "#]],
    );
}

#[test]
fn lift_subtensor() {
    let (x, y) = (matrix("x", Float64), tensor("y", Float64, [Some(1), None]));
    check(
        &[&(x.exp() * &y).get(idx![1.., 0])],
        &["lift_subtensor"],
        expect![[r#"
            Subtensor{start:, i} [id A] <Vector(float64, shape=(?,))>
             ├─ Mul [id B] <Matrix(float64, shape=(?, ?))>
             │  ├─ Exp [id C] <Matrix(float64, shape=(?, ?))>
             │  │  └─ x [id D] <Matrix(float64, shape=(?, ?))>
             │  └─ y [id E] <Matrix(float64, shape=(1, ?))>
             ├─ 1 [id F] <Scalar(int64, shape=())>
             └─ 0 [id G] <Scalar(int64, shape=())>
            =>
            Mul [id A] <Vector(float64, shape=(?,))>
             ├─ Exp [id B] <Vector(float64, shape=(?,))>
             │  └─ Subtensor{start:, i} [id C] <Vector(float64, shape=(?,))>
             │     ├─ x [id D] <Matrix(float64, shape=(?, ?))>
             │     ├─ 1 [id E] <Scalar(int64, shape=())>
             │     └─ 0 [id F] <Scalar(int64, shape=())>
             └─ Subtensor{:, i} [id G] <Vector(float64, shape=(1,))>
                ├─ y [id H] <Matrix(float64, shape=(1, ?))>
                └─ 0 [id F] <Scalar(int64, shape=())>
        "#]],
    );
    // The Elemwise result is also an output: lifting would compute the selected part twice.
    let e = x.exp();
    check_unchanged(&[&e.get(idx![0]), &e], &["lift_subtensor"]);
}

// ---------------------------------------------------------------- stabilize

#[test]
fn log1p_from_log() {
    let x = fvec("x");
    check(
        &[&(1.0 + &x).log()],
        &["log1p_from_log"],
        expect![[r#"
        Log [id A] <Vector(float64, shape=(?,))>
         └─ Add [id B] <Vector(float64, shape=(?,))>
            ├─ ExpandDims{axis=0} [id C] <Vector(float64, shape=(1,))>
            │  └─ 1.0 [id D] <Scalar(float64, shape=())>
            └─ x [id E] <Vector(float64, shape=(?,))>
        =>
        Log1p [id A] <Vector(float64, shape=(?,))>
         └─ x [id B] <Vector(float64, shape=(?,))>
    "#]],
    );
}

#[test]
fn expm1_from_exp() {
    let x = fvec("x");
    check(
        &[&(x.exp() - 1.0)],
        &["expm1_from_exp"],
        expect![[r#"
        Sub [id A] <Vector(float64, shape=(?,))>
         ├─ Exp [id B] <Vector(float64, shape=(?,))>
         │  └─ x [id C] <Vector(float64, shape=(?,))>
         └─ ExpandDims{axis=0} [id D] <Vector(float64, shape=(1,))>
            └─ 1.0 [id E] <Scalar(float64, shape=())>
        =>
        Expm1 [id A] <Vector(float64, shape=(?,))>
         └─ x [id B] <Vector(float64, shape=(?,))>
    "#]],
    );
}

#[test]
fn sigmoid_complement() {
    let x = fvec("x");
    check(
        &[&(1.0 - x.sigmoid())],
        &["sigmoid_complement"],
        expect![[r#"
        Sub [id A] <Vector(float64, shape=(?,))>
         ├─ ExpandDims{axis=0} [id B] <Vector(float64, shape=(1,))>
         │  └─ 1.0 [id C] <Scalar(float64, shape=())>
         └─ Sigmoid [id D] <Vector(float64, shape=(?,))>
            └─ x [id E] <Vector(float64, shape=(?,))>
        =>
        Sigmoid [id A] <Vector(float64, shape=(?,))>
         └─ Neg [id B] <Vector(float64, shape=(?,))>
            └─ x [id C] <Vector(float64, shape=(?,))>
    "#]],
    );
}

#[test]
fn log_sigmoid() {
    let x = fvec("x");
    check(
        &[&x.sigmoid().log()],
        &["log_sigmoid"],
        expect![[r#"
        Log [id A] <Vector(float64, shape=(?,))>
         └─ Sigmoid [id B] <Vector(float64, shape=(?,))>
            └─ x [id C] <Vector(float64, shape=(?,))>
        =>
        Neg [id A] <Vector(float64, shape=(?,))>
         └─ Softplus [id B] <Vector(float64, shape=(?,))>
            └─ Neg [id C] <Vector(float64, shape=(?,))>
               └─ x [id D] <Vector(float64, shape=(?,))>
    "#]],
    );
}

#[test]
fn log_one_minus_sigmoid() {
    let x = fvec("x");
    check(
        &[&(1.0 - x.sigmoid()).log()],
        &["log_one_minus_sigmoid"],
        expect![[r#"
        Log [id A] <Vector(float64, shape=(?,))>
         └─ Sub [id B] <Vector(float64, shape=(?,))>
            ├─ ExpandDims{axis=0} [id C] <Vector(float64, shape=(1,))>
            │  └─ 1.0 [id D] <Scalar(float64, shape=())>
            └─ Sigmoid [id E] <Vector(float64, shape=(?,))>
               └─ x [id F] <Vector(float64, shape=(?,))>
        =>
        Neg [id A] <Vector(float64, shape=(?,))>
         └─ Softplus [id B] <Vector(float64, shape=(?,))>
            └─ x [id C] <Vector(float64, shape=(?,))>
    "#]],
    );
}

#[test]
fn softplus_from_log1p() {
    let x = fvec("x");
    check(
        &[&x.exp().log1p()],
        &["softplus_from_log1p"],
        expect![[r#"
        Log1p [id A] <Vector(float64, shape=(?,))>
         └─ Exp [id B] <Vector(float64, shape=(?,))>
            └─ x [id C] <Vector(float64, shape=(?,))>
        =>
        Softplus [id A] <Vector(float64, shape=(?,))>
         └─ x [id B] <Vector(float64, shape=(?,))>
    "#]],
    );
}

#[test]
fn log1mexp_from_log() {
    let x = fvec("x");
    let neg = -&x;
    check(
        &[&(1.0 - neg.exp()).log()],
        &["log1mexp_from_log"],
        expect![[r#"
        Log [id A] <Vector(float64, shape=(?,))>
         └─ Sub [id B] <Vector(float64, shape=(?,))>
            ├─ ExpandDims{axis=0} [id C] <Vector(float64, shape=(1,))>
            │  └─ 1.0 [id D] <Scalar(float64, shape=())>
            └─ Exp [id E] <Vector(float64, shape=(?,))>
               └─ Neg [id F] <Vector(float64, shape=(?,))>
                  └─ x [id G] <Vector(float64, shape=(?,))>
        =>
        Log1mexp [id A] <Vector(float64, shape=(?,))>
         └─ Neg [id B] <Vector(float64, shape=(?,))>
            └─ x [id C] <Vector(float64, shape=(?,))>
    "#]],
    );
}

#[test]
fn log_softmax_from_log() {
    let x = matrix("x", Float64);
    let e = x.exp();
    let sm = &e / e.sum([1]).expand_dims(1);
    check(
        &[&sm.log()],
        &["log_softmax_from_log"],
        expect![[r#"
        Log [id A] <Matrix(float64, shape=(?, ?))>
         └─ TrueDiv [id B] <Matrix(float64, shape=(?, ?))>
            ├─ Exp [id C] <Matrix(float64, shape=(?, ?))>
            │  └─ x [id D] <Matrix(float64, shape=(?, ?))>
            └─ ExpandDims{axis=1} [id E] <Matrix(float64, shape=(?, 1))>
               └─ Sum{axes=[1]} [id F] <Vector(float64, shape=(?,))>
                  └─ Exp [id C] <Matrix(float64, shape=(?, ?))>
        =>
        Sub [id A] <Matrix(float64, shape=(?, ?))>
         ├─ x [id B] <Matrix(float64, shape=(?, ?))>
         └─ Log [id C] <Matrix(float64, shape=(?, 1))>
            └─ ExpandDims{axis=1} [id D] <Matrix(float64, shape=(?, 1))>
               └─ Sum{axes=[1]} [id E] <Vector(float64, shape=(?,))>
                  └─ Exp [id F] <Matrix(float64, shape=(?, ?))>
                     └─ x [id B] <Matrix(float64, shape=(?, ?))>
    "#]],
    );
}

#[test]
fn logsumexp_from_log() {
    let x = matrix("x", Float64);
    check(
        &[&x.exp().sum([1]).log()],
        &["logsumexp_from_log"],
        expect![[r#"
            Log [id A] <Vector(float64, shape=(?,))>
             └─ Sum{axes=[1]} [id B] <Vector(float64, shape=(?,))>
                └─ Exp [id C] <Matrix(float64, shape=(?, ?))>
                   └─ x [id D] <Matrix(float64, shape=(?, ?))>
            =>
            LogSumExp{axes=[1]} [id A] <Vector(float64, shape=(?,))>
             └─ x [id B] <Matrix(float64, shape=(?, ?))>
        "#]],
    );
}

#[test]
fn log_softmax_from_softmax() {
    let x = matrix("x", Float64);
    check(
        &[&x.softmax(1).log()],
        &["log_softmax_from_softmax"],
        expect![[r#"
            Log [id A] <Matrix(float64, shape=(?, ?))>
             └─ Softmax{axis=1} [id B] <Matrix(float64, shape=(?, ?))>
                └─ x [id C] <Matrix(float64, shape=(?, ?))>
            =>
            Sub [id A] <Matrix(float64, shape=(?, ?))>
             ├─ x [id B] <Matrix(float64, shape=(?, ?))>
             └─ ExpandDims{axis=1} [id C] <Matrix(float64, shape=(?, 1))>
                └─ LogSumExp{axes=[1]} [id D] <Vector(float64, shape=(?,))>
                   └─ x [id B] <Matrix(float64, shape=(?, ?))>
        "#]],
    );
}

#[test]
fn softmax_from_div() {
    let x = matrix("x", Float64);
    let e = x.exp();
    check(
        &[&(&e / e.sum([1]).expand_dims(1))],
        &["softmax_from_div"],
        expect![[r#"
            TrueDiv [id A] <Matrix(float64, shape=(?, ?))>
             ├─ Exp [id B] <Matrix(float64, shape=(?, ?))>
             │  └─ x [id C] <Matrix(float64, shape=(?, ?))>
             └─ ExpandDims{axis=1} [id D] <Matrix(float64, shape=(?, 1))>
                └─ Sum{axes=[1]} [id E] <Vector(float64, shape=(?,))>
                   └─ Exp [id B] <Matrix(float64, shape=(?, ?))>
            =>
            Softmax{axis=1} [id A] <Matrix(float64, shape=(?, ?))>
             └─ x [id B] <Matrix(float64, shape=(?, ?))>
        "#]],
    );
    // A sum put back on another axis is not a softmax.
    let s = tensor("s", Float64, [Some(3), Some(3)]);
    let e = s.exp();
    check_unchanged(&[&(&e / e.sum([1]).expand_dims(0))], &["softmax_from_div"]);
}

// ---------------------------------------------------------------- specialize

#[test]
fn pow_specialize() {
    let x = fvec("x");
    check(
        &[&x.pow(2.0), &x.pow(3.0), &x.pow(0.5), &x.pow(-1.0)],
        &["pow_specialize"],
        expect![[r#"
            Pow [id A] <Vector(float64, shape=(?,))>
             ├─ x [id B] <Vector(float64, shape=(?,))>
             └─ ExpandDims{axis=0} [id C] <Vector(float64, shape=(1,))>
                └─ 2.0 [id D] <Scalar(float64, shape=())>
            Pow [id E] <Vector(float64, shape=(?,))>
             ├─ x [id B] <Vector(float64, shape=(?,))>
             └─ ExpandDims{axis=0} [id F] <Vector(float64, shape=(1,))>
                └─ 3.0 [id G] <Scalar(float64, shape=())>
            Pow [id H] <Vector(float64, shape=(?,))>
             ├─ x [id B] <Vector(float64, shape=(?,))>
             └─ ExpandDims{axis=0} [id I] <Vector(float64, shape=(1,))>
                └─ 0.5 [id J] <Scalar(float64, shape=())>
            Pow [id K] <Vector(float64, shape=(?,))>
             ├─ x [id B] <Vector(float64, shape=(?,))>
             └─ ExpandDims{axis=0} [id L] <Vector(float64, shape=(1,))>
                └─ -1.0 [id M] <Scalar(float64, shape=())>
            =>
            Sqr [id A] <Vector(float64, shape=(?,))>
             └─ x [id B] <Vector(float64, shape=(?,))>
            Mul [id C] <Vector(float64, shape=(?,))>
             ├─ Sqr [id D] <Vector(float64, shape=(?,))>
             │  └─ x [id B] <Vector(float64, shape=(?,))>
             └─ x [id B] <Vector(float64, shape=(?,))>
            Sqrt [id E] <Vector(float64, shape=(?,))>
             └─ x [id B] <Vector(float64, shape=(?,))>
            Reciprocal [id F] <Vector(float64, shape=(?,))>
             └─ x [id B] <Vector(float64, shape=(?,))>
        "#]],
    );
    check_unchanged(&[&x.pow(2.5)], &["pow_specialize"]);
}

#[test]
fn div_by_constant() {
    let x = fvec("x");
    check(
        &[&(&x / 4.0)],
        &["div_by_constant"],
        expect![[r#"
        TrueDiv [id A] <Vector(float64, shape=(?,))>
         ├─ x [id B] <Vector(float64, shape=(?,))>
         └─ ExpandDims{axis=0} [id C] <Vector(float64, shape=(1,))>
            └─ 4.0 [id D] <Scalar(float64, shape=())>
        =>
        Mul [id A] <Vector(float64, shape=(?,))>
         ├─ x [id B] <Vector(float64, shape=(?,))>
         └─ [0.25] [id C] <Vector(float64, shape=(1,))>
    "#]],
    );
    check_unchanged(&[&(&x / 0.0)], &["div_by_constant"]);
}

#[test]
fn div_by_broadcast() {
    let (x, col) = (
        matrix("x", Float64),
        tensor("col", Float64, [None, Some(1)]),
    );
    check(
        &[&(&x / &col)],
        &["div_by_broadcast"],
        expect![[r#"
        TrueDiv [id A] <Matrix(float64, shape=(?, ?))>
         ├─ x [id B] <Matrix(float64, shape=(?, ?))>
         └─ col [id C] <Matrix(float64, shape=(?, 1))>
        =>
        Mul [id A] <Matrix(float64, shape=(?, ?))>
         ├─ x [id B] <Matrix(float64, shape=(?, ?))>
         └─ Reciprocal [id C] <Matrix(float64, shape=(?, 1))>
            └─ col [id D] <Matrix(float64, shape=(?, 1))>
    "#]],
    );
    // Same shapes: no saving, the division stays.
    let y = matrix("y", Float64);
    check_unchanged(&[&(&x / &y)], &["div_by_broadcast"]);
}

#[test]
fn mul_neg_one() {
    let x = fvec("x");
    check(
        &[&(&x * -1.0)],
        &["mul_neg_one"],
        expect![[r#"
        Mul [id A] <Vector(float64, shape=(?,))>
         ├─ x [id B] <Vector(float64, shape=(?,))>
         └─ ExpandDims{axis=0} [id C] <Vector(float64, shape=(1,))>
            └─ -1.0 [id D] <Scalar(float64, shape=())>
        =>
        Neg [id A] <Vector(float64, shape=(?,))>
         └─ x [id B] <Vector(float64, shape=(?,))>
    "#]],
    );
}

#[test]
fn mul_self_to_sqr() {
    let x = fvec("x");
    check(
        &[&(&x * &x)],
        &["mul_self_to_sqr"],
        expect![[r#"
        Mul [id A] <Vector(float64, shape=(?,))>
         ├─ x [id B] <Vector(float64, shape=(?,))>
         └─ x [id B] <Vector(float64, shape=(?,))>
        =>
        Sqr [id A] <Vector(float64, shape=(?,))>
         └─ x [id B] <Vector(float64, shape=(?,))>
    "#]],
    );
}

#[test]
fn reduce_of_dimshuffle() {
    let x = tensor("x", Float64, [None, None, None]);
    let y = x.dimshuffle(&[Some(2), None, Some(0), Some(1)]).sum([0, 1]);
    check(
        &[&y],
        &["reduce_of_dimshuffle"],
        expect![[r#"
        Sum{axes=[0, 1]} [id A] <Matrix(float64, shape=(?, ?))>
         └─ DimShuffle{order=[2,x,0,1]} [id B] <Tensor4(float64, shape=(?, 1, ?, ?))>
            └─ x [id C] <Tensor3(float64, shape=(?, ?, ?))>
        =>
        Sum{axes=[2]} [id A] <Matrix(float64, shape=(?, ?))>
         └─ x [id B] <Tensor3(float64, shape=(?, ?, ?))>
    "#]],
    );
}

#[test]
fn sum_of_scaled() {
    let x = matrix("x", Float64);
    check(
        &[&(&x * 3.0).sum([0])],
        &["sum_of_scaled"],
        expect![[r#"
        Sum{axes=[0]} [id A] <Vector(float64, shape=(?,))>
         └─ Mul [id B] <Matrix(float64, shape=(?, ?))>
            ├─ x [id C] <Matrix(float64, shape=(?, ?))>
            └─ ExpandDims{axes=[0, 1]} [id D] <Matrix(float64, shape=(1, 1))>
               └─ 3.0 [id E] <Scalar(float64, shape=())>
        =>
        Mul [id A] <Vector(float64, shape=(?,))>
         ├─ Sum{axes=[0]} [id B] <Vector(float64, shape=(?,))>
         │  └─ x [id C] <Matrix(float64, shape=(?, ?))>
         └─ [3.0] [id D] <Vector(float64, shape=(1,))>
    "#]],
    );
}

#[test]
fn logsumexp_across_rows() {
    // Written out where the axis is known not to be empty; moved last where it may be
    // (the written-out maximum would fail on an empty axis, whose logsumexp is -inf).
    let x = tensor("x", Float64, [Some(3), None]);
    let y = matrix("y", Float64);
    check(
        &[&x.logsumexp([0]), &x.logsumexp([1]), &y.logsumexp([0])],
        &["logsumexp_across_rows"],
        expect![[r#"
            LogSumExp{axes=[0]} [id A] <Vector(float64, shape=(?,))>
             └─ x [id B] <Matrix(float64, shape=(3, ?))>
            LogSumExp{axes=[1]} [id C] <Vector(float64, shape=(3,))>
             └─ x [id B] <Matrix(float64, shape=(3, ?))>
            LogSumExp{axes=[0]} [id D] <Vector(float64, shape=(?,))>
             └─ y [id E] <Matrix(float64, shape=(?, ?))>
            =>
            Add [id A] <Vector(float64, shape=(?,))>
             ├─ Log [id B] <Vector(float64, shape=(?,))>
             │  └─ Sum{axes=[0]} [id C] <Vector(float64, shape=(?,))>
             │     └─ Exp [id D] <Matrix(float64, shape=(3, ?))>
             │        └─ Sub [id E] <Matrix(float64, shape=(3, ?))>
             │           ├─ x [id F] <Matrix(float64, shape=(3, ?))>
             │           └─ ExpandDims{axis=0} [id G] <Matrix(float64, shape=(1, ?))>
             │              └─ Switch [id H] <Vector(float64, shape=(?,))>
             │                 ├─ IsInf [id I] <Vector(bool, shape=(?,))>
             │                 │  └─ Max{axes=[0]} [id J] <Vector(float64, shape=(?,))>
             │                 │     └─ x [id F] <Matrix(float64, shape=(3, ?))>
             │                 ├─ [0.0] [id K] <Vector(float64, shape=(1,))>
             │                 └─ Max{axes=[0]} [id L] <Vector(float64, shape=(?,))>
             │                    └─ x [id F] <Matrix(float64, shape=(3, ?))>
             └─ Switch [id M] <Vector(float64, shape=(?,))>
                ├─ IsInf [id N] <Vector(bool, shape=(?,))>
                │  └─ Max{axes=[0]} [id O] <Vector(float64, shape=(?,))>
                │     └─ x [id F] <Matrix(float64, shape=(3, ?))>
                ├─ [0.0] [id P] <Vector(float64, shape=(1,))>
                └─ Max{axes=[0]} [id Q] <Vector(float64, shape=(?,))>
                   └─ x [id F] <Matrix(float64, shape=(3, ?))>
            LogSumExp{axes=[1]} [id R] <Vector(float64, shape=(3,))>
             └─ x [id F] <Matrix(float64, shape=(3, ?))>
            LogSumExp{axes=[0]} [id S] <Vector(float64, shape=(?,))>
             └─ y [id T] <Matrix(float64, shape=(?, ?))>
        "#]],
    );
}

#[test]
fn softmax_across_rows() {
    let x = tensor("x", Float64, [Some(3), None]);
    let y = matrix("y", Float64);
    check(
        &[&x.softmax(0), &x.softmax(1), &y.softmax(0)],
        &["softmax_across_rows"],
        expect![[r#"
            Softmax{axis=0} [id A] <Matrix(float64, shape=(3, ?))>
             └─ x [id B] <Matrix(float64, shape=(3, ?))>
            Softmax{axis=1} [id C] <Matrix(float64, shape=(3, ?))>
             └─ x [id B] <Matrix(float64, shape=(3, ?))>
            Softmax{axis=0} [id D] <Matrix(float64, shape=(?, ?))>
             └─ y [id E] <Matrix(float64, shape=(?, ?))>
            =>
            TrueDiv [id A] <Matrix(float64, shape=(3, ?))>
             ├─ Exp [id B] <Matrix(float64, shape=(3, ?))>
             │  └─ Sub [id C] <Matrix(float64, shape=(3, ?))>
             │     ├─ x [id D] <Matrix(float64, shape=(3, ?))>
             │     └─ ExpandDims{axis=0} [id E] <Matrix(float64, shape=(1, ?))>
             │        └─ Max{axes=[0]} [id F] <Vector(float64, shape=(?,))>
             │           └─ x [id D] <Matrix(float64, shape=(3, ?))>
             └─ ExpandDims{axis=0} [id G] <Matrix(float64, shape=(1, ?))>
                └─ Sum{axes=[0]} [id H] <Vector(float64, shape=(?,))>
                   └─ Exp [id I] <Matrix(float64, shape=(3, ?))>
                      └─ Sub [id J] <Matrix(float64, shape=(3, ?))>
                         ├─ x [id D] <Matrix(float64, shape=(3, ?))>
                         └─ ExpandDims{axis=0} [id K] <Matrix(float64, shape=(1, ?))>
                            └─ Max{axes=[0]} [id L] <Vector(float64, shape=(?,))>
                               └─ x [id D] <Matrix(float64, shape=(3, ?))>
            Softmax{axis=1} [id M] <Matrix(float64, shape=(3, ?))>
             └─ x [id D] <Matrix(float64, shape=(3, ?))>
            Transpose{axes=[1, 0]} [id N] <Matrix(float64, shape=(?, ?))>
             └─ Softmax{axis=1} [id O] <Matrix(float64, shape=(?, ?))>
                └─ Transpose{axes=[1, 0]} [id P] <Matrix(float64, shape=(?, ?))>
                   └─ y [id Q] <Matrix(float64, shape=(?, ?))>
        "#]],
    );
}

#[test]
fn float32_scan_in_float64() {
    let x = matrix("x", Float32);
    check(
        &[&x.cumsum(Some(1)), &x.cumprod(None)],
        &["float32_scan_in_float64"],
        expect![[r#"
            CumSum{axis=1} [id A] <Matrix(float32, shape=(?, ?))>
             └─ x [id B] <Matrix(float32, shape=(?, ?))>
            CumProd{axis=None} [id C] <Vector(float32, shape=(?,))>
             └─ x [id B] <Matrix(float32, shape=(?, ?))>
            =>
            Cast{float32} [id A] <Matrix(float32, shape=(?, ?))>
             └─ CumSum{axis=1} [id B] <Matrix(float64, shape=(?, ?))>
                └─ Cast{float64} [id C] <Matrix(float64, shape=(?, ?))>
                   └─ x [id D] <Matrix(float32, shape=(?, ?))>
            Cast{float32} [id E] <Vector(float32, shape=(?,))>
             └─ CumProd{axis=None} [id F] <Vector(float64, shape=(?,))>
                └─ Cast{float64} [id G] <Matrix(float64, shape=(?, ?))>
                   └─ x [id D] <Matrix(float32, shape=(?, ?))>
        "#]],
    );
    check_unchanged(
        &[&matrix("y", Float64).cumsum(Some(0))],
        &["float32_scan_in_float64"],
    );
}

#[test]
fn float32_sum_in_float64() {
    let x = tensor("x", Float32, [None, None, None]);
    check(
        &[&x.sum([0]), &x.prod(None)],
        &["float32_sum_in_float64"],
        expect![[r#"
            Sum{axes=[0]} [id A] <Matrix(float32, shape=(?, ?))>
             └─ x [id B] <Tensor3(float32, shape=(?, ?, ?))>
            Prod{axes=[0, 1, 2]} [id C] <Scalar(float32, shape=())>
             └─ x [id B] <Tensor3(float32, shape=(?, ?, ?))>
            =>
            Cast{float32} [id A] <Matrix(float32, shape=(?, ?))>
             └─ Sum{axes=[0]} [id B] <Matrix(float64, shape=(?, ?))>
                └─ Cast{float64} [id C] <Tensor3(float64, shape=(?, ?, ?))>
                   └─ x [id D] <Tensor3(float32, shape=(?, ?, ?))>
            Cast{float32} [id E] <Scalar(float32, shape=())>
             └─ Prod{axes=[0, 1, 2]} [id F] <Scalar(float64, shape=())>
                └─ Cast{float64} [id G] <Tensor3(float64, shape=(?, ?, ?))>
                   └─ x [id D] <Tensor3(float32, shape=(?, ?, ?))>
        "#]],
    );
    // Along the last axis alone, in float64, and maxima: unchanged.
    check_unchanged(
        &[
            &x.sum([2]),
            &tensor("y", Float64, [None, None]).sum([0]),
            &x.max([0]),
        ],
        &["float32_sum_in_float64"],
    );
}

// ---------------------------------------------------------------- fusion

#[test]
fn elemwise_fusion_chain_and_shared_results() {
    let (x, y) = (fvec("x"), fvec("y"));
    let e = x.exp();
    let a = (&e * &y).sin();
    // `e` is also an output: it becomes a second output of the composite, not recomputed.
    check(
        &[&a, &e],
        &["elemwise_fusion"],
        expect![[r#"
        Sin [id A] <Vector(float64, shape=(?,))>
         └─ Mul [id B] <Vector(float64, shape=(?,))>
            ├─ Exp [id C] <Vector(float64, shape=(?,))>
            │  └─ x [id D] <Vector(float64, shape=(?,))>
            └─ y [id E] <Vector(float64, shape=(?,))>
        Exp [id C] <Vector(float64, shape=(?,))>
        =>
        Composite{t0=exp(i0); t0, sin(mul(t0, i1))}.1 [id A] <Vector(float64, shape=(?,))>
         ├─ x [id B] <Vector(float64, shape=(?,))>
         └─ y [id C] <Vector(float64, shape=(?,))>
        Composite{t0=exp(i0); t0, sin(mul(t0, i1))}.0 [id A] <Vector(float64, shape=(?,))>
    "#]],
    );
}

#[test]
fn elemwise_fusion_does_not_recompute_broadcast_values() {
    let (x, row) = (
        matrix("x", Float64),
        tensor("row", Float64, [Some(1), None]),
    );
    // exp(row) is computed on a (1, n) value: fusing it into the (m, n) kernel would
    // compute it m times, so it stays a separate node.
    let y = &x * row.exp();
    check_unchanged(&[&y], &["elemwise_fusion"]);
}

#[test]
fn elemwise_fusion_keeps_the_graph_acyclic() {
    // softmax: exp(x) feeds both a reduction and the division that needs the reduction.
    let x = matrix("x", Float64);
    let e = (&x - 1.0).exp();
    let y = &e / e.sum([1]).expand_dims(1);
    check(
        &[&y],
        &["elemwise_fusion"],
        expect![[r#"
        TrueDiv [id A] <Matrix(float64, shape=(?, ?))>
         ├─ Exp [id B] <Matrix(float64, shape=(?, ?))>
         │  └─ Sub [id C] <Matrix(float64, shape=(?, ?))>
         │     ├─ x [id D] <Matrix(float64, shape=(?, ?))>
         │     └─ ExpandDims{axes=[0, 1]} [id E] <Matrix(float64, shape=(1, 1))>
         │        └─ 1.0 [id F] <Scalar(float64, shape=())>
         └─ ExpandDims{axis=1} [id G] <Matrix(float64, shape=(?, 1))>
            └─ Sum{axes=[1]} [id H] <Vector(float64, shape=(?,))>
               └─ Exp [id B] <Matrix(float64, shape=(?, ?))>
        =>
        TrueDiv [id A] <Matrix(float64, shape=(?, ?))>
         ├─ Composite{exp(sub(i0, i1))} [id B] <Matrix(float64, shape=(?, ?))>
         │  ├─ x [id C] <Matrix(float64, shape=(?, ?))>
         │  └─ ExpandDims{axes=[0, 1]} [id D] <Matrix(float64, shape=(1, 1))>
         │     └─ 1.0 [id E] <Scalar(float64, shape=())>
         └─ ExpandDims{axis=1} [id F] <Matrix(float64, shape=(?, 1))>
            └─ Sum{axes=[1]} [id G] <Vector(float64, shape=(?,))>
               └─ Composite{exp(sub(i0, i1))} [id B] <Matrix(float64, shape=(?, ?))>
    "#]],
    );
}

#[test]
fn reduction_fusion() {
    let (x, y) = (matrix("x", Float64), matrix("y", Float64));
    check(
        &[&(x.exp() * &y).sum([1])],
        &["elemwise_fusion", "reduction_fusion"],
        expect![[r#"
            Sum{axes=[1]} [id A] <Vector(float64, shape=(?,))>
             └─ Mul [id B] <Matrix(float64, shape=(?, ?))>
                ├─ Exp [id C] <Matrix(float64, shape=(?, ?))>
                │  └─ x [id D] <Matrix(float64, shape=(?, ?))>
                └─ y [id E] <Matrix(float64, shape=(?, ?))>
            =>
            Sum{axes=[1]} of Composite{mul(exp(i0), i1)} [id A] <Vector(float64, shape=(?,))>
             ├─ x [id B] <Matrix(float64, shape=(?, ?))>
             └─ y [id C] <Matrix(float64, shape=(?, ?))>
        "#]],
    );
}

#[test]
fn reduction_fusion_keeps_values_used_elsewhere() {
    // exp(x - 1) is summed and also divided by the sum: one pass computes the values, keeps
    // them as a second output, and sums them.
    let x = matrix("x", Float64);
    let e = (&x - 1.0).exp();
    let y = &e * e.sum([1]).expand_dims(1);
    check(
        &[&y],
        &["elemwise_fusion", "reduction_fusion"],
        expect![[r#"
        Mul [id A] <Matrix(float64, shape=(?, ?))>
         ├─ Exp [id B] <Matrix(float64, shape=(?, ?))>
         │  └─ Sub [id C] <Matrix(float64, shape=(?, ?))>
         │     ├─ x [id D] <Matrix(float64, shape=(?, ?))>
         │     └─ ExpandDims{axes=[0, 1]} [id E] <Matrix(float64, shape=(1, 1))>
         │        └─ 1.0 [id F] <Scalar(float64, shape=())>
         └─ ExpandDims{axis=1} [id G] <Matrix(float64, shape=(?, 1))>
            └─ Sum{axes=[1]} [id H] <Vector(float64, shape=(?,))>
               └─ Exp [id B] <Matrix(float64, shape=(?, ?))>
        =>
        Mul [id A] <Matrix(float64, shape=(?, ?))>
         ├─ Sum{axes=[1]} of Composite{exp(sub(i0, i1))} keeping values.1 [id B] <Matrix(float64, shape=(?, ?))>
         │  ├─ x [id C] <Matrix(float64, shape=(?, ?))>
         │  └─ ExpandDims{axes=[0, 1]} [id D] <Matrix(float64, shape=(1, 1))>
         │     └─ 1.0 [id E] <Scalar(float64, shape=())>
         └─ ExpandDims{axis=1} [id F] <Matrix(float64, shape=(?, 1))>
            └─ Sum{axes=[1]} of Composite{exp(sub(i0, i1))} keeping values.0 [id B] <Vector(float64, shape=(?,))>
    "#]],
    );
}

// ---------------------------------------------------------------- inline

#[test]
fn inline_op_from_graph() {
    // An OpFromGraph marked inline (the default) becomes its inner graph on the node's
    // inputs; a kept one stays.
    let (x, y) = (fvec("x"), fvec("y"));
    let g = tensorlift::ir::op_from_graph(&[&x, &y], &[&(x.exp() * &y)])
        .unwrap()
        .named("g");
    let (a, b) = (fvec("a"), fvec("b"));
    let inlined = g.apply(&[&a, &b]).unwrap();
    let kept = g.inline(false).apply(&[&b, &a]).unwrap();
    check(
        &[&(&inlined[0] + &kept[0])],
        &["inline_op_from_graph"],
        expect![[r#"
            Add [id A] <Vector(float64, shape=(?,))>
             ├─ OpFromGraph{g} [id B] <Vector(float64, shape=(?,))>
             │  ├─ a [id C] <Vector(float64, shape=(?,))>
             │  └─ b [id D] <Vector(float64, shape=(?,))>
             └─ OpFromGraph{g, kept} [id E] <Vector(float64, shape=(?,))>
                ├─ b [id D] <Vector(float64, shape=(?,))>
                └─ a [id C] <Vector(float64, shape=(?,))>

            Inner graphs:

            OpFromGraph{g} [id B]
             ← Mul [id F] <Vector(float64, shape=(?,))>
                ├─ Exp [id G] <Vector(float64, shape=(?,))>
                │  └─ *0-<Vector(float64, shape=(?,))> [id H]
                └─ *1-<Vector(float64, shape=(?,))> [id I]

            OpFromGraph{g, kept} [id E]
             ← Mul [id J] <Vector(float64, shape=(?,))>
                ├─ Exp [id K] <Vector(float64, shape=(?,))>
                │  └─ *0-<Vector(float64, shape=(?,))> [id L]
                └─ *1-<Vector(float64, shape=(?,))> [id M]
            =>
            Add [id A] <Vector(float64, shape=(?,))>
             ├─ Mul [id B] <Vector(float64, shape=(?,))>
             │  ├─ Exp [id C] <Vector(float64, shape=(?,))>
             │  │  └─ a [id D] <Vector(float64, shape=(?,))>
             │  └─ b [id E] <Vector(float64, shape=(?,))>
             └─ OpFromGraph{g, kept} [id F] <Vector(float64, shape=(?,))>
                ├─ b [id E] <Vector(float64, shape=(?,))>
                └─ a [id D] <Vector(float64, shape=(?,))>

            Inner graphs:

            OpFromGraph{g, kept} [id F]
             ← Mul [id G] <Vector(float64, shape=(?,))>
                ├─ Exp [id H] <Vector(float64, shape=(?,))>
                │  └─ *0-<Vector(float64, shape=(?,))> [id I]
                └─ *1-<Vector(float64, shape=(?,))> [id J]
        "#]],
    );
}

// ---------------------------------------------------------------- scan

#[test]
fn scan_drop_unused_traces() {
    // Only the last state is read: the trace is not stored.
    let (ts, s0) = (fvec("ts"), scalar("s0", Float64));
    let out = scan(|s| vec![s.state(0) * 0.5 + s.sequence(0)])
        .sequences(&[&ts])
        .states(&[&s0])
        .build();
    check(
        &[&out.last(0)],
        &["scan_drop_unused_traces"],
        expect![[r#"
        Scan{sequences=[[0]], states=[[-1]], non_sequences=0}.0 [id A] <Scalar(float64, shape=())>
         ├─ ts [id B] <Vector(float64, shape=(?,))>
         └─ s0 [id C] <Scalar(float64, shape=())>

        Inner graphs:

        Scan{sequences=[[0]], states=[[-1]], non_sequences=0} [id A]
         ← Add [id D] <Scalar(float64, shape=())>
            ├─ Mul [id E] <Scalar(float64, shape=())>
            │  ├─ *1-<Scalar(float64, shape=())> [id F]
            │  └─ 0.5 [id G] <Scalar(float64, shape=())>
            └─ *0-<Scalar(float64, shape=())> [id H]
        =>
        Scan{sequences=[[0]], states=[[-1]], non_sequences=0, no trace 0}.0 [id A] <Scalar(float64, shape=())>
         ├─ ts [id B] <Vector(float64, shape=(?,))>
         └─ s0 [id C] <Scalar(float64, shape=())>

        Inner graphs:

        Scan{sequences=[[0]], states=[[-1]], non_sequences=0, no trace 0} [id A]
         ← Add [id D] <Scalar(float64, shape=())>
            ├─ Mul [id E] <Scalar(float64, shape=())>
            │  ├─ *1-<Scalar(float64, shape=())> [id F]
            │  └─ 0.5 [id G] <Scalar(float64, shape=())>
            └─ *0-<Scalar(float64, shape=())> [id H]
    "#]],
    );
    check_unchanged(&[&out.last(0), &out.trace(0)], &["scan_drop_unused_traces"]);
}

#[test]
fn scan_hoist_invariants() {
    // exp(w) reads only a non-sequence: computed once, before the loop.
    let (x0, w, n) = (fvec("x0"), fvec("w"), scalar("n", Int64));
    let out = scan(|s| vec![s.state(0) * s.non_sequence(0).exp()])
        .states(&[&x0])
        .non_sequences(&[&w])
        .n_steps(&n)
        .build();
    check(
        &[&out.last(0)],
        &["scan_hoist_invariants"],
        expect![[r#"
        Scan{sequences=[], states=[[-1]], non_sequences=1}.0 [id A] <Vector(float64, shape=(?,))>
         ├─ n [id B] <Scalar(int64, shape=())>
         ├─ x0 [id C] <Vector(float64, shape=(?,))>
         └─ w [id D] <Vector(float64, shape=(?,))>

        Inner graphs:

        Scan{sequences=[], states=[[-1]], non_sequences=1} [id A]
         ← Mul [id E] <Vector(float64, shape=(?,))>
            ├─ *0-<Vector(float64, shape=(?,))> [id F]
            └─ Exp [id G] <Vector(float64, shape=(?,))>
               └─ *1-<Vector(float64, shape=(?,))> [id H]
        =>
        Scan{sequences=[], states=[[-1]], non_sequences=2}.0 [id A] <Vector(float64, shape=(?,))>
         ├─ n [id B] <Scalar(int64, shape=())>
         ├─ x0 [id C] <Vector(float64, shape=(?,))>
         ├─ w [id D] <Vector(float64, shape=(?,))>
         └─ Exp [id E] <Vector(float64, shape=(?,))>
            └─ w [id D] <Vector(float64, shape=(?,))>

        Inner graphs:

        Scan{sequences=[], states=[[-1]], non_sequences=2} [id A]
         ← Mul [id F] <Vector(float64, shape=(?,))>
            ├─ *0-<Vector(float64, shape=(?,))> [id G]
            └─ *2-<Vector(float64, shape=(?,))> [id H]
    "#]],
    );
    let plain = scan(|s| vec![s.state(0) * s.non_sequence(0)])
        .states(&[&x0])
        .non_sequences(&[&w])
        .n_steps(&n)
        .build();
    check_unchanged(&[&plain.last(0)], &["scan_hoist_invariants"]);
}

#[test]
fn scan_push_out_sequences() {
    // sin(t) reads only the sequence's current element: one pass over ts before the loop.
    let (ts, s0) = (fvec("ts"), scalar("s0", Float64));
    let out = scan(|s| vec![s.state(0) * 0.5 + s.sequence(0).sin()])
        .sequences(&[&ts])
        .states(&[&s0])
        .build();
    check(
        &[&out.last(0)],
        &["scan_push_out_sequences"],
        expect![[r#"
            Scan{sequences=[[0]], states=[[-1]], non_sequences=0}.0 [id A] <Scalar(float64, shape=())>
             ├─ ts [id B] <Vector(float64, shape=(?,))>
             └─ s0 [id C] <Scalar(float64, shape=())>

            Inner graphs:

            Scan{sequences=[[0]], states=[[-1]], non_sequences=0} [id A]
             ← Add [id D] <Scalar(float64, shape=())>
                ├─ Mul [id E] <Scalar(float64, shape=())>
                │  ├─ *1-<Scalar(float64, shape=())> [id F]
                │  └─ 0.5 [id G] <Scalar(float64, shape=())>
                └─ Sin [id H] <Scalar(float64, shape=())>
                   └─ *0-<Scalar(float64, shape=())> [id I]
            =>
            Scan{sequences=[[0]], states=[[-1]], non_sequences=0}.0 [id A] <Scalar(float64, shape=())>
             ├─ Sin [id B] <Vector(float64, shape=(?,))>
             │  └─ ts [id C] <Vector(float64, shape=(?,))>
             └─ s0 [id D] <Scalar(float64, shape=())>

            Inner graphs:

            Scan{sequences=[[0]], states=[[-1]], non_sequences=0} [id A]
             ← Add [id E] <Scalar(float64, shape=())>
                ├─ Mul [id F] <Scalar(float64, shape=())>
                │  ├─ *1-<Scalar(float64, shape=())> [id G]
                │  └─ 0.5 [id H] <Scalar(float64, shape=())>
                └─ *0-<Scalar(float64, shape=())> [id I]
        "#]],
    );
    let until = scan(|s| {
        let next = s.state(0) + s.sequence(0).sin();
        s.until(&next.gt(100.0));
        vec![next]
    })
    .sequences(&[&ts])
    .states(&[&s0])
    .build();
    check_unchanged(&[&until.last(0)], &["scan_push_out_sequences"]);
}

// ---------------------------------------------------------------- ifelse

#[test]
fn ifelse_constant_condition() {
    let x = fvec("x");
    let yes = constant(TensorData::scalar(true));
    let out = ifelse(&yes, &[&x.exp()], &[&x.sin()]);
    check(
        &[&out[0]],
        &["ifelse_constant_condition"],
        expect![[r#"
        IfElse [id A] <Vector(float64, shape=(?,))>
         ├─ true [id B] <Scalar(bool, shape=())>
         └─ x [id C] <Vector(float64, shape=(?,))>

        Inner graphs:

        IfElse [id A]
         ← Exp [id D] <Vector(float64, shape=(?,))>
            └─ *0-<Vector(float64, shape=(?,))> [id E]

        IfElse [id A]
         ← Sin [id F] <Vector(float64, shape=(?,))>
            └─ *0-<Vector(float64, shape=(?,))> [id G]
        =>
        Exp [id A] <Vector(float64, shape=(?,))>
         └─ x [id B] <Vector(float64, shape=(?,))>
    "#]],
    );
    let c = scalar("c", Bool);
    let open = ifelse(&c, &[&x.exp()], &[&x.sin()]);
    check_unchanged(&[&open[0]], &["ifelse_constant_condition"]);
}

#[test]
fn switch_to_ifelse() {
    // One scalar condition between a sum over an array and a scalar of x: a lazy choice.
    let c = scalar("c", Bool);
    let x = fvec("x");
    check(
        &[&switch(&c, x.exp().sum(All), &(x.get(idx![0]) + 1.0))],
        &["switch_to_ifelse"],
        expect![[r#"
            Switch [id A] <Scalar(float64, shape=())>
             ├─ c [id B] <Scalar(bool, shape=())>
             ├─ Sum{axes=[0]} [id C] <Scalar(float64, shape=())>
             │  └─ Exp [id D] <Vector(float64, shape=(?,))>
             │     └─ x [id E] <Vector(float64, shape=(?,))>
             └─ Add [id F] <Scalar(float64, shape=())>
                ├─ Subtensor{i} [id G] <Scalar(float64, shape=())>
                │  ├─ x [id E] <Vector(float64, shape=(?,))>
                │  └─ 0 [id H] <Scalar(int64, shape=())>
                └─ 1.0 [id I] <Scalar(float64, shape=())>
            =>
            IfElse [id A] <Scalar(float64, shape=())>
             ├─ c [id B] <Scalar(bool, shape=())>
             └─ x [id C] <Vector(float64, shape=(?,))>

            Inner graphs:

            IfElse [id A]
             ← Sum{axes=[0]} [id D] <Scalar(float64, shape=())>
                └─ Exp [id E] <Vector(float64, shape=(?,))>
                   └─ *0-<Vector(float64, shape=(?,))> [id F]

            IfElse [id A]
             ← Add [id G] <Scalar(float64, shape=())>
                ├─ Subtensor{i} [id H] <Scalar(float64, shape=())>
                │  ├─ *0-<Vector(float64, shape=(?,))> [id I]
                │  └─ 0 [id J] <Scalar(int64, shape=())>
                └─ 1.0 [id K] <Scalar(float64, shape=())>
        "#]],
    );
    // Left as they are: a condition per element, sizes known only at run time (a
    // mismatch must stay an error), a broadcast branch, branches of another dtype
    // (cast by the switch), and a choice between scalars (nothing to skip).
    let v = fvec("v");
    let three = tensor("t", Float64, [Some(3)]);
    let n = scalar("n", Float64);
    check_unchanged(&[&switch(v.gt(0.0), v.exp(), &v)], &["switch_to_ifelse"]);
    check_unchanged(&[&switch(&c, v.exp(), &(&v + 1.0))], &["switch_to_ifelse"]);
    check_unchanged(&[&switch(&c, three.exp(), &n)], &["switch_to_ifelse"]);
    check_unchanged(
        &[&switch(&c, three.exp(), three.cast(Float32))],
        &["switch_to_ifelse"],
    );
    check_unchanged(&[&switch(&c, n.exp(), &(&n + 1.0))], &["switch_to_ifelse"]);
}

#[test]
fn ifelse_reuse_outer_values() {
    // exp(x) goes into the then branch when the choice is built; used outside too, it is
    // then read from outside instead of computed twice.
    let c = scalar("c", Bool);
    let x = fvec("x");
    let e = x.exp();
    let out = ifelse(&c, &[&(e.sum(All) * 2.0)], &[&x.sum(All)]);
    check(
        &[&out[0], &(&e + 1.0)],
        &["ifelse_reuse_outer_values"],
        expect![[r#"
            IfElse [id A] <Scalar(float64, shape=())>
             ├─ c [id B] <Scalar(bool, shape=())>
             └─ x [id C] <Vector(float64, shape=(?,))>
            Add [id D] <Vector(float64, shape=(?,))>
             ├─ Exp [id E] <Vector(float64, shape=(?,))>
             │  └─ x [id C] <Vector(float64, shape=(?,))>
             └─ ExpandDims{axis=0} [id F] <Vector(float64, shape=(1,))>
                └─ 1.0 [id G] <Scalar(float64, shape=())>

            Inner graphs:

            IfElse [id A]
             ← Mul [id H] <Scalar(float64, shape=())>
                ├─ Sum{axes=[0]} [id I] <Scalar(float64, shape=())>
                │  └─ Exp [id J] <Vector(float64, shape=(?,))>
                │     └─ *0-<Vector(float64, shape=(?,))> [id K]
                └─ 2.0 [id L] <Scalar(float64, shape=())>

            IfElse [id A]
             ← Sum{axes=[0]} [id M] <Scalar(float64, shape=())>
                └─ *0-<Vector(float64, shape=(?,))> [id N]
            =>
            IfElse [id A] <Scalar(float64, shape=())>
             ├─ c [id B] <Scalar(bool, shape=())>
             ├─ x [id C] <Vector(float64, shape=(?,))>
             └─ Exp [id D] <Vector(float64, shape=(?,))>
                └─ x [id C] <Vector(float64, shape=(?,))>
            Add [id E] <Vector(float64, shape=(?,))>
             ├─ Exp [id D] <Vector(float64, shape=(?,))>
             └─ ExpandDims{axis=0} [id F] <Vector(float64, shape=(1,))>
                └─ 1.0 [id G] <Scalar(float64, shape=())>

            Inner graphs:

            IfElse [id A]
             ← Mul [id H] <Scalar(float64, shape=())>
                ├─ Sum{axes=[0]} [id I] <Scalar(float64, shape=())>
                │  └─ *1-<Vector(float64, shape=(?,))> [id J]
                └─ 2.0 [id K] <Scalar(float64, shape=())>

            IfElse [id A]
             ← Sum{axes=[0]} [id L] <Scalar(float64, shape=())>
                └─ *0-<Vector(float64, shape=(?,))> [id M]
        "#]],
    );
    let alone = ifelse(&c, &[&(x.exp().sum(All) * 2.0)], &[&x.sum(All)]);
    check_unchanged(&[&alone[0], &x.sin()], &["ifelse_reuse_outer_values"]);
}

#[test]
fn ifelse_same_branches() {
    let (c, x) = (scalar("c", Bool), fvec("x"));
    let out = ifelse(&c, &[&(x.exp() * 2.0)], &[&(x.exp() * 2.0)]);
    check(
        &[&out[0]],
        &["ifelse_same_branches"],
        expect![[r#"
        IfElse [id A] <Vector(float64, shape=(?,))>
         ├─ c [id B] <Scalar(bool, shape=())>
         └─ x [id C] <Vector(float64, shape=(?,))>

        Inner graphs:

        IfElse [id A]
         ← Mul [id D] <Vector(float64, shape=(?,))>
            ├─ Exp [id E] <Vector(float64, shape=(?,))>
            │  └─ *0-<Vector(float64, shape=(?,))> [id F]
            └─ ExpandDims{axis=0} [id G] <Vector(float64, shape=(1,))>
               └─ 2.0 [id H] <Scalar(float64, shape=())>

        IfElse [id A]
         ← Mul [id I] <Vector(float64, shape=(?,))>
            ├─ Exp [id J] <Vector(float64, shape=(?,))>
            │  └─ *0-<Vector(float64, shape=(?,))> [id K]
            └─ ExpandDims{axis=0} [id L] <Vector(float64, shape=(1,))>
               └─ 2.0 [id M] <Scalar(float64, shape=())>
        =>
        Mul [id A] <Vector(float64, shape=(?,))>
         ├─ Exp [id B] <Vector(float64, shape=(?,))>
         │  └─ x [id C] <Vector(float64, shape=(?,))>
         └─ ExpandDims{axis=0} [id D] <Vector(float64, shape=(1,))>
            └─ 2.0 [id E] <Scalar(float64, shape=())>
    "#]],
    );
    let differ = ifelse(&c, &[&(x.exp() * 2.0)], &[&(x.exp() * 3.0)]);
    check_unchanged(&[&differ[0]], &["ifelse_same_branches"]);
}

#[test]
fn every_rule_has_a_golden_test_here() {
    let source = include_str!("rewrites.rs");
    for rule in tensorlift_compiler::rewrite::all_rules() {
        let quoted = format!("\"{}\"", rule.name);
        assert!(
            source.contains(&quoted),
            "rule {} has no golden test in tests/rewrites.rs",
            rule.name
        );
    }
}

// ---------------------------------------------------------------- blockwise

#[test]
fn blockwise_to_native() {
    use tensorlift::ir::api::linalg::blockwise;
    use tensorlift::ir::ops::{LinalgOp, Op, Signature};
    // A Blockwise of an Elemwise is an Elemwise (the unbatched operand gets a
    // broadcastable batch dimension).
    let (xs, y) = (matrix("xs", Float64), fvec("y"));
    let sig = Signature::parse("(n),(n)->(n)").unwrap();
    let out = blockwise(Op::Elemwise(ScalarOp::Add), sig, &[&xs, &y]).unwrap();
    check(
        &[&out[0]],
        &["blockwise_to_native"],
        expect![[r#"
            Blockwise{Add, (n),(n)->(n)} [id A] <Matrix(float64, shape=(?, ?))>
             ├─ xs [id B] <Matrix(float64, shape=(?, ?))>
             └─ y [id C] <Vector(float64, shape=(?,))>
            =>
            Add [id A] <Matrix(float64, shape=(?, ?))>
             ├─ xs [id B] <Matrix(float64, shape=(?, ?))>
             └─ ExpandDims{axis=0} [id C] <Matrix(float64, shape=(1, ?))>
                └─ y [id D] <Vector(float64, shape=(?,))>
        "#]],
    );
    // Without batch dimensions: the core op.
    let m = matrix("m", Float64);
    let unbatched = tensorlift::ir::ops::Blockwise {
        core: Op::Linalg(LinalgOp::Det),
        signature: Signature::parse("(m,m)->()").unwrap(),
    };
    let det = Var::apply(Op::Blockwise(std::sync::Arc::new(unbatched)), vec![m]).unwrap();
    check(
        &[&det[0]],
        &["blockwise_to_native"],
        expect![[r#"
        Blockwise{Det, (m,m)->()} [id A] <Scalar(float64, shape=())>
         └─ m [id B] <Matrix(float64, shape=(?, ?))>
        =>
        Det [id A] <Scalar(float64, shape=())>
         └─ m [id B] <Matrix(float64, shape=(?, ?))>
    "#]],
    );
    // A batched determinant has no native form: it stays.
    let cube = tensor("cube", Float64, [None, None, None]);
    check_unchanged(&[&tensorlift::linalg::det(&cube)], &["blockwise_to_native"]);
}

//! Golden tests of lowering (DESIGN §11): the loop-nest IR printed for the kernels of
//! compiled graphs — broadcast inputs read at index 0, fused Composite bodies as scalar
//! `let`s, reductions over inner and outer axes accumulating into their output, a fused
//! reduction computing its body inside the reduction loop, integer powers checking their
//! exponents, one-pass logsumexps and softmax calls.

use expect_test::{expect, Expect};
use tensorlift::prelude::*;
use tensorlift_compiler::jit::kernels_of;

fn lowered(inputs: &[&Var], outputs: &[&Var]) -> String {
    let f = function(inputs, outputs).mode(Mode::Jit).compile().unwrap();
    kernels_of(f.fgraph())
        .into_iter()
        .map(|(_, k)| k.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn check(inputs: &[&Var], outputs: &[&Var], golden: Expect) {
    golden.assert_eq(&lowered(inputs, outputs));
}

#[test]
fn fused_elemwise_with_a_broadcast_row() {
    let x = matrix("x", Float64);
    let row = tensor("row", Float64, [Some(1), None]);
    check(
        &[&x, &row],
        &[&(x.exp() * &row + 1.0)],
        expect![[r#"
            kernel elemwise(in in0: float64[2d], in in1: float64[2d], out out0: float64[2d]):
              if neq(in0.shape[0], out0.shape[0]):
                fail "input 0 has {0} elements along axis 0, expected {1} (the size of output 0's axis 0)", in0.shape[0], out0.shape[0]
              if neq(in0.shape[1], out0.shape[1]):
                fail "input 0 has {0} elements along axis 1, expected {1} (the size of output 0's axis 1)", in0.shape[1], out0.shape[1]
              if neq(in1.shape[0], 1:int64):
                fail "input 1 has {0} elements along axis 0, which is broadcast: expected {1}", in1.shape[0], 1:int64
              if neq(in1.shape[1], out0.shape[1]):
                fail "input 1 has {0} elements along axis 1, expected {1} (the size of output 0's axis 1)", in1.shape[1], out0.shape[1]
              for i0 in 0..out0.shape[0]:
                for i1 in 0..out0.shape[1]:
                  t0: float64 = in0[i0, i1]
                  t2: float64 = exp(t0)
                  t1: float64 = in1[0, i1]
                  t3: float64 = mul(t2, t1)
                  t4: float64 = add(t3, 1.0:float64)
                  out0[i0, i1] = t4
        "#]],
    );
}

#[test]
fn reduction_over_the_inner_axis() {
    let x = matrix("x", Float32);
    check(
        &[&x],
        &[&x.sum([1])],
        expect![[r#"
            kernel sum_reduce(in in0: float32[2d], out out: float32[1d]):
              if neq(out.shape[0], in0.shape[0]):
                fail "output 0 has {0} elements along axis 0, expected {1} (the size of input 0's axis 0)", out.shape[0], in0.shape[0]
              fill out with 0
              for i0 in 0..in0.shape[0]:
                for i1 in 0..in0.shape[1]:
                  t0: float32 = in0[i0, i1]
                  t1: float32 = identity(t0)
                  out[i0] sum= t1
        "#]],
    );
}

#[test]
fn reduction_over_the_outer_axis() {
    let x = matrix("x", Float64);
    check(
        &[&x],
        &[&x.max([0])],
        expect![[r#"
            kernel max_reduce(in in0: float64[2d], out out: float64[1d]):
              if neq(out.shape[0], in0.shape[1]):
                fail "output 0 has {0} elements along axis 0, expected {1} (the size of input 0's axis 1)", out.shape[0], in0.shape[1]
              fill out with -inf
              for i0 in 0..in0.shape[0]:
                for i1 in 0..in0.shape[1]:
                  t0: float64 = in0[i0, i1]
                  t1: float64 = identity(t0)
                  out[i1] max= t1
        "#]],
    );
}

#[test]
fn fused_reduction_reads_inputs_once() {
    let (x, y) = (matrix("x", Float64), matrix("y", Float64));
    check(
        &[&x, &y],
        &[&(x.exp() * &y).sum(None)],
        expect![[r#"
            kernel sum_reduce(in in0: float64[2d], in in1: float64[2d], out out: float64[0d]):
              if neq(in1.shape[0], in0.shape[0]):
                fail "input 1 has {0} elements along axis 0, expected {1} (the size of input 0's axis 0)", in1.shape[0], in0.shape[0]
              if neq(in1.shape[1], in0.shape[1]):
                fail "input 1 has {0} elements along axis 1, expected {1} (the size of input 0's axis 1)", in1.shape[1], in0.shape[1]
              fill out with 0
              for i0 in 0..in0.shape[0]:
                for i1 in 0..in0.shape[1]:
                  t0: float64 = in0[i0, i1]
                  t2: float64 = exp(t0)
                  t1: float64 = in1[i0, i1]
                  t3: float64 = mul(t2, t1)
                  out[] sum= t3
        "#]],
    );
}

#[test]
fn comparisons_and_switch_in_one_kernel() {
    let (x, y) = (vector("x", Float64), vector("y", Float64));
    check(
        &[&x, &y],
        &[&switch(x.gt(&y), x.sin(), &y * 2.0), &x.isnan()],
        expect![[r#"
            kernel elemwise(in in0: float64[1d], in in1: float64[1d], out out0: float64[1d]):
              if neq(in0.shape[0], out0.shape[0]):
                fail "input 0 has {0} elements along axis 0, expected {1} (the size of output 0's axis 0)", in0.shape[0], out0.shape[0]
              if neq(in1.shape[0], out0.shape[0]):
                fail "input 1 has {0} elements along axis 0, expected {1} (the size of output 0's axis 0)", in1.shape[0], out0.shape[0]
              for i0 in 0..out0.shape[0]:
                t0: float64 = in0[i0]
                t1: float64 = in1[i0]
                t2: bool = gt(t0, t1)
                t3: float64 = sin(t0)
                t4: float64 = mul(t1, 2.0:float64)
                t5: float64 = switch(t2, t3, t4)
                out0[i0] = t5

            kernel elemwise(in in0: float64[1d], out out0: bool[1d]):
              if neq(in0.shape[0], out0.shape[0]):
                fail "input 0 has {0} elements along axis 0, expected {1} (the size of output 0's axis 0)", in0.shape[0], out0.shape[0]
              for i0 in 0..out0.shape[0]:
                t0: float64 = in0[i0]
                t1: bool = isnan(t0)
                out0[i0] = t1
        "#]],
    );
}

#[test]
fn integer_arithmetic_wraps_in_i64() {
    let (i, j) = (vector("i", Int8), vector("j", Int32));
    check(
        &[&i, &j],
        &[&(&i * 3i64 + &j).floor_div(&j)],
        expect![[r#"
            kernel elemwise(in in0: int8[1d], in in1: int32[1d], out out0: int32[1d]):
              if neq(in0.shape[0], out0.shape[0]):
                fail "input 0 has {0} elements along axis 0, expected {1} (the size of output 0's axis 0)", in0.shape[0], out0.shape[0]
              if neq(in1.shape[0], out0.shape[0]):
                fail "input 1 has {0} elements along axis 0, expected {1} (the size of output 0's axis 0)", in1.shape[0], out0.shape[0]
              for i0 in 0..out0.shape[0]:
                t0: int8 = in0[i0]
                t2: int8 = mul(t0, 3:int8)
                t1: int32 = in1[i0]
                t3: int32 = add(t2, t1)
                t4: int32 = intdiv(t3, t1)
                out0[i0] = t4
        "#]],
    );
}

#[test]
fn integer_powers_check_their_exponent_first() {
    let (i, j) = (vector("i", Int64), vector("j", Int64));
    check(
        &[&i, &j],
        &[&i.pow(&j)],
        expect![[r#"
        kernel elemwise(in in0: int64[1d], in in1: int64[1d], out out0: int64[1d]):
          if neq(in0.shape[0], out0.shape[0]):
            fail "input 0 has {0} elements along axis 0, expected {1} (the size of output 0's axis 0)", in0.shape[0], out0.shape[0]
          if neq(in1.shape[0], out0.shape[0]):
            fail "input 1 has {0} elements along axis 0, expected {1} (the size of output 0's axis 0)", in1.shape[0], out0.shape[0]
          for i0 in 0..out0.shape[0]:
            t0: int64 = in0[i0]
            t1: int64 = in1[i0]
            if lt(t1, 0:int64):
              fail "integers to negative integer powers are not allowed (input 1 holds {0}); cast to float first", t1
            t2: int64 = pow(t0, t1)
            out0[i0] = t2
    "#]],
    );
}

#[test]
fn integer_and_bool_reductions() {
    let (i, b) = (matrix("i", Int8), matrix("b", Bool));
    check(
        &[&i, &b],
        &[&i.sum([1]), &b.any([0])],
        expect![[r#"
            kernel sum_reduce(in in0: int8[2d], out out: int64[1d]):
              if neq(out.shape[0], in0.shape[0]):
                fail "output 0 has {0} elements along axis 0, expected {1} (the size of input 0's axis 0)", out.shape[0], in0.shape[0]
              fill out with 0
              for i0 in 0..in0.shape[0]:
                for i1 in 0..in0.shape[1]:
                  t0: int8 = in0[i0, i1]
                  t1: int8 = identity(t0)
                  out[i0] sum= t1

            kernel any_reduce(in in0: bool[2d], out out: bool[1d]):
              if neq(out.shape[0], in0.shape[1]):
                fail "output 0 has {0} elements along axis 0, expected {1} (the size of input 0's axis 1)", out.shape[0], in0.shape[1]
              fill out with 0
              for i0 in 0..in0.shape[0]:
                for i1 in 0..in0.shape[1]:
                  t0: bool = in0[i0, i1]
                  t1: bool = identity(t0)
                  out[i1] any= t1
        "#]],
    );
}

#[test]
fn softmax_along_rows_is_one_checked_call() {
    let x = matrix("x", Float64);
    check(
        &[&x],
        &[&x.softmax(1)],
        expect![[r#"
            kernel softmax(in in0: float64[2d], out out: float64[2d]):
              if neq(out.shape[0], in0.shape[0]):
                fail "output 0 has {0} elements along axis 0, expected {1} (the size of input 0's axis 0)", out.shape[0], in0.shape[0]
              if neq(out.shape[1], in0.shape[1]):
                fail "output 0 has {0} elements along axis 1, expected {1} (the size of input 0's axis 1)", out.shape[1], in0.shape[1]
              call softmax(in0, out) or fail "the softmax rows do not match, or memory for a row copy was refused"
        "#]],
    );
}

#[test]
fn dot_checks_its_operands_then_calls_gemm() {
    let a = matrix("a", Float64);
    let v = vector("v", Float64);
    check(
        &[&a, &v],
        &[&a.dot(&v)],
        expect![[r#"
        kernel dot(in in0: float64[2d], in in1: float64[1d], out out: float64[1d]):
          if neq(in1.shape[0], in0.shape[1]):
            fail "the contracted dimensions differ: input 1 has {0} elements along axis 0, input 0 has {1} along axis 1", in1.shape[0], in0.shape[1]
          if neq(out.shape[0], in0.shape[0]):
            fail "output 0 has {0} elements along axis 0, expected {1} (the size of input 0's axis 0)", out.shape[0], in0.shape[0]
          call dot(in0, in1, out) or fail "gemm failed"
    "#]],
    );
}

#[test]
fn a_gather_checks_each_index_then_copies_its_row() {
    let x = matrix("x", Float64);
    let i = vector("i", Int64);
    check(
        &[&x, &i],
        &[&x.get(vec![tensorlift::ir::Idx::Array(i.clone())])],
        expect![[r#"
            kernel take(in in0: float64[2d], in in1: int64[1d], out out: float64[2d]):
              if neq(in1.shape[0], out.shape[0]):
                fail "input 1 has {0} elements along axis 0, expected {1} (the size of output 0's axis 0)", in1.shape[0], out.shape[0]
              if neq(in0.shape[1], out.shape[1]):
                fail "input 0 has {0} elements along axis 1, expected {1} (the size of output 0's axis 1)", in0.shape[1], out.shape[1]
              for i0 in 0..out.shape[0]:
                t0: int64 = cast{int64}(in1[i0])
                t1: int64 = switch(lt(t0, 0:int64), add(t0, in0.shape[0]), t0)
                if lt(t1, 0:int64):
                  fail "index {0} (in index array input 1) is out of range for axis 0 of size {1}", t0, in0.shape[0]
                if ge(t1, in0.shape[0]):
                  fail "index {0} (in index array input 1) is out of range for axis 0 of size {1}", t0, in0.shape[0]
                for i1 in 0..out.shape[1]:
                  out[i0, i1] = in0[t1, i1]
        "#]],
    );
}

#[test]
fn a_scatter_visits_its_region_of_the_target_in_order() {
    let x = matrix("x", Float64);
    let i = vector("i", Int64);
    let y = matrix("y", Float64);
    check(
        &[&x, &i, &y],
        &[&x.inc(vec![tensorlift::ir::Idx::Array(i.clone())], &y)],
        expect![[r#"
            kernel inc_scatter(in in0: float64[2d], in in1: int64[1d], out target: float64[2d]):
              if neq(in0.shape[0], in1.shape[0]):
                fail "input 0 has {0} elements along axis 0, expected {1} (the size of input 1's axis 0)", in0.shape[0], in1.shape[0]
              if neq(in0.shape[1], target.shape[1]):
                fail "input 0 has {0} elements along axis 1, expected {1} (the size of output 0's axis 1)", in0.shape[1], target.shape[1]
              for i0 in 0..in1.shape[0]:
                t0: int64 = cast{int64}(in1[i0])
                t1: int64 = switch(lt(t0, 0:int64), add(t0, target.shape[0]), t0)
                if lt(t1, 0:int64):
                  fail "index {0} (in index array input 2) is out of range for axis 0 of size {1}", t0, target.shape[0]
                if ge(t1, target.shape[0]):
                  fail "index {0} (in index array input 2) is out of range for axis 0 of size {1}", t0, target.shape[0]
                for i1 in 0..target.shape[1]:
                  target[t1, i1] = add(target[t1, i1], cast{float64}(in0[i0, i1]))
        "#]],
    );
}

#[test]
fn a_running_sum_reads_back_the_previous_output() {
    let x = matrix("x", Float64);
    check(
        &[&x],
        &[&x.cumsum(Some(1))],
        expect![[r#"
            kernel cumsum_cumulative(in in0: float64[2d], out out: float64[2d]):
              if neq(out.shape[0], in0.shape[0]):
                fail "output 0 has {0} elements along axis 0, expected {1} (the size of input 0's axis 0)", out.shape[0], in0.shape[0]
              if neq(out.shape[1], in0.shape[1]):
                fail "output 0 has {0} elements along axis 1, expected {1} (the input's)", out.shape[1], in0.shape[1]
              for i0 in 0..in0.shape[0]:
                for i1 in 0..in0.shape[1]:
                  t0: float64 = cast{float64}(in0[i0, i1])
                  t1: int64 = i1
                  if eq(t1, 0:int64):
                    out[i0, t1] = t0
                  else:
                    t2: int64 = sub(t1, 1:int64)
                    out[i0, t1] = add(out[i0, t2], t0)
        "#]],
    );
}

#[test]
fn an_arg_reduction_reads_back_its_best_value_by_index() {
    let x = matrix("x", Float64);
    check(
        &[&x],
        &[&x.argmax(Some(1))],
        expect![[r#"
        kernel argmax_along(in in0: float64[2d], out out: int64[1d]):
          if neq(out.shape[0], in0.shape[0]):
            fail "output 0 has {0} elements along axis 0, expected {1} (the size of input 0's axis 0)", out.shape[0], in0.shape[0]
          for i0 in 0..in0.shape[0]:
            for i1 in 0..in0.shape[1]:
              t0: float64 = in0[i0, i1]
              t1: int64 = i1
              if eq(t1, 0:int64):
                out[i0] = 0:int64
              else:
                t2: int64 = out[i0]
                t3: float64 = in0[i0, t2]
                if or(gt(t0, t3), and(isnan(t0), not(isnan(t3)))):
                  out[i0] = t1
    "#]],
    );
}

#[test]
fn a_concatenation_copies_each_piece_to_its_offset() {
    let (a, b) = (matrix("a", Float64), matrix("b", Float64));
    check(
        &[&a, &b],
        &[&tensorlift::ir::concatenate(&[a.clone(), b.clone()], 0)],
        expect![[r#"
            kernel join(in in0: float64[2d], in in1: float64[2d], out out: float64[2d]):
              if neq(out.shape[1], in0.shape[1]):
                fail "output 0 has {0} elements along axis 1, expected {1} (the size of input 0's axis 1)", out.shape[1], in0.shape[1]
              if neq(out.shape[1], in1.shape[1]):
                fail "output 0 has {0} elements along axis 1, expected {1} (the size of input 1's axis 1)", out.shape[1], in1.shape[1]
              if neq(out.shape[0], add(add(0:int64, in0.shape[0]), in1.shape[0])):
                fail "output 0 has {0} elements along the joined axis, expected {1} (the inputs' sum)", out.shape[0], add(add(0:int64, in0.shape[0]), in1.shape[0])
              for i0 in 0..in0.shape[0]:
                t0: int64 = add(0:int64, i0)
                for i1 in 0..in0.shape[1]:
                  out[t0, i1] = in0[i0, i1]
              for i0 in 0..in1.shape[0]:
                t0: int64 = add(add(0:int64, in0.shape[0]), i0)
                for i1 in 0..in1.shape[1]:
                  out[t0, i1] = in1[i0, i1]
        "#]],
    );
}

#[test]
fn logsumexp_along_rows_is_one_accumulation() {
    let x = matrix("x", Float64);
    check(
        &[&x],
        &[&(&x * 2.0).logsumexp([1])],
        expect![[r#"
        kernel logsumexp_reduce(in in0: float64[2d], in in1: float64[2d], out out: float64[1d]):
          if neq(in1.shape[0], 1:int64):
            fail "input 1 has {0} elements along axis 0, which is broadcast: expected {1}", in1.shape[0], 1:int64
          if neq(in1.shape[1], 1:int64):
            fail "input 1 has {0} elements along axis 1, which is broadcast: expected {1}", in1.shape[1], 1:int64
          if neq(out.shape[0], in0.shape[0]):
            fail "output 0 has {0} elements along axis 0, expected {1} (the size of input 0's axis 0)", out.shape[0], in0.shape[0]
          fill out with -inf
          for i0 in 0..in0.shape[0]:
            for i1 in 0..in0.shape[1]:
              t0: float64 = in0[i0, i1]
              t1: float64 = in1[0, 0]
              t2: float64 = mul(t0, t1)
              out[i0] logsumexp= t2
    "#]],
    );
}

#[test]
fn writes_into_a_basic_region_see_only_the_region() {
    let x = matrix("x", Float64);
    let row = tensor("row", Float64, [Some(1), None]);
    check(
        &[&x, &row],
        &[&x.inc(tensorlift::idx![1..;2], &row)],
        expect![[r#"
            kernel inc_region(in value: float64[2d], out region: float64[2d]):
              if neq(value.shape[0], 1:int64):
                fail "input 0 has {0} elements along axis 0, which is broadcast: expected {1}", value.shape[0], 1:int64
              if neq(value.shape[1], region.shape[1]):
                fail "input 0 has {0} elements along axis 1, expected {1} (the size of output 0's axis 1)", value.shape[1], region.shape[1]
              for i0 in 0..region.shape[0]:
                for i1 in 0..region.shape[1]:
                  region[i0, i1] = add(region[i0, i1], cast{float64}(value[0, i1]))
        "#]],
    );
}

#[test]
fn shape_bookkeeping_selects_each_element_by_position() {
    let x = matrix("x", Float64);
    let n = scalar("n", Int32);
    check(
        &[&x, &n],
        &[
            &x.shape(),
            &tensorlift::ir::make_vector(&[(&n).into(), 2.5.into()]),
        ],
        expect![[r#"
            kernel shape(in in0: float64[2d], out out: int64[1d]):
              for i0 in 0..out.shape[0]:
                out[i0] = switch(eq(i0, 0:int64), in0.shape[0], in0.shape[1])

            kernel elemwise(in in0: int32[0d], out out0: float64[0d]):
              t0: int32 = in0[]
              t1: float64 = cast{float64}(t0)
              out0[] = t1

            kernel make_vector(in in0: float64[0d], in in1: float64[0d], out out: float64[1d]):
              for i0 in 0..out.shape[0]:
                out[i0] = switch(eq(i0, 0:int64), cast{float64}(in0[]), cast{float64}(in1[]))
        "#]],
    );
}

#[test]
fn checks_read_their_conditions_and_write_nothing() {
    let x = matrix("x", Float64);
    let c = vector("c", Bool);
    check(
        &[&x, &c],
        &[&x.specify_shape(&[None, Some(3)])
            .check_that(std::slice::from_ref(&c), "c holds")],
        expect![[r#"
            kernel specify_shape(in in0: float64[2d]):
              if neq(in0.shape[1], 3:int64):
                fail "dimension 1 of input 0 has size {0}, but the graph requires 3", in0.shape[1]

            kernel check(in in0: float64[2d], in in1: bool[1d]):
              for i0 in 0..in1.shape[0]:
                if not(in1[i0]):
                  fail "c holds"
        "#]],
    );
}

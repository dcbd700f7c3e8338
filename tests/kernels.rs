//! Jitted kernels called directly (DESIGN §11): every kernel checks the shapes it is given
//! and reports an inconsistent call as an error naming the buffer, the axis and what was
//! expected, before touching memory; and the loop IR's control flow (`while`, `if`,
//! `fail`) and gathered indices compile to code that computes what plain Rust computes.

mod common;

use ndarray::{ArrayD, IxDyn};
use tensorlift::ir::ops::ReduceKind;
use tensorlift::ir::ScalarOp;
use tensorlift::prelude::*;
use tensorlift_compiler::jit::kernels_of;
use tensorlift_compiler::kernel_call::KernelCall;
use tensorlift_compiler::loopir::{
    Buffer, Expr, Extent, Index, Kernel, Role, Stmt, SupportCall, View,
};

/// The single kernel of a compiled graph, compiled on its own.
fn only_kernel(inputs: &[&Var], outputs: &[&Var]) -> KernelCall {
    let f = function(inputs, outputs).mode(Mode::Jit).compile().unwrap();
    let mut kernels = kernels_of(f.fgraph());
    assert_eq!(kernels.len(), 1, "one kernel expected");
    KernelCall::compile(kernels.remove(0).1).unwrap()
}

fn f64s(shape: &[usize], start: f64) -> TensorData {
    let n: usize = shape.iter().product();
    let data = (0..n).map(|i| start + i as f64).collect();
    TensorData::from_array(ArrayD::from_shape_vec(IxDyn(shape), data).unwrap())
}

fn zeros(shape: &[usize]) -> TensorData {
    TensorData::from_array(ArrayD::<f64>::zeros(IxDyn(shape)))
}

fn values(d: &TensorData) -> Vec<f64> {
    d.as_array::<f64>().unwrap().iter().copied().collect()
}

#[test]
fn an_elementwise_kernel_checks_every_shape_it_is_given() {
    let (x, y) = (matrix("x", Float64), matrix("y", Float64));
    let call = only_kernel(&[&x, &y], &[&(&x + &y)]);
    let (a, b) = (f64s(&[2, 3], 0.0), f64s(&[2, 3], 10.0));

    let mut out = vec![zeros(&[2, 3])];
    call.run(&[&a, &b], &mut out).unwrap();
    let expected: Vec<f64> = values(&a)
        .iter()
        .zip(values(&b))
        .map(|(p, q)| p + q)
        .collect();
    assert_eq!(values(&out[0]), expected);

    // An input that disagrees with the output: refused before anything is written.
    let wide = f64s(&[2, 4], 0.0);
    let mut out = vec![zeros(&[2, 3])];
    let err = call.run(&[&a, &wide], &mut out).unwrap_err().to_string();
    assert!(
        err.contains("input 1 has 4 elements along axis 1, expected 3"),
        "{err}"
    );
    assert_eq!(values(&out[0]), vec![0.0; 6]);

    // An output larger than the inputs would make the loops read past them.
    let mut out = vec![zeros(&[3, 3])];
    let err = call.run(&[&a, &b], &mut out).unwrap_err().to_string();
    assert!(
        err.contains("input 0 has 2 elements along axis 0, expected 3"),
        "{err}"
    );

    // Wrong dtype or rank, and an output whose memory another value shares.
    let ints = TensorData::from_array(ArrayD::<i64>::zeros(IxDyn(&[2, 3])));
    let err = call.run(&[&a, &ints], &mut [zeros(&[2, 3])]).unwrap_err();
    assert!(err
        .to_string()
        .contains("input 1 is 2-d int64, expected 2-d float64"));
    let shared = zeros(&[2, 3]);
    let mut out = vec![shared.clone()];
    let err = call.run(&[&a, &b], &mut out).unwrap_err();
    assert!(
        err.to_string().contains("output 0 shares its memory"),
        "{err}"
    );
}

#[test]
fn a_broadcast_dimension_must_have_size_one() {
    let x = matrix("x", Float64);
    let row = tensor("row", Float64, [Some(1), None]);
    let call = only_kernel(&[&x, &row], &[&(&x * &row)]);
    let (a, not_a_row) = (f64s(&[2, 3], 0.0), f64s(&[2, 3], 1.0));
    let err = call
        .run(&[&a, &not_a_row], &mut [zeros(&[2, 3])])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("input 1 has 2 elements along axis 0, which is broadcast: expected 1"),
        "{err}"
    );
    let row_value = f64s(&[1, 3], 1.0);
    let mut out = vec![zeros(&[2, 3])];
    call.run(&[&a, &row_value], &mut out).unwrap();
    assert_eq!(values(&out[0]), vec![0.0, 2.0, 6.0, 3.0, 8.0, 15.0]);
}

#[test]
fn a_reduction_checks_its_output_against_its_input() {
    let x = matrix("x", Float64);
    let call = only_kernel(&[&x], &[&x.sum([1])]);
    let a = f64s(&[3, 4], 0.0);
    let err = call.run(&[&a], &mut [zeros(&[4])]).unwrap_err().to_string();
    assert!(
        err.contains("output 0 has 4 elements along axis 0, expected 3"),
        "{err}"
    );
    let mut out = vec![zeros(&[3])];
    call.run(&[&a], &mut out).unwrap();
    assert_eq!(values(&out[0]), vec![6.0, 22.0, 38.0]);
}

fn int(v: i64) -> Expr {
    Expr::int(v)
}

fn apply(op: ScalarOp, args: Vec<Expr>, dtype: DType) -> Expr {
    Expr::apply(op, args, dtype)
}

fn buffer(name: &str, dtype: DType, role: Role) -> Buffer {
    Buffer {
        name: name.into(),
        dtype,
        rank: 1,
        role,
    }
}

/// For each x[i], the number of Collatz steps to reach 1, with a `while` over the state
/// (kept in a buffer) and an `if` choosing the step; a non-positive start fails.
fn collatz_kernel() -> Kernel {
    let at = |buf| Expr::Load {
        buf,
        index: vec![Index::Var(0)],
    };
    let store = |buf, value| Stmt::Store {
        buf,
        index: vec![Index::Var(0)],
        value,
    };
    let (x, steps, state) = (0, 1, 2);
    let body = vec![
        Stmt::If {
            cond: apply(ScalarOp::Lt, vec![at(x), int(1)], Bool),
            then: vec![Stmt::Fail {
                error: 0,
                values: vec![at(x)],
            }],
            otherwise: vec![],
        },
        store(state, at(x)),
        store(steps, int(0)),
        Stmt::While {
            cond: apply(ScalarOp::Gt, vec![at(state), int(1)], Bool),
            body: vec![
                Stmt::If {
                    cond: apply(
                        ScalarOp::Eq,
                        vec![apply(ScalarOp::Mod, vec![at(state), int(2)], Int64), int(0)],
                        Bool,
                    ),
                    then: vec![store(
                        state,
                        apply(ScalarOp::IntDiv, vec![at(state), int(2)], Int64),
                    )],
                    otherwise: vec![store(
                        state,
                        apply(
                            ScalarOp::Add,
                            vec![apply(ScalarOp::Mul, vec![at(state), int(3)], Int64), int(1)],
                            Int64,
                        ),
                    )],
                },
                store(steps, apply(ScalarOp::Add, vec![at(steps), int(1)], Int64)),
            ],
        },
    ];
    Kernel {
        name: "collatz".into(),
        buffers: vec![
            buffer("x", Int64, Role::Input),
            buffer("steps", Int64, Role::Output),
            buffer("state", Int64, Role::Output),
        ],
        body: vec![Stmt::For {
            var: 0,
            buf: x,
            dim: 0,
            parallel: false,
            body,
        }],
        errors: vec!["a start of {0} is not positive".into()],
    }
}

fn collatz_steps(mut n: i64) -> i64 {
    let mut steps = 0;
    while n > 1 {
        n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
        steps += 1;
    }
    steps
}

fn ints(v: &[i64]) -> TensorData {
    TensorData::from_array(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap())
}

#[test]
fn while_and_if_compute_what_plain_rust_computes() {
    let call = KernelCall::compile(collatz_kernel()).unwrap();
    let starts: Vec<i64> = (1..200).chain([27, 97, 871, 6171, 77031]).collect();
    let mut outs = vec![ints(&vec![0; starts.len()]), ints(&vec![0; starts.len()])];
    call.run(&[&ints(&starts)], &mut outs).unwrap();
    let got = outs[0]
        .as_array::<i64>()
        .unwrap()
        .iter()
        .copied()
        .collect::<Vec<_>>();
    let expected: Vec<i64> = starts.iter().map(|n| collatz_steps(*n)).collect();
    assert_eq!(got, expected);
    assert_eq!(got[starts.len() - 5], 111, "27 takes 111 steps");

    // `fail` stops the kernel with its message and values.
    let mut outs = vec![ints(&[0; 3]), ints(&[0; 3])];
    let err = call
        .run(&[&ints(&[5, 0, 7])], &mut outs)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("collatz: a start of 0 is not positive"),
        "{err}"
    );
}

/// `out[i] = x[idx[i]]` with negative indices counting from the end, every index checked
/// against `x`'s size before it is used as an address.
fn gather_kernel() -> Kernel {
    let (x, idx, out) = (0, 1, 2);
    let raw = Expr::Load {
        buf: idx,
        index: vec![Index::Var(0)],
    };
    let size = Expr::Dim { buf: x, dim: 0 };
    let wrapped = apply(
        ScalarOp::Switch,
        vec![
            apply(ScalarOp::Lt, vec![Expr::Temp(0), int(0)], Bool),
            apply(ScalarOp::Add, vec![Expr::Temp(0), size.clone()], Int64),
            Expr::Temp(0),
        ],
        Int64,
    );
    let out_of_range = |cond| Stmt::If {
        cond,
        then: vec![Stmt::Fail {
            error: 0,
            values: vec![Expr::Temp(0), size.clone()],
        }],
        otherwise: vec![],
    };
    let body = vec![
        Stmt::Let {
            temp: 0,
            dtype: Int64,
            value: raw,
        },
        Stmt::Let {
            temp: 1,
            dtype: Int64,
            value: wrapped,
        },
        out_of_range(apply(ScalarOp::Lt, vec![Expr::Temp(1), int(0)], Bool)),
        out_of_range(apply(ScalarOp::Ge, vec![Expr::Temp(1), size.clone()], Bool)),
        Stmt::Store {
            buf: out,
            index: vec![Index::Var(0)],
            value: Expr::Load {
                buf: x,
                index: vec![Index::Temp(1)],
            },
        },
    ];
    Kernel {
        name: "gather".into(),
        buffers: vec![
            buffer("x", Float64, Role::Input),
            buffer("idx", Int64, Role::Input),
            buffer("out", Float64, Role::Output),
        ],
        body: vec![Stmt::For {
            var: 0,
            buf: out,
            dim: 0,
            parallel: false,
            body,
        }],
        errors: vec!["index {0} is out of bounds for size {1}".into()],
    }
}

#[test]
fn gathered_indices_are_checked_before_they_address_memory() {
    // Refused by the safe constructor: only the kernel's own statements bound the index.
    assert!(KernelCall::compile(gather_kernel()).is_err());
    // SAFETY: the kernel compares every gathered index with x's size before using it.
    let call = unsafe { KernelCall::compile_all_with_gathers(vec![gather_kernel()]) }
        .unwrap()
        .remove(0);
    let x = f64s(&[5], 10.0);
    let mut out = vec![zeros(&[4])];
    call.run(&[&x, &ints(&[4, 0, -1, -5])], &mut out).unwrap();
    assert_eq!(values(&out[0]), vec![14.0, 10.0, 14.0, 10.0]);
    for bad in [5, -6, i64::MAX, i64::MIN] {
        let mut out = vec![zeros(&[2])];
        let err = call
            .run(&[&x, &ints(&[1, bad])], &mut out)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("index {bad} is out of bounds for size 5")),
            "{err}"
        );
    }
    // The printed IR shows the checks.
    let text = call.kernel().to_string();
    assert!(text.contains("if ge(t1, x.shape[0]):"), "{text}");
}

/// `out = x²` (a kernel lowered from a graph) and a kernel that always fails.
fn branches() -> (Kernel, Kernel) {
    let x = vector("x", Float64);
    let f = function(&[&x], &[&x.sqr()])
        .mode(Mode::Jit)
        .compile()
        .unwrap();
    let squared = kernels_of(f.fgraph()).remove(0).1;
    let failing = Kernel {
        name: "raises".into(),
        buffers: vec![
            buffer("x", Float64, Role::Input),
            buffer("out", Float64, Role::Output),
        ],
        body: vec![Stmt::Fail {
            error: 0,
            values: vec![Expr::Dim { buf: 0, dim: 0 }],
        }],
        errors: vec!["the branch not taken ran (x has {0} elements)".into()],
    };
    (squared, failing)
}

/// `if cond[]: invoke raises(x, out) else: invoke squared(x, out)`: each branch its own
/// jitted function, only the taken one called (DESIGN §8's IfElse).
fn choose(squared: &Kernel, failing: &Kernel) -> Kernel {
    let mut k = Kernel {
        name: "choose".into(),
        buffers: vec![
            Buffer {
                name: "cond".into(),
                dtype: Bool,
                rank: 0,
                role: Role::Input,
            },
            buffer("x", Float64, Role::Input),
            buffer("out", Float64, Role::Output),
        ],
        body: vec![],
        errors: vec![],
    };
    let then = Kernel::invoke(1, failing, vec![1, 2]);
    let otherwise = Kernel::invoke(0, squared, vec![1, 2]);
    k.body = vec![Stmt::If {
        cond: Expr::Load {
            buf: 0,
            index: vec![],
        },
        then: vec![then],
        otherwise: vec![otherwise],
    }];
    k
}

fn flag(b: bool) -> TensorData {
    TensorData::from_array(ndarray::arr0(b).into_dyn())
}

#[test]
fn a_kernel_invokes_only_the_branch_it_takes() {
    let (squared, failing) = branches();
    let chooser = choose(&squared, &failing);
    assert!(
        chooser.to_string().contains("invoke raises(x, out)"),
        "{chooser}"
    );
    let calls = KernelCall::compile_all(vec![squared, failing, chooser]).unwrap();
    let choose = &calls[2];
    let x = f64s(&[5], 1.0);

    // The untaken branch would fail if it ran.
    let mut out = vec![zeros(&[5])];
    choose.run(&[&flag(false), &x], &mut out).unwrap();
    assert_eq!(values(&out[0]), vec![1.0, 4.0, 9.0, 16.0, 25.0]);

    let mut out = vec![zeros(&[5])];
    let err = choose
        .run(&[&flag(true), &x], &mut out)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("choose: raises: the branch not taken ran (x has 5 elements)"),
        "{err}"
    );

    // The callee's shape checks still guard it: its errors are reported as the caller's.
    let mut out = vec![zeros(&[4])];
    let err = choose
        .run(&[&flag(false), &x], &mut out)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("input 0 has 5 elements along axis 0, expected 4"),
        "{err}"
    );
}

#[test]
fn invoking_a_later_kernel_or_mismatched_buffers_is_refused() {
    let (squared, failing) = branches();
    let chooser = choose(&squared, &failing);
    // The chooser listed before its callees.
    let err = KernelCall::compile_all(vec![chooser.clone(), squared.clone(), failing.clone()]);
    assert!(err.is_err());
    // A callee taking float64 given the bool buffer.
    let mut wrong = chooser;
    if let Stmt::If { otherwise, .. } = &mut wrong.body[0] {
        if let Stmt::Invoke { args, .. } = &mut otherwise[0] {
            args[0] = View::whole(0);
        }
    }
    assert!(KernelCall::compile_all(vec![squared, failing, wrong]).is_err());
}

/// `c = a + b` (`add_rows`) or `c = a` (`copy_row`) over vectors: the body kernels a
/// driver invokes on rows.
fn row_kernel(name: &str, add: bool) -> Kernel {
    let load = |buf| Expr::Load {
        buf,
        index: vec![Index::Var(0)],
    };
    let mut buffers = vec![buffer("a", Float64, Role::Input)];
    let value = if add {
        buffers.push(buffer("b", Float64, Role::Input));
        apply(ScalarOp::Add, vec![load(0), load(1)], Float64)
    } else {
        load(0)
    };
    buffers.push(buffer("c", Float64, Role::Output));
    let c = buffers.len() - 1;
    Kernel {
        name: name.into(),
        buffers,
        body: vec![Stmt::For {
            var: 0,
            buf: c,
            dim: 0,
            parallel: false,
            body: vec![Stmt::Store {
                buf: c,
                index: vec![Index::Var(0)],
                value,
            }],
        }],
        errors: vec![],
    }
}

/// The running sums of x's rows, one row per step, as a driver kernel: a state
/// double-buffered in a local buffer (`acc[t % 2]` → `acc[(t + 1) % 2]`), the body kernels
/// invoked on rows of x, of the state and of a trace grown by one row per step.
/// `ahead` reads x[t + 1] instead of x[t], so the last step's view is out of range.
fn running_rows_driver(add_rows: &Kernel, copy_row: &Kernel, ahead: bool) -> Kernel {
    let matrix_buffer = |name: &str, role| Buffer {
        name: name.into(),
        dtype: Float64,
        rank: 2,
        role,
    };
    let (x, trace, acc) = (0, 1, 2);
    let mut k = Kernel {
        name: "running_rows".into(),
        buffers: vec![
            matrix_buffer("x", Role::Input),
            matrix_buffer("trace", Role::Growing),
            matrix_buffer(
                "acc",
                Role::Local(vec![Extent::Fixed(2), Extent::Of { buf: x, dim: 1 }]),
            ),
        ],
        body: vec![],
        errors: vec!["no memory for the trace".into()],
    };
    let t = || Expr::Var(0);
    let next = || apply(ScalarOp::Add, vec![t(), int(1)], Int64);
    let parity = |e: Expr| apply(ScalarOp::Mod, vec![e, int(2)], Int64);
    let row = if ahead { next() } else { t() };
    let step = k.invoke_views(
        0,
        add_rows,
        vec![
            View::at(acc, vec![parity(t())]),
            View::at(x, vec![row]),
            View::at(acc, vec![parity(next())]),
        ],
    );
    let keep = k.invoke_views(
        1,
        copy_row,
        vec![
            View::at(acc, vec![parity(next())]),
            View::at(trace, vec![t()]),
        ],
    );
    k.body = vec![Stmt::For {
        var: 0,
        buf: x,
        dim: 0,
        parallel: false,
        body: vec![
            Stmt::Grow {
                buf: trace,
                rows: next(),
                error: 0,
            },
            step,
            keep,
        ],
    }];
    k
}

#[test]
fn a_driver_invokes_body_kernels_on_slices_and_grows_its_trace() {
    let (add_rows, copy_row) = (row_kernel("add_rows", true), row_kernel("copy_row", false));
    let driver = running_rows_driver(&add_rows, &copy_row, false);
    let golden = "\
kernel running_rows(in x: float64[2d], growing trace: float64[2d], local acc: float64[2d] = [2, x.shape[1]]):
  for i0 in 0..x.shape[0]:
    grow trace to add(i0, 1:int64) rows or fail \"no memory for the trace\"
    invoke add_rows(acc[mod(i0, 2:int64)], x[i0], acc[mod(add(i0, 1:int64), 2:int64)])
    invoke copy_row(acc[mod(add(i0, 1:int64), 2:int64)], trace[i0])
";
    assert_eq!(driver.to_string(), golden);
    let calls = KernelCall::compile_all(vec![add_rows, copy_row, driver]).unwrap();
    let run = &calls[2];
    for (rows, cols) in [(5, 3), (1, 4), (0, 2), (7, 1)] {
        let x = f64s(&[rows, cols], -2.0);
        let mut outs = vec![zeros(&[0, cols])];
        run.run(&[&x], &mut outs).unwrap();
        // Closed form: row t of the trace is the sum of x's rows 0..=t.
        let xs = values(&x);
        let mut expected = vec![0.0; rows * cols];
        for t in 0..rows {
            for j in 0..cols {
                let before = if t == 0 {
                    0.0
                } else {
                    expected[(t - 1) * cols + j]
                };
                expected[t * cols + j] = before + xs[t * cols + j];
            }
        }
        assert_eq!(outs[0].shape(), &[rows, cols], "exactly sized");
        assert_eq!(values(&outs[0]), expected, "{rows}×{cols}");
    }
    // The row view's checks: a body given the wrong row length fails in the body.
    let err = run
        .run(&[&f64s(&[3, 2], 0.0)], &mut [zeros(&[0, 3])])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("running_rows: copy_row: input 0 has 2 elements along axis 0, expected 3"),
        "{err}"
    );
}

#[test]
fn a_view_index_out_of_range_fails_before_the_body_runs() {
    let (add_rows, copy_row) = (row_kernel("add_rows", true), row_kernel("copy_row", false));
    let driver = running_rows_driver(&add_rows, &copy_row, true);
    let calls = KernelCall::compile_all(vec![add_rows, copy_row, driver]).unwrap();
    let err = calls[2]
        .run(&[&f64s(&[3, 2], 0.0)], &mut [zeros(&[0, 2])])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("add_rows: a view index 3 is out of range for a dimension of size 3"),
        "{err}"
    );
}

#[test]
fn malformed_views_and_locals_are_refused() {
    let (add_rows, copy_row) = (row_kernel("add_rows", true), row_kernel("copy_row", false));
    let good = running_rows_driver(&add_rows, &copy_row, false);
    let compile = |driver: Kernel| {
        KernelCall::compile_all(vec![add_rows.clone(), copy_row.clone(), driver]).map(|_| ())
    };
    compile(good.clone()).unwrap();
    let body = |k: &mut Kernel| match &mut k.body[0] {
        Stmt::For { body, .. } => body.clone(),
        _ => unreachable!("the driver is one loop"),
    };
    let set_body = |k: &mut Kernel, b: Vec<Stmt>| {
        if let Stmt::For { body, .. } = &mut k.body[0] {
            *body = b;
        }
    };
    // A view of the wrong rank: x whole (2-d) where a row (1-d) is expected.
    let mut wrong_rank = good.clone();
    let mut b = body(&mut wrong_rank);
    if let Stmt::Invoke { args, .. } = &mut b[1] {
        args[1] = View::whole(0);
    }
    set_body(&mut wrong_rank, b);
    assert!(compile(wrong_rank).is_err());
    // A callee writing into an input of the caller.
    let mut writes_input = good.clone();
    let mut b = body(&mut writes_input);
    if let Stmt::Invoke { args, .. } = &mut b[2] {
        args[1] = View::at(0, vec![Expr::Var(0)]);
    }
    set_body(&mut writes_input, b);
    assert!(compile(writes_input).is_err());
    // Views without an error for indices out of range.
    let mut no_error = good.clone();
    let mut b = body(&mut no_error);
    if let Stmt::Invoke { error, .. } = &mut b[1] {
        *error = None;
    }
    set_body(&mut no_error, b);
    assert!(compile(no_error).is_err());
    // A local buffer before an output, and one sized by a dimension of a non-input.
    let mut local_first = good.clone();
    local_first.buffers.swap(1, 2);
    assert!(local_first.validate().is_err());
    let mut sized_by_output = good.clone();
    sized_by_output.buffers[2].role =
        Role::Local(vec![Extent::Fixed(2), Extent::Of { buf: 1, dim: 1 }]);
    assert!(sized_by_output.validate().is_err());
}

fn scalar(name: &str, dtype: DType, role: Role) -> Buffer {
    Buffer {
        name: name.into(),
        dtype,
        rank: 0,
        role,
    }
}

/// The Collatz sequence of x[] (without its final 1) collected in a buffer the kernel
/// grows one row at a time: its length is known only when the `while` ends.
fn collatz_sequence_kernel() -> Kernel {
    let (x, seq, state) = (0, 1, 2);
    let cell = |buf| Expr::Load { buf, index: vec![] };
    let set = |buf, value| Stmt::Store {
        buf,
        index: vec![],
        value,
    };
    let body = vec![
        Stmt::Let {
            temp: 0,
            dtype: Int64,
            value: Expr::Dim { buf: seq, dim: 0 },
        },
        Stmt::Grow {
            buf: seq,
            rows: apply(ScalarOp::Add, vec![Expr::Temp(0), int(1)], Int64),
            error: 0,
        },
        Stmt::Store {
            buf: seq,
            index: vec![Index::Temp(0)],
            value: cell(state),
        },
        Stmt::If {
            cond: apply(
                ScalarOp::Eq,
                vec![
                    apply(ScalarOp::Mod, vec![cell(state), int(2)], Int64),
                    int(0),
                ],
                Bool,
            ),
            then: vec![set(
                state,
                apply(ScalarOp::IntDiv, vec![cell(state), int(2)], Int64),
            )],
            otherwise: vec![set(
                state,
                apply(
                    ScalarOp::Add,
                    vec![
                        apply(ScalarOp::Mul, vec![cell(state), int(3)], Int64),
                        int(1),
                    ],
                    Int64,
                ),
            )],
        },
    ];
    Kernel {
        name: "collatz_sequence".into(),
        buffers: vec![
            scalar("x", Int64, Role::Input),
            buffer("seq", Int64, Role::Growing),
            scalar("state", Int64, Role::Output),
        ],
        body: vec![
            set(state, cell(x)),
            Stmt::While {
                cond: apply(ScalarOp::Gt, vec![cell(state), int(1)], Bool),
                body,
            },
        ],
        errors: vec!["no memory for the sequence".into()],
    }
}

fn int_scalar(v: i64) -> TensorData {
    TensorData::from_array(ndarray::arr0(v).into_dyn())
}

#[test]
fn a_kernel_grows_a_buffer_to_a_length_known_only_at_the_end() {
    // SAFETY: the kernel writes row t0 only after growing the buffer to t0 + 1 rows.
    let call = unsafe { KernelCall::compile_all_with_gathers(vec![collatz_sequence_kernel()]) }
        .unwrap()
        .remove(0);
    assert!(call
        .kernel()
        .to_string()
        .contains("grow seq to add(t0, 1:int64) rows"));
    for start in [1i64, 2, 7, 27, 97, 871] {
        let mut outs = vec![ints(&[]), int_scalar(0)];
        call.run(&[&int_scalar(start)], &mut outs).unwrap();
        let mut expected = Vec::new();
        let mut n = start;
        while n > 1 {
            expected.push(n);
            n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
        }
        let got: Vec<i64> = outs[0].as_array::<i64>().unwrap().iter().copied().collect();
        assert_eq!(got, expected, "start {start}");
        assert_eq!(outs[0].shape(), &[expected.len()], "exactly sized");
    }
}

/// `out` grown to x[] rows of [i, i²].
fn squares_kernel() -> Kernel {
    let (x, out) = (0, 1);
    let body = vec![
        Stmt::Let {
            temp: 0,
            dtype: Int64,
            value: Expr::Dim { buf: out, dim: 0 },
        },
        Stmt::Let {
            temp: 1,
            dtype: Int64,
            value: int(0),
        },
        Stmt::Let {
            temp: 2,
            dtype: Int64,
            value: int(1),
        },
        Stmt::Grow {
            buf: out,
            rows: apply(ScalarOp::Add, vec![Expr::Temp(0), int(1)], Int64),
            error: 0,
        },
        Stmt::Store {
            buf: out,
            index: vec![Index::Temp(0), Index::Temp(1)],
            value: apply(ScalarOp::Cast(Float64), vec![Expr::Temp(0)], Float64),
        },
        Stmt::Store {
            buf: out,
            index: vec![Index::Temp(0), Index::Temp(2)],
            value: apply(
                ScalarOp::Cast(Float64),
                vec![apply(
                    ScalarOp::Mul,
                    vec![Expr::Temp(0), Expr::Temp(0)],
                    Int64,
                )],
                Float64,
            ),
        },
    ];
    Kernel {
        name: "squares".into(),
        buffers: vec![
            scalar("n", Int64, Role::Input),
            Buffer {
                name: "out".into(),
                dtype: Float64,
                rank: 2,
                role: Role::Growing,
            },
        ],
        body: vec![Stmt::While {
            cond: apply(
                ScalarOp::Lt,
                vec![
                    Expr::Dim { buf: out, dim: 0 },
                    Expr::Load {
                        buf: x,
                        index: vec![],
                    },
                ],
                Bool,
            ),
            body,
        }],
        errors: vec!["no memory for {0} rows".into()],
    }
}

#[test]
fn grown_rows_keep_their_values_and_impossible_sizes_fail() {
    // SAFETY: the kernel writes row t0 (columns 0 and 1 of 2) only after growing the
    // buffer to t0 + 1 rows.
    let call = unsafe { KernelCall::compile_all_with_gathers(vec![squares_kernel()]) }
        .unwrap()
        .remove(0);
    let row_shape = || TensorData::from_array(ArrayD::<f64>::zeros(IxDyn(&[0, 2])));
    let mut outs = vec![row_shape()];
    call.run(&[&int_scalar(1000)], &mut outs).unwrap();
    let a = outs[0].as_array::<f64>().unwrap();
    assert_eq!(a.shape(), &[1000, 2]);
    for i in [0usize, 1, 511, 999] {
        assert_eq!((a[[i, 0]], a[[i, 1]]), (i as f64, (i * i) as f64));
    }
    // Zero rows: the loop never runs.
    let mut outs = vec![row_shape()];
    call.run(&[&int_scalar(0)], &mut outs).unwrap();
    assert_eq!(outs[0].shape(), &[0, 2]);
}

#[test]
fn a_growth_the_memory_cannot_hold_fails_cleanly() {
    let (n, out) = (0, 1);
    let kernel = Kernel {
        name: "reserve".into(),
        buffers: vec![
            scalar("n", Int64, Role::Input),
            buffer("out", Float64, Role::Growing),
        ],
        body: vec![Stmt::Grow {
            buf: out,
            rows: Expr::Load {
                buf: n,
                index: vec![],
            },
            error: 0,
        }],
        errors: vec!["cannot grow to the rows asked for".into()],
    };
    let call = KernelCall::compile(kernel).unwrap();
    for impossible in [-1i64, i64::MAX, 1 << 61] {
        let mut outs = vec![zeros(&[0])];
        let err = call
            .run(&[&int_scalar(impossible)], &mut outs)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot grow to the rows asked for"), "{err}");
    }
    let mut outs = vec![zeros(&[0])];
    call.run(&[&int_scalar(3)], &mut outs).unwrap();
    assert_eq!(values(&outs[0]), vec![0.0; 3]);
}

#[test]
fn malformed_kernels_are_refused_before_code_is_made() {
    let (x, out) = (0, 1);
    let base = || Kernel {
        name: "bad".into(),
        buffers: vec![
            buffer("x", Float64, Role::Input),
            buffer("out", Float64, Role::Output),
        ],
        body: vec![],
        errors: vec![],
    };
    let store = |buf, index| Stmt::Store {
        buf,
        index,
        value: Expr::Const(tensorlift::ir::Literal::Float(1.0), Float64),
    };
    let looped = |body| Stmt::For {
        var: 0,
        buf: out,
        dim: 0,
        parallel: false,
        body,
    };
    let cases = [
        // Writing to an input.
        vec![looped(vec![store(x, vec![Index::Var(0)])])],
        // An unbound loop variable, a missing buffer, a wrong rank.
        vec![store(out, vec![Index::Var(3)])],
        vec![looped(vec![store(7, vec![Index::Var(0)])])],
        vec![looped(vec![store(out, vec![Index::Var(0), Index::Zero])])],
        // An undefined temporary, an error not in the list.
        vec![Stmt::Let {
            temp: 0,
            dtype: Float64,
            value: Expr::Temp(5),
        }],
        vec![Stmt::Fail {
            error: 0,
            values: vec![],
        }],
    ];
    for body in cases {
        let mut k = base();
        k.body = body;
        assert!(k.validate().is_err(), "{k}");
        assert!(KernelCall::compile(k).is_err());
    }
    // Looping over the rows of a growing buffer (their count changes as it runs).
    let grows = Kernel {
        name: "bad".into(),
        buffers: vec![
            buffer("x", Float64, Role::Input),
            buffer("out", Float64, Role::Growing),
        ],
        body: vec![looped(vec![store(out, vec![Index::Var(0)])])],
        errors: vec![],
    };
    assert!(grows.validate().is_err());
    // A logsumexp into an integer buffer.
    let int_lse = Kernel {
        name: "bad".into(),
        buffers: vec![
            buffer("x", Float64, Role::Input),
            buffer("out", Int64, Role::Output),
        ],
        body: vec![looped(vec![Stmt::Accumulate {
            buf: out,
            index: vec![Index::Var(0)],
            kind: ReduceKind::LogSumExp,
            value: Expr::Load {
                buf: x,
                index: vec![Index::Var(0)],
            },
        }])],
        errors: vec![],
    };
    assert!(int_lse.validate().is_err(), "{int_lse}");
    // Whole-buffer calls of integer buffers, or with the wrong number of buffers.
    for (func, bufs) in [
        (SupportCall::Softmax, vec![x, out]),
        (SupportCall::Dot, vec![x, x, out]),
        (SupportCall::Softmax, vec![out]),
    ] {
        let ints = Kernel {
            name: "bad".into(),
            buffers: vec![
                buffer("x", Int64, Role::Input),
                buffer("out", Int64, Role::Output),
            ],
            body: vec![Stmt::Call {
                func,
                bufs,
                error: 0,
            }],
            errors: vec!["failed".into()],
        };
        assert!(ints.validate().is_err(), "{ints}");
        assert!(KernelCall::compile(ints).is_err());
    }
}

/// A value read once per row (outside the inner loop) and used inside it, in the
/// vectorised loop and in the strips around an array math call alike: each row's
/// exp(x − s[i]) + s[i], compared with plain Rust over contiguous and transposed inputs.
#[test]
fn values_from_outside_an_inner_loop_reach_every_lane() {
    let matrix_buffer = |name: &str, role| Buffer {
        name: name.into(),
        dtype: Float64,
        rank: 2,
        role,
    };
    let (x, shift, out) = (0, 1, 2);
    let kernel = Kernel {
        name: "row_shift".into(),
        buffers: vec![
            matrix_buffer("x", Role::Input),
            matrix_buffer("shift", Role::Input),
            matrix_buffer("out", Role::Output),
        ],
        body: vec![Stmt::For {
            var: 0,
            buf: out,
            dim: 0,
            parallel: false,
            body: vec![
                Stmt::Let {
                    temp: 0,
                    dtype: Float64,
                    value: Expr::Load {
                        buf: shift,
                        index: vec![Index::Var(0), Index::Zero],
                    },
                },
                Stmt::For {
                    var: 1,
                    buf: out,
                    dim: 1,
                    parallel: false,
                    body: vec![
                        Stmt::Let {
                            temp: 1,
                            dtype: Float64,
                            value: Expr::apply(
                                ScalarOp::Sub,
                                vec![
                                    Expr::Load {
                                        buf: x,
                                        index: vec![Index::Var(0), Index::Var(1)],
                                    },
                                    Expr::Temp(0),
                                ],
                                Float64,
                            ),
                        },
                        Stmt::Let {
                            temp: 2,
                            dtype: Float64,
                            value: Expr::apply(ScalarOp::Exp, vec![Expr::Temp(1)], Float64),
                        },
                        Stmt::Store {
                            buf: out,
                            index: vec![Index::Var(0), Index::Var(1)],
                            value: Expr::apply(
                                ScalarOp::Add,
                                vec![Expr::Temp(2), Expr::Temp(0)],
                                Float64,
                            ),
                        },
                    ],
                },
            ],
        }],
        errors: vec![],
    };
    let call = KernelCall::compile(kernel).unwrap();
    for (rows, cols) in [(3usize, 1100usize), (2, 7)] {
        let data = ArrayD::from_shape_fn(IxDyn(&[rows, cols]), |i| {
            ((i[0] * cols + i[1]) % 13) as f64 * 0.25 - 1.0
        });
        let shifts = ArrayD::from_shape_fn(IxDyn(&[rows, 1]), |i| i[0] as f64 * 0.5 - 0.3);
        let want = ArrayD::from_shape_fn(IxDyn(&[rows, cols]), |i| {
            let s = shifts[[i[0], 0]];
            (data[[i[0], i[1]]] - s).exp() + s
        });
        // The same values with column-major strides (stride 1 along rows).
        let transposed = data.t().as_standard_layout().into_owned().reversed_axes();
        for input in [data.clone(), transposed] {
            let mut outs = vec![zeros(&[rows, cols])];
            let (input, shifts) = (TensorData::from_array(input), shifts.clone().into());
            call.run(&[&input, &shifts], &mut outs).unwrap();
            for (g, w) in values(&outs[0]).iter().zip(want.iter()) {
                assert!((g - w).abs() <= 4.0 * f64::EPSILON * w.abs(), "{g} vs {w}");
            }
        }
    }
}

/// A logsumexp accumulated across rows (`out[j] logsumexp= x[i, j]`, i outer): not the
/// one-pass loop along a row but one `log_add_exp` per element, which the lowering never
/// emits (the rewrites take such reductions to max and sum) — correct all the same.
#[test]
fn logsumexp_across_rows_folds_element_by_element() {
    let matrix_buffer = |name: &str, role| Buffer {
        name: name.into(),
        dtype: Float64,
        rank: 2,
        role,
    };
    let kernel = Kernel {
        name: "lse_columns".into(),
        buffers: vec![
            matrix_buffer("x", Role::Input),
            buffer("out", Float64, Role::Output),
        ],
        body: vec![
            Stmt::Fill {
                buf: 1,
                kind: ReduceKind::LogSumExp,
            },
            Stmt::For {
                var: 0,
                buf: 0,
                dim: 0,
                parallel: false,
                body: vec![Stmt::For {
                    var: 1,
                    buf: 0,
                    dim: 1,
                    parallel: false,
                    body: vec![Stmt::Accumulate {
                        buf: 1,
                        index: vec![Index::Var(1)],
                        kind: ReduceKind::LogSumExp,
                        value: Expr::Load {
                            buf: 0,
                            index: vec![Index::Var(0), Index::Var(1)],
                        },
                    }],
                }],
            },
        ],
        errors: vec![],
    };
    let call = KernelCall::compile(kernel).unwrap();
    let (inf, ln) = (f64::INFINITY, |v: f64| v.ln());
    let x = TensorData::from_array(
        ndarray::array![
            [0.0, 1000.0, -inf, 5.0],
            [ln(2.0), 1000.0, -inf, -inf],
            [ln(3.0), -inf, -inf, inf]
        ]
        .into_dyn(),
    );
    let mut out = vec![zeros(&[4])];
    call.run(&[&x], &mut out).unwrap();
    let got = values(&out[0]);
    let want = [6f64.ln(), 1000.0 + 2f64.ln(), -inf, inf];
    for (g, w) in got.iter().zip(want) {
        assert!(
            *g == w || (g - w).abs() <= 1e-13 * w.abs(),
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn a_growing_buffer_never_shrinks_under_a_running_kernel() {
    let (n, out) = (0, 1);
    let kernel = Kernel {
        name: "shrink".into(),
        buffers: vec![
            scalar("n", Int64, Role::Input),
            buffer("out", Float64, Role::Growing),
        ],
        body: vec![
            Stmt::Grow {
                buf: out,
                rows: int(5),
                error: 0,
            },
            Stmt::Grow {
                buf: out,
                rows: Expr::Load {
                    buf: n,
                    index: vec![],
                },
                error: 0,
            },
        ],
        errors: vec!["cannot resize to the rows asked for".into()],
    };
    let call = KernelCall::compile(kernel).unwrap();
    let mut outs = vec![zeros(&[0])];
    call.run(&[&int_scalar(7)], &mut outs).unwrap();
    assert_eq!(outs[0].shape(), &[7]);
    let mut outs = vec![zeros(&[0])];
    let err = call
        .run(&[&int_scalar(4)], &mut outs)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot resize"), "{err}");
}

#[test]
fn errors_of_nested_invokes_reach_the_outer_caller() {
    let (squared, failing) = branches();
    let chooser = choose(&squared, &failing);
    // An outer kernel with its own error, then a call of the chooser.
    let mut outer = Kernel {
        name: "outer".into(),
        buffers: chooser.buffers.clone(),
        body: vec![Stmt::If {
            cond: apply(
                ScalarOp::Gt,
                vec![Expr::Dim { buf: 1, dim: 0 }, int(100)],
                Bool,
            ),
            then: vec![Stmt::Fail {
                error: 0,
                values: vec![Expr::Dim { buf: 1, dim: 0 }],
            }],
            otherwise: vec![],
        }],
        errors: vec!["x has {0} elements, more than 100".into()],
    };
    outer.body.push(Kernel::invoke(2, &chooser, vec![0, 1, 2]));
    let calls = KernelCall::compile_all(vec![squared, failing, chooser, outer]).unwrap();
    let outer = &calls[3];
    let x = f64s(&[3], 2.0);
    let mut out = vec![zeros(&[3])];
    outer.run(&[&flag(false), &x], &mut out).unwrap();
    assert_eq!(values(&out[0]), vec![4.0, 9.0, 16.0]);
    let fail = |cond: bool, x: &TensorData, n: usize| {
        let mut out = vec![zeros(&[n])];
        outer
            .run(&[&flag(cond), x], &mut out)
            .unwrap_err()
            .to_string()
    };
    // The outer kernel's own error, the innermost kernel's, and a shape check two levels in.
    assert!(fail(false, &f64s(&[101], 0.0), 101).contains("x has 101 elements, more than 100"));
    assert!(fail(true, &x, 3).contains("the branch not taken ran (x has 3 elements)"));
    assert!(fail(false, &x, 2).contains("input 0 has 3 elements along axis 0, expected 2"));
}

/// A random kernel over two f64 inputs and one f64 output of rank 2, built from `code`:
/// nested loops over random buffers' dimensions around loads, stores, accumulations (sum,
/// max, logsumexp), temporaries (from inside and outside the inner loop), math with array
/// versions, whole-buffer softmax calls and conditions indexed by the loop variables or 0
/// — mostly well formed, sometimes not (a store to an input, a variable of a loop that is
/// not there).
fn random_kernel(code: &[(u8, u8, u8)]) -> Kernel {
    let buf = |v: u8| (v % 3) as usize;
    let index = |a: u8, b: u8| -> Vec<Index> {
        [a, b]
            .iter()
            .map(|v| match v % 4 {
                0 => Index::Zero,
                1 => Index::Var(1),
                _ => Index::Var(0),
            })
            .collect()
    };
    let load = |b: u8, i: u8, j: u8| Expr::Load {
        buf: buf(b),
        index: index(i, j),
    };
    let mut inner: Vec<Stmt> = Vec::new();
    let mut temps = 0;
    for (op, a, b) in code {
        let stmt = match op % 7 {
            0 => {
                temps += 1;
                Stmt::Let {
                    temp: temps - 1,
                    dtype: Float64,
                    value: apply(
                        ScalarOp::Mul,
                        vec![load(*a, *b, *a), load(*b, *a, *b)],
                        Float64,
                    ),
                }
            }
            1 | 2 => Stmt::Store {
                buf: if op % 7 == 0 { buf(*a) } else { 2 },
                index: index(*a, *b),
                value: if temps > 0 {
                    Expr::Temp(*b as usize % temps)
                } else if a % 2 == 0 {
                    // A value from outside the inner loop.
                    Expr::Temp(OUTER_TEMP)
                } else {
                    load(*b, *b, *a)
                },
            },
            3 => Stmt::Accumulate {
                buf: 2,
                index: index(*b, *a),
                kind: match a % 3 {
                    0 => tensorlift::ir::ops::ReduceKind::Sum,
                    1 => tensorlift::ir::ops::ReduceKind::Max,
                    _ => tensorlift::ir::ops::ReduceKind::LogSumExp,
                },
                value: load(*a, *a, *b),
            },
            5 => {
                // A math function with an array version (strips).
                temps += 1;
                Stmt::Let {
                    temp: temps - 1,
                    dtype: Float64,
                    value: apply(ScalarOp::Exp, vec![load(*a, *b, *b)], Float64),
                }
            }
            6 => Stmt::Call {
                func: SupportCall::Softmax,
                bufs: vec![buf(*a), 2],
                error: 0,
            },
            _ => Stmt::If {
                cond: apply(
                    ScalarOp::Gt,
                    vec![
                        load(*a, *b, *a),
                        Expr::Const(tensorlift::ir::Literal::Float(0.0), Float64),
                    ],
                    Bool,
                ),
                then: vec![Stmt::Store {
                    buf: 2,
                    index: index(*b, *a),
                    value: load(*a, *a, *a),
                }],
                otherwise: vec![],
            },
        };
        inner.push(stmt);
    }
    let (o0, o1) = code.first().map_or((0, 0), |c| (c.1, c.2));
    let mut body = vec![Stmt::For {
        var: 0,
        buf: buf(o0),
        dim: (o1 % 2) as usize,
        parallel: false,
        body: vec![
            Stmt::Let {
                temp: OUTER_TEMP,
                dtype: Float64,
                value: load(o0, 2, 0),
            },
            Stmt::For {
                var: 1,
                buf: buf(o1),
                dim: (o0 % 2) as usize,
                parallel: false,
                body: inner,
            },
        ],
    }];
    if o0 % 5 == 0 {
        body.insert(
            0,
            Stmt::Fill {
                buf: 2,
                kind: tensorlift::ir::ops::ReduceKind::Max,
            },
        );
    }
    if o1 % 11 == 0 {
        // A loop variable with no loop.
        body.push(Stmt::Store {
            buf: 2,
            index: vec![Index::Var(5), Index::Zero],
            value: Expr::int(0),
        });
    }
    let b = |name: &str, role| Buffer {
        name: name.into(),
        dtype: Float64,
        rank: 2,
        role,
    };
    Kernel {
        name: "random".into(),
        buffers: vec![
            b("x", Role::Input),
            b("y", Role::Input),
            b("out", Role::Output),
        ],
        body,
        errors: vec!["a support call failed".into()],
    }
}

/// The temporary `random_kernel` defines per outer iteration, outside the inner loop.
const OUTER_TEMP: usize = 100;

proptest::proptest! {
    #![proptest_config(common::proptest_config(128, 0x6b65_726e))]
    /// Whatever kernel the safe API is given, and whatever shapes it is called with, it
    /// compiles or refuses, runs or returns an error: it never panics, and never touches
    /// memory outside the buffers (the test would crash).
    #[test]
    fn the_safe_kernel_api_refuses_or_runs_any_kernel(
        code in proptest::collection::vec((0u8..255, 0u8..255, 0u8..255), 1..10),
        shapes in proptest::collection::vec((0usize..4, 1usize..4), 3),
        alike in proptest::bool::weighted(0.7),
    ) {
        let kernel = random_kernel(&code);
        if let Ok(call) = KernelCall::compile(kernel) {
            // Mostly one square shape for all (the kernel runs), else any (it mostly
            // refuses).
            let square = (shapes[0].1, shapes[0].1);
            let shape = |k: usize| if alike { square } else { shapes[k] };
            let make = |(r, c): (usize, usize)| f64s(&[r, c], 1.0);
            let (x, y) = (make(shape(0)), make(shape(1)));
            let mut out = vec![make(shape(2))];
            let _ = call.run(&[&x, &y], &mut out);
        }
    }
}

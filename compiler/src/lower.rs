//! Lowering of graph nodes to loop-nest kernels (DESIGN §11).
//!
//! Owns: which nodes become jitted kernels and their loop nests. An Elemwise or Composite
//! node becomes one loop nest over its output (inputs broadcast along a dimension are read
//! at index 0, i.e. with stride 0); a reduction loops over its input in memory order and
//! accumulates into the output (so both an innermost and an outer reduced axis read
//! memory contiguously); a `FusedReduce` computes its composite body inside the reduction
//! loop, reading the inputs once. Kernels compute floats in f64 (float32 results rounded
//! as the reference rounds them), integers in wrapping i64 (wrapped to their dtype), bools
//! as 0/1 (logic on bools as bit operations); integer powers are not lowered (`None`). A float `Dot` becomes
//! a call of the runtime's gemm after checks of its operands' shapes; a gather `x[idx]`
//! (one integer index array on the first axis) a loop that checks every index before it
//! copies the row; a running sum or product a loop reading back the previous output; an
//! arg-reduction a loop reading back the best value by the index it keeps; a
//! concatenation one copy loop per piece.

use tensorlift_ir::ops::{
    AdvancedSlot, ArgKind, Composite, CumKind, IncMode, ReduceKind, ScalarRef,
};
use tensorlift_ir::{DType, FunctionGraph, NodeId, Op, ScalarOp, TensorType};

use crate::loopir::{Buffer, Expr, Index, Kernel, Role, Stmt, SupportCall};

/// Whether a kernel computes `op` producing `dtype` from `args`.
fn kernel_op(op: ScalarOp, args: &[DType], dtype: DType) -> bool {
    use ScalarOp::*;
    let any_float = args.iter().any(|a| a.is_float());
    let all_bool = args.iter().all(|a| *a == DType::Bool);
    match op {
        Eq | Neq | Lt | Le | Gt | Ge => true,
        IsNan | IsInf => any_float,
        Switch => args[0] == DType::Bool,
        // Logic on bools: bit operations (`+`/`maximum` are or, `*`/`minimum` and).
        And | Or | Xor | Not | Add | Mul | Maximum | Minimum if dtype == DType::Bool => all_bool,
        Cast(_) | Identity => true,
        _ if dtype.is_float() => true,
        // Integer results: wrapping arithmetic and logic as the reference computes them
        // (integer powers can fail at run time, so they stay in the runtime).
        Neg | Abs | Sign | Sqr | Floor | Ceil | Round | Not | Add | Sub | Mul | Maximum
        | Minimum | And | Or | Xor | Clip | IntDiv | Mod => dtype != DType::Bool,
        _ => false,
    }
}

/// A composite body is lowerable when every node is.
fn composite_ok(c: &Composite) -> bool {
    let dtype_of = |r: &ScalarRef| match r {
        ScalarRef::Input(i) => c.inputs[*i],
        ScalarRef::Node(j) => c.nodes[*j].dtype,
        ScalarRef::Const(_, d) => *d,
    };
    c.nodes.iter().all(|n| {
        let args: Vec<DType> = n.args.iter().map(dtype_of).collect();
        kernel_op(n.op, &args, n.dtype)
    })
}

/// The composite an Elemwise node computes (one scalar node).
fn elemwise_composite(fg: &FunctionGraph, node: NodeId, op: ScalarOp) -> Option<Composite> {
    let e = fg.node(node)?;
    let dtypes = e.inputs.iter().map(|x| fg.var(*x).ty.dtype).collect();
    let args = (0..e.inputs.len()).map(ScalarRef::Input).collect();
    Composite::new(dtypes, vec![(op, args)], vec![ScalarRef::Node(0)]).ok()
}

/// The kernel for `node`, or `None` when the node is not lowered to a kernel. Every kernel
/// starts by checking the shapes it is given (`Kernel::with_shape_checks`).
pub fn lower_node(fg: &FunctionGraph, node: NodeId) -> Option<Kernel> {
    lower_unchecked(fg, node).map(Kernel::with_shape_checks)
}

fn lower_unchecked(fg: &FunctionGraph, node: NodeId) -> Option<Kernel> {
    let e = fg.node(node)?;
    let in_types: Vec<&TensorType> = e.inputs.iter().map(|x| &fg.var(*x).ty).collect();
    let out_types: Vec<&TensorType> = e.outputs.iter().map(|o| &fg.var(*o).ty).collect();
    match &e.op {
        Op::Elemwise(op) => {
            let c = elemwise_composite(fg, node, *op)?;
            composite_ok(&c).then(|| elemwise_kernel(&c, &in_types, &out_types))
        }
        Op::Composite(c) => composite_ok(c).then(|| elemwise_kernel(c, &in_types, &out_types)),
        Op::Reduce { kind, axes } if reducible(*kind, in_types[0].dtype, out_types[0].dtype) => {
            let c = Composite::new(
                vec![in_types[0].dtype],
                vec![(ScalarOp::Identity, vec![ScalarRef::Input(0)])],
                vec![ScalarRef::Node(0)],
            )
            .ok()?;
            Some(reduce_kernel(*kind, axes, &c, &in_types, out_types[0]))
        }
        Op::FusedReduce {
            kind,
            axes,
            body,
            keep,
        } if composite_ok(body)
            && body.outputs.len() == 1
            && reducible(*kind, body_dtype(body), out_types[0].dtype) =>
        {
            let mut k = reduce_kernel(*kind, axes, body, &in_types, out_types[0]);
            if *keep {
                keep_values(&mut k, out_types[1]);
            }
            Some(k)
        }
        Op::Dot => dot_kernel(&in_types, out_types[0]),
        Op::Cumulative { kind, axis } => cumulative_kernel(*kind, *axis, in_types[0], out_types[0]),
        Op::ArgReduce { kind, axis } => arg_kernel(*kind, *axis, in_types[0], out_types[0]),
        Op::Join { axis } => join_kernel(*axis, &in_types, out_types[0]),
        Op::Alloc => alloc_kernel(&in_types, out_types[0]),
        Op::Arange(dtype) => arange_kernel(*dtype, &in_types, out_types[0]),
        Op::AdvancedSubtensor(slots) if slots.as_slice() == [AdvancedSlot::Array] => {
            take_kernel(&in_types, out_types[0])
        }
        Op::AdvancedIncSubtensor { slots, mode } if slots.as_slice() == [AdvancedSlot::Array] => {
            scatter_kernel(*mode, &in_types, out_types[0])
        }
        _ => None,
    }
}

/// `out = a · b` through the runtime's gemm, for 1-d/2-d operands of one float dtype:
/// checks that the contracted sizes agree and that the output has the product's shape,
/// then calls the support function.
fn dot_kernel(in_types: &[&TensorType], out: &TensorType) -> Option<Kernel> {
    let dtype = out.dtype;
    let (ra, rb) = (in_types[0].ndim(), in_types[1].ndim());
    let same = in_types.iter().all(|t| t.dtype == dtype);
    if !same || !(1..=2).contains(&ra) || !(1..=2).contains(&rb) {
        return None;
    }
    if dtype.is_int() {
        return Some(int_dot_kernel(ra, rb, in_types, out));
    }
    if !matches!(dtype, DType::Float64 | DType::Float32) {
        return None;
    }
    let (buffers, _) = buffers_with_output(in_types, out);
    let mut errors = Vec::new();
    let mut body = Vec::new();
    let mut require = |size: Expr, expected: Expr, message: String, body: &mut Vec<Stmt>| {
        body.push(Stmt::If {
            cond: Expr::apply(
                ScalarOp::Neq,
                vec![size.clone(), expected.clone()],
                DType::Bool,
            ),
            then: vec![Stmt::Fail {
                error: errors.len(),
                values: vec![size, expected],
            }],
            otherwise: Vec::new(),
        });
        errors.push(message);
    };
    require(
        Expr::Dim { buf: 1, dim: 0 },
        Expr::Dim {
            buf: 0,
            dim: ra - 1,
        },
        format!(
            "the contracted dimensions differ: input 1 has {{0}} elements along axis 0, \
             input 0 has {{1}} along axis {}",
            ra - 1
        ),
        &mut body,
    );
    // The output's axes: a's rows (when 2-d), then b's columns (when 2-d).
    let out_axes = (ra == 2)
        .then_some((0, 0))
        .into_iter()
        .chain((rb == 2).then_some((1, 1)));
    for (axis, (buf, dim)) in out_axes.enumerate() {
        require(
            Expr::Dim { buf: 2, dim: axis },
            Expr::Dim { buf, dim },
            format!(
                "output 0 has {{0}} elements along axis {axis}, expected {{1}} \
                 (the size of input {buf}'s axis {dim})"
            ),
            &mut body,
        );
    }
    body.push(Stmt::Call {
        func: SupportCall::Dot,
        bufs: vec![0, 1, 2],
        error: errors.len(),
    });
    errors.push("gemm failed".into());
    Some(Kernel {
        name: "dot".into(),
        buffers,
        body,
        errors,
    })
}

/// `out = x[idx]` for an integer index array on x's first axis (the output has idx's
/// shape, then x's other axes): every index is wrapped if negative and checked against
/// x's first size before it addresses memory; the rows are copied by an inner loop.
fn take_kernel(in_types: &[&TensorType], out: &TensorType) -> Option<Kernel> {
    let (x, idx) = (in_types[0], in_types[1]);
    if !idx.dtype.is_int() || x.ndim() == 0 || x.dtype != out.dtype {
        return None;
    }
    let (k, r) = (idx.ndim(), x.ndim());
    let (buffers, out_buf) = buffers_with_output(in_types, out);
    let at = |v: usize| Index::Var(v);
    let wrapped = 1;
    // The copy of one row: loops over x's other axes (output axes k..).
    let copy = Stmt::Store {
        buf: out_buf,
        index: (0..k + r - 1).map(at).collect(),
        value: Expr::Load {
            buf: 0,
            index: std::iter::once(Index::Temp(wrapped))
                .chain((k..k + r - 1).map(at))
                .collect(),
        },
    };
    let mut row = vec![copy];
    for d in (k..k + r - 1).rev() {
        row = vec![Stmt::For {
            var: d,
            buf: out_buf,
            dim: d,
            parallel: false,
            body: row,
        }];
    }
    let mut body = checked_index(1, k, 0);
    body.append(&mut row);
    Some(Kernel {
        name: "take".into(),
        buffers,
        body: nest(&vec![out_buf; k], body),
        errors: vec![index_error(1)],
    })
}

/// A running sum or product along `axis` (or over the flattened input, in memory order):
/// each output element is the input element combined with the previous output element
/// along the axis, read back (the row-major loops reach it first). Float64 and integer
/// or bool inputs (wrapping int64 output), the reference's exact arithmetic; float32
/// (accumulated in f64 by the reference) stays in the runtime.
fn cumulative_kernel(
    kind: CumKind,
    axis: Option<usize>,
    x: &TensorType,
    out: &TensorType,
) -> Option<Kernel> {
    let exact = out.dtype == DType::Float64 && x.dtype == DType::Float64
        || out.dtype == DType::Int64 && !x.dtype.is_float();
    let r = x.ndim();
    if !exact || r == 0 || axis.is_some_and(|a| a >= r) {
        return None;
    }
    let (buffers, out_buf) = buffers_with_output(&[x], out);
    let op = match kind {
        CumKind::CumSum => ScalarOp::Add,
        CumKind::CumProd => ScalarOp::Mul,
    };
    let all: Vec<Index> = (0..r).map(Index::Var).collect();
    let (value, at, previous) = (0, 1, 2);
    let mut body = vec![Stmt::Let {
        temp: value,
        dtype: out.dtype,
        value: Expr::apply(
            ScalarOp::Cast(out.dtype),
            vec![Expr::Load {
                buf: 0,
                index: all.clone(),
            }],
            out.dtype,
        ),
    }];
    // Where the element goes along the scanned axis of `out`, and the output index.
    let (scanned, out_index): (Expr, Box<dyn Fn(Index) -> Vec<Index>>) = match axis {
        Some(a) => (
            Expr::Var(a),
            Box::new(move |i| {
                (0..r)
                    .map(|d| if d == a { i } else { Index::Var(d) })
                    .collect()
            }),
        ),
        None => {
            // The flat position: Σ i_d · Π_{e>d} x.shape[e].
            let mut pos = Expr::Var(0);
            for d in 1..r {
                pos = Expr::apply(
                    ScalarOp::Add,
                    vec![
                        Expr::apply(
                            ScalarOp::Mul,
                            vec![pos, Expr::Dim { buf: 0, dim: d }],
                            DType::Int64,
                        ),
                        Expr::Var(d),
                    ],
                    DType::Int64,
                );
            }
            (pos, Box::new(|i| vec![i]))
        }
    };
    body.push(Stmt::Let {
        temp: at,
        dtype: DType::Int64,
        value: scanned,
    });
    let first = Expr::apply(
        ScalarOp::Eq,
        vec![Expr::Temp(at), Expr::int(0)],
        DType::Bool,
    );
    body.push(Stmt::If {
        cond: first,
        then: vec![Stmt::Store {
            buf: out_buf,
            index: out_index(Index::Temp(at)),
            value: Expr::Temp(value),
        }],
        otherwise: vec![
            Stmt::Let {
                temp: previous,
                dtype: DType::Int64,
                value: Expr::apply(
                    ScalarOp::Sub,
                    vec![Expr::Temp(at), Expr::int(1)],
                    DType::Int64,
                ),
            },
            Stmt::Store {
                buf: out_buf,
                index: out_index(Index::Temp(at)),
                value: Expr::apply(
                    op,
                    vec![
                        Expr::Load {
                            buf: out_buf,
                            index: out_index(Index::Temp(previous)),
                        },
                        Expr::Temp(value),
                    ],
                    out.dtype,
                ),
            },
        ],
    });
    let mut errors = Vec::new();
    let mut checks = Vec::new();
    if axis.is_none() {
        // The flat output holds exactly the input's elements (the positions above).
        let mut count = Expr::Dim { buf: 0, dim: 0 };
        for d in 1..r {
            count = Expr::apply(
                ScalarOp::Mul,
                vec![count, Expr::Dim { buf: 0, dim: d }],
                DType::Int64,
            );
        }
        let size = Expr::Dim {
            buf: out_buf,
            dim: 0,
        };
        checks.push(Stmt::If {
            cond: Expr::apply(
                ScalarOp::Neq,
                vec![size.clone(), count.clone()],
                DType::Bool,
            ),
            then: vec![Stmt::Fail {
                error: 0,
                values: vec![size, count],
            }],
            otherwise: Vec::new(),
        });
        errors.push("output 0 has {0} elements, expected {1} (the input's)".into());
    } else if let Some(a) = axis {
        // The scanned axis is addressed by a temporary (the shape checks cover the rest).
        let (size, expected) = (
            Expr::Dim {
                buf: out_buf,
                dim: a,
            },
            Expr::Dim { buf: 0, dim: a },
        );
        checks.push(Stmt::If {
            cond: Expr::apply(
                ScalarOp::Neq,
                vec![size.clone(), expected.clone()],
                DType::Bool,
            ),
            then: vec![Stmt::Fail {
                error: 0,
                values: vec![size, expected],
            }],
            otherwise: Vec::new(),
        });
        errors.push(format!(
            "output 0 has {{0}} elements along axis {a}, expected {{1}} (the input's)"
        ));
    }
    checks.extend(nest(&vec![0; r], body));
    Some(Kernel {
        name: format!("{}_cumulative", format!("{kind:?}").to_lowercase()),
        buffers,
        body: checks,
        errors,
    })
}

/// The index of the first maximum (minimum) along `axis` (or along the only axis of a
/// vector): the output holds the best index so far, and the best value is read back
/// from the input at that index (in range: it is an earlier position of the same lane).
/// A NaN is the extreme, the first NaN wins; ties keep the first, as in the reference.
/// The executor leaves an empty axis to the reference (its error).
fn arg_kernel(
    kind: ArgKind,
    axis: Option<usize>,
    x: &TensorType,
    out: &TensorType,
) -> Option<Kernel> {
    let r = x.ndim();
    let a = match axis {
        Some(a) if a < r => a,
        None if r == 1 => 0,
        _ => return None,
    };
    if out.dtype != DType::Int64 {
        return None;
    }
    let (buffers, out_buf) = buffers_with_output(&[x], out);
    let kept: Vec<Index> = (0..r).filter(|d| *d != a).map(Index::Var).collect();
    let (value, at, best_at, best) = (0, 1, 2, 3);
    let at_axis = |i: Index| -> Vec<Index> {
        (0..r)
            .map(|d| if d == a { i } else { Index::Var(d) })
            .collect()
    };
    let cmp = match kind {
        ArgKind::Argmax => ScalarOp::Gt,
        ArgKind::Argmin => ScalarOp::Lt,
    };
    let mut better = Expr::apply(cmp, vec![Expr::Temp(value), Expr::Temp(best)], DType::Bool);
    if x.dtype.is_float() {
        let nan = |t| Expr::apply(ScalarOp::IsNan, vec![Expr::Temp(t)], DType::Bool);
        let first_nan = Expr::apply(
            ScalarOp::And,
            vec![
                nan(value),
                Expr::apply(ScalarOp::Not, vec![nan(best)], DType::Bool),
            ],
            DType::Bool,
        );
        better = Expr::apply(ScalarOp::Or, vec![better, first_nan], DType::Bool);
    }
    let record = |v: Expr| Stmt::Store {
        buf: out_buf,
        index: kept.clone(),
        value: v,
    };
    let body = vec![
        Stmt::Let {
            temp: value,
            dtype: x.dtype,
            value: Expr::Load {
                buf: 0,
                index: (0..r).map(Index::Var).collect(),
            },
        },
        Stmt::Let {
            temp: at,
            dtype: DType::Int64,
            value: Expr::Var(a),
        },
        Stmt::If {
            cond: Expr::apply(
                ScalarOp::Eq,
                vec![Expr::Temp(at), Expr::int(0)],
                DType::Bool,
            ),
            then: vec![record(Expr::int(0))],
            otherwise: vec![
                Stmt::Let {
                    temp: best_at,
                    dtype: DType::Int64,
                    value: Expr::Load {
                        buf: out_buf,
                        index: kept.clone(),
                    },
                },
                Stmt::Let {
                    temp: best,
                    dtype: x.dtype,
                    value: Expr::Load {
                        buf: 0,
                        index: at_axis(Index::Temp(best_at)),
                    },
                },
                Stmt::If {
                    cond: better,
                    then: vec![record(Expr::Temp(at))],
                    otherwise: Vec::new(),
                },
            ],
        },
    ];
    Some(Kernel {
        name: format!("{}_along", format!("{kind:?}").to_lowercase()),
        buffers,
        body: nest(&vec![0; r], body),
        errors: Vec::new(),
    })
}

/// `Alloc(value, sizes…)`: the value broadcast into the requested shape (its axes align
/// with the output's last ones; those of static size 1 are read at index 0). The sizes
/// are read by the executor, which checks them and the value with the reference's rule.
fn alloc_kernel(in_types: &[&TensorType], out: &TensorType) -> Option<Kernel> {
    let value = in_types.first()?;
    let r = out.ndim();
    if value.dtype != out.dtype || value.ndim() > r {
        return None;
    }
    let (buffers, out_buf) = buffers_with_output(in_types, out);
    let offset = r - value.ndim();
    let read: Vec<Index> = value
        .broadcastable()
        .iter()
        .enumerate()
        .map(|(e, b)| {
            if *b {
                Index::Zero
            } else {
                Index::Var(offset + e)
            }
        })
        .collect();
    let body = vec![Stmt::Store {
        buf: out_buf,
        index: (0..r).map(Index::Var).collect(),
        value: Expr::Load {
            buf: 0,
            index: read,
        },
    }];
    Some(Kernel {
        name: "alloc".into(),
        buffers,
        body: nest(&vec![out_buf; r], body),
        errors: Vec::new(),
    })
}

/// `Arange(start, stop, step)`: element i is start + i·step, in f64 for float dtypes
/// (then rounded) and in wrapping int64 for integers, as the reference computes it; the
/// executor sizes the output with the reference's own length rule.
fn arange_kernel(dtype: DType, in_types: &[&TensorType], out: &TensorType) -> Option<Kernel> {
    if out.dtype != dtype || out.ndim() != 1 || in_types.len() != 3 || dtype == DType::Bool {
        return None;
    }
    let (buffers, out_buf) = buffers_with_output(in_types, out);
    let domain = if dtype.is_float() {
        DType::Float64
    } else {
        DType::Int64
    };
    let scalar = |buf| {
        Expr::apply(
            ScalarOp::Cast(domain),
            vec![Expr::Load { buf, index: vec![] }],
            domain,
        )
    };
    let i = Expr::apply(ScalarOp::Cast(domain), vec![Expr::Var(0)], domain);
    let value = Expr::apply(
        ScalarOp::Add,
        vec![
            scalar(0),
            Expr::apply(ScalarOp::Mul, vec![i, scalar(2)], domain),
        ],
        domain,
    );
    let body = vec![Stmt::Store {
        buf: out_buf,
        index: vec![Index::Var(0)],
        value: Expr::apply(ScalarOp::Cast(dtype), vec![value], dtype),
    }];
    Some(Kernel {
        name: "arange".into(),
        buffers,
        body: nest(&[out_buf], body),
        errors: Vec::new(),
    })
}

/// Concatenation along `axis`: each input copied by its own loop nest to its offset along
/// the axis (the sum of the earlier inputs' sizes there); the output's size along the
/// axis is checked to be the sum of the inputs'.
fn join_kernel(axis: usize, in_types: &[&TensorType], out: &TensorType) -> Option<Kernel> {
    let r = out.ndim();
    let fits = !in_types.is_empty()
        && axis < r
        && in_types
            .iter()
            .all(|t| t.dtype == out.dtype && t.ndim() == r);
    if !fits {
        return None;
    }
    let (buffers, out_buf) = buffers_with_output(in_types, out);
    let along = |buf: usize| Expr::Dim { buf, dim: axis };
    let sum = |bufs: std::ops::Range<usize>| {
        bufs.fold(Expr::int(0), |acc, b| {
            Expr::apply(ScalarOp::Add, vec![acc, along(b)], DType::Int64)
        })
    };
    let total = sum(0..in_types.len());
    let size = along(out_buf);
    let mut body = vec![Stmt::If {
        cond: Expr::apply(
            ScalarOp::Neq,
            vec![size.clone(), total.clone()],
            DType::Bool,
        ),
        then: vec![Stmt::Fail {
            error: 0,
            values: vec![size, total],
        }],
        otherwise: Vec::new(),
    }];
    let position = 0;
    for i in 0..in_types.len() {
        // Temp 0 is the position along the axis in the output (defined in the loop over it).
        let copy = Stmt::Store {
            buf: out_buf,
            index: (0..r)
                .map(|d| {
                    if d == axis {
                        Index::Temp(position)
                    } else {
                        Index::Var(d)
                    }
                })
                .collect(),
            value: Expr::Load {
                buf: i,
                index: (0..r).map(Index::Var).collect(),
            },
        };
        let mut nest_body = vec![copy];
        for d in (0..r).rev() {
            if d == axis {
                nest_body.insert(
                    0,
                    Stmt::Let {
                        temp: position,
                        dtype: DType::Int64,
                        value: Expr::apply(
                            ScalarOp::Add,
                            vec![sum(0..i), Expr::Var(d)],
                            DType::Int64,
                        ),
                    },
                );
            }
            nest_body = vec![Stmt::For {
                var: d,
                buf: i,
                dim: d,
                parallel: false,
                body: nest_body,
            }];
        }
        body.extend(nest_body);
    }
    Some(Kernel {
        name: "join".into(),
        buffers,
        body,
        errors: vec![
            "output 0 has {0} elements along the joined axis, expected {1} (the inputs' sum)"
                .into(),
        ],
    })
}

/// The message of error 0 of a gather or scatter: an index out of range.
fn index_error(input: usize) -> String {
    format!("index {{0}} (in index array input {input}) is out of range for axis 0 of size {{1}}")
}

/// Statements reading the index `idx[i0, …, i(k-1)]` (buffer `idx`) as temp 0, wrapping it
/// if negative into temp 1, and failing with error 0 unless temp 1 addresses a row of
/// buffer `x`.
fn checked_index(idx: usize, k: usize, x: usize) -> Vec<Stmt> {
    let (raw, wrapped) = (0, 1);
    let size = Expr::Dim { buf: x, dim: 0 };
    let out_of_range = |cond: Expr| Stmt::If {
        cond,
        then: vec![Stmt::Fail {
            error: 0,
            values: vec![Expr::Temp(raw), size.clone()],
        }],
        otherwise: Vec::new(),
    };
    let negative = Expr::apply(
        ScalarOp::Lt,
        vec![Expr::Temp(raw), Expr::int(0)],
        DType::Bool,
    );
    let wrap = Expr::apply(
        ScalarOp::Add,
        vec![Expr::Temp(raw), size.clone()],
        DType::Int64,
    );
    vec![
        Stmt::Let {
            temp: raw,
            dtype: DType::Int64,
            value: Expr::apply(
                ScalarOp::Cast(DType::Int64),
                vec![Expr::Load {
                    buf: idx,
                    index: (0..k).map(Index::Var).collect(),
                }],
                DType::Int64,
            ),
        },
        Stmt::Let {
            temp: wrapped,
            dtype: DType::Int64,
            value: Expr::apply(
                ScalarOp::Switch,
                vec![negative, wrap, Expr::Temp(raw)],
                DType::Int64,
            ),
        },
        out_of_range(Expr::apply(
            ScalarOp::Lt,
            vec![Expr::Temp(wrapped), Expr::int(0)],
            DType::Bool,
        )),
        out_of_range(Expr::apply(
            ScalarOp::Ge,
            vec![Expr::Temp(wrapped), size.clone()],
            DType::Bool,
        )),
    ]
}

/// `out = x` with `out[idx] = y` (or `+= y`) for an integer index array on x's first
/// axis: x copied, then the region (idx's shape, then x's other axes) visited in order,
/// every index wrapped and checked before it addresses a row (repeated indices: the last
/// write wins, increments accumulate, as in the reference). y aligns with the region's
/// last axes; its axes of static size 1 broadcast.
fn scatter_kernel(mode: IncMode, in_types: &[&TensorType], out: &TensorType) -> Option<Kernel> {
    let (x, y, idx) = (in_types[0], in_types[1], in_types[2]);
    let ok = idx.dtype.is_int()
        && x.ndim() > 0
        && x.dtype == out.dtype
        && y.dtype == x.dtype
        && x.dtype != DType::Bool;
    let (k, r) = (idx.ndim(), x.ndim());
    let region = k + r - 1;
    if !ok || y.ndim() > region {
        return None;
    }
    let (buffers, out_buf) = buffers_with_output(in_types, out);
    // out = x.
    let all: Vec<Index> = (0..r).map(Index::Var).collect();
    let copy = nest(
        &vec![out_buf; r],
        vec![Stmt::Store {
            buf: out_buf,
            index: all.clone(),
            value: Expr::Load { buf: 0, index: all },
        }],
    );
    // The region: loop variables 0..k over idx, k..region over x's other axes (their
    // loops walk out's axes 1..).
    let target: Vec<Index> = std::iter::once(Index::Temp(1))
        .chain((k..region).map(Index::Var))
        .collect();
    let offset = region - y.ndim();
    let y_index: Vec<Index> = y
        .broadcastable()
        .iter()
        .enumerate()
        .map(|(d, b)| {
            if *b {
                Index::Zero
            } else {
                Index::Var(offset + d)
            }
        })
        .collect();
    let value = Expr::Load {
        buf: 1,
        index: y_index,
    };
    let value = match mode {
        IncMode::Set => value,
        IncMode::Inc => Expr::apply(
            ScalarOp::Add,
            vec![
                Expr::Load {
                    buf: out_buf,
                    index: target.clone(),
                },
                value,
            ],
            out.dtype,
        ),
    };
    let mut row = vec![Stmt::Store {
        buf: out_buf,
        index: target,
        value,
    }];
    for v in (k..region).rev() {
        row = vec![Stmt::For {
            var: v,
            buf: out_buf,
            dim: v - k + 1,
            parallel: false,
            body: row,
        }];
    }
    let mut visit = checked_index(2, k, 0);
    visit.append(&mut row);
    let mut body = copy;
    body.extend(nest(&vec![2; k], visit));
    Some(Kernel {
        name: format!("{}_scatter", format!("{mode:?}").to_lowercase()),
        buffers,
        body,
        errors: vec![index_error(2)],
    })
}

/// `out = a · b` for integer operands of one dtype, as the reference computes it: sums of
/// products in wrapping int64, wrapped to the dtype. Loops i (a's rows), k (the
/// contracted axis), j (b's columns), so b is read along its rows; the shape checks
/// compare b's rows with a's columns.
fn int_dot_kernel(ra: usize, rb: usize, in_types: &[&TensorType], out: &TensorType) -> Kernel {
    let (buffers, out_buf) = buffers_with_output(in_types, out);
    let (i, k, j) = (0, 1, 2);
    let a_index: Vec<Index> = if ra == 2 {
        vec![Index::Var(i), Index::Var(k)]
    } else {
        vec![Index::Var(k)]
    };
    let b_index: Vec<Index> = if rb == 2 {
        vec![Index::Var(k), Index::Var(j)]
    } else {
        vec![Index::Var(k)]
    };
    let out_index: Vec<Index> = (ra == 2)
        .then_some(Index::Var(i))
        .into_iter()
        .chain((rb == 2).then_some(Index::Var(j)))
        .collect();
    let product = Expr::apply(
        ScalarOp::Mul,
        vec![
            Expr::Load {
                buf: 0,
                index: a_index,
            },
            Expr::Load {
                buf: 1,
                index: b_index,
            },
        ],
        out.dtype,
    );
    let mut body = vec![Stmt::Accumulate {
        buf: out_buf,
        index: out_index,
        kind: ReduceKind::Sum,
        value: product,
    }];
    let wrap = |var, buf, dim, body| {
        vec![Stmt::For {
            var,
            buf,
            dim,
            parallel: false,
            body,
        }]
    };
    if rb == 2 {
        body = wrap(j, 1, 1, body);
    }
    body = wrap(k, 0, ra - 1, body);
    if ra == 2 {
        body = wrap(i, 0, 0, body);
    }
    let mut full = vec![Stmt::Fill {
        buf: out_buf,
        kind: ReduceKind::Sum,
    }];
    full.extend(body);
    Kernel {
        name: "int_dot".into(),
        buffers,
        body: full,
        errors: Vec::new(),
    }
}

/// Whether a kernel computes the reduction `kind` from `input` values into `output`:
/// float sums, products, maxima and minima; integer (and bool-counting) sums, products,
/// maxima and minima in wrapping i64; all/any of bools.
fn reducible(kind: ReduceKind, input: DType, output: DType) -> bool {
    match kind {
        ReduceKind::All | ReduceKind::Any => input == DType::Bool && output == DType::Bool,
        ReduceKind::Sum | ReduceKind::Prod | ReduceKind::Max | ReduceKind::Min => {
            output != DType::Bool && (output.is_float() == input.is_float() || input == DType::Bool)
        }
    }
}

/// The dtype of a composite's (first) output.
fn body_dtype(c: &Composite) -> DType {
    match c.outputs.first() {
        Some(ScalarRef::Input(i)) => c.inputs[*i],
        Some(ScalarRef::Node(j)) => c.nodes[*j].dtype,
        Some(ScalarRef::Const(_, d)) => *d,
        None => DType::Float64,
    }
}

fn input_buffers(types: &[&TensorType]) -> Vec<Buffer> {
    types
        .iter()
        .enumerate()
        .map(|(k, t)| Buffer {
            name: format!("in{k}"),
            dtype: t.dtype,
            rank: t.ndim(),
            role: Role::Input,
        })
        .collect()
}

/// The input buffers and one output `out` after them; returns them and the output's index.
fn buffers_with_output(in_types: &[&TensorType], out: &TensorType) -> (Vec<Buffer>, usize) {
    let mut buffers = input_buffers(in_types);
    let index = buffers.len();
    buffers.push(Buffer {
        name: "out".into(),
        dtype: out.dtype,
        rank: out.ndim(),
        role: Role::Output,
    });
    (buffers, index)
}

/// Index of input `ty` at the loop variables `vars`: broadcast dimensions read index 0.
fn input_index(ty: &TensorType, vars: &[usize]) -> Vec<Index> {
    ty.broadcastable()
        .iter()
        .zip(vars)
        .map(|(b, v)| if *b { Index::Zero } else { Index::Var(*v) })
        .collect()
}

/// `Let`s computing every node of `c` at the given input indices; returns the expression
/// of each composite output.
fn composite_body(
    c: &Composite,
    in_types: &[&TensorType],
    vars: &[usize],
    body: &mut Vec<Stmt>,
) -> Vec<Expr> {
    let mut next_temp = 0;
    let mut input_temps = vec![None; c.inputs.len()];
    let mut node_temps = Vec::with_capacity(c.nodes.len());
    let mut resolve = |r: &ScalarRef, body: &mut Vec<Stmt>, node_temps: &[usize]| match r {
        ScalarRef::Input(i) => {
            let t = *input_temps[*i].get_or_insert_with(|| {
                let t = next_temp;
                next_temp += 1;
                body.push(Stmt::Let {
                    temp: t,
                    dtype: c.inputs[*i],
                    value: Expr::Load {
                        buf: *i,
                        index: input_index(in_types[*i], vars),
                    },
                });
                t
            });
            Expr::Temp(t)
        }
        ScalarRef::Node(j) => Expr::Temp(node_temps[*j]),
        ScalarRef::Const(l, d) => Expr::Const(*l, *d),
    };
    for n in &c.nodes {
        let args = n
            .args
            .iter()
            .map(|a| resolve(a, body, &node_temps))
            .collect();
        let t = c.inputs.len() + node_temps.len();
        body.push(Stmt::Let {
            temp: t,
            dtype: n.dtype,
            value: Expr::Apply {
                op: n.op,
                args,
                dtype: n.dtype,
            },
        });
        node_temps.push(t);
    }
    c.outputs
        .iter()
        .map(|o| resolve(o, body, &node_temps))
        .collect()
}

/// Wraps `body` in loops over dimensions `0..rank` of the buffers `extent_bufs[d]`.
fn nest(extent_bufs: &[usize], body: Vec<Stmt>) -> Vec<Stmt> {
    let mut stmts = body;
    for d in (0..extent_bufs.len()).rev() {
        stmts = vec![Stmt::For {
            var: d,
            buf: extent_bufs[d],
            dim: d,
            parallel: false,
            body: stmts,
        }];
    }
    stmts
}

fn elemwise_kernel(c: &Composite, in_types: &[&TensorType], out_types: &[&TensorType]) -> Kernel {
    let mut buffers = input_buffers(in_types);
    let first_out = buffers.len();
    for (k, t) in out_types.iter().enumerate() {
        buffers.push(Buffer {
            name: format!("out{k}"),
            dtype: t.dtype,
            rank: t.ndim(),
            role: Role::Output,
        });
    }
    let rank = out_types[0].ndim();
    let vars: Vec<usize> = (0..rank).collect();
    let mut inner = Vec::new();
    let outs = composite_body(c, in_types, &vars, &mut inner);
    for (k, value) in outs.into_iter().enumerate() {
        inner.push(Stmt::Store {
            buf: first_out + k,
            index: vars.iter().map(|v| Index::Var(*v)).collect(),
            value,
        });
    }
    Kernel {
        name: "elemwise".into(),
        buffers,
        body: nest(&vec![first_out; rank], inner),
        errors: Vec::new(),
    }
}

/// Adds a second output to a reduction kernel holding the per-element values it reduces,
/// stored where they are computed (loop variable d walks dimension d).
fn keep_values(k: &mut Kernel, ty: &TensorType) {
    let buf = k.buffers.len();
    k.buffers.push(Buffer {
        name: "values".into(),
        dtype: ty.dtype,
        rank: ty.ndim(),
        role: Role::Output,
    });
    fn visit(body: &mut Vec<Stmt>, buf: usize, rank: usize) {
        let mut i = 0;
        while i < body.len() {
            if let Stmt::For { body, .. } = &mut body[i] {
                visit(body, buf, rank);
            } else if let Stmt::Accumulate { value, .. } = &body[i] {
                let store = Stmt::Store {
                    buf,
                    index: (0..rank).map(Index::Var).collect(),
                    value: value.clone(),
                };
                body.insert(i, store);
                i += 1;
            }
            i += 1;
        }
    }
    visit(&mut k.body, buf, ty.ndim());
}

fn reduce_kernel(
    kind: ReduceKind,
    axes: &[usize],
    c: &Composite,
    in_types: &[&TensorType],
    out_type: &TensorType,
) -> Kernel {
    let (buffers, out) = buffers_with_output(in_types, out_type);
    let rank = in_types.first().map_or(0, |t| t.ndim());
    let vars: Vec<usize> = (0..rank).collect();
    // The extent of dimension d comes from an input that is not broadcast there.
    let extent_bufs: Vec<usize> = (0..rank)
        .map(|d| {
            in_types
                .iter()
                .position(|t| !t.broadcastable()[d])
                .unwrap_or(0)
        })
        .collect();
    let mut inner = Vec::new();
    let values = composite_body(c, in_types, &vars, &mut inner);
    let out_index = (0..rank)
        .filter(|d| !axes.contains(d))
        .map(Index::Var)
        .collect();
    inner.push(Stmt::Accumulate {
        buf: out,
        index: out_index,
        kind,
        value: values.into_iter().next().unwrap_or(Expr::Temp(0)),
    });
    let mut body = vec![Stmt::Fill { buf: out, kind }];
    body.extend(nest(&extent_bufs, inner));
    Kernel {
        name: format!("{}_reduce", format!("{kind:?}").to_lowercase()),
        buffers,
        body,
        errors: Vec::new(),
    }
}

//! Lowering of ops that carry a value along one axis: running sums and products
//! (reading back the previous output) and arg-reductions (reading back the best value
//! by the index they keep).

use super::*;

/// A running sum or product along `axis` (or over the flattened input, in memory order):
/// each output element is the input element combined with the previous output element
/// along the axis, read back (the row-major loops reach it first). Float64 and integer
/// or bool inputs (wrapping int64 output), the reference's exact arithmetic; float32
/// scans reach here as float64 ones between casts (`specialize::float32_scan_in_float64`).
pub(super) fn cumulative_kernel(
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
    // The element's position along the scanned axis (or in memory order), and the output
    // index of position `i`.
    let scanned = axis.map_or_else(|| flat_position(r), Expr::Var);
    let out_index = |i: Index| -> Vec<Index> {
        match axis {
            Some(a) => (0..r)
                .map(|d| if d == a { i } else { Index::Var(d) })
                .collect(),
            None => vec![i],
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
        let count = size_product(0..r);
        let size = Expr::Dim {
            buf: out_buf,
            dim: 0,
        };
        checks.push(Stmt::require_equal(size, count, 0));
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
        checks.push(Stmt::require_equal(size, expected, 0));
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
pub(super) fn arg_kernel(
    kind: ArgKind,
    axis: Option<usize>,
    x: &TensorType,
    out: &TensorType,
) -> Option<Kernel> {
    let r = x.ndim();
    if out.dtype != DType::Int64 || r == 0 || axis.is_some_and(|a| a >= r) {
        return None;
    }
    let (buffers, out_buf) = buffers_with_output(&[x], out);
    let (value, at, best_at, best) = (0, 1, 2, 3);
    // Along an axis: the output keeps the other axes, the position is the axis' loop
    // variable, the best value is read at the kept index along the axis. Flattened: one
    // output, the position in memory order, the best value read at that position
    // unflattened (temporaries 4.. hold its indices).
    let kept: Vec<Index> = match axis {
        Some(a) => (0..r).filter(|d| *d != a).map(Index::Var).collect(),
        None => Vec::new(),
    };
    let dim = |d: usize| Expr::Dim { buf: 0, dim: d };
    let int = |op, a, b| Expr::apply(op, vec![a, b], DType::Int64);
    let (position, mut unflatten, best_index): (Expr, Vec<Stmt>, Vec<Index>) = match axis {
        Some(a) => (
            Expr::Var(a),
            Vec::new(),
            (0..r)
                .map(|d| {
                    if d == a {
                        Index::Temp(best_at)
                    } else {
                        Index::Var(d)
                    }
                })
                .collect(),
        ),
        None => {
            let pos = flat_position(r);
            let lets = (0..r)
                .map(|d| {
                    let stride = size_product(d + 1..r);
                    Stmt::Let {
                        temp: 4 + d,
                        dtype: DType::Int64,
                        value: int(
                            ScalarOp::Mod,
                            int(ScalarOp::IntDiv, Expr::Temp(best_at), stride),
                            dim(d),
                        ),
                    }
                })
                .collect();
            (pos, lets, (0..r).map(|d| Index::Temp(4 + d)).collect())
        }
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
            value: position,
        },
        Stmt::If {
            cond: Expr::apply(
                ScalarOp::Eq,
                vec![Expr::Temp(at), Expr::int(0)],
                DType::Bool,
            ),
            then: vec![record(Expr::int(0))],
            otherwise: {
                let mut steps = vec![Stmt::Let {
                    temp: best_at,
                    dtype: DType::Int64,
                    value: Expr::Load {
                        buf: out_buf,
                        index: kept.clone(),
                    },
                }];
                steps.append(&mut unflatten);
                steps.push(Stmt::Let {
                    temp: best,
                    dtype: x.dtype,
                    value: Expr::Load {
                        buf: 0,
                        index: best_index,
                    },
                });
                steps.push(Stmt::If {
                    cond: better,
                    then: vec![record(Expr::Temp(at))],
                    otherwise: Vec::new(),
                });
                steps
            },
        },
    ];
    Some(Kernel {
        name: format!("{}_along", format!("{kind:?}").to_lowercase()),
        buffers,
        body: nest(&vec![0; r], body),
        errors: Vec::new(),
    })
}

/// Input 0's sizes along `dims` multiplied (1 for none), an int64 expression.
fn size_product(dims: std::ops::Range<usize>) -> Expr {
    dims.fold(Expr::int(1), |acc, d| {
        Expr::apply(
            ScalarOp::Mul,
            vec![acc, Expr::Dim { buf: 0, dim: d }],
            DType::Int64,
        )
    })
}

/// The position in memory order of the element at loop variables 0..r over input 0's
/// axes: Σ i_d · Π_{e>d} shape[e], as i_0, then (… · shape[d]) + i_d.
fn flat_position(r: usize) -> Expr {
    (1..r).fold(Expr::Var(0), |pos, d| {
        Expr::apply(
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
        )
    })
}

//! Lowering of indexing: gathers `x[idx]` and scatters `x[idx] = / += y` with one integer
//! index array on the first axis, every index wrapped if negative and checked before it
//! addresses memory (`checked_index`); and writes `x[slices] = / += y` with basic indices,
//! whose kernel only sees the region (the executor resolves it with the reference's rules
//! and hands the kernel a view of the output).

use super::*;

/// `out = x[idx]` for an integer index array on x's first axis (the output has idx's
/// shape, then x's other axes): every index is wrapped if negative and checked against
/// x's first size before it addresses memory; the rows are copied by an inner loop.
pub(super) fn take_kernel(in_types: &[&TensorType], out: &TensorType) -> Option<Kernel> {
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
pub(super) fn scatter_kernel(
    mode: IncMode,
    in_types: &[&TensorType],
    out: &TensorType,
) -> Option<Kernel> {
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

/// The kernel of `x[basic index] = y` (or `+= y`): its buffers are y and the region of
/// the output being written (a view the executor makes after copying x, or of x itself
/// when the call owns it: `jit::run_region_write`), and it writes y (cast to x's dtype,
/// aligned with the region's last axes, its axes of static size 1 broadcast) into every
/// element of the region, or adds it. The region has one axis per slice and one per
/// axis of x after the indexed ones.
pub(super) fn region_write_kernel(
    slots: &[IndexSlot],
    mode: IncMode,
    x: &TensorType,
    y: &TensorType,
) -> Option<Kernel> {
    let slices = slots
        .iter()
        .filter(|s| matches!(s, IndexSlot::Slice { .. }))
        .count();
    let rank = slices + x.ndim().checked_sub(slots.len())?;
    let adds_bools = mode == IncMode::Inc && x.dtype == DType::Bool;
    if y.ndim() > rank || adds_bools {
        return None;
    }
    let buffers = vec![
        Buffer {
            name: "value".into(),
            dtype: y.dtype,
            rank: y.ndim(),
            role: Role::Input,
        },
        Buffer {
            name: "region".into(),
            dtype: x.dtype,
            rank,
            role: Role::Output,
        },
    ];
    let (value_buf, region_buf) = (0, 1);
    let all: Vec<Index> = (0..rank).map(Index::Var).collect();
    let offset = rank - y.ndim();
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
    let value = Expr::apply(
        ScalarOp::Cast(x.dtype),
        vec![Expr::Load {
            buf: value_buf,
            index: y_index,
        }],
        x.dtype,
    );
    let value = match mode {
        IncMode::Set => value,
        IncMode::Inc => Expr::apply(
            ScalarOp::Add,
            vec![
                Expr::Load {
                    buf: region_buf,
                    index: all.clone(),
                },
                value,
            ],
            x.dtype,
        ),
    };
    let body = nest(
        &vec![region_buf; rank],
        vec![Stmt::Store {
            buf: region_buf,
            index: all,
            value,
        }],
    );
    Some(Kernel {
        name: format!("{}_region", format!("{mode:?}").to_lowercase()),
        buffers,
        body,
        errors: Vec::new(),
    })
}

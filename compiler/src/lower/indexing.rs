//! Lowering of indexing: gathers `x[:, …, i0, i1, …]` and scatters `x[:, …, i0, i1, …] =
//! / += y` with adjacent integer index arrays (broadcast together) on any axis (full
//! slices elsewhere), every index wrapped if negative and checked before it addresses
//! memory (`checked_index`); and writes `x[slices] = / += y` with basic indices, whose
//! kernel only sees the region (the executor resolves it with the reference's rules and
//! hands the kernel a view of the output).

use super::*;

/// The axes an advanced index selects with integer arrays, when they are adjacent and
/// every other entry is a full slice (`x[i]`, `x[:, i]`, `x[i, j]`, `x[:, i, j, :]`): the
/// first such axis and how many.
pub(crate) fn array_axes(slots: &[AdvancedSlot], ndim: usize) -> Option<(usize, usize)> {
    let first = slots.iter().position(|s| *s == AdvancedSlot::Array)?;
    let count = slots[first..]
        .iter()
        .take_while(|s| **s == AdvancedSlot::Array)
        .count();
    let others_full = slots.iter().enumerate().all(|(k, s)| {
        (first..first + count).contains(&k) || *s == AdvancedSlot::Basic(IndexSlot::FULL)
    });
    (others_full && first + count <= ndim).then_some((first, count))
}

/// What a write stores at `buf[index]`: the value (set), or the element plus it (inc).
fn written(mode: IncMode, value: Expr, buf: usize, index: &[Index], dtype: DType) -> Expr {
    match mode {
        IncMode::Set => value,
        IncMode::Inc => Expr::apply(
            ScalarOp::Add,
            vec![
                Expr::Load {
                    buf,
                    index: index.to_vec(),
                },
                value,
            ],
            dtype,
        ),
    }
}

/// Loops `for var in 0..buf.shape[dim]` around `body`, outermost first.
fn loops(specs: &[(usize, usize, usize)], body: Vec<Stmt>) -> Vec<Stmt> {
    specs.iter().rev().fold(body, |body, (var, buf, dim)| {
        vec![Stmt::For {
            var: *var,
            buf: *buf,
            dim: *dim,
            parallel: false,
            body,
        }]
    })
}

/// `out = x[:, …, i0, i1, …, :]` for integer index arrays on x's adjacent axes `axis`,
/// `axis + 1`, … (full slices elsewhere): the output has x's axes before them, the arrays'
/// common shape (each aligned to its right, broadcast along axes of static size 1), then
/// x's axes after them. Every index is wrapped if negative and checked against x's size
/// on its axis before it addresses memory; the rest of each selected slice is copied by
/// inner loops.
pub(super) fn take_kernel(
    axis: usize,
    arrays: usize,
    in_types: &[&TensorType],
    out: &TensorType,
) -> Option<Kernel> {
    let (x, idx) = (in_types[0], &in_types[1..]);
    let ints = idx.len() == arrays && idx.iter().all(|t| t.dtype.is_int());
    if !ints || x.ndim() < axis + arrays || x.dtype != out.dtype {
        return None;
    }
    let k = idx.iter().map(|t| t.ndim()).max().unwrap_or(0);
    let rank = x.ndim() - arrays + k;
    if out.ndim() != rank {
        return None;
    }
    let (buffers, out_buf) = buffers_with_output(in_types, out);
    let mut body = Vec::new();
    let mut errors = Vec::new();
    let mut x_index: Vec<Index> = (0..axis).map(Index::Var).collect();
    for (j, t) in idx.iter().enumerate() {
        let at = array_index(t, axis, k);
        let (raw, wrapped) = (2 * j, 2 * j + 1);
        body.extend(checked_index(
            1 + j,
            at,
            0,
            axis + j,
            (raw, wrapped),
            errors.len(),
        ));
        errors.push(index_error(1 + j, axis + j));
        x_index.push(Index::Temp(wrapped));
    }
    x_index.extend((axis + k..rank).map(Index::Var));
    let copy = Stmt::Store {
        buf: out_buf,
        index: (0..rank).map(Index::Var).collect(),
        value: Expr::Load {
            buf: 0,
            index: x_index,
        },
    };
    let after: Vec<_> = (axis + k..rank).map(|d| (d, out_buf, d)).collect();
    body.extend(loops(&after, vec![copy]));
    let outer: Vec<_> = (0..axis + k).map(|d| (d, out_buf, d)).collect();
    Some(Kernel {
        name: "take".into(),
        buffers,
        body: loops(&outer, body),
        errors,
    })
}

/// The message of a gather's or scatter's index out of range.
fn index_error(input: usize, axis: usize) -> String {
    format!(
        "index {{0}} (in index array input {input}) is out of range for axis {axis} of size {{1}}"
    )
}

/// Statements reading the index `idx[at]` (buffer `idx`) as temp `raw`, wrapping it if
/// negative into temp `wrapped`, and failing with `error` unless `wrapped` addresses a
/// position of buffer `x` along `axis`.
fn checked_index(
    idx: usize,
    at: Vec<Index>,
    x: usize,
    axis: usize,
    (raw, wrapped): (usize, usize),
    error: usize,
) -> Vec<Stmt> {
    let size = Expr::Dim { buf: x, dim: axis };
    let out_of_range = |cond: Expr| Stmt::If {
        cond,
        then: vec![Stmt::Fail {
            error,
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
                    index: at,
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

/// The index of a value of type `t` within a shape of `k` axes walked by variables
/// `first..first + k` (an index array within the arrays' common shape, a written value
/// within its region): aligned to the right, its axes of static size 1 at index 0 (they
/// broadcast).
fn array_index(t: &TensorType, first: usize, k: usize) -> Vec<Index> {
    let offset = first + k - t.ndim();
    t.broadcastable()
        .iter()
        .enumerate()
        .map(|(d, b)| {
            if *b {
                Index::Zero
            } else {
                Index::Var(offset + d)
            }
        })
        .collect()
}

/// `out = x` with `out[:, …, i0, i1, …] = y` (or `+= y`) for integer index arrays on x's
/// adjacent axes from `axis` (full slices elsewhere): x copied, then the region (x's axes
/// before them, the arrays' common shape, x's axes after them) visited in order, every
/// index wrapped and checked before it addresses a slice (repeated positions: the last
/// write wins, increments accumulate, as in the reference). y aligns with the region's
/// last axes; its axes of static size 1 broadcast.
pub(super) fn scatter_kernel(
    mode: IncMode,
    axis: usize,
    arrays: usize,
    in_types: &[&TensorType],
    out: &TensorType,
) -> Option<Kernel> {
    let (x, y, idx) = (in_types[0], in_types[1], &in_types[2..]);
    let ok = idx.len() == arrays
        && idx.iter().all(|t| t.dtype.is_int())
        && x.ndim() >= axis + arrays
        && x.dtype == out.dtype
        && y.dtype == x.dtype
        && x.dtype != DType::Bool;
    let k = idx.iter().map(|t| t.ndim()).max().unwrap_or(0);
    if !ok {
        return None;
    }
    let region = x.ndim() - arrays + k;
    if y.ndim() > region {
        return None;
    }
    let (buffers, out_buf) = buffers_with_output(in_types, out);
    // out = x.
    let r = x.ndim();
    let all: Vec<Index> = (0..r).map(Index::Var).collect();
    let copy = nest(
        &vec![out_buf; r],
        vec![Stmt::Store {
            buf: out_buf,
            index: all.clone(),
            value: Expr::Load { buf: 0, index: all },
        }],
    );
    // The region: variables 0..axis over out's axes before the arrays, axis..axis+k over
    // the arrays' common shape, the rest over out's axes after them.
    let mut visit = Vec::new();
    let mut errors = Vec::new();
    let mut target: Vec<Index> = (0..axis).map(Index::Var).collect();
    for (j, t) in idx.iter().enumerate() {
        let (raw, wrapped) = (2 * j, 2 * j + 1);
        let at = array_index(t, axis, k);
        visit.extend(checked_index(
            2 + j,
            at,
            0,
            axis + j,
            (raw, wrapped),
            errors.len(),
        ));
        errors.push(index_error(2 + j, axis + j));
        target.push(Index::Temp(wrapped));
    }
    target.extend((axis + k..region).map(Index::Var));
    let value = Expr::Load {
        buf: 1,
        index: array_index(y, 0, region),
    };
    let store = Stmt::Store {
        buf: out_buf,
        value: written(mode, value, out_buf, &target, out.dtype),
        index: target,
    };
    let after: Vec<_> = (axis + k..region)
        .map(|v| (v, out_buf, v - k + arrays))
        .collect();
    visit.extend(loops(&after, vec![store]));
    // Each axis of the common shape runs over an array that has it (one not broadcast
    // there if any: the shape checks compare the others with it).
    let common = (0..k).map(|d| {
        let has = |t: &&&TensorType| d + t.ndim() >= k;
        let wide = idx
            .iter()
            .position(|t| has(&t) && !t.broadcastable()[d + t.ndim() - k]);
        let j = wide
            .or_else(|| idx.iter().position(|t| has(&t)))
            .unwrap_or(0);
        (axis + d, 2 + j, d + idx[j].ndim() - k)
    });
    let outer: Vec<_> = (0..axis).map(|v| (v, out_buf, v)).chain(common).collect();
    let mut body = copy;
    body.extend(loops(&outer, visit));
    Some(Kernel {
        name: format!("{}_scatter", format!("{mode:?}").to_lowercase()),
        buffers,
        body,
        errors,
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
    let y_index = array_index(y, 0, rank);
    let value = Expr::apply(
        ScalarOp::Cast(x.dtype),
        vec![Expr::Load {
            buf: value_buf,
            index: y_index,
        }],
        x.dtype,
    );
    let value = written(mode, value, region_buf, &all, x.dtype);
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

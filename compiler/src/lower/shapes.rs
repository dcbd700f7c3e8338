//! Lowering of shape-making ops that compute their elements: concatenation (a copy nest
//! per piece), Alloc (a broadcast copy) and Arange (start + i·step).

use super::*;

/// `Alloc(value, sizes…)`: the value broadcast into the requested shape (its axes align
/// with the output's last ones; those of static size 1 are read at index 0). The sizes
/// are read by the executor, which checks them and the value with the reference's rule.
pub(super) fn alloc_kernel(in_types: &[&TensorType], out: &TensorType) -> Option<Kernel> {
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
pub(super) fn arange_kernel(
    dtype: DType,
    in_types: &[&TensorType],
    out: &TensorType,
) -> Option<Kernel> {
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
pub(super) fn join_kernel(
    axis: usize,
    in_types: &[&TensorType],
    out: &TensorType,
) -> Option<Kernel> {
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
    let mut body = vec![Stmt::require_equal(size, total, 0)];
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

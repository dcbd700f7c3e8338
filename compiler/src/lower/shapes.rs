//! Lowering of shape ops: concatenation (a copy nest per piece), Alloc (a broadcast
//! copy), Arange (start + i·step), Shape and MakeVector (selects by position), the checks
//! of SpecifyShape and CheckAndRaise (kernels without outputs), and the row-major copy
//! a Reshape of non-contiguous data needs.

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

/// A vector of `items.len()` elements whose element i is `items[i]` (loop variable 0
/// walks the output: a chain of selects by i, so every store is inside the output).
fn vector_of(name: &str, items: Vec<Expr>, in_types: &[&TensorType], out: &TensorType) -> Kernel {
    let (buffers, out_buf) = buffers_with_output(in_types, out);
    let dtype = out.dtype;
    let mut items = items.into_iter().enumerate().rev();
    let body = match items.next() {
        None => Vec::new(),
        Some((_, last)) => {
            let value = items.fold(last, |rest, (i, item)| {
                let here = Expr::apply(
                    ScalarOp::Eq,
                    vec![Expr::Var(0), Expr::int(i as i64)],
                    DType::Bool,
                );
                Expr::apply(ScalarOp::Switch, vec![here, item, rest], dtype)
            });
            nest(
                &[out_buf],
                vec![Stmt::Store {
                    buf: out_buf,
                    index: vec![Index::Var(0)],
                    value,
                }],
            )
        }
    };
    Kernel {
        name: name.into(),
        buffers,
        body,
        errors: Vec::new(),
    }
}

/// `Shape(x)`: the int64 vector of x's sizes, read from its shape symbols (the executor
/// sizes the output by x's rank).
pub(super) fn shape_kernel(x: &TensorType, out: &TensorType) -> Option<Kernel> {
    if out.dtype != DType::Int64 || out.ndim() != 1 {
        return None;
    }
    let sizes = (0..x.ndim()).map(|dim| Expr::Dim { buf: 0, dim }).collect();
    Some(vector_of("shape", sizes, &[x], out))
}

/// `MakeVector(items…)`: each 0-d item cast to the vector's dtype (the executor sizes the
/// output by the item count).
pub(super) fn make_vector_kernel(in_types: &[&TensorType], out: &TensorType) -> Option<Kernel> {
    if out.ndim() != 1 || in_types.iter().any(|t| t.ndim() != 0) {
        return None;
    }
    let items = (0..in_types.len())
        .map(|buf| {
            let item = Expr::Load { buf, index: vec![] };
            Expr::apply(ScalarOp::Cast(out.dtype), vec![item], out.dtype)
        })
        .collect();
    Some(vector_of("make_vector", items, in_types, out))
}

/// `SpecifyShape(x)`: checks every static size of the spec against x's (the reference's
/// message); no output — the executor passes x on, so nothing is copied.
pub(super) fn specify_shape_kernel(spec: &[Option<usize>], x: &TensorType) -> Option<Kernel> {
    if x.ndim() != spec.len() {
        return None;
    }
    let mut errors = Vec::new();
    let mut body = Vec::new();
    for (dim, size) in spec.iter().enumerate() {
        let Some(size) = size else { continue };
        let actual = Expr::Dim { buf: 0, dim };
        let wrong = Expr::apply(
            ScalarOp::Neq,
            vec![actual.clone(), Expr::int(*size as i64)],
            DType::Bool,
        );
        body.push(Stmt::If {
            cond: wrong,
            then: vec![Stmt::Fail {
                error: errors.len(),
                values: vec![actual],
            }],
            otherwise: Vec::new(),
        });
        errors.push(format!(
            "dimension {dim} of input 0 has size {{0}}, but the graph requires {size}"
        ));
    }
    Some(Kernel {
        name: "specify_shape".into(),
        buffers: input_buffers(&[x]),
        body,
        errors,
    })
}

/// `CheckAndRaise(x, conditions…)`: fails with `message` at the first false element of a
/// condition (boolean arrays of any shape, visited in order); no output — the executor
/// passes x on.
pub(super) fn check_kernel(message: &str, in_types: &[&TensorType]) -> Option<Kernel> {
    let conditions = in_types.get(1..)?;
    if conditions.iter().any(|t| t.dtype != DType::Bool) {
        return None;
    }
    let mut body = Vec::new();
    for (j, t) in conditions.iter().enumerate() {
        let buf = 1 + j;
        let element = Expr::Load {
            buf,
            index: (0..t.ndim()).map(Index::Var).collect(),
        };
        let false_here = Stmt::If {
            cond: Expr::apply(ScalarOp::Not, vec![element], DType::Bool),
            then: vec![Stmt::Fail {
                error: 0,
                values: Vec::new(),
            }],
            otherwise: Vec::new(),
        };
        body.extend(nest(&vec![buf; t.ndim()], vec![false_here]));
    }
    Some(Kernel {
        name: "check".into(),
        buffers: input_buffers(in_types),
        body,
        errors: vec![message.to_string()],
    })
}

/// `Reshape(x, shape)` of data that is not contiguous: x copied into a row-major buffer
/// of its own shape (any strides read), which the executor then reshapes as a view
/// (`jit::run_reshape`); contiguous data is reshaped without any copy or code.
pub(super) fn reshape_copy_kernel(x: &TensorType) -> Kernel {
    let out = TensorType::new(x.dtype, x.shape.clone());
    let (buffers, out_buf) = buffers_with_output(&[x], &out);
    let all: Vec<Index> = (0..x.ndim()).map(Index::Var).collect();
    let body = nest(
        &vec![out_buf; x.ndim()],
        vec![Stmt::Store {
            buf: out_buf,
            index: all.clone(),
            value: Expr::Load { buf: 0, index: all },
        }],
    );
    Kernel {
        name: "reshape_copy".into(),
        buffers,
        body,
        errors: Vec::new(),
    }
}

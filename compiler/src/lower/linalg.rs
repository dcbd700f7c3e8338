//! Lowering of `Dot`: floats through a checked call of the runtime's gemm, integers as
//! loops of wrapping int64 sums of products, bools as loops of any of ands.

use super::*;

/// `out = a · b` through the runtime's gemm, for 1-d/2-d operands of one float dtype:
/// checks that the contracted sizes agree and that the output has the product's shape,
/// then calls the support function.
pub(super) fn dot_kernel(in_types: &[&TensorType], out: &TensorType) -> Option<Kernel> {
    let dtype = out.dtype;
    let (ra, rb) = (in_types[0].ndim(), in_types[1].ndim());
    let same = in_types.iter().all(|t| t.dtype == dtype);
    if !same || !(1..=2).contains(&ra) || !(1..=2).contains(&rb) {
        return None;
    }
    if dtype.is_int() || dtype == DType::Bool {
        return Some(int_dot_kernel(ra, rb, in_types, out));
    }
    if !matches!(dtype, DType::Float64 | DType::Float32) {
        return None;
    }
    let (buffers, _) = buffers_with_output(in_types, out);
    let mut errors = Vec::new();
    let mut body = Vec::new();
    let mut require = |size: Expr, expected: Expr, message: String, body: &mut Vec<Stmt>| {
        body.push(Stmt::require_equal(size, expected, errors.len()));
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

/// `out = a · b` for integer (or bool) operands of one dtype, as the reference computes it: sums of
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
    // Bools: any of ands (the product of bools is their and).
    let kind = match out.dtype {
        DType::Bool => ReduceKind::Any,
        _ => ReduceKind::Sum,
    };
    let mut body = vec![Stmt::Accumulate {
        buf: out_buf,
        index: out_index,
        kind,
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
    let mut full = vec![Stmt::Fill { buf: out_buf, kind }];
    full.extend(body);
    Kernel {
        name: "int_dot".into(),
        buffers,
        body: full,
        errors: Vec::new(),
    }
}

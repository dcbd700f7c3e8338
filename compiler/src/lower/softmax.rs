//! Lowering of Softmax along the last axis: a checked call of the runtime's row softmax
//! (`tensorlift_runtime::softmax`), which normalises each row while it is in cache — its
//! maximum, exp(x − max) into the output at the CPU's widest vectors, the sum, a scale —
//! so the input is read from memory once and the output written once. (A softmax along
//! another axis is written out as max, exp, sum and division by the rewrites, which run
//! along rows.)

use super::*;

pub(super) fn softmax_kernel(axis: usize, x: &TensorType, out: &TensorType) -> Option<Kernel> {
    let r = x.ndim();
    let float = matches!(x.dtype, DType::Float64 | DType::Float32);
    if r == 0 || axis + 1 != r || !float || out.dtype != x.dtype {
        return None;
    }
    let (buffers, out_buf) = buffers_with_output(&[x], out);
    let mut errors = Vec::new();
    let mut body = Vec::new();
    for d in 0..r {
        body.push(Stmt::require_equal(
            Expr::Dim {
                buf: out_buf,
                dim: d,
            },
            Expr::Dim { buf: 0, dim: d },
            errors.len(),
        ));
        errors.push(format!(
            "output 0 has {{0}} elements along axis {d}, expected {{1}} (the size of input \
             0's axis {d})"
        ));
    }
    body.push(Stmt::Call {
        func: SupportCall::Softmax,
        bufs: vec![0, out_buf],
        error: errors.len(),
    });
    errors.push("the softmax rows do not match, or memory for a row copy was refused".into());
    Some(Kernel {
        name: "softmax".into(),
        buffers,
        body,
        errors,
    })
}

//! Specialize: replace general ops by cheaper special cases — small constant powers by
//! multiplications, square roots and reciprocals; division by a constant by multiplication;
//! `x * -1` by negation, `x * x` by a square, division by a broadcast value by
//! multiplication with its reciprocal; a reduction of a DimShuffle by a reduction of its
//! input, a sum of a scaled value by a scaled sum, and a logsumexp or softmax that does not
//! run along the last axis by its written-out form (max, exp, sum: the one-op forms run
//! row by row in cache; across rows, the written-out passes are faster), and a float32
//! running sum or product by the float64 one it is defined as, cast back.

use tensorlift_ir::ops::{DimShuffle, ReduceKind};
use tensorlift_ir::{DType, FunctionGraph, Literal, NodeId, Op, ScalarOp, VarId};

use super::pattern::{
    elemwise, elemwise_args, filled_like, same_type, scalar_const, single_client, uniform_value,
};
use super::{Expr, Rule};

pub const RULES: [Rule; 11] = rules!["specialize";
    pow_specialize,
    div_by_constant,
    div_by_broadcast,
    mul_neg_one,
    mul_self_to_sqr,
    reduce_of_dimshuffle,
    sum_of_scaled,
    logsumexp_across_rows,
    softmax_across_rows,
    float32_scan_in_float64,
    float32_sum_in_float64,
];

/// x ** c for c in {0, ±0.5, ±1, 2, 3, 4, -2} → sqr/sqrt/reciprocal/multiplications (when x
/// already has the output dtype, so no cast is lost).
fn pow_specialize(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let [x, c] = e.inputs[..] else { return None };
    if e.op != Op::Elemwise(ScalarOp::Pow) || !same_type(fg, x, e.outputs[0]) {
        return None;
    }
    let ty = &fg.var(x).ty;
    let un = |op, a| elemwise(op, vec![a]);
    let v = Expr::Var(x);
    let out = match uniform_value(fg, c)? {
        0.0 => filled_like(fg, x, Literal::Int(1), ty.dtype),
        1.0 => v,
        2.0 => un(ScalarOp::Sqr, v),
        3.0 => elemwise(ScalarOp::Mul, vec![un(ScalarOp::Sqr, v.clone()), v]),
        4.0 => un(ScalarOp::Sqr, un(ScalarOp::Sqr, v)),
        0.5 if ty.dtype.is_float() => un(ScalarOp::Sqrt, v),
        -0.5 if ty.dtype.is_float() => un(ScalarOp::Reciprocal, un(ScalarOp::Sqrt, v)),
        -1.0 if ty.dtype.is_float() => un(ScalarOp::Reciprocal, v),
        -2.0 if ty.dtype.is_float() => un(ScalarOp::Reciprocal, un(ScalarOp::Sqr, v)),
        _ => return None,
    };
    Some(vec![out])
}

/// x / c → x * (1/c) for a finite, non-zero float constant c (exact when c is a power of
/// two, otherwise within one rounding of the quotient, as in PyTensor and XLA).
fn div_by_constant(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let [x, c] = e.inputs[..] else { return None };
    let out_ty = &fg.var(e.outputs[0]).ty;
    let value = uniform_value(fg, c)?;
    let c_ty = &fg.var(c).ty;
    let ok = e.op == Op::Elemwise(ScalarOp::TrueDiv)
        && out_ty.dtype.is_float()
        && c_ty.dtype == out_ty.dtype
        && c_ty.shape.iter().all(|s| *s == Some(1))
        && value.is_finite()
        && value != 0.0;
    ok.then(|| {
        vec![elemwise(
            ScalarOp::Mul,
            vec![
                Expr::Var(x),
                scalar_const(Literal::Float(1.0 / value), c_ty.dtype, c_ty.ndim()),
            ],
        )]
    })
}

/// x / y → x * reciprocal(y) for floats when y is broadcast along dimensions where x is
/// not (a row of sums dividing a matrix): one division per element of y instead of one per
/// element of the result, within one rounding of the quotient (like `div_by_constant`).
fn div_by_broadcast(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let [x, y] = e.inputs[..] else { return None };
    let out = &fg.var(e.outputs[0]).ty;
    let (yb, ob) = (fg.var(y).ty.broadcastable(), out.broadcastable());
    let smaller = yb.iter().zip(&ob).any(|(y, o)| *y && !*o);
    let ok = e.op == Op::Elemwise(ScalarOp::TrueDiv)
        && out.dtype.is_float()
        && fg.var(y).ty.dtype == out.dtype
        && fg.var(x).ty.dtype == out.dtype
        && smaller
        && uniform_value(fg, y).is_none();
    ok.then(|| {
        let r = elemwise(ScalarOp::Reciprocal, vec![Expr::Var(y)]);
        vec![elemwise(ScalarOp::Mul, vec![Expr::Var(x), r])]
    })
}

/// x * -1 → -x.
fn mul_neg_one(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let [a, b] = e.inputs[..] else { return None };
    if e.op != Op::Elemwise(ScalarOp::Mul) {
        return None;
    }
    let (x, c) = if uniform_value(fg, b) == Some(-1.0) {
        (a, b)
    } else {
        (b, a)
    };
    (uniform_value(fg, c) == Some(-1.0)
        && same_type(fg, x, e.outputs[0])
        && !fg.var(x).ty.dtype.is_bool())
    .then(|| vec![elemwise(ScalarOp::Neg, vec![Expr::Var(x)])])
}

/// x * x → sqr(x).
fn mul_self_to_sqr(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    match e.inputs[..] {
        [a, b]
            if a == b && e.op == Op::Elemwise(ScalarOp::Mul) && same_type(fg, a, e.outputs[0]) =>
        {
            Some(vec![elemwise(ScalarOp::Sqr, vec![Expr::Var(a)])])
        }
        _ => None,
    }
}

/// sum(x * c) → sum(x) * c for a broadcast float constant c: one multiplication per output
/// element instead of one per input element.
fn sum_of_scaled(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let Op::Reduce {
        kind: ReduceKind::Sum,
        axes,
    } = &e.op
    else {
        return None;
    };
    let [a, b] = elemwise_args(fg, e.inputs[0], ScalarOp::Mul)?[..] else {
        return None;
    };
    let is_scale = |v| {
        let ty = &fg.var(v).ty;
        uniform_value(fg, v).is_some()
            && ty.dtype.is_float()
            && ty.shape.iter().all(|s| *s == Some(1))
    };
    let (x, c) = if is_scale(b) {
        (a, b)
    } else if is_scale(a) {
        (b, a)
    } else {
        return None;
    };
    let out = e.outputs[0];
    if !same_type(fg, x, e.inputs[0]) || !single_client(fg, e.inputs[0]) {
        return None;
    }
    let value = uniform_value(fg, c)?;
    let c_ty = &fg.var(c).ty;
    let sum = Expr::apply(
        Op::Reduce {
            kind: ReduceKind::Sum,
            axes: axes.clone(),
        },
        vec![Expr::Var(x)],
    );
    let scale = scalar_const(Literal::Float(value), c_ty.dtype, fg.var(out).ty.ndim());
    Some(vec![elemwise(ScalarOp::Mul, vec![sum, scale])])
}

/// reduce(DimShuffle(x), axes) → DimShuffle(reduce(x, axes')): reduced new axes (size 1)
/// vanish, the rest map to x's dimensions, so the reduction reads x in its own layout.
fn reduce_of_dimshuffle(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let Op::Reduce { kind, axes } = &e.op else {
        return None;
    };
    let (p, _) = super::pattern::producer(fg, e.inputs[0])?;
    let Op::DimShuffle(ds) = &p.op else {
        return None;
    };
    let mut inner_axes: Vec<usize> = axes.iter().filter_map(|a| ds.new_order[*a]).collect();
    inner_axes.sort_unstable();
    let remaining: Vec<usize> = (0..ds.input_ndim)
        .filter(|d| !inner_axes.contains(d))
        .collect();
    let mut new_order = Vec::new();
    for (pos, entry) in ds.new_order.iter().enumerate() {
        if axes.contains(&pos) {
            continue;
        }
        new_order.push(match entry {
            None => None,
            Some(j) => Some(remaining.iter().position(|r| r == j)?),
        });
    }
    let reduced = Expr::apply(
        Op::Reduce {
            kind: *kind,
            axes: inner_axes,
        },
        vec![Expr::Var(p.inputs[0])],
    );
    if new_order.iter().enumerate().all(|(i, o)| *o == Some(i))
        && new_order.len() == remaining.len()
    {
        return Some(vec![reduced]);
    }
    let shuffle = DimShuffle {
        input_ndim: remaining.len(),
        new_order,
    };
    Some(vec![Expr::apply(Op::DimShuffle(shuffle), vec![reduced])])
}

/// logsumexp over axes without the last → m + log(sum(exp(x - m))) with m = max(x) (0
/// where m is infinite): the same value, in two passes that each run along rows.
fn logsumexp_across_rows(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let Op::Reduce {
        kind: ReduceKind::LogSumExp,
        axes,
    } = &e.op
    else {
        return None;
    };
    let x = e.inputs[0];
    let ndim = fg.var(x).ty.ndim();
    if ndim == 0 || axes.contains(&(ndim - 1)) {
        return None;
    }
    if !axes_known_non_empty(fg, x, axes) {
        // The written-out maximum would fail on an empty axis, where logsumexp is -inf:
        // the kernel folds such a logsumexp element by element instead.
        return None;
    }
    Some(vec![max_shifted_logsumexp(x, axes.clone(), fg)])
}

/// True when every one of `axes` of x has a static size of at least 1.
fn axes_known_non_empty(fg: &FunctionGraph, x: VarId, axes: &[usize]) -> bool {
    let shape = &fg.var(x).ty.shape;
    axes.iter()
        .all(|a| matches!(shape.get(*a), Some(Some(n)) if *n > 0))
}

/// x with `axes` moved to the end (in order), and the order that moves them back.
fn axes_moved_last(x: VarId, axes: &[usize], ndim: usize) -> (Expr, Vec<Option<usize>>) {
    let order: Vec<usize> = (0..ndim)
        .filter(|d| !axes.contains(d))
        .chain(axes.iter().copied())
        .collect();
    let mut back = vec![None; ndim];
    for (pos, d) in order.iter().enumerate() {
        back[*d] = Some(pos);
    }
    let shuffle = DimShuffle {
        input_ndim: ndim,
        new_order: order.into_iter().map(Some).collect(),
    };
    (
        Expr::apply(Op::DimShuffle(shuffle), vec![Expr::Var(x)]),
        back,
    )
}

/// logsumexp(x) over `axes` written out: m + log(sum(exp(x - m))) with m = max(x) (0
/// where m is infinite).
fn max_shifted_logsumexp(x: VarId, axes: Vec<usize>, fg: &FunctionGraph) -> Expr {
    let ty = &fg.var(x).ty;
    let (dtype, ndim) = (ty.dtype, ty.ndim());
    let reduced_ndim = ndim - axes.len();
    let max = Expr::apply(
        Op::Reduce {
            kind: ReduceKind::Max,
            axes: axes.clone(),
        },
        vec![Expr::Var(x)],
    );
    let is_inf = elemwise(ScalarOp::IsInf, vec![max.clone()]);
    let shift = elemwise(
        ScalarOp::Switch,
        vec![is_inf, scalar_const(0.0, dtype, reduced_ndim), max],
    );
    let shift_kept = Expr::apply(
        Op::DimShuffle(DimShuffle::keep_dims(&axes, ndim)),
        vec![shift.clone()],
    );
    let shifted = elemwise(ScalarOp::Sub, vec![Expr::Var(x), shift_kept]);
    let summed = Expr::apply(
        Op::Reduce {
            kind: ReduceKind::Sum,
            axes,
        },
        vec![elemwise(ScalarOp::Exp, vec![shifted])],
    );
    elemwise(
        ScalarOp::Add,
        vec![elemwise(ScalarOp::Log, vec![summed]), shift],
    )
}

/// softmax along an axis but the last → exp(x - m) / sum(exp(x - m)) with m = max(x)
/// along the axis: the same value, in passes that each run along rows.
fn softmax_across_rows(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let Op::Softmax { axis } = e.op else {
        return None;
    };
    let x = e.inputs[0];
    let ty = &fg.var(x).ty;
    if axis + 1 == ty.ndim() || !ty.dtype.is_float() {
        return None;
    }
    let ndim = ty.ndim();
    if !axes_known_non_empty(fg, x, &[axis]) {
        // The written-out maximum would fail on an empty axis (whose softmax is empty):
        // a softmax along the last axis of x with the axis moved there, moved back.
        let (moved, back) = axes_moved_last(x, &[axis], ndim);
        let softmax = Expr::apply(Op::Softmax { axis: ndim - 1 }, vec![moved]);
        let shuffle = DimShuffle {
            input_ndim: ndim,
            new_order: back,
        };
        return Some(vec![Expr::apply(Op::DimShuffle(shuffle), vec![softmax])]);
    }
    let keep = |reduced| {
        Expr::apply(
            Op::DimShuffle(DimShuffle::keep_dims(&[axis], ty.ndim())),
            vec![reduced],
        )
    };
    let max = Expr::apply(
        Op::Reduce {
            kind: ReduceKind::Max,
            axes: vec![axis],
        },
        vec![Expr::Var(x)],
    );
    let shifted = elemwise(ScalarOp::Sub, vec![Expr::Var(x), keep(max)]);
    let exps = elemwise(ScalarOp::Exp, vec![shifted]);
    let sum = Expr::apply(
        Op::Reduce {
            kind: ReduceKind::Sum,
            axes: vec![axis],
        },
        vec![exps.clone()],
    );
    Some(vec![elemwise(ScalarOp::TrueDiv, vec![exps, keep(sum)])])
}

/// cumsum/cumprod of float32 x → cast(cumsum(cast(x, float64)), float32): a float32 scan
/// accumulates in f64 and rounds each result once (the reference's definition), which
/// this form spells out — and which the JIT then runs (its float64 scan and the casts).
fn float32_scan_in_float64(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let Op::Cumulative { kind, axis } = e.op else {
        return None;
    };
    let x = e.inputs[0];
    if fg.var(x).ty.dtype != DType::Float32 {
        return None;
    }
    let wide = elemwise(ScalarOp::Cast(DType::Float64), vec![Expr::Var(x)]);
    let scan = Expr::apply(Op::Cumulative { kind, axis }, vec![wide]);
    Some(vec![elemwise(ScalarOp::Cast(DType::Float32), vec![scan])])
}

/// sum/prod of float32 x over axes other than only the last → cast(sum(cast(x, float64)),
/// float32): the reference sums float32 in f64 and rounds once; a kernel reducing over an
/// outer axis accumulates into its output row by row, which in float32 would round at
/// every step (cancellation then loses digits). Along the last axis alone each output is
/// one row summed in f64 registers and rounded once, so that form stays as it is.
fn float32_sum_in_float64(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let Op::Reduce { kind, ref axes } = e.op else {
        return None;
    };
    let (x, out) = (e.inputs[0], e.outputs[0]);
    let ndim = fg.var(x).ty.ndim();
    let only_last = axes.len() == 1 && axes[0] + 1 == ndim;
    let float32 = fg.var(x).ty.dtype == DType::Float32 && fg.var(out).ty.dtype == DType::Float32;
    if !matches!(kind, ReduceKind::Sum | ReduceKind::Prod)
        || !float32
        || only_last
        || axes.is_empty()
    {
        return None;
    }
    let wide = elemwise(ScalarOp::Cast(DType::Float64), vec![Expr::Var(x)]);
    let total = Expr::apply(
        Op::Reduce {
            kind,
            axes: axes.clone(),
        },
        vec![wide],
    );
    Some(vec![elemwise(ScalarOp::Cast(DType::Float32), vec![total])])
}

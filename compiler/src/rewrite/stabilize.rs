//! Stabilize: replace forms that overflow, underflow or cancel by their stable equivalents
//! (log1p, expm1, softplus, log1mexp, logsumexp, softmax, and log_softmax as x −
//! logsumexp or max-shifted). Each rule has
//! a numeric test at an input where the naive form fails.

use tensorlift_ir::ops::{DimShuffle, ReduceKind};
use tensorlift_ir::{FunctionGraph, NodeId, Op, ScalarOp, VarId};

use super::pattern::{elemwise, elemwise_args, is_uniform, producer, same_type};
use super::{Expr, Rule};

pub const RULES: [Rule; 11] = rules!["stabilize";
    log1p_from_log,
    softplus_from_log1p,
    expm1_from_exp,
    sigmoid_complement,
    log_sigmoid,
    log_one_minus_sigmoid,
    log1mexp_from_log,
    log_softmax_from_log,
    logsumexp_from_log,
    log_softmax_from_softmax,
    softmax_from_div,
];

/// The operand of the Elemwise `op` that is the only input of `node`.
fn unary_arg(fg: &FunctionGraph, node: NodeId, op: ScalarOp) -> Option<VarId> {
    let e = fg.node(node)?;
    match e.inputs.as_slice() {
        [x] if e.op == Op::Elemwise(op) => Some(*x),
        _ => None,
    }
}

fn out(fg: &FunctionGraph, node: NodeId) -> Option<VarId> {
    fg.node(node)?.outputs.first().copied()
}

/// `1 - y` → y (the `1` is a broadcast constant and the subtraction keeps y's type).
fn one_minus(fg: &FunctionGraph, var: VarId) -> Option<VarId> {
    let [one, y] = elemwise_args(fg, var, ScalarOp::Sub)?[..] else {
        return None;
    };
    (is_uniform(fg, one, 1.0) && same_type(fg, y, var)).then_some(y)
}

/// log(1 + x) → log1p(x).
fn log1p_from_log(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let sum = unary_arg(fg, node, ScalarOp::Log)?;
    let args = elemwise_args(fg, sum, ScalarOp::Add)?;
    let one = args.iter().position(|a| is_uniform(fg, *a, 1.0))?;
    let rest: Vec<VarId> = args
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != one)
        .map(|(_, a)| *a)
        .collect();
    let x = match rest.as_slice() {
        [x] if same_type(fg, *x, sum) => Expr::Var(*x),
        [_] => return None,
        many => {
            let dtype = fg.var(sum).ty.dtype;
            if many.iter().any(|a| fg.var(*a).ty.dtype != dtype) {
                return None;
            }
            elemwise(ScalarOp::Add, many.iter().map(|a| Expr::Var(*a)).collect())
        }
    };
    Some(vec![elemwise(ScalarOp::Log1p, vec![x])])
}

/// log1p(exp(x)) → softplus(x) (exp overflows from x ≈ 710 on; its gradient, exp(x) /
/// (1 + exp(x)), is then NaN where softplus's, sigmoid(x), is 1).
fn softplus_from_log1p(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = unary_arg(fg, node, ScalarOp::Log1p)?;
    let [x] = elemwise_args(fg, e, ScalarOp::Exp)?[..] else {
        return None;
    };
    same_type(fg, x, e).then(|| vec![elemwise(ScalarOp::Softplus, vec![Expr::Var(x)])])
}

/// exp(x) - 1 → expm1(x).
fn expm1_from_exp(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let [ex, one] = e.inputs[..] else { return None };
    if e.op != Op::Elemwise(ScalarOp::Sub)
        || !is_uniform(fg, one, 1.0)
        || !same_type(fg, ex, e.outputs[0])
    {
        return None;
    }
    let [x] = elemwise_args(fg, ex, ScalarOp::Exp)?[..] else {
        return None;
    };
    Some(vec![elemwise(ScalarOp::Expm1, vec![Expr::Var(x)])])
}

/// 1 - sigmoid(x) → sigmoid(-x).
fn sigmoid_complement(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let s = one_minus(fg, out(fg, node)?)?;
    let [x] = elemwise_args(fg, s, ScalarOp::Sigmoid)?[..] else {
        return None;
    };
    Some(vec![elemwise(
        ScalarOp::Sigmoid,
        vec![elemwise(ScalarOp::Neg, vec![Expr::Var(x)])],
    )])
}

/// log(sigmoid(x)) → -softplus(-x).
fn log_sigmoid(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let s = unary_arg(fg, node, ScalarOp::Log)?;
    let [x] = elemwise_args(fg, s, ScalarOp::Sigmoid)?[..] else {
        return None;
    };
    let inner = elemwise(
        ScalarOp::Softplus,
        vec![elemwise(ScalarOp::Neg, vec![Expr::Var(x)])],
    );
    Some(vec![elemwise(ScalarOp::Neg, vec![inner])])
}

/// log(1 - sigmoid(x)) → -softplus(x).
fn log_one_minus_sigmoid(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let d = unary_arg(fg, node, ScalarOp::Log)?;
    let s = one_minus(fg, d)?;
    let [x] = elemwise_args(fg, s, ScalarOp::Sigmoid)?[..] else {
        return None;
    };
    Some(vec![elemwise(
        ScalarOp::Neg,
        vec![elemwise(ScalarOp::Softplus, vec![Expr::Var(x)])],
    )])
}

/// log(1 - exp(x)) → log1mexp(x).
fn log1mexp_from_log(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let d = unary_arg(fg, node, ScalarOp::Log)?;
    let e = one_minus(fg, d)?;
    let [x] = elemwise_args(fg, e, ScalarOp::Exp)?[..] else {
        return None;
    };
    same_type(fg, x, e).then(|| vec![elemwise(ScalarOp::Log1mexp, vec![Expr::Var(x)])])
}

/// The `(reduction axes, argument)` of a `Sum` producing `var`, looking through an
/// ExpandDims (a keepdims sum).
fn sum_args(fg: &FunctionGraph, var: VarId) -> Option<(Vec<usize>, VarId, Option<DimShuffle>)> {
    let (p, _) = producer(fg, var)?;
    match &p.op {
        Op::Reduce {
            kind: ReduceKind::Sum,
            axes,
        } => Some((axes.clone(), p.inputs[0], None)),
        Op::DimShuffle(ds) if ds.is_expand_dims() => {
            let (axes, x, _) = sum_args(fg, p.inputs[0])?;
            Some((axes, x, Some(ds.clone())))
        }
        _ => None,
    }
}

/// log(exp(s) / sum(exp(s), keepdims)) → s - log(sum(exp(s), keepdims)): log_softmax.
fn log_softmax_from_log(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let ratio = unary_arg(fg, node, ScalarOp::Log)?;
    let [e, d] = elemwise_args(fg, ratio, ScalarOp::TrueDiv)?[..] else {
        return None;
    };
    let (_, summed, Some(_)) = sum_args(fg, d)? else {
        return None;
    };
    let [s] = elemwise_args(fg, e, ScalarOp::Exp)?[..] else {
        return None;
    };
    if summed != e || !same_type(fg, s, ratio) {
        return None;
    }
    Some(vec![elemwise(
        ScalarOp::Sub,
        vec![Expr::Var(s), elemwise(ScalarOp::Log, vec![Expr::Var(d)])],
    )])
}

/// True for `x - shift` where the shift is already a (guarded) maximum: the stable form.
fn is_max_shifted(fg: &FunctionGraph, var: VarId) -> bool {
    let Some(args) = elemwise_args(fg, var, ScalarOp::Sub) else {
        return false;
    };
    let mut v = args[1];
    while let Some((p, _)) = producer(fg, v) {
        match &p.op {
            Op::Reduce {
                kind: ReduceKind::Max,
                ..
            } => return true,
            Op::DimShuffle(_) => v = p.inputs[0],
            Op::Elemwise(ScalarOp::Switch) => v = p.inputs[2],
            _ => return false,
        }
    }
    false
}

/// log(sum(exp(x))) → logsumexp(x), the one reduction that neither overflows nor
/// underflows (unless x is already shifted by its maximum).
fn logsumexp_from_log(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let s = unary_arg(fg, node, ScalarOp::Log)?;
    let (axes, e, expand) = sum_args(fg, s)?;
    let [x] = elemwise_args(fg, e, ScalarOp::Exp)?[..] else {
        return None;
    };
    if !fg.var(x).ty.dtype.is_float() || is_max_shifted(fg, x) {
        return None;
    }
    let lse = Expr::apply(
        Op::Reduce {
            kind: ReduceKind::LogSumExp,
            axes,
        },
        vec![Expr::Var(x)],
    );
    Some(vec![match expand {
        Some(ds) => Expr::apply(Op::DimShuffle(ds), vec![lse]),
        None => lse,
    }])
}

/// log(softmax(x)) → x − logsumexp(x) along the softmax's axis: the probabilities below
/// the smallest float no longer round to 0 (whose log is −inf).
fn log_softmax_from_softmax(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let p = unary_arg(fg, node, ScalarOp::Log)?;
    let (producer, _) = producer(fg, p)?;
    let Op::Softmax { axis } = producer.op else {
        return None;
    };
    let x = producer.inputs[0];
    if !same_type(fg, x, p) {
        return None;
    }
    let ndim = fg.var(x).ty.ndim();
    let lse = Expr::apply(
        Op::Reduce {
            kind: ReduceKind::LogSumExp,
            axes: vec![axis],
        },
        vec![Expr::Var(x)],
    );
    let kept = Expr::apply(
        Op::DimShuffle(DimShuffle::keep_dims(&[axis], ndim)),
        vec![lse],
    );
    Some(vec![elemwise(ScalarOp::Sub, vec![Expr::Var(x), kept])])
}

/// exp(x) / sum(exp(x), axis, keepdims) → softmax(x) along that axis: computed shifted by
/// the maximum, so it never overflows (and runs as one op).
fn softmax_from_div(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let out = out(fg, node)?;
    let [e, d] = elemwise_args(fg, out, ScalarOp::TrueDiv)?[..] else {
        return None;
    };
    let (axes, summed, Some(expand)) = sum_args(fg, d)? else {
        return None;
    };
    let [x] = elemwise_args(fg, e, ScalarOp::Exp)?[..] else {
        return None;
    };
    let ndim = fg.var(x).ty.ndim();
    let [axis] = axes[..] else {
        return None;
    };
    let kept = expand == DimShuffle::keep_dims(&[axis], ndim);
    if summed != e || !kept || !same_type(fg, e, out) || !fg.var(x).ty.dtype.is_float() {
        return None;
    }
    Some(vec![Expr::apply(Op::Softmax { axis }, vec![Expr::Var(x)])])
}

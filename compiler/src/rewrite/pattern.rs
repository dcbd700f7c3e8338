//! Matching helpers shared by the rule modules: who produces a variable, what constant it
//! holds, how many clients it has, and builders for replacement expressions.

use tensorlift_ir::fgraph::NodeEntry;
use tensorlift_ir::ops::IndexSlot;
use tensorlift_ir::{
    Client, DType, FunctionGraph, Literal, Op, Origin, ScalarOp, TensorData, VarId,
};

use super::Expr;

/// The node producing `var` and the output index.
pub fn producer(fg: &FunctionGraph, var: VarId) -> Option<(&NodeEntry, usize)> {
    let (node, index) = fg.owner(var)?;
    fg.node(node).map(|e| (e, index))
}

/// The inputs of the Elemwise `op` producing `var`.
pub fn elemwise_args(fg: &FunctionGraph, var: VarId, op: ScalarOp) -> Option<Vec<VarId>> {
    match producer(fg, var)? {
        (e, 0) if e.op == Op::Elemwise(op) => Some(e.inputs.clone()),
        _ => None,
    }
}

/// The value of a constant variable.
pub fn constant(fg: &FunctionGraph, var: VarId) -> Option<&TensorData> {
    match &fg.var(var).origin {
        Origin::Constant(d) => Some(d),
        _ => None,
    }
}

/// The common value of a constant whose elements are all equal (looking through
/// DimShuffles of constants), as f64.
pub fn uniform_value(fg: &FunctionGraph, var: VarId) -> Option<f64> {
    let data = match producer(fg, var) {
        Some((e, _)) if matches!(e.op, Op::DimShuffle(_)) => constant(fg, e.inputs[0])?,
        _ => constant(fg, var)?,
    };
    let mut values = data.literals().into_iter().map(|l| match l {
        Literal::Bool(b) => b as u8 as f64,
        Literal::Int(i) => i as f64,
        Literal::Float(f) => f,
    });
    let first = values.next()?;
    values
        .all(|v| v == first || (v.is_nan() && first.is_nan()))
        .then_some(first)
}

/// True when `var` is a constant whose every element equals `value`.
pub fn is_uniform(fg: &FunctionGraph, var: VarId, value: f64) -> bool {
    uniform_value(fg, var) == Some(value)
}

/// True when `var` is used by exactly one node and is not a graph output.
pub fn single_client(fg: &FunctionGraph, var: VarId) -> bool {
    let mut uses = fg.clients(var);
    uses.len() == 1 && matches!(uses.next(), Some(Client::Node { .. }))
}

/// The node's output types are exactly `var`'s type (so `var` can replace output 0).
pub fn same_type(fg: &FunctionGraph, a: VarId, b: VarId) -> bool {
    fg.var(a).ty == fg.var(b).ty
}

/// `op` applied element by element.
pub fn elemwise(op: ScalarOp, inputs: Vec<Expr>) -> Expr {
    Expr::apply(Op::Elemwise(op), inputs)
}

/// A constant of `ndim` size-1 dimensions holding `value` in `dtype` (broadcasts anywhere).
pub fn scalar_const(value: impl Into<Literal>, dtype: DType, ndim: usize) -> Expr {
    Expr::Const(TensorData::full(&vec![1; ndim], value.into(), dtype))
}

/// Per-dimension sizes of `var` as int64 scalar expressions (constants where static).
pub fn dims_of(fg: &FunctionGraph, var: VarId) -> Vec<Expr> {
    fg.var(var)
        .ty
        .shape
        .iter()
        .enumerate()
        .map(|(d, s)| match s {
            Some(n) => Expr::Const(TensorData::scalar(*n as i64)),
            None => Expr::apply(
                Op::Subtensor(vec![IndexSlot::Index]),
                vec![
                    Expr::apply(Op::Shape, vec![Expr::Var(var)]),
                    Expr::Const(TensorData::scalar(d as i64)),
                ],
            ),
        })
        .collect()
}

/// A tensor like `var` (its shape) filled with `value` in `dtype`.
pub fn filled_like(fg: &FunctionGraph, var: VarId, value: Literal, dtype: DType) -> Expr {
    let mut inputs = vec![Expr::Const(TensorData::from_literal(value, dtype))];
    inputs.extend(dims_of(fg, var));
    Expr::apply(Op::Alloc, inputs)
}

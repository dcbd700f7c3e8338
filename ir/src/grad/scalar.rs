//! The derivative of every scalar op, applied element-wise: the pullback of `Elemwise`.
//! Conventions are PyTensor's: |x|' at 0 is 0, sqrt'(0) is inf, every tied argument of
//! maximum/minimum gets the gradient, rounding and sign have a zero derivative, and
//! comparisons, logical ops and integer results pass no gradient.

use super::{is_discrete, InputGrad};
use crate::api::elemwise::switch;
use crate::ops::ScalarOp;
use crate::var::Var;

/// The gradients of the inputs of `op(inputs) = out` given `g`, the gradient of `out`
/// (each of the broadcast shape; the caller sums them back to each input's shape).
pub(crate) fn elemwise_pullback(
    op: ScalarOp,
    inputs: &[Var],
    out: &Var,
    g: &Var,
) -> Vec<InputGrad> {
    if is_discrete(out) {
        return vec![InputGrad::Disconnected; inputs.len()];
    }
    let derivatives = derivatives(op, inputs, out, g);
    inputs
        .iter()
        .zip(derivatives)
        .map(|(x, d)| {
            if is_discrete(x) {
                InputGrad::Disconnected
            } else {
                d
            }
        })
        .collect()
}

fn grad(v: Var) -> InputGrad {
    InputGrad::Grad(v)
}

/// Zero where the op is flat (rounding, sign): a zero gradient, not a disconnection.
fn zero(g: &Var) -> InputGrad {
    grad(g * 0.0)
}

fn derivatives(op: ScalarOp, inputs: &[Var], out: &Var, g: &Var) -> Vec<InputGrad> {
    let x = &inputs[0];
    let one = |d: Var| vec![grad(d)];
    match op {
        ScalarOp::Identity => one(g.clone()),
        ScalarOp::Neg => one(-g),
        ScalarOp::Abs => one(g * x.sign()),
        ScalarOp::Sign | ScalarOp::Floor | ScalarOp::Ceil | ScalarOp::Round => vec![zero(g)],
        ScalarOp::Sqr => one(g * x * 2.0),
        ScalarOp::Not | ScalarOp::IsNan | ScalarOp::IsInf => vec![InputGrad::Disconnected],
        ScalarOp::Cast(_) => one(g.cast(x.dtype())),
        ScalarOp::Reciprocal => one(-(g * out.sqr())),
        ScalarOp::Exp => one(g * out),
        ScalarOp::Exp2 => one(g * out * std::f64::consts::LN_2),
        ScalarOp::Expm1 => one(g * (out + 1.0)),
        ScalarOp::Log => one(g / x),
        ScalarOp::Log2 => one(g / (x * std::f64::consts::LN_2)),
        ScalarOp::Log1p => one(g / (x + 1.0)),
        // d/dx log(1 - e^x) = -e^x / (1 - e^x) = -1 / expm1(-x).
        ScalarOp::Log1mexp => one(-(g / (-x).expm1())),
        ScalarOp::Sqrt => one(g / (out * 2.0)),
        ScalarOp::Sin => one(g * x.cos()),
        ScalarOp::Cos => one(-(g * x.sin())),
        ScalarOp::Tan => one(g * (out.sqr() + 1.0)),
        ScalarOp::Tanh => one(g * (-out.sqr() + 1.0)),
        // sigmoid(x) sigmoid(-x): exact in both tails (1 - sigmoid(x) is 0 for large x).
        ScalarOp::Sigmoid => one(g * out * (-x).sigmoid()),
        ScalarOp::Softplus => one(g * x.sigmoid()),
        ScalarOp::Erf => one(g * (-x.sqr()).exp() * std::f64::consts::FRAC_2_SQRT_PI),
        ScalarOp::Erfc => one(-(g * (-x.sqr()).exp() * std::f64::consts::FRAC_2_SQRT_PI)),
        ScalarOp::Gammaln => one(g * x.digamma()),
        ScalarOp::Digamma => vec![InputGrad::Undefined(
            "the derivative of digamma (trigamma) is not implemented yet".into(),
        )],
        ScalarOp::Add => inputs.iter().map(|_| grad(g.clone())).collect(),
        ScalarOp::Sub => vec![grad(g.clone()), grad(-g)],
        ScalarOp::Mul => (0..inputs.len())
            .map(|k| {
                let others = inputs
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != k)
                    .fold(g.clone(), |acc, (_, v)| &acc * v);
                grad(others)
            })
            .collect(),
        ScalarOp::TrueDiv => {
            let y = &inputs[1];
            vec![grad(g / y), grad(-(g * out / y))]
        }
        // Floor division is piecewise constant in both operands.
        ScalarOp::IntDiv => vec![zero(g), zero(g)],
        // x mod y = x - floor(x / y) y.
        ScalarOp::Mod => {
            let y = &inputs[1];
            vec![grad(g.clone()), grad(-(g * (x / y).floor()))]
        }
        ScalarOp::Pow => {
            let y = &inputs[1];
            vec![grad(g * y * x.pow(y - 1.0)), grad(g * out * x.log())]
        }
        ScalarOp::Maximum | ScalarOp::Minimum => {
            let y = &inputs[1];
            vec![
                grad(switch(out.equal(x), g, 0.0)),
                grad(switch(out.equal(y), g, 0.0)),
            ]
        }
        ScalarOp::Eq
        | ScalarOp::Neq
        | ScalarOp::Lt
        | ScalarOp::Le
        | ScalarOp::Gt
        | ScalarOp::Ge
        | ScalarOp::And
        | ScalarOp::Or
        | ScalarOp::Xor => vec![InputGrad::Disconnected; inputs.len()],
        ScalarOp::Switch => {
            let cond = &inputs[0];
            vec![
                InputGrad::Disconnected,
                grad(switch(cond, g, 0.0)),
                grad(switch(cond, 0.0, g)),
            ]
        }
        ScalarOp::Clip => {
            let (lo, hi) = (&inputs[1], &inputs[2]);
            vec![
                grad(switch(x.ge(lo).logical_and(x.le(hi)), g, 0.0)),
                grad(switch(x.lt(lo), g, 0.0)),
                grad(switch(x.gt(hi), g, 0.0)),
            ]
        }
    }
}

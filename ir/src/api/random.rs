//! Random-variable builders (`pytensor.tensor.random` / `numpy.random.Generator`): each
//! takes an explicit RNG state and returns the draws with the next state (`Draw`), so a
//! graph never hides an update: thread the state through, or keep it in a shared
//! variable updated by the function.
//!
//! `size` lists the draws' shape (`&[]`: the parameters' broadcast shape); parameters
//! broadcast into it only where statically 1. Float draws take the parameters' float
//! dtype (float64 when they are integers), discrete ones are int64.

use super::{var_or_invalid, Operand};
use crate::data::TensorData;
use crate::dtype::{promote_all, DType};
use crate::error::{GraphError, Result};
use crate::ops::random::rng_type;
use crate::ops::{Distribution, Op, RandomOp};
use crate::var::Var;

/// The draws of a random op and the RNG state after them.
#[derive(Clone, Debug)]
pub struct Draw {
    pub value: Var,
    pub rng: Var,
}

/// An RNG state seeded with `seed` (a constant `[seed, 0]`; its type is
/// `ops::random::rng_type()`, the type of an RNG input or shared variable).
///
/// ```
/// use tensorlift_ir::api::random::{normal, rng};
/// let draw = normal(&rng(42), 0.0, 1.0, &[1000.into()]);
/// assert_eq!(draw.value.static_shape(), &[Some(1000)]);
/// ```
pub fn rng(seed: u64) -> Var {
    Var::constant(
        TensorData::from_vec(&[2], vec![seed as i64, 0])
            .unwrap_or_else(|_| TensorData::scalar(0i64)),
    )
}

/// Builds the node: parameters padded to the draws' rank (left, broadcastable), `size`
/// from the operands or from the parameters' shapes.
fn draw(dist: Distribution, rng: &Var, params: Vec<Operand>, size: &[Operand]) -> Result<Draw> {
    rng.check()?;
    let params: Vec<Var> = params.into_iter().map(Operand::into_var).collect();
    for p in &params {
        p.check()?;
    }
    let state = rng.ty();
    if state.dtype != DType::Int64 || state.ndim() != 1 || state.shape[0].is_some_and(|n| n != 2) {
        return Err(GraphError::op(
            format!("{dist:?}"),
            format!("the RNG state must be {}, got {}", rng_type(), rng.ty()),
        ));
    }
    let cores = dist.param_core_ndims();
    let batch_rank = |p: &Var, core: usize| p.ndim().checked_sub(core);
    let mut n = size.len();
    for (k, (p, core)) in params.iter().zip(cores).enumerate() {
        let Some(r) = batch_rank(p, *core) else {
            return Err(GraphError::op(
                format!("{dist:?}"),
                format!("parameter {k} ({}) needs {core} core dimension(s)", p.ty()),
            ));
        };
        if size.is_empty() {
            n = n.max(r);
        } else if r > n {
            return Err(GraphError::op(
                format!("{dist:?}"),
                format!(
                    "parameter {k} ({}) has more batch dimensions than the size ({n})",
                    p.ty()
                ),
            ));
        }
    }
    let padded: Vec<Var> = params
        .iter()
        .zip(cores)
        .map(|(p, core)| {
            let r = p.ndim() - core;
            let mut order: Vec<Option<usize>> = vec![None; n - r];
            order.extend((0..p.ndim()).map(Some));
            if r == n {
                p.clone()
            } else {
                p.dimshuffle(&order)
            }
        })
        .collect();
    let size_var = if size.is_empty() {
        // The broadcast shape of the parameters' batch dimensions.
        let sizes: Vec<Operand> = (0..n)
            .map(|d| {
                let known = padded.iter().find_map(|p| match p.static_shape()[d] {
                    Some(1) | None => None,
                    Some(s) => Some(s),
                });
                match known {
                    Some(s) => Operand::from(s as i64),
                    None => padded
                        .iter()
                        .find(|p| p.static_shape()[d] != Some(1))
                        .map_or(Operand::from(1i64), |p| p.shape_i(d as isize).into()),
                }
            })
            .collect();
        super::shape::make_vector(&sizes)
    } else {
        // Literal sizes make a constant (the draws' static shape).
        let literal: Option<Vec<i64>> = size
            .iter()
            .map(|o| match o {
                Operand::Lit(crate::dtype::Literal::Int(i)) => Some(*i),
                _ => None,
            })
            .collect();
        match literal {
            Some(v) => Var::constant(TensorData::from_vec(&[v.len()], v)?),
            None => super::shape::make_vector(size),
        }
    };
    let size_var = if size_var.ndim() == 1 && size_var.dtype() != DType::Int64 {
        size_var.cast(DType::Int64)
    } else {
        size_var
    };
    let dtype = if dist.discrete() {
        DType::Int64
    } else {
        match promote_all(padded.iter().map(Var::dtype)) {
            Some(d) if d.is_float() => d,
            _ => DType::Float64,
        }
    };
    let args: Vec<Var> = padded
        .iter()
        .map(|p| {
            if dist.discrete() || p.dtype() == dtype {
                p.clone()
            } else {
                p.cast(dtype)
            }
        })
        .collect();
    let mut inputs = vec![rng.clone(), size_var];
    inputs.extend(args);
    let outs = Var::apply(Op::Random(RandomOp { dist, dtype }), inputs)?;
    Ok(Draw {
        rng: outs[0].clone(),
        value: outs[1].clone(),
    })
}

fn build(dist: Distribution, rng: &Var, params: Vec<Operand>, size: &[Operand]) -> Draw {
    match draw(dist, rng, params, size) {
        Ok(d) => d,
        Err(e) => Draw {
            value: var_or_invalid(Err(e.clone())),
            rng: var_or_invalid(Err(e)),
        },
    }
}

/// Normal draws with mean `mean` and standard deviation `std` (≥ 0).
///
/// ```
/// use tensorlift_ir::api::random::{normal, rng};
/// use tensorlift_ir::DType;
/// let state = rng(42);
/// let draw = normal(&state, 0.0, 2.0, &[3.into(), 4.into()]);
/// assert_eq!(draw.value.static_shape(), &[Some(3), Some(4)]);
/// assert_eq!(draw.rng.ty(), state.ty()); // the next state, to thread on
/// ```
pub fn normal(
    rng: &Var,
    mean: impl Into<Operand>,
    std: impl Into<Operand>,
    size: &[Operand],
) -> Draw {
    build(
        Distribution::Normal,
        rng,
        vec![mean.into(), std.into()],
        size,
    )
}

/// Uniform draws on [low, high).
///
/// ```
/// use tensorlift_ir::api::random::{uniform, rng};
/// use tensorlift_ir::DType;
/// let state = rng(42);
/// let draw = uniform(&state, -1.0, 1.0, &[5.into()]);
/// assert_eq!(draw.value.dtype(), DType::Float64);
/// ```
pub fn uniform(
    rng: &Var,
    low: impl Into<Operand>,
    high: impl Into<Operand>,
    size: &[Operand],
) -> Draw {
    build(
        Distribution::Uniform,
        rng,
        vec![low.into(), high.into()],
        size,
    )
}

/// 1 with probability `p` (in [0, 1]), else 0 (int64).
///
/// ```
/// use tensorlift_ir::api::random::{bernoulli, rng};
/// use tensorlift_ir::DType;
/// let state = rng(42);
/// let draw = bernoulli(&state, 0.3, &[10.into()]);
/// assert_eq!(draw.value.dtype(), DType::Int64);
/// ```
pub fn bernoulli(rng: &Var, p: impl Into<Operand>, size: &[Operand]) -> Draw {
    build(Distribution::Bernoulli, rng, vec![p.into()], size)
}

/// Indices of p's last axis drawn with probabilities `p` (non-negative; normalised).
///
/// ```
/// use tensorlift_ir::api::random::{categorical, rng};
/// use tensorlift_ir::{tensor, DType};
/// let p = tensor("p", DType::Float64, [Some(3)]);
/// let draw = categorical(&rng(0), &p, &[8.into()]);
/// assert_eq!(draw.value.static_shape(), &[Some(8)]);
/// ```
pub fn categorical(rng: &Var, p: &Var, size: &[Operand]) -> Draw {
    build(Distribution::Categorical, rng, vec![p.into()], size)
}

/// Gamma draws of shape `shape` and scale `scale` (both > 0), as NumPy's `gamma`.
///
/// ```
/// use tensorlift_ir::api::random::{gamma, rng};
/// use tensorlift_ir::DType;
/// let state = rng(42);
/// let draw = gamma(&state, 2.0, 0.5, &[4.into()]);
/// assert_eq!(draw.value.static_shape(), &[Some(4)]);
/// ```
pub fn gamma(
    rng: &Var,
    shape: impl Into<Operand>,
    scale: impl Into<Operand>,
    size: &[Operand],
) -> Draw {
    build(
        Distribution::Gamma,
        rng,
        vec![shape.into(), scale.into()],
        size,
    )
}

/// Beta draws with parameters `a`, `b` (> 0).
///
/// ```
/// use tensorlift_ir::api::random::{beta, rng};
/// use tensorlift_ir::DType;
/// let state = rng(42);
/// let draw = beta(&state, 2.0, 3.0, &[4.into()]);
/// assert_eq!(draw.value.dtype(), DType::Float64);
/// ```
pub fn beta(rng: &Var, a: impl Into<Operand>, b: impl Into<Operand>, size: &[Operand]) -> Draw {
    build(Distribution::Beta, rng, vec![a.into(), b.into()], size)
}

/// Poisson draws of rate `lam` (≥ 0), int64.
///
/// ```
/// use tensorlift_ir::api::random::{poisson, rng};
/// use tensorlift_ir::DType;
/// let state = rng(42);
/// let draw = poisson(&state, 3.5, &[6.into()]);
/// assert_eq!(draw.value.dtype(), DType::Int64);
/// ```
pub fn poisson(rng: &Var, lam: impl Into<Operand>, size: &[Operand]) -> Draw {
    build(Distribution::Poisson, rng, vec![lam.into()], size)
}

/// Binomial draws of `n` trials (≥ 0) with success probability `p` (in [0, 1]), int64.
///
/// ```
/// use tensorlift_ir::api::random::{binomial, rng};
/// use tensorlift_ir::DType;
/// let state = rng(42);
/// let draw = binomial(&state, 10, 0.25, &[6.into()]);
/// assert_eq!(draw.value.dtype(), DType::Int64);
/// ```
pub fn binomial(rng: &Var, n: impl Into<Operand>, p: impl Into<Operand>, size: &[Operand]) -> Draw {
    build(Distribution::Binomial, rng, vec![n.into(), p.into()], size)
}

/// Multivariate normal draws with mean `mean` (k) and covariance `cov` (k×k, symmetric
/// positive definite, read from its lower triangle); each draw has the mean's last
/// dimension.
///
/// ```
/// use tensorlift_ir::api::random::{multivariate_normal, rng};
/// use tensorlift_ir::{tensor, DType};
/// let mean = tensor("mean", DType::Float64, [Some(3)]);
/// let cov = tensor("cov", DType::Float64, [Some(3), Some(3)]);
/// let draw = multivariate_normal(&rng(7), &mean, &cov, &[100.into()]);
/// assert_eq!(draw.value.static_shape(), &[Some(100), Some(3)]);
/// ```
pub fn multivariate_normal(rng: &Var, mean: &Var, cov: &Var, size: &[Operand]) -> Draw {
    build(
        Distribution::MvNormal,
        rng,
        vec![mean.into(), cov.into()],
        size,
    )
}

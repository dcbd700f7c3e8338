//! Random draws (DESIGN §10, issue 21): `RandomOp`, a distribution sampled with an
//! explicit RNG state, and its type rule.
//!
//! Owns: the RNG state's type (an int64 vector `[key, counter]`: counter-based, so the
//! runtime can split one draw into independent chunks and every backend gives the same
//! stream), the node layout (inputs `[rng, size, params...]`, outputs `[next rng, draws]`),
//! each distribution's parameters and their core dimensions, and the draws' shape: `size`
//! (an int64 vector of static length; known sizes when it is constant), into which every
//! parameter broadcasts only where its static size is 1 (DESIGN §3).

use std::fmt;

use super::InputInfo;
use crate::dtype::DType;
use crate::error::{GraphError, Result};
use crate::types::TensorType;

/// A distribution of `RandomOp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// `normal(mean, std)`.
    Normal,
    /// `uniform(low, high)` on [low, high).
    Uniform,
    /// `bernoulli(p)`: 1 with probability p (int64).
    Bernoulli,
    /// `categorical(p)`: an index of p's last axis, with probabilities p (normalised).
    Categorical,
    /// `gamma(shape, scale)`.
    Gamma,
    /// `beta(a, b)`.
    Beta,
    /// `poisson(lam)` (int64).
    Poisson,
    /// `binomial(n, p)` (int64).
    Binomial,
    /// `multivariate_normal(mean, cov)`: mean (k), cov (k, k) symmetric positive definite.
    MvNormal,
}

impl Distribution {
    /// The core dimensions of each parameter (beyond the draws' batch dimensions).
    pub fn param_core_ndims(self) -> &'static [usize] {
        match self {
            Distribution::Normal
            | Distribution::Uniform
            | Distribution::Gamma
            | Distribution::Beta
            | Distribution::Binomial => &[0, 0],
            Distribution::Bernoulli | Distribution::Poisson => &[0],
            Distribution::Categorical => &[1],
            Distribution::MvNormal => &[1, 2],
        }
    }

    /// The core dimensions of one draw.
    pub fn draw_core_ndim(self) -> usize {
        match self {
            Distribution::MvNormal => 1,
            Distribution::Normal
            | Distribution::Uniform
            | Distribution::Bernoulli
            | Distribution::Categorical
            | Distribution::Gamma
            | Distribution::Beta
            | Distribution::Poisson
            | Distribution::Binomial => 0,
        }
    }

    /// Whether the draws are integers (int64) rather than floats.
    pub fn discrete(self) -> bool {
        match self {
            Distribution::Bernoulli
            | Distribution::Categorical
            | Distribution::Poisson
            | Distribution::Binomial => true,
            Distribution::Normal
            | Distribution::Uniform
            | Distribution::Gamma
            | Distribution::Beta
            | Distribution::MvNormal => false,
        }
    }
}

/// A random draw from `dist` into `dtype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RandomOp {
    pub dist: Distribution,
    pub dtype: DType,
}

/// The type of an RNG state: `[key, counter]`.
pub fn rng_type() -> TensorType {
    TensorType::new(DType::Int64, vec![Some(2)])
}

impl RandomOp {
    pub(crate) fn infer(&self, name: &str, inputs: &[InputInfo]) -> Result<Vec<TensorType>> {
        let fail = |m: String| Err(GraphError::op(name, m));
        let cores = self.dist.param_core_ndims();
        if inputs.len() != 2 + cores.len() {
            return fail(format!(
                "takes an RNG state, a size and {} parameter(s), got {} inputs",
                cores.len(),
                inputs.len()
            ));
        }
        let state = inputs[0].ty;
        if state.dtype != DType::Int64
            || state.ndim() != 1
            || state.shape[0].is_some_and(|n| n != 2)
        {
            return fail(format!(
                "input 0 must be an RNG state ({}), got {state}",
                rng_type()
            ));
        }
        let size = inputs[1].ty;
        let Some(Some(n)) = (size.dtype == DType::Int64 && size.ndim() == 1).then(|| size.shape[0])
        else {
            return fail(format!(
                "input 1 (size) must be an int64 vector of static length, got {size}"
            ));
        };
        let mut shape: Vec<Option<usize>> = match inputs[1].const_ints() {
            Some(v) => v.iter().map(|s| usize::try_from(*s).ok()).collect(),
            None => vec![None; n],
        };
        let mut core_size: Option<usize> = None;
        for (k, (p, core)) in inputs[2..].iter().zip(cores).enumerate() {
            if !(p.ty.dtype.is_float() || p.ty.dtype.is_int() || p.ty.dtype == DType::Bool) {
                return fail(format!("parameter {k} must be numeric, got {}", p.ty));
            }
            if p.ty.ndim() != n + core {
                return fail(format!(
                    "parameter {k} ({}) must have {n} batch dimension(s) (the size's length) \
                     and {core} core one(s)",
                    p.ty
                ));
            }
            for (d, (out, s)) in shape.iter_mut().zip(&p.ty.shape[..n]).enumerate() {
                match (*out, *s) {
                    (_, Some(1)) => {}
                    (Some(a), Some(b)) if a != b => {
                        return fail(format!(
                            "parameter {k} has size {b} in dimension {d}, the draws {a}"
                        ))
                    }
                    (None, Some(b)) if inputs[1].constant.is_none() => *out = Some(b),
                    _ => {}
                }
            }
            if *core > 0 {
                core_size = core_size.or(p.ty.shape[n]);
            }
        }
        if self.dist.draw_core_ndim() == 1 {
            shape.push(core_size);
        }
        Ok(vec![state.clone(), TensorType::new(self.dtype, shape)])
    }
}

impl fmt::Display for RandomOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Random{{{:?}, {}}}", self.dist, self.dtype)
    }
}

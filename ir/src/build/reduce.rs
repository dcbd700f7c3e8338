//! Reduction builders: sum/prod/max/min/all/any over any axes, argmax/argmin, cumsum/
//! cumprod, and the graph helpers mean, var, std, logsumexp, softmax and log_softmax
//! (compositions, not ops; written in their numerically stable forms).

use super::{normalize_axes, normalize_axis, var_or_invalid};
use crate::dtype::DType;
use crate::error::Result;
use crate::ops::DimShuffle;
use crate::ops::{ArgKind, CumKind, Op, ReduceKind};
use crate::var::Var;

impl Var {
    /// Reduces over `axes` (`None` = all); `keepdims` keeps them as size-1 dimensions.
    pub fn reduce(&self, kind: ReduceKind, axes: Option<&[isize]>, keepdims: bool) -> Var {
        let name = format!("{kind:?}");
        var_or_invalid((|| {
            self.check()?;
            let axes = normalize_axes(&name, axes, self.ndim())?;
            let reduced = Var::apply1(
                Op::Reduce {
                    kind,
                    axes: axes.clone(),
                },
                vec![self.clone()],
            );
            Ok(if keepdims {
                keep_dims(&reduced, &axes, self.ndim())
            } else {
                reduced
            })
        })())
    }

    /// Sum over `axes` (`None` = all).
    pub fn sum(&self, axes: Option<&[isize]>) -> Var {
        self.reduce(ReduceKind::Sum, axes, false)
    }

    /// Sum over the given axes.
    pub fn sum_axis(&self, axes: &[isize]) -> Var {
        self.sum(Some(axes))
    }

    pub fn prod(&self, axes: Option<&[isize]>) -> Var {
        self.reduce(ReduceKind::Prod, axes, false)
    }

    /// Maximum; NaN propagates; an empty axis is an error.
    pub fn max(&self, axes: Option<&[isize]>) -> Var {
        self.reduce(ReduceKind::Max, axes, false)
    }

    pub fn min(&self, axes: Option<&[isize]>) -> Var {
        self.reduce(ReduceKind::Min, axes, false)
    }

    pub fn all(&self, axes: Option<&[isize]>) -> Var {
        self.reduce(ReduceKind::All, axes, false)
    }

    pub fn any(&self, axes: Option<&[isize]>) -> Var {
        self.reduce(ReduceKind::Any, axes, false)
    }

    /// Index of the first maximum along `axis` (`None` = of the flattened tensor).
    pub fn argmax(&self, axis: Option<isize>) -> Var {
        self.arg_reduce(ArgKind::Argmax, axis)
    }

    /// Index of the first minimum along `axis` (`None` = of the flattened tensor).
    pub fn argmin(&self, axis: Option<isize>) -> Var {
        self.arg_reduce(ArgKind::Argmin, axis)
    }

    fn arg_reduce(&self, kind: ArgKind, axis: Option<isize>) -> Var {
        let name = format!("{kind:?}");
        var_or_invalid(
            axis.map(|a| normalize_axis(&name, a, self.ndim()))
                .transpose()
                .map(|axis| Var::apply1(Op::ArgReduce { kind, axis }, vec![self.clone()])),
        )
    }

    /// Running sum along `axis` (`None` = of the flattened tensor).
    pub fn cumsum(&self, axis: Option<isize>) -> Var {
        self.cumulative(CumKind::CumSum, axis)
    }

    /// Running product along `axis` (`None` = of the flattened tensor).
    pub fn cumprod(&self, axis: Option<isize>) -> Var {
        self.cumulative(CumKind::CumProd, axis)
    }

    fn cumulative(&self, kind: CumKind, axis: Option<isize>) -> Var {
        let name = format!("{kind:?}");
        var_or_invalid(
            axis.map(|a| normalize_axis(&name, a, self.ndim()))
                .transpose()
                .map(|axis| Var::apply1(Op::Cumulative { kind, axis }, vec![self.clone()])),
        )
    }

    /// Arithmetic mean over `axes`; integers give float64, floats keep their dtype.
    pub fn mean(&self, axes: Option<&[isize]>) -> Var {
        self.mean_keep(axes, false)
    }

    fn mean_keep(&self, axes: Option<&[isize]>, keepdims: bool) -> Var {
        var_or_invalid((|| {
            let total = self.reduce(ReduceKind::Sum, axes, keepdims);
            let count = self.count(axes)?;
            let count = if total.dtype().is_float() {
                count.cast(total.dtype())
            } else {
                count
            };
            Ok(&total / count)
        })())
    }

    /// Number of elements covered by `axes`, as an int64 scalar.
    fn count(&self, axes: Option<&[isize]>) -> Result<Var> {
        let axes = normalize_axes("Mean", axes, self.ndim())?;
        let known: Option<usize> = axes.iter().map(|a| self.static_shape()[*a]).product();
        Ok(match known {
            Some(n) => Var::literal(n as i64, DType::Int64),
            None => axes
                .iter()
                .map(|a| self.shape_i(*a as isize))
                .fold(Var::literal(1i64, DType::Int64), |acc, s| acc * s),
        })
    }

    /// Variance over `axes` with `ddof` delta degrees of freedom (NumPy's `var`).
    pub fn var(&self, axes: Option<&[isize]>, ddof: usize) -> Var {
        var_or_invalid((|| {
            let centered = self - self.mean_keep(axes, true);
            let total = centered.sqr().sum(axes);
            // NumPy divides by max(n - ddof, 0): inf or NaN when ddof >= n.
            let n = (self.count(axes)? - ddof as i64).maximum(0);
            Ok(&total / n.cast(total.dtype()))
        })())
    }

    /// Standard deviation: `sqrt(var)`.
    pub fn std(&self, axes: Option<&[isize]>, ddof: usize) -> Var {
        self.var(axes, ddof).sqrt()
    }

    /// log(sum(exp(x))) over `axes` (`None` = all), as one reduction that neither
    /// overflows nor underflows (the maximum is shifted out); all `-inf` or an empty axis
    /// gives `-inf`. Integers give the float dtype `exp` would.
    pub fn logsumexp(&self, axes: Option<&[isize]>) -> Var {
        self.reduce(ReduceKind::LogSumExp, axes, false)
    }

    /// exp(x) / sum(exp(x)) along `axis`, as one op computed in the max-shifted stable
    /// form (exp(x − max) / Σ exp(x − max)). Integers give the float dtype `exp` would.
    pub fn softmax(&self, axis: isize) -> Var {
        var_or_invalid(
            normalize_axis("Softmax", axis, self.ndim())
                .map(|axis| Var::apply1(Op::Softmax { axis }, vec![self.clone()])),
        )
    }

    /// log(softmax(x)) along `axis`: x − logsumexp(x) (kept dimension), stable for any
    /// inputs; integers give the float dtype `exp` would.
    pub fn log_softmax(&self, axis: isize) -> Var {
        let x = if self.dtype().is_float() {
            self.clone()
        } else {
            self.cast(self.dtype().upgrade_to_float())
        };
        &x - x.reduce(ReduceKind::LogSumExp, Some(&[axis]), true)
    }
}

/// Re-inserts the reduced `axes` (of an `ndim`-dimensional input) as size-1 dimensions.
fn keep_dims(reduced: &Var, axes: &[usize], ndim: usize) -> Var {
    reduced.dimshuffle(&DimShuffle::keep_dims(axes, ndim).new_order)
}

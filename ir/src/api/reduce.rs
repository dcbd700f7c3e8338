//! Reduction builders: sum/prod/max/min/all/any over any axes, argmax/argmin, cumsum/
//! cumprod, and the graph helpers mean, var, std, logsumexp, softmax and log_softmax
//! (compositions, not ops; written in their numerically stable forms).

use super::axes::{Axes, AxisOrAll};
use super::{normalize_axes, normalize_axis, var_or_invalid};
use crate::dtype::DType;
use crate::error::Result;
use crate::ops::DimShuffle;
use crate::ops::{ArgKind, CumKind, Op, ReduceKind};
use crate::var::Var;

impl Var {
    /// Reduces over `axes` (`None` or `All` = every axis; one axis; several, see
    /// `Axes`); `keepdims` keeps them as size-1 dimensions.
    ///
    /// ```
    /// use tensorlift_ir::ops::ReduceKind;
    /// use tensorlift_ir::{tensor, DType};
    /// let x = tensor("x", DType::Float64, [Some(2), Some(3), Some(4)]);
    /// assert_eq!(x.reduce(ReduceKind::Max, [0, 2], false).static_shape(), &[Some(3)]);
    /// assert_eq!(x.reduce(ReduceKind::Sum, -1, true).static_shape(), &[Some(2), Some(3), Some(1)]);
    /// ```
    pub fn reduce(&self, kind: ReduceKind, axes: impl Axes, keepdims: bool) -> Var {
        self.reduce_over(kind, axes.into_axes().as_deref(), keepdims)
    }

    fn reduce_over(&self, kind: ReduceKind, axes: Option<&[isize]>, keepdims: bool) -> Var {
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
}

macro_rules! reductions {
    ($($(#[$doc:meta])* $name:ident, $keep:ident => $kind:expr;)*) => {
        impl Var {$(
            $(#[$doc])*
            #[doc = ""]
            #[doc = "```"]
            #[doc = "use tensorlift_ir::{tensor, All, DType};"]
            #[doc = "let x = tensor(\"x\", DType::Float64, [Some(2), Some(3), Some(4)]);"]
            #[doc = concat!("assert_eq!(x.", stringify!($name), "(All).ndim(), 0);")]
            #[doc = concat!("assert_eq!(x.", stringify!($name), "([0, 2]).static_shape(), &[Some(3)]);")]
            #[doc = "```"]
            pub fn $name(&self, axes: impl Axes) -> Var {
                self.reduce($kind, axes, false)
            }

            #[doc = concat!("`", stringify!($name), "` keeping the reduced axes as size-1 dimensions (NumPy's `keepdims=True`).")]
            #[doc = ""]
            #[doc = "```"]
            #[doc = "use tensorlift_ir::{tensor, DType};"]
            #[doc = "let x = tensor(\"x\", DType::Float64, [Some(2), Some(3)]);"]
            #[doc = concat!("assert_eq!(x.", stringify!($keep), "(-1).static_shape(), &[Some(2), Some(1)]);")]
            #[doc = "```"]
            pub fn $keep(&self, axes: impl Axes) -> Var {
                self.reduce($kind, axes, true)
            }
        )*}
    };
}

reductions! {
    /// Sum over `axes`: `None` or `All` for every axis, one axis (`1`, `-1`) or several
    /// (`[0, 2]`). Bools and integers sum in int64.
    ///
    /// ```
    /// use tensorlift_ir::{matrix, All, DType};
    /// let x = matrix("x", DType::Float64);
    /// assert_eq!(x.sum(All).ndim(), 0);
    /// assert_eq!(x.sum(1).ndim(), 1);
    /// assert_eq!(x.sum([0, 1]).ndim(), 0);
    /// assert_eq!(x.sum_keepdims(-1).ty().to_string(), "Matrix(float64, shape=(?, 1))");
    /// ```
    sum, sum_keepdims => ReduceKind::Sum;
    /// Product over `axes` (see `sum`).
    prod, prod_keepdims => ReduceKind::Prod;
    /// Maximum over `axes` (see `sum`); NaN propagates; an empty axis is an error.
    max, max_keepdims => ReduceKind::Max;
    /// Minimum over `axes` (see `sum`); NaN propagates; an empty axis is an error.
    min, min_keepdims => ReduceKind::Min;
    /// Whether every element over `axes` is true (numbers: non-zero; see `sum`).
    all, all_keepdims => ReduceKind::All;
    /// Whether any element over `axes` is true (numbers: non-zero; see `sum`).
    any, any_keepdims => ReduceKind::Any;
    /// log(sum(exp(x))) over `axes` (see `sum`), as one reduction that neither overflows
    /// nor underflows (the maximum is shifted out); all `-inf` or an empty axis gives
    /// `-inf`. Integers give the float dtype `exp` would.
    logsumexp, logsumexp_keepdims => ReduceKind::LogSumExp;
}

impl Var {
    /// Index of the first maximum along `axis` (`None` or `All`: of the flattened
    /// tensor).
    ///
    /// ```
    /// use tensorlift_ir::{matrix, All, DType};
    /// let x = matrix("x", DType::Float64);
    /// assert_eq!(x.argmax(0).ndim(), 1);
    /// assert_eq!(x.argmax(All).ndim(), 0);
    /// ```
    pub fn argmax(&self, axis: impl AxisOrAll) -> Var {
        self.arg_reduce(ArgKind::Argmax, axis.into_axis())
    }

    /// Index of the first minimum along `axis` (`None` or `All`: of the flattened
    /// tensor).
    ///
    /// ```
    /// use tensorlift_ir::{matrix, All, DType};
    /// let x = matrix("x", DType::Float64);
    /// assert_eq!(x.argmin(-1).ndim(), 1);
    /// assert_eq!(x.argmin(All).dtype(), DType::Int64);
    /// ```
    pub fn argmin(&self, axis: impl AxisOrAll) -> Var {
        self.arg_reduce(ArgKind::Argmin, axis.into_axis())
    }

    fn arg_reduce(&self, kind: ArgKind, axis: Option<isize>) -> Var {
        let name = format!("{kind:?}");
        var_or_invalid(
            axis.map(|a| normalize_axis(&name, a, self.ndim()))
                .transpose()
                .map(|axis| Var::apply1(Op::ArgReduce { kind, axis }, vec![self.clone()])),
        )
    }

    /// Running sum along `axis` (`None` or `All`: of the flattened tensor).
    ///
    /// ```
    /// use tensorlift_ir::{matrix, All, DType};
    /// let x = matrix("x", DType::Int32);
    /// assert_eq!(x.cumsum(1).ndim(), 2);
    /// assert_eq!(x.cumsum(All).ndim(), 1); // of the flattened matrix
    /// ```
    pub fn cumsum(&self, axis: impl AxisOrAll) -> Var {
        self.cumulative(CumKind::CumSum, axis.into_axis())
    }

    /// Running product along `axis` (`None` or `All`: of the flattened tensor).
    ///
    /// ```
    /// use tensorlift_ir::{vector, DType};
    /// let x = vector("x", DType::Float64);
    /// assert_eq!(x.cumprod(0).ty(), x.ty());
    /// ```
    pub fn cumprod(&self, axis: impl AxisOrAll) -> Var {
        self.cumulative(CumKind::CumProd, axis.into_axis())
    }

    fn cumulative(&self, kind: CumKind, axis: Option<isize>) -> Var {
        let name = format!("{kind:?}");
        var_or_invalid(
            axis.map(|a| normalize_axis(&name, a, self.ndim()))
                .transpose()
                .map(|axis| Var::apply1(Op::Cumulative { kind, axis }, vec![self.clone()])),
        )
    }

    /// Arithmetic mean over `axes` (see `sum`); integers give float64, floats keep their
    /// dtype.
    ///
    /// ```
    /// use tensorlift_ir::{matrix, All, DType};
    /// let x = matrix("x", DType::Int64);
    /// assert_eq!(x.mean(All).dtype(), DType::Float64); // integers average as float64
    /// assert_eq!(x.mean(0).ndim(), 1);
    /// ```
    pub fn mean(&self, axes: impl Axes) -> Var {
        self.mean_keep(axes.into_axes().as_deref(), false)
    }

    /// `mean` keeping the reduced axes as size-1 dimensions.
    ///
    /// ```
    /// use tensorlift_ir::{tensor, DType};
    /// let x = tensor("x", DType::Float32, [Some(2), Some(5)]);
    /// assert_eq!(x.mean_keepdims(1).static_shape(), &[Some(2), Some(1)]);
    /// ```
    pub fn mean_keepdims(&self, axes: impl Axes) -> Var {
        self.mean_keep(axes.into_axes().as_deref(), true)
    }

    fn mean_keep(&self, axes: Option<&[isize]>, keepdims: bool) -> Var {
        var_or_invalid((|| {
            let total = self.reduce_over(ReduceKind::Sum, axes, keepdims);
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

    /// Variance over `axes` (see `sum`), dividing by n (NumPy's `var`, `ddof=0`).
    ///
    /// ```
    /// use tensorlift_ir::{matrix, DType};
    /// let x = matrix("x", DType::Float64);
    /// let (population, sample) = (x.var(1), x.var_ddof(1, 1));
    /// assert_eq!(population.ndim(), sample.ndim());
    /// ```
    pub fn var(&self, axes: impl Axes) -> Var {
        self.variance(axes.into_axes().as_deref(), 0, false)
    }

    /// Variance dividing by `max(n − ddof, 0)` (inf or NaN when `ddof ≥ n`, as NumPy).
    ///
    /// ```
    /// use tensorlift_ir::{vector, All, DType};
    /// let x = vector("x", DType::Float64);
    /// assert_eq!(x.var_ddof(All, 1).ndim(), 0); // the sample variance
    /// ```
    pub fn var_ddof(&self, axes: impl Axes, ddof: usize) -> Var {
        self.variance(axes.into_axes().as_deref(), ddof, false)
    }

    /// `var_ddof` keeping the reduced axes as size-1 dimensions.
    ///
    /// ```
    /// use tensorlift_ir::{tensor, DType};
    /// let x = tensor("x", DType::Float64, [Some(4), Some(3)]);
    /// assert_eq!(x.var_keepdims(0, 0).static_shape(), &[Some(1), Some(3)]);
    /// ```
    pub fn var_keepdims(&self, axes: impl Axes, ddof: usize) -> Var {
        self.variance(axes.into_axes().as_deref(), ddof, true)
    }

    /// Standard deviation: `sqrt(var)` (`ddof=0`).
    ///
    /// ```
    /// use tensorlift_ir::{matrix, DType};
    /// let x = matrix("x", DType::Float64);
    /// assert_eq!(x.std([0, 1]).ndim(), 0);
    /// ```
    pub fn std(&self, axes: impl Axes) -> Var {
        self.var(axes).sqrt()
    }

    /// Standard deviation with `ddof` delta degrees of freedom: `sqrt(var_ddof)`.
    ///
    /// ```
    /// use tensorlift_ir::{matrix, DType};
    /// let x = matrix("x", DType::Float64);
    /// assert_eq!(x.std_ddof(1, 1).ndim(), 1);
    /// ```
    pub fn std_ddof(&self, axes: impl Axes, ddof: usize) -> Var {
        self.var_ddof(axes, ddof).sqrt()
    }

    /// `std_ddof` keeping the reduced axes as size-1 dimensions.
    ///
    /// ```
    /// use tensorlift_ir::{tensor, DType};
    /// let x = tensor("x", DType::Float64, [Some(4), Some(3)]);
    /// assert_eq!(x.std_keepdims(1, 1).static_shape(), &[Some(4), Some(1)]);
    /// ```
    pub fn std_keepdims(&self, axes: impl Axes, ddof: usize) -> Var {
        self.var_keepdims(axes, ddof).sqrt()
    }

    fn variance(&self, axes: Option<&[isize]>, ddof: usize, keepdims: bool) -> Var {
        var_or_invalid((|| {
            let centered = self - self.mean_keep(axes, true);
            let total = centered.sqr().reduce_over(ReduceKind::Sum, axes, keepdims);
            // NumPy divides by max(n - ddof, 0): inf or NaN when ddof >= n.
            let n = (self.count(axes)? - ddof as i64).maximum(0);
            Ok(&total / n.cast(total.dtype()))
        })())
    }

    /// exp(x) / sum(exp(x)) along `axis`, as one op computed in the max-shifted stable
    /// form (exp(x − max) / Σ exp(x − max)). Integers give the float dtype `exp` would.
    ///
    /// ```
    /// use tensorlift_ir::{matrix, DType};
    /// let x = matrix("x", DType::Float32);
    /// let p = x.softmax(-1); // each row sums to 1
    /// assert_eq!(p.ty(), x.ty());
    /// assert_eq!(matrix("i", DType::Int64).softmax(0).dtype(), DType::Float64);
    /// ```
    pub fn softmax(&self, axis: isize) -> Var {
        var_or_invalid(
            normalize_axis("Softmax", axis, self.ndim())
                .map(|axis| Var::apply1(Op::Softmax { axis }, vec![self.clone()])),
        )
    }

    /// log(softmax(x)) along `axis`: x − logsumexp(x) (kept dimension), stable for any
    /// inputs; integers give the float dtype `exp` would.
    ///
    /// ```
    /// use tensorlift_ir::{matrix, DType};
    /// let x = matrix("x", DType::Float64);
    /// assert_eq!(x.log_softmax(1).ty(), x.ty());
    /// ```
    pub fn log_softmax(&self, axis: isize) -> Var {
        let x = if self.dtype().is_float() {
            self.clone()
        } else {
            self.cast(self.dtype().upgrade_to_float())
        };
        &x - x.reduce(ReduceKind::LogSumExp, axis, true)
    }
}

/// Re-inserts the reduced `axes` (of an `ndim`-dimensional input) as size-1 dimensions.
fn keep_dims(reduced: &Var, axes: &[usize], ndim: usize) -> Var {
    reduced.dimshuffle(&DimShuffle::keep_dims(axes, ndim).new_order)
}

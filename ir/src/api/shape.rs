//! Shape builders: transpose and friends (DimShuffle), reshape, SpecifyShape, Shape,
//! Alloc (`broadcast_to`, `zeros`, `full`), MakeVector, Arange, Join and Split.

use super::{normalize_axis, var_or_invalid, Operand};
use crate::dtype::{promote_all, DType, Literal};
use crate::error::{GraphError, Result};
use crate::ops::{DimShuffle, Op};
use crate::var::Var;
use crate::TensorData;

fn one(op: Op, inputs: Vec<Var>) -> Var {
    Var::apply1(op, inputs)
}

impl Var {
    /// PyTensor's `dimshuffle`: `Some(i)` takes input dimension i, `None` inserts a
    /// broadcastable dimension; unlisted dimensions (static size 1 only) are dropped.
    ///
    /// ```
    /// use tensorlift_ir::{matrix, DType};
    /// let x = matrix("x", DType::Float64);
    /// // x.dimshuffle('x', 1, 0) in PyTensor: a new leading axis, then the transpose.
    /// assert_eq!(x.dimshuffle(&[None, Some(1), Some(0)]).ndim(), 3);
    /// ```
    pub fn dimshuffle(&self, new_order: &[Option<usize>]) -> Var {
        one(
            Op::DimShuffle(DimShuffle {
                input_ndim: self.ndim(),
                new_order: new_order.to_vec(),
            }),
            vec![self.clone()],
        )
    }

    /// Reverses the dimensions (NumPy's `.T`); a sparse matrix gives its sparse transpose.
    ///
    /// ```
    /// use tensorlift_ir::{tensor, DType};
    /// let x = tensor("x", DType::Float64, [Some(2), Some(3)]);
    /// assert_eq!(x.t().static_shape(), &[Some(3), Some(2)]);
    /// ```
    pub fn t(&self) -> Var {
        if self.ty().is_sparse() {
            return crate::api::sparse::transpose(self);
        }
        let order: Vec<Option<usize>> = (0..self.ndim()).rev().map(Some).collect();
        self.dimshuffle(&order)
    }

    /// Permutes the dimensions; negative axes count from the end.
    ///
    /// ```
    /// use tensorlift_ir::{tensor, DType};
    /// let x = tensor("x", DType::Float64, [Some(2), Some(3), Some(4)]);
    /// assert_eq!(x.transpose(&[2, 0, 1]).static_shape(), &[Some(4), Some(2), Some(3)]);
    /// assert_eq!(x.transpose(&[0, -1, -2]).static_shape(), &[Some(2), Some(4), Some(3)]);
    /// ```
    pub fn transpose(&self, axes: &[isize]) -> Var {
        let ndim = self.ndim();
        var_or_invalid((|| {
            if axes.len() != ndim {
                return Err(GraphError::op(
                    "Transpose",
                    format!(
                        "needs {ndim} axes for input 0 ({}), got {axes:?}",
                        self.ty()
                    ),
                ));
            }
            let order = axes
                .iter()
                .map(|a| normalize_axis("Transpose", *a, ndim).map(Some))
                .collect::<Result<Vec<_>>>()?;
            Ok(self.dimshuffle(&order))
        })())
    }

    /// Inserts a broadcastable dimension at `axis` (of the result; negative counts from the
    /// end).
    ///
    /// ```
    /// use tensorlift_ir::{tensor, DType};
    /// let x = tensor("x", DType::Float64, [Some(3)]);
    /// assert_eq!(x.expand_dims(0).static_shape(), &[Some(1), Some(3)]);
    /// assert_eq!(x.expand_dims(-1).static_shape(), &[Some(3), Some(1)]);
    /// ```
    pub fn expand_dims(&self, axis: isize) -> Var {
        var_or_invalid(
            normalize_axis("ExpandDims", axis, self.ndim() + 1).map(|a| {
                let mut order: Vec<Option<usize>> = (0..self.ndim()).map(Some).collect();
                order.insert(a, None);
                self.dimshuffle(&order)
            }),
        )
    }

    /// Drops the given dimensions, which must have static size 1; `None` drops all of them.
    ///
    /// ```
    /// use tensorlift_ir::{tensor, DType};
    /// let x = tensor("x", DType::Float64, [Some(1), Some(3), Some(1)]);
    /// assert_eq!(x.squeeze(None).static_shape(), &[Some(3)]);
    /// assert_eq!(x.squeeze(Some(&[0])).static_shape(), &[Some(3), Some(1)]);
    /// assert!(x.squeeze(Some(&[1])).check().is_err()); // size 3 cannot be dropped
    /// ```
    pub fn squeeze(&self, axes: Option<&[isize]>) -> Var {
        let ndim = self.ndim();
        var_or_invalid((|| {
            let drop = match axes {
                Some(a) => super::normalize_axes("DropDims", Some(a), ndim)?,
                None => (0..ndim)
                    .filter(|d| self.static_shape()[*d] == Some(1))
                    .collect(),
            };
            let order: Vec<Option<usize>> =
                (0..ndim).filter(|d| !drop.contains(d)).map(Some).collect();
            Ok(self.dimshuffle(&order))
        })())
    }

    /// Reshape to constant sizes (one may be -1), row-major like NumPy.
    ///
    /// ```
    /// use tensorlift_ir::{tensor, DType};
    /// let x = tensor("x", DType::Float64, [Some(2), Some(6)]);
    /// assert_eq!(x.reshape(&[3, -1]).static_shape(), &[Some(3), Some(4)]);
    /// ```
    pub fn reshape(&self, shape: &[i64]) -> Var {
        let sizes = TensorData::from_vec(&[shape.len()], shape.to_vec());
        var_or_invalid(sizes.map(|s| self.reshape_to(&Var::constant(s))))
    }

    /// Reshape to a symbolic integer vector of static length.
    ///
    /// ```
    /// use tensorlift_ir::{matrix, vector, DType};
    /// let (x, shape) = (matrix("x", DType::Float64), vector("shape", DType::Int64));
    /// assert_eq!(x.reshape_to(&shape.specify_shape(&[Some(3)])).ndim(), 3);
    /// ```
    pub fn reshape_to(&self, shape: &Var) -> Var {
        let ndim = match shape.static_shape() {
            [Some(n)] => *n,
            _ => {
                return Var::invalid(GraphError::op(
                    "Reshape",
                    format!(
                        "the shape (input 1) must be a vector of static length, got {}",
                        shape.ty()
                    ),
                ))
            }
        };
        one(
            Op::Reshape { ndim },
            vec![self.clone(), shape.cast(DType::Int64)],
        )
    }

    /// Flattens to one dimension.
    ///
    /// ```
    /// use tensorlift_ir::{tensor, DType};
    /// let x = tensor("x", DType::Float64, [Some(2), Some(3)]);
    /// assert_eq!(x.flatten().static_shape(), &[Some(6)]);
    /// ```
    pub fn flatten(&self) -> Var {
        self.reshape(&[-1])
    }

    /// Asserts static sizes (checked at run time) and refines the type.
    ///
    /// ```
    /// use tensorlift_ir::{matrix, DType};
    /// let x = matrix("x", DType::Float64);
    /// assert_eq!(x.specify_shape(&[None, Some(3)]).static_shape(), &[None, Some(3)]);
    /// ```
    pub fn specify_shape(&self, shape: &[Option<usize>]) -> Var {
        one(Op::SpecifyShape(shape.to_vec()), vec![self.clone()])
    }

    /// The shape as an int64 vector.
    ///
    /// ```
    /// use tensorlift_ir::{matrix, DType};
    /// let x = matrix("x", DType::Float64);
    /// assert_eq!(x.shape().static_shape(), &[Some(2)]);
    /// assert_eq!(x.shape().dtype(), DType::Int64);
    /// ```
    pub fn shape(&self) -> Var {
        one(Op::Shape, vec![self.clone()])
    }

    /// The size of dimension `axis` as an int64 scalar (a constant when it is static).
    ///
    /// ```
    /// use tensorlift_ir::{tensor, DType};
    /// let x = tensor("x", DType::Float64, [None, Some(3)]);
    /// assert_eq!(x.shape_i(-1).ndim(), 0);
    /// assert_eq!(x.shape_i(0).dtype(), DType::Int64);
    /// ```
    pub fn shape_i(&self, axis: isize) -> Var {
        var_or_invalid(normalize_axis("Shape", axis, self.ndim()).map(
            |a| match self.static_shape()[a] {
                Some(n) => Var::literal(n as i64, DType::Int64),
                None => self.shape().get(crate::idx![a as i64]),
            },
        ))
    }

    /// Broadcasts into `shape` (Alloc). Only dimensions of static size 1 broadcast.
    ///
    /// ```
    /// use tensorlift_ir::{scalar, tensor, DType};
    /// let (row, n) = (tensor("row", DType::Float64, [Some(1), Some(3)]), scalar("n", DType::Int64));
    /// assert_eq!(row.broadcast_to(&[(&n).into(), 3.into()]).static_shape(), &[None, Some(3)]);
    /// ```
    pub fn broadcast_to(&self, shape: &[Operand]) -> Var {
        alloc(self, shape)
    }

    /// NumPy's `repeat`: each element `n` times in a row along `axis` (`None` / `All`: of
    /// the flattened tensor).
    ///
    /// ```
    /// use tensorlift_ir::{tensor, All, DType};
    /// let x = tensor("x", DType::Float64, [Some(2), Some(3)]);
    /// assert_eq!(x.repeat(2, 1).static_shape(), &[Some(2), Some(6)]);
    /// assert_eq!(x.repeat(3, All).static_shape(), &[Some(18)]);
    /// ```
    pub fn repeat(&self, n: usize, axis: impl super::axes::AxisOrAll) -> Var {
        var_or_invalid((|| {
            self.check()?;
            let (x, axis) = match axis.into_axis() {
                None => (self.flatten(), 0),
                Some(a) => (
                    self.clone(),
                    super::normalize_axis("Repeat", a, self.ndim())?,
                ),
            };
            // x with a new axis after `axis`, broadcast to n there, then the two merged.
            let mut order: Vec<Option<usize>> = (0..x.ndim()).map(Some).collect();
            order.insert(axis + 1, None);
            let mut spread = shape_of(&x);
            spread.insert(axis + 1, (n as i64).into());
            Ok(merge_axes(
                &alloc(x.dimshuffle(&order), &spread),
                &x,
                &[(axis, n)],
            ))
        })())
    }
}

/// NumPy's `tile`: x repeated `reps[i]` times along axis i (x gains leading axes of size 1
/// when `reps` is longer than its rank, as NumPy's does; shorter `reps` apply to x's last
/// axes).
///
/// ```
/// use tensorlift_ir::{tensor, tile, DType};
/// let x = tensor("x", DType::Float64, [Some(2), Some(3)]);
/// assert_eq!(tile(&x, &[2, 1]).static_shape(), &[Some(4), Some(3)]);
/// assert_eq!(tile(&x, &[2]).static_shape(), &[Some(2), Some(6)]);
/// assert_eq!(tile(&x, &[2, 1, 1]).static_shape(), &[Some(2), Some(2), Some(3)]);
/// ```
pub fn tile(x: &Var, reps: &[usize]) -> Var {
    var_or_invalid((|| {
        x.check()?;
        let rank = x.ndim().max(reps.len());
        let mut x = x.clone();
        while x.ndim() < rank {
            x = x.expand_dims(0);
        }
        let mut reps = reps.to_vec();
        while reps.len() < rank {
            reps.insert(0, 1);
        }
        // x with a new axis before each of its own, broadcast to the repetitions there,
        // then each pair merged.
        let order: Vec<Option<usize>> = (0..rank).flat_map(|d| [None, Some(d)]).collect();
        let sizes = shape_of(&x);
        let spread: Vec<Operand> = reps
            .iter()
            .zip(sizes)
            .flat_map(|(r, s)| [(*r as i64).into(), s])
            .collect();
        let factors: Vec<(usize, usize)> = reps.iter().copied().enumerate().collect();
        Ok(merge_axes(
            &alloc(x.dimshuffle(&order), &spread),
            &x,
            &factors,
        ))
    })())
}

/// `spread` reshaped to x's shape with axis `a` multiplied by `n` for each `(a, n)`: to
/// constant sizes when x's are static (the result keeps them), else to a symbolic shape.
fn merge_axes(spread: &Var, x: &Var, factors: &[(usize, usize)]) -> Var {
    let factor = |d: usize| factors.iter().find(|(a, _)| *a == d).map_or(1, |(_, n)| *n);
    let fixed: Option<Vec<i64>> = x
        .static_shape()
        .iter()
        .enumerate()
        .map(|(d, s)| s.map(|s| (s * factor(d)) as i64))
        .collect();
    if let Some(sizes) = fixed {
        return spread.reshape(&sizes);
    }
    let sizes: Vec<Operand> = (0..x.ndim())
        .map(|d| (x.shape_i(d as isize) * factor(d) as i64).into())
        .collect();
    spread.reshape_to(&make_vector(&sizes))
}

/// `Alloc`: `value` broadcast into `shape` (literal or symbolic integer sizes).
///
/// ```
/// use tensorlift_ir::{alloc, scalar, vector, DType};
/// let (x, n) = (vector("x", DType::Float64), scalar("n", DType::Int64));
/// // x of shape (k,) repeated in n rows: (n, k); a size of x must equal the target's.
/// assert_eq!(alloc(&x.get(tensorlift_ir::idx![..1]), &[(&n).into(), 3.into()]).ndim(), 2);
/// assert_eq!(alloc(0.5, &[2.into(), 3.into()]).ty().to_string(), "Matrix(float64, shape=(2, 3))");
/// ```
pub fn alloc(value: impl Into<Operand>, shape: &[Operand]) -> Var {
    let mut inputs = vec![value.into().into_var()];
    inputs.extend(
        shape
            .iter()
            .map(|s| s.clone().into_var().cast(DType::Int64)),
    );
    one(Op::Alloc, inputs)
}

/// A tensor of `shape` filled with `value` in `dtype`.
///
/// ```
/// use tensorlift_ir::{full, DType};
/// assert_eq!(full(&[2.into()], 7, DType::Int8).ty().to_string(), "Vector(int8, shape=(2,))");
/// ```
pub fn full(shape: &[Operand], value: impl Into<crate::Literal>, dtype: DType) -> Var {
    alloc(Var::literal(value.into(), dtype), shape)
}

/// The sizes of x's dimensions as operands (constants where static).
pub(crate) fn shape_of(x: &Var) -> Vec<Operand> {
    (0..x.ndim() as isize)
        .map(|d| x.shape_i(d).into())
        .collect()
}

/// A tensor of x's shape and dtype filled with `value` (NumPy's `full_like`); static sizes
/// stay static.
///
/// ```
/// use tensorlift_ir::{full_like, tensor, DType};
/// let x = tensor("x", DType::Int32, [None, Some(3)]);
/// let sevens = full_like(&x, 7);
/// assert_eq!(sevens.ty(), x.ty());
/// ```
pub fn full_like(x: &Var, value: impl Into<crate::Literal>) -> Var {
    full(&shape_of(x), value, x.dtype())
}

/// Zeros of x's shape and dtype (NumPy's `zeros_like`).
///
/// ```
/// use tensorlift_ir::{tensor, zeros_like, DType};
/// let x = tensor("x", DType::Float32, [Some(2), None]);
/// assert_eq!(zeros_like(&x).ty(), x.ty());
/// ```
pub fn zeros_like(x: &Var) -> Var {
    full_like(x, 0i64)
}

/// Ones of x's shape and dtype (NumPy's `ones_like`).
///
/// ```
/// use tensorlift_ir::{ones_like, vector, DType};
/// let x = vector("x", DType::Bool);
/// assert_eq!(ones_like(&x).ty(), x.ty());
/// ```
pub fn ones_like(x: &Var) -> Var {
    full_like(x, 1i64)
}

/// A tensor of zeros.
///
/// ```
/// use tensorlift_ir::{zeros, DType};
/// assert_eq!(zeros(&[3.into(), 4.into()], DType::Float32).ndim(), 2);
/// ```
pub fn zeros(shape: &[Operand], dtype: DType) -> Var {
    full(shape, 0i64, dtype)
}

/// A tensor of ones.
///
/// ```
/// use tensorlift_ir::{ones, scalar, DType};
/// let n = scalar("n", DType::Int64);
/// assert_eq!(ones(&[(&n).into()], DType::Float64).ty().to_string(), "Vector(float64, shape=(?,))");
/// ```
pub fn ones(shape: &[Operand], dtype: DType) -> Var {
    full(shape, 1i64, dtype)
}

/// A vector from scalars (promoted to a common dtype).
///
/// ```
/// use tensorlift_ir::{make_vector, scalar, DType};
/// let a = scalar("a", DType::Int32);
/// assert_eq!(make_vector(&[(&a).into(), 2.into()]).ty().to_string(), "Vector(int32, shape=(2,))");
/// ```
pub fn make_vector(items: &[Operand]) -> Var {
    var_or_invalid((|| {
        let vars = Operand::resolve_all(items.to_vec())?;
        let dtype = promote_all(vars.iter().map(|v| v.dtype())).unwrap_or(DType::Int64);
        let vars = vars.iter().map(|v| v.cast(dtype)).collect();
        Ok(one(Op::MakeVector(dtype), vars))
    })())
}

/// NumPy's `linspace(start, stop, num)` with its endpoint: `num` evenly spaced float64
/// values from `start` to `stop` (each a Rust number or a scalar `Var`), computed as
/// `start + i · step` with the last value exactly `stop`, as NumPy does.
///
/// ```
/// use tensorlift_ir::{linspace, scalar, DType};
/// assert_eq!(linspace(0.0, 1.0, 5).ty().to_string(), "Vector(float64, shape=(5,))");
/// let hi = scalar("hi", DType::Float64);
/// assert_eq!(linspace(-1, &hi, 3).static_shape(), &[Some(3)]);
/// ```
pub fn linspace(start: impl Into<Operand>, stop: impl Into<Operand>, num: usize) -> Var {
    let as_float = |o: Operand| o.into_var().cast(DType::Float64);
    let (start, stop) = (as_float(start.into()), as_float(stop.into()));
    let i = arange(num as i64).cast(DType::Float64);
    if num < 2 {
        return i * 0.0 + &start;
    }
    let step = (&stop - &start) / (num - 1) as f64;
    let values = i * step + &start;
    values.set(crate::idx![-1], &stop)
}

/// NumPy's `arange`: `arange(stop)`, `arange((start, stop))` or `arange((start, stop,
/// step))`, each bound a Rust number or a scalar `Var`; the dtype is inferred as NumPy
/// does (int64 for integer bounds, float64 when a bound is a float literal, else the
/// promoted dtype of the variables).
///
/// ```
/// use tensorlift_ir::{arange, scalar, DType};
/// assert_eq!(arange(5).ty().to_string(), "Vector(int64, shape=(5,))");
/// assert_eq!(arange((1, 10, 3)).ty().to_string(), "Vector(int64, shape=(3,))");
/// assert_eq!(arange((0.0, 1.0, 0.25)).dtype(), DType::Float64);
/// let n = scalar("n", DType::Int32);
/// assert_eq!(arange(&n).dtype(), DType::Int32);
/// ```
pub fn arange(bounds: impl RangeBounds) -> Var {
    let [start, stop, step] = bounds.into_bounds();
    let parts = [&start, &stop, &step];
    let vars = parts.iter().filter_map(|o| match o {
        Operand::Var(v) => Some(v.dtype()),
        Operand::Lit(_) => None,
    });
    let float_literal = parts
        .iter()
        .any(|o| matches!(o, Operand::Lit(Literal::Float(_))));
    let dtype = match promote_all(vars) {
        Some(d) if d.is_float() => d,
        Some(_) | None if float_literal => DType::Float64,
        Some(d) if d.is_int() => d,
        Some(_) | None => DType::Int64,
    };
    arange_dtype(start, stop, step, dtype)
}

/// The bounds `arange` takes: a stop, `(start, stop)` or `(start, stop, step)`.
pub trait RangeBounds {
    /// `[start, stop, step]`.
    fn into_bounds(self) -> [Operand; 3];
}

macro_rules! stop_only {
    ($($t:ty),*) => {$(
        impl RangeBounds for $t {
            fn into_bounds(self) -> [Operand; 3] {
                [Operand::Lit(Literal::Int(0)), self.into(), Operand::Lit(Literal::Int(1))]
            }
        }
    )*};
}
stop_only!(i32, i64, f64, &Var, Var, Operand);

impl<A: Into<Operand>, B: Into<Operand>> RangeBounds for (A, B) {
    fn into_bounds(self) -> [Operand; 3] {
        [self.0.into(), self.1.into(), Operand::Lit(Literal::Int(1))]
    }
}

impl<A: Into<Operand>, B: Into<Operand>, C: Into<Operand>> RangeBounds for (A, B, C) {
    fn into_bounds(self) -> [Operand; 3] {
        [self.0.into(), self.1.into(), self.2.into()]
    }
}

/// NumPy's `arange(start, stop, step, dtype=dtype)`.
///
/// ```
/// use tensorlift_ir::{arange_dtype, DType};
/// assert_eq!(arange_dtype(0, 4, 2, DType::Float32).ty().to_string(), "Vector(float32, shape=(2,))");
/// ```
pub fn arange_dtype(
    start: impl Into<Operand>,
    stop: impl Into<Operand>,
    step: impl Into<Operand>,
    dtype: DType,
) -> Var {
    let parts = [start.into(), stop.into(), step.into()]
        .into_iter()
        .map(|o| match o {
            Operand::Lit(l) => Var::literal(l, dtype),
            Operand::Var(v) => v.cast(dtype),
        })
        .collect();
    one(Op::Arange(dtype), parts)
}

/// Concatenates along `axis` (dtypes promoted like NumPy); `items` as `&[&a, &b]` or
/// `&[a, b]`.
///
/// ```
/// use tensorlift_ir::{concatenate, matrix, DType};
/// let (a, b) = (matrix("a", DType::Float64), matrix("b", DType::Float32));
/// let ab = concatenate(&[&a, &b], 0);
/// assert_eq!(ab.ty().to_string(), "Matrix(float64, shape=(?, ?))");
/// ```
pub fn concatenate<V: std::borrow::Borrow<Var>>(items: &[V], axis: isize) -> Var {
    let items: Vec<&Var> = items.iter().map(|v| v.borrow()).collect();
    var_or_invalid((|| {
        let first = items
            .first()
            .ok_or_else(|| GraphError::op("Join", "needs at least one input"))?;
        let axis = normalize_axis("Join", axis, first.ndim())?;
        let dtype = promote_all(items.iter().map(|v| v.dtype())).unwrap_or(DType::Float64);
        let vars = items.iter().map(|v| v.cast(dtype)).collect();
        Ok(one(Op::Join { axis }, vars))
    })())
}

/// Stacks along a new axis; `items` as `&[&a, &b]` or `&[a, b]`.
///
/// ```
/// use tensorlift_ir::{stack, vector, DType};
/// let (a, b) = (vector("a", DType::Float64), vector("b", DType::Float64));
/// assert_eq!(stack(&[&a, &b], 0).ndim(), 2);
/// ```
pub fn stack<V: std::borrow::Borrow<Var>>(items: &[V], axis: isize) -> Var {
    let items: Vec<&Var> = items.iter().map(|v| v.borrow()).collect();
    let ndim = items.first().map_or(0, |v| v.ndim());
    var_or_invalid(normalize_axis("Join", axis, ndim + 1).map(|a| {
        let expanded: Vec<Var> = items.iter().map(|v| v.expand_dims(a as isize)).collect();
        concatenate(&expanded, a as isize)
    }))
}

/// Splits along `axis` into pieces of the given sizes (which must add up to the axis size).
///
/// ```
/// use tensorlift_ir::{split, tensor, DType};
/// let x = tensor("x", DType::Float64, [Some(5), Some(2)]);
/// let parts = split(&x, &[2, 3], 0)?;
/// assert_eq!(parts[1].static_shape(), &[Some(3), Some(2)]);
/// # Ok::<(), tensorlift_ir::GraphError>(())
/// ```
pub fn split(x: &Var, sizes: &[i64], axis: isize) -> Result<Vec<Var>> {
    let sizes = Var::constant(TensorData::from_vec(&[sizes.len()], sizes.to_vec())?);
    split_by(x, &sizes, axis)
}

/// Splits along `axis` by a symbolic integer vector of sizes (of static length).
///
/// ```
/// use tensorlift_ir::{split_by, vector, DType};
/// let (x, sizes) = (vector("x", DType::Float64), vector("sizes", DType::Int64));
/// let parts = split_by(&x, &sizes.specify_shape(&[Some(2)]), 0)?;
/// assert_eq!(parts.len(), 2);
/// # Ok::<(), tensorlift_ir::GraphError>(())
/// ```
pub fn split_by(x: &Var, sizes: &Var, axis: isize) -> Result<Vec<Var>> {
    x.check()?;
    let axis = normalize_axis("Split", axis, x.ndim())?;
    let n = match sizes.static_shape() {
        [Some(n)] => *n,
        _ => {
            return Err(GraphError::op(
                "Split",
                format!(
                    "the sizes must be a vector of static length, got {}",
                    sizes.ty()
                ),
            ))
        }
    };
    Var::apply(
        Op::Split { axis, n },
        vec![x.clone(), sizes.cast(DType::Int64)],
    )
}

//! Elemwise builders: `std::ops` operators, math methods on `Var`, `switch` and `clip`.
//!
//! Owns: how operands of an Elemwise are prepared — weak literals take their dtype (NEP 50)
//! and lower-rank operands get broadcastable dimensions on the left (ExpandDims), as in
//! NumPy — before the op's own type inference runs.

use std::ops::{Add, BitAnd, BitOr, BitXor, Div, Mul, Neg, Not, Rem, Sub};

use super::{var_or_invalid, Operand};
use crate::dtype::DType;
use crate::error::Result;
use crate::ops::{DimShuffle, Op, ScalarOp};
use crate::var::Var;

/// Applies a scalar op element by element to the operands.
///
/// ```
/// use tensorlift_ir::{elemwise, vector, DType, ScalarOp};
/// let x = vector("x", DType::Float32);
/// // A weak literal takes x's dtype (NEP 50): float32 stays float32.
/// let y = elemwise(ScalarOp::Add, vec![(&x).into(), 1.0.into()]);
/// assert_eq!(y.ty().to_string(), "Vector(float32, shape=(?,))");
/// ```
pub fn elemwise(op: ScalarOp, operands: Vec<Operand>) -> Var {
    var_or_invalid(try_elemwise(op, operands))
}

/// Like `elemwise`, returning the error at once.
///
/// ```
/// use tensorlift_ir::{tensor, try_elemwise, DType, ScalarOp};
/// let a = tensor("a", DType::Float64, [Some(2)]);
/// let b = tensor("b", DType::Float64, [Some(3)]);
/// // Static sizes 2 and 3 cannot broadcast: the error names the op.
/// let err = try_elemwise(ScalarOp::Mul, vec![(&a).into(), (&b).into()]).unwrap_err();
/// assert!(err.to_string().contains("Mul"), "{err}");
/// ```
pub fn try_elemwise(op: ScalarOp, operands: Vec<Operand>) -> Result<Var> {
    let vars = Operand::resolve_all(operands)?;
    let ndim = vars.iter().map(|v| v.ndim()).max().unwrap_or(0);
    let vars = vars
        .into_iter()
        .map(|v| pad_left(v, ndim))
        .collect::<Result<Vec<_>>>()?;
    Var::apply(Op::Elemwise(op), vars).map(|mut v| v.remove(0))
}

/// Adds broadcastable dimensions on the left until `v` has `ndim` dimensions.
pub(crate) fn pad_left(v: Var, ndim: usize) -> Result<Var> {
    let have = v.ndim();
    if have >= ndim {
        return Ok(v);
    }
    let mut new_order = vec![None; ndim - have];
    new_order.extend((0..have).map(Some));
    let ds = DimShuffle {
        input_ndim: have,
        new_order,
    };
    Var::apply(Op::DimShuffle(ds), vec![v]).map(|mut v| v.remove(0))
}

/// `switch(cond, a, b)`: `a` where `cond` is true, else `b` (NumPy's `where`).
///
/// ```
/// use tensorlift_ir::{switch, vector, DType};
/// let x = vector("x", DType::Float64);
/// let relu = switch(x.gt(0.0), &x, 0.0);
/// assert_eq!(relu.ty(), x.ty());
/// ```
pub fn switch(cond: impl Into<Operand>, a: impl Into<Operand>, b: impl Into<Operand>) -> Var {
    let cond = match cond.into() {
        Operand::Var(v) if v.dtype() != DType::Bool => v.cast(DType::Bool),
        other => other.into_var(),
    };
    elemwise(ScalarOp::Switch, vec![cond.into(), a.into(), b.into()])
}

macro_rules! binary_operator {
    ($trait:ident, $method:ident, $scalar:expr) => {
        impl<R: Into<Operand>> $trait<R> for Var {
            type Output = Var;
            fn $method(self, rhs: R) -> Var {
                elemwise($scalar, vec![self.into(), rhs.into()])
            }
        }
        impl<R: Into<Operand>> $trait<R> for &Var {
            type Output = Var;
            fn $method(self, rhs: R) -> Var {
                elemwise($scalar, vec![self.into(), rhs.into()])
            }
        }
    };
}
binary_operator!(Add, add, ScalarOp::Add);
binary_operator!(Sub, sub, ScalarOp::Sub);
binary_operator!(Mul, mul, ScalarOp::Mul);
binary_operator!(Div, div, ScalarOp::TrueDiv);
binary_operator!(Rem, rem, ScalarOp::Mod);
binary_operator!(BitAnd, bitand, ScalarOp::And);
binary_operator!(BitOr, bitor, ScalarOp::Or);
binary_operator!(BitXor, bitxor, ScalarOp::Xor);

macro_rules! literal_left_operator {
    ($($t:ty),*) => {$(
        literal_left_operator!(@one $t, Add, add, ScalarOp::Add);
        literal_left_operator!(@one $t, Sub, sub, ScalarOp::Sub);
        literal_left_operator!(@one $t, Mul, mul, ScalarOp::Mul);
        literal_left_operator!(@one $t, Div, div, ScalarOp::TrueDiv);
        literal_left_operator!(@one $t, Rem, rem, ScalarOp::Mod);
    )*};
    (@one $t:ty, $trait:ident, $method:ident, $scalar:expr) => {
        impl $trait<Var> for $t {
            type Output = Var;
            fn $method(self, rhs: Var) -> Var {
                elemwise($scalar, vec![self.into(), rhs.into()])
            }
        }
        impl $trait<&Var> for $t {
            type Output = Var;
            fn $method(self, rhs: &Var) -> Var {
                elemwise($scalar, vec![self.into(), rhs.into()])
            }
        }
    };
}
literal_left_operator!(f64, i64);

impl Neg for Var {
    type Output = Var;
    fn neg(self) -> Var {
        elemwise(ScalarOp::Neg, vec![self.into()])
    }
}
impl Neg for &Var {
    type Output = Var;
    fn neg(self) -> Var {
        elemwise(ScalarOp::Neg, vec![self.into()])
    }
}
impl Not for Var {
    type Output = Var;
    fn not(self) -> Var {
        elemwise(ScalarOp::Not, vec![self.into()])
    }
}
impl Not for &Var {
    type Output = Var;
    fn not(self) -> Var {
        elemwise(ScalarOp::Not, vec![self.into()])
    }
}

macro_rules! unary_methods {
    (($dtype:ident) $($(#[$doc:meta])* $name:ident => $op:expr),* $(,)?) => {
        impl Var {
            $(
                $(#[$doc])*
                #[doc = ""]
                #[doc = "```"]
                #[doc = "use tensorlift_ir::{tensor, DType};"]
                #[doc = concat!("let x = tensor(\"x\", DType::", stringify!($dtype), ", [None, Some(3)]);")]
                #[doc = concat!("let y = x.", stringify!($name), "();")]
                #[doc = "assert_eq!(y.static_shape(), x.static_shape()); // element by element"]
                #[doc = "```"]
                pub fn $name(&self) -> Var {
                    elemwise($op, vec![self.into()])
                }
            )*
        }
    };
}
unary_methods! {
    (Float64)
    abs => ScalarOp::Abs,
    sign => ScalarOp::Sign,
    /// x * x.
    sqr => ScalarOp::Sqr,
    floor => ScalarOp::Floor,
    ceil => ScalarOp::Ceil,
    /// Round half to even.
    round => ScalarOp::Round,
    isnan => ScalarOp::IsNan,
    isinf => ScalarOp::IsInf,
    /// 1 / x.
    reciprocal => ScalarOp::Reciprocal,
    exp => ScalarOp::Exp,
    exp2 => ScalarOp::Exp2,
    expm1 => ScalarOp::Expm1,
    log => ScalarOp::Log,
    log2 => ScalarOp::Log2,
    log1p => ScalarOp::Log1p,
    /// log(1 - exp(x)).
    log1mexp => ScalarOp::Log1mexp,
    sqrt => ScalarOp::Sqrt,
    sin => ScalarOp::Sin,
    cos => ScalarOp::Cos,
    tan => ScalarOp::Tan,
    tanh => ScalarOp::Tanh,
    /// 1 / (1 + exp(-x)), exact at ±800.
    sigmoid => ScalarOp::Sigmoid,
    /// log(1 + exp(x)), exact at ±800.
    softplus => ScalarOp::Softplus,
    erf => ScalarOp::Erf,
    erfc => ScalarOp::Erfc,
    /// log |Γ(x)|.
    gammaln => ScalarOp::Gammaln,
    /// ψ(x), the derivative of gammaln.
    digamma => ScalarOp::Digamma,
}
unary_methods! {
    (Bool)
    /// Logical not for bool, bitwise not for integers.
    logical_not => ScalarOp::Not,
}

macro_rules! binary_methods {
    (($dtype:ident, $literal:literal) $($(#[$doc:meta])* $name:ident => $op:expr),* $(,)?) => {
        impl Var {
            $(
                $(#[$doc])*
                #[doc = ""]
                #[doc = "```"]
                #[doc = "use tensorlift_ir::{tensor, DType};"]
                #[doc = concat!("let x = tensor(\"x\", DType::", stringify!($dtype), ", [None, Some(3)]);")]
                #[doc = concat!("let row = tensor(\"row\", DType::", stringify!($dtype), ", [Some(1), Some(3)]);")]
                #[doc = "// Broadcasts along the row's size-1 axis; a literal is weak (NEP 50)."]
                #[doc = concat!("assert_eq!(x.", stringify!($name), "(&row).static_shape(), x.static_shape());")]
                #[doc = concat!("assert_eq!(x.", stringify!($name), "(", stringify!($literal), ").static_shape(), x.static_shape());")]
                #[doc = "```"]
                pub fn $name(&self, other: impl Into<Operand>) -> Var {
                    elemwise($op, vec![self.into(), other.into()])
                }
            )*
        }
    };
}
binary_methods! {
    (Float64, 2.0)
    pow => ScalarOp::Pow,
    /// Floor division (`//`).
    floor_div => ScalarOp::IntDiv,
    /// Element-wise maximum; NaN propagates.
    maximum => ScalarOp::Maximum,
    /// Element-wise minimum; NaN propagates.
    minimum => ScalarOp::Minimum,
    equal => ScalarOp::Eq,
    not_equal => ScalarOp::Neq,
    lt => ScalarOp::Lt,
    le => ScalarOp::Le,
    gt => ScalarOp::Gt,
    ge => ScalarOp::Ge,
}
binary_methods! {
    (Bool, true)
    logical_and => ScalarOp::And,
    logical_or => ScalarOp::Or,
    logical_xor => ScalarOp::Xor,
}

impl Var {
    /// Converts to another dtype (NumPy `astype`); a no-op when the dtype is already right.
    ///
    /// ```
    /// use tensorlift_ir::{vector, DType};
    /// let x = vector("x", DType::Int64);
    /// assert_eq!(x.cast(DType::Float32).dtype(), DType::Float32);
    /// ```
    pub fn cast(&self, dtype: DType) -> Var {
        if self.dtype() == dtype && self.error().is_none() {
            return self.clone();
        }
        elemwise(ScalarOp::Cast(dtype), vec![self.into()])
    }

    /// min(max(x, lo), hi).
    ///
    /// ```
    /// use tensorlift_ir::{vector, DType};
    /// let x = vector("x", DType::Float64);
    /// assert_eq!(x.clip(0.0, 1.0).ty(), x.ty());
    /// ```
    pub fn clip(&self, lo: impl Into<Operand>, hi: impl Into<Operand>) -> Var {
        elemwise(ScalarOp::Clip, vec![self.into(), lo.into(), hi.into()])
    }
}

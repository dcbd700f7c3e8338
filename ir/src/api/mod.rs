//! The graph-building API: create inputs and constants, and combine variables with
//! operators and methods that read like NumPy.
//!
//! Owns: `tensor`/`scalar`/... constructors, `Operand` (a variable or a weak Rust literal),
//! axis normalisation, and the submodules that add methods to `Var` per op family. Every
//! builder returns a `Var`; a type error gives an invalid `Var` (see `var`), never a panic.

pub mod axes;
pub mod checks;
pub mod elemwise;
pub mod graph;
pub mod ifelse;
pub mod index;
pub mod linalg;
pub mod random;
pub mod reduce;
pub mod scan;
pub mod shape;
pub mod sparse;

use crate::data::TensorData;
use crate::dtype::{promote_all, DType, Literal};
use crate::error::{GraphError, Result};
use crate::types::TensorType;
use crate::var::Var;

/// A graph input of the given dtype and static shape (`None` = unknown size; a size of 1
/// broadcasts).
///
/// ```
/// use tensorlift_ir::{tensor, DType};
/// let x = tensor("x", DType::Float64, [None, Some(3)]);
/// assert_eq!(x.ty().to_string(), "Matrix(float64, shape=(?, 3))");
/// ```
pub fn tensor(name: &str, dtype: DType, shape: impl Into<Vec<Option<usize>>>) -> Var {
    Var::input(name, TensorType::new(dtype, shape))
}

/// A 0-d graph input.
///
/// ```
/// use tensorlift_ir::{scalar, DType};
/// assert_eq!(scalar("a", DType::Float32).ty().to_string(), "Scalar(float32, shape=())");
/// ```
pub fn scalar(name: &str, dtype: DType) -> Var {
    tensor(name, dtype, vec![])
}

/// A 1-d graph input of unknown length.
///
/// ```
/// use tensorlift_ir::{vector, DType};
/// assert_eq!(vector("v", DType::Int64).ty().to_string(), "Vector(int64, shape=(?,))");
/// ```
pub fn vector(name: &str, dtype: DType) -> Var {
    tensor(name, dtype, vec![None])
}

/// A 2-d graph input of unknown shape.
///
/// ```
/// use tensorlift_ir::{matrix, DType};
/// assert_eq!(matrix("m", DType::Bool).ndim(), 2);
/// ```
pub fn matrix(name: &str, dtype: DType) -> Var {
    tensor(name, dtype, vec![None, None])
}

/// A constant from any ndarray array or `TensorData`.
///
/// ```
/// use tensorlift_ir::{constant, DType};
/// let c = constant(ndarray::array![1.0f32, 2.0]);
/// assert_eq!(c.ty().to_string(), "Vector(float32, shape=(2,))");
/// assert_eq!(constant(0.5).ty().to_string(), "Scalar(float64, shape=())");
/// assert_eq!(constant(3i32).dtype(), DType::Int32);
/// ```
pub fn constant(value: impl Into<TensorData>) -> Var {
    Var::constant(value)
}

/// Either a variable or a Rust literal. Literals are weak (NEP 50): next to a tensor they
/// take its dtype when their kind is not higher and their value fits.
#[derive(Clone, Debug)]
pub enum Operand {
    Var(Var),
    Lit(Literal),
}

impl From<Var> for Operand {
    fn from(v: Var) -> Self {
        Operand::Var(v)
    }
}
impl From<&Var> for Operand {
    fn from(v: &Var) -> Self {
        Operand::Var(v.clone())
    }
}
macro_rules! operand_from_literal {
    ($($t:ty),*) => {$(
        impl From<$t> for Operand {
            fn from(v: $t) -> Self {
                Operand::Lit(Literal::from(v))
            }
        }
    )*};
}
operand_from_literal!(bool, f32, f64, i8, i16, i32, i64, u8, u16, u32);

impl From<Literal> for Operand {
    fn from(v: Literal) -> Self {
        Operand::Lit(v)
    }
}
impl From<usize> for Operand {
    fn from(v: usize) -> Self {
        Operand::Lit(Literal::Int(v as i64))
    }
}
impl From<isize> for Operand {
    fn from(v: isize) -> Self {
        Operand::Lit(Literal::Int(v as i64))
    }
}

impl Operand {
    /// Turns the operands into variables: literals take their weak dtype next to the
    /// promoted dtype of the variables (their default dtype when there is none).
    ///
    /// ```
    /// use tensorlift_ir::{vector, DType, Operand};
    /// let x = vector("x", DType::Float32);
    /// let vars = Operand::resolve_all(vec![(&x).into(), 2.5.into()])?;
    /// assert_eq!(vars[1].dtype(), DType::Float32); // a weak literal next to float32
    /// # Ok::<(), tensorlift_ir::GraphError>(())
    /// ```
    pub fn resolve_all(operands: Vec<Operand>) -> Result<Vec<Var>> {
        for op in &operands {
            if let Operand::Var(v) = op {
                v.check()?;
            }
        }
        let tensor_dtype = promote_all(operands.iter().filter_map(|o| match o {
            Operand::Var(v) => Some(v.dtype()),
            Operand::Lit(_) => None,
        }));
        operands
            .into_iter()
            .map(|o| match o {
                Operand::Var(v) => Ok(v),
                Operand::Lit(lit) => {
                    let dtype = match tensor_dtype {
                        Some(t) => lit.dtype_next_to(t)?,
                        None => lit.default_dtype(),
                    };
                    Ok(Var::literal(lit, dtype))
                }
            })
            .collect()
    }

    /// The operand as a variable on its own (literals take their default dtype).
    ///
    /// ```
    /// use tensorlift_ir::{DType, Operand};
    /// assert_eq!(Operand::from(2.5).into_var().dtype(), DType::Float64);
    /// assert_eq!(Operand::from(3).into_var().dtype(), DType::Int64);
    /// ```
    pub fn into_var(self) -> Var {
        match self {
            Operand::Var(v) => v,
            Operand::Lit(lit) => Var::literal(lit, lit.default_dtype()),
        }
    }
}

/// Normalises a possibly negative axis for a tensor of `ndim` dimensions.
pub(crate) fn normalize_axis(op: &str, axis: isize, ndim: usize) -> Result<usize> {
    let n = ndim as isize;
    let a = if axis < 0 { axis + n } else { axis };
    if (0..n).contains(&a) {
        Ok(a as usize)
    } else {
        Err(GraphError::op(
            op,
            format!("axis {axis} is out of range for a tensor with {ndim} dimensions"),
        ))
    }
}

/// Normalises, sorts and de-duplicates axes; `None` means every axis.
pub(crate) fn normalize_axes(op: &str, axes: Option<&[isize]>, ndim: usize) -> Result<Vec<usize>> {
    let mut out = match axes {
        None => (0..ndim).collect::<Vec<_>>(),
        Some(list) => list
            .iter()
            .map(|a| normalize_axis(op, *a, ndim))
            .collect::<Result<Vec<_>>>()?,
    };
    out.sort_unstable();
    let before = out.len();
    out.dedup();
    if out.len() != before {
        return Err(GraphError::op(op, format!("repeated axis in {axes:?}")));
    }
    Ok(out)
}

/// Unwraps a builder result into a `Var`, turning an error into an invalid variable.
pub(crate) fn var_or_invalid(result: Result<Var>) -> Var {
    result.unwrap_or_else(Var::invalid)
}

//! Scalar ops: the per-element functions an `Elemwise` applies, with their arity and dtype
//! rules.
//!
//! Owns: `ScalarOp`, how many inputs each takes, the dtype every input is cast to before the
//! op computes (`input_dtypes`) and the output dtype. Backends compute in exactly those dtypes,
//! so the reference interpreter and the JIT agree. Must not: compute anything.

use std::fmt;

use crate::dtype::{promote_all, DType};

/// A scalar function applied element by element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScalarOp {
    // Unary, same dtype out as in.
    Identity,
    Neg,
    Abs,
    Sign,
    Sqr,
    Floor,
    Ceil,
    /// Round half to even (NumPy's `round`).
    Round,
    /// Logical not for bool, bitwise not for integers.
    Not,
    // Unary, bool out.
    IsNan,
    IsInf,
    /// Conversion to another dtype (NumPy's `astype`).
    Cast(DType),
    // Unary math, float out (`DType::upgrade_to_float`).
    Reciprocal,
    Exp,
    Exp2,
    Expm1,
    Log,
    Log2,
    Log1p,
    /// log(1 - exp(x)), accurate for x near 0 and very negative x.
    Log1mexp,
    Sqrt,
    Sin,
    Cos,
    Tan,
    Tanh,
    Sigmoid,
    Softplus,
    Erf,
    Erfc,
    Gammaln,
    /// ψ(x) = d/dx log Γ(x) (the derivative of gammaln).
    Digamma,
    // Binary (Add and Mul take two or more inputs).
    Add,
    Sub,
    Mul,
    /// `/`: true division, integers give float64.
    TrueDiv,
    /// `//`: floor division.
    IntDiv,
    /// `%`: remainder with the divisor's sign.
    Mod,
    Pow,
    Maximum,
    Minimum,
    Eq,
    Neq,
    Lt,
    Le,
    Gt,
    Ge,
    /// Logical and for bool, bitwise and for integers.
    And,
    Or,
    Xor,
    // Ternary.
    /// switch(cond, a, b): a where cond is true, else b.
    Switch,
    /// clip(x, lo, hi) = min(max(x, lo), hi).
    Clip,
}

/// How many inputs a scalar op takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    Exactly(usize),
    AtLeast(usize),
}

impl Arity {
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exactly(k) => n == k,
            Arity::AtLeast(k) => n >= k,
        }
    }
}

impl ScalarOp {
    pub fn arity(self) -> Arity {
        use ScalarOp::*;
        match self {
            Add | Mul => Arity::AtLeast(2),
            Sub | TrueDiv | IntDiv | Mod | Pow | Maximum | Minimum | Eq | Neq | Lt | Le | Gt
            | Ge | And | Or | Xor => Arity::Exactly(2),
            Switch | Clip => Arity::Exactly(3),
            Identity | Neg | Abs | Sign | Sqr | Floor | Ceil | Round | Not | IsNan | IsInf
            | Cast(_) | Reciprocal | Exp | Exp2 | Expm1 | Log | Log2 | Log1p | Log1mexp | Sqrt
            | Sin | Cos | Tan | Tanh | Sigmoid | Softplus | Erf | Erfc | Gammaln | Digamma => {
                Arity::Exactly(1)
            }
        }
    }

    /// The dtype each input is cast to before the op computes, and the output dtype.
    /// An `Err` says why the op does not accept these dtypes.
    pub fn signature(self, inputs: &[DType]) -> Result<(Vec<DType>, DType), String> {
        use ScalarOp::*;
        if !self.arity().accepts(inputs.len()) {
            return Err(format!(
                "takes {:?} inputs, got {}",
                self.arity(),
                inputs.len()
            ));
        }
        let promoted = promote_all(inputs.iter().copied()).unwrap_or(DType::Float64);
        let same = |d: DType| (vec![d; inputs.len()], d);
        let forbid = |cond: bool, what: &str| -> Result<(), String> {
            if cond {
                Err(format!(
                    "is not defined for {what} inputs ({})",
                    dtypes(inputs)
                ))
            } else {
                Ok(())
            }
        };
        Ok(match self {
            Identity | Abs | Sqr | Floor | Ceil | Round => same(promoted),
            Neg | Sign => {
                forbid(promoted == DType::Bool, "bool")?;
                same(promoted)
            }
            Not => {
                forbid(promoted.is_float(), "float")?;
                same(promoted)
            }
            IsNan | IsInf => (vec![promoted], DType::Bool),
            Cast(to) => (vec![promoted], to),
            Reciprocal | Exp | Exp2 | Expm1 | Log | Log2 | Log1p | Log1mexp | Sqrt | Sin | Cos
            | Tan | Tanh | Sigmoid | Softplus | Erf | Erfc | Gammaln | Digamma => {
                same(promoted.upgrade_to_float())
            }
            Add | Mul | Maximum | Minimum | Clip => same(promoted),
            Sub => {
                forbid(promoted == DType::Bool, "bool (use xor)")?;
                same(promoted)
            }
            IntDiv | Mod | Pow => {
                forbid(promoted == DType::Bool, "bool")?;
                same(promoted)
            }
            TrueDiv => {
                let out = if promoted.is_float() {
                    promoted
                } else {
                    DType::Float64
                };
                same(out)
            }
            Eq | Neq | Lt | Le | Gt | Ge => (vec![promoted; 2], DType::Bool),
            And | Or | Xor => {
                forbid(promoted.is_float(), "float")?;
                same(promoted)
            }
            Switch => {
                let out = promote_all(inputs[1..].iter().copied()).unwrap_or(DType::Float64);
                (vec![DType::Bool, out, out], out)
            }
        })
    }

    /// The name printed by dprint.
    pub fn name(self) -> String {
        match self {
            ScalarOp::Cast(d) => format!("Cast{{{d}}}"),
            other => format!("{other:?}"),
        }
    }
}

fn dtypes(inputs: &[DType]) -> String {
    inputs
        .iter()
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for ScalarOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DType::*;

    #[test]
    fn dtype_rules() {
        assert_eq!(ScalarOp::Exp.signature(&[Int8]).unwrap().1, Float32);
        assert_eq!(ScalarOp::Exp.signature(&[Int64]).unwrap().1, Float64);
        assert_eq!(
            ScalarOp::TrueDiv.signature(&[Int8, Int8]).unwrap().1,
            Float64
        );
        assert_eq!(
            ScalarOp::TrueDiv.signature(&[Float32, Int8]).unwrap().1,
            Float32
        );
        assert_eq!(
            ScalarOp::Lt.signature(&[Int8, Float32]).unwrap(),
            (vec![Float32; 2], Bool)
        );
        let (casts, out) = ScalarOp::Switch.signature(&[Int8, Int16, Float32]).unwrap();
        assert_eq!((casts, out), (vec![Bool, Float32, Float32], Float32));
        assert!(ScalarOp::Sub.signature(&[Bool, Bool]).is_err());
        assert!(ScalarOp::And.signature(&[Float64, Bool]).is_err());
        assert!(ScalarOp::Add.signature(&[Float64]).is_err());
        assert_eq!(ScalarOp::Add.signature(&[Int8; 3]).unwrap().1, Int8);
    }
}

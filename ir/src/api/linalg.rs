//! Linear-algebra builders: `dot` / `matmul` (NumPy `dot` for 1-d and 2-d operands; dtypes
//! promoted like NumPy).

use super::var_or_invalid;
use crate::dtype::promote;
use crate::ops::Op;
use crate::var::Var;

impl Var {
    /// NumPy's `dot` for vectors and matrices.
    pub fn dot(&self, other: &Var) -> Var {
        var_or_invalid((|| {
            self.check()?;
            other.check()?;
            let dtype = promote(self.dtype(), other.dtype());
            Ok(Var::apply1(
                Op::Dot,
                vec![self.cast(dtype), other.cast(dtype)],
            ))
        })())
    }

    /// Matrix product; for 1-d and 2-d operands the same as `dot`.
    pub fn matmul(&self, other: &Var) -> Var {
        self.dot(other)
    }
}

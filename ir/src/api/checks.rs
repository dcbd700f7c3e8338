//! Run-time assertions: `x.check_that(conditions, message)` builds `CheckAndRaise`.

use super::var_or_invalid;
use crate::dtype::DType;
use crate::ops::Op;
use crate::var::Var;

impl Var {
    /// `x`, after checking at run time that every condition is true everywhere; otherwise
    /// the call fails with `message`. Non-bool conditions are compared with zero.
    ///
    /// ```
    /// use tensorlift_ir::{vector, All, DType};
    /// let x = vector("x", DType::Float64);
    /// let checked = x.check_that(&[x.sum(All).ge(0.0)], "x must not sum below 0");
    /// assert_eq!(checked.ty(), x.ty()); // x itself, once the check passes
    /// ```
    pub fn check_that(&self, conditions: &[Var], message: &str) -> Var {
        var_or_invalid((|| {
            self.check()?;
            let mut inputs = vec![self.clone()];
            for c in conditions {
                c.check()?;
                inputs.push(c.cast(DType::Bool));
            }
            Ok(Var::apply1(
                Op::CheckAndRaise {
                    message: message.to_string(),
                },
                inputs,
            ))
        })())
    }
}

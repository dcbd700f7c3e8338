//! The Jacobian of a vector or scalar with respect to variables, row by row: a scan over
//! the output's elements whose step takes the gradient of one element (PyTensor's
//! `jacobian`). The rows are a state written at each step and read through its trace.

use super::{grad_with, zeros_like, Disconnected, GradOptions};
use crate::api::index::Idx;
use crate::api::scan::scan;
use crate::api::shape::arange;
use crate::error::{GraphError, Result};
use crate::var::Var;

/// Per variable of `wrt`, the Jacobian of `y` (a float vector, or a scalar) with respect
/// to it: `(len(y), *x.shape)`, or x's shape for a scalar `y`. Elements of y that do not
/// depend on a variable give zero rows.
///
/// ```
/// use tensorlift_ir::{jacobian, vector, DType};
/// let x = vector("x", DType::Float64);
/// let j = jacobian(&x.sin(), &[&x]).unwrap();
/// assert_eq!(j[0].ndim(), 2);
/// ```
pub fn jacobian(y: &Var, wrt: &[&Var]) -> Result<Vec<Var>> {
    y.check()?;
    let options = GradOptions {
        disconnected: Disconnected::Zero,
        lazy: false,
        ..GradOptions::default()
    };
    match y.ndim() {
        0 => grad_with(Some(y), wrt, &options)?
            .into_iter()
            .map(|g| g.ok_or_else(|| GraphError::Internal("jacobian: a row is missing".into())))
            .collect(),
        1 => {
            let rows_of = |i: &Var| -> Result<Vec<Var>> {
                let element = y.get(vec![Idx::At(i.into())]);
                grad_with(Some(&element), wrt, &options)?
                    .into_iter()
                    .map(|g| {
                        g.ok_or_else(|| GraphError::Internal("jacobian: a row is missing".into()))
                    })
                    .collect()
            };
            let zeros: Vec<Var> = wrt.iter().map(|x| zeros_like(x)).collect();
            let zero_refs: Vec<&Var> = zeros.iter().collect();
            let mut failure = None;
            let rows = scan(|s| match rows_of(&s.sequence(0)) {
                Ok(rows) => rows,
                Err(e) => {
                    failure = Some(e.clone());
                    vec![Var::invalid(e); wrt.len()]
                }
            })
            .sequences(&[&arange(y.shape_i(0))])
            .states(&zero_refs)
            .build();
            if let Some(e) = failure {
                return Err(e);
            }
            rows.check()?;
            Ok((0..wrt.len()).map(|k| rows.trace(k)).collect())
        }
        n => Err(GraphError::op(
            "jacobian",
            format!("y must be a scalar or a vector, got {n} dimensions (flatten it first)"),
        )),
    }
}

//! Custom ops (DESIGN §2): an op written by the user in Rust, applied like any other.
//!
//! Owns: the `CustomOp` trait (type inference, evaluation on values, an optional
//! pullback, whether a backend other than the reference may run it as a declared runtime
//! step) and `CustomRef`, its handle in `Op` (two nodes share an op when they hold the
//! same `Arc`).

use std::fmt;
use std::sync::Arc;

use crate::data::TensorData;
use crate::types::TensorType;
use crate::var::Var;

/// A user-defined op.
pub trait CustomOp: Send + Sync {
    /// The name dprint and errors show.
    fn name(&self) -> &str;
    /// The output types for inputs of these types, or why they are not accepted.
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, String>;
    /// The outputs for these input values (checked against the inferred types when it
    /// returns), or why it failed.
    fn eval(&self, inputs: &[TensorData]) -> Result<Vec<TensorData>, String>;
    /// The gradients of the inputs from those of the outputs (`None` per output: not
    /// used), built from other ops; `None` when the op is not differentiable.
    fn pullback(
        &self,
        _inputs: &[Var],
        _outputs: &[Var],
        _output_grads: &[Option<Var>],
    ) -> Option<Vec<Option<Var>>> {
        None
    }
    /// Whether compiled backends may call `eval` as a declared runtime step; otherwise
    /// only the reference backend runs it and the others refuse the graph.
    fn runs_in_compiled_backends(&self) -> bool {
        true
    }
}

/// A custom op in a graph.
#[derive(Clone)]
pub struct CustomRef(pub Arc<dyn CustomOp>);

impl PartialEq for CustomRef {
    fn eq(&self, other: &CustomRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for CustomRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Custom({})", self.0.name())
    }
}

impl fmt::Display for CustomRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Custom{{{}}}", self.0.name())
    }
}

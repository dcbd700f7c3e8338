//! tensorlift: a symbolic tensor compiler.
//!
//! Build a graph of tensor operations, compile it, call it with ndarray arrays:
//!
//! ```
//! use tensorlift::prelude::*;
//! use ndarray::array;
//!
//! let x = tensor("x", Float64, [None]);
//! let y = tensor("y", Float64, [Some(1)]); // static size 1: broadcasts
//! let z = (x.exp() * &y + x.sin() * 0.5).sum(None);
//! let f = function(&[&x, &y], &[&z]).compile()?;
//! let out = f.call(&[array![0.0, 1.0].into(), array![2.0].into()])?;
//! let expected = (0.0f64.exp() + 1.0f64.exp()) * 2.0 + 1.0f64.sin() * 0.5;
//! assert!((out[0].item_f64()? - expected).abs() < 1e-12);
//! # Ok::<(), tensorlift::Error>(())
//! ```
//!
//! Owns: the public facade (`prelude`, `function`, `Function`, `Error`). Everything else
//! lives in `tensorlift-ir` (graphs), `tensorlift-runtime` (values, interpreter) and
//! `tensorlift-compiler` (pipeline, backends).

mod function;
pub mod testing;

pub use function::{function, Function, FunctionBuilder};
pub use tensorlift_compiler::{CompileError, Mode, RewriteReport};
pub use tensorlift_ir as ir;
pub use tensorlift_ir::{
    alloc, arange, clone_replace, concatenate, constant, dprint, full, idx, make_vector, matrix,
    ones, scalar, split, split_by, stack, switch, tensor, to_dot, vector, zeros, DType, GraphError,
    Idx, Literal, TensorData, TensorType, Var,
};
pub use tensorlift_runtime::memory::{output_limit, set_output_limit};
pub use tensorlift_runtime::RuntimeError;

/// Any error tensorlift returns: from building, compiling or calling.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// Convenience accessors on values returned by a call.
pub trait TensorDataExt {
    /// The single element of a one-element float64 value.
    fn item_f64(&self) -> Result<f64, Error>;
}

impl TensorDataExt for TensorData {
    fn item_f64(&self) -> Result<f64, Error> {
        match (self.as_array::<f64>(), self.len()) {
            (Some(a), 1) => Ok(a.iter().copied().next().unwrap_or(f64::NAN)),
            _ => Err(Error::Runtime(RuntimeError::op(
                "item_f64",
                format!(
                    "expected one float64 element, got {} of shape {:?}",
                    self.dtype(),
                    self.shape()
                ),
            ))),
        }
    }
}

/// Everything needed to build, compile and call graphs.
pub mod prelude {
    pub use crate::{function, Error, Function, Mode, TensorDataExt};
    pub use tensorlift_ir::DType::{self, *};
    pub use tensorlift_ir::{
        alloc, arange, clone_replace, concatenate, constant, dprint, full, idx, make_vector,
        matrix, ones, scalar, split, stack, switch, tensor, to_dot, vector, zeros, Idx, TensorData,
        TensorType, Var,
    };
}

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
pub mod gradcheck;
mod shared;
pub mod sparse;
pub mod testing;

pub use function::{function, Function, FunctionBuilder};
pub use gradcheck::{verify_grad, VerifyGrad};
pub use shared::{shared, shared_rng, shared_with_type, SharedValue};
pub use tensorlift_compiler::{CompileError, Mode, RewriteReport};
pub use tensorlift_ir as ir;
pub use tensorlift_ir::api::linalg;
pub use tensorlift_ir::api::random;
pub use tensorlift_ir::custom;
pub use tensorlift_ir::ops::CustomOp;
pub use tensorlift_ir::{
    alloc, arange, arange_dtype, clone_replace, concatenate, constant, dprint, full, idx,
    make_vector, matrix, ones, scalar, split, split_by, stack, switch, tensor, tile, to_dot,
    vector, zeros, All, Axes, AxisOrAll, DType, GraphError, Idx, Literal, RangeBounds, TensorData,
    TensorType, Var,
};
pub use tensorlift_ir::{
    grad, grad_with, hessian_vector_product, jacobian, pushforward, value_and_grad, Disconnected,
    GradOptions,
};
pub use tensorlift_ir::{vectorize_graph, vmap};
pub use tensorlift_runtime::memory::{output_limit, set_output_limit};
pub use tensorlift_runtime::shared::SharedContext;
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

/// Reading values returned by a call without knowing their dtype first.
pub trait TensorDataExt {
    /// The single element of a one-element value of any dtype, as f64 (bools 0 or 1).
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let x = vector("x", Int32);
    /// let f = function(&[&x], &[&x.sum(All)]).compile()?;
    /// let out = f.call(&[ndarray::array![1i32, 2, 3].into()])?;
    /// assert_eq!(out[0].item_f64()?, 6.0);
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    fn item_f64(&self) -> Result<f64, Error>;

    /// Every element as f64 (bools 0 or 1, integers converted), in row-major order.
    fn to_f64_vec(&self) -> Vec<f64>;

    /// The value converted to element type `T` with NumPy's casting (`astype`): floats to
    /// integers truncate and saturate, NaN giving 0.
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let data: TensorData = ndarray::array![1.5f32, -2.0].into();
    /// assert_eq!(data.to_array::<i64>().into_raw_vec_and_offset().0, vec![1, -2]);
    /// assert_eq!(data.to_array::<f64>().shape(), &[2]);
    /// ```
    fn to_array<T: tensorlift_ir::Element>(&self) -> ndarray::ArrayD<T>;
}

impl TensorDataExt for TensorData {
    fn item_f64(&self) -> Result<f64, Error> {
        match self.len() {
            1 => Ok(self.to_f64_vec()[0]),
            _ => Err(Error::Runtime(RuntimeError::op(
                "item_f64",
                format!(
                    "expected one element, got {} of shape {:?}",
                    self.dtype(),
                    self.shape()
                ),
            ))),
        }
    }

    fn to_f64_vec(&self) -> Vec<f64> {
        testing::as_f64s(self)
    }

    fn to_array<T: tensorlift_ir::Element>(&self) -> ndarray::ArrayD<T> {
        let cast = tensorlift_runtime::cast(self, T::DTYPE);
        cast.as_array::<T>()
            .map(|a| a.to_owned())
            .unwrap_or_else(|| {
                ndarray::ArrayD::from_elem(ndarray::IxDyn(self.shape()), T::default())
            })
    }
}

/// Everything needed to build, compile and call graphs.
pub mod prelude {
    pub use crate::{
        function, shared, shared_rng, shared_with_type, verify_grad, Error, Function, Mode,
        SharedContext, SharedValue, TensorDataExt, VerifyGrad,
    };
    pub use tensorlift_ir::DType::{self, *};
    pub use tensorlift_ir::{
        alloc, arange, arange_dtype, clone_replace, concatenate, constant, dprint, full, full_like,
        grad, grad_with, hessian_vector_product, idx, ifelse, jacobian, linspace, make_vector,
        matrix, ones, ones_like, pushforward, scalar, scan, split, stack, switch, tensor, tile,
        to_dot, value_and_grad, vector, vectorize_graph, vmap, zeros, zeros_like, All, Idx,
        Literal, TensorData, TensorType, Var,
    };
}

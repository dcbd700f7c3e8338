//! tensorlift-runtime: the reference interpreter and the kernels' support library.
//!
//! Two folders: `reference` (the op-by-op interpreter, the oracle every backend is
//! compared with, and the numeric behaviour of every op it runs) and `support` (what
//! jitted code calls: scalar and array math, whole-row reductions, softmax and logsumexp
//! rows, gemm, error slots and growing buffers). Shared by both: NumPy casting
//! (`scalar`), the no-runtime-broadcasting rule (`broadcast`), output allocation
//! (`memory`), input checking (`signature`) and errors.
//!
//! Architecture invariant: depends only on `tensorlift-ir`; never rewrites graphs; every
//! user-controlled index and size is checked and reported as `RuntimeError`, never a panic.

pub mod broadcast;
pub mod error;
pub mod memory;
pub mod reference;
pub mod scalar;
pub mod shared;
pub mod signature;
pub mod support;

pub use error::{Result, RuntimeError};
pub use reference::interpreter::Program;
pub use reference::{
    blockwise, composite, dense_linalg, elemwise, indexing, interpreter, linalg, output_shape,
    random, reduce, shape_ops, sparse,
};
pub use scalar::{cast, Scalar};
pub use signature::Signature;
pub use support::{buffers as buffer_support, logsumexp, row_reduce, softmax, vector_math};

//! tensorlift-runtime: values, numerics and the reference interpreter.
//!
//! Owns the numeric behaviour of every op (`elemwise`, `composite`, `reduce`, `shape_ops`,
//! `indexing`, `linalg`), NumPy casting (`scalar`), the no-runtime-broadcasting rule (`broadcast`),
//! input checking (`signature`) and the op-by-op interpreter (`interpreter`).
//!
//! Architecture invariant: depends only on `tensorlift-ir`; never rewrites graphs; every
//! user-controlled index and size is checked and reported as `RuntimeError`, never a panic.

pub mod broadcast;
pub mod buffer_support;
pub mod composite;
pub mod elemwise;
pub mod error;
pub mod indexing;
pub mod interpreter;
pub mod linalg;
pub mod logsumexp;
pub mod memory;
pub mod reduce;
pub mod row_reduce;
pub mod scalar;
pub mod shape_ops;
pub mod signature;
pub mod softmax;
pub mod support;
pub mod vector_math;

pub use error::{Result, RuntimeError};
pub use interpreter::Program;
pub use scalar::{cast, Scalar};
pub use signature::Signature;

//! tensorlift-ir: the graph IR of tensorlift.
//!
//! Owns dtypes and types (`dtype`, `types`), tensor data containers (`data`), symbolic
//! variables and nodes (`var`), the closed op set with each op's type inference (`ops`),
//! the graph-building API (`api`), the mutable `FunctionGraph` (`fgraph`), graph
//! transforms (`clone`) and printing (`print`).
//!
//! Architecture invariant: no numerics and no code generation here; this crate depends on
//! nothing else in tensorlift.

pub mod api;
pub mod clone;
pub mod data;
pub mod dtype;
pub mod error;
pub mod fgraph;
pub mod grad;
pub mod ops;
pub mod print;
pub mod sparse;
pub mod types;
pub mod var;
pub mod vectorize;

pub use api::axes::{All, Axes, AxisOrAll};
pub use api::elemwise::{elemwise, switch, try_elemwise};
pub use api::graph::{custom, op_from_graph, GraphOp};
pub use api::ifelse::ifelse;
pub use api::index::Idx;
pub use api::scan::{scan, ScanBuilder, ScanOutputs, Step};
pub use api::shape::{
    alloc, arange, arange_dtype, concatenate, full, full_like, linspace, make_vector, ones,
    ones_like, split, split_by, stack, tile, zeros, zeros_like, RangeBounds,
};
pub use api::{constant, matrix, scalar, tensor, vector, Operand};
pub use clone::clone_replace;
pub use data::{Element, TensorData};
pub use dtype::{promote, DType, Literal};
pub use error::{GraphError, Result};
pub use fgraph::{Client, FunctionGraph, NodeId, Origin, VarId};
pub use grad::{
    expand_grad, grad, grad_with, gradient_graph, hessian_vector_product, jacobian, pullback,
    pushforward, pushforward_by_pullback, value_and_grad, Disconnected, GradOptions, InputGrad,
};
pub use ops::{Op, ScalarOp};
pub use print::{dprint, to_dot};
pub use sparse::CsrMatrix;
pub use types::{Format, TensorType};
pub use var::{postorder, Node, SharedStorage, Var, VarKind};
pub use vectorize::{vectorize_graph, vmap};

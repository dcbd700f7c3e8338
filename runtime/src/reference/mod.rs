//! The reference backend's interpreter and kernels: `interpreter` (evaluation order,
//! freeing, op dispatch) and the numeric behaviour of every op it runs — `elemwise`,
//! `composite`, `reduce`, `shape_ops`, `indexing`, `linalg`, `sparse` — written for clarity and
//! checks over speed: it is the oracle every other backend is compared with. Result shapes
//! follow `output_shape`, the rule the JIT allocates by.

pub mod blockwise;
pub mod composite;
pub mod dense_linalg;
pub mod elemwise;
pub mod indexing;
pub mod interpreter;
pub mod linalg;
pub mod output_shape;
pub mod random;
pub mod reduce;
pub mod scan;
pub mod shape_ops;
pub mod sparse;

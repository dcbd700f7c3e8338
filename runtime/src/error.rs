//! The error type of everything that runs: input checking, the interpreter and kernels.
//!
//! Owns: `RuntimeError`. User mistakes (wrong inputs, shapes that do not match at run time,
//! indices out of range, failed assertions) name the op and the input; broken internal
//! invariants are `Internal` and say so.

use thiserror::Error;

#[derive(Clone, Debug, Error, PartialEq)]
pub enum RuntimeError {
    /// A call argument does not match the compiled signature.
    #[error("input {index} ('{name}'): {message}")]
    Input {
        index: usize,
        name: String,
        message: String,
    },
    /// An op failed on the values it was given.
    #[error("{op}: {message}")]
    Op { op: String, message: String },
    /// A `CheckAndRaise` condition was false.
    #[error("assertion failed: {0}")]
    Assert(String),
    /// The same error, with the node it happened in.
    #[error("{source}\n  in node: {node}")]
    InNode {
        node: String,
        #[source]
        source: Box<RuntimeError>,
    },
    /// A graph that cannot be compiled or run (from `ir`).
    #[error(transparent)]
    Graph(#[from] tensorlift_ir::GraphError),
    /// A broken internal invariant: a bug in tensorlift.
    #[error("internal error (a bug in tensorlift, please report it): {0}")]
    Internal(String),
}

impl RuntimeError {
    pub fn op(op: impl Into<String>, message: impl Into<String>) -> Self {
        RuntimeError::Op {
            op: op.into(),
            message: message.into(),
        }
    }

    /// The innermost error, without node context.
    pub fn root(&self) -> &RuntimeError {
        match self {
            RuntimeError::InNode { source, .. } => source.root(),
            other => other,
        }
    }
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

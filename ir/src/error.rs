//! The error type of graph construction and graph transforms.
//!
//! Owns: `GraphError`, the one error every `ir` function returns. User mistakes (bad types,
//! shapes, axes) are typed variants naming the op and the input; broken internal invariants
//! are `Internal` and say so.

use thiserror::Error;

/// An error raised while building, checking or transforming a graph.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum GraphError {
    /// An op rejected its inputs (type inference failed). `op` names the op, `message`
    /// the input and what was expected.
    #[error("{op}: {message}")]
    Op { op: String, message: String },
    /// A type that cannot exist (e.g. static size 1 but not broadcastable).
    #[error("invalid type: {0}")]
    Type(String),
    /// A replacement whose type cannot stand for the replaced variable.
    #[error("cannot replace {var} of type {old} by a variable of type {new}: {reason}")]
    Replace {
        var: String,
        old: String,
        new: String,
        reason: String,
    },
    /// An output depends on a graph input that was not declared as an input.
    #[error("the outputs depend on {var}, which is not among the declared inputs")]
    MissingInput { var: String },
    /// Any other malformed-graph condition caused by the caller.
    #[error("graph: {0}")]
    Graph(String),
    /// A broken internal invariant: a bug in tensorlift, not in the caller's code.
    #[error("internal error (a bug in tensorlift, please report it): {0}")]
    Internal(String),
}

impl GraphError {
    /// Shorthand for an op's type-inference error.
    pub fn op(op: impl Into<String>, message: impl Into<String>) -> Self {
        GraphError::Op {
            op: op.into(),
            message: message.into(),
        }
    }
}

/// Result alias for `ir`.
pub type Result<T, E = GraphError> = std::result::Result<T, E>;

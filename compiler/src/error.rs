//! Errors of compiling a graph.

use thiserror::Error;

use crate::backend::Unsupported;

#[derive(Clone, Debug, Error, PartialEq)]
pub enum CompileError {
    /// The graph itself is malformed (missing input, invalid variable, bad types).
    #[error(transparent)]
    Graph(#[from] tensorlift_ir::GraphError),
    /// Evaluating constants at compile time failed in a way that is a bug.
    #[error(transparent)]
    Runtime(#[from] tensorlift_runtime::RuntimeError),
    /// The backend cannot compile some nodes or hold some values' types; all of them are
    /// listed.
    #[error("the {backend} backend cannot compile {} node(s) or value(s):\n{}", nodes.len(), format_unsupported(nodes))]
    Unsupported {
        backend: &'static str,
        nodes: Vec<Unsupported>,
    },
    /// A rewrite group did not reach a fixed point within its budget.
    #[error("rewrite group {group} did not converge: {reason} (rules that fired most: {fired}); exclude a rule by name to find the culprit")]
    RewriteDidNotConverge {
        group: String,
        reason: String,
        fired: String,
    },
    /// A loop-nest kernel given to the code generator directly (`KernelCall`) that is
    /// malformed, or that the safe constructor does not take.
    #[error("kernel {kernel}: {message}")]
    InvalidKernel { kernel: String, message: String },
    /// A broken internal invariant: a bug in tensorlift.
    #[error("internal error (a bug in tensorlift, please report it): {0}")]
    Internal(String),
}

fn format_unsupported(nodes: &[Unsupported]) -> String {
    nodes
        .iter()
        .map(|u| format!("  {} ({})", u.node, u.hint))
        .collect::<Vec<_>>()
        .join("\n")
}

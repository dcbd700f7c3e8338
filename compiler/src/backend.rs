//! The contract between the compile pipeline and a backend (DESIGN §9).
//!
//! Owns: `Backend` (declares what it supports, compiles a checked graph) and `Executable`
//! (the compiled result, callable from many threads at once).

use tensorlift_ir::{FunctionGraph, TensorData};
use tensorlift_runtime::RuntimeError;

use crate::error::CompileError;

/// A node a backend cannot compile, with its printed form and a hint.
#[derive(Clone, Debug, PartialEq)]
pub struct Unsupported {
    pub node: String,
    pub hint: String,
}

/// A way of running graphs.
pub trait Backend: Send + Sync {
    /// The backend's name, used in errors.
    fn name(&self) -> &'static str;

    /// Every node (and type) of `fgraph` this backend cannot compile; empty when it can
    /// compile all of it.
    fn unsupported(&self, fgraph: &FunctionGraph) -> Vec<Unsupported>;

    /// Nodes of `fgraph` this backend runs through the reference interpreter rather than
    /// its own code (listed in the compile result; a strict mode refuses them instead).
    fn interpreted(&self, _fgraph: &FunctionGraph) -> Vec<Unsupported> {
        Vec::new()
    }

    /// Compiles a graph for which `unsupported` returned nothing.
    fn compile(&self, fgraph: FunctionGraph) -> Result<Box<dyn Executable>, CompileError>;
}

/// A compiled graph. Inputs have been checked against the signature before `run`.
pub trait Executable: Send + Sync {
    fn run(&self, inputs: &[TensorData]) -> Result<Vec<TensorData>, RuntimeError>;

    /// How the executable runs the graph, for people (the JIT's plan: each node as a
    /// kernel, a view or the interpreter).
    fn describe(&self) -> String;
}

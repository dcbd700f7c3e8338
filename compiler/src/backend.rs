//! The contract between the compile pipeline and a backend (DESIGN §9).
//!
//! Owns: `Backend` (declares the types and ops it supports, the form it wants shared
//! values in, compiles a checked graph) and `Executable` (the compiled result, callable
//! from many threads at once).

use tensorlift_ir::{FunctionGraph, TensorData, TensorType};
use tensorlift_runtime::RuntimeError;

use crate::error::CompileError;

/// A node a backend cannot compile, with its printed form and a hint.
#[derive(Clone, Debug, PartialEq)]
pub struct Unsupported {
    pub node: String,
    pub hint: String,
}

/// How a backend handles values of one type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeSupport {
    /// Its own code reads and writes such values.
    Native,
    /// Only calls of the runtime's implementations (the reference's own) touch such values.
    RuntimeCall,
    /// The backend cannot hold such values; the hint says what to do instead.
    Unsupported(String),
}

/// A way of running graphs.
pub trait Backend: Send + Sync {
    /// The backend's name, used in errors.
    fn name(&self) -> &'static str;

    /// How the backend handles values of type `ty` (the compile pipeline refuses a graph
    /// holding a value of an unsupported type, listing each with the node making it).
    fn type_support(&self, _ty: &TensorType) -> TypeSupport {
        TypeSupport::Native
    }

    /// The form this backend reads a shared variable's stored value in, when that is not
    /// the stored value itself (e.g. a contiguous copy of a strided array); `None` to use
    /// the stored value as it is.
    fn shared_copy(&self, _value: &TensorData) -> Option<TensorData> {
        None
    }

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

    /// Runs on inputs not yet checked against the signature when the executable can
    /// tell they have the exact layout of an earlier call's checked inputs (the JIT's
    /// replays); `None` otherwise, and the caller checks them and calls `run`.
    fn run_known_layout(
        &self,
        _inputs: &[TensorData],
    ) -> Option<Result<Vec<TensorData>, RuntimeError>> {
        None
    }

    /// How the executable runs the graph, for people (the JIT's plan: each node as a
    /// kernel, a view or the interpreter).
    fn describe(&self) -> String;
}

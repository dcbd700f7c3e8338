//! The compile pipeline: graph → checks → (rewrites, with their own issue) → backend.
//!
//! Owns: the order of compile stages and the checks between them (`check_integrity` after
//! every stage in debug builds).

use tensorlift_ir::FunctionGraph;

use crate::backend::Executable;
use crate::error::CompileError;
use crate::mode::Mode;

/// Compiles `fgraph` in `mode`.
pub fn compile(fgraph: FunctionGraph, mode: Mode) -> Result<Box<dyn Executable>, CompileError> {
    if cfg!(debug_assertions) {
        fgraph.check_integrity()?;
    }
    let backend = mode.backend();
    let unsupported = backend.unsupported(&fgraph);
    if !unsupported.is_empty() {
        return Err(CompileError::Unsupported {
            backend: backend.name(),
            nodes: unsupported,
        });
    }
    backend.compile(fgraph)
}

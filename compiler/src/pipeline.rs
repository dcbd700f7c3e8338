//! The compile pipeline: graph → rewrites (DESIGN §6) → support check → backend.
//!
//! Owns: the order of compile stages and the checks between them (`check_integrity` after
//! every rewrite group in debug builds, inside the rewrite driver).

use tensorlift_ir::FunctionGraph;

use crate::backend::Executable;
use crate::error::CompileError;
use crate::mode::Mode;
use crate::rewrite::{run_pipeline, RewriteReport};

/// A compiled graph: the executable, the graph it was compiled from (after rewrites) and
/// what the rewrites did.
pub struct Compiled {
    pub executable: Box<dyn Executable>,
    pub fgraph: FunctionGraph,
    pub report: RewriteReport,
    /// The nodes the backend runs in the reference interpreter.
    pub interpreted: Vec<crate::backend::Unsupported>,
}

/// Rewrites `fgraph` as `mode` says and compiles it for `mode`'s backend.
pub fn compile(mut fgraph: FunctionGraph, mode: &Mode) -> Result<Compiled, CompileError> {
    if cfg!(debug_assertions) {
        fgraph.check_integrity()?;
    }
    let mut report = RewriteReport::default();
    if mode.rewrites {
        run_pipeline(&mut fgraph, &mode.filter, &mut report)?;
    }
    let backend = mode.backend();
    let unsupported = backend.unsupported(&fgraph);
    if !unsupported.is_empty() {
        return Err(CompileError::Unsupported {
            backend: backend.name(),
            nodes: unsupported,
        });
    }
    let interpreted = backend.interpreted(&fgraph);
    let executable = backend.compile(fgraph.clone())?;
    Ok(Compiled {
        executable,
        fgraph,
        report,
        interpreted,
    })
}

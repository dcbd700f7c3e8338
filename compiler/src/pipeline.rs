//! The compile pipeline: graph → rewrites (DESIGN §6) → support check → backend.
//!
//! Owns: the order of compile stages and the checks between them (`check_integrity` after
//! every rewrite group in debug builds, inside the rewrite driver).

use tensorlift_ir::ops::InnerGraph;
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
        rewrite_inner_graphs(&mut fgraph, mode, &mut report)?;
    } else {
        // Lazy gradients are built even when nothing else is rewritten.
        crate::rewrite::grad::expand_grads(&mut fgraph, &mode.filter, false, &mut report)?;
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

/// Runs the rewrite pipeline on every inner graph left in `fgraph` (kept OpFromGraphs,
/// scan bodies; inlined graphs were rewritten as part of the outer graph), innermost
/// first, and puts the rewritten graphs in place of the old.
fn rewrite_inner_graphs(
    fgraph: &mut FunctionGraph,
    mode: &Mode,
    report: &mut RewriteReport,
) -> Result<(), CompileError> {
    for node in fgraph.toposort() {
        let Some(e) = fgraph.node(node) else { continue };
        let inner = e.op.inner_graphs();
        if inner.is_empty() {
            continue;
        }
        let mut rewritten_graphs = Vec::with_capacity(inner.len());
        for g in inner {
            let mut inner = g.graph().clone();
            run_pipeline(&mut inner, &mode.filter, report)?;
            rewrite_inner_graphs(&mut inner, mode, report)?;
            rewritten_graphs.push(InnerGraph::new(inner));
        }
        let Some(rewritten) = e.op.with_inner_graphs(rewritten_graphs) else {
            return Err(CompileError::Internal(
                "an op lost an inner graph while it was rewritten".into(),
            ));
        };
        if rewritten == e.op {
            continue;
        }
        let (inputs, outputs) = (e.inputs.clone(), e.outputs.clone());
        let new = fgraph.add_node(rewritten, inputs)?;
        for (old, new) in outputs.into_iter().zip(new) {
            fgraph.replace(old, new)?;
        }
    }
    Ok(())
}

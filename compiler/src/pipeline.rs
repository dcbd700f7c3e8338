//! The compile pipeline: graph → rewrites (DESIGN §6) → support check → backend.
//!
//! Owns: the order of compile stages and the checks between them (`check_integrity` after
//! every rewrite group in debug builds, inside the rewrite driver).

use tensorlift_ir::ops::InnerGraph;
use tensorlift_ir::{FunctionGraph, Origin};

use crate::backend::{Backend, Executable, TypeSupport, Unsupported};
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
pub fn compile(fgraph: FunctionGraph, mode: &Mode) -> Result<Compiled, CompileError> {
    compile_for(fgraph, mode, mode.backend().as_ref())
}

/// Rewrites `fgraph` as `mode` says and compiles it for `backend` (any implementation of
/// the trait: the mode's backend kind is not used).
pub fn compile_for(
    mut fgraph: FunctionGraph,
    mode: &Mode,
    backend: &dyn Backend,
) -> Result<Compiled, CompileError> {
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
    let mut unsupported = unsupported_types(backend, &fgraph, "");
    unsupported.extend(backend.unsupported(&fgraph));
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

/// Every value of `fgraph` (and of its inner graphs) whose type `backend` cannot hold: the
/// node making it (its dprint line) or the input, with the backend's hint.
fn unsupported_types(
    backend: &dyn Backend,
    fgraph: &FunctionGraph,
    within: &str,
) -> Vec<Unsupported> {
    let mut found = Vec::new();
    let mut check = |var, what: String| {
        let ty = &fgraph.var(var).ty;
        if let TypeSupport::Unsupported(hint) = backend.type_support(ty) {
            found.push(Unsupported {
                node: format!("{within}{what}"),
                hint: format!("values of type {ty}: {hint}"),
            });
        }
    };
    for (k, &x) in fgraph.inputs().iter().enumerate() {
        let name = fgraph
            .var(x)
            .name
            .clone()
            .unwrap_or_else(|| format!("input {k}"));
        check(x, format!("input {name}"));
    }
    let nodes = fgraph.toposort();
    for &n in &nodes {
        let Some(e) = fgraph.node(n) else { continue };
        for &x in &e.inputs {
            if let Origin::Constant(value) = &fgraph.var(x).origin {
                check(x, format!("constant {value}"));
            }
        }
        for &o in &e.outputs {
            check(o, tensorlift_ir::print::node_summary(fgraph, n));
        }
    }
    found.dedup();
    for &n in &nodes {
        let Some(e) = fgraph.node(n) else { continue };
        for g in e.op.inner_graphs() {
            let prefix = format!("{within}inside {}: ", e.op);
            found.extend(unsupported_types(backend, g.graph(), &prefix));
        }
    }
    found
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

//! Expansion of lazy gradients (DESIGN §7): each `Grad` node's cost graph is rewritten by
//! canonicalize and stabilize first, then differentiated (`tensorlift_ir::gradient_graph`)
//! and its gradient graph copied in place of the node, so the gradient of the stabilized
//! form is taken (d/dx log(sigmoid(x)) at -800 is 1, not NaN).

use tensorlift_ir::ops::{GradOp, InnerGraph};
use tensorlift_ir::{gradient_graph, FunctionGraph, Op};

use super::inline::copy_graph;
use super::{all_rules, run_group, Driver, RewriteReport, Rule, RuleFilter};
use crate::error::CompileError;

/// Expands every `Grad` node of `fg` (rewriting its cost graph with `filter`'s
/// canonicalize and stabilize rules first, when `rewrite` is set); returns how many.
pub fn expand_grads(
    fg: &mut FunctionGraph,
    filter: &RuleFilter,
    rewrite: bool,
    report: &mut RewriteReport,
) -> Result<usize, CompileError> {
    let mut expanded = 0;
    for node in fg.toposort() {
        let Some(e) = fg.node(node) else { continue };
        let Op::Grad(lazy) = &e.op else { continue };
        let mut cost = lazy.cost.graph().clone();
        if rewrite {
            let rules = all_rules();
            for group in ["canonicalize", "stabilize"] {
                // A scan's pullback reads its forward trace: the cost graph keeps it.
                let selected: Vec<Rule> = rules
                    .iter()
                    .filter(|r| r.tag == group && filter.allows(r))
                    .filter(|r| r.name != "scan_drop_unused_traces")
                    .copied()
                    .collect();
                run_group(&mut cost, group, &selected, Driver::Equilibrium, report)?;
            }
        }
        expand_grads(&mut cost, filter, rewrite, report)?;
        let rewritten = GradOp {
            cost: InnerGraph::new(cost),
            n_wrt: lazy.n_wrt,
        };
        let graph = gradient_graph(&rewritten).map_err(CompileError::Graph)?;
        let (outer_inputs, outputs) = (e.inputs.clone(), e.outputs.clone());
        let new = copy_graph(fg, &graph, &outer_inputs).map_err(CompileError::Graph)?;
        for (old, new) in outputs.into_iter().zip(new) {
            fg.replace(old, new).map_err(CompileError::Graph)?;
        }
        expanded += 1;
    }
    Ok(expanded)
}

//! Inlining of OpFromGraph: a node whose op is a graph marked `inline` (the default) is
//! replaced by a copy of that graph wired to the node's inputs, so every other rewrite
//! sees through it. Nested graphs are inlined too. Kept graphs (`inline(false)`) stay one
//! node; the pipeline rewrites their inner graphs separately (`rewrite_inner_graphs`).

use std::collections::HashMap;
use std::sync::Arc;

use tensorlift_ir::{FunctionGraph, GraphError, Op, Origin, VarId};

use super::{Rule, RuleKind};

pub const RULES: [Rule; 1] = [Rule {
    name: "inline_op_from_graph",
    tag: "canonicalize",
    kind: RuleKind::Global(inline_graphs),
}];

/// Inlines every OpFromGraph marked `inline`, until none is left; returns how many.
pub fn inline_graphs(fg: &mut FunctionGraph) -> Result<usize, GraphError> {
    let mut count = 0;
    loop {
        let next = fg.toposort().into_iter().find(|n| {
            fg.node(*n)
                .is_some_and(|e| matches!(&e.op, Op::OpFromGraph(g) if g.inline))
        });
        let Some(node) = next else {
            return Ok(count);
        };
        let e = fg
            .node(node)
            .ok_or_else(|| GraphError::Internal("inlining a removed node".into()))?
            .clone();
        let Op::OpFromGraph(g) = &e.op else {
            return Err(GraphError::Internal(
                "inlining a node that is no graph".into(),
            ));
        };
        let g = Arc::clone(g);
        let outs = copy_graph(fg, g.graph.graph(), &e.inputs)?;
        for (old, new) in e.outputs.iter().zip(outs) {
            fg.replace(*old, new)?;
        }
        count += 1;
    }
}

/// Copies the nodes of `inner` into `fg`, its inputs read from `inputs`; returns the
/// outer variables of its outputs.
pub fn copy_graph(
    fg: &mut FunctionGraph,
    inner: &FunctionGraph,
    inputs: &[VarId],
) -> Result<Vec<VarId>, GraphError> {
    let mut map: HashMap<VarId, VarId> = inner
        .inputs()
        .iter()
        .copied()
        .zip(inputs.iter().copied())
        .collect();
    for n in inner.toposort() {
        let Some(ie) = inner.node(n) else { continue };
        let mut args = Vec::with_capacity(ie.inputs.len());
        for x in &ie.inputs {
            args.push(copy_var(fg, inner, *x, &mut map)?);
        }
        let outs = fg.add_node(ie.op.clone(), args)?;
        for (o, new) in ie.outputs.iter().zip(outs) {
            map.insert(*o, new);
        }
    }
    inner
        .outputs()
        .iter()
        .map(|o| copy_var(fg, inner, *o, &mut map))
        .collect()
}

/// The outer variable standing for `x` of `inner`: mapped already, or a constant copied.
fn copy_var(
    fg: &mut FunctionGraph,
    inner: &FunctionGraph,
    x: VarId,
    map: &mut HashMap<VarId, VarId>,
) -> Result<VarId, GraphError> {
    if let Some(v) = map.get(&x) {
        return Ok(*v);
    }
    match &inner.var(x).origin {
        Origin::Constant(d) => {
            let v = fg.add_constant(d.clone());
            map.insert(x, v);
            Ok(v)
        }
        Origin::Input | Origin::Node { .. } => Err(GraphError::Internal(format!(
            "inlining: {} of the inner graph has no outer variable",
            inner.describe(x)
        ))),
    }
}

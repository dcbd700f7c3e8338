//! The lazy gradient (`Op::Grad`): `grad` wraps the cost graph in a `Grad` node, and
//! `expand` differentiates it once the compile pipeline has rewritten (stabilized) it.

use std::sync::Arc;

use super::pullback::inline;
use super::{grad_with, Disconnected, GradOptions};
use crate::error::{GraphError, Result};
use crate::fgraph::FunctionGraph;
use crate::ops::{GradOp, InnerGraph, Op};
use crate::var::{Var, VarKind};

/// The outputs of a `Grad` node of `cost` with respect to `wrt` (checked by the caller:
/// float variables the cost depends on, no undefined path).
pub(crate) fn lazy_grad(cost: &Var, wrt: &[&Var]) -> Result<Vec<Var>> {
    let wrt_keys: std::collections::HashSet<usize> = wrt.iter().map(|x| x.key()).collect();
    // The other values the cost reads: graph inputs not among wrt, found without walking
    // below a wrt variable.
    let mut free: Vec<Var> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![cost.clone()];
    while let Some(v) = stack.pop() {
        if wrt_keys.contains(&v.key()) || !seen.insert(v.key()) {
            continue;
        }
        match v.kind() {
            VarKind::Input => free.push(v.clone()),
            VarKind::Constant(_) => {}
            VarKind::Invalid(e) => return Err(e.clone()),
            VarKind::Output { node, .. } => stack.extend(node.inputs.iter().cloned()),
        }
    }
    let mut inputs: Vec<Var> = wrt.iter().map(|x| (*x).clone()).collect();
    inputs.extend(free);
    let graph = FunctionGraph::new(&inputs, std::slice::from_ref(cost))?;
    let op = GradOp {
        cost: InnerGraph::new(graph),
        n_wrt: wrt.len(),
    };
    Var::apply(Op::Grad(Arc::new(op)), inputs)
}

/// The gradient a `Grad` node stands for, built on `inputs` (the node's): its cost graph
/// applied to them, differentiated with respect to the first `n_wrt`.
pub fn expand(op: &GradOp, inputs: &[Var]) -> Result<Vec<Var>> {
    let cost = inline(&op.cost, inputs)?;
    let [cost] = cost.as_slice() else {
        return Err(GraphError::op(
            "Grad",
            "the cost graph must have one output",
        ));
    };
    let wrt: Vec<&Var> = inputs[..op.n_wrt].iter().collect();
    let options = GradOptions {
        disconnected: Disconnected::Zero,
        ..GradOptions::default()
    };
    grad_with(Some(cost), &wrt, &options)?
        .into_iter()
        .map(|g| g.ok_or_else(|| GraphError::Internal("Grad: a gradient is missing".into())))
        .collect()
}

/// The gradient a `Grad` node stands for as a graph of its own: the node's inputs in, the
/// gradients out (what the pipeline copies in place of the node, and what the interpreter
/// runs when it meets one).
pub fn gradient_graph(op: &GradOp) -> Result<FunctionGraph> {
    let inputs: Vec<Var> = op
        .cost
        .input_types()
        .iter()
        .enumerate()
        .map(|(k, t)| Var::input(&format!("wrt{k}"), (*t).clone()))
        .collect();
    let grads = expand(op, &inputs)?;
    FunctionGraph::new(&inputs, &grads)
}

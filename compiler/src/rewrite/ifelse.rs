//! Rewrites of IfElse (DESIGN §8): a condition known at compile time selects its branch
//! (`ifelse_constant_condition`), and a choice between two equal branches is just the
//! branch (`ifelse_same_branches`); either way the branch's graph is copied in place of
//! the node and rewritten with the rest. A branch's computation that the rest of the
//! function computes anyway is read from there instead (`ifelse_reuse_outer_values`).

use std::collections::HashMap;
use std::sync::Arc;

use tensorlift_ir::fgraph::Client;
use tensorlift_ir::ops::{IfElse, InnerGraph};
use tensorlift_ir::{FunctionGraph, GraphError, NodeId, Op, Origin, Var, VarId};

use super::inline::copy_graph;
use super::{Rule, RuleKind};

pub const RULES: [Rule; 3] = [
    Rule {
        name: "ifelse_constant_condition",
        tag: "canonicalize",
        kind: RuleKind::Global(constant_condition),
    },
    Rule {
        name: "ifelse_same_branches",
        tag: "canonicalize",
        kind: RuleKind::Global(same_branches),
    },
    Rule {
        name: "ifelse_reuse_outer_values",
        tag: "canonicalize",
        kind: RuleKind::Global(reuse_outer_values),
    },
];

/// Replaces every IfElse for which `pick` chooses a branch (`Some(true)`: then) by that
/// branch's graph; returns how many.
fn select(
    fg: &mut FunctionGraph,
    pick: impl Fn(&FunctionGraph, &tensorlift_ir::ops::IfElse, tensorlift_ir::VarId) -> Option<bool>,
) -> Result<usize, GraphError> {
    let mut count = 0;
    for n in fg.toposort() {
        let Some(e) = fg.node(n) else { continue };
        let Op::IfElse(ifelse) = &e.op else { continue };
        let Some(then) = pick(fg, ifelse, e.inputs[0]) else {
            continue;
        };
        let branch = if then {
            ifelse.then_branch.clone()
        } else {
            ifelse.else_branch.clone()
        };
        let (values, outputs) = (e.inputs[1..].to_vec(), e.outputs.clone());
        let new = copy_graph(fg, branch.graph(), &values)?;
        for (old, new) in outputs.into_iter().zip(new) {
            fg.replace(old, new)?;
        }
        count += 1;
    }
    Ok(count)
}

/// A constant condition selects its branch.
pub fn constant_condition(fg: &mut FunctionGraph) -> Result<usize, GraphError> {
    select(fg, |fg, _, cond| match &fg.var(cond).origin {
        Origin::Constant(d) => Some(tensorlift_runtime::scalar::is_true(d)),
        Origin::Input | Origin::Node { .. } => None,
    })
}

/// A choice between two equal branches is the branch.
pub fn same_branches(fg: &mut FunctionGraph) -> Result<usize, GraphError> {
    select(fg, |_, ifelse, _| {
        (ifelse.then_branch == ifelse.else_branch).then_some(true)
    })
}

/// A branch value the outer graph also computes (the same op on the same values, found
/// among the users of the branch's own inputs) becomes an input of the IfElse: computed
/// once, outside, where it is computed anyway. Returns how many IfElses changed.
pub fn reuse_outer_values(fg: &mut FunctionGraph) -> Result<usize, GraphError> {
    let mut count = 0;
    for n in fg.toposort() {
        let Some(e) = fg.node(n) else { continue };
        let Op::IfElse(ifelse) = &e.op else { continue };
        let values = &e.inputs[1..];
        let branches = [&ifelse.then_branch, &ifelse.else_branch];
        // Per branch, its values with an outer equivalent that an unmatched node or an
        // output reads; all of them become inputs of both branches.
        let mut extra: Vec<VarId> = Vec::new();
        let mut per_branch = Vec::new();
        for b in branches {
            let matched = outer_equivalents(fg, n, b.graph(), values);
            let frontier = frontier(b.graph(), &matched);
            for v in &frontier {
                if !extra.contains(&matched[v]) {
                    extra.push(matched[v]);
                }
            }
            per_branch.push((matched, frontier));
        }
        if extra.is_empty() {
            continue;
        }
        let mut inputs: Vec<VarId> = e.inputs.clone();
        inputs.extend(&extra);
        let placeholders: Vec<Var> = inputs[1..]
            .iter()
            .map(|v| Var::input(&fg.describe(*v), fg.var(*v).ty.clone()))
            .collect();
        let mut rebuilt = Vec::new();
        for (b, (matched, frontier)) in branches.iter().zip(&per_branch) {
            let by_outer: HashMap<VarId, Var> = inputs[1..]
                .iter()
                .copied()
                .zip(placeholders.iter().cloned())
                .collect();
            let mut fixed: HashMap<VarId, Var> = b
                .graph()
                .inputs()
                .iter()
                .copied()
                .zip(placeholders.iter().cloned())
                .collect();
            for v in frontier {
                fixed.insert(*v, by_outer[&matched[v]].clone());
            }
            let outs = rebuild(b.graph(), &mut fixed)?;
            rebuilt.push(InnerGraph::new(FunctionGraph::new(&placeholders, &outs)?));
        }
        let else_branch = rebuilt.pop();
        let then_branch = rebuilt.pop();
        let (Some(then_branch), Some(else_branch)) = (then_branch, else_branch) else {
            return Err(GraphError::Internal("an IfElse lost a branch".into()));
        };
        let op = Op::IfElse(Arc::new(IfElse {
            then_branch,
            else_branch,
        }));
        let old = e.outputs.clone();
        let new = fg.add_node(op, inputs)?;
        for (o, n) in old.into_iter().zip(new) {
            fg.replace(o, n)?;
        }
        count += 1;
    }
    Ok(count)
}

/// Inner variables of `inner` (inputs bound to `values`) that an outer node computes: the
/// same op on equivalent inputs (equal constants count), with the same output types.
fn outer_equivalents(
    fg: &FunctionGraph,
    ifelse_node: NodeId,
    inner: &FunctionGraph,
    values: &[VarId],
) -> HashMap<VarId, VarId> {
    let mut map: HashMap<VarId, VarId> = inner
        .inputs()
        .iter()
        .copied()
        .zip(values.iter().copied())
        .collect();
    let mut found = HashMap::new();
    for n in inner.toposort() {
        let Some(ie) = inner.node(n) else { continue };
        let Some(anchor) = ie.inputs.iter().find_map(|x| map.get(x)) else {
            continue;
        };
        let same_input = |k: usize, outer: VarId| {
            let x = ie.inputs[k];
            match (map.get(&x), &inner.var(x).origin, &fg.var(outer).origin) {
                (Some(m), _, _) => *m == outer,
                (None, Origin::Constant(a), Origin::Constant(b)) => {
                    a.same_as(b) && inner.var(x).ty == fg.var(outer).ty
                }
                _ => false,
            }
        };
        let equal = fg.clients(*anchor).find_map(|c| {
            let Client::Node { node, .. } = c else {
                return None;
            };
            let ce = fg.node(*node)?;
            let same = *node != ifelse_node
                && ce.op == ie.op
                && ce.inputs.len() == ie.inputs.len()
                && ce.outputs.len() == ie.outputs.len()
                && ce.inputs.iter().enumerate().all(|(k, o)| same_input(k, *o))
                && ce
                    .outputs
                    .iter()
                    .zip(&ie.outputs)
                    .all(|(a, b)| fg.var(*a).ty == inner.var(*b).ty);
            same.then(|| ce.outputs.clone())
        });
        if let Some(outer_outs) = equal {
            for (i, o) in ie.outputs.iter().zip(outer_outs) {
                map.insert(*i, o);
                found.insert(*i, o);
            }
        }
    }
    found
}

/// The matched variables an unmatched node or an output of `inner` reads (the ones to
/// take from outside; the matched ones behind them are then not needed).
fn frontier(inner: &FunctionGraph, matched: &HashMap<VarId, VarId>) -> Vec<VarId> {
    let mut out: Vec<VarId> = Vec::new();
    let mut add = |v: VarId| {
        if matched.contains_key(&v) && !out.contains(&v) {
            out.push(v);
        }
    };
    for n in inner.toposort() {
        let Some(ie) = inner.node(n) else { continue };
        if ie.outputs.iter().any(|o| matched.contains_key(o)) {
            continue;
        }
        ie.inputs.iter().for_each(|x| add(*x));
    }
    inner.outputs().iter().for_each(|o| add(*o));
    out
}

/// The outputs of `inner` rebuilt as user-graph variables, `fixed` giving the variables
/// for its inputs and for the values taken from outside.
fn rebuild(inner: &FunctionGraph, fixed: &mut HashMap<VarId, Var>) -> Result<Vec<Var>, GraphError> {
    let var_of = |x: VarId, fixed: &HashMap<VarId, Var>| match (&inner.var(x).origin, fixed.get(&x))
    {
        (_, Some(v)) => Ok(v.clone()),
        (Origin::Constant(d), None) => Ok(Var::constant(d.clone())),
        _ => Err(GraphError::Internal(
            "a branch value was not rebuilt".into(),
        )),
    };
    for n in inner.toposort() {
        let Some(ie) = inner.node(n) else { continue };
        if ie.outputs.iter().all(|o| fixed.contains_key(o)) {
            continue;
        }
        let args = ie
            .inputs
            .iter()
            .map(|x| var_of(*x, fixed))
            .collect::<Result<Vec<_>, _>>()?;
        for (o, v) in ie.outputs.iter().zip(Var::apply(ie.op.clone(), args)?) {
            fixed.entry(*o).or_insert(v);
        }
    }
    inner.outputs().iter().map(|o| var_of(*o, fixed)).collect()
}

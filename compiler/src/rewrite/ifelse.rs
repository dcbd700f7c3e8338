//! Rewrites of IfElse (DESIGN §8): a condition known at compile time selects its branch
//! (`ifelse_constant_condition`), and a choice between two equal branches is just the
//! branch (`ifelse_same_branches`); either way the branch's graph is copied in place of
//! the node and rewritten with the rest. A `switch` on one scalar condition between two
//! values of its own type, one of them computed on arrays, becomes an IfElse, so only
//! the chosen value is computed (`switch_to_ifelse`, PyTensor's lazy switch). A branch's
//! computation that the rest of the function computes anyway is read from there instead
//! (`ifelse_reuse_outer_values`).

use std::collections::HashMap;
use std::sync::Arc;

use tensorlift_ir::fgraph::Client;
use tensorlift_ir::ops::{IfElse, InnerGraph};
use tensorlift_ir::{FunctionGraph, GraphError, NodeId, Op, Origin, ScalarOp, Var, VarId, VarKind};

use super::inline::copy_graph;
use super::{Rule, RuleKind};

pub const RULES: [Rule; 4] = [
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
    // Before `ifelse_reuse_outer_values`: what the rest of the function computes anyway
    // leaves the new branches.
    Rule {
        name: "switch_to_ifelse",
        tag: "canonicalize",
        kind: RuleKind::Global(switch_to_ifelse),
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

/// `switch(c, a, b)` → `ifelse(c, a, b)` where that cannot change a value: `c` is 0-d
/// (one choice for every element) and `a`, `b` and the result have one type whose sizes
/// are all known at compile time (nothing broadcast, nothing cast), and a branch does
/// work on arrays (worth skipping). Only the chosen value is then computed, so a call
/// whose untaken value would fail (an index out of bounds) now succeeds, as PyTensor's
/// lazy `ifelse` does. Returns how many switches changed.
pub fn switch_to_ifelse(fg: &mut FunctionGraph) -> Result<usize, GraphError> {
    let mut count = 0;
    for n in fg.toposort() {
        let Some(e) = fg.node(n) else { continue };
        let Op::Elemwise(ScalarOp::Switch) = e.op else {
            continue;
        };
        let (cond, a, b, out) = (e.inputs[0], e.inputs[1], e.inputs[2], e.outputs[0]);
        let ty = |v: VarId| &fg.var(v).ty;
        let fits = fg.var(cond).ty.ndim() == 0
            && ty(a) == ty(out)
            && ty(b) == ty(out)
            && ty(out).shape.iter().all(Option::is_some);
        if !fits {
            continue;
        }
        let vars = user_vars(fg, &[cond, a, b])?;
        let chosen = tensorlift_ir::ifelse(&vars[&cond], &[&vars[&a]], &[&vars[&b]]);
        let Some(VarKind::Output { node, .. }) = chosen.first().map(Var::kind) else {
            continue;
        };
        let Op::IfElse(ifelse) = &node.op else {
            continue;
        };
        if !does_array_work(ifelse.then_branch.graph())
            && !does_array_work(ifelse.else_branch.graph())
        {
            continue;
        }
        let by_key: HashMap<usize, VarId> = vars.iter().map(|(id, v)| (v.key(), *id)).collect();
        let Some(inputs) = node
            .inputs
            .iter()
            .map(|v| by_key.get(&v.key()).copied())
            .collect::<Option<Vec<VarId>>>()
        else {
            continue;
        };
        let new = fg.add_node(node.op.clone(), inputs)?;
        fg.replace(out, new[0])?;
        count += 1;
    }
    Ok(count)
}

/// Whether a node of `g` (not a view or a shape query) reads or makes an array that is
/// not known to hold one element.
fn does_array_work(g: &FunctionGraph) -> bool {
    let large = |v: &VarId| g.var(*v).ty.static_size().is_none_or(|n| n > 1);
    g.toposort().into_iter().any(|n| {
        g.node(n).is_some_and(|e| {
            let bookkeeping = matches!(
                e.op,
                Op::DimShuffle(_) | Op::Subtensor(_) | Op::Shape | Op::SpecifyShape(_)
            );
            !bookkeeping && (e.inputs.iter().any(large) || e.outputs.iter().any(large))
        })
    })
}

/// Graph-building variables for `roots` of `fg` and everything they depend on (inputs
/// as inputs of their type, constants as constants), by variable.
fn user_vars(fg: &FunctionGraph, roots: &[VarId]) -> Result<HashMap<VarId, Var>, GraphError> {
    let mut needed: std::collections::HashSet<NodeId> = std::collections::HashSet::new();
    let mut stack: Vec<VarId> = roots.to_vec();
    let mut vars: HashMap<VarId, Var> = HashMap::new();
    while let Some(v) = stack.pop() {
        match &fg.var(v).origin {
            Origin::Input => {
                vars.entry(v)
                    .or_insert_with(|| Var::input(&fg.describe(v), fg.var(v).ty.clone()));
            }
            Origin::Constant(d) => {
                vars.entry(v).or_insert_with(|| Var::constant(d.clone()));
            }
            Origin::Node { node, .. } => {
                if needed.insert(*node) {
                    if let Some(e) = fg.node(*node) {
                        stack.extend(&e.inputs);
                    }
                }
            }
        }
    }
    for n in fg.toposort() {
        if !needed.contains(&n) {
            continue;
        }
        let Some(e) = fg.node(n) else { continue };
        let args = e
            .inputs
            .iter()
            .map(|x| vars.get(x).cloned())
            .collect::<Option<Vec<Var>>>()
            .ok_or_else(|| GraphError::Internal("a switch operand was not rebuilt".into()))?;
        for (o, v) in e.outputs.iter().zip(Var::apply(e.op.clone(), args)?) {
            vars.insert(*o, v);
        }
    }
    Ok(vars)
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

//! Rewrites of IfElse (DESIGN §8): a condition known at compile time selects its branch
//! (`ifelse_constant_condition`), and a choice between two equal branches is just the
//! branch (`ifelse_same_branches`); either way the branch's graph is copied in place of
//! the node and rewritten with the rest.

use tensorlift_ir::{FunctionGraph, GraphError, Op, Origin};

use super::inline::copy_graph;
use super::{Rule, RuleKind};

pub const RULES: [Rule; 2] = [
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

//! Merge: common-subexpression elimination. Equal constants become one variable; nodes
//! with equal ops and equal inputs become one node.

use std::collections::HashMap;

use tensorlift_ir::{FunctionGraph, GraphError, Op, Origin, VarId};

use super::{Rule, RuleKind};

pub const RULES: [Rule; 1] = [Rule {
    name: "merge",
    tag: "merge",
    kind: RuleKind::Global(merge),
}];

/// Merges equal constants and equal nodes; returns how many variables were replaced.
pub fn merge(fg: &mut FunctionGraph) -> Result<usize, GraphError> {
    let mut merged = merge_constants(fg)?;
    // Nodes bucketed by their op's text and inputs; within a bucket, ops compared for
    // equality (inner graphs are equal only when their structure is).
    let mut seen: HashMap<String, Vec<(Op, Vec<VarId>)>> = HashMap::new();
    for node in fg.toposort() {
        let Some(entry) = fg.node(node) else { continue };
        let key = format!("{:?}|{:?}", entry.op, entry.inputs);
        let outputs = entry.outputs.clone();
        let bucket = seen.entry(key).or_default();
        let same = bucket
            .iter()
            .find(|(op, outs)| *op == entry.op && outs.len() == outputs.len())
            .map(|(_, outs)| outs.clone());
        match same {
            Some(existing) => {
                for (old, new) in outputs.iter().zip(existing) {
                    fg.replace(*old, new)?;
                    merged += 1;
                }
            }
            None => bucket.push((entry.op.clone(), outputs)),
        }
    }
    Ok(merged)
}

fn merge_constants(fg: &mut FunctionGraph) -> Result<usize, GraphError> {
    let mut used: Vec<VarId> = Vec::new();
    for node in fg.toposort() {
        if let Some(e) = fg.node(node) {
            used.extend(e.inputs.iter().copied());
        }
    }
    used.extend(fg.outputs().iter().copied());
    used.sort();
    used.dedup();
    let mut canonical: Vec<VarId> = Vec::new();
    let mut merged = 0;
    for var in used {
        let Origin::Constant(data) = &fg.var(var).origin else {
            continue;
        };
        let same = canonical
            .iter()
            .copied()
            .find(|c| match &fg.var(*c).origin {
                Origin::Constant(d) => d.same_as(data),
                _ => false,
            });
        match same {
            Some(c) => {
                fg.replace(var, c)?;
                merged += 1;
            }
            None => canonical.push(var),
        }
    }
    Ok(merged)
}

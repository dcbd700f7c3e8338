//! `ifelse`: a lazy choice between two sets of outputs (DESIGN §8).
//!
//! Owns: splitting the two branches' computations into what only the then branch needs,
//! what only the else branch needs (each becomes its branch's inner graph, run only when
//! taken) and what both or the condition need (computed once, before, as the node's
//! inputs).

use std::collections::HashSet;
use std::sync::Arc;

use crate::error::{GraphError, Result};
use crate::fgraph::FunctionGraph;
use crate::ops::{IfElse, InnerGraph, Op};
use crate::var::{postorder, Var, VarKind};

/// `then_outputs` when `cond` (a scalar; non-zero is true) holds, else `else_outputs`;
/// lazy in every backend: only the taken branch's own computations run. Output k has the
/// least specific of the two branches' types (they must agree in dtype and rank). Never
/// panics: a choice that cannot be built gives outputs carrying the error.
///
/// ```
/// use tensorlift_ir::{ifelse, scalar, vector, DType};
/// let (c, x) = (scalar("c", DType::Bool), vector("x", DType::Float64));
/// let out = ifelse(&c, &[&x.exp().sum(None)], &[&(x.get(tensorlift_ir::idx![0]) + 1.0)]);
/// assert_eq!(out[0].ty().ndim(), 0);
/// ```
pub fn ifelse(cond: &Var, then_outputs: &[&Var], else_outputs: &[&Var]) -> Vec<Var> {
    let n = then_outputs.len().max(1);
    match build(cond, then_outputs, else_outputs) {
        Ok(outputs) => outputs,
        Err(e) => vec![Var::invalid(e); n],
    }
}

fn build(cond: &Var, then_outputs: &[&Var], else_outputs: &[&Var]) -> Result<Vec<Var>> {
    cond.check()?;
    if then_outputs.len() != else_outputs.len() {
        return Err(GraphError::op(
            "IfElse",
            format!(
                "the then branch has {} outputs, the else branch {}",
                then_outputs.len(),
                else_outputs.len()
            ),
        ));
    }
    let then_outs: Vec<Var> = then_outputs.iter().map(|v| (*v).clone()).collect();
    let else_outs: Vec<Var> = else_outputs.iter().map(|v| (*v).clone()).collect();
    for v in then_outs.iter().chain(&else_outs) {
        v.check()?;
    }
    let keys = |vs: &[Var]| -> HashSet<usize> { postorder(vs).iter().map(Var::key).collect() };
    let (then_all, else_all) = (keys(&then_outs), keys(&else_outs));
    let cond_all = keys(std::slice::from_ref(cond));
    let shared = |v: &Var| {
        let k = v.key();
        (then_all.contains(&k) && else_all.contains(&k)) || cond_all.contains(&k)
    };
    // The values each branch reads from outside itself: graph inputs and shared values.
    let mut values: Vec<Var> = Vec::new();
    let mut seen = HashSet::new();
    for outs in [&then_outs, &else_outs] {
        let mut stack: Vec<Var> = outs.iter().rev().cloned().collect();
        while let Some(v) = stack.pop() {
            if !seen.insert(v.key()) {
                continue;
            }
            match v.kind() {
                VarKind::Constant(_) => {}
                VarKind::Input => values.push(v.clone()),
                VarKind::Invalid(e) => return Err(e.clone()),
                VarKind::Output { node, .. } => {
                    if shared(&v) {
                        values.push(v.clone());
                    } else {
                        stack.extend(node.inputs.iter().rev().cloned());
                    }
                }
            }
        }
    }
    let placeholders: Vec<Var> = values
        .iter()
        .map(|v| Var::input(&v.label(), v.ty().clone()))
        .collect();
    let pairs: Vec<(&Var, &Var)> = values.iter().zip(&placeholders).collect();
    let branch = |outs: &[Var]| -> Result<InnerGraph> {
        let refs: Vec<&Var> = outs.iter().collect();
        let cloned = crate::clone::clone_replace(&refs, &pairs, false)?;
        Ok(InnerGraph::new(FunctionGraph::new(&placeholders, &cloned)?))
    };
    let op = IfElse {
        then_branch: branch(&then_outs)?,
        else_branch: branch(&else_outs)?,
    };
    let mut inputs = vec![cond.clone()];
    inputs.extend(values);
    Var::apply(Op::IfElse(Arc::new(op)), inputs)
}

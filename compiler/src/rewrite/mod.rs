//! The rewrite framework (DESIGN §6): named rules in tagged groups, run by bounded drivers,
//! every application type-checked by `FunctionGraph::replace`.
//!
//! Owns: `Rule` (a local rule maps a node to replacement expressions, a global rule edits
//! the whole graph), `Expr` (a replacement, materialised into nodes by the driver, so a
//! rule that declines leaves nothing behind), the rule table (`RULES`), the equilibrium
//! driver with its budget and stop reasons, and the `RewriteReport`. Each rule group lives
//! in its own module: `canonicalize`, `stabilize`, `specialize`, `fusion`, `merge`,
//! `inline`, `scan`, `ifelse`.

/// A rule table: `rules!("group"; rule_fn, ...)` names each local rule after its function.
macro_rules! rules {
    ($tag:literal; $($name:ident),* $(,)?) => {
        [$($crate::rewrite::Rule {
            name: stringify!($name),
            tag: $tag,
            kind: $crate::rewrite::RuleKind::Local($name),
        }),*]
    };
}

pub mod blockwise;
pub mod canonicalize;
pub mod fusion;
pub mod grad;
pub mod ifelse;
pub mod inline;
pub mod merge;
pub mod pattern;
pub mod report;
pub mod scan;
pub mod specialize;
pub mod stabilize;

use std::time::Instant;

use tensorlift_ir::{FunctionGraph, GraphError, NodeId, Op, TensorData, VarId};

pub use report::{RewriteReport, StopReason};

use crate::error::CompileError;

/// A replacement expression over existing variables.
#[derive(Clone, Debug)]
pub enum Expr {
    /// An existing variable.
    Var(VarId),
    /// A new constant.
    Const(TensorData),
    /// Output `output` of `op` applied to the inputs.
    Apply {
        op: Op,
        inputs: Vec<Expr>,
        output: usize,
    },
}

impl Expr {
    /// The single (first) output of `op` on `inputs`.
    pub fn apply(op: Op, inputs: Vec<Expr>) -> Expr {
        Expr::Apply {
            op,
            inputs,
            output: 0,
        }
    }

    /// Adds the expression's nodes to the graph and returns the variable it denotes.
    pub fn materialize(&self, fg: &mut FunctionGraph) -> Result<VarId, GraphError> {
        match self {
            Expr::Var(v) => Ok(*v),
            Expr::Const(d) => Ok(fg.add_constant(d.clone())),
            Expr::Apply { op, inputs, output } => {
                let ins = inputs
                    .iter()
                    .map(|e| e.materialize(fg))
                    .collect::<Result<Vec<_>, _>>()?;
                let outs = fg.add_node(op.clone(), ins)?;
                outs.get(*output)
                    .copied()
                    .ok_or_else(|| GraphError::Internal(format!("{op} has no output {output}")))
            }
        }
    }
}

/// A local rule: replacement expressions for every output of the node, or `None`.
pub type LocalFn = fn(&FunctionGraph, NodeId) -> Option<Vec<Expr>>;
/// A global rule: edits the graph, returns how many changes it made.
pub type GlobalFn = fn(&mut FunctionGraph) -> Result<usize, GraphError>;

#[derive(Clone, Copy)]
pub enum RuleKind {
    Local(LocalFn),
    Global(GlobalFn),
}

/// A named rewrite rule.
#[derive(Clone, Copy)]
pub struct Rule {
    pub name: &'static str,
    /// The group it belongs to (`canonicalize`, `stabilize`, `specialize`, `fusion`).
    pub tag: &'static str,
    pub kind: RuleKind,
}

/// Every rule, in the order the pipeline runs their groups.
pub fn all_rules() -> Vec<Rule> {
    let mut rules = Vec::new();
    rules.extend(merge::RULES);
    rules.extend(inline::RULES);
    rules.extend(scan::RULES);
    rules.extend(ifelse::RULES);
    rules.extend(canonicalize::RULES);
    rules.extend(blockwise::RULES);
    rules.extend(stabilize::RULES);
    rules.extend(specialize::RULES);
    rules.extend(fusion::RULES);
    rules
}

/// How a group's local rules are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// Passes over the graph in topological order until no rule fires (bounded by the
    /// group's `Budget`).
    Equilibrium,
    /// One pass in topological order: each node is visited once, after its inputs.
    Topological,
}

/// The groups of the default pipeline, in order, with their drivers.
pub const PIPELINE: [(&str, Driver); 7] = [
    ("merge", Driver::Equilibrium),
    ("canonicalize", Driver::Equilibrium),
    ("stabilize", Driver::Equilibrium),
    ("specialize", Driver::Equilibrium),
    // Forms written out by the rules above repeat subexpressions: shared before fusion
    // decides what each kernel computes.
    ("merge", Driver::Equilibrium),
    ("fusion", Driver::Equilibrium),
    ("merge", Driver::Equilibrium),
];

/// Which rules run: when `included` is non-empty only rules named there (by name or
/// group tag) run; rules named in `excluded` never run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RuleFilter {
    pub included: Vec<String>,
    pub excluded: Vec<String>,
}

impl RuleFilter {
    pub fn allows(&self, rule: &Rule) -> bool {
        let named = |list: &[String]| list.iter().any(|e| e == rule.name || e == rule.tag);
        (self.included.is_empty() || named(&self.included)) && !named(&self.excluded)
    }
}

/// Bounds of one rewrite group.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Passes over the graph before giving up.
    pub max_passes: usize,
    /// Live nodes allowed (guards against rewrites that grow the graph without end).
    pub max_nodes: usize,
}

impl Budget {
    /// The default: 50 passes, and at most 4× the starting node count plus 1000 nodes.
    pub fn for_graph(fg: &FunctionGraph) -> Budget {
        Budget {
            max_passes: 50,
            max_nodes: 4 * fg.n_nodes() + 1000,
        }
    }
}

/// Runs the default pipeline's groups with `filter` on `fg`, recording into `report`.
pub fn run_pipeline(
    fg: &mut FunctionGraph,
    filter: &RuleFilter,
    report: &mut RewriteReport,
) -> Result<(), CompileError> {
    let rules = all_rules();
    let select = |group: &str| -> Vec<Rule> {
        rules
            .iter()
            .filter(|r| r.tag == group && filter.allows(r))
            .copied()
            .collect()
    };
    for (group, driver) in PIPELINE {
        run_group(fg, group, &select(group), driver, report)?;
        // Lazy gradients are taken of the stabilized cost graphs; the gradient graphs
        // then go through canonicalize and stabilize themselves.
        if group == "stabilize" && grad::expand_grads(fg, filter, true, report)? > 0 {
            for group in ["merge", "canonicalize", "stabilize"] {
                run_group(fg, group, &select(group), Driver::Equilibrium, report)?;
            }
        }
    }
    Ok(())
}

/// Runs the named rules (from any group) to equilibrium; for tests and tools.
pub fn run_rules(fg: &mut FunctionGraph, names: &[&str]) -> Result<RewriteReport, CompileError> {
    let mut report = RewriteReport::default();
    let rules: Vec<Rule> = all_rules()
        .into_iter()
        .filter(|r| names.contains(&r.name))
        .collect();
    if rules.len() != names.len() {
        return Err(CompileError::Internal(format!(
            "unknown rewrite rule among {names:?}"
        )));
    }
    run_group(fg, "selected", &rules, Driver::Equilibrium, &mut report)?;
    Ok(report)
}

/// Runs one group: global rules once each, then local rules with `driver`.
pub fn run_group(
    fg: &mut FunctionGraph,
    group: &str,
    rules: &[Rule],
    driver: Driver,
    report: &mut RewriteReport,
) -> Result<(), CompileError> {
    let start = Instant::now();
    for rule in rules {
        if let RuleKind::Global(f) = rule.kind {
            let t = Instant::now();
            let n =
                f(fg).map_err(|e| CompileError::Internal(format!("rule {}: {e}", rule.name)))?;
            report.record(rule, n, t.elapsed());
        }
    }
    let locals: Vec<(&Rule, LocalFn)> = rules
        .iter()
        .filter_map(|r| match r.kind {
            RuleKind::Local(f) => Some((r, f)),
            RuleKind::Global(_) => None,
        })
        .collect();
    let reason = match driver {
        _ if locals.is_empty() => StopReason::Saturated,
        Driver::Equilibrium => equilibrium(fg, &locals, Budget::for_graph(fg), report)?,
        Driver::Topological => {
            one_pass(fg, &locals, report)?;
            StopReason::OnePass
        }
    };
    report.finish_group(group, reason, start.elapsed());
    if cfg!(debug_assertions) {
        fg.check_integrity()
            .map_err(|e| CompileError::Internal(format!("after rewrite group {group}: {e}")))?;
    }
    match reason {
        StopReason::Saturated | StopReason::OnePass => Ok(()),
        other => Err(CompileError::RewriteDidNotConverge {
            group: group.to_string(),
            reason: other.to_string(),
            fired: report.top_rules(5),
        }),
    }
}

fn equilibrium(
    fg: &mut FunctionGraph,
    rules: &[(&Rule, LocalFn)],
    budget: Budget,
    report: &mut RewriteReport,
) -> Result<StopReason, CompileError> {
    for _ in 0..budget.max_passes {
        if !one_pass(fg, rules, report)? {
            return Ok(StopReason::Saturated);
        }
        if fg.n_nodes() > budget.max_nodes {
            return Ok(StopReason::NodeLimit(budget.max_nodes));
        }
    }
    Ok(StopReason::PassLimit(budget.max_passes))
}

/// Visits every node once in topological order, trying each rule on it until one fires;
/// returns whether any fired.
fn one_pass(
    fg: &mut FunctionGraph,
    rules: &[(&Rule, LocalFn)],
    report: &mut RewriteReport,
) -> Result<bool, CompileError> {
    let mut changed = false;
    for node in fg.toposort() {
        for (rule, f) in rules {
            if fg.node(node).is_none() {
                break;
            }
            let t = Instant::now();
            let Some(replacements) = f(fg, node) else {
                report.record_time(rule, t.elapsed());
                continue;
            };
            apply(fg, rule, node, &replacements)?;
            report.record(rule, 1, t.elapsed());
            changed = true;
        }
    }
    Ok(changed)
}

/// Materialises the replacements of `node`'s outputs and replaces them.
fn apply(
    fg: &mut FunctionGraph,
    rule: &Rule,
    node: NodeId,
    replacements: &[Expr],
) -> Result<(), CompileError> {
    let outputs = fg.node(node).map(|e| e.outputs.clone()).ok_or_else(|| {
        CompileError::Internal(format!("rule {} matched a removed node", rule.name))
    })?;
    if outputs.len() != replacements.len() {
        return Err(CompileError::Internal(format!(
            "rule {} gave {} replacements for {} outputs",
            rule.name,
            replacements.len(),
            outputs.len()
        )));
    }
    let new: Vec<VarId> = replacements
        .iter()
        .map(|e| e.materialize(fg))
        .collect::<Result<_, _>>()
        .map_err(|e| {
            CompileError::Internal(format!("rule {} built an invalid node: {e}", rule.name))
        })?;
    for (old, new) in outputs.iter().zip(new) {
        let new = keep_static_shape(fg, *old, new)
            .map_err(|e| CompileError::Internal(format!("rule {}: {e}", rule.name)))?;
        fg.replace(*old, new)
            .map_err(|e| CompileError::Internal(format!("rule {}: {e}", rule.name)))?;
    }
    Ok(())
}

/// A replacement that knows fewer static sizes than the replaced variable is wrapped in
/// `SpecifyShape`, so downstream types stay valid (the sizes are checked at run time).
fn keep_static_shape(fg: &mut FunctionGraph, old: VarId, new: VarId) -> Result<VarId, GraphError> {
    let (old_ty, new_ty) = (&fg.var(old).ty, &fg.var(new).ty);
    if new_ty.is_subtype_of(old_ty) || new_ty.incompatibility(old_ty).is_some() {
        return Ok(new);
    }
    let spec = old_ty.shape.clone();
    Ok(fg.add_node(Op::SpecifyShape(spec), vec![new])?[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_are_unique_and_tagged_with_a_pipeline_group() {
        let rules = all_rules();
        let mut names: Vec<&str> = rules.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), rules.len(), "duplicate rule names");
        for r in &rules {
            assert!(
                PIPELINE.iter().any(|(g, _)| *g == r.tag),
                "{} has tag {}",
                r.name,
                r.tag
            );
        }
    }

    #[test]
    fn filters_select_by_name_or_tag() {
        let rules = all_rules();
        let log1p = rules.iter().find(|r| r.name == "log1p_from_log").unwrap();
        let fusion = rules.iter().find(|r| r.name == "elemwise_fusion").unwrap();
        let mut f = RuleFilter::default();
        assert!(f.allows(log1p) && f.allows(fusion));
        f.excluded.push("stabilize".into());
        assert!(!f.allows(log1p) && f.allows(fusion));
        let only = RuleFilter {
            included: vec!["elemwise_fusion".into()],
            excluded: vec![],
        };
        assert!(!only.allows(log1p) && only.allows(fusion));
    }
}

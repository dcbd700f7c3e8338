//! Inner graphs: ops that hold a whole graph (OpFromGraph, the lazy Grad; Scan and IfElse
//! have their own modules).
//!
//! Owns: `InnerGraph` (a shared, immutable `FunctionGraph` with structural equality, so
//! merge tells two equal inner graphs from two different ones), `OpFromGraph` and `GradOp`
//! with their type rules. An inner graph is closed: it reads only its own inputs and constants, never a
//! variable of the graph around it, so replacing outer variables (`clone_replace`) never
//! reaches into it. `Op::inner_graphs` is the one accessor that printing, integrity checks
//! and the rewrite driver recurse through.

use std::fmt;
use std::sync::Arc;

use super::InputInfo;
use crate::error::{GraphError, Result};
use crate::fgraph::FunctionGraph;
use crate::types::TensorType;

/// A shared, immutable graph held by an op.
#[derive(Clone)]
pub struct InnerGraph {
    graph: Arc<FunctionGraph>,
    /// The canonical text (inputs' types, then every output's tree with ops, types and
    /// constants): equal keys, equal graphs.
    key: Arc<str>,
}

impl InnerGraph {
    pub fn new(graph: FunctionGraph) -> InnerGraph {
        let mut key = String::new();
        for v in graph.inputs() {
            key.push_str(&graph.var(*v).ty.to_string());
            key.push(';');
        }
        key.push('\n');
        key.push_str(&crate::print::dprint_fgraph(&graph));
        InnerGraph {
            graph: Arc::new(graph),
            key: key.into(),
        }
    }

    pub fn graph(&self) -> &FunctionGraph {
        &self.graph
    }

    /// The types of the graph's inputs.
    pub fn input_types(&self) -> Vec<&TensorType> {
        self.graph
            .inputs()
            .iter()
            .map(|v| &self.graph.var(*v).ty)
            .collect()
    }

    /// The types of the graph's outputs.
    pub fn output_types(&self) -> Vec<TensorType> {
        self.graph
            .outputs()
            .iter()
            .map(|v| self.graph.var(*v).ty.clone())
            .collect()
    }
}

impl PartialEq for InnerGraph {
    fn eq(&self, other: &InnerGraph) -> bool {
        Arc::ptr_eq(&self.graph, &other.graph) || self.key == other.key
    }
}

impl fmt::Debug for InnerGraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.key.hash(&mut h);
        write!(
            f,
            "InnerGraph({} inputs, {} outputs, {} nodes, structure {:016x})",
            self.graph.inputs().len(),
            self.graph.outputs().len(),
            self.graph.n_nodes(),
            h.finish()
        )
    }
}

/// A graph used as one op (PyTensor's `OpFromGraph`): applied like a function to new
/// variables, inlined by the `inline_op_from_graph` rewrite unless `inline` is false, in
/// which case every backend runs it as its own compiled function.
#[derive(Clone, Debug, PartialEq)]
pub struct OpFromGraph {
    pub name: String,
    pub graph: InnerGraph,
    pub inline: bool,
}

impl OpFromGraph {
    /// The output types for `inputs`: each input must be of the inner input's dtype and
    /// rank, with no static size the inner input contradicts or lacks.
    pub(crate) fn infer(&self, name: &str, inputs: &[InputInfo]) -> Result<Vec<TensorType>> {
        check_inputs(name, &self.graph, inputs)?;
        Ok(self.graph.output_types())
    }
}

/// A gradient not yet taken (DESIGN §7, the lazy `Grad`): the cost graph, whose first
/// `n_wrt` inputs are the variables differentiated against and the rest the other values
/// it reads. The compile pipeline rewrites the cost graph (canonicalize, stabilize) and
/// only then differentiates it, so the gradient of a stabilized form is taken.
#[derive(Clone, Debug, PartialEq)]
pub struct GradOp {
    pub cost: InnerGraph,
    pub n_wrt: usize,
}

impl GradOp {
    /// One output per variable differentiated against, of its type.
    pub(crate) fn infer(&self, name: &str, inputs: &[InputInfo]) -> Result<Vec<TensorType>> {
        check_inputs(name, &self.cost, inputs)?;
        let expected = self.cost.input_types();
        if self.n_wrt > expected.len() {
            return Err(GraphError::op(
                name,
                format!("differentiates {} of {} inputs", self.n_wrt, expected.len()),
            ));
        }
        Ok(expected[..self.n_wrt]
            .iter()
            .map(|t| (*t).clone())
            .collect())
    }
}

/// Each input must be of the inner input's dtype and rank, with no static size the inner
/// input contradicts or lacks.
fn check_inputs(name: &str, graph: &InnerGraph, inputs: &[InputInfo]) -> Result<()> {
    let expected = graph.input_types();
    if inputs.len() != expected.len() {
        return Err(GraphError::op(
            name,
            format!("takes {} inputs, got {}", expected.len(), inputs.len()),
        ));
    }
    for (k, (x, want)) in inputs.iter().zip(&expected).enumerate() {
        if !x.ty.is_subtype_of(want) {
            return Err(GraphError::op(
                name,
                format!("input {k} is {}, but the graph's input {k} is {want}", x.ty),
            ));
        }
    }
    Ok(())
}

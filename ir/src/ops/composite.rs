//! `Composite`: a small DAG of scalar ops applied per element by a fused kernel (the op
//! `Op::Composite`, and the body of `Op::FusedReduce`).
//!
//! Owns: the composite's structure (inputs by dtype, scalar nodes in dependency order,
//! outputs), its validation and dtype inference (each node follows its `ScalarOp`'s
//! signature, so fused code computes exactly what the unfused graph computed), and its text
//! form for dprint.

use std::fmt;

use crate::dtype::{DType, Literal};
use crate::error::{GraphError, Result};
use crate::ops::ScalarOp;

/// An argument of a scalar node or an output of the composite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScalarRef {
    /// Input k of the composite.
    Input(usize),
    /// The result of node k (an earlier node).
    Node(usize),
    /// A literal of the given dtype.
    Const(Literal, DType),
}

/// One scalar operation inside a composite.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarNode {
    pub op: ScalarOp,
    pub args: Vec<ScalarRef>,
    /// Output dtype (inferred).
    pub dtype: DType,
}

/// A scalar DAG with typed inputs and one or more outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Composite {
    pub inputs: Vec<DType>,
    pub nodes: Vec<ScalarNode>,
    pub outputs: Vec<ScalarRef>,
}

impl Composite {
    /// Builds and validates a composite; node dtypes are inferred in order.
    pub fn new(
        inputs: Vec<DType>,
        nodes: Vec<(ScalarOp, Vec<ScalarRef>)>,
        outputs: Vec<ScalarRef>,
    ) -> Result<Composite> {
        let mut c = Composite {
            inputs,
            nodes: Vec::with_capacity(nodes.len()),
            outputs: Vec::new(),
        };
        for (k, (op, args)) in nodes.into_iter().enumerate() {
            let dtypes = args
                .iter()
                .map(|a| c.checked_dtype(*a, k))
                .collect::<Result<Vec<_>>>()?;
            let (_, dtype) = op
                .signature(&dtypes)
                .map_err(|m| GraphError::op("Composite", format!("node {k} ({op}) {m}")))?;
            c.nodes.push(ScalarNode { op, args, dtype });
        }
        for o in &outputs {
            c.checked_dtype(*o, c.nodes.len())?;
        }
        if outputs.is_empty() {
            return Err(GraphError::op("Composite", "needs at least one output"));
        }
        c.outputs = outputs;
        Ok(c)
    }

    fn checked_dtype(&self, r: ScalarRef, before: usize) -> Result<DType> {
        match r {
            ScalarRef::Input(i) if i < self.inputs.len() => Ok(self.inputs[i]),
            ScalarRef::Node(j) if j < before && j < self.nodes.len() => Ok(self.nodes[j].dtype),
            ScalarRef::Const(_, d) => Ok(d),
            other => Err(GraphError::Internal(format!(
                "composite reference {other:?} is out of range"
            ))),
        }
    }

    /// The dtype of a reference (which must be valid for this composite).
    pub fn dtype_of(&self, r: ScalarRef) -> DType {
        match r {
            ScalarRef::Input(i) => self.inputs[i],
            ScalarRef::Node(j) => self.nodes[j].dtype,
            ScalarRef::Const(_, d) => d,
        }
    }

    pub fn output_dtypes(&self) -> Vec<DType> {
        self.outputs.iter().map(|o| self.dtype_of(*o)).collect()
    }

    fn uses(&self) -> Vec<usize> {
        let mut uses = vec![0; self.nodes.len()];
        let refs = self
            .nodes
            .iter()
            .flat_map(|n| n.args.iter())
            .chain(&self.outputs);
        for r in refs {
            if let ScalarRef::Node(j) = r {
                uses[*j] += 1;
            }
        }
        uses
    }

    fn render(&self, r: ScalarRef, shared: &[bool], out: &mut String) {
        match r {
            ScalarRef::Input(i) => out.push_str(&format!("i{i}")),
            ScalarRef::Const(l, _) => out.push_str(&l.to_string()),
            ScalarRef::Node(j) if shared[j] => out.push_str(&format!("t{j}")),
            ScalarRef::Node(j) => self.render_node(j, shared, out),
        }
    }

    fn render_node(&self, j: usize, shared: &[bool], out: &mut String) {
        let node = &self.nodes[j];
        out.push_str(&node.op.name().to_lowercase());
        out.push('(');
        for (k, a) in node.args.iter().enumerate() {
            if k > 0 {
                out.push_str(", ");
            }
            self.render(*a, shared, out);
        }
        out.push(')');
    }
}

impl fmt::Display for Composite {
    /// `Composite{add(mul(exp(i0), i1), 0.5)}`; a node used more than once is bound to
    /// `tK` first: `Composite{t0=exp(i0); add(t0, log(t0))}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared: Vec<bool> = self.uses().iter().map(|u| *u > 1).collect();
        let mut s = String::from("Composite{");
        for j in 0..self.nodes.len() {
            if shared[j] {
                s.push_str(&format!("t{j}="));
                self.render_node(j, &shared, &mut s);
                s.push_str("; ");
            }
        }
        for (k, o) in self.outputs.iter().enumerate() {
            if k > 0 {
                s.push_str(", ");
            }
            self.render(*o, &shared, &mut s);
        }
        s.push('}');
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_dtypes_and_prints_shared_nodes() {
        let c = Composite::new(
            vec![DType::Float32, DType::Int8],
            vec![
                (ScalarOp::Exp, vec![ScalarRef::Input(0)]),
                (ScalarOp::Log, vec![ScalarRef::Node(0)]),
                (ScalarOp::Add, vec![ScalarRef::Node(0), ScalarRef::Node(1)]),
                (ScalarOp::Mul, vec![ScalarRef::Node(2), ScalarRef::Input(1)]),
            ],
            vec![ScalarRef::Node(3)],
        )
        .unwrap();
        assert_eq!(c.output_dtypes(), vec![DType::Float32]);
        assert_eq!(
            c.to_string(),
            "Composite{t0=exp(i0); mul(add(t0, log(t0)), i1)}"
        );
        let bad = Composite::new(
            vec![DType::Float64],
            vec![(ScalarOp::Exp, vec![ScalarRef::Node(0)])],
            vec![],
        );
        assert!(bad.is_err());
    }
}

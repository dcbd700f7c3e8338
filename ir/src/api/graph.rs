//! `op_from_graph`: a graph made into a reusable op (PyTensor's `OpFromGraph`), applied
//! like a function to new variables.

use std::sync::Arc;

use crate::error::Result;
use crate::fgraph::FunctionGraph;
use crate::ops::{InnerGraph, Op, OpFromGraph};
use crate::var::Var;

/// The graph computing `outputs` from `inputs` as an op: `.apply(&[&a, &b])` gives its
/// outputs on new variables (type-checked against `inputs`). The compile pipeline inlines
/// it (rewrite `inline_op_from_graph`) unless `.inline(false)` asks to keep it as its own
/// separately compiled function.
///
/// ```
/// use tensorlift_ir::{op_from_graph, vector, DType};
/// let (x, y) = (vector("x", DType::Float64), vector("y", DType::Float64));
/// let axpy = op_from_graph(&[&x, &y], &[&(&x * 2.0 + &y)])?.named("axpy");
/// let (a, b) = (vector("a", DType::Float64), vector("b", DType::Float64));
/// let out = axpy.apply(&[&a, &b])?;
/// assert_eq!(out[0].ty(), a.ty());
/// assert!(axpy.apply(&[&a]).is_err()); // two inputs expected
/// # Ok::<(), tensorlift_ir::GraphError>(())
/// ```
pub fn op_from_graph(inputs: &[&Var], outputs: &[&Var]) -> Result<GraphOp> {
    let ins: Vec<Var> = inputs.iter().map(|v| (*v).clone()).collect();
    let outs: Vec<Var> = outputs.iter().map(|v| (*v).clone()).collect();
    let graph = FunctionGraph::new(&ins, &outs)?;
    Ok(GraphOp(Arc::new(OpFromGraph {
        name: "OpFromGraph".into(),
        graph: InnerGraph::new(graph),
        inline: true,
    })))
}

/// A graph as an op (see `op_from_graph`).
#[derive(Clone, Debug, PartialEq)]
pub struct GraphOp(Arc<OpFromGraph>);

impl GraphOp {
    /// The same op under `name` (printed as `OpFromGraph{name}`).
    ///
    /// ```
    /// use tensorlift_ir::{op_from_graph, vector, DType};
    /// let x = vector("x", DType::Float64);
    /// let double = op_from_graph(&[&x], &[&(&x * 2.0)])?.named("double");
    /// assert!(double.op().to_string().contains("double"));
    /// # Ok::<(), tensorlift_ir::GraphError>(())
    /// ```
    pub fn named(&self, name: &str) -> GraphOp {
        let mut op = (*self.0).clone();
        op.name = name.to_string();
        GraphOp(Arc::new(op))
    }

    /// The same op, inlined by the compile pipeline (`true`, the default) or kept as its
    /// own compiled function (`false`).
    ///
    /// ```
    /// use tensorlift_ir::{op_from_graph, vector, DType, Op};
    /// let x = vector("x", DType::Float64);
    /// let kept = op_from_graph(&[&x], &[&x.exp()])?.inline(false);
    /// assert!(matches!(kept.op(), Op::OpFromGraph(op) if !op.inline));
    /// # Ok::<(), tensorlift_ir::GraphError>(())
    /// ```
    pub fn inline(&self, yes: bool) -> GraphOp {
        let mut op = (*self.0).clone();
        op.inline = yes;
        GraphOp(Arc::new(op))
    }

    /// The outputs of the graph applied to `inputs`.
    ///
    /// ```
    /// use tensorlift_ir::{op_from_graph, matrix, vector, DType};
    /// let x = vector("x", DType::Float64);
    /// let square = op_from_graph(&[&x], &[&(&x * &x)])?;
    /// assert_eq!(square.apply(&[&vector("y", DType::Float64)])?[0].ndim(), 1);
    /// assert!(square.apply(&[&matrix("m", DType::Float64)]).is_err()); // a vector is expected
    /// # Ok::<(), tensorlift_ir::GraphError>(())
    /// ```
    pub fn apply(&self, inputs: &[&Var]) -> Result<Vec<Var>> {
        let ins = inputs.iter().map(|v| (*v).clone()).collect();
        Var::apply(Op::OpFromGraph(self.0.clone()), ins)
    }

    /// The op itself.
    ///
    /// ```
    /// use tensorlift_ir::{op_from_graph, vector, DType, Op};
    /// let x = vector("x", DType::Float64);
    /// let g = op_from_graph(&[&x], &[&x.sin()])?;
    /// assert!(matches!(g.op(), Op::OpFromGraph(_)));
    /// # Ok::<(), tensorlift_ir::GraphError>(())
    /// ```
    pub fn op(&self) -> Op {
        Op::OpFromGraph(self.0.clone())
    }
}

/// `op` (a user-defined `CustomOp`) applied to `inputs`: its outputs, typed by its
/// `infer`. The reference backend runs its `eval`; the JIT calls it as a declared
/// runtime step, or refuses the graph when the op says so.
///
/// ```
/// use std::sync::Arc;
/// use tensorlift_ir::ops::CustomOp;
/// use tensorlift_ir::{custom, vector, DType, TensorData, TensorType};
/// /// Passes its input on.
/// struct Identity;
/// impl CustomOp for Identity {
///     fn name(&self) -> &str {
///         "Identity"
///     }
///     fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, String> {
///         Ok(vec![inputs[0].clone()])
///     }
///     fn eval(&self, inputs: &[TensorData]) -> Result<Vec<TensorData>, String> {
///         Ok(vec![inputs[0].clone()])
///     }
/// }
/// let x = vector("x", DType::Float64);
/// let y = custom(Arc::new(Identity), &[&x])?;
/// assert_eq!(y[0].ty(), x.ty());
/// # Ok::<(), tensorlift_ir::GraphError>(())
/// ```
pub fn custom(op: Arc<dyn crate::ops::CustomOp>, inputs: &[&Var]) -> Result<Vec<Var>> {
    let args: Vec<Var> = inputs.iter().map(|v| (*v).clone()).collect();
    Var::apply(Op::Custom(crate::ops::CustomRef(op)), args)
}

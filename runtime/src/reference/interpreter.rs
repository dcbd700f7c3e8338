//! The reference interpreter: evaluates a `FunctionGraph` op by op. It is the oracle every
//! other backend is compared against.
//!
//! Owns: the evaluation order (computed once), freeing intermediate values after their last
//! use, and the dispatch from each `Op` to its kernel. Errors carry the node they happened
//! in. Must not: rewrite the graph or skip checks for speed.

use tensorlift_ir::ops::Op;
use tensorlift_ir::{FunctionGraph, NodeId, Origin, TensorData, VarId};

use crate::elemwise::eval_elemwise;
use crate::error::{Result, RuntimeError};
use crate::{indexing, linalg, reduce, shape_ops};

/// One node to run and the variables whose last use it is.
struct Step {
    node: NodeId,
    free_after: Vec<VarId>,
}

/// A graph prepared for interpretation.
pub struct Program {
    fgraph: FunctionGraph,
    steps: Vec<Step>,
    n_vars: usize,
}

impl Program {
    /// Prepares `fgraph` (which should pass `check_integrity`).
    pub fn new(fgraph: FunctionGraph) -> Result<Program> {
        let order = fgraph.toposort();
        let mut last_use = std::collections::HashMap::new();
        for (i, node) in order.iter().enumerate() {
            if let Some(entry) = fgraph.node(*node) {
                for x in &entry.inputs {
                    last_use.insert(*x, i);
                }
            }
        }
        let outputs: std::collections::HashSet<VarId> = fgraph.outputs().iter().copied().collect();
        let mut steps: Vec<Step> = order
            .iter()
            .map(|n| Step {
                node: *n,
                free_after: Vec::new(),
            })
            .collect();
        let mut n_vars = 0;
        for (var, i) in last_use {
            if !outputs.contains(&var) {
                steps[i].free_after.push(var);
            }
            n_vars = n_vars.max(var.0 as usize + 1);
        }
        for node in &order {
            if let Some(entry) = fgraph.node(*node) {
                for o in &entry.outputs {
                    n_vars = n_vars.max(o.0 as usize + 1);
                }
            }
        }
        for v in fgraph.inputs().iter().chain(fgraph.outputs()) {
            n_vars = n_vars.max(v.0 as usize + 1);
        }
        Ok(Program {
            fgraph,
            steps,
            n_vars,
        })
    }

    pub fn fgraph(&self) -> &FunctionGraph {
        &self.fgraph
    }

    /// Runs the graph on inputs that already passed the signature check: each node on its
    /// inputs' values, every intermediate value dropped after its last use.
    pub fn run(&self, inputs: &[TensorData]) -> Result<Vec<TensorData>> {
        let fg = &self.fgraph;
        if inputs.len() != fg.inputs().len() {
            return Err(RuntimeError::Internal(format!(
                "interpreter got {} inputs for {}",
                inputs.len(),
                fg.inputs().len()
            )));
        }
        let mut values: Vec<Option<TensorData>> = vec![None; self.n_vars];
        for (id, value) in fg.inputs().iter().zip(inputs) {
            values[id.0 as usize] = Some(value.clone());
        }
        for step in &self.steps {
            let entry = fg
                .node(step.node)
                .ok_or_else(|| RuntimeError::Internal("a scheduled node was removed".into()))?;
            let args = entry
                .inputs
                .iter()
                .map(|x| fetch(fg, &values, *x))
                .collect::<Result<Vec<_>>>()?;
            let outs = eval_node(fg, step.node, &args).map_err(|e| RuntimeError::InNode {
                node: tensorlift_ir::print::node_summary(fg, step.node),
                source: Box::new(e),
            })?;
            if outs.len() != entry.outputs.len() {
                return Err(RuntimeError::Internal(format!(
                    "{} returned {} outputs",
                    entry.op,
                    outs.len()
                )));
            }
            for (o, v) in entry.outputs.iter().zip(outs) {
                values[o.0 as usize] = Some(v);
            }
            for v in &step.free_after {
                values[v.0 as usize] = None;
            }
        }
        fg.outputs()
            .iter()
            .map(|o| fetch(fg, &values, *o))
            .collect()
    }
}

fn fetch(fg: &FunctionGraph, values: &[Option<TensorData>], var: VarId) -> Result<TensorData> {
    if let Origin::Constant(d) = &fg.var(var).origin {
        return Ok(d.clone());
    }
    values
        .get(var.0 as usize)
        .and_then(|v| v.clone())
        .ok_or_else(|| RuntimeError::Internal(format!("value of {} is missing", fg.describe(var))))
}

/// Evaluates one node on its input values.
pub fn eval_node(fg: &FunctionGraph, node: NodeId, args: &[TensorData]) -> Result<Vec<TensorData>> {
    let entry = fg
        .node(node)
        .ok_or_else(|| RuntimeError::Internal("evaluating a removed node".into()))?;
    eval_node_named(fg, node, &entry.op.to_string(), args)
}

/// `eval_node` with the op's name (its `Display`, used in errors) given, for callers that
/// evaluate the same node many times.
pub fn eval_node_named(
    fg: &FunctionGraph,
    node: NodeId,
    name: &str,
    args: &[TensorData],
) -> Result<Vec<TensorData>> {
    let entry = fg
        .node(node)
        .ok_or_else(|| RuntimeError::Internal("evaluating a removed node".into()))?;
    let static_shape = |k: usize| fg.var(entry.inputs[k]).ty.shape.as_slice();
    let refs: smallvec::SmallVec<[&TensorData; 8]> = args.iter().collect();
    let one = |r: Result<TensorData>| r.map(|v| vec![v]);
    let need = |n: usize| -> Result<()> {
        if args.len() < n {
            Err(RuntimeError::Internal(format!(
                "{name}: {} inputs, need {n}",
                args.len()
            )))
        } else {
            Ok(())
        }
    };
    match &entry.op {
        Op::Elemwise(scalar) => {
            let shapes: Vec<&[Option<usize>]> = (0..args.len()).map(static_shape).collect();
            one(eval_elemwise(name, *scalar, &shapes, &refs))
        }
        Op::Composite(c) => {
            let types: Vec<&tensorlift_ir::TensorType> =
                entry.inputs.iter().map(|x| &fg.var(*x).ty).collect();
            crate::composite::eval_composite(name, c, &types, &refs)
        }
        Op::FusedReduce {
            kind,
            axes,
            body,
            keep,
        } => {
            let types: Vec<&tensorlift_ir::TensorType> =
                entry.inputs.iter().map(|x| &fg.var(*x).ty).collect();
            crate::composite::eval_fused_reduce(name, *kind, axes, body, &types, &refs, *keep)
        }
        Op::DimShuffle(ds) => {
            need(1)?;
            one(shape_ops::eval_dimshuffle(name, ds, &args[0]))
        }
        Op::Reduce { kind, axes } => {
            need(1)?;
            one(reduce::eval_reduce(name, *kind, axes, &args[0]))
        }
        Op::ArgReduce { kind, axis } => {
            need(1)?;
            one(reduce::eval_arg_reduce(name, *kind, *axis, &args[0]))
        }
        Op::Cumulative { kind, axis } => {
            need(1)?;
            one(reduce::eval_cumulative(name, *kind, *axis, &args[0]))
        }
        Op::Softmax { axis } => {
            need(1)?;
            one(reduce::eval_softmax(name, *axis, &args[0]))
        }
        Op::Alloc => {
            need(1)?;
            one(shape_ops::eval_alloc(
                name,
                &args[0],
                static_shape(0),
                &refs[1..],
            ))
        }
        Op::Reshape { .. } => {
            need(2)?;
            one(shape_ops::eval_reshape(name, &args[0], &args[1]))
        }
        Op::SpecifyShape(spec) => {
            need(1)?;
            one(shape_ops::eval_specify_shape(name, spec, &args[0]))
        }
        Op::Shape => {
            need(1)?;
            Ok(vec![shape_ops::eval_shape(&args[0])])
        }
        Op::MakeVector(dtype) => one(shape_ops::eval_make_vector(name, *dtype, &refs)),
        Op::Arange(dtype) => {
            need(3)?;
            one(shape_ops::eval_arange(
                name, *dtype, &args[0], &args[1], &args[2],
            ))
        }
        Op::Join { axis } => one(shape_ops::eval_join(name, *axis, &refs)),
        Op::Split { axis, .. } => {
            need(2)?;
            shape_ops::eval_split(name, *axis, &args[0], &args[1])
        }
        Op::Subtensor(slots) => {
            need(1)?;
            one(indexing::eval_subtensor(name, slots, &args[0], &refs[1..]))
        }
        Op::IncSubtensor { slots, mode } => {
            need(2)?;
            one(indexing::eval_inc_subtensor(
                name,
                slots,
                *mode,
                &args[0],
                &args[1],
                static_shape(1),
                &refs[2..],
            ))
        }
        Op::AdvancedSubtensor(slots) => {
            need(1)?;
            let statics: Vec<&[Option<usize>]> = (1..args.len()).map(static_shape).collect();
            one(indexing::eval_advanced_subtensor(
                name,
                slots,
                &args[0],
                &refs[1..],
                &statics,
            ))
        }
        Op::AdvancedIncSubtensor { slots, mode } => {
            need(2)?;
            let statics: Vec<&[Option<usize>]> = (2..args.len()).map(static_shape).collect();
            one(indexing::eval_advanced_inc_subtensor(
                name,
                slots,
                *mode,
                &args[0],
                &args[1],
                static_shape(1),
                &refs[2..],
                &statics,
            ))
        }
        Op::Dot => {
            need(2)?;
            one(linalg::eval_dot(name, &args[0], &args[1]))
        }
        Op::Linalg(l) => crate::dense_linalg::eval_linalg(name, *l, &refs),
        Op::Custom(c) => {
            let outs = c.0.eval(args).map_err(|m| RuntimeError::op(name, m))?;
            let expected: Vec<&tensorlift_ir::TensorType> =
                entry.outputs.iter().map(|o| &fg.var(*o).ty).collect();
            let fits = outs.len() == expected.len()
                && outs
                    .iter()
                    .zip(&expected)
                    .all(|(v, t)| crate::signature::fits(v, t));
            if !fits {
                let got: Vec<String> = outs
                    .iter()
                    .map(|v| format!("{} {:?}", v.dtype(), v.shape()))
                    .collect();
                let want: Vec<String> = expected.iter().map(|t| t.to_string()).collect();
                return Err(RuntimeError::op(
                    name,
                    format!(
                        "eval returned [{}] where its infer said [{}]",
                        got.join(", "),
                        want.join(", ")
                    ),
                ));
            }
            Ok(outs)
        }
        Op::Sparse(s) => {
            let out_dtype = fg.var(entry.outputs[0]).ty.dtype;
            let b_static = if args.len() > 1 { static_shape(1) } else { &[] };
            one(crate::sparse::eval_sparse(
                name, *s, out_dtype, b_static, args,
            ))
        }
        Op::Random(r) => {
            let statics: Vec<&[Option<usize>]> = (0..args.len()).map(static_shape).collect();
            crate::random::eval_random(name, *r, &statics, args)
        }
        Op::Blockwise(bw) => {
            let statics: Vec<&[Option<usize>]> = (0..args.len()).map(static_shape).collect();
            let types: Vec<&tensorlift_ir::TensorType> =
                entry.inputs.iter().map(|x| &fg.var(*x).ty).collect();
            let core = Program::new(bw.core_graph(&bw.core_types(&types))?)?;
            let out_dtypes: Vec<_> = entry.outputs.iter().map(|o| fg.var(*o).ty.dtype).collect();
            crate::blockwise::run_blockwise(name, bw, &statics, &out_dtypes, args, false, |a| {
                core.run(a)
            })
        }
        Op::OpFromGraph(g) => Program::new(g.graph.graph().clone())?.run(args),
        Op::Scan(scan) => crate::reference::scan::eval_scan(name, scan, args),
        // Normally expanded by the compile pipeline; run as given, it is differentiated here.
        Op::Grad(g) => {
            let graph = tensorlift_ir::gradient_graph(g)
                .map_err(|e| RuntimeError::op(name, e.to_string()))?;
            Program::new(graph)?.run(args)
        }
        // Only the taken branch runs: its own nodes are inside it.
        Op::IfElse(ifelse) => {
            need(1)?;
            let branch = if crate::scalar::is_true(&args[0]) {
                &ifelse.then_branch
            } else {
                &ifelse.else_branch
            };
            Program::new(branch.graph().clone())?.run(&args[1..])
        }
        Op::CheckAndRaise { message } => {
            need(1)?;
            for cond in &args[1..] {
                let all_true = cond
                    .as_array::<bool>()
                    .is_some_and(|c| c.iter().all(|v| *v));
                if !all_true {
                    return Err(RuntimeError::Assert(message.clone()));
                }
            }
            Ok(vec![args[0].clone()])
        }
    }
}

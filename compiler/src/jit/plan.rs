//! The execution plan of a JIT function, built once at compile time: an ordered list of
//! steps, each a kernel call, a view (the runtime's stride arithmetic, no code) or a node
//! the JIT has no kernel for (the reference's implementation, named by
//! `JitBackend::interpreted` and refused by a strict mode).
//!
//! Owns: the value slots a call fills (graph inputs, node results), which argument of a
//! step is moved in at its last use (so a kernel may write its result over it) rather
//! than shared, which slots are freed after each step, constants taken straight from
//! the step, and the plan's text form (`Function::plan`). A call walks the steps with
//! no graph lookups, runs a lone reading step directly (`lone`), or replays a recorded small
//! call (`replay`).

use std::fmt;
use std::sync::Arc;

use tensorlift_ir::ops::{Blockwise, Scan};
use tensorlift_runtime::reference::blockwise::run_blockwise;
use tensorlift_runtime::reference::dense_linalg::run_batched_linalg;
use tensorlift_runtime::reference::linalg::run_batched_dot;
use tensorlift_runtime::reference::scan::run_scan;

use super::*;

mod lone;
mod replay;

/// Where a step's argument comes from.
enum Arg {
    /// A value slot; `last`: this step is its last use (the value is moved in).
    Slot { slot: usize, last: bool },
    /// A constant of the graph.
    Const(TensorData),
}

/// How a step runs.
enum Action {
    Kernel(Box<KernelNode>),
    /// A kept OpFromGraph: its inner graph's own plan.
    Call(Box<Plan>),
    /// A scan whose driver loop (the runtime's `run_scan`) calls its body's plan once per
    /// step (a body the native driver cannot run); with the op's name for errors.
    Scan(Arc<Scan>, Box<Plan>, String),
    /// A scan as one native call (`jit::scan`).
    NativeScan(Box<super::scan::NativeScan>),
    /// An IfElse: the condition read, then only the taken branch's plan runs.
    IfElse(Box<Plan>, Box<Plan>),
    /// A Blockwise: the runtime's batch driver calling the core's plan per element.
    Blockwise(Box<BlockwiseStep>),
    /// A call of the runtime's linear-algebra library, with the op's name.
    Library(String),
    /// `A·w`, an element-wise map of it and `Aᵀ·` the map in one pass over A (three nodes;
    /// the step stands for the first).
    RowPass(Box<super::row_pass::RowPass>),
    /// A view or the interpreter: the reference's implementation, with the op's name.
    View(String),
    Interpreted(String),
}

impl Action {
    /// Whether the step only reads its arguments (a kept OpFromGraph, a native scan, an
    /// IfElse): `Plan::run_reading` runs it on borrowed values.
    fn only_reads(&self) -> bool {
        match self {
            Action::Call(_) | Action::NativeScan(_) | Action::IfElse(..) => true,
            Action::Kernel(_)
            | Action::Scan(..)
            | Action::Blockwise(_)
            | Action::Library(_)
            | Action::RowPass(_)
            | Action::View(_)
            | Action::Interpreted(_) => false,
        }
    }
}

/// The branch an IfElse takes for condition `cond`.
fn taken<'p>(cond: &TensorData, then: &'p Plan, otherwise: &'p Plan) -> &'p Plan {
    if tensorlift_runtime::scalar::is_true(cond) {
        then
    } else {
        otherwise
    }
}

/// A view step: DimShuffle and basic Subtensor go straight to the runtime's stride
/// arithmetic (one result, no result list allocated); other views through the reference's
/// dispatch.
fn run_view(
    fg: &FunctionGraph,
    node: NodeId,
    name: &str,
    args: &[TensorData],
) -> Result<Values, RuntimeError> {
    let op = fg.node(node).map(|e| &e.op);
    if let (Some(Op::DimShuffle(ds)), [x]) = (op, args) {
        return tensorlift_runtime::shape_ops::eval_dimshuffle(name, ds, x)
            .map(|v| smallvec::smallvec![v]);
    }
    if let (Some(Op::Subtensor(slots)), [x, indices @ ..]) = (op, args) {
        let indices: smallvec::SmallVec<[&TensorData; 4]> = indices.iter().collect();
        return tensorlift_runtime::indexing::eval_subtensor(name, slots, x, &indices)
            .map(|v| smallvec::smallvec![v]);
    }
    eval_node_named(fg, node, name, args).map(Values::from_vec)
}

/// What a Blockwise step needs besides its core plan (computed once).
struct BlockwiseStep {
    op: Arc<Blockwise>,
    core: Plan,
    name: String,
    static_shapes: Vec<Vec<Option<usize>>>,
    out_dtypes: Vec<DType>,
}

struct Step {
    node: NodeId,
    action: Action,
    args: Vec<Arg>,
    outputs: Vec<usize>,
    /// Slots whose last use this step is and that were not moved in (used twice by it).
    free: Vec<usize>,
}

/// What a call returns for one graph output.
enum Out {
    /// `last`: no later output reads the slot (the value is moved out).
    Slot {
        slot: usize,
        last: bool,
    },
    Const(TensorData),
}

pub(super) struct Plan {
    fgraph: FunctionGraph,
    steps: Vec<Step>,
    slots: usize,
    inputs: Vec<usize>,
    outputs: Vec<Out>,
    /// The most arguments of any step (the argument buffer is allocated once per call).
    widest: usize,
    /// Its recorded small call, if its steps allow replays (`replay`).
    replay: Option<Mutex<replay::ReplayState>>,
    /// Its one step, when that reads only inputs and constants (`lone`).
    lone: Option<lone::LoneStep>,
}

impl Plan {
    /// The plan of `fgraph`, with `kernels` the compiled kernel nodes by node.
    pub(super) fn new(
        fgraph: FunctionGraph,
        mut kernels: HashMap<NodeId, KernelNode>,
        mut sub_plans: HashMap<NodeId, Vec<Plan>>,
        mut native_scans: HashMap<NodeId, super::scan::NativeScan>,
    ) -> Result<Plan, CompileError> {
        // Row passes: the first node runs all three; the others (and a transpose read by
        // nothing else) get no step.
        let mut row_passes = HashMap::new();
        let mut absorbed = std::collections::HashSet::new();
        for site in super::row_pass::find(&fgraph, &kernels) {
            let (map, back, transpose) = (site.map, site.back, site.transpose);
            if let Some(pass) = super::row_pass::RowPass::new(&fgraph, site.clone(), &mut kernels) {
                absorbed.extend([map, back]);
                absorbed.extend(transpose);
                row_passes.insert(site.product, (site, pass));
            }
        }
        // The inputs of a row pass's step: the product's, then the map's extras.
        let step_inputs: HashMap<NodeId, Vec<VarId>> = row_passes
            .iter()
            .filter_map(|(n, (site, _))| {
                let mut inputs = fgraph.node(*n)?.inputs.clone();
                inputs.extend(&site.extras);
                Some((*n, inputs))
            })
            .collect();
        let mut order: Vec<NodeId> = fgraph
            .toposort()
            .into_iter()
            .filter(|n| !absorbed.contains(n))
            .collect();
        for (site, _) in row_passes.values() {
            order = super::row_pass::schedule(&fgraph, site, order);
        }
        let mut slot_of: HashMap<VarId, usize> = HashMap::new();
        let slot = |v: VarId, slot_of: &mut HashMap<VarId, usize>| {
            let next = slot_of.len();
            *slot_of.entry(v).or_insert(next)
        };
        let inputs: Vec<usize> = fgraph
            .inputs()
            .iter()
            .map(|v| slot(*v, &mut slot_of))
            .collect();
        let graph_outputs: std::collections::HashSet<VarId> =
            fgraph.outputs().iter().copied().collect();
        let mut last_use: HashMap<VarId, usize> = HashMap::new();
        for (i, node) in order.iter().enumerate() {
            let e = fgraph
                .node(*node)
                .ok_or_else(|| CompileError::Internal("a scheduled node was removed".into()))?;
            for x in step_inputs.get(node).unwrap_or(&e.inputs) {
                last_use.insert(*x, i);
            }
        }
        let mut steps = Vec::with_capacity(order.len());
        for (i, node) in order.iter().enumerate() {
            let e = fgraph
                .node(*node)
                .ok_or_else(|| CompileError::Internal("a scheduled node was removed".into()))?;
            let ins = step_inputs.get(node).unwrap_or(&e.inputs);
            let mut args = Vec::with_capacity(ins.len());
            let mut free = Vec::new();
            for x in ins {
                if let Origin::Constant(d) = &fgraph.var(*x).origin {
                    args.push(Arg::Const(d.clone()));
                    continue;
                }
                let s = slot(*x, &mut slot_of);
                let ends_here = last_use.get(x) == Some(&i) && !graph_outputs.contains(x);
                let once = ins.iter().filter(|y| *y == x).count() == 1;
                if ends_here && !once && !free.contains(&s) {
                    free.push(s);
                }
                args.push(Arg::Slot {
                    slot: s,
                    last: ends_here && once,
                });
            }
            let mut outputs: Vec<usize> =
                e.outputs.iter().map(|o| slot(*o, &mut slot_of)).collect();
            if let Some((site, pass)) = row_passes.remove(node) {
                // Outputs z, s, g; one nothing reads is dropped at once.
                let made = [site.map, site.back].map(|n| fgraph.node(n).map(|e| e.outputs[0]));
                for v in made {
                    let v = v.ok_or_else(|| {
                        CompileError::Internal("a row pass lost one of its nodes".into())
                    })?;
                    outputs.push(slot(v, &mut slot_of));
                }
                let all: Vec<VarId> = e
                    .outputs
                    .iter()
                    .copied()
                    .chain(made.into_iter().flatten())
                    .collect();
                for (v, s) in all.iter().zip(&outputs) {
                    if !last_use.contains_key(v) && !graph_outputs.contains(v) {
                        free.push(*s);
                    }
                }
                steps.push(Step {
                    node: *node,
                    action: Action::RowPass(Box::new(pass)),
                    args,
                    outputs,
                    free,
                });
                continue;
            }
            let action = match (kernels.remove(node), sub_plans.remove(node)) {
                _ if native_scans.contains_key(node) => match native_scans.remove(node) {
                    Some(native) => Action::NativeScan(Box::new(native)),
                    None => Action::Interpreted(e.op.to_string()),
                },
                (Some(k), _) => Action::Kernel(Box::new(k)),
                (None, Some(plans)) => {
                    let mut plans = plans.into_iter().map(Box::new);
                    match (&e.op, plans.next(), plans.next()) {
                        (Op::Scan(scan), Some(body), None) => {
                            Action::Scan(scan.clone(), body, e.op.to_string())
                        }
                        (Op::IfElse(_), Some(then), Some(otherwise)) => {
                            Action::IfElse(then, otherwise)
                        }
                        (Op::Blockwise(bw), Some(core), None) => {
                            Action::Blockwise(Box::new(BlockwiseStep {
                                op: bw.clone(),
                                core: *core,
                                name: e.op.to_string(),
                                static_shapes: e
                                    .inputs
                                    .iter()
                                    .map(|x| fgraph.var(*x).ty.shape.clone())
                                    .collect(),
                                out_dtypes: e
                                    .outputs
                                    .iter()
                                    .map(|o| fgraph.var(*o).ty.dtype)
                                    .collect(),
                            }))
                        }
                        (_, Some(plan), None) => Action::Call(plan),
                        _ => {
                            return Err(CompileError::Internal(format!(
                                "{}: its sub-plans do not match it",
                                e.op
                            )))
                        }
                    }
                }
                (None, None) if is_view(&e.op) => Action::View(e.op.to_string()),
                (None, None) if is_library_call(&e.op) => Action::Library(e.op.to_string()),
                (None, None) => Action::Interpreted(e.op.to_string()),
            };
            steps.push(Step {
                node: *node,
                action,
                args,
                outputs,
                free,
            });
        }
        let graph_outputs = fgraph.outputs();
        let outputs = graph_outputs
            .iter()
            .enumerate()
            .map(|(i, o)| match &fgraph.var(*o).origin {
                Origin::Constant(d) => Out::Const(d.clone()),
                _ => Out::Slot {
                    slot: slot(*o, &mut slot_of),
                    last: !graph_outputs[i + 1..].contains(o),
                },
            })
            .collect();
        let widest = steps.iter().map(|s| s.args.len()).max().unwrap_or(0);
        let mut plan = Plan {
            fgraph,
            steps,
            slots: slot_of.len(),
            inputs,
            outputs,
            widest,
            replay: None,
            lone: None,
        };
        plan.lone = lone::LoneStep::of(&plan);
        if plan.lone.is_some() {
            return Ok(plan);
        }
        if let Some(keyed) = replay::replayable(&plan) {
            plan.replay = Some(Mutex::new(replay::ReplayState::new(keyed)));
        }
        Ok(plan)
    }

    /// How many steps run a kernel.
    #[cfg(test)]
    pub(super) fn kernel_count(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.action, Action::Kernel(_)))
            .count()
    }

    /// Runs the plan on inputs that passed the signature check: its lone step on them,
    /// or a replay of a recorded call when the inputs have its layout (unless another
    /// thread is running one), else its steps, recorded while recordings remain.
    pub(super) fn run(
        &self,
        inputs: &[TensorData],
        pool: &BufferPool,
    ) -> Result<Vec<TensorData>, RuntimeError> {
        if inputs.len() != self.inputs.len() {
            return Err(RuntimeError::Internal(format!(
                "the plan got {} inputs for {}",
                inputs.len(),
                self.inputs.len()
            )));
        }
        if let Some(lone) = &self.lone {
            return self.run_lone(lone, inputs, pool);
        }
        let Some(mut state) = self.replay.as_ref().and_then(|s| s.try_lock().ok()) else {
            return self.run_steps(inputs, pool, None);
        };
        if let Some(result) = state.replay(self, inputs, pool) {
            return result;
        }
        let Some(mut recorder) = state.recorder(self, inputs) else {
            drop(state);
            return self.run_steps(inputs, pool, None);
        };
        let result = self.run_steps(inputs, pool, Some(&mut recorder));
        if result.is_ok() {
            state.keep(self, recorder);
        }
        result
    }

    /// The call by the recorded replay when every input keys it and `inputs` have its
    /// layout (then they fit the signature the recorded call was checked against), or
    /// by a lone step's inner plan replaying so, else `None`: the caller checks the
    /// inputs and calls `run`.
    pub(super) fn run_replayed(
        &self,
        inputs: &[TensorData],
        pool: &BufferPool,
    ) -> Option<Result<Vec<TensorData>, RuntimeError>> {
        if let Some(lone) = &self.lone {
            return self.run_lone_replayed(lone, inputs, pool);
        }
        let mut state = self.replay.as_ref()?.try_lock().ok()?;
        state.replay_fully_keyed(self, inputs, pool)
    }

    /// Runs the steps in order, each on the values of its arguments; `recorder` sees
    /// each step's arguments and results.
    fn run_steps(
        &self,
        inputs: &[TensorData],
        pool: &BufferPool,
        mut recorder: Option<&mut replay::Recorder>,
    ) -> Result<Vec<TensorData>, RuntimeError> {
        let mut frame = Frame::take(self.slots, self.widest);
        let FrameMemory { values, args } = &mut frame.0;
        for (slot, value) in self.inputs.iter().zip(inputs) {
            values[*slot] = Some(value.clone());
        }
        let missing = || RuntimeError::Internal("a value the plan needs is missing".into());
        for (i, step) in self.steps.iter().enumerate() {
            args.clear();
            for a in &step.args {
                args.push(match a {
                    Arg::Slot { slot, last: true } => values[*slot].take().ok_or_else(missing)?,
                    Arg::Slot { slot, last: false } => values[*slot].clone().ok_or_else(missing)?,
                    Arg::Const(d) => d.clone(),
                });
            }
            let outs: Values = self.run_action(step, args, pool)?;
            if let Some(recorder) = recorder.as_deref_mut() {
                recorder.observe(self, i, args, &outs);
            }
            for (a, value) in step.args.iter().zip(args.drain(..)) {
                if matches!(a, Arg::Slot { last: true, .. }) {
                    pool.recycle(value);
                }
            }
            for (slot, value) in step.outputs.iter().zip(outs) {
                values[*slot] = Some(value);
            }
            for slot in &step.free {
                if let Some(value) = values[*slot].take() {
                    pool.recycle(value);
                }
            }
        }
        let mut results = Vec::with_capacity(self.outputs.len());
        for o in &self.outputs {
            results.push(match o {
                Out::Slot { slot, last: true } => values[*slot].take().ok_or_else(missing)?,
                Out::Slot { slot, last: false } => values[*slot].clone().ok_or_else(missing)?,
                Out::Const(d) => d.clone(),
            });
        }
        Ok(results)
    }

    /// Runs one step on its arguments: its results, one per output (in the list type
    /// the caller keeps them in), or its error naming its node.
    fn run_action<R: StepResults>(
        &self,
        step: &Step,
        args: &mut [TensorData],
        pool: &BufferPool,
    ) -> Result<R, RuntimeError> {
        let fg = &self.fgraph;
        let result = match &step.action {
            Action::Kernel(k) => run_kernel(fg, step.node, k, args, pool)
                .and_then(|outs| with_products_repaired(fg, step.node, k, args, outs))
                .map(R::from_values),
            Action::Call(_) | Action::NativeScan(_) | Action::IfElse(..) => self
                .run_reading(step, args, pool)
                .unwrap_or_else(|| Err(RuntimeError::Internal("not a reading step".into())))
                .map(R::from_vec),
            Action::Scan(scan, body, name) => {
                run_scan(name, scan, args, |inputs| body.run(inputs, pool)).map(R::from_vec)
            }
            Action::Blockwise(b) => {
                let statics: Vec<&[Option<usize>]> =
                    b.static_shapes.iter().map(Vec::as_slice).collect();
                let reuse = |dtype, len| pool.take_float(dtype, len);
                let generic = || {
                    run_blockwise(&b.name, &b.op, &statics, &b.out_dtypes, args, true, |a| {
                        b.core.run(a, pool)
                    })
                };
                match &b.op.core {
                    // The library over the whole batch, results written in place.
                    Op::Linalg(op) => {
                        run_batched_linalg(&b.name, *op, &b.op, &statics, args, true, &reuse)
                    }
                    Op::Dot => run_batched_dot(&b.name, &b.op, &statics, args, true, &reuse)
                        .unwrap_or_else(generic),
                    _ => generic(),
                }
                .map(R::from_vec)
            }
            Action::View(name) => run_view(fg, step.node, name, args).map(R::from_values),
            Action::Interpreted(name) | Action::Library(name) => {
                eval_node_named(fg, step.node, name, args).map(R::from_vec)
            }
            Action::RowPass(pass) => pass.run(fg, args, pool).map(R::from_values),
        };
        self.step_results(step, result)
    }

    /// A step that only reads its arguments (a kept OpFromGraph, a native scan, an
    /// IfElse) run on borrowed values, its error not yet naming the node; `None` for
    /// other steps.
    fn run_reading(
        &self,
        step: &Step,
        args: &[TensorData],
        pool: &BufferPool,
    ) -> Option<Result<Vec<TensorData>, RuntimeError>> {
        Some(match &step.action {
            Action::Call(plan) => plan.run(args, pool),
            Action::NativeScan(native) => native.run(args, pool),
            Action::IfElse(then, otherwise) => match args.split_first() {
                Some((cond, values)) => taken(cond, then, otherwise).run(values, pool),
                None => Err(RuntimeError::Internal("IfElse without a condition".into())),
            },
            Action::Kernel(_)
            | Action::Scan(..)
            | Action::Blockwise(_)
            | Action::Library(_)
            | Action::RowPass(_)
            | Action::View(_)
            | Action::Interpreted(_) => return None,
        })
    }

    /// A step's results, checked against its outputs; its error naming its node.
    fn step_results<R: StepResults>(
        &self,
        step: &Step,
        result: Result<R, RuntimeError>,
    ) -> Result<R, RuntimeError> {
        let fg = &self.fgraph;
        let outs = result.map_err(|e| match (&step.action, e) {
            // A row pass names the node of its three that failed.
            (Action::RowPass(_), e @ RuntimeError::InNode { .. }) => e,
            (_, e) => in_node(fg, step, e),
        })?;
        if outs.count() != step.outputs.len() {
            return Err(RuntimeError::Internal(format!(
                "step {} returned {} outputs, expected {}",
                tensorlift_ir::print::node_summary(fg, step.node),
                outs.count(),
                step.outputs.len()
            )));
        }
        Ok(outs)
    }
}

/// The list a step's results come in: a small vector between steps, a `Vec` when they
/// are a call's results.
trait StepResults: Sized {
    fn from_vec(values: Vec<TensorData>) -> Self;
    fn from_values(values: Values) -> Self;
    fn count(&self) -> usize;
}

impl StepResults for Values {
    fn from_vec(values: Vec<TensorData>) -> Self {
        Values::from_vec(values)
    }
    fn from_values(values: Values) -> Self {
        values
    }
    fn count(&self) -> usize {
        self.len()
    }
}

impl StepResults for Vec<TensorData> {
    fn from_vec(values: Vec<TensorData>) -> Self {
        values
    }
    fn from_values(values: Values) -> Self {
        values.into_vec()
    }
    fn count(&self) -> usize {
        self.len()
    }
}

/// A step's error, naming its node.
fn in_node(fg: &FunctionGraph, step: &Step, e: RuntimeError) -> RuntimeError {
    RuntimeError::InNode {
        node: tensorlift_ir::print::node_summary(fg, step.node),
        source: Box::new(e),
    }
}

/// The value table and argument list of one plan run, kept per thread between calls (a
/// fresh table cost an allocation or a large copy per call). Runs of sub-plans take
/// their own frames; a frame goes back emptied, holding no value.
#[derive(Default)]
struct FrameMemory {
    values: Vec<Option<TensorData>>,
    args: Vec<TensorData>,
}

thread_local! {
    static FRAMES: std::cell::RefCell<Vec<FrameMemory>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A frame taken for one run; emptied and given back to this thread's frames on drop
/// (also when the run fails).
struct Frame(FrameMemory);

impl Frame {
    fn take(slots: usize, widest: usize) -> Frame {
        let mut memory = FRAMES
            .with(|f| f.try_borrow_mut().ok().and_then(|mut f| f.pop()))
            .unwrap_or_default();
        memory.values.resize(slots, None);
        memory.args.reserve(widest);
        Frame(memory)
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        let mut memory = std::mem::take(&mut self.0);
        memory.values.clear();
        memory.args.clear();
        // A thread keeps as many frames as its deepest nesting of plans.
        let _ = FRAMES.with(|f| f.try_borrow_mut().map(|mut f| f.push(memory)));
    }
}

impl fmt::Display for Plan {
    /// One line per step: the node, how it runs, and which arguments it may write over.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "plan: {} steps, {} value slots",
            self.steps.len(),
            self.slots
        )?;
        if self.replay.is_some() {
            writeln!(
                f,
                "calls recorded once per input layout, then replayed: kernels under {} \
                 elements as their recorded calls alone, views as offsets, other steps run",
                super::recipe::RECIPE_MAX_ELEMENTS
            )?;
        }
        if self.lone.is_some() {
            writeln!(f, "its one step runs directly on the call's inputs")?;
        }
        for (i, step) in self.steps.iter().enumerate() {
            let how = match &step.action {
                Action::Kernel(k) => format!("kernel {}", k.kernel.name),
                Action::Call(plan) => {
                    format!("its own compiled function, {} steps", plan.steps.len())
                }
                Action::NativeScan(native) => native.describe(),
                Action::IfElse(then, otherwise) => format!(
                    "a choice: only the taken branch's compiled function runs ({} / {} steps)",
                    then.steps.len(),
                    otherwise.steps.len()
                ),
                Action::Scan(_, body, _) => format!(
                    "a loop calling its body's compiled function ({} steps) once per step",
                    body.steps.len()
                ),
                Action::Blockwise(b) => match &b.op.core {
                    Op::Linalg(_) => "the linear-algebra library over the batch (both \
                                      cores), results written in place"
                        .into(),
                    Op::Dot => "a batched matmul: one gemm per element (both cores), \
                                results written in place (integers: the core per element)"
                        .into(),
                    _ => format!(
                        "a loop over the batch (both cores) calling its core's compiled \
                         function ({} steps) per element",
                        b.core.steps.len()
                    ),
                },
                Action::Library(_) => match self.fgraph.node(step.node).map(|e| &e.op) {
                    Some(Op::Custom(_)) => "a call of the custom op's own evaluation".into(),
                    Some(Op::Random(_)) => {
                        "a call of the runtime's random draws (counter-based chunks on both \
                         cores)"
                            .into()
                    }
                    Some(Op::Sparse(_)) => {
                        "a call of the runtime's CSR kernels (the JIT has no sparse code)".into()
                    }
                    _ => "a call of the linear-algebra library (faer)".into(),
                },
                Action::RowPass(pass) => pass.describe(),
                Action::View(_) => "view (stride arithmetic, no copy)".into(),
                Action::Interpreted(_) => "reference interpreter (no kernel)".into(),
            };
            let node = tensorlift_ir::print::node_summary(&self.fgraph, step.node);
            writeln!(f, "{i:>3}. {node}")?;
            write!(f, "     runs as {how}")?;
            let moved: Vec<String> = step
                .args
                .iter()
                .enumerate()
                .filter(|(_, a)| matches!(a, Arg::Slot { last: true, .. }))
                .map(|(k, _)| format!("input {k}"))
                .collect();
            let writes_over = match &step.action {
                Action::Kernel(k) => k.may_write_in_place(),
                Action::Call(_)
                | Action::Scan(..)
                | Action::NativeScan(_)
                | Action::IfElse(..)
                | Action::Blockwise(_)
                | Action::Library(_)
                | Action::RowPass(_)
                | Action::View(_)
                | Action::Interpreted(_) => false,
            };
            if !moved.is_empty() && writes_over {
                write!(
                    f,
                    "; may write its output over {} (last use)",
                    moved.join(", ")
                )?;
            } else if !moved.is_empty() {
                write!(f, "; last use of {}", moved.join(", "))?;
            }
            writeln!(f)?;
            let inner: Vec<(&str, &Plan)> = match &step.action {
                Action::Call(plan) | Action::Scan(_, plan, _) => vec![("", plan)],
                Action::IfElse(then, otherwise) => vec![("then ", then), ("else ", otherwise)],
                Action::Blockwise(b) => vec![("core ", &b.core)],
                Action::Kernel(_)
                | Action::Library(_)
                | Action::RowPass(_)
                | Action::NativeScan(_)
                | Action::View(_)
                | Action::Interpreted(_) => Vec::new(),
            };
            for (label, plan) in inner {
                for line in plan.to_string().lines() {
                    writeln!(f, "       | {label}{line}")?;
                }
            }
        }
        Ok(())
    }
}

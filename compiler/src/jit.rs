//! The JIT backend (DESIGN §11): nodes lowered to loop-nest kernels run as Cranelift
//! machine code; every other node runs through the runtime's support implementation.
//!
//! Owns: choosing the kernel nodes (`lower::lower_node`), compiling them into one code
//! module per function, and running them: before every kernel call the executor derives
//! the output shapes (`ShapeRule`: broadcast, dot, scan, arg-reduction,
//! concatenation, allocation, range, vectors, rows; advanced indices, region writes,
//! reshapes and checks take their own paths) and checks the inputs with
//! the same rules and error text as the reference, allocates contiguous outputs, and packs
//! data pointers, sizes and strides in the kernel ABI (`codegen`); the kernel checks again
//! itself, and a failure it reports is read from its error slot. The order of steps, value
//! slots and freeing are the compiled plan's (`plan`); the memory of outputs
//! (uninitialised or recycled, huge pages) is `memory`'s, output shapes `shapes`', the
//! code cache `cache`'s, argument words `packing`'s and calls split across threads
//! `parallel`'s. Small calls skip most of this: a kernel keeps its last small call's
//! words per argument layout (`recipe`), and a plan replays a recorded call for inputs
//! of the recorded layout (`plan::replay`).
//!
//! Kernels cover Elemwise, Composite, reductions and FusedReduce of every dtype, Dot,
//! gathers/scatters by advanced indices and writes by basic ones (`indexing`), running
//! sums/products, arg-reductions, concatenations, Alloc, Arange, softmax, Shape,
//! MakeVector, and checks (SpecifyShape, CheckAndRaise: x passed on, not copied). Views
//! (DimShuffle, basic Subtensor, Split, Reshape of contiguous data) need no code: they
//! are the runtime's stride arithmetic on shared memory; Reshape of other data copies x
//! row-major with its kernel first.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use std::mem::MaybeUninit;

use ndarray::{ArrayD, IxDyn};
use tensorlift_ir::ops::ReduceKind;
use tensorlift_ir::{
    DType, Format, FunctionGraph, NodeId, Op, Origin, TensorData, TensorType, VarId,
};
use tensorlift_runtime::broadcast::{broadcast_shape, Operand, Shape};
use tensorlift_runtime::buffer_support::ErrorSlot;
use tensorlift_runtime::indexing::check_value_shape;
use tensorlift_runtime::interpreter::{eval_node, eval_node_named};
use tensorlift_runtime::reduce;
use tensorlift_runtime::shape_ops::eval_reshape;
use tensorlift_runtime::RuntimeError;

use crate::backend::{Backend, Executable, TypeSupport, Unsupported};
use crate::calling::standard_strides;
use crate::calling::{call_words, push_row_major, push_trailer, push_view, push_words};
use crate::codegen::{compile_kernels, CompiledKernel, WeakKernel};
use crate::error::CompileError;
use crate::kernel_call::{data_ptr, unique_mut_ptr};
use crate::loopir::Kernel;
use crate::lower::{advanced_layout, lower_node, AdvancedLayout};

mod cache;
mod indexing;
mod memory;
mod packing;
mod parallel;
mod plan;
mod recipe;
mod row_pass;
mod scan;
mod shapes;

use cache::cached_compile;
pub use cache::is_cached;
use memory::{BufferPool, FreshMemory, Output, POOL_MIN_BYTES};
use packing::*;
use parallel::{run_split, split_dim};
use plan::Plan;
use shapes::{space, ShapeRule, Space};

/// The Cranelift JIT backend.
#[derive(Clone, Copy, Debug)]
pub struct JitBackend {
    /// Whether a kernel may write its output over an intermediate input it is the last
    /// user of (off with `Mode::excluding("inplace")`).
    pub in_place: bool,
    /// Whether a node without a kernel (other than a view) refuses the compile instead
    /// of running in the interpreter (`Mode::strict`).
    pub strict: bool,
}

impl Default for JitBackend {
    fn default() -> JitBackend {
        JitBackend {
            in_place: true,
            strict: false,
        }
    }
}

/// Whether the JIT runs `op` as a view: stride arithmetic on the input's memory, no code.
fn is_view(op: &Op) -> bool {
    match op {
        Op::DimShuffle(_) | Op::Subtensor(_) | Op::Split { .. } => true,
        Op::Elemwise(_)
        | Op::Composite(_)
        | Op::FusedReduce { .. }
        | Op::Reduce { .. }
        | Op::ArgReduce { .. }
        | Op::Cumulative { .. }
        | Op::Softmax { .. }
        | Op::Alloc
        | Op::Reshape { .. }
        | Op::SpecifyShape(_)
        | Op::Shape
        | Op::MakeVector(_)
        | Op::Arange(_)
        | Op::Join { .. }
        | Op::IncSubtensor { .. }
        | Op::AdvancedSubtensor(_)
        | Op::AdvancedIncSubtensor { .. }
        | Op::Dot
        | Op::CheckAndRaise { .. }
        | Op::OpFromGraph(_)
        | Op::Scan(_)
        | Op::IfElse(_)
        | Op::Linalg(_)
        | Op::Blockwise(_)
        | Op::Random(_)
        | Op::Sparse(_)
        | Op::Custom(_)
        | Op::Grad(_) => false,
    }
}

/// The nodes of `fg` that the JIT neither compiles to a kernel, runs as a view nor calls
/// as a compiled sub-plan (a kept OpFromGraph, a scan's body): each runs in the reference interpreter
/// (named by `JitBackend::interpreted`; refused by a strict JIT).
pub fn interpreted_nodes(fg: &FunctionGraph) -> Vec<NodeId> {
    fg.toposort()
        .into_iter()
        .filter(|n| {
            fg.node(*n).is_some_and(|e| {
                !is_view(&e.op)
                    && !is_sub_plan(&e.op)
                    && !is_library_call(&e.op)
                    && lower_node(fg, *n).is_none()
            })
        })
        .collect()
}

/// Whether the JIT runs `op` through compiled functions of its own (sub-plans): a kept
/// OpFromGraph, a scan's body, an IfElse's branches, a Blockwise's core.
fn is_sub_plan(op: &Op) -> bool {
    matches!(
        op,
        Op::OpFromGraph(_) | Op::Scan(_) | Op::IfElse(_) | Op::Blockwise(_)
    )
}

/// Whether the JIT runs `op` as a call of the runtime's library (the implementation the
/// reference uses too): the linear-algebra ops (`faer`), random draws (their stream
/// must be the reference's bit for bit) and the sparse CSR kernels.
fn is_library_call(op: &Op) -> bool {
    // A custom op's own evaluation, when it allows compiled backends to call it.
    matches!(op, Op::Linalg(_) | Op::Random(_) | Op::Sparse(_))
        || matches!(op, Op::Custom(c) if c.0.runs_in_compiled_backends())
}

/// The custom ops of `fg` (and of the graphs it runs as sub-plans) that refuse compiled
/// backends, as dprint lines: the JIT refuses the graph whatever the mode.
fn refused_lines(fg: &FunctionGraph, within: &str) -> Vec<Unsupported> {
    let mut found = Vec::new();
    for n in fg.toposort() {
        let Some(e) = fg.node(n) else { continue };
        if matches!(&e.op, Op::Custom(c) if !c.0.runs_in_compiled_backends()) {
            found.push(Unsupported {
                node: format!("{within}{}", tensorlift_ir::print::node_summary(fg, n)),
                hint: "this custom op runs only in the reference backend (Mode::Reference), \
                       or let compiled backends call it (CustomOp::runs_in_compiled_backends)"
                    .into(),
            });
        }
        if is_sub_plan(&e.op) {
            for g in sub_plan_graphs(fg, n).unwrap_or_default() {
                found.extend(refused_lines(&g, &format!("{within}{} > ", e.op)));
            }
        }
    }
    found
}

/// The graphs a sub-plan node runs: its inner graphs, or a Blockwise's core graph.
fn sub_plan_graphs(fg: &FunctionGraph, node: NodeId) -> Result<Vec<FunctionGraph>, CompileError> {
    let Some(e) = fg.node(node) else {
        return Ok(Vec::new());
    };
    if let Op::Blockwise(bw) = &e.op {
        let types: Vec<&TensorType> = e.inputs.iter().map(|x| &fg.var(*x).ty).collect();
        let core = bw
            .core_graph(&bw.core_types(&types))
            .map_err(|err| CompileError::Internal(format!("{}: {err}", e.op)))?;
        return Ok(vec![core]);
    }
    Ok(e.op
        .inner_graphs()
        .iter()
        .map(|g| g.graph().clone())
        .collect())
}

/// The interpreted nodes of `fg` and, recursively, of the inner graphs it calls as
/// sub-plans, as dprint lines (inner ones prefixed by their caller's op).
fn interpreted_lines(fg: &FunctionGraph, within: &str) -> Vec<Unsupported> {
    let mut found: Vec<Unsupported> = interpreted_nodes(fg)
        .into_iter()
        .map(|n| Unsupported {
            node: format!("{within}{}", tensorlift_ir::print::node_summary(fg, n)),
            hint: "the JIT has no kernel for this node: it runs in the reference \
                   interpreter unless the mode is strict"
                .into(),
        })
        .collect();
    for n in fg.toposort() {
        let Some(e) = fg.node(n) else { continue };
        if is_sub_plan(&e.op) {
            for g in sub_plan_graphs(fg, n).unwrap_or_default() {
                found.extend(interpreted_lines(&g, &format!("{within}{} > ", e.op)));
            }
        }
    }
    found
}

/// The kernels of a graph, by node, with their loop-nest IR.
pub fn kernels_of(fg: &FunctionGraph) -> Vec<(NodeId, Kernel)> {
    fg.toposort()
        .into_iter()
        .filter_map(|n| lower_node(fg, n).map(|k| (n, k)))
        .collect()
}

impl Backend for JitBackend {
    fn name(&self) -> &'static str {
        "jit"
    }

    fn type_support(&self, ty: &TensorType) -> TypeSupport {
        match ty.format {
            Format::Dense => TypeSupport::Native,
            // Kernels address dense strided memory only; the sparse ops run as calls of the
            // runtime's CSR kernels, whose values pass through the plan untouched.
            Format::Csr => TypeSupport::RuntimeCall,
        }
    }

    /// Kernels take any strides, but their vector loops need contiguous rows: a strided
    /// shared value is read through a contiguous copy.
    fn shared_copy(&self, value: &TensorData) -> Option<TensorData> {
        (!value.is_standard_layout()).then(|| value.to_standard_layout())
    }

    fn unsupported(&self, fgraph: &FunctionGraph) -> Vec<Unsupported> {
        if self.strict {
            self.interpreted(fgraph)
        } else {
            refused_lines(fgraph, "")
        }
    }

    fn interpreted(&self, fgraph: &FunctionGraph) -> Vec<Unsupported> {
        interpreted_lines(fgraph, "")
    }

    fn compile(&self, fgraph: FunctionGraph) -> Result<Box<dyn Executable>, CompileError> {
        Ok(Box::new(self.build(fgraph)?))
    }
}

impl JitBackend {
    fn build(&self, fgraph: FunctionGraph) -> Result<Jitted, CompileError> {
        let lowered = kernels_of(&fgraph);
        let ir: Vec<Kernel> = lowered.iter().map(|(_, k)| k.clone()).collect();
        let compiled = cached_compile(&ir)?;
        let kernels = lowered
            .into_iter()
            .zip(compiled)
            .map(|((n, k), c)| {
                KernelNode::new(&fgraph, n, k, c, self.in_place)
                    .map(|kn| (n, kn))
                    .ok_or_else(|| CompileError::Internal("a lowered node vanished".into()))
            })
            .collect::<Result<_, _>>()?;
        let mut sub_plans = HashMap::new();
        let mut native_scans = HashMap::new();
        for n in fgraph.toposort() {
            let Some(e) = fgraph.node(n) else { continue };
            if let Op::Scan(scan) = &e.op {
                if let Some(native) = scan::NativeScan::new(&fgraph, n, scan)? {
                    native_scans.insert(n, native);
                    continue;
                }
            }
            let inner = sub_plan_graphs(&fgraph, n)?;
            if !inner.is_empty() {
                let plans = inner
                    .into_iter()
                    .map(|g| self.build(g).map(|j| j.plan))
                    .collect::<Result<Vec<_>, _>>()?;
                sub_plans.insert(n, plans);
            }
        }
        Ok(Jitted {
            plan: Plan::new(fgraph, kernels, sub_plans, native_scans)?,
            pool: BufferPool::default(),
        })
    }
}

struct Jitted {
    plan: Plan,
    pool: BufferPool,
}

impl Executable for Jitted {
    fn run(&self, inputs: &[TensorData]) -> Result<Vec<TensorData>, RuntimeError> {
        self.plan.run(inputs, &self.pool)
    }

    fn run_known_layout(
        &self,
        inputs: &[TensorData],
    ) -> Option<Result<Vec<TensorData>, RuntimeError>> {
        self.plan.run_replayed(inputs, &self.pool)
    }

    fn describe(&self) -> String {
        self.plan.to_string()
    }
}

/// The outputs of a float product, with each element that is NaN, infinite or zero
/// recomputed as the reference does (`runtime::reduce::repair_product_output`, from the
/// factors: the input, or the values a fused product keeps): the kernel's lanes and
/// threads group the factors differently, so one partial product may overflow where
/// another underflows. A fused product that keeps no values runs in the reference then.
fn with_products_repaired(
    fg: &FunctionGraph,
    node: NodeId,
    k: &KernelNode,
    args: &mut [TensorData],
    mut outputs: Values,
) -> Result<Values, RuntimeError> {
    let Some((ReduceKind::Prod, axes)) = &k.reduce else {
        return Ok(outputs);
    };
    let special = |d: &TensorData| match d {
        TensorData::Float64(a) => a.iter().any(|v| !v.is_finite() || *v == 0.0),
        TensorData::Float32(a) => a.iter().any(|v| !v.is_finite() || *v == 0.0),
        _ => false,
    };
    if !outputs.first().is_some_and(special) {
        return Ok(outputs);
    }
    let factors = match fg.node(node).map(|e| &e.op) {
        Some(Op::Reduce { .. }) => args.first(),
        Some(Op::FusedReduce { keep: true, .. }) => outputs.get(1),
        _ => None,
    };
    match factors {
        Some(x) => {
            outputs[0] = reduce::repair_product_output(&k.name, x, axes, &outputs[0])?;
            Ok(outputs)
        }
        None => eval_node(fg, node, args).map(Values::from_vec),
    }
}

/// A kernel node with everything a call needs that does not change between calls
/// (computed once, so a call does no formatting and few allocations).
struct KernelNode {
    kernel: Kernel,
    compiled: CompiledKernel,
    /// The op's name for error messages.
    name: String,
    /// "input k" labels for error messages.
    labels: Vec<String>,
    static_shapes: Vec<Vec<Option<usize>>>,
    broadcastable: Vec<Vec<bool>>,
    out_dtypes: Vec<DType>,
    /// Per output: whether it has the whole iteration shape (element-wise results and the
    /// values a reduction keeps) rather than the reduced one.
    out_full: Vec<bool>,
    reduce: Option<(ReduceKind, Vec<usize>)>,
    /// How the output shape follows from the inputs'.
    shapes: ShapeRule,
    /// Whether outputs may be written over inputs (`JitBackend::in_place`).
    in_place: bool,
    /// How an advanced index's kernel addresses x (the lowering's layout).
    advanced: Option<AdvancedLayout>,
    /// The words of its last small call, if its calls may be memoized (`recipe`).
    recipe: Option<recipe::RecipeSlot>,
}

impl KernelNode {
    /// Whether a call may write an output over an input it owns (element-wise kernels,
    /// when `in_place` allows it and the input is large, contiguous and uniquely owned).
    fn may_write_in_place(&self) -> bool {
        self.in_place && self.reduce.is_none() && self.shapes == ShapeRule::Broadcast
    }

    fn new(
        fg: &FunctionGraph,
        node: NodeId,
        kernel: Kernel,
        compiled: CompiledKernel,
        in_place: bool,
    ) -> Option<KernelNode> {
        let e = fg.node(node)?;
        let types: Vec<&TensorType> = e.inputs.iter().map(|x| &fg.var(*x).ty).collect();
        let whole = vec![true; e.outputs.len()];
        // Per op: which outputs have the whole iteration shape, the reduction, the shape
        // rule, and an advanced index's layout. Views have no kernel.
        let (out_full, reduce, shapes, advanced) = match &e.op {
            Op::Elemwise(_) | Op::Composite(_) => (whole, None, ShapeRule::Broadcast, None),
            Op::Reduce { kind, axes } => (
                vec![false],
                Some((*kind, axes.clone())),
                ShapeRule::Broadcast,
                None,
            ),
            Op::FusedReduce {
                kind, axes, keep, ..
            } => (
                [false, true][..1 + *keep as usize].to_vec(),
                Some((*kind, axes.clone())),
                ShapeRule::Broadcast,
                None,
            ),
            Op::Dot => (whole, None, ShapeRule::Dot, None),
            Op::AdvancedSubtensor(slots) => {
                let layout = advanced_layout(slots, &types[1..], types[0].ndim())?;
                (whole, None, ShapeRule::Advanced, Some(layout))
            }
            Op::AdvancedIncSubtensor { slots, .. } => {
                let layout = advanced_layout(slots, types.get(2..)?, types[0].ndim())?;
                (whole, None, ShapeRule::Advanced, Some(layout))
            }
            Op::Cumulative { axis, .. } => {
                (whole, None, ShapeRule::Cumulative { axis: *axis }, None)
            }
            Op::ArgReduce { axis, .. } => (whole, None, ShapeRule::Arg { axis: *axis }, None),
            Op::Join { axis } => (whole, None, ShapeRule::Join { axis: *axis }, None),
            Op::Alloc => (whole, None, ShapeRule::Alloc, None),
            Op::Arange(dtype) => (whole, None, ShapeRule::Arange(*dtype), None),
            Op::Softmax { axis } => (whole, None, ShapeRule::Rows { axis: *axis }, None),
            Op::IncSubtensor { .. } => (whole, None, ShapeRule::Region, None),
            Op::Reshape { .. } => (whole, None, ShapeRule::Reshape, None),
            Op::Shape => (whole, None, ShapeRule::Vector(types[0].ndim()), None),
            Op::MakeVector(_) => (whole, None, ShapeRule::Vector(types.len()), None),
            Op::SpecifyShape(_) | Op::CheckAndRaise { .. } => {
                (whole, None, ShapeRule::Forward, None)
            }
            // Views and sub-plans have no kernel.
            Op::DimShuffle(_)
            | Op::Subtensor(_)
            | Op::Split { .. }
            | Op::OpFromGraph(_)
            | Op::Scan(_)
            | Op::IfElse(_)
            | Op::Linalg(_)
            | Op::Blockwise(_)
            | Op::Random(_)
            | Op::Sparse(_)
            | Op::Custom(_)
            | Op::Grad(_) => return None,
        };
        let kind = reduce.as_ref().map(|(kind, _)| *kind);
        let arity = types.len() + e.outputs.len();
        let memoizable = recipe::memoizable(&kernel, shapes, kind, arity);
        Some(KernelNode {
            recipe: memoizable.then(recipe::RecipeSlot::default),
            kernel,
            compiled,
            name: e.op.to_string(),
            labels: (0..types.len()).map(|k| format!("input {k}")).collect(),
            static_shapes: types.iter().map(|t| t.shape.clone()).collect(),
            broadcastable: types.iter().map(|t| t.broadcastable()).collect(),
            out_dtypes: e.outputs.iter().map(|o| fg.var(*o).ty.dtype).collect(),
            out_full,
            reduce,
            shapes,
            advanced,
            in_place,
        })
    }
}

/// Per output, the input it is written over (index and writable pointer), if any.
type Aliases = smallvec::SmallVec<[Option<(usize, *const u8)>; 2]>;
/// The outputs of one call (most kernels have one or two).
type Outputs = smallvec::SmallVec<[Output; 2]>;

/// The results of one step (most steps have one).
type Values = smallvec::SmallVec<[TensorData; 1]>;

/// For each output of an element-wise kernel, an input it may be written over: uniquely
/// owned (moved in by the interpreter at its last use), contiguous, with the output's dtype
/// and shape. An element-wise kernel reads each input element only at the position it
/// writes, and before writing it, so computing in place is exact. Returns, per output, the
/// input index and its writable data pointer.
fn in_place_inputs(k: &KernelNode, space: &Space, args: &mut [TensorData]) -> Aliases {
    let mut plan: Aliases = smallvec::smallvec![None; k.out_dtypes.len()];
    // Small outputs are cheap to allocate: keep small calls lean.
    let elements = elements_of(&space.full);
    let element_wise = k.reduce.is_none() && k.shapes == ShapeRule::Broadcast;
    if !k.in_place || !element_wise || elements * 4 < POOL_MIN_BYTES {
        return plan;
    }
    let mut taken = vec![false; args.len()];
    for (j, dtype) in k.out_dtypes.iter().enumerate() {
        for (i, a) in args.iter_mut().enumerate() {
            if taken[i] || a.dtype() != *dtype || a.shape() != space.full.as_slice() {
                continue;
            }
            if let Some(ptr) = unique_mut_ptr(a, true) {
                taken[i] = true;
                plan[j] = Some((i, ptr));
                break;
            }
        }
    }
    plan
}

/// The pointer to read input `i` through: the writable one when an output aliases it.
fn read_ptr(i: usize, ptr: *const u8, aliases: &[Option<(usize, *const u8)>]) -> *const u8 {
    aliases
        .iter()
        .flatten()
        .find(|(index, _)| *index == i)
        .map_or(ptr, |(_, p)| *p)
}

/// The element count of `shape`, saturating (sizes that overflow are refused when their
/// output is allocated; here they only choose between paths).
fn elements_of(shape: &[usize]) -> usize {
    if shape.contains(&0) {
        return 0;
    }
    shape.iter().fold(1usize, |acc, d| acc.saturating_mul(*d))
}

/// The error a kernel reported through its status and error slot.
fn kernel_failure(k: &KernelNode, status: i32, slot: &ErrorSlot) -> RuntimeError {
    match k.compiled.error_message(status, &slot.values) {
        Some(message) => RuntimeError::op(&k.name, message),
        None => RuntimeError::Internal(format!(
            "JIT kernel {} returned status {status}",
            k.kernel.name
        )),
    }
}

/// The outputs of a call: aliased inputs, or fresh (or recycled) memory.
fn outputs_for(
    k: &KernelNode,
    space: &Space,
    aliases: &[Option<(usize, *const u8)>],
    pool: &BufferPool,
) -> Result<Outputs, RuntimeError> {
    let mut outputs = Outputs::new();
    for ((d, full), alias) in k.out_dtypes.iter().zip(&k.out_full).zip(aliases) {
        outputs.push(match alias {
            Some((index, ptr)) => Output::Alias {
                ptr: *ptr,
                index: *index,
            },
            None => Output::new(&k.name, *d, space.output_shape(*full), pool)?,
        });
    }
    Ok(outputs)
}

/// Checks that every input has the kernel's dtype.
fn check_dtypes(k: &KernelNode, args: &[TensorData]) -> Result<(), RuntimeError> {
    for (i, a) in args.iter().enumerate() {
        if a.is_sparse() || Some(a.dtype()) != k.kernel.buffers.get(i).map(|b| b.dtype) {
            return Err(RuntimeError::Internal(format!(
                "JIT kernel {} input {i} is {}, the kernel takes {:?}",
                k.kernel.name,
                a.dtype(),
                k.kernel.buffers.get(i).map(|b| b.dtype)
            )));
        }
    }
    Ok(())
}

/// Calls `k` once with the buffers `pack` pushes, then scratch memory and an error slot
/// (the argument words counted against the kernel's layout); a failure status becomes the
/// kernel's error.
///
/// # Safety
/// The words `pack` pushes describe live buffers of the kernel's dtypes and ranks, in its
/// buffer order; outputs are writable and overlap no input the kernel reads after writing.
unsafe fn call_packed(
    k: &KernelNode,
    pack: impl FnOnce(&mut Vec<i64>),
) -> Result<(), RuntimeError> {
    let words = call_words(&k.kernel);
    let mut slot = ErrorSlot::default();
    let status = with_call_memory(k.compiled.scratch_words, |packed, scratch| {
        pack(packed);
        push_trailer(packed, scratch, &mut slot);
        if packed.len() != words {
            return Err(RuntimeError::Internal(format!(
                "JIT kernel {}: {} argument words, expected {words}",
                k.kernel.name,
                packed.len()
            )));
        }
        // SAFETY: the words describe buffers as the caller guarantees and match the
        // kernel's layout (counted above); the scratch memory has the `scratch_words` the
        // kernel uses and lives past the call, as does the error slot.
        Ok(unsafe { k.compiled.call(packed) })
    })?;
    if status != 0 {
        return Err(kernel_failure(k, status, &slot));
    }
    Ok(())
}

/// One call over the whole iteration space (small calls: few allocations).
fn run_whole(
    k: &KernelNode,
    space: &Space,
    args: &mut [TensorData],
    pool: &BufferPool,
) -> Result<Values, RuntimeError> {
    check_dtypes(k, args)?;
    let aliases = in_place_inputs(k, space, args);
    let mut outputs = outputs_for(k, space, &aliases, pool)?;
    // SAFETY: inputs have the kernel's dtypes (checked above), ranks and shapes checked by
    // `space`; each output is fresh memory of its shape or an input this call owns uniquely
    // (`in_place_inputs`: same shape and dtype, read element by element before being
    // written).
    unsafe {
        call_packed(k, |packed| {
            for (i, a) in args.iter().enumerate() {
                let (ptr, shape, strides) = data_ptr(a);
                push_view(packed, read_ptr(i, ptr, &aliases), shape, strides);
            }
            for (o, full) in outputs.iter_mut().zip(&k.out_full) {
                push_row_major(packed, o.ptr(), space.output_shape(*full));
            }
        })?;
    }
    // SAFETY: the kernel ran to completion and writes every output element (see
    // `Output::assume_init`).
    Ok(outputs
        .into_iter()
        .map(|o| unsafe { o.assume_init(args) })
        .collect())
}

/// A call whose iteration space has no element: it costs the size of its outputs, not of
/// the largest dimension. Empty outputs need no kernel (the shapes were checked by
/// `space`); a reduction of an empty input runs its kernel on inputs whose reduced sizes
/// are 0 (the same empty data), so its loops visit nothing and it only fills its outputs.
fn run_empty(
    k: &KernelNode,
    space: &Space,
    args: &mut [TensorData],
    pool: &BufferPool,
) -> Result<Values, RuntimeError> {
    let empty_outputs = k
        .out_full
        .iter()
        .all(|f| elements_of(space.output_shape(*f)) == 0);
    if empty_outputs {
        let aliases = vec![None; k.out_dtypes.len()];
        let outputs = outputs_for(k, space, &aliases, pool)?;
        // SAFETY: every output has zero elements, so there is nothing to initialise.
        return Ok(outputs
            .into_iter()
            .map(|o| unsafe { o.assume_init(args) })
            .collect());
    }
    if !matches!(k.shapes, ShapeRule::Broadcast | ShapeRule::Rows { .. }) {
        return run_whole(k, space, args, pool);
    }
    let zeroed = |shape: &[usize], bcast: &[bool]| -> Vec<usize> {
        (0..shape.len())
            .map(|d| {
                let reduced = space.reduced.contains(&d) && !bcast.get(d).copied().unwrap_or(false);
                if reduced {
                    0
                } else {
                    shape[d]
                }
            })
            .collect()
    };
    let mut empty_args: Vec<TensorData> = args
        .iter()
        .zip(&k.broadcastable)
        .map(|(a, bcast)| {
            let shape = zeroed(a.shape(), bcast);
            TensorData::full(&shape, tensorlift_ir::Literal::Int(0), a.dtype())
        })
        .collect();
    let small = Space {
        full: zeroed(&space.full, &[]).into(),
        reduced: space.reduced.clone(),
        out: Shape::from_slice(space.output_shape(false)),
    };
    run_whole(k, &small, &mut empty_args, pool)
}

/// `Reshape(x, shape)`: contiguous x is reshaped as a view by the runtime's stride
/// arithmetic (no copy); other x is first copied row-major by the node's kernel.
fn run_reshape(
    k: &KernelNode,
    args: &[TensorData],
    pool: &BufferPool,
) -> Result<Values, RuntimeError> {
    let [x, shape] = args else {
        return Err(RuntimeError::Internal(format!(
            "JIT kernel {}: expects x and the shape",
            k.kernel.name
        )));
    };
    let contiguous = tensorlift_ir::with_tensor_data!(x, a => a.is_standard_layout());
    if contiguous || x.is_empty() || x.ndim() != k.static_shapes[0].len() {
        return Ok(smallvec::smallvec![eval_reshape(&k.name, x, shape)?]);
    }
    let space = Space::whole(x.shape().to_vec());
    let copy = run_whole(k, &space, &mut [x.clone()], pool)?;
    Ok(smallvec::smallvec![eval_reshape(&k.name, &copy[0], shape)?])
}

/// A kernel that only checks its inputs (SpecifyShape, CheckAndRaise): the call passes
/// input 0 on, not a copy. A failed condition of CheckAndRaise is the reference's
/// assertion error (its message as given, not a template).
fn run_checks(
    k: &KernelNode,
    op: Option<&Op>,
    args: &[TensorData],
) -> Result<Values, RuntimeError> {
    check_dtypes(k, args)?;
    let ranks_ok = args.len() == k.kernel.buffers.len()
        && args
            .iter()
            .zip(&k.kernel.buffers)
            .all(|(a, b)| a.ndim() == b.rank);
    let Some(x) = args.first().filter(|_| ranks_ok) else {
        return Err(RuntimeError::Internal(format!(
            "JIT kernel {}: the inputs do not match it",
            k.kernel.name
        )));
    };
    let mut packed = Vec::new();
    for a in args {
        let (ptr, shape, strides) = data_ptr(a);
        push_view(&mut packed, ptr, shape, strides);
    }
    // SAFETY: the words describe the inputs, whose dtypes and ranks are the kernel's
    // (checked above); the kernel only reads, at positions its loops take from the
    // buffers' own sizes.
    let checked = unsafe { indexing::call_with_words(k, packed) };
    match (checked, op) {
        (Ok(()), _) => Ok(smallvec::smallvec![x.clone()]),
        (Err(_), Some(Op::CheckAndRaise { message })) => Err(RuntimeError::Assert(message.clone())),
        (Err(e), _) => Err(e),
    }
}

fn run_kernel(
    fg: &FunctionGraph,
    node: NodeId,
    k: &KernelNode,
    args: &mut [TensorData],
    pool: &BufferPool,
) -> Result<Values, RuntimeError> {
    // The index-resolving paths (`indexing`).
    match (k.shapes, fg.node(node).map(|e| &e.op)) {
        (ShapeRule::Region, Some(Op::IncSubtensor { slots, .. })) => {
            return indexing::run_region_write(k, slots, args);
        }
        (ShapeRule::Forward, op) => return run_checks(k, op, args),
        (ShapeRule::Reshape, _) => return run_reshape(k, args, pool),
        (ShapeRule::Advanced, Some(Op::AdvancedSubtensor(_))) => {
            return indexing::run_take(k, args, pool);
        }
        (ShapeRule::Advanced, Some(Op::AdvancedIncSubtensor { .. })) => {
            return indexing::run_scatter(k, args);
        }
        _ => {}
    }
    if let Some(result) = k.recipe.as_ref().and_then(|r| r.run(k, args)) {
        return result;
    }
    let Some(space) = space(k, args)? else {
        return eval_node(fg, node, args).map(Values::from_vec);
    };
    if elements_of(&space.full) == 0 {
        return run_empty(k, &space, args, pool);
    }
    if let Some(result) = k
        .recipe
        .as_ref()
        .and_then(|r| r.make_and_run(k, &space, args))
    {
        return result;
    }
    // Only reductions split a reduced dimension (partial results combined), and not when
    // they keep values (written whole). Row-wise ops split only across rows.
    let keeps = k.out_full.iter().any(|f| *f);
    let reduced_ok = k.reduce.is_some() && !keeps;
    let splittable = matches!(k.shapes, ShapeRule::Broadcast | ShapeRule::Rows { .. });
    let split = split_dim(&space, rayon::current_num_threads(), reduced_ok).filter(|_| splittable);
    if split.is_none() {
        return run_whole(k, &space, args, pool);
    }
    run_split(k, &space, split, args, pool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorlift_ir::{vector, DType};

    /// `sin(exp(x))` as two kernels: the second may write over the first's result (its
    /// last use), which then never reaches the pool; without in-place writes it does.
    #[test]
    fn excluding_inplace_turns_off_writes_over_intermediates() {
        let x = vector("x", DType::Float64);
        let y = x.exp().sin();
        let n = 1 << 17;
        let value: TensorData = ndarray::Array1::from_elem(n, 0.5).into();
        for in_place in [true, false] {
            let fg =
                FunctionGraph::new(std::slice::from_ref(&x), std::slice::from_ref(&y)).unwrap();
            let jitted = JitBackend {
                in_place,
                strict: false,
            }
            .build(fg)
            .unwrap();
            assert_eq!(
                jitted.plan.kernel_count(),
                2,
                "two kernels (no fusion here)"
            );
            let out = jitted.run(std::slice::from_ref(&value)).unwrap();
            let expected = 0.5f64.exp().sin();
            let got = out[0].as_array::<f64>().unwrap();
            assert!(got.iter().all(|v| (v - expected).abs() < 1e-15));
            let pooled = jitted.pool.len();
            assert_eq!(pooled, usize::from(!in_place), "in place: {in_place}");
        }
    }

    #[test]
    fn calls_split_along_the_outermost_dimension_they_can() {
        let space = |full: &[usize], reduced: &[usize]| Space {
            out: (0..full.len())
                .filter(|d| !reduced.contains(d))
                .map(|d| full[d])
                .collect(),
            full: Shape::from_slice(full),
            reduced: Shape::from_slice(reduced),
        };
        // A sum over axis 0: each thread takes a block of rows (partial sums combined).
        assert_eq!(
            split_dim(&space(&[4000, 2500], &[0]), 2, true),
            Some((0, true))
        );
        // ... unless the partial results would be large: split the kept axis instead.
        assert_eq!(
            split_dim(&space(&[4, 1_000_000], &[0]), 2, true),
            Some((1, false))
        );
        // A sum over axis 1: rows across threads.
        assert_eq!(
            split_dim(&space(&[4000, 2500], &[1]), 2, true),
            Some((0, false))
        );
        // Kept values or rows (softmax) are never split along the reduced axis.
        assert_eq!(
            split_dim(&space(&[4000, 2500], &[0]), 2, false),
            Some((1, false))
        );
        assert_eq!(split_dim(&space(&[3, 30_000], &[1]), 2, false), None);
        // A full reduction, and calls too small to split.
        assert_eq!(
            split_dim(&space(&[10_000_000], &[0]), 2, true),
            Some((0, true))
        );
        assert_eq!(split_dim(&space(&[100, 100], &[]), 2, true), None);
        assert_eq!(split_dim(&space(&[4000, 2500], &[]), 1, true), None);
    }
}

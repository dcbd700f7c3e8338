//! The JIT backend (DESIGN §11): nodes lowered to loop-nest kernels run as Cranelift
//! machine code; every other node runs through the runtime's support implementation.
//!
//! Owns: choosing the kernel nodes (`lower::lower_node`), compiling them into one code
//! module per function, and running them: before every kernel call the executor checks
//! the input shapes with the same no-runtime-broadcasting rule and error text as the
//! reference, allocates contiguous outputs, and packs data pointers, sizes and strides in
//! the kernel ABI (`codegen`). Scheduling and freeing of intermediate values are the
//! interpreter's (`Program::run_with`).
//!
//! Today the kernels cover float32/float64 Elemwise, Composite, Sum/Prod/Max/Min
//! reductions and FusedReduce; shape ops, indexing, integer arithmetic and linear algebra
//! use the runtime's implementations (listed by `Function::dprint` as they are: not fused).

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};
use tensorlift_ir::ops::ReduceKind;
use tensorlift_ir::{DType, FunctionGraph, NodeId, Op, TensorData, TensorType};
use tensorlift_runtime::broadcast::{broadcast_shape, Operand};
use tensorlift_runtime::interpreter::eval_node;
use tensorlift_runtime::{Program, RuntimeError};

use crate::backend::{Backend, Executable, Unsupported};
use crate::codegen::{compile_kernels, CompiledKernel};
use crate::error::CompileError;
use crate::loopir::Kernel;
use crate::lower::lower_node;

/// The Cranelift JIT backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct JitBackend;

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

    fn unsupported(&self, _fgraph: &FunctionGraph) -> Vec<Unsupported> {
        Vec::new()
    }

    fn compile(&self, fgraph: FunctionGraph) -> Result<Box<dyn Executable>, CompileError> {
        let lowered = kernels_of(&fgraph);
        let ir: Vec<Kernel> = lowered.iter().map(|(_, k)| k.clone()).collect();
        let compiled = compile_kernels(&ir)?;
        let kernels = lowered
            .into_iter()
            .zip(compiled)
            .map(|((n, k), c)| (n, (k, c)))
            .collect();
        let program = Program::new(fgraph).map_err(|e| CompileError::Internal(e.to_string()))?;
        Ok(Box::new(Jitted { program, kernels }))
    }
}

struct Jitted {
    program: Program,
    kernels: HashMap<NodeId, (Kernel, CompiledKernel)>,
}

impl Executable for Jitted {
    fn run(&self, inputs: &[TensorData]) -> Result<Vec<TensorData>, RuntimeError> {
        self.program
            .run_with(inputs, |fg, node, args| match self.kernels.get(&node) {
                Some((kernel, compiled)) => run_kernel(fg, node, kernel, compiled, args),
                None => eval_node(fg, node, args),
            })
    }
}

/// The output shape of a kernel node, checked like the reference checks it; `None` when
/// the reference must handle the call (it reports the error, e.g. max of an empty axis).
fn output_shape(
    fg: &FunctionGraph,
    node: NodeId,
    args: &[TensorData],
) -> Result<Option<Vec<usize>>, RuntimeError> {
    let e = fg
        .node(node)
        .ok_or_else(|| RuntimeError::Internal("running a removed node".into()))?;
    let name = e.op.to_string();
    let types: Vec<&TensorType> = e.inputs.iter().map(|x| &fg.var(*x).ty).collect();
    let labels: Vec<String> = (0..args.len()).map(|k| format!("input {k}")).collect();
    let operands: Vec<Operand> = args
        .iter()
        .zip(&types)
        .zip(&labels)
        .map(|((v, t), label)| Operand {
            label,
            static_shape: &t.shape,
            shape: v.shape(),
        })
        .collect();
    let ndim = types.first().map_or(0, |t| t.ndim());
    if args.iter().any(|a| a.ndim() != ndim) {
        return Ok(None);
    }
    let full = broadcast_shape(&name, ndim, &operands, None)?;
    let (kind, axes) = match &e.op {
        Op::Reduce { kind, axes } | Op::FusedReduce { kind, axes, .. } => (*kind, axes),
        _ => return Ok(Some(full)),
    };
    let empty_axis = axes.iter().any(|a| full[*a] == 0);
    if empty_axis && matches!(kind, ReduceKind::Max | ReduceKind::Min) {
        return Ok(None);
    }
    Ok(Some(
        full.iter()
            .enumerate()
            .filter(|(d, _)| !axes.contains(d))
            .map(|(_, s)| *s)
            .collect(),
    ))
}

fn push_buffer(args: &mut Vec<i64>, ptr: *const u8, shape: &[usize], strides: &[isize]) {
    args.push(ptr as i64);
    args.extend(shape.iter().map(|s| *s as i64));
    args.extend(strides.iter().map(|s| *s as i64));
}

/// A zero-filled contiguous array of `dtype`.
fn allocate(dtype: DType, shape: &[usize]) -> Result<TensorData, RuntimeError> {
    Ok(match dtype {
        DType::Float64 => TensorData::from_array(ArrayD::<f64>::zeros(IxDyn(shape))),
        DType::Float32 => TensorData::from_array(ArrayD::<f32>::zeros(IxDyn(shape))),
        DType::Bool => TensorData::from_array(ArrayD::<bool>::from_elem(IxDyn(shape), false)),
        other => {
            return Err(RuntimeError::Internal(format!(
                "JIT kernels do not produce {other}"
            )))
        }
    })
}

fn data_ptr(d: &TensorData) -> Option<(*const u8, &[usize], &[isize])> {
    match d {
        TensorData::Float64(a) => Some((a.as_ptr() as *const u8, a.shape(), a.strides())),
        TensorData::Float32(a) => Some((a.as_ptr() as *const u8, a.shape(), a.strides())),
        TensorData::Bool(a) => Some((a.as_ptr() as *const u8, a.shape(), a.strides())),
        _ => None,
    }
}

/// The writable data pointer of a freshly allocated output (unique, so no copy is made).
fn output_ptr(d: &mut TensorData) -> Option<(*const u8, Vec<usize>, Vec<isize>)> {
    match d {
        TensorData::Float64(a) => Some((
            a.as_mut_ptr() as *const u8,
            a.shape().to_vec(),
            a.strides().to_vec(),
        )),
        TensorData::Float32(a) => Some((
            a.as_mut_ptr() as *const u8,
            a.shape().to_vec(),
            a.strides().to_vec(),
        )),
        TensorData::Bool(a) => Some((
            a.as_mut_ptr() as *const u8,
            a.shape().to_vec(),
            a.strides().to_vec(),
        )),
        _ => None,
    }
}

fn run_kernel(
    fg: &FunctionGraph,
    node: NodeId,
    kernel: &Kernel,
    compiled: &CompiledKernel,
    args: &[TensorData],
) -> Result<Vec<TensorData>, RuntimeError> {
    let Some(shape) = output_shape(fg, node, args)? else {
        return eval_node(fg, node, args);
    };
    let e = fg
        .node(node)
        .ok_or_else(|| RuntimeError::Internal("running a removed node".into()))?;
    let mut outputs = e
        .outputs
        .iter()
        .map(|o| allocate(fg.var(*o).ty.dtype, &shape))
        .collect::<Result<Vec<_>, _>>()?;
    let mut packed = Vec::with_capacity(8 * (args.len() + outputs.len()));
    for (k, a) in args.iter().enumerate() {
        let (ptr, s, st) = data_ptr(a).ok_or_else(|| {
            RuntimeError::Internal(format!("JIT kernel input {k} has dtype {}", a.dtype()))
        })?;
        if a.dtype() != kernel.buffers[k].dtype {
            return Err(RuntimeError::Internal(format!(
                "JIT kernel input {k} is {}, the kernel takes {}",
                a.dtype(),
                kernel.buffers[k].dtype
            )));
        }
        push_buffer(&mut packed, ptr, s, st);
    }
    for o in outputs.iter_mut() {
        let (ptr, s, st) = output_ptr(o)
            .ok_or_else(|| RuntimeError::Internal("JIT output without data".into()))?;
        push_buffer(&mut packed, ptr, &s, &st);
    }
    // SAFETY: every input has the kernel's dtype and rank and a shape checked by
    // `output_shape` against the static types (dimensions the kernel reads at index 0 have
    // static size 1); outputs were just allocated, contiguous, with the shape the loops
    // walk, and are unshared (fresh `ArcArray`s), so writes through their pointers neither
    // alias the inputs nor escape the allocation. The kernel only reads and writes inside
    // these buffers (`codegen` ABI).
    let status = unsafe { compiled.call(&packed) };
    if status != 0 {
        return Err(RuntimeError::Internal(format!(
            "JIT kernel {} failed with status {status}",
            kernel.name
        )));
    }
    Ok(outputs)
}

//! Cranelift code generation for loop-nest kernels (DESIGN §11; facts in CRANELIFT.md).
//!
//! Owns: translating a `loopir::Kernel` into a Cranelift function and native code, the
//! kernel ABI, and the lifetime of the code (`CodeModule` frees its pages when the last
//! compiled function using it is dropped).
//!
//! ABI: `extern "C" fn(args: *const i64) -> i32`, `args` holding for each buffer in order
//! its data pointer, its `rank` sizes and its `rank` strides (in elements), then a pointer
//! to `scratch_words` f64s of scratch memory (unused, may be null, when 0), then a pointer
//! to an `ErrorSlot`. A kernel first checks the shapes it is given (the checks are loop-IR
//! statements, `Kernel::with_shape_checks`, plus those lowering adds for gathered indices
//! and support calls) and returns 0, or `e + 1` for error `e` of `Kernel::errors` after
//! writing the values its message refers to into the slot, before touching memory it
//! should not. Control flow (`if`, `while`, `fail`) and support calls on whole buffers
//! (`call dot`: the buffers' argument words are passed to the runtime's gemm) are emitted
//! as plain scalar code.
//!
//! Values compute in f64 (float32 buffers are widened on load and narrowed on store;
//! float32 results are rounded like the reference) and bools as 0/1 bytes. An innermost
//! loop whose buffers are all floats has a second, vectorised body (f64x2, float32 pairs
//! widened on load and narrowed on store; unrolled, one accumulator per unrolled step for
//! reductions, max/min as `maxpd`/`minpd` with NaNs tracked in a mask) used when every
//! buffer it walks has stride 1 at run time; a float32 body of exactly-rounded arithmetic
//! runs four lanes in float32 instead (f32x4, the same bits). When such a body
//! applies a math function with an array version (exp, sin, cos, log, tanh, sigmoid, …),
//! it runs instead by strips of `STRIP` elements: the statements between math calls form
//! segments, values crossing a call live in scratch slots, and the math runs on whole
//! slots through the runtime's array functions (AVX2 polynomials from
//! `tensorlift_runtime::vector_math` for exp/log/sigmoid/sin/cos, the reference's own functions for
//! the others). Strided loops use the same polynomials emitted inline (`vmath`), bit-identical;
//! other math functions call the runtime's scalar support functions
//! (`tensorlift_runtime::support`), the reference's own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    types, AbiParam, Endianness, FuncRef, InstBuilder, MemFlagsData, StackSlot, StackSlotData,
    StackSlotKind, Type, Value,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module};
use tensorlift_ir::ops::ReduceKind;
use tensorlift_ir::{DType, Literal, ScalarOp};
use tensorlift_runtime::buffer_support::{tl_dot_f32, tl_dot_f64, tl_grow};
use tensorlift_runtime::support::{float_array_support, float_support, int_support};

use crate::error::CompileError;
use crate::loopir::{
    fill_message, identity, Expr, Index, Kernel, LoopVar, Role, Stmt, SupportCall, Temp,
    MAX_ERROR_VALUES,
};
use crate::vmath::VMath;

/// The signature of a compiled kernel.
pub type KernelFn = unsafe extern "C" fn(*const i64) -> i32;

/// A JIT module whose code pages live as long as this value.
pub struct CodeModule {
    module: Mutex<Option<JITModule>>,
}

impl Drop for CodeModule {
    fn drop(&mut self) {
        let module = self.module.get_mut().ok().and_then(|m| m.take());
        if let Some(m) = module {
            // SAFETY: the module is dropped only when the last `CompiledKernel` (which holds
            // an `Arc<CodeModule>`) is gone, so no pointer into its code can be called again.
            unsafe { m.free_memory() };
        }
    }
}

/// A compiled kernel: its entry point and the module keeping its code alive.
#[derive(Clone)]
pub struct CompiledKernel {
    entry: KernelFn,
    _code: Arc<CodeModule>,
    /// f64 words of scratch memory a call needs (its pointer is the last argument word).
    pub scratch_words: usize,
    /// Error message templates by status − 1 (the kernel's own, then its callees').
    errors: Arc<[String]>,
}

/// A compiled kernel that does not keep its code alive (for caches).
#[derive(Clone)]
pub struct WeakKernel {
    entry: KernelFn,
    code: std::sync::Weak<CodeModule>,
    scratch_words: usize,
    errors: Arc<[String]>,
}

impl WeakKernel {
    /// The kernel, if some user still keeps its code alive.
    pub fn upgrade(&self) -> Option<CompiledKernel> {
        self.code.upgrade().map(|code| CompiledKernel {
            entry: self.entry,
            _code: code,
            scratch_words: self.scratch_words,
            errors: self.errors.clone(),
        })
    }
}

impl CompiledKernel {
    /// A handle that does not keep the code alive.
    pub fn downgrade(&self) -> WeakKernel {
        WeakKernel {
            entry: self.entry,
            code: Arc::downgrade(&self._code),
            scratch_words: self.scratch_words,
            errors: self.errors.clone(),
        }
    }

    /// The message a failing call's status and error slot values stand for, or `None`
    /// for a status no error of this kernel has.
    pub fn error_message(&self, status: i32, values: &[i64]) -> Option<String> {
        let index = usize::try_from(status).ok()?.checked_sub(1)?;
        let template = self.errors.get(index)?;
        Some(fill_message(template, values))
    }

    /// Runs the kernel on packed buffer arguments.
    ///
    /// # Safety
    /// `args` must describe, in the kernel's buffer order, valid buffers of the kernel's
    /// dtypes and ranks whose every element addressed by the shapes and strides lies inside
    /// the allocation, with outputs writable and not aliasing inputs.
    pub unsafe fn call(&self, args: &[i64]) -> i32 {
        // SAFETY: upheld by the caller as documented above; the code is alive (`_code`).
        unsafe { (self.entry)(args.as_ptr()) }
    }
}

fn jit_error(e: impl std::fmt::Display) -> CompileError {
    CompileError::Internal(format!("JIT: {e}"))
}

/// Compiles kernels into one module; returns them in order.
pub fn compile_kernels(kernels: &[Kernel]) -> Result<Vec<CompiledKernel>, CompileError> {
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").map_err(jit_error)?;
    flags.set("is_pic", "false").map_err(jit_error)?;
    flags
        .set("use_colocated_libcalls", "false")
        .map_err(jit_error)?;
    let verify = if cfg!(debug_assertions) {
        "true"
    } else {
        "false"
    };
    flags.set("enable_verifier", verify).map_err(jit_error)?;
    let isa = cranelift_native::builder()
        .map_err(jit_error)?
        .finish(settings::Flags::new(flags))
        .map_err(jit_error)?;
    let mut builder = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
    let mut needed: Vec<ScalarOp> = kernels
        .iter()
        .flat_map(|k| k.scalar_ops())
        .map(|(op, _)| op)
        .filter(|op| float_support(*op).is_some() || int_support(*op).is_some())
        .collect();
    needed.sort_by_key(|op| op.to_string());
    needed.dedup();
    for op in &needed {
        if let Some(s) = float_support(*op) {
            builder.symbol(s.symbol, s.address);
        }
        if let Some((symbol, address)) = float_array_support(*op) {
            builder.symbol(symbol, address);
        }
        if let Some((symbol, address)) = int_support(*op) {
            builder.symbol(symbol, address);
        }
    }
    let calls_dot = kernels.iter().any(|k| k.calls(SupportCall::Dot));
    if calls_dot {
        builder.symbol("tl_dot_f64", tl_dot_f64 as *const u8);
        builder.symbol("tl_dot_f32", tl_dot_f32 as *const u8);
    }
    let grows = |k: &Kernel| k.buffers.iter().any(|b| b.role == Role::Growing);
    if kernels.iter().any(grows) {
        builder.symbol("tl_grow", tl_grow as *const u8);
    }
    for kernel in kernels {
        kernel.validate().map_err(|e| {
            CompileError::Internal(format!("malformed kernel {}: {e}\n{kernel}", kernel.name))
        })?;
    }
    check_invokes(kernels)?;
    let tables = error_tables(kernels);
    let mut module = JITModule::new(builder);
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let target = module.target_config();
    let ptr = target.pointer_type();
    let mut kernel_sig = module.make_signature();
    kernel_sig.params.push(AbiParam::new(ptr));
    kernel_sig.returns.push(AbiParam::new(types::I32));
    let ids: Vec<FuncId> = kernels
        .iter()
        .enumerate()
        .map(|(k, kernel)| {
            module
                .declare_function(&format!("{}_{k}", kernel.name), Linkage::Local, &kernel_sig)
                .map_err(jit_error)
        })
        .collect::<Result<_, _>>()?;
    for (k, kernel) in kernels.iter().enumerate() {
        let id = ids[k];
        ctx.func.signature = kernel_sig.clone();
        {
            let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
            // Imports of the support functions the kernel calls, by op: (symbol, params,
            // returns) for each family.
            let mut imports = |symbol_of: &dyn Fn(ScalarOp) -> Option<(&'static str, usize)>,
                               params: &dyn Fn(usize) -> Vec<Type>,
                               returns: &[Type]|
             -> Result<HashMap<ScalarOp, FuncRef>, CompileError> {
                let mut refs = HashMap::new();
                for op in &needed {
                    let Some((symbol, arity)) = symbol_of(*op) else {
                        continue;
                    };
                    let mut sig = module.make_signature();
                    sig.params
                        .extend(params(arity).into_iter().map(AbiParam::new));
                    sig.returns
                        .extend(returns.iter().map(|t| AbiParam::new(*t)));
                    let fid = module
                        .declare_function(symbol, Linkage::Import, &sig)
                        .map_err(jit_error)?;
                    refs.insert(*op, module.declare_func_in_func(fid, b.func));
                }
                Ok(refs)
            };
            let support = imports(
                &|op| float_support(op).map(|s| (s.symbol, s.arity)),
                &|arity| vec![types::F64; arity],
                &[types::F64],
            )?;
            let ints = imports(
                &|op| int_support(op).map(|(symbol, _)| (symbol, 2)),
                &|arity| vec![types::I64; arity],
                &[types::I64],
            )?;
            let array_support = imports(
                &|op| float_array_support(op).map(|(symbol, _)| (symbol, 3)),
                &|_| vec![ptr, ptr, types::I64],
                &[],
            )?;
            let mut dot = HashMap::new();
            if kernel.calls(SupportCall::Dot) {
                for (dtype, symbol) in [
                    (DType::Float64, "tl_dot_f64"),
                    (DType::Float32, "tl_dot_f32"),
                ] {
                    let mut sig = module.make_signature();
                    for _ in 0..3 {
                        sig.params.push(AbiParam::new(ptr));
                        sig.params.push(AbiParam::new(types::I64));
                    }
                    sig.returns.push(AbiParam::new(types::I32));
                    let fid = module
                        .declare_function(symbol, Linkage::Import, &sig)
                        .map_err(jit_error)?;
                    dot.insert(dtype, module.declare_func_in_func(fid, b.func));
                }
            }
            let grow_fn = if grows(kernel) {
                let mut sig = module.make_signature();
                sig.params.push(AbiParam::new(ptr));
                sig.params.push(AbiParam::new(types::I64));
                sig.returns.push(AbiParam::new(ptr));
                let fid = module
                    .declare_function("tl_grow", Linkage::Import, &sig)
                    .map_err(jit_error)?;
                Some(module.declare_func_in_func(fid, b.func))
            } else {
                None
            };
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            b.seal_block(entry);
            let args = b.block_params(entry)[0];
            let callees = kernel
                .callees()
                .into_iter()
                .map(|c| (c, module.declare_func_in_func(ids[c], b.func)))
                .collect();
            let mut g = Gen::new(b, kernel, args, support, array_support, ints);
            g.dot = dot;
            g.callees = callees;
            g.grow_fn = grow_fn;
            g.error_offsets = tables[k].1.clone();
            g.stmts(&kernel.body.clone());
            let zero = g.b.ins().iconst(types::I32, 0);
            g.b.ins().return_(&[zero]);
            g.b.finalize(target);
        }
        let dump = std::env::var_os("TENSORLIFT_DUMP_ASM").is_some();
        ctx.set_disasm(dump);
        module
            .define_function(id, &mut ctx)
            .map_err(|e| jit_error(format!("{e:?} while compiling\n{kernel}")))?;
        if let Some(code) = ctx
            .compiled_code()
            .and_then(|c| c.vcode.as_ref())
            .filter(|_| dump)
        {
            eprintln!("{kernel}\n{code}");
        }
        module.clear_context(&mut ctx);
    }
    module.finalize_definitions().map_err(jit_error)?;
    let entries: Vec<KernelFn> = ids
        .iter()
        .map(|id| {
            let p = module.get_finalized_function(*id);
            // SAFETY: `p` is the finalized code of a function declared with exactly the
            // `KernelFn` signature (one pointer parameter, an i32 result, C call conv).
            unsafe { std::mem::transmute::<*const u8, KernelFn>(p) }
        })
        .collect();
    let code = Arc::new(CodeModule {
        module: Mutex::new(Some(module)),
    });
    // A kernel's scratch also serves the kernels it invokes (one runs at a time).
    let mut scratch_words: Vec<usize> = Vec::with_capacity(kernels.len());
    for kernel in kernels {
        let own = scratch_slots(kernel) * STRIP;
        let callees = kernel.callees().into_iter().map(|c| scratch_words[c]);
        scratch_words.push(callees.fold(own, usize::max));
    }
    Ok(entries
        .into_iter()
        .zip(scratch_words)
        .zip(tables)
        .map(|((entry, scratch_words), (errors, _))| CompiledKernel {
            entry,
            _code: code.clone(),
            scratch_words,
            errors: errors.into(),
        })
        .collect())
}

/// Per kernel: its error table — its own messages, then each callee's table in the order
/// of first call — and where each callee's starts. A kernel's status `e + 1` names entry
/// `e` of its table, whichever kernel of the call tree failed.
fn error_tables(kernels: &[Kernel]) -> Vec<(Vec<String>, HashMap<usize, usize>)> {
    let mut tables: Vec<(Vec<String>, HashMap<usize, usize>)> = Vec::with_capacity(kernels.len());
    for kernel in kernels {
        let mut errors = kernel.errors.clone();
        let mut offsets = HashMap::new();
        for c in kernel.callees() {
            offsets.insert(c, errors.len());
            errors.extend(tables[c].0.iter().cloned());
        }
        tables.push((errors, offsets));
    }
    tables
}

/// Checks every `invoke`: the callee comes earlier in the module and takes buffers of
/// the dtypes and ranks it is given.
fn check_invokes(kernels: &[Kernel]) -> Result<(), CompileError> {
    fn walk(body: &[Stmt], k: usize, kernels: &[Kernel]) -> Result<(), CompileError> {
        for s in body {
            match s {
                Stmt::Invoke { callee, bufs, .. } => {
                    let caller = &kernels[k];
                    let Some(target) = kernels.get(*callee).filter(|_| *callee < k) else {
                        return Err(CompileError::Internal(format!(
                            "kernel {} invokes kernel {callee}, which does not come before it",
                            caller.name
                        )));
                    };
                    let writes_ok = bufs.iter().zip(&target.buffers).all(|(b, t)| {
                        t.role == Role::Input
                            || caller.buffers.get(*b).is_some_and(|c| c.role == t.role)
                    });
                    let fits = writes_ok
                        && bufs.len() == target.buffers.len()
                        && bufs.iter().zip(&target.buffers).all(|(b, t)| {
                            caller
                                .buffers
                                .get(*b)
                                .is_some_and(|c| c.dtype == t.dtype && c.rank == t.rank)
                        });
                    if !fits {
                        return Err(CompileError::Internal(format!(
                            "kernel {} invokes {} with buffers that do not match its parameters",
                            caller.name, target.name
                        )));
                    }
                }
                Stmt::For { body, .. } | Stmt::While { body, .. } => walk(body, k, kernels)?,
                Stmt::If {
                    then, otherwise, ..
                } => {
                    walk(then, k, kernels)?;
                    walk(otherwise, k, kernels)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
    for (k, kernel) in kernels.iter().enumerate() {
        walk(&kernel.body, k, kernels)?;
    }
    Ok(())
}

/// A vector accumulator of a reduction in registers, and for max/min whether a NaN was
/// seen (its value then ignores NaNs).
struct VectorAcc {
    value: Variable,
    nan_seen: Option<Variable>,
}

/// A buffer's data pointer, sizes and strides as SSA values.
struct BufVals {
    ptr: Value,
    /// For a growing buffer: its `GrowBuffer` (the pointer word), and variables holding
    /// the current data pointer and row count (`ptr` and `shape[0]` are then unused).
    growing: Option<(Value, Variable, Variable)>,
    shape: Vec<Value>,
    stride: Vec<Value>,
    dtype: DType,
}

/// A counted loop being emitted (see `Gen::open_loop`).
struct OpenLoop {
    counter: Variable,
    /// The counter's value in the body.
    at: Value,
    step: i64,
    header: cranelift_codegen::ir::Block,
    exit: cranelift_codegen::ir::Block,
}

/// How an expression is evaluated: one element, two adjacent ones (f64x2; float32 data
/// widened), or four adjacent float32s computed in float32 (f32x4: only for bodies whose
/// every operation gives the same float32 result as computing in f64 and rounding once,
/// `Gen::float32_lanes_ok`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lanes {
    One,
    Two,
    Four,
}

impl Lanes {
    /// Elements per value.
    fn width(self) -> usize {
        match self {
            Lanes::One => 1,
            Lanes::Two => 2,
            Lanes::Four => 4,
        }
    }
}

struct Gen<'a> {
    b: FunctionBuilder<'a>,
    /// Where `fail` writes its values (`ErrorSlot`).
    error_slot: Value,
    /// The gemm support functions by dtype.
    dot: HashMap<DType, FuncRef>,
    /// The runtime's `tl_grow` (imported when the kernel has growing buffers).
    grow_fn: Option<FuncRef>,
    /// Where each callee's errors start in this kernel's error table.
    error_offsets: HashMap<usize, usize>,
    /// The kernels this one invokes, by module index.
    callees: HashMap<usize, FuncRef>,
    bufs: Vec<BufVals>,
    vars: HashMap<LoopVar, Value>,
    temps: HashMap<usize, Value>,
    support: HashMap<ScalarOp, FuncRef>,
    temp_dtypes: HashMap<usize, DType>,
    /// Register accumulators of the innermost loop being emitted: statement position → variable.
    reg_accs: HashMap<usize, Variable>,
    /// For vector max/min accumulators: statement position → whether a NaN was seen (a
    /// mask, all ones once it was), so the max/min itself can use `maxpd`/`minpd`.
    nan_accs: HashMap<usize, Variable>,
    /// The loop variable of the innermost loop being emitted.
    inner: Option<LoopVar>,
    /// Scratch memory for strips (`STRIP` f64s per slot).
    scratch: Value,
    array_support: HashMap<ScalarOp, FuncRef>,
    int_support: HashMap<ScalarOp, FuncRef>,
    /// While emitting a strip segment: temps held in scratch slots, and the element index
    /// within the strip.
    slots: HashMap<Temp, usize>,
    strip_index: Option<Value>,
}

fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// The machine type holding one element of an integer dtype.
fn int_type(d: DType) -> Type {
    match d {
        DType::Int8 | DType::UInt8 | DType::Bool => types::I8,
        DType::Int16 => types::I16,
        DType::Int32 => types::I32,
        _ => types::I64,
    }
}

/// Bytes per element, as an immediate.
fn elem_size(d: DType) -> i64 {
    d.size_bytes() as i64
}

/// The range of an integer dtype (saturating float casts clamp to it); floats (never
/// asked) get the i64 range.
fn int_range(d: DType) -> (i64, i64) {
    d.int_range().unwrap_or((i64::MIN, i64::MAX))
}

const F64X2: Type = types::F64X2;
/// Elements per strip: math with an array version runs strip by strip through scratch.
pub const STRIP: usize = 512;

/// How an innermost loop body runs by strips: segments of statements (indices into the
/// body), the array math call after each segment but the last, and the temps that live in
/// scratch slots (values crossing a call, and the calls' arguments and results).
struct StripPlan {
    segments: Vec<Vec<usize>>,
    calls: Vec<(ScalarOp, Temp, Temp)>,
    slots: HashMap<Temp, usize>,
    /// Per segment: slot temps it reads.
    reads: Vec<Vec<Temp>>,
}

fn strip_plan(body: &[Stmt]) -> Option<StripPlan> {
    fn temps_of(e: &Expr, out: &mut Vec<Temp>) {
        match e {
            Expr::Temp(t) => out.push(*t),
            Expr::Apply { args, .. } => args.iter().for_each(|a| temps_of(a, out)),
            Expr::Load { .. } | Expr::Const(..) | Expr::Dim { .. } => {}
        }
    }
    let mut segments = vec![Vec::new()];
    let mut calls = Vec::new();
    let mut dtypes = HashMap::new();
    for (k, s) in body.iter().enumerate() {
        match s {
            Stmt::Let {
                temp,
                dtype,
                value: Expr::Apply { op, args, .. },
            } if *dtype == DType::Float64 && float_array_support(*op).is_some() => {
                let [Expr::Temp(a)] = args.as_slice() else {
                    return None;
                };
                calls.push((*op, *a, *temp));
                dtypes.insert(*temp, *dtype);
                segments.push(Vec::new());
            }
            Stmt::Let { temp, dtype, .. } => {
                dtypes.insert(*temp, *dtype);
                segments.last_mut()?.push(k);
            }
            Stmt::Store { .. } | Stmt::Accumulate { .. } => segments.last_mut()?.push(k),
            _ => return None,
        }
    }
    if calls.is_empty() {
        return None;
    }
    let mut defined_in: HashMap<Temp, usize> = HashMap::new();
    for (seg, stmts) in segments.iter().enumerate() {
        for k in stmts {
            if let Stmt::Let { temp, .. } = &body[*k] {
                defined_in.insert(*temp, seg);
            }
        }
    }
    let mut slotted: Vec<Temp> = Vec::new();
    let mut reads = Vec::new();
    for (seg, stmts) in segments.iter().enumerate() {
        let mut used = Vec::new();
        for k in stmts {
            match &body[*k] {
                Stmt::Let { value, .. }
                | Stmt::Store { value, .. }
                | Stmt::Accumulate { value, .. } => temps_of(value, &mut used),
                _ => {}
            }
        }
        used.sort_unstable();
        used.dedup();
        let foreign: Vec<Temp> = used
            .into_iter()
            .filter(|t| defined_in.get(t) != Some(&seg))
            .collect();
        slotted.extend(&foreign);
        reads.push(foreign);
    }
    for (_, a, out) in &calls {
        slotted.push(*a);
        slotted.push(*out);
    }
    slotted.sort_unstable();
    slotted.dedup();
    if slotted
        .iter()
        .any(|t| dtypes.get(t) != Some(&DType::Float64))
    {
        return None;
    }
    let slots = slotted
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, i))
        .collect();
    Some(StripPlan {
        segments,
        calls,
        slots,
        reads,
    })
}

/// Scratch slots the kernel's strip loops need (the largest; loops run one at a time).
fn scratch_slots(kernel: &Kernel) -> usize {
    fn walk(body: &[Stmt]) -> usize {
        let inner = body.iter().any(|s| matches!(s, Stmt::For { .. }));
        let here = if inner {
            0
        } else {
            strip_plan(body).map_or(0, |p| p.slots.len())
        };
        body.iter()
            .map(|s| match s {
                Stmt::For { body, .. } => walk(body),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
            .max(here)
    }
    walk(&kernel.body)
}
/// Vectors (of two elements) per iteration of a vectorised loop.
const UNROLL: usize = 4;

impl<'a> Gen<'a> {
    fn new(
        mut b: FunctionBuilder<'a>,
        kernel: &Kernel,
        args: Value,
        support: HashMap<ScalarOp, FuncRef>,
        array_support: HashMap<ScalarOp, FuncRef>,
        int_support: HashMap<ScalarOp, FuncRef>,
    ) -> Gen<'a> {
        let mut bufs = Vec::new();
        let slot = std::cell::Cell::new(0i32);
        let load = |b: &mut FunctionBuilder<'a>| {
            let v = b.ins().load(types::I64, flags(), args, slot.get() * 8);
            slot.set(slot.get() + 1);
            v
        };
        for buf in &kernel.buffers {
            let ptr = load(&mut b);
            let shape = (0..buf.rank).map(|_| load(&mut b)).collect();
            let stride = (0..buf.rank).map(|_| load(&mut b)).collect();
            let growing = (buf.role == Role::Growing).then(|| {
                let (data, rows) = (b.declare_var(types::I64), b.declare_var(types::I64));
                let zero = b.ins().iconst(types::I64, 0);
                b.def_var(data, zero);
                b.def_var(rows, zero);
                (ptr, data, rows)
            });
            bufs.push(BufVals {
                growing,
                ptr,
                shape,
                stride,
                dtype: buf.dtype,
            });
        }
        let scratch = load(&mut b);
        let error_slot = load(&mut b);
        Gen {
            b,
            error_slot,
            dot: HashMap::new(),
            grow_fn: None,
            error_offsets: HashMap::new(),
            callees: HashMap::new(),
            bufs,
            vars: HashMap::new(),
            temps: HashMap::new(),
            support,
            temp_dtypes: HashMap::new(),
            reg_accs: HashMap::new(),
            nan_accs: HashMap::new(),
            inner: None,
            scratch,
            array_support,
            int_support,
            slots: HashMap::new(),
            strip_index: None,
        }
    }

    fn stmts(&mut self, body: &[Stmt]) {
        for s in body {
            self.stmt(s, usize::MAX, Lanes::One);
        }
    }

    fn stmt(&mut self, s: &Stmt, position: usize, lanes: Lanes) {
        match s {
            Stmt::For {
                var,
                buf,
                dim,
                body,
                ..
            } => {
                let n = self.buf_dim(*buf, *dim);
                let plain = |s: &Stmt| {
                    matches!(
                        s,
                        Stmt::Let { .. } | Stmt::Store { .. } | Stmt::Accumulate { .. }
                    )
                };
                if !body.iter().all(plain) {
                    self.scalar_loop(*var, n, body);
                } else {
                    self.inner_loop(*var, n, body);
                }
            }
            Stmt::Let { temp, value, dtype } => {
                let v = self.expr(value, lanes);
                let v = self.round_to(v, *dtype, lanes);
                self.temps.insert(*temp, v);
                self.temp_dtypes.insert(*temp, *dtype);
            }
            Stmt::Store { buf, index, value } => {
                let v = self.expr(value, lanes);
                self.store(*buf, index, v, lanes);
            }
            Stmt::Accumulate {
                buf,
                index,
                kind,
                value,
            } => {
                let v = self.expr(value, lanes);
                // The accumulated value in the output's domain (a bool summed into int64).
                let (from, to) = (self.dtype_of(value), self.bufs[*buf].dtype);
                let v = if from == to
                    || from.is_float() == to.is_float() && to != DType::Bool && from != DType::Bool
                {
                    v
                } else {
                    self.cast(v, from, to, lanes)
                };
                if let Some(acc) = self.reg_accs.get(&position).copied() {
                    let old = self.b.use_var(acc);
                    let new = match self.nan_accs.get(&position).copied() {
                        Some(seen) if lanes == Lanes::Two => {
                            let before = self.b.use_var(seen);
                            let now = self.b.ins().fcmp(FloatCC::Unordered, v, before);
                            let now = self.b.ins().bitcast(F64X2, MemFlagsData::new(), now);
                            self.b.def_var(seen, now);
                            self.ordered_max_min(*kind, old, v)
                        }
                        _ => self.combine(*kind, old, v),
                    };
                    self.b.def_var(acc, new);
                } else {
                    let old = self.load(*buf, index, lanes);
                    let new = self.combine(*kind, old, v);
                    self.store(*buf, index, new, lanes);
                }
            }
            Stmt::Fill { buf, kind } => self.fill(*buf, *kind),
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                let c = self.expr(cond, Lanes::One);
                let (yes, no, join) = (
                    self.b.create_block(),
                    self.b.create_block(),
                    self.b.create_block(),
                );
                self.b.ins().brif(c, yes, &[], no, &[]);
                for (block, body) in [(yes, then), (no, otherwise)] {
                    self.b.switch_to_block(block);
                    self.b.seal_block(block);
                    self.stmts(body);
                    self.b.ins().jump(join, &[]);
                }
                self.b.switch_to_block(join);
                self.b.seal_block(join);
            }
            Stmt::While { cond, body } => {
                let (header, looped, exit) = (
                    self.b.create_block(),
                    self.b.create_block(),
                    self.b.create_block(),
                );
                self.b.ins().jump(header, &[]);
                self.b.switch_to_block(header);
                let c = self.expr(cond, Lanes::One);
                self.b.ins().brif(c, looped, &[], exit, &[]);
                self.b.switch_to_block(looped);
                self.b.seal_block(looped);
                self.stmts(body);
                self.b.ins().jump(header, &[]);
                self.b.seal_block(header);
                self.b.switch_to_block(exit);
                self.b.seal_block(exit);
            }
            Stmt::Fail { error, values } => {
                let vals: Vec<Value> = values
                    .iter()
                    .map(|v| {
                        let x = self.expr(v, Lanes::One);
                        let d = self.dtype_of(v);
                        if d.is_float() {
                            self.b.ins().fcvt_to_sint_sat(types::I64, x)
                        } else {
                            self.widen_to_int(x, d)
                        }
                    })
                    .collect();
                for (k, v) in vals.iter().take(MAX_ERROR_VALUES).enumerate() {
                    self.b
                        .ins()
                        .store(flags(), *v, self.error_slot, 8 * k as i32);
                }
                self.fail(*error);
            }
            Stmt::Invoke { callee, bufs, .. } => {
                let offset = self.error_offsets[callee];
                self.invoke(*callee, bufs, offset)
            }
            Stmt::Grow { buf, rows, error } => self.grow(*buf, rows, *error),
            Stmt::Call { func, bufs, error } => {
                let status = match func {
                    SupportCall::Dot => {
                        let dtype = self.bufs[bufs[0]].dtype;
                        let f = self.dot[&dtype];
                        let (slot, offsets) = self.words_on_stack(bufs, false);
                        let mut call_args = Vec::new();
                        for (b, at) in bufs.iter().zip(offsets) {
                            let words = self.b.ins().stack_addr(types::I64, slot, at);
                            let rank = self
                                .b
                                .ins()
                                .iconst(types::I64, self.bufs[*b].shape.len() as i64);
                            call_args.push(words);
                            call_args.push(rank);
                        }
                        let call = self.b.ins().call(f, &call_args);
                        self.b.inst_results(call)[0]
                    }
                };
                self.fail_if(status, *error);
            }
        }
    }

    /// Calls kernel `callee` with this kernel's buffers `bufs` (their words copied into an
    /// argument array on the stack, then the scratch and error slot pointers); a failing
    /// callee's status, shifted by `error_offset`, is returned.
    fn invoke(&mut self, callee: usize, bufs: &[usize], error_offset: usize) {
        let (slot, _) = self.words_on_stack(bufs, true);
        let args = self.b.ins().stack_addr(types::I64, slot, 0);
        let f = self.callees[&callee];
        let call = self.b.ins().call(f, &[args]);
        let status = self.b.inst_results(call)[0];
        let (failed, ok) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(status, failed, &[], ok, &[]);
        self.b.switch_to_block(failed);
        self.b.seal_block(failed);
        let shifted = self.b.ins().iadd_imm_s(status, error_offset as i64);
        self.b.ins().return_(&[shifted]);
        self.b.switch_to_block(ok);
        self.b.seal_block(ok);
    }

    /// The argument words of buffers `bufs` (data pointer, sizes, strides; current values
    /// for growing buffers) in a stack slot, followed by the scratch and error slot
    /// pointers when `trailer`; returns the slot and each buffer's byte offset in it.
    fn words_on_stack(&mut self, bufs: &[usize], trailer: bool) -> (StackSlot, Vec<i32>) {
        let words: usize = bufs
            .iter()
            .map(|b| 1 + 2 * self.bufs[*b].shape.len())
            .sum::<usize>()
            + 2 * trailer as usize;
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            (words * 8) as u32,
            3,
        ));
        let at = std::cell::Cell::new(0i32);
        let mut offsets = Vec::with_capacity(bufs.len());
        let put = |g: &mut Self, v: Value| {
            g.b.ins().stack_store(types::I64, v, slot, at.get());
            at.set(at.get() + 8);
        };
        for b in bufs {
            offsets.push(at.get());
            let ptr = self.buf_ptr(*b);
            put(self, ptr);
            for d in 0..self.bufs[*b].shape.len() {
                let size = self.buf_dim(*b, d);
                put(self, size);
            }
            for d in 0..self.bufs[*b].stride.len() {
                put(self, self.bufs[*b].stride[d]);
            }
        }
        if trailer {
            put(self, self.scratch);
            put(self, self.error_slot);
        }
        (slot, offsets)
    }

    /// A buffer's current data pointer.
    fn buf_ptr(&mut self, buf: usize) -> Value {
        match self.bufs[buf].growing {
            Some((_, data, _)) => self.b.use_var(data),
            None => self.bufs[buf].ptr,
        }
    }

    /// A buffer's current size along `dim`.
    fn buf_dim(&mut self, buf: usize, dim: usize) -> Value {
        match self.bufs[buf].growing {
            Some((_, _, rows)) if dim == 0 => self.b.use_var(rows),
            _ => self.bufs[buf].shape[dim],
        }
    }

    /// `grow buf to rows`: the runtime makes room; the new data pointer and row count
    /// replace the old (a null pointer fails the kernel with `error`).
    fn grow(&mut self, buf: usize, rows: &Expr, error: usize) {
        let (Some((handle, data, count)), Some(grow_fn)) = (self.bufs[buf].growing, self.grow_fn)
        else {
            return self.fail(error);
        };
        let n = self.expr(rows, Lanes::One);
        let n = self.widen_to_int(n, self.dtype_of(rows));
        let call = self.b.ins().call(grow_fn, &[handle, n]);
        let p = self.b.inst_results(call)[0];
        let null = self.b.ins().icmp_imm_s(IntCC::Equal, p, 0);
        self.fail_if(null, error);
        self.b.def_var(data, p);
        self.b.def_var(count, n);
    }

    /// Fails with `error` when `cond` (an integer) is non-zero; emission continues on the
    /// path where it is zero.
    fn fail_if(&mut self, cond: Value, error: usize) {
        let (failed, ok) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(cond, failed, &[], ok, &[]);
        self.b.switch_to_block(failed);
        self.b.seal_block(failed);
        self.fail(error);
        self.b.ins().jump(ok, &[]);
        self.b.switch_to_block(ok);
        self.b.seal_block(ok);
    }

    /// Returns status `error + 1`; emission continues in a fresh (unreachable) block.
    fn fail(&mut self, error: usize) {
        let code = self.b.ins().iconst(types::I32, error as i64 + 1);
        self.b.ins().return_(&[code]);
        let dead = self.b.create_block();
        self.b.switch_to_block(dead);
        self.b.seal_block(dead);
    }

    /// A loop counter starting at 0.
    fn counter(&mut self) -> Variable {
        let c = self.b.declare_var(types::I64);
        let zero = self.b.ins().iconst(types::I64, 0);
        self.b.def_var(c, zero);
        c
    }

    /// Opens a counted loop over `counter`: its body runs while `counter + step <= bound`
    /// (`whole_steps`) or while `counter < bound`. The caller emits the body (the counter's
    /// value there is `OpenLoop::at`), then `close_loop`.
    fn open_loop(
        &mut self,
        counter: Variable,
        bound: Value,
        step: i64,
        whole_steps: bool,
    ) -> OpenLoop {
        let (header, body, exit) = (
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
        );
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let at = self.b.use_var(counter);
        let go = if whole_steps && step > 1 {
            let end = self.b.ins().iadd_imm_s(at, step);
            self.b.ins().icmp(IntCC::SignedLessThanOrEqual, end, bound)
        } else {
            self.b.ins().icmp(IntCC::SignedLessThan, at, bound)
        };
        self.b.ins().brif(go, body, &[], exit, &[]);
        self.b.switch_to_block(body);
        self.b.seal_block(body);
        OpenLoop {
            counter,
            at,
            step,
            header,
            exit,
        }
    }

    /// Advances the counter, closes the loop and continues after it.
    fn close_loop(&mut self, l: OpenLoop) {
        let next = self.b.ins().iadd_imm_s(l.at, l.step);
        self.b.def_var(l.counter, next);
        self.b.ins().jump(l.header, &[]);
        self.b.seal_block(l.header);
        self.b.switch_to_block(l.exit);
        self.b.seal_block(l.exit);
    }

    /// `for var in 0..n { body }`, one element per iteration.
    fn scalar_loop(&mut self, var: LoopVar, n: Value, body: &[Stmt]) {
        let i = self.counter();
        let l = self.open_loop(i, n, 1, false);
        self.vars.insert(var, l.at);
        for (k, s) in body.iter().enumerate() {
            self.stmt(s, k, Lanes::One);
        }
        self.close_loop(l);
    }

    /// The accumulations of `body` into elements its loop over `var` does not walk: they
    /// accumulate in registers. (statement position, kind, buffer, index)
    fn register_accumulations(
        body: &[Stmt],
        var: LoopVar,
    ) -> Vec<(usize, ReduceKind, usize, Vec<Index>)> {
        body.iter()
            .enumerate()
            .filter_map(|(k, s)| match s {
                Stmt::Accumulate {
                    buf, index, kind, ..
                } if !index.contains(&Index::Var(var)) => Some((k, *kind, *buf, index.clone())),
                _ => None,
            })
            .collect()
    }

    /// Whether every buffer `body` walks along `var` has stride 1 (an i8 flag).
    fn unit_strides(&mut self, body: &[Stmt], var: LoopVar) -> Value {
        let mut cond = self.b.ins().iconst(types::I8, 1);
        for (buf, d) in Self::walked(body, var) {
            let s = self.bufs[buf].stride[d];
            let unit = self.b.ins().icmp_imm_s(IntCC::Equal, s, 1);
            cond = self.b.ins().band(cond, unit);
        }
        cond
    }

    /// `UNROLL` vector accumulators for `kind`, each holding its identity.
    fn vector_accumulators(&mut self, kind: ReduceKind) -> Vec<VectorAcc> {
        let init = self.b.ins().f64const(identity(kind));
        let init = self.b.ins().splat(F64X2, init);
        let clear = self.b.ins().f64const(0.0);
        let clear = self.b.ins().splat(F64X2, clear);
        (0..UNROLL)
            .map(|_| {
                let value = self.b.declare_var(F64X2);
                self.b.def_var(value, init);
                let nan_seen = matches!(kind, ReduceKind::Max | ReduceKind::Min).then(|| {
                    let seen = self.b.declare_var(F64X2);
                    self.b.def_var(seen, clear);
                    seen
                });
                VectorAcc { value, nan_seen }
            })
            .collect()
    }

    /// Makes unrolled step `u`'s vector accumulators the current ones.
    fn use_vector_accs(
        &mut self,
        reg: &[(usize, ReduceKind, usize, Vec<Index>)],
        accs: &[&[VectorAcc]],
        u: usize,
    ) {
        self.reg_accs = reg
            .iter()
            .zip(accs)
            .map(|((k, ..), a)| (*k, a[u].value))
            .collect();
        self.nan_accs = reg
            .iter()
            .zip(accs)
            .filter_map(|((k, ..), a)| a[u].nan_seen.map(|n| (*k, n)))
            .collect();
    }

    /// The larger (smaller) of an accumulator and an ordered value: `acc < x ? x : acc`,
    /// the form x64 emits as one `maxpd` (`minpd`). NaNs are tracked separately.
    fn ordered_max_min(&mut self, kind: ReduceKind, acc: Value, x: Value) -> Value {
        let (a, b) = if kind == ReduceKind::Max {
            (acc, x)
        } else {
            (x, acc)
        };
        let beyond = self.b.ins().fcmp(FloatCC::LessThan, a, b);
        let mask = self.b.ins().bitcast(F64X2, MemFlagsData::new(), beyond);
        self.b.ins().bitselect(mask, x, acc)
    }

    /// The combination of vector accumulators' lanes into one scalar (NaN when a max/min
    /// accumulator saw one).
    fn fold_lanes(&mut self, kind: ReduceKind, accs: &[VectorAcc]) -> Value {
        let mut all = self.b.use_var(accs[0].value);
        for a in &accs[1..] {
            let a = self.b.use_var(a.value);
            all = self.combine(kind, all, a);
        }
        let lo = self.b.ins().extractlane(all, 0);
        let hi = self.b.ins().extractlane(all, 1);
        let folded = self.combine(kind, lo, hi);
        let seen: Vec<Variable> = accs.iter().filter_map(|a| a.nan_seen).collect();
        let Some(first) = seen.first() else {
            return folded;
        };
        let mut any = self.b.use_var(*first);
        for s in &seen[1..] {
            let s = self.b.use_var(*s);
            any = self.b.ins().bor(any, s);
        }
        let any = self.b.ins().bitcast(types::I64X2, MemFlagsData::new(), any);
        let nan_seen = self.b.ins().vany_true(any);
        let nan = self.b.ins().f64const(f64::NAN);
        self.b.ins().select(nan_seen, nan, folded)
    }

    /// Writes register accumulators into their output elements.
    fn flush_accumulations(
        &mut self,
        reg: &[(usize, ReduceKind, usize, Vec<Index>)],
        totals: &[Value],
    ) {
        for ((_, kind, buf, index), total) in reg.iter().zip(totals) {
            let old = self.load(*buf, index, Lanes::One);
            let new = self.combine(*kind, old, *total);
            self.store(*buf, index, new, Lanes::One);
        }
    }

    /// Buffers (and the dimension) that `body` walks along `var`.
    fn walked(body: &[Stmt], var: LoopVar) -> Vec<(usize, usize)> {
        fn from_index(buf: usize, index: &[Index], var: LoopVar, out: &mut Vec<(usize, usize)>) {
            if let Some(d) = index.iter().position(|i| *i == Index::Var(var)) {
                out.push((buf, d));
            }
        }
        fn from_expr(e: &Expr, var: LoopVar, out: &mut Vec<(usize, usize)>) {
            match e {
                Expr::Load { buf, index } => from_index(*buf, index, var, out),
                Expr::Apply { args, .. } => args.iter().for_each(|a| from_expr(a, var, out)),
                Expr::Const(..) | Expr::Temp(_) | Expr::Dim { .. } => {}
            }
        }
        let mut out = Vec::new();
        for s in body {
            match s {
                Stmt::Let { value, .. } => from_expr(value, var, &mut out),
                Stmt::Store { buf, index, value }
                | Stmt::Accumulate {
                    buf, index, value, ..
                } => {
                    from_index(*buf, index, var, &mut out);
                    from_expr(value, var, &mut out);
                }
                _ => {}
            }
        }
        out
    }

    /// Whether `body` can run two elements at a time: only float64 buffers and values.
    fn vectorizable(&self, body: &[Stmt]) -> bool {
        // Float buffers (float32 pairs are widened to f64x2) and float or bool values.
        let value_ok = |d: DType| d.is_float() || d == DType::Bool;
        fn expr_ok(g: &Gen, e: &Expr, value_ok: &dyn Fn(DType) -> bool) -> bool {
            match e {
                Expr::Load { buf, .. } => g.bufs[*buf].dtype.is_float(),
                Expr::Temp(_) => true,
                Expr::Dim { .. } => false,
                Expr::Const(_, d) => value_ok(*d),
                Expr::Apply { args, dtype, .. } => {
                    value_ok(*dtype) && args.iter().all(|a| expr_ok(g, a, value_ok))
                }
            }
        }
        body.iter().all(|s| match s {
            Stmt::Let { value, dtype, .. } => value_ok(*dtype) && expr_ok(self, value, &value_ok),
            Stmt::Store { buf, value, .. } | Stmt::Accumulate { buf, value, .. } => {
                self.bufs[*buf].dtype.is_float() && expr_ok(self, value, &value_ok)
            }
            _ => false,
        })
    }

    /// Whether `body` (an innermost loop over `var`, already `vectorizable`) can run four
    /// float32 elements at a time in float32: it loads and stores only float32 buffers,
    /// stores only where it walks, accumulates nothing, and applies only operations whose
    /// float32 result equals the f64 result rounded to float32 (add, sub, mul, div, sqrt
    /// are correctly rounded and f64 has more than twice float32's precision; the others
    /// are exact) — so the results are bit for bit those of the f64 path.
    fn float32_lanes_ok(&self, body: &[Stmt], var: LoopVar) -> bool {
        use ScalarOp::*;
        // The body's own temps by dtype (a temp from outside the loop is a scalar value,
        // which float32 lanes do not take).
        let mut dtypes = HashMap::new();
        for s in body {
            if let Stmt::Let { temp, dtype, .. } = s {
                dtypes.insert(*temp, *dtype);
            }
        }
        let dtype_of = |e: &Expr| match e {
            Expr::Temp(t) => dtypes.get(t).copied(),
            _ => Some(self.dtype_of(e)),
        };
        fn expr_ok(g: &Gen, e: &Expr, dtype_of: &dyn Fn(&Expr) -> Option<DType>) -> bool {
            match e {
                Expr::Load { buf, index } => {
                    g.bufs[*buf].dtype == DType::Float32
                        && index
                            .iter()
                            .all(|i| matches!(i, Index::Var(_) | Index::Zero))
                }
                Expr::Temp(_) => true,
                Expr::Const(_, d) => matches!(d, DType::Float32 | DType::Bool),
                Expr::Dim { .. } => false,
                Expr::Apply { op, args, dtype } => {
                    let op_ok = match op {
                        Neg | Abs | Sqr | Sqrt | Floor | Ceil | Round | Reciprocal | Sign | Add
                        | Sub | Mul | TrueDiv | Maximum | Minimum | Clip | Identity => {
                            *dtype == DType::Float32
                        }
                        Eq | Neq | Lt | Le | Gt | Ge => *dtype == DType::Bool,
                        Switch => *dtype == DType::Float32,
                        Cast(DType::Float32) => *dtype == DType::Float32,
                        _ => false,
                    };
                    op_ok
                        && args.iter().all(|a| {
                            matches!(dtype_of(a), Some(DType::Float32) | Some(DType::Bool))
                                && expr_ok(g, a, dtype_of)
                        })
                        && (*op != Switch || dtype_of(&args[0]) == Some(DType::Bool))
                }
            }
        }
        body.iter().all(|s| match s {
            Stmt::Let { value, dtype, .. } => {
                matches!(dtype, DType::Float32 | DType::Bool) && expr_ok(self, value, &dtype_of)
            }
            Stmt::Store { buf, index, value } => {
                self.bufs[*buf].dtype == DType::Float32
                    && index.contains(&Index::Var(var))
                    && expr_ok(self, value, &dtype_of)
            }
            _ => false,
        })
    }

    /// The innermost loop: register accumulators for reductions along `var`, and a
    /// vectorised body when every walked buffer has stride 1.
    fn inner_loop(&mut self, var: LoopVar, n: Value, body: &[Stmt]) {
        match strip_plan(body).filter(|_| self.vectorizable(body)) {
            Some(plan) => self.strip_or_scalar(var, n, body, plan),
            None => self.register_loop(var, n, body, true),
        }
    }

    /// Strips through scratch memory when every walked buffer has stride 1, the scalar
    /// loop otherwise.
    fn strip_or_scalar(&mut self, var: LoopVar, n: Value, body: &[Stmt], plan: StripPlan) {
        let cond = self.unit_strides(body, var);
        let (strips, scalar, join) = (
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
        );
        self.b.ins().brif(cond, strips, &[], scalar, &[]);
        self.b.switch_to_block(strips);
        self.b.seal_block(strips);
        self.strip_loop(var, n, body, plan);
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(scalar);
        self.b.seal_block(scalar);
        self.register_loop(var, n, body, false);
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(join);
        self.b.seal_block(join);
    }

    /// `for var in 0..n` by strips of `STRIP` elements: each segment of the body runs over
    /// the strip (two elements at a time, then one), and between segments an array math
    /// function (AVX2) transforms a scratch slot.
    fn strip_loop(&mut self, var: LoopVar, n: Value, body: &[Stmt], plan: StripPlan) {
        self.inner = Some(var);
        let reg = Self::register_accumulations(body, var);
        // Per reduction: a scalar running total, and per strip one vector accumulator per
        // unrolled step, folded into the total after the strip's segment (so nothing the
        // vector loop updates is live across the array calls, which would spill it).
        let totals: Vec<Variable> = reg
            .iter()
            .map(|(_, kind, _, _)| {
                let sc = self.b.declare_var(types::F64);
                let init = self.b.ins().f64const(identity(*kind));
                self.b.def_var(sc, init);
                sc
            })
            .collect();
        let start = self.counter();
        let strip = self.open_loop(start, n, STRIP as i64, false);
        let s0 = strip.at;
        let rest = self.b.ins().isub(n, s0);
        let full = self.b.ins().iconst(types::I64, STRIP as i64);
        let short = self.b.ins().icmp(IntCC::SignedLessThan, rest, full);
        let len = self.b.ins().select(short, rest, full);
        self.slots = plan.slots.clone();
        for (seg, stmts) in plan.segments.iter().enumerate() {
            // 2·UNROLL elements at a time, then two, then the odd one left; the passes
            // share the counter `j`.
            let j = self.counter();
            let accs: Vec<Vec<VectorAcc>> = reg
                .iter()
                .map(|(position, kind, _, _)| {
                    if stmts.contains(position) {
                        self.vector_accumulators(*kind)
                    } else {
                        Vec::new()
                    }
                })
                .collect();
            for (lanes, unroll) in [(Lanes::Two, UNROLL), (Lanes::Two, 1), (Lanes::One, 1)] {
                let width = if lanes == Lanes::Two { 2 } else { 1 };
                let l = self.open_loop(j, len, (width * unroll) as i64, true);
                for u in 0..unroll {
                    let ju = self.b.ins().iadd_imm_s(l.at, (u * width) as i64);
                    let at = self.b.ins().iadd(s0, ju);
                    self.vars.insert(var, at);
                    self.strip_index = Some(ju);
                    if lanes == Lanes::Two {
                        let mine: Vec<(usize, ReduceKind, usize, Vec<Index>)> = reg
                            .iter()
                            .zip(&accs)
                            .filter(|(_, a)| !a.is_empty())
                            .map(|(r, _)| r.clone())
                            .collect();
                        let all: Vec<&[VectorAcc]> = accs
                            .iter()
                            .filter(|a| !a.is_empty())
                            .map(|a| a.as_slice())
                            .collect();
                        self.use_vector_accs(&mine, &all, u);
                    } else {
                        self.reg_accs = reg
                            .iter()
                            .zip(&totals)
                            .map(|((k, ..), sc)| (*k, *sc))
                            .collect();
                        self.nan_accs.clear();
                    }
                    for t in &plan.reads[seg] {
                        let v = self.slot_load(plan.slots[t], lanes);
                        self.temps.insert(*t, v);
                    }
                    for k in stmts {
                        self.stmt(&body[*k], *k, lanes);
                        if let Stmt::Let { temp, .. } = &body[*k] {
                            if let Some(slot) = plan.slots.get(temp) {
                                let v = self.temps[temp];
                                self.slot_store(*slot, v);
                            }
                        }
                    }
                }
                self.close_loop(l);
            }
            for (((_, kind, _, _), vs), total) in reg.iter().zip(&accs).zip(&totals) {
                if !vs.is_empty() {
                    let lanes = self.fold_lanes(*kind, vs);
                    let before = self.b.use_var(*total);
                    let after = self.combine(*kind, before, lanes);
                    self.b.def_var(*total, after);
                }
            }
            if let Some((op, arg, out)) = plan.calls.get(seg) {
                let f = self.array_support[op];
                let src = self.slot_ptr(plan.slots[arg]);
                let dst = self.slot_ptr(plan.slots[out]);
                self.b.ins().call(f, &[src, dst, len]);
            }
        }
        self.strip_index = None;
        self.close_loop(strip);
        self.reg_accs.clear();
        self.nan_accs.clear();
        self.slots.clear();
        self.inner = None;
        let totals: Vec<Value> = totals.iter().map(|t| self.b.use_var(*t)).collect();
        self.flush_accumulations(&reg, &totals);
    }

    fn slot_ptr(&mut self, slot: usize) -> Value {
        self.b
            .ins()
            .iadd_imm_s(self.scratch, (slot * STRIP * 8) as i64)
    }

    fn slot_addr(&mut self, slot: usize) -> Value {
        let base = self.slot_ptr(slot);
        match self.strip_index {
            Some(j) => {
                let off = self.b.ins().imul_imm_s(j, 8);
                self.b.ins().iadd(base, off)
            }
            None => base,
        }
    }

    fn slot_load(&mut self, slot: usize, lanes: Lanes) -> Value {
        let addr = self.slot_addr(slot);
        let ty = if lanes == Lanes::One {
            types::F64
        } else {
            F64X2
        };
        self.b.ins().load(ty, flags(), addr, 0)
    }

    fn slot_store(&mut self, slot: usize, v: Value) {
        let addr = self.slot_addr(slot);
        self.b.ins().store(flags(), v, addr, 0);
    }

    /// The innermost loop with register accumulators for reductions along `var`, and a
    /// vectorised body (when `vector` and every walked buffer has stride 1).
    fn register_loop(&mut self, var: LoopVar, n: Value, body: &[Stmt], vector: bool) {
        let reg = Self::register_accumulations(body, var);
        self.inner = Some(var);
        let i = self.counter();
        let scalar_accs: Vec<Variable> = reg
            .iter()
            .map(|(_, kind, buf, _)| {
                let dtype = self.bufs[*buf].dtype;
                let v = self.b.declare_var(Self::acc_type(dtype));
                let init = self.identity_of(*kind, dtype);
                self.b.def_var(v, init);
                v
            })
            .collect();
        let scalar_entry = self.b.create_block();
        if vector && self.vectorizable(body) {
            let cond = self.unit_strides(body, var);
            // One vector accumulator per unrolled step: independent dependency chains.
            let vaccs: Vec<Vec<VectorAcc>> = reg
                .iter()
                .map(|(_, kind, _, _)| self.vector_accumulators(*kind))
                .collect();
            let vector_entry = self.b.create_block();
            self.b
                .ins()
                .brif(cond, vector_entry, &[], scalar_entry, &[]);
            self.b.switch_to_block(vector_entry);
            self.b.seal_block(vector_entry);
            let lanes = if reg.is_empty() && self.float32_lanes_ok(body, var) {
                Lanes::Four
            } else {
                Lanes::Two
            };
            let width = lanes.width() as i64;
            let l = self.open_loop(i, n, width * UNROLL as i64, true);
            for u in 0..UNROLL {
                let at = self.b.ins().iadd_imm_s(l.at, width * u as i64);
                self.vars.insert(var, at);
                let all: Vec<&[VectorAcc]> = vaccs.iter().map(|a| a.as_slice()).collect();
                self.use_vector_accs(&reg, &all, u);
                for (k, s) in body.iter().enumerate() {
                    self.stmt(s, k, lanes);
                }
            }
            self.close_loop(l);
            self.nan_accs.clear();
            for ((_, kind, _, _), (accs, acc)) in reg.iter().zip(vaccs.iter().zip(&scalar_accs)) {
                let v = self.fold_lanes(*kind, accs);
                self.b.def_var(*acc, v);
            }
        }
        self.b.ins().jump(scalar_entry, &[]);
        self.b.switch_to_block(scalar_entry);
        self.b.seal_block(scalar_entry);
        // Scalar loop (the whole loop, or the tail after the vector loop).
        let l = self.open_loop(i, n, 1, false);
        self.vars.insert(var, l.at);
        self.reg_accs = reg
            .iter()
            .zip(&scalar_accs)
            .map(|((k, ..), acc)| (*k, *acc))
            .collect();
        for (k, s) in body.iter().enumerate() {
            self.stmt(s, k, Lanes::One);
        }
        self.close_loop(l);
        self.reg_accs.clear();
        self.inner = None;
        let totals: Vec<Value> = scalar_accs.iter().map(|a| self.b.use_var(*a)).collect();
        self.flush_accumulations(&reg, &totals);
    }

    /// Sets every element of a buffer (any strides) to the identity of `kind`.
    fn fill(&mut self, buf: usize, kind: ReduceKind) {
        let base = self.buf_ptr(buf);
        self.fill_dims(buf, kind, 0, base);
    }

    fn fill_dims(&mut self, buf: usize, kind: ReduceKind, dim: usize, addr: Value) {
        if dim == self.bufs[buf].shape.len() {
            let v = self.identity_of(kind, self.bufs[buf].dtype);
            self.store_at(buf, addr, v, Lanes::One);
            return;
        }
        let n = self.buf_dim(buf, dim);
        let step = self.bufs[buf].stride[dim];
        let step = self
            .b
            .ins()
            .imul_imm_s(step, elem_size(self.bufs[buf].dtype));
        let i = self.counter();
        let l = self.open_loop(i, n, 1, false);
        let off = self.b.ins().imul(l.at, step);
        let inner = self.b.ins().iadd(addr, off);
        self.fill_dims(buf, kind, dim + 1, inner);
        self.close_loop(l);
    }

    /// The address of an element; in a vectorised body the walked dimension has stride 1
    /// (checked before entering it), so no multiplication is needed there.
    fn address(&mut self, buf: usize, index: &[Index], lanes: Lanes) -> Value {
        let mut offset = self.b.ins().iconst(types::I64, 0);
        for (d, i) in index.iter().enumerate() {
            let term = match i {
                Index::Var(v) if lanes != Lanes::One && self.is_inner(*v) => self.vars[v],
                Index::Var(v) => self.b.ins().imul(self.vars[v], self.bufs[buf].stride[d]),
                Index::Temp(t) => {
                    let value = self.temps[t];
                    let dtype = self.temp_dtypes[t];
                    let at = self.widen_to_int(value, dtype);
                    self.b.ins().imul(at, self.bufs[buf].stride[d])
                }
                Index::Zero => continue,
            };
            offset = self.b.ins().iadd(offset, term);
        }
        let bytes = self
            .b
            .ins()
            .imul_imm_s(offset, elem_size(self.bufs[buf].dtype));
        let base = self.buf_ptr(buf);
        self.b.ins().iadd(base, bytes)
    }

    /// Whether `index` walks along the innermost loop variable currently vectorised.
    fn walks(&self, index: &[Index], lanes: Lanes) -> bool {
        lanes != Lanes::One
            && index
                .iter()
                .any(|i| matches!(i, Index::Var(v) if self.is_inner(*v)))
    }

    fn is_inner(&self, v: LoopVar) -> bool {
        self.inner == Some(v)
    }

    fn load(&mut self, buf: usize, index: &[Index], lanes: Lanes) -> Value {
        let addr = self.address(buf, index, lanes);
        if lanes == Lanes::Four && self.walks(index, lanes) {
            return self.b.ins().load(types::F32X4, flags(), addr, 0);
        }
        if self.walks(index, lanes) {
            if self.bufs[buf].dtype == DType::Float32 {
                // Two float32s (8 bytes) widened to f64x2.
                let raw = self.b.ins().load(types::I64, flags(), addr, 0);
                let v = self.b.ins().scalar_to_vector(types::I64X2, raw);
                let little = MemFlagsData::new().with_endianness(Endianness::Little);
                let f4 = self.b.ins().bitcast(types::F32X4, little, v);
                return self.b.ins().fvpromote_low(f4);
            }
            return self.b.ins().load(F64X2, flags(), addr, 0);
        }
        let v = match self.bufs[buf].dtype {
            DType::Float64 => self.b.ins().load(types::F64, flags(), addr, 0),
            DType::Float32 => {
                let v = self.b.ins().load(types::F32, flags(), addr, 0);
                self.b.ins().fpromote(types::F64, v)
            }
            DType::Bool => self.b.ins().load(types::I8, flags(), addr, 0),
            DType::Int64 => self.b.ins().load(types::I64, flags(), addr, 0),
            DType::UInt8 => {
                let v = self.b.ins().load(types::I8, flags(), addr, 0);
                self.b.ins().uextend(types::I64, v)
            }
            d => {
                let v = self.b.ins().load(int_type(d), flags(), addr, 0);
                self.b.ins().sextend(types::I64, v)
            }
        };
        self.widen(v, lanes)
    }

    fn store(&mut self, buf: usize, index: &[Index], v: Value, lanes: Lanes) {
        let addr = self.address(buf, index, lanes);
        if lanes == Lanes::Four && self.walks(index, lanes) {
            self.b.ins().store(flags(), v, addr, 0);
            return;
        }
        if self.walks(index, lanes) {
            if self.bufs[buf].dtype == DType::Float32 {
                // f64x2 narrowed to two float32s (8 bytes).
                let f4 = self.b.ins().fvdemote(v);
                let little = MemFlagsData::new().with_endianness(Endianness::Little);
                let i2 = self.b.ins().bitcast(types::I64X2, little, f4);
                let raw = self.b.ins().extractlane(i2, 0);
                self.b.ins().store(flags(), raw, addr, 0);
            } else {
                self.b.ins().store(flags(), v, addr, 0);
            }
        } else {
            self.store_at(buf, addr, v, lanes);
        }
    }

    fn store_at(&mut self, buf: usize, addr: Value, v: Value, lanes: Lanes) {
        let v = match lanes {
            Lanes::One => v,
            Lanes::Two => self.b.ins().extractlane(v, 1),
            // Never reached: float32 lanes store only where they walk.
            Lanes::Four => self.b.ins().extractlane(v, 3),
        };
        match self.bufs[buf].dtype {
            DType::Float64 => {
                self.b.ins().store(flags(), v, addr, 0);
            }
            DType::Float32 => {
                let n = self.b.ins().fdemote(types::F32, v);
                self.b.ins().store(flags(), n, addr, 0);
            }
            DType::Bool | DType::Int64 => {
                self.b.ins().store(flags(), v, addr, 0);
            }
            d => {
                // Integers compute in i64 and wrap to their width, as in the reference.
                let n = self.b.ins().ireduce(int_type(d), v);
                self.b.ins().store(flags(), n, addr, 0);
            }
        }
    }

    /// A scalar value as the lanes of the current mode.
    fn widen(&mut self, v: Value, lanes: Lanes) -> Value {
        match lanes {
            Lanes::One => v,
            Lanes::Two => self.b.ins().splat(F64X2, v),
            Lanes::Four if self.b.func.dfg.value_type(v) == types::I8 => {
                // A bool byte as an all-ones / all-zeros lane mask.
                let wide = self.b.ins().sextend(types::I32, v);
                let neg = self.b.ins().ineg(wide);
                self.b.ins().splat(types::I32X4, neg)
            }
            Lanes::Four => {
                let narrow = self.b.ins().fdemote(types::F32, v);
                self.b.ins().splat(types::F32X4, narrow)
            }
        }
    }

    fn float_const(&mut self, x: f64, lanes: Lanes) -> Value {
        if lanes == Lanes::Four {
            let c = self.b.ins().f32const(x as f32);
            return self.b.ins().splat(types::F32X4, c);
        }
        let c = self.b.ins().f64const(x);
        self.widen(c, lanes)
    }

    /// Rounds float32-typed results as the reference does.
    fn round_to(&mut self, v: Value, dtype: DType, lanes: Lanes) -> Value {
        if dtype != DType::Float32 || lanes == Lanes::Four {
            return v;
        }
        if lanes == Lanes::Two {
            let n = self.b.ins().fvdemote(v);
            return self.b.ins().fvpromote_low(n);
        }
        let n = self.b.ins().fdemote(types::F32, v);
        self.b.ins().fpromote(types::F64, n)
    }

    /// The identity of `kind` as a value of `dtype`'s domain (f64, i64 or bool byte).
    fn identity_of(&mut self, kind: ReduceKind, dtype: DType) -> Value {
        if dtype.is_float() {
            return self.b.ins().f64const(identity(kind));
        }
        if dtype == DType::Bool {
            return self
                .b
                .ins()
                .iconst(types::I8, (kind == ReduceKind::All) as i64);
        }
        let (lo, hi) = int_range(dtype);
        let v = match kind {
            ReduceKind::Sum | ReduceKind::Any => 0,
            ReduceKind::Prod | ReduceKind::All => 1,
            ReduceKind::Max => lo,
            ReduceKind::Min => hi,
        };
        self.b.ins().iconst(types::I64, v)
    }

    /// The machine type of a scalar accumulator for `dtype`.
    fn acc_type(dtype: DType) -> Type {
        if dtype.is_float() {
            types::F64
        } else if dtype == DType::Bool {
            types::I8
        } else {
            types::I64
        }
    }

    fn combine(&mut self, kind: ReduceKind, a: Value, b: Value) -> Value {
        let ty = self.b.func.dfg.value_type(a);
        if ty == types::I64 {
            // Integers: wrapping sums and products, as the reference.
            return match kind {
                ReduceKind::Sum | ReduceKind::Any => self.b.ins().iadd(a, b),
                ReduceKind::Prod | ReduceKind::All => self.b.ins().imul(a, b),
                ReduceKind::Max => self.b.ins().smax(a, b),
                ReduceKind::Min => self.b.ins().smin(a, b),
            };
        }
        if ty == types::I8 {
            return match kind {
                ReduceKind::All | ReduceKind::Prod | ReduceKind::Min => self.b.ins().band(a, b),
                _ => self.b.ins().bor(a, b),
            };
        }
        match kind {
            ReduceKind::Sum => self.b.ins().fadd(a, b),
            ReduceKind::Prod => self.b.ins().fmul(a, b),
            ReduceKind::Max | ReduceKind::Min => {
                // Take b when it is NaN or beyond a (a NaN accumulator stays NaN): NaN
                // propagates as in the reference, with a short dependency chain on a.
                let cc = if kind == ReduceKind::Max {
                    FloatCC::LessThan
                } else {
                    FloatCC::GreaterThan
                };
                let beyond = self.b.ins().fcmp(cc, a, b);
                let nan = self.b.ins().fcmp(FloatCC::Unordered, b, b);
                let take = self.b.ins().bor(beyond, nan);
                if self.b.func.dfg.value_type(a).is_vector() {
                    let mask = self.b.ins().bitcast(F64X2, MemFlagsData::new(), take);
                    self.b.ins().bitselect(mask, b, a)
                } else {
                    self.b.ins().select(take, b, a)
                }
            }
            ReduceKind::All => self.b.ins().band(a, b),
            ReduceKind::Any => self.b.ins().bor(a, b),
        }
    }

    fn dtype_of(&self, e: &Expr) -> DType {
        match e {
            Expr::Load { buf, .. } => self.bufs[*buf].dtype,
            Expr::Const(_, d) => *d,
            Expr::Temp(t) => self.temp_dtypes.get(t).copied().unwrap_or(DType::Float64),
            Expr::Apply { dtype, .. } => *dtype,
            Expr::Dim { .. } => DType::Int64,
        }
    }

    fn expr(&mut self, e: &Expr, lanes: Lanes) -> Value {
        match e {
            Expr::Load { buf, index } => self.load(*buf, index, lanes),
            Expr::Temp(t) => self.temps[t],
            Expr::Const(l, d) => self.constant(*l, *d, lanes),
            Expr::Dim { buf, dim } => self.buf_dim(*buf, *dim),
            Expr::Apply { op, args, dtype } => {
                let vals: Vec<Value> = args.iter().map(|a| self.expr(a, lanes)).collect();
                let from: Vec<DType> = args.iter().map(|a| self.dtype_of(a)).collect();
                self.apply(*op, &vals, &from, *dtype, lanes)
            }
        }
    }

    fn constant(&mut self, l: Literal, d: DType, lanes: Lanes) -> Value {
        if d == DType::Bool {
            let b = matches!(l, Literal::Bool(true)) || matches!(l, Literal::Int(i) if i != 0);
            return self.bool_const(b, lanes);
        }
        if !d.is_float() {
            // Integer literals, wrapped to their dtype like a value of it.
            let data = tensorlift_ir::TensorData::from_literal(l, d);
            let v = data
                .to_i64_vec()
                .and_then(|v| v.first().copied())
                .unwrap_or(0);
            return self.b.ins().iconst(types::I64, v);
        }
        let x = match l {
            Literal::Bool(b) => b as u8 as f64,
            Literal::Int(i) => i as f64,
            Literal::Float(f) => f,
        };
        let x = if d == DType::Float32 {
            x as f32 as f64
        } else {
            x
        };
        self.float_const(x, lanes)
    }

    fn bool_const(&mut self, b: bool, lanes: Lanes) -> Value {
        match lanes {
            Lanes::One => self.b.ins().iconst(types::I8, b as i64),
            Lanes::Two => {
                let m = self.b.ins().iconst(types::I64, if b { -1 } else { 0 });
                self.b.ins().splat(types::I64X2, m)
            }
            Lanes::Four => {
                let m = self.b.ins().iconst(types::I32, if b { -1 } else { 0 });
                self.b.ins().splat(types::I32X4, m)
            }
        }
    }

    /// A bool value (0/1 byte, or an all-ones lane mask) → 0.0/1.0.
    fn bool_to_float(&mut self, v: Value, lanes: Lanes) -> Value {
        match lanes {
            Lanes::One => {
                let x = self.b.ins().uextend(types::I32, v);
                self.b.ins().fcvt_from_uint(types::F64, x)
            }
            Lanes::Two | Lanes::Four => {
                let one = self.float_const(1.0, lanes);
                let zero = self.float_const(0.0, lanes);
                self.select(v, one, zero, lanes)
            }
        }
    }

    /// A float comparison result as a bool value of the current mode.
    /// (A vector fcmp gives all-ones / all-zeros lanes, a scalar one a 0/1 byte.)
    fn compare(&mut self, cc: FloatCC, a: Value, b: Value) -> Value {
        self.b.ins().fcmp(cc, a, b)
    }

    /// A value of dtype `from` as an f64 (lanes) value.
    fn widen_to_float(&mut self, v: Value, from: DType, lanes: Lanes) -> Value {
        match from {
            DType::Bool => self.bool_to_float(v, lanes),
            d if d.is_float() => v,
            _ => self.b.ins().fcvt_from_sint(types::F64, v),
        }
    }

    /// A value of dtype `from` (bool or integer) as an i64.
    fn widen_to_int(&mut self, v: Value, from: DType) -> Value {
        match from {
            DType::Bool => self.b.ins().uextend(types::I64, v),
            _ => v,
        }
    }

    /// A cast with the reference's rules: float → integer truncates and saturates to the
    /// target's range (NaN gives 0), integer → integer wraps, anything → bool is `!= 0`.
    fn cast(&mut self, v: Value, from: DType, to: DType, lanes: Lanes) -> Value {
        if from == to {
            return v;
        }
        if to == DType::Bool {
            return if from.is_float() {
                let zero = self.float_const(0.0, lanes);
                self.compare(FloatCC::NotEqual, v, zero)
            } else {
                self.b.ins().icmp_imm_s(IntCC::NotEqual, v, 0)
            };
        }
        if to.is_float() {
            let f = self.widen_to_float(v, from, lanes);
            return self.round_to(f, to, lanes);
        }
        if from == DType::Bool {
            return self.widen_to_int(v, from);
        }
        if from.is_float() {
            let wide = self.b.ins().fcvt_to_sint_sat(types::I64, v);
            let (lo, hi) = int_range(to);
            let lo = self.b.ins().iconst(types::I64, lo);
            let hi = self.b.ins().iconst(types::I64, hi);
            let v = self.b.ins().smax(wide, lo);
            return self.b.ins().smin(v, hi);
        }
        self.wrap_int(v, to)
    }

    /// An i64 wrapped to the range of integer dtype `t` (and widened back).
    fn wrap_int(&mut self, v: Value, t: DType) -> Value {
        match t {
            DType::Int64 | DType::Bool => v,
            DType::UInt8 => {
                let n = self.b.ins().ireduce(types::I8, v);
                self.b.ins().uextend(types::I64, n)
            }
            d if d.is_float() => v,
            d => {
                let n = self.b.ins().ireduce(int_type(d), v);
                self.b.ins().sextend(types::I64, n)
            }
        }
    }

    fn apply(
        &mut self,
        op: ScalarOp,
        vals: &[Value],
        from: &[DType],
        out: DType,
        lanes: Lanes,
    ) -> Value {
        use ScalarOp::*;
        match op {
            Identity => return vals[0],
            Cast(to) => return self.cast(vals[0], from[0], to, lanes),
            _ => {}
        }
        let comparison = matches!(op, Eq | Neq | Lt | Le | Gt | Ge);
        let float_domain = if comparison {
            from.iter().any(|d| d.is_float())
        } else {
            out.is_float() || matches!(op, IsNan | IsInf)
        };
        if !float_domain {
            return self.apply_int(op, vals, from, out);
        }
        let f: Vec<Value> = match op {
            Switch => vals.to_vec(),
            _ => vals
                .iter()
                .zip(from)
                .map(|(v, d)| self.widen_to_float(*v, *d, lanes))
                .collect(),
        };
        match op {
            Neg => self.b.ins().fneg(f[0]),
            Abs => self.b.ins().fabs(f[0]),
            Sqr => self.b.ins().fmul(f[0], f[0]),
            Floor => self.b.ins().floor(f[0]),
            Ceil => self.b.ins().ceil(f[0]),
            Round => self.b.ins().nearest(f[0]),
            Sqrt => self.b.ins().sqrt(f[0]),
            Reciprocal => {
                let one = self.float_const(1.0, lanes);
                self.b.ins().fdiv(one, f[0])
            }
            Sign => {
                let zero = self.float_const(0.0, lanes);
                let one = self.float_const(1.0, lanes);
                let m1 = self.float_const(-1.0, lanes);
                let gt = self.compare(FloatCC::GreaterThan, f[0], zero);
                let lt = self.compare(FloatCC::LessThan, f[0], zero);
                let pos = self.select(gt, one, zero, lanes);
                let signed = self.select(lt, m1, pos, lanes);
                // NaN stays NaN.
                let nan = self.compare(FloatCC::Unordered, f[0], f[0]);
                self.select(nan, f[0], signed, lanes)
            }
            Add => f[1..]
                .iter()
                .fold(f[0], |acc, v| self.b.ins().fadd(acc, *v)),
            Sub => self.b.ins().fsub(f[0], f[1]),
            Mul => f[1..]
                .iter()
                .fold(f[0], |acc, v| self.b.ins().fmul(acc, *v)),
            TrueDiv => self.b.ins().fdiv(f[0], f[1]),
            Maximum => self.b.ins().fmax(f[0], f[1]),
            Minimum => self.b.ins().fmin(f[0], f[1]),
            Clip => {
                let m = self.b.ins().fmax(f[0], f[1]);
                self.b.ins().fmin(m, f[2])
            }
            Eq => self.compare(FloatCC::Equal, f[0], f[1]),
            Neq => self.compare(FloatCC::NotEqual, f[0], f[1]),
            Lt => self.compare(FloatCC::LessThan, f[0], f[1]),
            Le => self.compare(FloatCC::LessThanOrEqual, f[0], f[1]),
            Gt => self.compare(FloatCC::GreaterThan, f[0], f[1]),
            Ge => self.compare(FloatCC::GreaterThanOrEqual, f[0], f[1]),
            IsNan => self.compare(FloatCC::Unordered, f[0], f[0]),
            IsInf => {
                let a = self.b.ins().fabs(f[0]);
                let inf = self.float_const(f64::INFINITY, lanes);
                self.compare(FloatCC::Equal, a, inf)
            }
            Switch => {
                let a = self.widen_to_float(vals[1], from[1], lanes);
                let b = self.widen_to_float(vals[2], from[2], lanes);
                self.select(vals[0], a, b, lanes)
            }
            Exp => self.vmath(lanes).exp(f[0]),
            Sigmoid => self.vmath(lanes).sigmoid(f[0]),
            Log => {
                let libm = self.support[&op];
                self.vmath(lanes).log(f[0], libm)
            }
            Sin | Cos => {
                let libm = self.support[&op];
                self.vmath(lanes).sin_cos(f[0], op == Cos, libm)
            }
            _ => self.call_support(op, &f, lanes),
        }
    }

    /// Integer ops on i64 values (scalar only), wrapping, with the results wrapped to the
    /// output dtype; comparisons of integers give bools.
    fn apply_int(&mut self, op: ScalarOp, vals: &[Value], from: &[DType], out: DType) -> Value {
        use ScalarOp::*;
        let i: Vec<Value> = vals
            .iter()
            .zip(from)
            .map(|(v, d)| self.widen_to_int(*v, *d))
            .collect();
        let r = match op {
            Eq => return self.b.ins().icmp(IntCC::Equal, i[0], i[1]),
            Neq => return self.b.ins().icmp(IntCC::NotEqual, i[0], i[1]),
            Lt => return self.b.ins().icmp(IntCC::SignedLessThan, i[0], i[1]),
            Le => return self.b.ins().icmp(IntCC::SignedLessThanOrEqual, i[0], i[1]),
            Gt => return self.b.ins().icmp(IntCC::SignedGreaterThan, i[0], i[1]),
            Ge => {
                return self
                    .b
                    .ins()
                    .icmp(IntCC::SignedGreaterThanOrEqual, i[0], i[1])
            }
            Neg => self.b.ins().ineg(i[0]),
            Abs => {
                let neg = self.b.ins().ineg(i[0]);
                let below = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, i[0], 0);
                self.b.ins().select(below, neg, i[0])
            }
            Sign => {
                let pos = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, i[0], 0);
                let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, i[0], 0);
                let pos = self.b.ins().uextend(types::I64, pos);
                let neg = self.b.ins().uextend(types::I64, neg);
                self.b.ins().isub(pos, neg)
            }
            Sqr => self.b.ins().imul(i[0], i[0]),
            Not => self.b.ins().bnot(i[0]),
            Add => i[1..]
                .iter()
                .fold(i[0], |acc, v| self.b.ins().iadd(acc, *v)),
            Sub => self.b.ins().isub(i[0], i[1]),
            Mul => i[1..]
                .iter()
                .fold(i[0], |acc, v| self.b.ins().imul(acc, *v)),
            Maximum => self.b.ins().smax(i[0], i[1]),
            Minimum => self.b.ins().smin(i[0], i[1]),
            And => self.b.ins().band(i[0], i[1]),
            Or => self.b.ins().bor(i[0], i[1]),
            Xor => self.b.ins().bxor(i[0], i[1]),
            Clip => {
                let m = self.b.ins().smax(i[0], i[1]);
                self.b.ins().smin(m, i[2])
            }
            // The condition stays a bool; the branches are integers.
            Switch => self.b.ins().select(vals[0], i[1], i[2]),
            IntDiv | Mod => {
                let f = self.int_support[&op];
                let call = self.b.ins().call(f, &[i[0], i[1]]);
                self.b.inst_results(call)[0]
            }
            // Floor, Ceil, Round of integers, and any op lowering never selects here.
            _ => i[0],
        };
        self.wrap_int(r, out)
    }

    fn vmath(&mut self, lanes: Lanes) -> VMath<'_, 'a> {
        // Bodies with math functions never run as float32 lanes (`float32_lanes_ok`).
        let ty = match lanes {
            Lanes::One => types::F64,
            Lanes::Two | Lanes::Four => F64X2,
        };
        VMath { b: &mut self.b, ty }
    }

    fn select(&mut self, cond: Value, a: Value, b: Value, lanes: Lanes) -> Value {
        match lanes {
            Lanes::One => self.b.ins().select(cond, a, b),
            Lanes::Two => {
                let mask = self.b.ins().bitcast(F64X2, MemFlagsData::new(), cond);
                self.b.ins().bitselect(mask, a, b)
            }
            Lanes::Four => {
                let mask = self
                    .b
                    .ins()
                    .bitcast(types::F32X4, MemFlagsData::new(), cond);
                self.b.ins().bitselect(mask, a, b)
            }
        }
    }

    fn call_support(&mut self, op: ScalarOp, args: &[Value], lanes: Lanes) -> Value {
        let f = self.support[&op];
        match lanes {
            Lanes::One => {
                let call = self.b.ins().call(f, args);
                self.b.inst_results(call)[0]
            }
            Lanes::Two | Lanes::Four => {
                // Never reached with float32 lanes (`float32_lanes_ok` excludes calls).
                let mut out = self.float_const(0.0, Lanes::Two);
                for lane in 0..2u8 {
                    let lane_args: Vec<Value> = args
                        .iter()
                        .map(|a| self.b.ins().extractlane(*a, lane))
                        .collect();
                    let call = self.b.ins().call(f, &lane_args);
                    let r = self.b.inst_results(call)[0];
                    out = self.b.ins().insertlane(out, r, lane);
                }
                out
            }
        }
    }
}

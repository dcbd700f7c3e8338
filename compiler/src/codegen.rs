//! Cranelift code generation for loop-nest kernels (DESIGN §11).
//!
//! Cranelift facts this module relies on (0.135): x86-64 has no 256-bit vector types
//! (an f64x4 value is refused), so bodies use f64x2/f32x4 with several accumulators and
//! 256-bit work lives in runtime functions compiled with target features; there are no
//! math instructions, so every support function is imported and registered by address
//! (`JITBuilder::symbol`: a symbol left unregistered makes finalization panic, so all
//! are registered first); a dropped `JITModule` leaks its code pages and is not `Sync`
//! (hence `CodeModule`); nothing may unwind through jitted frames (support functions
//! catch panics and return a status); `is_pic` must be off; the IR verifier roughly
//! doubles compile time, so only debug builds run it; vector loads are never marked
//! aligned (array data is only 8-byte aligned).
//!
//! Owns: translating a `loopir::Kernel` into a Cranelift function and native code, the
//! kernel ABI, error tables, and the lifetime of the code (`CodeModule` frees its pages
//! when the last compiled function using it is dropped). Statements are dispatched here;
//! the emitters live in `loops` (loops, vector bodies, strips), `values` (loads, stores,
//! constants, casts, scalar ops) and `control` (fail, invoke, grow).
//!
//! ABI (`crate::calling`, which callers use to pack the words): `extern "C" fn(args:
//! *const i64) -> i32`, `args` holding for each buffer in order its data pointer, its
//! `rank` sizes and its `rank` strides (in elements), then a pointer to `scratch_words`
//! f64s of scratch memory (unused, may be null, when 0), then a pointer to an `ErrorSlot`. A kernel first checks the shapes it is given (the checks are loop-IR
//! statements, `Kernel::with_shape_checks`, plus those lowering adds for gathered indices
//! and support calls) and returns 0, or `e + 1` for error `e` of `Kernel::errors` after
//! writing the values its message refers to into the slot, before touching memory it
//! should not. Control flow (`if`, `while`, `fail`) and support calls on whole buffers
//! (`call dot`, `call softmax`: the buffers' argument words are passed to the runtime's
//! gemm or row softmax) are emitted as plain scalar code.
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
//! slots through the runtime's array functions (AVX-512 or AVX2 polynomials from
//! `tensorlift_runtime::vector_math` for exp/exp2/expm1/log/log2/log1p/sigmoid/softplus/
//! sin/cos/tanh). Strided loops use the same polynomials emitted inline (`vmath`), bit-identical;
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
use tensorlift_runtime::softmax::{tl_softmax_f32, tl_softmax_f64};
use tensorlift_runtime::support::{
    float_array_support, float_support, int_support, tl_add_into, tl_log_add_exp, tl_lse_add,
    tl_lse_add_f32, tl_lse_begin, tl_lse_value, tl_max_into, tl_min_into, tl_mul_into,
    tl_round_f32_array, tl_row_dot, tl_row_dot_f32, tl_row_max, tl_row_max_f32, tl_row_min,
    tl_row_min_f32, tl_row_prod, tl_row_prod_f32, tl_row_sum, tl_row_sum_f32,
};

use crate::error::CompileError;
use crate::loopir::{
    fill_message, identity, visit_stmts, Expr, Index, Kernel, LoopVar, Role, Stmt, SupportCall,
    Temp, View, MAX_ERROR_VALUES,
};
use crate::vmath::VMath;

mod control;
mod logsumexp;
mod loops;
mod rows;
mod values;

use loops::scratch_slots;

/// Each whole-buffer support call with its float64 and float32 entry points (symbol,
/// address); every operand is passed as (argument words, rank), the result is a status.
fn whole_buffer_calls() -> [(SupportCall, [(&'static str, *const u8); 2]); 2] {
    [
        (
            SupportCall::Dot,
            [
                ("tl_dot_f64", tl_dot_f64 as *const u8),
                ("tl_dot_f32", tl_dot_f32 as *const u8),
            ],
        ),
        (
            SupportCall::Softmax,
            [
                ("tl_softmax_f64", tl_softmax_f64 as *const u8),
                ("tl_softmax_f32", tl_softmax_f32 as *const u8),
            ],
        ),
    ]
}

/// The runtime function the float code of `op` calls, if any: its own (the reference's)
/// function, or the one its polynomial falls back to lane by lane (softplus: log1p's).
/// Exp and sigmoid are IR only. Exhaustive, so a new op decides here.
fn float_support_need(op: ScalarOp) -> Option<ScalarOp> {
    use ScalarOp::*;
    match op {
        Log | Log2 | Log1p | Expm1 | Exp2 | Tanh | Sin | Cos | Log1mexp | Tan | Erf | Erfc
        | Gammaln | Digamma | IntDiv | Mod | Pow => Some(op),
        Softplus => Some(Log1p),
        Exp | Sigmoid | Identity | Cast(_) | Neg | Abs | Sign | Sqr | Floor | Ceil | Round
        | Reciprocal | Sqrt | Not | IsNan | IsInf | Add | Sub | Mul | TrueDiv | Maximum
        | Minimum | Eq | Neq | Lt | Le | Gt | Ge | And | Or | Xor | Clip | Switch => None,
    }
}

/// The runtime's scalar function a kernel imports under `op`, if its float code calls it.
fn scalar_support(op: ScalarOp) -> Option<tensorlift_runtime::support::SupportFn> {
    float_support_need(op)
        .filter(|need| *need == op)
        .and_then(float_support)
}

/// Declares the runtime function `symbol` taking `params` and returning `returns` as an
/// import of the function being built.
fn declare_import(
    module: &mut JITModule,
    func: &mut cranelift_codegen::ir::Function,
    symbol: &str,
    params: &[Type],
    returns: &[Type],
) -> Result<FuncRef, CompileError> {
    let mut sig = module.make_signature();
    sig.params.extend(params.iter().map(|t| AbiParam::new(*t)));
    sig.returns
        .extend(returns.iter().map(|t| AbiParam::new(*t)));
    let id = module
        .declare_function(symbol, Linkage::Import, &sig)
        .map_err(jit_error)?;
    Ok(module.declare_func_in_func(id, func))
}

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
        .collect();
    // Every runtime function float code calls exists (else the kernel cannot be made).
    for op in needed.clone() {
        if let Some(need) = float_support_need(op) {
            if float_support(need).is_none() {
                return Err(CompileError::Internal(format!(
                    "the runtime has no support function for {need}, which {op} calls"
                )));
            }
            needed.push(need);
        }
    }
    needed.sort_by_key(|op| op.to_string());
    needed.dedup();
    for op in &needed {
        if let Some(s) = scalar_support(*op) {
            builder.symbol(s.symbol, s.address);
        }
        if let Some((symbol, address)) = float_array_support(*op) {
            builder.symbol(symbol, address);
        }
        if let Some((symbol, address)) = int_support(*op) {
            builder.symbol(symbol, address);
        }
    }
    for (func, [(f64_symbol, f64_fn), (f32_symbol, f32_fn)]) in whole_buffer_calls() {
        if kernels.iter().any(|k| k.calls(func)) {
            builder.symbol(f64_symbol, f64_fn);
            builder.symbol(f32_symbol, f32_fn);
        }
    }
    if kernels.iter().any(Kernel::has_log_sum_exp) {
        for (symbol, address) in logsumexp::lse_symbols() {
            builder.symbol(symbol, address);
        }
    }
    if kernels.iter().any(rows::has_row_reductions) {
        for (symbol, address) in rows::row_symbols() {
            builder.symbol(symbol, address);
        }
    }
    let has_float32 = |k: &Kernel| k.buffers.iter().any(|b| b.dtype == DType::Float32);
    if kernels.iter().any(has_float32) {
        builder.symbol("tl_round_f32_array", tl_round_f32_array as *const u8);
    }
    let grows = |k: &Kernel| k.buffers.iter().any(|b| b.role == Role::Growing);
    if kernels.iter().any(grows) {
        builder.symbol("tl_grow", tl_grow as *const u8);
    }
    for kernel in kernels {
        kernel
            .validate()
            .map_err(|message| CompileError::InvalidKernel {
                kernel: kernel.name.clone(),
                message,
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
                    let f = declare_import(&mut module, b.func, symbol, &params(arity), returns)?;
                    refs.insert(*op, f);
                }
                Ok(refs)
            };
            let support = imports(
                &|op| scalar_support(op).map(|s| (s.symbol, s.arity)),
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
            let mut buffer_calls = HashMap::new();
            for (func, symbols) in whole_buffer_calls() {
                if !kernel.calls(func) {
                    continue;
                }
                let operands = match func {
                    SupportCall::Dot => 3,
                    SupportCall::Softmax => 2,
                };
                for (dtype, (symbol, _)) in
                    [DType::Float64, DType::Float32].into_iter().zip(symbols)
                {
                    let params: Vec<Type> = (0..operands).flat_map(|_| [ptr, types::I64]).collect();
                    let f = declare_import(&mut module, b.func, symbol, &params, &[types::I32])?;
                    buffer_calls.insert((func, dtype), f);
                }
            }
            let grow_fn = if grows(kernel) {
                let params = [ptr, types::I64];
                Some(declare_import(
                    &mut module,
                    b.func,
                    "tl_grow",
                    &params,
                    &[ptr],
                )?)
            } else {
                None
            };
            let lse = if kernel.has_log_sum_exp() {
                Some(logsumexp::declare_lse_fns(&mut module, b.func)?)
            } else {
                None
            };
            let round_fn = if has_float32(kernel) {
                let params = [ptr, ptr, types::I64];
                let symbol = "tl_round_f32_array";
                Some(declare_import(&mut module, b.func, symbol, &params, &[])?)
            } else {
                None
            };
            let row_fns = if rows::has_row_reductions(kernel) {
                Some(rows::declare_row_fns(&mut module, b.func)?)
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
            g.buffer_calls = buffer_calls;
            g.callees = callees;
            g.grow_fn = grow_fn;
            g.lse = lse;
            g.rows = row_fns;
            g.round_fn = round_fn;
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

/// Per kernel: its error table — its own messages, then each callee's table (its messages
/// prefixed by its name) in the order of first call — and where each callee's starts. A kernel's status `e + 1` names entry
/// `e` of its table, whichever kernel of the call tree failed.
fn error_tables(kernels: &[Kernel]) -> Vec<(Vec<String>, HashMap<usize, usize>)> {
    let mut tables: Vec<(Vec<String>, HashMap<usize, usize>)> = Vec::with_capacity(kernels.len());
    for kernel in kernels {
        let mut errors = kernel.errors.clone();
        let mut offsets = HashMap::new();
        for c in kernel.callees() {
            offsets.insert(c, errors.len());
            let callee = &kernels[c].name;
            errors.extend(tables[c].0.iter().map(|m| format!("{callee}: {m}")));
        }
        tables.push((errors, offsets));
    }
    tables
}

/// Checks every `invoke`: the callee comes earlier in the module and takes buffers of
/// the dtypes and ranks it is given.
fn check_invokes(kernels: &[Kernel]) -> Result<(), CompileError> {
    for (k, caller) in kernels.iter().enumerate() {
        let mut invokes = Vec::new();
        visit_stmts(&caller.body, &mut |s| {
            if let Stmt::Invoke {
                callee,
                args,
                error,
                ..
            } = s
            {
                invokes.push((*callee, args, error));
            }
        });
        for (callee, args, error) in invokes {
            let invalid = |message: String| CompileError::InvalidKernel {
                kernel: caller.name.clone(),
                message,
            };
            let Some(target) = kernels.get(callee).filter(|_| callee < k) else {
                return Err(invalid(format!(
                    "invokes kernel {callee}, which does not come before it"
                )));
            };
            if error.is_none() && args.iter().any(|v| !v.at.is_empty()) {
                return Err(invalid(format!(
                    "invokes {} on views without an error for indices out of range",
                    target.name
                )));
            }
            // A callee writes only what the caller may write; a growing buffer grows only
            // in the kernel that holds it (its row count lives in that kernel's variables).
            let fits = args.len() == target.buffers.len()
                && args.iter().zip(&target.buffers).all(|(v, t)| {
                    caller.buffers.get(v.buf).is_some_and(|c| {
                        let role_fits = match (&t.role, &c.role) {
                            (Role::Growing, _) => false,
                            (Role::Input, _) => true,
                            (Role::Output | Role::Local(_), Role::Input) => false,
                            (
                                Role::Output | Role::Local(_),
                                Role::Output | Role::Growing | Role::Local(_),
                            ) => true,
                        };
                        c.dtype == t.dtype && c.rank == t.rank + v.at.len() && role_fits
                    })
                });
            if !fits {
                return Err(invalid(format!(
                    "invokes {} with buffers that do not match its parameters",
                    target.name
                )));
            }
        }
    }
    Ok(())
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
    /// The whole-buffer support functions (gemm, softmax) by function and dtype.
    buffer_calls: HashMap<(SupportCall, DType), FuncRef>,
    /// The runtime's `tl_grow` (imported when the kernel has growing buffers).
    grow_fn: Option<FuncRef>,
    /// The runtime's `tl_round_f32_array` (imported when the kernel has float32 buffers):
    /// strips of float32 results rounded after their array function.
    round_fn: Option<FuncRef>,
    /// The one-pass logsumexp functions (imported when the kernel accumulates one).
    lse: Option<logsumexp::LseFns>,
    /// The whole-row reductions (imported when the kernel has sums, products, maxima or
    /// minima).
    rows: Option<rows::RowFns>,
    /// Where each callee's errors start in this kernel's error table.
    error_offsets: HashMap<usize, usize>,
    /// The kernels this one invokes, by module index.
    callees: HashMap<usize, FuncRef>,
    bufs: Vec<BufVals>,
    vars: HashMap<LoopVar, Value>,
    temps: HashMap<usize, Value>,
    /// Registers (`Stmt::Reg`): their variables and dtypes.
    regs: HashMap<usize, Variable>,
    reg_dtypes: HashMap<usize, DType>,
    support: HashMap<ScalarOp, FuncRef>,
    temp_dtypes: HashMap<usize, DType>,
    /// For values rounded to float32 (`round_to`): their float32 form, which a store to a
    /// float32 buffer writes as it is instead of narrowing again.
    narrowed: HashMap<Value, Value>,
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
        debug_assert_eq!(slot.get() as usize, crate::calling::call_words(kernel));
        Gen {
            b,
            error_slot,
            buffer_calls: HashMap::new(),
            grow_fn: None,
            round_fn: None,
            lse: None,
            rows: None,
            error_offsets: HashMap::new(),
            callees: HashMap::new(),
            bufs,
            vars: HashMap::new(),
            temps: HashMap::new(),
            regs: HashMap::new(),
            reg_dtypes: HashMap::new(),
            support,
            temp_dtypes: HashMap::new(),
            narrowed: HashMap::new(),
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

    /// A `for` statement as loops (no collapsing of element-wise nests at this level).
    fn nested_loops(&mut self, s: &Stmt) {
        let Stmt::For {
            var,
            buf,
            dim,
            body,
            ..
        } = s
        else {
            return;
        };
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

    fn stmt(&mut self, s: &Stmt, position: usize, lanes: Lanes) {
        match s {
            Stmt::For { .. } => match loops::elementwise_nest(s) {
                Some((loops, body)) => self.collapsible_nest(s, &loops, body),
                None => self.nested_loops(s),
            },
            Stmt::Let { temp, value, dtype } => {
                let v = self.expr(value, lanes);
                // A float32 value read from a float32 buffer or temp is exact already.
                let v = if self.exact_float32(value) {
                    v
                } else {
                    self.round_to(v, *dtype, lanes)
                };
                self.temps.insert(*temp, v);
                self.temp_dtypes.insert(*temp, *dtype);
            }
            Stmt::Store { buf, index, value } => {
                let v = self.expr(value, lanes);
                self.store(*buf, index, v, lanes);
            }
            Stmt::Reg { reg, dtype, init } => {
                let v = self.expr(init, Lanes::One);
                let v = self.round_to(v, *dtype, Lanes::One);
                let ty = self.b.func.dfg.value_type(v);
                let var = self.b.declare_var(ty);
                self.b.def_var(var, v);
                self.regs.insert(*reg, var);
                self.reg_dtypes.insert(*reg, *dtype);
            }
            Stmt::Set { reg, value } => {
                let v = self.expr(value, Lanes::One);
                let dtype = self.reg_dtypes[reg];
                let v = self.round_to(v, dtype, Lanes::One);
                self.b.def_var(self.regs[reg], v);
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
                self.if_else(c, |g| g.stmts(then), |g| g.stmts(otherwise));
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
                let vals: Vec<Value> = values.iter().map(|v| self.int_value(v)).collect();
                self.store_error_values(&vals);
                self.fail(*error);
            }
            Stmt::Invoke {
                callee,
                args,
                error,
                ..
            } => {
                let offset = self.error_offsets[callee];
                self.invoke(*callee, args, *error, offset)
            }
            Stmt::Grow { buf, rows, error } => self.grow(*buf, rows, *error),
            Stmt::Call { func, bufs, error } => {
                // (Validated: the buffers share a float dtype.)
                let dtype = self.bufs[bufs[0]].dtype;
                let f = self.buffer_calls[&(*func, dtype)];
                let whole: Vec<View> = bufs.iter().map(|b| View::whole(*b)).collect();
                let (slot, offsets) = self.words_on_stack(&whole, None, false);
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
                let status = self.b.inst_results(call)[0];
                self.fail_if(status, *error);
            }
        }
    }
}

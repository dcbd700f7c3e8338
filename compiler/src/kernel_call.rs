//! Calling one compiled kernel on values, safely: the boundary tests (and tools) use to
//! run jitted code directly, without the graph executor in front of it.
//!
//! Owns: `KernelCall` (a loop-IR kernel with its machine code: validated, given its shape
//! checks, and refused if it addresses memory by unchecked temporaries unless the caller
//! vouches for them) and `KernelCall::run`, which checks in Rust what the kernel cannot
//! see (buffer count, dtypes, ranks, outputs uniquely owned so nothing else observes
//! their memory) and leaves every shape check to the jitted code itself: a kernel given inconsistent shapes returns its error status,
//! turned here into a `RuntimeError` naming the kernel, the buffer and what was expected.
//! Also owns reading a value's data pointer, shape and strides for the JIT (`data_ptr`,
//! `unique_mut_ptr`).

use tensorlift_ir::TensorData;
use tensorlift_runtime::buffer_support::{ErrorSlot, GrowBuffer};
use tensorlift_runtime::RuntimeError;

use crate::calling::{call_words, push_trailer, push_view, LocalBuffers};
use crate::codegen::{compile_kernels, CompiledKernel};
use crate::error::CompileError;
use crate::loopir::{Kernel, Role};

/// The data pointer, shape and strides (elements) of a dense value. A sparse matrix has no
/// dense buffer: it gives a null pointer with its shape and no strides, which every caller
/// refuses (type checking keeps sparse values away from kernels).
pub(crate) fn data_ptr(d: &TensorData) -> (*const u8, &[usize], &[isize]) {
    tensorlift_ir::with_dense_data!(d, a => (a.as_ptr().cast::<u8>(), a.shape(), a.strides()),
        m => (std::ptr::null(), m.shape(), &[]))
}

/// The writable data pointer of a uniquely owned dense value (no copy is made); `None` when
/// its memory is shared with another value, or for a sparse matrix.
pub(crate) fn unique_mut_ptr(d: &mut TensorData, contiguous: bool) -> Option<*const u8> {
    tensorlift_ir::with_dense_data!(d, a => (a.is_unique() && (!contiguous || a.is_standard_layout()))
        .then(|| a.as_mut_ptr().cast::<u8>().cast_const()), _m => None)
}

/// A kernel and its machine code.
pub struct KernelCall {
    kernel: Kernel,
    compiled: CompiledKernel,
}

impl KernelCall {
    /// Compiles `kernel` on its own, with its shape checks (`Kernel::with_shape_checks`).
    /// Refused: a malformed kernel, and one that addresses memory by a temporary (a
    /// gathered index), whose range only the kernel's own statements can guarantee (see
    /// `compile_all_with_gathers`).
    pub fn compile(kernel: Kernel) -> Result<KernelCall, CompileError> {
        Self::compile_all(vec![kernel])?
            .pop()
            .ok_or_else(|| CompileError::Internal("no kernel compiled".into()))
    }

    /// Compiles kernels into one module (a kernel may `invoke` those before it), each with
    /// its shape checks; refused as `compile` refuses.
    pub fn compile_all(kernels: Vec<Kernel>) -> Result<Vec<KernelCall>, CompileError> {
        if let Some(k) = kernels.iter().find(|k| k.gathers()) {
            return Err(CompileError::InvalidKernel {
                kernel: k.name.clone(),
                message: "addresses memory by a temporary; only `compile_all_with_gathers` \
                          takes such kernels"
                    .into(),
            });
        }
        // SAFETY: no kernel addresses memory by a temporary.
        unsafe { Self::compile_all_with_gathers(kernels) }
    }

    /// `compile_all` for kernels that may address memory by temporaries.
    ///
    /// # Safety
    /// Every access indexed by a temporary must stay inside its buffer for any buffers the
    /// kernel is given (the kernel compares the temporary with the buffer's size before
    /// the access, as lowered gathers and scatters do); `run` relies on it.
    pub unsafe fn compile_all_with_gathers(
        kernels: Vec<Kernel>,
    ) -> Result<Vec<KernelCall>, CompileError> {
        for k in &kernels {
            k.validate()
                .map_err(|message| CompileError::InvalidKernel {
                    kernel: k.name.clone(),
                    message,
                })?;
        }
        let kernels: Vec<Kernel> = kernels.into_iter().map(Kernel::with_shape_checks).collect();
        let compiled = compile_kernels(&kernels)?;
        Ok(kernels
            .into_iter()
            .zip(compiled)
            .map(|(kernel, compiled)| KernelCall { kernel, compiled })
            .collect())
    }

    /// The loop-nest IR this call runs.
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// Runs the kernel: `inputs` are the kernel's input buffers in order, `outputs` its
    /// output buffers, written in place (any shapes and strides; each must be uniquely
    /// owned). A growing output is given as a value with the row shape it will have
    /// (its length along axis 0 does not matter) and is replaced by the grown value.
    /// Shapes are checked by the jitted code.
    pub fn run(
        &self,
        inputs: &[&TensorData],
        outputs: &mut [TensorData],
    ) -> Result<(), RuntimeError> {
        let name = &self.kernel.name;
        let count =
            |f: fn(&Role) -> bool| self.kernel.buffers.iter().filter(|b| f(&b.role)).count();
        let n_in = count(|r| *r == Role::Input);
        let n_out = count(|r| matches!(r, Role::Output | Role::Growing));
        if inputs.len() != n_in || outputs.len() != n_out {
            return Err(RuntimeError::op(
                name,
                format!(
                    "expected {n_in} inputs and {n_out} outputs, got {} and {}",
                    inputs.len(),
                    outputs.len()
                ),
            ));
        }
        let mut words = Vec::with_capacity(call_words(&self.kernel));
        let mut push = |ptr: *const u8, shape: &[usize], strides: &[isize]| {
            push_view(&mut words, ptr, shape, strides);
        };
        let mut ins = inputs.iter();
        let mut outs = outputs.iter_mut();
        // The growing buffers (boxed: the kernel holds their addresses), by output index.
        let mut growing: Vec<(usize, Box<GrowBuffer>)> = Vec::new();
        let mut out_index = 0;
        for (k, buf) in self.kernel.buffers.iter().enumerate() {
            let label = self.kernel.label(k);
            let (ptr, value) = match buf.role {
                // After every other buffer: allocated below, once the inputs are checked.
                Role::Local(_) => break,
                Role::Input => {
                    let v: &TensorData = ins
                        .next()
                        .ok_or_else(|| RuntimeError::Internal(format!("{name}: missing input")))?;
                    if v.is_sparse() {
                        return Err(RuntimeError::op(
                            name.as_str(),
                            format!("{label}: kernels read dense arrays, got a sparse matrix"),
                        ));
                    }
                    (data_ptr(v).0, v)
                }
                Role::Growing => {
                    let v = outs
                        .next()
                        .ok_or_else(|| RuntimeError::Internal(format!("{name}: missing output")))?;
                    out_index += 1;
                    if v.dtype() != buf.dtype || v.ndim() != buf.rank || buf.rank == 0 {
                        return Err(RuntimeError::op(
                            name,
                            format!("{label} must be a {}-d {} value", buf.rank, buf.dtype),
                        ));
                    }
                    let mut g = Box::new(GrowBuffer::new(buf.dtype, &v.shape()[1..]));
                    let handle: *mut GrowBuffer = &mut *g;
                    // Row-major strides of the row shape, axis 0 first.
                    let shape = v.shape().to_vec();
                    let strides: Vec<isize> = (0..shape.len())
                        .map(|d| shape[d + 1..].iter().product::<usize>() as isize)
                        .collect();
                    growing.push((out_index - 1, g));
                    push(handle as *const u8, &shape, &strides);
                    continue;
                }
                Role::Output => {
                    let v = outs
                        .next()
                        .ok_or_else(|| RuntimeError::Internal(format!("{name}: missing output")))?;
                    out_index += 1;
                    let ptr = unique_mut_ptr(v, false).ok_or_else(|| {
                        RuntimeError::op(
                            name,
                            format!("{label} shares its memory with another value"),
                        )
                    })?;
                    (ptr, &*v)
                }
            };
            if value.dtype() != buf.dtype || value.ndim() != buf.rank {
                return Err(RuntimeError::op(
                    name,
                    format!(
                        "{label} is {}-d {}, expected {}-d {}",
                        value.ndim(),
                        value.dtype(),
                        buf.rank,
                        buf.dtype
                    ),
                ));
            }
            let (_, shape, strides) = data_ptr(value);
            push(ptr, shape, strides);
        }
        let input_buffers: Vec<usize> = (0..self.kernel.buffers.len())
            .filter(|k| self.kernel.buffers[*k].role == Role::Input)
            .collect();
        let mut locals = LocalBuffers::new(&self.kernel, |buf| {
            let k = input_buffers.iter().position(|b| *b == buf)?;
            Some(inputs[k].shape())
        })?;
        locals.push_words(&mut words);
        let mut scratch = vec![0f64; self.compiled.scratch_words];
        let mut slot = ErrorSlot::default();
        push_trailer(&mut words, scratch.as_mut_ptr(), &mut slot);
        // SAFETY: the words describe, in the kernel's buffer order, live values of the
        // kernel's dtypes and ranks (checked above) with their true shapes and strides, so
        // every element those shapes address lies inside its allocation; the kernel
        // checks that the shapes agree with each other before it touches memory. Outputs
        // are uniquely owned (no input can share their memory) and writable. Scratch has
        // the kernel's `scratch_words`; scratch and slot live past the call. A growing
        // buffer's pointer word is its boxed `GrowBuffer`, alive until after the call and
        // touched by nothing else meanwhile; the kernel addresses its data only through
        // the pointer and row count `tl_grow` gave it. Local buffers are fresh zeroed
        // memory of their shapes (row-major), alive until after the call. A view a kernel
        // passes to another is checked against its dimensions in the jitted code.
        let status = unsafe { self.compiled.call(&words) };
        for (k, g) in growing {
            outputs[k] = g.into_value()?;
        }
        if status == 0 {
            return Ok(());
        }
        match self.compiled.error_message(status, &slot.values) {
            Some(message) => Err(RuntimeError::op(name, message)),
            None => Err(RuntimeError::Internal(format!(
                "{name} returned status {status}"
            ))),
        }
    }
}

//! Native scans in the executor: one call of the driver kernel (`lower::scan`) runs the
//! whole loop. Rust computes the step count (the runtime's `step_count`, so errors read as
//! the reference's), checks initial blocks, allocates the last values, the fixed traces (or
//! growing ones for a while-scan) and the driver's local buffers once, and packs them.

use std::sync::Arc;

use tensorlift_ir::ops::Scan;
use tensorlift_runtime::buffer_support::GrowBuffer;
use tensorlift_runtime::reference::scan::{check_initial_block, stack, step_count};

use super::*;
use crate::calling::LocalBuffers;
use crate::loopir::Role;
use crate::lower::scan::lower_scan;

/// A scan compiled to one driver kernel (and the body kernels it invokes).
pub(super) struct NativeScan {
    scan: Arc<Scan>,
    name: String,
    driver: Kernel,
    compiled: CompiledKernel,
    constants: Vec<TensorData>,
    /// Per state, the empty trace returned when it is not kept (for one shape, made once).
    empty_traces: Vec<std::sync::OnceLock<(Vec<usize>, TensorData)>>,
    /// The driver's local buffers of the last call, zeroed again for the next (a call
    /// while another holds them makes its own).
    locals: Mutex<Option<LocalBuffers>>,
}

impl NativeScan {
    /// The native form of scan node `node`, or `None` when its body has a node the driver
    /// cannot run.
    pub(super) fn new(
        fg: &FunctionGraph,
        node: NodeId,
        scan: &Arc<Scan>,
    ) -> Result<Option<NativeScan>, CompileError> {
        let Some(e) = fg.node(node) else {
            return Ok(None);
        };
        let in_types: Vec<&TensorType> = e.inputs.iter().map(|x| &fg.var(*x).ty).collect();
        let Some(lowered) = lower_scan(scan, &in_types) else {
            return Ok(None);
        };
        let mut compiled = cached_compile(&lowered.kernels)?;
        let (Some(driver), Some(compiled)) = (lowered.kernels.last(), compiled.pop()) else {
            return Ok(None);
        };
        Ok(Some(NativeScan {
            scan: scan.clone(),
            name: e.op.to_string(),
            driver: driver.clone(),
            compiled,
            constants: lowered.constants,
            empty_traces: (0..scan.n_states())
                .map(|_| std::sync::OnceLock::new())
                .collect(),
            locals: Mutex::new(None),
        }))
    }

    /// The placeholder for state `k`'s dropped trace: no rows of `shape` (shared between
    /// calls while the shape stays the same).
    fn empty_trace(
        &self,
        k: usize,
        dtype: DType,
        shape: &[usize],
    ) -> Result<TensorData, RuntimeError> {
        let make = || stack(&self.name, dtype, shape, &[]);
        let Some(cell) = self.empty_traces.get(k) else {
            return make();
        };
        if let Some((cached, value)) = cell.get() {
            if cached == shape && value.dtype() == dtype {
                return Ok(value.clone());
            }
            return make();
        }
        let value = make()?;
        let _ = cell.set((shape.to_vec(), value.clone()));
        Ok(value)
    }

    /// How many kernels the driver invokes (for the plan's text).
    pub(super) fn describe(&self) -> String {
        let growing = self.driver.buffers.iter().any(|b| b.role == Role::Growing);
        format!(
            "one native call: a driver loop invoking its body's kernels on views{}",
            if growing {
                ", traces grown in place"
            } else {
                ""
            }
        )
    }

    pub(super) fn run(
        &self,
        args: &[TensorData],
        pool: &BufferPool,
    ) -> Result<Vec<TensorData>, RuntimeError> {
        let (scan, name) = (&*self.scan, self.name.as_str());
        if args.len() != scan.first_non_sequence() + scan.n_non_sequences {
            return Err(RuntimeError::Internal(format!(
                "{name}: {} inputs",
                args.len()
            )));
        }
        let sequences = &args[scan.first_sequence()..scan.first_state()];
        let shapes: smallvec::SmallVec<[&[usize]; 4]> =
            sequences.iter().map(|s| s.shape()).collect();
        let steps = step_count(name, scan, scan.bounded.then(|| &args[0]), &shapes)?;
        let inits = &args[scan.first_state()..scan.first_non_sequence()];
        for (k, init) in inits.iter().enumerate() {
            check_initial_block(name, scan, k, init)?;
        }
        // Driver input 0 is the step count, an int64 scalar passed from this frame.
        let steps_word: i64 = steps.map_or(i64::MAX, |n| n as i64);
        let mut inputs: smallvec::SmallVec<[&TensorData; 8]> = smallvec::SmallVec::new();
        inputs.extend(&args[scan.first_sequence()..]);
        inputs.extend(&self.constants);
        // The driver's inputs must be what it was compiled for.
        let mut input_buffers = self.driver.buffers.iter().filter(|b| b.role == Role::Input);
        let count_ok = input_buffers.clone().count() == inputs.len() + 1;
        let steps_ok = input_buffers
            .next()
            .is_some_and(|b| b.dtype == DType::Int64 && b.rank == 0);
        if !count_ok || !steps_ok {
            return Err(RuntimeError::Internal(format!(
                "{name}: the driver's inputs differ"
            )));
        }
        for (i, (x, b)) in inputs.iter().zip(input_buffers).enumerate() {
            if x.dtype() != b.dtype || x.ndim() != b.rank {
                return Err(RuntimeError::Internal(format!(
                    "{name}: driver input {} is {}-d {}, expected {}-d {}",
                    i + 1,
                    x.ndim(),
                    x.dtype(),
                    b.rank,
                    b.dtype
                )));
            }
        }
        // Outputs, per state in the driver's order: its last value, then its trace when
        // kept (fixed, or growing for a while-scan).
        let mut states: smallvec::SmallVec<[(Output, Shape, Trace); 1]> = smallvec::SmallVec::new();
        for (k, init) in inits.iter().enumerate() {
            let block = tensorlift_ir::ops::scan::has_initial_block(&scan.state_taps[k]);
            let shape = Shape::from_slice(if block {
                &init.shape()[1..]
            } else {
                init.shape()
            });
            let dtype = init.dtype();
            let last = Output::new(name, dtype, &shape, pool)?;
            let trace = match (scan.keep_trace[k], scan.until, steps) {
                (false, _, _) => Trace::Dropped,
                (true, true, _) => Trace::Growing(Box::new(GrowBuffer::new(dtype, &shape))),
                (true, false, Some(n)) => {
                    let mut full = vec![n];
                    full.extend(shape.iter());
                    Trace::Fixed(Output::new(name, dtype, &full, pool)?, full)
                }
                (true, false, None) => {
                    return Err(RuntimeError::Internal(format!(
                        "{name}: a fixed trace without a step count"
                    )))
                }
            };
            states.push((last, shape, trace));
        }
        // Buffer 0 is the step count (0-d), the others the node's inputs and constants.
        let input_shape = |buf: usize| match buf {
            0 => Some(&[][..]),
            _ => inputs.get(buf - 1).map(|x| x.shape()),
        };
        let mut kept = self.locals.try_lock().ok();
        let mut own = None;
        let locals = match kept.as_deref_mut() {
            Some(Some(locals)) => {
                locals.refill(&self.driver, input_shape)?;
                locals
            }
            Some(empty) => empty.insert(LocalBuffers::new(&self.driver, input_shape)?),
            None => own.insert(LocalBuffers::new(&self.driver, input_shape)?),
        };
        let mut slot = ErrorSlot::default();
        let status = with_call_memory(self.compiled.scratch_words, |packed, scratch| {
            push_view(packed, (&steps_word as *const i64).cast(), &[], &[]);
            for x in &inputs {
                let (ptr, shape, strides) = data_ptr(x);
                push_view(packed, ptr, shape, strides);
            }
            for (last, shape, trace) in &mut states {
                push_row_major(packed, last.ptr(), shape);
                match trace {
                    Trace::Dropped => {}
                    Trace::Fixed(t, full) => push_row_major(packed, t.ptr(), full),
                    Trace::Growing(g) => {
                        // The buffer's handle, with the row shape (rows: none yet).
                        let handle: *mut GrowBuffer = &mut **g;
                        let mut empty = vec![0];
                        empty.extend(shape.iter());
                        push_row_major(packed, handle as *const u8, &empty);
                    }
                }
            }
            locals.push_words(packed);
            push_trailer(packed, scratch, &mut slot);
            if packed.len() != call_words(&self.driver) {
                return Err(RuntimeError::Internal(format!(
                    "{name}: {} argument words, expected {}",
                    packed.len(),
                    call_words(&self.driver)
                )));
            }
            // SAFETY: the words describe, in the driver's buffer order, its inputs (the
            // step count, the node's inputs and the body's constants: dtypes and ranks
            // checked above, true shapes and strides), fresh contiguous outputs of the
            // shapes the driver writes (last values of the states' shapes, fixed traces of
            // `steps` rows, every element written by the loop's copies), growing traces as
            // boxed `GrowBuffer`s alive past the call and touched by nothing else, and
            // zeroed local buffers of their extents (this call's alone: its own, or the
            // kept ones under their lock). Every kernel checks the shapes and
            // view indices it is given before touching memory; scratch and slot live past
            // the call.
            Ok(unsafe { self.compiled.call(packed) })
        })?;
        if status != 0 {
            let message = self
                .compiled
                .error_message(status, &slot.values)
                .unwrap_or_else(|| format!("the driver returned status {status}"));
            return Err(RuntimeError::op(name, message));
        }
        let mut result = Vec::with_capacity(2 * scan.n_states());
        for (k, (last, shape, trace)) in states.into_iter().enumerate() {
            // SAFETY: the driver's epilogue copies every element of every last value.
            let last = unsafe { last.assume_init(args) };
            let trace = match trace {
                Trace::Dropped => self.empty_trace(k, last.dtype(), &shape)?,
                Trace::Growing(g) => g.into_value()?,
                // SAFETY: a fixed-length loop runs every step, each copying its state into
                // its row of the trace.
                Trace::Fixed(t, _) => unsafe { t.assume_init(args) },
            };
            result.push(last);
            result.push(trace);
        }
        Ok(result)
    }
}

/// The memory of one state's trace during a call.
enum Trace {
    /// Not kept: an empty placeholder is returned.
    Dropped,
    Fixed(Output, Vec<usize>),
    Growing(Box<GrowBuffer>),
}

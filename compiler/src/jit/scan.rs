//! Native scans in the executor: one call of the driver kernel (`lower::scan`) runs the
//! whole loop. Rust computes the step count (the runtime's `step_count`, so errors read as
//! the reference's); a call prepared for the inputs' layout (initial blocks and driver
//! inputs checked, argument words packed, local buffers allocated) is kept and reused
//! while the layout stays: each call fills in the input pointers, allocates the last
//! values and the fixed traces (or growing ones for a while-scan) and zeroes the locals.

use std::sync::Arc;

use tensorlift_ir::ops::Scan;
use tensorlift_runtime::buffer_support::GrowBuffer;
use tensorlift_runtime::reference::scan::{check_initial_block, stack, step_count};

use super::memory::CallOutput;
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
    /// The last call's argument words and local buffers, reused while the inputs keep
    /// their layout (a call while another holds them prepares its own).
    prepared: Mutex<Option<Box<Prepared>>>,
}

/// A call of the driver prepared for one layout of the node's inputs: the argument words
/// with the per-call pointers left to fill, and the local buffers (zeroed per call).
struct Prepared {
    /// The layouts of the node's inputs after the step count (`recipe::push_layout`),
    /// then the step count when a trace has a fixed length (it is in that trace's shape).
    key: Vec<i64>,
    words: Vec<i64>,
    /// The step count, read by the driver through word 0.
    steps: Box<i64>,
    /// Per driver input after the step count (the node's inputs, then its body's
    /// constants, whose pointers are filled once): the word of its data pointer.
    input_at: smallvec::SmallVec<[usize; 8]>,
    states: smallvec::SmallVec<[PreparedState; 1]>,
    locals: LocalBuffers,
    scratch: Vec<f64>,
    /// Written by the driver through the pointer in the words, read after a failure.
    slot: Box<std::cell::UnsafeCell<ErrorSlot>>,
}

/// A state's outputs in a prepared call: where its last value's pointer goes, its shape,
/// and its trace.
struct PreparedState {
    last: PreparedOutput,
    trace: PreparedTrace,
}

/// An output allocated per call: the word of its pointer, dtype, shape and row-major
/// strides.
struct PreparedOutput {
    at: usize,
    dtype: DType,
    dim: IxDyn,
    strides: IxDyn,
}

impl PreparedOutput {
    fn new(at: usize, dtype: DType, shape: &[usize]) -> PreparedOutput {
        let dim = IxDyn(shape);
        PreparedOutput {
            at,
            dtype,
            strides: ndarray::Dimension::default_strides(&dim),
            dim,
        }
    }
}

enum PreparedTrace {
    Dropped,
    Fixed(PreparedOutput),
    /// A trace grown in place: the word of its `GrowBuffer` handle, and the row shape.
    Growing(usize, Shape),
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
            prepared: Mutex::new(None),
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
            // (Compared element by element: these shapes are short, a memcmp call costs more.)
            let same = cached.len() == shape.len() && cached.iter().zip(shape).all(|(a, b)| a == b);
            if same && value.dtype() == dtype {
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
        let mut kept = self.prepared.try_lock().ok();
        let mut own = None;
        let prepared: &mut Prepared = match kept.as_deref_mut() {
            Some(Some(p)) if self.same_layout(p, args, steps) => {
                p.locals.zero();
                p
            }
            Some(slot) => slot.insert(Box::new(self.prepare(args, steps)?)),
            None => own.insert(self.prepare(args, steps)?),
        };
        *prepared.steps = steps.map_or(i64::MAX, |n| n as i64);
        let inputs = args[scan.first_sequence()..].iter();
        for (at, x) in prepared.input_at.iter().zip(inputs) {
            prepared.words[*at] = data_ptr(x).0 as i64;
        }
        // Outputs, per state in the driver's order: its last value, then its trace when
        // kept (fixed, or growing for a while-scan).
        let mut memory: smallvec::SmallVec<[(CallOutput, Trace); 1]> = smallvec::SmallVec::new();
        for state in &prepared.states {
            let last = &state.last;
            let mut last_memory = CallOutput::new(name, last.dtype, &last.dim, pool)?;
            prepared.words[last.at] = last_memory.ptr() as i64;
            let trace = match &state.trace {
                PreparedTrace::Dropped => Trace::Dropped,
                PreparedTrace::Fixed(t) => {
                    let mut t_memory = CallOutput::new(name, t.dtype, &t.dim, pool)?;
                    prepared.words[t.at] = t_memory.ptr() as i64;
                    Trace::Fixed(t_memory)
                }
                PreparedTrace::Growing(at, row) => {
                    let mut g = Box::new(GrowBuffer::new(last.dtype, row));
                    // The buffer's handle (its row shape is in the words: rows, none yet).
                    let handle: *mut GrowBuffer = &mut *g;
                    prepared.words[*at] = handle as i64;
                    Trace::Growing(g)
                }
            };
            memory.push((last_memory, trace));
        }
        // SAFETY: the words were packed for inputs of exactly these dtypes and layouts
        // (the key), in the driver's buffer order: the step count (`steps`, alive in
        // `prepared`), the node's inputs (pointers just filled) and the body's constants
        // (held by `self`), fresh contiguous outputs of the shapes the driver writes (last
        // values of the states' shapes, fixed traces of `steps` rows — the step count is
        // in the key then —, every element written by the loop's copies), growing traces
        // as boxed `GrowBuffer`s alive past the call and touched by nothing else, and
        // zeroed local buffers of their extents, with the scratch memory and error slot
        // of `prepared`, which this call holds alone (its lock, or its own). Every kernel
        // checks the shapes and view indices it is given before touching memory.
        let status = unsafe { self.compiled.call(&prepared.words) };
        if status != 0 {
            // SAFETY: the driver has returned; nothing else writes the slot, and no other
            // reference to it lives (`prepared` is this call's alone).
            let values = unsafe { &(*prepared.slot.get()).values };
            let message = self
                .compiled
                .error_message(status, values)
                .unwrap_or_else(|| format!("the driver returned status {status}"));
            return Err(RuntimeError::op(name, message));
        }
        let mut result = Vec::with_capacity(2 * scan.n_states());
        for (k, ((last_memory, trace), state)) in
            memory.into_iter().zip(&prepared.states).enumerate()
        {
            let last = &state.last;
            // SAFETY: the driver's epilogue copies every element of every last value.
            let value = unsafe { last_memory.into_value(&last.dim, &last.strides) };
            let trace = match (trace, &state.trace) {
                (Trace::Growing(g), _) => g.into_value()?,
                // SAFETY: a fixed-length loop runs every step, each copying its state into
                // its row of the trace.
                (Trace::Fixed(t_memory), PreparedTrace::Fixed(t)) => unsafe {
                    t_memory.into_value(&t.dim, &t.strides)
                },
                (Trace::Dropped, _) => {
                    self.empty_trace(k, last.dtype, ndarray::Dimension::slice(&last.dim))?
                }
                (Trace::Fixed(_), _) => {
                    return Err(RuntimeError::Internal(format!(
                        "{name}: a fixed trace prepared without its shape"
                    )))
                }
            };
            result.push(value);
            result.push(trace);
        }
        Ok(result)
    }

    /// Whether `prepared` was made for inputs of `args`' layouts and, when a trace has a
    /// fixed length, for `steps`.
    fn same_layout(&self, prepared: &Prepared, args: &[TensorData], steps: Option<usize>) -> bool {
        let mut at = 0;
        for a in &args[self.scan.first_sequence()..] {
            match recipe::layout_matches(&prepared.key, at, a) {
                Some(next) => at = next,
                None => return false,
            }
        }
        match self.fixed_trace_steps(steps) {
            Some(n) => matches!(prepared.key.get(at..), Some([m]) if *m == n),
            None => at == prepared.key.len(),
        }
    }

    /// The step count as it enters the key: when some state keeps a fixed-length trace.
    fn fixed_trace_steps(&self, steps: Option<usize>) -> Option<i64> {
        let fixed = !self.scan.until && self.scan.keep_trace.iter().any(|k| *k);
        fixed.then(|| steps.map_or(-1, |n| n as i64))
    }

    /// The call of the driver for `args`' layouts and `steps` steps: initial blocks and
    /// driver inputs checked, words packed (per-call pointers left null), local buffers
    /// allocated.
    fn prepare(&self, args: &[TensorData], steps: Option<usize>) -> Result<Prepared, RuntimeError> {
        let (scan, name) = (&*self.scan, self.name.as_str());
        let inits = &args[scan.first_state()..scan.first_non_sequence()];
        for (k, init) in inits.iter().enumerate() {
            check_initial_block(name, scan, k, init)?;
        }
        let mut inputs: smallvec::SmallVec<[&TensorData; 8]> = smallvec::SmallVec::new();
        inputs.extend(&args[scan.first_sequence()..]);
        inputs.extend(&self.constants);
        // The driver's inputs must be what it was compiled for; input 0 is the step count,
        // an int64 scalar.
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
            if x.dtype() != b.dtype || x.ndim() != b.rank || x.is_sparse() {
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
        let mut key = Vec::new();
        for a in &args[scan.first_sequence()..] {
            recipe::push_layout(&mut key, a);
        }
        key.extend(self.fixed_trace_steps(steps));
        let steps_value = Box::new(steps.map_or(i64::MAX, |n| n as i64));
        let mut words = Vec::with_capacity(call_words(&self.driver));
        push_view(&mut words, (&*steps_value as *const i64).cast(), &[], &[]);
        let mut input_at = smallvec::SmallVec::new();
        let n_args = inputs.len() - self.constants.len();
        for (i, x) in inputs.iter().enumerate() {
            let (ptr, shape, strides) = data_ptr(x);
            input_at.push(words.len());
            // The node's inputs' pointers are filled per call, the constants' now.
            let ptr = if i < n_args { std::ptr::null() } else { ptr };
            push_view(&mut words, ptr, shape, strides);
        }
        input_at.truncate(n_args);
        let mut states = smallvec::SmallVec::new();
        for (k, init) in inits.iter().enumerate() {
            let block = tensorlift_ir::ops::scan::has_initial_block(&scan.state_taps[k]);
            let shape = Shape::from_slice(if block {
                &init.shape()[1..]
            } else {
                init.shape()
            });
            let dtype = init.dtype();
            tensorlift_runtime::memory::output_bytes(name, dtype, &shape)?;
            let last = PreparedOutput::new(words.len(), dtype, &shape);
            push_row_major(&mut words, std::ptr::null(), &shape);
            let trace = match (scan.keep_trace[k], scan.until, steps) {
                (false, _, _) => PreparedTrace::Dropped,
                (true, true, _) => {
                    // The row shape, with no rows yet.
                    let at = words.len();
                    let mut empty = vec![0];
                    empty.extend(shape.iter());
                    push_row_major(&mut words, std::ptr::null(), &empty);
                    PreparedTrace::Growing(at, shape.clone())
                }
                (true, false, Some(n)) => {
                    let mut full = vec![n];
                    full.extend(shape.iter());
                    tensorlift_runtime::memory::output_bytes(name, dtype, &full)?;
                    let trace = PreparedOutput::new(words.len(), dtype, &full);
                    push_row_major(&mut words, std::ptr::null(), &full);
                    PreparedTrace::Fixed(trace)
                }
                (true, false, None) => {
                    return Err(RuntimeError::Internal(format!(
                        "{name}: a fixed trace without a step count"
                    )))
                }
            };
            states.push(PreparedState { last, trace });
        }
        // Buffer 0 is the step count (0-d), the others the node's inputs and constants.
        let input_shape = |buf: usize| match buf {
            0 => Some(&[][..]),
            _ => inputs.get(buf - 1).map(|x| x.shape()),
        };
        let mut locals = LocalBuffers::new(&self.driver, input_shape)?;
        locals.push_words(&mut words);
        let mut prepared = Prepared {
            key,
            words,
            steps: steps_value,
            input_at,
            states,
            locals,
            scratch: vec![0.0; self.compiled.scratch_words],
            slot: Box::default(),
        };
        // The scratch memory and the slot stay where they are when `prepared` moves.
        push_trailer(
            &mut prepared.words,
            prepared.scratch.as_mut_ptr(),
            prepared.slot.get(),
        );
        if prepared.words.len() != call_words(&self.driver) {
            return Err(RuntimeError::Internal(format!(
                "{name}: {} argument words, expected {}",
                prepared.words.len(),
                call_words(&self.driver)
            )));
        }
        Ok(prepared)
    }
}

/// The memory of one state's trace during a call.
enum Trace {
    /// Not kept: an empty placeholder is returned.
    Dropped,
    Fixed(CallOutput),
    Growing(Box<GrowBuffer>),
}

//! Replays of recorded calls. A call of a plan is recorded as it runs: where each value
//! of a small kernel or a view lives (an input or a constant at a byte offset, or a
//! buffer a kernel writes), the argument words of every such kernel call, and which
//! values the other steps (scans, IfElse, library calls: run as they always are) take
//! and give. The next call whose inputs have the recorded dtypes, shapes and strides
//! replays it: the kernels are called with the data pointers filled into their words
//! (no shape rules, no views made, no value table, intermediates in memory the replay
//! keeps, only the graph's outputs allocated), the other steps run on their values.
//!
//! Why it holds: every shape, stride and view offset of a recorded kernel or view follows
//! from the layout of the inputs it reads (kernels' output shapes by their shape rules,
//! views by constant indices), and the other steps' values never reach a kernel or a
//! view (`replayable`), so equal layouts give equal words; kernels still check sizes.

use super::*;

/// Calls that record again after their inputs' layout changed, at most; past it the
/// last recording stays and other layouts take the general path.
const MAX_RECORDINGS: u32 = 16;

/// Where the data of a kernel's or a view's value starts: an input's or a constant's
/// data pointer, or a buffer the call's kernels write, moved by `offset` bytes.
#[derive(Clone, Copy)]
struct Loc {
    root: Root,
    offset: i64,
}

#[derive(Clone, Copy)]
enum Root {
    Input(usize),
    /// A constant's data pointer (the plan holds the constant).
    Const(i64),
    Buffer(usize),
}

/// What a recorded value is.
#[derive(Clone, Copy)]
enum Place {
    /// Graph input `j`, as given.
    Input(usize),
    /// A kernel's or a view's value.
    At(Loc),
    /// Value `h` another step gave (held whole between steps).
    Held(usize),
}

/// How a step of the plan takes part in a replay.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// A memoizable kernel: recorded words.
    Kernel,
    /// A view by constant indices: a recorded offset, nothing run.
    View,
    /// Any other step: run on its values.
    Other,
}

fn class(plan: &Plan, step: &Step) -> Class {
    match &step.action {
        Action::Kernel(k) if k.recipe.is_some() => Class::Kernel,
        Action::View(_) => {
            let constant_indices = step.args[1..].iter().all(|a| matches!(a, Arg::Const(_)));
            match plan.fgraph.node(step.node).map(|e| &e.op) {
                Some(Op::DimShuffle(_)) => Class::View,
                Some(Op::Subtensor(_)) if constant_indices => Class::View,
                _ => Class::Other,
            }
        }
        Action::Kernel(_)
        | Action::Call(_)
        | Action::Scan(..)
        | Action::NativeScan(_)
        | Action::IfElse(..)
        | Action::Blockwise(_)
        | Action::Library(_)
        | Action::RowPass(_)
        | Action::Interpreted(_) => Class::Other,
    }
}

/// Whether calls of `plan` can be replayed, and which inputs' layouts key a replay
/// (those kernels and views read): kernels and views read inputs, constants and each
/// other's values; other steps read inputs, constants, kernels' values (whole buffers,
/// checked when recorded) and other steps' values; the outputs are inputs, constants,
/// kernels' or other steps' values (not views).
pub(super) fn replayable(plan: &Plan) -> Option<Vec<bool>> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Value {
        Input(usize),
        Kernel,
        View,
        Other,
    }
    let mut values: Vec<Option<Value>> = vec![None; plan.slots];
    for (j, slot) in plan.inputs.iter().enumerate() {
        if values[*slot].is_some() {
            return None;
        }
        values[*slot] = Some(Value::Input(j));
    }
    let mut keyed = vec![false; plan.inputs.len()];
    for step in &plan.steps {
        let c = class(plan, step);
        for a in &step.args {
            let Arg::Slot { slot, .. } = a else { continue };
            match (c, values[*slot]?) {
                (_, Value::Input(j)) => keyed[j] |= c != Class::Other,
                (Class::Kernel | Class::View, Value::Kernel | Value::View) => {}
                (Class::Other, Value::Other | Value::Kernel) => {}
                _ => return None,
            }
        }
        let made = match c {
            Class::Kernel => Value::Kernel,
            Class::View => Value::View,
            Class::Other => Value::Other,
        };
        for slot in &step.outputs {
            values[*slot] = Some(made);
        }
    }
    let outputs_ok = plan.outputs.iter().all(|o| match o {
        Out::Const(_) => true,
        Out::Slot { slot, .. } => values[*slot].is_some_and(|v| v != Value::View),
    });
    outputs_ok.then_some(keyed)
}

/// Whether the `keyed` inputs have the dtypes and layouts of `key`.
fn layouts_match(key: &[i64], keyed: &[bool], inputs: &[TensorData]) -> bool {
    let mut at = 0;
    for (a, _) in inputs.iter().zip(keyed).filter(|(_, k)| **k) {
        match recipe::layout_matches(key, at, a) {
            Some(next) => at = next,
            None => return false,
        }
    }
    at == key.len() && inputs.len() == keyed.len()
}

/// One kernel call: its step, its words, and where each data pointer goes in them.
struct KernelCall {
    step: usize,
    words: Vec<i64>,
    pointers: smallvec::SmallVec<[(usize, Loc); 6]>,
    /// The buffers it writes.
    writes: smallvec::SmallVec<[usize; 2]>,
}

/// An argument of another step.
#[derive(Clone, Copy)]
enum Source {
    Input(usize),
    /// Another step's value; `last`: this is its last use (moved, not shared).
    Held {
        h: usize,
        last: bool,
    },
    /// The whole buffer `b` a kernel wrote.
    Buffer(usize),
    /// The step's constant argument.
    Const,
}

/// One recorded step.
enum Recorded {
    Kernel(KernelCall),
    /// Another step: its arguments, and the held value each result becomes.
    Other {
        step: usize,
        args: smallvec::SmallVec<[Source; 4]>,
        results: smallvec::SmallVec<[usize; 2]>,
    },
}

/// A graph output of a replayed call.
enum Result_ {
    /// The `k`th allocated output; `last`: no later output returns it too.
    Output {
        k: usize,
        last: bool,
    },
    Held {
        h: usize,
        last: bool,
    },
    Input(usize),
    Const(TensorData),
}

/// Records one call of a plan as its steps run (`Plan::run_steps`).
pub(super) struct Recorder {
    key: Vec<i64>,
    places: Vec<Option<Place>>,
    recorded: Vec<Recorded>,
    /// Per buffer: its dtype, shape and bytes.
    buffers: Vec<(DType, Shape, usize)>,
    held: usize,
    /// Buffers other steps read whole (they become values right after their kernel).
    whole: Vec<usize>,
    /// Set when a kernel is not small (or a layout not understood): nothing is kept.
    failed: bool,
}

impl Recorder {
    /// Notes step `i`, which ran on `args` and gave `outs`.
    pub(super) fn observe(&mut self, plan: &Plan, i: usize, args: &[TensorData], outs: &Values) {
        if !self.failed && self.record(plan, i, args, outs).is_none() {
            self.failed = true;
        }
    }

    fn record(&mut self, plan: &Plan, i: usize, args: &[TensorData], outs: &Values) -> Option<()> {
        let step = &plan.steps[i];
        let loc_of = |places: &[Option<Place>], a: &Arg, value: &TensorData| match a {
            Arg::Const(_) => Some(Loc {
                root: Root::Const(data_ptr(value).0 as i64),
                offset: 0,
            }),
            Arg::Slot { slot, .. } => match places[*slot]? {
                Place::Input(j) => Some(Loc {
                    root: Root::Input(j),
                    offset: 0,
                }),
                Place::At(loc) => Some(loc),
                Place::Held(_) => None,
            },
        };
        match (class(plan, step), &step.action) {
            (Class::Kernel, Action::Kernel(k)) => {
                let space = space(k, args).ok()??;
                let n = elements_of(&space.full);
                if n == 0 || n >= recipe::RECIPE_MAX_ELEMENTS || check_dtypes(k, args).is_err() {
                    return None;
                }
                let mut call = KernelCall {
                    step: i,
                    words: Vec::new(),
                    pointers: smallvec::SmallVec::new(),
                    writes: smallvec::SmallVec::new(),
                };
                for (value, a) in args.iter().zip(&step.args) {
                    let (_, shape, strides) = data_ptr(value);
                    call.pointers
                        .push((call.words.len(), loc_of(&self.places, a, value)?));
                    push_view(&mut call.words, std::ptr::null(), shape, strides);
                }
                for (full, (out, slot)) in k.out_full.iter().zip(outs.iter().zip(&step.outputs)) {
                    let shape = space.output_shape(*full);
                    if data_ptr(out).1 != shape {
                        return None;
                    }
                    let loc = Loc {
                        root: Root::Buffer(self.buffers.len()),
                        offset: 0,
                    };
                    let bytes = elements_of(shape) * out.dtype().size_bytes();
                    self.buffers
                        .push((out.dtype(), Shape::from_slice(shape), bytes));
                    call.writes.push(self.buffers.len() - 1);
                    call.pointers.push((call.words.len(), loc));
                    push_row_major(&mut call.words, std::ptr::null(), shape);
                    self.places[*slot] = Some(Place::At(loc));
                }
                if call.words.len() + crate::calling::TRAILER_WORDS != call_words(&k.kernel) {
                    return None;
                }
                self.recorded.push(Recorded::Kernel(call));
            }
            (Class::View, _) => {
                // Its data lies in its input's, at a byte offset.
                let (x, a) = (args.first()?, step.args.first()?);
                let from = loc_of(&self.places, a, x)?;
                for (out, slot) in outs.iter().zip(&step.outputs) {
                    let moved = data_ptr(out).0 as i64 - data_ptr(x).0 as i64;
                    let loc = Loc {
                        root: from.root,
                        offset: from.offset + moved,
                    };
                    self.places[*slot] = Some(Place::At(loc));
                }
            }
            (Class::Kernel | Class::Other, _) => {
                let mut sources = smallvec::SmallVec::new();
                for a in &step.args {
                    sources.push(match a {
                        Arg::Const(_) => Source::Const,
                        Arg::Slot { slot, last } => match self.places[*slot]? {
                            Place::Input(j) => Source::Input(j),
                            Place::Held(h) => Source::Held { h, last: *last },
                            Place::At(Loc {
                                root: Root::Buffer(b),
                                offset: 0,
                            }) => {
                                self.whole.push(b);
                                Source::Buffer(b)
                            }
                            Place::At(_) => return None,
                        },
                    });
                }
                let mut results = smallvec::SmallVec::new();
                for slot in &step.outputs {
                    results.push(self.held);
                    self.places[*slot] = Some(Place::Held(self.held));
                    self.held += 1;
                }
                self.recorded.push(Recorded::Other {
                    step: i,
                    args: sources,
                    results,
                });
            }
        }
        Some(())
    }

    /// The replay of the recorded call, unless it failed or an output is a view.
    fn finish(self, plan: &Plan, keyed: Vec<bool>) -> Option<Replay> {
        if self.failed {
            return None;
        }
        // The outputs' buffers are allocated per call; the others live in the scratch
        // memory.
        let mut homes: Vec<Option<Home>> = (0..self.buffers.len()).map(|_| None).collect();
        let mut outputs = Vec::new();
        let mut allocate = |b: usize, homes: &mut Vec<Option<Home>>| {
            if homes[b].is_none() {
                homes[b] = Some(Home::Output(outputs.len()));
                let (dtype, shape, _) = &self.buffers[b];
                let dim = IxDyn(shape);
                outputs.push(FreshOutput {
                    len: shape.iter().product(),
                    dtype: *dtype,
                    strides: ndarray::Dimension::default_strides(&dim),
                    dim,
                });
            }
            match homes[b] {
                Some(Home::Output(k)) => Some(k),
                _ => None,
            }
        };
        for b in &self.whole {
            allocate(*b, &mut homes)?;
        }
        let mut results = Vec::new();
        for (n, o) in plan.outputs.iter().enumerate() {
            let Out::Slot { slot, .. } = o else {
                if let Out::Const(d) = o {
                    results.push(Result_::Const(d.clone()));
                }
                continue;
            };
            let last = !plan.outputs[n + 1..]
                .iter()
                .any(|p| matches!(p, Out::Slot { slot: s, .. } if s == slot));
            results.push(match self.places[*slot]? {
                Place::Input(j) => Result_::Input(j),
                Place::Held(h) => Result_::Held { h, last },
                Place::At(Loc {
                    root: Root::Buffer(b),
                    offset: 0,
                }) => Result_::Output {
                    k: allocate(b, &mut homes)?,
                    last,
                },
                Place::At(_) => return None,
            });
        }
        const ALIGN: usize = 64;
        let mut used = 0;
        let homes: Vec<Home> = homes
            .into_iter()
            .zip(&self.buffers)
            .map(|(home, (_, _, bytes))| {
                home.unwrap_or_else(|| {
                    let at = used;
                    used += bytes.div_ceil(ALIGN) * ALIGN;
                    Home::Scratch(at)
                })
            })
            .collect();
        let scratch_words = self
            .recorded
            .iter()
            .filter_map(|r| match r {
                Recorded::Kernel(c) => match &plan.steps[c.step].action {
                    Action::Kernel(k) => Some(k.compiled.scratch_words),
                    _ => None,
                },
                Recorded::Other { .. } => None,
            })
            .max()
            .unwrap_or(0);
        let results_are_outputs = results.len() == outputs.len()
            && results
                .iter()
                .enumerate()
                .all(|(n, r)| matches!(r, Result_::Output { k, .. } if *k == n));
        // Kernels only, writing the outputs in the results' order: results made as written.
        let mut written = Vec::new();
        for r in &self.recorded {
            match r {
                Recorded::Kernel(call) => written.extend(
                    call.writes
                        .iter()
                        .filter_map(|b| matches!(homes[*b], Home::Output(_)).then_some(*b)),
                ),
                Recorded::Other { .. } => written.push(usize::MAX),
            }
        }
        let results_as_written = results_are_outputs
            && written.len() == outputs.len()
            && written
                .iter()
                .enumerate()
                .all(|(n, b)| matches!(homes.get(*b), Some(Home::Output(k)) if *k == n));
        let mut replay = Replay {
            key: self.key,
            keyed,
            recorded: self.recorded,
            homes,
            outputs,
            results,
            results_are_outputs,
            results_as_written,
            held: self.held,
            scratch: vec![0u64; (used + ALIGN) / 8],
            kernel_scratch: vec![0.0; scratch_words],
            slot: Box::default(),
        };
        for r in &mut replay.recorded {
            if let Recorded::Kernel(call) = r {
                push_trailer(
                    &mut call.words,
                    replay.kernel_scratch.as_mut_ptr(),
                    replay.slot.get(),
                );
            }
        }
        Some(replay)
    }
}

/// A buffer a kernel writes: a graph output (allocated per call and returned), or an
/// intermediate in the replay's own memory at a byte offset.
enum Home {
    Output(usize),
    Scratch(usize),
}

/// A buffer allocated per call and returned (a small kernel's output): its number of
/// elements, dtype, shape and (row-major) strides.
struct FreshOutput {
    len: usize,
    dtype: DType,
    dim: IxDyn,
    strides: IxDyn,
}

/// A recorded call.
struct Replay {
    /// Per keyed input: its dtype, rank, sizes and strides.
    key: Vec<i64>,
    /// Per input: whether kernels or views read it (its layout is in the key).
    keyed: Vec<bool>,
    recorded: Vec<Recorded>,
    /// Per buffer: where it lives.
    homes: Vec<Home>,
    /// The graph outputs' buffers.
    outputs: Vec<FreshOutput>,
    results: Vec<Result_>,
    /// Whether the results are the outputs' buffers in order, each once.
    results_are_outputs: bool,
    /// Whether, moreover, only kernels run and they write the outputs in that order.
    results_as_written: bool,
    /// How many values other steps give.
    held: usize,
    /// The intermediates' memory (8-byte words; buffers start 64-byte aligned).
    scratch: Vec<u64>,
    /// The kernels' scratch memory and error slot, whose pointers end every call's
    /// words.
    kernel_scratch: Vec<f64>,
    /// Written by kernels through the pointer in the words, read here after a failure.
    slot: Box<std::cell::UnsafeCell<ErrorSlot>>,
}

/// A plan's recorded call, and how many recordings it made.
pub(super) struct ReplayState {
    /// Which inputs key a replay (`replayable`).
    keyed: Vec<bool>,
    replay: Option<Replay>,
    recordings: u32,
}

impl ReplayState {
    /// The state of a plan whose calls can be replayed (`replayable`).
    pub(super) fn new(keyed: Vec<bool>) -> ReplayState {
        ReplayState {
            keyed,
            replay: None,
            recordings: 0,
        }
    }

    /// The call by the recorded replay, when `inputs` have its layout.
    pub(super) fn replay(
        &mut self,
        plan: &Plan,
        inputs: &[TensorData],
        pool: &BufferPool,
    ) -> Option<Result<Vec<TensorData>, RuntimeError>> {
        let replay = self.replay.as_mut()?;
        layouts_match(&replay.key, &replay.keyed, inputs).then(|| replay.run(plan, inputs, pool))
    }

    /// The call by the recorded replay, when every input keys it and `inputs` have its
    /// layout: then they also fit the signature the recorded call's inputs were checked
    /// against (dtypes, ranks and sizes are in the key).
    pub(super) fn replay_fully_keyed(
        &mut self,
        plan: &Plan,
        inputs: &[TensorData],
        pool: &BufferPool,
    ) -> Option<Result<Vec<TensorData>, RuntimeError>> {
        if !self.keyed.iter().all(|k| *k) {
            return None;
        }
        self.replay(plan, inputs, pool)
    }

    /// A recorder for a call on `inputs`, while recordings remain.
    pub(super) fn recorder(&mut self, plan: &Plan, inputs: &[TensorData]) -> Option<Recorder> {
        if self.recordings >= MAX_RECORDINGS || inputs.len() != self.keyed.len() {
            return None;
        }
        self.recordings += 1;
        let mut places = vec![None; plan.slots];
        let mut key = Vec::new();
        for (j, ((slot, value), keyed)) in
            plan.inputs.iter().zip(inputs).zip(&self.keyed).enumerate()
        {
            if *keyed {
                if value.is_sparse() {
                    return None;
                }
                recipe::push_layout(&mut key, value);
            }
            places[*slot] = Some(Place::Input(j));
        }
        Some(Recorder {
            key,
            places,
            recorded: Vec::new(),
            buffers: Vec::new(),
            held: 0,
            whole: Vec::new(),
            failed: false,
        })
    }

    /// Keeps the replay `recorder` made of a call that succeeded.
    pub(super) fn keep(&mut self, plan: &Plan, recorder: Recorder) {
        if let Some(replay) = recorder.finish(plan, self.keyed.clone()) {
            self.replay = Some(replay);
        }
    }
}

impl Replay {
    /// The call on `inputs`, whose keyed layouts are the recorded ones.
    fn run(
        &mut self,
        plan: &Plan,
        inputs: &[TensorData],
        pool: &BufferPool,
    ) -> Result<Vec<TensorData>, RuntimeError> {
        let fg = &plan.fgraph;
        if inputs.len() != self.keyed.len() {
            return Err(RuntimeError::Internal(
                "a replay got another number of inputs than it recorded".into(),
            ));
        }
        // The buffers that become values: allocated first, values once written.
        let mut fresh: smallvec::SmallVec<[Option<FreshMemory>; 2]> = smallvec::SmallVec::new();
        let mut output_ptrs: smallvec::SmallVec<[i64; 2]> = smallvec::SmallVec::new();
        for out in &self.outputs {
            let mut memory = FreshMemory::small(out.dtype, out.len);
            output_ptrs.push(memory.ptr() as i64);
            fresh.push(Some(memory));
        }
        // The results, when made as written; else the outputs by number (a vector of
        // the results' size, collected into them in place).
        let (mut written, mut made): (Vec<TensorData>, Vec<Option<TensorData>>) =
            if self.results_as_written {
                (Vec::with_capacity(fresh.len()), Vec::new())
            } else {
                let mut made = Vec::with_capacity(fresh.len());
                made.resize_with(fresh.len(), || None);
                (Vec::new(), made)
            };
        let scratch = (self.scratch.as_mut_ptr() as usize).div_ceil(64) * 64;
        let mut held: Vec<Option<TensorData>> = Vec::new();
        held.resize_with(self.held, || None);
        let missing = || RuntimeError::Internal("a replayed value is missing".into());
        let Replay {
            recorded,
            homes,
            slot,
            ..
        } = self;
        for r in recorded {
            let call = match r {
                Recorded::Kernel(call) => call,
                Recorded::Other {
                    step,
                    args,
                    results,
                } => {
                    let step = &plan.steps[*step];
                    let mut values: smallvec::SmallVec<[TensorData; 4]> = smallvec::SmallVec::new();
                    for (source, a) in args.iter().zip(&step.args) {
                        values.push(match (source, a) {
                            (Source::Input(j), _) => inputs[*j].clone(),
                            (Source::Held { h, last: true }, _) => {
                                held[*h].take().ok_or_else(missing)?
                            }
                            (Source::Held { h, last: false }, _) => {
                                held[*h].clone().ok_or_else(missing)?
                            }
                            (Source::Buffer(b), _) => match homes[*b] {
                                Home::Output(k) => made[k].clone().ok_or_else(missing)?,
                                Home::Scratch(_) => return Err(missing()),
                            },
                            (Source::Const, Arg::Const(d)) => d.clone(),
                            (Source::Const, Arg::Slot { .. }) => return Err(missing()),
                        });
                    }
                    let outs: Values = plan.run_action(step, &mut values, pool)?;
                    for (value, h) in outs.into_iter().zip(results.iter()) {
                        held[*h] = Some(value);
                    }
                    continue;
                }
            };
            let step = &plan.steps[call.step];
            let Action::Kernel(k) = &step.action else {
                return Err(RuntimeError::Internal(
                    "a replayed call's step is not a kernel".into(),
                ));
            };
            for (at, loc) in &call.pointers {
                let base = match loc.root {
                    Root::Input(j) => data_ptr(&inputs[j]).0 as i64,
                    Root::Const(p) => p,
                    Root::Buffer(b) => match homes[b] {
                        Home::Output(k) => output_ptrs[k],
                        Home::Scratch(at) => (scratch + at) as i64,
                    },
                };
                call.words[*at] = base + loc.offset;
            }
            // SAFETY: the keyed inputs have the recorded dtypes, shapes and strides, so
            // every view offset and every size and stride in the words is the recorded
            // call's, which addressed only memory of its values; the written buffers are
            // fresh or hold the recorded bytes, 64-byte aligned inside `scratch` (a
            // buffer made a value stays where it was written). This replay holds that
            // memory exclusively (`&mut self`), as it does the kernel scratch memory (as
            // large as the largest kernel's) and the error slot of the words' trailer.
            let status = unsafe { k.compiled.call(&call.words) };
            if status != 0 {
                // SAFETY: the kernel has returned; nothing else writes the slot, and no
                // other reference to it lives (the replay is held by `&mut self`).
                let values = unsafe { &*slot.get() };
                return Err(in_node(fg, step, kernel_failure(k, status, values)));
            }
            for b in &call.writes {
                if let Home::Output(k) = homes[*b] {
                    let memory = fresh[k].take().ok_or_else(missing)?;
                    // SAFETY: the kernel ran to completion and wrote every element of the
                    // memory allocated for the recorded shape.
                    let out = &self.outputs[k];
                    let value = unsafe { memory.into_value(&out.dim, &out.strides) };
                    match made.get_mut(k) {
                        Some(m) => *m = Some(value),
                        None => written.push(value),
                    }
                }
            }
        }
        if self.results_as_written {
            return Ok(written);
        }
        if self.results_are_outputs {
            return made.into_iter().map(|m| m.ok_or_else(missing)).collect();
        }
        let mut results = Vec::with_capacity(self.results.len());
        for r in &self.results {
            results.push(match r {
                Result_::Output { k, last: true } => made[*k].take().ok_or_else(missing)?,
                Result_::Output { k, last: false } => made[*k].clone().ok_or_else(missing)?,
                Result_::Held { h, last: true } => held[*h].take().ok_or_else(missing)?,
                Result_::Held { h, last: false } => held[*h].clone().ok_or_else(missing)?,
                Result_::Input(j) => inputs[*j].clone(),
                Result_::Const(d) => d.clone(),
            });
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_layouts_apart() {
        let a: TensorData = ndarray::array![[1.0, 2.0], [3.0, 4.0]].into_dyn().into();
        let t = TensorData::from_array(ndarray::array![[1.0, 2.0], [3.0, 4.0]].reversed_axes());
        let mut key = Vec::new();
        recipe::push_layout(&mut key, &a);
        let one = [true];
        assert!(layouts_match(&key, &one, std::slice::from_ref(&a)));
        assert!(
            !layouts_match(&key, &one, std::slice::from_ref(&t)),
            "strides differ"
        );
        let f32s: TensorData = ndarray::array![[1.0f32, 2.0], [3.0, 4.0]].into_dyn().into();
        assert!(!layouts_match(&key, &one, &[f32s]), "dtypes differ");
        assert!(
            !layouts_match(&key, &one, &[a.clone(), a.clone()]),
            "one input more"
        );
        // An input only other steps read is not in the key.
        assert!(layouts_match(&key, &[true, false], &[a, t]));
    }
}

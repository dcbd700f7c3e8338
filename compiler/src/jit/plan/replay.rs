//! Replays of small calls. A plan whose steps are all memoizable kernels (`recipe`) and
//! views by constant indices records, on a call whose kernels are all small, where each
//! value lives (an input or a constant at a byte offset, or a buffer a kernel writes)
//! and the argument words of every kernel call. The next call whose inputs have the same
//! dtypes, shapes and strides only calls the kernels, with the data pointers filled into
//! those words: no shape rules, no views made, no value table; intermediates live in
//! memory the replay keeps, and only the graph's outputs are allocated.
//!
//! Why it holds: every shape, stride and view offset in a recorded call follows from the
//! inputs' layout alone (the kernels' output shapes by their shape rules, the views by
//! constant indices), so equal layouts give equal words; kernels still check sizes and
//! report their errors as in any call.

use super::*;

/// Calls that record again after their inputs' layout changed, at most; past it the
/// last recording stays and other layouts take the general path.
const MAX_RECORDINGS: u32 = 16;

/// Where a value's data starts: an input's or a constant's data pointer, or a buffer the
/// call's kernels write, moved by `offset` bytes (views).
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

/// A buffer a kernel writes: a graph output (allocated per call and returned), or an
/// intermediate in the replay's own memory at a byte offset.
enum Home {
    Output(usize),
    Scratch(usize),
}

/// One kernel call: its step, its words, and where each data pointer goes in them.
struct KernelCall {
    step: usize,
    words: Vec<i64>,
    pointers: smallvec::SmallVec<[(usize, Loc); 6]>,
}

/// A graph output of a replayed call.
enum Result_ {
    /// The `k`th allocated output; `last`: no later output returns it too.
    Output {
        k: usize,
        last: bool,
    },
    Input(usize),
    Const(TensorData),
}

/// A recorded call.
struct Replay {
    /// Per input: its dtype, rank, sizes and strides.
    key: Vec<i64>,
    /// How many inputs the key describes.
    inputs: usize,
    calls: Vec<KernelCall>,
    /// Per buffer: where it lives.
    homes: Vec<Home>,
    /// The graph outputs' buffers: the writing step, dtype and shape.
    outputs: Vec<(usize, DType, IxDyn)>,
    results: Vec<Result_>,
    /// Whether the results are the outputs' buffers in order, each once.
    results_are_outputs: bool,
    /// The intermediates' memory (8-byte words; buffers start 64-byte aligned).
    scratch: Vec<u64>,
    /// The kernels' scratch memory and error slot, whose pointers end every call's
    /// words.
    kernel_scratch: Vec<f64>,
    slot: Box<ErrorSlot>,
}

/// A plan's recorded call, and how many recordings it made.
#[derive(Default)]
pub(super) struct ReplayState {
    replay: Option<Replay>,
    recordings: u32,
}

/// Whether `plan` can be replayed: every step a memoizable kernel or a view by constant
/// indices (DimShuffle, basic Subtensor), no output a view, no input twice.
pub(super) fn replayable(plan: &Plan) -> bool {
    let steps_ok = plan.steps.iter().all(|s| match &s.action {
        Action::Kernel(k) => k.recipe.is_some(),
        Action::View(_) => {
            let constant_indices = s.args[1..].iter().all(|a| matches!(a, Arg::Const(_)));
            match plan.fgraph.node(s.node).map(|e| &e.op) {
                Some(Op::DimShuffle(_)) => true,
                Some(Op::Subtensor(_)) => constant_indices,
                _ => false,
            }
        }
        Action::Call(_)
        | Action::Scan(..)
        | Action::NativeScan(_)
        | Action::IfElse(..)
        | Action::Blockwise(_)
        | Action::Library(_)
        | Action::RowPass(_)
        | Action::Interpreted(_) => false,
    });
    let view_outputs = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::View(_)))
        .flat_map(|s| &s.outputs);
    let outputs_ok = view_outputs.into_iter().all(|v| {
        !plan
            .outputs
            .iter()
            .any(|o| matches!(o, Out::Slot { slot, .. } if slot == v))
    });
    let mut inputs = plan.inputs.clone();
    inputs.sort_unstable();
    inputs.dedup();
    steps_ok && outputs_ok && inputs.len() == plan.inputs.len()
}

/// Appends `a`'s dtype and layout to a key.
fn push_layout(key: &mut Vec<i64>, a: &TensorData) {
    let (_, shape, strides) = data_ptr(a);
    key.extend([a.dtype() as i64, shape.len() as i64]);
    key.extend(shape.iter().map(|s| *s as i64));
    key.extend(strides.iter().map(|s| *s as i64));
}

/// Whether `inputs` have the dtypes and layouts of `key`.
fn layouts_match(key: &[i64], inputs: &[TensorData]) -> bool {
    let mut at = 0;
    for a in inputs {
        if a.is_sparse() {
            return false;
        }
        let (_, shape, strides) = data_ptr(a);
        let rank = shape.len();
        let Some(part) = key.get(at..at + 2 + 2 * rank) else {
            return false;
        };
        let same = part[0] == a.dtype() as i64
            && part[1] == rank as i64
            && part[2..2 + rank]
                .iter()
                .zip(shape)
                .all(|(k, s)| *k == *s as i64)
            && part[2 + rank..]
                .iter()
                .zip(strides)
                .all(|(k, s)| *k == *s as i64);
        if !same {
            return false;
        }
        at += 2 + 2 * rank;
    }
    at == key.len()
}

impl ReplayState {
    /// The call by the recorded replay when `inputs` have its layout; else a recording
    /// call while recordings remain. `None`: the general path runs the call.
    pub(super) fn run(
        &mut self,
        plan: &Plan,
        inputs: &[TensorData],
        pool: &BufferPool,
    ) -> Option<Result<Vec<TensorData>, RuntimeError>> {
        if let Some(replay) = &mut self.replay {
            if layouts_match(&replay.key, inputs) {
                return Some(replay.run(plan, inputs));
            }
        }
        if self.recordings >= MAX_RECORDINGS {
            return None;
        }
        self.recordings += 1;
        match record(plan, inputs, pool) {
            Ok(Some((replay, results))) => {
                self.replay = Some(replay);
                Some(Ok(results))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Runs `plan` on `inputs` and records the call: the replay and the call's results, or
/// `None` as soon as a kernel is not small (the general path runs the call; the steps
/// done so far were small).
fn record(
    plan: &Plan,
    inputs: &[TensorData],
    pool: &BufferPool,
) -> Result<Option<(Replay, Vec<TensorData>)>, RuntimeError> {
    let fg = &plan.fgraph;
    let mut values: Vec<Option<(TensorData, Loc)>> = vec![None; plan.slots];
    let mut key = Vec::new();
    for (j, (slot, value)) in plan.inputs.iter().zip(inputs).enumerate() {
        if value.is_sparse() {
            return Ok(None);
        }
        push_layout(&mut key, value);
        let loc = Loc {
            root: Root::Input(j),
            offset: 0,
        };
        values[*slot] = Some((value.clone(), loc));
    }
    let missing = || RuntimeError::Internal("a value the plan needs is missing".into());
    let mut calls = Vec::new();
    // Per buffer: the writing step, dtype, shape and bytes.
    let mut buffers: Vec<(usize, DType, Shape, usize)> = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let mut args: smallvec::SmallVec<[TensorData; 4]> = smallvec::SmallVec::new();
        let mut locs: smallvec::SmallVec<[Loc; 4]> = smallvec::SmallVec::new();
        for a in &step.args {
            let (value, loc) = match a {
                Arg::Slot { slot, .. } => values[*slot].clone().ok_or_else(missing)?,
                Arg::Const(d) => {
                    let root = Root::Const(data_ptr(d).0 as i64);
                    (d.clone(), Loc { root, offset: 0 })
                }
            };
            args.push(value);
            locs.push(loc);
        }
        let outs = match &step.action {
            Action::Kernel(k) => {
                let space = space(k, &args).map_err(|e| in_node(fg, step, e))?;
                let small = space.as_ref().is_some_and(|s| {
                    let n = elements_of(&s.full);
                    n > 0 && n < recipe::RECIPE_MAX_ELEMENTS
                });
                let (Some(space), true) = (space, small) else {
                    return Ok(None);
                };
                if check_dtypes(k, &args).is_err() {
                    return Ok(None);
                }
                let outs = run_kernel(fg, step.node, k, &mut args, pool)
                    .map_err(|e| in_node(fg, step, e))?;
                let mut call = KernelCall {
                    step: i,
                    words: Vec::new(),
                    pointers: smallvec::SmallVec::new(),
                };
                for (a, loc) in args.iter().zip(&locs) {
                    let (_, shape, strides) = data_ptr(a);
                    call.pointers.push((call.words.len(), *loc));
                    push_view(&mut call.words, std::ptr::null(), shape, strides);
                }
                for (full, (out, slot)) in k.out_full.iter().zip(outs.iter().zip(&step.outputs)) {
                    let shape = space.output_shape(*full);
                    let (_, got, _) = data_ptr(out);
                    if got != shape {
                        return Ok(None);
                    }
                    let loc = Loc {
                        root: Root::Buffer(buffers.len()),
                        offset: 0,
                    };
                    let bytes = elements_of(shape) * out.dtype().size_bytes();
                    buffers.push((i, out.dtype(), Shape::from_slice(shape), bytes));
                    call.pointers.push((call.words.len(), loc));
                    push_row_major(&mut call.words, std::ptr::null(), shape);
                    values[*slot] = Some((out.clone(), loc));
                }
                if call.words.len() + crate::calling::TRAILER_WORDS != call_words(&k.kernel) {
                    return Ok(None);
                }
                calls.push(call);
                continue;
            }
            Action::View(name) => {
                run_view(fg, step.node, name, &args).map_err(|e| in_node(fg, step, e))?
            }
            _ => return Ok(None),
        };
        // A view: its data lies in its input's at a byte offset.
        let (Some(x), Some(x_loc)) = (args.first(), locs.first()) else {
            return Ok(None);
        };
        for (out, slot) in outs.into_iter().zip(&step.outputs) {
            let moved = data_ptr(&out).0 as i64 - data_ptr(x).0 as i64;
            let loc = Loc {
                root: x_loc.root,
                offset: x_loc.offset + moved,
            };
            values[*slot] = Some((out, loc));
        }
    }
    // The outputs' buffers are allocated per call; the others live in the scratch memory.
    let mut homes: Vec<Option<Home>> = (0..buffers.len()).map(|_| None).collect();
    let mut outputs = Vec::new();
    let mut results = Vec::new();
    let mut returned = Vec::new();
    for (n, o) in plan.outputs.iter().enumerate() {
        let (value, result) = match o {
            Out::Const(d) => (d.clone(), Result_::Const(d.clone())),
            Out::Slot { slot, .. } => {
                let (value, loc) = values[*slot].clone().ok_or_else(missing)?;
                let result = match loc {
                    Loc {
                        root: Root::Input(j),
                        offset: 0,
                    } => Result_::Input(j),
                    Loc {
                        root: Root::Buffer(b),
                        offset: 0,
                    } => {
                        if homes[b].is_none() {
                            homes[b] = Some(Home::Output(outputs.len()));
                            let (step, dtype, shape, _) = &buffers[b];
                            outputs.push((*step, *dtype, IxDyn(shape)));
                        }
                        let Some(Home::Output(k)) = homes[b] else {
                            return Ok(None);
                        };
                        let later = plan.outputs[n + 1..]
                            .iter()
                            .any(|p| matches!(p, Out::Slot { slot: s, .. } if s == slot));
                        Result_::Output { k, last: !later }
                    }
                    _ => return Ok(None),
                };
                (value, result)
            }
        };
        returned.push(value);
        results.push(result);
    }
    const ALIGN: usize = 64;
    let mut used = 0;
    let homes: Vec<Home> = homes
        .into_iter()
        .zip(&buffers)
        .map(|(home, (_, _, _, bytes))| {
            home.unwrap_or_else(|| {
                let at = used;
                used += bytes.div_ceil(ALIGN) * ALIGN;
                Home::Scratch(at)
            })
        })
        .collect();
    let scratch_words = calls
        .iter()
        .filter_map(|c| match &plan.steps[c.step].action {
            Action::Kernel(k) => Some(k.compiled.scratch_words),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let results_are_outputs = results.len() == outputs.len()
        && results
            .iter()
            .enumerate()
            .all(|(n, r)| matches!(r, Result_::Output { k, .. } if *k == n));
    let mut replay = Replay {
        inputs: inputs.len(),
        results_are_outputs,
        key,
        calls,
        homes,
        outputs,
        results,
        scratch: vec![0u64; (used + ALIGN) / 8],
        kernel_scratch: vec![0.0; scratch_words],
        slot: Box::default(),
    };
    for call in &mut replay.calls {
        push_trailer(
            &mut call.words,
            replay.kernel_scratch.as_mut_ptr(),
            &mut *replay.slot,
        );
    }
    Ok(Some((replay, returned)))
}

/// A step's error, naming its node.
fn in_node(fg: &FunctionGraph, step: &Step, e: RuntimeError) -> RuntimeError {
    RuntimeError::InNode {
        node: tensorlift_ir::print::node_summary(fg, step.node),
        source: Box::new(e),
    }
}

impl Replay {
    /// The call on `inputs`, whose layout is the recorded one.
    fn run(&mut self, plan: &Plan, inputs: &[TensorData]) -> Result<Vec<TensorData>, RuntimeError> {
        let fg = &plan.fgraph;
        if inputs.len() != self.inputs {
            return Err(RuntimeError::Internal(
                "a replay got another number of inputs than it recorded".into(),
            ));
        }
        let mut outputs: smallvec::SmallVec<[Output; 2]> = smallvec::SmallVec::new();
        for (step, dtype, shape) in &self.outputs {
            let step = &plan.steps[*step];
            let name = match &step.action {
                Action::Kernel(k) => k.name.as_str(),
                _ => "kernel",
            };
            let fresh = Output::fresh_dim(name, *dtype, shape);
            outputs.push(fresh.map_err(|e| in_node(fg, step, e))?);
        }
        let base = self.scratch.as_mut_ptr() as usize;
        let scratch = base.div_ceil(64) * 64;
        let mut output_ptrs: smallvec::SmallVec<[i64; 2]> = smallvec::SmallVec::new();
        for o in &mut outputs {
            output_ptrs.push(o.ptr() as i64);
        }
        let Replay {
            calls, homes, slot, ..
        } = self;
        for call in calls {
            let step = &plan.steps[call.step];
            let Action::Kernel(k) = &step.action else {
                return Err(RuntimeError::Internal(
                    "a replayed call's step is not a kernel".into(),
                ));
            };
            let address = |loc: &Loc| {
                let base = match loc.root {
                    Root::Input(j) => data_ptr(&inputs[j]).0 as i64,
                    Root::Const(p) => p,
                    Root::Buffer(b) => match homes[b] {
                        Home::Output(k) => output_ptrs[k],
                        Home::Scratch(at) => (scratch + at) as i64,
                    },
                };
                base + loc.offset
            };
            for (at, loc) in &call.pointers {
                call.words[*at] = address(loc);
            }
            // SAFETY: the inputs have the recorded dtypes, shapes and strides (the key),
            // so every view offset and every size and stride in the words is the
            // recorded call's, which addressed only memory of its values; the outputs
            // are fresh and the scratch buffers hold the recorded bytes, 64-byte aligned
            // inside `scratch`. This replay holds that memory exclusively (`&mut self`),
            // as it does the kernel scratch memory (as large as the largest kernel's)
            // and the error slot of the words' trailer.
            let status = unsafe { k.compiled.call(&call.words) };
            if status != 0 {
                return Err(in_node(fg, step, kernel_failure(k, status, slot)));
            }
        }
        // SAFETY: the kernels writing the outputs ran to completion and wrote every
        // element.
        let made = outputs.into_iter().map(|o| unsafe { o.assume_init(&[]) });
        if self.results_are_outputs {
            return Ok(made.collect());
        }
        let mut made: smallvec::SmallVec<[Option<TensorData>; 2]> = made.map(Some).collect();
        let missing = || RuntimeError::Internal("a replayed output is missing".into());
        let mut results = Vec::with_capacity(self.results.len());
        for r in &self.results {
            results.push(match r {
                Result_::Output { k, last: true } => made[*k].take().ok_or_else(missing)?,
                Result_::Output { k, last: false } => made[*k].clone().ok_or_else(missing)?,
                Result_::Input(j) => inputs.get(*j).cloned().ok_or_else(missing)?,
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
        push_layout(&mut key, &a);
        assert!(layouts_match(&key, std::slice::from_ref(&a)));
        assert!(
            !layouts_match(&key, std::slice::from_ref(&t)),
            "strides differ"
        );
        let f32s: TensorData = ndarray::array![[1.0f32, 2.0], [3.0, 4.0]].into_dyn().into();
        assert!(!layouts_match(&key, &[f32s]), "dtypes differ");
        assert!(!layouts_match(&key, &[a.clone(), a]), "one input more");
    }
}

//! Scan in the reference interpreter (DESIGN §8): the body, prepared once per call as a
//! `Program`, run step after step on slices of the sequences (views, no copies), the
//! states' earlier values and the non-sequences.
//!
//! Owns: the step count of a call (`step_count`, shared with the JIT: the bound, the
//! sequences' lengths, which must agree, or neither for a while-scan), the order the
//! sequences are read in (`sequence_index`), the check that a step keeps each state's
//! shape, and the last values and traces a scan returns.

use std::collections::VecDeque;

use ndarray::{Axis, IxDyn};
use tensorlift_ir::ops::Scan;
use tensorlift_ir::{with_tensor_data, DType, Element, TensorData};

use crate::error::{Result, RuntimeError};
use crate::interpreter::Program;
use crate::shape_ops::scalar_int;
use crate::with_scalar_type;

/// How many steps a call runs: the bound `n_steps` and the sequences' lengths (less
/// their taps' span) must agree; `None` for a while-scan with neither (it runs until its
/// condition holds).
pub fn step_count(
    name: &str,
    scan: &Scan,
    n_steps: Option<&TensorData>,
    sequence_shapes: &[&[usize]],
) -> Result<Option<usize>> {
    // The step count and what set it (`None`: the bound; `Some(s)`: sequence s), the
    // message formatted only when a later one disagrees.
    let mut steps: Option<(usize, Option<usize>)> = match n_steps {
        Some(n) => {
            let v = scalar_int(name, "the step count", n)?;
            let v = usize::try_from(v).map_err(|_| {
                RuntimeError::op(
                    name,
                    format!("the step count is {v}; it must be non-negative"),
                )
            })?;
            Some((v, None))
        }
        None => None,
    };
    let describe = |s: usize| {
        let taps = &scan.sequence_taps[s];
        let len = sequence_shapes[s].first().copied().unwrap_or(0);
        format!("sequence {s} ({len} elements, taps {taps:?})")
    };
    for (s, (taps, shape)) in scan.sequence_taps.iter().zip(sequence_shapes).enumerate() {
        let span = (taps[taps.len() - 1] - taps[0]) as usize;
        let len = shape.first().copied().unwrap_or(0);
        if len < span {
            return Err(RuntimeError::op(
                name,
                format!("sequence {s} has {len} elements, fewer than its taps {taps:?} span"),
            ));
        }
        let n = len - span;
        match steps {
            Some((m, by)) if m != n => {
                let what = by.map_or_else(|| "the step count".to_string(), describe);
                return Err(RuntimeError::op(
                    name,
                    format!("{what} gives {m} steps, but {} gives {n}", describe(s)),
                ));
            }
            Some(_) => {}
            None => steps = Some((n, Some(s))),
        }
    }
    Ok(steps.map(|(n, _)| n))
}

/// The row of a sequence read at step `i` (in running order) of `steps` through `tap`.
pub fn sequence_index(scan: &Scan, taps: &[i64], tap: i64, i: usize, steps: usize) -> usize {
    let t = if scan.reverse { steps - 1 - i } else { i };
    (t as i64 + tap - taps[0]) as usize
}

/// Row `i` of `x` along axis 0, sharing its memory.
pub fn row(x: &TensorData, i: usize) -> TensorData {
    with_tensor_data!(x, a => Element::wrap(a.clone().index_axis_move(Axis(0), i)))
}

/// `rows` (each of `shape`) stacked along a new first axis; the memory limit applies.
pub fn stack(name: &str, dtype: DType, shape: &[usize], rows: &[TensorData]) -> Result<TensorData> {
    let mut full = vec![rows.len()];
    full.extend_from_slice(shape);
    crate::memory::check_output(name, dtype, &full)?;
    with_scalar_type!(dtype, T => {
        let views = rows
            .iter()
            .map(|r| r.as_array::<T>().ok_or_else(|| RuntimeError::Internal(format!("{name}: a trace row of another dtype"))))
            .collect::<Result<Vec<_>>>()?;
        if views.is_empty() {
            return Ok(TensorData::from_array(ndarray::ArrayD::<T>::default(IxDyn(&full))));
        }
        let stacked = ndarray::stack(Axis(0), &views)
            .map_err(|e| RuntimeError::Internal(format!("{name}: {e}")))?;
        Ok(TensorData::from_array(stacked))
    })
}

/// Checks that state `k`'s initial value is a block of the depth its taps need (a state
/// read only one step back starts from a value of its own shape: nothing to check).
pub fn check_initial_block(name: &str, scan: &Scan, k: usize, init: &TensorData) -> Result<()> {
    let depth = scan.depth(k);
    let block = tensorlift_ir::ops::scan::has_initial_block(&scan.state_taps[k]);
    if block && (init.ndim() == 0 || init.shape()[0] != depth) {
        return Err(RuntimeError::op(
            name,
            format!(
                "state {k}'s initial block has shape {:?}, but its taps {:?} need {depth} rows",
                init.shape(),
                scan.state_taps[k]
            ),
        ));
    }
    Ok(())
}

/// The earlier values of state `k` before the first step, oldest first, from its initial
/// value (or block).
pub fn initial_history(
    name: &str,
    scan: &Scan,
    k: usize,
    init: &TensorData,
) -> Result<VecDeque<TensorData>> {
    check_initial_block(name, scan, k, init)?;
    if !tensorlift_ir::ops::scan::has_initial_block(&scan.state_taps[k]) {
        return Ok(VecDeque::from([init.clone()]));
    }
    Ok((0..scan.depth(k)).map(|i| row(init, i)).collect())
}

/// Checks that a step's new value of state `k` has the state's dtype and shape.
pub fn check_state(
    name: &str,
    k: usize,
    step: usize,
    value: &TensorData,
    state: &TensorData,
) -> Result<()> {
    if value.dtype() != state.dtype() || value.shape() != state.shape() {
        return Err(RuntimeError::op(
            name,
            format!(
                "step {step} computes state {k} as {} of shape {:?}, but the state is {} of shape {:?}; a state keeps its shape",
                value.dtype(),
                value.shape(),
                state.dtype(),
                state.shape()
            ),
        ));
    }
    Ok(())
}

/// Runs a scan in the interpreter: its body as a `Program`.
pub fn eval_scan(name: &str, scan: &Scan, args: &[TensorData]) -> Result<Vec<TensorData>> {
    let body = Program::new(scan.body.graph().clone())?;
    run_scan(name, scan, args, |inputs| body.run(inputs))
}

/// Runs a scan whose body `body` runs (the interpreter's program, or a backend's compiled
/// form of it): the outputs are, per state, its last value and its trace (an empty
/// placeholder when not kept).
pub fn run_scan(
    name: &str,
    scan: &Scan,
    args: &[TensorData],
    mut body: impl FnMut(&[TensorData]) -> Result<Vec<TensorData>>,
) -> Result<Vec<TensorData>> {
    if args.len() != scan.first_non_sequence() + scan.n_non_sequences {
        return Err(RuntimeError::Internal(format!(
            "{name}: {} inputs",
            args.len()
        )));
    }
    let sequences = &args[scan.first_sequence()..scan.first_state()];
    let inits = &args[scan.first_state()..scan.first_non_sequence()];
    let non_sequences = &args[scan.first_non_sequence()..];
    let shapes: Vec<&[usize]> = sequences.iter().map(|s| s.shape()).collect();
    let bound = scan.bounded.then(|| &args[0]);
    let steps = step_count(name, scan, bound, &shapes)?;
    let mut history = (0..scan.n_states())
        .map(|k| initial_history(name, scan, k, &inits[k]))
        .collect::<Result<Vec<_>>>()?;
    let mut traces: Vec<Vec<TensorData>> = vec![Vec::new(); scan.n_states()];
    let mut inputs = Vec::new();
    let mut i = 0usize;
    while steps.is_none_or(|n| i < n) {
        inputs.clear();
        for (s, taps) in scan.sequence_taps.iter().enumerate() {
            for tap in taps {
                let at = sequence_index(scan, taps, *tap, i, steps.unwrap_or(0));
                inputs.push(row(&sequences[s], at));
            }
        }
        for (k, taps) in scan.state_taps.iter().enumerate() {
            let depth = history[k].len();
            for tap in taps {
                inputs.push(history[k][(depth as i64 + tap) as usize].clone());
            }
        }
        inputs.extend(non_sequences.iter().cloned());
        let outputs =
            body(&inputs).map_err(|e| RuntimeError::op(name, format!("at step {i}: {e}")))?;
        for k in 0..scan.n_states() {
            let last = &history[k][history[k].len() - 1];
            check_state(name, k, i, &outputs[k], last)?;
        }
        for (k, value) in outputs.iter().take(scan.n_states()).enumerate() {
            history[k].pop_front();
            history[k].push_back(value.clone());
            if scan.keep_trace[k] {
                traces[k].push(value.clone());
            }
        }
        i += 1;
        if scan.until && crate::scalar::is_true(&outputs[scan.n_states()]) {
            break;
        }
    }
    let mut result = Vec::with_capacity(2 * scan.n_states());
    for (k, trace) in traces.iter().enumerate() {
        let last = history[k][history[k].len() - 1].clone();
        let placeholder: &[TensorData] = &[];
        let rows = if scan.keep_trace[k] {
            trace.as_slice()
        } else {
            placeholder
        };
        let t = stack(name, last.dtype(), last.shape(), rows)?;
        result.push(last);
        result.push(t);
    }
    Ok(result)
}

//! Scan (DESIGN §8): a loop whose body is an inner graph, run step after step over
//! sequences, carrying states, for a fixed number of steps or until a condition holds.
//!
//! Owns: `Scan` (the body, the taps of every sequence and state, the non-sequences, the
//! step bound, the stop condition, the direction, which traces are stored), the layout of
//! its node's inputs and outputs and of its body's, and its type rule. The node's inputs
//! are `[n_steps]`, the sequences, the initial states, the non-sequences; its outputs are,
//! per state, `last` (the final state) then `trace` (the state after every step, steps
//! first). The body's inputs are, per sequence, one slice per tap, then per state one value
//! per tap, then the non-sequences; its outputs are the new states, then the condition.

use super::{InnerGraph, InputInfo};
use crate::error::{GraphError, Result};
use crate::types::TensorType;
use crate::DType;

/// A loop over an inner graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Scan {
    pub body: InnerGraph,
    /// Per sequence: the offsets read at each step (`[0]`: x[t]; `[0, 1]`: x[t], x[t+1]),
    /// ascending and distinct.
    pub sequence_taps: Vec<Vec<i64>>,
    /// Per state: the earlier states read at each step (`[-1]`: the previous one;
    /// `[-2, -1]`), ascending, distinct and negative. A state whose taps are `[-1]` starts
    /// from a value of its shape; any other from a block of `-taps[0]` such values (the
    /// last is the state just before the first step).
    pub state_taps: Vec<Vec<i64>>,
    pub n_non_sequences: usize,
    /// Whether input 0 is the step count (an int64 scalar).
    pub bounded: bool,
    /// Whether the body's last output is the condition that stops the loop after the step
    /// that computed it true (a while-scan).
    pub until: bool,
    /// Whether the sequences are walked from their end.
    pub reverse: bool,
    /// Per state: whether its trace is stored (a rewrite turns off traces nobody uses; their
    /// output is then an empty placeholder).
    pub keep_trace: Vec<bool>,
}

/// How a state's initial value relates to the state: the value itself, or a block of
/// earlier values (more taps than the one before).
pub fn has_initial_block(taps: &[i64]) -> bool {
    taps != [-1]
}

impl Scan {
    pub fn n_sequences(&self) -> usize {
        self.sequence_taps.len()
    }

    pub fn n_states(&self) -> usize {
        self.state_taps.len()
    }

    /// Where the sequences start among the node's inputs.
    pub fn first_sequence(&self) -> usize {
        self.bounded as usize
    }

    /// Where the initial states start among the node's inputs.
    pub fn first_state(&self) -> usize {
        self.first_sequence() + self.n_sequences()
    }

    /// Where the non-sequences start among the node's inputs.
    pub fn first_non_sequence(&self) -> usize {
        self.first_state() + self.n_states()
    }

    /// How many earlier states state `k` keeps (its deepest tap).
    pub fn depth(&self, k: usize) -> usize {
        self.state_taps[k]
            .first()
            .map_or(1, |t| t.unsigned_abs() as usize)
    }

    /// The state's type from its initial value's type.
    pub fn state_type(&self, k: usize, init: &TensorType) -> TensorType {
        if has_initial_block(&self.state_taps[k]) {
            TensorType::new(init.dtype, init.shape.get(1..).unwrap_or(&[]).to_vec())
        } else {
            init.clone()
        }
    }

    /// The output types for `inputs`, checked against the body: the step count an int
    /// scalar; sequences of rank ≥ 1 whose slices are the body's inputs; initial states
    /// (blocks) of the states' types; the body's new states of the states' dtypes and
    /// ranks with no static size contradicting them; the condition a scalar.
    pub(crate) fn infer(&self, name: &str, inputs: &[InputInfo]) -> Result<Vec<TensorType>> {
        let fail = |m: String| Err(GraphError::op(name, m));
        let body_inputs = self.body.input_types();
        let body_outputs = self.body.output_types();
        let expected_inputs = self.first_non_sequence() + self.n_non_sequences;
        if inputs.len() != expected_inputs {
            return fail(format!(
                "takes {expected_inputs} inputs, got {}",
                inputs.len()
            ));
        }
        let taps_in: usize = self.sequence_taps.iter().map(Vec::len).sum::<usize>()
            + self.state_taps.iter().map(Vec::len).sum::<usize>();
        if body_inputs.len() != taps_in + self.n_non_sequences
            || body_outputs.len() != self.n_states() + self.until as usize
            || self.keep_trace.len() != self.n_states()
        {
            return fail("its body does not match its sequences, states and taps".into());
        }
        for taps in &self.sequence_taps {
            if taps.is_empty() || taps.windows(2).any(|w| w[0] >= w[1]) {
                return fail(format!(
                    "sequence taps {taps:?} must be ascending and distinct"
                ));
            }
        }
        for taps in &self.state_taps {
            let negative = taps.iter().all(|t| *t < 0);
            if taps.is_empty() || !negative || taps.windows(2).any(|w| w[0] >= w[1]) {
                return fail(format!(
                    "state taps {taps:?} must be negative, ascending and distinct"
                ));
            }
        }
        if !self.bounded && self.n_sequences() == 0 && !self.until {
            return fail("has no step count, no sequence and no stop condition".into());
        }
        if self.bounded {
            let n = inputs[0].ty;
            if n.ndim() != 0 || !(n.dtype.is_int() || n.dtype == DType::Bool) {
                return fail(format!("the step count must be an integer scalar, got {n}"));
            }
        }
        // The step count the types know: a constant bound, or a sequence's static length.
        let mut steps: Option<usize> = if self.bounded {
            inputs[0].const_int().and_then(|v| usize::try_from(v).ok())
        } else {
            None
        };
        let mut body_in = body_inputs.iter();
        for (s, taps) in self.sequence_taps.iter().enumerate() {
            let seq = inputs[self.first_sequence() + s].ty;
            if seq.ndim() == 0 {
                return fail(format!(
                    "sequence {s} is a scalar; it must have a first axis"
                ));
            }
            let slice = TensorType::new(seq.dtype, seq.shape[1..].to_vec());
            for tap in taps {
                let Some(want) = body_in.next() else {
                    return fail("its body has too few inputs".into());
                };
                if !slice.is_subtype_of(want) {
                    return fail(format!(
                        "sequence {s} (tap {tap}) gives slices of type {slice}, but the body takes {want}"
                    ));
                }
            }
            let span = (taps[taps.len() - 1] - taps[0]) as usize;
            if let Some(len) = seq.shape[0] {
                let n = len.saturating_sub(span);
                steps = match steps {
                    Some(m) if m != n && !self.until => {
                        return fail(format!(
                            "sequence {s} has {len} elements, which give {n} steps, but the scan has {m}"
                        ))
                    }
                    Some(m) => Some(m.min(n)),
                    None => Some(n),
                };
            }
        }
        let mut state_types = Vec::with_capacity(self.n_states());
        for (k, taps) in self.state_taps.iter().enumerate() {
            let init = inputs[self.first_state() + k].ty;
            if has_initial_block(taps) {
                if init.ndim() == 0 {
                    return fail(format!(
                        "state {k} reads {} earlier steps: its initial value must be a block of them (one more axis)",
                        self.depth(k)
                    ));
                }
                if init.shape[0].is_some_and(|n| n != self.depth(k)) {
                    return fail(format!(
                        "state {k}'s initial block has {} rows, but its taps {taps:?} need {}",
                        init.shape[0].unwrap_or(0),
                        self.depth(k)
                    ));
                }
            }
            let ty = self.state_type(k, init);
            for _ in taps {
                let Some(want) = body_in.next() else {
                    return fail("its body has too few inputs".into());
                };
                if !ty.is_subtype_of(want) {
                    return fail(format!(
                        "state {k} is {ty}, but the body takes {want} for it"
                    ));
                }
            }
            let out = &body_outputs[k];
            let sizes_agree = out.ndim() == ty.ndim()
                && out
                    .shape
                    .iter()
                    .zip(&ty.shape)
                    .all(|(a, b)| a.zip(*b).is_none_or(|(a, b)| a == b));
            if out.dtype != ty.dtype || !sizes_agree {
                return fail(format!(
                    "state {k} is {ty}, but the step computes {out} for it; a state keeps its type"
                ));
            }
            state_types.push(ty);
        }
        for j in 0..self.n_non_sequences {
            let x = inputs[self.first_non_sequence() + j].ty;
            let Some(want) = body_in.next() else {
                return fail("its body has too few inputs".into());
            };
            if !x.is_subtype_of(want) {
                return fail(format!(
                    "non-sequence {j} is {x}, but the body takes {want}"
                ));
            }
        }
        if self.until {
            let cond = &body_outputs[self.n_states()];
            if cond.ndim() != 0 {
                return fail(format!("the stop condition must be a scalar, got {cond}"));
            }
        }
        let trace_steps = if self.until { None } else { steps };
        let mut out = Vec::with_capacity(2 * self.n_states());
        for ty in state_types {
            let mut trace_shape = vec![trace_steps];
            trace_shape.extend(ty.shape.iter().copied());
            let trace = TensorType::new(ty.dtype, trace_shape);
            out.push(ty);
            out.push(trace);
        }
        Ok(out)
    }
}

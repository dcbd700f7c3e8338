//! The pullback of a fixed-length Scan: backpropagation through time as a reverse scan.
//!
//! The states entering each step are the initial state followed by the trace without its
//! last row (so the forward trace is kept even when the user did not ask for it). The
//! reverse scan walks those, the sequences and the trace's gradient from the end, carries
//! each float state's adjoint (starting from the last value's gradient, the trace's
//! gradient at a step added as the step is reached), rebuilds the step from the body and
//! pulls the adjoint back through it: into the state before the step (the next adjoint),
//! the sequences' slices (a trace, reversed at the end) and the non-sequences (summed).

use super::{grad_with, zeros_like, Disconnected, GradOptions, InputGrad};
use crate::api::index::Idx;
use crate::api::scan::scan;
use crate::api::shape::{alloc, concatenate};
use crate::api::Operand;
use crate::error::Result;
use crate::ops::Scan;
use crate::var::Var;

/// `Undefined` for every input, with `reason`.
fn undefined(n: usize, reason: &str) -> Vec<InputGrad> {
    vec![InputGrad::Undefined(reason.to_string()); n]
}

/// Zeros of a slice of `seq` along its first axis.
fn zero_slice(seq: &Var) -> Var {
    let shape: Vec<Operand> = (1..seq.ndim() as isize)
        .map(|d| seq.shape_i(d).into())
        .collect();
    alloc(Var::literal(0.0, seq.dtype()), &shape)
}

/// `v` without its last row.
fn drop_last(v: &Var) -> Var {
    let mut index = vec![Idx::slice(None, Some(Operand::from(-1i64)), None)];
    index.extend((1..v.ndim()).map(|_| Idx::full()));
    v.get(index)
}

/// `v` reversed along its first axis.
fn reversed(v: &Var) -> Var {
    let mut index = vec![Idx::full().with_step(-1i64)];
    index.extend((1..v.ndim()).map(|_| Idx::full()));
    v.get(index)
}

pub(super) fn scan_pullback(
    scan_op: &Scan,
    inputs: &[Var],
    outputs: &[Var],
    output_grads: &[Option<Var>],
) -> Result<Vec<InputGrad>> {
    if scan_op.until {
        return Ok(undefined(
            inputs.len(),
            "a while-scan (until) runs a number of steps only the run knows; its gradient \
             needs a fixed step count",
        ));
    }
    if scan_op.reverse {
        return Ok(undefined(
            inputs.len(),
            "the gradient of a reverse scan is not implemented yet",
        ));
    }
    let simple_taps = scan_op.sequence_taps.iter().all(|t| t == &[0])
        && scan_op.state_taps.iter().all(|t| t == &[-1]);
    if !simple_taps {
        return Ok(undefined(
            inputs.len(),
            "the gradient of a scan with taps other than x[t] and state[t-1] is not \
             implemented yet",
        ));
    }
    if scan_op.keep_trace.iter().any(|k| !k) {
        return Ok(undefined(
            inputs.len(),
            "a rewrite dropped a trace the gradient needs; take gradients before compiling",
        ));
    }
    let (n_seq, n_states) = (scan_op.n_sequences(), scan_op.n_states());
    let seqs = &inputs[scan_op.first_sequence()..scan_op.first_state()];
    let inits = &inputs[scan_op.first_state()..scan_op.first_non_sequence()];
    let non_seqs = &inputs[scan_op.first_non_sequence()..];
    let float = |v: &Var| v.dtype().is_float();
    // The states entering each step: the initial one, then the trace but its last row.
    let entering: Vec<Var> = (0..n_states)
        .map(|k| {
            let stacked = concatenate(&[inits[k].expand_dims(0), outputs[2 * k + 1].clone()], 0);
            drop_last(&stacked)
        })
        .collect();
    let float_states: Vec<usize> = (0..n_states).filter(|k| float(&inits[*k])).collect();
    let float_seqs: Vec<usize> = (0..n_seq).filter(|q| float(&seqs[*q])).collect();
    let float_ns: Vec<usize> = (0..non_seqs.len())
        .filter(|p| float(&non_seqs[*p]))
        .collect();
    if float_states.is_empty() && float_seqs.is_empty() && float_ns.is_empty() {
        return Ok(vec![InputGrad::Disconnected; inputs.len()]);
    }
    let grad_or_zeros = |i: usize| -> Var {
        output_grads[i]
            .clone()
            .unwrap_or_else(|| zeros_like(&outputs[i]))
    };
    let last_grads: Vec<Var> = float_states.iter().map(|k| grad_or_zeros(2 * k)).collect();
    let trace_grads: Vec<Var> = float_states
        .iter()
        .map(|k| grad_or_zeros(2 * k + 1))
        .collect();
    // Sequences of the reverse scan: entering states, the forward sequences, the traces'
    // gradients. States: per float state its adjoint, per float non-sequence its summed
    // gradient, per float sequence its slice's gradient (read only through the trace).
    let mut sequences: Vec<&Var> = entering.iter().collect();
    sequences.extend(seqs.iter());
    sequences.extend(trace_grads.iter());
    let ns_zeros: Vec<Var> = float_ns.iter().map(|p| zeros_like(&non_seqs[*p])).collect();
    let seq_zeros: Vec<Var> = float_seqs.iter().map(|q| zero_slice(&seqs[*q])).collect();
    let mut initial: Vec<&Var> = last_grads.iter().collect();
    initial.extend(ns_zeros.iter());
    initial.extend(seq_zeros.iter());
    let body = &scan_op.body;
    let mut failure: Option<crate::error::GraphError> = None;
    let backward = scan(|s| {
        let step = || -> Result<Vec<Var>> {
            let entering_t: Vec<Var> = (0..n_states).map(|k| s.sequence(k)).collect();
            let seq_t: Vec<Var> = (0..n_seq).map(|q| s.sequence(n_states + q)).collect();
            // The body's inputs: sequence slices, then states, then non-sequences.
            let mut body_inputs: Vec<Var> = seq_t.clone();
            body_inputs.extend(entering_t.iter().cloned());
            body_inputs.extend(non_seqs.iter().cloned());
            let new_states = super::pullback::inline(body, &body_inputs)?;
            let known: Vec<(Var, Var)> = float_states
                .iter()
                .enumerate()
                .map(|(j, k)| {
                    let adjoint = s.state(j) + s.sequence(n_states + n_seq + j);
                    (new_states[*k].clone(), adjoint)
                })
                .collect();
            let mut wrt: Vec<&Var> = float_states.iter().map(|k| &entering_t[*k]).collect();
            wrt.extend(float_ns.iter().map(|p| &non_seqs[*p]));
            wrt.extend(float_seqs.iter().map(|q| &seq_t[*q]));
            let options = GradOptions {
                known_grads: known,
                disconnected: Disconnected::Zero,
                lazy: false,
            };
            let grads = grad_with(None, &wrt, &options)?
                .into_iter()
                .map(|g| {
                    g.ok_or_else(|| {
                        crate::error::GraphError::Internal(
                            "scan pullback: a gradient is missing".into(),
                        )
                    })
                })
                .collect::<Result<Vec<Var>>>()?;
            let mut grads = grads.into_iter();
            let mut next: Vec<Var> = Vec::new();
            for _ in &float_states {
                next.extend(grads.next());
            }
            for (j, _) in float_ns.iter().enumerate() {
                let acc = s.state(float_states.len() + j);
                next.extend(grads.next().map(|g| acc + g));
            }
            for _ in &float_seqs {
                next.extend(grads.next());
            }
            Ok(next)
        };
        match step() {
            Ok(next) => next,
            Err(e) => {
                failure = Some(e.clone());
                vec![Var::invalid(e); initial.len()]
            }
        }
    })
    .sequences(&sequences)
    .states(&initial)
    .reverse()
    .build();
    if let Some(e) = failure {
        return Err(e);
    }
    backward.check()?;
    let mut result = vec![InputGrad::Disconnected; inputs.len()];
    for (j, k) in float_states.iter().enumerate() {
        result[scan_op.first_state() + k] = InputGrad::Grad(backward.last(j));
    }
    for (j, p) in float_ns.iter().enumerate() {
        let g = backward.last(float_states.len() + j);
        result[scan_op.first_non_sequence() + p] = InputGrad::Grad(g);
    }
    for (j, q) in float_seqs.iter().enumerate() {
        let trace = backward.trace(float_states.len() + float_ns.len() + j);
        result[scan_op.first_sequence() + q] = InputGrad::Grad(reversed(&trace));
    }
    Ok(result)
}

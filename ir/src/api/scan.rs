//! `scan`: loops in the graph (DESIGN §8), built PyTensor's way from a closure that
//! computes one step from symbolic per-step values.
//!
//! Owns: the builder (`scan(step).sequences(..).states(..).n_steps(..)`), the per-step
//! values the closure sees (`Step`), turning the closure's graph into the scan's body (outer
//! variables it reads become non-sequences of their own), and `ScanOutputs`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{GraphError, Result};
use crate::fgraph::FunctionGraph;
use crate::ops::scan::{has_initial_block, Scan};
use crate::ops::{InnerGraph, Op};
use crate::types::TensorType;
use crate::var::{postorder, Var, VarKind};
use crate::DType;

/// The symbolic values of one step, given to the closure of `scan`.
pub struct Step {
    /// Per sequence, per tap: (tap, slice).
    sequences: Vec<Vec<(i64, Var)>>,
    /// Per state, per tap: (tap, value).
    states: Vec<Vec<(i64, Var)>>,
    non_sequences: Vec<Var>,
    until: RefCell<Option<Var>>,
}

fn missing(what: String) -> Var {
    Var::invalid(GraphError::op("Scan", what))
}

impl Step {
    /// Sequence `k` at this step (its first tap, `x[t]` unless given others).
    ///
    /// ```
    /// use tensorlift_ir::{scan, vector, DType};
    /// let xs = vector("xs", DType::Float64);
    /// // Running sum: the state plus x[t].
    /// let out = scan(|s| vec![s.state(0) + s.sequence(0)])
    ///     .sequences(&[&xs])
    ///     .states(&[&tensorlift_ir::constant(0.0)])
    ///     .build();
    /// assert_eq!(out.trace(0).ndim(), 1);
    /// ```
    pub fn sequence(&self, k: usize) -> Var {
        match self.sequences.get(k).and_then(|taps| taps.first()) {
            Some((_, v)) => v.clone(),
            None => missing(format!(
                "the step reads sequence {k}, which it does not have"
            )),
        }
    }

    /// Sequence `k` at offset `tap` from this step (`x[t + tap]`; the tap must be one the
    /// sequence was given with).
    ///
    /// ```
    /// use tensorlift_ir::{scan, vector, DType};
    /// let xs = vector("xs", DType::Float64);
    /// // Differences x[t+1] − x[t].
    /// let out = scan(|s| vec![s.sequence_at(0, 1) - s.sequence_at(0, 0)])
    ///     .sequence_taps(&xs, &[0, 1])
    ///     .build();
    /// assert_eq!(out.trace(0).ndim(), 1);
    /// ```
    pub fn sequence_at(&self, k: usize, tap: i64) -> Var {
        let found = self
            .sequences
            .get(k)
            .and_then(|taps| taps.iter().find(|(t, _)| *t == tap));
        match found {
            Some((_, v)) => v.clone(),
            None => missing(format!(
                "the step reads sequence {k} at tap {tap}, which it was not given"
            )),
        }
    }

    /// State `k` as of the step before (`x[t-1]`).
    ///
    /// ```
    /// use tensorlift_ir::{scan, vector, DType};
    /// let x0 = vector("x0", DType::Float64);
    /// let out = scan(|s| vec![s.state(0) * 0.5]).states(&[&x0]).n_steps(10).build();
    /// assert_eq!(out.last(0).ty(), x0.ty());
    /// ```
    pub fn state(&self, k: usize) -> Var {
        self.state_at(k, -1)
    }

    /// State `k` as of `-tap` steps before (`x[t-2]` is tap -2; the tap must be one the
    /// state was given with).
    ///
    /// ```
    /// use tensorlift_ir::{scan, tensor, DType};
    /// // Fibonacci: x[t] = x[t−1] + x[t−2], from a block of the two values before the first step.
    /// let block = tensor("block", DType::Int64, [Some(2)]);
    /// let out = scan(|s| vec![s.state_at(0, -1) + s.state_at(0, -2)])
    ///     .state_taps(&block, &[-2, -1])
    ///     .n_steps(10)
    ///     .build();
    /// assert_eq!(out.trace(0).static_shape(), &[Some(10)]);
    /// ```
    pub fn state_at(&self, k: usize, tap: i64) -> Var {
        let found = self
            .states
            .get(k)
            .and_then(|taps| taps.iter().find(|(t, _)| *t == tap));
        match found {
            Some((_, v)) => v.clone(),
            None => missing(format!(
                "the step reads state {k} at tap {tap}, which it was not given"
            )),
        }
    }

    /// Non-sequence `k` (the same value at every step). Outer variables the step reads
    /// directly become non-sequences too; declaring them is optional.
    ///
    /// ```
    /// use tensorlift_ir::{scan, vector, DType};
    /// let (x0, w) = (vector("x0", DType::Float64), vector("w", DType::Float64));
    /// let out = scan(|s| vec![s.state(0) * s.non_sequence(0)])
    ///     .states(&[&x0])
    ///     .non_sequences(&[&w])
    ///     .n_steps(3)
    ///     .build();
    /// assert_eq!(out.last(0).ndim(), 1);
    /// ```
    pub fn non_sequence(&self, k: usize) -> Var {
        match self.non_sequences.get(k) {
            Some(v) => v.clone(),
            None => missing(format!(
                "the step reads non-sequence {k}, which it does not have"
            )),
        }
    }

    /// Makes the scan a while loop: it stops after the step for which `cond` (a scalar,
    /// computed by the step) is true.
    ///
    /// ```
    /// use tensorlift_ir::{scan, scalar, DType};
    /// // Halve until below 1: the trace's length is known only at run time.
    /// let x0 = scalar("x0", DType::Float64);
    /// let out = scan(|s| {
    ///     let next = s.state(0) * 0.5;
    ///     s.until(&next.lt(1.0));
    ///     vec![next]
    /// })
    /// .states(&[&x0])
    /// .build();
    /// assert_eq!(out.trace(0).static_shape(), &[None]);
    /// ```
    pub fn until(&self, cond: &Var) {
        *self.until.borrow_mut() = Some(cond.clone());
    }
}

/// A scan being described (see `scan`).
pub struct ScanBuilder<F> {
    step: F,
    sequences: Vec<(Var, Vec<i64>)>,
    states: Vec<(Var, Vec<i64>)>,
    non_sequences: Vec<Var>,
    n_steps: Option<Var>,
    reverse: bool,
}

/// A loop (DESIGN §8): `step` computes the new value of every state from the values of
/// one step (`Step`: sequences at this step, earlier states, non-sequences), and may call
/// `Step::until` to stop after the step whose condition is true. The number of steps is
/// the sequences' length, `n_steps`, or (with `until` alone) however many it takes.
/// Each state gives its last value and its trace (the value after every step). Without
/// states (PyTensor's `scan` without `outputs_info`), each value the step returns is an
/// output per step, computed for all steps at once by vectorizing the step over the
/// sequences (`last(k)` / `trace(k)` as for states).
///
/// ```
/// use tensorlift_ir::{scan, scalar, vector, DType};
/// // s ← 0.99·s + sin(t) over a sequence t.
/// let (ts, s0) = (vector("ts", DType::Float64), scalar("s0", DType::Float64));
/// let out = scan(|s| vec![s.state(0) * 0.99 + s.sequence(0).sin()])
///     .sequences(&[&ts])
///     .states(&[&s0])
///     .build();
/// assert_eq!(out.last(0).ty(), s0.ty());
/// assert_eq!(out.trace(0).ty().ndim(), 1);
/// ```
pub fn scan<F: FnOnce(&Step) -> Vec<Var>>(step: F) -> ScanBuilder<F> {
    ScanBuilder {
        step,
        sequences: Vec::new(),
        states: Vec::new(),
        non_sequences: Vec::new(),
        n_steps: None,
        reverse: false,
    }
}

impl<F: FnOnce(&Step) -> Vec<Var>> ScanBuilder<F> {
    /// Sequences walked along their first axis, read as `x[t]`.
    ///
    /// ```
    /// use tensorlift_ir::{scan, vector, DType};
    /// let (a, b) = (vector("a", DType::Float64), vector("b", DType::Float64));
    /// let out = scan(|s| vec![s.sequence(0) * s.sequence(1)]).sequences(&[&a, &b]).build();
    /// assert_eq!(out.trace(0).ndim(), 1); // without states: one output per step
    /// ```
    pub fn sequences(mut self, xs: &[&Var]) -> Self {
        self.sequences
            .extend(xs.iter().map(|x| ((*x).clone(), vec![0])));
        self
    }

    /// A sequence read at several offsets per step (`&[0, 1]`: x[t] and x[t+1]); the
    /// scan takes `len − (max − min)` steps over it.
    ///
    /// ```
    /// use tensorlift_ir::{scan, vector, DType};
    /// let xs = vector("xs", DType::Float64);
    /// // Moving sums of three: x[t−1] + x[t] + x[t+1].
    /// let out = scan(|s| vec![s.sequence_at(0, -1) + s.sequence_at(0, 0) + s.sequence_at(0, 1)])
    ///     .sequence_taps(&xs, &[-1, 0, 1])
    ///     .build();
    /// assert_eq!(out.trace(0).ndim(), 1);
    /// ```
    pub fn sequence_taps(mut self, x: &Var, taps: &[i64]) -> Self {
        self.sequences.push((x.clone(), taps.to_vec()));
        self
    }

    /// States starting from these values, read as the value of the step before.
    ///
    /// ```
    /// use tensorlift_ir::{matrix, scalar, scan, DType};
    /// let (m0, c0) = (matrix("m0", DType::Float64), scalar("c0", DType::Int64));
    /// let out = scan(|s| vec![s.state(0).t(), s.state(1) + 1])
    ///     .states(&[&m0, &c0])
    ///     .n_steps(4)
    ///     .build();
    /// assert_eq!((out.last(0).ndim(), out.last(1).dtype()), (2, DType::Int64));
    /// ```
    pub fn states(mut self, x0: &[&Var]) -> Self {
        self.states
            .extend(x0.iter().map(|x| ((*x).clone(), vec![-1])));
        self
    }

    /// A state read at several earlier steps (`&[-2, -1]`), starting from a block of
    /// `-taps[0]` values along a new first axis (the last one is the step before the
    /// first).
    ///
    /// ```
    /// use tensorlift_ir::{matrix, scan, DType};
    /// // A second-order recurrence on vectors: the block holds two rows.
    /// let block = matrix("block", DType::Float64);
    /// let out = scan(|s| vec![s.state_at(0, -1) * 2.0 - s.state_at(0, -2)])
    ///     .state_taps(&block, &[-2, -1])
    ///     .n_steps(5)
    ///     .build();
    /// assert_eq!(out.last(0).ndim(), 1);
    /// ```
    pub fn state_taps(mut self, x0: &Var, taps: &[i64]) -> Self {
        self.states.push((x0.clone(), taps.to_vec()));
        self
    }

    /// Values every step reads unchanged.
    ///
    /// ```
    /// use tensorlift_ir::{scan, vector, DType};
    /// let (x0, w) = (vector("x0", DType::Float64), vector("w", DType::Float64));
    /// let out = scan(|s| vec![s.state(0) + s.non_sequence(0)])
    ///     .states(&[&x0])
    ///     .non_sequences(&[&w])
    ///     .n_steps(2)
    ///     .build();
    /// assert!(out.check().is_ok());
    /// ```
    pub fn non_sequences(mut self, xs: &[&Var]) -> Self {
        self.non_sequences.extend(xs.iter().map(|x| (*x).clone()));
        self
    }

    /// The number of steps: an integer scalar variable or a Rust integer (`.n_steps(100)`);
    /// with sequences it must agree with them, with `until` it is a bound.
    ///
    /// ```
    /// use tensorlift_ir::{scan, scalar, DType};
    /// let (x0, n) = (scalar("x0", DType::Float64), scalar("n", DType::Int64));
    /// let fixed = scan(|s| vec![s.state(0) + 1.0]).states(&[&x0]).n_steps(100).build();
    /// assert_eq!(fixed.trace(0).static_shape(), &[Some(100)]);
    /// let symbolic = scan(|s| vec![s.state(0) + 1.0]).states(&[&x0]).n_steps(&n).build();
    /// assert_eq!(symbolic.trace(0).static_shape(), &[None]);
    /// ```
    pub fn n_steps(mut self, n: impl Into<crate::api::Operand>) -> Self {
        self.n_steps = Some(match n.into() {
            crate::api::Operand::Var(v) => v,
            crate::api::Operand::Lit(l) => Var::literal(l, DType::Int64),
        });
        self
    }

    /// Walks the sequences from their end (traces stay in the order the steps ran).
    ///
    /// ```
    /// use tensorlift_ir::{scan, vector, DType};
    /// let xs = vector("xs", DType::Float64);
    /// // A running sum from the end: x[n−1], x[n−1] + x[n−2], ...
    /// let out = scan(|s| vec![s.state(0) + s.sequence(0)])
    ///     .sequences(&[&xs])
    ///     .states(&[&tensorlift_ir::constant(0.0)])
    ///     .reverse()
    ///     .build();
    /// assert_eq!(out.trace(0).ndim(), 1);
    /// ```
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }

    /// The scan's outputs. Never panics: a scan that cannot be built gives outputs that
    /// carry the error (`Var::check`).
    ///
    /// ```
    /// use tensorlift_ir::{scan, vector, DType};
    /// let x0 = vector("x0", DType::Float64);
    /// let ok = scan(|s| vec![s.state(0).exp()]).states(&[&x0]).n_steps(2).build();
    /// assert!(ok.check().is_ok());
    /// // A new state of another rank than its initial value: the outputs carry the error.
    /// let bad = scan(|s| vec![s.state(0).sum(None)]).states(&[&x0]).n_steps(2).build();
    /// assert!(bad.check().is_err());
    /// ```
    pub fn build(self) -> ScanOutputs {
        let n_states = self.states.len();
        match self.try_build() {
            Ok(outputs) => ScanOutputs { outputs },
            Err(e) => ScanOutputs {
                outputs: vec![Var::invalid(e); 2 * n_states.max(1)],
            },
        }
    }

    fn try_build(self) -> Result<Vec<Var>> {
        let placeholder = |name: String, ty: &TensorType| Var::input(&name, ty.clone());
        for (x, _) in self.sequences.iter().chain(&self.states) {
            x.check()?;
        }
        for x in self.non_sequences.iter().chain(&self.n_steps) {
            x.check()?;
        }
        let mut body_inputs = Vec::new();
        let mut sequences = Vec::with_capacity(self.sequences.len());
        for (s, (x, taps)) in self.sequences.iter().enumerate() {
            let ty = x.ty();
            if ty.ndim() == 0 {
                return Err(GraphError::op(
                    "Scan",
                    format!("sequence {s} is a scalar; it must have a first axis"),
                ));
            }
            let slice = TensorType::new(ty.dtype, ty.shape[1..].to_vec());
            let mut per_tap = Vec::new();
            for tap in taps {
                let v = placeholder(format!("{}[t{:+}]", x.label(), tap), &slice);
                body_inputs.push(v.clone());
                per_tap.push((*tap, v));
            }
            sequences.push(per_tap);
        }
        let mut states = Vec::with_capacity(self.states.len());
        for (x, taps) in &self.states {
            let ty = x.ty();
            let state_ty = if has_initial_block(taps) && ty.ndim() > 0 {
                TensorType::new(ty.dtype, ty.shape[1..].to_vec())
            } else {
                ty.clone()
            };
            let mut per_tap = Vec::new();
            for tap in taps {
                let v = placeholder(format!("{}[t{tap}]", x.label()), &state_ty);
                body_inputs.push(v.clone());
                per_tap.push((*tap, v));
            }
            states.push(per_tap);
        }
        let non_sequences: Vec<Var> = self
            .non_sequences
            .iter()
            .map(|x| placeholder(x.label(), x.ty()))
            .collect();
        body_inputs.extend(non_sequences.iter().cloned());
        let step = Step {
            sequences,
            states,
            non_sequences,
            until: RefCell::new(None),
        };
        let mut outputs = (self.step)(&step);
        if self.states.is_empty() && !outputs.is_empty() && step.until.borrow().is_none() {
            return map_sequences(
                outputs,
                &step,
                &self.sequences,
                &self.non_sequences,
                self.n_steps.as_ref(),
                self.reverse,
            );
        }
        if outputs.len() != self.states.len() {
            return Err(GraphError::op(
                "Scan",
                format!(
                    "the step returns {} values for {} states",
                    outputs.len(),
                    self.states.len()
                ),
            ));
        }
        let until = step.until.borrow_mut().take();
        if let Some(cond) = &until {
            outputs.push(cond.clone());
        }
        for o in &outputs {
            o.check()?;
        }
        // Outer values the step reads: each becomes a non-sequence of its own.
        let free = free_values(&outputs, &body_inputs);
        let mut replace = Vec::new();
        let mut implicit = Vec::new();
        for x in &free {
            let p = placeholder(x.label(), x.ty());
            replace.push((x.clone(), p.clone()));
            body_inputs.push(p);
            implicit.push(x.clone());
        }
        let pairs: Vec<(&Var, &Var)> = replace.iter().map(|(a, b)| (a, b)).collect();
        let refs: Vec<&Var> = outputs.iter().collect();
        let outputs = if pairs.is_empty() {
            outputs
        } else {
            crate::clone::clone_replace(&refs, &pairs, false)?
        };
        let body = FunctionGraph::new(&body_inputs, &outputs)?;
        let op = Scan {
            body: InnerGraph::new(body),
            sequence_taps: self.sequences.iter().map(|(_, t)| t.clone()).collect(),
            state_taps: self.states.iter().map(|(_, t)| t.clone()).collect(),
            n_non_sequences: self.non_sequences.len() + implicit.len(),
            bounded: self.n_steps.is_some(),
            until: until.is_some(),
            reverse: self.reverse,
            keep_trace: vec![true; self.states.len()],
        };
        let mut inputs: Vec<Var> = self.n_steps.iter().cloned().collect();
        if let Some(n) = inputs.first_mut() {
            if n.ty().dtype != DType::Int64 && n.ty().dtype.is_int() {
                *n = n.cast(DType::Int64);
            }
        }
        inputs.extend(self.sequences.into_iter().map(|(x, _)| x));
        inputs.extend(self.states.into_iter().map(|(x, _)| x));
        inputs.extend(self.non_sequences);
        inputs.extend(implicit);
        Var::apply(Op::Scan(Arc::new(op)), inputs)
    }
}

/// A scan without states (PyTensor's `scan` without `outputs_info`, or `map`): each value
/// the step returns is computed for every step at once, by vectorizing the step over the
/// sequences' slices (so an element-wise step is one Elemwise over the whole sequence).
/// Per output, `last` is the final step's value and `trace` every step's. The step count
/// follows the scan's rule: each sequence's length minus its taps' span, all equal (and
/// equal to `n_steps` when given), checked at run time.
fn map_sequences(
    outputs: Vec<Var>,
    step: &Step,
    sequences: &[(Var, Vec<i64>)],
    non_sequences: &[Var],
    n_steps: Option<&Var>,
    reverse: bool,
) -> Result<Vec<Var>> {
    use crate::api::index::Idx;
    if sequences.is_empty() {
        return Err(GraphError::op(
            "Scan",
            "the step returns values but the scan has neither states nor sequences: give it \
             a state (its initial value) or a sequence to map over",
        ));
    }
    if reverse && sequences.iter().any(|(_, taps)| taps.len() > 1) {
        return Err(GraphError::op(
            "Scan",
            "a reversed scan without states takes one tap per sequence; give it a state for \
             several taps",
        ));
    }
    for o in &outputs {
        o.check()?;
    }
    // Non-sequence placeholders stand for their outer values.
    let pairs: Vec<(&Var, &Var)> = step.non_sequences.iter().zip(non_sequences).collect();
    let refs: Vec<&Var> = outputs.iter().collect();
    let outputs = if pairs.is_empty() {
        outputs
    } else {
        crate::clone::clone_replace(&refs, &pairs, false)?
    };
    let int = |v: i64| Var::literal(v, DType::Int64);
    let counts: Vec<Var> = sequences
        .iter()
        .map(|(x, taps)| {
            let span = taps.iter().max().unwrap_or(&0) - taps.iter().min().unwrap_or(&0);
            x.shape_i(0) - int(span)
        })
        .collect();
    let steps = match n_steps {
        Some(n) if n.dtype() != DType::Int64 => n.cast(DType::Int64),
        Some(n) => n.clone(),
        None => counts[0].clone(),
    };
    let mut conditions = Vec::new();
    for count in &counts {
        conditions.push(count.ge(int(0)));
        conditions.push(count.equal(&steps));
    }
    let message = "Scan: every sequence's length minus its taps' span must equal the step \
                   count (and be at least 0)";
    let mut replace: Vec<(Var, Var)> = Vec::new();
    for ((x, taps), per_tap) in sequences.iter().zip(&step.sequences) {
        let first = *taps.iter().min().unwrap_or(&0);
        let x = if reverse {
            x.get(vec![Idx::slice(None, None, Some(int(-1).into()))])
        } else {
            x.clone()
        };
        for (tap, placeholder) in per_tap {
            let start = int(tap - first);
            let stop = &start + &steps;
            let slice = x
                .get(vec![Idx::slice(
                    Some(start.into()),
                    Some(stop.into()),
                    None,
                )])
                .check_that(&conditions, message);
            replace.push((placeholder.clone(), slice));
        }
    }
    let pairs: Vec<(&Var, &Var)> = replace.iter().map(|(a, b)| (a, b)).collect();
    let refs: Vec<&Var> = outputs.iter().collect();
    let batched = crate::vectorize::vectorize_graph(&refs, &pairs)?;
    let mut result = Vec::with_capacity(2 * batched.len());
    for (core, b) in outputs.iter().zip(batched) {
        // A value the same at every step is repeated along the steps.
        let trace = if b.ndim() == core.ndim() {
            let mut shape: Vec<crate::Operand> = vec![steps.clone().into()];
            shape.extend((0..core.ndim()).map(|d| crate::Operand::from(core.shape_i(d as isize))));
            b.expand_dims(0)
                .broadcast_to(&shape)
                .check_that(&conditions, message)
        } else {
            b
        };
        result.push(trace.get(vec![Idx::At(int(-1).into())]));
        result.push(trace);
    }
    Ok(result)
}

/// The outer values a step's `outputs` read that are neither its own inputs nor
/// constants nor computed from its inputs: the largest such values (an outer `w.T` is
/// one value, not `w`).
fn free_values(outputs: &[Var], body_inputs: &[Var]) -> Vec<Var> {
    let own: std::collections::HashSet<usize> = body_inputs.iter().map(Var::key).collect();
    // Whether each variable depends on one of the step's own inputs (postorder: operands
    // first).
    let mut inner: HashMap<usize, bool> = HashMap::new();
    let order = postorder(outputs);
    for v in &order {
        let depends = own.contains(&v.key())
            || v.owner()
                .is_some_and(|(node, _)| node.inputs.iter().any(|x| inner[&x.key()]));
        inner.insert(v.key(), depends);
    }
    let mut free = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut consider = |x: &Var, free: &mut Vec<Var>| {
        let constant = matches!(x.kind(), VarKind::Constant(_));
        if !inner[&x.key()] && !constant && seen.insert(x.key()) {
            free.push(x.clone());
        }
    };
    for v in &order {
        if !inner[&v.key()] {
            continue;
        }
        if let Some((node, _)) = v.owner() {
            for x in &node.inputs {
                consider(x, &mut free);
            }
        }
    }
    for o in outputs {
        consider(o, &mut free);
    }
    free
}

/// The outputs of a scan: per state, its last value and its trace.
pub struct ScanOutputs {
    outputs: Vec<Var>,
}

impl ScanOutputs {
    /// State `k` after the last step (its initial value when no step runs).
    ///
    /// ```
    /// use tensorlift_ir::{scan, vector, DType};
    /// let x0 = vector("x0", DType::Float64);
    /// let out = scan(|s| vec![s.state(0) * 2.0]).states(&[&x0]).n_steps(3).build();
    /// assert_eq!(out.last(0).ty(), x0.ty());
    /// assert!(out.last(1).check().is_err()); // there is no state 1
    /// ```
    pub fn last(&self, k: usize) -> Var {
        self.outputs
            .get(2 * k)
            .cloned()
            .unwrap_or_else(|| missing(format!("the scan has no state {k}")))
    }

    /// State `k` after every step, steps along the first axis.
    ///
    /// ```
    /// use tensorlift_ir::{scan, vector, DType};
    /// let x0 = vector("x0", DType::Float64);
    /// let out = scan(|s| vec![s.state(0) * 2.0]).states(&[&x0]).n_steps(3).build();
    /// assert_eq!(out.trace(0).static_shape(), &[Some(3), None]); // steps first
    /// ```
    pub fn trace(&self, k: usize) -> Var {
        self.outputs
            .get(2 * k + 1)
            .cloned()
            .unwrap_or_else(|| missing(format!("the scan has no state {k}")))
    }

    /// The error the scan could not be built with, if any.
    ///
    /// ```
    /// use tensorlift_ir::{scan, vector, DType};
    /// let x0 = vector("x0", DType::Float64);
    /// let out = scan(|s| vec![s.state(0) * 2.0]).states(&[&x0]).build(); // no step count
    /// assert!(out.check().is_err());
    /// ```
    pub fn check(&self) -> Result<()> {
        self.outputs.iter().try_for_each(|v| v.check().map(|_| ()))
    }
}

//! Plans that are one step reading only inputs and constants (a function that is an
//! IfElse, a native scan or a kept OpFromGraph, and most IfElse branches and scan bodies
//! made of one such node): they run that step on the call's inputs directly, with no
//! value table, replay or lock, and pick the call's results from its own.

use super::*;

/// The one step of a plan and how its arguments and results map to the call's.
pub(super) struct LoneStep {
    /// Per argument of the step: the input it is, or `None` for a constant.
    args: Vec<Option<usize>>,
    /// Whether the arguments are exactly the inputs, in order (they are lent as given).
    lends_inputs: bool,
    /// Per result of the call, the step's result it is.
    picks: Vec<usize>,
    /// Whether the picks are the step's first results, in order, each once.
    prefix: bool,
}

impl LoneStep {
    /// The lone reading step of `plan`, if it is one.
    pub(super) fn of(plan: &Plan) -> Option<LoneStep> {
        let [step] = plan.steps.as_slice() else {
            return None;
        };
        if !step.action.only_reads() {
            return None;
        }
        let args = step
            .args
            .iter()
            .map(|a| match a {
                Arg::Slot { slot, .. } => plan.inputs.iter().position(|s| s == slot).map(Some),
                Arg::Const(_) => Some(None),
            })
            .collect::<Option<Vec<_>>>()?;
        let picks = plan
            .outputs
            .iter()
            .map(|o| match o {
                Out::Slot { slot, .. } => step.outputs.iter().position(|s| s == slot),
                Out::Const(_) => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some(LoneStep {
            lends_inputs: args.len() == plan.inputs.len()
                && args.iter().enumerate().all(|(n, a)| *a == Some(n)),
            prefix: picks.iter().enumerate().all(|(n, p)| n == *p),
            args,
            picks,
        })
    }
}

impl Plan {
    /// Runs the lone step `lone` of this plan on `inputs`.
    pub(super) fn run_lone(
        &self,
        lone: &LoneStep,
        inputs: &[TensorData],
        pool: &BufferPool,
    ) -> Result<Vec<TensorData>, RuntimeError> {
        let step = &self.steps[0];
        let missing = || RuntimeError::Internal("a lone step's argument is missing".into());
        let result = if lone.lends_inputs {
            self.run_reading(step, inputs, pool)
        } else {
            let mut values: smallvec::SmallVec<[TensorData; 4]> = smallvec::SmallVec::new();
            for (source, a) in lone.args.iter().zip(&step.args) {
                values.push(match (source, a) {
                    (Some(j), _) => inputs.get(*j).ok_or_else(missing)?.clone(),
                    (None, Arg::Const(d)) => d.clone(),
                    (None, Arg::Slot { .. }) => return Err(missing()),
                });
            }
            self.run_reading(step, &values, pool)
        };
        let result =
            result.unwrap_or_else(|| Err(RuntimeError::Internal("not a reading step".into())));
        self.lone_results(lone, result)
    }

    /// The call of lone step `lone` when its inner plan replays a call on inputs of
    /// exactly their recorded layout (which implies they fit the signature: that plan
    /// only ever runs on this plan's inputs) and any other input fits its type; `None`
    /// otherwise (the caller checks the inputs and calls `run`).
    pub(super) fn run_lone_replayed(
        &self,
        lone: &LoneStep,
        inputs: &[TensorData],
        pool: &BufferPool,
    ) -> Option<Result<Vec<TensorData>, RuntimeError>> {
        if !lone.lends_inputs {
            return None;
        }
        let result = match &self.steps[0].action {
            Action::Call(plan) => plan.run_replayed(inputs, pool)?,
            Action::IfElse(then, otherwise) => {
                let (cond, values) = inputs.split_first()?;
                let cond_type = &self.fgraph.var(*self.fgraph.inputs().first()?).ty;
                if !tensorlift_runtime::signature::fits(cond, cond_type) {
                    return None;
                }
                taken(cond, then, otherwise).run_replayed(values, pool)?
            }
            Action::NativeScan(_)
            | Action::Kernel(_)
            | Action::Scan(..)
            | Action::Blockwise(_)
            | Action::Library(_)
            | Action::RowPass(_)
            | Action::View(_)
            | Action::Interpreted(_) => return None,
        };
        Some(self.lone_results(lone, result))
    }

    /// The call's results from the lone step's `result`.
    fn lone_results(
        &self,
        lone: &LoneStep,
        result: Result<Vec<TensorData>, RuntimeError>,
    ) -> Result<Vec<TensorData>, RuntimeError> {
        let mut outs = self.step_results(&self.steps[0], result)?;
        if lone.prefix {
            outs.truncate(lone.picks.len());
            return Ok(outs);
        }
        Ok(lone.picks.iter().map(|p| outs[*p].clone()).collect())
    }
}

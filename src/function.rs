//! `function(inputs, outputs)`: compile a graph and call it (DESIGN §5).
//!
//! Owns: the builder, the compiled `Function` (its input signature, computed once at
//! compile time, and the backend's executable), the backend's copies of shared values it
//! cannot read as stored (its own context of them) and the output check that catches
//! backend bugs. A `Function` is `Send + Sync`; calls from many threads at once are safe.

use std::sync::{Arc, Mutex};

use tensorlift_compiler::{compile, Backend, Executable, Mode, RewriteReport};
use tensorlift_ir::{postorder, FunctionGraph, GraphError, TensorData, TensorType, Var};
use tensorlift_runtime::shared::{CallInContext, SharedCell, SharedContext};
use tensorlift_runtime::{RuntimeError, Signature};

use crate::Error;

/// Starts compiling a function of `inputs` computing `outputs`.
///
/// ```
/// use tensorlift::prelude::*;
/// let x = vector("x", Float64);
/// let f = function(&[&x], &[&(x.exp() + 1.0).sum(All)]).compile()?;
/// let out = f.call(&[ndarray::array![0.0, 0.0].into()])?;
/// assert_eq!(out[0].item_f64()?, 4.0);
/// # Ok::<(), tensorlift::Error>(())
/// ```
pub fn function(inputs: &[&Var], outputs: &[&Var]) -> FunctionBuilder {
    FunctionBuilder {
        inputs: inputs.iter().map(|v| (*v).clone()).collect(),
        outputs: outputs.iter().map(|v| (*v).clone()).collect(),
        updates: Vec::new(),
        mode: Mode::default(),
        print_rewrites: false,
    }
}

/// The shared variables a graph reads and its updates (shared variable index, expression).
type SharedInputs = (Vec<Var>, Vec<(usize, Var)>);

/// Options of a function being compiled.
pub struct FunctionBuilder {
    inputs: Vec<Var>,
    outputs: Vec<Var>,
    updates: Vec<(Var, Var)>,
    mode: Mode,
    print_rewrites: bool,
}

impl FunctionBuilder {
    /// Chooses the backend and the rewrites.
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let x = vector("x", Float64);
    /// let y = (&x * 2.0).sum(All);
    /// for mode in [Mode::Reference, Mode::Jit, Mode::Jit.without_rewrites()] {
    ///     let f = function(&[&x], &[&y]).mode(mode).compile()?;
    ///     assert_eq!(f.call(&[ndarray::array![1.0, 2.0].into()])?[0].item_f64()?, 6.0);
    /// }
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Leaves out one rewrite rule or group by name.
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let x = vector("x", Float64);
    /// let y = (x.exp() + 1.0).log(); // softplus, once stabilized
    /// let rule = "softplus_from_log1p";
    /// assert!(function(&[&x], &[&y]).compile()?.rewrite_report().fired(rule) > 0);
    /// let f = function(&[&x], &[&y]).excluding("stabilize").compile()?;
    /// assert_eq!(f.rewrite_report().fired(rule), 0);
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    pub fn excluding(mut self, rule_or_group: &str) -> Self {
        self.mode = self.mode.excluding(rule_or_group);
        self
    }

    /// Runs only the named rewrite rules and groups (call once per name).
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let x = vector("x", Float64);
    /// let f = function(&[&x], &[&(&x + 0.0)]).including("canonicalize").compile()?;
    /// assert_eq!(f.call(&[ndarray::array![1.5].into()])?[0].to_f64_vec(), vec![1.5]);
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    pub fn including(mut self, rule_or_group: &str) -> Self {
        self.mode = self.mode.including(rule_or_group);
        self
    }

    /// Prints the rewrite report (rules fired, time spent, why each group stopped) to
    /// standard error when compiling. `Function::rewrite_report` has it in any case.
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let x = vector("x", Float64);
    /// // The report goes to standard error while compiling.
    /// let f = function(&[&x], &[&x.exp()]).print_rewrites(true).compile()?;
    /// assert_eq!(f.output_types()[0], *x.ty());
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    pub fn print_rewrites(mut self, yes: bool) -> Self {
        self.print_rewrites = yes;
        self
    }

    /// New values for shared variables, written after each successful call, all at once
    /// (PyTensor's `updates`): every expression reads the values from before the call. A
    /// call that fails writes none of them.
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let count = shared("count", TensorData::scalar(0i64));
    /// let f = function(&[], &[&count]).updates(&[(&count, &(&count + 1))]).compile()?;
    /// assert_eq!(f.call(&[])?[0].item_f64()?, 0.0);
    /// assert_eq!(count.get_value()?.item_f64()?, 1.0);
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    pub fn updates(mut self, pairs: &[(&Var, &Var)]) -> Self {
        self.updates
            .extend(pairs.iter().map(|(w, e)| ((*w).clone(), (*e).clone())));
        self
    }

    /// The shared variables the graph reads that are not explicit inputs (in the order
    /// first met), and the checked updates as (shared variable index, expression).
    fn shared_inputs(&self) -> Result<SharedInputs, Error> {
        let mut roots = self.outputs.clone();
        roots.extend(self.updates.iter().map(|(_, e)| e.clone()));
        roots.extend(self.updates.iter().map(|(w, _)| w.clone()));
        let explicit: std::collections::HashSet<usize> = self.inputs.iter().map(Var::key).collect();
        let mut shared: Vec<Var> = Vec::new();
        for v in postorder(&roots) {
            if v.shared_storage().is_some()
                && !explicit.contains(&v.key())
                && !shared.iter().any(|s| s.key() == v.key())
            {
                shared.push(v);
            }
        }
        let mut updates = Vec::new();
        for (w, e) in &self.updates {
            e.check()?;
            let name = w.name().unwrap_or_default();
            let fail = |m: String| Error::Graph(GraphError::op("updates", m));
            let Some(k) = shared.iter().position(|s| s.key() == w.key()) else {
                return Err(fail(format!(
                    "'{name}' ({}) is not a shared variable (or is an explicit input): only \
                     shared variables can be updated",
                    w.ty()
                )));
            };
            if updates.iter().any(|(j, _)| *j == k) {
                return Err(fail(format!("'{name}' is updated twice")));
            }
            let fits = e.dtype() == w.dtype()
                && e.ndim() == w.ndim()
                && e.static_shape()
                    .iter()
                    .zip(w.static_shape())
                    .all(|(a, b)| b.is_none() || a == b);
            if !fits {
                return Err(fail(format!(
                    "the update of '{name}' is {}, but the variable is {} (cast or reshape the \
                     expression to the variable's type)",
                    e.ty(),
                    w.ty()
                )));
            }
            updates.push((k, e.clone()));
        }
        Ok((shared, updates))
    }

    /// Checks the graph and compiles it.
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let (x, y) = (vector("x", Float64), tensor("y", Float64, [Some(3)]));
    /// let f = function(&[&x, &y], &[&(&x * &y)]).compile()?;
    /// assert_eq!(f.output_types()[0].to_string(), "Vector(float64, shape=(3,))");
    /// // A graph that cannot be built fails here, naming the op.
    /// let bad = &x + &matrix("m", Float64).t().get(idx![.., ..;0]);
    /// assert!(function(&[&x], &[&bad]).compile().is_err());
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    pub fn compile(self) -> Result<Function, Error> {
        let (shared, updates) = self.shared_inputs()?;
        let mut all_inputs = self.inputs.clone();
        all_inputs.extend(shared.iter().cloned());
        let mut all_outputs = self.outputs.clone();
        all_outputs.extend(updates.iter().map(|(_, e)| e.clone()));
        let cells: Vec<Arc<SharedCell>> = shared
            .iter()
            .map(|v| {
                v.shared_storage()
                    .and_then(|s| s.clone().into_any().downcast::<SharedCell>().ok())
                    .ok_or_else(|| {
                        Error::Runtime(RuntimeError::Internal(
                            "a shared variable without its storage".into(),
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        let fgraph = FunctionGraph::new(&all_inputs, &all_outputs)?;
        let signature = Signature {
            names: self
                .inputs
                .iter()
                .map(|v| v.name().unwrap_or_default())
                .collect(),
            types: self.inputs.iter().map(|v| v.ty().clone()).collect(),
        };
        let output_types = fgraph
            .outputs()
            .iter()
            .map(|o| fgraph.var(*o).ty.clone())
            .collect();
        let compiled = compile(fgraph, &self.mode)?;
        if self.print_rewrites {
            eprintln!("{}", compiled.report);
        }
        let backend = self.mode.backend();
        let copies = cells
            .iter()
            .map(|cell| {
                let (value, version) = cell.get_versioned();
                backend.shared_copy(&value).map(|copy| (version, copy))
            })
            .collect();
        Ok(Function {
            backend,
            backend_copies: Mutex::new(copies),
            signature,
            output_types,
            shared: cells,
            updates: updates.iter().map(|(k, _)| *k).collect(),
            n_outputs: self.outputs.len(),
            executable: compiled.executable,
            fgraph: compiled.fgraph,
            report: compiled.report,
            interpreted: compiled.interpreted.into_iter().map(|u| u.node).collect(),
        })
    }
}

/// A compiled function.
pub struct Function {
    signature: Signature,
    /// The types of the outputs, then of the updates.
    output_types: Vec<TensorType>,
    /// The shared variables read (inputs after the explicit ones).
    shared: Vec<Arc<SharedCell>>,
    /// The backend (for the form it reads shared values in).
    backend: Box<dyn Backend>,
    /// Per shared variable, the backend's copy of its default value and the version it was
    /// taken from, when the backend cannot read the stored value as it is.
    backend_copies: Mutex<Vec<Option<(u64, TensorData)>>>,
    /// Per update (outputs after the user's): the shared variable it writes.
    updates: Vec<usize>,
    n_outputs: usize,
    executable: Box<dyn Executable>,
    fgraph: FunctionGraph,
    report: RewriteReport,
    interpreted: Vec<String>,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("inputs", &self.signature.types)
            .field("outputs", &self.output_types)
            .finish_non_exhaustive()
    }
}

impl Function {
    /// Calls the function. Inputs are checked (count, dtype, ndim, static sizes) before
    /// anything runs.
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let x = vector("x", Float64);
    /// let f = function(&[&x], &[&x.sum(All), &x.max(All)]).compile()?;
    /// let out = f.call(&[ndarray::array![1.0, 5.0, 2.0].into()])?;
    /// assert_eq!((out[0].item_f64()?, out[1].item_f64()?), (8.0, 5.0));
    /// // The wrong dtype is an error naming the input, before anything runs.
    /// assert!(f.call(&[ndarray::array![1i64, 2].into()]).is_err());
    /// // A Rust number is a 0-d value.
    /// let (a, b) = (scalar("a", Float64), scalar("b", Int64));
    /// let g = function(&[&a, &b], &[&(&a * &b)]).compile()?;
    /// assert_eq!(g.call(&[2.5.into(), 4i64.into()])?[0].item_f64()?, 10.0);
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    pub fn call(&self, inputs: &[TensorData]) -> Result<Vec<TensorData>, Error> {
        if self.shared.is_empty() {
            if let Some(outputs) = self.executable.run_known_layout(inputs) {
                let outputs = outputs?;
                self.check_outputs(&outputs)?;
                return Ok(outputs);
            }
            self.signature.check(inputs)?;
            let outputs = self.executable.run(inputs)?;
            self.check_outputs(&outputs)?;
            return Ok(outputs);
        }
        self.run_in(None, inputs)
    }

    /// Calls the function with the shared variables' values of `context` (those it does
    /// not hold read the default values), writing the updates there. Calls in one context
    /// run one at a time; calls in different contexts run in parallel.
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let count = shared("count", TensorData::scalar(0i64));
    /// let f = function(&[], &[&count]).updates(&[(&count, &(&count + 1))]).compile()?;
    /// let (a, b) = (SharedContext::new(), SharedContext::new());
    /// f.call_in(&a, &[])?;
    /// f.call_in(&a, &[])?;
    /// // Each context keeps its own values; the default one is untouched.
    /// assert_eq!(f.call_in(&a, &[])?[0].item_f64()?, 2.0);
    /// assert_eq!(f.call_in(&b, &[])?[0].item_f64()?, 0.0);
    /// assert_eq!(count.get_value()?.item_f64()?, 0.0);
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    pub fn call_in(
        &self,
        context: &SharedContext,
        inputs: &[TensorData],
    ) -> Result<Vec<TensorData>, Error> {
        self.run_in(Some(context), inputs)
    }

    fn run_in(
        &self,
        context: Option<&SharedContext>,
        inputs: &[TensorData],
    ) -> Result<Vec<TensorData>, Error> {
        self.signature.check(inputs)?;
        let call = CallInContext::enter(context);
        let mut all = inputs.to_vec();
        all.extend(self.read_shared(&call));
        let mut outputs = self.executable.run(&all)?;
        self.check_outputs(&outputs)?;
        let new_values = outputs.split_off(self.n_outputs);
        let writes = self
            .updates
            .iter()
            .zip(new_values)
            .map(|(k, v)| (&*self.shared[*k], v))
            .collect();
        call.write(writes)?;
        Ok(outputs)
    }

    /// The shared values of `call`'s context in the form the backend reads: in the default
    /// context through the kept copies (made again when the value changed), elsewhere
    /// copied per call where the backend needs it.
    fn read_shared(&self, call: &CallInContext) -> Vec<TensorData> {
        if call.context().is_some() {
            return call
                .read(&self.shared)
                .into_iter()
                .map(|v| self.backend.shared_copy(&v).unwrap_or(v))
                .collect();
        }
        let mut copies = self
            .backend_copies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.shared
            .iter()
            .zip(copies.iter_mut())
            .map(|(cell, copy)| self.refresh_copy(cell, copy))
            .collect()
    }

    /// The value the backend reads for `cell` in the default context: `copy` when it was
    /// taken from the current version, else a new copy if the backend wants one (kept in
    /// `copy`), else the stored value.
    fn refresh_copy(&self, cell: &SharedCell, copy: &mut Option<(u64, TensorData)>) -> TensorData {
        let (value, version) = cell.get_versioned();
        if copy.as_ref().is_none_or(|(v, _)| *v != version) {
            *copy = self.backend.shared_copy(&value).map(|c| (version, c));
        }
        copy.as_ref().map_or(value, |(_, c)| c.clone())
    }

    /// The backend's own copy of shared variable `w`'s value (default context), when the
    /// backend cannot read the stored value as it is — the JIT keeps a contiguous copy of a
    /// strided array —; `None` when it reads the stored value directly or `w` is not a
    /// shared variable this function reads. The copy follows the stored value: it is made
    /// again after the value changes.
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let w = shared("w", ndarray::array![[1.0, 2.0], [3.0, 4.0]].into());
    /// let f = function(&[], &[&(&w * 2.0)]).compile()?;
    /// // The JIT reads a contiguous value as it is stored: no copy of its own.
    /// assert!(f.backend_copy(&w).is_none());
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    pub fn backend_copy(&self, w: &Var) -> Option<TensorData> {
        let storage = w.shared_storage()?;
        let k = self.shared.iter().position(|c| {
            tensorlift_runtime::shared::cell_of(storage).is_some_and(|s| std::ptr::eq(s, &**c))
        })?;
        let mut copies = self
            .backend_copies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.refresh_copy(&self.shared[k], &mut copies[k]);
        copies[k].as_ref().map(|(_, c)| c.clone())
    }

    /// How the backend runs the compiled graph, one step per node: for the JIT, whether
    /// each node runs as a kernel, a view or in the interpreter, and which inputs a step
    /// may write its output over.
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let x = vector("x", Float64);
    /// let f = function(&[&x], &[&(x.exp() * 2.0 + 1.0)]).compile()?;
    /// assert!(f.plan().contains("runs as kernel")); // one fused kernel
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    pub fn plan(&self) -> String {
        self.executable.describe()
    }

    /// The dprint of the compiled graph (after rewrites).
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let x = vector("x", Float64);
    /// let f = function(&[&x], &[&(&x * 1.0 + 0.0)]).compile()?;
    /// assert!(!f.dprint().contains("Mul")); // x · 1 + 0 rewritten to x
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    pub fn dprint(&self) -> String {
        self.fgraph.to_string()
    }

    /// The compiled graph (after rewrites).
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let x = vector("x", Float64);
    /// let f = function(&[&x], &[&(x.sin() + x.cos())]).compile()?;
    /// assert_eq!(f.fgraph().inputs().len(), 1);
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    pub fn fgraph(&self) -> &FunctionGraph {
        &self.fgraph
    }

    /// What the rewrite pipeline did while compiling.
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let x = vector("x", Float64);
    /// let f = function(&[&x], &[&(x.exp() + 1.0).log()]).compile()?;
    /// // log(1 + exp(x)) became log1p(exp(x)), then softplus(x).
    /// assert_eq!(f.rewrite_report().fired("log1p_from_log"), 1);
    /// assert_eq!(f.rewrite_report().fired("softplus_from_log1p"), 1);
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    pub fn rewrite_report(&self) -> &RewriteReport {
        &self.report
    }

    /// The nodes (their dprint lines) the backend runs in the reference interpreter
    /// instead of its own code; empty for the reference backend and for graphs the JIT
    /// compiles whole. `Mode::strict` turns any of them into a compile error.
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let x = vector("x", Float64);
    /// let f = function(&[&x], &[&x.exp().sum(All)]).mode(Mode::Jit).compile()?;
    /// assert!(f.interpreted_nodes().is_empty()); // compiled whole
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    pub fn interpreted_nodes(&self) -> &[String] {
        &self.interpreted
    }

    /// The declared input types.
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let (x, n) = (vector("x", Float32), scalar("n", Int64));
    /// let f = function(&[&x, &n], &[&(&x * &n)]).compile()?;
    /// assert_eq!(f.input_types(), &[x.ty().clone(), n.ty().clone()]);
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    pub fn input_types(&self) -> &[TensorType] {
        &self.signature.types
    }

    /// The output types.
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let x = vector("x", Int32);
    /// let f = function(&[&x], &[&x.mean(All)]).compile()?;
    /// assert_eq!(f.output_types()[0].dtype, Float64); // integers average as float64
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    pub fn output_types(&self) -> &[TensorType] {
        &self.output_types[..self.n_outputs]
    }

    fn check_outputs(&self, outputs: &[TensorData]) -> Result<(), RuntimeError> {
        let fits = outputs.len() == self.output_types.len()
            && outputs
                .iter()
                .zip(&self.output_types)
                .all(|(v, t)| tensorlift_runtime::signature::fits(v, t));
        if fits {
            Ok(())
        } else {
            let got: Vec<String> = outputs
                .iter()
                .map(|v| format!("{} {:?}", v.dtype(), v.shape()))
                .collect();
            Err(RuntimeError::Internal(format!(
                "the backend returned outputs [{}] that do not match the output types {:?}",
                got.join(", "),
                self.output_types
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
            )))
        }
    }
}

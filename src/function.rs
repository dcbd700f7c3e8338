//! `function(inputs, outputs)`: compile a graph and call it (DESIGN §5).
//!
//! Owns: the builder, the compiled `Function` (its input signature, computed once at
//! compile time, and the backend's executable) and the output check that catches backend
//! bugs. A `Function` is `Send + Sync`; calls from many threads at once are safe.

use tensorlift_compiler::{compile, Executable, Mode, RewriteReport};
use tensorlift_ir::{FunctionGraph, TensorData, TensorType, Var};
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
        mode: Mode::default(),
        print_rewrites: false,
    }
}

/// Options of a function being compiled.
pub struct FunctionBuilder {
    inputs: Vec<Var>,
    outputs: Vec<Var>,
    mode: Mode,
    print_rewrites: bool,
}

impl FunctionBuilder {
    /// Chooses the backend and the rewrites.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Leaves out one rewrite rule or group by name.
    pub fn excluding(mut self, rule_or_group: &str) -> Self {
        self.mode = self.mode.excluding(rule_or_group);
        self
    }

    /// Runs only the named rewrite rules and groups (call once per name).
    pub fn including(mut self, rule_or_group: &str) -> Self {
        self.mode = self.mode.including(rule_or_group);
        self
    }

    /// Prints the rewrite report (rules fired, time spent, why each group stopped) to
    /// standard error when compiling. `Function::rewrite_report` has it in any case.
    pub fn print_rewrites(mut self, yes: bool) -> Self {
        self.print_rewrites = yes;
        self
    }

    /// Checks the graph and compiles it.
    pub fn compile(self) -> Result<Function, Error> {
        let fgraph = FunctionGraph::new(&self.inputs, &self.outputs)?;
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
        Ok(Function {
            signature,
            output_types,
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
    output_types: Vec<TensorType>,
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
    pub fn call(&self, inputs: &[TensorData]) -> Result<Vec<TensorData>, Error> {
        self.signature.check(inputs)?;
        let outputs = self.executable.run(inputs)?;
        self.check_outputs(&outputs)?;
        Ok(outputs)
    }

    /// How the backend runs the compiled graph, one step per node: for the JIT, whether
    /// each node runs as a kernel, a view or in the interpreter, and which inputs a step
    /// may write its output over.
    pub fn plan(&self) -> String {
        self.executable.describe()
    }

    /// The dprint of the compiled graph (after rewrites).
    pub fn dprint(&self) -> String {
        self.fgraph.to_string()
    }

    /// The compiled graph (after rewrites).
    pub fn fgraph(&self) -> &FunctionGraph {
        &self.fgraph
    }

    /// What the rewrite pipeline did while compiling.
    pub fn rewrite_report(&self) -> &RewriteReport {
        &self.report
    }

    /// The nodes (their dprint lines) the backend runs in the reference interpreter
    /// instead of its own code; empty for the reference backend and for graphs the JIT
    /// compiles whole. `Mode::strict` turns any of them into a compile error.
    pub fn interpreted_nodes(&self) -> &[String] {
        &self.interpreted
    }

    /// The declared input types.
    pub fn input_types(&self) -> &[TensorType] {
        &self.signature.types
    }

    /// The output types.
    pub fn output_types(&self) -> &[TensorType] {
        &self.output_types
    }

    fn check_outputs(&self, outputs: &[TensorData]) -> Result<(), RuntimeError> {
        let fits = outputs.len() == self.output_types.len()
            && outputs.iter().zip(&self.output_types).all(|(v, t)| {
                v.dtype() == t.dtype
                    && v.ndim() == t.ndim()
                    && v.shape()
                        .iter()
                        .zip(&t.shape)
                        .all(|(a, s)| s.is_none_or(|s| s == *a))
            });
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

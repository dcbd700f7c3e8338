//! The reference backend: runs graphs with the runtime's op-by-op interpreter. It supports
//! every op, so it never reports unsupported nodes.

use tensorlift_ir::{FunctionGraph, TensorData};
use tensorlift_runtime::{Program, RuntimeError};

use crate::backend::{Backend, Executable, Unsupported};
use crate::error::CompileError;

/// The interpreter backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReferenceBackend;

struct Interpreted(Program);

impl Executable for Interpreted {
    fn run(&self, inputs: &[TensorData]) -> Result<Vec<TensorData>, RuntimeError> {
        self.0.run(inputs)
    }

    fn describe(&self) -> String {
        let fg = self.0.fgraph();
        let steps: Vec<String> = fg
            .toposort()
            .into_iter()
            .enumerate()
            .map(|(i, n)| format!("{i:>3}. {}", tensorlift_ir::print::node_summary(fg, n)))
            .collect();
        format!(
            "reference interpreter: {} nodes, op by op\n{}\n",
            steps.len(),
            steps.join("\n")
        )
    }
}

impl Backend for ReferenceBackend {
    fn name(&self) -> &'static str {
        "reference"
    }

    fn unsupported(&self, _fgraph: &FunctionGraph) -> Vec<Unsupported> {
        Vec::new()
    }

    fn compile(&self, fgraph: FunctionGraph) -> Result<Box<dyn Executable>, CompileError> {
        let program = Program::new(fgraph).map_err(|e| CompileError::Internal(e.to_string()))?;
        Ok(Box::new(Interpreted(program)))
    }
}

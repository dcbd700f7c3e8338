//! tensorlift-compiler: turns a graph into something callable.
//!
//! Owns the compile pipeline (`pipeline`), modes (`mode`), the rewrite framework and its
//! rule groups (`rewrite`), the `Backend` contract (`backend`) and the backends themselves:
//! `reference` (wraps the runtime interpreter) and the Cranelift JIT (`loopir` → `lower` →
//! `codegen`/`vmath`, executed by `jit`; `kernel_call` runs one kernel on its own).
//!
//! Architecture invariant: depends on `ir` and `runtime` only; a backend never imports
//! another backend; compiling checks the whole graph against the backend first and
//! reports every unsupported node at once (no silent fallback).

pub mod backend;
pub mod calling;
pub mod codegen;
pub mod error;
pub mod jit;
pub mod kernel_call;
pub mod loopir;
pub mod lower;
pub mod mode;
pub mod pipeline;
pub mod reference;
pub mod rewrite;
pub mod vmath;

pub use backend::{Backend, Executable, TypeSupport, Unsupported};
pub use error::CompileError;
pub use mode::{BackendKind, Mode};
pub use pipeline::{compile, compile_for, Compiled};
pub use rewrite::RewriteReport;

//! The loop-nest IR (DESIGN §11): what a jitted kernel does, as typed, printable loops over
//! buffers, before any machine code exists.
//!
//! Owns: `Kernel` (buffer parameters with dtype and rank; each buffer has shape symbols
//! `b.shape[d]` and stride symbols `b.stride[d]`, in elements, bound at call time), the
//! statements (`for` over a shape symbol, with a parallel flag; `while`; `if`/`else`;
//! scalar `let`; `store`; `accumulate` into a buffer element with a reduction operator;
//! `fill` of a whole buffer; `fail` with an error of the kernel's list; `call` of a runtime
//! support function on whole buffers; `invoke` of another jitted kernel; `grow` of a buffer
//! the kernel allocates), scalar expressions (loads, literals, scalar ops,
//! temporaries, registers carried across `while` iterations, shape symbols) and visitors (`visit_stmts`, `visit_exprs`); the shape
//! checks every kernel starts with are `shape_checks`', well-formedness `verify`'s, and the
//! text form golden tests compare `print`'s. Indices are
//! per-dimension loop variables, `0` (a broadcast dimension, read with stride 0) or an
//! integer temporary (a gathered index, checked by the kernel before use), so every
//! address is `Σ index[d] · stride[d]`.
//!
//! Temporaries are single assignments: one defined inside an `if` or `while` body is not
//! visible after it; state that changes across `while` iterations lives in buffers.

use tensorlift_ir::ops::ReduceKind;
use tensorlift_ir::{DType, Literal, ScalarOp};

/// Whether a kernel reads or writes a buffer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Input,
    Output,
    /// An output the kernel allocates and grows along axis 0 (`Stmt::Grow`); it starts
    /// with no rows, row-major, and is returned exactly sized.
    Growing,
    /// Working memory of one call (a body's intermediates, double-buffered states) with
    /// the shape given by its extents: allocated zeroed by whoever calls the kernel from
    /// Rust, once per call, and never returned. Local buffers come after all others.
    Local(Vec<Extent>),
}

/// The size of one dimension of a local buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Extent {
    Fixed(usize),
    /// The size of dimension `dim` of input buffer `buf`.
    Of {
        buf: usize,
        dim: usize,
    },
}

/// An argument of `invoke`: buffer `buf` whole, or the sub-buffer at `at` (its first
/// `at.len()` dimensions fixed at those int64 indices, each checked against its size
/// before the call): `x[t]` of a sequence, `trace[t + 1]` of a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    pub buf: usize,
    pub at: Vec<Expr>,
}

impl View {
    /// The whole of buffer `buf`.
    pub fn whole(buf: usize) -> View {
        View {
            buf,
            at: Vec::new(),
        }
    }

    /// Buffer `buf` at `at` along its leading dimensions.
    pub fn at(buf: usize, at: Vec<Expr>) -> View {
        View { buf, at }
    }
}

/// A buffer parameter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Buffer {
    pub name: String,
    pub dtype: DType,
    pub rank: usize,
    pub role: Role,
}

/// A loop variable.
pub type LoopVar = usize;
/// A scalar temporary.
pub type Temp = usize;
/// A scalar register: a value carried from one `while` iteration to the next
/// (`Stmt::Reg` declares it, `Stmt::Set` changes it).
pub type Reg = usize;

/// One index entry per buffer dimension: a loop variable, or the first (only) element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Index {
    Var(LoopVar),
    Zero,
    /// The value of an int64 temporary (checked against the dimension by the kernel).
    Temp(Temp),
}

/// A scalar expression; every value has a dtype (float values compute in f64, bools as 0/1).
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Load {
        buf: usize,
        index: Vec<Index>,
    },
    Const(Literal, DType),
    Temp(Temp),
    Apply {
        op: ScalarOp,
        args: Vec<Expr>,
        dtype: DType,
    },
    /// `buf.shape[dim]`, an int64.
    Dim {
        buf: usize,
        dim: usize,
    },
    /// The value of a loop variable, an int64.
    Var(LoopVar),
    /// The current value of a register.
    Reg(Reg),
}

impl Expr {
    /// `op(args)` producing `dtype`.
    pub fn apply(op: ScalarOp, args: Vec<Expr>, dtype: DType) -> Expr {
        Expr::Apply { op, args, dtype }
    }

    /// An int64 literal.
    pub fn int(v: i64) -> Expr {
        Expr::Const(Literal::Int(v), DType::Int64)
    }
}

/// A runtime support function a kernel calls on whole buffers (`Stmt::Call`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SupportCall {
    /// `out = a · b` (NumPy `dot` of 1-d/2-d float operands) through the gemm crate.
    Dot,
    /// `out = softmax(x)` along the last axis (float operands of one shape), row by row
    /// in cache with the runtime's polynomial exp.
    Softmax,
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `for var in 0..buf.shape[dim]`.
    For {
        var: LoopVar,
        buf: usize,
        dim: usize,
        parallel: bool,
        body: Vec<Stmt>,
    },
    /// `t = value` (computed once, used by later expressions).
    Let {
        temp: Temp,
        dtype: DType,
        value: Expr,
    },
    /// Declares register `reg` of `dtype` with the value `init` (before any loop that
    /// changes it; machine code keeps it in a register where it can).
    Reg { reg: Reg, dtype: DType, init: Expr },
    /// `reg ← value` (the register's dtype).
    Set { reg: Reg, value: Expr },
    /// `buf[index] = value`.
    Store {
        buf: usize,
        index: Vec<Index>,
        value: Expr,
    },
    /// `buf[index] = combine(buf[index], value)`.
    Accumulate {
        buf: usize,
        index: Vec<Index>,
        kind: ReduceKind,
        value: Expr,
    },
    /// Every element of `buf` set to the identity of `kind`.
    Fill { buf: usize, kind: ReduceKind },
    /// `if cond: then else: otherwise` (`cond` a bool).
    If {
        cond: Expr,
        then: Vec<Stmt>,
        otherwise: Vec<Stmt>,
    },
    /// `while cond: body` (`cond` re-evaluated before every iteration).
    While { cond: Expr, body: Vec<Stmt> },
    /// Stops the kernel with error `error` of `Kernel::errors`; `values` (int64) fill the
    /// message's `{0}`, `{1}`, … placeholders.
    Fail { error: usize, values: Vec<Expr> },
    /// A runtime support function applied to whole buffers (their data, shapes and
    /// strides); it fails the kernel with error `error` when it reports a failure.
    Call {
        func: SupportCall,
        bufs: Vec<usize>,
        error: usize,
    },
    /// `buf` (a `Growing` buffer) gets `rows` rows (earlier rows kept, new ones zero,
    /// capacity doubling); fails with error `error` when the memory cannot be had or
    /// `rows` is fewer than it has (buffers never shrink while a kernel runs).
    Grow {
        buf: usize,
        rows: Expr,
        error: usize,
    },
    /// A call of another jitted kernel of the same module (`callee`, its index there,
    /// which must be lower than this kernel's) on buffers or sub-buffers of this one, in
    /// the callee's buffer order; a failing callee fails this kernel with its error (the
    /// compiled kernel's error table holds its callees' after its own). A view index out
    /// of its dimension fails with `error` (index, size), which views require.
    Invoke {
        callee: usize,
        name: String,
        args: Vec<View>,
        error: Option<usize>,
    },
}

/// A kernel: buffers and a body.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    pub name: String,
    pub buffers: Vec<Buffer>,
    pub body: Vec<Stmt>,
    /// Error message templates `Stmt::Fail` refers to, with `{k}` for its k-th value.
    pub errors: Vec<String>,
}

/// An error message template with its `{k}` placeholders replaced by `values`.
pub fn fill_message(template: &str, values: &[i64]) -> String {
    let mut text = template.to_string();
    for (k, v) in values.iter().enumerate() {
        text = text.replace(&format!("{{{k}}}"), &v.to_string());
    }
    text
}

/// How many values a `Stmt::Fail` may report.
pub const MAX_ERROR_VALUES: usize = tensorlift_runtime::buffer_support::ERROR_VALUES;

impl Kernel {
    /// Every scalar op the kernel applies (for support checks and symbol registration).
    pub fn scalar_ops(&self) -> Vec<(ScalarOp, DType)> {
        let mut out = Vec::new();
        visit_exprs(&self.body, &mut |e| {
            if let Expr::Apply { op, dtype, .. } = e {
                out.push((*op, *dtype));
            }
        });
        out
    }
}

/// Calls `f` on every statement of `body`, nested ones included, parents first.
pub fn visit_stmts<'k>(body: &'k [Stmt], f: &mut impl FnMut(&'k Stmt)) {
    for s in body {
        f(s);
        match s {
            Stmt::For { body, .. } | Stmt::While { body, .. } => visit_stmts(body, f),
            Stmt::If {
                then, otherwise, ..
            } => {
                visit_stmts(then, f);
                visit_stmts(otherwise, f);
            }
            _ => {}
        }
    }
}

/// Calls `f` on every expression of `body` (statements' values, conditions, failure
/// values and row counts), sub-expressions included, parents first.
pub fn visit_exprs<'k>(body: &'k [Stmt], f: &mut impl FnMut(&'k Expr)) {
    fn walk<'k>(e: &'k Expr, f: &mut impl FnMut(&'k Expr)) {
        f(e);
        if let Expr::Apply { args, .. } = e {
            args.iter().for_each(|a| walk(a, f));
        }
    }
    visit_stmts(body, &mut |s| match s {
        Stmt::Let { value, .. }
        | Stmt::Store { value, .. }
        | Stmt::Accumulate { value, .. }
        | Stmt::Set { value, .. }
        | Stmt::Reg { init: value, .. } => walk(value, f),
        Stmt::If { cond, .. } | Stmt::While { cond, .. } => walk(cond, f),
        Stmt::Fail { values, .. } => values.iter().for_each(|v| walk(v, f)),
        Stmt::Grow { rows, .. } => walk(rows, f),
        Stmt::Invoke { args, .. } => args.iter().flat_map(|v| &v.at).for_each(|e| walk(e, f)),
        Stmt::For { .. } | Stmt::Fill { .. } | Stmt::Call { .. } => {}
    });
}

impl Stmt {
    /// `if size != expected: fail error(size, expected)` — the form of every size check.
    pub fn require_equal(size: Expr, expected: Expr, error: usize) -> Stmt {
        Stmt::If {
            cond: Expr::apply(
                ScalarOp::Neq,
                vec![size.clone(), expected.clone()],
                DType::Bool,
            ),
            then: vec![Stmt::Fail {
                error,
                values: vec![size, expected],
            }],
            otherwise: Vec::new(),
        }
    }
}

impl Kernel {
    /// Whether the kernel calls the support function `func`.
    /// Whether the kernel accumulates a logsumexp anywhere.
    pub fn has_log_sum_exp(&self) -> bool {
        let mut found = false;
        visit_stmts(&self.body, &mut |s| {
            found |= matches!(
                s,
                Stmt::Accumulate {
                    kind: ReduceKind::LogSumExp,
                    ..
                }
            );
        });
        found
    }

    pub fn calls(&self, func: SupportCall) -> bool {
        let mut found = false;
        visit_stmts(&self.body, &mut |s| {
            found |= matches!(s, Stmt::Call { func: f, .. } if *f == func);
        });
        found
    }

    /// The statement calling kernel `callee` (index `index` in the module) on whole
    /// buffers `bufs` of this kernel.
    pub fn invoke(index: usize, callee: &Kernel, bufs: Vec<usize>) -> Stmt {
        Stmt::Invoke {
            callee: index,
            name: callee.name.clone(),
            args: bufs.into_iter().map(View::whole).collect(),
            error: None,
        }
    }

    /// The statement calling kernel `callee` (index `index` in the module) on views of
    /// this kernel's buffers; an index out of range fails with a message naming the
    /// callee, added to this kernel's errors.
    pub fn invoke_views(&mut self, index: usize, callee: &Kernel, args: Vec<View>) -> Stmt {
        let error = self.errors.len();
        self.errors.push(format!(
            "{}: a view index {{0}} is out of range for a dimension of size {{1}}",
            callee.name
        ));
        Stmt::Invoke {
            callee: index,
            name: callee.name.clone(),
            args,
            error: Some(error),
        }
    }

    /// The buffers the caller allocates for a call (`Role::Local`), with their extents.
    pub fn locals(&self) -> impl Iterator<Item = (usize, &[Extent])> {
        self.buffers
            .iter()
            .enumerate()
            .filter_map(|(k, b)| match &b.role {
                Role::Local(extents) => Some((k, extents.as_slice())),
                Role::Input | Role::Output | Role::Growing => None,
            })
    }

    /// The kernels this one invokes (module indices).
    pub fn callees(&self) -> Vec<usize> {
        let mut out = Vec::new();
        visit_stmts(&self.body, &mut |s| {
            if let Stmt::Invoke { callee, .. } = s {
                out.push(*callee);
            }
        });
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether some access is addressed by a temporary (a gathered index), whose range
    /// the kernel itself must check: `with_shape_checks` cannot.
    pub fn gathers(&self) -> bool {
        let by_temp = |index: &[Index]| index.iter().any(|i| matches!(i, Index::Temp(_)));
        let mut found = false;
        visit_stmts(&self.body, &mut |s| {
            if let Stmt::Store { index, .. } | Stmt::Accumulate { index, .. } = s {
                found |= by_temp(index);
            }
        });
        visit_exprs(&self.body, &mut |e| {
            if let Expr::Load { index, .. } = e {
                found |= by_temp(index);
            }
        });
        found
    }

    /// How a buffer is named in error messages: "input k", "output k" or "local k".
    pub fn label(&self, buf: usize) -> String {
        let kind = |r: &Role| match r {
            Role::Input => "input",
            Role::Output | Role::Growing => "output",
            Role::Local(_) => "local",
        };
        let own = kind(&self.buffers[buf].role);
        let k = self.buffers[..buf]
            .iter()
            .filter(|b| kind(&b.role) == own)
            .count();
        format!("{own} {k}")
    }
}

/// The identity element of a reduction (what an empty reduction gives).
pub fn identity(kind: ReduceKind) -> f64 {
    match kind {
        ReduceKind::Sum | ReduceKind::Any => 0.0,
        ReduceKind::Prod | ReduceKind::All => 1.0,
        ReduceKind::Max | ReduceKind::LogSumExp => f64::NEG_INFINITY,
        ReduceKind::Min => f64::INFINITY,
    }
}

mod print;
mod shape_checks;
mod verify;

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
//! temporaries, shape symbols), the shape checks every kernel starts with
//! (`Kernel::with_shape_checks`), well-formedness (`Kernel::validate`), visitors
//! (`visit_stmts`, `visit_exprs`), and the text form golden tests compare. Indices are
//! per-dimension loop variables, `0` (a broadcast dimension, read with stride 0) or an
//! integer temporary (a gathered index, checked by the kernel before use), so every
//! address is `Σ index[d] · stride[d]`.
//!
//! Temporaries are single assignments: one defined inside an `if` or `while` body is not
//! visible after it; state that changes across `while` iterations lives in buffers.

use std::fmt;

use tensorlift_ir::ops::ReduceKind;
use tensorlift_ir::{DType, Literal, ScalarOp};

/// Whether a kernel reads or writes a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Input,
    Output,
    /// An output the kernel allocates and grows along axis 0 (`Stmt::Grow`); it starts
    /// with no rows, row-major, and is returned exactly sized.
    Growing,
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
    /// which must be lower than this kernel's) on buffers of this one, in the callee's
    /// buffer order; a failing callee fails this kernel with its error (the compiled
    /// kernel's error table holds its callees' after its own).
    Invoke {
        callee: usize,
        name: String,
        bufs: Vec<usize>,
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
        Stmt::Let { value, .. } | Stmt::Store { value, .. } | Stmt::Accumulate { value, .. } => {
            walk(value, f)
        }
        Stmt::If { cond, .. } | Stmt::While { cond, .. } => walk(cond, f),
        Stmt::Fail { values, .. } => values.iter().for_each(|v| walk(v, f)),
        Stmt::Grow { rows, .. } => walk(rows, f),
        Stmt::For { .. } | Stmt::Fill { .. } | Stmt::Call { .. } | Stmt::Invoke { .. } => {}
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

/// A shape requirement of a kernel: dimension (buffer, axis) must equal another buffer's
/// dimension, or 1 (`None`, a dimension read at index 0).
type Need = ((usize, usize), Option<(usize, usize)>);

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

    /// The statement calling kernel `callee` (index `index` in the module) on buffers
    /// `bufs` of this kernel.
    pub fn invoke(index: usize, callee: &Kernel, bufs: Vec<usize>) -> Stmt {
        Stmt::Invoke {
            callee: index,
            name: callee.name.clone(),
            bufs,
        }
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

    /// Checks that the kernel is well formed: every buffer, dimension, loop variable,
    /// temporary and error it refers to exists (temporaries defined earlier in an enclosing
    /// scope), indices have their buffer's rank, nothing is written to an input, and only
    /// growing buffers grow. Code generation refuses a kernel that is not.
    pub fn validate(&self) -> Result<(), String> {
        struct Scope<'k> {
            kernel: &'k Kernel,
            vars: Vec<LoopVar>,
            temps: Vec<Temp>,
        }
        impl Scope<'_> {
            fn buffer(&self, buf: usize) -> Result<&Buffer, String> {
                self.kernel
                    .buffers
                    .get(buf)
                    .ok_or_else(|| format!("buffer {buf} does not exist"))
            }
            fn writable(&self, buf: usize) -> Result<(), String> {
                match self.buffer(buf)?.role {
                    Role::Input => Err(format!("input buffer {buf} is written")),
                    Role::Output | Role::Growing => Ok(()),
                }
            }
            fn error(&self, error: usize) -> Result<(), String> {
                (error < self.kernel.errors.len())
                    .then_some(())
                    .ok_or_else(|| format!("error {error} is not in the kernel's list"))
            }
            fn index(&mut self, buf: usize, index: &[Index]) -> Result<(), String> {
                let rank = self.buffer(buf)?.rank;
                if index.len() != rank {
                    return Err(format!(
                        "buffer {buf} of rank {rank} indexed by {} entries",
                        index.len()
                    ));
                }
                for i in index {
                    match i {
                        Index::Var(v) if !self.vars.contains(v) => {
                            return Err(format!("loop variable i{v} is not bound"))
                        }
                        Index::Temp(t) if !self.temps.contains(t) => {
                            return Err(format!("temporary t{t} is not defined"))
                        }
                        _ => {}
                    }
                }
                Ok(())
            }
            fn expr(&mut self, e: &Expr) -> Result<(), String> {
                match e {
                    Expr::Load { buf, index } => self.index(*buf, index),
                    Expr::Const(..) => Ok(()),
                    Expr::Temp(t) => self
                        .temps
                        .contains(t)
                        .then_some(())
                        .ok_or_else(|| format!("temporary t{t} is not defined")),
                    Expr::Apply { args, .. } => args.iter().try_for_each(|a| self.expr(a)),
                    Expr::Var(v) => self
                        .vars
                        .contains(v)
                        .then_some(())
                        .ok_or_else(|| format!("loop variable i{v} is not bound")),
                    Expr::Dim { buf, dim } => {
                        let rank = self.buffer(*buf)?.rank;
                        (*dim < rank)
                            .then_some(())
                            .ok_or_else(|| format!("buffer {buf} has no dimension {dim}"))
                    }
                }
            }
            /// A nested body: its temporaries are not visible after it.
            fn nested(&mut self, body: &[Stmt]) -> Result<(), String> {
                let (vars, temps) = (self.vars.len(), self.temps.len());
                let r = self.body(body);
                self.vars.truncate(vars);
                self.temps.truncate(temps);
                r
            }
            fn body(&mut self, body: &[Stmt]) -> Result<(), String> {
                for s in body {
                    match s {
                        Stmt::For {
                            var,
                            buf,
                            dim,
                            body,
                            ..
                        } => {
                            let b = self.buffer(*buf)?;
                            if *dim >= b.rank || self.vars.contains(var) {
                                return Err(format!(
                                    "loop i{var} over {buf}.shape[{dim}] is invalid"
                                ));
                            }
                            // Its length changes while the kernel runs (the shape checks at
                            // entry see it empty): walk it with `while` and `Dim` instead.
                            if b.role == Role::Growing && *dim == 0 {
                                return Err(format!(
                                    "loop i{var} over the rows of growing buffer {buf}"
                                ));
                            }
                            self.vars.push(*var);
                            self.nested(body)?;
                            self.vars.pop();
                        }
                        Stmt::Let { temp, value, .. } => {
                            self.expr(value)?;
                            self.temps.push(*temp);
                        }
                        Stmt::Accumulate {
                            buf,
                            kind: ReduceKind::LogSumExp,
                            ..
                        } if self
                            .kernel
                            .buffers
                            .get(*buf)
                            .is_some_and(|b| !b.dtype.is_float()) =>
                        {
                            return Err(format!(
                                "logsumexp into buffer {buf}, which is not a float buffer"
                            ));
                        }
                        Stmt::Store { buf, index, value }
                        | Stmt::Accumulate {
                            buf, index, value, ..
                        } => {
                            self.writable(*buf)?;
                            self.index(*buf, index)?;
                            self.expr(value)?;
                        }
                        Stmt::Fill { buf, .. } => self.writable(*buf)?,
                        Stmt::If {
                            cond,
                            then,
                            otherwise,
                        } => {
                            self.expr(cond)?;
                            self.nested(then)?;
                            self.nested(otherwise)?;
                        }
                        Stmt::While { cond, body } => {
                            self.expr(cond)?;
                            self.nested(body)?;
                        }
                        Stmt::Fail { error, values } => {
                            self.error(*error)?;
                            values.iter().try_for_each(|v| self.expr(v))?;
                        }
                        Stmt::Call { func, bufs, error } => {
                            self.error(*error)?;
                            let (name, operands) = match func {
                                SupportCall::Dot => ("dot", 3),
                                SupportCall::Softmax => ("softmax", 2),
                            };
                            let [ins @ .., out] = bufs.as_slice() else {
                                return Err(format!("{name} takes {operands} buffers"));
                            };
                            if bufs.len() != operands {
                                return Err(format!("{name} takes {operands} buffers"));
                            }
                            let dtype = self.buffer(*out)?.dtype;
                            for b in ins {
                                if self.buffer(*b)?.dtype != dtype {
                                    return Err(format!("{name} of buffers of different dtypes"));
                                }
                            }
                            if !matches!(dtype, DType::Float64 | DType::Float32) {
                                return Err(format!("{name} of {dtype} buffers: it takes floats"));
                            }
                            self.writable(*out)?;
                        }
                        Stmt::Grow { buf, rows, error } => {
                            self.error(*error)?;
                            if self.buffer(*buf)?.role != Role::Growing {
                                return Err(format!("buffer {buf} is not a growing buffer"));
                            }
                            self.expr(rows)?;
                        }
                        Stmt::Invoke { bufs, .. } => {
                            // Parameters are matched against the callee by `codegen`.
                            bufs.iter().try_for_each(|b| self.buffer(*b).map(|_| ()))?;
                        }
                    }
                }
                Ok(())
            }
        }
        let mut scope = Scope {
            kernel: self,
            vars: Vec::new(),
            temps: Vec::new(),
        };
        scope.body(&self.body)
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

    /// How a buffer is named in error messages: "input k" or "output k".
    pub fn label(&self, buf: usize) -> String {
        let input = self.buffers[buf].role == Role::Input;
        let k = self.buffers[..buf]
            .iter()
            .filter(|b| (b.role == Role::Input) == input)
            .count();
        if input {
            format!("input {k}")
        } else {
            format!("output {k}")
        }
    }

    /// The kernel with checks in front of its body that every buffer dimension a loop
    /// walks has that loop's size, and every dimension read at index 0 (broadcast) has
    /// size 1: with them, no load or store indexed by loop variables leaves its buffer,
    /// whatever shapes the caller passes. The kernel must be well formed (`validate`).
    pub fn with_shape_checks(mut self) -> Kernel {
        fn walk(
            body: &[Stmt],
            extents: &mut Vec<(LoopVar, (usize, usize))>,
            needs: &mut Vec<Need>,
        ) {
            fn access(
                buf: usize,
                index: &[Index],
                extents: &[(LoopVar, (usize, usize))],
                needs: &mut Vec<Need>,
            ) {
                for (d, i) in index.iter().enumerate() {
                    let need = match i {
                        Index::Var(v) => match extents.iter().find(|(var, _)| var == v) {
                            Some((_, ext)) if *ext != (buf, d) => ((buf, d), Some(*ext)),
                            _ => continue,
                        },
                        Index::Zero => ((buf, d), None),
                        Index::Temp(_) => continue,
                    };
                    if !needs.contains(&need) {
                        needs.push(need);
                    }
                }
            }
            fn loads(e: &Expr, out: &mut Vec<(usize, Vec<Index>)>) {
                match e {
                    Expr::Load { buf, index } => out.push((*buf, index.clone())),
                    Expr::Apply { args, .. } => args.iter().for_each(|a| loads(a, out)),
                    Expr::Const(..) | Expr::Temp(_) | Expr::Dim { .. } | Expr::Var(_) => {}
                }
            }
            for s in body {
                let mut reads = Vec::new();
                match s {
                    Stmt::For {
                        var,
                        buf,
                        dim,
                        body,
                        ..
                    } => {
                        extents.push((*var, (*buf, *dim)));
                        walk(body, extents, needs);
                        extents.pop();
                    }
                    Stmt::Let { value, .. } => loads(value, &mut reads),
                    Stmt::Store { buf, index, value }
                    | Stmt::Accumulate {
                        buf, index, value, ..
                    } => {
                        reads.push((*buf, index.clone()));
                        loads(value, &mut reads);
                    }
                    Stmt::If {
                        cond,
                        then,
                        otherwise,
                    } => {
                        loads(cond, &mut reads);
                        walk(then, extents, needs);
                        walk(otherwise, extents, needs);
                    }
                    Stmt::While { cond, body } => {
                        loads(cond, &mut reads);
                        walk(body, extents, needs);
                    }
                    Stmt::Fail { values, .. } => values.iter().for_each(|v| loads(v, &mut reads)),
                    Stmt::Grow { rows, .. } => loads(rows, &mut reads),
                    Stmt::Fill { .. } | Stmt::Call { .. } | Stmt::Invoke { .. } => {}
                }
                for (buf, index) in reads {
                    access(buf, &index, extents, needs);
                }
            }
        }
        let mut needs = Vec::new();
        walk(&self.body, &mut Vec::new(), &mut needs);
        let mut checks = Vec::with_capacity(needs.len());
        for ((buf, dim), extent) in needs {
            let error = self.errors.len();
            let size = Expr::Dim { buf, dim };
            let (expected, message) = match extent {
                Some((eb, ed)) => (
                    Expr::Dim { buf: eb, dim: ed },
                    format!(
                        "{} has {{0}} elements along axis {dim}, expected {{1}} (the size of {}'s axis {ed})",
                        self.label(buf),
                        self.label(eb)
                    ),
                ),
                None => (
                    Expr::int(1),
                    format!(
                        "{} has {{0}} elements along axis {dim}, which is broadcast: expected {{1}}",
                        self.label(buf)
                    ),
                ),
            };
            self.errors.push(message);
            checks.push(Stmt::require_equal(size, expected, error));
        }
        checks.append(&mut self.body);
        self.body = checks;
        self
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

struct Printer<'a> {
    kernel: &'a Kernel,
}

impl Printer<'_> {
    fn index(&self, f: &mut fmt::Formatter<'_>, buf: usize, index: &[Index]) -> fmt::Result {
        write!(f, "{}[", self.kernel.buffers[buf].name)?;
        for (k, i) in index.iter().enumerate() {
            if k > 0 {
                f.write_str(", ")?;
            }
            match i {
                Index::Var(v) => write!(f, "i{v}")?,
                Index::Zero => f.write_str("0")?,
                Index::Temp(t) => write!(f, "t{t}")?,
            }
        }
        f.write_str("]")
    }

    fn expr(&self, f: &mut fmt::Formatter<'_>, e: &Expr) -> fmt::Result {
        match e {
            Expr::Load { buf, index } => self.index(f, *buf, index),
            Expr::Const(l, d) => write!(f, "{l}:{d}"),
            Expr::Temp(t) => write!(f, "t{t}"),
            Expr::Dim { buf, dim } => write!(f, "{}.shape[{dim}]", self.kernel.buffers[*buf].name),
            Expr::Var(v) => write!(f, "i{v}"),
            Expr::Apply { op, args, .. } => {
                write!(f, "{}(", op.to_string().to_lowercase())?;
                for (k, a) in args.iter().enumerate() {
                    if k > 0 {
                        f.write_str(", ")?;
                    }
                    self.expr(f, a)?;
                }
                f.write_str(")")
            }
        }
    }

    fn stmts(&self, f: &mut fmt::Formatter<'_>, body: &[Stmt], depth: usize) -> fmt::Result {
        let pad = "  ".repeat(depth);
        for s in body {
            f.write_str(&pad)?;
            match s {
                Stmt::For {
                    var,
                    buf,
                    dim,
                    parallel,
                    body,
                } => {
                    let kw = if *parallel { "parallel for" } else { "for" };
                    let name = &self.kernel.buffers[*buf].name;
                    writeln!(f, "{kw} i{var} in 0..{name}.shape[{dim}]:")?;
                    self.stmts(f, body, depth + 1)?;
                }
                Stmt::Let { temp, dtype, value } => {
                    write!(f, "t{temp}: {dtype} = ")?;
                    self.expr(f, value)?;
                    writeln!(f)?;
                }
                Stmt::Store { buf, index, value } => {
                    self.index(f, *buf, index)?;
                    f.write_str(" = ")?;
                    self.expr(f, value)?;
                    writeln!(f)?;
                }
                Stmt::Accumulate {
                    buf,
                    index,
                    kind,
                    value,
                } => {
                    self.index(f, *buf, index)?;
                    write!(f, " {}= ", format!("{kind:?}").to_lowercase())?;
                    self.expr(f, value)?;
                    writeln!(f)?;
                }
                Stmt::Fill { buf, kind } => {
                    let name = &self.kernel.buffers[*buf].name;
                    writeln!(f, "fill {name} with {}", identity(*kind))?;
                }
                Stmt::If {
                    cond,
                    then,
                    otherwise,
                } => {
                    f.write_str("if ")?;
                    self.expr(f, cond)?;
                    writeln!(f, ":")?;
                    self.stmts(f, then, depth + 1)?;
                    if !otherwise.is_empty() {
                        writeln!(f, "{pad}else:")?;
                        self.stmts(f, otherwise, depth + 1)?;
                    }
                }
                Stmt::While { cond, body } => {
                    f.write_str("while ")?;
                    self.expr(f, cond)?;
                    writeln!(f, ":")?;
                    self.stmts(f, body, depth + 1)?;
                }
                Stmt::Fail { error, values } => {
                    let message = self.kernel.errors.get(*error).map_or("?", |m| m.as_str());
                    write!(f, "fail {message:?}")?;
                    for v in values {
                        f.write_str(", ")?;
                        self.expr(f, v)?;
                    }
                    writeln!(f)?;
                }
                Stmt::Call { func, bufs, error } => {
                    write!(f, "call {}(", format!("{func:?}").to_lowercase())?;
                    for (k, b) in bufs.iter().enumerate() {
                        if k > 0 {
                            f.write_str(", ")?;
                        }
                        f.write_str(&self.kernel.buffers[*b].name)?;
                    }
                    let message = self.kernel.errors.get(*error).map_or("?", |m| m.as_str());
                    writeln!(f, ") or fail {message:?}")?;
                }
                Stmt::Grow { buf, rows, error } => {
                    write!(f, "grow {} to ", self.kernel.buffers[*buf].name)?;
                    self.expr(f, rows)?;
                    let message = self.kernel.errors.get(*error).map_or("?", |m| m.as_str());
                    writeln!(f, " rows or fail {message:?}")?;
                }
                Stmt::Invoke { name, bufs, .. } => {
                    write!(f, "invoke {name}(")?;
                    for (k, b) in bufs.iter().enumerate() {
                        if k > 0 {
                            f.write_str(", ")?;
                        }
                        f.write_str(&self.kernel.buffers[*b].name)?;
                    }
                    writeln!(f, ")")?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kernel {}(", self.name)?;
        for (k, b) in self.buffers.iter().enumerate() {
            if k > 0 {
                f.write_str(", ")?;
            }
            let role = match b.role {
                Role::Input => "in",
                Role::Output => "out",
                Role::Growing => "growing",
            };
            write!(f, "{role} {}: {}[{}d]", b.name, b.dtype, b.rank)?;
        }
        writeln!(f, "):")?;
        Printer { kernel: self }.stmts(f, &self.body, 1)
    }
}

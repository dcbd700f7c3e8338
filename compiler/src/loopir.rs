//! The loop-nest IR (DESIGN §11): what a jitted kernel does, as typed, printable loops over
//! buffers, before any machine code exists.
//!
//! Owns: `Kernel` (buffer parameters with dtype and rank; each buffer has shape symbols
//! `b.shape[d]` and stride symbols `b.stride[d]`, in elements, bound at call time), the
//! statements (`for` over a shape symbol, with a parallel flag; scalar `let`; `store`;
//! `accumulate` into a buffer element with a reduction operator; `fill` of a whole buffer),
//! scalar expressions (loads, literals, scalar ops, temporaries), and the text form golden
//! tests compare. Indices are per-dimension loop variables or `0` (a broadcast dimension,
//! read with stride 0), so every address is `Σ index[d] · stride[d]`.

use std::fmt;

use tensorlift_ir::ops::ReduceKind;
use tensorlift_ir::{DType, Literal, ScalarOp};

/// Whether a kernel reads or writes a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Input,
    Output,
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
}

/// A kernel: buffers and a body.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    pub name: String,
    pub buffers: Vec<Buffer>,
    pub body: Vec<Stmt>,
}

impl Kernel {
    /// Every scalar op the kernel applies (for support checks and symbol registration).
    pub fn scalar_ops(&self) -> Vec<(ScalarOp, DType)> {
        fn expr(e: &Expr, out: &mut Vec<(ScalarOp, DType)>) {
            match e {
                Expr::Apply { op, args, dtype } => {
                    out.push((*op, *dtype));
                    args.iter().for_each(|a| expr(a, out));
                }
                Expr::Load { .. } | Expr::Const(..) | Expr::Temp(_) => {}
            }
        }
        fn stmts(body: &[Stmt], out: &mut Vec<(ScalarOp, DType)>) {
            for s in body {
                match s {
                    Stmt::For { body, .. } => stmts(body, out),
                    Stmt::Let { value, .. }
                    | Stmt::Store { value, .. }
                    | Stmt::Accumulate { value, .. } => expr(value, out),
                    Stmt::Fill { .. } => {}
                }
            }
        }
        let mut out = Vec::new();
        stmts(&self.body, &mut out);
        out
    }
}

/// The identity element of a reduction (what an empty reduction gives).
pub fn identity(kind: ReduceKind) -> f64 {
    match kind {
        ReduceKind::Sum | ReduceKind::Any => 0.0,
        ReduceKind::Prod | ReduceKind::All => 1.0,
        ReduceKind::Max => f64::NEG_INFINITY,
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
            }
        }
        f.write_str("]")
    }

    fn expr(&self, f: &mut fmt::Formatter<'_>, e: &Expr) -> fmt::Result {
        match e {
            Expr::Load { buf, index } => self.index(f, *buf, index),
            Expr::Const(l, d) => write!(f, "{l}:{d}"),
            Expr::Temp(t) => write!(f, "t{t}"),
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
            };
            write!(f, "{role} {}: {}[{}d]", b.name, b.dtype, b.rank)?;
        }
        writeln!(f, "):")?;
        Printer { kernel: self }.stmts(f, &self.body, 1)
    }
}

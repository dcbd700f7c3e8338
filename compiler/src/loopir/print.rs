//! The text form of loop-nest kernels (`Display for Kernel`), which the lowering golden
//! tests compare.

use std::fmt;

use super::*;

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
            Expr::Reg(r) => write!(f, "r{r}"),
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
                Stmt::Reg { reg, dtype, init } => {
                    write!(f, "reg r{reg}: {dtype} = ")?;
                    self.expr(f, init)?;
                    writeln!(f)?;
                }
                Stmt::Set { reg, value } => {
                    write!(f, "r{reg} := ")?;
                    self.expr(f, value)?;
                    writeln!(f)?;
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
                Stmt::Invoke { name, args, .. } => {
                    write!(f, "invoke {name}(")?;
                    for (k, view) in args.iter().enumerate() {
                        if k > 0 {
                            f.write_str(", ")?;
                        }
                        f.write_str(&self.kernel.buffers[view.buf].name)?;
                        if !view.at.is_empty() {
                            f.write_str("[")?;
                            for (d, e) in view.at.iter().enumerate() {
                                if d > 0 {
                                    f.write_str(", ")?;
                                }
                                self.expr(f, e)?;
                            }
                            f.write_str("]")?;
                        }
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
            let role = match &b.role {
                Role::Input => "in",
                Role::Output => "out",
                Role::Growing => "growing",
                Role::Local(_) => "local",
            };
            write!(f, "{role} {}: {}[{}d]", b.name, b.dtype, b.rank)?;
            if let Role::Local(extents) = &b.role {
                let sizes: Vec<String> = extents
                    .iter()
                    .map(|e| match e {
                        Extent::Fixed(n) => n.to_string(),
                        Extent::Of { buf, dim } => {
                            let name = self.buffers.get(*buf).map_or("?", |b| b.name.as_str());
                            format!("{name}.shape[{dim}]")
                        }
                    })
                    .collect();
                write!(f, " = [{}]", sizes.join(", "))?;
            }
        }
        writeln!(f, "):")?;
        Printer { kernel: self }.stmts(f, &self.body, 1)
    }
}

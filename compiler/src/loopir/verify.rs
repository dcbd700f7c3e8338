//! Well-formedness of loop-nest kernels (`Kernel::validate`): every buffer, dimension,
//! loop variable, temporary and error a kernel refers to exists, indices have their
//! buffer's rank, inputs are never written, and only growing buffers grow. Code
//! generation refuses a kernel that is not well formed.

use super::*;

impl Kernel {
    /// Checks that the kernel is well formed: every buffer, dimension, loop variable,
    /// temporary and error it refers to exists (temporaries defined earlier in an enclosing
    /// scope), indices have their buffer's rank, nothing is written to an input, and only
    /// growing buffers grow. Code generation refuses a kernel that is not.
    pub fn validate(&self) -> Result<(), String> {
        struct Scope<'k> {
            kernel: &'k Kernel,
            vars: Vec<LoopVar>,
            temps: Vec<Temp>,
            regs: Vec<(Reg, DType)>,
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
                    Role::Output | Role::Growing | Role::Local(_) => Ok(()),
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
                    Expr::Reg(r) => self
                        .regs
                        .iter()
                        .any(|(x, _)| x == r)
                        .then_some(())
                        .ok_or_else(|| format!("register r{r} is not declared")),
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
                let (vars, temps, regs) = (self.vars.len(), self.temps.len(), self.regs.len());
                let r = self.body(body);
                self.vars.truncate(vars);
                self.temps.truncate(temps);
                self.regs.truncate(regs);
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
                        Stmt::Reg { reg, dtype, init } => {
                            self.expr(init)?;
                            if self.regs.iter().any(|(r, _)| r == reg) {
                                return Err(format!("register r{reg} is declared twice"));
                            }
                            if !matches!(dtype, DType::Float64 | DType::Int64 | DType::Bool) {
                                return Err(format!("register r{reg} of {dtype}: registers hold float64, int64 or bool"));
                            }
                            self.regs.push((*reg, *dtype));
                        }
                        Stmt::Set { reg, value } => {
                            if !self.regs.iter().any(|(r, _)| r == reg) {
                                return Err(format!("register r{reg} is not declared"));
                            }
                            self.expr(value)?;
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
                        Stmt::Invoke { args, error, .. } => {
                            // Parameters are matched against the callee by `codegen`.
                            for view in args {
                                let rank = self.buffer(view.buf)?.rank;
                                if view.at.len() > rank {
                                    return Err(format!(
                                        "buffer {} of rank {rank} viewed at {} indices",
                                        view.buf,
                                        view.at.len()
                                    ));
                                }
                                view.at.iter().try_for_each(|e| self.expr(e))?;
                            }
                            match error {
                                Some(e) => self.error(*e)?,
                                None if args.iter().any(|v| !v.at.is_empty()) => {
                                    return Err("an invoke of views has no error for an \
                                                index out of range"
                                        .into())
                                }
                                None => {}
                            }
                        }
                    }
                }
                Ok(())
            }
        }
        self.validate_locals()?;
        let mut scope = Scope {
            kernel: self,
            vars: Vec::new(),
            temps: Vec::new(),
            regs: Vec::new(),
        };
        scope.body(&self.body)
    }
}

impl Kernel {
    /// Local buffers come after every other buffer, and their extents name dimensions
    /// of inputs.
    fn validate_locals(&self) -> Result<(), String> {
        let first_local = self
            .buffers
            .iter()
            .position(|b| matches!(b.role, Role::Local(_)))
            .unwrap_or(self.buffers.len());
        for (k, b) in self.buffers.iter().enumerate() {
            let Role::Local(extents) = &b.role else {
                if k > first_local {
                    return Err(format!("buffer {k} comes after a local buffer"));
                }
                continue;
            };
            if extents.len() != b.rank {
                return Err(format!(
                    "local buffer {k} of rank {} has {} extents",
                    b.rank,
                    extents.len()
                ));
            }
            for e in extents {
                if let Extent::Of { buf, dim } = e {
                    let ok = self
                        .buffers
                        .get(*buf)
                        .is_some_and(|i| i.role == Role::Input && *dim < i.rank);
                    if !ok {
                        return Err(format!(
                            "local buffer {k} takes a size from {buf}.shape[{dim}], \
                             which is not an input dimension"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

//! The shape-check pass (`Kernel::with_shape_checks`): checks in front of a kernel's body
//! that every buffer dimension a loop walks has that loop's size and every dimension read
//! at index 0 has size 1 and every local buffer has its extents, so no access indexed
//! by loop variables leaves its buffer, whatever shapes the caller passes.

use super::*;

/// A shape requirement of a kernel: dimension (buffer, axis) must equal another buffer's
/// dimension, or 1 (`None`, a dimension read at index 0).
type Need = ((usize, usize), Option<(usize, usize)>);

impl Kernel {
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
                    Expr::Const(..)
                    | Expr::Temp(_)
                    | Expr::Dim { .. }
                    | Expr::Var(_)
                    | Expr::Reg(_) => {}
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
                    Stmt::Let { value, .. }
                    | Stmt::Set { value, .. }
                    | Stmt::Reg { init: value, .. } => loads(value, &mut reads),
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
                    Stmt::Invoke { args, .. } => {
                        args.iter()
                            .flat_map(|v| &v.at)
                            .for_each(|e| loads(e, &mut reads));
                    }
                    Stmt::Fill { .. } | Stmt::Call { .. } => {}
                }
                for (buf, index) in reads {
                    access(buf, &index, extents, needs);
                }
            }
        }
        let mut needs = Vec::new();
        walk(&self.body, &mut Vec::new(), &mut needs);
        let mut checks = Vec::with_capacity(needs.len());
        let locals: Vec<(usize, Vec<Extent>)> =
            self.locals().map(|(k, e)| (k, e.to_vec())).collect();
        for (buf, extents) in locals {
            for (dim, extent) in extents.into_iter().enumerate() {
                let error = self.errors.len();
                let (expected, source) = match extent {
                    Extent::Fixed(n) => (Expr::int(n as i64), String::new()),
                    Extent::Of { buf: b, dim: d } => (
                        Expr::Dim { buf: b, dim: d },
                        format!(" (the size of {}'s axis {d})", self.label(b)),
                    ),
                };
                self.errors.push(format!(
                    "{} has {{0}} elements along axis {dim}, expected {{1}}{source}",
                    self.label(buf)
                ));
                checks.push(Stmt::require_equal(Expr::Dim { buf, dim }, expected, error));
            }
        }
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

//! Loops of kernels: counted loops, innermost loops with register accumulators and f64x2
//! or f32x4 vector bodies behind a run-time stride-1 check, strip loops that run math
//! functions through the runtime's array versions between segments (`StripPlan`), and
//! fills.

use super::logsumexp::{one_pass_position, LSE_SLOTS};
use super::rows::row_plan;
use super::*;

/// A counted loop being emitted (see `Gen::open_loop`).
pub(super) struct OpenLoop {
    pub(super) counter: Variable,
    /// The counter's value in the body.
    pub(super) at: Value,
    pub(super) step: i64,
    pub(super) header: cranelift_codegen::ir::Block,
    pub(super) exit: cranelift_codegen::ir::Block,
}

/// A vector accumulator of a reduction in registers, and for max/min whether a NaN was
/// seen (its value then ignores NaNs).
pub(super) struct VectorAcc {
    pub(super) value: Variable,
    pub(super) nan_seen: Option<Variable>,
}

/// How an innermost loop body runs by strips: segments of statements (indices into the
/// body), the array math call after each segment but the last, and the temps that live in
/// scratch slots (values crossing a call, and the calls' arguments and results).
pub(super) struct StripPlan {
    pub(super) segments: Vec<Vec<usize>>,
    pub(super) calls: Vec<(ScalarOp, Temp, Temp)>,
    pub(super) slots: HashMap<Temp, usize>,
    /// Per segment: slot temps it reads.
    pub(super) reads: Vec<Vec<Temp>>,
    /// Array function results of dtype float32: rounded to it in the strip after the
    /// call (`tl_round_f32_array`; or when read, in a kernel without float32 buffers),
    /// since the array functions compute in f64, as the scalar path does before rounding.
    pub(super) rounded: Vec<Temp>,
}

pub(super) fn strip_plan(body: &[Stmt]) -> Option<StripPlan> {
    fn temps_of(e: &Expr, out: &mut Vec<Temp>) {
        match e {
            Expr::Temp(t) => out.push(*t),
            Expr::Apply { args, .. } => args.iter().for_each(|a| temps_of(a, out)),
            Expr::Load { .. }
            | Expr::Const(..)
            | Expr::Dim { .. }
            | Expr::Var(_)
            | Expr::Reg(_) => {}
        }
    }
    let mut segments = vec![Vec::new()];
    let mut calls = Vec::new();
    let mut dtypes = HashMap::new();
    for (k, s) in body.iter().enumerate() {
        match s {
            Stmt::Let {
                temp,
                dtype,
                value: Expr::Apply { op, args, .. },
            } if dtype.is_float() && float_array_support(*op).is_some() => {
                let [Expr::Temp(a)] = args.as_slice() else {
                    return None;
                };
                calls.push((*op, *a, *temp));
                dtypes.insert(*temp, *dtype);
                segments.push(Vec::new());
            }
            Stmt::Let { temp, dtype, .. } => {
                dtypes.insert(*temp, *dtype);
                segments.last_mut()?.push(k);
            }
            Stmt::Store { .. } | Stmt::Accumulate { .. } => segments.last_mut()?.push(k),
            _ => return None,
        }
    }
    if calls.is_empty() {
        return None;
    }
    // Where each temp of the body is made: by a `let` of a segment, or by the array call
    // after segment k (counted as made in k).
    let mut defined_in: HashMap<Temp, usize> = HashMap::new();
    for (seg, stmts) in segments.iter().enumerate() {
        for k in stmts {
            if let Stmt::Let { temp, .. } = &body[*k] {
                defined_in.insert(*temp, seg);
            }
        }
    }
    for (seg, (_, _, out)) in calls.iter().enumerate() {
        defined_in.insert(*out, seg);
    }
    let mut slotted: Vec<Temp> = Vec::new();
    let mut reads = Vec::new();
    for (seg, stmts) in segments.iter().enumerate() {
        let mut used = Vec::new();
        for k in stmts {
            match &body[*k] {
                Stmt::Let { value, .. }
                | Stmt::Store { value, .. }
                | Stmt::Accumulate { value, .. } => temps_of(value, &mut used),
                _ => {}
            }
        }
        used.sort_unstable();
        used.dedup();
        // Temps of other segments cross a call (temps from outside the loop are scalars
        // in registers).
        let foreign: Vec<Temp> = used
            .into_iter()
            .filter(|t| defined_in.get(t).is_some_and(|s| *s != seg))
            .collect();
        slotted.extend(&foreign);
        reads.push(foreign);
    }
    for (_, a, out) in &calls {
        slotted.push(*a);
        slotted.push(*out);
    }
    slotted.sort_unstable();
    slotted.dedup();
    // Slots hold f64s: float64 values, and float32 ones widened (exactly).
    if slotted
        .iter()
        .any(|t| !matches!(dtypes.get(t), Some(DType::Float64 | DType::Float32)))
    {
        return None;
    }
    // Only array functions write values that are not float32 already (every `let` of a
    // float32 value rounds it before it is slotted).
    let rounded = calls
        .iter()
        .map(|(_, _, out)| *out)
        .filter(|t| dtypes.get(t) == Some(&DType::Float32))
        .collect();
    let slots = slotted
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, i))
        .collect();
    Some(StripPlan {
        segments,
        calls,
        slots,
        reads,
        rounded,
    })
}

/// Scratch slots the kernel's strip loops need (the largest; loops run one at a time).
pub(super) fn scratch_slots(kernel: &Kernel) -> usize {
    fn walk(body: &[Stmt]) -> usize {
        let inner = body.iter().any(|s| matches!(s, Stmt::For { .. }));
        let lse = |s: &Stmt| {
            matches!(
                s,
                Stmt::Accumulate {
                    kind: ReduceKind::LogSumExp,
                    ..
                }
            )
        };
        let here = if inner {
            0
        } else if body.iter().any(lse) {
            LSE_SLOTS
        } else {
            strip_plan(body).map_or(0, |p| p.slots.len())
        };
        body.iter()
            .map(|s| match s {
                Stmt::For { body, .. } => walk(body),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
            .max(here)
    }
    walk(&kernel.body)
}

/// A loop of an element-wise nest: its variable and the buffer dimension it runs over.
pub(super) type NestLoop = (LoopVar, usize, usize);

/// When `s` is an element-wise nest — at least two `for`s, each the only statement of
/// the one around it, the innermost body plain `let`s and stores, every load and store
/// indexed by the nest's variables in order, no loop variable used as a value — its
/// loops (outermost first) and innermost body: over buffers laid out contiguously it is
/// one loop over all their elements.
pub(super) fn elementwise_nest(s: &Stmt) -> Option<(Vec<NestLoop>, &[Stmt])> {
    let mut loops = Vec::new();
    let mut at = s;
    let body = loop {
        let Stmt::For {
            var,
            buf,
            dim,
            body,
            ..
        } = at
        else {
            return None;
        };
        loops.push((*var, *buf, *dim));
        match body.as_slice() {
            [inner @ Stmt::For { .. }] => at = inner,
            _ => break body.as_slice(),
        }
    };
    if loops.len() < 2 {
        return None;
    }
    let full: Vec<Index> = loops.iter().map(|(v, _, _)| Index::Var(*v)).collect();
    fn expr_ok(e: &Expr, full: &[Index]) -> bool {
        match e {
            Expr::Load { index, .. } => index == full,
            Expr::Var(_) | Expr::Reg(_) => false,
            Expr::Apply { args, .. } => args.iter().all(|a| expr_ok(a, full)),
            Expr::Const(..) | Expr::Temp(_) | Expr::Dim { .. } => true,
        }
    }
    let ok = body.iter().all(|s| match s {
        Stmt::Let { value, .. } => expr_ok(value, &full),
        Stmt::Store { index, value, .. } => index == &full && expr_ok(value, &full),
        _ => false,
    });
    ok.then_some((loops, body))
}

/// The buffers `body` loads from or stores to.
fn accessed(body: &[Stmt]) -> Vec<usize> {
    let mut bufs = Vec::new();
    crate::loopir::visit_exprs(body, &mut |e| {
        if let Expr::Load { buf, .. } = e {
            bufs.push(*buf);
        }
    });
    for s in body {
        if let Stmt::Store { buf, .. } = s {
            bufs.push(*buf);
        }
    }
    bufs.sort_unstable();
    bufs.dedup();
    bufs
}

impl<'a> Gen<'a> {
    /// A loop counter starting at 0.
    pub(super) fn counter(&mut self) -> Variable {
        let c = self.b.declare_var(types::I64);
        let zero = self.b.ins().iconst(types::I64, 0);
        self.b.def_var(c, zero);
        c
    }

    /// Opens a counted loop over `counter`: its body runs while `counter + step <= bound`
    /// (`whole_steps`) or while `counter < bound`. The caller emits the body (the counter's
    /// value there is `OpenLoop::at`), then `close_loop`.
    pub(super) fn open_loop(
        &mut self,
        counter: Variable,
        bound: Value,
        step: i64,
        whole_steps: bool,
    ) -> OpenLoop {
        let (header, body, exit) = (
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
        );
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let at = self.b.use_var(counter);
        let go = if whole_steps && step > 1 {
            let end = self.b.ins().iadd_imm_s(at, step);
            self.b.ins().icmp(IntCC::SignedLessThanOrEqual, end, bound)
        } else {
            self.b.ins().icmp(IntCC::SignedLessThan, at, bound)
        };
        self.b.ins().brif(go, body, &[], exit, &[]);
        self.b.switch_to_block(body);
        self.b.seal_block(body);
        OpenLoop {
            counter,
            at,
            step,
            header,
            exit,
        }
    }

    /// Advances the counter, closes the loop and continues after it.
    pub(super) fn close_loop(&mut self, l: OpenLoop) {
        let next = self.b.ins().iadd_imm_s(l.at, l.step);
        self.b.def_var(l.counter, next);
        self.b.ins().jump(l.header, &[]);
        self.b.seal_block(l.header);
        self.b.switch_to_block(l.exit);
        self.b.seal_block(l.exit);
    }

    /// `for var in 0..n { body }`, one element per iteration.
    pub(super) fn scalar_loop(&mut self, var: LoopVar, n: Value, body: &[Stmt]) {
        let i = self.counter();
        let l = self.open_loop(i, n, 1, false);
        self.vars.insert(var, l.at);
        for (k, s) in body.iter().enumerate() {
            self.stmt(s, k, Lanes::One);
        }
        self.close_loop(l);
    }

    /// The accumulations of `body` into elements its loop over `var` does not walk: they
    /// accumulate in registers. (statement position, kind, buffer, index)
    pub(super) fn register_accumulations(
        body: &[Stmt],
        var: LoopVar,
    ) -> Vec<(usize, ReduceKind, usize, Vec<Index>)> {
        body.iter()
            .enumerate()
            .filter_map(|(k, s)| match s {
                Stmt::Accumulate {
                    buf, index, kind, ..
                } if !index.contains(&Index::Var(var)) => Some((k, *kind, *buf, index.clone())),
                _ => None,
            })
            .collect()
    }

    /// Whether every buffer `body` walks along `var` has stride 1 (an i8 flag).
    pub(super) fn unit_strides(&mut self, body: &[Stmt], var: LoopVar) -> Value {
        let mut cond = self.b.ins().iconst(types::I8, 1);
        for (buf, d) in Self::walked(body, var) {
            let s = self.bufs[buf].stride[d];
            let unit = self.b.ins().icmp_imm_s(IntCC::Equal, s, 1);
            cond = self.b.ins().band(cond, unit);
        }
        cond
    }

    /// `UNROLL` vector accumulators for `kind`, each holding its identity.
    pub(super) fn vector_accumulators(&mut self, kind: ReduceKind) -> Vec<VectorAcc> {
        let init = self.b.ins().f64const(identity(kind));
        let init = self.b.ins().splat(F64X2, init);
        let clear = self.b.ins().f64const(0.0);
        let clear = self.b.ins().splat(F64X2, clear);
        (0..UNROLL)
            .map(|_| {
                let value = self.b.declare_var(F64X2);
                self.b.def_var(value, init);
                let nan_seen = matches!(kind, ReduceKind::Max | ReduceKind::Min).then(|| {
                    let seen = self.b.declare_var(F64X2);
                    self.b.def_var(seen, clear);
                    seen
                });
                VectorAcc { value, nan_seen }
            })
            .collect()
    }

    /// Makes unrolled step `u`'s vector accumulators the current ones.
    pub(super) fn use_vector_accs(
        &mut self,
        reg: &[(usize, ReduceKind, usize, Vec<Index>)],
        accs: &[&[VectorAcc]],
        u: usize,
    ) {
        self.reg_accs = reg
            .iter()
            .zip(accs)
            .map(|((k, ..), a)| (*k, a[u].value))
            .collect();
        self.nan_accs = reg
            .iter()
            .zip(accs)
            .filter_map(|((k, ..), a)| a[u].nan_seen.map(|n| (*k, n)))
            .collect();
    }

    /// The larger (smaller) of an accumulator and an ordered value: `acc < x ? x : acc`,
    /// the form x64 emits as one `maxpd` (`minpd`). NaNs are tracked separately.
    pub(super) fn ordered_max_min(&mut self, kind: ReduceKind, acc: Value, x: Value) -> Value {
        let (a, b) = if kind == ReduceKind::Max {
            (acc, x)
        } else {
            (x, acc)
        };
        let beyond = self.b.ins().fcmp(FloatCC::LessThan, a, b);
        let mask = self.b.ins().bitcast(F64X2, MemFlagsData::new(), beyond);
        self.b.ins().bitselect(mask, x, acc)
    }

    /// The combination of vector accumulators' lanes into one scalar (NaN when a max/min
    /// accumulator saw one).
    pub(super) fn fold_lanes(&mut self, kind: ReduceKind, accs: &[VectorAcc]) -> Value {
        let mut all = self.b.use_var(accs[0].value);
        for a in &accs[1..] {
            let a = self.b.use_var(a.value);
            all = self.combine(kind, all, a);
        }
        let lo = self.b.ins().extractlane(all, 0);
        let hi = self.b.ins().extractlane(all, 1);
        let folded = self.combine(kind, lo, hi);
        let seen: Vec<Variable> = accs.iter().filter_map(|a| a.nan_seen).collect();
        let Some(first) = seen.first() else {
            return folded;
        };
        let mut any = self.b.use_var(*first);
        for s in &seen[1..] {
            let s = self.b.use_var(*s);
            any = self.b.ins().bor(any, s);
        }
        let any = self.b.ins().bitcast(types::I64X2, MemFlagsData::new(), any);
        let nan_seen = self.b.ins().vany_true(any);
        let nan = self.b.ins().f64const(f64::NAN);
        self.b.ins().select(nan_seen, nan, folded)
    }

    /// Writes register accumulators into their output elements.
    pub(super) fn flush_accumulations(
        &mut self,
        reg: &[(usize, ReduceKind, usize, Vec<Index>)],
        totals: &[Value],
    ) {
        for ((_, kind, buf, index), total) in reg.iter().zip(totals) {
            let old = self.load(*buf, index, Lanes::One);
            let new = self.combine(*kind, old, *total);
            self.store(*buf, index, new, Lanes::One);
        }
    }

    /// Buffers (and the dimension) that `body` walks along `var`.
    pub(super) fn walked(body: &[Stmt], var: LoopVar) -> Vec<(usize, usize)> {
        fn from_index(buf: usize, index: &[Index], var: LoopVar, out: &mut Vec<(usize, usize)>) {
            if let Some(d) = index.iter().position(|i| *i == Index::Var(var)) {
                out.push((buf, d));
            }
        }
        fn from_expr(e: &Expr, var: LoopVar, out: &mut Vec<(usize, usize)>) {
            match e {
                Expr::Load { buf, index } => from_index(*buf, index, var, out),
                Expr::Apply { args, .. } => args.iter().for_each(|a| from_expr(a, var, out)),
                Expr::Const(..)
                | Expr::Temp(_)
                | Expr::Dim { .. }
                | Expr::Var(_)
                | Expr::Reg(_) => {}
            }
        }
        let mut out = Vec::new();
        for s in body {
            match s {
                Stmt::Let { value, .. } => from_expr(value, var, &mut out),
                Stmt::Store { buf, index, value }
                | Stmt::Accumulate {
                    buf, index, value, ..
                } => {
                    from_index(*buf, index, var, &mut out);
                    from_expr(value, var, &mut out);
                }
                _ => {}
            }
        }
        out
    }

    /// Whether `body` can run two elements at a time: only float64 buffers and values.
    pub(super) fn vectorizable(&self, body: &[Stmt]) -> bool {
        body.iter().all(|s| self.vector_stmt_ok(s))
    }

    /// Whether one statement can run two elements at a time (float buffers and float or
    /// bool values; a logsumexp accumulation only as `one_pass_lse_loop` runs it).
    pub(super) fn vector_stmt_ok(&self, s: &Stmt) -> bool {
        match s {
            Stmt::Let { value, dtype, .. } => {
                Self::vector_value_ok(*dtype) && self.vector_expr_ok(value)
            }
            Stmt::Accumulate {
                kind: ReduceKind::LogSumExp,
                ..
            } => false,
            Stmt::Store { buf, value, .. } | Stmt::Accumulate { buf, value, .. } => {
                self.bufs[*buf].dtype.is_float() && self.vector_expr_ok(value)
            }
            _ => false,
        }
    }

    /// Float32 pairs are widened to f64x2; bools are lane masks.
    fn vector_value_ok(d: DType) -> bool {
        d.is_float() || d == DType::Bool
    }

    pub(super) fn vector_expr_ok(&self, e: &Expr) -> bool {
        match e {
            Expr::Load { buf, .. } => self.bufs[*buf].dtype.is_float(),
            Expr::Temp(_) => true,
            Expr::Dim { .. } | Expr::Var(_) | Expr::Reg(_) => false,
            Expr::Const(_, d) => Self::vector_value_ok(*d),
            Expr::Apply { args, dtype, .. } => {
                Self::vector_value_ok(*dtype) && args.iter().all(|a| self.vector_expr_ok(a))
            }
        }
    }

    /// Whether `body` (an innermost loop over `var`, already `vectorizable`) can run four
    /// float32 elements at a time in float32: it loads and stores only float32 buffers,
    /// stores only where it walks, accumulates nothing, and applies only operations whose
    /// float32 result equals the f64 result rounded to float32 (add, sub, mul, div, sqrt
    /// of two operands are correctly rounded and f64 has more than twice float32's
    /// precision; the others are exact) — so the results are bit for bit those of the f64
    /// path. The f64 path rounds where a value is set (`let`, store), so a rounding
    /// operation must be the whole value there, of operands that are not computed by one
    /// (an add of three float32s rounds once in f64, twice in float32).
    pub(super) fn float32_lanes_ok(&self, body: &[Stmt], var: LoopVar) -> bool {
        use ScalarOp::*;
        // The body's own temps by dtype (a temp from outside the loop is a scalar value,
        // which float32 lanes do not take).
        let mut dtypes = HashMap::new();
        for s in body {
            if let Stmt::Let { temp, dtype, .. } = s {
                dtypes.insert(*temp, *dtype);
            }
        }
        let dtype_of = |e: &Expr| match e {
            Expr::Temp(t) => dtypes.get(t).copied(),
            _ => Some(self.dtype_of(e)),
        };
        fn expr_ok(
            g: &Gen,
            e: &Expr,
            dtype_of: &dyn Fn(&Expr) -> Option<DType>,
            top: bool,
        ) -> bool {
            match e {
                Expr::Load { buf, index } => {
                    g.bufs[*buf].dtype == DType::Float32
                        && index
                            .iter()
                            .all(|i| matches!(i, Index::Var(_) | Index::Zero))
                }
                Expr::Temp(_) => true,
                Expr::Const(_, d) => matches!(d, DType::Float32 | DType::Bool),
                Expr::Dim { .. } | Expr::Var(_) | Expr::Reg(_) => false,
                Expr::Apply { op, args, dtype } => {
                    let rounds = matches!(op, Sqr | Sqrt | Reciprocal | Add | Sub | Mul | TrueDiv);
                    if rounds && (!top || args.len() > 2) {
                        return false;
                    }
                    let op_ok = match op {
                        Neg | Abs | Sqr | Sqrt | Floor | Ceil | Round | Reciprocal | Sign | Add
                        | Sub | Mul | TrueDiv | Maximum | Minimum | Clip | Identity => {
                            *dtype == DType::Float32
                        }
                        Eq | Neq | Lt | Le | Gt | Ge => *dtype == DType::Bool,
                        Switch => *dtype == DType::Float32,
                        Cast(DType::Float32) => *dtype == DType::Float32,
                        _ => false,
                    };
                    op_ok
                        && args.iter().all(|a| {
                            matches!(dtype_of(a), Some(DType::Float32) | Some(DType::Bool))
                                && expr_ok(g, a, dtype_of, false)
                        })
                        && (*op != Switch || dtype_of(&args[0]) == Some(DType::Bool))
                }
            }
        }
        body.iter().all(|s| match s {
            Stmt::Let { value, dtype, .. } => {
                matches!(dtype, DType::Float32 | DType::Bool)
                    && expr_ok(self, value, &dtype_of, true)
            }
            Stmt::Store { buf, index, value } => {
                self.bufs[*buf].dtype == DType::Float32
                    && index.contains(&Index::Var(var))
                    && expr_ok(self, value, &dtype_of, true)
            }
            _ => false,
        })
    }

    /// An element-wise nest (`elementwise_nest`): when every buffer it touches is laid out
    /// contiguously (row-major, unit innermost stride), one loop over all the elements
    /// (the outer variables held at 0, the innermost running over the product of the
    /// sizes, which with these strides addresses every element once); otherwise the nest.
    pub(super) fn collapsible_nest(&mut self, nest: &Stmt, loops: &[NestLoop], body: &[Stmt]) {
        let mut cond = self.b.ins().iconst(types::I8, 1);
        for buf in accessed(body) {
            let rank = self.bufs[buf].stride.len();
            for d in 0..rank {
                let stride = self.bufs[buf].stride[d];
                let expected = if d + 1 == rank {
                    self.b.ins().iconst(types::I64, 1)
                } else {
                    let next = self.bufs[buf].stride[d + 1];
                    let size = self.buf_dim(buf, d + 1);
                    self.b.ins().imul(next, size)
                };
                let same = self.b.ins().icmp(IntCC::Equal, stride, expected);
                cond = self.b.ins().band(cond, same);
            }
        }
        let flat = |g: &mut Self| {
            let mut n = g.b.ins().iconst(types::I64, 1);
            for (_, buf, dim) in loops {
                let size = g.buf_dim(*buf, *dim);
                n = g.b.ins().imul(n, size);
            }
            let zero = g.b.ins().iconst(types::I64, 0);
            let (outer, last) = loops.split_at(loops.len() - 1);
            for (var, _, _) in outer {
                g.vars.insert(*var, zero);
            }
            g.inner_loop(last[0].0, n, body);
        };
        self.if_else(cond, flat, |g| g.nested_loops(nest));
    }

    /// The innermost loop: register accumulators for reductions along `var`, and a
    /// vectorised body when every walked buffer has stride 1.
    pub(super) fn inner_loop(&mut self, var: LoopVar, n: Value, body: &[Stmt]) {
        if let Some(position) = one_pass_position(body, var) {
            return self.one_pass_lse_loop(var, n, body, position);
        }
        if let Some(plan) = row_plan(body, var, &self.bufs) {
            let own = |g: &mut Self| g.own_inner_loop(var, n, body);
            return self.row_call_or_loop(var, n, body, plan, own);
        }
        self.own_inner_loop(var, n, body)
    }

    /// The innermost loop the kernel runs itself: strips, or registers.
    fn own_inner_loop(&mut self, var: LoopVar, n: Value, body: &[Stmt]) {
        match strip_plan(body).filter(|_| self.vectorizable(body)) {
            Some(plan) => self.strip_or_scalar(var, n, body, plan),
            None => self.register_loop(var, n, body, true),
        }
    }

    /// Strips through scratch memory when every walked buffer has stride 1, the scalar
    /// loop otherwise.
    pub(super) fn strip_or_scalar(
        &mut self,
        var: LoopVar,
        n: Value,
        body: &[Stmt],
        plan: StripPlan,
    ) {
        let cond = self.unit_strides(body, var);
        self.if_else(
            cond,
            |g| g.strip_loop(var, n, body, plan),
            |g| g.register_loop(var, n, body, false),
        );
    }

    /// `for var in 0..n` by strips of `STRIP` elements: each segment of the body runs over
    /// the strip (two elements at a time, then one), and between segments an array math
    /// function (AVX2) transforms a scratch slot.
    pub(super) fn strip_loop(&mut self, var: LoopVar, n: Value, body: &[Stmt], plan: StripPlan) {
        self.inner = Some(var);
        let reg = Self::register_accumulations(body, var);
        // Per reduction: a scalar running total, and per strip one vector accumulator per
        // unrolled step, folded into the total after the strip's segment (so nothing the
        // vector loop updates is live across the array calls, which would spill it).
        let totals: Vec<Variable> = reg
            .iter()
            .map(|(_, kind, _, _)| {
                let sc = self.b.declare_var(types::F64);
                let init = self.b.ins().f64const(identity(*kind));
                self.b.def_var(sc, init);
                sc
            })
            .collect();
        let (strip, len) = self.open_strips(n);
        let s0 = strip.at;
        self.slots = plan.slots.clone();
        for (seg, stmts) in plan.segments.iter().enumerate() {
            // 2·UNROLL elements at a time, then two, then the odd one left; the passes
            // share the counter `j`.
            let j = self.counter();
            let accs: Vec<Vec<VectorAcc>> = reg
                .iter()
                .map(|(position, kind, _, _)| {
                    if stmts.contains(position) {
                        self.vector_accumulators(*kind)
                    } else {
                        Vec::new()
                    }
                })
                .collect();
            for (lanes, unroll) in [(Lanes::Two, UNROLL), (Lanes::Two, 1), (Lanes::One, 1)] {
                let width = if lanes == Lanes::Two { 2 } else { 1 };
                let l = self.open_loop(j, len, (width * unroll) as i64, true);
                for u in 0..unroll {
                    let ju = self.b.ins().iadd_imm_s(l.at, (u * width) as i64);
                    let at = self.b.ins().iadd(s0, ju);
                    self.vars.insert(var, at);
                    self.strip_index = Some(ju);
                    if lanes == Lanes::Two {
                        let mine: Vec<(usize, ReduceKind, usize, Vec<Index>)> = reg
                            .iter()
                            .zip(&accs)
                            .filter(|(_, a)| !a.is_empty())
                            .map(|(r, _)| r.clone())
                            .collect();
                        let all: Vec<&[VectorAcc]> = accs
                            .iter()
                            .filter(|a| !a.is_empty())
                            .map(|a| a.as_slice())
                            .collect();
                        self.use_vector_accs(&mine, &all, u);
                    } else {
                        self.reg_accs = reg
                            .iter()
                            .zip(&totals)
                            .map(|((k, ..), sc)| (*k, *sc))
                            .collect();
                        self.nan_accs.clear();
                    }
                    for t in &plan.reads[seg] {
                        let v = self.slot_load(plan.slots[t], lanes);
                        let v = if plan.rounded.contains(t) && self.round_fn.is_none() {
                            self.round_to(v, DType::Float32, lanes)
                        } else {
                            v
                        };
                        self.temps.insert(*t, v);
                    }
                    for k in stmts {
                        self.stmt(&body[*k], *k, lanes);
                        if let Stmt::Let { temp, .. } = &body[*k] {
                            if let Some(slot) = plan.slots.get(temp) {
                                let v = self.temps[temp];
                                self.slot_store(*slot, v);
                            }
                        }
                    }
                }
                self.close_loop(l);
            }
            for (((_, kind, _, _), vs), total) in reg.iter().zip(&accs).zip(&totals) {
                if !vs.is_empty() {
                    let lanes = self.fold_lanes(*kind, vs);
                    let before = self.b.use_var(*total);
                    let after = self.combine(*kind, before, lanes);
                    self.b.def_var(*total, after);
                }
            }
            if let Some((op, arg, out)) = plan.calls.get(seg) {
                let f = self.array_support[op];
                let src = self.slot_ptr(plan.slots[arg]);
                let dst = self.slot_ptr(plan.slots[out]);
                self.b.ins().call(f, &[src, dst, len]);
                // A float32 result: rounded in the strip at wide vectors, not when read.
                if let (true, Some(round)) = (plan.rounded.contains(out), self.round_fn) {
                    self.b.ins().call(round, &[dst, dst, len]);
                }
            }
        }
        self.strip_index = None;
        self.close_loop(strip);
        self.reg_accs.clear();
        self.nan_accs.clear();
        self.slots.clear();
        self.inner = None;
        let totals: Vec<Value> = totals.iter().map(|t| self.b.use_var(*t)).collect();
        self.flush_accumulations(&reg, &totals);
    }

    /// Opens `for s0 in (0..n).step_by(STRIP)`; returns the loop (s0 is its `at`) and the
    /// strip's length, min(STRIP, n − s0).
    pub(super) fn open_strips(&mut self, n: Value) -> (OpenLoop, Value) {
        let start = self.counter();
        let strip = self.open_loop(start, n, STRIP as i64, false);
        let rest = self.b.ins().isub(n, strip.at);
        let full = self.b.ins().iconst(types::I64, STRIP as i64);
        let short = self.b.ins().icmp(IntCC::SignedLessThan, rest, full);
        let len = self.b.ins().select(short, rest, full);
        (strip, len)
    }

    pub(super) fn slot_ptr(&mut self, slot: usize) -> Value {
        self.b
            .ins()
            .iadd_imm_s(self.scratch, (slot * STRIP * 8) as i64)
    }

    pub(super) fn slot_addr(&mut self, slot: usize) -> Value {
        let base = self.slot_ptr(slot);
        match self.strip_index {
            Some(j) => {
                let off = self.b.ins().imul_imm_s(j, 8);
                self.b.ins().iadd(base, off)
            }
            None => base,
        }
    }

    pub(super) fn slot_load(&mut self, slot: usize, lanes: Lanes) -> Value {
        let addr = self.slot_addr(slot);
        let ty = if lanes == Lanes::One {
            types::F64
        } else {
            F64X2
        };
        self.b.ins().load(ty, flags(), addr, 0)
    }

    pub(super) fn slot_store(&mut self, slot: usize, v: Value) {
        let addr = self.slot_addr(slot);
        self.b.ins().store(flags(), v, addr, 0);
    }

    /// The innermost loop with register accumulators for reductions along `var`, and a
    /// vectorised body (when `vector` and every walked buffer has stride 1).
    pub(super) fn register_loop(&mut self, var: LoopVar, n: Value, body: &[Stmt], vector: bool) {
        let reg = Self::register_accumulations(body, var);
        self.inner = Some(var);
        let i = self.counter();
        let scalar_accs: Vec<Variable> = reg
            .iter()
            .map(|(_, kind, buf, _)| {
                let dtype = self.bufs[*buf].dtype;
                let v = self.b.declare_var(Self::acc_type(dtype));
                let init = self.identity_of(*kind, dtype);
                self.b.def_var(v, init);
                v
            })
            .collect();
        let scalar_entry = self.b.create_block();
        if vector && self.vectorizable(body) {
            let cond = self.unit_strides(body, var);
            // One vector accumulator per unrolled step: independent dependency chains.
            let vaccs: Vec<Vec<VectorAcc>> = reg
                .iter()
                .map(|(_, kind, _, _)| self.vector_accumulators(*kind))
                .collect();
            let vector_entry = self.b.create_block();
            self.b
                .ins()
                .brif(cond, vector_entry, &[], scalar_entry, &[]);
            self.b.switch_to_block(vector_entry);
            self.b.seal_block(vector_entry);
            let lanes = if reg.is_empty() && self.float32_lanes_ok(body, var) {
                Lanes::Four
            } else {
                Lanes::Two
            };
            let width = lanes.width() as i64;
            let l = self.open_loop(i, n, width * UNROLL as i64, true);
            for u in 0..UNROLL {
                let at = self.b.ins().iadd_imm_s(l.at, width * u as i64);
                self.vars.insert(var, at);
                let all: Vec<&[VectorAcc]> = vaccs.iter().map(|a| a.as_slice()).collect();
                self.use_vector_accs(&reg, &all, u);
                for (k, s) in body.iter().enumerate() {
                    self.stmt(s, k, lanes);
                }
            }
            self.close_loop(l);
            self.nan_accs.clear();
            for ((_, kind, _, _), (accs, acc)) in reg.iter().zip(vaccs.iter().zip(&scalar_accs)) {
                let v = self.fold_lanes(*kind, accs);
                self.b.def_var(*acc, v);
            }
        }
        self.b.ins().jump(scalar_entry, &[]);
        self.b.switch_to_block(scalar_entry);
        self.b.seal_block(scalar_entry);
        // Scalar loop (the whole loop, or the tail after the vector loop).
        let l = self.open_loop(i, n, 1, false);
        self.vars.insert(var, l.at);
        self.reg_accs = reg
            .iter()
            .zip(&scalar_accs)
            .map(|((k, ..), acc)| (*k, *acc))
            .collect();
        for (k, s) in body.iter().enumerate() {
            self.stmt(s, k, Lanes::One);
        }
        self.close_loop(l);
        self.reg_accs.clear();
        self.inner = None;
        let totals: Vec<Value> = scalar_accs.iter().map(|a| self.b.use_var(*a)).collect();
        self.flush_accumulations(&reg, &totals);
    }

    /// Sets every element of a buffer (any strides) to the identity of `kind`.
    pub(super) fn fill(&mut self, buf: usize, kind: ReduceKind) {
        let base = self.buf_ptr(buf);
        self.fill_dims(buf, kind, 0, base);
    }

    pub(super) fn fill_dims(&mut self, buf: usize, kind: ReduceKind, dim: usize, addr: Value) {
        if dim == self.bufs[buf].shape.len() {
            let v = self.identity_of(kind, self.bufs[buf].dtype);
            self.store_at(buf, addr, v, Lanes::One);
            return;
        }
        let n = self.buf_dim(buf, dim);
        let step = self.bufs[buf].stride[dim];
        let step = self
            .b
            .ins()
            .imul_imm_s(step, elem_size(self.bufs[buf].dtype));
        let i = self.counter();
        let l = self.open_loop(i, n, 1, false);
        let off = self.b.ins().imul(l.at, step);
        let inner = self.b.ins().iadd(addr, off);
        self.fill_dims(buf, kind, dim + 1, inner);
        self.close_loop(l);
    }
}

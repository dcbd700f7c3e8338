//! Values in kernels: addresses, loads and stores (widening and narrowing float32),
//! constants, casts, integer wrapping, reductions' combine, and the scalar ops (inline
//! instructions, polynomial math from `vmath`, or calls of the runtime's support
//! functions).

use super::*;

impl<'a> Gen<'a> {
    /// The address of an element; in a vectorised body the walked dimension has stride 1
    /// (checked before entering it), so no multiplication is needed there.
    pub(super) fn address(&mut self, buf: usize, index: &[Index], lanes: Lanes) -> Value {
        let mut offset = self.b.ins().iconst(types::I64, 0);
        for (d, i) in index.iter().enumerate() {
            let term = match i {
                Index::Var(v) if lanes != Lanes::One && self.is_inner(*v) => self.vars[v],
                Index::Var(v) => self.b.ins().imul(self.vars[v], self.bufs[buf].stride[d]),
                Index::Temp(t) => {
                    let value = self.temps[t];
                    let dtype = self.temp_dtypes[t];
                    let at = self.widen_to_int(value, dtype);
                    self.b.ins().imul(at, self.bufs[buf].stride[d])
                }
                Index::Zero => continue,
            };
            offset = self.b.ins().iadd(offset, term);
        }
        let bytes = self
            .b
            .ins()
            .imul_imm_s(offset, elem_size(self.bufs[buf].dtype));
        let base = self.buf_ptr(buf);
        self.b.ins().iadd(base, bytes)
    }

    /// Whether `index` walks along the innermost loop variable currently vectorised.
    pub(super) fn walks(&self, index: &[Index], lanes: Lanes) -> bool {
        lanes != Lanes::One
            && index
                .iter()
                .any(|i| matches!(i, Index::Var(v) if self.is_inner(*v)))
    }

    pub(super) fn is_inner(&self, v: LoopVar) -> bool {
        self.inner == Some(v)
    }

    pub(super) fn load(&mut self, buf: usize, index: &[Index], lanes: Lanes) -> Value {
        let addr = self.address(buf, index, lanes);
        if lanes == Lanes::Four && self.walks(index, lanes) {
            return self.b.ins().load(types::F32X4, flags(), addr, 0);
        }
        if self.walks(index, lanes) {
            if self.bufs[buf].dtype == DType::Float32 {
                // Two float32s (8 bytes) widened to f64x2.
                let raw = self.b.ins().load(types::I64, flags(), addr, 0);
                let v = self.b.ins().scalar_to_vector(types::I64X2, raw);
                let little = MemFlagsData::new().with_endianness(Endianness::Little);
                let f4 = self.b.ins().bitcast(types::F32X4, little, v);
                return self.b.ins().fvpromote_low(f4);
            }
            return self.b.ins().load(F64X2, flags(), addr, 0);
        }
        let v = match self.bufs[buf].dtype {
            DType::Float64 => self.b.ins().load(types::F64, flags(), addr, 0),
            DType::Float32 => {
                let v = self.b.ins().load(types::F32, flags(), addr, 0);
                self.b.ins().fpromote(types::F64, v)
            }
            DType::Bool => self.b.ins().load(types::I8, flags(), addr, 0),
            DType::Int64 => self.b.ins().load(types::I64, flags(), addr, 0),
            DType::UInt8 => {
                let v = self.b.ins().load(types::I8, flags(), addr, 0);
                self.b.ins().uextend(types::I64, v)
            }
            d => {
                let v = self.b.ins().load(int_type(d), flags(), addr, 0);
                self.b.ins().sextend(types::I64, v)
            }
        };
        self.widen(v, lanes)
    }

    pub(super) fn store(&mut self, buf: usize, index: &[Index], v: Value, lanes: Lanes) {
        let addr = self.address(buf, index, lanes);
        if lanes == Lanes::Four && self.walks(index, lanes) {
            self.b.ins().store(flags(), v, addr, 0);
            return;
        }
        if self.walks(index, lanes) {
            if self.bufs[buf].dtype == DType::Float32 {
                // f64x2 narrowed to two float32s (8 bytes), or their float32 form when
                // they were just rounded to it.
                let f4 = match self.narrowed.get(&v) {
                    Some(n) => *n,
                    None => self.b.ins().fvdemote(v),
                };
                let little = MemFlagsData::new().with_endianness(Endianness::Little);
                let i2 = self.b.ins().bitcast(types::I64X2, little, f4);
                let raw = self.b.ins().extractlane(i2, 0);
                self.b.ins().store(flags(), raw, addr, 0);
            } else {
                self.b.ins().store(flags(), v, addr, 0);
            }
        } else {
            self.store_at(buf, addr, v, lanes);
        }
    }

    pub(super) fn store_at(&mut self, buf: usize, addr: Value, v: Value, lanes: Lanes) {
        let v = match lanes {
            Lanes::One => v,
            Lanes::Two => self.b.ins().extractlane(v, 1),
            // Never reached: float32 lanes store only where they walk.
            Lanes::Four => self.b.ins().extractlane(v, 3),
        };
        match self.bufs[buf].dtype {
            DType::Float64 => {
                self.b.ins().store(flags(), v, addr, 0);
            }
            DType::Float32 => {
                let n = match self.narrowed.get(&v) {
                    Some(n) if lanes == Lanes::One => *n,
                    _ => self.b.ins().fdemote(types::F32, v),
                };
                self.b.ins().store(flags(), n, addr, 0);
            }
            DType::Bool | DType::Int64 => {
                self.b.ins().store(flags(), v, addr, 0);
            }
            d => {
                // Integers compute in i64 and wrap to their width, as in the reference.
                let n = self.b.ins().ireduce(int_type(d), v);
                self.b.ins().store(flags(), n, addr, 0);
            }
        }
    }

    /// A scalar value as the lanes of the current mode.
    pub(super) fn widen(&mut self, v: Value, lanes: Lanes) -> Value {
        match lanes {
            Lanes::One => v,
            Lanes::Two => self.b.ins().splat(F64X2, v),
            Lanes::Four if self.b.func.dfg.value_type(v) == types::I8 => {
                // A bool byte as an all-ones / all-zeros lane mask.
                let wide = self.b.ins().sextend(types::I32, v);
                let neg = self.b.ins().ineg(wide);
                self.b.ins().splat(types::I32X4, neg)
            }
            Lanes::Four => {
                let narrow = self.b.ins().fdemote(types::F32, v);
                self.b.ins().splat(types::F32X4, narrow)
            }
        }
    }

    pub(super) fn float_const(&mut self, x: f64, lanes: Lanes) -> Value {
        if lanes == Lanes::Four {
            let c = self.b.ins().f32const(x as f32);
            return self.b.ins().splat(types::F32X4, c);
        }
        let c = self.b.ins().f64const(x);
        self.widen(c, lanes)
    }

    /// Rounds float32-typed results as the reference does.
    pub(super) fn round_to(&mut self, v: Value, dtype: DType, lanes: Lanes) -> Value {
        if dtype != DType::Float32 || lanes == Lanes::Four {
            return v;
        }
        let (n, wide) = if lanes == Lanes::Two {
            let n = self.b.ins().fvdemote(v);
            (n, self.b.ins().fvpromote_low(n))
        } else {
            let n = self.b.ins().fdemote(types::F32, v);
            (n, self.b.ins().fpromote(types::F64, n))
        };
        self.narrowed.insert(wide, n);
        wide
    }

    /// Whether `e`'s value is a float32 exactly (its f64 form needs no rounding): a load
    /// of a float32 buffer or a float32 temp (rounded where it was set).
    pub(super) fn exact_float32(&self, e: &Expr) -> bool {
        match e {
            Expr::Load { buf, .. } => self.bufs[*buf].dtype == DType::Float32,
            Expr::Temp(t) => self.temp_dtypes.get(t) == Some(&DType::Float32),
            _ => false,
        }
    }

    /// The identity of `kind` as a value of `dtype`'s domain (f64, i64 or bool byte).
    pub(super) fn identity_of(&mut self, kind: ReduceKind, dtype: DType) -> Value {
        if dtype.is_float() {
            return self.b.ins().f64const(identity(kind));
        }
        if dtype == DType::Bool {
            return self
                .b
                .ins()
                .iconst(types::I8, (kind == ReduceKind::All) as i64);
        }
        let (lo, hi) = int_range(dtype);
        let v = match kind {
            ReduceKind::Sum | ReduceKind::Any => 0,
            ReduceKind::Prod | ReduceKind::All => 1,
            ReduceKind::Max | ReduceKind::LogSumExp => lo,
            ReduceKind::Min => hi,
        };
        self.b.ins().iconst(types::I64, v)
    }

    /// The machine type of a scalar accumulator for `dtype`.
    pub(super) fn acc_type(dtype: DType) -> Type {
        if dtype.is_float() {
            types::F64
        } else if dtype == DType::Bool {
            types::I8
        } else {
            types::I64
        }
    }

    pub(super) fn combine(&mut self, kind: ReduceKind, a: Value, b: Value) -> Value {
        let ty = self.b.func.dfg.value_type(a);
        if ty == types::I64 {
            // Integers: wrapping sums and products, as the reference.
            return match kind {
                ReduceKind::Sum | ReduceKind::Any => self.b.ins().iadd(a, b),
                ReduceKind::Prod | ReduceKind::All => self.b.ins().imul(a, b),
                // (Integer logsumexps are refused by `Kernel::validate`.)
                ReduceKind::Max | ReduceKind::LogSumExp => self.b.ins().smax(a, b),
                ReduceKind::Min => self.b.ins().smin(a, b),
            };
        }
        if ty == types::I8 {
            return match kind {
                ReduceKind::All | ReduceKind::Prod | ReduceKind::Min => self.b.ins().band(a, b),
                _ => self.b.ins().bor(a, b),
            };
        }
        match kind {
            // Scalars only: vector bodies never accumulate a logsumexp (`vector_stmt_ok`).
            ReduceKind::LogSumExp => self.log_add_exp(a, b),
            ReduceKind::Sum => self.b.ins().fadd(a, b),
            ReduceKind::Prod => self.b.ins().fmul(a, b),
            ReduceKind::Max | ReduceKind::Min => {
                // Take b when it is NaN or beyond a (a NaN accumulator stays NaN): NaN
                // propagates as in the reference, with a short dependency chain on a.
                let cc = if kind == ReduceKind::Max {
                    FloatCC::LessThan
                } else {
                    FloatCC::GreaterThan
                };
                let beyond = self.b.ins().fcmp(cc, a, b);
                let nan = self.b.ins().fcmp(FloatCC::Unordered, b, b);
                let take = self.b.ins().bor(beyond, nan);
                if self.b.func.dfg.value_type(a).is_vector() {
                    let mask = self.b.ins().bitcast(F64X2, MemFlagsData::new(), take);
                    self.b.ins().bitselect(mask, b, a)
                } else {
                    self.b.ins().select(take, b, a)
                }
            }
            ReduceKind::All => self.b.ins().band(a, b),
            ReduceKind::Any => self.b.ins().bor(a, b),
        }
    }

    pub(super) fn dtype_of(&self, e: &Expr) -> DType {
        match e {
            Expr::Load { buf, .. } => self.bufs[*buf].dtype,
            Expr::Const(_, d) => *d,
            Expr::Temp(t) => self.temp_dtypes.get(t).copied().unwrap_or(DType::Float64),
            Expr::Apply { dtype, .. } => *dtype,
            Expr::Dim { .. } | Expr::Var(_) => DType::Int64,
            Expr::Reg(r) => self.reg_dtypes.get(r).copied().unwrap_or(DType::Float64),
        }
    }

    pub(super) fn expr(&mut self, e: &Expr, lanes: Lanes) -> Value {
        match e {
            Expr::Load { buf, index } => self.load(*buf, index, lanes),
            Expr::Temp(t) => {
                let v = self.temps[t];
                self.lanes_of_scalar(v, lanes)
            }
            Expr::Const(l, d) => self.constant(*l, *d, lanes),
            Expr::Dim { buf, dim } => self.buf_dim(*buf, *dim),
            Expr::Var(v) => self.vars[v],
            Expr::Reg(r) => {
                let v = self.b.use_var(self.regs[r]);
                self.lanes_of_scalar(v, lanes)
            }
            Expr::Apply { op, args, dtype } => {
                let vals: Vec<Value> = args.iter().map(|a| self.expr(a, lanes)).collect();
                let from: Vec<DType> = args.iter().map(|a| self.dtype_of(a)).collect();
                self.apply(*op, &vals, &from, *dtype, lanes)
            }
        }
    }

    pub(super) fn constant(&mut self, l: Literal, d: DType, lanes: Lanes) -> Value {
        if d == DType::Bool {
            let b = matches!(l, Literal::Bool(true)) || matches!(l, Literal::Int(i) if i != 0);
            return self.bool_const(b, lanes);
        }
        if !d.is_float() {
            // Integer literals, wrapped to their dtype like a value of it.
            let data = tensorlift_ir::TensorData::from_literal(l, d);
            let v = data
                .to_i64_vec()
                .and_then(|v| v.first().copied())
                .unwrap_or(0);
            return self.b.ins().iconst(types::I64, v);
        }
        let x = match l {
            Literal::Bool(b) => b as u8 as f64,
            Literal::Int(i) => i as f64,
            Literal::Float(f) => f,
        };
        let x = if d == DType::Float32 {
            x as f32 as f64
        } else {
            x
        };
        self.float_const(x, lanes)
    }

    /// A value in `lanes`: a scalar temp from outside a vectorised loop (a row's maximum,
    /// say) splatted across f64x2 lanes — f64 as it is, a bool byte as a lane mask;
    /// vectors as they are.
    pub(super) fn lanes_of_scalar(&mut self, v: Value, lanes: Lanes) -> Value {
        let ty = self.b.func.dfg.value_type(v);
        match (lanes, ty) {
            (Lanes::Two, types::F64) => self.b.ins().splat(F64X2, v),
            // (Float32 lanes never take temps from outside: `float32_lanes_ok`.)
            (Lanes::Two, types::I8) => {
                let (ones, zero) = (self.bool_const(true, lanes), self.bool_const(false, lanes));
                self.b.ins().select(v, ones, zero)
            }
            _ => v,
        }
    }

    pub(super) fn bool_const(&mut self, b: bool, lanes: Lanes) -> Value {
        match lanes {
            Lanes::One => self.b.ins().iconst(types::I8, b as i64),
            Lanes::Two => {
                let m = self.b.ins().iconst(types::I64, if b { -1 } else { 0 });
                self.b.ins().splat(types::I64X2, m)
            }
            Lanes::Four => {
                let m = self.b.ins().iconst(types::I32, if b { -1 } else { 0 });
                self.b.ins().splat(types::I32X4, m)
            }
        }
    }

    /// A bool value (0/1 byte, or an all-ones lane mask) → 0.0/1.0.
    pub(super) fn bool_to_float(&mut self, v: Value, lanes: Lanes) -> Value {
        match lanes {
            Lanes::One => {
                let x = self.b.ins().uextend(types::I32, v);
                self.b.ins().fcvt_from_uint(types::F64, x)
            }
            Lanes::Two | Lanes::Four => {
                let one = self.float_const(1.0, lanes);
                let zero = self.float_const(0.0, lanes);
                self.select(v, one, zero, lanes)
            }
        }
    }

    /// A float comparison result as a bool value of the current mode.
    /// (A vector fcmp gives all-ones / all-zeros lanes, a scalar one a 0/1 byte.)
    pub(super) fn compare(&mut self, cc: FloatCC, a: Value, b: Value) -> Value {
        self.b.ins().fcmp(cc, a, b)
    }

    /// A value of dtype `from` as an f64 (lanes) value.
    pub(super) fn widen_to_float(&mut self, v: Value, from: DType, lanes: Lanes) -> Value {
        match from {
            DType::Bool => self.bool_to_float(v, lanes),
            d if d.is_float() => v,
            _ => self.b.ins().fcvt_from_sint(types::F64, v),
        }
    }

    /// A value of dtype `from` (bool or integer) as an i64.
    pub(super) fn widen_to_int(&mut self, v: Value, from: DType) -> Value {
        match from {
            DType::Bool => self.b.ins().uextend(types::I64, v),
            _ => v,
        }
    }

    /// A cast with the reference's rules: float → integer truncates and saturates to the
    /// target's range (NaN gives 0), integer → integer wraps, anything → bool is `!= 0`.
    pub(super) fn cast(&mut self, v: Value, from: DType, to: DType, lanes: Lanes) -> Value {
        if from == to {
            return v;
        }
        if to == DType::Bool {
            return if from.is_float() {
                let zero = self.float_const(0.0, lanes);
                self.compare(FloatCC::NotEqual, v, zero)
            } else {
                self.b.ins().icmp_imm_s(IntCC::NotEqual, v, 0)
            };
        }
        if to.is_float() {
            let f = self.widen_to_float(v, from, lanes);
            return self.round_to(f, to, lanes);
        }
        if from == DType::Bool {
            return self.widen_to_int(v, from);
        }
        if from.is_float() {
            let wide = self.b.ins().fcvt_to_sint_sat(types::I64, v);
            let (lo, hi) = int_range(to);
            let lo = self.b.ins().iconst(types::I64, lo);
            let hi = self.b.ins().iconst(types::I64, hi);
            let v = self.b.ins().smax(wide, lo);
            return self.b.ins().smin(v, hi);
        }
        self.wrap_int(v, to)
    }

    /// An i64 wrapped to the range of integer dtype `t` (and widened back).
    pub(super) fn wrap_int(&mut self, v: Value, t: DType) -> Value {
        match t {
            DType::Int64 | DType::Bool => v,
            DType::UInt8 => {
                let n = self.b.ins().ireduce(types::I8, v);
                self.b.ins().uextend(types::I64, n)
            }
            d if d.is_float() => v,
            d => {
                let n = self.b.ins().ireduce(int_type(d), v);
                self.b.ins().sextend(types::I64, n)
            }
        }
    }

    /// Ops on bools as bit logic, on 0/1 bytes or on all-ones lane masks alike (`+` and
    /// `maximum` are `or`, `*` and `minimum` are `and`, as in the reference; comparisons
    /// with false < true).
    fn bool_logic(&mut self, op: ScalarOp, v: &[Value], lanes: Lanes) -> Option<Value> {
        use ScalarOp::*;
        let not = |g: &mut Self, x: Value| {
            if lanes == Lanes::One {
                g.b.ins().bxor_imm_u(x, 1)
            } else {
                g.b.ins().bnot(x)
            }
        };
        Some(match op {
            And | Mul | Minimum => self.b.ins().band(v[0], v[1]),
            Or | Add | Maximum => self.b.ins().bor(v[0], v[1]),
            Xor | Neq => self.b.ins().bxor(v[0], v[1]),
            Not => not(self, v[0]),
            Abs | Floor | Ceil | Round => v[0],
            Eq => {
                let x = self.b.ins().bxor(v[0], v[1]);
                not(self, x)
            }
            Lt => {
                let na = not(self, v[0]);
                self.b.ins().band(na, v[1])
            }
            Le => {
                let na = not(self, v[0]);
                self.b.ins().bor(na, v[1])
            }
            Gt => {
                let nb = not(self, v[1]);
                self.b.ins().band(v[0], nb)
            }
            Ge => {
                let nb = not(self, v[1]);
                self.b.ins().bor(v[0], nb)
            }
            Switch => match lanes {
                Lanes::One => self.b.ins().select(v[0], v[1], v[2]),
                _ => self.b.ins().bitselect(v[0], v[1], v[2]),
            },
            _ => return None,
        })
    }

    pub(super) fn apply(
        &mut self,
        op: ScalarOp,
        vals: &[Value],
        from: &[DType],
        out: DType,
        lanes: Lanes,
    ) -> Value {
        use ScalarOp::*;
        match op {
            Identity => return vals[0],
            Cast(to) => return self.cast(vals[0], from[0], to, lanes),
            _ => {}
        }
        if out == DType::Bool && from.iter().all(|d| *d == DType::Bool) {
            if let Some(v) = self.bool_logic(op, vals, lanes) {
                return v;
            }
        }
        let comparison = matches!(op, Eq | Neq | Lt | Le | Gt | Ge);
        let float_domain = if comparison {
            from.iter().any(|d| d.is_float())
        } else {
            out.is_float() || matches!(op, IsNan | IsInf)
        };
        if !float_domain {
            return self.apply_int(op, vals, from, out);
        }
        let f: Vec<Value> = match op {
            Switch => vals.to_vec(),
            _ => vals
                .iter()
                .zip(from)
                .map(|(v, d)| self.widen_to_float(*v, *d, lanes))
                .collect(),
        };
        match op {
            Neg => self.b.ins().fneg(f[0]),
            Abs => self.b.ins().fabs(f[0]),
            Sqr => self.b.ins().fmul(f[0], f[0]),
            Floor => self.b.ins().floor(f[0]),
            Ceil => self.b.ins().ceil(f[0]),
            Round => self.b.ins().nearest(f[0]),
            Sqrt => self.b.ins().sqrt(f[0]),
            Reciprocal => {
                let one = self.float_const(1.0, lanes);
                self.b.ins().fdiv(one, f[0])
            }
            Sign => {
                let zero = self.float_const(0.0, lanes);
                let one = self.float_const(1.0, lanes);
                let m1 = self.float_const(-1.0, lanes);
                let gt = self.compare(FloatCC::GreaterThan, f[0], zero);
                let lt = self.compare(FloatCC::LessThan, f[0], zero);
                let pos = self.select(gt, one, zero, lanes);
                let signed = self.select(lt, m1, pos, lanes);
                // NaN stays NaN.
                let nan = self.compare(FloatCC::Unordered, f[0], f[0]);
                self.select(nan, f[0], signed, lanes)
            }
            Add => f[1..]
                .iter()
                .fold(f[0], |acc, v| self.b.ins().fadd(acc, *v)),
            Sub => self.b.ins().fsub(f[0], f[1]),
            Mul => f[1..]
                .iter()
                .fold(f[0], |acc, v| self.b.ins().fmul(acc, *v)),
            TrueDiv => self.b.ins().fdiv(f[0], f[1]),
            Maximum => self.b.ins().fmax(f[0], f[1]),
            Minimum => self.b.ins().fmin(f[0], f[1]),
            Clip => {
                let m = self.b.ins().fmax(f[0], f[1]);
                self.b.ins().fmin(m, f[2])
            }
            Eq => self.compare(FloatCC::Equal, f[0], f[1]),
            Neq => self.compare(FloatCC::NotEqual, f[0], f[1]),
            Lt => self.compare(FloatCC::LessThan, f[0], f[1]),
            Le => self.compare(FloatCC::LessThanOrEqual, f[0], f[1]),
            Gt => self.compare(FloatCC::GreaterThan, f[0], f[1]),
            Ge => self.compare(FloatCC::GreaterThanOrEqual, f[0], f[1]),
            IsNan => self.compare(FloatCC::Unordered, f[0], f[0]),
            IsInf => {
                let a = self.b.ins().fabs(f[0]);
                let inf = self.float_const(f64::INFINITY, lanes);
                self.compare(FloatCC::Equal, a, inf)
            }
            Switch => {
                let a = self.widen_to_float(vals[1], from[1], lanes);
                let b = self.widen_to_float(vals[2], from[2], lanes);
                self.select(vals[0], a, b, lanes)
            }
            Exp => self.vmath(lanes).exp(f[0]),
            Sigmoid => self.vmath(lanes).sigmoid(f[0]),
            // Polynomials that fall back to the op's own libm function lane by lane
            // (softplus to log1p's).
            Log => {
                let libm = self.support[&Log];
                self.vmath(lanes).log(f[0], libm)
            }
            Log2 => {
                let libm = self.support[&Log2];
                self.vmath(lanes).log2(f[0], libm)
            }
            Log1p => {
                let libm = self.support[&Log1p];
                self.vmath(lanes).log1p(f[0], libm)
            }
            Softplus => {
                let libm = self.support[&Log1p];
                self.vmath(lanes).softplus(f[0], libm)
            }
            Expm1 => {
                let libm = self.support[&Expm1];
                self.vmath(lanes).expm1(f[0], libm)
            }
            Exp2 => {
                let libm = self.support[&Exp2];
                self.vmath(lanes).exp2(f[0], libm)
            }
            Tanh => {
                let libm = self.support[&Tanh];
                self.vmath(lanes).tanh(f[0], libm)
            }
            Sin | Cos => {
                let libm = self.support[&op];
                self.vmath(lanes).sin_cos(f[0], op == Cos, libm)
            }
            // The runtime's own scalar functions (the reference's).
            Log1mexp | Tan | Erf | Erfc | Gammaln | Digamma | IntDiv | Mod | Pow => {
                self.call_support(op, &f, lanes)
            }
            // Returned above (identity, casts), or never in the float domain (logic:
            // `lower::kernel_op` gives it bool or integer results only).
            Identity | Cast(_) | Not | And | Or | Xor => f[0],
        }
    }

    /// Integer ops on i64 values (scalar only), wrapping, with the results wrapped to the
    /// output dtype; comparisons of integers give bools.
    pub(super) fn apply_int(
        &mut self,
        op: ScalarOp,
        vals: &[Value],
        from: &[DType],
        out: DType,
    ) -> Value {
        use ScalarOp::*;
        let i: Vec<Value> = vals
            .iter()
            .zip(from)
            .map(|(v, d)| self.widen_to_int(*v, *d))
            .collect();
        let r = match op {
            Eq => return self.b.ins().icmp(IntCC::Equal, i[0], i[1]),
            Neq => return self.b.ins().icmp(IntCC::NotEqual, i[0], i[1]),
            Lt => return self.b.ins().icmp(IntCC::SignedLessThan, i[0], i[1]),
            Le => return self.b.ins().icmp(IntCC::SignedLessThanOrEqual, i[0], i[1]),
            Gt => return self.b.ins().icmp(IntCC::SignedGreaterThan, i[0], i[1]),
            Ge => {
                return self
                    .b
                    .ins()
                    .icmp(IntCC::SignedGreaterThanOrEqual, i[0], i[1])
            }
            Neg => self.b.ins().ineg(i[0]),
            Abs => {
                let neg = self.b.ins().ineg(i[0]);
                let below = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, i[0], 0);
                self.b.ins().select(below, neg, i[0])
            }
            Sign => {
                let pos = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, i[0], 0);
                let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, i[0], 0);
                let pos = self.b.ins().uextend(types::I64, pos);
                let neg = self.b.ins().uextend(types::I64, neg);
                self.b.ins().isub(pos, neg)
            }
            Sqr => self.b.ins().imul(i[0], i[0]),
            Not => self.b.ins().bnot(i[0]),
            Add => i[1..]
                .iter()
                .fold(i[0], |acc, v| self.b.ins().iadd(acc, *v)),
            Sub => self.b.ins().isub(i[0], i[1]),
            Mul => i[1..]
                .iter()
                .fold(i[0], |acc, v| self.b.ins().imul(acc, *v)),
            Maximum => self.b.ins().smax(i[0], i[1]),
            Minimum => self.b.ins().smin(i[0], i[1]),
            And => self.b.ins().band(i[0], i[1]),
            Or => self.b.ins().bor(i[0], i[1]),
            Xor => self.b.ins().bxor(i[0], i[1]),
            Clip => {
                let m = self.b.ins().smax(i[0], i[1]);
                self.b.ins().smin(m, i[2])
            }
            // The condition stays a bool; the branches are integers.
            Switch => self.b.ins().select(vals[0], i[1], i[2]),
            // Python's floor division and remainder, inline (a call per element costs
            // more than the arithmetic): by 0 and by −1 through a divisor of 1 (no trap),
            // then NumPy's values for them (0; −a wrapping, remainder 0).
            IntDiv | Mod => {
                let (a, b) = (i[0], i[1]);
                let by_zero = self.b.ins().icmp_imm_s(IntCC::Equal, b, 0);
                let by_minus_one = self.b.ins().icmp_imm_s(IntCC::Equal, b, -1);
                let special = self.b.ins().bor(by_zero, by_minus_one);
                let one = self.b.ins().iconst(types::I64, 1);
                let d = self.b.ins().select(special, one, b);
                let q = self.b.ins().sdiv(a, d);
                let r = self.b.ins().srem(a, d);
                let inexact = self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0);
                if op == Mod {
                    let signs = self.b.ins().bxor(r, d);
                    let differ = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, signs, 0);
                    let adjust = self.b.ins().band(inexact, differ);
                    let shifted = self.b.ins().iadd(r, d);
                    self.b.ins().select(adjust, shifted, r)
                } else {
                    let signs = self.b.ins().bxor(a, d);
                    let differ = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, signs, 0);
                    let adjust = self.b.ins().band(inexact, differ);
                    let lower = self.b.ins().iadd_imm_s(q, -1);
                    let floor = self.b.ins().select(adjust, lower, q);
                    let negated = self.b.ins().ineg(a);
                    let zero = self.b.ins().iconst(types::I64, 0);
                    let by_one = self.b.ins().select(by_minus_one, negated, floor);
                    self.b.ins().select(by_zero, zero, by_one)
                }
            }
            Pow => {
                let f = self.int_support[&op];
                let call = self.b.ins().call(f, &[i[0], i[1]]);
                self.b.inst_results(call)[0]
            }
            // Floor, Ceil and Round of integers are the integers; a cast or identity is
            // the value wrapped below.
            Identity | Floor | Ceil | Round | Cast(_) => i[0],
            // Float-only ops: `lower::kernel_op` never gives them integer results.
            IsNan | IsInf | Reciprocal | Exp | Exp2 | Expm1 | Log | Log2 | Log1p | Log1mexp
            | Sqrt | Sin | Cos | Tan | Tanh | Sigmoid | Softplus | Erf | Erfc | Gammaln
            | Digamma | TrueDiv => i[0],
        };
        self.wrap_int(r, out)
    }

    pub(super) fn vmath(&mut self, lanes: Lanes) -> VMath<'_, 'a> {
        // Bodies with math functions never run as float32 lanes (`float32_lanes_ok`).
        let ty = match lanes {
            Lanes::One => types::F64,
            Lanes::Two | Lanes::Four => F64X2,
        };
        VMath { b: &mut self.b, ty }
    }

    pub(super) fn select(&mut self, cond: Value, a: Value, b: Value, lanes: Lanes) -> Value {
        match lanes {
            Lanes::One => self.b.ins().select(cond, a, b),
            Lanes::Two => {
                let mask = self.b.ins().bitcast(F64X2, MemFlagsData::new(), cond);
                self.b.ins().bitselect(mask, a, b)
            }
            Lanes::Four => {
                let mask = self
                    .b
                    .ins()
                    .bitcast(types::F32X4, MemFlagsData::new(), cond);
                self.b.ins().bitselect(mask, a, b)
            }
        }
    }

    pub(super) fn call_support(&mut self, op: ScalarOp, args: &[Value], lanes: Lanes) -> Value {
        let f = self.support[&op];
        match lanes {
            Lanes::One => {
                let call = self.b.ins().call(f, args);
                self.b.inst_results(call)[0]
            }
            Lanes::Two | Lanes::Four => {
                // Never reached with float32 lanes (`float32_lanes_ok` excludes calls).
                let mut out = self.float_const(0.0, Lanes::Two);
                for lane in 0..2u8 {
                    let lane_args: Vec<Value> = args
                        .iter()
                        .map(|a| self.b.ins().extractlane(*a, lane))
                        .collect();
                    let call = self.b.ins().call(f, &lane_args);
                    let r = self.b.inst_results(call)[0];
                    out = self.b.ins().insertlane(out, r, lane);
                }
                out
            }
        }
    }
}

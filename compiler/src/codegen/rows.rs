//! Whole-row reductions: an innermost loop whose only work is a sum, product, maximum or
//! minimum of one float64 buffer's values along the loop hands a row that has stride 1 at
//! run time to the runtime's `tl_row_*` (`runtime::row_reduce`: 256-bit loads, which
//! stream memory faster than the 128-bit vectors Cranelift emits) and folds the result
//! into its output element; other rows run the kernel's own loop. Also `direct_row`, the
//! test both these and the one-pass logsumexp use to hand a row over whole.

use super::*;

/// The runtime functions of whole-row reductions.
pub(super) struct RowFns {
    sum: FuncRef,
    prod: FuncRef,
    max: FuncRef,
    min: FuncRef,
}

/// (symbol, address) of every runtime function `RowFns` names.
pub(super) fn row_symbols() -> [(&'static str, *const u8); 4] {
    [
        ("tl_row_sum", tl_row_sum as *const u8),
        ("tl_row_prod", tl_row_prod as *const u8),
        ("tl_row_max", tl_row_max as *const u8),
        ("tl_row_min", tl_row_min as *const u8),
    ]
}

/// Whether `kernel` has a reduction a whole-row call could compute.
pub(super) fn has_row_reductions(kernel: &Kernel) -> bool {
    let mut found = false;
    visit_stmts(&kernel.body, &mut |s| {
        found |= matches!(s, Stmt::Accumulate { kind, .. } if row_kind(*kind));
    });
    found
}

fn row_kind(kind: ReduceKind) -> bool {
    matches!(
        kind,
        ReduceKind::Sum | ReduceKind::Prod | ReduceKind::Max | ReduceKind::Min
    )
}

/// Declares `RowFns` in the function being built.
pub(super) fn declare_row_fns(
    module: &mut JITModule,
    func: &mut cranelift_codegen::ir::Function,
) -> Result<RowFns, CompileError> {
    let ptr = module.target_config().pointer_type();
    let mut declare = |symbol: &str| {
        let mut sig = module.make_signature();
        sig.params.push(AbiParam::new(ptr));
        sig.params.push(AbiParam::new(types::I64));
        sig.returns.push(AbiParam::new(types::F64));
        let id = module
            .declare_function(symbol, Linkage::Import, &sig)
            .map_err(jit_error)?;
        Ok::<_, CompileError>(module.declare_func_in_func(id, func))
    };
    Ok(RowFns {
        sum: declare("tl_row_sum")?,
        prod: declare("tl_row_prod")?,
        max: declare("tl_row_max")?,
        min: declare("tl_row_min")?,
    })
}

/// When `body` only reads the reduced values of its accumulation at `position` from one
/// float64 buffer (through `let`s of loads and identities), that buffer and the index it
/// is read at: the loop can hand the row to the runtime whole, where it has stride 1.
pub(super) fn direct_row(
    body: &[Stmt],
    position: usize,
    var: LoopVar,
    bufs: &[BufVals],
) -> Option<(usize, Vec<Index>)> {
    if !body
        .iter()
        .enumerate()
        .all(|(k, s)| k == position || matches!(s, Stmt::Let { .. }))
    {
        return None;
    }
    let Stmt::Accumulate { value, .. } = &body[position] else {
        return None;
    };
    let mut e = value;
    loop {
        match e {
            Expr::Temp(t) => {
                e = body.iter().find_map(|s| match s {
                    Stmt::Let { temp, value, .. } if temp == t => Some(value),
                    _ => None,
                })?;
            }
            Expr::Apply {
                op: ScalarOp::Identity,
                args,
                dtype: DType::Float64,
            } if args.len() == 1 => e = &args[0],
            Expr::Load { buf, index }
                if bufs[*buf].dtype == DType::Float64
                    && index.iter().filter(|i| **i == Index::Var(var)).count() == 1 =>
            {
                return Some((*buf, index.clone()));
            }
            _ => return None,
        }
    }
}

/// The whole-row reduction of an innermost loop's `body` over `var`: the position of its
/// one accumulation into an element the loop does not walk (a sum, product, maximum or
/// minimum into a float output), the buffer it reduces and that buffer's index.
pub(super) fn row_reduction(
    body: &[Stmt],
    var: LoopVar,
    bufs: &[BufVals],
) -> Option<(usize, usize, Vec<Index>)> {
    let reg = Gen::register_accumulations(body, var);
    let [(position, kind, out, _)] = reg.as_slice() else {
        return None;
    };
    if !row_kind(*kind) || !bufs[*out].dtype.is_float() {
        return None;
    }
    let (buf, row) = direct_row(body, *position, var, bufs)?;
    Some((*position, buf, row))
}

impl Gen<'_> {
    /// `for var in 0..n { body }` where `body` is a whole-row reduction (`row_reduction`):
    /// one runtime call where the row has stride 1, folded into the output element; the
    /// kernel's own loop (`own_loop`) where it has not.
    pub(super) fn row_call_or_loop(
        &mut self,
        var: LoopVar,
        n: Value,
        body: &[Stmt],
        (position, buf, row): (usize, usize, Vec<Index>),
        own_loop: impl FnOnce(&mut Self),
    ) {
        let (
            Some(fns),
            Stmt::Accumulate {
                buf: out,
                index,
                kind,
                ..
            },
        ) = (self.rows.as_ref(), &body[position])
        else {
            return own_loop(self);
        };
        let f = match kind {
            ReduceKind::Sum => fns.sum,
            ReduceKind::Prod => fns.prod,
            ReduceKind::Max => fns.max,
            _ => fns.min,
        };
        let dim = row.iter().position(|i| *i == Index::Var(var)).unwrap_or(0);
        let unit = self
            .b
            .ins()
            .icmp_imm_s(IntCC::Equal, self.bufs[buf].stride[dim], 1);
        let (whole, own, done) = (
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
        );
        self.b.ins().brif(unit, whole, &[], own, &[]);
        self.b.switch_to_block(whole);
        self.b.seal_block(whole);
        let zero = self.b.ins().iconst(types::I64, 0);
        self.vars.insert(var, zero);
        let first = self.address(buf, &row, Lanes::One);
        let call = self.b.ins().call(f, &[first, n]);
        let total = self.b.inst_results(call)[0];
        let old = self.load(*out, index, Lanes::One);
        let new = self.combine(*kind, old, total);
        self.store(*out, index, new, Lanes::One);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(own);
        self.b.seal_block(own);
        own_loop(self);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
        self.b.seal_block(done);
    }
}

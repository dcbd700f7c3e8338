//! Whole-row reductions: an innermost loop whose only work is a sum, product, maximum or
//! minimum of one float64 or float32 buffer's values along the loop, or a sum of products
//! of two (a dot product), hands rows that have stride 1 at run time to the runtime's
//! `tl_row_*` (`runtime::row_reduce`: 256-bit loads, which stream memory faster than the
//! 128-bit vectors Cranelift emits) and folds the result into its output element; other
//! rows run the kernel's own loop. Likewise an innermost loop that only accumulates a
//! float64 row into an output row it walks (a reduction over an outer axis) is one call
//! of the runtime's `tl_*_into` where both rows have stride 1. Also `direct_row`, the test
//! these and the one-pass logsumexp use to hand a row over whole.

use super::*;

/// The runtime functions of whole-row reductions of one element type.
pub(super) struct RowFnSet {
    sum: FuncRef,
    prod: FuncRef,
    max: FuncRef,
    min: FuncRef,
    dot: FuncRef,
}

/// The runtime functions of whole-row reductions, for float64 and float32 rows, and of
/// accumulations of a float64 row into another (sum, product, maximum, minimum).
pub(super) struct RowFns {
    f64: RowFnSet,
    f32: RowFnSet,
    into: [FuncRef; 4],
}

/// The symbols of `RowFns::into`, in `into_index` order.
const INTO_SYMBOLS: [&str; 4] = ["tl_add_into", "tl_mul_into", "tl_max_into", "tl_min_into"];

fn into_index(kind: ReduceKind) -> usize {
    match kind {
        ReduceKind::Sum => 0,
        ReduceKind::Prod => 1,
        ReduceKind::Max => 2,
        _ => 3,
    }
}

/// The symbols of a `RowFnSet` in field order, with how many rows each takes.
const F64_SYMBOLS: [(&str, usize); 5] = [
    ("tl_row_sum", 1),
    ("tl_row_prod", 1),
    ("tl_row_max", 1),
    ("tl_row_min", 1),
    ("tl_row_dot", 2),
];
const F32_SYMBOLS: [(&str, usize); 5] = [
    ("tl_row_sum_f32", 1),
    ("tl_row_prod_f32", 1),
    ("tl_row_max_f32", 1),
    ("tl_row_min_f32", 1),
    ("tl_row_dot_f32", 2),
];

/// (symbol, address) of every runtime function `RowFns` names.
pub(super) fn row_symbols() -> [(&'static str, *const u8); 14] {
    [
        ("tl_add_into", tl_add_into as *const u8),
        ("tl_mul_into", tl_mul_into as *const u8),
        ("tl_max_into", tl_max_into as *const u8),
        ("tl_min_into", tl_min_into as *const u8),
        ("tl_row_sum", tl_row_sum as *const u8),
        ("tl_row_prod", tl_row_prod as *const u8),
        ("tl_row_max", tl_row_max as *const u8),
        ("tl_row_min", tl_row_min as *const u8),
        ("tl_row_dot", tl_row_dot as *const u8),
        ("tl_row_sum_f32", tl_row_sum_f32 as *const u8),
        ("tl_row_prod_f32", tl_row_prod_f32 as *const u8),
        ("tl_row_max_f32", tl_row_max_f32 as *const u8),
        ("tl_row_min_f32", tl_row_min_f32 as *const u8),
        ("tl_row_dot_f32", tl_row_dot_f32 as *const u8),
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
    let mut declare = |(symbol, rows): (&str, usize)| {
        let mut params = vec![ptr; rows];
        params.push(types::I64);
        declare_import(module, func, symbol, &params, &[types::F64])
    };
    let mut set = |symbols: [(&str, usize); 5]| {
        Ok::<_, CompileError>(RowFnSet {
            sum: declare(symbols[0])?,
            prod: declare(symbols[1])?,
            max: declare(symbols[2])?,
            min: declare(symbols[3])?,
            dot: declare(symbols[4])?,
        })
    };
    let (f64_fns, f32_fns) = (set(F64_SYMBOLS)?, set(F32_SYMBOLS)?);
    let mut into = Vec::with_capacity(INTO_SYMBOLS.len());
    for symbol in INTO_SYMBOLS {
        into.push(declare_import(
            module,
            func,
            symbol,
            &[ptr, ptr, types::I64],
            &[],
        )?);
    }
    let into = into
        .try_into()
        .map_err(|_| CompileError::Internal("row accumulation imports".into()))?;
    Ok(RowFns {
        f64: f64_fns,
        f32: f32_fns,
        into,
    })
}

/// A buffer's row: the buffer and the index it is read at (the loop variable once).
pub(super) type Row = (usize, Vec<Index>);

/// What a whole-row reduction reduces: one buffer's row, or the products of two rows
/// (whose sum is their dot product).
pub(super) enum RowOperand {
    Row(Row),
    Products(Row, Row),
}

/// The accumulated value of the statement at `position` of `body`, when every other
/// statement is a `let`: the loop does nothing else.
fn only_accumulation(body: &[Stmt], position: usize) -> Option<&Expr> {
    let lets = body
        .iter()
        .enumerate()
        .all(|(k, s)| k == position || matches!(s, Stmt::Let { .. }));
    match &body[position] {
        Stmt::Accumulate { value, .. } if lets => Some(value),
        _ => None,
    }
}

/// `e` with temporaries replaced by their `let`s in `body`, and float identities and casts
/// to float64 dropped (the caller checks what remains reads a float buffer).
fn resolved<'b>(mut e: &'b Expr, body: &'b [Stmt]) -> Option<&'b Expr> {
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
                dtype,
            } if args.len() == 1 && dtype.is_float() => e = &args[0],
            // Widening to f64 is exact: the row functions widen float32 rows themselves.
            Expr::Apply {
                op: ScalarOp::Cast(DType::Float64),
                args,
                ..
            } if args.len() == 1 => e = &args[0],
            _ => return Some(e),
        }
    }
}

/// The row `e` reads: a load of a float64 or float32 buffer at an index with the loop
/// variable once.
fn loaded_row(e: &Expr, body: &[Stmt], var: LoopVar, bufs: &[BufVals]) -> Option<Row> {
    match resolved(e, body)? {
        Expr::Load { buf, index }
            if matches!(bufs[*buf].dtype, DType::Float64 | DType::Float32)
                && index.iter().filter(|i| **i == Index::Var(var)).count() == 1 =>
        {
            Some((*buf, index.clone()))
        }
        _ => None,
    }
}

/// When `body` only reads the reduced values of its accumulation at `position` from one
/// float64 or float32 buffer (through `let`s of loads and identities), that buffer and
/// the index it is read at: the loop can hand the row to the runtime whole, where it has
/// stride 1. (A caller taking float64 rows only checks the dtype.)
pub(super) fn direct_row(
    body: &[Stmt],
    position: usize,
    var: LoopVar,
    bufs: &[BufVals],
) -> Option<Row> {
    loaded_row(only_accumulation(body, position)?, body, var, bufs)
}

/// The whole-row reduction of an innermost loop's `body` over `var`: the position of its
/// one accumulation into an element the loop does not walk (a sum, product, maximum or
/// minimum of one row, or a sum of products of two, into a float output) and what it
/// reduces.
fn row_reduction(body: &[Stmt], var: LoopVar, bufs: &[BufVals]) -> Option<(usize, RowOperand)> {
    let reg = Gen::register_accumulations(body, var);
    let [(position, kind, out, _)] = reg.as_slice() else {
        return None;
    };
    if !row_kind(*kind) || !bufs[*out].dtype.is_float() {
        return None;
    }
    if let Some(row) = direct_row(body, *position, var, bufs) {
        return Some((*position, RowOperand::Row(row)));
    }
    let value = resolved(only_accumulation(body, *position)?, body)?;
    match value {
        // A sum of squares: the dot product of a row with itself.
        Expr::Apply {
            op: ScalarOp::Sqr,
            args,
            dtype,
        } if *kind == ReduceKind::Sum && args.len() == 1 => {
            let a = loaded_row(&args[0], body, var, bufs)?;
            (bufs[a.0].dtype == *dtype).then(|| (*position, RowOperand::Products(a.clone(), a)))
        }
        // Products in the rows' own dtype (float32 ones rounded, as the runtime's are).
        Expr::Apply {
            op: ScalarOp::Mul,
            args,
            dtype,
        } if *kind == ReduceKind::Sum && args.len() == 2 => {
            let a = loaded_row(&args[0], body, var, bufs)?;
            let b = loaded_row(&args[1], body, var, bufs)?;
            let same = bufs[a.0].dtype == *dtype && bufs[b.0].dtype == *dtype;
            same.then_some((*position, RowOperand::Products(a, b)))
        }
        _ => None,
    }
}

/// An accumulation of a row into a row: an innermost loop over `var` whose only work is
/// a sum, product, maximum or minimum of one float64 buffer's values into a float64 output
/// the loop walks too (a reduction over an outer axis, `out[j] += x[i, j]`): the position
/// of the accumulation and the row it reads.
fn row_accumulation(body: &[Stmt], var: LoopVar, bufs: &[BufVals]) -> Option<(usize, Row)> {
    let mut accumulations = body.iter().enumerate().filter_map(|(k, s)| match s {
        Stmt::Accumulate {
            buf, index, kind, ..
        } => Some((k, *buf, index, *kind)),
        _ => None,
    });
    let (position, out, index, kind) = accumulations.next()?;
    let walks_once = index.iter().filter(|i| **i == Index::Var(var)).count() == 1;
    let plain = accumulations.next().is_none() && row_kind(kind) && walks_once;
    if !plain || bufs[out].dtype != DType::Float64 {
        return None;
    }
    let row = direct_row(body, position, var, bufs)?;
    (bufs[row.0].dtype == DType::Float64).then_some((position, row))
}

/// What an innermost loop hands to the runtime: a whole-row reduction
/// (`row_reduction`) or a row accumulated into an output row (`row_accumulation`).
pub(super) enum RowPlan {
    Reduce(RowOperand),
    Into(Row),
}

/// The runtime call an innermost loop's `body` over `var` can be, with the position of
/// its accumulation.
pub(super) fn row_plan(body: &[Stmt], var: LoopVar, bufs: &[BufVals]) -> Option<(usize, RowPlan)> {
    if let Some((position, operand)) = row_reduction(body, var, bufs) {
        return Some((position, RowPlan::Reduce(operand)));
    }
    row_accumulation(body, var, bufs).map(|(position, row)| (position, RowPlan::Into(row)))
}

impl Gen<'_> {
    /// `whole` (with `var` at 0) where every row of `rows` has stride 1 along `var` at run
    /// time, `own` where not.
    pub(super) fn whole_rows_or(
        &mut self,
        var: LoopVar,
        rows: &[Row],
        whole: impl FnOnce(&mut Self),
        own: impl FnOnce(&mut Self),
    ) {
        let mut unit = self.b.ins().iconst(types::I8, 1);
        for (buf, row) in rows {
            let dim = row.iter().position(|i| *i == Index::Var(var)).unwrap_or(0);
            let stride = self.bufs[*buf].stride[dim];
            let one = self.b.ins().icmp_imm_s(IntCC::Equal, stride, 1);
            unit = self.b.ins().band(unit, one);
        }
        let whole = |g: &mut Self| {
            let zero = g.b.ins().iconst(types::I64, 0);
            g.vars.insert(var, zero);
            whole(g);
        };
        self.if_else(unit, whole, own);
    }

    /// `for var in 0..n { body }` as the runtime call of `plan` (`row_plan`) where its rows
    /// have stride 1 at run time, the kernel's own loop (`own_loop`) where not. A whole-row
    /// reduction is folded into its output element; a row accumulated into an output row
    /// goes element by element in order either way, so both give the same bits.
    pub(super) fn row_call_or_loop(
        &mut self,
        var: LoopVar,
        n: Value,
        body: &[Stmt],
        (position, plan): (usize, RowPlan),
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
        let (out, index, kind) = (*out, index.clone(), *kind);
        let operand = match plan {
            RowPlan::Reduce(operand) => operand,
            RowPlan::Into(row) => {
                let f = fns.into[into_index(kind)];
                let rows = [(out, index), row];
                let whole = |g: &mut Self| {
                    let target = g.address(rows[0].0, &rows[0].1, Lanes::One);
                    let source = g.address(rows[1].0, &rows[1].1, Lanes::One);
                    g.b.ins().call(f, &[target, source, n]);
                };
                return self.whole_rows_or(var, &rows, whole, own_loop);
            }
        };
        let first = match &operand {
            RowOperand::Row(r) | RowOperand::Products(r, _) => r.0,
        };
        let set = match self.bufs[first].dtype {
            DType::Float32 => &fns.f32,
            _ => &fns.f64,
        };
        let (f, rows) = match (&operand, kind) {
            (RowOperand::Products(a, b), _) => (set.dot, vec![a.clone(), b.clone()]),
            (RowOperand::Row(r), ReduceKind::Sum) => (set.sum, vec![r.clone()]),
            (RowOperand::Row(r), ReduceKind::Prod) => (set.prod, vec![r.clone()]),
            (RowOperand::Row(r), ReduceKind::Max) => (set.max, vec![r.clone()]),
            (RowOperand::Row(r), _) => (set.min, vec![r.clone()]),
        };
        let whole = |g: &mut Self| {
            let mut args: Vec<Value> = rows
                .iter()
                .map(|(buf, row)| g.address(*buf, row, Lanes::One))
                .collect();
            args.push(n);
            let call = g.b.ins().call(f, &args);
            let total = g.b.inst_results(call)[0];
            let old = g.load(out, &index, Lanes::One);
            let new = g.combine(kind, old, total);
            g.store(out, &index, new, Lanes::One);
        };
        self.whole_rows_or(var, &rows, whole, own_loop);
    }
}

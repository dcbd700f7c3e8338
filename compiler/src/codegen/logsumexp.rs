//! One-pass logsumexp reductions (`Accumulate` of kind `LogSumExp`). Along an innermost
//! loop, each strip's values go to a scratch slot (two elements at a time where every
//! walked buffer has stride 1) and the runtime's `tl_lse_add` folds the strip into a
//! running (shift, sum) state in another slot — strip maximum, polynomial exp-sum at the
//! CPU's widest vectors, rescale — so the data is read once (a contiguous row of plain
//! float64 or float32 input values goes to the runtime whole, without the copy); `tl_lse_value` gives the
//! result, folded into its output element by `tl_log_add_exp`. Anywhere else, each value
//! is folded in by `tl_log_add_exp` (correct, slower; the rewrites send logsumexps across
//! rows to two passes of max and sum instead).

use super::rows::direct_row;
use super::*;

/// The runtime functions a kernel with logsumexp accumulations calls.
pub(super) struct LseFns {
    pub(super) begin: FuncRef,
    pub(super) add: FuncRef,
    /// `add` of a float32 row.
    pub(super) add_f32: FuncRef,
    pub(super) value: FuncRef,
    pub(super) log_add_exp: FuncRef,
}

/// (symbol, address) of every runtime function `LseFns` names.
pub(super) fn lse_symbols() -> [(&'static str, *const u8); 5] {
    [
        ("tl_lse_begin", tl_lse_begin as *const u8),
        ("tl_lse_add", tl_lse_add as *const u8),
        ("tl_lse_add_f32", tl_lse_add_f32 as *const u8),
        ("tl_lse_value", tl_lse_value as *const u8),
        ("tl_log_add_exp", tl_log_add_exp as *const u8),
    ]
}

/// Declares `LseFns` in the function being built.
pub(super) fn declare_lse_fns(
    module: &mut JITModule,
    func: &mut cranelift_codegen::ir::Function,
) -> Result<LseFns, CompileError> {
    let ptr = module.target_config().pointer_type();
    let mut declare = |symbol: &str, params: &[Type], returns: &[Type]| {
        declare_import(module, func, symbol, params, returns)
    };
    Ok(LseFns {
        begin: declare("tl_lse_begin", &[ptr], &[])?,
        add: declare("tl_lse_add", &[ptr, types::I64, ptr], &[])?,
        add_f32: declare("tl_lse_add_f32", &[ptr, types::I64, ptr], &[])?,
        value: declare("tl_lse_value", &[ptr], &[types::F64])?,
        log_add_exp: declare("tl_log_add_exp", &[types::F64, types::F64], &[types::F64])?,
    })
}

/// Scratch slots of a one-pass logsumexp loop: the strip's values and the state.
pub(super) const LSE_SLOTS: usize = 2;
const VALUE_SLOT: usize = 0;
const STATE_SLOT: usize = 1;

/// The position of the one-pass logsumexp in an innermost loop's `body` over `var`: its
/// only accumulation into an element the loop does not walk, a float64 or float32 value.
pub(super) fn one_pass_position(body: &[Stmt], var: LoopVar) -> Option<usize> {
    let reg = Gen::register_accumulations(body, var);
    match reg.as_slice() {
        [(k, ReduceKind::LogSumExp, _, _)] => Some(*k),
        _ => None,
    }
}

impl Gen<'_> {
    /// `log_add_exp(a, b)` (scalars).
    pub(super) fn log_add_exp(&mut self, a: Value, b: Value) -> Value {
        let f = self
            .lse
            .as_ref()
            .expect("kernels with logsumexp accumulations import the logsumexp functions")
            .log_add_exp;
        let call = self.b.ins().call(f, &[a, b]);
        self.b.inst_results(call)[0]
    }

    /// `for var in 0..n { body }` where the statement at `position` is the logsumexp
    /// accumulation (`one_pass_position`): strips of values into scratch, folded by the
    /// runtime; other statements run as usual.
    pub(super) fn one_pass_lse_loop(
        &mut self,
        var: LoopVar,
        n: Value,
        body: &[Stmt],
        position: usize,
    ) {
        let fns = self
            .lse
            .as_ref()
            .map(|f| (f.begin, f.add, f.add_f32, f.value))
            .expect("kernels with logsumexp accumulations import the logsumexp functions");
        let (begin, add, add_f32, value) = fns;
        let Stmt::Accumulate {
            buf,
            index,
            value: reduced,
            ..
        } = &body[position]
        else {
            return;
        };
        let state = self.slot_ptr(STATE_SLOT);
        self.b.ins().call(begin, &[state]);
        let strips = |g: &mut Self| g.lse_strips(var, n, body, position, reduced, add);
        match direct_row(body, position, var, &self.bufs) {
            // The whole row in one call where it is contiguous.
            Some(row) => {
                let add_row = match self.bufs[row.0].dtype {
                    DType::Float32 => add_f32,
                    _ => add,
                };
                let rows = [row];
                let whole = |g: &mut Self| {
                    let first = g.address(rows[0].0, &rows[0].1, Lanes::One);
                    let state = g.slot_ptr(STATE_SLOT);
                    g.b.ins().call(add_row, &[first, n, state]);
                };
                self.whole_rows_or(var, &rows, whole, strips);
            }
            None => strips(self),
        }
        let state = self.slot_ptr(STATE_SLOT);
        let call = self.b.ins().call(value, &[state]);
        let total = self.b.inst_results(call)[0];
        let old = self.load(*buf, index, Lanes::One);
        let new = self.log_add_exp(old, total);
        self.store(*buf, index, new, Lanes::One);
    }

    /// The strips of a one-pass logsumexp loop: each strip's values into the value slot
    /// (two at a time where every walked buffer has stride 1), folded into the state by
    /// `add`; other statements as usual.
    fn lse_strips(
        &mut self,
        var: LoopVar,
        n: Value,
        body: &[Stmt],
        position: usize,
        reduced: &Expr,
        add: FuncRef,
    ) {
        self.inner = Some(var);
        let (strip, len) = self.open_strips(n);
        let s0 = strip.at;
        let j = self.counter();
        let tail = self.b.create_block();
        let pairs_ok = body.iter().enumerate().all(|(k, s)| {
            if k == position {
                self.vector_expr_ok(reduced)
            } else {
                self.vector_stmt_ok(s)
            }
        });
        if pairs_ok {
            let pairs = self.b.create_block();
            let cond = self.unit_strides(body, var);
            self.b.ins().brif(cond, pairs, &[], tail, &[]);
            self.b.switch_to_block(pairs);
            self.b.seal_block(pairs);
            let l = self.open_loop(j, len, 2, true);
            self.lse_elements(var, s0, l.at, body, position, reduced, Lanes::Two);
            self.close_loop(l);
        }
        self.b.ins().jump(tail, &[]);
        self.b.switch_to_block(tail);
        self.b.seal_block(tail);
        let l = self.open_loop(j, len, 1, false);
        self.lse_elements(var, s0, l.at, body, position, reduced, Lanes::One);
        self.close_loop(l);
        self.strip_index = None;
        let values = self.slot_ptr(VALUE_SLOT);
        let state = self.slot_ptr(STATE_SLOT);
        self.b.ins().call(add, &[values, len, state]);
        self.close_loop(strip);
        self.inner = None;
    }

    /// The body at element `s0 + j` of a strip: the logsumexp's value into the value
    /// slot, every other statement as usual.
    #[allow(clippy::too_many_arguments)]
    fn lse_elements(
        &mut self,
        var: LoopVar,
        s0: Value,
        j: Value,
        body: &[Stmt],
        position: usize,
        reduced: &Expr,
        lanes: Lanes,
    ) {
        let at = self.b.ins().iadd(s0, j);
        self.vars.insert(var, at);
        self.strip_index = Some(j);
        for (k, s) in body.iter().enumerate() {
            if k == position {
                let v = self.expr(reduced, lanes);
                self.slot_store(VALUE_SLOT, v);
            } else {
                self.stmt(s, k, lanes);
            }
        }
    }
}

//! Control flow and calls in kernels: failing with an error (`fail`, `fail_if`), calls of
//! other kernels of the module (`invoke`, argument words of views built on the stack,
//! each view index checked), growing
//! buffers (`grow`; their data pointer and row count live in variables, read through
//! `buf_ptr` and `buf_dim`).

use super::*;
use tensorlift_runtime::buffer_support::GrowBuffer;

impl<'a> Gen<'a> {
    /// Calls kernel `callee` with views of this kernel's buffers (their words copied into
    /// an argument array on the stack, then the scratch and error slot pointers); a
    /// view index out of range fails with `error`, a failing callee's status, shifted by
    /// `error_offset`, is returned.
    pub(super) fn invoke(
        &mut self,
        callee: usize,
        args: &[View],
        error: Option<usize>,
        error_offset: usize,
    ) {
        let (slot, _) = self.words_on_stack(args, error, true);
        let args = self.b.ins().stack_addr(types::I64, slot, 0);
        let f = self.callees[&callee];
        let call = self.b.ins().call(f, &[args]);
        let status = self.b.inst_results(call)[0];
        let (failed, ok) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(status, failed, &[], ok, &[]);
        self.b.switch_to_block(failed);
        self.b.seal_block(failed);
        let shifted = self.b.ins().iadd_imm_s(status, error_offset as i64);
        self.b.ins().return_(&[shifted]);
        self.b.switch_to_block(ok);
        self.b.seal_block(ok);
    }

    /// The argument words of `views` (data pointer, sizes, strides; current values for
    /// growing buffers; a view's pointer moved to its indices, each checked against its
    /// dimension first, failing with `error`) in a stack slot, followed by the scratch and
    /// error slot pointers when `trailer`; returns the slot and each view's byte offset
    /// in it.
    pub(super) fn words_on_stack(
        &mut self,
        views: &[View],
        error: Option<usize>,
        trailer: bool,
    ) -> (StackSlot, Vec<i32>) {
        let words: usize = views
            .iter()
            .map(|v| 1 + 2 * (self.bufs[v.buf].shape.len() - v.at.len()))
            .sum::<usize>()
            + 2 * trailer as usize;
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            (words * 8) as u32,
            3,
        ));
        let at = std::cell::Cell::new(0i32);
        let mut offsets = Vec::with_capacity(views.len());
        let put = |g: &mut Self, v: Value| {
            g.b.ins().stack_store(types::I64, v, slot, at.get());
            at.set(at.get() + 8);
        };
        for view in views {
            let b = view.buf;
            offsets.push(at.get());
            let mut ptr = self.buf_ptr(b);
            for (d, e) in view.at.iter().enumerate() {
                let index = self.int_value(e);
                let size = self.buf_dim(b, d);
                let outside = self
                    .b
                    .ins()
                    .icmp(IntCC::UnsignedGreaterThanOrEqual, index, size);
                // (Codegen refuses views without an error: `check_invokes`.)
                self.fail_with_values_if(outside, error.unwrap_or(0), &[index, size]);
                let step = self.b.ins().imul(index, self.bufs[b].stride[d]);
                let bytes = self.b.ins().imul_imm_s(step, elem_size(self.bufs[b].dtype));
                ptr = self.b.ins().iadd(ptr, bytes);
            }
            put(self, ptr);
            for d in view.at.len()..self.bufs[b].shape.len() {
                let size = self.buf_dim(b, d);
                put(self, size);
            }
            for d in view.at.len()..self.bufs[b].stride.len() {
                put(self, self.bufs[b].stride[d]);
            }
        }
        if trailer {
            put(self, self.scratch);
            put(self, self.error_slot);
        }
        (slot, offsets)
    }

    /// An integer expression as an i64 (floats truncated, saturating).
    pub(super) fn int_value(&mut self, e: &Expr) -> Value {
        let x = self.expr(e, Lanes::One);
        let d = self.dtype_of(e);
        if d.is_float() {
            self.b.ins().fcvt_to_sint_sat(types::I64, x)
        } else {
            self.widen_to_int(x, d)
        }
    }

    /// A buffer's current data pointer.
    pub(super) fn buf_ptr(&mut self, buf: usize) -> Value {
        match self.bufs[buf].growing {
            Some((_, data, _)) => self.b.use_var(data),
            None => self.bufs[buf].ptr,
        }
    }

    /// A buffer's current size along `dim`.
    pub(super) fn buf_dim(&mut self, buf: usize, dim: usize) -> Value {
        match self.bufs[buf].growing {
            Some((_, _, rows)) if dim == 0 => self.b.use_var(rows),
            _ => self.bufs[buf].shape[dim],
        }
    }

    /// `grow buf to rows`: the runtime makes room; the new data pointer and row count
    /// replace the old (a null pointer fails the kernel with `error`).
    pub(super) fn grow(&mut self, buf: usize, rows: &Expr, error: usize) {
        let (Some((handle, data, count)), Some(grow_fn)) = (self.bufs[buf].growing, self.grow_fn)
        else {
            return self.fail(error);
        };
        let n = self.expr(rows, Lanes::One);
        let n = self.widen_to_int(n, self.dtype_of(rows));
        // Buffers never shrink under a running kernel (its loops may have read the length).
        let current = self.b.use_var(count);
        let shrinks = self.b.ins().icmp(IntCC::SignedLessThan, n, current);
        self.fail_if(shrinks, error);
        // Rows within the capacity: only the row count changes (in the buffer's header,
        // read back when the kernel is done); beyond it the runtime makes room.
        let capacity = self
            .b
            .ins()
            .load(types::I64, flags(), handle, GrowBuffer::CAPACITY_OFFSET);
        let fits = self.b.ins().icmp(IntCC::SignedLessThanOrEqual, n, capacity);
        self.if_else(
            fits,
            |g| {
                g.b.ins().store(flags(), n, handle, GrowBuffer::ROWS_OFFSET);
            },
            |g| {
                let call = g.b.ins().call(grow_fn, &[handle, n]);
                let p = g.b.inst_results(call)[0];
                let null = g.b.ins().icmp_imm_s(IntCC::Equal, p, 0);
                g.fail_if(null, error);
                g.b.def_var(data, p);
            },
        );
        self.b.def_var(count, n);
    }

    /// Emits `then` where `cond` (an integer flag) is non-zero and `otherwise` where it is
    /// zero; emission continues after both.
    pub(super) fn if_else(
        &mut self,
        cond: Value,
        then: impl FnOnce(&mut Self),
        otherwise: impl FnOnce(&mut Self),
    ) {
        let (yes, no, join) = (
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
        );
        self.b.ins().brif(cond, yes, &[], no, &[]);
        self.b.switch_to_block(yes);
        self.b.seal_block(yes);
        then(self);
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(no);
        self.b.seal_block(no);
        otherwise(self);
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(join);
        self.b.seal_block(join);
    }

    /// Fails with `error` when `cond` (an integer) is non-zero; emission continues on the
    /// path where it is zero.
    pub(super) fn fail_if(&mut self, cond: Value, error: usize) {
        let (failed, ok) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(cond, failed, &[], ok, &[]);
        self.b.switch_to_block(failed);
        self.b.seal_block(failed);
        self.fail(error);
        self.b.ins().jump(ok, &[]);
        self.b.switch_to_block(ok);
        self.b.seal_block(ok);
    }

    /// Fails with `error`, its message's values `values` (i64), when `cond` is non-zero;
    /// emission continues on the path where it is zero.
    pub(super) fn fail_with_values_if(&mut self, cond: Value, error: usize, values: &[Value]) {
        let (failed, ok) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(cond, failed, &[], ok, &[]);
        self.b.switch_to_block(failed);
        self.b.seal_block(failed);
        self.store_error_values(values);
        self.fail(error);
        self.b.ins().jump(ok, &[]);
        self.b.switch_to_block(ok);
        self.b.seal_block(ok);
    }

    /// Writes `values` (i64) into the error slot, for the message of a failure.
    pub(super) fn store_error_values(&mut self, values: &[Value]) {
        for (k, v) in values.iter().take(MAX_ERROR_VALUES).enumerate() {
            self.b
                .ins()
                .store(flags(), *v, self.error_slot, 8 * k as i32);
        }
    }

    /// Returns status `error + 1`; emission continues in a fresh (unreachable) block.
    pub(super) fn fail(&mut self, error: usize) {
        let code = self.b.ins().iconst(types::I32, error as i64 + 1);
        self.b.ins().return_(&[code]);
        let dead = self.b.create_block();
        self.b.switch_to_block(dead);
        self.b.seal_block(dead);
    }
}

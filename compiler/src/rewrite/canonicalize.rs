//! Canonicalize: put graphs in a simple, regular form — fold constants, drop useless ops,
//! apply algebraic identities that hold exactly, answer shape questions without computing
//! values, and move DimShuffle and Subtensor towards the inputs so Elemwise chains meet.
//!
//! Every rule keeps the output's type (dtype and static shape) and its values; rules that
//! are only valid under a condition check it (see each rule's doc).

use tensorlift_ir::ops::{DimShuffle, IndexSlot};
use tensorlift_ir::types::elemwise_shape;
use tensorlift_ir::{
    promote, DType, FunctionGraph, Literal, NodeId, Op, ScalarOp, TensorData, VarId,
};

use super::pattern::{
    constant, dims_of, elemwise, elemwise_args, filled_like, is_uniform, producer, same_type,
    scalar_const, single_client, uniform_value,
};
use super::{Expr, Rule};

pub const RULES: [Rule; 25] = rules!["canonicalize";
    constant_folding,
    useless_dimshuffle,
    merge_dimshuffles,
    useless_specify_shape,
    useless_reshape,
    useless_alloc,
    useless_subtensor,
    useless_elemwise,
    useless_switch,
    neg_neg,
    mul_one,
    mul_ones_like,
    add_zero,
    sub_self,
    div_self,
    log_exp,
    exp_log,
    flatten_add_mul,
    combine_constants,
    shape_constant,
    shape_of_elemwise,
    shape_of_dot,
    subtensor_of_make_vector,
    lift_dimshuffle,
    lift_subtensor,
];

/// Most inputs a flattened add/mul may have: longer chains stay nested (fusion joins them
/// anyway), which keeps flattening linear on very long chains.
const MAX_FLAT_ARITY: usize = 32;

/// Largest constant (in elements) that folding may create.
const MAX_FOLDED_ELEMENTS: usize = 1 << 20;

/// The single output of `node`.
fn output(fg: &FunctionGraph, node: NodeId) -> Option<VarId> {
    match fg.node(node)?.outputs.as_slice() {
        [o] => Some(*o),
        _ => None,
    }
}

/// Inputs of `node` if it is the Elemwise `op`.
fn args_of(fg: &FunctionGraph, node: NodeId, op: ScalarOp) -> Option<Vec<VarId>> {
    let e = fg.node(node)?;
    (e.op == Op::Elemwise(op)).then(|| e.inputs.clone())
}

/// Any node whose inputs are all constants becomes constants (not CheckAndRaise, whose
/// failure must happen at run time; not when evaluation fails or the result is large).
fn constant_folding(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    if matches!(e.op, Op::CheckAndRaise { .. }) || e.inputs.is_empty() {
        return None;
    }
    let args = e
        .inputs
        .iter()
        .map(|x| constant(fg, *x).cloned())
        .collect::<Option<Vec<TensorData>>>()?;
    let outs = tensorlift_runtime::interpreter::eval_node(fg, node, &args).ok()?;
    if outs.iter().any(|o| o.len() > MAX_FOLDED_ELEMENTS) {
        return None;
    }
    Some(outs.into_iter().map(Expr::Const).collect())
}

/// DimShuffle that keeps every dimension in place → its input.
fn useless_dimshuffle(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let Op::DimShuffle(ds) = &e.op else {
        return None;
    };
    let identity = ds.new_order.len() == ds.input_ndim
        && ds.new_order.iter().enumerate().all(|(i, o)| *o == Some(i));
    identity.then(|| vec![Expr::Var(e.inputs[0])])
}

/// DimShuffle of a DimShuffle → one DimShuffle.
fn merge_dimshuffles(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let Op::DimShuffle(outer) = &e.op else {
        return None;
    };
    let (inner_node, _) = producer(fg, e.inputs[0])?;
    let Op::DimShuffle(inner) = &inner_node.op else {
        return None;
    };
    let new_order = outer
        .new_order
        .iter()
        .map(|o| o.and_then(|j| inner.new_order[j]))
        .collect();
    let ds = DimShuffle {
        input_ndim: inner.input_ndim,
        new_order,
    };
    Some(vec![Expr::apply(
        Op::DimShuffle(ds),
        vec![Expr::Var(inner_node.inputs[0])],
    )])
}

/// SpecifyShape of a value whose type already says it → the value.
fn useless_specify_shape(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    matches!(e.op, Op::SpecifyShape(_))
        .then_some(())
        .filter(|_| same_type(fg, e.inputs[0], e.outputs[0]))
        .map(|_| vec![Expr::Var(e.inputs[0])])
}

/// Reshape to the input's own shape (fully static, or `Shape(x)` itself) → the input.
fn useless_reshape(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let Op::Reshape { .. } = e.op else {
        return None;
    };
    let (x, shape) = (e.inputs[0], e.inputs[1]);
    let static_same = same_type(fg, x, e.outputs[0]) && fg.var(x).ty.static_size().is_some();
    let shape_of_x =
        matches!(producer(fg, shape), Some((p, 0)) if p.op == Op::Shape && p.inputs[0] == x);
    (static_same || shape_of_x).then(|| vec![Expr::Var(x)])
}

/// Alloc of a value that already has the (fully static) target type → the value.
fn useless_alloc(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let Op::Alloc = e.op else { return None };
    let v = e.inputs[0];
    (same_type(fg, v, e.outputs[0]) && fg.var(v).ty.static_size().is_some())
        .then(|| vec![Expr::Var(v)])
}

/// Subtensor whose every slot is `:` → the input.
fn useless_subtensor(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let Op::Subtensor(slots) = &e.op else {
        return None;
    };
    slots
        .iter()
        .all(|s| *s == IndexSlot::FULL)
        .then(|| vec![Expr::Var(e.inputs[0])])
}

/// Identity, and a cast to the dtype the value already has → the value.
fn useless_elemwise(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let useless = match e.op {
        Op::Elemwise(ScalarOp::Identity) => true,
        Op::Elemwise(ScalarOp::Cast(d)) => fg.var(e.inputs[0]).ty.dtype == d,
        _ => false,
    };
    (useless && same_type(fg, e.inputs[0], e.outputs[0])).then(|| vec![Expr::Var(e.inputs[0])])
}

/// switch(c, a, b) with a constant, uniform condition → the branch it selects (when that
/// branch already has the output's type).
fn useless_switch(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let [c, a, b] = args_of(fg, node, ScalarOp::Switch)?[..] else {
        return None;
    };
    let taken = if uniform_value(fg, c)? != 0.0 { a } else { b };
    same_type(fg, taken, output(fg, node)?).then(|| vec![Expr::Var(taken)])
}

/// --x → x.
fn neg_neg(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let [x] = args_of(fg, node, ScalarOp::Neg)?[..] else {
        return None;
    };
    let [inner] = elemwise_args(fg, x, ScalarOp::Neg)?[..] else {
        return None;
    };
    same_type(fg, inner, output(fg, node)?).then(|| vec![Expr::Var(inner)])
}

/// The Elemwise `op` of `node` without the operands `drop` selects, if the result keeps the
/// output's dtype and static shape.
fn without_operands(
    fg: &FunctionGraph,
    node: NodeId,
    op: ScalarOp,
    drop: impl Fn(VarId) -> bool,
) -> Option<Vec<Expr>> {
    let args = args_of(fg, node, op)?;
    let out = output(fg, node)?;
    let keep: Vec<VarId> = args.iter().copied().filter(|a| !drop(*a)).collect();
    if keep.len() == args.len() || keep.is_empty() {
        return None;
    }
    let out_ty = &fg.var(out).ty;
    let dtype = keep.iter().map(|k| fg.var(*k).ty.dtype).reduce(promote)?;
    let shapes: Vec<&[Option<usize>]> = keep
        .iter()
        .map(|k| fg.var(*k).ty.shape.as_slice())
        .collect();
    if dtype != out_ty.dtype || elemwise_shape("", &shapes).ok()? != out_ty.shape {
        return None;
    }
    Some(vec![match keep.as_slice() {
        [one] => Expr::Var(*one),
        many => elemwise(op, many.iter().map(|v| Expr::Var(*v)).collect()),
    }])
}

/// x * 1 → x (when dtype and shape stay the same).
fn mul_one(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    without_operands(fg, node, ScalarOp::Mul, |v| is_uniform(fg, v, 1.0))
}

/// x * alloc(1, sizes of x) → x: the ones a sum's gradient fills, when every size of the
/// alloc is provably x's (a constant equal to x's static size, or the run-time size of a
/// value x is computed from element by element without broadcasting it there).
fn mul_ones_like(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let [a, b] = args_of(fg, node, ScalarOp::Mul)?[..] else {
        return None;
    };
    let out = output(fg, node)?;
    [(a, b), (b, a)]
        .into_iter()
        .find(|&(ones, x)| same_type(fg, x, out) && ones_sized_like(fg, ones, x))
        .map(|(_, x)| vec![Expr::Var(x)])
}

/// `var` is `Alloc(1, d0, d1, ..)` whose every size is x's (see `mul_ones_like`).
fn ones_sized_like(fg: &FunctionGraph, var: VarId, x: VarId) -> bool {
    let Some((e, 0)) = producer(fg, var) else {
        return false;
    };
    let x_shape = &fg.var(x).ty.shape;
    if e.op != Op::Alloc || !is_uniform(fg, e.inputs[0], 1.0) || e.inputs.len() != x_shape.len() + 1
    {
        return false;
    }
    e.inputs[1..].iter().enumerate().all(|(d, &size)| {
        if let Some(c) = constant(fg, size).and_then(|c| c.to_i64_vec()) {
            return x_shape[d].is_some_and(|n| c == [n as i64]);
        }
        let Some((sub, 0)) = producer(fg, size) else {
            return false;
        };
        if sub.op != Op::Subtensor(vec![IndexSlot::Index])
            || constant(fg, sub.inputs[1]).and_then(|c| c.to_i64_vec()) != Some(vec![d as i64])
        {
            return false;
        }
        match producer(fg, sub.inputs[0]) {
            Some((shape, 0)) if shape.op == Op::Shape => {
                size_passes_to(fg, shape.inputs[0], x, d, 8)
            }
            _ => false,
        }
    })
}

/// Whether `x` has `y`'s run-time size along `d`: x is y, or is made element by element
/// (within `depth` steps) from values of y's size there; an operand of static size 1 there
/// does not count (it broadcasts).
fn size_passes_to(fg: &FunctionGraph, y: VarId, x: VarId, d: usize, depth: usize) -> bool {
    if x == y {
        return true;
    }
    let ndim = fg.var(x).ty.ndim();
    match producer(fg, x) {
        Some((p, _)) if depth > 0 && matches!(p.op, Op::Elemwise(_) | Op::Composite(_)) => {
            p.inputs.iter().any(|&i| {
                let t = &fg.var(i).ty;
                t.ndim() == ndim && t.shape[d] != Some(1) && size_passes_to(fg, y, i, d, depth - 1)
            })
        }
        _ => false,
    }
}

/// x + 0 → x and x - 0 → x (when dtype and shape stay the same).
fn add_zero(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    if let Some([x, zero]) = args_of(fg, node, ScalarOp::Sub).as_deref() {
        let out = output(fg, node)?;
        return (is_uniform(fg, *zero, 0.0) && same_type(fg, *x, out)).then(|| vec![Expr::Var(*x)]);
    }
    without_operands(fg, node, ScalarOp::Add, |v| is_uniform(fg, v, 0.0))
}

/// x - x → 0 for integers and bool (exact; for floats inf - inf is NaN, so they keep it).
fn sub_self(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let [a, b] = args_of(fg, node, ScalarOp::Sub)?[..] else {
        return None;
    };
    let out = output(fg, node)?;
    let dtype = fg.var(out).ty.dtype;
    (a == b && !dtype.is_float() && same_type(fg, a, out))
        .then(|| vec![filled_like(fg, a, Literal::Int(0), dtype)])
}

/// exp(y) / exp(y) → (y - y) + 1 for float y: 1 for every finite y, even where exp(y)
/// overflows or underflows (where the naive ratio is NaN), and NaN for NaN or infinite y,
/// as the naive ratio. Elsewhere x / x stays: x may be 0, inf or NaN.
fn div_self(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let [a, b] = args_of(fg, node, ScalarOp::TrueDiv)?[..] else {
        return None;
    };
    let out = output(fg, node)?;
    let y = match producer(fg, a) {
        Some((p, 0)) if matches!(p.op, Op::Elemwise(ScalarOp::Exp | ScalarOp::Exp2)) => p.inputs[0],
        _ => return None,
    };
    let ty = &fg.var(out).ty;
    (a == b && same_type(fg, y, out)).then(|| {
        let zero_or_nan = elemwise(ScalarOp::Sub, vec![Expr::Var(y), Expr::Var(y)]);
        vec![elemwise(
            ScalarOp::Add,
            vec![zero_or_nan, scalar_const(1.0, ty.dtype, ty.ndim())],
        )]
    })
}

/// log(exp(x)) → x for float x (exact, and right where exp overflows).
fn log_exp(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let [e] = args_of(fg, node, ScalarOp::Log)?[..] else {
        return None;
    };
    let [x] = elemwise_args(fg, e, ScalarOp::Exp)?[..] else {
        return None;
    };
    same_type(fg, x, output(fg, node)?).then(|| vec![Expr::Var(x)])
}

/// exp(log(x)) → switch(x >= 0, x, nan) for float x (log of a negative is NaN).
fn exp_log(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let [l] = args_of(fg, node, ScalarOp::Exp)?[..] else {
        return None;
    };
    let [x] = elemwise_args(fg, l, ScalarOp::Log)?[..] else {
        return None;
    };
    let out = output(fg, node)?;
    if !same_type(fg, x, out) {
        return None;
    }
    let ty = &fg.var(x).ty;
    let nonneg = elemwise(
        ScalarOp::Ge,
        vec![Expr::Var(x), scalar_const(0.0, ty.dtype, ty.ndim())],
    );
    let nan = scalar_const(f64::NAN, ty.dtype, ty.ndim());
    Some(vec![elemwise(
        ScalarOp::Switch,
        vec![nonneg, Expr::Var(x), nan],
    )])
}

/// add(add(a, b), c) → add(a, b, c) (and for mul) when the inner node has no other client
/// and no dtype changes anywhere in the chain.
fn flatten_add_mul(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let Op::Elemwise(op @ (ScalarOp::Add | ScalarOp::Mul)) = e.op else {
        return None;
    };
    let dtype = fg.var(e.outputs[0]).ty.dtype;
    let mut flat = Vec::new();
    let mut changed = false;
    for x in &e.inputs {
        match elemwise_args(fg, *x, op) {
            Some(inner)
                if single_client(fg, *x)
                    && inner
                        .iter()
                        .chain([x])
                        .all(|v| fg.var(*v).ty.dtype == dtype) =>
            {
                flat.extend(inner);
                changed = true;
            }
            _ => flat.push(*x),
        }
    }
    if flat.len() > MAX_FLAT_ARITY {
        return None;
    }
    let shapes: Vec<&[Option<usize>]> = flat
        .iter()
        .map(|v| fg.var(*v).ty.shape.as_slice())
        .collect();
    let same_shape = elemwise_shape("", &shapes).ok()? == fg.var(e.outputs[0]).ty.shape;
    (changed && same_shape).then(|| vec![elemwise(op, flat.into_iter().map(Expr::Var).collect())])
}

/// Several broadcast constants in one add/mul → one constant (folded in the output dtype).
fn combine_constants(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let Op::Elemwise(op @ (ScalarOp::Add | ScalarOp::Mul)) = e.op else {
        return None;
    };
    let out_ty = &fg.var(e.outputs[0]).ty;
    let is_scalar_const = |v: VarId| {
        uniform_value(fg, v).is_some() && fg.var(v).ty.shape.iter().all(|s| *s == Some(1))
    };
    let (consts, rest): (Vec<VarId>, Vec<VarId>) =
        e.inputs.iter().partition(|v| is_scalar_const(**v));
    if consts.len() < 2 || rest.is_empty() {
        return None;
    }
    let dtype = consts.iter().map(|c| fg.var(*c).ty.dtype).reduce(promote)?;
    let values = consts
        .iter()
        .map(|c| uniform_value(fg, *c))
        .collect::<Option<Vec<f64>>>()?;
    let folded = fold_literals(op, dtype, &values);
    let mut inputs: Vec<Expr> = rest.into_iter().map(Expr::Var).collect();
    inputs.push(scalar_const(folded, dtype, out_ty.ndim()));
    Some(vec![elemwise(op, inputs)])
}

fn fold_literals(op: ScalarOp, dtype: DType, values: &[f64]) -> Literal {
    let add = op == ScalarOp::Add;
    if dtype.is_float() {
        Literal::Float(
            values
                .iter()
                .copied()
                .reduce(|a, b| if add { a + b } else { a * b })
                .unwrap_or(0.0),
        )
    } else if dtype.is_bool() {
        Literal::Bool(if add {
            values.iter().any(|v| *v != 0.0)
        } else {
            values.iter().all(|v| *v != 0.0)
        })
    } else {
        let ints = values.iter().map(|v| *v as i64);
        Literal::Int(
            ints.reduce(|a, b| {
                if add {
                    a.wrapping_add(b)
                } else {
                    a.wrapping_mul(b)
                }
            })
            .unwrap_or(0),
        )
    }
}

/// Shape of a fully static value → a constant.
fn shape_constant(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    if e.op != Op::Shape {
        return None;
    }
    let shape = fg
        .var(e.inputs[0])
        .ty
        .shape
        .iter()
        .map(|s| s.map(|n| n as i64))
        .collect::<Option<Vec<i64>>>()?;
    Some(vec![Expr::Const(
        TensorData::from_vec(&[shape.len()], shape).ok()?,
    )])
}

/// Shape of an Elemwise or Composite result → built from its inputs' shapes (the values
/// are never computed for it).
fn shape_of_elemwise(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    if e.op != Op::Shape {
        return None;
    }
    let (p, _) = producer(fg, e.inputs[0])?;
    if !matches!(p.op, Op::Elemwise(_) | Op::Composite(_)) {
        return None;
    }
    let out_shape = &fg.var(e.inputs[0]).ty.shape;
    let dims: Vec<Expr> = out_shape
        .iter()
        .enumerate()
        .map(|(d, s)| match s {
            Some(n) => Some(Expr::Const(TensorData::scalar(*n as i64))),
            None => p
                .inputs
                .iter()
                .find(|x| fg.var(**x).ty.shape[d] != Some(1))
                .map(|x| dims_of(fg, *x).swap_remove(d)),
        })
        .collect::<Option<_>>()?;
    Some(vec![Expr::apply(Op::MakeVector(DType::Int64), dims)])
}

/// Shape of a Dot of vectors and matrices → its operands' outer sizes (the product's
/// values are never computed for it): (m, k)·(k, n) → [m, n], (m, k)·(k,) → [m],
/// (k,)·(k, n) → [n].
fn shape_of_dot(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    if e.op != Op::Shape {
        return None;
    }
    let (p, _) = producer(fg, e.inputs[0])?;
    let (Op::Dot, [a, b]) = (&p.op, p.inputs.as_slice()) else {
        return None;
    };
    let (mut da, mut db) = (dims_of(fg, *a), dims_of(fg, *b));
    let dims = match (da.len(), db.len()) {
        (2, 2) => vec![da.swap_remove(0), db.swap_remove(1)],
        (2, 1) => vec![da.swap_remove(0)],
        (1, 2) => vec![db.swap_remove(1)],
        _ => return None,
    };
    Some(vec![Expr::apply(Op::MakeVector(DType::Int64), dims)])
}

/// make_vector(a, b, c)[k] for a constant k → the k-th item.
fn subtensor_of_make_vector(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    if e.op != Op::Subtensor(vec![IndexSlot::Index]) {
        return None;
    }
    let (p, _) = producer(fg, e.inputs[0])?;
    let Op::MakeVector(_) = p.op else { return None };
    let k = constant(fg, e.inputs[1])?.to_i64_vec()?.first().copied()?;
    let k = tensorlift_ir::ops::indexing::resolve_index(k, p.inputs.len())?;
    Some(vec![Expr::Var(p.inputs[k])])
}

/// The Elemwise producing `x` and its scalar op, when `x` has no other client (so work
/// moved through it is not duplicated).
fn private_elemwise(
    fg: &FunctionGraph,
    x: VarId,
) -> Option<(&tensorlift_ir::fgraph::NodeEntry, ScalarOp)> {
    match producer(fg, x)? {
        (p, 0) if single_client(fg, x) => match p.op {
            Op::Elemwise(op) => Some((p, op)),
            _ => None,
        },
        _ => None,
    }
}

/// DimShuffle(elemwise(a, b)) → elemwise(DimShuffle(a), DimShuffle(b)) when the Elemwise
/// has no other client, so shuffles move to the inputs and Elemwise chains can fuse.
fn lift_dimshuffle(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let Op::DimShuffle(ds) = &e.op else {
        return None;
    };
    let x = e.inputs[0];
    let (p, op) = private_elemwise(fg, x)?;
    let inputs = p
        .inputs
        .iter()
        .map(|i| Expr::apply(Op::DimShuffle(ds.clone()), vec![Expr::Var(*i)]))
        .collect();
    Some(vec![elemwise(op, inputs)])
}

/// x_op(a, b)[idx] → x_op(a[idx], b[idx]) for basic indices when the Elemwise has no other
/// client: only the selected elements are computed. Inputs broadcast along a dimension take
/// `:` (or index 0) there.
fn lift_subtensor(fg: &FunctionGraph, node: NodeId) -> Option<Vec<Expr>> {
    let e = fg.node(node)?;
    let Op::Subtensor(slots) = &e.op else {
        return None;
    };
    let x = e.inputs[0];
    let (p, op) = private_elemwise(fg, x)?;
    let out_shape = &fg.var(x).ty.shape;
    let values = &e.inputs[1..];
    let inputs = p
        .inputs
        .iter()
        .map(|input| {
            let in_shape = &fg.var(*input).ty.shape;
            let mut new_slots = Vec::with_capacity(slots.len());
            let mut new_values = vec![Expr::Var(*input)];
            let mut next = 0;
            for (axis, slot) in slots.iter().enumerate() {
                let k = slot.n_inputs();
                let broadcast = in_shape[axis] == Some(1) && out_shape[axis] != Some(1);
                match (broadcast, slot) {
                    (true, IndexSlot::Index) => {
                        new_slots.push(IndexSlot::Index);
                        new_values.push(Expr::Const(TensorData::scalar(0i64)));
                    }
                    (true, _) => new_slots.push(IndexSlot::FULL),
                    (false, _) => {
                        new_slots.push(*slot);
                        new_values.extend(values[next..next + k].iter().map(|v| Expr::Var(*v)));
                    }
                }
                next += k;
            }
            Expr::apply(Op::Subtensor(new_slots), new_values)
        })
        .collect();
    Some(vec![elemwise(op, inputs)])
}

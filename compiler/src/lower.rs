//! Lowering of graph nodes to loop-nest kernels (DESIGN §11).
//!
//! Owns: which nodes become jitted kernels and their loop nests. An Elemwise or Composite
//! node becomes one loop nest over its output (inputs broadcast along a dimension are read
//! at index 0, i.e. with stride 0); a reduction loops over its input in memory order and
//! accumulates into the output (so both an innermost and an outer reduced axis read
//! memory contiguously); a `FusedReduce` computes its composite body inside the reduction
//! loop, reading the inputs once. Kernels compute floats in f64 (float32 results rounded
//! as the reference rounds them), integers in wrapping i64 (wrapped to their dtype), bools
//! as 0/1 (logic on bools as bit operations); integer powers check their exponents.
//! The other kernels live by kind: `linalg` (Dot), `indexing` (gathers and scatters),
//! `along_axis` (running sums/products, arg-reductions), `shapes` (concatenation, Alloc,
//! Arange, Shape, MakeVector, checks, Reshape's copy of strided data), `softmax` (row by
//! row in cache). Every kernel starts with its shape checks. Views (DimShuffle, basic
//! Subtensor, Split) have no kernel: no code is needed to make them.

use tensorlift_ir::ops::{
    AdvancedSlot, ArgKind, Composite, CumKind, IncMode, IndexSlot, ReduceKind, ScalarRef,
};
use tensorlift_ir::{DType, FunctionGraph, NodeId, Op, ScalarOp, TensorType};

use crate::loopir::{Buffer, Expr, Index, Kernel, Role, Stmt, SupportCall};

mod along_axis;
mod indexing;
mod linalg;
pub mod scan;
mod shapes;
mod softmax;

use along_axis::{arg_kernel, cumulative_kernel};
pub(crate) use indexing::{advanced_layout, AdvancedLayout, ArraySource};
use indexing::{region_write_kernel, scatter_kernel, take_kernel};
use linalg::dot_kernel;
use shapes::{
    alloc_kernel, arange_kernel, check_kernel, join_kernel, make_vector_kernel,
    reshape_copy_kernel, shape_kernel, specify_shape_kernel,
};
use softmax::softmax_kernel;

/// Whether a kernel computes `op` producing `dtype` from `args`.
fn kernel_op(op: ScalarOp, args: &[DType], dtype: DType) -> bool {
    use ScalarOp::*;
    let any_float = args.iter().any(|a| a.is_float());
    let all_bool = args.iter().all(|a| *a == DType::Bool);
    match op {
        Eq | Neq | Lt | Le | Gt | Ge => true,
        IsNan | IsInf => any_float,
        Switch => args[0] == DType::Bool,
        Cast(_) | Identity => true,
        // Logic on bools: bit operations (`+`/`maximum` are or, `*`/`minimum` and).
        And | Or | Xor | Not | Add | Mul | Maximum | Minimum if dtype == DType::Bool => all_bool,
        // Of a bool: the bool itself.
        Abs | Floor | Ceil | Round if dtype == DType::Bool => all_bool,
        // Float results in f64; integer results in wrapping arithmetic and logic as the
        // reference computes them (integer powers check their exponents in the kernel:
        // negative ones fail); other bool results are errors of the op.
        Neg | Abs | Sign | Sqr | Floor | Ceil | Round | Add | Sub | Mul | Maximum | Minimum
        | Clip | IntDiv | Mod | Pow => dtype != DType::Bool,
        // Logic of integers is bitwise; of floats it is not defined.
        Not | And | Or | Xor => dtype.is_int(),
        // Functions of floats only.
        Reciprocal | Exp | Exp2 | Expm1 | Log | Log2 | Log1p | Log1mexp | Sqrt | Sin | Cos
        | Tan | Tanh | Sigmoid | Softplus | Erf | Erfc | Gammaln | Digamma | TrueDiv => {
            dtype.is_float()
        }
    }
}

/// A composite body is lowerable when every node is.
fn composite_ok(c: &Composite) -> bool {
    let dtype_of = |r: &ScalarRef| match r {
        ScalarRef::Input(i) => c.inputs[*i],
        ScalarRef::Node(j) => c.nodes[*j].dtype,
        ScalarRef::Const(_, d) => *d,
    };
    c.nodes.iter().all(|n| {
        let args: Vec<DType> = n.args.iter().map(dtype_of).collect();
        kernel_op(n.op, &args, n.dtype)
    })
}

/// The composite an Elemwise node computes (one scalar node).
fn elemwise_composite(fg: &FunctionGraph, node: NodeId, op: ScalarOp) -> Option<Composite> {
    let e = fg.node(node)?;
    let dtypes = e.inputs.iter().map(|x| fg.var(*x).ty.dtype).collect();
    let args = (0..e.inputs.len()).map(ScalarRef::Input).collect();
    Composite::new(dtypes, vec![(op, args)], vec![ScalarRef::Node(0)]).ok()
}

/// The kernel for `node`, or `None` when the node is not lowered to a kernel. Every kernel
/// starts by checking the shapes it is given (`Kernel::with_shape_checks`).
pub fn lower_node(fg: &FunctionGraph, node: NodeId) -> Option<Kernel> {
    lower_unchecked(fg, node).map(Kernel::with_shape_checks)
}

fn lower_unchecked(fg: &FunctionGraph, node: NodeId) -> Option<Kernel> {
    let e = fg.node(node)?;
    let in_types: Vec<&TensorType> = e.inputs.iter().map(|x| &fg.var(*x).ty).collect();
    let out_types: Vec<&TensorType> = e.outputs.iter().map(|o| &fg.var(*o).ty).collect();
    match &e.op {
        Op::Elemwise(op) => {
            let c = elemwise_composite(fg, node, *op)?;
            composite_ok(&c).then(|| elemwise_kernel(&c, &in_types, &out_types))
        }
        Op::Composite(c) => composite_ok(c).then(|| elemwise_kernel(c, &in_types, &out_types)),
        Op::Reduce { kind, axes } => {
            // all/any of numbers reduce their truth values (x != 0; NaN is true), as the
            // reference's cast to bool gives them.
            let x = in_types[0].dtype;
            let logical = matches!(kind, ReduceKind::All | ReduceKind::Any);
            let (op, values) = match logical && x != DType::Bool {
                true => (ScalarOp::Cast(DType::Bool), DType::Bool),
                false => (ScalarOp::Identity, x),
            };
            // The maximum of bools is any, the minimum all (an empty axis stays the
            // reference's error: the executor checks it by the op's own kind).
            let kind = match (kind, values) {
                (ReduceKind::Max, DType::Bool) => ReduceKind::Any,
                (ReduceKind::Min, DType::Bool) => ReduceKind::All,
                _ => *kind,
            };
            if !reducible(kind, values, out_types[0].dtype) {
                return None;
            }
            let c = Composite::new(
                vec![x],
                vec![(op, vec![ScalarRef::Input(0)])],
                vec![ScalarRef::Node(0)],
            )
            .ok()?;
            Some(reduce_kernel(kind, axes, &c, &in_types, out_types[0]))
        }
        Op::FusedReduce {
            kind,
            axes,
            body,
            keep,
        } if composite_ok(body)
            && body.outputs.len() == 1
            && reducible(*kind, body_dtype(body), out_types[0].dtype) =>
        {
            let mut k = reduce_kernel(*kind, axes, body, &in_types, out_types[0]);
            if *keep {
                keep_values(&mut k, out_types[1]);
            }
            Some(k)
        }
        Op::Dot => dot_kernel(&in_types, out_types[0]),
        Op::Cumulative { kind, axis } => cumulative_kernel(*kind, *axis, in_types[0], out_types[0]),
        Op::ArgReduce { kind, axis } => arg_kernel(*kind, *axis, in_types[0], out_types[0]),
        Op::Softmax { axis } => softmax_kernel(*axis, in_types[0], out_types[0]),
        Op::Join { axis } => join_kernel(*axis, &in_types, out_types[0]),
        Op::Alloc => alloc_kernel(&in_types, out_types[0]),
        Op::Arange(dtype) => arange_kernel(*dtype, &in_types, out_types[0]),
        Op::AdvancedSubtensor(slots) => {
            let layout = advanced_layout(slots, &in_types[1..], in_types[0].ndim())?;
            take_kernel(&layout, in_types[0], out_types[0])
        }
        Op::AdvancedIncSubtensor { slots, mode } => {
            let layout = advanced_layout(slots, in_types.get(2..)?, in_types[0].ndim())?;
            scatter_kernel(&layout, *mode, in_types[0], in_types[1])
        }
        Op::Reshape { .. } => Some(reshape_copy_kernel(in_types[0])),
        Op::Shape => shape_kernel(in_types[0], out_types[0]),
        Op::MakeVector(_) => make_vector_kernel(&in_types, out_types[0]),
        Op::SpecifyShape(spec) => specify_shape_kernel(spec, in_types[0]),
        Op::CheckAndRaise { message } => check_kernel(message, &in_types),
        Op::IncSubtensor { slots, mode } => {
            region_write_kernel(slots, *mode, in_types[0], in_types[1])
        }
        // A fused reduction whose body or result no kernel computes.
        Op::FusedReduce { .. } => None,
        // Views: the runtime's stride arithmetic, no code; a kept OpFromGraph, a scan's
        // body and an IfElse's branches are compiled functions of their own (the JIT's
        // sub-plans).
        Op::DimShuffle(_)
        | Op::Subtensor(_)
        | Op::Split { .. }
        | Op::OpFromGraph(_)
        | Op::Scan(_)
        | Op::IfElse(_) => None,
        // Expanded by the compile pipeline before any backend sees it.
        Op::Grad(_) => None,
        // A call of the linear-algebra library; a driver over a compiled core.
        Op::Linalg(_) | Op::Blockwise(_) | Op::Random(_) | Op::Sparse(_) | Op::Custom(_) => None,
    }
}

/// Whether a kernel computes the reduction `kind` from `input` values into `output`:
/// float sums, products, maxima, minima and logsumexps; integer (and bool-counting) sums, products,
/// maxima and minima in wrapping i64; all/any of bools.
fn reducible(kind: ReduceKind, input: DType, output: DType) -> bool {
    match kind {
        ReduceKind::All | ReduceKind::Any => input == DType::Bool && output == DType::Bool,
        ReduceKind::LogSumExp => input.is_float() && output.is_float(),
        ReduceKind::Sum | ReduceKind::Prod | ReduceKind::Max | ReduceKind::Min => {
            output != DType::Bool && (output.is_float() == input.is_float() || input == DType::Bool)
        }
    }
}

/// The dtype of a composite's (first) output.
fn body_dtype(c: &Composite) -> DType {
    match c.outputs.first() {
        Some(ScalarRef::Input(i)) => c.inputs[*i],
        Some(ScalarRef::Node(j)) => c.nodes[*j].dtype,
        Some(ScalarRef::Const(_, d)) => *d,
        None => DType::Float64,
    }
}

fn input_buffers(types: &[&TensorType]) -> Vec<Buffer> {
    types
        .iter()
        .enumerate()
        .map(|(k, t)| Buffer {
            name: format!("in{k}"),
            dtype: t.dtype,
            rank: t.ndim(),
            role: Role::Input,
        })
        .collect()
}

/// The input buffers and one output `out` after them; returns them and the output's index.
fn buffers_with_output(in_types: &[&TensorType], out: &TensorType) -> (Vec<Buffer>, usize) {
    let mut buffers = input_buffers(in_types);
    let index = buffers.len();
    buffers.push(Buffer {
        name: "out".into(),
        dtype: out.dtype,
        rank: out.ndim(),
        role: Role::Output,
    });
    (buffers, index)
}

/// Index of input `ty` at the loop variables `vars`: broadcast dimensions read index 0.
fn input_index(ty: &TensorType, vars: &[usize]) -> Vec<Index> {
    ty.broadcastable()
        .iter()
        .zip(vars)
        .map(|(b, v)| if *b { Index::Zero } else { Index::Var(*v) })
        .collect()
}

/// `Let`s computing every node of `c` at the given input indices; returns the expression
/// of each composite output. An integer power first checks its exponent (a negative one
/// fails with the reference's message, added to `errors`).
fn composite_body(
    c: &Composite,
    in_types: &[&TensorType],
    vars: &[usize],
    body: &mut Vec<Stmt>,
    errors: &mut Vec<String>,
) -> Vec<Expr> {
    let mut next_temp = 0;
    let mut input_temps = vec![None; c.inputs.len()];
    let mut node_temps = Vec::with_capacity(c.nodes.len());
    let mut resolve = |r: &ScalarRef, body: &mut Vec<Stmt>, node_temps: &[usize]| match r {
        ScalarRef::Input(i) => {
            let t = *input_temps[*i].get_or_insert_with(|| {
                let t = next_temp;
                next_temp += 1;
                body.push(Stmt::Let {
                    temp: t,
                    dtype: c.inputs[*i],
                    value: Expr::Load {
                        buf: *i,
                        index: input_index(in_types[*i], vars),
                    },
                });
                t
            });
            Expr::Temp(t)
        }
        ScalarRef::Node(j) => Expr::Temp(node_temps[*j]),
        ScalarRef::Const(l, d) => Expr::Const(*l, *d),
    };
    for n in &c.nodes {
        let args: Vec<Expr> = n
            .args
            .iter()
            .map(|a| resolve(a, body, &node_temps))
            .collect();
        if n.op == ScalarOp::Pow && n.dtype.is_int() {
            body.push(negative_exponent_check(&args[1], errors));
        }
        let t = c.inputs.len() + node_temps.len();
        body.push(Stmt::Let {
            temp: t,
            dtype: n.dtype,
            value: Expr::Apply {
                op: n.op,
                args,
                dtype: n.dtype,
            },
        });
        node_temps.push(t);
    }
    c.outputs
        .iter()
        .map(|o| resolve(o, body, &node_temps))
        .collect()
}

/// `if exponent < 0: fail` with the reference's message for integer powers.
fn negative_exponent_check(exponent: &Expr, errors: &mut Vec<String>) -> Stmt {
    let error = errors.len();
    errors.push(
        "integers to negative integer powers are not allowed (input 1 holds {0}); cast to \
         float first"
            .into(),
    );
    Stmt::If {
        cond: Expr::apply(
            ScalarOp::Lt,
            vec![exponent.clone(), Expr::int(0)],
            DType::Bool,
        ),
        then: vec![Stmt::Fail {
            error,
            values: vec![exponent.clone()],
        }],
        otherwise: Vec::new(),
    }
}

/// Wraps `body` in loops over dimensions `0..rank` of the buffers `extent_bufs[d]`.
fn nest(extent_bufs: &[usize], body: Vec<Stmt>) -> Vec<Stmt> {
    let mut stmts = body;
    for d in (0..extent_bufs.len()).rev() {
        stmts = vec![Stmt::For {
            var: d,
            buf: extent_bufs[d],
            dim: d,
            parallel: false,
            body: stmts,
        }];
    }
    stmts
}

fn elemwise_kernel(c: &Composite, in_types: &[&TensorType], out_types: &[&TensorType]) -> Kernel {
    let mut buffers = input_buffers(in_types);
    let first_out = buffers.len();
    for (k, t) in out_types.iter().enumerate() {
        buffers.push(Buffer {
            name: format!("out{k}"),
            dtype: t.dtype,
            rank: t.ndim(),
            role: Role::Output,
        });
    }
    let rank = out_types[0].ndim();
    let vars: Vec<usize> = (0..rank).collect();
    let (mut inner, mut errors) = (Vec::new(), Vec::new());
    let outs = composite_body(c, in_types, &vars, &mut inner, &mut errors);
    for (k, value) in outs.into_iter().enumerate() {
        inner.push(Stmt::Store {
            buf: first_out + k,
            index: vars.iter().map(|v| Index::Var(*v)).collect(),
            value,
        });
    }
    Kernel {
        name: "elemwise".into(),
        buffers,
        body: nest(&vec![first_out; rank], inner),
        errors,
    }
}

/// Adds a second output to a reduction kernel holding the per-element values it reduces,
/// stored where they are computed (loop variable d walks dimension d).
fn keep_values(k: &mut Kernel, ty: &TensorType) {
    let buf = k.buffers.len();
    k.buffers.push(Buffer {
        name: "values".into(),
        dtype: ty.dtype,
        rank: ty.ndim(),
        role: Role::Output,
    });
    fn visit(body: &mut Vec<Stmt>, buf: usize, rank: usize) {
        let mut i = 0;
        while i < body.len() {
            if let Stmt::For { body, .. } = &mut body[i] {
                visit(body, buf, rank);
            } else if let Stmt::Accumulate { value, .. } = &body[i] {
                let store = Stmt::Store {
                    buf,
                    index: (0..rank).map(Index::Var).collect(),
                    value: value.clone(),
                };
                body.insert(i, store);
                i += 1;
            }
            i += 1;
        }
    }
    visit(&mut k.body, buf, ty.ndim());
}

fn reduce_kernel(
    kind: ReduceKind,
    axes: &[usize],
    c: &Composite,
    in_types: &[&TensorType],
    out_type: &TensorType,
) -> Kernel {
    let (buffers, out) = buffers_with_output(in_types, out_type);
    let rank = in_types.first().map_or(0, |t| t.ndim());
    let vars: Vec<usize> = (0..rank).collect();
    // The extent of dimension d comes from an input that is not broadcast there.
    let extent_bufs: Vec<usize> = (0..rank)
        .map(|d| {
            in_types
                .iter()
                .position(|t| !t.broadcastable()[d])
                .unwrap_or(0)
        })
        .collect();
    let (mut inner, mut errors) = (Vec::new(), Vec::new());
    let values = composite_body(c, in_types, &vars, &mut inner, &mut errors);
    let out_index = (0..rank)
        .filter(|d| !axes.contains(d))
        .map(Index::Var)
        .collect();
    inner.push(Stmt::Accumulate {
        buf: out,
        index: out_index,
        kind,
        value: values.into_iter().next().unwrap_or(Expr::Temp(0)),
    });
    let mut body = vec![Stmt::Fill { buf: out, kind }];
    body.extend(nest(&extent_bufs, inner));
    Kernel {
        name: format!("{}_reduce", format!("{kind:?}").to_lowercase()),
        buffers,
        body,
        errors,
    }
}

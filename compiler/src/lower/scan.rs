//! A scan as native code (DESIGN §8, §11): a driver kernel whose loop invokes the body's
//! kernels on views, step after step, without returning to Rust and without allocating.
//!
//! Owns: which scans lower natively (a body whose every node is a kernel with a shape
//! rule the driver can state: element-wise, fused, reductions other than products and
//! over axes that may be empty, dot, running ops, arg-reductions over an axis known not
//! to be empty, softmax; DimShuffle and basic indexing by integers and full slices (read
//! or written) as copies; checks, whose output is x; an IfElse of such nodes, as the
//! driver's own `if` running only the taken branch's kernels; a nested scan of such
//! nodes, as a driver of its own invoked each step, which computes and checks its step
//! count and initial blocks itself), the driver's buffers (the step count, the node's
//! inputs, the constants of the body and of what it nests; per state its last value and,
//! when kept, its trace — growing for a while-scan; local buffers: the step counter, the
//! stop flag, a ring of `depth + 1` slots per state, one buffer per intermediate and a
//! nested driver's locals, all allocated once per call and set before use), and the
//! module: body kernels, copies, nested modules, driver last.
//!
//! State k's value after step i (and its initial rows, at i = −depth…−1) lives in slot
//! `(i + depth) mod (depth + 1)` of its ring: the slots a step reads and the one it writes
//! are distinct, so a body kernel writes the new state straight into its slot. The driver
//! keeps `t mod (depth + 1)` in a local of its own, so slots cost a comparison, not a
//! division.

use std::collections::HashMap;

use tensorlift_ir::ops::scan::has_initial_block;
use tensorlift_ir::ops::{DimShuffle, IfElse, IndexSlot, ReduceKind, Scan};
use tensorlift_ir::{
    DType, FunctionGraph, Literal, NodeId, Op, Origin, ScalarOp, TensorData, TensorType, VarId,
};

use super::indexing::{basic_take_kernel, basic_update_kernel, integers_and_full_slices};
use super::{lower_node, shapes::reshape_copy_kernel};
use crate::loopir::{Buffer, Expr, Extent, Index, Kernel, Reg, Role, Stmt, Temp, View};

/// A scan lowered to native code.
pub struct ScanKernels {
    /// Body kernels, copy kernels, then the driver (last).
    pub kernels: Vec<Kernel>,
    /// The body's constants, passed to the driver after the node's inputs.
    pub constants: Vec<TensorData>,
}

/// Where a body variable lives during a step.
#[derive(Clone)]
enum Place {
    /// Row `t + tap - taps[0]` (or from the end, reversed) of sequence buffer `buf`.
    Sequence { buf: usize, tap: i64, first: i64 },
    /// State `k` at `tap` (−depth…−1 before this step; 0: the slot this step writes).
    State { k: usize, tap: i64 },
    /// A whole driver buffer (non-sequence, constant, intermediate).
    Whole(usize),
}

struct Builder<'a> {
    scan: &'a Scan,
    buffers: Vec<Buffer>,
    errors: Vec<String>,
    /// Per state: its ring buffer, depth, and the int64 scalar local holding
    /// `t mod (depth + 1)` (kept by additions, so no division runs per step).
    rings: Vec<(usize, usize, usize)>,
    /// The step counter (int64 scalar local) and the step count (int64 scalar input).
    counter: usize,
    steps: usize,
}

impl Builder<'_> {
    fn add(&mut self, name: String, ty: &TensorType, role: Role) -> usize {
        self.buffers.push(Buffer {
            name,
            dtype: ty.dtype,
            rank: ty.ndim(),
            role,
        });
        self.buffers.len() - 1
    }

    /// The step index `t` of the current step, an int64 expression.
    fn t(&self) -> Expr {
        Expr::Load {
            buf: self.counter,
            index: vec![],
        }
    }

    fn int_op(op: ScalarOp, a: Expr, b: Expr) -> Expr {
        Expr::apply(op, vec![a, b], DType::Int64)
    }

    /// `e + k` (just `e` for k = 0).
    fn plus(e: Expr, k: i64) -> Expr {
        match k {
            0 => e,
            _ => Self::int_op(ScalarOp::Add, e, Expr::int(k)),
        }
    }

    /// The view of `place` at the current step.
    fn view(&self, place: &Place) -> View {
        match place {
            Place::Sequence { buf, tap, first } => {
                let t = if self.scan.reverse {
                    // steps − 1 − t
                    let last = Self::int_op(
                        ScalarOp::Sub,
                        Expr::Load {
                            buf: self.steps,
                            index: vec![],
                        },
                        Expr::int(1),
                    );
                    Self::int_op(ScalarOp::Sub, last, self.t())
                } else {
                    self.t()
                };
                View::at(*buf, vec![Self::plus(t, tap - first)])
            }
            Place::State { k, tap } => self.ring_view(*k, *tap),
            Place::Whole(buf) => View::whole(*buf),
        }
    }

    /// State `k` at `tap` relative to the current step t: slot `(t + tap + depth) mod
    /// (depth + 1)`, from the phase `t mod (depth + 1)` by one comparison.
    fn ring_view(&self, k: usize, tap: i64) -> View {
        let (ring, depth, phase) = self.rings[k];
        let m = depth as i64 + 1;
        let phase = || Expr::Load {
            buf: phase,
            index: vec![],
        };
        let j = || Self::plus(phase(), tap + depth as i64);
        let slot = if tap + depth as i64 == 0 {
            phase()
        } else {
            let wraps = Expr::apply(ScalarOp::Ge, vec![j(), Expr::int(m)], DType::Bool);
            Expr::apply(
                ScalarOp::Switch,
                vec![wraps, Self::plus(j(), -m), j()],
                DType::Int64,
            )
        };
        View::at(ring, vec![slot])
    }

    /// `phase ← (phase + 1) mod (depth + 1)` for every state, by one comparison each.
    fn advance_phases(&self) -> Vec<Stmt> {
        self.rings
            .iter()
            .map(|(_, depth, phase)| {
                let next = Self::plus(
                    Expr::Load {
                        buf: *phase,
                        index: vec![],
                    },
                    1,
                );
                let wraps = Expr::apply(
                    ScalarOp::Eq,
                    vec![next.clone(), Expr::int(*depth as i64 + 1)],
                    DType::Bool,
                );
                Stmt::Store {
                    buf: *phase,
                    index: vec![],
                    value: Expr::apply(
                        ScalarOp::Switch,
                        vec![wraps, Expr::int(0), next],
                        DType::Int64,
                    ),
                }
            })
            .collect()
    }
}

/// The statements of `callee`, a kernel of scalars only (every buffer 0-d; lets, stores,
/// conditions and failures), inlined into `driver` on `views`: each view index a checked
/// temporary, the callee's temporaries and errors renumbered after the driver's. Saves a
/// call per step where the body is a few scalar operations. `None`: invoke it instead.
fn inline_scalar(
    driver: &mut Kernel,
    next_temp: &mut usize,
    callee: &Kernel,
    views: &[View],
) -> Option<Vec<Stmt>> {
    let scalars = callee
        .buffers
        .iter()
        .all(|b| b.rank == 0 && matches!(b.role, Role::Input | Role::Output));
    fn simple(body: &[Stmt]) -> bool {
        body.iter().all(|s| match s {
            Stmt::Let { .. } | Stmt::Store { .. } | Stmt::Fail { .. } => true,
            Stmt::Reg { .. } | Stmt::Set { .. } => false,
            Stmt::If {
                then, otherwise, ..
            } => simple(then) && simple(otherwise),
            Stmt::For { .. }
            | Stmt::While { .. }
            | Stmt::Accumulate { .. }
            | Stmt::Fill { .. }
            | Stmt::Call { .. }
            | Stmt::Grow { .. }
            | Stmt::Invoke { .. } => false,
        })
    }
    let fits = views.len() == callee.buffers.len()
        && views.iter().all(|v| {
            driver
                .buffers
                .get(v.buf)
                .is_some_and(|b| b.rank == v.at.len())
        });
    if !scalars || !fits || !simple(&callee.body) {
        return None;
    }
    let mut out = Vec::new();
    let view_error = driver.errors.len();
    driver.errors.push(format!(
        "{}: a view index {{0}} is out of range for a dimension of size {{1}}",
        callee.name
    ));
    let mut indices: Vec<Vec<Index>> = Vec::with_capacity(views.len());
    for v in views {
        let mut index = Vec::with_capacity(v.at.len());
        for (d, e) in v.at.iter().enumerate() {
            let t = *next_temp;
            *next_temp += 1;
            out.push(Stmt::Let {
                temp: t,
                dtype: DType::Int64,
                value: e.clone(),
            });
            let size = Expr::Dim { buf: v.buf, dim: d };
            let below = Expr::apply(ScalarOp::Lt, vec![Expr::Temp(t), Expr::int(0)], DType::Bool);
            let above = Expr::apply(ScalarOp::Ge, vec![Expr::Temp(t), size.clone()], DType::Bool);
            out.push(Stmt::If {
                cond: Expr::apply(ScalarOp::Or, vec![below, above], DType::Bool),
                then: vec![Stmt::Fail {
                    error: view_error,
                    values: vec![Expr::Temp(t), size],
                }],
                otherwise: Vec::new(),
            });
            index.push(Index::Temp(t));
        }
        indices.push(index);
    }
    let error_base = driver.errors.len();
    driver.errors.extend(
        callee
            .errors
            .iter()
            .map(|m| format!("{}: {m}", callee.name)),
    );
    let mut most = 0;
    crate::loopir::visit_stmts(&callee.body, &mut |s| {
        if let Stmt::Let { temp, .. } = s {
            most = most.max(*temp + 1);
        }
    });
    let base = *next_temp;
    *next_temp += most;
    struct Remap<'a> {
        views: &'a [View],
        indices: &'a [Vec<Index>],
        base: usize,
        error_base: usize,
    }
    impl Remap<'_> {
        fn expr(&self, e: &Expr) -> Expr {
            match e {
                Expr::Load { buf, .. } => Expr::Load {
                    buf: self.views[*buf].buf,
                    index: self.indices[*buf].clone(),
                },
                Expr::Temp(t) => Expr::Temp(t + self.base),
                Expr::Apply { op, args, dtype } => Expr::Apply {
                    op: *op,
                    args: args.iter().map(|a| self.expr(a)).collect(),
                    dtype: *dtype,
                },
                Expr::Const(..) | Expr::Dim { .. } | Expr::Var(_) | Expr::Reg(_) => e.clone(),
            }
        }
        fn stmts(&self, body: &[Stmt]) -> Vec<Stmt> {
            body.iter()
                .map(|s| match s {
                    Stmt::Let { temp, dtype, value } => Stmt::Let {
                        temp: temp + self.base,
                        dtype: *dtype,
                        value: self.expr(value),
                    },
                    Stmt::Store { buf, value, .. } => Stmt::Store {
                        buf: self.views[*buf].buf,
                        index: self.indices[*buf].clone(),
                        value: self.expr(value),
                    },
                    Stmt::If {
                        cond,
                        then,
                        otherwise,
                    } => Stmt::If {
                        cond: self.expr(cond),
                        then: self.stmts(then),
                        otherwise: self.stmts(otherwise),
                    },
                    Stmt::Fail { error, values } => Stmt::Fail {
                        error: error + self.error_base,
                        values: values.iter().map(|v| self.expr(v)).collect(),
                    },
                    // (Refused above.)
                    other => other.clone(),
                })
                .collect()
        }
    }
    let remap = Remap {
        views,
        indices: &indices,
        base,
        error_base,
    };
    out.extend(remap.stmts(&callee.body));
    Some(out)
}

/// The driver's name for node input `i` (the bound has none): `seq`, `init` or `nonseq`
/// with its index among its kind.
fn input_name(scan: &Scan, i: usize) -> String {
    if i < scan.first_state() {
        format!("seq{}", i - scan.first_sequence())
    } else if i < scan.first_non_sequence() {
        format!("init{}", i - scan.first_state())
    } else {
        format!("nonseq{}", i - scan.first_non_sequence())
    }
}

/// Which graph a variable belongs to: the body or a branch of an IfElse in it (by the
/// graph's address, stable while the scan lives).
type GraphKey = usize;

fn graph_key(g: &FunctionGraph) -> GraphKey {
    g as *const FunctionGraph as usize
}

/// The constants of `g` and of the branches of its IfElses, each once per graph, in order
/// of first use (node inputs, then outputs): the driver takes them as inputs after the
/// node's.
fn body_constants(g: &FunctionGraph, out: &mut Vec<(GraphKey, VarId, TensorData)>) {
    let key = graph_key(g);
    let order = g.toposort();
    let reads = order
        .iter()
        .filter_map(|n| g.node(*n))
        .flat_map(|e| e.inputs.iter())
        .chain(g.outputs());
    for x in reads {
        if let Origin::Constant(d) = &g.var(*x).origin {
            if !out.iter().any(|(k, y, _)| *k == key && y == x) {
                out.push((key, *x, d.clone()));
            }
        }
    }
    for n in &order {
        if let Some(Op::IfElse(ie)) = g.node(*n).map(|e| &e.op) {
            body_constants(ie.then_branch.graph(), out);
            body_constants(ie.else_branch.graph(), out);
        }
    }
}

/// Whether the driver can run every node of `g` (a body, or a branch of an IfElse in one).
fn native_graph(g: &FunctionGraph) -> bool {
    g.toposort().into_iter().all(|n| {
        g.node(n).is_some_and(|e| {
            let types: Vec<&TensorType> = e.inputs.iter().map(|x| &g.var(*x).ty).collect();
            match body_step(&e.op, &types) {
                None => false,
                Some(BodyStep::Kernel(_)) => true,
                Some(BodyStep::Choice(ie)) => {
                    native_graph(ie.then_branch.graph()) && native_graph(ie.else_branch.graph())
                }
                // An invoked driver cannot grow a buffer its caller holds.
                Some(BodyStep::Nested(inner)) => {
                    native_graph(inner.body.graph())
                        && !(inner.until && inner.keep_trace.contains(&true))
                }
            }
        })
    })
}

/// How a body node's outputs are shaped from its inputs', for the nodes a driver can run
/// as kernels (`body_step`).
enum ShapeRule<'a> {
    /// Every output has the element-wise inputs' common shape.
    Common,
    /// The common shape without `axes`; with it again as a second output when `keep`.
    Reduced {
        axes: Vec<usize>,
        keep: bool,
    },
    /// The first input's shape.
    First,
    /// The first input's axes rearranged.
    Shuffled(&'a DimShuffle),
    Dot,
    /// The first input's axes but those an integer indexes.
    Indexed(&'a [IndexSlot]),
}

/// How a driver runs a body node.
enum BodyStep<'a> {
    /// As a kernel whose outputs are shaped by the rule.
    Kernel(ShapeRule<'a>),
    /// As the driver's own `if` over the branches (`Module::lower_ifelse`).
    Choice(&'a IfElse),
    /// As a driver of its own, invoked (`Module::lower_nested_scan`).
    Nested(&'a Scan),
}

/// How the driver runs `op`, when it can: a kernel whose output shape follows from its
/// inputs' (so intermediates have extents) and which alone computes what the reference
/// does (no product repair, no error for an empty axis), a choice or a nested scan
/// (native when their graphs are: `native_graph`).
fn body_step<'a>(op: &'a Op, in_types: &[&TensorType]) -> Option<BodyStep<'a>> {
    let axes_non_empty = |axes: &[usize]| {
        axes.iter().all(|a| {
            in_types
                .iter()
                .any(|t| t.shape.get(*a).copied().flatten().is_some_and(|n| n > 0))
        })
    };
    let along_axis =
        |axis: Option<usize>| axis.is_some() || in_types.first().is_some_and(|t| t.ndim() == 1);
    let reduction_ok = |kind: ReduceKind, axes: &[usize]| match kind {
        ReduceKind::Sum | ReduceKind::All | ReduceKind::Any => true,
        ReduceKind::Max | ReduceKind::Min | ReduceKind::LogSumExp => axes_non_empty(axes),
        ReduceKind::Prod => false,
    };
    let reduced = |kind: ReduceKind, axes: &[usize], keep: bool| {
        reduction_ok(kind, axes).then(|| ShapeRule::Reduced {
            axes: axes.to_vec(),
            keep,
        })
    };
    let rule = match op {
        Op::Elemwise(_) | Op::Composite(_) => Some(ShapeRule::Common),
        Op::Dot => Some(ShapeRule::Dot),
        // A DimShuffle, a view elsewhere, is a copy in a body (`dimshuffle_copy_kernel`).
        Op::DimShuffle(ds) => Some(ShapeRule::Shuffled(ds)),
        Op::Reduce { kind, axes } => reduced(*kind, axes, false),
        Op::FusedReduce {
            kind, axes, keep, ..
        } => reduced(*kind, axes, *keep),
        // Copies in a body (`basic_take_kernel`, `basic_update_kernel`).
        Op::Subtensor(slots) => {
            integers_and_full_slices(slots).then_some(ShapeRule::Indexed(slots))
        }
        Op::IncSubtensor { slots, .. } => {
            integers_and_full_slices(slots).then_some(ShapeRule::First)
        }
        // A check's kernel reads the conditions; its output is x (`Module::lower_check`).
        Op::CheckAndRaise { .. } | Op::Softmax { .. } => Some(ShapeRule::First),
        // Along an axis or of a vector (no flattening). The reference fails on an empty
        // axis: an arg-reduction's must be known not to be.
        Op::ArgReduce { axis, .. } => {
            let axes = [axis.unwrap_or(0)];
            (along_axis(*axis) && axes_non_empty(&axes)).then(|| ShapeRule::Reduced {
                axes: axes.to_vec(),
                keep: false,
            })
        }
        Op::Cumulative { axis, .. } => along_axis(*axis).then_some(ShapeRule::First),
        Op::Scan(inner) => return Some(BodyStep::Nested(inner)),
        Op::IfElse(ie) => return Some(BodyStep::Choice(ie)),
        Op::Alloc
        | Op::Reshape { .. }
        | Op::SpecifyShape(_)
        | Op::Shape
        | Op::MakeVector(_)
        | Op::Arange(_)
        | Op::Join { .. }
        | Op::Split { .. }
        | Op::AdvancedSubtensor(_)
        | Op::AdvancedIncSubtensor { .. }
        | Op::OpFromGraph(_)
        | Op::Linalg(_)
        | Op::Blockwise(_)
        | Op::Random(_)
        | Op::Sparse(_)
        | Op::Custom(_)
        | Op::Grad(_) => None,
    };
    rule.map(BodyStep::Kernel)
}

/// `out = x` rearranged by `ds` (dimensions reordered, size-1 ones dropped or inserted):
/// in a body, where views cannot be invoked, a DimShuffle is this copy.
fn dimshuffle_copy_kernel(ds: &DimShuffle, x: &TensorType, out: &TensorType) -> Kernel {
    let index: Vec<Index> = (0..x.ndim())
        .map(|d| match ds.new_order.iter().position(|o| *o == Some(d)) {
            Some(p) => Index::Var(p),
            None => Index::Zero,
        })
        .collect();
    let all: Vec<Index> = (0..out.ndim()).map(Index::Var).collect();
    let store = Stmt::Store {
        buf: 1,
        index: all,
        value: Expr::Load { buf: 0, index },
    };
    let mut body = vec![store];
    for d in (0..out.ndim()).rev() {
        body = vec![Stmt::For {
            var: d,
            buf: 1,
            dim: d,
            parallel: false,
            body,
        }];
    }
    let buffer = |name: &str, ty: &TensorType, role| Buffer {
        name: name.into(),
        dtype: ty.dtype,
        rank: ty.ndim(),
        role,
    };
    Kernel {
        name: "dimshuffle".into(),
        buffers: vec![
            buffer("x", x, Role::Input),
            buffer("out", out, Role::Output),
        ],
        body,
        errors: Vec::new(),
    }
    .with_shape_checks()
}

/// The extents of the outputs of a body node of shape rule `rule`, from its inputs'.
fn output_extents(
    rule: &ShapeRule,
    ins: &[(&TensorType, &[Extent])],
    out_types: &[&TensorType],
) -> Option<Vec<Vec<Extent>>> {
    // The common shape of element-wise inputs: per dimension, an input not broadcast along
    // it (runtime sizes of such inputs agree: the kernel checks them), else 1.
    let common = |rank: usize| -> Vec<Extent> {
        (0..rank)
            .map(|d| {
                ins.iter()
                    .find(|(t, _)| t.shape.get(d).copied() != Some(Some(1)))
                    .and_then(|(_, e)| e.get(d).copied())
                    .unwrap_or(Extent::Fixed(1))
            })
            .collect()
    };
    let full = common(ins.first().map_or(0, |(t, _)| t.ndim()));
    let reduced = |axes: &[usize]| -> Vec<Extent> {
        (0..full.len())
            .filter(|d| !axes.contains(d))
            .map(|d| full[d])
            .collect()
    };
    let first = ins.first().map(|(_, e)| *e);
    let mut extents = match rule {
        ShapeRule::Common => vec![full.clone(); out_types.len()],
        ShapeRule::Reduced { axes, keep } => {
            let mut v = vec![reduced(axes)];
            if *keep {
                v.push(full.clone());
            }
            v
        }
        ShapeRule::First => vec![first?.to_vec()],
        ShapeRule::Shuffled(ds) => {
            let x = first?;
            vec![ds
                .new_order
                .iter()
                .map(|d| {
                    d.and_then(|d| x.get(d).copied())
                        .unwrap_or(Extent::Fixed(1))
                })
                .collect()]
        }
        ShapeRule::Dot => {
            let (a, b) = (first?, ins.get(1)?.1);
            let mut e = a[..a.len().saturating_sub(1)].to_vec();
            e.extend(b.get(1..).unwrap_or(&[]));
            vec![e]
        }
        ShapeRule::Indexed(slots) => {
            let x = first?;
            let kept = (0..x.len()).filter(|a| slots.get(*a) != Some(&IndexSlot::Index));
            vec![kept.map(|a| x[a]).collect()]
        }
    };
    // A size the output's type knows is used as it is.
    for (e, ty) in extents.iter_mut().zip(out_types) {
        if e.len() != ty.ndim() {
            return None;
        }
        for (x, s) in e.iter_mut().zip(&ty.shape) {
            if let Some(n) = s {
                *x = Extent::Fixed(*n);
            }
        }
    }
    Some(extents)
}

/// The native form of `scan` applied to inputs of `in_types`, or `None` when its body
/// has a node the driver cannot run (the scan then loops in Rust over its body's plan).
pub fn lower_scan(scan: &Scan, in_types: &[&TensorType]) -> Option<ScanKernels> {
    lower(scan, in_types, false)
}

/// `lower_scan`, for a driver called from Rust (`invoked` false: the caller computes the
/// step count and checks the initial blocks) or invoked by the driver of an enclosing
/// scan (which passes every node input, the bound included: the driver computes and
/// checks its step count itself, `step_count_stmts`).
fn lower(scan: &Scan, in_types: &[&TensorType], invoked: bool) -> Option<ScanKernels> {
    let body: &FunctionGraph = scan.body.graph();
    if !native_graph(body) {
        return None;
    }
    if let Some(scalar) = lower_scalar_scan(scan, in_types, invoked) {
        return Some(scalar);
    }
    let mut b = Builder {
        scan,
        buffers: Vec::new(),
        errors: vec!["no memory for a trace".into()],
        rings: Vec::new(),
        counter: 0,
        steps: 0,
    };
    let int_scalar = TensorType::new(DType::Int64, vec![]);
    let (steps, bound, node_inputs) =
        driver_inputs(scan, in_types, invoked, &mut |n, t, r| b.add(n, t, r));
    let seq_buf = |s: usize| node_inputs[s];
    let init_buf = |k: usize| node_inputs[scan.n_sequences() + k];
    let ns_buf = |j: usize| node_inputs[scan.n_sequences() + scan.n_states() + j];
    // Body variables: where they live and their extents.
    let mut place: HashMap<VarId, Place> = HashMap::new();
    let mut extents: HashMap<VarId, Vec<Extent>> = HashMap::new();
    let mut body_in = body.inputs().iter();
    for (s, taps) in scan.sequence_taps.iter().enumerate() {
        let ty = in_types[scan.first_sequence() + s];
        for tap in taps {
            let v = *body_in.next()?;
            place.insert(
                v,
                Place::Sequence {
                    buf: seq_buf(s),
                    tap: *tap,
                    first: taps[0],
                },
            );
            extents.insert(
                v,
                (1..ty.ndim())
                    .map(|d| Extent::Of {
                        buf: seq_buf(s),
                        dim: d,
                    })
                    .collect(),
            );
        }
    }
    let mut state_types = Vec::new();
    for (k, taps) in scan.state_taps.iter().enumerate() {
        let init = in_types[scan.first_state() + k];
        let shift = has_initial_block(taps) as usize;
        let ty = scan.state_type(k, init);
        let state_extents: Vec<Extent> = (0..ty.ndim())
            .map(|d| Extent::Of {
                buf: init_buf(k),
                dim: d + shift,
            })
            .collect();
        for tap in taps {
            let v = *body_in.next()?;
            place.insert(v, Place::State { k, tap: *tap });
            extents.insert(v, state_extents.clone());
        }
        state_types.push((ty, state_extents));
    }
    for j in 0..scan.n_non_sequences {
        let v = *body_in.next()?;
        let ty = in_types[scan.first_non_sequence() + j];
        place.insert(v, Place::Whole(ns_buf(j)));
        extents.insert(
            v,
            (0..ty.ndim())
                .map(|d| Extent::Of {
                    buf: ns_buf(j),
                    dim: d,
                })
                .collect(),
        );
    }
    // The body's constants (and its branches'), as inputs after the node's.
    let mut constants = Vec::new();
    let mut found = Vec::new();
    body_constants(body, &mut found);
    let mut const_bufs: HashMap<(GraphKey, VarId), usize> = HashMap::new();
    for (g, x, d) in found {
        let ty = TensorType::new(
            d.dtype(),
            d.shape().iter().map(|n| Some(*n)).collect::<Vec<_>>(),
        );
        let buf = b.add(format!("c{}", constants.len()), &ty, Role::Input);
        const_bufs.insert((g, x), buf);
        if g == graph_key(body) {
            place.insert(x, Place::Whole(buf));
            extents.insert(x, d.shape().iter().map(|n| Extent::Fixed(*n)).collect());
        }
        constants.push(d);
    }
    // Nested scans, each an invoked driver: their constants as inputs after the body's.
    let mut found = Vec::new();
    nested_scans(body, &mut found)?;
    let mut nested = HashMap::new();
    for (g, n, lowered) in found {
        let mut bufs = Vec::new();
        for d in lowered.constants {
            let ty = TensorType::new(
                d.dtype(),
                d.shape().iter().map(|n| Some(*n)).collect::<Vec<_>>(),
            );
            bufs.push(b.add(format!("c{}", constants.len()), &ty, Role::Input));
            constants.push(d);
        }
        nested.insert((g, n), (lowered.kernels, bufs));
    }
    // Outputs: per state, its last value and (when kept) its trace.
    let mut outs = Vec::new();
    for (k, (ty, _)) in state_types.iter().enumerate() {
        let last = b.add(format!("last{k}"), ty, Role::Output);
        let trace = scan.keep_trace[k].then(|| {
            let mut shape = vec![None];
            shape.extend(ty.shape.iter().copied());
            let role = if scan.until {
                Role::Growing
            } else {
                Role::Output
            };
            b.add(format!("trace{k}"), &TensorType::new(ty.dtype, shape), role)
        });
        outs.push((last, trace));
    }
    // Locals: the step count when invoked, the counter, the stop flag, the rings, then
    // the intermediates.
    b.steps = match steps {
        Some(steps) => steps,
        None => b.add("steps".into(), &int_scalar, Role::Local(vec![])),
    };
    b.counter = b.add("t".into(), &int_scalar, Role::Local(vec![]));
    let done = scan.until.then(|| {
        b.add(
            "done".into(),
            &TensorType::new(DType::Bool, vec![]),
            Role::Local(vec![]),
        )
    });
    for (k, (ty, state_extents)) in state_types.iter().enumerate() {
        let depth = scan.depth(k);
        let mut ring_extents = vec![Extent::Fixed(depth + 1)];
        ring_extents.extend(state_extents.iter().copied());
        let mut shape = vec![Some(depth + 1)];
        shape.extend(ty.shape.iter().copied());
        let ring = b.add(
            format!("ring{k}"),
            &TensorType::new(ty.dtype, shape),
            Role::Local(ring_extents),
        );
        let phase = b.add(format!("phase{k}"), &int_scalar, Role::Local(vec![]));
        b.rings.push((ring, depth, phase));
    }
    // The module: body kernels, then copies, then the driver.
    // Which state each body output writes, claimed by the kernel computing it.
    let mut claims: HashMap<VarId, usize> = HashMap::new();
    for (k, o) in body.outputs().iter().take(scan.n_states()).enumerate() {
        let computed = matches!(body.var(*o).origin, Origin::Node { .. });
        if computed && !claims.contains_key(o) {
            claims.insert(*o, k);
        }
    }
    let mut m = Module {
        kernels: Vec::new(),
        driver: Kernel {
            name: driver_name(invoked),
            buffers: Vec::new(),
            body: Vec::new(),
            errors: Vec::new(),
        },
        next_temp: 0,
        const_bufs,
        nested,
    };
    let mut step_body = m.lower_nodes(&mut b, body, "v", &mut place, &mut extents, &claims)?;
    // One copy kernel per state: new values not written by a kernel, traces, last values.
    let copies: Vec<usize> = state_types
        .iter()
        .map(|(ty, _)| {
            let mut copy = reshape_copy_kernel(ty).with_shape_checks();
            copy.name = "copy".into();
            m.add(copy)
        })
        .collect();
    let mut invoke_copy =
        |b: &mut Builder, k: usize, from: View, to: View| m.call(b, copies[k], vec![from, to]);
    for (k, o) in body.outputs().iter().take(scan.n_states()).enumerate() {
        if claims.get(o) == Some(&k) {
            continue;
        }
        let from = b.view(place.get(o)?);
        let to = b.ring_view(k, 0);
        let s = invoke_copy(&mut b, k, from, to);
        step_body.extend(s);
    }
    for (k, (_, trace)) in outs.iter().enumerate() {
        if let Some(trace) = trace {
            if scan.until {
                step_body.push(Stmt::Grow {
                    buf: *trace,
                    rows: Builder::int_op(ScalarOp::Add, b.t(), Expr::int(1)),
                    error: 0,
                });
            }
            let from = b.ring_view(k, 0);
            let to = View::at(*trace, vec![b.t()]);
            let s = invoke_copy(&mut b, k, from, to);
            step_body.extend(s);
        }
    }
    if let (Some(done), Some(cond)) = (done, body.outputs().get(scan.n_states())) {
        let cond_view = b.view(place.get(cond)?);
        if !cond_view.at.is_empty() {
            return None;
        }
        let cond_ty = &body.var(*cond).ty;
        let truth = Expr::apply(
            ScalarOp::Neq,
            vec![
                Expr::Load {
                    buf: cond_view.buf,
                    index: vec![],
                },
                Expr::Const(Literal::Int(0), cond_ty.dtype),
            ],
            DType::Bool,
        );
        step_body.push(Stmt::Store {
            buf: done,
            index: vec![],
            value: truth,
        });
    }
    step_body.extend(b.advance_phases());
    step_body.push(Stmt::Store {
        buf: b.counter,
        index: vec![],
        value: Builder::int_op(ScalarOp::Add, b.t(), Expr::int(1)),
    });
    // Before the loop: the step count (when invoked), the counters (an invoked driver's
    // locals are not zeroed between calls), the initial rows into their ring slots.
    let mut prologue = Vec::new();
    if invoked {
        let seqs: Vec<usize> = (0..scan.n_sequences()).map(seq_buf).collect();
        let inits: Vec<usize> = (0..scan.n_states()).map(init_buf).collect();
        let bound = bound.map(|buf| (buf, in_types[0].dtype));
        prologue.extend(step_count_stmts(
            scan,
            bound,
            &seqs,
            &inits,
            b.steps,
            &mut b.errors,
        ));
    }
    let zero = |buf: usize, dtype: DType| Stmt::Store {
        buf,
        index: vec![],
        value: Expr::Const(Literal::Int(0), dtype),
    };
    prologue.push(zero(b.counter, DType::Int64));
    if let Some(done) = done {
        prologue.push(zero(done, DType::Bool));
    }
    for (_, _, phase) in &b.rings {
        prologue.push(zero(*phase, DType::Int64));
    }
    for (k, taps) in scan.state_taps.iter().enumerate() {
        let depth = scan.depth(k) as i64;
        let (ring, _, _) = b.rings[k];
        if has_initial_block(taps) {
            for r in 0..depth {
                let s = invoke_copy(
                    &mut b,
                    k,
                    View::at(init_buf(k), vec![Expr::int(r)]),
                    View::at(ring, vec![Expr::int(r)]),
                );
                prologue.extend(s);
            }
        } else {
            let s = invoke_copy(
                &mut b,
                k,
                View::whole(init_buf(k)),
                View::at(ring, vec![Expr::int(0)]),
            );
            prologue.extend(s);
        }
    }
    // After it: the last values (slot of step n − 1, the initial value's for n = 0).
    let mut epilogue = Vec::new();
    for (k, (last, _)) in outs.iter().enumerate() {
        // State after step t − 1: tap −1 of step t.
        let from = b.ring_view(k, -1);
        let s = invoke_copy(&mut b, k, from, View::whole(*last));
        epilogue.extend(s);
    }
    let mut cond = Builder::int_op(
        ScalarOp::Lt,
        b.t(),
        Expr::Load {
            buf: b.steps,
            index: vec![],
        },
    );
    if let Expr::Apply { dtype, .. } = &mut cond {
        *dtype = DType::Bool;
    }
    if let Some(done) = done {
        let not_done = Expr::apply(
            ScalarOp::Not,
            vec![Expr::Load {
                buf: done,
                index: vec![],
            }],
            DType::Bool,
        );
        cond = Expr::apply(ScalarOp::And, vec![cond, not_done], DType::Bool);
    }
    let Module {
        mut kernels,
        mut driver,
        ..
    } = m;
    driver.buffers = b.buffers.clone();
    driver.errors = b.errors.clone();
    driver.body = prologue;
    driver.body.push(Stmt::While {
        cond,
        body: step_body,
    });
    driver.body.extend(epilogue);
    kernels.push(driver.with_shape_checks());
    Some(ScanKernels { kernels, constants })
}

/// The driver's module as it is built: the kernels it calls and the driver itself.
struct Module {
    kernels: Vec<Kernel>,
    driver: Kernel,
    /// Temporaries of the scalar kernels inlined into the driver.
    next_temp: usize,
    /// The driver's input buffer of each constant of the body and of its branches.
    const_bufs: HashMap<(GraphKey, VarId), usize>,
    /// Each nested scan's module (its driver last) and the driver's input buffers of its
    /// constants, by graph and node.
    nested: HashMap<(GraphKey, NodeId), (Vec<Kernel>, Vec<usize>)>,
}

impl Module {
    fn add(&mut self, kernel: Kernel) -> usize {
        self.kernels.push(kernel);
        self.kernels.len() - 1
    }

    /// Statements running kernel `k` of the module on `views`: inlined into the driver
    /// when it is scalar, else invoked.
    fn call(&mut self, b: &mut Builder, k: usize, views: Vec<View>) -> Vec<Stmt> {
        self.driver.buffers = b.buffers.clone();
        self.driver.errors = b.errors.clone();
        let callee = &self.kernels[k];
        let stmts = inline_scalar(&mut self.driver, &mut self.next_temp, callee, &views)
            .unwrap_or_else(|| vec![self.driver.invoke_views(k, callee, views)]);
        b.errors = self.driver.errors.clone();
        stmts
    }

    /// Statements computing the nodes of `g` (the body, or an IfElse branch in it) in
    /// order, each a kernel on views of where its inputs and outputs live (`place`), an
    /// IfElse the driver's own `if` (`lower_ifelse`). Outputs in `claims` are written
    /// into their state's slot; every other value gets a local buffer of its extents
    /// (named `prefix` and its variable).
    fn lower_nodes(
        &mut self,
        b: &mut Builder,
        g: &FunctionGraph,
        prefix: &str,
        place: &mut HashMap<VarId, Place>,
        extents: &mut HashMap<VarId, Vec<Extent>>,
        claims: &HashMap<VarId, usize>,
    ) -> Option<Vec<Stmt>> {
        let mut stmts = Vec::new();
        for n in g.toposort() {
            let e = g.node(n)?;
            if let Op::IfElse(ie) = &e.op {
                let choice = Choice {
                    ifelse: ie,
                    inputs: &e.inputs,
                    outputs: &e.outputs,
                };
                stmts.extend(self.lower_ifelse(b, g, prefix, &choice, place, extents, claims)?);
                continue;
            }
            if let Op::CheckAndRaise { .. } = &e.op {
                stmts.extend(self.lower_check(b, g, prefix, n, place, extents, claims)?);
                continue;
            }
            if let Op::Scan(inner) = &e.op {
                let key = (graph_key(g), n);
                let node = (key, &**inner, e.inputs.as_slice(), e.outputs.as_slice());
                let s = self.lower_nested_scan(b, g, prefix, node, place, extents, claims)?;
                stmts.extend(s);
                continue;
            }
            // Views elsewhere are copies here; every other node is its kernel.
            let ty = |v: &VarId| &g.var(*v).ty;
            let in_types: Vec<&TensorType> = e.inputs.iter().map(ty).collect();
            let out_type = ty(e.outputs.first()?);
            let kernel = if let Op::DimShuffle(ds) = &e.op {
                dimshuffle_copy_kernel(ds, in_types[0], out_type)
            } else if let Op::Subtensor(slots) = &e.op {
                basic_take_kernel(slots, in_types[0], &in_types[1..], out_type)?
            } else if let Op::IncSubtensor { slots, mode } = &e.op {
                let (x, y) = (in_types[0], *in_types.get(1)?);
                basic_update_kernel(slots, *mode, x, y, &in_types[2..])?
            } else {
                lower_node(g, n)?
            };
            if kernel.buffers.len() != e.inputs.len() + e.outputs.len() {
                return None;
            }
            let ins: Vec<(&TensorType, &[Extent])> = e
                .inputs
                .iter()
                .map(|x| Some((&g.var(*x).ty, extents.get(x)?.as_slice())))
                .collect::<Option<_>>()?;
            let out_types: Vec<&TensorType> = e.outputs.iter().map(|o| &g.var(*o).ty).collect();
            let Some(BodyStep::Kernel(rule)) = body_step(&e.op, &in_types) else {
                return None;
            };
            let out_extents = output_extents(&rule, &ins, &out_types)?;
            place_outputs(
                b,
                g,
                prefix,
                &e.outputs,
                out_extents,
                place,
                extents,
                claims,
            );
            let views: Vec<View> = e
                .inputs
                .iter()
                .chain(&e.outputs)
                .map(|v| place.get(v).map(|p| b.view(p)))
                .collect::<Option<_>>()?;
            let k = self.add(kernel);
            stmts.extend(self.call(b, k, views));
        }
        Some(stmts)
    }

    /// The driver's `if` for IfElse `choice` of `g`: each branch's nodes lowered on the
    /// places of the choice's inputs, its results copied to where the choice's outputs
    /// live; only the taken branch's statements run. `None` when the branches would give
    /// an output different extents (one buffer could not hold both).
    #[allow(clippy::too_many_arguments)]
    fn lower_ifelse(
        &mut self,
        b: &mut Builder,
        g: &FunctionGraph,
        prefix: &str,
        choice: &Choice,
        place: &mut HashMap<VarId, Place>,
        extents: &mut HashMap<VarId, Vec<Extent>>,
        claims: &HashMap<VarId, usize>,
    ) -> Option<Vec<Stmt>> {
        let (cond, values) = choice.inputs.split_first()?;
        // The condition's element: its indices (a ring slot, a sequence row) as checked
        // temporaries.
        let cond_view = b.view(place.get(cond)?);
        let mut stmts = Vec::new();
        let mut index = Vec::new();
        for at in cond_view.at {
            let temp = self.next_temp;
            self.next_temp += 1;
            stmts.push(Stmt::Let {
                temp,
                dtype: DType::Int64,
                value: at,
            });
            index.push(Index::Temp(temp));
        }
        let truth = Expr::apply(
            ScalarOp::Neq,
            vec![
                Expr::Load {
                    buf: cond_view.buf,
                    index,
                },
                Expr::Const(Literal::Int(0), g.var(*cond).ty.dtype),
            ],
            DType::Bool,
        );
        let mut arms = Vec::new();
        for (arm, branch) in [
            ("t", &choice.ifelse.then_branch),
            ("e", &choice.ifelse.else_branch),
        ] {
            let bg = branch.graph();
            let mut bplace: HashMap<VarId, Place> = HashMap::new();
            let mut bextents: HashMap<VarId, Vec<Extent>> = HashMap::new();
            for (i, v) in bg.inputs().iter().zip(values) {
                bplace.insert(*i, place.get(v)?.clone());
                bextents.insert(*i, extents.get(v)?.clone());
            }
            for ((key, x), buf) in &self.const_bufs {
                if *key == graph_key(bg) {
                    let Origin::Constant(d) = &bg.var(*x).origin else {
                        return None;
                    };
                    bplace.insert(*x, Place::Whole(*buf));
                    bextents.insert(*x, d.shape().iter().map(|n| Extent::Fixed(*n)).collect());
                }
            }
            let inner_prefix = format!("{prefix}{}{arm}", b.buffers.len());
            let stmts = self.lower_nodes(
                b,
                bg,
                &inner_prefix,
                &mut bplace,
                &mut bextents,
                &HashMap::new(),
            )?;
            let results: Vec<(Place, Vec<Extent>)> = bg
                .outputs()
                .iter()
                .map(|o| Some((bplace.get(o)?.clone(), bextents.get(o)?.clone())))
                .collect::<Option<_>>()?;
            arms.push((stmts, results));
        }
        let [(mut then_stmts, then_results), (mut else_stmts, else_results)] =
            <[_; 2]>::try_from(arms).ok()?;
        let mut out_extents = Vec::new();
        for ((o, (_, a)), (_, e)) in choice.outputs.iter().zip(&then_results).zip(&else_results) {
            if a != e || a.len() != g.var(*o).ty.ndim() {
                return None;
            }
            let known = a.iter().zip(&g.var(*o).ty.shape);
            out_extents.push(known.map(|(x, s)| s.map_or(*x, Extent::Fixed)).collect());
        }
        place_outputs(
            b,
            g,
            prefix,
            choice.outputs,
            out_extents,
            place,
            extents,
            claims,
        );
        for (j, o) in choice.outputs.iter().enumerate() {
            let mut copy = reshape_copy_kernel(&g.var(*o).ty).with_shape_checks();
            copy.name = "copy".into();
            let k = self.add(copy);
            let to = b.view(place.get(o)?);
            let from = b.view(&then_results[j].0);
            then_stmts.extend(self.call(b, k, vec![from, to.clone()]));
            let from = b.view(&else_results[j].0);
            else_stmts.extend(self.call(b, k, vec![from, to]));
        }
        stmts.push(Stmt::If {
            cond: truth,
            then: then_stmts,
            otherwise: else_stmts,
        });
        Some(stmts)
    }
}

impl Module {
    /// A check (node `n` of `g`): its kernel on the places of its inputs; its output is
    /// x itself (same place), or a copy of x when it is a state's new value (claimed).
    #[allow(clippy::too_many_arguments)]
    fn lower_check(
        &mut self,
        b: &mut Builder,
        g: &FunctionGraph,
        prefix: &str,
        n: NodeId,
        place: &mut HashMap<VarId, Place>,
        extents: &mut HashMap<VarId, Vec<Extent>>,
        claims: &HashMap<VarId, usize>,
    ) -> Option<Vec<Stmt>> {
        let e = g.node(n)?;
        let kernel = lower_node(g, n)?;
        if kernel.buffers.len() != e.inputs.len() {
            return None;
        }
        let views: Vec<View> = e
            .inputs
            .iter()
            .map(|v| place.get(v).map(|p| b.view(p)))
            .collect::<Option<_>>()?;
        let k = self.add(kernel);
        let mut stmts = self.call(b, k, views);
        let (x, out) = (*e.inputs.first()?, *e.outputs.first()?);
        let x_extents = extents.get(&x)?.clone();
        if claims.contains_key(&out) {
            place_outputs(
                b,
                g,
                prefix,
                &[out],
                vec![x_extents],
                place,
                extents,
                claims,
            );
            let mut copy = reshape_copy_kernel(&g.var(out).ty).with_shape_checks();
            copy.name = "copy".into();
            let k = self.add(copy);
            let views = vec![b.view(place.get(&x)?), b.view(place.get(&out)?)];
            stmts.extend(self.call(b, k, views));
        } else {
            place.insert(out, place.get(&x)?.clone());
            extents.insert(out, x_extents);
        }
        Some(stmts)
    }

    /// The invoke of nested scan `node` (key, op, inputs, outputs) of `g`: its module
    /// appended to this one (callee indices shifted), its driver invoked on the places of
    /// the node's inputs, its constants' buffers, its outputs (placed like any node's)
    /// and fresh locals of this driver for its own (extents restated in this driver's
    /// terms). `None` when a kept trace's length is not in its type (no extent holds it).
    #[allow(clippy::too_many_arguments)]
    fn lower_nested_scan(
        &mut self,
        b: &mut Builder,
        g: &FunctionGraph,
        prefix: &str,
        node: ((GraphKey, NodeId), &Scan, &[VarId], &[VarId]),
        place: &mut HashMap<VarId, Place>,
        extents: &mut HashMap<VarId, Vec<Extent>>,
        claims: &HashMap<VarId, usize>,
    ) -> Option<Vec<Stmt>> {
        let (key, inner, inputs, outputs) = node;
        let (kernels, const_bufs) = self.nested.get(&key)?.clone();
        let offset = self.kernels.len();
        for mut k in kernels {
            shift_callees(&mut k.body, offset);
            self.kernels.push(k);
        }
        let driver = self.kernels.len() - 1;
        let params = self.kernels[driver].buffers.clone();
        // The outputs the driver writes: per state its last value, then its trace when kept.
        let mut written = Vec::new();
        let mut written_extents = Vec::new();
        for k in 0..inner.n_states() {
            let init = inputs[inner.first_state() + k];
            let shift = has_initial_block(&inner.state_taps[k]) as usize;
            let state: Vec<Extent> = extents.get(&init)?.get(shift..)?.to_vec();
            if inner.keep_trace[k] {
                let trace = *outputs.get(2 * k + 1)?;
                let rows = g.var(trace).ty.shape.first().copied().flatten()?;
                let mut e = vec![Extent::Fixed(rows)];
                e.extend(state.iter().copied());
                written.push(*outputs.get(2 * k)?);
                written_extents.push(state);
                written.push(trace);
                written_extents.push(e);
            } else {
                written.push(*outputs.get(2 * k)?);
                written_extents.push(state);
            }
        }
        place_outputs(
            b,
            g,
            prefix,
            &written,
            written_extents,
            place,
            extents,
            claims,
        );
        // The driver's parameters in order: the node's inputs, its constants, its
        // outputs, its locals (the step count among them).
        let mut views = Vec::with_capacity(params.len());
        let mut param_extents: Vec<Option<Vec<Extent>>> = Vec::with_capacity(params.len());
        let mut sources = inputs.iter().map(|x| (place.get(x), extents.get(x)));
        let mut consts = const_bufs.iter();
        let mut outs = written.iter();
        for (i, p) in params.iter().enumerate() {
            let (view, ext) = match (&p.role, i) {
                (Role::Input, _) => match sources.next() {
                    Some((p, e)) => (b.view(p?), Some(e?.clone())),
                    None => (View::whole(*consts.next()?), None),
                },
                (Role::Output, _) => (b.view(place.get(outs.next()?)?), None),
                (Role::Local(inner_extents), _) => {
                    let restated: Vec<Extent> = inner_extents
                        .iter()
                        .map(|x| match x {
                            Extent::Fixed(n) => Some(Extent::Fixed(*n)),
                            Extent::Of { buf, dim } => {
                                param_extents.get(*buf)?.as_ref()?.get(*dim).copied()
                            }
                        })
                        .collect::<Option<_>>()?;
                    let ty = TensorType::new(p.dtype, vec![None; p.rank]);
                    let name = format!("{prefix}{}{}", b.buffers.len(), p.name);
                    let buf = b.add(name, &ty, Role::Local(restated));
                    (View::whole(buf), None)
                }
                (Role::Growing, _) => return None,
            };
            views.push(view);
            param_extents.push(ext);
        }
        Some(self.call(b, driver, views))
    }
}

/// Adds `by` to the callee of every `invoke` in `body` (a module appended after `by`
/// kernels).
fn shift_callees(body: &mut [Stmt], by: usize) {
    for s in body {
        match s {
            Stmt::Invoke { callee, .. } => *callee += by,
            Stmt::For { body, .. } | Stmt::While { body, .. } => shift_callees(body, by),
            Stmt::If {
                then, otherwise, ..
            } => {
                shift_callees(then, by);
                shift_callees(otherwise, by);
            }
            Stmt::Let { .. }
            | Stmt::Reg { .. }
            | Stmt::Set { .. }
            | Stmt::Store { .. }
            | Stmt::Accumulate { .. }
            | Stmt::Fill { .. }
            | Stmt::Fail { .. }
            | Stmt::Call { .. }
            | Stmt::Grow { .. } => {}
        }
    }
}

/// The nested scans of `g` and of its IfElses' branches, each lowered as an invoked
/// driver; `None` when one cannot be.
fn nested_scans(g: &FunctionGraph, out: &mut Vec<(GraphKey, NodeId, ScanKernels)>) -> Option<()> {
    for n in g.toposort() {
        let e = g.node(n)?;
        if let Op::Scan(inner) = &e.op {
            let types: Vec<&TensorType> = e.inputs.iter().map(|x| &g.var(*x).ty).collect();
            out.push((graph_key(g), n, lower(inner, &types, true)?));
        } else if let Op::IfElse(ie) = &e.op {
            nested_scans(ie.then_branch.graph(), out)?;
            nested_scans(ie.else_branch.graph(), out)?;
        }
    }
    Some(())
}

/// A driver's kernel name (its errors' prefix): an invoked one says it is nested.
fn driver_name(invoked: bool) -> String {
    if invoked {
        "inner_scan_driver"
    } else {
        "scan_driver"
    }
    .into()
}

/// The driver's input buffers for its step count and the node's inputs, through `add`:
/// called from Rust, `steps` is an input its caller computes and the bound is left out;
/// invoked, the bound is an input (returned apart) and `steps` is not made here (a local,
/// added after the outputs, which `step_count_stmts` fills). Returns `steps`, the
/// bound's buffer, and the sequences', initial states' and non-sequences' in order.
fn driver_inputs(
    scan: &Scan,
    in_types: &[&TensorType],
    invoked: bool,
    add: &mut dyn FnMut(String, &TensorType, Role) -> usize,
) -> (Option<usize>, Option<usize>, Vec<usize>) {
    let int_scalar = TensorType::new(DType::Int64, vec![]);
    let steps = (!invoked).then(|| add("steps".into(), &int_scalar, Role::Input));
    let bound = (invoked && scan.bounded).then(|| add("bound".into(), in_types[0], Role::Input));
    let node_inputs = in_types
        .iter()
        .enumerate()
        .skip(scan.first_sequence())
        .map(|(i, ty)| add(input_name(scan, i), ty, Role::Input))
        .collect();
    (steps, bound, node_inputs)
}

/// An invoked driver's step count, computed and checked as `step_count` does in Rust:
/// the bound (`(buffer, dtype)`) non-negative, each sequence long enough for its taps'
/// span and agreeing with the bound and the sequences before it, a while-scan with
/// neither unbounded; stored in `steps`; then each initial block of `depth` rows. Error
/// messages are pushed to `errors`.
fn step_count_stmts(
    scan: &Scan,
    bound: Option<(usize, DType)>,
    seqs: &[usize],
    inits: &[usize],
    steps: usize,
    errors: &mut Vec<String>,
) -> Vec<Stmt> {
    let load = |buf: usize| Expr::Load { buf, index: vec![] };
    let int_op = |op: ScalarOp, a: Expr, b: Expr| Expr::apply(op, vec![a, b], DType::Int64);
    let test = |op: ScalarOp, a: Expr, b: Expr| Expr::apply(op, vec![a, b], DType::Bool);
    let mut fail_if = |out: &mut Vec<Stmt>, cond: Expr, message: String, values: Vec<Expr>| {
        errors.push(message);
        out.push(Stmt::If {
            cond,
            then: vec![Stmt::Fail {
                error: errors.len() - 1,
                values,
            }],
            otherwise: Vec::new(),
        });
    };
    let store = |value: Expr| Stmt::Store {
        buf: steps,
        index: vec![],
        value,
    };
    let mut out = Vec::new();
    // What set the count so far: the bound, or sequence s (and its length's expression).
    let mut set_by: Option<Option<usize>> = None;
    if let Some((buf, dtype)) = bound {
        let v = match dtype {
            DType::Int64 => load(buf),
            _ => Expr::apply(ScalarOp::Cast(DType::Int64), vec![load(buf)], DType::Int64),
        };
        out.push(store(v));
        fail_if(
            &mut out,
            test(ScalarOp::Lt, load(steps), Expr::int(0)),
            "the step count is {0}; it must be non-negative".into(),
            vec![load(steps)],
        );
        set_by = Some(None);
    }
    let len = |s: usize| Expr::Dim {
        buf: seqs[s],
        dim: 0,
    };
    for (s, taps) in scan.sequence_taps.iter().enumerate() {
        let span = taps[taps.len() - 1] - taps[0];
        fail_if(
            &mut out,
            test(ScalarOp::Lt, len(s), Expr::int(span)),
            format!("sequence {s} has {{0}} elements, fewer than its taps {taps:?} span"),
            vec![len(s)],
        );
        let n = int_op(ScalarOp::Sub, len(s), Expr::int(span));
        match set_by {
            None => {
                out.push(store(n));
                set_by = Some(Some(s));
            }
            Some(by) => {
                let this = format!("sequence {s} ({{1}} elements, taps {taps:?}) gives {{2}}");
                let (what, mut values) = match by {
                    None => ("the step count".to_string(), vec![load(steps)]),
                    Some(r) => (
                        format!(
                            "sequence {r} ({{3}} elements, taps {:?})",
                            scan.sequence_taps[r]
                        ),
                        vec![load(steps)],
                    ),
                };
                values.extend([len(s), n.clone()]);
                if let Some(r) = by {
                    values.push(len(r));
                }
                fail_if(
                    &mut out,
                    test(ScalarOp::Neq, load(steps), n),
                    format!("{what} gives {{0}} steps, but {this}"),
                    values,
                );
            }
        }
    }
    if set_by.is_none() {
        out.push(store(Expr::int(i64::MAX)));
    }
    for (k, taps) in scan.state_taps.iter().enumerate() {
        if has_initial_block(taps) {
            let depth = scan.depth(k) as i64;
            let rows = Expr::Dim {
                buf: inits[k],
                dim: 0,
            };
            fail_if(
                &mut out,
                test(ScalarOp::Neq, rows.clone(), Expr::int(depth)),
                format!(
                    "state {k}'s initial block has {{0}} rows, but its taps {taps:?} need {depth}"
                ),
                vec![rows],
            );
        }
    }
    out
}

/// An IfElse node of a body or branch: its op, inputs (condition first) and outputs.
struct Choice<'a> {
    ifelse: &'a tensorlift_ir::ops::IfElse,
    inputs: &'a [VarId],
    outputs: &'a [VarId],
}

/// Places for `outputs` of a node of `g` with `out_extents`: a state's slot when claimed,
/// else a local buffer of those extents.
#[allow(clippy::too_many_arguments)]
fn place_outputs(
    b: &mut Builder,
    g: &FunctionGraph,
    prefix: &str,
    outputs: &[VarId],
    out_extents: Vec<Vec<Extent>>,
    place: &mut HashMap<VarId, Place>,
    extents: &mut HashMap<VarId, Vec<Extent>>,
    claims: &HashMap<VarId, usize>,
) {
    for (o, ext) in outputs.iter().zip(out_extents) {
        let p = match claims.get(o) {
            Some(k) => Place::State { k: *k, tap: 0 },
            None => {
                let ty = g.var(*o).ty.clone();
                let buf = b.add(format!("{prefix}{}", o.0), &ty, Role::Local(ext.clone()));
                Place::Whole(buf)
            }
        };
        place.insert(*o, p);
        extents.insert(*o, ext);
    }
}

/// A scan of scalars only (every state and body value 0-d; states float64, int64 or bool)
/// as one driver kernel with no callee: states live in registers across iterations (the
/// `depth` latest values of each), the body's operations are inlined as expressions,
/// sequence elements and trace rows are read and written through checked indices. The
/// loop then runs at the speed of its arithmetic.
fn lower_scalar_scan(scan: &Scan, in_types: &[&TensorType], invoked: bool) -> Option<ScanKernels> {
    let body: &FunctionGraph = scan.body.graph();
    let order = body.toposort();
    let all_scalar = order.iter().all(|n| {
        body.node(*n).is_some_and(|e| {
            e.inputs
                .iter()
                .chain(&e.outputs)
                .all(|v| body.var(*v).ty.ndim() == 0)
        })
    }) && body
        .inputs()
        .iter()
        .chain(body.outputs())
        .all(|v| body.var(*v).ty.ndim() == 0);
    let states_fit = (0..scan.n_states()).all(|k| {
        let ty = scan.state_type(k, in_types[scan.first_state() + k]);
        matches!(ty.dtype, DType::Float64 | DType::Int64 | DType::Bool)
    });
    if !all_scalar || !states_fit {
        return None;
    }
    let mut buffers = Vec::new();
    let mut add = |name: String, ty: &TensorType, role: Role| {
        buffers.push(Buffer {
            name,
            dtype: ty.dtype,
            rank: ty.ndim(),
            role,
        });
        buffers.len() - 1
    };
    let (steps_buf, bound, node_inputs) = driver_inputs(scan, in_types, invoked, &mut add);
    let int_scalar = TensorType::new(DType::Int64, vec![]);
    let mut constants: Vec<TensorData> = Vec::new();
    let mut constant_bufs: HashMap<VarId, usize> = HashMap::new();
    let mut found = Vec::new();
    body_constants(body, &mut found);
    for (_, x, d) in found.into_iter().filter(|(g, _, _)| *g == graph_key(body)) {
        let buf = add(
            format!("c{}", constants.len()),
            &body.var(x).ty,
            Role::Input,
        );
        constant_bufs.insert(x, buf);
        constants.push(d);
    }
    let mut outs = Vec::new();
    for k in 0..scan.n_states() {
        let ty = scan.state_type(k, in_types[scan.first_state() + k]);
        let last = add(format!("last{k}"), &ty, Role::Output);
        let trace = scan.keep_trace[k].then(|| {
            let role = if scan.until {
                Role::Growing
            } else {
                Role::Output
            };
            add(
                format!("trace{k}"),
                &TensorType::new(ty.dtype, vec![None]),
                role,
            )
        });
        outs.push((last, trace, ty.dtype));
    }
    let steps_buf = match steps_buf {
        Some(steps) => steps,
        None => add("steps".into(), &int_scalar, Role::Local(vec![])),
    };
    let mut driver = Kernel {
        name: driver_name(invoked),
        buffers,
        body: Vec::new(),
        errors: vec!["no memory for a trace".into()],
    };
    let index_error = driver.errors.len();
    driver
        .errors
        .push("scan: an index {0} is out of range for a dimension of size {1}".into());
    let next_temp = std::cell::Cell::new(0usize);
    let mut next_reg = 0usize;
    let temp = || {
        let t = next_temp.get();
        next_temp.set(t + 1);
        t
    };
    let load = |buf: usize| Expr::Load { buf, index: vec![] };
    // `buf[i]` for an int64 expression i, checked first.
    let checked = |i: Expr, buf: usize, out: &mut Vec<Stmt>, t: usize| {
        out.push(Stmt::Let {
            temp: t,
            dtype: DType::Int64,
            value: i,
        });
        let size = Expr::Dim { buf, dim: 0 };
        let below = Expr::apply(ScalarOp::Lt, vec![Expr::Temp(t), Expr::int(0)], DType::Bool);
        let above = Expr::apply(ScalarOp::Ge, vec![Expr::Temp(t), size.clone()], DType::Bool);
        out.push(Stmt::If {
            cond: Expr::apply(ScalarOp::Or, vec![below, above], DType::Bool),
            then: vec![Stmt::Fail {
                error: index_error,
                values: vec![Expr::Temp(t), size],
            }],
            otherwise: Vec::new(),
        });
        vec![Index::Temp(t)]
    };
    let mut prologue = Vec::new();
    if invoked {
        let seqs: Vec<usize> = node_inputs[..scan.n_sequences()].to_vec();
        let inits: Vec<usize> = node_inputs
            [scan.n_sequences()..scan.first_non_sequence() - scan.first_sequence()]
            .to_vec();
        let bound = bound.map(|buf| (buf, in_types[0].dtype));
        prologue.extend(step_count_stmts(
            scan,
            bound,
            &seqs,
            &inits,
            steps_buf,
            &mut driver.errors,
        ));
    }
    let t_reg = next_reg;
    next_reg += 1;
    prologue.push(Stmt::Reg {
        reg: t_reg,
        dtype: DType::Int64,
        init: Expr::int(0),
    });
    let done_reg = scan.until.then(|| {
        next_reg += 1;
        next_reg - 1
    });
    if let Some(r) = done_reg {
        prologue.push(Stmt::Reg {
            reg: r,
            dtype: DType::Bool,
            init: Expr::Const(Literal::Bool(false), DType::Bool),
        });
    }
    // Per state: registers of its `depth` latest values, oldest first.
    let mut state_regs: Vec<Vec<Reg>> = Vec::new();
    for (k, taps) in scan.state_taps.iter().enumerate() {
        let depth = scan.depth(k);
        let init = node_inputs[scan.n_sequences() + k];
        let dtype = outs[k].2;
        let mut regs = Vec::with_capacity(depth);
        for j in 0..depth {
            let value = if has_initial_block(taps) {
                let t = temp();
                let index = checked(Expr::int(j as i64), init, &mut prologue, t);
                Expr::Load { buf: init, index }
            } else {
                load(init)
            };
            prologue.push(Stmt::Reg {
                reg: next_reg,
                dtype,
                init: value,
            });
            regs.push(next_reg);
            next_reg += 1;
        }
        state_regs.push(regs);
    }
    // The step: every body value as an expression.
    let mut step = Vec::new();
    let mut value: HashMap<VarId, Expr> = HashMap::new();
    let t = || Expr::Reg(t_reg);
    let mut body_in = body.inputs().iter();
    for (s, taps) in scan.sequence_taps.iter().enumerate() {
        let seq = node_inputs[s];
        for tap in taps {
            let v = *body_in.next()?;
            let row = if scan.reverse {
                let last = Expr::apply(
                    ScalarOp::Sub,
                    vec![load(steps_buf), Expr::int(1)],
                    DType::Int64,
                );
                Expr::apply(ScalarOp::Sub, vec![last, t()], DType::Int64)
            } else {
                t()
            };
            let at = Expr::apply(
                ScalarOp::Add,
                vec![row, Expr::int(tap - taps[0])],
                DType::Int64,
            );
            let (ti, tv) = (temp(), temp());
            let index = checked(at, seq, &mut step, ti);
            step.push(Stmt::Let {
                temp: tv,
                dtype: body.var(v).ty.dtype,
                value: Expr::Load { buf: seq, index },
            });
            value.insert(v, Expr::Temp(tv));
        }
    }
    for (k, taps) in scan.state_taps.iter().enumerate() {
        let depth = scan.depth(k) as i64;
        for tap in taps {
            let v = *body_in.next()?;
            value.insert(v, Expr::Reg(state_regs[k][(depth + tap) as usize]));
        }
    }
    for j in 0..scan.n_non_sequences {
        let v = *body_in.next()?;
        value.insert(
            v,
            load(node_inputs[scan.n_sequences() + scan.n_states() + j]),
        );
    }
    for (x, buf) in &constant_bufs {
        value.insert(*x, load(*buf));
    }
    for n in &order {
        let e = body.node(*n)?;
        let kernel = lower_node(body, *n)?;
        if kernel.buffers.len() != e.inputs.len() + e.outputs.len() {
            return None;
        }
        let args: Vec<Expr> = e
            .inputs
            .iter()
            .map(|x| value.get(x).cloned())
            .collect::<Option<_>>()?;
        let error_base = driver.errors.len();
        driver.errors.extend(
            kernel
                .errors
                .iter()
                .map(|m| format!("{}: {m}", kernel.name)),
        );
        let mut most = 0;
        crate::loopir::visit_stmts(&kernel.body, &mut |s| {
            if let Stmt::Let { temp, .. } = s {
                most = most.max(*temp + 1);
            }
        });
        let base = next_temp.get();
        next_temp.set(base + most);
        let mut results: HashMap<usize, Temp> = HashMap::new();
        let out_dtype = |j: usize| body.var(e.outputs[j]).ty.dtype;
        let inlined = inline_values(
            &kernel.body,
            &args,
            base,
            error_base,
            e.inputs.len(),
            &mut || temp(),
            &mut results,
            &out_dtype,
        )?;
        step.extend(inlined);
        for (j, o) in e.outputs.iter().enumerate() {
            value.insert(*o, Expr::Temp(*results.get(&j)?));
        }
    }
    // New states captured before the registers shift; traces; the stop flag.
    let mut new_values = Vec::new();
    for (k, o) in body.outputs().iter().take(scan.n_states()).enumerate() {
        let tv = temp();
        step.push(Stmt::Let {
            temp: tv,
            dtype: outs[k].2,
            value: value.get(o)?.clone(),
        });
        new_values.push(tv);
        if let Some(trace) = outs[k].1 {
            if scan.until {
                step.push(Stmt::Grow {
                    buf: trace,
                    rows: Expr::apply(ScalarOp::Add, vec![t(), Expr::int(1)], DType::Int64),
                    error: 0,
                });
            }
            let ti = temp();
            let index = checked(t(), trace, &mut step, ti);
            step.push(Stmt::Store {
                buf: trace,
                index,
                value: Expr::Temp(tv),
            });
        }
    }
    if let (Some(done), Some(cond)) = (done_reg, body.outputs().get(scan.n_states())) {
        let c = value.get(cond)?.clone();
        let zero = Expr::Const(Literal::Int(0), body.var(*cond).ty.dtype);
        step.push(Stmt::Set {
            reg: done,
            value: Expr::apply(ScalarOp::Neq, vec![c, zero], DType::Bool),
        });
    }
    for (k, regs) in state_regs.iter().enumerate() {
        for j in 0..regs.len() - 1 {
            step.push(Stmt::Set {
                reg: regs[j],
                value: Expr::Reg(regs[j + 1]),
            });
        }
        step.push(Stmt::Set {
            reg: regs[regs.len() - 1],
            value: Expr::Temp(new_values[k]),
        });
    }
    step.push(Stmt::Set {
        reg: t_reg,
        value: Expr::apply(ScalarOp::Add, vec![t(), Expr::int(1)], DType::Int64),
    });
    let mut cond = Expr::apply(ScalarOp::Lt, vec![t(), load(steps_buf)], DType::Bool);
    if let Some(done) = done_reg {
        let not_done = Expr::apply(ScalarOp::Not, vec![Expr::Reg(done)], DType::Bool);
        cond = Expr::apply(ScalarOp::And, vec![cond, not_done], DType::Bool);
    }
    driver.body = prologue;
    driver.body.push(Stmt::While { cond, body: step });
    for (k, (last, _, _)) in outs.iter().enumerate() {
        let regs = &state_regs[k];
        driver.body.push(Stmt::Store {
            buf: *last,
            index: vec![],
            value: Expr::Reg(regs[regs.len() - 1]),
        });
    }
    Some(ScanKernels {
        kernels: vec![driver.with_shape_checks()],
        constants,
    })
}

/// The statements of a scalar kernel's `body` with its input loads replaced by `args`,
/// its output stores by new temporaries (recorded in `results` by output index), its
/// temporaries shifted by `base` and its errors by `error_base`; `None` for statements a
/// value substitution cannot express.
#[allow(clippy::too_many_arguments)]
fn inline_values(
    body: &[Stmt],
    args: &[Expr],
    base: usize,
    error_base: usize,
    n_inputs: usize,
    fresh: &mut dyn FnMut() -> Temp,
    results: &mut HashMap<usize, Temp>,
    out_dtype: &dyn Fn(usize) -> DType,
) -> Option<Vec<Stmt>> {
    fn expr(e: &Expr, args: &[Expr], base: usize) -> Option<Expr> {
        Some(match e {
            Expr::Load { buf, .. } => args.get(*buf)?.clone(),
            Expr::Temp(t) => Expr::Temp(t + base),
            Expr::Apply { op, args: a, dtype } => Expr::Apply {
                op: *op,
                args: a
                    .iter()
                    .map(|x| expr(x, args, base))
                    .collect::<Option<_>>()?,
                dtype: *dtype,
            },
            Expr::Const(..) | Expr::Reg(_) => e.clone(),
            Expr::Dim { .. } | Expr::Var(_) => return None,
        })
    }
    let mut out = Vec::new();
    for s in body {
        out.push(match s {
            Stmt::Let { temp, dtype, value } => Stmt::Let {
                temp: temp + base,
                dtype: *dtype,
                value: expr(value, args, base)?,
            },
            Stmt::Store { buf, value, .. } => {
                let j = buf.checked_sub(n_inputs)?;
                let t = fresh();
                results.insert(j, t);
                Stmt::Let {
                    temp: t,
                    dtype: out_dtype(j),
                    value: expr(value, args, base)?,
                }
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => Stmt::If {
                cond: expr(cond, args, base)?,
                then: inline_values(
                    then, args, base, error_base, n_inputs, fresh, results, out_dtype,
                )?,
                otherwise: inline_values(
                    otherwise, args, base, error_base, n_inputs, fresh, results, out_dtype,
                )?,
            },
            Stmt::Fail { error, values } => Stmt::Fail {
                error: error + error_base,
                values: values
                    .iter()
                    .map(|v| expr(v, args, base))
                    .collect::<Option<_>>()?,
            },
            Stmt::For { .. }
            | Stmt::Reg { .. }
            | Stmt::Set { .. }
            | Stmt::Accumulate { .. }
            | Stmt::Fill { .. }
            | Stmt::While { .. }
            | Stmt::Call { .. }
            | Stmt::Grow { .. }
            | Stmt::Invoke { .. } => return None,
        });
    }
    Some(out)
}

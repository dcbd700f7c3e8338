//! The closed set of graph ops (`Op`) and the entry point of type inference.
//!
//! Owns: the `Op` enum and its printing, and `Op::infer`, which dispatches to the type
//! inference of each op family (one submodule per family). Every backend and transform
//! matches over `Op` exhaustively, so adding a variant makes the compiler list every place
//! that must learn about it. Must not: compute values.

pub mod blockwise;
pub mod composite;
pub mod custom;
pub mod graph;
pub mod ifelse;
pub mod indexing;
pub mod linalg;
pub mod random;
pub mod reduce;
pub mod scalar;
pub mod scan;
pub mod shape;
pub mod sparse;

use std::fmt;
use std::sync::Arc;

use crate::data::TensorData;
use crate::error::{GraphError, Result};
use crate::types::{elemwise_shape, TensorType};

pub use blockwise::{Blockwise, Signature};
pub use composite::{Composite, ScalarNode, ScalarRef};
pub use custom::{CustomOp, CustomRef};
pub use graph::{GradOp, InnerGraph, OpFromGraph};
pub use ifelse::IfElse;
pub use indexing::{AdvancedSlot, IncMode, IndexSlot};
pub use linalg::LinalgOp;
pub use random::{Distribution, RandomOp};
pub use reduce::{ArgKind, CumKind, ReduceKind};
pub use scalar::{Arity, ScalarOp};
pub use scan::Scan;
pub use shape::DimShuffle;
pub use sparse::SparseOp;

/// A graph operation. Ops are values: two nodes with equal ops and equal inputs compute the
/// same thing.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A scalar op applied element by element; inputs have equal ndim and broadcast only
    /// along dimensions of static size 1.
    Elemwise(ScalarOp),
    /// A fused Elemwise: the composite applied per element, one output per composite
    /// output (made by the fusion rewrite).
    Composite(Arc<Composite>),
    /// A reduction of the single output of `body` applied per element: reads the inputs
    /// once (made by the fusion rewrite). With `keep`, the per-element values are a second
    /// output (for when they are also used elsewhere, as softmax's exponentials).
    FusedReduce {
        kind: ReduceKind,
        axes: Vec<usize>,
        body: Arc<Composite>,
        keep: bool,
    },
    /// Transpose, add broadcastable dimensions, drop broadcastable dimensions.
    DimShuffle(DimShuffle),
    /// Reduction over the (sorted, distinct) `axes`; the reduced dimensions are removed.
    Reduce { kind: ReduceKind, axes: Vec<usize> },
    /// Index of the maximum/minimum along `axis`, or of the flattened input when `None`.
    ArgReduce { kind: ArgKind, axis: Option<usize> },
    /// Running sum/product along `axis`, or of the flattened input when `None`.
    Cumulative { kind: CumKind, axis: Option<usize> },
    /// exp(x − max) / Σ exp(x − max) along `axis` (max and sum over that axis): the input's
    /// shape, in the float dtype `exp` would give.
    Softmax { axis: usize },
    /// `Alloc(value, s0, s1, ...)`: the value broadcast into the shape given by scalar inputs.
    Alloc,
    /// `Reshape(x, shape)`: `shape` is an integer vector of static length `ndim` holding at
    /// most one -1.
    Reshape { ndim: usize },
    /// Asserts the given static sizes (checked at run time) and refines the type.
    SpecifyShape(Vec<Option<usize>>),
    /// The shape of the input as an int64 vector.
    Shape,
    /// A vector from scalars, all cast to `dtype` by the builder.
    MakeVector(crate::dtype::DType),
    /// `Arange(start, stop, step)` of `dtype`.
    Arange(crate::dtype::DType),
    /// Concatenation along `axis`.
    Join { axis: usize },
    /// `Split(x, sizes)` into `n` pieces along `axis`.
    Split { axis: usize, n: usize },
    /// Basic indexing with integers and slices; index values are scalar inputs after `x`.
    Subtensor(Vec<IndexSlot>),
    /// `x` with the basically-indexed region set to / incremented by `y`.
    IncSubtensor {
        slots: Vec<IndexSlot>,
        mode: IncMode,
    },
    /// Indexing with integer arrays and boolean masks (NumPy advanced indexing).
    AdvancedSubtensor(Vec<AdvancedSlot>),
    /// `x` with the advanced-indexed elements set to / incremented by `y`.
    AdvancedIncSubtensor {
        slots: Vec<AdvancedSlot>,
        mode: IncMode,
    },
    /// NumPy `dot` of 1-d and 2-d operands.
    Dot,
    /// A dense linear-algebra core op on matrices (the runtime's `faer` calls).
    Linalg(LinalgOp),
    /// A core op applied over leading batch dimensions (a generalized ufunc).
    Blockwise(Arc<Blockwise>),
    /// Draws from a distribution: `(rng, size, params...) -> (next rng, draws)`.
    Random(RandomOp),
    /// A user-defined op (`CustomOp`).
    Custom(CustomRef),
    /// An op on sparse CSR matrices (the only ops, with custom ones, that read them).
    Sparse(SparseOp),
    /// `CheckAndRaise(x, c0, c1, ...)`: x, after checking every condition is all true;
    /// otherwise the call fails with `message`.
    CheckAndRaise { message: String },
    /// A graph applied as one op to the node's inputs (its outputs are the node's).
    OpFromGraph(Arc<OpFromGraph>),
    /// A loop over an inner graph (`scan`): per state, its last value and its trace.
    Scan(Arc<Scan>),
    /// A lazy choice (`ifelse`): input 0 the condition, the rest the values the branches
    /// read; only the taken branch runs.
    IfElse(Arc<IfElse>),
    /// A gradient taken by the compile pipeline after its cost graph is rewritten (`grad`).
    Grad(Arc<GradOp>),
}

/// What type inference knows about one input: its type and, for constants, its value.
#[derive(Clone, Copy, Debug)]
pub struct InputInfo<'a> {
    pub ty: &'a TensorType,
    pub constant: Option<&'a TensorData>,
}

impl InputInfo<'_> {
    /// The value of an integer scalar constant.
    pub fn const_int(&self) -> Option<i64> {
        let c = self.constant?;
        if c.ndim() != 0 {
            return None;
        }
        c.to_i64_vec().and_then(|v| v.first().copied())
    }

    /// The values of an integer vector constant.
    pub fn const_ints(&self) -> Option<Vec<i64>> {
        self.constant.and_then(|c| c.to_i64_vec())
    }
}

impl Op {
    /// The types of the outputs for inputs of the given types, or an error naming this op,
    /// the offending input and what was expected.
    pub fn infer(&self, inputs: &[InputInfo]) -> Result<Vec<TensorType>> {
        let name = self.to_string();
        let one = |t: TensorType| Ok(vec![t]);
        // Ops holding graphs pass values to ops of those graphs, which check them.
        let reads_sparse = matches!(
            self,
            Op::Sparse(_) | Op::Custom(_) | Op::Grad(_) | Op::OpFromGraph(_) | Op::IfElse(_)
        );
        if let Some((i, x)) = inputs
            .iter()
            .enumerate()
            .find(|(_, x)| x.ty.is_sparse() && !reads_sparse)
        {
            return Err(GraphError::op(
                &name,
                format!(
                    "input {i} is a sparse matrix ({}); this op reads dense tensors only: \
                     convert it with dense_from_sparse, or use the sparse ops (dot, sp_sum, mul)",
                    x.ty
                ),
            ));
        }
        match self {
            Op::Elemwise(scalar) => {
                let dtypes: Vec<_> = inputs.iter().map(|i| i.ty.dtype).collect();
                let (_, out_dtype) = scalar
                    .signature(&dtypes)
                    .map_err(|m| GraphError::op(&name, m))?;
                let shapes: Vec<&[Option<usize>]> =
                    inputs.iter().map(|i| i.ty.shape.as_slice()).collect();
                one(TensorType::new(out_dtype, elemwise_shape(&name, &shapes)?))
            }
            Op::Composite(c) => composite_types(&name, c, inputs),
            Op::FusedReduce {
                kind,
                axes,
                body,
                keep,
            } => {
                let elem = composite_types(&name, body, inputs)?;
                let [elem] = elem.as_slice() else {
                    return Err(GraphError::op(
                        &name,
                        "the fused body must have exactly one output",
                    ));
                };
                let info = [InputInfo {
                    ty: elem,
                    constant: None,
                }];
                let reduced = reduce::infer_reduce(&name, *kind, axes, &info)?;
                Ok(if *keep {
                    vec![reduced, elem.clone()]
                } else {
                    vec![reduced]
                })
            }
            Op::DimShuffle(ds) => one(ds.infer(&name, inputs)?),
            Op::Reduce { kind, axes } => one(reduce::infer_reduce(&name, *kind, axes, inputs)?),
            Op::ArgReduce { axis, .. } => one(reduce::infer_arg(&name, *axis, inputs)?),
            Op::Cumulative { kind, axis } => {
                one(reduce::infer_cumulative(&name, *kind, *axis, inputs)?)
            }
            Op::Softmax { axis } => one(reduce::infer_softmax(&name, *axis, inputs)?),
            Op::Alloc => one(shape::infer_alloc(&name, inputs)?),
            Op::Reshape { ndim } => one(shape::infer_reshape(&name, *ndim, inputs)?),
            Op::SpecifyShape(spec) => one(shape::infer_specify_shape(&name, spec, inputs)?),
            Op::Shape => one(shape::infer_shape(&name, inputs)?),
            Op::MakeVector(dtype) => one(shape::infer_make_vector(&name, *dtype, inputs)?),
            Op::Arange(dtype) => one(shape::infer_arange(&name, *dtype, inputs)?),
            Op::Join { axis } => one(shape::infer_join(&name, *axis, inputs)?),
            Op::Split { axis, n } => shape::infer_split(&name, *axis, *n, inputs),
            Op::Subtensor(slots) => one(indexing::infer_subtensor(&name, slots, inputs)?),
            Op::IncSubtensor { slots, .. } => {
                one(indexing::infer_inc_subtensor(&name, slots, inputs)?)
            }
            Op::AdvancedSubtensor(slots) => {
                one(indexing::infer_advanced_subtensor(&name, slots, inputs)?)
            }
            Op::AdvancedIncSubtensor { slots, .. } => one(indexing::infer_advanced_inc_subtensor(
                &name, slots, inputs,
            )?),
            Op::Dot => one(linalg::infer_dot(&name, inputs)?),
            Op::Linalg(l) => l.infer(&name, inputs),
            Op::Blockwise(bw) => bw.infer(&name, inputs),
            Op::Random(r) => r.infer(&name, inputs),
            Op::Sparse(s) => s.infer(&name, inputs),
            Op::Custom(c) => {
                let types: Vec<TensorType> = inputs.iter().map(|i| i.ty.clone()).collect();
                c.0.infer(&types).map_err(|m| GraphError::op(&name, m))
            }
            Op::CheckAndRaise { .. } => one(infer_check_and_raise(&name, inputs)?),
            Op::OpFromGraph(g) => g.infer(&name, inputs),
            Op::Scan(scan) => scan.infer(&name, inputs),
            Op::IfElse(ifelse) => ifelse.infer(&name, inputs),
            Op::Grad(g) => g.infer(&name, inputs),
        }
    }

    /// The graphs this op holds (each closed: it reads only its own inputs).
    pub fn inner_graphs(&self) -> Vec<&InnerGraph> {
        match self {
            Op::OpFromGraph(g) => vec![&g.graph],
            Op::Scan(scan) => vec![&scan.body],
            Op::IfElse(ifelse) => vec![&ifelse.then_branch, &ifelse.else_branch],
            Op::Grad(g) => vec![&g.cost],
            Op::Blockwise(bw) => bw.core.inner_graphs(),
            Op::Elemwise(_)
            | Op::Composite(_)
            | Op::FusedReduce { .. }
            | Op::DimShuffle(_)
            | Op::Reduce { .. }
            | Op::ArgReduce { .. }
            | Op::Cumulative { .. }
            | Op::Softmax { .. }
            | Op::Alloc
            | Op::Reshape { .. }
            | Op::SpecifyShape(_)
            | Op::Shape
            | Op::MakeVector(_)
            | Op::Arange(_)
            | Op::Join { .. }
            | Op::Split { .. }
            | Op::Subtensor(_)
            | Op::IncSubtensor { .. }
            | Op::AdvancedSubtensor(_)
            | Op::AdvancedIncSubtensor { .. }
            | Op::Dot
            | Op::Linalg(_)
            | Op::Random(_)
            | Op::Sparse(_)
            | Op::Custom(_)
            | Op::CheckAndRaise { .. } => Vec::new(),
        }
    }

    /// The op with its inner graphs replaced by `graphs` (in `inner_graphs` order), e.g.
    /// after rewriting them; `None` when the count differs.
    pub fn with_inner_graphs(&self, mut graphs: Vec<InnerGraph>) -> Option<Op> {
        if graphs.len() != self.inner_graphs().len() {
            return None;
        }
        Some(match self {
            Op::OpFromGraph(g) => {
                let mut op = (**g).clone();
                op.graph = graphs.pop()?;
                Op::OpFromGraph(Arc::new(op))
            }
            Op::Scan(scan) => {
                let mut op = (**scan).clone();
                op.body = graphs.pop()?;
                Op::Scan(Arc::new(op))
            }
            Op::IfElse(ifelse) => {
                let mut op = (**ifelse).clone();
                op.else_branch = graphs.pop()?;
                op.then_branch = graphs.pop()?;
                Op::IfElse(Arc::new(op))
            }
            Op::Grad(g) => {
                let mut op = (**g).clone();
                op.cost = graphs.pop()?;
                Op::Grad(Arc::new(op))
            }
            Op::Blockwise(bw) => {
                let mut op = (**bw).clone();
                op.core = bw.core.with_inner_graphs(graphs)?;
                Op::Blockwise(Arc::new(op))
            }
            Op::Elemwise(_)
            | Op::Composite(_)
            | Op::FusedReduce { .. }
            | Op::DimShuffle(_)
            | Op::Reduce { .. }
            | Op::ArgReduce { .. }
            | Op::Cumulative { .. }
            | Op::Softmax { .. }
            | Op::Alloc
            | Op::Reshape { .. }
            | Op::SpecifyShape(_)
            | Op::Shape
            | Op::MakeVector(_)
            | Op::Arange(_)
            | Op::Join { .. }
            | Op::Split { .. }
            | Op::Subtensor(_)
            | Op::IncSubtensor { .. }
            | Op::AdvancedSubtensor(_)
            | Op::AdvancedIncSubtensor { .. }
            | Op::Dot
            | Op::Linalg(_)
            | Op::Random(_)
            | Op::Sparse(_)
            | Op::Custom(_)
            | Op::CheckAndRaise { .. } => self.clone(),
        })
    }
}

/// Output types of a composite applied element by element to `inputs`.
fn composite_types(name: &str, c: &Composite, inputs: &[InputInfo]) -> Result<Vec<TensorType>> {
    if inputs.len() != c.inputs.len() {
        return Err(GraphError::op(
            name,
            format!("takes {} inputs, got {}", c.inputs.len(), inputs.len()),
        ));
    }
    for (k, (x, d)) in inputs.iter().zip(&c.inputs).enumerate() {
        if x.ty.dtype != *d {
            return Err(GraphError::op(
                name,
                format!("input {k} must be {d}, got {}", x.ty),
            ));
        }
    }
    let shapes: Vec<&[Option<usize>]> = inputs.iter().map(|i| i.ty.shape.as_slice()).collect();
    let shape = elemwise_shape(name, &shapes)?;
    Ok(c.output_dtypes()
        .into_iter()
        .map(|d| TensorType::new(d, shape.clone()))
        .collect())
}

fn infer_check_and_raise(name: &str, inputs: &[InputInfo]) -> Result<TensorType> {
    let Some(x) = inputs.first() else {
        return Err(GraphError::op(name, "needs the checked value as input 0"));
    };
    for (i, cond) in inputs.iter().enumerate().skip(1) {
        if cond.ty.dtype != crate::dtype::DType::Bool {
            return Err(GraphError::op(
                name,
                format!("condition (input {i}) must be bool, got {}", cond.ty),
            ));
        }
    }
    Ok(x.ty.clone())
}

fn join_usizes(v: &[usize]) -> String {
    v.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Elemwise(s) => write!(f, "{s}"),
            Op::Composite(c) => write!(f, "{c}"),
            Op::FusedReduce {
                kind,
                axes,
                body,
                keep,
            } => {
                write!(f, "{kind:?}{{axes=[{}]}} of {body}", join_usizes(axes))?;
                if *keep {
                    f.write_str(" keeping values")?;
                }
                Ok(())
            }
            Op::DimShuffle(ds) => write!(f, "{ds}"),
            Op::Reduce { kind, axes } => write!(f, "{kind:?}{{axes=[{}]}}", join_usizes(axes)),
            Op::ArgReduce { kind, axis } => match axis {
                Some(a) => write!(f, "{kind:?}{{axis={a}}}"),
                None => write!(f, "{kind:?}{{axis=None}}"),
            },
            Op::Cumulative { kind, axis } => match axis {
                Some(a) => write!(f, "{kind:?}{{axis={a}}}"),
                None => write!(f, "{kind:?}{{axis=None}}"),
            },
            Op::Softmax { axis } => write!(f, "Softmax{{axis={axis}}}"),
            Op::Alloc => f.write_str("Alloc"),
            Op::Reshape { ndim } => write!(f, "Reshape{{{ndim}}}"),
            Op::SpecifyShape(spec) => {
                write!(f, "SpecifyShape{{{}}}", crate::types::format_shape(spec))
            }
            Op::Shape => f.write_str("Shape"),
            Op::MakeVector(d) => write!(f, "MakeVector{{{d}}}"),
            Op::Arange(d) => write!(f, "ARange{{{d}}}"),
            Op::Join { axis } => write!(f, "Join{{axis={axis}}}"),
            Op::Split { axis, n } => write!(f, "Split{{axis={axis}, n={n}}}"),
            Op::Subtensor(slots) => write!(f, "Subtensor{{{}}}", indexing::format_slots(slots)),
            Op::IncSubtensor { slots, mode } => {
                write!(f, "{mode:?}Subtensor{{{}}}", indexing::format_slots(slots))
            }
            Op::AdvancedSubtensor(slots) => write!(
                f,
                "AdvancedSubtensor{{{}}}",
                indexing::format_advanced_slots(slots)
            ),
            Op::AdvancedIncSubtensor { slots, mode } => write!(
                f,
                "Advanced{mode:?}Subtensor{{{}}}",
                indexing::format_advanced_slots(slots)
            ),
            Op::Dot => f.write_str("Dot"),
            Op::Linalg(l) => write!(f, "{l}"),
            Op::Random(r) => write!(f, "{r}"),
            Op::Sparse(s) => write!(f, "{s}"),
            Op::Custom(c) => write!(f, "{c}"),
            Op::Blockwise(bw) => write!(f, "Blockwise{{{}, {}}}", bw.core, bw.signature),
            Op::CheckAndRaise { message } => write!(f, "CheckAndRaise{{{message:?}}}"),
            Op::OpFromGraph(g) => {
                let kept = if g.inline { "" } else { ", kept" };
                write!(f, "OpFromGraph{{{}{kept}}}", g.name)
            }
            Op::Grad(g) => write!(f, "Grad{{wrt={}}}", g.n_wrt),
            Op::Scan(scan) => {
                write!(
                    f,
                    "Scan{{sequences={:?}, states={:?}, non_sequences={}",
                    scan.sequence_taps, scan.state_taps, scan.n_non_sequences
                )?;
                if scan.until {
                    f.write_str(", until")?;
                }
                if scan.reverse {
                    f.write_str(", reverse")?;
                }
                for (k, kept) in scan.keep_trace.iter().enumerate() {
                    if !kept {
                        write!(f, ", no trace {k}")?;
                    }
                }
                f.write_str("}")
            }
            Op::IfElse(_) => f.write_str("IfElse"),
        }
    }
}

//! Output shapes of kernel calls: which of the runtime's output-shape rules
//! (`tensorlift_runtime::output_shape`, the ones the interpreter shapes its results by)
//! each kernel node follows (`ShapeRule`), and the iteration space of a call (`space`),
//! with the reference's errors.

use super::*;
use tensorlift_runtime::output_shape;

/// How a kernel node's output shape follows from its inputs' shapes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ShapeRule {
    /// Element-wise and reductions: the inputs' common shape (`broadcast_shape`), reduced
    /// by `output_shape::reduce`.
    Broadcast,
    /// `Dot`: `output_shape::dot` (the contracted sizes are checked again by the kernel).
    Dot,
    /// An advanced index, gathered or scattered into: the call takes its own path
    /// (`indexing::run_take`, `indexing::run_scatter`), which resolves the index with the
    /// reference's rules and errors first.
    Advanced,
    /// A running sum or product (`output_shape::cumulative`); never split (each element
    /// needs the one before it).
    Cumulative { axis: Option<usize> },
    /// An arg-reduction along `axis` or of the flattened input
    /// (`output_shape::arg_reduce`); never split.
    Arg { axis: Option<usize> },
    /// A concatenation along `axis` (`output_shape::join`); never split.
    Join { axis: usize },
    /// `Alloc(value, sizes…)` (`output_shape::alloc`).
    Alloc,
    /// `Arange(start, stop, step)` (`output_shape::arange`).
    Arange(DType),
    /// A row-wise op along `axis` (softmax): the input's shape; never split along the
    /// axis (a row is computed whole).
    Rows { axis: usize },
    /// A vector of the given length (Shape: x's rank; MakeVector: the item count).
    Vector(usize),
    /// `Reshape`: x's own shape for the row-major copy of x a non-contiguous reshape
    /// makes first; the call takes its own path (`run_reshape`).
    Reshape,
    /// Checks only (SpecifyShape, CheckAndRaise): the call passes input 0 on
    /// (`run_checks`), not this module's spaces.
    Forward,
    /// A write into a basic-indexed region of x (IncSubtensor): x's shape; the call
    /// takes its own path (`indexing::run_region_write`), not this module's spaces.
    Region,
}

/// The iteration space of a kernel call: the broadcast shape of the inputs, the reduced
/// axes (empty for element-wise kernels; a row-wise op's axis, which is not split) and
/// the output shape.
pub(super) struct Space {
    pub(super) full: Shape,
    pub(super) reduced: Shape,
    pub(super) out: Shape,
}

impl Space {
    /// The space of a call with no reduction: its output's shape throughout (`out` is
    /// left empty: `output_shape` gives `full`).
    pub(super) fn whole(full: impl Into<Shape>) -> Space {
        Space {
            full: full.into(),
            reduced: Shape::new(),
            out: Shape::new(),
        }
    }

    /// The shape of an output: the whole iteration space, or the reduced one.
    pub(super) fn output_shape(&self, full: bool) -> &[usize] {
        if full || self.reduced.is_empty() {
            &self.full
        } else {
            &self.out
        }
    }
}

/// The iteration space of a kernel node by the runtime's output-shape rules, with their
/// errors; `None` when the reference must handle the call (inputs of ranks the node
/// does not have, or an op whose call takes its own path).
pub(super) fn space(k: &KernelNode, args: &[TensorData]) -> Result<Option<Space>, RuntimeError> {
    if k.shapes == ShapeRule::Region {
        return Ok(None);
    }
    if let ShapeRule::Vector(n) = k.shapes {
        let ranks_ok = args.len() == k.static_shapes.len()
            && args
                .iter()
                .zip(&k.static_shapes)
                .all(|(a, s)| a.ndim() == s.len());
        return Ok(ranks_ok.then(|| Space::whole(vec![n])));
    }
    if let ShapeRule::Arange(dtype) = k.shapes {
        let [start, stop, step] = args else {
            return Ok(None);
        };
        let out = output_shape::arange(&k.name, dtype, start, stop, step)?;
        return Ok(Some(Space::whole(out)));
    }
    if k.shapes == ShapeRule::Alloc {
        let Some((value, sizes)) = args.split_first() else {
            return Ok(None);
        };
        let sizes: smallvec::SmallVec<[&TensorData; 4]> = sizes.iter().collect();
        let out = output_shape::alloc(&k.name, value.shape(), &k.static_shapes[0], &sizes)?;
        return Ok(Some(Space::whole(out)));
    }
    if let ShapeRule::Join { axis } = k.shapes {
        let shapes: smallvec::SmallVec<[&[usize]; 4]> = args.iter().map(|a| a.shape()).collect();
        let out = output_shape::join(&k.name, axis, &shapes)?;
        return Ok(Some(Space::whole(out)));
    }
    if let ShapeRule::Arg { axis } = k.shapes {
        let [x] = args else {
            return Ok(None);
        };
        let out = output_shape::arg_reduce(&k.name, x.shape(), axis)?;
        return Ok(Some(Space::whole(out)));
    }
    if let ShapeRule::Rows { axis } = k.shapes {
        let [x] = args else {
            return Ok(None);
        };
        if x.ndim() != k.static_shapes[0].len() || axis >= x.ndim() {
            return Ok(None);
        }
        let full = Shape::from_slice(x.shape());
        return Ok(Some(Space {
            out: full.clone(),
            full,
            reduced: smallvec::smallvec![axis],
        }));
    }
    if let ShapeRule::Cumulative { axis } = k.shapes {
        let [x] = args else {
            return Ok(None);
        };
        let out = output_shape::cumulative(&k.name, x.shape(), axis)?;
        return Ok(Some(Space::whole(out)));
    }
    if k.shapes == ShapeRule::Dot {
        let [a, b] = args else {
            return Ok(None);
        };
        let out = output_shape::dot(&k.name, a.shape(), b.shape())?;
        return Ok(Some(Space::whole(out)));
    }
    if k.shapes != ShapeRule::Broadcast {
        return Ok(None);
    }
    let ndim = k.static_shapes.first().map_or(0, |s| s.len());
    if args.len() != k.static_shapes.len() || args.iter().any(|a| a.ndim() != ndim) {
        return Ok(None);
    }
    let operands: smallvec::SmallVec<[Operand; 4]> = args
        .iter()
        .enumerate()
        .map(|(i, v)| Operand {
            label: &k.labels[i],
            static_shape: &k.static_shapes[i],
            shape: v.shape(),
        })
        .collect();
    let full = broadcast_shape(&k.name, ndim, &operands, None)?;
    let Some((kind, axes)) = &k.reduce else {
        return Ok(Some(Space::whole(full)));
    };
    let out = output_shape::reduce(&k.name, *kind, &full, axes)?;
    Ok(Some(Space {
        full,
        reduced: Shape::from_slice(axes),
        out,
    }))
}

//! Output shapes of kernel calls: how each kernel node's output shape follows from its
//! inputs (`ShapeRule`), and the iteration space of a call (`space`), checked with the
//! reference's rules and errors — or left to the reference when it must report them.

use super::*;
use tensorlift_runtime::linalg::check_dot_shapes;

/// How a kernel node's output shape follows from its inputs' shapes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ShapeRule {
    /// Element-wise and reductions: the inputs' common shape (checked like the reference).
    Broadcast,
    /// `Dot`: the operands' outer sizes, the contracted ones checked by the reference's
    /// rule (and again by the kernel).
    Dot,
    /// An advanced index, gathered or scattered into: the call takes its own path
    /// (`indexing::run_take`, `indexing::run_scatter`), which resolves the index with the
    /// reference's rules and errors first.
    Advanced,
    /// A running sum or product: the input's shape, or its element count when flattened;
    /// never split (each element needs the one before it).
    Cumulative { flat: bool },
    /// An arg-reduction along `axis` (the input's shape without it) or of the flattened
    /// input (a scalar); never split; an empty axis or input is the reference's (its
    /// error).
    Arg { axis: Option<usize> },
    /// A concatenation along `axis`: the inputs' common shape with their sizes along the
    /// axis summed; never split; inputs that disagree elsewhere are the reference's (its
    /// error).
    Join { axis: usize },
    /// `Alloc(value, sizes…)`: the sizes' values, checked with the value by the
    /// reference's rule and errors.
    Alloc,
    /// `Arange(start, stop, step)`: the reference's length (and its errors).
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
    pub(super) full: Vec<usize>,
    pub(super) reduced: Vec<usize>,
    pub(super) out: Vec<usize>,
}

impl Space {
    /// The space of a call with no reduction: its output's shape throughout (`out` is
    /// left empty: `output_shape` gives `full`).
    pub(super) fn whole(full: Vec<usize>) -> Space {
        Space {
            full,
            reduced: Vec::new(),
            out: Vec::new(),
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

/// The iteration space of a kernel node, checked like the reference checks it; `None`
/// when the reference must handle the call (it reports the error, e.g. max of an empty
/// axis).
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
        let n = arange_length(&k.name, dtype, start, stop, step)?;
        return Ok(Some(Space::whole(vec![n])));
    }
    if k.shapes == ShapeRule::Alloc {
        let Some((value, sizes)) = args.split_first() else {
            return Ok(None);
        };
        let mut target = Vec::with_capacity(sizes.len());
        for s in sizes {
            match s.to_i64_vec().as_deref() {
                Some([v]) if s.ndim() == 0 && *v >= 0 => target.push(*v as usize),
                // The reference reports it.
                _ => return Ok(None),
            }
        }
        let operand = Operand {
            label: "the value (input 0)",
            static_shape: &k.static_shapes[0],
            shape: value.shape(),
        };
        broadcast_shape(
            &k.name,
            target.len(),
            &[operand],
            Some(("the requested shape", &target)),
        )?;
        return Ok(Some(Space::whole(target)));
    }
    if let ShapeRule::Join { axis } = k.shapes {
        let Some(first) = args.first() else {
            return Ok(None);
        };
        let rank = first.ndim();
        let agree = args.len() == k.static_shapes.len()
            && args.iter().all(|a| {
                a.ndim() == rank && (0..rank).all(|d| d == axis || a.shape()[d] == first.shape()[d])
            });
        if !agree || axis >= rank {
            return Ok(None);
        }
        let mut out = first.shape().to_vec();
        out[axis] = args.iter().map(|a| a.shape()[axis]).sum();
        return Ok(Some(Space::whole(out)));
    }
    if let ShapeRule::Arg { axis } = k.shapes {
        let [x] = args else {
            return Ok(None);
        };
        let shape = x.shape();
        let empty = match axis {
            Some(a) => shape.get(a).is_none_or(|n| *n == 0),
            None => x.shape().contains(&0),
        };
        if shape.len() != k.static_shapes[0].len() || empty {
            return Ok(None);
        }
        let out: Vec<usize> = match axis {
            Some(a) => (0..shape.len())
                .filter(|d| *d != a)
                .map(|d| shape[d])
                .collect(),
            None => Vec::new(),
        };
        return Ok(Some(Space::whole(out)));
    }
    if let ShapeRule::Rows { axis } = k.shapes {
        let [x] = args else {
            return Ok(None);
        };
        if x.ndim() != k.static_shapes[0].len() || axis >= x.ndim() {
            return Ok(None);
        }
        let full = x.shape().to_vec();
        return Ok(Some(Space {
            out: full.clone(),
            full,
            reduced: vec![axis],
        }));
    }
    if let ShapeRule::Cumulative { flat } = k.shapes {
        let [x] = args else {
            return Ok(None);
        };
        if x.ndim() != k.static_shapes[0].len() {
            return Ok(None);
        }
        let out = if flat {
            vec![x.len()]
        } else {
            x.shape().to_vec()
        };
        return Ok(Some(Space::whole(out)));
    }
    if k.shapes != ShapeRule::Broadcast {
        let [a, b] = args else {
            return Ok(None);
        };
        let (sa, sb) = (a.shape(), b.shape());
        if sa.len() != k.static_shapes[0].len() || sb.len() != k.static_shapes[1].len() {
            return Ok(None);
        }
        let out: Vec<usize> = if k.shapes == ShapeRule::Dot {
            check_dot_shapes(&k.name, sa, sb)?;
            let outer = &sa[..sa.len().saturating_sub(1)];
            outer
                .iter()
                .chain(sb.get(1..).unwrap_or(&[]))
                .copied()
                .collect()
        } else {
            return Ok(None);
        };
        return Ok(Some(Space::whole(out)));
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
    let empty_axis = axes.iter().any(|a| full[*a] == 0);
    if empty_axis && matches!(kind, ReduceKind::Max | ReduceKind::Min) {
        return Ok(None);
    }
    let out = (0..ndim)
        .filter(|d| !axes.contains(d))
        .map(|d| full[d])
        .collect();
    Ok(Some(Space {
        full,
        reduced: axes.clone(),
        out,
    }))
}

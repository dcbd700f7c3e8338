//! The batch driver of `Blockwise`, shared by both backends: the core op run on each
//! batch element's slices, the results stacked.
//!
//! Owns: the run-time batch shape (inputs padded on the left; a batch dimension
//! broadcasts only where its static size is 1, with DESIGN §3's error otherwise), slicing
//! each input per element without copying (shared `ArcArray` views), the check that every
//! element's core results have one shape, the shape of an empty batch's results (from the
//! signature's dimension names), and splitting the batch over the rayon pool when asked.

use ndarray::{ArcArray, Axis, IxDyn};
use rayon::prelude::*;
use tensorlift_ir::ops::Blockwise;
use tensorlift_ir::{with_tensor_data, DType, Element, TensorData};

use crate::broadcast::{broadcast_shape, Operand, Shape};
use crate::error::{Result, RuntimeError};

/// Runs `core` (the core op on core-shaped inputs) on every batch element of `args` and
/// stacks its results; `static_shapes` are the inputs' static shapes, `out_dtypes` the
/// node's output dtypes. With `parallel`, elements run on the rayon pool.
pub fn run_blockwise<F>(
    name: &str,
    bw: &Blockwise,
    static_shapes: &[&[Option<usize>]],
    out_dtypes: &[DType],
    args: &[TensorData],
    parallel: bool,
    core: F,
) -> Result<Vec<TensorData>>
where
    F: Fn(&[TensorData]) -> Result<Vec<TensorData>> + Sync,
{
    let sig = &bw.signature;
    let BatchLayout { batch, own_batch } = batch_layout(name, bw, static_shapes, args)?;
    let b = batch.len();
    let n: usize = batch.iter().product();
    let element = |i: usize| -> Result<Vec<TensorData>> {
        // The batch coordinates of element i (row-major), then each input's slice.
        let mut coords = smallvec::SmallVec::<[usize; 4]>::from_elem(0, b);
        let mut rest = i;
        for d in (0..b).rev() {
            coords[d] = rest % batch[d];
            rest /= batch[d];
        }
        let slices: Vec<TensorData> = args
            .iter()
            .zip(&own_batch)
            .map(|(x, own)| {
                let at: Vec<usize> = (0..*own)
                    .map(|d| {
                        let c = coords[b - own + d];
                        if x.shape()[d] == 1 {
                            0
                        } else {
                            c
                        }
                    })
                    .collect();
                slice(x, &at)
            })
            .collect();
        core(&slices)
    };
    let results: Vec<Vec<TensorData>> = if parallel && n > 1 {
        (0..n).into_par_iter().map(element).collect::<Result<_>>()?
    } else {
        (0..n).map(element).collect::<Result<_>>()?
    };
    if n == 0 {
        return empty_results(name, bw, args, &own_batch, &batch, out_dtypes);
    }
    (0..sig.outputs.len())
        .map(|j| {
            let parts: Vec<&TensorData> = results.iter().filter_map(|r| r.get(j)).collect();
            stack(name, j, &parts, &batch)
        })
        .collect()
}

/// The batch of a Blockwise call: its shape and each input's own number of batch
/// dimensions (the rest are padded on the left).
pub struct BatchLayout {
    pub batch: Shape,
    pub own_batch: Vec<usize>,
}

impl BatchLayout {
    /// The offset (in elements) of element `i`'s core block in input `k`, which has
    /// `shape` in standard (row-major, contiguous) layout; a dimension of size 1 is
    /// broadcast.
    pub fn offset(&self, k: usize, shape: &[usize], i: usize) -> usize {
        let own = self.own_batch[k];
        let b = self.batch.len();
        let mut rest = i;
        let mut stride: usize = shape[own..].iter().product();
        let mut offset = 0;
        for d in (0..b).rev() {
            let c = rest % self.batch[d];
            rest /= self.batch[d];
            if let Some(p) = (d + own).checked_sub(b) {
                if shape[p] != 1 {
                    offset += c * stride;
                }
                stride *= shape[p];
            }
        }
        offset
    }
}

/// The batch shape of a Blockwise call (DESIGN §3: a batch dimension broadcasts only
/// where its static size is 1), after checking each input has its core dimensions.
pub fn batch_layout(
    name: &str,
    bw: &Blockwise,
    static_shapes: &[&[Option<usize>]],
    args: &[TensorData],
) -> Result<BatchLayout> {
    let sig = &bw.signature;
    if args.len() != sig.inputs.len() || static_shapes.len() != args.len() {
        return Err(RuntimeError::Internal(format!(
            "{name}: {} inputs for the signature {sig}",
            args.len()
        )));
    }
    let own_batch: Vec<usize> = args
        .iter()
        .zip(&sig.inputs)
        .enumerate()
        .map(|(k, (x, core))| {
            x.ndim().checked_sub(core.len()).ok_or_else(|| {
                RuntimeError::op(
                    name,
                    format!(
                        "input {k} has shape {:?}, fewer dimensions than its core ones ({})",
                        x.shape(),
                        core.join(",")
                    ),
                )
            })
        })
        .collect::<Result<_>>()?;
    let b = own_batch.iter().copied().max().unwrap_or(0);
    let labels: Vec<String> = (0..args.len()).map(|k| format!("input {k}")).collect();
    let operands: Vec<Operand> = args
        .iter()
        .zip(&own_batch)
        .zip(static_shapes)
        .zip(&labels)
        .map(|(((x, own), st), label)| Operand {
            label,
            static_shape: &st[..*own],
            shape: &x.shape()[..*own],
        })
        .collect();
    let batch = broadcast_shape(name, b, &operands, None)?;
    Ok(BatchLayout { batch, own_batch })
}

/// Runs `f(state, i, outputs of element i)` for every element `i < n` of a batch whose
/// outputs are `outs` (element i's core block of output j is
/// `outs[j][i * core_lens[j]..]`); with `parallel`, parts of consecutive elements run on
/// the rayon pool, each with its own `init()` state (scratch memory). The first error
/// wins.
pub fn fill_batch<T: Send, S>(
    n: usize,
    parallel: bool,
    outs: &mut [Vec<T>],
    core_lens: &[usize],
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &mut [&mut [T]]) -> Result<()> + Sync,
) -> Result<()> {
    let parts = if parallel {
        (rayon::current_num_threads() * 4).clamp(1, n.max(1))
    } else {
        1
    };
    let per_part = n.div_ceil(parts).max(1);
    let mut chunks: Vec<Vec<&mut [T]>> = (0..parts).map(|_| Vec::new()).collect();
    for (out, len) in outs.iter_mut().zip(core_lens) {
        if out.is_empty() {
            // Empty core blocks: every part gets an empty slice.
            for part in chunks.iter_mut() {
                part.push(Default::default());
            }
            continue;
        }
        for (p, chunk) in out.chunks_mut(len * per_part).enumerate() {
            chunks[p].push(chunk);
        }
    }
    let run_part = |(p, mut part): (usize, Vec<&mut [T]>)| -> Result<()> {
        let mut state = init();
        let start = p * per_part;
        for i in start..(start + per_part).min(n) {
            let j = i - start;
            let mut element: smallvec::SmallVec<[&mut [T]; 2]> = part
                .iter_mut()
                .zip(core_lens)
                .map(|(c, len)| &mut c[j * len..(j + 1) * len])
                .collect();
            f(&mut state, i, &mut element)?;
        }
        Ok(())
    };
    let work: Vec<(usize, Vec<&mut [T]>)> = chunks
        .into_iter()
        .enumerate()
        .filter(|(_, c)| !c.is_empty())
        .collect();
    if parallel && work.len() > 1 {
        work.into_par_iter().try_for_each(run_part)
    } else {
        work.into_iter().try_for_each(run_part)
    }
}

/// `x` at the given leading coordinates: a view sharing x's memory.
fn slice(x: &TensorData, at: &[usize]) -> TensorData {
    with_tensor_data!(x, a => {
        let mut v = a.clone();
        for c in at {
            v = v.index_axis_move(Axis(0), *c);
        }
        Element::wrap(v)
    })
}

/// Output `j` of every element stacked into one array of the batch shape then the core
/// shape; the elements' core shapes must agree.
fn stack(name: &str, j: usize, parts: &[&TensorData], batch: &[usize]) -> Result<TensorData> {
    let Some(first) = parts.first() else {
        return Err(RuntimeError::Internal(format!(
            "{name}: the core op gave no output {j}"
        )));
    };
    for (i, p) in parts.iter().enumerate() {
        if p.shape() != first.shape() || p.dtype() != first.dtype() {
            return Err(RuntimeError::op(
                name,
                format!(
                    "output {j} of the core op has shape {:?} for batch element {i} but {:?} \
                     for element 0: Blockwise needs one core shape for the whole batch",
                    p.shape(),
                    first.shape()
                ),
            ));
        }
    }
    let mut shape = batch.to_vec();
    shape.extend_from_slice(first.shape());
    crate::memory::check_output(name, first.dtype(), &shape)?;
    with_tensor_data!(*first, a => stack_typed(a, parts, &shape))
}

fn stack_typed<T: Element>(
    _: &ArcArray<T, IxDyn>,
    parts: &[&TensorData],
    shape: &[usize],
) -> Result<TensorData> {
    let mut data: Vec<T> = Vec::with_capacity(shape.iter().product());
    for p in parts {
        let a = p
            .as_array::<T>()
            .ok_or_else(|| RuntimeError::Internal("mixed dtypes in one output".into()))?;
        data.extend(a.iter().copied());
    }
    TensorData::from_vec(shape, data).map_err(RuntimeError::from)
}

/// The results of an empty batch: zero elements of the core shapes the signature's
/// dimension names give (each output dimension must be named by an input).
fn empty_results(
    name: &str,
    bw: &Blockwise,
    args: &[TensorData],
    own_batch: &[usize],
    batch: &[usize],
    out_dtypes: &[DType],
) -> Result<Vec<TensorData>> {
    let sig = &bw.signature;
    let size_of = |dim: &str| {
        args.iter()
            .zip(&sig.inputs)
            .zip(own_batch)
            .find_map(|((x, core), own)| {
                core.iter()
                    .position(|d| d == dim)
                    .map(|p| x.shape()[own + p])
            })
    };
    sig.outputs
        .iter()
        .zip(out_dtypes)
        .map(|(core, dtype)| {
            let mut shape = batch.to_vec();
            for d in core {
                shape.push(size_of(d).ok_or_else(|| {
                    RuntimeError::op(
                        name,
                        format!(
                            "the batch is empty and output dimension {d} of the signature \
                             {sig} is not an input dimension: its size is unknown"
                        ),
                    )
                })?);
            }
            Ok(TensorData::full(
                &shape,
                tensorlift_ir::Literal::Int(0),
                *dtype,
            ))
        })
        .collect()
}

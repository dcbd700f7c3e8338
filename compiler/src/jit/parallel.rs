//! Splitting large calls across threads: which dimension to split (`split_dim`), the
//! split call itself (`run_split`: shared outputs written in disjoint ranges, or partial
//! reductions combined with the runtime's rules).

use super::*;

/// Elements below which a call runs on one thread.
pub(super) const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;

/// A call split across rayon's threads along `split` (dimension, whether it is reduced):
/// disjoint ranges of a kept dimension write shared outputs; ranges of a reduced one
/// write per-thread partial results, combined afterwards with the runtime's rules.
pub(super) fn run_split(
    k: &KernelNode,
    space: &Space,
    split: Option<(usize, bool)>,
    args: &mut [TensorData],
    pool: &BufferPool,
) -> Result<Values, RuntimeError> {
    let (kernel, compiled) = (&k.kernel, &k.compiled);
    let rank = space.full.len();
    let aliases = in_place_inputs(k, space, args);
    let mut inputs = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        let (ptr, s, st) = data_ptr(a);
        if a.dtype() != kernel.buffers[i].dtype {
            return Err(RuntimeError::Internal(format!(
                "JIT kernel input {i} is {}, the kernel takes {}",
                a.dtype(),
                kernel.buffers[i].dtype
            )));
        }
        let bcast = &k.broadcastable[i];
        inputs.push(BufArg {
            ptr: read_ptr(i, ptr, &aliases) as i64,
            shape: s.iter().map(|v| *v as i64).collect(),
            strides: st.iter().map(|v| *v as i64).collect(),
            elem: a.dtype().size_bytes() as i64,
            walk: (0..rank).map(|d| (!bcast[d]).then_some(d)).collect(),
        });
    }
    let out_walk: Vec<Option<usize>> = {
        let mut next = 0;
        (0..rank)
            .map(|d| {
                (!space.reduced.contains(&d)).then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect()
    };
    let chunks = match split {
        Some(_) => rayon::current_num_threads(),
        None => 1,
    };
    // Per-thread outputs when the split dimension is reduced; shared ones otherwise.
    let sets = if matches!(split, Some((_, true))) {
        chunks
    } else {
        1
    };
    let mut output_sets: Vec<Outputs> = (0..sets)
        .map(|_| outputs_for(k, space, &aliases, pool))
        .collect::<Result<_, _>>()?;
    let mut buffer_sets = Vec::with_capacity(sets);
    for outputs in output_sets.iter_mut() {
        let mut bufs: Vec<BufArg> = inputs
            .iter()
            .map(|b| BufArg {
                ptr: b.ptr,
                shape: b.shape.clone(),
                strides: b.strides.clone(),
                elem: b.elem,
                walk: b.walk.clone(),
            })
            .collect();
        for (j, o) in outputs.iter_mut().enumerate() {
            let full = k.out_full[j];
            let shape = space.output_shape(full);
            bufs.push(BufArg {
                ptr: o.ptr() as i64,
                shape: shape.iter().map(|v| *v as i64).collect(),
                strides: standard_strides(shape).collect(),
                elem: k.out_dtypes[j].size_bytes() as i64,
                walk: if full {
                    (0..rank).map(Some).collect()
                } else {
                    out_walk.clone()
                },
            });
        }
        buffer_sets.push(bufs);
    }
    // One scratch area per call (calls may run at the same time).
    let mut scratch: Vec<Vec<f64>> = (0..chunks)
        .map(|_| vec![0f64; compiled.scratch_words])
        .collect();
    let mut slots = vec![ErrorSlot::default(); chunks];
    let calls: Vec<Vec<i64>> = match split {
        None => vec![pack(
            &buffer_sets[0],
            None,
            scratch[0].as_mut_ptr(),
            &mut slots[0],
        )],
        Some((dim, reduced)) => {
            let n = space.full[dim];
            scratch
                .iter_mut()
                .zip(slots.iter_mut())
                .enumerate()
                .map(|(c, (area, slot))| {
                    let (lo, hi) = (n * c / chunks, n * (c + 1) / chunks);
                    let set = if reduced {
                        &buffer_sets[c]
                    } else {
                        &buffer_sets[0]
                    };
                    pack(set, Some((dim, lo, hi)), area.as_mut_ptr(), slot)
                })
                .collect()
        }
    };
    // SAFETY: every input has the kernel's dtype and rank and a shape checked by `space`
    // against the static types (dimensions the kernel reads at index 0 have static size
    // 1); each output was just allocated with the shape the loops walk, or is an input
    // this call owns uniquely (`in_place_inputs`: same shape and dtype, each element read
    // before it is written at the same position, by the same call). Each call covers a
    // disjoint range `lo..hi` of one iteration dimension: pointers are offset to `lo` and
    // sizes cut to `hi - lo` only for buffers that dimension walks, so every address stays
    // inside the original buffers; calls that share outputs write disjoint elements (the
    // split dimension is kept in the output), and calls over a reduced dimension each
    // write their own outputs. Each call has its own scratch area of `scratch_words`. The
    // kernel only reads and writes inside its buffers (`codegen` ABI) and is plain code,
    // callable from several threads at once.
    let statuses: Vec<i32> = if calls.len() == 1 {
        vec![unsafe { compiled.call(&calls[0]) }]
    } else {
        use rayon::prelude::*;
        calls
            .par_iter()
            .map(|c| unsafe { compiled.call(c) })
            .collect()
    };
    if let Some(c) = statuses.iter().position(|s| *s != 0) {
        return Err(kernel_failure(k, statuses[c], &slots[c]));
    }
    drop(buffer_sets);
    // SAFETY: every call ran to completion, and each writes all elements of the outputs
    // it was given (see `Output::assume_init`); shared outputs are covered by the union of
    // the disjoint ranges, which is the whole output.
    let mut output_sets: Vec<Values> = output_sets
        .into_iter()
        .map(|set| {
            set.into_iter()
                .map(|o| unsafe { o.assume_init(args) })
                .collect()
        })
        .collect();
    if output_sets.len() == 1 {
        return Ok(output_sets.remove(0));
    }
    let Some((kind, _)) = k.reduce else {
        return Err(RuntimeError::Internal(
            "partial outputs of a non-reduction".into(),
        ));
    };
    let n_out = output_sets[0].len();
    let mut per_output: Vec<Vec<TensorData>> = (0..n_out).map(|_| Vec::new()).collect();
    for set in output_sets {
        for (k, o) in set.into_iter().enumerate() {
            per_output[k].push(o);
        }
    }
    per_output
        .into_iter()
        .map(|parts| combine_partials(kind, parts))
        .collect()
}

/// Combines per-thread partial reductions into the first (the runtime's rules).
pub(super) fn combine_partials(
    kind: ReduceKind,
    parts: Vec<TensorData>,
) -> Result<TensorData, RuntimeError> {
    let mut parts = parts.into_iter();
    let mut acc = parts
        .next()
        .ok_or_else(|| RuntimeError::Internal("no partial results".into()))?;
    for part in parts {
        reduce::combine_partials(kind, &mut acc, &part)?;
    }
    Ok(acc)
}

/// The dimension to split a call across threads, and whether it is reduced: the
/// outermost one when it is reduced and the partial results are small (each thread then
/// reads one contiguous block of a row-major input: a sum over axis 0 runs 1.5× faster
/// than split along its kept axis here), else the outermost kept one, else a reduced one.
pub(super) fn split_dim(space: &Space, threads: usize, reduced_ok: bool) -> Option<(usize, bool)> {
    let total = elements_of(&space.full);
    if threads < 2 || total < PARALLEL_MIN_ELEMENTS {
        return None;
    }
    let big = |d: &usize| space.full[*d] >= 2 * threads;
    let reduced = reduced_ok
        .then(|| space.reduced.iter().copied().find(big).map(|d| (d, true)))
        .flatten();
    let out = elements_of(space.output_shape(false));
    let small_partials = out.saturating_mul(16) <= total;
    if reduced.is_some_and(|(d, _)| d == 0) && small_partials {
        return reduced;
    }
    let kept = (0..space.full.len()).find(|d| !space.reduced.contains(d) && big(d));
    kept.map(|d| (d, false)).or(reduced)
}

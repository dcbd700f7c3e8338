//! The fused row pass: `z = A·w`, `s = f(z, ..)` element by element and `g = Aᵀ·s` in one
//! pass over A's rows, so a block of rows is read from memory once and again from cache
//! (a log-density and its gradient: A is read twice otherwise, and both products are
//! memory-bound). f may also read scalars and vectors of z's length not computed from z
//! (labels).
//!
//! Owns: finding the three nodes in a graph (`find`), placing the step after f's other
//! inputs (`schedule`), and running them fused: the rows split over the rayon pool, per
//! block `dots_at` for z, f's own compiled kernel on the block's slices, `axpys_at` into
//! the part's own g; the parts' g summed at the end. Any other layout (A not contiguous,
//! float32, shapes that disagree) runs the three kernels one after the other, as unfused,
//! with their errors.

use rayon::prelude::*;
use tensorlift_ir::ops::DimShuffle;
use tensorlift_runtime::row_reduce::{axpys_at, dots_at};
use tensorlift_runtime::shape_ops::eval_dimshuffle;
use tensorlift_runtime::vector_math::simd_level;

use super::*;

/// Bytes of A one block covers: the block is re-read from L2 by the backward product.
const BLOCK_BYTES: usize = 128 << 10;

/// Fewest matrix elements worth splitting over threads.
const PARALLEL_ELEMENTS: usize = 1 << 16;

/// The nodes of one row pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Site {
    /// `z = Dot(A, w)`.
    pub product: NodeId,
    /// `s = f(z)`: an Elemwise or Composite of z alone.
    pub map: NodeId,
    /// `g = Dot(Transpose(A), s)` or `Dot(s, A)`.
    pub back: NodeId,
    /// The transpose `back` reads, when nothing else reads it (it then never runs).
    pub transpose: Option<NodeId>,
    /// The map's inputs other than z, in order of first use: float64 scalars, or vectors of
    /// z's length read block by block; all available before the product runs.
    pub extras: Vec<VarId>,
}

/// How the backward product reads A.
#[derive(Clone, Debug)]
enum Back {
    /// `Dot(DimShuffle(A), s)`, with the DimShuffle (for the unfused fallback).
    Transposed(DimShuffle),
    /// `Dot(s, A)`.
    VectorFirst,
}

/// The row passes of `fg`: float64 products whose kernels are in `kernels`.
pub(super) fn find(fg: &FunctionGraph, kernels: &HashMap<NodeId, KernelNode>) -> Vec<Site> {
    let order = fg.toposort();
    let position: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut sites = Vec::new();
    for &product in &order {
        let Some(e) = fg.node(product) else { continue };
        let (Op::Dot, [a, w], [z]) = (&e.op, e.inputs.as_slice(), e.outputs.as_slice()) else {
            continue;
        };
        let float64 = |v: VarId, ndim: usize| {
            let t = &fg.var(v).ty;
            t.dtype == DType::Float64 && t.ndim() == ndim && !t.is_sparse()
        };
        if !float64(*a, 2) || !float64(*w, 1) || !kernels.contains_key(&product) {
            continue;
        }
        // Values the map may read besides z: not computed from the product (the step
        // then runs once they are, `schedule`).
        // (Walked only when a map reads a computed value besides z.)
        let downstream = std::cell::OnceCell::new();
        let ready = |v: VarId| match fg.var(v).origin {
            Origin::Input | Origin::Constant(_) => true,
            Origin::Node { node, .. } => !downstream
                .get_or_init(|| downstream_of(fg, product, &order, &position))
                .contains(&node),
        };
        let found = readers(fg, *z).find_map(|map| {
            let m = fg.node(map)?;
            let elementwise = matches!(m.op, Op::Elemwise(_) | Op::Composite(_));
            let [s] = m.outputs.as_slice() else {
                return None;
            };
            let mut extras = Vec::new();
            for x in m.inputs.iter().filter(|x| *x != z) {
                if !(float64(*x, 0) || float64(*x, 1)) || !ready(*x) {
                    return None;
                }
                if !extras.contains(x) {
                    extras.push(*x);
                }
            }
            if !elementwise || !float64(*s, 1) || !kernels.contains_key(&map) {
                return None;
            }
            readers(fg, *s).find_map(|back| {
                let b = fg.node(back)?;
                if b.op != Op::Dot || !kernels.contains_key(&back) {
                    return None;
                }
                match b.inputs.as_slice() {
                    [t, s2] if s2 == s => {
                        let (tn, _) = transpose_of(fg, *t, *a)?;
                        let only_back = fg.clients(*t).all(|c| {
                            matches!(c, tensorlift_ir::Client::Node { node, .. } if *node == back)
                        });
                        Some((map, back, only_back.then_some(tn), extras.clone()))
                    }
                    [s2, a2] if s2 == s && a2 == a => Some((map, back, None, extras.clone())),
                    _ => None,
                }
            })
        });
        if let Some((map, back, transpose, extras)) = found {
            sites.push(Site {
                product,
                map,
                back,
                transpose,
                extras,
            });
        }
    }
    sites
}

/// The nodes computed from `product`'s results (the product included).
fn downstream_of(
    fg: &FunctionGraph,
    product: NodeId,
    order: &[NodeId],
    position: &HashMap<NodeId, usize>,
) -> std::collections::HashSet<NodeId> {
    let mut down = std::collections::HashSet::from([product]);
    let start = position.get(&product).map_or(order.len(), |p| p + 1);
    for &n in &order[start..] {
        let Some(e) = fg.node(n) else { continue };
        let reads_down = e.inputs.iter().any(|x| match fg.var(*x).origin {
            Origin::Node { node, .. } => down.contains(&node),
            Origin::Input | Origin::Constant(_) => false,
        });
        if reads_down {
            down.insert(n);
        }
    }
    down
}

/// `order` with `site`'s product moved after the nodes making the map's extras: the nodes
/// between that do not depend on the product go before it, those that do after it.
pub(super) fn schedule(fg: &FunctionGraph, site: &Site, order: Vec<NodeId>) -> Vec<NodeId> {
    let position: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let Some(&at) = position.get(&site.product) else {
        return order;
    };
    let last_extra = site
        .extras
        .iter()
        .filter_map(|x| match fg.var(*x).origin {
            Origin::Node { node, .. } => position.get(&node).copied(),
            Origin::Input | Origin::Constant(_) => None,
        })
        .max();
    let Some(until) = last_extra.filter(|p| *p > at) else {
        return order;
    };
    let down = downstream_of(fg, site.product, &order, &position);
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for &n in &order[at + 1..=until] {
        if down.contains(&n) {
            after.push(n);
        } else {
            before.push(n);
        }
    }
    let mut out = order[..at].to_vec();
    out.extend(before);
    out.push(site.product);
    out.extend(after);
    out.extend(&order[until + 1..]);
    out
}

/// The nodes reading `v`.
fn readers(fg: &FunctionGraph, v: VarId) -> impl Iterator<Item = NodeId> + '_ {
    fg.clients(v).filter_map(|c| match c {
        tensorlift_ir::Client::Node { node, .. } => Some(*node),
        _ => None,
    })
}

/// The node making `t` when it is `a` transposed (a DimShuffle swapping its two axes).
fn transpose_of(fg: &FunctionGraph, t: VarId, a: VarId) -> Option<(NodeId, DimShuffle)> {
    let Origin::Node { node, .. } = fg.var(t).origin else {
        return None;
    };
    let e = fg.node(node)?;
    match &e.op {
        Op::DimShuffle(ds) if e.inputs == [a] && ds.new_order == [Some(1), Some(0)] => {
            Some((node, ds.clone()))
        }
        _ => None,
    }
}

/// Where the map reads each of its inputs.
#[derive(Clone, Copy, Debug)]
enum MapInput {
    Z,
    /// Extra input k (step argument 2 + k).
    Extra(usize),
}

/// A row pass as a step of a plan: inputs `[A, w, extras..]`, outputs `[z, s, g]`.
pub(super) struct RowPass {
    site: Site,
    map_inputs: Vec<MapInput>,
    product: KernelNode,
    map: KernelNode,
    back_kernel: KernelNode,
    back: Back,
}

impl RowPass {
    /// The step for `site`, taking its three kernels out of `kernels`.
    pub(super) fn new(
        fg: &FunctionGraph,
        site: Site,
        kernels: &mut HashMap<NodeId, KernelNode>,
    ) -> Option<RowPass> {
        let b = fg.node(site.back)?;
        let map_inputs = fg
            .node(site.map)?
            .inputs
            .iter()
            .map(|x| match site.extras.iter().position(|e| e == x) {
                Some(k) => MapInput::Extra(k),
                None => MapInput::Z,
            })
            .collect();
        let back = match transpose_of(fg, b.inputs[0], fg.node(site.product)?.inputs[0]) {
            Some((_, ds)) => Back::Transposed(ds),
            None => Back::VectorFirst,
        };
        if !(kernels.contains_key(&site.product)
            && kernels.contains_key(&site.map)
            && kernels.contains_key(&site.back))
        {
            return None;
        }
        let product = kernels.remove(&site.product)?;
        let map = kernels.remove(&site.map)?;
        let back_kernel = kernels.remove(&site.back)?;
        Some(RowPass {
            map_inputs,
            site,
            product,
            map,
            back_kernel,
            back,
        })
    }

    /// The map's name, for the plan's text.
    pub(super) fn describe(&self) -> String {
        format!(
            "a fused row pass: A·w, {} and Aᵀ·s in one pass over A's rows (both cores)",
            self.map.name
        )
    }

    /// `[z, s, g]` from `[A, w, extras..]`.
    pub(super) fn run(
        &self,
        fg: &FunctionGraph,
        args: &mut [TensorData],
        pool: &BufferPool,
    ) -> Result<Values, RuntimeError> {
        let [a, w, extras @ ..] = args else {
            return Err(RuntimeError::Internal("a row pass takes A and w".into()));
        };
        let fast = match (a.as_array::<f64>(), w.as_array::<f64>()) {
            (Some(am), Some(wv))
                if am.ndim() == 2
                    && am.is_standard_layout()
                    && wv.ndim() == 1
                    && wv.len() == am.shape()[1]
                    && am.shape()[1] > 0 =>
            {
                Some((am, wv.as_standard_layout().into_owned()))
            }
            _ => None,
        };
        let rows = a.shape().first().copied().unwrap_or(0);
        let extras_fit = extras.len() == self.site.extras.len()
            && extras.iter().all(|x| {
                x.dtype() == DType::Float64
                    && !x.is_sparse()
                    && (x.ndim() == 0 || x.shape() == [rows])
            });
        let (Some((am, wv)), true) = (fast, extras_fit) else {
            return self.unfused(fg, args, pool);
        };
        let (rows, cols) = (am.shape()[0], am.shape()[1]);
        let data = am.as_slice().ok_or_else(|| {
            RuntimeError::Internal("a standard-layout matrix without a slice".into())
        })?;
        let wv = wv.as_slice().unwrap_or(&[]);
        let mut z = vec![0.0f64; rows];
        let mut s = vec![0.0f64; rows];
        let parts = if rows * cols >= PARALLEL_ELEMENTS {
            rayon::current_num_threads().clamp(1, rows.max(1))
        } else {
            1
        };
        let per_part = rows.div_ceil(parts.max(1)).max(1);
        let block = (BLOCK_BYTES / (8 * cols)).clamp(4, 1024);
        let partials: Vec<Result<Vec<f64>, RuntimeError>> = z
            .par_chunks_mut(per_part)
            .zip(s.par_chunks_mut(per_part))
            .enumerate()
            .map(|(p, (zp, sp))| {
                let first = p * per_part;
                let mut g = vec![0.0f64; cols];
                let level = simd_level();
                for (b, (zb, sb)) in zp.chunks_mut(block).zip(sp.chunks_mut(block)).enumerate() {
                    let r0 = first + b * block;
                    let rows_here = &data[r0 * cols..(r0 + zb.len()) * cols];
                    dots_at(level, zb, rows_here, cols, wv);
                    self.map_block(r0, zb, sb, extras)
                        .map_err(|e| RuntimeError::InNode {
                            node: tensorlift_ir::print::node_summary(fg, self.site.map),
                            source: Box::new(e),
                        })?;
                    axpys_at(level, &mut g, rows_here, cols, sb);
                }
                Ok(g)
            })
            .collect();
        let mut g = vec![0.0f64; cols];
        for part in partials {
            for (o, v) in g.iter_mut().zip(part?) {
                *o += v;
            }
        }
        Ok(Values::from_vec(vec![
            TensorData::from(ndarray::Array1::from(z)),
            TensorData::from(ndarray::Array1::from(s)),
            TensorData::from(ndarray::Array1::from(g)),
        ]))
    }

    /// `s = f(z, extras)` on the block of rows starting at `r0`, by f's compiled kernel:
    /// vector extras read at the same rows, scalars whole.
    fn map_block(
        &self,
        r0: usize,
        z: &[f64],
        s: &mut [f64],
        extras: &[TensorData],
    ) -> Result<(), RuntimeError> {
        // SAFETY: the kernel is f's element-wise kernel with float64 inputs in
        // `map_inputs`' order and one float64 vector output (checked by `find` and, for
        // the extras, by `run`: scalars, or vectors of A's row count, so rows r0..r0+len
        // lie inside them at their own strides); z's and s's slices have equal lengths and
        // unit strides, s overlaps nothing it reads (a distinct borrow); the kernel checks
        // these shapes itself before touching memory.
        unsafe {
            call_packed(&self.map, |packed| {
                for input in &self.map_inputs {
                    match input {
                        MapInput::Z => push_view(packed, z.as_ptr().cast(), &[z.len()], &[1]),
                        MapInput::Extra(k) => {
                            let (ptr, shape, strides) = data_ptr(&extras[*k]);
                            match strides.first() {
                                None => push_view(packed, ptr, shape, strides),
                                Some(stride) => {
                                    let at = ptr
                                        .cast::<f64>()
                                        .wrapping_offset(r0 as isize * stride)
                                        .cast::<u8>();
                                    push_view(packed, at, &[z.len()], strides);
                                }
                            }
                        }
                    }
                }
                push_row_major(packed, s.as_mut_ptr().cast_const().cast(), &[s.len()]);
            })
        }
    }

    /// The three kernels one after the other (any layout, every error as unfused).
    fn unfused(
        &self,
        fg: &FunctionGraph,
        args: &mut [TensorData],
        pool: &BufferPool,
    ) -> Result<Values, RuntimeError> {
        let in_node = |node: NodeId, e: RuntimeError| RuntimeError::InNode {
            node: tensorlift_ir::print::node_summary(fg, node),
            source: Box::new(e),
        };
        let a = args[0].clone();
        let missing = || RuntimeError::Internal("a row pass lost an argument".into());
        let product_args = args.get_mut(..2).ok_or_else(missing)?;
        let z = first(run_kernel(
            fg,
            self.site.product,
            &self.product,
            product_args,
            pool,
        ))
        .map_err(|e| in_node(self.site.product, e))?;
        let mut map_args: Vec<TensorData> = self
            .map_inputs
            .iter()
            .map(|i| match i {
                MapInput::Z => Ok(z.clone()),
                MapInput::Extra(k) => args.get(2 + k).cloned().ok_or_else(missing),
            })
            .collect::<Result<_, _>>()?;
        let s = first(run_kernel(
            fg,
            self.site.map,
            &self.map,
            &mut map_args,
            pool,
        ))
        .map_err(|e| in_node(self.site.map, e))?;
        let mut back_args = match &self.back {
            Back::Transposed(ds) => {
                let name = ds.to_string();
                [eval_dimshuffle(&name, ds, &a)?, s.clone()]
            }
            Back::VectorFirst => [s.clone(), a],
        };
        let g = first(run_kernel(
            fg,
            self.site.back,
            &self.back_kernel,
            &mut back_args,
            pool,
        ))
        .map_err(|e| in_node(self.site.back, e))?;
        Ok(Values::from_vec(vec![z, s, g]))
    }
}

/// The single output of a kernel run.
fn first(outs: Result<Values, RuntimeError>) -> Result<TensorData, RuntimeError> {
    outs?
        .into_iter()
        .next()
        .ok_or_else(|| RuntimeError::Internal("a kernel returned no output".into()))
}

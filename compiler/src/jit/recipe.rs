//! Memoized small kernel calls: a kernel node keeps the argument words of its last small
//! call (every size and stride, pointers left blank) keyed by its arguments' dtypes,
//! shapes and strides, with its outputs' shapes. A call whose arguments have that layout
//! allocates its outputs, fills in the pointers and calls the kernel: the shape rules,
//! the split and the in-place decisions ran when the recipe was made, and they depend on
//! nothing but that layout.

use super::*;
use parallel::PARALLEL_MIN_ELEMENTS;

/// Iteration spaces with fewer elements are memoized: a call this small is never split
/// across threads, never writes over an input and never takes pooled memory, so the one
/// whole-buffer call is the only path it can take.
pub(super) const RECIPE_MAX_ELEMENTS: usize = if PARALLEL_MIN_ELEMENTS < POOL_MIN_BYTES / 4 {
    PARALLEL_MIN_ELEMENTS
} else {
    POOL_MIN_BYTES / 4
};

/// The words of one small call of a kernel node, and the layout they were made for.
pub(super) struct Recipe {
    /// Per argument: its dtype, rank, sizes and strides.
    key: Vec<i64>,
    /// The argument words before the trailer, data pointers zero.
    words: Vec<i64>,
    /// Where each argument's data pointer goes in `words`.
    arg_at: smallvec::SmallVec<[usize; 4]>,
    /// Per output: where its data pointer goes, and its shape.
    outputs: smallvec::SmallVec<[(usize, Shape); 2]>,
}

/// A kernel node's recipe, if it has made one. Calls on several threads at once take
/// turns through it or, while another holds it, the general path.
#[derive(Default)]
pub(super) struct RecipeSlot(Mutex<Option<Recipe>>);

/// Whether calls of `k` may be memoized: its output shapes follow from its arguments'
/// shapes alone (not from their values, as Alloc's and Arange's do), it takes the
/// general path (no index, region, reshape or check path of its own), its result needs no
/// repair afterwards (products), and it has no local buffers.
pub(super) fn memoizable(
    k: &Kernel,
    shapes: ShapeRule,
    reduce: Option<ReduceKind>,
    arity: usize,
) -> bool {
    let by_shapes = match shapes {
        ShapeRule::Broadcast
        | ShapeRule::Dot
        | ShapeRule::Cumulative { .. }
        | ShapeRule::Arg { .. }
        | ShapeRule::Join { .. }
        | ShapeRule::Rows { .. }
        | ShapeRule::Vector(_) => true,
        ShapeRule::Alloc
        | ShapeRule::Arange(_)
        | ShapeRule::Advanced
        | ShapeRule::Reshape
        | ShapeRule::Forward
        | ShapeRule::Region => false,
    };
    by_shapes && reduce != Some(ReduceKind::Prod) && k.buffers.len() == arity
}

/// Appends `a`'s dtype, rank, sizes and strides to a key of layouts.
pub(super) fn push_layout(key: &mut Vec<i64>, a: &TensorData) {
    let (_, shape, strides) = data_ptr(a);
    key.extend([a.dtype() as i64, shape.len() as i64]);
    key.extend(shape.iter().map(|s| *s as i64));
    key.extend(strides.iter().map(|s| *s as i64));
}

/// Whether `a`'s dtype and layout are the ones `key` holds from `at` (`push_layout`);
/// returns where the next value's part of the key starts.
pub(super) fn layout_matches(key: &[i64], at: usize, a: &TensorData) -> Option<usize> {
    if a.is_sparse() {
        return None;
    }
    let (_, shape, strides) = data_ptr(a);
    let rank = shape.len();
    let part = key.get(at..at + 2 + 2 * rank)?;
    let same = part[0] == a.dtype() as i64
        && part[1] == rank as i64
        && part[2..2 + rank]
            .iter()
            .zip(shape)
            .all(|(k, s)| *k == *s as i64)
        && part[2 + rank..]
            .iter()
            .zip(strides)
            .all(|(k, s)| *k == *s as i64);
    same.then_some(at + 2 + 2 * rank)
}

impl RecipeSlot {
    /// The call of `k` on `args` by the recipe, when it was made for their layout.
    pub(super) fn run(
        &self,
        k: &KernelNode,
        args: &[TensorData],
    ) -> Option<Result<Values, RuntimeError>> {
        let slot = self.0.try_lock().ok()?;
        let recipe = slot.as_ref()?;
        let mut at = 0;
        for a in args {
            at = layout_matches(&recipe.key, at, a)?;
        }
        (at == recipe.key.len()).then(|| recipe.call(k, args))
    }

    /// Makes the recipe of a call of `k` on `args` over `space` and runs the call by it;
    /// `None` when the call is not small (the general path runs it).
    pub(super) fn make_and_run(
        &self,
        k: &KernelNode,
        space: &Space,
        args: &[TensorData],
    ) -> Option<Result<Values, RuntimeError>> {
        let elements = elements_of(&space.full);
        if elements == 0 || elements >= RECIPE_MAX_ELEMENTS || args.iter().any(|a| a.is_sparse()) {
            return None;
        }
        if check_dtypes(k, args).is_err() {
            return None;
        }
        let mut key = Vec::new();
        let mut words = Vec::new();
        let mut arg_at = smallvec::SmallVec::new();
        for a in args {
            let (_, shape, strides) = data_ptr(a);
            push_layout(&mut key, a);
            arg_at.push(words.len());
            push_view(&mut words, std::ptr::null(), shape, strides);
        }
        let mut outputs = smallvec::SmallVec::new();
        for full in &k.out_full {
            let shape = space.output_shape(*full);
            outputs.push((words.len(), Shape::from_slice(shape)));
            push_row_major(&mut words, std::ptr::null(), shape);
        }
        let recipe = Recipe {
            key,
            words,
            arg_at,
            outputs,
        };
        let result = recipe.call(k, args);
        if let Ok(mut slot) = self.0.try_lock() {
            *slot = Some(recipe);
        }
        Some(result)
    }
}

impl Recipe {
    /// One call of `k` on `args`, whose layout is the recipe's.
    fn call(&self, k: &KernelNode, args: &[TensorData]) -> Result<Values, RuntimeError> {
        let mut outputs = Outputs::new();
        for ((_, shape), dtype) in self.outputs.iter().zip(&k.out_dtypes) {
            outputs.push(Output::fresh(&k.name, *dtype, shape)?);
        }
        // SAFETY: the arguments have the dtypes, shapes and strides the words were made
        // from (the key), which the kernel's shape rule accepted then; each output is
        // fresh memory of the shape its words give.
        unsafe {
            call_packed(k, |packed| {
                packed.extend_from_slice(&self.words);
                for (a, at) in args.iter().zip(&self.arg_at) {
                    packed[*at] = data_ptr(a).0 as i64;
                }
                for (o, (at, _)) in outputs.iter_mut().zip(&self.outputs) {
                    packed[*at] = o.ptr() as i64;
                }
            })?;
        }
        // SAFETY: the kernel ran to completion and writes every output element.
        Ok(outputs
            .into_iter()
            .map(|o| unsafe { o.assume_init(args) })
            .collect())
    }
}

//! Lowering of indexing: advanced indices (integer arrays, scalar indices, boolean masks
//! and slices, in any arrangement NumPy allows) as gathers `x[index]` and scatters
//! `x[index] = / += y` on the view of x the slices leave (`AdvancedLayout`), every index
//! wrapped if negative and checked before it addresses memory (`checked_index`); and
//! writes `x[slices] = / += y` with basic indices, whose kernel only sees the region (the
//! executor resolves it with the reference's rules and hands the kernel a view of the
//! output); and, for scan bodies, where no view can be made, basic indexing by integers
//! and full slices as copies (`basic_take_kernel`, `basic_update_kernel`).

use super::*;

/// How a lowered advanced index addresses x, by NumPy's rules: the executor first applies
/// its slices as a view of x (they keep their axes: `slices`, with the index values
/// `slice_values` as their bounds); then each axis of that view is walked whole or
/// addressed by an index array, and the arrays' common shape goes at output axis
/// `index_at` (where the first array is when the array entries are adjacent, else first).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AdvancedLayout {
    /// Per axis of x: `Some(j)` when index array j addresses it, `None` when walked whole.
    pub axes: Vec<Option<usize>>,
    pub arrays: Vec<IndexArray>,
    pub index_at: usize,
    /// The basic index of the view: each slice as given, a full slice for every axis an
    /// array entry consumes.
    pub slices: Vec<IndexSlot>,
    /// Positions among the index values (after x, or x and the value) of the slices' bounds.
    pub slice_values: Vec<usize>,
}

/// One index array of an `AdvancedLayout`, as the kernel takes it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct IndexArray {
    /// An integer array; a scalar index as a 0-d array; one axis of a boolean mask as the
    /// int64 vector of its hits' positions along it.
    pub ty: TensorType,
    /// The index value it comes from (position after x, or after x and the value).
    pub value: usize,
    /// The axis of x it addresses.
    pub axis: usize,
    pub source: ArraySource,
    /// Its name in broadcasting errors (the reference's).
    pub label: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArraySource {
    Array,
    Scalar,
    /// Axis `part` of a boolean mask (the executor turns the mask into positions).
    Mask {
        part: usize,
    },
}

impl AdvancedLayout {
    /// The number of axes of the arrays' common shape.
    pub fn index_ndim(&self) -> usize {
        self.arrays.iter().map(|a| a.ty.ndim()).max().unwrap_or(0)
    }

    /// The axes of x walked whole, in order.
    fn walked(&self) -> Vec<usize> {
        (0..self.axes.len())
            .filter(|a| self.axes[*a].is_none())
            .collect()
    }

    /// The output axis of the `i`-th walked axis of x.
    fn out_axis(&self, i: usize) -> usize {
        if i < self.index_at {
            i
        } else {
            i + self.index_ndim()
        }
    }
}

/// The layout of an advanced index `slots` on an x of `x_ndim` axes whose index values
/// have `index_types`; `None` for what kernels do not take (float or 0-d boolean indices).
pub(crate) fn advanced_layout(
    slots: &[AdvancedSlot],
    index_types: &[&TensorType],
    x_ndim: usize,
) -> Option<AdvancedLayout> {
    let mut layout = AdvancedLayout {
        axes: Vec::new(),
        arrays: Vec::new(),
        index_at: 0,
        slices: Vec::new(),
        slice_values: Vec::new(),
    };
    let mut next = 0;
    let mut advanced = Vec::with_capacity(slots.len());
    for slot in slots {
        let mut add_array = |ty: TensorType, source| {
            let axis = layout.axes.len();
            layout.axes.push(Some(layout.arrays.len()));
            layout.slices.push(IndexSlot::FULL);
            layout.arrays.push(IndexArray {
                ty,
                value: next,
                axis,
                source,
                label: format!("index entry {axis}"),
            });
        };
        match *slot {
            AdvancedSlot::Basic(IndexSlot::Index) => {
                let t = index_types.get(next)?;
                if !t.dtype.is_int() || t.ndim() != 0 {
                    return None;
                }
                add_array((*t).clone(), ArraySource::Scalar);
            }
            AdvancedSlot::Basic(slice) => {
                layout.axes.push(None);
                layout.slices.push(slice);
                layout.slice_values.extend(next..next + slice.n_inputs());
            }
            AdvancedSlot::Array => {
                let t = index_types.get(next)?;
                if t.dtype == DType::Bool && t.ndim() > 0 {
                    for part in 0..t.ndim() {
                        let positions = TensorType::new(DType::Int64, vec![None]);
                        add_array(positions, ArraySource::Mask { part });
                    }
                } else if t.dtype.is_int() {
                    add_array((*t).clone(), ArraySource::Array);
                } else {
                    return None;
                }
            }
        }
        advanced.push(!matches!(
            slot,
            AdvancedSlot::Basic(IndexSlot::Slice { .. })
        ));
        next += slot.n_inputs();
    }
    if layout.axes.len() > x_ndim || next != index_types.len() {
        return None;
    }
    layout.axes.resize(x_ndim, None);
    let first = advanced.iter().position(|a| *a);
    let last = advanced.iter().rposition(|a| *a);
    let adjacent = match (first, last) {
        (Some(f), Some(l)) => advanced[f..=l].iter().all(|a| *a),
        _ => true,
    };
    if adjacent {
        // Every axis before the first array's is walked.
        layout.index_at = layout.axes.iter().position(Option::is_some).unwrap_or(0);
    }
    Some(layout)
}

/// Statements reading every index array's index at the arrays' common position (loop
/// variables `index_at..index_at + k`) into temp 2j, wrapping it if negative into temp
/// 2j + 1 and checking it against x's axis (buffer `x`; array j is buffer
/// `first_array + j`, from node input `first_input` + its value); their error messages;
/// and the index into x: walked axes at their output loop variables, the others at their
/// checked indices.
fn checked_indices(
    layout: &AdvancedLayout,
    x: usize,
    first_array: usize,
    first_input: usize,
) -> (Vec<Stmt>, Vec<String>, Vec<Index>) {
    let k = layout.index_ndim();
    let mut stmts = Vec::new();
    let mut errors = Vec::new();
    for (j, a) in layout.arrays.iter().enumerate() {
        let at = array_index(&a.ty, layout.index_at, k);
        let temps = (2 * j, 2 * j + 1);
        stmts.extend(checked_index(
            first_array + j,
            at,
            x,
            a.axis,
            temps,
            errors.len(),
        ));
        let (input, axis) = (first_input + a.value, a.axis);
        errors.push(match a.source {
            ArraySource::Array => format!(
                "index {{0}} (in index array input {input}) is out of range for axis {axis} of size {{1}}"
            ),
            ArraySource::Scalar => {
                format!("index {{0}} is out of range for axis {axis} of size {{1}}")
            }
            ArraySource::Mask { .. } => format!(
                "position {{0}} of boolean mask input {input} is out of range for axis {axis} of size {{1}}"
            ),
        });
    }
    let mut walked = 0;
    let x_index = layout
        .axes
        .iter()
        .map(|a| match a {
            Some(j) => Index::Temp(2 * j + 1),
            None => {
                walked += 1;
                Index::Var(layout.out_axis(walked - 1))
            }
        })
        .collect();
    (stmts, errors, x_index)
}

/// `out = x[index]` for an advanced index laid out by `layout` (x: the view its slices
/// leave): the output has x's walked axes with the arrays' common shape at `index_at`
/// (each array aligned to its right, broadcast along axes of static size 1). Every index
/// is wrapped if negative and checked against x's size on its axis before it addresses
/// memory, once per position of the common shape; inner loops copy the rest.
pub(super) fn take_kernel(
    layout: &AdvancedLayout,
    x: &TensorType,
    out: &TensorType,
) -> Option<Kernel> {
    let rank = layout.walked().len() + layout.index_ndim();
    if out.ndim() != rank || x.dtype != out.dtype || x.ndim() != layout.axes.len() {
        return None;
    }
    let mut in_types = vec![x];
    in_types.extend(layout.arrays.iter().map(|a| &a.ty));
    let (buffers, out_buf) = buffers_with_output(&in_types, out);
    let (mut body, errors, x_index) = checked_indices(layout, 0, 1, 1);
    let copy = Stmt::Store {
        buf: out_buf,
        index: (0..rank).map(Index::Var).collect(),
        value: Expr::Load {
            buf: 0,
            index: x_index,
        },
    };
    let split = layout.index_at + layout.index_ndim();
    let inner: Vec<_> = (split..rank).map(|d| (d, out_buf, d)).collect();
    body.extend(loops(&inner, vec![copy]));
    let outer: Vec<_> = (0..split).map(|d| (d, out_buf, d)).collect();
    Some(Kernel {
        name: "take".into(),
        buffers,
        body: loops(&outer, body),
        errors,
    })
}

/// `target[index] = y` (or `+= y`) for an advanced index laid out by `layout`: its buffers
/// are y, the index arrays and the target — the view of the output its slices leave (the
/// executor copies x into the output, or takes x over when the call owns it:
/// `jit::indexing::run_scatter`). The selected region (walked axes with the arrays' common
/// shape at `index_at`) is visited in order, every index wrapped and checked before it
/// addresses memory (repeated positions: the last write wins, increments accumulate, as
/// in the reference); y (cast to x's dtype) aligns with the region's last axes, its axes
/// of static size 1 broadcast.
pub(super) fn scatter_kernel(
    layout: &AdvancedLayout,
    mode: IncMode,
    x: &TensorType,
    y: &TensorType,
) -> Option<Kernel> {
    let walked = layout.walked();
    let k = layout.index_ndim();
    let region = walked.len() + k;
    if y.ndim() > region || x.ndim() != layout.axes.len() {
        return None;
    }
    let mut in_types = vec![y];
    in_types.extend(layout.arrays.iter().map(|a| &a.ty));
    let mut buffers = input_buffers(&in_types);
    let target = buffers.len();
    buffers.push(Buffer {
        name: "target".into(),
        dtype: x.dtype,
        rank: x.ndim(),
        role: Role::Output,
    });
    let (mut visit, errors, index) = checked_indices(layout, target, 1, 2);
    let value = value_element(0, y, region, x.dtype);
    let store = Stmt::Store {
        buf: target,
        value: written(mode, value, target, &index, x.dtype),
        index,
    };
    let split = layout.index_at + k;
    // A walked axis runs over the target's; an axis of the common shape over an array
    // that has it (one not broadcast there if any: the shape checks compare the others).
    let extent = |v: usize| {
        if (layout.index_at..split).contains(&v) {
            let d = v - layout.index_at;
            let has = |a: &&IndexArray| d + a.ty.ndim() >= k;
            let arrays = &layout.arrays;
            let wide = arrays
                .iter()
                .position(|a| has(&a) && !a.ty.broadcastable()[d + a.ty.ndim() - k]);
            let j = wide
                .or_else(|| arrays.iter().position(|a| has(&a)))
                .unwrap_or(0);
            (v, 1 + j, d + arrays[j].ty.ndim() - k)
        } else {
            let i = if v < layout.index_at { v } else { v - k };
            (v, target, walked[i])
        }
    };
    let inner: Vec<_> = (split..region).map(extent).collect();
    visit.extend(loops(&inner, vec![store]));
    let outer: Vec<_> = (0..split).map(extent).collect();
    Some(Kernel {
        name: format!("{}_scatter", format!("{mode:?}").to_lowercase()),
        buffers,
        body: loops(&outer, visit),
        errors,
    })
}

/// The written value's element (buffer `buf`, of type `y`) at the region position walked
/// by loop variables `0..rank`, cast to the target's `dtype`.
fn value_element(buf: usize, y: &TensorType, rank: usize, dtype: DType) -> Expr {
    Expr::apply(
        ScalarOp::Cast(dtype),
        vec![Expr::Load {
            buf,
            index: array_index(y, 0, rank),
        }],
        dtype,
    )
}

/// What a write stores at `buf[index]`: the value (set), or the element plus it (inc).
fn written(mode: IncMode, value: Expr, buf: usize, index: &[Index], dtype: DType) -> Expr {
    match mode {
        IncMode::Set => value,
        IncMode::Inc => Expr::apply(
            ScalarOp::Add,
            vec![
                Expr::Load {
                    buf,
                    index: index.to_vec(),
                },
                value,
            ],
            dtype,
        ),
    }
}

/// Loops `for var in 0..buf.shape[dim]` around `body`, outermost first.
fn loops(specs: &[(usize, usize, usize)], body: Vec<Stmt>) -> Vec<Stmt> {
    specs.iter().rev().fold(body, |body, (var, buf, dim)| {
        vec![Stmt::For {
            var: *var,
            buf: *buf,
            dim: *dim,
            parallel: false,
            body,
        }]
    })
}

/// Statements reading the index `idx[at]` (buffer `idx`) as temp `raw`, wrapping it if
/// negative into temp `wrapped`, and failing with `error` unless `wrapped` addresses a
/// position of buffer `x` along `axis`.
fn checked_index(
    idx: usize,
    at: Vec<Index>,
    x: usize,
    axis: usize,
    (raw, wrapped): (usize, usize),
    error: usize,
) -> Vec<Stmt> {
    let size = Expr::Dim { buf: x, dim: axis };
    let out_of_range = |cond: Expr| Stmt::If {
        cond,
        then: vec![Stmt::Fail {
            error,
            values: vec![Expr::Temp(raw), size.clone()],
        }],
        otherwise: Vec::new(),
    };
    let negative = Expr::apply(
        ScalarOp::Lt,
        vec![Expr::Temp(raw), Expr::int(0)],
        DType::Bool,
    );
    let wrap = Expr::apply(
        ScalarOp::Add,
        vec![Expr::Temp(raw), size.clone()],
        DType::Int64,
    );
    vec![
        Stmt::Let {
            temp: raw,
            dtype: DType::Int64,
            value: Expr::apply(
                ScalarOp::Cast(DType::Int64),
                vec![Expr::Load {
                    buf: idx,
                    index: at,
                }],
                DType::Int64,
            ),
        },
        Stmt::Let {
            temp: wrapped,
            dtype: DType::Int64,
            value: Expr::apply(
                ScalarOp::Switch,
                vec![negative, wrap, Expr::Temp(raw)],
                DType::Int64,
            ),
        },
        out_of_range(Expr::apply(
            ScalarOp::Lt,
            vec![Expr::Temp(wrapped), Expr::int(0)],
            DType::Bool,
        )),
        out_of_range(Expr::apply(
            ScalarOp::Ge,
            vec![Expr::Temp(wrapped), size.clone()],
            DType::Bool,
        )),
    ]
}

/// The index of a value of type `t` within a shape of `k` axes walked by variables
/// `first..first + k` (an index array within the arrays' common shape, a written value
/// within its region): aligned to the right, its axes of static size 1 at index 0 (they
/// broadcast).
fn array_index(t: &TensorType, first: usize, k: usize) -> Vec<Index> {
    let offset = first + k - t.ndim();
    t.broadcastable()
        .iter()
        .enumerate()
        .map(|(d, b)| {
            if *b {
                Index::Zero
            } else {
                Index::Var(offset + d)
            }
        })
        .collect()
}

/// The kernel of `x[basic index] = y` (or `+= y`): its buffers are y and the region of
/// the output being written (a view the executor makes after copying x, or of x itself
/// when the call owns it: `jit::run_region_write`), and it writes y (cast to x's dtype,
/// aligned with the region's last axes, its axes of static size 1 broadcast) into every
/// element of the region, or adds it. The region has one axis per slice and one per
/// axis of x after the indexed ones.
pub(super) fn region_write_kernel(
    slots: &[IndexSlot],
    mode: IncMode,
    x: &TensorType,
    y: &TensorType,
) -> Option<Kernel> {
    let slices = slots
        .iter()
        .filter(|s| matches!(s, IndexSlot::Slice { .. }))
        .count();
    let rank = slices + x.ndim().checked_sub(slots.len())?;
    if y.ndim() > rank {
        return None;
    }
    let buffers = vec![
        Buffer {
            name: "value".into(),
            dtype: y.dtype,
            rank: y.ndim(),
            role: Role::Input,
        },
        Buffer {
            name: "region".into(),
            dtype: x.dtype,
            rank,
            role: Role::Output,
        },
    ];
    let (value_buf, region_buf) = (0, 1);
    let all: Vec<Index> = (0..rank).map(Index::Var).collect();
    let value = value_element(value_buf, y, rank, x.dtype);
    let value = written(mode, value, region_buf, &all, x.dtype);
    let body = nest(
        &vec![region_buf; rank],
        vec![Stmt::Store {
            buf: region_buf,
            index: all,
            value,
        }],
    );
    Some(Kernel {
        name: format!("{}_region", format!("{mode:?}").to_lowercase()),
        buffers,
        body,
        errors: Vec::new(),
    })
}

/// Whether a basic index holds only integers and full slices: the only kind whose result
/// shape follows from x's (no slice bounds to resolve), so a scan body can copy it.
pub(crate) fn integers_and_full_slices(slots: &[IndexSlot]) -> bool {
    slots
        .iter()
        .all(|s| matches!(s, IndexSlot::Index) || *s == IndexSlot::FULL)
}

/// For a basic index of integers and full slices on `x` (buffer 0), the statements
/// reading each integer (buffers `first_index..`) wrapped and checked against its axis,
/// and x's index: the integer's temporary on an indexed axis, the next loop variable
/// elsewhere.
fn integer_positions(
    slots: &[IndexSlot],
    x: &TensorType,
    first_index: usize,
    errors: &mut Vec<String>,
) -> (Vec<Stmt>, Vec<Index>) {
    let mut stmts = Vec::new();
    let mut index = Vec::new();
    let (mut var, mut k) = (0, 0);
    for axis in 0..x.ndim() {
        match slots.get(axis) {
            Some(IndexSlot::Index) => {
                errors.push(format!(
                    "index {{0}} is out of range for axis {axis} of size {{1}}"
                ));
                let temps = (2 * k, 2 * k + 1);
                let read = checked_index(first_index + k, vec![], 0, axis, temps, errors.len() - 1);
                stmts.extend(read);
                index.push(Index::Temp(temps.1));
                k += 1;
            }
            Some(IndexSlot::Slice { .. }) | None => {
                index.push(Index::Var(var));
                var += 1;
            }
        }
    }
    (stmts, index)
}

/// `out = x[slots]` as a copy, for integers and full slices only (`integers_and_full_slices`):
/// in a scan body, where views cannot be invoked, basic indexing is this kernel. Buffers:
/// x, the integer indices (scalars), out.
pub(crate) fn basic_take_kernel(
    slots: &[IndexSlot],
    x: &TensorType,
    indices: &[&TensorType],
    out: &TensorType,
) -> Option<Kernel> {
    if !integers_and_full_slices(slots) || slots.len() > x.ndim() {
        return None;
    }
    let ins: Vec<&TensorType> = std::iter::once(x).chain(indices.iter().copied()).collect();
    let (buffers, out_buf) = buffers_with_output(&ins, out);
    let mut errors = Vec::new();
    let (mut body, x_index) = integer_positions(slots, x, 1, &mut errors);
    let all: Vec<Index> = (0..out.ndim()).map(Index::Var).collect();
    body.extend(nest(
        &vec![out_buf; out.ndim()],
        vec![Stmt::Store {
            buf: out_buf,
            index: all,
            value: Expr::Load {
                buf: 0,
                index: x_index,
            },
        }],
    ));
    Some(
        Kernel {
            name: "take".into(),
            buffers,
            body,
            errors,
        }
        .with_shape_checks(),
    )
}

/// `out = x` with `x[slots] = / += y`, for integers and full slices only: in a scan body
/// the write is this kernel (x copied, then the region written). Buffers: x, y, the
/// integer indices (scalars), out. y (cast to x's dtype) aligns with the region's last
/// axes, its axes of static size 1 broadcast.
pub(crate) fn basic_update_kernel(
    slots: &[IndexSlot],
    mode: IncMode,
    x: &TensorType,
    y: &TensorType,
    indices: &[&TensorType],
) -> Option<Kernel> {
    if !integers_and_full_slices(slots) || slots.len() > x.ndim() {
        return None;
    }
    let region_rank = x.ndim() - slots.iter().filter(|s| **s == IndexSlot::Index).count();
    if y.ndim() > region_rank {
        return None;
    }
    let ins: Vec<&TensorType> = [x, y].into_iter().chain(indices.iter().copied()).collect();
    let (buffers, out_buf) = buffers_with_output(&ins, x);
    let all: Vec<Index> = (0..x.ndim()).map(Index::Var).collect();
    let mut body = nest(
        &vec![out_buf; x.ndim()],
        vec![Stmt::Store {
            buf: out_buf,
            index: all.clone(),
            value: Expr::Load { buf: 0, index: all },
        }],
    );
    let mut errors = Vec::new();
    let (checks, out_index) = integer_positions(slots, x, 2, &mut errors);
    body.extend(checks);
    // The region: one loop per axis not addressed by an integer, over out's size there.
    let region_axes: Vec<usize> = (0..x.ndim())
        .filter(|a| slots.get(*a) != Some(&IndexSlot::Index))
        .collect();
    let value = value_element(1, y, region_rank, x.dtype);
    let value = written(mode, value, out_buf, &out_index, x.dtype);
    let store = vec![Stmt::Store {
        buf: out_buf,
        index: out_index,
        value,
    }];
    let region = region_axes
        .iter()
        .enumerate()
        .rev()
        .fold(store, |body, (var, axis)| {
            vec![Stmt::For {
                var,
                buf: out_buf,
                dim: *axis,
                parallel: false,
                body,
            }]
        });
    body.extend(region);
    Some(
        Kernel {
            name: format!("{}_at", format!("{mode:?}").to_lowercase()),
            buffers,
            body,
            errors,
        }
        .with_shape_checks(),
    )
}

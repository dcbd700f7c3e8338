//! Indexing builders: `x.get(idx![...])`, `x.set(idx![...], y)`, `x.inc(idx![...], y)`.
//!
//! Owns: `Idx` (one entry of an index) and the `idx!` macro. Entries have NumPy meaning:
//! `a..b;s` is the slice `a:b:s` (so `5..1;-1` selects 5, 4, 3, 2 and `..;-1` reverses),
//! an integer removes a dimension, an integer array or boolean mask variable is an
//! advanced index. Basic indices build `Subtensor`, any array makes it `AdvancedSubtensor`.

use std::ops::{Range, RangeFrom, RangeFull, RangeTo};

use super::{var_or_invalid, Operand};
use crate::dtype::{promote, DType};
use crate::error::{GraphError, Result};
use crate::ops::{AdvancedSlot, IncMode, IndexSlot, Op};
use crate::var::Var;

/// One entry of an index.
#[derive(Clone, Debug)]
pub enum Idx {
    /// An integer (literal or 0-d integer variable): selects one position, removing the
    /// dimension.
    At(Operand),
    /// A slice `start:stop:step`; missing parts take NumPy's defaults.
    Slice {
        start: Option<Operand>,
        stop: Option<Operand>,
        step: Option<Operand>,
    },
    /// An integer array or a boolean mask (advanced indexing).
    Array(Var),
    /// A malformed entry (e.g. a step on an integer index).
    Invalid(String),
}

impl Idx {
    /// The full slice `:`.
    ///
    /// ```
    /// use tensorlift_ir::{idx, matrix, DType, Idx};
    /// let m = matrix("m", DType::Float64);
    /// // m[:, 0], spelled out: the same as idx![.., 0].
    /// assert_eq!(m.get(vec![Idx::full(), Idx::from(0)]).ty(), m.get(idx![.., 0]).ty());
    /// ```
    pub fn full() -> Idx {
        Idx::Slice {
            start: None,
            stop: None,
            step: None,
        }
    }

    /// A slice with optional symbolic or literal parts.
    ///
    /// ```
    /// use tensorlift_ir::{vector, DType, Idx};
    /// let x = vector("x", DType::Float64);
    /// // x[1::-1]: a slice with a start and a step.
    /// let s = Idx::slice(Some(1.into()), None, Some((-1).into()));
    /// assert_eq!(x.get(vec![s]).ndim(), 1);
    /// ```
    pub fn slice(start: Option<Operand>, stop: Option<Operand>, step: Option<Operand>) -> Idx {
        Idx::Slice { start, stop, step }
    }

    /// Sets the step of a slice (used by `idx![a..b; step]`).
    ///
    /// ```
    /// use tensorlift_ir::{vector, DType, Idx};
    /// let x = vector("x", DType::Float64);
    /// assert_eq!(x.get(vec![Idx::full().with_step(2)]).ndim(), 1); // x[::2]
    /// // A step on an integer index is an error the result carries.
    /// assert!(x.get(vec![Idx::from(0).with_step(2)]).check().is_err());
    /// ```
    pub fn with_step(self, step: impl Into<Operand>) -> Idx {
        match self {
            Idx::Slice { start, stop, .. } => Idx::Slice {
                start,
                stop,
                step: Some(step.into()),
            },
            other => Idx::Invalid(format!("a step only applies to a slice, not to {other:?}")),
        }
    }
}

/// Builds a `Vec<Idx>` with NumPy slice meaning: `idx![1, 2..;-1, .., i]`; a literal
/// array is an advanced index (`idx![[0, 2, -1], ..]` is `x[[0, 2, -1], :]`).
///
/// ```
/// use tensorlift_ir::{idx, matrix, DType};
/// let x = matrix("x", DType::Float64);
/// assert_eq!(x.get(idx![1.., ..;-1]).ndim(), 2);
/// assert_eq!(x.get(idx![0]).ndim(), 1);
/// assert_eq!(x.get(idx![[0, 2, -1], 1]).ndim(), 1);
/// ```
#[macro_export]
macro_rules! idx {
    (@entry $r:expr ; $s:expr) => {{
        // `5..1;-1` is a valid NumPy slice, not an empty Rust range.
        #[allow(clippy::reversed_empty_ranges)]
        let entry = $crate::Idx::from($r);
        entry.with_step($s)
    }};
    (@entry $r:expr) => {{
        #[allow(clippy::reversed_empty_ranges)]
        let entry = $crate::Idx::from($r);
        entry
    }};
    ($($r:expr $(; $s:expr)?),* $(,)?) => { vec![$( $crate::idx!(@entry $r $(; $s)?) ),*] };
}

macro_rules! idx_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Idx {
            fn from(i: $t) -> Idx {
                Idx::At(Operand::Lit(crate::Literal::Int(i as i64)))
            }
        }
        impl From<Range<$t>> for Idx {
            fn from(r: Range<$t>) -> Idx {
                Idx::slice(Some((r.start as i64).into()), Some((r.end as i64).into()), None)
            }
        }
        impl From<RangeFrom<$t>> for Idx {
            fn from(r: RangeFrom<$t>) -> Idx {
                Idx::slice(Some((r.start as i64).into()), None, None)
            }
        }
        impl From<RangeTo<$t>> for Idx {
            fn from(r: RangeTo<$t>) -> Idx {
                Idx::slice(None, Some((r.end as i64).into()), None)
            }
        }
    )*};
}
idx_from_int!(i32, i64, isize, usize);

/// A literal integer array index: `idx![[0, 2, -1]]` is NumPy's `x[[0, 2, -1]]`.
macro_rules! idx_from_int_array {
    ($($t:ty),*) => {$(
        impl<const N: usize> From<[$t; N]> for Idx {
            fn from(positions: [$t; N]) -> Idx {
                Idx::positions(positions.iter().map(|p| *p as i64).collect())
            }
        }
        impl From<Vec<$t>> for Idx {
            fn from(positions: Vec<$t>) -> Idx {
                Idx::positions(positions.iter().map(|p| *p as i64).collect())
            }
        }
        impl From<&[$t]> for Idx {
            fn from(positions: &[$t]) -> Idx {
                Idx::positions(positions.iter().map(|p| *p as i64).collect())
            }
        }
    )*};
}
idx_from_int_array!(i32, i64, isize, usize);

/// A literal boolean mask: `idx![[true, false, true]]`.
impl<const N: usize> From<[bool; N]> for Idx {
    fn from(mask: [bool; N]) -> Idx {
        match crate::TensorData::from_vec(&[N], mask.to_vec()) {
            Ok(d) => Idx::Array(Var::constant(d)),
            Err(e) => Idx::Invalid(e.to_string()),
        }
    }
}

impl Idx {
    /// An integer array index of constant positions.
    fn positions(positions: Vec<i64>) -> Idx {
        match crate::TensorData::from_vec(&[positions.len()], positions) {
            Ok(d) => Idx::Array(Var::constant(d)),
            Err(e) => Idx::Invalid(e.to_string()),
        }
    }
}

impl From<RangeFull> for Idx {
    fn from(_: RangeFull) -> Idx {
        Idx::full()
    }
}

impl From<&Var> for Idx {
    fn from(v: &Var) -> Idx {
        if v.ndim() == 0 && v.dtype().is_int() {
            Idx::At(Operand::Var(v.clone()))
        } else {
            Idx::Array(v.clone())
        }
    }
}

impl From<Var> for Idx {
    fn from(v: Var) -> Idx {
        Idx::from(&v)
    }
}

fn scalar_index(op: Operand) -> Result<Var> {
    match op {
        Operand::Lit(l) => Ok(Var::literal(l, DType::Int64)),
        Operand::Var(v) => {
            v.check()?;
            Ok(v)
        }
    }
}

/// Splits an index into op slots and the index inputs that follow `x` (and `y`).
fn lower_index(index: Vec<Idx>) -> Result<(Vec<AdvancedSlot>, Vec<Var>)> {
    let mut slots = Vec::with_capacity(index.len());
    let mut inputs = Vec::new();
    for entry in index {
        match entry {
            Idx::At(i) => {
                inputs.push(scalar_index(i)?);
                slots.push(AdvancedSlot::Basic(IndexSlot::Index));
            }
            Idx::Slice { start, stop, step } => {
                let flags = (start.is_some(), stop.is_some(), step.is_some());
                for part in [start, stop, step].into_iter().flatten() {
                    inputs.push(scalar_index(part)?);
                }
                slots.push(AdvancedSlot::Basic(IndexSlot::Slice {
                    start: flags.0,
                    stop: flags.1,
                    step: flags.2,
                }));
            }
            Idx::Array(a) => {
                a.check()?;
                inputs.push(a);
                slots.push(AdvancedSlot::Array);
            }
            Idx::Invalid(m) => return Err(GraphError::op("Subtensor", m)),
        }
    }
    Ok((slots, inputs))
}

fn basic_slots(slots: &[AdvancedSlot]) -> Option<Vec<IndexSlot>> {
    slots
        .iter()
        .map(|s| match s {
            AdvancedSlot::Basic(b) => Some(*b),
            AdvancedSlot::Array => None,
        })
        .collect()
}

impl Var {
    /// `x[index]` with NumPy semantics.
    ///
    /// ```
    /// use tensorlift_ir::{idx, matrix, vector, DType};
    /// let m = matrix("m", DType::Float64);
    /// assert_eq!(m.get(idx![0]).ndim(), 1); // an integer drops its axis
    /// assert_eq!(m.get(idx![1.., ..;-1]).ndim(), 2); // m[1:, ::-1]
    /// let rows = vector("rows", DType::Int64);
    /// assert_eq!(m.get(idx![&rows]).ndim(), 2); // advanced: the rows listed
    /// assert_eq!(m.get(idx![[0, 2], 1]).ndim(), 1); // a literal index array
    /// ```
    pub fn get(&self, index: Vec<Idx>) -> Var {
        var_or_invalid((|| {
            self.check()?;
            let (slots, values) = lower_index(index)?;
            let mut inputs = vec![self.clone()];
            inputs.extend(values);
            Ok(match basic_slots(&slots) {
                Some(basic) => Var::apply1(Op::Subtensor(basic), inputs),
                None => Var::apply1(Op::AdvancedSubtensor(slots), inputs),
            })
        })())
    }

    /// A copy of `x` with `x[index] = value` (value broadcast per DESIGN §3 and cast to
    /// x's dtype; with repeated advanced indices the last write wins).
    ///
    /// ```
    /// use tensorlift_ir::{idx, vector, DType};
    /// let x = vector("x", DType::Float64);
    /// let y = x.set(idx![..2], 0.0); // a copy of x with x[:2] = 0
    /// assert_eq!(y.ty(), x.ty());
    /// ```
    pub fn set(&self, index: Vec<Idx>, value: impl Into<Operand>) -> Var {
        self.write(index, value.into(), IncMode::Set)
    }

    /// A copy of `x` with `x[index] += value` (repeated advanced indices accumulate).
    ///
    /// ```
    /// use tensorlift_ir::{idx, vector, DType};
    /// let (x, i) = (vector("x", DType::Float64), vector("i", DType::Int64));
    /// let y = x.inc(idx![&i], 1.0); // repeated indices add up, as np.add.at
    /// assert_eq!(y.ty(), x.ty());
    /// ```
    pub fn inc(&self, index: Vec<Idx>, value: impl Into<Operand>) -> Var {
        self.write(index, value.into(), IncMode::Inc)
    }

    fn write(&self, index: Vec<Idx>, value: Operand, mode: IncMode) -> Var {
        let name = format!("{mode:?}Subtensor");
        var_or_invalid((|| {
            self.check()?;
            let value = match value {
                Operand::Lit(l) => Var::literal(l, self.dtype()),
                Operand::Var(v) => {
                    v.check()?;
                    if mode == IncMode::Inc && promote(self.dtype(), v.dtype()) != self.dtype() {
                        return Err(GraphError::op(
                            &name,
                            format!(
                                "cannot add a {} value into a {} tensor without losing \
                                 precision; cast one of them first",
                                v.dtype(),
                                self.dtype()
                            ),
                        ));
                    }
                    v.cast(self.dtype())
                }
            };
            let (slots, values) = lower_index(index)?;
            let mut inputs = vec![self.clone(), value];
            inputs.extend(values);
            Ok(match basic_slots(&slots) {
                Some(basic) => Var::apply1(Op::IncSubtensor { slots: basic, mode }, inputs),
                None => Var::apply1(Op::AdvancedIncSubtensor { slots, mode }, inputs),
            })
        })())
    }
}

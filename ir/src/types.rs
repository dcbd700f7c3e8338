//! Tensor types: dtype plus static shape, and the static broadcasting rule (DESIGN §3).
//!
//! Owns: `TensorType`, its printing, the Elemwise output-shape rule and the "is this type at
//! least as specific as that one" relation used by replace and clone_replace. A dimension is
//! broadcastable iff its static size is 1; broadcastable is derived, never stored. A type
//! also has a storage `Format`: dense arrays, or compressed sparse rows (a matrix whose
//! values only the sparse ops read; every other op refuses it at graph-building time).

use std::fmt;

use crate::dtype::DType;
use crate::error::{GraphError, Result};

/// How a value of a type is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// An n-dimensional array (`ndarray`): what every op reads.
    #[default]
    Dense,
    /// A compressed-sparse-row matrix (`CsrMatrix`): read only by the sparse ops.
    Csr,
}

/// The type of a symbolic tensor: element dtype, one optional static size per dimension
/// and the storage format.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Vec<Option<usize>>,
    pub format: Format,
}

impl TensorType {
    pub fn new(dtype: DType, shape: impl Into<Vec<Option<usize>>>) -> Self {
        TensorType {
            dtype,
            shape: shape.into(),
            format: Format::Dense,
        }
    }

    /// A compressed-sparse-row matrix type.
    pub fn csr(dtype: DType, shape: [Option<usize>; 2]) -> Self {
        TensorType {
            dtype,
            shape: shape.to_vec(),
            format: Format::Csr,
        }
    }

    /// Whether values of this type are sparse matrices.
    pub fn is_sparse(&self) -> bool {
        self.format == Format::Csr
    }

    /// A 0-d type.
    pub fn scalar(dtype: DType) -> Self {
        TensorType::new(dtype, vec![])
    }

    /// A type given PyTensor-style: static shape plus explicit broadcastable flags. The two
    /// must agree, because broadcastable means exactly "static size 1": `shape=(1,)` with
    /// `broadcastable=(false,)` is rejected, as is `broadcastable=(true,)` with a size ≠ 1.
    /// A flag `true` with an unknown size fixes the size to 1.
    pub fn with_broadcastable(
        dtype: DType,
        shape: &[Option<usize>],
        broadcastable: &[bool],
    ) -> Result<Self> {
        if shape.len() != broadcastable.len() {
            return Err(GraphError::Type(format!(
                "shape has {} dimensions but broadcastable has {}",
                shape.len(),
                broadcastable.len()
            )));
        }
        let mut out = Vec::with_capacity(shape.len());
        for (axis, (&size, &bcast)) in shape.iter().zip(broadcastable).enumerate() {
            match (size, bcast) {
                (Some(1), false) => {
                    return Err(GraphError::Type(format!(
                        "dimension {axis} has static size 1 but broadcastable=false; in \
                         tensorlift a dimension is broadcastable exactly when its static size \
                         is 1, so give shape None for a non-broadcastable dimension of \
                         unknown size"
                    )))
                }
                (Some(n), true) if n != 1 => {
                    return Err(GraphError::Type(format!(
                        "dimension {axis} has static size {n} but broadcastable=true; only a \
                         dimension of size 1 can broadcast"
                    )))
                }
                (_, true) => out.push(Some(1)),
                (s, false) => out.push(s),
            }
        }
        Ok(TensorType::new(dtype, out))
    }

    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Derived: a dimension broadcasts iff its static size is 1.
    pub fn broadcastable(&self) -> Vec<bool> {
        self.shape.iter().map(|s| *s == Some(1)).collect()
    }

    /// Number of elements when every size is known.
    pub fn static_size(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(1usize, |acc, s| s.and_then(|n| acc.checked_mul(n)))
    }

    /// True when a value of type `self` is always a valid value of type `other`: same
    /// dtype and ndim, and every size `other` knows is known equal here.
    pub fn is_subtype_of(&self, other: &TensorType) -> bool {
        self.dtype == other.dtype
            && self.format == other.format
            && self.ndim() == other.ndim()
            && self
                .shape
                .iter()
                .zip(&other.shape)
                .all(|(mine, theirs)| theirs.is_none() || mine == theirs)
    }

    /// Why the two types can never describe the same value (other dtype, other ndim or
    /// conflicting known sizes), or `None` when they are compatible.
    pub fn incompatibility(&self, other: &TensorType) -> Option<String> {
        if self.dtype != other.dtype {
            return Some(format!("dtypes differ ({} vs {})", self.dtype, other.dtype));
        }
        if self.format != other.format {
            return Some(format!(
                "formats differ ({:?} vs {:?})",
                self.format, other.format
            ));
        }
        if self.ndim() != other.ndim() {
            return Some(format!(
                "numbers of dimensions differ ({} vs {})",
                self.ndim(),
                other.ndim()
            ));
        }
        for (axis, (a, b)) in self.shape.iter().zip(&other.shape).enumerate() {
            if let (Some(a), Some(b)) = (a, b) {
                if a != b {
                    return Some(format!("dimension {axis} has static size {a} vs {b}"));
                }
            }
        }
        None
    }

    /// The same type with another dtype.
    pub fn with_dtype(&self, dtype: DType) -> TensorType {
        TensorType {
            dtype,
            shape: self.shape.clone(),
            format: self.format,
        }
    }

    /// PyTensor's name for the rank: Scalar, Vector, Matrix, Tensor3, ...
    pub fn rank_name(&self) -> String {
        match self.ndim() {
            0 => "Scalar".into(),
            1 => "Vector".into(),
            2 => "Matrix".into(),
            n => format!("Tensor{n}"),
        }
    }
}

/// Formats a static shape as `(?, 3)`; a 1-tuple keeps its comma: `(?,)`.
pub fn format_shape(shape: &[Option<usize>]) -> String {
    let parts: Vec<String> = shape
        .iter()
        .map(|s| s.map_or("?".to_string(), |n| n.to_string()))
        .collect();
    match parts.len() {
        1 => format!("({},)", parts[0]),
        _ => format!("({})", parts.join(", ")),
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.format {
            Format::Dense => self.rank_name(),
            Format::Csr => "Csr".to_string(),
        };
        write!(
            f,
            "{}({}, shape={})",
            name,
            self.dtype,
            format_shape(&self.shape)
        )
    }
}

/// Static output shape of an Elemwise over inputs of equal ndim (DESIGN §3): per dimension,
/// a known size ≠ 1 wins (two different ones are an error naming both inputs); all 1 gives
/// 1; otherwise unknown.
pub fn elemwise_shape(op: &str, shapes: &[&[Option<usize>]]) -> Result<Vec<Option<usize>>> {
    let ndim = shapes.first().map_or(0, |s| s.len());
    if let Some((i, s)) = shapes.iter().enumerate().find(|(_, s)| s.len() != ndim) {
        return Err(GraphError::op(
            op,
            format!(
                "input {i} has {} dimensions but input 0 has {ndim}; inputs of an Elemwise \
                 must have the same number of dimensions (use expand_dims)",
                s.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(ndim);
    for axis in 0..ndim {
        let mut known: Option<(usize, usize)> = None; // (input, size ≠ 1)
        let mut all_one = true;
        for (i, s) in shapes.iter().enumerate() {
            match s[axis] {
                Some(1) => {}
                Some(n) => {
                    all_one = false;
                    match known {
                        Some((j, m)) if m != n => {
                            return Err(GraphError::op(
                                op,
                                format!(
                                    "dimension {axis} has static size {m} in input {j} and {n} \
                                     in input {i}; they cannot broadcast"
                                ),
                            ))
                        }
                        _ => known = Some((i, n)),
                    }
                }
                None => all_one = false,
            }
        }
        out.push(match known {
            Some((_, n)) => Some(n),
            None if all_one => Some(1),
            None => None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contradictory_broadcastable_is_rejected_with_reason() {
        let err = TensorType::with_broadcastable(DType::Float64, &[Some(1)], &[false]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("static size 1"), "{msg}");
        assert!(msg.contains("broadcastable=false"), "{msg}");
        let ok =
            TensorType::with_broadcastable(DType::Float64, &[None, None], &[true, false]).unwrap();
        assert_eq!(ok.shape, vec![Some(1), None]);
        assert_eq!(ok.broadcastable(), vec![true, false]);
    }

    #[test]
    fn prints_like_pytensor() {
        let t = TensorType::new(DType::Float64, vec![None]);
        assert_eq!(t.to_string(), "Vector(float64, shape=(?,))");
        let t = TensorType::new(DType::Int8, vec![None, Some(3)]);
        assert_eq!(t.to_string(), "Matrix(int8, shape=(?, 3))");
        assert_eq!(
            TensorType::scalar(DType::Bool).to_string(),
            "Scalar(bool, shape=())"
        );
    }

    #[test]
    fn elemwise_shape_rule() {
        let s = elemwise_shape("Add", &[&[None, Some(1)], &[Some(1), Some(1)]]).unwrap();
        assert_eq!(s, vec![None, Some(1)]);
        let s = elemwise_shape("Add", &[&[Some(3), None], &[None, Some(4)]]).unwrap();
        assert_eq!(s, vec![Some(3), Some(4)]);
        let err = elemwise_shape("Add", &[&[Some(3)], &[Some(4)]]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("Add:"), "{msg}");
        assert!(msg.contains("3") && msg.contains("4"), "{msg}");
    }

    #[test]
    fn subtype_relation() {
        let vague = TensorType::new(DType::Float64, vec![None]);
        let exact = TensorType::new(DType::Float64, vec![Some(1)]);
        assert!(exact.is_subtype_of(&vague));
        assert!(!vague.is_subtype_of(&exact));
        assert!(vague.incompatibility(&exact).is_none());
        let other = TensorType::new(DType::Float32, vec![None]);
        assert!(vague.incompatibility(&other).unwrap().contains("dtypes"));
    }
}

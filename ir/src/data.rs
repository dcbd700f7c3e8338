//! Tensor data containers: one `ndarray` array per dtype.
//!
//! Owns: `TensorData` (the value of a constant in a graph, and the value the runtime passes
//! around: a dense array of any dtype, or a `CsrMatrix`), the `Element` trait tying Rust element types to `DType`, and conversions in and
//! out of ndarray. Must not: do arithmetic (that is the runtime's job). Arrays are `ArcArray`
//! so cloning a value is O(1).

use std::fmt;

use ndarray::{ArcArray, Array, ArrayD, ArrayViewD, Dimension, IxDyn};

use crate::dtype::{DType, Literal};
use crate::error::{GraphError, Result};
pub use crate::sparse::CsrMatrix;

/// An n-dimensional array of any supported dtype, shared by reference count.
#[derive(Clone)]
pub enum TensorData {
    Bool(ArcArray<bool, IxDyn>),
    Int8(ArcArray<i8, IxDyn>),
    Int16(ArcArray<i16, IxDyn>),
    Int32(ArcArray<i32, IxDyn>),
    Int64(ArcArray<i64, IxDyn>),
    UInt8(ArcArray<u8, IxDyn>),
    Float32(ArcArray<f32, IxDyn>),
    Float64(ArcArray<f64, IxDyn>),
    /// A sparse matrix (the value of a `Format::Csr` type).
    Csr(std::sync::Arc<CsrMatrix>),
}

/// Runs `$body` with `$a` bound to the inner `ArcArray` of a dense value, whatever its
/// element type, or `$sparse` with `$m` bound to the `CsrMatrix` of a sparse one.
#[macro_export]
macro_rules! with_dense_data {
    ($data:expr, $a:ident => $body:expr, $m:ident => $sparse:expr) => {
        match $data {
            $crate::TensorData::Bool($a) => $body,
            $crate::TensorData::Int8($a) => $body,
            $crate::TensorData::Int16($a) => $body,
            $crate::TensorData::Int32($a) => $body,
            $crate::TensorData::Int64($a) => $body,
            $crate::TensorData::UInt8($a) => $body,
            $crate::TensorData::Float32($a) => $body,
            $crate::TensorData::Float64($a) => $body,
            $crate::TensorData::Csr($m) => $sparse,
        }
    };
}

/// Runs `$body` with `$a` bound to the inner `ArcArray`, whatever its element type; a
/// sparse matrix is seen as its dense form (type checking keeps sparse values away from
/// dense ops, so this is a fallback, never a hot path).
#[macro_export]
macro_rules! with_tensor_data {
    ($data:expr, $a:ident => $body:expr) => {
        $crate::with_dense_data!($data, $a => $body, m => {
            let dense = m.to_dense();
            $crate::with_dense_data!(&dense, $a => $body, _m => {
                unreachable!("CsrMatrix::to_dense returns a dense array")
            })
        })
    };
}

/// A Rust element type that a tensor can hold.
pub trait Element: Copy + Send + Sync + PartialEq + fmt::Debug + Default + 'static {
    const DTYPE: DType;
    fn wrap(array: ArcArray<Self, IxDyn>) -> TensorData;
    fn unwrap_ref(data: &TensorData) -> Option<&ArcArray<Self, IxDyn>>;
    fn unwrap_owned(data: TensorData) -> Option<ArcArray<Self, IxDyn>>;
    /// The element as a literal (exact for every dtype but int64 beyond 2^53, which stays
    /// exact as `Literal::Int`).
    fn to_literal(self) -> Literal;
}

macro_rules! element {
    ($t:ty, $variant:ident, $lit:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn wrap(array: ArcArray<Self, IxDyn>) -> TensorData {
                TensorData::$variant(array)
            }
            fn unwrap_ref(data: &TensorData) -> Option<&ArcArray<Self, IxDyn>> {
                match data {
                    TensorData::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn unwrap_owned(data: TensorData) -> Option<ArcArray<Self, IxDyn>> {
                match data {
                    TensorData::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn to_literal(self) -> Literal {
                let f: fn($t) -> Literal = $lit;
                f(self)
            }
        }

        /// A 0-d value (`constant(0.0)`, `f.call(&[2.5.into()])`).
        impl From<$t> for TensorData {
            fn from(v: $t) -> Self {
                TensorData::scalar(v)
            }
        }
    };
}
element!(bool, Bool, Literal::Bool);
element!(i8, Int8, |v| Literal::Int(v as i64));
element!(i16, Int16, |v| Literal::Int(v as i64));
element!(i32, Int32, |v| Literal::Int(v as i64));
element!(i64, Int64, Literal::Int);
element!(u8, UInt8, |v| Literal::Int(v as i64));
element!(f32, Float32, |v| Literal::Float(v as f64));
element!(f64, Float64, Literal::Float);

impl TensorData {
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::Bool(_) => DType::Bool,
            TensorData::Int8(_) => DType::Int8,
            TensorData::Int16(_) => DType::Int16,
            TensorData::Int32(_) => DType::Int32,
            TensorData::Int64(_) => DType::Int64,
            TensorData::UInt8(_) => DType::UInt8,
            TensorData::Float32(_) => DType::Float32,
            TensorData::Float64(_) => DType::Float64,
            TensorData::Csr(m) => m.dtype(),
        }
    }

    pub fn shape(&self) -> &[usize] {
        with_dense_data!(self, a => a.shape(), m => m.shape())
    }

    /// The most specific type of this value: its format, dtype and every size.
    pub fn exact_type(&self) -> crate::types::TensorType {
        let shape: Vec<Option<usize>> = self.shape().iter().map(|s| Some(*s)).collect();
        match self {
            TensorData::Csr(_) => crate::types::TensorType::csr(self.dtype(), [shape[0], shape[1]]),
            _ => crate::types::TensorType::new(self.dtype(), shape),
        }
    }

    /// The type of values of this one's format, dtype and rank, with unknown sizes.
    pub fn loose_type(&self) -> crate::types::TensorType {
        let mut ty = self.exact_type();
        ty.shape.iter_mut().for_each(|s| *s = None);
        ty
    }

    /// Whether this is a sparse matrix.
    pub fn is_sparse(&self) -> bool {
        matches!(self, TensorData::Csr(_))
    }

    /// The sparse matrix, when this is one.
    pub fn as_csr(&self) -> Option<&CsrMatrix> {
        match self {
            TensorData::Csr(m) => Some(m),
            _ => None,
        }
    }

    /// Whether a dense value is stored contiguously in row-major order (sparse: true).
    pub fn is_standard_layout(&self) -> bool {
        with_dense_data!(self, a => a.is_standard_layout(), _m => true)
    }

    /// The same value stored contiguously in row-major order (a copy unless it already is).
    pub fn to_standard_layout(&self) -> TensorData {
        with_dense_data!(self, a => {
            if a.is_standard_layout() {
                Element::wrap(a.clone())
            } else {
                Element::wrap(a.as_standard_layout().into_owned().into_shared())
            }
        }, m => TensorData::Csr(m.clone()))
    }

    pub fn ndim(&self) -> usize {
        self.shape().len()
    }

    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wraps an ndarray array of any dimensionality.
    pub fn from_array<T: Element, D: Dimension>(array: Array<T, D>) -> Self {
        T::wrap(array.into_dyn().into_shared())
    }

    /// A 0-d value.
    pub fn scalar<T: Element>(value: T) -> Self {
        T::wrap(ArcArray::from_elem(IxDyn(&[]), value))
    }

    /// A value from a shape and row-major data; errors when the lengths disagree.
    pub fn from_vec<T: Element>(shape: &[usize], data: Vec<T>) -> Result<Self> {
        let n = data.len();
        ArrayD::from_shape_vec(IxDyn(shape), data)
            .map(|a| T::wrap(a.into_shared()))
            .map_err(|_| {
                GraphError::Graph(format!(
                    "{n} elements cannot fill an array of shape {shape:?}"
                ))
            })
    }

    /// A 0-d value holding a literal in the given dtype (ints wrap, floats round).
    pub fn from_literal(lit: Literal, dtype: DType) -> Self {
        let (i, f, b) = match lit {
            Literal::Bool(b) => (b as i64, b as i64 as f64, b),
            Literal::Int(i) => (i, i as f64, i != 0),
            Literal::Float(f) => (f as i64, f, f != 0.0),
        };
        match dtype {
            DType::Bool => Self::scalar(b),
            DType::Int8 => Self::scalar(i as i8),
            DType::Int16 => Self::scalar(i as i16),
            DType::Int32 => Self::scalar(i as i32),
            DType::Int64 => Self::scalar(i),
            DType::UInt8 => Self::scalar(i as u8),
            DType::Float32 => Self::scalar(f as f32),
            DType::Float64 => Self::scalar(f),
        }
    }

    /// An array of `shape` filled with a literal in `dtype`.
    pub fn full(shape: &[usize], lit: Literal, dtype: DType) -> Self {
        let scalar = Self::from_literal(lit, dtype);
        with_tensor_data!(&scalar, a => {
            let v = a.iter().next().copied().unwrap_or_default();
            Element::wrap(ArcArray::from_elem(IxDyn(shape), v))
        })
    }

    /// An array of `shape` from row-major literals converted to `dtype` (as
    /// `from_literal`); errors when the lengths disagree.
    pub fn from_literals(shape: &[usize], values: &[Literal], dtype: DType) -> Result<Self> {
        fn convert<T: Element>(
            _like: &ArcArray<T, IxDyn>,
            values: &[Literal],
            dtype: DType,
        ) -> Vec<T> {
            values
                .iter()
                .map(|l| {
                    let one = TensorData::from_literal(*l, dtype);
                    T::unwrap_ref(&one)
                        .and_then(|a| a.iter().next().copied())
                        .unwrap_or_default()
                })
                .collect()
        }
        let template = Self::from_literal(Literal::Int(0), dtype);
        with_tensor_data!(&template, a => Self::from_vec(shape, convert(a, values, dtype)))
    }

    /// Borrows the array when the dtype is `T`.
    pub fn as_array<T: Element>(&self) -> Option<ArrayViewD<'_, T>> {
        T::unwrap_ref(self).map(|a| a.view())
    }

    /// Borrows the shared array when the dtype is `T`.
    pub fn as_shared<T: Element>(&self) -> Option<&ArcArray<T, IxDyn>> {
        T::unwrap_ref(self)
    }

    /// Moves the array out when the dtype is `T` (copies only if it is shared).
    pub fn into_array<T: Element>(self) -> Option<ArrayD<T>> {
        T::unwrap_owned(self).map(|a| a.into_owned())
    }

    /// Every element as a literal, in row-major order.
    pub fn literals(&self) -> Vec<Literal> {
        with_tensor_data!(self, a => a.iter().map(|v| v.to_literal()).collect())
    }

    /// The value of a 0-d (or one-element) tensor as a literal.
    pub fn item(&self) -> Option<Literal> {
        if self.len() != 1 {
            return None;
        }
        with_tensor_data!(self, a => a.iter().next().map(|v| v.to_literal()))
    }

    /// Integer (or bool) contents as `i64`s in row-major order; `None` for floats.
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        if self.dtype().is_float() {
            return None;
        }
        self.literals()
            .into_iter()
            .map(|l| match l {
                Literal::Int(i) => Some(i),
                Literal::Bool(b) => Some(b as i64),
                Literal::Float(_) => None,
            })
            .collect()
    }

    /// Exact equality of format, dtype, shape and elements (NaN equals NaN bit-for-bit);
    /// two sparse matrices must also store the same entries.
    pub fn same_as(&self, other: &TensorData) -> bool {
        if let (TensorData::Csr(a), TensorData::Csr(b)) = (self, other) {
            return a.shape() == b.shape()
                && a.indptr() == b.indptr()
                && a.indices() == b.indices()
                && a.values().same_as(b.values());
        }
        if self.is_sparse() != other.is_sparse()
            || self.dtype() != other.dtype()
            || self.shape() != other.shape()
        {
            return false;
        }
        self.literals()
            .iter()
            .zip(other.literals())
            .all(|(a, b)| match (a, b) {
                (Literal::Float(x), Literal::Float(y)) => x.to_bits() == y.to_bits(),
                (a, b) => *a == b,
            })
    }
}

impl From<CsrMatrix> for TensorData {
    fn from(m: CsrMatrix) -> Self {
        TensorData::Csr(std::sync::Arc::new(m))
    }
}

impl<T: Element, D: Dimension> From<Array<T, D>> for TensorData {
    fn from(array: Array<T, D>) -> Self {
        TensorData::from_array(array)
    }
}

impl fmt::Debug for TensorData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        with_dense_data!(self, a => write!(f, "TensorData<{}>({})", self.dtype(), a), m => write!(f, "{m:?}"))
    }
}

impl fmt::Display for TensorData {
    /// A compact form for graph printing: the literal for one element, the elements for a
    /// short vector, otherwise the dtype and shape.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let TensorData::Csr(m) = self {
            return write!(
                f,
                "Csr{{{}, shape={:?}, nnz={}}}",
                self.dtype(),
                self.shape(),
                m.nnz()
            );
        }
        if self.ndim() == 0 {
            if let Some(lit) = self.item() {
                return write!(f, "{lit}");
            }
        }
        if self.ndim() == 1 && self.len() <= 8 {
            let items: Vec<String> = self.literals().iter().map(|l| l.to_string()).collect();
            return write!(f, "[{}]", items.join(", "));
        }
        write!(f, "Constant{{{}, shape={:?}}}", self.dtype(), self.shape())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn round_trips_through_ndarray() {
        let d = TensorData::from(array![[1.0f32, 2.0], [3.0, 4.0]]);
        assert_eq!(d.dtype(), DType::Float32);
        assert_eq!(d.shape(), &[2, 2]);
        assert!(d.as_array::<f64>().is_none());
        let back = d.into_array::<f32>().unwrap();
        assert_eq!(back[[1, 0]], 3.0);
    }

    #[test]
    fn from_vec_checks_length() {
        assert!(TensorData::from_vec(&[2, 3], vec![1i64; 5]).is_err());
        let d = TensorData::from_vec(&[2], vec![7i64, -1]).unwrap();
        assert_eq!(d.to_i64_vec(), Some(vec![7, -1]));
        assert_eq!(d.to_string(), "[7, -1]");
        assert_eq!(TensorData::scalar(5.0f64).to_string(), "5.0");
    }
}

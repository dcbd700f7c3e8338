//! Element types (`DType`), NumPy's promotion table, and weak Rust literals (NEP 50).
//!
//! Owns: which dtypes exist, how two dtypes combine, what dtype a Rust literal takes next to a
//! tensor. Must not: know about shapes, graphs or values.

use std::fmt;

use crate::error::GraphError;

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    Float32,
    Float64,
}

/// Broad category of a dtype, ordered as NumPy orders kinds for promotion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DTypeKind {
    Bool,
    Int,
    Float,
}

impl DType {
    /// Every dtype, in a fixed order (useful for exhaustive tests).
    pub const ALL: [DType; 8] = [
        DType::Bool,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::UInt8,
        DType::Float32,
        DType::Float64,
    ];

    /// NumPy's name of the dtype.
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::UInt8 => "uint8",
            DType::Float32 => "float32",
            DType::Float64 => "float64",
        }
    }

    /// Parses NumPy's name of a dtype.
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    pub fn kind(self) -> DTypeKind {
        match self {
            DType::Bool => DTypeKind::Bool,
            DType::Float32 | DType::Float64 => DTypeKind::Float,
            _ => DTypeKind::Int,
        }
    }

    pub fn is_float(self) -> bool {
        self.kind() == DTypeKind::Float
    }

    pub fn is_int(self) -> bool {
        self.kind() == DTypeKind::Int
    }

    pub fn is_bool(self) -> bool {
        self == DType::Bool
    }

    /// Size of one element in bytes.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::Bool | DType::Int8 | DType::UInt8 => 1,
            DType::Int16 => 2,
            DType::Int32 | DType::Float32 => 4,
            DType::Int64 | DType::Float64 => 8,
        }
    }

    /// Inclusive range of an integer dtype (bool is 0..=1); `None` for floats.
    pub fn int_range(self) -> Option<(i64, i64)> {
        match self {
            DType::Bool => Some((0, 1)),
            DType::Int8 => Some((i8::MIN as i64, i8::MAX as i64)),
            DType::Int16 => Some((i16::MIN as i64, i16::MAX as i64)),
            DType::Int32 => Some((i32::MIN as i64, i32::MAX as i64)),
            DType::Int64 => Some((i64::MIN, i64::MAX)),
            DType::UInt8 => Some((0, u8::MAX as i64)),
            DType::Float32 | DType::Float64 => None,
        }
    }

    /// The float dtype that math functions (exp, log, true division, ...) of this dtype
    /// produce: floats keep their width; bool, int8, uint8 and int16 fit exactly in
    /// float32; int32 and int64 need float64 (PyTensor's `upgrade_to_float`).
    pub fn upgrade_to_float(self) -> DType {
        match self {
            DType::Float32 => DType::Float32,
            DType::Float64 => DType::Float64,
            DType::Bool | DType::Int8 | DType::UInt8 | DType::Int16 => DType::Float32,
            DType::Int32 | DType::Int64 => DType::Float64,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// NumPy's array-array promotion (`np.result_type` of two arrays).
pub fn promote(a: DType, b: DType) -> DType {
    use DType::*;
    if a == b {
        return a;
    }
    match (a.kind(), b.kind()) {
        (DTypeKind::Bool, _) => b,
        (_, DTypeKind::Bool) => a,
        (DTypeKind::Float, DTypeKind::Float) => Float64,
        (DTypeKind::Float, DTypeKind::Int) => promote_float_int(a, b),
        (DTypeKind::Int, DTypeKind::Float) => promote_float_int(b, a),
        (DTypeKind::Int, DTypeKind::Int) => match (a, b) {
            (UInt8, s) | (s, UInt8) => {
                if s.size_bytes() > 1 {
                    s
                } else {
                    Int16
                }
            }
            _ => {
                if a.size_bytes() >= b.size_bytes() {
                    a
                } else {
                    b
                }
            }
        },
    }
}

fn promote_float_int(float: DType, int: DType) -> DType {
    if float == DType::Float32 && int.size_bytes() <= 2 {
        DType::Float32
    } else {
        DType::Float64
    }
}

/// Promotes any number of dtypes; `None` for an empty list.
pub fn promote_all(dtypes: impl IntoIterator<Item = DType>) -> Option<DType> {
    dtypes.into_iter().reduce(promote)
}

/// A Rust literal used next to a tensor. It is "weak" (NEP 50): it takes the tensor's
/// dtype when its kind is not higher and its value fits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Literal {
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl Literal {
    /// The dtype the literal has on its own: bool, int64 or float64.
    pub fn default_dtype(self) -> DType {
        match self {
            Literal::Bool(_) => DType::Bool,
            Literal::Int(_) => DType::Int64,
            Literal::Float(_) => DType::Float64,
        }
    }

    fn kind(self) -> DTypeKind {
        self.default_dtype().kind()
    }

    /// The dtype the literal takes when combined with a tensor of dtype `tensor` (NEP 50).
    /// A Python-style integer that does not fit the tensor's integer dtype is an error,
    /// as in NumPy 2 (`np.int8(1) + 300` raises).
    pub fn dtype_next_to(self, tensor: DType) -> Result<DType, GraphError> {
        if self.kind() > tensor.kind() {
            return Ok(promote(self.default_dtype(), tensor));
        }
        if let (Literal::Int(v), Some((lo, hi))) = (self, tensor.int_range()) {
            if tensor.is_int() && (v < lo || v > hi) {
                return Err(GraphError::Type(format!(
                    "the integer literal {v} does not fit {tensor} (range {lo}..={hi}); \
                     cast the tensor to a wider dtype first"
                )));
            }
        }
        Ok(tensor)
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Bool(v) => write!(f, "{v}"),
            Literal::Int(v) => write!(f, "{v}"),
            Literal::Float(v) => write!(f, "{v:?}"),
        }
    }
}

impl From<bool> for Literal {
    fn from(v: bool) -> Self {
        Literal::Bool(v)
    }
}
impl From<f64> for Literal {
    fn from(v: f64) -> Self {
        Literal::Float(v)
    }
}
impl From<f32> for Literal {
    fn from(v: f32) -> Self {
        Literal::Float(v as f64)
    }
}
macro_rules! literal_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Literal {
            fn from(v: $t) -> Self {
                Literal::Int(v as i64)
            }
        }
    )*};
}
literal_from_int!(i8, i16, i32, i64, u8, u16, u32);

#[cfg(test)]
mod tests {
    use super::*;
    use DType::*;

    #[test]
    fn promotion_follows_numpy() {
        // Values from np.result_type on NumPy 2.
        let cases = [
            (Int8, UInt8, Int16),
            (Int16, UInt8, Int16),
            (Int64, UInt8, Int64),
            (Int8, Int32, Int32),
            (Bool, Int8, Int8),
            (Bool, Float32, Float32),
            (Float32, Int16, Float32),
            (Float32, UInt8, Float32),
            (Float32, Int32, Float64),
            (Float32, Int64, Float64),
            (Float32, Float64, Float64),
            (Int64, Float32, Float64),
        ];
        for (a, b, want) in cases {
            assert_eq!(promote(a, b), want, "{a} with {b}");
            assert_eq!(promote(b, a), want, "{b} with {a}");
        }
    }

    #[test]
    fn weak_literals_follow_nep50() {
        assert_eq!(Literal::Float(2.0).dtype_next_to(Float32).unwrap(), Float32);
        assert_eq!(Literal::Int(2).dtype_next_to(Float32).unwrap(), Float32);
        assert_eq!(Literal::Int(2).dtype_next_to(Int8).unwrap(), Int8);
        assert_eq!(Literal::Float(2.0).dtype_next_to(Int8).unwrap(), Float64);
        assert_eq!(Literal::Int(2).dtype_next_to(Bool).unwrap(), Int64);
        assert_eq!(Literal::Bool(true).dtype_next_to(UInt8).unwrap(), UInt8);
        let err = Literal::Int(300).dtype_next_to(Int8).unwrap_err();
        assert!(err.to_string().contains("300"), "{err}");
        assert!(err.to_string().contains("int8"), "{err}");
    }
}

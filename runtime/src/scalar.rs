//! Numeric behaviour of element types: NumPy casting between dtypes and the wrapping
//! integer arithmetic NumPy uses.
//!
//! Owns: the `Scalar` trait (an `Element` that can be converted and added) and `cast`.
//! Casting follows NumPy's `astype` (unsafe casting): to bool is `!= 0`, integers wrap,
//! floats round to nearest; float to integer truncates toward zero and saturates, NaN
//! giving 0 (NumPy leaves out-of-range float-to-int undefined; this is the defined choice
//! every tensorlift backend makes).

use ndarray::{ArcArray, IxDyn};
use tensorlift_ir::{with_tensor_data, DType, Element, TensorData};

/// An element type with NumPy conversions.
pub trait Scalar: Element {
    fn from_i64(v: i64) -> Self;
    fn from_f64(v: f64) -> Self;
    fn from_bool(v: bool) -> Self;
    fn to_i64(self) -> i64;
    fn to_f64(self) -> f64;
    fn to_bool(self) -> bool;
    /// `+` as NumPy does it for this dtype: wrapping for integers, `or` for bool.
    fn add(self, other: Self) -> Self;

    /// Converts from another element type with NumPy's rules.
    fn convert<S: Scalar>(v: S) -> Self {
        if S::DTYPE.is_float() {
            Self::from_f64(v.to_f64())
        } else if S::DTYPE.is_bool() {
            Self::from_bool(v.to_bool())
        } else {
            Self::from_i64(v.to_i64())
        }
    }
}

macro_rules! int_scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            fn from_i64(v: i64) -> Self { v as $t }
            fn from_f64(v: f64) -> Self { v as $t }
            fn from_bool(v: bool) -> Self { v as $t }
            fn to_i64(self) -> i64 { self as i64 }
            fn to_f64(self) -> f64 { self as f64 }
            fn to_bool(self) -> bool { self != 0 }
            fn add(self, other: Self) -> Self { self.wrapping_add(other) }
        }
    )*};
}
int_scalar!(i8, i16, i32, i64, u8);

macro_rules! float_scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            fn from_i64(v: i64) -> Self { v as $t }
            fn from_f64(v: f64) -> Self { v as $t }
            fn from_bool(v: bool) -> Self { v as u8 as $t }
            fn to_i64(self) -> i64 { self as i64 }
            fn to_f64(self) -> f64 { self as f64 }
            fn to_bool(self) -> bool { self != 0.0 }
            fn add(self, other: Self) -> Self { self + other }
        }
    )*};
}
float_scalar!(f32, f64);

impl Scalar for bool {
    fn from_i64(v: i64) -> Self {
        v != 0
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn from_bool(v: bool) -> Self {
        v
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    fn to_bool(self) -> bool {
        self
    }
    fn add(self, other: Self) -> Self {
        self || other
    }
}

fn convert_array<S: Scalar, T: Scalar>(a: &ArcArray<S, IxDyn>) -> TensorData {
    T::wrap(a.map(|v| T::convert(*v)).into_shared())
}

fn convert_to<T: Scalar>(data: &TensorData) -> TensorData {
    with_tensor_data!(data, a => convert_array::<_, T>(a))
}

/// `data.astype(dtype)`; returns the same (shared) array when the dtype already matches.
pub fn cast(data: &TensorData, dtype: DType) -> TensorData {
    if data.dtype() == dtype {
        return data.clone();
    }
    match dtype {
        DType::Bool => convert_to::<bool>(data),
        DType::Int8 => convert_to::<i8>(data),
        DType::Int16 => convert_to::<i16>(data),
        DType::Int32 => convert_to::<i32>(data),
        DType::Int64 => convert_to::<i64>(data),
        DType::UInt8 => convert_to::<u8>(data),
        DType::Float32 => convert_to::<f32>(data),
        DType::Float64 => convert_to::<f64>(data),
    }
}

/// Runs `$body` with `$t` bound to the Rust element type of `$dtype`.
#[macro_export]
macro_rules! with_scalar_type {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            tensorlift_ir::DType::Bool => {
                type $t = bool;
                $body
            }
            tensorlift_ir::DType::Int8 => {
                type $t = i8;
                $body
            }
            tensorlift_ir::DType::Int16 => {
                type $t = i16;
                $body
            }
            tensorlift_ir::DType::Int32 => {
                type $t = i32;
                $body
            }
            tensorlift_ir::DType::Int64 => {
                type $t = i64;
                $body
            }
            tensorlift_ir::DType::UInt8 => {
                type $t = u8;
                $body
            }
            tensorlift_ir::DType::Float32 => {
                type $t = f32;
                $body
            }
            tensorlift_ir::DType::Float64 => {
                type $t = f64;
                $body
            }
        }
    };
}

/// Whether a condition's value (its first element) is true: non-zero, as NumPy's `bool`.
pub fn is_true(cond: &TensorData) -> bool {
    tensorlift_ir::with_tensor_data!(cond, a => a.first().is_some_and(|v| *v != Default::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn casts_follow_numpy() {
        let x = TensorData::from(array![-1.7f64, 0.0, 2.5, f64::NAN, 300.0]);
        let as_i8 = cast(&x, DType::Int8).into_array::<i8>().unwrap();
        // np.array([-1.7, 0.0, 2.5, 300.0]).astype(np.int8) truncates; 300 saturates here.
        assert_eq!(as_i8.as_slice().unwrap()[..3], [-1, 0, 2]);
        assert_eq!(as_i8[4], 127);
        let as_bool = cast(&x, DType::Bool).into_array::<bool>().unwrap();
        assert_eq!(
            as_bool.as_slice().unwrap(),
            &[true, false, true, true, true]
        );
        let big = TensorData::from(array![300i64, -129]);
        let wrapped = cast(&big, DType::Int8).into_array::<i8>().unwrap();
        assert_eq!(wrapped.as_slice().unwrap(), &[44, 127]);
        let u = cast(&TensorData::from(array![-1i64]), DType::UInt8);
        assert_eq!(u.into_array::<u8>().unwrap()[0], 255);
    }
}

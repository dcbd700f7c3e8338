//! Call signatures: the input types a compiled function accepts, checked before anything
//! runs (DESIGN §5).
//!
//! Owns: `Signature::check`, shared by every backend. The check compares against types
//! fixed at compile time and allocates nothing unless it fails; the error names the input
//! (position and name) and what was expected.

use tensorlift_ir::{TensorData, TensorType};

use crate::error::{Result, RuntimeError};

/// The declared inputs of a compiled function.
#[derive(Clone, Debug)]
pub struct Signature {
    pub names: Vec<String>,
    pub types: Vec<TensorType>,
}

impl Signature {
    /// Checks count, format (dense or sparse), dtype, ndim and every static size.
    pub fn check(&self, inputs: &[TensorData]) -> Result<()> {
        if inputs.len() != self.types.len() {
            return Err(RuntimeError::op(
                "call",
                format!(
                    "the function takes {} inputs ({}), got {}",
                    self.types.len(),
                    self.names.join(", "),
                    inputs.len()
                ),
            ));
        }
        for (index, (value, ty)) in inputs.iter().zip(&self.types).enumerate() {
            if value.is_sparse() != ty.is_sparse()
                || value.dtype() != ty.dtype
                || value.ndim() != ty.ndim()
                || !sizes_match(value.shape(), &ty.shape)
            {
                return Err(self.mismatch(index, value, ty));
            }
        }
        Ok(())
    }

    fn mismatch(&self, index: usize, value: &TensorData, ty: &TensorType) -> RuntimeError {
        let message = if value.is_sparse() != ty.is_sparse() {
            let got = if value.is_sparse() {
                "a sparse CSR matrix"
            } else {
                "a dense array"
            };
            format!("expected a value of type {ty}, got {got}")
        } else if value.dtype() != ty.dtype {
            format!(
                "expected dtype {}, got {} (declared type {ty})",
                ty.dtype,
                value.dtype()
            )
        } else if value.ndim() != ty.ndim() {
            format!(
                "expected {} dimensions (declared type {ty}), got an array of shape {:?}",
                ty.ndim(),
                value.shape()
            )
        } else {
            let (axis, want) = ty
                .shape
                .iter()
                .zip(value.shape())
                .enumerate()
                .find_map(|(d, (s, actual))| s.filter(|s| s != actual).map(|s| (d, s)))
                .unwrap_or((0, 0));
            format!(
                "dimension {axis} must have size {want} (declared type {ty}), got an array of shape {:?}",
                value.shape()
            )
        };
        RuntimeError::Input {
            index,
            name: self.names.get(index).cloned().unwrap_or_default(),
            message,
        }
    }
}

fn sizes_match(actual: &[usize], declared: &[Option<usize>]) -> bool {
    actual
        .iter()
        .zip(declared)
        .all(|(a, d)| d.is_none_or(|d| d == *a))
}

/// Whether `value` has the format, dtype, rank and every static size of `ty`.
pub fn fits(value: &TensorData, ty: &tensorlift_ir::TensorType) -> bool {
    value.is_sparse() == ty.is_sparse()
        && value.dtype() == ty.dtype
        && value.ndim() == ty.ndim()
        && value
            .shape()
            .iter()
            .zip(&ty.shape)
            .all(|(a, s)| s.is_none_or(|s| s == *a))
}

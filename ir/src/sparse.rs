//! Compressed-sparse-row matrices: the value of a `Format::Csr` type.
//!
//! Owns: `CsrMatrix` (row pointers, column indices, values) and its invariants, checked once
//! when a matrix is built: row pointers start at 0, never decrease and end at the number of
//! stored values; column indices are in range and strictly increasing within a row (the
//! canonical form: sorted, no duplicates). Conversions from and to dense arrays. Must not:
//! compute with the matrix (the runtime's sparse kernels do).

use std::sync::Arc;

use ndarray::{Array2, ArrayD, IxDyn};

use crate::data::{Element, TensorData};
use crate::dtype::DType;
use crate::error::{GraphError, Result};

/// A sparse matrix in CSR form; cloning is O(1).
#[derive(Clone)]
pub struct CsrMatrix {
    shape: [usize; 2],
    indptr: Arc<[usize]>,
    indices: Arc<[usize]>,
    values: TensorData,
}

impl CsrMatrix {
    /// A matrix from its parts (SciPy's `csr_matrix((values, indices, indptr), shape)`), or
    /// an error saying which invariant the parts break.
    pub fn from_parts(
        shape: [usize; 2],
        indptr: Vec<usize>,
        indices: Vec<usize>,
        values: TensorData,
    ) -> Result<CsrMatrix> {
        let bad = |m: String| GraphError::Type(format!("CsrMatrix: {m}"));
        let [rows, cols] = shape;
        if matches!(values, TensorData::Csr(_)) || values.ndim() != 1 {
            return Err(bad(format!(
                "values must be a dense vector, got shape {:?}",
                values.shape()
            )));
        }
        let nnz = values.len();
        if indices.len() != nnz {
            return Err(bad(format!(
                "{} column indices for {nnz} values",
                indices.len()
            )));
        }
        if indptr.len() != rows + 1 {
            return Err(bad(format!(
                "row pointers must have {} entries (rows + 1), got {}",
                rows + 1,
                indptr.len()
            )));
        }
        if indptr[0] != 0 || indptr[rows] != nnz {
            return Err(bad(format!(
                "row pointers must start at 0 and end at {nnz}, got {} .. {}",
                indptr[0], indptr[rows]
            )));
        }
        for r in 0..rows {
            let (start, end) = (indptr[r], indptr[r + 1]);
            if end < start {
                return Err(bad(format!("row pointers decrease at row {r}")));
            }
            let row = &indices[start..end];
            if let Some(&c) = row.iter().find(|&&c| c >= cols) {
                return Err(bad(format!(
                    "column index {c} in row {r} is out of range for {cols} columns"
                )));
            }
            if row.windows(2).any(|w| w[0] >= w[1]) {
                return Err(bad(format!(
                    "column indices of row {r} must be strictly increasing"
                )));
            }
        }
        let values = values.to_standard_layout();
        Ok(CsrMatrix {
            shape,
            indptr: indptr.into(),
            indices: indices.into(),
            values,
        })
    }

    /// The non-zero entries of a dense matrix (NaN counts as non-zero, −0.0 as zero).
    pub fn from_dense(dense: &TensorData) -> Result<CsrMatrix> {
        if matches!(dense, TensorData::Csr(_)) || dense.ndim() != 2 {
            return Err(GraphError::Type(format!(
                "CsrMatrix::from_dense: needs a dense matrix, got shape {:?}",
                dense.shape()
            )));
        }
        let shape = [dense.shape()[0], dense.shape()[1]];
        let mut indptr = Vec::with_capacity(shape[0] + 1);
        let mut indices = Vec::new();
        indptr.push(0);
        let values = crate::with_tensor_data!(dense, a => {
            let mut kept = Vec::new();
            for row in a.outer_iter() {
                for (c, v) in row.iter().enumerate() {
                    if *v != Default::default() {
                        indices.push(c);
                        kept.push(*v);
                    }
                }
                indptr.push(indices.len());
            }
            Element::wrap(ArrayD::from_shape_vec(IxDyn(&[kept.len()]), kept)
                .expect("a vector of its own length")
                .into_shared())
        });
        CsrMatrix::from_parts(shape, indptr, indices, values)
    }

    /// A matrix of one element type from row-major triplets' parts (see `from_parts`).
    pub fn from_vecs<T: Element>(
        shape: [usize; 2],
        indptr: Vec<usize>,
        indices: Vec<usize>,
        values: Vec<T>,
    ) -> Result<CsrMatrix> {
        let n = values.len();
        CsrMatrix::from_parts(shape, indptr, indices, TensorData::from_vec(&[n], values)?)
    }

    /// The dense matrix with the stored values and zeros elsewhere.
    pub fn to_dense(&self) -> TensorData {
        fn fill<T: Element>(m: &CsrMatrix, values: &ndarray::ArcArray<T, IxDyn>) -> TensorData {
            let mut out = Array2::<T>::default((m.shape[0], m.shape[1]));
            for r in 0..m.shape[0] {
                for k in m.row_range(r) {
                    out[[r, m.indices[k]]] = values[[k]];
                }
            }
            TensorData::from_array(out)
        }
        crate::with_dense_data!(&self.values, a => fill(self, a), csr => csr.to_dense())
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn rows(&self) -> usize {
        self.shape[0]
    }

    pub fn cols(&self) -> usize {
        self.shape[1]
    }

    pub fn dtype(&self) -> DType {
        self.values.dtype()
    }

    /// Number of stored values.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }

    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// The stored values: a contiguous dense vector of length `nnz`.
    pub fn values(&self) -> &TensorData {
        &self.values
    }

    /// Positions in `indices`/`values` of row `r`'s entries.
    pub fn row_range(&self, r: usize) -> std::ops::Range<usize> {
        self.indptr[r]..self.indptr[r + 1]
    }

    /// The same structure with other values (of length `nnz`), e.g. after scaling.
    pub fn with_values(&self, values: TensorData) -> Result<CsrMatrix> {
        if matches!(values, TensorData::Csr(_)) || values.shape() != [self.nnz()] {
            return Err(GraphError::Type(format!(
                "CsrMatrix::with_values: needs a vector of {} values, got shape {:?}",
                self.nnz(),
                values.shape()
            )));
        }
        Ok(CsrMatrix {
            shape: self.shape,
            indptr: self.indptr.clone(),
            indices: self.indices.clone(),
            values,
        })
    }
}

impl std::fmt::Debug for CsrMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrMatrix")
            .field("shape", &self.shape)
            .field("indptr", &self.indptr)
            .field("indices", &self.indices)
            .field("values", &self.values)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn dense_round_trip_keeps_nonzeros_in_row_order() {
        let dense = TensorData::from(array![
            [0.0, 2.0, 0.0],
            [0.0, 0.0, 0.0],
            [5.0, 0.0, f64::NAN]
        ]);
        let m = CsrMatrix::from_dense(&dense).unwrap();
        assert_eq!(m.indptr(), &[0, 1, 1, 3]);
        assert_eq!(m.indices(), &[1, 0, 2]);
        assert_eq!(m.nnz(), 3);
        assert!(m.to_dense().same_as(&dense));
    }

    #[test]
    fn broken_parts_are_refused_with_the_reason() {
        let v = |n: usize| TensorData::from_vec(&[n], vec![1.0f64; n]).unwrap();
        let msg = |r: Result<CsrMatrix>| r.unwrap_err().to_string();
        assert!(msg(CsrMatrix::from_parts([2, 2], vec![0, 1], vec![0], v(1))).contains("rows + 1"));
        assert!(
            msg(CsrMatrix::from_parts([2, 2], vec![0, 1, 1], vec![2], v(1)))
                .contains("out of range")
        );
        assert!(
            msg(CsrMatrix::from_parts([1, 3], vec![0, 2], vec![1, 1], v(2)))
                .contains("strictly increasing")
        );
        assert!(msg(CsrMatrix::from_parts(
            [2, 2],
            vec![0, 2, 1],
            vec![0, 1],
            v(2)
        ))
        .contains("end at 2"));
        assert!(
            msg(CsrMatrix::from_parts([2, 2], vec![0, 1, 1], vec![0], v(2))).contains("2 values")
        );
    }
}

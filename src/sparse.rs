//! Sparse CSR matrices (issue 21): the `CsrMatrix` value type and the graph builders —
//! `csr_matrix` inputs, `csr_from_dense` / `dense_from_sparse`, `dot` with a dense operand,
//! `sp_sum` and `mul` (scaling that keeps the stored positions), PyTensor's names.
//!
//! ```
//! use tensorlift::prelude::*;
//! use tensorlift::sparse::{csr_matrix, dot, CsrMatrix};
//! let s = csr_matrix("s", Float64);
//! let v = vector("v", Float64);
//! let f = function(&[&s, &v], &[&dot(&s, &v)]).compile()?;
//! let m = CsrMatrix::from_vecs([2, 3], vec![0, 1, 2], vec![2, 0], vec![4.0, 5.0])?;
//! let out = f.call(&[m.into(), ndarray::array![1.0, 2.0, 3.0].into()])?;
//! assert_eq!(out[0].to_f64_vec(), vec![12.0, 5.0]);
//! # Ok::<(), tensorlift::Error>(())
//! ```

pub use tensorlift_ir::api::sparse::{
    csr_from_dense, csr_matrix, dense_from_sparse, dot, mul, sp_sum, structured_dot, transpose,
};
pub use tensorlift_ir::{CsrMatrix, Format};

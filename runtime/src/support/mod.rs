//! The kernels' support library: everything jitted code calls. `calls` holds the
//! `extern "C"` entry points of scalar and array math, integer division, logsumexp and
//! whole-row reductions (none can unwind); `buffers` the error slot, gemm and growing
//! buffers; `vector_math` the polynomial math at the CPU's widest vectors; `row_reduce`,
//! `softmax` and `logsumexp` the row algorithms those entry points run.

pub mod buffers;
pub mod calls;
pub mod logsumexp;
pub mod row_reduce;
pub mod softmax;
pub mod vector_math;

pub use calls::*;

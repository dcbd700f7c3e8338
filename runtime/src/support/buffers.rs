//! Buffer-level support functions that jitted kernels call (DESIGN §11), and the error
//! slot through which a kernel reports a failure.
//!
//! Owns: the layout of a buffer in a kernel's argument words as support functions read it
//! (data pointer, then `rank` sizes, then `rank` strides in elements), the `ErrorSlot`
//! (the values a failing kernel reports; its status code says which error), and the gemm
//! entry points (`tl_dot_f64`, `tl_dot_f32`: NumPy `dot` of 1-d/2-d operands through the
//! `matrixmultiply` crate, any strides), and buffers a kernel grows while it runs
//! (`GrowBuffer`, `tl_grow`: row-major, growing along axis 0 with amortised doubling,
//! returned exactly sized). Every entry point checks the shapes it is given
//! before touching memory and returns a non-zero status instead of panicking (no unwinding
//! may cross a jitted frame).

use std::panic::{catch_unwind, AssertUnwindSafe};

use ndarray::{ArrayD, IxDyn};
use tensorlift_ir::{DType, TensorData};

/// How many values a failing kernel reports.
pub const ERROR_VALUES: usize = 4;

/// Where a failing kernel writes the values its error message refers to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorSlot {
    pub values: [i64; ERROR_VALUES],
}

/// A 1-d or 2-d buffer seen as a matrix: sizes and strides (elements) of its rows and
/// columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Matrix {
    ptr: i64,
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
}

/// Reads a buffer's argument words. A 1-d buffer is a row (`as_row`) or a column.
///
/// # Safety
/// `words` must point to `1 + 2 * rank` readable i64 words.
unsafe fn matrix(words: *const i64, rank: i64, as_row: bool) -> Option<Matrix> {
    let word = |k: usize| {
        // SAFETY: k < 1 + 2 * rank, which the caller guarantees readable.
        unsafe { *words.add(k) }
    };
    let size = |k: usize| usize::try_from(word(k)).ok();
    match rank {
        0 => Some(Matrix {
            ptr: word(0),
            rows: 1,
            cols: 1,
            row_stride: 0,
            col_stride: 0,
        }),
        1 if as_row => Some(Matrix {
            ptr: word(0),
            rows: 1,
            cols: size(1)?,
            row_stride: 0,
            col_stride: word(2) as isize,
        }),
        1 => Some(Matrix {
            ptr: word(0),
            rows: size(1)?,
            cols: 1,
            row_stride: word(2) as isize,
            col_stride: 0,
        }),
        2 => Some(Matrix {
            ptr: word(0),
            rows: size(1)?,
            cols: size(2)?,
            row_stride: word(3) as isize,
            col_stride: word(4) as isize,
        }),
        _ => None,
    }
}

/// The operands of `out = a · b` as matrices, after checking that their shapes agree.
///
/// # Safety
/// Each pointer must point to `1 + 2 * rank` readable words of its rank.
unsafe fn dot_operands(
    a: *const i64,
    a_rank: i64,
    b: *const i64,
    b_rank: i64,
    out: *const i64,
    out_rank: i64,
) -> Option<(Matrix, Matrix, Matrix)> {
    // SAFETY: forwarded from the caller.
    let (ma, mb) = unsafe { (matrix(a, a_rank, true)?, matrix(b, b_rank, false)?) };
    // A 1-d result is a row when `a` is 1-d (a vector times a matrix), else a column.
    // SAFETY: forwarded from the caller.
    let mo = unsafe { matrix(out, out_rank, a_rank == 1)? };
    let ranks_ok = out_rank == (a_rank == 2) as i64 + (b_rank == 2) as i64;
    let shapes_ok = ma.cols == mb.rows && mo.rows == ma.rows && mo.cols == mb.cols;
    (ranks_ok && shapes_ok).then_some((ma, mb, mo))
}

macro_rules! dot_support {
    ($name:ident, $t:ty, $gemm:path) => {
        #[doc = concat!(
            "`out = a · b` for ", stringify!($t), " buffers given by their argument words ",
            "(1-d or 2-d, any strides, `out` not overlapping `a` or `b`). Returns 0, or 1 when ",
            "the shapes do not agree (nothing is written), or 2 if gemm failed."
        )]
        ///
        /// # Safety
        /// Each word pointer must point to `1 + 2 * rank` readable words describing a live
        /// buffer of its dtype whose every element addressed by its sizes and strides lies
        /// inside its allocation; `out` must be writable.
        pub unsafe extern "C" fn $name(
            a: *const i64,
            a_rank: i64,
            b: *const i64,
            b_rank: i64,
            out: *const i64,
            out_rank: i64,
        ) -> i32 {
            // SAFETY: forwarded from the caller.
            let Some((ma, mb, mo)) = (unsafe { dot_operands(a, a_rank, b, b_rank, out, out_rank) })
            else {
                return 1;
            };
            // SAFETY: forwarded from the caller; the shapes agree (checked above).
            let fast = AssertUnwindSafe(|| unsafe { matrix_vector::<$t>(ma, mb, mo) });
            match catch_unwind(fast) {
                Ok(true) => return 0,
                Ok(false) => {}
                Err(_) => return 2,
            }
            let run = AssertUnwindSafe(|| {
                // SAFETY: the shapes agree (checked above): gemm reads `rows × cols`
                // elements of `a` and `b` and writes those of `out` at the given strides,
                // all inside the buffers by the caller's guarantee.
                unsafe {
                    $gemm(
                        ma.rows,
                        ma.cols,
                        mb.cols,
                        1.0,
                        ma.ptr as *const $t,
                        ma.row_stride,
                        ma.col_stride,
                        mb.ptr as *const $t,
                        mb.row_stride,
                        mb.col_stride,
                        0.0,
                        mo.ptr as *mut $t,
                        mo.row_stride,
                        mo.col_stride,
                    )
                }
            });
            match catch_unwind(run) {
                Ok(()) => 0,
                Err(_) => 2,
            }
        }
    };
}

/// Element types with wide-vector matrix-vector loops.
trait MatrixVector: Copy + Send + Sync {
    /// `out = Σ_k a[k]·b[k]`, from the first element on.
    fn dot(a: &[Self], b: &[Self]) -> Self;
    /// `out[k] += s·x[k]`.
    fn axpy(out: &mut [Self], s: Self, x: &[Self]);
    /// `out[i] = dot(m[i·stride ..][..v.len()], v)`.
    fn dots(out: &mut [Self], m: &[Self], stride: usize, v: &[Self]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = Self::dot(&m[i * stride..i * stride + v.len()], v);
        }
    }
    /// `out[j] += Σ_k s[k]·m[k·stride + j]`, row after row.
    fn axpys(out: &mut [Self], m: &[Self], stride: usize, s: &[Self]) {
        for (k, s) in s.iter().enumerate() {
            Self::axpy(out, *s, &m[k * stride..k * stride + out.len()]);
        }
    }
    const ZERO: Self;
}

impl MatrixVector for f64 {
    fn dot(a: &[f64], b: &[f64]) -> f64 {
        super::row_reduce::dot_at(crate::vector_math::simd_level(), a, b)
    }
    fn axpy(out: &mut [f64], s: f64, x: &[f64]) {
        super::row_reduce::axpy_at(crate::vector_math::simd_level(), out, s, x)
    }
    fn dots(out: &mut [f64], m: &[f64], stride: usize, v: &[f64]) {
        super::row_reduce::dots_at(crate::vector_math::simd_level(), out, m, stride, v)
    }
    fn axpys(out: &mut [f64], m: &[f64], stride: usize, s: &[f64]) {
        super::row_reduce::axpys_at(crate::vector_math::simd_level(), out, m, stride, s)
    }
    const ZERO: f64 = 0.0;
}

impl MatrixVector for f32 {
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        // float32 products rounded as the reference rounds them, summed in f64.
        super::row_reduce::dot_f32_at(crate::vector_math::simd_level(), a, b) as f32
    }
    fn axpy(out: &mut [f32], s: f32, x: &[f32]) {
        for (o, v) in out.iter_mut().zip(x) {
            *o += s * v;
        }
    }
    const ZERO: f32 = 0.0;
}

/// A matrix times a vector, or a vector times a matrix, whose matrix is contiguous along
/// its rows or its columns: dot products of contiguous rows, or scaled contiguous rows
/// added into a contiguous result, at the CPU's widest vectors (gemm would first copy the
/// whole matrix into its packing buffers: the call is memory-bound). Returns false (and
/// writes nothing) for any other layout.
///
/// # Safety
/// As `tl_dot_f64`: the matrices describe live buffers of `T` whose addressed elements lie
/// inside their allocations, with shapes that agree (`dot_operands`), `out` writable and
/// not overlapping the operands.
unsafe fn matrix_vector<T: MatrixVector>(ma: Matrix, mb: Matrix, mo: Matrix) -> bool {
    // The matrix is `m`, the vector `v` (with its element stride), and whether the result
    // runs along m's rows (m · v) or its columns (v · m).
    let (m, v, v_stride, along_rows) = if mb.cols == 1 && ma.rows > 1 {
        (ma, mb, mb.row_stride, true)
    } else if ma.rows == 1 && mb.cols > 1 {
        (mb, ma, ma.col_stride, false)
    } else {
        return false;
    };
    let (n_out, n_in) = if along_rows {
        (m.rows, m.cols)
    } else {
        (m.cols, m.rows)
    };
    let out_stride = if along_rows {
        mo.row_stride
    } else {
        mo.col_stride
    };
    // The matrix's stride along the inner product and along the result.
    let (inner, outer) = if along_rows {
        (m.col_stride, m.row_stride)
    } else {
        (m.row_stride, m.col_stride)
    };
    // Pointers as integers, so the parts below can run on other threads.
    let (mp, vp, op) = (m.ptr as usize, v.ptr as usize, mo.ptr as usize);
    let parts = parts_for(n_out, n_in);
    if inner == 1 && v_stride == 1 && n_in > 0 {
        // Dot products of contiguous lines with the contiguous vector, the result's
        // elements split into `parts` ranges.
        let run = |range: std::ops::Range<usize>| {
            let (mp, vp, op) = (mp as *const T, vp as *const T, op as *mut T);
            // SAFETY: the vector's n_in elements are contiguous inside its buffer.
            let vs = unsafe { std::slice::from_raw_parts(vp, n_in) };
            if outer > 0 && out_stride == 1 && !range.is_empty() {
                let (first, rows) = (range.start, range.len());
                let span = (rows - 1) * outer as usize + n_in;
                // SAFETY: lines first..first + rows start `outer` apart (positive) and hold
                // n_in contiguous elements each, inside the buffer: the span from line
                // `first` to the end of the last one is; out's elements in `range` are
                // contiguous, writable and this part's alone.
                let (m, out) = unsafe {
                    (
                        std::slice::from_raw_parts(mp.add(first * outer as usize), span),
                        std::slice::from_raw_parts_mut(op.add(first), rows),
                    )
                };
                T::dots(out, m, outer as usize, vs);
                return;
            }
            for i in range {
                // SAFETY: line i of the matrix starts at i·outer and holds n_in contiguous
                // elements (inner stride 1), inside the buffer; out's element i is
                // writable, and each i belongs to one range only.
                unsafe {
                    let line = std::slice::from_raw_parts(mp.offset(i as isize * outer), n_in);
                    *op.offset(i as isize * out_stride) = T::dot(line, vs);
                }
            }
        };
        in_parts(n_out, parts, run);
        return true;
    }
    if outer == 1 && out_stride == 1 && n_out > 0 {
        // The result is contiguous, and so is each of the matrix's lines along it: add
        // them up, each scaled by its vector element; each part owns a range of the
        // result's elements.
        let run = |range: std::ops::Range<usize>| {
            let (mp, vp, op) = (mp as *const T, vp as *const T, op as *mut T);
            let len = range.len();
            // SAFETY: out's elements in `range` are contiguous and writable, not
            // overlapping the operands, and belong to this part alone.
            let out = unsafe { std::slice::from_raw_parts_mut(op.add(range.start), len) };
            out.fill(T::ZERO);
            if n_in == 0 {
                return;
            }
            if inner > 0 {
                // SAFETY: lines 0..n_in start `inner` apart (positive); this part reads
                // elements range.start.. of each, len of them, all inside the buffer;
                // the vector's elements are at k·v_stride.
                let (m, scales) = unsafe {
                    let span = (n_in - 1) * inner as usize + len;
                    let m = std::slice::from_raw_parts(mp.add(range.start), span);
                    let scales: Vec<T> = (0..n_in)
                        .map(|k| *vp.offset(k as isize * v_stride))
                        .collect();
                    (m, scales)
                };
                T::axpys(out, m, inner as usize, &scales);
                return;
            }
            // Lines walked backwards (a reversed view): one after the other.
            for k in 0..n_in {
                // SAFETY: line k along the result starts at k·inner and holds n_out
                // contiguous elements, of which this part reads `range`; vector element
                // k is at k·v_stride; both inside their buffers for k < n_in.
                unsafe {
                    let line = std::slice::from_raw_parts(
                        mp.offset(k as isize * inner).add(range.start),
                        len,
                    );
                    T::axpy(out, *vp.offset(k as isize * v_stride), line);
                }
            }
        };
        in_parts(n_out, parts, run);
        return true;
    }
    false
}

/// How many parts (threads) a product of `n_out` results over `n_in` terms is split
/// into: one below about 2^17 multiply-adds, where a thread costs more than it saves.
fn parts_for(n_out: usize, n_in: usize) -> usize {
    let work = n_out.saturating_mul(n_in);
    if work < 1 << 17 {
        1
    } else {
        rayon::current_num_threads().min(n_out / 64).max(1)
    }
}

/// Runs `f` on `parts` consecutive ranges covering `0..n`, in parallel when there are
/// several.
fn in_parts(n: usize, parts: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    if parts <= 1 {
        f(0..n);
        return;
    }
    let size = n.div_ceil(parts);
    rayon::scope(|s| {
        for p in 0..parts {
            let range = (p * size).min(n)..((p + 1) * size).min(n);
            let f = &f;
            s.spawn(move |_| f(range));
        }
    });
}

dot_support!(tl_dot_f64, f64, matrixmultiply::dgemm);
dot_support!(tl_dot_f32, f32, matrixmultiply::sgemm);

/// The typed storage of a growing buffer.
#[derive(Debug)]
enum Storage {
    Bool(Vec<bool>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    UInt8(Vec<u8>),
    Float32(Vec<f32>),
    Float64(Vec<f64>),
}

macro_rules! with_storage {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            Storage::Bool($v) => $body,
            Storage::Int8($v) => $body,
            Storage::Int16($v) => $body,
            Storage::Int32($v) => $body,
            Storage::Int64($v) => $body,
            Storage::UInt8($v) => $body,
            Storage::Float32($v) => $body,
            Storage::Float64($v) => $body,
        }
    };
}

/// A row-major buffer a kernel grows along axis 0 while it runs (a Scan's trace whose
/// length is known only at the end). New rows are zero until written. The kernel holds
/// a pointer to it: it reads `capacity_rows` and, while the rows fit, only writes `rows`
/// (the first two words, `repr(C)`); beyond, it calls `tl_grow` for room. The caller
/// takes the value after.
#[derive(Debug)]
#[repr(C)]
pub struct GrowBuffer {
    /// Rows the storage holds (zero-filled beyond `rows`), read by jitted code at offset 0.
    capacity_rows: i64,
    /// Rows in use, written by jitted code at offset 8.
    rows: i64,
    storage: Storage,
    /// Sizes of axes 1.. (fixed).
    row_shape: Vec<usize>,
}

impl GrowBuffer {
    /// Byte offsets of the capacity and the row count, for jitted code.
    pub const CAPACITY_OFFSET: i32 = 0;
    pub const ROWS_OFFSET: i32 = 8;

    /// An empty buffer of `dtype` whose rows have shape `row_shape`.
    pub fn new(dtype: DType, row_shape: &[usize]) -> GrowBuffer {
        let storage = match dtype {
            DType::Bool => Storage::Bool(Vec::new()),
            DType::Int8 => Storage::Int8(Vec::new()),
            DType::Int16 => Storage::Int16(Vec::new()),
            DType::Int32 => Storage::Int32(Vec::new()),
            DType::Int64 => Storage::Int64(Vec::new()),
            DType::UInt8 => Storage::UInt8(Vec::new()),
            DType::Float32 => Storage::Float32(Vec::new()),
            DType::Float64 => Storage::Float64(Vec::new()),
        };
        GrowBuffer {
            capacity_rows: 0,
            rows: 0,
            storage,
            row_shape: row_shape.to_vec(),
        }
    }

    /// The rows written so far.
    pub fn rows(&self) -> usize {
        self.rows.max(0) as usize
    }

    /// Sets the length to `rows` rows (new ones zero); when they do not fit, the storage
    /// grows to twice its rows (or to `rows`), zero-filled, so n single-row growths cost
    /// O(n) and memory stays under twice the final size. The data pointer, or `None` when
    /// the size overflows or the memory cannot be had (or would pass the output limit,
    /// `memory::output_limit`).
    pub fn grow(&mut self, rows: usize) -> Option<*mut u8> {
        let row: usize = self
            .row_shape
            .iter()
            .try_fold(1usize, |a, d| a.checked_mul(*d))?;
        let elems = rows.checked_mul(row)?;
        let limit = (crate::memory::output_limit() / 8).min(isize::MAX as usize / 8);
        if elems > limit {
            return None;
        }
        let (ptr, len) = with_storage!(&mut self.storage, v => {
            if elems > v.len() {
                let doubled = elems.max(2 * v.len()).min(limit);
                if v.try_reserve_exact(doubled - v.len()).is_ok() {
                    v.resize(doubled, Default::default());
                } else {
                    v.try_reserve_exact(elems - v.len()).ok()?;
                    v.resize(elems, Default::default());
                }
            }
            (v.as_mut_ptr().cast::<u8>(), v.len())
        });
        self.rows = rows as i64;
        self.capacity_rows = len.checked_div(row).map_or(i64::MAX, |r| r as i64);
        Some(ptr)
    }

    /// The value: `rows` rows of the row shape, exactly sized.
    pub fn into_value(self) -> crate::Result<TensorData> {
        let rows = self.rows();
        let mut shape = vec![rows];
        shape.extend(&self.row_shape);
        let elems: usize = shape.iter().product();
        let shape = IxDyn(&shape);
        with_storage!(self.storage, v => {
            let mut v = v;
            v.truncate(elems);
            ArrayD::from_shape_vec(shape, v)
                .map(TensorData::from_array)
                .map_err(|e| crate::RuntimeError::Internal(format!("grown buffer: {e}")))
        })
    }
}

/// `GrowBuffer::grow` for jitted code: the data pointer for `rows` rows, or null (on
/// fewer rows than the buffer has — it never shrinks under a running kernel, whose loops
/// may have read its length — on a too large size, or when memory is short; nothing is
/// changed then).
///
/// # Safety
/// `buffer` must point to a live `GrowBuffer` that nothing else accesses during the call.
pub unsafe extern "C" fn tl_grow(buffer: *mut GrowBuffer, rows: i64) -> *mut u8 {
    // SAFETY: upheld by the caller as documented.
    let buffer = unsafe { &mut *buffer };
    let Some(rows) = usize::try_from(rows).ok().filter(|r| *r >= buffer.rows()) else {
        return std::ptr::null_mut();
    };
    let grow = AssertUnwindSafe(|| buffer.grow(rows));
    match catch_unwind(grow) {
        Ok(Some(ptr)) => ptr,
        _ => std::ptr::null_mut(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ptr: *const f64, shape: &[usize], strides: &[isize]) -> Vec<i64> {
        let mut w = vec![ptr as i64];
        w.extend(shape.iter().map(|s| *s as i64));
        w.extend(strides.iter().map(|s| *s as i64));
        w
    }

    #[test]
    fn matrix_times_vector_matches_the_closed_form() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2×3
        let x = [1.0, -1.0, 2.0];
        let mut y = [0.0; 2];
        let (wa, wx, wy) = (
            words(a.as_ptr(), &[2, 3], &[3, 1]),
            words(x.as_ptr(), &[3], &[1]),
            words(y.as_mut_ptr(), &[2], &[1]),
        );
        // SAFETY: the words describe the live arrays above with their true shapes.
        let status = unsafe { tl_dot_f64(wa.as_ptr(), 2, wx.as_ptr(), 1, wy.as_ptr(), 1) };
        assert_eq!(status, 0);
        assert_eq!(y, [1.0 - 2.0 + 6.0, 4.0 - 5.0 + 12.0]);
    }

    #[test]
    fn a_grown_buffer_keeps_its_rows_and_is_returned_exactly_sized() {
        let mut g = GrowBuffer::new(DType::Int64, &[2]);
        for r in 1..=100usize {
            let p = g.grow(r).unwrap().cast::<i64>();
            // SAFETY: the buffer has r rows of 2 elements; row r-1 is inside.
            unsafe {
                *p.add(2 * (r - 1)) = r as i64;
                *p.add(2 * (r - 1) + 1) = -(r as i64);
            }
        }
        assert!(
            g.grow(usize::MAX / 4).is_none(),
            "overflowing sizes are refused"
        );
        assert_eq!(g.rows(), 100);
        // Capacity doubles only when rows run out: under twice the rows in use.
        assert!(
            g.capacity_rows >= 100 && g.capacity_rows < 200,
            "{}",
            g.capacity_rows
        );
        let v = g.into_value().unwrap();
        assert_eq!(v.shape(), &[100, 2]);
        let a = v.as_array::<i64>().unwrap();
        assert_eq!(a[[41, 0]], 42);
        assert_eq!(a[[99, 1]], -100);
    }

    #[test]
    fn disagreeing_shapes_write_nothing() {
        let a = [1.0; 6];
        let x = [1.0; 2];
        let mut y = [7.0; 2];
        let (wa, wx, wy) = (
            words(a.as_ptr(), &[2, 3], &[3, 1]),
            words(x.as_ptr(), &[2], &[1]),
            words(y.as_mut_ptr(), &[2], &[1]),
        );
        // SAFETY: as above; the function must refuse before reading past `x`.
        let status = unsafe { tl_dot_f64(wa.as_ptr(), 2, wx.as_ptr(), 1, wy.as_ptr(), 1) };
        assert_eq!(status, 1);
        assert_eq!(y, [7.0; 2]);
    }
}

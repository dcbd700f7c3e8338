//! Sparse CSR matrices (issue 21, part 4): conversions, sparse · dense products, sums and
//! scaling in both backends against the dense computation done here with ndarray; the
//! structure kept by scaling; errors for sparse values where dense ones are expected (at
//! graph building, at call time, for shapes that disagree); a sparse shared variable with
//! an update; the backend type check listing every offending value in one error; the
//! JIT's contiguous copy of a strided shared value.

use ndarray::{Array1, Array2, ShapeBuilder};
use tensorlift::ir::{FunctionGraph, TensorType};
use tensorlift::prelude::*;
use tensorlift::sparse::{
    csr_from_dense, csr_matrix, dense_from_sparse, dot, mul, sp_sum, structured_dot, transpose,
    CsrMatrix,
};
use tensorlift::testing::{assert_allclose, TestRng};
use tensorlift_compiler::{compile_for, Backend, Executable, TypeSupport, Unsupported};

/// A dense (rows × cols) float64 matrix with about `density` of its entries non-zero.
fn random_dense(rows: usize, cols: usize, density: f64, rng: &mut TestRng) -> Array2<f64> {
    Array2::from_shape_fn((rows, cols), |_| {
        if rng.next_f64() < density {
            (rng.next_f64() * 4.0 - 2.0 + 0.01).round_to(3)
        } else {
            0.0
        }
    })
}

trait Round {
    fn round_to(self, digits: i32) -> f64;
}
impl Round for f64 {
    fn round_to(self, digits: i32) -> f64 {
        let k = 10f64.powi(digits);
        (self * k).round() / k
    }
}

fn modes() -> [Mode; 2] {
    [Mode::Reference, Mode::Jit]
}

fn call(f: &Function, inputs: &[TensorData]) -> Vec<TensorData> {
    f.call(inputs)
        .unwrap_or_else(|e| panic!("{e}\n{}", f.dprint()))
}

#[test]
fn conversions_round_trip_and_keep_only_nonzeros() {
    let mut rng = TestRng::new(1);
    for (rows, cols, density) in [(5, 7, 0.3), (1, 1, 1.0), (4, 3, 0.0), (0, 3, 0.5)] {
        let dense = random_dense(rows, cols, density, &mut rng);
        let x = matrix("x", Float64);
        let s = csr_from_dense(&x);
        assert_eq!(s.ty().to_string(), "Csr(float64, shape=(?, ?))");
        for mode in modes() {
            let f = function(&[&x], &[&s, &dense_from_sparse(&s)])
                .mode(mode.clone())
                .compile()
                .unwrap();
            let out = call(&f, &[dense.clone().into()]);
            let m = out[0].as_csr().expect("a sparse result");
            assert_eq!(m.nnz(), dense.iter().filter(|v| **v != 0.0).count());
            assert_eq!(m.shape(), &[rows, cols]);
            let back = out[1].to_array::<f64>();
            assert_eq!(back, dense.clone().into_dyn(), "{mode:?}");
        }
    }
}

#[test]
fn products_sums_and_scaling_match_the_dense_computation() {
    let mut rng = TestRng::new(2);
    let (m, k, n) = (9, 6, 4);
    let a = random_dense(m, k, 0.35, &mut rng);
    let b = Array2::from_shape_fn((k, n), |_| rng.next_f64() - 0.5);
    let v = Array1::from_shape_fn(k, |_| rng.next_f64() - 0.5);
    let row = Array2::from_shape_fn((1, k), |_| rng.next_f64() + 0.5);
    let full = Array2::from_shape_fn((m, k), |_| rng.next_f64() + 0.5);
    let csr: TensorData = CsrMatrix::from_dense(&a.clone().into()).unwrap().into();

    let s = csr_matrix("s", Float64);
    let bv = matrix("b", Float64);
    let vv = vector("v", Float64);
    let rowv = tensor("row", Float64, [Some(1), None]);
    let fullv = matrix("full", Float64);
    let outs = [
        dot(&s, &bv),
        dot(&s, &vv),
        sp_sum(&s, None),
        sp_sum(&s, Some(0)),
        sp_sum(&s, Some(-1)),
        dense_from_sparse(&mul(&s, 2.5)),
        dense_from_sparse(&mul(&s, &rowv)),
        dense_from_sparse(&mul(&s, &fullv)),
    ];
    let want: Vec<TensorData> = vec![
        a.dot(&b).into(),
        a.dot(&v).into(),
        TensorData::scalar(a.sum()),
        a.sum_axis(ndarray::Axis(0)).into(),
        a.sum_axis(ndarray::Axis(1)).into(),
        (&a * 2.5).into(),
        (&a * &row).into(),
        (&a * &full).into(),
    ];
    let refs: Vec<&Var> = outs.iter().collect();
    for mode in modes() {
        let f = function(&[&s, &bv, &vv, &rowv, &fullv], &refs)
            .mode(mode.clone())
            .compile()
            .unwrap();
        let got = call(
            &f,
            &[
                csr.clone(),
                b.clone().into(),
                v.clone().into(),
                row.clone().into(),
                full.clone().into(),
            ],
        );
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_allclose(&format!("{mode:?} output {i}"), g, w).unwrap();
        }
    }
}

#[test]
fn transpose_matches_the_dense_transpose_in_canonical_form() {
    let mut rng = TestRng::new(5);
    let a = random_dense(7, 11, 0.3, &mut rng);
    let s = csr_matrix("s", Float64);
    let t = transpose(&s);
    assert_eq!(t.ty().to_string(), "Csr(float64, shape=(?, ?))");
    // PyTensor's spellings: x.T, x.dot(d), x.toarray(), structured_dot.
    let v = vector("v", Float64);
    assert_eq!(s.t().ty(), t.ty());
    assert_eq!(s.dot(&v).ty(), dot(&s, &v).ty());
    assert_eq!(structured_dot(&s, &v).ty(), dot(&s, &v).ty());
    assert_eq!(
        s.toarray().ty().to_string(),
        "Matrix(float64, shape=(?, ?))"
    );
    for mode in modes() {
        let f = function(&[&s], &[&t]).mode(mode.clone()).compile().unwrap();
        let csr: TensorData = CsrMatrix::from_dense(&a.clone().into()).unwrap().into();
        let out = call(&f, &[csr]);
        let got = out[0].as_csr().unwrap();
        // Rebuilt through from_parts' checks: sorted, in range.
        let rebuilt = CsrMatrix::from_parts(
            [11, 7],
            got.indptr().to_vec(),
            got.indices().to_vec(),
            got.values().clone(),
        )
        .unwrap();
        assert_eq!(
            rebuilt.to_dense().to_array::<f64>(),
            a.t().to_owned().into_dyn(),
            "{mode:?}"
        );
    }
}

#[test]
fn gradients_reach_the_dense_operand_of_a_sparse_product() {
    // A logistic-regression-style cost with a sparse design matrix: its gradient with
    // respect to w equals the one of the same cost with the dense matrix.
    let mut rng = TestRng::new(6);
    let a = random_dense(40, 9, 0.25, &mut rng);
    let wv = Array1::from_shape_fn(9, |_| rng.next_f64() - 0.5);
    let b = Array2::from_shape_fn((9, 3), |_| rng.next_f64() - 0.5);
    let s = csr_matrix("s", Float64);
    let d = matrix("d", Float64);
    let w = vector("w", Float64);
    let m = matrix("m", Float64);
    let sparse_cost = dot(&s, &w).exp().log1p().sum(All) + dot(&s, &m).tanh().sum(All);
    let dense_cost = d.dot(&w).exp().log1p().sum(All) + d.dot(&m).tanh().sum(All);
    let sparse_g = grad(&sparse_cost, &[&w, &m]).unwrap();
    let dense_g = grad(&dense_cost, &[&w, &m]).unwrap();
    let want = function(&[&d, &w, &m], &[&dense_g[0], &dense_g[1]])
        .mode(Mode::Reference)
        .compile()
        .unwrap();
    let want = call(
        &want,
        &[a.clone().into(), wv.clone().into(), b.clone().into()],
    );
    let csr: TensorData = CsrMatrix::from_dense(&a.into()).unwrap().into();
    for mode in modes() {
        let f = function(&[&s, &w, &m], &[&sparse_g[0], &sparse_g[1]])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let got = call(&f, &[csr.clone(), wv.clone().into(), b.clone().into()]);
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_allclose(&format!("{mode:?} gradient {k}"), g, w).unwrap();
        }
    }
    // With respect to the sparse matrix itself: an error naming the op.
    let e = grad(&sparse_cost, &[&s]).unwrap_err().to_string();
    assert!(e.contains("CsrDot") && e.contains("sparse"), "{e}");
}

#[test]
fn sparse_values_pass_through_ifelse_and_kept_graphs() {
    let s = csr_matrix("s", Float64);
    let v = vector("v", Float64);
    let c = scalar("c", Bool);
    let inner_s = csr_matrix("inner", Float64);
    let inner_v = vector("iv", Float64);
    let op = tensorlift::ir::op_from_graph(
        &[&inner_s, &inner_v],
        &[&dot(&mul(&inner_s, 2.0), &inner_v)],
    )
    .unwrap()
    .inline(false);
    let kept = op.apply(&[&s, &v]).unwrap().remove(0);
    let chosen = tensorlift::ir::ifelse(&c, &[&dot(&s, &v)], &[&kept]).remove(0);
    let m = CsrMatrix::from_vecs([2, 2], vec![0, 1, 2], vec![1, 0], vec![3.0, 5.0]).unwrap();
    for mode in modes() {
        let f = function(&[&s, &v, &c], &[&chosen])
            .mode(mode.clone())
            .compile()
            .unwrap();
        for (cond, want) in [(true, vec![6.0, 5.0]), (false, vec![12.0, 10.0])] {
            let out = call(
                &f,
                &[
                    m.clone().into(),
                    ndarray::array![1.0, 2.0].into(),
                    TensorData::scalar(cond),
                ],
            );
            assert_eq!(out[0].to_f64_vec(), want, "{mode:?} {cond}");
        }
    }
}

#[test]
fn scaling_keeps_the_structure_and_promotes_like_numpy() {
    let s32 = csr_matrix("s", Float32);
    assert_eq!(
        mul(&s32, 2.0).ty().to_string(),
        "Csr(float32, shape=(?, ?))"
    );
    assert_eq!(
        mul(&s32, scalar("a", Float64)).ty().to_string(),
        "Csr(float64, shape=(?, ?))"
    );
    let si = csr_matrix("si", Int64);
    assert_eq!(
        sp_sum(&si, None).ty().to_string(),
        "Scalar(int64, shape=())"
    );
    // A stored zero stays stored after scaling by zero: the structure is the input's.
    let m =
        CsrMatrix::from_vecs([2, 3], vec![0, 2, 3], vec![0, 2, 1], vec![1.0f32, 2.0, 3.0]).unwrap();
    for mode in modes() {
        let f = function(&[&s32], &[&mul(&s32, 0.0)])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let out = call(&f, &[m.clone().into()]);
        let got = out[0].as_csr().unwrap();
        assert_eq!(got.indptr(), m.indptr());
        assert_eq!(got.indices(), m.indices());
        assert_eq!(got.values().to_f64_vec(), vec![0.0; 3]);
    }
    // Integer products wrap as NumPy's do.
    let big = CsrMatrix::from_vecs([1, 2], vec![0, 1], vec![1], vec![i64::MAX]).unwrap();
    let f = function(&[&si], &[&dense_from_sparse(&mul(&si, 2i64))])
        .compile()
        .unwrap();
    let out = call(&f, &[big.into()]);
    assert_eq!(
        out[0].to_array::<i64>().into_raw_vec_and_offset().0,
        vec![0, i64::MAX.wrapping_mul(2)]
    );
}

#[test]
fn sparse_values_where_dense_ones_are_expected_are_errors_naming_the_op() {
    let s = csr_matrix("s", Float64);
    let e = s.exp().check().unwrap_err().to_string();
    assert!(
        e.contains("Exp") && e.contains("sparse") && e.contains("dense_from_sparse"),
        "{e}"
    );
    let e = s.sum(All).check().unwrap_err().to_string();
    assert!(e.contains("sparse") && e.contains("sp_sum"), "{e}");
    let e = dot(&matrix("d", Float64), &matrix("e", Float64))
        .check()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("CsrDot") && e.contains("input 0 must be a sparse"),
        "{e}"
    );
    let e = dot(&s, &s).check().unwrap_err().to_string();
    assert!(e.contains("input 1 must be a dense"), "{e}");
    let e = mul(&s, vector("v", Float64))
        .check()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("CsrMul") && e.contains("scalar or matrix"),
        "{e}"
    );
    let e = sp_sum(&s, Some(2)).check().unwrap_err().to_string();
    assert!(e.contains("axis"), "{e}");

    let v = vector("v", Float64);
    let m = CsrMatrix::from_vecs([2, 3], vec![0, 1, 2], vec![0, 1], vec![1.0, 2.0]).unwrap();
    for mode in modes() {
        let f = function(&[&s, &v], &[&dot(&s, &v)])
            .mode(mode.clone())
            .compile()
            .unwrap();
        // A product whose sizes disagree, at call time.
        let e = f
            .call(&[m.clone().into(), ndarray::array![1.0, 2.0].into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("CsrDot") && e.contains("3 rows"),
            "{mode:?}: {e}"
        );
        // A dense value for a sparse input, and a sparse one for a dense input.
        let e = f
            .call(&[
                ndarray::array![[1.0, 0.0, 0.0]].into(),
                ndarray::array![1.0, 2.0, 3.0].into(),
            ])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("input 0") && e.contains("got a dense array"),
            "{e}"
        );
        let e = f
            .call(&[m.clone().into(), m.clone().into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("got a sparse CSR matrix"), "{e}");
    }
    // Gradients and vectorize refuse sparse ops with a reason.
    let x = matrix("x", Float64);
    let cost = dense_from_sparse(&mul(&csr_from_dense(&x), 2.0)).sum(All);
    let e = grad(&cost, &[&x]).unwrap_err().to_string();
    assert!(e.contains("sparse") && e.contains("not implemented"), "{e}");
}

#[test]
fn a_sparse_shared_variable_is_read_and_updated_in_both_backends() {
    let m =
        CsrMatrix::from_vecs([2, 2], vec![0, 1, 3], vec![1, 0, 1], vec![1.0, 2.0, 4.0]).unwrap();
    for mode in modes() {
        let w = shared("w", m.clone().into());
        assert_eq!(w.ty().to_string(), "Csr(float64, shape=(?, ?))");
        let v = vector("v", Float64);
        let f = function(&[&v], &[&dot(&w, &v)])
            .updates(&[(&w, &mul(&w, 0.5))])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let x: TensorData = ndarray::array![1.0, 1.0].into();
        assert_eq!(
            call(&f, std::slice::from_ref(&x))[0].to_f64_vec(),
            vec![1.0, 6.0]
        );
        assert_eq!(
            call(&f, std::slice::from_ref(&x))[0].to_f64_vec(),
            vec![0.5, 3.0]
        );
        let now = w.get_value().unwrap();
        assert_eq!(
            now.as_csr().unwrap().values().to_f64_vec(),
            vec![0.25, 0.5, 1.0]
        );
        // A dense value does not fit a sparse shared variable.
        assert!(w
            .set_value(ndarray::array![[1.0, 2.0], [3.0, 4.0]].into())
            .is_err());
    }
}

/// A backend with no sparse type, as a dense-only accelerator would declare.
struct DenseOnly;

impl Backend for DenseOnly {
    fn name(&self) -> &'static str {
        "dense-only"
    }
    fn type_support(&self, ty: &TensorType) -> TypeSupport {
        if ty.is_sparse() {
            TypeSupport::Unsupported("convert to dense before this backend".into())
        } else {
            TypeSupport::Native
        }
    }
    fn unsupported(&self, _fgraph: &FunctionGraph) -> Vec<Unsupported> {
        Vec::new()
    }
    fn compile(
        &self,
        _fgraph: FunctionGraph,
    ) -> Result<Box<dyn Executable>, tensorlift_compiler::CompileError> {
        Err(tensorlift_compiler::CompileError::Internal(
            "DenseOnly compiles nothing in this test".into(),
        ))
    }
}

#[test]
fn a_backend_without_the_sparse_type_lists_every_sparse_value_in_one_error() {
    let s = csr_matrix("s", Float64);
    let x = matrix("x", Float64);
    let y = dot(&mul(&s, 3.0), &dense_from_sparse(&csr_from_dense(&x)));
    let fg = FunctionGraph::new(&[s.clone(), x.clone()], &[y]).unwrap();
    let e = match compile_for(fg, &Mode::Reference.without_rewrites(), &DenseOnly) {
        Ok(_) => panic!("a sparse graph compiled for a dense-only backend"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("dense-only backend cannot compile 3"), "{e}");
    assert!(e.contains("input s"), "{e}");
    assert!(e.contains("CsrMul"), "{e}");
    assert!(e.contains("CsrFromDense"), "{e}");
    assert!(e.contains("convert to dense before this backend"), "{e}");
    assert!(e.contains("Csr(float64"), "{e}");
    // The JIT holds sparse values itself and runs their ops as calls of the runtime.
    let f = function(&[&s, &x], &[&dot(&mul(&s, 3.0), &x)])
        .mode(Mode::Jit.strict())
        .compile()
        .unwrap();
    assert!(f.plan().contains("CSR kernels"), "{}", f.plan());
}

#[test]
fn the_jit_reads_a_strided_shared_value_through_a_contiguous_copy() {
    let mut rng = TestRng::new(3);
    let data = Array2::from_shape_fn((64, 48).f(), |_| rng.next_f64());
    assert!(!data.is_standard_layout());
    let strided: TensorData = data.clone().into();
    let w = shared("w", strided.clone());
    let x = matrix("x", Float64);
    let out = (&x * &w).exp().sum(All);
    let jit = function(&[&x], &[&out]).mode(Mode::Jit).compile().unwrap();
    let reference = function(&[&x], &[&out])
        .mode(Mode::Reference)
        .compile()
        .unwrap();
    assert!(reference.backend_copy(&w).is_none());
    let copy = jit
        .backend_copy(&w)
        .expect("the JIT keeps a contiguous copy");
    assert!(copy.is_standard_layout() && copy.same_as(&strided));
    let xs: TensorData = Array2::from_shape_fn((64, 48), |_| rng.next_f64()).into();
    assert_allclose(
        "strided shared",
        &call(&jit, std::slice::from_ref(&xs))[0],
        &call(&reference, std::slice::from_ref(&xs))[0],
    )
    .unwrap();
    // A new stored value replaces the copy: contiguous, none is needed.
    let fresh: TensorData = Array2::from_elem((64, 48), 0.5).into();
    w.set_value(fresh.clone()).unwrap();
    assert!(jit.backend_copy(&w).is_none());
    assert_allclose(
        "after set_value",
        &call(&jit, std::slice::from_ref(&xs))[0],
        &call(&reference, std::slice::from_ref(&xs))[0],
    )
    .unwrap();
    // In another context, a strided value there is read the same way (copied per call),
    // and the default context's copy is untouched.
    let ctx = SharedContext::new();
    let scaled: TensorData = (&data * 2.0).into();
    let strided_ctx: TensorData =
        Array2::from_shape_fn((64, 48).f(), |(i, j)| data[[i, j]] * 2.0).into();
    assert!(!strided_ctx.is_standard_layout() && strided_ctx.same_as(&scaled));
    w.set_value_in(&ctx, strided_ctx).unwrap();
    let in_ctx = jit.call_in(&ctx, std::slice::from_ref(&xs)).unwrap();
    let want = reference.call_in(&ctx, std::slice::from_ref(&xs)).unwrap();
    assert_allclose("strided value in a context", &in_ctx[0], &want[0]).unwrap();
    assert!(
        jit.backend_copy(&w).is_none(),
        "the default value is still contiguous"
    );
    // A strided value again: a new copy of the new value.
    let again: TensorData = data.t().to_owned().reversed_axes().into();
    w.set_value(again.clone()).unwrap();
    let copy = jit
        .backend_copy(&w)
        .expect("a copy of the new strided value");
    assert!(copy.same_as(&again));
}

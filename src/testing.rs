//! Testing helpers (DESIGN §12): random inputs from fixed seeds and `compare_backends`,
//! which runs one graph in the reference backend and another mode and checks that both
//! agree — same outputs (shape, dtype, values within a dtype-aware tolerance) or both an
//! error.

use crate::{function, matrix, tensor, DType, Literal, Mode, TensorData, TensorType, Var};

/// A small deterministic generator (64-bit LCG, high bits), enough for test inputs.
#[derive(Clone, Debug)]
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> TestRng {
        TestRng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Random values of `ty` (unknown sizes become `default_size`): floats uniform in
/// [lo, hi), integers in [lo, hi) truncated, bools half true.
pub fn random_value(
    ty: &TensorType,
    default_size: usize,
    (lo, hi): (f64, f64),
    rng: &mut TestRng,
) -> TensorData {
    let shape: Vec<usize> = ty.shape.iter().map(|s| s.unwrap_or(default_size)).collect();
    random_of_shape(ty.dtype, &shape, (lo, hi), rng)
}

/// Float64 values of `shape` spread over [lo, hi) by the golden ratio: deterministic,
/// distinct and away from the ends (points for gradient checks and batching tests).
pub fn spread(shape: &[usize], lo: f64, hi: f64) -> TensorData {
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n)
        .map(|i| lo + (hi - lo) * ((i as f64 * 0.618_034 + 0.1) % 1.0))
        .collect();
    TensorData::from_vec(shape, values).unwrap_or_else(|_| TensorData::scalar(f64::NAN))
}

/// Random values of a given dtype and shape (see `random_value`).
pub fn random_of_shape(
    dtype: DType,
    shape: &[usize],
    (lo, hi): (f64, f64),
    rng: &mut TestRng,
) -> TensorData {
    let n: usize = shape.iter().product();
    let values: Vec<Literal> = (0..n)
        .map(|_| {
            let u = rng.next_f64();
            let x = lo + (hi - lo) * u;
            if dtype.is_float() {
                Literal::Float(x)
            } else if dtype.is_bool() {
                Literal::Bool(u < 0.5)
            } else {
                Literal::Int(x.floor() as i64)
            }
        })
        .collect();
    TensorData::from_literals(shape, &values, dtype)
        .unwrap_or_else(|_| TensorData::full(shape, Literal::Int(0), dtype))
}

/// Tolerances `(rtol, atol)` for comparing values of a dtype across backends.
pub fn tolerance(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::Float64 => (1e-9, 1e-12),
        DType::Float32 => (2e-5, 1e-6),
        _ => (0.0, 0.0),
    }
}

/// Every element as an f64 (bools as 0/1), in row-major order.
pub fn as_f64s(d: &TensorData) -> Vec<f64> {
    d.literals()
        .into_iter()
        .map(|l| match l {
            Literal::Bool(b) => b as u8 as f64,
            Literal::Int(i) => i as f64,
            Literal::Float(f) => f,
        })
        .collect()
}

/// Checks that two results agree: same shape, dtype and values within `tolerance`.
pub fn assert_allclose(label: &str, got: &TensorData, want: &TensorData) -> Result<(), String> {
    allclose(label, got, want, tolerance(want.dtype()), "reference")
}

/// Checks that `got` has `want`'s shape and dtype and values within `(rtol, atol)` (NaN
/// equals NaN); `source` names where `want` comes from in the message.
pub fn allclose(
    label: &str,
    got: &TensorData,
    want: &TensorData,
    (rtol, atol): (f64, f64),
    source: &str,
) -> Result<(), String> {
    if got.dtype() != want.dtype() || got.shape() != want.shape() {
        return Err(format!(
            "{label}: got {} {:?}, {source} gives {} {:?}",
            got.dtype(),
            got.shape(),
            want.dtype(),
            want.shape()
        ));
    }
    for (i, (g, w)) in as_f64s(got).into_iter().zip(as_f64s(want)).enumerate() {
        let same = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= atol + rtol * w.abs();
        if !same {
            return Err(format!("{label}: element {i} is {g}, {source} gives {w}"));
        }
    }
    Ok(())
}

/// Compiles `inputs → outputs` in the reference backend and in `mode`, calls both on
/// `values`, and checks that they agree (both `Err` also agrees). Returns a description
/// of the first difference.
pub fn compare_backends(
    inputs: &[&Var],
    outputs: &[&Var],
    values: &[TensorData],
    mode: Mode,
) -> Result<(), String> {
    let reference = function(inputs, outputs)
        .mode(Mode::Reference)
        .compile()
        .map_err(|e| format!("reference compile: {e}"))?;
    let other = function(inputs, outputs)
        .mode(mode.clone())
        .compile()
        .map_err(|e| format!("{:?} compile: {e}", mode.backend))?;
    match (reference.call(values), other.call(values)) {
        (Ok(want), Ok(got)) => {
            if want.len() != got.len() {
                return Err(format!("{} outputs vs {}", got.len(), want.len()));
            }
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_allclose(&format!("output {k}"), g, w)
                    .map_err(|e| format!("{e}\ngraph:\n{}", other.dprint()))?;
            }
            Ok(())
        }
        (Err(_), Err(_)) => Ok(()),
        (Ok(_), Err(e)) => Err(format!(
            "{:?} fails where the reference works: {e}",
            mode.backend
        )),
        (Err(e), Ok(_)) => Err(format!(
            "the reference fails ({e}) but {:?} returns values",
            mode.backend
        )),
    }
}

/// A random float64 graph for property tests: inputs `x`, `y` (matrices), `row` (1, n) and
/// `col` (m, 1); each step `(code, a, b)` applies `op(code, pool[a], pool[b])` to values
/// already in the pool (indices taken modulo its size) and adds the result. Outputs: the
/// last value and the sum of the middle one.
pub fn random_graph(
    steps: &[(u8, usize, usize)],
    op: impl Fn(u8, &Var, &Var) -> Var,
) -> (Vec<Var>, Vec<Var>) {
    let inputs = vec![
        matrix("x", DType::Float64),
        matrix("y", DType::Float64),
        tensor("row", DType::Float64, [Some(1), None]),
        tensor("col", DType::Float64, [None, Some(1)]),
    ];
    let mut pool = inputs.clone();
    for &(code, a, b) in steps {
        let v = op(code, &pool[a % pool.len()], &pool[b % pool.len()]);
        pool.push(v);
    }
    let n = pool.len();
    let outputs = vec![pool[n - 1].clone(), pool[n / 2].sum(None)];
    (inputs, outputs)
}

//! `verify_grad`: checks a graph's symbolic gradient against finite differences (DESIGN
//! §7), in any mode, as PyTensor's `verify_grad` does for its ops.
//!
//! The output is projected on a fixed random tensor to a scalar cost; the cost's
//! gradient, compiled and called, gives a directional derivative along random directions,
//! which must match the central difference of the cost along them within a tolerance of
//! the least precise float dtype involved. The differences are taken in float64: of the
//! same function built on float64 inputs.

use crate::testing::{as_f64s, random_of_shape, TestRng};
use crate::{constant, function, tensor, All, DType, Error, Mode, RuntimeError, TensorData, Var};

/// Options of `verify_grad`.
#[derive(Clone, Debug)]
pub struct VerifyGrad {
    /// The mode the cost and its gradient are compiled in.
    pub mode: Mode,
    /// Seed of the projection and the directions.
    pub seed: u64,
    /// How many random directions are checked.
    pub directions: usize,
    /// The finite-difference step (default 1e-6; the differences are taken in float64).
    pub eps: Option<f64>,
    /// The relative tolerance (default: 1e-5 when every float is float64, else 2e-3),
    /// relative to the larger of 1 and the sum of the magnitudes of the directional
    /// derivative's terms.
    pub tolerance: Option<f64>,
}

impl Default for VerifyGrad {
    fn default() -> Self {
        VerifyGrad {
            mode: Mode::default(),
            seed: 0,
            directions: 2,
            eps: None,
            tolerance: None,
        }
    }
}

impl VerifyGrad {
    /// The default options in `mode`.
    ///
    /// ```
    /// use tensorlift::prelude::*;
    /// let options = VerifyGrad::in_mode(Mode::Reference);
    /// let point: TensorData = ndarray::array![0.5, -1.0].into();
    /// verify_grad(|v| (v[0].sin() * &v[0]).sum(All), &[point], &options)?;
    /// # Ok::<(), tensorlift::Error>(())
    /// ```
    pub fn in_mode(mode: Mode) -> VerifyGrad {
        VerifyGrad {
            mode,
            ..VerifyGrad::default()
        }
    }
}

/// Checks the gradient of `f` at `points` (one value per input of `f`; an input gets a
/// static size of 1 where its point has size 1, so it may broadcast there). Returns an
/// error naming the direction and both derivatives when they disagree, or the error of
/// building, differentiating, compiling or calling the graph.
///
/// ```
/// use tensorlift::gradcheck::{verify_grad, VerifyGrad};
/// use tensorlift::prelude::*;
/// let x: TensorData = ndarray::array![0.3, -1.2, 2.0].into();
/// verify_grad(|v| (v[0].sin() * &v[0]).sum(None), &[x], &VerifyGrad::default())?;
/// # Ok::<(), tensorlift::Error>(())
/// ```
pub fn verify_grad(
    f: impl Fn(&[Var]) -> Var,
    points: &[TensorData],
    options: &VerifyGrad,
) -> Result<(), Error> {
    let inputs: Vec<Var> = points
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let shape: Vec<Option<usize>> =
                p.shape().iter().map(|s| (*s == 1).then_some(1)).collect();
            tensor(&format!("x{k}"), p.dtype(), shape)
        })
        .collect();
    let refs: Vec<&Var> = inputs.iter().collect();
    let out = f(&inputs);
    out.check()?;
    if !out.dtype().is_float() {
        return Err(failure(format!("the output is {}, not a float", out.ty())));
    }
    let mut rng = TestRng::new(options.seed);
    let forward = function(&refs, &[&out])
        .mode(options.mode.clone())
        .compile()?;
    let value = forward.call(points)?.remove(0);
    let projection_value = random_of_shape(out.dtype(), value.shape(), (-1.0, 1.0), &mut rng);
    let cost = (&out * constant(projection_value.clone())).sum(All);
    let float_inputs: Vec<&Var> = inputs.iter().filter(|x| x.dtype().is_float()).collect();
    let grads = crate::ir::grad(&cost, &float_inputs)?;
    let mut outputs = vec![&cost];
    outputs.extend(grads.iter());
    let compiled = function(&refs, &outputs)
        .mode(options.mode.clone())
        .compile()?;
    let at = compiled.call(points)?;
    let analytic: Vec<Vec<f64>> = at[1..].iter().map(as_f64s).collect();
    let least_precise = inputs
        .iter()
        .map(|x| x.dtype())
        .chain([out.dtype()])
        .any(|d| d == DType::Float32);
    let eps = options.eps.unwrap_or(1e-6);
    let tolerance = options
        .tolerance
        .unwrap_or(if least_precise { 2e-3 } else { 1e-5 });
    // The same function on float64 inputs, for the finite differences.
    let wide: Vec<Var> = inputs
        .iter()
        .enumerate()
        .map(|(k, x)| {
            let dtype = if x.dtype().is_float() {
                DType::Float64
            } else {
                x.dtype()
            };
            tensor(&format!("x{k}"), dtype, x.static_shape().to_vec())
        })
        .collect();
    let wide_out = f(&wide);
    wide_out.check()?;
    let wide_projection = tensorlift_runtime::cast(&projection_value, DType::Float64);
    let wide_cost = (wide_out.cast(DType::Float64) * constant(wide_projection)).sum(All);
    let wide_refs: Vec<&Var> = wide.iter().collect();
    let wide_fn = function(&wide_refs, &[&wide_cost])
        .mode(options.mode.clone())
        .compile()?;
    let cost_at = |shifted: &[TensorData]| -> Result<f64, Error> {
        let values = wide_fn.call(shifted)?;
        Ok(as_f64s(&values[0])[0])
    };
    for direction in 0..options.directions {
        let mut derivative = 0.0;
        let mut magnitude = 0.0;
        let (mut plus, mut minus) = (Vec::new(), Vec::new());
        let mut float_k = 0;
        for p in points {
            if !p.dtype().is_float() {
                plus.push(p.clone());
                minus.push(p.clone());
                continue;
            }
            let v = as_f64s(&random_of_shape(
                DType::Float64,
                p.shape(),
                (-1.0, 1.0),
                &mut rng,
            ));
            for (g, d) in analytic[float_k].iter().zip(&v) {
                derivative += g * d;
                magnitude += (g * d).abs();
            }
            float_k += 1;
            let x = as_f64s(p);
            let shift = |sign: f64| -> Result<TensorData, Error> {
                let moved: Vec<f64> = x.iter().zip(&v).map(|(a, d)| a + sign * eps * d).collect();
                Ok(TensorData::from_vec(p.shape(), moved)?)
            };
            plus.push(shift(1.0)?);
            minus.push(shift(-1.0)?);
        }
        let numeric = (cost_at(&plus)? - cost_at(&minus)?) / (2.0 * eps);
        let scale = magnitude.max(numeric.abs()).max(1.0);
        let agree = (derivative - numeric).abs() <= tolerance * scale;
        if !agree || !derivative.is_finite() {
            return Err(failure(format!(
                "along random direction {direction}: the gradient gives {derivative:.9e}, \
                 finite differences (eps {eps:e}) give {numeric:.9e}; tolerance {tolerance:e} \
                 of {scale:.3e}"
            )));
        }
    }
    Ok(())
}

fn failure(message: String) -> Error {
    Error::Runtime(RuntimeError::op("verify_grad", message))
}

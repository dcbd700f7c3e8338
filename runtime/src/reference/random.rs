//! Random draws (`RandomOp`), the one implementation both backends run.
//!
//! Owns: the stream. A state `[key, counter]` and a chunk index seed a xoshiro256++
//! generator (`rand_xoshiro`; the 256-bit seed is the three words spread by SplitMix64);
//! the draws are made in chunks of `CHUNK` values, each from its own generator, so a
//! large draw splits over threads with the same values as one thread makes, and every
//! backend gives the same values bit for bit. The distributions'
//! algorithms are `rand_distr`'s. The next state is `[key, counter + 1]`. Parameters
//! outside a distribution's domain are errors naming the op and the parameter (NumPy
//! raises there too).

use ndarray::{ArrayD, IxDyn};
use rand_core::SeedableRng;
use rand_distr::{Distribution as _, StandardNormal, StandardUniform};
use rand_xoshiro::Xoshiro256PlusPlus as Generator;
use rayon::prelude::*;
use tensorlift_ir::ops::{Distribution, RandomOp};
use tensorlift_ir::{DType, TensorData};

use crate::broadcast::{broadcast_shape, Operand};
use crate::error::{Result, RuntimeError};
use crate::scalar::cast;

/// Draws per generator (the unit a large draw is split into).
pub const CHUNK: usize = 8192;

/// Evaluates a `RandomOp` node: `args` are the state, the size and the parameters (their
/// static shapes in `static_shapes`, for DESIGN §3's broadcasting rule).
pub fn eval_random(
    name: &str,
    op: RandomOp,
    static_shapes: &[&[Option<usize>]],
    args: &[TensorData],
) -> Result<Vec<TensorData>> {
    let state = cast(&args[0], DType::Int64)
        .to_i64_vec()
        .filter(|v| v.len() == 2)
        .ok_or_else(|| RuntimeError::op(name, "input 0 must be an RNG state [key, counter]"))?;
    let (key, counter) = (state[0], state[1]);
    let size: Vec<usize> = args[1]
        .to_i64_vec()
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            usize::try_from(s)
                .map_err(|_| RuntimeError::op(name, format!("size {s} must not be negative")))
        })
        .collect::<Result<_>>()?;
    crate::memory::check_output(name, op.dtype, &size)?;
    let n: usize = size.iter().product();
    let cores = op.dist.param_core_ndims();
    // Each parameter broadcast over the draws' batch shape (float64 values).
    let labels: Vec<String> = (0..cores.len()).map(|k| format!("parameter {k}")).collect();
    let mut params: Vec<Param> = Vec::new();
    for (k, core) in cores.iter().enumerate() {
        let p = &args[2 + k];
        let batch = p.ndim() - core;
        let operand = Operand {
            label: &labels[k],
            static_shape: &static_shapes[2 + k][..batch],
            shape: &p.shape()[..batch],
        };
        broadcast_shape(name, size.len(), &[operand], Some(("the size", &size)))?;
        params.push(Param::new(p, &size, *core));
    }
    let next = TensorData::from_vec(&[2], vec![key, counter.wrapping_add(1)])?;
    let draws = match op.dist {
        Distribution::MvNormal => mv_normal(name, op, key, counter, &size, &params)?,
        Distribution::Categorical => {
            let values = sample_each::<i64>(n, key, counter, |rng, i| {
                categorical(name, rng, &params[0], i)
            })?;
            TensorData::from_vec(&size, values)?
        }
        Distribution::Bernoulli | Distribution::Poisson | Distribution::Binomial => {
            let values = sample_each::<i64>(n, key, counter, |rng, i| {
                discrete(name, op.dist, rng, &params, i)
            })?;
            TensorData::from_vec(&size, values)?
        }
        // Scalar parameters: one tight loop per chunk.
        Distribution::Normal | Distribution::Uniform
            if params.iter().all(|p| matches!(p, Param::Scalar(_))) =>
        {
            let (a, b) = (params[0].at(0), params[1].at(0));
            let normal = op.dist == Distribution::Normal;
            if normal && (b.is_nan() || b < 0.0) {
                return Err(bad(name, "std (parameter 1)", ">= 0", b));
            }
            let values = sample_chunks(n, 1, key, counter, |rng, _, out: &mut [f64]| {
                if normal {
                    for x in out.iter_mut() {
                        let z: f64 = StandardNormal.sample(rng);
                        *x = a + b * z;
                    }
                } else {
                    for x in out.iter_mut() {
                        let u: f64 = StandardUniform.sample(rng);
                        *x = a + (b - a) * u;
                    }
                }
                Ok(())
            })?;
            cast(&TensorData::from_vec(&size, values)?, op.dtype)
        }
        Distribution::Normal | Distribution::Uniform | Distribution::Gamma | Distribution::Beta => {
            let values = sample_each::<f64>(n, key, counter, |rng, i| {
                continuous(name, op.dist, rng, &params, i)
            })?;
            cast(&TensorData::from_vec(&size, values)?, op.dtype)
        }
    };
    Ok(vec![next, draws])
}

/// A parameter's values per draw: one for all, or one per draw (row-major over the
/// draws' batch shape); core parameters keep their core block per draw.
enum Param {
    Scalar(f64),
    Each { values: Vec<f64>, core_len: usize },
}

impl Param {
    fn new(p: &TensorData, size: &[usize], core: usize) -> Param {
        let p = cast(p, DType::Float64);
        let Some(a) = p.as_array::<f64>() else {
            return Param::Scalar(f64::NAN);
        };
        if core == 0 && a.len() == 1 {
            return Param::Scalar(a.iter().next().copied().unwrap_or(f64::NAN));
        }
        let core_shape = &a.shape()[a.ndim() - core..];
        let mut target: Vec<usize> = size.to_vec();
        target.extend_from_slice(core_shape);
        let values = match a.broadcast(IxDyn(&target)) {
            Some(b) => b.iter().copied().collect(),
            None => Vec::new(),
        };
        Param::Each {
            values,
            core_len: core_shape.iter().product(),
        }
    }

    fn at(&self, i: usize) -> f64 {
        match self {
            Param::Scalar(v) => *v,
            Param::Each { values, .. } => values.get(i).copied().unwrap_or(f64::NAN),
        }
    }

    fn block(&self, i: usize) -> &[f64] {
        match self {
            Param::Scalar(v) => std::slice::from_ref(v),
            Param::Each { values, core_len } => {
                values.get(i * core_len..(i + 1) * core_len).unwrap_or(&[])
            }
        }
    }
}

/// The generator of chunk `chunk` of the draw made with state `[key, counter]`.
fn generator(key: i64, counter: i64, chunk: usize) -> Generator {
    // SplitMix64's finaliser: distinct inputs give well-spread, distinct words.
    fn spread(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let words = [
        spread(key as u64),
        spread((counter as u64) ^ 0x5555_5555_5555_5555),
        spread((chunk as u64) ^ 0xaaaa_aaaa_aaaa_aaaa),
        spread(key as u64 ^ ((counter as u64).rotate_left(21)) ^ (chunk as u64).rotate_left(42)),
    ];
    let mut seed = [0u8; 32];
    for (k, w) in words.iter().enumerate() {
        seed[8 * k..8 * (k + 1)].copy_from_slice(&w.to_le_bytes());
    }
    Generator::from_seed(seed)
}

/// `n` draws of `per_draw` values, chunk by chunk, each chunk from its own generator
/// (`f(rng, index of the chunk's first draw, the chunk's values)`); chunks on the rayon
/// pool when there are several.
fn sample_chunks<T: Send + Copy + Default>(
    n: usize,
    per_draw: usize,
    key: i64,
    counter: i64,
    f: impl Fn(&mut Generator, usize, &mut [T]) -> Result<()> + Sync,
) -> Result<Vec<T>> {
    let mut out = vec![T::default(); n * per_draw];
    if n == 0 {
        return Ok(out);
    }
    let run = |(c, block): (usize, &mut [T])| -> Result<()> {
        let mut rng = generator(key, counter, c);
        f(&mut rng, c * CHUNK, block)
    };
    let len = CHUNK * per_draw.max(1);
    if n > CHUNK {
        out.par_chunks_mut(len).enumerate().try_for_each(run)?;
    } else {
        out.chunks_mut(len).enumerate().try_for_each(run)?;
    }
    Ok(out)
}

/// One value per draw, `f(rng, index)` (see `sample_chunks`).
fn sample_each<T: Send + Copy + Default>(
    n: usize,
    key: i64,
    counter: i64,
    f: impl Fn(&mut Generator, usize) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    sample_chunks(n, 1, key, counter, |rng, first, out: &mut [T]| {
        for (j, x) in out.iter_mut().enumerate() {
            *x = f(rng, first + j)?;
        }
        Ok(())
    })
}

/// The error of a parameter outside its distribution's domain.
fn bad(name: &str, what: &str, domain: &str, value: f64) -> RuntimeError {
    RuntimeError::op(name, format!("{what} must be {domain}, got {value}"))
}

const POSITIVE: &str = "finite and > 0";

fn continuous(
    name: &str,
    dist: Distribution,
    rng: &mut Generator,
    p: &[Param],
    i: usize,
) -> Result<f64> {
    let (a, b) = (p[0].at(i), p.get(1).map_or(f64::NAN, |q| q.at(i)));
    Ok(match dist {
        Distribution::Normal => {
            if b.is_nan() || b < 0.0 {
                return Err(bad(name, "std (parameter 1)", ">= 0", b));
            }
            let z: f64 = StandardNormal.sample(rng);
            a + b * z
        }
        Distribution::Uniform => {
            let u: f64 = StandardUniform.sample(rng);
            a + (b - a) * u
        }
        Distribution::Gamma => {
            if !(a > 0.0 && a.is_finite()) {
                return Err(bad(name, "shape (parameter 0)", POSITIVE, a));
            }
            if !(b > 0.0 && b.is_finite()) {
                return Err(bad(name, "scale (parameter 1)", POSITIVE, b));
            }
            rand_distr::Gamma::new(a, b)
                .map_err(|e| RuntimeError::op(name, e.to_string()))?
                .sample(rng)
        }
        Distribution::Beta => {
            if !(a > 0.0 && a.is_finite()) {
                return Err(bad(name, "a (parameter 0)", POSITIVE, a));
            }
            if !(b > 0.0 && b.is_finite()) {
                return Err(bad(name, "b (parameter 1)", POSITIVE, b));
            }
            rand_distr::Beta::new(a, b)
                .map_err(|e| RuntimeError::op(name, e.to_string()))?
                .sample(rng)
        }
        Distribution::Bernoulli
        | Distribution::Categorical
        | Distribution::Poisson
        | Distribution::Binomial
        | Distribution::MvNormal => {
            return Err(RuntimeError::Internal(format!(
                "{name}: not a continuous draw"
            )))
        }
    })
}

fn discrete(
    name: &str,
    dist: Distribution,
    rng: &mut Generator,
    p: &[Param],
    i: usize,
) -> Result<i64> {
    Ok(match dist {
        Distribution::Bernoulli => {
            let prob = p[0].at(i);
            if !(0.0..=1.0).contains(&prob) {
                return Err(bad(name, "p (parameter 0)", "in [0, 1]", prob));
            }
            let u: f64 = StandardUniform.sample(rng);
            (u < prob) as i64
        }
        Distribution::Poisson => {
            let lam = p[0].at(i);
            if !(lam >= 0.0 && lam.is_finite()) {
                return Err(bad(name, "lam (parameter 0)", "finite and >= 0", lam));
            }
            if lam == 0.0 {
                return Ok(0);
            }
            let d =
                rand_distr::Poisson::new(lam).map_err(|e| RuntimeError::op(name, e.to_string()))?;
            let v: f64 = d.sample(rng);
            v as i64
        }
        Distribution::Binomial => {
            let (trials, prob) = (p[0].at(i), p[1].at(i));
            if !(trials >= 0.0 && trials.is_finite()) || trials.fract() != 0.0 {
                return Err(bad(name, "n (parameter 0)", "a whole number >= 0", trials));
            }
            if !(0.0..=1.0).contains(&prob) {
                return Err(bad(name, "p (parameter 1)", "in [0, 1]", prob));
            }
            let d = rand_distr::Binomial::new(trials as u64, prob)
                .map_err(|e| RuntimeError::op(name, e.to_string()))?;
            d.sample(rng) as i64
        }
        Distribution::Normal
        | Distribution::Uniform
        | Distribution::Gamma
        | Distribution::Beta
        | Distribution::Categorical
        | Distribution::MvNormal => {
            return Err(RuntimeError::Internal(format!(
                "{name}: not a discrete draw"
            )))
        }
    })
}

fn categorical(name: &str, rng: &mut Generator, p: &Param, i: usize) -> Result<i64> {
    let probs = p.block(i);
    if let Some(bad_p) = probs.iter().find(|v| !(**v >= 0.0 && v.is_finite())) {
        return Err(RuntimeError::op(
            name,
            format!("probabilities must be finite and >= 0, got {bad_p}"),
        ));
    }
    let total: f64 = probs.iter().sum();
    if total.is_nan() || total <= 0.0 {
        return Err(RuntimeError::op(name, "the probabilities sum to 0"));
    }
    let u: f64 = StandardUniform.sample(rng);
    let target = u * total;
    let mut acc = 0.0;
    for (k, v) in probs.iter().enumerate() {
        acc += v;
        if target < acc {
            return Ok(k as i64);
        }
    }
    // Rounding left the target at the total: the last category with mass.
    Ok(probs.iter().rposition(|v| *v > 0.0).unwrap_or(0) as i64)
}

/// Multivariate normal draws: mean + L z with L the Cholesky factor of the covariance
/// (read from its lower triangle), z standard normal.
fn mv_normal(
    name: &str,
    op: RandomOp,
    key: i64,
    counter: i64,
    size: &[usize],
    params: &[Param],
) -> Result<TensorData> {
    let n: usize = size.iter().product();
    let k = match &params[0] {
        Param::Each { core_len, .. } => *core_len,
        Param::Scalar(_) => 1,
    };
    let factor = |i: usize| -> Result<Vec<f64>> {
        let cov = params[1].block(i);
        if cov.len() != k * k {
            return Err(RuntimeError::op(
                name,
                format!("the covariance must be {k}×{k} like the mean's {k} values"),
            ));
        }
        let matrix = TensorData::from_vec(&[k, k], cov.to_vec())?;
        let op = tensorlift_ir::ops::LinalgOp::Cholesky { lower: true };
        let l = crate::dense_linalg::eval_linalg(name, op, &[&matrix])?;
        l.first()
            .and_then(|l| l.as_array::<f64>().map(|a| a.iter().copied().collect()))
            .ok_or_else(|| RuntimeError::Internal(format!("{name}: no Cholesky factor")))
    };
    // One factor for all draws when the covariance is shared.
    let shared = match &params[1] {
        Param::Each { values, core_len } if values.len() == *core_len => Some(factor(0)?),
        _ => None,
    };
    let values = sample_chunks(n, k, key, counter, |rng, first, block: &mut [f64]| {
        for (j, out) in block.chunks_mut(k.max(1)).enumerate() {
            let i = first + j;
            let own;
            let l = match &shared {
                Some(l) => l,
                None => {
                    own = factor(i)?;
                    &own
                }
            };
            let z: Vec<f64> = (0..k).map(|_| StandardNormal.sample(rng)).collect();
            let mean = params[0].block(i);
            for r in 0..k {
                let lz: f64 = (0..=r).map(|c| l[r * k + c] * z[c]).sum();
                out[r] = mean.get(r).copied().unwrap_or(f64::NAN) + lz;
            }
        }
        Ok(())
    })?;
    let mut shape = size.to_vec();
    shape.push(k);
    let data = TensorData::from_array(
        ArrayD::from_shape_vec(IxDyn(&shape), values)
            .map_err(|e| RuntimeError::Internal(format!("{name}: {e}")))?,
    );
    Ok(cast(&data, op.dtype))
}

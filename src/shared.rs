//! Shared variables in the user API (DESIGN §10): `shared(name, value)` makes a variable
//! whose value lives in the global default context, usable in graphs like any tensor;
//! `SharedValue` reads and writes it there or in a `SharedContext`.
//!
//! Owns: the builder and the value accessors. The names follow PyTensor
//! (`get_value`/`set_value`): `Var::get`/`Var::set` are indexing.

use tensorlift_ir::{GraphError, TensorData, TensorType, Var};
use tensorlift_runtime::shared::{cell_of, SharedCell, SharedContext};

use crate::Error;

/// A shared variable named `name` holding `value` in the default context; its type is
/// the value's dtype and rank with sizes unknown (so a later value may have another
/// shape), as PyTensor's `shared`.
///
/// ```
/// use tensorlift::prelude::*;
/// let w = shared("w", ndarray::array![1.0, 2.0].into());
/// let f = function(&[], &[&(&w * 2.0)]).compile()?;
/// assert_eq!(f.call(&[])?[0].to_f64_vec(), vec![2.0, 4.0]);
/// w.set_value(ndarray::array![5.0].into())?;
/// assert_eq!(f.call(&[])?[0].to_f64_vec(), vec![10.0]);
/// # Ok::<(), tensorlift::Error>(())
/// ```
pub fn shared(name: &str, value: TensorData) -> Var {
    let ty = value.loose_type();
    shared_with_type(name, value, ty)
}

/// A shared variable of an explicit type (static sizes are checked on every write; a
/// size of 1 broadcasts in graphs).
///
/// ```
/// use tensorlift::prelude::*;
/// // A vector of any length, though the first value has 2 elements.
/// let w = shared_with_type("w", ndarray::array![1.0, 2.0].into(), TensorType::new(Float64, [None]));
/// w.set_value(ndarray::array![1.0, 2.0, 3.0].into())?;
/// let f = function(&[], &[&w.sum(All)]).compile()?;
/// assert_eq!(f.call(&[])?[0].item_f64()?, 6.0);
/// # Ok::<(), tensorlift::Error>(())
/// ```
pub fn shared_with_type(name: &str, value: TensorData, ty: TensorType) -> Var {
    match SharedCell::new(name, ty.clone(), value) {
        Ok(cell) => Var::shared_input(name, ty, cell),
        Err(e) => Var::invalid(GraphError::op("shared", e.to_string())),
    }
}

/// A shared RNG state seeded with `seed`, for draws whose function updates it (PyTensor's
/// `shared(np.random.default_rng(seed))`).
///
/// ```
/// use tensorlift::prelude::*;
/// use tensorlift::random::normal;
/// let rng = shared_rng("rng", 7);
/// let draw = normal(&rng, 0.0, 1.0, &[3.into()]);
/// let f = function(&[], &[&draw.value]).updates(&[(&rng, &draw.rng)]).compile()?;
/// let (a, b) = (f.call(&[])?, f.call(&[])?);
/// assert_ne!(a[0].to_f64_vec(), b[0].to_f64_vec());
/// # Ok::<(), tensorlift::Error>(())
/// ```
pub fn shared_rng(name: &str, seed: u64) -> Var {
    let state = TensorData::from_vec(&[2], vec![seed as i64, 0]);
    match state {
        Ok(v) => shared_with_type(name, v, tensorlift_ir::ops::random::rng_type()),
        Err(e) => Var::invalid(e),
    }
}

/// Reading and writing the value of a shared variable.
pub trait SharedValue {
    /// The value in the default context.
    fn get_value(&self) -> Result<TensorData, Error>;
    /// Sets the value in the default context (it must fit the variable's type).
    fn set_value(&self, value: TensorData) -> Result<(), Error>;
    /// The value in `context` (the default value until one is set there).
    fn get_value_in(&self, context: &SharedContext) -> Result<TensorData, Error>;
    /// Sets the value in `context` only.
    fn set_value_in(&self, context: &SharedContext, value: TensorData) -> Result<(), Error>;
}

fn cell(v: &Var) -> Result<&SharedCell, Error> {
    v.check()?;
    v.shared_storage().and_then(cell_of).ok_or_else(|| {
        Error::Graph(GraphError::op(
            "shared value",
            format!(
                "'{}' ({}) is not a shared variable",
                v.name().unwrap_or_default(),
                v.ty()
            ),
        ))
    })
}

impl SharedValue for Var {
    fn get_value(&self) -> Result<TensorData, Error> {
        Ok(cell(self)?.get())
    }

    fn set_value(&self, value: TensorData) -> Result<(), Error> {
        Ok(cell(self)?.set(value)?)
    }

    fn get_value_in(&self, context: &SharedContext) -> Result<TensorData, Error> {
        Ok(cell(self)?.get_in(Some(context)))
    }

    fn set_value_in(&self, context: &SharedContext, value: TensorData) -> Result<(), Error> {
        Ok(cell(self)?.set_in(Some(context), value)?)
    }
}

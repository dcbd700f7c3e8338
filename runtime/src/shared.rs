//! Shared variables and their contexts (DESIGN §10).
//!
//! Owns: `SharedCell` (a shared variable's identity, type and value in the global default
//! context) and `SharedContext` (a separate set of values: a variable not yet set there
//! reads the default value, and a write there never touches the default). Each context
//! (the default one included) serialises the calls run in it: a call holds the context's
//! call lock from reading its shared inputs to writing its updates, so concurrent calls
//! in one context behave as sequential ones, and calls in different contexts run in
//! parallel. Values are checked against the variable's type on every write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tensorlift_ir::{SharedStorage, TensorData, TensorType};

use crate::error::{Result, RuntimeError};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The storage of one shared variable: its value in the default context.
#[derive(Debug)]
pub struct SharedCell {
    id: u64,
    name: String,
    ty: TensorType,
    /// The default value and how many times it was written.
    value: RwLock<(TensorData, u64)>,
}

impl SharedStorage for SharedCell {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn into_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}

/// The default context's call lock (its values live in the cells).
static DEFAULT_CALLS: Mutex<()> = Mutex::new(());

impl SharedCell {
    /// A new shared variable of type `ty` holding `value` (checked against `ty`).
    pub fn new(name: &str, ty: TensorType, value: TensorData) -> Result<Arc<SharedCell>> {
        check_value(name, &ty, &value)?;
        Ok(Arc::new(SharedCell {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: name.to_string(),
            ty,
            value: RwLock::new((value, 0)),
        }))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn ty(&self) -> &TensorType {
        &self.ty
    }

    /// The value in the default context.
    pub fn get(&self) -> TensorData {
        self.get_versioned().0
    }

    /// The value in the default context and its version (which every write changes), so a
    /// backend's copy of the value can tell when it is stale.
    pub fn get_versioned(&self) -> (TensorData, u64) {
        self.value.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets the value in the default context (checked against the type).
    pub fn set(&self, value: TensorData) -> Result<()> {
        check_value(&self.name, &self.ty, &value)?;
        self.store(value);
        Ok(())
    }

    fn store(&self, value: TensorData) {
        let mut slot = self.value.write().unwrap_or_else(|e| e.into_inner());
        slot.1 += 1;
        slot.0 = value;
    }

    /// The value `context` holds (the default value when it holds none, or for the
    /// default context).
    pub fn get_in(&self, context: Option<&SharedContext>) -> TensorData {
        context
            .and_then(|c| c.values().get(&self.id).cloned())
            .unwrap_or_else(|| self.get())
    }

    /// Sets the value in `context` (the default context for `None`).
    pub fn set_in(&self, context: Option<&SharedContext>, value: TensorData) -> Result<()> {
        match context {
            None => self.set(value),
            Some(c) => {
                check_value(&self.name, &self.ty, &value)?;
                c.values().insert(self.id, value);
                Ok(())
            }
        }
    }
}

/// The check of a value written to a shared variable: its dtype, rank and static sizes.
fn check_value(name: &str, ty: &TensorType, value: &TensorData) -> Result<()> {
    if crate::signature::fits(value, ty) {
        Ok(())
    } else {
        Err(RuntimeError::op(
            format!("shared variable '{name}'"),
            format!(
                "a value of dtype {} and shape {:?} does not fit its type {ty}",
                value.dtype(),
                value.shape()
            ),
        ))
    }
}

/// A set of values of shared variables, separate from the default context's.
#[derive(Debug, Default)]
pub struct SharedContext {
    values: Mutex<HashMap<u64, TensorData>>,
    calls: Mutex<()>,
}

impl SharedContext {
    pub fn new() -> SharedContext {
        SharedContext::default()
    }

    fn values(&self) -> MutexGuard<'_, HashMap<u64, TensorData>> {
        self.values.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A call's hold on a context (the default one for `None`): while it lives, no other
/// call runs in that context. Reads the shared inputs, then writes all updates at once.
pub struct CallInContext<'a> {
    context: Option<&'a SharedContext>,
    _guard: MutexGuard<'a, ()>,
}

impl<'a> CallInContext<'a> {
    /// Waits for the context's other calls to finish.
    pub fn enter(context: Option<&'a SharedContext>) -> CallInContext<'a> {
        let lock = match context {
            Some(c) => &c.calls,
            None => &DEFAULT_CALLS,
        };
        CallInContext {
            context,
            _guard: lock.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// The values of `cells` in this context.
    pub fn read(&self, cells: &[Arc<SharedCell>]) -> Vec<TensorData> {
        cells.iter().map(|c| c.get_in(self.context)).collect()
    }

    /// The context the call runs in (`None`: the default one).
    pub fn context(&self) -> Option<&'a SharedContext> {
        self.context
    }

    /// Writes every update (each value checked first: one that does not fit writes
    /// nothing at all).
    pub fn write(&self, updates: Vec<(&SharedCell, TensorData)>) -> Result<()> {
        for (cell, value) in &updates {
            check_value(&cell.name, &cell.ty, value)?;
        }
        match self.context {
            None => {
                for (cell, value) in updates {
                    cell.store(value);
                }
            }
            Some(c) => {
                let mut values = c.values();
                for (cell, value) in updates {
                    values.insert(cell.id, value);
                }
            }
        }
        Ok(())
    }
}

/// The cell behind a shared variable's storage.
pub fn cell_of(storage: &Arc<dyn SharedStorage>) -> Option<&SharedCell> {
    storage.as_any().downcast_ref::<SharedCell>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorlift_ir::DType;

    #[test]
    fn contexts_copy_on_first_write() {
        let ty = TensorType::new(DType::Float64, vec![]);
        let cell = SharedCell::new("w", ty, TensorData::scalar(1.0f64)).unwrap();
        let ctx = SharedContext::new();
        assert!(cell.get_in(Some(&ctx)).same_as(&TensorData::scalar(1.0f64)));
        cell.set_in(Some(&ctx), TensorData::scalar(2.0f64)).unwrap();
        assert!(cell.get().same_as(&TensorData::scalar(1.0f64)));
        assert!(cell.get_in(Some(&ctx)).same_as(&TensorData::scalar(2.0f64)));
        let e = cell.set(TensorData::scalar(1i64)).unwrap_err().to_string();
        assert!(
            e.contains("shared variable 'w'") && e.contains("int64"),
            "{e}"
        );
    }
}

//! The JIT's code cache: compiled kernels by their loop IR, so functions whose rewritten
//! graphs lower to the same kernels share machine code; entries hold no code alive (weak),
//! so the code of a module is freed with the last function using it.

use super::*;

/// Compiled code by kernel IR: functions whose rewritten graphs lower to the same kernels
/// share their machine code. Entries hold no code alive: when the last function using a
/// module is dropped its memory is freed and the entry is recompiled on next use.
pub(super) struct Cache {
    entries: HashMap<u64, (Vec<Kernel>, Vec<WeakKernel>)>,
}

pub(super) static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

/// Whether live machine code for the kernels of `fg` is in the cache (some compiled
/// function using it has not been dropped).
pub fn is_cached(fg: &FunctionGraph) -> bool {
    let kernels: Vec<Kernel> = kernels_of(fg).into_iter().map(|(_, k)| k).collect();
    let guard = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .as_ref()
        .and_then(|c| c.entries.get(&kernels_hash(&kernels)))
        .is_some_and(|(ir, weak)| ir == &kernels && weak.iter().all(|k| k.upgrade().is_some()))
}

pub(super) fn kernels_hash(kernels: &[Kernel]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{kernels:?}").hash(&mut h);
    h.finish()
}

pub(super) fn cached_compile(kernels: &[Kernel]) -> Result<Vec<CompiledKernel>, CompileError> {
    if kernels.is_empty() {
        return Ok(Vec::new());
    }
    let key = kernels_hash(kernels);
    let mut guard = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = guard.get_or_insert_with(|| Cache {
        entries: HashMap::new(),
    });
    if let Some((ir, weak)) = cache.entries.get(&key) {
        if ir.as_slice() == kernels {
            if let Some(alive) = weak
                .iter()
                .map(WeakKernel::upgrade)
                .collect::<Option<Vec<_>>>()
            {
                return Ok(alive);
            }
        }
    }
    let compiled = compile_kernels(kernels)?;
    cache
        .entries
        .retain(|_, (_, w)| w.iter().all(|k| k.upgrade().is_some()));
    cache.entries.insert(
        key,
        (
            kernels.to_vec(),
            compiled.iter().map(CompiledKernel::downgrade).collect(),
        ),
    );
    Ok(compiled)
}

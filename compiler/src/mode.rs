//! Compile modes: which backend runs the graph (and, with the rewrites issue, which rewrite
//! databases run first).

use crate::backend::Backend;
use crate::reference::ReferenceBackend;

/// How a function is compiled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// The reference interpreter: op by op, every check on. The oracle for other backends.
    #[default]
    Reference,
}

impl Mode {
    /// The backend this mode compiles for.
    pub fn backend(self) -> Box<dyn Backend> {
        match self {
            Mode::Reference => Box::new(ReferenceBackend),
        }
    }
}

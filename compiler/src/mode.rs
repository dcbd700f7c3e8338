//! Compile modes: which backend runs the graph and which rewrites run first (DESIGN §5).

use crate::backend::Backend;
use crate::jit::JitBackend;
use crate::reference::ReferenceBackend;
use crate::rewrite::RuleFilter;

/// The backends a mode can select.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendKind {
    /// The reference interpreter: op by op, every check on.
    #[default]
    Reference,
    /// Cranelift machine code for kernels, the runtime's implementations for the rest.
    Jit,
}

/// How a function is compiled: a backend, and the rewrite pipeline on or off (with rules
/// or whole groups excluded by name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mode {
    pub backend: BackendKind,
    pub rewrites: bool,
    pub filter: RuleFilter,
    /// A node the backend would run in the interpreter is a compile error (`strict`).
    pub strict: bool,
}

impl Mode {
    /// The reference interpreter with the default rewrite pipeline.
    #[allow(non_upper_case_globals)]
    pub const Reference: Mode = Mode {
        backend: BackendKind::Reference,
        rewrites: true,
        filter: RuleFilter {
            included: Vec::new(),
            excluded: Vec::new(),
        },
        strict: false,
    };

    /// The Cranelift JIT with the default rewrite pipeline.
    #[allow(non_upper_case_globals)]
    pub const Jit: Mode = Mode {
        backend: BackendKind::Jit,
        rewrites: true,
        filter: RuleFilter {
            included: Vec::new(),
            excluded: Vec::new(),
        },
        strict: false,
    };

    /// The same mode refusing to compile a graph with a node its backend would run in the
    /// reference interpreter: one error lists every such node (its dprint line). Without
    /// it such nodes run in the interpreter and `Function::interpreted_nodes` names them.
    pub fn strict(mut self) -> Mode {
        self.strict = true;
        self
    }

    /// The same mode with no rewrites at all: the graph runs as built.
    pub fn without_rewrites(mut self) -> Mode {
        self.rewrites = false;
        self
    }

    /// The same mode without the rule or group (`canonicalize`, `stabilize`, `specialize`,
    /// `fusion`, `merge`) called `name`; `inplace` turns off the JIT's writing of results
    /// over intermediates it is the last user of.
    pub fn excluding(mut self, name: &str) -> Mode {
        self.filter.excluded.push(name.to_string());
        self
    }

    /// The same mode running only the named rules and groups (this call and earlier
    /// `including` calls); exclusions still apply.
    pub fn including(mut self, name: &str) -> Mode {
        self.filter.included.push(name.to_string());
        self
    }

    /// The backend this mode compiles for (a new instance).
    pub fn backend(&self) -> Box<dyn Backend> {
        match self.backend {
            BackendKind::Reference => Box::new(ReferenceBackend),
            BackendKind::Jit => Box::new(JitBackend {
                in_place: !self.filter.excluded.iter().any(|e| e == "inplace"),
                strict: self.strict,
            }),
        }
    }
}

impl Default for Mode {
    /// `Mode::Jit`: machine code, rewrites on.
    fn default() -> Mode {
        Mode::Jit
    }
}

//! Symbolic variables (`Var`) and the nodes that produce them: the user-facing, immutable
//! graph.
//!
//! Owns: `Var` (a cheap `Arc` handle to a graph input, a constant or output k of a `Node`),
//! node construction with type inference (`Var::apply`), and *invalid* variables. Operator
//! overloads cannot return `Result`, so an op whose type inference fails yields an invalid
//! `Var` carrying the error; anything built on it is invalid with the same error, and
//! `Var::check`, `FunctionGraph::new` and `function(..).compile()` return that error.
//! Graph building never panics. Graphs are `Send + Sync` and never mutated: rewriting works
//! on `FunctionGraph`.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use crate::data::TensorData;
use crate::dtype::{DType, Literal};
use crate::error::{GraphError, Result};
use crate::ops::{InputInfo, Op};
use crate::types::TensorType;

/// A symbolic tensor: an immutable handle, cheap to clone, compared by identity.
#[derive(Clone)]
pub struct Var(Arc<VarData>);

struct VarData {
    ty: TensorType,
    name: Mutex<Option<String>>,
    kind: VarKind,
    /// For a shared variable (an input whose value a context holds): its storage.
    shared: Option<Arc<dyn SharedStorage>>,
}

/// The storage behind a shared variable (defined by the runtime): `ir` only carries it,
/// so a compiled function can find the values of the shared inputs its graph reads.
pub trait SharedStorage: Send + Sync + fmt::Debug {
    /// The storage as `Any`, for the runtime to recover its own type.
    fn as_any(&self) -> &dyn std::any::Any;
    /// The same, owned.
    fn into_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync>;
}

/// Where a variable comes from.
pub enum VarKind {
    /// A graph input, given a value at call time.
    Input,
    /// A constant value.
    Constant(TensorData),
    /// Output `index` of `node`.
    Output { node: Arc<Node>, index: usize },
    /// The result of a failed graph-building step.
    Invalid(GraphError),
}

/// An application of an op to input variables.
pub struct Node {
    pub op: Op,
    pub inputs: Vec<Var>,
    /// The inferred type of each output.
    pub output_types: Vec<TensorType>,
}

impl Drop for Node {
    /// Dismantles chains of uniquely owned nodes with an explicit stack, so dropping a
    /// deep graph does not overflow the call stack.
    fn drop(&mut self) {
        let mut stack: Vec<Var> = std::mem::take(&mut self.inputs);
        while let Some(var) = stack.pop() {
            let Ok(data) = Arc::try_unwrap(var.0) else {
                continue;
            };
            if let VarKind::Output { node, .. } = data.kind {
                if let Ok(mut inner) = Arc::try_unwrap(node) {
                    stack.append(&mut inner.inputs);
                }
            }
        }
    }
}

impl Var {
    fn new(ty: TensorType, name: Option<String>, kind: VarKind) -> Var {
        Var(Arc::new(VarData {
            ty,
            name: Mutex::new(name),
            kind,
            shared: None,
        }))
    }

    /// A shared variable: a graph input whose value `storage` provides at call time
    /// (see the runtime's `shared`).
    pub fn shared_input(name: &str, ty: TensorType, storage: Arc<dyn SharedStorage>) -> Var {
        Var(Arc::new(VarData {
            ty,
            name: Mutex::new(Some(name.to_string())),
            kind: VarKind::Input,
            shared: Some(storage),
        }))
    }

    /// The storage of a shared variable; `None` for any other variable.
    pub fn shared_storage(&self) -> Option<&Arc<dyn SharedStorage>> {
        self.0.shared.as_ref()
    }

    /// A graph input of the given type.
    pub fn input(name: &str, ty: TensorType) -> Var {
        Var::new(ty, Some(name.to_string()), VarKind::Input)
    }

    /// A constant.
    pub fn constant(data: impl Into<TensorData>) -> Var {
        let data = data.into();
        Var::new(data.exact_type(), None, VarKind::Constant(data))
    }

    /// A 0-d constant holding `lit` in `dtype`.
    pub fn literal(lit: impl Into<Literal>, dtype: DType) -> Var {
        Var::constant(TensorData::from_literal(lit.into(), dtype))
    }

    /// A variable standing for a failed graph-building step.
    pub fn invalid(error: GraphError) -> Var {
        Var::new(
            TensorType::scalar(DType::Float64),
            None,
            VarKind::Invalid(error),
        )
    }

    /// Applies `op` to `inputs`, inferring the output types. Fails when an input is invalid
    /// or the op rejects its inputs.
    pub fn apply(op: Op, inputs: Vec<Var>) -> Result<Vec<Var>> {
        for x in &inputs {
            if let Some(err) = x.error() {
                return Err(err.clone());
            }
        }
        let infos: Vec<InputInfo> = inputs.iter().map(|x| x.info()).collect();
        let types = op.infer(&infos)?;
        let node = Arc::new(Node {
            op,
            inputs,
            output_types: types.clone(),
        });
        Ok(types
            .into_iter()
            .enumerate()
            .map(|(index, ty)| {
                Var::new(
                    ty,
                    None,
                    VarKind::Output {
                        node: node.clone(),
                        index,
                    },
                )
            })
            .collect())
    }

    /// Output `index` of an existing node (the same value as any other handle to it).
    pub(crate) fn from_node_output(node: Arc<Node>, index: usize) -> Var {
        let ty = node.output_types[index].clone();
        Var::new(ty, None, VarKind::Output { node, index })
    }

    /// The value `self` stands for: equal for two handles of the same node output (which
    /// `key` tells apart), else the variable's own key.
    pub fn value_key(&self) -> (usize, usize) {
        match &self.0.kind {
            VarKind::Output { node, index } => (Arc::as_ptr(node) as usize, index + 1),
            _ => (self.key(), 0),
        }
    }

    /// Applies a single-output op; a failure gives an invalid variable.
    pub fn apply1(op: Op, inputs: Vec<Var>) -> Var {
        match Var::apply(op, inputs) {
            Ok(mut outs) if outs.len() == 1 => outs.remove(0),
            Ok(outs) => Var::invalid(GraphError::Internal(format!(
                "apply1 on an op with {} outputs",
                outs.len()
            ))),
            Err(e) => Var::invalid(e),
        }
    }

    /// The type. For an invalid variable this is a placeholder: see `error()`.
    pub fn ty(&self) -> &TensorType {
        &self.0.ty
    }

    pub fn dtype(&self) -> DType {
        self.0.ty.dtype
    }

    pub fn ndim(&self) -> usize {
        self.0.ty.ndim()
    }

    /// The static shape.
    pub fn static_shape(&self) -> &[Option<usize>] {
        &self.0.ty.shape
    }

    pub fn kind(&self) -> &VarKind {
        &self.0.kind
    }

    pub fn name(&self) -> Option<String> {
        self.0.name.lock().ok().and_then(|n| n.clone())
    }

    /// Names the variable (shown by dprint); returns it for chaining.
    pub fn named(self, name: &str) -> Var {
        if let Ok(mut slot) = self.0.name.lock() {
            *slot = Some(name.to_string());
        }
        self
    }

    /// The producing node and output index, for node outputs.
    pub fn owner(&self) -> Option<(&Arc<Node>, usize)> {
        match &self.0.kind {
            VarKind::Output { node, index } => Some((node, *index)),
            _ => None,
        }
    }

    /// The value, for constants.
    pub fn constant_value(&self) -> Option<&TensorData> {
        match &self.0.kind {
            VarKind::Constant(d) => Some(d),
            _ => None,
        }
    }

    pub fn is_input(&self) -> bool {
        matches!(self.0.kind, VarKind::Input)
    }

    /// The error, for invalid variables.
    pub fn error(&self) -> Option<&GraphError> {
        match &self.0.kind {
            VarKind::Invalid(e) => Some(e),
            _ => None,
        }
    }

    /// `Ok(self)` for a valid variable, the error it carries otherwise.
    pub fn check(&self) -> Result<&Var> {
        match self.error() {
            Some(e) => Err(e.clone()),
            None => Ok(self),
        }
    }

    /// What type inference sees of this variable.
    pub fn info(&self) -> InputInfo<'_> {
        InputInfo {
            ty: self.ty(),
            constant: self.constant_value(),
        }
    }

    /// Identity key (stable while the variable is alive).
    pub fn key(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }
}

impl PartialEq for Var {
    fn eq(&self, other: &Var) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for Var {}

impl Hash for Var {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

impl fmt::Debug for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} <{}>", self.label(), self.ty())
    }
}

impl Var {
    /// A one-line label: the name, the constant value, or the producing op.
    pub fn label(&self) -> String {
        match (&self.0.kind, self.name()) {
            (VarKind::Invalid(e), _) => format!("<invalid: {e}>"),
            (_, Some(n)) => n,
            (VarKind::Constant(d), None) => d.to_string(),
            (VarKind::Output { node, .. }, None) => node.op.to_string(),
            (VarKind::Input, None) => "<input>".to_string(),
        }
    }
}

/// Every variable the outputs depend on, each once, inputs before the nodes that use them
/// (iterative, so deep graphs do not overflow the stack). Node outputs are listed through
/// the variable handles reached.
pub fn postorder(outputs: &[Var]) -> Vec<Var> {
    let mut seen = std::collections::HashSet::new();
    let mut order = Vec::new();
    let mut stack: Vec<(Var, bool)> = outputs.iter().rev().map(|v| (v.clone(), false)).collect();
    while let Some((var, expanded)) = stack.pop() {
        if expanded {
            order.push(var);
            continue;
        }
        if !seen.insert(var.key()) {
            continue;
        }
        stack.push((var.clone(), true));
        if let Some((node, _)) = var.owner() {
            for x in node.inputs.iter().rev() {
                if !seen.contains(&x.key()) {
                    stack.push((x.clone(), false));
                }
            }
        }
    }
    order
}

//! `FunctionGraph`: the mutable, arena-based form of a graph that rewrites and backends
//! work on.
//!
//! Owns: typed ids (`VarId`, `NodeId`) into arenas of variables and nodes, client lists,
//! type-checked `replace`, pruning of dead nodes, topological order and the integrity check.
//! Must not: evaluate anything. Invariant (checked by `check_integrity`): client lists match
//! node inputs and graph outputs, every live node is reachable from an output, and every
//! node's output types are what its op infers from its inputs' types.

use std::collections::HashMap;
use std::fmt;

use indexmap::IndexSet;

use crate::data::TensorData;
use crate::error::{GraphError, Result};
use crate::ops::{InputInfo, Op};
use crate::types::TensorType;
use crate::var::{postorder, Var, VarKind};

/// Index of a variable in a `FunctionGraph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarId(pub u32);

/// Index of a node in a `FunctionGraph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

/// Where a variable of a function graph comes from.
#[derive(Clone, Debug)]
pub enum Origin {
    Input,
    Constant(TensorData),
    Node { node: NodeId, index: usize },
}

/// A use of a variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Client {
    /// Input `input` of `node`.
    Node { node: NodeId, input: usize },
    /// Graph output number k.
    Output(usize),
}

#[derive(Clone, Debug)]
pub struct VarEntry {
    pub ty: TensorType,
    pub name: Option<String>,
    pub origin: Origin,
    /// A set in insertion order: removing a use is O(1), so a constant used by thousands
    /// of nodes does not make every edit scan its uses.
    clients: IndexSet<Client>,
}

#[derive(Clone, Debug)]
pub struct NodeEntry {
    pub op: Op,
    pub inputs: Vec<VarId>,
    pub outputs: Vec<VarId>,
}

/// A graph with declared inputs and outputs, in arena form.
#[derive(Clone, Debug)]
pub struct FunctionGraph {
    vars: Vec<VarEntry>,
    nodes: Vec<Option<NodeEntry>>,
    inputs: Vec<VarId>,
    outputs: Vec<VarId>,
}

impl FunctionGraph {
    /// Builds the graph computing `outputs` from `inputs`. Every graph input the outputs
    /// depend on must be declared; inputs must be distinct graph inputs; invalid variables
    /// return their error.
    pub fn new(inputs: &[Var], outputs: &[Var]) -> Result<FunctionGraph> {
        let mut fg = FunctionGraph {
            vars: Vec::new(),
            nodes: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        };
        let mut var_ids: HashMap<usize, VarId> = HashMap::new();
        for (k, x) in inputs.iter().enumerate() {
            x.check()?;
            if !x.is_input() {
                return Err(GraphError::Graph(format!(
                    "declared input {k} ({}) is not a graph input (constants and computed \
                     values cannot be inputs; use clone_replace to substitute them)",
                    x.label()
                )));
            }
            if var_ids.contains_key(&x.key()) {
                return Err(GraphError::Graph(format!(
                    "input {} is declared twice",
                    x.label()
                )));
            }
            let id = fg.push_var(x.ty().clone(), x.name(), Origin::Input);
            var_ids.insert(x.key(), id);
            fg.inputs.push(id);
        }
        let mut node_ids: HashMap<usize, NodeId> = HashMap::new();
        for var in postorder(outputs) {
            if var_ids.contains_key(&var.key()) {
                continue;
            }
            let id = match var.kind() {
                VarKind::Invalid(e) => return Err(e.clone()),
                VarKind::Input => return Err(GraphError::MissingInput { var: var.label() }),
                VarKind::Constant(d) => {
                    fg.push_var(var.ty().clone(), var.name(), Origin::Constant(d.clone()))
                }
                VarKind::Output { node, index } => {
                    let key = std::sync::Arc::as_ptr(node) as usize;
                    let node_id = match node_ids.get(&key) {
                        Some(n) => *n,
                        None => {
                            let ins = node.inputs.iter().map(|x| var_ids[&x.key()]).collect();
                            let n =
                                fg.push_node_unchecked(node.op.clone(), ins, &node.output_types)?;
                            node_ids.insert(key, n);
                            n
                        }
                    };
                    let out = fg.node_entry(node_id)?.outputs[*index];
                    if let Some(name) = var.name() {
                        fg.vars[out.0 as usize].name = Some(name);
                    }
                    out
                }
            };
            var_ids.insert(var.key(), id);
        }
        for (k, out) in outputs.iter().enumerate() {
            let id = var_ids[&out.key()];
            fg.vars[id.0 as usize].clients.insert(Client::Output(k));
            fg.outputs.push(id);
        }
        Ok(fg)
    }

    /// Builds the graph of `outputs` with every graph input they depend on as an input, in
    /// the order first reached.
    pub fn from_outputs(outputs: &[Var]) -> Result<FunctionGraph> {
        let inputs: Vec<Var> = postorder(outputs)
            .into_iter()
            .filter(|v| v.is_input())
            .collect();
        FunctionGraph::new(&inputs, outputs)
    }

    fn push_var(&mut self, ty: TensorType, name: Option<String>, origin: Origin) -> VarId {
        self.vars.push(VarEntry {
            ty,
            name,
            origin,
            clients: IndexSet::new(),
        });
        VarId(self.vars.len() as u32 - 1)
    }

    fn push_node_unchecked(
        &mut self,
        op: Op,
        inputs: Vec<VarId>,
        types: &[TensorType],
    ) -> Result<NodeId> {
        let node = NodeId(self.nodes.len() as u32);
        for (k, x) in inputs.iter().enumerate() {
            self.var_entry_mut(*x)?
                .clients
                .insert(Client::Node { node, input: k });
        }
        let outputs = types
            .iter()
            .enumerate()
            .map(|(index, ty)| self.push_var(ty.clone(), None, Origin::Node { node, index }))
            .collect();
        self.nodes.push(Some(NodeEntry {
            op,
            inputs,
            outputs,
        }));
        Ok(node)
    }

    /// Adds a constant and returns its id.
    pub fn add_constant(&mut self, data: TensorData) -> VarId {
        self.push_var(data.exact_type(), None, Origin::Constant(data))
    }

    /// Adds a node applying `op` to `inputs` (types are inferred) and returns its outputs.
    pub fn add_node(&mut self, op: Op, inputs: Vec<VarId>) -> Result<Vec<VarId>> {
        let types = {
            let infos = inputs
                .iter()
                .map(|x| self.input_info(*x))
                .collect::<Result<Vec<_>>>()?;
            op.infer(&infos)?
        };
        let node = self.push_node_unchecked(op, inputs, &types)?;
        Ok(self.node_entry(node)?.outputs.clone())
    }

    /// What type inference sees of a variable.
    pub fn input_info(&self, id: VarId) -> Result<InputInfo<'_>> {
        let v = self.var_entry(id)?;
        Ok(InputInfo {
            ty: &v.ty,
            constant: match &v.origin {
                Origin::Constant(d) => Some(d),
                _ => None,
            },
        })
    }

    pub fn inputs(&self) -> &[VarId] {
        &self.inputs
    }

    pub fn outputs(&self) -> &[VarId] {
        &self.outputs
    }

    /// The variable entry (panics on an id from another graph: ids are only made here).
    pub fn var(&self, id: VarId) -> &VarEntry {
        &self.vars[id.0 as usize]
    }

    fn var_entry(&self, id: VarId) -> Result<&VarEntry> {
        self.vars
            .get(id.0 as usize)
            .ok_or_else(|| GraphError::Internal(format!("no variable {id:?}")))
    }

    fn var_entry_mut(&mut self, id: VarId) -> Result<&mut VarEntry> {
        self.vars
            .get_mut(id.0 as usize)
            .ok_or_else(|| GraphError::Internal(format!("no variable {id:?}")))
    }

    /// A live node, or `None` when it was removed.
    pub fn node(&self, id: NodeId) -> Option<&NodeEntry> {
        self.nodes.get(id.0 as usize).and_then(|n| n.as_ref())
    }

    fn node_entry(&self, id: NodeId) -> Result<&NodeEntry> {
        self.node(id)
            .ok_or_else(|| GraphError::Internal(format!("no live node {id:?}")))
    }

    /// The uses of a variable, in a deterministic order.
    pub fn clients(&self, id: VarId) -> impl ExactSizeIterator<Item = &Client> + '_ {
        self.vars[id.0 as usize].clients.iter()
    }

    /// How many uses a variable has.
    pub fn n_clients(&self, id: VarId) -> usize {
        self.vars[id.0 as usize].clients.len()
    }

    /// The node producing a variable and the output index.
    pub fn owner(&self, id: VarId) -> Option<(NodeId, usize)> {
        match self.var(id).origin {
            Origin::Node { node, index } => Some((node, index)),
            _ => None,
        }
    }

    /// Number of live nodes.
    pub fn n_nodes(&self) -> usize {
        self.nodes.iter().flatten().count()
    }

    /// Live nodes in dependency order (every node after the nodes producing its inputs).
    pub fn toposort(&self) -> Vec<NodeId> {
        let mut state = vec![0u8; self.nodes.len()]; // 0 new, 1 open, 2 done
        let mut order = Vec::new();
        let mut stack: Vec<(NodeId, bool)> = self
            .outputs
            .iter()
            .rev()
            .filter_map(|o| self.owner(*o).map(|(n, _)| (n, false)))
            .collect();
        while let Some((node, expanded)) = stack.pop() {
            let s = &mut state[node.0 as usize];
            if expanded {
                *s = 2;
                order.push(node);
                continue;
            }
            if *s != 0 {
                continue;
            }
            *s = 1;
            stack.push((node, true));
            if let Some(entry) = self.node(node) {
                for x in entry.inputs.iter().rev() {
                    if let Some((producer, _)) = self.owner(*x) {
                        if state[producer.0 as usize] == 0 {
                            stack.push((producer, false));
                        }
                    }
                }
            }
        }
        order
    }

    /// True when `ancestor` is `var` or `var` depends on it.
    pub fn depends_on(&self, var: VarId, ancestor: VarId) -> bool {
        let mut stack = vec![var];
        let mut seen = std::collections::HashSet::new();
        while let Some(v) = stack.pop() {
            if v == ancestor {
                return true;
            }
            if !seen.insert(v) {
                continue;
            }
            if let Some((n, _)) = self.owner(v) {
                if let Some(entry) = self.node(n) {
                    stack.extend(entry.inputs.iter().copied());
                }
            }
        }
        false
    }

    /// Whether `new` depends on `old`, searching from `new` but not through the near
    /// ancestors of `old` (its producer's inputs and their producers' inputs): in an acyclic
    /// graph those cannot depend on `old`, and rewrites build replacements mostly from them,
    /// so the check stays local even on very deep graphs.
    fn replacement_depends_on(&self, new: VarId, old: VarId) -> bool {
        let mut near = std::collections::HashSet::new();
        let inputs_of = |v: VarId| {
            self.owner(v)
                .and_then(|(n, _)| self.node(n))
                .map(|e| e.inputs.clone())
                .unwrap_or_default()
        };
        for x in inputs_of(old) {
            near.extend(inputs_of(x));
            near.insert(x);
        }
        let mut stack = vec![new];
        let mut seen = std::collections::HashSet::new();
        while let Some(v) = stack.pop() {
            if v == old {
                return true;
            }
            if near.contains(&v) || !seen.insert(v) {
                continue;
            }
            stack.extend(inputs_of(v));
        }
        false
    }

    /// Replaces every use of `old` by `new`. `new`'s type must be at least as specific as
    /// `old`'s (same dtype and ndim, every size `old` knows); `new` must not depend on `old`.
    /// Nodes left without clients are removed.
    pub fn replace(&mut self, old: VarId, new: VarId) -> Result<()> {
        if old == new {
            return Ok(());
        }
        let (old_ty, new_ty) = (
            self.var_entry(old)?.ty.clone(),
            self.var_entry(new)?.ty.clone(),
        );
        if !new_ty.is_subtype_of(&old_ty) {
            return Err(GraphError::Replace {
                var: self.describe(old),
                old: old_ty.to_string(),
                new: new_ty.to_string(),
                reason: new_ty
                    .incompatibility(&old_ty)
                    .unwrap_or_else(|| "the replacement knows fewer static sizes".into()),
            });
        }
        if self.replacement_depends_on(new, old) {
            return Err(GraphError::Graph(format!(
                "replacing {} would create a cycle: the replacement depends on it",
                self.describe(old)
            )));
        }
        let clients = std::mem::take(&mut self.var_entry_mut(old)?.clients);
        for c in &clients {
            match *c {
                Client::Node { node, input } => {
                    if let Some(Some(entry)) = self.nodes.get_mut(node.0 as usize) {
                        entry.inputs[input] = new;
                    }
                }
                Client::Output(k) => self.outputs[k] = new,
            }
        }
        // The nodes that read `old` and now read `new`: only their types can change.
        let moved: Vec<NodeId> = clients
            .iter()
            .filter_map(|c| match c {
                Client::Node { node, .. } => Some(*node),
                Client::Output(_) => None,
            })
            .collect();
        self.var_entry_mut(new)?.clients.extend(clients);
        self.prune(old);
        // A more specific type, or a constant (whose value type inference may read, as a
        // size), can refine the types downstream.
        let constant = matches!(self.var(new).origin, Origin::Constant(_));
        if new_ty != old_ty || constant {
            self.refine_nodes(moved);
        }
        Ok(())
    }

    /// After the inputs of `first` changed (a more specific type, a constant), re-infers
    /// their outputs and, for each that became more specific, its readers' outputs in
    /// turn, keeping each refinement (more static sizes) an op infers.
    fn refine_nodes(&mut self, first: Vec<NodeId>) {
        let mut work: Vec<VarId> = Vec::new();
        let mut pending = first;
        loop {
            for node in std::mem::take(&mut pending) {
                let Ok(entry) = self.node_entry(node) else {
                    continue;
                };
                let infos: Result<Vec<_>> =
                    entry.inputs.iter().map(|x| self.input_info(*x)).collect();
                let Ok(inferred) = infos.and_then(|i| entry.op.infer(&i)) else {
                    continue;
                };
                let outputs = entry.outputs.clone();
                if inferred.len() != outputs.len() {
                    continue;
                }
                for (o, ty) in outputs.into_iter().zip(inferred) {
                    let current = &mut self.vars[o.0 as usize].ty;
                    if *current != ty && ty.is_subtype_of(current) {
                        *current = ty;
                        work.push(o);
                    }
                }
            }
            // Then the readers of every output that became more specific.
            let Some(v) = work.pop() else { break };
            pending = self.vars[v.0 as usize]
                .clients
                .iter()
                .filter_map(|c| match c {
                    Client::Node { node, .. } => Some(*node),
                    Client::Output(_) => None,
                })
                .collect();
        }
    }

    /// Removes the producer of `var` if none of its outputs has clients, recursively.
    fn prune(&mut self, var: VarId) {
        let mut work = vec![var];
        while let Some(v) = work.pop() {
            let Some((node, _)) = self.owner(v) else {
                continue;
            };
            let Some(entry) = self.node(node) else {
                continue;
            };
            if entry.outputs.iter().any(|o| self.n_clients(*o) > 0) {
                continue;
            }
            let Some(entry) = self.nodes[node.0 as usize].take() else {
                continue;
            };
            for (input, x) in entry.inputs.iter().enumerate() {
                self.vars[x.0 as usize]
                    .clients
                    .swap_remove(&Client::Node { node, input });
                work.push(*x);
            }
        }
    }

    /// A short description of a variable for messages: its name or producing op.
    pub fn describe(&self, id: VarId) -> String {
        let v = self.var(id);
        match (&v.name, &v.origin) {
            (Some(n), _) => n.clone(),
            (None, Origin::Constant(d)) => format!("constant {d}"),
            (None, Origin::Node { node, index }) => match self.node(*node) {
                Some(e) if e.outputs.len() > 1 => format!("{}.{index}", e.op),
                Some(e) => e.op.to_string(),
                None => "<removed>".into(),
            },
            (None, Origin::Input) => "<input>".into(),
        }
    }

    /// Checks the invariants listed in the module doc; an `Internal` error names the first
    /// broken one.
    pub fn check_integrity(&self) -> Result<()> {
        let bug = |m: String| Err(GraphError::Internal(format!("integrity check: {m}")));
        let order = self.toposort();
        if order.len() != self.n_nodes() {
            return bug(format!(
                "{} live nodes but {} reachable from the outputs",
                self.n_nodes(),
                order.len()
            ));
        }
        let mut position = HashMap::new();
        for (i, n) in order.iter().enumerate() {
            position.insert(*n, i);
        }
        for (i, node) in order.iter().enumerate() {
            let entry = self.node_entry(*node)?;
            for (k, x) in entry.inputs.iter().enumerate() {
                if !self.vars[x.0 as usize].clients.contains(&Client::Node {
                    node: *node,
                    input: k,
                }) {
                    return bug(format!("input {k} of node {node:?} lacks its client entry"));
                }
                if let Some((p, _)) = self.owner(*x) {
                    if position.get(&p).is_none_or(|pi| *pi >= i) {
                        return bug(format!("node {node:?} is not after its input's producer"));
                    }
                }
            }
            let infos = entry
                .inputs
                .iter()
                .map(|x| self.input_info(*x))
                .collect::<Result<Vec<_>>>()?;
            let inferred = entry.op.infer(&infos)?;
            let actual: Vec<&TensorType> = entry.outputs.iter().map(|o| &self.var(*o).ty).collect();
            if inferred.len() != actual.len() || inferred.iter().zip(&actual).any(|(a, b)| a != *b)
            {
                return bug(format!(
                    "node {node:?} ({}) has output types {actual:?} but its op infers {inferred:?}",
                    entry.op
                ));
            }
            for inner in entry.op.inner_graphs() {
                inner.graph().check_integrity()?;
            }
        }
        for (id, v) in self.vars.iter().enumerate() {
            for c in &v.clients {
                let ok = match *c {
                    Client::Node { node, input } => self
                        .node(node)
                        .is_some_and(|e| e.inputs.get(input) == Some(&VarId(id as u32))),
                    Client::Output(k) => self.outputs.get(k) == Some(&VarId(id as u32)),
                };
                if !ok {
                    return bug(format!("stale client {c:?} on variable {id}"));
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for FunctionGraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::print::dprint_fgraph(self))
    }
}

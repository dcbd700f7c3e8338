//! Graph printing: `dprint` (PyTensor's debugprint format, types included) and Graphviz DOT.
//!
//! Owns: the text form of graphs that golden tests compare. Ids are letters given in
//! printing order (A, B, ..., Z, BA, BB, ...); a node reached again is printed once more
//! with its id and without its inputs.

use std::collections::HashMap;
use std::fmt::Write;

use crate::error::Result;
use crate::fgraph::{FunctionGraph, Origin, VarId};
use crate::var::Var;

/// PyTensor's id scheme: base-26 digits A..Z, with A as zero after the first digit.
fn letter_id(mut n: usize) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push((b'A' + (n % 26) as u8) as char);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().collect()
}

/// Prints the graph computing `outputs` (its inputs are found automatically).
///
/// ```
/// use tensorlift_ir::{dprint, vector, DType};
/// let x = vector("x", DType::Float64);
/// let text = dprint(&[&x.exp()])?;
/// assert!(text.starts_with("Exp [id A] <Vector(float64, shape=(?,))>"));
/// # Ok::<(), tensorlift_ir::GraphError>(())
/// ```
pub fn dprint(outputs: &[&Var]) -> Result<String> {
    let outs: Vec<Var> = outputs.iter().map(|v| (*v).clone()).collect();
    Ok(dprint_fgraph(&FunctionGraph::from_outputs(&outs)?))
}

/// Prints a function graph, one tree per output; then, as PyTensor prints Scan and
/// OpFromGraph, the inner graphs of its nodes below "Inner graphs:", each output marked
/// `←` and the inner inputs as `*k-<type>`.
pub fn dprint_fgraph(fg: &FunctionGraph) -> String {
    let mut printer = Printer::new(fg, 0, false);
    for out in fg.outputs() {
        printer.tree(*out, String::new(), " ".to_string());
    }
    let mut out = std::mem::take(&mut printer.out);
    let mut next_id = printer.ids.len();
    let mut pending: Vec<(String, &FunctionGraph)> = printer.inner_graphs();
    pending.reverse();
    if !pending.is_empty() {
        out.push_str("\nInner graphs:\n");
    }
    while let Some((header, inner)) = pending.pop() {
        writeln!(out, "\n{header}").ok();
        let mut printer = Printer::new(inner, next_id, true);
        for o in inner.outputs() {
            printer.tree(*o, " ← ".to_string(), "    ".to_string());
        }
        out.push_str(&printer.out);
        next_id += printer.ids.len();
        let mut nested = printer.inner_graphs();
        nested.reverse();
        pending.extend(nested);
    }
    out
}

struct Printer<'a> {
    fg: &'a FunctionGraph,
    ids: HashMap<VarId, String>,
    /// The letter id of this printer's first variable (inner graphs continue the outer
    /// graph's ids).
    first_id: usize,
    /// Whether inputs print as `*k-<type>` (an inner graph's).
    inner: bool,
    expanded: std::collections::HashSet<crate::fgraph::NodeId>,
    /// Nodes in the order they were expanded.
    order: Vec<crate::fgraph::NodeId>,
    out: String,
}

impl<'a> Printer<'a> {
    fn new(fg: &'a FunctionGraph, first_id: usize, inner: bool) -> Printer<'a> {
        Printer {
            fg,
            ids: HashMap::new(),
            first_id,
            inner,
            expanded: std::collections::HashSet::new(),
            order: Vec::new(),
            out: String::new(),
        }
    }

    /// The inner graphs of the printed nodes, each with its header line (the node's op
    /// and id), in the order the nodes were printed.
    fn inner_graphs(&mut self) -> Vec<(String, &'a FunctionGraph)> {
        let fg = self.fg;
        let mut found = Vec::new();
        for node in self.order.clone() {
            let Some(e) = fg.node(node) else { continue };
            for g in e.op.inner_graphs() {
                let header = format!("{} [id {}]", e.op, self.id(e.outputs[0]));
                found.push((header, g.graph()));
            }
        }
        found
    }

    fn id(&mut self, var: VarId) -> String {
        // Outputs of one node share the node's id, as in PyTensor.
        let key = match self.fg.owner(var) {
            Some((node, _)) => self.fg.node(node).map_or(var, |e| e.outputs[0]),
            None => var,
        };
        let next = self.first_id + self.ids.len();
        self.ids
            .entry(key)
            .or_insert_with(|| letter_id(next))
            .clone()
    }

    fn line(&mut self, var: VarId) -> String {
        let v = self.fg.var(var);
        let label = match &v.origin {
            Origin::Input if self.inner => {
                let k = self.fg.inputs().iter().position(|x| *x == var).unwrap_or(0);
                format!("*{k}-<{}>", v.ty)
            }
            Origin::Input => v.name.clone().unwrap_or_else(|| "<input>".into()),
            Origin::Constant(d) => d.to_string(),
            Origin::Node { node, index } => {
                let e = self.fg.node(*node);
                let op = e.map_or("<removed>".to_string(), |e| e.op.to_string());
                let multi = e.is_some_and(|e| e.outputs.len() > 1);
                let mut s = if multi { format!("{op}.{index}") } else { op };
                if let Some(n) = &v.name {
                    write!(s, " '{n}'").ok();
                }
                s
            }
        };
        let id = self.id(var);
        if self.inner && matches!(v.origin, Origin::Input) {
            return format!("{label} [id {id}]");
        }
        format!("{label} [id {id}] <{}>", v.ty)
    }

    /// Prints `root` (its line prefixed by `own`) and its inputs (by `children`), depth
    /// first, with an explicit stack.
    fn tree(&mut self, root: VarId, own: String, children: String) {
        // (variable, prefix for its own line, prefix for its children)
        let mut stack = vec![(root, own, children)];
        while let Some((var, own, child_prefix)) = stack.pop() {
            let line = self.line(var);
            writeln!(self.out, "{own}{line}").ok();
            let Some((node, _)) = self.fg.owner(var) else {
                continue;
            };
            if !self.expanded.insert(node) {
                continue;
            }
            self.order.push(node);
            let Some(entry) = self.fg.node(node) else {
                continue;
            };
            let n = entry.inputs.len();
            for (k, x) in entry.inputs.iter().enumerate().rev() {
                let last = k + 1 == n;
                let own = format!("{child_prefix}{}", if last { "└─ " } else { "├─ " });
                let below = format!("{child_prefix}{}", if last { "   " } else { "│  " });
                stack.push((*x, own, below));
            }
        }
    }
}

/// Graphviz DOT of the graph computing `outputs`: variables are ellipses (inputs green,
/// constants grey), ops are boxes.
///
/// ```
/// use tensorlift_ir::{to_dot, vector, DType};
/// let x = vector("x", DType::Float64);
/// assert!(to_dot(&[&x.exp()])?.starts_with("digraph"));
/// # Ok::<(), tensorlift_ir::GraphError>(())
/// ```
pub fn to_dot(outputs: &[&Var]) -> Result<String> {
    let outs: Vec<Var> = outputs.iter().map(|v| (*v).clone()).collect();
    let fg = FunctionGraph::from_outputs(&outs)?;
    let mut s = String::from("digraph tensorlift {\n  rankdir=BT;\n");
    dot_graph(&mut s, &fg, "");
    s.push_str("}\n");
    Ok(s)
}

/// Writes the nodes and variables of `fg` with ids prefixed by `prefix`; each inner graph
/// becomes a cluster below its node (ids prefixed by the node's), linked by dotted edges
/// from the node to the inner outputs.
fn dot_graph(s: &mut String, fg: &FunctionGraph, prefix: &str) {
    let mut vars = std::collections::BTreeSet::new();
    let mut inner = Vec::new();
    for node in fg.toposort() {
        let Some(e) = fg.node(node) else { continue };
        let op = e.op.to_string().replace('"', "\\\"");
        writeln!(s, "  {prefix}n{} [shape=box, label=\"{op}\"];", node.0).ok();
        for x in &e.inputs {
            vars.insert(*x);
            writeln!(s, "  {prefix}v{} -> {prefix}n{};", x.0, node.0).ok();
        }
        for o in &e.outputs {
            vars.insert(*o);
            writeln!(s, "  {prefix}n{} -> {prefix}v{};", node.0, o.0).ok();
        }
        for (k, g) in e.op.inner_graphs().into_iter().enumerate() {
            inner.push((format!("{prefix}n{}g{k}_", node.0), node, op.clone(), g));
        }
    }
    vars.extend(fg.outputs().iter().copied());
    for v in vars {
        let entry = fg.var(v);
        let (label, style) = match &entry.origin {
            Origin::Input => (fg.describe(v), ", style=filled, fillcolor=palegreen"),
            Origin::Constant(d) => (d.to_string(), ", style=filled, fillcolor=lightgrey"),
            Origin::Node { .. } => (String::new(), ""),
        };
        let label = format!("{label}\\n{}", entry.ty).replace('"', "\\\"");
        writeln!(
            s,
            "  {prefix}v{} [shape=ellipse, label=\"{label}\"{style}];",
            v.0
        )
        .ok();
    }
    for (inner_prefix, node, op, g) in inner {
        writeln!(s, "  subgraph cluster_{inner_prefix} {{\n  label=\"{op}\";").ok();
        dot_graph(s, g.graph(), &inner_prefix);
        s.push_str("  }\n");
        for o in g.graph().outputs() {
            writeln!(
                s,
                "  {prefix}n{} -> {inner_prefix}v{} [style=dotted];",
                node.0, o.0
            )
            .ok();
        }
    }
}

/// One line describing a node for error messages: `Add(x, ExpandDims{axis=0}) ->
/// Vector(float64, shape=(?,))`.
pub fn node_summary(fg: &FunctionGraph, node: crate::fgraph::NodeId) -> String {
    let Some(entry) = fg.node(node) else {
        return "<removed node>".into();
    };
    let inputs: Vec<String> = entry.inputs.iter().map(|x| fg.describe(*x)).collect();
    let outputs: Vec<String> = entry
        .outputs
        .iter()
        .map(|o| fg.var(*o).ty.to_string())
        .collect();
    format!(
        "{}({}) -> {}",
        entry.op,
        inputs.join(", "),
        outputs.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::letter_id;

    #[test]
    fn ids_follow_pytensor() {
        assert_eq!(letter_id(0), "A");
        assert_eq!(letter_id(25), "Z");
        assert_eq!(letter_id(26), "BA");
        assert_eq!(letter_id(27), "BB");
    }
}

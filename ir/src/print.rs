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
pub fn dprint(outputs: &[&Var]) -> Result<String> {
    let outs: Vec<Var> = outputs.iter().map(|v| (*v).clone()).collect();
    Ok(dprint_fgraph(&FunctionGraph::from_outputs(&outs)?))
}

/// Prints a function graph, one tree per output.
pub fn dprint_fgraph(fg: &FunctionGraph) -> String {
    let mut printer = Printer {
        fg,
        ids: HashMap::new(),
        expanded: std::collections::HashSet::new(),
        out: String::new(),
    };
    for out in fg.outputs() {
        printer.tree(*out);
    }
    printer.out
}

struct Printer<'a> {
    fg: &'a FunctionGraph,
    ids: HashMap<VarId, String>,
    expanded: std::collections::HashSet<crate::fgraph::NodeId>,
    out: String,
}

impl Printer<'_> {
    fn id(&mut self, var: VarId) -> String {
        // Outputs of one node share the node's id, as in PyTensor.
        let key = match self.fg.owner(var) {
            Some((node, _)) => self.fg.node(node).map_or(var, |e| e.outputs[0]),
            None => var,
        };
        let next = self.ids.len();
        self.ids
            .entry(key)
            .or_insert_with(|| letter_id(next))
            .clone()
    }

    fn line(&mut self, var: VarId) -> String {
        let v = self.fg.var(var);
        let label = match &v.origin {
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
        let ty = v.ty.to_string();
        format!("{label} [id {}] <{ty}>", self.id(var))
    }

    /// Prints `root` and its inputs, depth first, with an explicit stack.
    fn tree(&mut self, root: VarId) {
        // (variable, prefix for its own line, prefix for its children)
        let mut stack = vec![(root, String::new(), " ".to_string())];
        while let Some((var, own, child_prefix)) = stack.pop() {
            let line = self.line(var);
            writeln!(self.out, "{own}{line}").ok();
            let Some((node, _)) = self.fg.owner(var) else {
                continue;
            };
            if !self.expanded.insert(node) {
                continue;
            }
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
pub fn to_dot(outputs: &[&Var]) -> Result<String> {
    let outs: Vec<Var> = outputs.iter().map(|v| (*v).clone()).collect();
    let fg = FunctionGraph::from_outputs(&outs)?;
    let mut s = String::from("digraph tensorlift {\n  rankdir=BT;\n");
    let mut vars = std::collections::BTreeSet::new();
    for node in fg.toposort() {
        let Some(e) = fg.node(node) else { continue };
        let op = e.op.to_string().replace('"', "\\\"");
        writeln!(s, "  n{} [shape=box, label=\"{op}\"];", node.0).ok();
        for x in &e.inputs {
            vars.insert(*x);
            writeln!(s, "  v{} -> n{};", x.0, node.0).ok();
        }
        for o in &e.outputs {
            vars.insert(*o);
            writeln!(s, "  n{} -> v{};", node.0, o.0).ok();
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
        writeln!(s, "  v{} [shape=ellipse, label=\"{label}\"{style}];", v.0).ok();
    }
    s.push_str("}\n");
    Ok(s)
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

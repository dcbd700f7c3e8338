//! Blockwise rewrites (canonicalize): a Blockwise whose core op has a native batched form
//! becomes that form — one without batch dimensions its core op, a Blockwise of an
//! Elemwise an Elemwise, of a reduction a reduction along shifted axes, and so on, by
//! `vectorize`'s own rules (`tensorlift_ir::vectorize::native_blockwise`). Blockwises
//! of linear-algebra ops and of matrix products stay: the JIT drives their core over the
//! batch on both cores.

use tensorlift_ir::vectorize::native_blockwise;
use tensorlift_ir::{FunctionGraph, GraphError, Op, TensorType};

use super::inline::copy_graph;
use super::{Rule, RuleKind};

pub const RULES: [Rule; 1] = [Rule {
    name: "blockwise_to_native",
    tag: "canonicalize",
    kind: RuleKind::Global(blockwise_to_native),
}];

/// Replaces every Blockwise with a native form by that form.
fn blockwise_to_native(fg: &mut FunctionGraph) -> Result<usize, GraphError> {
    let mut changed = 0;
    for node in fg.toposort() {
        let Some(e) = fg.node(node) else { continue };
        let Op::Blockwise(bw) = &e.op else { continue };
        let types: Vec<&TensorType> = e.inputs.iter().map(|x| &fg.var(*x).ty).collect();
        let Some(native) = native_blockwise(bw, &types)? else {
            continue;
        };
        let (inputs, outputs) = (e.inputs.clone(), e.outputs.clone());
        let new = copy_graph(fg, &native, &inputs)?;
        for (old, new) in outputs.into_iter().zip(new) {
            fg.replace(old, new)?;
        }
        changed += 1;
    }
    Ok(changed)
}

//! Composite kernels of the reference interpreter: `Op::Composite` and `Op::FusedReduce`.
//!
//! Owns: evaluating a composite node by node with the same Elemwise kernels (and so the
//! same dtype rules and checks) as the unfused graph, whole arrays at a time. The
//! reference backend favours sameness with the unfused graph over speed.

use tensorlift_ir::ops::{Composite, ReduceKind, ScalarRef};
use tensorlift_ir::types::elemwise_shape;
use tensorlift_ir::{TensorData, TensorType};

use crate::broadcast::{broadcast_shape, Operand};
use crate::elemwise::eval_elemwise;
use crate::error::{Result, RuntimeError};
use crate::reduce::eval_reduce;
use crate::shape_ops::{eval_alloc, eval_reshape};

/// A value inside the composite and its static shape.
#[derive(Clone)]
struct Slot {
    value: TensorData,
    static_shape: Vec<Option<usize>>,
}

fn constant_slot(name: &str, scalar: TensorData, ndim: usize) -> Result<Slot> {
    let ones = TensorData::from_vec(&[ndim], vec![1i64; ndim])?;
    Ok(Slot {
        value: eval_reshape(name, &scalar, &ones)?,
        static_shape: vec![Some(1); ndim],
    })
}

/// Evaluates every output of `c` on `inputs` (whose static types are `types`).
pub fn eval_composite(
    name: &str,
    c: &Composite,
    types: &[&TensorType],
    inputs: &[&TensorData],
) -> Result<Vec<TensorData>> {
    if inputs.len() != c.inputs.len() || types.len() != c.inputs.len() {
        return Err(RuntimeError::op(
            name,
            format!(
                "takes {} inputs, got {} values of {} types",
                c.inputs.len(),
                inputs.len(),
                types.len()
            ),
        ));
    }
    let ndim = types.first().map_or(0, |t| t.ndim());
    let labels: Vec<String> = (0..inputs.len()).map(|k| format!("input {k}")).collect();
    let operands: Vec<Operand> = inputs
        .iter()
        .zip(types)
        .zip(&labels)
        .map(|((v, t), label)| Operand {
            label,
            static_shape: &t.shape,
            shape: v.shape(),
        })
        .collect();
    let out_shape = broadcast_shape(name, ndim, &operands, None)?;
    crate::memory::check_output(name, tensorlift_ir::DType::Float64, &out_shape)?;
    let mut nodes: Vec<Slot> = Vec::with_capacity(c.nodes.len());
    let resolve = |r: ScalarRef, nodes: &[Slot]| -> Result<Slot> {
        match r {
            ScalarRef::Input(i) => Ok(Slot {
                value: inputs[i].clone(),
                static_shape: types[i].shape.clone(),
            }),
            ScalarRef::Node(j) => Ok(nodes[j].clone()),
            ScalarRef::Const(lit, dtype) => {
                constant_slot(name, TensorData::from_literal(lit, dtype), ndim)
            }
        }
    };
    for node in &c.nodes {
        let args = node
            .args
            .iter()
            .map(|a| resolve(*a, &nodes))
            .collect::<Result<Vec<_>>>()?;
        let values: Vec<&TensorData> = args.iter().map(|s| &s.value).collect();
        let statics: Vec<&[Option<usize>]> =
            args.iter().map(|s| s.static_shape.as_slice()).collect();
        let value = eval_elemwise(&node.op.name(), node.op, &statics, &values)?;
        let static_shape = elemwise_shape(name, &statics)?;
        nodes.push(Slot {
            value,
            static_shape,
        });
    }
    let dims: Vec<TensorData> = out_shape
        .iter()
        .map(|d| TensorData::scalar(*d as i64))
        .collect();
    let dim_refs: Vec<&TensorData> = dims.iter().collect();
    c.outputs
        .iter()
        .map(|o| {
            let slot = resolve(*o, &nodes)?;
            // An output that is an input or a constant still takes the output's shape.
            if slot.value.shape() == out_shape.as_slice() {
                Ok(slot.value)
            } else {
                eval_alloc(name, &slot.value, &slot.static_shape, &dim_refs)
            }
        })
        .collect()
}

/// A reduction over the single output of a composite.
pub fn eval_fused_reduce(
    name: &str,
    kind: ReduceKind,
    axes: &[usize],
    body: &Composite,
    types: &[&TensorType],
    inputs: &[&TensorData],
    keep: bool,
) -> Result<Vec<TensorData>> {
    let mut outs = eval_composite(name, body, types, inputs)?;
    if outs.len() != 1 {
        return Err(RuntimeError::Internal(format!(
            "{name}: fused body has {} outputs",
            outs.len()
        )));
    }
    let values = outs.remove(0);
    let reduced = eval_reduce(name, kind, axes, &values)?;
    Ok(if keep {
        vec![reduced, values]
    } else {
        vec![reduced]
    })
}

//! Type inference of reductions: CAReduce (`Reduce`), Argmax/Argmin (`ArgReduce`),
//! CumSum/CumProd (`Cumulative`) and `Softmax` (normalised by a reduction along its axis).
//!
//! Owns: the reduction kinds and their dtype rules (NumPy's: sum and prod of bool or
//! integers accumulate in int64, max/min keep the dtype, all/any give bool, arg-reductions
//! give int64; logsumexp gives the float dtype exp would).

use crate::dtype::DType;
use crate::error::{GraphError, Result};
use crate::ops::InputInfo;
use crate::types::TensorType;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceKind {
    Sum,
    Prod,
    Max,
    Min,
    All,
    Any,
    /// log(Σ exp(x)), computed without overflow or underflow (shifted by the maximum);
    /// an empty reduction gives −inf.
    LogSumExp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgKind {
    Argmax,
    Argmin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CumKind {
    CumSum,
    CumProd,
}

impl ReduceKind {
    /// The dtype the reduction produces (and accumulates in) for an input dtype.
    pub fn output_dtype(self, input: DType) -> DType {
        match self {
            ReduceKind::Sum | ReduceKind::Prod => accumulate_dtype(input),
            ReduceKind::Max | ReduceKind::Min => input,
            ReduceKind::All | ReduceKind::Any => DType::Bool,
            ReduceKind::LogSumExp => input.upgrade_to_float(),
        }
    }
}

impl CumKind {
    pub fn output_dtype(self, input: DType) -> DType {
        accumulate_dtype(input)
    }
}

fn accumulate_dtype(input: DType) -> DType {
    if input.is_float() {
        input
    } else {
        DType::Int64
    }
}

fn one_input<'a>(name: &str, inputs: &'a [InputInfo<'a>]) -> Result<&'a InputInfo<'a>> {
    match inputs {
        [x] => Ok(x),
        _ => Err(GraphError::op(name, "takes exactly one input")),
    }
}

fn check_axis(name: &str, axis: usize, x: &InputInfo) -> Result<()> {
    if axis >= x.ty.ndim() {
        return Err(GraphError::op(
            name,
            format!("axis {axis} is out of range for input 0 ({})", x.ty),
        ));
    }
    Ok(())
}

pub(crate) fn infer_reduce(
    name: &str,
    kind: ReduceKind,
    axes: &[usize],
    inputs: &[InputInfo],
) -> Result<TensorType> {
    let x = one_input(name, inputs)?;
    if axes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(GraphError::op(name, "axes must be sorted and distinct"));
    }
    for &a in axes {
        check_axis(name, a, x)?;
    }
    if matches!(kind, ReduceKind::Max | ReduceKind::Min) {
        if let Some(a) = axes.iter().find(|a| x.ty.shape[**a] == Some(0)) {
            return Err(GraphError::op(
                name,
                format!(
                    "axis {a} of input 0 ({}) is empty and has no {kind:?}",
                    x.ty
                ),
            ));
        }
    }
    let shape = (0..x.ty.ndim())
        .filter(|d| !axes.contains(d))
        .map(|d| x.ty.shape[d])
        .collect::<Vec<_>>();
    Ok(TensorType::new(kind.output_dtype(x.ty.dtype), shape))
}

pub(crate) fn infer_arg(
    name: &str,
    axis: Option<usize>,
    inputs: &[InputInfo],
) -> Result<TensorType> {
    let x = one_input(name, inputs)?;
    let shape = match axis {
        None => vec![],
        Some(a) => {
            check_axis(name, a, x)?;
            let mut s = x.ty.shape.clone();
            s.remove(a);
            s
        }
    };
    Ok(TensorType::new(DType::Int64, shape))
}

pub(crate) fn infer_cumulative(
    name: &str,
    kind: CumKind,
    axis: Option<usize>,
    inputs: &[InputInfo],
) -> Result<TensorType> {
    let x = one_input(name, inputs)?;
    let shape = match axis {
        None => vec![x.ty.static_size()],
        Some(a) => {
            check_axis(name, a, x)?;
            x.ty.shape.clone()
        }
    };
    Ok(TensorType::new(kind.output_dtype(x.ty.dtype), shape))
}

pub(crate) fn infer_softmax(name: &str, axis: usize, inputs: &[InputInfo]) -> Result<TensorType> {
    let x = one_input(name, inputs)?;
    check_axis(name, axis, x)?;
    Ok(TensorType::new(
        x.ty.dtype.upgrade_to_float(),
        x.ty.shape.clone(),
    ))
}

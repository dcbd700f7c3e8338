//! `Blockwise`: a core op applied over leading batch dimensions, as NumPy's generalized
//! ufuncs, with its gufunc signature (e.g. matmul `(m,k),(k,n)->(m,n)`).
//!
//! Owns: signatures (parsing, printing, the signature of any op with every dimension
//! core), the batch shape rule (inputs with fewer batch dimensions are padded on the left
//! with broadcastable ones; a batch dimension broadcasts only where its static size is 1,
//! DESIGN §3), and the output types (batch shape, then the core op's own output types).

use std::fmt;

use crate::error::{GraphError, Result};
use crate::fgraph::FunctionGraph;
use crate::ops::{InputInfo, Op};
use crate::types::TensorType;

/// A gufunc signature: per input and per output, the names of its core dimensions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Signature {
    pub inputs: Vec<Vec<String>>,
    pub outputs: Vec<Vec<String>>,
}

impl Signature {
    /// Parses NumPy's notation, e.g. `"(m,k),(k,n)->(m,n)"` or `"(m,m)->(),()"`.
    pub fn parse(text: &str) -> Result<Signature> {
        let bad = |why: &str| GraphError::op("Blockwise", format!("signature {text:?}: {why}"));
        let (ins, outs) = text
            .split_once("->")
            .ok_or_else(|| bad("expected `inputs->outputs`"))?;
        let side = |part: &str| -> Result<Vec<Vec<String>>> {
            let part: String = part.chars().filter(|c| !c.is_whitespace()).collect();
            let inner = part
                .strip_prefix('(')
                .and_then(|p| p.strip_suffix(')'))
                .ok_or_else(|| bad("each operand is a parenthesised list of names"))?;
            inner
                .split("),(")
                .map(|dims| {
                    if dims.is_empty() {
                        return Ok(Vec::new());
                    }
                    dims.split(',')
                        .map(|d| {
                            if !d.is_empty() && d.chars().all(|c| c.is_alphanumeric() || c == '_') {
                                Ok(d.to_string())
                            } else {
                                Err(bad("dimension names are letters, digits and _"))
                            }
                        })
                        .collect()
                })
                .collect()
        };
        Ok(Signature {
            inputs: side(ins)?,
            outputs: side(outs)?,
        })
    }

    /// The signature of an op whose every input and output dimension is core, for inputs
    /// and outputs of the given ranks (the fallback of `vectorize_graph`).
    pub fn all_core(input_ranks: &[usize], output_ranks: &[usize]) -> Signature {
        let names = |prefix: &str, ranks: &[usize]| {
            ranks
                .iter()
                .enumerate()
                .map(|(k, r)| (0..*r).map(|d| format!("{prefix}{k}_{d}")).collect())
                .collect()
        };
        Signature {
            inputs: names("i", input_ranks),
            outputs: names("o", output_ranks),
        }
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |s: &[Vec<String>]| {
            s.iter()
                .map(|dims| format!("({})", dims.join(",")))
                .collect::<Vec<_>>()
                .join(",")
        };
        write!(f, "{}->{}", side(&self.inputs), side(&self.outputs))
    }
}

/// A core op applied to every batch element of its inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Blockwise {
    pub core: Op,
    pub signature: Signature,
}

impl Blockwise {
    /// The number of batch dimensions of the outputs for inputs of these ranks.
    pub fn batch_ndim(&self, input_ranks: &[usize]) -> usize {
        input_ranks
            .iter()
            .zip(&self.signature.inputs)
            .map(|(r, core)| r.saturating_sub(core.len()))
            .max()
            .unwrap_or(0)
    }

    /// The core types of the inputs (their trailing core dimensions).
    pub fn core_types(&self, inputs: &[&TensorType]) -> Vec<TensorType> {
        inputs
            .iter()
            .zip(&self.signature.inputs)
            .map(|(t, core)| {
                TensorType::new(
                    t.dtype,
                    t.shape[t.ndim().saturating_sub(core.len())..].to_vec(),
                )
            })
            .collect()
    }

    /// A graph of the core op alone on inputs of the given core types (what the backends
    /// run per batch element).
    pub fn core_graph(&self, core_types: &[TensorType]) -> Result<FunctionGraph> {
        let inputs: Vec<crate::var::Var> = core_types
            .iter()
            .enumerate()
            .map(|(k, t)| crate::var::Var::input(&format!("core{k}"), t.clone()))
            .collect();
        let outputs = crate::var::Var::apply(self.core.clone(), inputs.clone())?;
        FunctionGraph::new(&inputs, &outputs)
    }

    /// The output types for inputs of the given types.
    pub fn infer_types(&self, inputs: &[&TensorType]) -> Result<Vec<TensorType>> {
        let infos: Vec<InputInfo> = inputs
            .iter()
            .map(|ty| InputInfo { ty, constant: None })
            .collect();
        self.infer(
            &format!("Blockwise{{{}, {}}}", self.core, self.signature),
            &infos,
        )
    }

    pub(crate) fn infer(&self, name: &str, inputs: &[InputInfo]) -> Result<Vec<TensorType>> {
        let sig = &self.signature;
        if inputs.len() != sig.inputs.len() {
            return Err(GraphError::op(
                name,
                format!(
                    "takes {} inputs (signature {sig}), got {}",
                    sig.inputs.len(),
                    inputs.len()
                ),
            ));
        }
        for (k, (x, core)) in inputs.iter().zip(&sig.inputs).enumerate() {
            if x.ty.ndim() < core.len() {
                return Err(GraphError::op(
                    name,
                    format!(
                        "input {k} ({}) has fewer dimensions than its {} core ones ({})",
                        x.ty,
                        core.len(),
                        core.join(",")
                    ),
                ));
            }
        }
        let types: Vec<&TensorType> = inputs.iter().map(|i| i.ty).collect();
        let b = self.batch_ndim(&types.iter().map(|t| t.ndim()).collect::<Vec<_>>());
        let batch = batch_shape(name, &types, &sig.inputs, b)?;
        // Core dimensions of one name agree where both sizes are known.
        let mut known: Vec<(&str, usize, usize)> = Vec::new();
        for (k, (t, core)) in types.iter().zip(&sig.inputs).enumerate() {
            let dims = &t.shape[t.ndim() - core.len()..];
            for (d, size) in core.iter().zip(dims) {
                let Some(size) = size else { continue };
                match known.iter().find(|(n, _, _)| n == d) {
                    Some((_, other, j)) if other != size => {
                        return Err(GraphError::op(
                            name,
                            format!(
                                "core dimension {d} is {other} in input {j} but {size} in \
                                 input {k} (signature {sig})"
                            ),
                        ))
                    }
                    Some(_) => {}
                    None => known.push((d, *size, k)),
                }
            }
        }
        let core_types = self.core_types(&types);
        let infos: Vec<InputInfo> = core_types
            .iter()
            .map(|ty| InputInfo { ty, constant: None })
            .collect();
        let outs = self.core.infer(&infos)?;
        if outs.len() != sig.outputs.len() {
            return Err(GraphError::op(
                name,
                format!(
                    "the core op has {} outputs, the signature {sig} {}",
                    outs.len(),
                    sig.outputs.len()
                ),
            ));
        }
        outs.into_iter()
            .zip(&sig.outputs)
            .map(|(t, core)| {
                if t.ndim() != core.len() {
                    return Err(GraphError::op(
                        name,
                        format!(
                            "the core op gives {t} where the signature {sig} has ({})",
                            core.join(",")
                        ),
                    ));
                }
                let mut shape = batch.clone();
                shape.extend(t.shape);
                Ok(TensorType::new(t.dtype, shape))
            })
            .collect()
    }
}

/// The static batch shape of `b` dimensions: per dimension, sizes of 1 broadcast; known
/// sizes that differ are an error.
fn batch_shape(
    name: &str,
    types: &[&TensorType],
    cores: &[Vec<String>],
    b: usize,
) -> Result<Vec<Option<usize>>> {
    let mut shape = Vec::with_capacity(b);
    for d in 0..b {
        let mut size: Option<usize> = Some(1);
        let mut from: Option<usize> = None;
        for (k, (t, core)) in types.iter().zip(cores).enumerate() {
            let own = t.ndim() - core.len();
            let Some(pos) = (d + own).checked_sub(b) else {
                continue;
            };
            match (size, t.shape[pos]) {
                (_, Some(1)) => {}
                (Some(1), s) => {
                    size = s;
                    from = Some(k);
                }
                (Some(a), Some(c)) if a != c => {
                    return Err(GraphError::op(
                        name,
                        format!(
                            "batch dimension {d} is {a} in input {} but {c} in input {k}",
                            from.unwrap_or(0)
                        ),
                    ))
                }
                (None, Some(c)) => {
                    size = Some(c);
                    from = Some(k);
                }
                (_, _) => {}
            }
        }
        shape.push(size);
    }
    Ok(shape)
}

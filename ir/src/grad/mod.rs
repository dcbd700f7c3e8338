//! Reverse-mode differentiation of user graphs (DESIGN §7).
//!
//! Owns: `grad` / `grad_with` (the pullbacks of the nodes between the cost and the
//! variables asked for, composed in reverse topological order, contributions to one
//! variable summed), the options (`known_grads`, what a variable the cost does not depend
//! on gets) and the helpers the pullbacks share. One pullback per op lives in `pullback`,
//! the derivatives of the scalar ops in `scalar`. Gradients are ordinary graphs: they are
//! rewritten, fused and compiled like any other.

mod jacobian;
mod lazy;
mod linalg;
pub(crate) mod pullback;
mod pushforward;
mod scalar;
mod scan;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::error::{GraphError, Result};
use crate::var::{postorder, Node, Var};

pub use jacobian::jacobian;
pub use lazy::{expand as expand_grad, gradient_graph};
pub use pullback::pullback;
pub use pushforward::{hessian_vector_product, pushforward, pushforward_by_pullback};

/// What a pullback gives one input of a node.
#[derive(Clone, Debug)]
pub enum InputGrad {
    /// The gradient of the cost with respect to the input (the input's type).
    Grad(Var),
    /// The output does not depend on the input (an index, a shape, a condition).
    Disconnected,
    /// The gradient exists in principle but is not defined here, with the reason (an
    /// integer input, a derivative not implemented).
    Undefined(String),
}

/// What `grad_with` returns for a variable the cost does not depend on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Disconnected {
    /// An error naming the variable (PyTensor's default).
    #[default]
    Raise,
    /// Zeros of the variable's type.
    Zero,
    /// `None` in the result.
    Disconnected,
}

/// Options of `grad_with`.
#[derive(Clone, Debug, Default)]
pub struct GradOptions {
    /// Gradients of the cost with respect to intermediate variables, given instead of (or
    /// besides) a scalar cost: each is summed into that variable's gradient.
    pub known_grads: Vec<(Var, Var)>,
    pub disconnected: Disconnected,
    /// Whether the gradient is a lazy `Grad` node, differentiated by the compile pipeline
    /// after it has rewritten (stabilized) the cost graph; `grad` sets it. Only with a
    /// cost and no `known_grads`; otherwise the gradient graph is built at once.
    pub lazy: bool,
}

/// The gradient of a scalar float `cost` with respect to each of `wrt` (float
/// variables), each of its variable's type.
///
/// ```
/// use tensorlift_ir::{grad, vector, DType};
/// let x = vector("x", DType::Float64);
/// let g = grad(&(x.sqr().sum(None)), &[&x]).unwrap();
/// assert_eq!(g[0].ty(), x.ty());
/// ```
pub fn grad(cost: &Var, wrt: &[&Var]) -> Result<Vec<Var>> {
    let options = GradOptions {
        lazy: true,
        ..GradOptions::default()
    };
    let grads = grad_with(Some(cost), wrt, &options)?;
    grads
        .into_iter()
        .map(|g| g.ok_or_else(|| GraphError::Graph("grad: a gradient is missing".into())))
        .collect()
}

/// The cost followed by its gradients with respect to `wrt`, to compile as one function
/// (`function(&inputs, &outputs)`): the gradient reuses the forward computation, which
/// the compiled function runs once.
///
/// ```
/// use tensorlift_ir::{value_and_grad, vector, DType};
/// let x = vector("x", DType::Float64);
/// let outputs = value_and_grad(&x.exp().sum(None), &[&x]).unwrap();
/// assert_eq!(outputs.len(), 2);
/// ```
pub fn value_and_grad(cost: &Var, wrt: &[&Var]) -> Result<Vec<Var>> {
    let mut outputs = vec![cost.clone()];
    outputs.extend(grad(cost, wrt)?);
    Ok(outputs)
}

/// `grad` with options: an optional cost (`None` when `known_grads` give the output
/// gradients), and what a variable the cost does not depend on gets.
///
/// ```
/// use tensorlift_ir::{grad_with, vector, Disconnected, DType, GradOptions};
/// let (x, unused) = (vector("x", DType::Float64), vector("u", DType::Float64));
/// let cost = (&x * &x).sum(None);
/// let options = GradOptions {
///     disconnected: Disconnected::Zero,
///     ..GradOptions::default()
/// };
/// let g = grad_with(Some(&cost), &[&x, &unused], &options)?;
/// assert!(g.iter().all(|v| v.is_some())); // zeros for the variable cost does not read
/// // PyTensor's default: an error naming the disconnected variable.
/// assert!(grad_with(Some(&cost), &[&unused], &GradOptions::default()).is_err());
/// # Ok::<(), tensorlift_ir::GraphError>(())
/// ```
pub fn grad_with(
    cost: Option<&Var>,
    wrt: &[&Var],
    options: &GradOptions,
) -> Result<Vec<Option<Var>>> {
    let mut seeds: Vec<(Var, Var)> = Vec::new();
    if let Some(cost) = cost {
        cost.check()?;
        if cost.ndim() != 0 {
            return Err(GraphError::op(
                "grad",
                format!(
                    "the cost must be a scalar, got {} (give output gradients with \
                     known_grads instead)",
                    cost.ty()
                ),
            ));
        }
        if !cost.dtype().is_float() {
            return Err(GraphError::op(
                "grad",
                format!("the cost must be a float scalar, got {}", cost.ty()),
            ));
        }
        seeds.push((cost.clone(), Var::literal(1.0, cost.dtype())));
    } else if options.known_grads.is_empty() {
        return Err(GraphError::op(
            "grad",
            "needs a cost or known_grads (gradients of some variables)",
        ));
    }
    for (v, g) in &options.known_grads {
        v.check()?;
        g.check()?;
        if g.ndim() != v.ndim() {
            return Err(GraphError::op(
                "grad",
                format!(
                    "the known gradient of {} is {}, not of its type {}",
                    v.label(),
                    g.ty(),
                    v.ty()
                ),
            ));
        }
        seeds.push((v.clone(), g.cast(v.dtype())));
    }
    for (k, x) in wrt.iter().enumerate() {
        x.check()?;
        if !x.dtype().is_float() {
            return Err(GraphError::op(
                "grad",
                format!(
                    "cannot differentiate with respect to {} (wrt {k}): it is {}, and only \
                     float variables have gradients",
                    x.label(),
                    x.ty()
                ),
            ));
        }
    }
    let roots: Vec<Var> = seeds.iter().map(|(v, _)| v.clone()).collect();
    let order = postorder(&roots);
    // The variables on a path from some wrt variable (a node's outputs are when one of
    // its inputs is).
    let targets: HashSet<(usize, usize)> = wrt.iter().map(|x| x.value_key()).collect();
    let mut reaches: HashSet<(usize, usize)> = HashSet::new();
    for v in &order {
        let on_path = targets.contains(&v.value_key())
            || v.owner().is_some_and(|(node, _)| {
                node.inputs.iter().any(|i| reaches.contains(&i.value_key()))
            });
        if on_path {
            reaches.insert(v.value_key());
        }
    }
    let mut grads: HashMap<(usize, usize), Var> = HashMap::new();
    for (v, g) in seeds {
        if reaches.contains(&v.value_key()) {
            accumulate(&mut grads, &v, g);
        }
    }
    // Nodes in reverse topological order, each once: at the first of its outputs in
    // `order`, so after every user of any of its outputs.
    let mut first_at: HashMap<*const Node, usize> = HashMap::new();
    for (i, v) in order.iter().enumerate() {
        if let Some((node, _)) = v.owner() {
            first_at.entry(Arc::as_ptr(node)).or_insert(i);
        }
    }
    for (i, v) in order.iter().enumerate().rev() {
        let Some((node, _)) = v.owner() else {
            continue;
        };
        if first_at.get(&Arc::as_ptr(node)) != Some(&i) {
            continue;
        }
        if !node.inputs.iter().any(|i| reaches.contains(&i.value_key())) {
            continue;
        }
        let outputs = node_outputs(node);
        let output_grads: Vec<Option<Var>> = outputs
            .iter()
            .map(|o| grads.get(&o.value_key()).cloned())
            .collect();
        if output_grads.iter().all(Option::is_none) {
            continue;
        }
        let input_grads = pullback(&node.op, &node.inputs, &outputs, &output_grads)?;
        if input_grads.len() != node.inputs.len() {
            return Err(GraphError::op(
                node.op.to_string(),
                format!(
                    "its pullback gave {} gradients for {} inputs",
                    input_grads.len(),
                    node.inputs.len()
                ),
            ));
        }
        for (k, (input, g)) in node.inputs.iter().zip(input_grads).enumerate() {
            if !reaches.contains(&input.value_key()) {
                continue;
            }
            match g {
                InputGrad::Grad(g) => {
                    g.check().map_err(|e| {
                        GraphError::op(
                            node.op.to_string(),
                            format!("the gradient of input {k} could not be built: {e}"),
                        )
                    })?;
                    accumulate(&mut grads, input, g);
                }
                InputGrad::Disconnected => {}
                InputGrad::Undefined(reason) => {
                    return Err(GraphError::op(
                        node.op.to_string(),
                        format!(
                            "the gradient with respect to input {k} ({}) is undefined: {reason}",
                            input.label()
                        ),
                    ))
                }
            }
        }
    }
    let distinct = wrt.iter().map(|x| x.key()).collect::<HashSet<_>>().len() == wrt.len();
    let all_connected = wrt.iter().all(|x| grads.contains_key(&x.value_key()));
    if let (true, Some(cost), true, true) = (
        options.lazy && options.known_grads.is_empty(),
        cost,
        distinct,
        all_connected,
    ) {
        // Checked above (types, undefined paths, connections); the pipeline builds it.
        return Ok(lazy::lazy_grad(cost, wrt)?.into_iter().map(Some).collect());
    }
    wrt.iter()
        .map(|x| match grads.get(&x.value_key()) {
            Some(g) => Ok(Some(match_type(g.clone(), x))),
            None => match options.disconnected {
                Disconnected::Raise => Err(GraphError::op(
                    "grad",
                    format!(
                        "the cost does not depend on {} (ask with Disconnected::Zero or \
                         Disconnected::Disconnected to allow this)",
                        x.label()
                    ),
                )),
                Disconnected::Zero => Ok(Some(zeros_like(x))),
                Disconnected::Disconnected => Ok(None),
            },
        })
        .collect()
}

/// All outputs of `node` as variables (handles to the same values as the user's).
fn node_outputs(node: &Arc<Node>) -> Vec<Var> {
    (0..node.output_types.len())
        .map(|k| Var::from_node_output(node.clone(), k))
        .collect()
}

/// Adds `g` to the gradient of `v` (cast to v's dtype, summed back over dimensions v
/// broadcast along).
fn accumulate(grads: &mut HashMap<(usize, usize), Var>, v: &Var, g: Var) {
    let g = match_type(g, v);
    let total = match grads.remove(&v.value_key()) {
        Some(previous) => &previous + &g,
        None => g,
    };
    grads.insert(v.value_key(), total);
}

/// `g` in x's dtype, summed over the leading dimensions x lacks and over the dimensions
/// where x has static size 1 and g may not (the gradient of a broadcast).
pub(crate) fn match_type(g: Var, x: &Var) -> Var {
    let mut g = sum_to(g, x);
    if x.dtype().is_float() {
        g = g.cast(x.dtype());
    }
    // Static sizes x has and g lost (through a reshape, say) are asserted back.
    let refines = g.ndim() == x.ndim()
        && g.static_shape()
            .iter()
            .zip(x.static_shape())
            .any(|(a, b)| a.is_none() && b.is_some());
    if refines {
        g.specify_shape(x.static_shape())
    } else {
        g
    }
}

fn sum_to(g: Var, x: &Var) -> Var {
    let mut g = g;
    if g.ndim() > x.ndim() {
        let lead: Vec<isize> = (0..(g.ndim() - x.ndim()) as isize).collect();
        g = g.sum(lead);
    }
    if g.ndim() != x.ndim() {
        return g;
    }
    let axes: Vec<isize> = (0..x.ndim())
        .filter(|d| x.static_shape()[*d] == Some(1) && g.static_shape()[*d] != Some(1))
        .map(|d| d as isize)
        .collect();
    if axes.is_empty() {
        g
    } else {
        g.sum_keepdims(axes)
    }
}

pub(crate) use crate::api::shape::{shape_of, zeros_like};

/// Whether `v` is an integer or bool variable (no gradient flows through it).
pub(crate) fn is_discrete(v: &Var) -> bool {
    !v.dtype().is_float()
}

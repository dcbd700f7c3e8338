//! Run-time shape checks for DESIGN §3's rule: **no runtime broadcasting**.
//!
//! Owns: the one function every kernel uses to combine shapes. A dimension broadcasts only
//! when its *static* size is 1; dimensions of unknown static size must be equal at run
//! time, otherwise the error names the op, the input, the dimension and both sizes, and
//! suggests a static shape of 1 or an explicit `broadcast_to`.

use crate::error::{Result, RuntimeError};

/// One operand of a broadcast: its static shape from the graph and its run-time shape.
#[derive(Clone, Copy, Debug)]
pub struct Operand<'a> {
    /// What the error calls it, e.g. "input 1" or "the value (input 1)".
    pub label: &'a str,
    pub static_shape: &'a [Option<usize>],
    pub shape: &'a [usize],
}

/// A shape as the runtime computes it per call (inline up to four dimensions: no
/// allocation for the shapes of most calls).
pub type Shape = smallvec::SmallVec<[usize; 4]>;

/// The broadcast shape of `operands`, aligned on the right, of `ndim` dimensions, given
/// that the result must equal `target` where it is `Some` (for Alloc and writes into a
/// region). Errors on any run-time size mismatch that the static types do not allow.
pub fn broadcast_shape(
    op: &str,
    ndim: usize,
    operands: &[Operand],
    target: Option<(&str, &[usize])>,
) -> Result<Shape> {
    let mut out = Shape::with_capacity(ndim);
    for axis in 0..ndim {
        // (label, size) of the first operand that does not broadcast in this dimension.
        let mut fixed: Option<(&str, usize)> = target.map(|(label, t)| (label, t[axis]));
        let mut any_broadcast = None;
        for x in operands {
            let Some(d) = (axis + x.shape.len()).checked_sub(ndim) else {
                continue;
            };
            if x.static_shape.get(d) == Some(&Some(1)) {
                any_broadcast = Some(1);
                continue;
            }
            let size = x.shape[d];
            match fixed {
                Some((label, s)) if s != size => {
                    return Err(RuntimeError::op(
                        op,
                        format!(
                            "{} has size {size} in dimension {d} where {label} has size {s}; \
                             runtime broadcasting is not supported: if {} should broadcast, \
                             give it a static size of 1 in that dimension, or broadcast it \
                             explicitly with broadcast_to",
                            x.label, x.label
                        ),
                    ))
                }
                Some(_) => {}
                None => fixed = Some((x.label, size)),
            }
        }
        out.push(fixed.map(|(_, s)| s).or(any_broadcast).unwrap_or(1));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_one_broadcasts_unknown_does_not() {
        let a = Operand {
            label: "input 0",
            static_shape: &[None],
            shape: &[5],
        };
        let b1 = Operand {
            label: "input 1",
            static_shape: &[Some(1)],
            shape: &[1],
        };
        assert_eq!(
            broadcast_shape("Add", 1, &[a, b1], None)
                .unwrap()
                .as_slice(),
            &[5]
        );
        let b = Operand {
            label: "input 1",
            static_shape: &[None],
            shape: &[1],
        };
        let err = broadcast_shape("Add", 1, &[a, b], None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("Add: input 1 has size 1 in dimension 0 where input 0 has size 5"),
            "{err}"
        );
        assert!(
            err.contains("runtime broadcasting is not supported"),
            "{err}"
        );
        assert!(err.contains("broadcast_to"), "{err}");
    }

    #[test]
    fn target_shape_is_enforced() {
        let v = Operand {
            label: "the value",
            static_shape: &[None],
            shape: &[3],
        };
        let err = broadcast_shape("Alloc", 2, &[v], Some(("the target shape", &[2, 4])));
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("the value has size 3 in dimension 0 where the target shape has size 4"));
        assert_eq!(
            broadcast_shape("Alloc", 2, &[v], Some(("the target shape", &[2, 3])))
                .unwrap()
                .as_slice(),
            &[2, 3]
        );
    }
}

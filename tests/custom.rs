//! Custom ops (issue 21, DESIGN §2): a user-defined op with a Rust evaluation runs in the
//! reference backend and, as a declared runtime step, in the JIT, or the JIT refuses the
//! graph with one error naming the node; its pullback takes part in gradients; a wrong
//! input type or a result that contradicts its own type inference is an error naming it.

use std::sync::Arc;

use tensorlift::prelude::*;
use tensorlift::{custom, CustomOp};

/// Running maximum of a float64 vector (NumPy's `maximum.accumulate`).
struct RunningMax {
    compiled: bool,
    lie: bool,
}

impl CustomOp for RunningMax {
    fn name(&self) -> &str {
        "running_max"
    }

    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, String> {
        match inputs {
            [x] if x.dtype == Float64 && x.ndim() == 1 => Ok(vec![x.clone()]),
            _ => Err(format!("takes one float64 vector, got {inputs:?}")),
        }
    }

    fn eval(&self, inputs: &[TensorData]) -> Result<Vec<TensorData>, String> {
        let x = inputs[0].to_array::<f64>();
        let mut best = f64::NEG_INFINITY;
        let out: Vec<f64> = x
            .iter()
            .map(|v| {
                best = best.max(*v);
                best
            })
            .collect();
        if self.lie {
            return Ok(vec![TensorData::scalar(1.0f64)]);
        }
        Ok(vec![ndarray::Array1::from(out).into()])
    }

    /// The gradient goes to the element each running maximum came from.
    fn pullback(
        &self,
        inputs: &[Var],
        outputs: &[Var],
        grads: &[Option<Var>],
    ) -> Option<Vec<Option<Var>>> {
        let g = grads[0].clone()?;
        let x = &inputs[0];
        // x[i] is the running maximum at positions j ≥ i while it stays equal to it:
        // its gradient sums g over those positions (ties in x are not split).
        let hits = x
            .expand_dims(1)
            .equal(outputs[0].expand_dims(0))
            .cast(Float64);
        let n = x.shape_i(0);
        let i = arange(&n).expand_dims(1);
        let j = arange(&n).expand_dims(0);
        let after = j.ge(&i).cast(Float64);
        Some(vec![Some((hits * after * g.expand_dims(0)).sum(1))])
    }

    fn runs_in_compiled_backends(&self) -> bool {
        self.compiled
    }
}

#[test]
fn custom_ops_run_in_both_backends() {
    let op = Arc::new(RunningMax {
        compiled: true,
        lie: false,
    });
    let x = vector("x", Float64);
    let y = custom(op, &[&x]).unwrap().remove(0);
    let z = (&y * 2.0).sum(All);
    for mode in [Mode::Reference, Mode::Jit.strict()] {
        let f = function(&[&x], &[&y, &z]).mode(mode).compile().unwrap();
        let out = f
            .call(&[ndarray::array![1.0, 3.0, 2.0, 5.0].into()])
            .unwrap();
        assert_eq!(out[0].to_f64_vec(), vec![1.0, 3.0, 3.0, 5.0]);
        assert_eq!(out[1].item_f64().unwrap(), 24.0);
    }
    let f = function(&[&x], &[&y]).compile().unwrap();
    assert!(
        f.plan().contains("custom op's own evaluation"),
        "{}",
        f.plan()
    );
    assert!(dprint(&[&y]).unwrap().contains("Custom{running_max}"));
}

#[test]
fn a_custom_op_can_refuse_compiled_backends() {
    let op = Arc::new(RunningMax {
        compiled: false,
        lie: false,
    });
    let x = vector("x", Float64);
    let y = custom(op, &[&x]).unwrap().remove(0).exp();
    let f = function(&[&x], &[&y])
        .mode(Mode::Reference)
        .compile()
        .unwrap();
    assert_eq!(
        f.call(&[ndarray::array![0.0].into()]).unwrap()[0].to_f64_vec(),
        vec![1.0]
    );
    let e = function(&[&x], &[&y])
        .mode(Mode::Jit)
        .compile()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Custom{running_max}") && e.contains("reference backend"),
        "{e}"
    );
}

#[test]
fn custom_pullbacks_take_part_in_gradients() {
    let op = Arc::new(RunningMax {
        compiled: true,
        lie: false,
    });
    let f = move |x: &[Var]| {
        (custom(op.clone(), &[&x[0]]).unwrap().remove(0) * 1.5)
            .sqr()
            .sum(All)
    };
    let point: TensorData = ndarray::array![0.3, -1.0, 0.9, 0.5, 2.0].into();
    for mode in [Mode::Reference, Mode::Jit] {
        verify_grad(&f, std::slice::from_ref(&point), &VerifyGrad::in_mode(mode)).unwrap();
    }
    // Without a pullback: an error naming the op.
    struct Plain;
    impl CustomOp for Plain {
        fn name(&self) -> &str {
            "plain"
        }
        fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, String> {
            Ok(inputs.to_vec())
        }
        fn eval(&self, inputs: &[TensorData]) -> Result<Vec<TensorData>, String> {
            Ok(inputs.to_vec())
        }
    }
    let x = vector("x", Float64);
    let y = custom(Arc::new(Plain), &[&x]).unwrap().remove(0).sum(All);
    let e = grad(&y, &[&x]).unwrap_err().to_string();
    assert!(
        e.contains("Custom{plain}") && e.contains("no pullback"),
        "{e}"
    );
}

#[test]
fn custom_type_errors_name_the_op() {
    let op = Arc::new(RunningMax {
        compiled: true,
        lie: false,
    });
    let e = custom(op, &[&matrix("m", Float64)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Custom{running_max}") && e.contains("one float64 vector"),
        "{e}"
    );
    let liar = Arc::new(RunningMax {
        compiled: true,
        lie: true,
    });
    let x = vector("x", Float64);
    let y = custom(liar, &[&x]).unwrap().remove(0);
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&[&x], &[&y]).mode(mode).compile().unwrap();
        let e = f
            .call(&[ndarray::array![1.0].into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Custom{running_max}") && e.contains("its infer said"),
            "{e}"
        );
    }
}

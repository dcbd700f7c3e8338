//! The README demo: build a graph, print it, compile it, call it with ndarray arrays, and
//! see a type error and a runtime error reported (not panicked).

use ndarray::Array1;
use tensorlift::prelude::*;

fn main() -> Result<(), tensorlift::Error> {
    // Symbolic inputs: x has unknown length, y has static length 1 and so broadcasts.
    let x = tensor("x", Float64, [None]);
    let y = tensor("y", Float64, [Some(1)]);
    let z = (x.exp() * &y + x.sin() * 0.5).sum(None);
    println!("The graph of z:\n{}", dprint(&[&z])?);

    // Compiled with the default mode: rewrites, then Cranelift machine code.
    let f = function(&[&x, &y], &[&z]).compile()?;
    println!("After rewrites (one fused reduction):\n{}", f.dprint());
    let xs: Array1<f64> = Array1::linspace(0.0, 1.0, 5);
    let out = f.call(&[xs.clone().into(), ndarray::array![2.0].into()])?;
    let expected: f64 = xs.iter().map(|v| v.exp() * 2.0 + v.sin() * 0.5).sum();
    println!(
        "z = {:.12} (closed form {:.12})",
        out[0].item_f64()?,
        expected
    );

    // Softmax over rows, with NumPy-style slicing: every other column, reversed.
    let m = matrix("m", Float32);
    let p = m.get(idx![.., ..;-2]).softmax(-1);
    let g = function(&[&m], &[&p]).compile()?;
    let probs = g.call(&[ndarray::array![[1.0f32, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 9.0]].into()])?;
    println!(
        "softmax(m[:, ::-2], axis=-1) =\n{}",
        probs[0].as_array::<f32>().expect("float32")
    );

    // The same function in the reference interpreter agrees.
    let r = function(&[&x, &y], &[&z]).mode(Mode::Reference).compile()?;
    let again = r.call(&[xs.clone().into(), ndarray::array![2.0].into()])?;
    println!("reference interpreter: z = {:.12}", again[0].item_f64()?);

    // Mistakes are errors, not panics.
    let bad = tensor("a", Float64, [Some(3)]) + tensor("b", Float64, [Some(4)]);
    if let Err(err) = bad.check() {
        println!("\nA type error at graph build: {err}");
    }
    if let Err(err) = f.call(&[xs.into(), ndarray::array![1.0, 2.0].into()]) {
        println!("A bad call: {err}");
    }
    Ok(())
}

use tensorlift::prelude::*;
fn main() {
    let which = std::env::args().nth(1).unwrap_or("w2".into());
    let n = 10_000_000;
    let xv: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.37).sin() * 3.0).collect();
    let (f, args) = if which == "w2" {
        let x = vector("x", Float64);
        (
            function(&[&x], &[&x.logsumexp(None)]).compile().unwrap(),
            vec![ndarray::Array1::from(xv).into()],
        )
    } else {
        let x = matrix("x", Float64);
        (
            function(&[&x], &[&x.softmax(1)]).compile().unwrap(),
            vec![
                ndarray::Array2::from_shape_vec((2000, 2000), xv[..4_000_000].to_vec())
                    .unwrap()
                    .into(),
            ],
        )
    };
    for _ in 0..30 {
        let t = std::time::Instant::now();
        std::hint::black_box(f.call(&args).unwrap());
        eprintln!("{:?}", t.elapsed());
    }
}

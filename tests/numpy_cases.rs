//! Every op against NumPy: the cases in `tests/data/numpy_cases.json` were computed by
//! NumPy 2.4.6 with `scripts/gen_numpy_cases.py` (fixed seed, several dtypes, edge cases
//! such as empty arrays, size-1 dimensions, negative steps, NaN and out-of-range indices).
//! Each case is built as a graph, compiled in `Mode::Reference` both with and without the
//! rewrite pipeline and in `Mode::Jit`, and called; outputs must
//! match in dtype, shape and value (dtype-aware tolerance), and every case where NumPy
//! raises must return `Err`.

use serde_json::Value;
use tensorlift::ir::ops::ReduceKind;
use tensorlift::prelude::*;
use tensorlift::testing::allclose;
use tensorlift::{linalg, GraphError, Literal};

fn parse_dtype(v: &Value) -> DType {
    DType::from_name(v.as_str().expect("dtype string")).expect("known dtype")
}

fn number(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "nan" => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        Value::Bool(b) => *b as u8 as f64,
        other => other.as_f64().expect("number"),
    }
}

fn to_data(v: &Value) -> TensorData {
    let dtype = parse_dtype(&v["dtype"]);
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap() as usize)
        .collect();
    let items = v["data"].as_array().unwrap();
    let ints = || {
        items
            .iter()
            .map(|x| x.as_i64().expect("int"))
            .collect::<Vec<i64>>()
    };
    let r = match dtype {
        DType::Bool => {
            TensorData::from_vec(&shape, items.iter().map(|x| x.as_bool().unwrap()).collect())
        }
        DType::Int8 => TensorData::from_vec(&shape, ints().into_iter().map(|x| x as i8).collect()),
        DType::Int16 => {
            TensorData::from_vec(&shape, ints().into_iter().map(|x| x as i16).collect())
        }
        DType::Int32 => {
            TensorData::from_vec(&shape, ints().into_iter().map(|x| x as i32).collect())
        }
        DType::Int64 => TensorData::from_vec(&shape, ints()),
        DType::UInt8 => TensorData::from_vec(&shape, ints().into_iter().map(|x| x as u8).collect()),
        DType::Float32 => {
            TensorData::from_vec(&shape, items.iter().map(|x| number(x) as f32).collect())
        }
        DType::Float64 => TensorData::from_vec(&shape, items.iter().map(number).collect()),
    };
    r.expect("consistent test data")
}

fn input_var(k: usize, data: &TensorData) -> Var {
    let shape: Vec<Option<usize>> = data
        .shape()
        .iter()
        .map(|s| (*s == 1).then_some(1))
        .collect();
    tensor(&format!("x{k}"), data.dtype(), shape)
}

fn axes(params: &Value) -> Option<Vec<isize>> {
    params["axes"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_i64().unwrap() as isize).collect())
}

fn axis(params: &Value) -> Option<isize> {
    params["axis"].as_i64().map(|a| a as isize)
}

fn ints(params: &Value, key: &str) -> Vec<i64> {
    params[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

fn index(params: &Value, extra: &[Var]) -> Vec<Idx> {
    let part = |v: &Value| v.as_i64().map(|i| i.into());
    params["index"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            if let Some(i) = e.get("i") {
                Idx::from(i.as_i64().unwrap())
            } else if let Some(s) = e.get("s") {
                Idx::slice(part(&s[0]), part(&s[1]), part(&s[2]))
            } else {
                Idx::from(&extra[e["a"].as_u64().unwrap() as usize])
            }
        })
        .collect()
}

fn reduce_kind(op: &str) -> Option<ReduceKind> {
    Some(match op {
        "sum" => ReduceKind::Sum,
        "prod" => ReduceKind::Prod,
        "max" => ReduceKind::Max,
        "min" => ReduceKind::Min,
        "all" => ReduceKind::All,
        "any" => ReduceKind::Any,
        _ => return None,
    })
}

fn unary(op: &str, x: &Var) -> Option<Var> {
    Some(match op {
        "exp" => x.exp(),
        "exp2" => x.exp2(),
        "expm1" => x.expm1(),
        "log" => x.log(),
        "log2" => x.log2(),
        "log1p" => x.log1p(),
        "log1mexp" => x.log1mexp(),
        "sqrt" => x.sqrt(),
        "sin" => x.sin(),
        "cos" => x.cos(),
        "tan" => x.tan(),
        "tanh" => x.tanh(),
        "reciprocal" => x.reciprocal(),
        "sigmoid" => x.sigmoid(),
        "softplus" => x.softplus(),
        "erf" => x.erf(),
        "erfc" => x.erfc(),
        "gammaln" => x.gammaln(),
        "neg" => -x,
        "abs" => x.abs(),
        "sign" => x.sign(),
        "sqr" => x.sqr(),
        "floor" => x.floor(),
        "ceil" => x.ceil(),
        "round" => x.round(),
        "not" => !x,
        "isnan" => x.isnan(),
        "isinf" => x.isinf(),
        _ => return None,
    })
}

fn binary(op: &str, a: &Var, b: &Var) -> Option<Var> {
    Some(match op {
        "add" => a + b,
        "sub" => a - b,
        "mul" => a * b,
        "true_div" => a / b,
        "floor_div" => a.floor_div(b),
        "mod" => a % b,
        "pow" => a.pow(b),
        "maximum" => a.maximum(b),
        "minimum" => a.minimum(b),
        "eq" => a.equal(b),
        "neq" => a.not_equal(b),
        "lt" => a.lt(b),
        "le" => a.le(b),
        "gt" => a.gt(b),
        "ge" => a.ge(b),
        "and" => a & b,
        "or" => a | b,
        "xor" => a ^ b,
        _ => return None,
    })
}

fn build(op: &str, p: &Value, x: &[Var]) -> Result<Vec<Var>, GraphError> {
    if let Some(v) = x.first().and_then(|x0| unary(op, x0)) {
        return Ok(vec![v]);
    }
    if x.len() == 2 {
        if let Some(v) = binary(op, &x[0], &x[1]) {
            return Ok(vec![v]);
        }
    }
    if let Some(kind) = reduce_kind(op) {
        let ax = axes(p);
        let keep = p["keepdims"].as_bool().unwrap_or(false);
        return Ok(vec![x[0].reduce(kind, ax.as_deref(), keep)]);
    }
    let lit = |v: &Value, dtype: DType| {
        if dtype.is_float() {
            Literal::Float(v.as_f64().unwrap())
        } else {
            Literal::Int(v.as_i64().unwrap())
        }
    };
    let out = match op {
        "cast" => x[0].cast(parse_dtype(&p["dtype"])),
        "switch" => switch(&x[0], &x[1], &x[2]),
        "clip" => x[0].clip(&x[1], &x[2]),
        "transpose" => x[0].transpose(
            &ints(p, "axes")
                .iter()
                .map(|a| *a as isize)
                .collect::<Vec<_>>(),
        ),
        "expand_dims" => x[0].expand_dims(axis(p).unwrap()),
        "squeeze" => x[0].squeeze(axes(p).as_deref()),
        "argmax" => x[0].argmax(axis(p)),
        "argmin" => x[0].argmin(axis(p)),
        "cumsum" => x[0].cumsum(axis(p)),
        "cumprod" => x[0].cumprod(axis(p)),
        "mean" => x[0].mean(axes(p).as_deref()),
        "var" => x[0].var_ddof(axes(p).as_deref(), p["ddof"].as_u64().unwrap() as usize),
        "std" => x[0].std_ddof(axes(p).as_deref(), p["ddof"].as_u64().unwrap() as usize),
        "logsumexp" => x[0].logsumexp(axes(p).as_deref()),
        "softmax" => x[0].softmax(axis(p).unwrap()),
        "log_softmax" => x[0].log_softmax(axis(p).unwrap()),
        "reshape" => x[0].reshape(&ints(p, "shape")),
        "transpose_reshape" => x[0].t().reshape(&ints(p, "shape")),
        "alloc" => {
            let shape: Vec<tensorlift::ir::Operand> =
                ints(p, "shape").into_iter().map(Into::into).collect();
            x[0].broadcast_to(&shape)
        }
        "arange" => {
            let dtype = parse_dtype(&p["dtype"]);
            arange_dtype(
                lit(&p["start"], dtype),
                lit(&p["stop"], dtype),
                lit(&p["step"], dtype),
                dtype,
            )
        }
        "concatenate" => concatenate(x, axis(p).unwrap()),
        "stack" => stack(x, axis(p).unwrap()),
        "split" => return split(&x[0], &ints(p, "sizes"), axis(p).unwrap()),
        "shape" => x[0].shape(),
        "make_vector" => make_vector(&[(&x[0]).into(), (&x[1]).into()]),
        "get" => x[0].get(index(p, &x[1..])),
        "set" => x[0].set(index(p, &x[2..]), &x[1]),
        "inc" => x[0].inc(index(p, &x[2..]), &x[1]),
        "dot" => x[0].dot(&x[1]),
        "matmul" => x[0].matmul(&x[1]),
        "det" => linalg::det(&x[0]),
        "inv" => linalg::inv(&x[0]),
        "slogdet" => {
            let (sign, log) = linalg::slogdet(&x[0]);
            return Ok(vec![sign, log]);
        }
        "cholesky" => linalg::cholesky(&x[0], p["lower"].as_bool().unwrap()),
        "eigh" => {
            // Each eigenvector's sign flipped so that its first row is positive (NumPy's
            // data is normalised the same way).
            let (w, v) = linalg::eigh(&x[0]);
            let mut first_row = vec![Idx::full(); v.ndim() - 2];
            first_row.extend([0i64.into(), Idx::full()]);
            let signed = &v * v.get(first_row).expand_dims(-2).sign();
            return Ok(vec![w, signed]);
        }
        "solve" => linalg::solve_with(&x[0], &x[1], p["b_ndim"].as_u64().unwrap() as usize),
        "solve_triangular" => linalg::solve_triangular_with(
            &x[0],
            &x[1],
            p["lower"].as_bool().unwrap(),
            p["b_ndim"].as_u64().unwrap() as usize,
        ),
        "diagonal" => x[0].diagonal(
            p["offset"].as_i64().unwrap(),
            p["axis1"].as_i64().unwrap() as isize,
            p["axis2"].as_i64().unwrap() as isize,
        ),
        other => panic!("the test runner does not know op {other:?}"),
    };
    Ok(vec![out])
}

fn run_case(case: &Value, mode: &Mode) -> Result<Vec<TensorData>, String> {
    let inputs: Vec<TensorData> = case["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(to_data)
        .collect();
    let vars: Vec<Var> = inputs
        .iter()
        .enumerate()
        .map(|(k, d)| input_var(k, d))
        .collect();
    let outs =
        build(case["op"].as_str().unwrap(), &case["params"], &vars).map_err(|e| e.to_string())?;
    let in_refs: Vec<&Var> = vars.iter().collect();
    let out_refs: Vec<&Var> = outs.iter().collect();
    let f = function(&in_refs, &out_refs)
        .mode(mode.clone())
        .compile()
        .map_err(|e| e.to_string())?;
    f.call(&inputs).map_err(|e| e.to_string())
}

/// NumPy's result within float64 1e-10 / float32 2e-5 relative, exact for integers.
fn compare(name: &str, got: &TensorData, want: &TensorData) -> Result<(), String> {
    let tol = match want.dtype() {
        DType::Float64 => (1e-10, 1e-12),
        DType::Float32 => (2e-5, 1e-6),
        _ => (0.0, 0.0),
    };
    allclose(name, got, want, tol, "NumPy")
}

#[test]
fn every_op_matches_numpy() {
    let text = include_str!("data/numpy_cases.json");
    let doc: Value = serde_json::from_str(text).expect("valid JSON");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() > 950, "the data file lost cases");
    let mut failures = Vec::new();
    let modes = [
        ("rewritten", Mode::Reference),
        ("as built", Mode::Reference.without_rewrites()),
        ("jit", Mode::Jit),
    ];
    for (case, (label, mode)) in cases.iter().flat_map(|c| modes.iter().map(move |m| (c, m))) {
        let name = &format!("{} ({label})", case["name"].as_str().unwrap());
        let result = run_case(case, mode);
        if case["error"].as_bool() == Some(true) {
            match result {
                Ok(out) => {
                    failures.push(format!("{name}: NumPy raises, tensorlift returned {out:?}"))
                }
                Err(e) if e.contains("internal error") || !e.contains(':') => failures.push(
                    format!("{name}: expected a user error naming the op, got: {e}"),
                ),
                Err(_) => {}
            }
            continue;
        }
        match result {
            Err(e) => failures.push(format!("{name}: unexpected error: {e}")),
            Ok(outs) => {
                let want: Vec<TensorData> = case["expected"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(to_data)
                    .collect();
                if outs.len() != want.len() {
                    failures.push(format!(
                        "{name}: {} outputs, NumPy gives {}",
                        outs.len(),
                        want.len()
                    ));
                    continue;
                }
                for (g, w) in outs.iter().zip(&want) {
                    if let Err(e) = compare(name, g, w) {
                        failures.push(e);
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
